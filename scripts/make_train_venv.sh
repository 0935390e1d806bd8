#!/usr/bin/env bash
# Make the separate training venv (.venv-train) used by scripts/train_scorer.py.
#
# TensorFlow is ~1.6 GB installed and never goes on the device, so it lives in its own
# venv (gitignored by the .venv* rule). The device runtime (ai-edge-litert) is installed
# here too so the script can check the exported int8 model with the same interpreter the
# device uses.
#
# Usage: scripts/make_train_venv.sh [VENV_DIR]   (default: .venv-train next to this repo)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$here/.venv-train}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3

if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import tensorflow, tf_keras, ai_edge_litert" 2>/dev/null; then
    echo "train venv ready: $venv"
    exit 0
fi

echo "making train venv at $venv with $("$python" --version)"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
# Pinned together: tf-keras must match the TensorFlow minor version.
"$venv/bin/pip" install --quiet \
    "tensorflow-cpu==2.21.*" "tf-keras==2.21.*" \
    "ai-edge-litert==2.3.0" "numpy>=1.26" "tqdm>=4.66" "opencv-python-headless>=4.8"
# The package itself (features, synthetic generator) without its dependencies re-resolved.
"$venv/bin/pip" install --quiet --no-deps -e "$here"
"$venv/bin/python" -c "import tensorflow as tf, tf_keras; print('tensorflow', tf.__version__, 'tf_keras', tf_keras.__version__)"
echo "train venv ready: $venv"
