/* test_iqfile: round trips in every IQ format, odd block sizes, metadata precedence and
 * every bad-input case of the iqfile module. Licence: MIT. */
#define _GNU_SOURCE /* setresuid, setresgid */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <complex.h>
#include <stdbool.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "iqfile.h"
#include "prng.h"

#include "testutil.h"

static char tmpdir[256];

static void path_in_tmp(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", tmpdir, name);
}

static int setup_dir(void **state)
{
    (void)state;
    return test_tmpdir_create(tmpdir, sizeof tmpdir, "test_iqfile");
}

static int remove_dir(void **state)
{
    (void)state;
    return test_tmpdir_remove(tmpdir);
}

static long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long)st.st_size;
}

/* Deterministic test signal covering the whole range [-1, 1) with a tone and prng.h. */
static void make_signal(float complex *x, size_t n)
{
    prng_t s;
    prng_seed(&s, 12345, 0);
    for (size_t i = 0; i < n; i++) {
        float r = (float)(prng_next(&s) >> 40) / 16777216.0f * 1.98f - 0.99f;
        x[i] = CMPLXF(0.5f * cosf(0.01f * (float)i) + 0.49f * r,
                      0.5f * sinf(0.01f * (float)i) - 0.49f * r);
    }
}

/* ---- round trips ---------------------------------------------------------------------- */

typedef struct {
    const char *file;          /* name in the temp dir */
    iq_format_t format;        /* explicit format or UNKNOWN (extension) */
    iq_format_t sample_format; /* SigMF writer */
    iq_format_t expect_fmt;    /* iqfile_format() when reading back */
    float tolerance;           /* per component: half a quantisation step */
    bool metadata;             /* rate/centre come back from the file itself */
} roundtrip_case_t;

static const roundtrip_case_t roundtrip_cases[] = {
    {"rt.cu8", IQ_FORMAT_UNKNOWN, 0, IQ_FORMAT_CU8, 0.5f / 127.5f, false},
    {"rt.cs8", IQ_FORMAT_UNKNOWN, 0, IQ_FORMAT_CS8, 0.5f / 128.0f, false},
    {"rt.cs16", IQ_FORMAT_UNKNOWN, 0, IQ_FORMAT_CS16, 0.5f / 32768.0f, false},
    {"rt.cf32", IQ_FORMAT_UNKNOWN, 0, IQ_FORMAT_CF32, 0.0f, false},
    {"rt16.wav", IQ_FORMAT_UNKNOWN, 0, IQ_FORMAT_WAV16, 0.5f / 32768.0f, true},
    {"rtf.wav", IQ_FORMAT_WAVF32, 0, IQ_FORMAT_WAVF32, 0.0f, true},
    {"rtu8.sigmf-meta", IQ_FORMAT_UNKNOWN, IQ_FORMAT_CU8, IQ_FORMAT_CU8, 0.5f / 127.5f, true},
    {"rti8.sigmf-data", IQ_FORMAT_UNKNOWN, IQ_FORMAT_CS8, IQ_FORMAT_CS8, 0.5f / 128.0f, true},
    {"rti16", IQ_FORMAT_SIGMF, IQ_FORMAT_CS16, IQ_FORMAT_CS16, 0.5f / 32768.0f, true},
    {"rtf32.sigmf-meta", IQ_FORMAT_UNKNOWN, IQ_FORMAT_UNKNOWN, IQ_FORMAT_CF32, 0.0f, true},
};

/* Block sizes chosen to cross the module's internal 64 KiB buffer at odd places. */
static const size_t write_blocks[] = {1, 7, 1000, 8193, 3, 40000};
static const size_t read_blocks[] = {13, 1, 65537, 999, 2, 8191};
#define N_SIGNAL 120000

static void test_roundtrip_all_formats(void **state)
{
    (void)state;
    float complex *x = malloc(N_SIGNAL * sizeof *x);
    float complex *y = malloc((N_SIGNAL + 70000) * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    make_signal(x, N_SIGNAL);
    for (size_t c = 0; c < sizeof roundtrip_cases / sizeof roundtrip_cases[0]; c++) {
        const roundtrip_case_t *tc = &roundtrip_cases[c];
        char path[512], err[512];
        path_in_tmp(path, sizeof path, tc->file);
        iqfile_params_t wp = {.format = tc->format,
                              .sample_format = tc->sample_format,
                              .rate_sps = 1024000.0,
                              .center_freq_hz = 868130000.0,
                              .description = "round trip"};
        iqfile_t *w = iqfile_open_write(path, &wp, err, sizeof err);
        assert_non_null(w);
        size_t done = 0;
        for (size_t b = 0; done < N_SIGNAL; b++) {
            size_t k = write_blocks[b % 6];
            if (k > N_SIGNAL - done)
                k = N_SIGNAL - done;
            assert_int_equal(iqfile_write(w, x + done, k), 0);
            done += k;
        }
        assert_int_equal(iqfile_position(w), N_SIGNAL);
        assert_int_equal(iqfile_close(w), 0);

        iqfile_params_t rp = {.format = tc->format};
        iqfile_t *r = iqfile_open_read(path, &rp, err, sizeof err);
        if (!r)
            fail_msg("%s: %s", tc->file, err);
        assert_int_equal(iqfile_format(r), tc->expect_fmt);
        assert_int_equal(iqfile_length(r), N_SIGNAL);
        if (tc->metadata) {
            assert_true(iqfile_rate(r) == 1024000.0);
            assert_true(iqfile_center_freq(r) == 868130000.0);
            assert_int_equal(iqfile_rate_source(r), IQ_SOURCE_METADATA);
            assert_int_equal(iqfile_center_freq_source(r), IQ_SOURCE_METADATA);
        } else {
            assert_true(iqfile_rate(r) == 0.0);
            assert_int_equal(iqfile_rate_source(r), IQ_SOURCE_NONE);
        }
        size_t got = 0;
        for (size_t b = 0;; b++) {
            ssize_t k = iqfile_read(r, y + got, read_blocks[b % 6]);
            if (k < 0)
                fail_msg("%s: %s", tc->file, iqfile_error(r));
            if (k == 0)
                break;
            got += (size_t)k;
        }
        assert_int_equal(got, N_SIGNAL);
        assert_int_equal(iqfile_read(r, y, 10), 0); /* stays at the end */
        float worst = 0.0f;
        for (size_t i = 0; i < N_SIGNAL; i++) {
            worst = fmaxf(worst, fabsf(crealf(y[i]) - crealf(x[i])));
            worst = fmaxf(worst, fabsf(cimagf(y[i]) - cimagf(x[i])));
        }
        if (worst > tc->tolerance * 1.0001f)
            fail_msg("%s: worst error %g > %g", tc->file, worst, tc->tolerance);
        assert_int_equal(iqfile_close(r), 0);
    }
    free(x);
    free(y);
}

/* Integer formats round and clip; NaN maps to zero. */
static void test_clipping(void **state)
{
    (void)state;
    char path[512], err[512];
    path_in_tmp(path, sizeof path, "clip.cs16");
    const float complex in[3] = {CMPLXF(1.5f, -2.0f), CMPLXF(NAN, 0.25f),
                                 CMPLXF(-1.0f, 0.99999f)};
    iqfile_t *w = iqfile_open_write(path, NULL, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(iqfile_write(w, in, 3), 0);
    assert_int_equal(iqfile_close(w), 0);
    iqfile_t *r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    float complex out[3];
    assert_int_equal(iqfile_read(r, out, 3), 3);
    assert_true(crealf(out[0]) == 32767.0f / 32768.0f);
    assert_true(cimagf(out[0]) == -1.0f);
    assert_true(crealf(out[1]) == 0.0f);
    assert_true(cimagf(out[1]) == 0.25f);
    assert_true(crealf(out[2]) == -1.0f);
    assert_true(cimagf(out[2]) == 32767.0f / 32768.0f);
    iqfile_close(r);
}

/* Byte-level layout of the raw formats and the cu8 scaling (x - 127.5) / 127.5. */
static void test_raw_scaling(void **state)
{
    (void)state;
    char path[512], err[512];
    path_in_tmp(path, sizeof path, "scale.cu8");
    const uint8_t cu8[4] = {0, 255, 127, 128};
    test_write_bytes(path, cu8, sizeof cu8);
    iqfile_t *r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    float complex out[2];
    assert_int_equal(iqfile_read(r, out, 2), 2);
    assert_true(crealf(out[0]) == -1.0f && cimagf(out[0]) == 1.0f);
    assert_true(fabsf(crealf(out[1]) + 0.5f / 127.5f) < 1e-7f);
    assert_true(fabsf(cimagf(out[1]) - 0.5f / 127.5f) < 1e-7f);
    iqfile_close(r);

    path_in_tmp(path, sizeof path, "scale.cs8");
    const uint8_t cs8[2] = {0x80, 0x40};
    test_write_bytes(path, cs8, sizeof cs8);
    r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(iqfile_read(r, out, 2), 1);
    assert_true(crealf(out[0]) == -1.0f && cimagf(out[0]) == 0.5f);
    iqfile_close(r);

    path_in_tmp(path, sizeof path, "scale.cs16");
    const uint8_t cs16[4] = {0x00, 0x40, 0x00, 0xC0}; /* +16384, -16384 little-endian */
    test_write_bytes(path, cs16, sizeof cs16);
    r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(iqfile_read(r, out, 2), 1);
    assert_true(crealf(out[0]) == 0.5f && cimagf(out[0]) == -0.5f);
    iqfile_close(r);
}

/* ---- names and metadata precedence ---------------------------------------------------- */

static void test_format_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        iq_format_t fmt;
    } names[] = {{"cu8", IQ_FORMAT_CU8},      {"CS8", IQ_FORMAT_CS8},     {"cs16", IQ_FORMAT_CS16},
                 {"cf32", IQ_FORMAT_CF32},    {"wav", IQ_FORMAT_WAV16},   {"wav16", IQ_FORMAT_WAV16},
                 {"wavf32", IQ_FORMAT_WAVF32}, {"SigMF", IQ_FORMAT_SIGMF}, {"cs32", IQ_FORMAT_UNKNOWN},
                 {"", IQ_FORMAT_UNKNOWN}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_int_equal(iq_format_from_name(names[i].name), names[i].fmt);
    assert_int_equal(iq_format_from_name(NULL), IQ_FORMAT_UNKNOWN);
    assert_string_equal(iq_format_name(IQ_FORMAT_CS16), "cs16");
    assert_string_equal(iq_format_name((iq_format_t)99), "unknown");

    static const struct {
        const char *path;
        iq_format_t fmt;
    } paths[] = {{"a/b.cu8", IQ_FORMAT_CU8},          {"X.CS8", IQ_FORMAT_CS8},
                 {"x.cs16", IQ_FORMAT_CS16},          {"x.cf32", IQ_FORMAT_CF32},
                 {"x.wav", IQ_FORMAT_WAV16},          {"x.sigmf-meta", IQ_FORMAT_SIGMF},
                 {"x.sigmf-data", IQ_FORMAT_SIGMF},   {"x.sigmf", IQ_FORMAT_SIGMF},
                 {"x.raw", IQ_FORMAT_UNKNOWN},        {"-", IQ_FORMAT_UNKNOWN},
                 {"cu8", IQ_FORMAT_UNKNOWN}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        assert_int_equal(iq_format_from_path(paths[i].path), paths[i].fmt);
    assert_int_equal(iq_format_sample_bytes(IQ_FORMAT_CF32), 8);
    assert_int_equal(iq_format_sample_bytes(IQ_FORMAT_SIGMF), 0);
    assert_string_equal(iq_source_name(IQ_SOURCE_FILENAME), "file name");
}

static void test_name_tokens(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        int found;
        double rate, freq;
    } cases[] = {
        {"x_868.13M_1024k.cu8", 3, 1024000.0, 868130000.0},
        {"dir_433.92M/rec_250k.cs16", 1, 250000.0, 0.0}, /* directory names are not read */
        {"g001_2.4Msps_868130000Hz.cf32", 3, 2400000.0, 868130000.0},
        {"cap_902.2MHz_200ksps.cs8", 3, 200000.0, 902200000.0},
        {"rc1_cs16_test.cu8", 0, 0.0, 0.0},
        {"20240105_120000.cu8", 0, 0.0, 0.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double rate = 0.0, freq = 0.0;
        assert_int_equal(iq_parse_name_tokens(cases[i].path, &rate, &freq), cases[i].found);
        assert_true(fabs(rate - cases[i].rate) < 1e-3);
        assert_true(fabs(freq - cases[i].freq) < 1e-3);
    }
}

static void test_metadata_precedence(void **state)
{
    (void)state;
    char path[512], err[512];
    const uint8_t z[8] = {128, 128, 128, 128, 128, 128, 128, 128};

    /* Raw: name tokens when no parameters... */
    path_in_tmp(path, sizeof path, "x_868.13M_1024k.cu8");
    test_write_bytes(path, z, sizeof z);
    iqfile_t *r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    assert_true(fabs(iqfile_rate(r) - 1024000.0) < 1e-6);
    assert_true(fabs(iqfile_center_freq(r) - 868130000.0) < 1e-3);
    assert_int_equal(iqfile_rate_source(r), IQ_SOURCE_FILENAME);
    assert_int_equal(iqfile_center_freq_source(r), IQ_SOURCE_FILENAME);
    assert_int_equal(iqfile_length(r), 4);
    iqfile_close(r);
    /* ...explicit parameters beat a guessed name, per value. */
    iqfile_params_t p = {.rate_sps = 2048000.0};
    r = iqfile_open_read(path, &p, err, sizeof err);
    assert_non_null(r);
    assert_true(iqfile_rate(r) == 2048000.0);
    assert_int_equal(iqfile_rate_source(r), IQ_SOURCE_PARAMS);
    assert_int_equal(iqfile_center_freq_source(r), IQ_SOURCE_FILENAME);
    iqfile_close(r);

    /* SigMF: metadata beats parameters and name tokens. */
    path_in_tmp(path, sizeof path, "m_915M_500k.sigmf-meta");
    iqfile_params_t wp = {.format = IQ_FORMAT_UNKNOWN, .rate_sps = 600000.0,
                          .center_freq_hz = 869525000.0};
    iqfile_t *w = iqfile_open_write(path, &wp, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(iqfile_close(w), 0);
    p = (iqfile_params_t){.rate_sps = 1e6, .center_freq_hz = 868e6};
    r = iqfile_open_read(path, &p, err, sizeof err);
    assert_non_null(r);
    assert_true(iqfile_rate(r) == 600000.0);
    assert_true(iqfile_center_freq(r) == 869525000.0);
    assert_int_equal(iqfile_rate_source(r), IQ_SOURCE_METADATA);
    assert_int_equal(iqfile_container(r), IQ_FORMAT_SIGMF);
    assert_int_equal(iqfile_length(r), 0);
    float complex y[4];
    assert_int_equal(iqfile_read(r, y, 4), 0);
    iqfile_close(r);
}

/* The SigMF writer's metadata is valid JSON with the core fields. */
static void test_sigmf_meta_written(void **state)
{
    (void)state;
    char path[512], err[512];
    path_in_tmp(path, sizeof path, "meta.sigmf-data");
    iqfile_params_t wp = {.sample_format = IQ_FORMAT_CS16, .rate_sps = 1024000.0,
                          .center_freq_hz = 868130000.0, .description = "test \"quoted\""};
    iqfile_t *w = iqfile_open_write(path, &wp, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(iqfile_close(w), 0);
    path_in_tmp(path, sizeof path, "meta.sigmf-meta");
    json_object *root = json_object_from_file(path);
    assert_non_null(root);
    json_object *global, *o, *captures;
    assert_true(json_object_object_get_ex(root, "global", &global));
    assert_true(json_object_object_get_ex(global, "core:version", &o));
    assert_string_equal(json_object_get_string(o), "1.0.0");
    assert_true(json_object_object_get_ex(global, "core:datatype", &o));
    assert_string_equal(json_object_get_string(o), "ci16_le");
    assert_true(json_object_object_get_ex(global, "core:sample_rate", &o));
    assert_true(json_object_get_double(o) == 1024000.0);
    assert_true(json_object_object_get_ex(global, "core:description", &o));
    assert_string_equal(json_object_get_string(o), "test \"quoted\"");
    assert_true(json_object_object_get_ex(root, "captures", &captures));
    assert_int_equal(json_object_array_length(captures), 1);
    json_object *cap0 = json_object_array_get_idx(captures, 0);
    assert_true(json_object_object_get_ex(cap0, "core:sample_start", &o));
    assert_int_equal(json_object_get_int64(o), 0);
    assert_true(json_object_object_get_ex(cap0, "core:frequency", &o));
    assert_true(json_object_get_double(o) == 868130000.0);
    assert_true(json_object_object_get_ex(root, "annotations", &o));
    json_object_put(root);
}

/* SigMF core:datetime: parsed and printed to the microsecond, written by the writer,
 * read back as the first sample's UTC (moved back by captures[0] core:sample_start). */
static void test_sigmf_datetime(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        double unix_s;
    } good[] = {
        {"1970-01-01T00:00:00Z", 0.0},
        {"2026-12-05T10:00:00Z", 1796464800.0},
        {"2026-12-05T10:00:00.25Z", 1796464800.25},
        {"2026-12-05t10:00:00.000001z", 1796464800.000001},
        {"2026-12-05T11:30:00+01:30", 1796464800.0},
        {"2026-12-05T08:00:00.5-02:00", 1796464800.5},
        {"2024-02-29T23:59:59.999999999999Z", 1709251199.999999999999},
        {"2000-03-01T00:00:00Z", 951868800.0},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double t = -1;
        if (iq_parse_datetime(good[i].text, &t) != 0 || fabs(t - good[i].unix_s) > 1e-6)
            fail_msg("%s: %.6f, expected %.6f", good[i].text, t, good[i].unix_s);
    }
    static const char *const bad[] = {
        "",
        "2026-12-05",
        "2026-12-05T10:00:00",      /* no zone */
        "2026-12-05 10:00:00Z",     /* space */
        "2026-13-05T10:00:00Z",     /* month */
        "2025-02-29T10:00:00Z",     /* not a leap year */
        "2026-04-31T10:00:00Z",     /* day */
        "2026-12-05T24:00:00Z",     /* hour */
        "2026-12-05T10:60:00Z",     /* minute */
        "2026-12-05T10:00:61Z",     /* second */
        "1969-12-31T23:59:59Z",     /* before 1970 */
        "2026-12-05T10:00:00.Z",    /* empty fraction */
        "2026-12-05T10:00:00.1234567890123Z", /* 13 fraction digits */
        "2026-12-05T10:00:00Zjunk", /* trailing text */
        "2026-12-05T10:00:00+1:00", /* short offset */
        "+026-12-05T10:00:00Z",
        "2026-12-05T10:00:00\nZ",
        "1970-01-01T00:00:00+00:01", /* before 1970 once the offset is applied */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double t = 0;
        if (iq_parse_datetime(bad[i], &t) == 0)
            fail_msg("\"%s\" parsed as %.6f", bad[i], t);
    }
    assert_int_equal(iq_parse_datetime(NULL, &(double){0}), -1);
    char out[40];
    assert_string_equal(iq_format_datetime(1796464800.25, out, sizeof out),
                        "2026-12-05T10:00:00.250000Z");
    assert_string_equal(iq_format_datetime(1796464800.9999996, out, sizeof out),
                        "2026-12-05T10:00:01.000000Z");
    assert_string_equal(iq_format_datetime(0, out, sizeof out), "1970-01-01T00:00:00.000000Z");
    assert_null(iq_format_datetime(-1, out, sizeof out));
    assert_null(iq_format_datetime(NAN, out, sizeof out));
    assert_null(iq_format_datetime(1e12, out, sizeof out));
    assert_null(iq_format_datetime(1.0, out, 27));
    /* printed and parsed back: the same microsecond */
    for (double t = 1.5e9; t < 1.9e9; t += 12345678.123457) {
        double back;
        assert_int_equal(iq_parse_datetime(iq_format_datetime(t, out, sizeof out), &back), 0);
        assert_true(fabs(back - t) <= 0.5e-6);
    }

    /* writer -> metadata -> reader */
    char path[512], err[512];
    path_in_tmp(path, sizeof path, "dt.sigmf-meta");
    iqfile_params_t wp = {.sample_format = IQ_FORMAT_CU8, .rate_sps = 250000.0,
                          .start_unix_s = 1796464800.123456};
    iqfile_t *w = iqfile_open_write(path, &wp, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(iqfile_close(w), 0);
    json_object *root = json_object_from_file(path), *captures, *o;
    assert_non_null(root);
    assert_true(json_object_object_get_ex(root, "captures", &captures));
    assert_true(json_object_object_get_ex(json_object_array_get_idx(captures, 0), "core:datetime",
                                          &o));
    assert_string_equal(json_object_get_string(o), "2026-12-05T10:00:00.123456Z");
    json_object_put(root);
    iqfile_t *r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    assert_true(fabs(iqfile_start_unix_s(r) - 1796464800.123456) < 1e-6);
    iqfile_close(r);
    /* no datetime written, none read; raw files have none */
    path_in_tmp(path, sizeof path, "nodt.sigmf-meta");
    wp.start_unix_s = 0;
    assert_int_equal(iqfile_close(iqfile_open_write(path, &wp, err, sizeof err)), 0);
    r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    assert_true(iqfile_start_unix_s(r) == 0.0);
    iqfile_close(r);
    /* a capture segment starting at sample 500000 of a 250 kS/s file: 2 s earlier */
    path_in_tmp(path, sizeof path, "dtss.sigmf-data");
    test_write_bytes(path, (const uint8_t[4]){0}, 4);
    path_in_tmp(path, sizeof path, "dtss.sigmf-meta");
    test_write_text(path, "{\"global\": {\"core:datatype\": \"cu8\", \"core:sample_rate\": "
                          "250000}, \"captures\": [{\"core:sample_start\": 500000, "
                          "\"core:datetime\": \"2026-12-05T10:00:02Z\"}]}");
    r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    assert_true(fabs(iqfile_start_unix_s(r) - 1796464800.0) < 1e-6);
    iqfile_close(r);
    assert_true(iqfile_start_unix_s(NULL) == 0.0);
}

/* The RIFF header written at close carries the real sizes. */
static void test_wav_header_written(void **state)
{
    (void)state;
    char path[512], err[512];
    path_in_tmp(path, sizeof path, "hdr.wav");
    iqfile_params_t wp = {.rate_sps = 250000.0};
    iqfile_t *w = iqfile_open_write(path, &wp, err, sizeof err);
    assert_non_null(w);
    float complex x[101];
    make_signal(x, 101);
    assert_int_equal(iqfile_write(w, x, 101), 0);
    assert_int_equal(iqfile_close(w), 0);
    long size = file_size(path);
    uint8_t h[44];
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(h, 1, 44, fp), 44);
    fclose(fp);
    assert_memory_equal(h, "RIFF", 4);
    assert_int_equal(h[4] | h[5] << 8 | h[6] << 16 | (uint32_t)h[7] << 24, size - 8);
    assert_memory_equal(h + 8, "WAVEfmt ", 8);
    assert_int_equal(h[20] | h[21] << 8, 1);                   /* PCM */
    assert_int_equal(h[22] | h[23] << 8, 2);                   /* channels */
    assert_int_equal(h[24] | h[25] << 8 | h[26] << 16, 250000); /* rate */
    assert_int_equal(h[34] | h[35] << 8, 16);                  /* bits */
    /* No centre frequency given: no auxi chunk, so data follows fmt directly. */
    assert_memory_equal(h + 36, "data", 4);
    assert_int_equal(h[40] | h[41] << 8 | h[42] << 16 | (uint32_t)h[43] << 24, 101 * 4);
    assert_int_equal(size, 44 + 101 * 4);
}

static size_t put_chunk(uint8_t *b, const char *id, uint32_t size)
{
    memcpy(b, id, 4);
    b[4] = (uint8_t)size;
    b[5] = (uint8_t)(size >> 8);
    b[6] = (uint8_t)(size >> 16);
    b[7] = (uint8_t)(size >> 24);
    return 8;
}

/* Builds a WAV header: RIFF, a LIST chunk to skip (odd size, padded), fmt, data. */
static size_t make_wav(uint8_t *b, unsigned tag, unsigned channels, unsigned bits,
                       uint32_t rate, bool extensible, uint32_t data_size)
{
    size_t n = 0;
    n += put_chunk(b + n, "RIFF", 0xFFFFFFFFu);
    memcpy(b + n, "WAVE", 4);
    n += 4;
    n += put_chunk(b + n, "LIST", 5);
    memcpy(b + n, "abcde\0", 6);
    n += 6;
    uint32_t fmt_size = extensible ? 40 : 16;
    n += put_chunk(b + n, "fmt ", fmt_size);
    memset(b + n, 0, fmt_size);
    unsigned align = channels * bits / 8;
    b[n] = (uint8_t)(extensible ? 0xFE : tag);
    b[n + 1] = extensible ? 0xFF : 0;
    b[n + 2] = (uint8_t)channels;
    for (int i = 0; i < 4; i++) {
        b[n + 4 + i] = (uint8_t)(rate >> (8 * i));
        b[n + 8 + i] = (uint8_t)((rate * align) >> (8 * i));
    }
    b[n + 12] = (uint8_t)align;
    b[n + 14] = (uint8_t)bits;
    if (extensible) {
        b[n + 16] = 22;
        b[n + 24] = (uint8_t)tag;
    }
    n += fmt_size;
    n += put_chunk(b + n, "data", data_size);
    return n;
}

/* Foreign WAV layouts: extensible float with a LIST chunk, streaming sizes. */
static void test_wav_foreign_headers(void **state)
{
    (void)state;
    char path[512], err[512];
    uint8_t b[256] = {0};
    size_t n = make_wav(b, 3, 2, 32, 192000, true, 16);
    const float v[4] = {0.25f, -0.5f, 1.0f, -1.0f};
    memcpy(b + n, v, sizeof v);
    path_in_tmp(path, sizeof path, "ext.wav");
    test_write_bytes(path, b, n + sizeof v);
    iqfile_t *r = iqfile_open_read(path, NULL, err, sizeof err);
    if (!r)
        fail_msg("%s", err);
    assert_int_equal(iqfile_format(r), IQ_FORMAT_WAVF32);
    assert_true(iqfile_rate(r) == 192000.0);
    float complex y[4];
    assert_int_equal(iqfile_read(r, y, 4), 2);
    assert_true(crealf(y[1]) == 1.0f && cimagf(y[1]) == -1.0f);
    iqfile_close(r);

    /* 0xFFFFFFFF data size: read to the end of the file (and through stdin). */
    n = make_wav(b, 1, 2, 16, 48000, false, 0xFFFFFFFFu);
    memset(b + n, 0x11, 12);
    path_in_tmp(path, sizeof path, "stream.wav");
    test_write_bytes(path, b, n + 12);
    r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(iqfile_length(r), 3);
    assert_int_equal(iqfile_read(r, y, 4), 3);
    assert_true(crealf(y[2]) == (float)0x1111 / 32768.0f);
    iqfile_close(r);
}

/* "-" reads stdin and writes stdout for raw formats. */
static void test_stdio(void **state)
{
    (void)state;
    char path[512], err[512];
    float complex x[1000], y[1001];
    make_signal(x, 1000);

    /* The format of "-" must be explicit. */
    assert_null(iqfile_open_read("-", NULL, err, sizeof err));
    assert_non_null(strstr(err, "explicitly"));

    path_in_tmp(path, sizeof path, "stdout.cs8");
    fflush(stdout);
    int saved_out = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved_out >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    iqfile_params_t p = {.format = IQ_FORMAT_CS8};
    iqfile_t *w = iqfile_open_write("-", &p, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(iqfile_write(w, x, 1000), 0);
    assert_int_equal(iqfile_close(w), 0);
    dup2(saved_out, STDOUT_FILENO);
    close(saved_out);
    assert_int_equal(file_size(path), 2000);

    int saved_in = dup(STDIN_FILENO);
    fd = open(path, O_RDONLY);
    assert_true(saved_in >= 0 && fd >= 0);
    dup2(fd, STDIN_FILENO);
    close(fd);
    iqfile_t *r = iqfile_open_read("-", &p, err, sizeof err);
    assert_non_null(r);
    size_t got = 0;
    ssize_t k;
    while ((k = iqfile_read(r, y + got, 333)) > 0)
        got += (size_t)k;
    assert_int_equal(k, 0);
    assert_int_equal(got, 1000);
    for (size_t i = 0; i < 1000; i++)
        assert_true(cabsf(y[i] - x[i]) < 1.0f / 128.0f);
    iqfile_close(r);
    dup2(saved_in, STDIN_FILENO);
    close(saved_in);
    clearerr(stdin);
}

static void test_rewind(void **state)
{
    (void)state;
    char path[512], err[512];
    float complex x[500], a[500], b[500];
    make_signal(x, 500);
    path_in_tmp(path, sizeof path, "rewind.wav");
    iqfile_params_t wp = {.rate_sps = 1e6, .center_freq_hz = 868.13e6};
    iqfile_t *w = iqfile_open_write(path, &wp, err, sizeof err);
    assert_non_null(w);
    assert_int_equal(iqfile_write(w, x, 500), 0);
    assert_int_equal(iqfile_close(w), 0);
    iqfile_t *r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    assert_true(iqfile_center_freq(r) == 868130000.0); /* from the auxi chunk */
    assert_int_equal(iqfile_read(r, a, 500), 500);
    assert_int_equal(iqfile_read(r, a, 1), 0);
    assert_int_equal(iqfile_rewind(r), 0);
    assert_int_equal(iqfile_position(r), 0);
    assert_int_equal(iqfile_read(r, b, 500), 500);
    assert_memory_equal(a, b, sizeof a);
    iqfile_close(r);
}

/* ---- bad input ------------------------------------------------------------------------ */

/* Opening fails with a message that names the file and contains the phrase. */
static void expect_open_error(const char *file, const iqfile_params_t *p, const char *phrase)
{
    char path[512], err[512];
    path_in_tmp(path, sizeof path, file);
    iqfile_t *r = iqfile_open_read(path, p, err, sizeof err);
    if (r)
        fail_msg("%s: opened, expected an error with \"%s\"", file, phrase);
    if (!strstr(err, file) || !strstr(err, phrase))
        fail_msg("%s: message \"%s\" lacks the file name or \"%s\"", file, err, phrase);
}

/* Root reads anything (CI runs as root): the unreadable-file case runs in a child that
 * drops to the unprivileged user nobody (65534), as setpriv/runuser would. The scratch
 * directory is opened for traversal meanwhile, so only the file's own mode refuses. */
static void expect_open_error_unprivileged(const char *file, const char *phrase)
{
    char path[512];
    path_in_tmp(path, sizeof path, file);
    struct stat st;
    assert_int_equal(stat(tmpdir, &st), 0);
    assert_int_equal(chmod(tmpdir, 0711), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[512] = "";
        if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 65534) != 0 ||
            setresuid(65534, 65534, 65534) != 0 || geteuid() == 0)
            _exit(3);
        iqfile_t *r = iqfile_open_read(path, NULL, err, sizeof err);
        if (r)
            _exit(4);
        if (!strstr(err, file) || !strstr(err, phrase)) {
            fprintf(stderr, "unprivileged open of %s: \"%s\"\n", file, err);
            _exit(5);
        }
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(chmod(tmpdir, st.st_mode & 07777), 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s as user nobody: %s (status 0x%x: 3 cannot drop root, 4 opened, 5 wrong "
                 "message)",
                 file, WIFEXITED(status) ? "failed" : "killed", (unsigned)status);
}

static void test_bad_files(void **state)
{
    (void)state;
    char path[512];
    const uint8_t four[4] = {0};

    path_in_tmp(path, sizeof path, "unknown.xyz");
    test_write_bytes(path, four, 4);
    expect_open_error("unknown.xyz", NULL, "unknown IQ format");
    expect_open_error("does-not-exist.cu8", NULL, "No such file");
    path_in_tmp(path, sizeof path, "adir.cu8");
    mkdir(path, 0755);
    expect_open_error("adir.cu8", NULL, "directory");
    path_in_tmp(path, sizeof path, "noperm.cu8");
    test_write_bytes(path, four, 4);
    chmod(path, 0);
    if (geteuid() != 0)
        expect_open_error("noperm.cu8", NULL, "Permission denied");
    else
        expect_open_error_unprivileged("noperm.cu8", "Permission denied");
    iqfile_params_t bad_rate = {.rate_sps = -5.0};
    expect_open_error("unknown.xyz", &bad_rate, "invalid sample rate");

    /* WAV */
    uint8_t b[256] = {0};
    size_t n = make_wav(b, 1, 1, 16, 48000, false, 4);
    path_in_tmp(path, sizeof path, "mono.wav");
    test_write_bytes(path, b, n + 4);
    expect_open_error("mono.wav", NULL, "1 channel");
    n = make_wav(b, 1, 2, 24, 48000, false, 6);
    path_in_tmp(path, sizeof path, "pcm24.wav");
    test_write_bytes(path, b, n + 6);
    expect_open_error("pcm24.wav", NULL, "not supported");
    path_in_tmp(path, sizeof path, "text.wav");
    test_write_text(path, "this is not a wav file at all");
    expect_open_error("text.wav", NULL, "not a WAV");
    n = make_wav(b, 1, 2, 16, 48000, false, 8);
    path_in_tmp(path, sizeof path, "nodata.wav");
    test_write_bytes(path, b, n - 8); /* header without its data chunk */
    expect_open_error("nodata.wav", NULL, "no data chunk");
    memcpy(b, "RF64", 4);
    path_in_tmp(path, sizeof path, "rf64.wav");
    test_write_bytes(path, b, n);
    expect_open_error("rf64.wav", NULL, "RF64");

    /* SigMF */
    path_in_tmp(path, sizeof path, "nometa.sigmf-data");
    test_write_bytes(path, four, 4);
    expect_open_error("nometa.sigmf-data", NULL, "nometa.sigmf-meta");
    static const struct {
        const char *file, *json, *phrase;
    } metas[] = {
        {"badjson.sigmf-meta", "{\"global\": {\"core:datatype\": \"cu8\",", "not JSON"},
        {"noglobal.sigmf-meta", "{\"captures\": []}", "no \"global\""},
        {"nodt.sigmf-meta", "{\"global\": {\"core:sample_rate\": 1e6}}", "core:datatype"},
        {"real.sigmf-meta", "{\"global\": {\"core:datatype\": \"ri16_le\"}}",
         "\"ri16_le\" is not supported"},
        {"bigend.sigmf-meta", "{\"global\": {\"core:datatype\": \"ci16_be\"}}", "not supported"},
        {"badrate.sigmf-meta",
         "{\"global\": {\"core:datatype\": \"cu8\", \"core:sample_rate\": \"fast\"}}",
         "core:sample_rate"},
        {"negrate.sigmf-meta",
         "{\"global\": {\"core:datatype\": \"cu8\", \"core:sample_rate\": -1}}",
         "core:sample_rate"},
        {"badfreq.sigmf-meta",
         "{\"global\": {\"core:datatype\": \"cu8\"}, \"captures\": "
         "[{\"core:sample_start\": 0, \"core:frequency\": null}]}",
         "core:frequency"},
        {"badcap.sigmf-meta", "{\"global\": {\"core:datatype\": \"cu8\"}, \"captures\": 3}",
         "captures"},
        {"twoch.sigmf-meta",
         "{\"global\": {\"core:datatype\": \"cu8\", \"core:num_channels\": 2}}",
         "num_channels"},
        {"nodata.sigmf-meta", "{\"global\": {\"core:datatype\": \"cu8\"}}",
         "nodata.sigmf-data"},
        {"baddt.sigmf-meta",
         "{\"global\": {\"core:datatype\": \"cu8\"}, \"captures\": "
         "[{\"core:sample_start\": 0, \"core:datetime\": \"yesterday\"}]}",
         "core:datetime \"yesterday\""},
        {"numdt.sigmf-meta",
         "{\"global\": {\"core:datatype\": \"cu8\"}, \"captures\": "
         "[{\"core:datetime\": 1796464800}]}",
         "core:datetime"},
        {"badss.sigmf-meta",
         "{\"global\": {\"core:datatype\": \"cu8\"}, \"captures\": "
         "[{\"core:sample_start\": -5, \"core:datetime\": \"2026-12-05T10:00:02Z\"}]}",
         "core:sample_start"},
    };
    for (size_t i = 0; i < sizeof metas / sizeof metas[0]; i++) {
        path_in_tmp(path, sizeof path, metas[i].file);
        test_write_text(path, metas[i].json);
        expect_open_error(metas[i].file, NULL, metas[i].phrase);
    }
    expect_open_error("archive.sigmf", NULL, "archives");
}

/* A partial final sample: the whole samples come first, then -1 with a message. */
static void test_truncated(void **state)
{
    (void)state;
    char path[512], err[512];
    uint8_t bytes[4 * 5 + 3];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)i;
    path_in_tmp(path, sizeof path, "trunc.cs16");
    test_write_bytes(path, bytes, sizeof bytes);
    iqfile_t *r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    float complex y[8];
    assert_int_equal(iqfile_read(r, y, 3), 3);
    assert_int_equal(iqfile_read(r, y, 8), 2);
    assert_int_equal(iqfile_read(r, y, 8), -1);
    assert_non_null(strstr(iqfile_error(r), "trunc.cs16"));
    assert_non_null(strstr(iqfile_error(r), "truncated final sample"));
    assert_int_equal(iqfile_read(r, y, 8), -1); /* sticky */
    iqfile_close(r);

    /* WAV data chunk shorter than its header says. */
    uint8_t b[256] = {0};
    size_t n = make_wav(b, 1, 2, 16, 48000, false, 400);
    memset(b + n, 0, 40);
    path_in_tmp(path, sizeof path, "short.wav");
    test_write_bytes(path, b, n + 40);
    r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(iqfile_length(r), 10);
    assert_int_equal(iqfile_read(r, y, 8), 8);
    assert_int_equal(iqfile_read(r, y, 8), 2);
    assert_int_equal(iqfile_read(r, y, 8), -1);
    assert_non_null(strstr(iqfile_error(r), "short.wav"));
    assert_non_null(strstr(iqfile_error(r), "data chunk"));
    iqfile_close(r);

    /* A cu8 file of one byte has no whole sample: -1 at once. */
    path_in_tmp(path, sizeof path, "one.cu8");
    test_write_bytes(path, bytes, 1);
    r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(iqfile_read(r, y, 8), -1);
    assert_non_null(strstr(iqfile_error(r), "truncated"));
    iqfile_close(r);
}

static void test_bad_writes(void **state)
{
    (void)state;
    char path[512], err[512];
    path_in_tmp(path, sizeof path, "norate.wav");
    assert_null(iqfile_open_write(path, NULL, err, sizeof err));
    assert_non_null(strstr(err, "norate.wav"));
    assert_non_null(strstr(err, "sample rate"));
    assert_null(iqfile_open_write("/nonexistent-dir/x.cu8", NULL, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent-dir/x.cu8"));
    iqfile_params_t p = {.format = IQ_FORMAT_SIGMF, .sample_format = IQ_FORMAT_WAV16};
    path_in_tmp(path, sizeof path, "bad");
    assert_null(iqfile_open_write(path, &p, err, sizeof err));
    assert_non_null(strstr(err, "SigMF sample format"));
    p = (iqfile_params_t){.format = IQ_FORMAT_SIGMF};
    assert_null(iqfile_open_write("-", &p, err, sizeof err));
    assert_non_null(strstr(err, "stdin/stdout"));

    /* Reading a writer and writing a reader are errors, not crashes. */
    path_in_tmp(path, sizeof path, "rw.cf32");
    iqfile_t *w = iqfile_open_write(path, NULL, err, sizeof err);
    assert_non_null(w);
    float complex y[2] = {0};
    assert_int_equal(iqfile_read(w, y, 2), -1);
    assert_int_equal(iqfile_rewind(w), -1);
    assert_int_equal(iqfile_length(w), -1);
    assert_int_equal(iqfile_close(w), 0);
    iqfile_t *r = iqfile_open_read(path, NULL, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(iqfile_write(r, y, 2), -1);
    iqfile_close(r);
    assert_int_equal(iqfile_close(NULL), 0);
}

/* Every 8-bit code of I and Q, at every offset and length 0..9 around the two-sample
 * vector steps: exactly the scalar conversion (x - 127.5) / 127.5 and x / 128. */
static void test_decode8_every_code(void **state)
{
    (void)state;
    uint8_t raw[2 * 256 + 32];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)(i * 7 + i / 256);
    float complex out[256 + 16];
    for (int fmt = 0; fmt < 2; fmt++) {
        iq_format_t f = fmt ? IQ_FORMAT_CS8 : IQ_FORMAT_CU8;
        for (size_t off = 0; off < 3; off++) {
            for (size_t n = 0; n < 10; n++) {
                iq_decode(f, raw + 2 * off, out, n);
                for (size_t k = 0; k < n; k++) {
                    uint8_t a = raw[2 * (off + k)], b = raw[2 * (off + k) + 1];
                    float re = fmt ? (float)(int8_t)a / 128.0f : ((float)a - 127.5f) / 127.5f;
                    float im = fmt ? (float)(int8_t)b / 128.0f : ((float)b - 127.5f) / 127.5f;
                    assert_true(crealf(out[k]) == re && cimagf(out[k]) == im);
                }
            }
            iq_decode(f, raw + 2 * off, out, 256);
            for (size_t k = 0; k < 256; k++) {
                uint8_t a = raw[2 * (off + k)], b = raw[2 * (off + k) + 1];
                float re = fmt ? (float)(int8_t)a / 128.0f : ((float)a - 127.5f) / 127.5f;
                float im = fmt ? (float)(int8_t)b / 128.0f : ((float)b - 127.5f) / 127.5f;
                assert_true(crealf(out[k]) == re && cimagf(out[k]) == im);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_all_formats),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_decode8_every_code),
        cmocka_unit_test(test_raw_scaling),
        cmocka_unit_test(test_format_names),
        cmocka_unit_test(test_name_tokens),
        cmocka_unit_test(test_metadata_precedence),
        cmocka_unit_test(test_sigmf_meta_written),
        cmocka_unit_test(test_sigmf_datetime),
        cmocka_unit_test(test_wav_header_written),
        cmocka_unit_test(test_wav_foreign_headers),
        cmocka_unit_test(test_stdio),
        cmocka_unit_test(test_rewind),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_writes),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
