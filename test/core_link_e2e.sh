#!/bin/bash
# core_link_e2e: `sigfoxd --replay` with core.endpoint pointing at a real ZeroMQ ROUTER +
# CURVE + ZAP peer (test/corepeer.py, pyzmq): every CRC-valid frame the replay prints arrives
# at the core exactly once, in batches of 1..100, with station_id and the container; the
# peer drops the connection without acking -> everything arrives at its successor, nothing
# lost; an unknown station key is refused (log line, frames stay spooled) and the spool is
# resent in seq order after a station restart; with sigfox-ns built, the real core's message
# log equals the station's messages. Licence: MIT.
# Run from the repo root with BUILD=<abs build dir>.
set -u
SFX="${BUILD:?set BUILD}/bin/sigfoxd"
SYNTH="$BUILD/bin/sigfox-synth"
PEER="$(cd "$(dirname "$0")" && pwd)/corepeer.py"
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
need_jq
PY=/usr/bin/python3 # Debian's, with python3-zmq (scripts/install-deps.sh)
$PY -c 'import zmq; assert zmq.has("curve")' || { echo "FAIL: python3-zmq with CURVE is missing"; exit 1; }

cap="$tmp/cap_868.13M_250k.cu8"
# Eb/N0 4..20 dB: some replicas decode only jointly (soft combining of the others).
"$SYNTH" -o "$cap" --rate 250k --duration 20 --devices 40 --interval 4 --seed 7 --ebn0 4:20 \
    2>"$tmp/synth.err" ||
    { echo "FAIL: sigfox-synth: $(cat "$tmp/synth.err")"; exit 1; }
read -r core_pub core_sec < <($PY "$PEER" keygen)
read -r st_pub st_sec < <($PY "$PEER" keygen)
read -r other_pub _ < <($PY "$PEER" keygen)
printf '# station-A\nsecret: %s\n' "$st_sec" >"$tmp/station.key"
chmod 600 "$tmp/station.key"

# Starts the peer (extra args passed on) and waits for its port. Sets peer_pid and port.
start_peer() { # log allowed-key [args...]
    local log=$1 allow=$2
    shift 2
    rm -f "$tmp/port"
    $PY "$PEER" serve --secret="$core_sec" --allow="$allow" --port-file "$tmp/port" \
        --log "$log" ${port:+--port "$port"} "$@" 2>>"$tmp/peer.err" &
    peer_pid=$!
    pids+=("$peer_pid")
    for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
    port=$(cat "$tmp/port")
}

# sigfoxd --replay with the core link; wait_s = core.shutdown_wait_s (a file-only key).
run_station() { # out err spool wait_s
    printf 'core: { shutdown_wait_s = %s; };\n' "$4" >"$tmp/station.conf"
    "$SFX" --config "$tmp/station.conf" --replay "$cap" --keys "$cap.keys" --state-dir "" \
        --station-id station-A --core "tcp://127.0.0.1:$port" --core-key "$core_pub" \
        --core-secret-key-file "$tmp/station.key" --spool-dir "$3" >"$1" 2>"$2"
}

frames_printed() { # out: one line per CRC-valid frame event and per joint-recovered replica
    jq -r 'if .type == "frame" and .crc_ok then "\(.ep_id) \(.mc) \(.rank) \(.t_start_s)"
        elif .type == "message" or .type == "replay" then
            . as $m | .replicas[] | select(.joint) | "\($m.ep_id) \($m.mc) \(.rank) \(.t_start_s)"
        else empty end' "$1" | sort
}
frames_at_core() { # peer log
    jq -r 'select(.msg.type == "batch") | .msg.frames[] | "\(.ep_id) \(.mc) \(.rank) \(.t_start_s)"' "$1" | sort
}
spooled_files() { find "$1" -name '*.batch' 2>/dev/null | wc -l; }

# ---- 1. all frames, exactly once, batches of 1..100 ----------------------------------------
port=""
start_peer "$tmp/p1.log" "$st_pub"
run_station "$tmp/out1" "$tmp/err1" "$tmp/spool1" 5 || err "station run 1 failed: $(tail -3 "$tmp/err1")"
kill "$peer_pid" 2>/dev/null; wait "$peer_pid" 2>/dev/null
want=$(frames_printed "$tmp/out1")
n=$(echo "$want" | grep -c .)
[ "$n" -ge 100 ] || err "only $n frames decoded; the scene should give more than 100"
nj=$(jq -r 'select(.type == "message") | .replicas[] | select(.joint) | .rank' "$tmp/out1" | grep -c .)
[ "$nj" -ge 1 ] || err "no joint-recovered replica in the scene (the test needs some)"
jq_e -s '[.[] | select(.msg.type == "batch") | .msg.frames[] | select(.joint)] | length > 0' \
    "$tmp/p1.log" >/dev/null || err "no joint-recovered replica reached the core"
got=$(frames_at_core "$tmp/p1.log")
if [ "$want" != "$got" ]; then
    err "frames at the core differ from the frames decoded (< decoded, > core):"
    diff <(echo "$want") <(echo "$got") | head -10
fi
bad=$(jq -r 'select(.msg.type == "batch") | .msg | select((.frames | length) < 1 or (.frames | length) > 100)
    | .seq' "$tmp/p1.log")
[ -z "$bad" ] || err "batches with 0 or more than 100 frames: $bad"
bad=$(jq -r 'select(.msg.type == "batch") | .msg.frames[]
    | select(.station_id != "station-A" or (.container | test("^([0-9A-F]{2}){8,20}$") | not)
             or .crc_ok != true or .ul_crc == null) | "\(.ep_id) \(.mc)"' "$tmp/p1.log")
[ -z "$bad" ] || err "frames without station_id, container, ul_crc or crc_ok: $bad"
bad=$(jq -r 'select(.msg.type == "batch") | .msg.frames[] | select(.bf and (.tx | type) != "boolean")
    | "\(.ep_id) \(.mc)"' "$tmp/p1.log")
[ -z "$bad" ] || err "BF=1 frames without the station's tx view: $bad"
[ "$(jq -r 'select(.user_id != "station-A") | .user_id' "$tmp/p1.log")" = "" ] ||
    err "messages not authenticated as station-A"
[ "$(head -1 "$tmp/p1.log" | jq -r '.msg.type + " " + .msg.station_id')" = "hello station-A" ] ||
    err "the first message is not hello: $(head -c 300 "$tmp/p1.log")"
seqs=$(jq -r 'select(.msg.type == "batch") | .msg.seq' "$tmp/p1.log" | tr '\n' ' ')
[ "$seqs" = "$(jq -r 'select(.msg.type == "batch") | .msg.seq' "$tmp/p1.log" | sort -n | uniq | tr '\n' ' ')" ] ||
    err "batch seqs not strictly increasing: $seqs"
[ "$(spooled_files "$tmp/spool1")" = 0 ] || err "acked batches left in the spool"
nostation=$(jq -r 'select(.station_id != "station-A") | .type' "$tmp/out1" | sort -u | tr '\n' ' ')
[ -z "$nostation" ] || err "events without station_id: $nostation"
grep -q "Core link stopped, frames: $n,.*acks: [1-9]" "$tmp/err1" || err "no link summary: $(grep -i core "$tmp/err1")"

# ---- 2. the core drops the connection without acking: nothing lost ----------------------
start_peer "$tmp/p2a.log" "$st_pub" --no-ack --exit-after-batches 1
run_station "$tmp/out2" "$tmp/err2" "$tmp/spool2" 20 &
station=$!
pids+=("$station")
wait "$peer_pid" 2>/dev/null # gone after the first batch, unacked
start_peer "$tmp/p2b.log" "$st_pub"
wait "$station" || err "station run 2 failed: $(tail -3 "$tmp/err2")"
kill "$peer_pid" 2>/dev/null; wait "$peer_pid" 2>/dev/null
want=$(frames_printed "$tmp/out2")
got=$(frames_at_core "$tmp/p2b.log" | uniq)
if [ "$want" != "$got" ]; then
    err "after the disconnect, frames missing at the new core (< decoded, > core):"
    diff <(echo "$want") <(echo "$got") | head -10
fi
first=$(jq -r 'select(.msg.type == "batch") | .msg.seq' "$tmp/p2a.log" | head -1)
jq -r 'select(.msg.type == "batch") | .msg.seq' "$tmp/p2b.log" | grep -qx "${first:-none}" ||
    err "the unacked batch $first was not resent with its seq"
[ "$(spooled_files "$tmp/spool2")" = 0 ] || err "batches left in the spool after run 2"
grep -q "Core link down" "$tmp/err2" || err "the disconnect was not logged"

# ---- 3. unknown station key: refused, logged, frames stay spooled ------------------------
port=""
start_peer "$tmp/p3.log" "$other_pub"
run_station "$tmp/out3" "$tmp/err3" "$tmp/spool3" 3 || err "station run 3 failed: $(tail -3 "$tmp/err3")"
kill "$peer_pid" 2>/dev/null; wait "$peer_pid" 2>/dev/null
grep "Core refused this station's key" "$tmp/err3" | grep -qF "public_key: $st_pub" ||
    err "no log line for the refused key: $(grep -i core "$tmp/err3")"
grep -qF "refused station key $st_pub" "$tmp/peer.err" || err "the peer did not see the refused key"
[ ! -s "$tmp/p3.log" ] || err "a refused station's messages reached the core"
n3=$(frames_printed "$tmp/out3" | grep -c .)
spooled=$(for f in "$tmp"/spool3/*.batch; do head -1 "$f"; done | awk '$1 == "SFSPOOL" {n += $4} END {print n + 0}')
[ "$spooled" = "$n3" ] || err "spooled frames $spooled, decoded $n3"

# ---- 4. the key is accepted now: after a restart the spool goes first, in seq order -------
start_peer "$tmp/p4.log" "$st_pub"
run_station "$tmp/out4" "$tmp/err4" "$tmp/spool3" 5 || err "station run 4 failed: $(tail -3 "$tmp/err4")"
kill "$peer_pid" 2>/dev/null; wait "$peer_pid" 2>/dev/null
seqs=$(jq -r 'select(.msg.type == "batch") | .msg.seq' "$tmp/p4.log")
[ "$(echo "$seqs" | head -1)" = 1 ] || err "the spooled batch 1 was not sent first: $(echo "$seqs" | head -3)"
[ "$seqs" = "$(echo "$seqs" | sort -n)" ] || err "batches not in seq order after the restart"
want=$( (frames_printed "$tmp/out3"; frames_printed "$tmp/out4") | sort)
got=$(frames_at_core "$tmp/p4.log")
[ "$want" = "$got" ] || err "after the restart: $(diff <(echo "$want") <(echo "$got") | head -5)"
[ "$(spooled_files "$tmp/spool3")" = 0 ] || err "batches left in the spool after run 4"

# ---- 5. the real core (sigfox-ns, SQLite): every message the station decoded, once -------
NS="$BUILD/bin/sigfox-ns"
SUB="$BUILD/bin/sigfox-sub"
if [ -x "$NS" ]; then
    "$NS" keygen --out "$tmp/core" >/dev/null || err "sigfox-ns keygen failed"
    "$NS" keygen --out "$tmp/st" >/dev/null || err "sigfox-ns keygen failed"
    port=$(free_port) cmd="tcp://127.0.0.1:$(free_port)"
    "$NS" --no-config --listen "tcp://127.0.0.1:$port" --secret-key-file "$tmp/core.key" \
        --station "station-A=$(cat "$tmp/st.pub")" --storage "sqlite://$tmp/ns.db" \
        --keys "$cap.keys" --cmd "$cmd" --pub "" --instance e2e >"$tmp/ns.log" 2>&1 &
    ns=$!
    pids+=("$ns")
    for _ in $(seq 50); do "$SUB" --cmd "$cmd" stats --timeout 0.2 >/dev/null 2>&1 && break; sleep 0.1; done
    printf 'core: { shutdown_wait_s = 10; };\n' >"$tmp/station.conf"
    "$SFX" --config "$tmp/station.conf" --replay "$cap" --state-dir "" --station-id station-A \
        --core "tcp://127.0.0.1:$port" --core-key "$(cat "$tmp/core.pub")" \
        --core-secret-key-file "$tmp/st.key" --spool-dir "$tmp/spool5" >"$tmp/out5" 2>"$tmp/err5" ||
        err "station run 5 failed: $(tail -3 "$tmp/err5")"
    [ "$(spooled_files "$tmp/spool5")" = 0 ] || err "the real core did not ack everything: $(grep -i core "$tmp/err5")"
    # The station ran without keys: the core authenticated every message itself. Compared
    # with this run's own output: with keys (runs 1-4) the station also corrects frames
    # whose CRC failed (chase decoder), which a keyless station cannot.
    want=$(jq -r 'select(.type == "message") | "\(.ep_id) \(.mc)"' "$tmp/out5" | sort)
    "$SUB" --cmd "$cmd" '{"cmd":"messages","limit":10000}' >"$tmp/ns_messages.json" || err "messages command"
    got=$(jq -r '.messages[] | "\(.ep_id) \(.mc)"' "$tmp/ns_messages.json" | sort)
    [ "$want" = "$got" ] || err "messages at sigfox-ns differ from the station's (< station, > core): $(diff <(echo "$want") <(echo "$got") | head -8)"
    bad=$(jq -r '.messages[] | select(.nstations != 1) | "\(.ep_id) \(.mc)"' "$tmp/ns_messages.json")
    [ -z "$bad" ] || err "messages without exactly one station: $bad"
    kill "$ns" 2>/dev/null
    wait "$ns" 2>/dev/null
    echo "real core: $(echo "$got" | grep -c .) messages, as decoded by the station"
else
    echo "real core: $NS not built, section 5 skipped"
fi

finish core_link_e2e
