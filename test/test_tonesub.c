/* test_tonesub: a steady tone fitted on the stretches around a burst and subtracted
 * (tonesub.h). Licence: MIT. */
#include <complex.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tonesub.h"

#define N 4096

static double uni(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static double gauss(uint64_t *s)
{
    double u = uni(s), v = uni(s);
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

/* Noise (σ² = 1e-2), a tone of amplitude 1 at freq, and in [1000, 3400) a D-BPSK-like
 * signal of amplitude 0.5 (random ±1 every 16 samples) at 0.01 cycles/sample. */
static void scene(float complex *x, double freq, double phase, bool tone, uint64_t seed)
{
    uint64_t s = seed;
    double sym = 1;
    for (int i = 0; i < N; i++) {
        double complex v = 0.1 / sqrt(2) * (gauss(&s) + I * gauss(&s));
        if (tone)
            v += cexp(I * (2 * M_PI * freq * i + phase));
        if (i % 16 == 0 && uni(&s) < 0.5)
            sym = -sym;
        if (i >= 1000 && i < 3400)
            v += 0.5 * sym * cexp(I * 2 * M_PI * 0.01 * i);
        x[i] = (float complex)v;
    }
}

static void test_fit_and_subtract(void **state)
{
    (void)state;
    static float complex x[N];
    uint64_t rng = 99;
    for (int k = 0; k < 20; k++) {
        double f = 0.09 + 0.002 * uni(&rng), ph = 6.28 * uni(&rng);
        scene(x, f, ph, true, 1000 + (uint64_t)k);
        tonesub_fit_t fit;
        /* the detector's estimate is a few Hz off: search +-1.5 bins */
        assert_true(tonesub_fit(x, N, 900, 3500, f + 0.0012, 0.004, 0.3, &fit));
        assert_true(fabs(fit.freq - f) < 2e-6);
        assert_true(cabs(fit.amp - cexp(I * ph)) < 0.02);
        tonesub_apply(x, N, &fit);
        /* what is left where the burst is: the burst and the noise, no tone */
        double complex c = 0;
        for (int i = 1000; i < 3400; i++)
            c += x[i] * cexp(-I * 2 * M_PI * f * i);
        assert_true(cabs(c) / 2400 < 0.03);
    }
}

static void test_no_tone(void **state)
{
    (void)state;
    static float complex x[N];
    tonesub_fit_t fit;
    /* noise and the burst only: the stretches disagree, nothing to subtract */
    int fits = 0;
    for (int k = 0; k < 20; k++) {
        scene(x, 0.09, 0, false, 2000 + (uint64_t)k);
        fits += tonesub_fit(x, N, 900, 3500, 0.09, 0.004, 0.3, &fit);
    }
    assert_int_equal(fits, 0);
    /* stretches too short */
    scene(x, 0.09, 0, true, 7);
    assert_false(tonesub_fit(x, N, 10, N - 10, 0.09, 0.004, 0.3, &fit));
    /* one stretch is enough */
    assert_true(tonesub_fit(x, N, 900, N, 0.0905, 0.004, 0.3, &fit));
    assert_true(fabs(fit.freq - 0.09) < 1e-5);
    assert_false(tonesub_fit(NULL, N, 900, 3500, 0.09, 0.004, 0.3, &fit));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_and_subtract),
        cmocka_unit_test(test_no_tone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
