"""The training pipeline end to end on the small configuration (needs tensorflow)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from trial_helpers import train_python

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_small_training_runs_end_to_end(tmp_path: Path) -> None:
    py = train_python()
    if py is None:
        pytest.skip("tensorflow not importable (make it with scripts/make_train_venv.sh)")
    trials = tmp_path / "trials"
    subprocess.run(
        [py, str(ROOT / "scripts" / "make_trials.py"), "--small", "--synthetic-only", "--out", str(trials)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    scorer = tmp_path / "scorer"
    models = tmp_path / "models"  # a copy of the shipped manifest: the run updates two entries
    models.mkdir()
    shipped = json.loads((ROOT / "models" / "manifest.json").read_text())
    (models / "manifest.json").write_text(json.dumps(shipped, indent=2, ensure_ascii=False) + "\n")
    subprocess.run(
        [
            py,
            str(ROOT / "scripts" / "train_scorer.py"),
            "--small",
            "--models-dir",
            str(models),
            "--data",
            str(trials / "dataset.npz"),
            "--float-dir",
            str(scorer),
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    report = json.loads((scorer / "report.json").read_text())
    manifest = json.loads((models / "manifest.json").read_text())["models"]
    for variant, name in (("3d", "scorer_int8"), ("2d", "scorer_2d_int8")):
        data = (models / f"{name}.tflite").read_bytes()
        assert len(data) < 1_000_000
        assert report[variant]["int8_float_agreement"] is not None
        assert "synthetic" in report[variant]["heldout"]
        entry = manifest[name]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
        assert entry["variant"] == variant and entry["steps"] == 200 and entry["classes"] == [0, 1, 2]
        assert entry["metrics"]["heldout"]["synthetic"]["qwk"] == report[variant]["heldout"]["synthetic"][
            "int8"]["qwk"]  # fmt: skip
        assert entry["inputs"][0]["dtype"] == "int8" and entry["outputs"][0]["shape"] == [1, 3]
    # every other entry is kept as it was, in its place
    assert list(manifest) == list(shipped["models"])
    assert {k: v for k, v in manifest.items() if k not in ("scorer_int8", "scorer_2d_int8")} == {
        k: v for k, v in shipped["models"].items() if k not in ("scorer_int8", "scorer_2d_int8")
    }


@pytest.mark.slow
def test_small_training_of_another_item_runs_end_to_end(tmp_path: Path) -> None:
    """``--item mass_extension``: the item's synthetic trials cut to its segment, a hand and a
    2D scorer named by the item, the manifest entry saying which item it scores."""
    py = train_python()
    if py is None:
        pytest.skip("tensorflow not importable (make it with scripts/make_train_venv.sh)")
    models = tmp_path / "models"
    models.mkdir()
    scorer = tmp_path / "scorer"
    subprocess.run(
        [
            py,
            str(ROOT / "scripts" / "train_scorer.py"),
            "--small",
            "--item",
            "mass_extension",
            "--variant",
            "hand",
            "--models-dir",
            str(models),
            "--float-dir",
            str(scorer),
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    entry = json.loads((models / "manifest.json").read_text())["models"]["scorer_ext_hand_int8"]
    assert entry["item"] == "mass_extension" and entry["variant"] == "hand"
    assert (models / "scorer_ext_hand_int8.tflite").stat().st_size == entry["bytes"]
    assert (scorer / "scorer_ext_hand_fp32.tflite").is_file()
    report = json.loads((scorer / "report.json").read_text())
    assert report["hand"]["int8_float_agreement"] is not None
    bad = subprocess.run(
        [py, str(ROOT / "scripts" / "train_scorer.py"), "--small", "--item", "mass_wiggle"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0 and "unknown assessment item 'mass_wiggle'" in bad.stderr
