/* monarch: Sigfox Monarch beacon generator (seeds/001). Licence: MIT.
 * See include/monarch.h for the waveform. */
#include "monarch.h"

#include <math.h>
#include <stdlib.h>

#define MONARCH_HALF (MONARCH_CARRIERS / 2) /* ±1 .. ±6 */
#define MONARCH_MARGIN_HZ 1000.0
#define MONARCH_REANCHOR 4096 /* phasors re-computed exactly this often */

struct monarch {
    double rate_sps;
    double offset_hz;
    double df1_hz, df2_hz;
    float amplitude;
    size_t n_total, n_switch, n_ramp;
};

const char *monarch_strerror(int code)
{
    switch (code) {
    case MONARCH_OK:
        return "ok";
    case MONARCH_ERR_ARG:
        return "invalid argument (NULL pointer)";
    case MONARCH_ERR_SPACE:
        return "output buffer too small for a beacon";
    default:
        return "unknown error";
    }
}

int monarch_df_valid(double df_hz)
{
    static const double dfs[] = {MONARCH_DF_A_HZ, MONARCH_DF_B_HZ, MONARCH_DF_C_HZ};
    for (size_t i = 0; i < sizeof dfs / sizeof dfs[0]; i++)
        if (fabs(df_hz - dfs[i]) <= 0.05)
            return 1;
    return 0;
}

monarch_t *monarch_create(const monarch_config_t *cfg)
{
    if (!cfg || !isfinite(cfg->rate_sps) || !isfinite(cfg->offset_hz) ||
        !monarch_df_valid(cfg->df1_hz) || !monarch_df_valid(cfg->df2_hz))
        return NULL;
    double span = MONARCH_HALF * fmax(cfg->df1_hz, cfg->df2_hz) + MONARCH_MARGIN_HZ;
    if (!(cfg->rate_sps > 0) || fabs(cfg->offset_hz) + span > cfg->rate_sps / 2)
        return NULL;
    float amp = cfg->amplitude == 0 ? 1.0f : cfg->amplitude;
    float ramp = cfg->ramp_s == 0 ? (float)MONARCH_DEFAULT_RAMP_S : cfg->ramp_s;
    if (!(amp > 0 && amp <= 1.0f) || !(ramp <= 0.010f))
        return NULL;
    monarch_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->rate_sps = cfg->rate_sps;
    q->offset_hz = cfg->offset_hz;
    q->df1_hz = cfg->df1_hz;
    q->df2_hz = cfg->df2_hz;
    q->amplitude = amp;
    q->n_total = (size_t)llround(MONARCH_BEACON_S * cfg->rate_sps);
    q->n_switch = (size_t)llround(MONARCH_PATTERN1_S * cfg->rate_sps);
    q->n_ramp = ramp > 0 ? (size_t)llround(ramp * cfg->rate_sps) : 0;
    return q;
}

size_t monarch_beacon_samples(const monarch_t *q)
{
    return q ? q->n_total : 0;
}

size_t monarch_switch_sample(const monarch_t *q)
{
    return q ? q->n_switch : 0;
}

long monarch_process(monarch_t *q, float complex *out, size_t out_cap)
{
    if (!q || !out)
        return MONARCH_ERR_ARG;
    if (out_cap < q->n_total)
        return MONARCH_ERR_SPACE;
    /* With all carriers starting in phase, carrier k's phase is k·θ(t), θ being the phase
     * of dF itself (2π·dF1·t, then continuing at 2π·dF2 per second), so the sum is
     *   e^{j·2π·offset·t} · Σ_{k=1..6} 2 cos(k θ)
     * and stays phase-continuous through the dF change. θ and the carrier phase are kept
     * as double-precision phasors, re-anchored to their exact values periodically. */
    const double two_pi = 2.0 * M_PI;
    const double dth1 = two_pi * q->df1_hz / q->rate_sps, dth2 = two_pi * q->df2_hz / q->rate_sps;
    const double dcar = two_pi * q->offset_hz / q->rate_sps;
    const double scale = (double)q->amplitude / MONARCH_CARRIERS;
    double complex z = 1, car = 1, zstep = cexp(I * dth1), cstep = cexp(I * dcar);
    for (size_t i = 0; i < q->n_total; i++) {
        if (i % MONARCH_REANCHOR == 0 || i == q->n_switch) {
            double th = i < q->n_switch
                            ? dth1 * (double)i
                            : dth1 * (double)q->n_switch + dth2 * (double)(i - q->n_switch);
            z = cexp(I * fmod(th, two_pi));
            car = cexp(I * fmod(dcar * (double)i, two_pi));
            zstep = cexp(I * (i < q->n_switch ? dth1 : dth2));
        }
        double env = 0;
        double complex zk = z;
        for (int k = 1; k <= MONARCH_HALF; k++, zk *= z)
            env += 2.0 * creal(zk);
        double w = scale;
        if (q->n_ramp > 0) {
            size_t from_end = q->n_total - 1 - i;
            size_t e = i < from_end ? i : from_end;
            if (e < q->n_ramp)
                w *= 0.5 - 0.5 * cos(M_PI * ((double)e + 0.5) / (double)q->n_ramp);
        }
        out[i] = (float complex)(env * w * car);
        z *= zstep;
        car *= cstep;
    }
    return (long)q->n_total;
}

void monarch_destroy(monarch_t *q)
{
    free(q);
}
