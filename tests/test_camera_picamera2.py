"""picamera2 backend against the packaged fake module (and for real on a Pi)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from device.camera import Picamera2Source
from device.camera import fake_picamera2 as fake
from device.errors import CameraError


def test_opens_video_configuration_reads_rgb_and_releases_requests() -> None:
    with fake.installed():
        src = Picamera2Source(camera_num=0, width=320, height=240, fps=30)
        with src:
            frame = src.read(timeout=1.0)
            frame2 = src.read(timeout=1.0)
        cam = fake.instances[-1]
    assert cam.method_calls() == [
        "__init__", "create_video_configuration", "configure", "start",
        "capture_request", "make_array", "release",
        "capture_request", "make_array", "release",
        "stop", "close",
    ]  # fmt: skip
    _, (main, controls, kw) = cam.calls[1]
    assert main == {"size": (320, 240), "format": "BGR888"}
    assert controls == {"FrameDurationLimits": (33333, 33333)}
    assert kw == {"buffer_count": 4}
    assert cam.calls[4] == ("capture_request", (1.0,))
    assert all(r.released for r in cam.requests)
    assert frame is not None and frame2 is not None
    assert frame.rgb.shape == (240, 320, 3) and frame.rgb.dtype == np.uint8
    assert tuple(frame.rgb[0, 0]) == (255, 0, 0)
    assert frame.t == pytest.approx(1.0) and frame2.t - frame.t == pytest.approx(1 / 30, rel=1e-3)


def test_timeout_returns_none_and_close_is_idempotent() -> None:
    with fake.installed():
        src = Picamera2Source()
        src.open()
        cam = fake.instances[-1]
        cam.timeouts = 1
        assert src.read(timeout=0.1) is None
        assert src.read(timeout=0.1) is not None
        src.close()
        src.close()
    assert cam.method_calls().count("close") == 1


def test_reopen_after_close_makes_a_new_camera() -> None:
    with fake.installed():
        src = Picamera2Source()
        with src:
            pass
        with src:
            assert src.read(timeout=1.0) is not None
        assert len(fake.instances) == 2 and all(c.closed for c in fake.instances)


def test_missing_camera_and_missing_module_are_camera_errors() -> None:
    with fake.installed():
        fake.FakePicamera2.fail_init = True
        with pytest.raises(CameraError, match="no Raspberry Pi camera number 0"):
            Picamera2Source().open()
    saved = sys.modules.get("picamera2")
    sys.modules["picamera2"] = None  # type: ignore[assignment]  # makes the import fail
    try:
        with pytest.raises(CameraError, match="python3-picamera2"):
            Picamera2Source().open()
    finally:
        if saved is None:
            del sys.modules["picamera2"]
        else:
            sys.modules["picamera2"] = saved


def test_fake_is_removed_after_the_context() -> None:
    before = sys.modules.get("picamera2")
    with fake.installed() as mod:
        assert sys.modules["picamera2"] is mod
    assert sys.modules.get("picamera2") is before


@pytest.mark.hardware
@pytest.mark.skipif(
    importlib.util.find_spec("picamera2") is None, reason="needs a Raspberry Pi with picamera2"
)
def test_real_camera_delivers_frames_and_reopens() -> None:  # pragma: no cover - on a Pi
    src = Picamera2Source(width=640, height=480, fps=30)
    for _ in range(2):  # the second round checks the camera is released on close
        with src:
            frame = src.read(timeout=5.0)
            assert frame is not None and frame.rgb.shape == (480, 640, 3)
