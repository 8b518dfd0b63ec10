/* test_rxpayload: no frame lost to its content. Every payload class of simpayload.h
 * (random, all 0x00, all 0xFF, 0x55/0xAA, one byte changing, 1-bit, control) at every
 * payload size 0-12, ranks 1-3, both symbol rates, 20 dB, drift at the Table 2-2 peak
 * limits or none, through the whole receiver (rx.h): every frame decoded with the right fields.
 * A frame of 0xFF bytes is a carrier without phase reversals for most of its length,
 * one of 0x00 (rank 1) or 0x55 two lines: the detector must not take them for CW tones
 * or FSK lines. Licence: MIT. */
#include <complex.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "rx.h"
#include "simpayload.h"
#include "synth.h"
#include "synthtest.h"

#define MAX_OUT 256
#define LANES 8
/* BR600 frames decoded at least: test_br600_then_br100 of 16 (6 before the fix), and
 * test_br600_pairs of 32 (21 before) */
#define THEN_BR600_MIN 15
#define PAIRS_BR600_MIN 25 /* frames on air at once, at carriers 20 kHz apart */
#define BACK_TO_BACK_MIN 62 /* test_br600_back_to_back, of 64 (55 before) */

typedef struct {
    rx_frame_t frames[MAX_OUT];
    size_t nframes;
    rx_stats_t st;
} out_t;

static void on_frame(const rx_frame_t *f, void *user)
{
    out_t *o = user;
    if (o->nframes < MAX_OUT && f->frame.crc_ok)
        o->frames[o->nframes++] = *f;
}

/* The payload (class cls, len bytes, drawn from draw), a random key, rank 1..3 by k, one
 * frame at baud. */
static void frame_spec(synth_burst_spec_t *sp, prng_t *rng, int cls, size_t len, uint64_t draw,
                       int k, int baud)
{
    assert_int_equal(sim_payload_fill(&sp->msg, cls, len, draw), 0);
    for (int i = 0; i < UL_KEY_BYTES; i++)
        sp->key[i] = (uint8_t)(prng_uniform(rng) * 256);
    sp->rank = 1 + k % 3;
    sp->n_frames = 1;
    sp->baud = baud;
}

/* A random frame: ID, MC, 0-12 random payload bytes (frame_spec). */
static void random_frame(synth_burst_spec_t *sp, prng_t *rng, int k, int baud)
{
    sp->msg.ep_id = (uint32_t)(prng_uniform(rng) * 4294967295.0);
    sp->msg.mc = (uint16_t)(prng_uniform(rng) * 4096);
    size_t len = (size_t)(prng_uniform(rng) * (UL_MAX_PAYLOAD_BYTES + 1));
    uint64_t draw = prng_next(rng);
    frame_spec(sp, rng, SIM_PAYLOAD_RANDOM, len, draw, k, baud);
}

/* 12-20 dB, drift within Table 2-2's mean limits, random phase, +-0.1 % symbol rate. */
static void impair(synth_burst_spec_t *sp, prng_t *rng)
{
    sp->ebn0_db = 12 + 8 * prng_uniform(rng);
    double lim = sp->baud == 600 ? 50.0 : 20.0;
    sp->drift_hz_s = (2 * prng_uniform(rng) - 1) * lim;
    sp->phase_rad = prng_uniform(rng) * 6.28;
    sp->baud_error_ppm = (prng_uniform(rng) - 0.5) * 2000;
}

typedef struct {
    double f, amp, on, off, phase; /* Hz from the capture centre, linear, s, s, rad */
} tone_t;

/* Renders the synthesizer's capture with the tones added (raised-cosine ramps of 5 ms)
 * through a receiver centred on channel c; the CRC-valid frames and the stats into o. */
static out_t *receive(synth_t *s, double c, const tone_t *tone, int ntones)
{
    const synth_config_t *sc = synth_config(s);
    out_t *o = calloc(1, sizeof *o);
    assert_non_null(o);
    rx_config_t cfg = {.rate_sps = sc->rate_sps,
                       .capture_center_hz = sc->center_freq_hz,
                       .channel_center_hz = c,
                       .keys = synth_keys(s),
                       .rc = rc_get(sc->rc),
                       .on_frame = on_frame,
                       .user = o};
    rx_t *rx = rx_create(&cfg);
    assert_non_null(rx);
    float complex *buf = malloc(65536 * sizeof *buf);
    assert_non_null(buf);
    long n;
    uint64_t at = 0;
    const double fs = sc->rate_sps, ramp = 0.005;
    while ((n = synth_render(s, buf, 65536)) > 0) {
        for (int k = 0; k < ntones; k++) {
            for (long i = 0; i < n; i++) {
                double t = (double)(at + (uint64_t)i) / fs;
                if (t < tone[k].on || t > tone[k].off)
                    continue;
                double e = fmin(fmin(t - tone[k].on, tone[k].off - t) / ramp, 1);
                e = 0.5 - 0.5 * cos(M_PI * e);
                buf[i] += (float complex)(tone[k].amp * e *
                                          cexp(I * (2 * M_PI * tone[k].f * t + tone[k].phase)));
            }
        }
        assert_int_equal(rx_process(rx, buf, (size_t)n), n);
        at += (uint64_t)n;
    }
    assert_int_equal(rx_flush(rx), 0);
    rx_get_stats(rx, &o->st);
    rx_destroy(rx);
    free(buf);
    return o;
}

/* Frames of class cls at baud: sized classes every size 0..12, the others 12 draws; each
 * with ranks 1..3 in turn. All decoded, no other frame. */
static void run_class(int cls, int baud)
{
    prng_t rng;
    prng_seed(&rng, 0x9E3779B97F4A7C15ull, (uint64_t)(cls * 1000 + baud));
    int nframes = SIM_PAYLOAD_SIZED(cls) ? 3 * (UL_MAX_PAYLOAD_BYTES + 1) : 12;
    double dur = baud == 100 ? 2.2 : 0.45; /* longest frame + ramps */
    int rows = (nframes + LANES - 1) / LANES;
    synth_t *s = test_synth_create(250e3, 0.5 + rows * (dur + 0.4) + 0.5, 0,
                                   (uint64_t)(7000 + cls * 10 + baud / 100), 0);
    double c = rc_get(synth_config(s)->rc)->ul_center_hz;
    for (int k = 0; k < nframes; k++) {
        synth_burst_spec_t sp;
        synth_burst_spec_default(&sp);
        sp.msg.ep_id = (uint32_t)(prng_uniform(&rng) * 4294967295.0);
        sp.msg.mc = (uint16_t)(prng_uniform(&rng) * 4096);
        sp.msg.bf = k % 5 == 1;
        size_t len = SIM_PAYLOAD_SIZED(cls) ? (size_t)(k / 3) : 0;
        uint64_t draw = (uint64_t)(prng_uniform(&rng) * 9007199254740992.0) ^ (uint64_t)k << 53;
        frame_spec(&sp, &rng, cls, len, draw, k, baud);
        int lane = k % LANES, row = k / LANES;
        sp.t_start_s = 0.5 + row * (dur + 0.4) + 0.1 * prng_uniform(&rng);
        sp.freq_hz = c + (lane - LANES / 2) * 20e3 + 2e3 * prng_uniform(&rng);
        sp.ebn0_db = 20;
        /* Table 2-2 peak drift either way, none (a pure carrier stays in one bin), any */
        double lim = baud == 100 ? 30.0 : 100.0, u = prng_uniform(&rng);
        sp.drift_hz_s = k % 4 == 0 ? lim : k % 4 == 1 ? -lim : k % 4 == 2 ? 0 : (2 * u - 1) * lim;
        sp.phase_rad = prng_uniform(&rng) * 6.28;
        sp.baud_error_ppm = (prng_uniform(&rng) - 0.5) * 2000;
        int rc = synth_add_burst(s, &sp);
        if (rc != 0)
            fail_msg("synth_add_burst: %s", synth_strerror(rc));
    }
    out_t *o = receive(s, c, NULL, 0);

    size_t nb, decoded = 0;
    const synth_burst_t *b = synth_bursts(s, &nb);
    bool used[MAX_OUT] = {false};
    for (size_t i = 0; i < nb; i++) {
        int hit = -1;
        for (size_t k = 0; k < o->nframes && hit < 0; k++)
            if (!used[k] && o->frames[k].frame.rank == b[i].rank &&
                fabs(o->frames[k].t_start_s - b[i].t_start_s) < 0.01 &&
                ul_message_equal(&o->frames[k].frame.msg, &b[i].msg) &&
                o->frames[k].auth == RX_AUTH_OK)
                hit = (int)k;
        if (hit >= 0) {
            used[hit] = true;
            decoded++;
        } else {
            print_message("%s BR%d: not decoded: rank %d size %zu%s t %.2f f %+.0f drift %+.0f\n",
                          sim_payload_class_name(cls), baud, b[i].rank, b[i].msg.payload_len,
                          b[i].msg.one_bit ? " (1 bit)" : "", b[i].t_start_s, b[i].freq_hz - c,
                          b[i].drift_hz_s);
        }
    }
    print_message("%-11s BR%d: %zu/%zu decoded, %zu frames out; detector: %llu accepted, "
                  "%llu rejected\n",
                  sim_payload_class_name(cls), baud, decoded, nb, o->nframes,
                  (unsigned long long)o->st.bursts_detected,
                  (unsigned long long)o->st.bursts_rejected);
    assert_int_equal(decoded, nb);
    assert_int_equal(o->nframes, nb);
    free(o);
    synth_destroy(s);
}

/* Whether burst b came out exactly (rank, start within 10 ms, fields). */
static bool found(const out_t *o, const synth_burst_t *b)
{
    for (size_t k = 0; k < o->nframes; k++)
        if (o->frames[k].frame.rank == b->rank &&
            fabs(o->frames[k].t_start_s - b->t_start_s) < 0.01 &&
            ul_message_equal(&o->frames[k].frame.msg, &b->msg))
            return true;
    return false;
}

/* A steady tone (CW interferer) next to each frame, [lo_sr, hi_sr] symbol rates from its
 * carrier, 3-9 dB stronger than the burst, on from 0.3-0.6 s before the frame to as long
 * after it. Random payloads, sizes, ranks, carriers and drift, 12-20 dB. BR600 at
 * 1.05-1.9 baud: the detector used to put the carrier between burst and tone (out of the
 * demodulator's +-baud search), and the squarer took the tone for the carrier (0/16
 * decoded before the fix): the demo's seed 7 lost a BR600 frame at 14.7 dB to a CW 7.5 dB
 * stronger 868 Hz away. BR100 at 2.2-4 baud (closer ones still cost most frames:
 * docs/receiver.md, known limits). Every frame decoded, no other frame, and for
 * BR600 the receiver says it removed the tones. */
static void run_tone(int baud, double lo_sr, double hi_sr, uint64_t seed)
{
    prng_t rng;
    prng_seed(&rng, seed, (uint64_t)baud);
    const int nframes = 16;
    double dur = baud == 100 ? 2.2 : 0.45, gap = 1.6;
    int rows = (nframes + LANES - 1) / LANES;
    double total = 0.8 + rows * (dur + gap) + 0.5;
    synth_t *s = test_synth_create(250e3, total, 0, seed, 0);
    const synth_config_t *sc = synth_config(s);
    double c = rc_get(sc->rc)->ul_center_hz;
    tone_t tone[16];
    for (int k = 0; k < nframes; k++) {
        synth_burst_spec_t sp;
        synth_burst_spec_default(&sp);
        random_frame(&sp, &rng, k, baud);
        int lane = k % LANES, row = k / LANES;
        sp.t_start_s = 0.8 + row * (dur + gap) + 0.1 * prng_uniform(&rng);
        sp.freq_hz = c + (lane - LANES / 2) * 20e3 + 2e3 * prng_uniform(&rng);
        impair(&sp, &rng);
        int rc = synth_add_burst(s, &sp);
        if (rc != 0)
            fail_msg("synth_add_burst: %s", synth_strerror(rc));
        double side = prng_uniform(&rng) < 0.5 ? -1 : 1;
        double p_burst = pow(10, sp.ebn0_db / 10) * synth_n0(s) * baud;
        double rel_db = 3 + 6 * prng_uniform(&rng);
        tone[k].f = sp.freq_hz - sc->center_freq_hz +
                    side * baud * (lo_sr + (hi_sr - lo_sr) * prng_uniform(&rng));
        tone[k].amp = sqrt(p_burst * pow(10, rel_db / 10));
        tone[k].on = sp.t_start_s - 0.3 - 0.3 * prng_uniform(&rng);
        tone[k].off = sp.t_start_s + dur + 0.3 + 0.3 * prng_uniform(&rng);
        tone[k].phase = 6.28 * prng_uniform(&rng);
    }
    out_t *o = receive(s, c, tone, nframes);
    size_t nb, decoded = 0;
    const synth_burst_t *b = synth_bursts(s, &nb);
    for (size_t i = 0; i < nb; i++) {
        bool hit = found(o, &b[i]);
        decoded += hit;
        if (!hit)
            print_message("tone BR%d: not decoded: t %.2f f %+.0f Eb/N0 %.1f\n", baud,
                          b[i].t_start_s, b[i].freq_hz - c, b[i].ebn0_db);
    }
    print_message("tone BR%d: %zu/%zu decoded, %zu frames out, %llu lines removed\n", baud,
                  decoded, nb, o->nframes, (unsigned long long)o->st.lines_removed);
    assert_int_equal(decoded, nb);
    assert_int_equal(o->nframes, nb);
    if (baud == 600) /* BR100: the tones are outside the detector's spectral window */
        assert_true(o->st.lines_removed >= nb / 2);
    free(o);
    synth_destroy(s);
}

/* A BR600 frame with a BR100 frame starting 0-0.1 s after it 350-700 Hz away (16 pairs,
 * random payloads, 12-20 dB each). The BR100 burst kept the BR600 box over the threshold
 * for its 2 s, so the BR600 track was rejected as too long and the frame lost (the most
 * frequent loss of BR600 bursts in the mixed capacity scene that a demodulator told where
 * to look decodes); its first frame's worth is now measured on its own. Every BR600 frame
 * decoded; the BR100 ones are not the point (a BR600 burst inside their band for 0.35 s). */
/* Pairs: a BR600 frame, and 0-0.1 s later a frame at baud2 off_lo..off_hi Hz away (either
 * side), random payloads, 12-20 dB each. Returns the frames decoded per baud (got[1]:
 * BR600) and how many there were. */
static void run_pairs(int baud2, double off_lo, double off_hi, uint64_t seed, size_t got[2],
                      size_t all[2])
{
    prng_t rng;
    prng_seed(&rng, seed, (uint64_t)baud2);
    const int npairs = 16;
    double gap = baud2 == 100 ? 2.6 : 0.9;
    int rows = (npairs + LANES - 1) / LANES;
    synth_t *s = test_synth_create(250e3, 0.8 + rows * gap + 0.5, 0, seed, 0);
    double c = rc_get(synth_config(s)->rc)->ul_center_hz;
    double t0 = 0, f0 = 0, side = 1, off = 0, lag = 0;
    for (int k = 0; k < 2 * npairs; k++) {
        synth_burst_spec_t sp;
        synth_burst_spec_default(&sp);
        int pair = k / 2, lane = pair % LANES, row = pair / LANES;
        bool first = k % 2 == 0;
        random_frame(&sp, &rng, k, first ? 600 : baud2);
        if (first) { /* the pair's times and carriers */
            t0 = 0.8 + row * gap + 0.1 * prng_uniform(&rng);
            f0 = c + (lane - LANES / 2) * 20e3 + 2e3 * prng_uniform(&rng);
            side = prng_uniform(&rng) < 0.5 ? -1 : 1;
            off = off_lo + (off_hi - off_lo) * prng_uniform(&rng);
            lag = 0.1 * prng_uniform(&rng);
        }
        sp.t_start_s = first ? t0 : t0 + lag;
        sp.freq_hz = first ? f0 : f0 + side * off;
        impair(&sp, &rng);
        int rc = synth_add_burst(s, &sp);
        if (rc != 0)
            fail_msg("synth_add_burst: %s", synth_strerror(rc));
    }
    out_t *o = receive(s, c, NULL, 0);
    size_t nb;
    got[0] = got[1] = all[0] = all[1] = 0;
    const synth_burst_t *b = synth_bursts(s, &nb);
    for (size_t i = 0; i < nb; i++) {
        bool hit = found(o, &b[i]);
        all[b[i].baud == 600]++;
        got[b[i].baud == 600] += hit;
        if (!hit)
            print_message("pairs BR600 + BR%d: BR%d not decoded: t %.2f f %+.0f Eb/N0 %.1f\n",
                          baud2, b[i].baud, b[i].t_start_s, b[i].freq_hz - c, b[i].ebn0_db);
    }
    print_message("pairs BR600 + BR%d %.0f-%.0f Hz: BR600 %zu/%zu, BR100 %zu/%zu decoded\n",
                  baud2, off_lo, off_hi, got[1], all[1], got[0], all[0]);
    free(o);
    synth_destroy(s);
}

/* A BR600 frame with a BR100 frame starting 0-0.1 s after it 350-700 Hz away. The BR100
 * burst kept the BR600 box over the threshold for its 2 s, so the BR600 track was rejected
 * as too long and the frame lost (the most frequent loss of BR600 bursts in the mixed
 * capacity scene that a demodulator told where to look decodes); its first frame's worth
 * is now measured on its own: 6/16 BR600 frames decoded before, 15/16 now (the one left:
 * the prefix's spectrum already holds the BR100 burst). The BR100 ones are not the point
 * (a BR600 burst inside their band for 0.35 s). */
static void test_br600_then_br100(void **state)
{
    (void)state;
    size_t got[2], all[2];
    run_pairs(100, 350, 700, 77, got, all);
    assert_true(got[1] >= THEN_BR600_MIN);
}

/* Two BR600 frames one after the other (pause 0-60 ms) 50-900 Hz apart, 12-24 dB each,
 * payloads of every class: the detector makes one track of them (a sequence), which fails
 * the preamble check at its start when the first attempt sits near the stronger one's
 * carrier, or the centroid lies beyond the carrier search of one of them. Such tracks now
 * get the multi-burst attempts and a spectral-peak hypothesis (rx.c): 55/64 decoded
 * before, 63/64 now. */
static void test_br600_back_to_back(void **state)
{
    (void)state;
    prng_t rng;
    prng_seed(&rng, 79, 600);
    const int npairs = 32;
    const double gap = 1.0;
    int rows = (npairs + LANES - 1) / LANES;
    synth_t *s = test_synth_create(250e3, 0.8 + rows * gap + 0.5, 0, 79, 0);
    double c = rc_get(synth_config(s)->rc)->ul_center_hz;
    for (int pair = 0; pair < npairs; pair++) {
        int lane = pair % LANES, row = pair / LANES;
        double t = 0.8 + row * gap + 0.1 * prng_uniform(&rng);
        double f = c + (lane - LANES / 2) * 20e3 + 2e3 * prng_uniform(&rng);
        double off = (prng_uniform(&rng) < 0.5 ? -1 : 1) * (50 + 850 * prng_uniform(&rng));
        for (int k = 0; k < 2; k++) {
            synth_burst_spec_t sp;
            synth_burst_spec_default(&sp);
            int cls = (int)(prng_next(&rng) % SIM_PAYLOAD_CLASSES);
            size_t len = (size_t)(prng_uniform(&rng) * (UL_MAX_PAYLOAD_BYTES + 1));
            frame_spec(&sp, &rng, cls, len, prng_next(&rng), 2 * pair + k, 600);
            impair(&sp, &rng);
            sp.ebn0_db = 12 + 12 * prng_uniform(&rng); /* up to 12 dB apart */
            sp.t_start_s = t;
            sp.freq_hz = f + k * off;
            int rc = synth_add_burst(s, &sp);
            if (rc != 0)
                fail_msg("synth_add_burst: %s", synth_strerror(rc));
            int clen = ul_container_len(&sp.msg);
            assert_true(clen > 0);
            double bits = UL_HEADER_BITS + (double)ul_body_bits((size_t)clen);
            /* the next one after it */
            t += bits / (600 * (1 + sp.baud_error_ppm * 1e-6)) + 0.06 * prng_uniform(&rng);
        }
    }
    out_t *o = receive(s, c, NULL, 0);
    size_t nb, got = 0;
    const synth_burst_t *b = synth_bursts(s, &nb);
    for (size_t i = 0; i < nb; i++) {
        bool hit = found(o, &b[i]);
        got += hit;
        if (!hit)
            print_message("back to back: not decoded: t %.2f f %+.0f Eb/N0 %.1f\n", b[i].t_start_s,
                          b[i].freq_hz - c, b[i].ebn0_db);
    }
    print_message("BR600 back to back: %zu/%zu decoded\n", got, nb);
    assert_true(got >= BACK_TO_BACK_MIN);
    free(o);
    synth_destroy(s);
}

/* Two BR600 frames 450-850 Hz apart on air together are one detector track, too wide for
 * one burst: it failed the preamble check at the centroid between them and both were
 * lost (the most frequent remaining loss of the kind above). Such a track now gets the
 * multi-burst attempts: 21/32 decoded before both changes, 25/32 now (what is left: the
 * weaker of a pair whose stronger one sits in its flank, rejected as a shoulder). */
static void test_br600_pairs(void **state)
{
    (void)state;
    size_t got[2], all[2];
    run_pairs(600, 450, 850, 78, got, all);
    assert_true(got[1] >= PAIRS_BR600_MIN);
}

static void test_tone_br600(void **state)
{
    (void)state;
    run_tone(600, 1.05, 1.9, 71);
    run_tone(600, 1.05, 1.9, 72);
}

static void test_tone_br100(void **state)
{
    (void)state;
    run_tone(100, 2.2, 4, 73);
}

#define CLASS_TESTS(name, cls)                                                                     \
    static void test_##name##_br100(void **state)                                                  \
    {                                                                                              \
        (void)state;                                                                               \
        run_class(cls, 100);                                                                       \
    }                                                                                              \
    static void test_##name##_br600(void **state)                                                  \
    {                                                                                              \
        (void)state;                                                                               \
        run_class(cls, 600);                                                                       \
    }

CLASS_TESTS(random, SIM_PAYLOAD_RANDOM)
CLASS_TESTS(zeros, SIM_PAYLOAD_ZEROS)
CLASS_TESTS(ones, SIM_PAYLOAD_ONES)
CLASS_TESTS(alternating, SIM_PAYLOAD_ALTERNATING)
CLASS_TESTS(counter, SIM_PAYLOAD_COUNTER)
CLASS_TESTS(one_bit, SIM_PAYLOAD_ONE_BIT)
CLASS_TESTS(control, SIM_PAYLOAD_CONTROL)

/* The class helpers themselves: names round-trip, fills are what the class says. */
static void test_classes(void **state)
{
    (void)state;
    for (int c = 0; c < SIM_PAYLOAD_CLASSES; c++)
        assert_int_equal(sim_payload_class_parse(sim_payload_class_name(c)), c);
    assert_int_equal(sim_payload_class_parse("nope"), -1);
    ul_message_t m = {.ep_id = 0x12345678, .mc = 0x123};
    assert_int_equal(sim_payload_fill(&m, SIM_PAYLOAD_ONES, 13, 1), -1);
    assert_int_equal(sim_payload_fill(&m, SIM_PAYLOAD_CLASSES, 1, 1), -1);
    assert_int_equal(sim_payload_fill(&m, SIM_PAYLOAD_ONES, 9, 1), 0);
    assert_int_equal(m.payload_len, 9);
    for (int i = 0; i < 9; i++)
        assert_int_equal(m.payload[i], 0xFF);
    assert_int_equal(sim_payload_class_of(&m), SIM_PAYLOAD_ONES);
    assert_int_equal(sim_payload_fill(&m, SIM_PAYLOAD_ZEROS, 4, 1), 0);
    assert_int_equal(sim_payload_class_of(&m), SIM_PAYLOAD_ZEROS);
    bool saw[2] = {false, false};
    for (uint64_t d = 0; d < 32; d++) {
        assert_int_equal(sim_payload_fill(&m, SIM_PAYLOAD_ALTERNATING, 3, d * 0x1234567ull), 0);
        assert_true(m.payload[0] == 0x55 || m.payload[0] == 0xAA);
        saw[m.payload[0] == 0xAA] = true;
        assert_int_equal(sim_payload_class_of(&m), SIM_PAYLOAD_ALTERNATING);
    }
    assert_true(saw[0] && saw[1]);
    /* counter: same record for one device, only the last byte follows the MC */
    ul_message_t a = {.ep_id = 7, .mc = 1}, b2 = {.ep_id = 7, .mc = 2};
    assert_int_equal(sim_payload_fill(&a, SIM_PAYLOAD_COUNTER, 6, 11), 0);
    assert_int_equal(sim_payload_fill(&b2, SIM_PAYLOAD_COUNTER, 6, 99), 0);
    assert_memory_equal(a.payload, b2.payload, 5);
    assert_int_equal(a.payload[5], 1);
    assert_int_equal(sim_payload_class_of(&a), SIM_PAYLOAD_COUNTER);
    assert_int_equal(sim_payload_fill(&a, SIM_PAYLOAD_RANDOM, 6, 11), 0);
    assert_int_equal(sim_payload_class_of(&a), SIM_PAYLOAD_RANDOM);
    assert_int_equal(b2.payload[5], 2);
    assert_int_equal(sim_payload_fill(&m, SIM_PAYLOAD_ONE_BIT, 0, 5), 0);
    assert_true(m.one_bit);
    assert_int_equal(sim_payload_class_of(&m), SIM_PAYLOAD_ONE_BIT);
    m.bf = true;
    assert_int_equal(sim_payload_fill(&m, SIM_PAYLOAD_CONTROL, 0, 5), 0);
    assert_false(m.bf);
    assert_true(m.kind == UL_KIND_KEEPALIVE || m.kind == UL_KIND_DL_CONFIRMATION);
    assert_int_equal(sim_payload_class_of(&m), SIM_PAYLOAD_CONTROL);
    assert_true(ul_container_len(&m) == 16);
}

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),           cmocka_unit_test(test_random_br100),
        cmocka_unit_test(test_random_br600),      cmocka_unit_test(test_zeros_br100),
        cmocka_unit_test(test_zeros_br600),       cmocka_unit_test(test_ones_br100),
        cmocka_unit_test(test_ones_br600),        cmocka_unit_test(test_alternating_br100),
        cmocka_unit_test(test_alternating_br600), cmocka_unit_test(test_counter_br100),
        cmocka_unit_test(test_counter_br600),     cmocka_unit_test(test_one_bit_br100),
        cmocka_unit_test(test_one_bit_br600),     cmocka_unit_test(test_control_br100),
        cmocka_unit_test(test_control_br600),     cmocka_unit_test(test_tone_br600),
        cmocka_unit_test(test_tone_br100),        cmocka_unit_test(test_br600_then_br100),
        cmocka_unit_test(test_br600_pairs),
        cmocka_unit_test(test_br600_back_to_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
