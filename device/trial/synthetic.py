"""Kinematic synthetic hand trials for the mass-flexion item (pure numpy, no data files).

A right hand is modelled in a *hand frame* (units: palm length = wrist→middle MCP = 1;
x towards the thumb, y along the palm towards the fingers, z out of the palm). Each finger is
a chain MCP→PIP→DIP→tip with per-hand bone lengths; flexion rotates the chain about the
finger's lateral axis towards +z. One *closure* value per finger in [0, 1] drives its joints
with human-like coupling (MCP up to ~85°, PIP up to ~100°, DIP ≈ 0.7 × PIP, spread closing
with flexion); the thumb crosses the palm as the hand closes. The posed hand is rotated
(any in-plane angle, out-of-plane tilt), scaled, placed in an image, mirrored for a left hand
and/or a selfie view, and projected orthographically to MediaPipe-style pixel landmarks
(x, y px; z relative to the wrist on the x scale). Then tracker-like noise (temporally
correlated jitter, occasional outliers) and dropouts are added.

Scores (:func:`make_trial`): the closure trajectory over the trial decides the label —

* **2**: every finger reaches ≥ 0.85 closure (a fist) from an open start;
* **1**: clearly partial: all fingers peak at 0.18–0.65 above their start, or only 1–3
  fingers close while the others stay (nearly) still;
* **0**: no movement or a trace (≤ 0.08 excursion), from an open or a resting-flexed hand.

The gaps between the bands (0.08–0.18, 0.65–0.85) are not generated so labels stay clear.

**World landmarks** (``with_world``): the same posed hand in metres (palm length 8–10 cm),
centred on the palm and turned with the camera rotation, as the landmark model's world
output is. They carry what the real model's world output shows on real clips
(``scripts/calibrate_world.py``): a *bias* — a real open hand reads ≈ 40–75° summed per
finger, a real fist ≈ 210–250°, so the world pose is the hand's closure mapped onto
``WORLD_OPEN``…``WORLD_FIST`` with a per-hand, per-finger offset and a slow wander — and
temporally correlated jitter of 0.3–1.2 mm per joint (frame-to-frame changes of a still open
hand's closure ≈ 0.01–0.05 of a fist, as on the real clips). Their random numbers come from
a stream of their own (seeded from the trial), so the image landmarks of a seed are the same
with or without them.
``scripts/make_trials.py`` uses this module to build the training set; tests use it to make
trials without any data files.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from device.trial.types import Side, Trial
from device.vision.types import NUM_LANDMARKS

log = logging.getLogger(__name__)

# MCP positions in the hand frame (index, middle, ring, pinky) and resting spread (rad).
_MCP = np.array([[0.30, 0.95, 0.0], [0.05, 1.00, 0.0], [-0.17, 0.94, 0.0], [-0.36, 0.83, 0.0]])
_SPREAD = np.radians([9.0, 0.0, -8.0, -18.0])
# Phalanx lengths (proximal, middle, distal) per finger in palm lengths.
_BONES = np.array([[0.46, 0.27, 0.20], [0.50, 0.31, 0.21], [0.47, 0.30, 0.21], [0.37, 0.22, 0.19]])
_THUMB_CMC = np.array([0.22, 0.20, 0.04])
_THUMB_BONES = np.array([0.42, 0.32, 0.27])
# Full-fist joint angles (rad) for MCP, PIP, DIP; DIP follows PIP.
_FIST = np.radians([85.0, 100.0, 70.0])


# Closure the model's world output shows for a real open hand and a real fist (summed flexion
# ≈ 50° and ≈ 235° per finger in this generator's hand: device.trial.calibration).
WORLD_OPEN = 0.2
WORLD_FIST = 0.92


def _rot(axis: npt.ArrayLike, angle: float | np.ndarray) -> np.ndarray:
    """Rotation matrix (Rodrigues) about a unit axis."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


@dataclass(frozen=True)
class HandShape:
    """Per-hand anatomy: scales of the bone lengths and joint ranges."""

    bone_scale: np.ndarray = field(default_factory=lambda: np.ones((4, 3)))
    thumb_scale: np.ndarray = field(default_factory=lambda: np.ones(3))
    rom_scale: np.ndarray = field(default_factory=lambda: np.ones((4, 3)))
    spread_scale: float = 1.0
    palm_width: float = 1.0

    @classmethod
    def random(cls, rng: np.random.Generator) -> HandShape:
        return cls(
            bone_scale=rng.normal(1.0, 0.06, (4, 3)).clip(0.85, 1.15) * rng.uniform(0.9, 1.1),
            thumb_scale=rng.normal(1.0, 0.07, 3).clip(0.8, 1.2),
            rom_scale=rng.normal(1.0, 0.06, (4, 3)).clip(0.85, 1.12),
            spread_scale=float(rng.uniform(0.4, 1.6)),
            palm_width=float(rng.uniform(0.88, 1.1)),
        )


def _rot_batch(axis: npt.ArrayLike, angle: npt.ArrayLike) -> np.ndarray:
    """Rotation matrices [T, 3, 3] (Rodrigues) about unit axes [T, 3] (or one [3]) by angles [T]."""
    ang = np.asarray(angle, dtype=np.float64)
    a = np.broadcast_to(np.asarray(axis, dtype=np.float64), (*ang.shape, 3))
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    k = np.zeros((*ang.shape, 3, 3))
    k[..., 0, 1], k[..., 0, 2] = -a[..., 2], a[..., 1]
    k[..., 1, 0], k[..., 1, 2] = a[..., 2], -a[..., 0]
    k[..., 2, 0], k[..., 2, 1] = -a[..., 1], a[..., 0]
    s, c = np.sin(ang)[..., None, None], np.cos(ang)[..., None, None]
    return np.asarray(np.eye(3) + s * k + (1 - c) * (k @ k))


def pose_hand(closure: np.ndarray, thumb: float, shape: HandShape | None = None) -> np.ndarray:
    """21 landmarks [21, 3] of a right hand in the hand frame.

    ``closure``: 4 values in [0, 1] for index, middle, ring, pinky (0 open, 1 fist);
    ``thumb``: thumb closure in [0, 1] (0 abducted, 1 across the closed fingers).
    """
    return pose_hands(np.asarray(closure, dtype=np.float64)[None], np.array([thumb]), shape)[0]


def pose_hands(closure: np.ndarray, thumb: np.ndarray, shape: HandShape | None = None) -> np.ndarray:
    """:func:`pose_hand` for many frames at once: closure [T, 4], thumb [T] → [T, 21, 3]."""
    shape = shape or HandShape()
    n = closure.shape[0]
    out = np.zeros((n, NUM_LANDMARKS, 3))
    mcp = _MCP.copy()
    mcp[:, 0] *= shape.palm_width
    for f in range(4):
        c = np.clip(closure[:, f], 0.0, 1.05)
        angles = _FIST * shape.rom_scale[f] * np.stack([c**1.15, c**0.9, c**0.9], axis=1)  # [T, 3]
        spread = _SPREAD[f] * shape.spread_scale * (1.0 - 0.8 * np.maximum(c, 0.0))
        direction = np.stack([np.sin(-spread), np.cos(spread), np.zeros(n)], axis=1)
        lateral = np.cross(direction, [0.0, 0.0, 1.0])  # flexion axis
        pos = np.broadcast_to(mcp[f], (n, 3)).copy()
        out[:, 5 + 4 * f] = pos
        cum = np.zeros(n)
        for k in range(3):
            cum = cum + angles[:, k]
            d = np.einsum("tij,tj->ti", _rot_batch(lateral, -cum), direction)
            pos = pos + d * _BONES[f, k] * shape.bone_scale[f, k]
            out[:, 6 + 4 * f + k] = pos
    # Thumb: abducted and slightly out of the palm plane when open; it swings across the
    # palm (about the palm normal and the palm axis) and curls as the hand closes.
    th = np.clip(np.asarray(thumb, dtype=np.float64), 0.0, 1.05)
    base = np.array([np.sin(np.radians(50)), np.cos(np.radians(50)), 0.12])
    base /= np.linalg.norm(base)
    swing = _rot_batch([0.0, 0.0, 1.0], np.radians(38) * th) @ _rot_batch(
        [0.0, 1.0, 0.0], np.radians(-30) * th
    )
    d = swing @ base  # [T, 3]
    pos = np.broadcast_to(_THUMB_CMC, (n, 3)).copy()
    out[:, 1] = pos
    # Curl towards the palm centre (across the palm and a little out of it).
    bend_axis = np.cross(d, [-0.8, 0.0, 0.6])
    bend_axis /= np.linalg.norm(bend_axis, axis=1, keepdims=True) + 1e-9
    joint = np.radians([0.0, 40.0, 60.0])
    cum = np.zeros(n)
    for k in range(3):
        cum = cum + joint[k] * th
        dk = np.einsum("tij,tj->ti", _rot_batch(bend_axis, cum), d)
        pos = pos + dk * _THUMB_BONES[k] * shape.thumb_scale[k]
        out[:, 2 + k] = pos
    return out


# --------------------------------------------------------------------------- motion


def _minjerk(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.asarray(x**3 * (10 - 15 * x + 6 * x**2))


@dataclass(frozen=True)
class Motion:
    """Timing of one trial: rest, close over ``close_s``, hold, optionally re-open, repeat."""

    rest_s: float
    close_s: float
    hold_s: float
    open_s: float
    reopen: bool
    cycles: int
    jerky: bool

    def profile(self, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Progress in [0, 1] over time (0 start posture, 1 peak closure)."""
        p = np.zeros_like(t)
        start = self.rest_s
        for _ in range(self.cycles):
            ramp = (t - start) / self.close_s
            if self.jerky:
                # Several small sub-movements with pauses: a staircase of min-jerk steps.
                k = int(rng.integers(3, 6))
                edges = np.sort(rng.uniform(0, 1, k - 1))
                levels = np.concatenate([[0.0], edges, [1.0]])
                seg = np.clip(ramp, 0, 1) * k
                idx = np.minimum(seg.astype(int), k - 1)
                frac = _minjerk((seg - idx) * 1.6)
                up = levels[idx] + (levels[idx + 1] - levels[idx]) * frac
                up = np.where(ramp >= 1, 1.0, up)
            else:
                up = _minjerk(ramp)
            cyc = up
            if self.reopen:
                t_open = start + self.close_s + self.hold_s
                cyc = up * (1.0 - _minjerk((t - t_open) / self.open_s))
            p = np.maximum(p, cyc)
            start = start + self.close_s + self.hold_s + self.open_s + 0.2
        return np.asarray(np.clip(p, 0.0, 1.0))


@dataclass(frozen=True)
class SynthOptions:
    """Knobs of the generator (defaults span the variation used for training)."""

    duration_s: tuple[float, float] = (4.5, 7.5)
    fps: tuple[float, ...] = (15.0, 20.0, 25.0, 30.0)
    image_sizes: tuple[tuple[int, int], ...] = ((640, 480), (1280, 720), (480, 640), (720, 1280))
    hand_frac: tuple[float, float] = (0.22, 0.6)  # hand length / image short side
    max_tilt_deg: float = 40.0  # out-of-plane rotation of the palm
    any_roll: bool = True  # any in-plane rotation (else ±60° from fingers-up)
    noise_frac: tuple[float, float] = (0.002, 0.015)  # jitter σ / hand size
    dropout: tuple[float, float] = (0.0, 0.08)  # share of frames lost
    outlier_rate: float = 0.01


def _closure_targets(score: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """(start closure [4], peak closure [4], pattern name) for a score."""
    if score == 2:
        start = rng.uniform(0.0, 0.12, 4)
        peak = rng.uniform(0.88, 1.02, 4)
        return start, peak, "full_fist"
    if score == 1:
        start = rng.uniform(0.0, 0.12, 4)
        if rng.random() < 0.55:
            amp = rng.uniform(0.18, 0.65)
            peak = start + amp * rng.uniform(0.85, 1.15, 4)
            return start, np.clip(peak, 0, 0.78), "partial_all"
        k = int(rng.integers(1, 4))
        which = rng.permutation(4)[:k]
        peak = start + rng.uniform(0.0, 0.06, 4)
        peak[which] = rng.uniform(0.55, 1.0, k)
        return start, peak, f"some_fingers_{k}"
    if rng.random() < 0.7:
        start = rng.uniform(0.0, 0.15, 4)
        pattern = "none_open"
    else:
        start = np.full(4, rng.uniform(0.15, 0.5)) + rng.uniform(-0.05, 0.05, 4)
        pattern = "none_flexed_rest"
    peak = start + rng.uniform(0.0, 0.08) * rng.uniform(0.5, 1.0, 4) * (rng.random() < 0.7)
    return start, peak, pattern


def make_trial(
    score: int,
    rng: np.random.Generator,
    *,
    options: SynthOptions | None = None,
    side: Side | None = None,
    mirrored: bool | None = None,
    noise: bool = True,
    with_z: bool = True,
    reach: float = 1.0,
    shape: HandShape | None = None,
    with_world: bool = True,
) -> tuple[Trial, dict[str, Any]]:
    """One synthetic trial with the given score (0, 1, 2) and a dict describing it.

    ``reach`` < 1 models a hand that cannot close fully (arthritis, age, or an "unaffected"
    hand that is limited too): every finger's and the thumb's closure is scaled by it, so
    the score describes the attempt *relative to this hand's own range* (the label the
    Fugl-Meyer item gives when the other hand closes just as far). The random stream does
    not depend on ``reach``: the same seed gives the same trial, only scaled. ``shape``
    fixes the hand's anatomy (default: a random one). ``with_world`` adds world landmarks
    (module docstring).
    """
    if score not in (0, 1, 2):
        raise ValueError(f"score must be 0, 1 or 2, got {score!r}")
    if not 0.0 < reach <= 1.0:
        raise ValueError(f"reach must be in (0, 1], got {reach!r}")
    o = options or SynthOptions()
    duration = float(rng.uniform(*o.duration_s))
    fps = float(rng.choice(o.fps))
    n = max(2, round(duration * fps))
    t = np.arange(n) / fps + rng.normal(0, 0.002, n).cumsum().clip(-0.01, 0.01)
    t = np.maximum.accumulate(t - t[0])
    shape = shape if shape is not None else HandShape.random(rng)
    start, peak, pattern = _closure_targets(score, rng)

    close_s = float(rng.uniform(0.25, 2.2))
    reopen = bool(rng.random() < 0.6)
    motion = Motion(
        rest_s=float(rng.uniform(0.1, 1.5)),
        close_s=close_s,
        hold_s=float(rng.uniform(0.2, 2.0)),
        open_s=float(rng.uniform(0.3, 1.5)),
        reopen=reopen,
        cycles=int(rng.choice([1, 1, 2])) if reopen else 1,
        jerky=bool(rng.random() < 0.25),
    )
    prog = motion.profile(t, rng)
    # Each finger lags a little; the peak is held only roughly (small drift).
    lag = rng.uniform(-0.15, 0.15, 4)
    prog_f = np.stack([np.interp(t - lag[f] * close_s, t, prog) for f in range(4)], axis=1)
    closure = start + (peak - start) * prog_f
    tremor_amp = rng.uniform(0.0, 0.03) if rng.random() < 0.4 else 0.0
    tremor_hz = rng.uniform(4.0, 9.0)
    closure += tremor_amp * np.sin(2 * np.pi * tremor_hz * t + rng.uniform(0, 6.3))[:, None]
    closure += rng.normal(0, 0.004, closure.shape).cumsum(axis=0) * 0.1
    thumb_peak = float(np.clip(peak.mean() + rng.normal(0, 0.12), 0, 1))
    thumb_start = float(rng.uniform(0.0, 0.2)) if pattern != "none_flexed_rest" else 0.4
    thumb = thumb_start + (thumb_peak - thumb_start) * prog_f.mean(axis=1)
    closure = closure * reach
    thumb = thumb * reach

    trial, view = render_trial(
        closure,
        thumb,
        t,
        shape,
        rng,
        options=o,
        side=side,
        mirrored=mirrored,
        noise=noise,
        with_z=with_z,
        with_world=with_world,
    )
    info = {
        "score": score,
        "pattern": pattern,
        "reach": reach,
        "start": start.round(3).tolist(),
        "peak": peak.round(3).tolist(),
        "side": view["side"],
        "mirrored": view["mirrored"],
        "fps": fps,
        "jerky": motion.jerky,
        "reopen": motion.reopen,
        "tremor": round(float(tremor_amp), 3),
        "hand_px": view["hand_px"],
    }
    return trial, info


def render_trial(
    closure: np.ndarray,
    thumb: np.ndarray,
    t: np.ndarray,
    shape: HandShape,
    rng: np.random.Generator,
    *,
    options: SynthOptions | None = None,
    side: Side | None = None,
    mirrored: bool | None = None,
    noise: bool = True,
    with_z: bool = True,
    with_world: bool = True,
) -> tuple[Trial, dict[str, Any]]:
    """A trial of a hand following per-finger ``closure`` [T, 4] and ``thumb`` [T] at times
    ``t``: posed, turned, placed in an image, mirrored, projected, with tracker-like noise,
    dropouts and (``with_world``) world landmarks (module docstring). Returns the trial and
    {"side", "mirrored", "hand_px"}. Every item's generator renders through this."""
    o = options or SynthOptions()
    n = len(t)
    # Pose over time: in-plane roll, tilt (about the hand's x and y axes), slow drift.
    roll0 = rng.uniform(-np.pi, np.pi) if o.any_roll else rng.uniform(-1.05, 1.05)
    tilt_x = np.radians(rng.uniform(-o.max_tilt_deg, o.max_tilt_deg))
    tilt_y = np.radians(rng.uniform(-o.max_tilt_deg, o.max_tilt_deg))
    drift = rng.normal(0, 0.08, 3) * (rng.random() < 0.5)
    w, h = o.image_sizes[int(rng.integers(len(o.image_sizes)))]
    if rng.random() < 0.5 and w > h:
        w, h = h, w
    hand_px = rng.uniform(*o.hand_frac) * min(w, h)  # ≈ wrist→middle tip length in px
    scale = hand_px / 2.0
    centre0 = np.array([w / 2, h / 2]) + rng.uniform(-0.15, 0.15, 2) * np.array([w, h])
    move = rng.normal(0, 0.03, 2) * min(w, h)
    # Camera frame for a right hand: palm faces the camera, fingers up, thumb to image left.
    base = np.diag([-1.0, -1.0, -1.0])

    lm = np.zeros((n, NUM_LANDMARKS, 3))
    cam_rot = np.zeros((n, 3, 3))
    posed = pose_hands(closure, thumb, shape)
    for i in range(n):
        frac = t[i] / max(t[-1], 1e-6)
        r = (
            _rot([0, 0, 1], roll0 + drift[0] * frac)
            @ _rot([1, 0, 0], tilt_x + drift[1] * frac)
            @ _rot([0, 1, 0], tilt_y + drift[2] * frac)
        )
        pts = posed[i] - np.array([0.0, 0.75, 0.0])  # rotate about the palm centre, not the wrist
        cam = (r @ base @ pts.T).T * scale
        cam_rot[i] = r @ base
        lm[i] = cam
        lm[i, :, :2] += centre0 + move * frac
    lm[:, :, 2] -= lm[:, :1, 2]  # z relative to the wrist, as MediaPipe reports it

    hand_side: Side = side or ("left" if rng.random() < 0.5 else "right")
    view_mirrored = bool(rng.random() < 0.5) if mirrored is None else mirrored
    # A left hand is the mirror image of a right one; a selfie view mirrors again.
    if (hand_side == "left") != view_mirrored:
        lm[:, :, 0] = w - 1 - lm[:, :, 0]
    # MediaPipe names the hand as if the image were mirrored.
    label_right = (hand_side == "right") == view_mirrored
    label = "Right" if label_right else "Left"
    other = "Left" if label_right else "Right"

    presence = rng.uniform(0.8, 1.0, n).astype(np.float32)
    if noise:
        size_px = hand_px
        sigma = rng.uniform(*o.noise_frac) * size_px
        a = 0.6  # AR(1): tracker jitter is smoothed by its filter
        jit = rng.normal(0, sigma, lm.shape)
        for i in range(1, n):
            jit[i] = a * jit[i - 1] + np.sqrt(1 - a * a) * jit[i]
        jit[:, list(range(4, 21, 4))] *= 1.5  # fingertips are noisier
        jit[..., 2] *= 2.0
        lm += jit
        out_frames = rng.random(n) < o.outlier_rate
        for fi in np.flatnonzero(out_frames):
            j = int(rng.integers(1, 21))
            lm[fi, j, :2] += rng.normal(0, 0.08 * size_px, 2)
    hands: list[str | None] = [label if rng.random() > 0.03 else other for _ in range(n)]
    if noise:
        drop = rng.uniform(*o.dropout)
        lost = rng.random(n) < drop * 0.5
        if rng.random() < 0.5:  # a burst: the tracker loses the hand for a moment
            k = int(rng.integers(2, max(3, int(drop * n) + 3)))
            s0 = int(rng.integers(0, max(1, n - k)))
            lost[s0 : s0 + k] = True
        lost[0] = lost[-1] = False
        lm[lost] = np.nan
        presence[lost] = 0.0
        for li in np.flatnonzero(lost):
            hands[li] = None
    world = (
        _world_landmarks(closure, thumb, shape, cam_rot, lm, flip=(hand_side == "left") != view_mirrored)
        if with_world
        else None
    )
    if not with_z:
        lm[..., 2] = np.nan
    trial = Trial(
        landmarks=lm.astype(np.float32),
        t=t,
        presence=presence,
        handedness=tuple(hands),
        image_size=(int(w), int(h)),
        side=hand_side,
        mirrored=view_mirrored,
        has_z=with_z,
        world=world,
    )
    return trial, {"side": hand_side, "mirrored": view_mirrored, "hand_px": round(float(hand_px), 1)}


def _world_landmarks(
    closure: np.ndarray,
    thumb: np.ndarray,
    shape: HandShape,
    cam_rot: np.ndarray,
    lm: np.ndarray,
    *,
    flip: bool,
) -> np.ndarray:
    """World landmarks [T, 21, 3] (metres) for the trial's closure, with the real model's bias
    and jitter (module docstring); NaN where the image landmarks were dropped."""
    n = closure.shape[0]
    # A stream of its own, seeded from the trial, so the image landmarks do not change.
    wrng = np.random.default_rng(zlib.crc32(np.nan_to_num(lm[:, :2, :2]).tobytes()))
    palm_m = wrng.uniform(0.08, 0.10)
    offset = wrng.normal(0.0, 0.04, 4)  # this hand's fingers read a little more or less bent
    # … and wanders slowly (the real output's open hands drift by ≈ 0.02–0.05 of a fist)
    t = np.arange(n)[:, None] / 30.0
    period = wrng.uniform(2.0, 5.0, 4)
    wander = wrng.uniform(0.0, 0.04, 4) * np.sin(2 * np.pi * t / period + wrng.uniform(0, 6.3, 4))
    wc = WORLD_OPEN + np.clip(closure, 0.0, 1.05) * (WORLD_FIST - WORLD_OPEN) + offset + wander
    pts = pose_hands(np.clip(wc, 0.0, 1.05), thumb, shape) - np.array([0.0, 0.75, 0.0])
    world = np.einsum("tij,tkj->tki", cam_rot, pts) * palm_m
    sigma = wrng.uniform(0.0003, 0.0012)
    a = 0.6
    jit = wrng.normal(0.0, sigma, world.shape)
    for i in range(1, n):
        jit[i] = a * jit[i - 1] + np.sqrt(1 - a * a) * jit[i]
    world += jit
    if flip:
        world[..., 0] *= -1.0
    world[np.isnan(lm[:, 0, 0])] = np.nan
    return world.astype(np.float32)


def make_trials(n_per_class: int, seed: int = 0, **kwargs: Any) -> list[tuple[Trial, dict[str, Any]]]:
    """``n_per_class`` trials of each score, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    return [make_trial(s, rng, **kwargs) for _ in range(n_per_class) for s in (0, 1, 2)]


# Both hands of one session are filmed by the same camera in the same set-up: the view
# varies less between the two trials of a pair than across sessions.
PAIR_OPTIONS = SynthOptions(max_tilt_deg=15.0, any_roll=False)


def make_pair(
    score: int,
    rng: np.random.Generator,
    *,
    reach_affected: float = 1.0,
    reach_reference: float = 1.0,
    with_z: bool = True,
    options: SynthOptions | None = None,
) -> tuple[Trial, Trial, dict[str, Any]]:
    """(affected trial, reference trial of the unaffected hand, info) for one session.

    The unaffected hand makes a full fist within its own range (``reach_reference``); the
    affected hand, on the other side, makes an attempt of ``score`` within
    ``reach_affected``. E.g. ``make_pair(2, rng, reach_affected=0.6, reach_reference=0.6)``:
    both hands close to 60 % — 2 compared with the unaffected hand, 1 in absolute terms.
    """
    o = options or PAIR_OPTIONS
    shape = HandShape.random(rng)  # one person: both hands share their anatomy
    side: Side = "left" if rng.random() < 0.5 else "right"
    other: Side = "right" if side == "left" else "left"
    mirrored = bool(rng.random() < 0.5)
    affected, info = make_trial(
        score,
        rng,
        options=o,
        side=side,
        mirrored=mirrored,
        with_z=with_z,
        reach=reach_affected,
        shape=shape,
    )
    reference, ref_info = make_trial(
        2,
        rng,
        options=o,
        side=other,
        mirrored=mirrored,
        with_z=with_z,
        reach=reach_reference,
        shape=shape,
    )
    return affected, reference, {"affected": info, "reference": ref_info}
