/* sigfox-dlrx: Sigfox downlink receiver for IQ recordings. Finds every GFSK downlink burst
 * (spec rev 1.4 §2.5.2, §4) in a file, demodulates it (dldemod), de-whitens, BCH-corrects,
 * checks DL-CRC and, with the device key, DL-AUTH (dlframe); prints one JSON line per
 * burst. Used to check a TX chain with a second SDR, and by the project's tests.
 * Licence: MIT.
 *
 * Exit status: 0 at least one burst decoded (CRC ok; without --id: demodulated), 1 none
 * found or a read error, 64 bad usage.
 */
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cliutil.h"
#include "dldemod.h"
#include "dlframe.h"
#include "framejson.h"
#include "hexutil.h"
#include "iqfile.h"
#include "keys.h"

#define EXIT_NONE 1
#define EXIT_USAGE CLI_EXIT_USAGE
#define BLOCK_S 2.0
/* Overlap between blocks: one frame (224 symbols), its ramps and some margin, so that
 * every burst lies wholly inside at least one block. */
#define OVERLAP_S (DL_FRAME_BITS / 600.0 + 0.06)
#define MAX_BURSTS 64

static const char *prog = "sigfox-dlrx";

static const char usage_text[] =
    "Usage: sigfox-dlrx [OPTIONS] FILE\n"
    "Find and decode Sigfox downlink bursts (GFSK 600 baud, +/-800 Hz, 91-bit preamble,\n"
    "FT 0x1227) in an IQ recording; print one JSON line per burst.\n"
    "\n"
    "Input:\n"
    "  -F, --format FMT     cu8, cs8, cs16, cf32, wav, wavf32, sigmf (default: from the\n"
    "                       file extension); FILE '-' reads stdin (raw formats)\n"
    "  -r, --rate RATE      sample rate when the file has no metadata (e.g. 1024k, 2.4M);\n"
    "                       9.6 kS/s .. 20 MS/s\n"
    "  -c, --center FREQ    centre frequency of the recording (e.g. 869.525M); then\n"
    "                       freq_hz is absolute, otherwise relative to the centre\n"
    "      --search LO:HI   carrier search range in Hz (absolute when the centre is known,\n"
    "                       else relative); default: the whole band minus 2.4 kHz edges\n"
    "      --threshold X    sync detection threshold in noise standard deviations\n"
    "                       (default 6; lower finds weaker bursts, with more false ones)\n"
    "      --time-offset S  add S seconds to t_start_s (e.g. the recording's start on\n"
    "                       another time base)\n"
    "Decoding (the whitening depends on ID x MC, so the payload needs --id and --mc):\n"
    "      --id HEX8        device ID, e.g. FEDCBA98\n"
    "      --mc N           message counter 0..4095 of the uplink that asked for the\n"
    "                       downlink; omitted with a key: every MC is tried and the one\n"
    "                       whose CRC and DL-AUTH match is reported\n"
    "      --key HEX32      device key: checks DL-AUTH\n"
    "      --keys FILE      keys file (`EPID KEY` per line): the key of --id\n"
    "  -h, --help           this text;  --version  print the version\n"
    "\n"
    "JSON fields (one object per burst, in time order):\n"
    "  ep_id, mc, payload (hex), crc_ok, auth (ok|bad|unchecked), corrected_bits\n"
    "    (with --id; payload and mc only when known)\n"
    "  freq_hz        carrier (between the +/-800 Hz tones), absolute with --center\n"
    "  freq_offset_hz carrier relative to the recording's centre\n"
    "  t_start_s      start of the first preamble bit, seconds from the first sample\n"
    "  snr_db         Eb/N0 estimate (signal power / (N0 x 600 Hz))\n"
    "  rssi_dbfs      signal power, dB full scale\n"
    "  dl_phy_content the 15 received bytes (whitened), hex\n"
    "  sync_errors    bit errors in the 104 preamble+FT bits\n"
    "\n"
    "Exit status: 0 at least one burst decoded (CRC ok; without --id: demodulated),\n"
    "1 none found or a read error, 64 bad usage.\n"
    "\n"
    "Example:\n"
    "  sigfox-dlrx --rate 1M --center 869.525M --id FEDCBA98 --mc 1650 \\\n"
    "      --key 0123456789ABCDEF0123456789ABCDEF capture.cf32\n";

#define usage_error(...) cli_usage_error(prog, __VA_ARGS__)

typedef struct {
    const char *path, *keys_path;
    iq_format_t format;
    double rate_sps, center_hz, search_lo, search_hi, threshold, time_offset_s;
    bool have_search, have_id, have_mc, have_key;
    uint32_t ep_id;
    long mc;
    uint8_t key[16];
} args_t;

enum { OPT_SEARCH = 256, OPT_THRESHOLD, OPT_TOFF, OPT_ID, OPT_MC, OPT_KEY, OPT_KEYS };

static const struct option long_opts[] = {
    {"format", required_argument, NULL, 'F'},
    {"rate", required_argument, NULL, 'r'},
    {"center", required_argument, NULL, 'c'},
    {"search", required_argument, NULL, OPT_SEARCH},
    {"threshold", required_argument, NULL, OPT_THRESHOLD},
    {"time-offset", required_argument, NULL, OPT_TOFF},
    {"id", required_argument, NULL, OPT_ID},
    {"mc", required_argument, NULL, OPT_MC},
    {"key", required_argument, NULL, OPT_KEY},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, CLI_OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Returns 0 to go on, -1 after --help/--version (exit 0), or EXIT_USAGE. */
static int parse_args(int argc, char **argv, args_t *a)
{
    memset(a, 0, sizeof *a);
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":F:r:c:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'F':
            a->format = iq_format_from_name(optarg);
            if (a->format == IQ_FORMAT_UNKNOWN)
                return usage_error("unknown --format '%s' (cu8, cs8, cs16, cf32, wav, wavf32, "
                                   "sigmf)",
                                   optarg);
            break;
        case 'r':
            if (!cli_parse_number(optarg, &a->rate_sps) || a->rate_sps <= 0)
                return usage_error("bad --rate '%s': a positive sample rate such as 1024k", optarg);
            break;
        case 'c':
            if (!cli_parse_number(optarg, &a->center_hz) || a->center_hz <= 0)
                return usage_error("bad --center '%s': a frequency such as 869.525M", optarg);
            break;
        case OPT_SEARCH: {
            const char *colon = strchr(optarg, ':');
            char lo[64];
            size_t n = colon ? (size_t)(colon - optarg) : 0;
            if (!colon || n == 0 || n >= sizeof lo)
                return usage_error("bad --search '%s': LO:HI in Hz", optarg);
            memcpy(lo, optarg, n);
            lo[n] = '\0';
            if (!cli_parse_number(lo, &a->search_lo) ||
                !cli_parse_number(colon + 1, &a->search_hi) || a->search_lo >= a->search_hi)
                return usage_error("bad --search '%s': LO:HI in Hz with LO < HI", optarg);
            a->have_search = true;
            break;
        }
        case OPT_THRESHOLD:
            if (!cli_parse_number(optarg, &a->threshold) || a->threshold < 3 || a->threshold > 1000)
                return usage_error("bad --threshold '%s': a number from 3 to 1000", optarg);
            break;
        case OPT_TOFF:
            if (!cli_parse_number(optarg, &a->time_offset_s))
                return usage_error("bad --time-offset '%s': seconds", optarg);
            break;
        case OPT_ID:
            if (hex_to_ep_id(optarg, &a->ep_id) != 0)
                return usage_error("bad --id '%s': 8 hex digits such as FEDCBA98", optarg);
            a->have_id = true;
            break;
        case OPT_MC:
            if (!cli_parse_long(optarg, 0, 0, DL_MC_MAX, &a->mc))
                return usage_error("bad --mc '%s': a message counter 0..4095", optarg);
            a->have_mc = true;
            break;
        case OPT_KEY:
            if (hex_to_bytes(optarg, a->key, sizeof a->key) != 16)
                return usage_error("bad --key: 32 hex digits (AES-128)");
            a->have_key = true;
            break;
        case OPT_KEYS:
            a->keys_path = optarg;
            break;
        default: /* -h, --version, errors */
            return cli_common_opt(c, prog, usage_text, argv);
        }
    }
    if (optind >= argc)
        return usage_error("missing FILE (an IQ recording, '-' for stdin)");
    if (optind + 1 < argc)
        return usage_error("one FILE only ('%s' is extra)", argv[optind + 1]);
    a->path = argv[optind];
    if ((a->have_mc || a->have_key || a->keys_path) && !a->have_id)
        return usage_error("--mc, --key and --keys need --id (the whitening depends on ID x MC)");
    if (a->have_key && a->keys_path)
        return usage_error("give either --key or --keys, not both");
    return 0;
}

/* Finds the MC whose de-whitening gives a good CRC and DL-AUTH. Returns it or -1. */
static long search_mc(uint32_t ep_id, const uint8_t *key, const uint8_t phy[DL_PHY_BYTES],
                      dl_decoded_t *out)
{
    for (long mc = 0; mc <= DL_MC_MAX; mc++) {
        dl_decoded_t d;
        if (dl_frame_decode(ep_id, (uint16_t)mc, key, phy, &d) == DL_OK && d.auth_status == 1) {
            *out = d;
            return mc;
        }
    }
    return -1;
}

static void add(struct json_object *o, const char *k, struct json_object *v)
{
    framejson_add(o, k, v);
}

/* Prints one burst; returns 1 when it counts as decoded. */
static int report(const args_t *a, const uint8_t *key, const dldemod_burst_t *b, double t_s)
{
    struct json_object *o = json_object_new_object();
    int decoded = 1;
    if (a->have_id) {
        framejson_add_ep_id(o, a->ep_id);
        dl_decoded_t d;
        long mc = a->mc;
        bool known = a->have_mc;
        if (!known && key) {
            mc = search_mc(a->ep_id, key, b->phy, &d);
            known = mc >= 0;
        } else if (known) {
            dl_frame_decode(a->ep_id, (uint16_t)mc, key, b->phy, &d);
        }
        if (known) {
            add(o, "mc", json_object_new_int((int)mc));
            framejson_add_hex(o, "payload", d.payload, DL_PAYLOAD_BYTES);
            add(o, "crc_ok", json_object_new_boolean(d.crc_ok));
            add(o, "corrected_bits", json_object_new_int(d.corrected_bits));
            framejson_add_auth(o, !key || !d.crc_ok    ? FRAMEJSON_AUTH_UNCHECKED
                                  : d.auth_status == 1 ? FRAMEJSON_AUTH_OK
                                                       : FRAMEJSON_AUTH_BAD);
            decoded = d.crc_ok;
        } else {
            /* With a key but no MC matching: not this device's downlink (or too damaged). */
            add(o, "crc_ok", json_object_new_boolean(false));
            framejson_add_auth(o, FRAMEJSON_AUTH_BAD);
            decoded = 0;
        }
    }
    framejson_add_num(o, "freq_hz", a->center_hz + b->freq_hz, 2);
    framejson_add_num(o, "freq_offset_hz", b->freq_hz, 2);
    framejson_add_num(o, "t_start_s", t_s, 6);
    framejson_add_num(o, "snr_db", b->snr_db, 2);
    framejson_add_num(o, "rssi_dbfs", b->rssi_dbfs, 2);
    framejson_add_hex(o, "dl_phy_content", b->phy, DL_PHY_BYTES);
    add(o, "sync_errors", json_object_new_int(b->sync_bit_errors));
    cli_json_line(o, stdout);
    json_object_put(o);
    return decoded;
}

int main(int argc, char **argv)
{
    args_t a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? 0 : rc;

    const uint8_t *key = a.have_key ? a.key : NULL;
    keystore_t *ks = NULL;
    if (a.keys_path) {
        char err[256];
        ks = keystore_create();
        if (!ks || keystore_load(ks, a.keys_path, err, sizeof err) < 0) {
            fprintf(stderr, "%s: %s\n", prog, ks ? err : "out of memory");
            keystore_destroy(ks);
            return EXIT_USAGE;
        }
        key = keystore_find(ks, a.ep_id);
        if (!key)
            fprintf(stderr, "%s: no key for device %08X in %s: DL-AUTH unchecked\n", prog,
                    (unsigned)a.ep_id, a.keys_path);
    }
    if (a.have_id && !a.have_mc && !key)
        fprintf(stderr,
                "%s: without --mc a key is needed to identify the MC; printing the "
                "demodulated bytes only\n",
                prog);

    char err[512];
    iqfile_params_t p = {.format = a.format, .rate_sps = a.rate_sps, .center_freq_hz = a.center_hz};
    iqfile_t *f = iqfile_open_read(a.path, &p, err, sizeof err);
    if (!f) {
        fprintf(stderr, "%s: %s\n", prog, err);
        keystore_destroy(ks);
        return EXIT_NONE;
    }
    double rate = iqfile_rate(f);
    a.center_hz = iqfile_center_freq(f);
    int status = EXIT_NONE;
    dldemod_t *q = NULL;
    float complex *buf = NULL;
    if (!(rate >= 9600.0 && rate <= 20e6)) {
        if (rate == 0)
            fprintf(stderr, "%s: %s: unknown sample rate; give --rate\n", prog, a.path);
        else
            fprintf(stderr, "%s: %s: sample rate %.0f S/s is outside 9.6 kS/s .. 20 MS/s\n", prog,
                    a.path, rate);
        status = EXIT_USAGE;
        goto out;
    }
    size_t block = (size_t)(BLOCK_S * rate), overlap = (size_t)ceil(OVERLAP_S * rate);
    size_t hop = block - overlap;
    dldemod_config_t cfg = {
        .rate_sps = rate, .max_block_samples = block, .detect_threshold = (float)a.threshold};
    if (a.have_search) {
        double off = a.center_hz; /* absolute range when the centre is known */
        cfg.search_lo_hz = a.search_lo - off;
        cfg.search_hi_hz = a.search_hi - off;
        if (cfg.search_lo_hz == 0 && cfg.search_hi_hz == 0)
            cfg.search_hi_hz = 1; /* 0:0 means "default" to dldemod */
    }
    q = dldemod_create(&cfg);
    buf = malloc(block * sizeof *buf);
    if (!q || !buf) {
        fprintf(stderr,
                "%s: cannot set up the receiver (search range %.0f..%.0f Hz outside "
                "the recording's +/-%.0f Hz, or out of memory)\n",
                prog, cfg.search_lo_hz + a.center_hz, cfg.search_hi_hz + a.center_hz, rate / 2);
        status = EXIT_USAGE;
        goto out;
    }
    fprintf(stderr, "%s: %s: %.0f S/s (%s), centre %.0f Hz (%s)\n", prog, a.path, rate,
            iq_source_name(iqfile_rate_source(f)), a.center_hz,
            iq_source_name(iqfile_center_freq_source(f)));

    /* Blocks of BLOCK_S overlapping by OVERLAP_S; a burst is reported from the block in
     * which it starts before the overlap (or from the last block). */
    size_t have = 0;
    unsigned long long block_start = 0;
    int nfound = 0, ndecoded = 0;
    bool eof = false;
    while (!eof) {
        while (have < block) {
            ssize_t n = iqfile_read(f, buf + have, block - have);
            if (n < 0) {
                fprintf(stderr, "%s: %s: %s\n", prog, a.path, iqfile_error(f));
                status = EXIT_NONE;
                goto out;
            }
            if (n == 0) {
                eof = true;
                break;
            }
            have += (size_t)n;
        }
        dldemod_burst_t b[MAX_BURSTS];
        int nb = dldemod_process(q, buf, have, b, MAX_BURSTS);
        for (int i = 0; i < nb; i++) {
            if (!eof && b[i].sample_idx >= (double)hop)
                continue; /* the next block holds it whole */
            double t = ((double)block_start + b[i].sample_idx) / rate + a.time_offset_s;
            nfound++;
            ndecoded += report(&a, key, &b[i], t);
        }
        if (eof || have < block)
            break;
        memmove(buf, buf + hop, (block - hop) * sizeof *buf);
        have = block - hop;
        block_start += hop;
    }
    fprintf(stderr, "%s: %d burst(s) found, %d decoded\n", prog, nfound, ndecoded);
    status = ndecoded > 0 ? 0 : EXIT_NONE;
out:
    free(buf);
    dldemod_destroy(q);
    iqfile_close(f);
    keystore_destroy(ks);
    return status;
}
