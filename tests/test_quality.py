"""Quality gates: each failure is a named reason."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from trial_helpers import blank_trial, synth

from device.config import TrialConfig
from device.trial.quality import anatomical_side, check_quality


def test_clean_trial_passes() -> None:
    report = check_quality(synth(2, seed=1))
    assert report.ok, report.reasons
    assert report.metrics["presence_share"] > 0.9


def test_no_hand() -> None:
    report = check_quality(blank_trial())
    assert report.codes == ("no_hand",)


def test_hand_gone_half_the_trial() -> None:
    trial = synth(2, seed=2)
    lm = trial.landmarks.copy()
    lm[trial.num_frames // 2 :] = np.nan
    report = check_quality(replace(trial, landmarks=lm))
    assert "hand_missing" in report.codes
    assert "%" in report.reasons[0].message


def test_hand_too_small() -> None:
    trial = synth(1, seed=3)
    lm = trial.landmarks.copy()
    lm[..., :2] = lm[..., :2] * 0.1 + 20
    report = check_quality(replace(trial, landmarks=lm))
    assert "hand_too_small" in report.codes


def test_hand_cut_by_edge() -> None:
    trial = synth(1, seed=4)
    lm = trial.landmarks.copy()
    lm[..., 0] -= np.nanmin(lm[..., 0]) + 30  # slide the hand past the left border
    report = check_quality(replace(trial, landmarks=lm))
    assert "hand_cut_by_edge" in report.codes


def test_wrong_side_uses_mediapipe_mirror_convention() -> None:
    # unmirrored camera: MediaPipe calls a right hand "Left"
    assert anatomical_side("Left", mirrored=False) == "right"
    assert anatomical_side("Left", mirrored=True) == "left"
    assert anatomical_side(None, mirrored=True) is None
    trial = synth(2, seed=5, side="right", mirrored=False)
    assert check_quality(trial).ok
    report = check_quality(replace(trial, side="left"))
    assert report.codes == ("wrong_side",)
    # the configured side applies when the trial has none
    assert check_quality(replace(trial, side=None), TrialConfig(side="left")).codes == ("wrong_side",)


def test_one_frame_is_too_short() -> None:
    trial = synth(0, seed=6)
    one = replace(
        trial,
        landmarks=trial.landmarks[:1],
        t=trial.t[:1],
        presence=trial.presence[:1],
        handedness=trial.handedness[:1],
        world=None if trial.world is None else trial.world[:1],
    )
    assert "too_short" in check_quality(one).codes


def test_with_world_landmarks_only_the_fingers_must_be_inside_the_frame() -> None:
    """A close-up whose wrist and thumb base sit on the frame edge still shows every finger:
    in the hand frame that is scorable; on image landmarks alone (the 2D measures use the
    wrist) it is not."""
    trial = synth(2, seed=8)
    assert trial.world is not None
    lm = trial.landmarks.copy()
    tracked = ~np.isnan(lm[:, 0, 0])
    lm[tracked, :5, 1] = trial.image_size[1] - 1  # wrist and thumb on the bottom edge
    close_up = replace(trial, landmarks=lm)
    assert "hand_cut_by_edge" not in check_quality(close_up).codes
    assert "hand_cut_by_edge" in check_quality(replace(close_up, world=None)).codes


def test_stopped_early_and_camera_stalled_are_named() -> None:
    trial = synth(2, seed=9)
    n = 45  # 1.5 s at 30 fps
    short = replace(
        trial,
        landmarks=trial.landmarks[:n],
        t=trial.t[:n],
        presence=trial.presence[:n],
        handedness=trial.handedness[:n],
        world=None if trial.world is None else trial.world[:n],
    )
    report = check_quality(short)
    assert "stopped_early" in report.codes
    assert "1.5 s" in report.reasons[0].message
    t = trial.t.copy()
    t[100:] += 1.5
    stalled = check_quality(replace(trial, t=t))
    assert "camera_stalled" in stalled.codes
    assert stalled.metrics["max_frame_gap_s"] > 1.5
    assert check_quality(trial, TrialConfig(max_frame_gap_s=5.0)).ok
