/* test_demod: the D-BPSK demodulator on bursts from dbpskmod plus seeded AWGN: exact bits
 * at high SNR across carrier offsets, drift at the Table 2-2 limits, symbol-rate error,
 * lead/tail/ramps and both baud rates; carrier error RMS, SNR/RSSI/timing estimates; a
 * frame error rate bound at a moderate Eb/N0; bad arguments. Licence: MIT. */
#include <complex.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dbpskmod.h"
#include "demod.h"
#include "prng.h"
#include "uldecode.h"
#include "uljoint.h"
#include "ulframe.h"

#define MAX_SAMPLES (300 * DEMOD_SPS)

/* Test signals (prng.h), seeded per test. */
static prng_t rng_state;
static double urand(void)
{
    return prng_uniform(&rng_state);
}
static double grand(void)
{
    return prng_gauss(&rng_state);
}

typedef struct {
    double baud;
    double freq_baud; /* carrier offset in units of baud */
    double drift_hz_s;
    double baud_error_ppm;
    int lead, tail;
    double ramp;
    double ebn0_db; /* > 90: no noise */
    size_t container_len;
    int rank;
    double hint_error_samples;
    double uncertainty_symbols; /* 0: 3 */
} burst_case_t;

typedef struct {
    float complex x[MAX_SAMPLES];
    size_t n;
    ul_message_t msg;
    uint8_t container[UL_MAX_CONTAINER_BYTES];
    size_t container_len;
    dbpsk_burst_params_t p;
    double true_start;
    double true_end; /* after the last frame bit */
    double power;
    demod_hint_t hint;
} burst_t;

static const uint8_t test_key[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                     0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};

/* Renders one frame of case c into b: random message, random phase, snippet starting
 * 6-8 symbols before the burst and ending 4 symbols after it. */
static void make_burst(const burst_case_t *c, burst_t *b)
{
    memset(&b->msg, 0, sizeof b->msg);
    b->msg.ep_id = (uint32_t)(urand() * 4294967295.0);
    b->msg.mc = (uint16_t)(urand() * 4096);
    b->msg.payload_len = (size_t)ul_max_payload_len(c->container_len);
    for (size_t i = 0; i < b->msg.payload_len; i++)
        b->msg.payload[i] = (uint8_t)(urand() * 256);
    uint8_t frame[UL_MAX_FRAME_BYTES];
    int len = ul_frame_encode(&b->msg, test_key, c->rank, frame, sizeof frame);
    assert_true(len > 0);
    assert_int_equal(ul_container_build(&b->msg, test_key, b->container, sizeof b->container),
                     (int)c->container_len);
    b->container_len = c->container_len;
    size_t nbits = (size_t)len * 8;

    dbpsk_burst_params_t *p = &b->p;
    memset(p, 0, sizeof *p);
    p->rate_sps = DEMOD_SPS * c->baud;
    p->baud = c->baud;
    p->baud_error_ppm = c->baud_error_ppm;
    p->freq_hz = c->freq_baud * c->baud;
    p->drift_hz_s = c->drift_hz_s;
    p->phase_rad = urand() * 2.0 * M_PI;
    p->amplitude = 0.25;
    p->lead_symbols = c->lead;
    p->tail_symbols = c->tail;
    p->ramp_symbols = c->ramp;
    size_t blen = dbpsk_burst_length(p, nbits);
    assert_true(blen > 0);
    double unc = c->uncertainty_symbols > 0 ? c->uncertainty_symbols : 3;
    double pre = (unc + 3.0 + 2.0 * urand()) * DEMOD_SPS;
    b->n = (size_t)pre + blen + (size_t)(unc + 1) * DEMOD_SPS;
    assert_true(b->n <= MAX_SAMPLES);
    memset(b->x, 0, b->n * sizeof b->x[0]);
    assert_true(dbpsk_burst_render(p, frame, nbits, pre, 0, b->x, b->n) > 0);
    b->power = dbpsk_burst_data_power(p, frame, nbits);
    if (c->ebn0_db < 90) {
        /* Eb/N0 = (P / baud) / N0 and N0 = σ² / fs: σ² = P · 16 / (Eb/N0). */
        double sigma = sqrt(b->power * DEMOD_SPS / pow(10.0, c->ebn0_db / 10.0) / 2.0);
        for (size_t i = 0; i < b->n; i++) {
            double re = grand();
            double im = grand();
            b->x[i] += (float)(sigma * re) + I * (float)(sigma * im);
        }
    }
    b->true_start = pre + dbpsk_burst_data_offset(p);
    b->true_end = b->true_start + (double)nbits * DEMOD_SPS / (1.0 + c->baud_error_ppm * 1e-6);
    b->hint.start_sample = b->true_start + c->hint_error_samples;
    b->hint.start_uncertainty = unc * DEMOD_SPS;
    b->hint.end_sample = 0;
}

static demod_t *make_demod(double baud)
{
    static demod_sync_t sync[32];
    size_t ns = uldecode_sync_words(sync, 32);
    assert_int_equal(ns, 18);
    demod_config_t cfg = {.baud = baud, .max_samples = MAX_SAMPLES, .sync = sync, .nsync = ns};
    demod_t *q = demod_create(&cfg);
    assert_non_null(q);
    return q;
}

/* Demodulates and decodes; true when the container is exact. */
static bool run_one(demod_t *q, burst_t *b, demod_result_t *res)
{
    float soft[400];
    int nout = demod_process(q, b->x, b->n, &b->hint, soft, 400, res);
    if (nout < 0)
        return false;
    uldecode_result_t dec;
    if (uldecode_frame(soft, (size_t)nout, UL_FT_DEFAULT_MAX_DISTANCE, &dec) != 0)
        return false;
    return dec.frame.container_len == b->container_len &&
           !memcmp(dec.frame.container, b->container, dec.frame.container_len) &&
           dec.frame.msg.ep_id == b->msg.ep_id && dec.frame.msg.mc == b->msg.mc;
}

static burst_t burst; /* large: static */

/* A rank-1 case with random carrier within ±baud/2, drift within Table 2-2, rate error,
 * lead (and tail) symbols and timing error; drawn one after the other (an initializer's
 * expressions have no defined order). */
static burst_case_t random_case(double baud, double ebn0_db, size_t container_len, bool tail)
{
    double dmax = baud == 100 ? 30 : 100;
    burst_case_t c = {.baud = baud, .ebn0_db = ebn0_db, .container_len = container_len, .rank = 1};
    c.freq_baud = urand() - 0.5;
    c.drift_hz_s = (2 * urand() - 1) * dmax;
    c.baud_error_ppm = (2 * urand() - 1) * 1000;
    c.lead = (int)(urand() * 3);
    c.tail = tail ? (int)(urand() * 3) : 0;
    c.hint_error_samples = (2 * urand() - 1) * 32;
    return c;
}

static void test_high_snr_sweep(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0001, 0);
    const double bauds[] = {100, 600};
    for (int bi = 0; bi < 2; bi++) {
        double baud = bauds[bi];
        double dmax = baud == 100 ? 30 : 100; /* Table 2-2 peak drift */
        demod_t *q = make_demod(baud);
        const burst_case_t cases[] = {
            {baud, 0.0, 0, 0, 0, 0, 0, 99, 12, 1, 0, 0},
            {baud, 0.5, dmax, 1000, 2, 2, 0, 99, 12, 1, 20, 0},
            {baud, -0.5, -dmax, -1000, 0, 0, 2, 99, 20, 2, -30, 0},
            {baud, 0.3, -dmax, 1000, 1, 0, 1, 99, 8, 3, 40, 0},
            {baud, -0.3, dmax, -1000, 0, 1, 0.5, 99, 9, 1, -40, 0},
            {baud, 0.45, dmax, 500, 1, 1, 1, 99, 16, 2, 10, 0},
            {baud, -0.45, -dmax, -500, 2, 0, 0, 99, 20, 3, 0, 0},
            {baud, 0.1, 0, 1000, 0, 1, 1, 30, 12, 1, 45, 0},
            {baud, 0.7, 0, 0, 0, 1, 1, 30, 12, 1, 0, 0}, /* beyond the agreed ±baud/2 */
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            make_burst(&cases[i], &burst);
            demod_result_t res;
            bool ok = run_one(q, &burst, &res);
            if (!ok)
                fprintf(stderr, "baud %.0f case %zu failed\n", baud, i);
            assert_true(ok);
            /* Without noise the estimates are close to exact. */
            assert_true(fabs(res.start_sample - burst.true_start) < 1.0);
            assert_true(fabs(res.freq_hz - burst.p.freq_hz) < 0.01 * baud);
            assert_true(fabs(res.drift_hz_s - burst.p.drift_hz_s) < (baud == 100 ? 1.0 : 10.0));
            assert_true(fabs(res.symbol_rate / baud - 1.0 - cases[i].baud_error_ppm * 1e-6) < 3e-4);
            /* Without lead symbol or ramp the first preamble bit has no reference symbol. */
            int undefined = cases[i].lead == 0 && cases[i].ramp < 0.5;
            assert_true(res.preamble_errors <= undefined);
            assert_true(res.sync_errors <= undefined);
            assert_true(res.preamble_quality > (undefined ? 0.8 : 0.99));
            assert_true(res.sync_index >= 0);
        }
        demod_destroy(q);
    }
}

/* Carrier error RMS at Eb/N0 = 10 dB, random offset within ±baud/2, drift within Table
 * 2-2: the downlink needs ±150 Hz end to end, the benchmark target is 10 Hz RMS. */
static void test_frequency_rms(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0002, 0);
    const double bauds[] = {100, 600};
    for (int bi = 0; bi < 2; bi++) {
        double baud = bauds[bi];
        demod_t *q = make_demod(baud);
        double se = 0, snr_err = 0, rssi_err = 0;
        const int trials = 60;
        for (int t = 0; t < trials; t++) {
            burst_case_t c = random_case(baud, 10.0, 12, false);
            make_burst(&c, &burst);
            demod_result_t res;
            float soft[400];
            int nout = demod_process(q, burst.x, burst.n, &burst.hint, soft, 400, &res);
            assert_true(nout > 0);
            double e = res.freq_hz - burst.p.freq_hz;
            se += e * e;
            snr_err += res.snr_db - 10.0;
            rssi_err += res.rssi_dbfs - 10.0 * log10(burst.power);
        }
        double rms = sqrt(se / trials);
        fprintf(stderr,
                "baud %.0f: carrier error %.3f Hz RMS, SNR bias %.2f dB, RSSI bias %.2f dB\n", baud,
                rms, snr_err / trials, rssi_err / trials);
        /* Measured (N = 60 bursts per rate): carrier RMS 0.031 Hz BR100, 0.178 Hz BR600
         * (the estimate of an RMS over 60 draws varies by ~10 %); SNR bias +0.18 / +0.09
         * dB; RSSI bias -0.02 / -0.03 dB. Bounds at 1.45x the carrier RMS (a doubled error
         * fails) and +-0.4 dB / +-0.2 dB for the biases (an extra 1 dB of noise moves the
         * SNR estimate by 1 dB). */
        assert_true(rms < (baud == 100 ? 0.045 : 0.26));
        assert_true(fabs(snr_err / trials) < 0.4);
        assert_true(fabs(rssi_err / trials) < 0.2);
        demod_destroy(q);
    }
}

/* Timing of weak bursts (Eb/N0 0 dB, 20-byte container, rate error within ±0.1 %). From
 * the baud line of |MF|² alone (step 4), the synced frames' first symbol was 0.084
 * symbols off (RMS, both bauds, this seed) and the rate worse than the nominal one would
 * be (656 / 722 ppm RMS, against the draws' own 577). Refitted on the decided symbols
 * (demod.c refine_timing): 0.059 / 0.062 symbols and 522 / 529 ppm. Bounds: 0.072 symbols,
 * and the rate better than taking the nominal. Synced: start within half a symbol (a
 * slip of whole symbols is the sync's matter, not the timing's). */
static void test_weak_timing(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0011, 0);
    const double bauds[] = {100, 600};
    for (int bi = 0; bi < 2; bi++) {
        demod_t *q = make_demod(bauds[bi]);
        double s0 = 0, s1 = 0, sr = 0;
        int synced = 0;
        const int trials = 100;
        for (int t = 0; t < trials; t++) {
            burst_case_t c = random_case(bauds[bi], 0.0, 20, true);
            make_burst(&c, &burst);
            demod_result_t res;
            float soft[400];
            if (demod_process(q, burst.x, burst.n, &burst.hint, soft, 400, &res) <= 0)
                continue;
            double tsym = DEMOD_SPS / (1.0 + c.baud_error_ppm * 1e-6);
            double e0 = (res.start_sample - burst.true_start) / tsym;
            if (fabs(e0) >= 0.5)
                continue;
            double nsym = (burst.true_end - burst.true_start) / tsym;
            double est_end = res.start_sample + nsym * DEMOD_SPS * bauds[bi] / res.symbol_rate;
            double e1 = (est_end - burst.true_end) / tsym;
            double er = (res.symbol_rate / bauds[bi] - 1.0) * 1e6 - c.baud_error_ppm;
            s0 += e0 * e0;
            s1 += e1 * e1;
            sr += er * er;
            synced++;
        }
        double r0 = sqrt(s0 / synced), r1 = sqrt(s1 / synced), rr = sqrt(sr / synced);
        fprintf(stderr,
                "baud %.0f: %d of %d synced, start %.3f, end %.3f symbols RMS, rate %.0f ppm RMS\n",
                bauds[bi], synced, trials, r0, r1, rr);
        assert_true(synced >= 70);
        assert_true(r0 < 0.072);
        assert_true(rr < 577.0);
        demod_destroy(q);
    }
}

/* Carrier acquisition of weak bursts (Eb/N0 0.5 dB, where three replicas decoded jointly
 * still succeed): the squared signal's tone is then often not the strongest peak of the
 * low-pass squarer's search; the boxcar squarer bank finds it (demod.c
 * weak_carrier_search). Acquired: carrier within 2 % of the baud (a wrong peak is anywhere
 * in ±baud). Measured (150 bursts per rate, this seed): BR100 147, BR600 149 acquired;
 * BR100 108 with the low-pass squarer alone, 129 when only its runners-up were refined.
 * Bound 138 of 150: five binomial standard deviations below the measured rate, two above
 * the runners-up version's (another platform's rounding draws other noise). */
static void test_weak_carrier_acquisition(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0009, 0);
    const double bauds[] = {100, 600};
    for (int bi = 0; bi < 2; bi++) {
        double baud = bauds[bi];
        demod_t *q = make_demod(baud);
        const int trials = 150;
        int acquired = 0;
        for (int t = 0; t < trials; t++) {
            burst_case_t c = random_case(baud, 0.5, 12, false);
            make_burst(&c, &burst);
            demod_result_t res;
            float soft[400];
            demod_process(q, burst.x, burst.n, &burst.hint, soft, 400, &res);
            if (fabs(res.freq_hz - burst.p.freq_hz) < 0.02 * baud)
                acquired++;
        }
        fprintf(stderr, "baud %.0f: carrier acquired in %d of %d bursts at 0.5 dB\n", baud,
                acquired, trials);
        assert_true(acquired >= 138);
        demod_destroy(q);
    }
}

/* demod_carriers: one carrier (the one used, share well above 0.05) for a strong burst;
 * for a weak one the bank's refined carriers, best first, the first being the one the
 * result reports. */
static void test_carrier_list(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED000A, 0);
    demod_t *q = make_demod(100);
    demod_carrier_t cs[8];
    assert_int_equal(demod_carriers(q, 0, cs, 8), 0); /* nothing demodulated yet */
    assert_int_equal(demod_carriers(NULL, 0, cs, 8), 0);
    assert_int_equal(demod_carriers(q, 0, NULL, 8), 0);
    const double snr[] = {15.0, 0.0};
    for (int i = 0; i < 2; i++) {
        burst_case_t c = random_case(100, snr[i], 12, false);
        make_burst(&c, &burst);
        demod_result_t res;
        float soft[400];
        int rc = demod_process(q, burst.x, burst.n, &burst.hint, soft, 400, &res);
        /* res.freq_hz is at the sync's start, or the hint's without one */
        double at = rc > 0 ? res.start_sample : burst.hint.start_sample;
        size_t nc = demod_carriers(q, at, cs, 8);
        if (i == 0) {
            assert_int_equal(nc, 1);
            assert_true(cs[0].share > 0.05);
        } else {
            assert_true(nc >= 2);
            for (size_t k = 0; k + 1 < nc; k++)
                assert_true(cs[k].share > 0 && cs[k].share < 1);
        }
        assert_true(fabs(cs[0].freq_hz - res.freq_hz) < 1e-6);
        assert_true(fabs(cs[0].drift_hz_s - res.drift_hz_s) < 1e-6);
        assert_int_equal(demod_carriers(q, at, cs, 1), 1);
    }
    demod_destroy(q);
}

/* Frame error rate of single BR100 12-byte frames at 8.5 dB with random carrier, drift,
 * phase, rate error and timing: ideal coherent detection gives about 1.5 %, the
 * benchmark target is 10 %. Measured 4 of 300 (1.3 %); the bound, 9 of 300 (3 %), is
 * two Poisson standard deviations above the ideal 4.5; a 1 dB loss (FER ~4.5 % at
 * 7.5 dB, docs/benchmarks.md's curve) expects 13.5 and fails. */
static void test_fer_moderate_snr(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0003, 0);
    demod_t *q = make_demod(100);
    const int trials = 300;
    int fails = 0;
    for (int t = 0; t < trials; t++) {
        burst_case_t c = random_case(100, 8.5, 12, true);
        make_burst(&c, &burst);
        demod_result_t res;
        fails += !run_one(q, &burst, &res);
    }
    fprintf(stderr, "BR100 12-byte at 8.5 dB: FER %.3f (%d/%d)\n", (double)fails / trials, fails,
            trials);
    assert_true(fails <= 9);
    demod_destroy(q);
}

/* Raw bit error rate of the soft output (sign of each LLR against the transmitted frame
 * bit) at low Eb/N0, where it is a sharp measure of implementation loss: 200 BR100 and
 * 200 BR600 20-byte frames with random carrier, drift, phase, rate error, timing. */
static void test_bit_errors(void **state)
{
    (void)state;
    const double bauds[] = {100, 600};
    for (int bi = 0; bi < 2; bi++) {
        double baud = bauds[bi];
        const double ebn0 = 5.0;
        prng_seed(&rng_state, 0x5EED0007 + (uint64_t)bi, 0);
        demod_t *q = make_demod(baud);
        const int trials = 200;
        long bits = 0, errors = 0;
        int lost = 0;
        for (int t = 0; t < trials; t++) {
            burst_case_t c = random_case(baud, ebn0, 20, true);
            make_burst(&c, &burst);
            demod_result_t res;
            float soft[400];
            int nout = demod_process(q, burst.x, burst.n, &burst.hint, soft, 400, &res);
            if (nout < 0 || fabs(res.start_sample - burst.true_start) > DEMOD_SPS / 2) {
                lost++;
                continue;
            }
            uint8_t frame[UL_MAX_FRAME_BYTES];
            int len = ul_frame_encode(&burst.msg, test_key, 1, frame, sizeof frame);
            size_t nb = (size_t)len * 8 - DEMOD_PREAMBLE_BITS;
            assert_true((size_t)nout >= nb);
            for (size_t i = 0; i < nb; i++) {
                size_t k = i + DEMOD_PREAMBLE_BITS;
                int bit = frame[k >> 3] >> (7 - (k & 7)) & 1;
                errors += (soft[i] > 0) != bit;
            }
            bits += (long)nb;
        }
        double ber = (double)errors / (double)bits;
        /* ideal coherent detection with differential decoding: 2 Q (1 - Q), Q = Q(sqrt(2 Eb/N0)) */
        double qv = 0.5 * erfc(sqrt(pow(10.0, ebn0 / 10.0)));
        fprintf(stderr,
                "baud %.0f at %.1f dB: BER %.5f (%ld/%ld bits, ideal %.5f), %d of %d frames not "
                "synced\n",
                baud, ebn0, ber, errors, bits, 2 * qv * (1 - qv), lost, trials);
        /* Measured (N = 200 frames, ~37800 bits per rate): BER 0.0123 (465 errors) BR100,
         * 0.0122 (460) BR600, ideal 0.0118: 0.1 dB from ideal; 0 frames lost. The bound
         * 0.0160 is the ideal BER at 4.6 dB (a 0.4 dB loss), 6 standard deviations (sqrt of
         * the error count) above the measurement; a 1 dB loss gives 0.025 (measured at 4 dB:
         * 0.0257/0.0251). */
        assert_true(ber < 0.0160);
        assert_true(lost <= 2);
        demod_destroy(q);
    }
}

/* Renders case c, demodulates it with the start weighed by start_sigma (samples, 0: flat)
 * and checks that the frame decodes from its true start. */
static void assert_finds_start(demod_t *q, const burst_case_t *c, double start_sigma)
{
    make_burst(c, &burst);
    burst.hint.start_sigma = start_sigma;
    demod_result_t res;
    assert_true(run_one(q, &burst, &res));
    assert_true(fabs(res.start_sample - burst.true_start) < 2.0);
}

/* BR600 behind a detector with 20 ms time resolution: the start is known only to ±12
 * symbols, and the sync search must still find the one right position. */
static void test_wide_start_window(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0005, 0);
    demod_t *q = make_demod(600);
    for (int t = 0; t < 30; t++) {
        burst_case_t c = random_case(600, 12.0, 12, true);
        c.rank = 1 + t % 3;
        c.uncertainty_symbols = 12;
        c.hint_error_samples = (2 * urand() - 1) * 11.5 * DEMOD_SPS;
        assert_finds_start(q, &c, 0);
    }
    demod_destroy(q);
}

/* A start prior (start_sigma) must not pull a clear burst away from its true start at the
 * edge of a wide window: 10 dB, window +-40 symbols, sigma 10 symbols, the burst 30-38
 * symbols from the hint (3-3.8 sigma, 4.5-7.2 nats of prior against it). */
static void test_start_prior_edge(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0011, 0);
    demod_t *q = make_demod(100);
    for (int t = 0; t < 20; t++) {
        burst_case_t c = random_case(100, 10.0, 12, false);
        c.rank = 1 + t % 3;
        c.uncertainty_symbols = 40;
        double off = 30 + 8 * urand();
        c.hint_error_samples = (t % 2 ? off : -off) * DEMOD_SPS;
        assert_finds_start(q, &c, 10 * DEMOD_SPS);
    }
    demod_destroy(q);
}

/* The runner-up starts (demod_result_t.alt_start_sample): each at least
 * DEMOD_ALT_MIN_SYMBOLS from the chosen start and from one another, scored no better than
 * it, best first. A prior a twentieth of a symbol wide, centred 2 symbols off the true
 * start (a slip), forces the sync off it (800 nats against the true start); the true start
 * must then be the first runner-up (the slip's other neighbour 2 symbols away has the same
 * prior and no burst, or the wrong bits, under it), and a second demodulation around it
 * (as rx does for weak bursts) must decode the frame. */
static void test_runner_up_starts(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0012, 0);
    const double bauds[] = {100, 600};
    for (int bi = 0; bi < 2; bi++) {
        demod_t *q = make_demod(bauds[bi]);
        for (int t = 0; t < 10; t++) {
            burst_case_t c = random_case(bauds[bi], 10.0, 12, false);
            c.rank = 1 + t % 3;
            c.uncertainty_symbols = 4;
            c.hint_error_samples = (t % 2 ? 2 : -2) * DEMOD_SPS;
            make_burst(&c, &burst);
            burst.hint.start_sigma = 0.05 * DEMOD_SPS;
            demod_result_t res;
            float soft[400];
            assert_true(demod_process(q, burst.x, burst.n, &burst.hint, soft, 400, &res) >= 0);
            assert_true(fabs(res.start_sample - burst.hint.start_sample) < 0.6 * DEMOD_SPS);
            assert_true(res.nalt >= 1 && res.nalt <= DEMOD_MAX_ALTS);
            for (int i = 0; i < res.nalt; i++) {
                assert_true(fabs(res.alt_start_sample[i] - res.start_sample) >
                            (DEMOD_ALT_MIN_SYMBOLS - 0.5) * DEMOD_SPS);
                for (int j = 0; j < i; j++)
                    assert_true(fabs(res.alt_start_sample[i] - res.alt_start_sample[j]) >
                                (DEMOD_ALT_MIN_SYMBOLS - 0.5) * DEMOD_SPS);
                assert_true(res.alt_score[i] >= 0);
                assert_true(i == 0 || res.alt_score[i] >= res.alt_score[i - 1]);
            }
            assert_true(fabs(res.alt_start_sample[0] - burst.true_start) < 2.0);
            burst.hint.start_sample = res.alt_start_sample[0];
            burst.hint.start_uncertainty = 0;
            burst.hint.start_sigma = 0.5 * DEMOD_SPS;
            assert_true(run_one(q, &burst, &res));
            assert_true(fabs(res.start_sample - burst.true_start) < 2.0);
        }
        demod_destroy(q);
    }
}

/* A weak burst as rx hands it over from a weak track: start and end known to a few
 * symbols, a Gaussian prior on the start. Near the noise the sync word alone scores a
 * slip of a few symbols in the periodic preamble, or a position in the body, about as
 * well as the true start; the energy of the whole frame (the frame-presence term of the
 * sync score) tells them apart.
 * Measured (400 BR100 bursts at 0.5 dB, where three replicas decoded jointly still
 * succeed; 12-byte containers, random carrier, drift, rate and rank; start error Gaussian
 * with sigma 3 symbols, end error sigma 2): start found in 382 with the presence term, 351
 * without it (sync word and prior alone). Bound 368: 3.3 binomial standard deviations
 * below the first, 3 above the second. */
static void test_weak_start_presence(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0013, 0);
    demod_t *q = make_demod(100);
    const int trials = 400;
    int found = 0;
    for (int t = 0; t < trials; t++) {
        burst_case_t c = random_case(100, 0.5, 12, false);
        c.rank = 1 + t % 3;
        c.uncertainty_symbols = 12;
        double e = grand() * 3.0;
        c.hint_error_samples = fmax(-11.0, fmin(11.0, e)) * DEMOD_SPS;
        make_burst(&c, &burst);
        burst.hint.start_sigma = 3.0 * DEMOD_SPS;
        double end_error = grand() * 2.0;
        burst.hint.end_sample = fmin(burst.true_end + end_error * DEMOD_SPS, (double)burst.n);
        demod_result_t res;
        float soft[400];
        int rc = demod_process(q, burst.x, burst.n, &burst.hint, soft, 400, &res);
        if (rc >= 0 && fabs(res.start_sample - burst.true_start) < 0.5 * DEMOD_SPS)
            found++;
    }
    fprintf(stderr, "weak starts found: %d of %d\n", found, trials);
    assert_true(found >= 368);
    demod_destroy(q);
}

/* Near-far: a neighbour 3 baud away and 20 dB stronger (inside the extractor's transition
 * band) must not capture the carrier estimate. */
static void test_strong_neighbour(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0006, 0);
    demod_t *q = make_demod(100);
    for (int t = 0; t < 20; t++) {
        burst_case_t c = {
            .baud = 100, .lead = 1, .tail = 1, .ebn0_db = 15.0, .container_len = 12, .rank = 1};
        c.freq_baud = 0.4 * (urand() - 0.5);
        c.drift_hz_s = (2 * urand() - 1) * 30;
        c.hint_error_samples = 16 * (urand() - 0.5);
        make_burst(&c, &burst);
        dbpsk_burst_params_t p2 = burst.p;
        p2.freq_hz = burst.p.freq_hz + (t & 1 ? 300.0 : -300.0);
        p2.amplitude = burst.p.amplitude * 10.0;
        p2.phase_rad = urand() * 6.28;
        uint8_t bits[26];
        for (int i = 0; i < 26; i++)
            bits[i] = (uint8_t)(urand() * 256);
        assert_true(
            dbpsk_burst_render(&p2, bits, 208, 2.0 * DEMOD_SPS * urand(), 0, burst.x, burst.n) > 0);
        demod_result_t res;
        assert_true(run_one(q, &burst, &res));
        assert_true(fabs(res.freq_hz - burst.p.freq_hz) < 1.0);
    }
    demod_destroy(q);
}

/* The carrier window (demod_hint_t.freq_window_hz): a burst with a 2 dB stronger BR100
 * neighbour 90 Hz away, both in the snippet's ±baud. The whole search locks on the
 * stronger one; centred on the weaker one with a ±25 Hz window, the weaker one is
 * demodulated and decoded. */
static void test_carrier_window(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0009, 0);
    demod_t *q = make_demod(100);
    int strong = 0, windowed = 0;
    const int trials = 10;
    for (int t = 0; t < trials; t++) {
        burst_case_t c = {100, 0.45, (2 * urand() - 1) * 20, 0, 1, 1, 0, 15.0, 12, 1, 0, 0};
        make_burst(&c, &burst);
        dbpsk_burst_params_t p2 = burst.p;
        p2.freq_hz = burst.p.freq_hz - 90.0;
        p2.amplitude = burst.p.amplitude * 1.26;
        p2.phase_rad = urand() * 6.28;
        uint8_t bits[26];
        for (int i = 0; i < 26; i++)
            bits[i] = (uint8_t)(urand() * 256);
        assert_true(dbpsk_burst_render(&p2, bits, 208, DEMOD_SPS * urand(), 0, burst.x, burst.n) >
                    0);
        demod_result_t res;
        float soft[400];
        if (demod_process(q, burst.x, burst.n, &burst.hint, soft, 400, &res) >= 0 &&
            fabs(res.freq_hz - p2.freq_hz) < 5)
            strong++;
        /* centre the snippet on the weaker burst's carrier */
        double w = -2 * M_PI * burst.p.freq_hz / (DEMOD_SPS * 100.0);
        for (size_t i = 0; i < burst.n; i++)
            burst.x[i] *= (float complex)cexp(I * w * (double)i);
        burst.hint.freq_window_hz = 25;
        burst.p.freq_hz = 0;
        if (run_one(q, &burst, &res) && fabs(res.freq_hz) < 2)
            windowed++;
        burst.hint.freq_window_hz = 0;
    }
    print_message("carrier window: the whole search found the stronger neighbour %d of %d times; "
                  "with the window the weaker burst decoded %d of %d times\n",
                  strong, trials, windowed, trials);
    assert_true(strong >= trials * 8 / 10);
    assert_true(windowed >= trials * 8 / 10);
    demod_destroy(q);
}

/* Pure noise: the demodulator may return a sync (it always finds a best position; 40 of
 * the 50 snippets here do) and the decoder must reject every one of them. */
static void test_noise_only(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0004, 0);
    demod_t *q = make_demod(100);
    static float complex x[MAX_SAMPLES];
    int decoded = 0, synced = 0;
    for (int t = 0; t < 50; t++) {
        for (size_t i = 0; i < 230 * DEMOD_SPS; i++) {
            double re = grand();
            double im = grand();
            x[i] = (float)(0.1 * re) + I * (float)(0.1 * im);
        }
        demod_hint_t h = {.start_sample = 6 * DEMOD_SPS, .start_uncertainty = 48};
        demod_result_t res;
        float soft[400];
        int nout = demod_process(q, x, 230 * DEMOD_SPS, &h, soft, 400, &res);
        if (nout > 0) {
            synced++;
            uldecode_result_t dec;
            decoded += uldecode_frame(soft, (size_t)nout, UL_FT_DEFAULT_MAX_DISTANCE, &dec) == 0;
        }
    }
    print_message("noise only: %d of 50 snippets with a sync, %d decoded\n", synced, decoded);
    assert_int_equal(decoded, 0);
    demod_destroy(q);
}

/* demod_symbols: the matched-filter symbols from the sync's first preamble symbol carry the
 * frame with a constant phase and little residual carrier, so the joint coherent decoder
 * (uljoint.h, phase and carrier estimated) decodes one replica of any rank from them. */
static void test_symbols_for_joint(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5EED0011, 0);
    for (int bi = 0; bi < 2; bi++) {
        double baud = bi ? 600 : 100;
        demod_t *q = make_demod(baud);
        for (int t = 0; t < 12; t++) {
            burst_case_t c = random_case(baud, 12, t % 2 ? 20 : 12, true);
            c.rank = 1 + t % 3;
            make_burst(&c, &burst);
            float soft[400];
            demod_result_t res;
            assert_true(demod_process(q, burst.x, burst.n, &burst.hint, soft, 400, &res) > 0);
            static float complex y[400];
            size_t first = 0;
            size_t n = demod_symbols(q, y, 400, &first);
            assert_true(n >= first + ul_joint_symbols(c.container_len));
            const float complex *in[3] = {NULL, NULL, NULL};
            in[c.rank - 1] = y + first;
            ul_frame_t f;
            assert_int_equal(ul_joint_decode_iq(in, c.container_len, false, NULL, &f, NULL), 0);
            assert_memory_equal(f.container, burst.container, c.container_len);
        }
        size_t first;
        float complex y[4];
        assert_int_equal(demod_symbols(NULL, y, 4, &first), 0);
        assert_int_equal(demod_symbols(q, NULL, 4, &first), 0);
        demod_destroy(q);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    demod_config_t cfg = {.baud = 100, .max_samples = MAX_SAMPLES};
    demod_config_t bad = cfg;
    assert_null(demod_create(NULL));
    bad.baud = 0;
    assert_null(demod_create(&bad));
    bad = cfg;
    bad.max_samples = 10;
    assert_null(demod_create(&bad));
    bad = cfg;
    bad.reversal_symbols = 1.5;
    assert_null(demod_create(&bad));
    bad = cfg;
    bad.nsync = 3; /* sync NULL */
    assert_null(demod_create(&bad));

    demod_t *q = demod_create(&cfg);
    assert_non_null(q);
    static float complex x[MAX_SAMPLES];
    memset(x, 0, sizeof x);
    float soft[16];
    demod_result_t res;
    demod_hint_t h = {.start_sample = 100, .start_uncertainty = 48};
    assert_int_equal(demod_process(NULL, x, 4000, &h, soft, 16, &res), DEMOD_ERR_ARG);
    assert_int_equal(demod_process(q, x, 4000, NULL, soft, 16, &res), DEMOD_ERR_ARG);
    assert_int_equal(demod_process(q, x, 100, &h, soft, 16, &res), DEMOD_ERR_SHORT);
    assert_int_equal(demod_process(q, x, MAX_SAMPLES + 1, &h, soft, 16, &res), DEMOD_ERR_LONG);
    demod_hint_t bh = {.start_sample = NAN};
    assert_int_equal(demod_process(q, x, 4000, &bh, soft, 16, &res), DEMOD_ERR_ARG);
    bh = (demod_hint_t){.start_sample = 5000};
    assert_int_equal(demod_process(q, x, 4000, &bh, soft, 16, &res), DEMOD_ERR_ARG);
    bh = (demod_hint_t){.start_sample = 100, .start_uncertainty = 48, .start_sigma = -1};
    assert_int_equal(demod_process(q, x, 4000, &bh, soft, 16, &res), DEMOD_ERR_ARG);
    bh.start_sigma = NAN;
    assert_int_equal(demod_process(q, x, 4000, &bh, soft, 16, &res), DEMOD_ERR_ARG);
    /* All-zero input: no crash, no sync or a harmless one. */
    int rc = demod_process(q, x, 4000, &h, soft, 16, &res);
    assert_true(rc == DEMOD_ERR_NOSYNC || rc >= 0);
    assert_string_equal(demod_strerror(DEMOD_ERR_NOSYNC), "no preamble/frame-type sync found");
    demod_destroy(q);
    demod_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_high_snr_sweep),    cmocka_unit_test(test_frequency_rms),
        cmocka_unit_test(test_fer_moderate_snr),  cmocka_unit_test(test_bit_errors),
        cmocka_unit_test(test_wide_start_window), cmocka_unit_test(test_strong_neighbour),
        cmocka_unit_test(test_carrier_window),    cmocka_unit_test(test_noise_only),
        cmocka_unit_test(test_bad_arguments),     cmocka_unit_test(test_symbols_for_joint),
        cmocka_unit_test(test_weak_carrier_acquisition),
        cmocka_unit_test(test_carrier_list),
        cmocka_unit_test(test_start_prior_edge),
        cmocka_unit_test(test_runner_up_starts),
        cmocka_unit_test(test_weak_start_presence),
        cmocka_unit_test(test_weak_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
