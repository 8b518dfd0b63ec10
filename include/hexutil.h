/* hexutil: hex text <-> bytes for CLIs, config and JSON. Licence: MIT. */
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

#endif
