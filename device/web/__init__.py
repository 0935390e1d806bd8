"""The local web page: Flask app factory, blueprints, templates and static files (no CDN).

The composition root builds the app with :func:`create_app` over an object implementing
:class:`WebServices` and serves it with waitress::

    check_bind(cfg.web.host, cfg.web)                 # refuses LAN without a password
    web_cfg, generated = ensure_password(cfg.web)     # demo: show `generated` once
    app = create_app(services, web_cfg, state_dir=state_dir)
    ...                                               # waitress.serve / create_server
    shutdown(app)                                     # ends live streams before the server stops

Waitress needs ``threads`` ≥ ``web.max_streams`` + 4: each live viewer holds one thread.
"""

from __future__ import annotations

from device.web.app import create_app, shutdown
from device.web.live import LiveFrames
from device.web.security import check_bind, ensure_password, hash_password, is_loopback
from device.web.services import JpegFrame, StatusSnapshot, SystemInfo, WebServices

__all__ = [
    "JpegFrame",
    "LiveFrames",
    "StatusSnapshot",
    "SystemInfo",
    "WebServices",
    "check_bind",
    "create_app",
    "ensure_password",
    "hash_password",
    "is_loopback",
    "shutdown",
    "waitress_threads",
]


def waitress_threads(max_streams: int) -> int:
    """Worker threads waitress needs so live viewers never starve the pages."""
    return max_streams + 4
