/* fuzz_device: a device as the REST API (PUT /api/devices/<ID>) and sigfox-ns's
 * device_set command receive it: strict JSON, then nsreg_device_from_json() over an
 * existing device. Invariants: an accepted device serialises to strict JSON, and reading
 * that JSON back gives the same device (nothing is lost or changed on the way).
 * Licence: MIT. */
#include "fuzzutil.h"
#include "jsonstrict.h"
#include "nsreg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_device(const nsreg_device_t *a, const nsreg_device_t *b)
{
    return a->ep_id == b->ep_id && !memcmp(a->key, b->key, sizeof a->key) &&
           !strcmp(a->name, b->name) && !strcmp(a->device_type, b->device_type) &&
           a->daily_messages == b->daily_messages && a->dl_mode == b->dl_mode &&
           a->has_dl_payload == b->has_dl_payload &&
           (!a->has_dl_payload || !memcmp(a->dl_payload, b->dl_payload, sizeof a->dl_payload)) &&
           a->dl_quota == b->dl_quota;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_dir(); /* quiet logs */
    char err[256];
    json_object *in = jsonstrict_parse((const char *)data, size, 16, err, sizeof err);
    if (!in)
        return 0;
    static const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    nsreg_device_t d;
    nsreg_device_init(&d, 0x0000ABCD, key);
    int rc = json_object_is_type(in, json_type_object)
                 ? nsreg_device_from_json(in, &d, err, sizeof err)
                 : -1;
    json_object_put(in);
    if (rc != 0)
        return 0;
    json_object *out = json_object_new_object();
    FUZZ_CHECK(nsreg_device_to_json(&d, true, out) == 0);
    const char *text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN);
    if (jsonstrict_check(text, strlen(text), 0, err, sizeof err) != 0) {
        fprintf(stderr, "device JSON is not strict (%s): %s\n", err, text);
        abort();
    }
    nsreg_device_t back;
    memset(&back, 0, sizeof back);
    rc = nsreg_device_from_json(out, &back, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "own device JSON refused (%s): %s\n", err, text);
        abort();
    }
    if (!same_device(&d, &back)) {
        fprintf(stderr, "device changed on a round trip: %s\n", text);
        abort();
    }
    json_object_put(out);
    return 0;
}
