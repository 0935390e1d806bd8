"""``flexscore track`` and ``flexscore bench``."""

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

    b = sub.add_parser(
        "bench",
        help="measure speed (and int8 accuracy) of the tracker and models",
        description="Benchmark on the same decoded frames in one run; prints ratios against "
        "the references measured in the same run.",
    )
    b.add_argument("--video", default=str(SAMPLE_VIDEO), help="video whose frames are used")
    b.add_argument("--max-frames", type=int, default=300, help="frames to use (default 300)")
    b.add_argument("--rounds", type=int, default=3, help="interleaved rounds per measurement")
    b.add_argument(
        "--reference-python",
        metavar="PATH",
        help="python of a venv with mediapipe==0.10.21 (scripts/make_reference_venv.sh)",
    )
    b.add_argument(
        "--only",
        default="",
        help="comma list of sections: models,tracker,accuracy,reference,scoring,daemon",
    )
    b.add_argument("--json", dest="json_out", nargs="?", const="-", metavar="OUT",
                   help="write the full report as JSON (to stdout without OUT)")  # fmt: skip
    b.add_argument("--threads", type=_thread_list, default=[2], metavar="N[,N]",
                   help="interpreter threads for the tracker, e.g. 2 or 1,2 (default 2)")  # fmt: skip
    b.add_argument("--config", metavar="FILE", help="TOML config")
    b.set_defaults(func=cmd_bench)


def _thread_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of thread counts: {text!r}") from None
    if not values or any(not 1 <= v <= 16 for v in values):
        raise argparse.ArgumentTypeError(f"thread counts must be 1..16, got {text!r}")
    return values


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


def cmd_bench(args: argparse.Namespace) -> int:
    from device.bench import format_report, run_bench

    cfg = load_config(args.config)
    sections = {s.strip() for s in args.only.split(",") if s.strip()} or None
    report = run_bench(
        cfg,
        video=args.video,
        max_frames=args.max_frames,
        rounds=args.rounds,
        threads=args.threads,
        reference_python=args.reference_python,
        sections=sections,
        progress=sys.stderr.isatty(),
    )
    if args.json_out == "-":
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
        if args.json_out:
            from device.vision.track import write_json_atomic

            write_json_atomic(args.json_out, report)
    return 0
