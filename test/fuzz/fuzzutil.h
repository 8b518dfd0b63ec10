/* fuzzutil: helpers shared by the libFuzzer harnesses test/fuzz/fuzz_*.c. Licence: MIT.
 *
 * Each harness defines LLVMFuzzerTestOneInput() and feeds the input to one parser of
 * outside data exactly as the daemon or a tool gets it (bytes, a file, a request). A crash,
 * a sanitizer report, a leak or a failed FUZZ_CHECK is a finding. Harnesses must be
 * deterministic and must not keep state between inputs except caches of set-up.
 */
#ifndef SIGFOX_FUZZUTIL_H
#define SIGFOX_FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* An invariant the code under test promises: abort (a finding) when it does not hold. */
#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* A private directory for files the harness writes (created on first use, per process). */
static inline const char *fuzz_dir(void)
{
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/sigfox-fuzz-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        log_set_level(LOG_LEVEL_FATAL); /* the parsers' messages are not findings */
    }
    return dir;
}

/* Writes data to fuzz_dir()/name and returns the path (static buffer). */
static inline const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    return path;
}

/* A NUL-terminated copy of the input (caller frees). */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
