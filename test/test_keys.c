/* test_keys: key store and keys file parsing. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "keys.h"

static char tmp_path[64];

/* Writes text to a fresh temporary file and returns its path. */
static const char *write_tmp(const char *text)
{
    strcpy(tmp_path, "/tmp/test_keys_XXXXXX");
    int fd = mkstemp(tmp_path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return tmp_path;
}

static void test_load_and_find(void **state)
{
    (void)state;
    const char *path = write_tmp("# sigfoxd keys\n"
                                 "\n"
                                 "FEDCBA98 0123456789ABCDEF0123456789ABCDEF\n"
                                 "  0x004d33db\t0x479e4480fd7596d45b0122fd282db3cf   # renard\n"
                                 "00000001 00112233445566778899AABBCCDDEEFF");
    keystore_t *ks = keystore_create();
    char err[256] = "";
    assert_int_equal(keystore_load(ks, path, err, sizeof err), 3);
    assert_int_equal(keystore_count(ks), 3);
    const uint8_t k1[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                            0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};
    const uint8_t k2[16] = {0x47, 0x9E, 0x44, 0x80, 0xFD, 0x75, 0x96, 0xD4,
                            0x5B, 0x01, 0x22, 0xFD, 0x28, 0x2D, 0xB3, 0xCF};
    assert_memory_equal(keystore_find(ks, 0xFEDCBA98), k1, 16);
    assert_memory_equal(keystore_find(ks, 0x004D33DB), k2, 16);
    assert_non_null(keystore_find(ks, 1));
    assert_null(keystore_find(ks, 2));
    assert_null(keystore_find(NULL, 1));

    /* write, reload: same content, sorted by ID */
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_int_equal(keystore_write(ks, mem), 0);
    fclose(mem);
    assert_string_equal(buf, "00000001 00112233445566778899AABBCCDDEEFF\n"
                             "004D33DB 479E4480FD7596D45B0122FD282DB3CF\n"
                             "FEDCBA98 0123456789ABCDEF0123456789ABCDEF\n");
    unlink(path);
    path = write_tmp(buf);
    keystore_t *ks2 = keystore_create();
    assert_int_equal(keystore_load(ks2, path, err, sizeof err), 3);
    assert_memory_equal(keystore_find(ks2, 0x004D33DB), k2, 16);
    /* loading again replaces, it does not duplicate */
    assert_int_equal(keystore_load(ks2, path, err, sizeof err), 3);
    assert_int_equal(keystore_count(ks2), 3);
    free(buf);
    unlink(path);
    keystore_destroy(ks);
    keystore_destroy(ks2);
    keystore_destroy(NULL);
}

static void test_bad_files(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want; /* want: substring of the error */
    } t[] = {
        {"FEDCBA98 0123456789ABCDEF0123456789ABCDEF\nFEDCBA9 0123456789ABCDEF0123456789ABCDEF\n",
         ":2: device ID must be 8 hex digits"},
        {"FEDCBA98\n", ":1: missing key"},
        {"FEDCBA98 0123456789ABCDEF0123456789ABCDE\n", ":1: key must be 32 hex digits"},
        {"FEDCBA98 0123456789ABCDEF0123456789ABCDEF00\n", ":1: key must be 32 hex digits"},
        {"FEDCBA98 0123456789ABCDEF0123456789ABCDEG\n", ":1: key must be 32 hex digits"},
        {"GEDCBA98 0123456789ABCDEF0123456789ABCDEF\n", ":1: device ID must be 8 hex digits"},
        {"FEDCBA98 0123456789ABCDEF0123456789ABCDEF extra\n", ":1: unexpected text"},
        {"\n\n# c\nFEDCBA98 0123456789ABCDEF0123456789ABCDEF\n"
         "fedcba98 0123456789ABCDEF0123456789ABCDEF\n",
         ":5: device FEDCBA98 is listed twice"},
        {"FEDCBA980123456789ABCDEF0123456789ABCDEF\n", ":1: device ID must be 8 hex digits"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const char *path = write_tmp(t[i].text);
        keystore_t *ks = keystore_create();
        char err[256] = "";
        assert_int_equal(keystore_load(ks, path, err, sizeof err), -1);
        if (!strstr(err, t[i].want) || strncmp(err, path, strlen(path)) != 0)
            fail_msg("case %zu: error '%s' does not name %s and '%s'", i, err, path, t[i].want);
        unlink(path);
        keystore_destroy(ks);
    }
    /* Issue 15 defects 2 and 8: a directory, a FIFO (open() must not block), an endless
     * device and an overlong line are refused with a clear reason. */
    static const struct {
        const char *path, *want;
    } odd[] = {
        {"/tmp", "/tmp: is a directory"},
        {"/dev/zero", "/dev/zero: is a character device; it must be a regular file"},
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        keystore_t *ks = keystore_create();
        char err[256] = "";
        assert_int_equal(keystore_load(ks, odd[i].path, err, sizeof err), -1);
        if (!strstr(err, odd[i].want))
            fail_msg("%s: error '%s' lacks '%s'", odd[i].path, err, odd[i].want);
        keystore_destroy(ks);
    }
    char fifo[64];
    snprintf(fifo, sizeof fifo, "/tmp/test_keys_fifo_%d", (int)getpid());
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    keystore_t *fk = keystore_create();
    char ferr[256] = "";
    assert_int_equal(keystore_load(fk, fifo, ferr, sizeof ferr), -1);
    assert_non_null(strstr(ferr, "FIFO"));
    keystore_destroy(fk);
    unlink(fifo);
    static char longline[600];
    memset(longline, '#', sizeof longline - 2);
    longline[sizeof longline - 2] = '\n';
    const char *lp = write_tmp(longline);
    fk = keystore_create();
    assert_int_equal(keystore_load(fk, lp, ferr, sizeof ferr), -1);
    assert_non_null(strstr(ferr, ":1: line longer than"));
    keystore_destroy(fk);
    unlink(lp);

    keystore_t *ks = keystore_create();
    char err[256] = "";
    assert_int_equal(keystore_load(ks, "/nonexistent/keys.txt", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/keys.txt"));
    assert_int_equal(keystore_load(ks, NULL, err, sizeof err), -1);
    assert_int_equal(keystore_load(NULL, "x", NULL, 0), -1);
    keystore_destroy(ks);
}

static void test_add_many(void **state)
{
    (void)state;
    keystore_t *ks = keystore_create();
    uint8_t key[16] = {0};
    /* 5000 IDs in scrambled order; each key names its ID */
    for (uint32_t i = 0; i < 5000; i++) {
        uint32_t id = (i * 2654435761u) ^ 0x5A5A5A5Au;
        memcpy(key, &id, 4);
        assert_int_equal(keystore_add(ks, id, key), 0);
    }
    assert_int_equal(keystore_count(ks), 5000);
    for (uint32_t i = 0; i < 5000; i++) {
        uint32_t id = (i * 2654435761u) ^ 0x5A5A5A5Au, got;
        const uint8_t *k = keystore_find(ks, id);
        assert_non_null(k);
        memcpy(&got, k, 4);
        assert_int_equal(got, id);
    }
    /* replace */
    memset(key, 0xEE, 16);
    assert_int_equal(keystore_add(ks, 0x5A5A5A5Au, key), 0);
    assert_int_equal(keystore_count(ks), 5000);
    assert_memory_equal(keystore_find(ks, 0x5A5A5A5Au), key, 16);
    assert_int_equal(keystore_add(NULL, 1, key), -1);
    assert_int_equal(keystore_add(ks, 1, NULL), -1);
    assert_int_equal(keystore_write(NULL, stdout), -1);
    keystore_destroy(ks);
}

/* IDs come out in ascending order; a swap moves whole contents, removals included. */
static void test_iterate_and_swap(void **state)
{
    (void)state;
    keystore_t *a = keystore_create(), *b = keystore_create();
    uint8_t key[16];
    const uint32_t ids_a[] = {0x30, 0x10, 0x20};
    for (size_t i = 0; i < 3; i++) {
        memset(key, (int)ids_a[i], sizeof key);
        assert_int_equal(keystore_add(a, ids_a[i], key), 0);
    }
    memset(key, 0x99, sizeof key);
    assert_int_equal(keystore_add(b, 0x99, key), 0);
    assert_int_equal(keystore_ep_id_at(a, 0), 0x10);
    assert_int_equal(keystore_ep_id_at(a, 1), 0x20);
    assert_int_equal(keystore_ep_id_at(a, 2), 0x30);
    assert_int_equal(keystore_ep_id_at(a, 3), 0);
    assert_int_equal(keystore_ep_id_at(NULL, 0), 0);

    keystore_swap(a, b);
    assert_int_equal(keystore_count(a), 1);
    assert_int_equal(keystore_count(b), 3);
    assert_null(keystore_find(a, 0x10));
    assert_non_null(keystore_find(a, 0x99));
    assert_int_equal(keystore_find(b, 0x20)[0], 0x20);
    keystore_swap(a, NULL); /* no effect */
    assert_int_equal(keystore_count(a), 1);
    keystore_destroy(a);
    keystore_destroy(b);
}

static void test_parse_line(void **state)
{
    (void)state;
    uint32_t id;
    uint8_t key[16];
    char err[64];
    assert_int_equal(keystore_parse_line("", &id, key, err, sizeof err), 0);
    assert_int_equal(keystore_parse_line("   # comment\n", &id, key, err, sizeof err), 0);
    assert_int_equal(keystore_parse_line("\r\n", &id, key, err, sizeof err), 0);
    assert_int_equal(
        keystore_parse_line("12345678 000102030405060708090a0b0c0d0e0f\r\n", &id, key, err, 64),
        1);
    assert_int_equal(id, 0x12345678);
    assert_int_equal(key[15], 0x0F);
    assert_int_equal(keystore_parse_line("12345678#x", &id, key, err, sizeof err), -1);
    assert_int_equal(keystore_parse_line(NULL, &id, key, err, sizeof err), -1);
    char longline[4096];
    memset(longline, 'A', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    assert_int_equal(keystore_parse_line(longline, &id, key, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_find),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_add_many),
        cmocka_unit_test(test_parse_line),
        cmocka_unit_test(test_iterate_and_swap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
