/* test_ulframe: uplink frame codec against the spec's Annex C frames and the renard
 * frames (test/vectors/frames.json), round trips, FT matching and bad input. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "hexutil.h"
#include "prng.h"
#include "ulcode.h"
#include "ulframe.h"

#define VECTORS "test/vectors/frames.json"

/* ---- helpers ---- */

/* Test data (prng.h), seeded per test. */
static prng_t rng_state;
static uint32_t rng(void)
{
    return (uint32_t)(prng_next(&rng_state) >> 32);
}

static void random_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng();
}

static struct json_object *load_vectors(void)
{
    struct json_object *root = json_object_from_file(VECTORS);
    assert_non_null(root);
    return root;
}

static const char *jstr(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static int jint(struct json_object *o, const char *key, int dflt)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int(v) : dflt;
}

static void jhex(struct json_object *o, const char *key, uint8_t *out, size_t len)
{
    const char *s = jstr(o, key);
    assert_non_null(s);
    assert_int_equal(hex_to_bytes(s, out, len), (int)len);
}

/* Builds the message a vector describes (application, 1-bit or confirmation). */
static void vector_message(struct json_object *v, ul_message_t *m, uint8_t key[16], int *rank)
{
    memset(m, 0, sizeof *m);
    assert_int_equal(hex_to_ep_id(jstr(v, "ep_id"), &m->ep_id), 0);
    jhex(v, "key", key, 16);
    m->mc = (uint16_t)jint(v, "mc", -1);
    m->bf = jint(v, "bf", 0) != 0;
    *rank = jint(v, "rank", 1);
    const char *kind = jstr(v, "kind");
    if (kind && strcmp(kind, "dl_confirmation") == 0) {
        m->kind = UL_KIND_DL_CONFIRMATION;
        m->control.vdd_idle_mv = (uint16_t)jint(v, "vdd_idle_mv", -1);
        m->control.vdd_tx_mv = (uint16_t)jint(v, "vdd_tx_mv", -1);
        m->control.temp_tenth_c = (int16_t)jint(v, "temp_tenth_c", -1);
        m->control.rssi_dbm = (int16_t)jint(v, "rssi_dbm", 0);
    } else if (jstr(v, "payload_bit")) {
        m->one_bit = true;
        m->payload_bit = (uint8_t)jint(v, "payload_bit", -1);
    } else {
        int n = hex_to_bytes(jstr(v, "payload"), m->payload, sizeof m->payload);
        assert_true(n >= 0);
        m->payload_len = (size_t)n;
    }
}

static void assert_message_equal(const ul_message_t *a, const ul_message_t *b)
{
    assert_int_equal(a->ep_id, b->ep_id);
    assert_int_equal(a->mc, b->mc);
    assert_int_equal(a->bf, b->bf);
    assert_int_equal(a->rep, b->rep);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->one_bit, b->one_bit);
    if (a->one_bit)
        assert_int_equal(a->payload_bit, b->payload_bit);
    if (a->kind == UL_KIND_APP) {
        assert_int_equal(a->payload_len, b->payload_len);
        assert_memory_equal(a->payload, b->payload, a->payload_len);
    } else {
        assert_int_equal(a->control.vdd_idle_mv, b->control.vdd_idle_mv);
        assert_int_equal(a->control.vdd_tx_mv, b->control.vdd_tx_mv);
        assert_int_equal(a->control.temp_tenth_c, b->control.temp_tenth_c);
        if (a->kind == UL_KIND_DL_CONFIRMATION)
            assert_int_equal(a->control.rssi_dbm, b->control.rssi_dbm);
    }
}

/* ---- vectors ---- */

/* Table 3-1: the largest payload each container size carries; other sizes are refused. */
static void test_max_payload_len(void **state)
{
    (void)state;
    for (size_t len = 0; len <= UL_MAX_PAYLOAD_BYTES; len++) {
        ul_message_t m = {.kind = UL_KIND_APP, .payload_len = len};
        int clen = ul_container_len(&m);
        assert_true(clen > 0);
        assert_true(len <= (size_t)ul_max_payload_len((size_t)clen));
        m.payload_len = (size_t)ul_max_payload_len((size_t)clen);
        assert_int_equal(ul_container_len(&m), clen);
    }
    assert_int_equal(ul_max_payload_len(20), 12);
    assert_int_equal(ul_max_payload_len(10), UL_ERR_LENGTH);
    assert_int_equal(ul_max_payload_len(0), UL_ERR_LENGTH);
}

static void test_vectors_encode(void **state)
{
    (void)state;
    struct json_object *root = load_vectors(), *ul;
    assert_true(json_object_object_get_ex(root, "uplink", &ul));
    size_t n = json_object_array_length(ul), checked = 0;
    assert_true(n >= 9);
    for (size_t i = 0; i < n; i++) {
        struct json_object *v = json_object_array_get_idx(ul, i);
        ul_message_t m;
        uint8_t key[16], frame[UL_MAX_FRAME_BYTES];
        int rank;
        vector_message(v, &m, key, &rank);
        int len = ul_frame_encode(&m, key, rank, frame, sizeof frame);
        assert_true(len > 0);
        const char *bits = jstr(v, "bitstream");
        if (bits) {
            uint8_t want[UL_MAX_FRAME_BYTES];
            int wl = hex_to_bytes(bits, want, sizeof want);
            assert_int_equal(len, wl);
            assert_memory_equal(frame, want, (size_t)len);
            checked++;
        }
        if (jstr(v, "ft"))
            assert_int_equal(((frame[2] & 0x1F) << 8 | frame[3]),
                             (int)strtol(jstr(v, "ft"), NULL, 16));
        /* UL-AUTH and UL-CRC as the spec prints them (rank 1 carries them in clear). */
        if (jstr(v, "ul_auth") && rank == 1) {
            uint8_t c[UL_MAX_CONTAINER_BYTES], a[2], crc[2];
            int cl = ul_container_build(&m, key, c, sizeof c);
            jhex(v, "ul_auth", a, 2);
            jhex(v, "ul_crc", crc, 2);
            size_t alen = ul_auth_len((size_t)cl, c[0] >> 6);
            assert_int_equal(alen, 2);
            assert_memory_equal(c + cl - 2, a, 2);
            assert_int_equal(ul_crc16(c, (size_t)cl), crc[0] << 8 | crc[1]);
        }
    }
    assert_true(checked >= 8);
    json_object_put(root);
}

static void test_vectors_decode(void **state)
{
    (void)state;
    struct json_object *root = load_vectors(), *ul;
    assert_true(json_object_object_get_ex(root, "uplink", &ul));
    for (size_t i = 0; i < json_object_array_length(ul); i++) {
        struct json_object *v = json_object_array_get_idx(ul, i);
        const char *bits = jstr(v, "bitstream");
        if (!bits)
            continue;
        ul_message_t want;
        uint8_t key[16], frame[UL_MAX_FRAME_BYTES];
        int rank;
        vector_message(v, &want, key, &rank);
        int len = hex_to_bytes(bits, frame, sizeof frame);
        ul_frame_t f;
        /* with the preamble, as the spec prints it */
        assert_int_equal(ul_frame_decode(frame, (size_t)len * 8, true, 2, &f), 0);
        assert_int_equal(f.rank, rank);
        assert_int_equal(f.ft_distance, 0);
        assert_true(f.crc_ok);
        assert_int_equal(f.control, want.kind != UL_KIND_APP);
        assert_message_equal(&f.msg, &want);
        assert_int_equal(ul_auth_verify(f.container, f.container_len, key), 1);
        if (jstr(v, "ul_crc")) {
            uint8_t crc[2];
            jhex(v, "ul_crc", crc, 2);
            assert_int_equal(f.crc, crc[0] << 8 | crc[1]);
        }
        if (jstr(v, "ul_auth")) {
            uint8_t a[2];
            jhex(v, "ul_auth", a, 2);
            assert_int_equal(f.auth_len, 2);
            assert_memory_equal(f.auth, a, 2);
        }
        /* without the preamble: shift everything 19 bits to the left */
        uint8_t nopre[UL_MAX_FRAME_BYTES] = {0};
        size_t nbits = (size_t)len * 8 - UL_PREAMBLE_BITS;
        for (size_t b = 0; b < nbits; b++)
            ul_bit_set(nopre, b, ul_bit_get(frame, b + UL_PREAMBLE_BITS));
        ul_frame_t g;
        assert_int_equal(ul_frame_decode(nopre, nbits, false, 2, &g), 0);
        assert_memory_equal(g.container, f.container, f.container_len);
        /* from soft values (+-1) */
        float soft[UL_MAX_FRAME_BYTES * 8];
        for (size_t b = 0; b < nbits; b++)
            soft[b] = ul_bit_get(nopre, b) ? 1.0f : -1.0f;
        assert_int_equal(ul_frame_decode_soft(soft, nbits, 2, &g), 0);
        assert_int_equal(g.rank, rank);
        assert_message_equal(&g.msg, &want);
    }
    json_object_put(root);
}

/* The spec's Annex C text prints UL-AUTH = 0x96EF but its frame carries 96 E7; AES-CBC
 * over LI..payload gives 96 E7, and the printed CRC CDFB covers 96 E7. */
static void test_spec_auth_typo(void **state)
{
    (void)state;
    const uint8_t data[14] = {0x06, 0x72, 0x98, 0xBA, 0xDC, 0xFE, 0, 1, 2, 3, 4, 5, 6, 7};
    uint8_t key[16], auth[2], c[16];
    assert_int_equal(hex_to_bytes("0123456789ABCDEF0123456789ABCDEF", key, 16), 16);
    assert_int_equal(ul_auth_compute(key, data, sizeof data, auth, 2), 0);
    assert_int_equal(auth[0], 0x96);
    assert_int_equal(auth[1], 0xE7);
    memcpy(c, data, 14);
    memcpy(c + 14, auth, 2);
    assert_int_equal(ul_crc16(c, 16), 0xCDFB);
    c[15] = 0xEF;
    assert_int_not_equal(ul_crc16(c, 16), 0xCDFB);
    assert_int_equal(ul_auth_verify(c, 16, key), 0);
}

static void test_crc_check_value(void **state)
{
    (void)state;
    /* CRC-16/XMODEM (0x1021, init 0) of "123456789" is 0x31C3; xorout 0xFFFF gives CE3C. */
    assert_int_equal(ul_crc16((const uint8_t *)"123456789", 9), 0x31C3 ^ 0xFFFF);
    assert_int_equal(ul_crc16(NULL, 0), 0xFFFF);
}

/* AES-128-ECB of one block through OpenSSL, to check the CBC chaining independently. */
static void aes_ecb(const uint8_t key[16], const uint8_t in[16], uint8_t out[16])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    assert_non_null(ctx);
    assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_128_ecb(), NULL, key, NULL), 1);
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    assert_int_equal(EVP_EncryptUpdate(ctx, out, &n, in, 16), 1);
    assert_int_equal(n, 16);
    EVP_CIPHER_CTX_free(ctx);
}

static void test_auth_cyclic_fill(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5eed0001, 0);
    for (size_t len = 6; len <= 18; len++) {
        uint8_t key[16], data[18], block[32], x[16], e[16], auth[5];
        random_bytes(key, 16);
        random_bytes(data, len);
        size_t blocks = len > 16 ? 2 : 1;
        for (size_t i = 0; i < 16 * blocks; i++)
            block[i] = data[i % len];
        aes_ecb(key, block, e);
        if (blocks == 2) {
            for (int i = 0; i < 16; i++)
                x[i] = e[i] ^ block[16 + i];
            aes_ecb(key, x, e);
        }
        assert_int_equal(ul_auth_compute(key, data, len, auth, 5), 0);
        assert_memory_equal(auth, e, 5);
    }
}

/* ---- Table 3-1 ---- */

static void test_table_3_1(void **state)
{
    (void)state;
    /* payload bytes -> LI, AUTH bytes, container bytes, straight from Table 3-1 */
    static const struct {
        int payload, li, auth, container;
    } t[] = {{0, 0, 2, 8},   {1, 0, 2, 9},   {2, 2, 4, 12},  {3, 1, 3, 12},  {4, 0, 2, 12},
             {5, 3, 5, 16},  {6, 2, 4, 16},  {7, 1, 3, 16},  {8, 0, 2, 16},  {9, 3, 5, 20},
             {10, 2, 4, 20}, {11, 1, 3, 20}, {12, 0, 2, 20}};
    uint8_t key[16] = {0}, c[UL_MAX_CONTAINER_BYTES];
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        ul_message_t m = {.payload_len = (size_t)t[i].payload};
        assert_int_equal(ul_container_len(&m), t[i].container);
        assert_int_equal(ul_container_build(&m, key, c, sizeof c), t[i].container);
        assert_int_equal(c[0] >> 6, t[i].li);
        assert_int_equal(ul_auth_len((size_t)t[i].container, (unsigned)t[i].li),
                         (size_t)t[i].auth);
    }
    /* 1-bit messages: LI 10 for 0, 11 for 1, 8-byte container */
    for (int bit = 0; bit < 2; bit++) {
        ul_message_t m = {.one_bit = true, .payload_bit = (uint8_t)bit};
        assert_int_equal(ul_container_build(&m, key, c, sizeof c), 8);
        assert_int_equal(c[0] >> 6, 2 | bit);
    }
    /* control: keep-alive LI 01 (AUTH 3), confirmation LI 00 (AUTH 2), 16 bytes */
    ul_message_t ka = {.kind = UL_KIND_KEEPALIVE};
    assert_int_equal(ul_container_build(&ka, key, c, sizeof c), 16);
    assert_int_equal(c[0] >> 6, 1);
    assert_int_equal(c[6], UL_CT_KEEPALIVE);
    ul_message_t cf = {.kind = UL_KIND_DL_CONFIRMATION};
    assert_int_equal(ul_container_build(&cf, key, c, sizeof c), 16);
    assert_int_equal(c[0] >> 6, 0);
    assert_int_equal(c[6], UL_CT_DL_CONFIRMATION);
    /* pairs Table 3-1 does not allow */
    assert_int_equal(ul_auth_len(8, 1), 0);
    assert_int_equal(ul_auth_len(9, 2), 0);
    assert_int_equal(ul_auth_len(12, 3), 0);
    assert_int_equal(ul_auth_len(10, 0), 0);
}

/* ---- FT table and matching ---- */

static const struct {
    size_t container;
    bool control;
    uint16_t ft[3];
} fts[] = {
    {8, false, {0x06B, 0x6E0, 0x034}},  {9, false, {0x08D, 0x0D2, 0x302}},
    {12, false, {0x35F, 0x598, 0x5A3}}, {16, false, {0x611, 0x6BF, 0x72C}},
    {20, false, {0x94C, 0x971, 0x997}}, {16, true, {0xF67, 0xFC9, 0x11BE}},
};

static void test_ft_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fts / sizeof fts[0]; i++)
        for (int r = 1; r <= 3; r++)
            assert_int_equal(ul_ft_value(fts[i].container, fts[i].control, r), fts[i].ft[r - 1]);
    assert_int_equal(ul_ft_value(16, false, 0), 0);
    assert_int_equal(ul_ft_value(16, false, 4), 0);
    assert_int_equal(ul_ft_value(10, false, 1), 0);
    assert_int_equal(ul_ft_value(8, true, 1), 0);
}

static void check_match(uint16_t rx, int max, int want_d, size_t c, bool ctl, int r)
{
    size_t gc = 0;
    bool gctl = !ctl;
    int gr = 0;
    assert_int_equal(ul_ft_match(rx, max, &gc, &gctl, &gr), want_d);
    assert_int_equal(gc, c);
    assert_int_equal(gctl, ctl);
    assert_int_equal(gr, r);
}

static void test_ft_match_flipped_bits(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fts / sizeof fts[0]; i++)
        for (int r = 1; r <= 3; r++) {
            uint16_t ft = fts[i].ft[r - 1];
            check_match(ft, 0, 0, fts[i].container, fts[i].control, r);
            for (int a = 0; a < UL_FT_BITS; a++) {
                check_match(ft ^ (1u << a), 2, 1, fts[i].container, fts[i].control, r);
                for (int b = a + 1; b < UL_FT_BITS; b++) {
                    uint16_t rx = (uint16_t)(ft ^ (1u << a) ^ (1u << b));
                    check_match(rx, 2, 2, fts[i].container, fts[i].control, r);
                    assert_int_equal(ul_ft_match(rx, 1, NULL, NULL, NULL), UL_ERR_FT);
                }
            }
        }
    /* a value at distance >= 3 from every FT is rejected with the default limit */
    int found = 0;
    for (unsigned rx = 0; rx < (1u << UL_FT_BITS) && !found; rx++) {
        int dmin = 99;
        for (size_t i = 0; i < sizeof fts / sizeof fts[0]; i++)
            for (int r = 0; r < 3; r++) {
                int d = __builtin_popcount(rx ^ fts[i].ft[r]);
                dmin = d < dmin ? d : dmin;
            }
        if (dmin >= 3) {
            assert_int_equal(ul_ft_match((uint16_t)rx, UL_FT_DEFAULT_MAX_DISTANCE, NULL, NULL,
                                         NULL),
                             UL_ERR_FT);
            assert_int_equal(ul_ft_match((uint16_t)rx, 13, NULL, NULL, NULL), dmin);
            found = 1;
        }
    }
    assert_true(found);
}

static void ft_soft(uint16_t ft, float amp, float *soft)
{
    for (int b = 0; b < UL_FT_BITS; b++)
        soft[b] = ((ft >> (UL_FT_BITS - 1 - b)) & 1) ? amp : -amp;
}

/* Soft values of FT a with the first 3 bits where b differs flipped weakly (to b). */
static void ft_soft_towards(uint16_t a, uint16_t b, float *soft)
{
    uint16_t diff = a ^ b;
    ft_soft(a, 1.0f, soft);
    int flipped = 0;
    for (int bit = 0; bit < UL_FT_BITS && flipped < 3; bit++)
        if ((diff >> (UL_FT_BITS - 1 - bit)) & 1) {
            soft[bit] = -0.1f * soft[bit];
            flipped++;
        }
}

/* Soft FT matching: ML by correlation, so weak wrong bits do not pull it to another FT. */
static void test_ft_match_soft(void **state)
{
    (void)state;
    float soft[UL_FT_BITS];
    size_t c;
    bool ctl;
    int r;
    uint16_t rx;
    for (size_t i = 0; i < sizeof fts / sizeof fts[0]; i++)
        for (int k = 0; k < 3; k++) {
            ft_soft(fts[i].ft[k], 1.0f, soft);
            assert_int_equal(ul_ft_match_soft(soft, 0, &rx, &c, &ctl, &r), 0);
            assert_int_equal(rx, fts[i].ft[k]);
            assert_int_equal(c, fts[i].container);
            assert_int_equal(ctl, fts[i].control);
            assert_int_equal(r, k + 1);
        }
    /* A = 0x611 (16 B rank 1) and B = 0x034 (8 B rank 3) are 5 bits apart. Flip 3 of
     * those bits weakly: hard decisions are 2 from B and 3 from A, soft picks A. */
    uint16_t a = 0x611, b = 0x034;
    assert_int_equal(__builtin_popcount(a ^ b), 5);
    ft_soft_towards(a, b, soft);
    uint16_t hard = 0;
    for (int bit = 0; bit < UL_FT_BITS; bit++)
        hard = (uint16_t)(hard << 1 | (soft[bit] > 0));
    assert_int_equal(ul_ft_match(hard, 3, &c, &ctl, &r), 2); /* hard: the wrong FT */
    assert_int_equal(c, 8);
    assert_int_equal(ul_ft_match_soft(soft, 3, &rx, &c, &ctl, &r), 3);
    assert_int_equal(rx, hard);
    assert_int_equal(c, 16);
    assert_int_equal(r, 1);
    assert_int_equal(ul_ft_match_soft(soft, 2, NULL, NULL, NULL, NULL), UL_ERR_FT);
    /* NaN is an erasure; NULL is refused */
    ft_soft(0x11BE, 2.0f, soft);
    soft[0] = NAN;
    soft[5] = NAN;
    /* both NaN positions hold a 1 in 0x11BE and decide 0: 2 hard disagreements */
    assert_int_equal(ul_ft_match_soft(soft, 2, NULL, &c, &ctl, &r), 2);
    assert_true(ctl);
    assert_int_equal(r, 3);
    assert_int_equal(ul_ft_match_soft(NULL, 2, NULL, NULL, NULL, NULL), UL_ERR_ARG);
}

/* FT hypotheses: every known FT ranked by correlation, the best one ul_ft_match_soft's. */
static void test_ft_rank_soft(void **state)
{
    (void)state;
    float soft[UL_FT_BITS];
    ul_ft_hyp_t h[20];
    /* the 0x611 / 0x034 case above: A first (distance 3), B second (distance 2) */
    uint16_t a = 0x611, b = 0x034;
    ft_soft_towards(a, b, soft);
    assert_int_equal(ul_ft_rank_soft(soft, h, 20), 18);
    assert_int_equal(h[0].ft, a);
    assert_int_equal(h[0].distance, 3);
    assert_int_equal(h[0].container_bytes, 16);
    assert_int_equal(h[0].rank, 1);
    assert_false(h[0].control);
    assert_int_equal(h[1].ft, b);
    assert_int_equal(h[1].distance, 2);
    assert_int_equal(h[1].rank, 3);
    for (int i = 1; i < 18; i++)
        assert_true(h[i].score <= h[i - 1].score);
    for (int i = 0; i < 18; i++)
        assert_int_equal(ul_ft_value(h[i].container_bytes, h[i].control, h[i].rank), h[i].ft);
    /* a shorter list is the head of the long one */
    ul_ft_hyp_t h3[3];
    assert_int_equal(ul_ft_rank_soft(soft, h3, 3), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(h3[i].ft, h[i].ft);
    /* all zero: every score ties, the table order stays (ul_ft_match_soft's choice) */
    memset(soft, 0, sizeof soft);
    assert_int_equal(ul_ft_rank_soft(soft, h, 2), 2);
    assert_int_equal(h[0].ft, ul_ft_value(8, false, 1));
    assert_int_equal(h[1].ft, ul_ft_value(8, false, 2));
    assert_int_equal(ul_ft_rank_soft(soft, h, 0), 0);
    assert_int_equal(ul_ft_rank_soft(NULL, h, 3), 0);
    assert_int_equal(ul_ft_rank_soft(soft, NULL, 3), 0);
}

/* FT bit errors inside a whole frame are corrected and reported. */
static void test_frame_ft_errors(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5eed0002, 0);
    uint8_t key[16];
    random_bytes(key, 16);
    for (int rank = 1; rank <= 3; rank++) {
        ul_message_t m = {.ep_id = rng(), .mc = 77, .payload_len = 5};
        random_bytes(m.payload, 5);
        uint8_t frame[UL_MAX_FRAME_BYTES];
        int len = ul_frame_encode(&m, key, rank, frame, sizeof frame);
        assert_int_equal(len, 22);
        for (int nflip = 1; nflip <= 3; nflip++) {
            uint8_t bad[UL_MAX_FRAME_BYTES];
            memcpy(bad, frame, (size_t)len);
            for (int k = 0; k < nflip; k++) /* FT bits are frame bits 19..31 */
                ul_bit_set(bad, 19 + 4 * k, !ul_bit_get(bad, 19 + 4 * k));
            ul_frame_t f;
            int rc = ul_frame_decode(bad, (size_t)len * 8, true, 2, &f);
            if (nflip <= 2) {
                assert_int_equal(rc, 0);
                assert_int_equal(f.ft_distance, nflip);
                assert_int_equal(f.rank, rank);
                assert_message_equal(&f.msg, &m);
            } else {
                assert_int_equal(rc, UL_ERR_FT);
            }
        }
    }
}

/* ---- round trips ---- */

static void roundtrip(const ul_message_t *m, const uint8_t key[16], int rank)
{
    uint8_t frame[UL_MAX_FRAME_BYTES];
    int len = ul_frame_encode(m, key, rank, frame, sizeof frame);
    int clen = ul_container_len(m);
    assert_true(clen > 0);
    assert_int_equal(len, UL_HEADER_BYTES + clen + UL_CRC_BYTES);
    /* preamble and FT in the first 4 bytes */
    assert_int_equal(frame[0], 0xAA);
    assert_int_equal(frame[1], 0xAA);
    assert_int_equal(frame[2] >> 5, 0x5);
    assert_int_equal((frame[2] & 0x1F) << 8 | frame[3],
                     ul_ft_value((size_t)clen, m->kind != UL_KIND_APP, rank));
    ul_frame_t f;
    assert_int_equal(ul_frame_decode(frame, (size_t)len * 8, true, 2, &f), 0);
    assert_int_equal(f.rank, rank);
    assert_int_equal(f.container_len, (size_t)clen);
    assert_true(f.crc_ok);
    assert_message_equal(&f.msg, m);
    assert_int_equal(ul_auth_verify(f.container, f.container_len, key), 1);
    /* the receiver rebuilds the same air bits from what it decoded */
    uint8_t air[UL_MAX_FRAME_BYTES];
    assert_int_equal(ul_frame_air_bits(&f, air, sizeof air), len);
    assert_memory_equal(air, frame, (size_t)len);
    assert_int_equal(ul_header_word((size_t)clen, m->kind != UL_KIND_APP, rank),
                     (uint32_t)frame[0] << 24 | (uint32_t)frame[1] << 16 | (uint32_t)frame[2] << 8 |
                         frame[3]);
    uint8_t other[16];
    memcpy(other, key, 16);
    uint32_t byte = rng() % 16;
    uint32_t bit = rng() % 8;
    other[byte] ^= (uint8_t)(1u << bit);
    assert_int_equal(ul_auth_verify(f.container, f.container_len, other), 0);
    /* trailing bits after the CRC are ignored */
    uint8_t longer[UL_MAX_FRAME_BYTES + 2] = {0};
    memcpy(longer, frame, (size_t)len);
    longer[len] = 0x5A;
    assert_int_equal(ul_frame_decode(longer, (size_t)len * 8 + 11, true, 2, &f), 0);
}

/* ul_frame_air_bits refuses what it cannot rebuild; ul_header_word knows only Table 3-3. */
static void test_air_bits_bad_input(void **state)
{
    (void)state;
    uint8_t key[16] = {0};
    ul_message_t m = {.ep_id = 0x1234, .mc = 7, .payload_len = 2, .payload = {1, 2}};
    uint8_t frame[UL_MAX_FRAME_BYTES], air[UL_MAX_FRAME_BYTES];
    int len = ul_frame_encode(&m, key, 2, frame, sizeof frame);
    assert_true(len > 0);
    ul_frame_t f;
    assert_int_equal(ul_frame_decode(frame, (size_t)len * 8, true, 2, &f), 0);
    assert_int_equal(ul_frame_air_bits(NULL, air, sizeof air), UL_ERR_ARG);
    assert_int_equal(ul_frame_air_bits(&f, NULL, sizeof air), UL_ERR_ARG);
    assert_int_equal(ul_frame_air_bits(&f, air, (size_t)len - 1), UL_ERR_LENGTH);
    /* a CRC-failed frame is rebuilt as received */
    ul_frame_t bad = f;
    bad.crc ^= 1;
    assert_int_equal(ul_frame_air_bits(&bad, air, sizeof air), len);
    assert_memory_not_equal(air, frame, (size_t)len);
    bad = f;
    bad.rank = 0; /* joint decoding: no single transmission */
    assert_int_equal(ul_frame_air_bits(&bad, air, sizeof air), UL_ERR_ARG);
    bad = f;
    bad.container_len = 10;
    assert_int_equal(ul_frame_air_bits(&bad, air, sizeof air), UL_ERR_LENGTH);
    assert_int_equal(ul_header_word(10, false, 1), 0);
    assert_int_equal(ul_header_word(12, true, 1), 0);
    assert_int_equal(ul_header_word(12, false, 4), 0);
    assert_int_equal(ul_header_word(8, false, 1) >> UL_FT_BITS, UL_PREAMBLE);
}

static void test_roundtrip_all_sizes(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5eed0003, 0);
    for (size_t plen = 0; plen <= UL_MAX_PAYLOAD_BYTES; plen++)
        for (int bf = 0; bf < 2; bf++)
            for (int rank = 1; rank <= 3; rank++)
                for (int trial = 0; trial < 4; trial++) {
                    uint8_t key[16];
                    random_bytes(key, 16);
                    ul_message_t m = {.ep_id = rng(), .bf = bf, .payload_len = plen};
                    /* MC 0 and 4095 are the edges of the 12-bit field */
                    m.mc = trial == 0 ? 0 : trial == 1 ? UL_MC_MAX : (uint16_t)(rng() & 0xFFF);
                    random_bytes(m.payload, plen);
                    roundtrip(&m, key, rank);
                }
}

static void test_roundtrip_one_bit(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5eed0004, 0);
    for (int bit = 0; bit < 2; bit++)
        for (int bf = 0; bf < 2; bf++)
            for (int rank = 1; rank <= 3; rank++) {
                uint8_t key[16];
                random_bytes(key, 16);
                uint32_t ep_id = rng();
                uint16_t mc = (uint16_t)(rng() & 0xFFF);
                ul_message_t m = {.ep_id = ep_id,
                                  .mc = mc,
                                  .bf = bf,
                                  .one_bit = true,
                                  .payload_bit = (uint8_t)bit};
                roundtrip(&m, key, rank);
            }
}

static void test_roundtrip_control(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5eed0005, 0);
    static const ul_control_t cases[] = {
        {3300, 4300, 250, -126}, {0, 0, 0, -100},         {65535, 65535, 32767, 27},
        {1, 2, -32768, -228},    {2900, 2750, -155, -90},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int kind = UL_KIND_KEEPALIVE; kind <= UL_KIND_DL_CONFIRMATION; kind++)
            for (int rank = 1; rank <= 3; rank++) {
                uint8_t key[16];
                random_bytes(key, 16);
                uint32_t ep_id = rng();
                uint16_t mc = (uint16_t)(rng() & 0xFFF);
                ul_message_t m = {
                    .ep_id = ep_id, .mc = mc, .kind = (ul_kind_t)kind, .control = cases[i]};
                if (kind == UL_KIND_KEEPALIVE)
                    m.control.rssi_dbm = 0;
                roundtrip(&m, key, rank);
            }
    /* the confirmation's little-endian layout, from the spec's Annex C */
    uint8_t key[16] = {0}, c[16];
    ul_message_t m = {.kind = UL_KIND_DL_CONFIRMATION, .control = {3300, 4300, 250, -126}};
    assert_int_equal(ul_container_build(&m, key, c, sizeof c), 16);
    const uint8_t want[8] = {0x09, 0xE4, 0x0C, 0xCC, 0x10, 0xFA, 0x00, 0xE6};
    assert_memory_equal(c + 6, want, 8);
    /* RSSI outside what the signed byte can carry */
    m.control.rssi_dbm = 28;
    assert_int_equal(ul_container_build(&m, key, c, sizeof c), UL_ERR_FIELDS);
    m.control.rssi_dbm = -229;
    assert_int_equal(ul_container_build(&m, key, c, sizeof c), UL_ERR_FIELDS);
}

/* ---- errors ---- */

static void test_crc_error(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5eed0006, 0);
    uint8_t key[16];
    random_bytes(key, 16);
    for (int rank = 1; rank <= 3; rank++) {
        ul_message_t m = {.ep_id = 0x12345678, .mc = 99, .payload_len = 12};
        random_bytes(m.payload, 12);
        uint8_t frame[UL_MAX_FRAME_BYTES];
        int len = ul_frame_encode(&m, key, rank, frame, sizeof frame);
        for (int bit = 32; bit < len * 8; bit += 7) {
            uint8_t bad[UL_MAX_FRAME_BYTES];
            memcpy(bad, frame, (size_t)len);
            ul_bit_set(bad, (size_t)bit, !ul_bit_get(bad, (size_t)bit));
            ul_frame_t f;
            assert_int_equal(ul_frame_decode(bad, (size_t)len * 8, true, 2, &f), UL_ERR_CRC);
            assert_false(f.crc_ok);
            assert_int_equal(f.rank, rank);
            assert_int_equal(f.container_len, 20);
        }
    }
}

static void test_bad_input(void **state)
{
    (void)state;
    uint8_t key[16] = {0}, buf[64] = {0}, auth[16];
    ul_frame_t f;
    ul_message_t m = {.payload_len = 4};
    float soft[64] = {0};

    /* NULL pointers */
    assert_int_equal(ul_frame_decode(NULL, 200, true, 2, &f), UL_ERR_ARG);
    assert_int_equal(ul_frame_decode(buf, 200, true, 2, NULL), UL_ERR_ARG);
    assert_int_equal(ul_frame_decode(buf, 200, true, -1, &f), UL_ERR_ARG);
    assert_int_equal(ul_frame_decode_soft(NULL, 200, 2, &f), UL_ERR_ARG);
    assert_int_equal(ul_frame_encode(NULL, key, 1, buf, sizeof buf), UL_ERR_ARG);
    assert_int_equal(ul_frame_encode(&m, NULL, 1, buf, sizeof buf), UL_ERR_ARG);
    assert_int_equal(ul_frame_encode(&m, key, 1, NULL, sizeof buf), UL_ERR_ARG);
    assert_int_equal(ul_container_build(NULL, key, buf, sizeof buf), UL_ERR_ARG);
    assert_int_equal(ul_container_parse(NULL, 8, false, &m, NULL, NULL), UL_ERR_ARG);
    assert_int_equal(ul_container_parse(buf, 8, false, NULL, NULL, NULL), UL_ERR_ARG);
    assert_int_equal(ul_auth_verify(NULL, 8, key), UL_ERR_ARG);
    assert_int_equal(ul_auth_verify(buf, 8, NULL), UL_ERR_ARG);
    assert_int_equal(ul_auth_compute(NULL, buf, 6, auth, 2), UL_ERR_ARG);
    assert_int_equal(ul_auth_compute(key, NULL, 6, auth, 2), UL_ERR_ARG);
    assert_int_equal(ul_auth_compute(key, buf, 0, auth, 2), UL_ERR_ARG);
    assert_int_equal(ul_auth_compute(key, buf, 33, auth, 2), UL_ERR_ARG);
    assert_int_equal(ul_auth_compute(key, buf, 6, auth, 17), UL_ERR_ARG);
    assert_int_equal(ul_container_len(NULL), UL_ERR_ARG);
    assert_int_equal(ul_frame_parse_body(NULL, 8, false, &f), UL_ERR_ARG);
    assert_int_equal(ul_frame_parse_body(buf, 10, false, &f), UL_ERR_LENGTH);

    /* bad ranks, MC, payload, capacity */
    assert_int_equal(ul_frame_encode(&m, key, 0, buf, sizeof buf), UL_ERR_ARG);
    assert_int_equal(ul_frame_encode(&m, key, 4, buf, sizeof buf), UL_ERR_ARG);
    assert_int_equal(ul_frame_encode(&m, key, 1, buf, 17), UL_ERR_LENGTH);
    assert_int_equal(ul_frame_encode(&m, key, 1, buf, 18), 18);
    assert_int_equal(ul_container_build(&m, key, buf, 11), UL_ERR_LENGTH);
    m.mc = 4096;
    assert_int_equal(ul_frame_encode(&m, key, 1, buf, sizeof buf), UL_ERR_ARG);
    m.mc = 0;
    m.payload_len = 13; /* oversized */
    assert_int_equal(ul_frame_encode(&m, key, 1, buf, sizeof buf), UL_ERR_FIELDS);
    m.payload_len = 1;
    m.one_bit = true; /* a 1-bit message carries no bytes */
    assert_int_equal(ul_container_build(&m, key, buf, sizeof buf), UL_ERR_FIELDS);
    m.payload_len = 0;
    m.payload_bit = 2;
    assert_int_equal(ul_container_build(&m, key, buf, sizeof buf), UL_ERR_FIELDS);
    m.payload_bit = 0;
    m.kind = (ul_kind_t)7;
    assert_int_equal(ul_container_build(&m, key, buf, sizeof buf), UL_ERR_ARG);

    /* truncated frames: every length short of the whole frame */
    ul_message_t ok = {.ep_id = 1, .payload_len = 8};
    uint8_t frame[UL_MAX_FRAME_BYTES];
    int len = ul_frame_encode(&ok, key, 2, frame, sizeof frame);
    for (size_t nbits = 0; nbits < (size_t)len * 8; nbits++)
        assert_int_equal(ul_frame_decode(frame, nbits, true, 2, &f), UL_ERR_LENGTH);
    for (size_t nbits = 0; nbits < 13; nbits++)
        assert_int_equal(ul_frame_decode_soft(soft, nbits, 2, &f), UL_ERR_LENGTH);

    /* container lengths and LI combinations Table 3-1 forbids */
    static const size_t bad_lens[] = {0, 7, 10, 11, 13, 15, 17, 19, 21, 64};
    for (size_t i = 0; i < sizeof bad_lens / sizeof bad_lens[0]; i++) {
        assert_int_equal(ul_container_parse(buf, bad_lens[i], false, &m, NULL, NULL),
                         UL_ERR_LENGTH);
        assert_int_equal(ul_auth_verify(buf, bad_lens[i], key), UL_ERR_LENGTH);
    }
    memset(buf, 0, sizeof buf);
    buf[0] = 0x40; /* LI 01 */
    assert_int_equal(ul_container_parse(buf, 8, false, &m, NULL, NULL), UL_ERR_FIELDS);
    assert_int_equal(ul_container_parse(buf, 9, false, &m, NULL, NULL), UL_ERR_FIELDS);
    buf[0] = 0xC0; /* LI 11 */
    assert_int_equal(ul_container_parse(buf, 12, false, &m, NULL, NULL), UL_ERR_FIELDS);
    assert_int_equal(ul_container_parse(buf, 16, false, &m, NULL, NULL), 0);
    /* control frames: only 16 bytes, only CT 08 with 7 bytes or CT 09 with 8 bytes */
    assert_int_equal(ul_container_parse(buf, 20, true, &m, NULL, NULL), UL_ERR_FIELDS);
    buf[0] = 0x40;
    buf[6] = UL_CT_DL_CONFIRMATION;
    assert_int_equal(ul_container_parse(buf, 16, true, &m, NULL, NULL), UL_ERR_FIELDS);
    buf[6] = UL_CT_KEEPALIVE;
    assert_int_equal(ul_container_parse(buf, 16, true, &m, NULL, NULL), 0);
    assert_int_equal(m.kind, UL_KIND_KEEPALIVE);
    buf[6] = 0x0A;
    assert_int_equal(ul_container_parse(buf, 16, true, &m, NULL, NULL), UL_ERR_FIELDS);

    /* a frame whose CRC is right but whose LI is not allowed: UL_ERR_FIELDS */
    uint8_t body[UL_MAX_CONTAINER_BYTES + 2] = {0x40};
    uint16_t crc = ul_crc16(body, 8);
    body[8] = (uint8_t)(crc >> 8);
    body[9] = (uint8_t)crc;
    assert_int_equal(ul_frame_parse_body(body, 8, false, &f), UL_ERR_FIELDS);
    assert_true(f.crc_ok);

    /* every error code has a name */
    for (int code = 0; code >= -7; code--)
        assert_non_null(ul_strerror(code));
    assert_string_equal(ul_kind_name(UL_KIND_APP), "app");
    assert_string_equal(ul_kind_name(UL_KIND_KEEPALIVE), "keepalive");
    assert_string_equal(ul_kind_name(UL_KIND_DL_CONFIRMATION), "dl_confirmation");
}

/* Random bytes must never crash the decoder, whatever they claim to be. */
static void test_decode_garbage(void **state)
{
    (void)state;
    prng_seed(&rng_state, 0x5eed0007, 0);
    int crc_errors = 0;
    for (int i = 0; i < 3000; i++) {
        uint8_t buf[UL_MAX_FRAME_BYTES];
        random_bytes(buf, sizeof buf);
        size_t nbits = rng() % (sizeof buf * 8 + 1);
        ul_frame_t f;
        bool has_preamble = rng() & 1;
        int max_distance = (int)(rng() % 14);
        int rc = ul_frame_decode(buf, nbits, has_preamble, max_distance, &f);
        assert_true(rc == 0 || rc == UL_ERR_LENGTH || rc == UL_ERR_FT || rc == UL_ERR_CRC ||
                    rc == UL_ERR_FIELDS);
        crc_errors += rc == UL_ERR_CRC;
    }
    assert_true(crc_errors > 100);
}

/* Same content: ID, MC, BF, kind, then the 1-bit value, the control report or the bytes. */
static void test_message_equal(void **state)
{
    (void)state;
    ul_message_t a = {.ep_id = 0x01020304, .mc = 7, .payload_len = 3, .payload = {1, 2, 3}};
    ul_message_t b = a;
    assert_true(ul_message_equal(&a, &b));
    b.payload[2] = 4;
    assert_false(ul_message_equal(&a, &b));
    b = a;
    b.payload[5] = 9; /* beyond the length: not part of the message */
    assert_true(ul_message_equal(&a, &b));
    b.mc = 8;
    assert_false(ul_message_equal(&a, &b));
    b = a;
    b.bf = true;
    assert_false(ul_message_equal(&a, &b));
    ul_message_t c = {.ep_id = 1, .one_bit = true, .payload_bit = 1}, d = c;
    assert_true(ul_message_equal(&c, &d));
    d.payload_bit = 0;
    assert_false(ul_message_equal(&c, &d));
    ul_message_t k = {.ep_id = 1, .kind = UL_KIND_KEEPALIVE, .payload_len = 7}, l = k;
    k.control.temp_tenth_c = 215;
    l.control.temp_tenth_c = 215;
    assert_true(ul_message_equal(&k, &l));
    l.control.vdd_tx_mv = 3000;
    assert_false(ul_message_equal(&k, &l));
    l = k;
    l.kind = UL_KIND_DL_CONFIRMATION;
    assert_false(ul_message_equal(&k, &l));
    /* a confirmation also carries the RSSI the device measured on the downlink */
    k.kind = UL_KIND_DL_CONFIRMATION;
    k.control.rssi_dbm = -90;
    l = k;
    assert_true(ul_message_equal(&k, &l));
    l.control.rssi_dbm = -89;
    assert_false(ul_message_equal(&k, &l));
    k.kind = l.kind = UL_KIND_KEEPALIVE; /* a keepalive has none */
    assert_true(ul_message_equal(&k, &l));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_payload_len),
        cmocka_unit_test(test_message_equal),
        cmocka_unit_test(test_vectors_encode),
        cmocka_unit_test(test_vectors_decode),
        cmocka_unit_test(test_spec_auth_typo),
        cmocka_unit_test(test_crc_check_value),
        cmocka_unit_test(test_auth_cyclic_fill),
        cmocka_unit_test(test_table_3_1),
        cmocka_unit_test(test_ft_table),
        cmocka_unit_test(test_ft_match_flipped_bits),
        cmocka_unit_test(test_ft_match_soft),
        cmocka_unit_test(test_frame_ft_errors),
        cmocka_unit_test(test_roundtrip_all_sizes),
        cmocka_unit_test(test_air_bits_bad_input),
        cmocka_unit_test(test_roundtrip_one_bit),
        cmocka_unit_test(test_roundtrip_control),
        cmocka_unit_test(test_ft_rank_soft),
        cmocka_unit_test(test_crc_error),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_decode_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
