"""The composition root: builds every component from one config and owns start/stop.

``FlexscoreApp(config)`` declares each component as ``None``; :meth:`start` builds them in
order (state dir → store, reaping trials a crash interrupted → models → recorder → panel →
camera watchdog → web server → control socket) and :meth:`stop` tears down in reverse,
skipping whatever never started; it is idempotent. Nothing else in the package constructs
hardware. The app also implements the web page's :class:`~device.web.services.WebServices`.

Threads: the camera watchdog thread reads frames and runs the tracker on each (the tracker
is the only consumer, so a slow viewer never slows it: the live view only copies the newest
frame); the recorder scores on its own worker; waitress serves the page; the control socket
serves ``flexscore press``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from device import sdnotify
from device.camera import CameraState, CameraWatchdog, Frame, FrameSource, open_source
from device.config import Config, scoring_mode
from device.errors import ConfigError, FlexscoreError, InputError, StoreError
from device.store import STOPPED_REASON, RecorderSink, Store, StoreCorruptError
from device.trial.quality import anatomical_side
from device.trial.recorder import RecorderTiming, StateChange, TrialInfo, TrialRecorder
from device.vision.tracker import HandTracker, build_tracker
from device.vision.types import HandObservation
from device.web.server import ServerThread
from device.web.services import StatusSnapshot

log = logging.getLogger(__name__)

CONTROL_SOCKET = "control.sock"
FPS_WINDOW_S = 2.0
# A trial is refused when the state directory's file system has less room than this (a
# trial's landmarks are ~50 kB; the margin keeps SQLite's WAL and the journal writable).
MIN_FREE_BYTES = 32 * 1024 * 1024
RULE_VERSION = "rom-rule-1"
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


class FpsMeter:
    """Frames per second over a sliding window."""

    def __init__(self, window_s: float = FPS_WINDOW_S) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            while self._times and now - self._times[0] > self.window_s:
                self._times.popleft()

    def fps(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._times if now - t <= self.window_s]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


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
        self.started_at = time.monotonic()  # uptime is a duration: immune to clock jumps
        self.min_free_bytes = MIN_FREE_BYTES
        self.safe = False  # shutdown-safe idle after a long press
        # components, in start order; None until started
        self._store: Store | None = None
        self.tracker: HandTracker | None = None
        self.decider: Any = None
        self.recorder: TrialRecorder | None = None
        self.panel: Any = None
        self.live: Any = None
        self.watchdog: CameraWatchdog | None = None
        self.web_app: Any = None
        self.web_server: Any = None
        self._web_thread: ServerThread | None = None
        self._control: socket.socket | None = None
        self._control_thread: threading.Thread | None = None
        self._fps = FpsMeter()
        self._hand_in_view: str | None = None  # anatomical side of the hand in the last frame
        self._sink: RecorderSink | None = None
        self._patients: dict[int, str] = {}
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
        try:
            self.reaped = self._store.reap_interrupted()
        except StoreError as exc:  # e.g. locked by a maintainer's sqlite3: keep running
            self.store_notice = f"{exc}; unfinished trials will be marked interrupted at the next stop"
            log.error("cannot mark interrupted trials now: %s", exc)
        if self.reaped:
            log.warning("marked %d trial(s) interrupted by the last shutdown or crash", self.reaped)
        self._sink = RecorderSink(self._store, self._outcome, on_error=self._on_store_error)
        self.tracker = build_tracker(cfg)
        from device.scoring.decide import Decider

        self.decider = Decider(cfg, state_dir=self.state_dir)  # site-installed scorers first
        # load the scorers now (hand frame, and 2D for trials without world landmarks):
        # a bad model fails at start
        self.decider.primary_rnn()
        self.decider.rnn_for(False)
        self.recorder = TrialRecorder(
            self._score,
            info_score_fn=self._score_in_session,
            trial_config=cfg.trial,
            timing=RecorderTiming.from_config(cfg.trial),  # issue 18: live guidance from [trial]
            mirrored=cfg.tracker.mirrored,
        )
        self.recorder.add_listener(self._sink)
        self.recorder.start_ticker()
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
            self.recorder.add_listener(self._panel_change)
            self.recorder.add_cue_listener(self.panel.on_cue)  # issue 18: guidance, close/open
        from device.web.live import LiveFrames

        self.live = LiveFrames()
        self.watchdog = CameraWatchdog.from_config(
            cfg.camera,
            self._source_factory,
            self._on_frame,
            on_state=self._on_camera_state,
            stop_event=self.stop_event,
        )
        self.watchdog.start()
        if self.serve_web:
            self._start_web()
        self._start_control()
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

    def refusal(self) -> str | None:
        """Why a new trial cannot be recorded now (disk full), else None."""
        try:
            free = shutil.disk_usage(self.state_dir).free
        except OSError as exc:
            return f"the state directory {self.state_dir} cannot be checked: {exc.strerror or exc}"
        if free < self.min_free_bytes:
            return (
                f"the disk is full ({free / 1e6:.1f} MB free, {self.min_free_bytes / 1e6:.0f} MB "
                "needed): the trial was not started and stored trials are untouched; free some space"
            )
        return None

    def _button(self) -> None:
        self._press()

    def _press(self, origin: str = "button") -> str:
        """The button (or ``flexscore press``): a press that would start a trial is refused
        with a reason when the disk is full (the trial shows as rejected with it)."""
        if self.recorder is None:
            return "stopped"
        self.safe = False
        if not self.recorder.busy:
            reason = self.refusal()
            if reason is not None:
                log.error("trial refused: %s", reason)
                if self.recorder.start(origin=origin):
                    self.recorder.fail("disk_full", reason)
                return str(self.recorder.state)
        return str(self.recorder.press(origin=origin))

    def _long_press(self) -> None:
        """Shutdown-safe idle: cancel a running trial, fold the WAL into the database file,
        LED off. Power can be pulled now; the next press leaves it."""
        if self.recorder is not None:
            self.recorder.cancel("cancelled with a long press")
        if self._store is not None:
            try:
                self._store.checkpoint()
            except StoreError as exc:
                log.error("shutdown-safe idle: %s", exc)
                return
        self.safe = True
        log.info("shutdown-safe idle: the appliance may be switched off")
        if self.panel is not None:
            from device.panel.patterns import PanelState

            self.panel.show(PanelState.SAFE)

    def _panel_change(self, change: StateChange) -> None:
        """The LED follows the recorder, except that idle stays "safe" after a long press."""
        if self.panel is None:
            return
        if self.safe and str(change.new) == "idle":
            from device.panel.patterns import PanelState

            self.panel.show(PanelState.SAFE)
            return
        self.panel.on_recorder_change(change)

    def _start_web(self) -> None:
        from device.web import check_bind, create_app, ensure_password
        from device.web.server import make_server

        check_bind(self.host, self.config.web)
        web_cfg, self.generated_password = ensure_password(self.config.web)
        ssl_context = None
        if web_cfg.tls:
            from device.web.tls import ensure_certificate, server_context

            self.certificate = ensure_certificate(web_cfg.cert_file, web_cfg.key_file, self.state_dir)
            ssl_context = server_context(self.certificate)
        app = create_app(
            self,
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

    def _start_control(self) -> None:
        path = self.state_dir / CONTROL_SOCKET
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        os.chmod(path, 0o660)
        sock.listen(4)
        sock.settimeout(0.5)
        self._control = sock
        self._control_thread = threading.Thread(target=self._control_loop, name="control", daemon=True)
        self._control_thread.start()

    def _control_loop(self) -> None:
        assert self._control is not None
        while not self.stop_event.is_set():
            try:
                conn, _ = self._control.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2.0)
                try:
                    cmd = conn.recv(64).decode("ascii", "replace").strip()
                    conn.sendall((self._control_command(cmd) + "\n").encode())
                except OSError as exc:
                    log.debug("control connection: %s", exc)

    def _control_command(self, cmd: str) -> str:
        if self.recorder is None:
            return "error not running"
        if cmd == "press":
            return f"ok {self._press(origin='control')}"
        if cmd == "cancel":
            return f"ok {self.recorder.cancel('control')}"
        if cmd == "status":
            return f"ok {self.recorder.state}"
        return f"error unknown command {cmd!r} (press, cancel, status)"

    def stop(self) -> None:
        """Stop in reverse order; a trial in progress is recorded as interrupted."""
        if self._stopped:
            return
        self._stopped = True
        self.stop_event.set()
        sdnotify.stopping()
        steps = [
            ("control socket", self._stop_control),
            ("web server", self._stop_web),
            ("camera", lambda: self.watchdog.stop() if self.watchdog else None),
            ("recorder", lambda: self.recorder.close() if self.recorder else None),
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

    def _stop_control(self) -> None:
        if self._control is not None:
            self._control.close()
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / CONTROL_SOCKET).unlink()
        if self._control_thread is not None:
            self._control_thread.join(timeout=2)

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
        """Camera thread: track, feed the recorder and the live view."""
        assert self.tracker is not None and self.recorder is not None
        obs = self.tracker.process_one(frame.rgb, frame.t)
        self.process_observation(frame.rgb, obs)

    def process_observation(self, rgb: Any, obs: HandObservation) -> None:
        assert self.recorder is not None
        self._fps.tick()
        self._hand_in_view = (
            anatomical_side(obs.handedness, self.config.tracker.mirrored) if obs.detected else None
        )
        self.recorder.on_observation(obs)
        if self.live is not None:
            self.live.put(rgb, obs, self._overlay_text())

    def _overlay_text(self) -> str:
        if self.recorder is None:
            return ""
        snap = self.recorder.snapshot()
        rem = snap.get("remaining_s")
        ref = " reference hand" if snap.get("reference") and self.recorder.busy else ""
        return f"{snap['state']}{ref}" + (f" {rem:.0f}s" if rem is not None else "")

    def _on_camera_state(self, state: CameraState) -> None:
        ok = state == CameraState.OK
        if self.panel is not None:
            self.panel.set_camera_ok(ok or state == CameraState.STARTING)
        lost = state in (CameraState.LOST, CameraState.RESTARTING)
        if lost and self.recorder is not None and self.recorder.busy:
            self.recorder.fail("camera_lost", "the camera stopped delivering frames")
        sdnotify.status(f"camera {state}")

    def _score(self, trial: Any) -> Any:
        assert self.decider is not None
        return self.decider.score(trial)

    def _score_in_session(self, trial: Any, info: TrialInfo) -> Any:
        """Scoring thread: a reference trial is measured; an assessment is scored with
        ``Decider.score(trial, reference=...)`` against its session's reference trial (the
        same patient today, the other hand; rebuilt from its stored landmarks), if any."""
        from device.web.services import measure_reference, score_in_session

        assert self.decider is not None
        if info.is_reference:
            return measure_reference(trial, self.config.trial)
        decider = self.decider
        return score_in_session(self.store, trial, info, lambda t, ref: decider.score(t, reference=ref))

    def _outcome(self, change: StateChange) -> Any:
        from device.web.services import trial_outcome

        # the version of the model that made this score (the 2D scorer for a trial without z)
        details = getattr(change.info.result if change.info else None, "details", None) or {}
        version = (details.get("rnn") or {}).get("version") or ("rule-only" if details else None)
        return trial_outcome(change, model_version=version or self.model_version(), rule_version=RULE_VERSION)

    def _on_store_error(self, change: StateChange, exc: StoreError) -> None:
        """A trial whose row could not be written is refused with the store's message (on a
        short thread: listeners must not change the recorder's state from inside it)."""
        info = change.info
        if str(change.new) != "recording" or info is None or self.recorder is None:
            return
        recorder, seq = self.recorder, info.seq
        threading.Thread(
            target=lambda: recorder.fail("not_saved", f"the trial cannot be saved: {exc}", seq=seq),
            name="store-refusal",
            daemon=True,
        ).start()

    @property
    def last_store_error(self) -> str | None:
        """The last failed store write (cleared by the next successful one), or a notice."""
        if self._sink is not None and self._sink.last_error is not None:
            return str(self._sink.last_error)
        return self.store_notice

    def model_version(self) -> str:
        """Version string of the scorer in use (name and sha256 prefix)."""
        if self.decider is None:
            return "unknown"
        try:
            rnn = self.decider.primary_rnn()
        except FlexscoreError:
            return "rule-only"
        return str(getattr(rnn, "version", getattr(rnn, "name", "rnn")))

    # ------------------------------------------------------------------ WebServices
    @property
    def store(self) -> Store:
        if self._store is None:
            raise StoreError("the store is not open")
        return self._store

    def status(self) -> StatusSnapshot:
        snap: Any = dict(self.recorder.snapshot()) if self.recorder else {"state": "starting"}
        snap["camera"] = str(self.watchdog.state) if self.watchdog else "stopped"
        snap["fps"] = round(self._fps.fps(), 1)
        snap["hand_in_view"] = self._hand_in_view
        info = self.recorder.info if self.recorder else None
        snap["side"] = info.side if info else None
        snap["patient"] = self._patients.get(info.patient_id) if info and info.patient_id else None
        if self.last_store_error:
            snap["store_error"] = self.last_store_error
        return snap

    def start_trial(self, patient_code: str | None, side: str | None, reference: bool = False) -> bool:
        from device.web.services import check_reference, check_side, resolve_patient

        if self.recorder is None:
            return False
        side = check_side(side)
        self.safe = False
        if not self.recorder.busy:
            reason = self.refusal()
            if reason is not None:
                raise InputError(reason)
        patient = resolve_patient(self.store, patient_code, side)
        if reference:
            side = check_reference(patient, side, self.config.trial.side)
        if patient is not None:
            self._patients[patient.id] = patient.code
            side = side or patient.affected_side
        return self.recorder.start(
            side=side,  # type: ignore[arg-type]
            patient_id=patient.id if patient else None,
            origin="web",
            reference=reference,
        )

    def cancel_trial(self) -> bool:
        return bool(self.recorder and self.recorder.cancel("cancelled"))

    def latest_jpeg(self, newer_than: int = -1, timeout: float = 0.0) -> Any:
        return self.live.latest_jpeg(newer_than, timeout) if self.live else None

    def _scorer_version(self) -> str:
        """The version of the scorer that scores the next trial (site-installed or shipped)."""
        if self.decider is None:
            return "not loaded"
        try:
            return str(self.decider.primary_rnn().version)
        except FlexscoreError as exc:
            return f"unavailable: {exc}"

    def system_info(self) -> Any:
        from device.web.services import SystemInfo, disk_usage, models_from_manifest, software_version

        mc = self.config.models
        in_use = self.config.tracker_model_names()
        total, free = disk_usage(self.state_dir)
        cam = self.config.camera
        return SystemInfo(
            software_version=software_version(),
            uptime_s=time.monotonic() - self.started_at,
            disk_path=str(self.state_dir),
            disk_total_bytes=total,
            disk_free_bytes=free,
            models=models_from_manifest(mc.resolved_dir(), in_use),
            camera={
                "backend": cam.backend,
                "state": str(self.watchdog.state) if self.watchdog else "stopped",
                "resolution": f"{cam.width}×{cam.height}",
                "fps": f"{self._fps.fps():.1f}",
                "restarts": str(self.watchdog.restarts if self.watchdog else 0),
            },
            settings={
                "models": f"{mc.complexity} {mc.precision}, {mc.threads} threads",
                "scoring": scoring_mode(self.config.scoring),
                "scorer in use": self._scorer_version(),
                "trial duration": f"{self.config.trial.duration_s:g} s",
                "affected side (default)": str(self.config.trial.side or "not set"),
            },
        )


def default_pin_factory() -> Any:
    """gpiozero's mock factory off the Pi (or when GPIOZERO_PIN_FACTORY=mock), else None
    (gpiozero picks the Pi's own)."""
    if os.environ.get("GPIOZERO_PIN_FACTORY", "") == "mock" or not Path("/dev/gpiochip0").exists():
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    return None


def send_control(state_dir: Path, command: str, timeout: float = 3.0) -> str:
    """Send one command to a running daemon's control socket and return its answer."""
    path = Path(state_dir) / CONTROL_SOCKET
    if not path.exists():
        raise FlexscoreError(f"no running flexscore daemon found (no control socket at {path})")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            sock.sendall(command.encode() + b"\n")
            answer = sock.recv(256).decode(errors="replace").strip()
        except OSError as exc:
            raise FlexscoreError(f"cannot reach the daemon at {path}: {exc}") from None
    if not answer.startswith("ok"):
        raise FlexscoreError(f"daemon refused {command!r}: {answer}")
    return answer[3:]


# ---------------------------------------------------------------------- benchmark
def bench_tracking_loop(cfg: Config, video: str, seconds: float = 12.0, fps: float = 30.0) -> dict[str, Any]:
    """The daemon's per-frame path (decode → tracker → recorder → live view) at 640×480, in a
    fresh child process so its peak RSS is the loop's own: achieved fps against a camera
    delivering ``fps``, CPU share (process CPU time / wall time, 1.0 = one core), peak RSS,
    and the unpaced maximum fps. One trial is recorded and scored during the run."""
    import json
    import subprocess
    import sys

    args = json.dumps({"video": str(video), "seconds": seconds, "fps": fps, "models": cfg.models.__dict__})
    code = (
        "import sys, json; from device.app import _bench_loop_child; "
        "print(json.dumps(_bench_loop_child(sys.argv[1])))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, args], capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        raise FlexscoreError(f"tracking-loop benchmark failed: {proc.stderr.strip()[-400:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def peak_rss_kb() -> int:
    """This process's peak resident set size in KiB, since it started its program.

    ``/proc/self/status`` VmHWM is the high-water mark of the current address space. The
    classic ``getrusage().ru_maxrss`` is not: Linux carries the parent's peak over into a
    child across fork + exec, so a child started by a big process (the benchmark holding 300
    decoded frames) reported the parent's 1.2 GB as its own.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


def _bench_loop_child(arg: str) -> dict[str, Any]:
    import json

    from device.camera import FileSource
    from device.config import ModelsConfig, replace
    from device.scoring.decide import Decider
    from device.web.live import LiveFrames

    spec = json.loads(arg)
    cfg = Config()
    cfg = replace(cfg, models=ModelsConfig(**spec["models"]))
    source = FileSource(spec["video"], loop=True, paced=False, fit=(640, 480))
    source.open()

    def next_frame() -> Any:
        frame = source.read(timeout=1.0)
        assert frame is not None
        return frame.rgb

    decider = Decider(cfg)
    recorder = TrialRecorder(decider.score, trial_config=cfg.trial)
    live = LiveFrames()
    with build_tracker(cfg) as tracker:
        # unpaced: the most the loop can do
        t0 = time.perf_counter()
        n_free = 0
        while time.perf_counter() - t0 < 3.0:
            f = next_frame()
            obs = tracker.process_one(f, n_free / spec["fps"])
            live.put(f, obs)
            n_free += 1
        max_fps = n_free / (time.perf_counter() - t0)
        # paced like a camera
        recorder.start(origin="bench")
        period = 1.0 / spec["fps"]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        n = late = 0
        while True:
            due = wall0 + n * period
            now = time.perf_counter()
            if now - wall0 >= spec["seconds"]:
                break
            if due > now:
                time.sleep(due - now)
            elif now - due > period:
                late += 1
            f = next_frame()
            obs = tracker.process_one(f, n * period)
            recorder.on_observation(obs)
            live.put(f, obs)
            n += 1
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
    state = str(recorder.state)
    source.close()
    recorder.close()
    decider.close()
    rss_kb = peak_rss_kb()
    return {
        "resolution": "640x480",
        "models": f"{cfg.models.complexity} {cfg.models.precision}",
        "camera_fps": spec["fps"],
        "achieved_fps": round(n / wall, 2),
        "late_frames": late,
        "cpu_share": round(cpu / wall, 3),
        "max_fps_unpaced": round(max_fps, 1),
        "peak_rss_mb": round(rss_kb / 1024, 1),
        "trial_state_at_end": state,
    }
