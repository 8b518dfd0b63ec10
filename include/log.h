/* log: one-line log events on stderr with syslog priority prefixes that journald reads
 * ("<3>" error ... "<7>" debug). Levels follow SoapySDR's so its log handler feeds ours.
 * Style: a phrase, then `key: value` pairs, no timestamp. Licence: MIT. Thread-safe. */
#ifndef SIGFOX_LOG_H
#define SIGFOX_LOG_H

#include <stddef.h>

typedef enum {
    LOG_LEVEL_FATAL = 1,
    LOG_LEVEL_CRITICAL = 2,
    LOG_LEVEL_ERROR = 3,
    LOG_LEVEL_WARNING = 4,
    LOG_LEVEL_NOTICE = 5,
    LOG_LEVEL_INFO = 6,
    LOG_LEVEL_DEBUG = 7,
    LOG_LEVEL_TRACE = 8,
} log_level_t;

/* Messages above this level are dropped (default LOG_LEVEL_INFO). */
void log_set_level(log_level_t level);
log_level_t log_get_level(void);
/* Prefix each line with "<N>" for journald (default on when JOURNAL_STREAM is set). */
void log_set_syslog_prefix(int enabled);
/* Parses "error", "warning", "notice", "info", "debug", "trace"; -1 if unknown. */
int log_level_from_name(const char *name);

/* Every line is made safe before it is written: control characters (newline, CR, ESC,
 * ...), DEL and bytes that are not valid UTF-8 become \xNN, so that nothing a peer or a
 * file puts into a message can start a new line (a forged "<0>" journald priority), move
 * the terminal (ANSI escapes) or break a UTF-8 log reader. */
void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The one escape function for values from outside (command verbs, file contents, names
 * in requests) that a message quotes: copies in[0..len) into out (out_len bytes, always
 * NUL-terminated) with backslash as \\, control characters as \n \r \t or \xNN, DEL
 * and invalid UTF-8 bytes as \xNN. Output that does not fit ends in "...". Returns out.
 * The result is valid UTF-8 without control characters (also fit for a JSON string). */
char *log_escape(const char *in, size_t len, char *out, size_t out_len);
/* Like log_escape() but leaves backslashes alone: what log_msg() does to a whole line,
 * for text that goes elsewhere too (the daemon's "log" events). Returns out. */
char *log_sanitize(const char *in, char *out, size_t out_len);
/* log_escape() of a NUL-terminated string (NULL gives "(null)"). */
char *log_escape_str(const char *in, char *out, size_t out_len);

/* Rate limit for warnings a peer or a faulty radio can trigger at will: at most `burst`
 * messages per `interval_s`. Zero-initialise; one per kind of message; not thread-safe
 * (use one per thread or guard it). */
typedef struct {
    double window_start_s;
    unsigned in_window;
    unsigned long long suppressed; /* since the last message that was let through */
} log_ratelimit_t;
/* Call before logging, with a monotonic now_s. Returns 1 when the message may be logged,
 * 0 when it must be dropped. When it returns 1 after a quiet period, *suppressed (may be
 * NULL) receives how many were dropped in between (to say so in the message). */
int log_ratelimit(log_ratelimit_t *rl, double now_s, unsigned burst, double interval_s,
                  unsigned long long *suppressed);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
