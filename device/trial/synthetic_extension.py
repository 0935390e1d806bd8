"""Synthetic trials of the mass-extension item: from a full fist, open the hand.

The same hand, camera, noise and world-landmark model as the mass-flexion generator
(:mod:`device.trial.synthetic`: :func:`~device.trial.synthetic.render_trial`); only the
closure trajectory differs. A trial starts in a fist (held 0.3–1.5 s) — or, in
``COMBINED_SHARE`` of the trials, open, closing into the fist first (the protocol "make a
fist, then open your hand fully", which also lets the palm detector find the open hand) — and
then opens:

* **2**: every finger opens back to an open hand (closure ≤ 0.12; 0 open … 1 fist);
* **1**: clearly partial: all fingers open by 0.3–0.6 of the range (ending ≥ 0.42 closed:
  "partial extension, or can release an active grasp"), or only 1–3 fingers open fully
  while the others stay closed;
* **0**: no opening or a trace (≤ 0.08), from a fist or a hand held flexed (≥ 0.7).

The gaps between the bands are not generated, so labels stay clear (as for flexion).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from device.trial.synthetic import HandShape, Motion, SynthOptions, render_trial
from device.trial.types import Side, Trial

COMBINED_SHARE = 0.3  # share of trials recorded open → fist → open


def _targets(score: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """(closed closure [4], open-end closure [4], pattern) for a score."""
    closed = rng.uniform(0.86, 1.02, 4)
    if score == 2:
        return closed, rng.uniform(-0.02, 0.12, 4), "full_open"
    if score == 1:
        if rng.random() < 0.6:
            amp = rng.uniform(0.3, 0.6) * rng.uniform(0.9, 1.1, 4)
            return closed, np.maximum(closed - amp, 0.42), "partial_all"
        k = int(rng.integers(1, 4))
        which = rng.permutation(4)[:k]
        end = closed - rng.uniform(0.0, 0.06, 4)
        end[which] = rng.uniform(-0.02, 0.12, k)
        return closed, end, f"some_fingers_{k}"
    if rng.random() < 0.25:
        closed = np.full(4, rng.uniform(0.7, 0.86)) + rng.uniform(-0.04, 0.04, 4)  # held flexed
        pattern = "none_flexed"
    else:
        pattern = "none_fist"
    end = closed - rng.uniform(0.0, 0.08) * rng.uniform(0.5, 1.0, 4) * (rng.random() < 0.7)
    return closed, end, pattern


def make_extension_trial(
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
    combined: bool | None = None,
) -> tuple[Trial, dict[str, Any]]:
    """One synthetic mass-extension trial with the given score and a dict describing it.

    ``reach`` < 1: a hand whose own range is limited (its open hand stays flexed by
    1 − ``reach`` of the range: the opening is judged relative to it, as in the reference
    mode). ``combined``: start open and close first (default: random, ``COMBINED_SHARE``).
    The other options are those of :func:`device.trial.synthetic.make_trial`.
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
    closed, end, pattern = _targets(score, rng)
    is_combined = bool(rng.random() < COMBINED_SHARE) if combined is None else combined
    start = rng.uniform(0.0, 0.12, 4)

    t0 = 0.0
    closing = np.ones(n)
    if is_combined:  # open, then close into the fist (fast and full: flexion is not judged here)
        rest, close_s = float(rng.uniform(0.2, 1.0)), float(rng.uniform(0.3, 1.2))
        closing = Motion(rest, close_s, 10.0, 0.3, False, 1, False).profile(t, rng)
        t0 = rest + close_s
    hold = float(rng.uniform(0.3, 1.5))
    open_s = float(rng.uniform(0.3, 1.8))
    open_s = min(open_s, max(0.3, duration - t0 - hold - 0.6))
    opening = Motion(t0 + hold, open_s, 10.0, 0.3, False, 1, bool(rng.random() < 0.25)).profile(t, rng)
    lag = rng.uniform(-0.15, 0.15, 4)
    op_f = np.stack([np.interp(t - lag[f] * open_s, t, opening) for f in range(4)], axis=1)
    closure = start + (closed - start) * closing[:, None] - (closed - end) * op_f
    tremor_amp = rng.uniform(0.0, 0.03) if rng.random() < 0.4 else 0.0
    closure += tremor_amp * np.sin(2 * np.pi * rng.uniform(4.0, 9.0) * t + rng.uniform(0, 6.3))[:, None]
    closure += rng.normal(0, 0.004, closure.shape).cumsum(axis=0) * 0.1
    thumb_closed = float(np.clip(closed.mean() + rng.normal(0, 0.1), 0, 1))
    thumb_end = float(np.clip(end.mean() + rng.normal(0, 0.1), 0, 1))
    thumb_start = float(rng.uniform(0.0, 0.2))
    thumb = (
        thumb_start
        + (thumb_closed - thumb_start) * closing
        - (thumb_closed - thumb_end) * op_f.mean(axis=1)
    )
    # a limited hand: its most open posture stays flexed by (1 - reach) of the range
    closure = 1.0 - (1.0 - closure) * reach
    thumb = 1.0 - (1.0 - thumb) * reach
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
        "item": "mass_extension",
        "pattern": pattern,
        "combined": is_combined,
        "reach": reach,
        "closed": closed.round(3).tolist(),
        "end": end.round(3).tolist(),
        "fps": fps,
        "tremor": round(float(tremor_amp), 3),
        **view,
    }
    return trial, info


def make_extension_trials(
    n_per_class: int, seed: int = 0, **kwargs: Any
) -> list[tuple[Trial, dict[str, Any]]]:
    """``n_per_class`` trials of each score, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    return [make_extension_trial(s, rng, **kwargs) for _ in range(n_per_class) for s in (0, 1, 2)]
