#!/bin/bash
# network_e2e: the network end to end with real stations. One synthesized scene (RC1, both
# baud rates, B-procedures with their confirmations) rendered as three stations hear it
# (sigfox-synth --station-*: different Eb/N0, carrier offset, delay and noise per station),
# three real sigfoxd stations replaying their captures (paced at 4x real time), each with
# station.id, core.endpoint and a CURVE key pair from `sigfox-ns keygen`, and NO device
# keys; one sigfox-ns on SQLite holding the keys. Checks, from sigfox-ns's PUB events and
# message log:
#  - every message of the truth is delivered exactly once (one `message` event), nothing
#    else is, and its final `stations` are exactly the stations that decoded a frame of it;
#  - a DATA callback to a real HTTP endpoint (test/cbserver.py) for every application
#    message of the truth, exactly once;
#  - BF=1 (the first B-procedure's device in callback mode: the endpoint's answer
#    {"<id>":{"downlinkData":...}} is the payload; the others in direct mode, set through the
#    command socket): the core picks the station with the best SNR among those that heard
#    the first frame, only that station writes a downlink file, sigfox-dlrx decodes it with
#    the device key (payload, AUTH ok)
#    inside the device's receive window of that station's truth, and the device's
#    confirmation frame, in the scene, comes back as downlink_ack from that station;
#  - anti-replay across stations: one station's capture replayed again after the dedup
#    window gives `replay` events and no new message, and its BF=1 request is declined.
# Licence: MIT. Run from the repo root with BUILD=<build dir>.
set -u
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
BUILD=${BUILD:-build}
bin=$BUILD/bin
need_jq
command -v sqlite3 >/dev/null || { echo "FAIL: sqlite3 is missing (scripts/install-deps.sh)"; exit 1; }
t_begin=$EPOCHREALTIME
elapsed() { awk -v a="$t_begin" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# ---- the scene, as three stations hear it ------------------------------------------------
# 8 devices for 36 s: ~30 messages, ~1 in 4 application messages a B-procedure followed by
# its confirmation ~25 s later (T_W + the DL + T_CONF, RC1). Eb/N0 16..24 dB at the scene,
# so every station hears every frame at 12 dB or more.
scene=(--rc 1 --rate 250k --duration 36 --devices 8 --interval 8 --ebn0 16:24 --bf 0.35
    --bproc-confirm --seed 21)
stations=(st-a st-b st-c)
declare -A view=(
    [st-a]="--station-ebn0 4 --station-freq 0 --station-delay 0 --station-noise-seed 101"
    [st-b]="--station-ebn0 0 --station-freq 1500 --station-delay 0.004 --station-noise-seed 102"
    [st-c]="--station-ebn0 -4 --station-freq -900 --station-delay 0.15 --station-noise-seed 103")
for st in "${stations[@]}"; do
    # shellcheck disable=SC2086 # the view is a list of options
    "$bin/sigfox-synth" -o "$tmp/$st" --format sigmf --sigmf-datatype cs16 "${scene[@]}" ${view[$st]} 2>"$tmp/synth-$st.err" ||
        { echo "FAIL: sigfox-synth $st: $(cat "$tmp/synth-$st.err")"; exit 1; }
done
truth=$tmp/st-a.truth.jsonl
keys=$tmp/st-a.keys
# the messages of the truth: "EPID MC" (sorted)
jq -r -s 'map(select(.type == "burst")) | group_by(.message)[] | .[0] | "\(.ep_id) \(.mc)"' \
    "$truth" | sort >"$tmp/truth_msgs"
n_truth=$(wc -l <"$tmp/truth_msgs")
jq -r 'select(.type == "bproc" and .confirmed) | "\(.ep_id) \(.mc)"' "$truth" >"$tmp/bprocs"
[ "$n_truth" -ge 20 ] || err "the scene has only $n_truth messages"
[ -s "$tmp/bprocs" ] || { echo "FAIL: the scene has no confirmed B-procedure"; exit 1; }

# ---- the application (a real HTTP endpoint), keys, the core -----------------------------
CB_DL=0A0B0C0D0E0F1011 # the endpoint's downlink answer to every DATA callback with ack: true
python3 "$(dirname "$0")/cbserver.py" "$tmp/http.port" "$tmp/http.jsonl" --downlink $CB_DL \
    2>"$tmp/cbserver.err" &
app=$!
pids+=("$app")
"$bin/sigfox-ns" keygen --out "$tmp/core" >/dev/null || err "keygen core"
ns_stations=()
for st in "${stations[@]}"; do
    "$bin/sigfox-ns" keygen --out "$tmp/$st" >/dev/null || err "keygen $st"
    ns_stations+=(--station "$st=$(cat "$tmp/$st.pub")")
done
# Local sockets (ZeroMQ CURVE works over ipc:// as over tcp://): no port to find.
listen=ipc://$tmp/stations pub=ipc://$tmp/events cmd=ipc://$tmp/commands
# The core decides a downlink 1 s after the first frame of its message arrives (every
# station's first frame is in by then). The dedup window is 5 s (30 by default): the
# stations' replays carry no wall-clock burst times, so the core dedups on arrival time,
# and the replayed capture must arrive after the window.
wait_for 10 test -s "$tmp/http.port" || { echo "FAIL: cbserver.py did not start: $(cat "$tmp/cbserver.err")"; exit 1; }
cat >"$tmp/ns.conf" <<EOF
downlink: { collect_s = 1.0; };
callbacks: { list = ( { name = "app"; type = "DATA"; media = "simple"; method = "POST";
    url = "http://127.0.0.1:$(cat "$tmp/http.port")/up";
    body = "{\\"device\\":\\"{device}\\",\\"seqNumber\\":{seqNumber},\\"ack\\":{ack},\\"nbStations\\":{nbStations}}";
    downlink = true; } ); };
EOF
"$bin/sigfox-ns" -c "$tmp/ns.conf" --listen "$listen" --secret-key-file "$tmp/core.key" \
    "${ns_stations[@]}" --storage "sqlite://$tmp/ns.db" --keys "$keys" --pub "$pub" \
    --cmd "$cmd" --dedup-window 5 --instance e2e --log-level info >"$tmp/ns.log" 2>&1 &
ns=$!
pids+=("$ns")
ns_up() { "$bin/sigfox-sub" --cmd "$cmd" stats --timeout 0.2 >/dev/null 2>&1; }
wait_for 10 ns_up || { echo "FAIL: sigfox-ns did not start: $(tail -5 "$tmp/ns.log")"; exit 1; }
# the first device with a B-procedure is in callback mode (the application answers), every
# other one answers in direct mode with its own payload
cb_dev=$(jq -r -s 'map(select(.type == "bproc"))[0].ep_id' "$truth")
declare -A want_dl=([$cb_dev]=$CB_DL)
run_cmd 0 "$bin/sigfox-sub" --cmd "$cmd" \
    "{\"cmd\":\"device_set\",\"ep_id\":\"$cb_dev\",\"downlink_mode\":\"callback\"}"
while read -r id; do
    [ "$id" = "$cb_dev" ] && continue
    want_dl[$id]=C0FFEE00$id
    run_cmd 0 "$bin/sigfox-sub" --cmd "$cmd" \
        "{\"cmd\":\"device_set\",\"ep_id\":\"$id\",\"downlink_mode\":\"direct\",\"downlink_payload\":\"C0FFEE00${id}\"}" ||
        break
done < <(jq -r 'select(.type == "bproc") | .ep_id' "$truth" | sort -u)
"$bin/sigfox-sub" --pub "$pub" --json --timeout 120 >"$tmp/events.jsonl" 2>/dev/null &
sub=$!
pids+=("$sub")
sleep 0.5 # the subscription reaches the core (ZeroMQ slow joiner)

# ---- three stations, all at once ----------------------------------------------------------------------
printf 'core: { shutdown_wait_s = 15; };\n' >"$tmp/station.conf"
# The first run is paced at 4x real time (--replay-speed): the core answers a BF=1 frame in
# wall-clock time (1 s collect + batching), so a replay must not race past the window
# (T_W = 20 s) meanwhile; the downlink then goes where the scene's device expects it (1 s
# into its window) and its confirmation matches. The replayed capture later runs as fast as
# the CPU allows.
station() { # name capture spool tx-dir out err [sigfoxd options]
    "$bin/sigfoxd" --config "$tmp/station.conf" --replay "$2" --state-dir "" --station-id "$1" \
        --core "$listen" --core-key "$(cat "$tmp/core.pub")" --core-secret-key-file "$tmp/$1.key" \
        --spool-dir "$3" --tx-file "$4" --log-level notice "${@:7}" >"$5" 2>"$6"
}
run1_start=$EPOCHREALTIME
spids=()
for st in "${stations[@]}"; do
    mkdir -p "$tmp/dl-$st"
    station "$st" "$tmp/$st.sigmf-meta" "$tmp/spool-$st" "$tmp/dl-$st" "$tmp/out-$st" "$tmp/err-$st" \
        --replay-speed 4 &
    spids+=($!)
    pids+=($!)
done
for i in "${!spids[@]}"; do
    wait "${spids[$i]}" || err "station ${stations[$i]} exit $?: $(tail -3 "$tmp/err-${stations[$i]}")"
done
run1_end=$EPOCHREALTIME
[ $fail = 0 ] || finish network_e2e
echo "3 stations replayed in $(awk -v a="$run1_start" -v b="$run1_end" 'BEGIN { printf "%.1f", b - a }') s"
for st in "${stations[@]}"; do
    find "$tmp/spool-$st" -name '*.batch' | grep -q . && err "$st: batches left unacknowledged in the spool"
done
msgs() { "$bin/sigfox-sub" --cmd "$cmd" '{"cmd":"messages","limit":10000}'; }
stat() { "$bin/sigfox-sub" --cmd "$cmd" stats | jq -r ".stats.$1"; }
# the events come right after each commit; a moment for the last ones
n_events() { [ "$(jq -r 'select(.type == "message") | .mc' "$tmp/events.jsonl" | wc -l)" -ge "$n_truth" ]; }
wait_for 5 n_events

# ---- 1. every message exactly once, with every station that heard it ----------------------
jq -r 'select(.type == "message") | "\(.ep_id) \(.mc)"' "$tmp/events.jsonl" | sort >"$tmp/core_msgs"
twice=$(uniq -d "$tmp/core_msgs")
[ -z "$twice" ] || err "messages delivered twice: $twice"
if ! diff -q "$tmp/truth_msgs" <(uniq "$tmp/core_msgs") >/dev/null; then
    err "delivered messages differ from the truth (< truth only, > core only):"
    diff "$tmp/truth_msgs" <(uniq "$tmp/core_msgs") | grep '^[<>]' | head -10
fi
msgs >"$tmp/log.json" || err "messages command"
[ "$(jq '[.messages[] | select(.status == "ok")] | length' "$tmp/log.json")" = "$n_truth" ] ||
    err "message log: $(jq '[.messages[] | select(.status == "ok")] | length' "$tmp/log.json") ok rows, expected $n_truth"
# heard: the stations that decoded a frame of the message (a CRC-valid frame event, or a
# replica recovered by joint decoding) = what they sent to the core
for st in "${stations[@]}"; do
    jq -r --arg s "$st" 'if .type == "frame" and .crc_ok then "\(.ep_id) \(.mc) \($s)"
        elif .type == "message" or .type == "replay" then
            . as $m | .replicas[]? | select(.joint) | "\($m.ep_id) \($m.mc) \($s)"
        else empty end' "$tmp/out-$st"
done | sort -u >"$tmp/heard_lines"
awk '{ k = $1 " " $2; h[k] = h[k] (h[k] == "" ? "" : ",") $3 } END { for (k in h) print k, h[k] }' \
    "$tmp/heard_lines" | sort >"$tmp/heard"
# the final station list per message: the last message/message_update event of its msg_id
jq -r -s 'map(select(.type == "message" or .type == "message_update")) | group_by(.msg_id)[]
    | .[-1] | "\(.ep_id) \(.mc) \([.stations[].station_id] | sort | join(","))"' \
    "$tmp/events.jsonl" | sort >"$tmp/core_stations"
if ! diff -q "$tmp/heard" "$tmp/core_stations" >/dev/null; then
    err "stations per message differ (< decoded by the stations, > the core's stations):"
    diff "$tmp/heard" "$tmp/core_stations" | grep '^[<>]' | head -10
fi
# the application: one DATA callback per application message of the truth
jq -r -s 'map(select(.type == "burst" and .kind == "app")) | group_by(.message)[] | .[0]
    | "\(.ep_id) \(.mc)"' "$truth" | sort >"$tmp/truth_app"
jq -r '.body | fromjson | "\(.device) \(.seqNumber)"' "$tmp/http.jsonl" 2>/dev/null | sort >"$tmp/cb_msgs"
[ "$(cat "$tmp/cb_msgs")" = "$(cat "$tmp/truth_app")" ] ||
    err "DATA callbacks differ from the truth's application messages (< truth, > callbacks): $(diff "$tmp/truth_app" "$tmp/cb_msgs" | grep '^[<>]' | head -6 | tr '\n' ' ')"
all3=$(grep -c ' st-a,st-b,st-c$' "$tmp/core_stations")
echo "messages: $n_truth in the truth, $(uniq "$tmp/core_msgs" | wc -l) delivered once, $all3 heard by all 3 stations, $(wc -l <"$tmp/cb_msgs") DATA callbacks"
[ "$all3" -ge $((n_truth * 8 / 10)) ] || err "only $all3 of $n_truth messages heard by all 3 stations at >= 12 dB"

# ---- 2. BF=1: the best station answers, the confirmation is tracked ------------------------
while read -r id mc; do
    dec=$(jq -c --arg id "$id" --argjson mc "$mc" \
        'select(.type == "downlink_decided" and .ep_id == $id and .mc == $mc)' "$tmp/events.jsonl")
    [ "$(echo "$dec" | grep -c .)" = 1 ] || { err "$id/$mc: $(echo "$dec" | grep -c .) downlink_decided events"; continue; }
    chosen=$(echo "$dec" | jq -r '.station_id // empty')
    [ -n "$chosen" ] || { err "$id/$mc: no station chosen: $dec"; continue; }
    # the best SNR among the stations that heard the first frame (rank 1), from the core's list
    best=$(jq -r -s --arg id "$id" --argjson mc "$mc" 'map(select((.type == "message" or
        .type == "message_update") and .ep_id == $id and .mc == $mc))[-1].stations
        | map(select(.first_rank == 1 and .tx)) | max_by(.snr_db) | .station_id' "$tmp/events.jsonl")
    [ "$chosen" = "$best" ] || err "$id/$mc: the core chose $chosen, the best SNR with the first frame is $best"
    echo "B-procedure $id/$mc ($(echo "$dec" | jq -r .mode) mode): downlink by $chosen ($(echo "$dec" | jq -r .payload))"
    [ "$(echo "$dec" | jq -r .payload)" = "${want_dl[$id]}" ] || err "$id/$mc: decided payload $(echo "$dec" | jq -r .payload), expected ${want_dl[$id]}"
    # the others were told to decline at once
    for st in "${stations[@]}"; do
        [ "$st" = "$chosen" ] && continue
        jq -s -e --arg id "$id" --argjson mc "$mc" --arg s "$st" 'map(select(.type == "downlink_refused"
            and .ep_id == $id and .mc == $mc and .station_id == $s and .status == "declined")) | length == 1' \
            "$tmp/events.jsonl" >/dev/null || err "$id/$mc: no declined downlink_refused from $st"
    done
    # only the chosen station wrote a downlink for it
    for st in "${stations[@]}"; do
        f=$(grep -l "\"ep_id\": *\"$id\"" "$tmp/dl-$st"/*.json 2>/dev/null | head -1)
        if [ "$st" != "$chosen" ]; then
            [ -z "$f" ] || err "$id/$mc: $st wrote a downlink too ($f)"
            continue
        fi
        [ -n "$f" ] || { err "$id/$mc: no downlink file at $chosen: $(ls "$tmp/dl-$st")"; continue; }
        t0=$(jq -r .t_first_sample_s "$f")
        dl=$("$bin/sigfox-dlrx" --id "$id" --mc "$mc" --keys "$keys" --time-offset "$t0" "${f%.json}" 2>"$tmp/dlrx.err")
        echo "$dl" | jq_e --arg p "${want_dl[$id]}" '.payload == $p and .auth == "ok" and .crc_ok' >/dev/null ||
            err "$id/$mc: DL decode: $dl $(cat "$tmp/dlrx.err")"
        # inside the device's receive window as the chosen station hears the scene
        win=$(jq -r --arg id "$id" --argjson mc "$mc" 'select(.type == "bproc" and .ep_id == $id and .mc == $mc)
            | "\(.window_start_s) \(.window_end_s)"' "$tmp/$chosen.truth.jsonl")
        t=$(echo "$dl" | jq -r .t_start_s)
        awk -v t="$t" -v w="$win" 'BEGIN { split(w, a, " "); exit !(t >= a[1] && t + 224 / 600 <= a[2]) }' ||
            err "$id/$mc: DL at $t s outside the window $win"
    done
    jq -s -e --arg id "$id" --argjson mc "$mc" --arg s "$chosen" 'map(select(.type == "downlink_ack"
        and .ep_id == $id and .mc == $mc and .station_id == $s and .conf_mc == ($mc + 1) % 4096))
        | length == 1' "$tmp/events.jsonl" >/dev/null ||
        err "$id/$mc: no downlink_ack from $chosen at the core: $(jq -c --arg id "$id" 'select(.ep_id == $id and (.type | startswith("downlink"))) | {type, station_id, mc, status}' "$tmp/events.jsonl" | head -8)"
done <"$tmp/bprocs"
[ "$(stat dl_acks)" = "$(wc -l <"$tmp/bprocs")" ] || err "stats.dl_acks $(stat dl_acks), expected $(wc -l <"$tmp/bprocs")"

# ---- 3. anti-replay across stations: st-b's capture again, after the dedup window ---------
wait_s=$(awk -v e="$run1_end" -v n="$EPOCHREALTIME" 'BEGIN { w = e + 6 - n; print (w > 0 ? w : 0) }')
sleep "$wait_s"
before=$(stat messages)
mkdir -p "$tmp/dl-again"
station st-b "$tmp/st-b.sigmf-meta" "$tmp/spool-st-b" "$tmp/dl-again" "$tmp/out-again" "$tmp/err-again" ||
    err "station st-b again: $(tail -3 "$tmp/err-again")"
again() { [ "$(jq -r 'select(.type == "replay") | .mc' "$tmp/events.jsonl" | wc -l)" -ge "$(awk '$3 == "st-b"' "$tmp/heard_lines" | wc -l)" ]; }
wait_for 5 again
n_again=$(awk '$3 == "st-b"' "$tmp/heard_lines" | wc -l)
n_replay=$(jq -r 'select(.type == "replay") | "\(.ep_id) \(.mc)"' "$tmp/events.jsonl" | sort -u | wc -l)
[ "$n_replay" = "$n_again" ] || err "replayed capture: $n_replay replay events for the $n_again messages st-b heard"
[ "$(jq -r 'select(.type == "message") | .mc' "$tmp/events.jsonl" | wc -l)" = "$n_truth" ] ||
    err "the replayed capture gave new message events"
[ "$(stat messages)" = "$before" ] || err "stats.messages $before -> $(stat messages) after the replayed capture"
ls "$tmp/dl-again"/*.cf32 >/dev/null 2>&1 && err "a downlink was sent for a replayed B-procedure"
echo "replayed capture of st-b: $n_replay replay events, no new message"

kill "$sub" "$ns" "$app" 2>/dev/null
wait "$sub" "$ns" "$app" 2>/dev/null
grep -q "Core stopped" "$tmp/ns.log" || err "sigfox-ns did not stop cleanly: $(tail -3 "$tmp/ns.log")"
echo "wall time: $(elapsed) s"
finish network_e2e
