#!/bin/bash
# demo: synthesize a busy RC1 capture (several devices, both baud rates, replicas,
# 1-bit and control messages, an interferer), play it through the SoapySDR iqfile
# driver in real time as if it were a radio, and print the messages sigfoxd publishes
# over ZeroMQ as they are decoded, and score them against the synthesizer's truth.
# Then a B-procedure end to end (replayed, as fast as the CPU allows): an uplink that
# asks for a downlink is decoded, the downlink is built, GFSK-modulated and written by the
# file sink, sigfox-dlrx demodulates and authenticates it, and the device's confirmation
# frame T_CONF later turns into a downlink_ack event.
# Last, the network: one synthesized scene as three stations hear it (sigfox-synth
# --station-*: other levels, carrier offsets, delays, noise), three sigfoxd stations playing
# their captures through the iqfile driver in real time, connected to one sigfox-ns (SQLite,
# CURVE keys from `sigfox-ns keygen`), and a small local HTTP application (python3) that
# prints each DATA callback as it arrives: every message once, with the stations that heard
# it. The status page's URL is printed; on a terminal the network stays up until Enter.
# Verdict (last line, and the exit status): PASS only when every frame the synthesizer
# sent at Eb/N0 >= DEMO_MIN_EBN0 dB (not collided, not hit by the interferer) was decoded
# with exact fields, every message too, and nothing false; otherwise FAIL, with how many
# frames were missed and why.
# Usage: scripts/demo.sh [BUILD_DIR]   env: DEMO_DIR (default BUILD_DIR/demo),
#        DEMO_SECONDS (default 20), DEMO_DEVICES (default 8), DEMO_SEED (default 7),
#        DEMO_MIN_EBN0 (default 10), DEMO_NET_SECONDS (default 24)
# Licence: MIT.
set -eu
build=$(cd "${1:-build}" && pwd)
dir=${DEMO_DIR:-$build/demo}
secs=${DEMO_SECONDS:-20}
devices=${DEMO_DEVICES:-8}
seed=${DEMO_SEED:-7}
min_ebn0=${DEMO_MIN_EBN0:-10}
net_secs=${DEMO_NET_SECONDS:-24}
bin=$build/bin
mkdir -p "$dir"
rm -f "$dir"/events.jsonl "$dir"/state/* 2>/dev/null || true
export SOAPY_SDR_PLUGIN_PATH="$build/soapy"
events="ipc://$dir/events"
commands="ipc://$dir/commands"
cap="$dir/rc1.cu8"

echo "== 1. Synthesizing a ${secs} s RC1 capture at 1.024 MS/s (cu8, RTL-SDR format), $devices devices"
"$bin/sigfox-synth" -o "$cap" --rc 1 --rate 1024k --duration "$secs" --devices "$devices" \
    --interval $((secs / 3)) --ebn0 10:25 --cw 1 --seed "$seed"
echo "   truth: $cap.truth.jsonl ($(wc -l <"$cap.truth.jsonl") lines), keys: $cap.keys"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "== 2. sigfoxd on driver=iqfile (the capture played in real time as a radio);"
echo "      sigfox-sub prints each message event from $events"
"$bin/sigfox-sub" --pub "$events" --topic message &
pids+=($!)
"$bin/sigfox-sub" --pub "$events" --json --topic frame --topic message >"$dir/events.jsonl" &
pids+=($!)
sleep 0.3
"$bin/sigfoxd" --no-config --device "driver=iqfile,path=$cap,throttle=1" --rate 1024k \
    --center-freq 868.13M --rc RC1 --keys "$cap.keys" --pub "$events" --cmd "$commands" \
    --state-dir "$dir/state" --log-level notice
sleep 0.5
cleanup
pids=()

echo "== 3. Score against the synthesizer's truth (sigfox-score: every frame at >= $min_ebn0 dB"
echo "      and every message decoded exactly, no false frames)"
score=(--truth "$cap.truth.jsonl" --min-ebn0 "$min_ebn0" --expect-all --frames --max-false 0)
score_rc=0
"$bin/sigfox-score" "${score[@]}" "$dir/events.jsonl" || score_rc=$?
# The same scoring as one JSON object, for the verdict's summary.
"$bin/sigfox-score" "${score[@]}" --list -1 --json "$dir/events.jsonl" >"$dir/score.json" 2>/dev/null || true

echo "== 4. B-procedure: one device asks for a downlink (RC1, 3 frames), then confirms it"
bp="$dir/bproc"
rm -rf "$bp-dl" && mkdir -p "$bp-dl"
"$bin/sigfox-synth" -o "$bp.cs16" --rate 250k --duration 32 --devices 1 --interval 60 \
    --bf 1 --one-bit 0 --keepalive 0 --dl-confirmation 0 --single-frame 0 --bproc-confirm \
    --ebn0 15 --seed "$seed" 2>/dev/null
ep=$(awk '!/^#/ {print $1; exit}' "$bp.cs16.keys")
# The device gets a fixed payload ("direct" mode); without it sigfoxd would publish a
# downlink_request and wait for an application's answer on the command socket.
echo "devices: { list = ( { ep_id = \"$ep\"; downlink_payload = \"C0FFEE0123456789\"; } ); };" >"$bp.conf"
"$bin/sigfoxd" -c "$bp.conf" --replay "$bp.cs16" --rate 250k --center-freq 868.13M \
    --keys "$bp.cs16.keys" --tx-file "$bp-dl" --log-level warning |
    jq -c 'select(.type != "frame") | {type, ep_id, mc, kind, payload, freq_hz, t_start_s}'
echo "   the written downlink, demodulated and authenticated by sigfox-dlrx:"
for f in "$bp-dl"/dl_*.cf32; do
    "$bin/sigfox-dlrx" --id "$ep" --keys "$bp.cs16.keys" "$f" |
        jq -c '{ep_id, mc, payload, crc_ok, auth, freq_hz}'
done
echo "   where it had to be (synthesizer truth: device window and first carrier + 1.395 MHz):"
jq -c 'select(.type == "bproc") | {window_start_s, window_end_s, dl_freq_hz}' "$bp.cs16.truth.jsonl"

echo "== 5. The network: one scene heard by three stations, one sigfox-ns, an application"
net="$dir/net"
rm -rf "$net" && mkdir -p "$net"
stations=(st-north st-east st-south)
declare -A view=(
    [st-north]="--station-ebn0 3 --station-freq 0 --station-delay 0 --station-noise-seed 11"
    [st-east]="--station-ebn0 0 --station-freq 1200 --station-delay 0.002 --station-noise-seed 12"
    [st-south]="--station-ebn0 -5 --station-freq -800 --station-delay 0.04 --station-noise-seed 13")
declare -A about=([st-north]="3 dB louder, on frequency" [st-east]="1.2 kHz off, 2 ms later"
    [st-south]="5 dB weaker, 800 Hz low, 40 ms later")
for st in "${stations[@]}"; do
    # shellcheck disable=SC2086 # the view is a list of options
    "$bin/sigfox-synth" -o "$net/$st" --format sigmf --sigmf-datatype cs16 --rc 1 --rate 250k \
        --duration "$net_secs" --devices 6 --interval $((net_secs / 3)) --ebn0 12:22 \
        --one-bit 0 --seed "$seed" ${view[$st]} 2>/dev/null
    echo "   $st hears the scene ${about[$st]}: $net/$st.sigmf-meta"
done
"$bin/sigfox-ns" keygen --out "$net/core" >/dev/null
for st in "${stations[@]}"; do "$bin/sigfox-ns" keygen --out "$net/$st" >/dev/null; done
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
rest_port=$(free_port)
# The application: prints every DATA callback as it arrives, keeps them for the verdict.
python3 -u - "$net/app.port" "$net/callbacks.jsonl" <<'PYEOF' &
import http.server, json, sys
class App(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        self.send_response(204)
        self.end_headers()
        try:
            m = json.loads(body)
            heard = ', '.join('%s (SNR %.1f dB)' % (s['bsId'], s['snr']) for s in m['stations'])
            print('   DATA callback: device %s seq %4d data %-24s heard by %s'
                  % (m['device'], m['seqNumber'], m['data'] or '-', heard), flush=True)
        except (ValueError, KeyError, TypeError) as e:
            print('   DATA callback (unreadable: %s): %r' % (e, body[:200]), flush=True)
        with open(sys.argv[2], 'ab') as f:
            f.write(body.strip() + b'\n')
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(('127.0.0.1', 0), App)
with open(sys.argv[1], 'w') as f:
    f.write(str(srv.server_address[1]))
srv.serve_forever()
PYEOF
pids+=($!)
for _ in $(seq 100); do [ -s "$net/app.port" ] && break; sleep 0.05; done
{
    printf 'ns: { listen = "ipc://%s/stations"; secret_key_file = "%s/core.key"; instance = "demo"; };\n' "$net" "$net"
    printf 'storage: { url = "sqlite://%s/ns.db"; };\n' "$net"
    printf 'api: { pub_endpoint = "ipc://%s/events"; cmd_endpoint = "ipc://%s/commands"; };\n' "$net" "$net"
    printf 'registry: { keys_file = "%s/st-north.keys"; };\n' "$net"
    printf 'stations: { list = ( '
    sep=""
    for st in "${stations[@]}"; do
        printf '%s{ id = "%s"; public_key = "%s"; }' "$sep" "$st" "$(cat "$net/$st.pub")"
        sep=", "
    done
    printf ' ); };\n'
    printf 'callbacks: { list = ( { name = "demo-app"; type = "DATA"; media = "simple"; method = "POST";\n'
    printf '    url = "http://127.0.0.1:%s/sigfox";\n' "$(cat "$net/app.port")"
    printf '    body = "{\\"device\\":\\"{device}\\",\\"seqNumber\\":{seqNumber},\\"data\\":\\"{data}\\",\\"time\\":{time},\\"stations\\":{stations}}"; } ); };\n'
    printf 'rest: { enabled = true; bind = "127.0.0.1"; port = %s; };\n' "$rest_port"
    printf 'log: { level = "warning"; };\n'
} >"$net/sigfox-ns.conf"
"$bin/sigfox-ns" -c "$net/sigfox-ns.conf" 2>"$net/sigfox-ns.log" &
ns_pid=$!
pids+=($ns_pid)
for _ in $(seq 100); do
    "$bin/sigfox-sub" --cmd "ipc://$net/commands" stats --timeout 0.2 >/dev/null 2>&1 && break
    sleep 0.1
done
# The core's own events: the later stations of each message come as message_update.
"$bin/sigfox-sub" --pub "ipc://$net/events" --json >"$net/events.jsonl" 2>/dev/null &
pids+=($!)
sleep 0.3
echo "   sigfox-ns: $net/sigfox-ns.conf (SQLite $net/ns.db); the stations play their captures now."
echo "   A DATA callback goes out at the first frame the core gets (seeds/000 §7.1.1.1): it names"
echo "   the station(s) known then; the others follow as message_update events."
st_pids=()
for st in "${stations[@]}"; do
    "$bin/sigfoxd" --no-config --device "driver=iqfile,path=$net/$st.sigmf-meta,throttle=1" \
        --rate 250k --center-freq 868.13M --rc RC1 --station-id "$st" \
        --core "ipc://$net/stations" --core-key "$(cat "$net/core.pub")" \
        --core-secret-key-file "$net/$st.key" --spool-dir "$net/spool-$st" \
        --state-dir "$net/state-$st" --pub "" --cmd "" --log-level error 2>"$net/$st.log" &
    st_pids+=($!)
    pids+=($!)
done
net_rc=0
for i in "${!st_pids[@]}"; do
    wait "${st_pids[$i]}" || { echo "   ${stations[$i]} failed: $(tail -2 "$net/${stations[$i]}.log")"; net_rc=1; }
done
sleep 2 # the last batches, their callbacks
echo "   every message, once, with all the stations that heard it (sigfox-ns's final view):"
jq -r -s 'map(select(.type == "message" or .type == "message_update")) | group_by(.msg_id)[]
    | .[-1] | "     \(.ep_id) seq \(.mc | tostring | (" " * (4 - length)) + .): "
        + ([.stations[] | "\(.station_id) (SNR \(.snr_db * 10 | round / 10) dB, replicas: \(.replicas))"]
           | join(", "))' "$net/events.jsonl"
net_all3=$(jq -r -s 'map(select(.type == "message" or .type == "message_update")) | group_by(.msg_id)[]
    | .[-1] | select((.stations | length) == 3) | .msg_id' "$net/events.jsonl" | wc -l)
net_msgs=$(jq -r 'select(.type == "message") | .msg_id' "$net/events.jsonl" | wc -l)
echo "   status page: http://127.0.0.1:$rest_port/ (REST API under /api/)"
# Each application message of the scene once, with every station that heard it.
jq -r -s 'map(select(.type == "burst" and .kind == "app")) | group_by(.message)[] | .[0]
    | "\(.ep_id) \(.mc)"' "$net/st-north.truth.jsonl" | sort >"$net/want"
touch "$net/callbacks.jsonl"
jq -r '"\(.device) \(.seqNumber)"' "$net/callbacks.jsonl" | sort >"$net/got"
net_dups=$(uniq -d "$net/got" | wc -l)
net_missing=$(comm -23 "$net/want" <(uniq "$net/got") | wc -l)
net_false=$(comm -13 "$net/want" <(uniq "$net/got") | wc -l)
[ "$net_dups" = 0 ] && [ "$net_missing" = 0 ] && [ "$net_false" = 0 ] || net_rc=1
if [ -t 0 ] && [ -t 1 ]; then
    read -r -p "   The network keeps running: open the status page, then press Enter to stop. " _ || true
fi
kill "$ns_pid" 2>/dev/null || true

echo "== Verdict"
if [ ! -s "$dir/score.json" ] || ! jq -e . "$dir/score.json" >/dev/null 2>&1; then
    echo "Result: FAIL (sigfox-score gave no result, exit $score_rc)"
    exit 1
fi
jq -r --arg e "$min_ebn0" '.groups.all as $g
    | "Frames at >= \($e) dB Eb/N0 (not collided or interfered): \($g.matched_expected_frames) of \($g.expected_frames) decoded, \($g.missed_expected_frames) missed; messages: \($g.matched_expected_messages) of \($g.expected_messages); false frames: \($g.false_frames)",
      (.missed_frames // [] | map(select(.expected)) | .[] | "  missed: \(.text)"),
      (.failures // [] | .[] | "  failed: \(.)")' "$dir/score.json"
echo "Network: $(wc -l <"$net/want") application messages in the scene, $(uniq "$net/got" | wc -l) DATA callbacks (missing: $net_missing, twice: $net_dups, not in the scene: $net_false); $net_msgs messages at sigfox-ns, $net_all3 heard by all 3 stations"
if [ "$score_rc" = 0 ] && [ "$net_rc" = 0 ] && jq -e '.pass' "$dir/score.json" >/dev/null; then
    echo "Result: PASS"
else
    echo "Result: FAIL"
    exit 1
fi
