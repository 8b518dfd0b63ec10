#!/bin/bash
# soft_network_e2e: soft combining across stations, end to end. One synthesized scene (RC1,
# both baud rates) heard by two stations at low Eb/N0 with their own noise
# (sigfox-synth --station-noise-seed), two real sigfoxd stations replaying their captures
# in real time with receiver.publish_soft (--publish-soft) and NO device keys, one sigfox-ns
# on SQLite with the keys. Checks:
#  - the stations send soft frames and the core refuses none of them;
#  - the core decodes frames from the sum of both stations' soft values (log line and
#    stats.soft.frames_decoded), each of a message of the truth;
#  - every message the core delivers is in the truth (no false message), exactly once;
#  - at least one delivered message was decoded by neither station alone (their own
#    frame and message events): the combining, not a station, recovered it;
#  - with soft.enabled = false the same stations' soft frames are ignored (no decoding);
#  - in memory (sigfox-nsbench soft: 20 stations, 10 messages/s, replicas at 3-10 % raw bit
#    errors, noise soft frames), >= 95 % of the messages are recovered, no station is
#    credited with another device's frame and nothing false is accepted.
# Licence: MIT. Run from the repo root with BUILD=<build dir>.
set -u
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
BUILD=${BUILD:-build}
bin=$BUILD/bin
need_jq

# ---- in memory first (one second) -----------------------------------------------------------
run_cmd 0 "$bin/sigfox-nsbench" soft --stations 20 --rate 10 --seconds 20 --repeat 1 || true
echo "sigfox-nsbench soft: $out"
jq_e '.messages_recovered >= 0.95 * .messages and .wrong_credits == 0 and .false_messages == 0' \
    <<<"$out" || err "sigfox-nsbench soft: $out"

# ---- the scene, as two stations hear it: Eb/N0 1..4 dB, where a station alone loses about
# half of the messages -----------------------------------------------------------------------
scene=(--rc 1 --rate 250k --duration 30 --devices 12 --interval 6 --ebn0 1:4 --seed 5)
stations=(st-a st-b)
declare -A view=([st-a]="--station-noise-seed 101" [st-b]="--station-noise-seed 102 --station-freq 700")
for st in "${stations[@]}"; do
    # shellcheck disable=SC2086 # the view is a list of options
    "$bin/sigfox-synth" -o "$tmp/$st" --format sigmf --sigmf-datatype cs16 "${scene[@]}" ${view[$st]} \
        2>"$tmp/synth-$st.err" || { echo "FAIL: sigfox-synth $st: $(cat "$tmp/synth-$st.err")"; exit 1; }
done
truth=$tmp/st-a.truth.jsonl
jq -r -s 'map(select(.type == "burst")) | group_by(.message)[] | .[0] | "\(.ep_id) \(.mc)"' \
    "$truth" | sort >"$tmp/truth_msgs"

# ---- keys and the core ---------------------------------------------------------------------
"$bin/sigfox-ns" keygen --out "$tmp/core" >/dev/null || err "keygen core"
ns_stations=()
for st in "${stations[@]}"; do
    "$bin/sigfox-ns" keygen --out "$tmp/$st" >/dev/null || err "keygen $st"
    ns_stations+=(--station "$st=$(cat "$tmp/$st.pub")")
done
listen=ipc://$tmp/stations pub=ipc://$tmp/events cmd=ipc://$tmp/commands
# A replay's bursts carry no wall-clock time, so the core groups soft frames by their
# arrival: the two stations start together, and 1 s covers their difference in start and
# reporting (live stations with NTP or GPS keep the default 0.25 s).
core() { # name enabled
    printf 'soft: { enabled = %s; time_tolerance_s = 1.0; };\n' "$2" >"$tmp/ns-$1.conf"
    "$bin/sigfox-ns" -c "$tmp/ns-$1.conf" --listen "$listen" --secret-key-file "$tmp/core.key" \
        "${ns_stations[@]}" --storage "sqlite://$tmp/ns-$1.db" --keys "$tmp/st-a.keys" --pub "$pub" \
        --cmd "$cmd" --instance "$1" --log-level info >"$tmp/ns-$1.log" 2>&1 &
    ns=$!
    pids+=("$ns")
    ns_up() { "$bin/sigfox-sub" --cmd "$cmd" stats --timeout 0.2 >/dev/null 2>&1; }
    wait_for 10 ns_up || { echo "FAIL: sigfox-ns did not start: $(tail -5 "$tmp/ns-$1.log")"; exit 1; }
    "$bin/sigfox-sub" --pub "$pub" --json --timeout 120 >"$tmp/events-$1.jsonl" 2>/dev/null &
    sub=$!
    pids+=("$sub")
    sleep 0.5 # the subscription reaches the core (ZeroMQ slow joiner)
}
stations_run() { # name
    printf 'core: { shutdown_wait_s = 15; };\n' >"$tmp/station.conf"
    local spids=() st
    for st in "${stations[@]}"; do
        "$bin/sigfoxd" --config "$tmp/station.conf" --replay "$tmp/$st.sigmf-meta" --replay-speed 1 \
            --state-dir "" --station-id "$st" --core "$listen" --core-key "$(cat "$tmp/core.pub")" \
            --core-secret-key-file "$tmp/$st.key" --spool-dir "$tmp/spool-$1-$st" --publish-soft \
            --publish-soft-max 50 --log-level notice >"$tmp/out-$1-$st" 2>"$tmp/err-$1-$st" &
        spids+=($!)
        pids+=($!)
    done
    for i in "${!spids[@]}"; do
        wait "${spids[$i]}" || err "station ${stations[$i]} exit $?: $(tail -3 "$tmp/err-$1-${stations[$i]}")"
    done
}
stat() { "$bin/sigfox-sub" --cmd "$cmd" stats | jq -r ".stats.$1"; }
stop_core() { sleep 1; kill "$sub" "$ns" 2>/dev/null; wait "$ns" 2>/dev/null; }

# ---- soft combining on -------------------------------------------------------------------
core on true
t0=$EPOCHREALTIME
stations_run on
echo "2 stations replayed in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
sleep 1 # the last soft frames and their transaction
n_soft=0
for st in "${stations[@]}"; do
    n=$(jq -s 'map(select(.type == "softframe")) | length' "$tmp/out-on-$st")
    echo "$st: $(jq -r 'select(.type == "message") | .mc' "$tmp/out-on-$st" | wc -l) messages, $n soft frames"
    n_soft=$((n_soft + n))
done
[ "$n_soft" -ge 10 ] || err "the stations published only $n_soft soft frames"
[ "$(stat soft.softframes_in)" -ge 10 ] || err "the core took $(stat soft.softframes_in) soft frames"
[ "$(stat softframes_refused)" = 0 ] || err "the core refused $(stat softframes_refused) soft frames"
decoded=$(stat soft.frames_decoded)
echo "core: $(stat soft.softframes_in) soft frames, $(stat soft.groups_tried) decodings, $decoded frames decoded ($(stat soft.frames_corrected) corrected by the chase decoder)"
[ "$decoded" -ge 1 ] || err "no frame decoded by soft combining"
stop_core
sed -n 's/.*Frame recovered by soft combining, device: \([0-9A-F]*\), mc: \([0-9]*\),.*/\1 \2/p' \
    "$tmp/ns-on.log" | sort -u >"$tmp/soft_msgs"
[ -s "$tmp/soft_msgs" ] || err "no 'Frame recovered by soft combining' in the core's log"
while read -r id mc; do
    grep -qx "$id $mc" "$tmp/truth_msgs" || err "soft combining decoded $id $mc, which nobody sent"
done <"$tmp/soft_msgs"
jq -r 'select(.type == "message") | "\(.ep_id) \(.mc)"' "$tmp/events-on.jsonl" | sort >"$tmp/core_msgs"
[ -z "$(uniq -d "$tmp/core_msgs")" ] || err "messages delivered twice: $(uniq -d "$tmp/core_msgs")"
extra=$(comm -13 "$tmp/truth_msgs" <(uniq "$tmp/core_msgs"))
[ -z "$extra" ] || err "messages delivered that are not in the truth: $extra"
for st in "${stations[@]}"; do
    jq -r 'select((.type == "frame" and .crc_ok) or .type == "message") | "\(.ep_id) \(.mc)"' \
        "$tmp/out-on-$st"
done | sort -u >"$tmp/station_msgs"
only_soft=$(comm -23 <(uniq "$tmp/core_msgs") "$tmp/station_msgs")
n_only=$(printf '%s' "$only_soft" | grep -c .)
echo "truth $(wc -l <"$tmp/truth_msgs") messages; stations alone $(wc -l <"$tmp/station_msgs");" \
    "core $(uniq "$tmp/core_msgs" | wc -l), of which $n_only recovered only by soft combining"
[ "$n_only" -ge 1 ] || err "no message was recovered that neither station decoded alone"
while read -r id mc; do
    [ -z "$id" ] && continue
    grep -qx "$id $mc" "$tmp/soft_msgs" || err "$id $mc: delivered, decoded by no station, no soft combining"
done <<<"$only_soft"

# ---- soft combining off: the same soft frames are ignored -----------------------------------
core off false
stations_run off
sleep 1
[ "$(stat soft)" = null ] || err "soft.enabled = false: the core still reports soft combining"
stop_core
grep -q "recovered by soft combining" "$tmp/ns-off.log" && err "soft.enabled = false: frames still recovered"
jq -r 'select(.type == "message") | "\(.ep_id) \(.mc)"' "$tmp/events-off.jsonl" | sort -u >"$tmp/core_off"
echo "without soft combining the core delivered $(wc -l <"$tmp/core_off") messages"
[ "$(wc -l <"$tmp/core_off")" -lt "$(uniq "$tmp/core_msgs" | wc -l)" ] ||
    err "soft combining delivered no more messages than without it"
finish soft_network_e2e
