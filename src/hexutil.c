/* hexutil: hex text <-> bytes. Licence: MIT. */
#include "hexutil.h"

#include <ctype.h>
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
