/* test_frontend: shift + decimation to the working rate: rate choice, pass-band gain,
 * alias rejection, group delay and block-size invariance over several capture rates.
 * Licence: MIT. */
#include <complex.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <liquid/liquid.h>

#include "frontend.h"
#include "prng.h"
#include "log.h"

#define PASS_HZ 97e3

typedef struct {
    double rate_sps;
    double shift_hz;
    double expect_out_sps; /* 0: only check the range */
} fe_case_t;

/* Common SDR rates; expected working rates: FFT-friendly multiples of 25 Hz chosen by the
 * cost model (frontend.h): the largest such D, as the front end costs the same for all. */
static const fe_case_t cases[] = {
    {200e3, 0, 200e3},     {250e3, 0, 250e3},      {250e3, 20e3, 250e3},   {400e3, 0, 400e3},
    {1.024e6, 0, 256e3},   {1.0e6, -300e3, 250e3}, {2.048e6, 0, 256e3},    {2.4e6, 0, 240e3},
    {2.4e6, 700e3, 240e3}, {3.2e6, 0, 320e3},      {1.92e6, 100e3, 240e3}, {2.0e6 + 37, 0, 0},
    {500e3, 0, 250e3},
};

static float complex *make_tone(size_t n, double rate, double f, double amp)
{
    float complex *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float complex)(amp * cexp(I * 2 * M_PI * f * (double)i / rate));
    return x;
}

/* n samples uniform in +-0.5 on I and Q from a generator seeded with seed (left in *r
 * for the caller's further draws). */
static float complex *make_random(size_t n, uint64_t seed, prng_t *r)
{
    float complex *x = malloc(n * sizeof *x);
    assert_non_null(x);
    prng_seed(r, seed, 0);
    for (size_t i = 0; i < n; i++) {
        double re = prng_uniform(r);
        double im = prng_uniform(r);
        x[i] = (float)(re - 0.5) + I * (float)(im - 0.5);
    }
    return x;
}

/* Complex amplitude of a tone at f (rate fs) in y[skip..n), by projection. */
static double tone_amp(const float complex *y, size_t n, size_t skip, double fs, double f)
{
    double complex acc = 0;
    for (size_t i = skip; i < n; i++)
        acc += y[i] * cexp(-I * 2 * M_PI * f * (double)i / fs);
    return cabs(acc) / (double)(n - skip);
}

static frontend_t *make(const fe_case_t *c)
{
    frontend_config_t cfg = {
        .rate_sps = c->rate_sps, .shift_hz = c->shift_hz, .passband_hz = PASS_HZ, .grid_hz = 25.0};
    frontend_t *q = frontend_create(&cfg);
    assert_non_null(q);
    return q;
}

static long run(frontend_t *q, const float complex *x, size_t n, float complex **y)
{
    size_t cap = frontend_max_out(q, n);
    *y = malloc(cap * sizeof **y);
    assert_non_null(*y);
    long m = frontend_process(q, x, n, *y, cap);
    assert_true(m >= 0);
    return m;
}

static void test_rate_choice(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        frontend_t *q = make(&cases[k]);
        double fw = frontend_out_rate(q);
        assert_true(fw >= 2 * PASS_HZ);
        if (cases[k].expect_out_sps > 0)
            assert_float_equal(fw, cases[k].expect_out_sps, 1e-6);
        else
            assert_true(fw <= cases[k].rate_sps);
        frontend_destroy(q);
    }
}

/* Pass band flat to 0.2 dB out to the macro-channel edge; an input tone whose alias would
 * land inside the kept band comes out at least 55 dB down. */
static void test_gain_and_alias(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const fe_case_t *c = &cases[k];
        frontend_t *q = make(c);
        double fw = frontend_out_rate(q);
        size_t n = (size_t)(c->rate_sps * 0.05);
        const double fs[] = {0, 31e3, -55e3, 96e3, -96e3};
        for (size_t j = 0; j < 5; j++) {
            frontend_reset(q);
            float complex *x = make_tone(n, c->rate_sps, c->shift_hz + fs[j], 0.5);
            float complex *y;
            long m = run(q, x, n, &y);
            double a = tone_amp(y, (size_t)m, (size_t)m / 4, fw, fs[j]);
            double db = 20 * log10(a / 0.5);
            if (fabs(db) > 0.2)
                fail_msg("rate %g shift %g f %g: gain %.3f dB", c->rate_sps, c->shift_hz, fs[j],
                         db);
            free(x);
            free(y);
        }
        if (frontend_decimation(q) > 1) {
            /* tone at fw - 90 kHz folds onto -90 kHz */
            double fa = fw - 90e3;
            if (fabs(c->shift_hz + fa) < c->rate_sps / 2) {
                frontend_reset(q);
                float complex *x = make_tone(n, c->rate_sps, c->shift_hz + fa, 0.5);
                float complex *y;
                long m = run(q, x, n, &y);
                double a = tone_amp(y, (size_t)m, (size_t)m / 4, fw, -90e3);
                double db = 20 * log10(a / 0.5 + 1e-30);
                if (db > -55)
                    fail_msg("rate %g: alias only %.1f dB down", c->rate_sps, db);
                free(x);
                free(y);
            }
        }
        frontend_destroy(q);
    }
}

/* A Gaussian pulse on a tone: the output envelope's centroid, mapped back through
 * j * D - delay, lands on the input centroid. */
static void test_delay(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const fe_case_t *c = &cases[k];
        frontend_t *q = make(c);
        size_t n = (size_t)(c->rate_sps * 0.02);
        double t0 = n * 0.43, sig = c->rate_sps * 0.0007;
        float complex *x = make_tone(n, c->rate_sps, c->shift_hz + 20e3, 1.0);
        for (size_t i = 0; i < n; i++)
            x[i] *= (float)exp(-0.5 * pow((i - t0) / sig, 2));
        float complex *y;
        long m = run(q, x, n, &y);
        double s = 0, sw = 0;
        for (long j = 0; j < m; j++) {
            double w = pow(cabsf(y[j]), 2);
            s += w * j;
            sw += w;
        }
        double t_est = s / sw * frontend_decimation(q) - frontend_delay_in(q);
        if (fabs(t_est - t0) > 1.0 + frontend_decimation(q) / 2.0)
            fail_msg("rate %g: delay off, estimated %.1f true %.1f", c->rate_sps, t_est, t0);
        free(x);
        free(y);
        frontend_destroy(q);
    }
}

/* Feeding odd block sizes gives exactly the same output as one block. */
static void test_blocks(void **state)
{
    (void)state;
    const fe_case_t c = {2.4e6, 123456.0, 0};
    size_t n = 100000;
    prng_t r;
    float complex *x = make_random(n, 7, &r);
    frontend_t *a = make(&c), *b = make(&c);
    float complex *ya;
    long ma = run(a, x, n, &ya);
    size_t cap = frontend_max_out(b, n) + 16;
    float complex *yb = malloc(cap * sizeof *yb);
    size_t pos = 0, mb = 0;
    while (pos < n) {
        /* small pieces, and pieces holding several whole blocks (read in place) */
        bool large = prng_below(&r, 2) == 1;
        size_t blk = 1 + (size_t)prng_below(&r, large ? 40000 : 7000);
        if (blk > n - pos)
            blk = n - pos;
        long r = frontend_process(b, x + pos, blk, yb + mb, cap - mb);
        assert_true(r >= 0);
        mb += (size_t)r;
        pos += blk;
    }
    assert_int_equal(ma, (long)mb);
    assert_memory_equal(ya, yb, mb * sizeof *yb);
    free(x);
    free(ya);
    free(yb);
    frontend_destroy(a);
    frontend_destroy(b);
}

/* The overlap-save path computes what an NCO followed by a FIR decimator computes: the
 * reference here mixes in double precision and convolves with liquid's Kaiser design of
 * the same length (the group delay gives it), sample by sample. Shifts that are not a
 * whole FFT bin exercise the phase carried from block to block. */
static void test_matches_time_domain(void **state)
{
    (void)state;
    const fe_case_t tc[] = {{2.4e6, 123456.7, 0}, {1.024e6, 0, 0},        {2.4e6, 700e3, 0},
                            {1.92e6, -100.3e3, 0}, {2.048e6, 250e3, 0}, {500e3, 7e3, 0}};
    size_t n = 60000;
    prng_t r;
    float complex *x = make_random(n, 11, &r);
    for (size_t t = 0; t < sizeof tc / sizeof tc[0]; t++) {
        frontend_t *q = make(&tc[t]);
        unsigned d = frontend_decimation(q);
        assert_true(d > 1);
        unsigned len = (unsigned)lround(2 * frontend_delay_in(q)) + 1;
        float *h = malloc(len * sizeof *h);
        assert_non_null(h);
        liquid_firdes_kaiser(len, 0.5f / (float)d, 60.0f, 0.0f, h);
        double sum = 0;
        for (unsigned k = 0; k < len; k++)
            sum += h[k];
        float complex *y;
        long m = run(q, x, n, &y);
        assert_true(m > (long)(n / d) - 20000 / (long)d);
        /* from the first output whose filter span is all inside the input */
        size_t skip = len / d + 1, cnt = (size_t)m - skip;
        double complex *ref = malloc(cnt * sizeof *ref), *err = malloc(cnt * sizeof *err);
        assert_non_null(ref);
        assert_non_null(err);
        for (size_t j = 0; j < cnt; j++) {
            double complex acc = 0;
            for (unsigned k = 0; k < len; k++) {
                long i = (long)(j + skip) * (long)d - (long)k;
                acc += h[k] / sum * x[i] * cexp(-I * 2 * M_PI * tc[t].shift_hz * i / tc[t].rate_sps);
            }
            ref[j] = acc;
            err[j] = y[j + skip] - acc;
        }
        double pe = 0, pr = 0;
        for (size_t j = 0; j < cnt; j++) {
            pe += creal(err[j] * conj(err[j]));
            pr += creal(ref[j] * conj(ref[j]));
        }
        double db = 10 * log10(pe / pr);
        if (db > -65) /* measured -68.6 .. -71.6 dB */
            fail_msg("rate %g shift %g: overlap-save differs from the direct filter, %.1f dB",
                     tc[t].rate_sps, tc[t].shift_hz, db);
        free(ref);
        free(err);
        free(h);
        free(y);
        frontend_destroy(q);
    }
    free(x);
}

/* NaN, infinities and absurd values become 0 and are counted, whichever path; the
 * samples around them come out as if they had been 0 from the start. */
static void test_invalid_samples(void **state)
{
    (void)state;
    const fe_case_t tc[] = {{2.4e6, 50e3, 0}, {250e3, 0, 0}};
    for (size_t t = 0; t < 2; t++) {
        size_t n = 40000;
        float complex *x = make_tone(n, tc[t].rate_sps, tc[t].shift_hz + 10e3, 0.5);
        float complex *clean = malloc(n * sizeof *clean);
        assert_non_null(clean);
        size_t bad_at[] = {5, 12345, 12346, 30000};
        for (size_t b = 0; b < 4; b++)
            x[bad_at[b]] = 0;
        memcpy(clean, x, n * sizeof *x);
        x[5] = NAN;
        x[12345] = INFINITY + I * 0.0f;
        x[12346] = 2e6f;
        x[30000] = 0.1f + I * -5e7f;
        frontend_t *a = make(&tc[t]), *b = make(&tc[t]);
        float complex *ya, *yb;
        long mb = run(b, clean, n, &yb);
        /* the dirty input in pieces: some blocks read in place, some copied */
        size_t cap = frontend_max_out(a, n) + 16, pos = 0;
        ya = malloc(cap * sizeof *ya);
        assert_non_null(ya);
        long ma = 0;
        const size_t pieces[] = {3000, 9000, 25000, 3000};
        for (size_t p = 0; p < 4 && pos < n; p++) {
            size_t c = p == 3 ? n - pos : pieces[p];
            long got = frontend_process(a, x + pos, c, ya + ma, cap - (size_t)ma);
            assert_true(got >= 0);
            ma += got;
            pos += c;
        }
        assert_int_equal(ma, mb);
        assert_int_equal(frontend_invalid_samples(a), 4);
        assert_int_equal(frontend_invalid_samples(b), 0);
        assert_memory_equal(ya, yb, (size_t)ma * sizeof *ya);
        free(x);
        free(clean);
        free(ya);
        free(yb);
        frontend_destroy(a);
        frontend_destroy(b);
    }
}

static void test_bad_config(void **state)
{
    (void)state;
    frontend_config_t cfg = {.rate_sps = 250e3, .shift_hz = 40e3, .passband_hz = PASS_HZ};
    assert_null(frontend_create(&cfg)); /* 40k + 97k > 125k */
    cfg.shift_hz = 0;
    cfg.rate_sps = 0;
    assert_null(frontend_create(&cfg));
    cfg.rate_sps = NAN;
    assert_null(frontend_create(&cfg));
    assert_null(frontend_create(NULL));
    frontend_destroy(NULL);
}

int main(void)
{
    log_set_level(LOG_LEVEL_FATAL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_choice), cmocka_unit_test(test_gain_and_alias),
        cmocka_unit_test(test_delay),       cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_matches_time_domain), cmocka_unit_test(test_invalid_samples),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
