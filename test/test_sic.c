/* test_sic: successive interference cancellation (sic.h): a burst with a known gain and a
 * known interferer leaves the interferer and nothing else, a D-BPSK burst cancelled from
 * its decoded bits leaves its neighbour 150 Hz away, a small carrier error leaves a few per
 * cent; short, singular and invalid cases leave x untouched; a BR600 burst decoded
 * elsewhere is removed from a BR100 snippet cut by the real channelizer and extractor.
 * Licence: MIT. */
#include <complex.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "channelizer.h"
#include "dbpskmod.h"
#include "extractor.h"
#include "prng.h"
#include "sic.h"
#include "testutil.h"

#define N 4000

static double energy(const float complex *x, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++)
        e += (double)(crealf(x[i]) * crealf(x[i]) + cimagf(x[i]) * cimagf(x[i]));
    return e;
}

/* Energy of a - b. */
static double energy_diff(const float complex *a, const float complex *b, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        float complex d = a[i] - b[i];
        e += (double)(crealf(d) * crealf(d) + cimagf(d) * cimagf(d));
    }
    return e;
}

/* Unit-magnitude samples of random phase. */
static void random_phases(prng_t *r, float complex *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double ph = prng_range(r, -M_PI, M_PI);
        x[i] = (float complex)cexp(I * ph);
    }
}

/* x = g(u) ref + interferer with g quadratic in u over the whole span: the fit finds g,
 * so x - interferer after the subtraction is only the interferer's projection on the
 * three reference components (~3/N of its energy) and float rounding. */
static void test_quadratic_gain_removed(void **state)
{
    (void)state;
    prng_t r;
    prng_seed(&r, 1, 0);
    float complex *ref = malloc(N * sizeof *ref), *x = malloc(N * sizeof *x),
                  *intf = malloc(N * sizeof *intf);
    random_phases(&r, ref, N);
    double complex c0 = 0.8 + 0.3 * I, c1 = 0.1 - 0.2 * I, c2 = 0.05 + 0.02 * I;
    double burst_e = 0;
    for (size_t i = 0; i < N; i++) {
        double u = ((double)i - 0.5 * N) / (0.5 * N);
        double complex g = c0 + c1 * u + c2 * (u * u - 1.0 / 3);
        double complex b = g * ref[i];
        burst_e += creal(b * conj(b));
        intf[i] = (float complex)(0.3 * cexp(I * 0.37 * (double)i));
        x[i] = (float complex)b + intf[i];
    }
    double before = energy(x, N), intf_e = energy(intf, N);
    assert_int_equal(sic_subtract(x, ref, 0, N), SIC_OK);
    double after = energy(x, N);
    print_message("burst %.1f interferer %.1f: before %.1f after %.1f, left of the burst %.3g\n",
                  burst_e, intf_e, before, after, energy_diff(x, intf, N));
    assert_true(energy_diff(x, intf, N) < 0.01 * intf_e);
    assert_near(after, intf_e, 0.01 * intf_e);
    assert_near(before - after, burst_e, 0.02 * burst_e);

    /* without an interferer nothing is left but rounding */
    for (size_t i = 0; i < N; i++)
        x[i] = 0.5f * ref[i];
    assert_int_equal(sic_subtract(x, ref, 0, N), SIC_OK);
    assert_true(energy(x, N) < 1e-9 * 0.25 * N);
    free(ref);
    free(x);
    free(intf);
}

/* Only [i0, i1) changes. */
static void test_span_only(void **state)
{
    (void)state;
    prng_t r;
    prng_seed(&r, 2, 0);
    float complex ref[200], x[200], orig[200];
    random_phases(&r, ref, 200);
    for (size_t i = 0; i < 200; i++)
        x[i] = orig[i] = 2.0f * ref[i];
    assert_int_equal(sic_subtract(x, ref, 50, 150), SIC_OK);
    for (size_t i = 0; i < 200; i++) {
        if (i < 50 || i >= 150)
            assert_true(x[i] == orig[i]);
        else
            assert_true(cabsf(x[i]) < 1e-5f);
    }
}

/* Refusals leave x as it was. */
static void test_degenerate(void **state)
{
    (void)state;
    prng_t r;
    prng_seed(&r, 3, 0);
    float complex ref[100], x[100], orig[100];
    random_phases(&r, x, 100);
    memcpy(orig, x, sizeof x);
    random_phases(&r, ref, 100);
    assert_int_equal(sic_subtract(NULL, ref, 0, 100), SIC_ERR_ARG);
    assert_int_equal(sic_subtract(x, NULL, 0, 100), SIC_ERR_ARG);
    assert_int_equal(sic_subtract(x, ref, 50, 50), SIC_ERR_ARG);
    assert_int_equal(sic_subtract(x, ref, 60, 50), SIC_ERR_ARG);
    assert_int_equal(sic_subtract(x, ref, 0, SIC_MIN_SPAN - 1), SIC_ERR_SHORT);
    assert_memory_equal(x, orig, sizeof x);
    /* a reference without power: nothing to fit */
    memset(ref, 0, sizeof ref);
    assert_int_equal(sic_subtract(x, ref, 0, 100), SIC_ERR_SINGULAR);
    /* power at one sample only: one equation for three unknowns */
    ref[40] = 1.0f;
    assert_int_equal(sic_subtract(x, ref, 0, 100), SIC_ERR_SINGULAR);
    /* NaN in the reference */
    ref[41] = NAN;
    assert_int_equal(sic_subtract(x, ref, 0, 100), SIC_ERR_SINGULAR);
    assert_memory_equal(x, orig, sizeof x);
}

/* Two D-BPSK bursts (BR100 at 16 samples per symbol) 150 Hz apart, the weaker one
 * -10.5 dB; the stronger cancelled from its bits and the demodulator's estimates. */
typedef struct {
    dbpsk_burst_params_t a, b;
    uint8_t abits[18], bbits[18];
    double a_start, b_start;
    float complex *xa, *xb, *x, *scratch;
    size_t nx;
} pair_t;

static void make_pair(pair_t *p, uint64_t seed)
{
    prng_t r;
    prng_seed(&r, seed, 0);
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < sizeof p->abits; i++) {
        uint64_t va = prng_next(&r);
        uint64_t vb = prng_next(&r);
        p->abits[i] = (uint8_t)(va >> 56);
        p->bbits[i] = (uint8_t)(vb >> 56);
    }
    p->a = (dbpsk_burst_params_t){.rate_sps = 1600,
                                  .baud = 100,
                                  .baud_error_ppm = 300,
                                  .freq_hz = 20,
                                  .drift_hz_s = 5,
                                  .phase_rad = 1.1,
                                  .amplitude = 0.9};
    p->b = p->a;
    p->b.freq_hz = 170;
    p->b.drift_hz_s = -3;
    p->b.phase_rad = -0.4;
    p->b.amplitude = 0.27;
    p->b.baud_error_ppm = -200;
    p->a_start = 100.25;
    p->b_start = 700.5;
    p->nx = 144 * 16 + 1000;
    p->xa = calloc(p->nx, sizeof *p->xa);
    p->xb = calloc(p->nx, sizeof *p->xb);
    p->x = calloc(p->nx, sizeof *p->x);
    p->scratch = calloc(p->nx, sizeof *p->scratch);
    assert_true(dbpsk_burst_render(&p->a, p->abits, 144, p->a_start, 0, p->xa, p->nx) > 0);
    assert_true(dbpsk_burst_render(&p->b, p->bbits, 144, p->b_start, 0, p->xb, p->nx) > 0);
    for (size_t i = 0; i < p->nx; i++)
        p->x[i] = p->xa[i] + p->xb[i];
}

static void free_pair(pair_t *p)
{
    free(p->xa);
    free(p->xb);
    free(p->x);
    free(p->scratch);
}

/* Cancels burst a from p->x with what the receiver knows of it (carrier off by freq_err_hz,
 * drift, rate, start; not phase nor amplitude). Returns sic_cancel_burst's answer. */
static int cancel_a(pair_t *p, double freq_err_hz)
{
    dbpsk_burst_params_t est = p->a;
    est.phase_rad = 0;
    est.amplitude = 1;
    est.freq_hz += freq_err_hz;
    double sps = p->a.rate_sps / dbpsk_burst_symbol_rate(&p->a);
    return sic_cancel_burst(&est, p->abits, 144, p->a_start, sps, p->x, p->nx, p->scratch);
}

/* Exact estimates leave the neighbour and rounding. They are never exact: a carrier 0.3 Hz
 * off over the 1.44 s burst turns the phase by 155 degrees, and the quadratic gain follows
 * most of it. */
static void test_cancel_burst(void **state)
{
    (void)state;
    static const struct {
        uint64_t seed;
        double freq_err_hz, max_left; /* what may stay of the burst, fraction of its energy */
    } cases[] = {{4, 0, 1e-4}, {5, 0.3, 0.02}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        pair_t p;
        make_pair(&p, cases[k].seed);
        double ea = energy(p.xa, p.nx), eb = energy(p.xb, p.nx), before = energy(p.x, p.nx);
        assert_int_equal(cancel_a(&p, cases[k].freq_err_hz), SIC_OK);
        double left = energy_diff(p.x, p.xb, p.nx), after = energy(p.x, p.nx);
        print_message("carrier %.1f Hz off: burst %.1f neighbour %.1f, before %.1f after %.1f, "
                      "left of the burst %.2g of it\n",
                      cases[k].freq_err_hz, ea, eb, before, after, left / ea);
        assert_true(left < cases[k].max_left * ea);
        assert_near(after, eb, 0.02 * eb + 2 * sqrt(left * eb));
        free_pair(&p);
    }
}

static void test_cancel_refusals(void **state)
{
    (void)state;
    pair_t p;
    make_pair(&p, 6);
    float complex *orig = malloc(p.nx * sizeof *orig);
    memcpy(orig, p.x, p.nx * sizeof *orig);
    dbpsk_burst_params_t est = p.a;
    double sps = 16;
    assert_int_equal(sic_cancel_burst(NULL, p.abits, 144, p.a_start, sps, p.x, p.nx, p.scratch),
                     SIC_ERR_ARG);
    assert_int_equal(sic_cancel_burst(&est, NULL, 144, p.a_start, sps, p.x, p.nx, p.scratch),
                     SIC_ERR_ARG);
    assert_int_equal(sic_cancel_burst(&est, p.abits, 144, p.a_start, sps, p.x, p.nx, NULL),
                     SIC_ERR_ARG);
    assert_int_equal(sic_cancel_burst(&est, p.abits, 144, p.a_start, sps, p.x, 0, p.scratch),
                     SIC_ERR_ARG);
    /* carrier at the Nyquist edge */
    est.freq_hz = 800;
    assert_int_equal(sic_cancel_burst(&est, p.abits, 144, p.a_start, sps, p.x, p.nx, p.scratch),
                     SIC_ERR_ARG);
    /* a burst beyond the end of x */
    est = p.a;
    assert_int_equal(
        sic_cancel_burst(&est, p.abits, 144, (double)p.nx + 50, sps, p.x, p.nx, p.scratch),
        SIC_ERR_ARG);
    /* parameters the modulator refuses */
    est.baud_error_ppm = 5000;
    assert_int_equal(sic_cancel_burst(&est, p.abits, 144, p.a_start, sps, p.x, p.nx, p.scratch),
                     SIC_ERR_ARG);
    assert_memory_equal(p.x, orig, p.nx * sizeof *orig);
    free(orig);
    free_pair(&p);
}

/* Cross-track cancellation through the receiver's real cutting chain: a working-rate
 * stream (24 kS/s, 25 Hz bins) holds a BR100 burst and a neighbour (BR600, or another
 * BR100 burst) some hundred hertz from the BR100 snippet's centre; the channelizer and a
 * BR100-class extractor (64 bins, 300/700 Hz) cut the snippet. sic_xcancel_burst, told
 * the neighbour's carrier, drift, rate, start and bits (not its phase or amplitude), must
 * leave the BR100 burst's snippet and a small fraction of the neighbour's part in it
 * (a BR600 neighbour rendered at 6 × the snippet's rate, a BR100 one at its rate). */
#define XC_RATE 24000.0
#define XC_N 960
#define XC_LEN 72000
static void cut_snippet(const float complex *w, float complex *out, size_t *nout)
{
    channelizer_config_t cc = {.rate_sps = XC_RATE,
                               .fft_len = XC_N,
                               .band_lo_hz = -3000,
                               .band_hi_hz = 3000,
                               .history_hops = 1};
    channelizer_t *ch = channelizer_create(&cc);
    extractor_config_t ec = {
        .fft_len = XC_N, .bin_hz = XC_RATE / XC_N, .out_bins = 64, .pass_hz = 300, .stop_hz = 700};
    extractor_t *ex = extractor_create(&ec);
    assert_non_null(ch);
    assert_non_null(ex);
    size_t pos = 0, n = 0;
    while (pos < XC_LEN) {
        size_t used;
        channelizer_hop_t h;
        int r = channelizer_process(ch, w + pos, XC_LEN - pos, &used, &h);
        pos += used;
        if (r == 1) {
            extractor_process(ex, h.spectrum, 0, h.index, out + n);
            n += extractor_hop_out(ex);
        }
    }
    *nout = n;
    channelizer_destroy(ch);
    extractor_destroy(ex);
}

static void test_xcancel_through_extractor(void **state)
{
    (void)state;
    static const struct {
        int baud;
        double off_hz;
    } cases[] = {{600, 0}, {600, 180}, {600, -450}, {600, 650}, {100, 250}, {100, -380}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        prng_t r;
        prng_seed(&r, 10 + k, 0);
        uint8_t bits100[18], bits_nbr[18];
        for (size_t i = 0; i < sizeof bits100; i++) {
            bits100[i] = (uint8_t)(prng_next(&r) >> 56);
            bits_nbr[i] = (uint8_t)(prng_next(&r) >> 56);
        }
        dbpsk_burst_params_t b100 = {.rate_sps = XC_RATE,
                                     .baud = 100,
                                     .baud_error_ppm = -250,
                                     .freq_hz = 15,
                                     .drift_hz_s = 4,
                                     .phase_rad = 0.3,
                                     .amplitude = 0.4};
        dbpsk_burst_params_t nbr = {.rate_sps = XC_RATE,
                                    .baud = cases[k].baud,
                                    .baud_error_ppm = 400,
                                    .freq_hz = cases[k].off_hz,
                                    .drift_hz_s = -20,
                                    .phase_rad = 2.0,
                                    .amplitude = 1.0};
        double start100 = 3000.4, start_nbr = cases[k].baud == 600 ? 9123.7 : 4123.7;
        float complex *w = calloc(XC_LEN, sizeof *w), *w100 = calloc(XC_LEN, sizeof *w100),
                      *w_nbr = calloc(XC_LEN, sizeof *w_nbr);
        assert_true(dbpsk_burst_render(&b100, bits100, 144, start100, 0, w100, XC_LEN) > 0);
        assert_true(dbpsk_burst_render(&nbr, bits_nbr, 144, start_nbr, 0, w_nbr, XC_LEN) > 0);
        for (size_t i = 0; i < XC_LEN; i++)
            w[i] = w100[i] + w_nbr[i];
        float complex *x = calloc(XC_LEN, sizeof *x), *x100 = calloc(XC_LEN, sizeof *x100),
                      *x_nbr = calloc(XC_LEN, sizeof *x_nbr);
        size_t nx, n100, n_nbr;
        cut_snippet(w, x, &nx);
        cut_snippet(w100, x100, &n100);
        cut_snippet(w_nbr, x_nbr, &n_nbr);
        assert_int_equal(nx, n100);
        /* snippet sample j is working sample N/4 + j N/64 (extractor.h) */
        double step = XC_N / 64.0, first = XC_N / 4.0;
        unsigned over = cases[k].baud == 600 ? 6 : 1;
        sic_xcancel_config_t xc = {
            .rate_sps = 1600, .oversample = over, .pass_hz = 300, .stop_hz = 700, .max_span = nx};
        sic_xcancel_t *q = sic_xcancel_create(&xc);
        assert_non_null(q);
        dbpsk_burst_params_t est = nbr;
        est.rate_sps = 1600.0 * over;
        est.phase_rad = 0;
        est.amplitude = 1;
        assert_int_equal(
            sic_xcancel_burst(q, &est, bits_nbr, 144, (start_nbr - first) / step, x, nx), SIC_OK);
        double e_nbr = energy(x_nbr, nx), e100 = energy(x100, nx);
        double left = energy_diff(x, x100, nx);
        print_message("BR%d %+5.0f Hz from the BR100 snippet's centre: its energy there %.3g "
                      "(BR100 burst %.3g), left %.2g of it\n",
                      cases[k].baud, cases[k].off_hz, e_nbr, e100, left / e_nbr);
        assert_true(e_nbr > 0.01 * e100); /* there was something to cancel */
        assert_true(left < 0.02 * e_nbr);
        sic_xcancel_destroy(q);
        free(w);
        free(w100);
        free(w_nbr);
        free(x);
        free(x100);
        free(x_nbr);
    }
    /* refusals leave x alone */
    sic_xcancel_config_t bad = {
        .rate_sps = 1600, .oversample = 0, .pass_hz = 300, .stop_hz = 700, .max_span = 100};
    assert_null(sic_xcancel_create(&bad));
    bad.oversample = 1;
    bad.stop_hz = 900;
    assert_null(sic_xcancel_create(&bad)); /* stop beyond the Nyquist rate of 1600 S/s */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quadratic_gain_removed),
        cmocka_unit_test(test_span_only),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_cancel_burst),
        cmocka_unit_test(test_cancel_refusals),
        cmocka_unit_test(test_xcancel_through_extractor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
