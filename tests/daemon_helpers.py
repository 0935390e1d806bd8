"""Run the real ``flexscore run`` daemon in a child process and talk to it like a user would.

Used by the daemon integration test and the fault tests. Nothing here sleeps for a fixed
time to "let things settle": every wait polls a condition with a deadline.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

PASSWORD = "daemon-test-password-1"
START_TIMEOUT_S = 120.0  # imports, models and the camera on a loaded 2-core machine
TRIAL_TIMEOUT_S = 90.0  # countdown 3 s + recording 6 s + scoring, with room for load
STOP_LIMIT_S = 5.0  # SIGTERM → exit (the acceptance bound)
FINAL = ("scored", "rejected", "cancelled", "error", "interrupted")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def flexscore_exe() -> str:
    return str(Path(sys.executable).with_name("flexscore"))


def daemon_env() -> dict[str, str]:
    return dict(os.environ, GPIOZERO_PIN_FACTORY="mock", FLEXSCORE_PASSWORD=PASSWORD)


def wait_for(cond: Callable[[], Any], timeout: float, what: str, poll: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def db_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    """Read the daemon's database from outside (as a maintainer's sqlite3 would)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def integrity(db: Path) -> str:
    return str(db_rows(db, "PRAGMA integrity_check")[0][0])


class Daemon:
    """One ``flexscore run`` child process on ``state_dir`` with a free port."""

    def __init__(self, state_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = state_dir.parent / f"{state_dir.name}-daemon-{self.port}.log"
        cmd = [flexscore_exe(), "run", "--state-dir", str(state_dir), "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), *extra]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env={**daemon_env(), **(env or {})}
            )
        self._jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self._jar))

    @property
    def db(self) -> Path:
        return self.state_dir / "flexscore.db"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    # -- web -------------------------------------------------------------------------------
    def get(self, path: str, timeout: float = 5.0) -> Any:
        with self._opener.open(self.base + path, timeout=timeout) as r:
            return json.load(r)

    def open(self, path: str, timeout: float = 10.0) -> Any:
        """An open response (for streams); the caller closes it."""
        return self._opener.open(self.base + path, timeout=timeout)

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.get("/api/status")
        return doc

    def post_json(self, path: str, body: dict[str, Any], timeout: float = 10.0) -> Any:
        """POST a JSON body as the page does (the session's CSRF token in the header)."""
        token = self.get("/api/session")["csrf_token"]
        req = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-CSRF-Token": token},
            method="POST",
        )
        with self._opener.open(req, timeout=timeout) as r:
            return json.load(r)

    def login(self) -> None:
        token = self.get("/api/session")["csrf_token"]
        body = urllib.parse.urlencode({"password": PASSWORD, "csrf_token": token}).encode()
        with self._opener.open(f"{self.base}/login", data=body, timeout=5) as r:
            assert r.status == 200, r.status
        assert self.get("/api/session")["role"] == "clinician"

    def wait_ready(self) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            try:
                st = self.status()
            except OSError:
                return None
            return st if st.get("camera") == "ok" and st.get("fps", 0) > 0 else None

        result: dict[str, Any] = wait_for(ready, START_TIMEOUT_S, "the daemon to serve frames", 0.3)
        return result

    def wait_state(self, *states: str, timeout: float = TRIAL_TIMEOUT_S) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            st = self.status()
            return st if st["state"] in states else None

        result: dict[str, Any] = wait_for(reached, timeout, f"state {states}", 0.05)
        return result

    # -- control -----------------------------------------------------------------------------
    def press(self, command: str = "press") -> str:
        out = subprocess.run(
            [flexscore_exe(), "press", "--state-dir", str(self.state_dir), "--command", command],
            capture_output=True,
            text=True,
            timeout=60,
            env=daemon_env(),
            check=False,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds to exit)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon ignored SIGTERM:\n{self.output()[-3000:]}") from None
        return rc, time.monotonic() - t0

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
