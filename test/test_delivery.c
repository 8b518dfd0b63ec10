/* test_delivery: the one path from receiver results to consumers: suppression of
 * unauthenticated results, the anti-replay verdict (real devstate, in memory) choosing the
 * topic, one event per result to every sink of its class with the struct it came from,
 * replay warnings as log events, station_id, the JSON-lines output and its failure.
 * Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "delivery.h"

#include "testutil.h"

#define MAX_SEEN 16

/* What a callback sink received, copied out of the call. */
typedef struct {
    int n;
    char topic[MAX_SEEN][32];
    char json[MAX_SEEN][2048];
    int verdict[MAX_SEEN];
    const void *ref[MAX_SEEN]; /* the struct pointer the event came with */
} seen_t;

static void record(const delivery_event_t *ev, void *user)
{
    seen_t *s = user;
    assert_true(s->n < MAX_SEEN);
    snprintf(s->topic[s->n], sizeof s->topic[0], "%s", ev->topic);
    snprintf(s->json[s->n], sizeof s->json[0], "%s",
             json_object_to_json_string_ext(ev->json, JSON_C_TO_STRING_PLAIN));
    s->verdict[s->n] = ev->verdict;
    s->ref[s->n] = ev->frame     ? (const void *)ev->frame
                   : ev->message ? (const void *)ev->message
                                 : (const void *)ev->downlink;
    s->n++;
}

static rx_message_t message(uint32_t ep_id, uint16_t mc, rx_auth_t auth, double t_s)
{
    rx_message_t m;
    memset(&m, 0, sizeof m);
    m.msg.ep_id = ep_id;
    m.msg.mc = mc;
    m.msg.kind = UL_KIND_APP;
    m.msg.payload_len = 2;
    m.msg.payload[0] = 0xAB;
    m.msg.payload[1] = 0xCD;
    m.auth = auth;
    m.nframes = 1;
    rx_frame_t *f = &m.frames[0];
    f->frame.crc_ok = true;
    f->frame.rank = 1;
    f->frame.auth_len = 2;
    f->frame.msg = m.msg;
    f->auth = auth;
    f->baud = 100;
    f->freq_hz = 868130000.0;
    f->snr_db = 15;
    f->t_start_s = t_s;
    f->t_end_s = t_s + 1.76;
    return m;
}

static unsigned daily(uint32_t ep_id, void *user)
{
    (void)ep_id;
    (void)user;
    return 2; /* window max(20, 3 x 2) = 20 counters */
}

static void test_frames(void **state)
{
    (void)state;
    delivery_config_t dc = {.daily_messages = daily};
    delivery_t *d = delivery_create(&dc, NULL, 0);
    assert_non_null(d);
    seen_t up = {0}, st = {0};
    assert_int_equal(delivery_add_sink(d, DELIVERY_UPLINK, record, &up), 0);
    assert_int_equal(delivery_add_sink(d, DELIVERY_STATUS, record, &st), 0);
    assert_int_equal(delivery_add_sink(d, 0, record, &up), -1); /* no class */
    rx_message_t m = message(0xFEDCBA98, 10, RX_AUTH_OK, 1.0);
    delivery_frame(&m.frames[0], d);
    assert_int_equal(up.n, 1);
    assert_string_equal(up.topic[0], "frame");
    assert_ptr_equal(up.ref[0], &m.frames[0]);
    assert_non_null(strstr(up.json[0], "\"type\":\"frame\""));
    assert_non_null(strstr(up.json[0], "\"ep_id\":\"FEDCBA98\""));
    assert_null(strstr(up.json[0], "time_utc")); /* no anchor yet */
    /* Not authenticated: suppressed, counted, seen by nobody. */
    m.frames[0].auth = RX_AUTH_BAD;
    delivery_frame(&m.frames[0], d);
    assert_int_equal(up.n, 1);
    assert_int_equal(st.n, 0);
    /* With an anchor, UTC. */
    delivery_set_anchor(d, 0.0, 1732622400.0);
    m.frames[0].auth = RX_AUTH_OK;
    delivery_frame(&m.frames[0], d);
    assert_non_null(strstr(up.json[1], "\"time_utc\":\"2024-11-26T12:00:01.000000Z\""));
    delivery_stats_t s;
    delivery_get_stats(d, &s);
    assert_int_equal(s.frames_published, 2);
    assert_int_equal(s.events_suppressed, 1);
    delivery_destroy(d);
}

/* The verdict picks the topic once: a counter the window refused is a "replay" event with
 * last_mc (never a "message"), plus a warning that STATUS sinks see as a log event. */
static void test_anti_replay(void **state)
{
    (void)state;
    char err[256];
    devstate_t *ds = devstate_create(NULL, err, sizeof err);
    assert_non_null(ds);
    delivery_config_t dc = {.state = ds, .daily_messages = daily, .station_id = "st-1"};
    delivery_t *d = delivery_create(&dc, err, sizeof err);
    assert_non_null(d);
    seen_t up = {0}, st = {0};
    assert_int_equal(delivery_add_sink(d, DELIVERY_UPLINK, record, &up), 0);
    assert_int_equal(delivery_add_sink(d, DELIVERY_STATUS, record, &st), 0);

    rx_message_t a = message(0x00ABCDEF, 100, RX_AUTH_OK, 1.0);
    delivery_message(&a, d);
    assert_int_equal(up.n, 1);
    assert_string_equal(up.topic[0], "message");
    assert_int_equal(up.verdict[0], DEVSTATE_NEW);
    assert_ptr_equal(up.ref[0], &a);
    assert_non_null(strstr(up.json[0], "{\"type\":\"message\",\"format_version\":1,"
                                       "\"station_id\":\"st-1\","));
    assert_null(strstr(up.json[0], "last_mc"));
    assert_int_equal(st.n, 0);

    /* The same counter again, later on air: a replay. */
    rx_message_t again = message(0x00ABCDEF, 100, RX_AUTH_OK, 30.0);
    delivery_message(&again, d);
    assert_int_equal(up.n, 2);
    assert_string_equal(up.topic[1], "replay");
    assert_int_equal(up.verdict[1], DEVSTATE_REPLAY);
    assert_non_null(strstr(up.json[1], "{\"type\":\"replay\","));
    assert_non_null(strstr(up.json[1], "\"last_mc\":100"));
    assert_int_equal(st.n, 1);
    assert_string_equal(st.topic[0], "log");
    assert_non_null(strstr(st.json[0], "\"level\":\"warning\""));
    assert_non_null(strstr(st.json[0], "Replayed message refused, ep_id: 00ABCDEF, mc: 100"));

    /* Unauthenticated: only to a sink that asks for such results, marked suppressed,
     * never through anti-replay. */
    seen_t raw = {0};
    assert_int_equal(delivery_add_sink(d, DELIVERY_UPLINK | DELIVERY_UNAUTHENTICATED, record, &raw),
                     0);
    rx_message_t bad = message(0x11111111, 5, RX_AUTH_BAD, 40.0);
    delivery_message(&bad, d);
    delivery_frame(&bad.frames[0], d);
    assert_int_equal(up.n, 2);
    assert_int_equal(raw.n, 2);
    assert_string_equal(raw.topic[0], "message");
    assert_string_equal(raw.topic[1], "frame");
    assert_non_null(strstr(raw.json[1], "\"auth\":\"bad\""));
    devstate_entry_t e;
    assert_int_equal(devstate_get(ds, 0x11111111, &e), -1);

    delivery_stats_t s;
    delivery_get_stats(d, &s);
    assert_int_equal(s.messages_published, 1);
    assert_int_equal(s.frames_published, 0);
    assert_int_equal(s.replays, 1);
    assert_int_equal(s.events_suppressed, 2);
    delivery_destroy(d);

    dc.publish_unauthenticated = true;
    d = delivery_create(&dc, err, sizeof err);
    seen_t all = {0};
    assert_int_equal(delivery_add_sink(d, DELIVERY_ALL, record, &all), 0);
    delivery_message(&bad, d);
    assert_int_equal(all.n, 1);
    assert_string_equal(all.topic[0], "message");
    assert_int_equal(all.verdict[0], DELIVERY_UNCHECKED);
    assert_non_null(strstr(all.json[0], "\"auth\":\"bad\""));
    assert_int_equal(devstate_get(ds, 0x11111111, &e), -1);
    delivery_destroy(d);
    devstate_destroy(ds);
}

/* Downlink events and caller-built events reach the sinks of their class only. */
static void test_classes(void **state)
{
    (void)state;
    delivery_config_t dc = {0};
    delivery_t *d = delivery_create(&dc, NULL, 0);
    seen_t up = {0}, dl = {0};
    assert_int_equal(delivery_add_sink(d, DELIVERY_UPLINK, record, &up), 0);
    assert_int_equal(delivery_add_sink(d, DELIVERY_DOWNLINK, record, &dl), 0);
    dlsched_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = DLSCHED_EV_REFUSED;
    ev.id = 4;
    ev.ep_id = 0x0000ABCD;
    ev.mc = 9;
    ev.status = DLSCHED_ST_QUOTA;
    snprintf(ev.reason, sizeof ev.reason, "quota used");
    delivery_downlink(d, &ev);
    assert_int_equal(dl.n, 1);
    assert_int_equal(up.n, 0);
    assert_string_equal(dl.topic[0], dlsched_event_name(DLSCHED_EV_REFUSED));
    assert_ptr_equal(dl.ref[0], &ev);
    assert_non_null(strstr(dl.json[0], "\"reason\":\"quota used\""));
    evjson_beacon_t b = {.id = 1, .t_start_s = 2, .status = "ok", .freq_hz = 869505000};
    delivery_beacon(d, &b);
    assert_int_equal(dl.n, 2);
    assert_string_equal(dl.topic[1], "monarch_beacon");
    json_object *o = json_object_new_object();
    delivery_emit(d, "stats", DELIVERY_STATUS, o);
    json_object_put(o);
    assert_int_equal(up.n + dl.n, 2);
    delivery_log(d, LOG_LEVEL_NOTICE, "not an event: below warning");
    delivery_log(NULL, LOG_LEVEL_ERROR, "NULL delivery: the line only");
    delivery_destroy(d);

    /* A station id longer than the limit is refused up front. */
    char longid[EVJSON_STATION_ID_MAX + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    dc.station_id = longid;
    char err[128] = "";
    assert_null(delivery_create(&dc, err, sizeof err));
    assert_non_null(strstr(err, "station id"));
}

/* Soft frames: to DELIVERY_SOFT sinks only, as "softframe" events with the station id;
 * at most soft_max_per_s per second of stream time (one second's worth at once), the rest
 * counted; a stream restarting at 0 refills the bucket. */
static void test_softframes(void **state)
{
    (void)state;
    delivery_config_t dc = {.station_id = "st-9", .soft_max_per_s = 2};
    delivery_t *d = delivery_create(&dc, NULL, 0);
    seen_t up = {0}, soft = {0};
    assert_int_equal(delivery_add_sink(d, DELIVERY_UPLINK | DELIVERY_STATUS, record, &up), 0);
    assert_int_equal(delivery_add_sink(d, DELIVERY_SOFT, record, &soft), 0);
    rx_softframe_t sf;
    memset(&sf, 0, sizeof sf);
    sf.ft_readable = true;
    sf.baud = 100;
    sf.symbol_rate = 100;
    sf.nsoft = 40;
    for (size_t i = 0; i < sf.nsoft; i++)
        sf.soft[i] = i % 3 ? 2.5f : -4.0f;
    sf.nhyp = ul_ft_rank_soft(sf.soft, sf.hyp, RX_SOFT_FT_HYPS);
    /* 2 per second: at t = 1.0, 1.1, 1.2 the third is dropped; by 1.7 one token is back */
    const double ts[] = {1.0, 1.1, 1.2, 1.7, 1.75, 0.5};
    const bool pass[] = {true, true, false, true, false, true};
    int want = 0;
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        sf.t_start_s = ts[i];
        delivery_softframe(d, &sf);
        want += pass[i];
        assert_int_equal(soft.n, want);
    }
    assert_int_equal(up.n, 0);
    assert_string_equal(soft.topic[0], "softframe");
    assert_non_null(strstr(soft.json[0], "\"type\":\"softframe\""));
    assert_non_null(strstr(soft.json[0], "\"station_id\":\"st-9\""));
    assert_non_null(strstr(soft.json[0], "\"n_symbols\":40"));
    rx_softframe_t back;
    char err[128];
    assert_int_equal(
        evjson_softframe_parse_text(soft.json[0], strlen(soft.json[0]), &back, err, sizeof err), 0);
    assert_int_equal(back.nsoft, 40);
    delivery_stats_t st;
    delivery_get_stats(d, &st);
    assert_int_equal(st.softframes_published, 4);
    assert_int_equal(st.softframes_dropped, 2);
    delivery_softframe(d, NULL);
    delivery_softframe(NULL, &sf);
    delivery_destroy(d);

    /* no limit */
    dc.soft_max_per_s = 0;
    d = delivery_create(&dc, NULL, 0);
    seen_t all = {0};
    assert_int_equal(delivery_add_sink(d, DELIVERY_ALL, record, &all), 0);
    for (int i = 0; i < 10; i++) {
        sf.t_start_s = 3.0;
        delivery_softframe(d, &sf);
    }
    assert_int_equal(all.n, 10);
    delivery_destroy(d);
}

/* JSON lines: one per event of the chosen classes; a stream that cannot be written is
 * reported once and nothing more is attempted. */
static void test_lines(void **state)
{
    (void)state;
    char dir[64], path[128];
    assert_int_equal(test_tmpdir_create(dir, sizeof dir, "test_delivery"), 0);
    snprintf(path, sizeof path, "%s/events.jsonl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    delivery_config_t dc = {0};
    delivery_t *d = delivery_create(&dc, NULL, 0);
    assert_int_equal(delivery_add_lines(d, f, DELIVERY_UPLINK | DELIVERY_DOWNLINK), 0);
    rx_message_t m = message(0x01020304, 1, RX_AUTH_OK, 1.0);
    delivery_frame(&m.frames[0], d);
    delivery_message(&m, d);
    delivery_log(d, LOG_LEVEL_WARNING, "a warning is no line here");
    assert_false(delivery_output_failed(d));
    delivery_destroy(d);
    fclose(f);
    const char *text = test_read_text(path);
    assert_non_null(text);
    const char *nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_true(strncmp(text, "{\"type\":\"frame\"", 15) == 0);
    assert_true(strncmp(nl + 1, "{\"type\":\"message\"", 17) == 0);
    assert_string_equal(strchr(nl + 1, '\n'), "\n");

    /* A read-only stream: the first write fails, the output is marked failed. */
    f = fopen(path, "r");
    assert_non_null(f);
    d = delivery_create(&dc, NULL, 0);
    assert_int_equal(delivery_add_lines(d, f, DELIVERY_UPLINK), 0);
    delivery_frame(&m.frames[0], d);
    assert_true(delivery_output_failed(d));
    delivery_frame(&m.frames[0], d);
    delivery_destroy(d);
    fclose(f);
    assert_int_equal(test_tmpdir_remove(dir), 0);
}

/* Durable anti-replay: a block's events wait until the state it changed is on disk, then
 * go out in order with copies of their structs; events of other blocks are not held. */
static void test_hold_until_durable(void **state)
{
    (void)state;
    char dir[64], err[256];
    assert_int_equal(test_tmpdir_create(dir, sizeof dir, "test_delivery"), 0);
    devstate_t *ds = devstate_create(dir, err, sizeof err);
    assert_non_null(ds);
    delivery_config_t dc = {.state = ds, .daily_messages = daily, .hold_until_durable = true};
    delivery_t *d = delivery_create(&dc, err, sizeof err);
    seen_t up = {0};
    assert_int_equal(delivery_add_sink(d, DELIVERY_UPLINK, record, &up), 0);
    rx_message_t m = message(0x0A0B0C0D, 42, RX_AUTH_OK, 1.0);
    delivery_hold(d);
    delivery_frame(&m.frames[0], d);
    delivery_message(&m, d);
    assert_int_equal(up.n, 0);
    assert_true(devstate_dirty(ds));
    delivery_release(d);
    assert_false(devstate_dirty(ds)); /* written before anything went out */
    assert_int_equal(up.n, 2);
    assert_string_equal(up.topic[0], "frame");
    assert_string_equal(up.topic[1], "message");
    assert_int_equal(up.verdict[1], DEVSTATE_NEW);
    assert_true(up.ref[1] != (const void *)&m); /* a copy: the receiver's is gone by then */
    delivery_stats_t st;
    delivery_get_stats(d, &st);
    assert_int_equal(st.state_syncs, 1);
    /* Outside a block: at once. */
    rx_message_t next = message(0x0A0B0C0D, 43, RX_AUTH_OK, 30.0);
    delivery_message(&next, d);
    assert_int_equal(up.n, 3);
    delivery_destroy(d);
    devstate_destroy(ds);
    assert_int_equal(test_tmpdir_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_anti_replay),
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_softframes),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_hold_until_durable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
