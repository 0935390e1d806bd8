"""Accuracy evaluation of the hand tracker against a reference (pure numpy).

The reference is MediaPipe's own output on the same frames (``*.mp_reference.csv`` in the
shared data, JSON written by ``device/tools/reference_hands.py``, or TFJS's ``asl_hand.full.json``).
These are *model outputs*, not human ground truth: the figures say how closely our TFLite
pipeline reproduces MediaPipe Hands, nothing more.

Conventions:
    * landmarks are pixel arrays ``[N, 21, 2]`` (or ``[N, 21, 3]``; only x, y are compared),
      NaN in frames without a hand; ``detected`` is a bool array ``[N]``;
    * pixel coordinates are *continuous*: the pixel with index ``i`` covers ``[i, i + 1)``,
      so flipping a frame of width ``W`` maps ``x`` to ``W - x`` (MediaPipe's normalised
      coordinates times the image size follow the same convention);
    * the landmark error of one frame is the mean over the 21 joints of the Euclidean pixel
      distance, divided by the reference hand size (longer side of the reference landmarks'
      bounding box), in percent.

Nothing here imports mediapipe or a model runtime, so it runs on the device as well.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from device.errors import InputError
from device.vision.types import NUM_LANDMARKS, HandObservation

# Acceptance thresholds of issue 3 (reference agreement with the full model).
MIN_DETECTION_RATE = 0.98  # share of reference-detected frames where we detect
MAX_MEDIAN_ERROR_PCT = 3.0  # median landmark error, % of hand size
MAX_P95_ERROR_PCT = 8.0  # 95th percentile landmark error, % of hand size
MAX_ORIENTATION_RATE_DROP = 0.02  # flipped / rotated detection rate vs upright (2 points)

# How many of the worst frames ``compare`` lists by index.
WORST_FRAMES = 5


# --------------------------------------------------------------------------- loading


def _empty(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n, dtype=bool), np.full((n, NUM_LANDMARKS, 2), np.nan, dtype=np.float64)


def load_mp_reference_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``<video>.mp_reference.csv`` (format in shared/data/MANIFEST.md).

    Returns ``(detected[N] bool, landmarks[N, 21, 2] float64)`` with NaN landmarks where the
    reference found no hand. Rows are placed by their ``frame`` column.
    """
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise InputError(f"cannot read reference CSV {p}: {exc}") from None
    columns = [f"{axis}{j}" for j in range(NUM_LANDMARKS) for axis in ("x", "y")]
    if not rows:
        return _empty(0)
    missing = [c for c in ("frame", "detected", *columns) if c not in rows[0]]
    if missing:
        raise InputError(f"reference CSV {p} lacks column(s): {', '.join(missing[:5])}")
    try:
        frames = [int(r["frame"]) for r in rows]
        n = max(frames) + 1
        detected, landmarks = _empty(n)
        for idx, row in zip(frames, rows, strict=True):
            if row["detected"].strip() not in ("1", "true", "True"):
                continue
            values = np.array([float(row[c]) for c in columns], dtype=np.float64)
            detected[idx] = True
            landmarks[idx] = values.reshape(NUM_LANDMARKS, 2)
    except (ValueError, TypeError) as exc:
        raise InputError(f"reference CSV {p} has a bad value: {exc}") from None
    return detected, landmarks


def load_tfjs_reference(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read TFJS's ``asl_hand.full.json``: a list of frames, each 21 ``[x, y, z]`` pixels.

    A frame that is empty (or null) counts as "no hand". Returns
    ``(detected[N], landmarks[N, 21, 2])``.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read TFJS reference {p}: {exc}") from None
    if not isinstance(data, list):
        raise InputError(f"TFJS reference {p}: expected a list of frames")
    detected, landmarks = _empty(len(data))
    for i, frame in enumerate(data):
        if not frame:
            continue
        arr = np.asarray(frame, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] != NUM_LANDMARKS or arr.shape[1] < 2:
            raise InputError(f"TFJS reference {p}: frame {i} has shape {arr.shape}")
        detected[i] = True
        landmarks[i] = arr[:, :2]
    return detected, landmarks


def load_reference_json(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the JSON written by ``device/tools/reference_hands.py`` (``results`` list)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        results = data["results"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read reference JSON {p}: {exc}") from None
    detected, landmarks = _empty(len(results))
    for i, res in enumerate(results):
        if res.get("detected") and res.get("landmarks"):
            detected[i] = True
            landmarks[i] = np.asarray(res["landmarks"], dtype=np.float64)[:, :2]
    return detected, landmarks


def observations_to_arrays(
    per_frame: Sequence[Sequence[HandObservation]],
) -> tuple[np.ndarray, np.ndarray]:
    """Turn the tracker's per-frame observation lists into ``(detected[N], landmarks[N,21,2])``.

    With several hands in a frame the first detected one is used (one hand is tracked by
    default).
    """
    detected, landmarks = _empty(len(per_frame))
    for i, observations in enumerate(per_frame):
        for obs in observations:
            if obs.detected and obs.landmarks is not None:
                detected[i] = True
                landmarks[i] = np.asarray(obs.landmarks, dtype=np.float64)[:, :2]
                break
    return detected, landmarks


# --------------------------------------------------------------------------- metrics


def hand_size(landmarks: np.ndarray) -> np.ndarray | float:
    """Longer side of the landmarks' bounding box in pixels.

    ``landmarks`` is ``[21, 2|3]`` (returns a float) or ``[N, 21, 2|3]`` (returns ``[N]``);
    NaN for frames without landmarks.
    """
    arr = np.asarray(landmarks, dtype=np.float64)
    if arr.ndim not in (2, 3) or arr.shape[-2] != NUM_LANDMARKS or arr.shape[-1] < 2:
        raise InputError(f"landmarks must be [21, 2|3] or [N, 21, 2|3], got {arr.shape}")
    xy = arr[..., :2]
    with np.errstate(invalid="ignore"):
        extent = xy.max(axis=-2) - xy.min(axis=-2)
        size = extent.max(axis=-1)
    if arr.ndim == 2:
        return float(size)
    return np.asarray(size)


def landmark_errors(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-frame mean joint distance in % of the reference hand size (NaN where undefined)."""
    a = np.asarray(ours, dtype=np.float64)[..., :2]
    b = np.asarray(ref, dtype=np.float64)[..., :2]
    if a.shape != b.shape:
        raise InputError(f"landmark arrays differ in shape: {a.shape} vs {b.shape}")
    dist = np.linalg.norm(a - b, axis=-1).mean(axis=-1)
    size = np.asarray(hand_size(b), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = 100.0 * dist / size
    return np.where(size > 0, err, np.nan)


def _stat(values: np.ndarray, fn: str) -> float | None:
    if values.size == 0:
        return None
    if fn == "median":
        return float(np.median(values))
    if fn == "p95":
        return float(np.percentile(values, 95))
    if fn == "max":
        return float(values.max())
    return float(values.mean())


def _as_inputs(detected: np.ndarray, landmarks: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    det = np.asarray(detected, dtype=bool)
    lm = np.asarray(landmarks, dtype=np.float64)
    if det.ndim != 1 or lm.ndim != 3 or lm.shape[0] != det.shape[0] or lm.shape[1] != 21:
        raise InputError(
            f"{name}: expected detected[N] and landmarks[N, 21, 2|3], got {det.shape}, {lm.shape}"
        )
    return det, lm[..., :2]


def compare(
    ours_detected: np.ndarray,
    ours_lm: np.ndarray,
    ref_detected: np.ndarray,
    ref_lm: np.ndarray,
) -> dict[str, Any]:
    """Compare our per-frame hand landmarks with a reference on the same frames.

    Both sides must have the same number of frames. Returns a JSON-ready dict:
    ``frames``, ``ref_detected``, ``ours_detected``, ``both_detected``,
    ``detection_rate_vs_ref`` (share of reference-detected frames where we detect; None when
    the reference never detects), ``missed`` and ``missed_frames`` (reference detects, we
    do not), ``false_detections`` and ``false_frames`` (we detect, reference does not),
    ``median_err_pct`` / ``p95_err_pct`` / ``max_err_pct`` / ``mean_err_pct`` (per-frame
    mean joint distance in % of the reference hand size, over frames both detect; None when
    there are none), ``median_err_px``, and ``worst_frames`` (up to 5 ``[index, err_pct]``).
    """
    od, ol = _as_inputs(ours_detected, ours_lm, "ours")
    rd, rl = _as_inputs(ref_detected, ref_lm, "reference")
    if od.shape != rd.shape:
        raise InputError(f"frame counts differ: ours {od.shape[0]}, reference {rd.shape[0]}")
    both = od & rd
    errs_all = np.full(od.shape[0], np.nan)
    if both.any():
        errs_all[both] = landmark_errors(ol[both], rl[both])
    valid = both & np.isfinite(errs_all)
    errs = errs_all[valid]
    px = np.linalg.norm(ol[valid] - rl[valid], axis=-1).mean(axis=-1) if valid.any() else errs
    idx_valid = np.flatnonzero(valid)
    order = np.argsort(errs)[::-1][:WORST_FRAMES]
    n_ref = int(rd.sum())
    missed = np.flatnonzero(rd & ~od)
    false = np.flatnonzero(od & ~rd)
    return {
        "frames": int(od.shape[0]),
        "ref_detected": n_ref,
        "ours_detected": int(od.sum()),
        "both_detected": int(both.sum()),
        "detection_rate_vs_ref": (float(both.sum()) / n_ref) if n_ref else None,
        "missed": int(missed.size),
        "missed_frames": [int(i) for i in missed],
        "false_detections": int(false.size),
        "false_frames": [int(i) for i in false],
        "median_err_pct": _stat(errs, "median"),
        "p95_err_pct": _stat(errs, "p95"),
        "max_err_pct": _stat(errs, "max"),
        "mean_err_pct": _stat(errs, "mean"),
        "median_err_px": _stat(px, "median"),
        "worst_frames": [[int(idx_valid[i]), round(float(errs[i]), 2)] for i in order],
    }


def meets_acceptance(result: dict[str, Any]) -> list[str]:
    """Reasons a :func:`compare` result fails issue 3's reference agreement (empty: passes)."""
    reasons: list[str] = []
    rate = result.get("detection_rate_vs_ref")
    if rate is not None and rate < MIN_DETECTION_RATE:
        reasons.append(f"detection rate {100 * rate:.1f} % < {100 * MIN_DETECTION_RATE:.0f} %")
    med = result.get("median_err_pct")
    if med is not None and med > MAX_MEDIAN_ERROR_PCT:
        reasons.append(f"median error {med:.2f} % > {MAX_MEDIAN_ERROR_PCT} %")
    p95 = result.get("p95_err_pct")
    if p95 is not None and p95 > MAX_P95_ERROR_PCT:
        reasons.append(f"p95 error {p95:.2f} % > {MAX_P95_ERROR_PCT} %")
    if result.get("ref_detected") and med is None:
        reasons.append("no frame where both detect")
    return reasons


# --------------------------------------------------------------------------- geometry
#
# A flipped or rotated run is compared with the upright reference by mapping the reference
# landmarks into the transformed frame (distances and hand sizes are unchanged by these
# rigid maps, so the error figures are directly comparable).


def flip_frame(rgb: np.ndarray) -> np.ndarray:
    """Mirror a frame left–right (contiguous copy)."""
    return np.ascontiguousarray(rgb[:, ::-1])


def rotate_frame(rgb: np.ndarray, k: int = 1) -> np.ndarray:
    """Rotate a frame by ``k`` × 90° counter-clockwise, like ``np.rot90`` (contiguous copy)."""
    return np.ascontiguousarray(np.rot90(rgb, k % 4))


def flip_landmarks(landmarks: np.ndarray, width: float) -> np.ndarray:
    """Landmarks of a frame of ``width`` pixels mirrored left–right: ``x → width − x``.

    Works for ``[..., 2|3]`` arrays; z is kept. NaN stays NaN.
    """
    out = np.array(landmarks, dtype=np.float64, copy=True)
    out[..., 0] = width - out[..., 0]
    return out


def rotate_landmarks(landmarks: np.ndarray, size: tuple[int, int], k: int = 1) -> np.ndarray:
    """Map landmarks of a frame of ``size = (width, height)`` into ``rotate_frame(frame, k)``.

    One counter-clockwise quarter turn maps ``(x, y) → (y, width − x)``; the result lives in
    a frame of size ``(height, width)``. z is kept.
    """
    out = np.array(landmarks, dtype=np.float64, copy=True)
    w, h = float(size[0]), float(size[1])
    for _ in range(k % 4):
        x = out[..., 0].copy()
        out[..., 0] = out[..., 1]
        out[..., 1] = w - x
        w, h = h, w
    return out


def rotated_size(size: tuple[int, int], k: int = 1) -> tuple[int, int]:
    """(width, height) of a frame of ``size`` after ``k`` quarter turns."""
    return (size[1], size[0]) if k % 2 else (size[0], size[1])


ORIENTATIONS = ("upright", "flip", "rot90", "rot180", "rot270")
# Changes of appearance and motion a held-out clip may bring: the hand at half the distance's
# size (frame scaled by 0.5), under- and over-exposure, sensor noise, and motion twice as fast
# (every second frame, at the same frame rate; handled by the caller, frames are unchanged).
APPEARANCE = ("half", "dark", "bright", "noise", "fast")
_KNOWN = ", ".join(ORIENTATIONS + APPEARANCE)
_QUARTER_TURNS = {"rot90": 1, "rot180": 2, "rot270": 3}  # counter-clockwise, as np.rot90
_DARK_LUT = (255.0 * (np.arange(256) / 255.0) ** 2.0 + 0.5).astype(np.uint8)  # gamma 2: shadows crushed
_BRIGHT_LUT = np.clip(np.arange(256) * 1.6 + 0.5, 0, 255).astype(np.uint8)  # gain 1.6: highlights clip


def transform_reference(landmarks: np.ndarray, size: tuple[int, int], variant: str) -> np.ndarray:
    """Reference landmarks for a transformed run.

    ``variant``: ``"upright"`` (unchanged), ``"flip"`` (left–right mirror), ``"rot90"``
    (quarter turn counter-clockwise, ``np.rot90``), ``"rot270"`` (clockwise), ``"rot180"``;
    ``"half"`` (frame scaled to half its size, pixel centres kept), and the appearance and
    motion changes of :data:`APPEARANCE`, which leave the coordinates as they are.
    """
    if variant in ("upright", "dark", "bright", "noise", "fast"):
        return np.array(landmarks, dtype=np.float64, copy=True)
    if variant == "flip":
        return flip_landmarks(landmarks, size[0])
    if variant == "half":
        out = np.array(landmarks, dtype=np.float64, copy=True)
        w2, h2 = half_size(size)
        out[..., 0] = (out[..., 0] + 0.5) * (w2 / size[0]) - 0.5
        out[..., 1] = (out[..., 1] + 0.5) * (h2 / size[1]) - 0.5
        return out
    if variant in _QUARTER_TURNS:
        return rotate_landmarks(landmarks, size, _QUARTER_TURNS[variant])
    raise InputError(f"unknown variant {variant!r}: use {_KNOWN}")


def half_size(size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the ``"half"`` variant's frames."""
    return max(1, round(size[0] / 2)), max(1, round(size[1] / 2))


def transform_frame(rgb: np.ndarray, variant: str) -> np.ndarray:
    """The frame for ``variant`` (see :func:`transform_reference`)."""
    if variant in ("upright", "fast"):
        return rgb
    if variant == "flip":
        return flip_frame(rgb)
    if variant == "half":
        h, w = rgb.shape[:2]
        return cv2.resize(rgb, half_size((w, h)), interpolation=cv2.INTER_AREA)
    if variant == "dark":
        return _DARK_LUT[rgb]
    if variant == "bright":
        return _BRIGHT_LUT[rgb]
    if variant == "noise":  # σ = 8 grey levels, a fresh pattern per frame, reproducible
        rng = np.random.default_rng(int(rgb[::61, ::59].sum()))
        noisy = rgb + rng.normal(0.0, 8.0, rgb.shape).astype(np.float32)
        return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    if variant in _QUARTER_TURNS:
        return rotate_frame(rgb, _QUARTER_TURNS[variant])
    raise InputError(f"unknown variant {variant!r}: use {_KNOWN}")


def summarize(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Pool several :func:`compare` results: frame-weighted detection rate, worst medians."""
    items = list(results)
    n_ref = sum(r["ref_detected"] for r in items)
    both = sum(r["both_detected"] for r in items)
    meds = [r["median_err_pct"] for r in items if r["median_err_pct"] is not None]
    p95s = [r["p95_err_pct"] for r in items if r["p95_err_pct"] is not None]
    return {
        "videos": len(items),
        "ref_detected": n_ref,
        "both_detected": both,
        "detection_rate_vs_ref": both / n_ref if n_ref else None,
        "false_detections": sum(r["false_detections"] for r in items),
        "worst_median_err_pct": max(meds) if meds else None,
        "worst_p95_err_pct": max(p95s) if p95s else None,
    }


def finite_or_none(x: float | None) -> float | None:
    """JSON-safe float (NaN and inf become None)."""
    if x is None or not math.isfinite(x):
        return None
    return float(x)
