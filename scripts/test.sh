#!/usr/bin/env bash
# The README's test command: installs what the tests need, then lint, type check, tests.
# Runs unattended (CI calls it via .ci/run). Exit status: 0 only if every step passed and
# pytest actually ran tests (pytest's "no tests collected", exit 5, counts as failure).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1

# Debian packages the tests use: systemd-analyze (unit checks), chromium (browser tests),
# python3-venv (the installer test), mosquitto (the fleet tests), espeak-ng (the spoken
# prompts rendered to WAV files).
need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v shellcheck >/dev/null || need+=(shellcheck)
# tests/test_install_pi.py runs the installer, which makes its venv with Debian's python3
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if ls tests/test_browser*.py >/dev/null 2>&1; then command -v chromium >/dev/null || need+=(chromium); fi
# the fleet tests run a real MQTT broker with a password file and an ACL
if ls tests/test_fleet*.py >/dev/null 2>&1; then
    PATH="$PATH:/usr/sbin" command -v mosquitto >/dev/null || need+=(mosquitto)
    command -v mosquitto_pub >/dev/null || need+=(mosquitto-clients)
fi
if [ -f tests/test_voice.py ]; then command -v espeak-ng >/dev/null || need+=(espeak-ng); fi
if [ ${#need[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "flexscore: installing Debian packages: ${need[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "flexscore: missing ${need[*]} (not root: the tests that need them will skip)" >&2
    fi
fi

bash scripts/setup-venv.sh dev
venv=${FLEXSCORE_VENV:-.venv}
# The training venv (TensorFlow, never on the device): the small end-to-end training runs
# (tests/test_train_scorer.py, tests/test_train_from_store.py) use it. ~80 s the first time.
# FLEXSCORE_SKIP_TRAIN_VENV=1 skips it (those tests then skip and say why).
if [ "${FLEXSCORE_SKIP_TRAIN_VENV:-0}" != 1 ]; then
    bash scripts/make_train_venv.sh
fi

echo "== ruff" >&2
"$venv/bin/ruff" check device tests scripts
echo "== mypy" >&2
"$venv/bin/mypy"
echo "== pip-audit (device dependencies)" >&2
# 0 clean, 1 known vulnerabilities (fails the run), 3 vulnerability data unreachable: a loud
# warning (FLEXSCORE_AUDIT=required makes it a failure), never a silent pass.
set +e
"$venv/bin/python" scripts/audit_deps.py
audit=$?
set -e
echo "== pytest" >&2
set +e
"$venv/bin/python" -m pytest -W error "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
    echo "flexscore: pytest collected no tests — that is a failure" >&2
    exit 1
fi
if [ $audit -eq 3 ]; then
    echo "flexscore: WARNING: the device dependencies were NOT audited (vulnerability data unreachable)" >&2
    [ "${FLEXSCORE_AUDIT:-}" = required ] && exit 1
elif [ $audit -ne 0 ]; then
    echo "flexscore: the dependency audit failed (exit $audit): see '== pip-audit' above" >&2
    [ $rc -eq 0 ] && rc=1
fi
exit $rc
