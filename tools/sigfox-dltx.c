/* sigfox-dltx: writes a Sigfox downlink burst (spec rev 1.4 §2.5, §4) to an IQ file, the
 * same waveform sigfoxd transmits: dlframe builds the frame, gfskmod modulates it. For
 * driving a TX-only SDR (e.g. hackrf_transfer -t), testing a device's receiver, and for
 * testing sigfox-dlrx. Licence: MIT.
 *
 * Exit status: 0 written, 1 write error, 64 bad usage.
 */
#include <complex.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cliutil.h"
#include "dlframe.h"
#include "framejson.h"
#include "gfskmod.h"
#include "hexutil.h"
#include "iqfile.h"
#include "prng.h"

#define EXIT_WRITE 1
#define EXIT_USAGE CLI_EXIT_USAGE

static const char *prog = "sigfox-dltx";

static const char usage_text[] =
    "Usage: sigfox-dltx --id HEX8 --key HEX32 --mc N --payload HEX16 --rate RATE\n"
    "                   [OPTIONS] FILE\n"
    "Write one Sigfox downlink burst (GFSK 600 baud, +/-800 Hz, BT 0.5) as an IQ file and\n"
    "print a JSON line describing it.\n"
    "\n"
    "Frame:\n"
    "      --id HEX8        device ID, e.g. FEDCBA98\n"
    "      --key HEX32      device key (AES-128) for DL-AUTH\n"
    "      --mc N           MC 0..4095 of the uplink that asked for the downlink\n"
    "      --payload HEX16  the 8-byte downlink payload\n"
    "Signal:\n"
    "  -r, --rate RATE      sample rate (e.g. 1M, 2.4M), 4.8 kS/s .. 100 MS/s\n"
    "  -c, --center FREQ    centre frequency of the file (metadata and --freq reference)\n"
    "      --freq FREQ      absolute carrier (needs --center), or\n"
    "      --offset HZ      carrier offset from the centre (default 0)\n"
    "      --amplitude A    peak amplitude, 0 < A <= 1 (default 0.5)\n"
    "      --bt BT          Gaussian BT, 0.2 .. 1 (default 0.5)\n"
    "      --lead S         silence (or noise) before the burst, seconds (default 0.1)\n"
    "      --tail S         after the burst (default 0.1)\n"
    "      --ebn0 DB        add white Gaussian noise for this Eb/N0 (default: none)\n"
    "      --seed N         noise seed (default 1)\n"
    "  -F, --format FMT     cu8, cs8, cs16, cf32, wav, wavf32, sigmf (default: extension)\n"
    "  -h, --help           this text;  --version  print the version\n"
    "\n"
    "JSON fields: ep_id, mc, payload, dl_phy_content, bitstream, freq_hz (absolute with\n"
    "--center, else the offset), t_start_s (first preamble bit, seconds from the first\n"
    "sample), t_end_s (end of the ramp-down), rate, ebn0_db (with --ebn0).\n"
    "\n"
    "Example (spec Annex C downlink at 1 MS/s, 10 kHz above the centre):\n"
    "  sigfox-dltx --id FEDCBA98 --key 0123456789ABCDEF0123456789ABCDEF --mc 1650 \\\n"
    "      --payload 3031323334353637 --rate 1M --center 869.525M --offset 10k dl.cf32\n";

#define usage_error(...) cli_usage_error(prog, __VA_ARGS__)

typedef struct {
    const char *path;
    iq_format_t format;
    uint32_t ep_id;
    long mc, seed;
    uint8_t key[16], payload[8];
    double rate_sps, center_hz, freq_hz, offset_hz, amplitude, bt, lead_s, tail_s, ebn0_db;
    bool have_id, have_key, have_mc, have_payload, have_freq, have_offset, have_ebn0;
} args_t;

enum {
    OPT_ID = 256,
    OPT_KEY,
    OPT_MC,
    OPT_PAYLOAD,
    OPT_FREQ,
    OPT_OFFSET,
    OPT_AMP,
    OPT_BT,
    OPT_LEAD,
    OPT_TAIL,
    OPT_EBN0,
    OPT_SEED,
};

static const struct option long_opts[] = {
    {"id", required_argument, NULL, OPT_ID},
    {"key", required_argument, NULL, OPT_KEY},
    {"mc", required_argument, NULL, OPT_MC},
    {"payload", required_argument, NULL, OPT_PAYLOAD},
    {"rate", required_argument, NULL, 'r'},
    {"center", required_argument, NULL, 'c'},
    {"freq", required_argument, NULL, OPT_FREQ},
    {"offset", required_argument, NULL, OPT_OFFSET},
    {"amplitude", required_argument, NULL, OPT_AMP},
    {"bt", required_argument, NULL, OPT_BT},
    {"lead", required_argument, NULL, OPT_LEAD},
    {"tail", required_argument, NULL, OPT_TAIL},
    {"ebn0", required_argument, NULL, OPT_EBN0},
    {"seed", required_argument, NULL, OPT_SEED},
    {"format", required_argument, NULL, 'F'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, CLI_OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* A number with optional SI suffix within [lo, hi]. */
static bool num_in(const char *text, double lo, double hi, double *v)
{
    return cli_parse_number(text, v) && *v >= lo && *v <= hi;
}

static int parse_args(int argc, char **argv, args_t *a)
{
    memset(a, 0, sizeof *a);
    a->amplitude = 0.5;
    a->bt = GFSK_DEFAULT_BT;
    a->lead_s = a->tail_s = 0.1;
    a->seed = 1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":r:c:F:h", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_ID:
            if (hex_to_ep_id(optarg, &a->ep_id))
                return usage_error("bad --id '%s': 8 hex digits such as FEDCBA98", optarg);
            a->have_id = true;
            break;
        case OPT_KEY:
            if (hex_to_bytes(optarg, a->key, sizeof a->key) != 16)
                return usage_error("bad --key: 32 hex digits (AES-128)");
            a->have_key = true;
            break;
        case OPT_MC:
            if (!cli_parse_long(optarg, 0, 0, DL_MC_MAX, &a->mc))
                return usage_error("bad --mc '%s': a message counter 0..4095", optarg);
            a->have_mc = true;
            break;
        case OPT_PAYLOAD:
            if (hex_to_bytes(optarg, a->payload, sizeof a->payload) != 8)
                return usage_error("bad --payload '%s': exactly 8 bytes (16 hex digits)", optarg);
            a->have_payload = true;
            break;
        case 'r':
            if (!num_in(optarg, 4800, 100e6, &a->rate_sps))
                return usage_error("bad --rate '%s': 4.8k .. 100M samples/s", optarg);
            break;
        case 'c':
            if (!num_in(optarg, 1, 1e12, &a->center_hz))
                return usage_error("bad --center '%s': a frequency such as 869.525M", optarg);
            break;
        case OPT_FREQ:
            if (!num_in(optarg, 1, 1e12, &a->freq_hz))
                return usage_error("bad --freq '%s': a frequency such as 869.535M", optarg);
            a->have_freq = true;
            break;
        case OPT_OFFSET:
            if (!num_in(optarg, -50e6, 50e6, &a->offset_hz))
                return usage_error("bad --offset '%s': Hz from the centre", optarg);
            a->have_offset = true;
            break;
        case OPT_AMP:
            if (!num_in(optarg, 1e-6, 1.0, &a->amplitude))
                return usage_error("bad --amplitude '%s': 0 < A <= 1", optarg);
            break;
        case OPT_BT:
            if (!num_in(optarg, 0.2, 1.0, &a->bt))
                return usage_error("bad --bt '%s': 0.2 .. 1", optarg);
            break;
        case OPT_LEAD:
            if (!num_in(optarg, 0, 3600, &a->lead_s))
                return usage_error("bad --lead '%s': seconds, 0 .. 3600", optarg);
            break;
        case OPT_TAIL:
            if (!num_in(optarg, 0, 3600, &a->tail_s))
                return usage_error("bad --tail '%s': seconds, 0 .. 3600", optarg);
            break;
        case OPT_EBN0:
            if (!num_in(optarg, -20, 100, &a->ebn0_db))
                return usage_error("bad --ebn0 '%s': dB, -20 .. 100", optarg);
            a->have_ebn0 = true;
            break;
        case OPT_SEED:
            if (!cli_parse_long(optarg, 0, 0, 0x7FFFFFFF, &a->seed))
                return usage_error("bad --seed '%s': 0 .. 2147483647", optarg);
            break;
        case 'F':
            a->format = iq_format_from_name(optarg);
            if (a->format == IQ_FORMAT_UNKNOWN)
                return usage_error("unknown --format '%s' (cu8, cs8, cs16, cf32, wav, wavf32, "
                                   "sigmf)",
                                   optarg);
            break;
        default: /* -h, --version, errors */
            return cli_common_opt(c, prog, usage_text, argv);
        }
    }
    if (!a->have_id || !a->have_key || !a->have_mc || !a->have_payload)
        return usage_error("--id, --key, --mc and --payload are required");
    if (a->rate_sps == 0)
        return usage_error("--rate is required");
    if (a->have_freq && a->have_offset)
        return usage_error("give either --freq or --offset, not both");
    if (a->have_freq && a->center_hz == 0)
        return usage_error("--freq needs --center (the file's centre frequency)");
    if (a->have_freq)
        a->offset_hz = a->freq_hz - a->center_hz;
    if (fabs(a->offset_hz) + 2000.0 > a->rate_sps / 2)
        return usage_error("carrier offset %.0f Hz does not fit in +/-%.0f Hz at this rate "
                           "(the signal needs +/-2 kHz)",
                           a->offset_hz, a->rate_sps / 2);
    if (optind >= argc)
        return usage_error("missing FILE (the IQ file to write, '-' for stdout)");
    if (optind + 1 < argc)
        return usage_error("one FILE only ('%s' is extra)", argv[optind + 1]);
    a->path = argv[optind];
    return 0;
}

/* One complex Gaussian sample of sigma per component (0 when sigma is 0). */
static float complex noise(prng_t *r, float sigma)
{
    if (sigma <= 0)
        return 0;
    double a, b;
    prng_normal2(r, &a, &b);
    return (float)(sigma * a) + I * (float)(sigma * b);
}

/* Writes n samples of silence or noise (sigma per component; 0: zeros) in chunks. */
static int write_fill(iqfile_t *f, size_t n, prng_t *r, float sigma, float complex *tmp, size_t cap)
{
    while (n > 0) {
        size_t k = n < cap ? n : cap;
        for (size_t i = 0; i < k; i++)
            tmp[i] = noise(r, sigma);
        if (iqfile_write(f, tmp, k))
            return -1;
        n -= k;
    }
    return 0;
}

int main(int argc, char **argv)
{
    args_t a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? 0 : rc;

    uint8_t phy[DL_PHY_BYTES], frame[DL_FRAME_BYTES];
    if ((rc = dl_frame_encode(a.ep_id, (uint16_t)a.mc, a.payload, a.key, phy, frame))) {
        fprintf(stderr, "%s: cannot build the frame: %s\n", prog, dl_strerror(rc));
        return EXIT_WRITE;
    }
    gfskmod_config_t mc = {.rate_sps = a.rate_sps,
                           .offset_hz = a.offset_hz,
                           .bt = (float)a.bt,
                           .amplitude = (float)a.amplitude};
    gfskmod_t *mod = gfskmod_create(&mc);
    if (!mod) {
        fprintf(stderr, "%s: cannot set up the modulator\n", prog);
        return EXIT_USAGE;
    }
    size_t len = gfskmod_burst_samples(mod, DL_FRAME_BITS);
    const size_t chunk = 65536;
    float complex *burst = malloc(len * sizeof *burst), *tmp = malloc(chunk * sizeof *tmp);
    if (!burst || !tmp) {
        fprintf(stderr, "%s: out of memory\n", prog);
        free(burst);
        free(tmp);
        gfskmod_destroy(mod);
        return EXIT_WRITE;
    }
    gfskmod_process(mod, frame, DL_FRAME_BITS, burst, len);

    /* Noise: Eb = A² / 600 (constant envelope), N0 = Eb / (Eb/N0), σ² = N0 × rate. */
    float sigma = 0;
    if (a.have_ebn0) {
        double n0 = a.amplitude * a.amplitude / 600.0 / pow(10.0, a.ebn0_db / 10.0);
        sigma = (float)sqrt(n0 * a.rate_sps / 2.0);
    }
    prng_t rng;
    prng_seed(&rng, (uint64_t)a.seed, 0);
    size_t lead = (size_t)llround(a.lead_s * a.rate_sps);
    size_t tail = (size_t)llround(a.tail_s * a.rate_sps);

    char err[512];
    iqfile_params_t p = {.format = a.format,
                         .rate_sps = a.rate_sps,
                         .center_freq_hz = a.center_hz,
                         .description = "Sigfox downlink burst (sigfox-dltx)"};
    iqfile_t *f = iqfile_open_write(a.path, &p, err, sizeof err);
    int status = 0;
    if (!f) {
        fprintf(stderr, "%s: %s\n", prog, err);
        status = EXIT_WRITE;
        goto out;
    }
    if (write_fill(f, lead, &rng, sigma, tmp, chunk)) {
        status = EXIT_WRITE;
        goto out;
    }
    for (size_t s = 0; s < len; s += chunk) {
        size_t k = len - s < chunk ? len - s : chunk;
        for (size_t i = 0; i < k; i++)
            tmp[i] = burst[s + i] + noise(&rng, sigma);
        if (iqfile_write(f, tmp, k)) {
            status = EXIT_WRITE;
            goto out;
        }
    }
    if (write_fill(f, tail, &rng, sigma, tmp, chunk)) {
        status = EXIT_WRITE;
        goto out;
    }

out:
    if (status && f)
        fprintf(stderr, "%s: %s: %s\n", prog, a.path, iqfile_error(f));
    if (f && iqfile_close(f) && !status)
        status = EXIT_WRITE;
    if (!status) {
        struct json_object *o = json_object_new_object();
        framejson_add_ep_id(o, a.ep_id);
        framejson_add(o, "mc", json_object_new_int((int)a.mc));
        framejson_add_hex(o, "payload", a.payload, 8);
        framejson_add_hex(o, "dl_phy_content", phy, DL_PHY_BYTES);
        framejson_add_hex(o, "bitstream", frame, DL_FRAME_BYTES);
        framejson_add_num(o, "freq_hz", a.center_hz + a.offset_hz, 2);
        double t0 = (double)lead / a.rate_sps;
        framejson_add_num(o, "t_start_s", t0 + gfskmod_data_offset_s(mod), 6);
        framejson_add_num(o, "t_end_s", t0 + (double)len / a.rate_sps, 6);
        framejson_add_num(o, "rate", a.rate_sps, 1);
        if (a.have_ebn0)
            framejson_add_num(o, "ebn0_db", a.ebn0_db, 2);
        /* stdout may carry the samples ('-'): the description goes to stderr then */
        FILE *jout = strcmp(a.path, "-") == 0 ? stderr : stdout;
        cli_json_line(o, jout);
        json_object_put(o);
    }
    free(burst);
    free(tmp);
    gfskmod_destroy(mod);
    return status;
}
