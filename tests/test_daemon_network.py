"""The real daemon on the network (issue 19): ``flexscore run --tls`` in its own process,
talked to over loopback sockets the way a browser or an attacker on the LAN would.

One daemon serves every check (start-up costs tens of seconds on this machine): HTTPS with a
self-signed certificate whose fingerprint the daemon prints and the status page shows, a
``Secure`` cookie and HSTS, plain HTTP on that port refused, a foreign ``Host`` refused, a
login ``next`` that never leaves the site, patient-mode limits, 120 half-open connections
while ``/api/status`` still answers, a private state directory under a loose umask, and a
clean SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import PASSWORD, Daemon, wait_for

from device.web.tls import fingerprint

pytestmark = pytest.mark.slow

HALF_OPEN = 120
ANSWER_TIMEOUT_S = 10.0  # generous: a functional check, not a benchmark (docs/RELIABILITY.md)


class Https:
    """A tiny HTTPS client for the daemon: one cookie, the daemon's own certificate trusted."""

    def __init__(self, port: int, cafile: Path) -> None:
        self.port = port
        self.ctx = ssl.create_default_context(cafile=str(cafile))  # checks the name 127.0.0.1
        self.cookie = ""

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        form: bool = False,
        headers: dict[str, str] | None = None,
        timeout: float = ANSWER_TIMEOUT_S,
    ) -> tuple[int, dict[str, str], bytes]:
        c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=self.ctx)
        h = dict(headers or {})
        if self.cookie:
            h["Cookie"] = self.cookie
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body)
                h["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body)
                h["Content-Type"] = "application/json"
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            got = {k.lower(): v for k, v in r.getheaders()}
            payload = r.read()
        finally:
            c.close()
        if "set-cookie" in got:
            self.cookie = got["set-cookie"].split(";")[0]
        return r.status, got, payload

    def json(self, path: str) -> Any:
        status, _, body = self.request("GET", path)
        assert status == 200, (path, status, body[:200])
        return json.loads(body)

    def token(self) -> str:
        return str(self.json("/api/session")["csrf_token"])

    def login(self, role: str, **extra: str) -> tuple[int, dict[str, str]]:
        path, body = ("/login", {"password": PASSWORD}) if role == "clinician" else ("/login/patient", {})
        status, headers, _ = self.request(
            "POST", path, {**body, **extra, "csrf_token": self.token()}, form=True
        )
        return status, headers

    def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        status, _, payload = self.request("POST", path, body or {}, headers={"X-CSRF-Token": self.token()})
        return status, json.loads(payload) if payload.startswith(b"{") else payload


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    old = os.umask(0o022)  # what a shell outside systemd usually has
    try:
        d = Daemon(tmp_path_factory.mktemp("tls-daemon") / "state", "--tls")
    finally:
        os.umask(old)
    try:
        cert = d.state_dir / "tls" / "cert.pem"
        wait_for(lambda: cert.exists() or d.proc.poll() is not None, 120, "the certificate")
        d.base = f"https://127.0.0.1:{d.port}"
        yield d
    finally:
        d.cleanup()


def client(d: Daemon) -> Https:
    return Https(d.port, d.state_dir / "tls" / "cert.pem")


def test_the_daemon_on_the_network(tls_daemon: Daemon) -> None:
    d = tls_daemon
    anon = client(d)

    def ready() -> Any:
        if d.proc.poll() is not None:
            raise AssertionError(d.output()[-3000:])
        try:
            st = anon.json("/api/status")
        except OSError:
            return None
        return st if st["camera"] == "ok" else None

    status = wait_for(ready, 120, "the daemon to serve over HTTPS")
    # anonymous /api/status: device state only
    device_only = {"state", "remaining_s", "camera", "fps", "hand_in_view", "reasons", "reference", "role"}
    device_only |= {"guidance", "phase", "prompt"}  # issue 18: live guidance (prompt None here)
    assert set(status) == device_only and status["prompt"] is None

    # the certificate: printed at start, shown on the status page
    fp = fingerprint(d.state_dir / "tls" / "cert.pem")
    out = d.output()
    assert f"https://127.0.0.1:{d.port}/" in out and f"SHA-256 fingerprint {fp}" in out

    # plain HTTP on the HTTPS port: told to use https, nothing served
    with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
        s.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400 ")

    # a foreign Host (DNS rebinding) gets 400 before any view: not even the camera image
    for path in ("/api/status", "/snapshot.jpg", "/login"):
        code, _, body = anon.request("GET", path, headers={"Host": "evil.example"})
        assert code == 400 and b"unknown host" in body, path

    # the clinician: Secure cookie, HSTS, the fingerprint on the status page
    clin = client(d)
    code, headers = clin.login("clinician", next="/\t/evil.example/")
    assert code == 302 and headers["location"] == "/"  # never leaves the site
    assert "Secure" in headers["set-cookie"] and "HttpOnly" in headers["set-cookie"]
    assert headers["strict-transport-security"] == "max-age=31536000"
    code, _, page = clin.request("GET", "/status")
    assert code == 200 and fp.encode() in page

    # patient mode: no new codes; a clinician's trial cannot be cancelled from it
    patient = client(d)
    assert patient.login("patient")[0] == 302
    code, doc = patient.post("/api/trials/start", {"patient_code": "NEW01", "side": "left"})
    assert code == 403, doc
    code, doc = clin.post("/api/trials/start", {"patient_code": "NET01", "side": "right"})
    assert code == 202, doc
    code, doc = patient.post("/api/trials/cancel")
    assert code == 403 and "clinician" in doc["error"]
    assert clin.json("/api/status")["state"] in ("countdown", "recording", "scoring", "result", "rejected")
    code, doc = clin.post("/api/trials/cancel")
    assert code == 200
    codes = set(re.findall(rb"NEW01|NET01", clin.request("GET", "/history")[2]))
    assert codes == {b"NET01"}  # the patient's attempt created no code

    # 120 half-open connections (nothing sent, or half a TLS record): /api/status still answers
    held = []
    try:
        for i in range(HALF_OPEN):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            if i % 2:
                s.sendall(b"\x16\x03\x01\x02\x00\x01")
            held.append(s)
        code, _, body = anon.request("GET", "/api/status", timeout=ANSWER_TIMEOUT_S)
        assert code == 200 and json.loads(body)["camera"] == "ok"
    finally:
        for s in held:
            s.close()

    # the state directory and its files: private though the daemon started under umask 022
    assert d.state_dir.stat().st_mode & 0o777 == 0o700
    for name in ("flexscore.db", "web-secret.key", "tls/cert.pem", "tls/key.pem"):
        assert (d.state_dir / name).stat().st_mode & 0o777 == 0o600, name

    rc, _took = d.terminate()
    assert rc == 0, d.output()[-3000:]
