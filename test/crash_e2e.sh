#!/bin/bash
# crash_e2e: anti-replay state survives SIGKILL (issue 15 defect 9). sigfoxd decodes live
# (the SoapySDR iqfile driver plays a recording in real time) and is killed with SIGKILL at
# a random moment, KILLS times, each run on a new recording of new devices, all runs on one
# state directory. A subscriber records every message event that left the daemon. Then:
#   - every restart loaded the state (0 corrupt state files; a damaged one stops the start);
#   - replaying every recording against the final state turns every published message into
#     a "replay" event: 0 published messages are missing from the persisted state, so no
#     frame that an application saw can be accepted again after a crash.
# Licence: MIT. Run from the repo root with BUILD=<abs build dir>; KILLS=n (default 30).
set -u
SFX="${BUILD:?set BUILD}/bin/sigfoxd"
SYNTH="$BUILD/bin/sigfox-synth"
SUB="$BUILD/bin/sigfox-sub"
export SOAPY_SDR_PLUGIN_PATH="$BUILD/soapy"
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
need_jq
KILLS=${KILLS:-30}
EV="ipc://$tmp/events"

# Recordings: 6 s at 250 kS/s, 40 devices each (new IDs per seed), BR600, high SNR.
: >"$tmp/all.keys"
for ((k = 0; k < KILLS; k++)); do
    "$SYNTH" -o "$tmp/c$k.cu8" --rate 250k --duration 6 --devices 40 --interval 0.5 --baud 600 \
        --ebn0 25:30 --seed $((1000 + k)) 2>"$tmp/synth.err" || { echo "FAIL: synth: $(cat "$tmp/synth.err")"; exit 1; }
    cat "$tmp/c$k.cu8.keys" >>"$tmp/all.keys"
done
grep -v '^#' "$tmp/all.keys" | sort -u -k1,1 >"$tmp/keys"
chmod 600 "$tmp/keys"

"$SUB" --json --pub "$EV" >"$tmp/events.jsonl" 2>"$tmp/sub.err" &
pids+=($!)
sleep 0.3
corrupt=0
RANDOM=15 # reproducible kill times
for ((k = 0; k < KILLS; k++)); do
    "$SFX" --no-config --device "driver=iqfile,path=$tmp/c$k.cu8,rate=250k,freq=868.13M,throttle=1" \
        --rate 250k --center-freq 868.13M --pub "$EV" --cmd "" --state-dir "$tmp/state" \
        --keys "$tmp/keys" >"$tmp/run$k.out" 2>"$tmp/run$k.err" &
    pid=$!
    pids+=("$pid")
    # 2.0 .. 5.5 s into a 6 s recording: in the middle of decoding.
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 2.0 + 3.5 * r / 32767 }')"
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid"
        corrupt=$((corrupt + 1))
        err "run $k: sigfoxd exited before the kill: $(tail -c 400 "$tmp/run$k.err")"
        continue
    fi
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null
done
sleep 0.5
# Every message that left a daemon, as "EPID MC".
jq -r 'select(.type == "message") | "\(.ep_id) \(.mc)"' "$tmp/events.jsonl" | sort -u >"$tmp/published"
npub=$(wc -l <"$tmp/published")
[ "$npub" -ge $((KILLS * 2)) ] || err "only $npub messages published in $KILLS runs: the test decodes too little"

# The final state must load, and every published message must now be a replay.
for ((k = 0; k < KILLS; k++)); do
    timeout 120 "$SFX" --no-config --replay "$tmp/c$k.cu8" --rate 250k --center-freq 868.13M \
        --state-dir "$tmp/state" --keys "$tmp/keys" >"$tmp/check$k.jsonl" 2>"$tmp/check$k.err" ||
        { corrupt=$((corrupt + 1)); err "check $k: the state does not load: $(tail -c 400 "$tmp/check$k.err")"; }
done
cat "$tmp"/check*.jsonl | jq -r 'select(.type == "message") | "\(.ep_id) \(.mc)"' | sort -u >"$tmp/accepted_again"
missing=$(comm -12 "$tmp/published" "$tmp/accepted_again" | wc -l)
echo "crash_e2e: kills: $KILLS, published messages: $npub, missing from the persisted state: $missing, corrupt state files: $corrupt"
[ "$missing" = 0 ] || err "$missing published messages were accepted again after the crash: $(comm -12 "$tmp/published" "$tmp/accepted_again" | head -5 | tr '\n' ' ')"
[ $corrupt = 0 ] || err "$corrupt runs found a corrupt or unloadable state"
finish crash_e2e
