#!/usr/bin/env bash
# Regenerate requirements/device-lock.txt: the device's dependencies (the 'device' extra of
# pyproject.toml) and the package's build requirements (requirements/build.in), pinned with
# the sha256 of every file PyPI serves for each pinned version. One lock for every Python the
# Pi runs (3.11 on Bookworm, 3.13 on Trixie): where the newest version differs between them,
# uv writes one line per Python with a marker (numpy, for instance).
#
#   scripts/lock-deps.sh            (needs network access to PyPI)
#
# scripts/install-pi.sh installs from the lock with --require-hashes; tests/test_lock.py checks
# that every pinned package has a cp311 and a cp313 wheel for aarch64 (manylinux_2_28).
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install -q "uv==$UV_VERSION"
"$tools/venv/bin/uv" pip compile pyproject.toml requirements/build.in --extra device \
    --constraint requirements/constraints.txt --universal --python-version 3.11 --generate-hashes \
    --custom-compile-command "scripts/lock-deps.sh" -o requirements/device-lock.txt
