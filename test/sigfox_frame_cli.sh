#!/bin/bash
# End-to-end test of sigfox-frame: the spec's Annex C frames decode to the spec's fields
# with CRC and AUTH ok; encode/decode round trips; exit codes and error messages.
# Run from the repo root with BUILD=<abs build dir>. Exit 0 = pass.
set -u
# shellcheck source=test/lib.bash
. "$(dirname "$0")/lib.bash"
SF="${BUILD:?set BUILD}/bin/sigfox-frame"
[ -x "$SF" ] || { echo "missing $SF"; exit 1; }
KEY=0123456789ABCDEF0123456789ABCDEF
RKEY=479E4480FD7596D45B0122FD282DB3CF

# run EXPECTED_RC ARGS...: runs sigfox-frame, keeps stdout in $out and stderr in $errout.
run() { run_cmd "$1" "$SF" "${@:2}"; }

# field NAME VALUE: the compact JSON in $out has "NAME":VALUE (VALUE quoted if a string).
field() {
    case "$out" in
    *"\"$1\":$2,"* | *"\"$1\":$2}"*) ;;
    *) err "expected \"$1\":$2 in $out" ;;
    esac
}
no_field() {
    case "$out" in *"\"$1\":"*) err "unexpected field $1 in $out" ;; esac
}
err_has() {
    case "$errout" in *"$1"*) ;; *) err "expected '$1' in stderr: $errout" ;; esac
}

# ---- the spec's three example frames (Annex C 8.1) and its confirmation (8.2) ----
frames=(AAAAA611067298BADCFE000102030405060796E7CDFB
        AAAAA6BF04D772C905BE8001C3824706C485B82DD878
        AAAAA72C07EE3E946BC180014283C5044786735E3E85)
fts=('"0611"' '"06BF"' '"072C"')
for i in 0 1 2; do
    run 0 ul-decode --key $KEY "${frames[$i]}"
    field ep_id '"FEDCBA98"'
    field mc 1650
    field bf false
    field kind '"app"'
    field payload '"0001020304050607"'
    field rank $((i + 1))
    field ft "${fts[$i]}"
    field ft_distance 0
    field crc_ok true
    field ul_crc '"CDFB"'
    field ul_auth '"96E7"' # the spec text's 96EF is a typo
    field auth '"ok"'
done
# printed with spaces exactly as in the spec
run 0 ul-decode --key $KEY AA AA A7 2C 07 EE 3E 94 6B C1 80 01 42 83 C5 04 47 86 73 5E 3E 85
field rank 3
field auth '"ok"'
run 0 ul-decode --key $KEY "AA AA AF 67 06 73 98 BA DC FE 09 E4 0C CC 10 FA 00 E6 BF 9D 81 0E"
field kind '"dl_confirmation"'
field mc 1651
field vdd_idle_mv 3300
field vdd_tx_mv 4300
field temp_tenth_c 250
field rssi_dbm -126
field ul_auth '"BF9D"'
field ul_crc '"810E"'
field auth '"ok"'
# without the preamble: FT as 2 bytes, then UL-PHY-CONTENT
run 0 ul-decode --key $KEY "0x 06 BF 04 D7 72 C9 05 BE 80 01 C3 82 47 06 C4 85 B8 2D D8 78"
field rank 2
field auth '"ok"'
# renard's 1-bit message
run 0 ul-decode --key $RKEY AAAAA06BE1A1DB334D0000B0C090
field payload_bit 1
no_field payload
field bf true
field ep_id '"004D33DB"'
field mc 417
# without a key the AUTH is unchecked
run 0 ul-decode "${frames[0]}"
field auth '"unchecked"'

# ---- keys file ----
printf '# test keys\nFEDCBA98 %s\n004D33DB %s # renard\n' $KEY $RKEY >"$tmp/keys"
run 0 ul-decode --keys "$tmp/keys" "${frames[1]}"
field auth '"ok"'
printf '12345678 %s\n' $KEY >"$tmp/otherkeys"
run 0 ul-decode --keys "$tmp/otherkeys" "${frames[1]}"
field auth '"unknown-device"'
err_has "not in"
printf 'FEDCBA98 0123\n' >"$tmp/badkeys"
run 64 ul-decode --keys "$tmp/badkeys" "${frames[1]}"
err_has "badkeys:1: key must be 32 hex digits"

# ---- encoder reproduces the spec frames and round-trips every kind ----
run 0 ul-encode --id FEDCBA98 --key $KEY --mc 1650 --payload 0001020304050607
[ "$out" = "$(printf '%s\n' "${frames[@]}")" ] || err "ul-encode does not give Annex C: $out"
run 0 ul-encode --id FEDCBA98 --key $KEY --mc 1651 --dl-confirmation --vdd-idle 3300 \
    --vdd-tx 4300 --temp 250 --rssi -126
[ "$out" = AAAAAF67067398BADCFE09E40CCC10FA00E6BF9D810E ] || err "confirmation: $out"
run 0 ul-encode --id 004D33DB --key $RKEY --mc 417 --bit 1 --bf --single
[ "$out" = AAAAA06BE1A1DB334D0000B0C090 ] || err "1-bit: $out"

for p in "" 01 0102 010203 01020304 0102030405 010203040506 01020304050607 \
    0102030405060708 010203040506070809 0102030405060708090A 0102030405060708090A0B \
    0102030405060708090A0B0C; do
    run 0 ul-encode --id 89ABCDEF --key $RKEY --mc 4095 --bf --payload "$p"
    lines=$out
    r=0
    for line in $lines; do
        r=$((r + 1))
        run 0 ul-decode --key $RKEY "$line"
        field payload "\"$p\""
        field rank $r
        field mc 4095
        field bf true
        field auth '"ok"'
    done
    [ $r = 3 ] || err "payload '$p': $r frames"
done
run 0 ul-encode --id 00000000 --key $KEY --mc 0 --keepalive --vdd-idle 3000 --vdd-tx 2900 \
    --temp -55
r=0
for line in $out; do
    r=$((r + 1))
    run 0 ul-decode --key $KEY "$line"
    field kind '"keepalive"'
    field temp_tenth_c -55
    field temp_c -5.5
    field rank $r
    field ep_id '"00000000"'
    no_field rssi_dbm
done
[ $r = 3 ] || err "keepalive: $r frames"
run 0 ul-encode --id FEDCBA98 --key $KEY --mc 7 --bit 0 --json
field kind '"app"'
field payload_bit 0
case "$out" in *'"frames":[{"rank":1,"ft":"006B","bitstream":"AAAAA06B'*) ;;
*) err "ul-encode --json: $out" ;; esac

# ---- downlink (spec Annex C 8.2, renard dldecode) ----
run 0 dl-encode --id FEDCBA98 --key $KEY --mc 1650 --payload 3031323334353637
field dl_auth '"852D"'
field dl_crc '"02"'
field pn9_seed '"01B0"'
field dl_phy_content '"C6053038C64BF92E718AAC45063E00"'
field bitstream '"AAAAAAAAAAAAAAAAAAAAAAB227C6053038C64BF92E718AAC45063E00"'
run 0 dl-decode --id FEDCBA98 --key $KEY --mc 1650 C6053038C64BF92E718AAC45063E00
field payload '"3031323334353637"'
field ecc '"AB839EA9"'
field crc_ok true
field auth '"ok"'
run 0 dl-decode --id 004D33DB --key $RKEY --mc 417 3516816CC7CE125EF60D5B6D78C1C1
field payload '"DEADBEEF02468ACE"'
field auth '"ok"'
# whole bitstream with one bit error in the content: corrected
run 0 dl-decode --id FEDCBA98 --mc 1650 AAAAAAAAAAAAAAAAAAAAAAB227C6053038C64BF92E718AAC45063E01
field corrected_bits 1
field auth '"unchecked"'
field sync_errors 0
run 1 dl-decode --id FEDCBA98 --key $RKEY --mc 1650 C6053038C64BF92E718AAC45063E00
field auth '"bad"'
err_has "DL-AUTH does not match"
run 1 dl-decode --id FEDCBA98 --mc 1651 C6053038C64BF92E718AAC45063E00
err_has "DL-CRC mismatch"

# ---- decode failures: exit 1 with a reason ----
run 1 ul-decode --key ${KEY:0:31}0 "${frames[0]}"
field auth '"bad"'
err_has "UL-AUTH does not match the key"
run 1 ul-decode AAAAA611067298BADCFE000102030405060796E7CDFA
field crc_ok false
err_has "UL-CRC mismatch"
run 1 ul-decode AAAAB555067298BADCFE000102030405060796E7CDFB
err_has "unknown frame type 0x1555"
run 0 ul-decode AAAAA655067298BADCFE000102030405060796E7CDFB # 2 FT bits wrong
field ft_distance 2
run 1 ul-decode --max-ft-distance 1 AAAAA655067298BADCFE000102030405060796E7CDFB
err_has "unknown frame type"
run 1 ul-decode AAAAA35F067298BADCFE000102030405060796E7CDFB
err_has "12-byte container"

# ---- usage errors: exit 64 ----
run 64 ul-decode AAAAA611067298BADCFE000102030405060796E7CDFX
err_has "'X' is not a hex digit"
run 64 ul-decode AAAAA611067298BADCFE000102030405060796E7CDF
err_has "odd number of hex digits"
run 64 ul-decode AAAAA611067298BADCFE0001020304050607969696
err_has "HEX is 21 bytes"
run 64 ul-decode "$(printf 'AA%.0s' $(seq 40))"
err_has "longer than any frame"
run 64 ul-decode
err_has "missing HEX"
# Issue 15 defect 7: strtol() and the 0x prefix let these through.
run 64 ul-encode --id 0xFEDCBA98 --key 0123456789ABCDEF0123456789ABCDEF --mc 5 --payload 01
err_has "--id '0xFEDCBA98': expected 8 hex digits"
run 64 ul-encode --id FEDCBA98 --key 0123456789ABCDEF0123456789ABCDEF --mc " 5" --payload 01
err_has "--mc ' 5'"
run 64 ul-encode --id FEDCBA98 --key 0123456789ABCDEF0123456789ABCDEF --mc +5 --payload 01
err_has "--mc '+5'"
run 64 ul-decode --key 0123 "${frames[0]}"
err_has "--key: expected 32 hex digits"
run 64 ul-decode 8611067298BADCFE000102030405060796E7CDFB
err_has "must start with the 13-bit FT"
run 64 ul-encode --id FEDCBA98 --key $KEY --mc 4096 --payload 00
err_has "0..4095"
run 64 ul-encode --id FEDCBA98 --key $KEY --mc 1 --payload 000102030405060708090A0B0C
err_has "13 bytes"
run 64 ul-encode --id FEDCBA98 --key $KEY --mc 1 --payload 0G
err_has "not valid hex"
run 64 ul-encode --id FEDCBA98 --key $KEY --mc 1
err_has "exactly one of"
run 64 ul-encode --id FEDCBA98 --key $KEY --mc 1 --keepalive --vdd-idle 1 --vdd-tx 1
err_has "missing --temp"
run 64 ul-encode --id FEDCBA98 --key $KEY --mc 1 --dl-confirmation --vdd-idle 1 --vdd-tx 1 \
    --temp 0 --rssi 28
err_has "-228..27"
run 64 ul-encode --key $KEY --mc 1 --payload 00
err_has "missing --id"
run 64 dl-encode --id FEDCBA98 --key $KEY --mc 1 --payload 0011
err_has "exactly 8"
run 64 dl-decode --id FEDCBA98 --mc 1 0011
err_has "15 bytes"
run 64 frob
err_has "unknown command"
run 64
run 64 ul-decode --nope x
err_has "unknown option"
run 0 --help
case "$out" in *"ul-decode"*"ul-encode"*"dl-encode"*"dl-decode"*"Exit status"*) ;;
*) err "--help text incomplete" ;; esac
run 0 ul-encode --help
case "$out" in *Usage*) ;; *) err "ul-encode --help" ;; esac

finish sigfox_frame_cli
