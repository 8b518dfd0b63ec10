/* dlframe: Sigfox downlink frame codec (spec rev 1.4 §4, DESIGN.md). Licence: MIT.
 *
 *   | DL-Pr 91 b (1010..1) | FT 13 b = 0x1227 | DL-PHY-CONTENT 15 B (whitened)        |
 *   DL-PHY-CONTENT before whitening = ECC(4) ‖ PAYLOAD(8) ‖ DL-AUTH(2) ‖ DL-CRC(1),
 *   BCH(15,11) per bit column, PN9 whitening seeded with (ID × MC) mod 512 (0 -> 511).
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
#define DL_PHY_BYTES 15
#define DL_PREAMBLE_BITS 91
#define DL_FT 0x1227
#define DL_FT_BITS 13
#define DL_FRAME_BITS (DL_PREAMBLE_BITS + DL_FT_BITS + DL_PHY_BYTES * 8) /* 224 */
#define DL_FRAME_BYTES (DL_FRAME_BITS / 8)                                 /* 28 */

enum dl_error {
    DL_OK = 0,
    DL_ERR_ARG = -1,
    DL_ERR_CRC = -2,      /* CRC8 mismatch after correction */
    DL_ERR_CRYPTO = -3,
};
const char *dl_strerror(int code);

/* Whitening seed for a device and message counter: (ID × MC) mod 512, 0 -> 511. */
uint16_t dl_whitening_seed(uint32_t ep_id, uint16_t mc);
/* DL-AUTH (§4.3): first 2 bytes of AES-128 over DL-DATA_IN. */
int dl_auth_compute(uint32_t ep_id, uint16_t mc, const uint8_t payload[DL_PAYLOAD_BYTES],
                    const uint8_t key[16], uint8_t auth[DL_AUTH_BYTES]);
/* CRC8 poly 0x2F, init 0 (§4.4). */
uint8_t dl_crc8(const uint8_t *data, size_t len);

/* Builds DL-PHY-CONTENT and the whole 28-byte frame (frame may be NULL). Returns 0 or DL_ERR_*. */
int dl_frame_encode(uint32_t ep_id, uint16_t mc, const uint8_t payload[DL_PAYLOAD_BYTES],
                    const uint8_t key[16], uint8_t phy[DL_PHY_BYTES],
                    uint8_t frame[DL_FRAME_BYTES]);

typedef struct {
    uint8_t payload[DL_PAYLOAD_BYTES];
    uint8_t auth[DL_AUTH_BYTES];
    uint8_t crc;
    bool crc_ok;
    int auth_status;          /* 1 ok, 0 bad, -1 unchecked (no key) */
    int corrected_bits;       /* bits fixed by BCH */
} dl_decoded_t;

/* De-whitens, BCH-corrects, checks CRC8 and (key != NULL) DL-AUTH. Returns 0 when the
 * CRC is good, DL_ERR_CRC when not (out still filled), other DL_ERR_* on bad arguments. */
int dl_frame_decode(uint32_t ep_id, uint16_t mc, const uint8_t *key,
                    const uint8_t phy[DL_PHY_BYTES], dl_decoded_t *out);

#endif
