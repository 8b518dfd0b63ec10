#!/bin/bash
# End-to-end test of the downlink tools: sigfox-dltx writes GFSK downlink bursts (dlframe +
# gfskmod), sigfox-dlrx finds and decodes them (dldemod + dlframe): payload, MC (searched
# with the key), AUTH, carrier within 1 Hz, start time within 0.2 ms, also across its
# internal block boundaries, through cu8 quantisation and SigMF metadata; exit codes and
# error messages. Run from the repo root with BUILD=<abs build dir>. Exit 0 = pass.
set -u
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
TX="${BUILD:?set BUILD}/bin/sigfox-dltx"
RX="$BUILD/bin/sigfox-dlrx"
for p in "$TX" "$RX"; do [ -x "$p" ] || { echo "missing $p"; exit 1; }; done
KEY=0123456789ABCDEF0123456789ABCDEF
ID=FEDCBA98

# run EXPECTED_RC PROGRAM ARGS...: keeps stdout in $out and stderr in $errout.
run() { run_cmd "$@"; }
# num LINE FIELD: the numeric value of FIELD in a compact JSON line.
num() { sed -n "s/.*\"$2\":\(-\?[0-9.eE+-]*\).*/\1/p" <<<"$1"; }
# near A B TOL: |A - B| <= TOL
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= t) }'; }
has() { case "$1" in *"$2"*) ;; *) err "expected '$2' in: $1" ;; esac; }
err_has() { has "$errout" "$1"; }

# --- three bursts in one raw cf32 file (concatenated), 250 kS/s, centre unknown --------
# Burst starts (first preamble bit): 1.45 s straddles the first block's overlap region
# (blocks of 2 s every 1.567 s), 3.3 s, 5.0 s.
rate=250000
t_off=0
i=0
declare -a exp_t exp_f exp_p exp_mc
for spec in "1.45 -30000 0102030405060708 17" "0.4 12345.6 DEADBEEF02468ACE 4095" \
            "0.35 80000 3031323334353637 1650"; do
    set -- $spec
    run 0 "$TX" --id $ID --key $KEY --mc "$4" --payload "$3" --rate $rate --offset "$2" \
        --lead "$1" --tail 0.3 --ebn0 20 --seed $((i + 5)) "$tmp/b$i.cf32"
    t_start=$(num "$out" t_start_s)
    t_end=$(num "$out" t_end_s)
    exp_t[i]=$(awk -v a="$t_off" -v b="$t_start" 'BEGIN { printf "%.6f", a + b }')
    exp_f[i]=$2 exp_p[i]=$3 exp_mc[i]=$4
    t_off=$(awk -v a="$t_off" -v b="$t_end" 'BEGIN { printf "%.6f", a + b + 0.3 }')
    i=$((i + 1))
done
cat "$tmp/b0.cf32" "$tmp/b1.cf32" "$tmp/b2.cf32" >"$tmp/multi.cf32"

run 0 "$RX" --rate 250k --id $ID --key $KEY "$tmp/multi.cf32"
n=$(grep -c . <<<"$out")
[ "$n" = 3 ] || err "expected 3 bursts, got $n: $out"
for i in 0 1 2; do
    line=$(sed -n "$((i + 1))p" <<<"$out")
    has "$line" "\"payload\":\"${exp_p[i]}\""
    has "$line" "\"mc\":${exp_mc[i]},"
    has "$line" '"crc_ok":true'
    has "$line" '"auth":"ok"'
    near "$(num "$line" freq_hz)" "${exp_f[i]}" 1.0 || err "burst $i freq $(num "$line" freq_hz) vs ${exp_f[i]}"
    near "$(num "$line" t_start_s)" "${exp_t[i]}" 0.0002 || err "burst $i t_start $(num "$line" t_start_s) vs ${exp_t[i]}"
    near "$(num "$line" snr_db)" 20 1.5 || err "burst $i snr $(num "$line" snr_db) vs 20"
done
err_has "3 burst(s) found, 3 decoded"

# Given --mc: only that downlink decodes with a good CRC; the others report crc_ok false.
run 0 "$RX" --rate 250k --id $ID --mc 1650 --key $KEY "$tmp/multi.cf32"
[ "$(grep -c '"crc_ok":true' <<<"$out")" = 1 ] || err "--mc 1650: expected one good CRC: $out"
# No ID: demodulated bytes only, still 3 bursts, same dl_phy_content as with the ID.
run 0 "$RX" --rate 250k "$tmp/multi.cf32"
[ "$(grep -c dl_phy_content <<<"$out")" = 3 ] || err "no --id: expected 3 bursts: $out"
case "$out" in *'"payload"'*) err "no --id: payload printed: $out" ;; esac
# --time-offset shifts t_start_s; --search keeps only the burst inside the range.
run 0 "$RX" --rate 250k --search 70k:90k --time-offset 100 "$tmp/multi.cf32"
[ "$(grep -c . <<<"$out")" = 1 ] || err "--search 70k:90k: expected 1 burst: $out"
near "$(num "$out" t_start_s)" "$(awk -v a="${exp_t[2]}" 'BEGIN { print a + 100 }')" 0.0002 ||
    err "--time-offset: $(num "$out" t_start_s)"

# --- cu8 (RTL-SDR) quantisation, SigMF metadata with an absolute centre -------------
run 0 "$TX" --id $ID --key $KEY --mc 7 --payload 0011223344556677 --rate 1.024M \
    --center 869.525M --freq 869.5412M --amplitude 0.3 --ebn0 14 "$tmp/dl.cu8"
run 0 "$RX" --rate 1.024M --center 869.525M --id $ID --key $KEY --mc 7 "$tmp/dl.cu8"
has "$out" '"payload":"0011223344556677"'
has "$out" '"auth":"ok"'
near "$(num "$out" freq_hz)" 869541200 1.0 || err "cu8: freq $(num "$out" freq_hz)"
run 0 "$TX" --id $ID --key $KEY --mc 8 --payload 0011223344556677 --rate 2M \
    --center 869.525M --offset -50k "$tmp/dl.sigmf-meta"
run 0 "$RX" --id $ID --key $KEY "$tmp/dl.sigmf-meta"
has "$out" '"mc":8,'
near "$(num "$out" freq_hz)" 869475000 1.0 || err "sigmf: freq $(num "$out" freq_hz)"
err_has "(metadata)"

# --- keys file, wrong key -------------------------------------------------------------
printf '# test keys\n%s %s\n' $ID $KEY >"$tmp/keys"
run 0 "$RX" --rate 250k --id $ID --mc 1650 --keys "$tmp/keys" "$tmp/b2.cf32"
has "$out" '"auth":"ok"'
run 0 "$RX" --rate 250k --id $ID --mc 1650 --key 00112233445566778899AABBCCDDEEFF "$tmp/b2.cf32"
has "$out" '"auth":"bad"'

# --- nothing to find, errors ------------------------------------------------------------
run 0 "$TX" --id $ID --key $KEY --mc 1 --payload 0000000000000000 --rate 48k \
    --amplitude 0.000001 --ebn0 -20 "$tmp/noise.cf32"
run 1 "$RX" --rate 48k "$tmp/noise.cf32"
err_has "0 burst(s) found"
run 1 "$RX" --rate 48k "$tmp/does-not-exist.cf32"
[ -n "$errout" ] || err "missing file: no message"
run 64 "$RX" "$tmp/multi.cf32"
err_has "unknown sample rate"
run 64 "$RX" --rate 1k "$tmp/multi.cf32"
err_has "outside"
run 64 "$RX" --rate 250k --mc 5 "$tmp/multi.cf32"
err_has "need --id"
run 64 "$RX" --rate 250k --id XYZ "$tmp/multi.cf32"
err_has "bad --id"
run 64 "$RX" --rate 250k --search 5:1 "$tmp/multi.cf32"
err_has "bad --search"
run 64 "$RX" --rate 250k --search 200k:210k "$tmp/multi.cf32"
err_has "search range"
run 64 "$RX"
err_has "missing FILE"
run 0 "$RX" --help
has "$out" "Usage: sigfox-dlrx"
run 64 "$TX" --id $ID --key $KEY --mc 1 --payload 00 --rate 48k "$tmp/x.cf32"
err_has "exactly 8 bytes"
run 64 "$TX" --id $ID --key $KEY --mc 1 --payload 0000000000000000 --rate 48k --offset 23k \
    "$tmp/x.cf32"
err_has "does not fit"
run 0 "$TX" --help
has "$out" "Usage: sigfox-dltx"

finish sigfox_dlrx
