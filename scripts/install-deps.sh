#!/bin/sh
# Installs the Debian packages sigfoxd needs to build, test and benchmark, and the
# SoapySDR modules of the radios it supports (RTL-SDR, HackRF, Airspy).
# Idempotent: when every package is already present it only checks and exits.
# Usage: scripts/install-deps.sh [--check] [--cross] [--package] [--libs]
#   --check    report missing packages and which radios are usable, install nothing
#   --cross    also the aarch64 cross compiler, qemu-user and mmdebstrap (make cross-test)
#   --package  also what building the Debian package needs (dpkg-buildpackage, debhelper)
#   --libs     print the library (-dev) packages the build links against and exit
#              (scripts/make-sysroot.sh unpacks their arm64 versions)
set -eu

PACKAGES="build-essential g++ pkg-config make \
libliquid-dev libfftw3-dev libsoapysdr-dev soapysdr-tools libconfig-dev \
libzmq3-dev libcmocka-dev libssl-dev libjson-c-dev \
libsqlite3-dev sqlite3 libpq-dev postgresql libcurl4-openssl-dev \
libmosquitto-dev mosquitto mosquitto-clients libmicrohttpd-dev libsystemd-dev \
gnuplot-nox valgrind jq python3 python3-zmq openssl \
clang libclang-rt-14-dev chromium"

# SoapySDR hardware modules: driver=rtlsdr, driver=hackrf, driver=airspy. They bring the
# radios' udev rules, which give the USB devices to group plugdev.
RADIOS="soapysdr0.8-module-rtlsdr soapysdr0.8-module-hackrf soapysdr0.8-module-airspy"
# systemd-analyze checks the installed units (test/install_e2e.sh); help2man makes the
# man pages from each program's --help; bash-completion runs test/bash_completion.sh.
INSTALL_TOOLS="systemd help2man bash-completion"
# qemu-user (dynamic) loads TCG plugins: scripts/pi-bench.sh counts aarch64 instructions
CROSS_TOOLS="gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user-static qemu-user mmdebstrap"
PACKAGE_TOOLS="dpkg-dev debhelper fakeroot"

check=0 want="$PACKAGES $RADIOS $INSTALL_TOOLS"
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        --cross) want="$want $CROSS_TOOLS" ;;
        --package) want="$want $PACKAGE_TOOLS" ;;
        --libs)
            for p in $want; do
                case "$p" in lib*-dev) echo "$p" ;; esac
            done
            exit 0
            ;;
        *)
            echo "install-deps: unknown option '$arg' (--check, --cross, --package, --libs)" >&2
            exit 64
            ;;
    esac
done

# --check: which radio modules SoapySDR loads and which radios are plugged in.
radio_report() {
    if ! command -v SoapySDRUtil >/dev/null 2>&1; then
        echo "install-deps: radios: SoapySDRUtil is missing (package soapysdr-tools)" >&2
        return
    fi
    factories=$(SoapySDRUtil --info 2>/dev/null | sed -n 's/^Available factories\.\.\. *//p' | tr -d ',')
    for m in rtlsdr hackrf airspy; do
        if printf ' %s ' "$factories" | grep -q " $m "; then
            echo "install-deps: radio module $m: usable (--device driver=$m)" >&2
        else
            echo "install-deps: radio module $m: missing (package soapysdr0.8-module-$m)" >&2
        fi
    done
    found=$(timeout 20 SoapySDRUtil --find 2>/dev/null | grep -c '^Found device' || true)
    echo "install-deps: radios attached now: ${found:-0} (SoapySDRUtil --find lists them)" >&2
    if [ "$(id -u)" -ne 0 ] && ! id -nG | tr ' ' '\n' | grep -qx plugdev; then
        echo "install-deps: you are not in group plugdev: USB radios need" \
            "'sudo usermod -a -G plugdev $(id -un)' and a new login" >&2
    fi
}

missing=""
for p in $want; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

if [ $check = 1 ]; then
    radio_report
    if [ -n "$missing" ]; then
        echo "install-deps: missing packages:$missing" >&2
        exit 1
    fi
    exit 0
fi
if [ -z "$missing" ]; then
    exit 0
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
