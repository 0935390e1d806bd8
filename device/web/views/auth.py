"""Log in (clinician password), patient mode, log out."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from device.errors import InputError
from device.web.access import PATIENT_SESSION_KEY, csrf_token, role, state, store
from device.web.i18n import N_, gettext
from device.web.security import check_password
from device.web.services import resolve_patient

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)


def is_local_path(target: str | None) -> bool:
    """A path on this site: starts with one "/", and holds no backslash, whitespace or control
    character (browsers drop tabs and newlines from a URL, so ``/\t/evil.example/`` is
    ``//evil.example/``, another host; CR/LF would also split the Location header)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    return not any(c == "\\" or c.isspace() or ord(c) < 32 or ord(c) == 127 for c in target)


def _safe_next(target: str | None) -> str:
    """Only local paths (no scheme, no host) are followed after login."""
    return target if target is not None and is_local_path(target) else url_for("live.index")


def _start_session(new_role: str) -> None:
    st = state()
    st.sessions.revoke(session.get("sid"))
    session.clear()  # no session fixation: a fresh session id (and CSRF token) per login
    session["sid"] = st.sessions.new(new_role)
    session["role"] = new_role
    session["since"] = int(time.time())
    session.permanent = True
    csrf_token()


@bp.get("/login")
def login() -> str:
    st = state()
    return render_template(
        "login.html",
        next=_safe_next(request.args.get("next")),
        has_password=st.password_hash is not None,
    )


@bp.post("/login")
def login_post() -> Response | tuple[str, int, dict[str, str]]:
    st = state()
    client = request.remote_addr or "unknown"
    wait = st.login_limiter.retry_after(client)
    target = _safe_next(request.form.get("next"))
    if wait is not None:
        log.warning("login rate limit reached for a client")
        minutes = f"{wait / 60:.0f}"
        flash(gettext("Too many wrong passwords. Try again in %(minutes)s min.", minutes=minutes), "error")
        page = render_template("login.html", next=target, has_password=st.password_hash is not None)
        return page, 429, {"Retry-After": str(int(wait))}
    if check_password(st.password_hash, request.form.get("password", "")):
        st.login_limiter.succeeded(client)
        _start_session("clinician")
        log.info("clinician logged in")
        return redirect(target)
    st.login_limiter.failed(client)
    log.info("failed clinician login")
    flash(gettext("Wrong password."), "error")
    page = render_template("login.html", next=target, has_password=st.password_hash is not None)
    return page, 401, {}


@bp.post("/login/patient")
def login_patient() -> Response:
    """Patient mode. From a clinician's session it is a hand-over: the new session records
    only for the patient code the clinician gives (the form's ``patient_code`` and ``side``,
    else the code of the clinician's last start on this page). Without a password no code
    can be chosen here."""
    handed: list[str | None] | None = None
    code, side = request.form.get("patient_code", "").strip(), request.form.get("side", "")
    if role() == "clinician":
        log.info("clinician switched to patient mode")
        if not code:
            code, side = str(session.get("patient_code") or "").strip(), str(session.get("side") or "")
        if code:
            try:
                resolve_patient(store(), code, side or None)  # the clinician's choice: may be new
            except InputError as exc:
                flash(str(exc), "error")
                return redirect(url_for("live.index"))
            handed = [code, side if side in ("left", "right") else None]
    elif code:
        abort(403, description=N_("only a clinician can choose the patient of patient mode"))
    _start_session("patient")
    if handed is not None:
        session[PATIENT_SESSION_KEY] = handed
    return redirect(url_for("live.index"))


@bp.post("/logout")
def logout() -> Response:
    state().sessions.revoke(session.get("sid"))  # a copy of the old cookie is worthless now
    session.clear()
    flash(gettext("Logged out."), "info")
    return redirect(url_for("auth.login"))
