#!/usr/bin/env python3
"""The whole product on real footage changed in ways it was not built on: camera → score.

Each *case* is a stretch of a real video in ``../shared/data/videos`` whose Fugl-Meyer
mass-flexion score is known from what the hand visibly does (frame ranges from the data's
MANIFEST.md): a full open → fist → open cycle is 2, a hand that closes only some fingers is 1,
an open hand that never closes is 0. Each case is padded with one second of its first and last
frame held still (a patient waits for the recording to start and to end), then *altered* —
mirrored, rotated, darker, brighter, noisier, blurred, smaller in the frame (further from the
camera), slower or faster — and run through exactly what the daemon runs: the hand tracker with
the configured models, the quality gates, the RNN, the rule and the decision.

Reported per alteration: how many trials got the expected score, how many were declined as not
scorable (with the reason), and every miss. This is a robustness check on a handful of clips of
healthy hands, not clinical validation.

Optional evaluation script: it needs the shared data (``../shared/data`` beside the repository,
or ``--data-dir``) and says so and exits 0 when it is absent.

    .venv/bin/python scripts/eval_pipeline.py --json build/eval_pipeline.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device.config import Config, load_config, replace  # noqa: E402
from device.errors import FlexscoreError  # noqa: E402
from device.scoring.decide import Decider  # noqa: E402
from device.trial.types import Trial  # noqa: E402
from device.video import read_frames  # noqa: E402
from device.vision.tracker import HandTracker, build_tracker  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
HOLD_S = 1.0


@dataclass(frozen=True)
class Case:
    name: str
    video: str
    first: int  # frame range, inclusive
    last: int
    score: int
    reverse: bool = False
    why: str = ""


# Frame ranges and what happens in them: ../shared/data/MANIFEST.md.
CASES = (
    Case("dnd_cycle", "hagrid_dynamic_dnd_palm_fist_palm.mp4", 0, 76, 2, why="open → fist → open"),
    Case("phone_cycles", "mit_phone_open_fist_cycles.mp4", 0, 48, 2, why="open → fist → open → fist → open"),
    Case("phone_cycle_late", "mit_phone_open_fist_cycles.mp4", 110, 143, 2, why="open → fist → open"),
    Case("phone_open", "mit_phone_open_fist_cycles.mp4", 49, 110, 0, why="open hand, moving, never closes"),
    Case(
        "reach_open", "pixabay_hand_reach_open_129422.mp4", 19, 201, 0, why="open hand reaching, no flexion"
    ),
    Case(
        "count_down_partial",
        "hagrid_demo_fist_to_palm_counting.mp4",
        21,
        62,
        1,
        reverse=True,
        why="four fingers out → two fingers out (played backwards): only some fingers flex",
    ),
)


def _scale(rgb: np.ndarray, gain: float) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def _noise(rgb: np.ndarray, i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return np.clip(rgb.astype(np.float32) + rng.normal(0, 10, rgb.shape), 0, 255).astype(np.uint8)


def _smaller(rgb: np.ndarray) -> np.ndarray:
    """The same scene with the hand at 60 % of its size: shrink and pad back to the frame size."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (int(w * 0.6), int(h * 0.6)), interpolation=cv2.INTER_AREA)
    out = np.full_like(rgb, 110)
    y0, x0 = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    return out


FrameFn = Callable[[np.ndarray, int], np.ndarray]
# name → (per-frame change, frame-index resampling factor: 2.0 plays twice as fast)
ALTERATIONS: dict[str, tuple[FrameFn, float]] = {
    "none": (lambda f, i: f, 1.0),
    "mirror": (lambda f, i: np.ascontiguousarray(f[:, ::-1]), 1.0),
    "rot90": (lambda f, i: cv2.rotate(f, cv2.ROTATE_90_CLOCKWISE), 1.0),
    "rot180": (lambda f, i: cv2.rotate(f, cv2.ROTATE_180), 1.0),
    "tilt25": (
        lambda f, i: cv2.warpAffine(
            f,
            cv2.getRotationMatrix2D((f.shape[1] / 2, f.shape[0] / 2), 25, 1.0),
            (f.shape[1], f.shape[0]),
            borderMode=cv2.BORDER_REFLECT,
        ),
        1.0,
    ),
    "dark": (lambda f, i: _scale(f, 0.45), 1.0),
    "bright": (lambda f, i: _scale(f, 1.5), 1.0),
    "noise": (_noise, 1.0),
    "blur": (lambda f, i: cv2.GaussianBlur(f, (0, 0), 2.0), 1.0),
    "smaller": (lambda f, i: _smaller(f), 1.0),
    "slow": (lambda f, i: f, 0.5),
    "fast": (lambda f, i: f, 2.0),
}


def case_frames(video: Path, case: Case) -> tuple[list[np.ndarray], float]:
    """The case's frames (RGB) with the still hold before and after, and the video's fps."""
    frames: list[np.ndarray] = []
    fps = 30.0
    for i, t, rgb in read_frames(video):
        if i == 1 and t > 0:
            fps = 1.0 / t
        if case.first <= i <= case.last:
            frames.append(rgb)
        if i > case.last:
            break
    if case.reverse:
        frames.reverse()
    hold = round(HOLD_S * fps)
    return [frames[0]] * hold + frames + [frames[-1]] * hold, fps


def altered(frames: list[np.ndarray], name: str) -> list[np.ndarray]:
    fn, speed = ALTERATIONS[name]
    idx = np.arange(0, len(frames), speed).astype(int)
    return [fn(frames[j], k) for k, j in enumerate(idx)]


def run_case(
    frames: list[np.ndarray], fps: float, cfg: Config, tracker: HandTracker, decider: Decider
) -> dict[str, Any]:
    tracker.reset()  # each trial starts with no hand tracked, as the daemon's recordings do
    obs = [tracker.process_one(f, k / fps) for k, f in enumerate(frames)]
    trial = Trial.from_observations(obs, side=None, mirrored=cfg.tracker.mirrored)
    return decider.score(trial).to_json()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--config", help="device config TOML (default: the built-in defaults)")
    ap.add_argument("--cases", nargs="*", help="only these cases (names)")
    ap.add_argument("--alterations", nargs="*", choices=sorted(ALTERATIONS), help="only these")
    ap.add_argument("--use-z", choices=("yes", "no"), help="override scoring.use_z (score with or without z)")
    ap.add_argument("--json", type=Path, help="write every result here")
    args = ap.parse_args(argv)

    videos = args.data_dir / "videos"
    if not videos.is_dir():
        print(f"eval_pipeline: no shared data at {args.data_dir} (optional script) — nothing to do")
        return 0
    cfg = load_config(args.config)
    if args.use_z:
        cfg = replace(cfg, scoring=replace(cfg.scoring, use_z=args.use_z == "yes"))
    cases = [c for c in CASES if not args.cases or c.name in args.cases]
    names = args.alterations or list(ALTERATIONS)
    print(
        f"models {cfg.models.complexity} {cfg.models.precision}, scoring.use_z "
        f"{cfg.scoring.use_z}; {len(cases)} cases × "
        f"{len(names)} alterations",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with build_tracker(cfg) as tracker, closing(Decider(cfg)) as decider:
        for case in cases:
            base, fps = case_frames(videos / case.video, case)
            for name in names:
                try:
                    res = run_case(altered(base, name), fps, cfg, tracker, decider)
                except FlexscoreError as exc:
                    res = {"status": "error", "score": None, "reasons": [str(exc)]}
                ok = res["status"] == "scored" and res["score"] == case.score
                rows.append({"case": case.name, "expected": case.score, "alteration": name, "ok": ok, **res})
                mark = "ok " if ok else ("NS " if res["status"] != "scored" else "MISS")
                print(
                    f"{mark} {case.name:20s} {name:8s} expected {case.score} got "
                    f"{res['score'] if res['status'] == 'scored' else res['status']}"
                    + ("" if ok else f"  ({'; '.join(res.get('reasons', []))[:160]})"),
                    flush=True,
                )
    print(f"\n{'alteration':10s} {'right':>6s} {'wrong':>6s} {'declined':>9s}")
    summary: dict[str, dict[str, int]] = {}
    for name in names:
        sel = [r for r in rows if r["alteration"] == name]
        s = {
            "right": sum(r["ok"] for r in sel),
            "wrong": sum(r["status"] == "scored" and not r["ok"] for r in sel),
            "declined": sum(r["status"] != "scored" for r in sel),
            "n": len(sel),
        }
        summary[name] = s
        print(f"{name:10s} {s['right']:6d} {s['wrong']:6d} {s['declined']:9d}")
    total = {k: sum(s[k] for s in summary.values()) for k in ("right", "wrong", "declined", "n")}
    print(
        f"{'all':10s} {total['right']:6d} {total['wrong']:6d} {total['declined']:9d}   "
        f"({total['right'] / max(1, total['n']):.0%} right of {total['n']}; "
        f"{time.perf_counter() - t0:.0f} s)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "models": [cfg.models.complexity, cfg.models.precision],
            "use_z": cfg.scoring.use_z,
            "summary": summary,
            "total": total,
            "rows": rows,
        }
        args.json.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
