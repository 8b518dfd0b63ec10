/* test_monarch: Monarch beacon — the FFTW spectrum of each pattern shows 12 carriers at
 * ±1..±6 × the configured dF and nothing at the centre; the envelope peaks every 1/dF1 for
 * 362 ms, then every 1/dF2 for 38 ms; length, amplitude, ramps, bad configurations.
 * Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <complex.h>
#include <fftw3.h>
#include <math.h>

#include "monarch.h"

#include "monarchtest.h"

typedef struct {
    double rate_sps, offset_hz, df1_hz, df2_hz;
} beacon_case_t;

static const beacon_case_t cases[] = {
    {48000.0, 5000.0, MONARCH_DF_B_HZ, MONARCH_DF_C_HZ},
    {250000.0, -30000.0, MONARCH_DF_A_HZ, MONARCH_DF_C_HZ},
    {96000.0, 0.0, MONARCH_DF_C_HZ, MONARCH_DF_A_HZ},
};

/* Spectrum of x[0..n-1] (Hann, zero-padded to nfft); finds the local maxima within 30 dB
 * of the strongest, interpolated, as frequencies. Returns their count (<= max). Also
 * returns the power at f_probe relative to the strongest peak, in dB. */
static int spectral_peaks(const float complex *x, size_t n, int nfft, double rate, double *f_out,
                          double *lvl_db, int max, double f_probe, double *probe_db)
{
    fftwf_complex *in = fftwf_malloc(sizeof(fftwf_complex) * nfft);
    fftwf_complex *out = fftwf_malloc(sizeof(fftwf_complex) * nfft);
    fftwf_plan plan = fftwf_plan_dft_1d(nfft, in, out, FFTW_FORWARD, FFTW_ESTIMATE);
    double *p = malloc(sizeof(double) * nfft);
    for (int i = 0; i < nfft; i++) {
        float w = (size_t)i < n ? 0.5f - 0.5f * cosf(2.0f * (float)M_PI * i / (float)(n - 1)) : 0;
        in[i] = (size_t)i < n ? x[i] * w : 0;
    }
    fftwf_execute(plan);
    double pmax = 0;
    for (int i = 0; i < nfft; i++) {
        p[i] = (double)(crealf(out[i]) * crealf(out[i]) + cimagf(out[i]) * cimagf(out[i]));
        if (p[i] > pmax) /* not fmax(): see monarchtest.h */
            pmax = p[i];
    }
    int cnt = 0;
    for (int i = 0; i < nfft; i++) {
        double a = p[(i + nfft - 1) % nfft], b = p[i], c = p[(i + 1) % nfft];
        if (b > a && b >= c && b > pmax * 1e-3) {
            /* parabolic interpolation on dB values */
            double la = 10 * log10(a), lb = 10 * log10(b), lc = 10 * log10(c);
            double d = 0.5 * (la - lc) / (la - 2 * lb + lc);
            int k = i < nfft / 2 ? i : i - nfft;
            if (cnt < max) {
                f_out[cnt] = (k + d) * rate / nfft;
                lvl_db[cnt] = lb - 10 * log10(pmax);
            }
            cnt++;
        }
    }
    int kp = (int)lround(f_probe / (rate / nfft));
    *probe_db = 10 * log10(p[(kp + nfft) % nfft] / pmax + 1e-30);
    fftwf_destroy_plan(plan);
    fftwf_free(in);
    fftwf_free(out);
    free(p);
    return cnt;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The 12 carriers of one pattern: offset ± k·dF, k = 1..6, within tol_hz, levels within
 * 1 dB of each other, and the centre empty. */
static void check_pattern(const float complex *x, size_t n, int nfft, const beacon_case_t *t,
                          double df, double tol_hz, const char *name)
{
    double f[32], lvl[32], centre_db;
    int cnt = spectral_peaks(x, n, nfft, t->rate_sps, f, lvl, 32, t->offset_hz, &centre_db);
    assert_int_equal(cnt, MONARCH_CARRIERS);
    double order[MONARCH_CARRIERS], max_err, spread_db;
    memcpy(order, f, sizeof order);
    qsort(order, MONARCH_CARRIERS, sizeof *order, cmp_double);
    monarch_pattern_fit(order, lvl, t->offset_hz, df, &max_err, &spread_db);
    double spacing = (order[11] - order[6]) / 5.0;
    print_message("%s: rate %.0f, dF %.1f: 12 carriers, measured spacing %.2f Hz, largest "
                  "position error %.2f Hz, levels within %.2f dB, centre %.1f dB\n",
                  name, t->rate_sps, df, spacing, max_err, spread_db, centre_db);
    assert_true(max_err < tol_hz);
    assert_true(spread_db < 1.0);
    assert_true(centre_db < -30.0);
}

static void test_spectrum_and_timing(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const beacon_case_t *t = &cases[c];
        monarch_config_t cfg = {.rate_sps = t->rate_sps,
                                .offset_hz = t->offset_hz,
                                .df1_hz = t->df1_hz,
                                .df2_hz = t->df2_hz,
                                .amplitude = 0.9f};
        monarch_t *q = monarch_create(&cfg);
        assert_non_null(q);
        size_t n = monarch_beacon_samples(q), sw = monarch_switch_sample(q);
        assert_int_equal(n, (size_t)llround(0.4 * t->rate_sps));
        assert_int_equal(sw, (size_t)llround(0.362 * t->rate_sps));
        float complex *x = malloc(n * sizeof *x);
        assert_int_equal(monarch_process(q, x, n), (long)n);

        /* Pattern 1 (10 .. 352 ms) and pattern 2 (363 .. 398 ms). */
        size_t ms = (size_t)(t->rate_sps / 1000);
        check_pattern(x + 10 * ms, sw - 20 * ms, 1 << 20, t, t->df1_hz, 1.0, "pattern 1");
        check_pattern(x + sw + ms, n - sw - 3 * ms, 1 << 18, t, t->df2_hz, 5.0, "pattern 2");

        /* Envelope peaks (all carriers in phase): every 1/dF1, then every 1/dF2. */
        double amax = 0;
        for (size_t i = 0; i < n; i++)
            amax = fmax(amax, cabsf(x[i]));
        size_t last = 0;
        int n1 = 0, n2 = 0;
        double per1 = 0, per2 = 0;
        for (size_t i = 1; i + 1 < n; i++) {
            float a = cabsf(x[i]);
            /* main lobe (sampled anywhere on it) vs the largest sidelobe, about 0.2 */
            if (a < 0.6f * amax || a < cabsf(x[i - 1]) || a < cabsf(x[i + 1]))
                continue;
            /* one peak per lobe: float rounding can make a flat top two maxima */
            if (last && (double)(i - last) < 0.25e-3 * t->rate_sps)
                continue;
            if (last) {
                double d = (double)(i - last) / t->rate_sps;
                if (i <= sw) {
                    per1 += d;
                    n1++;
                } else if (last > sw) {
                    per2 += d;
                    n2++;
                }
            }
            last = i;
        }
        per1 /= n1;
        per2 /= n2;
        print_message("envelope: %d peak intervals of %.4f ms before 362 ms (1/dF1 = %.4f), "
                      "%d of %.4f ms after (1/dF2 = %.4f); peak |x| %.3f\n",
                      n1, per1 * 1e3, 1e3 / t->df1_hz, n2, per2 * 1e3, 1e3 / t->df2_hz, amax);
        assert_true(fabs(per1 * t->df1_hz - 1.0) < 0.01);
        assert_true(fabs(per2 * t->df2_hz - 1.0) < 0.01);
        assert_true(n1 >= (int)(0.35 * t->df1_hz) && n1 <= (int)(0.362 * t->df1_hz) + 1);
        assert_true(n2 >= (int)(0.03 * t->df2_hz) && n2 <= (int)(0.038 * t->df2_hz) + 1);
        assert_true(fabs(amax - 0.9) < 0.01);
        /* 1 ms raised-cosine ramps. */
        assert_true(cabsf(x[0]) < 0.01f && cabsf(x[n - 1]) < 0.01f);
        free(x);
        monarch_destroy(q);
    }
}

static void test_bad_config(void **state)
{
    (void)state;
    assert_null(monarch_create(NULL));
    monarch_config_t ok = {.rate_sps = 48000.0, .df1_hz = 1024.0, .df2_hz = 1260.3};
    monarch_t *q = monarch_create(&ok);
    assert_non_null(q);
    float complex tiny[4];
    assert_int_equal(monarch_process(q, tiny, 4), MONARCH_ERR_SPACE);
    assert_int_equal(monarch_process(q, NULL, 100000), MONARCH_ERR_ARG);
    assert_int_equal(monarch_process(NULL, tiny, 4), MONARCH_ERR_ARG);
    monarch_destroy(q);
    monarch_destroy(NULL);

    monarch_config_t c = ok;
    c.df1_hz = 1000.0; /* not a Monarch spacing */
    assert_null(monarch_create(&c));
    c = ok;
    c.df2_hz = 0;
    assert_null(monarch_create(&c));
    c = ok;
    c.offset_hz = 18000.0; /* 18 kHz + 6 × 1260 Hz + 1 kHz > 24 kHz */
    assert_null(monarch_create(&c));
    c = ok;
    c.amplitude = 1.5f;
    assert_null(monarch_create(&c));
    c = ok;
    c.ramp_s = 0.02f;
    assert_null(monarch_create(&c));
    c = ok;
    c.rate_sps = NAN;
    assert_null(monarch_create(&c));
    assert_true(monarch_df_valid(1260.3) && monarch_df_valid(1489.4) && monarch_df_valid(1024));
    assert_false(monarch_df_valid(1260.0));
    assert_string_not_equal(monarch_strerror(MONARCH_ERR_ARG), monarch_strerror(MONARCH_ERR_SPACE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spectrum_and_timing),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
