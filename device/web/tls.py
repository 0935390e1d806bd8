"""HTTPS for the page: the certificate, its fingerprint, the TLS context and the device's names.

A site may configure its own certificate (``web.cert_file`` / ``web.key_file``). Otherwise
:func:`ensure_certificate` makes a self-signed one on first start (or at install) in
``<state dir>/tls/`` with the ``openssl`` command that Raspberry Pi OS ships (package
``openssl``, priority "important"): no Python crypto package is added to the device install.
It is an ECDSA P-256 certificate for the device's host names and addresses (see
:func:`device_names`), valid 825 days. Its SHA-256 fingerprint (:func:`fingerprint`) is shown
on the status page and printed by the installer and ``flexscore run``, so a clinician can
check, before trusting it, that the browser talks to this device.

:func:`device_names` also gives the default Host allow-list (``web.allowed_hosts`` empty).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import logging
import os
import shutil
import socket
import ssl
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from device.errors import ConfigError

log = logging.getLogger(__name__)

TLS_DIR = "tls"
CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"
CERT_DAYS = 825  # the longest validity browsers accept for a server certificate
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


@dataclass(frozen=True)
class Certificate:
    """A certificate and key on disk, and the certificate's SHA-256 fingerprint."""

    cert_file: Path
    key_file: Path
    fingerprint: str  # "AB:CD:…" (32 bytes), as browsers show it
    self_signed: bool


def _ipv4_addresses() -> list[str]:
    """The IPv4 address of each network interface (an ioctl: no packet is sent)."""
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue  # no IPv4 address on this interface
            found.append(socket.inet_ntoa(packed[20:24]))
    return found


def _ipv6_addresses() -> list[str]:
    """Global and link-local IPv6 addresses of the interfaces (from /proc/net/if_inet6)."""
    found: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            found.append(str(ipaddress.IPv6Address(int(raw, 16))))
    return found


def device_names() -> list[str]:
    """The names and addresses this device answers to: its host name (and ``.local``, which
    Raspberry Pi OS announces over mDNS), every interface address, ``localhost``, 127.0.0.1
    and ::1. Lower case, no duplicates, in that order. No DNS lookup (it could hang without a
    network): a site's DNS alias goes in ``web.allowed_hosts``."""
    names: list[str] = []
    host = socket.gethostname().strip().lower()
    if host:
        names += [host, f"{host.split('.')[0]}.local"]
    try:
        names += _ipv4_addresses() + _ipv6_addresses()
    except OSError as exc:  # no interfaces readable (a container): the names still work
        log.debug("cannot list interface addresses: %s", exc)
    names += list(LOOPBACK_NAMES)
    return list(dict.fromkeys(n for n in names if n))


def fingerprint(cert_file: str | Path) -> str:
    """SHA-256 fingerprint of the first certificate in a PEM file, as ``AB:CD:…``."""
    try:
        pem = Path(cert_file).read_text(encoding="ascii")
        start = pem.index("-----BEGIN CERTIFICATE-----")
        end = pem.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
        der = ssl.PEM_cert_to_DER_cert(pem[start:end])
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the TLS certificate {cert_file}: {exc}") from None
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _san(names: list[str]) -> str:
    parts = []
    for n in names:
        try:
            parts.append(f"IP:{ipaddress.ip_address(n)}")
        except ValueError:
            parts.append(f"DNS:{n}")
    return ",".join(parts)


def make_self_signed(directory: Path, names: list[str], openssl: str | None = None) -> None:
    """Write ``cert.pem`` and ``key.pem`` (mode 0600) in ``directory`` with the openssl CLI."""
    exe = openssl or shutil.which("openssl")
    if exe is None:
        raise ConfigError(
            "cannot make the HTTPS certificate: the openssl command is missing "
            "(apt-get install openssl), or set web.cert_file and web.key_file"
        )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert, key = directory / CERT_NAME, directory / KEY_NAME
    tmp_cert, tmp_key = cert.with_suffix(".tmp"), key.with_suffix(".tmp")
    cn = next((n for n in names if n not in LOOPBACK_NAMES), "flexscore")[:64]
    cmd = [
        exe, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", str(CERT_DAYS), "-subj", f"/O=Flexscore/CN={cn}",
        "-addext", f"subjectAltName={_san(names)}",
        "-addext", "extendedKeyUsage=serverAuth",
        "-keyout", str(tmp_key), "-out", str(tmp_cert),
    ]  # fmt: skip
    old = os.umask(0o077)  # the key is never readable by others, not even for a moment
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot make the HTTPS certificate with {exe}: {exc}") from None
    finally:
        os.umask(old)
    if proc.returncode != 0:
        raise ConfigError(f"cannot make the HTTPS certificate: openssl said: {proc.stderr.strip()[-300:]}")
    for tmp in (tmp_cert, tmp_key):
        os.chmod(tmp, 0o600)
    tmp_key.replace(key)
    tmp_cert.replace(cert)


def ensure_certificate(
    cert_file: str, key_file: str, state_dir: Path, names: list[str] | None = None
) -> Certificate:
    """The configured certificate, else the self-signed one in ``state_dir/tls`` (made once)."""
    if cert_file:
        cert, key = Path(cert_file).expanduser(), Path(key_file).expanduser()
        return Certificate(cert, key, fingerprint(cert), self_signed=False)
    directory = state_dir / TLS_DIR
    cert, key = directory / CERT_NAME, directory / KEY_NAME
    if not (cert.is_file() and key.is_file()):
        make_self_signed(directory, names or device_names())
        log.info("made a self-signed HTTPS certificate %s", cert)
    return Certificate(cert, key, fingerprint(cert), self_signed=True)


def server_context(cert: Certificate) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2+, the stdlib's secure defaults) over ``cert``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the HTTPS certificate {cert.cert_file} with key {cert.key_file}: {exc}"
        ) from None
    return ctx
