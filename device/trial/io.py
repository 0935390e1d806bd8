"""Read and write trials in the ``flexscore track`` JSON format.

The format (one document per recording)::

    {"width": W, "height": H, "fps": F,
     "mirrored": false,              # optional: frames were a selfie (mirrored) view
     "side": "left" | "right",       # optional: affected side
     "frames": [{"index": i, "t": seconds, "detected": bool, "presence": p,
                 "handedness": "Left" | "Right" | null,
                 "landmarks": [[x, y, z] * 21] | [[x, y] * 21] | null,
                 "world": [[x, y, z] * 21] | null}, ...]}   # optional

Landmarks are pixels of the frame. ``z`` may be missing (2D keypoints from another tracker
or an older recording): the trial is then marked ``has_z=False`` and its z column is NaN.
Mixing 2D and 3D frames in one document is an error.

``world`` (optional) is the landmark model's world output: metres, in the hand's own frame
(origin near the hand's centre), the same joint order. A document where no frame has it —
another tracker's keypoints, or a file written before world landmarks were kept — gives a
trial with ``world`` None, scored through the 2D path. On a frame without landmarks it is
ignored; on a tracked frame it may be null (that frame has no world landmarks).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import InputError
from device.trial.types import Side, Trial
from device.vision.types import NUM_LANDMARKS

log = logging.getLogger(__name__)

WORLD_DECIMALS = 5  # world landmarks in JSON: metres to 10 µm (the model's own noise is ~mm)


def _num(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where} must be a number, got {value!r}")
    return float(value)


def trial_from_track_doc(doc: Any, *, side: Side | None = None, source: str = "document") -> Trial:
    """Build a :class:`Trial` from a parsed track document (see the module docstring)."""
    if not isinstance(doc, dict):
        raise InputError(f"{source}: a track document must be a JSON object")
    for key in ("width", "height", "frames"):
        if key not in doc:
            raise InputError(f"{source}: missing key '{key}'")
    width = _num(doc["width"], f"{source}: width")
    height = _num(doc["height"], f"{source}: height")
    if width <= 0 or height <= 0:
        raise InputError(f"{source}: width and height must be > 0")
    frames = doc["frames"]
    if not isinstance(frames, list) or not frames:
        raise InputError(f"{source}: 'frames' must be a non-empty list")
    fps = doc.get("fps")
    fps_val = _num(fps, f"{source}: fps") if fps is not None else 0.0

    n = len(frames)
    lm = np.full((n, NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    t = np.zeros(n, dtype=np.float64)
    pres = np.zeros(n, dtype=np.float32)
    hands: list[str | None] = []
    dims: set[int] = set()
    world = np.full((n, NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    any_world = False
    for i, fr in enumerate(frames):
        where = f"{source}: frames[{i}]"
        if not isinstance(fr, dict):
            raise InputError(f"{where} must be an object")
        if fr.get("t") is not None:
            t[i] = _num(fr["t"], f"{where}.t")
        elif fps_val > 0:
            t[i] = _num(fr.get("index", i), f"{where}.index") / fps_val
        else:
            raise InputError(f"{where} has no 't' and the document has no 'fps'")
        pts = fr.get("landmarks")
        detected = bool(fr.get("detected", pts is not None)) and pts is not None
        hand = fr.get("handedness")
        if hand is not None and hand not in ("Left", "Right"):
            raise InputError(f"{where}.handedness must be 'Left', 'Right' or null, got {hand!r}")
        hands.append(hand if detected else None)
        if not detected:
            continue
        try:
            arr = np.asarray(pts, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{where}.landmarks must be 21 numeric [x, y(, z)] points") from None
        if arr.ndim != 2 or arr.shape[0] != NUM_LANDMARKS or arr.shape[1] not in (2, 3):
            raise InputError(
                f"{where}.landmarks must be 21 × [x, y] or 21 × [x, y, z], got shape {arr.shape}"
            )
        dims.add(arr.shape[1])
        lm[i, :, : arr.shape[1]] = arr
        if fr.get("world") is not None:
            world[i] = _world_points(fr["world"], f"{where}.world")
            any_world = True
        p = fr.get("presence", 1.0)
        pres[i] = _num(p, f"{where}.presence") if p is not None else 1.0
    if len(dims) > 1:
        raise InputError(f"{source}: frames mix 2D and 3D landmarks")
    has_z = dims != {2}
    doc_side = doc.get("side")
    if doc_side is not None and doc_side not in ("left", "right"):
        raise InputError(f"{source}: side must be 'left' or 'right', got {doc_side!r}")
    mirrored = doc.get("mirrored", False)
    if not isinstance(mirrored, bool):
        raise InputError(f"{source}: mirrored must be true or false")
    return Trial(
        landmarks=lm,
        t=t - t[0],
        presence=pres,
        handedness=tuple(hands),
        image_size=(round(width), round(height)),
        side=side if side is not None else doc_side,
        mirrored=mirrored,
        has_z=has_z,
        world=world if any_world else None,
    )


def _world_points(pts: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(pts, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where} must be 21 numeric [x, y, z] points (metres) or null") from None
    if arr.shape != (NUM_LANDMARKS, 3):
        raise InputError(f"{where} must be 21 × [x, y, z] (metres) or null, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{where} must be finite numbers (metres)")
    return arr


def load_track_json(path: str | Path, *, side: Side | None = None) -> Trial:
    """Read a ``flexscore track`` JSON file into a :class:`Trial`; errors name the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"landmarks file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read landmarks file {p}: {exc}") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise InputError(f"landmarks file {p} is not valid JSON: {exc}") from None
    return trial_from_track_doc(doc, side=side, source=str(p))


def trial_to_track_doc(trial: Trial, *, fps: float | None = None) -> dict[str, Any]:
    """The inverse of :func:`trial_from_track_doc` (2D points when ``has_z`` is False; a
    ``world`` key per frame when the trial has world landmarks)."""
    frames = []
    ncol = 3 if trial.has_z else 2
    for i in range(trial.num_frames):
        row = trial.landmarks[i]
        detected = bool(np.isfinite(row[:, :2]).all())
        frame: dict[str, Any] = {
            "index": i,
            "t": round(float(trial.t[i]), 6),
            "detected": detected,
            "presence": round(float(trial.presence[i]), 4) if detected else 0.0,
            "handedness": trial.handedness[i] if detected else None,
            "landmarks": [[round(float(v), 3) for v in pt[:ncol]] for pt in row] if detected else None,
        }
        if trial.world is not None:
            frame["world"] = world_json(trial.world[i])
        frames.append(frame)
    rate = fps if fps is not None else trial.fps
    doc: dict[str, Any] = {
        "width": trial.image_size[0],
        "height": trial.image_size[1],
        "fps": round(rate, 4) if math.isfinite(rate) else 0.0,
        "mirrored": trial.mirrored,
        "frames": frames,
    }
    if trial.side is not None:
        doc["side"] = trial.side
    return doc


def world_json(points: np.ndarray | None) -> list[list[float]] | None:
    """One frame's world landmarks as JSON: metres rounded to 10 µm, or None if missing."""
    if points is None or not np.isfinite(points).all():
        return None
    rounded: list[list[float]] = np.round(points.astype(np.float64), WORLD_DECIMALS).tolist()
    return rounded


def save_track_json(trial: Trial, path: str | Path) -> None:
    """Write a trial as a track JSON document."""
    Path(path).write_text(json.dumps(trial_to_track_doc(trial)), encoding="utf-8")
