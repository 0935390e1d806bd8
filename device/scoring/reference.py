"""Scoring against the unaffected hand, as the Fugl-Meyer item defines it.

The manual scores mass flexion *compared with the unaffected hand*: a patient whose healthy
hand cannot make a tight fist is not "partial" on the affected side when both hands close
equally. A session may therefore record a **reference trial** of the unaffected hand first.

1. :func:`reference_profile` measures the reference's range of motion per finger with the
   range-of-motion rule (:mod:`device.scoring.rules`; the *cautious* peak closure — in 2D
   the smaller of the fingertip-height and fingertip-distance measures, so a hand closed
   half-way seen palm-on does not pass for a fist — and the closing excursion of
   index…pinky); the affected hand is measured the same way. The reference is *unusable*
   — and the affected hand is scored in the absolute mode, with that reason — when it
   fails the quality gates (checked for the other side than the affected one) or hardly
   closes (mean peak closure below ``REFERENCE_MIN_PEAK``: the "unaffected" hand may be
   impaired too).
2. :func:`apply_reference` turns the absolute result into the reference-mode result. The
   affected hand's per-finger peak closure is divided by the reference's (measured the same
   way: in the hand frame when both have world landmarks — then their closing movements
   (excursions) are compared, and a reference must *move* at least ``REFERENCE_MIN_PEAK`` of
   a fist — else 2D when either trial lacks z), and

   =========================  ===================================================
   absolute result            reference-mode score
   =========================  ===================================================
   not scorable               not scorable (nothing changes)
   0 (no flexion)             0 — no movement is no movement, whatever the other hand does
   2 (full fist)              2 — it cannot close further than a fist
   1 (partial), reference     1 — the unaffected hand closes fully, so "as far as the
   makes a full fist          unaffected hand" *is* the absolute scale
   1 (partial), reference     2 when the fingers reach on average ≥ ``FULL_RATIO`` of the
   limited                    reference's closure and none < ``MIN_FINGER_RATIO``, else 1
   =========================  ===================================================

   A reference "makes a full fist" when the rule would give it full closure on every finger
   (peak ≥ ``RuleThresholds.full``); the per-finger ratios are reported either way.

   The RNN is not reference-aware: its probabilities stay those of the absolute mode and
   the change is explained in ``reasons``; ``details["mode"]`` says which mode was used and
   ``details["reference"]`` holds both hands' per-finger range and their ratio.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from device.config import TrialConfig
from device.scoring.rules import FINGERS, RuleScorer, RuleThresholds
from device.scoring.types import Result
from device.trial.quality import check_quality
from device.trial.types import Side, Trial

log = logging.getLogger(__name__)

REFERENCE_MIN_PEAK = 0.35  # mean peak closure (0 open … 1 fist) a reference must reach
FULL_RATIO = 0.85  # mean share of the reference's closure that counts as "as far"
MIN_FINGER_RATIO = 0.70  # and no finger below this share


def _other(side: Side | None) -> Side | None:
    return None if side is None else ("left" if side == "right" else "right")


def without_world(trial: Trial) -> Trial:
    """The same trial without world landmarks (measured on the image landmarks)."""
    return trial if trial.world is None else dataclasses.replace(trial, world=None)


def as_2d(trial: Trial) -> Trial:
    """The same trial without z and without world landmarks (so a 2D and a 3D trial are
    measured alike: no 3D information is left)."""
    if not trial.has_z and trial.world is None:
        return trial
    lm = trial.landmarks.copy()
    lm[..., 2] = np.nan
    return dataclasses.replace(trial, landmarks=lm, has_z=False, world=None)


@dataclass(frozen=True)
class ReferenceProfile:
    """The unaffected hand's range of motion and whether it can serve as the reference."""

    usable: bool
    peak: tuple[float, ...] = ()  # per finger (index…pinky), 0 open … 1 fist
    excursion: tuple[float, ...] = ()
    method: str = ""
    reasons: tuple[str, ...] = ()
    quality: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "usable": self.usable,
            "peak_closure": [round(v, 3) for v in self.peak],
            "excursion": [round(v, 3) for v in self.excursion],
            "method": self.method,
            "reasons": list(self.reasons),
            "quality": self.quality,
        }


def reference_profile(
    reference: Trial, cfg: TrialConfig | None = None, *, as_2d_measure: bool = False
) -> ReferenceProfile:
    """Measure a reference trial of the unaffected hand (see the module docstring).

    The quality gates run with the side check turned to the *other* hand than ``cfg.side``
    (the affected side); ``as_2d_measure`` measures without z even when the trial has it.
    """
    cfg = cfg or TrialConfig()
    ref_cfg = dataclasses.replace(cfg, side=_other(cfg.side))
    ref = reference  # its own ``side``, when set, names the unaffected hand
    quality = check_quality(ref, ref_cfg)
    if not quality.ok:
        return ReferenceProfile(
            usable=False,
            reasons=tuple(
                f"the reference trial of the unaffected hand is not scorable ({r.message}): "
                "scored in the absolute mode"
                for r in quality.reasons
            ),
            quality=quality.to_json(),
        )
    m = RuleScorer().measure(as_2d(ref) if as_2d_measure else ref)
    peak = tuple(float(v) for v in m["cautious_peak"])
    exc = tuple(float(v) for v in m["excursion"])
    # In the hand frame the reference's *movement* counts (a hand resting half-closed has a
    # high peak and no excursion); on image landmarks its cautious peak closure.
    reach = exc if m["method"] == "hand" else peak
    if float(np.mean(reach)) < REFERENCE_MIN_PEAK:
        what = "closing movement" if m["method"] == "hand" else "peak closure"
        return ReferenceProfile(
            usable=False,
            peak=peak,
            excursion=exc,
            method=m["method"],
            reasons=(
                f"the reference hand hardly closed (mean {what} {np.mean(reach):.0%}, "
                f"needs {REFERENCE_MIN_PEAK:.0%}): it cannot stand for the unaffected hand; "
                "scored in the absolute mode",
            ),
            quality=quality.to_json(),
        )
    return ReferenceProfile(True, peak, exc, m["method"], (), quality.to_json())


def apply_reference(
    absolute: Result, trial: Trial, reference: Trial, cfg: TrialConfig | None = None
) -> Result:
    """The reference-mode result for ``trial`` given the absolute one (module docstring).

    Both hands are measured alike: in the hand's own frame when both trials have world
    landmarks, else on the image landmarks (2D when either lacks z)."""
    if not (trial.has_world and reference.has_world):
        trial, reference = without_world(trial), without_world(reference)
    use_2d = not (trial.has_z and reference.has_z)
    profile = reference_profile(reference, cfg, as_2d_measure=use_2d)
    details = dict(absolute.details)
    details["reference"] = profile.to_json()
    if not profile.usable:
        details["mode"] = "absolute"
        return dataclasses.replace(absolute, reasons=(*absolute.reasons, *profile.reasons), details=details)
    details["mode"] = "reference"
    if absolute.status != "scored" or absolute.score is None:
        return dataclasses.replace(absolute, details=details)
    m = RuleScorer().measure(as_2d(trial) if use_2d else trial)
    if profile.method == "hand" and m["method"] == "hand":
        # hand frame: the two hands' closing movements (excursions) compared
        ref_reach = np.maximum(np.asarray(profile.excursion), 1e-3)
        ratio = np.asarray(m["excursion"]) / ref_reach
        details["reference"]["affected_excursion"] = [round(float(v), 3) for v in m["excursion"]]
    else:
        ratio = np.asarray(m["cautious_peak"]) / np.maximum(np.asarray(profile.peak), 1e-3)
    details["reference"]["affected_peak_closure"] = [round(float(v), 3) for v in m["cautious_peak"]]
    ref_full = min(profile.peak) >= RuleThresholds().full
    details["reference"]["full_fist"] = ref_full
    return compare_with_reference(absolute, ratio, ref_full, details, FLEXION_WORDS)


@dataclass(frozen=True)
class ReferenceWords:
    """How an item's reference-mode reasons name its movement (the decision is shared)."""

    full: str  # the unaffected hand reaching the full range, e.g. "makes a full fist"
    full_target: str  # what the affected hand is then judged against, e.g. "a full fist"
    verb: str  # "close" / "open"
    limited: str  # the unaffected hand not reaching it, e.g. "cannot close fully"
    share: str  # what the ratio is a share of, e.g. "closure"
    range: str  # e.g. "range"


FLEXION_WORDS = ReferenceWords(
    full="makes a full fist",
    full_target="a full fist",
    verb="close",
    limited="cannot close fully",
    share="closure",
    range="range",
)


def compare_with_reference(
    absolute: Result, ratio: np.ndarray, ref_full: bool, details: dict[str, Any], words: ReferenceWords
) -> Result:
    """The reference-mode decision (module docstring table), shared by the items: the
    absolute result, the affected/unaffected per-finger ratio, whether the unaffected hand
    reaches the full range, the details so far (``mode`` and ``reference`` set)."""
    assert absolute.score is not None
    details["reference"]["ratio"] = [round(float(v), 3) for v in ratio]
    per_finger = ", ".join(f"{n} {r:.0%}" for n, r in zip(FINGERS, ratio, strict=True))
    score = absolute.score
    as_far = float(ratio.mean()) >= FULL_RATIO and float(ratio.min()) >= MIN_FINGER_RATIO
    if absolute.score == 1 and ref_full:
        why = (
            f"the unaffected hand {words.full}, so the affected hand is judged against "
            f"{words.full_target}: partial ({per_finger} of the unaffected hand's {words.share}) → 1"
        )
    elif absolute.score == 1 and as_far:
        score = 2
        why = (
            f"compared with the unaffected hand, which {words.limited} either: the fingers "
            f"{words.verb} as far as on that hand ({per_finger}) → 2"
        )
    elif absolute.score == 1:
        why = (
            f"compared with the unaffected hand: the fingers {words.verb} less than "
            f"{FULL_RATIO:.0%} of that hand's {words.range} on average, or a finger less than "
            f"{MIN_FINGER_RATIO:.0%} ({per_finger}) → 1"
        )
    else:
        why = f"compared with the unaffected hand ({per_finger}): the absolute score {absolute.score} stands"
    review = absolute.review or score != absolute.score
    return dataclasses.replace(
        absolute,
        score=score,
        confidence=absolute.confidence if score == absolute.score else float(profile_share(ratio)),
        reasons=(*absolute.reasons, why),
        details=details,
        review=review,
    )


def profile_share(ratio: np.ndarray) -> float:
    """A confidence for a score changed by the reference: how clearly the mean ratio clears
    ``FULL_RATIO`` (0.5 at the threshold, 1.0 at the reference's full range)."""
    mean = float(np.mean(np.minimum(ratio, 1.0)))
    return float(np.clip(0.5 + 0.5 * (mean - FULL_RATIO) / (1.0 - FULL_RATIO), 0.5, 1.0))
