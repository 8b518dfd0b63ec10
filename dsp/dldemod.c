/* dldemod: Sigfox downlink GFSK burst receiver (spec rev 1.4 §2.5.2, §4). Licence: MIT.
 * Processing steps: include/dldemod.h. */
#include "dldemod.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>
#include <liquid/liquid.h>

#include "gfskmod.h"

#define SPS 8 /* DLDEMOD_RATE_SPS / 600 */
#define FRAME_SAMPLES (DL_FRAME_BITS * SPS)
#define TONE_HZ 800.0 /* §2.5.2 deviation */
#define OBW_HZ 1900.0 /* measured 99 % bandwidth (test_gfskmod) */
#define CENTROID_HALF_HZ 1300.0
#define CAND_SPACING_HZ 3000.0
#define CAND_Z_MIN 6.0 /* PSD detection, noise standard deviations */
#define EDGE_HZ 2400.0
#define MAX_FT_ERRORS 3
#define MAX_SYNC_ERRORS 20 /* of 104; noise or misaligned frames give ~52 */
#define FINE_NFFT 4096     /* 1.17 Hz bins at 4800 sps */
#define FINE_SPAN_HZ 400.0
#define RESAMP_AS_DB 60.0f
#define DECIM_M 12u /* integer decimator semi-length, output samples */
#define RESAMP_M 15u
#define RESAMP_NPFB 64u
#define CHUNK 1024
#define REF_OVER 8 /* reference oversampling: timing steps of 1/64 symbol */
#define MAX_CAND 32
#define MAX_FOUND 64

struct dldemod {
    double rate_sps;
    double lo_hz, hi_hz;
    size_t max_in;
    float threshold;
    int max_candidates;
    /* wideband PSD */
    int nfft;
    float *win;
    double win_pow; /* Σ w² */
    fftwf_complex *fin, *fout;
    fftwf_plan plan;
    double *psd, *scratch;
    double noise_bin; /* mean noise power per PSD bin */
    double n0;        /* noise density, |x|² per Hz */
    /* per-candidate channel */
    firdecim_crcf decim; /* integer stage to 9600..19200 sps (NULL: none) */
    unsigned decim_d;
    float complex *grp; /* decim_d inputs waiting for the decimator */
    unsigned grp_n;
    resamp_crcf resamp; /* fractional stage to 4800 sps */
    double r;           /* actual output/input rate */
    double d_out;       /* resampler delay, output samples */
    float complex *mix; /* CHUNK */
    float complex *dec;
    size_t dec_cap;
    float *ep, *em;   /* tone correlator energies (+800 / -800 Hz) */
    float *score_buf; /* energies, for the median */
    double *corr;     /* sync correlation per offset */
    float *lep, *lem; /* energies of the refined local copy */
    float *rep, *rem; /* energies of the re-modulated reference */
    /* refinement */
    gfskmod_t *refmod; /* re-modulator at REF_OVER × 4800 sps */
    float complex *ref;
    size_t ref_len;
    long ref_off; /* samples before bit 0 in ref (the ramp) */
    float complex *loc;
    fftwf_complex *ffin, *ffout;
    fftwf_plan fplan;
    uint8_t sync[DL_SYNC_BITS];
    float complex tone_p[SPS], tone_m[SPS];
    double cand_hz[MAX_CAND];
    dldemod_burst_t found[MAX_FOUND];
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int cmp_burst(const void *a, const void *b)
{
    const dldemod_burst_t *x = a, *y = b;
    return (x->sample_idx > y->sample_idx) - (x->sample_idx < y->sample_idx);
}

static void chain_reset(dldemod_t *q)
{
    if (q->decim)
        firdecim_crcf_reset(q->decim);
    resamp_crcf_reset(q->resamp);
    q->grp_n = 0;
}

/* Decimates n samples (already mixed) into out; returns the output count. The integer
 * stage takes whole groups of decim_d inputs, the remainder waits in q->grp. */
static size_t chain_run(dldemod_t *q, const float complex *in, size_t n, float complex *out)
{
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        float complex v = in[i];
        if (q->decim) {
            q->grp[q->grp_n++] = v;
            if (q->grp_n < q->decim_d)
                continue;
            q->grp_n = 0;
            firdecim_crcf_execute(q->decim, q->grp, &v);
        }
        unsigned ny = 0;
        resamp_crcf_execute(q->resamp, v, out + pos, &ny);
        pos += ny;
    }
    return pos;
}

/* Measures the decimation chain's delay in output samples: a unit step at input 0
 * crosses 0.5 at the output at the delay of its (linear-phase) filters. */
static double measure_resamp_delay(dldemod_t *q)
{
    chain_reset(q);
    for (int i = 0; i < CHUNK; i++)
        q->mix[i] = 1.0f;
    size_t limit = (size_t)fmax(200000.0, q->rate_sps);
    size_t out_idx = 0;
    float prev = 0;
    for (size_t in = 0; in < limit; in += CHUNK) {
        size_t ny = chain_run(q, q->mix, CHUNK, q->dec);
        for (size_t i = 0; i < ny; i++, out_idx++) {
            float v = crealf(q->dec[i]);
            if (v >= 0.5f && prev < 0.5f && out_idx > 0)
                return (double)out_idx - 1.0 + (0.5 - prev) / (double)(v - prev);
            prev = v;
        }
    }
    return NAN;
}

dldemod_t *dldemod_create(const dldemod_config_t *cfg)
{
    if (!cfg || !(cfg->rate_sps >= 9600.0 && cfg->rate_sps <= 20e6))
        return NULL;
    double lo = cfg->search_lo_hz, hi = cfg->search_hi_hz;
    if (lo == 0 && hi == 0) {
        lo = -(cfg->rate_sps / 2 - EDGE_HZ);
        hi = cfg->rate_sps / 2 - EDGE_HZ;
    }
    if (!(lo < hi) || lo < -cfg->rate_sps / 2 || hi > cfg->rate_sps / 2)
        return NULL;
    if (cfg->detect_threshold < 0 || cfg->max_candidates < 0 || cfg->max_candidates > MAX_CAND)
        return NULL;

    dldemod_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->rate_sps = cfg->rate_sps;
    q->lo_hz = lo;
    q->hi_hz = hi;
    q->max_in = cfg->max_block_samples ? cfg->max_block_samples : (size_t)(2.0 * cfg->rate_sps);
    q->threshold = cfg->detect_threshold > 0 ? cfg->detect_threshold : 6.0f;
    q->max_candidates = cfg->max_candidates ? cfg->max_candidates : 8;
    if (q->max_in < (size_t)(DL_FRAME_BITS / 600.0 * q->rate_sps))
        goto fail;

    /* PSD bins of 20-40 Hz: fine enough to resolve the 1.9 kHz GFSK spectrum. */
    q->nfft = 64;
    while (q->nfft * 2 <= q->rate_sps / 20.0)
        q->nfft *= 2;
    q->win = malloc(q->nfft * sizeof *q->win);
    q->psd = malloc(q->nfft * sizeof *q->psd);
    q->scratch = malloc(q->nfft * sizeof *q->scratch);
    q->fin = fftwf_malloc(q->nfft * sizeof *q->fin);
    q->fout = fftwf_malloc(q->nfft * sizeof *q->fout);
    if (!q->win || !q->psd || !q->scratch || !q->fin || !q->fout)
        goto fail;
    q->plan = fftwf_plan_dft_1d(q->nfft, q->fin, q->fout, FFTW_FORWARD, FFTW_ESTIMATE);
    if (!q->plan)
        goto fail;
    for (int i = 0; i < q->nfft; i++) {
        q->win[i] = 0.5f - 0.5f * cosf(2.0f * (float)M_PI * (float)i / (float)q->nfft);
        q->win_pow += (double)q->win[i] * q->win[i];
    }

    /* Integer Kaiser decimator down to 9600..19200 sps, then liquid's arbitrary
     * resampler (ratio 0.25..0.5) to 4800 sps. (msresamp_crcf would do both but leaks
     * memory in liquid 1.5.0.) */
    q->decim_d = q->rate_sps >= 19200.0 ? (unsigned)floor(q->rate_sps / 9600.0) : 1;
    double r2 = DLDEMOD_RATE_SPS * q->decim_d / q->rate_sps;
    if (q->decim_d > 1) {
        q->decim = firdecim_crcf_create_kaiser(q->decim_d, DECIM_M, RESAMP_AS_DB);
        q->grp = malloc(q->decim_d * sizeof *q->grp);
        if (!q->decim || !q->grp)
            goto fail;
        firdecim_crcf_set_scale(q->decim, 1.0f / (float)q->decim_d); /* unity passband gain */
    }
    q->resamp =
        resamp_crcf_create((float)r2, RESAMP_M, 0.45f * (float)r2, RESAMP_AS_DB, RESAMP_NPFB);
    q->mix = malloc(CHUNK * sizeof *q->mix);
    if (!q->resamp || !q->mix)
        goto fail;
    q->r = resamp_crcf_get_rate(q->resamp) / q->decim_d;
    size_t per_chunk = (size_t)ceil(q->r * CHUNK) + 8;
    q->dec_cap = (size_t)ceil(q->r * (double)q->max_in) + 2 * per_chunk + 64;
    if (q->dec_cap < per_chunk + 64)
        q->dec_cap = per_chunk + 64;
    q->dec = malloc(q->dec_cap * sizeof *q->dec);
    q->ep = malloc(q->dec_cap * sizeof *q->ep);
    q->em = malloc(q->dec_cap * sizeof *q->em);
    q->score_buf = malloc(2 * q->dec_cap * sizeof *q->score_buf);
    q->corr = malloc(q->dec_cap * sizeof *q->corr);
    q->lep = malloc((FRAME_SAMPLES + 4 * SPS) * sizeof *q->lep);
    q->lem = malloc((FRAME_SAMPLES + 4 * SPS) * sizeof *q->lem);
    q->rep = malloc(FRAME_SAMPLES * sizeof *q->rep);
    q->rem = malloc(FRAME_SAMPLES * sizeof *q->rem);
    if (!q->dec || !q->ep || !q->em || !q->score_buf || !q->corr || !q->lep || !q->lem || !q->rep ||
        !q->rem)
        goto fail;
    q->d_out = measure_resamp_delay(q);
    if (!isfinite(q->d_out))
        goto fail;

    gfskmod_config_t mc = {.rate_sps = DLDEMOD_RATE_SPS * REF_OVER, .max_bits = DL_FRAME_BITS};
    q->refmod = gfskmod_create(&mc);
    if (!q->refmod)
        goto fail;
    q->ref_len = gfskmod_burst_samples(q->refmod, DL_FRAME_BITS);
    q->ref_off = lround(gfskmod_data_offset_s(q->refmod) * DLDEMOD_RATE_SPS * REF_OVER);
    q->ref = malloc(q->ref_len * sizeof *q->ref);
    q->loc = malloc((FRAME_SAMPLES + 4 * SPS) * sizeof *q->loc);
    q->ffin = fftwf_malloc(FINE_NFFT * sizeof *q->ffin);
    q->ffout = fftwf_malloc(FINE_NFFT * sizeof *q->ffout);
    if (!q->ref || !q->loc || !q->ffin || !q->ffout)
        goto fail;
    q->fplan = fftwf_plan_dft_1d(FINE_NFFT, q->ffin, q->ffout, FFTW_FORWARD, FFTW_ESTIMATE);
    if (!q->fplan)
        goto fail;

    dl_sync_bits(q->sync);
    for (int i = 0; i < SPS; i++) {
        double ph = 2.0 * M_PI * TONE_HZ * i / DLDEMOD_RATE_SPS;
        q->tone_p[i] = (float complex)cexp(-I * ph); /* correlates with +800 Hz */
        q->tone_m[i] = (float complex)cexp(I * ph);
    }
    return q;
fail:
    dldemod_destroy(q);
    return NULL;
}

size_t dldemod_max_block(const dldemod_t *q)
{
    return q ? q->max_in : 0;
}

double dldemod_noise_dbfs_hz(const dldemod_t *q)
{
    return q && q->n0 > 0 ? 10.0 * log10(q->n0) : -INFINITY;
}

static double bin_hz(const dldemod_t *q, int k) /* k in fftshifted order */
{
    return (k - q->nfft / 2) * q->rate_sps / q->nfft;
}

/* Welch PSD (non-overlapping Hann segments, fftshifted) and noise floor; returns the
 * number of segments. */
static int psd_compute(dldemod_t *q, const float complex *x, size_t n)
{
    int nfft = q->nfft, m = 0;
    memset(q->psd, 0, nfft * sizeof *q->psd);
    for (size_t s = 0; s + (size_t)nfft <= n; s += nfft, m++) {
        for (int i = 0; i < nfft; i++)
            q->fin[i] = x[s + i] * q->win[i];
        fftwf_execute(q->plan);
        for (int i = 0; i < nfft; i++) {
            int k = (i + nfft / 2) % nfft;
            q->psd[k] += (double)(crealf(q->fout[i]) * crealf(q->fout[i]) +
                                  cimagf(q->fout[i]) * cimagf(q->fout[i]));
        }
    }
    if (m == 0)
        return 0;
    for (int k = 0; k < nfft; k++)
        q->psd[k] /= m;
    /* Noise floor from the search range's bins. A bin averaged over m segments follows
     * mean/(2m) × a chi-square law with k = 2m degrees of freedom, whose quantile at
     * normal deviate z is about k (1 - 2/(9k) + z sqrt(2/(9k)))³ (Wilson-Hilferty). */
    int cnt = 0;
    for (int k = 0; k < nfft; k++)
        if (bin_hz(q, k) >= q->lo_hz && bin_hz(q, k) <= q->hi_hz)
            q->scratch[cnt++] = q->psd[k];
    if (cnt == 0)
        return 0;
    qsort(q->scratch, cnt, sizeof *q->scratch, cmp_double);
    /* The 30th percentile rather than the median, so that a signal filling a good part
     * of a narrow search range (low sample rates) does not lift the estimate. */
    double k = 2.0 * m, pct = q->scratch[(int)(0.3 * cnt)];
    double ratio = pow(1.0 - 2.0 / (9.0 * k) - 0.5244 * sqrt(2.0 / (9.0 * k)), 3.0);
    q->noise_bin = pct / ratio;
    /* White noise of variance σ² = N0 × rate gives E|X_k|² = σ² Σw². */
    q->n0 = q->noise_bin / (q->win_pow * q->rate_sps);
    return m;
}

/* Candidate carriers: peaks of the PSD summed over the signal bandwidth, in noise
 * standard deviations above the floor. Returns the count. */
static int find_candidates(dldemod_t *q, int m)
{
    double bin = q->rate_sps / q->nfft;
    int half = (int)lround(OBW_HZ / 2 / bin), nc = 0;
    double sd = q->noise_bin * sqrt((2.0 * half + 1) / m);
    /* box sums into scratch (already used for the median, free now) */
    for (int k = 0; k < q->nfft; k++) {
        double s = 0;
        for (int i = k - half; i <= k + half; i++)
            if (i >= 0 && i < q->nfft)
                s += q->psd[i] - q->noise_bin;
        q->scratch[k] = s / sd;
    }
    while (nc < q->max_candidates) {
        int best = -1;
        for (int k = 0; k < q->nfft; k++) {
            double f = bin_hz(q, k);
            if (f < q->lo_hz || f > q->hi_hz)
                continue;
            if (best < 0 || q->scratch[k] > q->scratch[best])
                best = k;
        }
        if (best < 0 || q->scratch[best] < CAND_Z_MIN)
            break;
        /* Power centroid (noise removed) around the peak, twice re-centred. */
        double fc = bin_hz(q, best);
        for (int it = 0; it < 2; it++) {
            double sw = 0, sf = 0;
            for (int k = 0; k < q->nfft; k++) {
                double f = bin_hz(q, k);
                if (fabs(f - fc) > CENTROID_HALF_HZ)
                    continue;
                double p = q->psd[k] - q->noise_bin;
                if (p > 0) {
                    sw += p;
                    sf += p * f;
                }
            }
            if (sw > 0)
                fc = sf / sw;
        }
        q->cand_hz[nc++] = fc;
        for (int k = 0; k < q->nfft; k++)
            if (fabs(bin_hz(q, k) - bin_hz(q, best)) < CAND_SPACING_HZ)
                q->scratch[k] = -INFINITY;
    }
    return nc;
}

/* Mixes x down by f_hz and decimates it into q->dec. Returns the output length. The mixer
 * is a double-precision phasor re-anchored once per chunk: liquid 1.5's nco_crcf has
 * -60 dBc spurs (measured in gfskmod), which would alias a strong burst into the channel
 * of a candidate a few hundred kHz away. */
static size_t channelize(dldemod_t *q, const float complex *x, size_t n, double f_hz)
{
    const double dphi = -2.0 * M_PI * f_hz / q->rate_sps;
    const double complex step = cexp(I * dphi);
    chain_reset(q);
    size_t pos = 0, per_chunk = (size_t)ceil(q->r * CHUNK) + 8;
    for (size_t s = 0; s < n; s += CHUNK) {
        size_t len = n - s < CHUNK ? n - s : CHUNK;
        double complex rot = cexp(I * fmod(dphi * (double)s, 2.0 * M_PI));
        for (size_t i = 0; i < len; i++, rot *= step)
            q->mix[i] = (float complex)(x[s + i] * rot);
        if (pos + per_chunk > q->dec_cap)
            break;
        pos += chain_run(q, q->mix, len, q->dec + pos);
    }
    return pos;
}

/* Tone correlator energies for a symbol window starting at every sample of y. */
static void tone_energies(const dldemod_t *q, const float complex *y, size_t n, float *ep,
                          float *em)
{
    for (size_t k = 0; k + SPS <= n; k++) {
        float complex cp = 0, cm = 0;
        for (int i = 0; i < SPS; i++) {
            cp += y[k + i] * q->tone_p[i];
            cm += y[k + i] * q->tone_m[i];
        }
        ep[k] = crealf(cp) * crealf(cp) + cimagf(cp) * cimagf(cp);
        em[k] = crealf(cm) * crealf(cm) + cimagf(cm) * cimagf(cm);
    }
}

/* Sync correlation at bit-0 offset tau (needs tau + DL_SYNC_BITS × SPS energies). */
static double sync_corr(const dldemod_t *q, const float *ep, const float *em, size_t tau)
{
    double c = 0;
    for (int j = 0; j < DL_SYNC_BITS; j++) {
        double m = (double)ep[tau + (size_t)j * SPS] - em[tau + (size_t)j * SPS];
        c += q->sync[j] ? m : -m;
    }
    return c;
}

/* Hard decisions of the 224 bits at offset tau into a packed frame; the 104 sync bits are
 * replaced by their known values after counting the errors. */
static void decide(const dldemod_t *q, const float *ep, const float *em, size_t tau,
                   uint8_t frame[DL_FRAME_BYTES], int *sync_err, int *ft_err)
{
    memset(frame, 0, DL_FRAME_BYTES);
    *sync_err = *ft_err = 0;
    for (int j = 0; j < DL_FRAME_BITS; j++) {
        int b = ep[tau + (size_t)j * SPS] > em[tau + (size_t)j * SPS];
        if (j < DL_SYNC_BITS) {
            if (b != q->sync[j]) {
                (*sync_err)++;
                if (j >= DL_PREAMBLE_BITS)
                    (*ft_err)++;
            }
            b = q->sync[j];
        }
        frame[j / 8] |= (uint8_t)(b << (7 - j % 8));
    }
}

/* Reference sample for decimated index i of a frame whose bit 0 starts at i = lag8 / 8
 * (lag8 in 1/8 samples); zero outside the re-modulated burst. */
static float complex ref_at(const dldemod_t *q, long i, long lag8)
{
    long k = q->ref_off + REF_OVER * i - lag8;
    return (k >= 0 && k < (long)q->ref_len) ? q->ref[k] : 0;
}

/* Data-aided carrier offset of y (bit 0 at y[0], FRAME_SAMPLES long) against the
 * re-modulated frame in q->ref: peak of the FFT of y × conj(ref). */
static double fine_freq(dldemod_t *q, const float complex *y)
{
    for (int i = 0; i < FINE_NFFT; i++)
        q->ffin[i] = i < FRAME_SAMPLES ? y[i] * conjf(ref_at(q, i, 0)) : 0;
    fftwf_execute(q->fplan);
    int span = (int)(FINE_SPAN_HZ / (DLDEMOD_RATE_SPS / FINE_NFFT)), best = 0;
    double best_p = -1, p[3];
    for (int k = -span; k <= span; k++) {
        float complex v = q->ffout[(k + FINE_NFFT) % FINE_NFFT];
        double pw = crealf(v) * crealf(v) + cimagf(v) * cimagf(v);
        if (pw > best_p) {
            best_p = pw;
            best = k;
        }
    }
    for (int d = -1; d <= 1; d++)
        p[d + 1] = cabsf(q->ffout[(best + d + FINE_NFFT) % FINE_NFFT]);
    double den = p[0] - 2 * p[1] + p[2], delta = den != 0 ? 0.5 * (p[0] - p[2]) / den : 0;
    if (delta > 0.5 || delta < -0.5)
        delta = 0;
    return (best + delta) * DLDEMOD_RATE_SPS / FINE_NFFT;
}

/* Correlation of y (bit 0 near y[0]) with the reference delayed by lag8/8 samples,
 * de-rotated by f_hz, as four quarter-frame sums. */
static void quarter_sums(const dldemod_t *q, const float complex *y, long lag8, double f_hz,
                         double complex qs[4])
{
    const size_t quarter = FRAME_SAMPLES / 4;
    qs[0] = qs[1] = qs[2] = qs[3] = 0;
    double complex rot = cexp(-2.0 * M_PI * I * f_hz / DLDEMOD_RATE_SPS), ph = 1;
    for (size_t i = 0; i < FRAME_SAMPLES; i++, ph *= rot)
        qs[i / quarter] += y[i] * conjf(ref_at(q, (long)i, lag8)) * ph;
}

/* Refines frequency and timing of a detection at decimated offset tau, re-detects the bits
 * and fills b. Returns 0, or -1 when the refined frame fails the sync checks. */
static int refine(dldemod_t *q, size_t n_dec, size_t tau, double f_cand, dldemod_burst_t *b)
{
    uint8_t frame[DL_FRAME_BYTES];
    int se, fe;
    decide(q, q->ep, q->em, tau, frame, &se, &fe);
    if (gfskmod_process(q->refmod, frame, DL_FRAME_BITS, q->ref, q->ref_len) < 0)
        return -1;
    double df = fine_freq(q, q->dec + tau);

    /* Local copy around tau (±2 symbols), de-rotated by df; symbols re-detected there. */
    const size_t margin = 2 * SPS;
    size_t start = tau >= margin ? tau - margin : 0;
    size_t len = FRAME_SAMPLES + 2 * margin;
    if (start + len > n_dec)
        len = n_dec - start;
    double complex rot = cexp(-2.0 * M_PI * I * df / DLDEMOD_RATE_SPS);
    double complex ph = cexp(-2.0 * M_PI * I * df * (double)start / DLDEMOD_RATE_SPS);
    for (size_t i = 0; i < len; i++, ph *= rot)
        q->loc[i] = q->dec[start + i] * (float complex)ph;
    tone_energies(q, q->loc, len, q->lep, q->lem);
    size_t rel = tau - start, best = rel;
    double cbest = -INFINITY;
    for (size_t t = rel >= 1 ? rel - 1 : 0; t <= rel + 1 && t + FRAME_SAMPLES <= len; t++) {
        double c = sync_corr(q, q->lep, q->lem, t);
        if (c > cbest) {
            cbest = c;
            best = t;
        }
    }
    decide(q, q->lep, q->lem, best, frame, &se, &fe);
    if (fe > MAX_FT_ERRORS || se > MAX_SYNC_ERRORS)
        return -1;
    if (gfskmod_process(q->refmod, frame, DL_FRAME_BITS, q->ref, q->ref_len) < 0)
        return -1;

    /* Fine timing: reference delays of -1 .. +1 samples in 1/8 steps; non-coherent sum
     * of quarter-frame correlations (robust to the ~1 Hz left after the FFT estimate),
     * parabolic peak. */
    const float complex *y = q->loc + best;
    double mbest = -1, mv[2 * REF_OVER + 1];
    long lbest = 0;
    for (long l = -REF_OVER; l <= REF_OVER; l++) {
        double complex qs[4];
        quarter_sums(q, y, l, 0, qs);
        mv[l + REF_OVER] = cabs(qs[0]) + cabs(qs[1]) + cabs(qs[2]) + cabs(qs[3]);
        if (mv[l + REF_OVER] > mbest) {
            mbest = mv[l + REF_OVER];
            lbest = l;
        }
    }
    double frac = 0;
    if (lbest > -REF_OVER && lbest < REF_OVER) {
        double a = mv[lbest + REF_OVER - 1], c = mv[lbest + REF_OVER + 1];
        double den = a - 2 * mbest + c;
        frac = den < 0 ? 0.5 * (a - c) / den : 0;
    }

    /* Residual frequency: median phase step between 16-symbol segment correlations. A
     * wrong decision shifts the re-modulated phase by 2π·h for the rest of the frame (CPFSK
     * memory, h = 8/3), so a frame-long coherent sum is fragile; the median ignores the
     * few steps that contain such a jump. */
    enum { SEG = 16 * SPS, NSEG = FRAME_SAMPLES / SEG };
    double complex segs[NSEG];
    double steps[NSEG - 1];
    for (int k = 0; k < NSEG; k++) {
        segs[k] = 0;
        for (int i = k * SEG; i < (k + 1) * SEG; i++)
            segs[k] += y[i] * conjf(ref_at(q, i, lbest));
    }
    for (int k = 0; k + 1 < NSEG; k++)
        steps[k] = carg(segs[k + 1] * conj(segs[k]));
    qsort(steps, NSEG - 1, sizeof *steps, cmp_double);
    double dres = steps[(NSEG - 1) / 2] / (2.0 * M_PI * SEG / DLDEMOD_RATE_SPS);

    /* Signal power, non-coherently per symbol for the same reason: the decided tone's
     * energy minus the other's (their noise parts cancel on average), over the same
     * quantity computed on the noise-free reference (which carries the ISI of each bit
     * pattern): A² = Σ ±(E+ - E-)_rx / Σ ±(E+ - E-)_ref. */
    for (int i = 0; i < FRAME_SAMPLES; i++)
        q->ffin[i] = ref_at(q, i, lbest);
    tone_energies(q, (const float complex *)q->ffin, FRAME_SAMPLES, q->rep, q->rem);
    double num = 0, den_e = 0;
    for (int j = 0; j < DL_FRAME_BITS; j++) {
        int bit = (frame[j / 8] >> (7 - j % 8)) & 1;
        double rx = (double)q->lep[best + (size_t)j * SPS] - q->lem[best + (size_t)j * SPS];
        double rf = (double)q->rep[j * SPS] - q->rem[j * SPS];
        num += bit ? rx : -rx;
        den_e += bit ? rf : -rf;
    }
    double sig = den_e > 0 && num > 0 ? num / den_e : 1e-30;

    memcpy(b->phy, frame + DL_SYNC_BITS / 8, DL_PHY_BYTES);
    b->freq_hz = f_cand + df + dres;
    double t_dec = (double)(start + best) + ((double)lbest + frac) / REF_OVER;
    b->sample_idx = (t_dec - q->d_out) / q->r;
    b->rssi_dbfs = 10.0 * log10(sig);
    b->snr_db = q->n0 > 0 ? 10.0 * log10(sig / (q->n0 * 600.0)) : 0;
    b->sync_bit_errors = se;
    b->ft_bit_errors = fe;
    return 0;
}

int dldemod_process(dldemod_t *q, const float complex *x, size_t n, dldemod_burst_t *bursts,
                    size_t max_bursts)
{
    if (!q || !x || (!bursts && max_bursts) || n > q->max_in)
        return DLDEMOD_ERR_ARG;
    if ((double)n < DL_FRAME_BITS / 600.0 * q->rate_sps)
        return 0;
    int m = psd_compute(q, x, n);
    if (m == 0)
        return 0;
    int nc = find_candidates(q, m), nfound = 0;

    for (int c = 0; c < nc; c++) {
        size_t n_dec = channelize(q, x, n, q->cand_hz[c]);
        if (n_dec < FRAME_SAMPLES + SPS)
            continue;
        tone_energies(q, q->dec, n_dec, q->ep, q->em);
        size_t n_e = n_dec - SPS + 1; /* valid energy entries */
        /* Noise energy per correlator: median / ln 2 (exponential law under noise). */
        memcpy(q->score_buf, q->ep, n_e * sizeof *q->ep);
        memcpy(q->score_buf + n_e, q->em, n_e * sizeof *q->em);
        qsort(q->score_buf, 2 * n_e, sizeof *q->score_buf, cmp_float);
        double e_noise = q->score_buf[n_e] / M_LN2;
        if (!(e_noise > 0))
            continue;
        double sd = sqrt(2.0 * DL_SYNC_BITS) * e_noise;
        size_t last = n_e - (size_t)(DL_FRAME_BITS - 1) * SPS; /* taus with a whole frame */
        for (size_t t = 0; t < last; t++)
            q->corr[t] = sync_corr(q, q->ep, q->em, t);
        /* Successive peaks, each suppressing a frame length around it. */
        for (int pass = 0; pass < 8; pass++) {
            double best = -INFINITY;
            size_t best_t = 0;
            for (size_t t = 0; t < last; t++) {
                if (q->corr[t] > best) {
                    best = q->corr[t];
                    best_t = t;
                }
            }
            double z = best / sd;
            if (!(z >= q->threshold))
                break;
            size_t lo = best_t > FRAME_SAMPLES ? best_t - FRAME_SAMPLES : 0;
            for (size_t t = lo; t < best_t + FRAME_SAMPLES && t < last; t++)
                q->corr[t] = -INFINITY;
            dldemod_burst_t b;
            memset(&b, 0, sizeof b);
            if (refine(q, n_dec, best_t, q->cand_hz[c], &b) < 0)
                continue;
            b.sync_score = z;
            /* The same burst seen from two candidates: keep the stronger sync. */
            double tol = 4.0 * q->rate_sps / 600.0;
            int dup = -1;
            for (int k = 0; k < nfound; k++)
                if (fabs(q->found[k].sample_idx - b.sample_idx) < tol &&
                    fabs(q->found[k].freq_hz - b.freq_hz) < CAND_SPACING_HZ)
                    dup = k;
            if (dup >= 0) {
                if (b.sync_score > q->found[dup].sync_score)
                    q->found[dup] = b;
            } else if (nfound < MAX_FOUND) {
                q->found[nfound++] = b;
            }
        }
    }
    qsort(q->found, nfound, sizeof *q->found, cmp_burst);
    int out = nfound < (int)max_bursts ? nfound : (int)max_bursts;
    if (out > 0)
        memcpy(bursts, q->found, out * sizeof *bursts);
    return out;
}

void dldemod_destroy(dldemod_t *q)
{
    if (!q)
        return;
    if (q->plan)
        fftwf_destroy_plan(q->plan);
    if (q->fplan)
        fftwf_destroy_plan(q->fplan);
    fftwf_free(q->fin);
    fftwf_free(q->fout);
    fftwf_free(q->ffin);
    fftwf_free(q->ffout);
    free(q->win);
    free(q->psd);
    free(q->scratch);
    if (q->decim)
        firdecim_crcf_destroy(q->decim);
    if (q->resamp)
        resamp_crcf_destroy(q->resamp);
    free(q->grp);
    free(q->mix);
    free(q->dec);
    free(q->ep);
    free(q->em);
    free(q->score_buf);
    free(q->corr);
    free(q->lep);
    free(q->lem);
    free(q->rep);
    free(q->rem);
    gfskmod_destroy(q->refmod);
    free(q->ref);
    free(q->loc);
    free(q);
}
