"""Site validation report (device/scoring/agreement.py): figures vs a hand computation,
bootstrap interval, small-sample warning, splits, CLI and clinician page."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from site_helpers import Stored, fill_store

from device.cli import main
from device.scoring.agreement import (
    MIN_MEANINGFUL,
    LabelledTrial,
    bootstrap_qwk,
    collect,
    report,
    store_report,
)
from device.store import Store


def _site_label(truth: int, i: int) -> int | None:
    """A plausible site: mostly agrees, sometimes one point apart, now and then 'not scorable'."""
    if i % 11 == 5:
        return None
    if i % 7 == 3:
        return min(truth + 1, 2)
    if i % 9 == 4:
        return max(truth - 1, 0)
    return truth


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Stored]]:
    path = tmp_path_factory.mktemp("site") / "flexscore.db"
    return path, fill_store(path, per_class=12, seed=5, label_of=_site_label)


def hand_kappa(pairs: list[tuple[int, int]]) -> tuple[list[list[int]], float]:
    """Confusion matrix and Cohen's quadratic weighted kappa, written out from the textbook
    definition (independent of the package): kappa = 1 - sum(w*O) / sum(w*E)."""
    obs = [[0] * 3 for _ in range(3)]
    for a, b in pairs:
        obs[a][b] += 1
    n = len(pairs)
    rows = [sum(obs[i]) for i in range(3)]
    cols = [sum(obs[i][j] for i in range(3)) for j in range(3)]
    num = den = 0.0
    for i in range(3):
        for j in range(3):
            w = (i - j) ** 2 / 4.0
            num += w * obs[i][j]
            den += w * rows[i] * cols[j] / n
    return obs, 1.0 - num / den


def test_report_matches_a_hand_computation(site: tuple[Path, list[Stored]]) -> None:
    path, stored = site
    with Store(path) as st:
        rep = store_report(st)
    o = rep["overall"]
    pairs = [(s.label, s.kit) for s in stored if s.label is not None and s.kit is not None]
    cm, kappa = hand_kappa(pairs)  # type: ignore[arg-type]
    assert o["n"] == len(stored)
    assert o["pairs"] == len(pairs) >= MIN_MEANINGFUL
    assert o["confusion"] == cm
    table = np.array(o["outcomes"])  # with "not scorable" (index 3) on both sides
    assert table[:3, :3].tolist() == cm
    assert table.sum() == len(stored)
    assert table[3].sum() == sum(s.label is None for s in stored)
    assert table[:, 3].sum() == sum(s.kit is None for s in stored)
    assert o["qwk"] == pytest.approx(kappa, abs=1e-4)
    assert o["exact_agreement"] == pytest.approx(sum(a == b for a, b in pairs) / len(pairs), abs=1e-4)
    for k in range(3):
        in_k = [b for a, b in pairs if a == k]
        assert o["recall"][k] == pytest.approx(sum(b == k for b in in_k) / len(in_k), abs=1e-4)
    declined = [s for s in stored if s.kit is None]
    assert o["declined"] == len(declined)
    assert o["declined_share"] == pytest.approx(len(declined) / len(stored), abs=1e-4)
    scored = [s for s in stored if s.kit is not None]
    assert o["review_rate"] == pytest.approx(sum(s.review for s in scored) / len(scored), abs=1e-4)
    assert o["clinician_counts"]["not_scorable"] == sum(s.label is None for s in stored)
    assert o["kit_counts"]["2"] == sum(s.kit == 2 for s in stored)
    lo, hi = o["qwk_ci95"]
    assert lo <= o["qwk"] <= hi and lo < hi
    assert rep["warning"] is None and o["meaningful"]


def test_report_splits_by_model_version_and_side(site: tuple[Path, list[Stored]]) -> None:
    path, stored = site
    with Store(path) as st:
        rep = store_report(st)
    versions = {s.version for s in stored if s.version}
    assert versions <= set(rep["by_model_version"])
    assert versions and all(v.split("@")[0] in ("scorer_hand_int8", "scorer_int8", "scorer_2d_int8") for v in versions)
    assert any(v.startswith("scorer_2d_int8@") for v in versions)  # the real-derived 2D trials
    for version in versions:
        group = [s for s in stored if s.version == version]
        pairs = [(s.label, s.kit) for s in group if s.label is not None and s.kit is not None]
        g = rep["by_model_version"][version]
        assert g["n"] == len(group)
        assert g["confusion"] == hand_kappa(pairs)[0]  # type: ignore[arg-type]
    assert sum(g["n"] for g in rep["by_side"].values()) == len(stored)
    for side, g in rep["by_side"].items():
        assert g["n"] == sum(s.side == side for s in stored)


def test_scores_keep_their_model_version(site: tuple[Path, list[Stored]]) -> None:
    path, stored = site
    with Store(path) as st:
        for s in stored:
            rec = st.get_trial(s.trial_id)
            assert rec is not None
            if s.kit is not None:
                assert rec.score is not None and rec.score.model_version == s.version
                assert s.version and "@" in s.version  # name@sha256 prefix of the file that scored
            else:
                assert rec.score is None


def _rows(n: int, seed: int = 0) -> list[LabelledTrial]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        y = int(rng.integers(0, 3))
        p = y if rng.random() < 0.8 else int(rng.integers(0, 3))
        out.append(LabelledTrial(i, datetime(2026, 1, 1, tzinfo=UTC), "left", p, "m1", False, y))
    return out


def test_small_sample_warning_below_30() -> None:
    few = report(_rows(MIN_MEANINGFUL - 1))
    assert few["warning"] and "not yet meaningful" in few["warning"]
    assert not few["overall"]["meaningful"]
    assert few["overall"]["qwk_ci95"] is not None  # the interval is still shown, and wide
    enough = report(_rows(MIN_MEANINGFUL))
    assert enough["warning"] is None
    # labels the kit declined do not count towards the 30 compared trials
    declined = [
        LabelledTrial(100 + i, r.started_at, "left", None, None, False, 1) for i, r in enumerate(_rows(5))
    ]
    assert report(_rows(MIN_MEANINGFUL - 1) + declined)["warning"] is not None


def test_bootstrap_interval_is_seeded_and_narrows_with_more_trials() -> None:
    y = np.array([r.label for r in _rows(300)])
    p = np.array([r.kit_score for r in _rows(300)])
    a = bootstrap_qwk(y[:40], p[:40], seed=1)
    assert a == bootstrap_qwk(y[:40], p[:40], seed=1)
    b = bootstrap_qwk(y, p, seed=1)
    assert a is not None and b is not None
    assert b[1] - b[0] < a[1] - a[0]
    assert bootstrap_qwk(y[:1], p[:1]) is None


def test_empty_store_report(tmp_path: Path) -> None:
    with Store(tmp_path / "empty.db") as st:
        rep = store_report(st)
    assert rep["overall"]["n"] == 0 and rep["overall"]["qwk"] is None
    assert rep["warning"] is not None


def test_since_filters_trials(site: tuple[Path, list[Stored]]) -> None:
    path, stored = site
    with Store(path) as st:
        assert len(collect(st, date(2000, 1, 1))) == len(stored)
        assert collect(st, date(2999, 1, 1)) == []


def test_validate_cli_text_json_and_html(
    site: tuple[Path, list[Stored]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, stored = site
    out = tmp_path / "report.html"
    assert main(["validate", "--store", str(path), "--json", "--html", str(out)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["overall"]["n"] == len(stored)
    page = out.read_text(encoding="utf-8")
    assert "Weighted kappa" in page and "95 % CI" in page and "By model version" in page
    assert main(["validate", "--store", str(path)]) == 0
    text = capsys.readouterr().out
    assert "QWK" in text and "95 % CI" in text and "confusion" in text
    assert main(["validate", "--store", str(path), "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err
    assert main(["validate", "--store", str(tmp_path / "missing.db")]) == 2


def test_validation_page_for_clinicians_only(tmp_path: Path) -> None:
    from test_web_support import login, make_app

    from device.web.fake import FakeServices

    with FakeServices(state_dir=tmp_path) as fake:
        app = make_app(fake)
        patient = app.test_client()
        login(patient, "patient")
        assert patient.get("/validation").status_code == 403
        client = app.test_client()
        login(client, "clinician")
        page = client.get("/validation")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert "not yet meaningful" in html and "Confusion matrix" in html
        assert 'href="/validation"' in html  # in the clinician's navigation
        assert client.get("/validation?since=2020-01-01").status_code == 200
        assert "must be a date" in client.get("/validation?since=bad").get_data(as_text=True)
        doc = client.get("/validation/report.json").get_json()
        assert doc["format"] == "flexscore-agreement-v1"
        assert client.get("/validation/report.json?since=bad").status_code == 400
