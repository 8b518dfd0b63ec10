#!/bin/bash
# cross-test: sigfoxd on aarch64 (the Raspberry Pi's 64-bit OS), tested on this machine
# (docs/cross.md): builds the arm64 sysroot from Debian's arm64 packages
# (scripts/make-sysroot.sh, kept between runs), cross-compiles the daemon, the tools and
# every cmocka test with gcc 12 for aarch64 (the compiler of a Pi running bookworm), runs a
# set of the cmocka tests under qemu-aarch64, and replays one synthesized capture with the
# aarch64 sigfoxd under qemu and with the native one: the decoded frames and messages must
# be the same, and the aarch64 ones are scored against the synthesizer's truth.
# Every test is built whatever the set, so a compiler failure on any of them (gcc 12's
# vectorizer ICE, issue 14) fails the run.
# Test sets (CROSS_TESTS):
#   ci   (default) the codec tests, the front end, monarch and extractor DSP tests and
#        the core link (threads, ZeroMQ); the replay below runs the channelizer, burst
#        detector and demodulators on a whole capture
#   dsp  ci plus the channelizer, demodulator and modulator tests (+3-5 min under qemu)
#   all  every cmocka test; test_rx, test_dldemod, test_rxpayload, test_refmod,
#        test_burstdet and test_txsink take 2-10 min each under qemu (about 30 min in all)
#   "test_a test_b ..."  those tests
# Usage: scripts/cross-test.sh [NATIVE_BUILD]   (default build; needs bin/sigfoxd,
#        bin/sigfox-synth and bin/sigfox-score there)  env: CROSS_TESTS, SYSROOT (default
#        /var/tmp/sigfoxd-sysroot-arm64), CROSS (default aarch64-linux-gnu-), JOBS
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
native=$(cd "${1:-$top/build}" && pwd) || exit 2
cross=${CROSS:-aarch64-linux-gnu-}
arch=arm64
qemu="qemu-aarch64-static"
sysroot=${SYSROOT:-/var/tmp/sigfoxd-sysroot-$arch}
cbuild=$top/build-${cross%-}
cd "$top" || exit 2
t0=$EPOCHREALTIME
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }'; }

step=$EPOCHREALTIME
scripts/install-deps.sh --cross || exit 1
scripts/make-sysroot.sh "$sysroot" "$arch" || { echo "FAIL: sysroot"; exit 1; }
echo "cross-test: sysroot $sysroot ready in $(since "$step") s"

step=$EPOCHREALTIME
tests=$(for f in test/test_*.c; do echo "$cbuild/test/$(basename "$f" .c)"; done)
mkdir -p "$cbuild"
# shellcheck disable=SC2086
make --no-print-directory -j"${JOBS:-2}" CROSS="$cross" SYSROOT="$sysroot" BUILD="$cbuild" all $tests \
    >"$cbuild/cross-build.log" 2>&1 ||
    { tail -30 "$cbuild/cross-build.log"; echo "FAIL: cross build (log: $cbuild/cross-build.log)"; exit 1; }
file "$cbuild/bin/sigfoxd" | grep -q 'ARM aarch64' || { echo "FAIL: $cbuild/bin/sigfoxd is not aarch64"; exit 1; }
echo "cross-test: cross build in $(since "$step") s"

CI_SET="test_ulcode test_uldecode test_ulframe test_dlframe test_rc test_antireplay
test_assembler test_framejson test_evjson test_payloadfmt test_keys test_monarch
test_extractor test_frontend test_corelink"
DSP_SET="test_channelizer test_demod test_gfskmod test_dbpskmod"
case "${CROSS_TESTS:-ci}" in
    ci) set_names=$CI_SET ;;
    dsp) set_names="$CI_SET $DSP_SET" ;;
    all) set_names=$(for t in $tests; do basename "$t"; done) ;;
    *) set_names=$CROSS_TESTS ;;
esac
step=$EPOCHREALTIME
run=""
for n in $set_names; do
    [ -x "$cbuild/test/$n" ] || { echo "FAIL: no test $n in $cbuild/test"; exit 1; }
    run="$run|$n"
done
echo "cross-test: $(echo "$set_names" | wc -w) of $(echo "$tests" | wc -w) tests under qemu" \
    "(CROSS_TESTS=${CROSS_TESTS:-ci}; CROSS_TESTS=all runs every one)"
EMULATOR="$qemu -L $sysroot" SIGFOX_SOAPY_PLUGIN_PATH="$cbuild/soapy" ONLY="^(${run#|})\$" \
    scripts/run-tests.sh "$cbuild"
unit_rc=$?
echo "cross-test: unit tests under $qemu in $(since "$step") s"

# One replay, both builds: same frames and messages (floating-point fields may differ in
# the last digits: aarch64 fuses multiply-adds, x86-64 does not).
step=$EPOCHREALTIME
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rec=$tmp/rc1_868.13M_1024k.cu8
"$native/bin/sigfox-synth" -o "$rec" --rc 1 --rate 1024k --duration 20 --devices 10 --seed 14 \
    >/dev/null 2>&1 || { echo "FAIL: sigfox-synth"; exit 1; }
decoded() { # out.jsonl
    jq -r 'select(.type == "frame" or .type == "message")
        | [.type, .ep_id, .mc, .rank, .kind, .payload, .crc_ok, .auth, .baud] | @tsv' "$1" | sort
}
"$native/bin/sigfoxd" --no-config --replay "$rec" --keys "$rec.keys" >"$tmp/native.jsonl" 2>"$tmp/native.err" ||
    { cat "$tmp/native.err"; echo "FAIL: native replay"; exit 1; }
$qemu -L "$sysroot" "$cbuild/bin/sigfoxd" --no-config --replay "$rec" --keys "$rec.keys" \
    >"$tmp/aarch64.jsonl" 2>"$tmp/aarch64.err" || { tail "$tmp/aarch64.err"; echo "FAIL: aarch64 replay"; exit 1; }
decoded "$tmp/native.jsonl" >"$tmp/native.tsv"
decoded "$tmp/aarch64.jsonl" >"$tmp/aarch64.tsv"
frames=$(grep -c '^frame' "$tmp/native.tsv")
messages=$(grep -c '^message' "$tmp/native.tsv")
replay_rc=0
if [ "$frames" -eq 0 ]; then
    echo "FAIL: the native replay decoded no frame"
    replay_rc=1
elif ! diff "$tmp/native.tsv" "$tmp/aarch64.tsv" >"$tmp/diff"; then
    echo "FAIL: aarch64 replay differs from the native one (< native, > aarch64):"
    head -20 "$tmp/diff"
    replay_rc=1
else
    echo "PASS replay: aarch64 decodes the same $frames frames and $messages messages as x86-64"
fi
# Scored too: equal and wrong on both would otherwise pass.
if ! "$native/bin/sigfox-score" --truth "$rec.truth.jsonl" --min-ebn0 10 --expect-all --frames \
    --max-false 0 --max-wrong 0 --expect-auth -q "$tmp/aarch64.jsonl" >"$tmp/score" 2>&1; then
    cat "$tmp/score"
    echo "FAIL: the aarch64 replay's score against the truth"
    replay_rc=1
else
    echo "PASS score: every frame and message of the truth at >= 10 dB decoded exactly by aarch64, none false"
fi
echo "cross-test: replay in $(since "$step") s; total $(since "$t0") s"
[ $unit_rc -eq 0 ] && [ $replay_rc -eq 0 ]
