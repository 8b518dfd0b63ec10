/* jsonstrict: strict RFC 8259 JSON for text from outside (command requests, SigMF
 * metadata). Licence: MIT.
 *
 * json-c is lenient: it accepts comments, single quotes, NaN/Infinity, invalid UTF-8,
 * trailing text, and stops at the first complete value. Everything that comes from a
 * network peer or a user's file goes through jsonstrict_check() first, which accepts only
 * what RFC 8259 calls JSON text, and in addition refuses:
 *   - "\u0000" inside strings (C strings would silently cut it: "help\u0000junk"),
 *   - unpaired UTF-16 surrogate escapes ("\ud800": not a Unicode scalar value),
 *   - nesting deeper than max_depth.
 * The message says what is wrong and at which byte. No allocation, no recursion; safe on
 * any bytes (the fuzz harness test/fuzz/fuzz_jsonstrict.c checks it against json-c).
 */
#ifndef SIGFOX_JSONSTRICT_H
#define SIGFOX_JSONSTRICT_H

#include <stddef.h>

#include <json-c/json.h>

#define JSONSTRICT_MAX_DEPTH 64 /* default nesting limit (objects + arrays) */

/* Checks that text[0..len) is one JSON value, optionally surrounded by white space.
 * max_depth 0: JSONSTRICT_MAX_DEPTH. Returns 0, or -1 with "at byte N: reason" in err. */
int jsonstrict_check(const char *text, size_t len, unsigned max_depth, char *err,
                     size_t err_len);

/* jsonstrict_check(), then json-c's parse of the same text. Returns a new object (the
 * caller puts it; JSON null gives an error "null is not allowed here" because json-c
 * represents it as NULL), or NULL with the reason in err. */
json_object *jsonstrict_parse(const char *text, size_t len, unsigned max_depth, char *err,
                              size_t err_len);

/* True when s[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int jsonstrict_utf8_valid(const char *s, size_t len);

#endif
