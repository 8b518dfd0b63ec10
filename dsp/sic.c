/* sic: successive interference cancellation of a decoded D-BPSK burst (include/sic.h).
 * Licence: MIT. */
#include "sic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int sic_subtract(float complex *x, const float complex *ref, size_t i0, size_t i1)
{
    if (!x || !ref || i0 >= i1)
        return SIC_ERR_ARG;
    if (i1 - i0 < SIC_MIN_SPAN)
        return SIC_ERR_SHORT;
    double mid = 0.5 * (double)(i0 + i1), half = 0.5 * (double)(i1 - i0);
    /* gain c0 + c1 u + c2 (u² - 1/3), u in [-1, 1]: normal equations G c = b */
    double G[3][3] = {{0}};
    double complex b[3] = {0};
    for (size_t i = i0; i < i1; i++) {
        double u = ((double)i - mid) / half;
        double ph[3] = {1, u, u * u - 1.0 / 3};
        double complex sv = ref[i];
        double w = creal(sv) * creal(sv) + cimag(sv) * cimag(sv);
        double complex xs = x[i] * conj(sv);
        for (int j = 0; j < 3; j++) {
            b[j] += xs * ph[j];
            for (int k = j; k < 3; k++)
                G[j][k] += w * ph[j] * ph[k];
        }
    }
    for (int j = 0; j < 3; j++)
        for (int k = 0; k < j; k++)
            G[j][k] = G[k][j];
    /* Gaussian elimination without pivoting: G is symmetric positive definite when the
       reference has power at more than 3 distinct u, and a zero (or NaN) pivot means it
       has not. */
    for (int j = 0; j < 3; j++) {
        if (!(G[j][j] > 1e-20))
            return SIC_ERR_SINGULAR;
        for (int r = j + 1; r < 3; r++) {
            double f = G[r][j] / G[j][j];
            for (int k = j; k < 3; k++)
                G[r][k] -= f * G[j][k];
            b[r] -= f * b[j];
        }
    }
    double complex cf[3];
    for (int j = 2; j >= 0; j--) {
        double complex v = b[j];
        for (int k = j + 1; k < 3; k++)
            v -= G[j][k] * cf[k];
        cf[j] = v / G[j][j];
    }
    for (size_t i = i0; i < i1; i++) {
        double u = ((double)i - mid) / half;
        double complex gain = cf[0] + cf[1] * u + cf[2] * (u * u - 1.0 / 3);
        x[i] -= (float complex)(gain * ref[i]);
    }
    return SIC_OK;
}

int sic_cancel_burst(const dbpsk_burst_params_t *p, const uint8_t *bits, size_t nbits,
                     double start_sample, double symbol_samples, float complex *x, size_t nx,
                     float complex *scratch)
{
    if (!p || !bits || !x || !scratch || nx == 0)
        return SIC_ERR_ARG;
    if (fabs(p->freq_hz) >= p->rate_sps / 2)
        return SIC_ERR_ARG;
    memset(scratch, 0, nx * sizeof *scratch);
    if (dbpsk_burst_render(p, bits, nbits, start_sample, 0, scratch, nx) <= 0)
        return SIC_ERR_ARG;
    /* span of the burst (its pulses reach half a symbol beyond the data) */
    double sym = symbol_samples;
    long i0 = (long)floor(start_sample - sym),
         i1 = (long)ceil(start_sample + ((double)nbits + 1) * sym);
    if (i0 < 0)
        i0 = 0;
    if (i1 > (long)nx)
        i1 = (long)nx;
    if (i1 - i0 < SIC_MIN_SPAN)
        return SIC_ERR_SHORT;
    return sic_subtract(x, scratch, (size_t)i0, (size_t)i1);
}

/* The FIR reaches this many transition widths (rate / (stop - pass) samples) each side:
 * beyond, the raised cosine's impulse response is under 1e-3 of its peak. */
#define XCANCEL_REACH_TRANSITIONS 4.0
#define XCANCEL_TRANSITION_STEPS 256

struct sic_xcancel {
    sic_xcancel_config_t cfg;
    int half;           /* taps -half .. half */
    float *taps;        /* 2 half + 1 */
    float complex *hi;  /* the reference at the oversampled rate */
    float complex *ref; /* ... filtered and decimated: max_span */
    size_t hi_cap;
};

sic_xcancel_t *sic_xcancel_create(const sic_xcancel_config_t *cfg)
{
    if (!cfg || !(cfg->rate_sps > 0) || cfg->oversample == 0 || !(cfg->pass_hz > 0) ||
        !(cfg->stop_hz > cfg->pass_hz) || cfg->stop_hz > cfg->rate_sps * cfg->oversample / 2 ||
        cfg->max_span < SIC_MIN_SPAN)
        return NULL;
    sic_xcancel_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->cfg = *cfg;
    double rate = cfg->rate_sps * cfg->oversample;
    q->half = (int)ceil(XCANCEL_REACH_TRANSITIONS * rate / (cfg->stop_hz - cfg->pass_hz));
    q->hi_cap = (cfg->max_span + 2) * cfg->oversample + 2 * (size_t)q->half + 1;
    q->taps = malloc((2 * (size_t)q->half + 1) * sizeof *q->taps);
    q->hi = malloc(q->hi_cap * sizeof *q->hi);
    q->ref = malloc(cfg->max_span * sizeof *q->ref);
    if (!q->taps || !q->hi || !q->ref) {
        sic_xcancel_destroy(q);
        return NULL;
    }
    /* h[k] = (2 / rate) integral_0^stop H(f) cos(2 pi f k / rate) df (H real and even; the
       extractor's H: 1 to pass, a raised cosine to 0 at stop): the flat part in closed
       form, the transition by the midpoint rule; Hann-windowed to the reach, normalised to
       unit gain at 0 Hz */
    double tw = cfg->stop_hz - cfg->pass_hz, df = tw / XCANCEL_TRANSITION_STEPS, sum = 0;
    for (int k = -q->half; k <= q->half; k++) {
        double wk = 2 * M_PI * k / rate;
        double v = k == 0 ? cfg->pass_hz : sin(wk * cfg->pass_hz) / wk;
        for (int i = 0; i < XCANCEL_TRANSITION_STEPS; i++) {
            double u = (i + 0.5) * df;
            v += 0.5 * (1 + cos(M_PI * u / tw)) * cos(wk * (cfg->pass_hz + u)) * df;
        }
        v *= 2 / rate;
        v *= 0.5 * (1 + cos(M_PI * k / (q->half + 1)));
        q->taps[k + q->half] = (float)v;
        sum += v;
    }
    for (int k = 0; k <= 2 * q->half; k++)
        q->taps[k] = (float)(q->taps[k] / sum);
    return q;
}

int sic_xcancel_burst(sic_xcancel_t *q, const dbpsk_burst_params_t *p, const uint8_t *bits,
                      size_t nbits, double start_sample, float complex *x, size_t nx)
{
    if (!q || !p || !bits || !x || nx == 0)
        return SIC_ERR_ARG;
    unsigned L = q->cfg.oversample;
    double rate = q->cfg.rate_sps * L;
    if (fabs(p->rate_sps - rate) > 1e-6 * rate || fabs(p->freq_hz) >= rate / 2)
        return SIC_ERR_ARG;
    double symbol_rate = dbpsk_burst_symbol_rate(p);
    if (!(symbol_rate > 0))
        return SIC_ERR_ARG;
    /* span: the burst, one symbol and the filter's reach each side, clipped to x */
    double sym = q->cfg.rate_sps / symbol_rate, reach = (double)q->half / L;
    double b0 = start_sample - sym - reach, b1 = start_sample + ((double)nbits + 1) * sym + reach;
    if (!(b1 > 0) || !(b0 < (double)nx))
        return SIC_ERR_ARG;
    long i0 = b0 > 0 ? (long)floor(b0) : 0, i1 = b1 < (double)nx ? (long)ceil(b1) : (long)nx;
    size_t n = (size_t)(i1 - i0);
    if (n < SIC_MIN_SPAN)
        return SIC_ERR_SHORT;
    if (n > q->cfg.max_span)
        return SIC_ERR_ARG;
    /* hi[m] is oversampled sample i0 L - half + m */
    size_t nhi = n * L + 2 * (size_t)q->half;
    memset(q->hi, 0, nhi * sizeof *q->hi);
    double hi_start = start_sample * L - ((double)i0 * L - q->half);
    if (dbpsk_burst_render(p, bits, nbits, hi_start, 0, q->hi, nhi) <= 0)
        return SIC_ERR_ARG;
    const float *restrict h = q->taps;
    for (size_t i = 0; i < n; i++) {
        const float complex *restrict v = q->hi + i * L; /* v[half] is sample i0 + i */
        float complex acc = 0;
        for (int k = 0; k <= 2 * q->half; k++)
            acc += h[k] * v[2 * q->half - k];
        q->ref[i] = acc;
    }
    return sic_subtract(x + i0, q->ref, 0, n);
}

void sic_xcancel_destroy(sic_xcancel_t *q)
{
    if (!q)
        return;
    free(q->taps);
    free(q->hi);
    free(q->ref);
    free(q);
}
