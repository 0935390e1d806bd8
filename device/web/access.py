"""Flask glue for access control: the app's state, roles, CSRF and small view helpers."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from flask import Flask, abort, current_app, jsonify, redirect, request, session, url_for
from werkzeug.wrappers import Response

from device.config import WebConfig
from device.store import Store, TrialRecord
from device.web.live import StreamLimiter
from device.web.security import RANK, LoginLimiter, SessionRegistry, new_csrf_token, same_token
from device.web.services import WebServices

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


@dataclass
class WebState:
    """Everything the views share (``app.extensions["flexscore"]``); no module globals."""

    services: WebServices
    config: WebConfig
    password_hash: str | None
    login_limiter: LoginLimiter
    streams: StreamLimiter
    stopping: threading.Event = field(default_factory=threading.Event)
    sessions: SessionRegistry = field(default_factory=SessionRegistry)


def state() -> WebState:
    return cast(WebState, current_app.extensions["flexscore"])


def services() -> WebServices:
    return state().services


def store() -> Store:
    return state().services.store


def role() -> str | None:
    """The session's role, if its server-side id is still live (see SessionRegistry)."""
    r = session.get("role")
    if r not in ("patient", "clinician"):
        return None
    return r if state().sessions.valid(session.get("sid"), r) else None


def is_api() -> bool:
    return request.path.startswith("/api/")


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = new_csrf_token()
        session["csrf"] = token
    return str(token)


def check_csrf() -> None:
    """``before_request``: every state-changing request carries the session's token."""
    if request.method not in UNSAFE_METHODS:
        return
    given = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
    if not same_token(session.get("csrf"), given):
        log.warning("rejected %s %s without a valid CSRF token", request.method, request.path)
        abort(400, description="missing or invalid CSRF token: reload the page and try again")


def require(min_role: str) -> Callable[[F], F]:
    """Views for ``patient`` (patient or clinician) or ``clinician`` only.

    Anonymous: pages redirect to the login page, the API answers 401. Too low a role: 403."""

    def deco(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            have = role()
            if have is None:
                if is_api() or request.method != "GET":
                    abort(401)
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if RANK[have] < RANK[min_role]:
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return deco


def patient_may_see(trial: TrialRecord) -> bool:
    """Patient mode shows only the newest trial."""
    if role() == "clinician":
        return True
    last = store().last_trial()
    return last is not None and last.id == trial.id


def json_error(status: int, message: str) -> Response:
    resp = jsonify({"error": message, "status": status})
    resp.status_code = status
    return resp


def check_size() -> None:
    """``before_request``: refuse a declared body over MAX_CONTENT_LENGTH even if unread."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and (request.content_length or 0) > limit:
        abort(413)


def init_app(app: Flask) -> None:
    app.before_request(check_size)
    app.before_request(check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_role"] = role

    @app.after_request
    def headers(resp: Response) -> Response:
        h = resp.headers
        h.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        )
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Frame-Options", "DENY")
        if role() is not None and "Cache-Control" not in h:
            h["Cache-Control"] = "no-store"
        return resp
