"""Rotated square regions of interest and the affine maps between image and model input.

Pure numpy. A :class:`Roi` is a rotated square in **image pixels**: centre (cx, cy), side
``size`` and ``rotation`` in radians (MediaPipe's convention: the angle by which the image is
rotated so that the hand points up; positive = counter-clockwise on screen is *clockwise* in
y-down pixel coordinates — we simply use MediaPipe's formulas, which are stated in y-down
pixels). Follows MediaPipe's ``RectTransformationCalculator`` and ``ImageToTensorCalculator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def normalize_radians(angle: float) -> float:
    """Wrap an angle into [-pi, pi) (MediaPipe ``NormalizeRadians``)."""
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


@dataclass(frozen=True)
class Roi:
    """A rotated square region of an image, in pixels."""

    cx: float
    cy: float
    size: float
    rotation: float = 0.0

    def corners(self) -> np.ndarray:
        """The 4 corners (top-left, top-right, bottom-right, bottom-left of the model input)
        in image pixels, float32 [4, 2]."""
        h = self.size / 2.0
        local = np.array([[-h, -h], [h, -h], [h, h], [-h, h]], dtype=np.float64)
        return (local @ self._rot().T + [self.cx, self.cy]).astype(np.float32)

    def _rot(self) -> np.ndarray:
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        return np.array([[c, -s], [s, c]], dtype=np.float64)

    def input_to_image(self, out_size: int) -> np.ndarray:
        """2×3 affine matrix from model-input pixels (0..out_size) to image pixels.

        Continuous convention: u in [0, out_size]; the input centre maps to (cx, cy).
        """
        k = self.size / out_size
        c, s = math.cos(self.rotation) * k, math.sin(self.rotation) * k
        h = out_size / 2.0
        return np.array(
            [[c, -s, self.cx - (c - s) * h], [s, c, self.cy - (s + c) * h]], dtype=np.float64
        )

    def image_to_input(self, out_size: int) -> np.ndarray:
        """2×3 affine matrix from image pixels to model-input pixels (the exact inverse of
        :meth:`input_to_image`: a scaled rotation inverts by its transpose)."""
        k = out_size / self.size
        c, s = math.cos(self.rotation) * k, math.sin(self.rotation) * k
        h = out_size / 2.0
        return np.array(
            [[c, s, h - c * self.cx - s * self.cy], [-s, c, h + s * self.cx - c * self.cy]],
            dtype=np.float64,
        )

    def iou(self, other: Roi) -> float:
        """Intersection over union of the axis-aligned boxes around both squares."""
        a = _aabb(self)
        b = _aabb(other)
        ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = ix * iy
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0


def _aabb(roi: Roi) -> tuple[float, float, float, float]:
    c = roi.corners()
    return float(c[:, 0].min()), float(c[:, 1].min()), float(c[:, 0].max()), float(c[:, 1].max())


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2×3 affine matrix."""
    a = m[:, :2]
    inv = np.linalg.inv(a)
    return np.hstack([inv, (-inv @ m[:, 2])[:, None]])


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine matrix to points [..., 2]."""
    return pts @ m[:, :2].T + m[:, 2]


def transform_rect(
    cx: float,
    cy: float,
    width: float,
    height: float,
    rotation: float,
    *,
    scale: float,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
) -> Roi:
    """MediaPipe ``RectTransformationCalculator`` with ``square_long: true``, in pixels.

    ``width``/``height`` are the rect's sides in pixels; shifts are fractions of them, applied
    in the rect's rotated frame; the result is a square of side ``max(w, h) * scale``.
    """
    c, s = math.cos(rotation), math.sin(rotation)
    x_shift = width * shift_x * c - height * shift_y * s
    y_shift = width * shift_x * s + height * shift_y * c
    side = max(width, height) * scale
    return Roi(cx + x_shift, cy + y_shift, side, normalize_radians(rotation))
