"""Keep frames flowing: read a source in a loop and restart it when it stalls or fails.

:class:`CameraWatchdog` owns one :class:`~device.camera.base.FrameSource` at a time, built
by a factory. It reads with a short timeout and hands every frame to ``on_frame``. When no
frame has arrived for ``stall_timeout_s`` (or the source raises :class:`CameraError`), the
state becomes ``lost``, the source is closed, and after a paced back-off (``restart_delay_s``
doubling up to ``max_restart_delay_s``; once ``max_restarts`` restarts happened within
``restart_window_s`` every further wait is the cap) a fresh source is opened (``restarting``).
The first frame after that makes the state ``ok`` again and resets the back-off. All waits
are on the stop :class:`threading.Event`, so :meth:`stop` ends the loop at once.

States (:class:`CameraState`): ``starting`` → ``ok`` ⇄ ``lost`` → ``restarting`` → ``ok``;
``stopped`` after :meth:`stop` or when a finite source ends (:class:`EndOfStream`).
``on_state(state)`` is called from the watchdog thread on every change.

:meth:`responsive` says whether the loop itself still makes progress: each step announces
how long it may take (a read: its poll time; a back-off: its delay), plus ``hang_grace_s``
for the frame consumer (the tracker). A loop stuck past that — a hung tracker or driver —
is not responsive, the daemon stops sending systemd ``WATCHDOG=1`` and systemd restarts
it. A lost camera is *not* a hang: the loop keeps stepping through its back-off.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum

from device.camera.base import EndOfStream, Frame, FrameSource
from device.config import CameraConfig
from device.errors import CameraError

log = logging.getLogger(__name__)

FPS_WINDOW_S = 2.0  # frames counted for the fps estimate
POLL_S = 0.5  # longest single read; bounds how late a stall or a stop is noticed
HANG_GRACE_S = 10.0  # a frame consumer (tracker) may take this long before the loop counts as hung


class CameraState(StrEnum):
    STARTING = "starting"
    OK = "ok"
    LOST = "lost"
    RESTARTING = "restarting"
    STOPPED = "stopped"


class CameraWatchdog:
    """Runs the camera loop (see the module doc). Start with :meth:`start` or call :meth:`run`."""

    def __init__(
        self,
        factory: Callable[[], FrameSource],
        on_frame: Callable[[Frame], None],
        *,
        stall_timeout_s: float = 3.0,
        restart_delay_s: float = 1.0,
        max_restart_delay_s: float = 30.0,
        max_restarts: int = 5,
        restart_window_s: float = 300.0,
        on_state: Callable[[CameraState], None] | None = None,
        stop_event: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = POLL_S,
        hang_grace_s: float = HANG_GRACE_S,
    ) -> None:
        self._factory = factory
        self._on_frame = on_frame
        self._on_state = on_state
        self.stall_timeout_s = stall_timeout_s
        self.restart_delay_s = restart_delay_s
        self.max_restart_delay_s = max_restart_delay_s
        self.max_restarts = max_restarts
        self.restart_window_s = restart_window_s
        self._poll_s = min(poll_s, stall_timeout_s)
        self._clock = clock
        self.hang_grace_s = hang_grace_s
        self._step_deadline = clock() + hang_grace_s  # see responsive()
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self._state = CameraState.STARTING
        self._state_lock = threading.Lock()
        self._source: FrameSource | None = None
        self._thread: threading.Thread | None = None
        self._restart_times: collections.deque[float] = collections.deque()
        self._frame_times: collections.deque[float] = collections.deque()
        self._next_delay = restart_delay_s
        self._last_frame_at: float | None = None
        self._opened_at = 0.0
        self.delays: collections.deque[float] = collections.deque(maxlen=32)  # back-offs waited
        self.restarts = 0  # restarts attempted since start
        self.frames = 0  # frames delivered since start

    @classmethod
    def from_config(
        cls,
        cfg: CameraConfig,
        factory: Callable[[], FrameSource],
        on_frame: Callable[[Frame], None],
        **kwargs: object,
    ) -> CameraWatchdog:
        """A watchdog with the timing of ``[camera]`` in the config."""
        return cls(
            factory,
            on_frame,
            stall_timeout_s=cfg.stall_timeout_s,
            restart_delay_s=cfg.restart_delay_s,
            max_restart_delay_s=cfg.max_restart_delay_s,
            max_restarts=cfg.max_restarts,
            restart_window_s=cfg.restart_window_s,
            **kwargs,  # type: ignore[arg-type]
        )

    # -- observation ---------------------------------------------------------------------
    def is_alive(self) -> bool:
        """True while the camera loop's thread runs (systemd's watchdog keys on this)."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def state(self) -> CameraState:
        return self._state

    @property
    def fps(self) -> float:
        """Frames per second over the last couple of seconds (0 when none)."""
        times = list(self._frame_times)
        if len(times) < 2 or self._clock() - times[-1] > FPS_WINDOW_S:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0

    def frame_age(self) -> float | None:
        """Seconds since the last frame, or None before the first one."""
        return None if self._last_frame_at is None else self._clock() - self._last_frame_at

    def responsive(self) -> bool:
        """True while the loop's thread runs and its current step is within its announced
        time plus ``hang_grace_s`` (see the module doc)."""
        return self.is_alive() and self._clock() <= self._step_deadline

    def _announce(self, seconds: float) -> None:
        self._step_deadline = self._clock() + seconds + self.hang_grace_s

    @property
    def healthy(self) -> bool:
        """True while frames flow (the condition for sending systemd ``WATCHDOG=1``)."""
        age = self.frame_age()
        return self._state is CameraState.OK and age is not None and age < self.stall_timeout_s

    def _set_state(self, state: CameraState) -> None:
        with self._state_lock:
            if state is self._state:
                return
            old, self._state = self._state, state
        log.info("camera %s → %s", old.value, state.value)
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("camera state listener failed")

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> threading.Thread:
        """Run the loop in a daemon thread named ``camera``."""
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        self._thread = threading.Thread(target=self.run, name="camera", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = 5.0) -> None:
        """Set the stop event and wait for the loop to close its source. Idempotent."""
        self.stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("camera thread did not stop within %s s", timeout)

    def run(self) -> None:
        """The camera loop; returns when the stop event is set or a finite source ends."""
        try:
            while not self.stop_event.is_set():
                self._announce(self._poll_s)
                if self._source is None and not self._start_source():
                    self._back_off()
                    continue
                if not self._read_once():
                    break
        finally:
            self._close_source()
            self._set_state(CameraState.STOPPED)

    # -- steps ---------------------------------------------------------------------------
    def _start_source(self) -> bool:
        if self._state in (CameraState.LOST, CameraState.RESTARTING):
            self.restarts += 1
            self._restart_times.append(self._clock())
            self._set_state(CameraState.RESTARTING)
        try:
            source = self._factory()
            source.open()
        except CameraError as exc:
            log.error("camera cannot be opened: %s", exc)
            self._set_state(CameraState.LOST)
            return False
        except Exception:
            log.exception("camera factory failed")
            self._set_state(CameraState.LOST)
            return False
        self._source = source
        self._opened_at = self._clock()
        return True

    def _read_once(self) -> bool:
        """Read one frame; False when the loop should end (a finite source is over)."""
        source = self._source
        assert source is not None
        try:
            frame = source.read(timeout=self._poll_s)
        except EndOfStream as exc:
            log.info("camera stream ended: %s", exc)
            return False
        except CameraError as exc:
            log.error("camera failed: %s", exc)
            self._lose()
            return True
        now = self._clock()
        if frame is None:
            since = self._last_frame_at if self._last_frame_at is not None else self._opened_at
            since = max(since, self._opened_at)
            if now - since >= self.stall_timeout_s:
                log.error("camera stalled: no frame for %.1f s", now - since)
                self._lose()
            return True
        self._last_frame_at = now
        self.frames += 1
        self._frame_times.append(now)
        while self._frame_times and now - self._frame_times[0] > FPS_WINDOW_S:
            self._frame_times.popleft()
        if self._state is not CameraState.OK:
            self._next_delay = self.restart_delay_s
            self._set_state(CameraState.OK)
        try:
            self._on_frame(frame)
        except Exception:
            log.exception("frame consumer failed on frame %d; frame dropped", frame.index)
        return True

    def _lose(self) -> None:
        self._set_state(CameraState.LOST)
        self._close_source()
        self._back_off()

    def _back_off(self) -> None:
        """Wait before the next restart (on the stop event), pacing by the restart budget."""
        now = self._clock()
        while self._restart_times and now - self._restart_times[0] > self.restart_window_s:
            self._restart_times.popleft()
        if len(self._restart_times) >= self.max_restarts:
            delay = self.max_restart_delay_s
            log.warning(
                "camera restarted %d times in %.0f s; next try in %.1f s",
                len(self._restart_times), self.restart_window_s, delay,
            )  # fmt: skip
        else:
            delay = self._next_delay
            self._next_delay = min(max(self._next_delay * 2, 0.001), self.max_restart_delay_s)
        self.delays.append(delay)
        self._announce(delay)
        self.stop_event.wait(delay)

    def _close_source(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            try:
                source.close()
            except Exception:
                log.exception("error closing the camera")

    def __repr__(self) -> str:
        return f"<CameraWatchdog {self._state.value} frames={self.frames} restarts={self.restarts}>"
