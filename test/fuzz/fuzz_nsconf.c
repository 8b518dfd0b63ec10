/* fuzz_nsconf: a configuration file as sigfox-ns reads it (libconfig syntax, every key's
 * type and range, stations, callbacks, device types). Invariants: a refusal names
 * "file:line" or the file, and a loaded configuration is freed without leaks.
 * Licence: MIT. */
#include "fuzzutil.h"
#include "nsconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("sigfox-ns.conf", data, size);
    nsconf_t c;
    nsconf_defaults(&c);
    char err[1024] = "";
    if (nsconf_load(&c, path, err, sizeof err) != 0)
        FUZZ_CHECK(strstr(err, "sigfox-ns.conf") != NULL);
    char q[512];
    nsconf_queue_file(&c, q, sizeof q);
    nsconf_free(&c);
    return 0;
}
