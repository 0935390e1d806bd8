"""requirements/device-lock.txt: the Pi's pinned, hash-checked dependencies.

The lock (scripts/lock-deps.sh, uv) covers every Python the Pi runs; a version that differs
between Python 3.11 (Raspberry Pi OS Bookworm) and 3.13 (Trixie) gets one line per Python with
a marker. pip evaluates markers for the Python it runs on, even with ``--python-version``, so
the resolve check picks each target's lines itself before ``pip download``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "device-lock.txt"

# (Python, glibc of the Raspberry Pi OS release that ships it)
PI_TARGETS = [("3.11", "bookworm", 36), ("3.13", "trixie", 41)]


def lock_entries() -> list[tuple[Requirement, list[str], str]]:
    """(requirement with its marker, sha256 hashes, the entry's text) per entry of the lock."""
    text = LOCK.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req_text, _, rest = line.partition(" --hash=")
        hashes = [h.split()[0] for h in ("--hash=" + rest).split("--hash=") if h.strip()] if rest else []
        out.append((Requirement(req_text.strip()), hashes, line))
    return out


def target_env(python: str) -> dict[str, str]:
    env = dict(default_environment())
    env.update(python_version=python, python_full_version=f"{python}.0", platform_machine="aarch64",
               sys_platform="linux", platform_system="Linux", os_name="posix",
               implementation_name="cpython", platform_python_implementation="CPython")  # fmt: skip
    return env


def pins_for(python: str) -> dict[str, tuple[str, str]]:
    """name → (pinned version, the entry without its marker) of the entries that apply on a Pi
    with ``python`` (pip would evaluate a marker for the Python it runs on)."""
    env = target_env(python)
    pins: dict[str, tuple[str, str]] = {}
    for req, hashes, _ in lock_entries():
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        assert name not in pins, f"{name} is pinned twice for Python {python}"
        (spec,) = req.specifier
        assert spec.operator == "==", f"{name} is not pinned: {spec}"
        pins[name] = (spec.version, f"{name}=={spec.version} " + " ".join(f"--hash={h}" for h in hashes))
    return pins


def test_every_entry_is_pinned_with_sha256_hashes() -> None:
    entries = lock_entries()
    assert len(entries) > 10
    for req, hashes, _ in entries:
        assert hashes, f"{req.name} has no --hash"
        assert all(h.startswith("sha256:") and len(h) == 7 + 64 for h in hashes), req.name


@pytest.mark.parametrize("python", [p for p, _, _ in PI_TARGETS])
def test_lock_satisfies_the_package_requirements(python: str) -> None:
    """Every runtime dependency, every 'device' extra and the build requirements are pinned
    in the lock, at a version pyproject.toml allows (the lock cannot drift from it)."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = [
        *meta["project"]["dependencies"],
        *meta["project"]["optional-dependencies"]["device"],
        *meta["build-system"]["requires"],
    ]
    pins = pins_for(python)
    env = target_env(python)
    for text in wanted:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} (pyproject.toml) is not in {LOCK.name} for Python {python}"
        assert req.specifier.contains(pins[name][0], prereleases=True), (
            f"{name}=={pins[name][0]} in the lock does not satisfy '{text}' of pyproject.toml"
        )
    # nothing for training or the reference stack
    assert not {"tensorflow", "tensorflow-cpu", "mediapipe", "torch"} & set(pins)


@pytest.mark.slow
@pytest.mark.parametrize(("python", "release", "glibc"), PI_TARGETS)
def test_lock_resolves_to_aarch64_wheels(tmp_path: Path, python: str, release: str, glibc: int) -> None:
    """Each pinned package has a wheel for the Pi (aarch64, manylinux up to the release's
    glibc) and that wheel matches a hash in the lock: pip download, nothing installed."""
    req_file = tmp_path / f"pi-{release}.txt"
    req_file.write_text("\n".join(line for _, line in pins_for(python).values()) + "\n")
    platforms = [a for m in range(17, glibc + 1) for a in ("--platform", f"manylinux_2_{m}_aarch64")]
    out = tmp_path / "wheels"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--require-hashes", *platforms, "--python-version", python, "-r", str(req_file),
         "-d", str(out)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = sorted(p.name for p in out.glob("*.whl"))
    assert len(wheels) == len(pins_for(python)), wheels
    tag = f"cp{python.replace('.', '')}"
    assert any(w.startswith("ai_edge_litert-") and f"-{tag}-" in w and "aarch64" in w for w in wheels)
    numpy = next(w for w in wheels if w.startswith("numpy-"))
    assert f"-{tag}-" in numpy and "aarch64" in numpy
