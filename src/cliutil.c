/* cliutil: small helpers shared by the sigfox-* command-line tools. Licence: MIT. */
#include "cliutil.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <getopt.h>

#include "config.h"

#ifndef SIGFOXD_VERSION
#define SIGFOXD_VERSION "unknown"
#endif

/* "PROG: <message>" on stderr, without the newline. */
static void vmessage(const char *prog, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
}

int cli_usage_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(prog, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help'.\n", prog);
    return CLI_EXIT_USAGE;
}

int cli_common_opt(int c, const char *prog, const char *usage, char **argv)
{
    switch (c) {
    case 'h':
        fputs(usage, stdout);
        return -1;
    case CLI_OPT_VERSION:
        printf("%s %s\n", prog, SIGFOXD_VERSION);
        return -1;
    case ':':
        return cli_usage_error(prog, "option '%s' needs a value", argv[optind - 1]);
    default:
        return cli_usage_error(prog, "unknown option '%s'", argv[optind - 1]);
    }
}

void cli_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(prog, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool cli_parse_number(const char *text, double *v)
{
    return text && cfg_parse_number(text, v) == 0 && isfinite(*v);
}

bool cli_parse_long(const char *text, int base, long lo, long hi, long *v)
{
    if (!text)
        return false;
    /* strtol() skips leading blanks and takes a sign: " 5" or "+5" are not what a user of
     * --mc meant to type exactly. */
    if (!(text[0] >= '0' && text[0] <= '9') && !(text[0] == '-' && lo < 0))
        return false;
    char *end;
    errno = 0;
    long x = strtol(text, &end, base);
    if (errno || end == text || *end != '\0' || x < lo || x > hi)
        return false;
    *v = x;
    return true;
}

void cli_json_line(struct json_object *obj, FILE *f)
{
    fprintf(f, "%s\n",
            json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE));
    fflush(f);
}
