"""Palm detection post-processing (pure numpy).

Ports MediaPipe's ``palm_detection_cpu.pbtxt`` settings (SsdAnchorsCalculator,
TensorsToDetectionsCalculator, NonMaxSuppressionCalculator with WEIGHTED overlap,
DetectionLetterboxRemovalCalculator) and ``palm_detection_detection_to_roi.pbtxt``.

Frames: the model sees a 192×192 letterboxed image; decoded boxes and keypoints are first
in that *input* frame normalized to [0, 1], then mapped back to **image pixels**.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from device.vision.geometry import Roi, normalize_radians, transform_rect

INPUT_SIZE = 192
NUM_KEYPOINTS = 7
NUM_ANCHORS = 2016
# SsdAnchorsCalculator options of palm_detection_cpu.pbtxt (192×192 input).
ANCHOR_STRIDES = (8, 16, 16, 16)
ANCHOR_OFFSET = 0.5
SCORE_CLIP = 100.0
# Palm detection → hand ROI (palm_detection_detection_to_roi.pbtxt).
PALM_ROI_SCALE = 2.6
PALM_ROI_SHIFT_Y = -0.5
WRIST_KEYPOINT = 0
MIDDLE_MCP_KEYPOINT = 2
TARGET_ANGLE = math.pi / 2


def generate_anchors(input_size: int = INPUT_SIZE) -> np.ndarray:
    """SSD anchor centres [N, 2] (x, y) normalized to the input, fixed anchor size 1.

    Layers with the same stride share a grid; every layer contributes 2 anchors per cell
    (aspect ratio 1 plus the interpolated scale), so 192 input → 24²·2 + 12²·6 = 2016.
    """
    anchors: list[np.ndarray] = []
    i = 0
    while i < len(ANCHOR_STRIDES):
        stride = ANCHOR_STRIDES[i]
        n_layers = 0
        while i < len(ANCHOR_STRIDES) and ANCHOR_STRIDES[i] == stride:
            n_layers += 1
            i += 1
        fm = math.ceil(input_size / stride)
        ys, xs = np.meshgrid(np.arange(fm), np.arange(fm), indexing="ij")
        centres = np.stack([(xs + ANCHOR_OFFSET) / fm, (ys + ANCHOR_OFFSET) / fm], axis=-1)
        centres = np.repeat(centres.reshape(-1, 1, 2), 2 * n_layers, axis=1).reshape(-1, 2)
        anchors.append(centres)
    return np.concatenate(anchors).astype(np.float32)


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the square model input (aspect kept, centred, zero pad).

    ``scale``: input pixels per image pixel; ``pad_x``/``pad_y``: padding in input pixels.
    """

    image_width: int
    image_height: int
    input_size: int
    scale: float
    pad_x: float
    pad_y: float

    def to_image(self, pts_input_norm: np.ndarray) -> np.ndarray:
        """Map points [..., 2] normalized to the model input back to image pixels."""
        px = pts_input_norm * self.input_size
        out = np.empty_like(px, dtype=np.float32)
        out[..., 0] = (px[..., 0] - self.pad_x) / self.scale
        out[..., 1] = (px[..., 1] - self.pad_y) / self.scale
        return out

    def to_input(self, pts_image: np.ndarray) -> np.ndarray:
        """Map image pixels [..., 2] to model-input pixels."""
        out = np.empty_like(pts_image, dtype=np.float32)
        out[..., 0] = pts_image[..., 0] * self.scale + self.pad_x
        out[..., 1] = pts_image[..., 1] * self.scale + self.pad_y
        return out


def letterbox(rgb: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """Fit an RGB uint8 image into a ``size``×``size`` float32 tensor in [0, 1].

    Returns the [1, size, size, 3] tensor and the :class:`Letterbox` to undo it. Done
    exactly as MediaPipe's ``ImageToTensorCalculator`` does it (keep aspect ratio, zero
    border): one bilinear warp of the whole frame with a fractional padding and no
    anti-aliasing. The detector was trained on such inputs, and a hand just entering the
    frame is decided by small differences: an area-averaged resize gave a different first
    box on pixabay_thumbs_up, whose first landmark fit then settled on a wrong hand pose
    for 20 frames (docs/TRACKER.md).
    """
    h, w = rgb.shape[:2]
    scale = size / max(w, h)
    pad_x, pad_y = (size - w * scale) / 2.0, (size - h * scale) / 2.0
    image_to_input = np.array([[scale, 0.0, pad_x], [0.0, scale, pad_y]])
    warped = cv2.warpAffine(
        rgb, image_to_input, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    out = np.empty((1, size, size, 3), dtype=np.float32)
    np.multiply(warped, np.float32(1.0 / 255.0), out=out[0])
    return out, Letterbox(w, h, size, scale, pad_x, pad_y)


@dataclass(frozen=True)
class PalmDetection:
    """One palm, in image pixels.

    ``box``: (xmin, ymin, xmax, ymax) px; ``keypoints``: float32 [7, 2] px
    (0 wrist centre, 2 middle-finger MCP, …); ``score`` in [0, 1].
    """

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float

    def to_roi(self) -> Roi:
        """Hand ROI: rotation wrist → middle MCP (target 90°), scale 2.6, shift −0.5."""
        x0, y0 = self.keypoints[WRIST_KEYPOINT]
        x1, y1 = self.keypoints[MIDDLE_MCP_KEYPOINT]
        rotation = normalize_radians(TARGET_ANGLE - math.atan2(-(y1 - y0), x1 - x0))
        xmin, ymin, xmax, ymax = self.box
        return transform_rect(
            (xmin + xmax) / 2.0,
            (ymin + ymax) / 2.0,
            xmax - xmin,
            ymax - ymin,
            rotation,
            scale=PALM_ROI_SCALE,
            shift_y=PALM_ROI_SHIFT_Y,
        )


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -SCORE_CLIP, SCORE_CLIP)))


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, input_size: int = INPUT_SIZE) -> np.ndarray:
    """Decode raw regressors [N, 18] into [N, 18] normalized input coordinates.

    Output layout per anchor: xmin, ymin, xmax, ymax, then 7 × (x, y) keypoints.
    (Anchors have fixed size 1, so w/h scale by 1/input_size only.)
    """
    raw = raw.reshape(-1, 4 + 2 * NUM_KEYPOINTS)
    s = 1.0 / input_size
    ax, ay = anchors[:, 0], anchors[:, 1]
    cx = raw[:, 0] * s + ax
    cy = raw[:, 1] * s + ay
    w = raw[:, 2] * s
    h = raw[:, 3] * s
    out = np.empty_like(raw, dtype=np.float32)
    out[:, 0] = cx - w / 2
    out[:, 1] = cy - h / 2
    out[:, 2] = cx + w / 2
    out[:, 3] = cy + h / 2
    kp = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) * s
    kp[:, :, 0] += ax[:, None]
    kp[:, :, 1] += ay[:, None]
    out[:, 4:] = kp.reshape(-1, 2 * NUM_KEYPOINTS)
    return out


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box [4] (xmin, ymin, xmax, ymax) with many [N, 4]."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    decoded: np.ndarray, scores: np.ndarray, iou_threshold: float, max_out: int = 0
) -> list[tuple[np.ndarray, float]]:
    """MediaPipe WEIGHTED non-max suppression.

    Candidates are taken in descending score; all remaining candidates overlapping the best
    one by more than ``iou_threshold`` form a cluster whose coordinates are averaged,
    weighted by score; the cluster keeps the best score. Returns (row [18], score) pairs.
    """
    order = np.argsort(-scores)
    remaining = order
    out: list[tuple[np.ndarray, float]] = []
    while remaining.size:
        best = remaining[0]
        ious = box_iou(decoded[best, :4], decoded[remaining, :4])
        cluster = remaining[ious > iou_threshold]
        if cluster.size == 0:  # pragma: no cover - best always overlaps itself
            cluster = remaining[:1]
        w = scores[cluster]
        merged = (decoded[cluster] * w[:, None]).sum(axis=0) / w.sum()
        out.append((merged.astype(np.float32), float(scores[best])))
        remaining = remaining[ious <= iou_threshold]
        if max_out and len(out) >= max_out:
            break
    return out


def postprocess(
    raw_boxes: np.ndarray,
    raw_scores: np.ndarray,
    anchors: np.ndarray,
    lb: Letterbox,
    *,
    min_score: float = 0.5,
    iou_threshold: float = 0.3,
    max_out: int = 0,
) -> list[PalmDetection]:
    """Model outputs → palm detections in image pixels, best first."""
    scores = sigmoid(raw_scores.reshape(-1).astype(np.float32))
    keep = np.nonzero(scores >= min_score)[0]
    if keep.size == 0:
        return []
    decoded = decode_boxes(raw_boxes.reshape(-1, 18)[keep], anchors[keep], lb.input_size)
    result: list[PalmDetection] = []
    for row, score in weighted_nms(decoded, scores[keep], iou_threshold, max_out):
        corners = lb.to_image(row[:4].reshape(2, 2)).reshape(4)
        kps = lb.to_image(row[4:].reshape(NUM_KEYPOINTS, 2))
        box = (float(corners[0]), float(corners[1]), float(corners[2]), float(corners[3]))
        result.append(PalmDetection(box=box, keypoints=kps, score=score))
    return result
