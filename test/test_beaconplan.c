/* test_beaconplan: Monarch beacon slots (seeds/001: every 300 s, 0..10 s into the slot)
 * through a real file transmitter: stream-time slots in a replay, UTC slots live, the
 * same offsets for the same seed, refusals reported as events. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "beaconplan.h"
#include "monarch.h"

#include "testutil.h"

#define CENTER_HZ 869.525e6
#define BEACON_HZ 869.505e6
#define MAX_EV 8

static char tmpdir[64];
static beaconplan_t *plan; /* the planner the transmitter reports to */

typedef struct {
    int n;
    double t_start_s[MAX_EV];
    char status[MAX_EV][16];
    bool has_file[MAX_EV];
} beacons_t;

static void on_event(const delivery_event_t *ev, void *user)
{
    beacons_t *b = user;
    assert_string_equal(ev->topic, "monarch_beacon");
    assert_true(b->n < MAX_EV);
    json_object *v;
    assert_true(json_object_object_get_ex(ev->json, "t_start_s", &v));
    b->t_start_s[b->n] = json_object_get_double(v);
    assert_true(json_object_object_get_ex(ev->json, "status", &v));
    snprintf(b->status[b->n], sizeof b->status[0], "%s", json_object_get_string(v));
    b->has_file[b->n] = json_object_object_get_ex(ev->json, "file", NULL);
    b->n++;
}

static void on_result(const txsink_result_t *r, void *user)
{
    (void)user;
    assert_true(r->beacon);
    beaconplan_tx_result(plan, r);
}

static txsink_t *file_sink(bool beacons)
{
    txsink_config_t cfg = {.kind = TXSINK_FILE,
                           .dir = tmpdir,
                           .center_freq_hz = CENTER_HZ,
                           .on_result = on_result,
                           .beacon_tx_freq_hz = beacons ? BEACON_HZ : 0,
                           .beacon_df1_hz = beacons ? MONARCH_DF_B_HZ : 0,
                           .beacon_df2_hz = beacons ? MONARCH_DF_C_HZ : 0};
    char err[256] = "";
    txsink_t *s = txsink_create(&cfg, err, sizeof err);
    if (!s)
        fail_msg("txsink_create: %s", err);
    return s;
}

/* A planner with its transmitter (a file sink, able to send beacons or not) and a
 * delivery whose downlink events land in got. */
typedef struct {
    delivery_t *out;
    txsink_t *tx;
    beacons_t got;
} rig_t;

static void rig_open(rig_t *r, bool live, uint64_t seed, bool beacons)
{
    memset(r, 0, sizeof *r);
    delivery_config_t dc = {0};
    r->out = delivery_create(&dc, NULL, 0);
    assert_non_null(r->out);
    assert_int_equal(delivery_add_sink(r->out, DELIVERY_DOWNLINK, on_event, &r->got), 0);
    r->tx = file_sink(beacons);
    beaconplan_config_t c = {.live = live,
                             .lead_s = 1.0,
                             .freq_hz = BEACON_HZ,
                             .df1_hz = MONARCH_DF_B_HZ,
                             .df2_hz = MONARCH_DF_C_HZ,
                             .seed = seed,
                             .tx = r->tx,
                             .out = r->out};
    plan = beaconplan_create(&c);
    assert_non_null(plan);
}

/* Waits for the transmitter's reports and frees everything; returns the stats. */
static beaconplan_stats_t rig_close(rig_t *r)
{
    assert_int_equal(txsink_drain(r->tx, 20000), 0);
    txsink_destroy(r->tx);
    beaconplan_stats_t st;
    beaconplan_get_stats(plan, &st);
    beaconplan_destroy(plan);
    plan = NULL;
    delivery_destroy(r->out);
    return st;
}

/* A replay: slots at stream multiples of 300 s from 0; each beacon inside the first 10 s
 * of its slot, submitted once its lead time is reached; the transmitter's reports come
 * back as "ok" events with the file. */
static void run_replay(uint64_t seed, beacons_t *got)
{
    rig_t r;
    rig_open(&r, false, seed, true);
    int submitted = 0;
    for (double now = 0; now <= 700; now += 0.5)
        submitted += beaconplan_tick(plan, now, 0, 0);
    assert_int_equal(submitted, 3);
    beaconplan_stats_t st = rig_close(&r);
    assert_int_equal(st.sent, 3);
    assert_int_equal(st.failed + st.refused, 0);
    *got = r.got;
    assert_int_equal(got->n, 3);
    for (int k = 0; k < 3; k++) {
        assert_string_equal(got->status[k], "ok");
        assert_true(got->has_file[k]);
        assert_true(got->t_start_s[k] >= k * MONARCH_PERIOD_S);
        assert_true(got->t_start_s[k] < k * MONARCH_PERIOD_S + MONARCH_JITTER_S);
    }
}

/* The same seed gives the same offsets, another seed others. */
static void test_replay_slots(void **state)
{
    (void)state;
    beacons_t a, b, c;
    run_replay(0x5167F0CDULL, &a);
    run_replay(0x5167F0CDULL, &b);
    run_replay(42, &c);
    bool differs = false;
    for (int k = 0; k < 3; k++) {
        assert_true(a.t_start_s[k] == b.t_start_s[k]);
        differs |= a.t_start_s[k] != c.t_start_s[k];
    }
    assert_true(differs);
}

/* Live: nothing before the clock is known; then the first UTC slot that leaves the lead
 * time, converted back to stream time. */
static void test_live_slots(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, true, 7, true);
    assert_int_equal(beaconplan_tick(plan, 50.0, 0, 0), 0); /* no UTC yet */
    /* Stream time 100 s is 2 s before a UTC slot boundary: room for the 1 s lead, so
     * that slot is the first (0.5 s before it would not be: the next one would). */
    double unix0 = 300.0 * 5773000 - 2.0;
    int n = 0;
    for (double now = 100; now <= 112; now += 0.25)
        n += beaconplan_tick(plan, now, 100.0, unix0);
    assert_int_equal(n, 1);
    beaconplan_stats_t st = rig_close(&r);
    assert_int_equal(st.sent, 1);
    assert_int_equal(r.got.n, 1);
    assert_true(r.got.t_start_s[0] >= 102.0 && r.got.t_start_s[0] < 112.0);
}

/* A transmitter that cannot send beacons: each one is refused, counted and reported with
 * status tx_error and the reason; a planner without a transmitter is refused. */
static void test_refused(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, false, 1, false);
    assert_int_equal(beaconplan_tick(plan, 0.0, 0, 0), 0); /* plans slot 0 */
    assert_int_equal(beaconplan_tick(plan, 320.0, 0, 0), 0);
    beaconplan_stats_t st = rig_close(&r);
    assert_int_equal(st.refused, 2);
    assert_int_equal(r.got.n, 2);
    assert_string_equal(r.got.status[0], "tx_error");
    assert_false(r.got.has_file[0]);
    beaconplan_config_t c = {.freq_hz = BEACON_HZ};
    assert_null(beaconplan_create(&c));
}

static int setup(void **state)
{
    (void)state;
    return test_tmpdir_create(tmpdir, sizeof tmpdir, "test_beaconplan");
}

static int teardown(void **state)
{
    (void)state;
    return test_tmpdir_remove(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_slots),
        cmocka_unit_test(test_live_slots),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
