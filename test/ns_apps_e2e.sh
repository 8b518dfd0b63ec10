#!/bin/bash
# ns_apps_e2e: sigfox-ns with its integrations configured (conf keys callbacks / device_types /
# mqtt / rest) on SQLite, fed by simulated stations (sigfox-nsbench), delivering to a REAL
# HTTP endpoint (test/cbserver.py), a REAL mosquitto broker and its REST API:
#  - DATA callbacks (simple + batch): bodies byte for byte as the templates say, each
#    message once, with its stations and the decoded payload field
#  - BF=1 in callback mode: the endpoint answers {"<id>":{"downlinkData":"..."}} and the core
#    sends that payload to the best station (what the simulated station receives)
#  - an endpoint answering 500 gets the request again after callbacks.retry_delay_s
#  - REST /api/devices/<ID>/messages lists the messages; MQTT .../up receives them
#  - the retry queue and the failures are tables of the core's database: the queue
#    survives a restart
#  - the status page, rendered by headless chromium, lists the stations, devices and messages
#  - a template error in the configuration names the file, line and key (exit 64)
# NS_APPS_PG=1 runs the same on a real PostgreSQL (test/pg.bash; test/ns_apps_pg_e2e.sh).
# Licence: MIT.
set -u
. "$(dirname "$0")/lib.bash"
BUILD=${BUILD:-build}
bin=$BUILD/bin
here=$(dirname "$0")
need_jq
if [ "${NS_APPS_PG:-0}" = 1 ]; then
    . "$(dirname "$0")/pg.bash"
    pg_start
    storage=$pg_url
    dbq() { "$pg_bin/psql" -X -q -t -A "$pg_url" -c "$1"; }
    name=ns_apps_pg_e2e
else
    command -v sqlite3 >/dev/null || { echo "FAIL: sqlite3 is missing (scripts/install-deps.sh)"; exit 1; }
    storage=sqlite://$tmp/ns.db
    dbq() { sqlite3 "$tmp/ns.db" "$1"; }
    name=ns_apps_e2e
fi
N=8          # messages: 4 devices x 2 rounds; every 4th is BF=1 (device 10000000)
DL=0A0B0C0D0E0F1011

port() { free_port; }
L=$(port); P=$(port); C=$(port); R=$(port); M=$(port); DEAD=$(port) # nobody listens on DEAD
ep=tcp://127.0.0.1:$L pub=tcp://127.0.0.1:$P cmd=tcp://127.0.0.1:$C

"$bin/sigfox-nsbench" setup "$tmp/net" --stations 3 --devices 4 >/dev/null || err "setup"

# the HTTP endpoint: answers ack=true with the downlink, /retry 500 once per body
python3 "$here/cbserver.py" "$tmp/http.port" "$tmp/http.jsonl" --downlink $DL \
    --fail-first-path /retry &
pids+=($!)
wait_for 30 test -s "$tmp/http.port" || { err "cbserver did not start"; finish $name; }
H=$(cat "$tmp/http.port")

# a real broker, when mosquitto is installed (scripts/install-deps.sh)
mqtt=false
if command -v mosquitto >/dev/null && command -v mosquitto_sub >/dev/null; then
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' $M >"$tmp/mosq.conf"
    mosquitto -c "$tmp/mosq.conf" >"$tmp/mosq.log" 2>&1 &
    pids+=($!)
    wait_for 20 bash -c "echo >/dev/tcp/127.0.0.1/$M" 2>/dev/null || err "mosquitto did not start"
    mosquitto_sub -h 127.0.0.1 -p $M -q 1 -t 'sigfox/#' -v >"$tmp/mqtt.txt" 2>/dev/null &
    pids+=($!)
    mqtt=true
else
    echo "note: mosquitto/mosquitto_sub missing: MQTT part skipped"
fi

body='{"device":"{device}","time":{time},"data":"{data}","seq":{seqNumber},"ack":{ack},'
body+='"station":"{station}","rssi":{rssi},"snr":{snr},"avgSnr":{avgSnr},"n":{nbStations},'
body+='"dups":{duplicates},"type":"{deviceTypeId}","t":{customData#t}}'
esc() { sed 's/\\/\\\\/g; s/"/\\"/g' <<<"$1"; }
cat >"$tmp/ns.conf" <<CONF
@include "$tmp/net/ns.conf"
callbacks = {
  retry_delay_s = 1;
  max_tries = 1000;
  list = (
    { name = "data"; type = "DATA"; url = "http://127.0.0.1:$H/data?id={device}";
      headers = [ "X-Device: {device}" ]; body = "$(esc "$body")"; downlink = true; },
    { name = "retry"; type = "DATA"; url = "http://127.0.0.1:$H/retry";
      content_type = "text/plain"; body = "{device};{seqNumber}"; },
    { name = "batch"; type = "DATA"; media = "batch"; url = "http://127.0.0.1:$H/batch";
      content_type = "text/plain"; body = "{device},{seqNumber},{data}"; },
    { name = "dead"; type = "DATA"; url = "http://127.0.0.1:$DEAD/"; body = "{device}"; }
  );
};
device_types = { list = ( { name = "meter"; grammar = "t::uint:8"; period_s = 0; } ); };
mqtt = { enabled = $mqtt; port = $M; };
rest = { enabled = true; port = $R; };
CONF

# a broken template is refused before anything starts, naming file, line and key
sed 's/{seqNumber}"; }/{seqNumbr}"; }/' "$tmp/ns.conf" >"$tmp/bad.conf"
run_cmd 64 "$bin/sigfox-ns" -c "$tmp/bad.conf" --check-config
grep -q "bad.conf:[0-9]*: callbacks.list\[1\]" <<<"$errout" || err "template error without file/line/key: $errout"
grep -q "seqNumbr" <<<"$errout" || err "template error does not name the variable: $errout"
run_cmd 0 "$bin/sigfox-ns" -c "$tmp/ns.conf" --check-config

"$bin/sigfox-ns" -c "$tmp/ns.conf" --storage "$storage" --keys "$tmp/net/devices.keys" \
    --listen $ep --pub $pub --cmd $cmd --instance one --log-level info >>"$tmp/ns.log" 2>&1 &
ns_pid=$!
pids+=($ns_pid)
wait_for 10 "$bin/sigfox-sub" --cmd $cmd stats --timeout 0.2 >/dev/null 2>&1 ||
    err "sigfox-ns did not start: $(tail -n 5 "$tmp/ns.log")"
grep -q "Integrations started, callbacks: 4, mqtt: $([ $mqtt = true ] && echo 127.0.0.1:$M || echo off), rest: port $R" \
    "$tmp/ns.log" || err "no integrations line: $(grep -i integr "$tmp/ns.log")"
for d in 10000000 10000001 10000002 10000003; do
    run_cmd 0 "$bin/sigfox-sub" --cmd $cmd "{\"cmd\":\"device_set\",\"ep_id\":\"$d\",\"device_type\":\"meter\"}"
done

"$bin/sigfox-sub" --pub $pub --json --topic message --timeout 30 >"$tmp/events.jsonl" 2>/dev/null &
sub_pid=$!
pids+=($sub_pid)
sleep 0.3
run_cmd 0 "$bin/sigfox-nsbench" run "$tmp/net" --endpoint $ep --sub $pub --messages $N --rate 200 \
    --bf-every 4 --check --timeout 20 --settle-s 5 --hold-s 3 --downlinks "$tmp/downlinks.jsonl"
echo "run: $out"
kill $sub_pid 2>/dev/null
wait $sub_pid 2>/dev/null

# 1. DATA bodies byte for byte, each message once (the message event is what the core
#    knew when it accepted the message: the same as the callback's view)
wait_for 5 bash -c "[ \$(grep -c '\"path\": \"/data' '$tmp/http.jsonl') -ge $N ]" || true
python3 - "$tmp/events.jsonl" "$tmp/http.jsonl" $N <<'PY' || err "DATA callbacks differ (above)"
import json, sys, datetime
events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
events = [e for e in events if e.get("type") == "message"]
reqs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
n = int(sys.argv[3])
data = [r for r in reqs if r["path"].startswith("/data")]
bad = 0
if len(events) != n or len(data) != n:
    print("messages: %d events, %d DATA callbacks, expected %d" % (len(events), len(data), n)); bad = 1
def f2(v): return "%.2f" % v
for e in events:
    st = [{"id": s["station_id"], "rssi": s.get("rssi_dbfs"), "snr": s["snr_db"], "rep": s.get("replicas", 1)} for s in e["stations"]]
    b = 0
    for i in range(1, len(st)):
        if st[i]["rssi"] > st[b]["rssi"] or (st[i]["rssi"] == st[b]["rssi"] and st[i]["snr"] > st[b]["snr"]): b = i
    st[0], st[b] = st[b], st[0]
    t = int(datetime.datetime.strptime(e["time_utc"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp())
    payload = bytes.fromhex(e["payload"])
    dups = "[" + ",".join('{"bsId":"%s","rssi":%s,"snr":%s,"nbRep":%d}' % (s["id"], f2(s["rssi"]), f2(s["snr"]), s["rep"]) for s in st[1:]) + "]"
    want = ('{"device":"%s","time":%d,"data":"%s","seq":%d,"ack":%s,"station":"%s","rssi":%s,"snr":%s,'
            '"avgSnr":%s,"n":%d,"dups":%s,"type":"meter","t":%d}') % (
        e["ep_id"], t, e["payload"].lower(), e["mc"], "true" if e.get("bf") else "false", st[0]["id"],
        f2(st[0]["rssi"]), f2(st[0]["snr"]), f2(sum(s["snr"] for s in st) / len(st)), len(st), dups, payload[0])
    got = [r for r in data if r["body"] == want]
    if len(got) != 1:
        print("message %s/%d: %d callbacks with the expected body\n  want %s\n  have %s" % (
            e["ep_id"], e["mc"], len(got), want,
            [r["body"] for r in data if ('"device":"%s"' % e["ep_id"]) in r["body"] and ('"seq":%d,' % e["mc"]) in r["body"]]))
        bad = 1
        continue
    r = got[0]
    if r["method"] != "POST" or r["path"] != "/data?id=" + e["ep_id"] or r["headers"].get("x-device") != e["ep_id"] \
            or r["headers"].get("content-type") != "application/json":
        print("request line/headers: %s" % r); bad = 1
sys.exit(bad)
PY

# each message once with the stations that heard it (the message log after the updates)
for d in 10000000 10000001; do
    curl -sf "http://127.0.0.1:$R/api/devices/$d/messages?from=0&to=9999999999" >"$tmp/rest.json" ||
        err "REST /api/devices/$d/messages failed"
    [ "$(jq 'length' "$tmp/rest.json" 2>/dev/null)" = 2 ] ||
        err "REST: device $d: $(head -c 400 "$tmp/rest.json")"
done
run_cmd 0 "$bin/sigfox-sub" --cmd $cmd '{"cmd":"messages","limit":100}'
[ "$(jq '[.messages[] | select(.nstations == 3)] | length' <<<"$out")" = $N ] ||
    err "message log without 3 stations each: $out"

# 2. BF=1 -> callback answer -> downlink to the best station, decline to the others
nbf=$(jq -s '[.[] | select(.type=="message" and .bf)] | length' "$tmp/events.jsonl")
[ "$nbf" = $((N / 4)) ] || err "BF=1 messages: $nbf"
nack=$(grep -c '\\"ack\\":true' "$tmp/http.jsonl")
[ "$nack" = $((N / 4)) ] || err "DATA callbacks with ack=true: $nack, expected $((N / 4))"
jq -s -e --arg dl $DL '[.[] | select(.msg.type=="downlink" and .msg.payload==$dl)] | length == '$((N / 4)) \
    "$tmp/downlinks.jsonl" >/dev/null || err "downlinks received by the stations: $(cat "$tmp/downlinks.jsonl")"
jq -s -e '[.[] | select(.msg.type=="downlink" and .msg.payload != null and (.msg.dl_auth | test("^[0-9A-F]{4}$") | not))] | length == 0' \
    "$tmp/downlinks.jsonl" >/dev/null || err "downlink without DL-AUTH"
# one chosen station per request (nscore: the best SNR among those that heard the first
# frame), the other two get a decline (payload null) so their requests close at once
jq -s -e '[.[] | select(.msg.type=="downlink" and .msg.payload==null)] | length == '$((2 * N / 4)) \
    "$tmp/downlinks.jsonl" >/dev/null || err "declines to the other stations: $(cat "$tmp/downlinks.jsonl")"

# 3. /retry answered 500 the first time: each body delivered again (2xx), none lost
wait_for 8 bash -c "[ \$(jq -s '[.[] | select(.path==\"/retry\" and .status==204)] | length' '$tmp/http.jsonl') -ge $N ]" ||
    err "retried callbacks: $(jq -s '[.[] | select(.path=="/retry")] | group_by(.status) | map({(.[0].status|tostring): length}) | add' "$tmp/http.jsonl")"
[ "$(jq -s '[.[] | select(.path=="/retry" and .status==500)] | length' "$tmp/http.jsonl")" = $N ] ||
    err "500 answers: expected $N"
[ "$(jq -rs '[.[] | select(.path=="/retry" and .status==204) | .body] | unique | length' "$tmp/http.jsonl")" = $N ] ||
    err "a retried body twice or missing"

# 4. batch: one line per message, each once
wait_for 5 bash -c "[ \$(jq -rs '[.[] | select(.path==\"/batch\") | .body | split(\"\n\")[] | select(length>0)] | length' '$tmp/http.jsonl') -ge $N ]" || true
lines=$(jq -rs '[.[] | select(.path=="/batch") | .body | split("\n")[] | select(length>0)] | sort | unique | length' "$tmp/http.jsonl")
all=$(jq -rs '[.[] | select(.path=="/batch") | .body | split("\n")[] | select(length>0)] | length' "$tmp/http.jsonl")
[ "$lines" = $N ] && [ "$all" = $N ] || err "batch lines: $all ($lines distinct), expected $N"
jq -rs '[.[] | select(.path=="/batch") | .body | split("\n")[] | select(length>0)][]' "$tmp/http.jsonl" |
    grep -qvE '^1000000[0-3],[0-9]+,[0-9a-f]{16}$' && err "batch line format"

# 5. MQTT: every message on sigfox/ns/<device>/up
if [ $mqtt = true ]; then
    wait_for 5 bash -c "[ \$(grep -c '^sigfox/ns/[0-9A-F]*/up ' '$tmp/mqtt.txt') -ge $N ]" ||
        err "MQTT up events: $(grep -c ' ' "$tmp/mqtt.txt"), expected $N"
    grep '^sigfox/ns/10000001/up ' "$tmp/mqtt.txt" | head -n 1 | cut -d' ' -f2- |
        jq_e '.type=="data" and .device=="10000001" and .decoded.t != null and (.stations|length) >= 1' >/dev/null ||
        err "MQTT payload: $(head -n 2 "$tmp/mqtt.txt")"
fi

# 6. the retry queue and the failures are in the core's database (schema migration 3):
#    /retry's 500s are recorded, the callback to a dead port waits there
[ "$(dbq "SELECT COUNT(*) FROM app_callback_failure WHERE callback = 'retry'")" = $N ] ||
    err "app_callback_failure rows of /retry: $(dbq "SELECT callback, COUNT(*) FROM app_callback_failure GROUP BY 1")"
curl -sf "http://127.0.0.1:$R/api/callbacks/failures" | jq_e 'map(select(.callback=="dead")) | length >= 1' >/dev/null ||
    err "REST /api/callbacks/failures without the dead endpoint"

# 7. the status page as a browser renders it (headless chromium, the DOM checked): the
#    3 stations, the 4 devices and the N messages of this run
chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$tmp/chromium" \
    --dump-dom "http://127.0.0.1:$R/" >"$tmp/status.html" 2>"$tmp/chromium.err" ||
    err "chromium --dump-dom: $(tail -n 3 "$tmp/chromium.err")"
n_st=$(grep -o '<tr class="station">' "$tmp/status.html" | wc -l)
n_dev=$(grep -o '<tr class="device"' "$tmp/status.html" | wc -l)
n_msg=$(grep -o '<tr class="message">' "$tmp/status.html" | wc -l)
[ "$n_st" = 3 ] && [ "$n_dev" = 4 ] && [ "$n_msg" = $N ] ||
    err "status page: $n_st stations, $n_dev devices, $n_msg messages; expected 3, 4, $N"

# clean stop: everything closed
kill $ns_pid
wait $ns_pid
rc=$?
[ $rc = 0 ] || err "sigfox-ns exit status $rc"
grep -q "Core stopped" "$tmp/ns.log" || err "no clean stop"
# the queue survives the stop: the dead endpoint's N requests wait in ns.db and are
# resumed by the next start
[ "$(dbq "SELECT COUNT(*) FROM app_callback_queue WHERE callback = 'dead' AND instance = 'one'")" = $N ] ||
    err "queued requests after the stop: $(dbq "SELECT callback, COUNT(*) FROM app_callback_queue GROUP BY 1")"
"$bin/sigfox-ns" -c "$tmp/ns.conf" --storage "$storage" --listen $ep --pub $pub --cmd $cmd \
    --instance one --log-level info >"$tmp/ns2.log" 2>&1 &
ns_pid=$!
pids+=($ns_pid)
wait_for 10 grep -q "Callback queue resumed, rows: $N," "$tmp/ns2.log" ||
    err "queue not resumed after the restart: $(head -n 12 "$tmp/ns2.log")"
kill $ns_pid
wait $ns_pid
rc=$?
[ $rc = 0 ] || err "sigfox-ns (restarted) exit status $rc: $(tail -n 5 "$tmp/ns2.log")"
[ $fail = 0 ] || tail -n 30 "$tmp/ns.log"
finish $name
