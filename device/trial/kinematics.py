"""Hand-frame kinematics: joint flexion angles from the landmark model's world landmarks.

The landmark model's second output (``world_landmarks``, metres, hand-centred) is a 3D hand
that does not change when the camera or the hand turns: it is read in the hand's own frame.
From it, per finger, the flexion of its three joints in degrees (0 = straight):

=======  =======================================  ======================================
finger   joints (columns of :func:`joint_angles`)  bones (MediaPipe joint indices)
=======  =======================================  ======================================
thumb    CMC, MCP, IP                              0→1→2, 1→2→3, 2→3→4
index    MCP, PIP, DIP                             0→5→6, 5→6→7, 6→7→8
middle   MCP, PIP, DIP                             0→9→10, 9→10→11, 10→11→12
ring     MCP, PIP, DIP                             0→13→14, 13→14→15, 14→15→16
pinky    MCP, PIP, DIP                             0→17→18, 17→18→19, 18→19→20
=======  =======================================  ======================================

* **PIP, DIP, thumb MCP and IP** are hinge joints: the angle between the two bones.
* **Finger MCPs** also spread sideways (abduction, up to ~20°). Their flexion is the angle
  between the metacarpal (wrist → MCP) and the proximal phalanx *seen along the palm's
  lateral axis* (index MCP → pinky MCP): the phalanx is projected onto the plane spanned by
  the metacarpal and the palm normal before the angle is taken, so spreading the fingers
  does not read as flexion.
* **Thumb CMC**: the angle between wrist → CMC and CMC → MCP (the thumb's swing across the
  palm and out of it together; it has no single flexion axis).

Angles are unsigned: a joint bent backwards (hyperextension) reads as a small positive
angle, so "open" is a small number for every hand — right or left, mirrored or not — and
the angles need no handedness. Every quantity is an angle between vectors built from the
hand's own points, so the angles are the same for the hand rotated, moved or scaled
anywhere in 3D (property-tested in ``tests/test_kinematics.py``).

Gaps: a frame (or a point) that is NaN gives NaN angles for the joints that use it; a
degenerate bone (zero length) gives NaN too. :func:`fill_gaps` interpolates NaN frames of a
time series for the scorer.

The model's own world output is not anatomically exact: an open hand reads ≈ 40–95°
summed over a finger's three joints, a fist ≈ 200–270° (measured on real clips;
``device.trial.calibration`` maps the sums to a fraction of a fist).
"""

from __future__ import annotations

import numpy as np

from device.errors import InputError
from device.vision.types import NUM_LANDMARKS

FINGER_NAMES: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
JOINT_NAMES: tuple[tuple[str, str, str], ...] = (
    ("CMC", "MCP", "IP"),
    ("MCP", "PIP", "DIP"),
    ("MCP", "PIP", "DIP"),
    ("MCP", "PIP", "DIP"),
    ("MCP", "PIP", "DIP"),
)
WRIST = 0
# Per finger the chain of 5 points (wrist, then the finger's 4 joints).
CHAINS = np.array(
    [[0, 1, 2, 3, 4], [0, 5, 6, 7, 8], [0, 9, 10, 11, 12], [0, 13, 14, 15, 16], [0, 17, 18, 19, 20]]
)
INDEX_MCP, PINKY_MCP = 5, 17
_EPS = 1e-9


def _points(world: object) -> np.ndarray:
    try:
        p = np.asarray(world, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"world landmarks must be numbers, got {type(world).__name__}") from exc
    if p.ndim < 2 or p.shape[-2:] != (NUM_LANDMARKS, 3):
        raise InputError(f"world landmarks must have shape [..., 21, 3], got {p.shape}")
    if np.isinf(p).any():
        raise InputError("world landmarks contain inf")
    return p


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > _EPS, v / np.where(n > _EPS, n, 1.0), np.nan)


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Angle in degrees between vectors (NaN when either is zero or NaN)."""
    cos = np.sum(_unit(u) * _unit(v), axis=-1)
    with np.errstate(invalid="ignore"):
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def joint_angles(world: object) -> np.ndarray:
    """Flexion angles in degrees, float32 [..., 5, 3], from world landmarks [..., 21, 3].

    Rows: thumb, index, middle, ring, pinky; columns: the three joints of
    :data:`JOINT_NAMES`. Any leading shape (one hand, a trial [T], a batch) is kept.
    """
    p = _points(world)
    chain = p[..., CHAINS, :]  # [..., 5, 5, 3]
    bones = np.diff(chain, axis=-2)  # [..., 5, 4, 3]: metacarpal, proximal, middle, distal
    out = _angle(bones[..., :-1, :], bones[..., 1:, :])  # [..., 5, 3]
    # Finger MCPs: flexion only, seen along the palm's lateral axis.
    lateral = p[..., INDEX_MCP, :] - p[..., PINKY_MCP, :]  # [..., 3]
    meta = bones[..., 1:, 0, :]  # [..., 4, 3]
    prox = bones[..., 1:, 1, :]
    lat = lateral[..., None, :]
    # The lateral axis made perpendicular to each metacarpal: the MCP's flexion axis.
    m_u = _unit(meta)
    axis = _unit(lat - np.sum(lat * m_u, axis=-1, keepdims=True) * m_u)
    prox_sagittal = prox - np.sum(prox * axis, axis=-1, keepdims=True) * axis
    out[..., 1:, 0] = _angle(meta, prox_sagittal)
    return out.astype(np.float32)


def flexion_sums(angles: np.ndarray) -> np.ndarray:
    """Per-finger summed flexion [..., 5] (degrees) from :func:`joint_angles` output."""
    a = np.asarray(angles, dtype=np.float32)
    if a.ndim < 2 or a.shape[-2:] != (5, 3):
        raise InputError(f"joint angles must have shape [..., 5, 3], got {a.shape}")
    return np.asarray(a.sum(axis=-1), dtype=np.float32)


def fill_gaps(t: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values with NaN frames filled by linear interpolation in time, observed [T] bool).

    ``values`` is [T, ...]; a frame counts as observed when all its values are finite.
    Frames before the first / after the last observed one take its value. All-NaN input
    stays NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    tt = np.asarray(t, dtype=np.float64)
    flat = v.reshape(v.shape[0], -1)
    observed = np.asarray(np.isfinite(flat).all(axis=1))
    if not observed.any() or observed.all():
        return v.copy(), observed
    filled = np.empty_like(flat)
    for j in range(flat.shape[1]):
        filled[:, j] = np.interp(tt, tt[observed], flat[observed, j])
    return np.asarray(filled.reshape(v.shape)), observed
