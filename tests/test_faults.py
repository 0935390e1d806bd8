"""Issue 8 fault cases on the composed appliance (in process, real tracker, store and web).

The camera is a :class:`SyntheticSource` drawing the bundled open → fist → open clip at its
own 15 fps, so faults are scripted (``stall``, ``fail_opens``) instead of timed. Each wait
polls a condition with a deadline; nothing asserts on speed.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from daemon_helpers import wait_for
from gpiozero.pins.mock import MockFactory

from device.app import FlexscoreApp, send_control
from device.camera import FrameSource, SyntheticSource, open_source
from device.config import CameraConfig, Config, PanelConfig, UnitConfig
from device.errors import InputError
from device.store import NewScore, RecorderSink, Store
from device.trial.recorder import RecorderState, TrialRecorder
from device.vision.types import HandObservation
from device.web.services import trial_outcome

TRIAL_TIMEOUT_S = 60.0
FAST_CAMERA = CameraConfig(stall_timeout_s=1.0, restart_delay_s=0.1, max_restart_delay_s=0.4, max_restarts=50)


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    from device.data import SAMPLE_VIDEO
    from device.video import read_frames

    return [cv2.resize(rgb, (640, 480)) for _, _, rgb in read_frames(SAMPLE_VIDEO)]


def clip_source(clip: list[np.ndarray]) -> SyntheticSource:
    return SyntheticSource(640, 480, 15.0, paced=True, draw=lambda i: clip[i % len(clip)])


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., FlexscoreApp]]:
    apps: list[FlexscoreApp] = []

    def make(
        factory: Callable[[], FrameSource], *, camera: CameraConfig = FAST_CAMERA, **sections: Any
    ) -> FlexscoreApp:
        sections.setdefault("unit", UnitConfig(patient="T001"))  # the unit's patient: the button records
        app = FlexscoreApp(
            Config(camera=camera, **sections),
            state_dir=tmp_path / "state",
            pin_factory=MockFactory(),
            source_factory=factory,
            host="127.0.0.1",
            port=0,
        )
        apps.append(app)
        app.start()
        return app

    yield make
    for app in apps:
        app.stop()


def api_status(app: FlexscoreApp) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{app.port}/api/status", timeout=5) as r:
        doc: dict[str, Any] = json.load(r)
        return doc


def outcome_of(app: FlexscoreApp, trial_id: int | None = None) -> Any:
    """Wait until the (given or last) stored trial has a final status; return it."""

    def done() -> Any:
        t = app.store.get_trial(trial_id) if trial_id else app.store.last_trial()
        return t if t is not None and t.status not in ("recording", "scoring") else None

    return wait_for(done, TRIAL_TIMEOUT_S, "the trial's outcome", 0.1)


def wait_state(app: FlexscoreApp, state: RecorderState, timeout: float = TRIAL_TIMEOUT_S) -> None:
    assert app.recorder is not None
    rec = app.recorder
    wait_for(lambda: rec.state is state, timeout, f"recorder {state}", 0.05)


# ---------------------------------------------------------------------------------- camera


@pytest.mark.slow
def test_camera_stopping_mid_trial_rejects_it_then_the_watchdog_restarts_and_the_next_trial_scores(
    make_app: Callable[..., FlexscoreApp], clip: list[np.ndarray]
) -> None:
    cam = clip_source(clip)
    app = make_app(lambda: cam)
    wait_for(lambda: app.status()["camera"] == "ok", 60, "camera ok")
    assert app.panel is not None and app.watchdog is not None
    app._press()
    wait_state(app, RecorderState.RECORDING)
    cam.stall()  # the ribbon cable works loose
    first = outcome_of(app)
    assert first.status == "rejected"
    assert first.reasons[0]["code"] == "camera_lost", first.reasons
    assert first.score is None
    wait_for(lambda: app.watchdog and app.watchdog.restarts >= 1, 30, "a camera restart")
    assert api_status(app)["camera"] in ("lost", "restarting")
    assert str(app.panel.history[-1][0]) == "camera_lost"  # the LED shows it too
    cam.resume()  # reseated
    wait_for(lambda: app.status()["camera"] == "ok", 30, "camera ok again")
    app._press()  # a press while the rejection is shown starts the next trial
    second = outcome_of(app, first.id + 1)
    assert second.status == "scored", second.reasons
    assert second.score is not None and second.score.final_score in (0, 1, 2)
    assert app.store.get_trial(first.id) == first  # the rejected trial is kept as it was


def test_a_camera_that_cannot_open_keeps_the_daemon_up_and_retries_with_back_off(
    make_app: Callable[..., FlexscoreApp],
) -> None:
    missing = CameraConfig(backend="opencv", device="/dev/flexscore-no-such-camera")
    good = SyntheticSource(64, 48, 30.0, paced=True)
    calls: list[str] = []

    def factory() -> FrameSource:  # the real OpenCV backend on a device that is not there
        calls.append("open")
        return open_source(missing) if len(calls) <= 4 else good

    app = make_app(factory)
    wait_for(lambda: len(calls) >= 3, 30, "retries")
    st = api_status(app)  # the page and the patient see it; no login needed
    assert st["camera"] in ("lost", "restarting") and st["state"] == "idle"
    wait_for(lambda: app.status()["camera"] == "ok", 30, "the camera to appear")
    assert app.watchdog is not None
    delays = list(app.watchdog.delays)[:4]
    assert delays == sorted(delays) and delays[0] == FAST_CAMERA.restart_delay_s
    assert max(delays) <= FAST_CAMERA.max_restart_delay_s and delays[-1] > delays[0]
    assert api_status(app)["camera"] == "ok"


# ---------------------------------------------------------------------------------- disk full


def test_a_full_disk_refuses_the_trial_with_a_clear_message_and_keeps_stored_data(
    make_app: Callable[..., FlexscoreApp],
) -> None:
    app = make_app(lambda: SyntheticSource(64, 48, 30.0, paced=True))
    tid = app.store.begin_trial(side="left", origin="seed")
    app.store.finish_trial(tid, "scored", score=NewScore(final_score=2))
    before = app.store.get_trial(tid)
    app.min_free_bytes = 1 << 62  # what a full SD card looks like to the appliance
    assert send_control(app.state_dir, "press") == "rejected"  # the button / flexscore press
    assert app.recorder is not None and app.recorder.info is not None
    reason = app.recorder.info.reasons[0]
    assert reason.code == "disk_full" and "the disk is full" in reason.message
    assert "MB free" in reason.message
    assert api_status(app)["reasons"] == ["disk_full"]
    with pytest.raises(InputError, match="the disk is full"):  # the page's Start button: a 400
        app.start_trial(None, "left")
    assert app.store.count_trials() == 1 and app.store.get_trial(tid) == before


def _observation(i: int, t: float) -> HandObservation:
    lm = np.full((21, 3), 300.0, np.float32)
    lm[:, 0] += np.arange(21) * 5 + 20 * np.sin(i / 5)
    lm[:, 1] += np.arange(21) * 4
    return HandObservation(i, t, (640, 480), True, 0.9, "Left", 0.9, lm)


def _run_trial(rec: TrialRecorder, now: list[float]) -> None:
    rec.start(side="right", origin="web")
    now[0] += 3.0
    rec.tick()
    for i in range(200):
        now[0] += 1 / 30
        rec.on_observation(_observation(i, now[0]))


def test_sqlite_full_during_the_outcome_write_loses_nothing_stored(tmp_path: Path) -> None:
    """A disk that fills up between a trial's start and its result (SQLITE_FULL injected
    with ``PRAGMA max_page_count``): the result is not half-written, the trial is marked
    "not saved", every earlier trial is intact."""
    now = [0.0]

    class R:
        score = 1
        probabilities = (0.1, 0.8, 0.1)
        confidence = 0.8

    with Store(tmp_path / "flexscore.db") as store:
        rec = TrialRecorder(lambda trial: R(), submit=lambda fn: fn(), clock=lambda: now[0])
        sink = RecorderSink(store, lambda change: trial_outcome(change, model_version="m"))
        rec.add_listener(sink)
        _run_trial(rec, now)
        kept = store.list_trials()
        assert [t.status for t in kept] == ["scored"]
        landmarks = store.load_trial(kept[0].id).landmarks
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now full
        now[0] += 20
        rec.tick()
        _run_trial(rec, now)
        rec.close()
        assert sink.last_error is not None and "is full, so nothing was saved" in str(sink.last_error)
        trials = store.list_trials()
        assert [t.status for t in trials] == ["error", "scored"]
        assert trials[0].reasons[0]["code"] == "not_saved" and trials[0].score is None
        assert not trials[0].has_landmarks
        assert trials[1] == kept[0]
        np.testing.assert_array_equal(store.load_trial(kept[0].id).landmarks, landmarks)
        assert store.integrity_check() == ["ok"]


# ---------------------------------------------------------------------------------- database


@pytest.mark.slow
def test_a_locked_database_refuses_the_trial_then_recovers(
    make_app: Callable[..., FlexscoreApp], clip: list[np.ndarray]
) -> None:
    app = make_app(lambda: clip_source(clip))
    wait_for(lambda: app.status()["camera"] == "ok", 60, "camera ok")
    other = sqlite3.connect(app.store.path, timeout=0.1, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # a maintainer's sqlite3 holds the write lock
        app._press()
        wait_for(lambda: app.recorder and app.recorder.state is RecorderState.REJECTED, 30, "refusal")
        assert app.recorder is not None and app.recorder.info is not None
        reason = app.recorder.info.reasons[0]
        assert reason.code == "not_saved" and "locked by another writer" in reason.message
        assert "locked" in str(app.status().get("store_error"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert app.store.count_trials() == 0
    app._press()  # once released, trials are stored again
    wait_state(app, RecorderState.RECORDING)
    wait_for(lambda: app.store.count_trials() == 1, 10, "the trial row")
    assert "store_error" not in app.status()


def test_a_database_locked_at_start_does_not_stop_the_daemon(
    tmp_path: Path, make_app: Callable[..., FlexscoreApp]
) -> None:
    db = tmp_path / "state" / "flexscore.db"
    with Store(db) as s:
        s.begin_trial(side="left")  # left open by a crash
    other = sqlite3.connect(db, timeout=0.1, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        app = make_app(lambda: SyntheticSource(64, 48, 30.0, paced=True))
        assert "locked by another writer" in str(app.status()["store_error"])
        assert "marked interrupted at the next stop" in str(app.status()["store_error"])
    finally:
        other.execute("ROLLBACK")
        other.close()
    app.stop()
    with Store(db) as s:
        assert [t.status for t in s.list_trials()] == ["interrupted"]


@pytest.mark.parametrize("damage", ["garbage", "page"])
def test_a_damaged_database_is_kept_aside_and_the_appliance_starts_on_a_new_one(
    damage: str, tmp_path: Path, make_app: Callable[..., FlexscoreApp]
) -> None:
    db = tmp_path / "state" / "flexscore.db"
    if damage == "garbage":
        db.parent.mkdir(parents=True)
        db.write_bytes(b"this is not an SQLite file\n" * 100)
    else:
        with Store(db) as s:
            for _ in range(5):
                s.finish_trial(s.begin_trial(side="left"), "scored", score=NewScore(final_score=1))
            root = s.conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'scores'").fetchone()[0]
            s.checkpoint()
        with db.open("r+b") as f:  # a bad sector in the scores table
            f.seek((root - 1) * 4096 + 8)
            f.write(b"\xff" * 64)
    damaged = db.read_bytes()
    app = make_app(lambda: SyntheticSource(64, 48, 30.0, paced=True))
    kept = list(db.parent.glob("flexscore.db.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged  # never written to, never deleted
    notice = str(app.status()["store_error"])
    assert "was damaged and was moved to" in notice and str(kept[0]) in notice
    assert app.store.integrity_check() == ["ok"] and app.store.count_trials() == 0
    assert app.store.list_audit()[0].action == "store_quarantined"


# ---------------------------------------------------------------------------------- clock


def test_the_wall_clock_jumping_backwards_breaks_neither_ordering_nor_durations(tmp_path: Path) -> None:
    wall = [datetime(2026, 11, 26, 12, 0, tzinfo=UTC)]
    mono = [0.0]
    with Store(tmp_path / "flexscore.db", clock=lambda: wall[0]) as store:
        rec = TrialRecorder(
            lambda trial: type("R", (), {"score": 2})(),
            submit=lambda fn: fn(),
            clock=lambda: mono[0],
            wall=lambda: wall[0],
        )
        rec.add_listener(RecorderSink(store, trial_outcome))
        ids = []
        for jump in (0, -3600, -86400):  # NTP corrects a clock that ran an hour, a day ahead
            wall[0] += timedelta(hours=jump / 3600)
            rec.start(side="right")
            mono[0] += 3.0
            rec.tick()
            for i in range(185):  # 6 s at 30 fps on the monotonic clock, and a few more
                mono[0] += 1 / 30
                if i == 90:
                    wall[0] -= timedelta(minutes=5)  # and once in the middle of a recording
                rec.on_observation(_observation(i, mono[0]))
            assert rec.state is RecorderState.RESULT and rec.info is not None
            assert 178 <= rec.info.frames <= 182  # the recording lasted its 6 s regardless
            ids.append(store.last_trial().id)  # type: ignore[union-attr]
            mono[0] += 20
            rec.tick()
        rec.close()
        trials = store.list_trials()
        assert [t.id for t in trials] == sorted(ids, reverse=True)  # newest first, by id
        assert all(t.status == "scored" for t in trials)
        assert store.last_trial().id == ids[-1]  # type: ignore[union-attr]
        assert trials[0].started_at < trials[-1].started_at  # the wall times went back


def test_uptime_is_measured_on_the_monotonic_clock(
    make_app: Callable[..., FlexscoreApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(lambda: SyntheticSource(64, 48, 30.0, paced=True))
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 7200)  # the clock goes back 2 h
    info = app.system_info()
    assert 0 <= info.uptime_s < 600
    # the status page names the scorer that will score the next trial, and how
    assert info.settings["scoring"].startswith("hand frame")
    assert info.settings["scorer in use"].startswith("scorer_hand_int8@")


# ---------------------------------------------------------------------------------- power


def test_a_long_press_makes_pulling_the_plug_safe(
    tmp_path: Path, make_app: Callable[..., FlexscoreApp]
) -> None:
    """Shutdown-safe idle: the running trial is cancelled, the WAL is folded into the
    database file (so the file alone holds every trial), the LED goes off and stays off."""
    panel = PanelConfig(long_press_s=0.2, bounce_s=0)
    app = make_app(lambda: SyntheticSource(64, 48, 30.0, paced=True), panel=panel)
    assert app.panel is not None and app.recorder is not None
    tid = app.store.begin_trial(side="left", origin="seed")
    app.store.finish_trial(tid, "scored", score=NewScore(final_score=1))
    assert app._press() == "countdown"
    button = app.panel.button.pin  # gpiozero's mock pin behind the configured button
    button.drive_low()  # held down…
    wait_for(lambda: app.safe, 10, "the long press")
    button.drive_high()
    rec = app.recorder
    assert rec.info is not None and rec.info.reasons[0].code == "cancelled"
    wal = app.store.path.with_name("flexscore.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "only-the-db-file.db"  # what survives if the WAL were lost with power
    copy.write_bytes(app.store.path.read_bytes())
    with Store(copy) as s:
        assert [t.id for t in s.list_trials()] == [tid]
    wait_for(lambda: rec.state is RecorderState.IDLE, 10, "idle after the cancel")
    assert str(app.panel.history[-1][0]) == "safe"  # still off: the recorder's idle did not undo it
    assert app._press() == "countdown" and not app.safe
