/* strbuf: a growing NUL-terminated text buffer with an optional size limit, for output
 * built piece by piece (callback bodies, REST answers). Licence: MIT. No I/O.
 *
 * Zero-initialise it (strbuf_t b = {.max = N}), append, use b.p (NULL while nothing was
 * appended), strbuf_free. An append that cannot be done (out of memory, or the text would
 * exceed max) sets `failed` and leaves the text as it was; every later append does nothing,
 * so a caller checks once at the end. Callers may set `failed` themselves for their own
 * reasons. */
#ifndef SIGFOX_STRBUF_H
#define SIGFOX_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *p;     /* the text, NUL-terminated; NULL while empty */
    size_t len;  /* bytes of text */
    size_t cap;  /* bytes allocated */
    size_t max;  /* most bytes of text, 0: no limit */
    bool failed; /* an append failed; later appends do nothing */
} strbuf_t;

/* Appends n bytes of s. Returns false (and sets failed) when it cannot, or failed was set. */
bool strbuf_add(strbuf_t *b, const char *s, size_t n);

/* Frees the text and zeroes b (max included). */
void strbuf_free(strbuf_t *b);

#endif
