/* sigfox-frame: Sigfox frame analyser, encodes and decodes uplink and downlink frames from
 * hex (spec rev 1.4 §3, §4, §5). Licence: MIT.
 *
 * Exit status: 0 ok, 1 decode failure (unknown FT, CRC, wrong key, ...), 64 bad usage or
 * malformed input (bad hex, wrong length, out-of-range value).
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cliutil.h"
#include "dlframe.h"
#include "framejson.h"
#include "hexutil.h"
#include "keys.h"
#include "ulcode.h"
#include "ulframe.h"

#ifndef SIGFOXD_VERSION
#define SIGFOXD_VERSION "unknown"
#endif

#define EXIT_DECODE 1
#define EXIT_USAGE CLI_EXIT_USAGE

static const char *prog = "sigfox-frame";

static const char usage_text[] =
    "Usage: sigfox-frame COMMAND [OPTIONS] [HEX...]\n"
    "Encode and decode Sigfox frames (radio specification rev 1.4) from hex.\n"
    "\n"
    "Commands:\n"
    "  ul-decode [--key HEX32 | --keys FILE] [--max-ft-distance N] HEX\n"
    "      Decode one uplink frame. HEX is the over-the-air bitstream as the spec prints\n"
    "      it, with the 19-bit preamble (AA AA A6 11 06 72 ...), or without the preamble,\n"
    "      starting with the 13-bit FT padded to 2 bytes (06 11 06 72 ...). Spaces and ':'\n"
    "      are ignored; several arguments are joined. Prints one JSON object. Ranks 2 and 3\n"
    "      are un-coded; FT bit errors up to --max-ft-distance (default 2) are corrected.\n"
    "  ul-encode --id HEX8 --key HEX32 --mc N (--payload HEX | --bit 0|1 | --keepalive |\n"
    "            --dl-confirmation) [--bf] [--single] [--json]\n"
    "            [--vdd-idle MV --vdd-tx MV --temp TENTHS_C [--rssi DBM]]\n"
    "      Print the over-the-air bitstreams of ranks 1, 2 and 3, one hex line each (only\n"
    "      rank 1 with --single; a DL confirmation is always a single frame, spec §5.2).\n"
    "      --payload: 0 to 12 bytes (\"\" for an empty message); --bit: a 1-bit message;\n"
    "      --keepalive / --dl-confirmation: control messages (§5.1 / §5.2) with VDD idle\n"
    "      and TX in mV, temperature in 0.1 degC and (confirmation) RSSI in dBm (-228..27).\n"
    "      --json prints one JSON object with the message fields and a frames array.\n"
    "  dl-encode --id HEX8 --key HEX32 --mc N --payload HEX16\n"
    "      Build the downlink answering uplink MC N: prints JSON with dl_auth, dl_crc,\n"
    "      pn9_seed, dl_phy_content and the 28-byte bitstream.\n"
    "  dl-decode --id HEX8 [--key HEX32] --mc N HEX\n"
    "      Decode a downlink: HEX is DL-PHY-CONTENT (15 bytes) or the whole bitstream\n"
    "      (28 bytes). De-whitens, corrects one bit per BCH column, checks CRC8 and, with\n"
    "      --key, DL-AUTH. Prints one JSON object.\n"
    "\n"
    "Options:\n"
    "  --id HEX8        device ID as printed by Sigfox, e.g. FEDCBA98\n"
    "  --key HEX32      device key (AES-128), 32 hex digits\n"
    "  --keys FILE      keys file (`EPID KEY` per line) to check UL-AUTH by device ID\n"
    "  --mc N           message counter 0..4095 (decimal, or 0x-prefixed hex)\n"
    "  -h, --help       this text;  --version  print the version\n"
    "\n"
    "JSON fields: ep_id, mc, bf, kind (app|keepalive|dl_confirmation), payload or\n"
    "payload_bit, rank, ft, ft_distance, crc_ok, ul_crc, ul_auth, auth\n"
    "(ok|bad|unknown-device|unchecked), control fields vdd_idle_mv, vdd_tx_mv,\n"
    "temp_tenth_c, temp_c, rssi_dbm; DL: payload, dl_auth, dl_crc, dl_phy_content,\n"
    "bitstream. See docs/frame-cli.md.\n"
    "\n"
    "Exit status: 0 ok, 1 decode failure (unknown FT, CRC error, wrong key), 64 bad usage\n"
    "or malformed input.\n"
    "\n"
    "Example (spec Annex C, frame #1):\n"
    "  sigfox-frame ul-decode --key 0123456789ABCDEF0123456789ABCDEF \\\n"
    "      AAAAA611067298BADCFE000102030405060796E7CDFB\n";

/* "sigfox-frame: <message>" + a --help hint; returns EXIT_USAGE, for malformed input. */
#define usage_error(...) cli_usage_error(prog, __VA_ARGS__)
/* "sigfox-frame: <message>", for decode failures. */
#define error_msg(...) cli_error(prog, __VA_ARGS__)

/* ---- argument parsing ---- */

typedef struct {
    bool have_id, have_key, have_mc, have_payload, have_bit, bf, single, json;
    bool keepalive, dl_confirmation;
    bool have_vdd_idle, have_vdd_tx, have_temp, have_rssi;
    uint32_t ep_id;
    uint8_t key[16];
    long mc, bit, vdd_idle, vdd_tx, temp, rssi, max_ft_distance;
    const char *payload_hex, *keys_path;
    char hex[1024]; /* positional arguments joined with spaces */
} args_t;

enum {
    OPT_ID = 256,
    OPT_KEY,
    OPT_KEYS,
    OPT_MC,
    OPT_PAYLOAD,
    OPT_BIT,
    OPT_BF,
    OPT_SINGLE,
    OPT_JSON,
    OPT_KEEPALIVE,
    OPT_DLCONF,
    OPT_VDD_IDLE,
    OPT_VDD_TX,
    OPT_TEMP,
    OPT_RSSI,
    OPT_MAXFT,
};

static const struct option long_opts[] = {
    {"id", required_argument, NULL, OPT_ID},
    {"key", required_argument, NULL, OPT_KEY},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"mc", required_argument, NULL, OPT_MC},
    {"payload", required_argument, NULL, OPT_PAYLOAD},
    {"bit", required_argument, NULL, OPT_BIT},
    {"bf", no_argument, NULL, OPT_BF},
    {"single", no_argument, NULL, OPT_SINGLE},
    {"json", no_argument, NULL, OPT_JSON},
    {"keepalive", no_argument, NULL, OPT_KEEPALIVE},
    {"dl-confirmation", no_argument, NULL, OPT_DLCONF},
    {"vdd-idle", required_argument, NULL, OPT_VDD_IDLE},
    {"vdd-tx", required_argument, NULL, OPT_VDD_TX},
    {"temp", required_argument, NULL, OPT_TEMP},
    {"rssi", required_argument, NULL, OPT_RSSI},
    {"max-ft-distance", required_argument, NULL, OPT_MAXFT},
    {"version", no_argument, NULL, CLI_OPT_VERSION},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Strict integer in [lo, hi]: decimal (a leading 0 is not octal), or hex with 0x.
 * Returns 0 or -1. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return -1;
    const char *digits = s + (*s == '-' || *s == '+');
    int base = (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) ? 16 : 10;
    return cli_parse_long(s, base, lo, hi, out) ? 0 : -1;
}

/* Parses a key given as 32 hex digits. Returns 0 or -1. */
static int parse_key(const char *s, uint8_t key[16])
{
    size_t digits = 0;
    for (const char *p = s; *p; p++)
        digits += *p != ' ' && *p != ':';
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        digits -= 2;
    return (digits == 32 && hex_to_bytes(s, key, 16) == 16) ? 0 : -1;
}

/* Parses options after the command word. Returns 0, EXIT_USAGE, or -1 after --help /
 * --version was handled (exit 0). */
static int parse_args(int argc, char **argv, args_t *a)
{
    memset(a, 0, sizeof *a);
    a->max_ft_distance = UL_FT_DEFAULT_MAX_DISTANCE;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        const char *v = optarg;
        switch (c) {
        case OPT_ID:
            if (hex_to_ep_id(v, &a->ep_id) != 0)
                return usage_error("--id '%s': expected 8 hex digits, e.g. FEDCBA98", v);
            a->have_id = true;
            break;
        case OPT_KEY:
            if (parse_key(v, a->key) != 0)
                return usage_error("--key: expected 32 hex digits (a 16-byte AES key)");
            a->have_key = true;
            break;
        case OPT_KEYS:
            a->keys_path = v;
            break;
        case OPT_MC:
            if (parse_long(v, 0, UL_MC_MAX, &a->mc) != 0)
                return usage_error("--mc '%s': expected a message counter 0..4095", v);
            a->have_mc = true;
            break;
        case OPT_PAYLOAD:
            a->payload_hex = v;
            a->have_payload = true;
            break;
        case OPT_BIT:
            if (parse_long(v, 0, 1, &a->bit) != 0)
                return usage_error("--bit '%s': expected 0 or 1", v);
            a->have_bit = true;
            break;
        case OPT_BF:
            a->bf = true;
            break;
        case OPT_SINGLE:
            a->single = true;
            break;
        case OPT_JSON:
            a->json = true;
            break;
        case OPT_KEEPALIVE:
            a->keepalive = true;
            break;
        case OPT_DLCONF:
            a->dl_confirmation = true;
            break;
        case OPT_VDD_IDLE:
            if (parse_long(v, 0, 65535, &a->vdd_idle) != 0)
                return usage_error("--vdd-idle '%s': expected millivolts 0..65535", v);
            a->have_vdd_idle = true;
            break;
        case OPT_VDD_TX:
            if (parse_long(v, 0, 65535, &a->vdd_tx) != 0)
                return usage_error("--vdd-tx '%s': expected millivolts 0..65535", v);
            a->have_vdd_tx = true;
            break;
        case OPT_TEMP:
            if (parse_long(v, -32768, 32767, &a->temp) != 0)
                return usage_error("--temp '%s': expected tenths of degC -32768..32767", v);
            a->have_temp = true;
            break;
        case OPT_RSSI:
            /* the RSSI byte is signed and carries RSS + 100 (§5.2) */
            if (parse_long(v, -228, 27, &a->rssi) != 0)
                return usage_error("--rssi '%s': expected dBm -228..27", v);
            a->have_rssi = true;
            break;
        case OPT_MAXFT:
            if (parse_long(v, 0, UL_FT_BITS, &a->max_ft_distance) != 0)
                return usage_error("--max-ft-distance '%s': expected 0..13", v);
            break;
        default: /* -h, --version, errors */
            return cli_common_opt(c, prog, usage_text, argv);
        }
    }
    size_t used = 0;
    for (int i = optind; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (used + n + 2 > sizeof a->hex)
            return usage_error("HEX is too long (%zu characters at most)", sizeof a->hex - 2);
        if (used)
            a->hex[used++] = ' ';
        memcpy(a->hex + used, argv[i], n + 1);
        used += n;
    }
    return 0;
}

/* Parses the positional HEX into bytes. Returns the byte count or -1 after an error. */
static int parse_hex_arg(const args_t *a, uint8_t *out, size_t cap)
{
    if (!a->hex[0]) {
        usage_error("missing HEX argument");
        return -1;
    }
    size_t digits = 0;
    const char *s = a->hex;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    for (const char *p = s; *p; p++) {
        if (*p == ' ' || *p == ':')
            continue;
        if (!strchr("0123456789abcdefABCDEF", *p)) {
            usage_error("HEX: '%c' is not a hex digit", *p);
            return -1;
        }
        digits++;
    }
    if (digits % 2) {
        usage_error("HEX: odd number of hex digits (%zu)", digits);
        return -1;
    }
    if (digits / 2 > cap) {
        usage_error("HEX: %zu bytes is longer than any frame (%zu bytes at most)", digits / 2,
                    cap);
        return -1;
    }
    return hex_to_bytes(s, out, cap);
}

static int require(bool have, const char *what)
{
    return have ? 0 : usage_error("missing %s", what);
}

/* ---- ul-decode ---- */

static int cmd_ul_decode(const args_t *a)
{
    if (a->have_key && a->keys_path)
        return usage_error("give either --key or --keys, not both");
    if (a->have_id || a->have_mc || a->have_payload || a->have_bit || a->keepalive ||
        a->dl_confirmation || a->bf || a->single)
        return usage_error("ul-decode takes only --key/--keys, --max-ft-distance and HEX");
    uint8_t b[UL_MAX_FRAME_BYTES];
    int n = parse_hex_arg(a, b, sizeof b);
    if (n < 0)
        return EXIT_USAGE;

    /* With the preamble a frame is 4 + C + 2 bytes; starting at the FT (13 bits padded
     * to 2 bytes) it is 2 + C + 2; C in {8, 9, 12, 16, 20}: the two sets do not overlap. */
    static const size_t sizes[] = {8, 9, 12, 16, 20};
    bool with_pre = false, no_pre = false;
    for (size_t i = 0; i < 5; i++) {
        with_pre |= (size_t)n == UL_HEADER_BYTES + sizes[i] + UL_CRC_BYTES;
        no_pre |= (size_t)n == 2 + sizes[i] + UL_CRC_BYTES;
    }
    if (!with_pre && !no_pre)
        return usage_error("HEX is %d bytes; an uplink frame is 14, 15, 18, 22 or 26 bytes "
                           "with the preamble, or 12, 13, 16, 20 or 24 bytes from the FT",
                           n);
    uint8_t frame[UL_MAX_FRAME_BYTES];
    size_t nbytes = (size_t)n;
    int preamble_errors = 0;
    if (with_pre) {
        memcpy(frame, b, nbytes);
        uint32_t pre = (uint32_t)b[0] << 11 | (uint32_t)b[1] << 3 | b[2] >> 5;
        preamble_errors = __builtin_popcount(pre ^ UL_PREAMBLE);
    } else {
        if (b[0] >> 5)
            return usage_error("HEX of %d bytes must start with the 13-bit FT padded to 2 "
                               "bytes (first digit 0 or 1), or give the whole frame with "
                               "the AA AA preamble",
                               n);
        /* Put the standard preamble in front: 19 + 13 bits = 4 bytes again. */
        frame[0] = 0xAA;
        frame[1] = 0xAA;
        frame[2] = (uint8_t)(0xA0 | b[0]);
        frame[3] = b[1];
        memcpy(frame + 4, b + 2, nbytes - 2);
        nbytes += 2;
    }

    ul_frame_t f;
    int rc = ul_frame_decode(frame, nbytes * 8, true, (int)a->max_ft_distance, &f);
    struct json_object *o = json_object_new_object();
    int status = 0;
    if (rc == UL_ERR_FT) {
        int d = ul_ft_match(f.ft, UL_FT_BITS, NULL, NULL, NULL);
        error_msg("unknown frame type 0x%04X (nearest known FT is %d bits away, limit %ld)",
                  (unsigned)f.ft, d, a->max_ft_distance);
        char ft[5];
        snprintf(ft, sizeof ft, "%04X", (unsigned)f.ft);
        json_object_object_add(o, "ft", json_object_new_string(ft));
        json_object_object_add(o, "error", json_object_new_string(ul_strerror(rc)));
        cli_json_line(o, stdout);
        json_object_put(o);
        return EXIT_DECODE;
    }
    size_t want = UL_HEADER_BYTES + f.container_len + UL_CRC_BYTES;
    if (rc == UL_ERR_LENGTH ||
        ((rc == 0 || rc == UL_ERR_CRC || rc == UL_ERR_FIELDS) && want != nbytes)) {
        error_msg("frame type 0x%04X means a %zu-byte container (%zu-byte frame with the "
                  "preamble) but HEX holds %zu bytes",
                  (unsigned)f.ft, f.container_len, want, nbytes);
        json_object_put(o);
        return EXIT_DECODE;
    }
    framejson_add_frame(o, &f, rc == 0);
    if (preamble_errors)
        json_object_object_add(o, "preamble_errors", json_object_new_int(preamble_errors));
    if (rc == 0) {
        const char *auth = FRAMEJSON_AUTH_UNCHECKED;
        if (a->have_key)
            auth = framejson_auth_with_key(&f, a->key);
        else if (a->keys_path) {
            keystore_t *ks = keystore_create();
            char err[512];
            if (!ks || keystore_load(ks, a->keys_path, err, sizeof err) < 0) {
                keystore_destroy(ks);
                json_object_put(o);
                return usage_error("%s", ks ? err : "out of memory");
            }
            auth = framejson_auth_with_store(&f, ks);
            keystore_destroy(ks);
        }
        framejson_add_auth(o, auth);
        if (strcmp(auth, FRAMEJSON_AUTH_BAD) == 0) {
            error_msg("UL-AUTH does not match the key (wrong key for device %08X?)",
                      (unsigned)f.msg.ep_id);
            status = EXIT_DECODE;
        } else if (strcmp(auth, FRAMEJSON_AUTH_UNKNOWN_DEVICE) == 0) {
            error_msg("device %08X is not in %s; UL-AUTH not checked", (unsigned)f.msg.ep_id,
                      a->keys_path);
        }
    } else {
        json_object_object_add(o, "error", json_object_new_string(ul_strerror(rc)));
        if (rc == UL_ERR_CRC)
            error_msg("UL-CRC mismatch: received %04X, computed %04X over the %s container",
                      (unsigned)f.crc, (unsigned)ul_crc16(f.container, f.container_len),
                      f.rank == 1 ? "plain" : "un-coded");
        else
            error_msg("frame decoded with a good CRC but its fields are invalid: %s",
                      ul_strerror(rc));
        status = EXIT_DECODE;
    }
    cli_json_line(o, stdout);
    json_object_put(o);
    return status;
}

/* ---- ul-encode ---- */

static int cmd_ul_encode(const args_t *a)
{
    int rc;
    if ((rc = require(a->have_id, "--id HEX8")) || (rc = require(a->have_key, "--key HEX32")) ||
        (rc = require(a->have_mc, "--mc N")))
        return rc;
    if (a->hex[0])
        return usage_error("ul-encode takes no positional argument ('%s')", a->hex);
    if (a->keys_path)
        return usage_error("ul-encode needs --key, not --keys");
    int kinds = a->have_payload + a->have_bit + a->keepalive + a->dl_confirmation;
    if (kinds != 1)
        return usage_error("give exactly one of --payload HEX, --bit 0|1, --keepalive, "
                           "--dl-confirmation");
    bool control = a->keepalive || a->dl_confirmation;
    if (!control && (a->have_vdd_idle || a->have_vdd_tx || a->have_temp || a->have_rssi))
        return usage_error("--vdd-idle/--vdd-tx/--temp/--rssi belong to control messages");
    if (control && a->bf)
        return usage_error("control messages have BF = 0 (spec §5); --bf is not allowed");
    if (control) {
        if ((rc = require(a->have_vdd_idle, "--vdd-idle MV")) ||
            (rc = require(a->have_vdd_tx, "--vdd-tx MV")) ||
            (rc = require(a->have_temp, "--temp TENTHS_C")))
            return rc;
        if (a->dl_confirmation && (rc = require(a->have_rssi, "--rssi DBM")))
            return rc;
        if (a->keepalive && a->have_rssi)
            return usage_error("--rssi belongs to --dl-confirmation only");
    }

    ul_message_t m = {.ep_id = a->ep_id, .mc = (uint16_t)a->mc, .bf = a->bf};
    if (a->have_payload) {
        uint8_t p[64];
        int n = hex_to_bytes(a->payload_hex, p, sizeof p);
        if (n < 0)
            return usage_error("--payload '%s' is not valid hex (pairs of hex digits)",
                               a->payload_hex);
        if (n > UL_MAX_PAYLOAD_BYTES)
            return usage_error("--payload is %d bytes; an uplink carries 0 to 12", n);
        memcpy(m.payload, p, (size_t)n);
        m.payload_len = (size_t)n;
    } else if (a->have_bit) {
        m.one_bit = true;
        m.payload_bit = (uint8_t)a->bit;
    } else {
        m.kind = a->keepalive ? UL_KIND_KEEPALIVE : UL_KIND_DL_CONFIRMATION;
        m.control.vdd_idle_mv = (uint16_t)a->vdd_idle;
        m.control.vdd_tx_mv = (uint16_t)a->vdd_tx;
        m.control.temp_tenth_c = (int16_t)a->temp;
        m.control.rssi_dbm = (int16_t)a->rssi;
    }
    int ranks = (a->single || a->dl_confirmation) ? 1 : 3;

    struct json_object *o = a->json ? json_object_new_object() : NULL;
    struct json_object *frames = a->json ? json_object_new_array() : NULL;
    for (int r = 1; r <= ranks; r++) {
        uint8_t frame[UL_MAX_FRAME_BYTES];
        char hex[2 * UL_MAX_FRAME_BYTES + 1];
        int n = ul_frame_encode(&m, a->key, r, frame, sizeof frame);
        if (n < 0) {
            error_msg("cannot encode this message: %s", ul_strerror(n));
            json_object_put(o);
            json_object_put(frames);
            return EXIT_DECODE;
        }
        bytes_to_hex(frame, (size_t)n, hex);
        if (!a->json) {
            puts(hex);
            continue;
        }
        struct json_object *fo = json_object_new_object();
        char ft[5];
        snprintf(ft, sizeof ft, "%04X", (unsigned)((frame[2] & 0x1F) << 8 | frame[3]));
        json_object_object_add(fo, "rank", json_object_new_int(r));
        json_object_object_add(fo, "ft", json_object_new_string(ft));
        json_object_object_add(fo, "bitstream", json_object_new_string(hex));
        json_object_array_add(frames, fo);
    }
    if (a->json) {
        /* Print the message as the receiver sees it (control payload serialised): decode
         * the rank-1 frame again, which also checks the encoder. */
        uint8_t frame[UL_MAX_FRAME_BYTES];
        ul_frame_t f;
        int n = ul_frame_encode(&m, a->key, 1, frame, sizeof frame);
        if (n < 0 || ul_frame_decode(frame, (size_t)n * 8, true, 0, &f) != 0) {
            error_msg("internal error: the encoded frame does not decode");
            json_object_put(o);
            json_object_put(frames);
            return EXIT_DECODE;
        }
        framejson_add_message(o, &f.msg);
        json_object_object_add(o, "frames", frames);
        cli_json_line(o, stdout);
        json_object_put(o);
    }
    return 0;
}

/* ---- downlink ---- */

static int dl_common_args(const args_t *a, bool key_required)
{
    int rc;
    if ((rc = require(a->have_id, "--id HEX8")) || (rc = require(a->have_mc, "--mc N")))
        return rc;
    if (key_required && (rc = require(a->have_key, "--key HEX32")))
        return rc;
    if (a->have_bit || a->keepalive || a->dl_confirmation || a->bf || a->single ||
        a->keys_path || a->have_vdd_idle || a->have_vdd_tx || a->have_temp || a->have_rssi)
        return usage_error("downlink commands take only --id, --key, --mc, --payload and HEX");
    return 0;
}

static void add_id_mc(struct json_object *o, const args_t *a)
{
    framejson_add_ep_id(o, a->ep_id);
    framejson_add(o, "mc", json_object_new_int((int)a->mc));
}

static int cmd_dl_encode(const args_t *a)
{
    int rc = dl_common_args(a, true);
    if (rc)
        return rc;
    if ((rc = require(a->have_payload, "--payload HEX16")))
        return rc;
    if (a->hex[0])
        return usage_error("dl-encode takes no positional argument ('%s')", a->hex);
    uint8_t payload[64];
    int n = hex_to_bytes(a->payload_hex, payload, sizeof payload);
    if (n < 0)
        return usage_error("--payload '%s' is not valid hex", a->payload_hex);
    if (n != DL_PAYLOAD_BYTES)
        return usage_error("--payload is %d bytes; a downlink payload is exactly 8", n);
    uint16_t mc = (uint16_t)a->mc;
    uint8_t phy[DL_PHY_BYTES], frame[DL_FRAME_BYTES], auth[DL_AUTH_BYTES];
    if ((rc = dl_frame_encode(a->ep_id, mc, payload, a->key, phy, frame)) != 0 ||
        (rc = dl_auth_compute(a->ep_id, mc, payload, a->key, auth)) != 0) {
        error_msg("cannot encode the downlink: %s", dl_strerror(rc));
        return EXIT_DECODE;
    }
    uint8_t crc_in[DL_PAYLOAD_BYTES + DL_AUTH_BYTES];
    memcpy(crc_in, payload, DL_PAYLOAD_BYTES);
    memcpy(crc_in + DL_PAYLOAD_BYTES, auth, DL_AUTH_BYTES);
    uint8_t crc = dl_crc8(crc_in, sizeof crc_in);
    uint16_t seed = dl_whitening_seed(a->ep_id, mc);
    uint8_t seed_b[2] = {(uint8_t)(seed >> 8), (uint8_t)seed};

    struct json_object *o = json_object_new_object();
    add_id_mc(o, a);
    framejson_add_hex(o, "payload", payload, DL_PAYLOAD_BYTES);
    framejson_add_hex(o, "dl_auth", auth, DL_AUTH_BYTES);
    framejson_add_hex(o, "dl_crc", &crc, 1);
    framejson_add_hex(o, "pn9_seed", seed_b, 2);
    framejson_add_hex(o, "dl_phy_content", phy, DL_PHY_BYTES);
    framejson_add_hex(o, "bitstream", frame, DL_FRAME_BYTES);
    cli_json_line(o, stdout);
    json_object_put(o);
    return 0;
}

static int cmd_dl_decode(const args_t *a)
{
    int rc = dl_common_args(a, false);
    if (rc)
        return rc;
    if (a->have_payload)
        return usage_error("dl-decode takes the frame as HEX, not --payload");
    uint8_t b[DL_FRAME_BYTES];
    int n = parse_hex_arg(a, b, sizeof b);
    if (n < 0)
        return EXIT_USAGE;
    if (n != DL_PHY_BYTES && n != DL_FRAME_BYTES)
        return usage_error("HEX is %d bytes; give DL-PHY-CONTENT (15 bytes) or the whole "
                           "downlink bitstream (28 bytes)",
                           n);
    int sync_errors = -1;
    const uint8_t *phy = b;
    if (n == DL_FRAME_BYTES) {
        uint8_t sync[DL_SYNC_BITS];
        dl_sync_bits(sync);
        sync_errors = 0;
        for (int i = 0; i < DL_SYNC_BITS; i++)
            sync_errors += ul_bit_get(b, (size_t)i) != sync[i];
        /* More than a tenth of the 104 sync bits wrong: not a downlink frame. */
        if (sync_errors > DL_SYNC_BITS / 10) {
            error_msg("HEX does not start with the downlink preamble and FT 0x1227 "
                      "(%d of %d bits differ)",
                      sync_errors, DL_SYNC_BITS);
            return EXIT_DECODE;
        }
        phy = b + DL_FRAME_BYTES - DL_PHY_BYTES;
    }
    dl_decoded_t d;
    rc = dl_frame_decode(a->ep_id, (uint16_t)a->mc, a->have_key ? a->key : NULL, phy, &d);
    if (rc != 0 && rc != DL_ERR_CRC) {
        error_msg("cannot decode the downlink: %s", dl_strerror(rc));
        return EXIT_DECODE;
    }
    struct json_object *o = json_object_new_object();
    add_id_mc(o, a);
    framejson_add_hex(o, "payload", d.payload, DL_PAYLOAD_BYTES);
    framejson_add_hex(o, "dl_auth", d.auth, DL_AUTH_BYTES);
    framejson_add_hex(o, "dl_crc", &d.crc, 1);
    framejson_add_hex(o, "ecc", d.ecc, DL_ECC_BYTES);
    framejson_add_hex(o, "dl_phy_content", phy, DL_PHY_BYTES);
    json_object_object_add(o, "crc_ok", json_object_new_boolean(d.crc_ok));
    json_object_object_add(o, "corrected_bits", json_object_new_int(d.corrected_bits));
    if (sync_errors >= 0)
        json_object_object_add(o, "sync_errors", json_object_new_int(sync_errors));
    const char *auth = !a->have_key || !d.crc_ok ? FRAMEJSON_AUTH_UNCHECKED
                       : d.auth_status == 1      ? FRAMEJSON_AUTH_OK
                                                 : FRAMEJSON_AUTH_BAD;
    framejson_add_auth(o, auth);
    int status = 0;
    if (!d.crc_ok) {
        error_msg("DL-CRC mismatch after BCH correction (wrong --id/--mc, or too many bit "
                  "errors)");
        status = EXIT_DECODE;
    } else if (strcmp(auth, FRAMEJSON_AUTH_BAD) == 0) {
        error_msg("DL-AUTH does not match the key (wrong key, --id or --mc?)");
        status = EXIT_DECODE;
    }
    cli_json_line(o, stdout);
    json_object_put(o);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("missing COMMAND (ul-decode, ul-encode, dl-encode, dl-decode)");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("sigfox-frame %s\n", SIGFOXD_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*run)(const args_t *);
    } cmds[] = {{"ul-decode", cmd_ul_decode},
                {"ul-encode", cmd_ul_encode},
                {"dl-encode", cmd_dl_encode},
                {"dl-decode", cmd_dl_decode}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmd, cmds[i].name) != 0)
            continue;
        static args_t a;
        int rc = parse_args(argc - 1, argv + 1, &a);
        if (rc < 0)
            return 0;
        if (rc)
            return rc;
        return cmds[i].run(&a);
    }
    return usage_error("unknown command '%s' (ul-decode, ul-encode, dl-encode, dl-decode)",
                       cmd);
}
