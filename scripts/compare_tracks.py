#!/usr/bin/env python3
"""Compare two ``flexscore track`` JSON files of the same video (e.g. aarch64 against x86).

    python scripts/compare_tracks.py REFERENCE.json OTHER.json [--max-median 0.01] [--max-p95 0.025]

Passes when the same frames have a hand in both and the image landmarks (x, y) differ by a
median below ``--max-median`` and a 95th percentile below ``--max-p95`` of the hand size
(the long side of the reference hand's landmark bounding box, per frame). Prints one line;
exit 0 on a pass, 1 on a mismatch, 2 on unreadable input. Used by scripts/check-aarch64.sh.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _frames(path: Path) -> dict[int, dict[str, Any]]:
    data = json.loads(path.read_text())
    return {int(f["index"]): f for f in data["frames"]}


def compare(reference: Path, other: Path) -> dict[str, Any]:
    """Frames with a hand in each, and the landmark errors relative to hand size."""
    ref, oth = _frames(reference), _frames(other)
    ref_hand = {i for i, f in ref.items() if f.get("detected")}
    oth_hand = {i for i, f in oth.items() if f.get("detected")}
    errors: list[float] = []
    for i in sorted(ref_hand & oth_hand):
        a = np.asarray(ref[i]["landmarks"], dtype=np.float64)[:, :2]
        b = np.asarray(oth[i]["landmarks"], dtype=np.float64)[:, :2]
        size = float(np.max(a.max(axis=0) - a.min(axis=0)))
        errors.extend((np.linalg.norm(a - b, axis=1) / max(size, 1e-9)).tolist())
    err = np.asarray(errors) if errors else np.asarray([np.inf])
    return {
        "frames": (len(ref), len(oth)),
        "with_hand": (len(ref_hand), len(oth_hand)),
        "same_frames_with_hand": ref_hand == oth_hand and len(ref) == len(oth),
        "median": float(np.median(err)),
        "p95": float(np.percentile(err, 95)),
        "max": float(np.max(err)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("reference", type=Path)
    ap.add_argument("other", type=Path)
    ap.add_argument("--max-median", type=float, default=0.01, help="share of hand size (default 0.01)")
    ap.add_argument("--max-p95", type=float, default=0.025, help="share of hand size (default 0.025)")
    args = ap.parse_args(argv)
    try:
        res = compare(args.reference, args.other)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"cannot compare {args.reference} and {args.other}: {exc}"
        print(f"compare_tracks: error: {msg}", file=sys.stderr)
        return 2
    ok = res["same_frames_with_hand"] and res["median"] < args.max_median and res["p95"] < args.max_p95
    print(
        f"hand in {res['with_hand'][1]}/{res['frames'][1]} frames (reference {res['with_hand'][0]}/"
        f"{res['frames'][0]}{', same frames' if res['same_frames_with_hand'] else ', DIFFERENT frames'}), "
        f"landmark error median {res['median']:.2%} p95 {res['p95']:.2%} max {res['max']:.2%} of hand size "
        f"(limits {args.max_median:.1%} / {args.max_p95:.1%}): {'PASS' if ok else 'MISMATCH'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
