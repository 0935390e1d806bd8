"""Installing site-trained scorers: the gate (report, sha256, not worse on held-out labelled
trials and on the kinematic reference), STATE/models, rollback, model versions on scores.

Candidates here are made without TensorFlow (tests/site_helpers.make_candidate): the shipped
3D scorer under a new version — as good as the current one — or with its normalisation
shifted — clearly worse. tests/test_train_from_store.py trains real ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from site_helpers import MODELS, SCORER, VARIANT, Stored, fill_store, make_candidate
from trial_helpers import synth as synth_trial

from device.cli import main
from device.config import Config
from device.errors import ModelError
from device.scoring.decide import Decider
from device.scoring.installed import InstalledModels, install_candidate, scorer_dir
from device.store import NewScore, Store


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Stored]]:
    path = tmp_path_factory.mktemp("site") / "flexscore.db"
    return path, fill_store(path, per_class=9, seed=21, real=False)


def _heldout(stored: list[Stored]) -> list[int]:
    return [s.trial_id for s in stored if s.label is not None and (s.has_z or VARIANT != "3d")]


def test_equal_candidate_installs_and_rollback_restores(
    site: tuple[Path, list[Stored]], tmp_path: Path
) -> None:
    path, stored = site
    state = tmp_path / "state"
    cand = make_candidate(tmp_path / "cand", path, _heldout(stored), version="site-test-equal")
    shipped_version = InstalledModels(state, MODELS).active_version(SCORER)
    assert shipped_version.startswith(f"{SCORER}@")
    with Store(path) as st:
        res = install_candidate(cand, state_dir=state, shipped_dir=MODELS, store=st)
        assert res["installed"], res["problems"]
        assert res["source"] == "store" and res["heldout"]["n"] == len(_heldout(stored))
        assert any(a.action == "model_install" for a in st.list_audit())
    models = InstalledModels(state, MODELS)
    assert models.active_version(SCORER) == "site-test-equal"
    assert (state / "models" / "site-test-equal" / "report.json").is_file()
    assert not (MODELS / "site-test-equal").exists()  # the repository's models/ is untouched
    assert scorer_dir(MODELS, state, SCORER) == state / "models"
    other = "scorer_2d_int8" if SCORER != "scorer_2d_int8" else "scorer_int8"
    assert scorer_dir(MODELS, state, other) == MODELS  # not installed: shipped

    # the appliance's scorer loads the installed model, and its scores say so
    decider = Decider(Config(), state_dir=state)
    res_new = decider.score(synth_trial(2, seed=3))
    assert res_new.details["rnn"]["version"] == "site-test-equal"
    decider.close()

    removed, now = models.rollback()
    assert (removed, now) == ("site-test-equal", shipped_version)
    assert models.active_version(SCORER) == shipped_version
    assert scorer_dir(MODELS, state, SCORER) == MODELS
    assert (state / "models" / "site-test-equal").is_dir()  # kept
    decider = Decider(Config(), state_dir=state)
    assert decider.primary_rnn().version == shipped_version
    decider.close()
    with pytest.raises(ModelError, match="nothing to roll back"):
        models.rollback()
    log = [e["action"] for e in models.history()]
    assert log == ["install", "rollback"]


def test_scores_keep_the_version_of_the_model_that_made_them(
    site: tuple[Path, list[Stored]], tmp_path: Path
) -> None:
    path, stored = site
    db = tmp_path / "copy.db"
    shutil.copy(path, db)
    state = tmp_path / "state"
    cand = make_candidate(tmp_path / "cand", db, _heldout(stored), version="site-test-v2")
    with Store(db) as st:
        assert install_candidate(cand, state_dir=state, shipped_dir=MODELS, store=st)["installed"]
        decider = Decider(Config(), state_dir=state)
        res = decider.score(synth_trial(1, seed=8))
        decider.close()
        tid = st.begin_trial(side="left")
        version = res.details["rnn"]["version"]
        st.finish_trial(tid, "scored", score=NewScore(final_score=1, model_version=version))
        InstalledModels(state, MODELS).rollback(SCORER)
        # older scores keep the shipped model's version, the new one the installed version
        old = st.get_trial(stored[0].trial_id)
        assert old is not None and old.score is not None
        assert old.score.model_version == stored[0].version
        new = st.get_trial(tid)
        assert new is not None and new.score is not None and new.score.model_version == "site-test-v2"


def test_worse_candidate_is_refused(site: tuple[Path, list[Stored]], tmp_path: Path) -> None:
    path, stored = site
    state = tmp_path / "state"
    cand = make_candidate(
        tmp_path / "worse", path, _heldout(stored), version="site-test-worse", norm_shift=2.5
    )
    with Store(path) as st:
        res = install_candidate(cand, state_dir=state, shipped_dir=MODELS, store=st)
    assert not res["installed"]
    assert any("kappa" in p for p in res["problems"]), res["problems"]
    assert res["heldout"]["candidate"]["qwk"] < res["heldout"]["current"]["qwk"]
    assert not (state / "models" / "manifest.json").exists()
    assert InstalledModels(state, MODELS).active_version(SCORER).startswith(f"{SCORER}@")


def test_site_that_never_gives_2_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "shifted.db"
    stored = fill_store(path, per_class=8, seed=4, real=False, label_of=lambda truth, i: min(truth, 1))
    cand = make_candidate(tmp_path / "cand", path, _heldout(stored), version="site-test-shifted")
    with Store(path) as st:
        res = install_candidate(cand, state_dir=tmp_path / "state", shipped_dir=MODELS, store=st)
    assert not res["installed"]
    assert any("scored 2" in p for p in res["problems"]), res["problems"]


def test_candidate_needs_its_report_and_matching_sha256(
    site: tuple[Path, list[Stored]], tmp_path: Path
) -> None:
    path, stored = site
    cand = make_candidate(tmp_path / "cand", path, _heldout(stored)[:5], version="site-test-x")
    state = tmp_path / "state"
    (cand / "report.json").rename(cand / "report.bak")
    with pytest.raises(ModelError, match="without its report"):
        install_candidate(cand, state_dir=state, shipped_dir=MODELS)
    (cand / "report.bak").rename(cand / "report.json")
    model = cand / f"{SCORER}.tflite"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its manifest"):
        install_candidate(cand, state_dir=state, shipped_dir=MODELS)
    assert not (state / "models").exists()


def test_small_heldout_and_stale_report_are_refused(site: tuple[Path, list[Stored]], tmp_path: Path) -> None:
    path, stored = site
    state = tmp_path / "state"
    ids = _heldout(stored)
    small = make_candidate(tmp_path / "small", path, ids[:6], version="site-test-small")
    res = install_candidate(small, state_dir=state, shipped_dir=MODELS)  # no store: the report's figures
    assert not res["installed"] and res["source"] == "report"
    assert any("held-out labelled trials" in p for p in res["problems"])
    first = make_candidate(tmp_path / "a", path, ids, version="site-test-a")
    second = make_candidate(tmp_path / "b", path, ids, version="site-test-b")  # compared with shipped
    assert install_candidate(first, state_dir=state, shipped_dir=MODELS)["installed"]
    res = install_candidate(second, state_dir=state, shipped_dir=MODELS)
    assert not res["installed"]
    assert any("this device uses site-test-a" in p for p in res["problems"])
    with pytest.raises(ModelError, match="in use already"):
        install_candidate(first, state_dir=state, shipped_dir=MODELS)


def test_models_cli(
    site: tuple[Path, list[Stored]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, stored = site
    db = tmp_path / "copy.db"
    shutil.copy(path, db)
    state = tmp_path / "state"
    cand = make_candidate(tmp_path / "cand", db, _heldout(stored), version="site-test-cli")
    worse = make_candidate(
        tmp_path / "worse", db, _heldout(stored), version="site-test-cli-worse", norm_shift=2.5
    )
    common = ["--state-dir", str(state)]
    assert main(["models", "install", str(worse), "--store", str(db), *common]) == 1
    assert "REFUSED" in capsys.readouterr().out
    assert main(["models", "install", str(cand), "--store", str(db), "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["installed"] is True
    assert main(["models", "list", "--json", *common]) == 0
    rows = json.loads(capsys.readouterr().out)
    active = {r["name"]: r["version"] for r in rows if r["active"]}
    assert active[SCORER] == "site-test-cli"
    other = "scorer_2d_int8" if SCORER != "scorer_2d_int8" else "scorer_int8"
    assert active[other].startswith(f"{other}@")
    assert main(["models", "rollback", *common]) == 0
    assert "rolled back site-test-cli" in capsys.readouterr().out
    assert main(["models", "rollback", *common]) == 2
    assert "nothing to roll back" in capsys.readouterr().err
    assert main(["models", "install", str(tmp_path / "nope"), *common]) == 2


def test_the_appliance_records_the_version_of_the_scorer_that_scored(tmp_path: Path) -> None:
    """The daemon writes each score with the version of the model that made it: the 2D
    scorer's for a trial without z, the installed one's after an install."""
    from datetime import UTC, datetime

    from site_helpers import kazuhito_trial

    from device.app import FlexscoreApp
    from device.appliance.session import stored_outcome
    from device.trial.recorder import RecorderState, StateChange, TrialInfo

    app = FlexscoreApp(Config(), state_dir=tmp_path, serve_web=False)
    decider = Decider(Config(), state_dir=tmp_path)
    try:
        for trial, prefix in (
            (synth_trial(2, seed=4), f"{SCORER}@"),
            (kazuhito_trial(1.0, 0), "scorer_2d_int8@"),
        ):
            res = decider.score(trial)
            assert res.status == "scored", res.reasons
            info = TrialInfo(seq=1, side="right", patient_id=None, origin="test",
                             started_at=datetime.now(UTC), trial=trial, result=res)  # fmt: skip
            change = StateChange(RecorderState.SCORING, RecorderState.RESULT, 0.0, info)
            outcome = stored_outcome(change, app.model_version)
            assert outcome.score is not None
            assert outcome.score.model_version == res.details["rnn"]["version"]
            assert outcome.score.model_version.startswith(prefix)
    finally:
        decider.close()
