#!/bin/bash
# ns_e2e: sigfox-ns end to end on SQLite with simulated stations (sigfox-nsbench): every
# message delivered exactly once with all its stations, idempotent resends, bad input
# (unknown station key, malformed / oversized / too large batch, AUTH failure) logged and
# counted without a crash, the core killed and restarted mid-run: 0 lost, 0 twice.
# Licence: MIT.
set -u
. "$(dirname "$0")/lib.bash"
BUILD=${BUILD:-build}
bin=$BUILD/bin
need_jq
# The sanitizer build runs the core about 10x slower: smaller runs, same checks.
N=300 RATE=3000 NF=1500 RF=2000
case "$BUILD" in *asan*) N=60 RATE=300 NF=300 RF=300 ;; esac

port() { free_port; }
L=$(port); P=$(port); C=$(port)
ep=tcp://127.0.0.1:$L pub=tcp://127.0.0.1:$P cmd=tcp://127.0.0.1:$C

"$bin/sigfox-nsbench" setup "$tmp/net" --stations 6 --devices 50 >/dev/null || err "setup"
ns_pid=""
start_ns() {
    "$bin/sigfox-ns" -c "$tmp/net/ns.conf" --storage "sqlite://$tmp/ns.db" \
        --keys "$tmp/net/devices.keys" --listen $ep --pub $pub --cmd $cmd --instance one \
        --log-level info >>"$tmp/ns.log" 2>&1 &
    ns_pid=$!
    pids+=($ns_pid)
    for _ in $(seq 50); do
        "$bin/sigfox-sub" --cmd $cmd stats --timeout 0.2 >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    err "sigfox-ns did not start: $(tail -n 5 "$tmp/ns.log")"
}
stat() { "$bin/sigfox-sub" --cmd $cmd stats | jq -r ".stats.$1"; }
start_ns

# 1. N messages x 3 stations x 3 replicas: each delivered once, with its 3 stations.
"$bin/sigfox-sub" --pub $pub --json --topic message --timeout 90 >"$tmp/events.jsonl" 2>/dev/null &
sub_pid=$!
pids+=($sub_pid)
sleep 0.3
run_cmd 0 "$bin/sigfox-nsbench" run "$tmp/net" --endpoint $ep --sub $pub --messages $N \
    --rate $RATE --check --timeout 90 --settle-s 20
echo "run: $out"
[ "$(jq -r .delivered <<<"$out")" = $N ] || err "delivered $(jq -r .delivered <<<"$out") of $N"
kill $sub_pid 2>/dev/null
wait $sub_pid 2>/dev/null
n_msg=$(jq -c 'select(.type=="message")' "$tmp/events.jsonl" | wc -l)
[ "$n_msg" = $N ] || err "message events: $n_msg, expected $N"
# after the updates every message lists its 3 stations with 3 replicas each
run_cmd 0 "$bin/sigfox-sub" --cmd $cmd '{"cmd":"messages","limit":1000}'
bad=$(jq '[.messages[] | select(.nstations != 3 or .nframes != 9)] | length' <<<"$out")
[ "$bad" = 0 ] || err "$bad messages without 3 stations x 3 replicas"
[ "$(jq '.messages | length' <<<"$out")" = $N ] || err "message log: $(jq '.messages | length' <<<"$out") rows"
[ "$(jq -s 'map(select(.type=="message") | (.stations | length)) | min' "$tmp/events.jsonl")" -ge 1 ] ||
    err "message events without stations"

# 2. the same messages again (a station's spool resent after an hour, say): nothing new
run_cmd 0 "$bin/sigfox-nsbench" run "$tmp/net" --endpoint $ep --sub $pub --messages $N \
    --rate $RATE --timeout 60 --settle-s 1
[ "$(jq -r .delivered <<<"$out")" = 0 ] || err "a resent message was delivered again: $out"
[ "$(stat messages)" = $N ] || err "stats.messages $(stat messages) after the resend"

# 3. bad input: each refused with a reason, counted, logged; the core keeps running
run_cmd 0 "$bin/sigfox-nsbench" send "$tmp/net" --endpoint $ep --body 'not json'
jq_e '.type=="error" and (.error|test("JSON"))' <<<"$out" >/dev/null || err "malformed: $out"
run_cmd 0 "$bin/sigfox-nsbench" send "$tmp/net" --endpoint $ep --body '{"type":"batch","seq":1,"frames":[]}'
jq_e '.type=="error" and .seq==1' <<<"$out" >/dev/null || err "empty batch: $out"
python3 -c 'import json; print(json.dumps({"type":"batch","seq":2,"frames":[{"rank":1}]*101}))' >"$tmp/big.json"
run_cmd 0 "$bin/sigfox-nsbench" send "$tmp/net" --endpoint $ep --body "@$tmp/big.json"
jq_e '.type=="error" and (.error|test("100"))' <<<"$out" >/dev/null || err "101 frames: $out"
python3 -c 'print("{\"type\":\"ping\",\"pad\":\"" + "x" * (1100 * 1024) + "\"}")' >"$tmp/huge.json"
run_cmd 0 "$bin/sigfox-nsbench" send "$tmp/net" --endpoint $ep --body "@$tmp/huge.json"
jq_e '.type=="error" and (.error|test("1 MiB"))' <<<"$out" >/dev/null || err "1.1 MiB: $out"
run_cmd 0 "$bin/sigfox-nsbench" send "$tmp/net" --endpoint $ep --body '{"type":"batch","seq":3,"frames":[{"container":"00"}]}'
jq_e '.type=="ack" and .seq==3' <<<"$out" >/dev/null || err "batch with a bad frame not acked: $out"
run_cmd 0 "$bin/sigfox-nsbench" send "$tmp/net" --endpoint $ep --bad-auth
jq_e '.type=="ack"' <<<"$out" >/dev/null || err "bad-auth batch: $out"
[ "$(stat frames_auth_bad)" = 1 ] || err "frames_auth_bad $(stat frames_auth_bad)"
[ "$(stat frames_bad)" = 1 ] || err "frames_bad $(stat frames_bad)"
grep -q "Frame failed UL-AUTH at the core, ep_id: 10000000" "$tmp/ns.log" || err "no AUTH log line"
run_cmd 0 "$bin/sigfox-nsbench" send "$tmp/net" --endpoint $ep --body '{"type":"softframe"}'
jq_e '.type=="error" and (.error|test("softframe object"))' <<<"$out" >/dev/null || err "softframe: $out"
run_cmd 0 "$bin/sigfox-nsbench" send "$tmp/net" --endpoint $ep \
    --body '{"type":"softframe","softframe":{"type":"softframe","format_version":1,"soft":"////"}}'
jq_e '.type=="error" and (.error|test("softframe refused: "))' <<<"$out" >/dev/null || err "bad softframe: $out"
[ "$(stat softframes_refused)" = 2 ] || err "softframes_refused $(stat softframes_refused)"
[ "$(stat soft.softframes_in)" = 0 ] || err "soft.softframes_in $(stat soft.softframes_in)"
# a station flooding valid soft frames: at most soft.max_per_station_s (50) a second are
# taken, the rest counted; the core keeps answering
python3 -c 'import json,sys; print(json.dumps({"type":"softframe","softframe":json.load(open(sys.argv[1]))}))' \
    test/vectors/softframe_crc_bad.json >"$tmp/soft.json"
run_cmd 1 "$bin/sigfox-nsbench" send "$tmp/net" --endpoint $ep --body "@$tmp/soft.json" --times 2000
[ "$(stat softframes_limited)" -ge 1000 ] || err "softframes_limited $(stat softframes_limited)"
in=$(stat soft.softframes_in)
[ "$in" -ge 50 ] && [ "$in" -le 1000 ] || err "soft.softframes_in $in of 2000 sent at once"
run_cmd 0 "$bin/sigfox-nsbench" send "$tmp/net" --endpoint $ep --body '{"type":"ping"}'
[ "$out" = '{"type":"pong"}' ] || err "ping: $out"
# a station whose key the core does not list gets nothing through
"$bin/sigfox-nsbench" setup "$tmp/rogue" --stations 3 --devices 50 >/dev/null
cp "$tmp/net/core.pub" "$tmp/net/core.key" "$tmp/rogue/"
run_cmd 1 "$bin/sigfox-nsbench" send "$tmp/rogue" --endpoint $ep --body '{"type":"ping"}'
[ "$(stat stations_refused)" -ge 1 ] || err "stations_refused $(stat stations_refused)"
grep -q "Station refused, reason: unknown key, public_key: " "$tmp/ns.log" || err "no refusal log line"

# 4. the core killed (SIGKILL) and restarted during a run: every message exactly once
"$bin/sigfox-nsbench" run "$tmp/net" --endpoint $ep --sub $pub --messages $NF --mc-start 100 \
    --rate $RF --resend-s 1 --timeout 120 --settle-s 3 >"$tmp/fault.json" 2>&1 &
bench=$!
sleep 1.5
kill -9 $ns_pid
sleep 1
start_ns
wait $bench
echo "fault run: $(cat "$tmp/fault.json")"
[ "$(jq -r .duplicates "$tmp/fault.json")" = 0 ] || err "duplicates after the restart"
[ "$(jq -r .batches_resent "$tmp/fault.json")" -gt 0 ] || err "the kill did not interrupt anything"
rows=$(sqlite3 "$tmp/ns.db" "SELECT COUNT(*), COUNT(DISTINCT ep_id || '/' || mc) FROM ns_messages WHERE status = 'ok'")
want="$((N + NF))|$((N + NF))"
[ "$rows" = "$want" ] || err "message log after the restart (rows|distinct): $rows, expected $want"
# events: the ones published before the kill plus after; none twice (checked by the bench),
# none lost unless the kill fell between a commit and its publication (then it is in the log)
kill $ns_pid
wait $ns_pid
grep -q "Core stopped" "$tmp/ns.log" || err "no clean stop"
finish ns_e2e
