/* test_gfskmod: GFSK downlink modulator — deviation, bit timing, ramps, amplitude and the
 * spectrum (FFTW) at direct and resampled output rates and several carrier offsets.
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

#include "dlframe.h"
#include "gfskmod.h"
#include "prng.h"

/* The spec's Annex C downlink frame (frames.json "spec 8.2"). */
static const uint8_t spec_frame[DL_FRAME_BYTES] = {
    0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xB2, 0x27, 0xC6,
    0x05, 0x30, 0x38, 0xC6, 0x4B, 0xF9, 0x2E, 0x71, 0x8A, 0xAC, 0x45, 0x06, 0x3E, 0x00};

static unsigned bit_at(const uint8_t *bits, size_t i)
{
    return (bits[i / 8] >> (7 - i % 8)) & 1u;
}

/* Instantaneous frequency (Hz) around sample i: mean of the two adjacent one-sample
 * phase steps (each below π as long as |f| < rate/2). */
static double inst_freq(const float complex *y, size_t i, double rate)
{
    return (carg(y[i] * conj(y[i - 1])) + carg(y[i + 1] * conj(y[i]))) * rate / (4.0 * M_PI);
}

typedef struct {
    double rate_sps;
    double offset_hz;
    int resampled; /* expected path, for the log */
} mod_case_t;

static const mod_case_t cases[] = {
    {9600.0, 0.0, 0},       {9600.0, 1500.0, 0},   {48000.0, -12500.0, 0},
    {250000.0, 40000.0, 1}, {1.0e6, -300000.0, 1}, {2.4e6, 123456.7, 0},
};

/* Bit decisions, deviation at the centre of isolated-run bits, ramps and amplitude. */
static void test_modulate_frame(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const mod_case_t *t = &cases[c];
        gfskmod_config_t cfg = {
            .rate_sps = t->rate_sps, .offset_hz = t->offset_hz, .amplitude = 0.8f};
        gfskmod_t *q = gfskmod_create(&cfg);
        assert_non_null(q);
        double sps = gfskmod_samples_per_symbol(q);
        size_t len = gfskmod_burst_samples(q, DL_FRAME_BITS);
        assert_int_equal(len, (size_t)llround(DL_FRAME_BITS * sps) + 2 * llround(0.5 * sps));
        float complex *y = malloc(len * sizeof *y);
        assert_non_null(y);
        assert_int_equal(gfskmod_process(q, spec_frame, DL_FRAME_BITS, y, len), (long)len);

        double off = gfskmod_data_offset_s(q) * t->rate_sps;
        assert_true(off <= 0.5 * sps + 0.5);
        /* Back to baseband in double precision, then frequency over ±sps/8 samples. */
        float complex *z = malloc(len * sizeof *z);
        assert_non_null(z);
        for (size_t i = 0; i < len; i++)
            z[i] = y[i] *
                   (float complex)cexp(-2.0 * M_PI * I * t->offset_hz * (double)i / t->rate_sps);
        size_t h = (size_t)fmax(1.0, sps / 8.0);
        int errors = 0;
        double dev_max = 0, dev_min = 1e9, amp_min = 1e9, amp_max = 0;
        for (size_t j = 0; j < DL_FRAME_BITS; j++) {
            size_t centre = (size_t)llround(off + (j + 0.5) * sps);
            double f = carg(z[centre + h] * conj(z[centre - h])) * t->rate_sps /
                       (2.0 * M_PI * 2.0 * (double)h);
            unsigned b = bit_at(spec_frame, j);
            if ((f > 0) != (b == 1))
                errors++;
            /* Symbols inside a run of three equal bits reach the full deviation. */
            if (j > 0 && j + 1 < DL_FRAME_BITS && bit_at(spec_frame, j - 1) == b &&
                bit_at(spec_frame, j + 1) == b) {
                dev_max = fmax(dev_max, fabs(f));
                dev_min = fmin(dev_min, fabs(f));
            }
        }
        for (size_t i = (size_t)off; i < len - (size_t)off; i++) {
            amp_min = fmin(amp_min, cabsf(y[i]));
            amp_max = fmax(amp_max, cabsf(y[i]));
        }
        /* Ramps: raised cosine over ramp samples, start and end near zero. */
        double ramp_len = off;
        print_message("rate %.0f offset %.1f (%s): sps %.2f, bit errors %d, deviation in "
                      "runs %.1f..%.1f Hz, amplitude %.4f..%.4f, ramp %.0f samples = %.3f "
                      "symbol\n",
                      t->rate_sps, t->offset_hz, t->resampled ? "resampled" : "direct", sps, errors,
                      dev_min, dev_max, amp_min, amp_max, ramp_len, ramp_len / sps);
        assert_int_equal(errors, 0);
        assert_true(fabs(dev_min - 800.0) < 3.0 && fabs(dev_max - 800.0) < 3.0);
        assert_true(amp_min > 0.8 * 0.98 && amp_max < 0.8 * 1.02);
        assert_true(ramp_len / sps <= 0.5 + 1e-9);
        assert_true(cabsf(y[0]) < 0.1 * 0.8 && cabsf(y[len - 1]) < 0.1 * 0.8);
        /* Monotonic rise over the ramp. */
        for (size_t i = 1; i < (size_t)ramp_len; i++)
            assert_true(cabsf(y[i]) >= cabsf(y[i - 1]) - 1e-3f);
        free(y);
        free(z);
        gfskmod_destroy(q);
    }
}

/* Power spectrum of a long random-bit burst with FFTW (Welch, Hann, ~9 Hz bins): centre,
 * RMS deviation, 99 % occupied bandwidth, power far from the carrier. */
static void check_spectrum(double rate, double offset, int nfft)
{
    const size_t nbits = 4096;
    gfskmod_config_t cfg = {.rate_sps = rate, .offset_hz = offset, .max_bits = nbits};
    gfskmod_t *q = gfskmod_create(&cfg);
    assert_non_null(q);
    uint8_t *bits = malloc(nbits / 8);
    prng_t r;
    prng_seed(&r, 99, 0);
    int ones = 0;
    for (size_t i = 0; i < nbits / 8; i++) {
        bits[i] = (uint8_t)(prng_next(&r) >> 56);
        ones += __builtin_popcount(bits[i]);
    }
    size_t len = gfskmod_burst_samples(q, nbits);
    float complex *y = malloc(len * sizeof *y);
    assert_int_equal(gfskmod_process(q, bits, nbits, y, len), (long)len);

    fftwf_complex *in = fftwf_malloc(sizeof(fftwf_complex) * nfft);
    fftwf_complex *out = fftwf_malloc(sizeof(fftwf_complex) * nfft);
    fftwf_plan plan = fftwf_plan_dft_1d(nfft, in, out, FFTW_FORWARD, FFTW_ESTIMATE);
    double *psd = calloc(nfft, sizeof *psd);
    for (size_t s = 0; s + nfft <= len; s += nfft / 2) {
        for (int i = 0; i < nfft; i++) {
            float w = 0.5f - 0.5f * cosf(2.0f * (float)M_PI * i / nfft);
            in[i] = y[s + i] * w;
        }
        fftwf_execute(plan);
        for (int i = 0; i < nfft; i++)
            psd[i] += (double)(crealf(out[i]) * crealf(out[i]) + cimagf(out[i]) * cimagf(out[i]));
    }
#define BIN_HZ(i) (((i) < nfft / 2 ? (i) : (i)-nfft) * rate / nfft)
    double total = 0, mean_f = 0, var = 0;
    for (int i = 0; i < nfft; i++) {
        total += psd[i];
        mean_f += psd[i] * BIN_HZ(i);
    }
    mean_f /= total;
    for (int i = 0; i < nfft; i++)
        var += psd[i] * (BIN_HZ(i) - mean_f) * (BIN_HZ(i) - mean_f);
    double rms_dev = sqrt(var / total);
    /* 99 % occupied bandwidth: 0.5 % cut on each side. */
    double acc = 0, f_lo = 0, f_hi = 0, far = 0;
    for (int k = 0; k < nfft; k++) {
        int i = (k + nfft / 2) % nfft; /* from -rate/2 upwards */
        double prev = acc;
        acc += psd[i];
        if (prev < 0.005 * total && acc >= 0.005 * total)
            f_lo = BIN_HZ(i);
        if (prev < 0.995 * total && acc >= 0.995 * total)
            f_hi = BIN_HZ(i);
        if (fabs(BIN_HZ(i) - offset) > 3500.0) /* the spec's first interferer offset */
            far += psd[i];
    }
#undef BIN_HZ
    /* The spectrum's RMS width equals the RMS instantaneous frequency (FM signal); its
     * mean is the carrier plus 800 Hz × the ones/zeros imbalance. */
    double ti_sum = 0, ti_mean = 0;
    size_t ti_n = 0, edge = (size_t)(rate / 600.0);
    for (size_t i = edge; i + edge < len; i++, ti_n++) {
        double f = (carg(y[i] * conj(y[i - 1])) * rate / (2.0 * M_PI)) - offset;
        ti_sum += f * f;
        ti_mean += f;
    }
    double rms_time = sqrt(ti_sum / (double)ti_n);
    ti_mean = offset + ti_mean / (double)ti_n;
    double centre_exp = offset + GFSK_DEVIATION_HZ * (2.0 * ones - (double)nbits) / nbits;
    double obw = f_hi - f_lo, far_dbc = 10 * log10(far / total);
    print_message(
        "spectrum at %.0f sps, carrier %.1f Hz: centre %.1f Hz (expected %.1f), RMS "
        "deviation %.1f Hz (time domain mean %.1f Hz, %.1f Hz; peak 800 Hz, lower on random bits "
        "because of the Gaussian transitions), 99%% occupied bandwidth %.0f Hz "
        "(%.0f .. %.0f), power beyond ±3.5 kHz %.1f dBc\n",
        rate, offset, mean_f, centre_exp, rms_dev, ti_mean, rms_time, obw, f_lo - offset,
        f_hi - offset, far_dbc);
    assert_true(fabs(ti_mean - centre_exp) < 2.0);
    assert_true(fabs(mean_f - centre_exp) < 10.0); /* Welch weights bits unevenly */
    assert_true(fabs(rms_dev - rms_time) < 0.03 * rms_time);
    assert_true(rms_dev > 600.0 && rms_dev < 800.0);
    assert_true(obw > 1600.0 && obw < 3200.0);
    /* Purity: liquid's NCO left -55 dBc here; the double-precision mixer is at -85 dBc. */
    assert_true(far_dbc < -75.0);

    fftwf_destroy_plan(plan);
    fftwf_free(in);
    fftwf_free(out);
    free(psd);
    free(y);
    free(bits);
    gfskmod_destroy(q);
}

static void test_spectrum(void **state)
{
    (void)state;
    check_spectrum(9600.0, 1000.0, 1024);     /* direct path */
    check_spectrum(250000.0, 40000.0, 32768); /* resampled path + NCO */
}

static void test_bt_and_ramp_options(void **state)
{
    (void)state;
    const float bts[] = {0.3f, 0.5f, 1.0f};
    const float ramps[] = {0.1f, 0.25f, 0.5f};
    for (int i = 0; i < 3; i++) {
        gfskmod_config_t cfg = {.rate_sps = 24000.0, .bt = bts[i], .ramp_symbols = ramps[i]};
        gfskmod_t *q = gfskmod_create(&cfg);
        assert_non_null(q);
        size_t len = gfskmod_burst_samples(q, DL_FRAME_BITS);
        assert_int_equal(len, 224 * 40 + 2 * (size_t)lroundf(ramps[i] * 40));
        float complex *y = malloc(len * sizeof *y);
        assert_int_equal(gfskmod_process(q, spec_frame, DL_FRAME_BITS, y, len), (long)len);
        double off = gfskmod_data_offset_s(q) * 24000.0;
        int errors = 0;
        for (size_t j = 0; j < DL_FRAME_BITS; j++) {
            size_t centre = (size_t)llround(off + (j + 0.5) * 40);
            if ((inst_freq(y, centre, 24000.0) > 0) != (bit_at(spec_frame, j) == 1))
                errors++;
        }
        assert_int_equal(errors, 0);
        /* Full amplitude reached after the ramp and not before its last sample. */
        assert_true(cabsf(y[(size_t)off]) > 0.99f);
        assert_true(cabsf(y[(size_t)off - 1]) < 0.999f);
        free(y);
        gfskmod_destroy(q);
    }
}

static void test_bad_config(void **state)
{
    (void)state;
    assert_null(gfskmod_create(NULL));
    gfskmod_config_t ok = {.rate_sps = 48000.0};
    gfskmod_config_t c = ok;
    c.rate_sps = 1000.0;
    assert_null(gfskmod_create(&c));
    c = ok;
    c.rate_sps = NAN;
    assert_null(gfskmod_create(&c));
    c = ok;
    c.bt = 1.5f;
    assert_null(gfskmod_create(&c));
    c = ok;
    c.ramp_symbols = 0.6f; /* §2.5.6 limit */
    assert_null(gfskmod_create(&c));
    c = ok;
    c.amplitude = 1.5f;
    assert_null(gfskmod_create(&c));
    c = ok;
    c.offset_hz = 23000.0; /* signal would cross rate/2 */
    assert_null(gfskmod_create(&c));

    gfskmod_t *q = gfskmod_create(&ok);
    assert_non_null(q);
    float complex buf[16];
    uint8_t bits[4] = {0};
    assert_int_equal(gfskmod_process(q, NULL, 8, buf, 16), GFSKMOD_ERR_ARG);
    assert_int_equal(gfskmod_process(q, bits, 0, buf, 16), GFSKMOD_ERR_ARG);
    assert_int_equal(gfskmod_process(q, bits, 225, buf, 16), GFSKMOD_ERR_ARG);
    assert_int_equal(gfskmod_process(q, bits, 8, buf, 16), GFSKMOD_ERR_SPACE);
    assert_int_equal(gfskmod_set_offset(q, 1e6), GFSKMOD_ERR_OFFSET);
    assert_int_equal(gfskmod_set_offset(q, NAN), GFSKMOD_ERR_OFFSET);
    assert_int_equal(gfskmod_set_offset(q, -5000.0), GFSKMOD_OK);
    assert_int_equal(gfskmod_set_offset(NULL, 0), GFSKMOD_ERR_ARG);
    assert_string_not_equal(gfskmod_strerror(GFSKMOD_ERR_SPACE), gfskmod_strerror(GFSKMOD_ERR_ARG));
    gfskmod_destroy(q);
    gfskmod_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modulate_frame),
        cmocka_unit_test(test_spectrum),
        cmocka_unit_test(test_bt_and_ramp_options),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
