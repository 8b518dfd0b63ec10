/* fuzz_jsonstrict: the strict JSON check against json-c: whatever jsonstrict accepts is
 * JSON that json-c parses completely, and its strings are valid UTF-8 without NUL.
 * Licence: MIT. */
#include "fuzzutil.h"
#include "jsonstrict.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_strings(json_object *o, int depth)
{
    FUZZ_CHECK(depth <= JSONSTRICT_MAX_DEPTH + 1);
    switch (json_object_get_type(o)) {
    case json_type_string: {
        const char *s = json_object_get_string(o);
        size_t n = (size_t)json_object_get_string_len(o);
        FUZZ_CHECK(strlen(s) == n && jsonstrict_utf8_valid(s, n));
        break;
    }
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++)
            check_strings(json_object_array_get_idx(o, i), depth + 1);
        break;
    case json_type_object: {
        json_object_object_foreach(o, k, v)
        {
            FUZZ_CHECK(jsonstrict_utf8_valid(k, strlen(k)));
            check_strings(v, depth + 1);
        }
        break;
    }
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    const char *text = (const char *)data;
    if (jsonstrict_check(text, size, 0, err, sizeof err) != 0)
        return 0;
    json_object *o = jsonstrict_parse(text, size, 0, err, sizeof err);
    if (!o) { /* only JSON null may fail here */
        FUZZ_CHECK(strstr(err, "null") != NULL);
        return 0;
    }
    check_strings(o, 0);
    /* json-c's own output of it passes the strict check too (replies are built so). */
    const char *out = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (jsonstrict_check(out, strlen(out), 0, err, sizeof err) != 0) {
        fprintf(stderr, "json-c output is not strict JSON (%s): %s\n", err, out);
        abort();
    }
    json_object_put(o);
    return 0;
}
