"""A complete fake appliance for the web page: the real core with fake parts.

:class:`FakeServices` **is** the appliance core (:class:`device.appliance.Appliance`: the
real recorder, quality gates, patient handling, reference trials, store writes and
"trial stored" event) built with fake parts instead of hardware:

* a real :class:`~device.store.Store` in a temporary directory (or ``state_dir``),
* a synthetic camera: a patient (:func:`device.trial.synthetic.make_trial`) whose hand opens
  and closes during the recording with the score you ask for (``next_score``; ``None`` takes
  the hand out of view, so the trial is rejected),
* the real decision (:class:`device.scoring.decide.Decider`: gates, rule, agreement policy)
  with a stand-in for the RNN, labelled ``fake-rnn``, that says what the range-of-motion rule
  says with probability 0.9 (this is a fake: its numbers mean nothing clinically),
* :class:`~device.web.live.LiveFrames` for the live view.

Two ways to drive it, like gpiozero's MockFactory:

* ``auto=False`` (tests): a fake clock; :meth:`step` pushes frames, :meth:`run_trial`
  runs a whole trial. Nothing sleeps, so tests never depend on timing.
* ``auto=True`` (demo, browser tests): a thread delivers frames at ``fps`` in real time.

``flask --app device.web.fake run`` serves the page over an auto fake (see :func:`create_app`).
"""

from __future__ import annotations

import itertools
import logging
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from flask import Flask

from device.appliance import RULE_VERSION, Appliance
from device.appliance.session import resolve_patient
from device.config import Config, TrialConfig, UnitConfig, WebConfig
from device.errors import InputError
from device.items import DEFAULT_ITEM, AssessmentItem, get_item
from device.scoring.decide import Decider
from device.scoring.types import Result
from device.store import NewScore, Store, TrialRecord
from device.trial.recorder import RecorderState, RecorderTiming, StateChange
from device.trial.synthetic import SynthOptions
from device.trial.types import Side, Trial
from device.vision.types import HandObservation
from device.web.live import LiveFrames

log = logging.getLogger(__name__)

FAKE_MODEL = "fake-rnn"
DEMO_SCORES: tuple[int | None, ...] = (2, 1, 2, 0, None)
MOTION_TRIES = 60


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


class StandInRNN:
    """Stands in for an item's RNN: that item's rule score with probability 0.9 (a fake part)."""

    name = version = FAKE_MODEL

    def __init__(self, rule: Any) -> None:
        self._rule = rule

    def score(self, trial: Trial) -> Result:
        rule = self._rule.score(trial)
        score = rule.score if rule.score is not None else 0
        probs = [0.05, 0.05, 0.05]
        probs[score] = 0.90
        return Result(
            status="scored",
            score=score,
            probabilities=(probs[0], probs[1], probs[2]),
            confidence=0.90,
            reasons=(f"{FAKE_MODEL} (demo stand-in for the RNN): {score}",),
            details={"name": FAKE_MODEL, "version": FAKE_MODEL},
        )

    def close(self) -> None:
        pass


class StandInDecider(Decider):
    """The real decision (gates, the item's rule, agreement policy, reference mode) with a
    :class:`StandInRNN` for every item and landmark kind."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg, models_dir=cfg.models.resolved_dir())
        self._stand_ins: dict[str, StandInRNN] = {}

    def _rnn_or_none(self, has_z: bool, has_world: bool, item: AssessmentItem) -> Any:
        if item.key not in self._stand_ins:
            self._stand_ins[item.key] = StandInRNN(item.rule)
        return self._stand_ins[item.key]


def fake_config(timing: RecorderTiming, unit: UnitConfig | None = None) -> Config:
    """The fake's config: the recording as long as ``timing`` says; by default trials
    without a patient are allowed (anonymous screening), as most page tests need."""
    trial = TrialConfig(duration_s=max(1.0, timing.recording_s))
    return Config(trial=trial, unit=unit or UnitConfig(anonymous=True))


class FakeServices(Appliance):
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
        unit: UnitConfig | None = None,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="flexscore-web-")
            state_dir = self._tmp.name
        self.auto = auto
        self.fps = fps
        self.size = (width, height)
        # issue 18: watch the hand as the appliance does (an explicit timing may leave it off)
        self.timing = timing or RecorderTiming.from_config(TrialConfig())
        config = fake_config(self.timing, unit)
        self.trial_config = config.trial
        self.hand_visible = True  # issue 18: False takes the hand out of view in every state
        self.next_score: int | None = 2
        self.scores = itertools.cycle(DEMO_SCORES) if auto else None
        self.calls: list[str] = []  # "start", "cancel" — tests assert on history
        self._rng = np.random.default_rng(seed)
        self._frame_index = 0
        self._background = _background(width, height)
        self._motion_trial: Trial | None = None
        self._rec_frames = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.decider = StandInDecider(config)
        clock: Any = time.monotonic if auto else FakeClock()
        self.clock = clock
        store = Store(Path(state_dir) / "flexscore.db")
        try:
            super().__init__(
                config,
                state_dir=Path(state_dir),
                store=store,
                scorer=self.decider,
                model_version=lambda: FAKE_MODEL,
                live=LiveFrames(),
                timing=self.timing,
                submit=self._inline,
                clock=clock,
                camera_info=self._camera_info,
                settings_info=self._settings_info,
                models_in_use=("palm_detection_lite_fp32", "hand_landmark_lite_fp32"),
            )
        except BaseException:
            store.close()
            raise
        self.camera_state = "ok"
        self._rest = self._motion(2, None).landmarks[0]
        self.on_state_change(self._plan_motion)
        self.step()
        if auto:
            self._thread = threading.Thread(target=self._run, name="fake-camera", daemon=True)
            self._thread.start()

    # -- the core, with the fake's bookkeeping ---------------------------------------------
    def start_trial(
        self, patient_code: str | None, side: str | None, reference: bool = False, item: str | None = None
    ) -> bool:
        if self.recorder.busy:
            return False
        if self.scores is not None:
            self.next_score = next(self.scores)
        self.calls.append("start")
        return super().start_trial(patient_code, side, reference, item)

    def cancel_trial(self, reason: str = "cancelled on the web page") -> bool:
        self.calls.append("cancel")
        return super().cancel_trial(reason)

    def _camera_info(self) -> dict[str, str]:
        return {
            "Backend": "synthetic (fake appliance)",
            "Resolution": f"{self.size[0]}×{self.size[1]}",
            "Nominal frame rate": f"{self.fps:g} fps",
        }

    def _settings_info(self) -> dict[str, str]:
        return {
            "Countdown": f"{self.timing.countdown_s:g} s",
            "Recording": f"{self.timing.recording_s:g} s",
            "Scorer": f"{FAKE_MODEL} + {RULE_VERSION} (fake)",
        }

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
        return self.store.last_trial()

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
        """Store a finished trial from the past (history demos and filter tests), scored by
        the same decision as a live one."""
        patient = resolve_patient(self.store, patient_code, side)
        assert patient is not None
        trial = self._motion(score if score is not None else 0, side)
        tid = self.store.begin_trial(side=side, patient_id=patient.id, origin="seed", started_at=started_at)
        end = datetime.fromtimestamp(started_at.timestamp() + trial.duration, UTC)
        if score is None:
            reasons = [{"code": "hand_missing", "message": "the hand was tracked in only 40% of the frames"}]
            self.store.finish_trial(tid, "rejected", trial=trial, reasons=reasons, finished_at=end)
        else:
            result = self._score(trial)
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
            self.store.finish_trial(
                tid, "scored", trial=trial, quality=result.quality, score=new, finished_at=end
            )
        if labelled or label is not None:
            self.store.add_label(tid, "clinician", label, comment)
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

    # -- the synthetic camera --------------------------------------------------------------------
    @staticmethod
    def _inline(fn: Any) -> None:
        fn()

    def _motion(self, score: int, side: Side | None, items: tuple[str, ...] = (DEFAULT_ITEM,)) -> Trial:
        """The synthetic patient's movement for ``items``: open → fist for mass flexion; for
        mass extension (alone or with flexion) open → fist → open, opening as far as
        ``score`` says (the last item's generator, closing fully first when combined)."""
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
        spec = get_item(items[-1])
        extra: dict[str, Any] = {"combined": True} if spec.key == "mass_extension" else {}
        trial: Trial | None = None
        for _ in range(MOTION_TRIES):  # the synthetic patient does what it was asked to, clearly
            trial, _ = spec.generate(
                score,
                self._rng,
                options=opts,
                side=side or "right",
                mirrored=False,
                noise=False,
                with_world=False,
                **extra,
            )
            if tuple(trial.image_size) != (w, h):  # the generator also makes portrait frames
                continue
            first = trial.landmarks[0, :, :2]  # issue 18: the countdown shows frame 0, whole
            m = self.trial_config.edge_margin_px
            inside = (m <= first).all() and (first <= (w - 1 - m, h - 1 - m)).all()
            if not (np.isfinite(first).all() and inside):
                continue
            rule = spec.rule.score(self.decider.prepared(trial))
            if rule.score == score and not rule.details.get("borderline"):
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
            lm = None if self.next_score is None and state is RecorderState.RECORDING else mt.landmarks[k]
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
            self.process_observation(self._background, obs)

    def overlay_text(self) -> str:
        snap = self.recorder.snapshot()
        text = str(snap["state"]).upper()
        if snap["remaining_s"] is not None:
            text += f"  {float(snap['remaining_s']):.0f} s"
        return text

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

    def _plan_motion(self, change: StateChange) -> None:
        """Plan the synthetic hand's motion when a countdown starts."""
        info = change.info
        if change.new is RecorderState.COUNTDOWN and info is not None:
            score = self.next_score if self.next_score is not None else 0
            self._motion_trial = self._motion(score, info.side, self.items_of(info.seq))
            self._rec_frames = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the frame thread, the recorder and the store; remove the temp dir. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        super().close()
        self.decider.close()
        self.store.close()
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
