"""The int8 TFLite RNN scorer.

``models/scorer_hand_int8.tflite`` (hand-frame features from world landmarks, the default),
``models/scorer_int8.tflite`` (features with z) and ``models/scorer_2d_int8.tflite`` (x, y
only) are small LSTM classifiers trained by ``scripts/train_scorer.py``. Their manifest
entries (``"kind": "scorer"``) carry what the device needs to feed them:

* ``variant``: "hand", "3d" or "2d" (which :mod:`device.trial.features` columns),
* ``features``: the column names (checked against this code's feature list),
* ``steps``: time steps (200),
* ``normalization``: ``{"mean": [...], "std": [...]}`` per feature (from the training set).

The model is loaded through :mod:`device.vision.runtime` (ai-edge-litert, tflite-runtime as
fallback; sha256 and tensor signature checked against the manifest).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import InputError, ModelError
from device.scoring.types import Result
from device.trial.features import Variant, feature_names, trial_features
from device.trial.types import Trial
from device.vision.runtime import TFLiteModel, load_manifest, load_model

log = logging.getLogger(__name__)

MODEL_NAMES: dict[str, str] = {"3d": "scorer_int8", "2d": "scorer_2d_int8", "hand": "scorer_hand_int8"}
FLOAT_MODEL_NAMES: dict[str, str] = {"3d": "scorer_fp32", "2d": "scorer_2d_fp32", "hand": "scorer_hand_fp32"}


class RNNScorer:
    """Runs one scorer model (one variant) on trial features.

    Not thread-safe on its own; calls are serialised with a lock so one instance can be
    shared by the recorder and the web thread.
    """

    def __init__(self, models_dir: Path, name: str, threads: int = 1) -> None:
        self.models_dir = Path(models_dir)
        self.name = name
        entry = load_manifest(self.models_dir)["models"].get(name)
        if entry is None:
            raise ModelError(
                f"scorer model '{name}' is not in {self.models_dir / 'manifest.json'} "
                "(run scripts/train_scorer.py)"
            )
        if entry.get("kind") != "scorer":
            raise ModelError(f"manifest entry '{name}' is not a scorer (kind={entry.get('kind')})")
        variant = entry.get("variant")
        self.variant: Variant = variant if variant in ("2d", "hand") else "3d"
        names = tuple(entry.get("features", ()))
        if names != feature_names(self.variant):
            raise ModelError(
                f"scorer '{name}' was trained on other features than this code computes "
                f"({len(names)} vs {len(feature_names(self.variant))}): retrain it"
            )
        norm = entry.get("normalization") or {}
        try:
            self.mean = np.asarray(norm["mean"], dtype=np.float32)
            self.std = np.asarray(norm["std"], dtype=np.float32)
        except KeyError:
            raise ModelError(f"scorer '{name}' has no normalization constants") from None
        if self.mean.shape != (len(names),) or self.std.shape != (len(names),):
            raise ModelError(f"scorer '{name}' normalization constants have the wrong length")
        self.std = np.where(self.std > 1e-6, self.std, 1.0).astype(np.float32)
        self.steps = int(entry.get("steps", 200))
        self.version = model_version(name, entry)  # what every score it makes records
        self._model: TFLiteModel = load_model(self.models_dir, name, threads)
        self._lock = threading.Lock()

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """p(0), p(1), p(2) for a feature matrix [steps, F]."""
        if features.shape != (self.steps, self.mean.shape[0]):
            raise InputError(
                f"scorer '{self.name}' needs features of shape "
                f"{(self.steps, self.mean.shape[0])}, got {features.shape}"
            )
        x = ((features - self.mean) / self.std)[None].astype(np.float32)
        with self._lock:
            self._reset_state()
            (out,) = self._model.run(x)
        p = np.clip(np.asarray(out, dtype=np.float64).reshape(-1)[:3], 0.0, None)
        total = p.sum()
        return p / total if total > 0 else np.full(3, 1 / 3)

    def _reset_state(self) -> None:
        """Zero the LSTM state before each trial.

        TFLite's fused LSTM keeps its hidden/cell state in variable tensors that persist
        across ``invoke()`` calls; without a reset each trial would start from the previous
        trial's final state (measured: accuracy 0.99 → 0.72).
        """
        self._model.reset()

    def score(self, trial: Trial) -> Result:
        p = self.probabilities(trial_features(trial, self.variant, self.steps))
        k = int(np.argmax(p))
        probs = (float(p[0]), float(p[1]), float(p[2]))
        return Result(
            status="scored",
            score=k,
            probabilities=probs,
            confidence=float(p[k]),
            reasons=(f"RNN ({self.name}): {k} with probability {p[k]:.0%}",),
            details={"model": self.name, "variant": self.variant, "version": self.version},
        )

    def close(self) -> None:
        self._model.close()

    def __repr__(self) -> str:
        return f"<RNNScorer {self.name} ({self.variant})>"


def model_version(name: str, entry: dict[str, Any]) -> str:
    """The version a score records: the manifest entry's ``version`` (site-installed models),
    else the model name and its sha256 prefix (shipped models)."""
    if entry.get("version"):
        return str(entry["version"])
    return f"{name}@{str(entry.get('sha256', ''))[:12] or 'unknown'}"


def scorer_entry(models_dir: Path, name: str) -> dict[str, Any] | None:
    """The manifest entry of a scorer, or None when the manifest has none of that name."""
    try:
        return load_manifest(Path(models_dir))["models"].get(name)
    except ModelError:
        return None
