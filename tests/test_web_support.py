"""Helpers shared by the web tests (no tests here): the fake appliance, app and logins."""

from __future__ import annotations

import functools
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from device.config import WebConfig
from device.web import create_app
from device.web.fake import FakeServices
from device.web.security import hash_password

PASSWORD = "correct horse battery"
ROLES = ("anonymous", "patient", "clinician")


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)  # scrypt is slow on purpose: hash once per run


def web_config(**changes: Any) -> WebConfig:
    return WebConfig(password_hash=password_hash(), **changes)


def make_app(fake: FakeServices, **changes: Any) -> Flask:
    return create_app(
        fake, web_config(**changes), flask_config={"TESTING": True, "SECRET_KEY": "test-secret"}
    )


def csrf(client: FlaskClient) -> str:
    return str(client.get("/api/session").get_json()["csrf_token"])


def login(client: FlaskClient, role: str) -> None:
    """Put ``client`` in ``role`` (anonymous: do nothing)."""
    if role == "anonymous":
        return
    token = csrf(client)
    if role == "patient":
        resp = client.post("/login/patient", data={"csrf_token": token})
    else:
        resp = client.post("/login", data={"csrf_token": token, "password": PASSWORD, "next": "/"})
    assert resp.status_code == 302, resp.text
    assert client.get("/api/session").get_json()["role"] == role


def hand_over(client: FlaskClient, code: str, side: str = "") -> FlaskClient:
    """``client`` as the clinician, then handed over to patient mode for ``code``."""
    login(client, "clinician")
    data = {"csrf_token": csrf(client), "patient_code": code, "side": side}
    resp = client.post("/login/patient", data=data)
    assert resp.status_code == 302, resp.text
    assert client.get("/api/session").get_json()["role"] == "patient"
    return client


def seeded_fake() -> tuple[FakeServices, int, int]:
    """A fake with an older labelled-less trial of P002 and a newest scored trial of P001.

    Returns (fake, old_trial_id, last_trial_id)."""
    fake = FakeServices()
    try:
        old = fake.run_trial("P002", "left", 1)
        last = fake.run_trial("P001", "right", 2)
    except BaseException:
        fake.close()
        raise
    assert old is not None and last is not None
    return fake, old.id, last.id
