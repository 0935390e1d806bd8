"""Trial store on a temp-file SQLite database."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from device.errors import StoreError
from device.store import SCHEMA_VERSION, NewScore, Store, decode_trial, encode_trial
from device.store.migrations import MIGRATIONS
from device.trial.types import Trial


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "flexscore.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store(db_path) as s:
        yield s


def make_trial(n: int = 30) -> Trial:
    rng = np.random.default_rng(0)
    lm = rng.uniform(100, 300, size=(n, 21, 3)).astype(np.float32)
    lm[3] = np.nan  # a frame without a hand
    return Trial(
        landmarks=lm,
        t=np.arange(n) / 30.0,
        presence=np.where(np.isnan(lm[:, 0, 0]), 0.0, 0.95).astype(np.float32),
        handedness=tuple(None if i == 3 else "Right" for i in range(n)),
        image_size=(640, 480),
        side="left",
        mirrored=True,
    )


SCORE = NewScore(
    final_score=2, model_score=2, rule_score=1, probabilities=(0.05, 0.15, 0.8),
    confidence=0.8, model_version="rnn-int8@abc123", rule_version="rom-v1", review=True,
    detail={"reasons": []},
)  # fmt: skip


def raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_opens_in_wal_with_the_schema_version(store: Store, db_path: Path) -> None:
    assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]
    tables = {r[0] for r in raw(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"schema_version", "patients", "trials", "landmarks", "scores", "labels", "audit"} <= tables
    assert "open" in repr(store)


def test_reopening_applies_no_migration_twice(db_path: Path) -> None:
    Store(db_path).close()
    with Store(db_path) as s:
        assert s.schema_version() == SCHEMA_VERSION
    assert raw(db_path, "SELECT COUNT(*) FROM schema_version") == [(SCHEMA_VERSION,)]


def test_refuses_a_newer_schema(db_path: Path) -> None:
    Store(db_path).close()
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'x')")
    conn.close()
    with pytest.raises(StoreError, match="schema 99, newer"):
        Store(db_path)


def test_migrations_never_drop() -> None:
    for statements in MIGRATIONS:
        for sql in statements:
            assert "DROP" not in sql.upper()


def test_a_scored_trial_round_trips(store: Store) -> None:
    pid = store.add_patient("P-001", "left")
    tid = store.begin_trial(side="left", patient_id=pid, origin="button")
    assert store.get_trial(tid).status == "recording"  # type: ignore[union-attr]
    store.set_status(tid, "scoring")
    trial = make_trial()
    store.finish_trial(tid, "scored", trial=trial, quality={"ok": True, "frames": 30}, score=SCORE)
    rec = store.get_trial(tid)
    assert rec is not None and rec.status == "scored" and rec.has_landmarks
    assert rec.finished_at is not None and rec.finished_at >= rec.started_at
    assert rec.quality == {"ok": True, "frames": 30} and rec.side == "left"
    assert rec.score is not None and rec.score.final_score == 2 and rec.score.review
    assert rec.score.probabilities == (0.05, 0.15, 0.8)
    assert rec.to_json()["score"] == 2 and rec.to_json()["status"] == "scored"
    back = store.load_trial(tid)
    np.testing.assert_array_equal(back.landmarks, trial.landmarks)
    np.testing.assert_array_equal(back.t, trial.t)
    assert back.handedness == trial.handedness and back.side == "left" and back.mirrored
    assert store.last_trial() == rec
    assert store.list_trials(patient_id=pid) == [rec]


def test_rejections_rescoring_labels_and_audit(store: Store) -> None:
    tid = store.begin_trial()
    reasons = [{"code": "no_hand", "message": "no hand was seen"}]
    store.finish_trial(tid, "rejected", trial=make_trial(), reasons=reasons)
    rec = store.get_trial(tid)
    assert rec is not None and rec.reasons == reasons and rec.score is None
    sid = store.add_score(tid, NewScore(final_score=1, model_version="rnn@new"))
    assert [s.id for s in store.scores_for(tid)] == [sid]
    assert store.get_trial(tid).score.model_version == "rnn@new"  # type: ignore[union-attr]
    lid = store.add_label(tid, "clin1", 1, "partial flexion")
    (label,) = store.labels_for(tid)
    assert label.id == lid and label.score == 1 and label.clinician == "clin1"
    store.audit("clin1", "export", {"format": "csv"})
    actions = [a.action for a in store.list_audit()]
    assert actions == ["export", "label"]
    assert store.list_trials(status="rejected")[0].id == tid
    assert store.count_trials() == 1


def test_reap_marks_unfinished_trials_interrupted(db_path: Path) -> None:
    with Store(db_path) as s:
        a = s.begin_trial()
        b = s.begin_trial()
        s.set_status(b, "scoring")
        c = s.begin_trial()
        s.finish_trial(c, "cancelled")
    # "crash": a new process opens the same file
    with Store(db_path) as s:
        assert s.reap_interrupted() == 2
        assert [s.get_trial(i).status for i in (a, b, c)] == [  # type: ignore[union-attr]
            "interrupted", "interrupted", "cancelled",
        ]  # fmt: skip
        assert s.get_trial(a).reasons[0]["code"] == "interrupted"  # type: ignore[union-attr]
        assert s.reap_interrupted() == 0
        assert s.list_audit()[0].action == "reap_interrupted"


def test_a_failed_write_leaves_nothing_half_written(store: Store) -> None:
    tid = store.begin_trial()
    bad = NewScore(final_score=7)  # violates the CHECK on final_score
    with pytest.raises(StoreError, match="finish trial failed"):
        store.finish_trial(tid, "scored", trial=make_trial(), score=bad)
    rec = store.get_trial(tid)
    assert rec is not None and rec.status == "recording" and not rec.has_landmarks
    assert rec.finished_at is None and store.scores_for(tid) == []


def test_disk_full_is_a_clear_store_error(store: Store, db_path: Path) -> None:
    tid = store.begin_trial()
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    big = make_trial(3000)
    with pytest.raises(StoreError, match="is full, so nothing was saved"):
        store.finish_trial(tid, "scored", trial=big, score=SCORE)
    assert store.get_trial(tid).status == "recording"  # type: ignore[union-attr]


def test_validation_errors(store: Store) -> None:
    with pytest.raises(StoreError, match="pseudonym"):
        store.add_patient("Jane Doe")
    store.add_patient("P1")
    with pytest.raises(StoreError, match="exists already"):
        store.add_patient("P1")
    with pytest.raises(StoreError, match="affected side"):
        store.add_patient("P2", "both")
    with pytest.raises(StoreError, match="no trial 42"):
        store.finish_trial(42, "scored")
    with pytest.raises(StoreError, match="unknown trial status"):
        store.set_status(1, "done")
    with pytest.raises(StoreError, match="no trial 42"):
        store.add_label(42, "c", 1)
    with pytest.raises(StoreError, match="0, 1, 2 or None"):
        store.add_label(1, "c", 5)
    with pytest.raises(StoreError, match="no stored landmarks"):
        store.load_trial(1)
    assert store.find_patient("P1") is not None and store.get_patient(999) is None
    assert [p.code for p in store.list_patients()] == ["P1"]


def test_closed_store_and_unopenable_path(tmp_path: Path) -> None:
    s = Store(tmp_path / "x.db")
    s.close()
    s.close()
    assert s.closed and "closed" in repr(s)
    with pytest.raises(StoreError, match="is closed"):
        s.begin_trial()
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(StoreError, match="cannot open the trial store"):
        Store(blocker / "sub" / "x.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        Store(junk)


def test_one_writer_many_threads(store: Store) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                tid = store.begin_trial()
                store.finish_trial(tid, "scored", score=NewScore(final_score=1))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and store.count_trials() == 80
    store.checkpoint()


def test_blob_round_trip_and_corruption() -> None:
    trial = make_trial(5)
    assert decode_trial(encode_trial(trial)).num_frames == 5
    with pytest.raises(StoreError, match="corrupt"):
        decode_trial(b"garbage")
    with pytest.raises(StoreError, match="unknown landmark format"):
        decode_trial(b"", "npz-v9")


def test_recorder_sink_persists_each_outcome(store: Store) -> None:
    from device.store.sink import RecorderSink
    from device.trial.recorder import RecorderState, TrialRecorder
    from device.vision.types import HandObservation

    now = [0.0]
    results: list[object] = [2, None]

    def score(trial: Trial) -> object:
        value = results.pop(0)

        class R:
            pass

        r = R()
        r.score = value  # type: ignore[attr-defined]
        return r

    rec = TrialRecorder(score, submit=lambda fn: fn(), clock=lambda: now[0])
    from device.web.services import trial_outcome

    sink = RecorderSink(store, lambda change: trial_outcome(change, model_version="test"))
    rec.add_listener(sink)

    def run_trial(hand: bool) -> None:
        rec.start(side="right", origin="web")
        now[0] += 3.0
        rec.tick()
        for i in range(200):
            now[0] += 1 / 30
            lm = np.full((21, 3), 300.0, np.float32)
            lm[:, 0] += np.arange(21) * 5
            lm[:, 1] += np.arange(21) * 4
            rec.on_observation(
                HandObservation(
                    frame_index=i,
                    t=now[0],
                    image_size=(640, 480),
                    detected=hand,
                    presence=0.9 if hand else 0.0,
                    handedness="Left" if hand else None,  # unmirrored view: the right hand
                    landmarks=lm if hand else None,
                )
            )

    run_trial(True)  # scored 2
    assert rec.state is RecorderState.RESULT
    run_trial(False)  # rejected by the gates
    run_trial(True)  # scorer says not scorable (score None)
    rec.start()
    rec.cancel()  # cancelled in the countdown: no row
    rec.close()
    trials = store.list_trials()
    assert [t.status for t in trials] == ["rejected", "rejected", "scored"]
    scored = trials[-1]
    assert scored.score is not None and scored.score.final_score == 2 and scored.has_landmarks
    assert scored.score.model_version == "test"
    assert scored.quality is not None and scored.quality["ok"] and scored.side == "right"
    assert trials[1].reasons[0]["code"] == "no_hand"
    assert sink.last_error is None and sink.ids == {}
