"""device.tools.manifest: the one writer of model manifest entries (build_models.py,
train_scorer.py, flexscore train --from-store), checked against the committed manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from device.errors import ModelError
from device.tools.manifest import scorer_entry, tflite_signature, update_manifest
from device.vision.runtime import load_manifest

MODELS = Path(__file__).resolve().parents[1] / "models"


def test_scorer_entries_come_out_as_the_committed_ones_byte_for_byte() -> None:
    """The entries scripts/train_scorer.py wrote with its own code are what scorer_entry
    writes from the same inputs (the file's bytes, its tensors, the training's numbers)."""
    shipped = load_manifest(MODELS)["models"]
    scorers = {n: e for n, e in shipped.items() if e.get("kind") == "scorer"}
    assert {"scorer_int8", "scorer_2d_int8", "scorer_hand_int8"} <= set(scorers)
    for e in scorers.values():
        path = MODELS / e["file"]
        signature = tflite_signature(path)
        assert signature == tflite_signature(path.read_bytes())
        assert signature == {"inputs": e["inputs"], "outputs": e["outputs"]}
        made = scorer_entry(
            file=e["file"], variant=e["variant"], data=path.read_bytes(), recipe=e["recipe"],
            signature=signature, features=e["features"], steps=e["steps"],
            mean=e["normalization"]["mean"], std=e["normalization"]["std"], training=e["training"],
            version=e.get("version"), metrics=e.get("metrics"), item=e.get("item"),
        )  # fmt: skip
        assert json.dumps(made, indent=2, ensure_ascii=False) == json.dumps(e, indent=2, ensure_ascii=False)


def test_update_keeps_every_other_entry_and_writes_only_a_change(tmp_path: Path) -> None:
    shutil.copy(MODELS / "manifest.json", tmp_path / "manifest.json")
    before = (tmp_path / "manifest.json").read_bytes()
    shipped = json.loads(before)["models"]
    # the same entry again: the committed text is what the writer writes, so nothing changes
    assert update_manifest(tmp_path, {"scorer_int8": shipped["scorer_int8"]}) is False
    assert (tmp_path / "manifest.json").read_bytes() == before
    changed = dict(shipped["scorer_int8"], recipe="another recipe")
    assert update_manifest(tmp_path, {"scorer_int8": changed, "new_model": {"file": "new.tflite"}})
    after = load_manifest(tmp_path)
    assert list(after["models"]) == [*shipped, "new_model"]
    assert after["models"]["scorer_int8"]["recipe"] == "another recipe"
    assert {n: e for n, e in after["models"].items() if n not in ("scorer_int8", "new_model")} == {
        n: e for n, e in shipped.items() if n != "scorer_int8"
    }
    assert not list(tmp_path.glob("*.tmp"))


def test_a_candidate_manifest_holds_its_entries_only(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"version": 1, "models": {"old": {"file": "old.tflite"}}}')
    assert update_manifest(tmp_path, {"scorer_int8": {"file": "scorer_int8.tflite"}}, keep_others=False)
    text = (tmp_path / "manifest.json").read_text()
    assert json.loads(text) == {"version": 1, "models": {"scorer_int8": {"file": "scorer_int8.tflite"}}}
    assert text.startswith('{\n  "version": 1,\n  "models": {')  # the format's own order
    fresh = tmp_path / "fresh"
    assert update_manifest(fresh, {"a": {"file": "a.tflite"}})  # no directory yet
    assert load_manifest(fresh) == {"version": 1, "models": {"a": {"file": "a.tflite"}}}


def test_a_broken_manifest_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        update_manifest(tmp_path, {"a": {"file": "a.tflite"}})
    assert (tmp_path / "manifest.json").read_text() == "{not json"
