/* test_devstate: anti-replay window per device, persistence across reloads, atomic writes
 * (a crash's leftover tmp file, a damaged file, an unwritable directory), one daemon per
 * state directory. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "devstate.h"
#include "log.h"

#include "testutil.h"

static char tmpdir[64];
static char statedir[128];
static char statefile[192];

static int setup(void **state)
{
    (void)state;
    return test_tmpdir_setup(tmpdir, sizeof tmpdir, "test_devstate", LOG_LEVEL_ERROR);
}

static int teardown(void **state)
{
    (void)state;
    return test_tmpdir_remove(tmpdir);
}

/* Each test gets its own fresh state directory (created by devstate_create). */
static int fresh_dir(void **state)
{
    (void)state;
    test_next_subdir(statedir, sizeof statedir, tmpdir, "state");
    snprintf(statefile, sizeof statefile, "%s/" DEVSTATE_FILE, statedir);
    return 0;
}

static devstate_t *open_ok(const char *dir)
{
    char err[512] = "";
    devstate_t *ds = devstate_create(dir, err, sizeof err);
    if (!ds)
        fail_msg("devstate_create(%s): %s", dir ? dir : "NULL", err);
    return ds;
}

static void flush_ok(devstate_t *ds)
{
    char err[512] = "";
    if (devstate_flush(ds, err, sizeof err) != 0)
        fail_msg("devstate_flush: %s", err);
}

/* The seeds/000 §9.1.1 window, as a table of (mc, verdict) fed in order to one device. */
static void test_window(void **state)
{
    (void)state;
    devstate_t *ds = open_ok(NULL);
    static const struct {
        uint16_t mc;
        int verdict;
        uint16_t last_before;
    } steps[] = {
        {5, DEVSTATE_NEW, 0},      /* first message of a device: accepted */
        {5, DEVSTATE_REPLAY, 5},   /* same counter again */
        {6, DEVSTATE_NEW, 5},      /* last + 1 */
        {4, DEVSTATE_REPLAY, 6},   /* old */
        {26, DEVSTATE_NEW, 6},     /* last + 20 */
        {47, DEVSTATE_NEW, 26},    /* last + 1 + 20, the window's end for 1 msg/day */
        {69, DEVSTATE_REPLAY, 47}, /* last + 22: outside */
        {4090, DEVSTATE_REPLAY, 47},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        devstate_entry_t before;
        int v = devstate_check(ds, 0xFEDCBA98, steps[i].mc, 1, 1000 + (int64_t)i, 1000 + (int64_t)i,
                               &before);
        if (v != steps[i].verdict)
            fail_msg("step %zu: mc %u gave %d, expected %d", i, steps[i].mc, v, steps[i].verdict);
        if (i > 0 && before.last_mc != steps[i].last_before)
            fail_msg("step %zu: last_mc %u, expected %u", i, before.last_mc, steps[i].last_before);
    }
    devstate_entry_t e;
    assert_int_equal(devstate_get(ds, 0xFEDCBA98, &e), 0);
    assert_int_equal(e.last_mc, 47);
    assert_int_equal(e.messages, 4);
    assert_int_equal(e.replays, 4);
    assert_int_equal(e.last_seen_unix, 1005);
    assert_int_equal(devstate_get(ds, 0x12345678, &e), -1);
    devstate_destroy(ds);
}

/* Late delivery: older counters that were on air before the last accepted message and
 * not accepted yet are new (once); anything sent after it, or accepted already, or too far
 * behind, is a replay. */
static void test_late_delivery(void **state)
{
    (void)state;
    devstate_t *ds = open_ok(NULL);
    static const struct {
        uint16_t mc;
        double t_s;
        int verdict;
    } steps[] = {
        {133, 14.6, DEVSTATE_NEW},    {135, 22.2, DEVSTATE_NEW}, /* delivered before 134 */
        {134, 19.7, DEVSTATE_LATE},   /* on air before 135: late, not a replay */
        {134, 19.7, DEVSTATE_REPLAY}, /* the same again */
        {134, 30.0, DEVSTATE_REPLAY}, /* sent after 135: a replay */
        {132, 10.0, DEVSTATE_LATE},   /* never seen, older: still late */
        {133, 14.6, DEVSTATE_REPLAY}, /* accepted before */
        {136, 29.0, DEVSTATE_NEW},    /* the window moves on; the bitmap follows */
        {134, 19.7, DEVSTATE_REPLAY}, {132, 10.0, DEVSTATE_REPLAY},
        {131, 9.0, DEVSTATE_LATE},    {72, 1.0, DEVSTATE_LATE}, /* 136 - 64 ... */
        {71, 1.0, DEVSTATE_REPLAY}, /* ... 136 - 65: beyond DEVSTATE_LATE_SPAN */
        {300, 40.0, DEVSTATE_NEW},  /* jump > span: the bitmap empties */
        {299, 39.0, DEVSTATE_LATE},   {136, 29.0, DEVSTATE_REPLAY},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int v = devstate_check(ds, 0xA29AE3B4, steps[i].mc, 140, steps[i].t_s, 0, NULL);
        if (v != steps[i].verdict)
            fail_msg("step %zu: mc %u at %.1f s gave %d, expected %d", i, steps[i].mc, steps[i].t_s,
                     v, steps[i].verdict);
    }
    devstate_entry_t e;
    assert_int_equal(devstate_get(ds, 0xA29AE3B4, &e), 0);
    assert_int_equal(e.last_mc, 300);
    assert_int_equal(e.messages, 9);
    assert_int_equal(e.replays, 7);
    devstate_destroy(ds);
}

/* Wrap-around modulo 4096 and the wider window of a device sending 140 messages a day. */
static void test_window_wrap_and_daily(void **state)
{
    (void)state;
    devstate_t *ds = open_ok(NULL);
    assert_int_equal(devstate_check(ds, 1, 4090, 140, 0, 0, NULL), DEVSTATE_NEW);
    assert_int_equal(devstate_check(ds, 1, 3, 140, 0, 0, NULL), DEVSTATE_NEW); /* wrapped */
    assert_int_equal(devstate_check(ds, 1, 4090, 140, 0, 0, NULL), DEVSTATE_REPLAY);
    /* §9.1.1 example: last 5, 140/day -> 6 .. 426. */
    assert_int_equal(devstate_check(ds, 2, 5, 140, 0, 0, NULL), DEVSTATE_NEW);
    assert_int_equal(devstate_check(ds, 2, 426, 140, 0, 0, NULL), DEVSTATE_NEW);
    assert_int_equal(devstate_check(ds, 3, 5, 140, 0, 0, NULL), DEVSTATE_NEW);
    assert_int_equal(devstate_check(ds, 3, 427, 140, 0, 0, NULL), DEVSTATE_REPLAY);
    /* Devices are independent and listed in ID order. */
    devstate_entry_t all[4];
    assert_int_equal(devstate_list(ds, all, 4), 3);
    assert_int_equal(all[0].ep_id, 1);
    assert_int_equal(all[2].ep_id, 3);
    devstate_destroy(ds);
}

static void test_persistence(void **state)
{
    (void)state;
    devstate_t *ds = open_ok(statedir);
    assert_false(devstate_dirty(ds));
    for (uint32_t id = 100; id > 0; id--) /* inserted out of order */
        assert_int_equal(devstate_check(ds, id * 7919u, (uint16_t)(id * 3), 140, id, id, NULL),
                         DEVSTATE_NEW);
    /* An old counter sent after the last message: a replay (sent before it: late). */
    assert_int_equal(devstate_check(ds, 7919u, 1, 140, 5, 5, NULL), DEVSTATE_REPLAY);
    /* A late message pending across the restart: 12 delivered before 11. */
    assert_int_equal(devstate_check(ds, 0xCAFE, 10, 140, 100.5, 100, NULL), DEVSTATE_NEW);
    assert_int_equal(devstate_check(ds, 0xCAFE, 12, 140, 120.25, 120, NULL), DEVSTATE_NEW);
    assert_true(devstate_dirty(ds));
    flush_ok(ds);
    assert_false(devstate_dirty(ds));
    devstate_destroy(ds);

    /* A restart sees the same counters: the old message is still a replay, and the late
     * one and the window's bitmap survived. */
    ds = open_ok(statedir);
    assert_int_equal(devstate_check(ds, 0xCAFE, 10, 140, 100.5, 0, NULL), DEVSTATE_REPLAY);
    assert_int_equal(devstate_check(ds, 0xCAFE, 11, 140, 110.0, 0, NULL), DEVSTATE_LATE);
    assert_int_equal(devstate_check(ds, 0xCAFE, 11, 140, 110.0, 0, NULL), DEVSTATE_REPLAY);
    devstate_entry_t e;
    assert_int_equal(devstate_list(ds, NULL, 0), 101);
    assert_int_equal(devstate_get(ds, 7919u, &e), 0);
    assert_int_equal(e.last_mc, 3);
    assert_int_equal(e.messages, 1);
    assert_int_equal(e.replays, 1);
    assert_int_equal(devstate_check(ds, 7919u, 3, 140, 0, 0, NULL), DEVSTATE_REPLAY);
    assert_int_equal(devstate_check(ds, 7919u, 4, 140, 0, 0, NULL), DEVSTATE_NEW);
    flush_ok(ds);
    devstate_destroy(ds);
    ds = open_ok(statedir);
    assert_int_equal(devstate_get(ds, 7919u, &e), 0);
    assert_int_equal(e.last_mc, 4);
    /* No leftovers besides the state and the lock file. */
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", statefile);
    assert_int_not_equal(access(tmp, F_OK), 0);
    devstate_destroy(ds);
}

/* A crash during a write leaves a partial tmp file next to the intact state file; the next
 * start ignores (and removes) it and loads the last complete state. */
static void test_crash_leftover_tmp(void **state)
{
    (void)state;
    devstate_t *ds = open_ok(statedir);
    assert_int_equal(devstate_check(ds, 0xAABBCCDD, 100, 140, 0, 0, NULL), DEVSTATE_NEW);
    flush_ok(ds);
    devstate_destroy(ds);
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", statefile);
    test_write_text(tmp, "# sigfoxd device state, format 1\nAABBCCDD 5");
    ds = open_ok(statedir);
    devstate_entry_t e;
    assert_int_equal(devstate_get(ds, 0xAABBCCDD, &e), 0);
    assert_int_equal(e.last_mc, 100);
    assert_int_not_equal(access(tmp, F_OK), 0);
    assert_int_equal(devstate_check(ds, 0xAABBCCDD, 100, 140, 0, 0, NULL), DEVSTATE_REPLAY);
    devstate_destroy(ds);
}

/* Real crashes: a child process writes the state in a loop and is killed with SIGKILL at
 * varying moments; every time, the next start loads a complete state whose counter never
 * goes backwards. */
static void test_killed_writer(void **state)
{
    (void)state;
    devstate_destroy(open_ok(statedir));
    uint16_t seen = 0;
    for (int round = 0; round < 12; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            char err[512];
            devstate_t *ds = devstate_create(statedir, err, sizeof err);
            if (!ds)
                _exit(2);
            for (uint16_t mc = 1;; mc = (uint16_t)(mc % 4000 + 1)) {
                /* Many devices make each write large enough to be caught mid-way. */
                for (uint32_t id = 1; id <= 200; id++)
                    devstate_check(ds, id, mc, 140, mc, mc, NULL);
                if (devstate_flush(ds, err, sizeof err) != 0)
                    _exit(3);
            }
        }
        usleep(3000 + 2500 * (unsigned)round);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status));
        devstate_t *ds = open_ok(statedir);
        devstate_entry_t e;
        if (devstate_get(ds, 200, &e) == 0) {
            /* Counters only go up within a round (the child starts over at 1 each time,
             * which the window treats as old, so the stored counter stays put). */
            assert_true(e.last_mc >= seen);
            seen = e.last_mc;
            assert_int_equal(devstate_list(ds, NULL, 0), 200);
        }
        devstate_destroy(ds);
    }
}

/* A damaged state file is refused with file:line, never silently reset. */
static void test_damaged_file_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *expect; /* after "<file>:" */
    } cases[] = {
        {"AABBCCDD 5 1 0 0 0.5 0\n", "2: no 'end' line: the file is truncated"},
        {"AABBCCDD 5 1 0 0 0.5 0\nend 2\n", "2: 'end' count does not match"},
        {"AABBCCDD 5 1 0 0 0.5\nend 1\n", "1: expected \"EPID LAST_MC"},
        {"AABBCCDD 5 1 0 0\nend 1\n", "1: expected \"EPID LAST_MC"}, /* format 1 */
        {"AABBCCDD 5000 1 0 0 0.5 0\nend 1\n", "1: expected"},
        {"AABBCCDD 5 1 0 0 0.5 0\nAABBCCDD 6 1 0 0 0.5 0\nend 2\n",
         "2: devices are not in increasing"},
        {"AABBCCDD 5 1 0 0 0.5 0\nend 1\n00000001 1 1 0 0 0.5 0\n", "3: text after the 'end' line"},
        {"AABBCCDD 5 1 0 0 0.5 0", "1: line is cut short"},
        /* Issue 15 defect 7: what sscanf() let through. */
        {"AABBCCDD 5 -1 0 0 0.5 0\nend 1\n", "1: expected"},  /* negative counter */
        {"AABBCCDD 5 1 -2 0 0.5 0\nend 1\n", "1: expected"},
        {"AABBCCDD 5 1 0 -3 0.5 0\nend 1\n", "1: expected"},
        {"AABBCCDD 5 1 0 0 nan 0\nend 1\n", "1: expected"},   /* nan / inf times */
        {"AABBCCDD 5 1 0 0 inf 0\nend 1\n", "1: expected"},
        {"AABBCCDD 5 1 0 0 -0.5 0\nend 1\n", "1: expected"},
        {"AABBCCDD 5 1 0 0 1e3 0\nend 1\n", "1: expected"},
        {"ABC 5 1 0 0 0.5 0\nend 1\n", "1: expected"},        /* 3-digit ep_id */
        {"0xAABBCCDD 5 1 0 0 0.5 0\nend 1\n", "1: expected"},
        {"AABBCCDD +5 1 0 0 0.5 0\nend 1\n", "1: expected"},
        {"AABBCCDD 5  1 0 0 0.5 0\nend 1\n", "1: expected"},  /* two blanks */
        {"AABBCCDD 5 1 0 0 0.5 0 \nend 1\n", "1: expected"},  /* trailing blank */
        {"AABBCCDD 5 99999999999999999999 0 0 0.5 0\nend 1\n", "1: expected"}, /* > 2^64 */
        {"AABBCCDD 5 1 0 0 0.5 00000000000000001\nend 1\n", "1: expected"},
        {"AABBCCDD 5 1 0 0 0.5 0\nend +1\n", "2: expected \"end COUNT\""},
        {"AABBCCDD 5 1 0 0 0.5 0\nend 1 x\n", "2: expected"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fresh_dir(NULL);
        devstate_destroy(open_ok(statedir)); /* creates the directory */
        test_write_text(statefile, cases[i].text);
        char err[512] = "";
        devstate_t *ds = devstate_create(statedir, err, sizeof err);
        char expect[512];
        snprintf(expect, sizeof expect, "%s:%s", statefile, cases[i].expect);
        if (ds || strncmp(err, expect, strlen(expect)) != 0)
            fail_msg("case %zu: %s, message \"%s\", expected \"%s\"", i,
                     ds ? "accepted" : "refused", err, expect);
    }
    /* A directory or a FIFO in place of the file: a clear message, no hang. */
    fresh_dir(NULL);
    devstate_destroy(open_ok(statedir));
    assert_int_equal(mkdir(statefile, 0700), 0);
    char err[512] = "";
    assert_null(devstate_create(statedir, err, sizeof err));
    if (!strstr(err, "is a directory"))
        fail_msg("directory as state file: \"%s\"", err);
    rmdir(statefile);
    assert_int_equal(mkfifo(statefile, 0600), 0);
    assert_null(devstate_create(statedir, err, sizeof err));
    if (!strstr(err, "FIFO"))
        fail_msg("FIFO as state file: \"%s\"", err);
    unlink(statefile);
    /* Comments and an empty state are fine. */
    fresh_dir(NULL);
    devstate_destroy(open_ok(statedir));
    test_write_text(statefile, "# hello\nend 0\n");
    devstate_t *ds = open_ok(statedir);
    assert_int_equal(devstate_list(ds, NULL, 0), 0);
    devstate_destroy(ds);
}

/* A write that cannot happen reports an error, leaves the old file intact and stays
 * dirty so that the next flush retries. */
static void test_unwritable_dir_keeps_old_file(void **state)
{
    (void)state;
    /* The tests may run as root, which ignores permissions: block the write by making the
     * tmp path a directory, which open(O_WRONLY) fails on for everyone. */
    devstate_t *ds = open_ok(statedir);
    assert_int_equal(devstate_check(ds, 42, 1, 140, 0, 0, NULL), DEVSTATE_NEW);
    flush_ok(ds);
    char before[8192];
    snprintf(before, sizeof before, "%s", test_read_text(statefile));
    assert_int_equal(devstate_check(ds, 42, 2, 140, 0, 0, NULL), DEVSTATE_NEW);
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", statefile);
    assert_int_equal(mkdir(tmp, 0700), 0);
    char err[512] = "";
    assert_int_equal(devstate_flush(ds, err, sizeof err), DEVSTATE_ERR_IO);
    assert_non_null(strstr(err, tmp));
    assert_true(devstate_dirty(ds));
    assert_string_equal(test_read_text(statefile), before);
    rmdir(tmp);
    flush_ok(ds);
    assert_false(devstate_dirty(ds));
    assert_non_null(
        strstr(test_read_text(statefile), "0000002A 2 2 0 0 0.000000 0000000000000001\nend 1\n"));
    devstate_destroy(ds);
}

static void test_one_daemon_per_dir(void **state)
{
    (void)state;
    devstate_t *a = open_ok(statedir);
    char err[512] = "";
    devstate_t *b = devstate_create(statedir, err, sizeof err);
    assert_null(b);
    assert_non_null(strstr(err, "in use by another sigfoxd"));
    devstate_destroy(a);
    b = open_ok(statedir);
    devstate_destroy(b);
}

/* Issue 15 defect 1: listing with a buffer before any device has state copied from a NULL
 * array (UBSan: memcpy from NULL), as the "devices" command does at start. */
static void test_list_empty(void **state)
{
    (void)state;
    devstate_t *ds = open_ok(NULL);
    devstate_entry_t out[4];
    assert_int_equal(devstate_list(ds, out, 4), 0);
    assert_int_equal(devstate_list(ds, out, 0), 0);
    devstate_destroy(ds);
}

static void test_bad_dir(void **state)
{
    (void)state;
    char err[512] = "";
    assert_null(devstate_create("/nonexistent-parent/x/y", err, sizeof err));
    assert_non_null(strstr(err, "cannot create state directory /nonexistent-parent/x/y"));
    assert_int_equal(devstate_check(NULL, 1, 1, 1, 0, 0, NULL), DEVSTATE_ERR_ARG);
    assert_int_equal(devstate_flush(NULL, err, sizeof err), DEVSTATE_ERR_ARG);
    devstate_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_window_wrap_and_daily),
        cmocka_unit_test(test_late_delivery),
        cmocka_unit_test_setup(test_persistence, fresh_dir),
        cmocka_unit_test_setup(test_crash_leftover_tmp, fresh_dir),
        cmocka_unit_test_setup(test_killed_writer, fresh_dir),
        cmocka_unit_test(test_damaged_file_refused),
        cmocka_unit_test_setup(test_unwritable_dir_keeps_old_file, fresh_dir),
        cmocka_unit_test_setup(test_one_daemon_per_dir, fresh_dir),
        cmocka_unit_test(test_bad_dir),
        cmocka_unit_test(test_list_empty),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
