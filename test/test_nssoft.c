/* test_nssoft: soft combining across stations (nssoft.h). Licence: MIT. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nssoft.h"
#include "prng.h"
#include "ulcode.h"
#include "uldecode.h"
#include "ulframe.h"

static const uint8_t key[UL_KEY_BYTES] = {0x47, 0x9a, 0x1c, 0x03, 0x5e, 0x60, 0xb2, 0x7d,
                                          0x18, 0xc4, 0x2f, 0x91, 0x0a, 0xe3, 0x55, 0x6b};

typedef struct {
    int calls;
    nssoft_result_t last;
    nssoft_result_t all[8]; /* the first 8 since the last reset of calls */
} sink_t;

static void on_decoded(const nssoft_result_t *r, void *user)
{
    sink_t *k = user;
    if (k->calls >= 0 && k->calls < 8)
        k->all[k->calls] = *r;
    k->calls++;
    k->last = *r;
}

/* The air bits of msg's rank frame from the first FT bit: bits[] 0/1, returns the count. */
static size_t air_bits(const ul_message_t *msg, int rank, uint8_t *bits, size_t cap)
{
    uint8_t frame[64];
    int len = ul_frame_encode(msg, key, rank, frame, sizeof frame);
    assert_true(len > 4);
    size_t n = (size_t)len * 8 - 19;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++)
        bits[i] = (uint8_t)ul_bit_get(frame, i + 19);
    return n;
}

static ul_message_t message(uint32_t ep_id, uint16_t mc, uint8_t fill)
{
    ul_message_t m;
    memset(&m, 0, sizeof m);
    m.ep_id = ep_id;
    m.mc = mc;
    m.kind = UL_KIND_APP;
    m.payload_len = 8;
    for (size_t i = 0; i < m.payload_len; i++)
        m.payload[i] = (uint8_t)(fill + 37 * i);
    return m;
}

/* One station's soft frame of bits: LLR 2 (s + n) / sigma^2, s = +-1, n ~ N(0, sigma^2). */
static void soft_of(rx_softframe_t *sf, const uint8_t *bits, size_t n, double sigma, prng_t *rng,
                    double freq_hz, int baud)
{
    memset(sf, 0, sizeof *sf);
    sf->ft_readable = true;
    sf->baud = baud;
    sf->symbol_rate = baud;
    sf->freq_hz = freq_hz;
    sf->snr_db = 10 * log10(1 / (2 * sigma * sigma));
    sf->rssi_dbfs = -60;
    sf->nsoft = n;
    for (size_t i = 0; i < n; i++) {
        double s = bits[i] ? 1.0 : -1.0;
        sf->soft[i] = (float)(2 * (s + sigma * prng_gauss(rng)) / (sigma * sigma));
    }
}

static bool decodes_alone(const rx_softframe_t *sf)
{
    uldecode_result_t r;
    return uldecode_frame(sf->soft, sf->nsoft, UL_FT_DEFAULT_MAX_DISTANCE, &r) == 0;
}

/* Two stations each too weak to decode an uncoded (rank 1) frame alone decode it together;
 * the frame is the one sent, both stations are members. */
static void test_two_stations_combine(void **state)
{
    (void)state;
    sink_t sink = {0};
    nssoft_t *s = nssoft_create(NULL, on_decoded, &sink);
    assert_non_null(s);
    prng_t rng;
    prng_seed(&rng, 11, 0);
    uint8_t bits[RX_SOFT_MAX];
    int trials = 40, alone = 0, together = 0;
    for (int t = 0; t < trials; t++) {
        ul_message_t m = message(0x00A1B2C3u + (uint32_t)t, (uint16_t)(t * 7), (uint8_t)t);
        size_t n = air_bits(&m, 1, bits, sizeof bits);
        rx_softframe_t a, b;
        double sigma = 0.5; /* raw BER 2.3 %: a 125-bit frame error-free 1 time in 18 */
        soft_of(&a, bits, n, sigma, &rng, 868.130e6 + 20 * t, 100);
        soft_of(&b, bits, n, sigma, &rng, 868.130e6 + 20 * t + 1500.0, 100);
        alone += decodes_alone(&a) + decodes_alone(&b);
        double t0 = 1.8e9 + 20.0 * t;
        int before = sink.calls;
        assert_int_equal(nssoft_push(s, "st-a", &a, t0, t0 + 1), 0);
        int rc = nssoft_push(s, "st-b", &b, t0 + 0.12, t0 + 1.5);
        assert_true(rc == 0 || rc == 1);
        if (rc == 1) {
            together++;
            assert_int_equal(sink.calls, before + 1);
            assert_true(sink.last.frame.crc_ok);
            assert_int_equal(sink.last.frame.rank, 1);
            assert_int_equal(sink.last.frame.msg.ep_id, m.ep_id);
            assert_int_equal(sink.last.frame.msg.mc, m.mc);
            assert_memory_equal(sink.last.frame.msg.payload, m.payload, m.payload_len);
            assert_int_equal(sink.last.nmembers, 2);
            assert_int_equal(sink.last.ncombined, 2);
            assert_string_equal(sink.last.members[0].station_id, "st-b");
            assert_string_equal(sink.last.members[1].station_id, "st-a");
            assert_true(fabs(sink.last.members[1].t_s - t0) < 1e-6);
        }
    }
    print_message("alone %d/%d, together %d/%d\n", alone, 2 * trials, together, trials);
    assert_true(alone <= 12);
    assert_true(together >= 20);
    nssoft_stats_t st;
    nssoft_get_stats(s, &st);
    assert_int_equal(st.softframes_in, 2 * trials);
    assert_int_equal(st.groups_tried, trials);
    assert_int_equal(st.frames_decoded, (uint64_t)together);
    nssoft_destroy(s);
}

/* Coded replicas (rank 3): a pair that fails together is completed by a third station;
 * a fourth station of the decoded burst is reported alone (late member). */
static void test_third_station_completes(void **state)
{
    (void)state;
    sink_t sink = {0};
    nssoft_t *s = nssoft_create(NULL, on_decoded, &sink);
    prng_t rng;
    prng_seed(&rng, 12, 0);
    uint8_t bits[RX_SOFT_MAX];
    int completed = 0, late = 0, trials = 30;
    for (int t = 0; t < trials; t++) {
        ul_message_t m = message(0x10000000u + (uint32_t)t, (uint16_t)t, 0xFF);
        size_t n = air_bits(&m, 3, bits, sizeof bits);
        double t0 = 1.8e9 + 30.0 * t;
        rx_softframe_t v[4];
        for (int k = 0; k < 4; k++)
            soft_of(&v[k], bits, n, 0.62, &rng, 868.2e6 - 50 * k, 600);
        const char *ids[4] = {"a", "b", "c", "d"};
        int rc0 = nssoft_push(s, ids[0], &v[0], t0, t0 + 1);
        int rc1 = nssoft_push(s, ids[1], &v[1], t0 + 0.01, t0 + 1);
        if (rc0 != 0 || rc1 != 0)
            continue; /* the pair alone was enough this time */
        int calls = sink.calls;
        if (nssoft_push(s, ids[2], &v[2], t0 - 0.01, t0 + 2) != 1)
            continue;
        completed++;
        assert_int_equal(sink.calls, calls + 1);
        assert_int_equal(sink.last.ncombined, 3);
        assert_int_equal(sink.last.frame.rank, 3);
        assert_int_equal(sink.last.frame.msg.ep_id, m.ep_id);
        assert_int_equal(nssoft_push(s, ids[3], &v[3], t0 + 0.02, t0 + 3), 1);
        assert_int_equal(sink.last.nmembers, 1);
        assert_int_equal(sink.last.ncombined, 1);
        assert_string_equal(sink.last.members[0].station_id, "d");
        assert_int_equal(sink.last.frame.msg.ep_id, m.ep_id);
        late++;
    }
    print_message("completed by a third station: %d/%d\n", completed, trials);
    assert_true(completed >= 5);
    nssoft_stats_t st;
    nssoft_get_stats(s, &st);
    assert_int_equal(st.late_members, (uint64_t)late);
    nssoft_destroy(s);
}

/* Replicas heard by different stations, each failing alone: rank 1 at one station, rank 3
 * at another (and in half of the trials rank 2 at a third) are decoded jointly; a burst
 * of another message in between, or a rank 3 on air before its rank 1, never becomes a
 * member. */
static void test_replicas_across_stations(void **state)
{
    (void)state;
    sink_t sink = {0};
    nssoft_t *s = nssoft_create(NULL, on_decoded, &sink);
    prng_t rng;
    prng_seed(&rng, 15, 0);
    uint8_t b1[RX_SOFT_MAX], b2[RX_SOFT_MAX], b3[RX_SOFT_MAX], bo[RX_SOFT_MAX];
    int trials = 20, joint = 0, alone = 0, full = 0;
    for (int t = 0; t < trials; t++) {
        ul_message_t m = message(0x20000000u + (uint32_t)t, (uint16_t)(3 * t), (uint8_t)(t * 5));
        ul_message_t other = message(0x30000000u + (uint32_t)t, 1, 0x5A);
        size_t n = air_bits(&m, 1, b1, sizeof b1);
        air_bits(&m, 2, b2, sizeof b2);
        air_bits(&m, 3, b3, sizeof b3);
        air_bits(&other, 2, bo, sizeof bo);
        double t0 = 1.8e9 + 40.0 * t, sigma = 0.53; /* raw BER 3 % */
        rx_softframe_t r1, r2, r3, ro;
        soft_of(&r1, b1, n, sigma, &rng, 868.11e6, 100);
        soft_of(&r2, b2, n, sigma, &rng, 868.15e6, 100);
        soft_of(&r3, b3, n, sigma, &rng, 868.19e6, 100);
        soft_of(&ro, bo, n, 0.3, &rng, 868.17e6, 100);
        alone += decodes_alone(&r1) + decodes_alone(&r3);
        /* the other message's rank 2 (clean, but CRC-damaged) comes first: it is
         * consistent with nothing */
        ro.soft[60] = -ro.soft[60];
        ro.soft[61] = -ro.soft[61];
        assert_int_equal(nssoft_push(s, "x", &ro, t0 + 0.9, t0 + 1), 0);
        /* a rank 3 of this message that would be on air before its rank 1: out of order */
        rx_softframe_t early = r3;
        assert_int_equal(nssoft_push(s, "y", &early, t0 - 2.0, t0 + 1), 0);
        sink.calls = 0;
        assert_int_equal(nssoft_push(s, "a", &r1, t0, t0 + 2), 0);
        bool with2 = t % 2 == 0;
        if (with2)
            nssoft_push(s, "c", &r2, t0 + 1.0, t0 + 3); /* 1: decoded with a's rank 1 */
        nssoft_push(s, "b", &r3, t0 + 2.0, t0 + 4);
        if (sink.calls == 0)
            continue;
        joint++;
        /* one joint decoding, then at most the rank 3 as a late member; every station that
         * sent a replica whose FT reads right is credited once, with its rank */
        assert_true(sink.calls <= 2);
        assert_int_equal(sink.all[0].frame.rank, 0);
        bool credited[3] = {false, false, false};
        for (int c = 0; c < sink.calls; c++) {
            const nssoft_result_t *r = &sink.all[c];
            assert_int_equal(r->frame.msg.ep_id, m.ep_id);
            assert_int_equal(r->frame.msg.mc, m.mc);
            for (size_t k = 0; k < r->nmembers; k++) {
                const nssoft_member_t *mb = &r->members[k];
                assert_true(strcmp(mb->station_id, "x") != 0 && strcmp(mb->station_id, "y") != 0);
                int want = !strcmp(mb->station_id, "a") ? 1 : !strcmp(mb->station_id, "c") ? 2 : 3;
                assert_int_equal(mb->rank, want);
                assert_false(credited[want - 1]);
                credited[want - 1] = true;
            }
        }
        full += credited[0] && credited[2] && (!with2 || credited[1]);
    }
    print_message("alone %d/%d, jointly across stations %d/%d, every station credited %d\n",
                  alone, 2 * trials, joint, trials, full);
    assert_true(alone <= 3);
    assert_true(joint >= 15);
    assert_true(full >= joint - 4);
    nssoft_stats_t st;
    nssoft_get_stats(s, &st);
    assert_int_equal(st.frames_joint, (uint64_t)joint);
    nssoft_destroy(s);
}

/* What is not the same burst is never summed: another message at the same time and
 * carrier (signs agree on ~50 %), the same burst from one station twice, a burst too far
 * in time or carrier, the other baud. */
static void test_not_the_same_burst(void **state)
{
    (void)state;
    sink_t sink = {0};
    nssoft_config_t cfg = {.time_tol_s = 0.1, .freq_tol_hz = 1000};
    nssoft_t *s = nssoft_create(&cfg, on_decoded, &sink);
    prng_t rng;
    prng_seed(&rng, 13, 0);
    uint8_t bits[RX_SOFT_MAX], other[RX_SOFT_MAX];
    ul_message_t m = message(0x00C0FFEEu, 100, 3), o = message(0x00BEEF00u, 200, 9);
    size_t n = air_bits(&m, 1, bits, sizeof bits);
    size_t no = air_bits(&o, 1, other, sizeof other);
    assert_int_equal(n, no);
    double t0 = 1.8e9, f0 = 868.1e6;
    rx_softframe_t a, x;
    soft_of(&a, bits, n, 0.1, &rng, f0, 100);
    a.soft[20] = -0.3f * a.soft[20]; /* one bit wrong (weakly): not decodable alone */
    assert_false(decodes_alone(&a));
    assert_int_equal(nssoft_push(s, "a", &a, t0, t0), 0);
    soft_of(&x, other, n, 0.1, &rng, f0, 100);
    x.soft[20] = -x.soft[20];
    assert_int_equal(nssoft_push(s, "b", &x, t0, t0), 0); /* another message */
    assert_int_equal(nssoft_push(s, "a", &a, t0, t0), 0); /* same station */
    assert_int_equal(nssoft_push(s, "c", &a, t0 + 0.2, t0), 0);
    rx_softframe_t d;
    soft_of(&d, bits, n, 0.1, &rng, f0 + 900, 100);
    d.soft[40] = -0.3f * d.soft[40]; /* another bit wrong at another station */
    assert_false(decodes_alone(&d));
    assert_int_equal(nssoft_push(s, "d", &d, t0 + 0.09, t0), 1); /* but this one is it */
    nssoft_stats_t st;
    nssoft_get_stats(s, &st);
    assert_int_equal(st.groups_tried, 1);
    nssoft_destroy(s);

    sink = (sink_t){0};
    s = nssoft_create(&cfg, on_decoded, &sink);
    rx_softframe_t fa = a, fb = a;
    fb.freq_hz = f0 + 1200;
    assert_int_equal(nssoft_push(s, "a", &fa, t0, t0), 0);
    assert_int_equal(nssoft_push(s, "b", &fb, t0, t0), 0);
    fb.freq_hz = f0;
    fb.baud = 600;
    assert_int_equal(nssoft_push(s, "c", &fb, t0, t0), 0);
    nssoft_get_stats(s, &st);
    assert_int_equal(st.groups_tried, 0);
    assert_int_equal(sink.calls, 0);
    nssoft_destroy(s);
}

/* Memory is bounded, old soft frames leave the window, and hostile input is refused. */
/* The registry of test_lone_station_chase: one device, and how often it was asked. */
typedef struct {
    uint32_t ep_id;
    int lookups;
} registry_t;

static int registry_key_of(uint32_t ep_id, uint8_t k[UL_KEY_BYTES], void *user)
{
    registry_t *r = user;
    r->lookups++;
    if (ep_id != r->ep_id)
        return 0;
    memcpy(k, key, UL_KEY_BYTES);
    return 1;
}

/* A lone station's burst with one wrong symbol (two adjacent weak wrong bits) fails its
 * CRC; with the registry's keys the core corrects it (chase decoder), for every rank;
 * without them, or for a device the registry does not know, it stays pending. Noise never
 * passes. */
static void test_lone_station_chase(void **state)
{
    (void)state;
    registry_t reg = {0};
    nssoft_config_t keyed = {.key_of = registry_key_of, .key_user = &reg};
    sink_t sink = {0}, plain_sink = {0};
    nssoft_t *s = nssoft_create(&keyed, on_decoded, &sink);
    nssoft_t *plain = nssoft_create(NULL, on_decoded, &plain_sink);
    assert_non_null(s);
    assert_non_null(plain);
    uint8_t bits[RX_SOFT_MAX];
    for (int rank = 1; rank <= 3; rank++) {
        ul_message_t m = message(0x00C0FFEEu + (uint32_t)rank, (uint16_t)(100 + rank), 9);
        reg.ep_id = m.ep_id;
        size_t n = air_bits(&m, rank, bits, sizeof bits);
        rx_softframe_t sf;
        memset(&sf, 0, sizeof sf);
        sf.ft_readable = true;
        sf.baud = sf.symbol_rate = 100;
        sf.freq_hz = 868.130e6 + 5000 * rank;
        sf.nsoft = n;
        for (size_t i = 0; i < n; i++)
            sf.soft[i] = bits[i] ? 4.0f : -4.0f;
        size_t at = UL_FT_BITS + 40 + 7 * (size_t)rank;
        sf.soft[at] = sf.soft[at] > 0 ? -0.5f : 0.5f;
        sf.soft[at + 1] = sf.soft[at + 1] > 0 ? -0.5f : 0.5f;
        assert_false(decodes_alone(&sf));
        double t0 = 1.8e9 + 30.0 * rank;
        assert_int_equal(nssoft_push(plain, "st-a", &sf, t0, t0 + 1), 0);
        assert_int_equal(nssoft_push(s, "st-a", &sf, t0, t0 + 1), 1);
        assert_true(sink.last.frame.crc_ok);
        assert_int_equal(sink.last.frame.msg.ep_id, m.ep_id);
        assert_int_equal(sink.last.frame.msg.mc, m.mc);
        assert_memory_equal(sink.last.frame.msg.payload, m.payload, m.payload_len);
        assert_int_equal(sink.last.nmembers, 1);
        assert_int_equal(sink.last.members[0].rank, rank);
        /* the same burst of a device the registry does not know: kept, not decoded */
        reg.ep_id = 1;
        sf.freq_hz += 20000;
        assert_int_equal(nssoft_push(s, "st-b", &sf, t0 + 10, t0 + 11), 0);
    }
    nssoft_stats_t st;
    nssoft_get_stats(s, &st);
    assert_int_equal(st.frames_corrected, 3);
    assert_int_equal(st.frames_decoded, 3);
    assert_int_equal(sink.calls, 3);
    assert_int_equal(plain_sink.calls, 0);
    nssoft_get_stats(plain, &st);
    assert_int_equal(st.frames_corrected, 0);
    /* noise under a readable FT: the registry is asked only when a pattern passes the CRC
       (about 256 x 2^-16 per burst), and noise never carries the UL-AUTH */
    prng_t rng;
    prng_seed(&rng, 5, 0);
    ul_message_t m = message(0x00C0FFEEu, 1, 9);
    reg.ep_id = m.ep_id;
    size_t n = air_bits(&m, 1, bits, sizeof bits);
    int lookups0 = reg.lookups;
    for (int t = 0; t < 200; t++) {
        rx_softframe_t sf;
        soft_of(&sf, bits, n, 0.5, &rng, 868.0e6 + 3000.0 * t, 100);
        for (size_t i = UL_FT_BITS; i < n; i++)
            sf.soft[i] = (float)(4 * prng_gauss(&rng));
        double t0 = 1.9e9 + 30.0 * t;
        assert_int_equal(nssoft_push(s, "st-n", &sf, t0, t0 + 1), 0);
    }
    assert_true(reg.lookups - lookups0 < 20);
    assert_int_equal(sink.calls, 3);
    nssoft_destroy(s);
    nssoft_destroy(plain);
}

static void test_bounds_and_hostile_input(void **state)
{
    (void)state;
    sink_t sink = {0};
    nssoft_config_t cfg = {.max_pending = 4, .window_s = 5};
    nssoft_t *s = nssoft_create(&cfg, on_decoded, &sink);
    prng_t rng;
    prng_seed(&rng, 14, 0);
    uint8_t bits[RX_SOFT_MAX];
    ul_message_t m = message(1, 1, 1);
    size_t n = air_bits(&m, 1, bits, sizeof bits);
    rx_softframe_t a;
    soft_of(&a, bits, n, 0.1, &rng, 868.1e6, 100);
    a.soft[3] = -a.soft[3];
    for (int i = 0; i < 10; i++) /* one station, bursts 1 s apart: nothing to combine */
        assert_int_equal(nssoft_push(s, "a", &a, 1.8e9 + i, 1.8e9 + i), 0);
    nssoft_stats_t st;
    nssoft_get_stats(s, &st);
    assert_int_equal(st.dropped, 6);
    nssoft_expire(s, 1.8e9 + 100);
    nssoft_get_stats(s, &st);
    assert_int_equal(st.expired, 4);

    rx_softframe_t bad = a;
    bad.soft[5] = NAN;
    assert_int_equal(nssoft_push(s, "b", &bad, 1.8e9, 1.8e9), -1);
    bad = a;
    bad.baud = 300;
    assert_int_equal(nssoft_push(s, "b", &bad, 1.8e9, 1.8e9), -1);
    bad = a;
    bad.nsoft = 5;
    assert_int_equal(nssoft_push(s, "b", &bad, 1.8e9, 1.8e9), -1);
    bad.nsoft = RX_SOFT_MAX + 1;
    assert_int_equal(nssoft_push(s, "b", &bad, 1.8e9, 1.8e9), -1);
    assert_int_equal(nssoft_push(s, "", &a, 1.8e9, 1.8e9), -1);
    char longid[NSSOFT_STATION_MAX + 1];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    assert_int_equal(nssoft_push(s, longid, &a, 1.8e9, 1.8e9), -1);
    assert_int_equal(nssoft_push(s, "b", &a, NAN, 1.8e9), -1);
    assert_int_equal(nssoft_push(s, "b", NULL, 1.8e9, 1.8e9), -1);
    assert_int_equal(nssoft_push(NULL, "b", &a, 1.8e9, 1.8e9), -1);
    nssoft_get_stats(s, &st);
    assert_int_equal(st.softframes_bad, 8);
    assert_null(nssoft_create(NULL, NULL, NULL));
    nssoft_config_t neg = {.time_tol_s = -1};
    assert_null(nssoft_create(&neg, on_decoded, &sink));
    nssoft_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_stations_combine),
        cmocka_unit_test(test_third_station_completes),
        cmocka_unit_test(test_replicas_across_stations),
        cmocka_unit_test(test_not_the_same_burst),
        cmocka_unit_test(test_bounds_and_hostile_input),
        cmocka_unit_test(test_lone_station_chase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
