"""Camera backends behind one :class:`FrameSource` interface, and the camera watchdog.

``open_source(cfg)`` builds the configured backend (a dict lookup; nothing is opened until
``open()``). picamera2 is imported only inside its own backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from device.camera.base import BaseSource, EndOfStream, Frame, FrameSource
from device.camera.file_source import FileSource
from device.camera.opencv_source import OpenCVSource
from device.camera.picamera2_source import Picamera2Source
from device.camera.synthetic_source import SyntheticSource
from device.camera.watchdog import CameraState, CameraWatchdog
from device.config import CameraConfig
from device.data import SAMPLE_VIDEO
from device.errors import CameraError

__all__ = [
    "BACKENDS",
    "DEMO_VIDEO",
    "BaseSource",
    "CameraError",
    "CameraState",
    "CameraWatchdog",
    "EndOfStream",
    "FileSource",
    "Frame",
    "FrameSource",
    "OpenCVSource",
    "Picamera2Source",
    "SyntheticSource",
    "open_source",
]

# The bundled demo clip used when ``camera.backend = "file"`` and ``camera.path`` is empty.
DEMO_VIDEO = SAMPLE_VIDEO


def _file(cfg: CameraConfig) -> FrameSource:
    path = Path(cfg.path).expanduser() if cfg.path else DEMO_VIDEO
    return FileSource(path, loop=cfg.loop, paced=cfg.paced, fit=(cfg.width, cfg.height))


BACKENDS: dict[str, Callable[[CameraConfig], FrameSource]] = {
    "picamera2": lambda c: Picamera2Source(c.camera_num, c.width, c.height, c.fps),
    "opencv": lambda c: OpenCVSource(c.device, c.width, c.height, c.fps),
    "file": _file,
    "synthetic": lambda c: SyntheticSource(c.width, c.height, c.fps, paced=c.paced),
}


def open_source(cfg: CameraConfig) -> FrameSource:
    """Build (not open) the frame source ``cfg.backend`` names."""
    try:
        make = BACKENDS[cfg.backend]
    except KeyError:
        raise CameraError(
            f"unknown camera backend {cfg.backend!r}; valid: {', '.join(sorted(BACKENDS))}"
        ) from None
    return make(cfg)
