"""Trial state machine: fed observations, a fake clock, inline or deferred scoring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from device.config import TrialConfig
from device.trial.quality import QualityReason, QualityReport
from device.trial.recorder import (
    TRANSITIONS,
    RecorderState,
    RecorderTiming,
    StateChange,
    TrialRecorder,
)
from device.trial.types import Trial
from device.vision.types import HandObservation

S = RecorderState


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeResult:
    score: int | None
    reasons: tuple[Any, ...] = ()


@dataclass
class Harness:
    rec: TrialRecorder
    clock: FakeClock
    changes: list[StateChange] = field(default_factory=list)
    scored: list[Trial] = field(default_factory=list)
    pending: list[Callable[[], None]] = field(default_factory=list)

    @property
    def states(self) -> list[RecorderState]:
        return [c.new for c in self.changes]

    def feed(self, seconds: float, fps: float = 30.0, detected: bool = True) -> None:
        """Advance the clock frame by frame, feeding one observation per frame."""
        n = round(seconds * fps)
        for _ in range(n):
            self.clock.now += 1 / fps
            self.rec.on_observation(hand(self.clock.now, detected))

    def run_pending(self) -> None:
        while self.pending:
            self.pending.pop(0)()


def hand(t: float, detected: bool = True) -> HandObservation:
    rng = np.random.default_rng(int(t * 1000) % 2**32)
    lm = (rng.uniform(200, 400, size=(21, 3))).astype(np.float32)
    lm[:, 2] = 0.0
    return HandObservation(
        frame_index=0, t=t, image_size=(640, 480), detected=detected,
        presence=0.99 if detected else 0.0, handedness="Right" if detected else None,
        handedness_score=0.9, landmarks=lm if detected else None,
        world_landmarks=world_of(lm) if detected else None,
    )  # fmt: skip


def world_of(lm: np.ndarray) -> np.ndarray:
    """The tracker's world landmarks for these image landmarks (metres about the wrist)."""
    return ((lm - lm[:1]) * 3e-4).astype(np.float32)


def make(
    score: Callable[[Trial], Any] | None = None,
    *,
    deferred: bool = False,
    quality: Callable[[Trial], QualityReport] | None = None,
) -> Harness:
    clock = FakeClock()
    h: Harness

    def default_score(trial: Trial) -> FakeResult:
        h.scored.append(trial)
        return FakeResult(2)

    def submit(fn: Callable[[], None]) -> None:
        if deferred:
            h.pending.append(fn)
        else:
            fn()

    rec = TrialRecorder(
        score or default_score,
        trial_config=TrialConfig(duration_s=6.0),
        timing=RecorderTiming(recording_s=6.0),
        quality_fn=quality,
        submit=submit,
        clock=clock,
    )
    h = Harness(rec, clock)
    rec.add_listener(h.changes.append)
    return h


def test_a_whole_trial_by_button() -> None:
    h = make()
    assert h.rec.press() is S.COUNTDOWN
    assert h.rec.remaining() == pytest.approx(3.0)
    h.feed(1.0)  # frames during the countdown are not recorded
    assert h.rec.state is S.COUNTDOWN
    h.feed(2.1)
    assert h.rec.state is S.RECORDING
    h.feed(6.0)
    assert h.states == [S.COUNTDOWN, S.RECORDING, S.SCORING, S.RESULT]
    (trial,) = h.scored
    assert 170 <= trial.num_frames <= 185 and trial.duration == pytest.approx(5.9, abs=0.2)
    # each frame's world landmarks are kept with its image landmarks
    assert trial.has_world and trial.world is not None
    np.testing.assert_array_equal(trial.world, np.stack([world_of(f) for f in trial.landmarks]))
    info = h.rec.info
    assert info is not None and info.result == FakeResult(2) and info.quality is not None
    assert info.quality.ok and info.origin == "button" and info.finished_at is not None
    h.clock.now += 10.0
    h.rec.tick()
    assert h.states[-1] is S.IDLE


def test_second_press_stops_recording_early_and_scores() -> None:
    h = make()
    h.rec.start(side="left", origin="web")
    h.clock.now += 3.0
    h.rec.tick()
    h.feed(3.0)
    assert h.rec.press() is S.RESULT
    assert h.scored[0].num_frames == 90 and h.scored[0].side == "left"


def test_a_recording_stopped_after_one_second_is_rejected_as_stopped_early() -> None:
    h = make()
    h.rec.start(side="left", origin="button")
    h.clock.now += 3.0
    h.rec.tick()
    h.feed(1.0)
    assert h.rec.press() is S.REJECTED
    info = h.rec.info
    assert info is not None and info.reasons[0].code == "stopped_early"
    assert "record again" in info.reasons[0].message


def test_press_during_countdown_cancels_and_start_is_refused_while_busy() -> None:
    h = make()
    assert h.rec.start()
    assert not h.rec.start()  # one trial at a time
    assert h.rec.busy
    assert h.rec.press() is S.CANCELLED
    info = h.rec.info
    assert info is not None and info.reasons[0].code == "cancelled"
    h.clock.now += 2.0
    h.rec.tick()
    assert h.rec.state is S.IDLE and not h.rec.cancel()


def test_cancel_during_scoring_discards_the_late_result() -> None:
    h = make(deferred=True)
    h.rec.start()
    h.clock.now += 3.0
    h.rec.tick()
    h.feed(6.1)
    assert h.rec.state is S.SCORING and len(h.pending) == 1
    assert h.rec.cancel("web cancel")
    h.run_pending()  # the scorer finishes after the cancel
    assert h.rec.state is S.CANCELLED and h.states[-1] is S.CANCELLED


def test_scoring_runs_where_submit_sends_it() -> None:
    h = make(deferred=True)
    h.rec.press()
    h.clock.now += 3.0
    h.rec.tick()
    h.feed(6.1)
    assert h.rec.state is S.SCORING and h.scored == []  # not on the feeding thread
    h.run_pending()
    assert h.rec.state is S.RESULT and len(h.scored) == 1


def test_quality_gates_reject_with_reasons_and_skip_scoring() -> None:
    h = make()
    h.rec.start()
    h.clock.now += 3.0
    h.rec.tick()
    h.feed(6.1, detected=False)
    assert h.rec.state is S.REJECTED and h.scored == []
    info = h.rec.info
    assert info is not None and "no_hand" in [r.code for r in info.reasons]
    assert info.trial is not None and info.trial.num_frames > 0
    assert h.rec.snapshot()["reasons"] == ["no_hand"]


def test_not_scorable_result_and_scoring_fault() -> None:
    h = make(lambda t: FakeResult(None, (QualityReason("low_confidence", "unsure"),)))
    h.rec.start()
    h.clock.now += 3.0
    h.rec.tick()
    h.feed(6.1)
    info = h.rec.info
    assert h.rec.state is S.REJECTED and info is not None
    assert [r.code for r in info.reasons] == ["low_confidence"]

    def broken(trial: Trial) -> Any:
        raise RuntimeError("model file vanished")

    h = make(broken)
    h.rec.start()
    h.clock.now += 3.0
    h.rec.tick()
    h.feed(6.1)
    info = h.rec.info
    assert h.rec.state is S.ERROR and info is not None
    assert info.reasons[0].code == "scoring_failed" and "vanished" in info.reasons[0].message


def test_no_frames_while_recording_is_a_rejection_by_tick() -> None:
    h = make()
    h.rec.start()
    h.clock.now += 3.0
    h.rec.tick()
    h.feed(1.0)
    h.clock.now += 2.5  # camera stalled: only the ticker runs
    h.rec.tick()
    info = h.rec.info
    assert h.rec.state is S.REJECTED and info is not None and info.reasons[0].code == "camera_lost"


def test_fail_rejects_a_running_trial_and_press_in_outcome_starts_anew() -> None:
    h = make()
    h.rec.start()
    assert h.rec.fail("camera_lost", "the camera stopped")
    assert h.rec.state is S.REJECTED and not h.rec.fail("x", "y")  # not running any more
    assert h.rec.press() is S.COUNTDOWN  # a new trial straight from the outcome
    info = h.rec.info
    assert info is not None and info.seq == 2


def test_every_transition_is_in_the_table() -> None:
    h = make()
    for _ in range(3):
        h.rec.press()
        h.clock.now += 3.0
        h.rec.tick()
        h.feed(6.1)
        h.clock.now += 10.0
        h.rec.tick()
    for c in h.changes:
        assert c.new in TRANSITIONS[c.old]
    with pytest.raises(RuntimeError, match="no transition idle"):
        h.rec._transition(S.RESULT, None)


def test_listener_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    h = make()

    def bad(change: StateChange) -> None:
        raise ValueError("panel unplugged")

    h.rec.add_listener(bad)
    h.rec.press()
    assert h.rec.state is S.COUNTDOWN and "listener" in caplog.text
    h.rec.remove_listener(bad)


def test_default_pool_scores_off_thread_and_close_is_idempotent() -> None:
    import threading

    done = threading.Event()
    threads: list[str] = []

    def score(trial: Trial) -> FakeResult:
        threads.append(threading.current_thread().name)
        return FakeResult(1)

    clock = FakeClock()
    rec = TrialRecorder(score, clock=clock)
    rec.add_listener(lambda c: done.set() if c.new is S.RESULT else None)
    with rec:
        rec.start()
        clock.now += 3.0
        rec.tick()
        for _ in range(200):
            clock.now += 1 / 30
            rec.on_observation(hand(clock.now))
        assert done.wait(10)
        assert threads and threads[0].startswith("scoring")
        rec.start_ticker(0.01)
        assert "result" in repr(rec)
    rec.close()
    assert not rec.start()  # closed
