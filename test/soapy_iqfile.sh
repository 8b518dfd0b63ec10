#!/bin/bash
# End-to-end test of the SoapySDR "iqfile" driver (soapy/IQFileDevice.cpp) as SoapySDR
# itself loads it: SoapySDRUtil --find/--probe on raw (name tokens) and SigMF recordings,
# clear errors for bad ones (and SoapySDRUtil's exit status each time), SoapySDR's own
# streaming loop. The capture module's reads through SoapySDR are test_capture's
# test_soapy_* cases (run once, there).
# Run from the repo root with BUILD=<abs build dir>. Exit 0 = pass.
set -u
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
: "${BUILD:?set BUILD}"
MOD="$BUILD/soapy/libsigfoxIQFileSupport.so"
[ -f "$MOD" ] || { echo "FAIL: missing $MOD (make builds it from soapy/*.cpp)"; exit 1; }
command -v SoapySDRUtil >/dev/null || { echo "FAIL: SoapySDRUtil missing (soapysdr-tools)"; exit 1; }
# Only our module: no system drivers probing USB, and the result cannot depend on them.
export SOAPY_SDR_PLUGIN_PATH="$BUILD/soapy"
export SOAPY_SDR_ROOT=/nonexistent

# expect TEXT: $out contains TEXT.
expect() {
    case "$out" in *"$1"*) ;; *) err "expected '$1' in output of: $what"$'\n'"$out" ;; esac
}
refuse() {
    case "$out" in *"$1"*) err "did not expect '$1' in output of: $what"$'\n'"$out" ;; esac
}
# SoapySDRUtil is not built with sanitizers: when the module is (make asan), the
# sanitizer runtime has to be loaded first into the host program.
soapy_util() {
    if [ -n "${SANITIZER_PRELOAD:-}" ]; then
        LD_PRELOAD="$SANITIZER_PRELOAD" ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" SoapySDRUtil "$@"
    else
        SoapySDRUtil "$@"
    fi
}
util() {
    what="SoapySDRUtil $*"
    out=$(timeout 20 bash -c 'soapy_util "$@"' _ "$@" 2>&1)
    util_rc=$?
}
# status N: the last command exited with N.
status() {
    [ "$util_rc" = "$1" ] || err "exit status $util_rc, expected $1, of: $what"$'\n'"$out"
}
export -f soapy_util

# The module is found and registers the factory.
util --info
status 0
expect "libsigfoxIQFileSupport.so"
expect "factories... iqfile"

# Raw cu8 with rtl_433 name tokens: 0.1 s at 1.024 MS/s.
raw="$tmp/rec_868.13M_1024k.cu8"
head -c 204800 /dev/urandom >"$raw"
util --find="driver=iqfile,path=$raw"
status 0
expect "driver = iqfile"
expect "label = IQ file rec_868.13M_1024k.cu8 (cu8, 1024000 S/s, 868130000 Hz)"
util --probe="driver=iqfile,path=$raw"
status 0
expect "Native format: CU8"
expect "Stream formats: CF32, CS16, CS8, CU8"
expect "Sample rates: 1.024 MSps"
expect "Full freq range: 868.13 MHz"
expect "rate_source=file name"
expect "length_samples=102400"

# Without a path the driver stays out of device lists.
util --find
status 1
refuse "driver = iqfile"

# SigMF: rate and frequency from the metadata, format from the datatype.
cat >"$tmp/cap.sigmf-meta" <<'EOF'
{
  "global": {"core:datatype": "ci16_le", "core:sample_rate": 250000, "core:version": "1.0.0"},
  "captures": [{"core:sample_start": 0, "core:frequency": 902200000}],
  "annotations": []
}
EOF
head -c 100000 /dev/urandom >"$tmp/cap.sigmf-data"
util --probe="driver=iqfile,path=$tmp/cap.sigmf-meta,rate=1M"
status 0
expect "Native format: CS16 [full-scale=32768]"
expect "Sample rates: 0.25 MSps"
expect "Full freq range: 902.2 MHz"
expect "rate_source=metadata"
expect "length_samples=25000"
expect "metadata overrides the given value" # rate=1M conflicts with the file

# Bad recordings and arguments: no device, and a message naming the file and the problem.
util --find="driver=iqfile,path=$tmp/nothere.cu8"
status 1
expect "No devices found"
expect "nothere.cu8: cannot open: No such file or directory"
printf '{"global": {"core:datatype": "ri16_le"}}' >"$tmp/real.sigmf-meta"
util --probe="driver=iqfile,path=$tmp/real.sigmf-meta"
status 1
expect "\"ri16_le\" is not supported"
util --probe="driver=iqfile,path=$raw,throttle=maybe"
status 1
expect "throttle=maybe must be 0 or 1"
util --probe="driver=iqfile,path=$raw,format=cs32"
status 1
expect "unknown format=cs32"
cp "$raw" "$tmp/norate.cu8"
util --probe="driver=iqfile,path=$tmp/norate.cu8,throttle=0"
status 0
expect "Sample rates:" # unknown rate: probe still works, the rate can be set

# A rate test through SoapySDR's own streaming loop: the driver delivers and paces.
what="SoapySDRUtil --rate"
out=$(timeout -s INT 3 bash -c 'soapy_util "$@"' _ --args="driver=iqfile,path=$raw,repeat=1" \
    --rate=1024000 --direction=RX 2>&1)
util_rc=$?
status 124 # still streaming when timeout stopped it
expect "Starting stream loop"
refuse "Error"

finish soapy_iqfile
