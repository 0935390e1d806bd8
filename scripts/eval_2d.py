#!/usr/bin/env python3
"""Evaluate the 2D-only path (another tracker's keypoints) on held-out real hand poses,
changed in ways the training data does not contain.

**Reads ../shared/data** (the project's shared material) when it is there; exits 0 with a
note when it is not (``--data`` points elsewhere).

Sources — held out of every training set (scripts/make_trials.py ``HELDOUT_CLIPS`` and the
last 20 % of each kazuhito class), never training material:

* ``hagrid_dynamic``: the MediaPipe reference track of the held-out clip — a real open →
  fist → open cycle with still open stretches around it (2), the real half-closed
  ("grabbing") frames played to and back (1), an open stretch replayed (0);
* ``kazuhito``: a held-out real open pose moved, finger by finger, to the most similar
  held-out real fist (2), part-way or only some fingers (1), or still / a trace (0) —
  the same label definitions and pose checks as make_trials.py.

Each base movement is then shown under one alteration (``CONDITIONS``): rotations of any
angle, scale and position; a strong affine foreshortening (tilt 40–60°); a real
*perspective* projection of the hand's plane tilted 30–60° towards a pinhole camera close
by (not the affine map the training uses); a hand whose tilt changes while it moves;
non-uniform time (pauses, speed ramps 0.5–2×); dropped frames in bursts; and all together.

Every trial goes the way ``flexscore score --landmarks FILE`` takes it: a ``flexscore
track`` JSON document with 2D landmarks (no z, no ``world``) → :func:`device.trial.io.
trial_from_track_doc` → :class:`device.scoring.decide.Decider` with the default config and
the repository's models. Reported per condition: right / wrong / declined (not scorable)
and confident wrong (wrong with confidence ≥ 0.9), how many scored trials were flagged for
review, how often the rule alone was right, and which true → given scores the misses were.

Usage: ``python scripts/eval_2d.py [--per-class 20] [--seed 20261204] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from device.config import Config  # noqa: E402
from device.scoring.decide import Decider  # noqa: E402
from device.trial.io import trial_from_track_doc, trial_to_track_doc  # noqa: E402
from device.trial.types import Trial  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
CONFIDENT = 0.9

Transform = Callable[[np.ndarray, float, np.random.Generator], tuple[np.ndarray, np.ndarray]]


# --------------------------------------------------------------------------- base movements


def base_movements(data: Path, per_class: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Held-out real pose sequences [S, 21, 2] (y down) with their score and source rate."""
    import make_trials as mt

    out: list[dict[str, Any]] = []
    clip = next(c for c in mt.CLIPS if c.name == "hagrid_dynamic")
    assert clip.name in mt.HELDOUT_CLIPS
    xy, hands = mt.load_reference_csv(data / clip.csv)
    clip = replace(clip, open=mt.clean_open_ranges(clip, xy))
    label = next((h for h in hands if h), None)
    for score in (0, 1, 2):
        for _ in range(per_class):
            if score == 0:
                a, b = clip.open[int(rng.integers(len(clip.open)))]
                path = mt._pingpong(a, b, int(rng.uniform(4.5, 7.0) * clip.fps), rng)
                how = "open_stretch"
            elif score == 1:
                core = np.asarray(clip.partial_paths[0], float)
                path, how = mt._pad_open(clip, core, rng), "partial_path"
            else:
                c0, c1 = clip.cycles[int(rng.integers(len(clip.cycles)))]
                path = mt._pad_open(clip, np.arange(c0, c1 + 1, dtype=float), rng)
                how = "full_cycle"
            out.append(
                {
                    "pts": mt._sample(xy, path),
                    "fps": clip.fps,
                    "score": score,
                    "source": clip.name,
                    "how": how,
                    "label": label,
                }
            )
    poses = mt.load_kazuhito(data / "landmarks" / "kazuhito_keypoint.csv")
    held: dict[int, np.ndarray] = {}
    for lab, arr in poses.items():
        cut = int(len(arr) * 0.8)  # the held-out block, exactly as make_trials.py splits it
        keep = mt.is_open_pose(arr) if lab == 0 else mt.is_fist_pose(arr)
        held[lab] = arr[cut:][keep[cut:]]
    for trial_pts, score, how in kazuhito_sequences(held, per_class, rng):
        out.append(
            {"pts": trial_pts, "fps": 25.0, "score": score, "source": "kazuhito", "how": how, "label": None}
        )
    return out


def kazuhito_sequences(
    poses: dict[int, np.ndarray], per_class: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, int, str]]:
    """As make_trials.kazuhito_trials, before rendering (the alterations come after)."""
    import make_trials as mt

    opens, closes = poses[0], poses[1]
    palm = [0, 1, 5, 9, 13, 17]
    out = []
    for score in [0] * per_class + [1] * per_class + [2] * per_class:
        po = opens[int(rng.integers(len(opens)))]
        cand = closes[rng.choice(len(closes), size=min(60, len(closes)), replace=False)]
        d = np.linalg.norm(mt.align_to(cand, np.broadcast_to(po, cand.shape))[:, palm] - po[palm], axis=-1)
        pc = cand[int(np.argmin(d.mean(axis=1)))]
        n = int(rng.uniform(4.5, 7.0) * 25.0)
        alpha, how = mt.finger_alphas(score, rng)
        prog = mt.blend_profile(n, 25.0, rng)
        if score == 0 and rng.random() < 0.5:
            prog, how = np.zeros_like(prog), "still"
        seq = mt.blend_poses(np.repeat(po[None], n, 0), np.repeat(pc[None], n, 0), alpha, prog) * 100.0
        seq = seq + rng.normal(0, 0.4, seq.shape).cumsum(axis=0) * 0.05
        out.append((seq, score, how))
    return out


# --------------------------------------------------------------------------- alterations


def _rot2(th: float) -> np.ndarray:
    return np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])


def _rot3(axis: np.ndarray, th: float) -> np.ndarray:
    x, y, z = axis / np.linalg.norm(axis)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(th) * k + (1 - np.cos(th)) * (k @ k)


def _centred(pts: np.ndarray) -> tuple[np.ndarray, float]:
    """Poses centred on their mean and their size (largest extent), for scale-free maps."""
    flat = pts.reshape(-1, 2)
    centre = np.nanmean(flat, axis=0)
    size = float(np.nanmax(np.nanmax(flat, axis=0) - np.nanmin(flat, axis=0)))
    return (pts - centre) / max(size, 1e-6), size


def perspective(
    tilt_deg: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator
) -> Callable[[np.ndarray], np.ndarray]:
    """Project the hand's image plane, tilted by ``tilt_deg(frac)`` about a random in-plane
    axis, through a pinhole camera 1.5–3.5 hand sizes away (a camera 30–70 cm from the
    hand: its near side grows, its far side shrinks — not an affine map)."""
    phi = rng.uniform(0, np.pi)
    axis = np.array([np.cos(phi), np.sin(phi), 0.0])
    dist = rng.uniform(1.5, 3.5)
    sign = rng.choice([-1.0, 1.0])

    def apply(p: np.ndarray) -> np.ndarray:
        frac = np.linspace(0.0, 1.0, len(p))
        tilts = np.radians(tilt_deg(frac)) * sign
        out = np.empty_like(p)
        for i, (frame, th) in enumerate(zip(p, tilts, strict=True)):
            q = np.concatenate([frame, np.zeros((len(frame), 1))], axis=1) @ _rot3(axis, th).T
            z = dist + q[:, 2]
            out[i] = q[:, :2] * (dist / z)[:, None]
        return out

    return apply


def affine_tilt(lo: float, hi: float, rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    phi = rng.uniform(0, np.pi)
    k = np.cos(np.radians(rng.uniform(lo, hi)))
    r = _rot2(phi)
    m = r @ np.diag([k, 1.0]) @ r.T
    return lambda p: p @ m.T


def time_warp(n_src: int, src_fps: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Non-uniform time: (source positions at the output frames, output fps). The local
    speed ramps between 0.5× and 2× and the movement pauses 1–2 times for 0.3–1 s."""
    fps = float(rng.choice([15.0, 24.0, 30.0]))
    dt_src = 1.0 / src_fps
    pos, t, out = 0.0, 0.0, []
    a, b = rng.uniform(0.5, 2.0, 2)
    ramp_t = rng.uniform(2.0, 5.0)
    pauses = sorted(rng.uniform(0.1, 0.9, int(rng.integers(1, 3))) * n_src)
    pause_len = {int(p): rng.uniform(0.3, 1.0) for p in pauses}
    held_until = -1.0
    while pos < n_src - 1:
        out.append(pos)
        t += 1.0 / fps
        if t < held_until:
            continue
        for p0, length in list(pause_len.items()):
            if pos >= p0:
                held_until = t + length
                del pause_len[p0]
        speed = a + (b - a) * min(1.0, t / ramp_t)
        pos += speed / fps / dt_src
    out.append(float(n_src - 1))
    return np.asarray(out), fps


def uniform_time(n_src: int, src_fps: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    fps = float(rng.choice([15.0, 20.0, 25.0, 30.0]))
    speed = rng.uniform(0.8, 1.25)
    n = max(3, int((n_src / src_fps / speed) * fps))
    return np.linspace(0, n_src - 1, n), fps


def burst_dropouts(n: int, rng: np.random.Generator) -> np.ndarray:
    """Frames lost in 1–3 bursts of 2–5 frames plus 3 % single losses (first and last kept):
    ≈ 5–15 % of the frames, under the quality gate's 20 % (``trial.min_presence_share``)."""
    lost = rng.random(n) < 0.03
    for _ in range(int(rng.integers(1, 4))):
        s = int(rng.integers(1, max(2, n - 6)))
        lost[s : s + int(rng.integers(2, 6))] = True
    lost[0] = lost[-1] = False
    return lost


CONDITIONS: dict[str, dict[str, Any]] = {
    # name: which alterations (all get any rotation, scale, position, jitter)
    "rotated_moved": {},
    "tilt_40_60_affine": {"affine": (40.0, 60.0)},
    "perspective_30_60": {"persp": (30.0, 60.0)},
    "turning_0_45": {"turning": 45.0},
    "time_warped": {"warp": True},
    "dropout_bursts": {"drop": True},
    "all_together": {"persp": (30.0, 55.0), "warp": True, "drop": True},
}


def render_altered(base: dict[str, Any], cond: dict[str, Any], rng: np.random.Generator) -> Trial:
    """One altered 2D trial from a base movement."""
    import make_trials as mt

    pts = base["pts"]
    src, fps = (time_warp if cond.get("warp") else uniform_time)(len(pts), base["fps"], rng)
    lm = mt._sample(pts, src)
    p, _size = _centred(lm)
    if "affine" in cond:
        lo_t, hi_t = cond["affine"]
        p = affine_tilt(lo_t, hi_t, rng)(p)
    if "persp" in cond:
        lo, hi = cond["persp"]
        tilt = rng.uniform(lo, hi)
        p = perspective(lambda f: np.full_like(f, tilt), rng)(p)
    if "turning" in cond:
        end = cond["turning"]
        p = perspective(lambda f: end * np.clip(f * 1.5 - 0.25, 0, 1), rng)(p)
    w, h = [(640, 480), (1280, 720), (480, 640), (720, 1280), (1920, 1080)][int(rng.integers(5))]
    target = rng.uniform(0.25, 0.6) * min(w, h)
    p = p @ _rot2(rng.uniform(-np.pi, np.pi)).T
    span = p.reshape(-1, 2).max(axis=0) - p.reshape(-1, 2).min(axis=0)
    p = p * (target / max(float(span.max()), 1e-6))
    mirror = bool(rng.random() < 0.5)
    if mirror:
        p[..., 0] *= -1
    lo_, hi_ = p.reshape(-1, 2).min(axis=0), p.reshape(-1, 2).max(axis=0)
    room = np.array([w, h]) - (hi_ - lo_) - 8
    p = p - lo_ + 4 + rng.uniform(0, 1, 2) * np.maximum(room, 0)
    p = p + rng.normal(0, rng.uniform(0.0, 0.005) * target, p.shape)
    n = len(p)
    lost = burst_dropouts(n, rng) if cond.get("drop") else np.zeros(n, bool)
    lab = base["label"]
    if lab is not None and mirror:
        lab = "Left" if lab == "Right" else "Right"
    landmarks = np.concatenate([p, np.full(p.shape[:2] + (1,), np.nan)], axis=2)
    landmarks[lost] = np.nan
    return Trial(
        landmarks=landmarks.astype(np.float32),
        t=np.arange(n) / fps,
        presence=np.where(lost, 0.0, 0.95).astype(np.float32),
        handedness=tuple(None if x else lab for x in lost),
        image_size=(w, h),
        side=None,
        mirrored=False,
        has_z=False,
    )


def as_cli_trial(trial: Trial) -> Trial:
    """What ``flexscore score --landmarks`` reads: the track JSON without z and world."""
    doc = json.loads(json.dumps(trial_to_track_doc(trial)))
    for frame in doc["frames"]:
        assert "world" not in frame
        if frame["landmarks"] is not None:
            assert all(len(pt) == 2 for pt in frame["landmarks"])
    return trial_from_track_doc(doc, source="eval_2d")


# --------------------------------------------------------------------------- main


def evaluate(data: Path, per_class: int, seed: int, models: Path | None) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    bases = base_movements(data, per_class, rng)
    decider = Decider(Config(), models_dir=models or REPO / "models")
    report: dict[str, Any] = {"seed": seed, "per_class_per_source": per_class, "conditions": {}}
    total: Counter[str] = Counter()
    for name, cond in CONDITIONS.items():
        crng = np.random.default_rng([seed, len(name), sum(map(ord, name))])
        c: Counter[str] = Counter()
        misses: Counter[str] = Counter()
        by_source: dict[str, Counter[str]] = {}
        for base in bases:
            trial = as_cli_trial(render_altered(base, cond, crng))
            res = decider.score(trial)
            src = by_source.setdefault(base["source"], Counter())
            if res.status != "scored":
                kind = "declined"
                codes = ",".join(res.details.get("reason_codes", [])) or "?"
                misses[f"{base['score']}→not_scorable ({codes})"] += 1
            elif res.score == base["score"]:
                kind = "right"
            else:
                kind = "wrong"
                misses[f"{base['score']}→{res.score} ({base['source']}/{base['how']})"] += 1
                if res.confidence >= CONFIDENT:
                    c["confident_wrong"] += 1
            c[kind] += 1
            src[kind] += 1
            c["review"] += int(res.status == "scored" and res.review)
            c["rule_right"] += int(res.rule_score == base["score"])
        c["n"] = len(bases)
        report["conditions"][name] = {
            **{
                k: c[k]
                for k in ("n", "right", "wrong", "declined", "confident_wrong", "review", "rule_right")
            },
            "right_share": round(c["right"] / len(bases), 3),
            "by_source": {s: dict(v) for s, v in by_source.items()},
            "misses": dict(misses.most_common()),
        }
        total.update(c)
    report["total"] = {
        **{
            k: total[k]
            for k in ("n", "right", "wrong", "declined", "confident_wrong", "review", "rule_right")
        },
        "right_share": round(total["right"] / max(total["n"], 1), 3),
    }
    decider.close()
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="the shared data folder")
    p.add_argument("--per-class", type=int, default=20, help="base movements per score per source")
    p.add_argument("--seed", type=int, default=20261204)
    p.add_argument("--models", default=None, help="models folder (default: the repository's)")
    p.add_argument("--json", default=None, help="write the full report here")
    args = p.parse_args()
    data = Path(args.data)
    if not (data / "MANIFEST.md").is_file():
        print(f"eval_2d: the shared data folder {data} is absent — nothing to evaluate")
        return 0
    t0 = time.perf_counter()
    report = evaluate(data, args.per_class, args.seed, Path(args.models) if args.models else None)
    head = f"{'condition':<20} {'n':>4} {'right':>10} {'wrong':>5} {'declined':>8} "
    print(head + f"{'conf.wrong':>10} {'review':>6} {'rule':>5}  misses")
    for name, r in [*report["conditions"].items(), ("TOTAL", report["total"])]:
        miss = ", ".join(f"{k}: {v}" for k, v in list(r.get("misses", {}).items())[:4])
        print(
            f"{name:<20} {r['n']:>4} {r['right']:>4} ({r['right_share']:.0%}) {r['wrong']:>4} "
            f"{r['declined']:>8} {r['confident_wrong']:>10} {r['review']:>6} {r['rule_right']:>5}  {miss}"
        )
    print(f"done in {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
