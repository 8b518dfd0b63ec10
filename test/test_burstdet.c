/* test_burstdet: burst detection on synthesized captures (synth.h) through the real front
 * end and channelizer: start/end and carrier errors against the truth for both symbol
 * rates, many simultaneous bursts, weak bursts, CW and FSK interferers, pure noise.
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

#include "burstdet.h"
#include "channelizer.h"
#include "frontend.h"
#include "log.h"
#include "prng.h"
#include "synth.h"
#include "synthtest.h"

#define MAX_DET 4096

typedef struct {
    burstdet_event_t ev;
    double t_start_s, t_end_s, freq_hz; /* relative to the capture centre */
    double t_first_s;                   /* start of the first hop extracted (first_hop) */
} det_t;

typedef struct {
    det_t det[MAX_DET];
    size_t ndet;
    burstdet_stats_t stats;
    double rate;
} run_t;

/* synth -> frontend -> channelizer -> burstdet; collects CLOSE events. */
static void run_pipeline(synth_t *s, double threshold_db, run_t *out)
{
    const synth_config_t *sc = synth_config(s);
    frontend_config_t fc = {.rate_sps = sc->rate_sps, .passband_hz = 97e3, .grid_hz = 25};
    frontend_t *fe = frontend_create(&fc);
    assert_non_null(fe);
    double fw = frontend_out_rate(fe);
    size_t nfft = (size_t)lround(fw / 25.0);
    channelizer_config_t cc = {
        .rate_sps = fw, .fft_len = nfft, .band_lo_hz = -97e3, .band_hi_hz = 97e3};
    channelizer_t *ch = channelizer_create(&cc);
    assert_non_null(ch);
    size_t hop = channelizer_hop_len(ch);
    burstdet_config_t bc = {.bin_hz = channelizer_bin_hz(ch),
                            .hop_s = hop / fw,
                            .fft_len = nfft,
                            .bin_lo = channelizer_bin_lo(ch),
                            .nbins = channelizer_nbins(ch),
                            .threshold_db = threshold_db};
    burstdet_t *bd = burstdet_create(&bc);
    assert_non_null(bd);
    size_t cap = burstdet_max_events(bd);
    burstdet_event_t *ev = malloc(cap * sizeof *ev);
    size_t blk = 65536;
    float complex *in = malloc(blk * sizeof *in);
    float complex *w = malloc(frontend_max_out(fe, blk) * sizeof *w);
    out->ndet = 0;
    out->rate = sc->rate_sps;
    double d = frontend_decimation(fe), delay = frontend_delay_in(fe);
    for (int last = 0; !last;) {
        long n = synth_render(s, in, blk);
        assert_true(n >= 0);
        last = n == 0;
        long m = frontend_process(fe, in, (size_t)n, w, frontend_max_out(fe, blk));
        size_t pos = 0;
        for (;;) {
            int ne = 0;
            if (!last || pos < (size_t)m) {
                size_t used;
                channelizer_hop_t h;
                int r = channelizer_process(ch, w + pos, (size_t)m - pos, &used, &h);
                pos += used;
                if (r == 1)
                    ne = burstdet_process(bd, h.power, h.floor, h.index, ev, cap);
                else if (!last)
                    break;
            }
            if (last && pos >= (size_t)m && ne == 0)
                ne = burstdet_flush(bd, ev, cap);
            assert_true(ne >= 0);
            for (int k = 0; k < ne; k++) {
                if (ev[k].kind != BURSTDET_CLOSE || out->ndet >= MAX_DET)
                    continue;
                det_t *dt = &out->det[out->ndet++];
                dt->ev = ev[k];
                dt->t_start_s = ((ev[k].start_hop + 1) * hop * d - delay) / sc->rate_sps;
                dt->t_end_s = ((ev[k].end_hop + 1) * hop * d - delay) / sc->rate_sps;
                dt->freq_hz = ev[k].freq_bin * bc.bin_hz;
                dt->t_first_s = ((double)ev[k].first_hop * hop * d - delay) / sc->rate_sps;
            }
            if (last && (pos >= (size_t)m) && ne == 0)
                break;
            if (pos >= (size_t)m && !last)
                break;
        }
    }
    burstdet_get_stats(bd, &out->stats);
    free(ev);
    free(in);
    free(w);
    burstdet_destroy(bd);
    channelizer_destroy(ch);
    frontend_destroy(fe);
}

typedef struct {
    size_t truth, found, missed, wrong_class;
    double max_dt_start, max_dt_end, max_df, rms_df;
    size_t start_held;       /* found ones whose track begins by the burst's start */
    size_t false_accepts;    /* accepted detections matching no truth burst */
    double wmin[2], wmax[2]; /* rms widths seen, BR100 / BR600 */
} score_t;

/* Mean carrier over the burst (what an energy detector sees). */
static double mean_freq(const synth_burst_t *b, double center)
{
    return b->freq_hz - center + b->drift_hz_s * (b->t_end_s - b->t_start_s) / 2;
}

static void score(synth_t *s, const run_t *r, score_t *sc, bool verbose)
{
    size_t nb;
    const synth_burst_t *b = synth_bursts(s, &nb);
    double center = synth_config(s)->center_freq_hz;
    memset(sc, 0, sizeof *sc);
    bool *used = calloc(r->ndet + 1, 1);
    double sum_df2 = 0;
    for (size_t i = 0; i < nb; i++) {
        if (b[i].collided)
            continue;
        sc->truth++;
        double f = mean_freq(&b[i], center);
        int best = -1;
        for (int pass = 0; pass < 2 && best < 0; pass++) {
            for (size_t k = 0; k < r->ndet; k++) {
                const det_t *d = &r->det[k];
                if (d->ev.reject != BURSTDET_ACCEPTED || used[k])
                    continue;
                if (pass == 0 && d->ev.baud != b[i].baud)
                    continue;
                if (fabs(d->freq_hz - f) > 2 * b[i].baud)
                    continue;
                if (d->t_end_s < b[i].t_start_s || d->t_start_s > b[i].t_end_s)
                    continue;
                best = (int)k;
                break;
            }
        }
        if (best < 0) {
            sc->missed++;
            if (verbose)
                print_message("missed: baud %d t %.3f-%.3f f %.1f ebn0 %.1f\n", b[i].baud,
                              b[i].t_start_s, b[i].t_end_s, f, b[i].ebn0_db);
            continue;
        }
        used[best] = true;
        const det_t *d = &r->det[best];
        if (d->ev.baud != b[i].baud)
            sc->wrong_class++;
        sc->found++;
        sc->start_held += d->t_first_s <= b[i].t_start_s;
        int ci = d->ev.baud == 600;
        if (d->ev.width_bins < sc->wmin[ci] || sc->wmin[ci] == 0)
            sc->wmin[ci] = d->ev.width_bins;
        if (d->ev.width_bins > sc->wmax[ci])
            sc->wmax[ci] = d->ev.width_bins;
        double dts = fabs(d->t_start_s - b[i].t_start_s), dte = fabs(d->t_end_s - b[i].t_end_s);
        double df = fabs(d->freq_hz - f);
        if (verbose && (dts > 0.06 || dte > 0.06))
            print_message("imprecise: baud %d truth %.3f-%.3f det %.3f-%.3f f %.1f snr %.1f\n",
                          b[i].baud, b[i].t_start_s, b[i].t_end_s, d->t_start_s, d->t_end_s, f,
                          d->ev.snr_db);
        if (dts > sc->max_dt_start)
            sc->max_dt_start = dts;
        if (dte > sc->max_dt_end)
            sc->max_dt_end = dte;
        if (df > sc->max_df)
            sc->max_df = df;
        sum_df2 += df * df;
    }
    for (size_t k = 0; k < r->ndet; k++)
        if (r->det[k].ev.reject == BURSTDET_ACCEPTED && !used[k]) {
            /* a collided truth burst may legitimately be seen */
            bool any = false;
            for (size_t i = 0; i < nb; i++)
                if (fabs(r->det[k].freq_hz - mean_freq(&b[i], center)) < 2 * b[i].baud &&
                    r->det[k].t_end_s > b[i].t_start_s && r->det[k].t_start_s < b[i].t_end_s)
                    any = true;
            if (!any) {
                sc->false_accepts++;
                if (verbose)
                    print_message("false: baud %d t %.3f-%.3f f %.1f snr %.1f w %.2f\n",
                                  r->det[k].ev.baud, r->det[k].t_start_s, r->det[k].t_end_s,
                                  r->det[k].freq_hz, r->det[k].ev.snr_db, r->det[k].ev.width_bins);
            }
        }
    sc->rms_df = sc->found ? sqrt(sum_df2 / sc->found) : 0;
    free(used);
}

static synth_t *make_synth(double rate, double duration, int devices, uint64_t seed)
{
    return test_synth_create(rate, duration, devices, seed, 0);
}

/* Test parameters (prng.h), seeded in main. */
static prng_t rng;
static double urand(void)
{
    return prng_uniform(&rng);
}

/* One explicit burst with a random message of the given payload length. */
static void add_burst(synth_t *s, int baud, double t, double f_abs, double ebn0, size_t plen,
                      double drift)
{
    synth_burst_spec_t sp;
    synth_burst_spec_default(&sp);
    sp.msg.ep_id = (uint32_t)(urand() * 4294967295.0);
    sp.msg.mc = (uint16_t)(urand() * 4096);
    sp.msg.payload_len = plen;
    for (size_t i = 0; i < plen; i++)
        sp.msg.payload[i] = (uint8_t)(urand() * 256);
    for (int i = 0; i < UL_KEY_BYTES; i++)
        sp.key[i] = (uint8_t)i;
    sp.rank = 1 + (int)(urand() * 3);
    sp.baud = baud;
    sp.t_start_s = t;
    sp.freq_hz = f_abs;
    sp.ebn0_db = ebn0;
    sp.drift_hz_s = drift;
    sp.phase_rad = urand() * 6.28;
    int rc = synth_add_burst(s, &sp);
    if (rc != 0)
        fail_msg("synth_add_burst: %s", synth_strerror(rc));
}

/* Isolated bursts of both rates, all container sizes, drift at the Table 2-2 limits, at
 * 15 dB: every one found, class right, nothing else accepted; start/end and carrier (of
 * the burst's mean carrier) errors within the bounds below. */
static void test_isolated(void **state)
{
    (void)state;
    const double rates[] = {250e3, 1.024e6};
    for (int ri = 0; ri < 2; ri++) {
        synth_t *s = make_synth(rates[ri], 12, 0, 11 + ri);
        double c = synth_config(s)->center_freq_hz;
        const size_t plens[] = {0, 1, 3, 8, 12};
        int k = 0;
        for (int baud = 100; baud <= 600; baud += 500) {
            for (int j = 0; j < 5; j++, k++) {
                double drift = (j & 1 ? 1 : -1) * (baud == 100 ? 30.0 : 100.0);
                double f = c - 90e3 + k * 18e3 + urand() * 1000;
                add_burst(s, baud, 0.3 + k * 1.1, f, 15, plens[j], drift);
            }
        }
        run_t *r = malloc(sizeof *r);
        run_pipeline(s, 0, r);
        score_t sc;
        score(s, r, &sc, true);
        print_message("rate %g: truth %zu found %zu wrong class %zu false %zu; max |dt| start "
                      "%.1f ms end %.1f ms; max |df| %.1f Hz, rms %.1f Hz; widths BR100 "
                      "%.2f-%.2f BR600 %.2f-%.2f bins\n",
                      rates[ri], sc.truth, sc.found, sc.wrong_class, sc.false_accepts,
                      sc.max_dt_start * 1e3, sc.max_dt_end * 1e3, sc.max_df, sc.rms_df, sc.wmin[0],
                      sc.wmax[0], sc.wmin[1], sc.wmax[1]);
        assert_int_equal(sc.found, sc.truth);
        assert_int_equal(sc.wrong_class, 0);
        assert_int_equal(sc.false_accepts, 0);
        /* Measured over 20 scenes of 10 bursts (250 kS/s, prng.h streams 0-19): start/end
         * error at most 24.6/24.2 ms (one hop is 20 ms); carrier error (against the burst's
         * mean carrier, BR600 drifting 100 Hz/s) at most 3.9-9.4 Hz, RMS 1.6-4.6 Hz. One
         * scene of 10 says little about the tail: the bounds are the timing above with
         * room, half a 25 Hz bin, and 6 Hz RMS. */
        assert_true(sc.max_dt_start < 0.030 && sc.max_dt_end < 0.035);
        assert_true(sc.max_df < 12.5);
        assert_true(sc.rms_df < 6.0);
        free(r);
        synth_destroy(s);
    }
}

/* 80 bursts (60 BR100, 20 BR600) within 3 s at random carriers at least 1.5 kHz apart,
 * overlapping in time, 10-20 dB: found, class right, no false accepts, carrier error. */
static void test_many(void **state)
{
    (void)state;
    synth_t *s = make_synth(250e3, 5, 0, 21);
    double c = synth_config(s)->center_freq_hz;
    double used[80];
    for (int k = 0; k < 80; k++) {
        double f;
        for (;;) {
            f = c - 90e3 + urand() * 180e3;
            bool ok = true;
            for (int j = 0; j < k; j++)
                if (fabs(used[j] - f) < 1500)
                    ok = false;
            if (ok)
                break;
        }
        used[k] = f;
        int baud = k < 60 ? 100 : 600;
        double t = 0.3 + urand() * (baud == 100 ? 2.0 : 3.5);
        double ebn0 = 10 + urand() * 10;
        size_t plen = (size_t)(urand() * 13);
        double drift = (urand() - 0.5) * (baud == 100 ? 40 : 100);
        add_burst(s, baud, t, f, ebn0, plen, drift);
    }
    run_t *r = malloc(sizeof *r);
    run_pipeline(s, 0, r);
    score_t sc;
    score(s, r, &sc, true);
    print_message("many: truth %zu found %zu wrong class %zu false %zu; max |dt| %.1f/%.1f ms, "
                  "rms df %.1f Hz; dropped %llu\n",
                  sc.truth, sc.found, sc.wrong_class, sc.false_accepts, sc.max_dt_start * 1e3,
                  sc.max_dt_end * 1e3, sc.rms_df, (unsigned long long)r->stats.dropped);
    /* Measured: 80 of 80 found, carrier RMS 2.8 Hz, start error at most 27.9 ms (end:
     * 90.6 ms, one BR100 burst whose track ran on into a neighbour's). One miss allowed;
     * carrier RMS bound 1.45x the measurement. */
    assert_true(sc.found + 1 >= sc.truth);
    assert_int_equal(sc.wrong_class, 0);
    assert_int_equal(sc.false_accepts, 0);
    assert_true(sc.rms_df < 4.0);
    assert_true(sc.max_dt_start < 0.045);
    free(r);
    synth_destroy(s);
}

/* BR100 bursts with other bursts of equal power on both sides in the wide-context bands
 * (250-1000 Hz away): at 100 bursts in the band 12 % of them are in that situation. Each
 * must be found and accepted as a plain burst (the context test looks at the emptiest
 * part of each band, which a wide signal fills and a neighbour does not). Then pairs
 * 100-140 Hz apart, overlapping in time: each pair gives an accepted track (measured: 7 of
 * the 8 pairs share one track, none flagged crowded; the demodulator's carrier window
 * separates the two, test_rx's close pairs). */
static void test_neighbours(void **state)
{
    (void)state;
    /* own draws: the tests after this one keep theirs (burstdet.h quotes their figures) */
    prng_t saved_rng = rng;
    prng_seed(&rng, 0x4E1647B0055ull, 0);
    synth_t *s = make_synth(250e3, 8, 0, 23);
    double c = synth_config(s)->center_freq_hz;
    for (int g = 0; g < 10; g++) {
        double f = c - 85e3 + g * 17e3 + urand() * 1000;
        double t = 0.3 + urand() * 0.2;
        /* the burst, one 350-450 Hz below and one 600-700 Hz above, up to 0.2 s later */
        for (int side = 0; side < 3; side++) {
            double dt = side ? urand() * 0.2 : 0;
            double df = side == 0 ? 0 : side == 1 ? -350 - urand() * 100 : 600 + urand() * 100;
            double drift = (urand() - 0.5) * 40;
            add_burst(s, 100, t + dt, f + df, 15, 4, drift);
        }
    }
    run_t *r = malloc(sizeof *r);
    run_pipeline(s, 0, r);
    score_t sc;
    score(s, r, &sc, true);
    print_message("neighbours: truth %zu found %zu false %zu\n", sc.truth, sc.found,
                  sc.false_accepts);
    assert_int_equal(sc.truth, 30);
    assert_int_equal(sc.found, sc.truth);
    assert_int_equal(sc.false_accepts, 0);
    free(r);
    synth_destroy(s);

    s = make_synth(250e3, 8, 0, 24);
    double fp[8];
    for (int g = 0; g < 8; g++) {
        fp[g] = -85e3 + g * 21e3 + urand() * 1000;
        double t = 0.3 + urand() * 0.2;
        double drift = (urand() - 0.5) * 40;
        add_burst(s, 100, t, c + fp[g], 15, 4, drift);
        double t2 = t + 0.05 + urand() * 0.1;
        double f2 = c + fp[g] + 100 + urand() * 40;
        double drift2 = (urand() - 0.5) * 40;
        add_burst(s, 100, t2, f2, 15, 4, drift2);
    }
    r = malloc(sizeof *r);
    run_pipeline(s, 0, r);
    int covered = 0;
    for (int g = 0; g < 8; g++) {
        bool hit = false;
        for (size_t k = 0; k < r->ndet; k++) {
            const det_t *d = &r->det[k];
            if (d->ev.reject == BURSTDET_ACCEPTED && d->ev.baud == 100 && d->freq_hz > fp[g] - 60 &&
                d->freq_hz < fp[g] + 200) {
                hit = true;
            }
        }
        covered += hit;
    }
    print_message("pairs 100-140 Hz apart: %d of 8 with an accepted track\n", covered);
    assert_int_equal(covered, 8);
    free(r);
    synth_destroy(s);
    rng = saved_rng;
}

/* Weak bursts: at Eb/N0 6 dB (below the single-frame decoding threshold) they are still
 * found, so replicas can be combined. */
static void test_weak(void **state)
{
    (void)state;
    synth_t *s = make_synth(250e3, 15, 0, 31);
    double c = synth_config(s)->center_freq_hz;
    for (int k = 0; k < 40; k++) {
        int baud = k & 1 ? 600 : 100;
        add_burst(s, baud, 0.3 + (k / 4) * 1.3, c - 85e3 + k * 4.2e3, 6, 12, (urand() - 0.5) * 40);
    }
    run_t *r = malloc(sizeof *r);
    run_pipeline(s, 0, r);
    score_t sc;
    score(s, r, &sc, true);
    print_message("weak (6 dB): truth %zu found %zu wrong %zu false %zu, max |dt| %.1f/%.1f "
                  "ms, rms df %.1f Hz, widths BR100 %.2f-%.2f BR600 %.2f-%.2f\n",
                  sc.truth, sc.found, sc.wrong_class, sc.false_accepts, sc.max_dt_start * 1e3,
                  sc.max_dt_end * 1e3, sc.rms_df, sc.wmin[0], sc.wmax[0], sc.wmin[1], sc.wmax[1]);
    /* Measured (N = 40): 40 found, carrier RMS 6.5 Hz, start/end error at most 47.6/36.1
     * ms. Two misses allowed (95 %); carrier bound 1.45x the measurement. */
    assert_true(sc.found + 2 >= sc.truth);
    assert_int_equal(sc.false_accepts, 0);
    assert_true(sc.rms_df < 9.5);
    free(r);
    synth_destroy(s);
}

/* Weak BR100 bursts, as the long box finds them: its 0.6 s sum can cross the threshold
 * late in the burst, and the receiver cuts the track only from first_hop on, so a start
 * before it is never searched. 40 bursts at 0 dB Eb/N0 (where three replicas decoded
 * jointly still succeed now and then), random drift: the found ones must have their start
 * at or after their first hop. Measured: 37 found, 33 held; with the backfill of strong
 * tracks (0.4 s before the box, WEAK_BACK_S_BR100 0.4) 26 of 35. At least 31. */
static void test_weak_backfill(void **state)
{
    (void)state;
    synth_t *s = make_synth(250e3, 30, 0, 41);
    double c = synth_config(s)->center_freq_hz;
    for (int k = 0; k < 40; k++)
        add_burst(s, 100, 0.3 + (k / 4) * 2.6, c - 85e3 + k * 4.2e3 + urand() * 500, 0.0, 12,
                  (urand() - 0.5) * 40);
    run_t *r = malloc(sizeof *r);
    run_pipeline(s, 0, r);
    score_t sc;
    score(s, r, &sc, false);
    print_message("weak backfill (0 dB): truth %zu found %zu start held %zu\n", sc.truth,
                  sc.found, sc.start_held);
    assert_true(sc.start_held >= 31);
    free(r);
    synth_destroy(s);
}

/* 30 s of pure noise at the default threshold: measured 4 tracks, none accepted (the
 * 300 s sweep below: accepted ones are rarer than 1 per 100 s); at most 1 allowed. */
static void test_noise(void **state)
{
    (void)state;
    synth_t *s = make_synth(250e3, 30, 0, 41);
    run_t *r = malloc(sizeof *r);
    run_pipeline(s, 0, r);
    size_t acc = 0;
    for (size_t k = 0; k < r->ndet; k++)
        acc += r->det[k].ev.reject == BURSTDET_ACCEPTED;
    print_message("noise 30 s: tracks %llu, accepted %zu\n", (unsigned long long)r->stats.tracks,
                  acc);
    assert_true(acc <= 1);
    free(r);
    synth_destroy(s);
}

/* CW tones and FSK interferers only (12 CW, 6 GMSK 2-FSK sources of 4.8 kbaud, packets of
 * 20-100 ms): no plain BR100 detection, and at most 3 BR600 ones in 20 s. Those few are
 * real look-alikes: where two sources overlap, their packets merge into 0.17-0.23 s of
 * continuous 2-FSK whose spectral shoulder has a BR600 burst's width and duration; the
 * demodulator finds no Sigfox sync in them (test_rx: no frames on the same scenario).
 * Tracks shaped like a CW tone or an FSK line that last as long as a frame are accepted
 * only on condition (verify_preamble: frames of long runs of equal or alternating bits
 * look the same to the detector; the receiver keeps them only when a preamble + FT starts
 * them, and test_rx gets no frame here): 42 BR100 and 105 BR600 of them in these 20 s.
 * The 2-FSK tone lines of overlapping packet trains do pass as "crowded" BR100 tracks
 * (gappy like two bursts on one carrier, quiet context, no sharp line): the demodulator
 * is asked to look for several bursts there, and finds none (test_rx). They must keep
 * the shape that earned the flag. Measured BR600 look-alikes: 1 for this seed (51); 0-2,
 * mean 0.8, over seeds 51-62 (N = 12 x 20 s; 0-4, mean 2.1, before the detector's
 * content-independent acceptance); at most 2 allowed, the worst seed seen (counts this
 * small leave no finer bound). Crowded tracks: 22 for this seed (1-22 over the same
 * seeds), at most 30. */
static void test_interferers(void **state)
{
    (void)state;
    synth_config_t c;
    synth_config_default(&c);
    c.seed = 51;
    c.rate_sps = 250e3;
    c.duration_s = 20;
    c.devices = 0;
    c.cw_tones = 12;
    c.fsk_interferers = 6;
    char err[256];
    synth_t *s = synth_create(&c, err, sizeof err);
    if (!s)
        fail_msg("synth: %s", err);
    run_t *r = malloc(sizeof *r);
    run_pipeline(s, 0, r);
    size_t acc[2] = {0, 0}, crowded = 0, verify[2] = {0, 0};
    for (size_t k = 0; k < r->ndet; k++)
        if (r->det[k].ev.reject == BURSTDET_ACCEPTED && r->det[k].ev.verify_preamble) {
            verify[r->det[k].ev.baud == 600]++;
            assert_false(r->det[k].ev.crowded);
        } else if (r->det[k].ev.reject == BURSTDET_ACCEPTED && r->det[k].ev.crowded) {
            crowded++;
            assert_int_equal(r->det[k].ev.baud, 100);
            assert_true(r->det[k].ev.width_bins * 25.0 <= 70.0);
            assert_true(r->det[k].ev.snr_db >= 8.0);
        } else if (r->det[k].ev.reject == BURSTDET_ACCEPTED) {
            acc[r->det[k].ev.baud == 600]++;
            print_message("accepted on interferers: baud %d t %.3f-%.3f f %.1f w %.2f\n",
                          r->det[k].ev.baud, r->det[k].t_start_s, r->det[k].t_end_s,
                          r->det[k].freq_hz, r->det[k].ev.width_bins);
        }
    print_message("interferers: tracks %llu, crowded %zu, to verify %zu BR100 + %zu BR600, "
                  "rejected short %llu long %llu narrow %llu wide %llu gappy %llu\n",
                  (unsigned long long)r->stats.tracks, crowded, verify[0], verify[1],
                  (unsigned long long)r->stats.rejected[BURSTDET_REJ_SHORT],
                  (unsigned long long)r->stats.rejected[BURSTDET_REJ_LONG],
                  (unsigned long long)r->stats.rejected[BURSTDET_REJ_NARROW],
                  (unsigned long long)r->stats.rejected[BURSTDET_REJ_WIDE],
                  (unsigned long long)r->stats.rejected[BURSTDET_REJ_GAPPY]);
    assert_int_equal(acc[0], 0);
    assert_true(acc[1] <= 2);
    assert_true(crowded <= 30);
    free(r);
    synth_destroy(s);
}

static void test_bad_config(void **state)
{
    (void)state;
    burstdet_config_t bc = {
        .bin_hz = 25, .hop_s = 0.02, .fft_len = 10000, .nbins = 7761, .threshold_db = -1};
    assert_null(burstdet_create(&bc));
    bc.threshold_db = 0;
    bc.nbins = 3;
    assert_null(burstdet_create(&bc));
    assert_null(burstdet_create(NULL));
    burstdet_destroy(NULL);
}

/* Detection sweep, run on request (BURSTDET_SWEEP=1 build/test/test_burstdet): 40 bursts
 * of 12-byte payload per point, 4 at a time 4.2 kHz apart, random drift; found, start/end
 * errors, carrier error; then 300 s of noise. */
static void test_sweep(void **state)
{
    (void)state;
    if (!getenv("BURSTDET_SWEEP"))
        skip();
    const double e[] = {0, 2, 4, 6, 8};
    for (int baud = 100; baud <= 600; baud += 500) {
        for (int j = 0; j < 5; j++) {
            synth_t *s = make_synth(250e3, 60, 0, (uint64_t)(1000 + j + baud));
            double c = synth_config(s)->center_freq_hz;
            for (int k = 0; k < 40; k++) {
                double f = c - 85e3 + k * 4.2e3 + urand() * 500;
                double drift = (urand() - 0.5) * (baud == 100 ? 40 : 100);
                add_burst(s, baud, 0.3 + (k / 4) * (baud == 100 ? 2.3 : 1.0), f, e[j], 12, drift);
            }
            run_t *r = malloc(sizeof *r);
            run_pipeline(s, 0, r);
            score_t sc;
            score(s, r, &sc, getenv("BURSTDET_SWEEP_VERBOSE") != NULL);
            print_message("sweep: baud %d Eb/N0 %.0f dB: found %zu/%zu, false %zu, max |dt| "
                          "start %.0f ms end %.0f ms, carrier rms %.1f Hz\n",
                          baud, e[j], sc.found, sc.truth, sc.false_accepts, sc.max_dt_start * 1e3,
                          sc.max_dt_end * 1e3, sc.rms_df);
            free(r);
            synth_destroy(s);
        }
    }
    synth_t *s = make_synth(250e3, 300, 0, 77);
    run_t *r = malloc(sizeof *r);
    run_pipeline(s, 0, r);
    size_t acc = 0;
    for (size_t k = 0; k < r->ndet; k++)
        acc += r->det[k].ev.reject == BURSTDET_ACCEPTED;
    print_message("sweep: noise 300 s: tracks %llu, accepted %zu\n",
                  (unsigned long long)r->stats.tracks, acc);
    free(r);
    synth_destroy(s);
}

int main(void)
{
    log_set_level(LOG_LEVEL_FATAL);
    prng_seed(&rng, 0x9E3779B97F4A7C15ull, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isolated),   cmocka_unit_test(test_many),
        cmocka_unit_test(test_neighbours), cmocka_unit_test(test_weak),
        cmocka_unit_test(test_weak_backfill),
        cmocka_unit_test(test_noise),      cmocka_unit_test(test_interferers),
        cmocka_unit_test(test_bad_config), cmocka_unit_test(test_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
