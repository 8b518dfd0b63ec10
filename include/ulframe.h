/* ulframe: Sigfox uplink frame codec (spec rev 1.4 §3, §5). Licence: MIT.
 *
 * Over-the-air uplink frame, MSbit first (spec §3.1, §9.4):
 *
 *   | UL-Pr 19 b | FT 13 b | UL-CONTAINER (8/9/12/16/20 B)            | UL-CRC 16 b |
 *   | 1010..1    |         | LI2 BF1 REP1 MC12 | ID 32 | PAYLOAD | AUTH |             |
 *
 *   19 + 13 bits fill the first 4 bytes, so a frame prints as `AA AA A6 11 ...`.
 *   ID is the device ID with its bytes reversed (0xFEDCBA98 -> 98 BA DC FE, §3.7).
 *   Ranks 2 and 3 carry container+CRC convolutionally coded (ulcode.h) and their own FT.
 *
 * Container size, LI and UL-AUTH length (Table 3-1):
 *   payload   empty/1 bit  1 B   2 B  3 B  4 B   5 B  6 B  7 B  8 B   9 B 10 B 11 B 12 B
 *   container      8        9    12   12   12    16   16   16   16    20  20   20   20
 *   LI        00/10/11     00    10   01   00    11   10   01   00    11  10   01   00
 *   AUTH bytes     2        2     4    3    2     5    4    3    2     5   4    3    2
 * Control messages (§5) use a 16-byte container and the F67/FC9/11BE frame types:
 *   keep-alive       CT 0x08, VDD-IDLE(2) VDD-TX(2) TEMP(2) little-endian -> 7 B, LI 01
 *   DL confirmation  CT 0x09, as keep-alive + RSSI(1)                      -> 8 B, LI 00
 *
 * Pure functions, no I/O, thread-safe. Byte buffers are packed MSbit first.
 */
#ifndef SIGFOX_ULFRAME_H
#define SIGFOX_ULFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UL_PREAMBLE_BITS 19
#define UL_PREAMBLE 0x55555u       /* 0b1010101010101010101, §3.12 */
#define UL_FT_BITS 13
#define UL_HEADER_BYTES 4          /* preamble + FT */
#define UL_HEADER_BITS (UL_PREAMBLE_BITS + UL_FT_BITS)
#define UL_ID_BYTES 4
#define UL_MC_MAX 4095
#define UL_MAX_PAYLOAD_BYTES 12
#define UL_MIN_CONTAINER_BYTES 8
#define UL_MAX_CONTAINER_BYTES 20
#define UL_CRC_BYTES 2
#define UL_MAX_AUTH_BYTES 5
#define UL_MAX_FRAME_BYTES (UL_HEADER_BYTES + UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES)
#define UL_KEY_BYTES 16
#define UL_CT_KEEPALIVE 0x08       /* §5.1 */
#define UL_CT_DL_CONFIRMATION 0x09 /* §5.2 */
#define UL_KEEPALIVE_PAYLOAD_BYTES 7
#define UL_DL_CONFIRMATION_PAYLOAD_BYTES 8
/* FT codewords are at least 5 bits apart, so 2 bit errors are always corrected. */
#define UL_FT_DEFAULT_MAX_DISTANCE 2

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
/* Static text for a code ("CRC mismatch", ...). Never NULL. */
const char *ul_strerror(int code);

typedef enum {
    UL_KIND_APP = 0,
    UL_KIND_KEEPALIVE,       /* control, CT 0x08 (§5.1) */
    UL_KIND_DL_CONFIRMATION, /* control, CT 0x09 (§5.2) */
} ul_kind_t;
/* "app", "keepalive", "dl_confirmation" (the JSON `kind` values); "?" when invalid. */
const char *ul_kind_name(ul_kind_t kind);

/* Decoded control payload (§5.1, §5.2), little-endian on air. */
typedef struct {
    uint16_t vdd_idle_mv;
    uint16_t vdd_tx_mv;
    int16_t temp_tenth_c;     /* 0.1 degC per unit */
    int16_t rssi_dbm;         /* dl_confirmation only: signed RSSI byte - 100 (-228..27) */
} ul_control_t;

/* One uplink message as the device composed it. */
typedef struct {
    uint32_t ep_id;           /* device ID as a number, e.g. 0xFEDCBA98 */
    uint16_t mc;              /* message counter, 12 bits */
    bool bf;                  /* bidirectional flag: downlink requested */
    bool rep;                 /* REP bit (§3.5, always 0 from conforming devices) */
    ul_kind_t kind;
    bool one_bit;             /* 1-bit message (LI 10/11, empty payload) */
    uint8_t payload_bit;      /* value when one_bit */
    uint8_t payload[UL_MAX_PAYLOAD_BYTES];
    size_t payload_len;       /* 0..12; for control: 7 (keepalive) or 8 (confirmation) */
    ul_control_t control;     /* decoded when kind != APP */
} ul_message_t;

/* FT table (Table 3-3, Annex B, docs/protocol.md). container_bytes in {8,9,12,16,20}, control
 * only with 16, rank 1..3. Returns the 13-bit FT, or 0 (no such frame type). */
uint16_t ul_ft_value(size_t container_bytes, bool control, int rank);
/* Closest known FT to a received 13-bit value (bits above 13 are ignored). Fills what it
 * found (any out pointer may be NULL); returns the Hamming distance (>= 0), or UL_ERR_FT
 * when the best distance exceeds max_distance. */
int ul_ft_match(uint16_t ft_rx, int max_distance, size_t *container_bytes, bool *control,
                int *rank);

/* Maximum-likelihood FT from 13 soft values (LLR, positive = 1, soft[0] = FT MSbit): the
 * known FT with the largest correlation sum(+-llr). NaN counts as 0. Fills what it found
 * like ul_ft_match; returns the Hamming distance between the sign decisions and that FT,
 * or UL_ERR_FT when it exceeds max_distance (UL_ERR_ARG for NULL soft). ft_rx (may be
 * NULL) receives the sign decisions. */
int ul_ft_match_soft(const float *soft, int max_distance, uint16_t *ft_rx,
                     size_t *container_bytes, bool *control, int *rank);

/* One frame type hypothesis for 13 received FT soft values (ul_ft_rank_soft). */
typedef struct {
    uint16_t ft;            /* a known FT (ul_ft_value) */
    int rank;               /* 1..3 */
    size_t container_bytes; /* 8, 9, 12, 16 or 20 */
    bool control;
    int distance; /* Hamming distance between the received sign decisions and ft */
    double score; /* correlation sum(+-llr) with ft: the larger, the likelier */
} ul_ft_hyp_t;
/* The known FTs most likely for 13 soft values (as ul_ft_match_soft, whose choice is
 * out[0]), best first (equal scores in the table's order): writes min(cap, 18) of them.
 * Returns the count, 0 for NULL arguments. */
size_t ul_ft_rank_soft(const float *soft, ul_ft_hyp_t *out, size_t cap);

/* CRC-16 poly 0x1021, init 0, xorout 0xFFFF (§3.9), over len bytes (data may be NULL
 * when len is 0). */
uint16_t ul_crc16(const uint8_t *data, size_t len);

/* UL-AUTH length in bytes for a container size and LI (Table 3-1); 0 for a size/LI pair
 * that Table 3-1 does not allow (e.g. LI 11 in a 12-byte container). */
size_t ul_auth_len(size_t container_bytes, unsigned li);
/* Container size for a message (Table 3-1), or UL_ERR_ARG / UL_ERR_FIELDS when m is not
 * encodable (payload too long, one_bit with bytes, control kind, ...). */
int ul_container_len(const ul_message_t *m);
/* Largest application payload that fits a container size (Table 3-1: 8 -> 0, 9 -> 1,
 * 12 -> 4, 16 -> 8, 20 -> 12), or UL_ERR_LENGTH for any other size. */
int ul_max_payload_len(size_t container_bytes);
/* UL-AUTH (§3.8): leading auth_len bytes of the last block of AES-128-CBC (zero IV,
 * OpenSSL) over `data` (len 1..32 bytes) repeated cyclically to fill 16 bytes, or 32 when
 * len > 16 (11- and 12-byte payloads). auth_len 1..16. Returns 0 or UL_ERR_*. */
int ul_auth_compute(const uint8_t key[UL_KEY_BYTES], const uint8_t *data, size_t len,
                    uint8_t *auth, size_t auth_len);

/* Builds the UL-CONTAINER of m (computes UL-AUTH with key). For control kinds the payload
 * is serialised from m->control (m->payload is ignored). Returns the container length
 * or UL_ERR_* (UL_ERR_LENGTH when cap is too small). */
int ul_container_build(const ul_message_t *m, const uint8_t key[UL_KEY_BYTES],
                       uint8_t *container, size_t cap);
/* Parses a container of `len` bytes; control selects the control-message FT family.
 * auth/auth_len receive the UL-AUTH field (either may be NULL; auth needs
 * UL_MAX_AUTH_BYTES). Returns 0, UL_ERR_LENGTH (len not a container size), or
 * UL_ERR_FIELDS (LI not allowed for the size, unknown control type). */
int ul_container_parse(const uint8_t *container, size_t len, bool control, ul_message_t *m,
                       uint8_t *auth, size_t *auth_len);
/* Whether two messages say the same: ID, MC, BF, kind, and the 1-bit value, the control
 * report (VDD idle/TX, temperature, and a confirmation's RSSI) or the payload bytes. */
bool ul_message_equal(const ul_message_t *a, const ul_message_t *b);
/* 1 when the container's UL-AUTH matches key, 0 when not, negative UL_ERR_* on error. */
int ul_auth_verify(const uint8_t *container, size_t len, const uint8_t key[UL_KEY_BYTES]);

/* Whole over-the-air frame for rank 1..3: preamble+FT+coded(container+CRC), packed MSbit
 * first. A single-frame (N=1) message is rank 1. Returns its length in bytes
 * (4 + container + 2) or UL_ERR_*. */
int ul_frame_encode(const ul_message_t *m, const uint8_t key[UL_KEY_BYTES], int rank,
                    uint8_t *frame, size_t cap);

/* The first 32 air bits of every frame: 19 preamble bits then the 13-bit FT (§3.12,
 * Table 3-3) as one word, its MSbit first on air. 0 when no such frame type exists
 * (ul_ft_value). */
uint32_t ul_header_word(size_t container_bytes, bool control, int rank);

/* A frame as the receiver understands it. */
typedef struct {
    int rank;                 /* 1..3; 0 after joint decoding of several replicas */
    bool control;
    uint16_t ft;              /* FT as received */
    int ft_distance;          /* Hamming distance to the matched FT */
    size_t container_len;
    uint8_t container[UL_MAX_CONTAINER_BYTES]; /* un-coded */
    uint16_t crc;             /* CRC field as received (after un-coding) */
    bool crc_ok;
    ul_message_t msg;         /* valid when the decoder returned 0 */
    uint8_t auth[UL_MAX_AUTH_BYTES];
    size_t auth_len;
} ul_frame_t;

/* The air bits of a received frame, as its transmitter sent them: header word, then its
 * container and CRC as received (crc_ok or not) coded for its rank 1..3 (ulcode.h); what
 * ul_frame_encode gives for the same message. Returns the length in bytes
 * (4 + container_len + 2) or UL_ERR_ARG (NULL, rank 0 of a jointly decoded frame),
 * UL_ERR_LENGTH (container_len not a container size, or cap too small). */
int ul_frame_air_bits(const ul_frame_t *f, uint8_t *frame, size_t cap);

/* Decodes packed hard bits that start at the preamble (has_preamble: the 19 preamble bits
 * are skipped, not checked) or at the first FT bit. nbits counts valid bits; bits after
 * the CRC are ignored. max_ft_distance: UL_FT_DEFAULT_MAX_DISTANCE is a good choice.
 * Returns 0 (CRC ok, fields parsed), UL_ERR_ARG, UL_ERR_LENGTH (too few bits for the
 * frame type), UL_ERR_FT, UL_ERR_CRC or UL_ERR_FIELDS. On UL_ERR_CRC / UL_ERR_FIELDS
 * out->rank/ft/ft_distance/container/crc are still filled. */
int ul_frame_decode(const uint8_t *bytes, size_t nbits, bool has_preamble, int max_ft_distance,
                    ul_frame_t *out);

/* The same from the demodulator's soft values (LLR, positive = 1, see ulcode.h): soft[0]
 * is the first FT bit, nbits >= 13 + ul_body_bits(container). The FT is chosen by
 * ul_ft_match_soft; the body is un-coded with ul_code_decode_soft. Returns as
 * ul_frame_decode. */
int ul_frame_decode_soft(const float *soft, size_t nbits, int max_ft_distance, ul_frame_t *out);

/* Joint decoding of one message from any subset of its replicas: body_soft[r-1] holds
 * ul_body_bits(container_len) soft values of rank r's body (the bits after its FT), or
 * NULL. Viterbi (ul_viterbi_decode_list) gives up to 4 candidates, one per end state, and
 * the first whose CRC checks is parsed (the code has no tail, so its last bits are the
 * weakest). Sets out->rank = 0, out->ft to the rank-1 FT and ft_distance 0; the caller
 * may overwrite them. Returns as ul_frame_decode (UL_ERR_ARG when no replica is given). */
int ul_frame_decode_joint(const float *const body_soft[3], size_t container_len, bool control,
                          ul_frame_t *out);

/* The CRC over n candidate bodies (container + CRC, best first, candidate i at cand + i *
 * stride): the first whose CRC checks is parsed into out; when none does, out holds the
 * first. Sets rank 0, ft = the rank-1 FT, ft_distance 0. Each candidate is one 2^-16
 * chance for garbage to pass, so keep n small. Returns as ul_frame_decode_joint. */
int ul_frame_parse_candidates(const uint8_t *cand, size_t stride, int n, size_t container_len,
                              bool control, ul_frame_t *out);

/* Fills out from un-coded container+CRC bytes (container_len + 2 bytes): container, crc,
 * crc_ok, msg, auth. Leaves rank/ft/ft_distance alone. Returns 0, UL_ERR_CRC,
 * UL_ERR_FIELDS or UL_ERR_ARG / UL_ERR_LENGTH. */
int ul_frame_parse_body(const uint8_t *body, size_t container_len, bool control,
                        ul_frame_t *out);

/* Number of bits after the FT (container + CRC) for a container size. */
static inline size_t ul_body_bits(size_t container_bytes)
{
    return (container_bytes + UL_CRC_BYTES) * 8;
}

#endif
