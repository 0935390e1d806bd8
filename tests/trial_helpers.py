"""Small trial builders shared by the scoring tests (no data files needed)."""

from __future__ import annotations

import numpy as np

from device.trial.synthetic import SynthOptions, make_trial
from device.trial.types import Trial

# Clean, well-framed trials: the hand fully in a 1280×720 view, fingers roughly up.
CLEAN = SynthOptions(
    duration_s=(6.0, 6.0),
    fps=(30.0,),
    image_sizes=((1280, 720),),
    hand_frac=(0.4, 0.45),
    max_tilt_deg=15.0,
    any_roll=False,
    noise_frac=(0.002, 0.004),
    dropout=(0.0, 0.02),
)


def synth(score: int, seed: int = 0, **kwargs: object) -> Trial:
    trial, _info = make_trial(score, np.random.default_rng(seed), options=CLEAN, **kwargs)  # type: ignore[arg-type]
    return trial


def blank_trial(n: int = 60, fps: float = 30.0) -> Trial:
    """A trial in which no hand was ever tracked."""
    return Trial(
        landmarks=np.full((n, 21, 3), np.nan, dtype=np.float32),
        t=np.arange(n) / fps,
        presence=np.zeros(n, dtype=np.float32),
        handedness=(None,) * n,
        image_size=(640, 480),
    )
