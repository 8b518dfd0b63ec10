/* levelmeter: input levels for setting a radio's gain (see include/levelmeter.h).
 * Licence: MIT. No I/O. */
#include "levelmeter.h"

#include <fftw3.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "selectk.h"

/* FFTs per second of signal (the hop follows from the rate): enough for a stable median
 * over a few seconds, few enough to cost nothing. */
#define SNAPSHOTS_PER_S 128.0

struct levelmeter {
    levelmeter_config_t cfg;
    unsigned parts, nfft, bins_per_part;
    uint64_t window_samples; /* samples per window */
    uint64_t hop;            /* one FFT starts every hop samples */
    float clip_hi, clip_lo;  /* I or Q at or beyond: clipped */
    double quant_floor_dbfs;
    double win_norm;         /* sum of the squared window */

    float *win;              /* Hann, nfft */
    fftwf_complex *fft_in, *fft_out;
    fftwf_plan plan;
    float *scratch;          /* bins_per_part powers of one part */
    float *snap;             /* parts x max_snaps: each FFT's per-part median power */
    size_t max_snaps;

    /* running window */
    uint64_t n;              /* samples */
    double power_sum;        /* of the window's whole LEVEL_BLOCKs */
    float lanes[4];          /* the running block's I^2, Q^2 of even and of odd samples */
    float peak;
    uint64_t clipped;
    size_t nsnaps;
    uint64_t until_fft;      /* samples to skip before the next FFT starts */
    unsigned fill;           /* samples in fft_in */

    uint64_t clipped_total;
    levelmeter_report_t last;
};

static double db10(double p)
{
    return p > 0 ? 10.0 * log10(p) : -INFINITY;
}

static float median(float *v, size_t n)
{
    return n ? selectk(v, n, n / 2) : 0.0f;
}

levelmeter_t *levelmeter_create(const levelmeter_config_t *cfg)
{
    if (!cfg) {
        log_error("Level meter not created, reason: no configuration");
        return NULL;
    }
    unsigned parts = cfg->parts ? cfg->parts : 8;
    unsigned nfft = cfg->nfft ? cfg->nfft : 512;
    double window_s = cfg->window_s > 0 ? cfg->window_s : 5.0;
    if (!(cfg->rate_sps >= 1e3 && cfg->rate_sps <= 100e6)) {
        log_error("Level meter not created, reason: rate out of range, rate_sps: %g",
                  cfg->rate_sps);
        return NULL;
    }
    if (nfft < 64 || nfft > 8192 || (nfft & (nfft - 1)) != 0 || parts < 1 ||
        parts > LEVELMETER_MAX_PARTS || nfft % parts != 0 || nfft / parts < 8) {
        log_error("Level meter not created, reason: FFT length and parts do not fit, nfft: %u, "
                  "parts: %u",
                  nfft, parts);
        return NULL;
    }
    if (cfg->adc_bits > 32 || cfg->adc_bits == 1 || !(window_s <= 3600)) {
        log_error("Level meter not created, reason: adc_bits or window out of range, "
                  "adc_bits: %u, window_s: %g",
                  cfg->adc_bits, window_s);
        return NULL;
    }
    levelmeter_t *q = calloc(1, sizeof *q);
    if (!q)
        goto nomem;
    q->cfg = *cfg;
    q->cfg.window_s = window_s;
    q->parts = parts;
    q->nfft = nfft;
    q->bins_per_part = nfft / parts;
    q->window_samples = (uint64_t)ceil(window_s * cfg->rate_sps);
    if (q->window_samples < nfft)
        q->window_samples = nfft;
    q->hop = (uint64_t)ceil(cfg->rate_sps / SNAPSHOTS_PER_S);
    if (q->hop < nfft)
        q->hop = nfft;
    q->max_snaps = (size_t)(q->window_samples / q->hop) + 2;
    /* Two's complement converters end at +(1 - 1 LSB) and -1 (cs8: 127/128, -1); cu8's
     * ends are +-1 (255, 0), beyond the positive threshold too. */
    q->clip_lo = -(1.0f - 1e-6f);
    if (cfg->adc_bits) {
        q->clip_hi = (float)(1.0 - ldexp(1.0, -(int)(cfg->adc_bits - 1))) * (1.0f - 1e-6f);
        double step = 2.0 / ldexp(1.0, (int)cfg->adc_bits);
        q->quant_floor_dbfs = db10(step * step / 6.0);
    } else {
        q->clip_hi = 1.0f - 1e-6f;
        q->quant_floor_dbfs = NAN;
    }
    q->win = malloc(nfft * sizeof *q->win);
    q->scratch = malloc(q->bins_per_part * sizeof *q->scratch);
    q->snap = malloc(parts * q->max_snaps * sizeof *q->snap);
    q->fft_in = fftwf_malloc(nfft * sizeof(fftwf_complex));
    q->fft_out = fftwf_malloc(nfft * sizeof(fftwf_complex));
    if (!q->win || !q->scratch || !q->snap || !q->fft_in || !q->fft_out)
        goto nomem;
    q->plan = fftwf_plan_dft_1d((int)nfft, q->fft_in, q->fft_out, FFTW_FORWARD, FFTW_ESTIMATE);
    if (!q->plan)
        goto nomem;
    for (unsigned i = 0; i < nfft; i++) {
        q->win[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / nfft)); /* periodic Hann */
        q->win_norm += (double)q->win[i] * q->win[i];
    }
    q->last.parts = parts;
    q->last.quant_floor_dbfs = q->quant_floor_dbfs;
    return q;
nomem:
    log_error("Level meter not created, reason: out of memory");
    levelmeter_destroy(q);
    return NULL;
}

/* One FFT of fft_in: each part's median bin power into the snapshot table. */
static void take_snapshot(levelmeter_t *q)
{
    if (q->nsnaps >= q->max_snaps)
        return;
    fftwf_execute(q->plan);
    for (unsigned p = 0; p < q->parts; p++) {
        for (unsigned b = 0; b < q->bins_per_part; b++) {
            /* part 0 starts at -rate/2: FFT bin nfft/2 */
            unsigned k = (p * q->bins_per_part + b + q->nfft / 2) % q->nfft;
            float re = crealf(q->fft_out[k]), im = cimagf(q->fft_out[k]);
            q->scratch[b] = re * re + im * im;
        }
        q->snap[p * q->max_snaps + q->nsnaps] = median(q->scratch, q->bins_per_part);
    }
    q->nsnaps++;
}

/* The running window's figures into *r (reorders the snapshot table). */
static void running_report(levelmeter_t *q, levelmeter_report_t *r, bool complete)
{
    memset(r, 0, sizeof *r);
    r->parts = q->parts;
    r->quant_floor_dbfs = q->quant_floor_dbfs;
    r->valid = q->nsnaps > 0;
    r->complete = complete;
    r->samples = q->n;
    r->window_s = (double)q->n / q->cfg.rate_sps;
    double power = q->power_sum + ((double)q->lanes[0] + q->lanes[1] + q->lanes[2] + q->lanes[3]);
    r->input_dbfs = q->n ? db10(power / (double)q->n) : -INFINITY;
    r->peak_dbfs = 20.0 * log10(q->peak); /* -inf for 0 */
    r->clipped = q->clipped;
    r->clipped_share = q->n ? (double)q->clipped / (double)q->n : 0.0;
    if (!r->valid) {
        r->noise_floor_dbfs = -INFINITY;
        return;
    }
    float floors[LEVELMETER_MAX_PARTS];
    for (unsigned p = 0; p < q->parts; p++) {
        double m = median(q->snap + p * q->max_snaps, q->nsnaps);
        r->part_floor_dbfs[p] = db10(m / (M_LN2 * q->win_norm));
        floors[p] = (float)r->part_floor_dbfs[p];
    }
    r->noise_floor_dbfs = median(floors, q->parts);
    if (r->clipped_share > LEVELMETER_CLIP_SHARE)
        r->advice = LEVELMETER_CLIPPING;
    else if (isfinite(q->quant_floor_dbfs) &&
             r->noise_floor_dbfs < q->quant_floor_dbfs + LEVELMETER_QUANT_MARGIN_DB)
        r->advice = LEVELMETER_TOO_WEAK;
}

static void window_start(levelmeter_t *q)
{
    q->n = 0;
    q->power_sum = 0;
    memset(q->lanes, 0, sizeof q->lanes);
    q->peak = 0;
    q->clipped = 0;
    q->nsnaps = 0;
    q->fill = 0;
    q->until_fft = 0;
}

/* Samples whose power is summed in float before it joins the window's double sum (in
 * blocks at fixed places of the window); a block with a bad sample is measured again
 * sample by sample. */
#define LEVEL_BLOCK 256

/* Four floats, two complex samples: GCC and clang build these vector extensions for SSE2
 * on x86-64 and NEON on aarch64 without relying on the auto-vectoriser (gcc 12.2 for
 * aarch64 crashed on some float reductions). */
typedef float lm_v4sf __attribute__((vector_size(16)));
typedef int32_t lm_v4si __attribute__((vector_size(16)));

/* Power, peak and clipped samples of x[0..n), whose first sample is sample idx of the
 * window and which stays inside one LEVEL_BLOCK of it, two samples at a time (this runs
 * on every input sample, ahead of the receiver: about a fifth of the instructions of
 * testing each sample for NaN first). I^2 and Q^2 of even samples add into lanes 0 and
 * 1 of q->lanes, of odd samples into lanes 2 and 3, each lane in sample order, so the
 * figures do not depend on how the samples were split into calls. Returns false, adding
 * nothing, when x holds a NaN, an infinity or a value beyond 1e6:
 * measure_block_checked() then skips those. */
static bool measure_block(levelmeter_t *q, const float complex *x, size_t n, uint64_t idx,
                          float *peak, uint64_t *clipped)
{
    const float *v = (const float *)x;
    const float chi = q->clip_hi, clo = q->clip_lo;
    const lm_v4sf hi = {chi, chi, chi, chi}, lo = {clo, clo, clo, clo};
    const lm_v4si abs_mask = {0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff};
    lm_v4sf pow4, pk4 = {0, 0, 0, 0};
    lm_v4si clip4 = {0, 0, 0, 0};
    memcpy(&pow4, q->lanes, sizeof pow4);
    float pk = 0;
    uint64_t clip = 0;
    size_t k = 0;
    if (idx % 2 && n > 0) { /* an odd sample first: lanes 2 and 3 */
        float a = v[0], b = v[1];
        pow4[2] += a * a;
        pow4[3] += b * b;
        float fa = fabsf(a), fb = fabsf(b);
        pk = fa > fb ? fa : fb;
        clip += (a >= chi) | (a <= clo) | (b >= chi) | (b <= clo);
        k = 1;
    }
    for (; k + 2 <= n; k += 2) {
        lm_v4sf a;
        memcpy(&a, v + 2 * k, sizeof a); /* unaligned load */
        pow4 += a * a;
        lm_v4sf mag = (lm_v4sf)((lm_v4si)a & abs_mask);
        lm_v4si bigger = mag > pk4;
        pk4 = (lm_v4sf)(((lm_v4si)mag & bigger) | ((lm_v4si)pk4 & ~bigger));
        lm_v4si c = (a >= hi) | (a <= lo); /* -1 per clipped I or Q */
        c |= __builtin_shufflevector(c, c, 1, 0, 3, 2); /* per sample, in both lanes */
        clip4 += c;
    }
    if (k < n) { /* an even sample last: lanes 0 and 1 */
        float a = v[2 * k], b = v[2 * k + 1];
        pow4[0] += a * a;
        pow4[1] += b * b;
        float fa = fabsf(a), fb = fabsf(b);
        float m = fa > fb ? fa : fb;
        pk = m > pk ? m : pk;
        clip += (a >= chi) | (a <= clo) | (b >= chi) | (b <= clo);
    }
    for (int l = 0; l < 4; l++)
        pk = pk4[l] > pk ? pk4[l] : pk;
    /* the mask of a clipped sample counted -1 in its two lanes */
    clip += (uint64_t)(-(int64_t)(clip4[0] + clip4[1] + clip4[2] + clip4[3]) / 2);
    /* a NaN fails every comparison: the magnitudes skip it, the power does not */
    if (!(isfinite(pow4[0] + pow4[1] + pow4[2] + pow4[3]) && pk <= 1e6f))
        return false;
    memcpy(q->lanes, &pow4, sizeof pow4);
    if (pk > *peak)
        *peak = pk;
    *clipped += clip;
    return true;
}

/* The same, sample by sample: NaN, infinite or absurd samples are left out. */
static void measure_block_checked(levelmeter_t *q, const float complex *x, size_t n,
                                  uint64_t idx, float *peak, uint64_t *clipped)
{
    for (size_t j = 0; j < n; j++) {
        float si = crealf(x[j]), sq = cimagf(x[j]);
        float re = fabsf(si), im = fabsf(sq);
        if (!(re <= 1e6f && im <= 1e6f)) /* NaN, infinite or absurd: not counted */
            continue;
        float m = re > im ? re : im;
        unsigned lane = (unsigned)((idx + j) % 2) * 2;
        q->lanes[lane] += si * si;
        q->lanes[lane + 1] += sq * sq;
        if (m > *peak)
            *peak = m;
        if (si >= q->clip_hi || si <= q->clip_lo || sq >= q->clip_hi || sq <= q->clip_lo)
            (*clipped)++;
    }
}

/* Measures x[0..len), the window's samples from q->n on. */
static void measure(levelmeter_t *q, const float complex *x, size_t len)
{
    float peak = q->peak;
    uint64_t clipped = 0, idx = q->n;
    size_t j = 0;
    while (j < len) {
        size_t c = LEVEL_BLOCK - (size_t)(idx % LEVEL_BLOCK);
        if (c > len - j)
            c = len - j;
        if (!measure_block(q, x + j, c, idx, &peak, &clipped))
            measure_block_checked(q, x + j, c, idx, &peak, &clipped);
        j += c;
        idx += c;
        if (idx % LEVEL_BLOCK == 0) { /* a whole block: its lanes into the window's sum */
            q->power_sum += (double)q->lanes[0] + q->lanes[1] + q->lanes[2] + q->lanes[3];
            memset(q->lanes, 0, sizeof q->lanes);
        }
    }
    q->peak = peak;
    q->clipped += clipped;
    q->clipped_total += clipped;
}

int levelmeter_process(levelmeter_t *q, const float complex *in, size_t n)
{
    if (!q || (!in && n))
        return -1;
    int completed = 0;
    size_t i = 0;
    while (i < n) {
        /* up to the window's end */
        size_t len = n - i;
        if (len > q->window_samples - q->n)
            len = (size_t)(q->window_samples - q->n);
        const float complex *x = in + i;
        measure(q, x, len);
        /* FFT snapshots: skip until_fft samples, then collect nfft */
        size_t j = 0;
        while (j < len) {
            if (q->until_fft > 0) {
                uint64_t skip = q->until_fft < len - j ? q->until_fft : len - j;
                q->until_fft -= skip;
                j += (size_t)skip;
                continue;
            }
            size_t take = q->nfft - q->fill;
            if (take > len - j)
                take = len - j;
            for (size_t k = 0; k < take; k++) {
                float complex v = x[j + k] * q->win[q->fill + k];
                if (!(cabsf(v) <= 1e6f))
                    v = 0;
                q->fft_in[q->fill + k] = v; /* fftwf_complex is float complex here */
            }
            q->fill += (unsigned)take;
            j += take;
            if (q->fill == q->nfft) {
                take_snapshot(q);
                q->fill = 0;
                q->until_fft = q->hop - q->nfft;
            }
        }
        q->n += len;
        i += len;
        if (q->n == q->window_samples) {
            running_report(q, &q->last, true);
            window_start(q);
            completed = 1;
        }
    }
    return completed;
}

void levelmeter_get(levelmeter_t *q, levelmeter_report_t *out)
{
    if (!out)
        return;
    if (!q) {
        memset(out, 0, sizeof *out);
        return;
    }
    if (q->last.complete) {
        *out = q->last;
        return;
    }
    /* Before the first window completed: the running one (the medians reorder its
     * snapshot table, which does not matter to later medians). */
    running_report(q, out, false);
}

uint64_t levelmeter_clipped_total(const levelmeter_t *q)
{
    return q ? q->clipped_total : 0;
}

double levelmeter_part_offset_hz(const levelmeter_t *q, unsigned i)
{
    if (!q || i >= q->parts)
        return 0.0;
    return q->cfg.rate_sps * (((double)i + 0.5) / q->parts - 0.5);
}

const char *levelmeter_advice_name(levelmeter_advice_t a)
{
    switch (a) {
    case LEVELMETER_CLIPPING:
        return "lower the gain";
    case LEVELMETER_TOO_WEAK:
        return "raise the gain";
    default:
        return "ok";
    }
}

void levelmeter_destroy(levelmeter_t *q)
{
    if (!q)
        return;
    if (q->plan)
        fftwf_destroy_plan(q->plan);
    fftwf_free(q->fft_in);
    fftwf_free(q->fft_out);
    free(q->win);
    free(q->scratch);
    free(q->snap);
    free(q);
}
