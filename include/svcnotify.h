/* svcnotify: sigfoxd's side of the service manager's notification protocol (systemd
 * sd_notify(3), Type=notify units): READY=1 once the radio streams, STATUS= lines with
 * what the station does, WATCHDOG=1 keep-alives from the thread whose progress matters
 * (the DSP thread: when it hangs, the keep-alives stop and systemd restarts the service,
 * WatchdogSec= in scripts/sigfoxd.service), STOPPING=1 at shutdown. Licence: MIT.
 *
 * Outside systemd (no NOTIFY_SOCKET) every call does nothing. Thread-safe: each call
 * sends one datagram; svcnotify_watchdog() may run from any one thread, as often as it
 * likes (it sends at most every quarter of the watchdog interval). */
#ifndef SIGFOX_SVCNOTIFY_H
#define SIGFOX_SVCNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct svcnotify svcnotify_t;

/* Reads the environment systemd sets (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID). NULL
 * only when out of memory. */
svcnotify_t *svcnotify_create(void);

/* True when a service manager listens (NOTIFY_SOCKET is set). */
bool svcnotify_active(const svcnotify_t *n);


/* READY=1 with a STATUS= line; only the first call sends. */
void svcnotify_ready(svcnotify_t *n, const char *status);

/* STATUS=<printf>: one line shown by `systemctl status` (newlines become spaces). */
void svcnotify_status(svcnotify_t *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* WATCHDOG=1 when a quarter of the interval has passed since the last one. */
void svcnotify_watchdog(svcnotify_t *n);

/* STOPPING=1. */
void svcnotify_stopping(svcnotify_t *n);

void svcnotify_destroy(svcnotify_t *n);

#endif
