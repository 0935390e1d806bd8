"""The Raspberry Pi camera (libcamera) through picamera2.

picamera2 comes from Raspberry Pi OS's apt package (the venv uses
``--system-site-packages``) and cannot import elsewhere, so it is imported only inside
:meth:`Picamera2Source._do_open`. Off the Pi the backend is tested against
:mod:`device.camera.fake_picamera2`, installed in ``sys.modules`` by
:func:`device.camera.fake_picamera2.installed`.

Pixel format: picamera2 names formats after libcamera/DRM, whose byte order is the reverse
of the name, so ``"BGR888"`` delivers arrays whose last axis is **R, G, B** — what
:class:`~device.camera.base.Frame` promises. Frame time is the sensor timestamp (ns,
``SensorTimestamp`` metadata, CLOCK_BOOTTIME) in seconds, or ``time.monotonic()`` when the
metadata lacks it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from device.camera.base import BaseSource
from device.errors import CameraError

log = logging.getLogger(__name__)

PIXEL_FORMAT = "BGR888"  # numpy order R, G, B (see module doc)
BUFFER_COUNT = 4


class Picamera2Source(BaseSource):
    """A libcamera camera, video configuration, RGB ``width × height`` at ``fps``."""

    def __init__(self, camera_num: int = 0, width: int = 640, height: int = 480, fps: float = 30.0) -> None:
        super().__init__()
        self.camera_num = camera_num
        self.width, self.height, self.fps = width, height, fps
        self.name = f"picamera2 camera {camera_num}"
        self._cam: Any = None

    def _do_open(self) -> None:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise CameraError(
                "picamera2 is not importable: install Raspberry Pi OS's python3-picamera2 and "
                "create the venv with --system-site-packages (scripts/install-pi.sh does both)"
            ) from exc
        try:
            cam = Picamera2(self.camera_num)
        except (IndexError, RuntimeError) as exc:
            raise CameraError(f"no Raspberry Pi camera number {self.camera_num}: {exc}") from exc
        self._cam = cam
        frame_us = round(1_000_000 / self.fps)
        config = cam.create_video_configuration(
            main={"size": (self.width, self.height), "format": PIXEL_FORMAT},
            controls={"FrameDurationLimits": (frame_us, frame_us)},
            buffer_count=BUFFER_COUNT,
        )
        cam.configure(config)
        cam.start()

    def _do_read(self, timeout: float | None) -> tuple[np.ndarray, float] | None:
        cam = self._cam
        if cam is None:
            raise CameraError(f"{self.name} is not open")
        try:
            request = cam.capture_request(wait=timeout if timeout is not None else True)
        except TimeoutError:
            return None
        try:
            rgb = np.array(request.make_array("main"), dtype=np.uint8, copy=True)
            meta = request.get_metadata() or {}
        finally:
            request.release()
        ts = meta.get("SensorTimestamp")
        t = ts / 1e9 if isinstance(ts, int | float) and ts > 0 else time.monotonic()
        if rgb.ndim == 3 and rgb.shape[2] == 4:  # an XBGR8888 configuration
            rgb = np.ascontiguousarray(rgb[..., :3])
        return rgb, t

    def _do_close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is None:
            return
        try:
            cam.stop()
        finally:
            cam.close()
