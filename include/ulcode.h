/* ulcode: uplink replica coding (spec §3.10, seeds/003) and the soft Viterbi decoder of the
 * rate-1/3 code that the three replicas form together. Licence: MIT.
 *
 * Rank 1 sends u (container+CRC bits) plainly, rank 2 sends u*(1+X+X^2), rank 3 sends
 * u*(1+X^2), each from a zero state and of the same length as u. Read together they are
 * the (1, 7, 5)octal rate-1/3 convolutional code with constraint length 3.
 *
 * Soft values are log-likelihood ratios log(P(bit=1)/P(bit=0)): positive means 1, zero
 * means erasure. Pure functions; no allocation beyond the caller's buffers.
 */
#ifndef SIGFOX_ULCODE_H
#define SIGFOX_ULCODE_H

#include <stddef.h>
#include <stdint.h>

#define UL_CODE_MAX_BITS 256

/* Encode nbits packed bits (MSbit first) for rank 1..3. in and out may not overlap. */
int ul_code_encode(int rank, const uint8_t *in, uint8_t *out, size_t nbits);
/* Undo the coding of one replica from hard bits. */
int ul_code_decode_hard(int rank, const uint8_t *in, uint8_t *out, size_t nbits);
/* Undo the coding of one replica from soft values (one float per bit). */
int ul_code_decode_soft(int rank, const float *soft, uint8_t *out, size_t nbits);

/* Maximum-likelihood decoding of u from any subset of replicas: soft[r-1] holds nbits soft
 * values of rank r's coded bits, or NULL when that replica was not received. Writes the
 * packed bits of u. Returns 0, or a negative ul_error code (no replica, nbits too large). */
int ul_viterbi_decode(const float *const soft[3], size_t nbits, uint8_t *out);

#endif
