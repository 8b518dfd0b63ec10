/* test_ulcode: replica coding against the spec's Annex C frames and seeds/003, and the joint
 * soft Viterbi decoder against per-replica hard decoding (seeded errors and AWGN).
 * Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "hexutil.h"
#include "prng.h"
#include "ulcode.h"
#include "ulframe.h"

/* Test data (prng.h), seeded per test. */
static prng_t rng_state;
static uint32_t rng(void)
{
    return (uint32_t)(prng_next(&rng_state) >> 32);
}

static double uniform(void)
{
    return (rng() + 0.5) / 4294967296.0;
}

static double gauss(void)
{
    double u1 = uniform();
    double u2 = uniform();
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* ---- coding ---- */

/* Annex C: UL-PHY-CONTENT of frames #1, #2, #3 (container + CRC, after the FT). */
static void test_spec_annex_c(void **state)
{
    (void)state;
    static const char *phy[3] = {
        "067298BADCFE000102030405060796E7CDFB",
        "04D772C905BE8001C3824706C485B82DD878",
        "07EE3E946BC180014283C5044786735E3E85",
    };
    uint8_t u[18], v[18], out[18];
    assert_int_equal(hex_to_bytes(phy[0], u, sizeof u), 18);
    for (int rank = 1; rank <= 3; rank++) {
        assert_int_equal(hex_to_bytes(phy[rank - 1], v, sizeof v), 18);
        assert_int_equal(ul_code_encode(rank, u, out, 144), 0);
        assert_memory_equal(out, v, 18);
        assert_int_equal(ul_code_decode_hard(rank, v, out, 144), 0);
        assert_memory_equal(out, u, 18);
    }
}

/* seeds/003 (the blog's replica encoders): 2A654321 -> 35CEB279 (rank 2), 20FC13E9 (rank 3). */
static void test_seed_003_examples(void **state)
{
    (void)state;
    const uint8_t u[4] = {0x2A, 0x65, 0x43, 0x21};
    const uint8_t r2[4] = {0x35, 0xCE, 0xB2, 0x79}, r3[4] = {0x20, 0xFC, 0x13, 0xE9};
    uint8_t out[4];
    assert_int_equal(ul_code_encode(2, u, out, 32), 0);
    assert_memory_equal(out, r2, 4);
    assert_int_equal(ul_code_encode(3, u, out, 32), 0);
    assert_memory_equal(out, r3, 4);
}

static void test_inverse_all_lengths(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0xc0de0001, 0);
    for (size_t nbits = 0; nbits <= UL_CODE_MAX_BITS; nbits++)
        for (int rank = 1; rank <= 3; rank++) {
            uint8_t u[UL_CODE_MAX_BITS / 8], v[UL_CODE_MAX_BITS / 8], w[UL_CODE_MAX_BITS / 8];
            for (size_t i = 0; i < sizeof u; i++)
                u[i] = (uint8_t)rng();
            size_t nbytes = (nbits + 7) / 8;
            if (nbits & 7) /* compare only the valid bits */
                u[nbits / 8] &= (uint8_t)(0xFF00u >> (nbits & 7));
            assert_int_equal(ul_code_encode(rank, u, v, nbits), 0);
            assert_int_equal(ul_code_decode_hard(rank, v, w, nbits), 0);
            assert_memory_equal(w, u, nbytes);
            /* in place */
            memcpy(w, u, nbytes);
            assert_int_equal(ul_code_encode(rank, w, w, nbits), 0);
            assert_memory_equal(w, v, nbytes);
            assert_int_equal(ul_code_decode_hard(rank, w, w, nbits), 0);
            assert_memory_equal(w, u, nbytes);
            /* soft with +-1 equals hard */
            float soft[UL_CODE_MAX_BITS];
            for (size_t i = 0; i < nbits; i++)
                soft[i] = ul_bit_get(v, i) ? 0.7f : -1.3f;
            assert_int_equal(ul_code_decode_soft(rank, soft, w, nbits), 0);
            assert_memory_equal(w, u, nbytes);
        }
}

static void test_bad_args(void **state)
{
    (void)state;
    uint8_t b[40] = {0};
    float s[300] = {0};
    const float *none[3] = {NULL, NULL, NULL};
    const float *one[3] = {s, NULL, NULL};
    assert_int_equal(ul_code_encode(0, b, b, 8), UL_CODE_ERR_ARG);
    assert_int_equal(ul_code_encode(4, b, b, 8), UL_CODE_ERR_ARG);
    assert_int_equal(ul_code_encode(1, NULL, b, 8), UL_CODE_ERR_ARG);
    assert_int_equal(ul_code_encode(1, b, NULL, 8), UL_CODE_ERR_ARG);
    assert_int_equal(ul_code_encode(1, b, b, UL_CODE_MAX_BITS + 1), UL_CODE_ERR_ARG);
    assert_int_equal(ul_code_decode_hard(2, NULL, b, 8), UL_CODE_ERR_ARG);
    assert_int_equal(ul_code_decode_hard(-1, b, b, 8), UL_CODE_ERR_ARG);
    assert_int_equal(ul_code_decode_soft(3, NULL, b, 8), UL_CODE_ERR_ARG);
    assert_int_equal(ul_code_decode_soft(3, s, b, UL_CODE_MAX_BITS + 1), UL_CODE_ERR_ARG);
    assert_int_equal(ul_viterbi_decode(none, 100, b), UL_CODE_ERR_ARG);
    assert_int_equal(ul_viterbi_decode(NULL, 100, b), UL_CODE_ERR_ARG);
    assert_int_equal(ul_viterbi_decode(one, 100, NULL), UL_CODE_ERR_ARG);
    assert_int_equal(ul_viterbi_decode(one, 0, b), UL_CODE_ERR_ARG);
    assert_int_equal(ul_viterbi_decode(one, UL_CODE_MAX_BITS + 1, b), UL_CODE_ERR_ARG);
    /* NaN and infinities are handled (NaN = erasure) */
    for (int i = 0; i < 300; i++)
        s[i] = i % 3 == 0 ? NAN : (i % 3 == 1 ? INFINITY : -INFINITY);
    const float *all[3] = {s, s + 1, s + 2};
    assert_int_equal(ul_viterbi_decode(all, 200, b), 0);
}

/* ---- Viterbi ---- */

#define BODY_BITS 176 /* 20-byte container + CRC */

typedef struct {
    uint8_t u[BODY_BITS / 8];     /* container + CRC */
    uint8_t v[3][BODY_BITS / 8];  /* coded replicas */
    float llr[3][BODY_BITS];
} trial_t;

static void make_trial(trial_t *t)
{
    uint8_t key[16];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)rng();
    uint32_t ep_id = rng();
    uint16_t mc = (uint16_t)(rng() & 0xFFF);
    ul_message_t m = {.ep_id = ep_id, .mc = mc, .payload_len = 12};
    for (int i = 0; i < 12; i++)
        m.payload[i] = (uint8_t)rng();
    assert_int_equal(ul_container_build(&m, key, t->u, 20), 20);
    uint16_t crc = ul_crc16(t->u, 20);
    t->u[20] = (uint8_t)(crc >> 8);
    t->u[21] = (uint8_t)crc;
    for (int r = 0; r < 3; r++)
        assert_int_equal(ul_code_encode(r + 1, t->u, t->v[r], BODY_BITS), 0);
}

/* True when the hard decision of replica r alone gives a body with a good CRC. */
static bool hard_ok(const trial_t *t, int r)
{
    uint8_t out[BODY_BITS / 8];
    assert_int_equal(ul_code_decode_soft(r + 1, t->llr[r], out, BODY_BITS), 0);
    return ul_crc16(out, 20) == (out[20] << 8 | out[21]);
}

static bool viterbi_ok(const trial_t *t, const bool present[3])
{
    const float *soft[3];
    for (int r = 0; r < 3; r++)
        soft[r] = present[r] ? t->llr[r] : NULL;
    uint8_t out[BODY_BITS / 8];
    assert_int_equal(ul_viterbi_decode(soft, BODY_BITS, out), 0);
    return memcmp(out, t->u, sizeof out) == 0;
}

static void set_llr_clean(trial_t *t, float amp)
{
    for (int r = 0; r < 3; r++)
        for (int n = 0; n < BODY_BITS; n++)
            t->llr[r][n] = ul_bit_get(t->v[r], (size_t)n) ? amp : -amp;
}

/* Picks k positions in 0..limit-1, pairwise at least min_gap apart. */
static void spread_positions(int *pos, int k, int min_gap, int limit)
{
    for (int i = 0; i < k;) {
        int p = (int)(rng() % (unsigned)limit), ok = 1;
        for (int j = 0; j < i; j++)
            if (abs(pos[j] - p) < min_gap)
                ok = 0;
        if (ok)
            pos[i++] = p;
    }
}

static void test_viterbi_clean_every_subset(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0xc0de0002, 0);
    for (int i = 0; i < 20; i++) {
        trial_t t;
        make_trial(&t);
        set_llr_clean(&t, 1.0f);
        for (int mask = 1; mask < 8; mask++) {
            bool present[3] = {mask & 1, mask & 2, mask & 4};
            assert_true(viterbi_ok(&t, present));
        }
    }
}

/* Three bit errors in every replica, spread out: each replica alone fails its CRC, the
 * joint decoder recovers the message every time. */
static void test_viterbi_beats_hard_spread_errors(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0xc0de0003, 0);
    for (int i = 0; i < 200; i++) {
        trial_t t;
        make_trial(&t);
        set_llr_clean(&t, 1.0f);
        int pos[9];
        spread_positions(pos, 9, 12, BODY_BITS);
        for (int e = 0; e < 9; e++)
            t.llr[e % 3][pos[e]] = -t.llr[e % 3][pos[e]];
        for (int r = 0; r < 3; r++)
            assert_false(hard_ok(&t, r));
        const bool all[3] = {true, true, true};
        assert_true(viterbi_ok(&t, all));
    }
}

/* One replica missing entirely; the other two each carry two errors. The trellis has no
 * tail, so with two replicas the last bit is covered by two coded bits only and an error
 * there is a tie: the raw decoder is tested away from the last 3 bits, the CRC-aided
 * frame decoder (test_frame_decode_joint) on the last bit itself. */
static void test_viterbi_one_replica_missing(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0xc0de0004, 0);
    for (int missing = 0; missing < 3; missing++)
        for (int i = 0; i < 100; i++) {
            trial_t t;
            make_trial(&t);
            set_llr_clean(&t, 1.0f);
            int pos[4];
            spread_positions(pos, 4, 16, BODY_BITS - 3);
            int r0 = (missing + 1) % 3, r1 = (missing + 2) % 3;
            for (int e = 0; e < 4; e++) {
                int r = e % 2 ? r1 : r0;
                t.llr[r][pos[e]] = -t.llr[r][pos[e]];
            }
            assert_false(hard_ok(&t, r0));
            assert_false(hard_ok(&t, r1));
            bool present[3] = {true, true, true};
            present[missing] = false;
            if (!viterbi_ok(&t, present))
                fail_msg("missing rank %d, trial %d, errors at %d %d %d %d", missing + 1, i,
                         pos[0], pos[1], pos[2], pos[3]);
        }
}

/* Erasures: a third of every replica lost (LLR 0, e.g. a collision), different parts. */
static void test_viterbi_erasures(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0xc0de0005, 0);
    for (int i = 0; i < 50; i++) {
        trial_t t;
        make_trial(&t);
        set_llr_clean(&t, 2.0f);
        for (int r = 0; r < 3; r++)
            for (int n = r * 58; n < r * 58 + 58 && n < BODY_BITS; n++)
                t.llr[r][n] = 0.0f;
        const bool all[3] = {true, true, true};
        assert_true(viterbi_ok(&t, all));
    }
}

/* AWGN on BPSK symbols at a fixed Es/N0: count messages recovered by any single replica
 * (hard decision + CRC) and by the joint decoder. */
static void awgn_run(double esn0_db, int trials, const bool present[3], int *single, int *joint)
{
    double sigma = sqrt(1.0 / (2.0 * pow(10.0, esn0_db / 10.0)));
    *single = *joint = 0;
    for (int i = 0; i < trials; i++) {
        trial_t t;
        make_trial(&t);
        for (int r = 0; r < 3; r++)
            for (int n = 0; n < BODY_BITS; n++) {
                double y = (ul_bit_get(t.v[r], (size_t)n) ? 1.0 : -1.0) + sigma * gauss();
                t.llr[r][n] = (float)(2.0 * y / (sigma * sigma));
            }
        bool any = false;
        for (int r = 0; r < 3; r++)
            any = any || (present[r] && hard_ok(&t, r));
        *single += any;
        *joint += viterbi_ok(&t, present);
    }
}

static void test_viterbi_awgn(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0xc0de0006, 0);
    const bool all[3] = {true, true, true};
    static const struct {
        double esn0_db;
        int min_joint_pct, max_single_pct;
    } pts[] = {{4.0, 99, 40}, {2.0, 90, 5}, {0.0, 30, 1}};
    for (size_t k = 0; k < sizeof pts / sizeof pts[0]; k++) {
        int single, joint, trials = 400;
        awgn_run(pts[k].esn0_db, trials, all, &single, &joint);
        print_message("Es/N0 %.1f dB per replica: any single replica %d/%d, joint Viterbi %d/%d\n",
                      pts[k].esn0_db, single, trials, joint, trials);
        assert_true(joint * 100 >= pts[k].min_joint_pct * trials);
        assert_true(single * 100 <= pts[k].max_single_pct * trials);
        assert_true(joint > single);
    }
    /* two replicas still beat the best single one */
    const bool two[3] = {true, false, true};
    int single, joint;
    awgn_run(3.0, 300, two, &single, &joint);
    print_message("Es/N0 3.0 dB, ranks 1+3 only: single %d/300, joint %d/300\n", single, joint);
    assert_true(joint > single + 100);
}

/* The frame-level joint decoder parses what the Viterbi decoder recovers. */
static void test_frame_decode_joint(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0xc0de0007, 0);
    uint8_t key[16];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)rng();
    ul_message_t m = {.ep_id = 0xFEDCBA98, .mc = 1650, .payload_len = 8};
    for (int i = 0; i < 8; i++)
        m.payload[i] = (uint8_t)i;
    float soft[3][UL_MAX_FRAME_BYTES * 8];
    const float *ptr[3];
    size_t body_bits = ul_body_bits(16);
    for (int r = 0; r < 3; r++) {
        uint8_t frame[UL_MAX_FRAME_BYTES];
        assert_int_equal(ul_frame_encode(&m, key, r + 1, frame, sizeof frame), 22);
        for (size_t n = 0; n < body_bits; n++)
            soft[r][n] = ul_bit_get(frame, 32 + n) ? 1.0f : -1.0f;
        for (int e = 0; e < 3; e++) { /* 3 errors in each replica, 40 bits apart */
            size_t n = (size_t)(10 + 13 * r + 40 * e);
            soft[r][n] = -soft[r][n];
        }
        ptr[r] = soft[r];
    }
    ul_frame_t f;
    assert_int_equal(ul_frame_decode_joint(ptr, 16, false, &f), 0);
    assert_int_equal(f.rank, 0);
    assert_int_equal(f.ft, 0x611);
    assert_true(f.crc_ok);
    assert_int_equal(f.msg.ep_id, m.ep_id);
    assert_int_equal(f.msg.mc, m.mc);
    assert_memory_equal(f.msg.payload, m.payload, 8);
    assert_int_equal(ul_auth_verify(f.container, 16, key), 1);
    /* a single replica with those errors fails */
    for (int r = 0; r < 3; r++) {
        float s[UL_FT_BITS + UL_MAX_FRAME_BYTES * 8];
        uint16_t ft = ul_ft_value(16, false, r + 1);
        for (int b = 0; b < UL_FT_BITS; b++)
            s[b] = (ft >> (12 - b)) & 1 ? 1.0f : -1.0f;
        memcpy(s + UL_FT_BITS, soft[r], body_bits * sizeof(float));
        assert_int_equal(ul_frame_decode_soft(s, UL_FT_BITS + body_bits, 2, &f), UL_ERR_CRC);
        assert_int_equal(f.rank, r + 1);
    }

    /* The last bit, with rank 1 missing: flip it in both other replicas. The best path
     * then ends wrong (the raw Viterbi output fails), the CRC picks the right end state. */
    const float *two[3] = {NULL, soft[1], soft[2]};
    for (int r = 1; r < 3; r++) {
        soft[r][body_bits - 1] = -soft[r][body_bits - 1];
        soft[r][60] = soft[r][60 + 1] = 0.0f; /* plus a couple of erasures */
    }
    uint8_t raw[UL_MAX_CONTAINER_BYTES + 2];
    assert_int_equal(ul_viterbi_decode(two, body_bits, raw), 0);
    assert_int_not_equal(ul_crc16(raw, 16), raw[16] << 8 | raw[17]);
    uint8_t list[4][UL_MAX_CONTAINER_BYTES + 2];
    int n = ul_viterbi_decode_list(two, body_bits, list[0], sizeof list[0], 4);
    assert_int_equal(n, 4);
    assert_memory_equal(list[0], raw, 18);
    assert_int_equal(ul_frame_decode_joint(two, 16, false, &f), 0);
    assert_int_equal(f.msg.mc, m.mc);
    assert_int_equal(ul_auth_verify(f.container, 16, key), 1);
    assert_int_equal(ul_viterbi_decode_list(two, body_bits, list[0], 4, 4), UL_CODE_ERR_ARG);
    assert_int_equal(ul_viterbi_decode_list(two, body_bits, list[0], 0, 0), UL_CODE_ERR_ARG);

    const float *none[3] = {NULL, NULL, NULL};
    assert_int_equal(ul_frame_decode_joint(none, 16, false, &f), UL_ERR_ARG);
    assert_int_equal(ul_frame_decode_joint(ptr, 10, false, &f), UL_ERR_LENGTH);
    assert_int_equal(ul_frame_decode_joint(ptr, 12, true, &f), UL_ERR_LENGTH);
    assert_int_equal(ul_frame_decode_joint(NULL, 16, false, &f), UL_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_annex_c),
        cmocka_unit_test(test_seed_003_examples),
        cmocka_unit_test(test_inverse_all_lengths),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_viterbi_clean_every_subset),
        cmocka_unit_test(test_viterbi_beats_hard_spread_errors),
        cmocka_unit_test(test_viterbi_one_replica_missing),
        cmocka_unit_test(test_viterbi_erasures),
        cmocka_unit_test(test_viterbi_awgn),
        cmocka_unit_test(test_frame_decode_joint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
