"""The recorder's reference trial (issue 10): the unaffected hand goes through the same states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from test_recorder import FakeClock, hand

from device.config import TrialConfig
from device.trial.quality import QualityReason, QualityReport
from device.trial.recorder import (
    RecorderState,
    RecorderTiming,
    StateChange,
    TrialInfo,
    TrialRecorder,
    other_side,
)
from device.trial.types import Trial

S = RecorderState


@dataclass
class Measured:
    """What a root returns for a reference: no score, scorable when the hand is usable."""

    scorable: bool
    reasons: tuple[str, ...] = ()
    score: None = None


def run(rec: TrialRecorder, clock: FakeClock) -> None:
    clock.now += 3.0
    rec.tick()
    for _ in range(190):
        clock.now += 1 / 30
        rec.on_observation(hand(clock.now))


def make(usable: bool = True) -> tuple[TrialRecorder, FakeClock, list[StateChange], list[Any]]:
    clock = FakeClock()
    calls: list[Any] = []
    gated: list[Trial] = []

    def score_info(trial: Trial, info: TrialInfo) -> Any:
        calls.append((trial.side, info.role, info.patient_id))
        if info.is_reference:
            return Measured(usable, () if usable else ("the reference hand hardly closed",))
        return Measured(True)

    def quality(trial: Trial) -> QualityReport:
        gated.append(trial)
        return QualityReport(reasons=(), metrics={"side": trial.side})

    rec = TrialRecorder(
        lambda t: pytest.fail("score_fn is not used when info_score_fn is given"),
        info_score_fn=score_info,
        trial_config=TrialConfig(duration_s=6.0, side="left"),
        timing=RecorderTiming(recording_s=6.0),
        quality_fn=quality,
        submit=lambda fn: fn(),
        clock=clock,
    )
    changes: list[StateChange] = []
    rec.add_listener(changes.append)
    calls.append(gated)
    return rec, clock, changes, calls


def test_a_reference_trial_records_the_other_hand_through_the_same_states() -> None:
    rec, clock, changes, calls = make()
    gated = calls.pop(0)
    assert rec.start(side="left", patient_id=7, reference=True)
    snap = rec.snapshot()
    assert snap["state"] == "countdown" and snap["reference"] is True
    run(rec, clock)
    assert [c.new for c in changes] == [S.COUNTDOWN, S.RECORDING, S.SCORING, S.RESULT]
    assert all(c.info is not None and c.info.role == "reference" for c in changes)
    assert all(c.info is not None and c.info.side == "right" for c in changes)  # the unaffected hand
    assert gated[0].side == "right"  # the gates check the hand that was recorded
    assert calls == [("right", "reference", 7)]
    assert rec.snapshot()["reference"] is True  # still shown with its result
    # the next trial is an assessment of the affected (configured) side
    clock.now += 20.0
    rec.tick()
    assert rec.start(patient_id=7)
    assert rec.snapshot()["reference"] is False
    run(rec, clock)
    assert calls[-1] == ("left", "assessment", 7)
    assert rec.state is S.RESULT


def test_an_unusable_reference_is_reported_as_not_scorable() -> None:
    rec, clock, _, _ = make(usable=False)
    rec.start(side="right", reference=True)
    run(rec, clock)
    assert rec.state is S.REJECTED
    info = rec.info
    assert info is not None and info.is_reference and info.side == "left"
    assert info.reasons == (
        QualityReason("the reference hand hardly closed", "the reference hand hardly closed"),
    )
    assert info.trial is not None  # the recording is kept (stored, and reported later)


def test_a_reference_needs_a_side_and_waits_its_turn() -> None:
    clock = FakeClock()
    rec = TrialRecorder(
        lambda t: Measured(True), trial_config=TrialConfig(), clock=clock, submit=lambda fn: fn()
    )
    with pytest.raises(ValueError, match="affected side"):
        rec.start(reference=True)
    assert rec.state is S.IDLE and rec.info is None
    assert rec.start(side="left")
    assert not rec.start(side="left", reference=True)  # one trial at a time
    assert rec.info is not None and rec.info.role == "assessment"
    assert [other_side("left"), other_side("right"), other_side(None)] == ["right", "left", None]
