/* framejson: the project's shared JSON field names for uplink frames and messages, so the
 * daemon, the replay output and the tools all emit the same objects. Licence: MIT.
 *
 *   ep_id        "FEDCBA98"   device ID, 8 uppercase hex digits
 *   mc           1650         message counter 0..4095
 *   bf           false        downlink requested
 *   kind         "app" | "keepalive" | "dl_confirmation"
 *   payload      "0001..07"   uppercase hex ("" when empty; raw bytes of control messages)
 *   payload_bit  0 | 1        1-bit messages only (instead of payload)
 *   vdd_idle_mv, vdd_tx_mv, temp_tenth_c, temp_c     control messages (§5.1, §5.2)
 *   rssi_dbm     -126         dl_confirmation only
 *   rank         1..3 (0 = jointly decoded from several replicas)
 *   ft           "0611"       received FT, 4 hex digits
 *   ft_distance  0            Hamming distance to the matched FT
 *   crc_ok       true
 *   ul_crc       "CDFB"       UL-CRC field as received
 *   ul_auth      "96E7"       UL-AUTH field (when the container parsed)
 *   auth         "ok" | "bad" | "unknown-device" | "unchecked"
 *
 * Functions add fields to a caller-owned json_object and return 0, or -1 on a NULL
 * argument, an invalid value or no memory. Thread-safe (no shared state).
 */
#ifndef SIGFOX_FRAMEJSON_H
#define SIGFOX_FRAMEJSON_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "keys.h"
#include "ulframe.h"

#define FRAMEJSON_AUTH_OK "ok"
#define FRAMEJSON_AUTH_BAD "bad"
#define FRAMEJSON_AUTH_UNKNOWN_DEVICE "unknown-device"
#define FRAMEJSON_AUTH_UNCHECKED "unchecked"

/* Adds val under key, taking ownership of val even on failure (NULL val: -1), so that
 * `rc |= framejson_add(o, "k", json_object_new_int(1));` leaks nothing. */
int framejson_add(struct json_object *obj, const char *key, struct json_object *val);
/* A JSON number printed with `decimals` digits after the point (json-c would print 17
 * significant digits: 868130250.40000004); decimals <= 0 gives an integer. The value
 * stored is the rounded one, so readers of the object and of its text agree. NULL for a
 * non-finite value or no memory. New reference. The project's one rounding helper. */
struct json_object *framejson_number(double v, int decimals);
/* Adds key: framejson_number(v, decimals); a non-finite v is added as null (never invalid
 * JSON). */
int framejson_add_num(struct json_object *obj, const char *key, double v, int decimals);
/* Adds ep_id as 8 uppercase hex digits. */
int framejson_add_ep_id(struct json_object *obj, uint32_t ep_id);
/* Adds key: the n bytes at p as 2n uppercase hex digits; n at most FRAMEJSON_HEX_MAX_BYTES
 * (a DL frame), else -1. */
int framejson_add_hex(struct json_object *obj, const char *key, const uint8_t *p, size_t n);
#define FRAMEJSON_HEX_MAX_BYTES 32
/* Adds ep_id, mc, bf, kind, payload or payload_bit, and the control fields. */
int framejson_add_message(struct json_object *obj, const ul_message_t *m);
/* Adds rank, ft, ft_distance, crc_ok, ul_crc; with_message (the decoder returned 0) also
 * adds the message fields and ul_auth, unless the container did not parse (auth_len 0). */
int framejson_add_frame(struct json_object *obj, const ul_frame_t *f, bool with_message);
/* Adds auth; status must be one of the four FRAMEJSON_AUTH_* strings. */
int framejson_add_auth(struct json_object *obj, const char *status);

/* Auth status of a frame the decoder accepted: "unchecked" without a key, else "ok" or
 * "bad" (UL-AUTH recomputed with key). Never NULL. */
const char *framejson_auth_with_key(const ul_frame_t *f, const uint8_t *key);
/* The same with the device's key from a store: "unchecked" when ks is NULL,
 * "unknown-device" when the store has no key for the frame's ep_id. */
const char *framejson_auth_with_store(const ul_frame_t *f, const keystore_t *ks);

#endif
