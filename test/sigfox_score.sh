#!/bin/bash
# sigfox_score: the sigfox-score CLI on small truth/decoded files written here: exit 0 when
# the expectations hold, 1 when one fails (missed, wrong, false, duplicate) or an input is
# malformed (message with file:line), 64 on usage errors; JSON output; stdin; and a truth
# file written by sigfox-synth scored against decoded lines made from it with jq.
# Run from the repo root with BUILD=<abs build dir>. Licence: MIT.
set -u
BIN="${BUILD:?set BUILD}/bin/sigfox-score"
SYNTH="$BUILD/bin/sigfox-synth"
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
need_jq
[ -x "$SYNTH" ] || { echo "FAIL: $SYNTH is missing (make builds it)"; exit 1; }

# run EXPECTED_STATUS ARGS...: runs sigfox-score, keeps stdout/stderr in $tmp/out, $tmp/err
run() { run_cmd "$1" "$BIN" "${@:2}"; }
expect_out() { grep -q -- "$1" "$tmp/out" || err "stdout lacks '$1': $(head -c 2000 "$tmp/out")"; }
expect_err() { grep -q -- "$1" "$tmp/err" || err "stderr lacks '$1': $(cat "$tmp/err")"; }

# --- inputs --------------------------------------------------------------------------------
# A three-replica BR100 message, a single BR600 frame, a weak BR600 frame (Eb/N0 5 dB) and
# a collided one, plus an interferer line, in the synthesizer's format.
T="$tmp/cap.truth.jsonl"
cat >"$T" <<'EOF'
{"type":"burst","t_start_s":1.0,"t_end_s":2.76,"freq_hz":868100000.0,"drift_hz_s":3.1,"ebn0_db":15.0,"baud":100,"rank":1,"n_frames":3,"message":0,"ep_id":"FEDCBA98","mc":1650,"payload":"0001020304050607","payload_bit":null,"bf":false,"kind":"app","collided":false,"interfered":false}
{"type":"burst","t_start_s":1.5,"t_end_s":1.75,"freq_hz":868150000.0,"drift_hz_s":-20.0,"ebn0_db":12.0,"baud":600,"rank":1,"n_frames":1,"message":1,"ep_id":"0000ABCD","mc":7,"payload":"","payload_bit":1,"bf":true,"kind":"app","collided":false,"interfered":false}
{"type":"burst","t_start_s":3.0,"t_end_s":4.76,"freq_hz":868120000.0,"drift_hz_s":3.1,"ebn0_db":15.0,"baud":100,"rank":2,"n_frames":3,"message":0,"ep_id":"FEDCBA98","mc":1650,"payload":"0001020304050607","payload_bit":null,"bf":false,"kind":"app","collided":false,"interfered":false}
{"type":"burst","t_start_s":4.0,"t_end_s":4.25,"freq_hz":868060000.0,"drift_hz_s":0.0,"ebn0_db":5.0,"baud":600,"rank":1,"n_frames":1,"message":2,"ep_id":"11223344","mc":100,"payload":"AB","payload_bit":null,"bf":false,"kind":"app","collided":false,"interfered":false}
{"type":"burst","t_start_s":4.5,"t_end_s":4.75,"freq_hz":868070000.0,"drift_hz_s":0.0,"ebn0_db":20.0,"baud":600,"rank":1,"n_frames":1,"message":3,"ep_id":"55667788","mc":200,"payload":"CD","payload_bit":null,"bf":false,"kind":"app","collided":true,"interfered":false}
{"type":"burst","t_start_s":5.0,"t_end_s":6.76,"freq_hz":868140000.0,"drift_hz_s":3.1,"ebn0_db":15.0,"baud":100,"rank":3,"n_frames":3,"message":0,"ep_id":"FEDCBA98","mc":1650,"payload":"0001020304050607","payload_bit":null,"bf":false,"kind":"app","collided":false,"interfered":false}
{"type":"interferer","interferer":"cw","t_start_s":0.0,"t_end_s":8.0,"freq_hz":868180000.0,"power_db":30.0,"bandwidth_hz":0.0}
EOF

# Decoded lines as sigfoxd --replay prints them: every strong burst decoded, small errors.
frame() { # ep_id mc rank baud t freq payload-field [bf] [kind] [auth]
    printf '{"type":"frame","format_version":1,"ep_id":"%s","mc":%s,"bf":%s,"kind":"%s",%s,"rank":%s,"crc_ok":true,"auth":"%s","baud":%s,"freq_hz":%s,"drift_hz_s":1.0,"rssi_dbfs":-50.0,"snr_db":14.6,"t_start_s":%s}\n' \
        "$1" "$2" "${8:-false}" "${9:-app}" "$7" "$3" "${10:-ok}" "$4" "$6" "$5"
}
message() { # ep_id mc baud t freq payload-field [bf]
    printf '{"type":"message","format_version":1,"ep_id":"%s","mc":%s,"bf":%s,"kind":"app",%s,"auth":"ok","combined":false,"nframes":3,"baud":%s,"freq_hz":%s,"snr_db":15.2,"t_start_s":%s,"replicas":[{"rank":1}]}\n' \
        "$1" "$2" "${7:-false}" "$6" "$3" "$5" "$4"
}
P8='"payload":"0001020304050607"'
good() {
    frame FEDCBA98 1650 1 100 1.004 868100003.5 "$P8"
    frame 0000ABCD 7 1 600 1.5002 868149998.0 '"payload_bit":1' true
    frame FEDCBA98 1650 2 100 2.998 868120001.0 "$P8"
    frame FEDCBA98 1650 3 100 5.001 868139995.0 "$P8"
    message FEDCBA98 1650 100 1.004 868100003.5 "$P8"
    message 0000ABCD 7 600 1.5002 868149998.0 '"payload_bit":1' true
    echo '{"type":"stats","format_version":1,"samples_in":1000}'
}
good >"$tmp/good.jsonl"

# --- all decoded: pass ---------------------------------------------------------------------
if run 0 --truth "$T" --min-ebn0 8 --expect-all --frames --max-false 0 --max-duplicates 0 \
    --max-wrong 0 --expect-auth --max-freq-rms 5 "$tmp/good.jsonl"; then
    expect_out "Result: PASS"
    expect_out "bursts: 6, messages: 4, interferers: 1"
fi
# Without --min-ebn0 every uncollided burst is expected, the 5 dB one too: --frames fails.
if run 1 --truth "$T" --expect-all --frames "$tmp/good.jsonl"; then
    expect_out "Missed expected frames:"
    expect_out "truth line 4: ep_id 11223344 mc 100 rank 1 BR600 t 4.000000 s"
    expect_out "no frame at that time and carrier"
    expect_out "expect-all: 1 of 5 expected frames not decoded exactly"
    expect_err "1 expectation failed"
fi
# Messages: the collided and the weak one are not expected with --min-ebn0 8.
run 0 --truth "$T" --expect-all --min-ebn0 8 "$tmp/good.jsonl" && expect_out "Result: PASS"
# --expect-collided makes the collided frame expected: fail.
run 1 --truth "$T" --expect-all --min-ebn0 8 --expect-collided "$tmp/good.jsonl"
# No expectation: scored, exit 0 whatever is missing.
run 0 --truth "$T" /dev/null && expect_out "Result: scored (no expectation asked)"
# stdin
if ! "$BIN" --truth "$T" --expect-all --min-ebn0 8 - <"$tmp/good.jsonl" >"$tmp/out" 2>&1; then
    err "stdin: $(cat "$tmp/out")"
fi
expect_out "Decoded: -, frames: 4"

# --- errors in the decoded output ----------------------------------------------------------
# A missing replica: the message is still decoded (messages pass), frames fail.
grep -v '"rank":2' "$tmp/good.jsonl" >"$tmp/miss.jsonl"
run 0 --truth "$T" --expect-all --min-ebn0 8 "$tmp/miss.jsonl"
run 1 --truth "$T" --expect-all --min-ebn0 8 --frames "$tmp/miss.jsonl" &&
    expect_out "truth line 3: ep_id FEDCBA98 mc 1650 rank 2"

# A false frame (CRC-valid garbage) and a false message.
{
    good
    frame 0BADF00D 1 1 600 3.3 868111111.0 '"payload":"00"' false app unknown-device
    message 0BADF00D 1 600 3.3 868111111.0 '"payload":"00"'
} >"$tmp/false.jsonl"
if run 1 --truth "$T" --min-ebn0 8 --expect-all --max-false 0 "$tmp/false.jsonl"; then
    expect_out "max-false: 1 false frames and 1 false messages (limit 0)"
    expect_out "decoded line 8: frame ep_id 0BADF00D mc 1 rank 1 BR600"
    expect_out "no truth burst has this ep_id and mc"
fi
run 0 --truth "$T" --min-ebn0 8 --expect-all --max-false 1 "$tmp/false.jsonl"

# Wrong payload in one replica and in the message.
sed '/"rank":3/ s/0001020304050607/0001020304050608/' "$tmp/good.jsonl" >"$tmp/wrong.jsonl"
if run 1 --truth "$T" --min-ebn0 8 --expect-all --frames "$tmp/wrong.jsonl"; then
    expect_out 'payload "0001020304050608" instead of "0001020304050607"'
fi
run 1 --truth "$T" --min-ebn0 8 --max-wrong 0 "$tmp/wrong.jsonl"

# Off by 400 Hz (tolerance 300): misplaced, not false; --freq-tol-hz 500 accepts it.
sed '/"rank":2/ s/868120001.0/868120400.0/' "$tmp/good.jsonl" >"$tmp/off.jsonl"
run 1 --truth "$T" --min-ebn0 8 --expect-all --frames --max-false 0 "$tmp/off.jsonl" &&
    expect_out "+400.0 Hz away"
run 0 --truth "$T" --min-ebn0 8 --expect-all --frames --max-false 0 --freq-tol-hz 500 \
    "$tmp/off.jsonl"

# The message printed twice.
{
    good
    message FEDCBA98 1650 100 2.998 868120001.0 "$P8"
} >"$tmp/dup.jsonl"
run 1 --truth "$T" --min-ebn0 8 --max-duplicates 0 "$tmp/dup.jsonl" &&
    expect_out "max-duplicates: 0 duplicate frames and 1 duplicate messages"

# --min-decoded counts expected messages: 2 of 3 without --min-ebn0 (the weak one missing).
run 0 --truth "$T" --min-decoded 66% "$tmp/good.jsonl"
run 1 --truth "$T" --min-decoded 0.7 "$tmp/good.jsonl" && expect_out "min-decoded: 2 of 3"

# --- JSON ----------------------------------------------------------------------------------
if run 1 --truth "$T" --min-ebn0 8 --max-false 0 --json "$tmp/false.jsonl"; then
    [ "$(wc -l <"$tmp/out")" = 1 ] || err "--json printed $(wc -l <"$tmp/out") lines"
    [ "$(jq -r '.pass' "$tmp/out")" = false ] || err "json pass: $(cat "$tmp/out")"
    [ "$(jq -r '.groups.all.false_frames' "$tmp/out")" = 1 ] || err "json false_frames"
    [ "$(jq -r '.groups.br600.false_frames' "$tmp/out")" = 1 ] || err "json br600 false"
    [ "$(jq -r '.groups.br100.matched_frames' "$tmp/out")" = 3 ] || err "json br100 matched"
    [ "$(jq -r '.false[0].ep_id' "$tmp/out")" = 0BADF00D ] || err "json false list"
    [ "$(jq -r '.failures[0]' "$tmp/out")" = "max-false: 1 false frames and 1 false messages (limit 0)" ] ||
        err "json failures: $(jq -c .failures "$tmp/out")"
    [ "$(jq -r '.groups.br100.freq_err_max_hz' "$tmp/out")" = 5 ] ||
        err "json br100 carrier max: $(jq -c .groups.br100 "$tmp/out")"
fi

# --- malformed input: exit 1, file and line named ------------------------------------------
{
    good | head -2
    echo '{"type":"frame","ep_id":"FEDCBA98","mc":1650,"bf":false,"kind":"app","payload":"00"'
} >"$tmp/trunc.jsonl"
run 1 --truth "$T" "$tmp/trunc.jsonl" && expect_err "trunc.jsonl:3: incomplete JSON"
printf 'garbage\n' >"$tmp/garbage.jsonl"
run 1 --truth "$T" "$tmp/garbage.jsonl" && expect_err "garbage.jsonl:1: not JSON"
sed '3 s/"mc":1650/"mc":"x"/' "$T" >"$tmp/bad.truth.jsonl"
run 1 --truth "$tmp/bad.truth.jsonl" "$tmp/good.jsonl" &&
    expect_err 'bad.truth.jsonl:3: "mc" is not an integer'
run 1 --truth "$tmp/nonexistent.jsonl" "$tmp/good.jsonl" && expect_err "cannot open"
run 1 --truth "$T" "$tmp/nonexistent.jsonl" && expect_err "nonexistent.jsonl: cannot open"

# --- usage errors: 64 ----------------------------------------------------------------------
run 64 "$tmp/good.jsonl" && expect_err "--truth FILE is required"
run 64 --truth "$T" && expect_err "give the decoded JSON lines file"
run 64 --truth "$T" a b && expect_err "one decoded file only"
run 64 --truth - - && expect_err "cannot both come from stdin"
run 64 --truth "$T" --max-false -1 x && expect_err "bad --max-false '-1'"
run 64 --truth "$T" --min-decoded 150% x && expect_err "bad --min-decoded '150%'"
run 64 --truth "$T" --freq-tol-hz abc x && expect_err "bad --freq-tol-hz 'abc'"
run 64 --truth "$T" --min-ebn0 '' x && expect_err "bad --min-ebn0"
run 64 --truth "$T" --list z x && expect_err "bad --list 'z'"
run 64 --truth "$T" --frames x && expect_err "--frames applies to"
run 64 --truth "$T" --bogus x && expect_err "unknown option '--bogus'"
run 64 --truth && expect_err "needs a value"
run 0 --help && expect_out "Usage: sigfox-score"

# --- a truth file from sigfox-synth --------------------------------------------------------
# Its truth scored against decoded lines made from it (what a perfect receiver prints):
# every message must match, with zero carrier and timing error.
if "$SYNTH" -o "$tmp/s.cu8" --rate 250k --duration 6 --devices 8 --interval 1.5 \
    --one-bit 0.3 --keepalive 0.2 --dl-confirmation 0.2 --collisions 1 --cw 1 --seed 11 \
    2>"$tmp/synth.err"; then
    jq -c 'select(.type == "burst") | {type: "frame", ep_id, mc, bf, kind, rank, baud,
        freq_hz, t_start_s, snr_db: .ebn0_db, auth: "ok", crc_ok: true}
        + (if .payload_bit == null then {payload} else {payload_bit} end)' \
        "$tmp/s.cu8.truth.jsonl" >"$tmp/s.dec.jsonl"
    jq -c 'select(.type == "burst" and .rank == 1) | {type: "message", ep_id, mc, bf, kind,
        baud, freq_hz, t_start_s, auth: "ok"}
        + (if .payload_bit == null then {payload} else {payload_bit} end)' \
        "$tmp/s.cu8.truth.jsonl" >>"$tmp/s.dec.jsonl"
    if run 0 --truth "$tmp/s.cu8.truth.jsonl" --expect-all --frames --expect-collided \
        --expect-interfered --max-false 0 --max-duplicates 0 --max-wrong 0 --expect-auth \
        --json "$tmp/s.dec.jsonl"; then
        n=$(grep -c '"type":"burst"' "$tmp/s.cu8.truth.jsonl")
        [ "$(jq -r '.groups.all.matched_frames' "$tmp/out")" = "$n" ] ||
            err "synth truth: matched $(jq -r '.groups.all.matched_frames' "$tmp/out") of $n"
        [ "$(jq -r '.groups.all.freq_err_max_hz' "$tmp/out")" = 0 ] || err "synth: carrier error"
        [ "$(jq -r '.groups.all.missed_messages' "$tmp/out")" = 0 ] || err "synth: missed messages"
        [ "$(jq -r '.input.interferers' "$tmp/out")" = 1 ] || err "synth: interferer count"
    fi
    # A decoded line of each kind with another payload is caught.
    jq -c 'if .type == "frame" and .kind != "app" then .payload = "00" else . end' \
        "$tmp/s.dec.jsonl" >"$tmp/s.bad.jsonl"
    if grep -q '"kind":"keepalive"\|"kind":"dl_confirmation"' "$tmp/s.dec.jsonl"; then
        run 1 --truth "$tmp/s.cu8.truth.jsonl" --expect-all --frames --expect-collided \
            --expect-interfered "$tmp/s.bad.jsonl"
    else
        err "synth: no control message in the scenario"
    fi
else
    err "sigfox-synth failed: $(cat "$tmp/synth.err")"
fi

finish sigfox_score
