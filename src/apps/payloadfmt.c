/* payloadfmt: the Sigfox custom payload grammar (seeds/000 §7.1.1.2). Licence: MIT. */
#include "payloadfmt.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"

typedef enum { PF_BOOL, PF_CHAR, PF_UINT, PF_INT, PF_FLOAT } pf_type_t;

typedef struct {
    char name[PAYLOADFMT_MAX_NAME + 1];
    pf_type_t type;
    unsigned byte;      /* first byte */
    unsigned skip_bits; /* bits of the first byte before the value's MSB (7 - offset) */
    unsigned nbits;     /* bool: 1; char: 8*L */
    unsigned bit;       /* bool: bit position */
    bool little;        /* little-endian multi-byte value */
    bool has_offset;    /* explicit bit offset given */
    unsigned last_byte; /* last byte the field reads */
} pf_field_t;

struct payloadfmt {
    size_t n;
    size_t min_len;
    pf_field_t f[PAYLOADFMT_MAX_FIELDS];
};

/* One ':'-separated part of a field: start offset in the text and length. */
typedef struct {
    size_t at, len;
} part_t;

#define MAX_PARTS 6

static bool part_is(const char *text, part_t p, const char *word)
{
    return p.len == strlen(word) && memcmp(text + p.at, word, p.len) == 0;
}

/* Decimal number in [lo, hi]; empty or anything else is -1. */
static long part_num(const char *text, part_t p, long lo, long hi)
{
    if (p.len == 0 || p.len > 4)
        return -1;
    long v = 0;
    for (size_t i = 0; i < p.len; i++) {
        char c = text[p.at + i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    return v >= lo && v <= hi ? v : -1;
}

#define FAIL(p, ...)                                                                   \
    do {                                                                               \
        char msg_[160];                                                                \
        errbuf_set(msg_, sizeof msg_, __VA_ARGS__);                                    \
        errbuf_set(err, err_len, "payload grammar: %s at column %zu", msg_, (p).at + 1); \
        return -1;                                                                     \
    } while (0)

/* Parses the endianness and bit offset arguments (parts[4], parts[5]) of an integer. */
static int parse_int_args(const char *text, const part_t *parts, size_t nparts, pf_field_t *fd,
                          char *err, size_t err_len)
{
    if (nparts > 4 && parts[4].len > 0) {
        if (part_is(text, parts[4], "little-endian"))
            fd->little = true;
        else if (!part_is(text, parts[4], "big-endian"))
            FAIL(parts[4], "endianness must be big-endian or little-endian");
    }
    if (nparts > 5) {
        long o = part_num(text, parts[5], 0, 7);
        if (o < 0)
            FAIL(parts[5], "bit offset must be 0..7");
        fd->has_offset = true;
        fd->skip_bits = (unsigned)(7 - o);
    }
    if (fd->little && (fd->nbits % 8 != 0 || fd->skip_bits != 0))
        FAIL(parts[4], "little-endian needs a whole number of bytes and no bit offset");
    return 0;
}

static int parse_field(const char *text, const part_t *parts, size_t nparts,
                       const pf_field_t *prev, pf_field_t *fd, char *err, size_t err_len)
{
    memset(fd, 0, sizeof *fd);
    part_t name = parts[0];
    if (nparts < 4)
        FAIL(parts[nparts - 1], "field needs name:byte_index:type:argument");
    if (name.len == 0 || name.len > PAYLOADFMT_MAX_NAME)
        FAIL(name, "field name must have 1..%d characters", PAYLOADFMT_MAX_NAME);
    for (size_t i = 0; i < name.len; i++) {
        char c = text[name.at + i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            FAIL(name, "field name may only hold letters, digits, '_' and '-'");
    }
    memcpy(fd->name, text + name.at, name.len);
    fd->name[name.len] = '\0';

    part_t type = parts[2];
    size_t max_parts;
    if (part_is(text, type, "bool")) {
        fd->type = PF_BOOL;
        max_parts = 4;
        long b = part_num(text, parts[3], 0, 7);
        if (b < 0)
            FAIL(parts[3], "bool bit must be 0..7");
        fd->bit = (unsigned)b;
        fd->nbits = 1;
    } else if (part_is(text, type, "char")) {
        fd->type = PF_CHAR;
        max_parts = 4;
        long l = part_num(text, parts[3], 1, PAYLOADFMT_MAX_CHAR);
        if (l < 0)
            FAIL(parts[3], "char length must be 1..%d bytes", PAYLOADFMT_MAX_CHAR);
        fd->nbits = (unsigned)l * 8;
    } else if (part_is(text, type, "uint") || part_is(text, type, "int")) {
        fd->type = part_is(text, type, "uint") ? PF_UINT : PF_INT;
        max_parts = 6;
        long n = part_num(text, parts[3], 1, 64);
        if (n < 0)
            FAIL(parts[3], "integer size must be 1..64 bits");
        fd->nbits = (unsigned)n;
    } else if (part_is(text, type, "float")) {
        fd->type = PF_FLOAT;
        max_parts = 5;
        long n = part_num(text, parts[3], 32, 64);
        if (n != 32 && n != 64)
            FAIL(parts[3], "float size must be 32 or 64 bits");
        fd->nbits = (unsigned)n;
    } else {
        FAIL(type, "unknown type (bool, char, uint, int, float)");
    }
    if (nparts > max_parts)
        FAIL(parts[max_parts], "too many arguments for this type");
    if (fd->type == PF_UINT || fd->type == PF_INT || fd->type == PF_FLOAT)
        if (parse_int_args(text, parts, nparts, fd, err, err_len) < 0)
            return -1;

    /* byte index, explicit or by the Sigfox rule for an empty one */
    if (parts[1].len > 0) {
        long b = part_num(text, parts[1], 0, PAYLOADFMT_MAX_BYTE_INDEX);
        if (b < 0)
            FAIL(parts[1], "byte index must be 0..%d", PAYLOADFMT_MAX_BYTE_INDEX);
        fd->byte = (unsigned)b;
    } else if (!prev) {
        fd->byte = 0;
    } else if (fd->type == PF_BOOL) {
        fd->byte = prev->type == PF_BOOL ? prev->byte : prev->last_byte + 1;
    } else {
        fd->byte = prev->has_offset ? prev->last_byte : prev->last_byte + 1;
    }
    if (fd->type == PF_BOOL)
        fd->last_byte = fd->byte;
    else
        fd->last_byte = fd->byte + (fd->skip_bits + fd->nbits - 1) / 8;
    if (fd->last_byte > PAYLOADFMT_MAX_BYTE_INDEX)
        FAIL(parts[1].len ? parts[1] : parts[0], "field ends after byte %d",
             PAYLOADFMT_MAX_BYTE_INDEX);
    return 0;
}

payloadfmt_t *payloadfmt_create(const char *text, char *err, size_t err_len)
{
    if (!text) {
        errbuf_set(err, err_len, "payload grammar: missing");
        return NULL;
    }
    size_t tlen = strnlen(text, PAYLOADFMT_MAX_TEXT + 1);
    if (tlen > PAYLOADFMT_MAX_TEXT) {
        errbuf_set(err, err_len, "payload grammar: longer than %d bytes", PAYLOADFMT_MAX_TEXT);
        return NULL;
    }
    payloadfmt_t *f = calloc(1, sizeof *f);
    if (!f) {
        errbuf_set(err, err_len, "payload grammar: out of memory");
        return NULL;
    }
    size_t i = 0;
    while (i < tlen) {
        if (text[i] == ' ' || text[i] == '\t') {
            i++;
            continue;
        }
        part_t parts[MAX_PARTS + 1];
        size_t nparts = 0;
        parts[0].at = i;
        parts[0].len = 0;
        nparts = 1;
        for (; i < tlen && text[i] != ' ' && text[i] != '\t'; i++) {
            unsigned char c = (unsigned char)text[i];
            if (c == ':') {
                if (nparts > MAX_PARTS) {
                    part_t here = {i, 1};
                    errbuf_set(err, err_len, "payload grammar: too many ':' parts at column %zu",
                               here.at + 1);
                    goto fail;
                }
                parts[nparts].at = i + 1;
                parts[nparts].len = 0;
                nparts++;
            } else if (c < 0x20 || c >= 0x7f) {
                errbuf_set(err, err_len,
                           "payload grammar: character 0x%02X not allowed at column %zu", c,
                           i + 1);
                goto fail;
            } else {
                parts[nparts - 1].len++;
            }
        }
        if (f->n == PAYLOADFMT_MAX_FIELDS) {
            errbuf_set(err, err_len, "payload grammar: more than %d fields at column %zu",
                       PAYLOADFMT_MAX_FIELDS, parts[0].at + 1);
            goto fail;
        }
        const pf_field_t *prev = f->n ? &f->f[f->n - 1] : NULL;
        if (parse_field(text, parts, nparts, prev, &f->f[f->n], err, err_len) < 0)
            goto fail;
        for (size_t k = 0; k < f->n; k++)
            if (strcmp(f->f[k].name, f->f[f->n].name) == 0) {
                errbuf_set(err, err_len, "payload grammar: duplicate field name '%s' at column %zu",
                           f->f[k].name, parts[0].at + 1);
                goto fail;
            }
        if (f->f[f->n].last_byte + 1 > f->min_len)
            f->min_len = f->f[f->n].last_byte + 1;
        f->n++;
    }
    return f;
fail:
    free(f);
    return NULL;
}

void payloadfmt_destroy(payloadfmt_t *f)
{
    free(f);
}

size_t payloadfmt_nfields(const payloadfmt_t *f)
{
    return f ? f->n : 0;
}

const char *payloadfmt_field_name(const payloadfmt_t *f, size_t i)
{
    return f && i < f->n ? f->f[i].name : NULL;
}

size_t payloadfmt_min_len(const payloadfmt_t *f)
{
    return f ? f->min_len : 0;
}

/* The field's bits as an unsigned number (nbits <= 64), in the field's byte order. */
static uint64_t read_bits(const pf_field_t *fd, const uint8_t *p)
{
    uint64_t v = 0;
    if (fd->little) {
        for (unsigned i = fd->nbits / 8; i-- > 0;)
            v = (v << 8) | p[fd->byte + i];
        return v;
    }
    unsigned a = fd->byte * 8 + fd->skip_bits;
    for (unsigned k = 0; k < fd->nbits; k++, a++)
        v = (v << 1) | ((p[a / 8] >> (7 - a % 8)) & 1u);
    return v;
}

/* The field's value; NULL is JSON null (a float that is not finite) or no memory. */
static json_object *field_value(const pf_field_t *fd, const uint8_t *p)
{
    switch (fd->type) {
    case PF_BOOL:
        return json_object_new_boolean((p[fd->byte] >> fd->bit) & 1u);
    case PF_CHAR: {
        char s[PAYLOADFMT_MAX_CHAR + 1];
        unsigned n = fd->nbits / 8;
        while (n > 0 && p[fd->byte + n - 1] == 0)
            n--;
        for (unsigned i = 0; i < n; i++) {
            uint8_t c = p[fd->byte + i];
            s[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        return json_object_new_string_len(s, (int)n);
    }
    case PF_UINT:
        return json_object_new_uint64(read_bits(fd, p));
    case PF_INT: {
        uint64_t u = read_bits(fd, p);
        if (fd->nbits < 64 && (u >> (fd->nbits - 1)) & 1u)
            u |= ~UINT64_C(0) << fd->nbits;
        int64_t s;
        memcpy(&s, &u, sizeof s);
        return json_object_new_int64(s);
    }
    case PF_FLOAT: {
        uint64_t u = read_bits(fd, p);
        double d;
        if (fd->nbits == 32) {
            uint32_t u32 = (uint32_t)u;
            float x;
            memcpy(&x, &u32, sizeof x);
            d = x;
        } else {
            memcpy(&d, &u, sizeof d);
        }
        return isfinite(d) ? json_object_new_double(d) : NULL;
    }
    }
    return NULL;
}

int payloadfmt_decode(const payloadfmt_t *f, const uint8_t *payload, size_t len,
                      json_object **out, char *err, size_t err_len)
{
    if (!out)
        return -2;
    *out = NULL;
    if (!f || (!payload && len > 0)) {
        errbuf_set(err, err_len, "payload decode: missing argument");
        return -2;
    }
    json_object *o = json_object_new_object();
    if (!o) {
        errbuf_set(err, err_len, "payload decode: out of memory");
        return -2;
    }
    int rc = 0;
    for (size_t i = 0; i < f->n; i++) {
        const pf_field_t *fd = &f->f[i];
        if (fd->last_byte >= len) {
            if (rc == 0)
                errbuf_set(err, err_len,
                           "payload too short: field '%s' needs bytes %u..%u, payload has %zu",
                           fd->name, fd->byte, fd->last_byte, len);
            rc = -1;
            continue;
        }
        json_object *v = field_value(fd, payload);
        bool is_null = fd->type == PF_FLOAT && !v;
        if ((!v && !is_null) || json_object_object_add(o, fd->name, v) != 0) {
            json_object_put(v);
            json_object_put(o);
            errbuf_set(err, err_len, "payload decode: out of memory");
            return -2;
        }
    }
    *out = o;
    return rc;
}
