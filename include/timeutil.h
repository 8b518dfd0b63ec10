/* timeutil: the two clocks every module reads, in seconds as a double. Licence: MIT.
 * Header only; thread-safe. */
#ifndef SIGFOX_TIMEUTIL_H
#define SIGFOX_TIMEUTIL_H

#include <time.h>

/* CLOCK_MONOTONIC: for intervals and timeouts (never jumps). */
static inline double timeutil_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CLOCK_REALTIME: UNIX time (UTC), for time stamps. */
static inline double timeutil_unix_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
