/* test_corelink: the station's core link against a real ZeroMQ ROUTER + CURVE server with a
 * ZAP handler, started inside the test (a small core that acks, stays silent, refuses keys,
 * goes away and comes back, sends downlinks and garbage). Licence: MIT. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#include "corelink.h"
#include "log.h"
#include "spool.h"

#include "testutil.h"

static char tmpdir[64];
static char spooldir[160];
static char endpoint[128];
static char core_pub[41], core_sec[41], st_pub[41], st_sec[41];

/* ---- the in-test core ----------------------------------------------------------------- */

typedef struct {
    void *ctx, *router, *zap;
    pthread_t zap_thread;
    atomic_int stop;
    char allowed[41]; /* the one station key accepted */
    atomic_int refused;
} core_t;

static void *zap_main(void *arg)
{
    core_t *c = arg;
    while (!atomic_load(&c->stop)) {
        zmq_pollitem_t it = {c->zap, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 50) <= 0)
            continue;
        /* version, request id, domain, address, identity, mechanism, client key */
        zmq_msg_t part[8];
        int n = 0, more = 1;
        while (more && n < 8) {
            zmq_msg_init(&part[n]);
            if (zmq_msg_recv(&part[n], c->zap, 0) < 0)
                break;
            more = zmq_msg_more(&part[n]);
            n++;
        }
        char key[41] = "";
        if (n >= 7 && zmq_msg_size(&part[6]) == 32)
            zmq_z85_encode(key, zmq_msg_data(&part[6]), 32);
        bool ok = strcmp(key, c->allowed) == 0;
        if (!ok)
            atomic_fetch_add(&c->refused, 1);
        const char *status = ok ? "200" : "400";
        zmq_send(c->zap, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(c->zap, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
        zmq_send(c->zap, status, 3, ZMQ_SNDMORE);
        zmq_send(c->zap, ok ? "OK" : "unknown key", ok ? 2 : 11, ZMQ_SNDMORE);
        zmq_send(c->zap, ok ? "station-A" : "", ok ? 9 : 0, ZMQ_SNDMORE);
        zmq_send(c->zap, "", 0, 0);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&part[i]);
    }
    return NULL;
}

static void core_start(core_t *c, const char *allowed)
{
    memset(c, 0, sizeof *c);
    snprintf(c->allowed, sizeof c->allowed, "%s", allowed);
    c->ctx = zmq_ctx_new();
    assert_non_null(c->ctx);
    c->zap = zmq_socket(c->ctx, ZMQ_REP);
    assert_int_equal(zmq_bind(c->zap, "inproc://zeromq.zap.01"), 0);
    assert_int_equal(pthread_create(&c->zap_thread, NULL, zap_main, c), 0);
    c->router = zmq_socket(c->ctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    zmq_setsockopt(c->router, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(c->router, ZMQ_CURVE_SECRETKEY, core_sec, 41);
    zmq_setsockopt(c->router, ZMQ_LINGER, &zero, sizeof zero);
    if (!endpoint[0]) {
        assert_int_equal(zmq_bind(c->router, "tcp://127.0.0.1:*"), 0);
        size_t len = sizeof endpoint;
        zmq_getsockopt(c->router, ZMQ_LAST_ENDPOINT, endpoint, &len);
    } else {
        /* The same port again after a "core restart" (may need a moment to free). */
        int rc = -1;
        for (int i = 0; i < 50 && rc != 0; i++)
            if ((rc = zmq_bind(c->router, endpoint)) != 0)
                usleep(20000);
        assert_int_equal(rc, 0);
    }
}

static void core_stop(core_t *c)
{
    atomic_store(&c->stop, 1);
    pthread_join(c->zap_thread, NULL);
    zmq_close(c->router);
    zmq_close(c->zap);
    zmq_ctx_term(c->ctx);
}

/* Receives one message (routing id kept in rid). Returns the parsed object or NULL on
 * timeout. */
static json_object *core_recv(core_t *c, int timeout_ms, zmq_msg_t *rid)
{
    zmq_pollitem_t it = {c->router, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return NULL;
    zmq_msg_t body;
    zmq_msg_init(rid);
    zmq_msg_init(&body);
    assert_true(zmq_msg_recv(rid, c->router, 0) >= 0);
    assert_true(zmq_msg_more(rid));
    assert_true(zmq_msg_recv(&body, c->router, 0) >= 0);
    assert_false(zmq_msg_more(&body)); /* one frame of JSON per message */
    const char *uid = zmq_msg_gets(&body, "User-Id");
    assert_non_null(uid);
    assert_string_equal(uid, "station-A");
    json_object *o;
    size_t n = zmq_msg_size(&body);
    char *text = malloc(n + 1);
    memcpy(text, zmq_msg_data(&body), n);
    text[n] = '\0';
    o = json_tokener_parse(text);
    if (!o)
        fail_msg("core got non-JSON: %s", text);
    free(text);
    zmq_msg_close(&body);
    return o;
}

static void core_send(core_t *c, zmq_msg_t *rid, const char *text)
{
    zmq_msg_t copy;
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, rid);
    assert_true(zmq_msg_send(&copy, c->router, ZMQ_SNDMORE) >= 0);
    assert_true(zmq_send(c->router, text, strlen(text), 0) >= 0);
}

static const char *type_of(json_object *o)
{
    json_object *t;
    return json_object_object_get_ex(o, "type", &t) ? json_object_get_string(t) : "";
}

static int64_t int_of(json_object *o, const char *key)
{
    json_object *t;
    return json_object_object_get_ex(o, key, &t) ? json_object_get_int64(t) : -1;
}

/* ---- the station side ------------------------------------------------------------------ */

static atomic_int dl_calls;
static corelink_downlink_t last_dl;

static int on_downlink(const corelink_downlink_t *dl, void *user, char *err, size_t err_len)
{
    (void)user;
    last_dl = *dl;
    atomic_fetch_add(&dl_calls, 1);
    if (dl->ep_id == 0xDEADBEEF) {
        snprintf(err, err_len, "no pending request");
        return -1;
    }
    return 0;
}

static bool receive_only; /* the next link has no downlink scheduler (tx = false) */

static corelink_t *link_open_ex(double timeout_s, double shutdown_wait_s, size_t queue,
                                size_t spool_max)
{
    const char *eps[1] = {endpoint};
    corelink_config_t c = {
        .endpoints = eps,
        .nendpoints = 1,
        .core_public_key = core_pub,
        .secret_key = st_sec,
        .station_id = "station-A",
        .has_position = true,
        .latitude = 48.1,
        .longitude = 11.5,
        .altitude_m = 520,
        .tx = !receive_only,
        .version = "test",
        .spool_dir = spooldir,
        .timeout_s = timeout_s,
        .ping_s = 0.3,
        .shutdown_wait_s = shutdown_wait_s,
        .on_downlink = receive_only ? NULL : on_downlink,
        .queue_frames = queue,
        .spool_max_frames = spool_max,
    };
    char err[512] = "";
    corelink_t *l = corelink_create(&c, err, sizeof err);
    if (!l)
        fail_msg("corelink_create: %s", err);
    return l;
}

static corelink_t *link_open(double timeout_s, double shutdown_wait_s)
{
    return link_open_ex(timeout_s, shutdown_wait_s, 0, 0);
}

static bool allow_full; /* a full queue is expected (queue_and_spool_bounds) */

/* Frame n: an event {"type":"frame","n":n,...} with a container and BF set on odd n. */
static void push_frames(corelink_t *l, int from, int count)
{
    for (int n = from; n < from + count; n++) {
        ul_frame_t f;
        memset(&f, 0, sizeof f);
        f.crc_ok = true;
        f.container_len = 12;
        for (int i = 0; i < 12; i++)
            f.container[i] = (uint8_t)(n + i);
        f.msg.bf = n & 1;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string("frame"));
        json_object_object_add(o, "n", json_object_new_int(n));
        json_object_object_add(o, "ul_crc", json_object_new_string("ABCD"));
        int rc = corelink_push_frame(l, o, &f);
        if (rc != CORELINK_OK && !(allow_full && rc == CORELINK_ERR_FULL))
            fail_msg("corelink_push_frame: %s", corelink_strerror(rc));
        json_object_put(o);
    }
}

static int wait_stats(corelink_t *l, size_t offset, uint64_t want, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 10) {
        corelink_stats_t s;
        corelink_get_stats(l, &s);
        uint64_t v = 0;
        memcpy(&v, (const char *)&s + offset, sizeof v);
        if (v >= want)
            return 0;
        usleep(10000);
    }
    return -1;
}
/* Waits up to 10 s for the spool to empty (every batch acked); fails otherwise. The
 * generous bounds here only cost time when a test fails: under qemu on a loaded machine
 * the link thread runs 10-50 times slower than natively. */
static void wait_spool_empty(corelink_t *l, corelink_stats_t *s)
{
    for (int t = 0; t < 1000; t++) {
        corelink_get_stats(l, s);
        if (s->spool_batches == 0)
            return;
        usleep(10000);
    }
    fail_msg("spool not empty after 10 s: %zu batches", s->spool_batches);
}

/* Waits up to 10 s until `total` frames are each spooled or counted as dropped (DSP-side
 * queue or spool bound); *s holds the last stats read. */
static void wait_all_accounted(corelink_t *l, corelink_stats_t *s, uint64_t total)
{
    for (int t = 0; t < 1000; t++) {
        corelink_get_stats(l, s);
        if (s->frames_dropped + s->spool_frames + s->spool_frames_dropped == total)
            return;
        usleep(10000);
    }
}
#define WAIT(l, field, want, ms) wait_stats((l), offsetof(corelink_stats_t, field), (want), (ms))

/* Receives until `frames` distinct frame numbers from..from+frames-1 were seen (each batch
 * checked: <= 100 frames, fields present, seq strictly growing within a connection), acking
 * when ack is set. Returns the number of batches; *hellos counts hello messages. */
static int collect(core_t *c, int from, int frames, bool ack, int *hellos, bool *seen,
                   uint64_t *first_seq)
{
    int batches = 0, distinct = 0;
    uint64_t last_seq = 0;
    for (int guard = 0; distinct < frames && guard < 400; guard++) {
        zmq_msg_t rid;
        json_object *o = core_recv(c, 5000, &rid);
        if (!o)
            fail_msg("core: no message (got %d of %d frames)", distinct, frames);
        const char *type = type_of(o);
        if (strcmp(type, "hello") == 0) {
            (*hellos)++;
            json_object *j;
            assert_true(json_object_object_get_ex(o, "station_id", &j));
            assert_string_equal(json_object_get_string(j), "station-A");
            assert_true(json_object_object_get_ex(o, "tx", &j) && json_object_get_boolean(j));
            assert_true(json_object_object_get_ex(o, "lat", &j));
            last_seq = 0;
        } else if (strcmp(type, "batch") == 0) {
            uint64_t seq = (uint64_t)int_of(o, "seq");
            assert_true(seq > last_seq);
            last_seq = seq;
            if (first_seq && !*first_seq)
                *first_seq = seq;
            json_object *fr;
            assert_true(json_object_object_get_ex(o, "frames", &fr));
            size_t n = json_object_array_length(fr);
            assert_true(n >= 1 && n <= 100);
            for (size_t i = 0; i < n; i++) {
                json_object *f = json_object_array_get_idx(fr, i), *j;
                int k = (int)int_of(f, "n");
                assert_true(k >= from && k < from + frames);
                assert_true(json_object_object_get_ex(f, "container", &j));
                char want[32];
                snprintf(want, sizeof want, "%02X%02X", (unsigned)(k & 0xFF),
                         (unsigned)((k + 1) & 0xFF));
                assert_memory_equal(json_object_get_string(j), want, 4);
                assert_int_equal(strlen(json_object_get_string(j)), 24);
                assert_true(json_object_object_get_ex(f, "station_id", &j));
                assert_true(json_object_object_get_ex(f, "ul_crc", &j));
                assert_int_equal(json_object_object_get_ex(f, "tx", &j), k & 1);
                if (!seen[k - from]) {
                    seen[k - from] = true;
                    distinct++;
                }
            }
            batches++;
            if (ack) {
                char a[64];
                snprintf(a, sizeof a, "{\"type\":\"ack\",\"seq\":%llu}", (unsigned long long)seq);
                core_send(c, &rid, a);
            }
        } else if (strcmp(type, "ping") == 0) {
            core_send(c, &rid, "{\"type\":\"pong\"}");
        }
        zmq_msg_close(&rid);
        json_object_put(o);
    }
    return batches;
}

/* ---- tests ----------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    if (test_tmpdir_create(tmpdir, sizeof tmpdir, "test_corelink") != 0)
        return -1;
    log_set_level(getenv("DEBUG") ? LOG_LEVEL_DEBUG : LOG_LEVEL_FATAL);
    if (zmq_curve_keypair(core_pub, core_sec) != 0 || zmq_curve_keypair(st_pub, st_sec) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return test_tmpdir_remove(tmpdir);
}

static int fresh(void **state)
{
    (void)state;
    static int k;
    snprintf(spooldir, sizeof spooldir, "%s/spool%d", tmpdir, k++);
    endpoint[0] = '\0';
    return 0;
}

static void batches_of_100_acked(void **state)
{
    (void)state;
    core_t c;
    core_start(&c, st_pub);
    corelink_t *l = link_open(5, 2);
    push_frames(l, 0, 250);
    bool seen[250] = {false};
    int hellos = 0;
    int batches = collect(&c, 0, 250, true, &hellos, seen, NULL);
    assert_int_equal(hellos, 1);
    assert_true(batches >= 3); /* 250 frames cannot fit fewer batches of <= 100 */
    assert_int_equal(WAIT(l, acks, (uint64_t)batches, 10000), 0);
    corelink_stats_t s;
    corelink_get_stats(l, &s);
    assert_int_equal(s.spool_batches, 0);
    assert_int_equal(s.frames_in, 250);
    assert_int_equal(s.frames_dropped, 0);
    assert_true(s.connected);
    assert_int_equal(s.auth_failures, 0);
    corelink_destroy(l);
    core_stop(&c);
}

static void small_batch_after_interval(void **state)
{
    (void)state;
    core_t c;
    core_start(&c, st_pub);
    corelink_t *l = link_open(5, 2);
    zmq_msg_t rid;
    json_object *o = core_recv(&c, 5000, &rid);
    assert_non_null(o);
    assert_string_equal(type_of(o), "hello");
    json_object_put(o);
    zmq_msg_close(&rid);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    push_frames(l, 0, 3);
    o = core_recv(&c, 5000, &rid);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(o);
    assert_string_equal(type_of(o), "batch");
    json_object *fr;
    assert_true(json_object_object_get_ex(o, "frames", &fr));
    assert_int_equal(json_object_array_length(fr), 3);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    assert_true(dt >= 0.09 && dt < 2.0); /* sealed 100 ms after the oldest frame */
    json_object_put(o);
    zmq_msg_close(&rid);
    corelink_destroy(l);
    core_stop(&c);
}

static void resent_after_core_restart(void **state)
{
    (void)state;
    core_t c;
    core_start(&c, st_pub);
    corelink_t *l = link_open(5, 0);
    push_frames(l, 0, 150);
    bool seen[400] = {false};
    int hellos = 0;
    uint64_t first = 0;
    collect(&c, 0, 150, false, &hellos, seen, &first); /* received, never acked */
    core_stop(&c);
    /* Core down: more frames arrive and are spooled. */
    push_frames(l, 150, 250);
    assert_int_equal(WAIT(l, batches, 5, 10000), 0);
    corelink_stats_t s;
    corelink_get_stats(l, &s);
    assert_int_equal(s.spool_frames, 400);
    /* The core comes back on the same endpoint: hello, then everything from the oldest. */
    core_start(&c, st_pub);
    memset(seen, 0, sizeof seen);
    uint64_t first2 = 0;
    collect(&c, 0, 400, true, &hellos, seen, &first2);
    assert_int_equal(hellos, 2);
    assert_int_equal(first2, first); /* same batch numbers: the core can deduplicate */
    wait_spool_empty(l, &s);
    assert_true(s.batches_resent >= 2);
    assert_true(s.connects >= 2);
    corelink_destroy(l);
    core_stop(&c);
}

static void silent_core_reconnects(void **state)
{
    (void)state;
    core_t c;
    core_start(&c, st_pub);
    corelink_t *l = link_open(0.5, 0);
    push_frames(l, 0, 10);
    bool seen[10] = {false};
    int hellos = 0;
    collect(&c, 0, 10, false, &hellos, seen, NULL); /* no ack: the link gives up on it */
    memset(seen, 0, sizeof seen);
    collect(&c, 0, 10, true, &hellos, seen, NULL);
    assert_int_equal(hellos, 2);
    assert_int_equal(WAIT(l, reconnects_timeout, 1, 100), 0);
    assert_int_equal(WAIT(l, acks, 1, 10000), 0);
    corelink_destroy(l);
    core_stop(&c);
}

static void unknown_key_refused(void **state)
{
    (void)state;
    char other_pub[41], other_sec[41];
    assert_int_equal(zmq_curve_keypair(other_pub, other_sec), 0);
    core_t c;
    core_start(&c, other_pub); /* does not know this station */
    corelink_t *l = link_open(5, 0);
    push_frames(l, 0, 20);
    assert_int_equal(WAIT(l, auth_failures, 1, 5000), 0);
    assert_true(atomic_load(&c.refused) >= 1);
    zmq_pollitem_t it = {c.router, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&it, 1, 300), 0); /* nothing reached the core */
    corelink_stats_t s;
    corelink_get_stats(l, &s);
    assert_false(s.connected);
    assert_int_equal(s.spool_frames, 20);
    core_stop(&c);
    /* The operator adds the key: everything spooled arrives. */
    core_start(&c, st_pub);
    bool seen[20] = {false};
    int hellos = 0;
    collect(&c, 0, 20, true, &hellos, seen, NULL);
    corelink_destroy(l);
    core_stop(&c);
}

static void station_restart_resends(void **state)
{
    (void)state;
    core_t c;
    core_start(&c, st_pub);
    corelink_t *l = link_open(5, 0);
    push_frames(l, 0, 150);
    bool seen[150] = {false};
    int hellos = 0;
    uint64_t first = 0;
    collect(&c, 0, 150, false, &hellos, seen, &first);
    corelink_destroy(l); /* "killed" before any ack */
    l = link_open(5, 0);
    memset(seen, 0, sizeof seen);
    uint64_t first2 = 0;
    collect(&c, 0, 150, true, &hellos, seen, &first2);
    assert_int_equal(first2, first);
    corelink_stats_t s;
    wait_spool_empty(l, &s);
    assert_true(s.next_seq > first + 1); /* seq persisted: new batches never reuse it */
    corelink_destroy(l);
    core_stop(&c);
}

/* A station that cannot transmit: the core's declines (sent to every station that heard a
 * BF=1 frame) are no failure; a payload is refused and counted. */
static void receive_only_station(void **state)
{
    (void)state;
    core_t c;
    core_start(&c, st_pub);
    receive_only = true;
    corelink_t *l = link_open(5, 0);
    receive_only = false;
    zmq_msg_t rid;
    json_object *o = core_recv(&c, 5000, &rid);
    assert_non_null(o);
    json_object_put(o);
    for (int i = 0; i < 3; i++)
        core_send(&c, &rid, "{\"type\":\"downlink\",\"ep_id\":\"CD1E0B56\",\"mc\":7,\"payload\":null}");
    core_send(&c, &rid, "{\"type\":\"downlink\",\"ep_id\":\"CD1E0B56\",\"mc\":8,"
                        "\"payload\":\"0A0B0C0D0E0F1011\"}");
    assert_int_equal(WAIT(l, downlinks_failed, 1, 10000), 0);
    corelink_stats_t s;
    corelink_get_stats(l, &s);
    assert_int_equal(s.downlinks, 0);
    assert_int_equal(s.downlinks_failed, 1);
    assert_int_equal(s.bad_messages, 0);
    zmq_msg_close(&rid);
    corelink_destroy(l);
    core_stop(&c);
}

static void downlinks_and_bad_input(void **state)
{
    (void)state;
    core_t c;
    core_start(&c, st_pub);
    corelink_t *l = link_open(5, 0);
    zmq_msg_t rid;
    json_object *o = core_recv(&c, 5000, &rid);
    assert_non_null(o);
    json_object_put(o);
    atomic_store(&dl_calls, 0);
    core_send(&c, &rid, "{\"type\":\"downlink\",\"ep_id\":\"CD1E0B56\",\"mc\":2105,"
                        "\"payload\":\"0A0B0C0D0E0F1011\",\"dl_auth\":\"BEEF\"}");
    assert_int_equal(WAIT(l, downlinks, 1, 10000), 0);
    assert_int_equal(last_dl.ep_id, 0xCD1E0B56);
    assert_int_equal(last_dl.mc, 2105);
    assert_true(last_dl.has_payload && last_dl.has_dl_auth);
    assert_int_equal(last_dl.payload[0], 0x0A);
    assert_int_equal(last_dl.payload[7], 0x11);
    assert_int_equal(last_dl.dl_auth[0], 0xBE);
    assert_int_equal(last_dl.dl_auth[1], 0xEF);
    /* Decline. */
    core_send(&c, &rid, "{\"type\":\"downlink\",\"ep_id\":\"CD1E0B56\",\"mc\":7,\"payload\":null}");
    assert_int_equal(WAIT(l, downlinks, 2, 10000), 0);
    assert_false(last_dl.has_payload);
    /* The scheduler refuses one: counted, not fatal. */
    core_send(&c, &rid, "{\"type\":\"downlink\",\"ep_id\":\"DEADBEEF\",\"mc\":7,\"payload\":null}");
    assert_int_equal(WAIT(l, downlinks_failed, 1, 10000), 0);
    /* Hostile messages: each counted, never passed on. */
    int calls = atomic_load(&dl_calls);
    const char *bad[] = {
        "not json",
        "[1,2]",
        "{\"type\":42}",
        "{\"type\":\"downlink\",\"ep_id\":\"XYZ\",\"mc\":1,\"payload\":null}",
        "{\"type\":\"downlink\",\"ep_id\":\"CD1E0B56\",\"mc\":4096,\"payload\":null}",
        "{\"type\":\"downlink\",\"ep_id\":\"CD1E0B56\",\"mc\":1,\"payload\":\"0A0B\"}",
        "{\"type\":\"downlink\",\"ep_id\":\"CD1E0B56\",\"mc\":1,\"payload\":\"0A0B0C0D0E0F1011\","
        "\"dl_auth\":\"12345\"}",
        "{\"type\":\"ack\",\"seq\":-3}",
        "{\"type\":\"surprise\"}",
        "{\"type\":\"ack\",\"seq\":1} trailing",
        "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
    };
    size_t nbad = sizeof bad / sizeof bad[0];
    for (size_t i = 0; i < nbad; i++)
        core_send(&c, &rid, bad[i]);
    core_send(&c, &rid, "{\"type\":\"error\",\"error\":\"bad\\nforged line\",\"seq\":5}");
    core_send(&c, &rid, "{\"type\":\"ack\",\"seq\":999999}");
    assert_int_equal(WAIT(l, bad_messages, nbad, 10000), 0);
    assert_int_equal(WAIT(l, core_errors, 1, 10000), 0);
    assert_int_equal(WAIT(l, acks_unknown, 1, 10000), 0);
    assert_int_equal(atomic_load(&dl_calls), calls);
    /* Station events reach the core wrapped as {"type":"event"}. */
    json_object *ev = json_object_new_object();
    json_object_object_add(ev, "type", json_object_new_string("downlink_sent"));
    assert_int_equal(corelink_push_event(l, ev), CORELINK_OK);
    json_object_put(ev);
    zmq_msg_close(&rid);
    bool got = false;
    for (int i = 0; i < 20 && !got; i++) {
        o = core_recv(&c, 3000, &rid);
        assert_non_null(o);
        if (strcmp(type_of(o), "event") == 0) {
            json_object *e;
            assert_true(json_object_object_get_ex(o, "event", &e));
            assert_string_equal(type_of(e), "downlink_sent");
            got = true;
        }
        json_object_put(o);
        zmq_msg_close(&rid);
    }
    assert_true(got);
    corelink_stats_t s;
    corelink_get_stats(l, &s);
    assert_true(s.connected); /* garbage did not break the link */
    corelink_destroy(l);
    core_stop(&c);
}

/* No core at all: the DSP-side queue drops (never blocks) and counts, the spool keeps the
 * newest frames up to its bound and counts what it dropped; nothing vanishes uncounted. */
static void queue_and_spool_bounds(void **state)
{
    (void)state;
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:1"); /* nobody listens */
    corelink_t *l = link_open_ex(5, 0, 10, 250);
    allow_full = true;
    push_frames(l, 0, 1000);
    allow_full = false; /* far faster than the link thread drains 10 at a time */
    corelink_stats_t s;
    wait_all_accounted(l, &s, 1000);
    assert_int_equal(s.frames_in, 1000);
    assert_true(s.frames_dropped > 0);
    assert_true(s.spool_frames <= 250);
    assert_int_equal(s.frames_dropped + s.spool_frames + s.spool_frames_dropped, 1000);
    assert_false(s.connected);
    corelink_destroy(l);
    /* A restart on that spool, 600 more frames: the bound holds, the oldest go, counted. */
    size_t before = s.spool_frames;
    l = link_open_ex(5, 0, 0, 250);
    push_frames(l, 0, 600);
    wait_all_accounted(l, &s, before + 600);
    assert_int_equal(s.frames_dropped, 0);
    assert_true(s.spool_frames <= 250);
    assert_int_equal(s.spool_frames + s.spool_frames_dropped, before + 600);
    corelink_destroy(l);
}

static void bad_config_and_keys(void **state)
{
    (void)state;
    char err[512];
    const char *eps[1] = {"tcp://127.0.0.1:1"};
    corelink_config_t c = {.endpoints = eps, .nendpoints = 1, .core_public_key = core_pub,
                           .secret_key = st_sec, .station_id = "A", .spool_dir = spooldir};
    corelink_config_t b = c;
    b.station_id = "has space";
    assert_null(corelink_create(&b, err, sizeof err));
    assert_non_null(strstr(err, "station.id"));
    b = c;
    b.core_public_key = "short";
    assert_null(corelink_create(&b, err, sizeof err));
    assert_non_null(strstr(err, "core.public_key"));
    b = c;
    b.batch_max_frames = 101;
    assert_null(corelink_create(&b, err, sizeof err));
    b = c;
    b.nendpoints = 0;
    assert_null(corelink_create(&b, err, sizeof err));
    /* Key files: bare, labelled, missing, garbage. */
    char path[256], key[41];
    snprintf(path, sizeof path, "%s/station.key", tmpdir);
    char text[200];
    snprintf(text, sizeof text, "# station key\n%s\n", st_sec);
    test_write_text(path, text);
    assert_int_equal(corelink_read_secret_key(path, key, err, sizeof err), 0);
    assert_string_equal(key, st_sec);
    snprintf(text, sizeof text, "public: %s\nsecret: %s\n", st_pub, st_sec);
    test_write_text(path, text);
    assert_int_equal(corelink_read_secret_key(path, key, err, sizeof err), 0);
    assert_string_equal(key, st_sec);
    snprintf(text, sizeof text, "%s\n%s\n", st_pub, st_sec); /* ambiguous */
    test_write_text(path, text);
    assert_int_equal(corelink_read_secret_key(path, key, err, sizeof err), -1);
    test_write_text(path, "secret: not-a-key\n");
    assert_int_equal(corelink_read_secret_key(path, key, err, sizeof err), -1);
    assert_non_null(strstr(err, "no secret key"));
    assert_int_equal(corelink_read_secret_key("/nonexistent/key", key, err, sizeof err), -1);
    /* A frame whose CRC failed is not sent; NULL-safety. */
    corelink_t *l = corelink_create(&c, err, sizeof err);
    assert_non_null(l);
    ul_frame_t f;
    memset(&f, 0, sizeof f);
    json_object *o = json_object_new_object();
    assert_int_equal(corelink_push_frame(l, o, &f), CORELINK_ERR_ARG);
    assert_int_equal(corelink_push_frame(NULL, o, &f), CORELINK_ERR_ARG);
    json_object_put(o);
    corelink_destroy(l);
    corelink_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(batches_of_100_acked, fresh),
        cmocka_unit_test_setup(small_batch_after_interval, fresh),
        cmocka_unit_test_setup(resent_after_core_restart, fresh),
        cmocka_unit_test_setup(silent_core_reconnects, fresh),
        cmocka_unit_test_setup(unknown_key_refused, fresh),
        cmocka_unit_test_setup(station_restart_resends, fresh),
        cmocka_unit_test_setup(downlinks_and_bad_input, fresh),
        cmocka_unit_test_setup(receive_only_station, fresh),
        cmocka_unit_test_setup(queue_and_spool_bounds, fresh),
        cmocka_unit_test_setup(bad_config_and_keys, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
