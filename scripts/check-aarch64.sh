#!/usr/bin/env bash
# Install Flexscore in an emulated arm64 Debian root and check that it tracks as on x86.
#
#   sudo scripts/check-aarch64.sh [--release bookworm|trixie] [--cpu a72|a76] [--fresh]
#
# Opt-in (root, ~10 min the first time, a few minutes cached); not part of scripts/test.sh.
#   1. builds (or reuses) .cache/aarch64/RELEASE/root: debootstrap --arch=arm64 of Debian
#      Bookworm (Python 3.11, as Raspberry Pi OS Bookworm) or Trixie (Python 3.13), run
#      through qemu-user-static and binfmt_misc. --fresh builds it again.
#   2. copies this checkout into the root and runs the real scripts/install-pi.sh there, as
#      root: apt (Debian's packages), service user, venv, the locked dependencies with
#      --require-hashes, the package, config, check-config as the service user, unit file.
#      Skipped, as off a Pi: picamera2 and lgpio (the Raspberry Pi repository) and systemctl
#      (FLEXSCORE_SKIP="pi-apt systemctl").
#   3. `flexscore track` of the bundled clip with the installed command, as the service user,
#      and the same with this checkout's x86 venv (.venv, or FLEXSCORE_VENV); then
#      scripts/compare_tracks.py: the same frames with a hand, landmark error median < 1 %
#      and p95 < 2.5 % of hand size.
# Prints one summary line; exit 0 on a pass, 1 on a mismatch or a failed step, 2 when
# something it needs is missing (it says what).
#
# What makes the emulated run faithful: the TFLite CPU backend (XNNPACK) reads the CPU
# description, so the root gets only /proc and /dev from the host (never the host's /sys),
# /sys/devices/system/cpu/{possible,present} = 0-3, a Cortex-A72 (Pi 4; --cpu a76: Pi 5)
# /proc/cpuinfo bound over the emulated one, and QEMU_CPU naming the same core; without
# them XNNPACK switches itself off or the process crashes. pip inside the root uses the
# host's certificate bundle (PIP_CERT) and PIP_* settings; pip's downloads are cached in
# .cache/aarch64/pip. Mounts are undone on any exit.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RELEASE=bookworm
CPU=a72
FRESH=0
MIRROR=${FLEXSCORE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
VENV=${FLEXSCORE_VENV:-$REPO_DIR/.venv}
VENV=$(cd "$REPO_DIR" && realpath -m "$VENV")

die() {
    printf 'check-aarch64: error: %s\n' "$*" >&2
    exit 1
}
need() {
    printf 'check-aarch64: needs %s\n' "$*" >&2
    exit 2
}
say() {
    printf '== %s\n' "$*" >&2
}

while [ $# -gt 0 ]; do
    case $1 in
        --release)
            [ $# -ge 2 ] || die "--release needs bookworm or trixie"
            RELEASE=$2
            shift
            ;;
        --cpu)
            [ $# -ge 2 ] || die "--cpu needs a72 or a76"
            CPU=$2
            shift
            ;;
        --fresh) FRESH=1 ;;
        -h | --help)
            sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done
case $RELEASE in bookworm | trixie) ;; *) die "--release must be bookworm or trixie, not '$RELEASE'" ;; esac
case $CPU in
    a72)
        QEMU_CPU_NAME=cortex-a72 CPU_PART=0xd08 CPU_MODEL="Raspberry Pi 4 Model B Rev 1.5"
        CPU_FEATURES="fp asimd evtstrm crc32 cpuid"
        ;;
    a76)
        QEMU_CPU_NAME=cortex-a76 CPU_PART=0xd0b CPU_MODEL="Raspberry Pi 5 Model B Rev 1.0"
        CPU_FEATURES="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
        ;;
    *) die "--cpu must be a72 (Pi 4) or a76 (Pi 5), not '$CPU'" ;;
esac

# ------------------------------------------------------------------ what it needs
[ "$(id -u)" -eq 0 ] || need "root (debootstrap, chroot and mounts): sudo $0"
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
command -v update-binfmts >/dev/null || missing+=(binfmt-support)
[ ${#missing[@]} -eq 0 ] ||
    need "the Debian packages ${missing[*]}: apt-get install --no-install-recommends ${missing[*]}"
[ -x "$VENV/bin/python" ] || need "the x86 venv $VENV for the reference run: scripts/setup-venv.sh device"
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
        need "binfmt_misc (mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)"
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
fi
grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null ||
    need "an enabled binfmt_misc entry for qemu-aarch64 (update-binfmts --enable qemu-aarch64)"

CACHE="$REPO_DIR/.cache/aarch64"
ROOT="$CACHE/$RELEASE/root"
WORK=$(mktemp -d)
MOUNTS=()

cleanup() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bind() { # bind SOURCE TARGET
    mount --bind "$1" "$2"
    MOUNTS+=("$2")
}

# ------------------------------------------------------------------ 1. the root
if grep -q " $ROOT/" /proc/self/mounts; then
    die "something is still mounted under $ROOT (an interrupted check?): umount it first" \
        "($(grep " $ROOT/" /proc/self/mounts | cut -d' ' -f2 | tr '\n' ' '))"
fi
if [ "$FRESH" -eq 1 ]; then
    rm -rf "${CACHE:?}/$RELEASE"
fi
if [ ! -x "$ROOT/usr/bin/python3" ]; then
    say "building the arm64 $RELEASE root in $ROOT (debootstrap through qemu; ~10 min)"
    mkdir -p "$CACHE/$RELEASE"
    rm -rf "$ROOT.tmp"
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        "$RELEASE" "$ROOT.tmp" "$MIRROR" >"$CACHE/$RELEASE/debootstrap.log" 2>&1 ||
        die "debootstrap failed; see $CACHE/$RELEASE/debootstrap.log"
    mv "$ROOT.tmp" "$ROOT"
else
    say "reusing the arm64 $RELEASE root $ROOT (--fresh builds it again)"
fi

# ------------------------------------------------------------------ 2. mounts and settings
for dir in "$ROOT/proc" "$ROOT/dev" "$ROOT/root/.cache/pip"; do
    if mountpoint -q "$dir"; then die "$dir is mounted already (another check running?)"; fi
done
mkdir -p "$ROOT/sys/devices/system/cpu" "$ROOT/root/.cache/pip" "$CACHE/pip"
echo 0-3 >"$ROOT/sys/devices/system/cpu/possible"
echo 0-3 >"$ROOT/sys/devices/system/cpu/present"
for n in 0 1 2 3; do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: %s\n' "$n" "$CPU_FEATURES"
    printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n'
    printf 'CPU part\t: %s\nCPU revision\t: 3\n\n' "$CPU_PART"
done >"$WORK/cpuinfo"
printf 'Revision\t: c03111\nModel\t\t: %s\n' "$CPU_MODEL" >>"$WORK/cpuinfo"
mount -t proc proc "$ROOT/proc"
MOUNTS+=("$ROOT/proc")
bind "$WORK/cpuinfo" "$ROOT/proc/cpuinfo"
bind /dev "$ROOT/dev"
bind "$CACHE/pip" "$ROOT/root/.cache/pip"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
host_ca=${PIP_CERT:-${REQUESTS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}}
[ -r "$host_ca" ] || need "the host's certificate bundle ($host_ca) for HTTPS from inside the root"
install -D -m 0644 "$host_ca" "$ROOT/etc/flexscore-check/host-ca.crt"

# The host's pip settings (index, timeouts) except paths that only exist on the host.
env_args=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
    QEMU_CPU="$QEMU_CPU_NAME" PIP_CERT=/etc/flexscore-check/host-ca.crt
    FLEXSCORE_SKIP="pi-apt systemctl" DEBIAN_FRONTEND=noninteractive)
while IFS='=' read -r name value; do
    case $name in PIP_CERT | PIP_FIND_LINKS | PIP_CONSTRAINT | PIP_CONFIG_FILE) continue ;; esac
    [[ $value == /* || $value == file:* ]] && continue
    env_args+=("$name=$value")
done < <(env | grep -E '^(PIP_[A-Z_]+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)=' || true)
in_root() {
    chroot "$ROOT" /usr/bin/env -i "${env_args[@]}" "$@"
}

# ------------------------------------------------------------------ 3. the installer
say "copying the checkout into the root"
rm -rf "$ROOT/root/flexscore-src"
mkdir -p "$ROOT/root/flexscore-src"
tar -C "$REPO_DIR" --exclude=.git --exclude='.venv*' --exclude=.cache --exclude=build --exclude=dist \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=.mypy_cache --exclude=.ruff_cache \
    --exclude=.pytest_cache --exclude=.hypothesis -cf - . | tar -C "$ROOT/root/flexscore-src" -xf -
# The root is reused, the config is not: each run checks this version's config template.
rm -f "$ROOT/etc/flexscore/config.toml" "$ROOT/etc/flexscore/config.toml.old" \
    "$ROOT/etc/flexscore/initial-clinician-password"
say "scripts/install-pi.sh in the arm64 root (FLEXSCORE_SKIP=\"pi-apt systemctl\"); log: $CACHE/$RELEASE/install.log"
install_ok=1
in_root bash /root/flexscore-src/scripts/install-pi.sh --source /root/flexscore-src \
    >"$CACHE/$RELEASE/install.log" 2>&1 || install_ok=0
grep -E '^(==|= skipped)' "$CACHE/$RELEASE/install.log" >&2 || true
if [ "$install_ok" -eq 0 ]; then
    tail -n 20 "$CACHE/$RELEASE/install.log" >&2
    echo "aarch64 check ($RELEASE, $QEMU_CPU_NAME): FAIL — scripts/install-pi.sh failed (log: $CACHE/$RELEASE/install.log)"
    exit 1
fi
check_line=$(grep -E ': OK \(camera ' "$CACHE/$RELEASE/install.log" | tail -n 1)
py_version=$(in_root /opt/flexscore/venv/bin/python -c 'import platform; print(platform.python_version(), platform.machine())')

# ------------------------------------------------------------------ 4. track, compare
say "flexscore track on the bundled clip in the root (emulated: ~1 min)"
mkdir -p "$ROOT/var/tmp/flexscore-check"
chmod 0777 "$ROOT/var/tmp/flexscore-check"
rm -f "$ROOT/var/tmp/flexscore-check/aarch64.json"
track_ok=1
in_root setpriv --reuid=flexscore --regid=flexscore --clear-groups -- env HOME=/var/tmp/flexscore-check \
    /opt/flexscore/venv/bin/flexscore track --json /var/tmp/flexscore-check/aarch64.json --no-progress \
    >"$CACHE/$RELEASE/track.log" 2>&1 || track_ok=0
cat "$CACHE/$RELEASE/track.log" >&2
if [ "$track_ok" -eq 0 ]; then
    echo "aarch64 check ($RELEASE, $QEMU_CPU_NAME): FAIL — flexscore track failed in the root (log: $CACHE/$RELEASE/track.log)"
    exit 1
fi
xnnpack=off
grep -q 'XNNPACK delegate for CPU' "$CACHE/$RELEASE/track.log" && xnnpack=on
say "flexscore track on the bundled clip on this x86 machine ($VENV)"
(cd "$WORK" && "$VENV/bin/python" -m device.cli track --json "$WORK/x86.json" --no-progress) >&2
cmp_line=$("$VENV/bin/python" "$REPO_DIR/scripts/compare_tracks.py" "$WORK/x86.json" \
    "$ROOT/var/tmp/flexscore-check/aarch64.json") && cmp_ok=1 || cmp_ok=0
xnn_note=""
[ "$xnnpack" = on ] || xnn_note="; XNNPACK did not start in the root (see its header): FAIL"
echo "aarch64 check ($RELEASE, Python ${py_version%% *} ${py_version##* }, $QEMU_CPU_NAME, XNNPACK $xnnpack):" \
    "install OK, check-config ${check_line#*: }; flexscore track vs x86: $cmp_line$xnn_note"
[ "$cmp_ok" -eq 1 ] && [ "$xnnpack" = on ]
