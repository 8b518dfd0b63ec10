/* jsonstrict: strict RFC 8259 JSON validation before json-c. Licence: MIT. */
#include "jsonstrict.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "errbuf.h"

#define STACK_MAX 256 /* hard cap on max_depth: the container stack lives on the C stack */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when invalid
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

int jsonstrict_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t k = utf8_seq(p + i, len - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    const char *why;
} scan_t;

static int fail(scan_t *sc, const char *why)
{
    sc->why = why;
    return -1;
}

static int hex4(scan_t *sc, unsigned *v)
{
    if (sc->len - sc->pos < 4)
        return fail(sc, "\\u needs 4 hex digits");
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = sc->s[sc->pos + (size_t)i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return fail(sc, "\\u needs 4 hex digits");
        x = x << 4 | d;
    }
    sc->pos += 4;
    *v = x;
    return 0;
}

/* A string; sc->pos is just after the opening quote. */
static int scan_string(scan_t *sc)
{
    for (;;) {
        if (sc->pos >= sc->len)
            return fail(sc, "unterminated string");
        unsigned c = sc->s[sc->pos];
        if (c == '"') {
            sc->pos++;
            return 0;
        }
        if (c < 0x20)
            return fail(sc, "control character in a string (escape it)");
        if (c >= 0x80) {
            size_t k = utf8_seq(sc->s + sc->pos, sc->len - sc->pos);
            if (k == 0)
                return fail(sc, "invalid UTF-8 in a string");
            sc->pos += k;
            continue;
        }
        sc->pos++;
        if (c != '\\')
            continue;
        if (sc->pos >= sc->len)
            return fail(sc, "unterminated string");
        c = sc->s[sc->pos++];
        if (strchr("\"\\/bfnrt", (int)c) && c != 0)
            continue;
        if (c != 'u')
            return fail(sc, "invalid escape in a string");
        unsigned u;
        if (hex4(sc, &u) != 0)
            return -1;
        if (u == 0)
            return fail(sc, "\\u0000 (NUL) is not allowed in a string");
        if (u >= 0xDC00 && u <= 0xDFFF)
            return fail(sc, "unpaired UTF-16 surrogate escape");
        if (u >= 0xD800 && u <= 0xDBFF) {
            unsigned lo;
            if (sc->len - sc->pos < 2 || sc->s[sc->pos] != '\\' || sc->s[sc->pos + 1] != 'u')
                return fail(sc, "unpaired UTF-16 surrogate escape");
            sc->pos += 2;
            if (hex4(sc, &lo) != 0)
                return -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return fail(sc, "unpaired UTF-16 surrogate escape");
        }
    }
}

static bool is_digit(scan_t *sc)
{
    return sc->pos < sc->len && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9';
}

static int scan_number(scan_t *sc)
{
    if (sc->s[sc->pos] == '-')
        sc->pos++;
    if (!is_digit(sc))
        return fail(sc, "invalid number");
    if (sc->s[sc->pos] == '0') {
        sc->pos++;
        if (is_digit(sc))
            return fail(sc, "number with a leading zero");
    } else {
        while (is_digit(sc))
            sc->pos++;
    }
    if (sc->pos < sc->len && sc->s[sc->pos] == '.') {
        sc->pos++;
        if (!is_digit(sc))
            return fail(sc, "invalid number: no digit after '.'");
        while (is_digit(sc))
            sc->pos++;
    }
    if (sc->pos < sc->len && (sc->s[sc->pos] == 'e' || sc->s[sc->pos] == 'E')) {
        sc->pos++;
        if (sc->pos < sc->len && (sc->s[sc->pos] == '+' || sc->s[sc->pos] == '-'))
            sc->pos++;
        if (!is_digit(sc))
            return fail(sc, "invalid number: no digit in the exponent");
        while (is_digit(sc))
            sc->pos++;
    }
    return 0;
}

static int scan_literal(scan_t *sc, const char *word)
{
    size_t n = strlen(word);
    if (sc->len - sc->pos < n || memcmp(sc->s + sc->pos, word, n) != 0)
        return fail(sc, "unexpected character (not JSON: comments, single quotes, NaN and "
                        "Infinity are not allowed)");
    sc->pos += n;
    return 0;
}

static void skip_ws(scan_t *sc)
{
    while (sc->pos < sc->len && (sc->s[sc->pos] == ' ' || sc->s[sc->pos] == '\t' ||
                                 sc->s[sc->pos] == '\n' || sc->s[sc->pos] == '\r'))
        sc->pos++;
}

enum { WANT_VALUE, WANT_VALUE_OR_END, WANT_KEY, WANT_KEY_OR_END, WANT_COLON, WANT_NEXT };

static int scan(scan_t *sc, unsigned max_depth)
{
    char stack[STACK_MAX];
    unsigned depth = 0;
    int state = WANT_VALUE;
    for (;;) {
        skip_ws(sc);
        if (state == WANT_NEXT && depth == 0) {
            if (sc->pos != sc->len)
                return fail(sc, "text after the JSON value");
            return 0;
        }
        if (sc->pos >= sc->len)
            return fail(sc, sc->len == 0 ? "empty input" : "unexpected end of input");
        unsigned char c = sc->s[sc->pos];
        switch (state) {
        case WANT_COLON:
            if (c != ':')
                return fail(sc, "expected ':' after an object key");
            sc->pos++;
            state = WANT_VALUE;
            continue;
        case WANT_NEXT:
            if (c == ',') {
                sc->pos++;
                state = stack[depth - 1] == '{' ? WANT_KEY : WANT_VALUE;
                continue;
            }
            if ((c == '}' && stack[depth - 1] == '{') || (c == ']' && stack[depth - 1] == '[')) {
                sc->pos++;
                depth--;
                continue;
            }
            return fail(sc, stack[depth - 1] == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        case WANT_KEY_OR_END:
            if (c == '}') {
                sc->pos++;
                depth--;
                state = WANT_NEXT;
                continue;
            }
            /* fall through */
        case WANT_KEY:
            if (c != '"')
                return fail(sc, "expected a string as object key");
            sc->pos++;
            if (scan_string(sc) != 0)
                return -1;
            state = WANT_COLON;
            continue;
        case WANT_VALUE_OR_END:
            if (c == ']') {
                sc->pos++;
                depth--;
                state = WANT_NEXT;
                continue;
            }
            /* fall through */
        default: /* WANT_VALUE */
            break;
        }
        if (c == '{' || c == '[') {
            if (depth >= max_depth)
                return fail(sc, "nested too deeply");
            stack[depth++] = (char)c;
            sc->pos++;
            state = c == '{' ? WANT_KEY_OR_END : WANT_VALUE_OR_END;
            continue;
        }
        int rc;
        if (c == '"') {
            sc->pos++;
            rc = scan_string(sc);
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            rc = scan_number(sc);
        } else if (c == 't') {
            rc = scan_literal(sc, "true");
        } else if (c == 'f') {
            rc = scan_literal(sc, "false");
        } else if (c == 'n') {
            rc = scan_literal(sc, "null");
        } else {
            rc = fail(sc, "unexpected character (not JSON: comments, single quotes, NaN and "
                          "Infinity are not allowed)");
        }
        if (rc != 0)
            return -1;
        state = WANT_NEXT;
    }
}

int jsonstrict_check(const char *text, size_t len, unsigned max_depth, char *err, size_t err_len)
{
    if (!text) {
        errbuf_set(err, err_len, "no text");
        return -1;
    }
    if (max_depth == 0)
        max_depth = JSONSTRICT_MAX_DEPTH;
    if (max_depth > STACK_MAX)
        max_depth = STACK_MAX;
    scan_t sc = {(const unsigned char *)text, len, 0, NULL};
    if (scan(&sc, max_depth) != 0) {
        errbuf_set(err, err_len, "at byte %zu: %s", sc.pos, sc.why);
        return -1;
    }
    return 0;
}

json_object *jsonstrict_parse(const char *text, size_t len, unsigned max_depth, char *err,
                              size_t err_len)
{
    if (jsonstrict_check(text, len, max_depth, err, err_len) != 0)
        return NULL;
    if (len > (size_t)INT32_MAX) {
        errbuf_set(err, err_len, "text too large");
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(max_depth ? (int)max_depth + 1
                                                      : JSONSTRICT_MAX_DEPTH + 1);
    if (!tok) {
        errbuf_set(err, err_len, "out of memory");
        return NULL;
    }
    /* The text ends where the checked value ends: json-c needs to see the end to finish a
     * top-level number, so hand it one more byte when there is one (white space). */
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (!o && jerr == json_tokener_continue)
        o = json_tokener_parse_ex(tok, " ", 1);
    jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!o) {
        if (jerr == json_tokener_success || jerr == json_tokener_continue)
            errbuf_set(err, err_len, "null is not allowed here");
        else
            errbuf_set(err, err_len, "%s", json_tokener_error_desc(jerr));
        return NULL;
    }
    return o;
}
