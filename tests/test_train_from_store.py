"""``flexscore train --from-store`` end to end on a tiny configuration, then the install gate
on its candidate. Needs TensorFlow (the ``train`` extra): the tests use this interpreter if
it has it, else ``.venv-train`` (scripts/make_train_venv.sh), else they skip — CI without
the train extra skips them (marker ``slow``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from site_helpers import MODELS, SCORER, VARIANT, fill_store
from trial_helpers import train_python

from device.cli import main
from device.scoring.candidate import load_candidate
from device.scoring.installed import install_candidate
from device.store import Store
from device.tools.training import grouped_stratified_split

ROOT = Path(__file__).resolve().parent.parent


def _train(py: str, store: Path, out: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    proc = subprocess.run(
        [
            py,
            "-m",
            "device.cli",
            "train",
            "--from-store",
            str(store),
            "--out",
            str(out),
            "--small",
            "--current-models",
            str(MODELS),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "candidate site-" in proc.stdout
    return dict(json.loads((out / "report.json").read_text(encoding="utf-8")))


@pytest.mark.slow
def test_train_from_store_writes_a_checked_candidate(tmp_path: Path) -> None:
    py = train_python()
    if py is None:
        pytest.skip(
            "tensorflow not importable (pip install 'flexscore[train]' or scripts/make_train_venv.sh)"
        )
    store = tmp_path / "site.db"
    stored = fill_store(store, per_class=24, seed=9)
    out = tmp_path / "cand"
    report = _train(py, store, out)
    cand = load_candidate(out)  # sha256 of the file matches its manifest and report
    assert cand.file.stat().st_size < 1_000_000
    assert cand.entry["inputs"][0]["dtype"] == "int8" and cand.entry["outputs"][0]["dtype"] == "int8"
    assert cand.version.startswith("site-")
    held = report["heldout"]
    usable = {s.trial_id for s in stored if s.label is not None and (s.has_z or VARIANT != "3d")}
    assert set(held["trial_ids"]) <= usable
    assert held["n"] == len(held["trial_ids"]) >= 20
    assert report["split"]["heldout"] == {k: held["labels"].count(int(k)) for k in ("0", "1", "2")}
    assert report["variant"] == VARIANT  # the appliance's scorer by default
    assert report["current"]["version"].startswith(f"{SCORER}@")
    assert report["training"]["init"] == "current"
    assert report["training"]["init_agreement"] >= 0.9  # fine-tuning started from the int8 weights
    for who in ("candidate", "current"):
        assert held[who]["n"] == held["n"] and len(held[who]["confusion"]) == 3
        assert report["reference"][who]["n"] == 45
    # the device re-checks on the same store and reaches the same verdict as the report
    with Store(store) as st:
        res = install_candidate(out, state_dir=tmp_path / "state", shipped_dir=MODELS, store=st)
    assert res["source"] == "store"
    assert res["heldout"]["candidate"] == held["candidate"]
    assert res["installed"] == report["gate"]["passed"], (res["problems"], report["gate"])


@pytest.mark.slow
def test_candidate_from_a_site_that_never_gives_2_is_not_installed(tmp_path: Path) -> None:
    py = train_python()
    if py is None:
        pytest.skip(
            "tensorflow not importable (pip install 'flexscore[train]' or scripts/make_train_venv.sh)"
        )
    store = tmp_path / "shifted.db"
    fill_store(store, per_class=12, seed=13, real=False, label_of=lambda truth, i: min(truth, 1))
    out = tmp_path / "cand"
    report = _train(py, store, out, "--init", "fresh")
    assert not report["gate"]["passed"]
    assert any("scored 2" in p for p in report["gate"]["problems"])
    with Store(store) as st:
        res = install_candidate(out, state_dir=tmp_path / "state", shipped_dir=MODELS, store=st)
    assert not res["installed"]
    assert not (tmp_path / "state" / "models" / "manifest.json").exists()


def test_train_without_tensorflow_says_how_to_get_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorflow is installed here")
    store = tmp_path / "site.db"
    Store(store).close()
    assert main(["train", "--from-store", str(store), "--out", str(tmp_path / "c")]) == 2
    assert "flexscore[train]" in capsys.readouterr().err


def test_heldout_split_keeps_patients_whole_and_stratified() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    groups = rng.integers(0, 40, 300)  # 40 patients with several trials each
    tr, held = grouped_stratified_split(y, groups, 0.3, seed=1)
    assert len(np.intersect1d(tr, held)) == 0 and len(tr) + len(held) == 300
    assert not set(groups[tr]) & set(groups[held])  # no patient on both sides
    for k in range(3):
        share = (y[held] == k).sum() / (y == k).sum()
        assert 0.2 <= share <= 0.42, (k, share)
    assert np.array_equal(held, grouped_stratified_split(y, groups, 0.3, seed=1)[1])  # seeded
    # one trial per patient: the exact stratified split
    y1 = np.repeat([0, 1, 2], [10, 20, 7])
    _, held1 = grouped_stratified_split(y1, -np.arange(len(y1)), 0.3, seed=2)
    assert [int((y1[held1] == k).sum()) for k in range(3)] == [3, 6, 2]
    # a score with two trials keeps one for training
    y2 = np.array([0, 0, 1, 1, 2, 2])
    tr2, _ = grouped_stratified_split(y2, -np.arange(6), 0.5, seed=3)
    assert sorted(y2[tr2].tolist()) == [0, 1, 2]
