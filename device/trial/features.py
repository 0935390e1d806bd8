"""Trial features for the scorers: normalised hand shape over 200 time steps (pure numpy).

Pipeline (:func:`trial_features`):

1. **Gaps**: frames without a hand are filled by linear interpolation in time between the
   neighbouring tracked frames (held constant before the first / after the last one).
2. **Resampling**: the trial is sampled at ``N_STEPS`` (200) evenly spaced times between its
   first and last timestamp, so speed and frame rate do not change the input length.
3. **Normalisation** (:func:`normalize_landmarks`): wrist at the origin, divided by the palm
   size (mean of the wrist→index/middle/ring/pinky MCP and index→pinky MCP distances), y
   flipped to point up, rotated in the image plane so wrist→middle MCP points along +y, and
   left hands mirrored (x → −x) to a canonical right hand.
4. **Per-frame features** (:func:`frame_features`), listed in :data:`FEATURES_2D` and
   :data:`FEATURES_3D`.

Feature vector. The 2D features use only x, y; ``variant="3d"`` appends the 3D ones (needs z).
Angles are *bend* angles in units of π (0 = straight, 0.5 = a right angle); distances are in
palm sizes. All are invariant to translation, scale, in-plane rotation and mirroring.

=====  ===================  ====================================================================
index  name                 meaning
=====  ===================  ====================================================================
0–14   ``bend2d_<joint>``    2D bend at thumb CMC/MCP/IP and index/middle/ring/pinky MCP/PIP/DIP:
                            angle between the bone entering the joint and the bone leaving it
                            (for MCPs and the thumb CMC the entering "bone" is wrist→joint)
15–19  ``tip_palm2d_<f>``    distance of each fingertip (thumb…pinky) to the palm centre (mean of
                            wrist and the four MCPs)
20–24  ``straight2d_<f>``    |tip − base| / length of the finger's bone chain (1 = straight;
                            base = MCP, thumb: CMC)
25–29  ``tip_height_<f>``    fingertip coordinate along the canonical palm axis (wrist→middle MCP)
30     ``openness2d``        mean of ``tip_palm2d`` over the four fingers (the "ext ratio")
31     ``closure2d``         (max over the trial of ``openness2d`` − ``openness2d``) / that max:
                            how far the hand is closed relative to its most open moment
32     ``palm_aspect``       |index MCP − pinky MCP| / |wrist − middle MCP| (drops when the palm
                            is tilted sideways)
33     ``thumb_index2d``     thumb tip to index MCP distance
34     ``observed``          1 where the resampled step lies on a tracked frame, 0 inside a gap
35–49  ``bend3d_<joint>``    the same 15 bend angles in 3D
50–54  ``tip_palm3d_<f>``    fingertip to palm centre, 3D
55–59  ``straight3d_<f>``    straightness, 3D
60     ``openness3d``        mean of ``tip_palm3d`` over the four fingers
61     ``closure3d``         as ``closure2d`` from ``openness3d``
=====  ===================  ====================================================================

``variant="hand"`` (trials with world landmarks): the hand's own frame, 11 columns per step
(:data:`FEATURES_HAND`) from the calibrated finger closure (:mod:`device.trial.calibration`:
0 = what the landmark model reads for a real open hand, 1 = a real fist) — ``closure_<f>``
for index…pinky (clipped to [−0.5, 1.5]), ``rise_<f>`` = closure minus its lowest value so
far (the closing movement, not the posture), ``closure_mean``, ``closure_spread`` (most
minus least closed finger: only some fingers closing) and ``observed``.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from device.errors import InputError
from device.trial.calibration import world_closure
from device.trial.quality import anatomical_side
from device.trial.types import Trial
from device.vision.types import NUM_LANDMARKS

log = logging.getLogger(__name__)

N_STEPS = 200
Variant = Literal["2d", "3d", "hand"]

WRIST = 0
PALM_POINTS = (0, 5, 9, 13, 17)
FINGER_NAMES = ("thumb", "index", "middle", "ring", "pinky")
TIPS = (4, 8, 12, 16, 20)
# Each finger's chain from its base; the first joint's "incoming bone" starts at the wrist.
CHAINS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
JOINT_NAMES = (
    "thumb_cmc", "thumb_mcp", "thumb_ip",
    "index_mcp", "index_pip", "index_dip",
    "middle_mcp", "middle_pip", "middle_dip",
    "ring_mcp", "ring_pip", "ring_dip",
    "pinky_mcp", "pinky_pip", "pinky_dip",
)  # fmt: skip
# (previous, joint, next) landmark triples for the 15 bend angles, in JOINT_NAMES order.
ANGLE_TRIPLES = tuple(
    (prev, chain[k], chain[k + 1]) for chain in CHAINS for k, prev in enumerate((WRIST, chain[0], chain[1]))
)

FEATURES_2D: tuple[str, ...] = (
    *(f"bend2d_{j}" for j in JOINT_NAMES),
    *(f"tip_palm2d_{f}" for f in FINGER_NAMES),
    *(f"straight2d_{f}" for f in FINGER_NAMES),
    *(f"tip_height_{f}" for f in FINGER_NAMES),
    "openness2d",
    "closure2d",
    "palm_aspect",
    "thumb_index2d",
    "observed",
)
FEATURES_3D: tuple[str, ...] = (
    *FEATURES_2D,
    *(f"bend3d_{j}" for j in JOINT_NAMES),
    *(f"tip_palm3d_{f}" for f in FINGER_NAMES),
    *(f"straight3d_{f}" for f in FINGER_NAMES),
    "openness3d",
    "closure3d",
)
HAND_FINGERS = ("index", "middle", "ring", "pinky")
FEATURES_HAND: tuple[str, ...] = (
    *(f"closure_{f}" for f in HAND_FINGERS),
    *(f"rise_{f}" for f in HAND_FINGERS),
    "closure_mean",
    "closure_spread",
    "observed",
)
NUM_FEATURES = {"2d": len(FEATURES_2D), "3d": len(FEATURES_3D), "hand": len(FEATURES_HAND)}
_EPS = 1e-6
MAX_COORD = 1e6  # |landmark coordinate| in pixels; larger is a tracker fault, not a hand


def _landmarks(landmarks: object, what: str) -> np.ndarray:
    """``landmarks`` as float64 [T, 21, 3], or :class:`InputError` naming the problem."""
    try:
        lm = np.asarray(landmarks, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what}: landmarks must be numbers, got {type(landmarks).__name__}") from exc
    if lm.ndim != 3 or lm.shape[1:] != (NUM_LANDMARKS, 3):
        raise InputError(f"{what}: landmarks must have shape [T, 21, 3], got {lm.shape}")
    with np.errstate(invalid="ignore"):
        if (np.abs(lm) > MAX_COORD).any():  # NaN compares False: gaps stay allowed here
            raise InputError(f"{what}: landmark coordinates beyond ±{MAX_COORD:g} pixels (or infinite)")
    return lm


def feature_names(variant: Variant) -> tuple[str, ...]:
    return {"3d": FEATURES_3D, "hand": FEATURES_HAND}.get(variant, FEATURES_2D)


# --------------------------------------------------------------------------- geometry


def palm_size(points: np.ndarray) -> np.ndarray:
    """Palm size per frame from [..., 21, D] points (D = 2 or 3): a rigid-ish hand scale."""
    w = points[..., WRIST, :]
    d = [np.linalg.norm(points[..., j, :] - w, axis=-1) for j in (5, 9, 13, 17)]
    d.append(np.linalg.norm(points[..., 5, :] - points[..., 17, :], axis=-1))
    return np.maximum(np.mean(d, axis=0), _EPS)


def normalize_landmarks(landmarks: np.ndarray, left: bool | np.ndarray = False) -> np.ndarray:
    """Canonical hand coordinates from pixel landmarks [T, 21, 3] (no NaN rows).

    Wrist at the origin; divided by the 2D palm size; y up; rotated in the image plane so
    wrist→middle MCP points along +y; left hands (``left`` True, per trial or per frame)
    mirrored to a right hand by x → −x. z (if finite) is scaled with x and y.
    """
    lm = _landmarks(landmarks, "normalize_landmarks")
    p = lm - lm[:, WRIST : WRIST + 1, :]
    p[..., 1] *= -1.0  # y up
    scale = palm_size(p[..., :2])
    p /= scale[:, None, None]
    axis = p[:, 9, :2]
    ang = np.arctan2(axis[:, 0], axis[:, 1])  # angle of the palm axis from +y, clockwise
    c, s = np.cos(ang), np.sin(ang)
    x, y = p[..., 0].copy(), p[..., 1].copy()
    p[..., 0] = c[:, None] * x - s[:, None] * y
    p[..., 1] = s[:, None] * x + c[:, None] * y
    flip = np.broadcast_to(np.asarray(left, dtype=bool), (lm.shape[0],))
    p[flip, :, 0] *= -1.0
    return p


def bend_angles(p: np.ndarray) -> np.ndarray:
    """Bend angles in units of π for the 15 joints; p is [T, 21, D]."""
    a = np.array([t[0] for t in ANGLE_TRIPLES])
    b = np.array([t[1] for t in ANGLE_TRIPLES])
    c = np.array([t[2] for t in ANGLE_TRIPLES])
    u = p[:, b] - p[:, a]
    v = p[:, c] - p[:, b]
    cos = np.sum(u * v, axis=-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1) + _EPS)
    return np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi


def _shape_features(p: np.ndarray) -> tuple[np.ndarray, ...]:
    """Bend, tip-to-palm, straightness and openness for points scaled to palm size 1."""
    bend = bend_angles(p)
    centre = p[:, list(PALM_POINTS)].mean(axis=1, keepdims=True)
    tip_palm = np.linalg.norm(p[:, list(TIPS)] - centre, axis=-1)
    straight = np.empty_like(tip_palm)
    for k, chain in enumerate(CHAINS):
        pts = p[:, list(chain)]
        length = np.linalg.norm(np.diff(pts, axis=1), axis=-1).sum(axis=1)
        straight[:, k] = np.linalg.norm(pts[:, -1] - pts[:, 0], axis=-1) / (length + _EPS)
    openness = tip_palm[:, 1:].mean(axis=1, keepdims=True)
    return bend, tip_palm, straight, openness


def _closure(openness: np.ndarray) -> np.ndarray:
    top = float(openness.max())
    return np.asarray((top - openness) / max(top, _EPS))


def frame_features(
    landmarks: np.ndarray,
    *,
    left: bool | np.ndarray = False,
    observed: np.ndarray | None = None,
    variant: Variant = "3d",
) -> np.ndarray:
    """Per-frame feature matrix [T, F] from gap-free pixel landmarks [T, 21, 3].

    ``observed`` (bool/float [T]) fills the ``observed`` column (all ones if None). The
    closure columns are relative to the most open frame of the given frames, so pass a
    whole trial. See the module docstring for the columns.
    """
    lm = _landmarks(landmarks, "frame_features")
    if lm.shape[0] < 1:
        raise InputError(f"landmarks must have shape [T, 21, 3] with T ≥ 1, got {lm.shape}")
    if not np.isfinite(lm[..., :2]).all():
        raise InputError("frame_features needs finite x, y (interpolate gaps first)")
    if variant == "3d" and not np.isfinite(lm[..., 2]).all():
        raise InputError("the 3D features need z; use variant='2d' for 2D landmarks")
    n = lm.shape[0]
    canon = normalize_landmarks(lm, left)
    p2 = canon[..., :2]
    bend2, tip2, straight2, open2 = _shape_features(p2)
    height = p2[:, list(TIPS), 1]
    aspect = np.linalg.norm(p2[:, 5] - p2[:, 17], axis=-1) / (np.linalg.norm(p2[:, 9], axis=-1) + _EPS)
    thumb_idx = np.linalg.norm(p2[:, 4] - p2[:, 5], axis=-1)
    obs = np.ones(n) if observed is None else np.asarray(observed, dtype=np.float64)
    cols = [
        bend2,
        tip2,
        straight2,
        height,
        open2,
        _closure(open2),
        aspect[:, None],
        thumb_idx[:, None],
        obs[:, None],
    ]
    if variant == "3d":
        p3 = lm - lm[:, WRIST : WRIST + 1, :]
        p3 = p3 / palm_size(p3)[:, None, None]
        bend3, tip3, straight3, open3 = _shape_features(p3)
        cols += [bend3, tip3, straight3, open3, _closure(open3)]
    out = np.concatenate(cols, axis=1).astype(np.float32)
    return out


# --------------------------------------------------------------------------- time


def resample_landmarks(
    landmarks: np.ndarray, t: np.ndarray, steps: int = N_STEPS
) -> tuple[np.ndarray, np.ndarray]:
    """Fill gaps and resample to ``steps`` evenly spaced times.

    Returns (landmarks [steps, 21, 3], observed [steps] bool). NaN rows are gaps; a gap is
    filled linearly between its neighbours in time and held at the ends. ``observed`` is
    True where the nearest original frame was tracked.
    """
    lm = _landmarks(landmarks, "resample_landmarks")
    try:
        t = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError("resample_landmarks: times must be numbers") from exc
    if t.shape != (lm.shape[0],):
        raise InputError(f"resample_landmarks: {lm.shape[0]} frames but times of shape {t.shape}")
    if not np.isfinite(t).all() or (np.diff(t) < 0).any():
        raise InputError("resample_landmarks: times must be finite and non-decreasing")
    if not isinstance(steps, int | np.integer) or steps < 2:
        raise InputError(f"resample_landmarks: steps must be an integer ≥ 2, got {steps!r}")
    det = np.asarray(~np.isnan(lm[:, :, :2]).any(axis=(1, 2)), dtype=bool)
    if not det.any():
        raise InputError("the trial has no tracked frame to compute features from")
    ts = np.linspace(t[0], t[-1], steps)
    tv = t[det]
    lv = lm[det]
    # Bracketing tracked frames for each sample time (vectorised np.interp over 63 columns).
    hi = np.clip(np.searchsorted(tv, ts, side="left"), 0, len(tv) - 1)
    lo = np.clip(hi - 1, 0, len(tv) - 1)
    span = tv[hi] - tv[lo]
    w = np.where(span > 0, (ts - tv[lo]) / np.where(span > 0, span, 1.0), 0.0)
    w = np.clip(w, 0.0, 1.0)
    before = ts <= tv[0]
    w[before] = 0.0
    lo[before] = 0
    hi[before] = 0
    out = (1.0 - w)[:, None, None] * lv[lo] + w[:, None, None] * lv[hi]
    nearest = np.clip(np.searchsorted(t, ts), 0, len(t) - 1)
    prev = np.clip(nearest - 1, 0, len(t) - 1)
    nearest = np.where(np.abs(t[prev] - ts) < np.abs(t[nearest] - ts), prev, nearest)
    return out, det[nearest]


def trial_is_left(trial: Trial) -> bool:
    """Whether the tracked hand is a left hand: the assessed side, else the labels' majority."""
    if trial.side is not None:
        return trial.side == "left"
    sides = [anatomical_side(h, trial.mirrored) for h in trial.handedness]
    known = [s for s in sides if s is not None]
    return bool(known) and sum(s == "left" for s in known) > len(known) / 2


def trial_features(trial: Trial, variant: Variant = "3d", steps: int = N_STEPS) -> np.ndarray:
    """Feature matrix [steps, F] of a trial (see the module docstring for the columns).

    Raises :class:`InputError` for a trial of fewer than 2 frames, one without a tracked
    frame, or ``variant="3d"`` on a trial without z.
    """
    if variant not in ("2d", "3d", "hand"):
        raise InputError(f"feature variant must be '2d', '3d' or 'hand', got {variant!r}")
    if trial.num_frames < 2 or trial.duration <= 0:
        raise InputError(
            f"a trial needs at least 2 frames over a positive time span to be scored "
            f"(got {trial.num_frames} frame(s), {trial.duration:.3f} s)"
        )
    if variant == "hand":
        return hand_features(trial, steps)
    if variant == "3d" and not trial.has_z:
        raise InputError("this trial has no z coordinate: use the 2D features")
    lm, observed = resample_landmarks(trial.landmarks, trial.t, steps)
    if not trial.has_z:
        lm[..., 2] = 0.0
    return frame_features(lm, left=trial_is_left(trial), observed=observed, variant=variant)


def hand_features(trial: Trial, steps: int = N_STEPS) -> np.ndarray:
    """The ``hand`` feature matrix [steps, 11] (module docstring) of a trial with world
    landmarks; :class:`InputError` when it has none."""
    closure_t, _deg, observed_t = world_closure(trial)
    ts = np.linspace(trial.t[0], trial.t[-1], steps)
    c = np.stack([np.interp(ts, trial.t, closure_t[:, f]) for f in range(4)], axis=1)
    c = np.clip(c, -0.5, 1.5)
    rise = c - np.minimum.accumulate(c, axis=0)
    nearest = np.clip(np.searchsorted(trial.t, ts), 0, trial.num_frames - 1)
    observed = observed_t[nearest].astype(np.float64)
    spread = (c.max(axis=1) - c.min(axis=1))[:, None]
    cols = [c, rise, c.mean(axis=1, keepdims=True), spread, observed[:, None]]
    return np.concatenate(cols, axis=1).astype(np.float32)
