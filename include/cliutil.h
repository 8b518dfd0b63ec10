/* cliutil: small helpers shared by the sigfox-* command-line tools. Licence: MIT. */
#ifndef SIGFOX_CLIUTIL_H
#define SIGFOX_CLIUTIL_H

#include <stdbool.h>
#include <stdio.h>

#include <json-c/json.h>

#define CLI_EXIT_USAGE 64      /* bad usage or malformed input (sysexits EX_USAGE) */
#define CLI_OPT_VERSION 0x1000 /* getopt_long value for --version */

/* Prints "PROG: <message>" and "Try 'PROG --help'." on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The getopt_long results every tool handles alike: 'h' prints usage to stdout,
 * CLI_OPT_VERSION prints "PROG VERSION", ':' (missing value, with a leading ':' in the
 * optstring) and anything else are usage errors naming argv[optind - 1]. Returns -1 when
 * the program should exit 0, else CLI_EXIT_USAGE. */
int cli_common_opt(int c, const char *prog, const char *usage, char **argv);

/* Prints "PROG: <message>" and a newline on stderr (a runtime error, not a usage error). */
void cli_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a whole argument as a finite number with an optional SI suffix (k, M, G; see
 * cfg_parse_number). Returns true and sets *v, or false for anything else. */
bool cli_parse_number(const char *text, double *v);

/* Parses a whole argument as an integer in [lo, hi]; base as strtol's (10: decimal only,
 * 16: hex with optional 0x, 0: C rules, so a leading 0 means octal). Returns true and sets
 * *v, or false (*v untouched) for junk, overflow or a value outside [lo, hi]. */
bool cli_parse_long(const char *text, int base, long lo, long hi, long *v);

/* Writes obj as one compact JSON line to f and flushes. */
void cli_json_line(struct json_object *obj, FILE *f);

#endif
