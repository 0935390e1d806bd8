"""The Flask app factory: ``create_app(services, config)`` (flaskr's pattern, no globals)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, render_template, request
from flask import Response as HtmlResponse
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response

from device import __version__
from device.config import WebConfig
from device.web import access, i18n
from device.web.access import WebState, is_api, json_error
from device.web.i18n import N_, translate
from device.web.live import StreamLimiter
from device.web.security import (
    SECRET_FILE_NAME,
    HostCheck,
    LoginLimiter,
    SessionRegistry,
    configured_hash,
    load_secret_key,
)
from device.web.services import WebServices
from device.web.texts import item_choices, item_text
from device.web.views import BLUEPRINTS

log = logging.getLogger(__name__)

ERROR_TEXT = {
    400: N_("The request was not understood."),
    401: N_("Please log in first."),
    403: N_("This page is for the clinician. Log in with the clinician password."),
    404: N_("There is nothing here."),
    405: N_("That action is not allowed here."),
    413: N_("The request is too large."),
    429: N_("Too many attempts. Wait a few minutes and try again."),
    500: N_("Something went wrong on the appliance."),
    503: N_("The appliance is busy. Try again in a moment."),
}
ERROR_TITLE = {
    400: N_("Bad request"),
    401: N_("Please log in"),
    403: N_("Not for this role"),
    404: N_("Not found"),
    405: N_("Not allowed"),
    413: N_("Too large"),
    429: N_("Too many attempts"),
    500: N_("Appliance error"),
    503: N_("Busy"),
}


class RowIdConverter(IntegerConverter):
    """``<int:…>`` in every route: 0 … 2⁶³−1, what an SQLite row id can be. A larger number in
    a URL is "not found" (404), not an OverflowError deep in the store (500)."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


def _secret_key(
    cfg: WebConfig, state_dir: str | Path | None, flask_config: Mapping[str, Any]
) -> bytes | str:
    if flask_config.get("SECRET_KEY"):
        return str(flask_config["SECRET_KEY"])
    if cfg.secret_key_file:
        return load_secret_key(Path(cfg.secret_key_file).expanduser())
    if state_dir is not None:
        return load_secret_key(Path(state_dir) / SECRET_FILE_NAME)
    log.warning("no web secret key file configured: logins last only until the next restart")
    return secrets.token_bytes(32)


def create_app(
    services: WebServices,
    config: WebConfig | None = None,
    *,
    state_dir: str | Path | None = None,
    flask_config: Mapping[str, Any] | None = None,
    certificate_fingerprint: str | None = None,
) -> Flask:
    """The web app over ``services``.

    Args:
        services: the appliance (see :class:`device.web.services.WebServices`).
        config: the ``[web]`` section (defaults when None). Its ``password_hash`` — or the
            ``FLEXSCORE_PASSWORD`` environment variable — unlocks clinician mode; run
            :func:`device.web.ensure_password` first to generate one for a demo.
        state_dir: where the session signing key is kept (``web-secret.key``) when
            ``config.secret_key_file`` is empty.
        flask_config: extra Flask settings (tests pass ``TESTING`` and ``SECRET_KEY``).
        certificate_fingerprint: the HTTPS certificate's SHA-256 fingerprint, shown on the
            status page (``config.tls``: the server serves HTTPS; cookies are ``Secure``).
    """
    cfg = config or WebConfig()
    extra = dict(flask_config or {})
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=_secret_key(cfg, state_dir, extra),
        SESSION_COOKIE_NAME="flexscore_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=cfg.tls,  # over HTTPS the cookie never travels in clear text
        PREFERRED_URL_SCHEME="https" if cfg.tls else "http",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=cfg.session_minutes),
        # The cookie is sent only when the session changes (login, logout, a new CSRF token).
        # Refreshing it on every request let a late answer to another tab's status poll put
        # back a cookie that a login in this tab had just replaced (and revoked), logging the
        # user out. A login lasts web.session_minutes from login either way (SessionRegistry).
        SESSION_REFRESH_EACH_REQUEST=False,
        MAX_CONTENT_LENGTH=cfg.max_request_kb * 1024,
        MAX_FORM_MEMORY_SIZE=cfg.max_request_kb * 1024,
        JSON_SORT_KEYS=False,
        SEND_FILE_MAX_AGE_DEFAULT=3600,
    )
    app.config.update({k: v for k, v in extra.items() if k != "SECRET_KEY"})
    password_hash = configured_hash(cfg)
    if password_hash is None:
        log.warning("no clinician password is set: only patient mode is available")
    app.extensions["flexscore"] = WebState(
        services=services,
        config=cfg,
        password_hash=password_hash,
        login_limiter=LoginLimiter(cfg.login_max_attempts, cfg.login_window_s),
        streams=StreamLimiter(cfg.max_streams),
        sessions=SessionRegistry(cfg.session_minutes * 60.0),
        hosts=HostCheck(cfg.allowed_hosts),
        certificate_fingerprint=certificate_fingerprint,
    )
    app.url_map.converters["int"] = RowIdConverter  # before any route is added
    access.init_app(app)
    i18n.init_app(app, cfg.language)
    app.jinja_env.globals["software_version"] = __version__
    app.jinja_env.globals["item_choices"] = item_choices  # assessment items (device/items)
    app.jinja_env.globals["item_text"] = item_text
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response | tuple[str, int]:
        code = exc.code or 500
        custom = exc.description and exc.description != type(exc).description
        message = exc.description if code in (400, 403, 404) and custom else ERROR_TEXT.get(code, exc.name)
        if is_api() or request.accept_mimetypes.best == "application/json":
            resp = json_error(code, message or exc.name)
        else:  # a page: HTML in the page's language (Flask's Response is text/html)
            title = translate(ERROR_TITLE.get(code, exc.name))
            text = translate(message) if message else ""
            page = render_template("error.html", code=code, title=title, message=text)
            resp = HtmlResponse(page, code, mimetype="text/html")
        for key, value in exc.get_headers():
            if key.lower() not in ("content-type", "content-length"):
                resp.headers[key] = value
        return resp

    return app


def shutdown(app: Flask) -> None:
    """Tell open live streams to end (call before stopping the server)."""
    st = app.extensions.get("flexscore")
    if isinstance(st, WebState):
        st.stopping.set()
