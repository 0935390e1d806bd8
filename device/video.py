"""Reading videos and images with OpenCV, with errors a person can act on.

Frames come out as RGB uint8 [H, W, 3] (OpenCV decodes BGR; we convert once here).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device.errors import VideoError

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
# A container that promises N frames and decodes fewer than this share is truncated.
TRUNCATION_TOLERANCE = 0.98


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    frame_count: int  # as declared by the container (0 when unknown)


def _open(path: str | Path) -> cv2.VideoCapture:
    p = Path(path)
    if not p.exists():
        raise VideoError(f"video file not found: {p}")
    if not p.is_file():
        raise VideoError(f"not a file: {p}")
    if p.stat().st_size == 0:
        raise VideoError(f"video file is empty (0 bytes): {p}")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"cannot open {p} as a video (not a video file, or corrupt)")
    return cap


def probe_video(path: str | Path) -> VideoInfo:
    """Open a video and read its size, rate and declared frame count."""
    cap = _open(path)
    try:
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    if w <= 0 or h <= 0:
        raise VideoError(f"{path}: no video stream with a frame size (not a video file?)")
    if not (0 < fps < 1000):
        fps = DEFAULT_FPS
    return VideoInfo(str(path), w, h, fps, max(n, 0))


def read_frames(
    path: str | Path, *, max_frames: int | None = None, check_truncation: bool = True
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(index, t_seconds, rgb)`` for every frame of a video file.

    Raises :class:`VideoError` when the file can't be opened, decodes to zero frames, or
    decodes to clearly fewer frames than its container declares (truncated).
    """
    info = probe_video(path)
    cap = _open(path)
    index = 0
    try:
        while max_frames is None or index < max_frames:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            if bgr.ndim == 2:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
            else:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield index, index / info.fps, rgb
            index += 1
    finally:
        cap.release()
    if index == 0:
        raise VideoError(f"{path}: no frame could be decoded (zero frames, or corrupt video)")
    if (
        check_truncation
        and max_frames is None
        and info.frame_count > 0
        and index < info.frame_count * TRUNCATION_TOLERANCE - 1
    ):
        raise VideoError(
            f"{path}: video is truncated or corrupt: decoded {index} of {info.frame_count} frames"
        )


def read_image(path: str | Path) -> np.ndarray:
    """Read a still image as RGB uint8."""
    p = Path(path)
    if not p.is_file():
        raise VideoError(f"image file not found: {p}")
    bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if bgr is None:
        raise VideoError(f"cannot decode {p} as an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
