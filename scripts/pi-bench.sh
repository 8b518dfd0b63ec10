#!/bin/bash
# pi-bench.sh: instructions per second of signal of `sigfoxd --replay` on x86-64
# (callgrind) and on aarch64 (qemu-user with scripts/qemu-insn-count.c), for the Pi
# figures of docs/benchmarks.md ("Front end on the Pi").
#
# Usage: scripts/pi-bench.sh [RATE ...]        (default: 1024k 2.4M)
#   SYSROOT=...   arm64 sysroot (default /var/tmp/sigfoxd-sysroot-arm64, scripts/make-sysroot.sh)
#   NATIVE=DIR    native programs (default build/bin)
#   CROSSBIN=DIR  aarch64 programs (default build-aarch64-linux-gnu/bin)
#   SECONDS_LONG=S  signal of the long run (default 10)
#   DEVICES=N     devices in the scene (default 20, each sending every ~5 s on average)
#
# The scene: sigfox-synth, RC1, cu8 (what an RTL-SDR gives), both baud rates, seed 3.
# Each program decodes the first 0.5 s and the first 0.5 + SECONDS_LONG s of the same
# capture, fed through a pipe (`--replay - --format cu8`); the difference of the two
# counts divided by SECONDS_LONG is the cost of one second of signal, start-up (FFTW
# planning, configuration) left out. Counts cover every thread of the process (capture,
# DSP, output). Needs valgrind, qemu-user (install-deps.sh --cross) and both builds:
#   make -j2 && make CROSS=aarch64-linux-gnu- SYSROOT=$SYSROOT -j2
set -euo pipefail
cd "$(dirname "$0")/.."

SYSROOT=${SYSROOT:-/var/tmp/sigfoxd-sysroot-arm64}
NATIVE=${NATIVE:-build/bin}
CROSSBIN=${CROSSBIN:-build-aarch64-linux-gnu/bin}
SECONDS_LONG=${SECONDS_LONG:-10}
DEVICES=${DEVICES:-20}
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(1024k 2.4M)

for tool in valgrind qemu-aarch64 cc; do
    command -v "$tool" >/dev/null || { echo "pi-bench: $tool not found (scripts/install-deps.sh --cross)" >&2; exit 2; }
done
[ -x "$NATIVE/sigfoxd" ] || { echo "pi-bench: no $NATIVE/sigfoxd (make)" >&2; exit 2; }
[ -x "$CROSSBIN/sigfoxd" ] || { echo "pi-bench: no $CROSSBIN/sigfoxd (make CROSS=aarch64-linux-gnu- SYSROOT=$SYSROOT)" >&2; exit 2; }
[ -d "$SYSROOT/usr/lib/aarch64-linux-gnu" ] || { echo "pi-bench: no sysroot at $SYSROOT (scripts/make-sysroot.sh)" >&2; exit 2; }

work=$(mktemp -d /tmp/pi-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -shared -fPIC -O2 -Wall -Wextra -o "$work/insn.so" scripts/qemu-insn-count.c

# bytes of cu8 for S seconds at R S/s (2 bytes a sample)
bytes_for() { python3 -c "import sys; print(int(round(float(sys.argv[1]) * float(sys.argv[2]))) * 2)" "$1" "$2"; }
to_sps() { python3 -c "
import sys; s=sys.argv[1]; m={'k':1e3,'K':1e3,'M':1e6}
print(int(float(s[:-1])*m[s[-1]]) if s[-1] in m else int(float(s)))" "$1"; }

native_count() { # FILE BYTES SPS JSONL -> instructions
    local out="$work/cg.$RANDOM"
    head -c "$2" "$1" | valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$NATIVE/sigfoxd" --replay - --format cu8 --rate "$3" --center-freq 868.13M \
        --state-dir "" --stats-interval 0 >"$4" 2>/dev/null
    callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n {gsub(",", "", $1); print $1; n = 1}'
}

cross_count() { # FILE BYTES SPS JSONL -> instructions
    local out="$work/qc.$RANDOM"
    head -c "$2" "$1" | qemu-aarch64 -L "$SYSROOT" -plugin "$work/insn.so,out=$out" \
        "$CROSSBIN/sigfoxd" --replay - --format cu8 --rate "$3" --center-freq 868.13M \
        --state-dir "" --stats-interval 0 >"$4" 2>/dev/null
    awk '/guest_insns/ {print $2; exit}' "$out"
}

printf '# pi-bench: sigfoxd --replay, %s devices, cu8; instructions per second of signal\n' "$DEVICES"
printf '# native: %s (callgrind)   aarch64: %s (qemu-aarch64 + insn plugin)\n' "$NATIVE" "$CROSSBIN"
printf '%10s %14s %14s %14s %14s\n' rate x86-64_M/s aarch64_M/s frames_x86 frames_arm
for r in "${rates[@]}"; do
    sps=$(to_sps "$r")
    cap="$work/scene_$r.cu8"
    "$NATIVE/sigfox-synth" -o "$cap" --rate "$sps" --duration "$(python3 -c "print(0.5 + $SECONDS_LONG + 1)")" \
        --devices "$DEVICES" --interval 5 --seed 3 >/dev/null 2>&1
    short=$(bytes_for 0.5 "$sps")
    long=$(bytes_for "$(python3 -c "print(0.5 + $SECONDS_LONG)")" "$sps")
    n_s=$(native_count "$cap" "$short" "$sps" /dev/null)
    n_l=$(native_count "$cap" "$long" "$sps" "$work/x86.jsonl")
    a_s=$(cross_count "$cap" "$short" "$sps" /dev/null)
    a_l=$(cross_count "$cap" "$long" "$sps" "$work/arm.jsonl")
    # frames decoded by the long runs themselves
    fx=$(grep -c '"type":"frame"' "$work/x86.jsonl" || true)
    fa=$(grep -c '"type":"frame"' "$work/arm.jsonl" || true)
    printf '%10s %14.1f %14.1f %14s %14s\n' "$r" \
        "$(python3 -c "print(($n_l - $n_s) / $SECONDS_LONG / 1e6)")" \
        "$(python3 -c "print(($a_l - $a_s) / $SECONDS_LONG / 1e6)")" "$fx" "$fa"
done
