"""scripts/compare_tracks.py: the landmark comparison of scripts/check-aarch64.sh."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "compare_tracks.py"


def write_track(path: Path, landmarks: np.ndarray, detected: list[bool]) -> Path:
    frames = [
        {"index": i, "t": i / 15, "detected": det, "landmarks": lm.tolist() if det else None}
        for i, (lm, det) in enumerate(zip(landmarks, detected, strict=True))
    ]
    path.write_text(json.dumps({"width": 320, "height": 240, "fps": 15.0, "frames": frames}))
    return path


def compare(a: Path, b: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(a), str(b)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip


def test_pass_mismatch_and_bad_input(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    hand = rng.uniform(100, 200, size=(20, 21, 3))  # a hand about 100 px across
    detected = [True] * 18 + [False, False]
    ref = write_track(tmp_path / "ref.json", hand, detected)

    # 0.5 px of noise on a ~100 px hand: well inside 1 % / 2.5 %
    close = write_track(tmp_path / "close.json", hand + rng.normal(0, 0.3, hand.shape), detected)
    proc = compare(ref, close)
    assert proc.returncode == 0, proc.stdout
    assert "hand in 18/20 frames (reference 18/20, same frames)" in proc.stdout
    assert proc.stdout.strip().endswith("PASS")

    # every landmark 3 px off: median 3 % of hand size
    far = write_track(tmp_path / "far.json", hand + 3.0 / np.sqrt(2) * np.array([1, 1, 0]), detected)
    proc = compare(ref, far)
    assert proc.returncode == 1 and proc.stdout.strip().endswith("MISMATCH")

    # a frame lost: different frames with a hand, however close the others are
    lost = write_track(tmp_path / "lost.json", hand, [False, *detected[1:]])
    proc = compare(ref, lost)
    assert proc.returncode == 1 and "DIFFERENT frames" in proc.stdout

    proc = compare(ref, tmp_path / "missing.json")
    assert proc.returncode == 2 and "compare_tracks: error: cannot compare" in proc.stderr
