/* svcnotify: sd_notify(3) for sigfoxd (see include/svcnotify.h). Licence: MIT. */
#include "svcnotify.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

struct svcnotify {
    bool active;
    uint64_t watchdog_usec;
    atomic_int ready_sent;
    atomic_uint_fast64_t last_kick_usec; /* CLOCK_MONOTONIC of the last WATCHDOG=1 */
};

static uint64_t mono_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

svcnotify_t *svcnotify_create(void)
{
    svcnotify_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    const char *sock = getenv("NOTIFY_SOCKET");
    n->active = sock && sock[0];
    uint64_t usec = 0;
    /* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is this process. */
    if (n->active && sd_watchdog_enabled(0, &usec) > 0)
        n->watchdog_usec = usec;
    atomic_init(&n->ready_sent, 0);
    atomic_init(&n->last_kick_usec, 0);
    return n;
}

bool svcnotify_active(const svcnotify_t *n)
{
    return n && n->active;
}

/* Sends "<prefix>STATUS=<text>", newlines in text turned into spaces (one line each). */
static void send_status(const char *prefix, const char *text)
{
    char line[400], buf[512];
    snprintf(line, sizeof line, "%s", text);
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    snprintf(buf, sizeof buf, "%sSTATUS=%s", prefix, line);
    sd_notify(0, buf);
}

void svcnotify_ready(svcnotify_t *n, const char *status)
{
    if (!n || !n->active || atomic_exchange(&n->ready_sent, 1))
        return;
    send_status("READY=1\n", status ? status : "");
}

void svcnotify_status(svcnotify_t *n, const char *fmt, ...)
{
    if (!n || !n->active)
        return;
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    send_status("", text);
}

void svcnotify_watchdog(svcnotify_t *n)
{
    if (!n || !n->watchdog_usec)
        return;
    uint64_t now = mono_usec(), last = atomic_load(&n->last_kick_usec);
    if (last && now - last < n->watchdog_usec / 4)
        return;
    atomic_store(&n->last_kick_usec, now);
    sd_notify(0, "WATCHDOG=1");
}

void svcnotify_stopping(svcnotify_t *n)
{
    if (n && n->active)
        sd_notify(0, "STOPPING=1");
}

void svcnotify_destroy(svcnotify_t *n)
{
    free(n);
}
