"""The local web page: Flask app factory, blueprints, templates and static files (no CDN).

The composition root builds the app with :func:`create_app` over an object implementing
:class:`WebServices` and serves it with waitress::

    check_bind(cfg.web.host, cfg.web)                 # refuses LAN without a password
    web_cfg, generated = ensure_password(cfg.web)     # demo: show `generated` once
    app = create_app(services, web_cfg, state_dir=state_dir)
    server = waitress.create_server(app, host=..., port=..., **waitress_options(web_cfg))
    shutdown(app)                                     # ends live streams before the server stops

Waitress needs ``threads`` ≥ ``web.max_streams`` + 4: each live viewer holds one thread.
:func:`waitress_options` also bounds each connection's output buffer: waitress's default lets a
never-ending MJPEG response grow a 16 MB buffer per viewer before it rotates it (the load
benchmark measured +100 MB RSS with 5 viewers), and spill buffers over 1 MB to temporary files.
"""

from __future__ import annotations

from typing import Any

from device.config import WebConfig
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
    "waitress_options",
    "waitress_threads",
]

OUTBUF_HIGH_WATERMARK = 256 * 1024  # bytes queued per connection before the writer waits
MAX_HEADER_BYTES = 32 * 1024  # all request headers together (cookie, CSRF, user agent, …)


def waitress_threads(max_streams: int) -> int:
    """Worker threads waitress needs so live viewers never starve the pages."""
    return max_streams + 4


def waitress_options(cfg: WebConfig) -> dict[str, Any]:
    """Keyword arguments for ``waitress.create_server`` (threads, bounded output buffers)."""
    return {
        "threads": waitress_threads(cfg.max_streams),
        "outbuf_high_watermark": OUTBUF_HIGH_WATERMARK,  # < outbuf_overflow: never a temp file
        # waitress buffers a chunked body whole (default up to 1 GB, spilled to disk) before
        # the app sees it: refuse past the app's own limit while it is still arriving
        "max_request_body_size": cfg.max_request_kb * 1024,
        "max_request_header_size": MAX_HEADER_BYTES,  # waitress default 256 KB; ours are < 4 KB
        "ident": "flexscore",
    }
