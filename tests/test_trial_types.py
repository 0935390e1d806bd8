"""Trial validation and the track JSON format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from trial_helpers import synth

from device.errors import FlexscoreError, InputError
from device.trial.io import load_track_json, save_track_json, trial_from_track_doc
from device.trial.types import Trial


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
