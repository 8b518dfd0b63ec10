/* dlframe: Sigfox downlink frame codec (spec rev 1.4 §4, docs/protocol.md). Licence: MIT.
 *
 * Over-the-air downlink frame, MSbit first, 224 bits = 28 bytes (spec §4.1, §4.7, §4.8):
 *
 *   | DL-Pr 91 b (1010..1) | FT 13 b = 0x1227 | DL-PHY-CONTENT 15 B (whitened)        |
 *   AA AA AA AA AA AA AA AA AA AA AA B2 27 ‖ 15 bytes
 *
 *   DL-PHY-CONTENT before whitening = ECC(4) ‖ PAYLOAD(8) ‖ DL-AUTH(2) ‖ DL-CRC(1):
 *   - DL-AUTH (§4.3): first 2 bytes of AES-128(Ka, DL-DATA_IN), DL-DATA_IN =
 *     ID (LSByte first) ‖ MC (2 B little-endian) ‖ PAYLOAD, 14 bytes repeated cyclically
 *     to one 16-byte block (i.e. followed by ID[0..1]);
 *   - DL-CRC (§4.4): CRC-8 poly 0x2F, init 0, no final XOR, over PAYLOAD ‖ DL-AUTH;
 *   - ECC (§4.5): BCH(15,11) per bit column b (0..7): bit b of byte k (k = 0..14) is the
 *     coefficient of x^k; bytes 0..3 are parity = data mod (x^4 + x + 1), so each column
 *     corrects one bit error;
 *   - whitening (§4.6): XOR with the PN9 (x^9 + x^4 + 1) sequence seeded with
 *     (ID × MC) mod 512 (0 -> 511), in the word-wise form of docs/protocol.md
 *     ("Downlink whitening: seed and word-wise PN9").
 *
 * Pure functions, no I/O; thread-safe.
 */
#ifndef SIGFOX_DLFRAME_H
#define SIGFOX_DLFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DL_PAYLOAD_BYTES 8
#define DL_AUTH_BYTES 2
#define DL_KEY_BYTES 16
#define DL_ECC_BYTES 4
#define DL_PHY_BYTES 15
#define DL_PREAMBLE_BITS 91
#define DL_FT 0x1227
#define DL_FT_BITS 13
#define DL_SYNC_BITS (DL_PREAMBLE_BITS + DL_FT_BITS)                     /* 104 */
#define DL_FRAME_BITS (DL_PREAMBLE_BITS + DL_FT_BITS + DL_PHY_BYTES * 8) /* 224 */
#define DL_FRAME_BYTES (DL_FRAME_BITS / 8)                               /* 28 */
#define DL_MC_MAX 4095                                                   /* MC is 12 bits (§3.6) */

enum dl_error {
    DL_OK = 0,
    DL_ERR_ARG = -1,    /* NULL pointer or MC > 4095 */
    DL_ERR_CRC = -2,    /* CRC8 mismatch after correction */
    DL_ERR_CRYPTO = -3, /* libcrypto failure */
};
/* Static text for a dl_error code ("unknown error" for anything else). */
const char *dl_strerror(int code);

/* Whitening seed for a device and message counter: (ID × MC) mod 512, 0 -> 511 (§4.6). */
uint16_t dl_whitening_seed(uint32_t ep_id, uint16_t mc);

/* DL-AUTH (§4.3): first 2 bytes of AES-128 (OpenSSL) over DL-DATA_IN.
 * ep_id: device ID as a number (0xFEDCBA98); mc: 0..4095 (the UL message's MC);
 * key: 16-byte device key. Returns 0, DL_ERR_ARG or DL_ERR_CRYPTO. */
int dl_auth_compute(uint32_t ep_id, uint16_t mc, const uint8_t payload[DL_PAYLOAD_BYTES],
                    const uint8_t key[DL_KEY_BYTES], uint8_t auth[DL_AUTH_BYTES]);

/* CRC8 poly 0x2F, init 0, no final XOR, MSbit first (§4.4). data may be NULL if len 0. */
uint8_t dl_crc8(const uint8_t *data, size_t len);

/* Builds DL-PHY-CONTENT (15 whitened bytes) and the whole 28-byte over-the-air frame
 * (preamble + FT + DL-PHY-CONTENT). phy or frame may be NULL when not wanted.
 * Returns 0, DL_ERR_ARG (NULL payload/key, mc > 4095) or DL_ERR_CRYPTO. */
int dl_frame_encode(uint32_t ep_id, uint16_t mc, const uint8_t payload[DL_PAYLOAD_BYTES],
                    const uint8_t key[DL_KEY_BYTES], uint8_t phy[DL_PHY_BYTES],
                    uint8_t frame[DL_FRAME_BYTES]);

/* The same with DL-AUTH computed elsewhere (the network core holds the device key and
 * sends DL-AUTH to a station that has none). Returns 0 or DL_ERR_ARG. */
int dl_frame_encode_auth(uint32_t ep_id, uint16_t mc, const uint8_t payload[DL_PAYLOAD_BYTES],
                         const uint8_t auth[DL_AUTH_BYTES], uint8_t phy[DL_PHY_BYTES],
                         uint8_t frame[DL_FRAME_BYTES]);

typedef struct {
    uint8_t payload[DL_PAYLOAD_BYTES];
    uint8_t auth[DL_AUTH_BYTES];
    uint8_t crc; /* received DL-CRC (after correction) */
    uint8_t ecc[DL_ECC_BYTES];
    bool crc_ok;
    int auth_status;    /* 1 ok, 0 bad, -1 unchecked (no key) */
    int corrected_bits; /* bits fixed by BCH (0..8, one per column at most) */
} dl_decoded_t;

/* De-whitens, BCH-corrects (one bit per column), checks CRC8 and, when key != NULL,
 * DL-AUTH. phy: the 15 received DL-PHY-CONTENT bytes. Returns 0 when the CRC is good,
 * DL_ERR_CRC when not (out still filled, auth_status then 0 when a key was given),
 * DL_ERR_ARG on NULL phy/out or mc > 4095, DL_ERR_CRYPTO on libcrypto failure. */
int dl_frame_decode(uint32_t ep_id, uint16_t mc, const uint8_t *key,
                    const uint8_t phy[DL_PHY_BYTES], dl_decoded_t *out);

/* The 104 sync bits (91-bit preamble + 13-bit FT), MSbit first, as 0/1 values in
 * bits[0..103]; for receivers correlating against the known start of a frame. */
void dl_sync_bits(uint8_t bits[DL_SYNC_BITS]);

#endif
