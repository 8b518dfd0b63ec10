/* uldecode: soft bits -> uplink frame (FT, rank, un-coding, CRC, fields, UL-AUTH).
 * Licence: MIT. */
#include "uldecode.h"

#include <math.h>
#include <string.h>

/* Frame types of Table 3-3 (via ul_ft_value): application containers × ranks, then the
 * control container × ranks. */
static const size_t app_sizes[] = {8, 9, 12, 16, 20};
#define N_APP_SIZES (sizeof app_sizes / sizeof app_sizes[0])
#define N_FT ((N_APP_SIZES + 1) * 3)

typedef struct {
    uint16_t ft;
    size_t container_len;
    bool control;
    int rank;
} ft_entry_t;

static size_t ft_entries(ft_entry_t e[N_FT])
{
    size_t n = 0;
    for (size_t s = 0; s <= N_APP_SIZES; s++)
        for (int r = 1; r <= 3; r++) {
            bool control = s == N_APP_SIZES;
            size_t len = control ? 16 : app_sizes[s];
            e[n].ft = ul_ft_value(len, control, r);
            e[n].container_len = len;
            e[n].control = control;
            e[n].rank = r;
            n++;
        }
    return n;
}

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
    ft_entry_t e[N_FT];
    size_t n = ft_entries(e);
    for (size_t i = 0; i < n; i++) {
        out[i].word = (uint32_t)UL_PREAMBLE << UL_FT_BITS | e[i].ft;
        out[i].body_bits = (uint16_t)ul_body_bits(e[i].container_len);
    }
    return n;
}

/* Untrusted input: NaN is an erasure. */
static inline float llr_clean(float x)
{
    return isnan(x) ? 0.0f : x;
}

int uldecode_frame(const float *soft, size_t nsoft, int max_ft_distance, uldecode_result_t *out)
{
    if (!out)
        return UL_ERR_ARG;
    memset(out, 0, sizeof *out);
    out->status = ULDEC_REJECT_LENGTH;
    if (!soft || max_ft_distance < 0)
        return UL_ERR_ARG;
    if (nsoft < UL_FT_BITS)
        return UL_ERR_LENGTH;

    /* FT: maximum likelihood over the known set, then a bound on hard disagreements. */
    uint16_t ft_rx = 0;
    for (int i = 0; i < UL_FT_BITS; i++)
        ft_rx = (uint16_t)(ft_rx << 1 | (llr_clean(soft[i]) > 0.0f));
    ft_entry_t e[N_FT];
    size_t n = ft_entries(e);
    double best = -INFINITY;
    size_t bi = 0;
    for (size_t k = 0; k < n; k++) {
        double c = 0;
        for (int i = 0; i < UL_FT_BITS; i++) {
            int bit = (e[k].ft >> (UL_FT_BITS - 1 - i)) & 1;
            c += bit ? llr_clean(soft[i]) : -llr_clean(soft[i]);
        }
        if (c > best) {
            best = c;
            bi = k;
        }
    }
    ul_frame_t *f = &out->frame;
    f->ft = ft_rx;
    int dist = __builtin_popcount((unsigned)(ft_rx ^ e[bi].ft));
    if (dist > max_ft_distance) {
        out->status = ULDEC_REJECT_FT;
        return UL_ERR_FT;
    }
    f->ft_distance = dist;
    f->rank = e[bi].rank;
    f->control = e[bi].control;
    f->container_len = e[bi].container_len;
    out->body_bits = ul_body_bits(e[bi].container_len);
    if (nsoft < UL_FT_BITS + out->body_bits) {
        out->status = ULDEC_REJECT_LENGTH;
        return UL_ERR_LENGTH;
    }
    for (size_t i = 0; i < out->body_bits; i++)
        out->body_soft[i] = llr_clean(soft[UL_FT_BITS + i]);
    out->body_valid = true;

    uint8_t body[UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES];
    if (ul_code_decode_soft(f->rank, out->body_soft, body, out->body_bits) < 0)
        return UL_ERR_ARG;
    int rc = ul_frame_parse_body(body, f->container_len, f->control, f);
    if (rc == 0)
        out->status = ULDEC_OK;
    else if (rc == UL_ERR_CRC)
        out->status = ULDEC_REJECT_CRC;
    else
        out->status = ULDEC_REJECT_FIELDS;
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
