"""Trial validation and the track JSON format."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from trial_helpers import synth

from device.errors import FlexscoreError, InputError
from device.scoring.reference import as_2d
from device.trial.io import load_track_json, save_track_json, trial_from_track_doc, trial_to_track_doc
from device.trial.types import Trial
from device.vision.types import HandObservation


def _trial(lm: np.ndarray, **kw: object) -> Trial:
    n = lm.shape[0]
    args: dict[str, object] = dict(
        landmarks=lm,
        t=np.arange(n) / 30.0,
        presence=np.ones(n, np.float32),
        handedness=("Left",) * n,
        image_size=(640, 480),
    )
    args.update(kw)
    return Trial(**args)  # type: ignore[arg-type]


def test_inf_landmarks_are_rejected() -> None:
    lm = np.zeros((4, 21, 3), np.float32)
    lm[2, 3, 0] = np.inf
    with pytest.raises(InputError, match="inf"):
        _trial(lm)


def test_partially_nan_frame_is_rejected() -> None:
    lm = np.zeros((4, 21, 3), np.float32)
    lm[1, 5, 1] = np.nan
    with pytest.raises(InputError, match="frame 1"):
        _trial(lm)


def test_empty_trial_and_wrong_shapes_are_rejected() -> None:
    with pytest.raises(InputError):
        _trial(np.zeros((0, 21, 3), np.float32))
    with pytest.raises(InputError, match=r"\[T, 21, 3\]"):
        _trial(np.zeros((4, 21, 2), np.float32))
    with pytest.raises(InputError, match="disagree"):
        _trial(np.zeros((4, 21, 3), np.float32), t=np.arange(3.0))


def test_time_going_backwards_is_rejected() -> None:
    with pytest.raises(InputError, match="backwards"):
        _trial(np.zeros((3, 21, 3), np.float32), t=np.array([0.0, 0.2, 0.1]))


def test_track_json_round_trip_2d(tmp_path: Path) -> None:
    trial = synth(2, seed=7, with_z=False)
    path = tmp_path / "t.json"
    save_track_json(trial, path)
    doc = json.loads(path.read_text())
    first = next(f for f in doc["frames"] if f["landmarks"])
    assert len(first["landmarks"][0]) == 2  # no z written
    back = load_track_json(path)
    assert not back.has_z
    assert back.num_frames == trial.num_frames
    np.testing.assert_allclose(back.landmarks[..., :2], trial.landmarks[..., :2], atol=1e-3)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ([], "JSON object"),
        ({"width": 640, "height": 480}, "frames"),
        ({"width": 640, "height": 480, "frames": []}, "non-empty"),
        (
            {"width": 640, "height": 480, "fps": 30, "frames": [{"index": 0, "landmarks": [[1, 2]] * 20}]},
            "21",
        ),
        (
            {
                "width": 640,
                "height": 480,
                "fps": 30,
                "frames": [
                    {"index": 0, "landmarks": [[1, 2]] * 21},
                    {"index": 1, "landmarks": [[1, 2, 3]] * 21},
                ],
            },
            "mix",
        ),
        ({"width": 640, "height": 480, "frames": [{"index": 0, "landmarks": None}]}, "fps"),
        ({"width": "x", "height": 480, "frames": [{}]}, "number"),
    ],
)
def test_bad_track_documents(doc: object, match: str) -> None:
    with pytest.raises(FlexscoreError, match=match):
        trial_from_track_doc(doc)


def test_missing_or_corrupt_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_track_json(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_track_json(bad)


# -- world landmarks ---------------------------------------------------------------------


def _world_of(trial: Trial) -> np.ndarray:
    """Plausible world landmarks for a trial: its points about the wrist, scaled to metres."""
    lm = np.nan_to_num(trial.landmarks, nan=0.0)
    world = (lm - lm[:, :1]) * 0.0004
    world[~trial.detected] = np.nan
    return world.astype(np.float32)


def test_world_landmarks_kept_and_coerced() -> None:
    base = synth(2, seed=3, with_world=False)
    assert base.world is None and not base.has_world
    world = _world_of(base).astype(np.float64)
    trial = replace(base, world=world)
    assert trial.world is not None and trial.world.dtype == np.float32
    assert trial.has_world
    np.testing.assert_array_equal(np.isnan(trial.world[:, 0, 0]), ~trial.detected)
    # A tracked frame may lack world landmarks (all NaN); a trial with none at all has none.
    tracked = int(np.flatnonzero(trial.detected)[0])
    world[tracked] = np.nan
    assert replace(base, world=world).has_world
    assert not replace(base, world=np.full_like(world, np.nan)).has_world


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("shape", r"world landmarks must have shape \[\d+, 21, 3\]"),
        ("list", "world landmarks must have shape"),
        ("inf", "world landmarks contain inf"),
        ("partial", "has NaN in some world landmarks but not all"),
    ],
)
def test_bad_world_landmarks_are_rejected(change: str, match: str) -> None:
    lm = np.zeros((5, 21, 3), np.float32)
    lm[4] = np.nan  # frame 4: no hand
    world: object = np.full((5, 21, 3), 0.01, np.float32)
    assert isinstance(world, np.ndarray)
    world[4] = np.nan
    if change == "shape":
        world = world[:4]
    elif change == "list":
        world = world.tolist()
    elif change == "inf":
        world[2, 7, 1] = np.inf
    elif change == "partial":
        world[1, 3, 2] = np.nan
    with pytest.raises(InputError, match=match):
        _trial(lm, world=world)
    if change in ("inf", "partial"):
        frame = {"inf": 2, "partial": 1}[change]
        with pytest.raises(InputError, match=f"frame {frame}"):
            _trial(lm, world=world)


def test_world_landmarks_on_a_frame_marked_missing_are_dropped() -> None:
    """The image landmarks say which frames were tracked: marking a frame missing (NaN image
    landmarks, e.g. ``replace(trial, landmarks=…)``) drops its world landmarks too."""
    lm = np.zeros((5, 21, 3), np.float32)
    lm[4] = np.nan
    world = np.full((5, 21, 3), 0.01, np.float32)
    trial = _trial(lm, world=world)
    assert trial.world is not None
    assert np.isnan(trial.world[4]).all() and np.isfinite(trial.world[:4]).all()


def _obs(i: int, world: np.ndarray | None, detected: bool = True) -> HandObservation:
    if not detected:
        return HandObservation(i, i / 30.0, (640, 480), False)
    lm = np.full((21, 3), 100.0 + i, np.float32)
    return HandObservation(
        i, i / 30.0, (640, 480), True, presence=0.9, handedness="Left", landmarks=lm, world_landmarks=world
    )


def test_from_observations_carries_world_landmarks() -> None:
    w = np.linspace(-0.05, 0.05, 63, dtype=np.float32).reshape(21, 3)
    bad = w.copy()
    bad[3, 1] = np.nan
    trial = Trial.from_observations(
        [_obs(0, w), _obs(1, None), _obs(2, None, detected=False), _obs(3, w * 2), _obs(4, bad)]
    )
    assert trial.world is not None and trial.has_world
    np.testing.assert_array_equal(trial.world[0], w)
    np.testing.assert_array_equal(trial.world[3], w * 2)
    # no world output, no hand, or a non-finite world output: that frame's row is NaN
    assert np.isnan(trial.world[[1, 2, 4]]).all()
    assert trial.detected.tolist() == [True, True, False, True, True]
    # no observation with world landmarks: the trial has none (a 2D-only source)
    assert Trial.from_observations([_obs(0, None), _obs(1, None, detected=False)]).world is None


def test_as_2d_drops_world_landmarks() -> None:
    base = synth(2, seed=4)
    trial = replace(base, world=_world_of(base))
    flat = as_2d(trial)
    assert flat.world is None and not flat.has_world and not flat.has_z
    assert np.isnan(flat.landmarks[..., 2]).all()
    assert as_2d(replace(flat, world=_world_of(base))).world is None  # 2D landmarks, world kept: dropped


def test_track_json_round_trip_with_world(tmp_path: Path) -> None:
    base = synth(2, seed=5)
    world = _world_of(base)
    tracked = np.flatnonzero(base.detected)
    world[tracked[1]] = np.nan  # a tracked frame without world landmarks
    trial = replace(base, world=world)
    path = tmp_path / "w.json"
    save_track_json(trial, path)
    doc = json.loads(path.read_text())
    frames = doc["frames"]
    assert all("world" in f for f in frames)
    assert frames[tracked[1]]["world"] is None and frames[tracked[0]]["world"] is not None
    assert all(f["world"] is None for f in frames if not f["detected"])
    back = load_track_json(path)
    assert back.world is not None
    np.testing.assert_array_equal(np.isnan(back.world), np.isnan(trial.world))
    np.testing.assert_allclose(back.world, world, atol=1e-5, equal_nan=True)


def test_track_json_without_world_loads_as_2d_source() -> None:
    trial = synth(1, seed=6, with_world=False)
    doc = trial_to_track_doc(trial)
    assert all("world" not in f for f in doc["frames"])  # nothing written for a trial without
    assert trial_from_track_doc(doc).world is None
    for f in doc["frames"]:
        f["world"] = None  # present but null everywhere: still no world landmarks
    assert trial_from_track_doc(doc).world is None
    # world on a frame without landmarks is ignored like the frame itself
    miss = next(f for f in doc["frames"] if not f["detected"])
    miss["world"] = [[0.0, 0.0, 0.0]] * 21
    assert trial_from_track_doc(doc).world is None


@pytest.mark.parametrize(
    ("world", "match"),
    [
        ([[0.01, 0.02]] * 21, r"frames\[1\]\.world must be 21 × \[x, y, z\]"),
        ([[0.01, 0.02, 0.03]] * 20, r"frames\[1\]\.world must be 21"),
        ([[0.01, "a", 0.03]] * 21, r"frames\[1\]\.world must be 21 numeric"),
        ([[0.01, float("nan"), 0.03]] * 21, r"frames\[1\]\.world must be finite"),
        ("x", r"frames\[1\]\.world"),
    ],
)
def test_bad_world_in_track_document(world: object, match: str) -> None:
    pts = [[float(j), float(j), 0.0] for j in range(21)]
    doc = {
        "width": 640,
        "height": 480,
        "fps": 30,
        "frames": [
            {"index": 0, "landmarks": pts, "world": [[0.0, 0.0, 0.0]] * 21},
            {"index": 1, "landmarks": pts, "world": world},
        ],
    }
    with pytest.raises(InputError, match=match):
        trial_from_track_doc(doc)
