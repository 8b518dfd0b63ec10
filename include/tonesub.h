/* tonesub: fit a steady tone (a CW interferer next to a burst) on the stretches of a
 * snippet around the burst and subtract it from the whole snippet. Licence: MIT. No I/O,
 * no allocation, thread-safe (pure functions).
 *
 * A strong unmodulated carrier 1-2 symbol rates from a D-BPSK burst passes the
 * demodulator's low-pass partly and, once squared, outweighs the burst's own carrier line
 * (a CW 7.5 dB over a BR600 burst 860 Hz away: the squarer found a carrier 330 Hz off
 * and the frame was lost). The burst's own spectrum reaches that far too, so the tone is
 * measured where the burst is not: on a stretch before it and one after it (the
 * detector's start and end with their uncertainty). The frequency is the maximum of the
 * two stretches' summed periodograms near the given estimate, refined by the phase the
 * tone advances from one stretch to the other; the complex amplitude is the mean over
 * both. Nothing is subtracted unless the tone stands out of the noise and the two
 * stretches agree on its amplitude (a steady tone) - a modulated signal (another burst
 * that happens to be there on both sides) does not. */
#ifndef SIGFOX_TONESUB_H
#define SIGFOX_TONESUB_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>

/* Shortest stretch used, samples (each side; one side alone is enough when the other is
 * shorter). */
#define TONESUB_MIN_STRETCH 64

/* Least tone energy over the stretches against the power of the rest per sample: a noise
 * peak of the search (a few dozen independent frequencies) stays far below. */
#define TONESUB_MIN_SNR 12.0

typedef struct {
    double freq;       /* cycles per sample */
    float complex amp; /* x[i] = amp * exp(j 2π freq i) + ... */
    double mismatch;   /* |amp_before - amp_after| / |amp| (0 with one stretch) */
} tonesub_fit_t;

/* Fits a tone near freq0 (cycles per sample, searched within ±search) on x[0, before_end)
 * and x[after_start, n). Returns true and fills fit when it found a steady tone (both
 * stretches, or one of at least TONESUB_MIN_STRETCH samples; amplitudes agreeing within
 * max_mismatch; energy TONESUB_MIN_SNR over the rest), false otherwise. */
bool tonesub_fit(const float complex *x, size_t n, size_t before_end, size_t after_start,
                 double freq0, double search, double max_mismatch, tonesub_fit_t *fit);

/* x[i] -= amp exp(j 2π freq i), i in [0, n). */
void tonesub_apply(float complex *x, size_t n, const tonesub_fit_t *fit);

#endif
