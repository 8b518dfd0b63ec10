#!/bin/sh
# build-deb: builds the Debian package sigfoxd_<version>_<arch>.deb into OUTDIR (default
# the current directory) with `dpkg-buildpackage -us -uc -b`, from a copy of the tracked
# files (so that neither the work tree nor its parent directory gets build products).
# Usage: scripts/build-deb.sh [OUTDIR]
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir "$work/sigfoxd"
(cd "$top" && git ls-files -z | tar --null -T - -cf -) | tar -C "$work/sigfoxd" -xf -
# The copy has no .git: the Makefile takes the version from this file.
(cd "$top" && git describe --always --dirty) >"$work/sigfoxd/VERSION"
(cd "$work/sigfoxd" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || {
    tail -40 "$work/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed" >&2
    exit 1
}
for f in "$work"/*.deb; do
    cp "$f" "$out/"
    echo "$out/$(basename "$f")"
done
