/* strbuf: a growing NUL-terminated text buffer (include/strbuf.h). Licence: MIT. */
#include "strbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool strbuf_add(strbuf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return false;
    if (n > SIZE_MAX / 2 - b->len || (b->max && b->len + n > b->max)) {
        b->failed = true;
        return false;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->failed = true;
            return false;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

void strbuf_free(strbuf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
