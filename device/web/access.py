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
from device.web.i18n import N_
from device.web.live import StreamLimiter
from device.web.security import (
    RANK,
    HostCheck,
    LoginLimiter,
    SessionRegistry,
    new_csrf_token,
    same_token,
)
from device.web.services import WebServices

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
HSTS = "max-age=31536000"  # one year; HTTPS answers only (browsers ignore it over HTTP)


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
    hosts: HostCheck = field(default_factory=HostCheck)
    certificate_fingerprint: str | None = None  # SHA-256 of the HTTPS certificate, if served
    clinician_trial: int | None = None  # recorder trial_seq of the trial a clinician started
    lock: threading.Lock = field(default_factory=threading.Lock)


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
        abort(400, description=N_("missing or invalid CSRF token: reload the page and try again"))


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


PATIENT_SESSION_KEY = "chosen_patient"  # [code, side] handed over by a clinician
NO_OTHER_PATIENT = N_(
    "in patient mode trials are recorded only for the patient the clinician chose for this "
    "unit; ask the clinician to start or hand over the session"
)
NOT_YOUR_TRIAL = N_(
    "this trial was started by the clinician: only the clinician (or the button) can cancel it"
)


def chosen_patient() -> tuple[str, str | None] | None:
    """The patient this patient-mode session records for: the one handed over with the
    session by a clinician, else the patient the unit is bound to (the appliance keeps it),
    else None."""
    handed = session.get(PATIENT_SESSION_KEY)
    if isinstance(handed, list) and len(handed) == 2 and isinstance(handed[0], str):
        return handed[0], handed[1] if handed[1] in ("left", "right") else None
    return services().bound_patient()


def patient_start(code: str | None, side: str | None) -> tuple[str | None, str | None]:
    """(patient code, side) a patient-mode start may use; 403 for any other code.

    Patient mode never creates a code and never records under another patient's code. With a
    chosen patient it records for that patient (the patient's affected side); without one, a
    trial without a patient code."""
    code = (code or "").strip()
    chosen = chosen_patient()
    if chosen is None:
        if code:
            abort(403, description=NO_OTHER_PATIENT)
        return None, side
    if code and code != chosen[0]:
        abort(403, description=NO_OTHER_PATIENT)
    return chosen[0], chosen[1]


def note_start(started: bool) -> None:
    """After a start: remember a clinician's trial (patient mode cannot cancel it)."""
    if not started:
        return
    st = state()
    seq = st.services.status().get("trial_seq")
    with st.lock:
        st.clinician_trial = seq if role() == "clinician" else None


def choose_unit_patient(code: str | None, side: str | None) -> None:
    """A clinician's start with a patient code binds the unit to that patient (the button
    and patient mode then record for them)."""
    code = (code or "").strip()
    if role() == "clinician" and code:
        services().bind_patient(code, side or None, actor="clinician")


def may_cancel() -> None:
    """403 when patient mode tries to cancel a trial a clinician started."""
    if role() == "clinician":
        return
    st = state()
    snap = st.services.status()
    seq = snap.get("trial_seq")
    running = snap.get("state") in ("countdown", "recording", "scoring")
    if running and seq is not None and seq == st.clinician_trial:
        abort(403, description=NOT_YOUR_TRIAL)


def patient_may_see(trial: TrialRecord) -> bool:
    """Patient mode shows only the newest trial, and only when it is its own: the chosen
    patient's, or (no patient chosen) a trial without a patient started during this session."""
    if role() == "clinician":
        return True
    last = store().last_trial()
    if last is None or last.id != trial.id:
        return False
    chosen = chosen_patient()
    if chosen is None:
        since = session.get("since")
        return (
            trial.patient_id is None
            and isinstance(since, int | float)
            and trial.started_at.timestamp() >= since
        )
    patient = store().find_patient(chosen[0])
    return patient is not None and trial.patient_id == patient.id


def json_error(status: int, message: str) -> Response:
    resp = jsonify({"error": message, "status": status})
    resp.status_code = status
    return resp


def check_size() -> None:
    """``before_request``: refuse a declared body over MAX_CONTENT_LENGTH even if unread."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and (request.content_length or 0) > limit:
        abort(413)


def check_host() -> None:
    """``before_request`` (first): a Host header outside ``web.allowed_hosts`` gets 400 before
    any view runs — a page elsewhere that rebinds its DNS name to this device cannot use the
    clinician's browser to read or drive it."""
    header = request.environ.get("HTTP_HOST")
    if not state().hosts.allows(header):
        log.warning("refused a request for a host name that is not this device's")
        abort(400, description=N_("unknown host name: open the page with the device's own name or address"))


def init_app(app: Flask) -> None:
    app.before_request(check_host)
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
        if request.is_secure:
            h.setdefault("Strict-Transport-Security", HSTS)
        if role() is not None and "Cache-Control" not in h:
            h["Cache-Control"] = "no-store"
        return resp
