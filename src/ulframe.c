/* ulframe: Sigfox uplink frame codec (spec rev 1.4 §3, §5). Licence: MIT.
 * The FT table, container layout and CRC live here and nowhere else. */
#include "ulframe.h"

#include <math.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ulcode.h"

const char *ul_strerror(int code)
{
    switch (code) {
    case UL_OK:
        return "success";
    case UL_ERR_ARG:
        return "invalid argument";
    case UL_ERR_LENGTH:
        return "wrong length";
    case UL_ERR_FT:
        return "unknown frame type";
    case UL_ERR_CRC:
        return "UL-CRC mismatch";
    case UL_ERR_FIELDS:
        return "invalid field combination";
    case UL_ERR_CRYPTO:
        return "libcrypto failure";
    default:
        return "unknown error";
    }
}

const char *ul_kind_name(ul_kind_t kind)
{
    switch (kind) {
    case UL_KIND_APP:
        return "app";
    case UL_KIND_KEEPALIVE:
        return "keepalive";
    case UL_KIND_DL_CONFIRMATION:
        return "dl_confirmation";
    }
    return "?";
}

/* ---- Frame types (Table 3-3 / Annex B; the seed's text tables are misaligned, these
 * values follow Table 3-1's container sizes and the Annex C examples). ---- */

static const struct {
    uint8_t container_bytes;
    bool control;
    uint16_t ft[3]; /* ranks 1, 2, 3 */
} ft_table[] = {
    {8, false, {0x06B, 0x6E0, 0x034}},  {9, false, {0x08D, 0x0D2, 0x302}},
    {12, false, {0x35F, 0x598, 0x5A3}}, {16, false, {0x611, 0x6BF, 0x72C}},
    {20, false, {0x94C, 0x971, 0x997}}, {16, true, {0xF67, 0xFC9, 0x11BE}},
};
#define FT_TABLE_LEN (sizeof ft_table / sizeof ft_table[0])

uint16_t ul_ft_value(size_t container_bytes, bool control, int rank)
{
    if (rank < 1 || rank > 3)
        return 0;
    for (size_t i = 0; i < FT_TABLE_LEN; i++)
        if (ft_table[i].container_bytes == container_bytes && ft_table[i].control == control)
            return ft_table[i].ft[rank - 1];
    return 0;
}

int ul_ft_match(uint16_t ft_rx, int max_distance, size_t *container_bytes, bool *control,
                int *rank)
{
    int best = UL_FT_BITS + 1;
    size_t best_i = 0;
    int best_r = 0;
    ft_rx &= (1u << UL_FT_BITS) - 1;
    for (size_t i = 0; i < FT_TABLE_LEN; i++)
        for (int r = 0; r < 3; r++) {
            int d = __builtin_popcount((unsigned)(ft_rx ^ ft_table[i].ft[r]));
            if (d < best) {
                best = d;
                best_i = i;
                best_r = r;
            }
        }
    if (best > max_distance)
        return UL_ERR_FT;
    if (container_bytes)
        *container_bytes = ft_table[best_i].container_bytes;
    if (control)
        *control = ft_table[best_i].control;
    if (rank)
        *rank = best_r + 1;
    return best;
}

size_t ul_ft_rank_soft(const float *soft, ul_ft_hyp_t *out, size_t cap)
{
    if (!soft || !out)
        return 0;
    uint16_t hard = 0;
    for (int b = 0; b < UL_FT_BITS; b++)
        hard = (uint16_t)(hard << 1 | (soft[b] > 0.0f));
    size_t n = 0;
    for (size_t i = 0; i < FT_TABLE_LEN; i++)
        for (int r = 0; r < 3; r++) {
            double c = 0.0;
            for (int b = 0; b < UL_FT_BITS; b++) {
                float x = isnan(soft[b]) ? 0.0f : soft[b];
                c += ((ft_table[i].ft[r] >> (UL_FT_BITS - 1 - b)) & 1) ? x : -x;
            }
            /* insertion after every equal score: ties keep the table's order */
            size_t k = n < cap ? n : cap;
            while (k > 0 && out[k - 1].score < c)
                k--;
            if (k >= cap)
                continue;
            size_t last = n < cap ? n : cap - 1;
            memmove(out + k + 1, out + k, (last - k) * sizeof *out);
            out[k] = (ul_ft_hyp_t){.ft = ft_table[i].ft[r],
                                   .rank = r + 1,
                                   .container_bytes = ft_table[i].container_bytes,
                                   .control = ft_table[i].control,
                                   .distance = __builtin_popcount((unsigned)(hard ^ ft_table[i].ft[r])),
                                   .score = c};
            if (n < cap)
                n++;
        }
    return n;
}

int ul_ft_match_soft(const float *soft, int max_distance, uint16_t *ft_rx,
                     size_t *container_bytes, bool *control, int *rank)
{
    if (!soft)
        return UL_ERR_ARG;
    uint16_t hard = 0;
    for (int b = 0; b < UL_FT_BITS; b++)
        hard = (uint16_t)(hard << 1 | (soft[b] > 0.0f));
    if (ft_rx)
        *ft_rx = hard;
    ul_ft_hyp_t best;
    ul_ft_rank_soft(soft, &best, 1);
    if (best.distance > max_distance)
        return UL_ERR_FT;
    if (container_bytes)
        *container_bytes = best.container_bytes;
    if (control)
        *control = best.control;
    if (rank)
        *rank = best.rank;
    return best.distance;
}

/* ---- CRC and authentication ---- */

uint16_t ul_crc16(const uint8_t *data, size_t len)
{
    uint16_t crc = 0x0000;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(data[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)(crc << 1 ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc ^ 0xFFFF;
}

static bool container_size_ok(size_t n)
{
    return n == 8 || n == 9 || n == 12 || n == 16 || n == 20;
}

size_t ul_auth_len(size_t container_bytes, unsigned li)
{
    switch (container_bytes) {
    case 8: /* LI 00 empty, 10 bit 0, 11 bit 1; 01 unused */
        return li == 1 ? 0 : 2;
    case 9: /* 1-byte payload, LI 00 only */
        return li == 0 ? 2 : 0;
    case 12: /* 2..4 bytes: LI 11 would mean a 1-byte payload, which uses 9 bytes */
        return li == 3 ? 0 : li + 2;
    case 16:
    case 20:
        return li <= 3 ? li + 2 : 0;
    default:
        return 0;
    }
}

/* LI for a payload of n bytes (n >= 1): AUTH fills the container to its size, and
 * AUTH = LI + 2 bytes (Table 3-1); 1-byte payloads have their own 9-byte container. */
static unsigned li_for_payload(size_t n)
{
    return n == 1 ? 0 : 3 - (unsigned)((n - 1) % 4);
}

int ul_auth_compute(const uint8_t key[UL_KEY_BYTES], const uint8_t *data, size_t len,
                    uint8_t *auth, size_t auth_len)
{
    if (!key || !data || !auth || len == 0 || len > 32 || auth_len == 0 || auth_len > 16)
        return UL_ERR_ARG;
    const size_t blocks = len > 16 ? 2 : 1;
    uint8_t in[32], out[48];
    const uint8_t iv[16] = {0};
    for (size_t i = 0; i < 16 * blocks; i++)
        in[i] = data[i % len];

    int rc = UL_ERR_CRYPTO, n1 = 0, n2 = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx && EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv) == 1 &&
        EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
        EVP_EncryptUpdate(ctx, out, &n1, in, (int)(16 * blocks)) == 1 &&
        EVP_EncryptFinal_ex(ctx, out + n1, &n2) == 1 && (size_t)(n1 + n2) == 16 * blocks) {
        /* CBC-MAC: the chained last block authenticates the whole input. */
        memcpy(auth, out + 16 * (blocks - 1), auth_len);
        rc = 0;
    }
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(out, sizeof out);
    return rc;
}

/* ---- Container ---- */

int ul_container_len(const ul_message_t *m)
{
    if (!m)
        return UL_ERR_ARG;
    switch (m->kind) {
    case UL_KIND_KEEPALIVE:
    case UL_KIND_DL_CONFIRMATION:
        return 16;
    case UL_KIND_APP:
        break;
    default:
        return UL_ERR_ARG;
    }
    if (m->one_bit)
        return (m->payload_len == 0 && m->payload_bit <= 1) ? 8 : UL_ERR_FIELDS;
    static const uint8_t size_for_len[UL_MAX_PAYLOAD_BYTES + 1] = {8,  9,  12, 12, 12, 16, 16,
                                                                   16, 16, 20, 20, 20, 20};
    if (m->payload_len > UL_MAX_PAYLOAD_BYTES)
        return UL_ERR_FIELDS;
    return size_for_len[m->payload_len];
}

int ul_max_payload_len(size_t container_bytes)
{
    switch (container_bytes) {
    case 8:
        return 0;
    case 9:
        return 1;
    case 12:
        return 4;
    case 16:
        return 8;
    case 20:
        return 12;
    default:
        return UL_ERR_LENGTH;
    }
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFF);
    p[1] = (uint8_t)(v >> 8);
}

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Serialises the §5.1 / §5.2 control payload; returns its length or UL_ERR_FIELDS. */
static int control_serialise(const ul_message_t *m, uint8_t *p)
{
    const ul_control_t *c = &m->control;
    p[0] = m->kind == UL_KIND_KEEPALIVE ? UL_CT_KEEPALIVE : UL_CT_DL_CONFIRMATION;
    put_le16(p + 1, c->vdd_idle_mv);
    put_le16(p + 3, c->vdd_tx_mv);
    put_le16(p + 5, (uint16_t)c->temp_tenth_c);
    if (m->kind == UL_KIND_KEEPALIVE)
        return UL_KEEPALIVE_PAYLOAD_BYTES;
    /* RSSI field: signed byte = RSS estimate + 100 dBm (§5.2). */
    if (c->rssi_dbm < -128 - 100 || c->rssi_dbm > 127 - 100)
        return UL_ERR_FIELDS;
    p[7] = (uint8_t)(int8_t)(c->rssi_dbm + 100);
    return UL_DL_CONFIRMATION_PAYLOAD_BYTES;
}

int ul_container_build(const ul_message_t *m, const uint8_t key[UL_KEY_BYTES],
                       uint8_t *container, size_t cap)
{
    if (!m || !key || !container || m->mc > UL_MC_MAX)
        return UL_ERR_ARG;
    int size = ul_container_len(m);
    if (size < 0)
        return size;
    if ((size_t)size > cap)
        return UL_ERR_LENGTH;

    uint8_t payload[UL_MAX_PAYLOAD_BYTES];
    size_t payload_len = m->payload_len;
    unsigned li;
    if (m->kind != UL_KIND_APP) {
        int n = control_serialise(m, payload);
        if (n < 0)
            return n;
        payload_len = (size_t)n;
        li = li_for_payload(payload_len);
    } else if (payload_len == 0) {
        li = m->one_bit ? 2u | m->payload_bit : 0u; /* Table 3-1: 10 = bit 0, 11 = bit 1 */
    } else {
        memcpy(payload, m->payload, payload_len);
        li = li_for_payload(payload_len);
    }

    /* Byte 0: LI(2) BF(1) REP(1) MC[11:8]; byte 1: MC[7:0]; then ID bytes reversed. */
    container[0] = (uint8_t)(li << 6 | (unsigned)m->bf << 5 | (unsigned)m->rep << 4 | m->mc >> 8);
    container[1] = (uint8_t)(m->mc & 0xFF);
    for (int i = 0; i < UL_ID_BYTES; i++)
        container[2 + i] = (uint8_t)(m->ep_id >> (8 * i));
    if (payload_len)
        memcpy(container + 6, payload, payload_len);
    size_t data_len = 6 + payload_len;
    size_t auth_len = ul_auth_len((size_t)size, li);
    if (auth_len == 0 || data_len + auth_len != (size_t)size)
        return UL_ERR_FIELDS; /* cannot happen for a valid table; keeps layout honest */
    int rc = ul_auth_compute(key, container, data_len, container + data_len, auth_len);
    return rc < 0 ? rc : size;
}

bool ul_message_equal(const ul_message_t *a, const ul_message_t *b)
{
    if (a->ep_id != b->ep_id || a->mc != b->mc || a->bf != b->bf || a->kind != b->kind ||
        a->one_bit != b->one_bit)
        return false;
    if (a->one_bit)
        return a->payload_bit == b->payload_bit;
    if (a->kind != UL_KIND_APP)
        return a->control.vdd_idle_mv == b->control.vdd_idle_mv &&
               a->control.vdd_tx_mv == b->control.vdd_tx_mv &&
               a->control.temp_tenth_c == b->control.temp_tenth_c &&
               (a->kind != UL_KIND_DL_CONFIRMATION || a->control.rssi_dbm == b->control.rssi_dbm);
    return a->payload_len == b->payload_len && memcmp(a->payload, b->payload, a->payload_len) == 0;
}

int ul_container_parse(const uint8_t *container, size_t len, bool control, ul_message_t *m,
                       uint8_t *auth, size_t *auth_len)
{
    if (!container || !m)
        return UL_ERR_ARG;
    if (!container_size_ok(len))
        return UL_ERR_LENGTH;
    memset(m, 0, sizeof *m);
    unsigned li = container[0] >> 6;
    size_t alen = ul_auth_len(len, li);
    if (alen == 0 || (control && len != 16))
        return UL_ERR_FIELDS;

    m->bf = (container[0] >> 5) & 1;
    m->rep = (container[0] >> 4) & 1;
    m->mc = (uint16_t)((container[0] & 0x0F) << 8 | container[1]);
    for (int i = 0; i < UL_ID_BYTES; i++)
        m->ep_id |= (uint32_t)container[2 + i] << (8 * i);
    m->payload_len = len - 6 - alen;
    memcpy(m->payload, container + 6, m->payload_len);
    if (len == 8 && li >= 2) {
        m->one_bit = true;
        m->payload_bit = li & 1;
    }

    m->kind = UL_KIND_APP;
    if (control) {
        const uint8_t *p = m->payload;
        if (m->payload_len == UL_KEEPALIVE_PAYLOAD_BYTES && p[0] == UL_CT_KEEPALIVE) {
            m->kind = UL_KIND_KEEPALIVE;
        } else if (m->payload_len == UL_DL_CONFIRMATION_PAYLOAD_BYTES &&
                   p[0] == UL_CT_DL_CONFIRMATION) {
            m->kind = UL_KIND_DL_CONFIRMATION;
            m->control.rssi_dbm = (int16_t)((int8_t)p[7] - 100);
        } else {
            return UL_ERR_FIELDS; /* unknown control type or length */
        }
        m->control.vdd_idle_mv = get_le16(p + 1);
        m->control.vdd_tx_mv = get_le16(p + 3);
        m->control.temp_tenth_c = (int16_t)get_le16(p + 5);
    }
    if (auth)
        memcpy(auth, container + len - alen, alen);
    if (auth_len)
        *auth_len = alen;
    return 0;
}

int ul_auth_verify(const uint8_t *container, size_t len, const uint8_t key[UL_KEY_BYTES])
{
    if (!container || !key)
        return UL_ERR_ARG;
    if (!container_size_ok(len))
        return UL_ERR_LENGTH;
    size_t alen = ul_auth_len(len, container[0] >> 6);
    if (alen == 0)
        return UL_ERR_FIELDS;
    uint8_t auth[16];
    int rc = ul_auth_compute(key, container, len - alen, auth, alen);
    if (rc < 0)
        return rc;
    return CRYPTO_memcmp(auth, container + len - alen, alen) == 0;
}

/* ---- Whole frames ---- */

uint32_t ul_header_word(size_t container_bytes, bool control, int rank)
{
    uint16_t ft = ul_ft_value(container_bytes, control, rank);
    return ft ? (uint32_t)UL_PREAMBLE << UL_FT_BITS | ft : 0;
}

/* The air bits of a frame from its un-coded container + CRC (body, clen + 2 bytes):
 * header word, then the body coded for rank. Returns the length in bytes or UL_ERR_*. */
static int air_bits(const uint8_t *body, size_t clen, bool control, int rank, uint8_t *frame,
                    size_t cap)
{
    size_t total = UL_HEADER_BYTES + clen + UL_CRC_BYTES;
    if (cap < total)
        return UL_ERR_LENGTH;
    /* Header: 19 preamble bits then 13 FT bits = one 32-bit word, MSbit first. */
    uint32_t header = ul_header_word(clen, control, rank);
    if (!header)
        return UL_ERR_ARG;
    for (int i = 0; i < UL_HEADER_BYTES; i++)
        frame[i] = (uint8_t)(header >> (24 - 8 * i));
    return ul_code_encode(rank, body, frame + UL_HEADER_BYTES, ul_body_bits(clen)) < 0 ? UL_ERR_ARG
                                                                                       : (int)total;
}

int ul_frame_encode(const ul_message_t *m, const uint8_t key[UL_KEY_BYTES], int rank,
                    uint8_t *frame, size_t cap)
{
    if (!m || !key || !frame || rank < 1 || rank > 3)
        return UL_ERR_ARG;
    uint8_t body[UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES];
    int clen = ul_container_build(m, key, body, UL_MAX_CONTAINER_BYTES);
    if (clen < 0)
        return clen;
    uint16_t crc = ul_crc16(body, (size_t)clen);
    body[clen] = (uint8_t)(crc >> 8);
    body[clen + 1] = (uint8_t)(crc & 0xFF);
    return air_bits(body, (size_t)clen, m->kind != UL_KIND_APP, rank, frame, cap);
}

int ul_frame_air_bits(const ul_frame_t *f, uint8_t *frame, size_t cap)
{
    if (!f || !frame || f->rank < 1 || f->rank > 3)
        return UL_ERR_ARG;
    if (!container_size_ok(f->container_len))
        return UL_ERR_LENGTH;
    uint8_t body[UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES];
    memcpy(body, f->container, f->container_len);
    body[f->container_len] = (uint8_t)(f->crc >> 8);
    body[f->container_len + 1] = (uint8_t)(f->crc & 0xFF);
    return air_bits(body, f->container_len, f->control, f->rank, frame, cap);
}

int ul_frame_parse_body(const uint8_t *body, size_t container_len, bool control,
                        ul_frame_t *out)
{
    if (!body || !out)
        return UL_ERR_ARG;
    if (!container_size_ok(container_len))
        return UL_ERR_LENGTH;
    out->control = control;
    out->container_len = container_len;
    memcpy(out->container, body, container_len);
    out->crc = (uint16_t)(body[container_len] << 8 | body[container_len + 1]);
    out->crc_ok = out->crc == ul_crc16(body, container_len);
    memset(&out->msg, 0, sizeof out->msg);
    out->auth_len = 0;
    if (!out->crc_ok)
        return UL_ERR_CRC;
    int rc = ul_container_parse(body, container_len, control, &out->msg, out->auth,
                                &out->auth_len);
    if (rc < 0)
        memset(&out->msg, 0, sizeof out->msg);
    return rc;
}

/* Records an FT match (d = distance or negative code) in out; returns the container size
 * or the negative code. */
static int record_ft(int d, uint16_t ft, size_t clen, bool control, int rank, ul_frame_t *out)
{
    out->ft = ft;
    if (d < 0)
        return d;
    out->ft_distance = d;
    out->rank = rank;
    out->control = control;
    out->container_len = clen;
    return (int)clen;
}

int ul_frame_decode(const uint8_t *bytes, size_t nbits, bool has_preamble, int max_ft_distance,
                    ul_frame_t *out)
{
    if (!bytes || !out || max_ft_distance < 0)
        return UL_ERR_ARG;
    memset(out, 0, sizeof *out);
    size_t pos = has_preamble ? UL_PREAMBLE_BITS : 0;
    if (nbits < pos + UL_FT_BITS)
        return UL_ERR_LENGTH;
    uint16_t ft = 0;
    for (int i = 0; i < UL_FT_BITS; i++)
        ft = (uint16_t)(ft << 1 | ul_bit_get(bytes, pos++));
    size_t c = 0;
    bool control = false;
    int rank = 0;
    int d = ul_ft_match(ft, max_ft_distance, &c, &control, &rank);
    int clen = record_ft(d, ft, c, control, rank, out);
    if (clen < 0)
        return clen;
    size_t body_bits = ul_body_bits((size_t)clen);
    if (nbits < pos + body_bits)
        return UL_ERR_LENGTH;
    uint8_t body[UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES] = {0};
    for (size_t i = 0; i < body_bits; i++)
        ul_bit_set(body, i, ul_bit_get(bytes, pos + i));
    if (ul_code_decode_hard(out->rank, body, body, body_bits) < 0)
        return UL_ERR_ARG;
    return ul_frame_parse_body(body, (size_t)clen, out->control, out);
}

int ul_frame_decode_soft(const float *soft, size_t nbits, int max_ft_distance, ul_frame_t *out)
{
    if (!soft || !out || max_ft_distance < 0)
        return UL_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (nbits < UL_FT_BITS)
        return UL_ERR_LENGTH;
    uint16_t ft = 0;
    size_t c = 0;
    bool control = false;
    int rank = 0;
    int d = ul_ft_match_soft(soft, max_ft_distance, &ft, &c, &control, &rank);
    int clen = record_ft(d, ft, c, control, rank, out);
    if (clen < 0)
        return clen;
    size_t body_bits = ul_body_bits((size_t)clen);
    if (nbits < UL_FT_BITS + body_bits)
        return UL_ERR_LENGTH;
    uint8_t body[UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES];
    if (ul_code_decode_soft(out->rank, soft + UL_FT_BITS, body, body_bits) < 0)
        return UL_ERR_ARG;
    return ul_frame_parse_body(body, (size_t)clen, out->control, out);
}

int ul_frame_decode_joint(const float *const body_soft[3], size_t container_len, bool control,
                          ul_frame_t *out)
{
    if (!body_soft || !out)
        return UL_ERR_ARG;
    memset(out, 0, sizeof *out);
    uint16_t ft = ul_ft_value(container_len, control, 1);
    if (ft == 0)
        return UL_ERR_LENGTH;
    enum { BODY = UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES };
    uint8_t cand[4][BODY];
    int n = ul_viterbi_decode_list(body_soft, ul_body_bits(container_len), cand[0], BODY, 4);
    if (n < 0)
        return n;
    /* Best path first; the others differ only near the unterminated end, where the CRC
     * decides. At most 4 CRC trials, so the false-accept rate stays ~4 x 2^-16 before
     * UL-AUTH. */
    return ul_frame_parse_candidates(cand[0], BODY, n, container_len, control, out);
}

int ul_frame_parse_candidates(const uint8_t *cand, size_t stride, int n, size_t container_len,
                              bool control, ul_frame_t *out)
{
    if (!cand || !out || n < 1)
        return UL_ERR_ARG;
    uint16_t ft = ul_ft_value(container_len, control, 1);
    if (ft == 0)
        return UL_ERR_LENGTH;
    memset(out, 0, sizeof *out);
    int rc = UL_ERR_CRC;
    for (int i = 0; i < n; i++) {
        rc = ul_frame_parse_body(cand + (size_t)i * stride, container_len, control, out);
        if (rc != UL_ERR_CRC)
            break;
    }
    if (rc == UL_ERR_CRC) /* report the most likely body */
        ul_frame_parse_body(cand, container_len, control, out);
    out->rank = 0;
    out->ft = ft;
    out->ft_distance = 0;
    return rc;
}
