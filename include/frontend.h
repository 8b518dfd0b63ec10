/* frontend: moves the uplink macro-channel to 0 Hz and decimates any capture rate
 * (200 kS/s .. 3.2 MS/s) by an integer D to a working rate that holds the kept band
 * with a cheap transition. Licence: MIT. No I/O.
 *
 *   D = 1: in (rate_sps) -> liquid NCO mix by -shift_hz (when needed) -> out
 *   D > 1: in -> FFTW overlap-save: forward FFT of N = D*M input samples, the bins
 *          around shift_hz weighted by the decimating filter's response and folded onto
 *          M bins, inverse FFT of M -> out (rate_sps/D)
 *
 * The D > 1 path computes exactly what an NCO followed by a FIR decimator computes
 * (output j = sum_k h[k] x[jD-k] e^{-j2 pi shift (jD-k)/rate}, with the same Kaiser h),
 * but the work is two FFTs that FFTW runs on the vector unit (SSE/AVX on x86-64, NEON on
 * aarch64) instead of a scalar dot product of len/D taps per input sample plus an NCO:
 * the shift costs nothing (a rotation of the bins and a phase per output sample), and the
 * filter's length only sets the overlap. Folding the bins where the filter's response is
 * not negligible onto M is the spectrum of the decimated output, aliases included.
 *
 * The filter keeps |f| <= passband_hz flat and lets nothing alias into it, so its
 * transition runs from passband_hz to rate/D - passband_hz, so rate/D >= 1.2 * 2 *
 * passband_hz. Among those D, working rates that are whole multiples of grid_hz (the
 * channelizer's bins then fall exactly on that grid) with FFT-friendly bin counts come
 * first, and the cheapest by a cost model (frontend.c) wins; the front end's cost hardly
 * depends on D, the channelizer's grows with the working rate, so the largest such D
 * usually does: 2.4 MS/s -> D = 10 (240 kS/s), 1.024 MS/s -> D = 4, 250 kS/s -> D = 1.
 * Output comes in blocks of L = N - overlap input samples (a few ms of signal).
 */
#ifndef SIGFOX_FRONTEND_H
#define SIGFOX_FRONTEND_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    double rate_sps;    /* input rate, 1e3 .. 20e6 (the receiver uses 200e3 .. 3.2e6) */
    double shift_hz;    /* frequency moved to 0 Hz (channel centre - capture centre) */
    double passband_hz; /* half-width kept flat and alias-free, e.g. 97e3 */
    double stopband_db; /* alias rejection, 0: 60 dB */
    double grid_hz;     /* preferred working-rate divisor (channelizer bin width), 0: none */
    bool fft_measure;   /* plan the FFTs with FFTW_MEASURE (slower to create), else ESTIMATE */
} frontend_config_t;

typedef struct frontend frontend_t;

/* NULL (after logging which parameter is wrong) on a bad configuration, e.g. a
 * passband that does not fit in the input band once shifted. */
frontend_t *frontend_create(const frontend_config_t *cfg);

/* Working (output) rate in samples/s: rate_sps / decimation. */
double frontend_out_rate(const frontend_t *q);
/* Decimation factor D (1 when the input rate is already low). */
unsigned frontend_decimation(const frontend_t *q);
/* Group delay of the chain in input samples: output sample j (counted from the last
 * reset) represents input time j * decimation - delay. */
double frontend_delay_in(const frontend_t *q);
/* Output samples that at most come out of n input samples, with what an earlier call
 * left waiting for a full block (size of out for process). */
size_t frontend_max_out(const frontend_t *q, size_t n);

/* Mixes and decimates n input samples into out (cap samples). Returns the number of
 * output samples written (>= 0) or -1 when cap < frontend_max_out(q, n). */
long frontend_process(frontend_t *q, const float complex *in, size_t n, float complex *out,
                      size_t cap);

/* Input samples replaced by 0 since create because they were NaN, infinite or had a
 * component beyond +-1e6 (full scale is 1): such values would poison every filter and
 * average downstream. The D > 1 path finds them from the energy of its kept bins (a
 * block with none costs no per-sample check) and recomputes the block without them. */
uint64_t frontend_invalid_samples(const frontend_t *q);

/* Clears filter state and the NCO phase (after a gap in the input). */
void frontend_reset(frontend_t *q);
void frontend_destroy(frontend_t *q);

#endif
