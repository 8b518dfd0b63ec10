#!/bin/sh
# Installs the Debian packages sigfoxd needs to build, test and benchmark.
# Idempotent: when every package is already present it only checks and exits.
# Usage: scripts/install-deps.sh [--check]   (--check: report missing, install nothing)
set -eu

PACKAGES="build-essential g++ pkg-config make \
libliquid-dev libfftw3-dev libsoapysdr-dev soapysdr-tools libconfig-dev \
libzmq3-dev libcmocka-dev libssl-dev libjson-c-dev \
gnuplot-nox valgrind jq"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    exit 0
fi

if [ "${1:-}" = "--check" ]; then
    echo "install-deps: missing packages:$missing" >&2
    exit 1
fi

echo "install-deps: installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-deps: need root to install$missing; run as root or install sudo" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# An old or missing package list makes apt-get install fail to find packages.
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done" >&2
