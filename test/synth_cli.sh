#!/bin/bash
# synth_cli: sigfox-synth end to end. Every IQ format is written and read back through the
# iqfile module (--verify compares against the synthesized samples within quantisation);
# truth and keys files are consistent with the run; output is deterministic for a seed;
# bad arguments give exit 64 and a message naming the problem. Licence: MIT.
# Run from the repo root with BUILD=<abs build dir>.
set -u
BIN="${BUILD:?set BUILD}/bin/sigfox-synth"
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"

# Common small scenario: 4 s at 250 kS/s, 6 devices sending often, BR600 so messages fit.
small=(--rate 250k --duration 4 --devices 6 --interval 1 --baud 600 --seed 3)

# --- every format round trip -------------------------------------------------------------
for spec in cu8:2 cs8:2 cs16:4 cf32:8 wav16:4 wavf32:8 sigmf-cu8:2 sigmf-cs8:2 sigmf-cs16:4 \
    sigmf-cf32:8; do
    fmt=${spec%%:*}
    bps=${spec##*:}
    if [[ $fmt == sigmf-* ]]; then
        out="$tmp/cap_$fmt"
        args=(--format sigmf --sigmf-datatype "${fmt#sigmf-}")
        data="$out.sigmf-data"
    else
        out="$tmp/cap.$fmt"
        args=(--format "$fmt")
        data="$out"
    fi
    log="$tmp/log_$fmt"
    if ! "$BIN" -o "$out" "${args[@]}" "${small[@]}" --verify 2>"$log"; then
        err "$fmt: sigfox-synth failed: $(cat "$log")"
        continue
    fi
    grep -q "^Verified, file: " "$log" || err "$fmt: no verification line: $(cat "$log")"
    samples=$(sed -n 's/.*samples: \([0-9]*\), bursts.*/\1/p' "$log")
    [ "$samples" = 1000000 ] || err "$fmt: $samples samples, expected 1000000"
    size=$(stat -c %s "$data")
    case $fmt in
    wav*) [ "$size" -gt $((samples * bps)) ] || err "$fmt: $size bytes is too small" ;;
    *) [ "$size" = $((samples * bps)) ] || err "$fmt: $size bytes, expected $((samples * bps))" ;;
    esac
    if [[ $fmt == sigmf-* ]]; then
        grep -q '"core:sample_rate": *250000' "$out.sigmf-meta" ||
            err "$fmt: sample rate missing from $(cat "$out.sigmf-meta")"
        base=$out
    else
        base=$out
    fi
    bursts=$(sed -n 's/.*bursts: \([0-9]*\),.*/\1/p' "$log")
    [ "${bursts:-0}" -ge 6 ] || err "$fmt: only ${bursts:-0} bursts"
    lines=$(grep -c '"type":"burst"' "$base.truth.jsonl")
    [ "$lines" = "$bursts" ] || err "$fmt: $lines truth lines for $bursts bursts"
    keys=$(grep -vc '^#' "$base.keys")
    [ "$keys" = 6 ] || err "$fmt: $keys keys for 6 devices"
done

# --- truth content: the fields the receiver team compares against -------------------------
first=$(grep -m1 '"type":"burst"' "$tmp/cap.cu8.truth.jsonl")
for field in t_start_s t_end_s freq_hz drift_hz_s ebn0_db baud rank bitstream ep_id mc payload \
    payload_bit bf kind collided interfered; do
    [[ $first == *"\"$field\":"* ]] || err "truth line lacks $field: $first"
done
[[ $first == *'"bitstream":"AAAA'* ]] || err "bitstream does not start with the preamble: $first"
# every truth ID has a key
for id in $(grep -o '"ep_id":"[0-9A-F]*"' "$tmp/cap.cu8.truth.jsonl" | cut -d'"' -f4 | sort -u); do
    grep -q "^$id " "$tmp/cap.cu8.keys" || err "no key for device $id"
done

# --- determinism ---------------------------------------------------------------------------
"$BIN" -o "$tmp/a.cs8" "${small[@]}" 2>/dev/null
"$BIN" -o "$tmp/b.cs8" "${small[@]}" 2>/dev/null
"$BIN" -o "$tmp/c.cs8" "${small[@]}" --seed 4 2>/dev/null
cmp -s "$tmp/a.cs8" "$tmp/b.cs8" || err "same seed, different samples"
cmp -s "$tmp/a.cs8.truth.jsonl" "$tmp/b.cs8.truth.jsonl" || err "same seed, different truth"
cmp -s "$tmp/a.cs8" "$tmp/c.cs8" && err "different seeds, same samples"

# --- station view: one scene as three stations hear it --------------------------------------
# Same seed and traffic, per station Eb/N0 offset, carrier offset, delay and noise seed: the
# same frames in every truth, each moved by its station's offsets; the capture longer by the
# delay; zero offsets and the scene's own noise seed give the plain capture byte for byte.
scene=(--rate 250k --duration 6 --devices 5 --interval 2 --seed 11 --bproc-confirm --bf 0.5)
"$BIN" -o "$tmp/st0.cs8" "${scene[@]}" 2>/dev/null || err "station 0 failed"
"$BIN" -o "$tmp/st1.cs8" "${scene[@]}" --station-ebn0 -4 --station-freq -1200 \
    --station-delay 0.004 --station-noise-seed 2 2>/dev/null || err "station 1 failed"
"$BIN" -o "$tmp/st2.cs8" "${scene[@]}" --station-ebn0 3.5 --station-freq 800 \
    --station-delay 0.25 --station-noise-seed 3 2>"$tmp/st2.log" || err "station 2 failed: $(cat "$tmp/st2.log")"
"$BIN" -o "$tmp/st3.cs8" "${scene[@]}" --station-noise-seed 11 2>/dev/null
cmp -s "$tmp/st0.cs8" "$tmp/st3.cs8" || err "zero station offsets, the scene's noise seed: different samples"
frames() { jq -c 'select(.type == "burst") | [.message, .ep_id, .mc, .rank, .bitstream, .collided]' "$1"; }
n0=$(frames "$tmp/st0.cs8.truth.jsonl" | wc -l)
[ "$n0" -ge 6 ] || err "station scene has only $n0 bursts"
for k in 1 2; do
    [ "$(frames "$tmp/st$k.cs8.truth.jsonl")" = "$(frames "$tmp/st0.cs8.truth.jsonl")" ] ||
        err "station $k: the truth's frames differ from station 0's"
    cmp -s "$tmp/st0.cs8.keys" "$tmp/st$k.cs8.keys" || err "station $k: different keys"
done
# per burst: (t_start, freq, Eb/N0, RSSI) differences to station 0, the same for every burst
offsets() { # truth k -> one line of distinct rounded differences per field
    jq -s -r --slurpfile z "$tmp/st0.cs8.truth.jsonl" '[., $z] | map(map(select(.type == "burst")))
        | transpose | map([(.[0].t_start_s - .[1].t_start_s), (.[0].freq_hz - .[1].freq_hz),
                          (.[0].ebn0_db - .[1].ebn0_db), (.[0].rssi_dbfs - .[1].rssi_dbfs)]
                         | map(. * 1000 | round / 1000))
        | unique | map(map(tostring) | join(" ")) | join(",")' "$1"
}
[ "$(offsets "$tmp/st1.cs8.truth.jsonl")" = "0.004 -1200 -4 -4" ] ||
    err "station 1 offsets: $(offsets "$tmp/st1.cs8.truth.jsonl")"
[ "$(offsets "$tmp/st2.cs8.truth.jsonl")" = "0.25 800 3.5 3.5" ] ||
    err "station 2 offsets: $(offsets "$tmp/st2.cs8.truth.jsonl")"
w0=$(jq -s -r 'map(select(.type == "bproc"))[0] | "\(.window_start_s) \(.dl_freq_hz)"' "$tmp/st0.cs8.truth.jsonl")
w2=$(jq -s -r 'map(select(.type == "bproc"))[0] | "\(.window_start_s - 0.25) \(.dl_freq_hz - 800)"' "$tmp/st2.cs8.truth.jsonl")
awk -v a="$w0" -v b="$w2" 'BEGIN { split(a, x); split(b, y); exit !(x[1] != "" && (x[1] - y[1])^2 < 1e-12 && (x[2] - y[2])^2 < 1e-6) }' ||
    err "B-procedure record not moved by the station's delay and offset: $w0 / $w2"
[ "$(stat -c %s "$tmp/st2.cs8")" = $(((6 * 250000 + 62500) * 2)) ] ||
    err "station 2 capture: $(stat -c %s "$tmp/st2.cs8") bytes, expected the delay's 62500 samples more"
cmp -s "$tmp/st0.cs8" "$tmp/st1.cs8" && err "station 1 has the same samples as station 0"

# --- interferers, collisions, stdout ---------------------------------------------------------
n=$("$BIN" -o - --format cs16 --rate 200k --duration 3 --devices 4 --interval 1 --baud 600 \
    --cw 2 --fsk 1 --collisions 2 --truth "$tmp/s.truth.jsonl" --keys "$tmp/s.keys" 2>/dev/null |
    wc -c)
[ "$n" = $((600000 * 4)) ] || err "stdout capture has $n bytes, expected $((600000 * 4))"
[ "$(grep -c '"interferer":"cw"' "$tmp/s.truth.jsonl")" = 2 ] || err "CW interferers missing"
grep -q '"interferer":"fsk"' "$tmp/s.truth.jsonl" || err "FSK interferer missing"
grep -q '"collided":true' "$tmp/s.truth.jsonl" || err "no collided burst flagged"

# --- the issue's example: 30 s RC1 at 1.024 MS/s cu8 with 20 devices -----------------------
start=$EPOCHREALTIME
"$BIN" -o "$tmp/rc1.cu8" --rc 1 --rate 1024k --duration 30 --devices 20 --progress \
    2>"$tmp/log_rc1" || err "example run failed: $(cat "$tmp/log_rc1")"
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
size=$(stat -c %s "$tmp/rc1.cu8")
[ "$size" = $((30 * 1024000 * 2)) ] || err "example capture has $size bytes"
[ -s "$tmp/rc1.cu8.truth.jsonl" ] || err "example truth missing"
echo "30 s RC1 1.024 MS/s cu8, 20 devices: ${secs} s"

# --- bad arguments: exit 64 and a message naming the problem --------------------------------
expect_usage() {
    local want=$1
    shift
    local out rc
    out=$("$BIN" "$@" 2>&1 >/dev/null)
    rc=$?
    [ $rc = 64 ] || err "'$*' exited $rc, expected 64 ($out)"
    [[ $out == *"$want"* ]] || err "'$*' said '$out', expected it to mention '$want'"
}
o=(-o "$tmp/x.cu8")
expect_usage "no output file" --devices 3
expect_usage "bad --rate 'fast'" "${o[@]}" --rate fast
expect_usage "bad --rate '-1M'" "${o[@]}" --rate -1M
expect_usage "bad --center-freq '868.13Q'" "${o[@]}" --center-freq 868.13Q
expect_usage "bad --rc 'RC9'" "${o[@]}" --rc RC9
expect_usage "bad --baud '300'" "${o[@]}" --baud 300
expect_usage "bad --ebn0 '20:10'" "${o[@]}" --ebn0 20:10
expect_usage "bad --ebn0 'x'" "${o[@]}" --ebn0 x
expect_usage "bad --devices '-1'" "${o[@]}" --devices -1
expect_usage "bad --devices '2x'" "${o[@]}" --devices 2x
expect_usage "bad --duration '0'" "${o[@]}" --duration 0
expect_usage "bad --seed" "${o[@]}" --seed abc
expect_usage "unknown --format 'iq'" "${o[@]}" --format iq
expect_usage "bad --sigmf-datatype 'wav16'" "${o[@]}" --sigmf-datatype wav16
expect_usage "bad probability '1.5' for --bf" "${o[@]}" --bf 1.5
expect_usage "bad --max-drift" "${o[@]}" --max-drift 20
expect_usage "cannot tell the format" -o "$tmp/x.bin"
expect_usage "needs --format" -o -
expect_usage "BR600" "${o[@]}" --rc 2 --baud 100
expect_usage "does not cover" "${o[@]}" --rate 150k
expect_usage "frequency error limit" "${o[@]}" --max-ppm 30
expect_usage "bad --station-ebn0 '70'" "${o[@]}" --station-ebn0 70
expect_usage "bad --station-freq '200k'" "${o[@]}" --station-freq 200k
expect_usage "bad --station-delay '-1'" "${o[@]}" --station-delay -1
expect_usage "bad --station-noise-seed '0'" "${o[@]}" --station-noise-seed 0
expect_usage "station carrier offset 99000 Hz" -o "$tmp/x.cu8" --rate 250k --station-freq 99k
expect_usage "unexpected argument 'extra'" "${o[@]}" extra
expect_usage "unrecognized option" "${o[@]}" --frobnicate
"$BIN" --help | grep -q "^Usage: sigfox-synth" || err "--help prints no usage"

# --- runtime failure: exit 1 naming the file --------------------------------------------------
out=$("$BIN" -o "$tmp/no/such/dir/x.cu8" --duration 1 2>&1)
rc=$?
[ $rc = 1 ] || err "unwritable output exited $rc, expected 1"
[[ $out == *"$tmp/no/such/dir/x.cu8"* ]] || err "unwritable output message: $out"

finish synth_cli
