#!/usr/bin/env python3
"""How often does the palm detector find a *closed* hand? (mass extension starts from a fist)

The palm detector was trained on open palms. A mass-extension trial recorded alone starts
from a fist, so the appliance must find a hand it has not tracked yet in a fist. For every
fist frame of the real open ↔ fist clips (frame ranges read by eye, ../shared/data
MANIFEST.md) and, for comparison, every open-palm frame of the same clips, each frame on its
own (no tracking from the previous frame):

* ``palm``: the palm detector (the configured model, whole frame) finds at least one palm;
* ``cold start``: the appliance's tracker, reset, gives a hand on that single frame (palm
  detector + landmark model + presence threshold) — what a recording that starts on that
  frame gets on its first frame.

Optional evaluation script: needs ../shared/data (or ``--data-dir``); exits 0 when absent.

    .venv/bin/python scripts/eval_fist_detection.py [--config TOML] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device.config import load_config  # noqa: E402
from device.video import read_frames  # noqa: E402
from device.vision.tracker import build_tracker  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
# (video, kind, inclusive frame ranges) from MANIFEST.md's "visual ranges"
RANGES: tuple[tuple[str, str, tuple[tuple[int, int], ...]], ...] = (
    ("hagrid_dynamic_dnd_palm_fist_palm.mp4", "fist", ((30, 53),)),
    ("hagrid_dynamic_dnd_palm_fist_palm.mp4", "open", ((0, 17), (56, 76))),
    ("mit_phone_open_fist_cycles.mp4", "fist", ((29, 35), (42, 48), (127, 136), (144, 160))),
    ("mit_phone_open_fist_cycles.mp4", "open", ((0, 27), (37, 41), (49, 64), (137, 143))),
    ("hagrid_demo_fist_to_palm_counting.mp4", "fist", ((0, 2),)),
    ("hagrid_demo_fist_to_palm_counting.mp4", "open", ((63, 78),)),
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--config", help="device config TOML (default: the built-in defaults)")
    ap.add_argument("--json", type=Path, help="write the counts here")
    args = ap.parse_args(argv)
    videos = args.data_dir / "videos"
    if not videos.is_dir():
        print(f"eval_fist_detection: no shared data at {args.data_dir} (optional script) — nothing to do")
        return 0
    cfg = load_config(args.config)
    rows: list[dict[str, Any]] = []
    with build_tracker(cfg) as tracker:
        for video, kind, ranges in RANGES:
            wanted = {i for a, b in ranges for i in range(a, b + 1)}
            for i, _t, rgb in read_frames(videos / video):
                if i > max(wanted):
                    break
                if i not in wanted:
                    continue
                palms = tracker.detect_palms(rgb)
                tracker.reset()
                obs = tracker.process_one(rgb, 0.0)
                tracker.reset()
                rows.append(
                    {"video": video, "kind": kind, "frame": i, "palm": bool(palms),
                     "cold_start": obs.detected}
                )  # fmt: skip
    summary: dict[str, Any] = {}
    print(f"models {cfg.models.complexity} {cfg.models.precision}")
    print(f"{'clip':40s} {'kind':5s} {'frames':>6s} {'palm':>6s} {'cold start':>11s}")
    for key in sorted({(r["video"], r["kind"]) for r in rows}) + [("all", "fist"), ("all", "open")]:
        sel = [r for r in rows if r["kind"] == key[1] and key[0] in ("all", r["video"])]
        n = len(sel)
        palm = sum(r["palm"] for r in sel)
        cold = sum(r["cold_start"] for r in sel)
        summary[f"{key[0]}:{key[1]}"] = {"n": n, "palm": palm, "cold_start": cold}
        print(f"{key[0]:40s} {key[1]:5s} {n:6d} {palm / n:6.0%} {cold / n:11.0%}   ({palm}/{n}, {cold}/{n})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
