"""Connection floods against the page's server, before and after issue 19 (docs/RELIABILITY.md).

Serves the web app over the fake appliance (device.web.fake, synthetic camera) on a free
loopback port twice: with stock waitress and the options the daemon used before issue 19
(``waitress_options``), and with the daemon's server now (``device.web.server.make_server``,
HTTP and HTTPS). For each it measures, on this machine, over loopback only:

* ``status_s``: how long ``GET /api/status`` takes while N half-open connections are held
  (half a request head, half a TLS record, or nothing), with a 10 s client timeout;
* ``half_open_closed_s``: when the server has closed all N of them (bounded wait);
* ``stalled_freed_s``: with ``web.max_streams`` = 3 taken by viewers that never read, how long
  until a fourth viewer gets the stream (bounded wait).

Usage: .venv/bin/python scripts/flood_check.py [--half-open 120] [--wait 60]
Every loop is bounded in count and time; nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from device.config import WebConfig
from device.trial.recorder import RecorderTiming
from device.web import create_app, shutdown, waitress_options
from device.web.fake import FakeServices
from device.web.security import hash_password
from device.web.server import ServerThread, make_server
from device.web.tls import ensure_certificate, server_context

PASSWORD = "flood-check"
CLIENT_TIMEOUT_S = 10.0


@contextlib.contextmanager
def served(kind: str, tmp: Path) -> Iterator[tuple[int, ssl.SSLContext | None]]:
    fake = FakeServices(auto=True, timing=RecorderTiming(countdown_s=1.0, recording_s=2.0))
    cfg = WebConfig(password_hash=hash_password(PASSWORD), max_streams=3, tls=kind == "https")
    app = create_app(fake, cfg, flask_config={"SECRET_KEY": "flood"})
    client_ctx = None
    if kind == "waitress-before":
        from waitress import create_server

        server: Any = create_server(app, host="127.0.0.1", port=0, **waitress_options(cfg))
    else:
        ctx = None
        if kind == "https":
            cert = ensure_certificate("", "", tmp)
            ctx = server_context(cert)
            client_ctx = ssl.create_default_context(cafile=str(cert.cert_file))
        server = make_server(app, cfg, host="127.0.0.1", port=0, ssl_context=ctx)
    running = ServerThread(server).start()
    try:
        yield int(server.effective_port), client_ctx
    finally:
        shutdown(app)
        deadline = time.monotonic() + 20
        while app.extensions["flexscore"].streams.active and time.monotonic() < deadline:
            time.sleep(0.1)
        server.task_dispatcher.shutdown()
        running.stop(10)
        fake.close()


def conn(port: int, ctx: ssl.SSLContext | None, timeout: float) -> http.client.HTTPConnection:
    if ctx is None:
        return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)


def request(port: int, ctx: ssl.SSLContext | None, method: str, path: str, **kw: Any) -> Any:
    c = conn(port, ctx, CLIENT_TIMEOUT_S)
    try:
        c.request(method, path, **kw)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def patient_cookie(port: int, ctx: ssl.SSLContext | None) -> str:
    _, headers, body = request(port, ctx, "GET", "/api/session")
    cookie = headers["Set-Cookie"].split(";")[0]
    data = urllib.parse.urlencode({"csrf_token": json.loads(body)["csrf_token"]})
    h = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    _, headers, _ = request(port, ctx, "POST", "/login/patient", body=data, headers=h)
    return str(headers["Set-Cookie"].split(";")[0])


def half_open(port: int, n: int, tls: bool) -> list[socket.socket]:
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i % 3:
            s.sendall(b"\x16\x03\x01\x02\x00\x01" if tls else b"GET /api/status HTTP/1.1\r\nHost: 127.0")
        socks.append(s)
    return socks


def all_closed(socks: list[socket.socket], wait: float) -> float | None:
    t0 = time.monotonic()
    for s in socks:
        left = wait - (time.monotonic() - t0)
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            while s.recv(4096):
                pass
        except TimeoutError:
            return None
        except OSError:
            pass
    return time.monotonic() - t0


def status_time(port: int, ctx: ssl.SSLContext | None) -> float | None:
    t0 = time.monotonic()
    try:
        status, _, _ = request(port, ctx, "GET", "/api/status")
    except OSError:
        return None
    return time.monotonic() - t0 if status == 200 else None


def stalled_freed(port: int, ctx: ssl.SSLContext | None, wait: float) -> float | None:
    """Three viewers that never read; seconds until a fourth is served (None: not in time)."""
    viewers = []
    for _ in range(3):
        cookie = patient_cookie(port, ctx)
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", port))
        s: Any = ctx.wrap_socket(raw, server_hostname="127.0.0.1") if ctx else raw
        s.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
        viewers.append(s)
    time.sleep(1.0)  # let them take their slots
    cookie = patient_cookie(port, ctx)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < wait:
            c = conn(port, ctx, CLIENT_TIMEOUT_S)
            try:
                c.request("GET", "/stream.mjpg", headers={"Cookie": cookie})
                if c.getresponse().status == 200:
                    return time.monotonic() - t0
            except OSError:
                pass
            finally:
                c.close()
            time.sleep(0.5)
        return None
    finally:
        for s in viewers:
            s.close()


def fmt(v: float | None, wait: float) -> str:
    return f"> {wait:.0f} (not in time)" if v is None else f"{v:.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--half-open", type=int, default=120)
    ap.add_argument("--wait", type=float, default=60.0, help="longest wait for the server to act (s)")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("waitress-before", "http", "https"):
            with served(kind, Path(tmp)) as (port, ctx):
                socks = half_open(port, args.half_open, kind == "https")
                st = status_time(port, ctx)
                closed = all_closed(socks, args.wait)
                for s in socks:
                    s.close()
                freed = stalled_freed(port, ctx, args.wait)
            rows.append((kind, st, closed, freed))
            print(
                f"{kind:16s} status_s {fmt(st, CLIENT_TIMEOUT_S)}  half_open_closed_s "
                f"{fmt(closed, args.wait)}  stalled_freed_s {fmt(freed, args.wait)}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "flood-check"
    sys.exit(main())
