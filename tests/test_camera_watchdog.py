"""Camera watchdog: restarts a stalled or failing source with paced back-off.

No sleeps: the tests wait on events set by the watchdog's callbacks (with generous
limits that only matter when something is broken) and use millisecond configured times.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from device.camera import CameraState, CameraWatchdog, Frame, SyntheticSource
from device.config import CameraConfig
from device.errors import CameraError

LIMIT = 10.0  # seconds; a correct run needs far less


class Recorder:
    """Collects states and frames; lets a test wait for a condition."""

    def __init__(self) -> None:
        self.states: list[CameraState] = []
        self.frames: list[Frame] = []
        self.cond = threading.Condition()

    def on_state(self, state: CameraState) -> None:
        with self.cond:
            self.states.append(state)
            self.cond.notify_all()

    def on_frame(self, frame: Frame) -> None:
        with self.cond:
            self.frames.append(frame)
            self.cond.notify_all()

    def wait_for(self, pred: object) -> None:
        with self.cond:
            assert self.cond.wait_for(pred, LIMIT), f"timed out; states={self.states}"  # type: ignore[arg-type]


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def source() -> SyntheticSource:
    return SyntheticSource(16, 16, fps=1000)


@pytest.fixture
def dog(rec: Recorder, source: SyntheticSource) -> Iterator[CameraWatchdog]:
    wd = CameraWatchdog(
        lambda: source,
        rec.on_frame,
        on_state=rec.on_state,
        stall_timeout_s=0.05,
        restart_delay_s=0.001,
        max_restart_delay_s=0.004,
        max_restarts=3,
        restart_window_s=60,
        poll_s=0.01,
    )
    yield wd
    wd.stop()


def test_frames_flow_and_stop_closes_the_source(rec: Recorder, source: SyntheticSource) -> None:
    # a generous stall time: "healthy" must not depend on how busy the machine is
    dog = CameraWatchdog(lambda: source, rec.on_frame, on_state=rec.on_state, stall_timeout_s=60)
    dog.start()
    rec.wait_for(lambda: len(rec.frames) >= 5)
    assert dog.state is CameraState.OK and dog.healthy and dog.fps > 0
    dog.stop()
    assert rec.states[0] is CameraState.OK and rec.states[-1] is CameraState.STOPPED
    assert not source.is_open and source.calls[-1] == "close"
    assert not dog.healthy
    dog.stop()  # idempotent


def test_stall_is_lost_then_restarted_and_frames_resume(
    dog: CameraWatchdog, rec: Recorder, source: SyntheticSource
) -> None:
    dog.start()
    rec.wait_for(lambda: len(rec.frames) >= 1)
    source.stall()
    rec.wait_for(lambda: CameraState.RESTARTING in rec.states)
    assert rec.states[:3] == [CameraState.OK, CameraState.LOST, CameraState.RESTARTING]
    n = len(rec.frames)
    source.resume()
    rec.wait_for(lambda: len(rec.frames) > n and rec.states[-1] is CameraState.OK)
    assert dog.restarts >= 1
    assert source.calls.count("open") >= 2  # closed and reopened


def test_failing_opens_back_off_within_the_budget(
    dog: CameraWatchdog, rec: Recorder, source: SyntheticSource
) -> None:
    source.fail_opens(6)
    dog.start()
    rec.wait_for(lambda: CameraState.OK in rec.states)
    assert rec.states[0] is CameraState.LOST
    # doubling back-off, capped; after 3 restarts in the window every wait is the cap
    assert list(dog.delays)[:6] == [0.001, 0.002, 0.004, 0.004, 0.004, 0.004]
    assert dog.restarts == 6


def test_read_errors_restart_the_source(dog: CameraWatchdog, rec: Recorder, source: SyntheticSource) -> None:
    source.fail_reads(1)
    dog.start()
    rec.wait_for(lambda: len(rec.frames) >= 1)
    assert rec.states[:3] == [CameraState.LOST, CameraState.RESTARTING, CameraState.OK]


def test_end_of_a_finite_source_stops_the_loop(rec: Recorder) -> None:
    src = SyntheticSource(8, 8, max_frames=3)
    wd = CameraWatchdog(lambda: src, rec.on_frame, on_state=rec.on_state, poll_s=0.01)
    wd.run()  # returns by itself
    assert len(rec.frames) == 3 and rec.states == [CameraState.OK, CameraState.STOPPED]


def test_consumer_errors_do_not_kill_the_loop(rec: Recorder) -> None:
    src = SyntheticSource(8, 8, max_frames=3)

    def bad(frame: Frame) -> None:
        rec.on_frame(frame)
        raise ValueError("tracker bug")

    wd = CameraWatchdog(lambda: src, bad, poll_s=0.01)
    wd.run()
    assert len(rec.frames) == 3


def test_stop_during_back_off_returns_promptly(rec: Recorder) -> None:
    def broken() -> SyntheticSource:
        raise CameraError("unplugged")

    stop = threading.Event()
    wd = CameraWatchdog(
        broken, rec.on_frame, on_state=rec.on_state, restart_delay_s=3600,
        max_restart_delay_s=3600, stop_event=stop,
    )  # fmt: skip
    wd.start()
    rec.wait_for(lambda: CameraState.LOST in rec.states)
    wd.stop(timeout=LIMIT)
    assert rec.states[-1] is CameraState.STOPPED


def test_from_config_copies_the_timing(rec: Recorder) -> None:
    cfg = CameraConfig(stall_timeout_s=2.0, restart_delay_s=0.5, max_restarts=7)
    wd = CameraWatchdog.from_config(cfg, lambda: SyntheticSource(), rec.on_frame)
    assert (wd.stall_timeout_s, wd.restart_delay_s, wd.max_restarts) == (2.0, 0.5, 7)
    assert "starting" in repr(wd)


def _wait(pred: object, what: str) -> None:
    import time

    deadline = time.monotonic() + LIMIT
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_hung_frame_consumer_makes_the_loop_unresponsive_until_it_returns() -> None:
    """systemd's WATCHDOG=1 keys on responsive(): a tracker stuck in a frame stops it."""
    now = [0.0]
    entered, release = threading.Event(), threading.Event()

    def hang(frame: Frame) -> None:
        entered.set()
        release.wait(LIMIT)

    src = SyntheticSource(32, 24, 30.0)
    wd = CameraWatchdog(lambda: src, hang, clock=lambda: now[0], poll_s=0.01, hang_grace_s=5.0)
    wd.start()
    try:
        assert entered.wait(LIMIT)
        assert wd.responsive()
        now[0] += 4.0
        assert wd.responsive()  # within the grace
        now[0] += 2.0
        assert not wd.responsive()  # stuck in the consumer past poll + grace
        release.set()
        _wait(wd.responsive, "the loop to step again")
    finally:
        release.set()
        wd.stop()
    assert not wd.responsive()  # a stopped loop never pets the watchdog


def test_a_long_back_off_is_not_a_hang() -> None:
    now = [0.0]
    src = SyntheticSource(32, 24, 30.0)
    src.fail_opens(100)
    states = Recorder()
    wd = CameraWatchdog(
        lambda: src, states.on_frame, on_state=states.on_state, clock=lambda: now[0],
        restart_delay_s=30.0, max_restart_delay_s=30.0, hang_grace_s=5.0,
    )  # fmt: skip
    wd.start()
    try:
        _wait(lambda: len(wd.delays) == 1, "the first back-off")
        now[0] += 34.0  # inside the 30 s wait it announced, plus the grace
        assert wd.responsive() and wd.state is CameraState.LOST
        now[0] += 2.0
        assert not wd.responsive()
    finally:
        wd.stop()  # ends the back-off wait at once
