/* uldecode: soft bits -> uplink frame (FT, rank, un-coding, CRC, fields, UL-AUTH).
 * Licence: MIT. */
#include "uldecode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Frame types of Table 3-3 (via ul_header_word): application containers × ranks, then the
 * control container × ranks. */
static const size_t app_sizes[] = {8, 9, 12, 16, 20};
#define N_APP_SIZES (sizeof app_sizes / sizeof app_sizes[0])
#define N_FT ((N_APP_SIZES + 1) * 3)

const char *uldecode_status_name(uldecode_status_t s)
{
    switch (s) {
    case ULDEC_OK:
        return "ok";
    case ULDEC_REJECT_FT:
        return "ft";
    case ULDEC_REJECT_LENGTH:
        return "length";
    case ULDEC_REJECT_CRC:
        return "crc";
    case ULDEC_REJECT_FIELDS:
        return "fields";
    default:
        return "?";
    }
}

size_t uldecode_sync_words(demod_sync_t *out, size_t cap)
{
    if (!out || cap < N_FT)
        return 0;
    size_t n = 0;
    for (size_t s = 0; s <= N_APP_SIZES; s++)
        for (int r = 1; r <= 3; r++) {
            bool control = s == N_APP_SIZES;
            size_t len = control ? 16 : app_sizes[s];
            out[n].word = ul_header_word(len, control, r);
            out[n].body_bits = (uint16_t)ul_body_bits(len);
            n++;
        }
    return n;
}

int uldecode_frame(const float *soft, size_t nsoft, int max_ft_distance, uldecode_result_t *out)
{
    if (!out)
        return UL_ERR_ARG;
    memset(out, 0, sizeof *out);
    out->status = ULDEC_REJECT_LENGTH;
    if (!soft || max_ft_distance < 0)
        return UL_ERR_ARG;
    int rc = ul_frame_decode_soft(soft, nsoft, max_ft_distance, &out->frame);
    switch (rc) {
    case 0:
        out->status = ULDEC_OK;
        break;
    case UL_ERR_FT:
        out->status = ULDEC_REJECT_FT;
        return rc;
    case UL_ERR_CRC:
        out->status = ULDEC_REJECT_CRC;
        break;
    case UL_ERR_FIELDS:
        out->status = ULDEC_REJECT_FIELDS;
        break;
    default:
        out->status = ULDEC_REJECT_LENGTH;
        return rc;
    }
    /* The FT was readable and the body complete: keep its soft values as received. */
    out->body_bits = ul_body_bits(out->frame.container_len);
    for (size_t i = 0; i < out->body_bits; i++)
        out->body_soft[i] = isnan(soft[UL_FT_BITS + i]) ? 0.0f : soft[UL_FT_BITS + i];
    out->body_valid = true;
    return rc;
}

rx_auth_t uldecode_auth(const ul_frame_t *frame, const keystore_t *keys)
{
    if (!frame || !frame->crc_ok || !keys)
        return RX_AUTH_UNCHECKED;
    const uint8_t *key = keystore_find(keys, frame->msg.ep_id);
    if (!key)
        return RX_AUTH_UNKNOWN_DEVICE;
    int rc = ul_auth_verify(frame->container, frame->container_len, key);
    if (rc < 0)
        return RX_AUTH_UNCHECKED;
    return rc == 1 ? RX_AUTH_OK : RX_AUTH_BAD;
}

/* One error event of the chase: bit pos alone (width 1) or bits pos, pos + 1 (width 2, one
 * wrong coherent symbol: differential decoding turns it into two adjacent wrong bits). */
typedef struct {
    float cost; /* Σ |LLR| of its bits: how unlikely flipping them is */
    uint16_t pos;
    uint8_t width;
} chase_event_t;

/* A test pattern: one event, or two that share no bit (b < 0: one). */
typedef struct {
    float cost;
    int16_t a, b;
} chase_pattern_t;

static void insert_event(chase_event_t *ev, int *n, chase_event_t e)
{
    if (*n == ULDECODE_CHASE_EVENTS && !(e.cost < ev[*n - 1].cost))
        return;
    int i = *n < ULDECODE_CHASE_EVENTS ? (*n)++ : *n - 1;
    while (i > 0 && e.cost < ev[i - 1].cost) {
        ev[i] = ev[i - 1];
        i--;
    }
    ev[i] = e;
}

static bool events_touch(const chase_event_t *x, const chase_event_t *y)
{
    /* sharing a bit, or together the same bits as a single event of width 2 (that one
       is in the list when it is as cheap) */
    return x->pos <= y->pos + y->width && y->pos <= x->pos + x->width;
}

static int pattern_order(const void *pa, const void *pb)
{
    const chase_pattern_t *a = pa, *b = pb;
    if (a->cost != b->cost)
        return a->cost < b->cost ? -1 : 1;
    if (a->a != b->a)
        return a->a < b->a ? -1 : 1;
    return (a->b > b->b) - (a->b < b->b);
}

static void flip_event(uint8_t *hard, const chase_event_t *e)
{
    for (int k = 0; k < e->width; k++)
        ul_bit_set(hard, e->pos + (size_t)k, !ul_bit_get(hard, e->pos + (size_t)k));
}

/* CRC check word of a coded body: the CRC of its un-coded container XOR the CRC field, 0
 * when it checks. Un-coding (ul_code_decode_hard from the zero state) is linear and the
 * CRC affine, so syndrome(x ^ e) = syndrome(x) ^ syndrome(e) ^ syndrome(0): a pattern is
 * tested by XORing its events' words, and only one that checks is un-coded again. */
static uint16_t syndrome(int rank, const uint8_t *coded, size_t nb, size_t clen)
{
    uint8_t body[UL_CODE_MAX_BITS / 8];
    ul_code_decode_hard(rank, coded, body, nb);
    return (uint16_t)(ul_crc16(body, clen) ^ (body[clen] << 8 | body[clen + 1]));
}

int uldecode_chase_with(uldecode_result_t *io, uldecode_key_fn key_of, void *user,
                        int max_trials)
{
    if (!io || !key_of)
        return UL_ERR_ARG;
    if (max_trials < 1 || io->status != ULDEC_REJECT_CRC || !io->body_valid || io->body_bits == 0 ||
        io->body_bits > UL_CODE_MAX_BITS)
        return 0;
    const ul_frame_t fr = io->frame;
    const size_t nb = io->body_bits;
    if (fr.rank < 1 || fr.rank > 3 || ul_body_bits(fr.container_len) != nb)
        return UL_ERR_ARG;
    chase_event_t ev[ULDECODE_CHASE_EVENTS];
    int ne = 0;
    uint8_t hard[UL_CODE_MAX_BITS / 8] = {0};
    for (size_t i = 0; i < nb; i++) {
        float l = fabsf(io->body_soft[i]);
        ul_bit_set(hard, i, io->body_soft[i] > 0.0f);
        insert_event(ev, &ne, (chase_event_t){.cost = l, .pos = (uint16_t)i, .width = 1});
        if (i + 1 < nb)
            insert_event(ev, &ne,
                         (chase_event_t){.cost = l + fabsf(io->body_soft[i + 1]),
                                         .pos = (uint16_t)i,
                                         .width = 2});
    }
    chase_pattern_t pat[ULDECODE_CHASE_MAX_TRIALS];
    int np = 0;
    for (int a = 0; a < ne; a++) {
        pat[np++] = (chase_pattern_t){.cost = ev[a].cost, .a = (int16_t)a, .b = -1};
        for (int b = a + 1; b < ne; b++)
            if (!events_touch(&ev[a], &ev[b]))
                pat[np++] = (chase_pattern_t){
                    .cost = ev[a].cost + ev[b].cost, .a = (int16_t)a, .b = (int16_t)b};
    }
    const uint8_t zero[UL_CODE_MAX_BITS / 8] = {0};
    const uint16_t s0 = syndrome(fr.rank, zero, nb, fr.container_len);
    const uint16_t s_hard = syndrome(fr.rank, hard, nb, fr.container_len);
    uint16_t s_ev[ULDECODE_CHASE_EVENTS];
    for (int i = 0; i < ne; i++) {
        uint8_t e[UL_CODE_MAX_BITS / 8] = {0};
        flip_event(e, &ev[i]);
        s_ev[i] = (uint16_t)(syndrome(fr.rank, e, nb, fr.container_len) ^ s0);
    }
    /* The budget is the max_trials cheapest patterns; only those whose CRC checks (a few,
       often none) are ranked among all and tried, cheapest first. */
    chase_pattern_t ok[ULDECODE_CHASE_MAX_TRIALS];
    int nok = 0;
    for (int t = 0; t < np; t++)
        if ((s_hard ^ s_ev[pat[t].a] ^ (pat[t].b >= 0 ? s_ev[pat[t].b] : 0)) == 0) {
            int rank = 0;
            for (int u = 0; u < np && rank < max_trials; u++)
                rank += pattern_order(&pat[u], &pat[t]) < 0;
            if (rank < max_trials)
                ok[nok++] = pat[t];
        }
    qsort(ok, (size_t)nok, sizeof ok[0], pattern_order);
    for (int t = 0; t < nok; t++) {
        uint8_t coded[UL_CODE_MAX_BITS / 8], body[UL_CODE_MAX_BITS / 8];
        memcpy(coded, hard, sizeof coded);
        flip_event(coded, &ev[ok[t].a]);
        if (ok[t].b >= 0)
            flip_event(coded, &ev[ok[t].b]);
        if (ul_code_decode_hard(fr.rank, coded, body, nb) < 0)
            return UL_ERR_ARG;
        ul_frame_t f = fr;
        if (ul_frame_parse_body(body, fr.container_len, fr.control, &f) != 0)
            continue;
        uint8_t key[UL_KEY_BYTES];
        if (key_of(f.msg.ep_id, key, user) != 1 ||
            ul_auth_verify(f.container, f.container_len, key) != 1)
            continue;
        io->frame = f;
        io->status = ULDEC_OK;
        io->corrected_bits = ev[ok[t].a].width + (ok[t].b >= 0 ? ev[ok[t].b].width : 0);
        return io->corrected_bits;
    }
    return 0;
}

static int keystore_key_of(uint32_t ep_id, uint8_t key[UL_KEY_BYTES], void *user)
{
    const uint8_t *k = keystore_find(user, ep_id);
    if (!k)
        return 0;
    memcpy(key, k, UL_KEY_BYTES);
    return 1;
}

int uldecode_chase(uldecode_result_t *io, const keystore_t *keys, int max_trials)
{
    if (!keys)
        return UL_ERR_ARG;
    return uldecode_chase_with(io, keystore_key_of, (void *)keys, max_trials);
}
