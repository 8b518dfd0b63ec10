/* log: stderr logging with journald priority prefixes. Licence: MIT. */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonstrict.h"

static volatile log_level_t current_level = LOG_LEVEL_INFO;
static volatile int syslog_prefix = -1; /* -1: decide from JOURNAL_STREAM on first use */

void log_set_level(log_level_t level)
{
    current_level = level;
}

log_level_t log_get_level(void)
{
    return current_level;
}

void log_set_syslog_prefix(int enabled)
{
    syslog_prefix = enabled ? 1 : 0;
}

int log_level_from_name(const char *name)
{
    static const char *const names[] = {"", "fatal", "critical", "error", "warning",
                                        "notice", "info", "debug", "trace"};
    for (int i = 1; i < (int)(sizeof names / sizeof names[0]); i++)
        if (name && strcasecmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* Length of the valid UTF-8 character at s[0..n) (1 for ASCII), 0 when invalid. */
static size_t utf8_char(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    if (len > n || !jsonstrict_utf8_valid(s, len))
        return 0;
    return len;
}

/* Escapes into out[0..cap) and returns the length written (no NUL). escape_backslash:
 * log_escape() does (so that \xNN in a value is unambiguous); the whole-line pass does not
 * (it would double the escapes of values already escaped). */
static size_t escape(const char *in, size_t len, char *out, size_t cap, bool escape_backslash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0, i = 0;
    while (i < len) {
        char tmp[4];
        size_t k = utf8_char(in + i, len - i), tn = 0;
        unsigned char c = (unsigned char)in[i];
        const char *src = in + i;
        if (k == 0 || c < 0x20 || c == 0x7F || (c == '\\' && escape_backslash)) {
            k = 1;
            tmp[tn++] = '\\';
            if (c == '\\')
                tmp[tn++] = '\\';
            else if (c == '\n')
                tmp[tn++] = 'n';
            else if (c == '\r')
                tmp[tn++] = 'r';
            else if (c == '\t')
                tmp[tn++] = 't';
            else {
                tmp[tn++] = 'x';
                tmp[tn++] = hex[c >> 4];
                tmp[tn++] = hex[c & 15];
            }
            src = tmp;
        } else {
            tn = k;
        }
        if (o + tn > cap)
            break;
        memcpy(out + o, src, tn);
        o += tn;
        i += k;
    }
    if (i < len && cap >= 3) { /* cut: mark it, on a character boundary */
        while (o + 3 > cap)
            o--;
        while (o > 0 && ((unsigned char)out[o] & 0xC0) == 0x80)
            o--;
        memcpy(out + o, "...", 3);
        o += 3;
    }
    return o;
}

char *log_escape(const char *in, size_t len, char *out, size_t out_len)
{
    if (!out || out_len == 0)
        return out;
    size_t n = in ? escape(in, len, out, out_len - 1, true) : 0;
    out[n] = '\0';
    return out;
}

char *log_sanitize(const char *in, char *out, size_t out_len)
{
    if (!out || out_len == 0)
        return out;
    size_t n = in ? escape(in, strlen(in), out, out_len - 1, false) : 0;
    out[n] = '\0';
    return out;
}

char *log_escape_str(const char *in, char *out, size_t out_len)
{
    if (!in)
        return log_escape("(null)", 6, out, out_len);
    return log_escape(in, strlen(in), out, out_len);
}

int log_ratelimit(log_ratelimit_t *rl, double now_s, unsigned burst, double interval_s,
                  unsigned long long *suppressed)
{
    if (suppressed)
        *suppressed = 0;
    if (!rl)
        return 1;
    if (now_s - rl->window_start_s >= interval_s || now_s < rl->window_start_s) {
        rl->window_start_s = now_s;
        rl->in_window = 0;
    }
    if (rl->in_window >= burst) {
        rl->suppressed++;
        return 0;
    }
    rl->in_window++;
    if (suppressed)
        *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return 1;
}

void log_msg(log_level_t level, const char *fmt, ...)
{
    if (level > current_level)
        return;
    if (syslog_prefix < 0)
        syslog_prefix = getenv("JOURNAL_STREAM") != NULL;
    /* Format, make safe, and write with one call so that lines from several threads never
     * interleave. */
    char text[1024], line[1100];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t tlen = (size_t)m < sizeof text ? (size_t)m : sizeof text - 1;
    int n = 0;
    if (syslog_prefix)
        n = snprintf(line, sizeof line, "<%d>", level > LOG_LEVEL_DEBUG ? LOG_LEVEL_DEBUG : level);
    size_t len = (size_t)n + escape(text, tlen, line + n, sizeof line - (size_t)n - 1, false);
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
