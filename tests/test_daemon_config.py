"""Config errors through the real CLI: each of bad TOML, unknown key, bad pin, missing model,
corrupt or wrong model file and unwritable state dir gives exactly one ``flexscore: error:``
line naming the problem and exit code 2, for ``check-config FILE`` and ``run --config FILE``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from device.cli import EXIT_ERROR, main

MODELS = Path(__file__).resolve().parent.parent / "models"
PALM = "palm_detection_lite_int8_weight_only.tflite"  # the palm the default config runs
LANDMARK = "hand_landmark_lite_int8.tflite"
FALLBACK = "hand_landmark_lite_int8_weight_only.tflite"  # the tracker's precise fallback


def models_copy(
    tmp: Path, *, drop: str | None = None, corrupt: str | None = None, swap: str | None = None
) -> Path:
    """A models dir of symlinks to the real files, with one file missing, corrupt or swapped."""
    out = tmp / "models"
    out.mkdir()
    for f in MODELS.iterdir():
        if f.name == drop:
            continue
        if f.name == corrupt:
            (out / f.name).write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        elif f.name == swap:
            (out / f.name).symlink_to(MODELS / LANDMARK)  # a valid model, but the wrong one
        else:
            (out / f.name).symlink_to(f)
    return out


def write_config(tmp: Path, case: str) -> tuple[Path, str]:
    """(config file, a fragment the error message must contain) for each case."""
    state = tmp / "state"
    body = f'[app]\nstate_dir = "{state}"\n'
    if case == "bad_toml":
        body += "[camera\nbackend = 'file'\n"
        expect = "is not valid TOML"
    elif case == "unknown_key":
        body += "[camera]\nbackend = 'file'\nframerate = 30\n"
        expect = "unknown config key(s) 'framerate' in [camera]"
    elif case == "bad_pin":
        body += "[panel]\nbutton_pin = 40\n"
        expect = "'panel.button_pin': GPIO 40 is not a BCM pin"
    elif case == "pin_conflict":
        body += "[panel]\nbutton_pin = 17\nled_pin = 17\n"
        expect = "'panel.led_pin': GPIO 17 is already used by panel.button_pin"
    elif case == "missing_model":
        body += f'[models]\ndir = "{models_copy(tmp, drop=PALM)}"\n'
        expect = f"model file missing: {tmp / 'models' / PALM}"
    elif case == "missing_fallback_model":
        body += f'[models]\ndir = "{models_copy(tmp, drop=FALLBACK)}"\n'
        expect = f"model file missing: {tmp / 'models' / FALLBACK}"
    elif case == "corrupt_model":
        body += f'[models]\ndir = "{models_copy(tmp, corrupt=LANDMARK)}"\n'
        expect = f"model file {tmp / 'models' / LANDMARK} does not match the manifest"
    elif case == "wrong_model":
        body += f'[models]\ndir = "{models_copy(tmp, swap=PALM)}"\n'
        expect = f"model file {tmp / 'models' / PALM} does not match the manifest"
    elif case == "no_models_dir":
        body += f'[models]\ndir = "{tmp / "nowhere"}"\n'
        expect = "model manifest not found"
    elif case == "unwritable_state_dir":
        blocker = tmp / "a-file"
        blocker.write_text("not a directory")
        body = f'[app]\nstate_dir = "{blocker / "state"}"\n'
        expect = f"state directory {blocker / 'state'} is not writable"
    else:  # pragma: no cover
        raise AssertionError(case)
    path = tmp / f"{case}.toml"
    path.write_text(body, encoding="utf-8")
    return path, expect


CASES = (
    "bad_toml",
    "unknown_key",
    "bad_pin",
    "pin_conflict",
    "missing_model",
    "missing_fallback_model",
    "corrupt_model",
    "wrong_model",
    "no_models_dir",
    "unwritable_state_dir",
)


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("case", CASES)
def test_each_config_error_is_one_clear_line_and_exit_2(
    case: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, expect = write_config(tmp_path, case)
    argv = (
        ["check-config", str(path)]
        if command == "check-config"
        else ["run", "--config", str(path), "--port", "0"]
    )
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("flexscore: error:")]
    assert len(errors) == 1, err
    assert expect in errors[0], errors[0]
    assert "Traceback" not in err


def test_a_good_config_passes_check_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "good.toml"
    path.write_text(f'[app]\nstate_dir = "{tmp_path / "state"}"\n[panel]\nbutton_pin = 5\n', encoding="utf-8")
    assert main(["check-config", str(path)]) == 0
    assert ": OK (camera file, models lite int8" in capsys.readouterr().out


def test_the_installed_command_exits_2_with_the_message(tmp_path: Path) -> None:
    """The same through the console script in a child process (what systemd runs)."""
    path, expect = write_config(tmp_path, "corrupt_model")
    exe = Path(sys.executable).with_name("flexscore")
    env = dict(os.environ, GPIOZERO_PIN_FACTORY="mock")
    out = subprocess.run(
        [str(exe), "run", "--config", str(path), "--port", "0"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert out.returncode == EXIT_ERROR, out.stderr
    assert f"flexscore: error: {expect}" in out.stderr


def test_press_without_a_daemon_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["press", "--state-dir", str(tmp_path)]) == EXIT_ERROR
    assert "no running flexscore daemon found (no control socket at" in capsys.readouterr().err
    stale = tmp_path / "control.sock"  # left behind by a kill -9
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(stale))
    assert main(["press", "--state-dir", str(tmp_path)]) == EXIT_ERROR
    assert "flexscore: error: cannot reach the daemon at" in capsys.readouterr().err


def test_without_the_fallback_its_file_is_not_needed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "no-fallback.toml"
    path.write_text(
        f'[app]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[models]\ndir = "{models_copy(tmp_path, drop=FALLBACK)}"\n'
        "[tracker]\nprecise_fallback = false\n",
        encoding="utf-8",
    )
    assert main(["check-config", str(path)]) == 0
