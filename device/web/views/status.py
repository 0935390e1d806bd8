"""Status and settings: camera, models, disk space, uptime, software version."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from device.web.access import require, services, state
from device.web.texts import CAMERA_TEXT

bp = Blueprint("status", __name__, url_prefix="/status")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


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


@bp.get("")
@require("patient")
def index() -> str:
    sv = services()
    info = sv.system_info()
    snap = sv.status()
    cfg = state().config
    settings = {
        "Web address": f"{cfg.host}:{cfg.port}",
        "Live viewers at most": str(cfg.max_streams),
        "Live view frame rate": f"{cfg.stream_fps:g} fps",
        "Login lasts": f"{cfg.session_minutes} min",
        **info.settings,
    }
    used = info.disk_total_bytes - info.disk_free_bytes
    st = state()
    return render_template(
        "status.html",
        info=info,
        snap=snap,
        camera_text=CAMERA_TEXT,
        settings=settings,
        disk_used_share=used / info.disk_total_bytes if info.disk_total_bytes else 0.0,
        human_bytes=human_bytes,
        human_duration=human_duration,
        https=request.is_secure,
        fingerprint=st.certificate_fingerprint,
        hosts=sorted(st.hosts.allowed()),
    )
