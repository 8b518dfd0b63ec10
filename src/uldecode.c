/* uldecode: soft bits -> uplink frame (FT, rank, un-coding, CRC, fields, UL-AUTH).
 * Licence: MIT. */
#include "uldecode.h"

#include <math.h>
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
