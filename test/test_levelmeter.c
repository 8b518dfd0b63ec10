/* test_levelmeter: input power, ADC peak, clipping, per-part noise floors and the gain
 * advice on white and shaped noise, with tones and bursts on top, quantised through the
 * real IQ codecs. Licence: MIT. */
#include <complex.h>
#include <fftw3.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "iqfile.h"
#include "levelmeter.h"
#include "log.h"
#include "prng.h"

#define RATE 1024e3

/* n samples of complex white Gaussian noise of total power p_dbfs. */
static float complex *noise(prng_t *r, size_t n, double p_dbfs)
{
    float complex *x = malloc(n * sizeof *x);
    assert_non_null(x);
    double sd = sqrt(pow(10.0, p_dbfs / 10.0) / 2.0);
    for (size_t i = 0; i < n; i++) {
        double a, b;
        prng_normal2(r, &a, &b);
        x[i] = CMPLXF((float)(a * sd), (float)(b * sd));
    }
    return x;
}

/* Through a converter of that format and back: rounding and clipping as a radio's. */
static void quantise(iq_format_t fmt, float complex *x, size_t n)
{
    void *raw = malloc(n * iq_format_sample_bytes(fmt));
    assert_non_null(raw);
    iq_encode(fmt, x, raw, n);
    iq_decode(fmt, raw, x, n);
    free(raw);
}

/* Feeds x in blocks of pseudo-random sizes 1..block_max. */
static void feed(levelmeter_t *m, const float complex *x, size_t n, size_t block_max,
                 uint64_t seed)
{
    prng_t r;
    prng_seed(&r, seed, 0);
    for (size_t i = 0; i < n;) {
        size_t len = 1 + (size_t)prng_below(&r, block_max);
        if (len > n - i)
            len = n - i;
        assert_true(levelmeter_process(m, x + i, len) >= 0);
        i += len;
    }
}

static levelmeter_t *meter(unsigned adc_bits, double window_s)
{
    levelmeter_config_t c = {.rate_sps = RATE, .window_s = window_s, .adc_bits = adc_bits};
    levelmeter_t *m = levelmeter_create(&c);
    assert_non_null(m);
    return m;
}

static void assert_near(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("%s: %.2f, expected %.2f +- %.2f", what, got, want, tol);
}

static void white_noise(void **state)
{
    (void)state;
    prng_t r;
    prng_seed(&r, 1, 0);
    size_t n = (size_t)(2.2 * RATE);
    float complex *x = noise(&r, n, -40.0);
    levelmeter_t *m = meter(16, 2.0);
    feed(m, x, n, 70000, 2);
    levelmeter_report_t rep;
    levelmeter_get(m, &rep);
    assert_true(rep.valid && rep.complete);
    assert_int_equal(rep.samples, (uint64_t)(2.0 * RATE));
    assert_near(rep.window_s, 2.0, 1e-9, "window_s");
    assert_int_equal(rep.parts, 8);
    assert_near(rep.input_dbfs, -40.0, 0.1, "input_dbfs");
    for (unsigned p = 0; p < rep.parts; p++)
        assert_near(rep.part_floor_dbfs[p], -40.0, 0.5, "part floor");
    assert_near(rep.noise_floor_dbfs, -40.0, 0.3, "noise floor");
    /* Gaussian peaks: ~5 sigma over 2 M samples, far below full scale */
    assert_true(rep.peak_dbfs > -30.0 && rep.peak_dbfs < -20.0);
    assert_int_equal(rep.clipped, 0);
    assert_near(rep.quant_floor_dbfs, 10 * log10(pow(2.0 / 65536, 2) / 6), 1e-9, "quant");
    assert_int_equal(rep.advice, LEVELMETER_OK);
    assert_string_equal(levelmeter_advice_name(rep.advice), "ok");
    /* parts from -rate/2 up */
    assert_near(levelmeter_part_offset_hz(m, 0), -RATE / 2 + RATE / 16, 1e-6, "part 0");
    assert_near(levelmeter_part_offset_hz(m, 7), RATE / 2 - RATE / 16, 1e-6, "part 7");
    levelmeter_destroy(m);
    free(x);
}

/* The same samples in one block or in odd blocks: the same figures to the last bit. */
static void block_size_invariant(void **state)
{
    (void)state;
    prng_t r;
    prng_seed(&r, 3, 0);
    size_t n = (size_t)(1.3 * RATE);
    float complex *x = noise(&r, n, -35.0);
    levelmeter_t *a = meter(8, 1.0), *b = meter(8, 1.0);
    assert_int_equal(levelmeter_process(a, x, n), 1);
    feed(b, x, n, 3000, 4);
    levelmeter_report_t ra, rb;
    levelmeter_get(a, &ra);
    levelmeter_get(b, &rb);
    assert_memory_equal(&ra, &rb, sizeof ra);
    levelmeter_destroy(a);
    levelmeter_destroy(b);
    free(x);
}

/* A strong tone all the time and a wideband burst for a fifth of the window sit on the
 * noise: the floors stay where the noise is, the input power shows them. */
static void tones_and_bursts_ignored(void **state)
{
    (void)state;
    prng_t r;
    prng_seed(&r, 5, 0);
    size_t n = (size_t)(2.0 * RATE);
    float complex *x = noise(&r, n, -40.0);
    double tone_hz = -RATE / 2 + 2.3 * RATE / 8; /* inside part 2 */
    double amp = pow(10.0, -20.0 / 20.0);
    for (size_t i = 0; i < n; i++)
        x[i] += (float complex)(amp * cexp(I * 2 * M_PI * tone_hz * (double)i / RATE));
    /* burst: 20 dB over the noise, 0.4 s, four carriers at random inside part 5 */
    prng_t rb;
    prng_seed(&rb, 6, 0);
    double bf[4];
    for (int k = 0; k < 4; k++)
        bf[k] = -RATE / 2 + 5.5 * RATE / 8 + prng_range(&rb, -RATE / 20, RATE / 20);
    double bamp = pow(10.0, -26.0 / 20.0);
    for (size_t i = (size_t)(0.8 * RATE); i < (size_t)(1.2 * RATE); i++)
        for (int k = 0; k < 4; k++)
            x[i] += (float complex)(bamp * cexp(I * 2 * M_PI * bf[k] * (double)i / RATE));
    levelmeter_t *m = meter(16, 2.0);
    feed(m, x, n, 65536, 7);
    levelmeter_report_t rep;
    levelmeter_get(m, &rep);
    assert_true(rep.complete);
    /* power: noise -40 + tone -20 over 2 s + burst -20 over 0.4 s */
    double want = 10 * log10(1e-4 + 1e-2 + 1e-2 * 0.2);
    assert_near(rep.input_dbfs, want, 0.1, "input_dbfs");
    for (unsigned p = 0; p < rep.parts; p++)
        assert_near(rep.part_floor_dbfs[p], -40.0, p == 2 ? 1.5 : 0.6, "part floor");
    assert_near(rep.noise_floor_dbfs, -40.0, 0.4, "noise floor");
    levelmeter_destroy(m);
    free(x);
}

/* Noise 10 dB stronger in part 3 (shaped in the frequency domain): that part's floor
 * shows it, the others do not. */
static void shaped_band(void **state)
{
    (void)state;
    const int nb = 4096;
    prng_t r;
    prng_seed(&r, 8, 0);
    size_t blocks = (size_t)(1.0 * RATE) / (size_t)nb;
    size_t n = blocks * (size_t)nb;
    float complex *x = malloc(n * sizeof *x);
    fftwf_complex *spec = fftwf_malloc((size_t)nb * sizeof *spec);
    fftwf_complex *time = fftwf_malloc((size_t)nb * sizeof *time);
    assert_true(x && spec && time);
    fftwf_plan plan = fftwf_plan_dft_1d(nb, spec, time, FFTW_BACKWARD, FFTW_ESTIMATE);
    double sd = sqrt(pow(10.0, -40.0 / 10.0) / 2.0 / nb); /* -40 dBFS white */
    for (size_t b = 0; b < blocks; b++) {
        for (int k = 0; k < nb; k++) {
            int shifted = (k + nb / 2) % nb; /* 0 = -rate/2 */
            double g = shifted / (nb / 8) == 3 ? sqrt(10.0) : 1.0;
            double re, im;
            prng_normal2(&r, &re, &im);
            spec[k] = CMPLXF((float)(re * sd * g), (float)(im * sd * g));
        }
        fftwf_execute(plan);
        for (int i = 0; i < nb; i++)
            x[b * (size_t)nb + (size_t)i] = time[i];
    }
    fftwf_destroy_plan(plan);
    fftwf_free(spec);
    fftwf_free(time);
    levelmeter_t *m = meter(16, 1.0);
    feed(m, x, n, 50000, 9);
    levelmeter_report_t rep;
    levelmeter_get(m, &rep);
    assert_true(rep.valid && rep.complete);
    for (unsigned p = 0; p < rep.parts; p++)
        assert_near(rep.part_floor_dbfs[p], p == 3 ? -30.0 : -40.0, 0.7, "part floor");
    assert_near(rep.noise_floor_dbfs, -40.0, 0.4, "noise floor");
    /* total: 7 parts at -40 - 9 dB, one at -30 - 9 dB */
    assert_near(rep.input_dbfs, 10 * log10((7 * 1e-4 + 1e-3) / 8), 0.15, "input_dbfs");
    levelmeter_destroy(m);
    free(x);
}

/* An overdriven 8-bit converter: the clipped samples are exactly those at a top code,
 * the peak is 0 dBFS, the advice is to lower the gain. cu8 and cs8 differ in their top
 * codes (255 -> +1.0 and 0 -> -1.0; 127 -> 127/128 and -128 -> -1.0). */
static void clipping(void **state)
{
    (void)state;
    const iq_format_t fmts[2] = {IQ_FORMAT_CU8, IQ_FORMAT_CS8};
    for (int f = 0; f < 2; f++) {
        prng_t r;
        prng_seed(&r, 10, (uint64_t)f);
        size_t n = (size_t)(0.5 * RATE);
        float complex *x = noise(&r, n, -8.0);
        quantise(fmts[f], x, n);
        uint64_t want = 0;
        for (size_t i = 0; i < n; i++) {
            float re = crealf(x[i]), im = cimagf(x[i]);
            float top = fmts[f] == IQ_FORMAT_CU8 ? 1.0f : 127.0f / 128.0f;
            if (re >= top || re <= -1.0f || im >= top || im <= -1.0f)
                want++;
        }
        assert_true(want > 100); /* the scene clips */
        levelmeter_t *m = meter(8, 0.5);
        feed(m, x, n, 20000, 11);
        levelmeter_report_t rep;
        levelmeter_get(m, &rep);
        assert_true(rep.complete);
        assert_int_equal(rep.clipped, want);
        assert_int_equal(levelmeter_clipped_total(m), want);
        assert_near(rep.clipped_share, (double)want / (double)n, 1e-12, "clipped_share");
        assert_near(rep.peak_dbfs, 0.0, 1e-6, "peak");
        assert_int_equal(rep.advice, LEVELMETER_CLIPPING);
        assert_string_equal(levelmeter_advice_name(rep.advice), "lower the gain");
        /* the next window without clipping: share 0, the total stays */
        float complex *quiet = noise(&r, n, -30.0);
        quantise(fmts[f], quiet, n);
        feed(m, quiet, n, 20000, 12);
        levelmeter_get(m, &rep);
        assert_int_equal(rep.clipped, 0);
        assert_int_equal(rep.advice, LEVELMETER_OK);
        assert_int_equal(levelmeter_clipped_total(m), want);
        assert_near(rep.noise_floor_dbfs, -30.0, 0.4, "noise floor");
        levelmeter_destroy(m);
        free(x);
        free(quiet);
    }
}

/* Noise barely above an 8-bit converter's quantisation noise (-49.9 dBFS): raise the
 * gain. */
static void too_weak(void **state)
{
    (void)state;
    prng_t r;
    prng_seed(&r, 13, 0);
    size_t n = (size_t)(0.5 * RATE);
    float complex *x = noise(&r, n, -46.0);
    quantise(IQ_FORMAT_CS8, x, n);
    levelmeter_t *m = meter(8, 0.5);
    feed(m, x, n, 20000, 14);
    levelmeter_report_t rep;
    levelmeter_get(m, &rep);
    assert_near(rep.quant_floor_dbfs, -49.93, 0.01, "quant floor");
    /* -46 dBFS of noise plus -49.9 of quantisation noise */
    assert_near(rep.noise_floor_dbfs, 10 * log10(pow(10, -4.6) + pow(10, -4.993)), 0.5,
                "noise floor");
    assert_int_equal(rep.advice, LEVELMETER_TOO_WEAK);
    assert_string_equal(levelmeter_advice_name(rep.advice), "raise the gain");
    assert_int_equal(rep.clipped, 0);
    levelmeter_destroy(m);
    /* A float source has no quantisation floor: never "too weak". */
    m = meter(0, 0.5);
    feed(m, x, n, 20000, 15);
    levelmeter_get(m, &rep);
    assert_true(isnan(rep.quant_floor_dbfs));
    assert_int_equal(rep.advice, LEVELMETER_OK);
    levelmeter_destroy(m);
    free(x);
}

/* Before the first window: the running figures; hostile values are not counted. */
static void running_and_hostile(void **state)
{
    (void)state;
    levelmeter_t *m = meter(8, 5.0);
    levelmeter_report_t rep;
    levelmeter_get(m, &rep);
    assert_false(rep.valid);
    assert_false(rep.complete);
    prng_t r;
    prng_seed(&r, 16, 0);
    size_t n = 100000;
    float complex *x = noise(&r, n, -30.0);
    x[10] = CMPLXF(NAN, 0.0f);
    x[20] = CMPLXF(INFINITY, -INFINITY);
    x[30] = CMPLXF(1e30f, 0.0f);
    assert_int_equal(levelmeter_process(m, x, n), 0);
    levelmeter_get(m, &rep);
    assert_true(rep.valid);
    assert_false(rep.complete);
    assert_int_equal(rep.samples, n);
    assert_true(isfinite(rep.input_dbfs) && isfinite(rep.noise_floor_dbfs));
    assert_near(rep.input_dbfs, -30.0, 0.3, "input_dbfs");
    assert_int_equal(rep.clipped, 0);
    assert_true(rep.peak_dbfs < 0.0);
    assert_int_equal(levelmeter_process(m, NULL, 0), 0);
    assert_int_equal(levelmeter_process(m, NULL, 5), -1);
    assert_int_equal(levelmeter_process(NULL, x, 5), -1);
    levelmeter_destroy(m);
    levelmeter_destroy(NULL);
    free(x);
}

static void bad_config(void **state)
{
    (void)state;
    assert_null(levelmeter_create(NULL));
    levelmeter_config_t c = {.rate_sps = 0};
    assert_null(levelmeter_create(&c));
    c = (levelmeter_config_t){.rate_sps = RATE, .nfft = 500};
    assert_null(levelmeter_create(&c));
    c = (levelmeter_config_t){.rate_sps = RATE, .parts = 7};
    assert_null(levelmeter_create(&c));
    c = (levelmeter_config_t){.rate_sps = RATE, .parts = 65};
    assert_null(levelmeter_create(&c));
    c = (levelmeter_config_t){.rate_sps = RATE, .nfft = 64, .parts = 16};
    assert_null(levelmeter_create(&c)); /* 4 bins per part */
    c = (levelmeter_config_t){.rate_sps = RATE, .adc_bits = 1};
    assert_null(levelmeter_create(&c));
    c = (levelmeter_config_t){.rate_sps = NAN};
    assert_null(levelmeter_create(&c));
    c = (levelmeter_config_t){.rate_sps = RATE, .parts = 1, .nfft = 64};
    levelmeter_t *m = levelmeter_create(&c);
    assert_non_null(m);
    assert_near(levelmeter_part_offset_hz(m, 0), 0.0, 1e-9, "one part");
    assert_near(levelmeter_part_offset_hz(m, 1), 0.0, 1e-9, "no such part");
    levelmeter_destroy(m);
}

int main(void)
{
    log_set_level(LOG_LEVEL_FATAL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(white_noise),      cmocka_unit_test(block_size_invariant),
        cmocka_unit_test(tones_and_bursts_ignored), cmocka_unit_test(shaped_band),
        cmocka_unit_test(clipping),         cmocka_unit_test(too_weak),
        cmocka_unit_test(running_and_hostile),      cmocka_unit_test(bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
