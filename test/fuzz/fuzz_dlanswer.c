/* fuzz_dlanswer: an application's downlink answer, by HTTP callback (the Sigfox backend's
 * {"<ID>":{"downlinkData":"<16 hex>"}} with the response's status) or by MQTT
 * (sigfox/.../downlink/set). Input: two bytes of HTTP status, then the body. Invariants:
 * a payload answer comes only from a 2xx answer of at least 16 characters, an answer
 * over CALLBACK_MAX_ANSWER is refused as such, and the reason is always a terminated string.
 * Licence: MIT. */
#include "callback.h"
#include "fuzzutil.h"
#include "mqttout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_dir(); /* quiet logs */
    if (size < 2)
        return 0;
    long status = 100 + (data[0] << 8 | data[1]) % 500;
    const char *body = (const char *)data + 2;
    size_t len = size - 2;
    callback_dl_answer_t a;
    memset(&a, 0xA5, sizeof a);
    callback_parse_answer(status, body, len, 0x0000ABCD, &a);
    FUZZ_CHECK(memchr(a.reason, 0, sizeof a.reason) != NULL);
    if (a.status == CALLBACK_DL_PAYLOAD)
        FUZZ_CHECK(status >= 200 && status < 300 && len >= 16);
    if (len > CALLBACK_MAX_ANSWER)
        FUZZ_CHECK(a.status == CALLBACK_DL_OVERSIZED || a.status == CALLBACK_DL_FAILED);

    uint8_t p[8];
    int rc = mqttout_parse_downlink(body, len, p);
    FUZZ_CHECK(rc == -1 || rc == 0 || rc == 1);
    return 0;
}
