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

``--item mass_extension`` runs the mass-extension cases (:data:`EXTENSION_CASES`: fist → open
stretches of the same clips, scored for that item); ``--heldout`` only the cases of the clip
the extension scorer never saw (:data:`EXTENSION_HELDOUT`); ``--trials-out DIR`` also writes
every tracked trial (flexscore track JSON + ``labels.csv``), which
``scripts/train_scorer.py --item mass_extension --real DIR`` trains on.

    .venv/bin/python scripts/eval_pipeline.py --json build/eval_pipeline.json
    .venv/bin/python scripts/eval_pipeline.py --item mass_extension --heldout
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
from device.items import DEFAULT_ITEM, get_item, item_keys  # noqa: E402
from device.scoring.decide import Decider  # noqa: E402
from device.trial.io import save_track_json  # noqa: E402
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
        "phone_open_turn",
        "mit_phone_open_fist_cycles.mp4",
        60,
        125,
        0,
        why="open hand that drops and turns edge-on, never closes",
    ),
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


# Mass extension (from a fist, open the hand): the fist → open stretches of the same clips.
# The hagrid_dynamic clip is held out (the extension scorer is trained on the others).
EXTENSION_HELDOUT = "hagrid_dynamic_dnd_palm_fist_palm.mp4"
EXTENSION_CASES = (
    Case("dnd_fist_open", EXTENSION_HELDOUT, 30, 76, 2, why="fist → open"),
    Case("dnd_cycle", EXTENSION_HELDOUT, 0, 76, 2, why="open → fist → open (the combined protocol)"),
    Case("dnd_fist_hold", EXTENSION_HELDOUT, 30, 53, 0, why="fist held, never opens"),
    Case("dnd_open_close", EXTENSION_HELDOUT, 0, 53, 0, why="open → fist, never opens again"),
    Case("phone_fist_open_1", "mit_phone_open_fist_cycles.mp4", 20, 41, 2, why="open → fist → open"),
    Case("phone_fist_open_2", "mit_phone_open_fist_cycles.mp4", 42, 64, 2, why="fist → open"),
    Case("phone_fist_open_3", "mit_phone_open_fist_cycles.mp4", 127, 143, 2, why="fist → open"),
    Case("phone_cycles", "mit_phone_open_fist_cycles.mp4", 0, 64, 2, why="open → fist → open → fist → open"),
    Case("phone_fist_hold", "mit_phone_open_fist_cycles.mp4", 144, 160, 0, why="fist (thumb out) held"),
    Case("phone_thumbs_up", "mit_phone_open_fist_cycles.mp4", 144, 177, 0, why="fist → thumbs-up"),
    Case(
        "count_fist_two",
        "hagrid_demo_fist_to_palm_counting.mp4",
        0,
        34,
        1,
        why="fist → one → two fingers out: only some fingers open",
    ),
    Case(
        "count_fist_three",
        "hagrid_demo_fist_to_palm_counting.mp4",
        0,
        48,
        1,
        why="fist → … → three fingers out: only some fingers open",
    ),
    Case(
        "count_fist_palm",
        "hagrid_demo_fist_to_palm_counting.mp4",
        0,
        78,
        2,
        why="fist → one → … → four fingers → open palm: every finger opens fully",
    ),
)
CASES_BY_ITEM = {DEFAULT_ITEM: CASES, "mass_extension": EXTENSION_CASES}


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


def _side_view(rgb: np.ndarray, angle_deg: float = 50.0) -> np.ndarray:
    """The scene seen from the side: a perspective warp that shortens the frame's width by
    cos(angle) and tapers one side (a camera turned about the vertical axis)."""
    h, w = rgb.shape[:2]
    squeeze = np.cos(np.radians(angle_deg))
    taper = 0.18 * h
    x0 = w * (1 - squeeze) / 2
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[x0, 0], [w - x0, taper], [w - x0, h - taper], [x0, h]])
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(rgb, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _far(rgb: np.ndarray) -> np.ndarray:
    """A small hand far away: the scene at 38 % of its size in the middle of the frame."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (int(w * 0.38), int(h * 0.38)), interpolation=cv2.INTER_AREA)
    out = cv2.resize(cv2.resize(rgb, (8, 8), interpolation=cv2.INTER_AREA), (w, h))  # blurred backdrop
    y0, x0 = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    return out


def _motion_blur(rgb: np.ndarray, i: int) -> np.ndarray:
    """A 15 px motion streak in a direction that changes from frame to frame."""
    k = np.zeros((15, 15), np.float32)
    k[7, :] = 1.0 / 15
    rot = cv2.getRotationMatrix2D((7, 7), (i * 37) % 180, 1.0)
    k = cv2.warpAffine(k, rot, (15, 15))
    return cv2.filter2D(rgb, -1, k / max(float(k.sum()), 1e-6))


def _turning(rgb: np.ndarray, i: int) -> np.ndarray:
    """The hand turning while it moves: the view rotates about the vertical axis by up to 65°
    and back (≈ 4 s period), with an in-plane roll of up to 30°."""
    phase = np.sin(2 * np.pi * i / 100)
    h, w = rgb.shape[:2]
    out = _side_view(rgb, 65.0 * abs(phase))
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 30.0 * phase, 1.0)
    return cv2.warpAffine(out, rot, (w, h), borderMode=cv2.BORDER_REPLICATE)


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
    "side_view": (lambda f, i: _side_view(f), 1.0),
    "far": (lambda f, i: _far(f), 1.0),
    "motion_blur": (_motion_blur, 1.0),
    "turning": (_turning, 1.0),
}
# Recordings stopped early (the button pressed again): the first CUT_SHORT[name] seconds of
# the case's frames after the hold. Expected: not scorable, whatever the movement.
CUT_SHORT: dict[str, float] = {"cut_1s": 1.0, "cut_1.5s": 1.5}


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


def altered(frames: list[np.ndarray], name: str, fps: float = 30.0) -> list[np.ndarray]:
    if name in CUT_SHORT:
        start = round(HOLD_S * fps)  # the movement, not the still hold before it
        return frames[start : start + max(2, round(CUT_SHORT[name] * fps))]
    fn, speed = ALTERATIONS[name]
    idx = np.arange(0, len(frames), speed).astype(int)
    out = [fn(frames[j], k) for k, j in enumerate(idx)]
    if len(out) < len(frames):  # a faster movement in a recording of the same length
        pad = len(frames) - len(out)
        out = [out[0]] * (pad // 2) + out + [out[-1]] * (pad - pad // 2)
    return out


def track_case(frames: list[np.ndarray], fps: float, cfg: Config, tracker: HandTracker) -> Trial:
    """The frames through the appliance's tracker, as one recording."""
    tracker.reset()  # each trial starts with no hand tracked, as the daemon's recordings do
    obs = [tracker.process_one(f, k / fps) for k, f in enumerate(frames)]
    return Trial.from_observations(obs, side=None, mirrored=cfg.tracker.mirrored)


def run_case(
    frames: list[np.ndarray],
    fps: float,
    cfg: Config,
    tracker: HandTracker,
    decider: Decider,
    item: str = DEFAULT_ITEM,
) -> dict[str, Any]:
    return decider.score(track_case(frames, fps, cfg, tracker), item=item).to_json()


def expected_calibration_error(rows: list[dict[str, Any]], bins: int = 10) -> float:
    """ECE of the given scored rows' confidence against whether they were right."""
    conf = np.array([float(r["confidence"]) for r in rows])
    right = np.array([bool(r["ok"]) for r in rows], dtype=float)
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    gaps = [
        abs(conf[idx == b].mean() - right[idx == b].mean()) * (idx == b).mean()
        for b in range(bins)
        if (idx == b).any()
    ]
    return float(sum(gaps))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--config", help="device config TOML (default: the built-in defaults)")
    ap.add_argument("--cases", nargs="*", help="only these cases (names)")
    ap.add_argument("--alterations", nargs="*", choices=sorted([*ALTERATIONS, *CUT_SHORT]), help="only these")
    ap.add_argument("--use-z", choices=("yes", "no"), help="override scoring.use_z (score with or without z)")
    ap.add_argument(
        "--use-world",
        choices=("yes", "no"),
        help="override scoring.use_world (hand frame from world landmarks, or the image path)",
    )
    ap.add_argument("--json", type=Path, help="write every result here")
    ap.add_argument("--rule-only", action="store_true", help="the rule alone (scoring.use_rnn = false)")
    ap.add_argument("--item", default=DEFAULT_ITEM, choices=item_keys(), help="the item the cases score")
    ap.add_argument("--heldout", action="store_true", help="only the cases of the held-out clip")
    ap.add_argument("--exclude-heldout", action="store_true", help="every case but the held-out clip's")
    ap.add_argument("--trials-out", type=Path, help="also write each tracked trial here (track JSON)")
    args = ap.parse_args(argv)

    videos = args.data_dir / "videos"
    if not videos.is_dir():
        print(f"eval_pipeline: no shared data at {args.data_dir} (optional script) — nothing to do")
        return 0
    cfg = load_config(args.config)
    if args.use_z:
        cfg = replace(cfg, scoring=replace(cfg.scoring, use_z=args.use_z == "yes"))
    if args.use_world:
        cfg = replace(cfg, scoring=replace(cfg.scoring, use_world=args.use_world == "yes"))
    if args.rule_only:
        cfg = replace(cfg, scoring=replace(cfg.scoring, use_rnn=False))
    item = get_item(args.item)
    all_cases = CASES_BY_ITEM.get(item.key, ())
    cases = [c for c in all_cases if not args.cases or c.name in args.cases]
    if args.heldout or args.exclude_heldout:
        cases = [c for c in cases if (c.video == EXTENSION_HELDOUT) == args.heldout]
    labels: list[tuple[str, int]] = []
    names = args.alterations or [*ALTERATIONS, *CUT_SHORT]
    print(
        f"item {item.key}; models {cfg.models.complexity} {cfg.models.precision}, scoring.use_world "
        f"{cfg.scoring.use_world}, use_z {cfg.scoring.use_z}; {len(cases)} cases × "
        f"{len(names)} alterations",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with build_tracker(cfg) as tracker, closing(Decider(cfg)) as decider:
        for case in cases:
            base, fps = case_frames(videos / case.video, case)
            for name in names:
                expected: int | str = "not_scorable" if name in CUT_SHORT else case.score
                try:
                    trial = track_case(altered(base, name, fps), fps, cfg, tracker)
                    res = decider.score(trial, item=item).to_json()
                    if args.trials_out and isinstance(expected, int):
                        args.trials_out.mkdir(parents=True, exist_ok=True)
                        file = f"{case.name}__{name}.json"
                        save_track_json(trial, args.trials_out / file)
                        labels.append((file, expected))
                except FlexscoreError as exc:
                    res = {"status": "error", "score": None, "reasons": [str(exc)]}
                if expected == "not_scorable":
                    ok = res["status"] == "not_scorable"
                else:
                    ok = res["status"] == "scored" and res["score"] == case.score
                rows.append({"case": case.name, "expected": expected, "alteration": name, "ok": ok, **res})
                mark = "ok " if ok else ("NS " if res["status"] != "scored" else "MISS")
                print(
                    f"{mark} {case.name:20s} {name:11s} expected {expected} got "
                    f"{res['score'] if res['status'] == 'scored' else res['status']}"
                    + ("" if ok else f"  ({'; '.join(res.get('reasons', []))[:160]})"),
                    flush=True,
                )
    print(f"\n{'alteration':11s} {'right':>6s} {'wrong':>6s} {'declined':>9s} {'wrong≥0.9':>10s}")
    summary: dict[str, dict[str, Any]] = {}
    for name in names:
        sel = [r for r in rows if r["alteration"] == name]
        s = {
            "right": sum(r["ok"] for r in sel),
            "wrong": sum(r["status"] == "scored" and not r["ok"] for r in sel),
            "declined": sum(r["status"] != "scored" and not r["ok"] for r in sel),
            "confident_wrong": sum(
                r["status"] == "scored" and not r["ok"] and r.get("confidence", 0) >= 0.9 for r in sel
            ),
            "review": sum(r["status"] == "scored" and bool(r.get("review")) for r in sel),
            "n": len(sel),
        }
        summary[name] = s
        print(f"{name:11s} {s['right']:6d} {s['wrong']:6d} {s['declined']:9d} {s['confident_wrong']:10d}")
    keys = ("right", "wrong", "declined", "confident_wrong", "review", "n")
    total: dict[str, Any] = {k: sum(s[k] for s in summary.values()) for k in keys}
    scored = [r for r in rows if r["status"] == "scored" and r["expected"] != "not_scorable"]
    total["ece"] = round(expected_calibration_error(scored), 4) if scored else None
    print(
        f"{'all':11s} {total['right']:6d} {total['wrong']:6d} {total['declined']:9d} "
        f"{total['confident_wrong']:10d}   review-flagged {total['review']}, ECE {total['ece']}\n"
        f"{'':11s} "
        f"({total['right'] / max(1, total['n']):.0%} right of {total['n']}; "
        f"{time.perf_counter() - t0:.0f} s)"
    )
    if args.trials_out and labels:
        # merged with the folder's earlier labels (a run over some cases adds or replaces theirs)
        path = args.trials_out / "labels.csv"
        lines = path.read_text(encoding="utf-8").split()[1:] if path.is_file() else []
        known = dict(line.split(",") for line in lines)
        known.update({file: str(score) for file, score in labels})
        text = "".join(f"{f},{v}\n" for f, v in sorted(known.items()))
        path.write_text("file,score\n" + text, encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "item": item.key,
            "models": [cfg.models.complexity, cfg.models.precision],
            "use_z": cfg.scoring.use_z,
            "use_world": cfg.scoring.use_world,
            "summary": summary,
            "total": total,
            "rows": rows,
        }
        args.json.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
