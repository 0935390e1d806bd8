"""The appliance's own logic, implemented once: :class:`Appliance`.

Everything a front end asks of the kit goes through one object, whatever the front end (the
web page, the panel's button, ``flexscore press``) and whatever the parts behind it (the real
camera, tracker and models in :mod:`device.app`; a synthetic camera, a fake clock and a
stand-in RNN in :mod:`device.web.fake`):

* **start / press / cancel** — a trial needs a patient: the code typed, else the patient the
  unit is bound to (:meth:`Appliance.bind_patient`, kept in the store; else ``[unit]
  patient``), else — only with ``[unit] anonymous = true`` — none. Without one the trial is
  refused with how to fix it (a press shows it as a rejected start; the page gets an
  :class:`~device.errors.InputError`). A full disk refuses a trial the same way, before any
  row is written.
* **reference trials** — the unaffected hand of a patient's session (:mod:`.session`).
* **scoring** — on the recorder's worker: a reference is measured, an assessment scored
  against its session's reference when there is one.
* **outcome → stored record** — :class:`~device.store.RecorderSink` writes each outcome in
  one transaction; then the **"trial stored" event** (:meth:`Appliance.on_trial_stored`)
  tells integrations (exports, a network publisher) without touching the recorder.
* **live state** — :meth:`status`, the frame rate, the hand in view, the camera's state.

Parts are passed in; the appliance never builds hardware. ``process_observation`` is called
by whatever delivers frames (the camera watchdog's thread, the fake camera).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from device.appliance.session import (
    check_reference,
    check_side,
    measure_reference,
    resolve_patient,
    score_in_session,
    stored_outcome,
)
from device.appliance.status import (
    JpegFrame,
    StatusSnapshot,
    SystemInfo,
    disk_usage,
    models_from_manifest,
    software_version,
)
from device.config import Config
from device.errors import FlexscoreError, InputError, StoreError
from device.items import DEFAULT_ITEM, resolve_items
from device.store import Patient, RecorderSink, Store
from device.store.sink import begin_row, write_outcome
from device.trial.quality import anatomical_side
from device.trial.recorder import (
    RecorderState,
    RecorderTiming,
    StateChange,
    TrialInfo,
    TrialRecorder,
    result_reasons,
)
from device.trial.types import Trial
from device.vision.types import HandObservation

log = logging.getLogger(__name__)

FPS_WINDOW_S = 2.0
# A trial is refused when the state directory's file system has less room than this (a
# trial's landmarks are ~50 kB; the margin keeps SQLite's WAL and the journal writable).
MIN_FREE_BYTES = 32 * 1024 * 1024
BINDING_KEY = "unit_patient"  # store setting: {"code": ..., "side": ...} the unit records for
NO_PATIENT = (
    "no patient for this trial: this unit is not bound to a patient. A clinician types the "
    "patient code on the page and presses Start (or 'Bind this unit' for a home unit), or "
    "sets [unit] patient in the config; for anonymous screening set [unit] anonymous = true"
)


class NoPatientError(InputError):
    """A trial without a patient on a unit not set up for anonymous screening."""


class TrialScorer(Protocol):
    """What scores a trial (:class:`device.scoring.decide.Decider` on the appliance): one
    assessment ``item`` (a key of :mod:`device.items`), against a ``reference`` trial of the
    unaffected hand when there is one."""

    def score(self, trial: Trial, reference: Trial | None = None, item: str = DEFAULT_ITEM) -> Any: ...


@dataclass(frozen=True)
class TrialStored:
    """The "trial stored" event: one recorder outcome written to the store."""

    trial_id: int
    status: str  # scored, rejected, cancelled, error
    patient_id: int | None
    role: str  # assessment / reference
    origin: str | None
    item: str = DEFAULT_ITEM  # the assessment item of this row (device/items)


class FpsMeter:
    """Frames per second over a sliding window (``clock``: a fake one in tests)."""

    def __init__(self, window_s: float = FPS_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        with self._lock:
            self._times.append(now)
            while self._times and now - self._times[0] > self.window_s:
                self._times.popleft()

    def fps(self, now: float | None = None) -> float:
        now = self._clock() if now is None else now
        with self._lock:
            recent = [t for t in self._times if now - t <= self.window_s]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


class Appliance:
    """The appliance core (see the module doc). Implements
    :class:`device.web.services.WebServices`.

    Args:
        config: the whole validated config.
        state_dir: where the store lives (its free space decides whether a trial may start).
        store: the open trial store (closed by whoever opened it).
        scorer: ``score(trial, reference=None)`` (the Decider).
        model_version: the version of the scorer in use, for stored scores and the page.
        live: the live view (``put`` / ``latest_jpeg``), or None.
        timing, submit, clock: the recorder's (tests: a fake clock and inline scoring).
        camera_info, settings_info: what the status page shows about the camera and settings.
        models_in_use: manifest names of the models the tracker loaded.
    """

    def __init__(
        self,
        config: Config,
        *,
        state_dir: Path,
        store: Store,
        scorer: TrialScorer,
        model_version: Callable[[], str] = lambda: "unknown",
        live: Any = None,
        timing: RecorderTiming | None = None,
        submit: Callable[[Callable[[], None]], object] | None = None,
        clock: Callable[[], float] | None = None,
        camera_info: Callable[[], dict[str, str]] = dict,
        settings_info: Callable[[], dict[str, str]] = dict,
        models_in_use: tuple[str, ...] = (),
    ) -> None:
        self.config = config
        self.state_dir = Path(state_dir)
        self._store = store
        self.scorer = scorer
        self.model_version = model_version
        self.live = live
        self.camera_info = camera_info
        self.settings_info = settings_info
        self.models_in_use = models_in_use
        self.min_free_bytes = MIN_FREE_BYTES
        self._camera_state = "starting"
        self.camera_state_fn: Callable[[], str] | None = None  # the watchdog's, when there is one
        self.hand_in_view: str | None = None  # anatomical side of the hand in the last frame
        self.safe = False  # shutdown-safe idle after a long press
        self.store_notice: str | None = None  # e.g. a damaged database was moved aside
        self.started_at = time.monotonic()  # uptime is a duration: immune to clock jumps
        self._clock = clock or time.monotonic
        self._fps = FpsMeter(clock=self._clock)
        self._lock = threading.RLock()
        self._patients: dict[int, str] = {}
        self._protocols: dict[int, str] = {}  # recorder seq → item key or "all"
        self._extra: dict[int, list[tuple[str, Any]]] = {}  # seq → further items' results
        self._stored_listeners: list[Callable[[TrialStored], None]] = []
        self._status_parts: dict[str, Callable[[], Any]] = {}
        self._state_listeners: list[Callable[[StateChange], None]] = []
        self.sink = RecorderSink(
            store,
            self._outcome,
            on_error=self._on_store_error,
            on_stored=self._stored,
            item_of=lambda info: self.items_of(info.seq)[0],
        )
        self.recorder = TrialRecorder(
            self._score,
            info_score_fn=self._score_in_session,
            trial_config=config.trial,
            timing=timing or RecorderTiming.from_config(config.trial),  # live guidance from [trial]
            mirrored=config.tracker.mirrored,
            submit=submit,
            clock=clock,
        )
        self._pending_item: str | None = None  # the item of the start under way
        self.recorder.add_listener(self._note_protocol)  # first: the sink reads it
        self.recorder.add_listener(self.sink)
        self.recorder.add_listener(self._state_change)

    # ------------------------------------------------------------------ events
    def on_trial_stored(self, fn: Callable[[TrialStored], None]) -> None:
        """Call ``fn(TrialStored)`` after each outcome is written (in the thread that wrote
        it; keep it short, and never change the recorder's state from it). An exception in
        ``fn`` is logged and does not affect the trial or other listeners."""
        self._stored_listeners.append(fn)

    def add_status_part(self, key: str, fn: Callable[[], Any]) -> None:
        """Report ``fn()`` under ``key`` in :meth:`status` (e.g. ``fleet``: a part the core
        does not know about, like the network publisher)."""
        self._status_parts[key] = fn

    def on_state_change(self, fn: Callable[[StateChange], None]) -> None:
        """Call ``fn(StateChange)`` on every recorder transition (the panel's LED, the voice).
        Idle after a long press is reported as ``safe`` (see :meth:`long_press`)."""
        self._state_listeners.append(fn)

    def _stored(self, trial_id: int, change: StateChange, status: str) -> None:
        info = change.info
        assert info is not None
        items = self.items_of(info.seq)
        events = [TrialStored(trial_id, status, info.patient_id, info.role, info.origin, items[0])]
        for item, result in self._extra.pop(info.seq, []):
            event = self._store_item_row(trial_id, change, item, result)
            if event is not None:
                events.append(event)
        self._protocols.pop(info.seq, None)
        for event in events:
            for fn in list(self._stored_listeners):
                try:
                    fn(event)
                except Exception:
                    log.exception("a 'trial stored' listener failed for trial %d", event.trial_id)

    def _store_item_row(
        self, first_id: int, change: StateChange, item: str, result: Any
    ) -> TrialStored | None:
        """A further item scored from the same recording: its own row (same landmarks,
        ``recording_of`` the first row), so history, labels and exports stay per item."""
        info = change.info
        assert info is not None
        if str(change.new) not in ("result", "rejected"):
            return None
        reasons = result_reasons(result)
        new = RecorderState.REJECTED if reasons else RecorderState.RESULT
        item_info = dataclasses.replace(info, result=result, reasons=reasons or ())
        item_change = dataclasses.replace(change, new=new, info=item_info)
        outcome = stored_outcome(item_change, self.model_version, item)
        if outcome is None:
            return None
        try:
            row = begin_row(self._store, info, item, recording_of=first_id)
            write_outcome(self._store, row, outcome)
        except StoreError as exc:
            log.error("the %s result of trial %d could not be stored: %s", item, first_id, exc)
            self.sink.last_error = exc
            return None
        return TrialStored(row, outcome.status, info.patient_id, info.role, info.origin, item)

    def _state_change(self, change: StateChange) -> None:
        for fn in list(self._state_listeners):
            try:
                fn(change)
            except Exception:
                log.exception("a state listener failed on %s", change.new)

    # ------------------------------------------------------------------ frames
    def process_observation(self, rgb: Any, obs: HandObservation) -> None:
        """One camera frame's tracker result (camera thread): frame rate, the hand in view,
        the recorder, the live view."""
        self._fps.tick()
        self.hand_in_view = (
            anatomical_side(obs.handedness, self.config.tracker.mirrored) if obs.detected else None
        )
        self.recorder.on_observation(obs)
        if self.live is not None:
            self.live.put(rgb, obs, self.overlay_text())

    def overlay_text(self) -> str:
        """The state line drawn on the live view."""
        snap = self.recorder.snapshot()
        rem = snap.get("remaining_s")
        ref = " reference hand" if snap.get("reference") and self.recorder.busy else ""
        return f"{snap['state']}{ref}" + (f" {rem:.0f}s" if rem is not None else "")

    @property
    def camera_state(self) -> str:
        """The camera's state now (starting, ok, lost, restarting, stopped)."""
        return self.camera_state_fn() if self.camera_state_fn is not None else self._camera_state

    @camera_state.setter
    def camera_state(self, state: str) -> None:
        self._camera_state = state

    def camera_changed(self, state: str, lost: bool) -> None:
        """The camera's state changed; a lost camera rejects the trial being recorded."""
        self.camera_state = state
        if lost and self.recorder.busy:
            self.recorder.fail("camera_lost", "the camera stopped delivering frames")

    def current_fps(self) -> float:
        """Frames per second the tracker is processing now."""
        return self._fps.fps()

    # ------------------------------------------------------------------ items
    def items_of(self, seq: int) -> tuple[str, ...]:
        """The item keys recorder trial ``seq`` is scored for (the configured protocol when
        it was not started with one)."""
        protocol = self._protocols.get(seq, self.config.trial.item)
        return tuple(i.key for i in resolve_items(protocol))

    @staticmethod
    def check_item(item: str | None) -> str | None:
        """``item`` ("all", an item key, or None/empty for the configured protocol);
        :class:`InputError` naming the known items otherwise."""
        if not item:
            return None
        try:
            resolve_items(item)
        except FlexscoreError as exc:
            raise InputError(str(exc)) from None
        return item

    def _note_protocol(self, change: StateChange) -> None:
        """Recorder listener: a countdown's trial is scored for the item it was started
        with (the start holds the lock, so the pending item is this trial's)."""
        if change.new is RecorderState.COUNTDOWN and change.info is not None:
            item, self._pending_item = self._pending_item, None
            if item:
                self._protocols[change.info.seq] = item

    # ------------------------------------------------------------------ patients
    def bound_patient(self) -> tuple[str, str | None] | None:
        """(code, affected side) the unit records for when no code is given: the clinician's
        binding (store), else ``[unit] patient``, else None."""
        try:
            bound = self._store.get_setting(BINDING_KEY)
        except StoreError as exc:
            log.error("cannot read the unit's patient binding: %s", exc)
            bound = None
        if isinstance(bound, dict) and isinstance(bound.get("code"), str) and bound["code"]:
            side = bound.get("side")
            return bound["code"], side if side in ("left", "right") else None
        unit = self.config.unit
        return (unit.patient, unit.side) if unit.patient else None

    def bind_patient(self, code: str | None, side: str | None, actor: str = "clinician") -> Patient | None:
        """Bind the unit to the patient ``code`` (found or created; ``side`` their affected
        side), so that the button and trials without a code record for them; an empty code
        removes the binding. Kept in the store: it survives a restart."""
        side = check_side(side)
        code = (code or "").strip()
        if not code:
            if self.bound_patient() is not None:
                self._store.set_setting(BINDING_KEY, None, actor=actor)
            return None
        patient = resolve_patient(self._store, code, side)
        assert patient is not None
        current = self.bound_patient()
        wanted = (patient.code, side or patient.affected_side)
        if current != wanted:
            self._store.set_setting(BINDING_KEY, {"code": wanted[0], "side": wanted[1]}, actor=actor)
            # no patient codes in the logs
            log.info("unit bound to a patient (affected side: %s)", wanted[1] or "not set")
        return patient

    def _patient_for(self, code: str | None, side: str | None) -> tuple[Patient | None, str | None]:
        """The patient and affected side of a start (see the module doc); InputError with
        how to fix it when there is none and anonymous screening is off."""
        side = check_side(side)
        if not (code or "").strip():
            bound = self.bound_patient()
            if bound is not None:
                code, side = bound[0], side or bound[1]
            elif not self.config.unit.anonymous:
                raise NoPatientError(NO_PATIENT)
        patient = resolve_patient(self._store, code, side)
        if patient is not None:
            self._patients[patient.id] = patient.code
        return patient, side or (patient.affected_side if patient else None)

    # ------------------------------------------------------------------ commands
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

    def start_trial(
        self, patient_code: str | None, side: str | None, reference: bool = False, item: str | None = None
    ) -> bool:
        """Start a trial from the page (see :class:`device.web.services.WebServices`) for
        ``item`` (an item key, "all" for every item from one recording, or None for the
        configured ``trial.item``)."""
        with self._lock:
            side = check_side(side)
            item = self.check_item(item)
            if self.recorder.busy:
                return False  # never create a patient for a start that cannot happen
            self.safe = False
            reason = self.refusal()
            if reason is not None:
                raise InputError(reason)
            patient, side = self._patient_for(patient_code, side)
            if reference:
                side = check_reference(patient, side, self.config.trial.side)
            self._pending_item = item
            try:
                return self.recorder.start(
                    side=side,  # type: ignore[arg-type]
                    patient_id=patient.id if patient else None,
                    origin="web",
                    reference=reference,
                )
            finally:
                self._pending_item = None

    def press(self, origin: str = "button") -> str:
        """The button (or ``flexscore press``): start a trial for the bound patient, end a
        recording early, or cancel a countdown. A start that cannot happen (no patient, disk
        full) shows as a rejected start with the reason."""
        with self._lock:
            self.safe = False
            if self.recorder.busy:
                return str(self.recorder.press(origin=origin))
            reason = self.refusal()
            code = "disk_full"
            patient: Patient | None = None
            side: str | None = None
            if reason is None:
                try:
                    patient, side = self._patient_for(None, None)
                except NoPatientError as exc:
                    reason, code = str(exc), "no_patient"
                except (InputError, StoreError) as exc:  # e.g. the store is locked
                    reason, code = f"the trial cannot be saved: {exc}", "not_saved"
                    self.sink.last_error = StoreError(str(exc))
            if reason is not None:
                log.error("trial refused: %s", reason)
                if self.recorder.start(origin=origin):
                    self.recorder.fail(code, reason)
                return str(self.recorder.state)
            self.recorder.start(
                side=side,  # type: ignore[arg-type]
                patient_id=patient.id if patient else None,
                origin=origin,
            )
            return str(self.recorder.state)

    def cancel_trial(self, reason: str = "cancelled") -> bool:
        return self.recorder.cancel(reason)

    def long_press(self) -> None:
        """Shutdown-safe idle: cancel a running trial, fold the WAL into the database file.
        Power can be pulled now; the next press leaves it."""
        self.recorder.cancel("cancelled with a long press")
        try:
            self._store.checkpoint()
        except StoreError as exc:
            log.error("shutdown-safe idle: %s", exc)
            return
        self.safe = True
        log.info("shutdown-safe idle: the appliance may be switched off")

    # ------------------------------------------------------------------ scoring and storing
    def _score(self, trial: Trial) -> Any:
        return self.scorer.score(trial)

    def _score_in_session(self, trial: Trial, info: TrialInfo) -> Any:
        """Scoring thread: a reference trial is measured; an assessment is scored for each
        of its items against its session's reference trial (same patient today, the other
        hand), if any. The first item's result is the trial's; the others are stored as
        rows of their own when the trial is stored."""
        if info.is_reference:
            return measure_reference(trial, self.config.trial)
        first, *rest = self.items_of(info.seq)
        scorer, store = self.scorer, self._store

        def for_item(item: str) -> Any:
            return score_in_session(
                store, trial, info, lambda t, ref: scorer.score(t, reference=ref, item=item)
            )

        result = for_item(first)
        if rest:
            self._extra[info.seq] = [(item, for_item(item)) for item in rest]
        return result

    def _outcome(self, change: StateChange) -> Any:
        info = change.info
        item = self.items_of(info.seq)[0] if info is not None else DEFAULT_ITEM
        return stored_outcome(change, self.model_version, item)

    def _on_store_error(self, change: StateChange, exc: StoreError) -> None:
        """A trial whose row could not be written is refused with the store's message (on a
        short thread: listeners must not change the recorder's state from inside it)."""
        info = change.info
        if str(change.new) != "recording" or info is None:
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
        if self.sink.last_error is not None:
            return str(self.sink.last_error)
        return self.store_notice

    # ------------------------------------------------------------------ WebServices
    @property
    def store(self) -> Store:
        return self._store

    def status(self) -> StatusSnapshot:
        snap: Any = dict(self.recorder.snapshot())
        snap["camera"] = self.camera_state
        snap["fps"] = round(self._fps.fps(), 1)
        snap["hand_in_view"] = self.hand_in_view
        info = self.recorder.info
        snap["side"] = info.side if info else None
        snap["items"] = list(self.items_of(info.seq)) if info else [self.config.trial.item]
        snap["patient"] = self._patient_code(info.patient_id) if info and info.patient_id else None
        bound = self.bound_patient()
        snap["unit_patient"] = bound[0] if bound else None
        snap["anonymous"] = bool(info is not None and info.patient_id is None)
        snap["screening"] = self.config.unit.anonymous  # trials without a patient are allowed
        if self.safe and snap.get("state") == "idle":
            snap["safe"] = True
        if self.last_store_error:
            snap["store_error"] = self.last_store_error
        for key, part in self._status_parts.items():
            try:
                snap[key] = part()
            except Exception:
                log.exception("status of %s failed", key)
        return snap

    def _patient_code(self, patient_id: int) -> str | None:
        code = self._patients.get(patient_id)
        if code is None:
            try:
                patient = self._store.get_patient(patient_id)
            except StoreError:
                return None
            if patient is not None:
                code = self._patients[patient_id] = patient.code
        return code

    def latest_jpeg(self, newer_than: int = -1, timeout: float = 0.0) -> JpegFrame | None:
        if self.live is None or self.camera_state == "lost":
            return None
        return self.live.latest_jpeg(newer_than, timeout)

    def system_info(self) -> SystemInfo:
        total, free = disk_usage(self.state_dir)
        return SystemInfo(
            software_version=software_version(),
            uptime_s=time.monotonic() - self.started_at,
            disk_path=str(self.state_dir),
            disk_total_bytes=total,
            disk_free_bytes=free,
            models=models_from_manifest(self.config.models.resolved_dir(), self.models_in_use),
            camera=self.camera_info(),
            settings=self.settings_info(),
        )

    def close(self) -> None:
        """Stop the recorder (a trial in progress is abandoned; the store marks it)."""
        self.recorder.close()
