#!/bin/bash
# downlink_e2e: B-procedures end to end. Licence: MIT.
#   replay, RC1..RC7 (RC2/RC4 BR600, the others BR100; RC1 also BR600): a synthesized
#     B-procedure (sigfox-synth --bproc-confirm) -> sigfoxd --replay with a direct-mode
#     payload and --tx-file -> the DL file -> sigfox-dlrx decodes the payload with AUTH ok;
#     the DL (ramps included) lies inside the device's receive window (spec Table 4-1) and
#     its carrier within ±150 Hz of the truth's first-frame carrier + Δf_GAP (Table 2-1);
#     the device's confirmation in the capture -> downlink_ack with its VDD/temperature/RSSI;
#     Monarch beacon written beside it (RC1);
#   replay without confirmation -> downlink_lost (timeout); a callback device nobody
#     answers -> downlink_request then downlink_no_answer;
#   live through the SoapySDR iqfile driver (ZeroMQ on ipc:// in a temp dir): direct device
#     -> DL file; callback answered in time -> transmitted with the answered payload; late
#     answer -> rejected with the reason; malformed answers -> error replies; a receive-only
#     radio without --tx-file -> downlink disabled with a clear message, receiver running.
# The window and Δf_GAP values are the spec's, typed here independently of src/rc.c.
# Run from the repo root with BUILD=<abs build dir>; KEEP=1 keeps the temp dir; DL_EBN0=dB
# changes the uplinks' Eb/N0 (default 20) to measure the accuracy at other levels.
set -u
SFX="${BUILD:?set BUILD}/bin/sigfoxd"
SYNTH="$BUILD/bin/sigfox-synth"
DLRX="$BUILD/bin/sigfox-dlrx"
SUB="$BUILD/bin/sigfox-sub"
export SOAPY_SDR_PLUGIN_PATH="$BUILD/soapy"
export SOAPY_SDR_ROOT=/nonexistent # no USB probing by other drivers
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
need_jq

# Spec Table 4-1 (T_W, T_RX) and Table 2-1 (Δf_GAP) per RC; RC7 from Sigfox's published
# values (RC1 timing).
declare -A TW=([1]=20 [2]=20 [3]=19 [4]=20 [5]=19 [6]=20 [7]=20)
declare -A TRX=([1]=25 [2]=25 [3]=33.5 [4]=25 [5]=33.5 [6]=25 [7]=25)
declare -A GAP=([1]=1395000 [2]=3000000 [3]=-1000000 [4]=1500000 [5]=-1000000 [6]=1100000 [7]=300000)
DL_S=$(awk 'BEGIN { printf "%.9f", 224 / 600 }')  # 224 bits at 600 baud
RAMP_S=$(awk 'BEGIN { printf "%.9f", 0.5 / 600 }') # §2.5.6

# synth_bproc NAME RC BAUD SEED DURATION DEVICES [extra synth args] -> $tmp/NAME.sigmf-meta,
# NAME.truth.jsonl, NAME.keys
synth_bproc() {
    local name=$1 rc=$2 baud=$3 seed=$4 dur=$5 devs=$6
    shift 6
    "$SYNTH" -o "$tmp/$name" --format sigmf --sigmf-datatype cs16 --rc "$rc" --rate 250k \
        --duration "$dur" --devices "$devs" --interval 1 --bf 1 --one-bit 0 --keepalive 0 \
        --dl-confirmation 0 --single-frame 0 --baud "$baud" --ebn0 "${DL_EBN0:-20}" --seed "$seed" "$@" \
        2>"$tmp/$name.synth.err" || { err "$name: synth failed: $(tail -2 "$tmp/$name.synth.err")"; return 1; }
    chmod 600 "$tmp/$name.keys"
}

# check_dl NAME RC EP_ID MC PAYLOAD FILE TRUTH_LINE: decodes FILE with sigfox-dlrx and checks
# payload, AUTH, window and carrier against the truth's B-procedure; prints the numbers.
check_dl() {
    local name=$1 rc=$2 ep=$3 mc=$4 payload=$5 file=$6 bp=$7 keys=$8
    [ -f "$file" ] && [ -f "$file.json" ] || { err "$name: no DL file for $ep/$mc"; return; }
    local t0 out
    t0=$(jq -r '.t_first_sample_s' "$file.json")
    out=$("$DLRX" --id "$ep" --mc "$mc" --keys "$keys" --time-offset "$t0" "$file" 2>"$tmp/$name.dlrx.err")
    [ "$(echo "$out" | grep -c .)" = 1 ] || { err "$name: sigfox-dlrx found $(echo "$out" | grep -c .) bursts: $(cat "$tmp/$name.dlrx.err")"; return; }
    echo "$out" | jq_e --arg p "$payload" '.payload == $p and .auth == "ok" and .crc_ok' >/dev/null ||
        err "$name: DL decode: $out (want payload $payload, auth ok)"
    local res
    res=$(jq -n -r --argjson d "$out" --argjson b "$bp" --argjson tw "${TW[$rc]}" --argjson trx "${TRX[$rc]}" \
        --argjson gap "${GAP[$rc]}" --argjson dl "$DL_S" --argjson ramp "$RAMP_S" '
        ($b.ul_t_end_s + $tw) as $w0 | ($w0 + $trx) as $w1
        | ($b.ul_freq_hz + $gap) as $f
        | {start_after_open: ($d.t_start_s - $w0), end_before_close: ($w1 - ($d.t_start_s + $dl + $ramp)),
           inside: (($d.t_start_s - $ramp) >= $w0 and ($d.t_start_s + $dl + $ramp) <= $w1),
           freq_err: ($d.freq_hz - $f)}
        | "\(.inside) \(.start_after_open) \(.end_before_close) \(.freq_err)"')
    read -r inside open_s close_s ferr <<<"$res"
    [ "$inside" = true ] || err "$name: DL outside the window: starts $open_s s after it opens, ends $close_s s before it closes"
    awk -v e="$ferr" 'BEGIN { exit !(e <= 150 && e >= -150) }' || err "$name: DL carrier $ferr Hz from first frame + delta_f_GAP"
    # sigfoxd plans the first bit window_margin_s (1 s) + a 0.5-symbol ramp after the
    # window opens: the rest is the receiver's error on the first frame's end.
    printf '%-16s DL start %.6f s after the window opens (plan %+5.0f us), %.3f s before it closes; carrier error %+.2f Hz\n' \
        "$name" "$open_s" "$(awk -v o="$open_s" -v r="$RAMP_S" 'BEGIN { print (o - 1 - r) * 1e6 }')" "$close_s" "$ferr"
}

# --- replay, RC1..RC7 ---------------------------------------------------------------------
# name rc baud seed
cases=("rc1 1 100 3" "rc1-600 1 600 5" "rc2 2 600 3" "rc3 3 100 3" "rc4 4 600 4" "rc5 5 100 3" "rc6 6 100 3" "rc7 7 100 3")
for c in "${cases[@]}"; do
    read -r name rc baud seed <<<"$c"
    synth_bproc "$name" "$rc" "$baud" "$seed" 32 1 --bproc-confirm || continue
    truth="$tmp/$name.truth.jsonl"
    bp=$(jq -c 'select(.type == "bproc")' "$truth" | head -1)
    [ -n "$bp" ] || { err "$name: no B-procedure in the capture"; continue; }
    ep=$(echo "$bp" | jq -r .ep_id)
    mc=$(echo "$bp" | jq -r .mc)
    payload=$(printf '%08X%08X' "$((0x$ep ^ rc))" "$((mc * 7919))" | cut -c1-16)
    mkdir -p "$tmp/$name.dl"
    cat >"$tmp/$name.conf" <<EOF
devices: { list = ( { ep_id = "$ep"; downlink_payload = "$payload"; } ); };
EOF
    extra=()
    if [ "$name" = rc1 ]; then # Monarch beacon beside the DL (frequency: the seed's example)
        extra=(--monarch --monarch-freq 869.505M --monarch-df1 1260.3 --monarch-df2 1489.4)
    fi
    "$SFX" -c "$tmp/$name.conf" --rc "RC$rc" --replay "$tmp/$name.sigmf-meta" --keys "$tmp/$name.keys" \
        --tx-file "$tmp/$name.dl" "${extra[@]}" >"$tmp/$name.out" 2>"$tmp/$name.err" ||
        { err "$name: sigfoxd exit $?: $(tail -3 "$tmp/$name.err")"; continue; }
    out="$tmp/$name.out"
    sent=$(jq -c --arg ep "$ep" --argjson mc "$mc" 'select(.type == "downlink_sent" and .ep_id == $ep and .mc == $mc)' "$out")
    [ -n "$sent" ] || { err "$name: no downlink_sent: $(grep -i downlink "$tmp/$name.err" | tail -3)"; continue; }
    file=$(echo "$sent" | jq -r .file)
    check_dl "$name" "$rc" "$ep" "$mc" "$payload" "$file" "$bp" "$tmp/$name.keys"
    # The scheduled event carries the frame; the sidecar repeats it.
    jq_e -s --arg ep "$ep" --argjson mc "$mc" --slurpfile side "$file.json" '
        map(select(.type == "downlink_scheduled" and .ep_id == $ep and .mc == $mc)) | length == 1
        and .[0].bitstream == $side[0].bitstream and .[0].dl_auth == $side[0].dl_auth
        and .[0].mode == "direct" and .[0].quota_used == 1 and .[0].conf_mc == ($mc + 1) % 4096' \
        "$out" >/dev/null || err "$name: downlink_scheduled differs from the sidecar $(cat "$file.json")"
    # The confirmation frame in the capture -> downlink_ack with the device's report.
    ack=$(jq -c --arg ep "$ep" --argjson mc "$mc" 'select(.type == "downlink_ack" and .ep_id == $ep and .mc == $mc)' "$out")
    if [ -z "$ack" ]; then
        err "$name: no downlink_ack: $(jq -c 'select(.type | startswith("downlink_"))| {type, status, reason}' "$out")"
    else
        jq -n -e --argjson a "$ack" --argjson b "$bp" '$b.confirmed and $a.conf_mc == $b.conf_mc
            and $a.vdd_idle_mv == $b.vdd_idle_mv and $a.vdd_tx_mv == $b.vdd_tx_mv
            and $a.temp_tenth_c == $b.temp_tenth_c and $a.rssi_dbm == $b.rssi_dbm
            and ($a.t_conf_s >= 1.4 - 0.1 and $a.t_conf_s <= 4.0 + 0.1)' >/dev/null ||
            err "$name: downlink_ack $ack does not match the truth $bp"
    fi
    # (A device with short frames may start another B-procedure after its confirmation;
    # its downlink falls after the end of the capture: only this one is checked.)
    n=$(jq -r --arg ep "$ep" --argjson mc "$mc" 'select(.ep_id == $ep and .mc == $mc)
        | select(.type == "downlink_lost" or .type == "downlink_refused" or .type == "downlink_failed")' "$out" | wc -l)
    [ "$n" = 0 ] || err "$name: unexpected lost/refused/failed events"
    if [ "$name" = rc1 ]; then
        mb=$(jq -c 'select(.type == "monarch_beacon")' "$out")
        echo "$mb" | jq_e -s 'length == 1 and .[0].status == "ok" and .[0].t_start_s >= 0 and .[0].t_start_s < 10
            and .[0].df1_hz == 1260.3 and .[0].df2_hz == 1489.4 and .[0].freq_hz == 869505000' >/dev/null ||
            err "rc1: monarch_beacon events: $mb"
        mfile=$(echo "$mb" | jq -r .file)
        jq_e '.type == "monarch_iq" and .beacon_freq_hz == 869505000 and .n_samples > 96000' "$mfile.json" >/dev/null ||
            err "rc1: Monarch sidecar: $(cat "$mfile.json" 2>&1)"
        # 0.4 s of beacon + 2 x 8 symbols of silence at 240 kS/s, cf32
        [ "$(stat -c %s "$mfile")" = $(((96000 + 2 * 3200) * 8)) ] || err "rc1: Monarch file size $(stat -c %s "$mfile")"
        "$DLRX" "$mfile" >/dev/null 2>&1 && err "rc1: sigfox-dlrx found a downlink in the Monarch beacon"
    fi
done

# --- replay: confirmation absent -> downlink_lost; callback without application ---------------
synth_bproc lost 1 100 8 36 2 || true
if [ -f "$tmp/lost.keys" ]; then
    mapfile -t ids < <(grep -v '^#' "$tmp/lost.keys" | awk '{print $1}')
    D=${ids[0]} C=${ids[1]}
    echo "devices: { list = ( { ep_id = \"$D\"; downlink_payload = \"A5A5A5A5A5A5A5A5\"; } ); };" >"$tmp/lost.conf"
    mkdir -p "$tmp/lost.dl"
    "$SFX" -c "$tmp/lost.conf" --replay "$tmp/lost.sigmf-meta" --keys "$tmp/lost.keys" \
        --tx-file "$tmp/lost.dl" >"$tmp/lost.out" 2>"$tmp/lost.err" || err "lost: sigfoxd exit $?"
    jq_e -s --arg d "$D" 'map(select(.ep_id == $d)) | (map(select(.type == "downlink_sent")) | length == 1)
        and (map(select(.type == "downlink_lost")) | length == 1 and .[0].status == "timeout"
             and (.[0].reason | test("no confirmation")))' "$tmp/lost.out" >/dev/null ||
        err "lost: device $D: $(jq -c --arg d "$D" 'select(.ep_id == $d and (.type | startswith("downlink")))' "$tmp/lost.out")"
    jq_e -s --arg c "$C" 'map(select(.ep_id == $c)) | (map(select(.type == "downlink_request")) | length == 1
        and .[0].mode == "callback" and .[0].deadline_s > .[0].ul_t_end_s)
        and (map(select(.type == "downlink_no_answer")) | length == 1 and .[0].status == "no_answer")
        and (map(select(.type == "downlink_sent")) | length == 0)' "$tmp/lost.out" >/dev/null ||
        err "lost: callback device $C: $(jq -c --arg c "$C" 'select(.ep_id == $c and (.type | startswith("downlink")))' "$tmp/lost.out")"
    [ "$(ls "$tmp/lost.dl" | grep -c 'cf32$')" = 1 ] || err "lost: DL files: $(ls "$tmp/lost.dl")"
fi

# --- live, through the SoapySDR iqfile driver -------------------------------------------------
EV="ipc://$tmp/events"
CMD="ipc://$tmp/commands"
synth_bproc live 1 100 9 32 3 --bproc-confirm || true
if [ -f "$tmp/live.keys" ]; then
    mapfile -t ids < <(grep -v '^#' "$tmp/live.keys" | awk '{print $1}')
    D=${ids[0]} A=${ids[1]} L=${ids[2]} # direct, callback answered, callback late
    echo "devices: { list = ( { ep_id = \"$D\"; downlink_payload = \"D1D2D3D4D5D6D7D8\"; } ); };" >"$tmp/live.conf"
    mkdir -p "$tmp/live.dl"
    "$SUB" --json --pub "$EV" >"$tmp/live.jsonl" 2>"$tmp/live.sub.err" &
    SUB_PID=$!
    pids+=("$SUB_PID")
    sleep 0.3
    # A long transmitter lead commits each DL ~9 s into the stream (the window opens at
    # ~22 s) so that the test need not wait for it; the file sink writes at commit.
    "$SFX" -c "$tmp/live.conf" --device "driver=iqfile,path=$tmp/live.sigmf-meta" --rate 250k \
        --pub "$EV" --cmd "$CMD" --state-dir "" --keys "$tmp/live.keys" --tx-file "$tmp/live.dl" \
        --dl-lead 14 --dl-answer-timeout 5 --stats-interval 1 >"$tmp/live.out" 2>"$tmp/live.err" &
    SFX_PID=$!
    pids+=("$SFX_PID")
    # wait_event JQ_FILTER SECONDS: until the subscriber has printed a matching event
    wait_event() {
        local i
        for ((i = 0; i < $2 * 10; i++)); do
            jq_e -s "map(select($1)) | length > 0" "$tmp/live.jsonl" >/dev/null 2>&1 && return 0
            sleep 0.1
        done
        return 1
    }
    if wait_event ".type == \"downlink_request\" and .ep_id == \"$A\"" 15; then
        amc=$(jq -r -s --arg a "$A" 'map(select(.type == "downlink_request" and .ep_id == $a))[0].mc' "$tmp/live.jsonl")
        "$SUB" --cmd "$CMD" "{\"cmd\":\"downlink\",\"ep_id\":\"$A\",\"mc\":$amc,\"payload\":\"0A0B0C0D0E0F1011\"}" \
            >"$tmp/answer.json" || err "live: in-time answer refused: $(cat "$tmp/answer.json")"
        jq_e --arg a "$A" '.ok and .ep_id == $a and .payload == "0A0B0C0D0E0F1011" and .deadline_s > 0 and .t_start_s > 0' \
            "$tmp/answer.json" >/dev/null || err "live: answer reply $(cat "$tmp/answer.json")"
    else
        err "live: no downlink_request for $A: $(tail -5 "$tmp/live.err")"
    fi
    # Malformed answers: error replies, the socket keeps working.
    for req in '{"cmd":"downlink","ep_id":"XYZ","mc":1,"payload":"0011223344556677"}' \
        '{"cmd":"downlink","ep_id":"'"$A"'","mc":4096,"payload":"0011223344556677"}' \
        '{"cmd":"downlink","ep_id":"'"$A"'","mc":1,"payload":"00112233445566"}' \
        '{"cmd":"downlink","ep_id":"'"$A"'","mc":1}' \
        '{"cmd":"downlink","ep_id":"'"$A"'","mc":"1","payload":"0011223344556677"}' \
        '{"cmd":"downlink","ep_id":"'"$D"'","mc":5,"payload":"0011223344556677"}'; do
        "$SUB" --cmd "$CMD" "$req" >"$tmp/bad.json" && err "live: malformed answer accepted: $req"
        jq_e '.ok == false and .cmd == "downlink" and (.error | length > 5)' "$tmp/bad.json" >/dev/null ||
            err "live: reply to $req: $(cat "$tmp/bad.json")"
    done
    if wait_event ".type == \"downlink_no_answer\" and .ep_id == \"$L\"" 15; then
        lmc=$(jq -r -s --arg l "$L" 'map(select(.type == "downlink_no_answer" and .ep_id == $l))[0].mc' "$tmp/live.jsonl")
        "$SUB" --cmd "$CMD" "{\"cmd\":\"downlink\",\"ep_id\":\"$L\",\"mc\":$lmc,\"payload\":\"0011223344556677\"}" \
            >"$tmp/late.json" && err "live: late answer accepted"
        jq_e '.ok == false and (.error | test("^late: the deadline was stream time"))' "$tmp/late.json" >/dev/null ||
            err "live: late answer reply $(cat "$tmp/late.json")"
    else
        err "live: no downlink_no_answer for $L"
    fi
    wait_event ".type == \"downlink_sent\" and .ep_id == \"$A\"" 10 || err "live: A's downlink not sent"
    wait_event ".type == \"downlink_sent\" and .ep_id == \"$D\"" 10 || err "live: D's downlink not sent"
    kill -TERM "$SFX_PID"
    for ((i = 0; i < 50; i++)); do kill -0 "$SFX_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$SFX_PID"
    rc=$?
    sleep 0.3
    kill -INT "$SUB_PID" 2>/dev/null
    wait "$SUB_PID" 2>/dev/null
    [ $rc = 0 ] || err "live: sigfoxd exit $rc: $(tail -3 "$tmp/live.err")"
    truth="$tmp/live.truth.jsonl"
    for dev in "$D:D1D2D3D4D5D6D7D8" "$A:0A0B0C0D0E0F1011"; do
        ep=${dev%%:*} payload=${dev#*:}
        sent=$(jq -c -s --arg ep "$ep" 'map(select(.type == "downlink_sent" and .ep_id == $ep))[0]' "$tmp/live.jsonl")
        bp=$(jq -c --arg ep "$ep" 'select(.type == "bproc" and .ep_id == $ep)' "$truth" | head -1)
        [ "$sent" != null ] && [ -n "$bp" ] || { err "live: $ep: no downlink_sent or no truth"; continue; }
        echo "$sent" | jq_e '.time_utc | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T")' >/dev/null || err "live: $ep: no time_utc"
        check_dl "live-$ep" 1 "$ep" "$(echo "$sent" | jq -r .mc)" "$payload" "$(echo "$sent" | jq -r .file)" "$bp" "$tmp/live.keys"
    done
    jq_e -s --arg l "$L" 'map(select(.type == "downlink_sent" and .ep_id == $l)) | length == 0' "$tmp/live.jsonl" >/dev/null ||
        err "live: the late device got a downlink"
    jq_e -s 'map(select(.type == "stats" and .downlink != null)) | last | .downlink.answers_ok >= 1
        and .downlink.answers_rejected >= 7 and .downlink.tx.sent >= 2' "$tmp/live.jsonl" >/dev/null ||
        err "live: stats.downlink: $(jq -c -s 'map(select(.type == "stats"))|last|.downlink' "$tmp/live.jsonl")"
    # Stopped before the confirmations were due: reported, never silent.
    jq_e -s 'map(select(.type == "downlink_lost" and .status == "end_of_stream")) | length == 2' "$tmp/live.jsonl" >/dev/null ||
        err "live: lost events at shutdown: $(jq -c 'select(.type == "downlink_lost")|{ep_id,status}' "$tmp/live.jsonl")"
fi

# --- live, receive-only radio and no file sink: downlink disabled, receiver runs -------------
if [ -f "$tmp/live.keys" ]; then
    "$SFX" --no-config --device "driver=iqfile,path=$tmp/live.sigmf-meta" --rate 250k --downlink \
        --pub "" --cmd "$CMD" --state-dir "" --keys "$tmp/live.keys" >"$tmp/rxonly.out" 2>"$tmp/rxonly.err" &
    SFX_PID=$!
    pids+=("$SFX_PID")
    # start-up takes seconds under ASan on a loaded machine: wait for the line, don't guess
    wait_for 30 grep -q "Downlink disabled: SoapySDR device 'driver=iqfile,path=.*' has no TX channel (receive-only radio" "$tmp/rxonly.err" ||
        err "rxonly: no clear start-up message: $(grep -i downlink "$tmp/rxonly.err")"
    "$SUB" --cmd "$CMD" '{"cmd":"downlink","ep_id":"'"$A"'","mc":1,"payload":"0011223344556677"}' >"$tmp/off.json" &&
        err "rxonly: downlink command accepted"
    jq_e '.ok == false and (.error | test("no TX channel"))' "$tmp/off.json" >/dev/null || err "rxonly: reply $(cat "$tmp/off.json")"
    rxonly_running() {
        "$SUB" --cmd "$CMD" stats >"$tmp/rxonly.stats" && jq_e '.stats.samples_in > 0' "$tmp/rxonly.stats" >/dev/null
    }
    wait_for 30 rxonly_running || err "rxonly: receiver not running: $(cat "$tmp/rxonly.stats")"
    kill -TERM "$SFX_PID"
    wait "$SFX_PID" || err "rxonly: exit $?"
fi

finish downlink_e2e
