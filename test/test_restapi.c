/* test_restapi: the REST API and the status page on a replayed scene (3 stations, 2
 * devices, messages through the network core, a failed callback): JSON endpoints over real
 * HTTP (libcurl), keys write-only, the token off loopback, and the status page's DOM as a
 * real headless chromium renders it (`chromium --headless --dump-dom`). Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "callback.h"
#include "nscore.h"
#include "nsdb.h"
#include "nsreg.h"
#include "nstest.h"
#include "restapi.h"
#include "testutil.h"

static char dir[256];
static const uint8_t KEY[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};
#define EP1 0x1D2A3B4Cu
#define EP2 0x00ABCDEFu
#define T0 1764158400.0

typedef struct {
    char *p;
    size_t n;
} buf_t;

static size_t on_data(char *p, size_t s, size_t n, void *ud)
{
    buf_t *b = ud;
    char *q = realloc(b->p, b->n + s * n + 1);
    if (!q)
        return 0;
    b->p = q;
    memcpy(b->p + b->n, p, s * n);
    b->n += s * n;
    b->p[b->n] = '\0';
    return s * n;
}

/* One request; returns the HTTP status, *out the body (free()). */
static long http(const char *method, int port, const char *path, const char *body,
                 const char *token, char **out)
{
    CURL *e = curl_easy_init();
    assert_non_null(e);
    char url[512], auth[300];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    buf_t b = {calloc(1, 1), 0};
    struct curl_slist *h = NULL;
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    *out = b.p;
    return status;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The scene: stations A, B, C; EP1 heard by all three (5 messages), EP2 by C only (2). */
static int scene(nsdb_t *db)
{
    static const char *st[] = {"A", "B", "C<x>"};
    for (int s = 0; s < 3; s++) {
        nsreg_station_t x = {.lat = 48.1 + s, .lng = 11.5, .tx = s == 0};
        snprintf(x.station_id, sizeof x.station_id, "%s", st[s]);
        assert_int_equal(nsreg_station_seen(db, &x, "ns1", T0), 0);
    }
    nsreg_device_t d;
    nsreg_device_init(&d, EP1, KEY);
    snprintf(d.name, sizeof d.name, "meter <1>");
    assert_int_equal(nsreg_device_put(db, &d, T0), 0);
    nsreg_device_init(&d, EP2, KEY);
    assert_int_equal(nsreg_device_put(db, &d, T0), 0);
    nscore_config_t cfg;
    nscore_config_init(&cfg);
    cfg.instance = "ns1";
    char err[256];
    nscore_t *core = nscore_create(&cfg, db, err, sizeof err);
    assert_non_null(core);
    int msgs = 0;
    for (int m = 0; m < 5; m++) {
        nscore_frame_t f[3];
        uint8_t pl[2] = {0x10, (uint8_t)m};
        for (int s = 0; s < 3; s++) {
            f[s].station_id = st[s];
            f[s].frame = nstest_frame(EP1, KEY, (uint16_t)(100 + m), false, pl, 2, 1,
                                      T0 + 10 * m, 5.0 * (s + 1) + m);
            f[s].rx_s = T0 + 10 * m;
        }
        assert_int_equal(nscore_ingest(core, f, 3), 0);
        for (int s = 0; s < 3; s++)
            json_object_put(f[s].frame);
        msgs++;
    }
    for (int m = 0; m < 2; m++) {
        uint8_t pl[1] = {(uint8_t)m};
        nscore_frame_t f = {.station_id = "C<x>",
                            .frame = nstest_frame(EP2, KEY, (uint16_t)m, false, pl, 1, 1,
                                                  T0 + 5 + m, 12),
                            .rx_s = T0 + 5 + m};
        assert_int_equal(nscore_ingest(core, &f, 1), 0);
        json_object_put(f.frame);
        msgs++;
    }
    nscore_destroy(core);
    return msgs;
}

static void test_api_and_page(void **state)
{
    (void)state;
    assert_int_equal(test_tmpdir_create(dir, sizeof dir, "test_restapi"), 0);
    char dbp[512], err[256];
    snprintf(dbp, sizeof dbp, "%s/ns.db", dir);
    nsdb_t *db = nsdb_open(dbp, 0, err, sizeof err);
    assert_non_null(db);
    int msgs = scene(db);

    /* a callback to a closed port fails once */
    callback_config_t ccfg = {.db_path = dbp}; /* the queue lives in the core's database */
    callback_t *cb = callback_create(&ccfg, err, sizeof err);
    assert_non_null(cb);
    callback_def_t def = {.name = "app<1>", .type = APPEVENT_DATA, .url = "http://127.0.0.1:9/x",
                          .body = "{data}"};
    assert_int_equal(callback_add(cb, &def, err, sizeof err), 0);
    appevent_t ev;
    appevent_init(&ev);
    ev.ep_id = EP1;
    assert_int_equal(callback_submit(cb, &ev, 0), 1);
    for (int i = 0; i < 50 && callback_poll(cb, 100) > 0; i++)
        ;
    callback_destroy(cb);

    restapi_config_t rcfg = {.db_url = dbp};
    restapi_t *api = restapi_create(&rcfg, err, sizeof err);
    if (!api)
        fail_msg("%s", err);
    int port = restapi_port(api);
    char *out;

    assert_int_equal(http("GET", port, "/api/devices", NULL, NULL, &out), 200);
    json_object *arr = json_tokener_parse(out);
    assert_int_equal(json_object_array_length(arr), 2);
    assert_null(strstr(out, "\"key\"")); /* keys are write-only */
    json_object_put(arr);
    free(out);

    assert_int_equal(http("PUT", port, "/api/devices/01020304",
                          "{\"key\":\"00112233445566778899AABBCCDDEEFF\",\"name\":\"new\"}", NULL,
                          &out), 201);
    assert_null(strstr(out, "00112233"));
    free(out);
    assert_int_equal(http("GET", port, "/api/devices/01020304", NULL, NULL, &out), 200);
    assert_non_null(strstr(out, "\"name\":\"new\""));
    assert_null(strstr(out, "\"key\""));
    free(out);
    assert_int_equal(http("PUT", port, "/api/devices/01020304", "{\"name\":\"renamed\"}", NULL, &out), 200);
    free(out);
    assert_int_equal(http("PUT", port, "/api/devices/01020304", "[1]", NULL, &out), 400);
    free(out);
    /* strict JSON: trailing text and comments are refused with the reason */
    assert_int_equal(http("PUT", port, "/api/devices/01020304", "{\"name\":\"x\"} junk", NULL, &out), 400);
    assert_non_null(strstr(out, "body must be a JSON object: at byte"));
    free(out);
    assert_int_equal(http("PUT", port, "/api/devices/01020304", "{/*c*/\"name\":\"x\"}", NULL, &out), 400);
    free(out);
    assert_int_equal(http("PUT", port, "/api/devices/05060708", "{\"name\":\"nokey\"}", NULL, &out), 400);
    free(out);
    assert_int_equal(http("GET", port, "/api/devices/xyz", NULL, NULL, &out), 400);
    free(out);
    assert_int_equal(http("DELETE", port, "/api/devices/01020304", NULL, NULL, &out), 204);
    free(out);
    assert_int_equal(http("GET", port, "/api/devices/01020304", NULL, NULL, &out), 404);
    free(out);

    /* messages by device and time range: T0+10 .. T0+30 -> 3 of EP1's 5 */
    char path[128];
    snprintf(path, sizeof path, "/api/devices/%08X/messages?from=%.0f&to=%.0f", EP1, T0 + 10, T0 + 30);
    assert_int_equal(http("GET", port, path, NULL, NULL, &out), 200);
    arr = json_tokener_parse(out);
    assert_int_equal(json_object_array_length(arr), 3);
    json_object *m0 = json_object_array_get_idx(arr, 0);
    assert_int_equal(json_object_get_int(json_object_object_get(m0, "mc")), 101);
    json_object *evj = json_object_object_get(m0, "event");
    assert_int_equal(json_object_array_length(json_object_object_get(evj, "stations")), 3);
    json_object_put(arr);
    free(out);
    snprintf(path, sizeof path, "/api/devices/%08X/messages?from=abc", EP1);
    assert_int_equal(http("GET", port, path, NULL, NULL, &out), 400);
    free(out);

    assert_int_equal(http("PUT", port, "/api/device-types/meter", "{\"grammar\":\"t::int:99\"}", NULL, &out), 400);
    assert_non_null(strstr(out, "at column 8"));
    free(out);
    assert_int_equal(http("PUT", port, "/api/device-types/meter",
                          "{\"grammar\":\"t::int:16\",\"period_s\":3600}", NULL, &out), 204);
    free(out);
    assert_int_equal(http("GET", port, "/api/device-types", NULL, NULL, &out), 200);
    assert_string_equal(out, "[{\"name\":\"meter\",\"grammar\":\"t::int:16\",\"period_s\":3600.0}]");
    free(out);
    assert_int_equal(http("GET", port, "/api/stations", NULL, NULL, &out), 200);
    arr = json_tokener_parse(out);
    assert_int_equal(json_object_array_length(arr), 3);
    json_object_put(arr);
    free(out);
    assert_int_equal(http("GET", port, "/api/callbacks/failures", NULL, NULL, &out), 200);
    assert_non_null(strstr(out, "\"callback\":\"app<1>\""));
    free(out);
    assert_int_equal(http("GET", port, "/api/stats", NULL, NULL, &out), 200);
    assert_non_null(strstr(out, "\"devices\":2"));
    char want[64];
    snprintf(want, sizeof want, "\"messages\":%d", msgs);
    assert_non_null(strstr(out, want));
    free(out);
    assert_int_equal(http("GET", port, "/nope", NULL, NULL, &out), 404);
    free(out);

    /* the status page as headless chromium renders it */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run "
             "--user-data-dir=%s/chromium --dump-dom http://127.0.0.1:%d/ 2>/dev/null",
             dir, port);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    buf_t dom = {calloc(1, 1), 0};
    char chunk[4096];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, p)) > 0)
        on_data(chunk, 1, k, &dom);
    int prc = pclose(p);
    if (prc != 0 || !strstr(dom.p, "</html>"))
        fail_msg("chromium --dump-dom failed (status %d, %zu bytes): is the chromium package "
                 "installed (scripts/install-deps.sh)?",
                 prc, dom.n);
    assert_int_equal(count(dom.p, "<tr class=\"station\">"), 3);
    assert_non_null(strstr(dom.p, "<td>C&lt;x&gt;</td>")); /* escaped, not markup */
    assert_int_equal(count(dom.p, "<tr class=\"device\""), 2);
    assert_non_null(strstr(dom.p, "<td>meter &lt;1&gt;</td>"));
    assert_int_equal(count(dom.p, "<tr class=\"message\">"), msgs);
    char plot[96];
    snprintf(plot, sizeof plot, "<svg class=\"plot\" data-device=\"%08X\" data-points=\"5\"", EP1);
    assert_non_null(strstr(dom.p, plot));
    assert_int_equal(count(dom.p, "<polyline class=\"snr\""), 2);
    assert_int_equal(count(dom.p, "<tr class=\"failure\">"), 1);
    assert_non_null(strstr(dom.p, "app&lt;1&gt;"));
    free(dom.p);
    restapi_destroy(api);

    /* off loopback: a token is required, and then checked */
    restapi_config_t open_cfg = {.db_url = dbp, .bind_addr = "0.0.0.0"};
    assert_null(restapi_create(&open_cfg, err, sizeof err));
    assert_string_equal(err, "api: bound to 0.0.0.0 (not loopback) it needs a token of at least 16 characters");
    open_cfg.token = "0123456789abcdef0123";
    api = restapi_create(&open_cfg, err, sizeof err);
    assert_non_null(api);
    port = restapi_port(api);
    assert_int_equal(http("GET", port, "/api/devices", NULL, NULL, &out), 401);
    free(out);
    assert_int_equal(http("GET", port, "/api/devices", NULL, "0123456789abcdef012x", &out), 401);
    free(out);
    assert_int_equal(http("GET", port, "/api/devices", NULL, "0123456789abcdef0123", &out), 200);
    free(out);
    restapi_destroy(api);
    nsdb_close(db);
    assert_int_equal(test_tmpdir_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_and_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
