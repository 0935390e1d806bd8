"""Issue 18's acceptance on the real appliance: with no hand in view the recording does not
start, and the page says why.

``flexscore run`` in its own process with the real tracker on the synthetic camera (a moving
square: nothing a hand model takes for a hand), ``[trial] hand_wait_s = 2``; the button is
pressed with ``flexscore press`` and ``/api/status`` is read like the live page reads it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from daemon_helpers import Daemon, db_rows, wait_for

pytestmark = pytest.mark.slow  # one daemon start (models, camera)


def test_no_hand_in_view_the_recording_does_not_start_and_the_status_says_why(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[camera]\nbackend = "synthetic"\n\n[trial]\nhand_wait_s = 2.0\n\n[unit]\npatient = "HOME02"\n'
    )
    daemon = Daemon(tmp_path / "state", "--config", str(config))
    try:
        daemon.wait_ready()
        daemon.login()
        idle = wait_for(lambda: (s := daemon.status())["guidance"] and s, 30, "the guidance")
        assert idle["state"] == "idle" and idle["guidance"]["code"] == "no_hand"
        assert idle["prompt"] == "No hand in view: hold the open hand in front of the camera."

        assert daemon.press() == "press: countdown"
        waiting = daemon.wait_state("countdown")
        assert waiting["phase"] == "waiting" and waiting["remaining_s"] == 3.0  # held, not counting
        assert waiting["prompt"] == idle["prompt"]

        rejected = daemon.wait_state("rejected", "recording", timeout=60)
        assert rejected["state"] == "rejected", daemon.output()[-3000:]  # never recording
        assert rejected["reasons"] == ["no_hand"]
        assert rejected["prompt"].startswith("No hand in view: hold the open hand in front of the camera")
        assert "the recording did not start; waited 5 s" in rejected["prompt"]
        assert db_rows(daemon.db, "SELECT COUNT(*) FROM trials")[0][0] == 0  # nothing recorded
        assert daemon.status()["last_trial"] is None
        rc, _ = daemon.terminate()
        assert rc == 0, daemon.output()[-3000:]
    finally:
        daemon.cleanup()
