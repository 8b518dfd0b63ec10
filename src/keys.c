/* keys: device key store (sorted array, binary search). Licence: MIT. */
#include "keys.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "errbuf.h"
#include "hexutil.h"
#include "infile.h"

struct key_entry {
    uint32_t ep_id;
    unsigned load_id; /* which keystore_load call set it (0: keystore_add) */
    uint8_t key[KEYSTORE_KEY_BYTES];
};

struct keystore {
    struct key_entry *v;
    size_t n, cap;
    unsigned loads;
};

keystore_t *keystore_create(void)
{
    return calloc(1, sizeof(keystore_t));
}

void keystore_destroy(keystore_t *ks)
{
    if (!ks)
        return;
    if (ks->v)
        OPENSSL_cleanse(ks->v, ks->cap * sizeof *ks->v);
    free(ks->v);
    free(ks);
}

/* Index of the first entry with ID >= ep_id. */
static size_t lower_bound(const keystore_t *ks, uint32_t ep_id)
{
    size_t lo = 0, hi = ks->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ks->v[mid].ep_id < ep_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct key_entry *insert(keystore_t *ks, uint32_t ep_id)
{
    size_t i = lower_bound(ks, ep_id);
    if (i < ks->n && ks->v[i].ep_id == ep_id)
        return &ks->v[i];
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? 2 * ks->cap : 16;
        struct key_entry *v = calloc(cap, sizeof *v);
        if (!v)
            return NULL;
        if (ks->n)
            memcpy(v, ks->v, ks->n * sizeof *v);
        if (ks->v)
            OPENSSL_cleanse(ks->v, ks->cap * sizeof *ks->v);
        free(ks->v);
        ks->v = v;
        ks->cap = cap;
    }
    memmove(&ks->v[i + 1], &ks->v[i], (ks->n - i) * sizeof *ks->v);
    ks->n++;
    ks->v[i].ep_id = ep_id;
    ks->v[i].load_id = 0;
    return &ks->v[i];
}

int keystore_add(keystore_t *ks, uint32_t ep_id, const uint8_t key[KEYSTORE_KEY_BYTES])
{
    if (!ks || !key)
        return -1;
    struct key_entry *e = insert(ks, ep_id);
    if (!e)
        return -1;
    memcpy(e->key, key, KEYSTORE_KEY_BYTES);
    e->load_id = 0;
    return 0;
}

const uint8_t *keystore_find(const keystore_t *ks, uint32_t ep_id)
{
    if (!ks)
        return NULL;
    size_t i = lower_bound(ks, ep_id);
    return (i < ks->n && ks->v[i].ep_id == ep_id) ? ks->v[i].key : NULL;
}

size_t keystore_count(const keystore_t *ks)
{
    return ks ? ks->n : 0;
}

uint32_t keystore_ep_id_at(const keystore_t *ks, size_t i)
{
    return (ks && i < ks->n) ? ks->v[i].ep_id : 0;
}

void keystore_swap(keystore_t *a, keystore_t *b)
{
    if (!a || !b)
        return;
    keystore_t tmp = *a;
    *a = *b;
    *b = tmp;
}

int keystore_write(const keystore_t *ks, FILE *out)
{
    if (!ks || !out)
        return -1;
    char hex[2 * KEYSTORE_KEY_BYTES + 1];
    for (size_t i = 0; i < ks->n; i++)
        if (fprintf(out, "%08X %s\n", (unsigned)ks->v[i].ep_id,
                    bytes_to_hex(ks->v[i].key, KEYSTORE_KEY_BYTES, hex)) < 0)
            return -1;
    OPENSSL_cleanse(hex, sizeof hex);
    return fflush(out) == 0 ? 0 : -1;
}

/* Copies the next blank-separated token of *p into tok (cap bytes); returns its length,
 * or cap when it did not fit. */
static size_t next_token(const char **p, char *tok, size_t cap)
{
    const char *s = *p;
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = 0;
    while (s[n] && !isspace((unsigned char)s[n]) && s[n] != '#')
        n++;
    *p = s + n;
    if (n >= cap) {
        tok[0] = '\0'; /* too long: the caller reads an empty token, never stale bytes */
        return cap;
    }
    memcpy(tok, s, n);
    tok[n] = '\0';
    return n;
}

int keystore_parse_line(const char *line, uint32_t *ep_id, uint8_t key[KEYSTORE_KEY_BYTES],
                        char *err, size_t err_len)
{
    if (!line || !ep_id || !key) {
        errbuf_set(err, err_len, "invalid argument");
        return -1;
    }
    char id_tok[16], key_tok[40], extra[8];
    const char *p = line;
    size_t n = next_token(&p, id_tok, sizeof id_tok);
    if (n == 0 && (*p == '\0' || *p == '#'))
        return 0; /* blank or comment */
    /* The file format allows "0x" before the ID (documented above); hex_to_ep_id does not. */
    const char *id_digits = id_tok;
    if (id_digits[0] == '0' && (id_digits[1] == 'x' || id_digits[1] == 'X'))
        id_digits += 2;
    if (n == sizeof id_tok || hex_to_ep_id(id_digits, ep_id) != 0) {
        errbuf_set(err, err_len, "device ID must be 8 hex digits");
        return -1;
    }
    n = next_token(&p, key_tok, sizeof key_tok);
    if (n == 0) {
        errbuf_set(err, err_len, "missing key after device ID %08X", (unsigned)*ep_id);
        return -1;
    }
    const char *digits = key_tok;
    if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X'))
        digits += 2;
    if (n == sizeof key_tok || strlen(digits) != 2 * KEYSTORE_KEY_BYTES ||
        hex_to_bytes(digits, key, KEYSTORE_KEY_BYTES) != KEYSTORE_KEY_BYTES) {
        errbuf_set(err, err_len, "key must be 32 hex digits");
        return -1;
    }
    if (next_token(&p, extra, sizeof extra) != 0) {
        errbuf_set(err, err_len, "unexpected text after the key");
        return -1;
    }
    return 1;
}

int keystore_load(keystore_t *ks, const char *path, char *err, size_t err_len)
{
    if (!ks || !path) {
        errbuf_set(err, err_len, "keystore_load: invalid argument");
        return -1;
    }
    /* A regular file only: a FIFO or an endless device cannot be reloaded on SIGHUP and
     * must not hang or grow the daemon; size and line length are bounded. */
    infile_lines_t r;
    if (infile_lines_open(&r, path, "keys file", INFILE_REGULAR, INFILE_MAX_KEYS_BYTES, 256,
                          err, err_len) != 0)
        return -1;
    unsigned load_id = ++ks->loads;
    ssize_t len;
    int count = 0, rc = 0;
    char why[128];
    while ((len = infile_lines_next(&r, err, err_len)) > 0) {
        uint32_t id;
        uint8_t key[KEYSTORE_KEY_BYTES];
        int p = keystore_parse_line(r.line, &id, key, why, sizeof why);
        if (p < 0) {
            errbuf_set(err, err_len, "%s:%u: %s", path, r.lineno, why);
            rc = -1;
            break;
        }
        if (p == 0)
            continue;
        struct key_entry *e = insert(ks, id);
        if (!e) {
            errbuf_set(err, err_len, "%s:%u: out of memory", path, r.lineno);
            rc = -1;
        } else if (e->load_id == load_id) {
            errbuf_set(err, err_len, "%s:%u: device %08X is listed twice", path, r.lineno,
                       (unsigned)id);
            rc = -1;
        } else {
            memcpy(e->key, key, sizeof key);
            e->load_id = load_id;
            count++;
        }
        OPENSSL_cleanse(key, sizeof key);
        if (rc < 0)
            break;
    }
    if (len < 0)
        rc = -1;
    infile_lines_close(&r);
    return rc < 0 ? -1 : count;
}
