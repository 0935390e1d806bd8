"""Landmark arrays of a trial ↔ a compressed ``.npz`` blob (format ``npz-v1``).

The blob holds everything :class:`~device.trial.types.Trial` needs, so a stored trial can
be re-scored by a future model: ``landmarks`` float32 [T, 21, 3], ``t`` float64 [T],
``presence`` float32 [T], ``handedness`` unicode [T] ('' for none), ``image_size`` int [2],
and ``meta`` (a JSON string: side, mirrored, has_z). Loading never unpickles.
"""

from __future__ import annotations

import io
import json

import numpy as np

from device.errors import StoreError
from device.trial.types import Trial

FORMAT = "npz-v1"


def encode_trial(trial: Trial) -> bytes:
    buf = io.BytesIO()
    meta = {"side": trial.side, "mirrored": trial.mirrored, "has_z": trial.has_z}
    np.savez_compressed(
        buf,
        landmarks=trial.landmarks.astype(np.float32),
        t=trial.t.astype(np.float64),
        presence=trial.presence.astype(np.float32),
        handedness=np.array([h or "" for h in trial.handedness], dtype="U5"),
        image_size=np.array(trial.image_size, dtype=np.int64),
        meta=np.array(json.dumps(meta)),
    )
    return buf.getvalue()


def decode_trial(data: bytes, fmt: str = FORMAT) -> Trial:
    if fmt != FORMAT:
        raise StoreError(f"unknown landmark format {fmt!r} (this version reads {FORMAT!r})")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            width, height = (int(v) for v in z["image_size"])
            return Trial(
                landmarks=z["landmarks"],
                t=z["t"],
                presence=z["presence"],
                handedness=tuple(h or None for h in z["handedness"].tolist()),
                image_size=(width, height),
                side=meta.get("side"),
                mirrored=bool(meta.get("mirrored", False)),
                has_z=bool(meta.get("has_z", True)),
            )
    except (OSError, ValueError, KeyError) as exc:
        raise StoreError(f"stored landmarks are corrupt: {exc}") from exc
