"""Small trial builders and helpers shared by the scoring tests (data from tests/data only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from device.trial.synthetic import SynthOptions, make_trial
from device.trial.types import Side, Trial

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

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


def blank_trial(n: int = 180, fps: float = 30.0) -> Trial:
    """A trial in which no hand was ever tracked."""
    return Trial(
        landmarks=np.full((n, 21, 3), np.nan, dtype=np.float32),
        t=np.arange(n) / fps,
        presence=np.zeros(n, dtype=np.float32),
        handedness=(None,) * n,
        image_size=(640, 480),
    )


def kazuhito_trial(alpha: float, seed: int, side: Side | None = None) -> Trial:
    """A real open hand pose moved towards a real fist pose by ``alpha`` over 5 s (2D)."""
    rows = np.loadtxt(DATA / "kazuhito_poses_sample.csv", delimiter=",")
    opens = rows[rows[:, 0] == 0, 1:].reshape(-1, 21, 2)
    fists = rows[rows[:, 0] == 1, 1:].reshape(-1, 21, 2)
    rng = np.random.default_rng(seed)
    po, pc = opens[seed % len(opens)], fists[seed % len(fists)]
    t = np.arange(125) / 25.0
    prog = np.clip((t - 1.0) / 1.5, 0, 1)
    w = (alpha * prog**2 * (3 - 2 * prog))[:, None, None]
    xy = ((1 - w) * po + w * pc) * 150 + np.array([320.0, 260.0]) + rng.normal(0, 0.6, (125, 21, 2))
    lm = np.concatenate([xy, np.full((125, 21, 1), np.nan)], axis=2).astype(np.float32)
    return Trial(
        landmarks=lm,
        t=t,
        presence=np.ones(125, np.float32),
        handedness=(None,) * 125,
        image_size=(640, 520),
        side=side,
        has_z=False,
    )


def train_python() -> str | None:
    """A Python with TensorFlow, tf_keras, ai-edge-litert and this package (this one or
    ``.venv-train``), or None: the training tests skip without one."""
    for py in (sys.executable, str(ROOT / ".venv-train" / "bin" / "python")):
        if (
            Path(py).exists()
            and subprocess.run(
                [py, "-c", "import tensorflow, tf_keras, ai_edge_litert, device"],
                capture_output=True,
                check=False,
                cwd=ROOT,
            ).returncode
            == 0
        ):
            return py
    return None
