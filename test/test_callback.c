/* test_callback: HTTP callbacks (seeds/000 §7.1.3) against a real HTTP server started by
 * the test (libmicrohttpd, test/httpsink.h): DATA/SERVICE/ERROR simple and batch bodies
 * byte for byte, retries after 1 minute of the test clock for a server that is down, slow
 * (> 10 s) or answers 500 — no loss, no duplicate —, a restart during retries, the retry
 * bound, and downlink answers (payload, none, late, malformed, oversized). Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "callback.h"
#include "hexutil.h"
#include "httpsink.h"

static int64_t test_now = 1800000000000; /* the injected clock, ms */
static int64_t test_clock(void *ctx)
{
    (void)ctx;
    return test_now;
}

static callback_dl_answer_t answers[16];
static size_t nanswers;
static void on_dl(void *ctx, const callback_dl_answer_t *a)
{
    (void)ctx;
    if (nanswers < 16)
        answers[nanswers++] = *a;
}

typedef struct {
    httpsink_t *sink;
    char dir[64];
    char db[96];
    char url[128];
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_callback.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/ns.db", f->dir);
    f->sink = httpsink_new();
    assert_non_null(f->sink);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%u", f->sink->port);
    nanswers = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    httpsink_free(f->sink);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static callback_t *open_cb(const fx_t *f, int max_tries)
{
    callback_config_t cfg = {.db_path = f->db, .now_ms = test_clock, .max_tries = max_tries,
                             .on_downlink = on_dl};
    char err[256];
    callback_t *cb = callback_create(&cfg, err, sizeof err);
    if (!cb)
        fail_msg("callback_create: %s", err);
    return cb;
}

static void add(callback_t *cb, const callback_def_t *d)
{
    char err[256];
    if (callback_add(cb, d, err, sizeof err) != 0)
        fail_msg("callback_add %s: %s", d->name, err);
}

/* Polls until nothing is in flight for a few rounds (real time bounded to 30 s). */
static void drain(callback_t *cb)
{
    int idle = 0;
    for (int i = 0; i < 300 && idle < 3; i++) {
        int r = callback_poll(cb, 100);
        assert_true(r >= 0);
        idle = r == 0 ? idle + 1 : 0;
    }
}

static appevent_t data_event(uint32_t id, int mc, const char *hex)
{
    appevent_t ev;
    appevent_init(&ev);
    ev.type = APPEVENT_DATA;
    ev.ep_id = id;
    ev.seq = mc;
    ev.time_s = 1795696395 + mc;
    ev.data_len = (size_t)hex_to_bytes(hex, ev.data, sizeof ev.data);
    ev.nstations = 2;
    snprintf(ev.stations[0].id, sizeof ev.stations[0].id, "A");
    ev.stations[0].rssi_dbm = -101.5;
    ev.stations[0].snr_db = 20.25;
    ev.stations[0].lat = 48.1;
    ev.stations[0].lng = 11.5;
    ev.stations[0].has_pos = true;
    ev.stations[0].nrep = 3;
    snprintf(ev.stations[1].id, sizeof ev.stations[1].id, "B");
    ev.stations[1].rssi_dbm = -120;
    ev.stations[1].snr_db = 8;
    ev.stations[1].nrep = 1;
    return ev;
}

static const char *json_body = "{\"device\":\"{device}\",\"time\":{time},\"data\":\"{data}\","
                               "\"seqNumber\":{seqNumber},\"ack\":{ack},\"station\":\"{station}\","
                               "\"rssi\":{rssi},\"snr\":{snr},\"avgSnr\":{avgSnr},\"lat\":{lat},"
                               "\"lng\":{lng},\"duplicates\":{duplicates}}";

static void test_simple_media(void **state)
{
    fx_t *f = *state;
    callback_t *cb = open_cb(f, 0);
    char url[256], url2[256];
    snprintf(url, sizeof url, "%s/data", f->url);
    callback_def_t post = {.name = "post", .type = APPEVENT_DATA, .media = CALLBACK_SIMPLE,
                           .method = "POST", .url = url, .body = json_body,
                           .headers = {"X-Test: dev={device} mc={seqNumber}"}, .nheaders = 1};
    add(cb, &post);
    snprintf(url2, sizeof url2, "%s/get?id={device}&data={data}&st={station}&t={time}", f->url);
    callback_def_t get = {.name = "get", .type = APPEVENT_DATA, .method = "GET", .url = url2};
    add(cb, &get);
    callback_def_t put = {.name = "put", .type = APPEVENT_DATA, .method = "PUT", .url = url,
                          .content_type = "application/x-www-form-urlencoded",
                          .body = "device={device}&data={data}&station={station}"};
    add(cb, &put);
    /* SERVICE and ERROR callbacks do not fire for DATA */
    callback_def_t svc = {.name = "svc", .type = APPEVENT_SERVICE, .url = url,
                          .body = "{\"device\":\"{device}\",\"temp\":{temp},\"batt\":{batt}}"};
    add(cb, &svc);
    callback_def_t errc = {.name = "err", .type = APPEVENT_ERROR, .url = url,
                           .content_type = "text/plain",
                           .body = "{device} {info} since {lastSeen} at {time}"};
    add(cb, &errc);
    assert_int_equal(callback_count(cb), 5);

    appevent_t ev = data_event(0xED4E06E3, 1222, "CA3A9B6D");
    assert_int_equal(callback_submit(cb, &ev, 0), 3);
    appevent_t st;
    appevent_init(&st);
    st.type = APPEVENT_SERVICE;
    st.subtype = APPEVENT_SUB_STATUS;
    st.ep_id = 0xABCD;
    st.time_s = 1795696400;
    st.has_status = true;
    st.temp_c = 21.5;
    st.vdd_tx_mv = 3125;
    assert_int_equal(callback_submit(cb, &st, 0), 1);
    appevent_t er;
    appevent_init(&er);
    er.type = APPEVENT_ERROR;
    er.subtype = APPEVENT_SUB_COMM_LOSS;
    er.ep_id = 0x1234;
    er.time_s = 1795700000;
    er.last_seen_s = 1795600000;
    snprintf(er.info, sizeof er.info, "Communication loss");
    assert_int_equal(callback_submit(cb, &er, 0), 1);
    drain(cb);
    assert_int_equal(httpsink_count(f->sink), 5);

    /* order of arrival is not fixed: find each by method and url */
    int seen = 0;
    for (size_t i = 0; i < f->sink->n; i++) {
        const httpsink_req_t *r = &f->sink->req[i];
        if (strcmp(r->method, "POST") == 0 && strstr(r->body, "\"data\":\"ca3a9b6d\"")) {
            assert_string_equal(r->url, "/data");
            assert_string_equal(r->content_type, "application/json");
            assert_string_equal(r->x_test, "dev=ED4E06E3 mc=1222");
            assert_string_equal(
                r->body, "{\"device\":\"ED4E06E3\",\"time\":1795697617,\"data\":\"ca3a9b6d\","
                         "\"seqNumber\":1222,\"ack\":false,\"station\":\"A\",\"rssi\":-101.50,"
                         "\"snr\":20.25,\"avgSnr\":14.12,\"lat\":48.100000,\"lng\":11.500000,"
                         "\"duplicates\":[{\"bsId\":\"B\",\"rssi\":-120.00,\"snr\":8.00,"
                         "\"nbRep\":1}]}");
            seen |= 1;
        } else if (strcmp(r->method, "GET") == 0) {
            assert_string_equal(r->url,
                                "/get?id=ED4E06E3&data=ca3a9b6d&st=A&t=1795697617");
            assert_int_equal(r->body_len, 0);
            seen |= 2;
        } else if (strcmp(r->method, "PUT") == 0) {
            assert_string_equal(r->content_type, "application/x-www-form-urlencoded");
            assert_string_equal(r->body, "device=ED4E06E3&data=ca3a9b6d&station=A");
            seen |= 4;
        } else if (strstr(r->body, "\"temp\"")) {
            assert_string_equal(r->body, "{\"device\":\"0000ABCD\",\"temp\":21.5,\"batt\":3.12}");
            seen |= 8;
        } else {
            assert_string_equal(r->content_type, "text/plain");
            assert_string_equal(r->body,
                                "00001234 Communication loss since 1795600000 at 1795700000");
            seen |= 16;
        }
    }
    assert_int_equal(seen, 31);
    callback_stats_t s;
    callback_get_stats(cb, &s);
    assert_int_equal(s.delivered, 5);
    assert_int_equal(s.queued, 0);
    assert_int_equal(callback_next_due_ms(cb), INT64_MAX);
    callback_destroy(cb);
}

static void test_batch(void **state)
{
    fx_t *f = *state;
    callback_t *cb = open_cb(f, 0);
    char url[256];
    snprintf(url, sizeof url, "%s/batch", f->url);
    callback_def_t b = {.name = "batch", .type = APPEVENT_DATA, .media = CALLBACK_BATCH,
                        .url = url, .content_type = "text/plain",
                        .body = "{device};{time};{data};{seqNumber};{station};{rssi}"};
    add(cb, &b);
    for (int i = 0; i < 3; i++) {
        appevent_t ev = data_event(0x100 + (uint32_t)i, i, "0102");
        assert_int_equal(callback_submit(cb, &ev, 0), 1);
    }
    drain(cb);
    assert_int_equal(httpsink_count(f->sink), 1);
    assert_string_equal(f->sink->req[0].method, "POST");
    assert_string_equal(f->sink->req[0].body,
                        "00000100;1795696395;0102;0;A;-101.50\n"
                        "00000101;1795696396;0102;1;A;-101.50\n"
                        "00000102;1795696397;0102;2;A;-101.50\n");
    /* at most one request a second: two more events wait for the test clock */
    for (int i = 3; i < 5; i++) {
        appevent_t ev = data_event(0x100 + (uint32_t)i, i, "");
        callback_submit(cb, &ev, 0);
    }
    test_now += 999;
    drain(cb);
    assert_int_equal(httpsink_count(f->sink), 1);
    test_now += 1;
    drain(cb);
    assert_int_equal(httpsink_count(f->sink), 2);
    assert_string_equal(f->sink->req[1].body, "00000103;1795696398;;3;A;-101.50\n"
                                              "00000104;1795696399;;4;A;-101.50\n");
    /* a batch URL cannot hold variables */
    char bad[256], err[256];
    snprintf(bad, sizeof bad, "%s/{device}", f->url);
    callback_def_t bb = {.name = "bad", .type = APPEVENT_DATA, .media = CALLBACK_BATCH,
                         .url = bad, .body = "{device}"};
    assert_int_equal(callback_add(cb, &bb, err, sizeof err), -1);
    assert_string_equal(err, "callback bad: a batch url cannot use variables");
    callback_destroy(cb);
}

/* One event, an endpoint failing in the given way, then healthy: delivered once, after one
 * minute of the test clock. */
static void retry_case(fx_t *f, const char *how)
{
    callback_t *cb = open_cb(f, 0);
    char url[256];
    snprintf(url, sizeof url, "%s/r", f->url);
    callback_def_t d = {.name = "r", .type = APPEVENT_DATA, .url = url, .body = json_body};
    add(cb, &d);
    size_t before = httpsink_count(f->sink);
    if (strcmp(how, "500") == 0)
        httpsink_set(f->sink, 500, "oops", 0);
    else if (strcmp(how, "slow") == 0)
        httpsink_set(f->sink, 200, "", 10500);
    else
        httpsink_stop(f->sink);
    appevent_t ev = data_event(0x77, 5, "AA");
    assert_int_equal(callback_submit(cb, &ev, 0), 1);
    drain(cb);
    callback_stats_t s;
    callback_get_stats(cb, &s);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.queued, 1);
    assert_int_equal(callback_next_due_ms(cb), test_now + 60000);
    if (strcmp(how, "slow") == 0)
        sleep(1); /* the server records the request when its 10.5 s are over */
    /* healthy again; nothing is sent before the minute is over */
    if (strcmp(how, "down") == 0)
        assert_int_equal(httpsink_start(f->sink, f->sink->port), 0);
    httpsink_set(f->sink, 200, "", 0);
    size_t after_fail = httpsink_count(f->sink);
    test_now += 59999;
    drain(cb);
    assert_int_equal(httpsink_count(f->sink), after_fail);
    test_now += 1;
    drain(cb);
    assert_int_equal(httpsink_count(f->sink), after_fail + 1);
    /* the server saw it once in good health (the slow one also once before, unanswered) */
    assert_int_equal(after_fail - before, strcmp(how, "down") == 0 ? 0 : 1);
    callback_get_stats(cb, &s);
    assert_int_equal(s.delivered, 1);
    assert_int_equal(s.queued, 0);
    test_now += 3600000;
    drain(cb);
    assert_int_equal(httpsink_count(f->sink), after_fail + 1); /* no duplicate */
    json_object *fail = callback_failures_json(cb, 10);
    assert_int_equal(json_object_array_length(fail), 1);
    json_object_put(fail);
    callback_destroy(cb);
}

static void test_retry_500(void **state)
{
    retry_case(*state, "500");
}

static void test_retry_down(void **state)
{
    retry_case(*state, "down");
}

static void test_retry_slow(void **state)
{
    retry_case(*state, "slow");
}

/* The queue is in the database: a restart during retries still delivers, once. */
static void test_restart(void **state)
{
    fx_t *f = *state;
    char url[256];
    snprintf(url, sizeof url, "%s/restart", f->url);
    callback_def_t d = {.name = "r", .type = APPEVENT_DATA, .url = url, .body = json_body};
    callback_def_t b = {.name = "b", .type = APPEVENT_DATA, .media = CALLBACK_BATCH, .url = url,
                        .body = "{device}"};
    callback_t *cb = open_cb(f, 0);
    add(cb, &d);
    add(cb, &b);
    httpsink_set(f->sink, 503, "", 0);
    for (int i = 0; i < 4; i++) {
        appevent_t ev = data_event(0x200 + (uint32_t)i, i, "01");
        assert_int_equal(callback_submit(cb, &ev, 0), 2);
    }
    drain(cb);
    size_t failed = httpsink_count(f->sink);
    assert_int_equal(failed, 5); /* 4 simple + 1 batch */
    callback_destroy(cb);

    httpsink_set(f->sink, 200, "", 0);
    cb = open_cb(f, 0);
    add(cb, &d);
    add(cb, &b);
    callback_stats_t s;
    callback_get_stats(cb, &s);
    assert_int_equal(s.queued, 8);
    test_now += 60000;
    drain(cb);
    assert_int_equal(httpsink_count(f->sink), failed + 5);
    int got[4] = {0};
    for (size_t i = failed; i < f->sink->n; i++) {
        const char *body = f->sink->req[i].body;
        if (body[0] == '{') {
            unsigned id;
            assert_int_equal(sscanf(body, "{\"device\":\"%08X\"", &id), 1);
            got[id - 0x200]++;
        } else {
            assert_string_equal(body, "00000200\n00000201\n00000202\n00000203\n");
        }
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(got[i], 1);
    callback_get_stats(cb, &s);
    assert_int_equal(s.queued, 0);
    callback_destroy(cb);
}

static void test_max_tries(void **state)
{
    fx_t *f = *state;
    callback_t *cb = open_cb(f, 3);
    char url[256];
    snprintf(url, sizeof url, "%s/x", f->url);
    callback_def_t d = {.name = "x", .type = APPEVENT_DATA, .url = url, .body = "{data}"};
    add(cb, &d);
    httpsink_set(f->sink, 500, "", 0);
    appevent_t ev = data_event(0x99, 1, "01");
    callback_submit(cb, &ev, 0);
    for (int i = 0; i < 5; i++) {
        drain(cb);
        test_now += 60000;
    }
    assert_int_equal(httpsink_count(f->sink), 3);
    callback_stats_t s;
    callback_get_stats(cb, &s);
    assert_int_equal(s.dropped, 1);
    assert_int_equal(s.queued, 0);
    json_object *fail = callback_failures_json(cb, 2);
    assert_int_equal(json_object_array_length(fail), 2);
    json_object *last = json_object_array_get_idx(fail, 0);
    assert_string_equal(json_object_get_string(json_object_object_get(last, "error")),
                        "HTTP status 500");
    assert_int_equal(json_object_get_int(json_object_object_get(last, "tries")), 3);
    assert_string_equal(json_object_get_string(json_object_object_get(last, "device")), "00000099");
    json_object_put(fail);
    callback_destroy(cb);
}

/* Downlink by callback: the DATA callback of a BF=1 message carries ack=true and its
 * answer gives the 8 bytes. */
static void test_downlink(void **state)
{
    fx_t *f = *state;
    callback_t *cb = open_cb(f, 0);
    char url[256];
    snprintf(url, sizeof url, "%s/dl", f->url);
    callback_def_t d = {.name = "dl", .type = APPEVENT_DATA, .url = url, .body = json_body,
                        .downlink = true};
    add(cb, &d);
    static const struct {
        unsigned status;
        const char *answer;
        int64_t deadline_off_ms; /* relative to the clock at the answer */
        callback_dl_status_t want;
    } t[] = {
        {200, "{\"ED4E06E3\": {\"downlinkData\": \"0102030405060708\"}}", 5000, CALLBACK_DL_PAYLOAD},
        {200, " {\"ed4e06e3\":{\"downlinkData\":\"a1b2c3d4e5f60718\"}}\n", 5000, CALLBACK_DL_PAYLOAD},
        {204, "", 5000, CALLBACK_DL_NONE},
        {200, "", 5000, CALLBACK_DL_NONE},
        {200, "{\"ED4E06E3\": {\"downlinkData\": \"0102030405060708\"}}", -1, CALLBACK_DL_LATE},
        {200, "{\"ED4E06E3\": {\"downlinkData\": \"01020304050607\"}}", 5000, CALLBACK_DL_MALFORMED},
        {200, "{\"00000001\": {\"downlinkData\": \"0102030405060708\"}}", 5000, CALLBACK_DL_MALFORMED},
        {200, "not json", 5000, CALLBACK_DL_MALFORMED},
        /* strict JSON (RFC 8259): nothing but white space after the object, no comments */
        {200, "{\"ED4E06E3\": {\"downlinkData\": \"0102030405060708\"}} x", 5000, CALLBACK_DL_MALFORMED},
        {200, "{/**/\"ED4E06E3\": {\"downlinkData\": \"0102030405060708\"}}", 5000, CALLBACK_DL_MALFORMED},
        {500, "{\"ED4E06E3\": {\"downlinkData\": \"0102030405060708\"}}", 5000, CALLBACK_DL_FAILED},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        nanswers = 0;
        httpsink_set(f->sink, t[i].status, t[i].answer, 0);
        appevent_t ev = data_event(0xED4E06E3, (int)i, "CA");
        ev.ack = true;
        assert_int_equal(callback_submit(cb, &ev, test_now + t[i].deadline_off_ms), 1);
        drain(cb);
        assert_int_equal(nanswers, 1);
        if (answers[0].status != t[i].want)
            fail_msg("case %zu: %s (%s), want %s", i, callback_dl_status_name(answers[0].status),
                     answers[0].reason, callback_dl_status_name(t[i].want));
        assert_int_equal(answers[0].ep_id, 0xED4E06E3);
        assert_int_equal(answers[0].mc, (int)i);
        /* the callback body said ack:true */
        const httpsink_req_t *r = &f->sink->req[f->sink->n - 1];
        assert_non_null(strstr(r->body, "\"ack\":true"));
        if (t[i].want == CALLBACK_DL_PAYLOAD)
            assert_int_equal(answers[0].payload[0], i == 0 ? 0x01 : 0xA1);
        if (t[i].status == 500) {
            /* retried later for the data, but no second answer */
            httpsink_set(f->sink, 200, t[i].answer, 0);
            test_now += 60000;
            drain(cb);
            assert_int_equal(nanswers, 1);
        }
    }
    assert_string_equal(answers[0].reason, "HTTP status 500");
    /* oversized */
    char big[2048];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memcpy(big, "{\"ED4E06E3\": {\"downlinkData\": \"0102030405060708\"}}", 50);
    nanswers = 0;
    httpsink_set(f->sink, 200, big, 0);
    appevent_t ev = data_event(0xED4E06E3, 99, "CA");
    ev.ack = true;
    callback_submit(cb, &ev, test_now + 5000);
    drain(cb);
    assert_int_equal(nanswers, 1);
    assert_int_equal(answers[0].status, CALLBACK_DL_OVERSIZED);
    assert_string_equal(answers[0].reason, "answer of 2047 bytes, more than 1024");
    /* ack=false: no answer is looked at */
    nanswers = 0;
    ev.ack = false;
    callback_submit(cb, &ev, 0);
    drain(cb);
    assert_int_equal(nanswers, 0);
    callback_destroy(cb);
}

static void test_config_errors(void **state)
{
    fx_t *f = *state;
    callback_t *cb = open_cb(f, 0);
    static const struct {
        callback_def_t d;
        const char *err;
    } t[] = {
        {{.name = "", .url = "http://x/"}, "callback: name must have 1..63 printable characters"},
        {{.name = "a", .url = "ftp://x/"}, "callback a: url must start with http:// or https://"},
        {{.name = "a", .url = "http://x/", .method = "DELETE"}, "callback a: method must be GET, POST or PUT"},
        {{.name = "a", .url = "http://x/{nope}"}, "callback a: url template: unknown variable {nope} at column 10"},
        {{.name = "a", .url = "http://x/", .body = "{temp}"}, "callback a: body template: variable {temp} is not available in data callbacks at column 1"},
        {{.name = "a", .url = "http://x/", .method = "GET", .body = "x"}, "callback a: GET has no body"},
        {{.name = "a", .url = "http://x/", .media = CALLBACK_BATCH}, "callback a: a batch callback needs a line template (body)"},
        {{.name = "a", .url = "http://x/", .media = CALLBACK_BATCH, .method = "PUT", .body = "x"}, "callback a: batch callbacks use POST"},
        {{.name = "a", .url = "http://x/", .headers = {"Bad Header: 1"}, .nheaders = 1}, "callback a: header 1 must be \"Name: value\""},
        {{.name = "a", .url = "http://x/", .headers = {"X-A: {oops}"}, .nheaders = 1}, "callback a: header X-A template: unknown variable {oops} at column 1"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char err[256] = "";
        assert_int_equal(callback_add(cb, &t[i].d, err, sizeof err), -1);
        if (strcmp(err, t[i].err) != 0)
            fail_msg("case %zu: '%s'", i, err);
    }
    callback_def_t ok = {.name = "a", .url = "http://x/"};
    char err[256];
    assert_int_equal(callback_add(cb, &ok, err, sizeof err), 0);
    assert_int_equal(callback_add(cb, &ok, err, sizeof err), -1);
    assert_string_equal(err, "callback a: duplicate name");
    assert_int_equal(callback_remove(cb, "a"), 0);
    assert_int_equal(callback_remove(cb, "a"), -1);
    callback_destroy(cb);
    callback_config_t bad = {.db_path = "/nonexistent/dir/x.db"};
    assert_null(callback_create(&bad, err, sizeof err));
    assert_non_null(strstr(err, "queue database /nonexistent/dir/x.db: cannot open"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_simple_media, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_slow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_tries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_downlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
