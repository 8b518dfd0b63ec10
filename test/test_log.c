/* test_log: what reaches the log is one safe line whatever a peer or a file puts into a
 * message (issue 15: forged journald priorities, ANSI escapes, invalid UTF-8), the escape
 * function for quoted values, and the rate limit for warnings a peer can trigger.
 * Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "jsonstrict.h"
#include "log.h"

/* Runs log_msg with stderr redirected to a temporary file; returns what was written. */
static const char *captured(log_level_t level, const char *fmt, const char *arg)
{
    static char buf[4096];
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    log_msg(level, fmt, arg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, sizeof buf - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return buf;
}

static void test_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"plain", 5, "plain"},
        {"a\nb", 3, "a\\nb"},
        {"x\n<0>emergency", 14, "x\\n<0>emergency"},
        {"\x1b[31mred\x1b[0m", 12, "\\x1B[31mred\\x1B[0m"},
        {"back\\slash", 10, "back\\\\slash"},
        {"nul\0x", 5, "nul\\x00x"},
        {"\xff\xfe", 2, "\\xFF\\xFE"},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},        /* valid UTF-8 stays */
        {"\xc3", 1, "\\xC3"},                      /* cut sequence */
        {"\xed\xa0\x80", 3, "\\xED\\xA0\\x80"},    /* encoded surrogate */
        {"\xc0\xaf", 2, "\\xC0\\xAF"},             /* overlong '/' */
        {"del\x7f", 4, "del\\x7F"},
        {"\r\t", 2, "\\r\\t"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[128];
        log_escape(cases[i].in, cases[i].len, out, sizeof out);
        if (strcmp(out, cases[i].out) != 0)
            fail_msg("case %zu: \"%s\", expected \"%s\"", i, out, cases[i].out);
        assert_true(jsonstrict_utf8_valid(out, strlen(out)));
    }
    /* Too long: cut on a character boundary and marked. */
    char small[8];
    log_escape("\n\n\n\n\n\n", 6, small, sizeof small);
    assert_string_equal(small, "\\n\\n...");
    log_escape("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8, small, sizeof small);
    assert_string_equal(small, "\xc3\xa9\xc3\xa9...");
    assert_string_equal(log_escape_str(NULL, small, sizeof small), "(null)");
}

static void test_line_is_safe(void **state)
{
    (void)state;
    log_set_level(LOG_LEVEL_INFO);
    log_set_syslog_prefix(1);
    /* An unescaped value still cannot start a second line or a priority. */
    const char *out = captured(LOG_LEVEL_WARNING, "Unknown command, cmd: %s", "x\n<0>boom\x1b[2J\xff");
    assert_string_equal(out, "<4>Unknown command, cmd: x\\n<0>boom\\x1B[2J\\xFF\n");
    log_set_syslog_prefix(0);
    out = captured(LOG_LEVEL_ERROR, "%s", "ok \xc3\xa9");
    assert_string_equal(out, "ok \xc3\xa9\n");
    /* A very long message stays one line. */
    static char big[5000];
    memset(big, '\n', sizeof big - 1);
    out = captured(LOG_LEVEL_ERROR, "%s", big);
    assert_non_null(strstr(out, "..."));
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
}

static void test_ratelimit(void **state)
{
    (void)state;
    log_ratelimit_t rl = {0};
    unsigned long long dropped = 99;
    int passed = 0;
    for (int i = 0; i < 100; i++)
        passed += log_ratelimit(&rl, 10.0 + i * 0.01, 5, 60.0, &dropped);
    assert_int_equal(passed, 5);
    assert_int_equal(rl.suppressed, 95);
    /* A new window lets messages through again and reports what was dropped. */
    assert_int_equal(log_ratelimit(&rl, 71.0, 5, 60.0, &dropped), 1);
    assert_int_equal(dropped, 95);
    assert_int_equal(log_ratelimit(&rl, 71.1, 5, 60.0, &dropped), 1);
    assert_int_equal(dropped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_line_is_safe),
        cmocka_unit_test(test_ratelimit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
