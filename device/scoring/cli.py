"""``flexscore score``: score a tracked trial (``--landmarks``), a folder of them
(``--batch DIR --csv OUT``), or a video (needs the tracker).

``--item mass_flexion|mass_extension|all`` (default: the config's ``trial.item``) picks the
assessment item(s) (:mod:`device.items`); ``all`` scores every item from the one recording
(the combined protocol "make a fist, then open your hand fully") and ``--json`` then prints a
list of item results, each naming its ``item``. With one item ``--json`` prints that item's
result document (with ``item`` and ``item_name`` first)."""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from device.config import Config, load_config, replace
from device.errors import FlexscoreError, InputError
from device.items import AssessmentItem, resolve_items
from device.scoring.decide import Decider
from device.scoring.types import Result
from device.trial.io import load_track_json
from device.trial.types import Side, Trial

log = logging.getLogger(__name__)

CSV_FIELDS = ("file", "status", "score", "p0", "p1", "p2", "confidence", "rule_score", "review", "reasons")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "score",
        help="score one trial (Fugl-Meyer hand items: 0/1/2 or not scorable)",
        description="Score the Fugl-Meyer 'mass finger flexion' and/or 'mass finger extension' "
        "item from a video, a tracked trial (flexscore track JSON; z optional) or a folder of "
        "tracked trials.",
    )
    p.add_argument("video", nargs="?", help="a video of one trial (needs the hand tracker)")
    p.add_argument("--landmarks", metavar="FILE", help="a trial in the flexscore track JSON format")
    p.add_argument("--batch", metavar="DIR", help="score every *.json track file in DIR")
    p.add_argument("--csv", metavar="OUT", help="with --batch: write one row per trial here")
    p.add_argument("--side", choices=["left", "right"], help="the affected side being assessed")
    p.add_argument(
        "--mirrored",
        action="store_true",
        help="the video is a mirrored (selfie) view, as the bundled sample clip is: hand sides "
        "are then read as the model names them (config: tracker.mirrored)",
    )
    p.add_argument(
        "--reference",
        metavar="VIDEO",
        help="a video of the unaffected hand's trial: score relative to that hand's range",
    )
    p.add_argument(
        "--reference-landmarks",
        metavar="FILE",
        help="the unaffected hand's trial as a track JSON file (with --landmarks or VIDEO)",
    )
    p.add_argument(
        "--item",
        metavar="ITEM",
        help="the item to score: mass_flexion, mass_extension, or all (every item from one "
        "recording: 'make a fist, then open your hand fully'); default: the config's trial.item",
    )
    p.add_argument("--config", metavar="TOML", help="config file (default: built-in defaults)")
    p.add_argument("--json", action="store_true", help="print the full JSON result")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    if args.side:
        cfg = replace(cfg, trial=replace(cfg.trial, side=args.side))
    if args.mirrored:
        cfg = replace(cfg, tracker=replace(cfg.tracker, mirrored=True))
    return cfg


def _items(args: argparse.Namespace, cfg: Config) -> tuple[AssessmentItem, ...]:
    """The items to score (``--item``, else ``trial.item``); an unknown key is an error naming
    the known ones."""
    return resolve_items(args.item if args.item is not None else cfg.trial.item)


def _summary(res: Result) -> str:
    mode = f"  [{res.details['mode']} mode]" if "mode" in res.details else ""
    if res.status == "scored":
        flag = "  (review)" if res.review else ""
        return f"score {res.score}  confidence {res.confidence:.0%}  rule {res.rule_score}{flag}{mode}"
    return "not scorable: " + "; ".join(res.reasons)


def trial_from_video(path: str, cfg: Config, side: Side | None) -> Trial:
    """Track a video into a trial with the hand tracker (one observation per frame)."""
    try:
        video_mod = importlib.import_module("device.video")
        tracker_mod = importlib.import_module("device.vision.tracker")
        track_mod = importlib.import_module("device.vision.track")
    except ImportError as exc:
        raise FlexscoreError(
            f"video scoring needs the tracker ({exc}); track the video first and use --landmarks"
        ) from None
    with tracker_mod.build_tracker(cfg) as tracker:
        observations = track_mod.track_frames(tracker, video_mod.read_frames(path))
    if not observations:
        raise InputError(f"video {path} has no frames")
    return Trial.from_observations(observations, side=side, mirrored=cfg.tracker.mirrored)


def score_trial_json(trial: Trial, decider: Decider) -> dict[str, Any]:
    """The CLI document for one trial (the default item)."""
    return decider.score(trial).to_json()


def run(args: argparse.Namespace) -> int:
    chosen = [x for x in (args.video, args.landmarks, args.batch) if x]
    if len(chosen) != 1:
        raise InputError("give exactly one of VIDEO, --landmarks FILE or --batch DIR")
    if args.csv and not args.batch:
        raise InputError("--csv goes with --batch")
    if args.reference and args.reference_landmarks:
        raise InputError("give at most one of --reference VIDEO or --reference-landmarks FILE")
    if args.batch and (args.reference or args.reference_landmarks):
        raise InputError("a reference trial goes with one trial (VIDEO or --landmarks), not --batch")
    cfg = _config(args)
    items = _items(args, cfg)
    decider = Decider(cfg)
    try:
        if args.batch:
            if len(items) != 1:
                raise InputError("--batch scores one item: give --item mass_flexion or mass_extension")
            return _run_batch(Path(args.batch), args, decider, items[0])
        side: Side | None = args.side
        trial = (
            load_track_json(args.landmarks, side=side)
            if args.landmarks
            else trial_from_video(args.video, cfg, side)
        )
        other: Side | None = None if side is None else ("left" if side == "right" else "right")
        reference: Trial | None = None
        if args.reference_landmarks:
            reference = load_track_json(args.reference_landmarks, side=other)
        elif args.reference:
            reference = trial_from_video(args.reference, cfg, other)
        results = decider.score_items(trial, items, reference=reference)
        if args.json:
            docs = [r.to_json() for r in results]
            print(json.dumps(docs if args.item == "all" or len(docs) > 1 else docs[0], indent=2))
        else:
            for r in results:
                prefix = f"{r.item.key}: " if len(results) > 1 else ""
                print(prefix + _summary(r.result))
                for reason in r.result.reasons:
                    print(f"  - {reason}")
        return 0
    finally:
        decider.close()


def _run_batch(folder: Path, args: argparse.Namespace, decider: Decider, item: AssessmentItem) -> int:
    from tqdm import tqdm

    if not folder.is_dir():
        raise InputError(f"batch folder not found: {folder}")
    files = sorted(folder.glob("*.json"))
    if not files:
        raise InputError(f"no *.json track files in {folder}")
    rows: list[dict[str, Any]] = []
    failed = 0
    for path in tqdm(files, desc="scoring", unit="trial", file=sys.stderr):
        try:
            doc = decider.score(load_track_json(path, side=args.side), item=item).to_json()
        except FlexscoreError as exc:
            failed += 1
            log.warning("%s: %s", path.name, exc)
            doc = {
                "status": "error",
                "score": None,
                "probabilities": None,
                "confidence": None,
                "rule_score": None,
                "review": None,
                "reasons": [str(exc)],
            }
        probs = doc["probabilities"] or [None, None, None]
        rows.append(
            {
                "file": path.name,
                "status": doc["status"],
                "score": doc["score"],
                "p0": probs[0],
                "p1": probs[1],
                "p2": probs[2],
                "confidence": doc["confidence"],
                "rule_score": doc["rule_score"],
                "review": doc["review"],
                "reasons": " | ".join(doc["reasons"]),
            }
        )
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    labels = folder / "labels.csv"
    if labels.is_file():
        _report_against_labels(rows, labels)
    scored = sum(r["status"] == "scored" for r in rows)
    print(
        f"{len(rows)} trials: {scored} scored, {len(rows) - scored - failed} not scorable, "
        f"{failed} errors" + (f" → {args.csv}" if args.csv else "")
    )
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


def _report_against_labels(rows: list[dict[str, Any]], labels: Path) -> None:
    """When the folder has a labels.csv (file,score), print agreement with those labels."""
    import numpy as np

    from device.scoring.metrics import summarize

    with labels.open(encoding="utf-8") as f:
        truth = {r["file"]: int(r["score"]) for r in csv.DictReader(f)}
    got = [(truth[r["file"]], r) for r in rows if r["file"] in truth]
    scored = [(t, r) for t, r in got if r["status"] == "scored"]
    if not got:
        return
    y = np.array([t for t, _ in scored], dtype=int)
    pred = np.array([r["score"] for _, r in scored], dtype=int)
    prob = np.array([[r["p0"], r["p1"], r["p2"]] for _, r in scored], dtype=float)
    m = summarize(y, pred, prob if len(prob) else None)
    rule = np.array([r["rule_score"] for _, r in scored], dtype=int)
    print(
        f"against {labels.name}: {len(got)} labelled, {len(scored)} scored "
        f"({len(got) - len(scored)} not scorable/errors); accuracy of scored "
        f"{m['accuracy']}, QWK {m['qwk']}, ECE {m.get('ece')}, recall {m['recall']}, "
        f"rule accuracy {round(float((rule == y).mean()), 4) if len(y) else None}"
    )
    print(f"confusion (rows true 0/1/2, columns scored 0/1/2): {m['confusion']}")
