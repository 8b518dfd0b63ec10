/* test_synth: the scenario synthesizer's truth against what it renders and against the spec
 * rules it claims to follow (rev 1.4 §2.2, Table 2-2, §3.13, Table 3-4, §4.9, Tables 4-2/4-3,
 * Annex 8.3), determinism, streaming, Eb/N0 calibration, explicit mode, JSON. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <complex.h>
#include <json-c/json.h>
#include <math.h>

#include "rc.h"
#include "dsptest.h"
#include "synth.h"
#include "ulframe.h"

static synth_config_t small_config(uint64_t seed)
{
    synth_config_t c;
    synth_config_default(&c);
    c.seed = seed;
    c.rate_sps = 200000;
    c.devices = 8;
    c.duration_s = 20;
    c.msg_interval_s = 6;
    return c;
}

static float complex *render_all(synth_t *s, size_t *n_out)
{
    size_t n = (size_t)synth_total_samples(s);
    float complex *x = malloc(n * sizeof *x);
    assert_non_null(x);
    size_t pos = 0;
    long got;
    while ((got = synth_render(s, x + pos, 50000)) > 0)
        pos += (size_t)got;
    assert_int_equal(got, 0);
    assert_int_equal(pos, n);
    *n_out = n;
    return x;
}

/* The truth as written by synth_truth_write (caller frees). */
static char *truth_text(synth_t *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(synth_truth_write(s, f), 0);
    fclose(f);
    assert_true(len > 0);
    return text;
}

/* Reference demodulation of a truth record at its carrier, phase and timing. */
static void reference_demod(const synth_burst_t *b, const float complex *x, uint8_t *bits)
{
    ref_demod(&b->mod, b->start_sample, x, b->nbits, bits);
}

static void test_bad_config(void **state)
{
    (void)state;
    char err[256];
    synth_config_t c = small_config(1);
    c.rc = 2;
    c.baud = 100;
    assert_null(synth_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "BR600"));
    c = small_config(1);
    c.rate_sps = 150000; /* cannot hold 192 kHz */
    assert_null(synth_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "usable macro-channel"));
    c = small_config(1);
    c.ebn0_min_db = 20;
    c.ebn0_max_db = 10;
    assert_null(synth_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "Eb/N0"));
    c = small_config(1);
    c.rc = 9;
    assert_null(synth_create(&c, err, sizeof err));
    c = small_config(1);
    c.freq_error_ppm_max = 25;
    assert_null(synth_create(&c, err, sizeof err));
    c = small_config(1);
    c.duration_s = 0;
    assert_null(synth_create(&c, err, sizeof err));
    c = small_config(1);
    c.p_one_bit = 0.7;
    c.p_keepalive = 0.5;
    assert_null(synth_create(&c, err, sizeof err));
    assert_null(synth_create(NULL, err, sizeof err));
}

/* Rule checks over a larger planned scenario (no rendering). */
static void check_rules(int rc_number, int baud, uint64_t seed)
{
    synth_config_t c = small_config(seed);
    c.rc = rc_number;
    c.baud = baud;
    c.devices = 40;
    c.duration_s = 120;
    c.msg_interval_s = 10;
    c.p_bf = 0.3;
    char err[256];
    synth_t *s = synth_create(&c, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    const rc_params_t *rc = rc_get(rc_number);
    size_t n;
    const synth_burst_t *b = synth_bursts(s, &n);
    assert_true(n > 100);
    const double fc = rc->ul_center_hz;
    const double usable = 96000 - 1.62e-6 * fc; /* Annex 8.3 */
    int kinds[3] = {0}, bf_msgs = 0, one_bit = 0, singles = 0;
    const keystore_t *keys = synth_keys(s);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(b[i].t_start_s >= b[i - 1].t_start_s);
        assert_true(fabs(b[i].freq_hz - fc) <= usable);
        double lim = b[i].baud == 100 ? 20 : 50; /* Table 2-2 */
        assert_true(fabs(b[i].drift_hz_s) <= lim);
        assert_true(fabs(b[i].mod.baud_error_ppm) <= 1000);
        assert_true(fabs(b[i].freq_error_ppm) <= 20);
        assert_true(b[i].mod.lead_symbols + b[i].mod.ramp_symbols <= 2.0);
        assert_true(b[i].mod.tail_symbols + b[i].mod.ramp_symbols <= 2.0);
        assert_true(b[i].baud == 600 || rc->br100_allowed);
        if (baud != SYNTH_BAUD_MIXED)
            assert_int_equal(b[i].baud, baud);
        assert_near(b[i].t_end_s - b[i].t_start_s, b[i].nbits / dbpsk_burst_symbol_rate(&b[i].mod),
                    1e-9);
        assert_true(b[i].t_on_s >= 0 && b[i].t_off_s <= c.duration_s);
        /* The bitstream decodes to the truth fields and authenticates with the key. */
        ul_frame_t f;
        assert_int_equal(ul_frame_decode(b[i].bitstream, b[i].nbits, true, 0, &f), 0);
        assert_int_equal(f.rank, b[i].rank);
        assert_int_equal(f.msg.ep_id, b[i].msg.ep_id);
        assert_int_equal(f.msg.mc, b[i].msg.mc);
        assert_int_equal(f.msg.bf, b[i].msg.bf);
        assert_int_equal(f.msg.kind, b[i].msg.kind);
        assert_int_equal(f.msg.payload_len, b[i].payload_air_len);
        assert_memory_equal(f.msg.payload, b[i].payload_air, b[i].payload_air_len);
        const uint8_t *key = keystore_find(keys, b[i].msg.ep_id);
        assert_non_null(key);
        assert_int_equal(ul_auth_verify(f.container, f.container_len, key), 1);
        if (b[i].msg.kind == UL_KIND_KEEPALIVE) /* §5.1 */
            assert_int_equal(b[i].n_frames, 3);
        if (b[i].msg.kind == UL_KIND_DL_CONFIRMATION) /* §5.2 */
            assert_int_equal(b[i].n_frames, 1);
        if (b[i].rank == 1) {
            kinds[b[i].msg.kind]++;
            bf_msgs += b[i].msg.bf;
            one_bit += b[i].msg.one_bit;
            singles += b[i].n_frames == 1;
        }
        if (b[i].rank != 1 || b[i].n_frames != 3)
            continue;
        /* Find ranks 2 and 3 of this message. */
        const synth_burst_t *r[3] = {&b[i], NULL, NULL};
        for (size_t j = i + 1; j < n; j++)
            if (b[j].message == b[i].message)
                r[b[j].rank - 1] = &b[j];
        assert_non_null(r[1]);
        assert_non_null(r[2]);
        for (int k = 1; k < 3; k++) {
            assert_memory_equal(&r[k]->msg, &b[i].msg, sizeof b[i].msg);
            assert_int_equal(r[k]->baud, b[i].baud); /* §2.3: same rate for a message */
            double gap = r[k]->t_on_s - r[k - 1]->t_off_s;
            double gmin = b[i].msg.bf ? rc->t_ifb_min_s : rc->t_ifu_min_s;
            double gmax = b[i].msg.bf ? rc->t_ifb_max_s : rc->t_ifu_max_s;
            assert_true(gap >= gmin - 1e-9);
            if (gmax > 0)
                assert_true(gap <= gmax + 1e-9);
            assert_true(fabs(r[k]->freq_hz - b[i].freq_hz) > 1.0); /* a different carrier */
        }
        if (b[i].msg.bf) {
            /* Table 4-3: frames 2 and 3 at f1 ± Δf_MF (device error scales it by ≤ 20 ppm). */
            double tol = rc->df_mf_hz * 20e-6 + 1e-6;
            assert_near(r[1]->freq_hz - b[i].freq_hz, rc->df_mf_hz, tol);
            assert_near(b[i].freq_hz - r[2]->freq_hz, rc->df_mf_hz, tol);
        }
    }
    assert_true(kinds[UL_KIND_APP] > 0 && kinds[UL_KIND_KEEPALIVE] > 0 &&
                kinds[UL_KIND_DL_CONFIRMATION] > 0);
    assert_true(bf_msgs > 0 && one_bit > 0 && singles > 0);
    /* MC increments by one per message for each device, in time order. */
    for (size_t i = 0; i < n; i++) {
        if (b[i].rank != 1)
            continue;
        for (size_t j = i + 1; j < n; j++) {
            if (b[j].rank == 1 && b[j].msg.ep_id == b[i].msg.ep_id) {
                assert_int_equal(b[j].msg.mc, (b[i].msg.mc + 1) & UL_MC_MAX);
                break;
            }
        }
    }
    synth_destroy(s);
}

static void test_rules_rc1_mixed(void **state)
{
    (void)state;
    check_rules(1, SYNTH_BAUD_MIXED, 11);
}

static void test_rules_rc2_rc3_rc4(void **state)
{
    (void)state;
    check_rules(2, SYNTH_BAUD_MIXED, 12); /* BR600 only, Δf_MF 25 kHz */
    check_rules(3, 100, 13);              /* no T_IFU max, T_IFB 10 ms */
    check_rules(4, 600, 14);
}

/* Carriers spread over the whole allowed range, not a corner of it (§3.13.3). */
static void test_carrier_spread(void **state)
{
    (void)state;
    synth_config_t c = small_config(5);
    c.devices = 60;
    c.duration_s = 100;
    synth_t *s = synth_create(&c, NULL, 0);
    assert_non_null(s);
    size_t n;
    const synth_burst_t *b = synth_bursts(s, &n);
    int bins[8] = {0};
    double lo = 868.13e6 - 77231, width = 2 * 77231; /* Annex 8.3: 154.462 kHz */
    for (size_t i = 0; i < n; i++) {
        int k = (int)((b[i].freq_hz - lo) / width * 8);
        if (k >= 0 && k < 8)
            bins[k]++;
    }
    for (int k = 0; k < 8; k++)
        assert_true(bins[k] > (int)n / 8 / 3);
    synth_destroy(s);
}

/* Noiseless capture: every burst that no other burst overlaps within 3 kHz comes back
 * bit-exact from the reference demodulator at the truth's carrier and timing. */
static void test_truth_demod(void **state)
{
    (void)state;
    synth_config_t c = small_config(21);
    c.noise = false;
    c.duration_s = 15;
    c.devices = 6;
    synth_t *s = synth_create(&c, NULL, 0);
    assert_non_null(s);
    size_t n, nx;
    const synth_burst_t *b = synth_bursts(s, &n);
    float complex *x = render_all(s, &nx);
    size_t checked = 0;
    uint8_t bits[UL_MAX_FRAME_BYTES];
    for (size_t i = 0; i < n; i++) {
        bool crowded = false;
        for (size_t j = 0; j < n && !crowded; j++)
            crowded = j != i && b[j].t_on_s < b[i].t_off_s && b[i].t_on_s < b[j].t_off_s &&
                      fabs(b[j].freq_hz - b[i].freq_hz) < 3000;
        if (crowded)
            continue;
        reference_demod(&b[i], x, bits);
        assert_memory_equal(bits, b[i].bitstream, b[i].nbits / 8);
        checked++;
    }
    printf("reference demodulation: %zu of %zu bursts checked bit-exact\n", checked, n);
    assert_true(n >= 10);
    assert_true(checked >= n * 3 / 4);
    free(x);
    synth_destroy(s);
}

/* Same seed: same truth and samples; another seed: different. Block size does not matter. */
static void test_determinism_streaming(void **state)
{
    (void)state;
    synth_config_t c = small_config(77);
    c.duration_s = 6;
    c.cw_tones = 1;
    c.fsk_interferers = 1;
    synth_t *a = synth_create(&c, NULL, 0), *b = synth_create(&c, NULL, 0);
    c.seed = 78;
    synth_t *d = synth_create(&c, NULL, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(d);
    char *ta = truth_text(a), *tb = truth_text(b), *td = truth_text(d);
    assert_string_equal(ta, tb);
    assert_true(strcmp(ta, td) != 0);
    free(ta);
    free(tb);
    free(td);

    size_t n = (size_t)synth_total_samples(a);
    float complex *xa = malloc(n * sizeof *xa), *xb = malloc(n * sizeof *xb);
    assert_non_null(xa);
    assert_non_null(xb);
    for (size_t pos = 0; pos < n;)
        pos += (size_t)synth_render(a, xa + pos, 65536);
    size_t blk = 1;
    for (size_t pos = 0; pos < n;) {
        long got = synth_render(b, xb + pos, blk);
        assert_true(got > 0);
        pos += (size_t)got;
        blk = blk * 2 + 999;
        if (blk > 70000)
            blk = 313;
    }
    assert_int_equal(synth_render(b, xb, 10), 0); /* end of capture */
    double maxdiff = 0;
    for (size_t i = 0; i < n; i++)
        maxdiff = fmax(maxdiff, cabsf(xa[i] - xb[i]));
    assert_true(maxdiff < 1e-6);
    /* Rewind gives the same samples again. */
    synth_rewind(a);
    float complex first[1000];
    assert_int_equal(synth_render(a, first, 1000), 1000);
    assert_memory_equal(first, xa, sizeof first);
    free(xa);
    free(xb);
    synth_destroy(a);
    synth_destroy(b);
    synth_destroy(d);
}

/* Eb/N0 as defined in synth.h, measured on the rendered capture: noise power from a stretch
 * without bursts, burst power = mean |x|² over the data symbols minus the noise. */
static void measure_ebn0(int baud, double ebn0_db)
{
    synth_config_t c = small_config(31);
    c.devices = 0;
    c.duration_s = baud == 100 ? 5 : 2;
    synth_t *s = synth_create(&c, NULL, 0);
    assert_non_null(s);
    synth_burst_spec_t spec;
    synth_burst_spec_default(&spec);
    spec.msg.ep_id = 0x01234567;
    spec.msg.mc = 99;
    spec.msg.payload_len = 12;
    memset(spec.msg.payload, 0x5A, 12);
    spec.baud = baud;
    spec.t_start_s = 0.5;
    spec.freq_hz = 868.13e6 + 12345;
    spec.ebn0_db = ebn0_db;
    spec.drift_hz_s = baud == 100 ? 15 : -40;
    assert_int_equal(synth_add_burst(s, &spec), 0);
    size_t nb, nx;
    const synth_burst_t *b = synth_bursts(s, &nb);
    assert_int_equal(nb, 1);
    float complex *x = render_all(s, &nx);
    double fs = c.rate_sps;
    double noise = 0;
    size_t nn = (size_t)(0.4 * fs);
    for (size_t i = 0; i < nn; i++)
        noise += crealf(x[i] * conjf(x[i]));
    noise /= (double)nn;
    assert_near(10 * log10(noise), c.noise_dbfs, 0.05);
    size_t lo = (size_t)ceil(b->t_start_s * fs), hi = (size_t)floor(b->t_end_s * fs);
    double tot = 0;
    for (size_t i = lo; i < hi; i++)
        tot += crealf(x[i] * conjf(x[i]));
    double p = tot / (double)(hi - lo) - noise;
    double rs = dbpsk_burst_symbol_rate(&b->mod);
    double measured = 10 * log10(p / (noise / fs) / rs);
    printf("BR%d asked Eb/N0 %.1f dB, measured %.2f dB\n", baud, ebn0_db, measured);
    assert_near(measured, ebn0_db, 0.5);
    assert_near(b->ebn0_db, ebn0_db, 1e-9);
    assert_near(b->rssi_dbfs, 10 * log10(p), 0.5);
    free(x);
    synth_destroy(s);
}

static void test_ebn0_calibration(void **state)
{
    (void)state;
    measure_ebn0(100, 30);
    measure_ebn0(600, 25);
}

/* Explicit bursts and messages land exactly as asked. */
static void test_explicit(void **state)
{
    (void)state;
    synth_config_t c = small_config(41);
    c.devices = 0;
    c.duration_s = 8;
    c.noise = false;
    synth_t *s = synth_create(&c, NULL, 0);
    assert_non_null(s);
    synth_message_spec_t m;
    memset(&m, 0, sizeof m);
    m.msg.ep_id = 0xFEDCBA98;
    m.msg.mc = 0x672;
    m.msg.bf = true;
    m.msg.payload_len = 4;
    memcpy(m.msg.payload, "\x01\x02\x03\x04", 4);
    memset(m.key, 0x11, sizeof m.key);
    m.n_frames = 3;
    m.baud = 600;
    m.t_start_s = 0.2;
    m.freq_hz = 868.10e6;
    m.ebn0_db = 20;
    m.drift_hz_s = 30;
    assert_int_equal(synth_add_message(s, &m), 0);

    synth_burst_spec_t spec;
    synth_burst_spec_default(&spec);
    spec.msg.ep_id = 0x0000ABCD;
    spec.msg.one_bit = true;
    spec.msg.payload_bit = 1;
    spec.rank = 2;
    spec.baud = 100;
    spec.t_start_s = 4.25;
    spec.freq_hz = 868.20e6;
    spec.ebn0_db = 15;
    spec.phase_rad = 1.0;
    spec.lead_symbols = 0;
    spec.tail_symbols = 2;
    spec.ramp_symbols = 0;
    assert_int_equal(synth_add_burst(s, &spec), 0);
    spec.t_start_s = 7.5; /* runs past the 8 s capture */
    assert_int_equal(synth_add_burst(s, &spec), SYNTH_ERR_RANGE);
    spec.t_start_s = 4.25;
    spec.freq_hz = 868.5e6; /* outside the captured band */
    assert_int_equal(synth_add_burst(s, &spec), SYNTH_ERR_RANGE);

    size_t n, nx;
    const synth_burst_t *b = synth_bursts(s, &n);
    assert_int_equal(n, 4);
    assert_int_equal(synth_message_count(s), 2);
    assert_near(b[0].t_start_s, 0.2, 1e-12);
    assert_near(b[0].freq_hz, 868.10e6, 1e-6);
    assert_near(b[1].freq_hz - b[0].freq_hz, 6000, 1e-6); /* Table 4-3, RC1 */
    assert_near(b[0].freq_hz - b[2].freq_hz, 6000, 1e-6);
    for (int k = 1; k < 3; k++) {
        double gap = b[k].t_on_s - b[k - 1].t_off_s;
        assert_true(gap >= 0.5 && gap <= 0.525); /* Table 4-2 T_IFB, RC1 */
        assert_int_equal(b[k].rank, k + 1);
        assert_near(b[k].drift_hz_s, 30, 1e-12);
    }
    assert_near(b[3].t_start_s, 4.25, 1e-12);
    assert_near(b[3].t_on_s, 4.25, 1e-12); /* no ramp, no lead */
    assert_int_equal(b[3].rank, 2);
    assert_true(b[3].msg.one_bit);
    assert_int_equal(b[3].ft, 0x6E0);

    float complex *x = render_all(s, &nx);
    uint8_t bits[UL_MAX_FRAME_BYTES];
    for (size_t i = 0; i < n; i++) {
        reference_demod(&b[i], x, bits);
        assert_memory_equal(bits, b[i].bitstream, b[i].nbits / 8);
    }
    assert_int_equal(synth_add_burst(s, &spec), SYNTH_ERR_STATE);
    free(x);
    synth_destroy(s);
}

/* Interferers and deliberate collisions are rendered and flagged. */
static void test_interferers_collisions(void **state)
{
    (void)state;
    synth_config_t c = small_config(51);
    c.duration_s = 10;
    c.devices = 6;
    c.msg_interval_s = 3;
    c.cw_tones = 2;
    c.fsk_interferers = 1;
    c.collisions = 3;
    c.noise = false;
    synth_t *s = synth_create(&c, NULL, 0);
    assert_non_null(s);
    size_t n, ni, nx;
    const synth_burst_t *b = synth_bursts(s, &n);
    const synth_interferer_t *it = synth_interferers(s, &ni);
    int collided = 0, cw = 0, fsk = 0;
    for (size_t i = 0; i < n; i++)
        collided += b[i].collided;
    assert_true(collided >= 3 + 1);
    for (size_t i = 0; i < ni; i++) {
        cw += it[i].kind == SYNTH_INTERFERER_CW;
        fsk += it[i].kind == SYNTH_INTERFERER_FSK;
    }
    assert_int_equal(cw, 2);
    assert_true(fsk >= 5);
    float complex *x = render_all(s, &nx);
    /* A CW tone alone at a quiet moment: correlate against its frequency. */
    double fs = c.rate_sps;
    for (size_t i = 0; i < ni; i++) {
        if (it[i].kind != SYNTH_INTERFERER_CW)
            continue;
        size_t m0 = (size_t)((it[i].t_start_s + 0.1) * fs);
        double f = it[i].freq_hz - 868.13e6;
        double complex acc = 0;
        for (size_t m = m0; m < m0 + 20000; m++)
            acc += x[m] * cexp(-2 * M_PI * I * f * (double)m / fs);
        double p = pow(cabs(acc) / 20000, 2);
        double expect = pow(10, it[i].power_db / 10) * synth_n0(s) * 100;
        assert_near(10 * log10(p), 10 * log10(expect), 1.0); /* other signals add a little */
    }
    free(x);
    synth_destroy(s);
}

/* Station view: the same seed with station options gives the same frames (IDs, MCs, ranks,
 * bitstreams, message numbers, flags), every burst, interferer and B-procedure moved by the
 * station's delay, carrier offset and Eb/N0 offset, the capture longer by the delay; without
 * noise the station's samples are the reference's delayed (by whole samples here), scaled
 * and frequency-shifted (equal magnitude); a different noise seed changes only the noise;
 * zero options give the reference byte for byte; offsets that leave the band are refused. */
static void test_station_view(void **state)
{
    (void)state;
    synth_config_t c = small_config(61);
    c.duration_s = 40;
    c.cw_tones = 1;
    c.fsk_interferers = 1;
    c.bproc_confirm = true;
    c.p_bf = 0.5;
    c.noise = false;
    synth_t *ref = synth_create(&c, NULL, 0);
    synth_config_t sc = c;
    sc.station_ebn0_db = -7.5;
    sc.station_freq_hz = 2500;
    sc.station_delay_s = 0.5; /* 100000 samples at 200 kS/s */
    sc.station_noise_seed = 99;
    char err[256];
    synth_t *st = synth_create(&sc, err, sizeof err);
    assert_non_null(ref);
    assert_non_null(st);
    size_t n0, n1, i0, i1, p0, p1;
    const synth_burst_t *a = synth_bursts(ref, &n0), *b = synth_bursts(st, &n1);
    assert_true(n0 >= 20);
    assert_int_equal(n0, n1);
    const double fs = c.rate_sps, D = (double)llround(sc.station_delay_s * fs);
    assert_int_equal(synth_total_samples(st), synth_total_samples(ref) + (uint64_t)D);
    for (size_t i = 0; i < n0; i++) {
        assert_int_equal(a[i].msg.ep_id, b[i].msg.ep_id);
        assert_int_equal(a[i].msg.mc, b[i].msg.mc);
        assert_int_equal(a[i].rank, b[i].rank);
        assert_int_equal(a[i].message, b[i].message);
        assert_int_equal(a[i].nbits, b[i].nbits);
        assert_memory_equal(a[i].bitstream, b[i].bitstream, (a[i].nbits + 7) / 8);
        assert_int_equal(a[i].collided, b[i].collided);
        assert_int_equal(a[i].interfered, b[i].interfered);
        assert_near(b[i].t_start_s - a[i].t_start_s, 0.5, 1e-9);
        assert_near(b[i].t_off_s - a[i].t_off_s, 0.5, 1e-9);
        assert_near(b[i].start_sample - a[i].start_sample, D, 1e-6);
        assert_near(b[i].freq_hz - a[i].freq_hz, 2500, 1e-6);
        assert_near(b[i].ebn0_db - a[i].ebn0_db, -7.5, 1e-9);
        assert_near(b[i].rssi_dbfs - a[i].rssi_dbfs, -7.5, 1e-9);
    }
    const synth_interferer_t *ia = synth_interferers(ref, &i0), *ib = synth_interferers(st, &i1);
    assert_true(i0 >= 2);
    assert_int_equal(i0, i1);
    for (size_t k = 0; k < i0; k++) {
        assert_near(ib[k].t_start_s - ia[k].t_start_s, 0.5, 1e-9);
        assert_near(ib[k].freq_hz - ia[k].freq_hz, 2500, 1e-6);
        assert_near(ib[k].power_db - ia[k].power_db, -7.5, 1e-9);
    }
    const synth_bproc_t *ba = synth_bprocs(ref, &p0), *bb = synth_bprocs(st, &p1);
    assert_true(p0 >= 1);
    assert_int_equal(p0, p1);
    for (size_t k = 0; k < p0; k++) {
        assert_int_equal(ba[k].message, bb[k].message);
        assert_int_equal(ba[k].mc, bb[k].mc);
        assert_int_equal(ba[k].confirmed, bb[k].confirmed);
        assert_near(bb[k].window_start_s - ba[k].window_start_s, 0.5, 1e-9);
        assert_near(bb[k].dl_t_start_s - ba[k].dl_t_start_s, 0.5, 1e-9);
        if (ba[k].confirmed)
            assert_near(bb[k].conf_t_start_s - ba[k].conf_t_start_s, 0.5, 1e-9);
        assert_near(bb[k].dl_freq_hz - ba[k].dl_freq_hz, 2500, 1e-6);
    }
    /* The samples where one signal alone is on: station[m + D] = gain x reference[m] x a
     * rotation by the carrier offset (each signal keeps its own random phase, so where two
     * overlap only the truth is compared). */
    size_t na, nb;
    float complex *xa = render_all(ref, &na), *xb = render_all(st, &nb);
    assert_int_equal(nb, na + (size_t)D);
    unsigned char *on = calloc(na, 1);
    assert_non_null(on);
    for (size_t i = 0; i < n0 + i0; i++) {
        double t0 = i < n0 ? a[i].t_on_s : ia[i - n0].t_start_s;
        double t1 = i < n0 ? a[i].t_off_s : ia[i - n0].t_end_s;
        for (double m = floor(t0 * fs) - 1; m <= ceil(t1 * fs) + 1; m++)
            if (m >= 0 && m < (double)na && on[(size_t)m] < 2)
                on[(size_t)m]++;
    }
    double gain = pow(10.0, -7.5 / 20.0), peak = 0, worst = 0;
    double complex turn = 0;
    size_t alone = 0;
    for (size_t m = 0; m + 1 < na; m++) {
        if (on[m] != 1 || on[m + 1] != 1)
            continue;
        alone++;
        peak = fmax(peak, cabsf(xa[m]));
        worst = fmax(worst, fabs(cabsf(xb[m + (size_t)D]) - gain * cabsf(xa[m])));
        double complex q0 = xb[m + (size_t)D] * conjf(xa[m]);
        double complex q1 = xb[m + 1 + (size_t)D] * conjf(xa[m + 1]);
        turn += q1 * conj(q0);
    }
    for (size_t m = 0; m < (size_t)D; m++)
        assert_true(cabsf(xb[m]) == 0.0f); /* nothing before the delay */
    assert_true(alone > na / 10);
    assert_true(peak > 0.01);
    assert_true(worst < 1e-4 * peak);
    assert_near(carg(turn) * fs / (2 * M_PI), 2500, 1.0);
    free(on);
    free(xa);
    free(xb);
    synth_destroy(ref);
    synth_destroy(st);

    /* Noise: another seed changes the samples, not the truth; zero options = reference. */
    c = small_config(62);
    c.duration_s = 5;
    synth_t *r2 = synth_create(&c, NULL, 0);
    sc = c;
    sc.station_noise_seed = c.seed; /* the scene's own noise: identical */
    synth_t *same = synth_create(&sc, NULL, 0);
    sc.station_noise_seed = 1234;
    synth_t *other = synth_create(&sc, NULL, 0);
    assert_non_null(r2);
    assert_non_null(same);
    assert_non_null(other);
    float complex *x0 = render_all(r2, &na), *x1 = render_all(same, &nb), *x2;
    size_t nc;
    x2 = render_all(other, &nc);
    assert_int_equal(na, nb);
    assert_int_equal(na, nc);
    assert_memory_equal(x0, x1, na * sizeof *x0);
    size_t differ = 0;
    for (size_t m = 0; m < na; m++)
        differ += x0[m] != x2[m];
    assert_true(differ > na * 9 / 10);
    char *t0 = truth_text(r2), *t2 = truth_text(other);
    assert_string_equal(t0, t2);
    free(t0);
    free(t2);
    free(x0);
    free(x1);
    free(x2);
    synth_destroy(r2);
    synth_destroy(same);
    synth_destroy(other);

    /* Out of range: refused with a message naming the offset. */
    c = small_config(63);
    sc = c;
    sc.station_freq_hz = 95000; /* 200 kS/s: the band edge is 100 kHz - 2 x baud */
    err[0] = '\0';
    synth_t *bad = synth_create(&sc, err, sizeof err);
    assert_null(bad);
    assert_non_null(strstr(err, "station carrier offset 95000 Hz"));
    sc = c;
    sc.station_delay_s = -1;
    assert_null(synth_create(&sc, err, sizeof err));
    assert_non_null(strstr(err, "station delay"));
    sc = c;
    sc.station_ebn0_db = 61;
    assert_null(synth_create(&sc, err, sizeof err));
    assert_non_null(strstr(err, "station Eb/N0"));
}

/* JSON lines: one object per burst with the project's field names and values. */
/* bproc_confirm: every B-procedure is followed by the device's confirmation (dl_confirmation,
 * single frame, MC + 1, BF 0) T_CONF (Table 4-1) after the downlink assumed dl_offset_s into
 * its window; the records match the bursts; no other confirmations; the device's next
 * message comes after the confirmation; the truth has one "bproc" line per B-procedure. */
static void test_bproc_confirm(void **state)
{
    (void)state;
    for (int rcn = 1; rcn <= 3; rcn += 2) {
        const rc_params_t *rc = rc_get(rcn);
        synth_config_t c = small_config(40 + (uint64_t)rcn);
        c.rc = rcn;
        c.devices = 12;
        c.duration_s = 120;
        c.msg_interval_s = 5;
        c.p_bf = 0.6;
        c.p_dl_confirmation = 0.5; /* ignored in this scenario */
        c.bproc_confirm = true;
        c.dl_offset_s = rcn == 1 ? 0 : 2.5;
        char err[256];
        synth_t *s = synth_create(&c, err, sizeof err);
        if (!s)
            fail_msg("%s", err);
        double offset = rcn == 1 ? 1.0 : 2.5;
        assert_true(synth_config(s)->p_dl_confirmation == 0);
        assert_true(synth_config(s)->dl_offset_s == offset);
        size_t n, nb;
        const synth_burst_t *b = synth_bursts(s, &n);
        const synth_bproc_t *bp = synth_bprocs(s, &nb);
        size_t confirmed = 0, confirmations = 0, bf_messages = 0;
        for (size_t i = 0; i < n; i++) {
            if (b[i].msg.kind == UL_KIND_DL_CONFIRMATION)
                confirmations++;
            if (b[i].msg.bf && b[i].rank == 1)
                bf_messages++;
        }
        assert_int_equal(nb, bf_messages);
        for (size_t k = 0; k < nb; k++) {
            const synth_bproc_t *p = &bp[k];
            const synth_burst_t *f1 = NULL, *conf = NULL, *next = NULL;
            for (size_t i = 0; i < n; i++) {
                if (b[i].message == p->message && b[i].rank == 1)
                    f1 = &b[i];
                if (p->confirmed && b[i].message == p->conf_message)
                    conf = &b[i];
            }
            assert_non_null(f1);
            assert_true(f1->msg.bf && f1->msg.ep_id == p->ep_id && f1->msg.mc == p->mc);
            assert_near(p->ul_t_end_s, f1->t_end_s, 1e-12);
            assert_near(p->ul_freq_hz, f1->freq_hz, 1e-9);
            assert_near(p->window_start_s, f1->t_end_s + rc->t_w_s, 1e-9);
            assert_near(p->window_end_s, f1->t_end_s + rc->t_w_s + rc->t_rx_s, 1e-9);
            assert_near(p->dl_freq_hz, f1->freq_hz + rc->dl_gap_hz, 1e-6);
            assert_near(p->dl_t_start_s, p->window_start_s + offset, 1e-9);
            assert_near(p->dl_t_end_s, p->dl_t_start_s + 224.0 / 600, 1e-9);
            if (!p->confirmed)
                continue;
            confirmed++;
            assert_non_null(conf);
            assert_int_equal(conf->msg.kind, UL_KIND_DL_CONFIRMATION);
            assert_int_equal(conf->n_frames, 1);
            assert_int_equal(conf->rank, 1);
            assert_false(conf->msg.bf);
            assert_int_equal(conf->msg.ep_id, p->ep_id);
            assert_int_equal(conf->msg.mc, (p->mc + 1) & 0xFFF);
            assert_int_equal(p->conf_mc, conf->msg.mc);
            assert_true(p->t_conf_s >= rc->t_conf_min_s && p->t_conf_s <= rc->t_conf_max_s);
            /* the transmission (ramp-up) starts T_CONF after the DL's end */
            assert_near(conf->t_on_s, p->dl_t_end_s + p->t_conf_s, 1.0 / c.rate_sps);
            assert_near(p->conf_t_start_s, conf->t_start_s, 1e-12);
            assert_int_equal(p->control.vdd_idle_mv, conf->msg.control.vdd_idle_mv);
            assert_int_equal(p->control.rssi_dbm, conf->msg.control.rssi_dbm);
            /* the device's next message starts after the confirmation */
            for (size_t i = 0; i < n; i++)
                if (b[i].msg.ep_id == p->ep_id && b[i].t_on_s > f1->t_on_s && &b[i] != conf &&
                    b[i].message != p->message && (!next || b[i].t_on_s < next->t_on_s))
                    next = &b[i];
            if (next)
                assert_true(next->t_on_s >= conf->t_off_s + 0.010);
        }
        print_message("RC%d: %zu B-procedures, %zu confirmed in the capture\n", rcn, nb, confirmed);
        assert_true(confirmed >= 5);
        assert_int_equal(confirmations, confirmed);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        assert_int_equal(synth_truth_write(s, f), 0);
        fclose(f);
        size_t lines = 0;
        for (const char *q = text; (q = strstr(q, "\"type\":\"bproc\"")) != NULL; q++)
            lines++;
        assert_int_equal(lines, nb);
        assert_non_null(strstr(text, "\"confirmed\":true,\"conf_message\""));
        free(text);
        synth_destroy(s);
    }
    /* The assumed DL must fit T_RX. */
    synth_config_t c = small_config(1);
    c.bproc_confirm = true;
    c.dl_offset_s = 24.8;
    char err[256];
    assert_null(synth_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "downlink offset"));
}

static void test_json(void **state)
{
    (void)state;
    synth_config_t c = small_config(61);
    c.cw_tones = 1;
    synth_t *s = synth_create(&c, NULL, 0);
    assert_non_null(s);
    char *text = NULL;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(synth_truth_write(s, f), 0);
    fclose(f);
    size_t n;
    const synth_burst_t *b = synth_bursts(s, &n);
    size_t line = 0, interferers = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_object *o = json_tokener_parse(l);
        assert_non_null(o);
        json_object *v;
        assert_true(json_object_object_get_ex(o, "type", &v));
        if (strcmp(json_object_get_string(v), "interferer") == 0) {
            interferers++;
            json_object_put(o);
            continue;
        }
        assert_true(line < n);
        const synth_burst_t *x = &b[line++];
        char hex[16];
        assert_true(json_object_object_get_ex(o, "ep_id", &v));
        snprintf(hex, sizeof hex, "%08X", x->msg.ep_id);
        assert_string_equal(json_object_get_string(v), hex);
        assert_true(json_object_object_get_ex(o, "t_start_s", &v));
        assert_near(json_object_get_double(v), x->t_start_s, 1e-6);
        assert_true(json_object_object_get_ex(o, "freq_hz", &v));
        assert_near(json_object_get_double(v), x->freq_hz, 1e-3);
        assert_true(json_object_object_get_ex(o, "mc", &v));
        assert_int_equal(json_object_get_int(v), x->msg.mc);
        assert_true(json_object_object_get_ex(o, "bitstream", &v));
        assert_int_equal(strlen(json_object_get_string(v)), x->nbits / 4);
        assert_true(strncmp(json_object_get_string(v), "AAAA", 4) == 0);
        assert_true(json_object_object_get_ex(o, "kind", &v));
        assert_string_equal(json_object_get_string(v), ul_kind_name(x->msg.kind));
        const char *keys[] = {"t_end_s", "drift_hz_s",  "ebn0_db", "baud",     "rank",
                              "payload", "payload_bit", "bf",      "collided", "interfered"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            assert_true(json_object_object_get_ex(o, keys[k], NULL));
        json_object_put(o);
    }
    assert_int_equal(line, n);
    assert_int_equal(interferers, 1);
    char buf[2048];
    assert_true(synth_burst_json(&b[0], buf, sizeof buf) > 0);
    assert_int_equal(synth_burst_json(&b[0], buf, 10), -1);
    free(text);
    synth_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_rules_rc1_mixed),
        cmocka_unit_test(test_rules_rc2_rc3_rc4),
        cmocka_unit_test(test_carrier_spread),
        cmocka_unit_test(test_truth_demod),
        cmocka_unit_test(test_determinism_streaming),
        cmocka_unit_test(test_ebn0_calibration),
        cmocka_unit_test(test_explicit),
        cmocka_unit_test(test_interferers_collisions),
        cmocka_unit_test(test_bproc_confirm),
        cmocka_unit_test(test_station_view),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
