"""Trial store on a temp-file SQLite database."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
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


def world_of(trial: Trial) -> np.ndarray:
    """World landmarks for a trial: metres about the wrist, NaN where no hand."""
    lm = np.nan_to_num(trial.landmarks, nan=0.0)
    world = (lm - lm[:, :1]) * 0.0004
    world[~trial.detected] = np.nan
    return world.astype(np.float32)


def encode_v1(trial: Trial) -> bytes:
    """A blob exactly as the ``npz-v1`` encoder (schema 1-2) wrote it: no world landmarks."""
    buf = io.BytesIO()
    meta = {"side": trial.side, "mirrored": trial.mirrored, "has_z": trial.has_z}
    np.savez_compressed(
        buf,
        landmarks=trial.landmarks.astype(np.float32),
        t=trial.t.astype(np.float64),
        presence=trial.presence.astype(np.float32),
        handedness=np.array([h or "" for h in trial.handedness], dtype="U5"),
        image_size=np.array(trial.image_size, dtype=np.int64),
        meta=np.array(json.dumps(meta)),
    )
    return buf.getvalue()


def test_blob_round_trip_and_corruption() -> None:
    trial = make_trial(5)
    assert decode_trial(encode_trial(trial)).num_frames == 5
    assert decode_trial(encode_trial(trial)).world is None
    assert decode_trial(encode_v1(trial), "npz-v1").world is None
    with_world = replace(trial, world=world_of(trial))
    back = decode_trial(encode_trial(with_world))
    assert back.world is not None and back.world.dtype == np.float32
    np.testing.assert_array_equal(back.world, with_world.world)
    bad = io.BytesIO()
    with np.load(io.BytesIO(encode_trial(with_world))) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["world"] = arrays["world"][:3]  # world rows that do not match the frames
    np.savez_compressed(bad, **arrays)
    with pytest.raises(StoreError, match=r"corrupt.*world landmarks must have shape"):
        decode_trial(bad.getvalue())
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

    world = np.linspace(-0.06, 0.06, 63, dtype=np.float32).reshape(21, 3)  # metres

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
                    world_landmarks=world + i * 1e-4 if hand else None,
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
    # the tracker's world landmarks are stored with the trial and come back
    assert scored.has_world and not trials[1].has_world
    kept = store.load_trial(scored.id)
    assert kept.world is not None and kept.has_world and kept.world.shape == (kept.num_frames, 21, 3)
    tracked = np.flatnonzero(kept.detected)
    assert np.isfinite(kept.world[tracked]).all() and np.isnan(kept.world[~kept.detected]).all()
    steps = np.diff(kept.world[tracked, 0, 0])
    np.testing.assert_allclose(steps, 1e-4 * np.diff(tracked), atol=1e-6)  # each frame its own world
    assert sink.last_error is None and sink.ids == {}


def test_world_landmarks_are_kept_with_the_trial(store: Store, db_path: Path) -> None:
    flat = make_trial()
    trial = replace(flat, world=world_of(flat))
    a = store.begin_trial(side="left")
    store.finish_trial(a, "scored", trial=trial, score=SCORE)
    b = store.begin_trial(side="left")
    store.finish_trial(b, "scored", trial=flat, score=SCORE)  # a 2D-only source: no world
    rows = raw(db_path, "SELECT trial_id, format, world FROM landmarks ORDER BY trial_id")
    assert rows == [(a, "npz-v2", 1), (b, "npz-v2", 0)]
    ra, rb = store.get_trial(a), store.get_trial(b)
    assert ra is not None and ra.has_world and rb is not None and not rb.has_world
    back = store.load_trial(a)
    assert back.world is not None and back.has_world
    np.testing.assert_array_equal(back.world, trial.world)
    np.testing.assert_array_equal(back.landmarks, trial.landmarks)
    assert store.load_trial(b).world is None


def make_v2_store(path: Path, trial: Trial) -> None:
    """A database exactly as schema 2 left it: one scored trial, its landmarks an npz-v1 blob."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        for version in (1, 2):
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, '2026-01-01T00:00:00+00:00')", (version,))
        conn.execute(
            "INSERT INTO trials (id, side, status, origin, started_at, finished_at) VALUES "
            "(1, 'left', 'scored', 'web', '2026-01-02T10:00:00+00:00', '2026-01-02T10:00:09+00:00')"
        )
        conn.execute(
            "INSERT INTO landmarks (trial_id, format, num_frames, data) VALUES (1, 'npz-v1', ?, ?)",
            (trial.num_frames, encode_v1(trial)),
        )
        conn.execute(
            "INSERT INTO scores (trial_id, created_at, final_score, mode) "
            "VALUES (1, '2026-01-02T10:00:09+00:00', 2, 'absolute')"
        )
        conn.commit()
    finally:
        conn.close()


def test_a_schema_2_store_migrates_and_its_trials_load_without_world(tmp_path: Path) -> None:
    from trial_helpers import synth

    from device.config import Config
    from device.scoring.decide import Decider

    old = synth(2, seed=11, with_world=False)  # a trial recorded before world landmarks
    path = tmp_path / "state" / "flexscore.db"
    make_v2_store(path, old)
    with Store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION >= 3
        assert raw(path, "SELECT format, world FROM landmarks") == [("npz-v1", 0)]
        rec = store.get_trial(1)
        assert rec is not None and rec.has_landmarks and not rec.has_world
        back = store.load_trial(1)
        assert back.world is None and not back.has_world
        np.testing.assert_array_equal(back.landmarks, old.landmarks)
        # it scores (through the path for trials without world landmarks) as before storing
        decider = Decider(Config())
        again, direct = decider.score(back), decider.score(old)
        assert again.status == direct.status and again.score == direct.score
        assert again.probabilities == direct.probabilities
        # the migrated store keeps world landmarks of new trials
        new = store.begin_trial(side="left")
        store.finish_trial(new, "scored", trial=replace(old, world=world_of(old)), score=SCORE)
        assert store.load_trial(new).has_world
    with Store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert raw(path, "SELECT format, world FROM landmarks ORDER BY trial_id") == [
            ("npz-v1", 0),
            ("npz-v2", 1),
        ]
        assert store.integrity_check() == ["ok"]
