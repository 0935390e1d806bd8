"""schemathesis against docs/openapi.yaml: a real waitress server on loopback, no 5xx.

The server runs in a thread over the package's fake appliance (real store, real recorder).
Each operation gets positive and negative (schema-violating) cases, as a clinician and as an
anonymous visitor; every answer must be below 500 and, where the spec describes it, match
the documented status codes and JSON schema. ``/stream.mjpg`` never ends by design, so it is
left to tests/test_web_pages.py and the load benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from test_bad_input_support import BUDGET
from test_web_support import PASSWORD, seeded_fake, web_config

from device.web import create_app, shutdown, waitress_options
from device.web.server import ServerThread

SPEC = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
ROLES = ("anonymous", "clinician")

schema = schemathesis.openapi.from_path(SPEC).exclude(path="/stream.mjpg")
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=max(5, BUDGET.max_examples // 4),
    deterministic=True,
)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class Server:
    """waitress in a thread over a fresh fake appliance; ``url`` is its loopback address."""

    def __init__(self) -> None:
        from waitress import create_server

        self.fake, self.old, self.last = seeded_fake()
        self.app = create_app(self.fake, web_config(), flask_config={"SECRET_KEY": "schemathesis"})
        self.server: Any = create_server(self.app, host="127.0.0.1", port=0, **waitress_options(web_config()))
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.running = ServerThread(self.server).start()

    def close(self) -> None:
        shutdown(self.app)
        self.running.stop()
        self.fake.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server()
    try:
        yield srv
    finally:
        srv.close()


class Visitor:
    """A requests session in one role; :meth:`ensure` restores the role after a case logged
    out, switched to patient mode or logged in (schemathesis calls those routes too)."""

    def __init__(self, server: Server, role: str) -> None:
        self.server, self.role = server, role
        self.session = requests.Session()
        self.token = ""
        self.logins = 0
        self.ensure()

    def _get_session(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.session.get(f"{self.server.url}/api/session", timeout=10).json()
        return doc

    def ensure(self) -> None:
        doc = self._get_session()
        want = None if self.role == "anonymous" else self.role
        if doc["role"] != want:
            self.session.cookies.clear()
            doc = self._get_session()
            if self.role == "clinician":
                # the cases post wrong passwords on purpose: start this login with a clean slate
                self.server.app.extensions["flexscore"].login_limiter.succeeded("127.0.0.1")
                resp = self.session.post(
                    f"{self.server.url}/login",
                    data={"csrf_token": doc["csrf_token"], "password": PASSWORD},
                    allow_redirects=False,
                    timeout=10,
                )
                assert resp.status_code == 302
                self.logins += 1
                doc = self._get_session()
            assert doc["role"] == want
        self.token = str(doc["csrf_token"])


@pytest.fixture(scope="module", params=ROLES)
def visitor(request: pytest.FixtureRequest, server: Server) -> Iterator[Visitor]:
    v = Visitor(server, request.param)
    try:
        yield v
    finally:
        v.session.close()


@schema.parametrize()
@settings(BUDGET, max_examples=max(5, BUDGET.max_examples // 4))
def test_api_matches_the_spec_and_never_answers_5xx(
    case: schemathesis.Case, server: Server, visitor: Visitor
) -> None:
    try:
        case.call_and_validate(
            base_url=server.url,
            session=visitor.session,
            headers={"X-CSRF-Token": visitor.token},
            checks=CHECKS,
            allow_redirects=False,
            timeout=10,
        )
    finally:
        server.fake.cancel_trial()
        visitor.ensure()
