/* fuzz_appevent: an event of the core (or of sigfoxd) as the integrations read it
 * (appevent_from_json), then what they make of it: the integration JSON and the Sigfox
 * backend's callback bodies. Invariants: the integration view is strict JSON, and a JSON
 * body template with every variable of the event's type, expanded with JSON escaping, is
 * strict JSON whatever the event's strings hold (docs/integrations.md). Licence: MIT. */
#include "appevent.h"
#include "cbtemplate.h"
#include "fuzzutil.h"
#include "jsonstrict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every variable of each type (cbtemplate.h), strings quoted, JSON values bare. */
static const char *const BODY[] = {
    [APPEVENT_DATA] = "{\"d\":\"{device}\",\"t\":{time},\"ty\":\"{deviceTypeId}\",\"x\":\"{data}\","
                      "\"s\":{seqNumber},\"a\":{ack},\"st\":\"{station}\",\"r\":\"{rssi}\","
                      "\"n\":\"{snr}\",\"av\":\"{avgSnr}\",\"la\":\"{lat}\",\"lo\":\"{lng}\","
                      "\"du\":{duplicates},\"all\":{stations},\"nb\":{nbStations},"
                      "\"c\":\"{customData#temp}\",\"dec\":{decoded}}",
    [APPEVENT_SERVICE] = "{\"d\":\"{device}\",\"t\":{time},\"st\":\"{station}\",\"r\":\"{rssi}\","
                         "\"n\":\"{snr}\",\"av\":\"{avgSnr}\",\"la\":\"{lat}\",\"lo\":\"{lng}\","
                         "\"s\":\"{seqNumber}\",\"te\":\"{temp}\",\"b\":\"{batt}\","
                         "\"vi\":\"{vddIdle}\",\"vt\":\"{vddTx}\",\"k\":\"{downlinkAck}\","
                         "\"im\":\"{infoMessage}\",\"ic\":\"{infoCode}\"}",
    [APPEVENT_ERROR] = "{\"d\":\"{device}\",\"t\":{time},\"i\":\"{info}\",\"sv\":\"{severity}\","
                       "\"ls\":{lastSeen}}",
};

static void check_strict(const char *what, const char *text)
{
    char err[160];
    if (jsonstrict_check(text, strlen(text), 0, err, sizeof err) != 0) {
        fprintf(stderr, "%s is not strict JSON (%s): %s\n", what, err, text);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_dir(); /* quiet logs */
    char err[256];
    json_object *o = jsonstrict_parse((const char *)data, size, 16, err, sizeof err);
    if (!o)
        return 0;
    appevent_t ev;
    appevent_init(&ev);
    int rc = appevent_from_json(o, &ev, err, sizeof err);
    json_object_put(o);
    if (rc != 0) {
        appevent_clear(&ev);
        return 0;
    }
    FUZZ_CHECK(ev.type == APPEVENT_DATA || ev.type == APPEVENT_SERVICE ||
               ev.type == APPEVENT_ERROR);
    FUZZ_CHECK(ev.data_len <= APPEVENT_MAX_DATA && ev.nstations <= APPEVENT_MAX_STATIONS);
    json_object *view = appevent_to_json(&ev);
    FUZZ_CHECK(view != NULL);
    check_strict("appevent_to_json", json_object_to_json_string_ext(view, JSON_C_TO_STRING_PLAIN));
    json_object_put(view);

    cbtemplate_t *t = cbtemplate_create(BODY[ev.type], ev.type, err, sizeof err);
    if (!t) {
        fprintf(stderr, "template refused: %s\n", err);
        abort();
    }
    /* NULL: the expansion would pass CBTEMPLATE_MAX_OUT (a large `decoded`, tripled by
     * URL escaping); the callback is then refused with a log line, not sent cut short */
    char *body = cbtemplate_expand(t, &ev, CBTEMPLATE_ESC_JSON);
    if (body) {
        FUZZ_CHECK(strlen(body) <= CBTEMPLATE_MAX_OUT);
        check_strict("JSON callback body", body);
    }
    free(body);
    /* a header value can never gain a line break */
    char *hdr = cbtemplate_expand(t, &ev, CBTEMPLATE_ESC_HEADER);
    FUZZ_CHECK(!hdr || !strpbrk(hdr, "\r\n"));
    free(hdr);
    char *url = cbtemplate_expand(t, &ev, CBTEMPLATE_ESC_URL);
    FUZZ_CHECK(!url || strlen(url) <= CBTEMPLATE_MAX_OUT);
    free(url);
    cbtemplate_destroy(t);
    appevent_clear(&ev);
    return 0;
}
