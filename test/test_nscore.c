/* test_nscore: dedup across replicas and stations, central anti-replay, AUTH at the core,
 * idempotent resends, two instances on one database, the downlink decision. SQLite.
 * Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hexutil.h"
#include "nscore.h"
#include "nsdb.h"
#include "nsreg.h"
#include "nstest.h"
#include "publisher.h"
#include "ulframe.h"
#include "testutil.h"

static char dir[256];
static const uint8_t KEY[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};
#define EP 0xFEDCBA98u
#define T0 1764158400.0

static int setup(void **state)
{
    (void)state;
    return test_tmpdir_create(dir, sizeof dir, "test_nscore");
}

static int teardown(void **state)
{
    (void)state;
    return test_tmpdir_remove(dir);
}

/* Events a COMMITTED hook saw, as "topic ep_id mc nstations". */
typedef struct {
    char lines[64][96];
    int n;
    int messages, updates, replays, decided;
} seen_t;

static int record(const nscore_event_t *ev, nsdb_t *db, void *user)
{
    (void)db;
    seen_t *s = user;
    json_object *st = NULL;
    int nst = json_object_object_get_ex(ev->json, "stations", &st)
                  ? (int)json_object_array_length(st)
                  : -1;
    if (s->n < 64)
        snprintf(s->lines[s->n++], sizeof s->lines[0], "%s %08X %u %d", ev->topic,
                 (unsigned)ev->ep_id, ev->mc, nst);
    s->messages += ev->type == NSCORE_EV_MESSAGE;
    s->updates += ev->type == NSCORE_EV_UPDATE;
    s->replays += ev->type == NSCORE_EV_REPLAY;
    s->decided += ev->type == NSCORE_EV_DOWNLINK;
    return 0;
}

static nsdb_t *open_db(const char *name, int fresh)
{
    char url[512], err[256] = "";
    snprintf(url, sizeof url, "%s/%s", dir, name);
    if (fresh)
        remove(url);
    nsdb_t *db = nsdb_open(url, 0, err, sizeof err);
    if (!db)
        fail_msg("%s", err);
    return db;
}

static void add_device(nsdb_t *db, uint32_t ep, nsreg_dl_mode_t mode)
{
    nsreg_device_t d;
    nsreg_device_init(&d, ep, KEY);
    d.daily_messages = 1; /* window 20 */
    d.dl_mode = mode;
    d.has_dl_payload = true;
    for (int i = 0; i < 8; i++)
        d.dl_payload[i] = (uint8_t)(0xA0 + i);
    assert_int_equal(nsreg_device_put(db, &d, T0), 0);
}

/* A station's frame object for message (ep, mc) replica rank, heard at time t. */
static json_object *make_frame(uint32_t ep, uint16_t mc, bool bf, int rank, double t, double snr,
                               bool good_auth)
{
    ul_message_t m = {.ep_id = ep, .mc = mc, .bf = bf, .payload_len = 4};
    for (int i = 0; i < 4; i++)
        m.payload[i] = (uint8_t)(mc + i);
    uint8_t c[UL_MAX_CONTAINER_BYTES], k[16];
    memcpy(k, KEY, 16);
    if (!good_auth)
        k[0] ^= 1;
    int len = ul_container_build(&m, k, c, sizeof c);
    assert_true(len > 0);
    return nstest_frame_of(c, len, rank, t, snr, 868130000.0 + rank);
}

typedef struct {
    nscore_frame_t f[64];
    size_t n;
} batch_t;

static void batch_add(batch_t *b, const char *station, json_object *frame, double rx)
{
    b->f[b->n++] = (nscore_frame_t){.station_id = station, .frame = frame, .rx_s = rx};
}

static void batch_free(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        json_object_put(b->f[i].frame);
    b->n = 0;
}

static nscore_t *make_core(nsdb_t *db, seen_t *seen, const char *name)
{
    nscore_config_t cfg;
    nscore_config_init(&cfg);
    cfg.instance = name;
    char err[128];
    nscore_t *c = nscore_create(&cfg, db, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(nscore_add_hook(c, NSCORE_HOOK_COMMITTED, record, seen), 0);
    return c;
}

/* 3 stations x 3 replicas, in two batches: one message (first batch), one update, every
 * station listed; the same batches again change nothing. */
static void test_dedup_and_resend(void **state)
{
    (void)state;
    nsdb_t *db = open_db("dedup.db", 1);
    add_device(db, EP, NSREG_DL_OFF);
    seen_t seen = {0};
    nscore_t *c = make_core(db, &seen, "a");
    static const char *st[] = {"A", "B", "C"};
    batch_t b1 = {0}, b2 = {0};
    for (int s = 0; s < 3; s++)
        for (int r = 1; r <= 3; r++)
            batch_add(r == 1 && s == 0 ? &b1 : &b2, st[s],
                      make_frame(EP, 100, false, r, T0 + r + 0.01 * s, 10.0 + s, true),
                      T0 + r + 0.1);
    assert_int_equal(nscore_ingest(c, b1.f, b1.n), 0);
    assert_int_equal(seen.messages, 1);
    assert_string_equal(seen.lines[0], "message FEDCBA98 100 1");
    assert_int_equal(nscore_ingest(c, b2.f, b2.n), 0);
    assert_int_equal(seen.messages, 1);
    assert_int_equal(seen.updates, 1);
    assert_string_equal(seen.lines[1], "message_update FEDCBA98 100 3");
    /* resent: nothing new */
    assert_int_equal(nscore_ingest(c, b1.f, b1.n), 0);
    assert_int_equal(nscore_ingest(c, b2.f, b2.n), 0);
    assert_int_equal(seen.n, 2);
    nscore_stats_t s;
    nscore_get_stats(c, &s);
    assert_int_equal(s.messages, 1);
    assert_int_equal(s.frames_resent, 9);
    int64_t n = 0;
    assert_int_equal(nsdb_query_int(db, "SELECT COUNT(*) FROM ns_receptions", NULL, 0, &n), 1);
    assert_int_equal(n, 9);
    assert_int_equal(nsdb_query_int(db, "SELECT COUNT(*) FROM ns_messages", NULL, 0, &n), 1);
    assert_int_equal(n, 1);
    batch_free(&b1);
    batch_free(&b2);
    nscore_destroy(c);
    nsdb_close(db);
}

/* A station resends a batch after the same counter was heard again outside the dedup
 * window (a replayed frame 2 min later): the resent reception is recognised as stored,
 * not taken for a new (late) message. Found by fuzz_nsbatch: it was delivered twice. */
static void test_resend_after_counter_heard_again(void **state)
{
    (void)state;
    nsdb_t *db = open_db("again.db", 1);
    add_device(db, EP, NSREG_DL_OFF);
    seen_t seen = {0};
    nscore_t *c = make_core(db, &seen, "a");
    batch_t first = {0}, later = {0};
    batch_add(&first, "A", make_frame(EP, 50, false, 1, T0, 10, true), T0 + 1);
    batch_add(&first, "A", make_frame(EP, 57, false, 1, T0 + 8, 10, true), T0 + 9);
    batch_add(&later, "B", make_frame(EP, 50, false, 2, T0 + 120, 10, true), T0 + 121);
    assert_int_equal(nscore_ingest(c, first.f, first.n), 0);
    assert_int_equal(nscore_ingest(c, later.f, later.n), 0);
    assert_int_equal(seen.messages, 2);
    assert_int_equal(seen.replays, 1);
    /* both batches again, in either order: nothing new */
    assert_int_equal(nscore_ingest(c, first.f, first.n), 0);
    assert_int_equal(nscore_ingest(c, later.f, later.n), 0);
    assert_int_equal(nscore_ingest(c, first.f, first.n), 0);
    assert_int_equal(seen.messages, 2);
    assert_int_equal(seen.replays, 1);
    nscore_stats_t s;
    nscore_get_stats(c, &s);
    assert_int_equal(s.frames_resent, 5);
    int64_t n = 0;
    assert_int_equal(nsdb_query_int(db, "SELECT COUNT(*) FROM ns_messages", NULL, 0, &n), 1);
    assert_int_equal(n, 3);
    batch_free(&first);
    batch_free(&later);
    nscore_destroy(c);
    nsdb_close(db);
}

/* §9.1.1 with daily_messages 1 (W = 20): last 100 -> 101..121 accepted, then 122..142. */
static void test_antireplay(void **state)
{
    (void)state;
    nsdb_t *db = open_db("ar.db", 1);
    add_device(db, EP, NSREG_DL_OFF);
    seen_t seen = {0};
    nscore_t *c = make_core(db, &seen, "a");
    static const struct {
        uint16_t mc;
        double dt;
        const char *want;
    } t[] = {
        {100, 0, "message"},   /* first: sets the counter */
        {121, 100, "message"}, /* last+1+20 */
        {143, 200, "replay"},  /* 121+1+21: outside */
        {121, 300, "replay"},  /* the same counter again, after the dedup window */
        {110, 50, "message"},  /* late: 11 behind and on air before 121 */
        {4095, 400, "replay"},
        {130, 500, "message"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        batch_t b = {0};
        batch_add(&b, "A", make_frame(EP, t[i].mc, false, 1, T0 + t[i].dt, 10, true),
                  T0 + 600);
        int before = seen.n;
        assert_int_equal(nscore_ingest(c, b.f, b.n), 0);
        assert_int_equal(seen.n, before + 1);
        char want[64];
        snprintf(want, sizeof want, "%s FEDCBA98 %u", t[i].want, t[i].mc);
        if (strncmp(seen.lines[before], want, strlen(want)))
            fail_msg("case %zu: got %s, want %s", i, seen.lines[before], want);
        batch_free(&b);
    }
    nscore_destroy(c);
    nsdb_close(db);
}

/* Bad AUTH, unknown device, malformed frames: counted, nothing stored or delivered. */
static void test_bad_frames(void **state)
{
    (void)state;
    nsdb_t *db = open_db("bad.db", 1);
    add_device(db, EP, NSREG_DL_OFF);
    seen_t seen = {0};
    nscore_t *c = make_core(db, &seen, "a");
    batch_t b = {0};
    batch_add(&b, "A", make_frame(EP, 1, false, 1, T0, 10, false), T0);
    batch_add(&b, "A", make_frame(0x12345678, 1, false, 1, T0, 10, true), T0);
    json_object *bad = make_frame(EP, 2, false, 1, T0, 10, true);
    json_object_object_add(bad, "ul_crc", json_object_new_string("0000"));
    batch_add(&b, "A", bad, T0);
    json_object *bad2 = make_frame(EP, 3, false, 1, T0, 10, true);
    json_object_object_add(bad2, "container", json_object_new_string("zz"));
    batch_add(&b, "A", bad2, T0);
    batch_add(&b, "A", json_object_new_string("not an object"), T0);
    json_object *bad3 = make_frame(EP, 4, false, 1, T0, 10, true);
    json_object_object_add(bad3, "rank", json_object_new_int(9));
    batch_add(&b, "A", bad3, T0);
    assert_int_equal(nscore_ingest(c, b.f, b.n), 0);
    assert_int_equal(seen.n, 0);
    nscore_stats_t s;
    nscore_get_stats(c, &s);
    assert_int_equal(s.frames_in, 6);
    assert_int_equal(s.frames_auth_bad, 1);
    assert_int_equal(s.frames_unknown_device, 1);
    assert_int_equal(s.frames_bad, 4);
    int64_t n = -1;
    assert_int_equal(nsdb_query_int(db, "SELECT COUNT(*) FROM ns_dedup", NULL, 0, &n), 1);
    assert_int_equal(n, 0);
    batch_free(&b);
    nscore_destroy(c);
    nsdb_close(db);
}

/* Two instances, two connections to one database, overlapping stations, interleaved:
 * every message delivered once in total. */
static void test_two_instances(void **state)
{
    (void)state;
    nsdb_t *db1 = open_db("two.db", 1);
    nsdb_t *db2 = open_db("two.db", 0);
    add_device(db1, EP, NSREG_DL_OFF);
    add_device(db1, EP + 1, NSREG_DL_OFF);
    seen_t s1 = {0}, s2 = {0};
    nscore_t *c1 = make_core(db1, &s1, "one"), *c2 = make_core(db2, &s2, "two");
    for (int mc = 10; mc < 30; mc++) {
        for (uint32_t dev = EP; dev <= EP + 1; dev++) {
            batch_t a = {0}, b = {0};
            for (int r = 1; r <= 3; r++) {
                double t = T0 + mc * 60 + r;
                batch_add(&a, "A", make_frame(dev, (uint16_t)mc, false, r, t, 5, true), t);
                batch_add(&b, "B", make_frame(dev, (uint16_t)mc, false, r, t + 0.001, 6, true), t);
            }
            /* alternate who goes first */
            nscore_t *first = mc % 2 ? c1 : c2, *second = mc % 2 ? c2 : c1;
            assert_int_equal(nscore_ingest(first, a.f, a.n), 0);
            assert_int_equal(nscore_ingest(second, b.f, b.n), 0);
            batch_free(&a);
            batch_free(&b);
        }
    }
    assert_int_equal(s1.messages + s2.messages, 40);
    assert_int_equal(s1.replays + s2.replays, 0);
    assert_int_equal(s1.messages, 20);
    nscore_destroy(c1);
    nscore_destroy(c2);
    nsdb_close(db2);
    nsdb_close(db1);
}

typedef struct {
    char to[8][16];
    char body[8][256];
    int n;
} sent_t;

static int sender(const char *station, const char *json, void *user)
{
    sent_t *s = user;
    if (s->n < 8) {
        snprintf(s->to[s->n], sizeof s->to[0], "%s", station);
        snprintf(s->body[s->n], sizeof s->body[0], "%s", json);
        s->n++;
    }
    return 0;
}

static const char *sent_to(const sent_t *s, const char *station)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->to[i], station))
            return s->body[i];
    return NULL;
}

/* BF=1, direct mode: after the collect delay the best-SNR station with a transmitter gets
 * the payload and DL-AUTH, the others a decline; callback mode waits for the answer. */
static void test_downlink(void **state)
{
    (void)state;
    nsdb_t *db = open_db("dl.db", 1);
    add_device(db, EP, NSREG_DL_DIRECT);
    add_device(db, EP + 1, NSREG_DL_CALLBACK);
    seen_t seen = {0};
    sent_t sent = {0};
    nscore_t *c = make_core(db, &seen, "a");
    nscore_set_sender(c, sender, &sent);
    batch_t b = {0};
    batch_add(&b, "A", make_frame(EP, 7, true, 1, T0, 8, true), T0);
    batch_add(&b, "B", make_frame(EP, 7, true, 1, T0, 15, true), T0);
    json_object *ntx = make_frame(EP, 7, true, 1, T0, 30, true);
    json_object_object_add(ntx, "tx", json_object_new_boolean(false));
    batch_add(&b, "C", ntx, T0);
    assert_int_equal(nscore_ingest(c, b.f, b.n), 0);
    assert_int_equal(nscore_tick(c, T0 + 0.1), 0);
    assert_int_equal(sent.n, 0); /* still collecting */
    assert_int_equal(nscore_tick(c, T0 + 1), 0);
    assert_int_equal(sent.n, 3);
    assert_non_null(sent_to(&sent, "B"));
    assert_non_null(strstr(sent_to(&sent, "B"), "\"payload\":\"A0A1A2A3A4A5A6A7\""));
    assert_non_null(strstr(sent_to(&sent, "B"), "\"dl_auth\""));
    assert_non_null(strstr(sent_to(&sent, "A"), "\"payload\":null"));
    assert_non_null(strstr(sent_to(&sent, "C"), "\"payload\":null"));
    assert_int_equal(seen.decided, 1);
    batch_free(&b);

    /* callback: no decision before the answer, then the answer's payload */
    sent.n = 0;
    batch_add(&b, "A", make_frame(EP + 1, 9, true, 1, T0 + 100, 8, true), T0 + 100);
    assert_int_equal(nscore_ingest(c, b.f, b.n), 0);
    assert_int_equal(nscore_tick(c, T0 + 101), 0);
    assert_int_equal(sent.n, 0);
    uint8_t pl[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(nscore_downlink_answer(c, EP + 1, 8, pl), -1); /* no such request */
    assert_int_equal(nscore_downlink_answer(c, EP + 1, 9, pl), 0);
    assert_int_equal(nscore_tick(c, T0 + 101.1), 0);
    assert_int_equal(sent.n, 1);
    assert_non_null(strstr(sent.body[0], "\"payload\":\"0102030405060708\""));
    batch_free(&b);

    /* the chosen station's confirmation is recorded */
    json_object *ack = json_tokener_parse("{\"type\":\"downlink_ack\",\"ep_id\":\"FEDCBA98\","
                                          "\"mc\":7,\"rssi_dbm\":-90}");
    assert_int_equal(nscore_station_event(c, "B", ack), 0);
    json_object_put(ack);
    nsdb_rows_t *r = NULL;
    assert_int_equal(nsdb_query(db, "SELECT station_id, status FROM ns_downlinks WHERE ep_id = $1",
                                (nsdb_val_t[]){NSDB_INT(EP)}, 1, &r),
                     1);
    assert_string_equal(nsdb_rows_text(r, 0, 0), "B");
    assert_string_equal(nsdb_rows_text(r, 0, 1), "ack");
    nsdb_rows_free(r);
    nscore_stats_t s;
    nscore_get_stats(c, &s);
    assert_int_equal(s.dl_acks, 1);
    assert_int_equal(s.dl_sent, 2);
    nscore_destroy(c);
    nsdb_close(db);
}

static void test_parse_utc(void **state)
{
    (void)state;
    double t = 0;
    assert_int_equal(nscore_parse_utc("2025-11-26T12:00:00.250000Z", &t), 0);
    assert_near(t, 1764158400.25, 1e-6);
    assert_int_equal(nscore_parse_utc("2025-11-26T12:00:00", &t), -1);
    assert_int_equal(nscore_parse_utc("yesterday", &t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_utc),      cmocka_unit_test(test_dedup_and_resend),
        cmocka_unit_test(test_antireplay),     cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_two_instances),  cmocka_unit_test(test_downlink),
        cmocka_unit_test(test_resend_after_counter_heard_again),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
