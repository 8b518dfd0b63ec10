/* errbuf: formatting a message into a caller's (char *err, size_t err_len) buffer, the
 * way every module that explains a failure to its caller does it. Licence: MIT. */
#ifndef SIGFOX_ERRBUF_H
#define SIGFOX_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>

/* printf-formats into err (err_len bytes, always NUL-terminated, truncated if longer).
 * Does nothing when err is NULL or err_len is 0, so callers may pass "no buffer".
 * Thread-safe (touches only err). */
void errbuf_set(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* errbuf_set with a va_list, for functions that take their own format and arguments. */
void errbuf_vset(char *err, size_t err_len, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
