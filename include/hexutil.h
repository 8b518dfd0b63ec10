/* hexutil: hex and base64 text <-> bytes for CLIs, config and JSON. Licence: MIT. */
#ifndef SIGFOX_HEXUTIL_H
#define SIGFOX_HEXUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parses hex digits (spaces, ':' and a leading "0x" ignored) into at most cap bytes.
 * Returns the byte count, or -1 for a non-hex character, an odd digit count or overflow. */
int hex_to_bytes(const char *text, uint8_t *out, size_t cap);
/* Writes 2*len uppercase digits and a NUL into out (size >= 2*len+1). Returns out. */
char *bytes_to_hex(const uint8_t *in, size_t len, char *out);
/* Parses exactly 8 hex digits (no 0x, no blanks) into a device ID. Returns 0 or -1. */
int hex_to_ep_id(const char *text, uint32_t *ep_id);

/* Base64 (RFC 4648 section 4, standard alphabet, '=' padding) of len bytes into out (size
 * >= B64_LEN(len) + 1, NUL-terminated). Returns the character count, B64_LEN(len). */
#define B64_LEN(len) (((len) + 2) / 3 * 4)
size_t b64_encode(const uint8_t *in, size_t len, char *out);
/* Strict base64 of text[0..len): a multiple of 4 characters of the standard alphabet, '='
 * only as the last one or two, unused bits of the last group zero (so one byte string has
 * one text), no blanks. Returns the byte count, or -1 when the text is not that or holds
 * more than cap bytes. */
long b64_decode(const char *text, size_t len, uint8_t *out, size_t cap);

#endif
