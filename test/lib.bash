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
#   jq_e ARGS...  `jq -e ARGS...` that also fails when jq prints nothing: jq 1.6 exits 0 on
#              empty input (an empty file, a command that printed nothing), so a bare
#              `jq -e CHECK` passes when there is nothing to check. Prints nothing.
#   free_port  prints a TCP port on 127.0.0.1 nobody listens on, below the kernel's
#              ephemeral range: a port from bind(0) can be taken, while its server is
#              down (a restart), as the local port of any outgoing connection of any
#              process, and the restarted server then finds it "already in use"
#   wait_for SECONDS CMD [ARGS...]
#              runs CMD every 50 ms until it succeeds (returns 0) or SECONDS have passed
#              (returns 1): wait for a condition with a deadline instead of sleeping
#   isolated_burst TRUTH BAUD T_MIN T_MAX
#              the first burst of BAUD from the synthesizer's truth starting after T_MIN and
#              off air before T_MAX that no other burst overlaps within 0.6 s (damage done
#              to it then hits no other burst), as one JSON line; "null" when there is none
#   damage_burst CU8_DATA RATE BURST PATTERN
#              negates symbols 32.. (after preamble and FT) of BURST (an isolated_burst
#              line) in a cu8 recording of RATE S/s, so that the sync holds and the CRC
#              fails: PATTERN "third" every third symbol, "random:SEED" each one with
#              probability 1/4, drawn in symbol order by Python's random.Random(SEED)
#   truth_message_lines TRUTH [EP_ID]
#   event_message_lines EVENTS TYPE [EP_ID]
#              one sorted line per message (of one device if EP_ID is given): ep_id mc
#              kind bf payload-or-bit, plus the decoded fields of control messages; from
#              the synthesizer's truth or from sigfoxd's events of TYPE (message, replay)

tmp=$(mktemp -d)
pids=()
lib_cleanup() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap lib_cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT && echo "temp dir: $tmp"

jq_e() {
    local out
    out=$(jq -e "$@") && [ -n "$out" ]
}

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

wait_for() {
    local deadline
    deadline=$(awk -v a="$EPOCHREALTIME" -v s="$1" 'BEGIN { printf "%.3f", a + s }')
    shift
    until "$@"; do
        awk -v a="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(a >= d) }' && return 1
        sleep 0.05
    done
    return 0
}

finish() {
    [ $fail = 0 ] && echo "$1: all checks passed"
    exit $fail
}

# The truth side decodes the control fields from the payload bytes itself, as seeds/000
# §5.1/§5.2 lay them out (CT, VDD idle, VDD TX, temperature in 0.1 degC as little-endian
# 16-bit, and for a confirmation the device's RSSI byte - 100), so sigfoxd's decoding of
# them is compared with an independent one: VDD idle, VDD TX (mV), temperature (0.1 degC
# and degC), RSSI (dBm).
truth_message_lines() {
    jq -r -s --arg id "${2:-}" 'def h2n: ascii_downcase | explode
            | map(if . >= 97 then . - 87 else . - 48 end) | reduce .[] as $d (0; . * 16 + $d);
        def le16($i): (.[$i * 2 + 2:$i * 2 + 4] | h2n) * 256 + (.[$i * 2:$i * 2 + 2] | h2n);
        def ctl: if .kind == "app" then ""
            else (.payload | le16(5) | if . >= 32768 then . - 65536 else . end) as $t
            | " \(.payload | le16(1)) \(.payload | le16(3)) \($t) \($t / 10)"
              + (if .kind == "dl_confirmation"
                 then " \((.payload[14:16] | h2n | if . >= 128 then . - 256 else . end) - 100)"
                 else "" end) end;
        map(select(.type == "burst" and ($id == "" or .ep_id == $id))) | group_by(.message)[] | .[0]
        | "\(.ep_id) \(.mc) \(.kind) \(.bf) \(if .payload_bit == null then .payload else "bit\(.payload_bit)" end)\(ctl)"' \
        "$1" | sort
}
event_message_lines() {
    jq -r --arg t "$2" --arg id "${3:-}" 'def ctl: if .kind == "app" then ""
            else " \(.vdd_idle_mv) \(.vdd_tx_mv) \(.temp_tenth_c) \(.temp_c)"
              + (if .kind == "dl_confirmation" then " \(.rssi_dbm)" else "" end) end;
        select(.type == $t and ($id == "" or .ep_id == $id))
        | "\(.ep_id) \(.mc) \(.kind) \(.bf) \(if .payload_bit == null then .payload else "bit\(.payload_bit)" end)\(ctl)"' \
        "$1" | sort
}

isolated_burst() {
    jq -c -s --argjson baud "$2" --argjson lo "$3" --argjson hi "$4" '
        map(select(.type == "burst")) as $b | [$b[] | select(.baud == $baud and
            .t_start_s > $lo and .t_off_s < $hi) | . as $x
        | select([$b[] | select(. != $x and .t_off_s > $x.t_on_s - 0.6 and .t_on_s < $x.t_off_s + 0.6)]
                 | length == 0)][0]' "$1"
}
damage_burst() {
    python3 - "$1" "$2" "$(jq -r .t_start_s <<<"$3")" "$(jq -r .t_end_s <<<"$3")" \
        "$(jq -r .baud <<<"$3")" "$4" <<'EOF'
import random, sys
path, rate, t0, t1, baud, pattern = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), \
    float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
sym = rate / baud
rnd = random.Random(int(pattern.split(":")[1])) if pattern.startswith("random:") else None
with open(path, "r+b") as f:
    data = bytearray(f.read())
    k = 32
    while t0 * rate + (k + 1) * sym < t1 * rate:
        if (rnd.random() < 0.25) if rnd else k % 3 == 0:
            a, b = int(t0 * rate + k * sym), int(t0 * rate + (k + 1) * sym)
            for i in range(2 * a, 2 * b):
                data[i] = 255 - data[i]  # cu8: x -> -x
        k += 1
    f.seek(0)
    f.write(data)
EOF
}

free_port() {
    python3 -c '
import random, socket
lo, hi = 20000, 32000
try:  # stay below the ephemeral range whatever the machine says it is
    hi = min(hi, int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0]) - 1)
except (OSError, ValueError, IndexError):
    pass
for _ in range(500):
    p = random.randint(lo, hi)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    raise SystemExit("free_port: no free port in %d..%d" % (lo, hi))'
}
