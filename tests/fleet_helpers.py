"""A real Mosquitto (Debian's) for the fleet tests, a subscriber that records what arrives,
and a TCP proxy that withholds the broker's acknowledgements.

The broker runs on a free loopback port with a password file (``mosquitto_passwd``) and an
ACL: each unit's user may write only under ``<prefix>/<its user name>/#``; the clinic's user
reads everything. Nothing here sleeps to let things settle: waits poll with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from daemon_helpers import free_port, wait_for

from device.fleet.client import Broker, connect, new_client

CLINIC = ("clinic", "clinic-pass-1")
UNITS = {"kit1": "kit1-pass-1", "kit2": "kit2-pass-2", "kit3": "kit3-pass-3", "kit4": "kit4-pass-4"}


def mosquitto_exe() -> str:
    exe = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if exe is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto is not installed (scripts/test.sh installs Debian's mosquitto)")
    return exe


class Mosquitto:
    """One broker process in ``workdir`` (config, password file, ACL, persistence)."""

    def __init__(self, workdir: Path, *, persistence: bool = False) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.exe = mosquitto_exe()
        passwd = self.dir / "passwd"
        users = {CLINIC[0]: CLINIC[1], **UNITS}
        for i, (user, password) in enumerate(users.items()):
            args = ["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwd), user, password]
            subprocess.run(args, check=True, capture_output=True, timeout=30)
        acl = self.dir / "acl"
        acl.write_text(f"user {CLINIC[0]}\ntopic read #\n\npattern write +/%u/#\n")
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {passwd}",
            f"acl_file {acl}",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {self.dir}/",
            "log_type all",
        ]
        if os.getuid() == 0:  # else mosquitto drops to user "mosquitto", who cannot read the files
            lines.append("user root")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        for f in (passwd, acl):
            f.chmod(0o600)
        self.log = self.dir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.exe, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        wait_for(self._listening, 20, "mosquitto to listen", 0.05)
        return self

    def _listening(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"mosquitto exited:\n{self.output()[-2000:]}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        """SIGTERM (persistence is written), then wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def broker(self, user: str, password: str) -> Broker:
        return Broker("127.0.0.1", self.port, False, user, password)

    def password_file(self, user: str, password: str | None = None) -> Path:
        path = self.dir / f"{user}.pass" if password is None else self.dir / f"{user}-{password}.pass"
        path.write_text((password if password is not None else UNITS[user]) + "\n")
        path.chmod(0o600)
        return path


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Collector:
    """A clinic-side subscriber on its own thread that keeps every message it receives.
    ``session``: a persistent session (kept by the broker, with its QoS 1 messages, while
    this collector or the broker is down — with persistence, across a broker restart)."""

    def __init__(self, broker: Mosquitto, topics: list[str], *, session: str | None = None) -> None:
        self.mosquitto = broker
        self.topics = topics
        self.session = session
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._subacks: set[int] = set()
        self.client: mqtt.Client | None = None

    def start(self) -> Collector:
        b = self.mosquitto.broker(*CLINIC)
        client = new_client(b, self.session or f"collector-{free_port()}")
        client.on_connect = lambda c, _u, _f, rc, _p: (
            None if rc.is_failure else c.subscribe([(t, 1) for t in self.topics])
        )
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.reconnect_delay_set(0.1, 0.5)
        self._subscribed.clear()
        connect(client, b, session_expiry_s=3600 if self.session else 0)
        client.loop_start()
        self.client = client
        assert self._subscribed.wait(20), "the collector did not subscribe"
        return self

    def barrier(self) -> None:
        """Return once every message the broker had for this collector when called has
        arrived: the broker answers a new subscription after what it queued before it."""
        assert self.client is not None
        _, mid = self.client.subscribe(f"sync/{free_port()}", 1)
        wait_for(lambda: mid in self._subacks, 20, "the broker's SUBACK", 0.02)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, *_rest: Any) -> None:
        self._subacks.add(mid)
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def stop(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait(self, cond: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
        return wait_for(cond, timeout, what, 0.05)


class AckWithholdingProxy:
    """TCP proxy between a unit and the broker that forwards everything except the broker's
    PUBACKs: the broker receives (and delivers) the unit's messages, the unit never learns
    it, as when a connection dies just after a send."""

    PUBACK = 4

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()  # listening only from start(): until then, refused
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.withheld = 0

    def start(self) -> AckWithholdingProxy:
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        t = threading.Thread(target=self._accept, args=(self._server,), daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept(self, server: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            for src, dst, filt in ((client, upstream, False), (upstream, client, True)):
                t = threading.Thread(target=self._pipe, args=(src, dst, filt), daemon=True)
                t.start()
                self._threads.append(t)

    def _pipe(self, src: socket.socket, dst: socket.socket, filter_pubacks: bool) -> None:
        buf = b""
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                ready, _, _ = select.select([src], [], [], 0.2)
                if not ready:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                if not filter_pubacks:
                    dst.sendall(data)
                    continue
                buf += data
                for packet in self._packets(buf):
                    buf = buf[len(packet) :]
                    if packet[0] >> 4 == self.PUBACK:
                        self.withheld += 1
                    else:
                        dst.sendall(packet)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.close()

    @staticmethod
    def _packets(buf: bytes) -> Iterator[bytes]:
        """Whole MQTT packets at the start of ``buf`` (fixed header + remaining length)."""
        pos = 0
        while pos + 2 <= len(buf):
            length, mult, i = 0, 1, pos + 1
            while True:
                if i >= len(buf):
                    return
                byte = buf[i]
                length += (byte & 127) * mult
                mult *= 128
                i += 1
                if not byte & 128:
                    break
            end = i + length
            if end > len(buf):
                return
            yield buf[pos:end]
            pos = end

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        if self._server is not None:
            self._server.close()


def fleet_config(path: Path, broker_url: str, unit_id: str, *, username: str | None = None,
                 password_file: Path | None = None, prefix: str = "flexscore") -> Path:  # fmt: skip
    """A daemon config: a unit bound to a home patient (the button records for them), short
    trials (2 s) and a publisher that retries within 2 s."""
    user = username or unit_id
    lines = [
        "[unit]",
        'patient = "HOME01"',
        "[trial]",
        "duration_s = 2.0",
        "[fleet]",
        f'broker = "{broker_url}"',
        f'unit_id = "{unit_id}"',
        f'username = "{user}"',
        f'password_file = "{password_file}"',
        f'topic_prefix = "{prefix}"',
        "reconnect_max_s = 2.0",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def trial_messages(received: list[Received]) -> list[dict[str, Any]]:
    return [m.json() for m in received]


def wait_fleet_state(daemon: Any, state: str, timeout: float = 60.0) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        fleet = daemon.status().get("fleet")
        return fleet if fleet and fleet["state"] == state else None

    result: dict[str, Any] = wait_for(reached, timeout, f"fleet state {state!r}", 0.1)
    return result
