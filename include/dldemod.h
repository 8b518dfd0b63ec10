/* dldemod: Sigfox downlink GFSK burst receiver for a block of IQ samples (spec rev 1.4
 * §2.5.2, §4.7, §4.8). Licence: MIT. No I/O.
 *
 * For each block:
 *  1. frequency search: Welch power spectrum (FFTW, Hann, ~20-40 Hz bins), sliding sum
 *     over the GFSK's 1.9 kHz occupied bandwidth, peaks above the noise floor (median
 *     of the search range) -> candidate carriers (power centroid);
 *  2. per candidate: mix to 0 Hz, liquid firdecim_crcf + resamp_crcf down to 4800 sps
 *     (8 samples/symbol);
 *  3. non-coherent tone detection: per-symbol correlation with the +800 Hz and -800 Hz
 *     tones, soft value |c+|² - |c-|² (bit 1 = +800 Hz);
 *  4. sync: correlation of those soft values with the 104 known bits (91-bit
 *     preamble + FT 0x1227) at every sample offset, normalised by the noise level; a peak
 *     above the threshold (and at most 3 FT bit errors) is a burst;
 *  5. data-aided refinement: the decided bits are re-modulated (gfskmod) and the carrier
 *     frequency, phase and amplitude estimated against them (FFT of the product), then
 *     the symbols are re-detected at the refined frequency;
 *  6. output: the 15 DL-PHY-CONTENT bytes (still whitened: pass them to
 *     dl_frame_decode()), carrier frequency, start time, SNR, signal power.
 *
 * A frame must lie wholly inside the block; callers streaming a long capture feed
 * overlapping blocks (overlap >= DL_FRAME_BITS / 600 s + margin) and keep the bursts
 * starting before the overlap (sigfox-dlrx does this).
 */
#ifndef SIGFOX_DLDEMOD_H
#define SIGFOX_DLDEMOD_H

#include <complex.h>
#include <stddef.h>
#include <stdint.h>

#include "dlframe.h"

#define DLDEMOD_RATE_SPS 4800.0 /* internal rate: 8 samples per 600-baud symbol */

enum dldemod_error {
    DLDEMOD_OK = 0,
    DLDEMOD_ERR_ARG = -1, /* NULL pointer, or more samples than max_block_samples */
};

typedef struct {
    double rate_sps;     /* input sample rate, 9600 .. 20e6 */
    double search_lo_hz; /* carrier search range relative to the IQ centre; both 0:
                            the whole band minus 2.4 kHz at each edge */
    double search_hi_hz;
    size_t max_block_samples; /* largest n process() accepts (0: 2 s of samples) */
    float detect_threshold;   /* sync score (noise standard deviations) for a burst
                                 (0: 6.0) */
    int max_candidates;       /* carriers examined per block (0: 8) */
} dldemod_config_t;

typedef struct {
    uint8_t phy[DL_PHY_BYTES]; /* hard-decided DL-PHY-CONTENT, whitened as received */
    double freq_hz;            /* carrier (centre between the ±800 Hz tones), relative to
                                  the IQ centre */
    double sample_idx;         /* start of the first preamble bit, in input samples from
                                  the block start (fractional) */
    double snr_db;             /* Eb/N0 estimate: signal power / (N0 × 600 Hz), N0 from the
                                  block's noise floor */
    double rssi_dbfs;          /* signal power, dB relative to full scale (|x| = 1) */
    double sync_score;         /* sync correlation in noise standard deviations */
    int sync_bit_errors;       /* hard-decision errors in the 104 known sync bits */
    int ft_bit_errors;         /* of which in the 13 FT bits */
} dldemod_burst_t;

typedef struct dldemod dldemod_t;

/* Allocates everything (FFT plans, resampler, buffers for max_block_samples). Returns
 * NULL on a bad configuration or no memory. */
dldemod_t *dldemod_create(const dldemod_config_t *cfg);

/* Searches the n samples for DL bursts and writes up to max_bursts of them (in order of
 * start time) into bursts. Returns the number written (>= 0) or DLDEMOD_ERR_ARG.
 * Never allocates; not thread-safe per object. */
int dldemod_process(dldemod_t *q, const float complex *x, size_t n, dldemod_burst_t *bursts,
                    size_t max_bursts);

/* Samples of input per process() call at most (the configured max_block_samples). */
size_t dldemod_max_block(const dldemod_t *q);

/* Noise floor of the last processed block, dBFS per Hz (for logs). */
double dldemod_noise_dbfs_hz(const dldemod_t *q);

/* NULL-safe. */
void dldemod_destroy(dldemod_t *q);

#endif
