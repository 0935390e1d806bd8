"""systemd/flexscore.service: `systemd-analyze verify` is clean and the exposure is reported.

verify runs in a temporary root that holds the unit, the distribution's units (for
sysinit.target and friends) and an executable stand-in for /opt/flexscore/venv/bin/flexscore,
because verify checks that ExecStart exists. CI installs Debian's `systemd` package.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "flexscore.service"
ANALYZE = shutil.which("systemd-analyze")
SYSTEM_UNITS = next(
    (p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")) if p.is_dir()),
    None,
)
pytestmark = pytest.mark.skipif(
    ANALYZE is None or SYSTEM_UNITS is None,
    reason="systemd-analyze is not installed (apt-get install systemd)",
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    assert SYSTEM_UNITS is not None
    exe = tmp_path / "opt/flexscore/venv/bin/flexscore"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, tmp_path / "etc/systemd/system/flexscore.service")
    shutil.copytree(SYSTEM_UNITS, tmp_path / "usr/lib/systemd/system", symlinks=True)
    return tmp_path


def unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_has_the_required_settings() -> None:
    s = unit_settings()
    assert s["Type"] == ["notify"] and s["Restart"] == ["on-failure"]
    assert int(s["WatchdogSec"][0]) > 0
    assert s["User"] == ["flexscore"] and s["StateDirectory"] == ["flexscore"]
    assert s["ProtectSystem"] == ["strict"]
    assert s["NoNewPrivileges"] == ["yes"] and s["PrivateTmp"] == ["yes"]
    assert s["DevicePolicy"] == ["closed"]
    assert sorted(s["DeviceAllow"]) == [
        "char-alsa rw", "char-dma_heap rw", "char-gpiochip rw", "char-media rw", "char-video4linux rw",
    ]  # fmt: skip
    assert s["SupplementaryGroups"] == ["video gpio audio"]
    assert s["ExecStart"] == ["/opt/flexscore/venv/bin/flexscore run --config /etc/flexscore/config.toml"]


def test_verify_is_clean(root: Path) -> None:
    assert ANALYZE is not None
    proc = subprocess.run(
        [ANALYZE, "verify", "--man=no", f"--root={root}", "/etc/systemd/system/flexscore.service"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0 and output == "", output


def test_security_exposure_is_reported(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ANALYZE is not None
    proc = subprocess.run(
        [ANALYZE, "security", "--offline=yes", f"--root={root}", "--no-pager", "flexscore.service"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for flexscore\.service: ([\d.]+) (\w+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    exposure = float(match.group(1))
    with capsys.disabled():
        print(f"\nsystemd-analyze security: exposure {exposure} {match.group(2)}")
    assert exposure <= 3.0  # "OK" band; a regression in hardening shows here
