"""``flexscore bench`` and ``flexscore train``: the workstation commands.

Registered by :mod:`device.cli` like every other command module; they import the runtime
(and, for ``train``, TensorFlow lazily), never the reverse.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from device.config import load_config
from device.data import SAMPLE_VIDEO
from device.errors import InputError
from device.site_cli import _common, _config


def register(sub: Any) -> None:
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

    p = sub.add_parser(
        "train",
        help="train a candidate scorer from a store's labelled trials (workstation, train extra)",
        description="Build trials from the stored landmarks and clinician labels, hold out a "
        "stratified part, fine-tune the current scorer (or train fresh), export full int8 and "
        "write a candidate directory with a report comparing it with the current model on the "
        "same held-out trials. Needs TensorFlow: pip install 'flexscore[train]'; never on the Pi.",
    )
    p.add_argument("--from-store", metavar="STORE", required=True, help="a copy of the trial store")
    p.add_argument("--out", metavar="DIR", required=True, help="the candidate directory to write")
    p.add_argument("--variant", choices=["hand", "3d", "2d"],
                   help="which scorer (default: the one the appliance uses with --config)")  # fmt: skip
    p.add_argument("--init", choices=["current", "fresh"], default="current",
                   help="fine-tune the current scorer (default) or train from scratch")  # fmt: skip
    p.add_argument("--current-models", metavar="DIR",
                   help="the models in use on the device: a copy of STATE/models "
                   "(default: the installed ones of --state-dir, else the shipped models/)")  # fmt: skip
    p.add_argument("--heldout", type=float, default=0.3, help="held-out share per score (default 0.3)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="most training epochs (default 40 with early stopping; --small 3)",
    )
    p.add_argument("--small", action="store_true", help="tiny configuration (tests, CI)")
    _common(p)
    p.set_defaults(func=run_train)


def _thread_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of thread counts: {text!r}") from None
    if not values or any(not 1 <= v <= 16 for v in values):
        raise argparse.ArgumentTypeError(f"thread counts must be 1..16, got {text!r}")
    return values


def cmd_bench(args: argparse.Namespace) -> int:
    from device.tools.bench import format_report, run_bench

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


def run_train(args: argparse.Namespace) -> int:
    from device.scoring.candidate import SCORER_NAMES, device_variant
    from device.tools.training import train_from_store

    cfg, state = _config(args)
    variant = args.variant or device_variant(cfg)
    if args.current_models:
        current = Path(args.current_models)
    else:
        from device.scoring.installed import scorer_dir

        current = scorer_dir(cfg.models.resolved_dir(), state, SCORER_NAMES[variant])
    if not 0.1 <= args.heldout <= 0.6:
        raise InputError("--heldout must be between 0.1 and 0.6")
    report = train_from_store(
        Path(args.from_store),
        Path(args.out),
        variant=variant,
        init=args.init,
        current_dir=current,
        heldout=args.heldout,
        seed=args.seed,
        small=args.small,
        epochs=args.epochs,
    )
    held = report["heldout"]
    print(f"candidate {report['candidate']['version']} written to {args.out}")
    for who in ("current", "candidate"):
        m = held[who]
        print(
            f"  held-out ({held['n']} trials) {who:9s}: QWK {m['qwk']:.3f}, accuracy {m['accuracy']:.0%}, "
            "recall 0/1/2 " + "/".join("—" if r is None else f"{r:.0%}" for r in m["recall"])
        )
    gate = report["gate"]
    if gate["problems"]:
        print("  the install gate would refuse it:")
        for prob in gate["problems"]:
            print(f"   - {prob}")
    else:
        print(
            "  passes the install gate here: copy the directory to the device, "
            "then run flexscore models install"
        )
    return 0
