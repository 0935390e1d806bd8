#!/usr/bin/env bash
# Make the MediaPipe *reference* venv (.venv-reference by default: .venv-ref).
#
# mediapipe==0.10.21 is the accuracy and speed anchor for our tracker. It pins numpy<2
# and pulls ~1 GB of dependencies (jax, matplotlib, opencv-contrib, ...), so it never
# goes on the device and lives in its own venv (gitignored by the .venv* rule).
# device/tools/reference_hands.py runs inside it; `flexscore bench --reference-python PATH`
# and scripts/eval_tracker.py call it through that venv's python.
#
# Usage: scripts/make_reference_venv.sh [VENV_DIR]     (default: <repo>/.venv-ref)
#        PYTHON=/path/to/python3.11 scripts/make_reference_venv.sh
# Idempotent: if the venv already imports the pinned versions, it only says so.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$here/.venv-ref}"
python="${PYTHON:-python3.11}"

MEDIAPIPE_VERSION="0.10.21"
REQUIREMENTS=("mediapipe==${MEDIAPIPE_VERSION}" "numpy<2" "opencv-python-headless<4.12")

check_venv() {
    "$venv/bin/python" - "$MEDIAPIPE_VERSION" <<'EOF' 2>/dev/null
import sys
import cv2
import mediapipe as mp
import numpy as np

want = sys.argv[1]
ok = (
    sys.version_info[:2] == (3, 11)
    and mp.__version__ == want
    and int(np.__version__.split(".")[0]) < 2
    and hasattr(mp, "solutions")
)
print(f"python {sys.version.split()[0]}, mediapipe {mp.__version__}, "
      f"numpy {np.__version__}, opencv {cv2.__version__}")
sys.exit(0 if ok else 1)
EOF
}

if [[ -x "$venv/bin/python" ]] && check_venv; then
    echo "reference venv ready: $venv"
    exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: $python not found; mediapipe ${MEDIAPIPE_VERSION} needs Python 3.11 (set PYTHON=...)" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
    echo "error: $python is $("$python" --version 2>&1); Python 3.11 is required" >&2
    exit 1
fi
case "$(uname -m)" in
    x86_64) ;;
    *) echo "warning: mediapipe ${MEDIAPIPE_VERSION} has wheels for x86_64 only; pip may fail on $(uname -m)" >&2 ;;
esac

if [[ -x "$venv/bin/python" ]]; then
    echo "reference venv at $venv exists but is incomplete: installing into it"
else
    echo "making reference venv at $venv with $("$python" --version)"
    "$python" -m venv "$venv"
fi
echo "upgrading pip"
"$venv/bin/python" -m pip install --quiet --upgrade pip
echo "installing ${REQUIREMENTS[*]} (about 1 GB)"
"$venv/bin/python" -m pip install --quiet "${REQUIREMENTS[@]}"
if ! check_venv; then
    echo "error: the reference venv at $venv does not import mediapipe ${MEDIAPIPE_VERSION} with numpy<2" >&2
    exit 1
fi
echo "reference venv ready: $venv"
