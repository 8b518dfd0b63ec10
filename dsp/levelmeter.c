/* levelmeter: input levels for setting a radio's gain (see include/levelmeter.h).
 * Licence: MIT. No I/O. */
#include "levelmeter.h"

#include <fftw3.h>
#include <math.h>
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
    double power_sum;
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
    r->input_dbfs = q->n ? db10(q->power_sum / (double)q->n) : -INFINITY;
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
    q->peak = 0;
    q->clipped = 0;
    q->nsnaps = 0;
    q->fill = 0;
    q->until_fft = 0;
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
        double psum = 0;
        float peak = q->peak;
        uint64_t clipped = 0;
        for (size_t j = 0; j < len; j++) {
            float re = fabsf(crealf(x[j])), im = fabsf(cimagf(x[j]));
            if (!(re <= 1e6f && im <= 1e6f)) /* NaN, infinite or absurd: not counted */
                continue;
            float m = re > im ? re : im;
            psum += (double)(re * re + im * im);
            if (m > peak)
                peak = m;
            float si = crealf(x[j]), sq = cimagf(x[j]);
            if (si >= q->clip_hi || si <= q->clip_lo || sq >= q->clip_hi || sq <= q->clip_lo)
                clipped++;
        }
        q->power_sum += psum;
        q->peak = peak;
        q->clipped += clipped;
        q->clipped_total += clipped;
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
