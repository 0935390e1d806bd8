"""The real appliance end to end: ``flexscore run`` in its own process on the bundled sample
video (the demo default), mock GPIO, a clinician password from the environment.

``flexscore press`` presses the button; the trial must come out scored in SQLite and at
``/api/trials``; SIGTERM must then stop the daemon within 5 s with exit code 0, no trial left
open and the WAL folded into the database file.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from daemon_helpers import FINAL, STOP_LIMIT_S, Daemon, db_rows, integrity, wait_for

pytestmark = pytest.mark.slow  # one daemon start (models, camera) and one 9 s trial


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "state")
    try:
        yield d
    finally:
        d.cleanup()


def test_a_pressed_trial_is_scored_stored_served_and_sigterm_stops_cleanly(daemon: Daemon) -> None:
    first = daemon.wait_ready()
    assert first["state"] == "idle" and "last_trial" not in first  # anonymous: device state only
    assert "flexscore: running" in daemon.output()
    daemon.login()  # the clinician sees the trials
    assert daemon.status()["last_trial"] is None

    assert daemon.press() == "press: countdown"
    daemon.wait_state("recording")
    last = wait_for(
        lambda: (t := daemon.status()["last_trial"]) and t["status"] in FINAL and t,
        90,
        "the trial's outcome",
    )
    # The bundled clip is a real open → fist → open hand: it must be scored.
    assert last["status"] == "scored", daemon.output()[-3000:]
    assert last["score"] in (0, 1, 2) and last["finished_at"]

    rows = db_rows(
        daemon.db,
        "SELECT t.id, t.status, t.origin, s.final_score, s.model_version, "
        "(SELECT num_frames FROM landmarks l WHERE l.trial_id = t.id) AS frames "
        "FROM trials t JOIN scores s ON s.trial_id = t.id",
    )
    assert len(rows) == 1
    row = rows[0]
    assert (row["id"], row["status"], row["origin"]) == (last["id"], "scored", "control")
    assert row["final_score"] == last["score"] and row["model_version"]
    assert row["frames"] >= 30  # ≥ 2 s of landmarks kept for re-scoring (15 fps clip, 6 s)

    daemon.login()
    api = daemon.get("/api/trials")["trials"]
    assert [t["id"] for t in api] == [last["id"]]
    assert api[0]["status"] == "scored"

    viewer = daemon.open("/stream.mjpg")  # a live viewer is connected at SIGTERM
    assert b"image/jpeg" in viewer.read(4096)
    rc, took = daemon.terminate()
    assert rc == 0, daemon.output()[-3000:]
    assert took < STOP_LIMIT_S, f"SIGTERM took {took:.1f} s"
    assert "flexscore: stopped" in daemon.output()
    with contextlib.suppress(OSError):
        while viewer.read(65536):  # the stream was ended, not left hanging
            pass
    viewer.close()
    assert (
        db_rows(daemon.db, "SELECT COUNT(*) FROM trials WHERE status IN ('recording', 'scoring')")[0][0] == 0
    )
    wal = daemon.db.with_name("flexscore.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "WAL not checkpointed"
    assert not (daemon.state_dir / "control.sock").exists()
    assert integrity(daemon.db) == "ok"


def test_sigterm_during_recording_marks_the_trial_interrupted_and_sd_notify_is_spoken(tmp_path: Path) -> None:
    """Also systemd's side: READY=1 once serving, WATCHDOG=1 every WatchdogSec/2 while the
    camera loop steps, STATUS lines, STOPPING=1 on SIGTERM — on a socket like systemd's."""
    sock_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(sock_path))
    notify.settimeout(0.2)
    sent: list[str] = []
    done = threading.Event()

    def systemd() -> None:  # reads promptly, as systemd does
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                sent.append(notify.recv(4096).decode())

    reader = threading.Thread(target=systemd, daemon=True)
    reader.start()
    env = {"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "2000000"}  # WatchdogSec=2
    daemon = Daemon(tmp_path / "state", env=env)
    try:
        _sigterm_during_recording(daemon)
    finally:
        daemon.cleanup()
        done.set()
        reader.join(5)
        notify.close()
    ready = [i for i, m in enumerate(sent) if m.startswith("READY=1\nSTATUS=running on http://127.0.0.1:")]
    assert len(ready) == 1, sent
    pets = [i for i, m in enumerate(sent) if m == "WATCHDOG=1"]
    assert len(pets) >= 2 and pets[0] > ready[0], sent  # the 3 s countdown alone spans 3 intervals
    assert any(m == "STATUS=countdown camera ok" for m in sent), sent
    stopping = [i for i, m in enumerate(sent) if m.startswith("STOPPING=1")]
    assert len(stopping) == 1 and stopping[0] > pets[-1], sent


def _sigterm_during_recording(daemon: Daemon) -> None:
    daemon.wait_ready()
    daemon.press()
    daemon.wait_state("recording")
    wait_for(lambda: db_rows(daemon.db, "SELECT id FROM trials"), 10, "the trial row")
    rc, took = daemon.terminate()
    assert rc == 0 and took < STOP_LIMIT_S, (rc, took, daemon.output()[-3000:])
    rows = db_rows(daemon.db, "SELECT status, reasons FROM trials")
    assert [r["status"] for r in rows] == ["interrupted"]
    assert "stopped during this trial" in rows[0]["reasons"]
    assert db_rows(daemon.db, "SELECT COUNT(*) FROM scores")[0][0] == 0
    assert integrity(daemon.db) == "ok"


def test_peak_rss_is_the_childs_own_not_its_parents() -> None:
    """The tracking-loop benchmark runs in a child to report the loop's own peak memory; a
    child's ``ru_maxrss`` inherits the parent's peak across fork + exec, VmHWM does not."""
    ballast = np.ones(200 * 1024 * 1024 // 8)  # 200 MB touched in this (parent) process
    code = (
        "import resource; from device.tools.loop_bench import peak_rss_kb; "
        "print(peak_rss_kb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    own_kb, inherited_kb = (int(v) for v in out.stdout.split())
    assert ballast.sum() > 0
    assert own_kb < 150 * 1024  # numpy + device.tools.loop_bench imported: well under the parent's ballast
    if sys.platform == "linux":
        assert inherited_kb > own_kb  # what the benchmark used to report
