/* log: one-line log events on stderr with syslog priority prefixes that journald reads
 * ("<3>" error ... "<7>" debug). Levels follow SoapySDR's so its log handler feeds ours.
 * Style: a phrase, then `key: value` pairs, no timestamp. Licence: MIT. Thread-safe. */
#ifndef SIGFOX_LOG_H
#define SIGFOX_LOG_H

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

void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
