"""Log in (clinician password), patient mode, log out."""

from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from device.web.access import csrf_token, role, state
from device.web.security import check_password

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only local paths (no scheme, no host) are followed after login."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("live.index")


def _start_session(new_role: str) -> None:
    st = state()
    st.sessions.revoke(session.get("sid"))
    session.clear()  # no session fixation: a fresh session id (and CSRF token) per login
    session["sid"] = st.sessions.new(new_role)
    session["role"] = new_role
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
        flash(f"Too many wrong passwords. Try again in {wait / 60:.0f} min.", "error")
        page = render_template("login.html", next=target, has_password=st.password_hash is not None)
        return page, 429, {"Retry-After": str(int(wait))}
    if check_password(st.password_hash, request.form.get("password", "")):
        st.login_limiter.succeeded(client)
        _start_session("clinician")
        log.info("clinician logged in")
        return redirect(target)
    st.login_limiter.failed(client)
    log.info("failed clinician login")
    flash("Wrong password.", "error")
    page = render_template("login.html", next=target, has_password=st.password_hash is not None)
    return page, 401, {}


@bp.post("/login/patient")
def login_patient() -> Response:
    if role() == "clinician":
        log.info("clinician switched to patient mode")
    _start_session("patient")
    return redirect(url_for("live.index"))


@bp.post("/logout")
def logout() -> Response:
    state().sessions.revoke(session.get("sid"))  # a copy of the old cookie is worthless now
    session.clear()
    flash("Logged out.", "info")
    return redirect(url_for("auth.login"))
