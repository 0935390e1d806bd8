"""The local web page: Flask app factory, blueprints, templates and static files (no CDN).

The composition root builds the app with :func:`create_app` over an object implementing
:class:`WebServices` and serves it with waitress (:func:`device.web.server.make_server`: HTTPS
and connection deadlines on top of waitress)::

    check_bind(cfg.web.host, cfg.web)                 # refuses LAN without HTTPS or a password
    web_cfg, generated = ensure_password(cfg.web)     # demo: show `generated` once
    app = create_app(services, web_cfg, state_dir=state_dir)
    server = make_server(app, web_cfg, ssl_context=...)  # server_options(web_cfg)
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
    "server_options",
    "shutdown",
    "waitress_options",
    "waitress_threads",
]

OUTBUF_HIGH_WATERMARK = 256 * 1024  # bytes queued per connection before the writer waits
MAX_HEADER_BYTES = 32 * 1024  # all request headers together (cookie, CSRF, user agent, …)
# Open connections the server holds before it stops accepting (waitress's default is 100, so
# 110 half-open connections locked everyone out). Each costs a socket and a few KB, never a
# thread; 500 stays well under the 1024 file descriptors a process gets by default.
CONNECTION_LIMIT = 500
CLEANUP_INTERVAL_S = 1  # how often deadlines are checked (waitress's default is 30 s)
# The kernel's send buffer per connection (set by device.web.server.FlexscoreServer). Linux
# grows it up to 4 MB on its own: 15-30 s of live view queued for a viewer that stopped
# reading before the server could notice (and that much lag for a slow one). 256 KB is still
# more than a LAN link needs in flight.
SEND_BUFFER_BYTES = 256 * 1024


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


def server_options(cfg: WebConfig) -> dict[str, Any]:
    """:func:`waitress_options` plus the daemon's connection limits: more open connections
    than waitress's default, polled with ``poll()`` (``select()`` fails past 1024 file
    descriptors), idle keep-alive connections closed after ``web.idle_timeout_s``, deadlines
    checked every second (the request deadline is :class:`device.web.server.FlexscoreServer`'s)."""
    return {
        **waitress_options(cfg),
        "connection_limit": CONNECTION_LIMIT,
        "asyncore_use_poll": True,
        "channel_timeout": max(1, round(cfg.idle_timeout_s)),
        "cleanup_interval": CLEANUP_INTERVAL_S,
    }
