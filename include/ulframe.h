/* ulframe: Sigfox uplink frame codec (spec rev 1.4 §3, §5). Licence: MIT.
 *
 * Over-the-air uplink frame, MSbit first (spec §3.1, §9.4):
 *
 *   | UL-Pr 19 b | FT 13 b | UL-CONTAINER (8/9/12/16/20 B)            | UL-CRC 16 b |
 *   | 1010..1    |         | LI2 BF1 REP1 MC12 | ID 32 | PAYLOAD | AUTH |             |
 *
 *   19 + 13 bits fill the first 4 bytes, so a frame prints as `AA AA A6 11 ...`.
 *   Ranks 2 and 3 carry container+CRC convolutionally coded (ulcode.h) and their own FT.
 *
 * Pure functions, no I/O; thread-safe. Byte buffers are packed MSbit first.
 */
#ifndef SIGFOX_ULFRAME_H
#define SIGFOX_ULFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UL_PREAMBLE_BITS 19
#define UL_FT_BITS 13
#define UL_HEADER_BYTES 4          /* preamble + FT */
#define UL_MAX_PAYLOAD_BYTES 12
#define UL_MAX_CONTAINER_BYTES 20
#define UL_CRC_BYTES 2
#define UL_MAX_AUTH_BYTES 5
#define UL_MAX_FRAME_BYTES (UL_HEADER_BYTES + UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES)
#define UL_KEY_BYTES 16

/* Negative return codes of every ul_* function; ul_strerror() names them. */
enum ul_error {
    UL_OK = 0,
    UL_ERR_ARG = -1,        /* NULL pointer or argument out of range */
    UL_ERR_LENGTH = -2,     /* buffer too short / wrong length */
    UL_ERR_FT = -3,         /* frame type too far from every known FT */
    UL_ERR_CRC = -4,        /* UL-CRC mismatch */
    UL_ERR_FIELDS = -5,     /* impossible field combination (e.g. LI vs length) */
    UL_ERR_CRYPTO = -6,     /* libcrypto failure */
};
const char *ul_strerror(int code);

typedef enum {
    UL_KIND_APP = 0,
    UL_KIND_KEEPALIVE,       /* control, CT 0x08 (§5.1) */
    UL_KIND_DL_CONFIRMATION, /* control, CT 0x09 (§5.2) */
} ul_kind_t;
const char *ul_kind_name(ul_kind_t kind); /* "app", "keepalive", "dl_confirmation" */

/* Decoded control payload (§5.1, §5.2), little-endian on air. */
typedef struct {
    uint16_t vdd_idle_mv;
    uint16_t vdd_tx_mv;
    int16_t temp_tenth_c;
    int8_t rssi_dbm;          /* dl_confirmation only: byte - 100 */
} ul_control_t;

/* One uplink message as the device composed it. */
typedef struct {
    uint32_t ep_id;           /* device ID as a number, e.g. 0xFEDCBA98 */
    uint16_t mc;              /* message counter, 12 bits */
    bool bf;                  /* bidirectional flag: downlink requested */
    bool rep;                 /* REP bit (§3.5) */
    ul_kind_t kind;
    bool one_bit;             /* 1-bit message (LI 10/11, empty payload) */
    uint8_t payload_bit;      /* value when one_bit */
    uint8_t payload[UL_MAX_PAYLOAD_BYTES];
    size_t payload_len;       /* 0..12; for control: 7 (keepalive) or 8 (confirmation) */
    ul_control_t control;     /* decoded when kind != APP */
} ul_message_t;

/* FT table (Table 3-3, Annex B, DESIGN.md). container_bytes in {8,9,12,16,20}. */
uint16_t ul_ft_value(size_t container_bytes, bool control, int rank);
/* Closest known FT to a received 13-bit value. Fills what it found; returns the Hamming
 * distance (>= 0), or UL_ERR_FT when the best distance exceeds max_distance. */
int ul_ft_match(uint16_t ft_rx, int max_distance, size_t *container_bytes, bool *control,
                int *rank);

/* CRC-16 poly 0x1021, init 0, xorout 0xFFFF (§3.9). */
uint16_t ul_crc16(const uint8_t *data, size_t len);

/* UL-AUTH length in bytes for a container (from LI and size, Table 3-1). */
size_t ul_auth_len(size_t container_bytes, unsigned li);
/* UL-AUTH (§3.8): leading auth_len bytes of AES-128-CBC (zero IV) over `data` repeated
 * cyclically to fill 16 (or 32 when len > 16) bytes. Returns 0 or UL_ERR_*. */
int ul_auth_compute(const uint8_t key[UL_KEY_BYTES], const uint8_t *data, size_t len,
                    uint8_t *auth, size_t auth_len);

/* Builds the UL-CONTAINER of m (computes UL-AUTH with key). For control kinds the payload
 * is serialised from m->control. Returns the container length or UL_ERR_*. */
int ul_container_build(const ul_message_t *m, const uint8_t key[UL_KEY_BYTES],
                       uint8_t *container, size_t cap);
/* Parses a container of `len` bytes; control selects the control-message FT family.
 * auth/auth_len receive the UL-AUTH field (auth may be NULL). Returns 0 or UL_ERR_*. */
int ul_container_parse(const uint8_t *container, size_t len, bool control, ul_message_t *m,
                       uint8_t *auth, size_t *auth_len);
/* 1 when the container's UL-AUTH matches key, 0 when not, negative on error. */
int ul_auth_verify(const uint8_t *container, size_t len, const uint8_t key[UL_KEY_BYTES]);

/* Whole over-the-air frame for rank 1..3: preamble+FT+coded(container+CRC), packed MSbit
 * first. Returns its length in bytes (4 + container + 2) or UL_ERR_*. */
int ul_frame_encode(const ul_message_t *m, const uint8_t key[UL_KEY_BYTES], int rank,
                    uint8_t *frame, size_t cap);

/* A frame as the receiver understands it. */
typedef struct {
    int rank;                 /* 1..3 */
    bool control;
    uint16_t ft;              /* FT as received */
    int ft_distance;          /* Hamming distance to the matched FT */
    size_t container_len;
    uint8_t container[UL_MAX_CONTAINER_BYTES]; /* un-coded */
    uint16_t crc;             /* CRC field as received (after un-coding) */
    bool crc_ok;
    ul_message_t msg;         /* valid when crc_ok */
    uint8_t auth[UL_MAX_AUTH_BYTES];
    size_t auth_len;
} ul_frame_t;

/* Decodes packed bytes that start at the preamble (has_preamble) or at the FT.
 * nbits counts valid bits. Returns 0 (CRC ok, fields parsed) or UL_ERR_*; on UL_ERR_CRC
 * out->rank/ft/container are still filled. */
int ul_frame_decode(const uint8_t *bytes, size_t nbits, bool has_preamble, int max_ft_distance,
                    ul_frame_t *out);

/* Number of bits after the FT (container + CRC) for a container size. */
static inline size_t ul_body_bits(size_t container_bytes)
{
    return (container_bytes + UL_CRC_BYTES) * 8;
}

#endif
