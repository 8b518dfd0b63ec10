/* test_dlframe: downlink frame codec against the spec's Annex C example and the renard
 * vector (values copied from test/vectors/frames.json "downlink"), BCH, whitening seed
 * rule, bad arguments. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dlframe.h"
#include "prng.h"
#include "hexutil.h"

typedef struct {
    const char *source;
    uint32_t ep_id;
    const char *key;
    uint16_t mc;
    const char *payload;
    const char *dl_auth; /* NULL: not given by the source */
    const char *dl_crc;
    const char *ecc;
    uint16_t pn9_seed; /* 0: not given */
    const char *dl_phy_content;
    const char *bitstream; /* NULL: not given */
} dl_vector_t;

static const dl_vector_t vectors[] = {
    {"spec 8.2", 0xFEDCBA98, "0123456789ABCDEF0123456789ABCDEF", 1650, "3031323334353637", "852D",
     "02", "AB839EA9", 0x01B0, "C6053038C64BF92E718AAC45063E00",
     "AAAAAAAAAAAAAAAAAAAAAAB227C6053038C64BF92E718AAC45063E00"},
    {"renard dldecode", 0x004D33DB, "479E4480FD7596D45B0122FD282DB3CF", 417, "DEADBEEF02468ACE",
     NULL, NULL, NULL, 0, "3516816CC7CE125EF60D5B6D78C1C1", NULL},
};

static void hex(const char *text, uint8_t *out, size_t len)
{
    assert_int_equal(hex_to_bytes(text, out, len), (int)len);
}

/* Parses vector v's key, payload and DL-PHY-CONTENT. */
static const dl_vector_t *load_vector(size_t v, uint8_t key[16], uint8_t payload[8],
                                      uint8_t phy[15])
{
    const dl_vector_t *t = &vectors[v];
    hex(t->key, key, 16);
    hex(t->payload, payload, 8);
    hex(t->dl_phy_content, phy, 15);
    return t;
}

static void test_vectors_encode(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
        uint8_t key[16], payload[8], phy_exp[15], phy[15], frame[DL_FRAME_BYTES];
        const dl_vector_t *t = load_vector(v, key, payload, phy_exp);
        print_message("vector %s\n", t->source);
        assert_int_equal(dl_frame_encode(t->ep_id, t->mc, payload, key, phy, frame), DL_OK);
        assert_memory_equal(phy, phy_exp, 15);
        assert_memory_equal(frame + 13, phy_exp, 15);
        if (t->bitstream) {
            uint8_t bs[DL_FRAME_BYTES];
            hex(t->bitstream, bs, DL_FRAME_BYTES);
            assert_memory_equal(frame, bs, DL_FRAME_BYTES);
        }
        if (t->dl_auth) {
            uint8_t auth[2], auth_exp[2], crc_exp;
            hex(t->dl_auth, auth_exp, 2);
            assert_int_equal(dl_auth_compute(t->ep_id, t->mc, payload, key, auth), DL_OK);
            assert_memory_equal(auth, auth_exp, 2);
            uint8_t container[10];
            memcpy(container, payload, 8);
            memcpy(container + 8, auth, 2);
            hex(t->dl_crc, &crc_exp, 1);
            assert_int_equal(dl_crc8(container, 10), crc_exp);
            /* A station without the key builds the same frame from the core's DL-AUTH. */
            uint8_t frame_auth[DL_FRAME_BYTES];
            assert_int_equal(
                dl_frame_encode_auth(t->ep_id, t->mc, payload, auth_exp, NULL, frame_auth), DL_OK);
            assert_memory_equal(frame_auth, frame, DL_FRAME_BYTES);
            assert_int_equal(dl_frame_encode_auth(t->ep_id, t->mc, payload, NULL, NULL, NULL),
                             DL_ERR_ARG);
        }
        if (t->pn9_seed)
            assert_int_equal(dl_whitening_seed(t->ep_id, t->mc), t->pn9_seed);
        /* Only phy requested, or only frame. */
        uint8_t phy2[15], frame2[DL_FRAME_BYTES];
        assert_int_equal(dl_frame_encode(t->ep_id, t->mc, payload, key, phy2, NULL), DL_OK);
        assert_memory_equal(phy2, phy_exp, 15);
        assert_int_equal(dl_frame_encode(t->ep_id, t->mc, payload, key, NULL, frame2), DL_OK);
        assert_memory_equal(frame2, frame, DL_FRAME_BYTES);
    }
}

static void test_vectors_decode(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
        uint8_t key[16], payload[8], phy[15];
        const dl_vector_t *t = load_vector(v, key, payload, phy);
        dl_decoded_t d;
        assert_int_equal(dl_frame_decode(t->ep_id, t->mc, key, phy, &d), DL_OK);
        assert_memory_equal(d.payload, payload, 8);
        assert_true(d.crc_ok);
        assert_int_equal(d.auth_status, 1);
        assert_int_equal(d.corrected_bits, 0);
        if (t->ecc) {
            uint8_t ecc[4];
            hex(t->ecc, ecc, 4);
            assert_memory_equal(d.ecc, ecc, 4);
        }
        /* No key: unchecked. */
        assert_int_equal(dl_frame_decode(t->ep_id, t->mc, NULL, phy, &d), DL_OK);
        assert_int_equal(d.auth_status, -1);
        /* Wrong key: CRC still fine, AUTH bad. */
        key[0] ^= 1;
        assert_int_equal(dl_frame_decode(t->ep_id, t->mc, key, phy, &d), DL_OK);
        assert_int_equal(d.auth_status, 0);
        /* Wrong MC: wrong de-whitening, the CRC (or AUTH) catches it. */
        key[0] ^= 1;
        int rc = dl_frame_decode(t->ep_id, (uint16_t)(t->mc + 1), key, phy, &d);
        assert_true(rc == DL_ERR_CRC || d.auth_status == 0);
    }
}

/* Every single bit error in the 15 bytes is corrected (120 positions), and so is one
 * error in every one of the 8 columns at once. */
static void test_bch_single_errors(void **state)
{
    (void)state;
    uint8_t key[16], payload[8], phy[15];
    const dl_vector_t *t = load_vector(0, key, payload, phy);
    dl_decoded_t d;
    for (int pos = 0; pos < 120; pos++) {
        uint8_t rx[15];
        memcpy(rx, phy, 15);
        rx[pos / 8] ^= (uint8_t)(0x80 >> (pos % 8));
        assert_int_equal(dl_frame_decode(t->ep_id, t->mc, key, rx, &d), DL_OK);
        assert_memory_equal(d.payload, payload, 8);
        assert_int_equal(d.auth_status, 1);
        assert_int_equal(d.corrected_bits, 1);
    }
    prng_t r;
    prng_seed(&r, 12345, 0);
    for (int trial = 0; trial < 200; trial++) {
        uint8_t rx[15];
        memcpy(rx, phy, 15);
        for (int b = 0; b < 8; b++)
            rx[prng_below(&r, 15)] ^= (uint8_t)(1u << b);
        assert_int_equal(dl_frame_decode(t->ep_id, t->mc, key, rx, &d), DL_OK);
        assert_memory_equal(d.payload, payload, 8);
        assert_int_equal(d.corrected_bits, 8);
    }
}

/* Two errors in one column exceed BCH(15,11): the decoder miscorrects into a 3-bit error.
 * CRC8 and AUTH must then reject; a frame reported crc_ok and auth ok must carry the right
 * payload. Exhaustive over the 8 columns × 105 pairs; the count is printed. */
static void test_bch_double_errors(void **state)
{
    (void)state;
    uint8_t key[16], payload[8], phy[15];
    const dl_vector_t *t = load_vector(0, key, payload, phy);
    int crc_rejected = 0, wrong_but_crc_ok = 0, total = 0;
    for (int b = 0; b < 8; b++) {
        for (int i = 0; i < 15; i++) {
            for (int j = i + 1; j < 15; j++) {
                uint8_t rx[15];
                dl_decoded_t d;
                memcpy(rx, phy, 15);
                rx[i] ^= (uint8_t)(1u << b);
                rx[j] ^= (uint8_t)(1u << b);
                int rc = dl_frame_decode(t->ep_id, t->mc, key, rx, &d);
                total++;
                if (rc == DL_ERR_CRC) {
                    crc_rejected++;
                    assert_false(d.crc_ok);
                    assert_int_equal(d.auth_status, 0);
                    continue;
                }
                assert_int_equal(rc, DL_OK);
                bool wrong = memcmp(d.payload, payload, 8) != 0;
                if (wrong) {
                    wrong_but_crc_ok++;
                    assert_int_not_equal(d.auth_status, 1); /* AUTH is the last guard */
                }
            }
        }
    }
    print_message("double errors in one column: %d cases, %d rejected by CRC8, %d passed CRC8 "
                  "with a wrong payload\n",
                  total, crc_rejected, wrong_but_crc_ok);
    assert_int_equal(total, 8 * 105);
    /* After the miscorrection the column holds 3 errors, 1 to 3 of them in the CRC's
     * 88-bit scope (three parity rows alone cannot form a code word). X^8+X^5+X^3+X^2+X+1
     * has an even number of terms, so odd weights are always caught, and this loop
     * shows the even (2-bit, 8k apart) cases are caught too: every case is rejected. */
    assert_int_equal(crc_rejected, total);
}

static void test_whitening_seed(void **state)
{
    (void)state;
    assert_int_equal(dl_whitening_seed(0xFEDCBA98, 1650), 0x1B0);
    assert_int_equal(dl_whitening_seed(3, 3), 9);
    assert_int_equal(dl_whitening_seed(0x12345678, 0), 511); /* MC 0 */
    assert_int_equal(dl_whitening_seed(0x200, 7), 511);      /* ID multiple of 512 */
    assert_int_equal(dl_whitening_seed(0x100, 2), 511);      /* product multiple of 512 */
    assert_int_equal(dl_whitening_seed(0xFFFFFFFF, 4095), (0x1FF * 0xFFF) % 512);
    /* (ID × MC) mod 512 computed in 64 bits for many values. */
    prng_t r;
    prng_seed(&r, 7, 0);
    for (int i = 0; i < 1000; i++) {
        uint32_t id = (uint32_t)(prng_next(&r) >> 32);
        uint16_t mc = (uint16_t)prng_below(&r, 4096);
        uint64_t s = ((uint64_t)id * mc) % 512;
        assert_int_equal(dl_whitening_seed(id, mc), s ? s : 511);
    }

    /* A frame whose seed is 0 is whitened with 511: de-whitening it as a device whose
     * seed is genuinely 511 (ID 0x1FF, MC 1) recovers payload and CRC. */
    uint8_t key[16] = {0}, payload[8] = {1, 2, 3, 4, 5, 6, 7, 8}, phy[15], phy511[15];
    assert_int_equal(dl_frame_encode(0x400, 1, payload, key, phy, NULL), DL_OK);
    dl_decoded_t d;
    assert_int_equal(dl_frame_decode(0x1FF, 1, NULL, phy, &d), DL_OK);
    assert_memory_equal(d.payload, payload, 8);
    assert_int_equal(d.corrected_bits, 0);
    /* And it is really whitened (seed 0 would leave the data bytes in clear). */
    assert_memory_not_equal(phy + 4, payload, 8);
    /* Same content through the 0x1FF device differs only by the AUTH/CRC/ECC bytes. */
    assert_int_equal(dl_frame_encode(0x1FF, 1, payload, key, phy511, NULL), DL_OK);
    assert_memory_equal(phy511 + 4, phy + 4, 8);
}

static void test_round_trip_random(void **state)
{
    (void)state;
    prng_t r;
    prng_seed(&r, 2024, 0);
    for (int i = 0; i < 300; i++) {
        uint8_t key[16], payload[8], phy[15], frame[DL_FRAME_BYTES];
        for (int k = 0; k < 16; k++)
            key[k] = (uint8_t)(prng_next(&r) >> 56);
        for (int k = 0; k < 8; k++)
            payload[k] = (uint8_t)(prng_next(&r) >> 56);
        uint32_t id = (uint32_t)(prng_next(&r) >> 32);
        uint16_t mc = (uint16_t)(i < 2 ? i * 4095 : (int)prng_below(&r, 4096));
        assert_int_equal(dl_frame_encode(id, mc, payload, key, phy, frame), DL_OK);
        for (int k = 0; k < 11; k++)
            assert_int_equal(frame[k], 0xAA);
        assert_int_equal(frame[11], 0xB2);
        assert_int_equal(frame[12], 0x27);
        dl_decoded_t d;
        assert_int_equal(dl_frame_decode(id, mc, key, phy, &d), DL_OK);
        assert_memory_equal(d.payload, payload, 8);
        assert_int_equal(d.auth_status, 1);
    }
}

static void test_sync_bits(void **state)
{
    (void)state;
    uint8_t bits[DL_SYNC_BITS];
    dl_sync_bits(bits);
    assert_int_equal(bits[0], 1);
    assert_int_equal(bits[89], 0);
    assert_int_equal(bits[90], 1); /* preamble ends with a 1 (§4.8) */
    unsigned ft = 0;
    for (int i = 0; i < DL_FT_BITS; i++)
        ft = (ft << 1) | bits[DL_PREAMBLE_BITS + i];
    assert_int_equal(ft, 0x1227);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    uint8_t key[16] = {0}, payload[8] = {0}, phy[15] = {0}, auth[2];
    dl_decoded_t d;
    assert_int_equal(dl_frame_encode(1, 1, NULL, key, phy, NULL), DL_ERR_ARG);
    assert_int_equal(dl_frame_encode(1, 1, payload, NULL, phy, NULL), DL_ERR_ARG);
    assert_int_equal(dl_frame_encode(1, 4096, payload, key, phy, NULL), DL_ERR_ARG);
    assert_int_equal(dl_frame_encode(1, 4095, payload, key, NULL, NULL), DL_OK);
    assert_int_equal(dl_auth_compute(1, 1, NULL, key, auth), DL_ERR_ARG);
    assert_int_equal(dl_auth_compute(1, 1, payload, NULL, auth), DL_ERR_ARG);
    assert_int_equal(dl_auth_compute(1, 1, payload, key, NULL), DL_ERR_ARG);
    assert_int_equal(dl_auth_compute(1, 9999, payload, key, auth), DL_ERR_ARG);
    assert_int_equal(dl_frame_decode(1, 1, key, NULL, &d), DL_ERR_ARG);
    assert_int_equal(dl_frame_decode(1, 1, key, phy, NULL), DL_ERR_ARG);
    assert_int_equal(dl_frame_decode(1, 5000, key, phy, &d), DL_ERR_ARG);
    assert_int_equal(dl_crc8(NULL, 5), 0);
    assert_int_equal(dl_crc8(payload, 0), 0);
    const int codes[] = {DL_OK, DL_ERR_ARG, DL_ERR_CRC, DL_ERR_CRYPTO};
    for (size_t i = 0; i < 4; i++) {
        assert_non_null(dl_strerror(codes[i]));
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(dl_strerror(codes[i]), dl_strerror(codes[j]));
    }
    assert_string_equal(dl_strerror(-99), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_encode),    cmocka_unit_test(test_vectors_decode),
        cmocka_unit_test(test_bch_single_errors), cmocka_unit_test(test_bch_double_errors),
        cmocka_unit_test(test_whitening_seed),    cmocka_unit_test(test_round_trip_random),
        cmocka_unit_test(test_sync_bits),         cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
