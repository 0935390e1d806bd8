#!/usr/bin/env python3
"""Make the scorer's trial data set: synthetic kinematic trials + real-derived trials.

**Reads ../shared/data** (the project's shared test material; see its MANIFEST.md) — only
this script and scripts/train_scorer.py do. It fails with a clear message when that folder
is absent (``--data`` points elsewhere; ``--synthetic-only`` skips the real material).

Output (``--out``, default ``.cache/trials``; never committed):

* ``dataset.npz``: ``x2`` [N, 200, 35] 2D features, ``x3`` [N, 200, 62] 3D features (zeros
  where the trial has no z), ``y`` scores, ``has_z``, ``split`` ("train" / "heldout"),
  ``source`` ("synthetic", "kazuhito", "mit_phone", …) and ``group`` (for grouped CV).
* ``heldout/<set>/*.json`` + ``labels.csv``: held-out trials in the ``flexscore track`` JSON
  format (2D keypoints without z for the real-derived sets) to score end to end with
  ``flexscore score --batch``.

Real-derived trials (labels follow the clinical item; see docs/VALIDATION.md):

* from the MediaPipe reference tracks (``videos/*.mp_reference.csv``, 2D pixel landmarks):
  full open→fist→open cycles replayed with open stretches around them = **2**; an open
  frame blended part-way (25–60 %) towards a fist frame and back, real half-closed
  ("grabbing") frames, or a count-down that stops with some fingers still out = **1**;
  open stretches replayed back and forth, or blended < 6 % = **0**;
* from ``landmarks/kazuhito_keypoint.csv`` (≈ 3,000 real open / closed 2D poses): an open
  pose moved over time towards a similar closed pose fully (2), part-way (1) or not (0).

Every real-derived trial is augmented: any in-plane rotation, an out-of-plane tilt up to 60°
(affine foreshortening; in a quarter of the trials the tilt changes while the hand moves),
scale, position, mirror, speed, frame rate, jitter and dropouts. **Held out entirely**: the
``hagrid_dynamic`` clip and the last 20 % of the kazuhito poses of each class (reported
separately).

Usage: ``python scripts/make_trials.py [--small] [--out DIR] [--data DIR]``
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device.trial.features import (  # noqa: E402
    N_STEPS,
    NUM_FEATURES,
    normalize_landmarks,
    trial_features,
)
from device.trial.io import save_track_json  # noqa: E402
from device.trial.synthetic import make_trial  # noqa: E402
from device.trial.types import Trial  # noqa: E402

log = logging.getLogger("make_trials")

DEFAULT_DATA = REPO.parent / "shared" / "data"
HELDOUT_CLIPS = ("hagrid_dynamic",)


# --------------------------------------------------------------------------- real clips


@dataclass(frozen=True)
class Clip:
    """A MediaPipe reference track and the frame ranges (from MANIFEST.md) used for labels."""

    name: str
    csv: str
    fps: float
    open: tuple[tuple[int, int], ...]  # open-hand stretches (inclusive)
    fist: tuple[tuple[int, int], ...]  # full-fist stretches
    cycles: tuple[tuple[int, int], ...] = ()  # full open→fist(→open) paths
    partial_paths: tuple[tuple[int, ...], ...] = ()  # frame paths ending part-way closed
    open_only: bool = False  # the clip has only open hands


CLIPS = (
    Clip(
        "mit_phone",
        "videos/mit_phone_open_fist_cycles.mp4.mp_reference.csv",
        30.0,
        open=((0, 27), (37, 41), (49, 64), (137, 143)),
        fist=((29, 35), (42, 48), (127, 136)),
        cycles=((14, 41), (37, 60), (137, 152)),
    ),
    Clip(
        "hagrid_dynamic",
        "videos/hagrid_dynamic_dnd_palm_fist_palm.mp4.mp_reference.csv",
        15.0,
        open=((0, 17), (56, 76)),
        fist=((30, 53),),
        cycles=((0, 76), (8, 62)),
        # closing ("grabbing", half-flexed, 18–29) and back without reaching the fist
        partial_paths=(
            (
                6,
                7,
                8,
                9,
                10,
                11,
                12,
                13,
                14,
                15,
                16,
                17,
                18,
                19,
                20,
                21,
                22,
                23,
                24,
                24,
                24,
                23,
                22,
                21,
                20,
                19,
                18,
                17,
                16,
                15,
            ),
        ),
    ),
    Clip(
        "hagrid_demo",
        "videos/hagrid_demo_fist_to_palm_counting.mp4.mp_reference.csv",
        25.0,
        open=((63, 78),),
        fist=((0, 2),),
        # played backwards: open palm → four → three → two → one finger → fist
        cycles=((78, 0),),
        # open → four → three → two (→ one) fingers out, stop: "only some fingers" flex
        partial_paths=(tuple(range(78, 34, -1)), tuple(range(78, 20, -1)), tuple(range(78, 5, -1))),
    ),
    Clip(
        "pixabay_reach",
        "videos/pixabay_hand_reach_open_129422.mp4.mp_reference.csv",
        25.0,
        open=((19, 201),),
        fist=(),
        open_only=True,
    ),
)


def load_reference_csv(path: Path) -> tuple[np.ndarray, list[str | None]]:
    """(xy [F, 21, 2] px with NaN rows for misses, handedness labels) from a reference CSV."""
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    xy = np.full((len(rows), 21, 2), np.nan)
    hands: list[str | None] = []
    for i, r in enumerate(rows):
        if r["detected"] == "1":
            xy[i] = [[float(r[f"x{j}"]), float(r[f"y{j}"])] for j in range(21)]
            hands.append(r["handedness"] or None)
        else:
            hands.append(None)
    return xy, hands


def load_kazuhito(path: Path) -> dict[int, np.ndarray]:
    """Poses by label (0 open, 1 close) as [N, 21, 2] wrist-relative, y down, max-abs 1."""
    data = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return {lab: data[data[:, 0] == lab, 1:].reshape(-1, 21, 2) for lab in (0, 1)}


# --------------------------------------------------------------------------- label hygiene

# The real material's labels are coarse (a gesture classifier's "Open" / "Close", frame
# ranges read by eye). A pose or frame is used for a label only when its 2D geometry shows
# what the clinical item means by it; the same checks apply to training and held-out data.
OPEN_KEEP = 0.9  # an "open" clip frame keeps ≥ 90 % of its stretch's median openness
OPEN_MIN_EXT = 0.85  # open pose: mean fingertip-to-palm-centre distance ≥ this (palm sizes)
OPEN_MIN_TIP_ABOVE = 0.3  # open pose: every fingertip ≥ this above its MCP (palm axis)
FIST_MAX_TIP = 0.65  # fist pose: every fingertip within this of the palm centre (real fists ≤ 0.5)
PALM = [0, 5, 9, 13, 17]
FINGER_TIPS = [8, 12, 16, 20]
FINGER_MCPS = [5, 9, 13, 17]


def pose_geometry(xy: np.ndarray) -> dict[str, np.ndarray]:
    """2D hand-shape measures of poses [N, 21, 2] (pixels or any scale, y down).

    ``tip_palm`` [N, 4]: fingertip (index…pinky) to palm-centre distance; ``tip_above``
    [N, 4]: fingertip height above its MCP along the wrist→middle-MCP axis; ``ext`` [N]:
    mean of ``tip_palm`` — all in palm sizes (features.palm_size), in-plane rotation free.
    """
    lm = np.concatenate([xy, np.zeros(xy.shape[:2] + (1,))], axis=2)
    c = normalize_landmarks(lm, False)[..., :2]
    centre = c[:, PALM].mean(axis=1)
    tip_palm = np.linalg.norm(c[:, FINGER_TIPS] - centre[:, None], axis=-1)
    tip_above = c[:, FINGER_TIPS, 1] - c[:, FINGER_MCPS, 1]
    return {"tip_palm": tip_palm, "tip_above": tip_above, "ext": tip_palm.mean(axis=1)}


def is_open_pose(xy: np.ndarray) -> np.ndarray:
    g = pose_geometry(xy)
    return np.asarray((g["ext"] >= OPEN_MIN_EXT) & (g["tip_above"].min(axis=1) >= OPEN_MIN_TIP_ABOVE))


def is_fist_pose(xy: np.ndarray) -> np.ndarray:
    return np.asarray(pose_geometry(xy)["tip_palm"].max(axis=1) <= FIST_MAX_TIP)


def clean_open_ranges(clip: Clip, xy: np.ndarray) -> tuple[tuple[int, int], ...]:
    """The clip's open stretches without the frames where the hand already closes.

    The ranges in MANIFEST.md were read by eye; the 2D landmarks show the fingers starting
    to bend a few frames earlier (hagrid_dynamic 14–17). Keep the runs (≥ 3 frames) whose
    openness is ≥ ``OPEN_KEEP`` × the stretch's median.
    """
    ext = np.full(len(xy), np.nan)
    ok = ~np.isnan(xy).any(axis=(1, 2))
    ext[ok] = pose_geometry(xy[ok])["ext"]
    out: list[tuple[int, int]] = []
    for a, b in clip.open:
        idx = np.arange(a, b + 1)
        good = np.isfinite(ext[idx]) & (ext[idx] >= OPEN_KEEP * np.nanmedian(ext[idx]))
        start = None
        for i, g in zip(idx, good, strict=True):
            if g and start is None:
                start = int(i)
            if (not g or i == b) and start is not None:
                end = int(i) if g else int(i) - 1
                if end - start >= 2:
                    out.append((start, end))
                start = None
    if out != list(clip.open):
        log.info("%s: open stretches %s → %s (frames already closing dropped)", clip.name, clip.open, out)
    return tuple(out)


# --------------------------------------------------------------------------- augmentation


def _minjerk(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.asarray(x**3 * (10 - 15 * x + 6 * x**2))


def _pingpong(a: int, b: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n frame positions wandering back and forth over [a, b] (a still-ish open hand)."""
    if b <= a:
        return np.full(n, float(a))
    period = 2 * (b - a)
    start = rng.uniform(0, period)
    pos = (start + np.arange(n) * rng.uniform(0.3, 1.0)) % period
    return np.asarray(a + np.where(pos > b - a, period - pos, pos))


def _sample(xy: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Landmarks at fractional frame positions (linear between frames)."""
    lo = np.floor(path).astype(int).clip(0, len(xy) - 1)
    hi = (lo + 1).clip(0, len(xy) - 1)
    w = (path - lo)[:, None, None]
    return np.asarray((1 - w) * xy[lo] + w * xy[hi])


MAX_TILT_DEG = 60.0  # out-of-plane tilt of the foreshortening (was 35°: tilted fists read as 1)
TURNING_SHARE = 0.25  # share of trials whose tilt changes while the hand moves


def foreshorten(rng: np.random.Generator, max_tilt_deg: float = MAX_TILT_DEG) -> np.ndarray:
    """A 2×2 map that approximates an out-of-plane tilt of a flat-ish hand: the image
    shrinks by cos(tilt) along a random direction (identity for 30 % of the trials)."""
    if rng.random() < 0.3:
        return np.eye(2)
    phi = rng.uniform(0, np.pi)
    k = np.cos(np.radians(rng.uniform(0.0, max_tilt_deg)))
    r = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
    return np.asarray(r @ np.diag([k, 1.0]) @ r.T)


def turning(n: int, rng: np.random.Generator, max_tilt_deg: float = 50.0) -> np.ndarray:
    """Per-frame 2×2 maps [n, 2, 2] of a hand whose tilt changes during the trial: the
    image shrinks along a random direction by cos(tilt), the tilt going from one random
    angle to another (0–``max_tilt_deg``) with a smooth ramp at a random time."""
    phi = rng.uniform(0, np.pi)
    a0, a1 = np.radians(rng.uniform(0.0, max_tilt_deg, 2))
    t0, dur = rng.uniform(0.0, 0.7), rng.uniform(0.2, 0.8)
    prog = _minjerk((np.linspace(0.0, 1.0, n) - t0) / dur)
    k = np.cos(a0 + (a1 - a0) * prog)
    r = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
    d = np.zeros((n, 2, 2))
    d[:, 0, 0], d[:, 1, 1] = k, 1.0
    return np.asarray(r @ d @ r.T)


def render(
    pts: np.ndarray,
    src_fps: float,
    rng: np.random.Generator,
    *,
    labels: list[str | None] | None = None,
    mirrored_src: bool = False,
) -> Trial:
    """Turn a source-rate pose sequence [S, 21, 2] into an augmented 2D trial.

    Speed (0.7–1.4×), output frame rate, any in-plane rotation, a foreshortening (an
    out-of-plane tilt up to ``MAX_TILT_DEG``, affine; in ``TURNING_SHARE`` of the trials
    changing during the trial), scale, position, mirror, jitter and dropouts. The labels (MediaPipe
    handedness) swap when the image is mirrored.
    """
    speed = rng.uniform(0.7, 1.4)
    fps = float(rng.choice([15.0, 20.0, 25.0, 30.0]))
    dur = len(pts) / src_fps / speed
    n = max(3, int(dur * fps))
    src = np.linspace(0, len(pts) - 1, n)
    lm = _sample(pts, src)
    # similarity transform about the hand centre → a new image
    w, h = [(640, 480), (1280, 720), (480, 640), (720, 1280)][int(rng.integers(4))]
    centre = np.nanmean(lm.reshape(-1, 2), axis=0)
    span = np.nanmax(lm.reshape(-1, 2), axis=0) - np.nanmin(lm.reshape(-1, 2), axis=0)
    size = float(np.nanmax(span))
    target = rng.uniform(0.3, 0.6) * min(w, h)
    s = target / max(size, 1e-6)
    th = rng.uniform(-np.pi, np.pi)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    if rng.random() < TURNING_SHARE:
        p = np.einsum("nij,nkj->nki", turning(n, rng), lm - centre) @ rot.T * s
    else:
        p = (lm - centre) @ foreshorten(rng).T @ rot.T * s
    mirror = bool(rng.random() < 0.5)
    if mirror:
        p[..., 0] *= -1
    lo, hi = p.reshape(-1, 2).min(axis=0), p.reshape(-1, 2).max(axis=0)
    room = np.array([w, h]) - (hi - lo) - 8
    off = -lo + 4 + rng.uniform(0, 1, 2) * np.maximum(room, 0)
    p = p + off
    sigma = rng.uniform(0.0, 0.006) * target
    p = p + rng.normal(0, sigma, p.shape)
    lab = labels[0] if labels else None
    if lab is not None and mirror:
        lab = "Left" if lab == "Right" else "Right"
    landmarks = np.concatenate([p, np.full(p.shape[:2] + (1,), np.nan)], axis=2)
    hands: list[str | None] = [lab] * n
    lost = rng.random(n) < rng.uniform(0.0, 0.05)
    lost[0] = lost[-1] = False
    landmarks[lost] = np.nan
    for i in np.flatnonzero(lost):
        hands[i] = None
    return Trial(
        landmarks=landmarks.astype(np.float32),
        t=np.arange(n) / fps,
        presence=np.where(lost, 0.0, 0.95).astype(np.float32),
        handedness=tuple(hands),
        image_size=(w, h),
        side=None,
        mirrored=mirrored_src,
        has_z=False,
    )


def _pad_open(clip: Clip, core: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Still open-hand stretches before a movement path; the path goes back to open.

    A path that ends closed (or part-way) is held there and, in 60 % of the trials, played
    back to the open hand followed by another open stretch — never a jump to an open frame.
    """
    a, b = clip.open[int(rng.integers(len(clip.open)))]
    pre = _pingpong(a, b, int(rng.uniform(0.3, 1.5) * clip.fps), rng)
    parts = [pre, core]
    back_open = any(lo <= core[-1] <= hi for lo, hi in clip.open)
    if not back_open:
        parts.append(np.full(int(rng.uniform(0.3, 1.5) * clip.fps), core[-1]))
        if rng.random() < 0.6:
            parts.append(core[::-1])
            back_open = True
    if back_open and rng.random() < 0.6:
        parts.append(_pingpong(a, b, int(rng.uniform(0.2, 1.2) * clip.fps), rng))
    return np.concatenate([np.asarray(p, dtype=float) for p in parts])


# Landmark → finger (0 thumb, 1–4 index…pinky); the wrist (−1) follows the mean.
_FINGER_OF = np.array([-1, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4])
_ALIGN_POINTS = [0, 1, 5, 9, 13, 17]


def finger_alphas(score: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """How far each finger (thumb, index…pinky) goes from the open towards the fist pose.

    2: every finger ≥ 0.92 (thumb ≥ 0.6); 0: a trace (≤ 0.06); 1: all fingers part-way
    (0.2–0.6, alike or each its own), or 1–3 fingers closing fully while the others stay.
    """
    if score == 2:
        a = rng.uniform(0.92, 1.0, 5)
        a[0] = rng.uniform(0.6, 1.0)
        return a, "full_blend"
    if score == 0:
        return rng.uniform(0.0, 0.06) * rng.uniform(0.5, 1.0, 5), "trace_blend"
    r = rng.random()
    if r < 0.45:
        return np.clip(rng.uniform(0.2, 0.55) * rng.uniform(0.85, 1.15, 5), 0.0, 0.62), "partial_all"
    if r < 0.7:
        return rng.uniform(0.2, 0.6, 5), "partial_mixed"
    k = int(rng.integers(1, 4))
    a = rng.uniform(0.0, 0.05, 5)
    a[1 + rng.permutation(4)[:k]] = rng.uniform(0.9, 1.0, k)
    a[0] = rng.uniform(0.0, 0.5)
    return a, f"some_fingers_{k}"


def blend_profile(n: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Progress [n, 5] of each finger over time: rest, min-jerk close (each finger lags a
    little), hold, and in 60 % of the trials re-open."""
    t = np.arange(n) / fps
    t0, ramp, hold = rng.uniform(0.3, 1.5), rng.uniform(0.3, 1.8), rng.uniform(0.3, 1.5)
    lag = rng.uniform(-0.15, 0.15, 5) * ramp
    prog = _minjerk((t[:, None] - t0 - lag) / ramp)
    if rng.random() < 0.6:
        prog = prog * (1 - _minjerk((t[:, None] - t0 - lag - ramp - hold) / rng.uniform(0.4, 1.2)))
    return np.asarray(prog)


def align_to(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``src`` poses [n, 21, 2] moved by the similarity that best fits their palm to ``dst``'s."""
    a = src[:, _ALIGN_POINTS, 0] + 1j * src[:, _ALIGN_POINTS, 1]
    b = dst[:, _ALIGN_POINTS, 0] + 1j * dst[:, _ALIGN_POINTS, 1]
    ca, cb = a.mean(axis=1, keepdims=True), b.mean(axis=1, keepdims=True)
    k = (np.conj(a - ca) * (b - cb)).sum(axis=1, keepdims=True) / np.maximum(
        (np.abs(a - ca) ** 2).sum(axis=1, keepdims=True), 1e-9
    )
    z = (src[..., 0] + 1j * src[..., 1] - ca) * k + cb
    return np.stack([z.real, z.imag], axis=-1)


def blend_poses(
    open_seq: np.ndarray, fist_seq: np.ndarray, alpha: np.ndarray, prog: np.ndarray
) -> np.ndarray:
    """Per-finger blend of open poses [n, 21, 2] towards (palm-aligned) fist poses."""
    fist = align_to(fist_seq, open_seq)
    w5 = prog * alpha  # [n, 5]
    w = np.concatenate([w5[:, 1:].mean(axis=1, keepdims=True), w5[:, _FINGER_OF[1:]]], axis=1)
    return np.asarray((1 - w[..., None]) * open_seq + w[..., None] * fist)


def _blend_path(xy: np.ndarray, clip: Clip, score: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Real open frames moving per finger part- or all the way to a real fist frame."""
    a, b = clip.open[int(rng.integers(len(clip.open)))]
    fa, fb = clip.fist[int(rng.integers(len(clip.fist)))]
    n = int(rng.uniform(4.5, 7.0) * clip.fps)
    open_seq = _sample(xy, _pingpong(a, b, n, rng))
    fist_seq = _sample(xy, np.full(n, rng.uniform(fa, fb)))
    alpha, how = finger_alphas(score, rng)
    return blend_poses(open_seq, fist_seq, alpha, blend_profile(n, clip.fps, rng)), how


def clip_trials(
    clip: Clip, xy: np.ndarray, hands: list[str | None], n_per_class: int, rng: np.random.Generator
) -> list[tuple[Trial, int, str]]:
    """Real-derived trials of every score a clip supports."""
    out: list[tuple[Trial, int, str]] = []
    label = [h for h in hands if h][:1]

    def add(pts: np.ndarray, score: int, how: str) -> None:
        out.append((render(pts, clip.fps, rng, labels=label), score, how))

    for _ in range(n_per_class):
        # 0: an open hand, still or moving, or a trace of closing (< 6 %)
        a, b = clip.open[int(rng.integers(len(clip.open)))]
        if clip.open_only or rng.random() < 0.6:
            n = int(rng.uniform(4.5, 7.0) * clip.fps)
            if clip.open_only and b - a > n:
                s0 = int(rng.integers(a, b - n))
                path = np.arange(s0, s0 + n, dtype=float)
            else:
                path = _pingpong(a, b, n, rng)
            add(_sample(xy, path), 0, "open_stretch")
        else:
            add(*_blend_path(xy, clip, 0, rng)[:1], 0, "trace_blend")
        if clip.open_only:
            continue
        # 2: a full cycle (real frames) or open poses blended all the way to a fist
        if clip.cycles and rng.random() < 0.5:
            c0, c1 = clip.cycles[int(rng.integers(len(clip.cycles)))]
            step = 1 if c1 >= c0 else -1
            core = np.arange(c0, c1 + step, step, dtype=float)
            add(_sample(xy, _pad_open(clip, core, rng)), 2, "full_cycle")
        else:
            add(*_blend_path(xy, clip, 2, rng)[:1], 2, "full_blend")
        # 1: part-way: real half-closed / some-fingers frames, or a per-finger blend
        if clip.partial_paths and rng.random() < 0.4:
            core = np.asarray(clip.partial_paths[int(rng.integers(len(clip.partial_paths)))], float)
            add(_sample(xy, _pad_open(clip, core, rng)), 1, "partial_path")
        else:
            pts, how = _blend_path(xy, clip, 1, rng)
            add(pts, 1, how)
    return out


def kazuhito_trials(
    poses: dict[int, np.ndarray], n_per_class: int, rng: np.random.Generator
) -> list[tuple[Trial, int, str]]:
    """Real open poses moved over time, finger by finger, towards a similar real fist (2D)."""
    opens, closes = poses[0], poses[1]
    palm = [0, 1, 5, 9, 13, 17]
    out: list[tuple[Trial, int, str]] = []
    for score in [0, 1, 2] * n_per_class:
        po = opens[int(rng.integers(len(opens)))]
        cand = closes[rng.choice(len(closes), size=min(60, len(closes)), replace=False)]
        d = np.linalg.norm(align_to(cand, np.broadcast_to(po, cand.shape))[:, palm] - po[palm], axis=-1)
        pc = cand[int(np.argmin(d.mean(axis=1)))]
        fps = 25.0
        n = int(rng.uniform(4.5, 7.0) * fps)
        alpha, how = finger_alphas(score, rng)
        prog = blend_profile(n, fps, rng)
        if score == 0 and rng.random() < 0.5:
            prog, how = np.zeros_like(prog), "still"
        # keypoints are wrist-relative in [-1, 1]: scale to ~200 px so render() sizes them
        seq = blend_poses(np.repeat(po[None], n, 0), np.repeat(pc[None], n, 0), alpha, prog) * 100.0
        seq = seq + rng.normal(0, 0.4, seq.shape).cumsum(axis=0) * 0.05  # slow drift
        out.append((render(seq, fps, rng, labels=None), score, how))
    return out


# --------------------------------------------------------------------------- main


def features_of(trial: Trial) -> tuple[np.ndarray, np.ndarray]:
    x2 = trial_features(trial, "2d")
    x3 = trial_features(trial, "3d") if trial.has_z else np.zeros((N_STEPS, NUM_FEATURES["3d"]))
    return x2, x3


def build(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    items: list[dict[str, Any]] = []  # trial, y, split, source, group, how

    def add_many(
        make: Callable[[], list[tuple[Trial, int, str]]], split: str, source: str, group: str
    ) -> None:
        for trial, y, how in make():
            items.append(
                {"trial": trial, "y": y, "split": split, "source": source, "group": group, "how": how}
            )

    n_syn, n_syn_test = (60, 30) if args.small else (args.synthetic, args.synthetic_test)
    syn_rng = np.random.default_rng(args.seed + 1)
    for i in tqdm(range(n_syn * 3), desc="synthetic train", unit="trial"):
        trial, info = make_trial(i % 3, syn_rng)
        items.append(
            {
                "trial": trial,
                "y": i % 3,
                "split": "train",
                "source": "synthetic",
                "group": f"syn{i}",
                "how": info["pattern"],
            }
        )
    syn_rng = np.random.default_rng(args.seed + 2)
    for i in tqdm(range(n_syn_test * 3), desc="synthetic held-out", unit="trial"):
        trial, info = make_trial(i % 3, syn_rng)
        items.append(
            {
                "trial": trial,
                "y": i % 3,
                "split": "heldout",
                "source": "synthetic",
                "group": f"syntest{i}",
                "how": info["pattern"],
            }
        )

    if not args.synthetic_only:
        data = Path(args.data)
        if not (data / "MANIFEST.md").is_file():
            raise SystemExit(
                f"make_trials: the shared data folder {data} is missing (expected MANIFEST.md "
                "there). Point --data at ../shared/data, or use --synthetic-only."
            )
        log.info("reading real material from %s", data)
        n_clip = 20 if args.small else args.per_clip
        for clip in CLIPS:
            xy, hands = load_reference_csv(data / clip.csv)
            cleaned = replace(clip, open=clean_open_ranges(clip, xy))
            split = "heldout" if clip.name in HELDOUT_CLIPS else "train"
            add_many(
                lambda c=cleaned, x=xy, h=hands: clip_trials(c, x, h, n_clip, rng),
                split,
                clip.name,
                clip.name,
            )
        poses = load_kazuhito(data / "landmarks" / "kazuhito_keypoint.csv")
        train_p, test_p = {}, {}
        for lab, arr in poses.items():
            cut = int(len(arr) * 0.8)  # contiguous: neighbouring rows are near-duplicates
            # the split is made first, the geometry check (label hygiene) after, per part
            keep = is_open_pose(arr) if lab == 0 else is_fist_pose(arr)
            train_p[lab], test_p[lab] = arr[:cut][keep[:cut]], arr[cut:][keep[cut:]]
            log.info(
                "kazuhito %s poses: train %d of %d, held-out %d of %d pass the %s check",
                "open" if lab == 0 else "closed",
                len(train_p[lab]),
                cut,
                len(test_p[lab]),
                len(arr) - cut,
                "open-hand" if lab == 0 else "fist",
            )
        n_k, n_k_test = (20, 20) if args.small else (args.kazuhito, args.kazuhito_test)
        add_many(lambda: kazuhito_trials(train_p, n_k, rng), "train", "kazuhito", "kazuhito")
        add_many(lambda: kazuhito_trials(test_p, n_k_test, rng), "heldout", "kazuhito", "kazuhito_test")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = len(items)
    x2 = np.zeros((n, N_STEPS, NUM_FEATURES["2d"]), np.float32)
    x3 = np.zeros((n, N_STEPS, NUM_FEATURES["3d"]), np.float32)
    for i, it in enumerate(tqdm(items, desc="features", unit="trial")):
        x2[i], x3[i] = features_of(it["trial"])
    meta = {k: np.array([it[k] for it in items]) for k in ("y", "split", "source", "group", "how")}
    has_z = np.array([it["trial"].has_z for it in items])
    np.savez_compressed(out / "dataset.npz", x2=x2, x3=x3, has_z=has_z, **meta)

    # held-out trials as track JSON (real ones without z) for `flexscore score --batch`
    held = out / "heldout"
    shutil.rmtree(held, ignore_errors=True)
    counts: dict[str, int] = {}
    for it in items:
        if it["split"] != "heldout":
            continue
        d = held / it["source"]
        d.mkdir(parents=True, exist_ok=True)
        k = counts.get(it["source"], 0)
        counts[it["source"]] = k + 1
        save_track_json(it["trial"], d / f"{it['source']}_{k:04d}.json")
        with (d / "labels.csv").open("a" if k else "w", encoding="utf-8") as f:
            if not k:
                f.write("file,score,how\n")
            f.write(f"{it['source']}_{k:04d}.json,{it['y']},{it['how']}\n")
    summary = {
        "trials": n,
        "by_split_source": {
            f"{s}/{src}": int(((meta["split"] == s) & (meta["source"] == src)).sum())
            for s in ("train", "heldout")
            for src in sorted(set(meta["source"].tolist()))
            if ((meta["split"] == s) & (meta["source"] == src)).any()
        },
        "by_score": {int(k): int((meta["y"] == k).sum()) for k in (0, 1, 2)},
        "seed": args.seed,
        "small": args.small,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(REPO / ".cache" / "trials"))
    p.add_argument("--data", default=str(DEFAULT_DATA), help="the shared data folder")
    p.add_argument("--seed", type=int, default=20261126)
    p.add_argument("--small", action="store_true", help="a few hundred trials (CI)")
    p.add_argument("--synthetic-only", action="store_true", help="do not read ../shared/data")
    p.add_argument("--synthetic", type=int, default=1000, help="synthetic train trials per class")
    p.add_argument("--synthetic-test", type=int, default=150, help="synthetic held-out per class")
    p.add_argument("--per-clip", type=int, default=150, help="trials per class per real clip")
    p.add_argument("--kazuhito", type=int, default=500, help="kazuhito train trials per class")
    p.add_argument("--kazuhito-test", type=int, default=100, help="kazuhito held-out per class")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    summary = build(args)
    print(json.dumps(summary, indent=2))
    print(f"done in {time.perf_counter() - t0:.0f} s → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
