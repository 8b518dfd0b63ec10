/* log: stderr logging with journald priority prefixes. Licence: MIT. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

void log_msg(log_level_t level, const char *fmt, ...)
{
    if (level > current_level)
        return;
    if (syslog_prefix < 0)
        syslog_prefix = getenv("JOURNAL_STREAM") != NULL;
    /* Format into one buffer and write it with one call so that lines from several
     * threads never interleave. */
    char line[1024];
    int n = 0;
    if (syslog_prefix)
        n = snprintf(line, sizeof line, "<%d>", level > LOG_LEVEL_DEBUG ? LOG_LEVEL_DEBUG : level);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
}
