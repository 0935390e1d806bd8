"""A fake ``picamera2`` module for running :mod:`device.camera.picamera2_source` off the Pi.

Like gpiozero's MockFactory, the fake ships in the package so every consumer can test
against it. It mimics the small part of the picamera2 API the backend uses and records
every call in :attr:`FakePicamera2.calls` (a list of ``(method, args)``; all instances also
append to the module-level :data:`instances`). Scriptable attributes:

* ``FakePicamera2.fail_init`` — the constructor raises RuntimeError (no camera);
* ``cam.timeouts`` — the next *n* ``capture_request`` calls raise TimeoutError;
* ``cam.frame`` — the array every request returns (default: a red 480×640 image).

Use :func:`installed` as a context manager: it puts the fake in ``sys.modules`` and
restores whatever was there before.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

instances: list[FakePicamera2] = []


class FakeRequest:
    """A completed request: an array and metadata; must be released."""

    def __init__(self, cam: FakePicamera2, timestamp_ns: int) -> None:
        self._cam = cam
        self._ts = timestamp_ns
        self.released = False

    def make_array(self, name: str) -> np.ndarray:
        self._cam.calls.append(("make_array", (name,)))
        return self._cam.frame.copy()

    def get_metadata(self) -> dict[str, Any]:
        return {"SensorTimestamp": self._ts}

    def release(self) -> None:
        self.released = True
        self._cam.calls.append(("release", ()))


class FakePicamera2:
    """Records calls; produces one fixed frame per request, 1/30 s apart."""

    fail_init: ClassVar[bool] = False

    def __init__(self, camera_num: int = 0) -> None:
        if FakePicamera2.fail_init:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.camera_num = camera_num
        self.calls: list[tuple[str, tuple[Any, ...]]] = [("__init__", (camera_num,))]
        self.frame = np.zeros((480, 640, 3), dtype=np.uint8)
        self.frame[..., 0] = 255
        self.timeouts = 0
        self.started = False
        self.closed = False
        self.requests: list[FakeRequest] = []
        self.config: dict[str, Any] = {}
        instances.append(self)

    def create_video_configuration(
        self, main: dict[str, Any], controls: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        self.calls.append(("create_video_configuration", (dict(main), dict(controls or {}), kw)))
        height, width = main["size"][1], main["size"][0]
        self.frame = np.zeros((height, width, 3), dtype=np.uint8)
        self.frame[..., 0] = 255
        return {"main": dict(main), "controls": dict(controls or {}), **kw}

    def configure(self, config: dict[str, Any]) -> None:
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        self.calls.append(("configure", (config,)))
        self.config = config

    def start(self) -> None:
        self.calls.append(("start", ()))
        self.started = True

    def capture_request(self, wait: Any = None) -> FakeRequest:
        self.calls.append(("capture_request", (wait,)))
        if not self.started:
            raise RuntimeError("Camera is not running")
        if self.timeouts > 0:
            self.timeouts -= 1
            raise TimeoutError("fake: no frame in time")
        req = FakeRequest(self, 1_000_000_000 + len(self.requests) * 33_333_333)
        self.requests.append(req)
        return req

    def stop(self) -> None:
        self.calls.append(("stop", ()))
        self.started = False

    def close(self) -> None:
        self.calls.append(("close", ()))
        self.closed = True

    def method_calls(self) -> list[str]:
        """Just the method names of :attr:`calls`, in order."""
        return [name for name, _ in self.calls]


def make_module() -> types.ModuleType:
    """A module object that looks like ``picamera2`` to ``from picamera2 import Picamera2``."""
    mod = types.ModuleType("picamera2")
    mod.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    mod.__dict__["__fake__"] = True
    return mod


@contextmanager
def installed() -> Iterator[types.ModuleType]:
    """Install the fake as ``sys.modules['picamera2']``; restore the previous entry after."""
    previous = sys.modules.get("picamera2")
    instances.clear()
    FakePicamera2.fail_init = False
    sys.modules["picamera2"] = mod = make_module()
    try:
        yield mod
    finally:
        FakePicamera2.fail_init = False
        if previous is None:
            sys.modules.pop("picamera2", None)
        else:
            sys.modules["picamera2"] = previous
