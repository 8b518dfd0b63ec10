#!/bin/bash
# levels_e2e: sigfoxd's input levels (stats.levels) and its gain advice, live through the
# real SoapySDR capture path (the in-tree iqfile driver plays synthesized captures in real
# time and over again, as a radio would, without dropping samples however slow the host:
# the first 5 s window must complete under ASan on a loaded machine too), three stations
# side by side, stopped with SIGTERM once each has levels:
#   normal  cs16, noise at -30 dBFS: floor -30 dBFS in every part, no clipping, advice ok,
#           no gain warning;
#   hot     cs8, noise at -6 dBFS: the converter clips; "Input clips: lower the gain";
#   weak    cu8, noise at -47 dBFS, 3 dB over the 8-bit quantisation noise (-49.9 dBFS):
#           "Input too weak: raise the gain".
# And a replay prints the same figures in its "Input levels" line.
# Licence: MIT. Run from the repo root with BUILD=<abs build dir>; KEEP=1 keeps the temp dir.
set -u
SFX="${BUILD:?set BUILD}/bin/sigfoxd"
SYNTH="$BUILD/bin/sigfox-synth"
SUB="$BUILD/bin/sigfox-sub"
export SOAPY_SDR_PLUGIN_PATH="$BUILD/soapy"
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
need_jq
[ -e "$BUILD/soapy/libsigfoxIQFileSupport.so" ] || { echo "FAIL: no SoapySDR iqfile module in $BUILD/soapy"; exit 1; }

DUR=3 # played over and over (repeat=1) until the 5 s window is done
declare -A ext=([normal]=cs16 [hot]=cs8 [weak]=cu8) noise=([normal]=-30 [hot]=-6 [weak]=-47)
for s in normal hot weak; do
    "$SYNTH" -o "$tmp/$s.${ext[$s]}" --rate 1024k --duration $DUR --devices 2 --seed 31 \
        --noise-dbfs "${noise[$s]}" 2>"$tmp/synth.log" ||
        { echo "FAIL: synth $s: $(cat "$tmp/synth.log")"; exit 1; }
done
for s in normal hot weak; do
    "$SFX" --no-config --lossless \
        --device "driver=iqfile,path=$tmp/$s.${ext[$s]},rate=1024k,freq=868.13M,throttle=1,repeat=1,buffer_s=0" \
        --rate 1024k --center-freq 868.13M --cmd "ipc://$tmp/$s.cmd" --pub "ipc://$tmp/$s.ev" \
        --state-dir "$tmp/$s.state" --stats-interval 0 >"$tmp/$s.out" 2>"$tmp/$s.err" &
    pids+=($!)
done
# The first window ends after 5 s of signal: until then stats has no levels.
levels() { "$SUB" --cmd "ipc://$tmp/$1.cmd" stats --timeout 1 2>/dev/null >"$tmp/$1.stats" &&
    jq_e '.stats.levels' "$tmp/$1.stats" >/dev/null; }
for s in normal hot weak; do
    wait_for 120 levels "$s" || err "$s: no levels in stats: $(cat "$tmp/$s.stats"; tail -3 "$tmp/$s.err")"
done
# Stopped: the warnings logged with the window are all in the logs once they exit.
for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null
    wait_for 60 sh -c '! kill -0 "$1" 2>/dev/null' _ "$p" || err "sigfoxd $p did not stop on SIGTERM"
done
check() { # station jq-condition what
    jq_e ".stats.levels | $2" "$tmp/$1.stats" >/dev/null ||
        err "$1: $3: $(jq -c .stats.levels "$tmp/$1.stats")"
}
for s in normal hot weak; do
    check "$s" '.parts | length == 8' "8 parts"
    check "$s" '(.parts[0].freq_hz - 868130000 + 448000 | fabs) < 1 and (.parts[7].freq_hz - 868130000 - 448000 | fabs) < 1' \
        "part centres from -448 kHz to +448 kHz around the tuned frequency"
    check "$s" '.window_s == 5' "a 5 s window"
done
check normal '.adc_bits == 16 and .advice == "ok" and .clipped == 0 and .clipped_total == 0' "cs16, ok, no clipping"
check normal '(.noise_floor_dbfs + 30 | fabs) <= 1 and all(.parts[]; (.noise_floor_dbfs + 30 | fabs) <= 1.5)' \
    "floor -30 dBFS everywhere"
check normal '(.input_dbfs + 30 | fabs) <= 1 and .peak_dbfs < -10' "input -30 dBFS, peak well below full scale"
check hot '.adc_bits == 8 and .advice == "lower the gain" and .clipped > 0 and .clipped_share > 0.0001' "cs8 clipping"
check hot '.peak_dbfs == 0 and .clipped_total >= .clipped' "peak at full scale"
check weak '.adc_bits == 8 and .advice == "raise the gain" and .clipped == 0' "cu8 too weak"
check weak '(.quant_floor_dbfs + 49.9 | fabs) < 0.1 and .noise_floor_dbfs - .quant_floor_dbfs < 6' "near the quantisation floor"
grep -q "Input clips: lower the gain" "$tmp/hot.err" || err "hot: no clipping warning: $(grep -i input "$tmp/hot.err")"
grep -q "Input too weak: raise the gain" "$tmp/weak.err" || err "weak: no gain warning: $(grep -i input "$tmp/weak.err")"
grep -q "Input clips\|Input too weak" "$tmp/normal.err" && err "normal: a gain warning: $(grep -i input "$tmp/normal.err")"

# A replay reports the levels once, at the end (3 s: less than a window, what there was),
# and never warns (no gain to turn).
run_cmd 0 "$SFX" --no-config --replay "$tmp/hot.cs8" --rate 1024k --center-freq 868.13M --log-level info
grep -q "Input levels, input_dbfs: -[56]\.[0-9], noise_floor_dbfs: -[56]\.[0-9], peak_dbfs: 0\.0, clipped_total: [1-9][0-9]*, quant_floor_dbfs: -49\.9, advice: lower the gain, window_s: 3\.00" "$tmp/err" ||
    err "replay: levels line: $(grep -i levels "$tmp/err")"
grep -q "Input clips" "$tmp/err" && err "replay: a gain warning"
finish levels_e2e
