/* fuzz_command: the command socket's request parser, as a ZeroMQ client reaches it: every
 * request gets a reply that is strict JSON (valid UTF-8) with a boolean "ok". The registered
 * verb echoes the request back, so handlers see only what passed the checks.
 * Licence: MIT. */
#include "fuzzutil.h"
#include "jsonstrict.h"
#include "publisher.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmd_echo(json_object *req, json_object *reply, void *user, char *err, size_t len)
{
    (void)user;
    json_object *v;
    if (json_object_object_get_ex(req, "fail", &v)) {
        snprintf(err, len, "failing as asked: %s", json_object_get_string(v));
        return -1;
    }
    json_object_object_add(reply, "request", json_object_get(req));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static publisher_t *p;
    if (!p) {
        fuzz_dir(); /* quiet logs */
        publisher_config_t cfg = {NULL, NULL, 0};
        char err[256];
        p = publisher_create(&cfg, err, sizeof err);
        if (!p || publisher_add_command(p, "echo", cmd_echo, NULL, "echo") != 0)
            abort();
    }
    int parts = size > 0 && data[0] == 0x01 ? 2 : 1;
    json_object *r = publisher_handle_request(p, (const char *)data, size, parts);
    FUZZ_CHECK(r != NULL);
    const char *text = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);
    char err[256];
    if (jsonstrict_check(text, strlen(text), 0, err, sizeof err) != 0) {
        fprintf(stderr, "reply is not strict JSON (%s): %s\n", err, text);
        abort();
    }
    json_object *ok;
    FUZZ_CHECK(json_object_object_get_ex(r, "ok", &ok) &&
               json_object_is_type(ok, json_type_boolean));
    json_object_put(r);
    return 0;
}
