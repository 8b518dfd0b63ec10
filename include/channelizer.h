/* channelizer: overlapped FFT analysis of the working-rate stream: per hop, the raw
 * spectrum (for the extractor), Hann-windowed power per bin and a robust per-bin noise
 * floor over the analysed band. Licence: MIT. No I/O.
 *
 * Frames of fft_len samples advance by hop = fft_len/2:
 *
 *   samples  |<------- frame b (fft_len) ------->|
 *                             |<------- frame b+1 ------->|
 *            ^ b*hop          ^ (b+1)*hop
 *
 * One unwindowed FFTW transform per hop. The Hann-windowed spectrum is derived from it in
 * the frequency domain (periodic Hann = 0.5 X[k] - 0.25 X[k-1] - 0.25 X[k+1]), so the same
 * transform serves detection (low leakage) and the extractor's overlap-save filtering
 * (rectangular frames).
 *
 * Noise floor (per block of floor_block_bins, interpolated linearly between block
 * centres): each hop, the mean of the block's powers below 3x the current estimate,
 * corrected for that truncation of the exponential distribution of noise power, so strong
 * bursts and tones drop out; averaged over floor_tau_s. A block with fewer than a quarter
 * of its bins below 3x is occupied: the estimate holds, and only after 2 floor_tau_s of
 * that (a new level: noise rise, wide interferer) climbs with the 30 % quantile.
 * Weaker bursts (a few dB per bin) still leak in: a strong BR600 burst filling half a
 * block raises its floor by up to ~10 % while it lasts (measured in test_channelizer).
 */
#ifndef SIGFOX_CHANNELIZER_H
#define SIGFOX_CHANNELIZER_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    double rate_sps;   /* working rate */
    size_t fft_len;    /* N, even, >= 64 */
    double band_lo_hz; /* analysed band, relative to 0 Hz, within +-rate/2 */
    double band_hi_hz;
    size_t floor_block_bins; /* 0: 128 */
    double floor_tau_s;      /* noise-floor time constant, 0: 1 s */
    size_t history_hops;     /* spectra kept for channelizer_spectrum, 0: 1 */
    bool fft_measure;        /* FFTW_MEASURE plan: ~35 % faster transforms, 0.2-0.6 s of
                                planning per size and process (FFTW keeps the wisdom) */
} channelizer_config_t;

/* One completed hop. Pointers are owned by the channelizer and valid until the next
 * channelizer_process/reset call. */
typedef struct {
    uint64_t index;                /* hop number since create/reset */
    uint64_t first_sample;         /* working-rate index of the frame's first sample */
    const float complex *spectrum; /* fft_len bins, FFTW order (bin k <-> k*bin_hz, k >= N/2
                                      negative), unwindowed, unnormalised; stays valid for
                                      history_hops hops */
    const float *power;            /* nbins Hann powers |X_w|^2; power[i] is bin bin_lo + i */
    const float *floor;            /* nbins noise-floor estimates, same units */
    long bin_lo;                   /* signed bin of power[0] */
    size_t nbins;
} channelizer_hop_t;

typedef struct channelizer channelizer_t;

/* NULL (after logging which parameter is wrong) on a bad configuration. Makes the FFTW
 * plan: call create/destroy from one thread at a time. */
channelizer_t *channelizer_create(const channelizer_config_t *cfg);

/* Spectrum of an earlier hop still in the history ring (the last history_hops hops),
 * or NULL. Valid until that slot is reused. */
const float complex *channelizer_spectrum(const channelizer_t *q, uint64_t hop);

/* Bin spacing rate/N in Hz. */
double channelizer_bin_hz(const channelizer_t *q);
size_t channelizer_hop_len(const channelizer_t *q);
/* Analysed bins: first signed bin and count (fixed at create). */
long channelizer_bin_lo(const channelizer_t *q);
size_t channelizer_nbins(const channelizer_t *q);

/* Consumes samples until a hop completes or the input runs out. *consumed receives how
 * many of the n samples were taken. Returns 1 when *hop was filled (call again with the
 * rest of the input), 0 when everything was consumed without completing a hop. */
int channelizer_process(channelizer_t *q, const float complex *in, size_t n, size_t *consumed,
                        channelizer_hop_t *hop);

/* Drops the partial frame and restarts hop numbering (after a gap); keeps the noise floor
 * when keep_floor is non-zero. */
void channelizer_reset(channelizer_t *q, int keep_floor);
void channelizer_destroy(channelizer_t *q);

#endif
