#!/bin/bash
# softframe_e2e: sigfoxd --publish-soft, live through the SoapySDR "iqfile" driver
# (lossless, not paced) and subscribed over ZeroMQ with `sigfox-sub --topic softframe`.
# A synthesized scene in which one isolated BR100 burst is damaged after its FT (a random
# quarter of its symbols negated: the sync holds, the CRC fails) is played; then:
#  - with --publish-soft: exactly one softframe event, for the damaged burst: reason
#    crc_bad, its start and carrier, its FT read without error as the first hypothesis,
#    n_symbols the frame's 13 + body bits, soft values (base64 of signed bytes times
#    soft_scale) whose signs are the damaged bits as sent for nearly every bit and clearly
#    not the undamaged ones; the stats count it as published, none dropped;
#  - without it: no softframe event and none counted, the same frames decoded;
#  - sigfoxd --replay --publish-soft prints the same softframe event on stdout.
# Licence: MIT. Run from the repo root with BUILD=<abs build dir>; KEEP=1 keeps the temp dir.
set -u
SFX="${BUILD:?set BUILD}/bin/sigfoxd"
SYNTH="$BUILD/bin/sigfox-synth"
SUB="$BUILD/bin/sigfox-sub"
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
need_jq
command -v python3 >/dev/null || { echo "FAIL: python3 is missing"; exit 1; }
export SOAPY_SDR_PLUGIN_PATH="$BUILD/soapy"
export SOAPY_SDR_ROOT=/nonexistent
RATE=250000

# --- the scene: single frames, one BR100 burst damaged after its header ---------------------
cap="$tmp/scene"
"$SYNTH" -o "$cap" --format sigmf --sigmf-datatype cu8 --rate 250k --duration 10 --devices 5 \
    --interval 4 --single-frame 1 --one-bit 0 --ebn0 22:28 --seed 7 2>"$tmp/synth.log" ||
    { echo "FAIL: synth: $(cat "$tmp/synth.log")"; exit 1; }
dmg=$(isolated_burst "$cap.truth.jsonl" 100 1.0 9.5)
[ "$dmg" != null ] || { echo "FAIL: the scene has no isolated BR100 burst to damage"; exit 1; }
damage_burst "$cap.sigmf-data" "$RATE" "$dmg" random:5 || { echo "FAIL: could not damage the burst"; exit 1; }
dmg_t=$(jq -r .t_start_s <<<"$dmg")
dmg_f=$(jq -r .freq_hz <<<"$dmg")
dmg_ft=$(jq -r '.ft | ascii_upcase | ("0000" + .)[-4:]' <<<"$dmg")
dmg_id="$(jq -r '"\(.ep_id) \(.mc) \(.rank)"' <<<"$dmg")"
echo "damaged burst: $dmg_id at $dmg_t s, FT $dmg_ft"

# --- live runs (paced like a radio: a subscriber that joins late would miss events) -----------
EV="ipc://$tmp/events"
live() { # name topic-args sigfoxd-args...
    local name=$1 topics=$2 sub
    shift 2
    # shellcheck disable=SC2086 # topics are words
    "$SUB" --json --pub "$EV" $topics >"$tmp/$name.jsonl" 2>"$tmp/$name.sub.err" &
    sub=$!
    pids+=("$sub")
    sleep 0.3 # the subscriber connects once sigfoxd binds; a head start (ZeroMQ slow joiner)
    timeout 60 "$SFX" --no-config \
        --device "driver=iqfile,path=$cap.sigmf-meta,throttle=1,buffer_s=0" --rate 250k --lossless \
        --pub "$EV" --cmd "" --state-dir "" --stats-interval 0 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    local rc=$?
    [ $rc = 0 ] || err "$name: exit $rc: $(tail -5 "$tmp/$name.err")"
    # the final stats event comes after the receiver's last results
    wait_for 10 jq_e -s 'map(select(.type == "stats")) | length > 0' "$tmp/$name.jsonl" ||
        err "$name: no final stats event"
    kill -INT "$sub" 2>/dev/null
    wait "$sub" 2>/dev/null
}

live soft "--topic softframe --topic stats --topic frame" --publish-soft
live plain "" 

frames_soft=$(jq -r 'select(.type == "frame") | "\(.ep_id) \(.mc) \(.rank)"' "$tmp/soft.jsonl" | sort)
frames_plain=$(jq -r 'select(.type == "frame") | "\(.ep_id) \(.mc) \(.rank)"' "$tmp/plain.jsonl" | sort)
nframes=$(grep -c . <<<"$frames_plain")
[ "$nframes" -ge 4 ] || err "only $nframes frames decoded: $(tail -3 "$tmp/plain.err")"
[ "$frames_soft" = "$frames_plain" ] || err "--publish-soft changed the frames decoded"
grep -q "^$dmg_id\$" <<<"$frames_plain" && err "the damaged burst ($dmg_id) was decoded"

# --- with --publish-soft: exactly the damaged burst ----------------------------------------------
n=$(jq -c 'select(.type == "softframe")' "$tmp/soft.jsonl" | grep -c .)
[ "$n" = 1 ] || err "expected 1 softframe event, got $n: $(jq -c 'select(.type == "softframe") | {t_start_s, freq_hz, reason}' "$tmp/soft.jsonl")"
jq -c 'select(.type == "softframe")' "$tmp/soft.jsonl" | head -1 >"$tmp/sf.json"
# shellcheck disable=SC2016 # jq variables
jq_e --argjson t "$dmg_t" --argjson f "$dmg_f" --arg ft "$dmg_ft" --argjson rank "$(jq .rank <<<"$dmg")" '
    .format_version == 1 and .reason == "crc_bad" and .baud == 100
    and ((.t_start_s - $t) | fabs) < 0.005 and ((.freq_hz - $f) | fabs) < 5
    and (.symbol_rate - 100 | fabs) < 1 and .snr_db > 10 and (.sample_idx | type) == "number"
    and (.time_utc | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{6}Z$"))
    and .ft_rx == $ft and (.ft | length) == 3 and .ft[0].ft == $ft and .ft[0].distance == 0
    and .ft[0].rank == $rank and .ft[1].distance >= 5
    and .n_symbols == 13 + (.ft[0].container_bytes + 2) * 8
    and .soft_scale > 0 and (.soft | length) == ((.n_symbols + 2) / 3 | floor) * 4' \
    "$tmp/sf.json" >/dev/null || err "softframe event: $(cat "$tmp/sf.json")"
# Signs against the bits sent: the truth bitstream is the frame as modulated; bit k is the
# phase change from symbol k-1 to symbol k, so the receiver sees bit k flipped when exactly
# one of those two symbols was negated (the same random draw as damage_burst's).
python3 - "$tmp/sf.json" "$(jq -r .bitstream <<<"$dmg")" <<'PY' || err "soft values do not match the damaged burst"
import base64, json, random, sys
ev = json.load(open(sys.argv[1]))
air = bin(int(sys.argv[2], 16))[2:].zfill(len(sys.argv[2]) * 4)
n = ev["n_symbols"]
q = [b - 256 if b > 127 else b for b in base64.b64decode(ev["soft"], validate=True)]
assert len(q) == n, (len(q), n)
assert min(q) >= -127 and max(q) <= 127
llr = [v * ev["soft_scale"] for v in q]
sent = [int(c) for c in air[19:19 + n]]
rnd = random.Random(5)
neg = [False] * (19 + n + 1)
for k in range(32, 19 + n):
    neg[k] = rnd.random() < 0.25
dmg = [b ^ (neg[j + 19] != neg[j + 18]) for j, b in enumerate(sent)]
agree = sum((l > 0) == (b == 1) for l, b in zip(llr, dmg))
clean = sum((l > 0) == (b == 1) for l, b in zip(llr, sent))
print(f"soft values: {n}, signs agree with the damaged bits: {agree}, with the undamaged: {clean}")
sys.exit(0 if agree >= n - 3 and clean < 0.8 * n else 1)
PY
jq_e -s 'map(select(.type == "stats"))[-1] | .softframes_published == 1 and .softframes_dropped == 0' \
    "$tmp/soft.jsonl" >/dev/null || err "stats: $(jq -c 'select(.type == "stats") | {softframes_published, softframes_dropped}' "$tmp/soft.jsonl")"

# --- without it: none ----------------------------------------------------------------------------
n=$(jq -c 'select(.type == "softframe")' "$tmp/plain.jsonl" | grep -c .)
[ "$n" = 0 ] || err "$n softframe events without --publish-soft"
jq_e -s 'map(select(.type == "stats"))[-1] | .softframes_published == 0 and .softframes_dropped == 0' \
    "$tmp/plain.jsonl" >/dev/null || err "stats without --publish-soft count softframes"

# --- a replay prints the same event --------------------------------------------------------------
run_cmd 0 "$SFX" --no-config --replay "$cap.sigmf-meta" --publish-soft --state-dir ""
jq -c 'select(.type == "softframe")' "$tmp/out" >"$tmp/replay_sf.jsonl"
[ "$(grep -c . "$tmp/replay_sf.jsonl")" = 1 ] || err "replay: $(grep -c . "$tmp/replay_sf.jsonl") softframe events"
[ "$(jq -c '{sample_idx, freq_hz, n_symbols, soft_scale, soft, ft}' "$tmp/replay_sf.jsonl")" = \
    "$(jq -c '{sample_idx, freq_hz, n_symbols, soft_scale, soft, ft}' "$tmp/sf.json")" ] ||
    err "replay's softframe differs from the live one"
# --publish-soft-max 0 is no limit, a negative one a usage error
run_cmd 64 "$SFX" --no-config --replay "$cap.sigmf-meta" --publish-soft --publish-soft-max -1

finish softframe_e2e
