/* sigfox-bench: receiver benchmarks with deterministic (seeded) inputs.
 * Licence: MIT.
 *
 *   sigfox-bench sensitivity   frame error rate vs Eb/N0 (demodulator +
 * decoder, and three-replica messages through the assembler), with the ideal
 * coherent / differential D-BPSK references and a PNG
 *
 * Bursts come from the device model (dbpskmod.h) with random carrier, drift,
 * phase, symbol-rate error, lead/tail symbols, ramps and detector timing error,
 * plus AWGN at the requested Eb/N0 (Eb = mean burst power over the data symbols
 * × bit time, N0 = noise PSD, as synth.h defines it). The receiver knows
 * nothing in advance but the detector's rough start (±2 symbols, searched over
 * ±3) and a carrier within ±baud/2.
 *
 * Exit status: 0 ok, 1 runtime failure, 64 usage.
 */
#include <complex.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liquid/liquid.h>

#include "assembler.h"
#include "cliutil.h"
#include "dbpskmod.h"
#include "demod.h"
#include "keys.h"
#include "prng.h"
#include "rc.h"
#include "rx.h"
#include "simpayload.h"
#include "synth.h"
#include "uldecode.h"
#include "ulframe.h"
#include "uljoint.h"

#ifndef SIGFOXD_VERSION
#define SIGFOXD_VERSION "unknown"
#endif

#define EXIT_FAIL 1
#define PROG "sigfox-bench"
#define MAX_POINTS 64
#define MAX_SNIPPET (320 * DEMOD_SPS)

static const char usage_text[] =
    "Usage: sigfox-bench sensitivity|throughput|capacity|false-frames "
    "[options]\n"
    "Receiver benchmarks on seeded synthetic signals; CPU time of this process "
    "on one core\n"
    "(CLOCK_PROCESS_CPUTIME_ID), the machine and the command line printed "
    "first.\n"
    "\n"
    "sensitivity: frame error rate versus Eb/N0 of single frames (demodulator "
    "+ decoder)\n"
    "and message loss of three-replica messages with soft combining "
    "(assembler), for each\n"
    "baud rate and container size, next to the ideal coherent and differential "
    "D-BPSK\n"
    "curves; then the measured figures against the targets.\n"
    "  --baud LIST            100, 600 or 100,600 (default 100,600)\n"
    "  --container LIST       container bytes among 8,9,12,16,20 (default "
    "12,20)\n"
    "  --ebn0 LO:HI:STEP      Eb/N0 points, dB (default 0:12:1)\n"
    "  --frames N             most frames (messages) per point (default 2000)\n"
    "  --errors N             stop a point after N errors (default 100)\n"
    "  --seed N               random seed (default 1): same seed, same "
    "figures\n"
    "  --single-only          skip the three-replica messages\n"
    "  --combined-only        skip the single frames\n"
    "  --reversal-tx W        amplitude-dip width of the transmitter, symbols "
    "(0, 1]\n"
    "                         (default 1, the synthesizer's; the receiver "
    "assumes 1)\n"
    "  --start-window S       direct runs: the demodulator searches the start "
    "within +-S\n"
    "                         symbols (default 3; the receiver searches +-40 for "
    "weak BR100\n"
    "                         tracks), with as much more noise before the burst\n"
    "  --plot FILE.png        draw the curves with gnuplot\n"
    "  --reference            message loss of three replicas at symbol level (known\n"
    "                         positions and timing, no demodulator) for four decoders:\n"
    "                         differential-detection LLRs + Viterbi, coherent LLRs\n"
    "                         differentially decoded + Viterbi, the joint coherent\n"
    "                         trellis (uljoint.h) with perfect phase, and with phase\n"
    "                         and residual carrier estimated (the issue 11 table)\n"
    "  --residual-hz HZ       with --reference: residual carrier uniform in +-HZ for\n"
    "                         the estimated-phase curve (default 0.3)\n"
    "  --joint-coherent       three-replica messages the assembler loses are decoded\n"
    "                         jointly from the demodulator's symbols (uljoint.h: one\n"
    "                         trellis over code and differential states, phase and\n"
    "                         residual carrier estimated, CRC + UL-AUTH decide)\n"
    "  --pipeline             run the bursts through the whole receiver (rx.h: "
    "front end,\n"
    "                         channelizer, detector, extractor, demodulator, "
    "decoder,\n"
    "                         assembler) at --rate, 8 on air at a time, every "
    "replica at a\n"
    "                         carrier uniformly random over the band; the bauds "
    "listed in one\n"
    "                         capture, --frames bursts (messages) of each per point\n"
    "  --rate R               with --pipeline: input rate (default 250k; 2.4M runs the\n"
    "                         front end's decimation too)\n"
    "  --payloads P           with --pipeline: classes (default: random bytes, all "
    "0x00, all\n"
    "                         0xFF, 0x55/0xAA, a record with one byte counting, 0-12 "
    "bytes,\n"
    "                         1-bit and control messages; loss printed per class) "
    "or random\n"
    "                         (random bytes in --container containers)\n"
    "  --fill BYTE            every payload byte BYTE (0-255, 0x.. accepted) instead of\n"
    "                         random bytes, filling the container: direct runs,\n"
    "                         --reference, --pipeline --payloads random\n"
    "  --equal-amplitude      direct runs: Eb/N0 refers to the device's amplitude (mean\n"
    "                         power of random bits), not to each burst's own data power:\n"
    "                         payloads compared as one device at one distance sends them\n"
    "  --threshold-db DB      with --pipeline: the detector's threshold (default: the\n"
    "                         receiver's)\n"
    "  --chase-trials N       test patterns of the chase decoder per CRC-failed frame\n"
    "                         (uldecode_chase; default 256), 0: off\n"
    "  --verbose              with --pipeline: every lost burst that no other one "
    "collided\n"
    "                         with, and the nearest carriers around it; direct "
    "three-replica\n"
    "                         runs: each replica of a lost message (carrier, drift "
    "and start\n"
    "                         errors of the demodulator); --pipeline three-replica "
    "runs: each\n"
    "                         replica of a lost message (decoded; why not, with the "
    "detector's\n"
    "                         and the demodulator's errors; or no track)\n"
    "\n"
    "throughput: samples per second through the whole receiver on one core "
    "versus real\n"
    "time, with K bursts on air at any moment (back-to-back frames at random "
    "carriers,\n"
    "Eb/N0 15 dB); median of the repetitions; peak memory.\n"
    "  --rate LIST            input rates, S/s (default 250k,2.4M)\n"
    "  --bursts LIST          bursts on air at once (default 0,20,100)\n"
    "  --baud B               100, 600 or mixed (default 100)\n"
    "  --seconds S            capture length (default 20)\n"
    "  --repeat N             repetitions, the median is reported (default 3)\n"
    "  --seed N\n"
    "\n"
    "capacity: fraction of frames decoded when N bursts start within 0.2 s of "
    "each other\n"
    "at random carriers across the 192 kHz band (Eb/N0 15 dB), and false "
    "frames.\n"
    "  --bursts LIST          simultaneous bursts (default 10,50,100,200)\n"
    "  --rounds N             rounds per value (default 4)\n"
    "  --rate R               input rate (default 250k)\n"
    "  --baud B               100, 600 or mixed (default mixed)\n"
    "  --payloads P           classes (default: random bytes, all 0x00, all 0xFF,\n"
    "                         0x55/0xAA, a record with one byte counting, 0-12 bytes,\n"
    "                         1-bit and control messages, loss printed per class) or\n"
    "                         random (random bytes in 8-20 byte containers)\n"
    "  --ebn0 DB              per burst (default 15)\n"
    "  --min-spacing HZ       keep the carriers of a round this far apart "
    "(default 0:\n"
    "                         uniformly random, collisions included)\n"
    "  --no-ideal             skip the ideal-knowledge bound (each burst "
    "demodulated at its\n"
    "                         true carrier and time from the same capture) "
    "and the losses\n"
    "                         by distance to the nearest burst on air\n"
    "  --seed N\n"
    "\n"
    "false-frames: noise and interferers only (no device at all) through the "
    "whole\n"
    "receiver: every CRC-valid frame or message is false.\n"
    "  --seconds S            capture length (default 3600)\n"
    "  --rate R               input rate (default 250k)\n"
    "  --cw N                 CW interferers, each on for a random stretch "
    "(default 3)\n"
    "  --fsk N                2-GFSK packet interferers (default 2)\n"
    "  --threshold-db DB      detector threshold (default: the receiver's); a "
    "low one\n"
    "                         sends many noise detections to the demodulator "
    "and decoder\n"
    "  --keys N               the receiver's key store holds N random devices (default\n"
    "                         1000: every keyed path runs on the noise); 0: no key\n"
    "                         store at all\n"
    "  --seed N\n"
    "  -h, --help             this text\n";

/* ---- common ---- */

/* A usage error (cliutil.h's message) ends the program. */
static void usage_error(const char *fmt, const char *arg)
{
    exit(cli_usage_error(PROG, fmt, arg));
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int g_argc;
static char **g_argv;

/* Names the machine: kernel and CPU model (benchmarks are meaningless without
 * it), and echoes the command line. */
static void print_machine(void)
{
    int argc = g_argc;
    char **argv = g_argv;
    printf("# sigfox-bench %s:", SIGFOXD_VERSION);
    for (int i = 0; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
    struct utsname u;
    if (uname(&u) == 0)
        printf("# machine: %s %s %s %s\n", u.sysname, u.release, u.machine, u.nodename);
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        int cpus = 0;
        char model[256] = "unknown";
        while (fgets(line, sizeof line, f)) {
            if (!strncmp(line, "model name", 10)) {
                cpus++;
                const char *c = strchr(line, ':');
                if (c && cpus == 1) {
                    snprintf(model, sizeof model, "%s", c + 2);
                    model[strcspn(model, "\n")] = 0;
                }
            }
        }
        fclose(f);
        printf("# cpu: %s (%d logical CPUs online: %ld)\n", model, cpus,
               sysconf(_SC_NPROCESSORS_ONLN));
    }
}

/* Whole-string numbers within [lo, hi], else a usage error naming the option.
 */
static long parse_long(const char *text, long lo, long hi, const char *what)
{
    long v;
    if (!cli_parse_long(text, 0, lo, hi, &v))
        exit(cli_usage_error(PROG, "%s: '%s' is not an integer in %ld..%ld", what, text, lo, hi));
    return v;
}

static double parse_double(const char *text, double lo, double hi, const char *what)
{
    double v;
    if (!cli_parse_number(text, &v) || !(v >= lo && v <= hi))
        exit(cli_usage_error(PROG, "%s: '%s' is not a number in %g..%g", what, text, lo, hi));
    return v;
}

static uint64_t parse_seed(const char *text)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 0);
    if (end == text || *end || errno || text[0] == '-')
        usage_error("--seed: '%s' is not a non-negative integer", text);
    return (uint64_t)v;
}

/* Parses "a,b,c" into integers; returns the count. */
static int parse_int_list(const char *text, int *out, int cap, const char *what)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || n >= cap)
            usage_error("bad list for %s", what);
        out[n++] = (int)v;
        p = end;
        if (*p == ',')
            p++;
        else if (*p)
            usage_error("bad list for %s", what);
    }
    if (n == 0)
        usage_error("empty list for %s", what);
    return n;
}

/* ---- reference curves ---- */

static double qfunc(double x)
{
    return 0.5 * erfc(x / M_SQRT2);
}

/* Ideal coherent detection of the differentially coded symbols (known carrier,
 * phase and timing, rectangular-equivalent matched filter): a bit is wrong when
 * exactly one of its two symbols is, so a frame of n bits survives when none of
 * its n + 1 symbols is wrong (ignoring the vanishing all-wrong case). */
static double fer_coherent(double ebn0_db, int nbits)
{
    double p = qfunc(sqrt(2.0 * pow(10.0, ebn0_db / 10.0)));
    return -expm1((nbits + 1) * log1p(-p));
}

/* Ideal differential detection (DPSK, P_b = exp(-Eb/N0)/2), bit errors taken as
 * independent. */
static double fer_differential(double ebn0_db, int nbits)
{
    double p = 0.5 * exp(-pow(10.0, ebn0_db / 10.0));
    return -expm1(nbits * log1p(-p));
}

/* ---- one burst through demodulator and decoder ---- */

/* sensitivity --chase-trials: the chase decoder's budget (0: off), direct and --pipeline. */
static int g_chase_trials = ULDECODE_CHASE_DEFAULT_TRIALS;
/* sensitivity --fill: every payload byte of random_message(), -1: random bytes. */
static int g_fill = -1;
/* sensitivity --equal-amplitude: direct runs refer Eb/N0 to the device's amplitude
 * (the mean power of random bits) instead of this burst's own data power. */
static bool g_equal_amplitude;

typedef struct {
    demod_t *demod[2]; /* 100, 600 baud */
    float complex *x;
    double reversal_tx;
    double start_window; /* --start-window, symbols */
    double cpu_demod_s;
    long bursts;
    bool joint_coherent; /* --joint-coherent: messages the assembler loses go through
                            uljoint.h on the demodulator's symbols */
    double cpu_joint_s;
    long joint_runs;
    keystore_t *keys; /* every message's key, for the chase decoder (rx.c does the same) */
    long chased;      /* frames the chase decoder corrected */
} bench_rx_t;

typedef struct {
    bool demod_ok;
    uldecode_result_t dec;
    demod_result_t res;
    double true_freq_hz, true_drift_hz_s, true_start_sample; /* what was sent */
    int true_rank, ncarriers;
    float complex sym[MAX_SNIPPET / DEMOD_SPS]; /* demod_symbols() */
    size_t nsym, first;
} burst_outcome_t;

static void random_message(prng_t *r, size_t container_len, ul_message_t *m, uint8_t key[16])
{
    memset(m, 0, sizeof *m);
    m->ep_id = (uint32_t)(prng_uniform(r) * 4294967296.0);
    m->mc = (uint16_t)(prng_uniform(r) * 4096);
    m->payload_len = (size_t)ul_max_payload_len(container_len);
    for (size_t i = 0; i < m->payload_len; i++)
        m->payload[i] = (uint8_t)(prng_uniform(r) * 256);
    if (g_fill >= 0) /* after the draws: the same devices, keys and counters as without */
        memset(m->payload, g_fill, m->payload_len);
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)(prng_uniform(r) * 256);
}

/* A message as a real device sends it: payload class uniform over simpayload.h's (random
 * bytes, all 0x00, all 0xFF, 0x55/0xAA, a record with one byte counting, 1-bit, control),
 * sized classes 0-12 bytes uniformly, BF = 1 one time in five. Returns the class. */
static int mix_message(prng_t *r, ul_message_t *m, uint8_t key[16])
{
    memset(m, 0, sizeof *m);
    m->ep_id = (uint32_t)(prng_uniform(r) * 4294967296.0);
    m->mc = (uint16_t)(prng_uniform(r) * 4096);
    m->bf = prng_uniform(r) < 0.2;
    int cls = (int)(prng_uniform(r) * SIM_PAYLOAD_CLASSES) % SIM_PAYLOAD_CLASSES;
    size_t len = (size_t)(prng_uniform(r) * (UL_MAX_PAYLOAD_BYTES + 1)) % (UL_MAX_PAYLOAD_BYTES + 1);
    uint64_t draw = prng_next(r);
    sim_payload_fill(m, cls, len, draw);
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)(prng_uniform(r) * 256);
    return cls;
}

/* Renders rank `rank` of m with random impairments at ebn0_db, demodulates,
 * decodes. */
static int run_burst(bench_rx_t *b, prng_t *r, int baud, const ul_message_t *m,
                     const uint8_t key[16], int rank, double ebn0_db, burst_outcome_t *out)
{
    uint8_t frame[UL_MAX_FRAME_BYTES];
    int len = ul_frame_encode(m, key, rank, frame, sizeof frame);
    if (len < 0)
        return len;
    size_t nbits = (size_t)len * 8;
    dbpsk_burst_params_t p;
    memset(&p, 0, sizeof p);
    p.rate_sps = DEMOD_SPS * baud;
    p.baud = baud;
    p.baud_error_ppm = (2 * prng_uniform(r) - 1) * 1000;                 /* Table 2-3 */
    p.freq_hz = (prng_uniform(r) - 0.5) * baud;                          /* detector: ±baud/2 */
    p.drift_hz_s = (2 * prng_uniform(r) - 1) * (baud == 100 ? 30 : 100); /* Table 2-2 peak */
    p.phase_rad = prng_uniform(r) * 2 * M_PI;
    p.amplitude = 0.25;
    p.lead_symbols = (int)(prng_uniform(r) * 3);
    p.tail_symbols = (int)(prng_uniform(r) * 3);
    double ramp_max = 2.0 - (p.lead_symbols > p.tail_symbols ? p.lead_symbols : p.tail_symbols);
    p.ramp_symbols = prng_uniform(r) * ramp_max;
    p.reversal_symbols = b->reversal_tx;
    size_t blen = dbpsk_burst_length(&p, nbits);
    double pre = (6.0 + 2.0 * prng_uniform(r) + (b->start_window - 3.0)) * DEMOD_SPS;
    size_t n = (size_t)pre + blen + 4 * DEMOD_SPS;
    if (blen == 0 || n > MAX_SNIPPET)
        return -1;
    memset(b->x, 0, n * sizeof *b->x);
    if (dbpsk_burst_render(&p, frame, nbits, pre, 0, b->x, n) < 0)
        return -1;
    /* Eb/N0 of this burst's data, or (--equal-amplitude) of its amplitude: a payload with
       few reversals has more mean power than one with many at the same amplitude */
    double power =
        g_equal_amplitude ? dbpsk_burst_mean_power(&p) : dbpsk_burst_data_power(&p, frame, nbits);
    double sigma = sqrt(power * DEMOD_SPS / pow(10.0, ebn0_db / 10.0) / 2.0);
    for (size_t i = 0; i < n; i++) {
        double re, im;
        prng_normal2(r, &re, &im);
        b->x[i] += (float)(sigma * re) + I * (float)(sigma * im);
    }
    double start = pre + dbpsk_burst_data_offset(&p);
    demod_hint_t h = {.start_sample = start + (2 * prng_uniform(r) - 1) * 2 * DEMOD_SPS,
                      .start_uncertainty = b->start_window * DEMOD_SPS};
    float soft[MAX_SNIPPET / DEMOD_SPS];
    double t0 = cpu_seconds();
    int nout = demod_process(b->demod[baud == 600], b->x, n, &h, soft, sizeof soft / sizeof soft[0],
                             &out->res);
    memset(&out->dec, 0, sizeof out->dec);
    out->demod_ok = nout > 0;
    if (out->demod_ok) {
        uldecode_frame(soft, (size_t)nout, UL_FT_DEFAULT_MAX_DISTANCE, &out->dec);
        if (out->dec.status == ULDEC_REJECT_CRC && keystore_add(b->keys, m->ep_id, key) == 0 &&
            uldecode_chase(&out->dec, b->keys, g_chase_trials) > 0)
            b->chased++;
    } else
        out->dec.status = ULDEC_REJECT_FT;
    out->nsym = b->joint_coherent ? demod_symbols(b->demod[baud == 600], out->sym,
                                                  sizeof out->sym / sizeof out->sym[0],
                                                  &out->first)
                                  : 0;
    b->cpu_demod_s += cpu_seconds() - t0;
    b->bursts++;
    out->true_freq_hz = p.freq_hz;
    out->true_drift_hz_s = p.drift_hz_s;
    out->true_start_sample = start;
    demod_carrier_t cs[16];
    size_t nc = demod_carriers(b->demod[baud == 600], start, cs, 16);
    out->true_rank = -1;
    out->ncarriers = (int)nc;
    for (size_t i = 0; i < nc; i++)
        if (fabs(cs[i].freq_hz - p.freq_hz) < 0.02 * baud) {
            out->true_rank = (int)i;
            break;
        }
    return 0;
}

static bool frame_matches(const ul_frame_t *f, const ul_message_t *m)
{
    return f->crc_ok && f->msg.ep_id == m->ep_id && f->msg.mc == m->mc &&
           f->msg.payload_len == m->payload_len &&
           !memcmp(f->msg.payload, m->payload, m->payload_len);
}

/* ---- sensitivity ---- */

typedef struct {
    double ebn0_db;
    long frames, errors; /* single frames */
    double ferr2;        /* squared carrier error of decoded frames, Hz² */
    long fcount;
    long msgs, msg_errors; /* three-replica messages */
    long msg_joint;        /* messages recovered only by combining */
    long msg_coherent;     /* of which by the bench's joint coherent decoding of all three
                              (--joint-coherent, after the assembler failed) */
    long asm_coherent;     /* CRC-valid joint coherent results inside the assembler */
    /* --pipeline runs: bursts left out of frames/errors because another one overlapped
       them in time within the sum of the symbol rates in carrier (a collision: a
       capacity matter, sigfox-bench capacity), and how many of those were lost */
    long collided, collided_errors;
    /* per payload class (simpayload.h), --pipeline runs (collided bursts left out) */
    long cls_frames[SIM_PAYLOAD_CLASSES], cls_errors[SIM_PAYLOAD_CLASSES];
    long cls_msgs[SIM_PAYLOAD_CLASSES], cls_msg_errors[SIM_PAYLOAD_CLASSES];
} point_t;

typedef struct {
    int n;
    rx_message_t last;
    bool got;
} msg_sink_t;

static void on_message(const rx_message_t *m, void *user)
{
    msg_sink_t *s = user;
    s->last = *m;
    s->got = true;
    s->n++;
}

static uint64_t point_seed(uint64_t seed, int baud, int clen, int kind, double ebn0)
{
    return seed * 1000003ull + (uint64_t)baud * 7919u + (uint64_t)clen * 104729u +
           (uint64_t)kind * 15485863u + (uint64_t)llround(ebn0 * 100) * 32452843u;
}

static void run_single(bench_rx_t *b, uint64_t seed, int baud, int clen, point_t *pt,
                       long max_frames, long max_errors)
{
    prng_t r;
    prng_seed(&r, point_seed(seed, baud, clen, 1, pt->ebn0_db), 0);
    while (pt->frames < max_frames && pt->errors < max_errors) {
        ul_message_t m;
        uint8_t key[16];
        random_message(&r, (size_t)clen, &m, key);
        burst_outcome_t o;
        if (run_burst(b, &r, baud, &m, key, 1, pt->ebn0_db, &o) < 0) {
            fprintf(stderr, "sigfox-bench: could not render a burst\n");
            exit(EXIT_FAIL);
        }
        pt->frames++;
        if (o.dec.status == ULDEC_OK && frame_matches(&o.dec.frame, &m)) {
            double e = o.res.freq_hz - o.true_freq_hz;
            pt->ferr2 += e * e;
            pt->fcount++;
        } else {
            pt->errors++;
        }
    }
}

/* --joint-coherent, when the assembler (with its own joint coherent fallback over the
 * failed bursts with a readable FT) gave no message: the three replicas (known
 * positions: the bench knows they belong together, FT readable or not) decoded jointly from the demodulator's matched-filter symbols, each aligned on
 * its rank's preamble + FT within ±4 symbols of the demodulator's start (its sync, or the
 * detector hint when it found none), phase and residual carrier estimated (uljoint.h);
 * accepted as the receiver would, on a valid CRC and UL-AUTH with the device's key. */
static bool joint_coherent_recovers(bench_rx_t *b, const burst_outcome_t outs[3], size_t clen,
                                    const uint8_t key[16], const ul_message_t *m)
{
    const float complex *y[3] = {NULL, NULL, NULL};
    int given = 0;
    for (int i = 0; i < 3; i++) {
        const burst_outcome_t *o = &outs[i];
        size_t lo = o->first > 4 ? o->first - 4 : 0;
        long k = ul_joint_align(o->sym, o->nsym, lo, o->first + 4, i + 1, clen, false);
        if (k >= 0) {
            y[i] = o->sym + k;
            given++;
        }
    }
    if (!given)
        return false;
    double t0 = cpu_seconds();
    ul_frame_t f;
    int rc = ul_joint_decode_iq(y, clen, false, NULL, &f, NULL);
    b->cpu_joint_s += cpu_seconds() - t0;
    b->joint_runs++;
    return rc == 0 && ul_auth_verify(f.container, clen, key) == 1 && frame_matches(&f, m);
}

/* --verbose: print what was around every lost burst (sensitivity --pipeline), and what
 * became of each replica of a lost message (three-replica runs, direct or --pipeline). */
static bool g_verbose;

/* One line per replica: the demodulator's outcome and its errors against the truth
 * (carrier at the frame start, drift, start of the first preamble symbol). A carrier off
 * by more than a few Hz is a wrong acquisition, not noise on a right one. */
static void print_lost_message(double ebn0_db, const burst_outcome_t outs[3])
{
    for (int i = 0; i < 3; i++) {
        const burst_outcome_t *o = &outs[i];
        printf("# lost at %.2f dB: rank %d: %s (%s), carrier error %+.2f Hz, drift error %+.1f Hz/s, "
               "start error %+.2f symbols, SNR estimate %.1f dB\n",
               ebn0_db, i + 1,
               !o->demod_ok                ? "no sync"
               : o->dec.status == ULDEC_OK ? "decoded"
                                           : "not decoded",
               uldecode_status_name(o->dec.status), o->res.freq_hz - o->true_freq_hz, o->res.drift_hz_s - o->true_drift_hz_s,
               (o->res.start_sample - o->true_start_sample) / DEMOD_SPS, o->res.snr_db);
        printf("#   true carrier rank %d of %d\n", o->true_rank, o->ncarriers);
    }
}

/* Three replicas per message through the assembler (with the device's key, so
 * joint results must pass UL-AUTH): lost when no correct message comes out. */
static void run_combined(bench_rx_t *b, uint64_t seed, int baud, int clen, point_t *pt,
                         long max_msgs, long max_errors)
{
    prng_t r;
    prng_seed(&r, point_seed(seed, baud, clen, 3, pt->ebn0_db), 0);
    keystore_t *ks = keystore_create();
    msg_sink_t sink = {0};
    assembler_config_t acfg = {
        .rc = rc_get(1), .keys = ks, .on_message = on_message, .user = &sink,
        .min_orphan_snr_db = ASSEMBLER_KEYED_MIN_ORPHAN_SNR_DB}; /* as rx.c with keys */
    assembler_t *as = ks ? assembler_create(&acfg) : NULL;
    if (!as) {
        fprintf(stderr, "sigfox-bench: out of memory\n");
        exit(EXIT_FAIL);
    }
    double t = 0;
    while (pt->msgs < max_msgs && pt->msg_errors < max_errors) {
        ul_message_t m;
        uint8_t key[16];
        random_message(&r, (size_t)clen, &m, key);
        keystore_add(ks, m.ep_id, key);
        sink.got = false;
        double dur = (double)(UL_HEADER_BITS + ul_body_bits((size_t)clen)) / baud;
        static burst_outcome_t outs[3];
        for (int rank = 1; rank <= 3; rank++) {
            burst_outcome_t *o = &outs[rank - 1];
            if (run_burst(b, &r, baud, &m, key, rank, pt->ebn0_db, o) < 0) {
                fprintf(stderr, "sigfox-bench: could not render a burst\n");
                exit(EXIT_FAIL);
            }
            /* U-procedure gaps drawn from Table 3-4 (RC1: 10 ms .. 2 s). */
            double ts = t;
            t += dur + 0.01 + 1.99 * prng_uniform(&r);
            if (!o->demod_ok)
                continue; /* no sync: the receiver never sees it */
            rx_frame_t f;
            memset(&f, 0, sizeof f);
            f.frame = o->dec.frame;
            f.baud = baud;
            f.freq_hz = o->res.freq_hz;
            f.drift_hz_s = o->res.drift_hz_s;
            f.snr_db = o->res.snr_db;
            f.rssi_dbfs = o->res.rssi_dbfs;
            f.t_start_s = ts;
            f.t_end_s = ts + dur;
            assembler_advance(as, f.t_end_s + 0.3);
            if (o->dec.status != ULDEC_OK && !o->dec.body_valid) {
                /* FT unreadable: --joint-coherent hands its symbols over (rx.c does the
                   same) */
                if (b->joint_coherent && o->nsym > o->first)
                    assembler_push_unread(as, &f, o->sym, o->nsym, o->first);
                continue;
            }
            /* --joint-coherent: failed bursts carry their symbols (rx.c does the same) */
            const float complex *sym = NULL;
            if (b->joint_coherent && o->dec.status != ULDEC_OK &&
                o->nsym >= o->first + ul_joint_symbols((size_t)clen))
                sym = o->sym + o->first;
            if (sym) /* as rx.c does: with the symbols around it too */
                assembler_push_failed(as, &f, o->dec.body_soft, sym, o->sym, o->nsym, o->first);
            else
                assembler_push_sym(as, &f, o->dec.status == ULDEC_OK ? NULL : o->dec.body_soft,
                                   NULL);
        }
        t += 30; /* next message well outside every window */
        assembler_advance(as, t);
        pt->msgs++;
        if (sink.got && frame_matches(&(ul_frame_t){.crc_ok = true, .msg = sink.last.msg}, &m)) {
            pt->msg_joint += sink.last.combined;
        } else if (b->joint_coherent && joint_coherent_recovers(b, outs, (size_t)clen, key, &m)) {
            pt->msg_joint++;
            pt->msg_coherent++;
        } else {
            pt->msg_errors++;
            if (g_verbose)
                print_lost_message(pt->ebn0_db, outs);
        }
    }
    assembler_stats_t st;
    assembler_get_stats(as, &st);
    pt->asm_coherent += (long)st.coherent_decoded;
    assembler_destroy(as);
    keystore_destroy(ks);
}

/* Eb/N0 where a curve crosses `level` (log-linear interpolation), NAN if it
 * does not. */
static double crossing(const point_t *pts, int n, bool combined, double level)
{
    for (int i = 0; i + 1 < n; i++) {
        long na = combined ? pts[i].msgs : pts[i].frames;
        long nb = combined ? pts[i + 1].msgs : pts[i + 1].frames;
        if (!na || !nb)
            continue;
        double a = (double)(combined ? pts[i].msg_errors : pts[i].errors) / (double)na;
        double c = (double)(combined ? pts[i + 1].msg_errors : pts[i + 1].errors) / (double)nb;
        if (a > level && c <= level) {
            double la = log(fmax(a, 1e-6)), lc = log(fmax(c, 1e-6)), ll = log(level);
            return pts[i].ebn0_db + (pts[i + 1].ebn0_db - pts[i].ebn0_db) * (la - ll) / (la - lc);
        }
    }
    if (n > 0) {
        long n0 = combined ? pts[0].msgs : pts[0].frames;
        double f0 = n0 ? (double)(combined ? pts[0].msg_errors : pts[0].errors) / (double)n0 : 1;
        if (f0 <= level)
            return -INFINITY; /* already below at the lowest point */
    }
    return NAN;
}

typedef struct {
    int baud, clen;
    point_t pts[MAX_POINTS];
    int n;
} curve_t;

static void print_crossing(const char *what, double x, double target, bool at_most)
{
    if (isnan(x))
        printf("  %-52s not reached in the range", what);
    else if (isinf(x))
        printf("  %-52s below the lowest point", what);
    else
        printf("  %-52s %5.2f dB", what, x);
    if (!isnan(target)) {
        bool ok = !isnan(x) && (at_most ? x <= target : x >= target);
        printf("   (target %s %.1f dB: %s)", at_most ? "<=" : ">=", target, ok ? "met" : "NOT met");
    }
    printf("\n");
}

static int write_plot(const char *png, const curve_t *cv, int ncv, bool single, bool combined,
                      double lo, double hi)
{
    char dat[] = "/tmp/sigfox-bench-XXXXXX";
    int fd = mkstemp(dat);
    if (fd < 0) {
        fprintf(stderr, "sigfox-bench: cannot create a temporary file: %s\n", strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(dat);
        return -1;
    }
    /* One data block per curve (gnuplot "index"), columns Eb/N0, rate. */
    int blocks = 0;
    char titles[4 * 2 * 8][64];
    for (int c = 0; c < ncv; c++)
        for (int k = 0; k < 2; k++) {
            bool comb = k == 1;
            if ((comb && !combined) || (!comb && !single))
                continue;
            if (cv[c].clen)
                snprintf(titles[blocks], sizeof titles[blocks], "BR%d %d-byte %s", cv[c].baud,
                         cv[c].clen, comb ? "3 replicas combined (message loss)" : "single frame");
            else
                snprintf(titles[blocks], sizeof titles[blocks], "BR%d mixed payloads %s",
                         cv[c].baud, comb ? "3 replicas combined (message loss)" : "single frame");
            fprintf(f, "# %s\n", titles[blocks]);
            for (int i = 0; i < cv[c].n; i++) {
                const point_t *p = &cv[c].pts[i];
                long n = comb ? p->msgs : p->frames;
                long e = comb ? p->msg_errors : p->errors;
                if (n > 0 && e > 0)
                    fprintf(f, "%.2f %.6g\n", p->ebn0_db, (double)e / (double)n);
            }
            fprintf(f, "\n\n");
            blocks++;
        }
    /* References for the first container size listed. */
    int nb = UL_FT_BITS + (int)ul_body_bits((size_t)(cv[0].clen ? cv[0].clen : 12));
    for (int k = 0; k < 2; k++) {
        for (double e = lo; e <= hi + 1e-9; e += 0.1) {
            double v = k == 0 ? fer_coherent(e, nb) : fer_differential(e, nb);
            if (v > 1e-5)
                fprintf(f, "%.2f %.6g\n", e, v);
        }
        fprintf(f, "\n\n");
    }
    fclose(f);

    char script[] = "/tmp/sigfox-bench-gp-XXXXXX";
    fd = mkstemp(script);
    if (fd < 0) {
        unlink(dat);
        return -1;
    }
    FILE *g = fdopen(fd, "w");
    if (!g) {
        close(fd);
        unlink(dat);
        unlink(script);
        return -1;
    }
    fprintf(g, "set terminal pngcairo size 1100,750 enhanced font 'sans,11'\n");
    fprintf(g, "set output '%s'\n", png);
    fprintf(g, "set logscale y\nset format y '10^{%%L}'\nset yrange [1e-4:1]\n");
    fprintf(g, "set xrange [%g:%g]\nset grid\n", lo, hi);
    fprintf(g, "set xlabel 'Eb/N0 per burst (dB)'\nset ylabel 'frame error rate "
               "/ message loss'\n");
    fprintf(g, "set title 'sigfoxd D-BPSK receiver, random "
               "carrier/drift/phase/timing'\n");
    fprintf(g, "set key bottom left\n");
    fprintf(g, "plot ");
    for (int i = 0; i < blocks; i++)
        fprintf(g, "'%s' index %d using 1:2 with linespoints lw 2 title '%s', ", dat, i, titles[i]);
    fprintf(g,
            "'%s' index %d using 1:2 with lines dt 2 lc rgb 'black' title 'ideal "
            "coherent "
            "DE-BPSK, %d bits', ",
            dat, blocks, nb);
    fprintf(g,
            "'%s' index %d using 1:2 with lines dt 3 lc rgb 'gray30' title 'ideal "
            "differential DPSK, %d bits'\n",
            dat, blocks + 1, nb);
    fclose(g);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "gnuplot '%s'", script);
    int rc = system(cmd);
    unlink(dat);
    unlink(script);
    if (rc != 0) {
        fprintf(stderr, "sigfox-bench: gnuplot failed (exit %d); is it installed?\n", rc);
        return -1;
    }
    return 0;
}

/* ---- whole-pipeline runs (rx.h) on explicit synthesized bursts ---- */

/* RC1 usable macro-channel, kept 6 kHz inside the 192 kHz edges for the
 * device's ±20 ppm being already part of the random carrier (§2.2.1, §3.13.3).
 */
#define BAND_HALF_HZ 90000.0
#define BLOCK_SAMPLES 65536

typedef struct {
    uint32_t ep_id;
    uint16_t mc;
    int rank;
    int baud;
    double t_start_s;
    double t_end_s;
    double freq_hz;
    int cls;   /* payload class (simpayload.h) */
    double df; /* decoded minus true carrier, when matched */
    bool matched;
} truth_burst_t;

typedef struct {
    uint32_t ep_id;
    uint16_t mc;
    int rank;
    double t_start_s;
    double freq_hz;
    int baud;
    double snr_db;
    size_t container_len;
    uint8_t container[UL_MAX_CONTAINER_BYTES];
    bool used;
} decoded_t;

typedef struct {
    double t_start_s, t_end_s; /* detector's */
    double freq_hz;            /* detector's */
    int baud;
    rx_undecoded_t reason;
    bool soft;                         /* sync found: the fields below are the demodulator's */
    double soft_t_start_s, soft_freq_hz;
} undecoded_t;

typedef struct {
    truth_burst_t *truth;
    size_t ntruth, cap_truth;
    decoded_t *dec;
    size_t ndec, cap_dec;
    ul_message_t *msgs; /* messages out of rx */
    bool *combined;     /* ... recovered only by joint decoding */
    size_t nmsgs, cap_msgs, cap_comb;
    undecoded_t *und; /* with --verbose: bursts the receiver accepted and did not decode */
    size_t nund, cap_und;
    double rate_sps;
} run_log_t;

static void *grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap * 2 : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(p, c * size);
    if (!q) {
        fprintf(stderr, "sigfox-bench: out of memory\n");
        exit(EXIT_FAIL);
    }
    *cap = c;
    return q;
}

static void log_frame(const rx_frame_t *f, void *user)
{
    run_log_t *l = user;
    if (!f->frame.crc_ok)
        return;
    l->dec = grow(l->dec, &l->cap_dec, l->ndec + 1, sizeof *l->dec);
    decoded_t *d = &l->dec[l->ndec++];
    d->ep_id = f->frame.msg.ep_id;
    d->mc = f->frame.msg.mc;
    d->rank = f->frame.rank;
    d->t_start_s = f->t_start_s;
    d->freq_hz = f->freq_hz;
    d->baud = f->baud;
    d->snr_db = f->snr_db;
    d->container_len = f->frame.container_len;
    memcpy(d->container, f->frame.container, sizeof d->container);
    d->used = false;
}

static void log_message(const rx_message_t *m, void *user)
{
    run_log_t *l = user;
    l->msgs = grow(l->msgs, &l->cap_msgs, l->nmsgs + 1, sizeof *l->msgs);
    l->combined = grow(l->combined, &l->cap_comb, l->nmsgs + 1, sizeof *l->combined);
    l->combined[l->nmsgs] = m->combined;
    l->msgs[l->nmsgs++] = m->msg;
}

static void log_undecoded(const rx_burst_t *b, void *user)
{
    run_log_t *l = user;
    l->und = grow(l->und, &l->cap_und, l->nund + 1, sizeof *l->und);
    undecoded_t *u = &l->und[l->nund++];
    u->t_start_s = (double)b->sample_start / l->rate_sps;
    u->t_end_s = (double)b->sample_end / l->rate_sps;
    u->freq_hz = b->freq_hz;
    u->baud = b->baud;
    u->reason = b->reason;
    u->soft = b->soft != NULL;
    u->soft_t_start_s = b->soft ? b->soft->t_start_s : 0;
    u->soft_freq_hz = b->soft ? b->soft->freq_hz : 0;
}

static void run_log_clear(run_log_t *l)
{
    l->ntruth = l->ndec = l->nmsgs = l->nund = 0;
}

static void run_log_free(run_log_t *l)
{
    free(l->truth);
    free(l->dec);
    free(l->msgs);
    free(l->combined);
    free(l->und);
}

static synth_t *new_synth(double rate, double seconds, uint64_t seed)
{
    synth_config_t c;
    synth_config_default(&c);
    c.seed = seed;
    c.rate_sps = rate;
    c.rc = 1;
    c.devices = 0;
    c.duration_s = seconds;
    char err[256];
    synth_t *s = synth_create(&c, err, sizeof err);
    if (!s) {
        fprintf(stderr, "sigfox-bench: synthesizer: %s\n", err);
        exit(EXIT_FAIL);
    }
    return s;
}

/* Adds one frame of a random message (or of *m when given) and records it.
 * Returns the burst's end time, or a negative value when it does not fit. */
static double add_burst(synth_t *s, run_log_t *l, prng_t *r, int baud, size_t clen,
                        const ul_message_t *m, const uint8_t *key, int rank, int n_frames, double t,
                        double freq_hz, double ebn0_db)
{
    synth_burst_spec_t sp;
    synth_burst_spec_default(&sp);
    if (m) {
        sp.msg = *m;
        memcpy(sp.key, key, 16);
    } else {
        random_message(r, clen, &sp.msg, sp.key);
    }
    sp.rank = rank;
    sp.n_frames = n_frames;
    sp.baud = baud;
    sp.t_start_s = t;
    sp.freq_hz = freq_hz;
    sp.ebn0_db = ebn0_db;
    double dmax = baud == 100 ? 30 : 100; /* Table 2-2 peak drift */
    sp.drift_hz_s = (2 * prng_uniform(r) - 1) * dmax;
    sp.phase_rad = prng_uniform(r) * 2 * M_PI;
    sp.baud_error_ppm = (2 * prng_uniform(r) - 1) * 1000;
    sp.lead_symbols = (int)(prng_uniform(r) * 2);
    sp.tail_symbols = (int)(prng_uniform(r) * 2);
    sp.ramp_symbols = 0.5 + 0.5 * prng_uniform(r);
    if (synth_add_burst(s, &sp) != 0)
        return -1;
    l->truth = grow(l->truth, &l->cap_truth, l->ntruth + 1, sizeof *l->truth);
    truth_burst_t *tb = &l->truth[l->ntruth++];
    tb->ep_id = sp.msg.ep_id;
    tb->mc = sp.msg.mc;
    tb->rank = rank;
    tb->baud = baud;
    tb->t_start_s = t;
    tb->freq_hz = freq_hz;
    tb->cls = sim_payload_class_of(&sp.msg);
    tb->df = 0;
    tb->matched = false;
    int len = ul_container_len(&sp.msg);
    size_t bits = UL_HEADER_BITS + ul_body_bits(len > 0 ? (size_t)len : clen);
    tb->t_end_s = t + (double)bits / baud;
    return tb->t_end_s;
}

typedef struct {
    double cpu_s; /* in rx_process + rx_flush */
    uint64_t samples;
    rx_stats_t st;
    assembler_stats_t ast;
    long rss_before_kb; /* resident memory just before rx_create */
} run_result_t;

static long rss_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n)) {
            v = atol(line + n);
            break;
        }
    fclose(f);
    return v;
}

static double g_pipeline_rate = 250e3; /* sensitivity --pipeline --rate */

/* Detector threshold for run_rx (0: the receiver's default). */
static double g_threshold_db;

/* false-frames --keys: the key store run_rx hands the receiver instead of the
 * synthesizer's (g_keys_set: NULL means none at all). */
static const keystore_t *g_keys;
static bool g_keys_set;

/* Renders the synthesizer's capture block by block into rx; only rx's CPU is
 * timed. */
static void run_rx(synth_t *s, double rate, run_log_t *l, run_result_t *out)
{
    static float complex *buf;
    if (!buf) {
        buf = malloc(BLOCK_SAMPLES * sizeof *buf);
        if (!buf) {
            fprintf(stderr, "sigfox-bench: out of memory\n");
            exit(EXIT_FAIL);
        }
    }
    size_t nb;
    synth_bursts(s, &nb);        /* finalises the plan: rendering allocates nothing more */
    if (out->rss_before_kb == 0) /* the first run's: later ones see freed heap as resident */
        out->rss_before_kb = rss_kb("VmRSS:");
    const rc_params_t *rc1 = rc_get(1);
    rx_config_t cfg = {.rate_sps = rate,
                       .capture_center_hz = rc1->ul_center_hz,
                       .channel_center_hz = rc1->ul_center_hz,
                       .keys = g_keys_set ? g_keys : synth_keys(s),
                       .rc = rc1,
                       .fft_measure = true,
                       .threshold_db = g_threshold_db,
                       .chase_trials = g_chase_trials > 0 ? g_chase_trials : -1,
                       .on_frame = log_frame,
                       .on_message = log_message,
                       .on_undecoded = g_verbose ? log_undecoded : NULL,
                       .user = l};
    l->rate_sps = rate;
    rx_t *rx = rx_create(&cfg);
    if (!rx) {
        fprintf(stderr, "sigfox-bench: rx_create failed\n");
        exit(EXIT_FAIL);
    }
    synth_rewind(s);
    double cpu = 0;
    uint64_t total = 0;
    for (;;) {
        long n = synth_render(s, buf, BLOCK_SAMPLES);
        if (n < 0) {
            fprintf(stderr, "sigfox-bench: synthesizer: %s\n", synth_strerror((int)n));
            exit(EXIT_FAIL);
        }
        if (n == 0)
            break;
        double t0 = cpu_seconds();
        rx_process(rx, buf, (size_t)n);
        cpu += cpu_seconds() - t0;
        total += (uint64_t)n;
    }
    double t0 = cpu_seconds();
    rx_flush(rx);
    cpu += cpu_seconds() - t0;
    rx_get_stats(rx, &out->st);
    rx_get_assembler_stats(rx, &out->ast);
    rx_destroy(rx);
    out->cpu_s = cpu;
    out->samples = total;
}

/* Marks truth bursts that a decoded frame reproduces (ID, MC, rank, start
 * within 50 ms + 2 symbols); returns how many decoded frames match no truth
 * burst's ID+MC at all. */
static size_t match_frames(run_log_t *l, size_t *matched, double *ferr2)
{
    *matched = 0;
    for (size_t i = 0; i < l->ntruth; i++) {
        truth_burst_t *t = &l->truth[i];
        for (size_t k = 0; k < l->ndec; k++) {
            decoded_t *d = &l->dec[k];
            if (d->used || d->ep_id != t->ep_id || d->mc != t->mc || d->rank != t->rank ||
                fabs(d->t_start_s - t->t_start_s) > 0.05 + 2.0 / t->baud)
                continue;
            d->used = true;
            t->matched = true;
            t->df = d->freq_hz - t->freq_hz;
            (*matched)++;
            if (ferr2)
                *ferr2 += (d->freq_hz - t->freq_hz) * (d->freq_hz - t->freq_hz);
            break;
        }
    }
    size_t false_frames = 0;
    for (size_t k = 0; k < l->ndec; k++) {
        bool known = false;
        for (size_t i = 0; i < l->ntruth && !known; i++)
            known = l->dec[k].ep_id == l->truth[i].ep_id && l->dec[k].mc == l->truth[i].mc;
        false_frames += !known;
    }
    return false_frames;
}

static int pick_baud(prng_t *r, int baud_opt)
{
    if (baud_opt == 100 || baud_opt == 600)
        return baud_opt;
    return prng_uniform(r) < 0.5 ? 100 : 600;
}

static size_t random_container(prng_t *r)
{
    static const size_t sizes[] = {8, 9, 12, 16, 20};
    return sizes[(int)(prng_uniform(r) * 5) % 5];
}

static int parse_baud_opt(const char *v)
{
    if (!strcmp(v, "100"))
        return 100;
    if (!strcmp(v, "600"))
        return 600;
    if (!strcmp(v, "mixed"))
        return 0;
    usage_error("--baud: %s (100, 600 or mixed)", v);
    return 0;
}

static int parse_rate_list(const char *text, double *out, int cap)
{
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        double v;
        if (n >= cap || !cli_parse_number(tok, &v) || v < 200e3 || v > 3.2e6)
            usage_error("--rate: %s (200k .. 3.2M, comma separated)", text);
        out[n++] = v;
    }
    if (n == 0)
        usage_error("--rate: %s", text);
    return n;
}

static int cmd_throughput(int argc, char **argv)
{
    double rates[4] = {250e3, 2.4e6};
    int nrates = 2;
    int ks[8] = {0, 20, 100}, nk = 3;
    int baud_opt = 100;
    double seconds = 20;
    int repeat = 3;
    uint64_t seed = 1;
    static const struct option opts[] = {
        {"rate", required_argument, 0, 'r'},   {"bursts", required_argument, 0, 'k'},
        {"baud", required_argument, 0, 'b'},   {"seconds", required_argument, 0, 't'},
        {"repeat", required_argument, 0, 'n'}, {"seed", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            nrates = parse_rate_list(optarg, rates, 4);
            break;
        case 'k':
            nk = parse_int_list(optarg, ks, 8, "--bursts");
            for (int i = 0; i < nk; i++)
                if (ks[i] < 0 || ks[i] > 400)
                    usage_error("--bursts: %s (0..400)", optarg);
            break;
        case 'b':
            baud_opt = parse_baud_opt(optarg);
            break;
        case 't':
            seconds = parse_double(optarg, 5, 600, "--seconds");
            break;
        case 'n':
            repeat = (int)parse_long(optarg, 1, 50, "--repeat");
            break;
        case 's':
            seed = parse_seed(optarg);
            break;
        default: {
            int rc = cli_common_opt(c, PROG, usage_text, argv);
            return rc < 0 ? 0 : rc;
        }
        }
    }
    if (optind < argc)
        usage_error("unexpected argument: %s", argv[optind]);
    print_machine();

    printf("# throughput: %.0f s captures, bursts back to back (gaps 10-100 ms) "
           "at random "
           "carriers in +-%.0f kHz, baud %s, random containers, Eb/N0 15 dB; "
           "median of %d runs\n",
           seconds, BAND_HALF_HZ / 1e3, baud_opt ? (baud_opt == 100 ? "100" : "600") : "mixed",
           repeat);
    printf("# %9s %7s %12s %10s %10s %8s %8s %9s %10s\n", "rate", "bursts", "samples/s",
           "x realtime", "CPU s", "frames", "decoded", "false", "rx MB");
    for (int ri = 0; ri < nrates; ri++)
        for (int ki = 0; ki < nk; ki++) {
            /* One child process per configuration, so that its peak resident memory
             * (VmHWM) belongs to this receiver alone. */
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0) {
                fprintf(stderr, "sigfox-bench: fork: %s\n", strerror(errno));
                return EXIT_FAIL;
            }
            if (pid > 0) {
                int status = 0;
                if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
                    WEXITSTATUS(status) != 0) {
                    fprintf(stderr, "sigfox-bench: throughput run failed\n");
                    return EXIT_FAIL;
                }
                continue;
            }
            run_log_t l = {0};
            prng_t r;
            prng_seed(&r, seed * 7777 + (uint64_t)ri * 131 + (uint64_t)ks[ki], 0);
            synth_t *s = new_synth(rates[ri], seconds, seed + (uint64_t)ks[ki]);
            /* K lanes of back-to-back frames, lanes starting staggered. */
            for (int lane = 0; lane < ks[ki]; lane++) {
                double t = 0.05 + prng_uniform(&r) * 2.0;
                for (;;) {
                    int baud = pick_baud(&r, baud_opt);
                    double f = rc_get(1)->ul_center_hz + (2 * prng_uniform(&r) - 1) * BAND_HALF_HZ;
                    double end = add_burst(s, &l, &r, baud, random_container(&r), NULL, NULL, 1, 1,
                                           t, f, 15.0);
                    if (end < 0)
                        break; /* past the end of the capture */
                    t = end + 0.01 + 0.09 * prng_uniform(&r);
                }
            }
            double rt[50];
            rx_cpu_t split[50];
            run_result_t res = {0};
            for (int k = 0; k < repeat; k++) {
                l.ndec = l.nmsgs = 0;
                for (size_t i = 0; i < l.ntruth; i++)
                    l.truth[i].matched = false;
                run_rx(s, rates[ri], &l, &res);
                rt[k] = res.cpu_s;
                split[k] = res.st.cpu;
            }
            long hwm = rss_kb("VmHWM:");
            /* the median run, and its stage split */
            int order[50];
            for (int k = 0; k < repeat; k++)
                order[k] = k;
            for (int a = 1; a < repeat; a++)
                for (int b = a; b > 0 && rt[order[b]] < rt[order[b - 1]]; b--) {
                    int t = order[b];
                    order[b] = order[b - 1];
                    order[b - 1] = t;
                }
            double med = rt[order[repeat / 2]];
            const rx_cpu_t *cs = &split[order[repeat / 2]];
            size_t matched = 0;
            size_t false_frames = match_frames(&l, &matched, NULL);
            double sps = (double)res.samples / med;
            printf("  %9.0f %7d %12.4g %10.1f %10.3f %8zu %8zu %9zu %10.1f\n", rates[ri], ks[ki],
                   sps, sps / rates[ri], med, l.ntruth, matched, false_frames,
                   hwm > 0 && res.rss_before_kb > 0 ? (hwm - res.rss_before_kb) / 1024.0 : -1.0);
            double tot = cs->frontend_s + cs->channelizer_s + cs->detector_s + cs->extractor_s +
                         cs->demod_s + cs->decode_s;
            if (tot > 0)
                printf(
                    "  %9s %7s stages: front end %.0f %%, channelizer %.0f %%, detector %.0f %%, "
                    "extractor %.0f %%, demod %.0f %%, decode+assembly %.0f %% "
                    "(%.2f ms CPU per second of signal; %llu demodulations)\n",
                    "", "", 100 * cs->frontend_s / tot, 100 * cs->channelizer_s / tot,
                    100 * cs->detector_s / tot, 100 * cs->extractor_s / tot,
                    100 * cs->demod_s / tot, 100 * cs->decode_s / tot,
                    1e3 * tot / ((double)res.samples / rates[ri]),
                    (unsigned long long)res.st.demod_attempts);
            fflush(stdout);
            synth_destroy(s);
            run_log_free(&l);
            _exit(0);
        }
    printf("\n# stages: thread CPU time inside rx_process/rx_flush per stage (rx_stats_t.cpu) of "
           "the\n# median run; the 0-burst rows are the fixed cost (front end, channelizer, "
           "detector),\n# the rest grows with the bursts (extraction, demodulation, decoding, "
           "assembly).\n");
    printf("# rx MB: peak resident memory (VmHWM) of the run minus the resident "
           "memory just\n"
           "# before rx_create, i.e. what the receiver needs on top of the "
           "synthesizer.\n");
    printf("\n## Targets\n");
    printf("  one core >= 100x real time at 250 kS/s with 20 bursts, >= 10x at "
           "2.4 MS/s: see the "
           "rows above\n");
    return 0;
}

#define IDEAL_SOFT_MAX (MAX_SNIPPET / DEMOD_SPS)

/* ---- ideal-knowledge bound for the capacity benchmark ----
 *
 * Each truth burst is cut out of the very capture rx saw (all other bursts and the noise
 * included) at its true carrier and time: mixed down by the true carrier at the burst's
 * middle, resampled to 16 samples/symbol (liquid msresamp, 60 dB), and handed to the
 * demodulator with its true start (+-2 symbols) and end. What still fails there cannot be
 * blamed on the detector or the extractor: it is what this demodulator cannot separate
 * (the neighbour's energy inside the burst's band), i.e. a physical collision for it. */
typedef struct {
    double rate;
    float complex *cap; /* the whole capture */
    size_t ncap;
    float complex *mix, *out;
    size_t mixcap, outcap;
    demod_t *dm[2];
    msresamp_crcf rs[2]; /* to 16 samples/symbol, made once (design is costly) */
    nco_crcf nco;
    float soft[IDEAL_SOFT_MAX];
} ideal_t;

static void ideal_init(ideal_t *id, synth_t *s, double rate)
{
    memset(id, 0, sizeof *id);
    id->rate = rate;
    id->ncap = (size_t)synth_total_samples(s);
    id->cap = malloc(id->ncap * sizeof *id->cap);
    if (!id->cap) {
        fprintf(stderr, "sigfox-bench: out of memory\n");
        exit(EXIT_FAIL);
    }
    synth_rewind(s);
    size_t pos = 0;
    while (pos < id->ncap) {
        long n = synth_render(s, id->cap + pos, id->ncap - pos);
        if (n <= 0)
            break;
        pos += (size_t)n;
    }
    id->ncap = pos;
    id->nco = nco_crcf_create(LIQUID_NCO);
    demod_sync_t sync[DEMOD_MAX_SYNC_WORDS];
    size_t nsync = uldecode_sync_words(sync, DEMOD_MAX_SYNC_WORDS);
    for (int c = 0; c < 2; c++) {
        demod_config_t dc = {.baud = c ? 600 : 100,
                             .max_samples = IDEAL_SOFT_MAX * DEMOD_SPS,
                             .sync = sync,
                             .nsync = nsync};
        id->dm[c] = demod_create(&dc);
        id->rs[c] = msresamp_crcf_create((float)(DEMOD_SPS * dc.baud / rate), 60.0f);
        if (!id->dm[c] || !id->rs[c]) {
            fprintf(stderr, "sigfox-bench: demod_create failed\n");
            exit(EXIT_FAIL);
        }
    }
}

static void ideal_free(ideal_t *id)
{
    free(id->cap);
    free(id->mix);
    free(id->out);
    for (int c = 0; c < 2; c++) {
        demod_destroy(id->dm[c]);
        msresamp_crcf_destroy(id->rs[c]);
    }
    nco_crcf_destroy(id->nco);
}

/* Whether the demodulator decodes burst b (exact ID, MC, rank) at its true carrier and
 * time, from the composite capture. */
static bool ideal_decodes(ideal_t *id, const synth_burst_t *b)
{
    const double sps = DEMOD_SPS;
    double margin_s = 8.0 / b->baud;
    long i0 = (long)floor((b->t_on_s - margin_s) * id->rate);
    long i1 = (long)ceil((b->t_off_s + margin_s) * id->rate);
    if (i0 < 0)
        i0 = 0;
    if (i1 > (long)id->ncap)
        i1 = (long)id->ncap;
    if (i1 <= i0)
        return false;
    size_t n = (size_t)(i1 - i0);
    if (n > id->mixcap) {
        free(id->mix);
        id->mix = malloc(n * sizeof *id->mix);
        id->mixcap = id->mix ? n : 0;
    }
    double r = sps * b->baud / id->rate;
    size_t nout_max = (size_t)ceil((double)n * r) + 64;
    if (nout_max > id->outcap) {
        free(id->out);
        id->out = malloc(nout_max * sizeof *id->out);
        id->outcap = id->out ? nout_max : 0;
    }
    if (!id->mix || !id->out) {
        fprintf(stderr, "sigfox-bench: out of memory\n");
        exit(EXIT_FAIL);
    }
    /* carrier relative to the capture centre, at the middle of the frame */
    double f = b->mod.freq_hz + b->drift_hz_s * (b->t_end_s - b->t_start_s) / 2;
    nco_crcf_set_frequency(id->nco, (float)(2 * M_PI * f / id->rate));
    nco_crcf_set_phase(id->nco, (float)fmod(2 * M_PI * f * (double)i0 / id->rate, 2 * M_PI));
    nco_crcf_mix_block_down(id->nco, id->cap + i0, id->mix, (unsigned)n);
    msresamp_crcf rs = id->rs[b->baud == 600];
    msresamp_crcf_reset(rs);
    /* msresamp's delay is in input samples (liquid 1.5), measured against the truth */
    double delay = msresamp_crcf_get_delay(rs);
    unsigned nout = 0;
    msresamp_crcf_execute(rs, id->mix, (unsigned)n, id->out, &nout);
    size_t ns = nout;
    if (ns > IDEAL_SOFT_MAX * DEMOD_SPS)
        ns = IDEAL_SOFT_MAX * DEMOD_SPS;
    double j_start = (b->t_start_s * id->rate - (double)i0 + delay) * r;
    double j_end = (b->t_end_s * id->rate - (double)i0 + delay) * r;
    if (j_start < 0 || j_end > (double)ns)
        return false;
    demod_hint_t h = {.start_sample = j_start, .start_uncertainty = 2 * sps, .end_sample = j_end};
    demod_result_t res;
    int nsoft =
        demod_process(id->dm[b->baud == 600], id->out, ns, &h, id->soft, IDEAL_SOFT_MAX, &res);
    if (nsoft < UL_FT_BITS)
        return false;
    uldecode_result_t ur;
    uldecode_frame(id->soft, (size_t)nsoft, UL_FT_DEFAULT_MAX_DISTANCE, &ur);
    return ur.status == ULDEC_OK && ur.frame.msg.ep_id == b->msg.ep_id &&
           ur.frame.msg.mc == b->msg.mc && ur.frame.rank == b->rank;
}

/* Capacity losses by the carrier distance to the nearest burst on air at the same time,
 * next to the ideal-knowledge bound (ideal_decodes) on the same capture. */
static void print_ideal(synth_t *s, double rate, const run_log_t *l)
{
    enum { NB = 7 };
    static const double edges[NB] = {100, 200, 300, 400, 600, 1000, INFINITY};
    static const char *names[NB] = {"< 100 Hz",   "100-200 Hz", "200-300 Hz", "300-400 Hz",
                                    "400-600 Hz", "0.6-1 kHz",  ">= 1 kHz"};
    size_t cnt[NB] = {0}, rxok[NB] = {0}, idok[NB] = {0}, rx_not_id[NB] = {0}, id_not_rx[NB] = {0};
    ideal_t id;
    ideal_init(&id, s, rate);
    size_t nsb;
    const synth_burst_t *sb = synth_bursts(s, &nsb);
    for (size_t a = 0; a < nsb; a++) {
        double nearest = INFINITY;
        for (size_t b = 0; b < nsb; b++)
            if (b != a && sb[b].t_on_s < sb[a].t_off_s && sb[a].t_on_s < sb[b].t_off_s &&
                fabs(sb[a].freq_hz - sb[b].freq_hz) < nearest)
                nearest = fabs(sb[a].freq_hz - sb[b].freq_hz);
        bool rx_ok = false;
        for (size_t k = 0; k < l->ntruth; k++)
            if (l->truth[k].ep_id == sb[a].msg.ep_id && l->truth[k].mc == sb[a].msg.mc &&
                l->truth[k].rank == sb[a].rank &&
                fabs(l->truth[k].t_start_s - sb[a].t_start_s) < 1e-6) {
                rx_ok = l->truth[k].matched;
                break;
            }
        bool id_ok = ideal_decodes(&id, &sb[a]);
        int k = 0;
        while (k < NB - 1 && nearest >= edges[k])
            k++;
        cnt[k]++;
        rxok[k] += rx_ok;
        idok[k] += id_ok;
        rx_not_id[k] += rx_ok && !id_ok;
        id_not_rx[k] += id_ok && !rx_ok;
    }
    ideal_free(&id);
    printf("  %6s %-22s %7s %8s %8s %14s %14s\n", "", "nearest burst on air", "bursts", "rx",
           "ideal", "ideal, not rx", "rx, not ideal");
    size_t t[5] = {0};
    for (int k = 0; k < NB; k++) {
        if (!cnt[k])
            continue;
        printf("  %6s %-22s %7zu %8zu %8zu %14zu %14zu\n", "", names[k], cnt[k], rxok[k], idok[k],
               id_not_rx[k], rx_not_id[k]);
        t[0] += cnt[k];
        t[1] += rxok[k];
        t[2] += idok[k];
        t[3] += id_not_rx[k];
        t[4] += rx_not_id[k];
    }
    printf("  %6s %-22s %7zu %8zu %8zu %14zu %14zu   ideal bound %.3f\n", "", "all", t[0], t[1],
           t[2], t[3], t[4], t[0] ? (double)t[2] / (double)t[0] : 0.0);
}

static int cmd_capacity(int argc, char **argv)
{
    int ns[8] = {10, 50, 100, 200}, nn = 4;
    int rounds = 4;
    double rate = 250e3, ebn0 = 15;
    int baud_opt = 0; /* mixed */
    bool classes = true;
    uint64_t seed = 1;
    double min_spacing = 0;
    bool ideal = true;
    static const struct option opts[] = {{"min-spacing", required_argument, 0, 'm'},
                                         {"no-ideal", no_argument, 0, 'I'},
                                         {"bursts", required_argument, 0, 'k'},
                                         {"rounds", required_argument, 0, 'n'},
                                         {"rate", required_argument, 0, 'r'},
                                         {"baud", required_argument, 0, 'b'},
                                         {"payloads", required_argument, 0, 'L'},
                                         {"ebn0", required_argument, 0, 'e'},
                                         {"seed", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            nn = parse_int_list(optarg, ns, 8, "--bursts");
            for (int i = 0; i < nn; i++)
                if (ns[i] < 1 || ns[i] > 1000)
                    usage_error("--bursts: %s (1..1000)", optarg);
            break;
        case 'n':
            rounds = (int)parse_long(optarg, 1, 100, "--rounds");
            break;
        case 'r': {
            double v[1];
            parse_rate_list(optarg, v, 1);
            rate = v[0];
            break;
        }
        case 'b':
            baud_opt = parse_baud_opt(optarg);
            break;
        case 'L':
            if (!strcmp(optarg, "classes"))
                classes = true;
            else if (!strcmp(optarg, "random"))
                classes = false;
            else
                usage_error("--payloads: %s (classes or random)", optarg);
            break;
        case 'e':
            ebn0 = parse_double(optarg, -10, 60, "--ebn0");
            break;
        case 'm':
            min_spacing = parse_double(optarg, 0, 5000, "--min-spacing");
            break;
        case 'I':
            ideal = false;
            break;
        case 's':
            seed = parse_seed(optarg);
            break;
        default: {
            int rc = cli_common_opt(c, PROG, usage_text, argv);
            return rc < 0 ? 0 : rc;
        }
        }
    }
    if (optind < argc)
        usage_error("unexpected argument: %s", argv[optind]);
    print_machine();
    if (min_spacing > 0)
        printf("# carriers of one round at least %.0f Hz apart (redrawn until they "
               "are)\n",
               min_spacing);
    printf("# capacity: N bursts starting within 0.2 s at random carriers in "
           "+-%.0f kHz, baud "
           "%s, %s, Eb/N0 %.1f dB, %d rounds, %.0f S/s\n",
           BAND_HALF_HZ / 1e3, baud_opt ? (baud_opt == 100 ? "100" : "600") : "mixed",
           classes ? "payload classes of simpayload.h (0-12 bytes, 1-bit, control)"
                   : "random containers",
           ebn0, rounds, rate);
    printf("# %6s %7s %8s %9s %11s %13s %7s %11s\n", "N", "bursts", "decoded", "fraction",
           "clash-free", "decoded of", "false", "x realtime");
    printf("# %6s %7s %8s %9s %11s %13s %7s %11s\n", "", "", "", "", "", "clash-free", "", "");
    run_log_t l = {0};
    for (int i = 0; i < nn; i++) {
        prng_t r;
        prng_seed(&r, seed * 31337 + (uint64_t)ns[i], 0);
        double round_s = 3.0;
        synth_t *s = new_synth(rate, rounds * round_s + 1.0, seed + (uint64_t)ns[i]);
        run_log_clear(&l);
        for (int k = 0; k < rounds; k++) {
            size_t first = l.ntruth;
            for (int b = 0; b < ns[i]; b++) {
                int baud = pick_baud(&r, baud_opt);
                double f;
                bool ok;
                int tries = 0;
                do {
                    f = rc_get(1)->ul_center_hz + (2 * prng_uniform(&r) - 1) * BAND_HALF_HZ;
                    ok = true;
                    for (size_t j = first; j < l.ntruth && ok; j++)
                        ok = fabs(l.truth[j].freq_hz - f) >= min_spacing;
                } while (!ok && ++tries < 10000);
                double t = 0.3 + k * round_s + 0.2 * prng_uniform(&r);
                ul_message_t m;
                uint8_t key[16];
                int cls = SIM_PAYLOAD_RANDOM;
                if (classes)
                    cls = mix_message(&r, &m, key);
                if (!ok || add_burst(s, &l, &r, baud, random_container(&r), classes ? &m : NULL,
                                     classes ? key : NULL, 1, 1, t, f, ebn0) < 0) {
                    fprintf(stderr, "sigfox-bench: %d bursts do not fit the band/capture\n", ns[i]);
                    return EXIT_FAIL;
                }
                l.truth[l.ntruth - 1].cls = cls;
            }
        }
        /* Bursts with another one within the sum of their symbol rates in carrier
         * while both are on air: physically colliding. */
        bool *clash = calloc(l.ntruth, sizeof *clash);
        if (!clash) {
            fprintf(stderr, "sigfox-bench: out of memory\n");
            return EXIT_FAIL;
        }
        size_t nclash = 0;
        for (size_t a = 0; a < l.ntruth; a++)
            for (size_t b = 0; b < l.ntruth; b++)
                if (a != b && l.truth[a].t_start_s < l.truth[b].t_end_s &&
                    l.truth[b].t_start_s < l.truth[a].t_end_s &&
                    fabs(l.truth[a].freq_hz - l.truth[b].freq_hz) <
                        l.truth[a].baud + l.truth[b].baud) {
                    clash[a] = true;
                    nclash++;
                    break;
                }
        run_result_t res = {0};
        run_rx(s, rate, &l, &res);
        size_t matched = 0;
        size_t false_frames = match_frames(&l, &matched, NULL);
        size_t free_ok = 0;
        for (size_t a = 0; a < l.ntruth; a++)
            free_ok += !clash[a] && l.truth[a].matched;
        size_t nfree = l.ntruth - nclash;
        printf("  %6d %7zu %8zu %9.3f %11zu %6zu (%.3f) %7zu %11.1f\n", ns[i], l.ntruth, matched,
               (double)matched / (double)l.ntruth, nfree, free_ok,
               nfree ? (double)free_ok / (double)nfree : 0.0, false_frames,
               (double)res.samples / res.cpu_s / rate);
        printf("  %6s receiver: detected %llu, tracks rejected %llu, no slot %llu, no sync %llu, "
               "FT bad %llu, CRC bad %llu, CRC ok %llu (%llu from later attempts; %llu "
               "demodulations; %llu neighbours cancelled)\n",
               "", (unsigned long long)res.st.bursts_detected,
               (unsigned long long)res.st.bursts_rejected,
               (unsigned long long)res.st.bursts_dropped, (unsigned long long)res.st.bursts_nosync,
               (unsigned long long)res.st.frames_ft_bad, (unsigned long long)res.st.frames_crc_bad,
               (unsigned long long)res.st.frames_ok, (unsigned long long)res.st.frames_multi,
               (unsigned long long)res.st.demod_attempts,
               (unsigned long long)res.st.neighbours_cancelled);
        if (classes) {
            long n[SIM_PAYLOAD_CLASSES] = {0}, ok[SIM_PAYLOAD_CLASSES] = {0};
            long nb[2] = {0}, okb[2] = {0};
            for (size_t a = 0; a < l.ntruth; a++) {
                n[l.truth[a].cls]++;
                ok[l.truth[a].cls] += l.truth[a].matched;
                nb[l.truth[a].baud == 600]++;
                okb[l.truth[a].baud == 600] += l.truth[a].matched;
            }
            printf("  %6s decoded per class:", "");
            for (int k = 0; k < SIM_PAYLOAD_CLASSES; k++)
                if (n[k])
                    printf(" %s %ld/%ld", sim_payload_class_name(k), ok[k], n[k]);
            printf("; per baud:");
            for (int k = 0; k < 2; k++)
                if (nb[k])
                    printf(" BR%d %ld/%ld", k ? 600 : 100, okb[k], nb[k]);
            printf("\n");
        }
        if (ideal)
            print_ideal(s, rate, &l);
        free(clash);
        fflush(stdout);
        synth_destroy(s);
    }
    run_log_free(&l);
    printf("\n# clash-free: bursts with no other one within the sum of their symbol rates "
           "(200 Hz)\n# in carrier while both are on air (with uniformly random carriers "
           "1 - exp(-(N-1) x 400 Hz\n# / 180 kHz) of them have one: 20 %% at N = 100).\n"
           "# ideal: each burst demodulated at its true carrier and time from the same capture "
           "(other\n# bursts and noise included): what a single-user demodulator decodes when "
           "told where to\n# look. The receiver can exceed it: it cancels a decoded burst "
           "before looking for its\n# neighbour. Bursts lost by both with a neighbour under "
           "100 Hz (one symbol rate) away\n# are co-channel collisions.\n");
    printf("\n## Targets\n  >= 100 simultaneous bursts at random carriers "
           "decoded with >= 95 %% "
           "success at 15 dB: see the N = 100 row\n");
    return 0;
}

static int cmd_false_frames(int argc, char **argv)
{
    double seconds = 3600, rate = 250e3;
    int cw = 3, fsk = 2;
    long nkeys = 1000;
    uint64_t seed = 1;
    static const struct option opts[] = {
        {"keys", required_argument, 0, 'k'},
        {"seconds", required_argument, 0, 't'},      {"rate", required_argument, 0, 'r'},
        {"cw", required_argument, 0, 'c'},           {"fsk", required_argument, 0, 'f'},
        {"seed", required_argument, 0, 's'},         {"help", no_argument, 0, 'h'},
        {"threshold-db", required_argument, 0, 'T'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'T':
            g_threshold_db = parse_double(optarg, 0.5, 30, "--threshold-db");
            break;
        case 't':
            seconds = parse_double(optarg, 10, 86400, "--seconds");
            break;
        case 'r': {
            double v[1];
            parse_rate_list(optarg, v, 1);
            rate = v[0];
            break;
        }
        case 'c':
            cw = (int)parse_long(optarg, 0, 1000, "--cw");
            break;
        case 'f':
            fsk = (int)parse_long(optarg, 0, 100, "--fsk");
            break;
        case 'k':
            nkeys = parse_long(optarg, 0, 1000000, "--keys");
            break;
        case 's':
            seed = parse_seed(optarg);
            break;
        default: {
            int rc = cli_common_opt(c, PROG, usage_text, argv);
            return rc < 0 ? 0 : rc;
        }
        }
    }
    if (optind < argc)
        usage_error("unexpected argument: %s", argv[optind]);
    print_machine();
    synth_config_t sc;
    synth_config_default(&sc);
    sc.seed = seed;
    sc.rate_sps = rate;
    sc.rc = 1;
    sc.devices = 0;
    sc.duration_s = seconds;
    sc.cw_tones = cw;
    sc.fsk_interferers = fsk;
    char err[256];
    synth_t *s = synth_create(&sc, err, sizeof err);
    if (!s) {
        fprintf(stderr, "sigfox-bench: synthesizer: %s\n", err);
        return EXIT_FAIL;
    }
    keystore_t *keys = nkeys > 0 ? keystore_create() : NULL;
    if (nkeys > 0 && !keys) {
        fprintf(stderr, "sigfox-bench: out of memory\n");
        return EXIT_FAIL;
    }
    prng_t kr;
    prng_seed(&kr, seed, 7);
    for (long i = 0; i < nkeys; i++) {
        uint8_t key[16];
        for (int b = 0; b < 16; b++)
            key[b] = (uint8_t)(prng_uniform(&kr) * 256);
        if (keystore_add(keys, (uint32_t)(prng_uniform(&kr) * 4294967296.0), key) < 0) {
            fprintf(stderr, "sigfox-bench: out of memory\n");
            return EXIT_FAIL;
        }
    }
    g_keys = keys;
    g_keys_set = true;
    size_t nintf = 0;
    synth_interferers(s, &nintf);
    printf("# false-frames: %.0f s of AWGN at %.0f S/s with %d CW tones and %d FSK sources "
           "(%zu interferer records, %.0f dB over N0 x 100 Hz), no devices; detector threshold "
           "%.1f dB (0: the receiver's default); %s; seed %llu\n",
           seconds, rate, cw, fsk, nintf, sc.interferer_db, g_threshold_db,
           keys ? "key store of random devices" : "no key store", (unsigned long long)seed);
    if (keys)
        printf("# key store: %zu devices\n", keystore_count(keys));
    run_log_t l = {0};
    run_result_t res = {0};
    run_rx(s, rate, &l, &res);
    printf("  %-34s %llu\n", "bursts accepted by the detector",
           (unsigned long long)res.st.bursts_detected);
    printf("  %-34s %llu\n", "detector tracks rejected",
           (unsigned long long)res.st.bursts_rejected);
    printf("  %-34s %llu\n", "  of them: no preamble (CW/FSK-like)",
           (unsigned long long)res.st.bursts_unverified);
    printf("  %-34s %llu\n", "no sync", (unsigned long long)res.st.bursts_nosync);
    printf("  %-34s %llu\n", "FT unreadable", (unsigned long long)res.st.frames_ft_bad);
    printf("  %-34s %llu\n", "FT readable, CRC bad", (unsigned long long)res.st.frames_crc_bad);
    printf("  %-34s %llu\n", "readings at runner-up syncs",
           (unsigned long long)res.st.alt_sync_attempts);
    printf("  %-34s %llu (%llu kept, %llu used)\n", "unread bursts to the assembler",
           (unsigned long long)res.ast.unread_in, (unsigned long long)res.ast.unread_kept,
           (unsigned long long)res.ast.unread_used);
    printf("  %-34s %llu (%llu CRC-valid, %llu refused)\n", "joint coherent decodings",
           (unsigned long long)res.ast.coherent_attempts,
           (unsigned long long)res.ast.coherent_decoded, (unsigned long long)res.ast.joint_rejected);
    printf("  %-34s %llu\n", "CRC-valid frames (all false)", (unsigned long long)res.st.frames_ok);
    printf("  %-34s %llu\n", "  of them corrected (chase)",
           (unsigned long long)res.st.frames_corrected);
    printf("  %-34s %llu (%llu combined)\n", "messages (all false)",
           (unsigned long long)res.st.messages, (unsigned long long)res.st.messages_combined);
    printf("  %-34s %.1f x real time\n", "receiver speed", (double)res.samples / res.cpu_s / rate);
    for (size_t i = 0; i < l.ndec; i++) { /* what passed, to tell chance from structure */
        const decoded_t *d = &l.dec[i];
        char hex[2 * UL_MAX_CONTAINER_BYTES + 1];
        for (size_t k = 0; k < d->container_len && k < UL_MAX_CONTAINER_BYTES; k++)
            snprintf(hex + 2 * k, 3, "%02X", d->container[k]);
        hex[2 * (d->container_len < UL_MAX_CONTAINER_BYTES ? d->container_len
                                                           : UL_MAX_CONTAINER_BYTES)] = 0;
        printf("# false frame: %.3f s, %+.1f Hz, BR%d rank %d, SNR %.1f dB, ID %08X, "
               "container %s\n",
               d->t_start_s, d->freq_hz, d->baud, d->rank, d->snr_db, (unsigned)d->ep_id, hex);
    }
    printf("\n## Targets\n  no false frames in 1 hour of noise and interferers: "
           "%s (%.2f h, %llu "
           "false frames, %llu false messages)\n",
           res.st.frames_ok == 0 && res.st.messages == 0 ? "met" : "NOT met", seconds / 3600.0,
           (unsigned long long)res.st.frames_ok, (unsigned long long)res.st.messages);
    run_log_free(&l);
    synth_destroy(s);
    keystore_destroy(keys);
    return 0;
}

/* --pipeline --combined-only --verbose: what became of each replica of a lost message:
 * decoded, accepted by the detector and not decoded (the detector's start, end and carrier
 * errors; with a sync, the demodulator's), or no track reported at all. */
static void print_lost_replicas(const run_log_t *l, const truth_burst_t *tb)
{
    const double centre = rc_get(1)->ul_center_hz;
    for (int k = 0; k < 3; k++) {
        const truth_burst_t *t = &tb[k];
        printf("  lost message BR%d %s rank %d t %.3f-%.3f f %+.0f Hz: ", t->baud,
               sim_payload_class_name(t->cls), t->rank, t->t_start_s, t->t_end_s,
               t->freq_hz - centre);
        if (t->matched) {
            printf("decoded\n");
            continue;
        }
        const undecoded_t *best = NULL;
        for (size_t j = 0; j < l->nund; j++) {
            const undecoded_t *u = &l->und[j];
            if (u->t_start_s < t->t_end_s && t->t_start_s < u->t_end_s &&
                fabs(u->freq_hz - t->freq_hz) < 2.0 * t->baud &&
                (!best || fabs(u->freq_hz - t->freq_hz) < fabs(best->freq_hz - t->freq_hz)))
                best = u;
        }
        if (!best) {
            printf("no track (not found, or rejected by the detector or the preamble check)\n");
            continue;
        }
        printf("%s BR%d, detector start %+.3f s end %+.3f s carrier %+.1f Hz",
               rx_undecoded_name(best->reason), best->baud, best->t_start_s - t->t_start_s,
               best->t_end_s - t->t_end_s, best->freq_hz - t->freq_hz);
        if (best->soft)
            printf("; demodulator start %+.1f symbols carrier %+.1f Hz",
                   (best->soft_t_start_s - t->t_start_s) * t->baud,
                   best->soft_freq_hz - t->freq_hz);
        printf("\n");
    }
}

/* Sensitivity through the whole receiver. Eight lanes in time, each a sequence of frames
 * (or 3-replica messages) one after the other, so eight are on air at once; every burst,
 * every replica included, at a carrier uniformly random over the band (two can follow
 * each other within a few hundred hertz, as in a real cell). The bauds listed are mixed
 * in one capture, `count` frames (messages) of each; payloads from the classes of
 * simpayload.h (`classes`) or random bytes filling a `clen`-byte container. pts[i]
 * receives the figures of bauds[i], per payload class too. */
static void run_pipeline_point(uint64_t seed, const int *bauds, int nbaud, int clen, bool classes,
                               bool combined, point_t **pts, long count)
{
    enum { LANES = 8 };
    const double rate = g_pipeline_rate;
    double ebn0 = pts[0]->ebn0_db;
    long total = count * nbaud;
    typedef struct {
        ul_message_t m;
        uint8_t key[16];
        int cls, bi;
        double t;
    } plan_t;
    plan_t *pl = calloc((size_t)total, sizeof *pl);
    if (!pl) {
        fprintf(stderr, "sigfox-bench: out of memory\n");
        exit(EXIT_FAIL);
    }
    int mix = classes ? 2 : nbaud == 1 ? bauds[0] : 0;
    prng_t r;
    prng_seed(&r, point_seed(seed, mix, clen, combined ? 13 : 11, ebn0), 0);
    double lane_t[LANES], end_max = 0;
    for (int i = 0; i < LANES; i++)
        lane_t[i] = 1.0 + 0.3 * prng_uniform(&r);
    for (long i = 0; i < total; i++) {
        plan_t *p = &pl[i];
        int lane = (int)(i % LANES);
        p->bi = (int)((i + i / LANES) % nbaud);
        int baud = bauds[p->bi];
        if (classes) {
            p->cls = mix_message(&r, &p->m, p->key);
        } else {
            random_message(&r, (size_t)clen, &p->m, p->key);
            p->cls = SIM_PAYLOAD_RANDOM;
        }
        int len = ul_container_len(&p->m);
        double dur = (double)(UL_HEADER_BITS + ul_body_bits(len > 0 ? (size_t)len : 8) + 4) / baud;
        p->t = lane_t[lane];
        /* replicas 0.1-0.5 s apart, then 0.2-0.5 s to the lane's next message */
        lane_t[lane] = p->t + (combined ? 3 * dur + 2 * 0.5 : dur) + 0.2 + 0.3 * prng_uniform(&r);
        end_max = fmax(end_max, lane_t[lane]);
    }
    synth_t *s = new_synth(rate, end_max + 1.0, point_seed(seed, mix, clen, 17, ebn0));
    run_log_t l = {0};
    for (long i = 0; i < total; i++) {
        plan_t *p = &pl[i];
        double t = p->t;
        for (int rank = 1; rank <= (combined ? 3 : 1); rank++) {
            double f = rc_get(1)->ul_center_hz + (2 * prng_uniform(&r) - 1) * BAND_HALF_HZ;
            double end = add_burst(s, &l, &r, bauds[p->bi], (size_t)clen, &p->m, p->key, rank,
                                   combined ? 3 : 1, t, f, ebn0);
            if (end < 0) {
                fprintf(stderr, "sigfox-bench: a burst does not fit the capture\n");
                exit(EXIT_FAIL);
            }
            l.truth[l.ntruth - 1].cls = p->cls;
            /* replicas of a U-procedure: independent carriers, gaps 0.1-0.5 s */
            t = end + 0.1 + 0.4 * prng_uniform(&r);
        }
    }
    run_result_t res = {0};
    run_rx(s, rate, &l, &res);
    if (!combined) {
        size_t matched = 0;
        match_frames(&l, &matched, NULL);
        for (size_t i = 0; i < l.ntruth; i++) {
            const truth_burst_t *tb = &l.truth[i];
            point_t *pt = pts[tb->baud == bauds[0] ? 0 : 1];
            bool clash = false;
            for (size_t j = 0; j < l.ntruth && !clash; j++) {
                const truth_burst_t *o = &l.truth[j];
                clash = j != i && o->t_start_s < tb->t_end_s && tb->t_start_s < o->t_end_s &&
                        fabs(o->freq_hz - tb->freq_hz) < o->baud + tb->baud;
            }
            if (clash) {
                pt->collided++;
                pt->collided_errors += !tb->matched;
                continue;
            }
            if (!tb->matched && g_verbose) {
                /* what was around it: the nearest carrier on air at the same time, and the
                   nearest burst in carrier that ends or starts within 1 s of it */
                double on_df = INFINITY, near_df = INFINITY, near_dt = 0;
                int on_baud = 0;
                for (size_t j = 0; j < l.ntruth; j++) {
                    const truth_burst_t *o = &l.truth[j];
                    double df = fabs(o->freq_hz - tb->freq_hz);
                    if (j == i)
                        continue;
                    if (o->t_start_s < tb->t_end_s && tb->t_start_s < o->t_end_s) {
                        if (df < on_df) {
                            on_df = df;
                            on_baud = o->baud;
                        }
                    } else if (fabs(o->t_start_s - tb->t_end_s) < 1 ||
                               fabs(tb->t_start_s - o->t_end_s) < 1) {
                        if (df < near_df) {
                            near_df = df;
                            near_dt = o->t_start_s >= tb->t_end_s ? o->t_start_s - tb->t_end_s
                                                                  : o->t_end_s - tb->t_start_s;
                        }
                    }
                }
                printf("  %6s lost: BR%d %s rank %d t %.3f-%.3f f %+.0f Hz; nearest on air %.0f Hz "
                       "(BR%d); nearest within 1 s %.0f Hz (gap %+.2f s)\n",
                       "", tb->baud, sim_payload_class_name(tb->cls), tb->rank, tb->t_start_s,
                       tb->t_end_s, tb->freq_hz - rc_get(1)->ul_center_hz, on_df, on_baud, near_df,
                       near_dt);
            }
            pt->frames++;
            pt->cls_frames[tb->cls]++;
            if (tb->matched) {
                pt->fcount++;
                pt->ferr2 += tb->df * tb->df;
            } else {
                pt->errors++;
                pt->cls_errors[tb->cls]++;
            }
        }
    } else {
        size_t matched = 0;
        if (g_verbose) /* which replicas of a lost message were decoded */
            match_frames(&l, &matched, NULL);
        for (long i = 0; i < total; i++) {
            point_t *pt = pts[pl[i].bi];
            bool ok = false;
            for (size_t k = 0; k < l.nmsgs && !ok; k++)
                if (ul_message_equal(&l.msgs[k], &pl[i].m)) {
                    ok = true;
                    pt->msg_joint += l.combined[k];
                }
            pt->msgs++;
            pt->cls_msgs[pl[i].cls]++;
            if (!ok) {
                pt->msg_errors++;
                pt->cls_msg_errors[pl[i].cls]++;
                if (g_verbose)
                    print_lost_replicas(&l, &l.truth[3 * i]);
            }
        }
    }
    free(pl);
    run_log_free(&l);
    synth_destroy(s);
}

/* One point's row: Eb/N0, [baud,] FER, carrier error, message loss, ideal references for
 * nb bits. */
static void print_row(const point_t *p, int baud, bool single, bool combined, int nb)
{
    char s1[64] = "-", s2[64] = "-", s3[64] = "-", sb[16] = "";
    double e = p->ebn0_db;
    if (single)
        snprintf(s1, sizeof s1, "%.4f (%ld/%ld)", (double)p->errors / (double)p->frames, p->errors,
                 p->frames);
    if (p->fcount)
        snprintf(s3, sizeof s3, "%.2f Hz", sqrt(p->ferr2 / (double)p->fcount));
    if (combined)
        snprintf(s2, sizeof s2, "%.4f (%ld/%ld, %ld)", (double)p->msg_errors / (double)p->msgs,
                 p->msg_errors, p->msgs, p->msg_joint);
    if (baud)
        snprintf(sb, sizeof sb, " %5d", baud);
    printf("  %6.2f%s %22s %12s %26s %10.2e %10.2e\n", e, sb, s1, s3, s2, fer_coherent(e, nb),
           fer_differential(e, nb));
}

/* Loss per payload class of one point: "random 0/57  zeros 1/60 ..." */
static void print_classes(const point_t *p, bool combined)
{
    printf("  %6s %-9s", "", combined ? "messages" : "frames");
    for (int c = 0; c < SIM_PAYLOAD_CLASSES; c++) {
        long n = combined ? p->cls_msgs[c] : p->cls_frames[c];
        long e = combined ? p->cls_msg_errors[c] : p->cls_errors[c];
        if (n)
            printf(" %s %ld/%ld", sim_payload_class_name(c), e, n);
    }
    if (!combined)
        printf("; collided (left out) %ld/%ld", p->collided_errors, p->collided);
    printf("\n");
}

/* ---- --reference: the decoders of a message's replicas at symbol level ---- */

/* log I0(x) (Abramowitz & Stegun 9.8.1/9.8.2, relative error < 2e-7). */
static double log_i0(double x)
{
    x = fabs(x);
    if (x < 3.75) {
        double t = (x / 3.75) * (x / 3.75);
        return log(1 + t * (3.5156229 + t * (3.0899424 + t * (1.2067492 +
                   t * (0.2659732 + t * (0.0360768 + t * 0.0045813))))));
    }
    double t = 3.75 / x;
    return x - 0.5 * log(x) +
           log(0.39894228 + t * (0.01328592 + t * (0.00225319 + t * (-0.00157565 +
               t * (0.00916281 + t * (-0.02057706 + t * (0.02635537 +
               t * (-0.01647633 + t * 0.00392377))))))));
}

enum { REF_DIFF, REF_COHDIFF, REF_JOINT, REF_JOINT_EST, REF_CURVES };
static const char *const ref_names[REF_CURVES] = {
    "differential LLR + Viterbi", "coherent LLR, diff.-decoded + Viterbi",
    "joint coherent ML (perfect phase)", "joint coherent, estimated phase+freq"};

/* One point: n messages of three replicas, each replica y_k = s_k e^{j(φ + 2π f k)} +
 * complex AWGN (Es/N0 = Eb/N0: one bit per symbol), φ uniform, f uniform in ±fres cycles
 * per symbol (the carrier left after the demodulator's estimate; the perfect-phase curves
 * get the true φ and f). Lost: no message, or not the one sent. */
static void run_reference_point(uint64_t seed, int baud, int clen, double ebn0_db, double fres,
                                long max_msgs, long max_errors, point_t pt[REF_CURVES])
{
    prng_t r;
    prng_seed(&r, point_seed(seed, baud, clen, 5, ebn0_db), 0);
    size_t n = ul_joint_symbols((size_t)clen), nb = ul_body_bits((size_t)clen);
    double n0 = pow(10.0, -ebn0_db / 10.0), sigma = sqrt(n0 / 2);
    ul_joint_iq_config_t jcfg = {.max_freq_cyc_sym = fres > 0 ? 1.5 * fres : -1};
    for (int c = 0; c < REF_CURVES; c++) {
        memset(&pt[c], 0, sizeof pt[c]);
        pt[c].ebn0_db = ebn0_db;
    }
    for (long i = 0; i < max_msgs; i++) {
        long least = max_errors;
        for (int c = 0; c < REF_CURVES; c++)
            least = pt[c].msg_errors < least ? pt[c].msg_errors : least;
        if (least >= max_errors)
            break;
        ul_message_t m;
        uint8_t key[16], frame[UL_MAX_FRAME_BYTES];
        random_message(&r, (size_t)clen, &m, key);
        if (ul_frame_encode(&m, key, 1, frame, sizeof frame) < 0) {
            fprintf(stderr, "sigfox-bench: could not encode a frame\n");
            exit(EXIT_FAIL);
        }
        static float sym_llr[3][UL_HEADER_BITS + UL_CODE_MAX_BITS];
        static float bit_diff[3][UL_CODE_MAX_BITS], bit_coh[3][UL_CODE_MAX_BITS];
        static float complex y[3][UL_HEADER_BITS + UL_CODE_MAX_BITS];
        for (int rk = 0; rk < 3; rk++) {
            float s[UL_HEADER_BITS + UL_CODE_MAX_BITS];
            ul_joint_symbols_of(rk + 1, frame + UL_HEADER_BYTES, (size_t)clen, false, s,
                                UL_HEADER_BITS + UL_CODE_MAX_BITS);
            double ph = 2 * M_PI * prng_uniform(&r);
            double f = fres * (2 * prng_uniform(&r) - 1);
            for (size_t k = 0; k < n; k++) {
                double nr = sigma * prng_gauss(&r);
                double ni = sigma * prng_gauss(&r);
                double complex v = s[k] + nr + I * ni; /* phase-aligned */
                sym_llr[rk][k] = (float)(4.0 * creal(v) / n0);
                y[rk][k] = (float complex)(v * cexp(I * (ph + 2 * M_PI * f * (double)k)));
            }
            for (size_t k = 0; k < nb; k++) {
                size_t j = UL_HEADER_BITS + k;
                double complex a = y[rk][j], b0 = y[rk][j - 1];
                bit_diff[rk][k] = (float)(log_i0(2.0 * cabs(a + b0) / n0) -
                                          log_i0(2.0 * cabs(a - b0) / n0));
                bit_coh[rk][k] = ul_llr_boxplus(sym_llr[rk][j], sym_llr[rk][j - 1]);
            }
        }
        const float *in_diff[3] = {bit_diff[0], bit_diff[1], bit_diff[2]};
        const float *in_coh[3] = {bit_coh[0], bit_coh[1], bit_coh[2]};
        const float *in_sym[3] = {sym_llr[0], sym_llr[1], sym_llr[2]};
        const float complex *in_y[3] = {y[0], y[1], y[2]};
        ul_frame_t f;
        bool ok[REF_CURVES];
        ok[REF_DIFF] = ul_frame_decode_joint(in_diff, (size_t)clen, false, &f) == 0 &&
                       frame_matches(&f, &m);
        ok[REF_COHDIFF] = ul_frame_decode_joint(in_coh, (size_t)clen, false, &f) == 0 &&
                          frame_matches(&f, &m);
        ok[REF_JOINT] = ul_joint_decode_frame(in_sym, (size_t)clen, false, &f) == 0 &&
                        frame_matches(&f, &m);
        ok[REF_JOINT_EST] = ul_joint_decode_iq(in_y, (size_t)clen, false, &jcfg, &f, NULL) == 0 &&
                            frame_matches(&f, &m);
        for (int c = 0; c < REF_CURVES; c++) {
            pt[c].msgs++;
            pt[c].msg_errors += !ok[c];
        }
    }
}

/* sigfox-bench sensitivity --reference: message loss of three replicas per decoder. */
static int run_reference(uint64_t seed, const int *bauds, int nbaud, const int *clens, int nclen,
                         double lo, double hi, double step, long max_msgs, long max_errors,
                         double fres_hz)
{
    printf("# reference decoders of three-replica messages at symbol level (known burst "
           "positions and timing, no demodulator): up to %ld messages per point, stop when "
           "every curve has %ld errors; seed %llu\n",
           max_msgs, max_errors, (unsigned long long)seed);
    printf("# each replica: coherent matched-filter symbols, Es/N0 = Eb/N0, random phase; "
           "estimated-phase curve: residual carrier uniform in +-%.3g Hz, phase and "
           "frequency estimated (uljoint.h)\n",
           fres_hz);
    static point_t pts[2][5][MAX_POINTS][REF_CURVES];
    int np = 0;
    for (int bi = 0; bi < nbaud; bi++)
        for (int ci = 0; ci < nclen; ci++) {
            double fres = fres_hz / bauds[bi];
            printf("\n## BR%d, %d-byte container: 3-replica message loss (err/n)\n", bauds[bi],
                   clens[ci]);
            printf("# %6s", "Eb/N0");
            for (int c = 0; c < REF_CURVES; c++)
                printf(" %22.22s", ref_names[c]);
            printf("\n");
            np = 0;
            for (double e = lo; e <= hi + 1e-9 && np < MAX_POINTS; e += step, np++) {
                point_t *p = pts[bi][ci][np];
                run_reference_point(seed, bauds[bi], clens[ci], e, fres, max_msgs, max_errors, p);
                printf("  %6.2f", e);
                for (int c = 0; c < REF_CURVES; c++) {
                    char cell[48];
                    snprintf(cell, sizeof cell, "%.4f (%ld/%ld)",
                             (double)p[c].msg_errors / (double)p[c].msgs, p[c].msg_errors,
                             p[c].msgs);
                    printf(" %22s", cell);
                }
                printf("\n");
                fflush(stdout);
            }
        }
    printf("\n## Message loss 10 %% per replica (Eb/N0 of each of the three replicas)\n");
    for (int bi = 0; bi < nbaud; bi++)
        for (int ci = 0; ci < nclen; ci++)
            for (int c = 0; c < REF_CURVES; c++) {
                point_t curve[MAX_POINTS];
                for (int i = 0; i < np; i++)
                    curve[i] = pts[bi][ci][i][c];
                char what[96];
                snprintf(what, sizeof what, "BR%d %d B %s", bauds[bi], clens[ci], ref_names[c]);
                print_crossing(what, crossing(curve, np, true, 0.10),
                               c == REF_JOINT_EST ? 0.0 : NAN, true);
            }
    return 0;
}

static int cmd_sensitivity(int argc, char **argv)
{
    int bauds[2] = {100, 600}, nbaud = 2;
    int clens[5] = {12, 20}, nclen = 2;
    double lo = 0, hi = 12, step = 1;
    long max_frames = 2000, max_errors = 100;
    uint64_t seed = 1;
    bool single = true, combined = true;
    double reversal_tx = 1.0;
    double start_window = 3.0;
    const char *plot = NULL;
    bool pipeline = false;
    int payloads = -1; /* 1: classes, 0: random bytes, -1: classes with --pipeline */
    bool container_given = false;
    bool reference = false, joint_coherent = false;
    double fres_hz = 0.3;
    static const struct option opts[] = {{"pipeline", no_argument, 0, 'P'},
                                         {"rate", required_argument, 0, 'r'},
                                         {"reference", no_argument, 0, 'R'},
                                         {"joint-coherent", no_argument, 0, 'J'},
                                         {"residual-hz", required_argument, 0, 'F'},
                                         {"verbose", no_argument, 0, 'V'},
                                         {"chase-trials", required_argument, 0, 'C'},
                                         {"threshold-db", required_argument, 0, 'T'},
                                         {"payloads", required_argument, 0, 'L'},
                                         {"fill", required_argument, 0, 'f'},
                                         {"equal-amplitude", no_argument, 0, 'A'},
                                         {"baud", required_argument, 0, 'b'},
                                         {"container", required_argument, 0, 'c'},
                                         {"ebn0", required_argument, 0, 'e'},
                                         {"frames", required_argument, 0, 'n'},
                                         {"errors", required_argument, 0, 'E'},
                                         {"seed", required_argument, 0, 's'},
                                         {"single-only", no_argument, 0, '1'},
                                         {"combined-only", no_argument, 0, '3'},
                                         {"reversal-tx", required_argument, 0, 'w'},
                                         {"start-window", required_argument, 0, 'S'},
                                         {"plot", required_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            nbaud = parse_int_list(optarg, bauds, 2, "--baud");
            for (int i = 0; i < nbaud; i++)
                if (bauds[i] != 100 && bauds[i] != 600)
                    usage_error("--baud: %s (100 or 600)", optarg);
            break;
        case 'V':
            g_verbose = true;
            break;
        case 'f':
            g_fill = (int)parse_long(optarg, 0, 255, "--fill");
            break;
        case 'A':
            g_equal_amplitude = true;
            break;
        case 'C':
            g_chase_trials =
                (int)parse_long(optarg, 0, ULDECODE_CHASE_MAX_TRIALS, "--chase-trials");
            break;
        case 'T':
            g_threshold_db = parse_double(optarg, 0.5, 30, "--threshold-db");
            break;
        case 'r': {
            double v[1];
            parse_rate_list(optarg, v, 1);
            g_pipeline_rate = v[0];
            break;
        }
        case 'L':
            if (!strcmp(optarg, "classes"))
                payloads = 1;
            else if (!strcmp(optarg, "random"))
                payloads = 0;
            else
                usage_error("--payloads: %s (classes or random)", optarg);
            break;
        case 'c':
            container_given = true;
            nclen = parse_int_list(optarg, clens, 5, "--container");
            for (int i = 0; i < nclen; i++)
                if (ul_ft_value((size_t)clens[i], false, 1) == 0)
                    usage_error("--container: %s (8, 9, 12, 16 or 20)", optarg);
            break;
        case 'e':
            if (sscanf(optarg, "%lf:%lf:%lf", &lo, &hi, &step) != 3 || !(step > 0) || !(hi >= lo) ||
                (hi - lo) / step + 1 > MAX_POINTS || lo < -10 || hi > 40)
                usage_error("--ebn0: %s (LO:HI:STEP, at most 64 points, -10..40 dB)", optarg);
            break;
        case 'n':
            max_frames = parse_long(optarg, 1, 100000000, "--frames");
            break;
        case 'E':
            max_errors = parse_long(optarg, 1, 100000000, "--errors");
            break;
        case 's':
            seed = parse_seed(optarg);
            break;
        case '1':
            combined = false;
            break;
        case '3':
            single = false;
            break;
        case 'w':
            reversal_tx = parse_double(optarg, 0.01, 1.0, "--reversal-tx");
            break;
        case 'S':
            start_window = parse_double(optarg, 3.0, 60.0, "--start-window");
            break;
        case 'p':
            plot = optarg;
            break;
        case 'P':
            pipeline = true;
            break;
        case 'R':
            reference = true;
            break;
        case 'J':
            joint_coherent = true;
            break;
        case 'F':
            fres_hz = parse_double(optarg, 0, 10, "--residual-hz");
            break;
        default: {
            int rc = cli_common_opt(c, PROG, usage_text, argv);
            return rc < 0 ? 0 : rc;
        }
        }
    }
    if (optind < argc)
        usage_error("unexpected argument: %s", argv[optind]);
    if (!single && !combined)
        usage_error("%s", "--single-only and --combined-only exclude each other");
    if (joint_coherent && (pipeline || reference || !combined))
        usage_error("%s", "--joint-coherent applies to the direct three-replica runs");
    if (reference && (pipeline || payloads > 0 || !combined || reversal_tx != 1.0))
        usage_error("%s", "--reference runs alone (no --pipeline, --payloads, --single-only, "
                          "--reversal-tx)");
    if (g_equal_amplitude && (pipeline || reference))
        usage_error("%s", "--equal-amplitude applies to the direct runs (the synthesizer sets "
                          "each burst's level in --pipeline runs)");
    if (reference) {
        print_machine();
        if (g_fill >= 0)
            printf("# payload: every byte 0x%02X (--fill)\n", g_fill);
        return run_reference(seed, bauds, nbaud, clens, nclen, lo, hi, step, max_frames,
                             max_errors, fres_hz);
    }
    if (payloads < 0)
        payloads = pipeline;
    if (payloads && !pipeline)
        usage_error("%s", "--payloads classes needs --pipeline (the direct runs send random "
                          "bytes in --container containers)");
    if (payloads && container_given)
        usage_error("%s", "--container applies to --payloads random (the classes choose "
                          "their own sizes, 0-12 bytes)");
    if (payloads)
        nclen = 1, clens[0] = 0; /* one curve per baud: the mix of classes and sizes */
    if (payloads && g_fill >= 0)
        usage_error("%s", "--fill replaces random bytes: with --pipeline it needs --payloads "
                          "random");
    if ((pipeline || reference) && start_window != 3.0)
        usage_error("%s", "--start-window applies to the direct runs only");
    if (pipeline && reversal_tx != 1.0)
        usage_error("%s", "--reversal-tx applies to the direct runs only (the synthesizer "
                          "chooses the dip width in --pipeline runs)");
    print_machine();

    bench_rx_t b = {
        .reversal_tx = reversal_tx, .start_window = start_window, .joint_coherent = joint_coherent};
    demod_sync_t sync[DEMOD_MAX_SYNC_WORDS];
    size_t nsync = uldecode_sync_words(sync, DEMOD_MAX_SYNC_WORDS);
    for (int i = 0; i < 2; i++) {
        demod_config_t dc = {
            .baud = i ? 600 : 100, .max_samples = MAX_SNIPPET, .sync = sync, .nsync = nsync};
        b.demod[i] = demod_create(&dc);
    }
    b.x = malloc(MAX_SNIPPET * sizeof *b.x);
    b.keys = keystore_create();
    static curve_t cv[4 * 5];
    if (!b.demod[0] || !b.demod[1] || !b.x || !b.keys) {
        fprintf(stderr, "sigfox-bench: out of memory\n");
        return EXIT_FAIL;
    }

    if (pipeline)
        printf("# sensitivity through the whole receiver (rx.h) at %g kS/s: %ld frames "
               "(messages) per point, 8 at a time at random carriers across the band; "
               "seed %llu\n",
               g_pipeline_rate / 1e3, max_frames, (unsigned long long)seed);
    else
        printf("# sensitivity: up to %ld frames (messages) per point, stop at %ld "
               "errors; seed "
               "%llu\n",
               max_frames, max_errors, (unsigned long long)seed);
    if (pipeline)
        printf("# bursts: drift uniform in +-30 Hz/s (BR100) / +-100 Hz/s (BR600), "
               "random phase, "
               "rate error +-0.1 %%, lead/tail 0-1, ramps 0.5-1 symbol; replicas "
               "0.1-0.5 s "
               "apart on independent carriers; the receiver's own detector finds "
               "them\n# single-frame FER over the bursts no other burst overlaps in time "
               "within the sum of their symbol rates in carrier (collisions are counted "
               "apart: a capacity matter)\n");
    else
        printf("# bursts: carrier uniform in +-baud/2, drift uniform in +-30 Hz/s "
               "(BR100) / "
               "+-100 Hz/s (BR600), random phase, rate error +-0.1 %%, lead/tail "
               "0-2, ramps, "
               "detector start error +-2 symbols, searched within +-%.0f; transmitter dip "
               "width %.2f symbols\n",
               start_window, reversal_tx);
    if (g_fill >= 0)
        printf("# payload: every byte 0x%02X (--fill)\n", g_fill);
    if (g_equal_amplitude)
        printf("# Eb/N0 of the device's amplitude (mean power of random bits), not of each "
               "burst's data power (--equal-amplitude)\n");
    int ncv = 0;
    double t_start = cpu_seconds();
    if (payloads) {
        /* every baud in one capture per point, payload classes mixed */
        printf("# payloads: classes of simpayload.h, each equally likely (random, zeros, ones, "
               "alternating, counter: 0-12 bytes; one-bit; control), BF 20 %%; BR%d%s in one "
               "capture\n",
               bauds[0], nbaud > 1 ? " and BR600" : "");
        for (int bi = 0; bi < nbaud; bi++) {
            cv[ncv].baud = bauds[bi];
            cv[ncv].clen = 0;
            cv[ncv++].n = 0;
        }
        printf("\n## mixed payloads (12-byte references)\n");
        printf("# %6s %5s %22s %12s %26s %10s %10s\n", "Eb/N0", "baud", "single FER (err/n)",
               "f_err RMS", "3-replica loss (err/n, joint)", "coherent", "DPSK");
        int nb = UL_FT_BITS + (int)ul_body_bits(12);
        for (double e = lo; e <= hi + 1e-9 && cv[0].n < MAX_POINTS; e += step) {
            point_t *pp[2];
            for (int bi = 0; bi < nbaud; bi++) {
                pp[bi] = &cv[bi].pts[cv[bi].n++];
                memset(pp[bi], 0, sizeof *pp[bi]);
                pp[bi]->ebn0_db = e;
            }
            if (single)
                run_pipeline_point(seed, bauds, nbaud, 0, true, false, pp, max_frames);
            if (combined)
                run_pipeline_point(seed, bauds, nbaud, 0, true, true, pp, max_frames);
            for (int bi = 0; bi < nbaud; bi++) {
                const point_t *p = pp[bi];
                print_row(p, bauds[bi], single, combined, nb);
                if (single)
                    print_classes(p, false);
                if (combined)
                    print_classes(p, true);
            }
            fflush(stdout);
        }
    }
    for (int bi = 0; bi < nbaud && !payloads; bi++)
        for (int ci = 0; ci < nclen; ci++) {
            curve_t *k = &cv[ncv++];
            k->baud = bauds[bi];
            k->clen = clens[ci];
            int nb = UL_FT_BITS + (int)ul_body_bits((size_t)k->clen);
            printf("\n## BR%d, %d-byte container (%d bits after the preamble)\n", k->baud, k->clen,
                   nb);
            printf("# %6s %22s %12s %26s %10s %10s\n", "Eb/N0", "single FER (err/n)", "f_err RMS",
                   "3-replica loss (err/n, joint)", "coherent", "DPSK");
            for (double e = lo; e <= hi + 1e-9 && k->n < MAX_POINTS; e += step) {
                point_t *p = &k->pts[k->n++];
                memset(p, 0, sizeof *p);
                p->ebn0_db = e;
                if (single && pipeline)
                    run_pipeline_point(seed, &k->baud, 1, k->clen, false, false, &p, max_frames);
                else if (single)
                    run_single(&b, seed, k->baud, k->clen, p, max_frames, max_errors);
                if (combined && pipeline)
                    run_pipeline_point(seed, &k->baud, 1, k->clen, false, true, &p, max_frames);
                else if (combined)
                    run_combined(&b, seed, k->baud, k->clen, p, max_frames, max_errors);
                print_row(p, 0, single, combined, nb);
                if (combined && b.joint_coherent)
                    printf("  %6s joint coherent: %ld CRC-valid in the assembler (failed "
                           "bursts with a readable FT), %ld more from all three replicas\n",
                           "", p->asm_coherent, p->msg_coherent);
                if (single && pipeline)
                    printf("  %6s collided bursts (left out of the FER) lost: %ld/%ld\n", "",
                           p->collided_errors, p->collided);
                fflush(stdout);
            }
        }
    double cpu = cpu_seconds() - t_start;
    if (!pipeline)
        printf("\n# %ld bursts demodulated, %.3f ms CPU per burst in demod+decode "
               "(%.1f s total "
               "incl. synthesis)\n",
               b.bursts, b.bursts ? b.cpu_demod_s / (double)b.bursts * 1e3 : 0.0, cpu);
    if (b.joint_runs)
        printf("# %ld joint coherent decodings, %.3f ms CPU each\n", b.joint_runs,
               b.cpu_joint_s / (double)b.joint_runs * 1e3);

    /* Figures against the targets (issue 4). */
    printf("\n## Targets\n");
    double br100_10 = NAN, br600_10 = NAN;
    for (int i = 0; i < ncv; i++) {
        const curve_t *k = &cv[i];
        char what[96];
        bool is_target = k->baud == 100 && k->clen == 12;
        if (k->clen == 0) {
            /* the realistic mix (issue 10) */
            if (single) {
                snprintf(what, sizeof what, "BR%d mixed payloads: frame loss 10%% at", k->baud);
                print_crossing(what, crossing(k->pts, k->n, false, 0.10),
                               k->baud == 600 ? 7.5 : 7.0, true);
                snprintf(what, sizeof what, "BR%d mixed payloads: frame loss 1%% at", k->baud);
                print_crossing(what, crossing(k->pts, k->n, false, 0.01),
                               k->baud == 600 ? 10.0 : NAN, true);
                for (int j = 0; j < k->n; j++) {
                    const point_t *p = &k->pts[j];
                    if (fabs(p->ebn0_db - 15) > 1e-9)
                        continue;
                    double worst = 0;
                    int wc = 0;
                    for (int c = 0; c < SIM_PAYLOAD_CLASSES; c++)
                        if (p->cls_frames[c] &&
                            (double)p->cls_errors[c] / (double)p->cls_frames[c] >= worst) {
                            worst = (double)p->cls_errors[c] / (double)p->cls_frames[c];
                            wc = c;
                        }
                    snprintf(what, sizeof what, "BR%d frame loss at 15 dB, worst class (%s)",
                             k->baud, sim_payload_class_name(wc));
                    printf("  %-52s %5.3f %%  (target <= 0.5 %%: %s)\n", what, 100 * worst,
                           worst <= 0.005 ? "met" : "NOT met");
                }
            }
            if (combined) {
                snprintf(what, sizeof what, "BR%d mixed payloads: message loss 10%% at", k->baud);
                print_crossing(what, crossing(k->pts, k->n, true, 0.10), 3.5, true);
            }
            continue;
        }
        if (single) {
            double x10 = crossing(k->pts, k->n, false, 0.10);
            double x1 = crossing(k->pts, k->n, false, 0.01);
            snprintf(what, sizeof what, "BR%d %d B single frame: FER 10%% at", k->baud, k->clen);
            print_crossing(what, x10, is_target ? 8.5 : NAN, true);
            snprintf(what, sizeof what, "BR%d %d B single frame: FER 1%% at", k->baud, k->clen);
            print_crossing(what, x1, is_target ? 10.0 : NAN, true);
            if (k->clen == 12 && k->baud == 100)
                br100_10 = x10;
            if (k->clen == 12 && k->baud == 600)
                br600_10 = x10;
            int nb = UL_FT_BITS + (int)ul_body_bits((size_t)k->clen);
            /* Ideal references at 10 %, by bisection. */
            double ref[2];
            for (int r = 0; r < 2; r++) {
                double a = -5, z = 20;
                for (int it = 0; it < 60; it++) {
                    double m = (a + z) / 2;
                    double v = r == 0 ? fer_coherent(m, nb) : fer_differential(m, nb);
                    if (v > 0.10)
                        a = m;
                    else
                        z = m;
                }
                ref[r] = (a + z) / 2;
            }
            printf("  %-52s %5.2f / %5.2f dB\n", "  ideal coherent / differential at 10%", ref[0],
                   ref[1]);
            double worst = 0;
            int npts = 0;
            for (int j = 0; j < k->n; j++)
                if (k->pts[j].ebn0_db >= 10 && k->pts[j].fcount) {
                    worst = fmax(worst, sqrt(k->pts[j].ferr2 / (double)k->pts[j].fcount));
                    npts++;
                }
            snprintf(what, sizeof what, "BR%d %d B carrier error RMS at >= 10 dB (worst point)",
                     k->baud, k->clen);
            if (npts)
                printf("  %-52s %5.2f Hz   (target <= 10 Hz: %s)\n", what, worst,
                       worst <= 10 ? "met" : "NOT met");
            else
                printf("  %-52s no decoded frame at >= 10 dB in the range\n", what);
        }
        if (combined) {
            double x = crossing(k->pts, k->n, true, 0.10);
            snprintf(what, sizeof what, "BR%d %d B 3 replicas combined: loss 10%% at", k->baud,
                     k->clen);
            print_crossing(what, x, k->baud == 100 && k->clen == 12 ? 4.0 : NAN, true);
            if (b.joint_coherent) {
                /* the receiver's path alone: the assembler with its coherent fallback,
                   without the bench's decoding of all three replicas */
                point_t asm_pts[MAX_POINTS];
                for (int j = 0; j < k->n; j++) {
                    asm_pts[j] = k->pts[j];
                    asm_pts[j].msg_errors += k->pts[j].msg_coherent;
                }
                snprintf(what, sizeof what, "BR%d %d B assembler path only: loss 10%% at",
                         k->baud, k->clen);
                print_crossing(what, crossing(asm_pts, k->n, true, 0.10), NAN, true);
            }
        }
    }
    if (single && !isnan(br100_10) && !isnan(br600_10) && isfinite(br100_10) && isfinite(br600_10))
        printf("  %-52s %5.2f dB   (target <= 1 dB: %s)\n", "BR600 - BR100 at FER 10% (12 B)",
               br600_10 - br100_10, br600_10 - br100_10 <= 1.0 ? "met" : "NOT met");

    int rc = 0;
    if (plot) {
        if (write_plot(plot, cv, ncv, single, combined, lo, hi) == 0)
            printf("\n# plot written to %s\n", plot);
        else
            rc = EXIT_FAIL;
    }
    demod_destroy(b.demod[0]);
    demod_destroy(b.demod[1]);
    keystore_destroy(b.keys);
    free(b.x);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : 0;
    }
    g_argc = argc;
    g_argv = argv;
    if (!strcmp(argv[1], "sensitivity"))
        return cmd_sensitivity(argc - 1, argv + 1);
    if (!strcmp(argv[1], "throughput"))
        return cmd_throughput(argc - 1, argv + 1);
    if (!strcmp(argv[1], "capacity"))
        return cmd_capacity(argc - 1, argv + 1);
    if (!strcmp(argv[1], "false-frames"))
        return cmd_false_frames(argc - 1, argv + 1);
    return cli_usage_error(PROG, "unknown command: %s", argv[1]);
}
