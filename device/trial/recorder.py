"""The trial state machine: one trial at a time, driven by the button and the web page alike.

States (:class:`RecorderState`) and what moves between them::

    idle ──start/press──▶ countdown ──3 s──▶ recording ──6 s or press──▶ scoring ──▶ result
      ▲                      │ press/cancel      │ cancel / camera lost       │ not scorable
      │                      │ no usable hand    │ / hand lost / gates fail   │ / fault
      │                      ▼                   ▼                            ▼
      └──── hold elapsed ── cancelled        rejected (reasons)           rejected / error

* ``press()`` is the button: in idle (or while a previous outcome is shown) it starts a
  trial; in countdown it cancels; in recording it stops early and scores what was
  recorded (the quality gates reject a too-short recording); in scoring it cancels (the
  result is discarded when it arrives). A long press is ``cancel()``.
* ``start()`` / ``cancel()`` are the web page's buttons; ``start()`` refuses (returns False)
  while a trial is running — one trial at a time.
* ``on_observation(obs)`` is fed by the tracker thread for every frame; observations are
  buffered only while recording. ``tick(now)`` advances the timers; ``on_observation``
  ticks too, and :meth:`start_ticker` runs a ticker thread for when frames stop.
* When recording ends the observations become a :class:`~device.trial.types.Trial`; the
  quality gates (``quality_fn``) run, and a trial that passes is handed to
  ``score_fn(trial)`` **off the tracker thread** (on ``submit``, by default a one-worker
  thread pool). A result whose ``scorable`` attribute is False, or whose ``score`` is None,
  is a rejection carrying its ``reasons``; an exception from ``score_fn`` is ``error``.
* Every change is one call of :meth:`_transition`, which checks the transition table and
  tells the listeners (``add_listener``) a :class:`StateChange`. Listeners run in the thread
  that caused the change, under the recorder's lock: keep them short and do not block
  (the panel sets an LED pattern, the root writes the store, the web page copies a snapshot).

* A **reference trial** (``start(reference=True)``, issue 10) records the patient's
  *unaffected* hand so the session's next trials are scored against it. It runs through the
  same states; its ``TrialInfo.role`` is "reference" and its ``side`` the unaffected side
  (the other one than the affected side given to ``start``), so the quality gates check that
  hand. ``info_score_fn(trial, info)``, when given, scores every trial knowing its role and
  patient (the root measures a reference there instead of scoring it); otherwise
  ``score_fn(trial)`` is used for both roles.

* **Live guidance** (issue 18), when the timing says how long to wait for a hand
  (``RecorderTiming.hand_wait_s`` / ``hand_lost_s``, set from ``[trial]`` by
  :meth:`RecorderTiming.from_config`; the appliance and the web fake do; a bare
  ``RecorderTiming()`` does not watch the hand). Every observation goes to a
  :class:`~device.trial.guidance.GuidanceWindow`, in every state:

  - ``snapshot()["guidance"]`` says what to fix ({code, message}: ``no_hand``,
    ``wrong_side``, ``hand_cut_by_edge``, ``hand_too_small``, ``fingers_hidden`` or
    ``ready``), already in idle, so the patient can be placed before Start;
  - the **countdown counts only while the hand is ready** (``phase`` "counting"); while it
    is not (``phase`` "waiting") it holds at its full length and starts again from there.
    ``hand_wait_s`` after the countdown would have ended, a countdown still waiting ends as
    **rejected, not started**: no recording, no stored row (like a cancel in the
    countdown), the reason is the guidance's code with a sentence ("no hand in view: …");
  - while **recording**, ``phase`` is "close" ("close your hand now") and, from
    ``OPEN_CUE_FRACTION`` of the recording on, "open" ("now open it again");
  - when frames keep arriving without a hand for ``hand_lost_s`` during the recording, it
    **stops early**: rejected with ``hand_lost`` (or ``no_hand`` if no hand was seen since it
    began), the frames so far kept with the trial. (No frames at all is still ``camera_lost``.)

  ``snapshot()["prompt"]`` is the one sentence to show for all this (the guidance, the
  phase's instruction, or an outcome's first reason). Cue listeners (``add_cue_listener``)
  get a :class:`Cue` when the guidance changes during the countdown and when the phase
  changes during the recording — the voice (device/panel/voice.py) speaks them.

A rejection is data (reasons), not an exception. All times are on the injectable ``clock``
(monotonic seconds); ``wall`` stamps trials with UTC datetimes for the store.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from device.config import TrialConfig
from device.trial.guidance import Guidance, GuidanceWindow
from device.trial.quality import QualityReason, QualityReport, check_quality
from device.trial.types import Side, Trial
from device.vision.types import HandObservation

log = logging.getLogger(__name__)

COUNTDOWN_S = 3.0
RESULT_HOLD_S = 10.0  # how long a result (or error) is shown before idle
REJECTED_HOLD_S = 6.0
CANCELLED_HOLD_S = 2.0
MAX_GAP_S = 2.0  # no observation for this long while recording: rejected ("camera_lost")
OPEN_CUE_FRACTION = 0.55  # the "open it again" cue, as a share of the recording's length
# phase → the instruction the page shows (the spoken words are in device/panel/voice.py)
PHASE_TEXT: dict[str, str] = {
    "waiting": "",  # the guidance says what to fix
    "counting": "Get ready: keep the hand open and still.",
    "close": "Close your hand now, as far as you can.",
    "open": "Now open it again.",
}


class RecorderState(StrEnum):
    IDLE = "idle"
    COUNTDOWN = "countdown"
    RECORDING = "recording"
    SCORING = "scoring"
    RESULT = "result"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    ERROR = "error"


S = RecorderState
# A trial is "running" in these states; outcomes are shown in the others until the hold ends.
RUNNING = frozenset({S.COUNTDOWN, S.RECORDING, S.SCORING})
OUTCOMES = frozenset({S.RESULT, S.REJECTED, S.CANCELLED, S.ERROR})
TRANSITIONS: dict[RecorderState, frozenset[RecorderState]] = {
    S.IDLE: frozenset({S.COUNTDOWN}),
    S.COUNTDOWN: frozenset({S.RECORDING, S.CANCELLED, S.REJECTED}),
    S.RECORDING: frozenset({S.SCORING, S.REJECTED, S.CANCELLED}),
    S.SCORING: frozenset({S.RESULT, S.REJECTED, S.ERROR, S.CANCELLED}),
    **{o: frozenset({S.IDLE, S.COUNTDOWN}) for o in OUTCOMES},
}


@dataclass(frozen=True)
class RecorderTiming:
    """Durations in seconds (recording length comes from ``TrialConfig.duration_s``)."""

    countdown_s: float = COUNTDOWN_S
    recording_s: float = 6.0
    result_hold_s: float = RESULT_HOLD_S
    rejected_hold_s: float = REJECTED_HOLD_S
    cancelled_hold_s: float = CANCELLED_HOLD_S
    max_gap_s: float = MAX_GAP_S
    # Live guidance (module doc): None = the recorder does not watch the hand (the countdown
    # just runs, a recording without a hand is judged by the gates at its end).
    hand_wait_s: float | None = None
    hand_lost_s: float | None = None
    open_cue_fraction: float = OPEN_CUE_FRACTION

    @classmethod
    def from_config(cls, cfg: TrialConfig, **changes: Any) -> RecorderTiming:
        """The appliance's timing: recording length and hand watching from ``[trial]``."""
        values: dict[str, Any] = {
            "recording_s": cfg.duration_s,
            "hand_wait_s": cfg.hand_wait_s,
            "hand_lost_s": cfg.hand_lost_s,
        }
        values.update(changes)
        return cls(**values)

    @property
    def watches_hand(self) -> bool:
        return self.hand_wait_s is not None


@dataclass(frozen=True)
class TrialInfo:
    """What is known about the current (or last) trial; a new copy on every change.

    Attributes:
        seq: the recorder's trial counter (1, 2, …); the store assigns its own ids.
        side: the affected side being assessed, or None.
        patient_id: the store's patient id, or None.
        origin: who started it ("button", "web", …).
        started_at: UTC time of ``start``.
        recording_started_at / finished_at: UTC times, or None.
        frames: observations buffered so far.
        trial: the buffered trial (from ``scoring``/``rejected`` on), or None.
        quality: the quality report, or None before the gates ran.
        result: what ``score_fn`` returned (``result`` state), else None.
        reasons: why it was rejected, cancelled or failed.
        role: "assessment" (the affected hand) or "reference" (the unaffected hand; ``side``
            is then that hand's side).
    """

    seq: int
    side: Side | None
    patient_id: int | None
    origin: str
    started_at: datetime
    recording_started_at: datetime | None = None
    finished_at: datetime | None = None
    frames: int = 0
    trial: Trial | None = field(default=None, repr=False)
    quality: QualityReport | None = field(default=None, repr=False)
    result: Any = field(default=None, repr=False)
    reasons: tuple[QualityReason, ...] = ()
    role: str = "assessment"

    @property
    def is_reference(self) -> bool:
        return self.role == "reference"


def other_side(side: Side | None) -> Side | None:
    """The other hand ("left" ↔ "right"); None stays None."""
    return None if side is None else ("left" if side == "right" else "right")


@dataclass(frozen=True)
class StateChange:
    """One transition, as listeners see it."""

    old: RecorderState
    new: RecorderState
    at: float  # recorder clock
    info: TrialInfo | None


Listener = Callable[[StateChange], None]


@dataclass(frozen=True)
class Cue:
    """A prompt within a state, as cue listeners see it: the guidance changed during the
    countdown (``kind`` "guidance", ``code`` a guidance code) or the recording's phase
    changed (``kind`` "phase", ``code`` "close" / "open")."""

    kind: Literal["guidance", "phase"]
    code: str
    message: str
    at: float  # recorder clock
    info: TrialInfo | None
    guidance: Guidance | None = None


CueListener = Callable[[Cue], None]


def result_reasons(result: Any) -> tuple[QualityReason, ...] | None:
    """Reasons when ``result`` says "not scorable", else None (duck-typed on purpose)."""
    scorable = getattr(result, "scorable", None)
    if scorable is False or (scorable is None and getattr(result, "score", 0) is None):
        raw: Sequence[Any] = getattr(result, "reasons", ()) or ()
        out = []
        for r in raw:
            if isinstance(r, QualityReason):
                out.append(r)
            else:
                code = getattr(r, "code", None) or str(r)
                out.append(QualityReason(str(code), str(getattr(r, "message", r))))
        return tuple(out) or (QualityReason("not_scorable", "the trial could not be scored"),)
    return None


class TrialRecorder:
    """The state machine (see the module doc)."""

    def __init__(
        self,
        score_fn: Callable[[Trial], Any],
        *,
        info_score_fn: Callable[[Trial, TrialInfo], Any] | None = None,
        trial_config: TrialConfig | None = None,
        timing: RecorderTiming | None = None,
        mirrored: bool = False,
        quality_fn: Callable[[Trial], QualityReport] | None = None,
        submit: Callable[[Callable[[], None]], object] | None = None,
        clock: Callable[[], float] | None = None,
        wall: Callable[[], datetime] | None = None,
    ) -> None:
        self._cfg = trial_config or TrialConfig()
        self.timing = timing or RecorderTiming(recording_s=self._cfg.duration_s)
        self._score_fn = score_fn
        self._info_score_fn = info_score_fn
        self._quality_fn = quality_fn or (lambda t: check_quality(t, self._cfg))
        self._mirrored = mirrored
        self._clock = clock or time.monotonic
        self._wall = wall or (lambda: datetime.now(UTC))
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        if submit is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="scoring")
            submit = self._pool.submit
        self._submit = submit
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._cue_listeners: list[CueListener] = []
        self._guide = GuidanceWindow(self._cfg, mirrored=mirrored)
        self._guidance: Guidance | None = None  # the latest judgement (None before any frame)
        self._count_from: float | None = None  # countdown: when the count (re)started
        self._phase: str | None = None
        self._last_hand_at = 0.0  # recording: the last frame with a hand (or its start)
        self._hand_seen = False
        self._state = S.IDLE
        self._entered = self._clock()
        self._info: TrialInfo | None = None
        self._obs: list[HandObservation] = []
        self._last_obs_at = 0.0
        self._seq = 0
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False

    # -- observation ---------------------------------------------------------------------
    @property
    def state(self) -> RecorderState:
        return self._state

    @property
    def info(self) -> TrialInfo | None:
        """The current or last trial."""
        return self._info

    @property
    def busy(self) -> bool:
        """True while a trial runs (countdown, recording, scoring)."""
        return self._state in RUNNING

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds left in the countdown or recording, else None."""
        now = self._clock() if now is None else now
        if self._state is S.COUNTDOWN:
            if self._count_from is None:  # waiting for the hand: the count has not begun
                return self.timing.countdown_s
            return max(0.0, self.timing.countdown_s - (now - self._count_from))
        if self._state is S.RECORDING:
            return max(0.0, self.timing.recording_s - (now - self._entered))
        return None

    def guidance(self, now: float | None = None) -> Guidance | None:
        """What the hand in view needs now, for the running trial's side (in idle, the
        configured side); None before the first observation."""
        with self._lock:
            if len(self._guide) == 0 and self._guidance is None:
                return None
            now = self._clock() if now is None else now
            return self._guide.judge(self._expected_side(), now)

    def _expected_side(self) -> Side | None:
        if self._state in RUNNING and self._info is not None:
            return self._info.side
        return self._cfg.side

    def _prompt(self, guidance: Guidance | None) -> str | None:
        """The one sentence for the page (module doc)."""
        st = self._state
        if st is S.COUNTDOWN and self._phase == "counting":
            return PHASE_TEXT["counting"]
        if st is S.RECORDING and self._phase is not None:
            return PHASE_TEXT[self._phase]
        if st in (S.REJECTED, S.ERROR, S.CANCELLED) and self._info is not None and self._info.reasons:
            text = self._info.reasons[0].message
            return text[:1].upper() + text[1:]
        if st in (S.IDLE, S.COUNTDOWN) and guidance is not None:
            return guidance.message
        return None

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state for /api/status (no patient data)."""
        with self._lock:
            info = self._info
            rem = self.remaining()
            guidance = self.guidance()
            return {
                "state": self._state.value,
                "remaining_s": None if rem is None else round(rem, 2),
                "trial_seq": info.seq if info else None,
                "reasons": [r.code for r in info.reasons] if info else [],
                "reference": bool(info and info.is_reference),
                "guidance": guidance.to_json() if guidance is not None else None,
                "phase": self._phase,
                "prompt": self._prompt(guidance),
            }

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        self._listeners.remove(fn)

    def add_cue_listener(self, fn: CueListener) -> None:
        """``fn(cue)`` for every :class:`Cue`; called like state listeners (under the lock,
        in the thread that caused it: keep it short)."""
        self._cue_listeners.append(fn)

    def remove_cue_listener(self, fn: CueListener) -> None:
        self._cue_listeners.remove(fn)

    # -- commands ------------------------------------------------------------------------
    def start(
        self,
        *,
        side: Side | None = None,
        patient_id: int | None = None,
        origin: str = "web",
        reference: bool = False,
    ) -> bool:
        """Begin a trial with the countdown; False (nothing changes) while one is running.

        ``side`` is the affected side (default: the configured one). With ``reference`` the
        trial records the other, unaffected hand; that needs a side (ValueError without)."""
        with self._lock:
            if self._closed or self._state in RUNNING:
                return False
            affected = side if side is not None else self._cfg.side
            if reference and affected is None:
                raise ValueError("a reference trial needs the affected side (the other hand is recorded)")
            self._seq += 1
            self._obs = []
            info = TrialInfo(
                seq=self._seq,
                side=other_side(affected) if reference else affected,
                patient_id=patient_id,
                origin=origin,
                started_at=self._wall(),
                role="reference" if reference else "assessment",
            )
            self._transition(S.COUNTDOWN, info)
            return True

    def cancel(self, reason: str = "cancelled") -> bool:
        """Abandon the running trial (countdown, recording or scoring); False when idle."""
        with self._lock:
            if self._state not in RUNNING:
                return False
            self._finish(S.CANCELLED, (QualityReason("cancelled", reason),))
            return True

    def press(self, origin: str = "button") -> RecorderState:
        """The button: start, stop recording early, or cancel (see the module doc)."""
        with self._lock:
            if self._state is S.RECORDING:
                self._end_recording(self._clock())
            elif self._state in RUNNING:
                self.cancel("cancelled with the button")
            else:
                self.start(origin=origin)
            return self._state

    def fail(self, code: str, message: str, *, seq: int | None = None) -> bool:
        """Reject the running trial for an outside reason (e.g. ``camera_lost``); with
        ``seq``, only if that trial is still the one running."""
        with self._lock:
            if self._state not in RUNNING:
                return False
            if seq is not None and (self._info is None or self._info.seq != seq):
                return False
            self._finish(S.REJECTED, (QualityReason(code, message),))
            return True

    def on_observation(self, obs: HandObservation) -> None:
        """Feed one tracker observation (every frame, hand or not)."""
        with self._lock:
            now = self._clock()
            self._guide.add(obs, now)
            if self._state is S.RECORDING:
                self._obs.append(obs)
                self._last_obs_at = now
                if obs.detected:
                    self._last_hand_at = now
                    self._hand_seen = True
            self.tick(now)

    def tick(self, now: float | None = None) -> None:
        """Advance the timers: countdown → recording → scoring, outcomes → idle."""
        with self._lock:
            now = self._clock() if now is None else now
            elapsed = now - self._entered
            st, tm = self._state, self.timing
            if st is S.COUNTDOWN:
                self._tick_countdown(now, elapsed)
            elif st is S.RECORDING:
                if elapsed >= tm.recording_s:
                    self._end_recording(now)
                elif tm.hand_lost_s is not None and self._last_obs_at - self._last_hand_at >= tm.hand_lost_s:
                    self._hand_lost(now)
                elif now - self._last_obs_at >= tm.max_gap_s:
                    self._finish(
                        S.REJECTED,
                        (
                            QualityReason(
                                "camera_lost",
                                f"the camera delivered no frames for {now - self._last_obs_at:.1f} s",
                            ),
                        ),
                        now,
                    )
            elif st in OUTCOMES:
                hold = {
                    S.RESULT: tm.result_hold_s,
                    S.ERROR: tm.result_hold_s,
                    S.REJECTED: tm.rejected_hold_s,
                    S.CANCELLED: tm.cancelled_hold_s,
                }[st]
                if elapsed >= hold:
                    self._transition(S.IDLE, self._info, now)
            if self._state is S.RECORDING:
                at_open = now - self._entered >= tm.open_cue_fraction * tm.recording_s
                self._set_phase("open" if at_open else "close", now)

    def _tick_countdown(self, now: float, elapsed: float) -> None:
        """Count down; with hand watching, only while the hand is ready (module doc)."""
        tm = self.timing
        if tm.hand_wait_s is not None:
            guidance = self._guide.judge(self._expected_side(), now)
            self._set_guidance(guidance, now)
            if not guidance.ready:
                self._count_from = None
                self._set_phase("waiting", now)
                if elapsed >= tm.countdown_s + tm.hand_wait_s:
                    reason = QualityReason(guidance.code, guidance.not_started(elapsed))
                    self._finish(S.REJECTED, (reason,), now)
                return
            if self._count_from is None:
                self._count_from = now
            self._set_phase("counting", now)
        if self._count_from is not None and now - self._count_from >= tm.countdown_s:
            self._obs = []
            self._last_obs_at = now
            self._last_hand_at = now
            self._hand_seen = False
            assert self._info is not None
            self._transition(S.RECORDING, replace(self._info, recording_started_at=self._wall()), now)

    def _set_guidance(self, guidance: Guidance, now: float) -> None:
        """Keep the latest judgement; tell cue listeners when its code changes."""
        old, self._guidance = self._guidance, guidance
        if old is None or old.code != guidance.code:
            self._cue(Cue("guidance", guidance.code, guidance.message, now, self._info, guidance))

    def _set_phase(self, phase: str | None, now: float) -> None:
        if phase == self._phase:
            return
        self._phase = phase
        if phase in ("close", "open"):
            self._cue(Cue("phase", phase, PHASE_TEXT[phase], now, self._info))

    def _cue(self, cue: Cue) -> None:
        for fn in list(self._cue_listeners):
            try:
                fn(cue)
            except Exception:
                log.exception("recorder cue listener %r failed", fn)

    def _hand_lost(self, now: float) -> None:
        """Frames arrive but show no hand for ``hand_lost_s``: stop early, keep the frames."""
        assert self._info is not None
        gone = self._last_obs_at - self._last_hand_at
        since = self._last_hand_at - self._entered
        if self._hand_seen:
            reason = QualityReason(
                "hand_lost",
                f"the hand left the picture {since:.1f} s into the recording and stayed away for "
                f"{gone:.1f} s, so the recording was stopped: keep the whole hand in view until the "
                "end and start again",
            )
        else:
            reason = QualityReason(
                "no_hand",
                f"no hand was seen in the first {gone:.1f} s of the recording, so it was stopped: "
                "hold the open hand in front of the camera and start again",
            )
        obs, self._obs = self._obs, []
        changes: dict[str, Any] = {"frames": len(obs)}
        if obs:
            changes["trial"] = Trial.from_observations(obs, side=self._info.side, mirrored=self._mirrored)
        self._finish(S.REJECTED, (reason,), now, **changes)

    # -- internals -----------------------------------------------------------------------
    def _transition(self, new: RecorderState, info: TrialInfo | None, now: float | None = None) -> None:
        """The one place the state changes: check the table, record, notify."""
        old = self._state
        if new not in TRANSITIONS[old]:
            raise RuntimeError(f"recorder: no transition {old.value} → {new.value}")
        self._state = new
        self._entered = self._clock() if now is None else now
        self._info = info
        self._phase = None
        if new is S.COUNTDOWN:
            self._guidance = None
            self._count_from = None if self.timing.watches_hand else self._entered
        log.info("trial %s: %s → %s", info.seq if info else "-", old.value, new.value)
        change = StateChange(old, new, self._entered, info)
        for fn in list(self._listeners):
            try:
                fn(change)
            except Exception:
                log.exception("recorder listener %r failed", fn)

    def _finish(
        self,
        state: RecorderState,
        reasons: tuple[QualityReason, ...],
        now: float | None = None,
        **changes: Any,
    ) -> None:
        assert self._info is not None
        info = replace(self._info, finished_at=self._wall(), reasons=reasons, **changes)
        self._transition(state, info, now)

    def _end_recording(self, now: float) -> None:
        assert self._info is not None
        obs, self._obs = self._obs, []
        if not obs:
            reason = QualityReason("too_short", "no frames were recorded")
            self._finish(S.REJECTED, (reason,), now, frames=0)
            return
        trial = Trial.from_observations(obs, side=self._info.side, mirrored=self._mirrored)
        report = self._quality_fn(trial)
        info = replace(self._info, frames=len(obs), trial=trial, quality=report)
        self._info = info
        if not report.ok:
            self._finish(S.REJECTED, report.reasons, now)
            return
        self._transition(S.SCORING, info, now)
        try:
            self._submit(lambda: self._run_scoring(info, trial))
        except RuntimeError as exc:  # executor shut down
            self._finish(S.ERROR, (QualityReason("scoring_failed", str(exc)),), now)

    def _run_scoring(self, info: TrialInfo, trial: Trial) -> None:
        """Runs on the scoring thread: score, then come back under the lock."""
        seq = info.seq
        try:
            if self._info_score_fn is not None:
                result = self._info_score_fn(trial, info)
            else:
                result = self._score_fn(trial)
        except Exception as exc:
            log.exception("scoring trial %d failed", seq)
            self._scored(seq, None, QualityReason("scoring_failed", f"scoring failed: {exc}"))
            return
        self._scored(seq, result, None)

    def _scored(self, seq: int, result: Any, fault: QualityReason | None) -> None:
        with self._lock:
            if self._state is not S.SCORING or self._info is None or self._info.seq != seq:
                log.info("result of trial %d discarded (state %s)", seq, self._state.value)
                return
            if fault is not None:
                self._finish(S.ERROR, (fault,))
                return
            reasons = result_reasons(result)
            if reasons is not None:
                self._finish(S.REJECTED, reasons, result=result)
            else:
                self._finish(S.RESULT, (), result=result)

    # -- lifecycle -----------------------------------------------------------------------
    def start_ticker(self, interval_s: float = 0.1) -> None:
        """Tick from a daemon thread (so timers run while no frames arrive)."""
        if self._ticker is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.tick()

        self._ticker = threading.Thread(target=loop, name="recorder-tick", daemon=True)
        self._ticker.start()

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the ticker and the scoring worker; a running trial is left as it is (the
        root marks it interrupted in the store). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> TrialRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        seq = self._info.seq if self._info else None
        return f"<TrialRecorder {self._state.value} trial={seq}>"
