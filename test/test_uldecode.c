/* test_uldecode: soft-bit frame decoding on the spec's Annex C and renard frames (copied
 * from test/vectors/frames.json), FT errors within and beyond the bound, CRC and length
 * rejects, NaN erasures, soft values kept for combining, UL-AUTH with a key store, sync
 * words for the demodulator, the chase decoder's corrections and what it refuses. Licence: MIT. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hexutil.h"
#include "keys.h"
#include "uldecode.h"
#include "ulframe.h"

typedef struct {
    const char *source;
    const char *bitstream; /* whole frame from the preamble */
    uint32_t ep_id;
    uint16_t mc;
    const char *payload;
    int rank;
    uint16_t ft;
    size_t container_len;
    bool control;
    const char *key;
} ul_vector_t;

static const ul_vector_t vectors[] = {
    {"spec 8.1", "AAAAA611067298BADCFE000102030405060796E7CDFB", 0xFEDCBA98, 1650,
     "0001020304050607", 1, 0x611, 16, false, "0123456789ABCDEF0123456789ABCDEF"},
    {"spec 8.1", "AAAAA6BF04D772C905BE8001C3824706C485B82DD878", 0xFEDCBA98, 1650,
     "0001020304050607", 2, 0x6BF, 16, false, "0123456789ABCDEF0123456789ABCDEF"},
    {"spec 8.1", "AAAAA72C07EE3E946BC180014283C5044786735E3E85", 0xFEDCBA98, 1650,
     "0001020304050607", 3, 0x72C, 16, false, "0123456789ABCDEF0123456789ABCDEF"},
    {"spec 8.2 confirmation", "AAAAAF67067398BADCFE09E40CCC10FA00E6BF9D810E", 0xFEDCBA98, 1651,
     NULL, 1, 0xF67, 16, true, "0123456789ABCDEF0123456789ABCDEF"},
    {"renard", "AAAAA35F01A0DB334D00ABAD1DEADC32758A", 0x004D33DB, 416, "ABAD1DEA", 1, 0x35F, 12,
     false, "479E4480FD7596D45B0122FD282DB3CF"},
    {"renard", "AAAAA5980118806638C0D490D4650527D22D", 0x004D33DB, 416, "ABAD1DEA", 2, 0x598, 12,
     false, "479E4480FD7596D45B0122FD282DB3CF"},
    {"renard", "AAAAA5A301C8EDFF9E4081465A906B3EE8E8", 0x004D33DB, 416, "ABAD1DEA", 3, 0x5A3, 12,
     false, "479E4480FD7596D45B0122FD282DB3CF"},
    {"renard 1-bit", "AAAAA06BE1A1DB334D0000B0C090", 0x004D33DB, 417, "", 1, 0x06B, 8, false,
     "479E4480FD7596D45B0122FD282DB3CF"},
};
#define NVEC (sizeof vectors / sizeof vectors[0])

/* Soft values (±mag) of a vector's bits after the preamble; returns how many. */
static size_t vector_soft(const ul_vector_t *v, float mag, float *soft, size_t cap)
{
    uint8_t bytes[UL_MAX_FRAME_BYTES];
    int len = hex_to_bytes(v->bitstream, bytes, sizeof bytes);
    assert_true(len > UL_HEADER_BYTES);
    size_t nbits = (size_t)len * 8 - UL_PREAMBLE_BITS;
    assert_true(nbits <= cap);
    for (size_t i = 0; i < nbits; i++)
        soft[i] = ul_bit_get(bytes, UL_PREAMBLE_BITS + i) ? mag : -mag;
    return nbits;
}

static void test_vectors(void **state)
{
    (void)state;
    for (size_t k = 0; k < NVEC; k++) {
        const ul_vector_t *v = &vectors[k];
        float soft[300];
        size_t n = vector_soft(v, 3.0f, soft, 300);
        uldecode_result_t r;
        assert_int_equal(uldecode_frame(soft, n, UL_FT_DEFAULT_MAX_DISTANCE, &r), 0);
        assert_int_equal(r.status, ULDEC_OK);
        assert_true(r.frame.crc_ok);
        assert_int_equal(r.frame.rank, v->rank);
        assert_int_equal(r.frame.ft, v->ft);
        assert_int_equal(r.frame.ft_distance, 0);
        assert_int_equal(r.frame.container_len, v->container_len);
        assert_int_equal(r.frame.control, v->control);
        assert_int_equal(r.frame.msg.ep_id, v->ep_id);
        assert_int_equal(r.frame.msg.mc, v->mc);
        if (v->payload) {
            uint8_t p[UL_MAX_PAYLOAD_BYTES];
            int plen = hex_to_bytes(v->payload, p, sizeof p);
            if (v->container_len == 8) {
                assert_true(r.frame.msg.one_bit);
                assert_int_equal(r.frame.msg.payload_bit, 1);
            } else {
                assert_int_equal(r.frame.msg.payload_len, (size_t)plen);
                assert_memory_equal(r.frame.msg.payload, p, (size_t)plen);
            }
        } else {
            assert_int_equal(r.frame.msg.kind, UL_KIND_DL_CONFIRMATION);
            assert_int_equal(r.frame.msg.control.vdd_idle_mv, 3300);
        }
        /* Body soft values are kept as received, for combining. */
        assert_true(r.body_valid);
        assert_int_equal(r.body_bits, ul_body_bits(v->container_len));
        assert_memory_equal(r.body_soft, soft + UL_FT_BITS, r.body_bits * sizeof(float));
        /* Trailing soft values beyond the frame are ignored. */
        for (size_t i = n; i < n + 20; i++)
            soft[i] = (i & 1) ? 1.0f : -1.0f;
        assert_int_equal(uldecode_frame(soft, n + 20, 2, &r), 0);
    }
}

/* One or two wrong FT signs are corrected; the soft match picks the right FT even when
 * a wrong bit is confident, as long as the hard distance stays within the bound. */
static void test_ft_errors(void **state)
{
    (void)state;
    const ul_vector_t *v = &vectors[0];
    float soft[300];
    size_t n = vector_soft(v, 3.0f, soft, 300);
    uldecode_result_t r;
    soft[2] = -soft[2];
    assert_int_equal(uldecode_frame(soft, n, 2, &r), 0);
    assert_int_equal(r.frame.ft_distance, 1);
    assert_int_equal(r.frame.rank, 1);
    soft[9] = -soft[9];
    assert_int_equal(uldecode_frame(soft, n, 2, &r), 0);
    assert_int_equal(r.frame.ft_distance, 2);
    assert_int_equal(r.frame.ft, 0x611 ^ (1 << 10) ^ (1 << 3));
    /* The same with a bound of 1: rejected for the FT. */
    assert_int_equal(uldecode_frame(soft, n, 1, &r), UL_ERR_FT);
    assert_int_equal(r.status, ULDEC_REJECT_FT);
    assert_false(r.body_valid);
    /* An FT at least 3 bits from every known one (found by search) is rejected. */
    uint16_t far = 0;
    for (uint16_t c = 0; c < 8192; c++) {
        if (ul_ft_match(c, 2, NULL, NULL, NULL) < 0) {
            far = c;
            break;
        }
    }
    for (int i = 0; i < UL_FT_BITS; i++)
        soft[i] = (far >> (UL_FT_BITS - 1 - i)) & 1 ? 2.0f : -2.0f;
    assert_int_equal(uldecode_frame(soft, n, 2, &r), UL_ERR_FT);
    assert_int_equal(r.status, ULDEC_REJECT_FT);
    assert_int_equal(r.frame.ft, far);
}

static void test_crc_and_length(void **state)
{
    (void)state;
    const ul_vector_t *v = &vectors[1]; /* rank 2 */
    float soft[300];
    size_t n = vector_soft(v, 3.0f, soft, 300);
    uldecode_result_t r;
    soft[40] = -soft[40];
    assert_int_equal(uldecode_frame(soft, n, 2, &r), UL_ERR_CRC);
    assert_int_equal(r.status, ULDEC_REJECT_CRC);
    assert_false(r.frame.crc_ok);
    assert_int_equal(r.frame.rank, 2);
    assert_true(r.body_valid); /* readable FT: kept for combining */
    assert_true(r.body_soft[40 - UL_FT_BITS] == soft[40]);
    soft[40] = -soft[40];
    /* One soft value short of the frame. */
    assert_int_equal(uldecode_frame(soft, n - 1, 2, &r), UL_ERR_LENGTH);
    assert_int_equal(r.status, ULDEC_REJECT_LENGTH);
    assert_false(r.body_valid);
    assert_int_equal(uldecode_frame(soft, 5, 2, &r), UL_ERR_LENGTH);
    /* NaN is an erasure: a weak NaN-free majority still decodes. */
    soft[0] = NAN;
    assert_int_equal(uldecode_frame(soft, n, 2, &r), 0);
    assert_false(isnan(r.body_soft[0]));
    assert_int_equal(uldecode_frame(NULL, n, 2, &r), UL_ERR_ARG);
    assert_int_equal(uldecode_frame(soft, n, -1, &r), UL_ERR_ARG);
    assert_int_equal(uldecode_frame(soft, n, 2, NULL), UL_ERR_ARG);
    assert_string_equal(uldecode_status_name(ULDEC_REJECT_CRC), "crc");
    assert_string_equal(uldecode_status_name(ULDEC_OK), "ok");
}

static void test_auth(void **state)
{
    (void)state;
    const ul_vector_t *v = &vectors[0];
    float soft[300];
    size_t n = vector_soft(v, 3.0f, soft, 300);
    uldecode_result_t r;
    assert_int_equal(uldecode_frame(soft, n, 2, &r), 0);
    assert_int_equal(uldecode_auth(&r.frame, NULL), RX_AUTH_UNCHECKED);
    keystore_t *ks = keystore_create();
    assert_non_null(ks);
    assert_int_equal(uldecode_auth(&r.frame, ks), RX_AUTH_UNKNOWN_DEVICE);
    uint8_t key[16];
    assert_int_equal(hex_to_bytes(v->key, key, 16), 16);
    assert_int_equal(keystore_add(ks, v->ep_id, key), 0);
    assert_int_equal(uldecode_auth(&r.frame, ks), RX_AUTH_OK);
    key[0] ^= 1;
    assert_int_equal(keystore_add(ks, v->ep_id, key), 0);
    assert_int_equal(uldecode_auth(&r.frame, ks), RX_AUTH_BAD);
    /* A frame that failed its CRC is never checked. */
    r.frame.crc_ok = false;
    assert_int_equal(uldecode_auth(&r.frame, ks), RX_AUTH_UNCHECKED);
    keystore_destroy(ks);
}

/* Soft values of vector v (magnitude 3) with the body bits at pos[0..n) flipped to a
 * weak wrong value, the way a wrong coherent symbol (two adjacent bits) or an inverted
 * run (one bit at each end) reaches the decoder. */
static size_t damaged_soft(const ul_vector_t *v, const size_t *pos, int n, float *soft)
{
    size_t nsoft = vector_soft(v, 3.0f, soft, 300);
    for (int i = 0; i < n; i++) {
        size_t k = UL_FT_BITS + pos[i];
        soft[k] = soft[k] > 0 ? -0.4f : 0.4f;
    }
    return nsoft;
}

static keystore_t *store_with(const ul_vector_t *v, bool right_key)
{
    keystore_t *ks = keystore_create();
    assert_non_null(ks);
    uint8_t key[16];
    assert_int_equal(hex_to_bytes(v->key, key, 16), 16);
    key[5] ^= right_key ? 0 : 0x10;
    assert_int_equal(keystore_add(ks, v->ep_id, key), 0);
    return ks;
}

static void test_chase(void **state)
{
    (void)state;
    for (size_t k = 0; k < NVEC; k++) {
        const ul_vector_t *v = &vectors[k];
        keystore_t *ks = store_with(v, true), *wrong = store_with(v, false),
                   *empty = keystore_create();
        assert_non_null(empty);
        size_t body = ul_body_bits(v->container_len);
        /* one wrong symbol; a wrong symbol and an inverted run's end; two wrong symbols
           (4 bits, the most the chase flips) */
        const size_t one[] = {body / 2, body / 2 + 1};
        const size_t two[] = {3, 4, body - 7};
        const size_t four[] = {body / 3, body / 3 + 1, body - 2, body - 1};
        const struct {
            const size_t *pos;
            int n;
        } cases[] = {{one, 2}, {two, 3}, {four, 4}};
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            float soft[300];
            size_t n = damaged_soft(v, cases[c].pos, cases[c].n, soft);
            uldecode_result_t r, before;
            assert_int_equal(uldecode_frame(soft, n, 2, &r), UL_ERR_CRC);
            memcpy(&before, &r, sizeof r);
            /* without the device's key nothing is corrected, and the result is untouched */
            assert_int_equal(uldecode_chase(&r, empty, ULDECODE_CHASE_DEFAULT_TRIALS), 0);
            assert_int_equal(uldecode_chase(&r, wrong, ULDECODE_CHASE_DEFAULT_TRIALS), 0);
            assert_int_equal(uldecode_chase(&r, ks, 0), 0); /* no budget, no trial */
            if (c == 0) /* the right pattern (two 0.4 bits) comes third, after each alone */
                assert_int_equal(uldecode_chase(&r, ks, 2), 0);
            assert_memory_equal(&r, &before, sizeof r);
            assert_int_equal(uldecode_chase(&r, ks, c == 0 ? 3 : ULDECODE_CHASE_DEFAULT_TRIALS),
                             cases[c].n);
            assert_int_equal(r.status, ULDEC_OK);
            assert_int_equal(r.corrected_bits, cases[c].n);
            assert_true(r.frame.crc_ok);
            assert_int_equal(r.frame.rank, v->rank);
            assert_int_equal(r.frame.ft, v->ft);
            assert_int_equal(r.frame.msg.ep_id, v->ep_id);
            assert_int_equal(r.frame.msg.mc, v->mc);
            assert_int_equal(uldecode_auth(&r.frame, ks), RX_AUTH_OK);
            /* an OK frame is not chased again */
            assert_int_equal(uldecode_chase(&r, ks, ULDECODE_CHASE_DEFAULT_TRIALS), 0);
        }
        /* Wrong bits that are not the weakest are beyond the chase: it tries the cheapest
           patterns only (here 20 weak right bits hide the two confident wrong ones). */
        float soft[300];
        size_t n = vector_soft(v, 3.0f, soft, 300);
        for (size_t i = 0; i < 20; i++)
            soft[UL_FT_BITS + 2 + 3 * i] *= 0.1f;
        soft[UL_FT_BITS + body - 4] = -soft[UL_FT_BITS + body - 4];
        soft[UL_FT_BITS + body - 3] = -soft[UL_FT_BITS + body - 3];
        uldecode_result_t r;
        assert_int_equal(uldecode_frame(soft, n, 2, &r), UL_ERR_CRC);
        assert_int_equal(uldecode_chase(&r, ks, ULDECODE_CHASE_DEFAULT_TRIALS), 0);
        assert_int_equal(r.status, ULDEC_REJECT_CRC);
        keystore_destroy(ks);
        keystore_destroy(wrong);
        keystore_destroy(empty);
    }
    /* Noise: random soft bodies under a readable FT never pass (each would need the CRC,
       a stored device ID and its UL-AUTH). */
    const ul_vector_t *v = &vectors[0];
    keystore_t *ks = store_with(v, true);
    srand(7);
    for (int t = 0; t < 2000; t++) {
        float soft[300];
        size_t n = vector_soft(v, 3.0f, soft, 300);
        for (size_t i = UL_FT_BITS; i < n; i++)
            soft[i] = (float)(rand() % 2001 - 1000) / 250.0f;
        uldecode_result_t r;
        if (uldecode_frame(soft, n, 2, &r) != UL_ERR_CRC)
            continue;
        assert_int_equal(uldecode_chase(&r, ks, ULDECODE_CHASE_DEFAULT_TRIALS), 0);
    }
    uldecode_result_t r = {0};
    assert_int_equal(uldecode_chase(NULL, ks, ULDECODE_CHASE_DEFAULT_TRIALS), UL_ERR_ARG);
    assert_int_equal(uldecode_chase(&r, NULL, ULDECODE_CHASE_DEFAULT_TRIALS), UL_ERR_ARG);
    assert_int_equal(uldecode_chase(&r, ks, ULDECODE_CHASE_DEFAULT_TRIALS), 0); /* not a CRC-failed frame */
    keystore_destroy(ks);
}

static void test_sync_words(void **state)
{
    (void)state;
    demod_sync_t s[32];
    assert_int_equal(uldecode_sync_words(s, 10), 0);
    assert_int_equal(uldecode_sync_words(s, 32), 18);
    for (int i = 0; i < 18; i++) {
        assert_int_equal(s[i].word >> 13, 0x55555);
        size_t len = 0;
        bool control = false;
        int rank = 0;
        assert_int_equal(ul_ft_match(s[i].word & 0x1FFF, 0, &len, &control, &rank), 0);
        assert_int_equal(s[i].body_bits, ul_body_bits(len));
    }
    /* The rank-3 control FT has its 13th bit set (docs/protocol.md). */
    assert_int_equal(s[17].word, 0x55555u << 13 | 0x11BE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),        cmocka_unit_test(test_ft_errors),
        cmocka_unit_test(test_crc_and_length), cmocka_unit_test(test_auth),
        cmocka_unit_test(test_sync_words),     cmocka_unit_test(test_chase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
