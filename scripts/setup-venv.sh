#!/usr/bin/env bash
# Create (or update) the project's virtualenv and install the package with the given extras.
# Usage: scripts/setup-venv.sh EXTRAS   (e.g. "device" or "dev")
# Environment: FLEXSCORE_VENV (default .venv in the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-device}
venv=${FLEXSCORE_VENV:-.venv}
py=${PYTHON:-python3}

if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "flexscore: needs Python >= 3.11 (found: $("$py" --version 2>&1))" >&2
    exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
    if ! "$py" -m venv "$venv" 2>/dev/null; then
        if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
            echo "flexscore: installing python3-venv" >&2
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            rm -rf "$venv"
            "$py" -m venv "$venv"
        else
            echo "flexscore: cannot create a virtualenv; install python3-venv" >&2
            exit 1
        fi
    fi
fi
stamp="$venv/.flexscore-$extras.stamp"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "flexscore: installing the package with extras [$extras] into $venv" >&2
    "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$venv/bin/python" -m pip install -q -e ".[$extras]"
    touch "$stamp"
fi
