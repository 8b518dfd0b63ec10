/* fuzz_keys: a keys file as sigfoxd and the tools load it (--keys, SIGHUP). Licence: MIT. */
#include "fuzzutil.h"
#include "keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("keys", data, size);
    keystore_t *ks = keystore_create();
    char err[512];
    int n = keystore_load(ks, path, err, sizeof err);
    if (n >= 0) {
        FUZZ_CHECK((size_t)n == keystore_count(ks));
        for (size_t i = 1; i < keystore_count(ks); i++) /* sorted, no duplicates */
            FUZZ_CHECK(keystore_ep_id_at(ks, i - 1) < keystore_ep_id_at(ks, i));
    }
    keystore_destroy(ks);
    return 0;
}
