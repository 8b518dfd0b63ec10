/* test_cbtemplate: appevent from docs/api.md event JSON, and the Sigfox callback
 * template variables with URL / JSON / header escaping (seeds/000 §7.1.3). Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "appevent.h"
#include "cbtemplate.h"

/* A message event of the network core: two stations, decoded fields. */
static const char *core_msg =
    "{\"type\":\"message\",\"format_version\":1,\"ep_id\":\"ED4E06E3\",\"mc\":1222,"
    "\"bf\":true,\"kind\":\"app\",\"payload\":\"CA3A9B6D\",\"auth\":\"ok\","
    "\"time_utc\":\"2026-11-26T12:33:15.184164Z\",\"snr_db\":29.47,"
    "\"stations\":[{\"station_id\":\"B\",\"bs_rssi_dbm\":-120.5,\"snr_db\":8.125,"
    "\"lat\":48.100000,\"lng\":11.500000,\"nframes\":2},"
    "{\"station_id\":\"A\\\"x\",\"bs_rssi_dbm\":-101.25,\"snr_db\":20,\"lat\":48.2,"
    "\"lng\":11.6,\"nframes\":3}],"
    "\"decoded\":{\"t\":-2,\"ok\":true,\"name\":\"a\\\"b&c\"},\"device_type\":\"meter\"}";

static void load(const char *json, appevent_t *ev)
{
    json_object *o = json_tokener_parse(json);
    assert_non_null(o);
    char err[128] = "";
    appevent_init(ev);
    int rc = appevent_from_json(o, ev, err, sizeof err);
    if (rc != 0)
        fail_msg("from_json: %d %s", rc, err);
    json_object_put(o);
}

static void expect(const char *tmpl, appevent_type_t type, const appevent_t *ev,
                   cbtemplate_escape_t esc, const char *want)
{
    char err[200] = "";
    cbtemplate_t *t = cbtemplate_create(tmpl, type, err, sizeof err);
    if (!t)
        fail_msg("template '%s' refused: %s", tmpl, err);
    char *got = cbtemplate_expand(t, ev, esc);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("'%s': got '%s', want '%s'", tmpl, got, want);
    free(got);
    cbtemplate_destroy(t);
}

static void test_event_from_core(void **state)
{
    (void)state;
    appevent_t ev;
    load(core_msg, &ev);
    assert_int_equal(ev.type, APPEVENT_DATA);
    assert_int_equal(ev.ep_id, 0xED4E06E3u);
    assert_int_equal(ev.seq, 1222);
    assert_true(ev.ack);
    assert_int_equal(ev.time_s, 1795696395); /* date -d 2026-11-26T12:33:15Z +%s */
    assert_int_equal(ev.data_len, 4);
    assert_int_equal(ev.nstations, 2);
    /* the strongest station first */
    assert_string_equal(ev.stations[0].id, "A\"x");
    assert_int_equal(ev.stations[0].nrep, 3);
    assert_string_equal(ev.device_type, "meter");
    json_object *j = appevent_to_json(&ev);
    assert_non_null(j);
    assert_string_equal(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
                        "{\"type\":\"data\",\"subtype\":\"uplink\",\"device\":\"ED4E06E3\","
                        "\"time\":1795696395,\"seqNumber\":1222,\"data\":\"ca3a9b6d\","
                        "\"ack\":true,\"stations\":[{\"id\":\"A\\\"x\",\"rssi\":-101.25,"
                        "\"snr\":20.00,\"lat\":48.200000,\"lng\":11.600000,\"nbRep\":3},{\"id\":\"B\","
                        "\"rssi\":-120.50,\"snr\":8.12,\"lat\":48.100000,\"lng\":11.500000,\"nbRep\":2}],"
                        "\"avgSnr\":14.06,\"decoded\":{\"t\":-2,\"ok\":true,\"name\":\"a\\\"b&c\"},"
                        "\"deviceType\":\"meter\"}");
    json_object_put(j);
    appevent_t cp;
    appevent_copy(&cp, &ev);
    appevent_clear(&ev);
    assert_null(ev.decoded);
    assert_non_null(cp.decoded);
    appevent_clear(&cp);
}

static void test_event_kinds(void **state)
{
    (void)state;
    appevent_t ev;
    /* sigfoxd's own message: one station "local" from the event's radio fields; bf with a
     * direct-mode downlink is no callback ack */
    load("{\"type\":\"message\",\"ep_id\":\"0000ABCD\",\"mc\":7,\"bf\":true,\"kind\":\"app\","
         "\"downlink_mode\":\"direct\",\"payload_bit\":1,\"rssi_dbfs\":-33.3,\"snr_db\":12.5,"
         "\"time_utc\":\"2026-01-01T00:00:00Z\"}",
         &ev);
    assert_false(ev.ack);
    assert_int_equal(ev.nstations, 1);
    assert_string_equal(ev.stations[0].id, "local");
    assert_int_equal(ev.data_len, 1);
    assert_int_equal(ev.data[0], 1);
    appevent_clear(&ev);
    load("{\"type\":\"message\",\"ep_id\":\"0000ABCD\",\"mc\":8,\"bf\":false,"
         "\"kind\":\"keepalive\",\"payload\":\"0102\",\"vdd_idle_mv\":3300,\"vdd_tx_mv\":3100,"
         "\"temp_tenth_c\":215,\"temp_c\":21.5,\"time_utc\":\"2026-01-01T00:00:01Z\"}",
         &ev);
    assert_int_equal(ev.type, APPEVENT_SERVICE);
    assert_int_equal(ev.subtype, APPEVENT_SUB_STATUS);
    expect("{device} {temp} {batt} {vddIdle}", APPEVENT_SERVICE, &ev, CBTEMPLATE_ESC_NONE,
           "0000ABCD 21.5 3.10 3300");
    appevent_clear(&ev);
    load("{\"type\":\"downlink_lost\",\"ep_id\":\"0000ABCD\",\"mc\":9,"
         "\"time_utc\":\"2026-01-01T00:00:02Z\"}", &ev);
    assert_int_equal(ev.subtype, APPEVENT_SUB_DOWNLINK_ACK);
    expect("{downlinkAck} {infoCode} {infoMessage}", APPEVENT_SERVICE, &ev, CBTEMPLATE_ESC_NONE,
           "false 1 downlink_lost");
    appevent_clear(&ev);
    load("{\"type\":\"comm_loss\",\"ep_id\":\"0000ABCD\",\"time_s\":1700000000,"
         "\"last_seen_s\":1699990000}", &ev);
    assert_int_equal(ev.type, APPEVENT_ERROR);
    expect("{\"d\":\"{device}\",\"i\":\"{info}\",\"s\":\"{severity}\",\"l\":{lastSeen},\"t\":{time}}",
           APPEVENT_ERROR, &ev, CBTEMPLATE_ESC_JSON,
           "{\"d\":\"0000ABCD\",\"i\":\"Communication loss\",\"s\":\"ERROR\",\"l\":1699990000,"
           "\"t\":1700000000}");
    appevent_clear(&ev);

    /* not for integrations / malformed */
    char err[128];
    static const struct {
        const char *json;
        int rc;
        const char *err;
    } t[] = {
        {"{\"type\":\"frame\",\"ep_id\":\"00000001\"}", 1, ""},
        {"{\"type\":\"stats\"}", 1, ""},
        {"{\"type\":\"message\",\"kind\":\"dl_confirmation\",\"ep_id\":\"00000001\"}", 1, ""},
        {"[1]", -1, "event: not a JSON object"},
        {"{\"kind\":\"app\"}", -1, "event: no type"},
        {"{\"type\":\"message\",\"kind\":\"app\",\"ep_id\":\"XYZ\"}", -1, "event: missing or bad ep_id"},
        {"{\"type\":\"message\",\"kind\":\"app\",\"ep_id\":\"00000001\",\"time_utc\":\"yesterday\"}", -1, "event: bad time_utc"},
        {"{\"type\":\"message\",\"kind\":\"app\",\"ep_id\":\"00000001\",\"mc\":1,\"payload\":\"0102030405060708090A0B0C0D\"}", -1, "event: bad payload hex"},
        {"{\"type\":\"message\",\"kind\":\"app\",\"ep_id\":\"00000001\",\"mc\":1,\"stations\":[1]}", -1, "event: bad stations array"},
        {"{\"type\":\"message\",\"kind\":\"app\",\"ep_id\":\"00000001\"}", -1, "event: missing or bad mc (0 .. 4095)"},
        {"{\"type\":\"message\",\"kind\":\"keepalive\",\"ep_id\":\"00000001\",\"mc\":4096}", -1, "event: missing or bad mc (0 .. 4095)"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        json_object *o = json_tokener_parse(t[i].json);
        err[0] = '\0';
        appevent_init(&ev);
        int rc = appevent_from_json(o, &ev, err, sizeof err);
        if (rc != t[i].rc || strcmp(err, t[i].err) != 0)
            fail_msg("%s: rc %d '%s'", t[i].json, rc, err);
        appevent_clear(&ev);
        json_object_put(o);
    }
}

static void test_variables(void **state)
{
    (void)state;
    appevent_t ev;
    load(core_msg, &ev);
    expect("{device}|{time}|{data}|{seqNumber}|{ack}|{station}|{rssi}|{snr}|{avgSnr}|{lat}|{lng}"
           "|{nbStations}|{deviceTypeId}",
           APPEVENT_DATA, &ev, CBTEMPLATE_ESC_NONE,
           "ED4E06E3|1795696395|ca3a9b6d|1222|true|A\"x|-101.25|20.00|14.06|48.200000|11.600000"
           "|2|meter");
    expect("{duplicates}", APPEVENT_DATA, &ev, CBTEMPLATE_ESC_JSON,
           "[{\"bsId\":\"B\",\"rssi\":-120.50,\"snr\":8.12,\"nbRep\":2}]");
    expect("{stations}", APPEVENT_DATA, &ev, CBTEMPLATE_ESC_JSON,
           "[{\"bsId\":\"A\\\"x\",\"rssi\":-101.25,\"snr\":20.00,\"nbRep\":3},"
           "{\"bsId\":\"B\",\"rssi\":-120.50,\"snr\":8.12,\"nbRep\":2}]");
    expect("{customData#t} {customData#ok} {customData#name} [{customData#missing}]",
           APPEVENT_DATA, &ev, CBTEMPLATE_ESC_NONE, "-2 true a\"b&c []");
    expect("{decoded}", APPEVENT_DATA, &ev, CBTEMPLATE_ESC_JSON,
           "{\"t\":-2,\"ok\":true,\"name\":\"a\\\"b&c\"}");
    /* JSON body: braces of the body are literal, values escaped inside strings */
    expect("{\"device\":\"{device}\",\"st\":\"{station}\",\"n\":\"{customData#name}\","
           "\"dup\":{duplicates},\"x\":{}}",
           APPEVENT_DATA, &ev, CBTEMPLATE_ESC_JSON,
           "{\"device\":\"ED4E06E3\",\"st\":\"A\\\"x\",\"n\":\"a\\\"b&c\","
           "\"dup\":[{\"bsId\":\"B\",\"rssi\":-120.50,\"snr\":8.12,\"nbRep\":2}],\"x\":{}}");
    /* URL: percent-encoding of values only */
    expect("http://h/cb?id={device}&n={customData#name}&s={station}&r={rssi}", APPEVENT_DATA,
           &ev, CBTEMPLATE_ESC_URL,
           "http://h/cb?id=ED4E06E3&n=a%22b%26c&s=A%22x&r=-101.25");
    expect("{duplicates}", APPEVENT_DATA, &ev, CBTEMPLATE_ESC_URL,
           "%5B%7B%22bsId%22%3A%22B%22%2C%22rssi%22%3A-120.50%2C%22snr%22%3A8.12%2C%22nbRep%22%3A2%7D%5D");
    /* header: control characters cannot start a new header */
    strcpy(ev.device_type, "a\r\nX-Evil: 1");
    expect("{deviceTypeId}", APPEVENT_DATA, &ev, CBTEMPLATE_ESC_HEADER, "a  X-Evil: 1");
    expect("{deviceTypeId}", APPEVENT_DATA, &ev, CBTEMPLATE_ESC_JSON, "a\\u000d\\u000aX-Evil: 1");
    /* no stations: station fields empty; no grammar: decoded {} */
    appevent_clear(&ev);
    load("{\"type\":\"message\",\"ep_id\":\"00000001\",\"mc\":1,\"kind\":\"app\",\"payload\":\"\"}",
         &ev);
    expect("[{data}][{station}][{rssi}][{lat}][{duplicates}][{decoded}][{ack}]", APPEVENT_DATA,
           &ev, CBTEMPLATE_ESC_NONE, "[][][][][[]][{}][false]");
    appevent_clear(&ev);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        appevent_type_t type;
        const char *err;
    } t[] = {
        {"x={devise}", APPEVENT_DATA, "template: unknown variable {devise} at column 3"},
        {"{data}", APPEVENT_ERROR, "template: variable {data} is not available in error callbacks at column 1"},
        {"ok {temp}", APPEVENT_DATA, "template: variable {temp} is not available in data callbacks at column 4"},
        {"{customData#a}", APPEVENT_SERVICE, "template: {customData#...} is only available in DATA callbacks at column 1"},
        {"{customData#a#b}", APPEVENT_DATA, "template: bad customData field name at column 1"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char err[200] = "";
        cbtemplate_t *c = cbtemplate_create(t[i].text, t[i].type, err, sizeof err);
        if (c || strcmp(err, t[i].err) != 0)
            fail_msg("'%s': %s", t[i].text, err);
    }
    /* literal braces that are no variable pattern stay */
    appevent_t ev;
    appevent_init(&ev);
    expect("{ } {} {a b} {", APPEVENT_DATA, &ev, CBTEMPLATE_ESC_NONE, "{ } {} {a b} {");
    /* output bound: 16 kB template of {stations} with 16 stations exceeds 64 kB */
    ev.nstations = APPEVENT_MAX_STATIONS;
    for (size_t i = 0; i < ev.nstations; i++)
        snprintf(ev.stations[i].id, sizeof ev.stations[i].id, "station-%zu", i);
    char *big = malloc(CBTEMPLATE_MAX_TEXT + 2);
    assert_non_null(big);
    big[0] = '\0';
    while (strlen(big) + 10 <= CBTEMPLATE_MAX_TEXT)
        strcat(big, "{stations}");
    char err[200];
    cbtemplate_t *c = cbtemplate_create(big, APPEVENT_DATA, err, sizeof err);
    assert_non_null(c);
    assert_null(cbtemplate_expand(c, &ev, CBTEMPLATE_ESC_JSON));
    cbtemplate_destroy(c);
    memset(big, 'x', CBTEMPLATE_MAX_TEXT + 1);
    big[CBTEMPLATE_MAX_TEXT + 1] = '\0';
    assert_null(cbtemplate_create(big, APPEVENT_DATA, err, sizeof err));
    assert_string_equal(err, "template: longer than 16384 bytes");
    free(big);
    assert_int_equal(cbtemplate_escape_for_content_type("application/json; charset=utf-8"),
                     CBTEMPLATE_ESC_JSON);
    assert_int_equal(cbtemplate_escape_for_content_type("application/x-www-form-urlencoded"),
                     CBTEMPLATE_ESC_URL);
    assert_int_equal(cbtemplate_escape_for_content_type("text/plain"), CBTEMPLATE_ESC_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_from_core),
        cmocka_unit_test(test_event_kinds),
        cmocka_unit_test(test_variables),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
