/* test_nsapps: the network core's messages reach a real HTTP endpoint (test/httpsink.h) as
 * DATA callbacks with the stations that heard them, their positions and the device type's
 * decoded payload; the callback's downlink answer for a BF=1 message of a device in
 * callback mode goes back to the core, which sends it to the best station. Run twice: the
 * callback queue in its own database (queued after the commit), and in the core's database
 * with the rows written inside the accepting transaction. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hexutil.h"
#include "httpsink.h"
#include "nsapps.h"
#include "nsdb.h"
#include "nsreg.h"
#include "nstest.h"
#include "testutil.h"

static char dir[256];
static const uint8_t KEY[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};
#define EP 0x0C0FFEE1u
#define T0 1764158400.0

static int64_t clock_ms = (int64_t)(T0 * 1000);
static int64_t test_clock(void *ctx)
{
    (void)ctx;
    return clock_ms;
}

static json_object *frame(uint16_t mc, bool bf, int rank, double t, double snr)
{
    static const uint8_t pl[4] = {0x2A, 0x07, 0x01, 0x02};
    json_object *f = nstest_frame(EP, KEY, mc, bf, pl, sizeof pl, rank, t, snr);
    assert_non_null(f);
    return f;
}

static char sent_body[4][512];
static char sent_to[4][16];
static int nsent;
static int sender(const char *station, const char *json, void *user)
{
    (void)user;
    if (nsent < 4) {
        snprintf(sent_to[nsent], sizeof sent_to[0], "%s", station);
        snprintf(sent_body[nsent], sizeof sent_body[0], "%s", json);
        nsent++;
    }
    return 0;
}

/* A COMMITTED hook that runs before nsapps's: how many callback rows the core's database
 * holds the moment the accepting transaction is committed. */
static nsdb_t *core_db;
static int64_t rows_at_commit;
static int at_commit(const nscore_event_t *ev, nsdb_t *db, void *user)
{
    (void)db, (void)user;
    if (ev->type == NSCORE_EV_MESSAGE && rows_at_commit < 0)
        assert_int_equal(nsdb_query_int(core_db, "SELECT count(*) FROM app_callback_queue", NULL,
                                        0, &rows_at_commit), 1);
    return 0;
}

static void drain(callback_t *cb)
{
    int idle = 0;
    for (int i = 0; i < 100 && idle < 3; i++)
        idle = callback_poll(cb, 100) == 0 ? idle + 1 : 0;
}

static void end_to_end(bool in_tx)
{
    assert_int_equal(test_tmpdir_create(dir, sizeof dir, "test_nsapps"), 0);
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/ns.db", dir);
    nsdb_t *db = nsdb_open(path, 0, err, sizeof err);
    assert_non_null(db);
    nsreg_device_t d;
    nsreg_device_init(&d, EP, KEY);
    d.dl_mode = NSREG_DL_CALLBACK;
    snprintf(d.device_type, sizeof d.device_type, "meter");
    assert_int_equal(nsreg_device_put(db, &d, T0), 0);
    nsreg_station_t sa = {.station_id = "A", .lat = 48.5, .lng = 11.25, .tx = true};
    assert_int_equal(nsreg_station_seen(db, &sa, "ns1", T0), 0);

    nscore_config_t ncfg;
    nscore_config_init(&ncfg);
    ncfg.instance = "ns1";
    nscore_t *core = nscore_create(&ncfg, db, err, sizeof err);
    assert_non_null(core);
    nscore_set_sender(core, sender, NULL);
    core_db = db;
    rows_at_commit = -1;
    assert_int_equal(nscore_add_hook(core, NSCORE_HOOK_COMMITTED, at_commit, NULL), 0);
    nsapps_t *apps = nsapps_create(core, 5000, test_clock, NULL, err, sizeof err);
    assert_non_null(apps);
    assert_int_equal(nsapps_set_grammar(apps, "meter", "hum::uint:8 x::uint:4::7 y::uint:4::3 n:2:uint:16:little-endian",
                                        err, sizeof err), 0);
    assert_int_equal(nsapps_set_grammar(apps, "meter", "bad::uint:99", err, sizeof err), -1);
    assert_string_equal(err, "device type meter: payload grammar: integer size must be 1..64 bits at column 11");

    httpsink_t *sink = httpsink_new();
    assert_non_null(sink);
    httpsink_set(sink, 200, "{\"0C0FFEE1\": {\"downlinkData\": \"0102030405060708\"}}", 0);
    snprintf(path, sizeof path, in_tx ? "%s/ns.db" : "%s/callbacks.db", dir);
    callback_config_t ccfg = {.db_path = path, .now_ms = test_clock,
                              .on_downlink = nsapps_callback_downlink, .downlink_ctx = apps};
    callback_t *cb = callback_create(&ccfg, err, sizeof err);
    assert_non_null(cb);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/sigfox", sink->port);
    callback_def_t def = {.name = "data", .type = APPEVENT_DATA, .url = url, .downlink = true,
                          .body = "{\"device\":\"{device}\",\"seq\":{seqNumber},\"ack\":{ack},"
                                  "\"data\":\"{data}\",\"station\":\"{station}\",\"lat\":{lat},"
                                  "\"n\":{nbStations},\"hum\":{customData#hum},"
                                  "\"y\":{customData#y},\"nn\":{customData#n},"
                                  "\"type\":\"{deviceTypeId}\"}"};
    assert_int_equal(callback_add(cb, &def, err, sizeof err), 0);
    nsapps_set_outputs(apps, cb, NULL);
    nsapps_queue_in_transaction(apps, in_tx);

    /* BF=1 from two stations, A the stronger */
    nscore_frame_t f[2] = {{.station_id = "A", .frame = frame(33, true, 1, T0, 20), .rx_s = T0},
                           {.station_id = "B", .frame = frame(33, true, 1, T0, 5), .rx_s = T0}};
    assert_int_equal(nscore_ingest(core, f, 2), 0);
    /* in the transaction: the row was committed with the message; else queued later */
    assert_int_equal(rows_at_commit, in_tx ? 1 : 0);
    drain(cb);
    assert_int_equal(httpsink_count(sink), 1);
    assert_string_equal(sink->req[0].body,
                        "{\"device\":\"0C0FFEE1\",\"seq\":33,\"ack\":true,\"data\":\"2a070102\","
                        "\"station\":\"A\",\"lat\":48.500000,\"n\":2,\"hum\":42,\"y\":7,"
                        "\"nn\":513,\"type\":\"meter\"}");
    /* the answer reached the core: the next tick sends it to A, B is declined */
    assert_int_equal(nscore_tick(core, T0 + 1), 0);
    int to_a = -1;
    for (int i = 0; i < nsent; i++)
        if (!strcmp(sent_to[i], "A"))
            to_a = i;
    assert_true(to_a >= 0);
    assert_non_null(strstr(sent_body[to_a], "\"payload\":\"0102030405060708\""));

    /* the same frames again (a resent batch): no second callback */
    assert_int_equal(nscore_ingest(core, f, 2), 0);
    drain(cb);
    assert_int_equal(httpsink_count(sink), 1);
    json_object_put(f[0].frame);
    json_object_put(f[1].frame);

    /* BF=0, one station: ack false; a short payload for the grammar */
    nscore_frame_t g = {.station_id = "B", .frame = frame(34, false, 1, T0 + 60, 9), .rx_s = T0 + 60};
    assert_int_equal(nscore_ingest(core, &g, 1), 0);
    json_object_put(g.frame);
    drain(cb);
    assert_int_equal(httpsink_count(sink), 2);
    assert_non_null(strstr(sink->req[1].body, "\"seq\":34,\"ack\":false,"));
    assert_non_null(strstr(sink->req[1].body, "\"station\":\"B\",\"lat\":,"));

    /* ERROR callback: the device type's period passes without a message, reported once */
    callback_def_t errcb = {.name = "loss", .type = APPEVENT_ERROR, .url = url,
                            .content_type = "text/plain",
                            .body = "{device} {deviceTypeId} {info} last {lastSeen} now {time}"};
    assert_int_equal(callback_add(cb, &errcb, err, sizeof err), 0);
    assert_int_equal(nsapps_type_put(apps, db, "meter", "bad::float:16", 600, T0, err, sizeof err), -1);
    assert_string_equal(err, "device type meter: payload grammar: float size must be 32 or 64 bits at column 12");
    assert_int_equal(nsapps_type_put(apps, db, "meter",
                                     "hum::uint:8 x::uint:4::7 y::uint:4::3 n:2:uint:16:little-endian",
                                     600, T0, err, sizeof err), 0);
    assert_int_equal(nsapps_check_comm_loss(apps, db, T0 + 660), 0);
    assert_int_equal(nsapps_check_comm_loss(apps, db, T0 + 661), 1);
    assert_int_equal(nsapps_check_comm_loss(apps, db, T0 + 2000), 0);
    drain(cb);
    assert_int_equal(httpsink_count(sink), 3);
    assert_string_equal(sink->req[2].body, "0C0FFEE1 meter Communication loss last 1764158460 now 1764159061");
    assert_int_equal(nsapps_load_types(apps, db), 1);

    callback_destroy(cb);
    httpsink_free(sink);
    nsapps_destroy(apps);
    nscore_destroy(core);
    nsdb_close(db);
    assert_int_equal(test_tmpdir_remove(dir), 0);
}

static void test_end_to_end(void **state)
{
    (void)state;
    end_to_end(false);
}

static void test_end_to_end_queue_in_tx(void **state)
{
    (void)state;
    nsent = 0;
    clock_ms = (int64_t)(T0 * 1000);
    end_to_end(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_end_to_end),
        cmocka_unit_test(test_end_to_end_queue_in_tx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
