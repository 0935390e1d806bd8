"""Issue 10 on the composed appliance: a reference trial of the unaffected hand, then the
affected hand scored against it — in process, with the real tracker, scorer, store and web.

The camera is a :class:`SyntheticSource` drawing the bundled open → fist → open clip; the
unaffected hand is the same clip mirrored left↔right (so the tracker sees the other hand).
The stored result must be exactly ``Decider.score(affected, reference=...)`` on the stored
landmarks, and ``flexscore score --landmarks A --reference-landmarks B`` must agree with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from daemon_helpers import wait_for
from gpiozero.pins.mock import MockFactory

from device.app import FlexscoreApp
from device.camera import SyntheticSource
from device.cli import main as cli_main
from device.config import CameraConfig, Config
from device.scoring.decide import Decider
from device.store import TrialRecord
from device.trial.io import save_track_json
from device.trial.recorder import StateChange, other_side

TRIAL_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def clips() -> dict[bool, list[np.ndarray]]:
    from device.data import SAMPLE_VIDEO
    from device.video import read_frames

    frames = [cv2.resize(rgb, (640, 480)) for _, _, rgb in read_frames(SAMPLE_VIDEO)]
    return {False: frames, True: [np.ascontiguousarray(f[:, ::-1]) for f in frames]}


@pytest.fixture
def app(
    tmp_path: Path, clips: dict[bool, list[np.ndarray]]
) -> Iterator[tuple[FlexscoreApp, dict[str, Any]]]:
    view = {"mirrored": False, "i": 0, "start": 0}  # which hand the camera shows, clip phase
    n = len(clips[False])

    def draw(i: int) -> np.ndarray:
        view["i"] = i
        return clips[bool(view["mirrored"])][(i - int(view["start"])) % n]

    cam = SyntheticSource(640, 480, 15.0, paced=True, draw=draw)
    a = FlexscoreApp(
        Config(camera=CameraConfig(stall_timeout_s=5.0)),
        state_dir=tmp_path / "state",
        pin_factory=MockFactory(),
        source_factory=lambda: cam,
        host="127.0.0.1",
        port=0,
    )
    def align(change: StateChange) -> None:  # each recording sees the clip from its first frame
        if str(change.new) == "recording":
            view["start"] = int(view["i"]) + 1

    a.start()
    try:
        assert a.recorder is not None
        a.recorder.add_listener(align)
        yield a, view
    finally:
        a.stop()


def finished(a: FlexscoreApp, trial_id: int) -> TrialRecord:
    def done() -> Any:
        t = a.store.get_trial(trial_id)
        return t if t is not None and t.status not in ("recording", "scoring") else None

    found: TrialRecord = wait_for(done, TRIAL_TIMEOUT_S, f"trial {trial_id}'s outcome", 0.1)
    return found


def record(a: FlexscoreApp, side: str, *, reference: bool) -> TrialRecord:
    before = a.store.last_trial()
    assert a.start_trial("P010", side, reference=reference)
    assert a.status()["reference"] is reference  # the page and /api/status show the role
    assert ("reference hand" in a.core.overlay_text()) is reference  # and the live video's caption
    wait_for(
        lambda: (t := a.store.last_trial()) is not None and (before is None or t.id > before.id),
        TRIAL_TIMEOUT_S,
        "the trial's row",
        0.1,
    )
    last = a.store.last_trial()
    assert last is not None
    return finished(a, last.id)


@pytest.mark.slow
def test_a_reference_trial_then_the_affected_hand_scored_against_it_as_the_cli_scores_it(
    app: tuple[FlexscoreApp, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, view = app
    seen = wait_for(lambda: a.status()["hand_in_view"], 60, "the hand in view")
    affected, unaffected = seen, other_side(seen)
    view["mirrored"] = True  # the patient shows the other hand
    wait_for(lambda: a.status()["hand_in_view"] == unaffected, 30, "the other hand in view")

    ref = record(a, affected, reference=True)
    assert ref.status == "scored", ref.reasons
    assert ref.is_reference and ref.side == unaffected and ref.score is None  # no Fugl-Meyer score
    assert ref.profile is not None and ref.profile["usable"] is True
    assert len(ref.profile["peak_closure"]) == 4

    view["mirrored"] = False
    wait_for(lambda: a.status()["hand_in_view"] == affected, 30, "the affected hand in view")
    aff = record(a, affected, reference=False)
    assert aff.status == "scored", aff.reasons
    assert aff.role == "assessment" and aff.side == affected
    s = aff.score
    assert s is not None and s.detail is not None
    assert (s.mode, s.reference_trial_id) == ("reference", ref.id)
    stored = s.detail["details"]
    assert stored["mode"] == "reference" and len(stored["reference"]["ratio"]) == 4
    # the tracker's world landmarks were kept with both trials (issue 16)
    assert aff.has_world and ref.has_world
    assert a.store.load_trial(aff.id).has_world and a.store.load_trial(ref.id).has_world

    # the daemon's result is Decider.score(affected, reference=...) on the stored landmarks
    decider = Decider(a.config, state_dir=a.state_dir)
    try:
        again = decider.score(a.store.load_trial(aff.id), reference=a.store.load_trial(ref.id))
    finally:
        decider.close()
    assert again.score == s.final_score and again.rule_score == s.rule_score
    assert again.confidence == pytest.approx(s.confidence)
    assert list(again.reasons) == s.detail["reasons"]
    assert again.details["reference"]["ratio"] == stored["reference"]["ratio"]

    # … and what `flexscore score --landmarks A --reference-landmarks B --side S` prints
    save_track_json(a.store.load_trial(aff.id), tmp_path / "affected.json")
    save_track_json(a.store.load_trial(ref.id), tmp_path / "reference.json")
    toml = tmp_path / "cli.toml"
    toml.write_text(f'[app]\nstate_dir = "{a.state_dir}"\n', encoding="utf-8")
    capsys.readouterr()
    code = cli_main(
        ["score", "--landmarks", str(tmp_path / "affected.json"), "--reference-landmarks",
         str(tmp_path / "reference.json"), "--side", affected, "--config", str(toml), "--json"]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["score"] == s.final_score and doc["rule_score"] == s.rule_score
    assert doc["details"]["mode"] == "reference"
    assert doc["confidence"] == pytest.approx(s.confidence, abs=0.01)  # JSON keeps 3 decimals
    assert np.allclose(doc["details"]["reference"]["ratio"], stored["reference"]["ratio"], atol=0.01)
