"""``flexscore run``, ``flexscore check-config`` and ``flexscore press``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from device import sdnotify
from device.config import Config, load_config, replace
from device.errors import ConfigError

log = logging.getLogger(__name__)

DEMO_PATIENT = "DEMO"  # the patient the demo default (no --config) records for


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    r = sub.add_parser(
        "run",
        help="run the appliance (camera, tracker, button/LED, web page)",
        description="Run the appliance daemon. Without --config it runs the demo default: the "
        "bundled sample video as the camera, mock GPIO off the Pi, the page on 127.0.0.1:8080.",
    )
    r.add_argument("--config", metavar="FILE", help="TOML config (default: the demo default)")
    r.add_argument("--host", help="address for the web page (default from config: 127.0.0.1)")
    r.add_argument("--port", type=int, help="port for the web page (default from config: 8080)")
    r.add_argument("--state-dir", metavar="DIR", help="where the database and sockets live")
    r.add_argument("--video", metavar="FILE", help="use this video file as the camera (demo)")
    r.add_argument(
        "--tls",
        action="store_true",
        help="serve the page over HTTPS (web.tls; required for any host but loopback): the "
        "configured certificate, else a self-signed one made in the state dir",
    )
    r.set_defaults(func=cmd_run)

    c = sub.add_parser(
        "check-config",
        help="validate a config file (and the models and state dir it names)",
        description="Load FILE, reject unknown keys and bad values, check the configured models "
        "against their manifest and that the state directory is writable.",
    )
    c.add_argument("file", metavar="FILE")
    c.add_argument("--state-dir", metavar="DIR", help="state directory to check instead of the config's")
    c.set_defaults(func=cmd_check_config)

    t = sub.add_parser(
        "certificate",
        help="make (once) and show the HTTPS certificate and its SHA-256 fingerprint",
        description="With web.cert_file set: show that certificate's fingerprint. Otherwise make "
        "the self-signed certificate in STATE_DIR/tls/ if there is none yet (the installer runs "
        "this as the service user) and show its fingerprint, for a clinician to compare with "
        "what the browser shows.",
    )
    t.add_argument("--config", metavar="FILE", help="the daemon's config")
    t.add_argument("--state-dir", metavar="DIR", help="the daemon's state directory")
    t.set_defaults(func=cmd_certificate)

    p = sub.add_parser(
        "press",
        help="press the button of a running appliance (demo and testing)",
        description="Simulate one press of the panel button on the daemon running with the same "
        "state directory.",
    )
    p.add_argument("--state-dir", metavar="DIR", help="the daemon's state directory")
    p.add_argument("--config", metavar="FILE", help="the daemon's config (to find its state dir)")
    p.add_argument("--command", default="press", choices=("press", "cancel", "status"))
    p.set_defaults(func=cmd_press)


def _state_dir(cfg: Config, arg: str | None) -> Path:
    return Path(arg).expanduser() if arg else cfg.app.resolved_state_dir()


def cmd_check_config(args: argparse.Namespace) -> int:
    from device.app import check_state_dir
    from device.vision.runtime import load_model

    cfg = load_config(args.file)
    mc = cfg.models
    for name in cfg.tracker_model_names():  # every file the tracker will load
        load_model(mc.resolved_dir(), name, 1).close()
    from device.scoring.decide import Decider

    state = _state_dir(cfg, args.state_dir)
    decider = Decider(cfg, state_dir=state)  # a scorer installed on this device lives there
    try:
        decider.primary_rnn()
        decider.rnn_for(False)
    finally:
        decider.close()
    check_state_dir(state)
    from device.web.security import check_bind

    check_bind(cfg.web.host, cfg.web)
    web = f"http://{cfg.web.host}:{cfg.web.port}"
    if cfg.web.tls:
        web = f"https://{cfg.web.host}:{cfg.web.port}, {_check_tls(cfg, state)}"
    fleet = ""
    if cfg.fleet is not None:  # readable password and CA files (the URL was checked on load)
        cfg.fleet.check_files()
        fleet = f", fleet {cfg.fleet.broker} as {cfg.fleet.unit_id}"
    print(
        f"{args.file}: OK (camera {cfg.camera.backend}, models {mc.complexity} {mc.precision}, "
        f"state dir {state}, web {web}{fleet})"
    )
    return 0


def _check_tls(cfg: Config, state: Path) -> str:
    """What HTTPS will use; ConfigError when it cannot (unreadable certificate, no openssl)."""
    import shutil

    from device.web.tls import CERT_NAME, TLS_DIR, fingerprint, server_context
    from device.web.tls import Certificate as Cert

    web = cfg.web
    if web.cert_file:
        cert = Cert(Path(web.cert_file).expanduser(), Path(web.key_file).expanduser(), "", False)
        server_context(cert)
        return f"certificate {web.cert_file} SHA-256 {fingerprint(cert.cert_file)}"
    made = state / TLS_DIR / CERT_NAME
    if made.is_file():
        return f"self-signed certificate SHA-256 {fingerprint(made)}"
    if shutil.which("openssl") is None:
        raise ConfigError(
            "web.tls needs a certificate: set web.cert_file and web.key_file, or install openssl "
            "so that a self-signed one is made at the first start"
        )
    return "a self-signed certificate is made at the first start"


def cmd_certificate(args: argparse.Namespace) -> int:
    from device.web.tls import ensure_certificate

    cfg = load_config(args.config)
    state = _state_dir(cfg, args.state_dir)
    os.umask(0o077)
    cert = ensure_certificate(cfg.web.cert_file, cfg.web.key_file, state)
    kind = "self-signed certificate" if cert.self_signed else "certificate"
    print(f"HTTPS {kind} {cert.cert_file}")
    print(f"SHA-256 fingerprint {cert.fingerprint}")
    return 0


def cmd_press(args: argparse.Namespace) -> int:
    from device.app import send_control

    cfg = load_config(args.config)
    answer = send_control(_state_dir(cfg, args.state_dir), args.command)
    print(f"{args.command}: {answer}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from device.app import FlexscoreApp

    cfg = load_config(args.config)
    if args.config is None and not args.video:
        # The demo default: the bundled clip is a mirrored (selfie) view (device/data/NOTICE.md).
        from device.data import SAMPLE_VIDEO_MIRRORED

        cfg = replace(cfg, tracker=replace(cfg.tracker, mirrored=SAMPLE_VIDEO_MIRRORED))
    if args.config is None and not cfg.unit.patient:
        # The demo default records for a demo patient, so the button and `flexscore press`
        # score a trial out of the box; an installed unit's config binds its own (or none).
        cfg = replace(cfg, unit=replace(cfg.unit, patient=DEMO_PATIENT))
    if args.video:
        if not Path(args.video).is_file():
            raise ConfigError(f"--video {args.video}: file not found")
        cfg = replace(cfg, camera=replace(cfg.camera, backend="file", path=args.video))
    if args.port is not None and not (0 <= args.port <= 65535):
        raise ConfigError(f"--port {args.port}: must be in [0, 65535]")
    if args.tls:
        cfg = replace(cfg, web=replace(cfg.web, tls=True))
    os.umask(0o077)  # the database, its journal and keys: readable by the service user only
    level = getattr(logging, cfg.app.log_level.upper())
    logging.getLogger().setLevel(min(level, logging.getLogger().level or level))
    app = FlexscoreApp(
        cfg,
        state_dir=Path(args.state_dir).expanduser() if args.state_dir else None,
        host=args.host,
        port=args.port,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        app.start()
    except BaseException:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise
    try:
        url = app.url
        print(f"flexscore: running — web page {url} (state dir {app.state_dir})", flush=True)
        if app.certificate is not None:
            fp = app.certificate.fingerprint
            print(f"flexscore: HTTPS certificate SHA-256 fingerprint {fp}", flush=True)
        if app.generated_password:
            print(f"flexscore: clinician password for this run: {app.generated_password}", flush=True)
        if app.reaped:
            print(f"flexscore: {app.reaped} trial(s) interrupted by the last stop were marked so")
        sdnotify.ready(f"running on {url}")
        interval = sdnotify.watchdog_interval() or 5.0
        while not stop.wait(min(interval, 5.0)):
            if app.watchdog is not None and app.watchdog.responsive():
                sdnotify.watchdog()  # a hung camera/tracker loop stops this: systemd restarts us
            st = app.status()
            problem = f"; store: {app.last_store_error}" if app.last_store_error else ""
            sdnotify.status(f"{st.get('state')} camera {st.get('camera')}{problem}")
    finally:
        app.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("flexscore: stopped", file=sys.stderr)
    return 0
