"""Hand-frame kinematics: joint angles from world landmarks (device/trial/kinematics.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.errors import InputError
from device.trial.kinematics import fill_gaps, flexion_sums, joint_angles
from device.trial.synthetic import HandShape, pose_hand

DATA = Path(__file__).parent / "data"


def _rotation(q: np.ndarray) -> np.ndarray:
    """Rotation matrix from a (not necessarily unit) quaternion."""
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def test_open_hand_is_straight_and_fist_is_bent() -> None:
    open_ = flexion_sums(joint_angles(pose_hand(np.zeros(4), 0.0)))
    fist = flexion_sums(joint_angles(pose_hand(np.ones(4), 1.0)))
    assert np.all(open_[1:] < 5.0)
    # the generator's fist: MCP 85° + PIP 100° + DIP 70° per finger
    np.testing.assert_allclose(fist[1:], 255.0, atol=2.0)
    assert fist[0] > 100.0  # the thumb curls across the palm


def test_mediapipe_fist_and_pointing_up_world_landmarks() -> None:
    """MediaPipe's own expected world landmarks (its test images): a fist reads far more
    flexed than a pointing index finger."""
    doc = json.loads((DATA / "mediapipe_fist_pointing_up_landmarks.json").read_text())
    fist = flexion_sums(joint_angles(np.array(doc["fist"]["world_landmarks"])))
    point = flexion_sums(joint_angles(np.array(doc["pointing_up"]["world_landmarks"])))
    assert np.all(fist[1:] > 180.0)
    assert point[1] < 90.0  # the pointing index finger is (nearly) straight
    assert np.all(point[2:] > 180.0)  # the others make a fist


def test_spreading_the_fingers_does_not_read_as_flexion() -> None:
    narrow = joint_angles(pose_hand(np.zeros(4), 0.0, HandShape(spread_scale=0.2)))
    wide = joint_angles(pose_hand(np.zeros(4), 0.0, HandShape(spread_scale=1.6)))
    np.testing.assert_allclose(narrow[1:, 0], wide[1:, 0], atol=1.0)


@settings(max_examples=60, deadline=None)
@given(
    closure=st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4),
    thumb=st.floats(0.0, 1.0),
    q=st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4).filter(lambda v: np.linalg.norm(v) > 0.1),
    scale=st.floats(0.05, 20.0),
    shift=st.lists(st.floats(-5.0, 5.0), min_size=3, max_size=3),
    mirror=st.booleans(),
)
def test_angles_do_not_change_when_the_hand_turns_anywhere(
    closure: list[float], thumb: float, q: list[float], scale: float, shift: list[float], mirror: bool
) -> None:
    hand = pose_hand(np.array(closure), thumb) * 0.09  # palm length ~9 cm, metres
    moved = (_rotation(np.array(q)) @ hand.T).T * scale + np.array(shift)
    if mirror:  # a left hand is the mirror image of a right one
        moved[:, 0] *= -1.0
    np.testing.assert_allclose(joint_angles(moved), joint_angles(hand), atol=1e-2)


def test_leading_shapes_and_gaps() -> None:
    hand = pose_hand(np.full(4, 0.5), 0.5)
    trial = np.stack([hand, np.full_like(hand, np.nan), hand])
    a = joint_angles(trial)
    assert a.shape == (3, 5, 3)
    assert np.isnan(a[1]).all() and np.isfinite(a[[0, 2]]).all()
    batch = joint_angles(np.stack([trial, trial]))
    assert batch.shape == (2, 3, 5, 3)
    # a collapsed bone (two points on top of each other) gives NaN, not 0 or a crash
    bad = hand.copy()
    bad[7] = bad[6]
    assert np.isnan(joint_angles(bad)[1, 1:]).all()


def test_bad_input_is_named() -> None:
    with pytest.raises(InputError, match=r"\[\.\.\., 21, 3\]"):
        joint_angles(np.zeros((20, 3)))
    with pytest.raises(InputError, match="inf"):
        joint_angles(np.full((21, 3), np.inf))
    with pytest.raises(InputError, match="numbers"):
        joint_angles("not landmarks")
    with pytest.raises(InputError, match=r"\[\.\.\., 5, 3\]"):
        flexion_sums(np.zeros((4, 3)))


def test_fill_gaps_interpolates_in_time() -> None:
    t = np.array([0.0, 0.1, 0.3, 0.4])
    v = np.array([[0.0], [np.nan], [30.0], [np.nan]])
    filled, observed = fill_gaps(t, v)
    np.testing.assert_allclose(filled[:, 0], [0.0, 10.0, 30.0, 30.0])
    assert observed.tolist() == [True, False, True, False]
    none, obs = fill_gaps(t, np.full((4, 2), np.nan))
    assert np.isnan(none).all() and not obs.any()
