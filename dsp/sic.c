/* sic: successive interference cancellation of a decoded D-BPSK burst (include/sic.h).
 * Licence: MIT. */
#include "sic.h"

#include <math.h>
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
