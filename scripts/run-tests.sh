#!/bin/bash
# Runs every cmocka binary in BUILD/test and every end-to-end script test/*.sh,
# two at a time, and closes with one "N passed, N failed" line.
# Usage: scripts/run-tests.sh BUILD_DIR      env: ONLY=regex  SKIP=regex  VALGRIND=1  JOBS=n
#   EMULATOR="qemu-aarch64-static -L SYSROOT": run the cmocka binaries of a cross build
#   through it (scripts/cross-test.sh); the end-to-end scripts are left out then.
set -u
build=$(cd "${1:-build}" && pwd) || exit 2
top=$(cd "$(dirname "$0")/.." && pwd)
logs="$build/test-logs"
mkdir -p "$logs"
rm -f "$logs"/*.status

run_one() {
    local t=$1 name log start rc secs
    name=$(basename "$t")
    log="$logs/$name.log"
    start=$EPOCHREALTIME
    if [ "${VALGRIND:-0}" = 1 ]; then
        timeout 900 valgrind -q --error-exitcode=99 --leak-check=full \
            --suppressions="$top/scripts/valgrind.supp" \
            --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
            "$t" >"$log" 2>&1
    elif [[ $t == *.sh ]]; then
        (cd "$top" && BUILD="$build" timeout 600 bash "$t") >"$log" 2>&1
    else
        # shellcheck disable=SC2086 # EMULATOR is a command line
        (cd "$top" && timeout 600 ${EMULATOR:-} "$t") >"$log" 2>&1
    fi
    rc=$?
    secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    echo "$rc $name $secs" >"$logs/$name.status"
    if [ $rc -eq 0 ]; then
        printf 'PASS %-28s %6.1fs\n' "$name" "$secs"
    else
        printf 'FAIL %-28s (exit %d), last lines of %s:\n' "$name" "$rc" "$log"
        tail -n 30 "$log" | sed 's/^/    /'
    fi
}
export -f run_one
export build top logs EMULATOR

list=$(ls "$build"/test/test_* 2>/dev/null | grep -v '\.d$')
if [ "${VALGRIND:-0}" != 1 ] && [ -z "${EMULATOR:-}" ]; then
    list="$list $(ls "$top"/test/*.sh 2>/dev/null)"
fi
if [ -n "${ONLY:-}" ]; then
    list=$(for t in $list; do basename "$t" | grep -Eq "$ONLY" && echo "$t"; done)
fi
if [ -n "${SKIP:-}" ]; then
    list=$(for t in $list; do basename "$t" | grep -Eq "$SKIP" || echo "$t"; done)
fi
# shellcheck disable=SC2086
printf '%s\n' $list | xargs -P "${JOBS:-2}" -I{} bash -c 'run_one "$@"' _ {}

passed=0 failed=0
for s in "$logs"/*.status; do
    [ -e "$s" ] || continue
    if [ "$(cut -d' ' -f1 "$s")" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "tests: $passed passed, $failed failed"
[ $failed -eq 0 ] && [ $passed -gt 0 ]
