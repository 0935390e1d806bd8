#!/usr/bin/env python3
"""Measure finger flexion from the tracker's world landmarks on real open and fist frames,
and fit the hand-frame calibration (``device/scoring/calibration.py``).

For each real clip in ``../shared/data/videos`` with known open and fist frame ranges (read
by eye from the data's MANIFEST.md), the clip is tracked with the configured models exactly
as the daemon tracks it, joint angles are computed from each frame's world landmarks
(:mod:`device.trial.kinematics`), and the per-finger summed flexion (MCP + PIP + DIP, thumb
CMC + MCP + IP) is reported for the open and the fist frames.

The calibration — per finger, the summed flexion of an open hand and of a full fist — is
fitted on the *training* clips only (median of their open / fist frames); the held-out clip
(``hagrid_dynamic``, the source of the bundled demo clip too) is reported with the fitted
values to show that its open and fist frames fall where the calibration says.

Optional evaluation script: needs the shared data (``--data-dir``); exits 0 when absent.

    .venv/bin/python scripts/calibrate_world.py [--precision int8|fp32] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device.config import load_config, replace  # noqa: E402
from device.trial.kinematics import FINGER_NAMES, flexion_sums, joint_angles  # noqa: E402
from device.video import read_frames  # noqa: E402
from device.vision.tracker import build_tracker  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"

# clip → {"open": [(first, last), ...], "fist": [...]} (inclusive frame ranges, MANIFEST.md)
CLIPS: dict[str, dict[str, list[tuple[int, int]]]] = {
    "mit_phone_open_fist_cycles.mp4": {
        "open": [(0, 27), (37, 41), (49, 64), (137, 143)],
        "edge_on_open": [(65, 125)],
        "fist": [(29, 35), (42, 48), (127, 136)],
    },
    "hagrid_demo_fist_to_palm_counting.mp4": {"open": [(63, 78)], "fist": [(0, 2)]},
    "pixabay_hand_reach_open_129422.mp4": {"open": [(19, 201)]},
    "hagrid_dynamic_dnd_palm_fist_palm.mp4": {"open": [(0, 13), (56, 76)], "fist": [(30, 53)]},
}
HELD_OUT = ("hagrid_dynamic_dnd_palm_fist_palm.mp4",)


def track_world(video: Path, cfg: Any, tracker: Any) -> dict[int, np.ndarray]:
    """frame index → world landmarks [21, 3] for the frames with a hand."""
    tracker.reset()
    out: dict[int, np.ndarray] = {}
    for i, t, rgb in read_frames(video):
        ob = tracker.process_one(rgb, t)
        if ob.detected and ob.world_landmarks is not None:
            out[i] = np.asarray(ob.world_landmarks, dtype=np.float64)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--config", help="device config TOML (default: the built-in defaults)")
    ap.add_argument("--precision", choices=("int8", "fp32"), help="override models.precision")
    ap.add_argument("--complexity", choices=("lite", "full"), help="override models.complexity")
    ap.add_argument("--json", type=Path, help="write the per-frame sums and the fit here")
    args = ap.parse_args(argv)
    videos = args.data_dir / "videos"
    if not videos.is_dir():
        print(f"calibrate_world: no shared data at {args.data_dir} (optional script) — nothing to do")
        return 0
    cfg = load_config(args.config)
    models = cfg.models
    if args.precision:
        models = replace(models, precision=args.precision)
    if args.complexity:
        models = replace(models, complexity=args.complexity)
    cfg = replace(cfg, models=models)
    print(f"models {cfg.models.complexity} {cfg.models.precision}")
    sums: dict[str, dict[str, np.ndarray]] = {}
    with closing(build_tracker(cfg)) as tracker:
        for clip, ranges in CLIPS.items():
            world = track_world(videos / clip, cfg, tracker)
            sums[clip] = {}
            for kind, spans in ranges.items():
                frames = [i for a, b in spans for i in range(a, b + 1) if i in world]
                if not frames:
                    continue
                sums[clip][kind] = flexion_sums(joint_angles(np.stack([world[i] for i in frames])))
    header = "  ".join(f"{n:>15s}" for n in FINGER_NAMES)
    print(f"{'clip':40s} {'kind':13s} {'n':>4s}  {header}   (median [p5–p95] degrees)")
    for clip, kinds in sums.items():
        for kind, s in kinds.items():
            lo, mid, hi = np.percentile(s, [5, 50, 95], axis=0)
            cells = "  ".join(f"{mid[f]:4.0f} [{lo[f]:3.0f}–{hi[f]:3.0f}]" for f in range(5))
            tag = " (held out)" if clip in HELD_OUT else ""
            print(f"{clip[:40]:40s} {kind + tag:13s} {len(s):4d}  {cells}")
    fit: dict[str, list[float]] = {}
    for kind in ("open", "fist"):
        pooled = np.concatenate([k[kind] for c, k in sums.items() if c not in HELD_OUT and kind in k])
        fit[kind] = [round(float(v), 1) for v in np.median(pooled, axis=0)]
    print(f"\nfit (training clips, median): open {fit['open']}  fist {fit['fist']}")
    for clip in HELD_OUT:
        for kind, s in sums[clip].items():
            frac = (s - np.array(fit["open"])) / (np.array(fit["fist"]) - np.array(fit["open"]))
            print(
                f"held out {clip[:30]} {kind}: fraction of a fist per finger, median "
                f"{np.round(np.median(frac, axis=0), 2).tolist()}"
            )
    if args.json:
        doc = {
            "models": [cfg.models.complexity, cfg.models.precision],
            "fit": fit,
            "sums": {c: {k: v.round(1).tolist() for k, v in kinds.items()} for c, kinds in sums.items()},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
