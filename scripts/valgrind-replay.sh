#!/bin/bash
# valgrind-replay: one short `sigfoxd --replay` under valgrind memcheck (the daemon's
# code paths the cmocka tests do not run: options, config, replay loop, receiver
# threads, JSON events, state, shutdown). Memcheck errors or definite/indirect leaks
# fail it, and so does a replay that decodes nothing. Part of `make valgrind`.
# Usage: scripts/valgrind-replay.sh BUILD_DIR    Licence: MIT.
set -u
build=$(cd "${1:-build}" && pwd) || exit 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cap="$tmp/vg_868.13M_250k.cs16"
# 5 s at 250 kS/s, 4 devices of both rates, a CW tone: 10 frames, 4 messages.
"$build/bin/sigfox-synth" -o "$cap" --rate 250k --duration 5 --devices 4 --interval 1 \
    --ebn0 20:25 --cw 1 --seed 5 2>"$tmp/synth.err" ||
    { echo "FAIL: synth: $(cat "$tmp/synth.err")"; exit 1; }
chmod 600 "$cap.keys"
start=$EPOCHREALTIME
timeout 900 valgrind -q --error-exitcode=99 --leak-check=full \
    --suppressions="$(dirname "$0")/valgrind.supp" \
    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
    "$build/bin/sigfoxd" --no-config --replay "$cap" --keys "$cap.keys" \
    --state-dir "$tmp/state" >"$tmp/events.jsonl" 2>"$tmp/vg.log"
rc=$?
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
msgs=$(grep -c '"type":"message"' "$tmp/events.jsonl")
want=$(jq -s 'map(select(.type == "burst")) | map(.message) | unique | length' "$cap.truth.jsonl")
if [ $rc -ne 0 ]; then
    echo "FAIL: sigfoxd --replay under valgrind: exit $rc ($secs s); log:"
    tail -n 40 "$tmp/vg.log"
    exit 1
fi
if [ "$msgs" -lt 1 ]; then
    echo "FAIL: sigfoxd --replay under valgrind decoded no message (truth: $want)"
    exit 1
fi
echo "PASS sigfoxd --replay under valgrind: $msgs of $want messages, $secs s"
