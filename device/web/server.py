"""Waitress in a background thread, stopped without the close/poll race.

Closing a waitress server's listening socket from another thread while its loop is inside
``poll()`` makes the loop raise ``EBADF`` (``OSError``) or ``ValueError`` in the server
thread: a traceback at every clean stop. :class:`ServerThread` expects exactly that once
:meth:`stop` has been called, and lets any other error through.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)


class ServerThread:
    """Runs ``server.run()`` (a waitress server) in a daemon thread until :meth:`stop`."""

    def __init__(self, server: Any, name: str = "web") -> None:
        self.server = server
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.server.run()
        except (OSError, ValueError):
            if not self._stopping.is_set():
                log.exception("the web server stopped unexpectedly")
                raise

    def stop(self, timeout: float = 5.0) -> None:
        """Close the server and wait (bounded) for its thread."""
        self._stopping.set()
        self.server.close()
        self.thread.join(timeout)
