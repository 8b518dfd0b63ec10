/* frontend: NCO shift + one integer FIR decimator to the working rate. Licence: MIT. */
#include "frontend.h"

#include <liquid/liquid.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define FRONTEND_CHUNK 4096   /* input samples mixed and decimated per inner pass */
#define FRONTEND_MARGIN 1.2   /* working rate >= MARGIN * 2 * passband */
#define FRONTEND_MAX_ABS 1e6f /* full scale is 1: larger components are corrupt data */

struct frontend {
    double rate_sps;
    unsigned decimation;
    double delay_in;
    nco_crcf nco;           /* NULL when shift_hz == 0 */
    firdecim_crcf decim;    /* NULL when decimation == 1 */
    float complex *scratch; /* decimation + FRONTEND_CHUNK samples: carry, then new */
    size_t carry;           /* samples at the start of scratch waiting for a full group */
    uint64_t invalid;       /* non-finite or absurd input samples replaced by 0 */
};

/* 2^a 3^b 5^c 7^d: sizes FFTW transforms fastest. */
static bool is_smooth(unsigned long n)
{
    if (n == 0)
        return false;
    static const unsigned p[] = {2, 3, 5, 7};
    for (int i = 0; i < 4; i++)
        while (n % p[i] == 0)
            n /= p[i];
    return n == 1;
}

/* Working rate rate/D a whole multiple of grid (to 1e-9 relative)? Sets *mult. */
static bool on_grid(double rate, unsigned d, double grid, unsigned long *mult)
{
    if (!(grid > 0))
        return false;
    double k = rate / d / grid;
    double r = nearbyint(k);
    *mult = (unsigned long)r;
    return r >= 1 && fabs(k - r) <= 1e-9 * k;
}

/* Filter length for decimation d (transition pass .. rate/d - pass, as_db). */
static unsigned filter_len(double rate, unsigned d, double pass, double as_db)
{
    double df = (rate / d - 2.0 * pass) / rate;
    unsigned len = estimate_req_filter_len((float)df, (float)as_db);
    len += len / 8 + 1; /* the Kaiser estimate is tight: keep the passband edge flat */
    return len | 1;     /* odd: integer group delay */
}

/* Picks D by estimated CPU per second of input, fitted to whole-receiver runs on this
 * machine at 2.4 MS/s with D = 1, 2, 4, 8, 10 (0.134, 0.151, 0.105, 0.118, 0.176 s of CPU
 * for 5 s): liquid's firdecim ~4.5 ns per input sample plus ~0.35 ns per tap/D; the
 * channelizer's FFT of N = rate/D/grid points, 2*grid times a second, ~0.18 ns *
 * N log2 N up to N = 16384 and ~0.35 ns beyond (cache), 3x that for N not
 * 2^a 3^b 5^c 7^d. Working rates on the grid come first (off-grid ones only when no D
 * lands on it); within 10 % the larger D wins (smaller spectra to keep). */
static unsigned choose_decimation(double rate, double pass, double grid, double as_db)
{
    double fw_min = FRONTEND_MARGIN * 2.0 * pass;
    if (rate < 2.0 * fw_min)
        return 1;
    unsigned dmax = (unsigned)floor(rate / fw_min);
    unsigned best = 1;
    double best_cost = 1e300;
    bool best_on_grid = false;
    for (unsigned d = dmax; d >= 1; d--) {
        double fw = rate / d;
        double cost = d > 1 ? rate * (4.5e-9 + 0.35e-9 * filter_len(rate, d, pass, as_db) / d) : 0;
        unsigned long mult = 0;
        bool grid_ok = on_grid(rate, d, grid, &mult);
        if (grid > 0) {
            double n = grid_ok ? (double)mult : fw / grid;
            double fft = 2 * grid * (n <= 16384 ? 0.18e-9 : 0.35e-9) * n * log2(n);
            cost += grid_ok && is_smooth(mult) ? fft : 3 * fft;
        }
        if ((grid_ok && !best_on_grid) || (grid_ok == best_on_grid && cost < 0.9 * best_cost)) {
            best = d;
            best_cost = cost;
            best_on_grid = grid_ok;
        }
    }
    return best;
}

frontend_t *frontend_create(const frontend_config_t *cfg)
{
    if (!cfg) {
        log_error("Front end not created, reason: no configuration");
        return NULL;
    }
    double rate = cfg->rate_sps, pass = cfg->passband_hz;
    double as_db = cfg->stopband_db > 0 ? cfg->stopband_db : 60.0;
    if (!(rate >= 1e3 && rate <= 20e6)) {
        log_error("Front end not created, reason: input rate out of range, rate_sps: %g", rate);
        return NULL;
    }
    if (!(pass > 0) || !isfinite(cfg->shift_hz) || fabs(cfg->shift_hz) + pass > rate / 2) {
        log_error("Front end not created, reason: kept band outside the input band, "
                  "passband_hz: %g, shift_hz: %g, rate_sps: %g",
                  pass, cfg->shift_hz, rate);
        return NULL;
    }
    frontend_t *q = calloc(1, sizeof *q);
    if (!q)
        goto fail;
    q->rate_sps = rate;
    q->decimation = choose_decimation(rate, pass, cfg->grid_hz, as_db);
    q->scratch = malloc((q->decimation + FRONTEND_CHUNK) * sizeof(float complex));
    if (!q->scratch)
        goto fail;
    if (cfg->shift_hz != 0.0) {
        q->nco = nco_crcf_create(LIQUID_NCO);
        if (!q->nco)
            goto fail;
        nco_crcf_set_frequency(q->nco, (float)(2.0 * M_PI * cfg->shift_hz / rate));
    }
    if (q->decimation > 1) {
        unsigned d = q->decimation;
        /* transition from pass to rate/D - pass */
        unsigned len = filter_len(rate, d, pass, as_db);
        float *h = malloc(len * sizeof *h);
        if (!h)
            goto fail;
        liquid_firdes_kaiser(len, (float)(0.5 / d), (float)as_db, 0.0f, h);
        double sum = 0;
        for (unsigned i = 0; i < len; i++)
            sum += h[i];
        for (unsigned i = 0; i < len; i++)
            h[i] = (float)(h[i] / sum); /* unit gain at 0 Hz */
        q->decim = firdecim_crcf_create(d, h, len);
        free(h);
        if (!q->decim)
            goto fail;
        /* liquid computes output j when input jD enters: y[j] = sum h[k] x[jD - k], a
         * linear-phase filter centred (len-1)/2 samples back. */
        q->delay_in = (len - 1) / 2.0;
    }
    return q;
fail:
    log_error("Front end not created, reason: out of memory");
    frontend_destroy(q);
    return NULL;
}

double frontend_out_rate(const frontend_t *q)
{
    return q->rate_sps / q->decimation;
}

unsigned frontend_decimation(const frontend_t *q)
{
    return q->decimation;
}

double frontend_delay_in(const frontend_t *q)
{
    return q->delay_in;
}

size_t frontend_max_out(const frontend_t *q, size_t n)
{
    return (n + q->decimation - 1) / q->decimation + 1;
}

/* Samples are untrusted (files, radios): NaN, infinities or values far beyond full scale
 * would poison every filter state and noise-floor average downstream, so they become 0.
 * Returns how many were replaced. */
static size_t sanitize(float complex *x, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float re = crealf(x[i]), im = cimagf(x[i]);
        /* also false for NaN */
        bool ok = fabsf(re) <= FRONTEND_MAX_ABS && fabsf(im) <= FRONTEND_MAX_ABS;
        if (!ok) {
            x[i] = 0;
            bad++;
        }
    }
    return bad;
}

uint64_t frontend_invalid_samples(const frontend_t *q)
{
    return q->invalid;
}

long frontend_process(frontend_t *q, const float complex *in, size_t n, float complex *out,
                      size_t cap)
{
    if (cap < frontend_max_out(q, n))
        return -1;
    unsigned d = q->decimation;
    size_t nout = 0;
    while (n > 0) {
        size_t c = n < FRONTEND_CHUNK ? n : FRONTEND_CHUNK;
        float complex *dst = q->scratch + q->carry;
        if (q->nco)
            nco_crcf_mix_block_down(q->nco, (float complex *)in, dst, (unsigned)c);
        else
            memcpy(dst, in, c * sizeof *in);
        q->invalid += sanitize(dst, c);
        size_t total = q->carry + c;
        if (d == 1) {
            memcpy(out + nout, q->scratch, total * sizeof *out);
            nout += total;
            q->carry = 0;
        } else {
            size_t groups = total / d;
            firdecim_crcf_execute_block(q->decim, q->scratch, (unsigned)groups, out + nout);
            nout += groups;
            q->carry = total - groups * d;
            memmove(q->scratch, q->scratch + groups * d, q->carry * sizeof *out);
        }
        in += c;
        n -= c;
    }
    return (long)nout;
}

void frontend_reset(frontend_t *q)
{
    if (!q)
        return;
    if (q->nco)
        nco_crcf_set_phase(q->nco, 0.0f); /* nco_crcf_reset would also zero the frequency */
    if (q->decim)
        firdecim_crcf_reset(q->decim);
    q->carry = 0;
}

void frontend_destroy(frontend_t *q)
{
    if (!q)
        return;
    if (q->nco)
        nco_crcf_destroy(q->nco);
    if (q->decim)
        firdecim_crcf_destroy(q->decim);
    free(q->scratch);
    free(q);
}
