#!/usr/bin/env bash
# Install Flexscore as a systemd service on Raspberry Pi OS (64-bit), Bookworm or Trixie.
#
#   sudo scripts/install-pi.sh [--dry-run] [--source DIR|WHEEL] [--no-start]
#
# What it does (each step is skipped when already done, so running it again upgrades, and
# repairs an install that stopped half-way):
#   1. checks the OS: Raspberry Pi OS / Debian Bookworm or Trixie on arm64 only
#   2. apt packages: python3-picamera2 (camera), python3-lgpio (GPIO), python3-venv,
#      espeak-ng (the spoken prompts, [panel] voice = true; off by default)
#   3. system user 'flexscore' in the groups video, gpio and audio
#   4. venv /opt/flexscore/venv with --system-site-packages (picamera2 comes from apt)
#   5. the device dependencies from requirements/device-lock.txt (pinned, every file checked
#      against its sha256: pip --require-hashes, wheels only), then the package itself from
#      the checkout or wheel (--no-deps; no TensorFlow, no mediapipe); the models ship in it
#   6. /etc/flexscore/config.toml with a generated clinician password (kept if present);
#      the password is written once to /etc/flexscore/initial-clinician-password (root only);
#      the page is served over HTTPS on port 8443 of every address.
#      `flexscore check-config` must pass, run as the service user: if it fails, the script
#      stops here and names the problem (a config from an earlier version of this script,
#      with the key clinician_password_hash, is repaired).
#   7. the self-signed HTTPS certificate (made once); its SHA-256 fingerprint is printed
#   8. systemd unit installed, enabled and (re)started
# --dry-run prints every action without doing any of them and needs no root.
#
# Installing off a Pi (scripts/check-aarch64.sh, tests/test_install_pi.py) — environment:
#   FLEXSCORE_ROOT=DIR   install into DIR as if it were / (venv, config, unit, state dir; the
#                        service user is added to DIR/etc/passwd with useradd --prefix)
#   FLEXSCORE_SKIP=WORDS skip steps that need a real Pi, space-separated:
#                          pi-apt     the Raspberry Pi repository's packages (picamera2, lgpio)
#                          apt        every apt step (the root is not the running system)
#                          systemctl  daemon-reload, enable and restart of the unit
# For tests: FLEXSCORE_OS_RELEASE (file read instead of /etc/os-release) and FLEXSCORE_ARCH
# (instead of `dpkg --print-architecture`).
set -euo pipefail
# The venv and the unit must be readable by the service user whatever umask root has (sudo
# may pass on 0077); the config, password and state dir get their own modes below.
umask 0022

ROOT=${FLEXSCORE_ROOT:-}
ROOT=${ROOT%/}
PREFIX=$ROOT/opt/flexscore
VENV="$PREFIX/venv"
CONF_DIR=$ROOT/etc/flexscore
CONFIG="$CONF_DIR/config.toml"
PASSWORD_FILE="$CONF_DIR/initial-clinician-password"
UNIT_NAME=flexscore.service
UNIT_DEST="$ROOT/etc/systemd/system/$UNIT_NAME"
STATE_DIR=/var/lib/flexscore # as the service sees it (the unit's StateDirectory=)
SERVICE_USER=flexscore
PI_APT_PACKAGES=(python3-picamera2 python3-lgpio) # from the Raspberry Pi repository
APT_PACKAGES=(python3-venv python3-pip openssl espeak-ng)

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
LOCK="$REPO_DIR/requirements/device-lock.txt"
SOURCE="$REPO_DIR"
SKIP=" ${FLEXSCORE_SKIP:-} "
DRY_RUN=0
START=1

die() {
    printf 'install-pi: error: %s\n' "$*" >&2
    exit 1
}

say() {
    printf '== %s\n' "$*"
}

# Print a command, then run it unless this is a dry run.
run() {
    local arg line="+"
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then
            line+=" $arg"
        else
            line+=" '${arg//\'/\'\\\'\'}'"
        fi
    done
    printf '%s\n' "$line"
    if [ "$DRY_RUN" -eq 0 ]; then
        "$@"
    fi
}

# write_file PATH MODE OWNER:GROUP < content — atomically, unless this is a dry run.
write_file() {
    local path=$1 mode=$2 owner=$3 content tmp
    content=$(cat)
    printf '+ write %s (mode %s, owner %s)\n' "$path" "$mode" "$owner"
    if [ "$DRY_RUN" -eq 0 ]; then
        tmp=$(mktemp "$path.XXXXXX")
        printf '%s\n' "$content" >"$tmp"
        chmod "$mode" "$tmp"
        chown "$owner" "$tmp"
        mv -f "$tmp" "$path"
    fi
}

usage() {
    sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'
}

skipped() {
    [[ $SKIP == *" $1 "* ]]
}

# The numeric id of a local user or group (the service's: useradd writes them to the files).
local_id() {
    awk -F: -v name="$2" '$1 == name { print $3 }' "$ROOT/etc/$1"
}

while [ $# -gt 0 ]; do
    case $1 in
        --dry-run) DRY_RUN=1 ;;
        --no-start) START=0 ;;
        --source)
            [ $# -ge 2 ] || die "--source needs a directory or a wheel"
            SOURCE=$2
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done
for word in $SKIP; do
    case $word in
        pi-apt | apt | systemctl) ;;
        *) die "FLEXSCORE_SKIP: unknown step '$word' (pi-apt, apt, systemctl)" ;;
    esac
done
if [ -n "$ROOT" ] && [ ! -d "$ROOT" ]; then
    die "FLEXSCORE_ROOT '$ROOT' is not a directory"
fi

# --------------------------------------------------------------------------- 1. platform
check_platform() {
    local os_release=${FLEXSCORE_OS_RELEASE:-/etc/os-release} arch id codename
    [ -r "$os_release" ] || die "cannot read $os_release: is this Raspberry Pi OS?"
    # shellcheck source=/dev/null
    id=$(. "$os_release" && printf '%s' "${ID:-}")
    # shellcheck source=/dev/null
    codename=$(. "$os_release" && printf '%s' "${VERSION_CODENAME:-}")
    if [ -n "${FLEXSCORE_ARCH:-}" ]; then
        arch=$FLEXSCORE_ARCH
    elif command -v dpkg >/dev/null 2>&1; then
        arch=$(dpkg --print-architecture)
    else
        arch=unknown
    fi
    case $arch in
        arm64) ;;
        armhf | armel)
            die "32-bit Raspberry Pi OS ($arch) is not supported: the inference runtime" \
                "(ai-edge-litert) and numpy 2 ship wheels for 64-bit only. Install" \
                "Raspberry Pi OS (64-bit) Bookworm and run this script again."
            ;;
        *) die "this installer is for Raspberry Pi OS 64-bit (arm64); this system is '$arch'" ;;
    esac
    case $id in
        debian | raspbian) ;;
        *) die "this installer is for Raspberry Pi OS 64-bit; this system is '${id:-unknown}'" ;;
    esac
    case $codename in
        bookworm | trixie) ;;
        *) die "this installer is for Raspberry Pi OS Bookworm or Trixie; this system is '${codename:-unknown}'" ;;
    esac
    say "platform: $id $codename $arch"
}

check_platform
if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo $0), or with --dry-run to see what it would do"
fi
if [ ! -e "$SOURCE" ]; then
    die "package source '$SOURCE' not found (a checkout or a flexscore wheel)"
fi
if [ ! -r "$LOCK" ]; then
    die "dependency lock $LOCK not found (run this script from a flexscore checkout)"
fi
[ "$DRY_RUN" -eq 1 ] && say "dry run: printing actions, changing nothing"
[ -n "$ROOT" ] && say "installing into $ROOT (FLEXSCORE_ROOT)"

# --------------------------------------------------------------------------- 2. apt
say "apt packages"
if skipped apt; then
    printf '= skipped (FLEXSCORE_SKIP=apt): %s\n' "${PI_APT_PACKAGES[*]} ${APT_PACKAGES[*]}"
else
    if skipped pi-apt; then
        printf '= skipped (FLEXSCORE_SKIP=pi-apt): %s from the Raspberry Pi repository;' \
            "${PI_APT_PACKAGES[*]}"
        printf ' the camera (picamera2) and the button/LED (lgpio) will not work on this system\n'
    else
        APT_PACKAGES=("${PI_APT_PACKAGES[@]}" "${APT_PACKAGES[@]}")
    fi
    run apt-get update
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
fi

# --------------------------------------------------------------------------- 3. user
say "service user"
prefix=()
[ -n "$ROOT" ] && prefix=(--prefix "$ROOT")
if [ -n "$(local_id passwd "$SERVICE_USER")" ]; then
    printf '= user %s exists\n' "$SERVICE_USER"
else
    run useradd "${prefix[@]}" --system --user-group --home-dir "$STATE_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "Flexscore appliance" "$SERVICE_USER"
fi
for group in video gpio audio; do
    if [ -n "$(local_id group "$group")" ] || [ "$DRY_RUN" -eq 1 ]; then
        run usermod "${prefix[@]}" --append --groups "$group" "$SERVICE_USER"
    else
        printf 'install-pi: warning: group %s does not exist; skipped\n' "$group" >&2
    fi
done
# Owners by number: under FLEXSCORE_ROOT the user exists only in that root's files.
uid=$(local_id passwd "$SERVICE_USER")
gid=$(local_id group "$SERVICE_USER")
if [ "$DRY_RUN" -eq 1 ]; then
    uid=${uid:-$SERVICE_USER} gid=${gid:-$SERVICE_USER}
elif [ -z "$uid" ] || [ -z "$gid" ]; then
    die "user or group $SERVICE_USER not found in $ROOT/etc/passwd or $ROOT/etc/group"
fi

# --------------------------------------------------------------------------- 4-5. venv + package
say "virtual environment $VENV"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import pip' >/dev/null 2>&1; then
    printf '= venv %s exists\n' "$VENV"
else
    if [ -e "$VENV" ]; then
        printf '= venv %s is broken (no working python/pip): made again\n' "$VENV"
        run rm -rf "$VENV"
    fi
    run install -d -m 0755 "$PREFIX"
    run python3 -m venv --system-site-packages "$VENV"
fi
# Pinned and hash-checked; wheels only, so nothing is compiled on the Pi. The lock also pins
# setuptools/wheel, which build the package from a checkout without fetching anything else.
run "$VENV/bin/python" -m pip install --require-hashes --only-binary=:all: -r "$LOCK"
run "$VENV/bin/python" -m pip install --no-deps --no-build-isolation --force-reinstall "$SOURCE"

# --------------------------------------------------------------------------- 6. config
say "configuration $CONFIG"
run install -d -m 0750 -o root -g "$gid" "$CONF_DIR"
# Earlier versions of this script wrote the password hash under a key that the config never
# had, so that install never passed check-config: write the file again from this version's
# template, with the same hash (the password file stays valid); the old one is kept as .old.
hash=""
if [ -e "$CONFIG" ] && grep -q '^clinician_password_hash = ' "$CONFIG"; then
    hash=$(sed -n 's/^clinician_password_hash = "\(.*\)"$/\1/p' "$CONFIG")
    printf '= config %s: written by an earlier installer (web.clinician_password_hash);' "$CONFIG"
    printf ' written again with the same password hash, the old file kept as %s.old\n' "$CONFIG"
    run mv -f "$CONFIG" "$CONFIG.old"
fi
if [ -e "$CONFIG" ] && [ -z "$hash" ]; then
    printf '= config %s exists; kept\n' "$CONFIG"
else
    if [ -n "$hash" ]; then
        password=""
    elif [ "$DRY_RUN" -eq 1 ]; then
        printf '+ generate a clinician password and its hash (werkzeug scrypt)\n'
        password=DRY-RUN
        hash=DRY-RUN-HASH
    else
        password=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(12))')
        hash=$(FLEXSCORE_PW=$password "$VENV/bin/python" -c \
            'import os; from werkzeug.security import generate_password_hash as g; print(g(os.environ["FLEXSCORE_PW"]))')
    fi
    write_file "$CONFIG" 0640 "root:$gid" <<EOF
# Flexscore configuration (written by install-pi.sh; check with: flexscore check-config ${CONFIG#"$ROOT"})

[camera]
backend = "picamera2"
width = 640
height = 480
fps = 30.0

[panel]
button_pin = 17
led_pin = 27

[unit]
# Whom the button records for. A clinician binds the unit on the page ("Bind this unit to this
# patient", or a Start with a patient code); until then a press is refused with how to fix it.
# patient = "HOME01"   # a pseudonymous code, set here for a home unit
# side = "right"       # that patient's affected side
# anonymous = true     # screening without patients (every result and export says so)

[trial]
# item = "mass_flexion"  # or "mass_extension", or "all" (make a fist, then open the hand)

[store]
path = "$STATE_DIR/flexscore.db"

[web]
# HTTPS on the network: a self-signed certificate is made once in $STATE_DIR/tls/ (its
# fingerprint is on the status page); set cert_file and key_file to use the site's own.
host = "0.0.0.0"
port = 8443
tls = true
password_hash = "$hash"
# Host names the page answers to (others get 400). Empty: this device's host name, its
# .local name and addresses, localhost. Add a DNS alias here if the site gives it one.
allowed_hosts = []
EOF
    if [ -n "$password" ]; then
        write_file "$PASSWORD_FILE" 0600 root:root <<<"$password"
        [ "$DRY_RUN" -eq 1 ] || say "clinician password written to $PASSWORD_FILE (root only)"
    fi
fi
# The service's state directory (systemd's StateDirectory= makes the same), then the check,
# as the service user: it reads the config, loads and verifies the configured models and
# writes to the state directory as the service will.
run install -d -m 0700 -o "$uid" -g "$gid" "$ROOT$STATE_DIR"
check=(setpriv --reuid="$uid" --regid="$gid" --clear-groups --
    "$VENV/bin/flexscore" check-config --state-dir "$ROOT$STATE_DIR" "$CONFIG")
if ! run "${check[@]}"; then
    die "$CONFIG fails flexscore check-config (above); nothing after it was installed." \
        "Correct the file (or move it aside to have a new one written) and run this script again."
fi

# --------------------------------------------------------------------------- 7. certificate
say "HTTPS certificate"
run setpriv --reuid="$uid" --regid="$gid" --clear-groups -- \
    "$VENV/bin/flexscore" certificate --config "$CONFIG" --state-dir "$ROOT$STATE_DIR"

# --------------------------------------------------------------------------- 8. unit
say "systemd unit $UNIT_DEST"
run install -D -m 0644 "$REPO_DIR/systemd/$UNIT_NAME" "$UNIT_DEST"
if skipped systemctl; then
    printf '= skipped (FLEXSCORE_SKIP=systemctl): systemctl daemon-reload, enable'
    [ "$START" -eq 1 ] && printf ', restart'
    printf ' %s\n' "$UNIT_NAME"
    say "done: installed; the service was not started (FLEXSCORE_SKIP=systemctl)"
    exit 0
fi
run systemctl daemon-reload
run systemctl enable "$UNIT_NAME"
if [ "$START" -eq 1 ]; then
    run systemctl restart "$UNIT_NAME"
fi
say "done: open https://$(hostname).local:8443/ and check that the certificate's SHA-256" \
    "fingerprint matches the one printed above; systemctl status $UNIT_NAME; journalctl -u $UNIT_NAME -f"
