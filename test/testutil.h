/* testutil: helpers shared by the cmocka tests: a floating-point assertion, per-test
 * scratch directories, small text files, and the project's SoapySDR iqfile module.
 * Include after <cmocka.h>. Licence: MIT. */
#ifndef SIGFOX_TEST_TESTUTIL_H
#define SIGFOX_TEST_TESTUTIL_H

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* cmocka 1.1 has no floating-point assertion. */
#define assert_near(a, b, tol)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol)))                                                             \
            fail_msg("%s = %.9g, expected %.9g +- %.3g", #a, a_, b_, (double)(tol));               \
    } while (0)

/* Creates a fresh directory /tmp/NAME.XXXXXX and leaves its path in dir (cap bytes).
 * Returns 0 or -1, the answer a cmocka group setup gives. */
static inline int test_tmpdir_create(char *dir, size_t cap, const char *name)
{
    snprintf(dir, cap, "/tmp/%s.XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

/* The group setup of a test that works below one scratch directory: creates it
 * (test_tmpdir_create) and sets the log level to quiet_level, or to debug when DEBUG is
 * set in the environment. Returns 0 or -1. */
static inline int test_tmpdir_setup(char *dir, size_t cap, const char *name,
                                    log_level_t quiet_level)
{
    if (test_tmpdir_create(dir, cap, name) != 0)
        return -1;
    log_set_level(getenv("DEBUG") ? LOG_LEVEL_DEBUG : quiet_level);
    return 0;
}

/* Names the next fresh sub-directory BASE/PREFIX<k> in out (k counts up over the whole
 * test program, so every test that asks gets its own). The directory is not created. */
static inline void test_next_subdir(char *out, size_t cap, const char *base, const char *prefix)
{
    static int k;
    snprintf(out, cap, "%s/%s%d", base, prefix, k++);
}

/* Removes dir and everything below it. Returns 0 or -1 (a group teardown's answer). */
static inline int test_tmpdir_remove(const char *dir)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes n bytes to path, replacing it; any failure fails the test. */
static inline void test_write_bytes(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static inline void test_write_text(const char *path, const char *text)
{
    test_write_bytes(path, text, strlen(text));
}

/* The first 8 KiB of path as a string, in a buffer the next call reuses; NULL when the
 * file cannot be opened. */
static inline const char *test_read_text(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Points SoapySDR at the project's iqfile module and at nothing else (no system modules:
 * fast, hermetic): $SIGFOX_SOAPY_PLUGIN_PATH if set, else $BUILD/soapy beside this test
 * binary ($BUILD/test). Returns 0, or -1 (with a line on stderr) when the module is not
 * there. */
static inline int test_use_soapy_plugin(void)
{
    char dir[PATH_MAX + 16];
    const char *env = getenv("SIGFOX_SOAPY_PLUGIN_PATH");
    if (env && *env) {
        snprintf(dir, sizeof dir, "%s", env);
    } else {
        char exe[PATH_MAX];
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (k <= 0)
            return -1;
        exe[k] = '\0';
        char *slash = strrchr(exe, '/');
        if (!slash)
            return -1;
        *slash = '\0'; /* $BUILD/test */
        snprintf(dir, sizeof dir, "%s/../soapy", exe);
    }
    char so[PATH_MAX + 64];
    snprintf(so, sizeof so, "%s/libsigfoxIQFileSupport.so", dir);
    if (access(so, R_OK) != 0) {
        fprintf(stderr, "SoapySDR iqfile module not found: %s (build it with make)\n", so);
        return -1;
    }
    setenv("SOAPY_SDR_PLUGIN_PATH", dir, 1);
    setenv("SOAPY_SDR_ROOT", "/nonexistent", 1);
    return 0;
}

#endif
