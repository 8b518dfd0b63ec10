/* test_spool: the station's on-disk batch spool: write/ack, resend order, restart, seq
 * persistence, damaged files, full spool, one process per directory. Licence: MIT. */
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

#include "log.h"
#include "spool.h"

#include "testutil.h"

static char tmpdir[64];
static char dir[160];

static int setup(void **state)
{
    (void)state;
    return test_tmpdir_setup(tmpdir, sizeof tmpdir, "test_spool", LOG_LEVEL_FATAL);
}

static int teardown(void **state)
{
    (void)state;
    return test_tmpdir_remove(tmpdir);
}

static int fresh_dir(void **state)
{
    (void)state;
    test_next_subdir(dir, sizeof dir, tmpdir, "spool");
    return 0;
}

static spool_t *open_ok(size_t max_frames)
{
    char err[512] = "";
    spool_config_t c = {.dir = dir, .max_frames = max_frames};
    spool_t *sp = spool_create(&c, err, sizeof err);
    if (!sp)
        fail_msg("spool_create(%s): %s", dir, err);
    return sp;
}

/* Pushes a batch whose body names its seq; returns the seq. */
static uint64_t push(spool_t *sp, uint32_t nframes)
{
    uint64_t seq;
    assert_int_equal(spool_next_seq(sp, &seq), SPOOL_OK);
    char body[128], err[256] = "";
    int n = snprintf(body, sizeof body, "{\"type\":\"batch\",\"seq\":%llu,\"frames\":[]}",
                     (unsigned long long)seq);
    if (spool_push(sp, seq, nframes, body, (size_t)n, err, sizeof err) != SPOOL_OK)
        fail_msg("spool_push: %s", err);
    return seq;
}

static void expect_body(spool_t *sp, uint64_t seq)
{
    char *body = NULL, want[128];
    size_t len = 0;
    assert_int_equal(spool_read(sp, seq, &body, &len), SPOOL_OK);
    snprintf(want, sizeof want, "{\"type\":\"batch\",\"seq\":%llu,\"frames\":[]}",
             (unsigned long long)seq);
    assert_string_equal(body, want);
    assert_int_equal(len, strlen(want));
    free(body);
}

static void batch_file(uint64_t seq, char *out, size_t cap)
{
    snprintf(out, cap, "%s/b%020llu.batch", dir, (unsigned long long)seq);
}

static int count_files(const char *suffix)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '%s$' > '%s/count'", dir, suffix, tmpdir);
    if (system(cmd) < 0)
        return -1;
    char path[128];
    snprintf(path, sizeof path, "%s/count", tmpdir);
    const char *t = test_read_text(path);
    return t ? atoi(t) : -1;
}

static void write_ack_order(void **state)
{
    (void)state;
    spool_t *sp = open_ok(0);
    uint64_t a = push(sp, 100), b = push(sp, 3), c = push(sp, 7);
    assert_int_equal(a, 1);
    assert_true(b == a + 1 && c == b + 1);
    spool_stats_t st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.batches, 3);
    assert_int_equal(st.frames, 110);
    /* The file exists before anyone sends it. */
    char path[256];
    batch_file(b, path, sizeof path);
    assert_int_equal(access(path, F_OK), 0);
    /* Acks out of order: the middle one first. */
    assert_int_equal(spool_ack(sp, b), SPOOL_OK);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(spool_ack(sp, b), SPOOL_ERR_NOTFOUND); /* a repeated ack is harmless */
    assert_int_equal(spool_count(sp), 2);
    spool_entry_t e;
    assert_int_equal(spool_entry(sp, 0, &e), SPOOL_OK);
    assert_int_equal(e.seq, a);
    assert_int_equal(spool_entry(sp, 1, &e), SPOOL_OK);
    assert_int_equal(e.seq, c);
    assert_int_equal(spool_find_after(sp, a), 1);
    assert_int_equal(spool_find_after(sp, 0), 0);
    assert_int_equal(spool_find_after(sp, c), 2);
    expect_body(sp, a);
    expect_body(sp, c);
    assert_int_equal(spool_read(sp, b, &(char *){NULL}, &(size_t){0}), SPOOL_ERR_NOTFOUND);
    /* seq must grow. */
    char err[128];
    assert_int_equal(spool_push(sp, a, 1, "{}", 2, err, sizeof err), SPOOL_ERR_ARG);
    spool_get_stats(sp, &st);
    assert_int_equal(st.batches_acked, 1);
    assert_int_equal(st.frames_acked, 3);
    spool_destroy(sp);
}

static void restart_resends_in_order(void **state)
{
    (void)state;
    spool_t *sp = open_ok(0);
    uint64_t s[5];
    for (int i = 0; i < 5; i++)
        s[i] = push(sp, (uint32_t)(i + 1));
    spool_ack(sp, s[0]);
    spool_ack(sp, s[3]);
    spool_destroy(sp);

    sp = open_ok(0);
    assert_int_equal(spool_count(sp), 3);
    uint64_t want[3] = {s[1], s[2], s[4]};
    for (size_t i = 0; i < 3; i++) {
        spool_entry_t e;
        assert_int_equal(spool_entry(sp, i, &e), SPOOL_OK);
        assert_int_equal(e.seq, want[i]);
        expect_body(sp, want[i]);
    }
    spool_stats_t st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.frames, 2 + 3 + 5);
    /* seq persists: never repeats after a restart. */
    uint64_t next = push(sp, 1);
    assert_true(next > s[4]);
    spool_destroy(sp);
}

static void seq_never_repeats(void **state)
{
    (void)state;
    spool_t *sp = open_ok(0);
    uint64_t last = 0;
    for (int i = 0; i < 3; i++) {
        last = push(sp, 1);
        spool_ack(sp, last);
    }
    spool_destroy(sp);
    /* Everything acked: no batch file is left to tell the seq, the lease file does. */
    sp = open_ok(0);
    uint64_t next = push(sp, 1);
    assert_true(next > last);
    spool_destroy(sp);
    /* The lease file deleted: the seq jumps above every earlier one (time based). */
    char path[256];
    snprintf(path, sizeof path, "%s/seq", dir);
    assert_int_equal(unlink(path), 0);
    sp = open_ok(0);
    uint64_t after = push(sp, 1);
    assert_true(after > next + SPOOL_SEQ_LEASE);
    spool_destroy(sp);
    /* A damaged lease file: the same, no crash. */
    test_write_text(path, "next banana\n");
    sp = open_ok(0);
    assert_true(push(sp, 1) > after);
    spool_destroy(sp);
}

static void corrupt_files_skipped(void **state)
{
    (void)state;
    spool_t *sp = open_ok(0);
    uint64_t s[6];
    for (int i = 0; i < 6; i++)
        s[i] = push(sp, 2);
    spool_destroy(sp);
    char path[256];
    /* s[0]: truncated body. */
    batch_file(s[0], path, sizeof path);
    assert_int_equal(truncate(path, 40), 0);
    /* s[1]: one body byte changed. */
    batch_file(s[1], path, sizeof path);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, -3, SEEK_END);
    fputc('X', f);
    fclose(f);
    /* s[2]: garbage header. */
    batch_file(s[2], path, sizeof path);
    test_write_text(path, "SFSPOOL 1 99999999999999999999999999 -5 7 zz\n{}");
    /* s[3]: empty file. */
    batch_file(s[3], path, sizeof path);
    test_write_text(path, "");
    /* A file whose header names another seq (copied over). */
    char other[256];
    batch_file(s[4], other, sizeof other);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/b%020llu.batch'", other, dir, 12345678ULL);
    assert_int_equal(system(cmd), 0);
    /* A huge header line with no newline, a foreign name, and a crash's tmp file. */
    char big[4096];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    snprintf(path, sizeof path, "%s/b%020llu.batch", dir, 99ULL);
    test_write_text(path, big);
    snprintf(path, sizeof path, "%s/junk.batch", dir);
    test_write_text(path, "hello");
    snprintf(path, sizeof path, "%s/b%020llu.batch.tmp", dir, 100ULL);
    test_write_text(path, "half");
    /* A FIFO nobody writes: opening it must not hang the start. */
    snprintf(path, sizeof path, "%s/b%020llu.batch", dir, 101ULL);
    assert_int_equal(mkfifo(path, 0600), 0);

    sp = open_ok(0);
    assert_int_equal(spool_count(sp), 2); /* s[4], s[5] */
    spool_entry_t e;
    assert_int_equal(spool_entry(sp, 0, &e), SPOOL_OK);
    assert_int_equal(e.seq, s[4]);
    spool_stats_t st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.files_corrupt, 8);
    assert_int_equal(count_files(".corrupt"), 8);
    assert_int_equal(count_files(".tmp"), 0);
    /* Damage after start: spool_read notices, drops it, the next one still reads. */
    batch_file(s[4], path, sizeof path);
    test_write_text(path, "SFSPOOL 1 0 0 0 0\n");
    char *body = NULL;
    size_t len;
    assert_int_equal(spool_read(sp, s[4], &body, &len), SPOOL_ERR_CORRUPT);
    assert_null(body);
    assert_int_equal(spool_count(sp), 1);
    expect_body(sp, s[5]);
    assert_true(push(sp, 1) > s[5]);
    spool_destroy(sp);
}

static void full_drops_oldest(void **state)
{
    (void)state;
    spool_t *sp = open_ok(250);
    uint64_t s[4];
    for (int i = 0; i < 4; i++)
        s[i] = push(sp, 100); /* the 3rd and 4th each push out the oldest */
    spool_stats_t st;
    spool_get_stats(sp, &st);
    assert_int_equal(st.frames, 200);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.batches_dropped, 2);
    assert_int_equal(st.frames_dropped, 200);
    spool_entry_t e;
    assert_int_equal(spool_entry(sp, 0, &e), SPOOL_OK);
    assert_int_equal(e.seq, s[2]);
    char path[256];
    batch_file(s[0], path, sizeof path);
    assert_int_not_equal(access(path, F_OK), 0);
    /* A batch bigger than the whole spool is refused, nothing dropped for it. */
    char err[256];
    uint64_t seq;
    assert_int_equal(spool_next_seq(sp, &seq), SPOOL_OK);
    assert_int_equal(spool_push(sp, seq, 251, "{}", 2, err, sizeof err), SPOOL_ERR_ARG);
    spool_get_stats(sp, &st);
    assert_int_equal(st.batches, 2);
    spool_destroy(sp);
    /* The bound holds across a restart with a smaller limit too. */
    sp = open_ok(100);
    push(sp, 50);
    spool_get_stats(sp, &st);
    assert_true(st.frames <= 100);
    spool_destroy(sp);
}

static void one_process_per_dir(void **state)
{
    (void)state;
    spool_t *sp = open_ok(0);
    char err[512] = "";
    spool_config_t c = {.dir = dir};
    spool_t *second = spool_create(&c, err, sizeof err);
    assert_null(second);
    assert_non_null(strstr(err, "in use"));
    spool_destroy(sp);
    /* Unusable directory: a clear error. */
    char file[256];
    snprintf(file, sizeof file, "%s/plainfile", tmpdir);
    test_write_text(file, "x");
    snprintf(dir, sizeof dir, "%s/plainfile/sub", tmpdir);
    c.dir = dir;
    assert_null(spool_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "cannot create"));
    c.dir = "";
    assert_null(spool_create(&c, err, sizeof err));
    assert_null(spool_create(NULL, err, sizeof err));
    spool_destroy(NULL);
}

static void unwritable_dir(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip(); /* root writes anyway */
    spool_t *sp = open_ok(0);
    push(sp, 1);
    assert_int_equal(chmod(dir, 0500), 0);
    uint64_t seq;
    char err[512] = "";
    /* Within the lease: a seq, but the batch cannot be written. */
    assert_int_equal(spool_next_seq(sp, &seq), SPOOL_OK);
    assert_int_equal(spool_push(sp, seq, 1, "{}", 2, err, sizeof err), SPOOL_ERR_IO);
    assert_non_null(strstr(err, "cannot create"));
    chmod(dir, 0700);
    spool_destroy(sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(write_ack_order, fresh_dir),
        cmocka_unit_test_setup(restart_resends_in_order, fresh_dir),
        cmocka_unit_test_setup(seq_never_repeats, fresh_dir),
        cmocka_unit_test_setup(corrupt_files_skipped, fresh_dir),
        cmocka_unit_test_setup(full_drops_oldest, fresh_dir),
        cmocka_unit_test_setup(one_process_per_dir, fresh_dir),
        cmocka_unit_test_setup(unwritable_dir, fresh_dir),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
