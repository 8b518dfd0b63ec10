/* fuzz_config: a configuration file as sigfoxd reads it (libconfig syntax, every key's
 * type and range, devices.list), then the whole-configuration checks. Licence: MIT. */
#include "config.h"
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("sigfoxd.conf", data, size);
    cfg_t cfg;
    if (cfg_defaults(&cfg) != 0)
        abort();
    char err[1024];
    if (cfg_load_file(&cfg, path, err, sizeof err) == 0) {
        cfg_validate(&cfg, err, sizeof err);
        json_object *j = cfg_to_json(&cfg);
        json_object_put(j);
    }
    cfg_free(&cfg);
    return 0;
}
