"""``flexscore track``: output format, overlay, and every bad input as one clear error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.cli import main


def _write_video(path: Path, size: tuple[int, int], frames: int, color: bool = True) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, size, isColor=color)
    assert w.isOpened()
    for i in range(frames):
        shape = (size[1], size[0], 3) if color else (size[1], size[0])
        img = np.full(shape, 40 + i, np.uint8)
        if color:
            img[..., 0] = 200
        w.write(img)
    w.release()
    return path


def test_track_writes_json_and_overlay(tmp_path: Path, sample_video: Path) -> None:
    out, ov = tmp_path / "t.json", tmp_path / "o.mp4"
    assert (
        main(
            [
                "track",
                str(sample_video),
                "--json",
                str(out),
                "--overlay",
                str(ov),
                "--models",
                "lite",
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert (data["width"], data["height"]) == (306, 244) and data["fps"] == pytest.approx(15)
    assert len(data["frames"]) == 77
    f = data["frames"][40]
    assert set(f) == {"index", "t", "detected", "presence", "handedness", "landmarks", "world"}
    assert f["index"] == 40 and f["t"] == pytest.approx(40 / 15)
    assert f["detected"] and f["handedness"] == "Right"
    assert np.array(f["landmarks"]).shape == (21, 3)
    assert sum(fr["detected"] for fr in data["frames"]) >= 76
    # world landmarks: metres in the hand's own frame (an adult hand: wrist to middle-finger
    # knuckle 6-12 cm, every point within 25 cm of the origin near the hand's centre)
    world = np.array(f["world"])
    assert world.shape == (21, 3) and np.isfinite(world).all()
    assert 0.06 < np.linalg.norm(world[9] - world[0]) < 0.12
    assert np.abs(world).max() < 0.25
    assert all((fr["world"] is None) == (fr["landmarks"] is None) for fr in data["frames"])
    # and the file reads back as a trial with world landmarks
    from device.trial.io import load_track_json

    trial = load_track_json(out)
    assert trial.has_world and trial.world is not None
    np.testing.assert_allclose(trial.world[40], world, atol=1e-6)
    cap = cv2.VideoCapture(str(ov))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 77
    cap.release()


def test_score_video_builds_a_trial_with_world_landmarks(sample_video: Path) -> None:
    from device.config import Config, ModelsConfig
    from device.scoring.cli import trial_from_video

    trial = trial_from_video(str(sample_video), Config(models=ModelsConfig(complexity="lite")), None)
    assert trial.num_frames == 77 and trial.has_world and trial.world is not None
    tracked = trial.detected
    assert tracked.sum() >= 76
    assert np.isfinite(trial.world[tracked]).all() and np.isnan(trial.world[~tracked]).all()
    span = np.linalg.norm(trial.world[tracked, 9] - trial.world[tracked, 0], axis=1)
    assert ((span > 0.06) & (span < 0.12)).all()  # wrist to middle knuckle, metres


def test_track_rotated_output_size(tmp_path: Path, sample_video: Path) -> None:
    out = tmp_path / "r.json"
    assert (
        main(["track", str(sample_video), "--json", str(out), "--rotate", "90", "--models", "lite"])
        == 0
    )
    data = json.loads(out.read_text())
    assert (data["width"], data["height"]) == (244, 306)
    assert sum(fr["detected"] for fr in data["frames"]) >= 75


def _bad_inputs(tmp: Path, sample_video: Path) -> dict[str, tuple[Path, str]]:
    text = tmp / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = tmp / "empty.mp4"
    empty.write_bytes(b"")
    trunc = tmp / "truncated.mp4"
    trunc.write_bytes(sample_video.read_bytes()[: sample_video.stat().st_size // 2])
    zero = tmp / "zero.avi"
    cv2.VideoWriter(str(zero), cv2.VideoWriter.fourcc(*"MJPG"), 10, (320, 240)).release()
    return {
        "missing": (tmp / "nope.mp4", "not found"),
        "directory": (tmp, "not a file"),
        "not a video": (text, "cannot open"),
        "empty file": (empty, "empty"),
        "truncated": (trunc, "truncated|cannot open|no frame"),
        "zero frames": (zero, "no frame|cannot open"),
        "grayscale": (_write_video(tmp / "gray.avi", (320, 240), 3, color=False), "grayscale"),
        "16x16": (_write_video(tmp / "tiny.avi", (16, 16), 3), "too small"),
        "8K": (_write_video(tmp / "huge.avi", (7680, 4320), 2), "too large"),
    }


def test_bad_inputs_each_give_one_clear_error(
    tmp_path: Path, sample_video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import re

    for name, (path, pattern) in _bad_inputs(tmp_path, sample_video).items():
        out = tmp_path / f"{name}.json"
        code = main(["track", str(path), "--json", str(out), "--models", "lite"])
        err = capsys.readouterr().err
        assert code != 0, name
        assert err.startswith("flexscore: error: "), (name, err)
        assert re.search(pattern, err), (name, err)
        assert "Traceback" not in err
        assert not out.exists(), name  # nothing half-written


def test_bad_input_from_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "device.cli", "track", str(tmp_path / "missing.mp4"), "--json", "-"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "video file not found" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_and_corrupt_model_are_clear(
    tmp_path: Path, models_dir: Path, sample_video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    broken = tmp_path / "models"
    shutil.copytree(models_dir, broken)
    (broken / "hand_landmark_lite_fp32.tflite").write_bytes(b"\0" * 100)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[models]\ndir = "{broken}"\ncomplexity = "lite"\nprecision = "fp32"\n')
    assert (
        main(["track", str(sample_video), "--json", str(tmp_path / "x.json"), "--config", str(cfg)])
        == 2
    )
    assert "does not match the manifest" in capsys.readouterr().err
    (broken / "hand_landmark_lite_fp32.tflite").unlink()
    assert (
        main(["track", str(sample_video), "--json", str(tmp_path / "x.json"), "--config", str(cfg)])
        == 2
    )
    assert "model file missing" in capsys.readouterr().err
    cfg.write_text(f'[models]\ndir = "{tmp_path / "nowhere"}"\n')
    assert (
        main(["track", str(sample_video), "--json", str(tmp_path / "x.json"), "--config", str(cfg)])
        == 2
    )
    assert "manifest not found" in capsys.readouterr().err


def test_wrong_model_file_is_detected(tmp_path: Path, models_dir: Path) -> None:
    """A valid TFLite file in the wrong place (right sha256 in a tampered manifest) is caught
    by the tensor-signature check."""
    import shutil

    from device.errors import ModelError
    from device.vision.runtime import load_model, sha256_file

    broken = tmp_path / "models"
    shutil.copytree(models_dir, broken)
    shutil.copy(
        broken / "palm_detection_lite_fp32.tflite", broken / "hand_landmark_lite_fp32.tflite"
    )
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["models"]["hand_landmark_lite_fp32"]["sha256"] = sha256_file(
        broken / "hand_landmark_lite_fp32.tflite"
    )
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="wrong model file"):
        load_model(broken, "hand_landmark_lite_fp32")


def test_bench_tracker_section_reports_every_variant(sample_video: Path) -> None:
    """The tracker benchmark's report shape (nothing timed is asserted)."""
    from device.config import Config
    from device.tools.bench import format_report, run_bench

    report = run_bench(Config(), video=str(sample_video), max_frames=12, rounds=1, sections={"tracker"})
    rows = {(r["complexity"], r["precision"]): r for r in report["tracker"]}
    assert set(rows) == {("lite", "fp32"), ("lite", "int8"), ("full", "fp32"), ("full", "int8")}
    assert rows[("lite", "int8")]["palm"] == "int8_weight_only"  # models.palm_precision = "auto"
    assert rows[("lite", "fp32")]["palm"] == "fp32"
    for r in rows.values():
        assert r["frames"] == 12 and r["detector_runs"] >= 1
        assert r["invoke_ms_per_frame"] > 0 and r["python_ms_per_frame"] >= 0
        share = r["python_ms_per_frame"] / r["invoke_ms_per_frame"]
        assert r["python_overhead"] == pytest.approx(share, abs=0.01)
        # the replay of the tracker's own work ran (no model invoked, so it is cheaper
        # than the whole frame; nothing about its speed is asserted)
        assert r["own_work_ms_per_frame"] > 0 and r["own_work_after_pause_ms_per_frame"] > 0
        assert r["own_work_overhead"] == pytest.approx(
            r["own_work_ms_per_frame"] / r["invoke_ms_per_frame"], abs=0.01
        )
    assert "lite  int8" in format_report(report)


def test_bench_reference_python_missing_is_a_clear_error(tmp_path: Path, sample_video: Path) -> None:
    from device.config import Config
    from device.errors import FlexscoreError
    from device.tools.bench import run_bench

    with pytest.raises(FlexscoreError, match="make_reference_venv"):
        run_bench(Config(), video=str(sample_video), max_frames=4, rounds=1, sections={"reference"},
                  reference_python=str(tmp_path / "no-python"))  # fmt: skip


def test_bench_reference_needs_a_python_with_mediapipe(
    sample_video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The MediaPipe runner ships in the package (an installed wheel has it too); a
    --reference-python without mediapipe is one error line that says what to give instead."""
    import device
    from device.tools.bench import REFERENCE_SCRIPT

    package = Path(device.__file__).resolve().parent
    assert package / "tools" / "reference_hands.py" == REFERENCE_SCRIPT
    assert REFERENCE_SCRIPT.is_file()
    rc = main(["bench", "--only", "reference", "--max-frames", "2", "--video", str(sample_video),
               "--reference-python", sys.executable])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1, err
    assert err[0].startswith("flexscore: error: the MediaPipe comparison needs mediapipe, which "
                             f"--reference-python {sys.executable} cannot import"), err  # fmt: skip
    assert "mediapipe==0.10.21" in err[0]


@pytest.mark.slow
def test_bench_daemon_section_runs_the_loop_in_a_child(sample_video: Path) -> None:
    """``flexscore bench``'s daemon section (device.tools.loop_bench): the per-frame path in a
    fresh process, one trial recorded and scored; nothing about its speed is asserted."""
    from device.config import Config
    from device.tools.loop_bench import bench_tracking_loop

    r = bench_tracking_loop(Config(), str(sample_video), seconds=2.0)
    assert r["resolution"] == "640x480" and r["camera_fps"] == 30.0
    assert r["achieved_fps"] > 0 and r["max_fps_unpaced"] > 0 and r["peak_rss_mb"] > 0
    assert r["trial_state_at_end"]


def test_an_output_that_cannot_be_written_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    rc = main(["track", "--json", str(blocker / "out.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("flexscore: error: cannot write"), err


def test_bench_reference_python_that_cannot_run_is_a_clear_error(tmp_path: Path) -> None:
    from device.errors import FlexscoreError
    from device.tools.bench import ReferenceRunner

    not_runnable = tmp_path / "python"
    not_runnable.write_text("not a program")  # exists, but is no executable
    with pytest.raises(FlexscoreError, match=f"cannot run --reference-python {not_runnable}"):
        ReferenceRunner(str(not_runnable), [np.zeros((4, 4, 3), np.uint8)])
