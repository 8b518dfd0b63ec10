/* test_truth: the scoring rules of truth.h on hand-built records and lines: exact match,
 * wrong fields, time/frequency tolerance edges, rank, false frames, duplicates, miss
 * reasons, expectations, malformed lines with their line numbers. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "truth.h"

/* ---- record builders --------------------------------------------------------------- */

static truth_rec_t burst(uint32_t ep_id, int mc, int rank, int baud, double t_s, double f_hz,
                         double ebn0_db)
{
    truth_rec_t r;
    memset(&r, 0, sizeof r);
    r.type = TRUTH_REC_BURST;
    r.has_fields = true;
    r.ep_id = ep_id;
    r.mc = mc;
    r.kind = UL_KIND_APP;
    r.payload_bit = -1;
    r.payload[0] = 0x12;
    r.payload[1] = 0x34;
    r.payload_len = 2;
    r.rank = rank;
    r.baud = baud;
    r.t_start_s = t_s;
    r.freq_hz = f_hz;
    r.drift_hz_s = 0;
    r.ebn0_db = ebn0_db;
    r.snr_db = NAN;
    r.crc_ok = true;
    r.message = -1;
    return r;
}

/* A decoded frame of truth burst b, dt seconds and df Hz off, SNR = Eb/N0 + dsnr. */
static truth_rec_t frame_of(const truth_rec_t *b, double dt_s, double df_hz, double dsnr_db)
{
    truth_rec_t r = *b;
    r.type = TRUTH_REC_FRAME;
    r.t_start_s += dt_s;
    r.freq_hz += df_hz;
    r.snr_db = b->ebn0_db + dsnr_db;
    r.ebn0_db = NAN;
    r.collided = r.interfered = false;
    r.message = -1;
    strcpy(r.auth, "ok");
    return r;
}

static truth_rec_t msg_of(const truth_rec_t *b, double dt_s, double df_hz)
{
    truth_rec_t r = frame_of(b, dt_s, df_hz, 0);
    r.type = TRUTH_REC_MESSAGE;
    r.rank = 0;
    return r;
}

typedef struct {
    truth_set_t truth, dec;
    truth_score_t score;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    truth_score_free(&f->score);
    truth_set_free(&f->truth);
    truth_set_free(&f->dec);
    free(f);
    return 0;
}

static void add(truth_set_t *set, truth_rec_t r)
{
    r.line = (unsigned)set->n + 1;
    assert_int_equal(truth_set_add(set, &r), 0);
}

static void score(fixture_t *f, const truth_config_t *cfg)
{
    char err[256];
    truth_score_free(&f->score);
    int rc = truth_score(&f->score, &f->truth, &f->dec, cfg, err, sizeof err);
    if (rc != 0)
        fail_msg("truth_score: %d %s", rc, err);
}

static const truth_stats_t *all(const fixture_t *f)
{
    return &f->score.stats[TRUTH_GROUP_ALL];
}

/* A three-replica BR100 message: ranks at t = 1, 3, 5 s on three carriers. */
static void three_replicas(fixture_t *f, uint32_t id, int mc, double t0_s)
{
    add(&f->truth, burst(id, mc, 1, 100, t0_s, 868.1e6, 12));
    add(&f->truth, burst(id, mc, 2, 100, t0_s + 2, 868.12e6, 12));
    add(&f->truth, burst(id, mc, 3, 100, t0_s + 4, 868.14e6, 12));
}

/* ---- matching ---------------------------------------------------------------------- */

static void test_exact_match(void **state)
{
    fixture_t *f = *state;
    three_replicas(f, 0xFEDCBA98, 1650, 1.0);
    const truth_rec_t *t = f->truth.recs;
    add(&f->dec, frame_of(&t[0], 0.001, 3, 0.5));
    add(&f->dec, frame_of(&t[1], -0.002, -4, -0.5));
    add(&f->dec, frame_of(&t[2], 0.003, 5, 1.5));
    add(&f->dec, msg_of(&t[0], 0.001, 3));
    score(f, NULL);
    const truth_stats_t *a = all(f);
    assert_int_equal(a->truth_frames, 3);
    assert_int_equal(a->matched_frames, 3);
    assert_int_equal(a->missed_frames, 0);
    assert_int_equal(a->false_frames + a->wrong_frames + a->misplaced_frames, 0);
    assert_int_equal(a->truth_messages, 1);
    assert_int_equal(a->matched_messages, 1);
    assert_int_equal(f->score.n_msgs, 1);
    assert_int_equal(f->score.msgs[0].n_bursts, 3);
    assert_int_equal(f->score.msgs[0].frames_matched, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(f->score.burst[i].dec, (long)i);
        assert_int_equal(f->score.dec[i].cls, TRUTH_DEC_MATCHED);
    }
    assert_int_equal(f->score.msgs[0].dec, 3);
    /* errors: decoded minus truth */
    assert_int_equal(a->n_freq, 3);
    assert_float_equal(a->freq_err_rms_hz, sqrt((9.0 + 16 + 25) / 3), 1e-6);
    assert_float_equal(a->freq_err_max_hz, 5.0, 1e-6);
    assert_float_equal(a->time_err_rms_ms, sqrt((1.0 + 4 + 9) / 3), 1e-6);
    assert_float_equal(a->time_err_max_ms, 3.0, 1e-6);
    assert_float_equal(a->snr_minus_ebn0_mean_db, 0.5, 1e-9);
    assert_float_equal(a->snr_minus_ebn0_rms_db, sqrt((0.25 + 0.25 + 2.25) / 3), 1e-9);
    /* grouped by baud: all BR100 */
    assert_int_equal(f->score.stats[TRUTH_GROUP_BR100].matched_frames, 3);
    assert_int_equal(f->score.stats[TRUTH_GROUP_BR600].truth_frames, 0);
    assert_true(isnan(f->score.stats[TRUTH_GROUP_BR600].freq_err_rms_hz));

    truth_expect_t e;
    truth_expect_default(&e);
    e.expect_all = true;
    e.max_false = 0;
    e.max_duplicates = 0;
    e.max_wrong = 0;
    e.expect_auth = true;
    e.max_freq_rms_hz = 5;
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 0);
    e.frames = true;
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 0);
    e.max_freq_rms_hz = 4; /* RMS is 4.08 */
    char why[256];
    assert_int_equal(truth_check(&f->score, &e, why, sizeof why), 1);
    assert_non_null(strstr(why, "max-freq-rms"));
}

/* One field differs at a time: the frame is "wrong", the burst missed with that reason. */
static void test_wrong_fields(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *what;
        int change;
    } cases[] = {{"payload", 0}, {"payload", 1}, {"bf", 2}, {"kind", 3}, {"payload_bit", 4}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        truth_set_free(&f->truth);
        truth_set_free(&f->dec);
        truth_rec_t t = burst(0x01020304, 7, 1, 600, 2.0, 868.13e6, 20);
        if (cases[c].change == 4) {
            t.one_bit = true;
            t.payload_bit = 1;
            t.payload_len = 0;
        }
        add(&f->truth, t);
        truth_rec_t d = frame_of(&t, 0, 0, 0);
        switch (cases[c].change) {
        case 0:
            d.payload[1] = 0x35;
            break;
        case 1:
            d.payload_len = 1;
            break;
        case 2:
            d.bf = true;
            break;
        case 3:
            d.kind = UL_KIND_KEEPALIVE;
            break;
        case 4:
            d.payload_bit = 0;
            break;
        }
        add(&f->dec, d);
        add(&f->dec, msg_of(&t, 0, 0));
        f->dec.recs[1].payload_bit = d.payload_bit;
        f->dec.recs[1].payload_len = d.payload_len;
        memcpy(f->dec.recs[1].payload, d.payload, sizeof d.payload);
        f->dec.recs[1].bf = d.bf;
        f->dec.recs[1].kind = d.kind;
        score(f, NULL);
        const truth_stats_t *a = all(f);
        assert_int_equal(a->matched_frames, 0);
        assert_int_equal(a->wrong_frames, 1);
        assert_int_equal(a->wrong_messages, 1);
        assert_int_equal(a->false_frames, 0);
        assert_int_equal(a->missed_expected_frames, 1);
        assert_int_equal(f->score.dec[0].cls, TRUTH_DEC_WRONG);
        assert_int_equal(f->score.burst[0].miss, TRUTH_MISS_WRONG_FIELDS);
        assert_int_equal(f->score.burst[0].related, 0);
        assert_int_equal(f->score.msgs[0].miss, TRUTH_MISS_WRONG_FIELDS);
        char text[512];
        truth_describe_burst(&f->score, 0, text, sizeof text);
        assert_non_null(strstr(text, cases[c].what));
        assert_non_null(strstr(text, "instead of"));
        truth_describe_dec(&f->score, 0, text, sizeof text);
        assert_non_null(strstr(text, "wrong"));
        truth_expect_t e;
        truth_expect_default(&e);
        e.expect_all = true;
        assert_int_equal(truth_check(&f->score, &e, NULL, 0), 1);
        truth_expect_default(&e);
        e.max_wrong = 0;
        assert_int_equal(truth_check(&f->score, &e, NULL, 0), 1);
        e.max_wrong = 1;
        assert_int_equal(truth_check(&f->score, &e, NULL, 0), 0);
    }
}

/* Default time tolerance: 2 symbols + 10 ms (BR100 30 ms, BR600 13.33 ms), inclusive. */
static void test_time_tolerance_edges(void **state)
{
    fixture_t *f = *state;
    truth_config_t cfg;
    truth_config_default(&cfg);
    assert_float_equal(truth_time_tol_s(&cfg, 100), 0.030, 1e-12);
    assert_float_equal(truth_time_tol_s(&cfg, 600), 2.0 / 600 + 0.010, 1e-12);
    static const struct {
        int baud;
        double dt_s;
        bool match;
    } cases[] = {
        {100, 0.0299, true},  {100, -0.0299, true},  {100, 0.0301, false}, {100, -0.0301, false},
        {600, 0.01333, true}, {600, -0.01333, true}, {600, 0.0134, false}, {600, -0.0134, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        truth_set_free(&f->truth);
        truth_set_free(&f->dec);
        truth_rec_t t = burst(0xAABBCCDD, 100, 1, cases[c].baud, 3.0, 868.13e6, 15);
        add(&f->truth, t);
        add(&f->dec, frame_of(&t, cases[c].dt_s, 0, 0));
        score(f, NULL);
        if (cases[c].match) {
            assert_int_equal(f->score.dec[0].cls, TRUTH_DEC_MATCHED);
            assert_int_equal(all(f)->matched_frames, 1);
        } else {
            assert_int_equal(f->score.dec[0].cls, TRUTH_DEC_MISPLACED);
            assert_int_equal(f->score.burst[0].miss, TRUTH_MISS_MISPLACED);
            assert_int_equal(all(f)->misplaced_frames, 1);
            assert_int_equal(all(f)->false_frames, 0);
            char text[512];
            truth_describe_burst(&f->score, 0, text, sizeof text);
            assert_non_null(strstr(text, "ms"));
            assert_non_null(strstr(text, "tolerance"));
        }
    }
    /* A configured tolerance: 0 symbols + 5 ms. */
    truth_set_free(&f->truth);
    truth_set_free(&f->dec);
    truth_rec_t t = burst(0xAABBCCDD, 100, 1, 100, 3.0, 868.13e6, 15);
    add(&f->truth, t);
    add(&f->dec, frame_of(&t, 0.0049, 0, 0));
    add(&f->dec, frame_of(&t, 0.0051, 0, 0));
    cfg.time_tol_symbols = 0;
    cfg.time_tol_s = 0.005;
    score(f, &cfg);
    assert_int_equal(f->score.dec[0].cls, TRUTH_DEC_MATCHED);
    assert_int_equal(f->score.dec[1].cls, TRUTH_DEC_MISPLACED);
}

static void test_freq_tolerance_edges(void **state)
{
    fixture_t *f = *state;
    static const struct {
        double df_hz, tol_hz;
        bool match;
    } cases[] = {
        {299.9, 300, true},   {-299.9, 300, true}, {300.1, 300, false},
        {-300.1, 300, false}, {49, 50, true},      {51, 50, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        truth_set_free(&f->truth);
        truth_set_free(&f->dec);
        truth_rec_t t = burst(0x11223344, 5, 2, 600, 0.5, 868.2e6, 15);
        add(&f->truth, t);
        add(&f->dec, frame_of(&t, 0, cases[c].df_hz, 0));
        truth_config_t cfg;
        truth_config_default(&cfg);
        cfg.freq_tol_hz = cases[c].tol_hz;
        score(f, &cfg);
        assert_int_equal(f->score.dec[0].cls,
                         cases[c].match ? TRUTH_DEC_MATCHED : TRUTH_DEC_MISPLACED);
        if (cases[c].match)
            assert_float_equal(all(f)->freq_err_max_hz, fabs(cases[c].df_hz), 1e-6);
    }
}

/* A known rank must agree; rank 0 (jointly decoded) matches any rank. */
static void test_rank(void **state)
{
    fixture_t *f = *state;
    three_replicas(f, 0x0A0B0C0D, 3000, 10.0);
    truth_rec_t d = frame_of(&f->truth.recs[0], 0, 0, 0);
    d.rank = 2; /* at rank 1's time and carrier */
    add(&f->dec, d);
    d = frame_of(&f->truth.recs[2], 0, 0, 0);
    d.rank = 0;
    add(&f->dec, d);
    score(f, NULL);
    assert_int_equal(f->score.dec[0].cls, TRUTH_DEC_MISPLACED);
    char text[512];
    truth_describe_dec(&f->score, 0, text, sizeof text);
    assert_non_null(strstr(text, "rank 2 instead of"));
    assert_int_equal(f->score.dec[1].cls, TRUTH_DEC_MATCHED);
    assert_int_equal(f->score.burst[2].dec, 1);
    assert_int_equal(all(f)->matched_frames, 1);
}

/* A joint (rank 0) frame must not take the burst a ranked frame matches. */
static void test_joint_does_not_steal(void **state)
{
    fixture_t *f = *state;
    three_replicas(f, 0x0A0B0C0D, 3000, 10.0);
    truth_rec_t j = frame_of(&f->truth.recs[0], 0, 0, 0);
    j.rank = 0;
    add(&f->dec, j); /* first in the file */
    add(&f->dec, frame_of(&f->truth.recs[0], 0.002, 1, 0));
    score(f, NULL);
    assert_int_equal(f->score.dec[1].cls, TRUTH_DEC_MATCHED);
    assert_int_equal(f->score.dec[0].cls, TRUTH_DEC_DUPLICATE);
}

static void test_false_frames(void **state)
{
    fixture_t *f = *state;
    truth_rec_t t = burst(0x12345678, 10, 1, 100, 1.0, 868.13e6, 15);
    add(&f->truth, t);
    add(&f->dec, frame_of(&t, 0, 0, 0));
    truth_rec_t g = frame_of(&t, 5.0, 1000, 0);
    g.ep_id = 0x9ABCDEF0; /* CRC-valid garbage */
    add(&f->dec, g);
    g.mc = 11;
    g.ep_id = t.ep_id; /* right device, a counter that was never sent */
    add(&f->dec, g);
    truth_rec_t gm = msg_of(&t, 0, 0);
    gm.ep_id = 0x0BADF00D;
    add(&f->dec, gm);
    score(f, NULL);
    assert_int_equal(f->score.dec[0].cls, TRUTH_DEC_MATCHED);
    assert_int_equal(f->score.dec[1].cls, TRUTH_DEC_FALSE);
    assert_int_equal(f->score.dec[2].cls, TRUTH_DEC_FALSE);
    assert_int_equal(f->score.dec[3].cls, TRUTH_DEC_FALSE);
    assert_int_equal(all(f)->false_frames, 2);
    assert_int_equal(all(f)->false_messages, 1);
    assert_int_equal(f->score.stats[TRUTH_GROUP_BR100].false_frames, 2);
    char text[512];
    truth_describe_dec(&f->score, 1, text, sizeof text);
    assert_non_null(strstr(text, "9ABCDEF0"));
    assert_non_null(strstr(text, "false"));
    truth_expect_t e;
    truth_expect_default(&e);
    e.max_false = 0;
    char why[256];
    assert_int_equal(truth_check(&f->score, &e, why, sizeof why), 1);
    assert_non_null(strstr(why, "2 false frames"));
    e.max_false = 2;
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 0);
    e.max_false = 1;
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 1);
}

static void test_duplicates(void **state)
{
    fixture_t *f = *state;
    three_replicas(f, 0xCAFEBABE, 42, 0.5);
    const truth_rec_t *t = f->truth.recs;
    add(&f->dec, frame_of(&t[0], 0, 0, 0));
    add(&f->dec, frame_of(&t[0], 0.001, 2, 0)); /* the same burst decoded twice */
    add(&f->dec, msg_of(&t[0], 0, 0));
    add(&f->dec, msg_of(&t[1], 0, 0)); /* the message emitted twice (second from rank 2) */
    score(f, NULL);
    assert_int_equal(f->score.dec[0].cls, TRUTH_DEC_MATCHED);
    assert_int_equal(f->score.dec[1].cls, TRUTH_DEC_DUPLICATE);
    assert_int_equal(f->score.dec[2].cls, TRUTH_DEC_MATCHED);
    assert_int_equal(f->score.dec[3].cls, TRUTH_DEC_DUPLICATE);
    const truth_stats_t *a = all(f);
    assert_int_equal(a->duplicate_frames, 1);
    assert_int_equal(a->duplicate_messages, 1);
    assert_int_equal(a->matched_messages, 1);
    assert_int_equal(a->false_frames + a->false_messages, 0);
    char text[512];
    truth_describe_dec(&f->score, 3, text, sizeof text);
    assert_non_null(strstr(text, "already matched by decoded line 3"));
    truth_expect_t e;
    truth_expect_default(&e);
    e.max_duplicates = 0;
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 1);
    e.max_duplicates = 1;
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 0);
    e.expect_all = true; /* the message is there; frames 2 and 3 are not asked */
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 0);
    e.frames = true;
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 1);
}

/* Why a burst was missed: what was decoded at its time and carrier. */
static void test_miss_reasons(void **state)
{
    fixture_t *f = *state;
    add(&f->truth, burst(0x00000001, 1, 1, 600, 1.0, 868.10e6, 15)); /* nothing */
    add(&f->truth, burst(0x00000002, 2, 1, 600, 2.0, 868.11e6, 15)); /* CRC bad only */
    add(&f->truth, burst(0x00000003, 3, 1, 600, 3.0, 868.12e6, 15)); /* other frame */
    three_replicas(f, 0x00000004, 4, 10.0);                          /* frames, no message */
    truth_rec_t bad = frame_of(&f->truth.recs[1], 0.002, 10, 0);
    bad.has_fields = false;
    bad.crc_ok = false;
    add(&f->dec, bad);
    truth_rec_t other = burst(0x00000099, 9, 1, 600, 3.001, 868.12e6 + 50, 15);
    add(&f->truth, other); /* its collision partner, decoded */
    add(&f->dec, frame_of(&other, 0, 0, 0));
    add(&f->dec, frame_of(&f->truth.recs[3], 0, 0, 0));
    add(&f->dec, frame_of(&f->truth.recs[5], 0, 0, 0));
    score(f, NULL);
    assert_int_equal(f->score.burst[0].miss, TRUTH_MISS_NOTHING);
    assert_int_equal(f->score.burst[1].miss, TRUTH_MISS_CRC_BAD);
    assert_int_equal(f->score.burst[1].related, 0);
    assert_int_equal(f->score.burst[2].miss, TRUTH_MISS_OTHER_FRAME);
    assert_int_equal(f->score.burst[2].related, 1);
    assert_int_equal(f->score.burst[4].miss, TRUTH_MISS_NOTHING);
    assert_int_equal(all(f)->crc_bad_frames, 1);
    assert_int_equal(f->score.dec[0].cls, TRUTH_DEC_SKIPPED);
    char text[512];
    truth_describe_burst(&f->score, 2, text, sizeof text);
    assert_non_null(strstr(text, "ep_id 00000099 mc 9"));
    truth_describe_burst(&f->score, 1, text, sizeof text);
    assert_non_null(strstr(text, "bad CRC"));
    truth_describe_burst(&f->score, 0, text, sizeof text);
    assert_non_null(strstr(text, "no frame at that time"));
    /* messages: ordered by time; the 3-replica one has 2 frames but no message event */
    bool seen_frames_only = false;
    for (size_t i = 0; i < f->score.n_msgs; i++) {
        const truth_msg_t *m = &f->score.msgs[i];
        const truth_rec_t *t0 = &f->truth.recs[m->burst[0]];
        if (t0->ep_id == 4) {
            assert_int_equal(m->miss, TRUTH_MISS_FRAMES_ONLY);
            assert_int_equal(m->frames_matched, 2);
            truth_describe_msg(&f->score, i, text, sizeof text);
            assert_non_null(strstr(text, "2 of 3 frames decoded"));
            seen_frames_only = true;
        }
        if (t0->ep_id == 2)
            assert_int_equal(m->miss, TRUTH_MISS_CRC_BAD);
        if (i > 0)
            assert_true(f->truth.recs[f->score.msgs[i - 1].burst[0]].t_start_s <= t0->t_start_s);
    }
    assert_true(seen_frames_only);
}

/* A message event carries the time and carrier of its first replica received, which may
 * be rank 2 or 3. */
static void test_message_from_later_replica(void **state)
{
    fixture_t *f = *state;
    three_replicas(f, 0x55AA55AA, 77, 20.0);
    add(&f->dec, frame_of(&f->truth.recs[2], 0, 0, 0));
    add(&f->dec, msg_of(&f->truth.recs[2], 0.01, -20));
    truth_rec_t far = msg_of(&f->truth.recs[2], 0.5, 0);
    add(&f->dec, far);
    score(f, NULL);
    assert_int_equal(f->score.dec[1].cls, TRUTH_DEC_MATCHED);
    assert_int_equal(f->score.msgs[0].dec, 1);
    assert_int_equal(f->score.dec[2].cls, TRUTH_DEC_MISPLACED);
    assert_int_equal(all(f)->misplaced_messages, 1);
    assert_int_equal(all(f)->duplicate_messages, 0);
}

/* A message refused by the anti-replay window (a "replay" event, no "message"): missed,
 * with that reason; a replay event for a message that was delivered changes nothing. */
static void test_replay_event_reason(void **state)
{
    fixture_t *f = *state;
    add(&f->truth, burst(0xAFF7E1E7, 370, 1, 600, 14.12, 868.1e6, 14));
    add(&f->truth, burst(0xAFF7E1E7, 371, 1, 600, 15.51, 868.11e6, 14));
    add(&f->dec, frame_of(&f->truth.recs[0], 0, 0, 0));
    add(&f->dec, frame_of(&f->truth.recs[1], 0, 0, 0));
    add(&f->dec, msg_of(&f->truth.recs[1], 0, 0));
    truth_rec_t r = msg_of(&f->truth.recs[0], 0, 0);
    r.type = TRUTH_REC_REPLAY;
    add(&f->dec, r);
    r = msg_of(&f->truth.recs[1], 0, 0);
    r.type = TRUTH_REC_REPLAY;
    add(&f->dec, r);
    score(f, NULL);
    assert_int_equal(all(f)->replay_events, 2);
    assert_int_equal(f->score.stats[TRUTH_GROUP_BR600].replay_events, 2);
    assert_int_equal(all(f)->matched_messages, 1);
    assert_int_equal(f->score.dec[3].cls, TRUTH_DEC_SKIPPED);
    assert_int_equal(f->score.dec[3].truth, 0);
    assert_int_equal(f->score.msgs[0].miss, TRUTH_MISS_REPLAY);
    assert_int_equal(f->score.msgs[0].related, 3);
    assert_int_equal(f->score.msgs[1].miss, TRUTH_MISS_NONE);
    char text[512];
    truth_describe_msg(&f->score, 0, text, sizeof text);
    assert_non_null(strstr(text, "replay event only (decoded line 4)"));
    assert_string_equal(truth_miss_name(TRUTH_MISS_REPLAY), "replay");
}

/* Which truth is expected: Eb/N0 threshold, collided and interfered flags. */
static void test_expected_rules(void **state)
{
    fixture_t *f = *state;
    add(&f->truth, burst(0x10, 1, 1, 100, 1.0, 868.10e6, 5.0)); /* weak */
    add(&f->truth, burst(0x11, 1, 1, 100, 2.0, 868.11e6, 12.0));
    f->truth.recs[1].collided = true;
    add(&f->truth, burst(0x12, 1, 1, 600, 3.0, 868.12e6, 12.0));
    f->truth.recs[2].interfered = true;
    add(&f->truth, burst(0x13, 1, 1, 600, 4.0, 868.13e6, 8.0)); /* decoded */
    add(&f->dec, frame_of(&f->truth.recs[3], 0, 0, 0));
    add(&f->dec, msg_of(&f->truth.recs[3], 0, 0));
    truth_expect_t e;
    truth_expect_default(&e);
    e.expect_all = true;

    score(f, NULL); /* any Eb/N0: the weak one is expected */
    assert_int_equal(all(f)->expected_messages, 2);
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 1);

    truth_config_t cfg;
    truth_config_default(&cfg);
    cfg.min_ebn0_db = 8.0; /* inclusive */
    score(f, &cfg);
    assert_int_equal(all(f)->expected_messages, 1);
    assert_int_equal(all(f)->expected_frames, 1);
    assert_int_equal(all(f)->missed_frames, 3);
    assert_int_equal(all(f)->missed_expected_frames, 0);
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 0);
    assert_int_equal(f->score.stats[TRUTH_GROUP_BR100].expected_frames, 0);
    assert_int_equal(f->score.stats[TRUTH_GROUP_BR600].expected_frames, 1);

    cfg.expect_collided = true;
    score(f, &cfg);
    assert_int_equal(all(f)->expected_messages, 2);
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 1);
    cfg.expect_collided = false;
    cfg.expect_interfered = true;
    score(f, &cfg);
    assert_int_equal(all(f)->expected_messages, 2);
    assert_int_equal(f->score.stats[TRUTH_GROUP_BR600].missed_expected_messages, 1);

    /* --min-decoded: 1 of 2 expected */
    truth_expect_default(&e);
    e.min_decoded = 0.5;
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 0);
    e.min_decoded = 0.51;
    char why[256];
    assert_int_equal(truth_check(&f->score, &e, why, sizeof why), 1);
    assert_non_null(strstr(why, "1 of 2"));
}

/* A message with one replica collided is still expected: the others can carry it. */
static void test_message_expected_if_one_replica_clean(void **state)
{
    fixture_t *f = *state;
    three_replicas(f, 0x77, 1, 1.0);
    f->truth.recs[0].collided = true;
    score(f, NULL);
    assert_false(f->score.burst[0].expected);
    assert_true(f->score.burst[1].expected);
    assert_true(f->score.msgs[0].expected);
    assert_int_equal(all(f)->expected_frames, 2);
    assert_int_equal(all(f)->expected_messages, 1);
}

static void test_auth_expectation(void **state)
{
    fixture_t *f = *state;
    truth_rec_t t = burst(0x1, 1, 1, 100, 1.0, 868.1e6, 15);
    add(&f->truth, t);
    truth_rec_t d = frame_of(&t, 0, 0, 0);
    strcpy(d.auth, "unknown-device");
    add(&f->dec, d);
    truth_rec_t m = msg_of(&t, 0, 0);
    m.auth[0] = 0; /* absent */
    m.combined = true;
    add(&f->dec, m);
    score(f, NULL);
    assert_int_equal(all(f)->frames_auth_not_ok, 1);
    assert_int_equal(all(f)->messages_auth_not_ok, 1);
    assert_int_equal(all(f)->combined_messages, 1);
    truth_expect_t e;
    truth_expect_default(&e);
    e.expect_auth = true;
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 1);
}

static void test_grouping_by_baud(void **state)
{
    fixture_t *f = *state;
    add(&f->truth, burst(0x1, 1, 1, 100, 1.0, 868.10e6, 15));
    add(&f->truth, burst(0x2, 1, 1, 600, 1.0, 868.11e6, 15));
    add(&f->truth, burst(0x3, 1, 1, 600, 2.0, 868.12e6, 15));
    add(&f->dec, frame_of(&f->truth.recs[0], 0, 10, 0));
    add(&f->dec, frame_of(&f->truth.recs[1], 0, -2, 0));
    truth_rec_t g = frame_of(&f->truth.recs[2], 0, 0, 0);
    g.ep_id = 0x4;
    g.baud = 0; /* unknown baud, no truth: counts only in "all" */
    add(&f->dec, g);
    score(f, NULL);
    const truth_stats_t *b100 = &f->score.stats[TRUTH_GROUP_BR100];
    const truth_stats_t *b600 = &f->score.stats[TRUTH_GROUP_BR600];
    assert_int_equal(b100->truth_frames, 1);
    assert_int_equal(b600->truth_frames, 2);
    assert_int_equal(b600->missed_frames, 1);
    assert_float_equal(b100->freq_err_rms_hz, 10, 1e-9);
    assert_float_equal(b600->freq_err_rms_hz, 2, 1e-9);
    assert_float_equal(all(f)->freq_err_rms_hz, sqrt((100.0 + 4) / 2), 1e-9);
    assert_int_equal(all(f)->false_frames, 1);
    assert_int_equal(b100->false_frames + b600->false_frames, 0);
}

static void test_truth_too_many_bursts(void **state)
{
    fixture_t *f = *state;
    three_replicas(f, 0x99, 5, 1.0);
    add(&f->truth, burst(0x99, 5, 1, 100, 9.0, 868.1e6, 12));
    char err[256];
    assert_int_equal(truth_score(&f->score, &f->truth, &f->dec, NULL, err, sizeof err),
                     TRUTH_ERR_PARSE);
    assert_non_null(strstr(err, "more than 3 bursts"));
    assert_non_null(strstr(err, "00000099"));
    /* the synthesizer's message numbers keep two messages with the same ID+MC apart */
    for (size_t i = 0; i < 3; i++)
        f->truth.recs[i].message = 1;
    f->truth.recs[3].message = 2;
    score(f, NULL);
    assert_int_equal(f->score.n_msgs, 2);
    /* sets of the wrong kind */
    truth_score_free(&f->score);
    assert_int_equal(truth_score(&f->score, &f->truth, &f->truth, NULL, err, sizeof err),
                     TRUTH_ERR_ARG);
}

static void test_empty_sets(void **state)
{
    fixture_t *f = *state;
    score(f, NULL);
    assert_int_equal(all(f)->truth_frames, 0);
    assert_true(isnan(all(f)->freq_err_rms_hz));
    truth_expect_t e;
    truth_expect_default(&e);
    e.expect_all = true;
    e.max_false = 0;
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 0);
    e.max_freq_rms_hz = 10; /* nothing to measure: cannot hold */
    assert_int_equal(truth_check(&f->score, &e, NULL, 0), 1);
    json_object *o = truth_score_json(&f->score, -1);
    assert_non_null(o);
    json_object_put(o);
}

static void test_json_report(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 5; i++)
        add(&f->truth, burst(0x100 + (uint32_t)i, 1, 1, 600, 1.0 + i, 868.1e6, 15));
    add(&f->dec, frame_of(&f->truth.recs[0], 0, 7, 0));
    truth_rec_t g = frame_of(&f->truth.recs[0], 0, 7, 0);
    g.ep_id = 0xDEAD;
    add(&f->dec, g);
    score(f, NULL);
    json_object *o = truth_score_json(&f->score, 2);
    assert_non_null(o);
    json_object *v, *grp, *arr;
    assert_true(json_object_object_get_ex(o, "groups", &grp));
    assert_true(json_object_object_get_ex(grp, "br600", &v));
    json_object *x;
    assert_true(json_object_object_get_ex(v, "matched_frames", &x));
    assert_int_equal(json_object_get_int(x), 1);
    assert_true(json_object_object_get_ex(v, "freq_err_rms_hz", &x));
    assert_float_equal(json_object_get_double(x), 7.0, 1e-9);
    assert_true(json_object_object_get_ex(grp, "br100", &v));
    assert_true(json_object_object_get_ex(v, "freq_err_rms_hz", &x));
    assert_null(x); /* nothing measured: null */
    assert_true(json_object_object_get_ex(o, "missed_frames", &arr));
    assert_int_equal(json_object_array_length(arr), 2); /* 4 missed, listed 2 */
    json_object *e0 = json_object_array_get_idx(arr, 0);
    assert_true(json_object_object_get_ex(e0, "reason", &x));
    assert_string_equal(json_object_get_string(x), "nothing");
    assert_true(json_object_object_get_ex(e0, "truth_line", &x));
    assert_int_equal(json_object_get_int(x), 2);
    assert_true(json_object_object_get_ex(o, "false", &arr));
    assert_int_equal(json_object_array_length(arr), 1);
    assert_true(json_object_object_get_ex(json_object_array_get_idx(arr, 0), "ep_id", &x));
    assert_string_equal(json_object_get_string(x), "0000DEAD");
    assert_true(json_object_object_get_ex(o, "lists_truncated", &x));
    assert_true(json_object_get_boolean(x));
    json_object_put(o);
}

/* ---- parsing ----------------------------------------------------------------------- */

static const char synth_line[] =
    "{\"type\":\"burst\",\"t_start_s\":0.6010959,\"t_end_s\":0.7876362,\"freq_hz\":868067220.065,"
    "\"drift_hz_s\":12.665,\"ebn0_db\":22.428,\"rssi_dbfs\":-36.777,\"baud\":600,"
    "\"rank\":1,\"n_frames\":3,\"message\":0,\"ft\":\"06B\",\"bitstream\":\"AAAAA06BE9E8\","
    "\"ep_id\":\"AE69F34E\",\"mc\":2536,\"payload\":\"\",\"payload_bit\":1,\"bf\":true,"
    "\"kind\":\"app\",\"collided\":false,\"interfered\":true,\"explicit\":false}";

static void test_parse_truth_line(void **state)
{
    (void)state;
    truth_rec_t r;
    char skip, err[200];
    assert_int_equal(truth_parse_line(synth_line, true, &r, &skip, err, sizeof err), 1);
    assert_int_equal(r.type, TRUTH_REC_BURST);
    assert_int_equal(r.ep_id, 0xAE69F34E);
    assert_int_equal(r.mc, 2536);
    assert_true(r.one_bit);
    assert_int_equal(r.payload_bit, 1);
    assert_int_equal(r.payload_len, 0);
    assert_true(r.bf);
    assert_int_equal(r.kind, UL_KIND_APP);
    assert_int_equal(r.rank, 1);
    assert_int_equal(r.baud, 600);
    assert_float_equal(r.t_start_s, 0.6010959, 1e-12);
    assert_float_equal(r.freq_hz, 868067220.065, 1e-6);
    assert_float_equal(r.ebn0_db, 22.428, 1e-9);
    assert_true(r.interfered);
    assert_false(r.collided);
    assert_int_equal(r.n_frames, 3);
    assert_int_equal(r.message, 0);

    assert_int_equal(truth_parse_line("{\"type\":\"interferer\",\"interferer\":\"cw\"}", true, &r,
                                      &skip, err, sizeof err),
                     0);
    assert_int_equal(skip, 'i');
    assert_int_equal(truth_parse_line("   \r\n", true, &r, &skip, err, sizeof err), 0);
    assert_int_equal(skip, 'e');
    assert_int_equal(truth_parse_line("{\"type\":\"future\"}", true, &r, &skip, err, sizeof err),
                     0);
    assert_int_equal(skip, 's');
    /* a decoded frame line in a truth file is not a burst */
    assert_int_equal(truth_parse_line("{\"type\":\"frame\"}", true, &r, &skip, err, sizeof err), 0);
}

static void test_parse_decoded_lines(void **state)
{
    (void)state;
    truth_rec_t r;
    char skip, err[200];
    const char *frame =
        "{\"type\":\"frame\",\"format_version\":1,\"ep_id\":\"AE69F34E\",\"mc\":2536,"
        "\"bf\":false,\"kind\":\"keepalive\",\"payload\":\"3043BD9F1FA024\",\"rank\":2,"
        "\"ft\":\"06BF\",\"ft_distance\":0,\"crc_ok\":true,\"auth\":\"ok\",\"joint\":false,"
        "\"baud\":100,\"freq_hz\":868189581.3,\"drift_hz_s\":-5.98,\"rssi_dbfs\":-46.25,"
        "\"snr_db\":33.71,\"sample_idx\":751787,\"t_start_s\":0.734167,\"t_end_s\":2.492976}";
    assert_int_equal(truth_parse_line(frame, false, &r, &skip, err, sizeof err), 1);
    assert_int_equal(r.type, TRUTH_REC_FRAME);
    assert_true(r.has_fields);
    assert_int_equal(r.kind, UL_KIND_KEEPALIVE);
    assert_int_equal(r.payload_len, 7);
    assert_int_equal(r.payload[0], 0x30);
    assert_int_equal(r.payload[6], 0x24);
    assert_false(r.one_bit);
    assert_int_equal(r.rank, 2);
    assert_string_equal(r.auth, "ok");
    assert_float_equal(r.snr_db, 33.71, 1e-9);
    assert_true(isnan(r.ebn0_db));

    const char *bad_crc = "{\"type\":\"frame\",\"rank\":1,\"ft\":\"0611\",\"crc_ok\":false,"
                          "\"auth\":\"unchecked\",\"baud\":600,\"freq_hz\":868.1e6,"
                          "\"t_start_s\":1.5}";
    assert_int_equal(truth_parse_line(bad_crc, false, &r, &skip, err, sizeof err), 1);
    assert_false(r.has_fields);
    assert_false(r.crc_ok);

    const char *msg = "{\"type\":\"message\",\"ep_id\":\"0000ABCD\",\"mc\":0,\"bf\":true,"
                      "\"kind\":\"app\",\"payload_bit\":0,\"auth\":\"ok\",\"combined\":true,"
                      "\"nframes\":2,\"baud\":600,\"freq_hz\":868.1e6,\"t_start_s\":1.5,"
                      "\"replicas\":[{\"rank\":1},{\"rank\":2}]}";
    assert_int_equal(truth_parse_line(msg, false, &r, &skip, err, sizeof err), 1);
    assert_int_equal(r.type, TRUTH_REC_MESSAGE);
    assert_true(r.one_bit);
    assert_int_equal(r.payload_bit, 0);
    assert_true(r.combined);
    assert_int_equal(r.n_frames, 2);
    assert_int_equal(r.rank, 0);

    const char *replay = "{\"type\":\"replay\",\"ep_id\":\"0000ABCD\",\"mc\":0,\"bf\":false,"
                         "\"kind\":\"app\",\"payload\":\"\",\"freq_hz\":1,\"t_start_s\":1,"
                         "\"last_mc\":0}";
    assert_int_equal(truth_parse_line(replay, false, &r, &skip, err, sizeof err), 1);
    assert_int_equal(r.type, TRUTH_REC_REPLAY);
    assert_int_equal(r.payload_len, 0);

    assert_int_equal(truth_parse_line("{\"type\":\"stats\",\"samples_in\":5}", false, &r, &skip,
                                      err, sizeof err),
                     0);
    assert_int_equal(skip, 's');
}

/* Each malformed line gives an error naming the problem. */
static void test_parse_errors(void **state)
{
    (void)state;
#define T_OK "\"type\":\"burst\",\"t_start_s\":1,\"freq_hz\":868e6,\"baud\":100,\"rank\":1,"
#define F_OK "\"ep_id\":\"01020304\",\"mc\":1,\"bf\":false,\"kind\":\"app\""
    static const struct {
        bool is_truth;
        const char *line, *expect;
    } cases[] = {
        {true, "not json", "not JSON"},
        {true, "{\"type\":\"burst\"", "incomplete"},
        {true, "{\"type\":\"burst\"} x", "unexpected text"},
        {true, "[1,2]", "not a JSON object"},
        {true, "null", "not a JSON object"},
        {true, "{\"t_start_s\":1}", "missing \"type\""},
        {true, "{\"type\":5}", "\"type\" is not a string"},
        {true, "{" T_OK "\"mc\":1,\"bf\":false,\"kind\":\"app\",\"payload\":\"\"}",
         "missing \"ep_id\""},
        {true, "{" T_OK "\"ep_id\":\"1234567\",\"mc\":1,\"bf\":false,\"kind\":\"app\"}",
         "\"ep_id\" '1234567' is not 8 hex digits"},
        {true, "{" T_OK "\"ep_id\":\"0x123456\",\"mc\":1,\"bf\":false,\"kind\":\"app\"}",
         "not 8 hex digits"},
        {true, "{" T_OK "\"ep_id\":\"0102030G\",\"mc\":1,\"bf\":false,\"kind\":\"app\"}",
         "not 8 hex digits"},
        {true, "{" T_OK "\"ep_id\":\"01020304\",\"mc\":4096,\"bf\":false,\"kind\":\"app\"}",
         "\"mc\" 4096 is outside 0..4095"},
        {true, "{" T_OK "\"ep_id\":\"01020304\",\"mc\":\"1\",\"bf\":false,\"kind\":\"app\"}",
         "\"mc\" is not an integer"},
        {true, "{" T_OK "\"ep_id\":\"01020304\",\"mc\":1.5,\"bf\":false,\"kind\":\"app\"}",
         "\"mc\" is not an integer"},
        {true, "{" T_OK "\"ep_id\":\"01020304\",\"mc\":1,\"bf\":0,\"kind\":\"app\"}",
         "\"bf\" is not true or false"},
        {true, "{" T_OK "\"ep_id\":\"01020304\",\"mc\":1,\"bf\":false,\"kind\":\"data\"}",
         "\"kind\" 'data'"},
        {true, "{" T_OK F_OK "}", "missing \"payload\""},
        {true, "{" T_OK F_OK ",\"payload\":\"ABC\"}", "\"payload\" 'ABC' is not hex"},
        {true, "{" T_OK F_OK ",\"payload\":\"12 34\"}", "is not hex"},
        {true, "{" T_OK F_OK ",\"payload\":\"00112233445566778899AABBCC\"}", "at most 12 bytes"},
        {true, "{" T_OK F_OK ",\"payload\":\"01\",\"payload_bit\":1}", "both"},
        {true, "{" T_OK F_OK ",\"payload_bit\":2}", "\"payload_bit\" 2 is outside 0..1"},
        {true,
         "{\"type\":\"burst\",\"t_start_s\":1,\"freq_hz\":868e6,\"baud\":300,\"rank\":1," F_OK
         ",\"payload\":\"\"}",
         "\"baud\" 300 is not 100 or 600"},
        {true,
         "{\"type\":\"burst\",\"t_start_s\":1,\"freq_hz\":868e6,\"baud\":100,\"rank\":4," F_OK
         ",\"payload\":\"\"}",
         "\"rank\" 4 is outside 1..3"},
        {true,
         "{\"type\":\"burst\",\"t_start_s\":\"1\",\"freq_hz\":868e6,\"baud\":100,\"rank\":1," F_OK
         ",\"payload\":\"\"}",
         "\"t_start_s\" is not a number"},
        {true,
         "{\"type\":\"burst\",\"t_start_s\":1,\"baud\":100,\"rank\":1," F_OK ",\"payload\":\"\"}",
         "missing \"freq_hz\""},
        {true, "{" T_OK F_OK ",\"payload\":\"\",\"collided\":\"no\"}",
         "\"collided\" is not true or false"},
        {false, "{\"type\":\"frame\"," F_OK ",\"payload\":\"\",\"t_start_s\":1}",
         "missing \"freq_hz\""},
        {false, "{\"type\":\"frame\"," F_OK ",\"payload\":\"\",\"freq_hz\":1}",
         "missing \"t_start_s\""},
        {false,
         "{\"type\":\"frame\"," F_OK ",\"payload\":\"\",\"freq_hz\":1,\"t_start_s\":1,"
         "\"rank\":5}",
         "\"rank\" 5 is outside 0..3"},
        {false,
         "{\"type\":\"frame\"," F_OK ",\"payload\":\"\",\"freq_hz\":1,\"t_start_s\":1,"
         "\"baud\":250}",
         "\"baud\" 250"},
        {false, "{\"type\":\"message\",\"mc\":1,\"freq_hz\":1,\"t_start_s\":1}",
         "message event without \"ep_id\""},
        {false,
         "{\"type\":\"frame\"," F_OK ",\"payload\":\"\",\"freq_hz\":1,\"t_start_s\":1,"
         "\"crc_ok\":\"yes\"}",
         "\"crc_ok\" is not true or false"},
        {false,
         "{\"type\":\"frame\"," F_OK ",\"payload\":\"\",\"freq_hz\":1,\"t_start_s\":1,"
         "\"auth\":\"a-very-long-auth-status\"}",
         "\"auth\""},
    };
#undef T_OK
#undef F_OK
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        truth_rec_t r;
        char err[200] = "";
        int rc = truth_parse_line(cases[c].line, cases[c].is_truth, &r, NULL, err, sizeof err);
        if (rc != TRUTH_ERR_PARSE || !strstr(err, cases[c].expect))
            fail_msg("case %zu '%s': rc %d err '%s', expected '%s'", c, cases[c].line, rc, err,
                     cases[c].expect);
    }
}

/* Reading a stream: errors name the file and the line; earlier records are kept. */
static void test_read_line_numbers(void **state)
{
    (void)state;
    char text[4096];
    snprintf(text, sizeof text,
             "%s\n"
             "\n"
             "{\"type\":\"interferer\",\"interferer\":\"cw\",\"t_start_s\":0,\"freq_hz\":1}\n"
             "%s\n"
             "{\"type\":\"burst\",\"t_start_s\":1,\"freq_hz\":\"x\"}\n"
             "%s\n",
             synth_line, synth_line, synth_line);
    FILE *fp = fmemopen(text, strlen(text), "r");
    assert_non_null(fp);
    truth_set_t set = {0};
    char err[256];
    int rc = truth_set_read(&set, fp, "cap.truth.jsonl", true, err, sizeof err);
    fclose(fp);
    assert_int_equal(rc, TRUTH_ERR_PARSE);
    assert_non_null(strstr(err, "cap.truth.jsonl:5: missing \"ep_id\""));
    assert_int_equal(set.n, 2);
    assert_int_equal(set.recs[0].line, 1);
    assert_int_equal(set.recs[1].line, 4);
    assert_int_equal(set.n_interferers, 1);
    truth_set_free(&set);

    /* a NUL byte inside a line */
    static const char nul[] = "{\"type\":\"stats\"}\n{\"type\"\0:1}\n";
    fp = fmemopen((void *)nul, sizeof nul - 1, "r");
    assert_non_null(fp);
    rc = truth_set_read(&set, fp, "dec.jsonl", false, err, sizeof err);
    fclose(fp);
    assert_int_equal(rc, TRUTH_ERR_PARSE);
    assert_non_null(strstr(err, "dec.jsonl:2: NUL byte"));
    assert_int_equal(set.n_skipped, 1);
    truth_set_free(&set);

    rc = truth_set_load(&set, "/nonexistent/dir/x.truth.jsonl", true, err, sizeof err);
    assert_int_equal(rc, TRUTH_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/dir/x.truth.jsonl: cannot open"));
    truth_set_free(&set);
    assert_string_equal(truth_strerror(TRUTH_ERR_PARSE), "malformed input");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exact_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_tolerance_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freq_tolerance_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rank, setup, teardown),
        cmocka_unit_test_setup_teardown(test_joint_does_not_steal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_false_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_miss_reasons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_from_later_replica, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_event_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expected_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_expected_if_one_replica_clean, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_auth_expectation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grouping_by_baud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truth_too_many_bursts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_sets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_report, setup, teardown),
        cmocka_unit_test(test_parse_truth_line),
        cmocka_unit_test(test_parse_decoded_lines),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_read_line_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
