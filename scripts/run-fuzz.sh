#!/bin/bash
# Runs every libFuzzer harness in BUILD/fuzz for SECONDS each, starting from the seed
# corpus test/fuzz/corpus/NAME/ (new inputs go to BUILD/fuzz-corpus/NAME/, not into the
# repository). A crash, a sanitizer report, a leak or a timeout fails the run; the input
# is saved as BUILD/fuzz-crashes/NAME-... : once the bug is fixed, copy it into
# test/fuzz/corpus/NAME/ so that every later run replays it as a regression case.
# Usage: scripts/run-fuzz.sh BUILD_DIR SECONDS      env: ONLY=regex (harness names)
set -u
build=$(cd "${1:?usage: run-fuzz.sh BUILD_DIR SECONDS}" && pwd) || exit 2
secs=${2:?usage: run-fuzz.sh BUILD_DIR SECONDS}
top=$(cd "$(dirname "$0")/.." && pwd)
export LSAN_OPTIONS="suppressions=$top/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
mkdir -p "$build/fuzz-crashes"
failed=0 ran=0
for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    name=${name#fuzz_}
    if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then continue; fi
    seeds="$top/test/fuzz/corpus/$name"
    work="$build/fuzz-corpus/$name"
    mkdir -p "$work" "$seeds"
    log="$build/fuzz-crashes/$name.log"
    start=$EPOCHREALTIME
    # -timeout: one input may take 10 s; the outer timeout catches a wedged process.
    timeout $((secs + 120)) "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/fuzz-crashes/$name-" \
        "$work" "$seeds" >"$log" 2>&1
    rc=$?
    ran=$((ran + 1))
    took=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        printf 'PASS fuzz_%-12s %4ss %10s inputs, %s\n' "$name" "$took" "${runs:-?}" "${cov:-cov: ?}"
    else
        failed=$((failed + 1))
        printf 'FAIL fuzz_%-12s (exit %d) after %ss; input saved as:\n' "$name" "$rc" "$took"
        ls "$build/fuzz-crashes/$name-"* 2>/dev/null | sed 's/^/    /'
        grep -E 'ERROR|FUZZ_CHECK|runtime error|SUMMARY' "$log" | head -8 | sed 's/^/    /'
        echo "    log: $log"
    fi
done
echo "fuzz: $ran harnesses, $failed failed, $secs s each"
[ $failed -eq 0 ] && [ $ran -gt 0 ]
