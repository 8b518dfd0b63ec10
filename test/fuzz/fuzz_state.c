/* fuzz_state: the anti-replay state file (DIR/devices.state) as sigfoxd loads it at start;
 * what loads must write back and load again to the same state. Licence: MIT. */
#include <sys/stat.h>

#include "devstate.h"
#include "fuzzutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/state", fuzz_dir());
    mkdir(dir, 0700);
    fuzz_write_file("state/" DEVSTATE_FILE, data, size);
    char err[512];
    devstate_t *ds = devstate_create(dir, err, sizeof err);
    if (!ds)
        return 0;
    size_t n = devstate_list(ds, NULL, 0);
    devstate_entry_t *a = calloc(n ? n : 1, sizeof *a);
    FUZZ_CHECK(a && devstate_list(ds, a, n) == n);
    /* Force a write: one more device, then compare after a reload. */
    FUZZ_CHECK(devstate_check(ds, 0xFFFFFFFFu, 1, 140, 1.0, 1, NULL) >= 0);
    FUZZ_CHECK(devstate_flush(ds, err, sizeof err) == 0);
    devstate_destroy(ds);
    ds = devstate_create(dir, err, sizeof err);
    if (!ds) {
        fprintf(stderr, "reload failed: %s\n", err);
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        devstate_entry_t e;
        if (a[i].ep_id == 0xFFFFFFFFu)
            continue;
        FUZZ_CHECK(devstate_get(ds, a[i].ep_id, &e) == 0);
        FUZZ_CHECK(e.last_mc == a[i].last_mc && e.messages == a[i].messages &&
                   e.replays == a[i].replays && e.recent == a[i].recent);
    }
    devstate_destroy(ds);
    free(a);
    return 0;
}
