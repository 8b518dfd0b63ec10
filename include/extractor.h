/* extractor: cuts one narrowband burst snippet out of the channelizer's spectra by
 * frequency-domain filtering and decimation (overlap-save "fast convolution"). Licence:
 * MIT. No I/O.
 *
 * Why in the frequency domain: mixing and FIR-decimating a burst from the working rate
 * (~250 kS/s) costs ~10 ns per input sample, i.e. ~25 ms of CPU per second of BR100 burst;
 * with tens of simultaneous bursts that alone would miss the real-time targets. The
 * channelizer already computes an unwindowed FFT of every frame (N samples, hop N/2), so
 * each hop the extractor takes the M bins around the burst, weights them with a filter
 * response H, and runs one M-point inverse FFT: cost per burst per hop ~M log M, for
 * M = 64 (BR100) or 384 (BR600).
 *
 *   frame b = samples [b*hop, b*hop + N)   ->   X[k] (channelizer)
 *   Y[m] = H[m] X[k0 + m], m = -M/2 .. M/2-1      (bins around the carrier bin k0)
 *   y = IFFT_M(Y) / N: y[i] is the filtered signal, mixed down by k0 * bin_hz, at frame
 *   time i * N/M; only i in [M/4, 3M/4) is kept (the filter's zero-phase impulse response,
 *   ~1/(stop_hz - pass_hz) long, must not wrap: it is << N/4 samples), so consecutive hops
 *   tile the time axis without gaps or overlap.
 *
 * Output of hop b: M/2 samples at rate M * bin_hz, the first at working sample
 * b*hop + N/4, spaced N/M working samples; mixed down by exactly k0 * bin_hz with the phase
 * continuous across hops ((-1)^(k0 b): hop = N/2). H is flat (1) to pass_hz, falls as a
 * raised cosine to 0 at stop_hz and is 0 beyond, which also bounds aliasing: the output
 * band is +-M/2 bins.
 */
#ifndef SIGFOX_EXTRACTOR_H
#define SIGFOX_EXTRACTOR_H

#include <complex.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t fft_len;  /* channelizer N (even; hop = N/2) */
    double bin_hz;   /* channelizer bin width */
    size_t out_bins; /* M: a multiple of 4, <= N; output rate M * bin_hz */
    double pass_hz;  /* flat half-band */
    double stop_hz;  /* zero from here; pass_hz < stop_hz <= M/2 * bin_hz */
} extractor_config_t;

typedef struct extractor extractor_t;

/* NULL (after logging which parameter is wrong) on a bad configuration. Makes an FFTW
 * plan: create/destroy from one thread at a time. */
extractor_t *extractor_create(const extractor_config_t *cfg);

/* Output sample rate M * bin_hz and samples per hop M/2. */
double extractor_rate(const extractor_t *q);
size_t extractor_hop_out(const extractor_t *q);
/* Working-rate samples between output samples (N/M) and from a frame's first sample to
 * its first output sample (N/4). */
double extractor_step(const extractor_t *q);
double extractor_offset(const extractor_t *q);

/* One hop: spectrum is the channelizer's N bins of frame `hop` (FFTW order), k0 the
 * signed centre bin. Writes extractor_hop_out() samples to out. */
void extractor_process(extractor_t *q, const float complex *spectrum, long k0, uint64_t hop,
                       float complex *out);

void extractor_destroy(extractor_t *q);

#endif
