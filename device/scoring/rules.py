"""Range-of-motion rule: an interpretable score from how far each finger closes.

Per finger (index, middle, ring, pinky) and per resampled step, a *closure* in [0, 1]:

* with z (3D): the sum of the MCP, PIP and DIP bend angles, 0 at ``OPEN_BEND`` and 1 at
  ``FIST_BEND`` (a fist bends the three joints by ≈ 85° + 100° + 70°);
* without z (2D): the larger of two measures, so a fist seen from the palm or from the
  side both count — how far the fingertip has travelled down the palm axis, from its most
  extended position in the trial (at least ``MIN_OPEN_2D`` palm sizes above its MCP) to
  ``FIST_2D`` (a fist's fingertip lies ≈ 0.2–0.3 palm sizes below its MCP in a palm view);
  and how far it has come towards the palm centre, from its farthest (at least
  ``MIN_OPEN_DIST_2D``) to ``FIST_DIST_2D`` (real fists: index ≈ 0.45, others 0.1–0.3).

The curves are smoothed over ``SMOOTH_STEPS`` steps. A finger's *peak* is the maximum of
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
0          no finger moves more than ``trace_3d`` (3D) or ``trace_2d`` (2D)
1          otherwise (some, but clearly incomplete, range; or only some fingers)
=========  ==========================================================================

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
        return {
            "method": method,
            "peak": closure.max(axis=0),  # the curve is already smoothed over SMOOTH_STEPS
            "excursion": _excursion(closure),
            "moved": _excursion(cautious),
            "cautious_peak": cautious.max(axis=0),
            "start": closure[:10].mean(axis=0),
        }

    def score(self, trial: Trial) -> Result:
        th = self.thresholds
        m = self.measure(trial)
        peak, exc = m["peak"], m["excursion"]
        fingers = ", ".join(f"{n} {p:.0%}" for n, p in zip(FINGERS, peak, strict=True))
        if peak.min() >= th.full and exc.mean() >= th.full_excursion:
            score = 2
            why = f"all four fingers closed fully (peak closure {fingers})"
        elif m["moved"].max() < (trace := th.trace_3d if m["method"] == "3d" else th.trace_2d):
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
        details = {
            "method": m["method"],
            "peak_closure": [round(float(v), 3) for v in peak],
            "excursion": [round(float(v), 3) for v in exc],
            "start_closure": [round(float(v), 3) for v in m["start"]],
        }
        return Result(
            status="scored",
            score=score,
            confidence=1.0,
            reasons=(f"range-of-motion rule: {score} — {why}",),
            details=details,
            rule_score=score,
        )
