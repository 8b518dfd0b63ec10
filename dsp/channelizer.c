/* channelizer: overlapped FFT, Hann power and robust noise floor per hop. Licence: MIT. */
#include "channelizer.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "selectk.h"

#define FLOOR_QUANTILE 0.3
#define FLOOR_CLIP 3.0 /* bins above 3x the floor are taken as signal */

struct channelizer {
    double rate_sps;
    size_t n, hop;
    long bin_lo;
    size_t nbins;
    size_t block, nblocks;
    double alpha_smooth;  /* hop / floor_tau_s */
    size_t window;        /* hops a block may stay occupied before it is a new level */
    float complex *frame; /* n samples being filled (FFTW-aligned: transformed in place
                             of a copy) */
    size_t fill;
    float complex *ring; /* history x n spectra; hop b in slot b % history */
    size_t history;
    fftwf_plan plan;
    float *power;           /* nbins */
    float *floor;           /* nbins */
    double *block_floor;    /* nblocks: the floor */
    float *bf;              /* nblocks + 1: the floor as floats, last one repeated */
    double *block_smooth;   /* nblocks: smoothed per-hop estimates */
    size_t *block_stuck;    /* consecutive hops with the block mostly occupied */
    uint16_t *interp_block; /* nbins */
    float *interp_frac;     /* nbins */
    float *scratch;         /* block */
    uint64_t hops;          /* since reset */
    uint64_t floor_updates; /* since create (or reset without keep) */
};

static void plan_interpolation(channelizer_t *q);

static void cleanup(channelizer_t *q)
{
    if (q->plan)
        fftwf_destroy_plan(q->plan);
    fftwf_free(q->ring);
    fftwf_free(q->frame);
    free(q->power);
    free(q->floor);
    free(q->block_floor);
    free(q->bf);
    free(q->block_smooth);
    free(q->block_stuck);
    free(q->interp_block);
    free(q->interp_frac);
    free(q->scratch);
    free(q);
}

channelizer_t *channelizer_create(const channelizer_config_t *cfg)
{
    if (!cfg) {
        log_error("Channelizer not created, reason: no configuration");
        return NULL;
    }
    if (!(cfg->rate_sps > 0) || cfg->fft_len < 64 || (cfg->fft_len & 1)) {
        log_error("Channelizer not created, reason: bad rate or FFT length, rate_sps: %g, "
                  "fft_len: %zu",
                  cfg->rate_sps, cfg->fft_len);
        return NULL;
    }
    double bin_hz = cfg->rate_sps / (double)cfg->fft_len;
    long lo = (long)ceil(cfg->band_lo_hz / bin_hz), hi = (long)floor(cfg->band_hi_hz / bin_hz);
    if (!(cfg->band_lo_hz < cfg->band_hi_hz) || lo <= -(long)cfg->fft_len / 2 ||
        hi >= (long)cfg->fft_len / 2 || hi - lo < 8) {
        log_error("Channelizer not created, reason: analysed band outside the working band, "
                  "band_lo_hz: %g, band_hi_hz: %g, rate_sps: %g",
                  cfg->band_lo_hz, cfg->band_hi_hz, cfg->rate_sps);
        return NULL;
    }
    channelizer_t *q = calloc(1, sizeof *q);
    if (!q) {
        log_error("Channelizer not created, reason: out of memory");
        return NULL;
    }
    q->rate_sps = cfg->rate_sps;
    q->n = cfg->fft_len;
    q->hop = q->n / 2;
    q->bin_lo = lo;
    q->nbins = (size_t)(hi - lo + 1);
    q->block = cfg->floor_block_bins ? cfg->floor_block_bins : 128;
    if (q->block > q->nbins)
        q->block = q->nbins;
    q->nblocks = (q->nbins + q->block / 2) / q->block;
    if (q->nblocks < 1)
        q->nblocks = 1;
    double hop_s = (double)q->hop / q->rate_sps;
    double tau_s = cfg->floor_tau_s > 0 ? cfg->floor_tau_s : 1.0;
    q->alpha_smooth = hop_s / tau_s;
    if (q->alpha_smooth > 1)
        q->alpha_smooth = 1;
    /* BR100 bursts last up to 2.1 s but fill few bins; BR600 bursts fill more but last
       <= 0.35 s: a block occupied for longer than 2 tau is a new level */
    q->window = (size_t)ceil(2 * tau_s / hop_s);
    q->history = cfg->history_hops ? cfg->history_hops : 1;
    q->frame = fftwf_malloc(q->n * sizeof(fftwf_complex));
    q->ring = fftwf_malloc(q->history * q->n * sizeof(fftwf_complex));
    q->power = malloc(q->nbins * sizeof *q->power);
    q->floor = malloc(q->nbins * sizeof *q->floor);
    q->block_floor = calloc(q->nblocks, sizeof *q->block_floor);
    q->bf = calloc(q->nblocks + 1, sizeof *q->bf);
    q->block_smooth = calloc(q->nblocks, sizeof *q->block_smooth);
    q->block_stuck = calloc(q->nblocks, sizeof *q->block_stuck);
    q->interp_block = malloc(q->nbins * sizeof *q->interp_block);
    q->interp_frac = malloc(q->nbins * sizeof *q->interp_frac);
    q->scratch = malloc((q->nbins / q->nblocks + 1) * sizeof *q->scratch);
    if (!q->frame || !q->ring || !q->power || !q->floor || !q->block_floor || !q->bf ||
        !q->block_smooth || !q->block_stuck || !q->interp_block || !q->interp_frac || !q->scratch) {
        log_error("Channelizer not created, reason: out of memory");
        cleanup(q);
        return NULL;
    }
    if (q->nblocks > 65535) {
        log_error("Channelizer not created, reason: too many noise-floor blocks");
        cleanup(q);
        return NULL;
    }
    plan_interpolation(q);
    /* executed with the frame and a ring slot (fftwf_execute_dft): slots keep the
       alignment of the ring's start when 8N is a multiple of 64 bytes, else plan for any */
    unsigned flags = (cfg->fft_measure ? FFTW_MEASURE : FFTW_ESTIMATE) |
                     ((q->n * sizeof(fftwf_complex)) % 64 ? FFTW_UNALIGNED : 0);
    q->plan = fftwf_plan_dft_1d((int)q->n, (fftwf_complex *)q->frame, (fftwf_complex *)q->ring,
                                FFTW_FORWARD, flags);
    if (!q->plan) {
        log_error("Channelizer not created, reason: FFTW plan failed, fft_len: %zu", q->n);
        cleanup(q);
        return NULL;
    }
    return q;
}

const float complex *channelizer_spectrum(const channelizer_t *q, uint64_t hop)
{
    if (hop >= q->hops || q->hops - hop > q->history)
        return NULL;
    return q->ring + (hop % q->history) * q->n;
}

double channelizer_bin_hz(const channelizer_t *q)
{
    return q->rate_sps / (double)q->n;
}

size_t channelizer_hop_len(const channelizer_t *q)
{
    return q->hop;
}

long channelizer_bin_lo(const channelizer_t *q)
{
    return q->bin_lo;
}

size_t channelizer_nbins(const channelizer_t *q)
{
    return q->nbins;
}

/* Bins [block_start(b), block_start(b+1)) form block b: nblocks near-equal blocks. */
static size_t block_start(const channelizer_t *q, size_t b)
{
    return b * q->nbins / q->nblocks;
}

/* Mean of the block's powers below c * ref, corrected for the truncation of an exponential
 * distribution: E[x | x < c mu] = mu * (1 - c e^-c / (1 - e^-c)). Returns -1 when fewer
 * than a quarter of the bins are below (the block is mostly occupied). */
static double truncated_mean(const float *p, size_t m, double ref)
{
    const double c = FLOOR_CLIP;
    const double g = 1.0 - c * exp(-c) / (1.0 - exp(-c));
    /* branch-free (vectorisable) float sums: a block holds at most a few hundred bins */
    float t = (float)(c * ref), sum = 0, cnt = 0;
    for (size_t i = 0; i < m; i++) {
        float below = p[i] < t ? 1.0f : 0.0f;
        sum += below * p[i];
        cnt += below;
    }
    if (cnt * 4 < (float)m || cnt == 0)
        return -1;
    return (double)sum / (double)cnt / g;
}

/* Quantile estimate of the mean: E[X_(k+1) of m] = mean * sum_{i=m-k}^{m} 1/i for
 * exponential order statistics. */
static double quantile_mean(channelizer_t *q, const float *p, size_t m)
{
    size_t k = (size_t)(FLOOR_QUANTILE * (double)m);
    memcpy(q->scratch, p, m * sizeof *q->scratch);
    double e = 0;
    for (size_t i = m - k; i <= m; i++)
        e += 1.0 / (double)i;
    return selectk(q->scratch, m, k) / e;
}

static void update_floor(channelizer_t *q)
{
    double alpha = 1.0 / (double)(q->floor_updates + 1);
    if (alpha < q->alpha_smooth)
        alpha = q->alpha_smooth;
    for (size_t b = 0; b < q->nblocks; b++) {
        size_t i0 = block_start(q, b), m = block_start(q, b + 1) - i0;
        const float *p = q->power + i0;
        double *sm = &q->block_smooth[b];
        double est;
        if (q->floor_updates == 0) {
            /* start from the plain mean (an upper bound) and truncate downwards */
            est = 0;
            for (size_t i = 0; i < m; i++)
                est += p[i];
            est /= (double)m;
            for (int it = 0; it < 4; it++) {
                double e = truncated_mean(p, m, est);
                if (e < 0)
                    break;
                est = e;
            }
            *sm = est;
        } else {
            est = truncated_mean(p, m, *sm);
            if (est >= 0) {
                q->block_stuck[b] = 0;
            } else if (++q->block_stuck[b] > q->window) {
                /* occupied for a whole window: a new level (noise rise, wide interferer),
                   not a burst; climb towards it */
                est = quantile_mean(q, p, m);
            }
            if (est >= 0)
                *sm += alpha * (est - *sm);
        }
        q->block_floor[b] = *sm;
        q->bf[b] = (float)(*sm > 1e-30 ? *sm : 1e-30);
    }
    q->bf[q->nblocks] = q->bf[q->nblocks - 1]; /* so that bl + 1 always exists */
    q->floor_updates++;
    const float *restrict bf = q->bf, *restrict fr = q->interp_frac;
    const uint16_t *restrict ib = q->interp_block;
    float *restrict fl = q->floor;
    for (size_t i = 0; i < q->nbins; i++) {
        float a = bf[ib[i]], b = bf[ib[i] + 1];
        fl[i] = a + (b - a) * fr[i];
    }
}

/* Linear interpolation between block centres, flat beyond the outer centres: bin i takes
 * (1 - frac) of block interp_block[i] and frac of the next. */
static void plan_interpolation(channelizer_t *q)
{
    size_t b = 0;
    for (size_t i = 0; i < q->nbins; i++) {
        if (q->nblocks == 1) {
            q->interp_block[i] = 0;
            q->interp_frac[i] = 0;
            continue;
        }
        while (b + 1 < q->nblocks - 1 &&
               (double)i >= (block_start(q, b + 1) + block_start(q, b + 2)) / 2.0)
            b++;
        double c0 = (block_start(q, b) + block_start(q, b + 1)) / 2.0;
        double c1 = (block_start(q, b + 1) + block_start(q, b + 2)) / 2.0;
        double f = ((double)i - c0) / (c1 - c0);
        q->interp_block[i] = (uint16_t)b;
        q->interp_frac[i] = (float)(f < 0 ? 0 : f > 1 ? 1 : f);
    }
}

/* |0.5 X[j] - 0.25 (X[j-1] + X[j+1])|^2 for j = 0 .. len-1 (X[-1] and X[len] must exist):
 * the periodic Hann window applied in the frequency domain. */
static void hann_power(const float complex *X, size_t len, float *out)
{
    /* four bins at a time on the interleaved floats (a complex is two floats, C11 6.2.5):
       -O2 vectorises such fixed-size blocks, not loops of unknown length */
    const float *x = (const float *)X;
    size_t j = 0;
    for (; j + 4 <= len; j += 4) {
        float y[8];
        for (int l = 0; l < 8; l++)
            y[l] = 0.5f * x[2 * j + l] - 0.25f * (x[2 * j + l - 2] + x[2 * j + l + 2]);
        for (int l = 0; l < 4; l++)
            out[j + l] = y[2 * l] * y[2 * l] + y[2 * l + 1] * y[2 * l + 1];
    }
    for (; j < len; j++) {
        float re = 0.5f * crealf(X[j]) - 0.25f * (crealf(X[j - 1]) + crealf(X[j + 1]));
        float im = 0.5f * cimagf(X[j]) - 0.25f * (cimagf(X[j - 1]) + cimagf(X[j + 1]));
        out[j] = re * re + im * im;
    }
}

static void analyse(channelizer_t *q, channelizer_hop_t *hop)
{
    float complex *X = q->ring + (q->hops % q->history) * q->n;
    /* out-of-place complex DFTs preserve their input (FFTW default): the frame survives */
    fftwf_execute_dft(q->plan, (fftwf_complex *)q->frame, (fftwf_complex *)X);
    long n = (long)q->n;
    /* the analysed bins are two contiguous runs of FFTW indices: [N + bin_lo, N) for the
       negative frequencies, [0, hi] for the rest; only their ends wrap */
    for (size_t i = 0; i < q->nbins;) {
        long k = q->bin_lo + (long)i;
        long k0 = k < 0 ? k + n : k;
        long run_end = k < 0 ? n : n - 1; /* exclusive, in FFTW indices */
        size_t len = (size_t)(run_end - k0);
        if (len > q->nbins - i)
            len = q->nbins - i;
        if (k0 == 0 || k0 == n - 1 || len < 2) {
            long km = k0 == 0 ? n - 1 : k0 - 1, kp = k0 == n - 1 ? 0 : k0 + 1;
            float complex w = 0.5f * X[k0] - 0.25f * (X[km] + X[kp]);
            q->power[i] = crealf(w) * crealf(w) + cimagf(w) * cimagf(w);
            i++;
            continue;
        }
        if (k0 + (long)len >= n) /* keep the last index of the array for the slow path */
            len = (size_t)(n - 1 - k0);
        hann_power(X + k0, len, q->power + i);
        i += len;
    }
    update_floor(q);
    hop->index = q->hops;
    hop->first_sample = q->hops * q->hop;
    hop->spectrum = X;
    hop->power = q->power;
    hop->floor = q->floor;
    hop->bin_lo = q->bin_lo;
    hop->nbins = q->nbins;
    q->hops++;
    /* keep the second half as the next frame's first half */
    memmove(q->frame, q->frame + q->hop, (q->n - q->hop) * sizeof *q->frame);
    q->fill = q->n - q->hop;
}

int channelizer_process(channelizer_t *q, const float complex *in, size_t n, size_t *consumed,
                        channelizer_hop_t *hop)
{
    size_t need = q->n - q->fill;
    size_t take = n < need ? n : need;
    memcpy(q->frame + q->fill, in, take * sizeof *in);
    q->fill += take;
    *consumed = take;
    if (q->fill < q->n)
        return 0;
    analyse(q, hop);
    return 1;
}

void channelizer_reset(channelizer_t *q, int keep_floor)
{
    if (!q)
        return;
    q->fill = 0;
    q->hops = 0;
    if (!keep_floor) {
        q->floor_updates = 0;
        memset(q->block_floor, 0, q->nblocks * sizeof *q->block_floor);
        memset(q->block_stuck, 0, q->nblocks * sizeof *q->block_stuck);
    }
}

void channelizer_destroy(channelizer_t *q)
{
    if (q)
        cleanup(q);
}
