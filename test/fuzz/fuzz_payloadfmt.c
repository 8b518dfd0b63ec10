/* fuzz_payloadfmt: libFuzzer harness for the custom payload grammar (payloadfmt.h).
 * Input: grammar text, a NUL byte, then the payload bytes (no NUL: all grammar, empty
 * payload). Checks that parsing never crashes and that a decode of an accepted grammar
 * returns 0 exactly when the payload is at least payloadfmt_min_len() long.
 * Licence: MIT. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "payloadfmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t glen = nul ? (size_t)(nul - data) : size;
    char *text = malloc(glen + 1);
    if (!text)
        return 0;
    memcpy(text, data, glen);
    text[glen] = '\0';
    const uint8_t *payload = nul ? nul + 1 : data + size;
    size_t plen = (size_t)(data + size - payload);

    char err[256];
    payloadfmt_t *f = payloadfmt_create(text, err, sizeof err);
    free(text);
    if (!f)
        return 0;
    json_object *o = NULL;
    int rc = payloadfmt_decode(f, payload, plen, &o, err, sizeof err);
    if ((rc == 0) != (plen >= payloadfmt_min_len(f)) || !o)
        abort();
    /* serialising must work for every decoded value (strings are printable ASCII) */
    if (!json_object_to_json_string(o))
        abort();
    json_object_put(o);
    payloadfmt_destroy(f);
    return 0;
}
