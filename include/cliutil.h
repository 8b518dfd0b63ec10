/* cliutil: small helpers shared by the sigfox-* command-line tools. Licence: MIT. */
#ifndef SIGFOX_CLIUTIL_H
#define SIGFOX_CLIUTIL_H

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

/* Adds key: v printed with a fixed number of decimals (json-c would print 17 digits:
 * 868130250.40000004); NaN and infinities become null. Returns 0 or -1. */
int cli_json_num(struct json_object *obj, const char *key, double v, int decimals);

/* Writes obj as one compact JSON line to f and flushes. */
void cli_json_line(struct json_object *obj, FILE *f);

#endif
