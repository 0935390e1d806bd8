"""systemd's sd_notify protocol with a plain socket (no dependency, no-op outside systemd).

With ``Type=notify`` systemd sets ``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract
namespace); we send one datagram per message: ``READY=1`` once serving, ``STATUS=…`` for
``systemctl status``, ``WATCHDOG=1`` at least every ``WatchdogSec`` (only while frames flow)
and ``STOPPING=1`` on shutdown. Every function returns whether a message was sent and never
raises or blocks: losing a notification must not take the appliance down, and a full socket
queue (a reader that falls behind; Linux queues only ``net.unix.max_dgram_qlen`` datagrams)
drops the message instead of stalling the caller.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def _address(env: str) -> str | bytes | None:
    if not env:
        return None
    if env.startswith("@"):
        return b"\0" + env[1:].encode()
    if env.startswith("/"):
        return env
    return None  # vsock and other forms are not used on the appliance


def notify(message: str) -> bool:
    """Send ``message`` (``KEY=VALUE`` lines) to systemd; False when not under systemd."""
    addr = _address(os.environ.get("NOTIFY_SOCKET", ""))
    if addr is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)  # a reader that falls behind must never stall the appliance
            sock.connect(addr)
            sock.send(message.encode())
        return True
    except OSError as exc:
        log.warning("sd_notify %r failed: %s", message.split("=", 1)[0], exc)
        return False


def ready(status: str | None = None) -> bool:
    """The service is up (``READY=1``), optionally with a status line."""
    return notify("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))


def status(text: str) -> bool:
    return notify(f"STATUS={_one_line(text)}")


def watchdog() -> bool:
    """Pet systemd's watchdog (``WATCHDOG=1``)."""
    return notify("WATCHDOG=1")


def stopping(status: str | None = None) -> bool:
    return notify("STOPPING=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))


def watchdog_interval() -> float | None:
    """Seconds between required ``WATCHDOG=1`` messages (half of ``WatchdogSec``, the
    margin systemd recommends), or None when no watchdog is set for this process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1e6 / 2


def _one_line(text: str) -> str:
    return " ".join(text.split())
