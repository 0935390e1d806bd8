"""Hand landmark model pre/post-processing (pure numpy + one OpenCV warp).

Ports MediaPipe's ``hand_landmark_cpu.pbtxt`` (ImageToTensor 224×224 in [0, 1],
TensorsToLandmarks with normalize_z 0.4, LandmarkProjection, WorldLandmarkProjection) and
``hand_landmark_landmarks_to_roi.pbtxt`` + ``hand_landmarks_to_rect_calculator.cc``
(rotation wrist → mean of index/middle/ring base joints, box of the stable joints,
scale 2.0, shift −0.1).

Frames and units: the model input is the ROI warped to 224×224 *input pixels*; results are
returned in **image pixels** (x, y) with z on the same pixel scale (relative to the wrist
depth, negative towards the camera), and world landmarks in **metres**.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from device.vision.geometry import Roi, normalize_radians, transform_rect

INPUT_SIZE = 224
NORMALIZE_Z = 0.4
LANDMARK_ROI_SCALE = 2.0
LANDMARK_ROI_SHIFT_Y = -0.1
TARGET_ANGLE = math.pi / 2
# Joints that are stable across frames (wrist, CMC/MCP/IP of the thumb, MCP and PIP of the
# fingers): MediaPipe's SplitNormalizedLandmarkList ranges [0,4) [5,7) [9,11) [13,15) [17,19).
ROI_JOINTS = np.array([0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18])
WRIST, INDEX_MCP, MIDDLE_MCP, RING_MCP = 0, 5, 9, 13


def warp_roi(
    rgb: np.ndarray, roi: Roi, size: int = INPUT_SIZE, out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Crop the rotated ROI to a [1, size, size, 3] float32 tensor in [0, 1] (:func:`fill_roi`).

    Returns the tensor and the 2×3 affine matrix mapping input pixels → image pixels.
    ``out``: a float32 [1, size, size, 3] buffer to fill instead of allocating one.
    """
    if out is None:
        out = np.empty((1, size, size, 3), dtype=np.float32)
    fill_roi(rgb, roi, out, size)
    return out, roi.input_to_image(size)


def fill_roi(rgb: np.ndarray, roi: Roi, out: np.ndarray, size: int = INPUT_SIZE) -> None:
    """Write the rotated ROI of ``rgb`` into ``out`` (float32 [1, size, size, 3], in [0, 1]);
    the tracker passes the interpreter's own input tensor.

    Where the ROI reaches past the frame, the frame's edge pixels are repeated: MediaPipe's
    ``ImageToTensorCalculator`` replicates the border unless a graph asks for zeros (only the
    palm detector's letterbox does). A zero border instead makes a hand at the frame's edge
    look cut off, and the lite model then loses or mis-fits it (pixabay_thumbs_up: the wrist
    lies below the frame).

    The ROI's axis-aligned box is copied out of the frame first: a rotated bilinear warp
    reads the frame along slanted lines, which defeats the CPU's prefetcher on a frame that
    is not in cache (a fresh camera frame never is); a row-by-row copy of the box followed by
    the warp of the (now cached) copy takes about half the time of the direct warp on
    1080p frames, with the same result to within one grey level (fixed-point rounding).
    """
    crop = cv2.warpAffine(
        *_roi_box(rgb, roi, size),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    np.multiply(crop, np.float32(1.0 / 255.0), out=out[0])


def _roi_box(rgb: np.ndarray, roi: Roi, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The contiguous part of ``rgb`` the ROI's warp samples, and the image → input matrix
    for that part (the frame's own matrix when the ROI lies wholly outside it)."""
    m = roi.image_to_input(size)
    half = roi.size / 2.0 * (abs(math.cos(roi.rotation)) + abs(math.sin(roi.rotation)))
    h, w = rgb.shape[:2]
    x0 = max(math.floor(roi.cx - half) - 1, 0)
    y0 = max(math.floor(roi.cy - half) - 1, 0)
    x1 = min(math.ceil(roi.cx + half) + 2, w)
    y1 = min(math.ceil(roi.cy + half) + 2, h)
    if x1 <= x0 or y1 <= y0:
        return rgb, m
    m[:, 2] += m[:, 0] * x0 + m[:, 1] * y0
    return np.ascontiguousarray(rgb[y0:y1, x0:x1]), m


@dataclass(frozen=True)
class LandmarkResult:
    """Landmark model output for one ROI, already in image space.

    ``landmarks``: float32 [21, 3] image px (z relative, px scale); ``world``: float32 [21, 3]
    metres (ROI-centred, rotated back to the image orientation); ``presence`` in [0, 1];
    ``right_score``: probability that the model calls the hand "Right" (MediaPipe convention).
    """

    landmarks: np.ndarray
    world: np.ndarray
    presence: float
    right_score: float

    @property
    def handedness(self) -> str:
        return "Right" if self.right_score >= 0.5 else "Left"

    @property
    def handedness_score(self) -> float:
        return max(self.right_score, 1.0 - self.right_score)


def unproject(
    raw_landmarks: np.ndarray,
    raw_world: np.ndarray,
    presence: float,
    handedness_raw: float,
    roi: Roi,
    to_image: np.ndarray,
    size: int = INPUT_SIZE,
) -> LandmarkResult:
    """Map raw model outputs (input pixels) back to the image.

    ``handedness_raw`` is the model's handedness output, which MediaPipe's
    ``handedness.txt`` label map names as the probability of "Left" for index 0 under
    binary classification; we store the probability of "Right" (1 − raw).
    """
    lm = np.asarray(raw_landmarks, dtype=np.float32).reshape(21, 3)
    out = np.empty((21, 3), dtype=np.float32)
    out[:, :2] = lm[:, :2] @ to_image[:, :2].T + to_image[:, 2]
    out[:, 2] = lm[:, 2] * np.float32(roi.size / size / NORMALIZE_Z)
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    rotate = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    world = np.asarray(raw_world, dtype=np.float32).reshape(21, 3) @ rotate
    return LandmarkResult(out, world, float(presence), float(1.0 - handedness_raw))


def roi_from_landmarks(landmarks: np.ndarray) -> Roi:
    """Next frame's ROI from this frame's landmarks (image px), as MediaPipe tracks.

    Rotation: wrist → mean(mean(index MCP, ring MCP), middle MCP), target 90°. Box: the
    stable joints' extent in the rotated frame, then scale 2.0, shift −0.1, square.
    """
    full = np.asarray(landmarks, dtype=np.float64)
    x0, y0 = full[WRIST, 0], full[WRIST, 1]
    x1 = ((full[INDEX_MCP, 0] + full[RING_MCP, 0]) / 2.0 + full[MIDDLE_MCP, 0]) / 2.0
    y1 = ((full[INDEX_MCP, 1] + full[RING_MCP, 1]) / 2.0 + full[MIDDLE_MCP, 1]) / 2.0
    rotation = normalize_radians(TARGET_ANGLE - math.atan2(-(y1 - y0), x1 - x0))
    pts = full[ROI_JOINTS, :2]
    centre_aa = (pts.max(axis=0) + pts.min(axis=0)) / 2.0
    # the stable joints in the frame rotated by -rotation about the box centre
    c, s = math.cos(rotation), math.sin(rotation)
    proj = (pts - centre_aa) @ np.array([[c, -s], [s, c]])
    pmax, pmin = proj.max(axis=0), proj.min(axis=0)
    pcx, pcy = (pmax + pmin) / 2.0
    width, height = pmax - pmin
    return transform_rect(
        float(pcx * c - pcy * s + centre_aa[0]),
        float(pcx * s + pcy * c + centre_aa[1]),
        float(width),
        float(height),
        rotation,
        scale=LANDMARK_ROI_SCALE,
        shift_y=LANDMARK_ROI_SHIFT_Y,
    )
