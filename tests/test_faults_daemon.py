"""Issue 8: ``kill -9`` of the real daemon during a recording, and of a store writer in the
middle of a database transaction. On restart the database passes ``PRAGMA integrity_check``,
no partial trial appears scored, the interrupted trial is listed as such, and every trial and
label stored before is still there.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from daemon_helpers import Daemon, db_rows, integrity, wait_for

from device.store import NewScore, Store
from device.trial.types import Trial


def make_trial(n: int = 90, seed: int = 0) -> Trial:
    lm = np.random.default_rng(seed).uniform(100, 300, size=(n, 21, 3)).astype(np.float32)
    return Trial(
        landmarks=lm,
        t=np.arange(n) / 30.0,
        presence=np.full(n, 0.95, np.float32),
        handedness=tuple("Left" for _ in range(n)),
        image_size=(640, 480),
        side="right",
    )


def seed_history(db: Path) -> tuple[int, int]:
    """One scored trial with a clinician label, as a site would have; returns (trial, label)."""
    with Store(db) as s:
        tid = s.begin_trial(side="right", origin="seed")
        s.finish_trial(tid, "scored", trial=make_trial(), score=NewScore(final_score=2, model_version="m"))
        return tid, s.add_label(tid, "clinician", 2, "full fist")


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.cleanup()


@pytest.mark.slow
def test_kill_9_during_recording_then_restart_lists_the_trial_as_interrupted(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    state = tmp_path / "state"
    old_id, _ = seed_history(state / "flexscore.db")
    first = Daemon(state)
    daemons.append(first)
    first.wait_ready()
    first.press()
    first.wait_state("recording")
    wait_for(lambda: len(db_rows(first.db, "SELECT id FROM trials")) == 2, 10, "the new trial's row")
    first.kill9()  # power cut / OOM kill: no shutdown code runs

    assert integrity(first.db) == "ok"
    on_disk = {r["id"]: r["status"] for r in db_rows(first.db, "SELECT id, status FROM trials")}
    new_id = max(on_disk)
    assert on_disk == {old_id: "scored", new_id: "recording"}  # open, never scored
    assert db_rows(first.db, "SELECT COUNT(*) FROM scores WHERE trial_id = ?", (new_id,))[0][0] == 0

    second = Daemon(state)
    daemons.append(second)
    second.wait_ready()
    assert "1 trial(s) interrupted by the last stop were marked so" in second.output()
    second.login()
    status = second.status()
    assert status["last_trial"] == {
        "id": new_id,
        "status": "interrupted",
        "score": None,
        "finished_at": status["last_trial"]["finished_at"],
        "role": "assessment",
    }
    second.login()
    listed = {t["id"]: t for t in second.get("/api/trials")["trials"]}
    assert listed[new_id]["status"] == "interrupted"
    assert listed[old_id]["status"] == "scored"
    detail = second.get(f"/api/trials/{new_id}")
    assert "crashed or lost power" in str(detail)
    old = second.get(f"/api/trials/{old_id}")
    assert [(lab["score"], lab["comment"]) for lab in old["label_history"]] == [(2, "full fist")]
    rc, _ = second.terminate()
    assert rc == 0
    assert integrity(second.db) == "ok"


# A store writer that stops inside a transaction: the store's clock is called in the middle
# of the write (after the trial row and landmarks were written, before the score and COMMIT),
# prints "in-write" and waits there to be killed.
WRITER = r"""
import sys, time
from datetime import UTC, datetime
import numpy as np
from device.store import NewScore, Store
from device.trial.types import Trial

db, mode = sys.argv[1], sys.argv[2]
armed = []

def clock():
    if armed:
        print("in-write", flush=True)
        time.sleep(60)
    return datetime.now(UTC)

n = 90
trial = Trial(
    landmarks=np.random.default_rng(1).uniform(100, 300, (n, 21, 3)).astype(np.float32),
    t=np.arange(n) / 30.0, presence=np.full(n, 0.9, np.float32),
    handedness=tuple("Left" for _ in range(n)), image_size=(640, 480), side="right",
)
store = Store(db, clock=clock)

def finish(tid):
    score = NewScore(final_score=1)
    store.finish_trial(tid, "scored", trial=trial, score=score, finished_at=datetime.now(UTC))

for _ in range(3):
    tid = store.begin_trial(side="right", started_at=datetime.now(UTC))
    finish(tid)
    print("done", tid, flush=True)
if mode == "finish":
    tid = store.begin_trial(side="right", started_at=datetime.now(UTC))
    print("begun", tid, flush=True)
    armed.append(1)
    finish(tid)
else:
    armed.append(1)
    store.begin_trial(side="right")
print("not killed", flush=True)
"""


@pytest.mark.parametrize("mode", ["finish", "begin"])
def test_kill_9_inside_a_database_write_leaves_a_sound_store(mode: str, tmp_path: Path) -> None:
    db = tmp_path / "state" / "flexscore.db"
    old_id, label_id = seed_history(db)
    lines: list[str] = []
    cmd = [sys.executable, "-c", WRITER, str(db), mode]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.strip())
                if line.startswith("in-write"):
                    break
            assert lines and lines[-1] == "in-write", lines
        finally:
            proc.kill()  # SIGKILL with the transaction open
            proc.wait(timeout=30)
    assert proc.returncode == -9
    done = [int(x.split()[1]) for x in lines if x.startswith("done")]
    assert len(done) == 3

    with Store(db) as store:  # what the daemon does on start
        assert store.integrity_check() == ["ok"]
        reaped = store.reap_interrupted()
        trials = {t.id: t for t in store.list_trials(limit=100)}
        for tid in [old_id, *done]:  # every committed trial is whole
            t = trials[tid]
            assert t.status == "scored" and t.score is not None and t.has_landmarks
        assert [lab.id for lab in store.labels_for(old_id)] == [label_id]
        scored_without_score = [t.id for t in trials.values() if t.status == "scored" and t.score is None]
        assert scored_without_score == []
        if mode == "finish":
            begun = int(next(x for x in lines if x.startswith("begun")).split()[1])
            assert reaped == 1 and trials[begun].status == "interrupted"
            assert not trials[begun].has_landmarks and store.scores_for(begun) == []
            assert set(trials) == {old_id, *done, begun}
        else:  # the row being inserted never appears
            assert reaped == 0 and set(trials) == {old_id, *done}
        assert store.count_trials() == len(trials)
