"""sd_notify over a real unix datagram socket."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from device import sdnotify


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(str(path))
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock
    finally:
        sock.close()


def recv(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_messages_arrive_as_datagrams(listener: socket.socket) -> None:
    assert sdnotify.ready("serving on\n127.0.0.1:8080")
    assert recv(listener) == "READY=1\nSTATUS=serving on 127.0.0.1:8080"
    assert sdnotify.status("camera lost")
    assert recv(listener) == "STATUS=camera lost"
    assert sdnotify.watchdog()
    assert recv(listener) == "WATCHDOG=1"
    assert sdnotify.stopping()
    assert recv(listener) == "STOPPING=1"


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"flexscore-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.watchdog()
        assert recv(sock) == "WATCHDOG=1"


def test_no_op_without_systemd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.ready()
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert not sdnotify.watchdog()
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert not sdnotify.watchdog()  # logged, never raised


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert sdnotify.watchdog_interval() is None


def test_a_full_queue_drops_the_message_instead_of_blocking(listener: socket.socket) -> None:
    """Nobody reads the socket: after the kernel's queue is full, sends fail at once."""
    results = [sdnotify.watchdog() for _ in range(200)]  # far more than max_dgram_qlen
    assert results[0] and not results[-1]
    assert recv(listener) == "WATCHDOG=1"
