"""The control socket: ``flexscore press`` talks to the running daemon over a Unix socket.

:class:`ControlServer` listens on ``<state dir>/control.sock`` (mode 0660: the service user
and its group) and answers one line per connection; :func:`send_control` is the client.
Commands go to the appliance core (:class:`device.appliance.Appliance`), like the panel's
button: ``press`` (start for the bound patient / end the recording early / cancel the
countdown), ``cancel``, ``status``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

from device.errors import FlexscoreError

log = logging.getLogger(__name__)

CONTROL_SOCKET = "control.sock"
COMMANDS = ("press", "cancel", "status")


def control_answer(appliance: Any, cmd: str) -> str:
    """The answer line for one command (``ok <state>`` or ``error <why>``)."""
    if appliance is None:
        return "error not running"
    if cmd == "press":
        return f"ok {appliance.press(origin='control')}"
    if cmd == "cancel":
        return f"ok {appliance.recorder.cancel('control')}"
    if cmd == "status":
        return f"ok {appliance.recorder.state}"
    return f"error unknown command {cmd!r} ({', '.join(COMMANDS)})"


class ControlServer:
    """Serves the control socket on its own thread until :meth:`close`."""

    def __init__(self, state_dir: Path, appliance: Any, stop_event: threading.Event) -> None:
        self.path = Path(state_dir) / CONTROL_SOCKET
        self.appliance = appliance
        self.stop_event = stop_event
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ControlServer:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(self.path))
            os.chmod(self.path, 0o660)
            sock.listen(4)
            sock.settimeout(0.5)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._thread = threading.Thread(target=self._loop, name="control", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        assert self._sock is not None
        while not self.stop_event.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2.0)
                try:
                    cmd = conn.recv(64).decode("ascii", "replace").strip()
                    conn.sendall((control_answer(self.appliance, cmd) + "\n").encode())
                except OSError as exc:
                    log.debug("control connection: %s", exc)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> ControlServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def send_control(state_dir: Path, command: str, timeout: float = 3.0) -> str:
    """Send one command to a running daemon's control socket and return its answer."""
    path = Path(state_dir) / CONTROL_SOCKET
    if not path.exists():
        raise FlexscoreError(f"no running flexscore daemon found (no control socket at {path})")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(command.encode() + b"\n")
            answer = sock.recv(256).decode(errors="replace").strip()
        except OSError as exc:
            raise FlexscoreError(f"cannot reach the daemon at {path}: {exc}") from None
    if not answer.startswith("ok"):
        raise FlexscoreError(f"daemon refused {command!r}: {answer}")
    return answer[3:]
