#!/usr/bin/env python3
"""Run MediaPipe's legacy Hands (the accuracy and speed reference) on given frames.

Runs only inside the reference venv made by ``scripts/make_reference_venv.sh``
(mediapipe==0.10.21, numpy<2); it must not import ``device`` (the device venv has no
mediapipe, and this venv has no ``device``).

Video mode (the benchmark and the evaluation feed it the SAME decoded frames as our tracker)::

    .venv-ref/bin/python device/tools/reference_hands.py --frames FRAMES.npy --complexity 1 \
        --out REF.json [--warmup 5]

``FRAMES.npy`` is uint8 [N, H, W, 3] RGB. Only ``hands.process`` is timed, per frame, with
``time.perf_counter``. Warm-up frames (the first K frames, processed by a separate
``Hands`` instance that is then closed) are not timed and do not change the tracking state
of the timed run.

Still photos (``static_image_mode=True``), one result per image::

    .venv-ref/bin/python device/tools/reference_hands.py --image a.jpg b.jpg --complexity 1 \
        --out REF.json

Output JSON: ``{"complexity", "mediapipe_version", "mode", "frames": N, "width", "height",
"per_frame_ms": [...], "mean_ms", "median_ms", "results": [{"detected",
"handedness", "score", "landmarks": [[x_px, y_px, z] × 21] | null}]}`` (image mode adds
``"images"``: the file names, and per-result ``width``/``height``). Landmark x, y are
pixels of the frame (normalised × width/height); z is MediaPipe's relative depth scaled by
the width, like x. ``handedness`` is MediaPipe's label as-is (it assumes a mirrored image).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, NoReturn


def _fail(message: str) -> NoReturn:
    print(f"reference_hands: error: {message}", file=sys.stderr)
    raise SystemExit(2)


try:
    import mediapipe as mp
    import numpy as np
except ImportError as exc:  # pragma: no cover - depends on the venv
    _fail(
        f"{exc}. Run this script with the reference venv's python "
        "(scripts/make_reference_venv.sh makes .venv-ref)."
    )


def _result(res: Any, width: int, height: int) -> dict[str, Any]:
    """The first hand of a ``Hands.process`` result as JSON (pixels of the frame)."""
    if not res.multi_hand_landmarks:
        return {"detected": False, "handedness": None, "score": 0.0, "landmarks": None}
    lms = res.multi_hand_landmarks[0].landmark
    label = None
    score = 0.0
    if res.multi_handedness:
        cls = res.multi_handedness[0].classification[0]
        label, score = cls.label, float(cls.score)
    return {
        "detected": True,
        "handedness": label,
        "score": round(score, 5),
        "landmarks": [[round(p.x * width, 3), round(p.y * height, 3), round(p.z * width, 3)] for p in lms],
    }


def _hands(static: bool, complexity: int) -> Any:
    return mp.solutions.hands.Hands(
        static_image_mode=static,
        max_num_hands=1,
        model_complexity=complexity,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    )


def _summary(per_frame_ms: list[float]) -> dict[str, Any]:
    return {
        "per_frame_ms": [round(x, 4) for x in per_frame_ms],
        "mean_ms": round(statistics.fmean(per_frame_ms), 4) if per_frame_ms else None,
        "median_ms": round(statistics.median(per_frame_ms), 4) if per_frame_ms else None,
    }


def run_video(frames: np.ndarray, complexity: int, warmup: int) -> dict[str, Any]:
    n, height, width = frames.shape[:3]
    if warmup > 0:
        with _hands(False, complexity) as warm:
            for i in range(min(warmup, n)):
                warm.process(frames[i])
    per_frame_ms: list[float] = []
    results: list[dict[str, Any]] = []
    with _hands(False, complexity) as hands:
        for i in range(n):
            frame = frames[i]
            t0 = time.perf_counter()
            res = hands.process(frame)
            per_frame_ms.append((time.perf_counter() - t0) * 1000.0)
            results.append(_result(res, width, height))
    return {
        "mode": "video",
        "frames": int(n),
        "width": int(width),
        "height": int(height),
        **_summary(per_frame_ms),
        "results": results,
    }


def run_images(paths: list[Path], complexity: int) -> dict[str, Any]:
    import cv2

    per_frame_ms: list[float] = []
    results: list[dict[str, Any]] = []
    with _hands(True, complexity) as hands:
        for p in paths:
            bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if bgr is None:
                _fail(f"cannot read image {p}")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            t0 = time.perf_counter()
            res = hands.process(rgb)
            per_frame_ms.append((time.perf_counter() - t0) * 1000.0)
            results.append({**_result(res, w, h), "width": w, "height": h})
    return {
        "mode": "image",
        "frames": len(paths),
        "images": [p.name for p in paths],
        **_summary(per_frame_ms),
        "results": results,
    }


def load_frames(path: Path) -> np.ndarray:
    try:
        frames = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        _fail(f"cannot load frames {path}: {exc}")
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        _fail(f"{path}: expected uint8 [N, H, W, 3] RGB, got {frames.dtype} {list(frames.shape)}")
    if frames.shape[0] == 0:
        _fail(f"{path}: zero frames")
    return np.ascontiguousarray(frames)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--frames", type=Path, help="uint8 [N,H,W,3] RGB frames (.npy), video mode")
    src.add_argument("--image", type=Path, nargs="+", help="still photos, static image mode")
    ap.add_argument("--complexity", type=int, choices=(0, 1), default=1)
    ap.add_argument("--out", type=Path, required=True, help="output JSON")
    ap.add_argument("--warmup", type=int, default=0, help="untimed warm-up frames (video mode)")
    args = ap.parse_args(argv)

    if args.frames is not None:
        doc = run_video(load_frames(args.frames), args.complexity, max(0, args.warmup))
    else:
        doc = run_images(list(args.image), args.complexity)
    doc = {
        "complexity": args.complexity,
        "mediapipe_version": mp.__version__,
        "python": sys.version.split()[0],
        "numpy_version": np.__version__,
        "cpu_count": os.cpu_count(),
        **doc,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc), encoding="utf-8")
    det = sum(r["detected"] for r in doc["results"])
    print(
        f"mediapipe {mp.__version__} complexity {args.complexity} ({doc['mode']}): "
        f"{doc['frames']} frames, hand in {det}, mean {doc['mean_ms']} ms, "
        f"median {doc['median_ms']} ms per frame -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
