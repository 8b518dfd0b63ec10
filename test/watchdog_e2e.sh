#!/bin/bash
# watchdog_e2e: sigfoxd under the service manager's notification protocol, with a small
# harness in systemd's place (NOTIFY_SOCKET datagram socket, WATCHDOG_USEC, and what
# systemd does when the keep-alives stop: SIGABRT, then a restart). Live on the iqfile
# driver: READY=1 comes once the radio streams, STATUS= lines count frames and messages,
# WATCHDOG=1 arrives well within the interval for as long as the DSP thread runs, and
# STOPPING=1 on SIGTERM (exit 0). With the test hook SIGFOXD_TEST_FREEZE_DSP_S the DSP
# thread hangs: the keep-alives stop, the harness's watchdog fires and the process is gone
# (ready for its restart). Licence: MIT. Run from the repo root with BUILD=<abs build dir>.
set -u
SFX="${BUILD:?set BUILD}/bin/sigfoxd"
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
command -v python3 >/dev/null || { echo "FAIL: python3 is missing"; exit 1; }

"$BUILD/bin/sigfox-synth" -o "$tmp/rec_868.13M_250k.cu8" --rc 1 --rate 250k --duration 12 \
    --devices 3 --seed 9 >/dev/null 2>&1 || { echo "FAIL: sigfox-synth"; exit 1; }

# harness WATCHDOG_USEC RUN_S [ENV=VALUE...] -- CMD...: starts CMD with NOTIFY_SOCKET and
# WATCHDOG_USEC, prints every notification as "<t> <message>", acts as systemd's watchdog
# (SIGABRT when no WATCHDOG=1 came for WATCHDOG_USEC after READY=1), sends SIGTERM after
# RUN_S, and prints "exit <code>" or "killed <signal>" and "watchdog fired" when it did.
cat >"$tmp/harness.py" <<'PY'
import os, signal, socket, subprocess, sys, time
usec, run_s = int(sys.argv[1]), float(sys.argv[2])
args = sys.argv[3:]
env = dict(os.environ)
while args[0] != "--":
    k, v = args.pop(0).split("=", 1)
    env[k] = v
cmd = args[1:]
path = os.path.join(os.environ["TMPDIR_H"], "notify.sock")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.05)
env.update(NOTIFY_SOCKET=path, WATCHDOG_USEC=str(usec))
log = open(os.environ["TMPDIR_H"] + "/daemon.log", "w")
p = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
t0 = time.monotonic()
ready = None
last_kick = None
fired = False
termed = False
while p.poll() is None:
    now = time.monotonic()
    try:
        data = s.recv(4096).decode(errors="replace")
        for line in data.split("\n"):
            print("%.2f %s" % (now - t0, line), flush=True)
            if line == "READY=1":
                ready = last_kick = now
            if line == "WATCHDOG=1":
                last_kick = now
    except socket.timeout:
        pass
    if ready is not None and not fired and now - last_kick > usec / 1e6:
        print("watchdog fired %.2f s after the last keep-alive" % (now - last_kick), flush=True)
        fired = True
        p.send_signal(signal.SIGABRT)
    if not termed and not fired and now - t0 > run_s:
        termed = True
        p.send_signal(signal.SIGTERM)
    if now - t0 > run_s + 30:
        p.kill()
rc = p.wait()
print("exit %d" % rc if rc >= 0 else "killed %s" % signal.Signals(-rc).name, flush=True)
PY
export TMPDIR_H=$tmp
ulimit -c 0 # SIGABRT: no core file
live_args=(--no-config --device "driver=iqfile,path=$tmp/rec_868.13M_250k.cu8,throttle=1"
    --rate 250k --center-freq 868.13M --keys "$tmp/rec_868.13M_250k.cu8.keys"
    --pub "" --cmd "" --state-dir "")
plugin="SOAPY_SDR_PLUGIN_PATH=$BUILD/soapy SOAPY_SDR_ROOT=/nonexistent"

# 1. Healthy: 9 s of a 12 s recording, watchdog 1 s.
# shellcheck disable=SC2086
python3 "$tmp/harness.py" 1000000 9 $plugin -- "$SFX" "${live_args[@]}" >"$tmp/ok.out" 2>&1
grep -q ' READY=1$' "$tmp/ok.out" || err "healthy: no READY=1: $(cat "$tmp/ok.out" "$tmp/daemon.log" | tail -20)"
ready_t=$(awk '$2 == "READY=1" { print $1; exit }' "$tmp/ok.out")
grep -q 'Radio configured' "$tmp/daemon.log" || err "healthy: the radio was not configured"
kicks=$(grep -c ' WATCHDOG=1$' "$tmp/ok.out")
[ "$kicks" -ge 20 ] || err "healthy: only $kicks keep-alives in ~9 s with a 1 s watchdog"
gap=$(awk '$2 == "READY=1" || $2 == "WATCHDOG=1" { if (p != "" && $1 - p > m) m = $1 - p; p = $1 }
    END { printf "%.2f", m }' "$tmp/ok.out")
awk -v g="$gap" 'BEGIN { exit !(g < 0.6) }' || err "healthy: keep-alives up to $gap s apart (watchdog 1 s)"
grep -q 'watchdog fired' "$tmp/ok.out" && err "healthy: the watchdog fired: $(tail -5 "$tmp/ok.out")"
grep -qE 'STATUS=RC1 at 868.130 MHz: [0-9]+ frames, [0-9]+ messages' "$tmp/ok.out" ||
    err "healthy: no STATUS= line with frames and messages: $(grep STATUS "$tmp/ok.out" | head -3)"
last_status=$(grep 'STATUS=RC1' "$tmp/ok.out" | tail -n 1)
[[ $last_status =~ ([1-9][0-9]*)\ messages ]] || err "healthy: no message counted by the last STATUS=: $last_status"
grep -q ' STOPPING=1$' "$tmp/ok.out" || err "healthy: no STOPPING=1 on SIGTERM"
grep -q '^exit 0$' "$tmp/ok.out" || err "healthy: $(tail -n 1 "$tmp/ok.out") after SIGTERM, expected exit 0"
echo "healthy: READY=1 at $ready_t s, $kicks keep-alives, largest gap $gap s, $last_status"

# 2. The DSP thread hangs 3 s after start: keep-alives stop, the watchdog takes it down.
rm -f "$tmp/notify.sock"
# shellcheck disable=SC2086
python3 "$tmp/harness.py" 1000000 9 $plugin SIGFOXD_TEST_FREEZE_DSP_S=3 -- "$SFX" "${live_args[@]}" \
    >"$tmp/hang.out" 2>&1
grep -q ' READY=1$' "$tmp/hang.out" || err "hang: no READY=1"
grep -q 'Test hook SIGFOXD_TEST_FREEZE_DSP_S' "$tmp/daemon.log" || err "hang: the test hook did not run"
grep -q 'watchdog fired' "$tmp/hang.out" || err "hang: the keep-alives went on: $(tail -5 "$tmp/hang.out")"
grep -q '^killed SIGABRT$' "$tmp/hang.out" || err "hang: $(tail -n 1 "$tmp/hang.out"), expected killed SIGABRT"
echo "hang: $(grep 'watchdog fired' "$tmp/hang.out" | cut -d' ' -f2-), $(tail -n 1 "$tmp/hang.out")"
finish watchdog_e2e
