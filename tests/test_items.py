"""Assessment items: the registry, the spec, and a dummy item scored end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trial_helpers import synth

from device.cli import main
from device.config import Config, ScoringConfig, config_from_dict
from device.errors import ConfigError, FlexscoreError
from device.items import (
    DEFAULT_ITEM,
    ITEMS,
    MASS_FLEXION,
    AssessmentItem,
    ScoreMeaning,
    UnknownItemError,
    get_item,
    register_item,
    unregister_item,
)
from device.scoring.decide import Decider
from device.scoring.types import Result
from device.trial.calibration import world_closure
from device.trial.io import save_track_json
from device.trial.types import Trial


class ThumblessRule:
    """A dummy item's rule: how far the fingers close above their lowest point (hand frame):
    0 when none moves 0.3 of a fist, 2 when every finger does 0.6, else 1."""

    def score(self, trial: Trial) -> Result:
        closure, _deg, _obs = world_closure(trial)
        rise = (closure - np.minimum.accumulate(closure, axis=0)).max(axis=0)
        score = 2 if rise.min() >= 0.6 else 1 if rise.max() >= 0.3 else 0
        return Result(
            status="scored",
            score=score,
            confidence=1.0,
            reasons=(f"index rule: {score} (largest rise {rise.max():.0%})",),
            details={"method": "hand", "rise": rise.round(3).tolist()},
            rule_score=score,
        )


def _index_generator(score: int, rng: np.random.Generator, **kw: Any) -> tuple[Trial, dict[str, Any]]:
    return synth(score, seed=int(rng.integers(1 << 30))), {"score": score}


DUMMY = AssessmentItem(
    key="index_flexion_test",
    name="Index flexion (test item)",
    instructions="Bend your index finger.",
    meanings=(
        ScoreMeaning("none", "no bend"),
        ScoreMeaning("some", "some bend"),
        ScoreMeaning("full", "full bend"),
    ),
    rule=ThumblessRule(),
    rule_version="index-rule-1",
    models={},  # no RNN: the rule decides alone, flagged for review
    generate=_index_generator,
    fhir_code="index-flexion-test",
    fhir_display="Index flexion (test)",
)


@pytest.fixture()
def dummy() -> Iterator[AssessmentItem]:
    register_item(DUMMY)
    yield DUMMY
    unregister_item(DUMMY.key)


def test_the_default_item_is_mass_flexion_with_todays_rule_and_models() -> None:
    item = get_item(DEFAULT_ITEM)
    assert item is MASS_FLEXION and ITEMS["mass_flexion"] is item
    assert item.rule_version == "rom-rule-1"
    assert dict(item.models) == {"hand": "scorer_hand_int8", "3d": "scorer_int8", "2d": "scorer_2d_int8"}
    assert item.fhir_code == "mass-flexion"
    assert [m.clinician for m in item.meanings] == ["No flexion", "Partial flexion", "Full flexion"]
    assert item.to_json()["key"] == "mass_flexion"


def test_unknown_item_names_itself_and_the_known_ones() -> None:
    with pytest.raises(UnknownItemError) as err:
        get_item("mass_wiggle")
    assert isinstance(err.value, FlexscoreError)
    assert "'mass_wiggle'" in str(err.value) and "mass_flexion" in str(err.value)


def test_a_key_cannot_be_taken_twice_and_specs_are_validated(dummy: AssessmentItem) -> None:
    with pytest.raises(FlexscoreError, match="already registered"):
        register_item(AssessmentItem(**{**_fields(DUMMY), "name": "other"}))
    with pytest.raises(ConfigError, match="variant"):
        AssessmentItem(**{**_fields(DUMMY), "key": "x", "models": {"4d": "m"}})
    with pytest.raises(ConfigError, match="key"):
        AssessmentItem(**{**_fields(DUMMY), "key": "Bad Key"})
    with pytest.raises(FlexscoreError, match="default"):
        unregister_item(DEFAULT_ITEM)


def _fields(item: AssessmentItem) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}


def test_a_registered_dummy_item_is_scored_end_to_end(dummy: AssessmentItem) -> None:
    decider = Decider(Config())
    try:
        trials = dummy.make_trials(1, seed=3)
        for trial, info in trials:
            res = decider.score(trial, item=dummy.key)
            assert res.status == "scored", res.reasons
            assert res.rule_score == res.score == dummy.rule.score(trial).score
            if info["score"] != 1:  # clear cases; a partial trial may move one finger only
                assert res.score == info["score"]
            assert res.review and any("index rule" in r for r in res.reasons)
            assert any("no movement model" in r for r in res.reasons)
        # the same recording scored for both items: each item's own rule
        both = decider.score_items(trials[2][0], ["mass_flexion", dummy.key])
        assert [r.item.key for r in both] == ["mass_flexion", dummy.key]
        assert "rise" in both[1].result.details["rule"]
        assert "rise" not in both[0].result.details["rule"]
        assert both[1].to_json()["item"] == dummy.key
    finally:
        decider.close()


def test_a_registered_dummy_item_is_scored_through_the_cli(
    dummy: AssessmentItem, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "trial.json"
    trial = synth(2, seed=9)
    save_track_json(trial, path)
    assert main(["score", "--landmarks", str(path), "--item", dummy.key, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["item"] == dummy.key and doc["item_name"] == dummy.name
    assert doc["rule_score"] == dummy.rule.score(trial).score and "rise" in doc["details"]["rule"]
    # "all" now includes it, after the built-in items
    assert main(["score", "--landmarks", str(path), "--item", "all", "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert [d["item"] for d in docs] == ["mass_flexion", "mass_extension", dummy.key]
    # and the config accepts it as the configured item
    assert config_from_dict({"trial": {"item": dummy.key}}).trial.item == dummy.key


def test_flexion_is_scored_the_same_with_and_without_naming_the_item() -> None:
    decider = Decider(Config(scoring=ScoringConfig()))
    try:
        for score in (0, 1, 2):
            trial = synth(score, seed=40 + score)
            assert decider.score(trial).to_json() == decider.score(trial, item=MASS_FLEXION).to_json()
    finally:
        decider.close()


def test_config_trial_item_is_validated() -> None:
    assert Config().trial.item == "mass_flexion"
    assert config_from_dict({"trial": {"item": "all"}}).trial.item == "all"
    with pytest.raises(ConfigError, match=r"trial\.item.*mass_flexion"):
        config_from_dict({"trial": {"item": "mass_wiggle"}})
