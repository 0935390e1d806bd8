"""Range-of-motion rule: an interpretable score from how far each finger closes.

Per finger (index, middle, ring, pinky) and per resampled step, a *closure* in [0, 1]:

* with world landmarks (the hand's own frame, the appliance's default): the finger's summed
  MCP + PIP + DIP flexion in degrees (:mod:`device.trial.kinematics`), 0 at what a real open
  hand reads and 1 at what a real fist reads (:mod:`device.trial.calibration`). It does not
  change when the hand or the camera turns; the reasons give the degrees;
* with z (3D, image landmarks only): the sum of the MCP, PIP and DIP bend angles, 0 at ``OPEN_BEND`` and 1 at
  ``FIST_BEND`` (a fist bends the three joints by ≈ 85° + 100° + 70°);
* without z (2D): the larger of two measures, so a fist seen from the palm or from the
  side both count — how far the fingertip has travelled down the palm axis, from its most
  extended position in the trial (at least ``MIN_OPEN_2D`` palm sizes above its MCP) to
  ``FIST_2D`` (a fist's fingertip lies ≈ 0.2–0.3 palm sizes below its MCP in a palm view);
  and how far it has come towards the palm centre, from its farthest (at least
  ``MIN_OPEN_DIST_2D``) to ``FIST_DIST_2D`` (real fists: index ≈ 0.45, others 0.1–0.3).

In the hand frame the curve is smoothed over ``HAND_SMOOTH_S`` seconds, a finger's *peak* is
its maximum and its *excursion* the most its closure rises above its lowest value before
that moment (the closing movement; holding a posture or opening counts nothing). On image
landmarks the curves are smoothed over ``SMOOTH_STEPS`` steps. A finger's *peak* is the maximum of
its smoothed closure (a short hold of the fist counts); its *excursion* is its closing
movement: the larger of (a) the robust peak (90th percentile, so a few noisy steps do not
count as movement) minus the lowest closure before the first maximum and (b) the most
that the closure, smoothed further over ``CLOSING_SMOOTH_STEPS`` (so jitter does not
count), rises above its lowest value before that moment. (b) credits a trial that starts
in a fist, opens and closes again with its second closing; opening alone counts nothing.

=========  ==========================================================================
score      when
=========  ==========================================================================
2          every finger peaks at ≥ ``FULL`` and the mean excursion is ≥ ``FULL_EXCURSION``
0          no finger moves more than ``trace_hand`` (world), ``trace_3d`` (3D) or ``trace_2d`` (2D)
1          otherwise (some, but clearly incomplete, range; or only some fingers)
=========  ==========================================================================

The item scores *active movement, not posture*: a hand that rests half-closed, or in a fist,
and does not move has no excursion and scores 0. A result within ``margin`` of a threshold
is marked ``borderline`` in its details (the decision then asks for review) — in the hand
frame and on 2D keypoints (where a hand turning away shortens the fingers as flexion does).

The rule has no probabilities; its result feeds :mod:`device.scoring.decide` as a
cross-check of the RNN and as the explanation given to the clinician.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from device.errors import InputError
from device.scoring.types import Result
from device.trial.calibration import degrees_from_closure, world_closure
from device.trial.features import (
    N_STEPS,
    bend_angles,
    normalize_landmarks,
    resample_landmarks,
    trial_is_left,
)
from device.trial.types import Trial

log = logging.getLogger(__name__)

FINGERS = ("index", "middle", "ring", "pinky")
MCPS = (5, 9, 13, 17)
TIPS = (8, 12, 16, 20)

# Bend sums in units of π (see device.trial.features.bend_angles).
OPEN_BEND = 0.15
FIST_BEND = 1.30
MIN_OPEN_2D = 0.8
FIST_2D = -0.25
# 2D, second measure: fingertip to palm centre (mean of wrist and MCPs), palm sizes.
MIN_OPEN_DIST_2D = 1.2
FIST_DIST_2D = 0.45
PALM_POINTS = (0, 5, 9, 13, 17)
SMOOTH_STEPS = 15
# Hand frame: the world closure jitters by ≈ 0.01–0.05 per frame (still real hands); a 0.1 s
# moving average keeps the height of a quick fist (held 0.2 s, or less played fast).
HAND_SMOOTH_S = 0.1
HAND_MOVED_S = 0.5  # … and over 0.5 s to tell a movement from none
CLOSING_SMOOTH_STEPS = 31


@dataclass(frozen=True)
class RuleThresholds:
    full: float = 0.80  # peak closure of every finger for a score of 2
    full_excursion: float = 0.50  # mean excursion for a score of 2
    # Largest finger excursion still counted as "no movement". Above the clinical "trace"
    # (< 10 % of the range) because tracker jitter alone reads as 5–25 % on bend angles
    # (measured on synthetic score-0 trials with tracker-like noise, 95th percentile).
    trace_3d: float = 0.25
    trace_2d: float = 0.20
    # World landmarks: a still open hand's fingers wander by ≈ 0.1 of the open→fist range
    # (real clips, p5–p95 of the open frames, scripts/calibrate_world.py), an open hand
    # turning edge-on by ≈ 0.15; a clear partial movement is ≥ 0.3.
    trace_hand: float = 0.25
    # Within this distance of a threshold the result is "borderline" (review).
    margin: float = 0.07


def _smooth(x: np.ndarray, k: int) -> np.ndarray:
    if k <= 1:
        return x
    pad = k // 2
    xp = np.pad(x, ((pad, pad), (0, 0)), mode="edge")
    kernel = np.ones(k) / k
    return np.stack([np.convolve(xp[:, j], kernel, mode="valid") for j in range(x.shape[1])], 1)


def finger_closure_bounds(trial: Trial, steps: int = N_STEPS) -> tuple[np.ndarray, np.ndarray, str]:
    """(closure [steps, 4], cautious closure [steps, 4], method) of index…pinky.

    In 2D the closure is the larger of the two measures (a fist seen from the palm or the
    side counts as closed) and the cautious closure the smaller one (a finger counts as
    *moving* only when both its height and its distance to the palm change — a hand turning
    towards the camera changes one of them). In 3D both are the bend-angle closure.
    """
    if trial.num_frames < 2 or trial.duration <= 0:
        raise InputError(
            f"a trial needs at least 2 frames over a positive time span (got {trial.num_frames} frame(s))"
        )
    if trial.has_world:
        closure_t, _deg, _observed = world_closure(trial)
        grid = np.linspace(trial.t[0], trial.t[-1], steps)
        resampled = np.stack([np.interp(grid, trial.t, closure_t[:, f]) for f in range(4)], axis=1)
        # Smoothed over a fixed time (not a share of the trial): a quick fist held 0.3 s
        # keeps its height in a 6 s recording.
        k = max(1, round(HAND_SMOOTH_S / max((grid[-1] - grid[0]) / (steps - 1), 1e-9)))
        closure = np.clip(_smooth(resampled, k | 1), 0.0, 1.0)
        return closure, closure, "hand"
    lm, _observed = resample_landmarks(trial.landmarks, trial.t, steps)
    if trial.has_z:
        bend = bend_angles(lm)  # [steps, 15]; fingers start at column 3
        sums = bend[:, 3:].reshape(steps, 4, 3).sum(axis=2)
        closure = np.clip(_smooth((sums - OPEN_BEND) / (FIST_BEND - OPEN_BEND), SMOOTH_STEPS), 0.0, 1.0)
        return closure, closure, "3d"
    lm[..., 2] = 0.0
    canon = normalize_landmarks(lm, trial_is_left(trial))[..., :2]
    rel = canon[:, list(TIPS), 1] - canon[:, list(MCPS), 1]  # tip above its MCP
    top = np.maximum(rel.max(axis=0), MIN_OPEN_2D)
    by_height = (top - rel) / (top - FIST_2D)
    centre = canon[:, list(PALM_POINTS)].mean(axis=1, keepdims=True)
    dist = np.linalg.norm(canon[:, list(TIPS)] - centre, axis=-1)  # tip to palm centre
    far = np.maximum(dist.max(axis=0), MIN_OPEN_DIST_2D)
    by_distance = (far - dist) / (far - FIST_DIST_2D)
    upper = np.clip(_smooth(np.maximum(by_height, by_distance), SMOOTH_STEPS), 0.0, 1.0)
    lower = np.clip(_smooth(np.minimum(by_height, by_distance), SMOOTH_STEPS), 0.0, 1.0)
    return upper, lower, "2d"


def finger_closure(trial: Trial, steps: int = N_STEPS) -> tuple[np.ndarray, str]:
    """Closure [steps, 4] of index…pinky and the method used ("3d" or "2d")."""
    closure, _cautious, method = finger_closure_bounds(trial, steps)
    return closure, method


def _rise(closure: np.ndarray) -> np.ndarray:
    """Per finger: the most the closure rises above its lowest value before that moment."""
    return np.asarray(np.clip((closure - np.minimum.accumulate(closure, axis=0)).max(axis=0), 0.0, 1.0))


def _excursion(closure: np.ndarray) -> np.ndarray:
    """Per finger: the larger of the robust peak (90th percentile, so a few noisy steps do
    not count as movement) minus the lowest closure before the maximum, and the most the
    (further smoothed) closure rises above its running minimum."""
    peak = np.percentile(closure, 90, axis=0)
    peak_idx = np.argmax(closure, axis=0)
    base = np.array([closure[: i + 1, f].min() for f, i in enumerate(peak_idx)])
    slow = _smooth(closure, CLOSING_SMOOTH_STEPS)
    closing = (slow - np.minimum.accumulate(slow, axis=0)).max(axis=0)
    return np.asarray(np.clip(np.maximum(peak - base, np.minimum(closing, peak)), 0.0, 1.0))


class RuleScorer:
    """Scores a trial from finger range of motion (see the module docstring)."""

    name = "rule"

    def __init__(self, thresholds: RuleThresholds | None = None) -> None:
        self.thresholds = thresholds or RuleThresholds()

    def measure(self, trial: Trial) -> dict[str, Any]:
        closure, cautious, method = finger_closure_bounds(trial)
        if method == "hand":
            # the closing movement: the most the (smoothed) closure rises above its lowest
            # value before that moment — a held posture, or opening, counts nothing
            exc = _rise(closure)
            # "moved at all" (0 or not) on a curve smoothed further, so jitter is no movement
            k = max(1, round(closure.shape[0] * HAND_MOVED_S / max(trial.duration, 1e-9)))
            slow = _smooth(closure, k | 1)
            moved = _rise(slow)
        else:
            exc, moved = _excursion(closure), _excursion(cautious)
        return {
            "method": method,
            "peak": closure.max(axis=0),  # the curve is already smoothed
            "excursion": exc,
            "moved": moved,
            "cautious_peak": cautious.max(axis=0),
            "start": closure[:10].mean(axis=0),
            # how much the mean closure still rose over the last 5 % of the trial
            "end_rise": float(max(0.0, closure[-1].mean() - closure[-1 - len(closure) // 20].mean())),
        }

    def _trace(self, method: str) -> float:
        th = self.thresholds
        return {"hand": th.trace_hand, "3d": th.trace_3d}.get(method, th.trace_2d)

    def score(self, trial: Trial) -> Result:
        m = self.measure(trial)
        if m["method"] == "hand":
            return self._score_hand(m)
        th = self.thresholds
        peak, exc = m["peak"], m["excursion"]
        fingers = ", ".join(f"{n} {p:.0%}" for n, p in zip(FINGERS, peak, strict=True))
        if peak.min() >= th.full and exc.mean() >= th.full_excursion:
            score = 2
            why = f"all four fingers closed fully (peak closure {fingers})"
        elif m["moved"].max() < (trace := self._trace(m["method"])):
            score = 0
            why = (
                f"no finger moved more than {trace:.0%} of its range "
                f"(largest {m['moved'].max():.0%}): no active flexion or only a trace"
            )
        else:
            score = 1
            short = [n for n, p in zip(FINGERS, peak, strict=True) if p < th.full]
            if short:
                why = (
                    f"the fingers moved but did not all close fully: {', '.join(short)} "
                    f"stayed below {th.full:.0%} (peak closure {fingers})"
                )
            else:
                why = (
                    f"the fingers reached a closed position but closed by only {exc.mean():.0%} "
                    f"of their range on average (below {th.full_excursion:.0%}): the hand did "
                    f"not start from open (peak closure {fingers})"
                )
        details: dict[str, Any] = {
            "method": m["method"],
            "peak_closure": [round(float(v), 3) for v in peak],
            "excursion": [round(float(v), 3) for v in exc],
            "start_closure": [round(float(v), 3) for v in m["start"]],
        }
        if m["method"] == "2d":
            # 2D keypoints: a hand turning away shortens the fingers in the image as flexion
            # does, so a measurement within ``margin`` of a threshold is borderline (review).
            to_full = min(float(peak.min()) - th.full, float(exc.mean()) - th.full_excursion)
            to_trace = float(m["moved"].max()) - th.trace_2d
            details["borderline"] = bool(abs(to_full) < th.margin or abs(to_trace) < th.margin)
        return _rule_result(score, f"range-of-motion rule: {score} — {why}", details)

    def _score_hand(self, m: dict[str, Any]) -> Result:
        """The rule on hand-frame closure, with reasons in degrees."""
        th = self.thresholds
        peak, exc, start, moved = m["peak"], m["excursion"], m["start"], m["moved"]
        peak_deg = degrees_from_closure(peak)
        start_deg = degrees_from_closure(start)
        full_deg = degrees_from_closure(th.full)
        fingers = ", ".join(
            f"{n} {s:.0f}° → {p:.0f}°" for n, s, p in zip(FINGERS, start_deg, peak_deg, strict=True)
        )
        moved_most = int(np.argmax(moved))
        span_deg = degrees_from_closure(1.0) - degrees_from_closure(0.0)
        moved_deg = float(moved[moved_most] * span_deg[moved_most])
        if peak.min() >= th.full and exc.mean() >= th.full_excursion:
            score = 2
            why = f"every finger closed into a full fist (flexion start → peak: {fingers})"
        elif moved.max() < th.trace_hand:
            score = 0
            why = (
                f"no finger flexed actively: the largest closing movement was {moved_deg:.0f}° "
                f"({FINGERS[moved_most]}, {moved[moved_most]:.0%} of the way to a fist; a movement "
                f"counts from {th.trace_hand:.0%}) — flexion start → peak: {fingers}"
            )
        else:
            score = 1
            short = [
                f"{n} {p:.0f}°"
                for n, p, c in zip(FINGERS, peak_deg, peak, strict=True)
                if c < th.full
            ]
            if short:
                why = (
                    f"the fingers flexed but not all fully: {', '.join(short)} stayed below a fist "
                    f"(≈ {', '.join(f'{d:.0f}°' for d in full_deg)} for index…pinky); "
                    f"flexion start → peak: {fingers}"
                )
            else:
                why = (
                    f"the hand was already flexed and closed by only {exc.mean():.0%} of the way "
                    f"to a fist on average (needs {th.full_excursion:.0%} from open): {fingers}"
                )
        # The decisive quantities: 2 needs both the peak and the excursion over their
        # thresholds; 0 needs every excursion under the trace.
        to_full = min(float(peak.min()) - th.full, float(exc.mean()) - th.full_excursion)
        to_trace = float(moved.max()) - th.trace_hand
        borderline = bool(abs(to_full) < th.margin or abs(to_trace) < th.margin)
        details = {
            "method": "hand",
            "peak_closure": [round(float(v), 3) for v in peak],
            "excursion": [round(float(v), 3) for v in exc],
            "start_closure": [round(float(v), 3) for v in start],
            "peak_deg": [round(float(v), 1) for v in peak_deg],
            "start_deg": [round(float(v), 1) for v in start_deg],
            "borderline": borderline,
            "end_rise": round(m["end_rise"], 3),
        }
        return _rule_result(score, f"range-of-motion rule (hand frame): {score} — {why}", details)


def _rule_result(score: int, reason: str, details: dict[str, Any]) -> Result:
    """The rule's answer: a score without probabilities, its reason and its measurements."""
    return Result(
        status="scored", score=score, confidence=1.0, reasons=(reason,), details=details, rule_score=score
    )
