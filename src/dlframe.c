/* dlframe: Sigfox downlink frame codec (spec rev 1.4 §4). Licence: MIT.
 * Layout and conventions: include/dlframe.h and docs/protocol.md (the downlink sections),
 * all checked against the spec's Annex C §8.2 example. */
#include "dlframe.h"

#include <string.h>

#include <openssl/evp.h>

/* BCH(15,11) generator x^4 + x + 1 (§4.5); primitive, so the 15 single-bit error
 * syndromes x^j mod g are distinct and non-zero. */
#define BCH_GEN 0x13u
#define BCH_N 15
#define BCH_K 11

const char *dl_strerror(int code)
{
    switch (code) {
    case DL_OK:
        return "ok";
    case DL_ERR_ARG:
        return "invalid argument (NULL buffer or MC above 4095)";
    case DL_ERR_CRC:
        return "DL-CRC mismatch";
    case DL_ERR_CRYPTO:
        return "AES-128 failure in libcrypto";
    default:
        return "unknown error";
    }
}

uint16_t dl_whitening_seed(uint32_t ep_id, uint16_t mc)
{
    /* §4.6: (ID × MC) mod 512; only the low 9 bits of each factor matter. */
    uint32_t seed = ((ep_id & 0x1FFu) * (uint32_t)(mc & 0x1FFu)) & 0x1FFu;
    return seed == 0 ? 511 : (uint16_t)seed;
}

int dl_auth_compute(uint32_t ep_id, uint16_t mc, const uint8_t payload[DL_PAYLOAD_BYTES],
                    const uint8_t key[DL_KEY_BYTES], uint8_t auth[DL_AUTH_BYTES])
{
    if (!payload || !key || !auth || mc > DL_MC_MAX)
        return DL_ERR_ARG;
    /* DL-DATA_IN: ID (LSByte first) ‖ MC (LE) ‖ payload = 14 bytes, repeated cyclically
     * to fill one AES block, i.e. followed by ID[0..1] (Fig. 4-2 is missing from the
     * seed; this layout reproduces Annex C's DL-AUTH 0x852D). */
    uint8_t block[16], out[32];
    for (int i = 0; i < 4; i++)
        block[i] = (uint8_t)(ep_id >> (8 * i));
    block[4] = (uint8_t)(mc & 0xFF);
    block[5] = (uint8_t)(mc >> 8);
    memcpy(block + 6, payload, DL_PAYLOAD_BYTES);
    block[14] = block[0];
    block[15] = block[1];

    int ret = DL_ERR_CRYPTO, len = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return DL_ERR_CRYPTO;
    /* One block: ECB equals CBC with a zero IV. */
    if (EVP_EncryptInit_ex(ctx, EVP_aes_128_ecb(), NULL, key, NULL) == 1 &&
        EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
        EVP_EncryptUpdate(ctx, out, &len, block, sizeof block) == 1 && len == 16) {
        memcpy(auth, out, DL_AUTH_BYTES); /* §4.3 step 3: the two MSBytes */
        ret = DL_OK;
    }
    EVP_CIPHER_CTX_free(ctx);
    return ret;
}

uint8_t dl_crc8(const uint8_t *data, size_t len)
{
    uint8_t crc = 0;
    if (!data)
        return 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int b = 0; b < 8; b++) /* X^8 + X^5 + X^3 + X^2 + X + 1 = 0x12F */
            crc = (crc & 0x80) ? (uint8_t)((crc << 1) ^ 0x2F) : (uint8_t)(crc << 1);
    }
    return crc;
}

/* Remainder of a 15-bit column polynomial (bit k = coefficient of x^k) mod BCH_GEN. */
static unsigned bch_mod(unsigned poly)
{
    for (int d = BCH_N - 1; d >= 4; d--)
        if (poly & (1u << d))
            poly ^= BCH_GEN << (d - 4);
    return poly;
}

/* Column b of the 15 bytes as a polynomial. */
static unsigned column_get(const uint8_t bytes[DL_PHY_BYTES], int b)
{
    unsigned poly = 0;
    for (int k = 0; k < BCH_N; k++)
        poly |= (unsigned)((bytes[k] >> b) & 1u) << k;
    return poly;
}

/* Fills ECC bytes 0..3 from data bytes 4..14 (§4.5). */
static void bch_encode(uint8_t bytes[DL_PHY_BYTES])
{
    memset(bytes, 0, DL_ECC_BYTES);
    for (int b = 0; b < 8; b++) {
        unsigned parity = bch_mod(column_get(bytes, b));
        for (int k = 0; k < DL_ECC_BYTES; k++)
            bytes[k] |= (uint8_t)(((parity >> k) & 1u) << b);
    }
}

/* Corrects at most one bit per column in place; returns the number of bits flipped. */
static int bch_correct(uint8_t bytes[DL_PHY_BYTES])
{
    int fixed = 0;
    for (int b = 0; b < 8; b++) {
        unsigned syndrome = bch_mod(column_get(bytes, b));
        if (!syndrome)
            continue;
        for (int k = 0; k < BCH_N; k++) {
            if (bch_mod(1u << k) == syndrome) {
                bytes[k] ^= (uint8_t)(1u << b);
                fixed++;
                break;
            }
        }
    }
    return fixed;
}

/* XORs the 15 bytes (MSbit first) with the PN9 whitening stream (§4.6). The register
 * shifts towards bit 0 with feedback bit8 <- bit0 ^ bit5 (x^9 + x^4 + 1); after every 8
 * shifts its whole 9-bit value gives the next 9 stream bits, bit 8 first. This word-wise
 * stepping is the only variant that reproduces Annex C's DL-PHY-CONTENT. */
static void pn9_whiten(uint8_t bytes[DL_PHY_BYTES], uint16_t seed)
{
    unsigned reg = seed & 0x1FFu, word = 0;
    int left = 0; /* stream bits remaining in word */
    for (int i = 0; i < DL_PHY_BYTES; i++) {
        uint8_t mask = 0;
        for (int j = 7; j >= 0; j--) {
            if (left == 0) {
                for (int s = 0; s < 8; s++) {
                    unsigned fb = (reg ^ (reg >> 5)) & 1u;
                    reg = (reg >> 1) | (fb << 8);
                }
                word = reg;
                left = 9;
            }
            left--;
            mask |= (uint8_t)(((word >> left) & 1u) << j);
        }
        bytes[i] ^= mask;
    }
}

void dl_sync_bits(uint8_t bits[DL_SYNC_BITS])
{
    /* §4.8: 91 alternating bits ending in 1, so bit i is 1 for even i. */
    for (int i = 0; i < DL_PREAMBLE_BITS; i++)
        bits[i] = (uint8_t)((i & 1) == 0);
    for (int i = 0; i < DL_FT_BITS; i++) /* §4.7 */
        bits[DL_PREAMBLE_BITS + i] = (uint8_t)((DL_FT >> (DL_FT_BITS - 1 - i)) & 1);
}

int dl_frame_encode_auth(uint32_t ep_id, uint16_t mc, const uint8_t payload[DL_PAYLOAD_BYTES],
                         const uint8_t auth[DL_AUTH_BYTES], uint8_t phy[DL_PHY_BYTES],
                         uint8_t frame[DL_FRAME_BYTES])
{
    if (!payload || !auth || mc > DL_MC_MAX)
        return DL_ERR_ARG;
    uint8_t buf[DL_PHY_BYTES];
    memcpy(buf + DL_ECC_BYTES, payload, DL_PAYLOAD_BYTES);
    memcpy(buf + DL_ECC_BYTES + DL_PAYLOAD_BYTES, auth, DL_AUTH_BYTES);
    buf[DL_PHY_BYTES - 1] = dl_crc8(buf + DL_ECC_BYTES, DL_PAYLOAD_BYTES + DL_AUTH_BYTES);
    bch_encode(buf);
    pn9_whiten(buf, dl_whitening_seed(ep_id, mc));
    if (phy)
        memcpy(phy, buf, DL_PHY_BYTES);
    if (frame) {
        uint8_t sync[DL_SYNC_BITS];
        dl_sync_bits(sync);
        memset(frame, 0, DL_FRAME_BYTES);
        for (int i = 0; i < DL_SYNC_BITS; i++)
            frame[i / 8] |= (uint8_t)(sync[i] << (7 - i % 8));
        /* 104 sync bits are exactly 13 bytes, so the content is byte-aligned. */
        memcpy(frame + DL_SYNC_BITS / 8, buf, DL_PHY_BYTES);
    }
    return DL_OK;
}

int dl_frame_encode(uint32_t ep_id, uint16_t mc, const uint8_t payload[DL_PAYLOAD_BYTES],
                    const uint8_t key[DL_KEY_BYTES], uint8_t phy[DL_PHY_BYTES],
                    uint8_t frame[DL_FRAME_BYTES])
{
    if (!payload || !key || mc > DL_MC_MAX)
        return DL_ERR_ARG;
    uint8_t auth[DL_AUTH_BYTES];
    int rc = dl_auth_compute(ep_id, mc, payload, key, auth);
    if (rc)
        return rc;
    return dl_frame_encode_auth(ep_id, mc, payload, auth, phy, frame);
}

int dl_frame_decode(uint32_t ep_id, uint16_t mc, const uint8_t *key,
                    const uint8_t phy[DL_PHY_BYTES], dl_decoded_t *out)
{
    if (!phy || !out || mc > DL_MC_MAX)
        return DL_ERR_ARG;
    memset(out, 0, sizeof *out);
    uint8_t buf[DL_PHY_BYTES];
    memcpy(buf, phy, DL_PHY_BYTES);
    pn9_whiten(buf, dl_whitening_seed(ep_id, mc)); /* XOR is its own inverse */
    out->corrected_bits = bch_correct(buf);
    memcpy(out->ecc, buf, DL_ECC_BYTES);
    memcpy(out->payload, buf + DL_ECC_BYTES, DL_PAYLOAD_BYTES);
    memcpy(out->auth, buf + DL_ECC_BYTES + DL_PAYLOAD_BYTES, DL_AUTH_BYTES);
    out->crc = buf[DL_PHY_BYTES - 1];
    out->crc_ok = dl_crc8(buf + DL_ECC_BYTES, DL_PAYLOAD_BYTES + DL_AUTH_BYTES) == out->crc;
    out->auth_status = -1;
    if (key) {
        uint8_t auth[DL_AUTH_BYTES];
        int rc = dl_auth_compute(ep_id, mc, out->payload, key, auth);
        if (rc)
            return rc;
        out->auth_status = out->crc_ok && memcmp(auth, out->auth, DL_AUTH_BYTES) == 0;
    }
    return out->crc_ok ? DL_OK : DL_ERR_CRC;
}
