"""The tracker on real footage, against MediaPipe's own output on the same frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from device.errors import InputError
from device.tools import evaluate as ev
from device.video import read_image
from device.vision.tracker import HandTracker


def _run(tracker: HandTracker, frames: list[np.ndarray], variant: str = "upright") -> tuple:
    tracker.reset()
    per_frame = [
        tracker.process(ev.transform_frame(f, variant), i / 15) for i, f in enumerate(frames)
    ]
    return ev.observations_to_arrays(per_frame)


def test_full_model_matches_mediapipe_reference(
    tracker_full: HandTracker, sample_frames: list, data_dir: Path
) -> None:
    ref_det, ref_lm = ev.load_mp_reference_csv(data_dir / "sample_open_fist_open.mp_reference.csv")
    det, lm = _run(tracker_full, sample_frames)
    result = ev.compare(det, lm, ref_det, ref_lm)
    assert ev.meets_acceptance(result) == [], result
    assert tracker_full.stats.detector_runs <= 3  # tracking, not detecting every frame


@pytest.mark.parametrize("variant", ["flip", "rot90", "rot270"])
def test_mirrored_and_rotated_video_still_tracked(
    tracker_full: HandTracker, sample_frames: list, data_dir: Path, variant: str
) -> None:
    ref_det, ref_lm = ev.load_mp_reference_csv(data_dir / "sample_open_fist_open.mp_reference.csv")
    h, w = sample_frames[0].shape[:2]
    det, lm = _run(tracker_full, sample_frames, variant)
    result = ev.compare(det, lm, ref_det, ev.transform_reference(ref_lm, (w, h), variant))
    assert result["detection_rate_vs_ref"] >= 0.98 - 0.02
    assert result["median_err_pct"] < 5.0


def test_handedness_flips_with_the_mirror(tracker_full: HandTracker, sample_frames: list) -> None:
    tracker_full.reset()
    up = [tracker_full.process_one(f).handedness for f in sample_frames[:10]]
    tracker_full.reset()
    flipped = [tracker_full.process_one(f[:, ::-1].copy()).handedness for f in sample_frames[:10]]
    assert set(up) == {"Right"}  # MediaPipe's reference names this hand "Right" too
    assert set(flipped) == {"Left"}


def test_photos_hand_where_reference_has_one(tracker_full: HandTracker, data_dir: Path) -> None:
    ref = json.loads((data_dir / "images.mp_reference.json").read_text())
    for name, entry in ref.items():
        tracker_full.reset()
        obs = tracker_full.process(read_image(data_dir / name))
        assert bool(obs) == bool(entry["hands"]), name
        if obs:
            ref_lm = np.array(entry["hands"][0]["landmarks_px"])
            err = ev.landmark_errors(obs[0].landmarks[None, :, :2], ref_lm[None])[0]
            assert err < 8.0, (name, err)


def test_hand_leaving_and_entering(tracker_full: HandTracker, sample_frames: list) -> None:
    blank = np.zeros_like(sample_frames[0])
    seq = sample_frames[:10] + [blank] * 5 + sample_frames[10:20]
    tracker_full.reset()
    got = [tracker_full.process_one(f).detected for f in seq]
    assert all(got[:10]) and not any(got[10:15]) and all(got[16:])


def test_lite_model_and_smoothing(sample_frames: list, data_dir: Path) -> None:
    from device.config import Config, ModelsConfig
    from device.vision.tracker import build_tracker

    ref_det, ref_lm = ev.load_mp_reference_csv(data_dir / "sample_open_fist_open.mp_reference.csv")
    with build_tracker(Config(models=ModelsConfig(complexity="lite"))) as tr:  # filter on
        det, lm = _run(tr, sample_frames)
    result = ev.compare(det, lm, ref_det, ref_lm)
    assert result["detection_rate_vs_ref"] >= 0.98
    assert result["median_err_pct"] < 5.0


def test_two_hands_mode_finds_one_hand(sample_frames: list) -> None:
    from device.config import Config, ModelsConfig, TrackerConfig
    from device.vision.tracker import build_tracker

    cfg = Config(models=ModelsConfig(complexity="lite"), tracker=TrackerConfig(max_hands=2))
    with build_tracker(cfg) as tr:
        counts = [len(tr.process(f)) for f in sample_frames[:20]]
    assert max(counts) == 1 and min(counts) == 1


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((100, 100), np.uint8), "grayscale"),
        (np.zeros((100, 100, 4), np.uint8), "shape"),
        (np.zeros((100, 100, 3), np.float32), "uint8"),
        (np.zeros((16, 16, 3), np.uint8), "too small"),
        (np.zeros((8, 8192, 3), np.uint8), "too small"),
        ("not an array", "numpy array"),
    ],
)
def test_bad_frames_are_clear_errors(
    tracker_full: HandTracker, frame: object, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        tracker_full.process(frame)  # type: ignore[arg-type]


def test_huge_frame_refused(tracker_full: HandTracker) -> None:
    with pytest.raises(InputError, match="too large"):
        tracker_full.process(np.zeros((4320, 7680, 3), np.uint8))


def test_run_filled_equals_run(models_dir: Path, data_dir: Path) -> None:
    """Filling the interpreter's own input tensor gives the same outputs as set_tensor."""
    from device.vision import landmarks as lmk
    from device.vision.geometry import Roi
    from device.vision.runtime import load_model

    img = read_image(data_dir / "asl_hand_f210_crop.jpg")
    h, w = img.shape[:2]
    roi = Roi(w / 2, h / 2, float(min(w, h)), 0.2)
    with load_model(models_dir, "hand_landmark_lite_int8") as model:
        tensor, _ = lmk.warp_roi(img, roi)
        expected = model.run(tensor.copy())
        got = model.run_filled(lambda buf: lmk.warp_roi(img, roi, out=buf))
        again = model.run(tensor.copy())  # the interpreter is still usable afterwards
    for a, b, c in zip(expected, got, again, strict=True):
        np.testing.assert_allclose(a, b)
        np.testing.assert_allclose(a, c)


def _turning(frames: list[np.ndarray], deg_per_frame: float) -> list[np.ndarray]:
    import cv2

    h, w = frames[0].shape[:2]
    out = []
    for i, f in enumerate(frames):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), i * deg_per_frame, 0.8)
        out.append(cv2.warpAffine(f, m, (w, h), borderMode=cv2.BORDER_REPLICATE))
    return out


def test_int8_tracker_runs_the_precise_model_only_on_hard_frames(sample_frames: list) -> None:
    from device.config import Config, ModelsConfig
    from device.vision.tracker import build_tracker

    still = [sample_frames[0]] * 12
    with build_tracker(Config(models=ModelsConfig(complexity="lite", precision="int8"))) as tr:
        assert tr.precise_model is not None
        assert tr.precise_model.name == "hand_landmark_lite_int8_weight_only"
        for i, f in enumerate(still):
            assert tr.process_one(f, i / 30).detected
        assert tr.stats.precise_runs == 0  # a still, clear hand: int8 throughout
        tr.reset()
        for i, f in enumerate(_turning(sample_frames[:12], 12.0)):
            assert tr.process_one(f, 1 + i / 30).detected
        # the hand turns 12° per frame: every tracked frame after the first two is "hard"
        assert tr.stats.precise_runs >= 8
        assert tr.stats.landmark_runs == 24


def test_precise_fallback_off_or_fp32_loads_no_second_model() -> None:
    from device.config import Config, ModelsConfig, TrackerConfig
    from device.vision.tracker import build_tracker

    off = Config(models=ModelsConfig(precision="int8"), tracker=TrackerConfig(precise_fallback=False))
    with build_tracker(off) as tr:
        assert tr.precise_model is None
    with build_tracker(Config(models=ModelsConfig(precision="fp32"))) as tr:
        assert tr.precise_model is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("precise_turn_deg", 0, "precise_turn_deg"), ("precise_below_presence", 1.5, "precise_below_presence")],
)
def test_precise_settings_are_validated(key: str, value: float, message: str) -> None:
    from device.config import config_from_dict
    from device.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        config_from_dict({"tracker": {key: value}})
