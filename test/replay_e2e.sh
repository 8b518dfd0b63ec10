#!/bin/bash
# replay_e2e: `sigfoxd --replay` on synthesized captures against the synthesizer's truth.
# Every truth message is printed exactly once with its exact fields and auth ok, every
# truth burst as a frame of the right rank; rate and centre from SigMF metadata, from
# file-name tokens and from flags; no keys -> auth unchecked; noise alone -> nothing; a
# truncated file -> exit 1 with a clear error after everything decoded before the cut;
# bad usage -> exit 64. Licence: MIT. Run from the repo root with BUILD=<abs build dir>.
set -u
SFX="${BUILD:?set BUILD}/bin/sigfoxd"
SYNTH="$BUILD/bin/sigfox-synth"
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
need_jq

# Compares decoded messages and frames of OUT (JSON lines) with TRUTH; AUTH is the auth
# every event must carry.
check_against_truth() { # name out truth auth
    local name=$1 out=$2 truth=$3 auth=$4
    local want got
    want=$(truth_message_lines "$truth")
    got=$(event_message_lines "$out" message)
    [ -n "$want" ] || err "$name: the truth has no message"
    controls=$((controls + $(grep -c -e ' keepalive ' -e ' dl_confirmation ' <<<"$want")))
    if [ "$want" != "$got" ]; then
        err "$name: messages differ from the truth (< truth, > sigfoxd):"
        diff <(echo "$want") <(echo "$got") | head -20
    fi
    local bad
    bad=$(jq -r --arg a "$auth" 'select(.auth != $a) | "\(.type) \(.ep_id) \(.mc) \(.auth)"' "$out")
    [ -z "$bad" ] || err "$name: events whose auth is not $auth: $bad"
    # Every burst is a frame of its rank, with carrier and time close to the truth.
    local frames_want frames_got
    frames_want=$(jq -r 'select(.type == "burst") | "\(.ep_id) \(.mc) \(.rank)"' "$truth" | sort)
    frames_got=$(jq -r 'select(.type == "frame") | "\(.ep_id) \(.mc) \(.rank)"' "$out" | sort)
    if [ "$frames_want" != "$frames_got" ]; then
        err "$name: frames differ from the truth bursts (< truth, > sigfoxd):"
        diff <(echo "$frames_want") <(echo "$frames_got") | head -20
    fi
    local far
    far=$(jq -r -s '(map(select(.type == "burst")) | map({key: "\(.ep_id)/\(.mc)/\(.rank)", value: .})
            | from_entries) as $t
        | map(select(.type == "frame")) | .[]
        | ($t["\(.ep_id)/\(.mc)/\(.rank)"]) as $b | select($b != null)
        | select(((.freq_hz - $b.freq_hz) | fabs) > 50 or ((.t_start_s - $b.t_start_s) | fabs) > 0.02)
        | "\(.ep_id)/\(.mc)/\(.rank): freq \(.freq_hz) vs \($b.freq_hz), t \(.t_start_s) vs \($b.t_start_s)"' \
        <(cat "$truth" "$out"))
    [ -z "$far" ] || err "$name: frames off by more than 50 Hz or 20 ms: $far"
    # Event envelope.
    local env
    env=$(jq -r 'select(.format_version != 1 or (.type | IN("frame", "message") | not)) | .type' "$out")
    [ -z "$env" ] || err "$name: unexpected event types or versions: $env"
}

controls=0 # control messages compared, over all scenarios

run_replay() { # name out err args...
    local name=$1 out=$2 errf=$3
    shift 3
    "$SFX" --no-config --replay "$@" >"$out" 2>"$errf"
}

# --- SigMF: rate, centre and start time (core:datetime) from the metadata -------------------
cap="$tmp/rc1"
"$SYNTH" -o "$cap" --format sigmf --sigmf-datatype cs16 --rate 1024k --duration 8 \
    --devices 4 --interval 2 --ebn0 22:30 --seed 11 --start-utc 2026-12-05T10:00:00.25Z 2>"$tmp/synth.log" ||
    { echo "FAIL: synth: $(cat "$tmp/synth.log")"; exit 1; }
chmod 600 "$cap.keys"
if run_replay sigmf "$tmp/sigmf.jsonl" "$tmp/sigmf.err" "$cap.sigmf-meta" --keys "$cap.keys"; then
    check_against_truth sigmf "$tmp/sigmf.jsonl" "$cap.truth.jsonl" ok
    grep -q "Replay finished" "$tmp/sigmf.err" || err "sigmf: no summary line: $(cat "$tmp/sigmf.err")"
    # time_utc = core:datetime + t_start_s, to the microsecond, on every event with a time
    jq_e -s '[.[] | select(.t_start_s != null)] | length > 0 and all(.time_utc != null and
        ((.time_utc[0:19] + "Z" | fromdateiso8601) + (.time_utc[20:26] | tonumber) / 1e6
         - 1796464800.25 - .t_start_s | fabs) < 2e-6)' "$tmp/sigmf.jsonl" >/dev/null ||
        err "sigmf: time_utc is not core:datetime + t_start_s: $(jq -c 'select(.t_start_s != null) | [.type, .t_start_s, .time_utc]' "$tmp/sigmf.jsonl" | head -3)"
    grep -q "Recording start from SigMF core:datetime, time_utc: 2026-12-05T10:00:00.250000Z" "$tmp/sigmf.err" ||
        err "sigmf: no recording start line"
else
    err "sigmf: exit $?: $(tail -5 "$tmp/sigmf.err")"
fi
# Without keys nothing can be authenticated.
if run_replay nokeys "$tmp/nokeys.jsonl" "$tmp/nokeys.err" "$cap.sigmf-meta"; then
    check_against_truth nokeys "$tmp/nokeys.jsonl" "$cap.truth.jsonl" unchecked
else
    err "nokeys: exit $?: $(tail -5 "$tmp/nokeys.err")"
fi

# --- 30 s, 10 devices (seed 1 has a single-frame message that the receiver hands over
# after the device's next one: it must not be refused as a replay) -------------------------
capb="$tmp/busy_868.13M_1024k.cu8"
"$SYNTH" -o "$capb" --rate 1024k --duration 30 --devices 10 --ebn0 20:30 --seed 1 \
    2>"$tmp/synthb.log" || { echo "FAIL: synth: $(cat "$tmp/synthb.log")"; exit 1; }
chmod 600 "$capb.keys"
if run_replay busy "$tmp/busy.jsonl" "$tmp/busy.err" "$capb" --keys "$capb.keys"; then
    check_against_truth busy "$tmp/busy.jsonl" "$capb.truth.jsonl" ok
    # a raw recording does not say when it was made: no time_utc
    jq_e -s 'all(.time_utc == null)' "$tmp/busy.jsonl" >/dev/null || err "busy: time_utc in a raw replay"
else
    err "busy: exit $?: $(tail -5 "$tmp/busy.err")"
fi
rm -f "$capb"

# --- raw cu8 named rtl_433 style, BR600 at 250 kS/s ----------------------------------------
cap2="$tmp/x_868.13M_250k.cu8"
"$SYNTH" -o "$cap2" --rate 250k --duration 5 --devices 4 --interval 1.5 --baud 600 \
    --ebn0 20:28 --seed 5 2>"$tmp/synth2.log" || { echo "FAIL: synth: $(cat "$tmp/synth2.log")"; exit 1; }
chmod 600 "$cap2.keys"
if run_replay names "$tmp/names.jsonl" "$tmp/names.err" "$cap2" --keys "$cap2.keys"; then
    check_against_truth names "$tmp/names.jsonl" "$cap2.truth.jsonl" ok
    grep -q "rate_from: file name" "$tmp/names.err" || grep -q "file name" "$tmp/names.err" ||
        err "names: the log does not say the rate came from the file name: $(cat "$tmp/names.err")"
else
    err "names: exit $?: $(tail -5 "$tmp/names.err")"
fi

# --- raw cf32 without metadata: flags give rate and centre (RC2, 902.2 MHz, BR600) ---------
cap3="$tmp/rc2.cf32"
"$SYNTH" -o "$cap3" --rc 2 --rate 500k --duration 5 --devices 3 --interval 1 \
    --ebn0 22:28 --seed 8 2>"$tmp/synth3.log" || { echo "FAIL: synth: $(cat "$tmp/synth3.log")"; exit 1; }
chmod 600 "$cap3.keys"
if run_replay flags "$tmp/flags.jsonl" "$tmp/flags.err" "$cap3" --rate 500k \
    --center-freq 902.2M --rc RC2 --keys "$cap3.keys"; then
    check_against_truth flags "$tmp/flags.jsonl" "$cap3.truth.jsonl" ok
else
    err "flags: exit $?: $(tail -5 "$tmp/flags.err")"
fi
# The same file without a rate: a usage error that says what to give.
run_replay norate "$tmp/norate.jsonl" "$tmp/norate.err" "$cap3"
rc=$?
[ $rc = 64 ] || err "norate: exit $rc, expected 64"
grep -q -- "--rate" "$tmp/norate.err" || err "norate: message does not mention --rate: $(cat "$tmp/norate.err")"

# --- noise and interferers only: no frame at all --------------------------------------------
cap4="$tmp/noise.cs8"
"$SYNTH" -o "$cap4" --rate 1024k --duration 4 --devices 0 --cw 2 --fsk 1 --seed 2 \
    2>"$tmp/synth4.log" || { echo "FAIL: synth: $(cat "$tmp/synth4.log")"; exit 1; }
if run_replay noise "$tmp/noise.jsonl" "$tmp/noise.err" "$cap4" --rate 1024k --center-freq 868.13M; then
    [ ! -s "$tmp/noise.jsonl" ] || err "noise: events from noise: $(head -3 "$tmp/noise.jsonl")"
else
    err "noise: exit $?: $(tail -5 "$tmp/noise.err")"
fi

# --- truncated file: the error comes after everything decoded before the cut ---------------
data="$cap.sigmf-data" # cs16: 4 bytes per sample
bytes=$(stat -c %s "$data")
cut_samples=$((bytes / 4 * 6 / 10))
cut_s=$(awk -v n=$cut_samples 'BEGIN { printf "%.6f", n / 1024000 }')
head -c $((cut_samples * 4 + 3)) "$data" >"$tmp/trunc.cs16" # ends in a partial sample
run_replay trunc "$tmp/trunc.jsonl" "$tmp/trunc.err" "$tmp/trunc.cs16" --rate 1024k \
    --center-freq 868.13M --keys "$cap.keys"
rc=$?
[ $rc = 1 ] || err "trunc: exit $rc, expected 1"
grep -qi "trunc" "$tmp/trunc.err" || err "trunc: no clear error: $(cat "$tmp/trunc.err")"
# Messages whose last burst ended 0.5 s before the cut must have been printed.
want=$(jq -r -s --argjson cut "$cut_s" 'map(select(.type == "burst")) | group_by(.message)[]
        | select((map(.t_end_s) | max) < $cut - 0.5) | .[0] | "\(.ep_id) \(.mc)"' \
    "$cap.truth.jsonl" | sort)
got=$(jq -r 'select(.type == "message") | "\(.ep_id) \(.mc)"' "$tmp/trunc.jsonl" | sort)
[ -n "$want" ] || err "trunc: the test capture has no message before the cut"
missing=$(comm -23 <(echo "$want") <(echo "$got"))
[ -z "$missing" ] || err "trunc: messages before the cut not printed: $missing"
# The error line comes last, after the events (stderr order: summary, then error).
tail -1 "$tmp/trunc.err" | grep -qi "error" || err "trunc: the error is not the last line"

# --- usage errors ------------------------------------------------------------------------
"$SFX" --no-config --replay "$tmp/absent.cu8" --rate 1024k --center-freq 868.13M \
    >"$tmp/absent.out" 2>"$tmp/absent.err"
rc=$?
[ $rc = 1 ] || err "absent file: exit $rc, expected 1"
grep -q "absent.cu8" "$tmp/absent.err" || err "absent file: message does not name it: $(cat "$tmp/absent.err")"
"$SFX" --no-config --replay "$cap4" --format bogus >/dev/null 2>"$tmp/fmt.err"
rc=$?
[ $rc = 64 ] || err "--format bogus: exit $rc, expected 64"
"$SFX" --no-config --replay "$cap4" --rate 9M >/dev/null 2>"$tmp/rate.err"
rc=$?
[ $rc = 64 ] || err "--rate 9M: exit $rc, expected 64"
grep -q "out of range" "$tmp/rate.err" || err "--rate 9M: $(cat "$tmp/rate.err")"

# the scenarios above must exercise the control-message fields
[ "$controls" -gt 0 ] || err "no keepalive or dl_confirmation message in any scenario"
echo "control messages compared: $controls"
finish replay_e2e
