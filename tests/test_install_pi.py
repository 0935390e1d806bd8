"""scripts/install-pi.sh for real, into a temporary root (FLEXSCORE_ROOT), from a copy of this
checkout: everything but apt and systemctl (FLEXSCORE_SKIP="apt systemctl").

The installer creates the service user in the root's /etc/passwd, a venv with the system
python3 (as on the Pi), installs the locked dependencies with --require-hashes, builds and
installs the package (not editable: the models come from the wheel), writes the config and
runs ``flexscore check-config`` as the service user. The installed ``flexscore`` then tracks
and scores the bundled clip.

To keep it lean the venv is made before the installer runs, with the test environment's
site-packages on its path (a .pth file): the locked versions found there count as installed
(pip reports them as already satisfied; a version that differs from the lock is installed
for real). The full install from the lock on aarch64 is scripts/check-aarch64.sh's; that
every locked file exists for the Pi is tests/test_lock.py's."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_layers import runtime_modules_reaching_tools

REPO = Path(__file__).resolve().parents[1]
SCRIPT = "scripts/install-pi.sh"
SYSTEM_PYTHON = Path("/usr/bin/python3")
CHECKOUT_IGNORE = shutil.ignore_patterns(
    ".git", ".venv*", ".cache", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache",
    ".ruff_cache", ".pytest_cache", ".hypothesis", "out", "var",
)  # fmt: skip


def _system_python_has_venv() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "import ensurepip, venv"], capture_output=True,
                           timeout=60, check=False)  # fmt: skip
    return probe.returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the installer runs as root (useradd, chown, setpriv)"),
    pytest.mark.skipif(
        shutil.which("setpriv") is None or shutil.which("useradd") is None or not _system_python_has_venv(),
        reason="needs Debian's /usr/bin/python3 with python3-venv, setpriv and useradd "
        "(scripts/test.sh installs python3-venv as root)",
    ),
]


@dataclass
class Installed:
    root: Path
    source: Path  # the copy of the checkout the installer ran from
    venv: Path
    first_run: subprocess.CompletedProcess[str]

    @property
    def config(self) -> Path:
        return self.root / "etc/flexscore/config.toml"

    @property
    def unit(self) -> Path:
        return self.root / "etc/systemd/system/flexscore.service"

    def ids(self, name: str) -> tuple[int, int]:
        lines = (self.root / "etc/passwd").read_text().splitlines()
        fields = next(ln.split(":") for ln in lines if ln.startswith(f"{name}:"))
        return int(fields[2]), int(fields[3])

    def install(self, *args: str) -> subprocess.CompletedProcess[str]:
        osr = self.root / "os-release.test"
        osr.write_text('PRETTY_NAME="Raspberry Pi OS (test)"\nID=debian\nVERSION_CODENAME=bookworm\n')
        env = {
            **os.environ,
            # the system python3 and tools first, as under sudo on a Pi
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "FLEXSCORE_ROOT": str(self.root),
            "FLEXSCORE_SKIP": "apt systemctl",
            "FLEXSCORE_OS_RELEASE": str(osr),
            "FLEXSCORE_ARCH": "arm64",
        }
        return subprocess.run(
            ["bash", str(self.source / SCRIPT), *args], capture_output=True, text=True, env=env,
            timeout=1200, check=False,
        )  # fmt: skip

    def workdir(self, name: str) -> Path:
        """A directory the service user can write (pytest's tmp_path is root's alone)."""
        path = self.root.parent / name
        path.mkdir()
        path.chmod(0o777)
        return path

    def flexscore(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """The installed command, as the service user."""
        uid, gid = self.ids("flexscore")
        return subprocess.run(
            ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--",
             str(self.venv / "bin/flexscore"), *args],
            capture_output=True, text=True, cwd=cwd, timeout=600, check=False,
            env={**os.environ, "HOME": str(cwd)},
        )  # fmt: skip


def _seed_root(root: Path) -> None:
    """The account files of a fresh Raspberry Pi OS (its 'video' and 'gpio' groups)."""
    etc = root / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\nvideo:x:44:\ngpio:x:993:\n")
    (etc / "shadow").write_text("root:*:20000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\nvideo:*::\ngpio:*::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o640)


def _venv_with_test_packages(venv: Path) -> None:
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=300)  # fmt: skip
    probe = subprocess.run(
        [str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    ours = sysconfig.get_paths()["purelib"]
    their = Path(probe.stdout.strip())
    if their.name == Path(ours).name and f"python{sys.version_info[0]}.{sys.version_info[1]}" in str(their):
        (their / "zz_flexscore_test_packages.pth").write_text(ours + "\n")


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    # Not under pytest's tmp_path: the service user must be able to reach the root (0700 there).
    base = Path(tempfile.mkdtemp(prefix="flexscore-install-"))
    umask = os.umask(0o022)  # as a shell would have it (other tests leave 0077 behind)
    try:
        base.chmod(0o755)
        root = base / "root"
        root.mkdir()
        _seed_root(root)
        source = base / "checkout"
        shutil.copytree(REPO, source, symlinks=True, ignore=CHECKOUT_IGNORE)
        venv = root / "opt/flexscore/venv"
        _venv_with_test_packages(venv)
        inst = Installed(root, source, venv, subprocess.CompletedProcess([], 0))
        inst.first_run = inst.install("--source", str(source))
        yield inst
    finally:
        os.umask(umask)
        shutil.rmtree(base, ignore_errors=True)


def test_install_into_a_root_passes_check_config(installed: Installed) -> None:
    proc = installed.first_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    root = installed.root
    assert f"{installed.config}: OK (camera picamera2, models lite int8" in out
    assert "= skipped (FLEXSCORE_SKIP=apt)" in out and "= skipped (FLEXSCORE_SKIP=systemctl)" in out
    assert "--require-hashes --only-binary=:all: -r" in out
    # the service user, in the root's account files only
    uid, gid = installed.ids("flexscore")
    groups = {ln.split(":")[0]: ln.split(":")[3] for ln in (root / "etc/group").read_text().splitlines()}
    assert groups["video"] == "flexscore" and groups["gpio"] == "flexscore"
    # config and password: owners and modes; the password matches the hash in the config
    cst = installed.config.stat()
    assert (stat.S_IMODE(cst.st_mode), cst.st_uid, cst.st_gid) == (0o640, 0, gid)
    pw_file = root / "etc/flexscore/initial-clinician-password"
    pst = pw_file.stat()
    assert (stat.S_IMODE(pst.st_mode), pst.st_uid) == (0o600, 0)
    import tomllib

    from werkzeug.security import check_password_hash

    cfg = tomllib.loads(installed.config.read_text())
    assert check_password_hash(cfg["web"]["password_hash"], pw_file.read_text().strip())
    assert "clinician_password_hash" not in installed.config.read_text()
    sst = (root / "var/lib/flexscore").stat()
    assert (stat.S_IMODE(sst.st_mode), sst.st_uid, sst.st_gid) == (0o700, uid, gid)  # as StateDirectoryMode
    # the HTTPS certificate, made as the service user
    assert (root / "var/lib/flexscore/tls/key.pem").stat().st_uid == uid
    assert "SHA-256 fingerprint " in out
    assert installed.unit.read_text() == (REPO / "systemd/flexscore.service").read_text()


def test_the_installed_package_is_not_the_checkout(installed: Installed, tmp_path: Path) -> None:
    """A real (not editable) install: the package and its models are in the venv."""
    tmp_path.chmod(0o755)
    probe = subprocess.run(
        [str(installed.venv / "bin/python"), "-c",
         "import device, device.config as c; print(device.__file__); print(c.DEFAULT_MODELS_DIR)"],
        capture_output=True, text=True, cwd=tmp_path, check=True, timeout=60,
    )  # fmt: skip
    package, models = (Path(x) for x in probe.stdout.split())
    assert package.is_relative_to(installed.venv), package
    assert models.is_relative_to(installed.venv) and not models.is_symlink()
    # every model of the manifest is in the package, byte for byte
    import hashlib
    import json

    manifest = json.loads((models / "manifest.json").read_text())["models"]
    assert manifest == json.loads((REPO / "models/manifest.json").read_text())["models"]
    for name, entry in manifest.items():
        digest = hashlib.sha256((models / entry["file"]).read_bytes()).hexdigest()
        assert digest == entry["sha256"], name


def test_the_installed_command_tracks_and_scores_the_bundled_clip(installed: Installed) -> None:
    tmp_path = installed.workdir("track")
    track = installed.flexscore("track", "--json", "clip.json", "--no-progress", cwd=tmp_path)
    assert track.returncode == 0, track.stderr
    assert "sample_open_fist_open.mp4: 77 frames, hand in 100%" in track.stderr
    score = installed.flexscore("score", "--landmarks", "clip.json", "--mirrored", cwd=tmp_path)
    assert score.returncode == 0, score.stderr
    assert score.stdout.startswith("score 2 "), score.stdout


def test_the_installed_wheel_benches_and_scores_a_video_apart_from_its_tooling(installed: Installed) -> None:
    """Installed from the wheel pip built (not editable, no checkout on the path): the tooling
    commands work, ``flexscore score VIDEO --json`` scores the clip the package ships, no
    installed runtime module imports ``device.tools`` and loading the daemon and the scoring
    commands loads nothing of it."""
    tmp_path = installed.workdir("wheel")
    probe = subprocess.run(
        [str(installed.venv / "bin/python"), "-c",
         "import sys, device.app, device.app_cli, device.scoring.cli, device.site_cli, "
         "device.scoring.installed, device.vision.cli; from device.data import SAMPLE_VIDEO; "
         "print([m for m in sys.modules if m.startswith('device.tools')]); "
         "from device.tools.bench import REFERENCE_SCRIPT; print(SAMPLE_VIDEO); print(REFERENCE_SCRIPT)"],
        capture_output=True, text=True, cwd=tmp_path, check=True, timeout=120,
    )  # fmt: skip
    loaded, video, script = probe.stdout.splitlines()
    assert loaded == "[]"
    assert Path(video).is_relative_to(installed.venv) and Path(script).is_relative_to(installed.venv)
    assert Path(script).is_file()
    # the same rule read from the installed files (tests/test_layers.py reads the checkout's)
    package = Path(script).parents[1]
    assert (package / "app.py").is_file() and (package / "tools" / "cli.py").is_file()
    assert runtime_modules_reaching_tools(package) == {}
    score = installed.flexscore("score", video, "--json", cwd=tmp_path)
    assert score.returncode == 0, score.stderr
    result = json.loads(score.stdout)
    assert (result["status"], result["score"]) == ("scored", 2), result
    bench = installed.flexscore("bench", "--help", cwd=tmp_path)
    assert bench.returncode == 0 and "--reference-python" in bench.stdout, bench.stderr
    train = installed.flexscore("train", "--help", cwd=tmp_path)
    assert train.returncode == 0 and "--from-store" in train.stdout, train.stderr
    # the MediaPipe runner is in the wheel; a python without mediapipe: one clear line, exit 2
    no_mediapipe = str(installed.venv / "bin/python")
    ref = installed.flexscore("bench", "--only", "reference", "--max-frames", "2",
                              "--reference-python", no_mediapipe, cwd=tmp_path)  # fmt: skip
    assert ref.returncode == 2
    last = ref.stderr.strip().splitlines()[-1]
    assert last.startswith("flexscore: error: the MediaPipe comparison needs mediapipe, which"), ref.stderr
    assert "Traceback" not in ref.stderr


def test_a_rerun_repairs_an_install_broken_by_the_old_installer(installed: Installed) -> None:
    """The state the old installer left: the hash under 'clinician_password_hash', stopped by
    check-config before the unit. A re-run — here from a wheel — finishes the install and
    keeps the clinician's password."""
    text = installed.config.read_text()
    installed.config.write_text(text.replace("\npassword_hash = ", "\nclinician_password_hash = "))
    installed.unit.unlink()
    wheels = installed.root.parent / "wheels"
    subprocess.run(
        [str(installed.venv / "bin/python"), "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", "-w", str(wheels), str(installed.source)],
        check=True, timeout=600, capture_output=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("flexscore-*.whl")
    proc = installed.install("--source", str(wheel))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "written again with the same password hash" in proc.stdout
    assert installed.config.read_text() == text  # the same hash: the password file stays valid
    assert "clinician_password_hash" in installed.config.with_suffix(".toml.old").read_text()
    assert f"{installed.config}: OK" in proc.stdout
    assert installed.unit.is_file()


def test_the_installer_stops_at_a_config_that_fails_check_config(installed: Installed) -> None:
    text = installed.config.read_text()
    installed.unit.unlink()
    try:
        assert "\nport = 8443\n" in text
        installed.config.write_text(text.replace("\nport = 8443\n", "\nport = 80800\n"))
        proc = installed.install("--source", str(installed.source))
        assert proc.returncode == 1
        assert "config key 'web.port'" in proc.stderr
        assert "fails flexscore check-config" in proc.stderr
        assert not installed.unit.exists()  # nothing after the check
        assert "port = 80800" in installed.config.read_text()  # a clinician's file is not replaced
    finally:
        installed.config.write_text(text)
