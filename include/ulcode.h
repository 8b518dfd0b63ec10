/* ulcode: uplink replica coding (spec §3.10 Table 3-2, seeds/003) and the soft Viterbi
 * decoder of the rate-1/3 code that the three replicas form together. Licence: MIT.
 *
 * Rank 1 sends u (container+CRC bits) plainly, rank 2 sends u*(1+X+X^2), rank 3 sends
 * u*(1+X^2), each from a zero state and of the same length as u (no tail bits):
 *
 *   v1[n] = u[n]
 *   v2[n] = u[n] ^ u[n-1] ^ u[n-2]          (u[-1] = u[-2] = 0)
 *   v3[n] = u[n] ^ u[n-2]
 *
 * Read together they are the (1, 7, 5)octal rate-1/3 convolutional code with constraint
 * length 3 (free distance 6). The spec's Annex C rank-2/3 frames confirm this convention
 * bit for bit (test_ulcode.c).
 *
 * Soft values are log-likelihood ratios log(P(bit=1)/P(bit=0)): positive means 1, zero
 * means erasure; NaN counts as an erasure, +-inf is clamped. Packed buffers are MSbit
 * first. Pure functions, no allocation, thread-safe.
 */
#ifndef SIGFOX_ULCODE_H
#define SIGFOX_ULCODE_H

#include <stddef.h>
#include <stdint.h>

/* The coder's one error: NULL, rank outside 1..3, too many bits. */
#define UL_CODE_ERR_ARG (-1)

/* Longest coded sequence handled: (20-byte container + 16-bit CRC) = 176 bits fits. */
#define UL_CODE_MAX_BITS 256

/* Bit i (0 = MSbit of byte 0) of a packed buffer. */
static inline int ul_bit_get(const uint8_t *buf, size_t i)
{
    return (buf[i >> 3] >> (7 - (i & 7))) & 1;
}

/* Sets bit i of a packed buffer to v (0 or 1). */
static inline void ul_bit_set(uint8_t *buf, size_t i, int v)
{
    uint8_t mask = (uint8_t)(0x80u >> (i & 7));
    buf[i >> 3] = v ? (uint8_t)(buf[i >> 3] | mask) : (uint8_t)(buf[i >> 3] & ~mask);
}

/* Encodes nbits packed bits (MSbit first) for rank 1..3 into out (same bit count; unused
 * low bits of the last byte are cleared). in and out may be the same buffer.
 * Returns 0, or UL_CODE_ERR_ARG (NULL, rank outside 1..3, nbits > UL_CODE_MAX_BITS). */
int ul_code_encode(int rank, const uint8_t *in, uint8_t *out, size_t nbits);

/* Undoes the coding of one replica from hard bits (exact inverse of ul_code_encode: the
 * division by the generator polynomial). A single wrong coded bit corrupts every later
 * bit for ranks 2 and 3, so the CRC catches it. in and out may be the same buffer.
 * Returns 0 or UL_CODE_ERR_ARG. */
int ul_code_decode_hard(int rank, const uint8_t *in, uint8_t *out, size_t nbits);

/* Undoes the coding of one replica from soft values (nbits floats). Each replica alone is
 * a rate-1 bijective code, so the maximum-likelihood sequence is the sign decision
 * followed by the inverse; erasures decide 0. Returns 0 or UL_CODE_ERR_ARG. */
int ul_code_decode_soft(int rank, const float *soft, uint8_t *out, size_t nbits);

/* Maximum-likelihood (Viterbi) decoding of u from any subset of replicas: soft[r-1] holds
 * nbits soft values of rank r's coded bits, or NULL when that replica was not received.
 * The trellis starts in state 0 and ends in the best state (no tail). Writes nbits packed
 * bits of u to out (ceil(nbits/8) bytes, unused low bits cleared).
 * Returns 0, or UL_CODE_ERR_ARG (no replica, NULL out, nbits 0 or > UL_CODE_MAX_BITS). */
int ul_viterbi_decode(const float *const soft[3], size_t nbits, uint8_t *out);

/* The same, but returns the survivors ending in each of the (up to) 4 trellis states,
 * best final metric first: path i goes to out + i * out_stride (out_stride >=
 * ceil(nbits/8) when max_paths > 1). The code has no tail, so the last bit is covered by
 * only as many coded bits as there are replicas; a CRC check over the candidates (as
 * ul_frame_decode_joint does) repairs ties and errors there.
 * Returns the number of paths written (1..max_paths) or UL_CODE_ERR_ARG. */
int ul_viterbi_decode_list(const float *const soft[3], size_t nbits, uint8_t *out,
                           size_t out_stride, int max_paths);

#endif
