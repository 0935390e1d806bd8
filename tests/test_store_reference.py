"""Store schema 2 (issue 10): trial roles, reference profiles, score modes; old stores migrate."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_store import SCORE, make_trial

from device.errors import StoreError
from device.store import SCHEMA_VERSION, NewScore, Store
from device.store.migrations import MIGRATIONS


def make_v1_store(path: Path) -> None:
    """A database exactly as schema 1 left it, with a patient, a scored trial and a label."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1, '2026-01-01T00:00:00+00:00')")
        conn.execute("INSERT INTO patients VALUES (1, 'P001', 'left', '2026-01-01T00:00:00+00:00')")
        conn.execute(
            "INSERT INTO trials (id, patient_id, side, status, origin, started_at, finished_at) "
            "VALUES (1, 1, 'left', 'scored', 'web', '2026-01-02T10:00:00+00:00', '2026-01-02T10:00:09+00:00')"
        )
        conn.execute(
            "INSERT INTO scores (trial_id, created_at, final_score, rule_score, confidence, detail) "
            "VALUES (1, '2026-01-02T10:00:09+00:00', 1, 1, 0.7, '{\"reasons\":[\"partial\"]}')"
        )
        conn.execute(
            "INSERT INTO labels (trial_id, clinician, score, created_at) "
            "VALUES (1, 'clinician', 2, '2026-01-02T11:00:00+00:00')"
        )
        conn.commit()
    finally:
        conn.close()


def test_a_schema_1_store_opens_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "state" / "flexscore.db"
    make_v1_store(path)
    with Store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION >= 2
        t = store.get_trial(1)
        assert t is not None and t.status == "scored" and t.side == "left"
        assert t.role == "assessment" and t.profile is None and not t.is_reference
        assert t.score is not None and t.score.final_score == 1 and t.score.detail == {"reasons": ["partial"]}
        assert t.score.mode is None and t.score.reference_trial_id is None  # absolute, from before modes
        assert [lab.score for lab in store.labels_for(1)] == [2]
        assert store.integrity_check() == ["ok"]
        # the migrated store takes new rows of both roles
        ref = store.begin_trial(side="right", patient_id=1, role="reference")
        store.finish_trial(
            ref, "scored", trial=make_trial(), profile={"usable": True, "peak_closure": [0.5] * 4}
        )
        aff = store.begin_trial(side="left", patient_id=1)
        store.finish_trial(
            aff, "scored", trial=make_trial(), score=NewScore(2, mode="reference", reference_trial_id=ref)
        )
    with Store(path) as store:  # reopening applies nothing twice
        assert store.schema_version() == SCHEMA_VERSION
        r = store.get_trial(ref)
        assert r is not None and r.is_reference and r.profile == {"usable": True, "peak_closure": [0.5] * 4}
        a = store.get_trial(aff)
        assert a is not None and a.score is not None
        assert (a.score.mode, a.score.reference_trial_id) == ("reference", ref)


def test_roles_and_modes_are_checked(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(StoreError, match="role"):
            store.begin_trial(role="other")
        tid = store.begin_trial()
        with pytest.raises(StoreError, match="mode"):
            store.finish_trial(tid, "scored", score=NewScore(1, mode="relative"))
        assert store.get_trial(tid) is not None and store.get_trial(tid).status == "recording"  # type: ignore[union-attr]
        store.finish_trial(tid, "scored", score=SCORE)
        assert store.get_trial(tid).score.mode is None  # type: ignore[union-attr]


def test_session_reference_is_the_newest_finished_reference_of_that_hand(tmp_path: Path) -> None:
    day = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
    with Store(tmp_path / "s.db") as store:
        pid = store.add_patient("P001", "left")
        other = store.add_patient("P002", "left")

        def ref(
            at: datetime, status: str, *, patient: int = pid, side: str = "right", lm: bool = True
        ) -> int:
            tid = store.begin_trial(side=side, patient_id=patient, role="reference", started_at=at)
            store.finish_trial(tid, status, trial=make_trial() if lm else None)
            return tid

        assert store.session_reference(pid, "right", day) is None
        ref(day - timedelta(days=1), "scored")  # yesterday: another session
        first = ref(day + timedelta(minutes=1), "scored")
        ref(day + timedelta(minutes=2), "cancelled")  # abandoned: not a reference
        ref(day + timedelta(minutes=3), "rejected", lm=False)  # nothing recorded
        ref(day + timedelta(minutes=4), "scored", patient=other)  # another patient
        ref(day + timedelta(minutes=5), "scored", side="left")  # the affected hand's side
        found = store.session_reference(pid, "right", day)
        assert found is not None and found.id == first
        rejected = ref(day + timedelta(minutes=6), "rejected")  # recorded but unusable: reported
        found = store.session_reference(pid, "right", day)
        assert found is not None and found.id == rejected
        before = store.session_reference(pid, "right", day, before=day + timedelta(minutes=6))
        assert before is not None and before.id == first
