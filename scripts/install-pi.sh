#!/usr/bin/env bash
# Install Flexscore as a systemd service on Raspberry Pi OS Bookworm (64-bit).
#
#   sudo scripts/install-pi.sh [--dry-run] [--source DIR|WHEEL] [--no-start]
#
# What it does (each step is skipped when already done, so running it again upgrades):
#   1. checks the OS: Raspberry Pi OS / Debian Bookworm on arm64 only
#   2. apt packages: python3-picamera2 (camera), python3-lgpio (GPIO), python3-venv
#   3. system user 'flexscore' in the groups video and gpio
#   4. venv /opt/flexscore/venv with --system-site-packages (picamera2 comes from apt)
#   5. pip install of the package with the 'device' extra only (no TensorFlow, no mediapipe)
#   6. /etc/flexscore/config.toml with a generated clinician password (kept if present);
#      the password is written once to /etc/flexscore/initial-clinician-password (root only);
#      the page is served over HTTPS on port 8443 of every address
#   7. the self-signed HTTPS certificate (made once); its SHA-256 fingerprint is printed
#   8. systemd unit installed, enabled and (re)started
# --dry-run prints every action without doing any of them and needs no root.
#
# For tests only: FLEXSCORE_OS_RELEASE (file read instead of /etc/os-release) and
# FLEXSCORE_ARCH (instead of `dpkg --print-architecture`).
set -euo pipefail

PREFIX=/opt/flexscore
VENV="$PREFIX/venv"
CONF_DIR=/etc/flexscore
CONFIG="$CONF_DIR/config.toml"
PASSWORD_FILE="$CONF_DIR/initial-clinician-password"
UNIT_NAME=flexscore.service
UNIT_DEST="/etc/systemd/system/$UNIT_NAME"
STATE_DIR=/var/lib/flexscore
SERVICE_USER=flexscore
APT_PACKAGES=(python3-picamera2 python3-lgpio python3-venv python3-pip openssl)

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
SOURCE="$REPO_DIR"
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
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
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
        *) die "this installer is for Raspberry Pi OS Bookworm 64-bit (arm64); this system is '$arch'" ;;
    esac
    case $id in
        debian | raspbian) ;;
        *) die "this installer is for Raspberry Pi OS Bookworm 64-bit; this system is '${id:-unknown}'" ;;
    esac
    [ "$codename" = bookworm ] ||
        die "this installer is for Raspberry Pi OS Bookworm; this system is '${codename:-unknown}'"
    say "platform: $id $codename $arch"
}

check_platform
if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo $0), or with --dry-run to see what it would do"
fi
if [ ! -e "$SOURCE" ]; then
    die "package source '$SOURCE' not found (a checkout or a flexscore wheel)"
fi
[ "$DRY_RUN" -eq 1 ] && say "dry run: printing actions, changing nothing"

# --------------------------------------------------------------------------- 2. apt
say "apt packages"
run apt-get update
run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"

# --------------------------------------------------------------------------- 3. user
say "service user"
if id -u "$SERVICE_USER" >/dev/null 2>&1; then
    printf '= user %s exists\n' "$SERVICE_USER"
else
    run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "Flexscore appliance" "$SERVICE_USER"
fi
for group in video gpio; do
    if getent group "$group" >/dev/null 2>&1 || [ "$DRY_RUN" -eq 1 ]; then
        run usermod --append --groups "$group" "$SERVICE_USER"
    else
        printf 'install-pi: warning: group %s does not exist; skipped\n' "$group" >&2
    fi
done

# --------------------------------------------------------------------------- 4-5. venv + package
say "virtual environment $VENV"
if [ -x "$VENV/bin/python" ]; then
    printf '= venv %s exists\n' "$VENV"
else
    run install -d -m 0755 "$PREFIX"
    run python3 -m venv --system-site-packages "$VENV"
fi
run "$VENV/bin/python" -m pip install --upgrade pip
run "$VENV/bin/python" -m pip install --upgrade "${SOURCE}[device]"

# --------------------------------------------------------------------------- 6. config
say "configuration $CONFIG"
run install -d -m 0750 -o root -g "$SERVICE_USER" "$CONF_DIR"
if [ -e "$CONFIG" ]; then
    printf '= config %s exists; kept\n' "$CONFIG"
else
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+ generate a clinician password and its hash (werkzeug scrypt)\n'
        password=DRY-RUN
        hash=DRY-RUN-HASH
    else
        password=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(12))')
        hash=$(FLEXSCORE_PW=$password "$VENV/bin/python" -c \
            'import os; from werkzeug.security import generate_password_hash as g; print(g(os.environ["FLEXSCORE_PW"]))')
    fi
    write_file "$CONFIG" 0640 "root:$SERVICE_USER" <<EOF
# Flexscore configuration (written by install-pi.sh; check with: flexscore check-config $CONFIG)

[camera]
backend = "picamera2"
width = 640
height = 480
fps = 30.0

[panel]
button_pin = 17
led_pin = 27

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
    write_file "$PASSWORD_FILE" 0600 root:root <<<"$password"
    [ "$DRY_RUN" -eq 1 ] || say "clinician password written to $PASSWORD_FILE (root only)"
fi
if [ "$DRY_RUN" -eq 0 ] && "$VENV/bin/flexscore" check-config --help >/dev/null 2>&1; then
    run "$VENV/bin/flexscore" check-config "$CONFIG"
fi

# --------------------------------------------------------------------------- 7. certificate
say "HTTPS certificate"
run install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR"
run runuser -u "$SERVICE_USER" -- "$VENV/bin/flexscore" certificate --config "$CONFIG" --state-dir "$STATE_DIR"

# --------------------------------------------------------------------------- 8. unit
say "systemd unit $UNIT_DEST"
run install -m 0644 "$REPO_DIR/systemd/$UNIT_NAME" "$UNIT_DEST"
run systemctl daemon-reload
run systemctl enable "$UNIT_NAME"
if [ "$START" -eq 1 ]; then
    run systemctl restart "$UNIT_NAME"
fi
say "done: open https://$(hostname).local:8443/ and check that the certificate's SHA-256" \
    "fingerprint matches the one printed above; systemctl status $UNIT_NAME; journalctl -u $UNIT_NAME -f"
