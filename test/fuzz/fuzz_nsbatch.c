/* fuzz_nsbatch: a station's message to the network core, as sigfox-ns receives it over its
 * ROUTER socket (docs/ns.md "Wire protocol"): strict JSON, then a `batch` of 1..100 frame
 * objects goes through nscore_ingest() and an `event` through nscore_station_event(), on a
 * fresh in-memory SQLite database per input that knows the device of the seed corpus.
 * Invariants: a batch always commits (malformed frames are counted, never an error), every
 * frame is counted once, and every event and downlink the core emits is strict JSON.
 * Licence: MIT. */
#include <time.h>

#include "fuzzutil.h"
#include "jsonstrict.h"
#include "nscore.h"
#include "nsdb.h"
#include "nsreg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The device the seed corpus was made with (test_nscore's key). */
static const uint8_t KEY[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10};
#define EP_ID 0x0000ABCDu
#define RX_S 1764158400.0 /* 2025-11-26T12:00:00Z, the seeds' time */

static void check_json(const char *text)
{
    char err[160];
    if (jsonstrict_check(text, strlen(text), 0, err, sizeof err) != 0) {
        fprintf(stderr, "core emitted JSON that is not strict (%s): %s\n", err, text);
        abort();
    }
}

static int on_event(const nscore_event_t *ev, nsdb_t *db, void *user)
{
    (void)db;
    (void)user;
    FUZZ_CHECK(ev->topic && ev->json);
    check_json(json_object_to_json_string_ext(ev->json, JSON_C_TO_STRING_PLAIN));
    return 0;
}

static int on_send(const char *station_id, const char *json, void *user)
{
    (void)user;
    FUZZ_CHECK(station_id && json);
    check_json(json);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_dir(); /* quiet logs */
    if (size > (1u << 20))
        return 0; /* sigfox-ns refuses bodies over 1 MiB before parsing */
    char err[256];
    json_object *root = jsonstrict_parse((const char *)data, size, 8, err, sizeof err);
    if (!root)
        return 0;
    json_object *type = NULL, *frames = NULL, *event = NULL;
    bool is_batch = json_object_object_get_ex(root, "type", &type) &&
                    json_object_is_type(type, json_type_string) &&
                    !strcmp(json_object_get_string(type), "batch") &&
                    json_object_object_get_ex(root, "frames", &frames) &&
                    json_object_is_type(frames, json_type_array) &&
                    json_object_array_length(frames) >= 1 &&
                    json_object_array_length(frames) <= NSCORE_MAX_BATCH_FRAMES;
    bool is_event = !is_batch && json_object_object_get_ex(root, "event", &event) &&
                    json_object_is_type(event, json_type_object);
    if (!is_batch && !is_event) {
        json_object_put(root);
        return 0;
    }

    nsdb_t *db = nsdb_open(":memory:", 0, err, sizeof err);
    FUZZ_CHECK(db != NULL);
    nsreg_device_t d;
    nsreg_device_init(&d, EP_ID, KEY);
    d.dl_mode = NSREG_DL_DIRECT;
    d.has_dl_payload = true;
    FUZZ_CHECK(nsreg_device_put(db, &d, RX_S - 3600) == 0);
    nscore_config_t cfg;
    nscore_config_init(&cfg);
    cfg.instance = "fuzz";
    nscore_t *core = nscore_create(&cfg, db, err, sizeof err);
    FUZZ_CHECK(core != NULL);
    FUZZ_CHECK(nscore_add_hook(core, NSCORE_HOOK_COMMITTED, on_event, NULL) == 0);
    nscore_set_sender(core, on_send, NULL);

    if (is_batch) {
        size_t n = json_object_array_length(frames);
        nscore_frame_t f[NSCORE_MAX_BATCH_FRAMES];
        for (size_t i = 0; i < n; i++)
            f[i] = (nscore_frame_t){.station_id = i % 2 ? "st2" : "st1",
                                    .frame = json_object_array_get_idx(frames, i),
                                    .rx_s = RX_S};
        FUZZ_CHECK(nscore_ingest(core, f, n) == 0);
        nscore_stats_t st;
        nscore_get_stats(core, &st);
        FUZZ_CHECK(st.frames_in == n);
        /* the same batch again (a station's resend) changes no message */
        uint64_t messages = st.messages;
        FUZZ_CHECK(nscore_ingest(core, f, n) == 0);
        nscore_get_stats(core, &st);
        FUZZ_CHECK(st.messages == messages);
        /* downlink decisions and timeouts: the core schedules them on the real clock */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double now = (double)ts.tv_sec;
        FUZZ_CHECK(nscore_tick(core, now + 1) == 0);
        FUZZ_CHECK(nscore_tick(core, now + 60) == 0);
    } else {
        nscore_station_event(core, "st1", event);
    }
    nscore_destroy(core);
    nsdb_close(db);
    json_object_put(root);
    return 0;
}
