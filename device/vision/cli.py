"""``flexscore track`` (``flexscore bench`` is tooling: :mod:`device.tools.cli`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from device.config import Config, load_config, replace
from device.data import SAMPLE_VIDEO


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML config (default: built-in defaults)")
    p.add_argument("--models", choices=("lite", "full"), help="model complexity (overrides config)")
    p.add_argument("--precision", choices=("int8", "fp32"), help="model precision (overrides config)")
    p.add_argument("--palm-precision", choices=("auto", "int8", "int8_weight_only", "fp32"),
                   help="palm detector variant (overrides config; auto follows --precision)")  # fmt: skip
    p.add_argument("--threads", type=int, help="interpreter threads (overrides config)")


def config_from_args(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    changes: dict[str, Any] = {}
    if getattr(args, "models", None):
        changes["complexity"] = args.models
    if getattr(args, "precision", None):
        changes["precision"] = args.precision
    if getattr(args, "palm_precision", None):
        changes["palm_precision"] = args.palm_precision
    if getattr(args, "threads", None):
        changes["threads"] = args.threads
    if changes:
        cfg = replace(cfg, models=replace(cfg.models, **changes))
    return cfg


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser(
        "track",
        help="track the hand in a video and write landmarks as JSON",
        description="Track one hand through a video file. Writes the flexscore track JSON "
        "(see device/vision/track.py) and optionally an annotated overlay video.",
    )
    p.add_argument("video", nargs="?", default=str(SAMPLE_VIDEO),
                   help="video file (default: the bundled sample clip)")  # fmt: skip
    p.add_argument("--json", dest="json_out", metavar="OUT", help="write landmarks JSON here ('-' = stdout)")
    p.add_argument("--overlay", metavar="OUT.mp4", help="write the video with the skeleton drawn")
    p.add_argument("--flip", action="store_true", help="mirror frames left–right first")
    p.add_argument(
        "--rotate",
        type=int,
        default=0,
        choices=(0, 90, 180, 270),
        help="rotate frames clockwise first",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_args(p)
    p.set_defaults(func=cmd_track)


def cmd_track(args: argparse.Namespace) -> int:
    from device.vision.track import track_video, write_json_atomic
    from device.vision.tracker import build_tracker

    cfg = config_from_args(args)
    if not args.json_out and not args.overlay:
        print("flexscore track: nothing to write; give --json OUT and/or --overlay OUT.mp4",
              file=sys.stderr)  # fmt: skip
        return 2
    with build_tracker(cfg) as tracker:
        progress = not args.no_progress and sys.stderr.isatty()
        result = track_video(
            tracker, args.video, overlay=args.overlay, flip=args.flip, rotate=args.rotate,
            progress=progress,
        )  # fmt: skip
    data = result.to_json()
    if args.json_out == "-":
        json.dump(data, sys.stdout)
        sys.stdout.write("\n")
    elif args.json_out:
        write_json_atomic(args.json_out, data)
    n = len(result.observations)
    print(
        f"{Path(args.video).name}: {n} frames, hand in {result.detection_rate:.0%}"
        + (f"; landmarks → {args.json_out}" if args.json_out and args.json_out != "-" else "")
        + (f"; overlay → {args.overlay}" if args.overlay else ""),
        file=sys.stderr,
    )
    return 0
