"""Landmark arrays of a trial ↔ a compressed ``.npz`` blob.

The blob holds everything :class:`~device.trial.types.Trial` needs, so a stored trial can
be re-scored by a future model: ``landmarks`` float32 [T, 21, 3], ``t`` float64 [T],
``presence`` float32 [T], ``handedness`` unicode [T] ('' for none), ``image_size`` int [2],
and ``meta`` (a JSON string: side, mirrored, has_z). Loading never unpickles.

Formats:

* ``npz-v1`` — the arrays above (trials stored before world landmarks were kept).
* ``npz-v2`` — the same, plus ``world`` float32 [T, 21, 3] (the landmark model's world
  landmarks, metres; NaN rows where a frame has none) when the trial has world landmarks;
  no ``world`` array when it has none. Written since schema 3.

Both are read; an ``npz-v1`` blob gives a trial with ``world`` None.
"""

from __future__ import annotations

import io
import json

import numpy as np

from device.errors import InputError, StoreError
from device.trial.types import Trial

FORMAT = "npz-v2"
FORMATS = ("npz-v1", "npz-v2")


def encode_trial(trial: Trial) -> bytes:
    buf = io.BytesIO()
    meta = {"side": trial.side, "mirrored": trial.mirrored, "has_z": trial.has_z}
    arrays: dict[str, np.ndarray] = {
        "landmarks": trial.landmarks.astype(np.float32),
        "t": trial.t.astype(np.float64),
        "presence": trial.presence.astype(np.float32),
        "handedness": np.array([h or "" for h in trial.handedness], dtype="U5"),
        "image_size": np.array(trial.image_size, dtype=np.int64),
        "meta": np.array(json.dumps(meta)),
    }
    if trial.world is not None:
        arrays["world"] = trial.world.astype(np.float32)
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def decode_trial(data: bytes, fmt: str = FORMAT) -> Trial:
    if fmt not in FORMATS:
        raise StoreError(f"unknown landmark format {fmt!r} (this version reads {', '.join(FORMATS)})")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            width, height = (int(v) for v in z["image_size"])
            world = z["world"] if fmt != "npz-v1" and "world" in z.files else None
            return Trial(
                landmarks=z["landmarks"],
                t=z["t"],
                presence=z["presence"],
                handedness=tuple(h or None for h in z["handedness"].tolist()),
                image_size=(width, height),
                side=meta.get("side"),
                mirrored=bool(meta.get("mirrored", False)),
                has_z=bool(meta.get("has_z", True)),
                world=world,
            )
    except (OSError, ValueError, KeyError, InputError) as exc:
        raise StoreError(f"stored landmarks are corrupt: {exc}") from exc
