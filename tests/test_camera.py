"""Camera backends: contract of FrameSource, file/OpenCV/synthetic sources, open_source."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from device.camera import (
    BACKENDS,
    EndOfStream,
    FileSource,
    FrameSource,
    OpenCVSource,
    Picamera2Source,
    SyntheticSource,
    open_source,
)
from device.config import CameraConfig
from device.errors import CameraError


def write_video(path: Path, n: int = 5, fps: float = 10.0, size: tuple[int, int] = (64, 48)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(n):
        img = np.zeros((size[1], size[0], 3), np.uint8)
        img[..., 2] = 40 * i  # BGR: red grows with the frame number
        writer.write(img)
    writer.release()
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "clip.avi")


def test_synthetic_source_delivers_rgb_frames_and_records_calls() -> None:
    src = SyntheticSource(32, 24, fps=10)
    assert isinstance(src, FrameSource)
    with src:
        frames = [src.read(timeout=1.0) for _ in range(3)]
    assert all(f is not None for f in frames)
    assert [f.index for f in frames if f] == [0, 1, 2]
    assert [f.t for f in frames if f] == pytest.approx([0.0, 0.1, 0.2])
    first = frames[0]
    assert first is not None and first.rgb.shape == (24, 32, 3) and first.rgb.dtype == np.uint8
    assert first.size == (32, 24)
    assert src.calls == ["open", "read", "read", "read", "close"]
    assert "closed" in repr(src)


def test_close_is_idempotent_and_source_reopens() -> None:
    src = SyntheticSource(16, 16)
    src.open()
    src.open()  # no-op
    src.close()
    src.close()  # no-op
    assert src.calls == ["open", "close"]
    with pytest.raises(CameraError, match="not open"):
        src.read()
    with src:
        frame = src.read(timeout=1.0)
    assert frame is not None and frame.index == 0


def test_synthetic_scripted_stall_failures_and_end() -> None:
    src = SyntheticSource(16, 16, max_frames=2)
    with src:
        src.stall()
        assert src.stalled and src.read(timeout=0.0) is None
        src.resume()
        src.fail_reads(1)
        with pytest.raises(CameraError, match="scripted read"):
            src.read(timeout=0.0)
        assert src.read(timeout=0.0) is not None
        assert src.read(timeout=0.0) is not None
        with pytest.raises(EndOfStream):
            src.read(timeout=0.0)
    src.fail_opens(1)
    with pytest.raises(CameraError, match="scripted open"):
        src.open()
    assert not src.is_open


def test_synthetic_custom_drawing_and_bad_frames_are_rejected() -> None:
    src = SyntheticSource(8, 8, draw=lambda i: np.zeros((8, 8), np.uint8))
    with src, pytest.raises(CameraError, match=r"expected uint8 \[H, W, 3\]"):
        src.read(timeout=0.0)


def test_file_source_plays_once_in_rgb_then_ends(video: Path) -> None:
    with FileSource(video, loop=False, paced=False) as src:
        frames = []
        with pytest.raises(EndOfStream):
            while True:
                f = src.read()
                assert f is not None
                frames.append(f)
    assert len(frames) == 5
    assert src.fps == pytest.approx(10.0)
    assert [f.t for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    # the red channel grows with the frame number: channel order is RGB
    reds = [float(f.rgb[..., 0].mean()) for f in frames]
    assert reds == sorted(reds) and reds[-1] > 100
    assert float(frames[-1].rgb[..., 2].mean()) < 20


def test_file_source_loops_with_continuous_time(video: Path) -> None:
    with FileSource(video, loop=True, paced=False) as src:
        frames = [src.read() for _ in range(12)]
    assert [f.index for f in frames if f] == list(range(12))
    times = [f.t for f in frames if f]
    assert np.all(np.diff(times) > 0)


def test_file_source_paced_reads_and_reopen(video: Path) -> None:
    src = FileSource(video, loop=True, paced=True)
    with src:
        assert src.read(timeout=1.0) is not None
    with src:  # reopen after close continues the media clock
        f = src.read(timeout=1.0)
    assert f is not None and f.index == 1 and f.t == pytest.approx(0.1)


def test_file_source_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="not found"):
        FileSource(tmp_path / "missing.mp4").open()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    with pytest.raises(CameraError, match=r"junk\.mp4"):
        FileSource(junk).open()


def test_opencv_source_reads_through_videocapture(video: Path) -> None:
    # A file path exercises the same capture/convert path as a USB camera.
    src = OpenCVSource(str(video), 64, 48, 10)
    src._target()  # a path stays a path
    assert OpenCVSource("2")._target() == 2
    with src:
        f = src.read()
    assert f is not None and f.rgb.shape == (48, 64, 3)


def test_opencv_source_missing_device_is_a_camera_error() -> None:
    with pytest.raises(CameraError, match="/dev/video99"):
        OpenCVSource("/dev/video99").open()


def test_open_source_is_a_dict_lookup(video: Path) -> None:
    assert set(BACKENDS) == {"picamera2", "opencv", "file", "synthetic"}
    assert isinstance(open_source(CameraConfig(backend="synthetic")), SyntheticSource)
    assert isinstance(open_source(CameraConfig(backend="opencv", device=1)), OpenCVSource)
    assert isinstance(open_source(CameraConfig(backend="picamera2")), Picamera2Source)
    src = open_source(CameraConfig(backend="file", path=str(video), loop=False))
    assert isinstance(src, FileSource) and src.path == video and not src.loop
    # building a backend opens nothing
    assert not src.is_open
    bad = CameraConfig()
    object.__setattr__(bad, "backend", "gopro")  # bypass validation to reach the lookup
    with pytest.raises(CameraError, match="unknown camera backend 'gopro'"):
        open_source(bad)
