/* ulcode: uplink replica coding and the joint soft Viterbi decoder. Licence: MIT.
 *
 * Spec §3.10 Table 3-2: rank 1 identity, rank 2 R = 1+X+X^2, rank 3 R = 1+X^2, applied to
 * UL-CONTAINER + UL-CRC from a zero state. The three outputs for one input bit are the
 * branches of a 4-state trellis whose state is (u[n-1], u[n-2]).
 */
#include "ulcode.h"

#include <math.h>
#include <string.h>


/* Coded bit of rank r (1..3) for input b in state s = u[n-1] << 1 | u[n-2]. */
static inline int code_bit(int rank, int b, unsigned s)
{
    int u1 = (s >> 1) & 1, u2 = s & 1;
    switch (rank) {
    case 2:
        return b ^ u1 ^ u2;
    case 3:
        return b ^ u2;
    default:
        return b;
    }
}

static void clear_tail(uint8_t *out, size_t nbits)
{
    if (nbits & 7)
        out[nbits >> 3] &= (uint8_t)(0xFF00u >> (nbits & 7));
}

int ul_code_encode(int rank, const uint8_t *in, uint8_t *out, size_t nbits)
{
    if (!in || !out || rank < 1 || rank > 3 || nbits > UL_CODE_MAX_BITS)
        return UL_CODE_ERR_ARG;
    unsigned s = 0;
    for (size_t n = 0; n < nbits; n++) {
        int b = ul_bit_get(in, n); /* read before the write: in-place safe */
        ul_bit_set(out, n, code_bit(rank, b, s));
        s = (unsigned)(b << 1) | (s >> 1);
    }
    clear_tail(out, nbits);
    return 0;
}

int ul_code_decode_hard(int rank, const uint8_t *in, uint8_t *out, size_t nbits)
{
    if (!in || !out || rank < 1 || rank > 3 || nbits > UL_CODE_MAX_BITS)
        return UL_CODE_ERR_ARG;
    unsigned s = 0;
    for (size_t n = 0; n < nbits; n++) {
        /* v = b ^ f(s)  =>  b = v ^ f(s), with f(s) the coded bit of input 0. */
        int b = ul_bit_get(in, n) ^ code_bit(rank, 0, s);
        ul_bit_set(out, n, b);
        s = (unsigned)(b << 1) | (s >> 1);
    }
    clear_tail(out, nbits);
    return 0;
}

int ul_code_decode_soft(int rank, const float *soft, uint8_t *out, size_t nbits)
{
    if (!soft || !out || rank < 1 || rank > 3 || nbits > UL_CODE_MAX_BITS)
        return UL_CODE_ERR_ARG;
    uint8_t hard[UL_CODE_MAX_BITS / 8] = {0};
    for (size_t n = 0; n < nbits; n++)
        ul_bit_set(hard, n, soft[n] > 0.0f);
    return ul_code_decode_hard(rank, hard, out, nbits);
}

/* Untrusted soft input: NaN is an erasure, infinities and huge values are clamped so the
 * path metrics stay finite and comparable. */
static inline float sanitize_llr(float x)
{
    const float lim = 1e6f;
    if (isnan(x))
        return 0.0f;
    return x > lim ? lim : (x < -lim ? -lim : x);
}

/* Forward pass: fills decision[] and the final path metrics of the 4 states. */
static void viterbi_forward(const float *const soft[3], size_t nbits, uint8_t *decision,
                            float metric[4])
{
    /* Path metric = sum of LLR * (+1 for a coded 1, -1 for a coded 0): the log-likelihood
     * up to a constant, maximised. decision[n] bit s' = u[n-2] of the survivor entering
     * state s' at step n. */
    metric[0] = 0.0f;
    metric[1] = metric[2] = metric[3] = -INFINITY;
    for (size_t n = 0; n < nbits; n++) {
        float llr[3];
        for (int r = 0; r < 3; r++)
            llr[r] = soft[r] ? sanitize_llr(soft[r][n]) : 0.0f;
        float next[4];
        uint8_t dec = 0;
        for (unsigned sn = 0; sn < 4; sn++) {
            /* sn = b << 1 | u1; predecessors are s = u1 << 1 | u2 for u2 in {0, 1}. */
            int b = (int)(sn >> 1);
            unsigned u1 = sn & 1;
            float best = -INFINITY;
            int best_u2 = 0;
            for (int u2 = 0; u2 < 2; u2++) {
                unsigned s = u1 << 1 | (unsigned)u2;
                if (metric[s] == -INFINITY)
                    continue;
                float m = metric[s];
                for (int r = 0; r < 3; r++)
                    m += code_bit(r + 1, b, s) ? llr[r] : -llr[r];
                if (m > best) {
                    best = m;
                    best_u2 = u2;
                }
            }
            next[sn] = best;
            dec |= (uint8_t)(best_u2 << sn);
        }
        decision[n] = dec;
        /* Keep the metrics near zero so float resolution does not degrade with length. */
        float top = fmaxf(fmaxf(next[0], next[1]), fmaxf(next[2], next[3]));
        for (int s = 0; s < 4; s++)
            metric[s] = next[s] - top;
    }
}

static void viterbi_traceback(const uint8_t *decision, size_t nbits, unsigned s, uint8_t *out)
{
    memset(out, 0, (nbits + 7) / 8);
    for (size_t n = nbits; n-- > 0;) {
        ul_bit_set(out, n, (int)(s >> 1));
        unsigned u2 = (decision[n] >> s) & 1;
        s = (s & 1) << 1 | u2;
    }
}

int ul_viterbi_decode_list(const float *const soft[3], size_t nbits, uint8_t *out,
                           size_t out_stride, int max_paths)
{
    if (!soft || !out || nbits == 0 || nbits > UL_CODE_MAX_BITS || max_paths < 1)
        return UL_CODE_ERR_ARG;
    if (!soft[0] && !soft[1] && !soft[2])
        return UL_CODE_ERR_ARG;
    if (max_paths > 1 && out_stride < (nbits + 7) / 8)
        return UL_CODE_ERR_ARG;
    uint8_t decision[UL_CODE_MAX_BITS];
    float metric[4];
    viterbi_forward(soft, nbits, decision, metric);

    /* End states by decreasing metric (the trellis is not terminated, so any state may
     * end the message); unreachable states (fewer than 2 bits) are skipped. */
    unsigned order[4] = {0, 1, 2, 3};
    for (int i = 1; i < 4; i++)
        for (int j = i; j > 0 && metric[order[j]] > metric[order[j - 1]]; j--) {
            unsigned t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int n = 0;
    for (int i = 0; i < 4 && n < max_paths; i++) {
        if (metric[order[i]] == -INFINITY)
            break;
        viterbi_traceback(decision, nbits, order[i], out + (size_t)n * out_stride);
        n++;
    }
    return n;
}

int ul_viterbi_decode(const float *const soft[3], size_t nbits, uint8_t *out)
{
    int n = ul_viterbi_decode_list(soft, nbits, out, 0, 1);
    return n < 0 ? n : 0;
}
