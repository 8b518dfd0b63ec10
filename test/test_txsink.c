/* test_txsink: downlink transmit sink (file sink IQ + sidecar, GFSK round trip through the
 * DL receiver, spectrum, queue, SoapySDR refusals, scheduler integration). Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <complex.h>
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fftw3.h>
#include <json-c/json.h>

#include "dldemod.h"
#include "dlframe.h"
#include "dlsched.h"
#include "hexutil.h"
#include "iqfile.h"
#include "keys.h"
#include "monarch.h"
#include "prng.h"
#include "rc.h"
#include "txsink.h"

#include "monarchtest.h"
#include "testutil.h"

#define EP_A 0xFEDCBA98u
#define MC_A 0x672
#define CENTER_HZ 869.525e6
static const char *const KEY_A = "0123456789ABCDEF0123456789ABCDEF";
/* Spec Annex C 8.2 (test/vectors/frames.json). */
static const char *const ANNEX_C_DL_BITSTREAM =
    "AAAAAAAAAAAAAAAAAAAAAAB227C6053038C64BF92E718AAC45063E00";

static char tmpdir[PATH_MAX];
static uint8_t key_a[16];

/* ---- result collector ------------------------------------------------------------------- */

#define MAX_RES 64
static struct {
    pthread_mutex_t lock;
    txsink_result_t res[MAX_RES];
    int n;
} got = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void on_result(const txsink_result_t *r, void *user)
{
    (void)user;
    pthread_mutex_lock(&got.lock);
    if (got.n < MAX_RES)
        got.res[got.n++] = *r;
    pthread_mutex_unlock(&got.lock);
}

static int setup(void **state)
{
    (void)state;
    if (test_tmpdir_create(tmpdir, sizeof tmpdir, "test_txsink") != 0)
        return -1;
    hex_to_bytes(KEY_A, key_a, 16);
    got.n = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return test_tmpdir_remove(tmpdir);
}

static txsink_t *file_sink(double rate_sps, size_t queue_len)
{
    txsink_config_t c;
    memset(&c, 0, sizeof c);
    c.kind = TXSINK_FILE;
    c.dir = tmpdir;
    c.rate_sps = rate_sps;
    c.center_freq_hz = CENTER_HZ;
    c.queue_len = queue_len;
    c.on_result = on_result;
    char err[256] = "";
    txsink_t *s = txsink_create(&c, err, sizeof err);
    if (!s)
        fail_msg("txsink_create: %s", err);
    return s;
}

/* The Annex C downlink (or another payload/MC) at carrier freq_hz. */
static txsink_burst_t burst(uint32_t id, uint16_t mc, const char *payload_hex, double freq_hz,
                            double t_start_s)
{
    txsink_burst_t b;
    memset(&b, 0, sizeof b);
    b.id = id;
    b.ep_id = EP_A;
    b.mc = mc;
    assert_int_equal(hex_to_bytes(payload_hex, b.payload, 8), 8);
    assert_int_equal(dl_frame_encode(EP_A, mc, b.payload, key_a, b.phy, b.frame), 0);
    assert_int_equal(dl_auth_compute(EP_A, mc, b.payload, key_a, b.dl_auth), 0);
    b.freq_hz = b.tx_freq_hz = freq_hz;
    b.t_start_s = t_start_s;
    return b;
}

static json_object *read_json(const char *path)
{
    json_object *o = json_object_from_file(path);
    if (!o)
        fail_msg("cannot parse %s", path);
    return o;
}

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("sidecar lacks %s", key);
    return json_object_get_string(v);
}

static double jnum(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("sidecar lacks %s", key);
    return json_object_get_double(v);
}

/* Reads a whole IQ file written by the sink (rate and centre from its name tokens). */
static float complex *read_iq(const char *path, size_t *n, double *rate, double *center)
{
    char err[256];
    iqfile_t *f = iqfile_open_read(path, NULL, err, sizeof err);
    if (!f)
        fail_msg("%s", err);
    assert_int_equal(iqfile_format(f), IQ_FORMAT_CF32);
    *rate = iqfile_rate(f);
    *center = iqfile_center_freq(f);
    int64_t len = iqfile_length(f);
    assert_true(len > 0);
    float complex *x = malloc((size_t)len * sizeof *x);
    assert_non_null(x);
    assert_int_equal(iqfile_read(f, x, (size_t)len), len);
    iqfile_close(f);
    *n = (size_t)len;
    return x;
}

/* Deterministic complex Gaussian noise of standard deviation sigma per component
 * (prng.h; one stream for the whole test program, as before). */
static void add_noise(float complex *x, size_t n, double sigma)
{
    static prng_t st;
    static bool seeded;
    if (!seeded) {
        prng_seed(&st, 0x9E3779B97F4A7C15ull, 0);
        seeded = true;
    }
    for (size_t i = 0; i < n; i++) {
        double a, b;
        prng_normal2(&st, &a, &b);
        x[i] += (float)(sigma * a) + I * (float)(sigma * b);
    }
}

/* Demodulates the file's burst with the project's DL receiver and checks it. Returns the
 * measured carrier error, Hz. */
static double check_roundtrip(const txsink_result_t *r, uint16_t mc, const char *payload_hex,
                              double want_offset_hz)
{
    char jpath[sizeof r->path + 8];
    snprintf(jpath, sizeof jpath, "%s.json", r->path);
    json_object *side = read_json(jpath);
    size_t n;
    double rate, center;
    float complex *x = read_iq(r->path, &n, &rate, &center);
    assert_near(rate, jnum(side, "rate"), 1e-6);
    assert_near(center, jnum(side, "freq_hz"), 1e-3);
    assert_int_equal((int64_t)n, (int64_t)jnum(side, "n_samples"));

    /* As a receiver sees it: 0.1 s of noise either side, Eb/N0 30 dB. */
    size_t pad = (size_t)(0.1 * rate), m = n + 2 * pad;
    float complex *y = calloc(m, sizeof *y);
    assert_non_null(y);
    memcpy(y + pad, x, n * sizeof *x);
    double eb = 0.7 * 0.7 / 600.0, n0 = eb / pow(10.0, 30.0 / 10.0);
    add_noise(y, m, sqrt(n0 * rate / 2.0));
    dldemod_config_t dc = {.rate_sps = rate, .max_block_samples = m};
    dldemod_t *dm = dldemod_create(&dc);
    assert_non_null(dm);
    dldemod_burst_t bursts[4];
    int nb = dldemod_process(dm, y, m, bursts, 4);
    assert_int_equal(nb, 1);
    /* the preamble starts after the 0.5-symbol ramp */
    assert_near(bursts[0].sample_idx, pad + jnum(side, "data_offset_samples"), rate / 600 * 0.1);
    free(y);
    dl_decoded_t d;
    assert_int_equal(dl_frame_decode(EP_A, mc, key_a, bursts[0].phy, &d), 0);
    assert_true(d.crc_ok);
    assert_int_equal(d.auth_status, 1);
    assert_int_equal(d.corrected_bits, 0);
    uint8_t pl[8];
    hex_to_bytes(payload_hex, pl, 8);
    assert_memory_equal(d.payload, pl, 8);
    double err_hz = bursts[0].freq_hz - want_offset_hz;
    dldemod_destroy(dm);
    free(x);
    json_object_put(side);
    return err_hz;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_file_sink_writes_iq_and_sidecar(void **state)
{
    (void)state;
    txsink_t *s = file_sink(0, 0); /* default 240 kS/s */
    double off = -37123.4;
    txsink_burst_t b = burst(7, MC_A, "3031323334353637", CENTER_HZ + off, 24.200833);
    assert_int_equal(txsink_submit(s, &b), 0);
    assert_int_equal(txsink_drain(s, 10000), 0);
    assert_int_equal(got.n, 1);
    const txsink_result_t *r = &got.res[0];
    assert_int_equal(r->status, 0);
    assert_int_equal(r->id, 7);
    assert_non_null(strstr(r->path, "/dl_FEDCBA98_1650_t24200833us_869.525000M_240k.cf32"));
    assert_int_equal(access(r->path, R_OK), 0);

    char jpath[sizeof r->path + 8];
    snprintf(jpath, sizeof jpath, "%s.json", r->path);
    json_object *o = read_json(jpath);
    assert_string_equal(jstr(o, "type"), "downlink_iq");
    assert_string_equal(jstr(o, "format"), "cf32");
    assert_near(jnum(o, "rate"), 240000, 0);
    assert_near(jnum(o, "freq_hz"), CENTER_HZ, 0);
    assert_near(jnum(o, "offset_hz"), off, 0.05);
    assert_near(jnum(o, "dl_freq_hz"), CENTER_HZ + off, 0.05);
    assert_near(jnum(o, "t_start_s"), 24.200833, 1e-9);
    /* 8 symbols of silence, then the 0.5-symbol ramp, then the first bit */
    assert_near(jnum(o, "t_first_sample_s"), 24.200833 - 3400 / 240000.0, 1e-6);
    assert_int_equal((int)jnum(o, "data_offset_samples"), 3400);
    assert_int_equal((int)jnum(o, "n_samples"), (8 + 224 + 1 + 8) * 400);
    assert_string_equal(jstr(o, "ep_id"), "FEDCBA98");
    assert_int_equal((int)jnum(o, "mc"), 1650);
    assert_string_equal(jstr(o, "payload"), "3031323334353637");
    assert_string_equal(jstr(o, "dl_auth"), "852D");
    assert_string_equal(jstr(o, "bitstream"), ANNEX_C_DL_BITSTREAM);
    assert_string_equal(jstr(o, "dl_phy_content"), "C6053038C64BF92E718AAC45063E00");
    json_object_put(o);
    /* no temporary file left behind */
    DIR *dir = opendir(tmpdir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        assert_null(strstr(e->d_name, ".tmp"));
    }
    closedir(dir);
    assert_int_equal(files, 2);

    {
        size_t n;
        double rate, center;
        float complex *x = read_iq(r->path, &n, &rate, &center);
        dldemod_config_t dc = {.rate_sps = rate, .max_block_samples = n};
        dldemod_t *dm = dldemod_create(&dc);
        dldemod_burst_t bb[2];
        assert_int_equal(dldemod_process(dm, x, n, bb, 2), 1);
        assert_near(bb[0].sample_idx, 3400, 40);
        dl_decoded_t d;
        assert_int_equal(dl_frame_decode(EP_A, MC_A, key_a, bb[0].phy, &d), 0);
        assert_int_equal(d.auth_status, 1);
        dldemod_destroy(dm);
        free(x);
    }
    double err_hz = check_roundtrip(r, MC_A, "3031323334353637", off);
    printf("round trip carrier error: %.2f Hz\n", err_hz);
    assert_true(fabs(err_hz) < 20.0); /* ±150 Hz required (§4.9.2) */
    txsink_stats_t st;
    txsink_get_stats(s, &st);
    assert_int_equal(st.submitted, 1);
    assert_int_equal(st.sent, 1);
    txsink_destroy(s);
}

/* Several carriers across the band and an odd sample rate (resampled modulator path). */
static void test_file_sink_offsets_roundtrip(void **state)
{
    (void)state;
    const double rates[] = {240000.0, 250000.0};
    for (size_t k = 0; k < 2; k++) {
        got.n = 0;
        txsink_t *s = file_sink(rates[k], 0);
        const double offs[] = {-110000.0, -6000.5, 0.0, 95999.9};
        char pl[4][17] = {"0000000000000000", "FFFFFFFFFFFFFFFF", "0123456789ABCDEF",
                          "DEADBEEF02468ACE"};
        for (int i = 0; i < 4; i++) {
            txsink_burst_t b = burst((uint32_t)i, (uint16_t)(100 + i), pl[i], CENTER_HZ + offs[i],
                                     30.0 + i);
            assert_int_equal(txsink_submit(s, &b), 0);
        }
        assert_int_equal(txsink_drain(s, 20000), 0);
        assert_int_equal(got.n, 4);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(got.res[i].status, 0);
            assert_int_equal(got.res[i].id, i); /* in submission order */
            double e = check_roundtrip(&got.res[i], (uint16_t)(100 + i), pl[i], offs[i]);
            printf("rate %.0f offset %.1f Hz: carrier error %.2f Hz\n", rates[k], offs[i], e);
            assert_true(fabs(e) < 20.0);
        }
        txsink_destroy(s);
    }
}

/* Spectrum (FFTW). For a constant-envelope signal the power spectrum's centroid is the
 * mean instantaneous frequency: carrier + 800 Hz × (ones - zeros) / 224 for this frame
 * (bit 1 = +800 Hz, §2.5.2), which checks the carrier offset and the deviation's sign
 * without trusting the modulator. Nothing at the mirror frequency (an I/Q or sign error
 * would put the burst there) and nothing far away. */
static void test_file_sink_spectrum(void **state)
{
    (void)state;
    txsink_t *s = file_sink(0, 0);
    double off = 52300.0;
    txsink_burst_t b = burst(1, MC_A, "3031323334353637", CENTER_HZ + off, 1.0);
    assert_int_equal(txsink_submit(s, &b), 0);
    assert_int_equal(txsink_drain(s, 10000), 0);
    int ones = 0;
    for (int i = 0; i < DL_FRAME_BITS; i++)
        ones += (b.frame[i / 8] >> (7 - i % 8)) & 1;
    double want = off + 800.0 * (2 * ones - DL_FRAME_BITS) / DL_FRAME_BITS;
    double flipped = off - 800.0 * (2 * ones - DL_FRAME_BITS) / DL_FRAME_BITS;
    size_t n;
    double rate, center;
    float complex *x = read_iq(got.res[0].path, &n, &rate, &center);
    size_t nfft = 1u << 18; /* 0.92 Hz bins at 240 kS/s */
    fftwf_complex *buf = fftwf_malloc(nfft * sizeof *buf);
    assert_non_null(buf);
    fftwf_plan p = fftwf_plan_dft_1d((int)nfft, buf, buf, FFTW_FORWARD, FFTW_ESTIMATE);
    memset(buf, 0, nfft * sizeof *buf);
    memcpy(buf, x, n * sizeof *x); /* fftwf_complex is float complex after <complex.h> */
    fftwf_execute(p);
    double df = rate / nfft, total = 0, near = 0, mirror = 0, far = 0, fsum = 0, f2sum = 0;
    for (size_t k = 0; k < nfft; k++) {
        double pw = (double)crealf(buf[k] * conjf(buf[k]));
        double f = (k < nfft / 2 ? (double)k : (double)k - nfft) * df;
        total += pw;
        if (fabs(f - off) <= 3000) {
            near += pw;
            fsum += pw * (f - off);
            f2sum += pw * (f - off) * (f - off);
        }
        if (fabs(f + off) <= 3000)
            mirror += pw;
        if (fabs(f - off) > 20000)
            far += pw;
    }
    double centroid = off + fsum / near;
    double rms = sqrt(f2sum / near - (fsum / near) * (fsum / near));
    printf("bits: %d ones of %d; spectrum centroid %.2f Hz from the carrier (predicted "
           "%.2f, deviation sign flipped %.2f); rms spread %.1f Hz; within ±3 kHz %.5f %%; "
           "mirror %.1f dB; beyond 20 kHz %.1f dB\n",
           ones, DL_FRAME_BITS, centroid - off, want - off, flipped - off, rms,
           100 * near / total, 10 * log10(mirror / total + 1e-30), 10 * log10(far / total + 1e-30));
    assert_true(fabs(centroid - want) < 3.0);
    assert_true(fabs(want - flipped) > 10.0); /* the frame tells the two apart */
    assert_true(rms > 300 && rms < 800);      /* a ±800 Hz FSK, Gaussian-smoothed */
    assert_true(near / total > 0.999);
    assert_true(10 * log10(mirror / total + 1e-30) < -60);
    assert_true(10 * log10(far / total + 1e-30) < -50);
    fftwf_destroy_plan(p);
    fftwf_free(buf);
    free(x);
    txsink_destroy(s);
}

/* Carriers of x[0..n) (Hann window, zero-padded FFT): local maxima within 30 dB of the
 * strongest, placed by parabolic interpolation of the dB values. Returns their count and
 * fills f_hz/lvl_db with up to max of them in frequency order. */
static int carriers(const float complex *x, size_t n, double rate, double *f_hz, double *lvl_db,
                    int max)
{
    size_t nfft = 1;
    while (nfft < 4 * n)
        nfft <<= 1;
    fftwf_complex *buf = fftwf_malloc(nfft * sizeof *buf);
    double *pw = malloc(nfft * sizeof *pw);
    assert_true(buf && pw);
    fftwf_plan p = fftwf_plan_dft_1d((int)nfft, buf, buf, FFTW_FORWARD, FFTW_ESTIMATE);
    memset(buf, 0, nfft * sizeof *buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = x[i] * (float)(0.5 - 0.5 * cos(2 * M_PI * (double)i / (double)(n - 1)));
    fftwf_execute(p);
    double top = 0;
    for (size_t k = 0; k < nfft; k++) {
        pw[k] = (double)crealf(buf[k] * conjf(buf[k])) + 1e-30;
        top = fmax(top, pw[k]);
    }
    int cnt = 0;
    /* in frequency order: bins nfft/2 .. nfft-1 are the negative frequencies */
    for (size_t j = 0; j < nfft; j++) {
        size_t k = (j + nfft / 2) % nfft;
        double a = pw[(k + nfft - 1) % nfft], b = pw[k], c = pw[(k + 1) % nfft];
        if (!(b > a && b >= c && b > top * 1e-3))
            continue;
        double la = 10 * log10(a), lb = 10 * log10(b), lc = 10 * log10(c);
        double frac = 0.5 * (la - lc) / (la - 2 * lb + lc);
        double bin = (k < nfft / 2 ? (double)k : (double)k - (double)nfft) + frac;
        if (cnt < max) {
            f_hz[cnt] = bin * rate / (double)nfft;
            lvl_db[cnt] = lb - 10 * log10(top);
        }
        cnt++;
    }
    fftwf_destroy_plan(p);
    fftwf_free(buf);
    free(pw);
    return cnt;
}

/* A Monarch beacon through the file sink (seeds/001): the sidecar places it, the 362 ms
 * pattern shows 12 equal carriers at ±1..±6 × dF1 around the beacon frequency and the
 * 38 ms pattern 12 at ±k × dF2; the DL receiver finds no downlink in it; a DL queued
 * after it is written too. */
static void test_monarch_beacon_file(void **state)
{
    (void)state;
    static const struct {
        double offset_hz, df1, df2;
    } cases[] = {{-20000.0, 1260.3, 1489.4}, {35000.0, 1024.0, 1260.3}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        got.n = 0;
        txsink_config_t cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.kind = TXSINK_FILE;
        cfg.dir = tmpdir;
        cfg.center_freq_hz = CENTER_HZ;
        cfg.on_result = on_result;
        cfg.beacon_tx_freq_hz = CENTER_HZ + cases[c].offset_hz;
        cfg.beacon_df1_hz = cases[c].df1;
        cfg.beacon_df2_hz = cases[c].df2;
        char err[256] = "";
        txsink_t *s = txsink_create(&cfg, err, sizeof err);
        if (!s)
            fail_msg("txsink_create: %s", err);
        txsink_beacon_t mb = {.id = 7, .freq_hz = CENTER_HZ + cases[c].offset_hz, .t_start_s = 3.5};
        assert_int_equal(txsink_submit_beacon(s, &mb), 0);
        txsink_burst_t b = burst(2, MC_A, "3031323334353637", CENTER_HZ + 10000.0, 5.0);
        assert_int_equal(txsink_submit(s, &b), 0);
        assert_int_equal(txsink_drain(s, 10000), 0);
        assert_int_equal(got.n, 2);
        const txsink_result_t *r = &got.res[0];
        assert_true(r->beacon);
        assert_int_equal(r->status, 0);
        assert_int_equal(r->id, 7);
        assert_false(got.res[1].beacon);
        assert_int_equal(got.res[1].status, 0);
        assert_non_null(strstr(r->path, "/monarch_7_t3500000us_869.525000M_240k.cf32"));

        char jpath[sizeof r->path + 8];
        snprintf(jpath, sizeof jpath, "%s.json", r->path);
        json_object *side = read_json(jpath);
        assert_string_equal(jstr(side, "type"), "monarch_iq");
        assert_near(jnum(side, "offset_hz"), cases[c].offset_hz, 0.05);
        assert_near(jnum(side, "df1_hz"), cases[c].df1, 1e-9);
        assert_near(jnum(side, "df2_hz"), cases[c].df2, 1e-9);
        size_t first = (size_t)jnum(side, "data_offset_samples");
        assert_near(jnum(side, "t_first_sample_s"), 3.5 - first / 240000.0, 1e-6);
        size_t n;
        double rate, center;
        float complex *x = read_iq(r->path, &n, &rate, &center);
        size_t len = (size_t)llround(MONARCH_BEACON_S * rate);
        assert_int_equal(n, len + 2 * first);
        assert_int_equal((int64_t)n, (int64_t)jnum(side, "n_samples"));
        /* silence around it, the beacon inside */
        assert_true(cabsf(x[first / 2]) == 0 && cabsf(x[first + len + first / 2]) == 0);
        assert_true(cabsf(x[first + len / 2]) > 0);
        /* The two patterns, 2 ms away from the ramps and the switch. */
        size_t guard = (size_t)(0.002 * rate), sw = first + (size_t)llround(MONARCH_PATTERN1_S * rate);
        const struct {
            size_t from, to;
            double df, tol_hz;
        } pat[2] = {{first + guard, sw - guard, cases[c].df1, 0.5},
                    {sw + guard, first + len - guard, cases[c].df2, 5.0}};
        for (int k = 0; k < 2; k++) {
            double f[32], lvl[32];
            int cnt = carriers(x + pat[k].from, pat[k].to - pat[k].from, rate, f, lvl, 32);
            assert_int_equal(cnt, MONARCH_CARRIERS);
            double worst, spread_db;
            monarch_pattern_fit(f, lvl, cases[c].offset_hz, pat[k].df, &worst, &spread_db);
            printf("Monarch pattern %d: 12 carriers at offset %+.0f Hz ± k × %.1f Hz, largest "
                   "position error %.3f Hz, levels within %.2f dB\n",
                   k + 1, cases[c].offset_hz, pat[k].df, worst, spread_db);
            assert_true(worst < pat[k].tol_hz);
            assert_true(spread_db < 1.0);
        }
        /* Not a downlink. */
        dldemod_config_t dc = {.rate_sps = rate, .max_block_samples = n};
        dldemod_t *dm = dldemod_create(&dc);
        assert_non_null(dm);
        dldemod_burst_t bursts[4];
        assert_int_equal(dldemod_process(dm, x, n, bursts, 4), 0);
        dldemod_destroy(dm);
        free(x);
        json_object_put(side);
        txsink_destroy(s);
    }
    /* Refusals: beacons without a configuration, spacings outside seeds/001, out of band. */
    txsink_t *s = file_sink(0, 0);
    txsink_beacon_t mb = {.id = 1, .freq_hz = CENTER_HZ, .t_start_s = 1};
    assert_int_equal(txsink_submit_beacon(s, &mb), TXSINK_ERR_ARG);
    txsink_destroy(s);
    static const double bad[][3] = {{0, 1000.0, 1024.0}, {0, 1024.0, 0}, {116000.0, 1024.0, 1024.0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        txsink_config_t cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.kind = TXSINK_FILE;
        cfg.dir = tmpdir;
        cfg.center_freq_hz = CENTER_HZ;
        cfg.beacon_tx_freq_hz = CENTER_HZ + bad[i][0];
        cfg.beacon_df1_hz = bad[i][1];
        cfg.beacon_df2_hz = bad[i][2];
        char err[256] = "";
        assert_null(txsink_create(&cfg, err, sizeof err));
        assert_non_null(strstr(err, i < 2 ? "1024, 1260.3 or 1489.4" : "outside the transmitter"));
    }
}

static void test_queue_and_refusals(void **state)
{
    (void)state;
    txsink_t *s = file_sink(0, 2);
    /* outside what 240 kS/s covers: |offset| + 2 kHz > 120 kHz */
    txsink_burst_t far = burst(1, 1, "0000000000000000", CENTER_HZ + 118500.0, 1.0);
    assert_int_equal(txsink_submit(s, &far), TXSINK_ERR_OFFSET);
    assert_near(txsink_max_offset_hz(s), 118000.0, 1e-9);
    txsink_burst_t nan_b = far;
    nan_b.t_start_s = NAN;
    assert_int_equal(txsink_submit(s, &nan_b), TXSINK_ERR_ARG);
    /* A burst of submissions against a 2-deep queue: some are refused, never blocked, and
     * every accepted one gets exactly one result. */
    int accepted = 0, full = 0;
    for (int i = 0; i < 40; i++) {
        txsink_burst_t b = burst((uint32_t)(100 + i), 5, "0102030405060708", CENTER_HZ, 2.0 + i);
        int rc = txsink_submit(s, &b);
        if (rc == 0)
            accepted++;
        else if (rc == TXSINK_ERR_FULL)
            full++;
        else
            fail_msg("submit: %s", txsink_strerror(rc));
    }
    assert_int_equal(accepted + full, 40);
    assert_true(full > 0);
    assert_int_equal(txsink_drain(s, 30000), 0);
    assert_int_equal(got.n, accepted);
    txsink_stats_t st;
    txsink_get_stats(s, &st);
    assert_int_equal(st.sent, (uint64_t)accepted);
    assert_int_equal(st.rejected, (uint64_t)full + 1); /* + the offset refusal */
    /* events other than SCHEDULED are not bursts */
    dlsched_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = DLSCHED_EV_REQUEST;
    assert_int_equal(txsink_submit_event(s, &ev), TXSINK_ERR_ARG);
    txsink_destroy(s);
}

static void test_bad_config(void **state)
{
    (void)state;
    txsink_config_t c;
    char err[256];
    memset(&c, 0, sizeof c);
    c.kind = TXSINK_FILE;
    c.dir = "/nonexistent/dir";
    c.center_freq_hz = CENTER_HZ;
    assert_null(txsink_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/dir"));
    c.dir = "/etc/hostname";
    assert_null(txsink_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "not a directory"));
    c.dir = tmpdir;
    c.center_freq_hz = 0;
    assert_null(txsink_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "center_freq_hz"));
    memset(&c, 0, sizeof c);
    c.kind = TXSINK_SOAPY;
    c.center_freq_hz = CENTER_HZ;
    assert_null(txsink_create(&c, err, sizeof err)); /* no rate */
    assert_non_null(strstr(err, "rate_sps"));
}

/* SoapySDR: a device that does not exist, and a receive-only one (the project's iqfile
 * driver, standing in for an RTL-SDR), are refused with a clear message. */
static void test_soapy_refusals(void **state)
{
    (void)state;
    /* `make` builds the module: a missing one is a failure, not a skipped case */
    assert_int_equal(test_use_soapy_plugin(), 0);
    txsink_config_t c;
    char err[512];
    memset(&c, 0, sizeof c);
    c.kind = TXSINK_SOAPY;
    c.rate_sps = 2e6;
    c.center_freq_hz = CENTER_HZ;
    c.device_args = "driver=nonexistent_h8";
    assert_null(txsink_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "SoapySDR device 'driver=nonexistent_h8'"));
    char iq[PATH_MAX + 64], args[PATH_MAX + 128];
    snprintf(iq, sizeof iq, "%s/rx_868.13M_240k.cf32", tmpdir);
    iqfile_params_t p = {.format = IQ_FORMAT_CF32};
    iqfile_t *f = iqfile_open_write(iq, &p, err, sizeof err);
    assert_non_null(f);
    float complex zeros[1000] = {0};
    assert_int_equal(iqfile_write(f, zeros, 1000), 0);
    iqfile_close(f);
    snprintf(args, sizeof args, "driver=iqfile,path=%s", iq);
    c.device_args = args;
    assert_null(txsink_create(&c, err, sizeof err));
    printf("%s\n", err);
    assert_non_null(strstr(err, "has no TX channel"));
    assert_non_null(strstr(err, "downlink transmission disabled"));
}

/* ---- the scheduler and the sink together, wired as sigfoxd does ---------------------------- */

typedef struct {
    dlsched_t *sched;
    txsink_t *tx;
    int scheduled, sent;
    char file[1040];
} wiring_t;

static int sched_event(const dlsched_event_t *ev, void *user)
{
    wiring_t *w = user;
    if (ev->type == DLSCHED_EV_SCHEDULED) {
        w->scheduled++;
        return txsink_submit_event(w->tx, ev);
    }
    if (ev->type == DLSCHED_EV_SENT) {
        w->sent++;
        snprintf(w->file, sizeof w->file, "%s", ev->file);
    }
    return 0;
}

static void tx_result(const txsink_result_t *r, void *user)
{
    wiring_t *w = user;
    on_result(r, NULL);
    dlsched_tx_done(w->sched, r->id, r->status == 0, r->error, r->path[0] ? r->path : NULL);
}

static void test_scheduler_to_file(void **state)
{
    (void)state;
    for (int rcn = 1; rcn <= 7; rcn++) {
        got.n = 0;
        const rc_params_t *rc = rc_get(rcn);
        wiring_t w;
        memset(&w, 0, sizeof w);
        keystore_t *ks = keystore_create();
        keystore_add(ks, EP_A, key_a);
        dlsched_device_t dev = {.ep_id = EP_A, .mode = DLSCHED_MODE_DIRECT};
        hex_to_bytes("3031323334353637", dev.payload, 8);
        dlsched_config_t sc;
        memset(&sc, 0, sizeof sc);
        sc.rc = rc;
        sc.keys = ks;
        sc.devices = &dev;
        sc.ndevices = 1;
        sc.tx_ppm = 2.5;
        sc.on_event = sched_event;
        sc.user = &w;
        char err[256];
        w.sched = dlsched_create(&sc, err, sizeof err);
        assert_non_null(w.sched);
        txsink_config_t tc;
        memset(&tc, 0, sizeof tc);
        tc.kind = TXSINK_FILE;
        tc.dir = tmpdir;
        tc.center_freq_hz = rc->dl_center_hz;
        tc.on_result = tx_result;
        tc.user = &w;
        w.tx = txsink_create(&tc, err, sizeof err);
        assert_non_null(w.tx);

        double f1 = rc->ul_center_hz + 61234.5;
        dlsched_uplink_t u = {.ep_id = EP_A, .mc = MC_A, .bf = true, .kind = UL_KIND_APP,
                              .auth_ok = true, .rank = 1, .baud = 600, .freq_hz = f1,
                              .t_start_s = 3.0, .t_end_s = 3.2933};
        assert_int_equal(dlsched_uplink(w.sched, &u), 1);
        for (double t = 3.3; t < 60; t += 0.1)
            dlsched_tick(w.sched, t);
        assert_int_equal(w.scheduled, 1);
        assert_int_equal(txsink_drain(w.tx, 10000), 0);
        txsink_destroy(w.tx); /* the result callback has run before drain returned */
        assert_int_equal(got.n, 1);
        assert_int_equal(w.sent, 1);
        assert_string_equal(w.file, got.res[0].path);
        /* What the file holds is what a ppm-off transmitter needs: the carrier at
         * (f1 + Δf_GAP) / (1 + ppm), which the radio moves to f1 + Δf_GAP. */
        double want = (f1 + rc->dl_gap_hz) / (1 + 2.5e-6) - rc->dl_center_hz;
        double e = check_roundtrip(&got.res[0], MC_A, "3031323334353637", want);
        double on_air_err = (want + e + rc->dl_center_hz) * (1 + 2.5e-6) - (f1 + rc->dl_gap_hz);
        printf("%s: DL at %.1f Hz from the DL centre, on-air error %.2f Hz\n", rc->name,
               want, on_air_err);
        assert_true(fabs(on_air_err) < 150.0);
        char jpath[sizeof got.res[0].path + 8];
        snprintf(jpath, sizeof jpath, "%s.json", got.res[0].path);
        json_object *o = read_json(jpath);
        double t0 = jnum(o, "t_start_s");
        assert_true(t0 - 0.5 / 600 >= 3.2933 + rc->t_w_s);
        assert_true(t0 + 224 / 600.0 <= 3.2933 + rc->t_w_s + rc->t_rx_s);
        json_object_put(o);
        dlsched_destroy(w.sched);
        keystore_destroy(ks);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_sink_writes_iq_and_sidecar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_sink_offsets_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_sink_spectrum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_monarch_beacon_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_soapy_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scheduler_to_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
