#!/bin/bash
# core_downlink_e2e: a BF=1 downlink decided by the network core and sent by a station that
# has NO device keys. sigfoxd runs live (SoapySDR iqfile driver, real time) on a synthesized
# B-procedure scene with --tx-file and core.endpoint pointing at test/corepeer.py, which
# answers device A with a payload and its DL-AUTH (computed at the "core", which holds the
# keys) and declines device B. Checks: A's downlink is built from the core's DL-AUTH
# (sigfox-dlrx with the key: payload and AUTH ok, inside the window), B's request closes as
# declined at once, and the station's downlink events (downlink_scheduled, downlink_sent,
# downlink_refused) reach the core as {"type":"event"}. Licence: MIT.
# Run from the repo root with BUILD=<abs build dir>.
set -u
SFX="${BUILD:?set BUILD}/bin/sigfoxd"
SYNTH="$BUILD/bin/sigfox-synth"
DLRX="$BUILD/bin/sigfox-dlrx"
PEER="$(cd "$(dirname "$0")" && pwd)/corepeer.py"
export SOAPY_SDR_PLUGIN_PATH="$BUILD/soapy"
export SOAPY_SDR_ROOT=/nonexistent # no USB probing by other drivers
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
need_jq
PY=/usr/bin/python3 # Debian's, with python3-zmq (scripts/install-deps.sh)
$PY -c 'import zmq; assert zmq.has("curve")' || { echo "FAIL: python3-zmq with CURVE is missing"; exit 1; }
command -v openssl >/dev/null || { echo "FAIL: openssl is missing (scripts/install-deps.sh)"; exit 1; }

# Two devices, B-procedures only (RC1, BR100, 3 frames each), 32 s at 250 kS/s.
"$SYNTH" -o "$tmp/scene" --format sigmf --sigmf-datatype cs16 --rc RC1 --rate 250k \
    --duration 32 --devices 2 --interval 1 --bf 1 --one-bit 0 --keepalive 0 \
    --dl-confirmation 0 --single-frame 0 --baud 100 --ebn0 20 --seed 9 2>"$tmp/synth.err" ||
    { echo "FAIL: sigfox-synth: $(cat "$tmp/synth.err")"; exit 1; }
mapfile -t ids < <(grep -v '^#' "$tmp/scene.keys" | awk '{print $1}')
A=${ids[0]} B=${ids[1]}
read -r core_pub core_sec < <($PY "$PEER" keygen)
read -r st_pub st_sec < <($PY "$PEER" keygen)
echo "$st_sec" >"$tmp/station.key"
chmod 600 "$tmp/station.key"

$PY "$PEER" serve --secret="$core_sec" --allow="$st_pub" --port-file "$tmp/port" \
    --log "$tmp/core.log" --keys "$tmp/scene.keys" --answer "$A=0A0B0C0D0E0F1011" \
    2>"$tmp/peer.err" &
peer=$!
pids+=("$peer")
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
mkdir -p "$tmp/dl"
# No --keys: the station cannot compute DL-AUTH itself. A long transmitter lead commits
# each DL ~9 s into the stream (its window opens at ~22 s), so the test need not wait.
"$SFX" --no-config --device "driver=iqfile,path=$tmp/scene.sigmf-meta" --rate 250k \
    --pub "ipc://$tmp/events" --cmd "ipc://$tmp/commands" --state-dir "" --tx-file "$tmp/dl" \
    --dl-lead 14 --dl-answer-timeout 5 --station-id station-A \
    --core "tcp://127.0.0.1:$(cat "$tmp/port")" --core-key "$core_pub" \
    --core-secret-key-file "$tmp/station.key" --spool-dir "$tmp/spool" >"$tmp/sfx.out" 2>"$tmp/sfx.err" &
sfx=$!
pids+=("$sfx")

core_event() { # jq filter on the event -> 0 when the core has received it
    jq_e -s "map(select(.msg.type == \"event\") | .msg.event | select($1)) | length > 0" \
        "$tmp/core.log" >/dev/null 2>&1
}
for _ in $(seq 300); do
    core_event ".type == \"downlink_sent\" and .ep_id == \"$A\"" &&
        core_event ".type == \"downlink_refused\" and .ep_id == \"$B\"" && break
    sleep 0.1
done
kill -TERM "$sfx"
wait "$sfx" || err "sigfoxd exit $?: $(tail -3 "$tmp/sfx.err")"
kill "$peer" 2>/dev/null
wait "$peer" 2>/dev/null

grep -q "Downlink enabled" "$tmp/sfx.err" || err "downlink not enabled: $(grep -i downlink "$tmp/sfx.err")"
sent=$(jq -c -s --arg a "$A" 'map(select(.sent.ep_id == $a))[0].sent' "$tmp/core.log")
[ "$sent" != null ] || err "the core never answered A: $(tail -3 "$tmp/peer.err")"
core_event ".type == \"downlink_scheduled\" and .ep_id == \"$A\" and .dl_auth == $(echo "$sent" | jq .dl_auth)" ||
    err "no downlink_scheduled for A with the core's DL-AUTH at the core"
core_event ".type == \"downlink_sent\" and .ep_id == \"$A\"" || err "no downlink_sent for A at the core"
core_event ".type == \"downlink_refused\" and .ep_id == \"$B\" and .status == \"declined\"" ||
    err "B's request not declined: $(jq -c 'select(.msg.type == "event") | .msg.event | {type, ep_id, status}' "$tmp/core.log")"
core_event ".type == \"downlink_request\"" && err "downlink_request events were sent to the core"
core_event ".station_id != \"station-A\"" && err "events without station_id"
# The burst on air: decoded with the device key (which the station never had).
ev=$(jq -c -s --arg a "$A" 'map(select(.msg.type == "event") | .msg.event
    | select(.type == "downlink_sent" and .ep_id == $a))[0]' "$tmp/core.log")
file=$(echo "$ev" | jq -r .file)
if [ -f "$file" ]; then
    mc=$(echo "$ev" | jq -r .mc)
    t0=$(jq -r '.t_first_sample_s' "$file.json")
    out=$("$DLRX" --id "$A" --mc "$mc" --keys "$tmp/scene.keys" --time-offset "$t0" "$file" 2>"$tmp/dlrx.err")
    echo "$out" | jq_e '.payload == "0A0B0C0D0E0F1011" and .auth == "ok" and .crc_ok' >/dev/null ||
        err "DL decode: $out $(cat "$tmp/dlrx.err")"
    win=$(echo "$ev" | jq -r '"\(.t_start_s) \(.window_start_s) \(.window_end_s)"')
    awk -v w="$win" 'BEGIN { split(w, a, " "); exit !(a[1] >= a[2] && a[1] + 224 / 600 <= a[3]) }' ||
        err "DL outside the window: $win"
else
    err "no DL file for A: $ev"
fi
jq_e -s '[.[] | select(.msg.type == "batch") | .msg.frames[] | select(.bf) | .tx] | length > 0 and all' \
    "$tmp/core.log" >/dev/null ||
    err "BF=1 frames without tx: true"

finish core_downlink_e2e
