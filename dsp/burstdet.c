/* burstdet: two-class CFAR burst detector on the channelizer grid. Licence: MIT. */
#include "burstdet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define NCLASS 2
/* A candidate is "wide" when both flanks carry this fraction of its excess per bin. */
#define FLANK_FRAC 0.35
/* A BR600 candidate is "narrow" when its centre 125 Hz hold this share of its excess. */
#define CONCENTRATION_MAX 0.6
/* Part of a wider signal when both wide-context bands (BR100: 250-1000 Hz, BR600:
 * 1.2-3 kHz from the centre; Table 2-8 allows a burst at most -35..-45 dBc there) carry
 * this fraction of the core's excess per bin. */
#define CONTEXT_FRAC 0.1
/* Each context band is judged by the emptiest of this many equal sub-bands: a wide
 * signal fills all of them, while another burst nearby (at N = 100 bursts in the band a
 * BR100 burst has one within 250-1000 Hz on both sides 12 % of the time) fills one or
 * two, and must not get the burst between them rejected. */
#define CONTEXT_SUBBANDS 3
/* A BR100 track stays open while its box keeps this share of the opening threshold's
 * excess: at low SNR its box (50 cells) wanders around the threshold, and a burst must not
 * split. BR600 boxes (105 cells) are steadier, and hysteresis there would bridge the
 * pauses between an FSK interferer's packets. */
#define HYSTERESIS 0.6
/* BR600 tracks open and continue at this share of the threshold's excess (3.0 dB at the
 * default 3.5 dB): the BR600 box has twice the cells of the BR100 box (105 against 50),
 * so its noise is ~0.7x as large at the same threshold. At 1 dB Eb/N0 it found too few
 * BR600 replicas: a fifth of those of the lost messages had no track (sigfox-bench
 * sensitivity --pipeline --combined-only --baud 600 --verbose). */
#define BR600_EXCESS 0.8
/* Weak BR100 bursts open tracks on a box three times as long (0.6 s: its noise is ~1.7x
 * smaller) at LONG_EXCESS of the threshold's excess (2.4 dB at the default 3.5 dB): at
 * 0 dB Eb/N0 the short box finds 29 of 40 bursts, the long one 39 (BURSTDET_SWEEP). Such
 * a candidate must be on now (its short box at the weak keep level) and even over the
 * long box (not the fading tail of a stronger burst that just ended on that carrier,
 * which opened tracks that swallowed the next burst there). */
#define LONG_BOX_S 0.6
#define LONG_EXCESS 0.6
/* A weak BR100 track - its box never reached WEAK_TRACK_PEAK times the opening threshold
 * (6.5 dB over the floor at the default) - stays open down to WEAK_HYSTERESIS of the
 * threshold's excess instead: at 1-3 dB Eb/N0 a burst's box dips that low for a few hops,
 * and such bursts were found in pieces, which cost most messages of the whole receiver
 * at 2 dB (sigfox-bench sensitivity --pipeline --combined-only: BR100 10 % message loss
 * 2.42 -> 2.20 dB). Strong tracks keep HYSTERESIS, so two strong bursts on one carrier
 * still part at a short pause (single frames at 4-8 dB: the same losses to the burst). */
#define WEAK_TRACK_PEAK 2.0
#define WEAK_HYSTERESIS 0.28
/* A BR600 track is the shoulder of a stronger neighbour (2-FSK tone lines next to their
 * lobes) when either flank carries this multiple of its core's excess per bin. */
#define SHOULDER_FRAC 1.5
/* A BR100 track that fails only the flank or gap test is accepted as "crowded" (several
 * bursts in one track) when its strongest 3 bins hold less than this share of its core's
 * excess (FSK packet trains show lines: 0.65-0.95, 96 % above 0.85; pairs of bursts
 * 0.42-0.83), its rms width is at most CROWDED_MAX_WIDTH_HZ (a pair 100-150 Hz apart:
 * 42-66 Hz) and its SNR at least CROWDED_MIN_SNR_DB. Measured on 600 s of the
 * false-frames scene (3 CW, 2 FSK) and 800 bursts of the capacity scene, N = 100. */
#define CROWDED_MAX_PEAK3 0.85
#define CROWDED_MAX_WIDTH_HZ 70.0
#define CROWDED_MIN_SNR_DB 8.0
/* Frame lengths of Table 3-1 (spec §3.1): preamble + FT + 8..20-byte container + CRC,
 * 112..208 bits (ranks 2 and 3 are coded to the same length); the detector's start and
 * end are each within ~3 (BR100) / 2 (BR600) hops of the truth at 6 dB and more, and
 * devices add up to 2 lead/tail symbols and ramps. */
#define FRAME_MIN_BITS 112.0
#define FRAME_MAX_BITS 208.0
#define FRAME_SLACK_S_BR100 0.15
#define FRAME_SLACK_S_BR600 0.06
/* Two bursts on nearly the same carrier, one after the other with a pause shorter than a
 * track needs to close (BR100 ~0.3 s, BR600 ~0.14 s), are one track; up to this pause
 * such a track is accepted (sequence) and the receiver looks for both. */
#define SEQ_GAP_S_BR100 0.5
#define SEQ_GAP_S_BR600 0.2
/* Lines that were there before and after a burst (a CW tone next to it, or the constant
 * part of a longer signal) are not the burst's: a bin whose s stays at least this far over
 * the floor (excess of s - 1) in every hop of the track's background - the hops before its
 * box crossed the threshold, and those after its last match - has that level subtracted
 * from the burst's mean spectrum and profile. A strong tone 600-1100 Hz from a BR600 burst
 * otherwise pulled the carrier estimate by the distance (the demodulator searches
 * +-baud around it) and failed the narrow test; noise passes 2 in a hop with probability
 * e^-3 = 5 %, in all of 3 or more such hops hardly ever. */
#define LINE_MIN_EXCESS 2.0
/* Hops below the threshold that end a track (BR100, BR600). */
#define CLOSE_MISSES_BR100 5
#define CLOSE_MISSES_BR600 2
/* Hops between exact recomputations of the running box sums. */
#define RECOMPUTE_HOPS 256
/* Extra hops kept before the box start (extraction margin). */
#define BACK_S_BR100 0.4 /* a weak BR100 burst can cross the threshold this late */
#define BACK_S_BR600 0.16
/* ... before the long box's start, for a track the long box opened: at 0-2 dB Eb/N0 its
 * 0.6 s sum can cross the threshold late in the burst, up to a longest frame (2.08 s)
 * after the burst began, and a start not backfilled is never searched (sigfox-bench
 * sensitivity --pipeline --combined-only --ebn0 1:1:1 --frames 1000, seed 1: BR100
 * messages lost 139 with 0.4 s, 88 with 2.0 s). The same for every BR100 track lost 79,
 * but shifted the detector's measurements (test_burstdet: a false track beside
 * neighbours, more crowded tracks on interferers). rx.c HIST_HOPS must hold the long box
 * and this (burstdet_backfill_hops). */
#define WEAK_BACK_S_BR100 2.0

typedef struct {
    int baud;
    int half;           /* box half width, bins */
    int width;          /* 2 half + 1 */
    int len;            /* box length, hops */
    int long_len;       /* BR100: long box for weak bursts, hops (0: none) */
    int flank;          /* flank box centre offset, bins */
    int tol;            /* association tolerance, bins */
    int spec_half;      /* spectral snapshot half width, bins */
    int core_half;      /* main-lobe half width for centroid / SNR, bins */
    int ctx_lo, ctx_hi; /* wide-context bands [ctx_lo, ctx_hi] bins on each side */
    double min_s;
    double max_seq_s;                /* longest track accepted: two frames one after the other */
    double min_frame_s, max_frame_s; /* frame durations (Table 3-1) with the detector's
                                        start/end error */
    double min_width_bins;
    double max_peak3; /* largest share of the excess in 3 adjacent bins */
    double max_width_bins;
    size_t ring; /* rows of band sums kept */
    int close_misses;
    int back;        /* hops kept before the box start (extraction margin) */
    int long_back;   /* the same before a long box's start (weak tracks) */
    int backfill;    /* most hops first_hop lies before the opening hop */
    size_t max_hops; /* profile capacity */
} class_t;

typedef struct {
    bool used;
    bool zombie;  /* rejected as too long: absorbs candidates until it fades */
    bool matched; /* matched a candidate this hop */
    uint32_t id;
    long bin;  /* current bin, index into the analysed bins */
    long bin0; /* bin at open: centre of the spectral snapshots */
    uint64_t first_hop, open_hop, last_match;
    int misses;
    double floor0; /* floor at bin0 */
    size_t nprof;  /* profile values (from first_hop) */
    float *prof;   /* max_hops excess band sums */
    float *ctx;    /* max_hops x 2 x CONTEXT_SUBBANDS: mean excess per bin of the left /
                      right context's sub-bands */
    size_t nspec;  /* snapshots (from open_hop) */
    float *spec;   /* max_hops x (2 spec_half + 1) values of s */
    float *pre;    /* 2 spec_half + 1: minimum of s over the hops before the burst's box
                      crossed the threshold (HUGE_VALF: none seen) */
    bool pre_line; /* some bin of pre is a line (LINE_MIN_EXCESS over the floor) */
    float peak;    /* BR100: largest box sum since open (weak tracks: WEAK_TRACK_PEAK) */
} track_t;

typedef struct {
    int bin;
    float b;
    bool narrow; /* BR600: most excess in the centre 125 Hz; continues a track, opens none
                    (runs of 1 bits concentrate a real burst for a few hops) */
    bool weak;   /* BR100: found by the long box only */
} cand_t;

struct burstdet {
    burstdet_config_t cfg;
    double thr;     /* linear threshold on the box mean: opens tracks */
    double thr_br600;    /* the same for BR600 boxes (BR600_EXCESS) */
    double thr_low;      /* keeps them open (hysteresis) */
    double thr_low_weak; /* keeps weak BR100 tracks open */
    class_t cls[NCLASS];
    size_t nbins;
    float *s;                /* nbins: power / floor of this hop (a row of hist) */
    double *prefix;          /* nbins + 1 */
    float *rows[NCLASS];     /* ring x nbins band sums */
    float *run[NCLASS];      /* nbins: running sum over the class box length */
    float *run100_short;     /* nbins: BR100 band sums over the BR600 box length */
    float *run100_long;      /* nbins: BR100 band sums over long_len hops */
    double thr_long;         /* long box mean that opens a weak BR100 track */
    float *hist;             /* hist_ring x nbins: s of the last hops (track backgrounds) */
    size_t hist_ring;
    track_t *tracks[NCLASS]; /* max_tracks each */
    cand_t *cands;           /* nbins */
    uint32_t next_id;
    uint64_t hops_seen; /* since reset */
    burstdet_stats_t stats;
};

static int iround(double x)
{
    return (int)lround(x);
}

static void class_setup(class_t *c, int baud, double bin_hz, double hop_s)
{
    memset(c, 0, sizeof *c);
    c->baud = baud;
    if (baud == 100) {
        c->half = iround(50 / bin_hz);
        c->len = iround(0.2 / hop_s);
        c->flank = iround(200 / bin_hz);
        c->tol = iround(75 / bin_hz); /* 30 Hz/s for 2.6 s: 78 Hz (+2 bins: open error) */
        c->core_half = iround(100 / bin_hz);
        c->min_s = 0.7;
        c->min_frame_s = FRAME_MIN_BITS / 100.0 - FRAME_SLACK_S_BR100;
        c->max_frame_s = FRAME_MAX_BITS / 100.0 + FRAME_SLACK_S_BR100;
        c->max_seq_s = 2 * c->max_frame_s + SEQ_GAP_S_BR100;
        c->close_misses = CLOSE_MISSES_BR100;
        c->min_width_bins = 25 / bin_hz;
        c->max_peak3 = 1.0;      /* a BR100 burst is itself ~3 bins wide */
        c->max_width_bins = 1e9; /* wider signals fail the flank / context tests */
        c->ctx_lo = iround(250 / bin_hz);
        c->ctx_hi = iround(1000 / bin_hz);
    } else {
        c->half = iround(250 / bin_hz);
        c->len = iround(0.1 / hop_s);
        c->flank = iround(900 / bin_hz);
        c->tol = iround(300 / bin_hz); /* the box maximum wanders on the flat lobe top */
        c->core_half = iround(600 / bin_hz);
        c->min_s = 0.16;
        c->min_frame_s = FRAME_MIN_BITS / 600.0 - FRAME_SLACK_S_BR600;
        c->max_frame_s = FRAME_MAX_BITS / 600.0 + FRAME_SLACK_S_BR600;
        c->max_seq_s = 2 * c->max_frame_s + SEQ_GAP_S_BR600;
        c->close_misses = CLOSE_MISSES_BR600;
        c->min_width_bins = 75 / bin_hz;
        /* D-BPSK-600 spreads over ~17 bins (rms 7): 3 bins hold ~17 %; twice that is a
           line, not a burst */
        c->max_peak3 = 0.35 * 25 / bin_hz > 1 ? 1 : 0.35 * 25 / bin_hz;
        /* measured rms width 170-200 Hz, 150-205 Hz at 6 dB (test_burstdet) */
        c->max_width_bins = 275 / bin_hz;
        c->ctx_lo = iround(1200 / bin_hz);
        c->ctx_hi = iround(3000 / bin_hz);
    }
    if (c->half < 1)
        c->half = 1;
    if (c->len < 2)
        c->len = 2;
    if (c->tol < 1)
        c->tol = 1;
    c->width = 2 * c->half + 1;
    c->spec_half = c->flank + c->half;
    c->back = (int)ceil((baud == 100 ? BACK_S_BR100 : BACK_S_BR600) / hop_s);
    c->long_len = baud == 100 ? iround(LONG_BOX_S / hop_s) : 0;
    c->long_back = baud == 100 ? (int)ceil(WEAK_BACK_S_BR100 / hop_s) : 0;
    c->backfill = c->len + c->back > c->long_len + c->long_back ? c->len + c->back
                                                                 : c->long_len + c->long_back;
    c->ring = (size_t)c->backfill + 3;
    c->max_hops =
        c->ring + (size_t)ceil(c->max_seq_s / hop_s) + (size_t)c->len + (size_t)c->close_misses + 4;
}

static void cleanup(burstdet_t *q)
{
    free(q->prefix);
    free(q->run100_short);
    free(q->run100_long);
    free(q->hist);
    free(q->cands);
    for (int c = 0; c < NCLASS; c++) {
        free(q->rows[c]);
        free(q->run[c]);
        if (q->tracks[c]) {
            for (size_t t = 0; t < q->cfg.max_tracks; t++) {
                free(q->tracks[c][t].prof);
                free(q->tracks[c][t].spec);
                free(q->tracks[c][t].ctx);
                free(q->tracks[c][t].pre);
            }
            free(q->tracks[c]);
        }
    }
    free(q);
}

burstdet_t *burstdet_create(const burstdet_config_t *cfg)
{
    if (!cfg) {
        log_error("Burst detector not created, reason: no configuration");
        return NULL;
    }
    if (!(cfg->bin_hz > 0 && cfg->bin_hz <= 100) || !(cfg->hop_s > 0 && cfg->hop_s <= 0.1) ||
        cfg->nbins < 64 || cfg->fft_len < 64) {
        log_error("Burst detector not created, reason: bad grid, bin_hz: %g, hop_s: %g, "
                  "nbins: %zu",
                  cfg->bin_hz, cfg->hop_s, cfg->nbins);
        return NULL;
    }
    if (cfg->threshold_db < 0 || cfg->threshold_db > 40) {
        log_error("Burst detector not created, reason: threshold out of range, "
                  "threshold_db: %g",
                  cfg->threshold_db);
        return NULL;
    }
    burstdet_t *q = calloc(1, sizeof *q);
    if (!q)
        goto nomem;
    q->cfg = *cfg;
    q->next_id = 1;
    if (q->cfg.max_tracks == 0)
        q->cfg.max_tracks = 256;
    double thr_db = cfg->threshold_db > 0 ? cfg->threshold_db : BURSTDET_DEFAULT_THRESHOLD_DB;
    q->thr = pow(10, thr_db / 10);
    q->thr_br600 = 1 + (q->thr - 1) * BR600_EXCESS;
    q->thr_low = 1 + (q->thr - 1) * HYSTERESIS;
    q->thr_low_weak = 1 + (q->thr - 1) * WEAK_HYSTERESIS;
    q->thr_long = 1 + (q->thr - 1) * LONG_EXCESS;
    q->nbins = cfg->nbins;
    class_setup(&q->cls[0], 100, cfg->bin_hz, cfg->hop_s);
    class_setup(&q->cls[1], 600, cfg->bin_hz, cfg->hop_s);
    q->prefix = malloc((q->nbins + 1) * sizeof *q->prefix);
    q->run100_short = calloc(q->nbins, sizeof *q->run100_short);
    q->run100_long = calloc(q->nbins, sizeof *q->run100_long);
    q->cands = malloc(2 * q->nbins * sizeof *q->cands);
    for (int c = 0; c < NCLASS; c++) {
        size_t need = q->cls[c].ring - 1;
        if (need > q->hist_ring)
            q->hist_ring = need;
    }
    q->hist = malloc(q->hist_ring * q->nbins * sizeof *q->hist);
    if (!q->prefix || !q->run100_short || !q->run100_long || !q->cands || !q->hist)
        goto nomem;
    for (int c = 0; c < NCLASS; c++) {
        const class_t *k = &q->cls[c];
        q->rows[c] = calloc(k->ring * q->nbins, sizeof(float));
        q->run[c] = calloc(q->nbins, sizeof(float));
        q->tracks[c] = calloc(q->cfg.max_tracks, sizeof(track_t));
        if (!q->rows[c] || !q->run[c] || !q->tracks[c])
            goto nomem;
        size_t spec_w = 2 * (size_t)k->spec_half + 1;
        for (size_t t = 0; t < q->cfg.max_tracks; t++) {
            q->tracks[c][t].prof = malloc(k->max_hops * sizeof(float));
            q->tracks[c][t].spec = malloc(k->max_hops * spec_w * sizeof(float));
            q->tracks[c][t].ctx = malloc(k->max_hops * 2 * CONTEXT_SUBBANDS * sizeof(float));
            q->tracks[c][t].pre = malloc(spec_w * sizeof(float));
            if (!q->tracks[c][t].prof || !q->tracks[c][t].spec || !q->tracks[c][t].ctx ||
                !q->tracks[c][t].pre)
                goto nomem;
        }
    }
    return q;
nomem:
    log_error("Burst detector not created, reason: out of memory");
    if (q)
        cleanup(q);
    return NULL;
}

size_t burstdet_max_events(const burstdet_t *q)
{
    return 2 * NCLASS * q->cfg.max_tracks;
}

size_t burstdet_backfill_hops(const burstdet_t *q, int baud)
{
    for (int c = 0; c < NCLASS; c++)
        if (q->cls[c].baud == baud)
            return (size_t)q->cls[c].backfill;
    return 0;
}

/* Sum of s over bins [i-h, i+h]; bins outside the analysed band count as noise (1). */
static double band(const burstdet_t *q, long i, int h)
{
    long lo = i - h, hi = i + h + 1, n = (long)q->nbins;
    double missing = 0;
    if (lo < 0) {
        missing += (double)-lo;
        lo = 0;
    }
    if (hi > n) {
        missing += (double)(hi - n);
        hi = n;
    }
    if (hi <= lo)
        return missing;
    return q->prefix[hi] - q->prefix[lo] + missing;
}

/* Sum of s over bins [lo, hi] (lo <= hi); bins outside the band count as noise (1). */
static double band_range(const burstdet_t *q, long lo, long hi)
{
    long h = (hi - lo) / 2;
    if ((hi - lo) % 2 == 0)
        return band(q, lo + h, (int)h);
    /* even count: the odd-width band below plus the last bin */
    return band(q, lo + h, (int)h) + band(q, hi, 0);
}

/* Box mean of class c at bin i (1 outside the band). */
static double box(const burstdet_t *q, int c, long i)
{
    if (i < 0 || i >= (long)q->nbins)
        return 1.0;
    const class_t *k = &q->cls[c];
    return q->run[c][i] / ((double)k->width * k->len);
}

static float *row(const burstdet_t *q, int c, uint64_t hop)
{
    return q->rows[c] + (hop % q->cls[c].ring) * q->nbins;
}

static int cand_cmp(const void *a, const void *b)
{
    float x = ((const cand_t *)a)->b, y = ((const cand_t *)b)->b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Element-wise loops written eight at a time: -O2 vectorises such blocks (SLP) but leaves
 * loops of unknown length scalar; the arithmetic per element is unchanged. */
static inline void div_run(float *restrict out, const float *restrict a, const float *restrict b,
                           size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            out[i + l] = a[i + l] / b[i + l];
    for (; i < n; i++)
        out[i] = a[i] / b[i];
}

/* out[j] = (float)(hi[j] - lo[j]) */
static inline void diff_run(float *restrict out, const double *restrict hi,
                            const double *restrict lo, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            out[i + l] = (float)(hi[i + l] - lo[i + l]);
    for (; i < n; i++)
        out[i] = (float)(hi[i] - lo[i]);
}

/* acc[i] += in[i] - out[i] (out NULL: acc[i] += in[i]) */
static inline void slide_run(float *restrict acc, const float *restrict in,
                             const float *restrict out, size_t n)
{
    size_t i = 0;
    if (out) {
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; l++)
                acc[i + l] += in[i + l] - out[i + l];
        for (; i < n; i++)
            acc[i] += in[i] - out[i];
    } else {
        for (; i + 8 <= n; i += 8)
            for (int l = 0; l < 8; l++)
                acc[i + l] += in[i + l];
        for (; i < n; i++)
            acc[i] += in[i];
    }
}

/* out = the sum of class c's last len rows up to hop (fewer since a reset), exactly. */
static void resum_rows(const burstdet_t *q, int c, uint64_t hop, int len, float *out)
{
    size_t n = q->nbins;
    size_t rows = q->hops_seen < (uint64_t)len ? (size_t)q->hops_seen : (size_t)len;
    memset(out, 0, n * sizeof *out);
    for (size_t j = 0; j < rows; j++) {
        const float *src = row(q, c, hop - j);
        for (size_t i = 0; i < n; i++)
            out[i] += src[i];
    }
}

/* Whether any of v[0..8) is >= t. */
static inline bool any8_at_least(const float *v, float t)
{
    int any = 0;
    for (int l = 0; l < 8; l++)
        any |= v[l] >= t;
    return any != 0;
}

/* Candidates of class c in this hop, strongest first. */
static size_t find_candidates(burstdet_t *q, int c, uint64_t hop_now)
{
    const class_t *k = &q->cls[c];
    size_t nc = 0;
    long n = (long)q->nbins;
    const double thr_sum = (k->baud == 600 ? q->thr_br600 : q->thr) * (double)k->width * k->len;
    const float *run = q->run[c];
    /* the smallest float >= thr_sum: run[i] >= thr_f exactly when run[i] >= thr_sum */
    float thr_f = (float)thr_sum;
    if ((double)thr_f < thr_sum)
        thr_f = nextafterf(thr_f, INFINITY);
    for (long i = 0; i < n; i++) {
        if ((i & 7) == 0 && i + 8 <= n && !any8_at_least(run + i, thr_f)) {
            i += 7; /* nothing in this block of 8 */
            continue;
        }
        if (run[i] < thr_sum)
            continue;
        double b = box(q, c, i);
        bool peak = true;
        for (int d = 1; d <= k->half && peak; d++) {
            if (box(q, c, i - d) >= b || box(q, c, i + d) > b)
                peak = false;
        }
        if (!peak)
            continue;
        double fl = box(q, c, i - k->flank) - 1, fr = box(q, c, i + k->flank) - 1;
        if ((fl < fr ? fl : fr) >= FLANK_FRAC * (b - 1))
            continue;
        bool narrow = false;
        if (k->baud == 600) {
            /* excess of the best BR100-width box near the centre, over the same hops */
            const class_t *k1 = &q->cls[0];
            double best = -1e30;
            for (long j = i - k->half; j <= i + k->half; j++)
                if (j >= 0 && j < n && q->run100_short[j] > best)
                    best = q->run100_short[j];
            double ex100 = best - (double)k1->width * k->len;
            double ex600 = q->run[c][i] - (double)k->width * k->len;
            narrow = ex100 > CONCENTRATION_MAX * ex600;
        }
        q->cands[nc].narrow = narrow;
        q->cands[nc].weak = false;
        q->cands[nc].bin = (int)i;
        q->cands[nc].b = (float)b;
        nc++;
    }
    qsort(q->cands, nc, sizeof *q->cands, cand_cmp);
    if (k->long_len > 0 && q->hops_seen >= (uint64_t)k->long_len) {
        /* weak bursts: the long box, after the others (an open track blocks them) */
        size_t n0 = nc;
        const double cells = (double)k->width * k->long_len;
        const float *lr = q->run100_long;
        const float thr_l = (float)(q->thr_long * cells);
        for (long i = 0; i < n; i++) {
            if ((i & 7) == 0 && i + 8 <= n && !any8_at_least(lr + i, thr_l)) {
                i += 7;
                continue;
            }
            if (lr[i] < thr_l)
                continue;
            /* on now, not the fading memory of a burst whose track just closed; and weak: a
               burst the short box sees over the threshold is the short box's (its track
               blocks this one anyway) */
            if (run[i] < q->thr_low_weak * (double)k->width * k->len || run[i] >= thr_sum)
                continue;
            bool peak = true;
            for (int d = 1; d <= k->half && peak; d++) {
                if ((i - d >= 0 && lr[i - d] >= lr[i]) || (i + d < n && lr[i + d] > lr[i]))
                    peak = false;
            }
            if (!peak)
                continue;
            double b = lr[i] / cells;
            double fl = (i - k->flank >= 0 ? lr[i - k->flank] / cells : 1) - 1;
            double fr = (i + k->flank < n ? lr[i + k->flank] / cells : 1) - 1;
            if ((fl < fr ? fl : fr) >= FLANK_FRAC * (b - 1))
                continue;
            /* even over the long box: not the tail of a stronger burst that ended on this
               carrier (its oldest short box far above the current one) */
            double oldest = 0, cells_s = (double)k->width * k->len;
            for (int j = 0; j < k->len; j++)
                oldest += row(q, c, hop_now - (uint64_t)(k->long_len - 1 - j))[i];
            if (oldest - cells_s > 2 * (run[i] - cells_s))
                continue;
            q->cands[nc].narrow = false;
            q->cands[nc].weak = true;
            q->cands[nc].bin = (int)i;
            q->cands[nc].b = (float)b;
            nc++;
        }
        qsort(q->cands + n0, nc - n0, sizeof *q->cands, cand_cmp);
    }
    q->stats.candidates += nc;
    return nc;
}

static void snapshot(burstdet_t *q, int c, track_t *t)
{
    const class_t *k = &q->cls[c];
    size_t w = 2 * (size_t)k->spec_half + 1;
    if (t->nspec >= k->max_hops)
        return;
    float *dst = t->spec + t->nspec * w;
    /* wide context: mean excess per bin of each sub-band on each side (sub-band j spans
       offsets ctx_lo + [j L / S, (j + 1) L / S) from the track's bin) */
    float *cx = t->ctx + t->nspec * 2 * CONTEXT_SUBBANDS;
    long len = k->ctx_hi - k->ctx_lo + 1;
    for (int j = 0; j < CONTEXT_SUBBANDS; j++) {
        long a = k->ctx_lo + j * len / CONTEXT_SUBBANDS;
        long b = k->ctx_lo + (j + 1) * len / CONTEXT_SUBBANDS - 1;
        double nb = (double)(b - a + 1);
        cx[j] = (float)((band_range(q, t->bin - b, t->bin - a) - nb) / nb);
        cx[CONTEXT_SUBBANDS + j] = (float)((band_range(q, t->bin + a, t->bin + b) - nb) / nb);
    }
    for (long d = -k->spec_half; d <= k->spec_half; d++) {
        long i = t->bin0 + d;
        dst[d + k->spec_half] = (i >= 0 && i < (long)q->nbins) ? q->s[i] : 1.0f;
    }
    t->nspec++;
}

static void open_track(burstdet_t *q, int c, track_t *t, int bin, uint64_t hop, const float *floor,
                       bool weak, burstdet_event_t *ev)
{
    const class_t *k = &q->cls[c];
    t->used = true;
    t->zombie = false;
    t->matched = true;
    t->id = q->next_id++;
    t->bin = t->bin0 = bin;
    t->open_hop = t->last_match = hop;
    uint64_t back = (uint64_t)(weak ? k->long_len + k->long_back : k->len + k->back);
    t->first_hop = hop > back ? hop - back : 0;
    if (t->first_hop + q->hops_seen < hop + 1) /* history starts at the reset */
        t->first_hop = hop + 1 - q->hops_seen;
    t->misses = 0;
    t->peak = q->run[c][bin]; /* the box that opened it */
    t->floor0 = floor[bin];
    t->nprof = 0;
    t->nspec = 0;
    /* backfill the excess profile from the band-sum history (current hop included) */
    for (uint64_t h = t->first_hop; h <= hop; h++)
        t->prof[t->nprof++] = row(q, c, h)[bin] - (float)k->width;
    /* background before the burst: the hops before the first of the box that opened the
       track (at low SNR the burst can reach into them; the minimum keeps what was there
       all along) */
    for (long d = -k->spec_half; d <= k->spec_half; d++)
        t->pre[d + k->spec_half] = HUGE_VALF;
    uint64_t opened_by = (uint64_t)(weak ? k->long_len : k->len);
    for (uint64_t h = t->first_hop; h + opened_by <= hop; h++) {
        const float *sv = q->hist + (h % q->hist_ring) * q->nbins;
        for (long d = -k->spec_half; d <= k->spec_half; d++) {
            long i = bin + d;
            float v = (i >= 0 && i < (long)q->nbins) ? sv[i] : 1.0f;
            if (v < t->pre[d + k->spec_half])
                t->pre[d + k->spec_half] = v;
        }
    }
    t->pre_line = false;
    for (long d = -k->spec_half; d <= k->spec_half; d++) {
        float v = t->pre[d + k->spec_half];
        t->pre_line |= v < HUGE_VALF && v - 1 >= LINE_MIN_EXCESS;
    }
    snapshot(q, c, t);
    q->stats.tracks++;
    ev->kind = BURSTDET_OPEN;
    ev->id = t->id;
    ev->baud = k->baud;
    ev->bin = q->cfg.bin_lo + bin;
    ev->first_hop = t->first_hop;
}

/* Box sum over the class's box length of the lines that were there before track t opened,
 * for a box of half width `half` bins at analysed bin i (0 without such lines). */
static double pre_line_sum(const class_t *k, const track_t *t, long i, int half)
{
    if (!t->pre_line)
        return 0;
    double sum = 0;
    for (long j = i - half; j <= i + half; j++) {
        long d = j - t->bin0;
        if (d < -k->spec_half || d > k->spec_half)
            continue;
        float v = t->pre[d + k->spec_half] - 1;
        if (t->pre[d + k->spec_half] < HUGE_VALF && v >= LINE_MIN_EXCESS)
            sum += v;
    }
    return sum * k->len;
}

static double mean_range(const float *e, size_t a, size_t b)
{
    double s = 0;
    for (size_t j = a; j <= b; j++)
        s += e[j];
    return s / (double)(b - a + 1);
}

static int float_cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int measure(const burstdet_t *q, const class_t *k, const track_t *t, int reject,
                   burstdet_event_t *ev);

static void close_track(burstdet_t *q, int c, track_t *t, int reject, burstdet_event_t *ev)
{
    const class_t *k = &q->cls[c];
    memset(ev, 0, sizeof *ev);
    ev->kind = BURSTDET_CLOSE;
    ev->id = t->id;
    ev->baud = k->baud;
    ev->bin = q->cfg.bin_lo + t->bin0;
    ev->first_hop = t->first_hop;
    ev->time_err_hops = 2.0;
    ev->freq_bin = (double)(q->cfg.bin_lo + t->bin);
    ev->start_hop = (double)t->open_hop;
    ev->end_hop = (double)t->last_match;
    if (t->nprof < 2)
        ev->reject = reject ? reject : BURSTDET_REJ_SHORT;
    else
        ev->reject = measure(q, k, t, reject, ev);
    if (ev->reject == BURSTDET_ACCEPTED)
        q->stats.accepted++;
    if (ev->reject == BURSTDET_ACCEPTED && ev->crowded)
        q->stats.crowded++;
    else
        q->stats.rejected[ev->reject]++;
}

/* A BR600 track that lasts longer than two frames is usually a BR600 burst that a longer
 * signal next to it carried on: a BR100 burst a few hundred hertz away keeps the BR600 box
 * over the threshold for its 1-2 s (in the capacity scene, N = 100 mixed, that was the
 * most frequent loss of BR600 bursts that a demodulator told where to look decodes).
 * Before the track is rejected as too long, its first frame's worth is measured as a
 * track of its own: the core from the open to the shortest frame, the end sought up to
 * the longest (Table 3-1). Accepted (the usual tests, nothing longer than a frame) it is
 * reported as such; the track itself then fades as a zombie. */
static bool close_prefix(burstdet_t *q, int c, const track_t *t, burstdet_event_t *ev)
{
    const class_t *k = &q->cls[c];
    track_t p = *t;
    p.last_match = t->open_hop + (uint64_t)ceil(k->min_frame_s / q->cfg.hop_s);
    uint64_t last = t->open_hop + (uint64_t)ceil(k->max_frame_s / q->cfg.hop_s) +
                    (uint64_t)k->len + (uint64_t)k->close_misses;
    size_t np = (size_t)(last - t->first_hop) + 1, off = (size_t)(t->open_hop - t->first_hop);
    if (np > t->nprof || np - off > t->nspec)
        return false;
    p.nprof = np;
    p.nspec = np - off;
    burstdet_event_t e;
    memset(&e, 0, sizeof e);
    e.kind = BURSTDET_CLOSE;
    e.id = t->id;
    e.baud = k->baud;
    e.bin = q->cfg.bin_lo + t->bin0;
    e.first_hop = t->first_hop;
    e.time_err_hops = 2.0;
    e.reject = measure(q, k, &p, 0, &e);
    if (e.reject != BURSTDET_ACCEPTED || e.sequence)
        return false;
    *ev = e;
    q->stats.accepted++;
    return true;
}

/* Refines a closing track into ev (times, carrier, width, SNR, power) and decides. */
/* Excess per snapshot bin that was there before and after the burst (see LINE_MIN_EXCESS),
 * 0 elsewhere or when either side was not seen. */
static void background(const class_t *k, const track_t *t, float *bg)
{
    size_t w = 2 * (size_t)k->spec_half + 1;
    size_t j0 = (size_t)(t->last_match - t->open_hop) + 1; /* first snapshot after the box */
    for (size_t d = 0; d < w; d++) {
        float lo = t->pre[d];
        for (size_t j = j0; j < t->nspec; j++)
            if (t->spec[j * w + d] < lo)
                lo = t->spec[j * w + d];
        float ex = lo - 1.0f;
        bg[d] = j0 < t->nspec && ex >= LINE_MIN_EXCESS && lo < HUGE_VALF ? ex : 0.0f;
    }
}

static int measure(const burstdet_t *q, const class_t *k, const track_t *t, int reject,
                   burstdet_event_t *ev)
{
    size_t n = t->nprof;
    size_t w = 2 * (size_t)k->spec_half + 1;
    int sh = k->spec_half;
    float bg[w];
    background(k, t, bg);
    double bg_box0 = 0; /* background in the box at the opening bin (the backfilled profile) */
    for (int d = -k->half; d <= k->half; d++)
        bg_box0 += bg[d + sh];
    /* The per-hop profile was taken at the track's current bin, which wanders within the
       burst's lobe at low SNR; from the open on, take it again from the snapshots around
       the centroid of the mean spectrum. */
    float e[n];
    size_t off = (size_t)(t->open_hop - t->first_hop);
    for (size_t j = 0; j < n; j++)
        e[j] = t->prof[j] - (j < off ? (float)bg_box0 : 0.0f);
    if (t->nspec > 0) {
        double sum = 0, sumk = 0;
        for (int d = -sh; d <= sh; d++) {
            double v = 0;
            for (size_t j = 0; j < t->nspec; j++)
                v += t->spec[j * w + (size_t)(d + sh)];
            v = v / (double)t->nspec - 1 - bg[d + sh];
            if (v > 0 && d >= -k->core_half && d <= k->core_half) {
                sum += v;
                sumk += v * d;
            }
        }
        int kc0 = sum > 0 ? (int)lround(sumk / sum) : 0;
        if (kc0 - k->half < -sh)
            kc0 = -sh + k->half;
        if (kc0 + k->half > sh)
            kc0 = sh - k->half;
        for (size_t j = 0; j < t->nspec && off + j < n; j++) {
            double v = 0;
            for (int d = -k->half; d <= k->half; d++)
                v += t->spec[j * w + (size_t)(kc0 + d + sh)] - bg[kc0 + d + sh];
            e[off + j] = (float)(v - k->width);
        }
    }
    float raw[n];
    memcpy(raw, e, n * sizeof *raw);
    /* Smooth [1/4 1/2 1/4]: a 40 ms frame holds 4 BR100 symbols, and the data pattern and
       noise cross terms make single hops swing by +-50 %; the half-level crossing of a
       symmetric smoothing stays on the edge. */
    {
        float prev = e[0];
        for (size_t j = 0; j < n; j++) {
            float next = j + 1 < n ? e[j + 1] : e[j];
            float cur = e[j];
            e[j] = 0.25f * prev + 0.5f * cur + 0.25f * next;
            prev = cur;
        }
    }
    /* The track's box stayed over the (hysteresis) threshold from open_hop to last_match,
       and the box at hop h spans hops h-len+1 .. h: the burst covers at least
       [open_hop, last_match - len + 1] (the core), starts at or before open_hop and ends
       at or after the core. Only the two edges are searched, outwards from the core, as
       the change points of a step of half the on-level: a noise dip inside the burst
       cannot split it (which an unconstrained maximum-sum interval does at 2-4 dB). */
    size_t amax = (size_t)(t->open_hop - t->first_hop);
    size_t bmin = t->last_match + 1 >= t->first_hop + (uint64_t)k->len
                      ? (size_t)(t->last_match + 1 - (uint64_t)k->len - t->first_hop)
                      : amax;
    if (amax >= n)
        amax = n - 1;
    if (bmin < amax)
        bmin = amax;
    if (bmin >= n)
        bmin = n - 1;
    double mu;
    if (bmin >= amax + 2) {
        mu = mean_range(e, amax, bmin);
    } else {
        /* short core: the mean of the upper 40 % (bursts fill ~half the profile) */
        float tmp[n];
        memcpy(tmp, e, n * sizeof *tmp);
        qsort(tmp, n, sizeof *tmp, float_cmp_desc);
        size_t top = n * 2 / 5 ? n * 2 / 5 : 1;
        mu = mean_range(tmp, 0, top - 1);
    }
    size_t a = amax, b = bmin;
    for (int pass = 0; pass < 2; pass++) {
        double lam = mu / 2, cum = 0, best = 0;
        a = amax;
        for (size_t j = amax; j-- > 0;) {
            cum += e[j] - lam;
            if (cum > best) {
                best = cum;
                a = j;
            }
        }
        cum = 0;
        best = 0;
        b = bmin;
        for (size_t j = bmin + 1; j < n; j++) {
            cum += e[j] - lam;
            if (cum > best) {
                best = cum;
                b = j;
            }
        }
        mu = mean_range(e, a, b);
    }
    double lambda = mu / 2;
    double pa = (double)a - 0.5, pb = (double)b + 0.5;
    if (a > 0 && e[a] > e[a - 1]) {
        double f = (lambda - e[a - 1]) / (e[a] - e[a - 1]);
        pa = (double)a - 1 + (f < 0 ? 0 : f > 1 ? 1 : f);
    }
    if (b + 1 < n && e[b] > e[b + 1]) {
        double f = (e[b] - lambda) / (e[b] - e[b + 1]);
        pb = (double)b + (f < 0 ? 0 : f > 1 ? 1 : f);
    }
    /* Gaps: an interferer's packets pause for whole hops; 3-hop means under half the
       on-level on over a fifth of the burst (single hops of a weak burst swing by +-50 %
       with the data pattern and noise). */
    size_t gaps = 0;
    for (size_t j = a; j <= b; j++) {
        size_t j0 = j > a ? j - 1 : j, j1 = j < b ? j + 1 : j;
        gaps += mean_range(raw, j0, j1) < lambda;
    }
    bool gappy = gaps * 5 > (b - a + 1);
    ev->start_hop = (double)t->first_hop + pa;
    ev->end_hop = (double)t->first_hop + pb;
    double dur_s = (pb - pa) * q->cfg.hop_s;

    /* mean spectrum over the on-hops seen since the open */
    uint64_t h0 = t->first_hop + a, h1 = t->first_hop + b;
    if (h0 < t->open_hop)
        h0 = t->open_hop;
    size_t s0 = (size_t)(h0 - t->open_hop), s1 = (size_t)(h1 - t->open_hop);
    if (s1 >= t->nspec)
        s1 = t->nspec ? t->nspec - 1 : 0;
    double x[w];
    memset(x, 0, sizeof x);
    size_t ns = 0;
    for (size_t j = s0; j <= s1 && j < t->nspec; j++, ns++)
        for (size_t d = 0; d < w; d++)
            x[d] += t->spec[j * w + d];
    for (size_t d = 0; d < w; d++)
        x[d] = ns ? x[d] / (double)ns - 1.0 - bg[d] : 0.0;
    /* peak of the class box over the snapshot, then centroid and rms width around it */
    int ch = k->core_half;
    int kpk = 0;
    double best = -1e300;
    for (int d = -sh + k->half; d <= sh - k->half; d++) {
        double acc = 0;
        for (int j = -k->half; j <= k->half; j++)
            acc += x[d + j + sh];
        if (d >= -ch && d <= ch && acc > best) {
            best = acc;
            kpk = d;
        }
    }
    double sx = 0, sxk = 0, sxkk = 0;
    for (int d = kpk - ch; d <= kpk + ch; d++) {
        if (d < -sh || d > sh)
            continue;
        double v = x[d + sh] > 0 ? x[d + sh] : 0;
        sx += v;
        sxk += v * d;
    }
    double kc = sx > 0 ? sxk / sx : kpk;
    for (int d = kpk - ch; d <= kpk + ch; d++) {
        if (d < -sh || d > sh)
            continue;
        double v = x[d + sh] > 0 ? x[d + sh] : 0;
        sxkk += v * (d - kc) * (d - kc);
    }
    ev->freq_bin = (double)(q->cfg.bin_lo + t->bin0) + kc;
    /* steady lines: local maxima of the background, strongest first */
    ev->nlines = 0;
    for (int d = -sh + 1; d <= sh - 1; d++) {
        float v = bg[d + sh];
        if (!(v > 0) || v < bg[d - 1 + sh] || v <= bg[d + 1 + sh])
            continue;
        double l = bg[d - 1 + sh], r = bg[d + 1 + sh];
        double pos = d + (r - l) / (l + v + r);
        int at;
        if (ev->nlines < BURSTDET_MAX_LINES)
            at = ev->nlines++;
        else if (ev->line_excess[BURSTDET_MAX_LINES - 1] < v)
            at = BURSTDET_MAX_LINES - 1; /* replaces the weakest */
        else
            continue;
        while (at > 0 && ev->line_excess[at - 1] < v) {
            ev->line_bin[at] = ev->line_bin[at - 1];
            ev->line_excess[at] = ev->line_excess[at - 1];
            at--;
        }
        ev->line_bin[at] = (double)(q->cfg.bin_lo + t->bin0) + pos;
        ev->line_excess[at] = v;
    }
    ev->width_bins = sx > 0 ? sqrt(sxkk / sx) : 0;
    /* Sum of (s - 1) over the burst's bins times bin_hz / baud is the SNR in `baud` Hz;
       the same sum times floor * 8 / (3 N^2) its power (Hann: sum w^2 = 3N/8). */
    double sum_ex = sx > 0 ? sx : 1e-9;
    ev->snr_db = 10 * log10(sum_ex * q->cfg.bin_hz / k->baud);
    ev->power = sum_ex * t->floor0 * 8.0 / (3.0 * (double)q->cfg.fft_len * q->cfg.fft_len);
    /* flanks of the mean spectrum, per bin, against the core */
    double core = 0, left = 0, right = 0;
    int nc = 0, nf = 0;
    for (int d = -k->half; d <= k->half; d++) {
        int j = (int)lround(kc) + d;
        if (j >= -sh && j <= sh) {
            core += x[j + sh];
            nc++;
        }
        int jl = (int)lround(kc) - k->flank + d, jr = (int)lround(kc) + k->flank + d;
        if (jl >= -sh && jr <= sh) {
            left += x[jl + sh];
            right += x[jr + sh];
            nf++;
        }
    }
    /* share of the core's excess in its strongest 3 bins: a carrier line (FSK) */
    double peak3 = 0;
    for (int d = kpk - ch + 1; d <= kpk + ch - 1; d++) {
        if (d - 1 < -sh || d + 1 > sh)
            continue;
        double v = 0;
        for (int j = -1; j <= 1; j++)
            v += x[d + j + sh] > 0 ? x[d + j + sh] : 0;
        if (v > peak3)
            peak3 = v;
    }
    peak3 = sx > 0 ? peak3 / sx : 1;
    /* wide context over the same hops, per bin, against the core per bin: each side by
       its emptiest sub-band */
    double csub[2 * CONTEXT_SUBBANDS] = {0};
    size_t ncx = 0;
    for (size_t j = s0; j <= s1 && j < t->nspec; j++, ncx++)
        for (int i = 0; i < 2 * CONTEXT_SUBBANDS; i++)
            csub[i] += t->ctx[j * 2 * CONTEXT_SUBBANDS + (size_t)i];
    double cl = csub[0], cr = csub[CONTEXT_SUBBANDS];
    for (int i = 1; i < CONTEXT_SUBBANDS; i++) {
        cl = csub[i] < cl ? csub[i] : cl;
        cr = csub[CONTEXT_SUBBANDS + i] < cr ? csub[CONTEXT_SUBBANDS + i] : cr;
    }
    bool wide_ctx = false;
    if (ncx && nc && core > 0)
        wide_ctx = (cl < cr ? cl : cr) / (double)ncx >= CONTEXT_FRAC * core / nc;
    if (reject == 0) {
        bool flanks =
            nc && nf && core > 0 && (left < right ? left : right) / nf >= FLANK_FRAC * core / nc;
        bool shoulder = k->baud == 600 && nc && nf && core > 0 &&
                        (left > right ? left : right) / nf >= SHOULDER_FRAC * core / nc;
        /* The spectrum and the on/off profile of a frame depend on its content: long runs
           of equal bits are a carrier without reversals (narrow), alternating bits two
           lines +-baud/2 away (for BR600 wider than random data, outside the box so that
           the profile dips: gappy). A track that fails only such a test, lasts as long as
           a frame and stands alone (no wide signal, shoulder or flanks around it) is
           accepted on condition: the receiver keeps it only when a preamble + FT starts
           it (verify_preamble). */
        bool frame_like =
            !wide_ctx && !shoulder && !flanks && dur_s >= k->min_frame_s && dur_s <= k->max_seq_s;
        bool narrow = ev->width_bins < k->min_width_bins || peak3 > k->max_peak3;
        if (dur_s < k->min_s)
            reject = BURSTDET_REJ_SHORT;
        else if (dur_s > k->max_seq_s)
            reject = BURSTDET_REJ_LONG;
        else if (narrow && frame_like)
            ev->verify_preamble = true;
        else if (narrow)
            reject = BURSTDET_REJ_NARROW;
        else if (ev->width_bins > k->max_width_bins && k->baud == 600 && frame_like)
            ev->verify_preamble = true;
        else if (ev->width_bins > k->max_width_bins)
            reject = BURSTDET_REJ_WIDE;
        else if ((wide_ctx || shoulder || flanks) && k->baud == 600 &&
                 dur_s >= k->min_frame_s && dur_s <= k->max_seq_s)
            /* as wide as one BR600 burst and as long as a frame, with other signals around
               it: BR600 bursts a kilohertz or less from each other on both sides (100 on
               air, 2000 bursts: 15 more decoded); a wide signal or the shoulder of a
               stronger burst has no preamble of its own at the track's carrier, and the
               receiver keeps the track only with one */
            ev->verify_preamble = true;
        else if (wide_ctx)
            reject = BURSTDET_REJ_WIDE;
        else if (shoulder)
            reject = BURSTDET_REJ_WIDE; /* the shoulder of a stronger, wider signal */
        else if (gappy && !flanks && k->baud == 600 && frame_like)
            ev->verify_preamble = true;
        else if (flanks || gappy) {
            /* Bursts of this class closer than the detector separates (their boxes overlap,
               their sum beats from hop to hop) fail the flank or gap test too; what tells
               them from the wide signals and packet trains these tests are for is a quiet
               wide context (tested above), no carrier line, a core no wider than a pair
               and a strong sum. The demodulator decides what they hold. */
            double w_hz = ev->width_bins * q->cfg.bin_hz;
            if (k->baud == 100 && peak3 < CROWDED_MAX_PEAK3 && w_hz <= CROWDED_MAX_WIDTH_HZ &&
                ev->snr_db >= CROWDED_MIN_SNR_DB)
                ev->crowded = true;
            else if (gappy && !flanks && frame_like)
                ev->verify_preamble = true; /* BR100 below 8 dB: where the bits alternate,
                                               the two lines +-50 Hz sit at the box's edge
                                               and the profile dips */
            else
                reject = flanks ? BURSTDET_REJ_WIDE : BURSTDET_REJ_GAPPY;
        }
        if (reject == 0 && dur_s > k->max_frame_s)
            ev->sequence = true;
    }
    return reject;
}

int burstdet_process(burstdet_t *q, const float *power, const float *floor, uint64_t hop,
                     burstdet_event_t *events, size_t cap)
{
    if (cap < burstdet_max_events(q))
        return -1;
    size_t n = q->nbins, nev = 0;
    {
        /* this hop's row of the history (no copy) */
        q->s = q->hist + (hop % q->hist_ring) * n;
        div_run(q->s, power, floor, n);
    }
    /* prefix sums in double (a 60 dB burst must not swamp the bins after it), as four
       independent chains over quarters of the band, then the quarters' offsets: the
       dependency chain of one running sum would cost ~4 cycles per bin */
    {
        double *restrict pre = q->prefix;
        const float *restrict sv = q->s;
        size_t qn = n / 4;
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        pre[0] = 0;
        for (size_t j = 0; j < qn; j++) {
            a0 += sv[j];
            a1 += sv[qn + j];
            a2 += sv[2 * qn + j];
            a3 += sv[3 * qn + j];
            pre[j + 1] = a0;
            pre[qn + j + 1] = a1;
            pre[2 * qn + j + 1] = a2;
            pre[3 * qn + j + 1] = a3;
        }
        for (size_t j = 4 * qn; j < n; j++) {
            a3 += sv[j];
            pre[j + 1] = a3;
        }
        double off1 = pre[qn], off2 = off1 + pre[2 * qn], off3 = off2 + pre[3 * qn];
        for (size_t j = qn + 1; j <= 2 * qn; j++)
            pre[j] += off1;
        for (size_t j = 2 * qn + 1; j <= 3 * qn; j++)
            pre[j] += off2;
        for (size_t j = 3 * qn + 1; j <= n; j++)
            pre[j] += off3;
    }
    q->hops_seen++;
    /* band sums of this hop into the rings, running box sums (float; recomputed exactly
       from the rows every RECOMPUTE_HOPS so rounding cannot accumulate) */
    bool recompute = q->hops_seen % RECOMPUTE_HOPS == 0;
    for (int c = 0; c < NCLASS; c++) {
        const class_t *k = &q->cls[c];
        float *r = row(q, c, hop);
        float *old = hop >= (uint64_t)k->len && q->hops_seen > (uint64_t)k->len
                         ? row(q, c, hop - (uint64_t)k->len)
                         : NULL;
        float *old_short = NULL, *old_long = NULL;
        if (c == 0 && hop >= (uint64_t)q->cls[1].len && q->hops_seen > (uint64_t)q->cls[1].len)
            old_short = row(q, 0, hop - (uint64_t)q->cls[1].len);
        if (c == 0 && hop >= (uint64_t)k->long_len && q->hops_seen > (uint64_t)k->long_len)
            old_long = row(q, 0, hop - (uint64_t)k->long_len);
        /* ring > len: this hop's row never aliases the outgoing ones */
        long h = k->half, nl = (long)n, w = 2 * h + 1;
        long lo_end = h < nl ? h : nl, hi_start = nl - h > lo_end ? nl - h : lo_end;
        for (long i = 0; i < lo_end; i++)
            r[i] = (float)band(q, i, k->half);
        if (nl >= w)
            diff_run(r + h, q->prefix + w, q->prefix, (size_t)(nl - w + 1));
        for (long i = hi_start; i < nl; i++)
            r[i] = (float)band(q, i, k->half);
        float *run = q->run[c];
        slide_run(run, r, old, n);
        if (c == 0) {
            slide_run(q->run100_short, r, old_short, n);
            slide_run(q->run100_long, r, old_long, n);
        }
        if (recompute) {
            resum_rows(q, c, hop, k->len, run);
            if (c == 0) {
                resum_rows(q, 0, hop, q->cls[1].len, q->run100_short);
                resum_rows(q, 0, hop, k->long_len, q->run100_long);
            }
        }
    }
    for (int c = 0; c < NCLASS; c++) {
        const class_t *k = &q->cls[c];
        track_t *tr = q->tracks[c];
        size_t maxt = q->cfg.max_tracks;
        bool enabled = c == 0 ? !q->cfg.disable_br100 : !q->cfg.disable_br600;
        /* Open BR100 tracks follow their burst by the largest box within +-tol of their
           bin, down to the hysteresis threshold: no local-maximum or shape test, which a
           weak burst can fail for a hop or two. */
        const double keep_sum = (k->baud == 100 ? q->thr_low : q->thr) * (double)k->width * k->len;
        const double weak_sum = WEAK_TRACK_PEAK * q->thr * (double)k->width * k->len;
        const double keep_weak_sum = q->thr_low_weak * (double)k->width * k->len;
        for (size_t t = 0; t < maxt; t++) {
            track_t *tk = &tr[t];
            tk->matched = false;
            if (!tk->used || k->baud == 600)
                continue;
            /* around the opening bin, not the current one: at low SNR the maximum can
               otherwise walk away from the burst on noise, 3 bins a hop */
            long lo = tk->bin0 - k->tol - 2, hi = tk->bin0 + k->tol + 2;
            if (lo < 0)
                lo = 0;
            if (hi > (long)n - 1)
                hi = (long)n - 1;
            long arg = tk->bin;
            float best = -1;
            for (long i = lo; i <= hi; i++)
                if (q->run[c][i] > best) {
                    best = q->run[c][i];
                    arg = i;
                }
            double keep = tk->peak < weak_sum ? keep_weak_sum : keep_sum;
            if (best >= keep) {
                if (best > tk->peak)
                    tk->peak = best;
                tk->matched = true;
                tk->bin = arg;
                tk->last_match = hop;
                tk->misses = 0;
            }
        }
        size_t nc = 0;
        if (enabled && q->hops_seen >= (uint64_t)k->len)
            nc = find_candidates(q, c, hop);
        for (size_t j = 0; j < nc; j++) {
            int bin = q->cands[j].bin;
            if (k->baud == 600) {
                /* BR600 tracks continue only on candidates (local maximum, quiet flanks,
                   not concentrated): following the largest box would let them ride along
                   the shoulders of 2-FSK interferers */
                track_t *near = NULL;
                long dbest = k->tol + 1;
                const double thr_sum = q->thr_br600 * (double)k->width * k->len;
                for (size_t t = 0; t < maxt; t++) {
                    long d = labs(tr[t].bin - bin);
                    if (tr[t].used && !tr[t].matched && d < dbest &&
                        /* not on a line that was there before the track (a CW next to
                           the burst would carry it on after its end) */
                        (!tr[t].pre_line ||
                         q->run[c][bin] - pre_line_sum(k, &tr[t], bin, k->half) >= thr_sum)) {
                        dbest = d;
                        near = &tr[t];
                    }
                }
                if (near) {
                    near->matched = true;
                    near->bin = bin;
                    near->last_match = hop;
                    near->misses = 0;
                    continue;
                }
            }
            bool blocked = false;
            for (size_t t = 0; t < maxt && !blocked; t++)
                if (tr[t].used && labs(tr[t].bin - bin) <= k->core_half + k->half)
                    blocked = true; /* same lobe: one burst */
            if (blocked || q->cands[j].narrow)
                continue;
            track_t *slot = NULL;
            for (size_t t = 0; t < maxt && !slot; t++)
                if (!tr[t].used)
                    slot = &tr[t];
            if (!slot) {
                q->stats.dropped++;
                continue;
            }
            open_track(q, c, slot, bin, hop, floor, q->cands[j].weak, &events[nev++]);
        }
        /* A BR600 track that found no candidate stays alive while the largest box within
           +-tol of its opening bin is over the threshold, or a BR100-wide box (over the
           BR600 box length) within +-(baud/2 + 2 bins): where a frame's bits stay equal
           its power is one line at the carrier, where they alternate two lines +-300 Hz
           away; the wide box maximum then leaves the track's tolerance or is no local
           maximum of its own, and holds half the power at most, while a narrow box on a
           line keeps most of it. Anchored at the opening bin, so the track cannot walk
           along an interferer's shoulder; a line that lasts longer than a frame still
           ends as too long. */
        if (k->baud == 600) {
            const class_t *k1 = &q->cls[0];
            const double thr_sum = q->thr_br600 * (double)k->width * k->len;
            const double thr_line = q->thr * (double)k1->width * k->len;
            const long line_tol = lround(k->baud / 2.0 / q->cfg.bin_hz) + 2;
            for (size_t t = 0; t < maxt; t++) {
                track_t *tk = &tr[t];
                if (!tk->used || tk->matched || tk->zombie)
                    continue;
                long lo = tk->bin0 - k->tol, hi = tk->bin0 + k->tol;
                long llo = tk->bin0 - line_tol, lhi = tk->bin0 + line_tol;
                lo = lo < 0 ? 0 : lo;
                llo = llo < 0 ? 0 : llo;
                hi = hi > (long)n - 1 ? (long)n - 1 : hi;
                lhi = lhi > (long)n - 1 ? (long)n - 1 : lhi;
                bool on = false;
                for (long i = lo; i <= hi && !on; i++)
                    on = q->run[c][i] - pre_line_sum(k, tk, i, k->half) >= thr_sum;
                for (long i = llo; i <= lhi && !on; i++)
                    on = q->run100_short[i] - pre_line_sum(k, tk, i, k1->half) >= thr_line;
                if (on) {
                    tk->matched = true;
                    tk->last_match = hop;
                    tk->misses = 0;
                }
            }
        }
        /* per-track bookkeeping */
        for (size_t t = 0; t < maxt; t++) {
            track_t *tk = &tr[t];
            if (!tk->used)
                continue;
            if (tk->open_hop == hop)
                continue; /* just opened, already backfilled */
            if (!tk->matched)
                tk->misses++;
            if (!tk->zombie) {
                if (tk->nprof < k->max_hops)
                    tk->prof[tk->nprof++] = row(q, c, hop)[tk->bin] - (float)k->width;
                if (tk->matched)
                    tk->floor0 = floor[tk->bin];
                snapshot(q, c, tk);
            }
            if (tk->misses >= k->close_misses) {
                if (!tk->zombie)
                    close_track(q, c, tk, BURSTDET_ACCEPTED, &events[nev++]);
                tk->used = false;
                continue;
            }
            double open_s = (double)(hop - tk->open_hop) * q->cfg.hop_s;
            if (!tk->zombie && open_s > k->max_seq_s + k->len * q->cfg.hop_s) {
                if (k->baud != 600 || !close_prefix(q, c, tk, &events[nev]))
                    close_track(q, c, tk, BURSTDET_REJ_LONG, &events[nev]);
                nev++;
                tk->zombie = true;
            }
        }
    }
    return (int)nev;
}

int burstdet_flush(burstdet_t *q, burstdet_event_t *events, size_t cap)
{
    if (cap < burstdet_max_events(q))
        return -1;
    size_t nev = 0;
    for (int c = 0; c < NCLASS; c++) {
        for (size_t t = 0; t < q->cfg.max_tracks; t++) {
            track_t *tk = &q->tracks[c][t];
            if (!tk->used)
                continue;
            if (!tk->zombie)
                close_track(q, c, tk, BURSTDET_ACCEPTED, &events[nev++]);
            tk->used = false;
        }
    }
    return (int)nev;
}

void burstdet_reset(burstdet_t *q)
{
    if (!q)
        return;
    for (int c = 0; c < NCLASS; c++) {
        for (size_t t = 0; t < q->cfg.max_tracks; t++)
            q->tracks[c][t].used = false;
        memset(q->run[c], 0, q->nbins * sizeof(float));
    }
    memset(q->run100_short, 0, q->nbins * sizeof(float));
    q->hops_seen = 0;
}

void burstdet_get_stats(const burstdet_t *q, burstdet_stats_t *stats)
{
    *stats = q->stats;
}

void burstdet_destroy(burstdet_t *q)
{
    if (q)
        cleanup(q);
}
