# lib.bash: helpers shared by the end-to-end scripts test/*.sh. Source it after
# `set -u`:  . "$(dirname "$0")/lib.bash"   (not *.sh: scripts/run-tests.sh runs those).
# Licence: MIT.
#
#   tmp        a fresh temporary directory, removed at exit together with the processes
#              in pids (KEEP=1 keeps both and prints the directory)
#   pids       background processes to kill at exit: pids+=($!)
#   fail       0 until a check fails;  err MSG...  prints "FAIL: MSG" and sets fail=1
#   need_jq    exits 1 with a FAIL line when jq is missing
#   run_cmd EXPECTED_STATUS CMD [ARGS...]
#              runs CMD; its stdout is in $out and $tmp/out, its stderr in $errout and
#              $tmp/err; a different exit status is a failure (returns 1)
#   finish NAME
#              prints "NAME: all checks passed" when nothing failed; exits with $fail

tmp=$(mktemp -d)
pids=()
lib_cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap lib_cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT && echo "temp dir: $tmp"

fail=0
err() {
    echo "FAIL: $*"
    fail=1
}

need_jq() {
    command -v jq >/dev/null || { echo "FAIL: jq is missing (scripts/install-deps.sh installs it)"; exit 1; }
}

run_cmd() {
    local want=$1 got
    shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    # shellcheck disable=SC2034 # out and errout are for the sourcing script
    out=$(cat "$tmp/out")
    errout=$(cat "$tmp/err")
    if [ "$got" != "$want" ]; then
        err "$*: exit $got, expected $want; stdout: $(head -c 600 "$tmp/out"); stderr: $errout"
        return 1
    fi
    return 0
}

finish() {
    [ $fail = 0 ] && echo "$1: all checks passed"
    exit $fail
}
