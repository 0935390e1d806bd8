"""Security of the web page beyond the access matrix (tests/test_web_access.py):
forged and replayed cookies, session fixation, path traversal, oversized bodies on every
state-changing route, methods, error pages, login rate limiting and secrets in logs."""

from __future__ import annotations

import http.client
import logging
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from test_web_access import BODIES, MATRIX, app, seeded
from test_web_support import PASSWORD, csrf, login, make_app, web_config

from device.web import create_app, shutdown
from device.web.fake import FakeServices
from device.web.security import LoginLimiter, SessionRegistry
from device.web.server import ServerThread

COOKIE = "flexscore_session"


__all__ = ["app", "seeded"]  # the fixtures, shared with test_web_access


def _cookie(client: FlaskClient) -> str:
    c = client.get_cookie(COOKIE)
    assert c is not None
    return c.value


def _with_cookie(app: Flask, value: str) -> FlaskClient:
    other = app.test_client()
    other.set_cookie(COOKIE, value)
    return other


def _role(client: FlaskClient) -> str | None:
    role = client.get("/api/session").get_json()["role"]
    return None if role is None else str(role)


def _fill(path: str, seeded: tuple[FakeServices, int, int]) -> str:
    fake, old, last = seeded
    trial = fake.store.get_trial(last)
    assert trial is not None
    return path.format(old=old, last=last, day=trial.started_at.astimezone().date().isoformat())


# --------------------------------------------------------------------------- sessions


def test_session_id_rotates_at_login_and_the_pre_login_cookie_stays_anonymous(app: Flask) -> None:
    client = app.test_client()
    csrf(client)
    planted = _cookie(client)  # what an attacker could have planted before the login
    login(client, "clinician")
    after = _cookie(client)
    assert after != planted
    assert _role(_with_cookie(app, planted)) is None
    assert _role(_with_cookie(app, after)) == "clinician"


def test_logout_revokes_copies_of_the_cookie(app: Flask) -> None:
    client = app.test_client()
    login(client, "clinician")
    copy = _cookie(client)
    assert _role(_with_cookie(app, copy)) == "clinician"
    client.post("/logout", data={"csrf_token": csrf(client)})
    replay = _with_cookie(app, copy)
    assert _role(replay) is None
    assert replay.get("/api/trials").status_code == 401
    assert replay.get("/history").status_code == 302


def test_a_new_login_revokes_the_previous_session(app: Flask) -> None:
    client = app.test_client()
    login(client, "clinician")
    first = _cookie(client)
    client.post("/login/patient", data={"csrf_token": csrf(client)})  # switch on the same tablet
    assert _role(client) == "patient"
    assert _role(_with_cookie(app, first)) is None  # the clinician session is gone, not only hidden


def test_a_session_from_another_appliance_or_restart_is_not_accepted(
    seeded: tuple[FakeServices, int, int],
) -> None:
    a = make_app(seeded[0])
    b = make_app(seeded[0])  # same signing key (test config), a different run of the daemon
    client = a.test_client()
    login(client, "clinician")
    assert _role(_with_cookie(b, _cookie(client))) is None


@pytest.mark.parametrize("tamper", ["flip", "unsigned", "garbage", "empty"])
def test_forged_cookies_are_anonymous_on_every_route(
    app: Flask, seeded: tuple[FakeServices, int, int], tamper: str
) -> None:
    client = app.test_client()
    login(client, "clinician")
    good = _cookie(client)
    forged = {
        "flip": good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1],
        "unsigned": good.split(".")[0] + ".",
        "garbage": "eyJyb2xlIjoiY2xpbmljaWFuIn0.AAAAAA.BBBBBBBBBBBB",
        "empty": "",
    }[tamper]
    attacker = _with_cookie(app, forged)
    for method, path, expected in MATRIX:
        url = _fill(path, seeded)
        if method == "GET":
            resp = attacker.get(url)
        else:
            resp = attacker.post(url, data={**BODIES.get(path, {}), "csrf_token": "x"})
        try:
            assert resp.status_code == (expected[0] if method == "GET" else 400), (method, path)
        finally:
            resp.close()


def test_session_registry_expiry_and_bound() -> None:
    now = [0.0]
    reg = SessionRegistry(60.0, max_sessions=3, clock=lambda: now[0])
    a = reg.new("clinician")
    assert reg.valid(a, "clinician") and not reg.valid(a, "patient")
    assert not reg.valid(None, "clinician") and not reg.valid(123, "clinician")
    now[0] = 61.0
    assert not reg.valid(a, "clinician")  # expired
    clinician = reg.new("clinician")
    ids = [reg.new("patient") for _ in range(50)]  # anyone can mint patient sessions
    assert len(reg) == 4  # 3 patients (the oldest went first) and the clinician
    assert not reg.valid(ids[0], "patient") and reg.valid(ids[-1], "patient")
    assert reg.valid(clinician, "clinician")
    reg.revoke(ids[-1])
    assert not reg.valid(ids[-1], "patient")


# --------------------------------------------------------------------------- paths and files

TRAVERSALS = [
    "/static/../app.py",
    "/static/..%2fapp.py",
    "/static/%2e%2e/%2e%2e/config.py",
    "/static/....//....//etc/passwd",
    "/static//etc/passwd",
    "/export/fhir/..%2f..%2fetc/passwd.json",
    "/export/fhir/P001/..%2f..%2f..%2fetc%2fpasswd.json",
    "/export/fhir/%2e%2e/%2e%2e.json",
    "/export/trials/1/../../../etc/passwd",
    "/export/trials/..%2f1/landmarks.json",
    "/export/trials/-1/landmarks.json",
    "/export/trials/1%00/landmarks.json",
    "/results/1%2f..%2f..%2fhistory",
    "/api/trials/1%2F..%2F..%2Fstatus",
    "/export/trials.csv/../../../etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_never_serves_a_file_outside(app: Flask, path: str) -> None:
    client = app.test_client()
    login(client, "clinician")
    resp = client.get(path)
    body = resp.get_data()
    assert resp.status_code in (302, 308, 400, 404), (path, resp.status_code)
    assert b"root:" not in body and b"def create_app" not in body and b"import " not in body
    if resp.status_code in (302, 308):  # werkzeug normalises the path: it must stay on this host
        assert not re.match(r"^(https?:)?//", resp.location) or resp.location.startswith("http://localhost/")


def test_download_names_are_plain(app: Flask, seeded: tuple[FakeServices, int, int]) -> None:
    client = app.test_client()
    login(client, "clinician")
    old = seeded[1]
    for url in (
        "/export/trials.csv",
        "/export/trials.json",
        _fill("/export/fhir/P001/{day}.json", seeded),
        f"/export/trials/{old}/landmarks.json",
        f"/export/trials/{old}/landmarks.npz",
    ):
        resp = client.get(url)
        assert resp.status_code == 200, url
        disposition = resp.headers["Content-Disposition"]
        name = re.fullmatch(r'attachment; filename="([A-Za-z0-9_.-]+)"', disposition)
        assert name and ".." not in name.group(1) and "/" not in name.group(1), disposition
        assert resp.headers["Cache-Control"] == "no-store"


def test_static_files_are_only_the_shipped_ones(app: Flask) -> None:
    client = app.test_client()
    css = client.get("/static/app.css")
    assert css.status_code == 200  # no login needed for CSS
    css.close()
    assert client.get("/static/").status_code == 404  # no directory listing
    assert client.get("/static/nope.js").status_code == 404


# --------------------------------------------------------------------------- sizes and methods

STATE_CHANGING = sorted({(m, p) for m, p, _ in MATRIX if m == "POST"})


@pytest.mark.parametrize(("method", "path"), STATE_CHANGING, ids=[p for _, p in STATE_CHANGING])
@pytest.mark.parametrize("kind", ["json", "form"])
def test_oversized_bodies_get_413_and_change_nothing(
    seeded: tuple[FakeServices, int, int], method: str, path: str, kind: str
) -> None:
    fake = seeded[0]
    app = make_app(fake, max_request_kb=2)
    client = app.test_client()
    login(client, "clinician")
    token = csrf(client)
    url = _fill(path, seeded)
    old = seeded[1]
    labels, calls = len(fake.store.labels_for(old)), list(fake.calls)
    big = "x" * 5000
    headers = {"X-CSRF-Token": token}
    if kind == "json":
        resp = client.post(url, json={"comment": big, "score": 1, "password": big}, headers=headers)
    else:
        resp = client.post(url, data={"csrf_token": token, "comment": big, "password": big})
    try:
        assert resp.status_code == 413, (url, kind, resp.status_code, resp.text[:200])
    finally:
        resp.close()
        fake.cancel_trial()
    assert len(fake.store.labels_for(old)) == labels
    assert [c for c in fake.calls if c == "start"] == [c for c in calls if c == "start"]
    assert _role(client) == "clinician"  # an oversized logout did not log out either


@pytest.mark.parametrize("kind", ["chunked", "length", "headers"])
def test_the_real_server_stops_reading_an_oversized_request(
    seeded: tuple[FakeServices, int, int], kind: str
) -> None:
    """waitress itself answers 413 (with waitress_options) instead of buffering the body."""
    from waitress import create_server

    from device.web import waitress_options

    cfg = web_config(max_request_kb=2)
    app = create_app(seeded[0], cfg, flask_config={"SECRET_KEY": "t"})
    server = create_server(app, host="127.0.0.1", port=0, **waitress_options(cfg))
    running = ServerThread(server).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=10)
    try:
        piece = b"x" * 4096
        expected = 413
        if kind == "chunked":
            body: object = iter([piece] * 256)  # 1 MB, no Content-Length
            conn.request("POST", "/api/trials/start", body=body, encode_chunked=True,
                         headers={"Content-Type": "application/json"})  # fmt: skip
        elif kind == "length":
            conn.request(
                "POST", "/api/trials/start", body=piece * 4, headers={"Content-Type": "application/json"}
            )
        else:  # 100 KB of headers: refused by waitress before any app code runs
            expected = 431
            conn.request("GET", "/api/status", headers={f"X-Pad-{i}": "y" * 1000 for i in range(100)})
        resp = conn.getresponse()
        assert resp.status == expected
        resp.read()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed the connection while the body was still being sent: also refused
    finally:
        conn.close()
        shutdown(app)
        running.stop()
    assert seeded[0].recorder.busy is False


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE", "PROPFIND"])
def test_other_methods_are_refused_not_crashing(app: Flask, method: str) -> None:
    client = app.test_client()
    login(client, "clinician")
    for path in ("/", "/api/trials", "/api/trials/start", "/export/trials.csv", "/login"):
        resp = client.open(path, method=method, headers={"X-CSRF-Token": csrf(client)})
        assert resp.status_code in (400, 405), (method, path, resp.status_code)


def test_server_errors_show_no_traceback_or_internals(seeded: tuple[FakeServices, int, int]) -> None:
    class Broken(FakeServices):
        def status(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("secret internal detail /var/lib/flexscore/flexscore.db")

    fake = Broken()
    try:
        app = make_app(fake, login_max_attempts=5)
        app.config["PROPAGATE_EXCEPTIONS"] = False
        client = app.test_client()
        for accept in ("text/html", "application/json"):
            resp = client.get("/api/status", headers={"Accept": accept})
            assert resp.status_code == 500
            assert b"secret internal detail" not in resp.data and b"Traceback" not in resp.data
            assert b"went wrong" in resp.data
    finally:
        fake.close()


# --------------------------------------------------------------------------- login limit


def test_rate_limit_is_per_client_and_counts_only_failures(seeded: tuple[FakeServices, int, int]) -> None:
    app = make_app(seeded[0], login_max_attempts=2)
    mallory = app.test_client()
    token = csrf(mallory)
    env_m = {"REMOTE_ADDR": "192.168.1.66"}
    for _ in range(2):
        mallory.post("/login", data={"csrf_token": token, "password": "guess"}, environ_base=env_m)
    blocked = mallory.post("/login", data={"csrf_token": token, "password": PASSWORD}, environ_base=env_m)
    assert blocked.status_code == 429
    clinician = app.test_client()  # another device on the ward is not locked out
    ok = clinician.post(
        "/login",
        data={"csrf_token": csrf(clinician), "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "192.168.1.10"},
    )
    assert ok.status_code == 302


def test_login_limiter_memory_is_bounded_against_address_sprays() -> None:
    now = [0.0]
    lim = LoginLimiter(5, 300.0, clock=lambda: now[0])
    for i in range(25_000):
        lim.failed(f"10.0.{i // 256}.{i % 256}")
        now[0] += 0.001
    assert lim.tracked() <= LoginLimiter.MAX_CLIENTS
    lim.failed("10.9.9.9")
    assert lim.retry_after("10.9.9.9") is None  # one failure: still allowed


# --------------------------------------------------------------------------- logs


def test_no_password_or_patient_code_in_the_logs(
    seeded: tuple[FakeServices, int, int], caplog: pytest.LogCaptureFixture
) -> None:
    fake = seeded[0]
    app = make_app(fake)
    client = app.test_client()
    caplog.set_level(logging.DEBUG)
    token = csrf(client)
    client.post("/login", data={"csrf_token": token, "password": "wrong-Pa55word"})
    login(client, "clinician")
    token = csrf(client)
    try:
        client.post(
            "/api/trials/start",
            json={"patient_code": "ZZSECRET7", "side": "left"},
            headers={"X-CSRF-Token": token},
        )
        client.get("/api/trials?patient=ZZSECRET7")
        client.get("/export/trials.csv?patient=ZZSECRET7")
    finally:
        fake.cancel_trial()
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("wrong-Pa55word", PASSWORD, "ZZSECRET7"):
        assert secret not in text
