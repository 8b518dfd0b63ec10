/* payloadfmt: the Sigfox "custom" payload grammar of a device type (seeds/000 §7.1.1.2
 * "Custom"): parse it once at configuration time, then decode payloads into named
 * fields. Licence: MIT.
 *
 * Grammar: fields separated by spaces, each `name:byte_index:type:args`
 *
 *   name        1..32 of [A-Za-z0-9_-] (unique within a grammar)
 *   byte_index  0..63, or empty (see "empty byte index" below)
 *   bool:B                     bit B (0 = least significant .. 7) of the byte
 *   char:L                     L bytes (1..64) as text; trailing NUL bytes dropped,
 *                              bytes outside printable ASCII shown as '?'
 *   uint:N[:E[:O]]             unsigned integer of N bits (1..64)
 *   int:N[:E[:O]]              two's-complement signed integer of N bits (1..64)
 *   float:32|64[:E]            IEEE 754 binary32 / binary64
 *     E  endianness: `big-endian` (default, also when empty) or `little-endian`;
 *        little-endian needs N a multiple of 8 and no bit offset
 *     O  bit offset 0..7: the bit of the first byte holding the value's most
 *        significant bit (7 = MSB, the default); the value runs towards bit 0 and on
 *        into the next bytes, so `s:1:uint:4::3` is the low nibble of byte 1
 *
 * Empty byte index (Sigfox rule): the first field starts at byte 0; a bool field uses the
 * byte of the previous field when that one was a bool too, else the next unused byte;
 * any other field uses the last byte of the previous field when that field had an
 * explicit bit offset, else the byte after it. So
 * `temp::int:16:little-endian hum::uint:8 flags::bool:7 name::char:4` reads bytes 0-1,
 * 2, 3 and 4-7.
 *
 * Decoded values: bool -> JSON boolean, uint/int -> integer, float -> number (null when
 * not finite), char -> string.
 */
#ifndef SIGFOX_PAYLOADFMT_H
#define SIGFOX_PAYLOADFMT_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define PAYLOADFMT_MAX_FIELDS 64
#define PAYLOADFMT_MAX_NAME 32
#define PAYLOADFMT_MAX_BYTE_INDEX 63
#define PAYLOADFMT_MAX_CHAR 64
/* Longest grammar text accepted (bytes). */
#define PAYLOADFMT_MAX_TEXT 4096

typedef struct payloadfmt payloadfmt_t;

/* Parses a grammar. Returns the parsed grammar (owned by the caller, free with
 * payloadfmt_destroy), or NULL with err naming the problem and its position as
 * "at column N" (1-based, in bytes of text). An empty grammar (only spaces) is valid and
 * decodes to an empty object. */
payloadfmt_t *payloadfmt_create(const char *text, char *err, size_t err_len);
void payloadfmt_destroy(payloadfmt_t *f);

/* Number of fields; the name of field i (NULL when out of range). */
size_t payloadfmt_nfields(const payloadfmt_t *f);
const char *payloadfmt_field_name(const payloadfmt_t *f, size_t i);
/* Bytes a payload must have for every field to decode. */
size_t payloadfmt_min_len(const payloadfmt_t *f);

/* Decodes len bytes of payload. *out receives a new object (owned by the caller) with one
 * member per field that fits in the payload, in grammar order. Returns 0 when every
 * field decoded, -1 when the payload is too short for some field (err names the first
 * such field and the bytes it needs; *out still holds the fields that fit), -2 on a NULL
 * argument or no memory (*out NULL). Never reads outside payload[0..len). */
int payloadfmt_decode(const payloadfmt_t *f, const uint8_t *payload, size_t len,
                      json_object **out, char *err, size_t err_len);

#endif
