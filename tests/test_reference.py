"""Scoring against the unaffected hand (issue 10): rule/decision with a reference trial, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from trial_helpers import blank_trial, synth

from device.cli import main
from device.config import Config
from device.scoring.decide import Decider
from device.trial.io import save_track_json
from device.trial.synthetic import make_pair, make_trial


@pytest.fixture(scope="module")
def decider() -> Decider:
    return Decider(Config())


def test_reach_scales_the_same_trial() -> None:
    full, _ = make_trial(2, np.random.default_rng(4), noise=False)
    again, _ = make_trial(2, np.random.default_rng(4), noise=False, reach=1.0)
    limited, info = make_trial(2, np.random.default_rng(4), noise=False, reach=0.5)
    assert np.array_equal(full.landmarks, again.landmarks)
    assert info["reach"] == 0.5 and not np.allclose(full.landmarks, limited.landmarks)
    with pytest.raises(ValueError, match="reach"):
        make_trial(2, np.random.default_rng(4), reach=0.0)


def test_limited_hands_score_2_with_the_reference_and_lower_without(decider: Decider) -> None:
    rng = np.random.default_rng(101)
    pairs = [make_pair(2, rng, reach_affected=0.55, reach_reference=0.55) for _ in range(6)]
    absolute = [decider.score(aff).score for aff, _ref, _ in pairs]
    relative = [decider.score(aff, reference=ref) for aff, ref, _ in pairs]
    assert all(r.details["mode"] == "reference" for r in relative)
    assert sum(s is not None and s < 2 for s in absolute) >= 5, absolute
    assert sum(r.score == 2 for r in relative) >= 5, [r.score for r in relative]
    changed = [r for r, a in zip(relative, absolute, strict=True) if r.score != a]
    assert all(r.review and "unaffected hand" in r.reasons[-1] for r in changed)


def test_a_normal_reference_keeps_the_absolute_score(decider: Decider) -> None:
    rng = np.random.default_rng(202)
    for score in (0, 1, 2, 1):
        aff, ref, _ = make_pair(score, rng)
        absolute, relative = decider.score(aff), decider.score(aff, reference=ref)
        assert relative.details["mode"] == "reference"
        assert relative.score == absolute.score
        assert len(relative.details["reference"]["ratio"]) == 4


def test_unscorable_reference_falls_back_to_absolute_mode(decider: Decider) -> None:
    trial = synth(1, seed=5)
    res = decider.score(trial, reference=blank_trial())
    assert res.details["mode"] == "absolute"
    assert res.score == decider.score(trial).score
    assert any("reference trial of the unaffected hand is not scorable" in r for r in res.reasons)


def test_reference_that_hardly_moves_falls_back_to_absolute_mode(decider: Decider) -> None:
    trial = synth(1, seed=6)
    res = decider.score(trial, reference=synth(0, seed=7))
    assert res.details["mode"] == "absolute"
    assert any("hardly closed" in r for r in res.reasons)


def test_cli_landmarks_with_reference_landmarks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], decider: Decider
) -> None:
    aff, ref, _ = make_pair(2, np.random.default_rng(303), reach_affected=0.55, reach_reference=0.55)
    save_track_json(aff, tmp_path / "aff.json")
    save_track_json(ref, tmp_path / "ref.json")
    args = ["score", "--landmarks", str(tmp_path / "aff.json")]
    assert main([*args, "--reference-landmarks", str(tmp_path / "ref.json"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["details"]["mode"] == "reference"
    assert doc["score"] == decider.score(aff, reference=ref).score
    assert main([*args, "--reference-landmarks", str(tmp_path / "ref.json")]) == 0
    assert "[reference mode]" in capsys.readouterr().out


def test_cli_reference_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_track_json(synth(1, seed=9), tmp_path / "t.json")
    ref = str(tmp_path / "t.json")
    assert main(["score", "--batch", str(tmp_path), "--reference-landmarks", ref]) == 2
    assert "not --batch" in capsys.readouterr().err
    assert main(["score", "--landmarks", ref, "--reference-landmarks", ref, "--reference", "x.mp4"]) == 2
    assert "at most one" in capsys.readouterr().err
    assert main(["score", "--landmarks", ref, "--reference-landmarks", str(tmp_path / "no.json")]) == 2
