"""The composition root: builds every part from one config, hands them to the appliance core,
and owns start/stop.

``FlexscoreApp(config)`` declares each part as ``None``; :meth:`start` builds them in order
(state dir → store, reaping trials a crash interrupted → models → the appliance core
(:class:`device.appliance.Appliance`: recorder, patients, outcome → store) → panel →
camera watchdog → web server → control socket) and :meth:`stop` tears down in reverse,
skipping whatever never started; it is idempotent. Nothing else in the package constructs
hardware. The appliance's logic lives in the core only; this module wires (the web page,
the panel and the control socket all call the core).

Threads: the camera watchdog thread reads frames and runs the tracker on each (the tracker
is the only consumer, so a slow viewer never slows it: the live view only copies the newest
frame); the recorder scores on its own worker; waitress serves the page; the control socket
serves ``flexscore press``.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from device import sdnotify
from device.appliance import Appliance, StatusSnapshot
from device.camera import CameraState, CameraWatchdog, Frame, FrameSource, open_source
from device.config import Config, scoring_mode
from device.control import ControlServer, send_control
from device.errors import ConfigError, FlexscoreError, StoreError
from device.store import STOPPED_REASON, Store, StoreCorruptError
from device.trial.recorder import StateChange, TrialRecorder
from device.vision.tracker import HandTracker, build_tracker
from device.vision.types import HandObservation
from device.web.server import ServerThread

log = logging.getLogger(__name__)

__all__ = ["FlexscoreApp", "check_state_dir", "default_pin_factory", "make_private", "send_control"]

# How long a store write waits for another process's write lock (a maintainer's sqlite3).
# Short: the wait runs on the camera thread, and the recorder rejects a trial whose camera
# is silent for 2 s; a trial that cannot be saved is refused with the store's message.
STORE_BUSY_TIMEOUT_S = 1.0


def check_state_dir(path: Path) -> Path:
    """Create the state directory if needed (mode 0700) and prove it is writable."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"state directory {path} is not writable: {exc.strerror or exc}") from None
    return path


def make_private(path: Path) -> None:
    """The state directory 0700 and its files 0600, whatever the umask they were made with
    (patient data: only the service user reads it). Sockets keep their own modes."""
    try:
        if path.stat().st_uid == os.getuid():
            os.chmod(path, 0o700)
        for entry in path.iterdir():
            st = entry.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and st.st_mode & 0o077:
                os.chmod(entry, 0o600)
    except OSError as exc:
        log.warning("cannot make the state directory %s private: %s", path, exc.strerror or exc)


class FlexscoreApp:
    """The appliance (see the module doc)."""

    def __init__(
        self,
        config: Config,
        *,
        state_dir: Path | None = None,
        pin_factory: Any = None,
        source_factory: Callable[[], FrameSource] | None = None,
        host: str | None = None,
        port: int | None = None,
        serve_web: bool = True,
    ) -> None:
        self.config = config
        self.state_dir = Path(state_dir) if state_dir else config.app.resolved_state_dir()
        self.host = host or config.web.host
        self.port = config.web.port if port is None else port
        self.serve_web = serve_web
        self._pin_factory = pin_factory
        self._source_factory = source_factory or (lambda: open_source(config.camera))
        self.stop_event = threading.Event()
        # parts, in start order; None until started
        self._store: Store | None = None
        self.tracker: HandTracker | None = None
        self.decider: Any = None
        self.core: Appliance | None = None
        self.panel: Any = None
        self.live: Any = None
        self.watchdog: CameraWatchdog | None = None
        self.web_app: Any = None
        self.web_server: Any = None
        self._web_thread: ServerThread | None = None
        self._control: ControlServer | None = None
        self.fleet: Any = None  # device.fleet.FleetPublisher when [fleet] is configured
        self.store_notice: str | None = None  # e.g. a damaged database was moved aside
        self.generated_password: str | None = None
        self.certificate: Any = None  # device.web.tls.Certificate when serving HTTPS
        self._started = False
        self._stopped = False
        self.reaped = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Build and start everything; on any failure, stop what started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self._started = True

    def _start(self) -> None:
        cfg = self.config
        check_state_dir(self.state_dir)
        self._store = self._open_store(cfg.store.resolved_path(self.state_dir))
        make_private(self.state_dir)
        if cfg.fleet is not None:  # queues with each stored trial
            from device.fleet.publisher import fleet_from_config

            self.fleet = fleet_from_config(cfg.fleet, self._store, self)
        try:
            self.reaped = self._store.reap_interrupted()
        except StoreError as exc:  # e.g. locked by a maintainer's sqlite3: keep running
            self.store_notice = f"{exc}; unfinished trials will be marked interrupted at the next stop"
            log.error("cannot mark interrupted trials now: %s", exc)
        if self.reaped:
            log.warning("marked %d trial(s) interrupted by the last shutdown or crash", self.reaped)
        self.tracker = build_tracker(cfg)
        from device.scoring.decide import Decider

        self.decider = Decider(cfg, state_dir=self.state_dir)  # site-installed scorers first
        # load the scorers of every assessment item now (hand frame, and 2D for trials
        # without world landmarks): a bad or missing model fails at start, not mid-session
        from device.items import ITEMS

        self.decider.primary_rnn()
        for key in ITEMS:
            self.decider.rnn_for(True, True, item=key)
            self.decider.rnn_for(False, item=key)
        from device.web.live import LiveFrames

        self.live = LiveFrames()
        self.core = Appliance(
            cfg,
            state_dir=self.state_dir,
            store=self._store,
            scorer=self.decider,
            model_version=self.model_version,
            live=self.live,
            camera_info=self._camera_info,
            settings_info=self._settings_info,
            models_in_use=tuple(cfg.tracker_model_names()),
        )
        self.core.store_notice = self.store_notice
        self.core.recorder.start_ticker()
        if cfg.panel.enabled:
            from device.panel import Panel, make_voice

            factory = self._pin_factory if self._pin_factory is not None else default_pin_factory()
            self.panel = Panel(
                cfg.panel,
                pin_factory=factory,
                on_press=self._button,
                on_long_press=self._long_press,
                voice=make_voice(cfg.panel),  # issue 18: spoken prompts, off by default
            )
            self.core.on_state_change(self._panel_change)
            self.core.recorder.add_cue_listener(self.panel.on_cue)  # issue 18: guidance, close/open
        self.watchdog = CameraWatchdog.from_config(
            cfg.camera,
            self._source_factory,
            self._on_frame,
            on_state=self._on_camera_state,
            stop_event=self.stop_event,
        )
        self.core.camera_state_fn = lambda: str(self.watchdog.state) if self.watchdog else "stopped"
        self.watchdog.start()
        if self.serve_web:
            self._start_web()
        self._control = ControlServer(self.state_dir, self.core, self.stop_event).start()
        if self.fleet is not None:
            self.core.add_status_part("fleet", self.fleet.status)
            self.fleet.start()
        log.info(
            "flexscore started: state dir %s, camera %s, models %s %s",
            self.state_dir,
            cfg.camera.backend,
            cfg.models.complexity,
            cfg.models.precision,
        )

    def _open_store(self, path: Path) -> Store:
        """Open the store; a damaged file is moved aside (kept for recovery, never written
        to) and a new store started, so the appliance keeps working."""
        try:
            return Store(path, busy_timeout_s=STORE_BUSY_TIMEOUT_S)
        except StoreCorruptError as exc:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            kept = path.with_name(f"{path.name}.corrupt-{stamp}")
            for suffix in ("", "-wal", "-shm"):
                part = path.with_name(path.name + suffix)
                if part.exists():
                    part.rename(path.with_name(kept.name + suffix))
            self.store_notice = (
                f"the trial store was damaged and was moved to {kept} (recover it with "
                f"sqlite3 {kept.name} .recover); a new store was started"
            )
            log.error("%s: %s", self.store_notice, exc)
            store = Store(path, busy_timeout_s=STORE_BUSY_TIMEOUT_S)
            store.audit("system", "store_quarantined", {"moved_to": str(kept), "error": str(exc)})
            return store

    def _button(self) -> None:
        self._press()

    def _press(self, origin: str = "button") -> str:
        """The button (or ``flexscore press``): see :meth:`Appliance.press`."""
        if self.core is None:
            return "stopped"
        return self.core.press(origin)

    def _long_press(self) -> None:
        """Shutdown-safe idle (:meth:`Appliance.long_press`); the LED goes off."""
        if self.core is None:
            return
        self.core.long_press()
        if self.core.safe and self.panel is not None:
            from device.panel.patterns import PanelState

            self.panel.show(PanelState.SAFE)

    def _panel_change(self, change: StateChange) -> None:
        """The LED follows the recorder, except that idle stays "safe" after a long press."""
        if self.panel is None:
            return
        if self.core is not None and self.core.safe and str(change.new) == "idle":
            from device.panel.patterns import PanelState

            self.panel.show(PanelState.SAFE)
            return
        self.panel.on_recorder_change(change)

    def _start_web(self) -> None:
        from device.web import check_bind, create_app, ensure_password
        from device.web.server import make_server

        assert self.core is not None
        check_bind(self.host, self.config.web)
        web_cfg, self.generated_password = ensure_password(self.config.web)
        ssl_context = None
        if web_cfg.tls:
            from device.web.tls import ensure_certificate, server_context

            self.certificate = ensure_certificate(web_cfg.cert_file, web_cfg.key_file, self.state_dir)
            ssl_context = server_context(self.certificate)
        app = create_app(
            self.core,
            web_cfg,
            state_dir=self.state_dir,
            certificate_fingerprint=self.certificate.fingerprint if self.certificate else None,
        )
        self.web_app = app
        # threads per viewer, bounded output buffers, connection deadlines, TLS
        self.web_server = make_server(app, web_cfg, host=self.host, port=self.port, ssl_context=ssl_context)
        self.port = int(self.web_server.effective_port)
        self._web_thread = ServerThread(self.web_server).start()
        log.info("web page on %s", self.url)

    @property
    def url(self) -> str:
        """The page's address (https when served over TLS)."""
        scheme = "https" if self.config.web.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/"

    def stop(self) -> None:
        """Stop in reverse order; a trial in progress is recorded as interrupted."""
        if self._stopped:
            return
        self._stopped = True
        self.stop_event.set()
        sdnotify.stopping()
        steps = [
            ("fleet", lambda: self.fleet.stop() if self.fleet else None),
            ("control socket", lambda: self._control.close() if self._control else None),
            ("web server", self._stop_web),
            ("camera", lambda: self.watchdog.stop() if self.watchdog else None),
            ("recorder", lambda: self.core.close() if self.core else None),
            ("panel", lambda: self.panel.close() if self.panel else None),
            ("scorer", lambda: self.decider.close() if self.decider else None),
            ("tracker", lambda: self.tracker.close() if self.tracker else None),
            ("store", self._stop_store),
        ]
        t0 = time.monotonic()
        for name, fn in steps:
            t = time.monotonic()
            try:
                fn()
                log.debug("stopped %s in %.2f s", name, time.monotonic() - t)
            except Exception:
                log.exception("stopping %s failed", name)
        log.info("flexscore stopped in %.1f s", time.monotonic() - t0)

    def _stop_web(self) -> None:
        if self.web_app is not None:
            from device.web import shutdown

            shutdown(self.web_app)  # end live streams first, so no thread blocks the close
        if self._web_thread is not None:
            self._web_thread.stop(timeout=3)  # closes the server
        elif self.web_server is not None:
            self.web_server.close()

    def _stop_store(self) -> None:
        if self._store is not None:
            try:
                n = self._store.reap_interrupted(STOPPED_REASON)
                if n:
                    log.warning("marked %d trial(s) in progress as interrupted by the stop", n)
                self._store.checkpoint()  # fold the WAL into the database file
            finally:
                self._store.close()

    def __enter__(self) -> FlexscoreApp:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("running" if self._started else "new")
        return f"<FlexscoreApp {state} state_dir={self.state_dir}>"

    # ------------------------------------------------------------------ data flow
    def _on_frame(self, frame: Frame) -> None:
        """Camera thread: track, then hand the observation to the core."""
        assert self.tracker is not None and self.core is not None
        obs = self.tracker.process_one(frame.rgb, frame.t)
        self.core.process_observation(frame.rgb, obs)

    def process_observation(self, rgb: Any, obs: HandObservation) -> None:
        assert self.core is not None
        self.core.process_observation(rgb, obs)

    def _on_camera_state(self, state: CameraState) -> None:
        ok = state == CameraState.OK
        if self.panel is not None:
            self.panel.set_camera_ok(ok or state == CameraState.STARTING)
        lost = state in (CameraState.LOST, CameraState.RESTARTING)
        if self.core is not None:
            self.core.camera_changed(str(state), lost)
        sdnotify.status(f"camera {state}")

    def model_version(self) -> str:
        """Version string of the scorer in use (name and sha256 prefix)."""
        if self.decider is None:
            return "unknown"
        try:
            rnn = self.decider.primary_rnn()
        except FlexscoreError:
            return "rule-only"
        return str(getattr(rnn, "version", getattr(rnn, "name", "rnn")))

    def _scorer_version(self) -> str:
        """The version of the scorer that scores the next trial (site-installed or shipped)."""
        if self.decider is None:
            return "not loaded"
        try:
            return str(self.decider.primary_rnn().version)
        except FlexscoreError as exc:
            return f"unavailable: {exc}"

    def _camera_info(self) -> dict[str, str]:
        cam = self.config.camera
        return {
            "backend": cam.backend,
            "state": str(self.watchdog.state) if self.watchdog else "stopped",
            "resolution": f"{cam.width}×{cam.height}",
            "fps": f"{self.core.current_fps() if self.core else 0.0:.1f}",
            "restarts": str(self.watchdog.restarts if self.watchdog else 0),
        }

    def _settings_info(self) -> dict[str, str]:
        mc = self.config.models
        return {
            "models": f"{mc.complexity} {mc.precision}, {mc.threads} threads",
            "scoring": scoring_mode(self.config.scoring),
            "scorer in use": self._scorer_version(),
            "trial duration": f"{self.config.trial.duration_s:g} s",
            "affected side (default)": str(self.config.trial.side or "not set"),
        }

    # ------------------------------------------------------------------ the core's, for callers of the app
    @property
    def store(self) -> Store:
        if self._store is None:
            raise StoreError("the store is not open")
        return self._store

    @property
    def recorder(self) -> TrialRecorder | None:
        return self.core.recorder if self.core else None

    @property
    def safe(self) -> bool:
        return bool(self.core and self.core.safe)

    @property
    def min_free_bytes(self) -> int:
        assert self.core is not None
        return self.core.min_free_bytes

    @min_free_bytes.setter
    def min_free_bytes(self, value: int) -> None:
        assert self.core is not None
        self.core.min_free_bytes = value

    @property
    def last_store_error(self) -> str | None:
        return self.core.last_store_error if self.core else self.store_notice

    def status(self) -> StatusSnapshot:
        if self.core is None:
            return {"state": "starting", "camera": "stopped", "fps": 0.0}
        return self.core.status()

    def start_trial(
        self, patient_code: str | None, side: str | None, reference: bool = False, item: str | None = None
    ) -> bool:
        return bool(self.core and self.core.start_trial(patient_code, side, reference, item))

    def system_info(self) -> Any:
        assert self.core is not None
        return self.core.system_info()


def default_pin_factory() -> Any:
    """gpiozero's mock factory off the Pi (or when GPIOZERO_PIN_FACTORY=mock), else None
    (gpiozero picks the Pi's own)."""
    if os.environ.get("GPIOZERO_PIN_FACTORY", "") == "mock" or not Path("/dev/gpiochip0").exists():
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    return None
