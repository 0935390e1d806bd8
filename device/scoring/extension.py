"""Mass extension (FMA-UE hand): the range-of-motion rule, the trial segment and the
reference mode.

The item: from a full active fist, open the hand. 0 = no extension; 1 = partial extension,
or can release an active mass-flexion grasp; 2 = full active extension (compared with the
unaffected hand in the reference mode).

**Measure.** The same per-finger closure as mass flexion (:func:`device.scoring.rules.
finger_closure_bounds`: in the hand frame the summed MCP + PIP + DIP flexion in degrees,
calibrated 0 = a real open hand … 1 = a real fist; on image landmarks the 3D bend / 2D
fingertip measures). Per finger:

* *closed*: the most closed point reached (the fist the opening starts from);
* *opening*: the most the closure falls below its highest value before that moment (the
  opening movement from the most closed point; closing or holding counts nothing);
* *open end*: the closure at the end of that opening (the most open posture after the fist).

=========  ==========================================================================
score      when
=========  ==========================================================================
—          the hand never closed (mean *closed* < ``min_closed``): not scorable — the item
           starts from a fist
2          every finger's *open end* ≤ ``open_full`` and the mean *opening* ≥
           ``full_excursion``
0          no finger opens more than ``trace_*`` (on a curve smoothed further, so jitter
           is no movement)
1          otherwise (partial opening, or only some fingers: e.g. a released grasp)
=========  ==========================================================================

A result within ``margin`` of a threshold is ``borderline`` (review). A recording that ends
while the fingers are still opening, short of an open hand, is not scorable ("stopped too
early", :func:`still_opening`).

**Segment** (:func:`from_most_closed`): in a combined recording ("make a fist, then open
your hand fully") extension is judged from the most closed frame on (the end of the fist
hold, minus ``LEAD_S``); a trial of the item alone that starts from a fist is cut the same
way (at or near its start).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from device.config import TrialConfig
from device.scoring.reference import (
    REFERENCE_MIN_PEAK,
    ReferenceWords,
    as_2d,
    compare_with_reference,
    without_world,
)
from device.scoring.rules import CLOSING_SMOOTH_STEPS, FINGERS, HAND_MOVED_S, _smooth, finger_closure_bounds
from device.scoring.types import Result
from device.trial.calibration import degrees_from_closure
from device.trial.quality import check_quality
from device.trial.types import Side, Trial

RULE_VERSION = "ext-rule-1"
END_FALL = 0.10  # mean closure still falling this much over the last ``END_S`` of the trial
END_S = 0.3
LEAD_S = 0.3  # the segment starts this long before the end of the fist hold
HOLD_TOL = 0.08  # "still the fist": within this much of the most closed mean closure
MIN_SEGMENT_S = 0.5


EXTENSION_WORDS = ReferenceWords(
    full="opens fully",
    full_target="a fully open hand",
    verb="open",
    limited="cannot open fully",
    share="opening",
    range="opening",
)


@dataclass(frozen=True)
class ExtensionThresholds:
    # every finger's open end at most this for a score of 2: a real open hand reads ≈ 0 ± 0.1
    # in the hand frame (device.trial.calibration), as a real fist reads ≈ 1 against
    # flexion's 0.8
    open_full: float = 0.28
    full_excursion: float = 0.50  # mean opening for a score of 2
    trace_hand: float = 0.25  # largest opening still "no movement" (as flexion's trace)
    trace_3d: float = 0.25
    trace_2d: float = 0.20
    min_closed: float = 0.50  # mean most-closed point: the hand must have closed this far
    margin: float = 0.07


def _fall(closure: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per finger: (opening, closed, open end) — the most the closure falls below its running
    maximum, that maximum, and the closure where the fall is largest."""
    runmax = np.maximum.accumulate(closure, axis=0)
    drop = runmax - closure
    idx = np.argmax(drop, axis=0)
    cols = np.arange(closure.shape[1])
    return drop.max(axis=0), runmax[idx, cols], closure[idx, cols]


def _other(side: Side | None) -> Side | None:
    return None if side is None else ("left" if side == "right" else "right")


class ExtensionRule:
    """Scores a mass-extension trial from finger range of motion (module docstring)."""

    name = "ext-rule"

    def __init__(self, thresholds: ExtensionThresholds | None = None) -> None:
        self.thresholds = thresholds or ExtensionThresholds()

    def measure(self, trial: Trial) -> dict[str, Any]:
        closure, cautious, method = finger_closure_bounds(trial)
        opening, closed, low = _fall(closure)
        if method != "hand":
            # image landmarks: the open end on the cautious measure (in 2D the smaller of the
            # fingertip height and distance measures; a pinky's distance to the palm centre
            # never reads fully open)
            low = np.minimum(low, _fall(cautious)[2])
        if method == "hand":
            k = max(1, round(closure.shape[0] * HAND_MOVED_S / max(trial.duration, 1e-9)))
            moved = _fall(_smooth(closure, k | 1))[0]
        else:
            moved = _fall(_smooth(cautious, CLOSING_SMOOTH_STEPS))[0]
        n = len(closure)
        k = min(n - 1, max(1, round(n * END_S / max(trial.duration, 1e-9))))
        return {
            "method": method,
            "opening": opening,
            "closed": closed,
            "open_end": low,
            "moved": moved,
            "peak": closure.max(axis=0),
            "end_fall": float(max(0.0, closure[-1 - k].mean() - closure[-1].mean())),
        }

    def _trace(self, method: str) -> float:
        th = self.thresholds
        return {"hand": th.trace_hand, "3d": th.trace_3d}.get(method, th.trace_2d)

    def score(self, trial: Trial) -> Result:
        th = self.thresholds
        m = self.measure(trial)
        method = m["method"]
        opening, closed, low, moved, peak = m["opening"], m["closed"], m["open_end"], m["moved"], m["peak"]
        hand = method == "hand"
        details: dict[str, Any] = {
            "method": method,
            "closed": [round(float(v), 3) for v in closed],
            "open_end": [round(float(v), 3) for v in low],
            "opening": [round(float(v), 3) for v in opening],
            "end_fall": round(m["end_fall"], 3),
        }
        if hand:
            details["closed_deg"] = [round(float(v), 1) for v in degrees_from_closure(closed)]
            details["open_end_deg"] = [round(float(v), 1) for v in degrees_from_closure(low)]

        def fmt(c: np.ndarray) -> list[str]:
            if hand:
                return [f"{d:.0f}°" for d in degrees_from_closure(c)]
            return [f"{v:.0%}" for v in c]

        if float(peak.mean()) < th.min_closed:
            details["reason_codes"] = ["not_closed"]
            return Result(
                status="not_scorable",
                score=None,
                reasons=(
                    f"the hand was never closed into a fist (most closed: {float(peak.mean()):.0%} "
                    f"of a fist on average, needs {th.min_closed:.0%}), so no opening from a fist "
                    "could be judged: make a fist first, then open the hand fully",
                ),
                details=details,
            )
        c_txt, l_txt = fmt(closed), fmt(low)
        fingers = ", ".join(f"{n} {c} → {lo}" for n, c, lo in zip(FINGERS, c_txt, l_txt, strict=True))
        unit = "flexion, closed → open" if hand else "closure, closed → open"
        trace = self._trace(method)
        if float(low.max()) <= th.open_full and float(opening.mean()) >= th.full_excursion:
            score = 2
            why = f"every finger opened fully from the fist ({unit}: {fingers})"
        elif float(moved.max()) < trace:
            score = 0
            most = int(np.argmax(moved))
            span = degrees_from_closure(1.0) - degrees_from_closure(0.0)  # per finger, degrees
            how = f"{moved[most] * span[most]:.0f}°, " if hand else ""
            why = (
                f"no finger opened actively: the largest opening was {FINGERS[most]}'s ({how}"
                f"{moved[most]:.0%} of the way from a fist to an open hand; an opening counts from "
                f"{trace:.0%}) — {unit}: {fingers}"
            )
        else:
            score = 1
            short = [f"{n} {lo}" for n, lo, v in zip(FINGERS, l_txt, low, strict=True) if v > th.open_full]
            open_full = fmt(np.full(4, th.open_full))
            if short:
                why = (
                    f"the fingers opened but not all fully: {', '.join(short)} stayed flexed "
                    f"(open means ≤ {', '.join(open_full)} for index…pinky); {unit}: {fingers}"
                )
            else:
                why = (
                    f"the fingers ended open but opened by only {opening.mean():.0%} of the way "
                    f"from a fist on average (needs {th.full_excursion:.0%}): {unit}: {fingers}"
                )
        to_full = min(th.open_full - float(low.max()), float(opening.mean()) - th.full_excursion)
        to_trace = float(moved.max()) - trace
        details["borderline"] = bool(abs(to_full) < th.margin or abs(to_trace) < th.margin)
        frame = " (hand frame)" if hand else ""
        return Result(
            status="scored",
            score=score,
            confidence=1.0,
            reasons=(f"extension rule{frame}: {score} — {why}",),
            details=details,
            rule_score=score,
        )


def still_opening(rule: Result) -> str | None:
    """Still opening at the end (short of an open hand): the score could only have been
    higher had the recording gone on."""
    if rule.details.get("end_fall", 0.0) > END_FALL and rule.score != 2:
        return (
            "the recording ended while the fingers were still opening, so the movement could "
            "not be seen to its end: record again and let the recording run to its end"
        )
    return None


def from_most_closed(trial: Trial) -> Trial:
    """The part of a recording from its most closed moment on (the end of the fist hold,
    ``LEAD_S`` earlier), at least ``MIN_SEGMENT_S`` long; the whole trial when it cannot be
    measured (too few frames: the quality gates say why)."""
    n = trial.num_frames
    if n < 4 or trial.duration <= 0 or not trial.detected.any():
        return trial
    try:
        closure = finger_closure_bounds(trial, steps=n)[0].mean(axis=1)
    except ValueError:
        return trial
    grid = np.linspace(trial.t[0], trial.t[-1], n)
    top = int(np.argmax(closure))
    end = top
    while end + 1 < n and closure[end + 1] >= closure[top] - HOLD_TOL:
        end += 1
    t_cut = min(grid[end] - LEAD_S, trial.t[-1] - MIN_SEGMENT_S)
    i = int(np.searchsorted(trial.t, t_cut, side="right")) - 1
    i = max(0, min(i, n - 2))
    return trial if i == 0 else trial.frames(i)


def apply_extension_reference(
    absolute: Result, trial: Trial, reference: Trial, cfg: TrialConfig | None = None
) -> Result:
    """The reference mode for mass extension: the affected hand's per-finger opening divided
    by the unaffected hand's (same thresholds and table as mass flexion,
    :mod:`device.scoring.reference`, with *opening* for *closing movement*). Both are whole
    recordings: the reference's quality gates judge all of it, the openings are measured on
    the item's segments (:func:`from_most_closed`)."""
    cfg = cfg or TrialConfig()
    if not (trial.has_world and reference.has_world):
        trial, reference = without_world(trial), without_world(reference)
    use_2d = not (trial.has_z and reference.has_z)
    details = dict(absolute.details)
    quality = check_quality(reference, dataclasses.replace(cfg, side=_other(cfg.side)))
    ref: dict[str, Any] = {"usable": False, "quality": quality.to_json()}
    details["reference"] = ref
    unusable: str | None = None
    m_ref: dict[str, Any] = {}
    if not quality.ok:
        unusable = "; ".join(r.message for r in quality.reasons)
        unusable = f"the reference trial of the unaffected hand is not scorable ({unusable})"
    else:
        ref_trial = as_2d(reference) if use_2d else reference
        m_ref = ExtensionRule().measure(from_most_closed(ref_trial))
        ref["opening"] = [round(float(v), 3) for v in m_ref["opening"]]
        ref["method"] = m_ref["method"]
        if float(np.mean(m_ref["opening"])) < REFERENCE_MIN_PEAK:
            unusable = (
                f"the reference hand hardly opened (mean opening {np.mean(m_ref['opening']):.0%}, "
                f"needs {REFERENCE_MIN_PEAK:.0%}): it cannot stand for the unaffected hand"
            )
    if unusable is not None:
        details["mode"] = "absolute"
        ref["reasons"] = [unusable]
        return dataclasses.replace(
            absolute, reasons=(*absolute.reasons, f"{unusable}; scored in the absolute mode"), details=details
        )
    ref["usable"] = True
    details["mode"] = "reference"
    if absolute.status != "scored" or absolute.score is None:
        return dataclasses.replace(absolute, details=details)
    m = ExtensionRule().measure(from_most_closed(as_2d(trial) if use_2d else trial))
    ratio = np.asarray(m["opening"]) / np.maximum(np.asarray(m_ref["opening"]), 1e-3)
    ref["affected_opening"] = [round(float(v), 3) for v in m["opening"]]
    ref_full = float(np.max(m_ref["open_end"])) <= ExtensionThresholds().open_full
    ref["full_open"] = ref_full
    return compare_with_reference(absolute, ratio, ref_full, details, EXTENSION_WORDS)
