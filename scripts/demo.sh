#!/usr/bin/env bash
# The README's run command: installs the device extra into .venv and runs the appliance on
# its embedded default (bundled sample video as the camera, mock GPIO, page on 127.0.0.1:8080).
# Extra arguments go to `flexscore run` (e.g. --port 0 --state-dir /tmp/flexscore-demo).
# Press the (mock) button from another terminal with `.venv/bin/flexscore press`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
bash scripts/setup-venv.sh device
venv=${FLEXSCORE_VENV:-.venv}
export GPIOZERO_PIN_FACTORY=${GPIOZERO_PIN_FACTORY:-mock}
exec "$venv/bin/flexscore" run "$@"
