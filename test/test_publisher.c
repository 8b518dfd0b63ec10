/* test_publisher: ZeroMQ PUB/REP over ipc:// in a temporary directory: events arrive with
 * their topics and bodies; every command, well-formed or not, gets exactly one JSON reply;
 * the socket keeps working after abuse. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <zmq.h>

#include "jsonstrict.h"
#include "log.h"
#include "publisher.h"

#include "testutil.h"

static char tmpdir[64];
static char pub_ep[128], cmd_ep[128];

static int setup(void **state)
{
    (void)state;
    if (test_tmpdir_create(tmpdir, sizeof tmpdir, "test_publisher") != 0)
        return -1;
    snprintf(pub_ep, sizeof pub_ep, "ipc://%s/events", tmpdir);
    snprintf(cmd_ep, sizeof cmd_ep, "ipc://%s/commands", tmpdir);
    log_set_level(LOG_LEVEL_ERROR);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return test_tmpdir_remove(tmpdir);
}

static publisher_t *make_publisher(void)
{
    publisher_config_t cfg = {pub_ep, cmd_ep, 0};
    char err[512] = "";
    publisher_t *p = publisher_create(&cfg, err, sizeof err);
    if (!p)
        fail_msg("publisher_create: %s", err);
    return p;
}

/* Receives [topic, body] within timeout_ms; returns 0 or -1. */
static int recv_event(void *sub, char *topic, size_t tlen, char *body, size_t blen, int timeout_ms)
{
    zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    int n = zmq_recv(sub, topic, tlen - 1, 0);
    if (n < 0)
        return -1;
    topic[n < (int)tlen - 1 ? n : (int)tlen - 1] = '\0';
    int more = 0;
    size_t sz = sizeof more;
    zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &sz);
    assert_true(more);
    n = zmq_recv(sub, body, blen - 1, 0);
    assert_true(n >= 0);
    body[n < (int)blen - 1 ? n : (int)blen - 1] = '\0';
    zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &sz);
    assert_false(more);
    return 0;
}

/* PUB/SUB joins asynchronously: publish a probe until the subscriber sees one. */
static void wait_joined(publisher_t *p, void *sub)
{
    char topic[64], body[256];
    for (int i = 0; i < 100; i++) {
        publisher_publish(p, "probe", "{}");
        if (recv_event(sub, topic, sizeof topic, body, sizeof body, 50) == 0) {
            /* Drain the probes still in flight. */
            while (recv_event(sub, topic, sizeof topic, body, sizeof body, 50) == 0)
                ;
            return;
        }
    }
    fail_msg("subscriber never joined");
}

static void test_events(void **state)
{
    (void)state;
    publisher_t *p = make_publisher();
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    assert_int_equal(zmq_connect(sub, pub_ep), 0);
    assert_int_equal(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0), 0);
    wait_joined(p, sub);

    static const char *const topics[] = {"frame", "message", "stats", "replay", "log"};
    for (size_t i = 0; i < 5; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string(topics[i]));
        json_object_object_add(o, "n", json_object_new_int((int)i));
        assert_int_equal(publisher_publish_json(p, topics[i], o), 0);
        json_object_put(o);
    }
    for (size_t i = 0; i < 5; i++) {
        char topic[64], body[256];
        assert_int_equal(recv_event(sub, topic, sizeof topic, body, sizeof body, 2000), 0);
        assert_string_equal(topic, topics[i]);
        json_object *o = json_tokener_parse(body);
        assert_non_null(o);
        json_object *t, *n;
        assert_true(json_object_object_get_ex(o, "type", &t));
        assert_string_equal(json_object_get_string(t), topics[i]);
        assert_true(json_object_object_get_ex(o, "n", &n));
        assert_int_equal(json_object_get_int(n), (int)i);
        json_object_put(o);
    }

    /* A topic filter: a "message" subscriber does not see frames. */
    void *sub2 = zmq_socket(ctx, ZMQ_SUB);
    assert_int_equal(zmq_connect(sub2, pub_ep), 0);
    assert_int_equal(zmq_setsockopt(sub2, ZMQ_SUBSCRIBE, "message", 7), 0);
    char topic[64], body[256];
    for (int i = 0; i < 100; i++) { /* until sub2 has joined */
        publisher_publish(p, "message", "{\"probe\":1}");
        if (recv_event(sub2, topic, sizeof topic, body, sizeof body, 50) == 0)
            break;
    }
    while (recv_event(sub2, topic, sizeof topic, body, sizeof body, 50) == 0)
        ;
    publisher_publish(p, "frame", "{\"x\":1}");
    publisher_publish(p, "message", "{\"x\":2}");
    assert_int_equal(recv_event(sub2, topic, sizeof topic, body, sizeof body, 2000), 0);
    assert_string_equal(topic, "message");
    assert_string_equal(body, "{\"x\":2}");

    publisher_stats_t st;
    publisher_get_stats(p, &st);
    assert_true(st.events >= 7);
    assert_int_equal(st.events_failed, 0);
    zmq_close(sub);
    zmq_close(sub2);
    zmq_ctx_term(ctx);
    publisher_destroy(p);
}

static int cmd_stats(json_object *req, json_object *reply, void *user, char *err, size_t err_len)
{
    (void)req;
    (void)err;
    (void)err_len;
    int *calls = user;
    (*calls)++;
    json_object_object_add(reply, "frames_ok", json_object_new_int(42));
    return 0;
}

static int cmd_fail(json_object *req, json_object *reply, void *user, char *err, size_t err_len)
{
    (void)req;
    (void)reply;
    (void)user;
    snprintf(err, err_len, "downlink is not available yet");
    return -1;
}

/* Sends one request (parts separated as given) and returns the reply as parsed JSON, after
 * letting the publisher answer. */
static json_object *ask(publisher_t *p, void *req, const char *const *parts, const size_t *lens,
                        int nparts)
{
    for (int i = 0; i < nparts; i++)
        assert_true(zmq_send(req, parts[i], lens[i], i + 1 < nparts ? ZMQ_SNDMORE : 0) >= 0);
    for (int i = 0; i < 50; i++) {
        if (publisher_poll(p, 100) > 0)
            break;
    }
    char buf[4096];
    int timeout = 2000;
    zmq_setsockopt(req, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    int n = zmq_recv(req, buf, sizeof buf - 1, 0);
    if (n < 0)
        fail_msg("no reply");
    buf[n] = '\0';
    /* Every reply is strict JSON (valid UTF-8, no NaN, nothing json-c alone would let by). */
    char why[256];
    if (jsonstrict_check(buf, (size_t)n, 0, why, sizeof why) != 0)
        fail_msg("reply is not strict JSON (%s): %s", why, buf);
    json_object *o = json_tokener_parse(buf);
    if (!o)
        fail_msg("reply is not JSON: %s", buf);
    return o;
}

static json_object *ask1(publisher_t *p, void *req, const char *text)
{
    size_t len = strlen(text);
    return ask(p, req, &text, &len, 1);
}

static void expect_error(json_object *r, const char *fragment)
{
    json_object *ok, *e;
    assert_true(json_object_object_get_ex(r, "ok", &ok));
    assert_false(json_object_get_boolean(ok));
    assert_true(json_object_object_get_ex(r, "error", &e));
    if (!strstr(json_object_get_string(e), fragment))
        fail_msg("error \"%s\" lacks \"%s\"", json_object_get_string(e), fragment);
    json_object_put(r);
}

static void test_commands(void **state)
{
    (void)state;
    publisher_t *p = make_publisher();
    int calls = 0;
    assert_int_equal(publisher_add_command(p, "stats", cmd_stats, &calls, "counters"), 0);
    assert_int_equal(publisher_add_command(p, "downlink", cmd_fail, NULL, "reserved"), 0);
    assert_int_equal(publisher_add_command(p, "stats", cmd_stats, &calls, "again"),
                     PUBLISHER_ERR_ARG);
    void *ctx = zmq_ctx_new();
    void *req = zmq_socket(ctx, ZMQ_REQ);
    assert_int_equal(zmq_connect(req, cmd_ep), 0);

    json_object *r = ask1(p, req, "{\"cmd\": \"stats\", \"id\": 7}");
    json_object *v;
    assert_true(json_object_object_get_ex(r, "ok", &v) && json_object_get_boolean(v));
    assert_true(json_object_object_get_ex(r, "cmd", &v));
    assert_string_equal(json_object_get_string(v), "stats");
    assert_true(json_object_object_get_ex(r, "id", &v) && json_object_get_int(v) == 7);
    assert_true(json_object_object_get_ex(r, "frames_ok", &v) && json_object_get_int(v) == 42);
    json_object_put(r);
    assert_int_equal(calls, 1);

    /* Sane ids are echoed as given: a string, and integers up to 2^53. */
    r = ask1(p, req, "{\"cmd\": \"help\", \"id\": \"r\u00e9q-1\"}");
    assert_true(json_object_object_get_ex(r, "id", &v));
    assert_string_equal(json_object_get_string(v), "r\xc3\xa9q-1");
    json_object_put(r);
    r = ask1(p, req, "{\"cmd\": \"help\", \"id\": -9007199254740992}");
    assert_true(json_object_object_get_ex(r, "id", &v));
    assert_true(json_object_get_int64(v) == -9007199254740992LL);
    json_object_put(r);

    r = ask1(p, req, "{\"cmd\":\"help\"}");
    assert_true(json_object_object_get_ex(r, "commands", &v));
    assert_int_equal(json_object_array_length(v), 3);
    json_object_put(r);

    /* Table of malformed requests: each gets an error reply naming the problem. */
    static const struct {
        const char *text;
        const char *error;
    } bad[] = {
        {"not json", "not valid JSON"},
        {"{\"cmd\": \"stats\"", "unexpected end of input"},
        {"{\"cmd\": \"stats\"} trailing", "text after the JSON value"},
        /* Issue 15 defect 4: what json-c alone accepted or answered wrongly. */
        {"{\"cmd\": \"help\"} /* comment */", "text after the JSON value"},
        {"{\"cmd\": \"help\"} // comment", "text after the JSON value"},
        {"{/* c */ \"cmd\": \"help\"}", "not valid JSON"},
        {"{'cmd': 'help'}", "not valid JSON"},
        {"{\"cmd\": \"help\", \"id\": NaN}", "not valid JSON"},
        {"{\"cmd\": \"help\", \"id\": Infinity}", "not valid JSON"},
        {"{\"cmd\": \"help\", \"id\": 18446744073709551616999}", "\"id\" must be"},
        {"{\"cmd\": \"help\", \"id\": -9007199254740993}", "\"id\" must be"},
        {"{\"cmd\": \"help\", \"id\": 1.5}", "\"id\" must be"},
        {"{\"cmd\": \"help\", \"id\": [1]}", "\"id\" must be"},
        {"{\"cmd\": \"help\\u0000junk\"}", "NUL"},
        {"{\"cmd\": \"\xff\xfehelp\"}", "invalid UTF-8"},
        {"{\"cmd\": \"\\ud800\"}", "surrogate"},
        {"{\"cmd\": \"a\nb\"}", "control character"},
        {"42", "must be a JSON object"},
        {"null", "must be a JSON object"},
        {" true ", "must be a JSON object"},
        {"{\"cmd\": \"x\\n<0>forged \\u001b[31m\"}", "unknown command 'x\\n<0>forged \\x1B[31m'"},
        {"[1, 2]", "must be a JSON object"},
        {"\"stats\"", "must be a JSON object"},
        {"{}", "missing \"cmd\""},
        {"{\"cmd\": 5}", "\"cmd\" must be a string"},
        {"{\"cmd\": null}", "\"cmd\" must be a string"},
        {"{\"cmd\": \"reboot\"}", "unknown command 'reboot'"},
        {"{\"cmd\": \"downlink\", \"ep_id\": \"FEDCBA98\"}", "not available yet"},
        {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]"
         "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
         "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(ask1(p, req, bad[i].text), bad[i].error);
    assert_int_equal(calls, 1);

    /* Empty, binary and multipart requests. */
    const char *empty = "";
    size_t zero = 0;
    expect_error(ask(p, req, &empty, &zero, 1), "empty request");
    const char bin[] = {'{', 0, '}', (char)0xFF};
    const char *binp = bin;
    size_t binlen = sizeof bin;
    expect_error(ask(p, req, &binp, &binlen, 1), "NUL byte");
    const char *two[] = {"{\"cmd\":\"stats\"}", "{\"cmd\":\"stats\"}"};
    size_t twolen[] = {strlen(two[0]), strlen(two[1])};
    expect_error(ask(p, req, two, twolen, 2), "one message frame");
    assert_int_equal(calls, 1);

    /* An oversized request: ZeroMQ drops that client; the next client is served. */
    void *big = zmq_socket(ctx, ZMQ_REQ);
    int linger = 0;
    zmq_setsockopt(big, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(big, cmd_ep), 0);
    size_t biglen = PUBLISHER_MAX_REQUEST_BYTES + 10;
    char *huge = malloc(biglen);
    memset(huge, ' ', biglen);
    assert_true(zmq_send(big, huge, biglen, 0) >= 0);
    free(huge);
    publisher_poll(p, 200);
    zmq_close(big);
    r = ask1(p, req, "{\"cmd\":\"stats\"}");
    assert_true(json_object_object_get_ex(r, "ok", &v) && json_object_get_boolean(v));
    json_object_put(r);

    publisher_stats_t st;
    publisher_get_stats(p, &st);
    assert_int_equal(st.commands, 37); /* the oversized request got none */
    assert_int_equal(st.command_errors, 32);
    zmq_close(req);
    zmq_ctx_term(ctx);
    publisher_destroy(p);
}

/* With nothing to do, poll returns after its timeout (the daemon loop's stop-flag latency). */
static void test_poll_timeout(void **state)
{
    (void)state;
    publisher_t *p = make_publisher();
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(publisher_poll(p, 100), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    assert_true(ms >= 90 && ms < 1000);
    publisher_destroy(p);
}

static void test_bind_errors(void **state)
{
    (void)state;
    char err[512] = "";
    publisher_config_t cfg = {"ipc:///nonexistent-dir-sigfoxd/events", NULL, 0};
    assert_null(publisher_create(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "ipc:///nonexistent-dir-sigfoxd/events"));
    assert_non_null(strstr(err, "/nonexistent-dir-sigfoxd must exist"));
    /* A tcp port already taken: the error names the endpoint and the reason. */
    void *ctx = zmq_ctx_new();
    void *holder = zmq_socket(ctx, ZMQ_PUB);
    assert_int_equal(zmq_bind(holder, "tcp://127.0.0.1:*"), 0);
    char ep[128];
    size_t eplen = sizeof ep;
    assert_int_equal(zmq_getsockopt(holder, ZMQ_LAST_ENDPOINT, ep, &eplen), 0);
    publisher_config_t tcp = {NULL, ep, 0};
    assert_null(publisher_create(&tcp, err, sizeof err));
    assert_non_null(strstr(err, ep));
    assert_non_null(strstr(err, "Address already in use"));
    zmq_close(holder);
    zmq_ctx_term(ctx);
    publisher_config_t none = {NULL, NULL, 0};
    publisher_t *n = publisher_create(&none, err, sizeof err);
    assert_non_null(n);
    assert_int_equal(publisher_publish(n, "frame", "{}"), 0);
    assert_int_equal(publisher_poll(n, 10), 0);
    publisher_destroy(n);
}

static void test_time_utc(void **state)
{
    (void)state;
    char buf[40];
    assert_string_equal(publisher_time_utc(0, buf, sizeof buf), "1970-01-01T00:00:00.000000Z");
    assert_string_equal(publisher_time_utc(1732622416.1234564, buf, sizeof buf),
                        "2024-11-26T12:00:16.123456Z");
    assert_string_equal(publisher_time_utc(1732622416.9999996, buf, sizeof buf),
                        "2024-11-26T12:00:17.000000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events),       cmocka_unit_test(test_commands),
        cmocka_unit_test(test_poll_timeout), cmocka_unit_test(test_bind_errors),
        cmocka_unit_test(test_time_utc),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
