/* tonesub: steady tone fit and subtraction. Licence: MIT. */
#include "tonesub.h"

#include <math.h>

/* Sum of x[i] exp(-j 2π f i) over [a, b) (absolute index: the phases of two stretches
 * are comparable). */
static double complex corr(const float complex *x, size_t a, size_t b, double f)
{
    double complex w = cexp(-2 * M_PI * I * f * (double)a), step = cexp(-2 * M_PI * I * f);
    double complex acc = 0;
    for (size_t i = a; i < b; i++) {
        acc += x[i] * w;
        w *= step;
    }
    return acc;
}

/* Summed periodograms of the stretches at f. */
static double power(const float complex *x, size_t n, size_t la, size_t after_start, bool ha,
                    bool hb, double f)
{
    double p = 0;
    if (ha)
        p += pow(cabs(corr(x, 0, la, f)), 2) / (double)la;
    if (hb)
        p += pow(cabs(corr(x, after_start, n, f)), 2) / (double)(n - after_start);
    return p;
}

bool tonesub_fit(const float complex *x, size_t n, size_t before_end, size_t after_start,
                 double freq0, double search, double max_mismatch, tonesub_fit_t *fit)
{
    if (!x || !fit || !(search >= 0) || !isfinite(freq0))
        return false;
    if (before_end > n)
        before_end = n;
    if (after_start > n)
        after_start = n;
    size_t la = before_end, lb = n - after_start;
    bool ha = la >= TONESUB_MIN_STRETCH, hb = lb >= TONESUB_MIN_STRETCH && after_start >= la;
    if (!ha && !hb)
        return false;
    size_t lmax = ha && hb ? (la > lb ? la : lb) : ha ? la : lb;
    /* summed periodograms on a grid of a quarter of the longer stretch's resolution */
    double step = 0.25 / (double)lmax;
    int nstep = (int)ceil(search / step);
    if (nstep > 2000)
        nstep = 2000;
    double best = -1, fb = freq0;
    for (int k = -nstep; k <= nstep; k++) {
        double f = freq0 + k * step, p = power(x, n, la, after_start, ha, hb, f);
        if (p > best) {
            best = p;
            fb = f;
        }
    }
    /* parabolic refinement around the grid maximum */
    double pm = power(x, n, la, after_start, ha, hb, fb - step);
    double pp = power(x, n, la, after_start, ha, hb, fb + step);
    double den = pm - 2 * best + pp;
    if (den < 0) {
        double off = 0.5 * (pm - pp) / den;
        if (fabs(off) <= 1)
            fb += off * step;
    }
    double complex ca = 0, cb = 0;
    if (ha && hb) {
        /* the phase the tone advanced from one stretch's centre to the other's */
        ca = corr(x, 0, la, fb);
        cb = corr(x, after_start, n, fb);
        double dc = (double)(after_start + n) / 2 - (double)la / 2;
        double dphi = carg(cb * conj(ca));
        fb += dphi / (2 * M_PI * dc);
    }
    ca = ha ? corr(x, 0, la, fb) : 0;
    cb = hb ? corr(x, after_start, n, fb) : 0;
    double complex amp = (ca + cb) / (double)((ha ? la : 0) + (hb ? lb : 0));
    double mis = 0;
    if (ha && hb) {
        double complex a1 = ca / (double)la, a2 = cb / (double)lb;
        mis = cabs(a1 - a2) / (cabs(amp) > 0 ? cabs(amp) : 1e-30);
    }
    /* the tone must stand out of what else the stretches hold (noise, other signals) */
    double pw = 0;
    size_t lt = (ha ? la : 0) + (hb ? lb : 0);
    if (ha)
        for (size_t i = 0; i < la; i++)
            pw += crealf(x[i]) * crealf(x[i]) + cimagf(x[i]) * cimagf(x[i]);
    if (hb)
        for (size_t i = after_start; i < n; i++)
            pw += crealf(x[i]) * crealf(x[i]) + cimagf(x[i]) * cimagf(x[i]);
    double a2 = pow(cabs(amp), 2), rest = pw / (double)lt - a2;
    if (!(a2 > 0) || !(mis <= max_mismatch) ||
        !(a2 * (double)lt >= TONESUB_MIN_SNR * (rest > 0 ? rest : 0)))
        return false;
    fit->freq = fb;
    fit->amp = (float complex)amp;
    fit->mismatch = mis;
    return true;
}

void tonesub_apply(float complex *x, size_t n, const tonesub_fit_t *fit)
{
    double complex w = fit->amp, step = cexp(2 * M_PI * I * fit->freq);
    for (size_t i = 0; i < n; i++) {
        x[i] -= (float complex)w;
        w *= step;
        if ((i & 1023) == 1023) /* keep |w| from drifting */
            w = cexp(I * carg(w)) * cabs(fit->amp);
    }
}
