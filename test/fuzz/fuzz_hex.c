/* fuzz_hex: the hex parsers (bytes, device IDs) and one line of a keys file. Licence: MIT. */
#include "fuzzutil.h"
#include "hexutil.h"
#include "keys.h"

#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstring(data, size);
    uint8_t out[64];
    int n = hex_to_bytes(s, out, sizeof out);
    FUZZ_CHECK(n >= -1 && n <= (int)sizeof out);
    if (n > 0) { /* round trip: the printed digits parse to the same bytes */
        char hex[2 * sizeof out + 1];
        uint8_t back[64];
        FUZZ_CHECK(hex_to_bytes(bytes_to_hex(out, (size_t)n, hex), back, sizeof back) == n);
        FUZZ_CHECK(memcmp(out, back, (size_t)n) == 0);
    }
    uint32_t id;
    if (hex_to_ep_id(s, &id) == 0) {
        char again[9];
        snprintf(again, sizeof again, "%08X", (unsigned)id);
        FUZZ_CHECK(strcasecmp(again, s) == 0); /* exactly 8 hex digits, nothing else */
    }
    uint8_t key[KEYSTORE_KEY_BYTES];
    char err[128];
    int r = keystore_parse_line(s, &id, key, err, sizeof err);
    FUZZ_CHECK(r >= -1 && r <= 1);
    free(s);
    return 0;
}
