"""A video file as a camera (the demo clip, recorded sessions, integration tests).

``loop=True`` rewinds at the end; ``loop=False`` raises :class:`EndOfStream` after the last
frame. ``paced=True`` delivers frames at the file's frame rate on the wall clock (like a
camera); ``paced=False`` delivers them as fast as they decode (tests, offline scoring).
Frame times are media time, ``index / fps``, continuing across loops, so they do not depend
on how fast the machine is.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from device.camera.base import BaseSource, EndOfStream
from device.errors import CameraError

log = logging.getLogger(__name__)

DEFAULT_FILE_FPS = 30.0  # used when the container does not say


class FileSource(BaseSource):
    """Frames decoded from a video file with OpenCV."""

    def __init__(
        self,
        path: str | Path,
        *,
        loop: bool = True,
        paced: bool = True,
        fit: tuple[int, int] | None = None,
    ) -> None:
        """``fit=(w, h)``: scale frames (aspect kept) to the largest size within w×h, as a
        camera configured for that resolution would deliver; None keeps the file's size."""
        super().__init__()
        self.fit = fit
        self.path = Path(path)
        self.name = f"video file {self.path}"
        self.loop = loop
        self.paced = paced
        self.fps = DEFAULT_FILE_FPS
        self._cap: cv2.VideoCapture | None = None
        self._delivered = 0  # media frames delivered, across loops and reopens
        self._t0 = 0.0
        self._closing = threading.Event()

    def _do_open(self) -> None:
        if not self.path.is_file():
            raise CameraError(f"video file not found: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"cannot decode video file {self.path}")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 1.0 <= fps <= 240.0 else DEFAULT_FILE_FPS
        self._cap = cap
        self._closing.clear()
        self._t0 = time.monotonic() - self._delivered / self.fps

    def _grab(self) -> np.ndarray | None:
        assert self._cap is not None
        ok, bgr = self._cap.read()
        return bgr if ok and bgr is not None else None

    def _do_read(self, timeout: float | None) -> tuple[np.ndarray, float] | None:
        if self._cap is None:
            raise CameraError(f"{self.name} is not open")
        bgr = self._grab()
        if bgr is None:
            if not self.loop:
                raise EndOfStream(f"{self.name}: end of file")
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            bgr = self._grab()
            if bgr is None:
                raise CameraError(f"{self.name}: no decodable frame after rewinding")
            log.debug("looped %s", self.path)
        t = self._delivered / self.fps
        if self.paced:
            delay = self._t0 + t - time.monotonic()
            if timeout is not None and delay > timeout:
                # Not due yet within the caller's patience: hand it out anyway rather than
                # drop it; pacing is best effort and never reorders frames.
                delay = timeout
            if delay > 0 and self._closing.wait(delay):
                return None
        self._delivered += 1
        if self.fit is not None:
            bgr = _fit(bgr, self.fit)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t

    def _do_close(self) -> None:
        self._closing.set()
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = img.shape[:2]
    scale = min(size[0] / w, size[1] / h)
    if abs(scale - 1.0) < 1e-3:
        return img
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(img, (nw, nh), interpolation=interp)
