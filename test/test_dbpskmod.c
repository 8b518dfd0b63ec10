/* test_dbpskmod: D-BPSK burst modulator against spec rev 1.4 §2.4.3 (bit convention, extra
 * symbols), §2.4.4 Table 2-8 (Tx spectrum template, measured with FFTW), Table 2-2/2-3
 * impairments, and the length/offset/streaming contracts of dbpskmod.h. Licence: MIT. */
#include <setjmp.h>
#include <stdbool.h>
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

#include "dbpskmod.h"
#include "dsptest.h"
#include "prng.h"

/* Spec Annex 8.2 example bit stream (UL-Pr included), a real frame to modulate. */
static const uint8_t annex_frame[] = {0xAA, 0xAA, 0xAF, 0x67, 0x06, 0x73, 0x98, 0xBA,
                                      0xDC, 0xFE, 0x09, 0xE4, 0x0C, 0xCC, 0x10, 0xFA,
                                      0x00, 0xE6, 0xBF, 0x9D, 0x81, 0x0E};
#define ANNEX_BITS (sizeof annex_frame * 8)

static int bit_at(const uint8_t *bits, size_t k)
{
    return (bits[k >> 3] >> (7 - (k & 7))) & 1;
}

/* Deterministic pseudo-random bytes (prng.h). */
static void random_bytes(uint32_t seed, uint8_t *out, size_t n)
{
    prng_t r;
    prng_seed(&r, seed, 0);
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(prng_next(&r) >> 56);
}

static dbpsk_burst_params_t base_params(double rate_sps, double baud)
{
    dbpsk_burst_params_t p = {0};
    p.rate_sps = rate_sps;
    p.baud = baud;
    p.amplitude = 0.5;
    p.lead_symbols = 1;
    p.tail_symbols = 1;
    p.ramp_symbols = 1.0;
    return p;
}

static float complex *modulate_alloc(const dbpsk_burst_params_t *p, const uint8_t *bits,
                                     size_t nbits, size_t pad, size_t *len_out)
{
    size_t len = dbpsk_burst_length(p, nbits);
    assert_true(len > 0);
    float complex *x = calloc(len + 2 * pad, sizeof *x);
    assert_non_null(x);
    assert_int_equal(dbpsk_burst_modulate(p, bits, nbits, x + pad, len), (long)len);
    *len_out = len + 2 * pad;
    return x;
}

static void test_bad_params(void **state)
{
    (void)state;
    uint8_t bits[4] = {0xAA, 0xAA, 0xA6, 0x11};
    float complex buf[64];
    dbpsk_burst_params_t p = base_params(48000, 600);
    assert_int_equal(dbpsk_burst_check(&p), DBPSK_OK);
    assert_int_equal(dbpsk_burst_check(NULL), DBPSK_ERR_ARG);

    dbpsk_burst_params_t q = p;
    q.baud_error_ppm = 1001; /* Table 2-3: ±0.1 % */
    assert_int_equal(dbpsk_burst_check(&q), DBPSK_ERR_PARAM);
    q = p;
    q.lead_symbols = 2;
    q.ramp_symbols = 0.5; /* §2.4.3: ramp + extra symbols <= 2 TS */
    assert_int_equal(dbpsk_burst_check(&q), DBPSK_ERR_PARAM);
    q = p;
    q.tail_symbols = 3;
    q.ramp_symbols = 0;
    assert_int_equal(dbpsk_burst_check(&q), DBPSK_ERR_PARAM);
    q = p;
    q.freq_hz = 24000;
    assert_int_equal(dbpsk_burst_check(&q), DBPSK_ERR_PARAM);
    q = p;
    q.rate_sps = 1000;
    assert_int_equal(dbpsk_burst_check(&q), DBPSK_ERR_PARAM);
    q = p;
    q.reversal_symbols = 1.5;
    assert_int_equal(dbpsk_burst_check(&q), DBPSK_ERR_PARAM);
    q = p;
    q.amplitude = NAN;
    assert_int_equal(dbpsk_burst_check(&q), DBPSK_ERR_PARAM);

    assert_int_equal(dbpsk_burst_length(&p, 0), 0);
    assert_int_equal(dbpsk_burst_modulate(&p, bits, 32, buf, 64), DBPSK_ERR_LENGTH);
    assert_int_equal(dbpsk_burst_modulate(&p, NULL, 32, buf, 64), DBPSK_ERR_ARG);
    assert_int_equal(dbpsk_burst_modulate(&p, bits, DBPSK_MAX_BITS + 1, buf, 64), DBPSK_ERR_ARG);
    assert_int_equal(dbpsk_burst_render(&q, bits, 32, 0, 0, buf, 64), DBPSK_ERR_PARAM);
    assert_true(strlen(dbpsk_strerror(DBPSK_ERR_LENGTH)) > 0);
    assert_true(dbpsk_burst_data_offset(&q) < 0);
}

/* Lengths and offsets agree with the symbol timing, for several rates and extras. */
static void test_length_offset(void **state)
{
    (void)state;
    const struct {
        double rate, baud, ppm, ramp;
        int lead, tail;
    } cases[] = {
        {200000, 100, 0, 1.0, 1, 1},
        {1024000, 100, -1000, 0.5, 0, 1},
        {48000, 600, 1000, 2.0, 0, 0},
        {2400000, 600, 250, 0.25, 1, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dbpsk_burst_params_t p = base_params(cases[c].rate, cases[c].baud);
        p.baud_error_ppm = cases[c].ppm;
        p.ramp_symbols = cases[c].ramp;
        p.lead_symbols = cases[c].lead;
        p.tail_symbols = cases[c].tail;
        double rs = cases[c].baud * (1 + cases[c].ppm * 1e-6);
        double sps = cases[c].rate / rs;
        assert_near(dbpsk_burst_symbol_rate(&p), rs, 1e-9);
        assert_near(dbpsk_burst_data_offset(&p), (p.ramp_symbols + p.lead_symbols) * sps, 1e-6);
        double total = 2 * p.ramp_symbols + p.lead_symbols + p.tail_symbols + ANNEX_BITS;
        assert_int_equal(dbpsk_burst_length(&p, ANNEX_BITS), (size_t)ceil(total * sps));
        assert_near(dbpsk_burst_duration_s(&p, ANNEX_BITS), total / rs, 1e-12);
    }
}

/* Direct per-sample evaluation of the definition in dbpskmod.h, independent of the
 * modulator's zone-wise recursions. */
static double definition_envelope(const dbpsk_burst_params_t *p, const uint8_t *bits, size_t nbits,
                                  double s)
{
    double alpha = p->reversal_symbols > 0 ? p->reversal_symbols : DBPSK_DEFAULT_REVERSAL_SYMBOLS;
    /* b_k for k = floor(s) and its neighbours */
    double b_prev = 1, b = 1;
    long j = (long)floor(s + 0.5); /* nearest boundary */
    for (long k = 0; k < j && k < (long)nbits; k++)
        if (!bit_at(bits, (size_t)k))
            b = -b;
    b_prev = b; /* sign of symbol j-1 */
    double b_next = b_prev;
    if (j >= 0 && j < (long)nbits && !bit_at(bits, (size_t)j))
        b_next = -b_prev;
    double d = s - j, v;
    if (b_prev != b_next && fabs(d) < alpha / 2) {
        double x = (d + alpha / 2) / alpha; /* 0 -> 1 across the dip */
        double up = cos(M_PI_2 * x), dn = sin(M_PI_2 * x);
        v = b_prev * up * up + b_next * dn * dn; /* complementary cos² tapers */
    } else {
        v = d < 0 ? b_prev : b_next;
    }
    double end = (double)nbits + p->tail_symbols;
    if (s < -p->lead_symbols && p->ramp_symbols > 0)
        v *= pow(sin(M_PI_2 * (s + p->lead_symbols + p->ramp_symbols) / p->ramp_symbols), 2);
    if (s >= end && p->ramp_symbols > 0)
        v *= pow(cos(M_PI_2 * (s - end) / p->ramp_symbols), 2);
    return v;
}

static void test_matches_definition(void **state)
{
    (void)state;
    const struct {
        double rev, ramp;
        int lead, tail;
        uint8_t first;
    } cases[] = {
        {0, 1.0, 1, 1, 0xAA},   {0.7, 0.5, 0, 1, 0x2A}, {1.0, 2.0, 0, 0, 0x55},
        {0.6, 0.3, 0, 1, 0x00}, {0.8, 0, 2, 0, 0x3C},
    };
    uint8_t bits[12];
    random_bytes(99, bits, sizeof bits);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dbpsk_burst_params_t p = base_params(20000, 600);
        p.reversal_symbols = cases[c].rev;
        p.ramp_symbols = cases[c].ramp;
        p.lead_symbols = cases[c].lead;
        p.tail_symbols = cases[c].tail;
        p.freq_hz = 1500;
        p.drift_hz_s = 90;
        p.phase_rad = -0.5;
        p.baud_error_ppm = -400;
        bits[0] = cases[c].first;
        size_t n;
        float complex *x = modulate_alloc(&p, bits, sizeof bits * 8, 0, &n);
        double sps = p.rate_sps / dbpsk_burst_symbol_rate(&p), d0 = dbpsk_burst_data_offset(&p);
        double maxerr = 0;
        for (size_t m = 0; m < n; m++) {
            double s = ((double)m - d0) / sps;
            double complex ref = p.amplitude * definition_envelope(&p, bits, sizeof bits * 8, s) *
                                 cexp(I * ref_carrier_phase(&p, 0, (double)m));
            maxerr = fmax(maxerr, cabs(x[m] - ref));
        }
        if (maxerr > 1e-5)
            fail_msg("case %zu: max deviation from the definition %.3g", c, maxerr);
        free(x);
    }
}

/* The modulator ADDS; block-wise rendering equals one call; nothing outside the burst. */
static void test_adds_and_streams(void **state)
{
    (void)state;
    dbpsk_burst_params_t p = base_params(96000, 600);
    p.freq_hz = 3210.5;
    p.drift_hz_s = -80;
    p.phase_rad = 1.1;
    p.baud_error_ppm = 700;
    size_t len = dbpsk_burst_length(&p, ANNEX_BITS);
    size_t total = len + 1000;
    float complex *a = calloc(total, sizeof *a), *b = calloc(total, sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    const double start = 333.37; /* fractional start inside the stream */
    for (size_t i = 0; i < total; i++)
        b[i] = 0.25f;
    assert_int_equal(dbpsk_burst_render(&p, annex_frame, ANNEX_BITS, start, 0, a, total),
                     (long)len);
    /* Blocks of awkward sizes, covering the stream. */
    size_t pos = 0, blk = 1;
    long touched = 0;
    while (pos < total) {
        size_t n = blk < total - pos ? blk : total - pos;
        long got = dbpsk_burst_render(&p, annex_frame, ANNEX_BITS, start, (int64_t)pos, b + pos, n);
        assert_true(got >= 0 && (size_t)got <= n);
        touched += got;
        pos += n;
        blk = blk * 3 + 7;
    }
    assert_int_equal(touched, (long)len);
    double maxdiff = 0;
    for (size_t i = 0; i < total; i++) {
        maxdiff = fmax(maxdiff, cabs(b[i] - 0.25f - a[i]));
        if (i < 334 || i >= 334 + len)
            assert_true(a[i] == 0);
    }
    assert_true(maxdiff < 1e-6);
    free(a);
    free(b);
}

/* Known carrier and timing: the reference demodulator gets every bit back, for a real frame
 * and for random bits, with frequency offset, drift, symbol-rate error and any phase. */
static void test_reference_demod(void **state)
{
    (void)state;
    const struct {
        double rate, baud, freq, drift, ppm, phase, ramp, rev;
        int lead, tail;
    } cases[] = {
        {200000, 100, 12345.6, 30, 1000, 0.3, 1.0, 0, 1, 1},
        {200000, 100, -80000, -30, -1000, -2.9, 0.5, 0.5, 0, 1},
        {1024000, 600, 95000, 100, 500, 1.7, 1.0, 0, 1, 0},
        {250000, 600, -1234.5, -100, -700, 3.1, 2.0, 1.0, 0, 0},
    };
    uint8_t rnd[26], got[26];
    random_bytes(12345, rnd, sizeof rnd);
    rnd[0] = 0x2A; /* starts with a 0 bit: reversal on the first boundary */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dbpsk_burst_params_t p = base_params(cases[c].rate, cases[c].baud);
        p.freq_hz = cases[c].freq;
        p.drift_hz_s = cases[c].drift;
        p.baud_error_ppm = cases[c].ppm;
        p.phase_rad = cases[c].phase;
        p.ramp_symbols = cases[c].ramp;
        p.reversal_symbols = cases[c].rev;
        p.lead_symbols = cases[c].lead;
        p.tail_symbols = cases[c].tail;
        const uint8_t *srcs[2] = {annex_frame, rnd};
        size_t nbits[2] = {ANNEX_BITS, sizeof rnd * 8};
        for (int s = 0; s < 2; s++) {
            size_t n;
            float complex *x = modulate_alloc(&p, srcs[s], nbits[s], 0, &n);
            ref_demod(&p, 0.0, x, nbits[s], got);
            assert_memory_equal(got, srcs[s], nbits[s] / 8);
            free(x);
        }
    }
}

/* Frequency offset and drift land where asked: per-symbol frequency from the lag-1
 * autocorrelation over the symbol's middle half (the ±1 modulation cancels there), then a
 * least-squares line f(τ) = f0 + drift τ. The symbol-rate error moves the phase reversals:
 * the envelope minimum of the reversal on boundary k sits at data_offset + k × sps. */
static void test_offset_drift_rate(void **state)
{
    (void)state;
    const struct {
        double rate, baud, freq, drift, ppm;
    } cases[] = {
        {200000, 100, -45678.9, 30, 1000},
        {200000, 100, 700.25, -30, -1000},
        {500000, 600, 80000, 100, 1000},
        {500000, 600, -3000, -100, -1000},
    };
    uint8_t rnd[26];
    random_bytes(777, rnd, sizeof rnd);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        dbpsk_burst_params_t p = base_params(cases[c].rate, cases[c].baud);
        p.freq_hz = cases[c].freq;
        p.drift_hz_s = cases[c].drift;
        p.baud_error_ppm = cases[c].ppm;
        p.phase_rad = 0.7;
        size_t n, nbits = sizeof rnd * 8;
        float complex *x = modulate_alloc(&p, rnd, nbits, 0, &n);
        double sps = p.rate_sps / dbpsk_burst_symbol_rate(&p), d0 = dbpsk_burst_data_offset(&p);
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        for (size_t k = 0; k < nbits; k++) {
            long a = (long)ceil(d0 + (k + 0.25) * sps), b = (long)floor(d0 + (k + 0.75) * sps);
            double complex r = 0;
            for (long m = a + 1; m <= b; m++)
                r += x[m] * conj(x[m - 1]);
            double f = carg(r) * p.rate_sps / (2 * M_PI);
            double tau = ((a + b) / 2.0 - d0) / p.rate_sps;
            sx += tau;
            sy += f;
            sxx += tau * tau;
            sxy += tau * f;
        }
        double N = (double)nbits;
        double slope = (N * sxy - sx * sy) / (N * sxx - sx * sx);
        double f0 = (sy - slope * sx) / N;
        assert_near(f0, p.freq_hz, 0.01);
        assert_near(slope, p.drift_hz_s, 0.05);

        /* Reversal positions: the first 0 bit after the middle of the frame. */
        size_t k = nbits / 2;
        while (bit_at(rnd, k) == 1)
            k++;
        double expect = d0 + k * sps;
        long lo = (long)(expect - sps / 2), best = lo;
        for (long m = lo; m < (long)(expect + sps / 2); m++)
            if (cabsf(x[m]) < cabsf(x[best]))
                best = m;
        assert_true(fabs(best - expect) <= 1.0);
        double nominal = d0 * (1 + p.baud_error_ppm * 1e-6) + k * p.rate_sps / p.baud;
        assert_true(fabs(best - nominal) > 0.05 * sps); /* the error really is there */
        free(x);
    }
}

/* The exact data power matches the measured mean |x|² over the data symbols; the dip goes
 * through zero at a reversal and the envelope is constant between equal symbols. */
static void test_power_envelope(void **state)
{
    (void)state;
    dbpsk_burst_params_t p = base_params(100000, 100);
    p.freq_hz = 5000;
    for (int r = 0; r < 3; r++) {
        p.reversal_symbols = r == 0 ? 0 : (r == 1 ? 0.5 : 0.25);
        size_t n;
        float complex *x = modulate_alloc(&p, annex_frame, ANNEX_BITS, 0, &n);
        double sps = p.rate_sps / dbpsk_burst_symbol_rate(&p), d0 = dbpsk_burst_data_offset(&p);
        long a = (long)ceil(d0), b = (long)ceil(d0 + ANNEX_BITS * sps);
        double acc = 0;
        for (long m = a; m < b; m++)
            acc += cabsf(x[m]) * cabsf(x[m]);
        double measured = acc / (double)(b - a);
        double exact = dbpsk_burst_data_power(&p, annex_frame, ANNEX_BITS);
        assert_near(measured, exact, exact * 1e-3);
        /* Expected power for random bits is within a few % for a real frame. */
        assert_near(dbpsk_burst_mean_power(&p), exact, exact * 0.05);
        /* Bit 1 of the preamble is a 0: reversal on boundary 1, amplitude ~0 there. */
        assert_true(cabsf(x[(long)lround(d0 + sps)]) < 0.01 * p.amplitude);
        /* Bits 5..6 of byte 2 (0xAF = 1010 1111): bits 20..23 are 1: flat envelope. */
        for (long m = (long)(d0 + 20.6 * sps); m < (long)(d0 + 23.4 * sps); m++)
            assert_near(cabsf(x[m]), p.amplitude, 1e-4);
        free(x);
    }
}

/* Welch PSD (Hann window, 50 % overlap), FFT-shifted: psd[i] is at (i - nfft/2) fs / nfft. */
static void welch_psd(const float complex *x, size_t n, size_t nfft, double *psd)
{
    fftwf_complex *buf = fftwf_malloc(sizeof(fftwf_complex) * nfft);
    assert_non_null(buf);
    fftwf_plan plan = fftwf_plan_dft_1d((int)nfft, buf, buf, FFTW_FORWARD, FFTW_ESTIMATE);
    for (size_t i = 0; i < nfft; i++)
        psd[i] = 0;
    size_t segs = 0;
    for (size_t off = 0; off + nfft <= n; off += nfft / 2, segs++) {
        for (size_t i = 0; i < nfft; i++) {
            double w = 0.5 - 0.5 * cos(2 * M_PI * (double)i / (double)nfft);
            buf[i] = (float)w * x[off + i]; /* fftwf_complex is float complex here */
        }
        fftwf_execute(plan);
        for (size_t i = 0; i < nfft; i++) {
            size_t j = (i + nfft / 2) % nfft;
            double re = crealf(buf[i]), im = cimagf(buf[i]);
            psd[j] += re * re + im * im;
        }
    }
    assert_true(segs >= 8);
    fftwf_destroy_plan(plan);
    fftwf_free(buf);
}

static double band_mean(const double *psd, size_t nfft, double fs, double lo, double hi)
{
    double acc = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < nfft; i++) {
        double f = ((double)i - (double)(nfft / 2)) * fs / (double)nfft;
        if (f >= lo && f <= hi) {
            acc += psd[i];
            cnt++;
        }
    }
    assert_true(cnt > 0);
    return acc / (double)cnt;
}

/* Table 2-8 (§2.4.4): averaged PSD per interval in dBc (relative to the averaged PSD over
 * [-1/TS, +1/TS] around the carrier), on random bits with ramps and extra symbols, plus the
 * 99 % occupied bandwidth. */
static bool check_spectrum(double baud, double freq_hz, double reversal, double ramp, size_t nfft,
                           double obw_max_hz)
{
    bool ok = true;
    const double fs = 200000; /* covers the template's ±96 kHz */
    dbpsk_burst_params_t p = base_params(fs, baud);
    p.freq_hz = freq_hz;
    p.reversal_symbols = reversal;
    p.ramp_symbols = ramp;
    p.phase_rad = 0.4;
    uint8_t bits[104]; /* 832 random symbols: enough segments for a smooth estimate */
    random_bytes(4242, bits, sizeof bits);
    size_t n;
    float complex *x = modulate_alloc(&p, bits, sizeof bits * 8, nfft, &n);
    double *psd = calloc(nfft, sizeof *psd);
    assert_non_null(psd);
    welch_psd(x, n, nfft, psd);

    const double ts_inv = baud; /* 1/TS_UL */
    const struct {
        double lo, hi, limit_dbc;
    } mask[] = {
        {-96000, -25 * ts_inv, -52},     {-25 * ts_inv, -5 * ts_inv, -45},
        {-5 * ts_inv, -3 * ts_inv, -35}, {-3 * ts_inv, -1 * ts_inv, -20},
        {1 * ts_inv, 3 * ts_inv, -20},   {3 * ts_inv, 5 * ts_inv, -35},
        {5 * ts_inv, 25 * ts_inv, -45},  {25 * ts_inv, 96000, -52},
    };
    double ref = band_mean(psd, nfft, fs, freq_hz - ts_inv, freq_hz + ts_inv);
    printf("BR%.0f reversal %.2f ramp %.2f:", baud, reversal, ramp);
    for (size_t i = 0; i < sizeof mask / sizeof mask[0]; i++) {
        double lo = freq_hz + mask[i].lo, hi = freq_hz + mask[i].hi;
        lo = fmax(lo, -fs / 2);
        hi = fmin(hi, fs / 2);
        double dbc = 10 * log10(band_mean(psd, nfft, fs, lo, hi) / ref);
        printf(" [%g,%g]:%.1f", mask[i].lo, mask[i].hi, dbc);
        ok = ok && dbc <= mask[i].limit_dbc;
    }
    /* 99 % occupied bandwidth around the carrier. */
    double total = 0;
    for (size_t i = 0; i < nfft; i++)
        total += psd[i];
    size_t c = (size_t)lround(freq_hz * nfft / fs + nfft / 2);
    double in = psd[c];
    size_t h = 0;
    while (in < 0.99 * total && h < nfft / 2 - 1) {
        h++;
        in += psd[c - h] + psd[c + h];
    }
    double obw = (2 * h + 1) * fs / nfft;
    printf(" OBW99 %.0f Hz\n", obw);
    assert_true(obw <= obw_max_hz);
    assert_true(obw >= 0.5 * baud); /* it is modulated at all */
    free(psd);
    free(x);
    return ok;
}

static void test_spectrum_br100(void **state)
{
    (void)state;
    assert_true(check_spectrum(100, 0, 0, 1.0, 1 << 15, 2 * 100));
    assert_true(check_spectrum(100, -21000, 0.7, 0.5, 1 << 15, 2 * 100));
    /* The measurement bites: a dip of a quarter symbol spreads too much (Table 2-8). */
    assert_false(check_spectrum(100, 0, 0.25, 1.0, 1 << 15, 1e6));
}

static void test_spectrum_br600(void **state)
{
    (void)state;
    assert_true(check_spectrum(600, 0, 0, 1.0, 1 << 13, 2 * 600));
    assert_true(check_spectrum(600, 40000, 0.7, 0.5, 1 << 13, 2 * 600));
    assert_false(check_spectrum(600, 0, 0.25, 1.0, 1 << 13, 1e6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_params),         cmocka_unit_test(test_length_offset),
        cmocka_unit_test(test_matches_definition), cmocka_unit_test(test_adds_and_streams),
        cmocka_unit_test(test_reference_demod),    cmocka_unit_test(test_offset_drift_rate),
        cmocka_unit_test(test_power_envelope),     cmocka_unit_test(test_spectrum_br100),
        cmocka_unit_test(test_spectrum_br600),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
