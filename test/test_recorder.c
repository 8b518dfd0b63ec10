/* test_recorder: the recorder on synthetic byte streams fed as the capture thread does
 * (recorder_tap), with frames and undecoded bursts as the DSP thread gives them: rotation
 * by size and after a gap, deletion beyond max_files (including an earlier run's files),
 * the bytes on disk, annotations in the file holding their first sample (and dropped when
 * that sample was never recorded), snippets cut from the ring with their margins, the
 * rate limit and the cap on their number, and refused directories and sizes.
 * Licence: MIT. */
#include <dirent.h>
#include <stdbool.h>
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
#include <json-c/json.h>

#include "log.h"
#include "recorder.h"

#define RATE 250000.0
#define MIB (1u << 20)

/* A fresh directory under /tmp (removed by rm_dir). */
static void make_dir(char *out, size_t len, const char *tag)
{
    snprintf(out, len, "/tmp/test_recorder_%s_XXXXXX", tag);
    assert_non_null(mkdtemp(out));
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[1200];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* An empty file. */
static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        fail_msg("cannot create %s", path);
    fclose(f);
}

/* Sorted names in dir ending in suffix; returns the count, names in out (caller frees). */
static int list(const char *dir, const char *suffix, char out[][256], int max)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), k = strlen(suffix);
        if (l > k && strcmp(e->d_name + l - k, suffix) == 0 && n < max)
            snprintf(out[n++], 256, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(out, (size_t)n, 256, (int (*)(const void *, const void *))strcmp);
    return n;
}

/* cs8 sample i of the test stream (2 bytes). */
static void pattern(uint64_t i, uint8_t *out)
{
    out[0] = (uint8_t)(i * 7u);
    out[1] = (uint8_t)(i >> 8);
}

/* Samples tapped into the recorder under test so far (reset by each test). */
static uint64_t fed;

/* Waits until the writer has written or dropped every sample fed (a radio's pace: the
 * queue of 4 s is never outrun). */
static void settle(recorder_t *r)
{
    recorder_stats_t st;
    /* up to 60 s: under valgrind on a loaded machine the writer is slow, but it must
       get there */
    for (int i = 0; i < 30000; i++) {
        recorder_get_stats(r, &st);
        if (st.queue_bytes == 0 || st.record_bytes / 2 + st.record_samples_dropped >= fed)
            return;
        usleep(2000);
    }
    fail_msg("the writer did not catch up");
}

/* Feeds samples [from, from + n) in reads of 4096, as a radio would; paced unless
 * flood. */
static void feed_ex(recorder_t *r, uint64_t from, uint64_t n, bool flood)
{
    static uint8_t buf[4096 * 2];
    for (uint64_t i = 0; i < n;) {
        size_t k = n - i < 4096 ? (size_t)(n - i) : 4096;
        for (size_t j = 0; j < k; j++)
            pattern(from + i + j, buf + 2 * j);
        recorder_tap(buf, k, from + i, 1.8e9 + (double)(from + i) / RATE, r);
        i += k;
        fed += k;
        if (!flood && fed % (64 * 4096) == 0)
            settle(r);
    }
    if (!flood)
        settle(r);
}

static void feed(recorder_t *r, uint64_t from, uint64_t n)
{
    feed_ex(r, from, n, false);
}

/* Checks that the data file holds the pattern from stream index first, n samples. */
static void check_data(const char *data_path, uint64_t first, uint64_t n)
{
    FILE *f = fopen(data_path, "rb");
    assert_non_null(f);
    uint8_t s[2], want[2];
    uint64_t got = 0;
    while (fread(s, 1, 2, f) == 2) {
        pattern(first + got, want);
        if (memcmp(s, want, 2) != 0)
            fail_msg("%s: sample %llu differs", data_path, (unsigned long long)got);
        got++;
    }
    fclose(f);
    assert_int_equal(got, n);
}

static json_object *read_meta(const char *path)
{
    json_object *o = json_object_from_file(path);
    if (!o)
        fail_msg("%s: not JSON", path);
    return o;
}

static int64_t get_i64(json_object *o, const char *k1, int idx, const char *k2)
{
    json_object *a, *v;
    assert_true(json_object_object_get_ex(o, k1, &a));
    if (idx >= 0)
        a = json_object_array_get_idx(a, (size_t)idx);
    assert_non_null(a);
    assert_true(json_object_object_get_ex(a, k2, &v));
    return json_object_get_int64(v);
}

static rx_frame_t frame_at(uint64_t idx, uint32_t ep_id)
{
    rx_frame_t f;
    memset(&f, 0, sizeof f);
    f.frame.crc_ok = true;
    f.frame.rank = 1;
    f.frame.msg.ep_id = ep_id;
    f.frame.msg.mc = 42;
    f.baud = 100;
    f.freq_hz = 868.1e6;
    f.snr_db = 20;
    f.sample_idx = idx;
    f.t_start_s = (double)idx / RATE;
    f.t_end_s = f.t_start_s + 1.2;
    return f;
}

static recorder_config_t base_config(const char *rec_dir, const char *snip_dir)
{
    return (recorder_config_t){.format = IQ_FORMAT_CS8,
                               .rate_sps = RATE,
                               .center_freq_hz = 868.13e6,
                               .full_scale = 128,
                               .gain = "40",
                               .hw = "driver=test",
                               .record_dir = rec_dir,
                               .record_max_bytes = MIB,
                               .record_max_files = 2,
                               .snippet_dir = snip_dir,
                               .snippet_max_files = 2,
                               .snippet_min_interval_s = 1.0,
                               .snippet_margin_s = 0.5};
}

/* A recorder on a fresh directory (the recording's or the snippets', by tag) with the
 * base configuration, changed by the caller in c first when c is not NULL. */
static recorder_t *start(char *dir, size_t len, const char *tag, bool snippets,
                         recorder_config_t *c)
{
    make_dir(dir, len, tag);
    recorder_config_t base = base_config(snippets ? NULL : dir, snippets ? dir : NULL);
    if (c) {
        c->record_dir = base.record_dir;
        c->snippet_dir = base.snippet_dir;
        base = *c;
    }
    char err[512] = "";
    recorder_t *r = recorder_create(&base, err, sizeof err);
    if (!r)
        fail_msg("recorder_create: %s", err);
    fed = 0;
    return r;
}

/* 1 MiB files of cs8 (524288 samples): 4.3 files of stream, then a gap; max_files 2 with
 * one file of an earlier run in the directory. */
static void test_rotation(void **state)
{
    (void)state;
    char dir[256], old[400];
    make_dir(dir, sizeof dir, "rot");
    /* an earlier run's recording sorts first and is the first deleted */
    snprintf(old, sizeof old, "%s/sigfoxd-rec-20000101T000000Z-000001.sigmf-data", dir);
    touch(old);
    recorder_config_t c = base_config(dir, NULL);
    char err[512] = "";
    recorder_t *r = recorder_create(&c, err, sizeof err);
    assert_non_null(r);
    fed = 0;
    const uint64_t per = MIB / 2;
    feed(r, 0, 4 * per + 1000);
    /* frames: in the 4th file (index 3 per + 10), in the 5th, and one in the gap below */
    rx_frame_t fr = frame_at(3 * per + 10, 0x11111111);
    recorder_frame(r, &fr);
    fr = frame_at(4 * per + 500, 0x22222222);
    recorder_frame(r, &fr);
    fr = frame_at(4 * per + 5000, 0x33333333); /* lost in the gap */
    recorder_frame(r, &fr);
    fr.frame.crc_ok = false; /* not annotated, not counted */
    recorder_frame(r, &fr);
    /* samples lost: the next read starts a new file */
    feed(r, 4 * per + 10000, 3000);
    recorder_stats_t st;
    recorder_destroy(r); /* writes everything */
    r = NULL;
    (void)st;

    char names[16][256];
    int n = list(dir, ".sigmf-data", names, 16);
    assert_int_equal(n, 2);                     /* max_files */
    assert_null(strstr(names[0], "20000101T")); /* the old one went first */
    /* the last two: the tail of the first stretch, then the stretch after the gap */
    check_data(names[0], 4 * per, 1000);
    check_data(names[1], 4 * per + 10000, 3000);
    char meta[300];
    snprintf(meta, sizeof meta, "%.*s.sigmf-meta", (int)(strlen(names[0]) - 11), names[0]);
    json_object *m = read_meta(meta);
    assert_int_equal(get_i64(m, "captures", 0, "core:global_index"), 4 * per);
    assert_int_equal(get_i64(m, "captures", 0, "core:sample_start"), 0);
    json_object *ann;
    assert_true(json_object_object_get_ex(m, "annotations", &ann));
    assert_int_equal(json_object_array_length(ann), 1);
    assert_int_equal(get_i64(m, "annotations", 0, "core:sample_start"), 500);
    assert_int_equal(get_i64(m, "annotations", 0, "core:sample_count"), 300000);
    json_object *a0 = json_object_array_get_idx(ann, 0), *v;
    assert_true(json_object_object_get_ex(a0, "sigfoxd:ep_id", &v));
    assert_string_equal(json_object_get_string(v), "22222222");
    json_object *g, *dt, *caps, *gain;
    assert_true(json_object_object_get_ex(m, "global", &g));
    assert_true(json_object_object_get_ex(g, "core:datatype", &dt));
    assert_string_equal(json_object_get_string(dt), "ci8");
    assert_true(json_object_object_get_ex(m, "captures", &caps));
    assert_true(
        json_object_object_get_ex(json_object_array_get_idx(caps, 0), "sigfoxd:gain", &gain));
    assert_string_equal(json_object_get_string(gain), "40");
    json_object_put(m);
    rm_dir(dir);
}

/* Counters: the stream above again, read before the end. */
static void test_stats(void **state)
{
    (void)state;
    char dir[256];
    recorder_config_t c = base_config(NULL, NULL);
    c.record_max_files = 3;
    recorder_t *r = start(dir, sizeof dir, "st", false, &c);
    const uint64_t per = MIB / 2;
    feed(r, 0, 4 * per + 1000);
    rx_frame_t fr = frame_at(2 * per + 7, 0x44444444);
    recorder_frame(r, &fr);
    fr = frame_at(9 * per, 0x55555555); /* never recorded */
    recorder_frame(r, &fr);
    /* the writer gets there */
    recorder_stats_t st;
    for (int i = 0; i < 3000; i++) { /* up to 60 s (valgrind, loaded machine) */
        recorder_get_stats(r, &st);
        if (st.record_bytes == (4 * per + 1000) * 2 && st.annotations == 1)
            break;
        usleep(20000);
    }
    assert_int_equal(st.record_bytes, (4 * per + 1000) * 2);
    assert_int_equal(st.record_files, 5);
    assert_int_equal(st.record_files_deleted, 2);
    assert_int_equal(st.annotations, 1);
    assert_int_equal(st.record_samples_dropped, 0);
    assert_true(st.queue_bytes >= MIB && st.queue_bytes <= 64u * MIB);
    assert_int_equal(st.history_bytes, 0);
    recorder_destroy(r);
    char names[16][256];
    assert_int_equal(list(dir, ".sigmf-meta", names, 16), 3);
    rm_dir(dir);

    /* a flood of 40 MiB at once into a 2 MB queue: what the writer cannot take is dropped
       and counted, never waited for; every sample is written or counted, and a drop
       starts a new file (a file is one contiguous stretch) */
    c = base_config(NULL, NULL);
    c.record_max_bytes = 64 * MIB;
    c.record_max_files = 16;
    r = start(dir, sizeof dir, "flood", false, &c);
    feed_ex(r, 0, 20 * MIB, true);
    settle(r);
    recorder_get_stats(r, &st);
    assert_int_equal(st.record_bytes / 2 + st.record_samples_dropped, fed);
    recorder_destroy(r);
    r = NULL;
    uint64_t on_disk = 0;
    int nf = list(dir, ".sigmf-data", names, 16);
    for (int i = 0; i < nf; i++) {
        struct stat sb;
        assert_int_equal(stat(names[i], &sb), 0);
        on_disk += (uint64_t)sb.st_size / 2;
    }
    print_message("flood: %llu of %llu samples written in %d files (%llu deleted)\n",
                  (unsigned long long)on_disk, (unsigned long long)fed, nf,
                  (unsigned long long)st.record_files_deleted);
    assert_true(on_disk > 0);
    if (st.record_files_deleted > 0) {
        /* every drop starts a file: on a slow writer (ASan, valgrind) the drops can be so
           many that rotation keeps only the newest record_max_files */
        assert_int_equal(nf, (int)c.record_max_files);
        assert_true(on_disk < st.record_bytes / 2);
    } else {
        assert_int_equal(on_disk, st.record_bytes / 2);
        /* a drop starts a new file, unless nothing came after it (the writer fell behind
           only at the end): the one file is then the head of the stream */
        if (on_disk < fed && nf == 1)
            check_data(names[0], 0, on_disk);
        else if (on_disk < fed)
            assert_true(nf >= 2);
    }
    rm_dir(dir);
}

/* The directory disappears under a running recorder (a disk unmounted, an operator's
 * rm -r): the file being written goes on (its descriptor stays valid), the next one cannot
 * be created: errors are counted, the samples dropped and counted, nothing waits or
 * crashes; the directory back, the recording resumes (after RETRY_S: here not waited for,
 * so only the counters are checked). */
static void test_dir_gone(void **state)
{
    (void)state;
    char dir[256];
    recorder_t *r = start(dir, sizeof dir, "gone", false, NULL);
    const uint64_t per = MIB / 2;
    feed(r, 0, per / 2);
    rm_dir(dir);
    feed(r, per / 2, 2 * per); /* the rest of file 1, then file 2 cannot be created */
    recorder_stats_t st;
    recorder_get_stats(r, &st);
    print_message("directory gone: files %llu, write errors %llu, samples dropped %llu\n",
                  (unsigned long long)st.record_files, (unsigned long long)st.record_write_errors,
                  (unsigned long long)st.record_samples_dropped);
    assert_int_equal(st.record_files, 1);
    assert_true(st.record_write_errors >= 1);
    assert_int_equal(st.record_bytes / 2 + st.record_samples_dropped, fed);
    assert_true(st.record_samples_dropped >= per / 2);
    rx_frame_t fr = frame_at(10, 0x66666666);
    recorder_frame(r, &fr);
    recorder_destroy(r); /* the meta of file 1 cannot be written either: counted, no crash */
}

/* Snippets: cut with margins and the longest frame's reach, rate-limited, capped. */
static void test_snippets(void **state)
{
    (void)state;
    char dir[256], err[512];
    recorder_t *r = start(dir, sizeof dir, "snip", true, NULL);
    recorder_config_t c = base_config(NULL, dir);
    recorder_stats_t st;
    recorder_get_stats(r, &st);
    assert_int_equal(st.history_bytes, (size_t)(RECORDER_HISTORY_S * RATE) * 2);
    feed(r, 0, (uint64_t)(5 * RATE));
    /* BR600 burst at 1.0 .. 1.2 s: reach 0.35 s, margins 0.5 s -> 0.5 .. 1.85 s */
    rx_burst_t b = {.sample_start = 250000,
                    .sample_end = 300000,
                    .freq_hz = 868.1e6,
                    .snr_db = 12,
                    .baud = 600,
                    .reason = RX_UNDECODED_CRC_BAD};
    recorder_undecoded(r, &b);
    b.sample_start = 375000; /* 0.5 s later: rate limit (1 s) */
    b.sample_end = 400000;
    recorder_undecoded(r, &b);
    /* a BR100 burst at 3.0 s whose detector end came early: reach 2.1 s -> end 5.1 s,
       cut at what the ring holds (5 s) */
    b = (rx_burst_t){.sample_start = 750000,
                     .sample_end = 800000,
                     .freq_hz = 868.2e6,
                     .snr_db = 9,
                     .baud = 100,
                     .reason = RX_UNDECODED_NOSYNC};
    recorder_undecoded(r, &b);
    b.sample_start = 1000000; /* the cap of 2 is reached */
    b.sample_end = 1100000;
    recorder_undecoded(r, &b);
    recorder_get_stats(r, &st);
    assert_int_equal(st.snippets_dropped, 2);
    recorder_destroy(r);

    char names[8][256];
    assert_int_equal(list(dir, ".sigmf-data", names, 8), 2);
    check_data(names[0], 125000, 337500);
    check_data(names[1], 625000, 1250000 - 625000);
    char meta[300];
    snprintf(meta, sizeof meta, "%.*s.sigmf-meta", (int)(strlen(names[0]) - 11), names[0]);
    json_object *m = read_meta(meta);
    assert_int_equal(get_i64(m, "annotations", 0, "core:sample_start"), 125000);
    assert_int_equal(get_i64(m, "annotations", 0, "core:sample_count"), 50000);
    assert_int_equal(get_i64(m, "annotations", 0, "sigfoxd:stream_sample"), 250000);
    assert_int_equal(get_i64(m, "captures", 0, "core:global_index"), 125000);
    json_object *caps, *dt;
    assert_true(json_object_object_get_ex(m, "captures", &caps));
    assert_true(
        json_object_object_get_ex(json_object_array_get_idx(caps, 0), "core:datetime", &dt));
    double t;
    assert_int_equal(iq_parse_datetime(json_object_get_string(dt), &t), 0);
    assert_true(t > 1.8e9 + 0.5 - 1e-4 && t < 1.8e9 + 0.5 + 1e-4);
    json_object_put(m);
    snprintf(meta, sizeof meta, "%.*s.sigmf-meta", (int)(strlen(names[1]) - 11), names[1]);
    m = read_meta(meta);
    assert_int_equal(get_i64(m, "annotations", 0, "core:sample_start"), 125000);
    json_object_put(m);

    /* a new run finds the cap already reached: nothing more */
    r = recorder_create(&c, err, sizeof err);
    assert_non_null(r);
    feed(r, 0, (uint64_t)RATE);
    b.sample_start = 100000;
    b.sample_end = 120000;
    recorder_undecoded(r, &b);
    recorder_get_stats(r, &st);
    assert_int_equal(st.snippets_dropped, 1);
    recorder_destroy(r);
    assert_int_equal(list(dir, ".sigmf-data", names, 8), 2);
    rm_dir(dir);
}

/* Directories and sizes that cannot work are refused with a message naming them. */
static void test_refused(void **state)
{
    (void)state;
    char dir[256], file[300], err[512];
    make_dir(dir, sizeof dir, "bad");
    snprintf(file, sizeof file, "%s/plain", dir);
    touch(file);
    recorder_config_t c = base_config(file, NULL);
    assert_null(recorder_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "record.dir (--record)"));
    assert_non_null(strstr(err, "is not a directory"));
    char sub[400];
    snprintf(sub, sizeof sub, "%s/plain/below", dir);
    c = base_config(NULL, sub);
    assert_null(recorder_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "snippets.dir (--snippets): cannot use or create directory"));
    c = base_config(dir, NULL);
    c.record_max_bytes = 1000;
    assert_null(recorder_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "record.max_mb"));
    c = base_config(NULL, dir);
    c.snippet_margin_s = 30;
    assert_null(recorder_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "margin"));
    c = base_config(dir, NULL);
    c.format = IQ_FORMAT_WAV16;
    assert_null(recorder_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "cannot be recorded"));
    /* a missing directory whose parent exists is created */
    snprintf(sub, sizeof sub, "%s/new", dir);
    c = base_config(sub, NULL);
    recorder_t *r = recorder_create(&c, err, sizeof err);
    assert_non_null(r);
    recorder_destroy(r);
    struct stat sb;
    assert_int_equal(stat(sub, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    rmdir(sub);
    unlink(file);
    rm_dir(dir);
    recorder_destroy(NULL);
}

int main(void)
{
    log_set_level(LOG_LEVEL_WARNING);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation), cmocka_unit_test(test_stats),
        cmocka_unit_test(test_dir_gone), cmocka_unit_test(test_snippets),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
