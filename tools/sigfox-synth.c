/* sigfox-synth: synthesize a Sigfox uplink capture (N devices sending per spec rev 1.4)
 * with its ground truth and device keys. Licence: MIT. docs/synth.md describes the tool,
 * the truth fields, the Eb/N0 definition and the impairments.
 *
 * Writes FILE (any iqfile format), FILE.truth.jsonl and FILE.keys (for SigMF, FILE is the
 * name without .sigmf-meta/.sigmf-data). Exit status: 0 ok, 1 runtime failure, 64 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cliutil.h"
#include "config.h"
#include "iqfile.h"
#include "keys.h"
#include "rc.h"
#include "synth.h"

#ifndef SIGFOXD_VERSION
#define SIGFOXD_VERSION "unknown"
#endif

#define EXIT_FAIL 1
#define EXIT_USAGE CLI_EXIT_USAGE
#define BLOCK_SAMPLES 65536

static const char usage_text[] =
    "Usage: sigfox-synth -o FILE [options]\n"
    "Synthesize a Sigfox uplink capture: devices sending messages as the radio spec says,\n"
    "AWGN at the capture's full bandwidth, optional interferers and collisions. Writes\n"
    "FILE, FILE.truth.jsonl (one JSON object per burst) and FILE.keys (EPID KEY lines).\n"
    "\n"
    "Output:\n"
    "  -o, --output FILE      capture file (\"-\": stdout, raw formats; then the truth and\n"
    "                         keys are written only with --truth/--keys)\n"
    "  --format F             cu8, cs8, cs16, cf32, wav (= wav16), wav16, wavf32, sigmf\n"
    "                         (default: from FILE's extension)\n"
    "  --sigmf-datatype T     sample type inside SigMF: cu8, cs8, cs16, cf32 (default cf32)\n"
    "  --start-utc TIME       SigMF: UTC of the first sample as captures[0] core:datetime\n"
    "                         (ISO-8601, e.g. 2026-12-05T10:00:00Z; default: none)\n"
    "  --truth PATH, --keys PATH   other names for the truth and keys files\n"
    "  --progress             report progress on stderr\n"
    "  --verify               read the capture back through the iqfile module and compare\n"
    "                         it with the synthesized samples (quantisation tolerance)\n"
    "Capture:\n"
    "  --rate R               sample rate, S/s (default 1.024M; accepts 1024k, 2.4M)\n"
    "  --center-freq F        capture centre, Hz (default: the RC's uplink centre;\n"
    "                         accepts 868.13M)\n"
    "  --rc RC                radio configuration RC1..RC7 (default RC1)\n"
    "  --duration S           seconds (default 30)\n"
    "  --seed N               random seed (default 1); same seed, same output\n"
    "Traffic:\n"
    "  --devices N            devices with random traffic (default 10)\n"
    "  --interval S           mean pause between a device's messages (default duration/2)\n"
    "  --baud B               100, 600 or mixed (default mixed; RC2/RC4 allow 600 only)\n"
    "  --ebn0 DB | LO:HI      Eb/N0 per message, fixed or uniform in a range (default 10:30)\n"
    "  --single-frame P       probability of N=1 (default 0.2; else 3 replicas)\n"
    "  --bf P                 probability of BF=1 for application messages (default 0.2)\n"
    "  --one-bit P, --keepalive P, --dl-confirmation P\n"
    "                         message kind probabilities (default 0.1, 0.05, 0.05; the\n"
    "                         rest carry 0-12 byte payloads)\n"
    "  --payload-classes      payloads as real devices send them: random, all 0x00, all\n"
    "                         0xFF, 0x55/0xAA or a record with one byte counting (default:\n"
    "                         random bytes)\n"
    "Impairments:\n"
    "  --max-ppm PPM          device frequency error limit (default 20, spec max)\n"
    "  --max-drift A,B        drift limits in Hz/s for BR100,BR600 (default 20,50)\n"
    "  --max-baud-error PPM   symbol-rate error limit (default 1000 = 0.1 %)\n"
    "Channel:\n"
    "  --noise-dbfs DB        total noise power (default -30 dBFS)\n"
    "  --no-noise             leave the noise out (levels still refer to it)\n"
    "  --cw N                 CW interferers (default 0)\n"
    "  --fsk N                2-GFSK interferers, 4.8 kbaud ±2.4 kHz packets (default 0)\n"
    "  --interferer-db DB     interferer power over N0 x 100 Hz (default 30)\n"
    "  --collisions N         extra bursts overlapping planned ones in time and frequency\n"
    "B-procedures:\n"
    "  --bproc-confirm        every BF=1 message gets its downlink (assumed, not in the\n"
    "                         capture) and the device's confirmation (CT 0x09, MC+1) T_CONF\n"
    "                         after it; a \"bproc\" truth line per B-procedure says when\n"
    "                         and where the downlink was assumed (random DL confirmations\n"
    "                         are not drawn)\n"
    "  --dl-offset S          assumed DL start after the receive window opens (first\n"
    "                         frame end + T_W), seconds (default 1.0 = sigfoxd's margin)\n"
    "Station view (one scene as each of several stations hears it: run once per station\n"
    "with the same --seed and traffic options; every truth holds the same frames):\n"
    "  --station-ebn0 DB      add DB to every burst's Eb/N0 and to the interferers at this\n"
    "                         station (-60..60, default 0)\n"
    "  --station-freq HZ      this station's frequency error: every burst, interferer and\n"
    "                         B-procedure carrier moves by HZ (-100k..100k, default 0)\n"
    "  --station-delay S      this station hears everything S seconds later (0..600); the\n"
    "                         capture grows by S so that no burst is cut (default 0)\n"
    "  --station-noise-seed N seed of this station's noise (default: --seed)\n"
    "  -h, --help, --version\n"
    "\n"
    "Example: a 30 s RC1 capture at 1.024 MS/s, RTL-SDR format, 20 devices:\n"
    "  sigfox-synth -o rc1.cu8 --rc 1 --rate 1024k --duration 30 --devices 20\n"
    "The same scene at a second station, 6 dB weaker, 300 Hz off, 20 ms later:\n"
    "  sigfox-synth -o rc1-b.cu8 --rc 1 --rate 1024k --duration 30 --devices 20 \\\n"
    "      --station-ebn0 -6 --station-freq 300 --station-delay 0.02 --station-noise-seed 2\n";

enum {
    OPT_FORMAT = 1000,
    OPT_SIGMF_TYPE,
    OPT_TRUTH,
    OPT_KEYS,
    OPT_PROGRESS,
    OPT_VERIFY,
    OPT_RATE,
    OPT_CENTER,
    OPT_RC,
    OPT_DURATION,
    OPT_SEED,
    OPT_DEVICES,
    OPT_INTERVAL,
    OPT_BAUD,
    OPT_EBN0,
    OPT_SINGLE,
    OPT_BF,
    OPT_ONE_BIT,
    OPT_PAYLOAD_CLASSES,
    OPT_KEEPALIVE,
    OPT_DLCONF,
    OPT_MAX_PPM,
    OPT_MAX_DRIFT,
    OPT_MAX_BAUD_ERR,
    OPT_NOISE_DBFS,
    OPT_NO_NOISE,
    OPT_CW,
    OPT_FSK,
    OPT_INTF_DB,
    OPT_COLLISIONS,
    OPT_BPROC,
    OPT_DL_OFFSET,
    OPT_ST_EBN0,
    OPT_ST_FREQ,
    OPT_ST_DELAY,
    OPT_ST_NOISE_SEED,
    OPT_VERSION,
    OPT_START_UTC,
};

static const struct option long_opts[] = {
    {"output", required_argument, NULL, 'o'},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"sigmf-datatype", required_argument, NULL, OPT_SIGMF_TYPE},
    {"start-utc", required_argument, NULL, OPT_START_UTC},
    {"truth", required_argument, NULL, OPT_TRUTH},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"verify", no_argument, NULL, OPT_VERIFY},
    {"rate", required_argument, NULL, OPT_RATE},
    {"center-freq", required_argument, NULL, OPT_CENTER},
    {"rc", required_argument, NULL, OPT_RC},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"seed", required_argument, NULL, OPT_SEED},
    {"devices", required_argument, NULL, OPT_DEVICES},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"baud", required_argument, NULL, OPT_BAUD},
    {"ebn0", required_argument, NULL, OPT_EBN0},
    {"single-frame", required_argument, NULL, OPT_SINGLE},
    {"bf", required_argument, NULL, OPT_BF},
    {"one-bit", required_argument, NULL, OPT_ONE_BIT},
    {"payload-classes", no_argument, NULL, OPT_PAYLOAD_CLASSES},
    {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
    {"dl-confirmation", required_argument, NULL, OPT_DLCONF},
    {"max-ppm", required_argument, NULL, OPT_MAX_PPM},
    {"max-drift", required_argument, NULL, OPT_MAX_DRIFT},
    {"max-baud-error", required_argument, NULL, OPT_MAX_BAUD_ERR},
    {"noise-dbfs", required_argument, NULL, OPT_NOISE_DBFS},
    {"no-noise", no_argument, NULL, OPT_NO_NOISE},
    {"cw", required_argument, NULL, OPT_CW},
    {"fsk", required_argument, NULL, OPT_FSK},
    {"interferer-db", required_argument, NULL, OPT_INTF_DB},
    {"collisions", required_argument, NULL, OPT_COLLISIONS},
    {"bproc-confirm", no_argument, NULL, OPT_BPROC},
    {"dl-offset", required_argument, NULL, OPT_DL_OFFSET},
    {"station-ebn0", required_argument, NULL, OPT_ST_EBN0},
    {"station-freq", required_argument, NULL, OPT_ST_FREQ},
    {"station-delay", required_argument, NULL, OPT_ST_DELAY},
    {"station-noise-seed", required_argument, NULL, OPT_ST_NOISE_SEED},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

#define usage_error(...) cli_usage_error("sigfox-synth", __VA_ARGS__)

static bool parse_prob(const char *text, double *p)
{
    return cli_parse_number(text, p) && *p >= 0 && *p <= 1;
}

static bool parse_seed(const char *text, uint64_t *seed)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 0);
    if (errno || end == text || *end || text[0] == '-')
        return false;
    *seed = v;
    return true;
}

/* "DB" or "LO:HI" */
static bool parse_range(const char *text, double *lo, double *hi)
{
    const char *colon = strchr(text, ':');
    if (!colon)
        return cli_parse_number(text, lo) && (*hi = *lo, true);
    char a[64];
    size_t n = (size_t)(colon - text);
    if (n == 0 || n >= sizeof a)
        return false;
    memcpy(a, text, n);
    a[n] = '\0';
    return cli_parse_number(a, lo) && cli_parse_number(colon + 1, hi) && *lo <= *hi;
}

static bool parse_pair(const char *text, double *a, double *b)
{
    const char *comma = strchr(text, ',');
    if (!comma)
        return false;
    char first[64];
    size_t n = (size_t)(comma - text);
    if (n == 0 || n >= sizeof first)
        return false;
    memcpy(first, text, n);
    first[n] = '\0';
    return cli_parse_number(first, a) && cli_parse_number(comma + 1, b) && *a > 0 && *b > 0;
}

/* FILE without a SigMF suffix, for FILE.truth.jsonl / FILE.keys. */
static char *base_name(const char *path)
{
    size_t n = strlen(path);
    const char *sfx[] = {".sigmf-meta", ".sigmf-data"};
    for (size_t i = 0; i < 2; i++) {
        size_t k = strlen(sfx[i]);
        if (n > k && strcasecmp(path + n - k, sfx[i]) == 0)
            n -= k;
    }
    char *b = malloc(n + 1);
    if (b) {
        memcpy(b, path, n);
        b[n] = '\0';
    }
    return b;
}

static char *with_suffix(const char *base, const char *suffix)
{
    size_t n = strlen(base) + strlen(suffix) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s", base, suffix);
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int write_text_file(const char *path, synth_t *s, bool keys)
{
    /* Device keys are secrets: only the owner may read them (sigfoxd warns otherwise). */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, keys ? 0600 : 0644);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (fd >= 0 && !f)
        close(fd);
    if (!f) {
        fprintf(stderr, "sigfox-synth: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc;
    if (keys) {
        fprintf(f, "# sigfox-synth device keys: EPID KEY (AES-128, hex)\n");
        rc = keystore_write(synth_keys(s), f);
    } else {
        rc = synth_truth_write(s, f);
    }
    if (fclose(f) != 0)
        rc = -1;
    if (rc < 0) {
        fprintf(stderr, "sigfox-synth: write error on %s\n", path);
        return -1;
    }
    return 0;
}

/* Largest error a format's rounding may cause, and its representable range (iqfile.h
 * scaling), per component. */
static void format_limits(iq_format_t f, double *tol, double *lo, double *hi)
{
    *lo = -1.0;
    *hi = 1.0;
    *tol = 1e-6;
    switch (f) {
    case IQ_FORMAT_CU8:
        *tol += 0.5 / 127.5;
        break;
    case IQ_FORMAT_CS8:
        *tol += 0.5 / 128.0;
        *hi = 127.0 / 128.0;
        break;
    case IQ_FORMAT_CS16:
    case IQ_FORMAT_WAV16:
        *tol += 0.5 / 32768.0;
        *hi = 32767.0 / 32768.0;
        break;
    default: /* float formats store the value itself */
        *lo = -INFINITY;
        *hi = INFINITY;
        break;
    }
}

static double clampd(double x, double lo, double hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* Reads the written capture back through iqfile and compares it with a second rendering
 * of the same scenario. Returns 0 when every sample matches within quantisation. */
static int verify_capture(const char *path, iq_format_t format, synth_t *s)
{
    char err[512];
    iqfile_params_t rp = {.format = format};
    iqfile_t *in = iqfile_open_read(path, &rp, err, sizeof err);
    if (!in) {
        fprintf(stderr, "sigfox-synth: verify: %s\n", err);
        return -1;
    }
    const synth_config_t *eff = synth_config(s);
    int rc = 0;
    if (iqfile_rate_source(in) == IQ_SOURCE_METADATA && iqfile_rate(in) != eff->rate_sps) {
        fprintf(stderr, "sigfox-synth: verify: %s says %.0f S/s, expected %.0f\n", path,
                iqfile_rate(in), eff->rate_sps);
        rc = -1;
    }
    if (iqfile_center_freq_source(in) == IQ_SOURCE_METADATA &&
        fabs(iqfile_center_freq(in) - eff->center_freq_hz) > 0.5) {
        fprintf(stderr, "sigfox-synth: verify: %s says centre %.0f Hz, expected %.0f\n", path,
                iqfile_center_freq(in), eff->center_freq_hz);
        rc = -1;
    }
    double tol, lo, hi;
    format_limits(iqfile_format(in), &tol, &lo, &hi);
    float complex *want = malloc(BLOCK_SAMPLES * sizeof *want);
    float complex *got = malloc(BLOCK_SAMPLES * sizeof *got);
    uint64_t compared = 0, bad = 0;
    double max_err = 0;
    synth_rewind(s);
    long n;
    while (rc == 0 && want && got && (n = synth_render(s, want, BLOCK_SAMPLES)) > 0) {
        ssize_t r = iqfile_read(in, got, (size_t)n);
        if (r != n) {
            fprintf(stderr, "sigfox-synth: verify: %s: %s after %llu samples\n", path,
                    r < 0 ? iqfile_error(in) : "file ends early",
                    (unsigned long long)(compared + (r > 0 ? (uint64_t)r : 0)));
            rc = -1;
            break;
        }
        for (long i = 0; i < n; i++) {
            double ei = fabs(crealf(got[i]) - clampd(crealf(want[i]), lo, hi));
            double eq = fabs(cimagf(got[i]) - clampd(cimagf(want[i]), lo, hi));
            double e = ei > eq ? ei : eq;
            if (e > max_err)
                max_err = e;
            bad += e > tol;
        }
        compared += (uint64_t)n;
    }
    if (!want || !got) {
        fprintf(stderr, "sigfox-synth: out of memory\n");
        rc = -1;
    }
    float complex extra;
    if (rc == 0 && iqfile_read(in, &extra, 1) != 0) {
        fprintf(stderr, "sigfox-synth: verify: %s holds more samples than synthesized\n", path);
        rc = -1;
    }
    if (rc == 0 && bad) {
        fprintf(stderr,
                "sigfox-synth: verify: %llu of %llu samples differ by more than %.3g "
                "(max %.3g)\n",
                (unsigned long long)bad, (unsigned long long)compared, tol, max_err);
        rc = -1;
    }
    if (rc == 0)
        fprintf(stderr,
                "Verified, file: %s, format: %s, samples: %llu, max_error: %.3g, "
                "tolerance: %.3g\n",
                path, iq_format_name(iqfile_format(in)), (unsigned long long)compared, max_err,
                tol);
    free(want);
    free(got);
    iqfile_close(in);
    return rc;
}

/* What the command line asks for. */
typedef struct {
    synth_config_t cfg;
    const char *out_path, *truth_path, *keys_path;
    iq_format_t format, sigmf_type;
    bool progress, verify;
    double start_unix_s;
} synth_args_t;

#define ARGS_OK (-1) /* parse_args: go on (any other value is the exit status) */

/* Reads the options into a and checks them together. ARGS_OK, or the exit status (0
 * after --help/--version, EXIT_USAGE with the message printed). */
static int parse_args(int argc, char **argv, synth_args_t *a)
{
    synth_config_default(&a->cfg);
    a->out_path = a->truth_path = a->keys_path = NULL;
    a->format = IQ_FORMAT_UNKNOWN;
    a->sigmf_type = IQ_FORMAT_CF32;
    a->progress = a->verify = false;
    a->start_unix_s = 0;
    int c;
    long iv;
    while ((c = getopt_long(argc, argv, "o:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            a->out_path = optarg;
            break;
        case OPT_FORMAT:
            a->format = iq_format_from_name(optarg);
            if (a->format == IQ_FORMAT_UNKNOWN)
                return usage_error("unknown --format '%s' (cu8, cs8, cs16, cf32, wav, wav16, "
                                   "wavf32, sigmf)",
                                   optarg);
            break;
        case OPT_SIGMF_TYPE:
            a->sigmf_type = iq_format_from_name(optarg);
            if (a->sigmf_type != IQ_FORMAT_CU8 && a->sigmf_type != IQ_FORMAT_CS8 &&
                a->sigmf_type != IQ_FORMAT_CS16 && a->sigmf_type != IQ_FORMAT_CF32)
                return usage_error("bad --sigmf-datatype '%s' (cu8, cs8, cs16, cf32)", optarg);
            break;
        case OPT_START_UTC:
            if (iq_parse_datetime(optarg, &a->start_unix_s) != 0)
                return usage_error("bad --start-utc '%s': ISO-8601 UTC such as "
                                   "2026-12-05T10:00:00Z",
                                   optarg);
            break;
        case OPT_TRUTH:
            a->truth_path = optarg;
            break;
        case OPT_KEYS:
            a->keys_path = optarg;
            break;
        case OPT_PROGRESS:
            a->progress = true;
            break;
        case OPT_VERIFY:
            a->verify = true;
            break;
        case OPT_RATE:
            if (!cli_parse_number(optarg, &a->cfg.rate_sps) || a->cfg.rate_sps <= 0)
                return usage_error("bad --rate '%s': a positive sample rate such as 1024k", optarg);
            break;
        case OPT_CENTER:
            if (!cli_parse_number(optarg, &a->cfg.center_freq_hz) || a->cfg.center_freq_hz <= 0)
                return usage_error("bad --center-freq '%s': a frequency such as 868.13M", optarg);
            break;
        case OPT_RC: {
            const rc_params_t *rc = rc_lookup(optarg);
            if (!rc)
                return usage_error("bad --rc '%s': RC1..RC7", optarg);
            a->cfg.rc = rc->number;
            break;
        }
        case OPT_DURATION:
            if (!cli_parse_number(optarg, &a->cfg.duration_s) || a->cfg.duration_s <= 0)
                return usage_error("bad --duration '%s': seconds > 0", optarg);
            break;
        case OPT_SEED:
            if (!parse_seed(optarg, &a->cfg.seed))
                return usage_error("bad --seed '%s': a non-negative integer", optarg);
            break;
        case OPT_ST_NOISE_SEED:
            if (!parse_seed(optarg, &a->cfg.station_noise_seed) || a->cfg.station_noise_seed == 0)
                return usage_error("bad --station-noise-seed '%s': a positive integer", optarg);
            break;
        case OPT_ST_EBN0:
            if (!cli_parse_number(optarg, &a->cfg.station_ebn0_db) ||
                !(fabs(a->cfg.station_ebn0_db) <= 60))
                return usage_error("bad --station-ebn0 '%s': dB in -60..60", optarg);
            break;
        case OPT_ST_FREQ:
            if (!cli_parse_number(optarg, &a->cfg.station_freq_hz) ||
                !(fabs(a->cfg.station_freq_hz) <= 100e3))
                return usage_error("bad --station-freq '%s': Hz in -100k..100k", optarg);
            break;
        case OPT_ST_DELAY:
            if (!cli_parse_number(optarg, &a->cfg.station_delay_s) ||
                !(a->cfg.station_delay_s >= 0 && a->cfg.station_delay_s <= 600))
                return usage_error("bad --station-delay '%s': seconds in 0..600", optarg);
            break;
        case OPT_DEVICES:
            if (!cli_parse_long(optarg, 10, 0, 100000, &iv))
                return usage_error("bad --devices '%s': 0..100000", optarg);
            a->cfg.devices = (int)iv;
            break;
        case OPT_INTERVAL:
            if (!cli_parse_number(optarg, &a->cfg.msg_interval_s) || a->cfg.msg_interval_s <= 0)
                return usage_error("bad --interval '%s': seconds > 0", optarg);
            break;
        case OPT_BAUD:
            if (strcmp(optarg, "100") == 0)
                a->cfg.baud = 100;
            else if (strcmp(optarg, "600") == 0)
                a->cfg.baud = 600;
            else if (strcasecmp(optarg, "mixed") == 0)
                a->cfg.baud = SYNTH_BAUD_MIXED;
            else
                return usage_error("bad --baud '%s': 100, 600 or mixed", optarg);
            break;
        case OPT_EBN0:
            if (!parse_range(optarg, &a->cfg.ebn0_min_db, &a->cfg.ebn0_max_db))
                return usage_error("bad --ebn0 '%s': DB or LO:HI with LO <= HI", optarg);
            break;
        case OPT_SINGLE:
        case OPT_BF:
        case OPT_ONE_BIT:
        case OPT_KEEPALIVE:
        case OPT_DLCONF: {
            double p;
            if (!parse_prob(optarg, &p))
                return usage_error("bad probability '%s' for --%s: 0..1", optarg,
                                   c == OPT_SINGLE      ? "single-frame"
                                   : c == OPT_BF        ? "bf"
                                   : c == OPT_ONE_BIT   ? "one-bit"
                                   : c == OPT_KEEPALIVE ? "keepalive"
                                                        : "dl-confirmation");
            if (c == OPT_SINGLE)
                a->cfg.p_single_frame = p;
            else if (c == OPT_BF)
                a->cfg.p_bf = p;
            else if (c == OPT_ONE_BIT)
                a->cfg.p_one_bit = p;
            else if (c == OPT_KEEPALIVE)
                a->cfg.p_keepalive = p;
            else
                a->cfg.p_dl_confirmation = p;
            break;
        }
        case OPT_PAYLOAD_CLASSES:
            a->cfg.payload_classes = true;
            break;
        case OPT_MAX_PPM:
            if (!cli_parse_number(optarg, &a->cfg.freq_error_ppm_max))
                return usage_error("bad --max-ppm '%s'", optarg);
            break;
        case OPT_MAX_DRIFT:
            if (!parse_pair(optarg, &a->cfg.drift_max_hz_s_br100, &a->cfg.drift_max_hz_s_br600))
                return usage_error("bad --max-drift '%s': BR100,BR600 in Hz/s, e.g. 20,50", optarg);
            break;
        case OPT_MAX_BAUD_ERR:
            if (!cli_parse_number(optarg, &a->cfg.baud_error_ppm_max))
                return usage_error("bad --max-baud-error '%s'", optarg);
            break;
        case OPT_NOISE_DBFS:
            if (!cli_parse_number(optarg, &a->cfg.noise_dbfs))
                return usage_error("bad --noise-dbfs '%s'", optarg);
            break;
        case OPT_NO_NOISE:
            a->cfg.noise = false;
            break;
        case OPT_CW:
            if (!cli_parse_long(optarg, 10, 0, 1000, &iv))
                return usage_error("bad --cw '%s': 0..1000", optarg);
            a->cfg.cw_tones = (int)iv;
            break;
        case OPT_FSK:
            if (!cli_parse_long(optarg, 10, 0, 100, &iv))
                return usage_error("bad --fsk '%s': 0..100", optarg);
            a->cfg.fsk_interferers = (int)iv;
            break;
        case OPT_INTF_DB:
            if (!cli_parse_number(optarg, &a->cfg.interferer_db))
                return usage_error("bad --interferer-db '%s'", optarg);
            break;
        case OPT_COLLISIONS:
            if (!cli_parse_long(optarg, 10, 0, 100000, &iv))
                return usage_error("bad --collisions '%s': 0..100000", optarg);
            a->cfg.collisions = (int)iv;
            break;
        case OPT_BPROC:
            a->cfg.bproc_confirm = true;
            break;
        case OPT_DL_OFFSET:
            if (!cli_parse_number(optarg, &a->cfg.dl_offset_s) || !(a->cfg.dl_offset_s > 0))
                return usage_error("bad --dl-offset '%s': seconds > 0 (within T_RX)", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case OPT_VERSION:
            printf("sigfox-synth %s\n", SIGFOXD_VERSION);
            return 0;
        default:
            fprintf(stderr, "Try 'sigfox-synth --help'.\n");
            return EXIT_USAGE;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (a->cfg.dl_offset_s > 0 && !a->cfg.bproc_confirm)
        return usage_error("--dl-offset applies to --bproc-confirm only");
    if (!a->out_path)
        return usage_error("no output file: give -o FILE");
    if (a->format == IQ_FORMAT_UNKNOWN && strcmp(a->out_path, "-") != 0) {
        a->format = iq_format_from_path(a->out_path);
        if (a->format == IQ_FORMAT_UNKNOWN)
            return usage_error("cannot tell the format of '%s' from its extension: use "
                               "--format",
                               a->out_path);
    }
    if (a->format == IQ_FORMAT_UNKNOWN)
        return usage_error("writing to stdout needs --format");
    if (a->verify && strcmp(a->out_path, "-") == 0)
        return usage_error("--verify needs a file, not stdout");
    if (a->start_unix_s > 0 && a->format != IQ_FORMAT_SIGMF)
        return usage_error("--start-utc needs SigMF output (only SigMF metadata carries it)");
    return ARGS_OK;
}

int main(int argc, char **argv)
{
    synth_args_t a;
    int rc = parse_args(argc, argv, &a);
    if (rc != ARGS_OK)
        return rc;
    const synth_config_t cfg = a.cfg;
    const char *out_path = a.out_path, *truth_path = a.truth_path, *keys_path = a.keys_path;
    const iq_format_t format = a.format, sigmf_type = a.sigmf_type;
    const bool progress = a.progress, verify = a.verify;
    const double start_unix_s = a.start_unix_s;

    char err[512];
    synth_t *s = synth_create(&cfg, err, sizeof err);
    if (!s)
        return usage_error("%s", err);
    const synth_config_t *eff = synth_config(s);

    int status = EXIT_FAIL;
    char *base = NULL, *tp = NULL, *kp = NULL;
    iqfile_t *out = NULL;
    float complex *buf = NULL;
    bool to_stdout = strcmp(out_path, "-") == 0;
    if (!to_stdout) {
        base = base_name(out_path);
        if (!base)
            goto done;
        if (!truth_path)
            truth_path = tp = with_suffix(base, ".truth.jsonl");
        if (!keys_path)
            keys_path = kp = with_suffix(base, ".keys");
        if (!truth_path || !keys_path)
            goto done;
    }

    char desc[384];
    int dn = snprintf(desc, sizeof desc, "sigfox-synth %s: RC%d, %d devices, seed %llu",
                      SIGFOXD_VERSION, eff->rc, eff->devices, (unsigned long long)eff->seed);
    if (dn > 0 && (size_t)dn < sizeof desc &&
        (eff->station_ebn0_db != 0 || eff->station_freq_hz != 0 || eff->station_delay_s != 0 ||
         eff->station_noise_seed != 0))
        snprintf(desc + dn, sizeof desc - (size_t)dn,
                 ", station view: Eb/N0 %+g dB, carrier %+g Hz, delay %g s, noise seed %llu",
                 eff->station_ebn0_db, eff->station_freq_hz, eff->station_delay_s,
                 (unsigned long long)(eff->station_noise_seed ? eff->station_noise_seed
                                                              : eff->seed));
    iqfile_params_t ip = {.format = format,
                          .sample_format = sigmf_type,
                          .rate_sps = eff->rate_sps,
                          .center_freq_hz = eff->center_freq_hz,
                          .description = desc,
                          .start_unix_s = start_unix_s};
    out = iqfile_open_write(out_path, &ip, err, sizeof err);
    if (!out) {
        fprintf(stderr, "sigfox-synth: %s\n", err);
        goto done;
    }
    buf = malloc(BLOCK_SAMPLES * sizeof *buf);
    if (!buf) {
        fprintf(stderr, "sigfox-synth: out of memory\n");
        goto done;
    }
    size_t nbursts;
    const synth_burst_t *bursts = synth_bursts(s, &nbursts);
    /* Integer formats clip at full scale: warn when a burst alone (plus 4 σ of noise per
     * component) gets there, so nobody benchmarks a clipped capture unknowingly. */
    double sigma = eff->noise ? sqrt(pow(10.0, eff->noise_dbfs / 10.0) / 2.0) : 0.0;
    size_t clipping = 0;
    for (size_t i = 0; i < nbursts; i++)
        clipping += bursts[i].mod.amplitude + 4.0 * sigma > 1.0;
    if (clipping)
        fprintf(stderr,
                "Warning: %zu bursts reach full scale and will clip in integer formats; "
                "lower --ebn0 or --noise-dbfs\n",
                clipping);
    uint64_t total = synth_total_samples(s);
    double t0 = now_s(), last_report = t0;
    long got;
    while ((got = synth_render(s, buf, BLOCK_SAMPLES)) > 0) {
        if (iqfile_write(out, buf, (size_t)got) < 0) {
            fprintf(stderr, "sigfox-synth: %s\n", iqfile_error(out));
            goto done;
        }
        double t = now_s();
        if (progress && t - last_report >= 1.0) {
            double done_s = (double)synth_position(s) / eff->rate_sps;
            fprintf(stderr,
                    "Progress, done: %.0f%%, capture_s: %.1f of %.1f, speed: %.1fx real time\n",
                    100.0 * (double)synth_position(s) / (double)total, done_s,
                    (double)total / eff->rate_sps,
                    done_s / (t - t0));
            last_report = t;
        }
    }
    if (got < 0) {
        fprintf(stderr, "sigfox-synth: rendering failed: %s\n", synth_strerror((int)got));
        goto done;
    }
    int crc = iqfile_close(out);
    out = NULL;
    if (crc < 0) {
        fprintf(stderr, "sigfox-synth: closing %s failed\n", out_path);
        goto done;
    }
    if (verify && verify_capture(out_path, format, s) < 0)
        goto done;
    if (truth_path && write_text_file(truth_path, s, false) < 0)
        goto done;
    if (keys_path && write_text_file(keys_path, s, true) < 0)
        goto done;
    double el = now_s() - t0;
    fprintf(stderr,
            "Capture written, file: %s, format: %s, rate_sps: %.0f, center_freq_hz: %.0f, "
            "samples: %llu, bursts: %zu, messages: %zu, seconds: %.2f, real_time_factor: %.1f\n",
            out_path, iq_format_name(format), eff->rate_sps, eff->center_freq_hz,
            (unsigned long long)total, nbursts, synth_message_count(s), el,
            el > 0 ? (double)total / eff->rate_sps / el : 0.0);
    if (truth_path)
        fprintf(stderr, "Truth written, file: %s\n", truth_path);
    if (keys_path)
        fprintf(stderr, "Keys written, file: %s\n", keys_path);
    status = 0;
done:
    if (out)
        iqfile_close(out);
    free(buf);
    free(base);
    free(tp);
    free(kp);
    synth_destroy(s);
    return status;
}
