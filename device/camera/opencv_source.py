"""A USB (UVC) camera through OpenCV's V4L2 backend.

``device`` is an index (``0`` → ``/dev/video0``) or a path (``/dev/video2`` or a stable
``/dev/v4l/by-id/...`` link). OpenCV's ``read()`` cannot be given a timeout: a stalled V4L2
device returns after the driver's own select timeout (about 10 s), which then counts as a
missed frame (``read`` returns None); the watchdog's stall time therefore bounds how soon a
stall is *reported*, not how long one blocked read takes. Frames are converted BGR → RGB.
"""

from __future__ import annotations

import logging
import time

import cv2
import numpy as np

from device.camera.base import BaseSource
from device.errors import CameraError

log = logging.getLogger(__name__)


class OpenCVSource(BaseSource):
    """A V4L2 camera opened with ``cv2.VideoCapture``."""

    def __init__(self, device: int | str = 0, width: int = 640, height: int = 480, fps: float = 30.0) -> None:
        super().__init__()
        self.device = device
        self.width, self.height, self.fps = width, height, fps
        self.name = f"opencv camera {device}"
        self._cap: cv2.VideoCapture | None = None

    def _target(self) -> int | str:
        dev = self.device
        if isinstance(dev, str) and dev.isdigit():
            return int(dev)
        return dev

    def _do_open(self) -> None:
        target = self._target()
        v4l2 = isinstance(target, int) or target.startswith("/dev/")
        cap = cv2.VideoCapture(target, cv2.CAP_V4L2 if v4l2 else cv2.CAP_ANY)
        if not cap.isOpened():
            cap.release()
            raise CameraError(
                f"cannot open camera {self.device}: no such device, or it is busy "
                "(check the cable, `v4l2-ctl --list-devices`, and membership of group 'video')"
            )
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # latest frame, not a backlog
        got = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        if got != (self.width, self.height):
            log.warning("%s delivers %dx%d instead of %dx%d", self.name, *got, self.width, self.height)
        self._cap = cap

    def _do_read(self, timeout: float | None) -> tuple[np.ndarray, float] | None:
        if self._cap is None:
            raise CameraError(f"{self.name} is not open")
        ok, bgr = self._cap.read()
        t = time.monotonic()
        if not ok or bgr is None:
            return None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t

    def _do_close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
