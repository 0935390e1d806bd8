"""scripts/install-pi.sh: syntax, shellcheck, platform refusal and the --dry-run action list."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "install-pi.sh"


def run(
    tmp_path: Path, *args: str, os_id: str = "debian", codename: str = "bookworm",
    arch: str = "arm64", skip: str = "",
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    osr = tmp_path / "os-release"
    osr.write_text(f'PRETTY_NAME="test"\nID={os_id}\nVERSION_CODENAME={codename}\n')
    env = {**os.environ, "FLEXSCORE_OS_RELEASE": str(osr), "FLEXSCORE_ARCH": arch, "FLEXSCORE_SKIP": skip}
    env.pop("FLEXSCORE_ROOT", None)
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=60,
        check=False,
    )  # fmt: skip


def test_syntax() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_clean() -> None:
    proc = subprocess.run(
        ["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout


def test_dry_run_prints_every_action_in_order(tmp_path: Path) -> None:
    proc = run(tmp_path, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    actions = [line[2:] for line in proc.stdout.splitlines() if line.startswith("+ ")]
    user_step = [a for a in actions if a.startswith("useradd")]
    if not user_step:  # the machine running the tests has the user already
        assert "= user flexscore exists" in proc.stdout
    expected_in_order = [
        "apt-get update",
        "env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
        "python3-picamera2 python3-lgpio python3-venv python3-pip openssl espeak-ng",
        "usermod --append --groups video flexscore",
        "usermod --append --groups gpio flexscore",
        "usermod --append --groups audio flexscore",
        "python3 -m venv --system-site-packages /opt/flexscore/venv",
        "/opt/flexscore/venv/bin/python -m pip install --require-hashes --only-binary=:all: "
        f"-r {REPO}/requirements/device-lock.txt",
        "/opt/flexscore/venv/bin/python -m pip install --no-deps --no-build-isolation --force-reinstall "
        f"{REPO}",
        "install -d -m 0750 -o root -g flexscore /etc/flexscore",
        "write /etc/flexscore/config.toml (mode 0640, owner root:flexscore)",
        "write /etc/flexscore/initial-clinician-password (mode 0600, owner root:root)",
        "install -d -m 0700 -o flexscore -g flexscore /var/lib/flexscore",
        "setpriv --reuid=flexscore --regid=flexscore --clear-groups -- /opt/flexscore/venv/bin/flexscore "
        "check-config --state-dir /var/lib/flexscore /etc/flexscore/config.toml",
        "setpriv --reuid=flexscore --regid=flexscore --clear-groups -- /opt/flexscore/venv/bin/flexscore "
        "certificate --config /etc/flexscore/config.toml --state-dir /var/lib/flexscore",
        f"install -D -m 0644 {REPO}/systemd/flexscore.service /etc/systemd/system/flexscore.service",
        "systemctl daemon-reload",
        "systemctl enable flexscore.service",
        "systemctl restart flexscore.service",
    ]
    if Path("/opt/flexscore/venv/bin/python").exists():  # pragma: no cover - a Pi
        expected_in_order.remove("python3 -m venv --system-site-packages /opt/flexscore/venv")
    if Path("/etc/flexscore/config.toml").exists():  # pragma: no cover - a Pi
        expected_in_order = [a for a in expected_in_order if not a.startswith("write")]
    if "= user flexscore exists" in proc.stdout:  # pragma: no cover - a Pi: owners by number
        expected_in_order = [a for a in expected_in_order if "flexscore -g" not in a and "root:fl" not in a
                             and "-g flexscore" not in a and not a.startswith("setpriv")]  # fmt: skip
    positions = [actions.index(a) for a in expected_in_order]
    assert positions == sorted(positions)
    assert "changing nothing" in proc.stdout
    # only the device extra: no training or reference stacks
    assert not any("tensorflow" in a or "mediapipe" in a for a in actions)
    # nothing outside the dry run's own output was created
    assert not (tmp_path / "etc").exists()


def test_no_start_and_source_options(tmp_path: Path) -> None:
    wheel = tmp_path / "flexscore-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    proc = run(tmp_path, "--dry-run", "--no-start", "--source", str(wheel))
    assert proc.returncode == 0, proc.stderr
    assert f"pip install --no-deps --no-build-isolation --force-reinstall {wheel}\n" in proc.stdout
    assert "systemctl restart" not in proc.stdout
    proc = run(tmp_path, "--dry-run", "--source", str(tmp_path / "missing"))
    assert proc.returncode != 0 and "not found" in proc.stderr


@pytest.mark.parametrize(
    ("os_id", "codename", "arch", "message"),
    [
        ("raspbian", "bookworm", "armhf", "32-bit Raspberry Pi OS (armhf) is not supported"),
        ("debian", "bookworm", "amd64", "64-bit (arm64); this system is 'amd64'"),
        ("ubuntu", "bookworm", "arm64", "this system is 'ubuntu'"),
        ("debian", "bullseye", "arm64", "this system is 'bullseye'"),
        ("debian", "forky", "arm64", "Bookworm or Trixie; this system is 'forky'"),
    ],
)
def test_refuses_other_platforms(tmp_path: Path, os_id: str, codename: str, arch: str, message: str) -> None:
    proc = run(tmp_path, "--dry-run", os_id=os_id, codename=codename, arch=arch)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "apt-get" not in proc.stdout


def test_help_and_unknown_options(tmp_path: Path) -> None:
    proc = run(tmp_path, "--help")
    assert proc.returncode == 0 and "--dry-run" in proc.stdout
    proc = run(tmp_path, "--frobnicate")
    assert proc.returncode != 0 and "unknown option '--frobnicate'" in proc.stderr


def test_trixie_and_the_steps_a_machine_off_a_pi_skips(tmp_path: Path) -> None:
    """FLEXSCORE_SKIP leaves out only what needs a real Pi, and says so."""
    proc = run(tmp_path, "--dry-run", codename="trixie", skip="pi-apt systemctl")
    assert proc.returncode == 0, proc.stderr
    assert "platform: debian trixie arm64" in proc.stdout
    apt = "apt-get install -y --no-install-recommends python3-venv python3-pip openssl espeak-ng\n"
    assert apt in proc.stdout
    assert "skipped (FLEXSCORE_SKIP=pi-apt): python3-picamera2 python3-lgpio" in proc.stdout
    assert "the camera (picamera2) and the button/LED (lgpio) will not work" in proc.stdout
    assert "+ systemctl" not in proc.stdout
    assert "skipped (FLEXSCORE_SKIP=systemctl)" in proc.stdout
    assert "check-config" in proc.stdout  # never skipped
    proc = run(tmp_path, "--dry-run", skip="apt")
    assert proc.returncode == 0, proc.stderr
    assert "apt-get" not in proc.stdout and "+ systemctl restart flexscore.service" in proc.stdout
    proc = run(tmp_path, "--dry-run", skip="apt camera")
    assert proc.returncode != 0 and "FLEXSCORE_SKIP: unknown step 'camera'" in proc.stderr


def installer_config(state_dir: Path) -> str:
    """The config.toml the installer writes (its heredoc, with a real password hash)."""
    from device.web.security import hash_password

    text = SCRIPT.read_text()
    start = text.index('write_file "$CONFIG"')
    body = text[text.index("\n", start) + 1 : text.index("\nEOF\n", start)]
    return (
        body.replace('${CONFIG#"$ROOT"}', "/etc/flexscore/config.toml")
        .replace("$STATE_DIR", str(state_dir))
        .replace("$hash", hash_password("installer-test"))
        .replace("$CONFIG", "/etc/flexscore/config.toml")
    )


def test_the_installers_config_serves_https_on_the_network_and_passes_check_config(tmp_path: Path) -> None:
    from device.config import load_config

    config = tmp_path / "config.toml"
    config.write_text(installer_config(tmp_path / "state"))
    cfg = load_config(config)
    assert cfg.web.host == "0.0.0.0" and cfg.web.tls and cfg.web.port == 8443
    assert cfg.web.password_hash.startswith("scrypt:")
    exe = Path(sys.executable).with_name("flexscore")
    proc = subprocess.run(
        [str(exe), "check-config", str(config), "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "web https://0.0.0.0:8443" in proc.stdout
    # what the installer runs next as the service user: the certificate and its fingerprint
    cert = subprocess.run(
        [str(exe), "certificate", "--config", str(config), "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert cert.returncode == 0, cert.stderr
    assert "SHA-256 fingerprint " in cert.stdout and (tmp_path / "state" / "tls" / "key.pem").exists()
    again = subprocess.run(
        [str(exe), "check-config", str(config), "--state-dir", str(tmp_path / "state")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert cert.stdout.split()[-1] in again.stdout  # check-config shows the same fingerprint
    # the same config on plain HTTP is refused: the network needs HTTPS
    config.write_text(installer_config(tmp_path / "state").replace("tls = true", "tls = false"))
    plain = subprocess.run(
        [str(exe), "check-config", str(config)], capture_output=True, text=True, timeout=120, check=False
    )
    assert plain.returncode == 2
    assert plain.stderr.startswith("flexscore: error: ") and "web.tls" in plain.stderr
