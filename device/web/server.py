"""The page's HTTP(S) server: waitress with deadlines and TLS, run in a background thread.

:func:`make_server` builds the daemon's server (:class:`FlexscoreServer`, see its doc and
:class:`FlexscoreChannel`'s for the deadlines and HTTPS); :class:`ServerThread` runs it.

Closing a waitress server's listening socket from another thread while its loop is inside
``poll()`` makes the loop raise ``EBADF`` (``OSError``) or ``ValueError`` in the server
thread: a traceback at every clean stop. :class:`ServerThread` expects exactly that once
:meth:`stop` has been called, and lets any other error through.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer

from device.config import WebConfig

log = logging.getLogger(__name__)


class ServerThread:
    """Runs ``server.run()`` (a waitress server) in a daemon thread until :meth:`stop`."""

    def __init__(self, server: Any, name: str = "web") -> None:
        self.server = server
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.server.run()
        except (OSError, ValueError):
            if not self._stopping.is_set():
                log.exception("the web server stopped unexpectedly")
                raise

    def stop(self, timeout: float = 5.0) -> None:
        """Close the server and wait (bounded) for its thread."""
        self._stopping.set()
        self.server.close()
        self.thread.join(timeout)


# --------------------------------------------------------------------------- the server

TLS_WRITE_BYTES = 64 * 1024  # plaintext encrypted per send: bounds what waits unsent per connection
NOT_TLS_ANSWER = (  # a browser shows it as a page (English and German: no request to read)
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"<!doctype html><html><head><meta charset='utf-8'><title>Use HTTPS</title></head><body>"
    b"<h1>Use HTTPS</h1><p>This page is served over HTTPS: use an https:// address.</p>"
    b"<p lang='de'>Diese Seite wird nur \xc3\xbcber HTTPS ausgeliefert: "
    b"bitte eine https://-Adresse verwenden.</p>"
    b"</body></html>\n"
)


class FlexscoreChannel(HTTPChannel):
    """A waitress connection with deadlines and, when the server has a TLS context, HTTPS.

    Deadlines (enforced by :meth:`FlexscoreServer.maintenance`): ``request_since`` is when the
    request now arriving began (for a new connection: when it was accepted); a request not
    whole within ``web.request_timeout_s`` closes the connection, however slowly its bytes
    trickle in. Waitress reads requests without a thread (its event loop), so connections that
    never finish their headers cost a socket each, never a worker thread.

    TLS: the socket stays a plain non-blocking socket in waitress's loop; the TLS records are
    read and written through an :class:`ssl.SSLObject` over memory buffers (the stdlib's
    OpenSSL, the way asyncio does it). ``recv`` decrypts, ``send`` encrypts at most
    ``TLS_WRITE_BYTES`` at a time and reports nothing sent while the previous records still
    wait for the socket, so waitress's output limits (``outbuf_high_watermark``) hold as over
    plain HTTP and a viewer that stops reading stalls its answer instead of growing a buffer.
    """

    def __init__(self, server: Any, sock: socket.socket, addr: Any, adj: Any, map: Any = None) -> None:
        self.request_since: float | None = time.time()
        self._raw = bytearray()  # encrypted bytes waiting for the socket
        self._tls_lock = threading.RLock()
        self._tls: ssl.SSLObject | None = None
        self._handshaken = False
        ctx: ssl.SSLContext | None = getattr(server, "ssl_context", None)
        if ctx is not None:
            self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
            self._tls = ctx.wrap_bio(self._in, self._out, server_side=True)
        super().__init__(server, sock, addr, adj, map)

    # -- deadlines ------------------------------------------------------------------------
    def received(self, data: bytes) -> bool:
        before = self.request
        result = bool(super().received(data))
        if self.request is None:
            self.request_since = None  # nothing partial: served, or idle between requests
        elif self.request is not before and (before is not None or self.request_since is None):
            self.request_since = time.time()  # a new request began
        return result

    def pending_output(self) -> int:
        return int(self.total_outbufs_len) + len(self._raw)

    # -- TLS ------------------------------------------------------------------------------
    def handle_read(self) -> None:
        if self._tls is None:
            super().handle_read()
            return
        try:
            raw = self.socket.recv(self.adj.recv_bytes)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.handle_close()
            return
        if not raw:
            self.handle_close()
            return
        closed = False
        with self._tls_lock:
            self._in.write(raw)
            chunks: list[bytes] = []
            try:
                if not self._handshaken:
                    self._tls.do_handshake()
                    self._handshaken = True
                while True:
                    chunks.append(self._tls.read(65536))
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                closed = True  # the client's close_notify
            except ssl.SSLError as exc:
                self._tls_failed(exc)
                return
            self._raw += self._out.read()
        self._flush_raw()
        plain = b"".join(chunks)
        if plain:
            self.last_activity = time.time()
            self.received(plain)
        if closed:
            self.handle_close()

    def _tls_failed(self, exc: ssl.SSLError) -> None:
        if getattr(exc, "reason", "") == "HTTP_REQUEST":
            log.info("plain HTTP request on the HTTPS port from %s: answered 400", self.addr)
            with contextlib.suppress(OSError):
                self.socket.send(NOT_TLS_ANSWER)
        else:
            log.debug("TLS handshake or record failed from %s: %s", self.addr, exc)
        self.handle_close()

    def _flush_raw(self, do_close: bool = True) -> bool:
        """Send waiting TLS records; True when none is left."""
        with self._tls_lock:
            if self._raw:
                sent = wasyncore.dispatcher.send(self, bytes(self._raw), do_close)
                del self._raw[:sent]
            return not self._raw

    def send(self, data: bytes, do_close: bool = True) -> int:
        if self._tls is None:
            return int(wasyncore.dispatcher.send(self, data, do_close))
        if not self._flush_raw(do_close) or not self.connected:
            return 0  # the client has not taken the last records yet
        piece = bytes(data[:TLS_WRITE_BYTES])
        with self._tls_lock:
            self._tls.write(piece)  # an SSLError is an OSError: waitress closes the channel
            self._raw += self._out.read()
        self._flush_raw(do_close)
        return len(piece)

    def writable(self) -> bool:
        return bool(self._raw) or bool(super().writable())

    def handle_write(self) -> None:
        if self._raw and not self._flush_raw() and not self.will_close:
            return
        super().handle_write()


class FlexscoreServer(TcpWSGIServer):
    """Waitress's TCP server with :class:`FlexscoreChannel` connections and their deadlines.

    Each connection's kernel send buffer is ``SEND_BUFFER_BYTES`` (Linux would grow it to
    4 MB). Every ``cleanup_interval`` (1 s) :meth:`maintenance` closes: idle keep-alive connections
    after ``web.idle_timeout_s`` (waitress's ``channel_timeout``); connections whose request has
    not arrived whole within ``web.request_timeout_s`` (slow or half-open clients); and
    answers that made no progress for ``web.request_timeout_s`` while output waits (a live
    viewer that stopped reading: its stream slot is freed when waitress ends the response)."""

    channel_class = FlexscoreChannel

    def __init__(
        self,
        application: Any,
        *,
        ssl_context: ssl.SSLContext | None = None,
        request_timeout_s: float = 10.0,
        **kw: Any,
    ) -> None:
        self.ssl_context = ssl_context
        self.request_timeout_s = request_timeout_s
        self.closed_slow = 0  # connections closed for a late request (tests and logs read it)
        self.closed_stalled = 0  # answers dropped because the client stopped reading
        super().__init__(application, **kw)

    def set_socket_options(self, conn: socket.socket) -> None:
        from device.web import SEND_BUFFER_BYTES

        super().set_socket_options(conn)  # TCP_NODELAY
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # idle keep-alive connections (channel_timeout)
        cutoff = now - self.request_timeout_s
        for channel in list(self.active_channels.values()):
            if channel.will_close or not isinstance(channel, FlexscoreChannel):
                continue
            since = channel.request_since
            if not channel.requests and since is not None and since < cutoff:
                channel.will_close = True
                self.closed_slow += 1
            elif channel.requests and channel.pending_output() and channel.last_activity < cutoff:
                channel.will_close = True
                # its socket is not writable, so the loop would never get to close it: a
                # shutdown makes poll() report it, and waitress closes it and ends the answer
                with contextlib.suppress(OSError):
                    channel.socket.shutdown(socket.SHUT_RDWR)
                self.closed_stalled += 1
                log.info("dropped an answer the client stopped reading (%s)", channel.addr)


def make_server(
    app: Any,
    cfg: WebConfig,
    *,
    host: str | None = None,
    port: int | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> FlexscoreServer:
    """The daemon's server for ``app``: waitress with :func:`server_options`, HTTPS when
    ``ssl_context`` is given. ``host`` and ``port`` default to the config's (port 0: any free).
    A host name that resolves to several addresses is served on the first."""
    from device.web import server_options

    opts = server_options(cfg)
    if ssl_context is not None:
        opts["url_scheme"] = "https"
    return FlexscoreServer(
        app,
        ssl_context=ssl_context,
        request_timeout_s=cfg.request_timeout_s,
        host=cfg.host if host is None else host,
        port=cfg.port if port is None else port,
        **opts,
    )
