"""The page on a hospital or home network (issue 19), short of the daemon process
(tests/test_daemon_network.py runs the real ``flexscore run --tls``):

* the real server (:func:`device.web.server.make_server`) over real loopback sockets: HTTPS
  with a self-signed certificate, plain HTTP on the HTTPS port, half-open and slow
  connections, a live viewer that stops reading, the per-session stream cap;
* the app: Host allow-list, local-only redirects, patient-mode limits, what anonymous
  ``/api/status`` says, 4xx for odd input, config validation.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import socket
import ssl
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import daemon_helpers
import pytest
from flask import Flask
from test_web_access import BODIES, MATRIX, seeded
from test_web_support import PASSWORD, csrf, hand_over, login, make_app, web_config

from device.config import WebConfig, config_from_dict
from device.errors import ConfigError
from device.trial.recorder import RecorderTiming
from device.web import create_app, shutdown, waitress_threads
from device.web.fake import FakeServices
from device.web.security import HostCheck, host_name
from device.web.server import FlexscoreServer, ServerThread, make_server
from device.web.tls import Certificate, device_names, ensure_certificate, fingerprint, server_context
from device.web.views.auth import is_local_path

__all__ = ["seeded"]  # the fixture, shared with test_web_access

DEADLINE_S = 1.0  # the served app's web.request_timeout_s (short, so the tests are quick)
WAIT_S = 30.0  # longest wait for something the server must do by itself


wait_for = functools.partial(daemon_helpers.wait_for, poll=0.05)


# --------------------------------------------------------------------------- the real server


@dataclass
class Served:
    app: Flask
    server: FlexscoreServer
    fake: FakeServices
    cert: Certificate | None

    @property
    def port(self) -> int:
        return int(self.server.effective_port)

    def client_context(self) -> ssl.SSLContext:
        assert self.cert is not None
        return ssl.create_default_context(cafile=str(self.cert.cert_file))  # verifies 127.0.0.1

    def conn(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        if self.cert is None:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=timeout, context=self.client_context()
        )

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def session(self, role: str = "patient") -> str:
        """A Cookie header value for a new session in ``role`` (over the real server)."""
        status, headers, body = self.request("GET", "/api/session")
        assert status == 200
        cookie = headers["set-cookie"].split(";")[0]
        token = json.loads(body)["csrf_token"]
        path, form = ("/login/patient", {}) if role == "patient" else ("/login", {"password": PASSWORD})
        data = urllib.parse.urlencode({**form, "csrf_token": token})
        hdrs = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        status, headers, _ = self.request("POST", path, data, hdrs)
        assert status == 302, status
        return headers["set-cookie"].split(";")[0]


@contextlib.contextmanager
def serve(tmp_path: Path, *, tls: bool, **changes: Any) -> Iterator[Served]:
    fake = FakeServices(
        auto=True, timing=RecorderTiming(countdown_s=1.0, recording_s=2.0, result_hold_s=60.0)
    )
    cfg = web_config(tls=tls, request_timeout_s=DEADLINE_S, idle_timeout_s=2.0, **changes)
    cert = ensure_certificate("", "", tmp_path) if tls else None
    app = create_app(
        fake,
        cfg,
        flask_config={"SECRET_KEY": "network-test"},
        certificate_fingerprint=cert.fingerprint if cert else None,
    )
    server = make_server(
        app, cfg, host="127.0.0.1", port=0, ssl_context=server_context(cert) if cert else None
    )
    running = ServerThread(server).start()
    try:
        yield Served(app, server, fake, cert)
    finally:
        shutdown(app)
        wait_for(lambda: app.extensions["flexscore"].streams.active == 0, WAIT_S, "streams to end")
        server.task_dispatcher.shutdown()
        running.stop(10)
        fake.close()


@pytest.fixture()
def https(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path, tls=True) as s:
        yield s


@pytest.fixture()
def plain(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path, tls=False, max_streams=2) as s:
        yield s


def test_https_serves_the_page_with_a_secure_cookie_and_hsts(https: Served) -> None:
    status, headers, body = https.request("GET", "/api/session")
    assert status == 200 and json.loads(body)["role"] is None
    assert "Secure" in headers["set-cookie"] and "HttpOnly" in headers["set-cookie"]
    assert headers["strict-transport-security"] == "max-age=31536000"
    cookie = https.session("clinician")
    status, _, page = https.request("GET", "/status", headers={"Cookie": cookie})
    assert status == 200
    assert https.cert is not None and https.cert.fingerprint.encode() in page  # shown to check it
    assert b"Served over</dt><dd>HTTPS" in page


def test_the_self_signed_certificate_is_private_stable_and_names_the_device(tmp_path: Path) -> None:
    first = ensure_certificate("", "", tmp_path)
    again = ensure_certificate("", "", tmp_path)
    assert first.fingerprint == again.fingerprint  # made once, kept
    assert len(first.fingerprint) == 95 and first.fingerprint.count(":") == 31
    for f in (first.cert_file, first.key_file):
        assert f.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700
    assert fingerprint(first.cert_file) == first.fingerprint
    own = Certificate(first.cert_file, first.key_file, first.fingerprint, self_signed=False)
    given = ensure_certificate(str(own.cert_file), str(own.key_file), tmp_path / "x")
    assert given.fingerprint == own.fingerprint and not given.self_signed
    names = device_names()
    assert {"localhost", "127.0.0.1", "::1"} <= set(names) and socket.gethostname().lower() in names
    with pytest.raises(ConfigError, match="cannot read the TLS certificate"):
        fingerprint(tmp_path / "missing.pem")


def test_plain_http_on_the_https_port_is_told_to_use_https(https: Served) -> None:
    with socket.create_connection(("127.0.0.1", https.port), timeout=10) as s:
        s.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"https://" in answer


def test_the_live_stream_runs_over_https(https: Served) -> None:
    cookie = https.session("patient")
    c = https.conn()
    try:
        c.request("GET", "/stream.mjpg", headers={"Cookie": cookie})
        r = c.getresponse()
        assert r.status == 200
        data = b""
        while data.count(b"\xff\xd9") < 3:  # three whole JPEG frames
            data += r.read1(65536)
        assert data.startswith(b"--frame\r\nContent-Type: image/jpeg")
        r.close()  # the viewer leaves
    finally:
        c.close()
    wait_for(lambda: https.app.extensions["flexscore"].streams.active == 0, WAIT_S, "the slot back")


def _half_open(port: int, n: int, tls: bool) -> list[socket.socket]:
    """``n`` connections that never finish: half a request head (plain) or half a TLS
    record (HTTPS), or nothing at all (every third)."""
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if i % 3:
            s.sendall(b"\x16\x03\x01\x02\x00\x01" if tls else b"GET /api/status HTTP/1.1\r\nHost: 127.0")
        socks.append(s)
    return socks


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_half_open_connections_do_not_starve_others_and_are_closed(tmp_path: Path, tls: bool) -> None:
    with serve(tmp_path, tls=tls) as served:
        socks = _half_open(served.port, 120, tls)
        try:
            # while all 120 are held (the deadline is 1 s: answered well before any could go)
            status, _, body = served.request("GET", "/api/status")
            assert status == 200 and json.loads(body)["camera"] == "ok"

            for s in socks:  # each is closed by the server: recv returns EOF (or a 4xx, then EOF)
                s.settimeout(WAIT_S)
                got = s.recv(4096)
                assert got == b"" or got.startswith(b"HTTP/1.1 4"), got[:80]
            assert served.server.closed_slow >= 120
        finally:
            for s in socks:
                s.close()


def test_a_trickling_request_is_closed_at_its_deadline(plain: Served) -> None:
    with socket.create_connection(("127.0.0.1", plain.port), timeout=10) as s:
        head = b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
        t0 = time.monotonic()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for b in head:  # one byte every 50 ms: active, never done
                s.sendall(bytes([b]))
                time.sleep(0.05)
                if time.monotonic() - t0 > WAIT_S:
                    break
        s.settimeout(WAIT_S)
        with contextlib.suppress(ConnectionResetError):
            assert s.recv(1024) == b""
    assert plain.server.closed_slow >= 1


def _stalled_viewer(port: int, cookie: str) -> socket.socket:
    """A viewer that asks for the stream and never reads it (a tiny receive buffer)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
    return s


def test_viewers_that_stop_reading_give_their_slots_back(plain: Served) -> None:
    streams = plain.app.extensions["flexscore"].streams
    stalled = [_stalled_viewer(plain.port, plain.session("patient")) for _ in range(2)]
    try:
        wait_for(lambda: streams.active == 2, WAIT_S, "both stalled viewers to hold a slot")
        status, _, _ = plain.request("GET", "/stream.mjpg", headers={"Cookie": plain.session("clinician")})
        assert status == 503  # max_streams = 2: all taken, for now
        wait_for(lambda: streams.active == 0, WAIT_S, "the stalled viewers to be dropped")
        assert plain.server.closed_stalled >= 2
        c = plain.conn()
        try:
            c.request("GET", "/stream.mjpg", headers={"Cookie": plain.session("clinician")})
            assert c.getresponse().status == 200  # the clinician's view works again
        finally:
            c.close()
    finally:
        for s in stalled:
            s.close()


def test_one_session_holds_at_most_two_streams(tmp_path: Path) -> None:
    with serve(tmp_path, tls=False, max_streams=4) as served:
        cookie = served.session("patient")
        conns = []
        try:
            for expected in (200, 200, 503):
                c = served.conn()
                c.request("GET", "/stream.mjpg", headers={"Cookie": cookie})
                r = c.getresponse()
                assert r.status == expected
                conns.append(c)
            other = served.conn()
            other.request("GET", "/stream.mjpg", headers={"Cookie": served.session("patient")})
            assert other.getresponse().status == 200  # another session still gets one
            conns.append(other)
        finally:
            for c in conns:
                c.close()


def test_threads_still_follow_the_stream_cap() -> None:
    assert waitress_threads(WebConfig().max_streams) == WebConfig().max_streams + 4


# --------------------------------------------------------------------------- Host allow-list


@pytest.fixture()
def app(seeded: tuple[FakeServices, int, int]) -> Iterator[Flask]:
    app = make_app(seeded[0])
    yield app
    shutdown(app)


@pytest.mark.parametrize(
    ("header", "name"),
    [("127.0.0.1", "127.0.0.1"), ("LOCALHOST:8443", "localhost"), ("[::1]:8080", "::1"),
     ("flexscore.local.", "flexscore.local"), ("evil.example:80@x", None), ("a b", None),
     ("[::1", None), ("host:port", None), ("", None), (None, None), ("x/y", None),
     ("::1", None)],
)  # fmt: skip
def test_host_header_parsing(header: str | None, name: str | None) -> None:
    assert host_name(header) == name


def test_host_check_defaults_and_explicit_list() -> None:
    calls = []

    def names() -> list[str]:
        calls.append(1)
        return ["flexscore", "flexscore.local", "192.168.1.20", "localhost", "127.0.0.1", "::1"]

    auto = HostCheck(names=names, clock=lambda: 0.0)
    for ok in ("flexscore:8443", "FLEXSCORE.local", "192.168.1.20:8443", "localhost", "[::1]:1"):
        assert auto.allows(ok), ok
    for bad in ("evil.example", "rebind.attacker.example:8443", "192.168.1.21", None):
        assert not auto.allows(bad), bad
    assert len(calls) == 1  # looked up once; unknown names do not look it up again within 10 s
    explicit = HostCheck(("ward3-flexscore.hospital.example",), names=names)
    assert explicit.allows("ward3-flexscore.hospital.example:443")
    assert not explicit.allows("localhost")


def test_a_foreign_host_gets_400_before_any_view(app: Flask, seeded: tuple[FakeServices, int, int]) -> None:
    fake, old, last = seeded
    day = fake.store.get_trial(last).started_at.astimezone().date().isoformat()  # type: ignore[union-attr]
    client = app.test_client()
    login(client, "clinician")
    token = csrf(client)
    calls, labels = list(fake.calls), len(fake.store.labels_for(old))
    evil = {"Host": "rebind.attacker.example"}
    for method, path, _ in MATRIX:
        url = path.format(old=old, last=last, day=day)
        if method == "GET":
            resp = client.get(url, headers=evil)
        else:
            body = {**BODIES.get(path, {}), "csrf_token": token}
            resp = client.post(url, data=body, headers={**evil, "X-CSRF-Token": token})
        assert resp.status_code == 400, (method, path, resp.status_code)
        assert b"unknown host" in resp.data
        resp.close()
    for path in ("/static/app.css", "/no/such/page"):
        assert client.get(path, headers=evil).status_code == 400
    assert fake.calls == calls and len(fake.store.labels_for(old)) == labels  # nothing happened
    assert client.get("/api/session").get_json()["role"] == "clinician"  # not logged out either
    for good in ("localhost", "127.0.0.1:8080", f"{socket.gethostname()}:8443"):
        assert client.get("/api/status", headers={"Host": good}).status_code == 200, good


# --------------------------------------------------------------------------- redirects


NEXT_ATTACKS = [
    "/\t/evil.example/",
    "/\r\nSet-Cookie: x=1",
    "/\n/evil.example",
    "/\\evil.example",
    "/\\/evil.example",
    "//evil.example/x",
    "https://evil.example",
    "/ /evil.example",
    "\t//evil.example",
    "/\x00/evil.example",
    "/\x7f/evil.example",
]


@pytest.mark.parametrize("target", NEXT_ATTACKS)
def test_login_never_redirects_off_the_site(app: Flask, target: str) -> None:
    client = app.test_client()
    form = client.get("/login", query_string={"next": target})
    assert form.status_code == 200
    assert "evil.example" not in form.text
    token = csrf(client)
    resp = client.post("/login", data={"csrf_token": token, "password": PASSWORD, "next": target})
    assert resp.status_code == 302 and resp.location == "/"
    assert not is_local_path(target)


def test_local_paths_are_kept() -> None:
    for target in ("/history", "/results/3?x=1", "/export?patient=P001&from=2024-01-01"):
        assert is_local_path(target)


# --------------------------------------------------------------------------- patient mode


@pytest.fixture()
def fresh() -> Iterator[FakeServices]:
    with FakeServices() as fake:
        fake.run_trial("P002", "left", 1)  # another patient, already in the store
        yield fake


def _start(client: Any, **body: Any) -> Any:
    return client.post("/api/trials/start", json=body, headers={"X-CSRF-Token": csrf(client)})


def test_patient_mode_cannot_create_or_use_other_codes(fresh: FakeServices) -> None:
    app = make_app(fresh)
    patient = app.test_client()
    login(patient, "patient")  # nobody chose a patient on this unit
    before, calls = [p.code for p in fresh.store.list_patients()], list(fresh.calls)
    for i in range(20):  # the attack: 20 new codes in a row
        assert _start(patient, patient_code=f"X{i}", side="left").status_code == 403
    assert _start(patient, patient_code="P002").status_code == 403  # an existing one
    form = patient.post("/trial/start", data={"csrf_token": csrf(patient), "patient_code": "X99"})
    assert form.status_code == 403 and "patient the clinician chose" in form.text
    hand = patient.post("/login/patient", data={"csrf_token": csrf(patient), "patient_code": "P002"})
    assert hand.status_code == 403  # choosing a patient needs the clinician password
    assert [p.code for p in fresh.store.list_patients()] == before
    assert fresh.calls == calls  # nothing started
    # without a code: a trial without a patient
    assert _start(patient, side="left").status_code == 202
    info = fresh.recorder.info
    assert info is not None and info.patient_id is None and info.side == "left"
    fresh.cancel_trial()


def test_a_handed_over_session_records_only_its_patient(fresh: FakeServices) -> None:
    app = make_app(fresh)
    patient = hand_over(app.test_client(), "P003", "right")  # a new code, chosen by the clinician
    resp = _start(patient, side="left")  # the side is the clinician's choice, not the patient's
    assert resp.status_code == 202
    body = resp.get_json()["status"]
    assert body["side"] == "right" and "patient" not in body
    p3 = fresh.store.find_patient("P003")
    assert p3 is not None and fresh.recorder.info is not None
    assert fresh.recorder.info.patient_id == p3.id
    fresh.cancel_trial()
    assert _start(patient, patient_code="P003").status_code == 202  # its own code is fine
    fresh.cancel_trial()
    assert _start(patient, patient_code="P002").status_code == 403


def test_patient_mode_reads_no_other_side_or_result_and_cannot_cancel_the_clinicians_trial(
    fresh: FakeServices,
) -> None:
    app = make_app(fresh)
    clinician = app.test_client()
    login(clinician, "clinician")
    mine = hand_over(app.test_client(), "P001", "left")  # the tablet handed to P001
    unit = app.test_client()
    login(unit, "patient")  # no hand-over: records for the unit's patient, the clinician's last
    # the clinician records P002 (right side): P002 becomes the unit's patient
    assert _start(clinician, patient_code="P002", side="right").status_code == 202
    doc = mine.get("/api/status").get_json()
    assert doc["side"] is None and "patient" not in doc  # not P001's trial: no side
    assert doc["state"] == "countdown"
    assert unit.get("/api/status").get_json()["side"] == "right"  # the unit's patient's own
    for who in (mine, unit):
        resp = who.post("/api/trials/cancel", headers={"X-CSRF-Token": csrf(who)})
        assert resp.status_code == 403 and "clinician" in resp.get_json()["error"]
        form = who.post("/trial/cancel", data={"csrf_token": csrf(who)})
        assert form.status_code == 403
    assert fresh.recorder.busy  # still running
    anon = app.test_client().get("/api/status").get_json()
    assert "side" not in anon and "last_trial" not in anon and "patient" not in anon
    assert clinician.post("/api/trials/cancel", headers={"X-CSRF-Token": csrf(clinician)}).get_json() == {
        "cancelled": True
    }
    nothing = mine.post("/api/trials/cancel", headers={"X-CSRF-Token": csrf(mine)})
    assert nothing.status_code == 200 and nothing.get_json() == {"cancelled": False}  # nothing runs
    # P002's finished trial is the newest: the P001 session does not see it
    done = fresh.run_trial("P002", "right", 2)
    assert done is not None
    assert mine.get("/api/status").get_json()["last_trial"] is None
    assert mine.get(f"/results/{done.id}").status_code == 403
    assert mine.get(f"/api/trials/{done.id}").status_code == 403
    assert unit.get(f"/results/{done.id}").status_code == 200  # the unit's patient's
    # the patient's own trial: its result, its side; and it may cancel its own trial
    own = fresh.run_trial("P001", "left", 1)
    assert own is not None
    doc = mine.get("/api/status").get_json()
    assert doc["last_trial"]["id"] == own.id and doc["side"] == "left"
    assert mine.get(f"/results/{own.id}").status_code == 200
    assert unit.get(f"/results/{own.id}").status_code == 403  # P002's session: not its trial
    assert _start(mine).status_code == 202
    assert mine.post("/api/trials/cancel", headers={"X-CSRF-Token": csrf(mine)}).get_json() == {
        "cancelled": True
    }


def test_the_clinicians_start_chooses_the_units_patient(fresh: FakeServices) -> None:
    app = make_app(fresh)
    clinician = app.test_client()
    login(clinician, "clinician")
    form = {"csrf_token": csrf(clinician), "patient_code": "P004", "side": "left"}
    assert clinician.post("/trial/start", data=form).status_code == 302
    fresh.cancel_trial()
    home = app.test_client()
    login(home, "patient")  # the patient's own tablet, no hand-over: the unit's patient
    assert _start(home).status_code == 202
    p4 = fresh.store.find_patient("P004")
    assert p4 is not None and fresh.recorder.info is not None
    assert fresh.recorder.info.patient_id == p4.id
    fresh.cancel_trial()  # a patient-started trial: the patient may cancel it
    assert "recorded for you" in home.get("/").text


# --------------------------------------------------------------------------- odd input: 4xx


def test_odd_input_gets_4xx_never_5xx(fresh: FakeServices) -> None:
    app = make_app(fresh)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a 500 would show as a 500, not a raise
    client = app.test_client()
    login(client, "clinician")
    h = {"X-CSRF-Token": csrf(client), "Content-Type": "application/json"}
    trial = fresh.store.last_trial()
    assert trial is not None
    labels, calls = len(fresh.store.labels_for(trial.id)), list(fresh.calls)
    for since in ("0001-01-01",):
        page = client.get(f"/validation?since={since}")
        assert page.status_code == 400 and "out of range" in page.text, since
        assert client.get(f"/validation/report.json?since={since}").status_code == 400
    assert client.get("/validation/report.json?since=9999-12-31").status_code == 200  # no trials yet
    surrogate = '{"score": 1, "comment": "\\ud800"}'
    assert client.post(f"/api/trials/{trial.id}/label", data=surrogate, headers=h).status_code == 400
    assert client.post("/api/trials/start", data='{"patient_code": "\\udc80x"}', headers=h).status_code == 400
    deep = "[" * 5000 + "]" * 5000
    for path in ("/api/trials/start", f"/api/trials/{trial.id}/label"):
        resp = client.post(path, data=deep, headers=h)
        assert resp.status_code == 400 and "nested" in resp.get_json()["error"]
        nested = '{"score": 1, "comment": ' + "[" * 5000 + "]" * 5000 + "}"
        assert client.post(path, data=nested, headers=h).status_code == 400
    assert len(fresh.store.labels_for(trial.id)) == labels  # nothing stored
    assert fresh.calls == calls
    client.post("/logout", data={"csrf_token": csrf(client)})
    crlf = client.post(
        "/login", data={"csrf_token": csrf(client), "password": PASSWORD, "next": "/\r\nX-Evil: 1"}
    )
    assert crlf.status_code == 302 and crlf.location == "/" and "X-Evil" not in crlf.headers


def test_validate_cli_gives_one_error_line_for_an_out_of_range_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from device.cli import main
    from device.store import Store

    path = tmp_path / "s.db"
    Store(path).close()
    assert main(["validate", "--store", str(path), "--since", "0001-01-01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("flexscore: error: ") and "out of range" in err[0]


# --------------------------------------------------------------------------- config


def test_the_network_needs_https_in_the_config() -> None:
    with pytest.raises(ConfigError, match=r"web\.host.*web\.tls = true"):
        config_from_dict({"web": {"host": "0.0.0.0"}})
    cfg = config_from_dict({"web": {"host": "0.0.0.0", "tls": True, "allowed_hosts": ["ward3.example"]}})
    assert cfg.web.tls and cfg.web.allowed_hosts == ("ward3.example",)
    assert config_from_dict({"web": {"host": "127.0.0.1"}}).web.tls is False  # loopback: plain is fine
    with pytest.raises(ConfigError, match=r"web\.cert_file"):
        WebConfig(tls=True, cert_file="/etc/ssl/x.pem")
    for bad in ("https://x.example", "x.example:8443/", "a b", ""):
        with pytest.raises(ConfigError, match=r"web\.allowed_hosts\[0\]"):
            WebConfig(allowed_hosts=(bad,))
    with pytest.raises(ConfigError, match=r"web\.request_timeout_s"):
        WebConfig(request_timeout_s=0)


def test_state_dir_and_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    from device.app import check_state_dir, make_private

    old = os.umask(0o022)
    try:
        state = check_state_dir(tmp_path / "state")
        (state / "flexscore.db").write_bytes(b"x")
        (state / "other.log").write_bytes(b"y")
    finally:
        os.umask(old)
    assert state.stat().st_mode & 0o777 in (0o700, 0o755)  # mkdir honours the umask …
    make_private(state)
    assert state.stat().st_mode & 0o777 == 0o700  # … the appliance does not
    for f in state.iterdir():
        assert f.stat().st_mode & 0o777 == 0o600, f
