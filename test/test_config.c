/* test_config: sigfoxd configuration: defaults, file errors with file:line:key messages,
 * precedence defaults < file < flags, devices and keys, --print-config round trip.
 * Licence: MIT. */
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

#include "config.h"
#include "infile.h"
#include "log.h"

#include "testutil.h"

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    if (test_tmpdir_create(tmpdir, sizeof tmpdir, "test_config") != 0)
        return -1;
    log_set_level(LOG_LEVEL_WARNING);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return test_tmpdir_remove(tmpdir);
}

/* Writes text to tmpdir/name and returns the path (static buffer per call site). */
static const char *write_file(const char *name, const char *text, mode_t mode)
{
    static char path[8][256];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(p, mode);
    return p;
}

/* Runs cfg_from_args on a NULL-terminated argument list. */
static int run_args(cfg_t *cfg, cfg_actions_t *act, char *err, size_t err_len, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "sigfoxd";
    va_list ap;
    va_start(ap, err_len);
    char *a;
    while ((a = va_arg(ap, char *)) != NULL && argc < 31)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char nofile[300];
    snprintf(nofile, sizeof nofile, "%s/no-such-default.conf", tmpdir);
    return cfg_from_args(cfg, act, argc, argv, nofile, err, err_len);
}

/* Captures what a function logs on stderr. */
typedef struct {
    int saved;
    char path[256];
} capture_t;

static void capture_start(capture_t *c)
{
    snprintf(c->path, sizeof c->path, "%s/stderr.txt", tmpdir);
    fflush(stderr);
    c->saved = dup(2);
    FILE *f = fopen(c->path, "w");
    assert_non_null(f);
    dup2(fileno(f), 2);
    fclose(f);
}

static const char *capture_end(capture_t *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    const char *text = test_read_text(c->path);
    assert_non_null(text);
    return text;
}

static void test_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int ok;
        double value;
    } cases[] = {
        {"868.13M", 0, 868.13e6}, {"1024k", 0, 1024e3}, {"1.2G", 0, 1.2e9}, {"-2.5", 0, -2.5},
        {"1.024e6", 0, 1.024e6},  {"250K", 0, 250e3},   {" 7 ", 0, 7},      {"", -1, 0},
        {"abc", -1, 0},           {"1m", -1, 0},        {"5Mx", -1, 0},     {"nan", -1, 0},
        {"inf", -1, 0},           {"1e999", -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double v = 0;
        int rc = cfg_parse_number(cases[i].text, &v);
        assert_int_equal(rc, cases[i].ok);
        if (rc == 0)
            assert_true(v == cases[i].value);
    }
}

static void test_defaults(void **state)
{
    (void)state;
    cfg_t cfg;
    cfg_actions_t act;
    char err[512] = "";
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, NULL), 0);
    assert_true(cfg.rate_sps == 1024e3);
    assert_string_equal(cfg.rc, "RC1");
    assert_string_equal(cfg.gain, "auto");
    assert_string_equal(cfg.pub_endpoint, "ipc:///run/sigfoxd/events");
    assert_string_equal(cfg.cmd_endpoint, "ipc:///run/sigfoxd/commands");
    assert_string_equal(cfg.state_dir, "/var/lib/sigfoxd");
    assert_true(cfg.publish_unauthenticated);
    assert_int_equal(cfg.daily_messages, 140);
    assert_string_equal(cfg.config_file, "");
    assert_int_equal(cfg_source(&cfg, cfg_find_path("radio.rate_sps")), CFG_SRC_DEFAULT);
    cfg_free(&cfg);
}

static void test_missing_file(void **state)
{
    (void)state;
    cfg_t cfg;
    cfg_actions_t act;
    char err[512] = "";
    char path[300];
    snprintf(path, sizeof path, "%s/absent.conf", tmpdir);
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "--config", path, NULL), CFG_ERR_IO);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file"));
}

/* Every bad file gives CFG_ERR_USAGE and a message with file:line: key and the reason. */
static void test_bad_files(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *expect; /* after "<path>:" */
    } cases[] = {
        {"radio:\n{\n  rate_sps = \"abc\";\n};\n", "3: radio.rate_sps: 'abc' is not a number"},
        {"radio: { rate_sps = 5000000; };\n",
         "1: radio.rate_sps: 5000000 is out of range 200000 .. 3200000"},
        {"radio: { rate_sps = 100e3; };\n", "1: radio.rate_sps: 100000 is out of range"},
        {"\n\nradio: {\n rc = \"RC9\";\n};\n",
         "4: radio.rc: unknown radio configuration 'RC9' (expected RC1 .. RC7)"},
        {"radio: { rc = 1; };\n", "1: radio.rc: expected a string (in double quotes), got an "
                                  "integer"},
        {"receiver: { report_bad_frames = 1; };\n",
         "1: receiver.report_bad_frames: expected a boolean (true or false), got an integer"},
        {"receiver: { daily_messages = 2.5; };\n",
         "1: receiver.daily_messages: expected an integer, got a floating-point number"},
        {"api: { pub_endpoint = \"http://x\"; };\n",
         "1: api.pub_endpoint: 'http://x' is not an ipc://PATH or tcp://HOST:PORT endpoint"},
        {"log: { level = \"loud\"; };\n", "1: log.level: unknown log level 'loud'"},
        {"radio: { gain = \"LNA\"; };\n", "1: radio.gain: 'LNA' is not \"auto\""},
        {"radio = 5;\n", "1: radio: expected a group { ... }, got an integer"},
        {"radio: { rate_sps == 1; };\n", "1: syntax error"},
        {"devices: { list = ( { ep_id = \"XYZ\"; key = \"00\"; } ); };\n",
         "1: devices.list.ep_id: 'XYZ' is not 8 hex digits"},
        {"devices: { list = ( { ep_id = \"01020304\"; key = \"0011\"; } ); };\n",
         "1: devices.list.key: expected a string of 32 hex digits"},
        {"devices: { list = ( { ep_id = \"01020304\"; } ); };\n",
         "1: devices.list: a device needs a key"},
        {"devices: {\n list = (\n { ep_id = \"01020304\"; key = "
         "\"000102030405060708090A0B0C0D0E0F\"; },\n { ep_id = \"01020304\"; key = "
         "\"000102030405060708090A0B0C0D0E0F\"; }\n );\n};\n",
         "4: devices.list: device 01020304 is listed twice"},
        /* downlink and monarch */
        {"devices: { list = ( { ep_id = \"01020304\";\n downlink_payload = \"0011\"; } ); };\n",
         "2: devices.list.downlink_payload: expected a string of exactly 16 hex digits"},
        {"devices: { list = ( { ep_id = \"01020304\"; downlink_mode = \"push\"; } ); };\n",
         "1: devices.list.downlink_mode: expected \"direct\", \"callback\" or \"off\""},
        {"devices: { list = ( { ep_id = \"01020304\"; downlink_mode = \"direct\"; } ); };\n",
         "1: devices.list: downlink_mode \"direct\" needs downlink_payload"},
        {"devices: { list = ( { ep_id = \"01020304\"; downlink_quota = 0; } ); };\n",
         "1: devices.list.downlink_quota: expected -1 (no limit) or an integer 1 .. 64"},
        {"downlink: { daily_quota = 0; };\n", "1: downlink.daily_quota: 0 is not a quota"},
        {"downlink: { daily_quota = 65; };\n", "1: downlink.daily_quota: 65 is out of range"},
        {"downlink: { default_mode = \"direct\"; };\n",
         "1: downlink.default_mode: 'direct' is not callback or off"},
        {"downlink: { window_margin_s = 12.0; };\n", "1: downlink.window_margin_s: 12 is out of"},
        {"downlink: { tx_gain = \"loud\"; };\n", "1: downlink.tx_gain: 'loud' is not a gain"},
        {"monarch: { df1_hz = 1000.0; };\n",
         "1: monarch.df1_hz: 1000 Hz is not a Monarch spacing (1024, 1260.3 or 1489.4)"},
        /* Issue 15 defects 5 and 7. */
        {"api: { pub_endpoint = \"tcp://127.0.0.1:99999\"; };\n",
         "1: api.pub_endpoint: 'tcp://127.0.0.1:99999': the port must be a number 1..65535"},
        {"api: { cmd_endpoint = \"tcp://127.0.0.1:0\"; };\n", "1: api.cmd_endpoint: "},
        {"api: { cmd_endpoint = \"tcp://127.0.0.1: 5\"; };\n", "1: api.cmd_endpoint: "},
        {"api: { cmd_endpoint = \"tcp://127.0.0.1:*\"; };\n", "1: api.cmd_endpoint: "},
        {"radio: { device = \"driver=x\\n<0>forged\"; };\n",
         "1: radio.device: control character (0x0A) in the value"},
        {"devices: { list = ( { ep_id = \"01020304\"; name = \"a\\x1b[2Jb\"; } ); };\n",
         "1: devices.list.name: control character (0x1B) in the name"},
        {"devices: { list = ( { ep_id = \"0x010203\"; key = \"00\"; } ); };\n",
         "1: devices.list.ep_id: '0x010203' is not 8 hex digits"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = write_file("bad.conf", cases[i].text, 0600);
        cfg_t cfg;
        cfg_actions_t act;
        char err[512] = "";
        int rc = run_args(&cfg, &act, err, sizeof err, "-c", path, NULL);
        char expect[512];
        snprintf(expect, sizeof expect, "%s:%s", path, cases[i].expect);
        if (rc != CFG_ERR_USAGE || strncmp(err, expect, strlen(expect)) != 0)
            fail_msg("case %zu: rc %d, message \"%s\", expected \"%s\"", i, rc, err, expect);
    }
}

/* Issue 15 defects 2, 5 and 8: files that are not files, endless inputs, endpoints and a
 * state directory that --check-config used to accept. */
static void test_hostile_inputs(void **state)
{
    (void)state;
    cfg_t cfg;
    cfg_actions_t act;
    char err[512] = "";
    int rc = run_args(&cfg, &act, err, sizeof err, "--no-config", "--pub", "ipc:///tmp/same",
                      "--cmd", "ipc:///tmp/same", NULL);
    if (rc != CFG_ERR_USAGE || !strstr(err, "both 'ipc:///tmp/same'"))
        fail_msg("identical endpoints: rc %d, \"%s\"", rc, err);
    const char *file = write_file("not-a-dir", "x", 0600);
    rc = run_args(&cfg, &act, err, sizeof err, "--no-config", "--state-dir", file, NULL);
    if (rc != CFG_ERR_USAGE || !strstr(err, "is not a directory"))
        fail_msg("state.dir a file: rc %d, \"%s\"", rc, err);
    /* The configuration file: a directory, a FIFO (open() must not block), /dev/zero (must
     * not be read forever), a NUL byte; each refused with its reason. */
    rc = run_args(&cfg, &act, err, sizeof err, "--config", tmpdir, NULL);
    if (rc != CFG_ERR_IO || !strstr(err, "is a directory"))
        fail_msg("directory as config: rc %d, \"%s\"", rc, err);
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s/fifo.conf", tmpdir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    rc = run_args(&cfg, &act, err, sizeof err, "--config", fifo, NULL);
    if (rc != CFG_ERR_IO || !strstr(err, "FIFO"))
        fail_msg("FIFO as config: rc %d, \"%s\"", rc, err);
    unlink(fifo);
    rc = run_args(&cfg, &act, err, sizeof err, "--config", "/dev/zero", NULL);
    if (rc != CFG_ERR_IO || !strstr(err, "character device"))
        fail_msg("/dev/zero as config: rc %d, \"%s\"", rc, err);
    const char nul[] = "radio: { rc = \"RC1\"; };\0junk";
    char path[300];
    snprintf(path, sizeof path, "%s/nul.conf", tmpdir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(nul, 1, sizeof nul - 1, f);
    fclose(f);
    rc = run_args(&cfg, &act, err, sizeof err, "--config", path, NULL);
    if (rc != CFG_ERR_USAGE || !strstr(err, "NUL byte"))
        fail_msg("NUL in config: rc %d, \"%s\"", rc, err);
    /* Larger than the limit: refused, not read whole. */
    snprintf(path, sizeof path, "%s/big.conf", tmpdir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), (off_t)INFILE_MAX_CONFIG_BYTES + 1), 0);
    fclose(f);
    rc = run_args(&cfg, &act, err, sizeof err, "--config", path, NULL);
    if (rc != CFG_ERR_IO || !strstr(err, "larger than the limit"))
        fail_msg("big config: rc %d, \"%s\"", rc, err);
    unlink(path);
    /* A file of only "": a syntax error (libconfig leaks a token here: see config.c). */
    path[0] = '\0';
    const char *empty_str = write_file("emptystr.conf", "\"\"", 0600);
    rc = run_args(&cfg, &act, err, sizeof err, "--config", empty_str, NULL);
    if (rc != CFG_ERR_USAGE || !strstr(err, "syntax error"))
        fail_msg("\"\" config: rc %d, \"%s\"", rc, err);
}

static void test_precedence(void **state)
{
    (void)state;
    const char *path = write_file("good.conf",
                                  "radio: { rate_sps = \"2.4M\"; gain = \"LNA=32,VGA=20\";\n"
                                  "         ppm = 12.5; rc = \"rc1\"; };\n"
                                  "api: { stats_interval_s = 10; };\n",
                                  0600);
    cfg_t cfg;
    cfg_actions_t act;
    char err[512] = "";
    /* File only. */
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "--config", path, NULL), 0);
    assert_true(cfg.rate_sps == 2.4e6);
    assert_true(cfg.ppm == 12.5);
    assert_string_equal(cfg.rc, "RC1"); /* normalised */
    assert_string_equal(cfg.config_file, path);
    assert_int_equal(cfg_source(&cfg, cfg_find_path("radio.rate_sps")), CFG_SRC_FILE);
    cfg_free(&cfg);
    /* Flags beat the file, whatever their position relative to --config. */
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "--rate", "1024k", "--config", path,
                              "--ppm=-3", "--stats-interval", "0", NULL),
                     0);
    assert_true(cfg.rate_sps == 1024e3);
    assert_true(cfg.ppm == -3);
    assert_true(cfg.stats_interval_s == 0);
    assert_string_equal(cfg.gain, "LNA=32,VGA=20"); /* from the file */
    assert_int_equal(cfg_source(&cfg, cfg_find_path("radio.rate_sps")), CFG_SRC_FLAG);
    assert_int_equal(cfg_source(&cfg, cfg_find_path("radio.gain")), CFG_SRC_FILE);
    assert_int_equal(cfg_source(&cfg, cfg_find_path("radio.antenna")), CFG_SRC_DEFAULT);
    cfg_free(&cfg);
    /* Short flags and booleans. */
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "--no-config", "-s", "250k", "-f",
                              "868.13M", "--publish-unauthenticated=no", "--report-bad-frames",
                              NULL),
                     0);
    assert_true(cfg.rate_sps == 250e3);
    assert_true(cfg.center_freq_hz == 868.13e6);
    assert_false(cfg.publish_unauthenticated);
    assert_true(cfg.report_bad_frames);
    cfg_free(&cfg);
}

static void test_flag_errors(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        const char *expect;
    } cases[] = {
        {"--rate", "5M", "--rate: 5000000 is out of range 200000 .. 3200000"},
        {"--rate", "fast", "--rate: 'fast' is not a number"},
        {"--rc", "RC8", "--rc: unknown radio configuration 'RC8'"},
        {"--frobnicate", NULL, "unknown or ambiguous option --frobnicate"},
        {"-z", NULL, "unknown option -z"},
        {"--realtime=maybe", NULL, "--realtime: 'maybe' is not a boolean"},
        {"--daily-messages", "0", "--daily-messages: 0 is out of range 1 .. 100000"},
        {"stray", NULL, "unexpected argument 'stray'"},
        {"--rate", NULL, "option --rate needs a value"},
        /* Issue 15 defect 5: what --check-config let through and the start then failed on. */
        {"--pub", "tcp://127.0.0.1:99999", "the port must be a number 1..65535"},
        {"--cmd", "ipc:///tmp/x\x1b[31m", "control character (0x1B)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cfg_t cfg;
        cfg_actions_t act;
        char err[512] = "";
        int rc = run_args(&cfg, &act, err, sizeof err, "--no-config", cases[i].a, cases[i].b, NULL);
        if (rc != CFG_ERR_USAGE || strstr(err, cases[i].expect) == NULL)
            fail_msg("case %zu: rc %d, message \"%s\", expected \"%s\"", i, rc, err,
                     cases[i].expect);
    }
}

static void test_channel_must_fit(void **state)
{
    (void)state;
    cfg_t cfg;
    cfg_actions_t act;
    char err[512] = "";
    /* RC1's 868.130 MHz +/- 96 kHz is not inside 868.000 MHz +/- 125 kHz. */
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "--no-config", "--rate", "250k",
                              "--center-freq", "868.0M", NULL),
                     CFG_ERR_USAGE);
    assert_non_null(strstr(err, "does not fit in the captured band"));
    /* 1024k around 868.0 MHz holds it. */
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "--no-config", "--rate", "1024k",
                              "--center-freq", "868.0M", NULL),
                     0);
    cfg_free(&cfg);
}

static void test_default_file_and_no_config(void **state)
{
    (void)state;
    const char *path = write_file("default.conf", "radio: { ppm = 7; };\n", 0600);
    char *argv[] = {"sigfoxd", NULL, NULL};
    cfg_t cfg;
    cfg_actions_t act;
    char err[512] = "";
    assert_int_equal(cfg_from_args(&cfg, &act, 1, argv, path, err, sizeof err), 0);
    assert_true(cfg.ppm == 7);
    assert_string_equal(cfg.config_file, path);
    cfg_free(&cfg);
    argv[1] = "--no-config";
    assert_int_equal(cfg_from_args(&cfg, &act, 2, argv, path, err, sizeof err), 0);
    assert_true(cfg.ppm == 0);
    assert_string_equal(cfg.config_file, "");
    cfg_free(&cfg);
    char *argv2[] = {"sigfoxd", "-c", "0", NULL};
    assert_int_equal(cfg_from_args(&cfg, &act, 3, argv2, path, err, sizeof err), 0);
    assert_true(cfg.ppm == 0);
    assert_true(act.no_config);
    cfg_free(&cfg);
}

static void test_actions(void **state)
{
    (void)state;
    cfg_t cfg;
    cfg_actions_t act;
    char err[512] = "";
    /* --help works even with a broken configuration file. */
    const char *bad = write_file("broken.conf", "radio: {", 0600);
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "-c", bad, "--help", NULL), 0);
    assert_true(act.help);
    cfg_free(&cfg);
    assert_int_equal(
        run_args(&cfg, &act, err, sizeof err, "--no-config", "--check-config", "-V", NULL), 0);
    assert_true(act.version);
    cfg_free(&cfg);
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "--no-config", "--print-config",
                              "--check-config", NULL),
                     0);
    assert_true(act.print_config && act.check_config && !act.help);
    cfg_free(&cfg);
}

static void test_unknown_keys_warned(void **state)
{
    (void)state;
    const char *path = write_file("unknown.conf",
                                  "radio: { rate_sps = 2048000; colour = \"blue\"; };\n"
                                  "api: {\n  ppm = 3;\n};\nextras: { a = 1; };\n"
                                  "downlink: { power_dbm = 10; };\n",
                                  0600);
    cfg_t cfg;
    cfg_actions_t act;
    char err[512] = "";
    capture_t cap;
    capture_start(&cap);
    int rc = run_args(&cfg, &act, err, sizeof err, "-c", path, NULL);
    const char *text = capture_end(&cap);
    assert_int_equal(rc, 0);
    assert_true(cfg.rate_sps == 2048000);
    assert_true(cfg.ppm == 0);
    char expect[512];
    snprintf(expect, sizeof expect, "%s:1: unknown key radio.colour ignored", path);
    assert_non_null(strstr(text, expect));
    snprintf(expect, sizeof expect, "%s:3: unknown key api.ppm ignored (did you mean radio.ppm?)",
             path);
    assert_non_null(strstr(text, expect));
    snprintf(expect, sizeof expect, "%s:5: unknown key extras ignored", path);
    assert_non_null(strstr(text, expect));
    snprintf(expect, sizeof expect, "%s:6: unknown key downlink.power_dbm ignored", path);
    assert_non_null(strstr(text, expect));
    cfg_free(&cfg);
}

static void test_devices_and_keys(void **state)
{
    (void)state;
    const char *keys = write_file("keys.txt",
                                  "# test keys\n"
                                  "0000ABCD 00112233445566778899AABBCCDDEEFF\n"
                                  "FEDCBA98 0123456789ABCDEF0123456789ABCDEF\n",
                                  0644);
    char text[1024];
    snprintf(text, sizeof text,
             "devices:\n{\n  keys_file = \"%s\";\n  list = (\n"
             "    { ep_id = \"FEDCBA98\"; key = \"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\"; "
             "name = \"meter\"; daily_messages = 2; },\n"
             "    { ep_id = 0x12345678; key = \"000102030405060708090A0B0C0D0E0F\"; }\n"
             "  );\n};\n",
             keys);
    const char *path = write_file("devices.conf", text, 0600);
    cfg_t cfg;
    cfg_actions_t act;
    char err[512] = "";
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "-c", path, NULL), 0);
    assert_int_equal(cfg.ndevices, 2);
    assert_int_equal(cfg.devices[0].ep_id, 0xFEDCBA98);
    assert_string_equal(cfg.devices[0].name, "meter");
    assert_int_equal(cfg.devices[1].ep_id, 0x12345678);
    assert_int_equal(cfg_daily_messages(&cfg, 0xFEDCBA98), 2);
    assert_int_equal(cfg_daily_messages(&cfg, 0x12345678), 140);

    capture_t cap;
    capture_start(&cap);
    keystore_t *ks = cfg_load_keys(&cfg, err, sizeof err);
    const char *log = capture_end(&cap);
    assert_non_null(ks);
    assert_int_equal(keystore_count(ks), 3);
    /* The keys file overrides the inline key of the same device. */
    assert_int_equal(keystore_find(ks, 0xFEDCBA98)[0], 0x01);
    assert_int_equal(keystore_find(ks, 0x12345678)[15], 0x0F);
    assert_non_null(strstr(log, "Keys file is accessible to other users"));
    keystore_destroy(ks);

    /* Mode 0640 is fine: no warning. */
    chmod(keys, 0640);
    capture_start(&cap);
    ks = cfg_load_keys(&cfg, err, sizeof err);
    log = capture_end(&cap);
    assert_non_null(ks);
    assert_null(strstr(log, "accessible to other users"));
    keystore_destroy(ks);

    /* The command-line keys file replaces the configured one; a bad line is reported. */
    const char *badkeys = write_file("bad.keys", "0000ABCD 0011\n", 0600);
    cfg_free(&cfg);
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "-c", path, "--keys", badkeys, NULL), 0);
    assert_null(cfg_load_keys(&cfg, err, sizeof err));
    char expect[300];
    snprintf(expect, sizeof expect, "%s:1: key must be 32 hex digits", badkeys);
    assert_string_equal(err, expect);
    cfg_free(&cfg);
}

/* --print-config output loads back into the same configuration. */
static void test_print_round_trip(void **state)
{
    (void)state;
    cfg_t cfg, back;
    cfg_actions_t act;
    char err[512] = "";
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "--no-config", "--rate", "2.4M",
                              "--gain", "LNA=\"x\"", "--rc", "rc3", "--ppm", "-1.25", "--settings",
                              "biastee=true", "--state-dir", "", NULL),
                     CFG_ERR_USAGE); /* a quote is not a valid gain */
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "--no-config", "--rate", "2.4M",
                              "--gain", "40.2", "--rc", "rc3", "--ppm", "-1.25", "--settings",
                              "biastee=true", "--state-dir", "", "--antenna", "RX \"A\"\\1", NULL),
                     0);
    char path[300];
    snprintf(path, sizeof path, "%s/printed.conf", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    cfg_print(&cfg, f);
    fclose(f);
    assert_int_equal(cfg_defaults(&back), 0);
    if (cfg_load_file(&back, path, err, sizeof err) != 0)
        fail_msg("printed configuration does not load: %s", err);
    size_t n;
    const cfg_option_t *opts = cfg_options(&n);
    for (size_t i = 0; i < n; i++) {
        if (!opts[i].path)
            continue;
        if (memcmp((char *)&cfg + opts[i].offset, (char *)&back + opts[i].offset, opts[i].size) !=
            0)
            fail_msg("%s differs after the round trip", opts[i].path);
    }
    cfg_free(&back);

    json_object *j = cfg_to_json(&cfg);
    assert_non_null(j);
    json_object *radio, *rate;
    assert_true(json_object_object_get_ex(j, "radio", &radio));
    assert_true(json_object_object_get_ex(radio, "rate_sps", &rate));
    assert_true(json_object_get_double(rate) == 2.4e6);
    json_object_put(j);
    cfg_free(&cfg);
}

static void test_config_json_redacts_keys(void **state)
{
    (void)state;
    const char *path = write_file(
        "redact.conf",
        "devices: { list = ( { ep_id = \"0A0B0C0D\"; key = \"00112233445566778899AABBCCDDEEFF\"; "
        "} ); };\n",
        0600);
    cfg_t cfg;
    cfg_actions_t act;
    char err[512] = "";
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "-c", path, NULL), 0);
    json_object *j = cfg_to_json(&cfg);
    const char *s = json_object_to_json_string(j);
    assert_non_null(strstr(s, "0A0B0C0D"));
    assert_null(strstr(s, "00112233445566778899"));
    json_object_put(j);
    char ppath[300];
    snprintf(ppath, sizeof ppath, "%s/p.conf", tmpdir);
    FILE *f = fopen(ppath, "w");
    cfg_print(&cfg, f);
    fclose(f);
    f = fopen(ppath, "r");
    char buf[8192];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "0A0B0C0D"));
    assert_null(strstr(buf, "00112233445566778899"));
    cfg_free(&cfg);
}

static void test_help_lists_every_flag(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/help.txt", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    cfg_print_help(f, "sigfoxd");
    fclose(f);
    f = fopen(path, "r");
    static char buf[16384];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = '\0';
    fclose(f);
    size_t n;
    const cfg_option_t *opts = cfg_options(&n);
    for (size_t i = 0; i < n; i++) {
        char want[80];
        if (!opts[i].flag)
            continue;
        snprintf(want, sizeof want, "--%s", opts[i].flag);
        if (!strstr(buf, want))
            fail_msg("--help does not mention %s", want);
    }
    assert_non_null(strstr(buf, "[radio.rate_sps]"));
}

/* Downlink and Monarch: per-device settings, what enables the scheduler, cross-checks. */
static void test_downlink_config(void **state)
{
    (void)state;
    const char *path =
        write_file("dl.conf",
                   "devices: { list = (\n"
                   "  { ep_id = \"0A0B0C0D\"; downlink_payload = \"0011223344556677\"; },\n"
                   "  { ep_id = \"01020304\"; key = \"000102030405060708090A0B0C0D0E0F\";\n"
                   "    downlink_mode = \"off\"; downlink_quota = -1; },\n"
                   "  { ep_id = \"05060708\"; key = \"000102030405060708090A0B0C0D0E0F\"; } ); };\n"
                   "downlink: { enabled = true; tx_file = \"/tmp\"; daily_quota = 2; };\n",
                   0600);
    cfg_t cfg;
    cfg_actions_t act;
    char err[512] = "";
    if (run_args(&cfg, &act, err, sizeof err, "-c", path, NULL) != 0)
        fail_msg("%s", err);
    assert_int_equal(cfg.ndevices, 3);
    /* a payload alone means direct; the key is left to the keys file */
    assert_false(cfg.devices[0].has_key);
    assert_int_equal(cfg.devices[0].dl_mode, CFG_DL_MODE_DIRECT);
    assert_true(cfg.devices[0].has_dl_payload);
    assert_int_equal(cfg.devices[0].dl_payload[7], 0x77);
    assert_int_equal(cfg.devices[1].dl_mode, CFG_DL_MODE_OFF);
    assert_int_equal(cfg.devices[1].dl_quota, -1);
    assert_int_equal(cfg.devices[2].dl_mode, CFG_DL_MODE_DEFAULT);
    assert_true(cfg_downlink_wanted(&cfg));
    assert_true(cfg_tx_rate(&cfg) == 240e3);
    keystore_t *ks = cfg_load_keys(&cfg, err, sizeof err);
    assert_non_null(ks);
    assert_int_equal(keystore_count(ks), 2); /* the key-less entry adds none */
    keystore_destroy(ks);
    json_object *j = cfg_to_json(&cfg);
    const char *s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
    assert_non_null(strstr(s, "\"downlink_mode\":\"direct\""));
    assert_non_null(strstr(s, "\"downlink_payload\":\"0011223344556677\""));
    assert_non_null(strstr(s, "\"downlink_mode\":\"callback\"")); /* the default */
    assert_non_null(strstr(s, "\"daily_quota\":2"));
    json_object_put(j);
    cfg_free(&cfg);

    /* --tx-file on the command line enables the downlink; in the file it does not. */
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "--no-config", NULL), 0);
    assert_false(cfg_downlink_wanted(&cfg));
    cfg_free(&cfg);
    assert_int_equal(
        run_args(&cfg, &act, err, sizeof err, "--no-config", "--tx-file", "/tmp", NULL), 0);
    assert_true(cfg_downlink_wanted(&cfg));
    cfg_free(&cfg);
    const char *quiet = write_file("dlq.conf", "downlink: { tx_file = \"/tmp\"; };\n", 0600);
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "-c", quiet, NULL), 0);
    assert_false(cfg_downlink_wanted(&cfg));
    cfg_free(&cfg);
    /* A transmitter on the command line replaces the file's other kind. */
    assert_int_equal(
        run_args(&cfg, &act, err, sizeof err, "-c", quiet, "--tx-device", "driver=hackrf", NULL),
        0);
    assert_string_equal(cfg.tx_file, "");
    assert_string_equal(cfg.tx_device, "driver=hackrf");
    cfg_free(&cfg);

    static const struct {
        const char *args[12];
        const char *expect;
    } bad[] = {
        {{"--monarch", NULL}, "monarch.enabled needs monarch.freq_hz, monarch.df1_hz and"},
        {{"--monarch", "--monarch-freq", "869.5M", "--monarch-df1", "1024", NULL},
         "monarch.enabled needs"},
        {{"--monarch-df2", "1200", NULL}, "--monarch-df2: 1200 Hz is not a Monarch spacing"},
        {{"--tx-file", "/tmp", "--tx-device", "driver=hackrf", NULL},
         "downlink.tx_file and downlink.tx_device are both set"},
        {{"--tx-file", "/tmp", "--tx-rate", "96k", NULL},
         "downlink.tx_rate_sps / tx_center_freq_hz: the transmitter covers 869.525000 MHz +/- "
         "48 kHz, not the RC1 downlink macro-channel"},
        {{"--tx-file", "/tmp", "--tx-center-freq", "869.7M", NULL},
         "downlink.tx_rate_sps / tx_center_freq_hz"},
        {{"--tx-file", "/tmp", "--monarch", "--monarch-freq", "868.1M", "--monarch-df1", "1024",
          "--monarch-df2", "1489.4", NULL},
         "monarch.freq_hz: 868100000.0 Hz (carriers to +/- 9936 Hz) is outside the "
         "transmitter's band"},
        {{"--dl-quota", "0", NULL}, "--dl-quota: 0 is not a quota"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[16] = {"sigfoxd", "--no-config"};
        int argc = 2;
        for (int k = 0; bad[i].args[k]; k++)
            argv[argc++] = (char *)bad[i].args[k];
        argv[argc] = NULL;
        int rc = cfg_from_args(&cfg, &act, argc, argv, NULL, err, sizeof err);
        if (rc != CFG_ERR_USAGE || !strstr(err, bad[i].expect))
            fail_msg("case %zu: rc %d, \"%s\", expected \"%s\"", i, rc, err, bad[i].expect);
    }
    /* A complete Monarch configuration inside the file sink's band is accepted. */
    assert_int_equal(run_args(&cfg, &act, err, sizeof err, "--no-config", "--tx-file", "/tmp",
                              "--monarch", "--monarch-freq", "869.505M", "--monarch-df1", "1260.3",
                              "--monarch-df2", "1489.4", NULL),
                     0);
    assert_true(cfg.monarch_enabled && cfg.monarch_df1_hz == 1260.3);
    cfg_free(&cfg);
}

/* conf/sigfoxd.conf shows every key with its default and its flag, and loads silently. */
static void test_example_file(void **state)
{
    (void)state;
    const char *path = "conf/sigfoxd.conf"; /* tests run from the repository root */
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s (run from the repository root)", path);
    static char text[32768];
    size_t len = fread(text, 1, sizeof text - 1, f);
    text[len] = '\0';
    fclose(f);

    cfg_t defaults, loaded;
    char err[512] = "";
    assert_int_equal(cfg_defaults(&defaults), 0);
    assert_int_equal(cfg_defaults(&loaded), 0);
    capture_t cap;
    capture_start(&cap);
    int rc = cfg_load_file(&loaded, path, err, sizeof err);
    const char *log = capture_end(&cap);
    if (rc != 0)
        fail_msg("%s", err);
    if (log[0])
        fail_msg("loading the example logged: %s", log);
    size_t n;
    const cfg_option_t *opts = cfg_options(&n);
    for (size_t i = 0; i < n; i++) {
        if (!opts[i].path)
            continue;
        if (cfg_source(&loaded, &opts[i]) != CFG_SRC_FILE)
            fail_msg("%s is missing from %s", opts[i].path, path);
        if (memcmp((char *)&defaults + opts[i].offset, (char *)&loaded + opts[i].offset,
                   opts[i].size) != 0)
            fail_msg("%s in %s differs from the default %s", opts[i].path, path, opts[i].def);
        char flag[80];
        snprintf(flag, sizeof flag, "--%s", opts[i].flag);
        if (opts[i].flag && !strstr(text, flag))
            fail_msg("%s does not name the flag %s", path, flag);
    }
    cfg_free(&loaded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_hostile_inputs),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_channel_must_fit),
        cmocka_unit_test(test_default_file_and_no_config),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_unknown_keys_warned),
        cmocka_unit_test(test_devices_and_keys),
        cmocka_unit_test(test_print_round_trip),
        cmocka_unit_test(test_config_json_redacts_keys),
        cmocka_unit_test(test_help_lists_every_flag),
        cmocka_unit_test(test_downlink_config),
        cmocka_unit_test(test_example_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
