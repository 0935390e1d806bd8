"""A complete fake appliance for the web page: real store, real recorder, synthetic hand.

:class:`FakeServices` implements :class:`~device.web.services.WebServices` with

* a real :class:`~device.store.Store` in a temporary directory (or ``state_dir``),
* the real :class:`~device.trial.recorder.TrialRecorder` and quality gates,
* a synthetic patient (:func:`device.trial.synthetic.make_trial`) whose hand opens and
  closes during the recording with the score you ask for (``next_score``; ``None`` takes
  the hand out of view, so the trial is rejected),
* the range-of-motion rule as the scorer, with made-up probabilities labelled
  ``fake-rnn`` (this is a fake: its numbers mean nothing clinically),
* :class:`~device.web.live.LiveFrames` for the live view.

Two ways to drive it, like gpiozero's MockFactory:

* ``auto=False`` (tests): a fake clock; :meth:`step` pushes frames, :meth:`run_trial`
  runs a whole trial. Nothing sleeps, so tests never depend on timing.
* ``auto=True`` (demo, browser tests): a thread delivers frames at ``fps`` in real time.

``flask --app device.web.fake run`` serves the page over an auto fake (see :func:`create_app`).
"""

from __future__ import annotations

import collections
import itertools
import logging
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask

from device.config import ModelsConfig, TrialConfig, WebConfig
from device.errors import InputError
from device.scoring.reference import apply_reference
from device.scoring.rules import RuleScorer
from device.scoring.types import Result
from device.store import RecorderSink, Store, TrialRecord
from device.trial.quality import check_quality
from device.trial.recorder import (
    RecorderState,
    RecorderTiming,
    StateChange,
    TrialInfo,
    TrialRecorder,
)
from device.trial.synthetic import SynthOptions, make_trial
from device.trial.types import Side, Trial
from device.vision.types import HandObservation
from device.web.live import LiveFrames
from device.web.services import (
    JpegFrame,
    StatusSnapshot,
    SystemInfo,
    check_reference,
    check_side,
    disk_usage,
    measure_reference,
    models_from_manifest,
    resolve_patient,
    score_in_session,
    software_version,
    trial_outcome,
)

log = logging.getLogger(__name__)

FAKE_MODEL = "fake-rnn"
RULE_VERSION = "rom-rule"
DEMO_SCORES: tuple[int | None, ...] = (2, 1, 2, 0, None)
MOTION_TRIES = 30


class FakeClock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, dt: float) -> None:
        self.now += dt


def _background(width: int, height: int) -> np.ndarray:
    """A calm studio-like backdrop with a faint grid (RGB)."""
    y = np.linspace(0, 1, height)[:, None]
    x = np.linspace(0, 1, width)[None, :]
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[..., 0] = (40 + 25 * y + 10 * x).astype(np.uint8)
    img[..., 1] = (48 + 25 * y).astype(np.uint8)
    img[..., 2] = (60 + 30 * y - 10 * x).astype(np.uint8)
    img[::40, :, :] = (img[::40, :, :] * 0.8).astype(np.uint8)
    img[:, ::40, :] = (img[:, ::40, :] * 0.8).astype(np.uint8)
    return img


class FakeServices:
    """See the module doc."""

    def __init__(
        self,
        *,
        state_dir: str | Path | None = None,
        auto: bool = False,
        fps: float = 15.0,
        timing: RecorderTiming | None = None,
        seed: int = 0,
        width: int = 640,
        height: int = 480,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="flexscore-web-")
            state_dir = self._tmp.name
        self.state_dir = Path(state_dir)
        self.auto = auto
        self.fps = fps
        self.size = (width, height)
        self.clock: Any = time.monotonic if auto else FakeClock()
        # issue 18: watch the hand as the appliance does (an explicit timing may leave it off)
        self.timing = timing or RecorderTiming.from_config(TrialConfig())
        self.trial_config = TrialConfig(duration_s=max(1.0, self.timing.recording_s))
        self.camera_state = "ok"
        self.hand_in_view: str | None = "right"  # the fake's synthetic hand
        self.hand_visible = True  # issue 18: False takes the hand out of view in every state
        self.next_score: int | None = 2
        self.scores = itertools.cycle(DEMO_SCORES) if auto else None
        self.calls: list[str] = []  # "start", "cancel" — tests assert on history
        self._rng = np.random.default_rng(seed)
        self._rule = RuleScorer()
        self._lock = threading.RLock()
        self._started = time.monotonic()
        self._frame_index = 0
        self._frame_times: collections.deque[float] = collections.deque(maxlen=64)
        self._background = _background(width, height)
        self._rest = self._motion(2, None).landmarks[0]
        self._motion_trial: Trial | None = None
        self._rec_frames = 0
        self._patient_code: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.live = LiveFrames()
        self._store = Store(self.state_dir / "flexscore.db")
        self._sink = RecorderSink(
            self._store,
            lambda change: trial_outcome(change, model_version=FAKE_MODEL, rule_version=RULE_VERSION),
        )
        try:
            self.recorder = TrialRecorder(
                self._score,
                info_score_fn=self._score_in_session,
                trial_config=self.trial_config,
                timing=self.timing,
                submit=self._inline,
                clock=self.clock,
            )
            self.recorder.add_listener(self._on_change)
        except BaseException:
            self._store.close()
            raise
        self.step()
        if auto:
            self._thread = threading.Thread(target=self._run, name="fake-camera", daemon=True)
            self._thread.start()

    # -- WebServices -----------------------------------------------------------------------
    @property
    def store(self) -> Store:
        return self._store

    def status(self) -> StatusSnapshot:
        snap = self.recorder.snapshot()
        info = self.recorder.info
        return {
            "state": str(snap["state"]),
            "remaining_s": snap["remaining_s"],
            "camera": self.camera_state,
            "fps": self._fps(),
            "hand_in_view": self.hand_in_view,
            "patient": self._patient_code,
            "side": info.side if info is not None else None,
            "trial_seq": snap["trial_seq"],
            "reasons": list(snap["reasons"]),
            "reference": bool(snap["reference"]),
            "guidance": snap["guidance"],  # issue 18: live guidance, phase, the page's prompt
            "phase": snap["phase"],
            "prompt": snap["prompt"],
        }

    def start_trial(self, patient_code: str | None, side: str | None, reference: bool = False) -> bool:
        side = check_side(side)
        with self._lock:
            if self.recorder.busy:
                return False
            patient = resolve_patient(self._store, patient_code, side)
            if reference:
                side = check_reference(patient, side)
            elif patient is not None:
                side = side or patient.affected_side
            if self.scores is not None:
                self.next_score = next(self.scores)
            self.calls.append("start")
            started = self.recorder.start(
                side=side,  # type: ignore[arg-type]
                patient_id=patient.id if patient else None,
                origin="web",
                reference=reference,
            )
            if started:
                self._patient_code = patient.code if patient else None
            return started

    def cancel_trial(self) -> bool:
        self.calls.append("cancel")
        return self.recorder.cancel("cancelled on the web page")

    def latest_jpeg(self, newer_than: int = -1, timeout: float = 0.0) -> JpegFrame | None:
        if self.camera_state == "lost":
            return None
        return self.live.latest_jpeg(newer_than, timeout)

    def system_info(self) -> SystemInfo:
        total, free = disk_usage(self.state_dir)
        in_use = {"palm_detection_lite_fp32", "hand_landmark_lite_fp32"}
        return SystemInfo(
            software_version=software_version(),
            uptime_s=time.monotonic() - self._started,
            disk_path=str(self.state_dir),
            disk_total_bytes=total,
            disk_free_bytes=free,
            models=models_from_manifest(ModelsConfig().resolved_dir(), in_use),
            camera={
                "Backend": "synthetic (fake appliance)",
                "Resolution": f"{self.size[0]}×{self.size[1]}",
                "Nominal frame rate": f"{self.fps:g} fps",
            },
            settings={
                "Countdown": f"{self.timing.countdown_s:g} s",
                "Recording": f"{self.timing.recording_s:g} s",
                "Scorer": f"{FAKE_MODEL} + {RULE_VERSION} (fake)",
            },
        )

    # -- driving -----------------------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        """Deliver ``n`` frames (advancing the fake clock by 1/fps each in manual mode)."""
        for _ in range(n):
            if not self.auto:
                self.clock.advance(1.0 / self.fps)
            self._frame()

    def run_trial(
        self,
        patient_code: str | None = "P001",
        side: str | None = "right",
        score: int | None = 2,
        *,
        reference: bool = False,
    ) -> TrialRecord | None:
        """Start a trial and step until it has an outcome; returns the stored trial (manual mode).

        With ``reference`` the synthetic patient shows the other hand (``side`` stays the
        affected one), closing as far as ``score`` says."""
        if self.auto:
            raise InputError("run_trial drives the fake clock; use it with auto=False")
        self.next_score = score
        if not self.start_trial(patient_code, side, reference=reference):
            raise InputError("a trial is already running")
        limit = int((self.timing.countdown_s + self.timing.recording_s + 2) * self.fps) + 5
        for _ in range(limit):
            self.step()
            if self.recorder.state not in (RecorderState.COUNTDOWN, RecorderState.RECORDING):
                break
        return self._store.last_trial()

    def add_past_trial(
        self,
        patient_code: str,
        side: Side,
        score: int | None,
        started_at: datetime,
        *,
        label: int | None = None,
        comment: str | None = None,
        labelled: bool = False,
    ) -> int:
        """Store a finished trial from the past (history demos and filter tests)."""
        patient = resolve_patient(self._store, patient_code, side)
        assert patient is not None
        trial = self._motion(score if score is not None else 0, side)
        tid = self._store.begin_trial(
            side=side, patient_id=patient.id, origin="seed", started_at=started_at
        )
        end = datetime.fromtimestamp(started_at.timestamp() + trial.duration, UTC)
        if score is None:
            reasons = [
                {"code": "hand_missing", "message": "the hand was tracked in only 40% of the frames"}
            ]
            self._store.finish_trial(tid, "rejected", trial=trial, reasons=reasons, finished_at=end)
        else:
            quality = check_quality(trial, self.trial_config).to_json()
            result = self._fake_model(self._rule.score(trial))
            from device.store import NewScore

            new = NewScore(
                final_score=int(result.score if result.score is not None else score),
                model_score=result.score,
                rule_score=result.rule_score,
                probabilities=result.probabilities,
                confidence=result.confidence,
                model_version=FAKE_MODEL,
                rule_version=RULE_VERSION,
                review=result.review,
                detail={"reasons": list(result.reasons), "details": result.details},
            )
            self._store.finish_trial(
                tid, "scored", trial=trial, quality=quality, score=new, finished_at=end
            )
        if labelled or label is not None:
            self._store.add_label(tid, "clinician", label, comment)
        return tid

    def seed_history(self, patient_code: str = "P001", n: int = 8) -> None:
        """A few weeks of plausible past trials for one patient."""
        now = datetime.now(UTC).timestamp()
        plan: list[int | None] = [0, 0, 1, None, 1, 1, 2, 2, 1, 2]
        for i in range(n):
            at = datetime.fromtimestamp(now - (n - i) * 3 * 86400 - 3600, UTC)
            score = plan[i % len(plan)]
            label = score if i % 3 == 0 and score is not None else None
            self.add_past_trial(patient_code, "right", score, at, label=label)

    # -- internals -----------------------------------------------------------------------------
    @staticmethod
    def _inline(fn: Any) -> None:
        fn()

    def _fps(self) -> float:
        if not self.auto:
            return float(self.fps)
        times = list(self._frame_times)
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return round((len(times) - 1) / (times[-1] - times[0]), 1)

    def _motion(self, score: int, side: Side | None) -> Trial:
        w, h = self.size
        opts = SynthOptions(
            duration_s=(self.timing.recording_s, self.timing.recording_s),
            fps=(self.fps,),
            image_sizes=((w, h),),
            hand_frac=(0.5, 0.55),
            max_tilt_deg=10.0,
            any_roll=False,
            noise_frac=(0.001, 0.002),
            dropout=(0.0, 0.0),
            outlier_rate=0.0,
        )
        trial: Trial | None = None
        for _ in range(MOTION_TRIES):  # the synthetic patient does what it was asked to
            trial, _ = make_trial(
                score, self._rng, options=opts, side=side or "right", mirrored=False, noise=False
            )
            first = trial.landmarks[0, :, :2]  # issue 18: the countdown shows frame 0, whole
            m = self.trial_config.edge_margin_px
            inside = (m <= first).all() and (first <= (w - 1 - m, h - 1 - m)).all()
            in_view = bool(np.isfinite(first).all() and inside)
            if self._rule.score(trial).score == score and in_view:
                break
        assert trial is not None
        return trial

    def _observation(self) -> HandObservation:
        w, h = self.size
        state = self.recorder.state
        lm: np.ndarray | None = self._rest
        label = "Left"  # an unmirrored right hand: MediaPipe says "Left"
        if self._motion_trial is not None and state in (
            RecorderState.COUNTDOWN,
            RecorderState.RECORDING,
        ):
            mt = self._motion_trial
            k = min(self._rec_frames, mt.num_frames - 1) if state is RecorderState.RECORDING else 0
            lm = (
                None if self.next_score is None and state is RecorderState.RECORDING else mt.landmarks[k]
            )
            seen = [h for h in mt.handedness if h]  # issue 18: a still countdown shows the usual label
            label = (mt.handedness[k] if state is RecorderState.RECORDING else None) or (
                max(set(seen), key=seen.count) if seen else label
            )
        if state is RecorderState.RECORDING:
            self._rec_frames += 1
        if lm is None or np.isnan(lm).any() or not self.hand_visible:
            return HandObservation(self._frame_index, float(self.clock()), (w, h), False)
        return HandObservation(
            frame_index=self._frame_index,
            t=float(self.clock()),
            image_size=(w, h),
            detected=True,
            presence=0.97,
            handedness=label,
            handedness_score=0.95,
            landmarks=lm.astype(np.float32),
        )

    def _frame(self) -> None:
        with self._lock:
            obs = self._observation()
            self._frame_index += 1
            self._frame_times.append(time.monotonic())
            self.recorder.on_observation(obs)
            snap = self.recorder.snapshot()
            text = str(snap["state"]).upper()
            if snap["remaining_s"] is not None:
                text += f"  {float(snap['remaining_s']):.0f} s"
            self.live.put(self._background, obs, text)

    def _run(self) -> None:
        period = 1.0 / self.fps
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self._frame()
            except Exception:
                log.exception("fake camera frame failed")
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _fake_model(self, rule: Result) -> Result:
        if rule.score is None:
            return rule
        probs = [0.05, 0.05, 0.05]
        probs[rule.score] = 0.90
        return replace(
            rule,
            probabilities=(probs[0], probs[1], probs[2]),
            confidence=0.90,
            reasons=(f"{FAKE_MODEL} (demo stand-in for the RNN): {rule.score}", *rule.reasons),
        )

    def _score(self, trial: Trial) -> Result:
        quality = check_quality(trial, self.trial_config)
        if not quality.ok:
            return Result(
                status="not_scorable",
                score=None,
                reasons=tuple(r.message for r in quality.reasons),
                quality=quality.to_json(),
            )
        return replace(self._fake_model(self._rule.score(trial)), quality=quality.to_json())

    def _score_in_session(self, trial: Trial, info: TrialInfo) -> Any:
        """As the appliance: a reference is measured, an assessment scored against its
        session's reference (the fake scorer, then :func:`apply_reference`, the step
        ``Decider.score(trial, reference=...)`` takes after its absolute score)."""
        if info.is_reference:
            return measure_reference(trial, self.trial_config)

        def score(t: Trial, reference: Trial | None) -> Result:
            result = self._score(t)
            return result if reference is None else apply_reference(result, t, reference, self.trial_config)

        return score_in_session(self._store, trial, info, score)

    def _on_change(self, change: StateChange) -> None:
        """Recorder listener: plan the synthetic hand's motion; the sink keeps the store in step."""
        info = change.info
        if change.new is RecorderState.COUNTDOWN and info is not None:
            score = self.next_score if self.next_score is not None else 0
            self._motion_trial = self._motion(score, info.side)
            self._rec_frames = 0
        self._sink(change)

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the frame thread, the recorder and the store; remove the temp dir. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self.recorder.close()
        self._store.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> FakeServices:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FakeServices {self.recorder.state.value} {'closed' if self._closed else 'open'}>"


def create_app() -> Flask:
    """Dev server: ``flask --app device.web.fake run`` (a fake appliance with some history).

    The clinician password comes from ``FLEXSCORE_PASSWORD``, else one is generated and
    printed here (on the console, not in the log)."""
    import atexit

    from device.web import create_app as make_app
    from device.web import ensure_password

    fake = FakeServices(auto=True)
    atexit.register(fake.close)
    fake.seed_history()
    cfg, generated = ensure_password(WebConfig())
    if generated:
        print(f"flexscore demo: clinician password for this run: {generated}", file=sys.stderr)
    return make_app(fake, cfg, state_dir=fake.state_dir)
