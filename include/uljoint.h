/* uljoint: joint coherent maximum-likelihood decoding of a message from any subset of its
 * replicas (ranks 1-3, BR100 or BR600: the code does not depend on the rate), spec rev 1.4
 * §2.4.3 (D-BPSK) and §3.10 Table 3-2, seeds/003 (replica coding). Licence: MIT.
 * Pure computation: no I/O, no allocation, thread-safe.
 *
 * Why: ulcode.h's Viterbi runs on bit LLRs, i.e. after each replica's differential
 * decoding (bit 1 = no phase change, bit 0 = 180° reversal). That differential encoding
 * is itself a rate-1 recursive code, and undoing it before the convolutional decoder
 * throws away 2-3 dB at the message's threshold. Here one trellis carries the state of
 * the (1, 7, 5) code (u[n-1], u[n-2]) and, for every replica given, the sign of its last
 * transmitted symbol: 4 × 2³ = 32 states for three replicas. The branch metric is the
 * correlation of each replica's symbol sign with its coherent soft symbol.
 *
 * Input: per replica, the coherent soft symbols of the WHOLE frame from the first
 * preamble symbol (UL_HEADER_BITS + ul_body_bits(container) values: symbol k carries
 * frame bit k). A symbol value is the log-likelihood ratio of its sign,
 * log P(s = +1) / P(s = -1) = 4 Re(y conj(g)) / N0 for a matched-filter output y, complex
 * gain g (amplitude and carrier phase) and complex noise variance N0 per symbol. Each
 * replica keeps its own sign ambiguity (a phase known only modulo π, or the unknown sign
 * of the first symbol): the trellis starts in both signs of every replica, and the known
 * preamble + FT symbols of its rank weigh them. The sign of one replica never constrains
 * another's. NaN counts as an erasure, huge values are clamped (untrusted input).
 *
 * The code has no tail, so the last bits are the weakest: the decoder returns the
 * survivors of the best end states (distinct bodies, best first) and the CRC decides;
 * UL-AUTH (the caller's, with the device key) decides after it. False accept per attempt:
 * every candidate tried is a 2^-16 CRC lottery for a garbage input, so ≤ paths × 2^-16
 * before UL-AUTH (docs/receiver.md).
 *
 * ul_joint_decode_iq is the same decoder fed with complex matched-filter symbols whose
 * carrier phase and residual frequency are not known: phase and amplitude from the known
 * preamble + FT of each replica, noise from the frame's power, then decision-directed
 * re-estimation per replica (phase, residual frequency, amplitude, noise from the
 * symbols of the best path) and decoding again. The re-estimation also fits the
 * neighbours' share ρ of a symbol (a pulse whose amplitude dips at the reversals lets
 * each neighbour into the matched filter: y_k = g (s_k + ρ (s_{k-1} + s_{k+1}))), and the
 * later decodings weigh it in Ungerboeck's form, -4 ρ |g|² / N0 · s_k s_{k-1} per step,
 * decided by the previous sign the state already holds (0.2-0.3 dB at 0 dB Eb/N0 with the
 * synthesizer's one-symbol dip, ρ ≈ 1/6).
 */
#ifndef SIGFOX_ULJOINT_H
#define SIGFOX_ULJOINT_H

#include <complex.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ulframe.h"

/* Most candidates ul_joint_decode_list returns (one per end state at most). */
#define UL_JOINT_MAX_PATHS 32
/* Candidates the frame-level functions check with the CRC per decoding (as many as the
 * differential Viterbi path of ul_frame_decode_joint: the same false-accept rate). */
#define UL_JOINT_CRC_PATHS 4
/* Decision-directed iterations of ul_joint_decode_iq when cfg->iterations is 0. */
#define UL_JOINT_DEFAULT_ITERATIONS 3
/* Default residual-frequency search of ul_joint_decode_iq, cycles per symbol (±): 2 Hz
 * at BR100, beyond the demodulator's errors at the message threshold. */
#define UL_JOINT_DEFAULT_MAX_FREQ 0.02
/* Default residual-drift search, cycles per symbol² (±): 2 Hz/s at BR100, 72 Hz/s at
 * BR600. */
#define UL_JOINT_DEFAULT_MAX_DRIFT 2e-4

/* Differential decoding of two coherent symbol LLRs into the LLR of the bit between them
 * (positive = 1 = no phase change): the LLR of the product of two independent signs,
 * log((1 + e^(a+b)) / (e^a + e^b)). What a decoder that undoes the differential code
 * first (ulcode.h's Viterbi) gets at best from coherent symbols. */
static inline float ul_llr_boxplus(float a, float b)
{
    float m = fminf(fabsf(a), fabsf(b));
    float sg = (a < 0) != (b < 0) ? -1.0f : 1.0f;
    return sg * m + log1pf(expf(-fabsf(a + b))) - log1pf(expf(-fabsf(a - b)));
}

/* Soft symbols per replica for a container size: preamble + FT + container + CRC. */
static inline size_t ul_joint_symbols(size_t container_bytes)
{
    return UL_HEADER_BITS + ul_body_bits(container_bytes);
}

/* Maximum-likelihood sequence decoding of the body (container + CRC, ul_body_bits bits)
 * from sym[r-1] = ul_joint_symbols(container_len) symbol LLRs of rank r, or NULL when that
 * replica is missing (at least one given). Writes up to max_paths distinct bodies, best
 * path metric first, packed MSbit first, body i at out + i * out_stride (out_stride >=
 * body bytes when max_paths > 1). Returns the number written (>= 1), UL_ERR_ARG (NULL,
 * no replica, max_paths outside 1..UL_JOINT_MAX_PATHS, stride too small) or UL_ERR_LENGTH
 * (container_len not a container size). */
int ul_joint_decode_list(const float *const sym[3], size_t container_len, bool control,
                         uint8_t *out, size_t out_stride, int max_paths);

/* The same, then the CRC over the best UL_JOINT_CRC_PATHS candidates: the first whose CRC
 * checks is parsed into out (rank 0, ft = the rank-1 FT, ft_distance 0). Returns as
 * ul_frame_decode_joint: 0, UL_ERR_CRC (out holds the most likely body), UL_ERR_FIELDS,
 * UL_ERR_ARG or UL_ERR_LENGTH. */
int ul_joint_decode_frame(const float *const sym[3], size_t container_len, bool control,
                          ul_frame_t *out);

/* What ul_joint_decode_iq estimated for one replica (the model y_k = g e^{j2π(f k +
 * d k²/2)} s_k + noise, s_k = ±1 the transmitted symbol of frame bit k). */
typedef struct {
    double amplitude;      /* |g| */
    double phase_rad;      /* arg g, at symbol 0, for the sign the decoder chose */
    double freq_cyc_sym;   /* residual carrier frequency f at symbol 0, cycles per symbol */
    double drift_cyc_sym2; /* residual drift d, cycles per symbol² */
    double noise_var;      /* N0: complex noise variance per symbol */
    double isi_rho;        /* neighbours' share ρ in a symbol, y_k = g (s_k + ρ (s_{k-1} +
                              s_{k+1})): 0 until a decoded path re-estimated it */
} ul_joint_est_t;
/* Largest neighbours' share fitted (a one-symbol reversal dip gives ~1/6). */
#define UL_JOINT_MAX_ISI 0.35

typedef struct {
    int iterations;            /* decision-directed re-estimations; 0: default, < 0: none */
    double max_freq_cyc_sym;   /* residual frequency searched within ±; 0: default, < 0:
                                  the frequency is not estimated (taken as 0) */
    double max_drift_cyc_sym2; /* residual drift searched within ±; 0: default, < 0: not
                                  estimated (taken as 0) */
} ul_joint_iq_config_t;

/* Joint decoding from complex matched-filter symbols (same layout as sym above, one per
 * frame bit from the first preamble symbol, carrier roughly removed: residual frequency
 * within cfg's search range), phase unknown. cfg may be NULL (defaults). Stops at the
 * first decoding whose CRC checks; est (may be NULL) receives each given replica's
 * estimates, refitted over the whole frame from the decoded path (the last iteration's
 * when nothing decoded). At most (iterations + 1) × UL_JOINT_CRC_PATHS CRC trials.
 * Returns as ul_joint_decode_frame (UL_ERR_ARG also for a non-finite input value). */
int ul_joint_decode_iq(const float complex *const y[3], size_t container_len, bool control,
                       const ul_joint_iq_config_t *cfg, ul_frame_t *out, ul_joint_est_t est[3]);

/* Where rank's frame starts in y[0..n): the index in [lo, hi] whose UL_HEADER_BITS
 * symbols best match the known preamble + FT of that rank and container (|correlation|:
 * phase unknown, residual carrier negligible over 32 symbols), restricted to starts that
 * leave ul_joint_symbols(container_len) symbols. Returns the index, or -1 (none fits,
 * NULL, bad rank or container). */
long ul_joint_align(const float complex *y, size_t n, size_t lo, size_t hi, int rank,
                    size_t container_len, bool control);

/* The same, and how well the header matched there (when match is not NULL): |correlation|²
 * / (UL_HEADER_BITS × the header symbols' energy), 1 for a noiseless match, about
 * 1 / UL_HEADER_BITS on noise; 0 when no start fits. Compares one burst's FT hypotheses
 * (rank, container), whose headers share the preamble and differ in the FT. */
long ul_joint_align_match(const float complex *y, size_t n, size_t lo, size_t hi, int rank,
                          size_t container_len, bool control, double *match);

/* The ±1 symbols of rank r's whole frame (ul_joint_symbols values, first symbol +1) for a
 * body (container + CRC, packed): what a device transmits, for re-modulation and tests.
 * Returns the count or UL_ERR_ARG / UL_ERR_LENGTH. */
int ul_joint_symbols_of(int rank, const uint8_t *body, size_t container_len, bool control,
                        float *sym, size_t cap);

#endif
