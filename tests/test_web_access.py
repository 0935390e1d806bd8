"""Access control of the web page: the route × role matrix, CSRF, login, cookies, binding."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from test_web_support import PASSWORD, ROLES, csrf, login, make_app, seeded_fake, web_config

from device.errors import ConfigError
from device.web import check_bind, ensure_password, is_loopback, shutdown
from device.web.fake import FakeServices
from device.web.security import LoginLimiter, check_password, hash_password, load_secret_key

OLD, LAST = "{old}", "{last}"
# (method, path, expected status for anonymous, patient, clinician). Pages redirect an
# anonymous visitor to the login page (302); the API and POSTs answer 401. The patient here
# is a patient-mode session no clinician handed over, on a unit with no chosen patient: it
# cannot start a trial under a code (P009 would be a new one) nor see P001's newest trial.
MATRIX: list[tuple[str, str, tuple[int, int, int]]] = [
    ("GET", "/login", (200, 200, 200)),
    ("POST", "/login", (401, 401, 401)),  # wrong password in this table
    ("POST", "/login/patient", (302, 302, 302)),
    ("POST", "/logout", (302, 302, 302)),
    ("GET", "/", (302, 200, 200)),
    ("GET", "/stream.mjpg", (302, 200, 200)),
    ("GET", "/snapshot.jpg", (302, 200, 200)),
    ("POST", "/trial/start", (401, 403, 302)),
    ("POST", "/trial/cancel", (401, 302, 302)),
    ("GET", "/results/last", (302, 302, 302)),
    ("GET", f"/results/{LAST}", (302, 403, 200)),
    ("GET", f"/results/{OLD}", (302, 403, 200)),
    ("POST", f"/results/{OLD}/label", (401, 403, 302)),
    ("GET", f"/results/{LAST}/report", (302, 403, 200)),
    ("GET", f"/results/{OLD}/report", (302, 403, 200)),
    ("GET", "/help", (200, 200, 200)),
    ("GET", "/history", (302, 403, 200)),
    ("GET", "/status", (302, 200, 200)),
    ("GET", "/export", (302, 403, 200)),
    ("GET", "/export/trials.csv", (302, 403, 200)),
    ("GET", "/export/trials.json", (302, 403, 200)),
    ("GET", "/export/fhir/P001/{day}.json", (302, 403, 200)),
    ("GET", f"/export/trials/{OLD}/landmarks.json", (302, 403, 200)),
    ("GET", f"/export/trials/{OLD}/landmarks.npz", (302, 403, 200)),
    ("GET", "/validation", (302, 403, 200)),
    ("GET", "/validation/report.json", (302, 403, 200)),
    ("GET", "/api/status", (200, 200, 200)),
    ("GET", "/api/session", (200, 200, 200)),
    ("GET", "/api/trials", (401, 403, 200)),
    ("GET", f"/api/trials/{LAST}", (401, 403, 200)),
    ("GET", f"/api/trials/{OLD}", (401, 403, 200)),
    ("POST", "/api/trials/start", (401, 403, 202)),
    ("POST", "/api/trials/cancel", (401, 200, 200)),
    ("POST", f"/api/trials/{OLD}/label", (401, 403, 201)),
    ("GET", "/api/unit/patient", (401, 403, 200)),
    ("POST", "/unit/bind", (401, 403, 302)),
    ("POST", "/api/unit/patient", (401, 403, 200)),
]
BODIES = {
    "/login": {"password": "wrong"},
    "/trial/start": {"patient_code": "P009", "side": "left"},
    "/api/trials/start": {"patient_code": "P009", "side": "left"},
    "/api/trials/{old}/label": {"score": 1, "comment": "ok"},
    "/api/unit/patient": {"patient_code": "P009", "side": "left"},
    "/unit/bind": {"patient_code": "P009", "side": "left"},
    "/results/{old}/label": {"score": "1", "comment": "ok"},
}


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[FakeServices, int, int]]:
    fake, old, last = seeded_fake()
    with fake:
        yield fake, old, last


@pytest.fixture()
def app(seeded: tuple[FakeServices, int, int]) -> Iterator[Flask]:
    seeded[0].bind_patient(None, None)  # each case starts on a unit no clinician bound
    app = make_app(seeded[0])
    yield app
    shutdown(app)


def _fill(path: str, seeded: tuple[FakeServices, int, int]) -> str:
    fake, old, last = seeded
    trial = fake.store.get_trial(last)
    assert trial is not None
    day = trial.started_at.astimezone().date().isoformat()
    return path.format(old=old, last=last, day=day)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, _ in MATRIX])
def test_access_matrix(
    app: Flask,
    seeded: tuple[FakeServices, int, int],
    role: str,
    method: str,
    path: str,
    expected: tuple[int, int, int],
) -> None:
    fake = seeded[0]
    client = app.test_client()
    login(client, role)
    url = _fill(path, seeded)
    if method == "GET":
        resp = client.get(url)
    else:
        body = dict(BODIES.get(path, {}))
        if path.startswith("/api/"):
            resp = client.post(url, json=body, headers={"X-CSRF-Token": csrf(client)})
        else:
            resp = client.post(url, data={**body, "csrf_token": csrf(client)})
    try:
        assert resp.status_code == expected[ROLES.index(role)], resp.text[:300]
        if resp.status_code == 302 and role == "anonymous" and method == "GET":
            assert "/login" in resp.location
    finally:
        resp.close()
        fake.cancel_trial()  # a started trial must not make the next start a 409


def test_matrix_covers_every_route(app: Flask) -> None:
    covered = {(m, re.sub(r"\{[a-z]+\}", "X", p)) for m, p, _ in MATRIX}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:int:)?[a-z_]+>", "X", rule.rule)
        path = path.replace("X/X.json", "X/X.json")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            shape = path.replace("P001", "X")
            assert (method, shape) in {(m, p.replace("P001", "X")) for m, p in covered}, (
                method,
                rule.rule,
            )


@pytest.mark.parametrize(
    "path",
    ["/login/patient", "/logout", "/trial/start", "/trial/cancel", "/results/1/label",
     "/api/trials/start", "/api/trials/cancel", "/api/trials/1/label", "/login"],
)  # fmt: skip
def test_post_without_csrf_token_is_rejected(app: Flask, path: str) -> None:
    client = app.test_client()
    login(client, "clinician")
    calls_before = list(app.extensions["flexscore"].services.calls)
    resp = client.post(path, data={"score": "1", "password": PASSWORD})
    assert resp.status_code == 400
    assert b"CSRF" in resp.data
    wrong = client.post(path, data={"csrf_token": "forged"}, headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 400
    assert app.extensions["flexscore"].services.calls == calls_before  # nothing started or cancelled
    assert client.get("/api/session").get_json()["role"] == "clinician"  # logout did not happen


def test_csrf_token_from_another_session_is_rejected(app: Flask) -> None:
    a, b = app.test_client(), app.test_client()
    login(a, "clinician")
    login(b, "clinician")
    resp = a.post("/api/trials/cancel", headers={"X-CSRF-Token": csrf(b)})
    assert resp.status_code == 400


def test_session_cookie_is_httponly_and_samesite(app: Flask) -> None:
    client = app.test_client()
    token = csrf(client)
    resp = client.post("/login", data={"csrf_token": token, "password": PASSWORD})
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "flexscore_session=" in cookie


def test_login_regenerates_the_session_token(app: Flask) -> None:
    client = app.test_client()
    before = csrf(client)
    login(client, "clinician")
    assert csrf(client) != before


def test_login_is_rate_limited(seeded: tuple[FakeServices, int, int]) -> None:
    app = make_app(seeded[0], login_max_attempts=3)
    client = app.test_client()
    token = csrf(client)
    for _ in range(3):
        assert client.post("/login", data={"csrf_token": token, "password": "nope"}).status_code == 401
    limited = client.post("/login", data={"csrf_token": token, "password": PASSWORD})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert client.get("/api/session").get_json()["role"] is None


def test_login_limiter_window_with_fake_clock() -> None:
    now = [0.0]
    lim = LoginLimiter(2, 60.0, clock=lambda: now[0])
    lim.failed("a")
    lim.failed("a")
    assert lim.retry_after("a") == 60.0
    assert lim.retry_after("b") is None
    now[0] = 61.0
    assert lim.retry_after("a") is None
    lim.failed("a")
    lim.succeeded("a")
    assert lim.retry_after("a") is None


def test_login_redirects_only_to_local_paths(app: Flask) -> None:
    client = app.test_client()
    token = csrf(client)
    for target, expected in [
        ("/history", "/history"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
    ]:
        client.post("/logout", data={"csrf_token": csrf(client)})
        token = csrf(client)
        resp = client.post("/login", data={"csrf_token": token, "password": PASSWORD, "next": target})
        assert resp.status_code == 302
        assert resp.location == expected


def test_logged_out_after_logout(app: Flask) -> None:
    client = app.test_client()
    login(client, "clinician")
    assert client.post("/logout", data={"csrf_token": csrf(client)}).status_code == 302
    assert client.get("/history").status_code == 302


def test_no_password_means_no_clinician_mode(
    seeded: tuple[FakeServices, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from device.config import WebConfig
    from device.web import create_app

    monkeypatch.delenv("FLEXSCORE_PASSWORD", raising=False)
    app = create_app(seeded[0], WebConfig(), flask_config={"TESTING": True, "SECRET_KEY": "s"})
    client = app.test_client()
    assert b"No clinician password" in client.get("/login").data
    resp = client.post("/login", data={"csrf_token": csrf(client), "password": ""})
    assert resp.status_code == 401


def test_password_from_environment(
    seeded: tuple[FakeServices, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from device.config import WebConfig
    from device.web import create_app

    monkeypatch.setenv("FLEXSCORE_PASSWORD", "from-env")
    app = create_app(seeded[0], WebConfig(), flask_config={"TESTING": True, "SECRET_KEY": "s"})
    client = app.test_client()
    resp = client.post("/login", data={"csrf_token": csrf(client), "password": "from-env"})
    assert resp.status_code == 302


def test_request_size_limit(seeded: tuple[FakeServices, int, int]) -> None:
    app = make_app(seeded[0], max_request_kb=1)
    client = app.test_client()
    login(client, "clinician")
    resp = client.post(
        "/api/trials/cancel", data=b"x" * 4096, headers={"X-CSRF-Token": csrf(client)},
        content_type="application/octet-stream",
    )  # fmt: skip
    assert resp.status_code == 413


def test_security_headers(app: Flask) -> None:
    resp = app.test_client().get("/login")
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"


def test_api_errors_are_json(app: Flask) -> None:
    client = app.test_client()
    resp = client.get("/api/trials")
    assert resp.status_code == 401
    assert resp.get_json()["status"] == 401
    login(client, "clinician")
    missing = client.get("/api/trials/99999")
    assert missing.status_code == 404 and missing.get_json()["error"]
    assert client.get("/results/99999").status_code == 404
    assert b"nothing here" in client.get("/no/such/page").data


# --------------------------------------------------------------------------- binding & secrets


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "localhost", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "flexscore.local"])
def test_check_bind_refuses_lan_without_password(host: str) -> None:
    from device.config import WebConfig

    assert not is_loopback(host)
    with pytest.raises(ConfigError, match="no clinician password"):
        check_bind(host, WebConfig(tls=True), env={})
    with pytest.raises(ConfigError, match="plain HTTP"):  # issue 19: never the password in clear
        check_bind(host, web_config(), env={})
    check_bind(host, WebConfig(tls=True), env={"FLEXSCORE_PASSWORD": "x"})
    check_bind(host, web_config(tls=True))
    check_bind("127.0.0.1", WebConfig(), env={})


def test_ensure_password_generates_one_only_when_missing() -> None:
    from device.config import WebConfig

    cfg, plain = ensure_password(WebConfig(), env={})
    assert plain and check_password(cfg.password_hash, plain)
    cfg2, plain2 = ensure_password(WebConfig(), env={"FLEXSCORE_PASSWORD": "pw"})
    assert plain2 is None and check_password(cfg2.password_hash, "pw")
    cfg3, plain3 = ensure_password(web_config(), env={})
    assert plain3 is None and cfg3.password_hash == web_config().password_hash


def test_config_rejects_a_plain_password() -> None:
    from device.config import WebConfig, config_from_dict

    with pytest.raises(ConfigError, match=r"web\.password_hash"):
        WebConfig(password_hash="hunter2")
    cfg = config_from_dict(
        {"web": {"port": 8081, "max_streams": 2, "password_hash": hash_password("a")}}
    )
    assert cfg.web.port == 8081
    with pytest.raises(ConfigError, match="unknown config key"):
        config_from_dict({"web": {"pasword": "x"}})


def test_secret_key_file_is_created_private_and_reused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sub" / "web-secret.key"
    key = load_secret_key(path)
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secret_key(path) == key


def test_app_keeps_its_secret_in_the_state_dir(seeded: tuple[FakeServices, int, int], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from device.web import create_app

    a = create_app(seeded[0], web_config(), state_dir=tmp_path)
    b = create_app(seeded[0], web_config(), state_dir=tmp_path)
    assert a.secret_key == b.secret_key
    assert (tmp_path / "web-secret.key").exists()


def test_a_late_answer_to_an_old_cookie_does_not_undo_a_login(app: Flask) -> None:
    """Tabs share one cookie jar. A status poll sent with the old cookie just before a login in
    another tab must not answer with a Set-Cookie: arriving after the login's answer, it would
    put back the revoked session and log the user out (seen as a rare browser-test failure)."""
    client = app.test_client()
    login(client, "patient")
    old = client.get_cookie("flexscore_session")
    assert old is not None
    login(client, "patient")  # the other tab: a new session; the old id is revoked
    new = client.get_cookie("flexscore_session")
    assert new is not None and new.value != old.value
    stale = app.test_client()
    stale.set_cookie("flexscore_session", old.value)
    for path in ("/api/status", "/api/session", "/"):
        assert "Set-Cookie" not in stale.get(path).headers, path
    assert client.get("/api/session").get_json()["role"] == "patient"
    assert "Set-Cookie" not in client.get("/api/status").headers  # no refresh when unchanged
