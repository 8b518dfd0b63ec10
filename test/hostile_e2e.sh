#!/bin/bash
# hostile_e2e: files and signals from outside cannot hang, grow or fool sigfoxd (issue 15,
# defects 2, 5, 6, 8). Every run has a time bound (`timeout`): a hang is a failure, not a
# stuck CI job.
#   - SigMF metadata that is /dev/zero, a FIFO, empty, trailing garbage, absurd values,
#     header_bytes beyond the data: refused at once with the reason;
#   - a FIFO recording without a writer: SIGTERM during start-up stops sigfoxd (exit 0);
#   - keys file that is /dev/zero, a FIFO or a directory: sigfoxd and sigfox-frame refuse it;
#   - a WAV recording through a pipe (stdin and a FIFO) decodes like the file;
#   - --check-config catches identical endpoints, a state.dir that is a file, port 99999;
#   - live: SIGHUP with the keys file replaced by /dev/zero keeps the old keys, decoding goes
#     on, one SIGTERM stops the daemon;
#   - live: "devices" before any state, a forged verb (escaped in the log), a NaN id, and a
#     radio that overflows all the time (at most 5 "Samples lost" warnings a minute).
# Licence: MIT. Run from the repo root with BUILD=<abs build dir>.
set -u
SFX="${BUILD:?set BUILD}/bin/sigfoxd"
SYNTH="$BUILD/bin/sigfox-synth"
FRAME="$BUILD/bin/sigfox-frame"
export SOAPY_SDR_PLUGIN_PATH="$BUILD/soapy"
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
need_jq
T=20 # seconds any single run may take before it counts as a hang

# expect_refusal NAME WANT_STATUS MESSAGE_FRAGMENT CMD...
expect_refusal() {
    local name=$1 want=$2 msg=$3
    shift 3
    timeout $T "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    [ "$got" = 124 ] && { err "$name: hung (killed after $T s)"; return; }
    [ "$got" = "$want" ] || err "$name: exit $got, expected $want; stderr: $(tail -c 400 "$tmp/err")"
    grep -qF -- "$msg" "$tmp/err" || err "$name: stderr lacks '$msg': $(tail -c 400 "$tmp/err")"
}

# term_and_wait PID SECONDS WHAT LOG: one SIGTERM must end PID within SECONDS with exit 0.
term_and_wait() {
    local pid=$1 secs=$2 what=$3 log=$4 i st
    kill -TERM "$pid"
    for ((i = 0; i < secs * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        err "$what: still running $secs s after SIGTERM"
        return 1
    fi
    wait "$pid"
    st=$?
    [ "$st" = 0 ] || { err "$what: exit $st after SIGTERM, expected 0: $(tail -c 600 "$log")"; return 1; }
}

# --- SigMF metadata ------------------------------------------------------------------------
m="$tmp/m"
mkdir "$m"
ln -s /dev/zero "$m/zero.sigmf-meta"
touch "$m/zero.sigmf-data"
expect_refusal "meta /dev/zero" 1 "is a character device; it must be a regular file" \
    "$SFX" --no-config --replay "$m/zero.sigmf-meta"
mkfifo "$m/fifo.sigmf-meta"
touch "$m/fifo.sigmf-data"
expect_refusal "meta FIFO" 1 "is a FIFO (named pipe); it must be a regular file" \
    "$SFX" --no-config --replay "$m/fifo.sigmf-meta"
: >"$m/empty.sigmf-meta"
touch "$m/empty.sigmf-data"
expect_refusal "meta empty" 1 "invalid SigMF metadata: empty file" \
    "$SFX" --no-config --replay "$m/empty.sigmf-meta"
head -c 4096 /dev/zero >"$m/d.sigmf-data"
meta() { # name global-extra captures0-extra trailer
    printf '{"global": {"core:datatype": "cu8", "core:version": "1.0.0", "core:sample_rate": 1024000%s},
 "captures": [{"core:sample_start": 0, "core:frequency": 868130000%s}], "annotations": []}%s' \
        "$2" "$3" "$4" >"$m/$1.sigmf-meta"
    cp "$m/d.sigmf-data" "$m/$1.sigmf-data"
}
meta ok "" "" ""
timeout $T "$SFX" --no-config --replay "$m/ok.sigmf-meta" >"$tmp/out" 2>"$tmp/err" ||
    err "meta ok: exit $?: $(tail -c 400 "$tmp/err")"
meta trailing "" "" " {}"
expect_refusal "meta trailing garbage" 1 "text after the JSON value" \
    "$SFX" --no-config --replay "$m/trailing.sigmf-meta"
meta comment "" "" " // x"
expect_refusal "meta comment" 1 "not JSON" "$SFX" --no-config --replay "$m/comment.sigmf-meta"
meta hugefreq "" ', "core:frequency": 1e300' ""
expect_refusal "meta frequency 1e300" 1 "core:frequency" \
    "$SFX" --no-config --replay "$m/hugefreq.sigmf-meta"
sed -i 's/868130000/-868130000/' "$m/hugefreq.sigmf-meta"
meta negfreq "" "" ""
sed -i 's/868130000/-868130000/' "$m/negfreq.sigmf-meta"
expect_refusal "meta negative frequency" 1 "core:frequency -868130000" \
    "$SFX" --no-config --replay "$m/negfreq.sigmf-meta"
meta hdr "" ', "core:header_bytes": 5000' ""
expect_refusal "meta header_bytes beyond data" 1 "core:header_bytes 5000 is beyond the end" \
    "$SFX" --no-config --replay "$m/hdr.sigmf-meta"

# --- a FIFO recording without writer: a stop signal ends the start-up ---------------------
mkfifo "$m/nowriter_868.13M_1024k.cu8"
"$SFX" --no-config --replay "$m/nowriter_868.13M_1024k.cu8" >"$tmp/fifo.out" 2>"$tmp/fifo.err" &
pid=$!
pids+=("$pid")
sleep 1
if term_and_wait "$pid" 5 "SIGTERM during start-up (FIFO open)" "$tmp/fifo.err"; then
    grep -q "Stopped during start-up" "$tmp/fifo.err" || err "no 'Stopped during start-up': $(cat "$tmp/fifo.err")"
fi

# --- keys files that are not files ---------------------------------------------------------
ln -s /dev/zero "$m/zero.keys"
mkfifo "$m/fifo.keys"
mkdir "$m/dir.keys"
for k in zero fifo dir; do
    want="must be a regular file"
    [ $k = dir ] && want="is a directory"
    expect_refusal "sigfoxd --keys $k" 64 "$want" "$SFX" --no-config --keys "$m/$k.keys" --check-config
    expect_refusal "sigfox-frame --keys $k" 64 "$want" \
        "$FRAME" ul-decode --keys "$m/$k.keys" AAAAA06BE1A1DB334D0000B0C090
done

# --- --check-config: what used to pass and then fail at start ------------------------------
expect_refusal "identical endpoints" 64 "each needs its own endpoint" \
    "$SFX" --no-config --pub "ipc://$tmp/same" --cmd "ipc://$tmp/same" --check-config
touch "$tmp/statefile"
expect_refusal "state.dir is a file" 64 "exists and is not a directory" \
    "$SFX" --no-config --state-dir "$tmp/statefile" --check-config
expect_refusal "port 99999" 64 "the port must be a number 1..65535" \
    "$SFX" --no-config --pub "tcp://127.0.0.1:99999" --check-config

# --- WAV through a pipe: opened once --------------------------------------------------------
wav="$tmp/w_868.13M_1024k.wav"
"$SYNTH" -o "$wav" --rate 1024k --duration 6 --devices 2 --interval 1 --ebn0 25:30 --seed 5 \
    2>"$tmp/synth.err" || err "synth: $(cat "$tmp/synth.err")"
timeout 60 "$SFX" --no-config --keys "$wav.keys" --replay "$wav" >"$tmp/wav.file.jsonl" 2>"$tmp/wav.file.err" ||
    err "WAV file replay failed: $(tail -c 400 "$tmp/wav.file.err")"
want=$(jq -r 'select(.type == "message") | "\(.ep_id) \(.mc)"' "$tmp/wav.file.jsonl" | sort)
[ -n "$want" ] || err "WAV file replay decoded no message"
timeout 60 "$SFX" --no-config --keys "$wav.keys" --replay - --format wav <"$wav" \
    >"$tmp/wav.stdin.jsonl" 2>"$tmp/wav.stdin.err" || err "WAV on stdin failed: $(tail -c 400 "$tmp/wav.stdin.err")"
got=$(jq -r 'select(.type == "message") | "\(.ep_id) \(.mc)"' "$tmp/wav.stdin.jsonl" | sort)
[ "$want" = "$got" ] || err "WAV on stdin: messages differ from the file replay"
mkfifo "$tmp/p.wav"
cat "$wav" >"$tmp/p.wav" &
pids+=($!)
timeout 60 "$SFX" --no-config --keys "$wav.keys" --rate 1024k --center-freq 868.13M --replay "$tmp/p.wav" \
    >"$tmp/wav.fifo.jsonl" 2>"$tmp/wav.fifo.err" || err "WAV through a FIFO failed: $(tail -c 400 "$tmp/wav.fifo.err")"
got=$(jq -r 'select(.type == "message") | "\(.ep_id) \(.mc)"' "$tmp/wav.fifo.jsonl" | sort)
[ "$want" = "$got" ] || err "WAV through a FIFO: messages differ from the file replay"

# --- live: SIGHUP reload from /dev/zero keeps decoding; one SIGTERM stops --------------------
cap="$tmp/live.cs16"
"$SYNTH" -o "$cap" --rate 1024k --duration 6 --devices 2 --interval 1 --ebn0 25:30 --seed 9 \
    2>"$tmp/synth2.err" || err "synth: $(cat "$tmp/synth2.err")"
cp "$cap.keys" "$tmp/live.keys"
chmod 600 "$tmp/live.keys"
"$SFX" --no-config --device "driver=iqfile,path=$cap,rate=1024k,freq=868.13M,throttle=1" \
    --rate 1024k --pub "ipc://$tmp/ev" --cmd "ipc://$tmp/cmd" --state-dir "$tmp/state" \
    --keys "$tmp/live.keys" --stats-interval 1 >"$tmp/live.out" 2>"$tmp/live.err" &
pid=$!
pids+=("$pid")
sleep 2
rm "$tmp/live.keys"
ln -s /dev/zero "$tmp/live.keys"
kill -HUP "$pid"
sleep 1.5
term_and_wait "$pid" 3 "live: one SIGTERM after a SIGHUP reload from /dev/zero" "$tmp/live.err"
grep -q "Keys not reloaded, the old keys stay, error: keys file .*must be a regular file" "$tmp/live.err" ||
    err "live: no refused reload in the log: $(tail -c 600 "$tmp/live.err")"
grep -q "Samples lost" "$tmp/live.err" && err "live: samples lost around the reload: $(grep 'Samples lost' "$tmp/live.err" | head -3)"
grep -q "Message received" "$tmp/live.err" || err "live: nothing decoded"

# --- live: commands from a hostile client, a radio that overflows all the time --------------
SUB="$BUILD/bin/sigfox-sub"
"$SFX" --no-config --device "driver=iqfile,path=$cap,rate=1024k,freq=868.13M,throttle=1,buffer_s=0.0002" \
    --rate 1024k --pub "" --cmd "ipc://$tmp/cmd2" --state-dir "" --stats-interval 1 \
    >"$tmp/lost.out" 2>"$tmp/lost.err" &
pid=$!
pids+=("$pid")
sleep 0.5
# Defect 1: "devices" before any device has state (the ASan build aborted here).
timeout $T "$SUB" --cmd "ipc://$tmp/cmd2" devices >"$tmp/dev.json" 2>&1 || err "devices command: $(cat "$tmp/dev.json")"
# Defects 3 and 4: a forged log line and invalid JSON replies.
timeout $T "$SUB" --cmd "ipc://$tmp/cmd2" '{"cmd": "x\n<0>forged \u001b[2J"}' >"$tmp/forge.json" 2>&1
jq_e '.ok == false and (.error | contains("unknown command"))' "$tmp/forge.json" >/dev/null ||
    err "forged verb: reply $(cat "$tmp/forge.json")"
timeout $T "$SUB" --cmd "ipc://$tmp/cmd2" '{"cmd": "help", "id": NaN}' >"$tmp/nan.json" 2>&1
jq_e '.ok == false and (.error | contains("not valid JSON"))' "$tmp/nan.json" >/dev/null ||
    err "NaN id: reply $(cat "$tmp/nan.json")"
sleep 3
timeout $T "$SUB" --cmd "ipc://$tmp/cmd2" stats >"$tmp/stats.json" 2>&1 || err "stats: $(cat "$tmp/stats.json")"
kill -TERM "$pid"
wait "$pid"
disc=$(jq '.stats.discontinuities' "$tmp/stats.json")
warned=$(grep -c "Samples lost" "$tmp/lost.err")
[ "${disc:-0}" -gt 5 ] || err "the radio should have overflowed more than 5 times, discontinuities: $disc"
[ "$warned" -le 5 ] || err "Samples lost warnings are not rate-limited: $warned for $disc losses"
grep -q '^<0>\|^forged' "$tmp/lost.err" && err "a command forged a log line: $(grep -n 'forged' "$tmp/lost.err")"
grep -qF 'Command refused, cmd: x\n<0>forged \x1B[2J, error: unknown command' "$tmp/lost.err" ||
    err "the refused verb is not logged escaped: $(grep -a 'Command refused' "$tmp/lost.err")"

finish hostile_e2e
