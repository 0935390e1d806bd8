"""Trial features: shapes, invariances, gap filling, bad input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from trial_helpers import synth

from device.errors import FlexscoreError, InputError
from device.trial.features import (
    FEATURES_2D,
    FEATURES_3D,
    N_STEPS,
    frame_features,
    normalize_landmarks,
    resample_landmarks,
    trial_features,
)
from device.trial.synthetic import pose_hand
from device.trial.types import Trial


def _open_and_fist() -> tuple[np.ndarray, np.ndarray]:
    def px(c: float) -> np.ndarray:
        pts = pose_hand(np.full(4, c), c)
        return pts * np.array([-1.0, -1.0, -1.0]) * 120 + np.array([320.0, 300.0, 0.0])

    return px(0.0), px(1.0)


def _transform(lm: np.ndarray, angle: float, scale: float, shift: np.ndarray, mirror: bool) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = lm.copy()
    xy = out[..., :2] - out[..., :1, :2]
    xy = xy @ np.array([[c, -s], [s, c]]).T * scale
    if mirror:
        xy[..., 0] *= -1
    out[..., :2] = xy + shift
    out[..., 2] = lm[..., 2] * scale
    return out


def test_feature_names_are_documented_and_sized() -> None:
    assert len(FEATURES_2D) == 35
    assert len(FEATURES_3D) == 62
    assert FEATURES_3D[: len(FEATURES_2D)] == FEATURES_2D
    assert len(set(FEATURES_3D)) == len(FEATURES_3D)


def test_trial_features_shape_and_finite() -> None:
    trial = synth(2, seed=1)
    for variant, n in (("3d", 62), ("2d", 35)):
        f = trial_features(trial, variant)  # type: ignore[arg-type]
        assert f.shape == (N_STEPS, n)
        assert f.dtype == np.float32
        assert np.isfinite(f).all()


@pytest.mark.parametrize("angle", [0.3, 1.7, -2.9, np.pi])
@pytest.mark.parametrize("mirror", [False, True])
def test_features_invariant_to_rotation_scale_shift_mirror(angle: float, mirror: bool) -> None:
    open_, fist = _open_and_fist()
    lm = np.stack([open_, fist])
    base = frame_features(lm)
    moved = _transform(lm, angle, 1.7, np.array([500.0, 90.0]), mirror)
    got = frame_features(moved, left=mirror)
    np.testing.assert_allclose(got, base, atol=1e-4)


def test_normalize_puts_wrist_at_origin_palm_up_and_mirrors_left() -> None:
    open_, _ = _open_and_fist()
    lm = _transform(open_[None], 2.2, 0.5, np.array([100.0, 100.0]), False)
    canon = normalize_landmarks(lm)
    np.testing.assert_allclose(canon[0, 0], 0.0, atol=1e-9)
    assert abs(canon[0, 9, 0]) < 1e-6 and canon[0, 9, 1] > 0  # middle MCP straight up
    mirrored = normalize_landmarks(lm, left=True)
    np.testing.assert_allclose(mirrored[0, :, 0], -canon[0, :, 0], atol=1e-9)


def test_fist_is_more_closed_than_open_hand() -> None:
    open_, fist = _open_and_fist()
    f = frame_features(np.stack([open_, fist]))
    i2 = FEATURES_3D.index("openness2d")
    i3 = FEATURES_3D.index("openness3d")
    assert f[0, i2] > 1.0 > 0.5 > f[1, i2]
    assert f[0, i3] > 1.0 > 0.5 > f[1, i3]
    assert f[1, FEATURES_3D.index("closure3d")] > 0.6


def test_gaps_are_interpolated_and_marked() -> None:
    lm = np.zeros((5, 21, 3))
    lm[:, :, 0] = np.arange(5)[:, None] * 10.0
    lm[2] = np.nan
    out, observed = resample_landmarks(lm, np.arange(5) / 10.0, steps=5)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[2, 0, 0], 20.0)
    assert observed.tolist() == [True, True, False, True, True]


def test_2d_trial_without_z_uses_2d_features() -> None:
    trial = synth(1, seed=3, with_z=False)
    assert not trial.has_z
    assert trial_features(trial, "2d").shape == (N_STEPS, 35)
    with pytest.raises(InputError, match="no z"):
        trial_features(trial, "3d")


def test_one_frame_trial_is_an_error() -> None:
    trial = synth(0, seed=4)
    one = Trial(
        landmarks=trial.landmarks[:1],
        t=trial.t[:1],
        presence=trial.presence[:1],
        handedness=trial.handedness[:1],
        image_size=trial.image_size,
    )
    with pytest.raises(FlexscoreError, match="at least 2 frames"):
        trial_features(one)


def test_trial_without_any_hand_is_an_error() -> None:
    trial = synth(0, seed=5)
    empty = replace(trial, landmarks=np.full_like(trial.landmarks, np.nan))
    with pytest.raises(InputError, match="no tracked frame"):
        trial_features(empty)


@pytest.mark.parametrize("shape", [(10, 21, 2), (10, 20, 3), (21, 3), (0, 21, 3)])
def test_wrong_shapes_are_errors(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError):
        frame_features(np.zeros(shape))


def test_bad_variant_is_an_error() -> None:
    with pytest.raises(InputError, match="variant"):
        trial_features(synth(0), "4d")  # type: ignore[arg-type]
