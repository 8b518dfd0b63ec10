#!/bin/sh
# make-sysroot: builds a Debian sysroot for cross-compiling sigfoxd (default arm64, the
# Raspberry Pi's 64-bit OS) from Debian's own packages of that architecture: mmdebstrap
# --variant=extract only unpacks the .debs into DIR, nothing is installed on this machine
# and no maintainer script runs. The package list is install-deps.sh's libraries (-dev
# packages), so the sysroot has exactly what the native build links against.
# Usage: scripts/make-sysroot.sh DIR [ARCH]      (ARCH: arm64 (default), armhf, ...)
# Re-running with the same list is a no-op (DIR/.sysroot-packages records it).
set -eu

dir=${1:?usage: scripts/make-sysroot.sh DIR [ARCH]}
arch=${2:-arm64}
here=$(cd "$(dirname "$0")" && pwd)
suite=${SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}

# libc and libstdc++ headers come from the target's own packages too (the cross compiler
# is pointed at the sysroot with --sysroot).
pkgs="libc6-dev libstdc++-12-dev $("$here/install-deps.sh" --libs)"
pkgs=$(printf '%s\n' $pkgs | sort -u | tr '\n' ' ')
stamp="$suite $arch $pkgs"

if [ -f "$dir/.sysroot-packages" ] && [ "$(cat "$dir/.sysroot-packages")" = "$stamp" ]; then
    echo "make-sysroot: $dir is up to date ($arch, $suite)" >&2
    exit 0
fi
command -v mmdebstrap >/dev/null || {
    echo "make-sysroot: mmdebstrap is missing (scripts/install-deps.sh --cross installs it)" >&2
    exit 1
}

rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
echo "make-sysroot: unpacking $arch packages of $suite into $dir:" $pkgs >&2
include=$(echo $pkgs | tr ' ' ',')
# Mode root as root (CI), unshare otherwise; the host's apt sources name the mirror.
mode=unshare
[ "$(id -u)" -eq 0 ] && mode=root
mmdebstrap --quiet --mode="$mode" --variant=extract --arch="$arch" --include="$include" \
    "$suite" "$dir" >&2

# Absolute symbolic links (libfoo.so -> /lib/...) would point into the host when the
# linker follows them; make every one relative to the sysroot.
find "$dir" -type l | while read -r link; do
    target=$(readlink "$link")
    case "$target" in
        /*) ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$dir$target")" "$link" ;;
    esac
done
echo "$stamp" >"$dir/.sysroot-packages"
echo "make-sysroot: done: $(du -sh "$dir" | cut -f1) in $dir" >&2
