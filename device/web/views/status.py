"""Status and settings: camera, models, disk space, uptime, software version."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from device.web.access import require, services, state
from device.web.i18n import gettext, number
from device.web.services import ModelInfo
from device.web.texts import CAMERA_TEXT, STATE_TEXT, translated

bp = Blueprint("status", __name__, url_prefix="/status")

SCORER_SETTING = "scorer in use"  # the appliance's settings key naming the scorer's version


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{number(n)} {unit}" if unit == "B" else f"{number(n, 1)} {unit}"
        n /= 1024
    return f"{number(n, 1)} TB"  # pragma: no cover


def human_duration(seconds: float) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d} d {h} h {m} min"
    if h:
        return f"{h} h {m} min"
    return f"{m} min {s} s"


def scorer_name(version: str | None) -> str | None:
    """The model name in a scorer version ("scorer_hand_int8@1a2b3c4d" → "scorer_hand_int8")."""
    if not version or version.startswith(("unavailable", "not loaded")):
        return None
    return version.split("@", 1)[0].strip() or None


def mark_in_use(models: tuple[ModelInfo, ...], scorer: str | None) -> list[tuple[ModelInfo, str]]:
    """(model, "scorer" | "tracker" | "") rows: what the appliance runs is marked."""
    return [(m, "scorer" if m.name == scorer else ("tracker" if m.in_use else "")) for m in models]


def page_address() -> str:
    """Where this page is really served: the scheme, the host the browser used and the port
    the server listens on (not the configured default)."""
    port = request.environ.get("SERVER_PORT") or ""
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return f"{request.scheme}://{host}:{port}" if port else f"{request.scheme}://{request.host}"


@bp.get("")
@require("patient")
def index() -> str:
    sv = services()
    info = sv.system_info()
    snap = sv.status()
    cfg = state().config
    settings = {
        gettext("Web address (configured)"): f"{cfg.host}:{cfg.port}",
        gettext("Live viewers at most"): str(cfg.max_streams),
        gettext("Live view frame rate"): f"{number(cfg.stream_fps)} fps",
        gettext("Login lasts"): f"{cfg.session_minutes} min",
        gettext("Language"): gettext("browser's choice") if cfg.language == "auto" else cfg.language,
        **info.settings,
    }
    used = info.disk_total_bytes - info.disk_free_bytes
    st = state()
    scorer = scorer_name(info.settings.get(SCORER_SETTING))
    models = mark_in_use(info.models, scorer)
    return render_template(
        "status.html",
        info=info,
        snap=snap,
        camera_text=translated(CAMERA_TEXT),
        state_text=translated(STATE_TEXT),
        settings=settings,
        models=models,
        scorer=scorer,
        scorer_listed=any(use == "scorer" for _, use in models),
        disk_used_share=used / info.disk_total_bytes if info.disk_total_bytes else 0.0,
        human_bytes=human_bytes,
        human_duration=human_duration,
        https=request.is_secure,
        page_address=page_address(),
        fingerprint=st.certificate_fingerprint,
        hosts=sorted(st.hosts.allowed()),
    )
