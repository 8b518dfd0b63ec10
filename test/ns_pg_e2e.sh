#!/bin/bash
# ns_pg_e2e: the network core on a real PostgreSQL server (Debian postgresql, started here
# on 127.0.0.1 and a free port, stopped at the end): the storage unit tests, then TWO
# sigfox-ns instances sharing the database, fed by overlapping simulated stations (each
# message heard by 3 random stations of 8, stations split between the instances): every
# message delivered exactly once; then PostgreSQL restarted during a run: 0 lost, 0 twice.
# Licence: MIT.
set -u
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/pg.bash"
BUILD=${BUILD:-build}
bin=$BUILD/bin
need_jq
# The sanitizer build runs the core about 10x slower: smaller runs, same checks.
N=800 RATE=2000 NF=1500 RF=1500
case "$BUILD" in *asan*) N=100 RATE=300 NF=200 RF=200 ;; esac

pg_start
NSDB_TEST_URL=$pg_url "$BUILD/test/test_nsdb" >"$tmp/nsdb.log" 2>&1 ||
    err "test_nsdb on PostgreSQL: $(grep -E 'ERROR|LINE|FAIL' "$tmp/nsdb.log" | head -n 10)"

psql() { "$pg_bin/psql" -X -q -t -A "$@"; }
psql "$pg_url" -c "CREATE DATABASE ns" || err "CREATE DATABASE"
url="postgresql://ns@127.0.0.1:$pg_port/ns?connect_timeout=5"

port() { free_port; }
"$bin/sigfox-nsbench" setup "$tmp/net" --stations 8 --devices 100 >/dev/null || err "setup"
declare -A ep pub cmd
for i in 1 2; do
    ep[$i]=tcp://127.0.0.1:$(port)
    pub[$i]=tcp://127.0.0.1:$(port)
    cmd[$i]=tcp://127.0.0.1:$(port)
    "$bin/sigfox-ns" -c "$tmp/net/ns.conf" --storage "$url" --keys "$tmp/net/devices.keys" \
        --listen "${ep[$i]}" --pub "${pub[$i]}" --cmd "${cmd[$i]}" --instance "ns$i" \
        >"$tmp/ns$i.log" 2>&1 &
    pids+=($!)
done
for i in 1 2; do
    ok=0
    for _ in $(seq 100); do
        "$bin/sigfox-sub" --cmd "${cmd[$i]}" stats --timeout 0.2 >/dev/null 2>&1 && ok=1 && break
        sleep 0.1
    done
    [ $ok = 1 ] || err "instance $i did not start: $(tail -n 5 "$tmp/ns$i.log")"
done

# 1. two instances, overlapping stations: exactly once
run_cmd 0 "$bin/sigfox-nsbench" run "$tmp/net" --endpoint "${ep[1]}" --endpoint "${ep[2]}" \
    --sub "${pub[1]}" --sub "${pub[2]}" --messages $N --rate $RATE --check --timeout 120 --settle-s 20
echo "two instances: $out"
rows=$(psql "$url" -c "SELECT COUNT(*), COUNT(DISTINCT (ep_id, mc)) FROM ns_messages WHERE status = 'ok'")
[ "$rows" = "$N|$N" ] || err "message log (rows|distinct): $rows, expected $N|$N"
split=$(psql "$url" -c "SELECT COUNT(DISTINCT instance) FROM ns_messages")
[ "$split" = 2 ] || err "only one instance accepted messages (no race tested)"
for i in 1 2; do
    echo "ns$i: $("$bin/sigfox-sub" --cmd "${cmd[$i]}" stats | jq -c '.stats | {messages, frames_duplicate, retries, db_errors}')"
done

# 2. PostgreSQL restarted mid-run: the instances keep the batches unacknowledged, reconnect
#    and commit them; stations resend what was in flight
"$bin/sigfox-nsbench" run "$tmp/net" --endpoint "${ep[1]}" --endpoint "${ep[2]}" \
    --sub "${pub[1]}" --sub "${pub[2]}" --messages $NF --mc-start 100 --rate $RF \
    --resend-s 2 --timeout 120 --settle-s 5 >"$tmp/fault.json" 2>&1 &
bench=$!
sleep 2
pg_restart
wait $bench
echo "PostgreSQL restart: $(cat "$tmp/fault.json")"
[ "$(jq -r .duplicates "$tmp/fault.json")" = 0 ] || err "duplicates after the restart"
[ "$(jq -r .frames_acked "$tmp/fault.json")" = $((NF * 9)) ] || err "not every frame acknowledged"
rows=$(psql "$url" -c "SELECT COUNT(*), COUNT(DISTINCT (ep_id, mc)) FROM ns_messages WHERE status = 'ok'")
want="$((N + NF))|$((N + NF))"
[ "$rows" = "$want" ] || err "message log after the restart (rows|distinct): $rows, expected $want"
grep -q "Database connection re-established" "$tmp/ns1.log" "$tmp/ns2.log" ||
    err "no reconnection logged"
finish ns_pg_e2e
