"""Timing of one trial's scoring (features + RNN + rule) for ``flexscore bench``."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from device.config import Config
from device.scoring.decide import Decider
from device.trial.features import trial_features
from device.trial.synthetic import SynthOptions, make_trial

log = logging.getLogger(__name__)


def _median_ms(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times))


def bench_scoring(
    cfg: Config | None = None, repeats: int = 30, models_dir: Path | None = None
) -> dict[str, Any]:
    """Median milliseconds per trial for each stage, on a synthetic 6 s, 30 fps trial.

    Keys: ``features_ms`` (of the scorer in use: hand frame by default), ``rnn_ms`` (model
    invoke incl. (de)quantisation), ``rule_ms``, ``total_ms`` (the full
    :meth:`Decider.score`, gates included), ``model``, ``frames``, ``repeats``. The first
    call (model load) is excluded.
    """
    cfg = cfg or Config()
    rng = np.random.default_rng(0)
    opts = SynthOptions(duration_s=(6.0, 6.0), fps=(30.0,), hand_frac=(0.35, 0.35))
    trial, _ = make_trial(2, rng, options=opts, noise=False)
    decider = Decider(cfg, models_dir)
    try:
        rnn = decider.rnn_for(trial.has_z, trial.has_world)  # the hand-frame scorer by default
        feats = trial_features(trial, rnn.variant)
        decider.score(trial)  # warm-up: load + first invoke
        out = {
            "frames": trial.num_frames,
            "repeats": repeats,
            "model": rnn.name,
            "features_ms": round(_median_ms(lambda: trial_features(trial, rnn.variant), repeats), 3),
            "rnn_ms": round(_median_ms(lambda: rnn.probabilities(feats), repeats), 3),
            "rule_ms": round(_median_ms(lambda: decider.rule.score(trial), repeats), 3),
            "total_ms": round(_median_ms(lambda: decider.score(trial), repeats), 3),
        }
    finally:
        decider.close()
    log.info("scoring bench: %s", out)
    return out
