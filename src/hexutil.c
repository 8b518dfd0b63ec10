/* hexutil: hex text <-> bytes. Licence: MIT. */
#include "hexutil.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int hex_to_bytes(const char *text, uint8_t *out, size_t cap)
{
    if (!text || (!out && cap))
        return -1;
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
        text += 2;
    size_t n = 0;
    int high = -1;
    for (; *text; text++) {
        if (*text == ' ' || *text == ':')
            continue;
        int d = hex_digit((unsigned char)*text);
        if (d < 0)
            return -1;
        if (high < 0) {
            high = d;
            continue;
        }
        if (n >= cap)
            return -1;
        out[n++] = (uint8_t)(high << 4 | d);
        high = -1;
    }
    return high < 0 ? (int)n : -1;
}

char *bytes_to_hex(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
    return out;
}

int hex_to_ep_id(const char *text, uint32_t *ep_id)
{
    uint8_t b[4];
    if (!text || !ep_id)
        return -1;
    /* Exactly what events print: 8 hex digits, no "0x", no blanks or colons. */
    if (strlen(text) != 8 || strspn(text, "0123456789abcdefABCDEF") != 8 ||
        hex_to_bytes(text, b, sizeof b) != 4)
        return -1;
    *ep_id = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return 0;
}

/* ---- base64 (RFC 4648 §4, with padding) ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t b64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64_alphabet[v >> 18 & 63];
        out[o++] = b64_alphabet[v >> 12 & 63];
        out[o++] = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long b64_decode(const char *text, size_t len, uint8_t *out, size_t cap)
{
    if (!text || (!out && cap) || len % 4 != 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        int pad = 0;
        if (last && text[i + 3] == '=')
            pad = text[i + 2] == '=' ? 2 : 1;
        uint32_t v = 0;
        for (int k = 0; k < 4 - pad; k++) {
            int d = b64_value((unsigned char)text[i + (size_t)k]);
            if (d < 0)
                return -1;
            v = v << 6 | (uint32_t)d;
        }
        v <<= 6 * pad;
        /* the bits a padded group does not use must be zero: one text per byte string */
        if ((pad == 1 && (v & 0xFF) != 0) || (pad == 2 && (v & 0xFFFF) != 0))
            return -1;
        size_t nb = 3 - (size_t)pad;
        if (n + nb > cap)
            return -1;
        for (size_t k = 0; k < nb; k++)
            out[n++] = (uint8_t)(v >> (16 - 8 * k));
    }
    return (long)n;
}
