#!/usr/bin/env bash
# The README's run command: installs the device extra into .venv and runs the appliance on
# its embedded default (bundled sample video as the camera, mock GPIO, page on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
bash scripts/setup-venv.sh device
venv=${FLEXSCORE_VENV:-.venv}
export GPIOZERO_PIN_FACTORY=${GPIOZERO_PIN_FACTORY:-mock}
if "$venv/bin/flexscore" run --help >/dev/null 2>&1; then
    exec "$venv/bin/flexscore" run "$@"
fi
# Until the daemon lands: track the bundled sample clip and write an annotated copy.
mkdir -p out
exec "$venv/bin/flexscore" track --json out/sample.json --overlay out/sample_overlay.mp4 "$@"
