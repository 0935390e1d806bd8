"""Mass extension: the rule, the segment, the generator, the int8 RNN, the combined
recording and the CLI's --item."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from trial_helpers import CLEAN, synth

from device.cli import main
from device.config import Config, ScoringConfig
from device.data import SAMPLE_VIDEO
from device.items import MASS_EXTENSION, get_item
from device.scoring.decide import Decider
from device.scoring.extension import ExtensionRule, from_most_closed, still_opening
from device.trial.calibration import world_closure
from device.trial.io import save_track_json
from device.trial.synthetic_extension import make_extension_trial
from device.trial.types import Trial


def ext(score: int, seed: int = 0, **kwargs: object) -> Trial:
    trial, _info = make_extension_trial(score, np.random.default_rng(seed), options=CLEAN, **kwargs)  # type: ignore[arg-type]
    return trial


@pytest.fixture(scope="module")
def decider() -> Iterator[Decider]:
    d = Decider(Config())
    yield d
    d.close()


def test_the_item_is_registered_with_its_own_rule_models_and_fhir_code() -> None:
    item = get_item("mass_extension")
    assert item is MASS_EXTENSION
    assert item.rule_version == "ext-rule-1" and item.fhir_code == "mass-extension"
    assert item.models["hand"] == "scorer_ext_hand_int8"
    assert "release" in item.meanings[1].clinician and item.plot == "opening"


@pytest.mark.parametrize("score", [0, 1, 2])
@pytest.mark.parametrize("with_world", [True, False])
def test_rule_scores_clean_synthetic_extension_trials(score: int, with_world: bool) -> None:
    rule = ExtensionRule()
    for seed in range(6):
        trial = ext(score, seed=10 + seed, with_world=with_world)
        res = rule.score(from_most_closed(trial))
        assert res.status == "scored" and res.score == score, res.reasons
        assert res.details["method"] == ("hand" if with_world else "3d")


def test_rule_reasons_name_the_fingers_and_their_degrees() -> None:
    res = ExtensionRule().score(ext(1, seed=3))
    text = res.reasons[0]
    assert text.startswith("extension rule (hand frame): 1")
    for finger in ("index", "middle", "ring", "pinky"):
        assert finger in text
    assert "°" in text
    assert len(res.details["closed_deg"]) == 4 and len(res.details["open_end_deg"]) == 4
    # the degrees are the calibrated flexion: a fist is well above an open hand
    assert min(res.details["closed_deg"]) > max(res.details["open_end_deg"]) - 1e-6 or res.score == 1


def test_a_hand_that_never_closes_is_not_scorable_for_extension(decider: Decider) -> None:
    open_hand = synth(0, seed=5)  # a flexion trial of an open hand that never closes
    rule = ExtensionRule().score(open_hand)
    assert rule.status == "not_scorable" and rule.details["reason_codes"] == ["not_closed"]
    res = decider.score(open_hand, item="mass_extension")
    assert res.status == "not_scorable" and "never closed" in res.reasons[0]
    assert res.details["reason_codes"] == ["not_closed"]


def test_a_recording_cut_while_opening_is_stopped_early(decider: Decider) -> None:
    trial = ext(2, seed=21, combined=False)
    closure = world_closure(trial)[0].mean(axis=1)
    # cut where the hand is half-way open
    half = int(np.flatnonzero(closure < (closure.max() + closure.min()) / 2)[0])
    cut = trial.frames(0, half)
    rule = ExtensionRule().score(from_most_closed(cut))
    assert rule.score != 2 and still_opening(rule) is not None
    res = decider.score(cut, item="mass_extension")
    assert res.status == "not_scorable"
    assert res.details["reason_codes"] == ["stopped_early"] or "stopped_early" in res.details["reason_codes"]


def test_segment_starts_at_the_end_of_the_fist_in_a_combined_recording() -> None:
    trial, info = make_extension_trial(2, np.random.default_rng(4), options=CLEAN, combined=True)
    seg = from_most_closed(trial)
    assert 0 < seg.num_frames < trial.num_frames and seg.t[0] == 0.0
    closure = world_closure(seg)[0].mean(axis=1)
    assert closure[:3].mean() > 0.7  # it starts in the fist …
    assert closure[-3:].mean() < 0.3  # … and ends open
    assert info["combined"]


def test_generator_is_deterministic_and_its_bands_do_not_overlap() -> None:
    a, ia = make_extension_trial(1, np.random.default_rng(8))
    b, ib = make_extension_trial(1, np.random.default_rng(8))
    assert ia == ib and np.array_equal(a.landmarks, b.landmarks, equal_nan=True)
    for seed in range(30):
        rng = np.random.default_rng(seed)
        for score in (0, 1, 2):
            _t, info = make_extension_trial(score, rng, noise=False)
            opening = np.array(info["closed"]) - np.array(info["end"])
            if score == 2:
                assert max(info["end"]) <= 0.12
            elif score == 0:
                assert opening.max() <= 0.08 + 1e-9
            else:
                assert opening.max() >= 0.27 - 1e-9  # a clear opening …
                assert max(info["end"]) > 0.12 or opening.min() <= 0.06  # … partial or some fingers
    with pytest.raises(ValueError, match="score"):
        make_extension_trial(3, np.random.default_rng(0))


@pytest.mark.parametrize("score", [0, 1, 2])
def test_the_int8_extension_rnn_scores_synthetic_trials(decider: Decider, score: int) -> None:
    for seed in range(3):
        res = decider.score(ext(score, seed=300 + seed), item="mass_extension")
        assert res.status == "scored" and res.score == score, res.reasons
        assert res.details["rnn"]["model"] == "scorer_ext_hand_int8"
        assert res.probabilities is not None and abs(sum(res.probabilities) - 1) < 1e-6


def test_2d_extension_trials_use_the_2d_extension_model() -> None:
    d = Decider(Config(scoring=ScoringConfig(use_world=False, use_z=False)))
    try:
        res = d.score(ext(2, seed=41, with_world=False), item="mass_extension")
        assert res.details["rnn"]["model"] == "scorer_ext_2d_int8"
        assert res.status == "scored" and res.score == 2, res.reasons
    finally:
        d.close()


def test_reference_mode_scores_extension_against_the_unaffected_hand(decider: Decider) -> None:
    # the affected hand opens 60 % of the way, the unaffected one 55 %: partial in absolute
    # terms, full compared with the unaffected hand
    aff = ext(2, seed=51, reach=0.6, side="right", combined=False)
    ref = ext(2, seed=52, reach=0.55, side="left", combined=False)
    absolute = decider.score(aff, item="mass_extension")
    assert absolute.rule_score == 1
    res = decider.score(aff, reference=ref, item="mass_extension")
    assert res.details["mode"] == "reference" and res.details["reference"]["usable"]
    if absolute.status == "scored":
        assert res.score == 2 and res.review
    # a reference that does not open cannot stand for the unaffected hand
    still = ext(0, seed=53, side="left")
    res = decider.score(aff, reference=still, item="mass_extension")
    assert res.details["mode"] == "absolute" and any("hardly opened" in r for r in res.reasons)


def test_no_hand_in_an_extension_trial_says_how_to_record_it(decider: Decider) -> None:
    trial = ext(2, seed=61)
    blank = dataclasses.replace(
        trial,
        landmarks=np.full_like(trial.landmarks, np.nan),
        presence=np.zeros_like(trial.presence),
        handedness=(None,) * trial.num_frames,
        world=None,
    )
    res = decider.score(blank, item="mass_extension")
    assert res.status == "not_scorable"
    assert any(r.startswith("no hand found: start with the hand open in view") for r in res.reasons)
    flex = decider.score(blank)  # the flexion item has no such hint
    assert not any(r.startswith("no hand found") for r in flex.reasons)


def test_cli_scores_an_extension_trial_from_landmarks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ext.json"
    save_track_json(ext(2, seed=71), path)
    assert main(["score", "--landmarks", str(path), "--item", "mass_extension", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["item"] == "mass_extension" and doc["item_name"] == "Mass finger extension"
    assert (doc["status"], doc["score"]) == ("scored", 2), doc["reasons"]


def test_cli_bad_item_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ext.json"
    save_track_json(ext(2, seed=71), path)
    assert main(["score", "--landmarks", str(path), "--item", "mass_wiggle"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("flexscore: error: unknown assessment item 'mass_wiggle'")
    assert "mass_flexion" in err[0] and "mass_extension" in err[0]


def test_combined_sample_recording_gives_both_items(capsys: pytest.CaptureFixture[str]) -> None:
    """The bundled sample clip is open → fist → open: one recording, both items."""
    args = ["score", str(SAMPLE_VIDEO), "--side", "right", "--mirrored", "--item", "all", "--json"]
    assert main(args) == 0
    docs = json.loads(capsys.readouterr().out)
    assert [d["item"] for d in docs] == ["mass_flexion", "mass_extension"]
    for d in docs:
        assert (d["status"], d["score"]) == ("scored", 2), (d["item"], d["reasons"])
    assert docs[1]["details"]["rule"]["method"] == "hand"
    assert "extension rule" in " ".join(docs[1]["reasons"])


def test_configured_item_is_the_cli_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "flexscore.toml"
    cfg.write_text('[trial]\nitem = "mass_extension"\n', encoding="utf-8")
    path = tmp_path / "ext.json"
    save_track_json(ext(0, seed=81), path)
    assert main(["score", "--landmarks", str(path), "--config", str(cfg), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["item"] == "mass_extension" and doc["score"] == 0


def _track(frames: list, fps: float = 15.0) -> Trial:
    from device.vision.tracker import build_tracker

    cfg = Config()
    with build_tracker(cfg) as tracker:
        obs = [tracker.process_one(f, k / fps) for k, f in enumerate(frames)]
    return Trial.from_observations(obs, side=None, mirrored=False)


def test_the_tracker_keeps_the_hand_through_the_fist_of_the_sample_clip(sample_frames: list) -> None:
    """Found while open, the hand stays tracked while it closes (the palm detector, trained
    on open palms, is not asked again): every fist frame (30–53) of open → fist → open."""
    trial = _track(sample_frames)
    assert trial.detected[30:54].all()


def test_an_extension_trial_that_starts_in_a_fist_is_scored(sample_frames: list, decider: Decider) -> None:
    """The sample clip from its fist on (frames 30–76, fist → open), recorded alone: the
    tracker has to find a closed hand first."""
    trial = _track(sample_frames[30:])
    res = decider.score(trial, item="mass_extension")
    assert res.status == "scored" and res.score == 2, res.reasons
