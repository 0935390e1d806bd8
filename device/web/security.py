"""Access control: clinician password, session secret, CSRF tokens, login rate limit, roles.

Roles: **anonymous** (only the login page and ``/api/status``), **patient** (live view,
start/cancel, the last result) and **clinician** (everything: history, labels, exports).
Patient mode needs no password — it shows no history and no patient codes; the clinician
password unlocks the rest.

The password is a werkzeug hash (scrypt) from ``web.password_hash``, else the plain
``FLEXSCORE_PASSWORD`` environment variable (demo and tests). With neither, the
composition root calls :func:`ensure_password`, which generates one for this run and
returns it to be shown once on the console. :func:`check_bind` refuses a non-loopback host
while no password is configured or without HTTPS.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from werkzeug.security import check_password_hash, generate_password_hash

from device.config import WebConfig, is_loopback_host, replace
from device.errors import ConfigError

log = logging.getLogger(__name__)

PASSWORD_ENV = "FLEXSCORE_PASSWORD"
SECRET_FILE_NAME = "web-secret.key"
ROLES = ("patient", "clinician")
RANK = {None: 0, "patient": 1, "clinician": 2}


def hash_password(plain: str) -> str:
    """A werkzeug scrypt hash of ``plain`` (what ``web.password_hash`` holds)."""
    if not plain:
        raise ConfigError("the clinician password must not be empty")
    return generate_password_hash(plain, method="scrypt")


def configured_hash(cfg: WebConfig, env: Mapping[str, str] | None = None) -> str | None:
    """The clinician password hash: the config's, else one of ``FLEXSCORE_PASSWORD``."""
    if cfg.password_hash:
        return cfg.password_hash
    plain = (os.environ if env is None else env).get(PASSWORD_ENV, "")
    return hash_password(plain) if plain else None


def ensure_password(
    cfg: WebConfig, env: Mapping[str, str] | None = None
) -> tuple[WebConfig, str | None]:
    """``cfg`` with a password hash set, and the plain password if one was generated.

    Configured hash or ``FLEXSCORE_PASSWORD`` → (cfg with that hash, None). Neither → a
    random password for this run: the caller shows it once (console, never the log)."""
    found = configured_hash(cfg, env)
    if found is not None:
        return replace(cfg, password_hash=found), None
    plain = secrets.token_urlsafe(9)
    return replace(cfg, password_hash=hash_password(plain)), plain


def check_password(password_hash: str | None, plain: str) -> bool:
    if not password_hash or not plain:
        return False
    try:
        return check_password_hash(password_hash, plain)
    except ValueError:  # malformed hash
        log.error("the configured clinician password hash is malformed")
        return False


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    return is_loopback_host(host)


def check_bind(host: str, cfg: WebConfig, env: Mapping[str, str] | None = None) -> None:
    """Refuse to serve on a non-loopback ``host`` without HTTPS or without a clinician password.

    Call it with the config as loaded (before :func:`ensure_password`): a generated demo
    password is for this machine only. ``host`` may differ from ``cfg.host`` (``--host``)."""
    if is_loopback(host):
        return
    if not cfg.tls:
        raise ConfigError(
            f"refusing to serve the web page on {host} over plain HTTP: the clinician password and "
            "patient data would cross the network unencrypted. Set web.tls = true (or run with "
            "--tls), or bind to 127.0.0.1"
        )
    if configured_hash(cfg, env) is None:
        raise ConfigError(
            f"refusing to serve the web page on {host}: no clinician password is set. "
            f"Set web.password_hash (a werkzeug scrypt hash) or {PASSWORD_ENV}, "
            "or bind to 127.0.0.1"
        )


def host_name(header: str | None) -> str | None:
    """The host of a ``Host`` header without its port, lower case; None when malformed."""
    h = (header or "").strip().lower()
    if not h or any(ord(c) < 33 or ord(c) > 126 for c in h) or any(c in h for c in "/\\@?#"):
        return None
    if h.startswith("["):
        end = h.find("]")
        name, rest = h[1:end], h[end + 1 :]
        if end < 0 or ":" not in name:
            return None
    else:
        name, sep, port = h.partition(":")
        rest = sep + port
    if rest and not (rest.startswith(":") and rest[1:].isdigit() and len(rest) <= 6):
        return None
    name = name.rstrip(".")
    return name or None


class HostCheck:
    """The ``web.allowed_hosts`` allow-list (a defence against DNS rebinding).

    With an explicit list, exactly those names. Empty: the device's own names and addresses
    (:func:`device.web.tls.device_names`), looked up again at most every ``refresh_s`` when an
    unknown name arrives, so a new DHCP address is accepted without a restart."""

    def __init__(
        self,
        allowed: tuple[str, ...] = (),
        *,
        names: Callable[[], list[str]] | None = None,
        refresh_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.explicit = frozenset(n for n in (host_name(h) for h in allowed) if n) if allowed else None
        if names is None:
            from device.web.tls import device_names

            names = device_names
        self._names = names
        self._refresh_s = refresh_s
        self._clock = clock
        self._lock = threading.Lock()
        self._auto: frozenset[str] = frozenset()
        self._auto_at = float("-inf")

    def allowed(self) -> frozenset[str]:
        if self.explicit is not None:
            return self.explicit
        with self._lock:
            if self._clock() - self._auto_at >= self._refresh_s:
                self._auto = frozenset(n.lower() for n in self._names())
                self._auto_at = self._clock()
            return self._auto

    def allows(self, header: str | None) -> bool:
        name = host_name(header)
        if name is None:
            return False
        if self.explicit is not None:
            return name in self.explicit
        with self._lock:
            known = name in self._auto
        return known or name in self.allowed()


def load_secret_key(path: str | Path) -> bytes:
    """The session signing key in ``path``, created (32 random bytes, mode 0600) if missing."""
    p = Path(path)
    try:
        data = p.read_bytes()
        if len(data) >= 16:
            return data
        log.warning("web secret %s is too short; writing a new one", p)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot read the web secret key file {p}: {exc}") from exc
    key = secrets.token_bytes(32)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
    except OSError as exc:
        raise ConfigError(f"cannot write the web secret key file {p}: {exc}") from exc
    log.info("created a new web secret key file %s", p)
    return key


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def same_token(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


class SessionRegistry:
    """Server-side session ids: issued at each login, checked on every request, revoked at logout.

    The session cookie is signed but lives on the client; without this a copy of it would stay
    valid after logout until it expires. Each login gets a fresh random id (so a session id
    planted before login is worthless: no fixation), logout revokes it, and a restart of the
    daemon ends every session. At most ``max_sessions`` per role live at once (the oldest of
    that role go first, so minting patient sessions cannot log the clinician out)."""

    def __init__(
        self,
        lifetime_s: float = 8 * 3600.0,
        *,
        max_sessions: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lifetime_s = lifetime_s
        self.max_sessions = max_sessions
        self.clock = clock
        self._lock = threading.Lock()
        self._live: dict[str, tuple[str, float]] = {}  # sid → (role, expiry); insertion-ordered

    def new(self, role: str) -> str:
        sid = secrets.token_urlsafe(24)
        with self._lock:
            now = self.clock()
            self._live = {k: v for k, v in self._live.items() if v[1] > now}
            same = [k for k, v in self._live.items() if v[0] == role]  # oldest first
            for old in same[: max(0, len(same) - self.max_sessions + 1)]:
                del self._live[old]  # patient sessions (no password) never push out a clinician's
            self._live[sid] = (role, now + self.lifetime_s)
        return sid

    def valid(self, sid: object, role: str) -> bool:
        if not isinstance(sid, str):
            return False
        with self._lock:
            entry = self._live.get(sid)
            if entry is None:
                return False
            if entry[1] <= self.clock():
                del self._live[sid]
                return False
            return hmac.compare_digest(entry[0], role)

    def revoke(self, sid: object) -> None:
        if isinstance(sid, str):
            with self._lock:
                self._live.pop(sid, None)

    def __len__(self) -> int:
        return len(self._live)


@dataclass
class LoginLimiter:
    """At most ``max_attempts`` failed logins per client within ``window_s`` seconds."""

    max_attempts: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    MAX_CLIENTS: ClassVar[int] = 10_000

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._fails: dict[str, deque[float]] = {}

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and now - q[0] >= self.window_s:
            q.popleft()
        return q

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or None when it may try now."""
        with self._lock:
            now = self.clock()
            q = self._prune(key, now)
            if len(q) < self.max_attempts:
                return None
            return max(1.0, self.window_s - (now - q[0]))

    def failed(self, key: str) -> None:
        with self._lock:
            now = self.clock()
            self._prune(key, now).append(now)
            if len(self._fails) > self.MAX_CLIENTS:  # bound memory against address sprays
                live = {k: q for k, q in self._fails.items() if q and now - q[-1] < self.window_s}
                if len(live) > self.MAX_CLIENTS:  # still too many: keep the newest half
                    newest = sorted(live, key=lambda k: live[k][-1], reverse=True)
                    live = {k: live[k] for k in newest[: self.MAX_CLIENTS // 2]}
                self._fails = live

    def tracked(self) -> int:
        """Clients with failures on record (bounded by ``MAX_CLIENTS``)."""
        with self._lock:
            return len(self._fails)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)
