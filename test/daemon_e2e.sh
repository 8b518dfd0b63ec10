#!/bin/bash
# daemon_e2e: sigfoxd live, through the real SoapySDR capture path (the in-tree iqfile
# driver plays a synthesized capture in real time), subscribed over ZeroMQ (ipc:// in a
# temporary directory):
#   run 1: every truth message arrives once with exact fields; device A (right key) ok,
#          device B (wrong key) bad, device C (no key) unknown-device; commands answer;
#   run 2: restart on the same capture and state: A's messages are flagged as replays
#          (topic "replay", last_mc) and not published as messages; B and C unchanged;
#   run 3: SIGTERM exits 0 within a second; malformed commands get error replies;
#          SIGHUP reloads the keys.
# Licence: MIT. Run from the repo root with BUILD=<abs build dir>; KEEP=1 keeps the temp dir.
set -u
SFX="${BUILD:?set BUILD}/bin/sigfoxd"
SYNTH="$BUILD/bin/sigfox-synth"
SUB="$BUILD/bin/sigfox-sub"
export SOAPY_SDR_PLUGIN_PATH="$BUILD/soapy"
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
need_jq
[ -e "$BUILD/soapy/libsigfoxIQFileSupport.so" ] || { echo "FAIL: no SoapySDR iqfile module in $BUILD/soapy"; exit 1; }

EV="ipc://$tmp/events"
CMD="ipc://$tmp/commands"
DUR=8

# --- capture: three devices, high SNR; their keys file split into right / wrong / none --------
cap="$tmp/cap.cs16"
"$SYNTH" -o "$cap" --rate 1024k --duration $DUR --devices 3 --interval 1 --ebn0 24:30 \
    --single-frame 0.3 --seed 21 2>"$tmp/synth.log" || { echo "FAIL: synth: $(cat "$tmp/synth.log")"; exit 1; }
mapfile -t ids < <(grep -v '^#' "$cap.keys" | awk '{print $1}')
[ ${#ids[@]} = 3 ] || { echo "FAIL: expected 3 devices, keys file: $(cat "$cap.keys")"; exit 1; }
A=${ids[0]} B=${ids[1]} C=${ids[2]}
{
    grep "^$A " "$cap.keys"
    echo "$B 00112233445566778899AABBCCDDEEFF" # wrong key
} >"$tmp/keys"
chmod 600 "$tmp/keys"

truth_for() { truth_message_lines "$cap.truth.jsonl" "$1"; }         # ep_id
events_for() { event_message_lines "$1" "$2" "$3"; }                 # file type ep_id
auths_for() { # file type ep_id -> distinct auth values
    jq -r --arg t "$2" --arg id "$3" 'select(.type == $t and .ep_id == $id) | .auth' "$1" | sort -u | tr '\n' ' '
}
for d in A B C; do
    [ -n "$(truth_for "${!d}")" ] || { echo "FAIL: device $d sent nothing in the capture"; exit 1; }
done

# Starts the subscriber first (it connects before sigfoxd binds; ZeroMQ retries), then
# sigfoxd on the capture. Sets SUB_PID, SFX_PID.
start_run() { # name extra-device-args...
    local name=$1
    shift
    "$SUB" --json --pub "$EV" >"$tmp/$name.jsonl" 2>"$tmp/$name.sub.err" &
    SUB_PID=$!
    pids+=("$SUB_PID")
    # Nothing to wait on here: the subscriber connects once sigfoxd has bound; a head
    # start keeps it from missing sigfoxd's first events (ZeroMQ's slow joiner).
    sleep 0.3
    "$SFX" --no-config --device "driver=iqfile,path=$cap,rate=1024k,freq=868.13M,throttle=1$*" \
        --rate 1024k --pub "$EV" --cmd "$CMD" --state-dir "$tmp/state" --keys "$tmp/keys" \
        --stats-interval 1 --state-flush-interval 0.5 >"$tmp/$name.out" 2>"$tmp/$name.err" &
    SFX_PID=$!
    pids+=("$SFX_PID")
}
# Waits for sigfoxd to exit by itself (end of the capture); returns its status.
wait_exit() { # seconds
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        kill -0 "$SFX_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SFX_PID" 2>/dev/null; then
        kill -9 "$SFX_PID"
        wait "$SFX_PID" 2>/dev/null
        return 124
    fi
    wait "$SFX_PID"
}
# Stops the subscriber once sigfoxd's last event has arrived: the stats event it publishes
# after the receiver's final flush, one more than the periodic ones it logs ("Stats, ").
stop_sub() { # name
    local want
    want=$(($(grep -c "Stats, samples_in" "$tmp/$1.err") + 1))
    wait_for 10 sh -c '[ "$(jq -c "select(.type == \"stats\")" "$1" 2>/dev/null | wc -l)" -ge "$2" ]' \
        _ "$tmp/$1.jsonl" "$want" || err "$1: the final stats event did not arrive ($want expected)"
    kill -INT "$SUB_PID" 2>/dev/null
    wait "$SUB_PID" 2>/dev/null
}
# Waits until sigfoxd answers commands and has taken samples.
wait_daemon_up() {
    wait_for 10 sh -c '"$1" --cmd "$2" stats --timeout 1 2>/dev/null | jq -e ".ok and .stats.samples_in > 0" >/dev/null' \
        _ "$SUB" "$CMD" || err "sigfoxd does not answer the stats command"
}

# --- run 1 ---------------------------------------------------------------------------------
start_run run1
wait_daemon_up
"$SUB" --cmd "$CMD" '{"cmd":"config","id":"c1"}' >"$tmp/config.json" || err "config command failed: $(cat "$tmp/config.json")"
jq_e '.ok and .id == "c1" and .config.api.pub_endpoint != null and .config.radio.rate_sps == 1024000' \
    "$tmp/config.json" >/dev/null || err "config reply: $(cat "$tmp/config.json")"
"$SUB" --cmd "$CMD" stats >"$tmp/stats1.json" || err "stats command failed"
jq_e '.ok and .stats.samples_in > 0 and .stats.format_version == 1' "$tmp/stats1.json" >/dev/null ||
    err "stats reply: $(cat "$tmp/stats1.json")"
"$SUB" --cmd "$CMD" '{"cmd":"downlink","ep_id":"'"$A"'","mc":1,"payload":"0011223344556677"}' \
    >"$tmp/dl.json" && err "downlink command succeeded: $(cat "$tmp/dl.json")"
jq_e '.ok == false and (.error | test("not available"))' "$tmp/dl.json" >/dev/null ||
    err "downlink reply: $(cat "$tmp/dl.json")"
wait_exit $((DUR + 10))
rc=$?
stop_sub run1
[ $rc = 0 ] || err "run1: sigfoxd exit $rc: $(tail -5 "$tmp/run1.err")"
for d in A B C; do
    want=$(truth_for "${!d}")
    got=$(events_for "$tmp/run1.jsonl" message "${!d}")
    [ "$want" = "$got" ] || {
        err "run1: device $d messages differ (< truth, > published):"
        diff <(echo "$want") <(echo "$got")
    }
done
[ "$(auths_for "$tmp/run1.jsonl" message "$A")" = "ok " ] || err "run1: A auth: $(auths_for "$tmp/run1.jsonl" message "$A")"
[ "$(auths_for "$tmp/run1.jsonl" message "$B")" = "bad " ] || err "run1: B auth: $(auths_for "$tmp/run1.jsonl" message "$B")"
[ "$(auths_for "$tmp/run1.jsonl" message "$C")" = "unknown-device " ] || err "run1: C auth: $(auths_for "$tmp/run1.jsonl" message "$C")"
[ "$(auths_for "$tmp/run1.jsonl" frame "$A")" = "ok " ] || err "run1: A frame auth"
n=$(jq -r 'select(.type == "replay")' "$tmp/run1.jsonl" | wc -l)
[ "$n" = 0 ] || err "run1: $n replay events on a first run"
jq_e -s 'map(select(.type == "message")) | all(.time_utc | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{6}Z$"))' \
    "$tmp/run1.jsonl" >/dev/null || err "run1: messages without a valid time_utc"
jq_e -s 'map(select(.type == "stats")) | length >= 2' "$tmp/run1.jsonl" >/dev/null ||
    err "run1: fewer than 2 stats events"
grep -q "^$A " "$tmp/state/devices.state" || err "run1: no state for A: $(cat "$tmp/state/devices.state")"
grep -q "^$B \|^$C " "$tmp/state/devices.state" && err "run1: unauthenticated devices in the state"

# --- run 2: restart, same capture: A's messages are replays now ---------------------------
start_run run2
wait_exit $((DUR + 10))
rc=$?
stop_sub run2
[ $rc = 0 ] || err "run2: sigfoxd exit $rc: $(tail -5 "$tmp/run2.err")"
got=$(events_for "$tmp/run2.jsonl" message "$A")
[ -z "$got" ] || err "run2: replayed messages of A published as new: $got"
want=$(truth_for "$A")
got=$(events_for "$tmp/run2.jsonl" replay "$A")
[ "$want" = "$got" ] || {
    err "run2: A's replays (< truth, > replay events):"
    diff <(echo "$want") <(echo "$got")
}
jq_e -s 'map(select(.type == "replay")) | length > 0 and all(.last_mc != null and .auth == "ok")' \
    "$tmp/run2.jsonl" >/dev/null || err "run2: replay events lack last_mc"
for d in B C; do
    [ "$(truth_for "${!d}")" = "$(events_for "$tmp/run2.jsonl" message "${!d}")" ] ||
        err "run2: device $d (unauthenticated, no anti-replay) differs"
done
grep -q "Replayed message refused" "$tmp/run2.err" || err "run2: replays not logged"
jq_e -s 'map(select(.type == "log" and .level == "warning" and (.text | test("Replayed")))) | length > 0' \
    "$tmp/run2.jsonl" >/dev/null || err "run2: no log event for the replays"

# --- run 3: commands under abuse, SIGHUP, SIGTERM within a second ------------------------------
start_run run3 ",repeat=1"
wait_daemon_up
for req in 'not json' '[1,2]' '{}' '{"cmd":5}' '{"cmd":"reboot"}' '{"cmd":"stats"} x'; do
    "$SUB" --cmd "$CMD" "$req" >"$tmp/bad.json" && err "request '$req' succeeded"
    jq_e '.ok == false and (.error | length > 0)' "$tmp/bad.json" >/dev/null ||
        err "request '$req': reply $(cat "$tmp/bad.json")"
done
"$SUB" --cmd "$CMD" devices >"$tmp/devices.json" || err "devices command failed"
jq_e --arg a "$A" --arg b "$B" '.ok and (.devices | map(select(.ep_id == $a)) | .[0].has_key and .[0].last_mc != null)
    and (.devices | map(select(.ep_id == $b)) | .[0].has_key)' "$tmp/devices.json" >/dev/null ||
    err "devices reply: $(cat "$tmp/devices.json")"
# SIGHUP: add C's key; the daemon says so and keeps running.
grep "^$C " "$cap.keys" >>"$tmp/keys"
kill -HUP "$SFX_PID"
wait_for 5 grep -q "Keys reloaded, keys: 3, added: 1, removed: 0" "$tmp/run3.err" ||
    err "run3: no reload: $(tail -3 "$tmp/run3.err")"
kill -0 "$SFX_PID" 2>/dev/null || err "run3: sigfoxd died on SIGHUP"
# SIGHUP again without B's line: B's key is gone at once.
grep -v "^$B " "$tmp/keys" >"$tmp/keys.new" && chmod 600 "$tmp/keys.new" && mv "$tmp/keys.new" "$tmp/keys"
kill -HUP "$SFX_PID"
wait_for 5 grep -q "Keys reloaded, keys: 2, added: 0, removed: 1" "$tmp/run3.err" ||
    err "run3: removal not reloaded: $(tail -3 "$tmp/run3.err")"
"$SUB" --cmd "$CMD" devices >"$tmp/devices2.json" || err "devices command failed"
jq_e --arg b "$B" --arg c "$C" '.ok and (.devices | map(select(.ep_id == $c)) | .[0].has_key)
    and ((.devices | map(select(.ep_id == $b)) | .[0].has_key // false) | not)' "$tmp/devices2.json" >/dev/null ||
    err "devices after removing B's key: $(cat "$tmp/devices2.json")"
t0=$(date +%s%N)
kill -TERM "$SFX_PID"
wait_exit 5
rc=$?
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
stop_sub run3
[ $rc = 0 ] || err "run3: exit $rc after SIGTERM: $(tail -5 "$tmp/run3.err")"
# Within a second (measured ~340 ms): most of it is draining the blocks already captured,
# which an instrumented build (make asan sets SANITIZER_PRELOAD) does 3-5x slower; there
# the bound is 3 s. The stop itself must begin at once either way.
limit=1000
[ -n "${SANITIZER_PRELOAD:-}" ] && limit=3000
[ $ms -lt $limit ] || err "run3: SIGTERM took $ms ms (limit $limit)"
grep -q "Stopping: draining the receiver" "$tmp/run3.err" || err "run3: SIGTERM did not start the stop"
echo "SIGTERM to exit: $ms ms"
grep -q "sigfoxd stopped, exit: 0" "$tmp/run3.err" || err "run3: no clean stop line"
jq_e -s 'map(select(.type == "stats")) | length > 0' "$tmp/run3.jsonl" >/dev/null ||
    err "run3: no stats event"

finish daemon_e2e
