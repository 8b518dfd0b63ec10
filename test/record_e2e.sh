#!/bin/bash
# record_e2e: sigfoxd --record and --snippets on a live run through the SoapySDR "iqfile"
# driver (the real capture thread, native cu8 stream). A synthesized scene in which one
# burst is damaged after its FT (detected, CRC fails) is played in real time; then:
#  - the recording: at least 2 rotated SigMF files, each valid for what we write
#    (datatype, rate, captures[0] datetime/frequency, the sigfoxd extension declared,
#    annotations sorted and inside the data), together exactly the samples of the scene;
#    one annotation per frame decoded live, with its fields;
#  - replays: the files joined give the live frames (same times); every file alone gives
#    the frames annotated in it whose burst it holds whole, at the annotated sample, and
#    time_utc from its core:datetime close to the live event's;
#  - snippets: one for the damaged burst, valid SigMF whose annotation points at it, and
#    its replay finds the burst again (a CRC-failed frame with --report-bad-frames);
#  - hostile directories: clear errors, exit 64.
# Licence: MIT. Run from the repo root with BUILD=<abs build dir>.
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
"$SYNTH" -o "$cap" --format sigmf --sigmf-datatype cu8 --rate 250k --duration 16 --devices 5 \
    --interval 5 --single-frame 1 --one-bit 0 --ebn0 22:28 --seed 7 2>"$tmp/synth.log" ||
    { echo "FAIL: synth: $(cat "$tmp/synth.log")"; exit 1; }
# The damaged burst: the first BR100 one that no other burst overlaps in time. Every third
# symbol after the preamble and FT (32 bits) is negated: the detector and the
# demodulator's sync still see it, its CRC fails.
dmg=$(isolated_burst "$cap.truth.jsonl" 100 1.5 14.5)
[ "$dmg" != null ] || { echo "FAIL: the scene has no isolated BR100 burst to damage"; exit 1; }
damage_burst "$cap.sigmf-data" "$RATE" "$dmg" third || { echo "FAIL: could not damage the burst"; exit 1; }
dmg_t=$(jq -r .t_start_s <<<"$dmg")
dmg_id="$(jq -r '"\(.ep_id) \(.mc)"' <<<"$dmg")"

# --- the live run -------------------------------------------------------------------------------
EV="ipc://$tmp/events"
CMD="ipc://$tmp/commands"
"$SUB" --json --pub "$EV" >"$tmp/live.jsonl" 2>"$tmp/sub.err" &
sub=$!
pids+=("$sub")
sleep 0.3 # the subscriber connects once sigfoxd binds; a head start (ZeroMQ slow joiner)
timeout 60 "$SFX" --no-config \
    --device "driver=iqfile,path=$cap.sigmf-meta,throttle=1,buffer_s=0" --rate 250k --lossless \
    --pub "$EV" --cmd "$CMD" --state-dir "" --stats-interval 0 \
    --record "$tmp/rec" --record-max-mb 2 --record-max-files 100 \
    --snippets "$tmp/snip" --snippets-interval 0 >"$tmp/live.out" 2>"$tmp/live.err"
rc=$?
[ $rc = 0 ] || err "live run: exit $rc: $(tail -5 "$tmp/live.err")"
# the final stats event comes after the last frame
wait_for 10 jq_e -s 'map(select(.type == "stats")) | length > 0' "$tmp/live.jsonl" ||
    err "no final stats event"
kill -INT "$sub" 2>/dev/null
wait "$sub" 2>/dev/null

live_frames=$(jq -r 'select(.type == "frame") | "\(.ep_id) \(.mc) \(.rank) \(.payload)"' "$tmp/live.jsonl" | sort)
nlive=$(grep -c . <<<"$live_frames")
[ "$nlive" -ge 8 ] || err "only $nlive frames decoded live: $(tail -3 "$tmp/live.err")"
grep -q "^$dmg_id " <<<"$live_frames" && err "the damaged burst ($dmg_id) was decoded live"
# the stats event carries the recorder's counters (the last one comes before the writer's
# final flush: its closing figures are in the log)
jq_e -s 'map(select(.type == "stats"))[-1].recorder | .record_samples_dropped == 0 and
    .record_write_errors == 0 and .record_files >= 2 and .queue_bytes > 0 and .history_bytes > 0' \
    "$tmp/live.jsonl" >/dev/null ||
    err "recorder stats: $(jq -c 'select(.type == "stats") | .recorder' "$tmp/live.jsonl")"
grep -q "Recording finished, files: [0-9]*, deleted: 0, bytes: [0-9]*, samples_dropped: 0, write_errors: 0, annotations: $nlive, annotations_dropped: 0" \
    "$tmp/live.err" || err "recorder summary: $(grep 'Recording finished' "$tmp/live.err")"

# --- the recording --------------------------------------------------------------------------------
mapfile -t metas < <(ls "$tmp/rec"/sigfoxd-rec-*.sigmf-meta 2>/dev/null)
[ ${#metas[@]} -ge 2 ] || err "expected at least 2 recording files, got ${#metas[@]}: $(ls "$tmp/rec")"
[ -z "$(ls "$tmp/rec" | grep -v -E '^sigfoxd-rec-[0-9]{8}T[0-9]{6}Z-[0-9]{6}\.sigmf-(meta|data)$')" ] ||
    err "unexpected files in the recording directory: $(ls "$tmp/rec")"
total=0
next=0
for m in "${metas[@]}"; do
    d="${m%.sigmf-meta}.sigmf-data"
    [ -f "$d" ] || { err "$m has no data file"; continue; }
    n=$(($(stat -c %s "$d") / 2))
    [ $(($(stat -c %s "$d") % 2)) = 0 ] || err "$d: a partial sample"
    [ "$(stat -c %s "$d")" -le $((2 << 20)) ] || err "$d is larger than --record-max-mb 2"
    jq_e --argjson n "$n" --argjson next "$next" '
        .global["core:datatype"] == "cu8" and .global["core:sample_rate"] == 250000
        and .global["core:version"] != null
        and (.global["core:extensions"] | any(.name == "sigfoxd" and .version != null and .optional == true))
        and (.captures | length == 1)
        and .captures[0]["core:sample_start"] == 0
        and .captures[0]["core:global_index"] == $next
        and (.captures[0]["core:datetime"] | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]+Z$"))
        and .captures[0]["core:frequency"] == 868130000
        and .captures[0]["sigfoxd:gain"] == "auto"
        and ([.annotations[]["core:sample_start"]] | . == sort)
        and all(.annotations[]; .["core:sample_start"] >= 0 and .["core:sample_start"] < $n
            and .["core:sample_count"] > 0
            and .["core:freq_lower_edge"] < .["sigfoxd:carrier_hz"]
            and .["sigfoxd:carrier_hz"] < .["core:freq_upper_edge"]
            and (.["sigfoxd:ep_id"] | test("^[0-9A-F]{8}$")) and (.["sigfoxd:mc"] | type == "number")
            and (.["sigfoxd:snr_db"] | type == "number")
            and .["sigfoxd:stream_sample"] == $next + .["core:sample_start"])' "$m" >/dev/null ||
        err "$(basename "$m"): not the SigMF expected (file of $n samples from $next): $(jq -c '{global, captures, n: (.annotations | length)}' "$m")"
    next=$((next + n))
    total=$((total + n))
done
scene_n=$(($(stat -c %s "$cap.sigmf-data") / 2))
[ "$total" = "$scene_n" ] || err "the files hold $total samples, the scene $scene_n"
ann=$(for m in "${metas[@]}"; do jq -r '.annotations[] | "\(.["sigfoxd:ep_id"]) \(.["sigfoxd:mc"]) \(.["sigfoxd:rank"])"' "$m"; done | sort)
live_ids=$(jq -r 'select(.type == "frame") | "\(.ep_id) \(.mc) \(.rank)"' "$tmp/live.jsonl" | sort)
[ "$(grep -c . <<<"$ann")" = "$nlive" ] || err "$(grep -c . <<<"$ann") annotations for $nlive live frames"
[ "$ann" = "$live_ids" ] || { err "annotations differ from the live frames (< annotations, > live):"; diff <(echo "$ann") <(echo "$live_ids") | head; }
# the recording's bytes are the radio's
cat "${metas[@]/%.sigmf-meta/.sigmf-data}" | cmp -s - "$cap.sigmf-data" ||
    err "the joined recording differs from the samples the radio gave"

# --- replays --------------------------------------------------------------------------------------
frames_of() { jq -r 'select(.type == "frame" and .crc_ok != false) | "\(.ep_id) \(.mc) \(.rank) \(.payload)"' "$1" | sort; }
# joined: the same frames at the same stream times
cat "${metas[@]/%.sigmf-meta/.sigmf-data}" >"$tmp/joined.sigmf-data"
cp "${metas[0]}" "$tmp/joined.sigmf-meta"
"$SFX" --no-config --replay "$tmp/joined.sigmf-meta" >"$tmp/joined.jsonl" 2>"$tmp/joined.err" ||
    err "replay of the joined recording: exit $?: $(tail -3 "$tmp/joined.err")"
[ "$(frames_of "$tmp/joined.jsonl")" = "$live_frames" ] ||
    { err "the joined recording's replay differs from the live frames (< live, > replay):"; diff <(echo "$live_frames") <(frames_of "$tmp/joined.jsonl") | head; }
far=$(jq -r -n --slurpfile live "$tmp/live.jsonl" --slurpfile rep "$tmp/joined.jsonl" '
    ($live | map(select(.type == "frame")) | map({key: "\(.ep_id)/\(.mc)/\(.rank)", value: .t_start_s}) | from_entries) as $t
    | $rep[] | select(.type == "frame") | select((.t_start_s - $t["\(.ep_id)/\(.mc)/\(.rank)"]) | fabs > 0.002)
    | "\(.ep_id)/\(.mc)/\(.rank)"' 2>&1)
[ -z "$far" ] || err "joined replay: frames at other times than live: $far"
# each file alone
inside=0
union=""
for m in "${metas[@]}"; do
    b=$(basename "$m" .sigmf-meta)
    "$SFX" --no-config --replay "$m" >"$tmp/$b.jsonl" 2>"$tmp/$b.err" ||
        err "replay of $b: exit $?: $(tail -3 "$tmp/$b.err")"
    union+="$(frames_of "$tmp/$b.jsonl")"$'\n'
    grep -q "Recording start from SigMF core:datetime" "$tmp/$b.err" || err "$b: replay did not take core:datetime"
    n=$(($(stat -c %s "${m%.sigmf-meta}.sigmf-data") / 2))
    # every frame this file holds whole (0.2 s away from both ends) comes out of it at the
    # annotated sample
    while read -r id mc rank start; do
        inside=$((inside + 1))
        jq_e -s --arg id "$id" --argjson mc "$mc" --argjson rank "$rank" --argjson t "$(awk -v s="$start" -v r=$RATE 'BEGIN { print s / r }')" \
            'any(.[]; .type == "frame" and .ep_id == $id and .mc == $mc and .rank == $rank
                 and ((.t_start_s - $t) | fabs) < 0.005)' "$tmp/$b.jsonl" >/dev/null ||
            err "$b: the frame $id $mc rank $rank annotated at sample $start is not in its replay: $(frames_of "$tmp/$b.jsonl" | tr '\n' ';')"
    done < <(jq -r --argjson n "$n" --argjson g $((RATE / 5)) '.annotations[]
        | select(.["core:sample_start"] > $g and .["core:sample_start"] + .["core:sample_count"] + $g < $n)
        | "\(.["sigfoxd:ep_id"]) \(.["sigfoxd:mc"]) \(.["sigfoxd:rank"]) \(.["core:sample_start"])"' "$m")
    # time_utc of the replay (core:datetime + t_start_s) is the live event's, within 0.5 s
    bad=$(jq -r -n --slurpfile live "$tmp/live.jsonl" --slurpfile rep "$tmp/$b.jsonl" '
        def secs: (.[0:19] + "Z" | fromdateiso8601) + ("0" + .[19:-1] | tonumber);
        ($live | map(select(.type == "frame")) | map({key: "\(.ep_id)/\(.mc)/\(.rank)", value: .time_utc}) | from_entries) as $t
        | $rep[] | select(.type == "frame" and .crc_ok)
        | select(((.time_utc | secs) - ($t["\(.ep_id)/\(.mc)/\(.rank)"] | secs)) | fabs > 0.5)
        | "\(.ep_id)/\(.mc): \(.time_utc)"' 2>&1)
    [ -z "$bad" ] || err "$b: replay time_utc far from the live time_utc: $bad"
done
[ "$inside" -ge 3 ] || err "only $inside annotated frames lie whole inside one file: the per-file check is too weak"
extra=$(comm -13 <(echo "$live_frames") <(grep . <<<"$union" | sort -u))
[ -z "$extra" ] || err "per-file replays found frames the live run did not: $extra"

# --- snippets ---------------------------------------------------------------------------------------
mapfile -t snips < <(ls "$tmp/snip"/sigfoxd-snip-*.sigmf-meta 2>/dev/null)
[ ${#snips[@]} -ge 1 ] || err "no snippet written: $(grep -i snippet "$tmp/live.err")"
grep -q "Snippets finished, written: ${#snips[@]}, dropped: 0, write_errors: 0" "$tmp/live.err" ||
    err "snippet summary for ${#snips[@]} files: $(grep 'Snippets finished' "$tmp/live.err")"
found=""
for m in "${snips[@]}"; do
    d="${m%.sigmf-meta}.sigmf-data"
    n=$(($(stat -c %s "$d") / 2))
    jq_e --argjson n "$n" '.global["core:datatype"] == "cu8" and .global["core:sample_rate"] == 250000
        and (.global["core:extensions"] | any(.name == "sigfoxd"))
        and (.captures[0]["core:datetime"] | type == "string") and .captures[0]["core:frequency"] == 868130000
        and (.annotations | length == 1)
        and (.annotations[0] | .["core:sample_start"] >= 0 and .["core:sample_start"] + .["core:sample_count"] <= $n
            and .["core:freq_lower_edge"] < .["core:freq_upper_edge"]
            and (.["sigfoxd:reason"] | IN("nosync", "ft_bad", "crc_bad")))' "$m" >/dev/null ||
        err "$(basename "$m"): not the SigMF expected: $(jq -c . "$m" | head -c 600)"
    # stream time of the annotated burst
    t=$(jq -r '.annotations[0]["sigfoxd:stream_sample"] / 250000' "$m")
    if awk -v a="$t" -v b="$dmg_t" 'BEGIN { exit !((a - b) < 0.2 && (b - a) < 0.2) }'; then
        found=$m
    fi
done
if [ -z "$found" ]; then
    err "no snippet for the damaged burst at $dmg_t s: $(for m in "${snips[@]}"; do jq -c '.annotations[0]' "$m"; done)"
else
    # the snippet holds the burst: its replay detects it again (CRC-failed frame) at the
    # annotated place; the data is the burst with the margins around it
    start=$(jq -r '.annotations[0]["core:sample_start"]' "$found")
    count=$(jq -r '.annotations[0]["core:sample_count"]' "$found")
    n=$(($(stat -c %s "${found%.sigmf-meta}.sigmf-data") / 2))
    [ "$start" -ge $((RATE / 2)) ] && [ $((n - start - count)) -ge $((RATE / 5)) ] ||
        err "snippet margins: start $start, count $count, length $n (0.5 s = $((RATE / 2)) wanted)"
    "$SFX" --no-config --replay "$found" --report-bad-frames >"$tmp/snip.jsonl" 2>"$tmp/snip.err" ||
        err "snippet replay: exit $?: $(tail -3 "$tmp/snip.err")"
    jq_e -s --argjson t "$(awk -v s="$start" -v r=$RATE 'BEGIN { print s / r }')" \
        'any(.[]; .type == "frame" and .crc_ok == false and ((.t_start_s - $t) | fabs) < 0.2)' "$tmp/snip.jsonl" >/dev/null ||
        err "the snippet's replay does not find the damaged burst near $start: $(head -c 600 "$tmp/snip.jsonl"); $(grep -E 'Replay finished|bursts' "$tmp/snip.err")"
    # the snippet's time: its datetime + the burst's place = the stream time of the burst
    # on the live clock, within the recording's first datetime + stream time +- 0.5 s
    first=$(jq -r '.captures[0]["core:datetime"]' "${metas[0]}")
    sdt=$(jq -r '.captures[0]["core:datetime"]' "$found")
    gi=$(jq -r '.captures[0]["core:global_index"]' "$found")
    python3 - "$first" "$sdt" "$gi" "$RATE" <<'EOF' || err "snippet core:datetime $sdt is not the recording's $first + its sample $gi"
import sys, datetime
f = lambda s: datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
a, b, gi, rate = f(sys.argv[1]), f(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sys.exit(0 if abs(b - (a + gi / rate)) < 0.5 else 1)
EOF
fi

# --- hostile directories ---------------------------------------------------------------------------
live_args=(--no-config --device "driver=iqfile,path=$cap.sigmf-meta,throttle=0" --rate 250k --lossless
    --pub "" --cmd "" --state-dir "")
touch "$tmp/afile"
run_cmd 64 "$SFX" "${live_args[@]}" --record "$tmp/afile" &&
    { grep -q "record.dir '$tmp/afile' exists and is not a directory" "$tmp/err" || err "--record FILE: $errout"; }
run_cmd 64 "$SFX" "${live_args[@]}" --record "$tmp/no/such/dir" &&
    { grep -q "record.dir (--record): cannot use or create directory '$tmp/no/such/dir'" "$tmp/err" || err "--record missing parent: $errout"; }
run_cmd 64 "$SFX" "${live_args[@]}" --snippets /proc/self &&
    { grep -q "snippets.dir (--snippets): directory '/proc/self' is not writable" "$tmp/err" || err "--snippets /proc/self: $errout"; }
run_cmd 64 "$SFX" "${live_args[@]}" --record "$tmp/r2" --record-max-mb 0 &&
    { grep -q "record-max-mb: 0 is out of range" "$tmp/err" || err "--record-max-mb 0: $errout"; }
run_cmd 64 "$SFX" "${live_args[@]}" --record-max-files -3 &&
    { grep -q "record-max-files: -3 is out of range" "$tmp/err" || err "--record-max-files -3: $errout"; }
run_cmd 64 "$SFX" --no-config --replay "$cap.sigmf-meta" --record "$tmp/r3" &&
    { grep -q "does not go with --replay" "$tmp/err" || err "--replay --record: $errout"; }
long=$(printf 'x%.0s' {1..1000})
run_cmd 64 "$SFX" "${live_args[@]}" --snippets "$tmp/$long" &&
    { grep -q "snippets.dir (--snippets): cannot use or create directory '$tmp/xxx*\.\.\.': File name too long" "$tmp/err" || err "--snippets LONG: $errout"; }
[ ! -e "$tmp/r2" ] || err "a refused configuration created $tmp/r2"

finish record_e2e
