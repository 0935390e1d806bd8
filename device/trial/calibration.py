"""Hand-frame calibration: summed finger flexion (degrees) → fraction of a full fist.

The landmark model's world output has its own bias: a real open hand is not 0° (its fingers
read ≈ 40–75° summed over MCP + PIP + DIP) and a real fist is not the anatomical maximum
(≈ 210–250°). The closure of a finger is therefore measured against what the model gives for
real open hands and real fists::

    closure = (sum − OPEN_DEG[finger]) / (FIST_DEG[finger] − OPEN_DEG[finger])

0 = as open as a real open hand, 1 = as closed as a real fist (values below 0 or above 1
occur and are kept for the features; the rule clips them).

**Where the numbers come from** (``scripts/calibrate_world.py``, 2026-12-04): the medians of
the per-finger sums over the open and the fist frames (frame ranges read by eye, shared data
MANIFEST.md) of the training clips ``mit_phone_open_fist_cycles`` (56 open, 24 fist frames),
``hagrid_demo_fist_to_palm_counting`` (16 open, 3 fist) and ``pixabay_hand_reach_open``
(183 open), tracked with the lite landmark model's world output (fp32, before the int8
world-output fix). Re-fitted with the device's int8 lite files after that fix, the same
frames give open 44.1 / 63.8 / 55.1 / 51.8° and fist 209.7 / 234.2 / 228.5 / 222.0° — within
5° of these values (≤ 3 % of the open → fist range), so they are kept (the hand scorer was
trained with them). The clip
``hagrid_dynamic_dnd_palm_fist_palm`` (the bundled demo clip's source) was held out: its open
frames read 0.10 / −0.04 / −0.08 / 0.08 and its fist frames 1.05 / 1.07 / 0.98 / 1.03 of a
fist (median per finger) with these values. The thumb is not calibrated: its summed angles
overlap between an open hand and a fist (CMC motion is poorly seen), and the item scores the
fingers.
"""

from __future__ import annotations

import numpy as np

from device.errors import InputError
from device.trial.kinematics import fill_gaps, flexion_sums, joint_angles
from device.trial.types import Trial

FINGERS = ("index", "middle", "ring", "pinky")
# Summed MCP + PIP + DIP flexion (degrees) of index, middle, ring, pinky.
OPEN_DEG = np.array([44.2, 62.9, 54.2, 51.9])
FIST_DEG = np.array([214.8, 239.2, 230.6, 220.4])
CALIBRATION_VERSION = "hand-cal-1"


def finger_degrees(world: np.ndarray) -> np.ndarray:
    """Summed flexion [..., 4] (degrees) of index…pinky from world landmarks [..., 21, 3]."""
    return flexion_sums(joint_angles(world))[..., 1:]


def closure_from_degrees(degrees: np.ndarray) -> np.ndarray:
    """Fraction of a real fist [..., 4] from summed finger flexion [..., 4] (unclipped)."""
    d = np.asarray(degrees, dtype=np.float64)
    return np.asarray((d - OPEN_DEG) / (FIST_DEG - OPEN_DEG))


def degrees_from_closure(closure: np.ndarray | float) -> np.ndarray:
    """Summed flexion [..., 4] (degrees) that a closure [..., 4] (or one value) stands for."""
    return np.asarray(OPEN_DEG + np.asarray(closure, dtype=np.float64) * (FIST_DEG - OPEN_DEG))


def world_closure(trial: Trial) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(closure [T, 4], degrees [T, 4], observed [T]) of a trial with world landmarks.

    Frames without world landmarks are filled by linear interpolation in time (``observed``
    says which were measured). :class:`InputError` when the trial has none.
    """
    if trial.world is None or not trial.has_world:
        raise InputError("this trial has no world landmarks (hand-frame scoring needs them)")
    deg = finger_degrees(trial.world)
    filled, observed = fill_gaps(trial.t, deg)
    return closure_from_degrees(filled), filled, observed
