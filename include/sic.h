/* sic: successive interference cancellation of a decoded D-BPSK burst. Licence: MIT.
 * No I/O. sic_subtract and sic_cancel_burst are pure functions on caller buffers
 * (thread-safe); sic_xcancel_t allocates at create.
 *
 * The receiver decodes the strongest burst of a track, then removes it so that a weaker
 * burst on a nearby carrier can be demodulated from what is left (rx.c, finalize). The
 * removal has two steps:
 *
 *   1. re-modulate the decoded bits with the demodulator's estimates of carrier, drift,
 *      symbol rate and start (dbpskmod.h, amplitude 1): the reference r;
 *   2. fit the burst's complex gain g(u) = c0 + c1 u + c2 (u² - 1/3), u in [-1, 1] over the
 *      burst, by least squares (min sum |x - g r|²), and subtract g r from x.
 *
 * The quadratic gain absorbs what the estimates leave: a residual carrier error of a
 * fraction of a hertz (a slow phase ramp), a slow amplitude change, the unknown phase and
 * level. The three basis functions 1, u, u² - 1/3 are orthogonal over [-1, 1], which keeps
 * the 3x3 normal equations well conditioned. What stays in x is the other bursts, a few
 * per cent of the cancelled one (the part the quadratic cannot follow) and the noise.
 */
#ifndef SIGFOX_SIC_H
#define SIGFOX_SIC_H

#include <complex.h>
#include <stddef.h>
#include <stdint.h>

#include "dbpskmod.h"

/* Shortest span (samples) a gain is fitted over: the quadratic has 3 complex unknowns,
 * and a fit over fewer than one symbol at 16 samples per symbol (demod.h) follows the
 * other bursts as much as this one. */
#define SIC_MIN_SPAN 16

enum sic_error {
    SIC_OK = 0,
    SIC_ERR_ARG = -1,      /* NULL pointer, span outside x, bad modulation parameters */
    SIC_ERR_SHORT = -2,    /* fewer than SIC_MIN_SPAN samples of the burst inside x */
    SIC_ERR_SINGULAR = -3, /* the reference has no power to fit (normal equations singular) */
};

/* Fits ref's quadratic complex gain over samples [i0, i1) of x (least squares, see above)
 * and subtracts gain × ref there. x outside [i0, i1) is not touched; on any error x is not
 * touched at all. Returns SIC_OK, SIC_ERR_ARG (NULL, i0 >= i1), SIC_ERR_SHORT
 * (i1 - i0 < SIC_MIN_SPAN) or SIC_ERR_SINGULAR. */
int sic_subtract(float complex *x, const float complex *ref, size_t i0, size_t i1);

/* Cancels one decoded burst from x (nx samples at p->rate_sps): renders the nbits air bits
 * with p (dbpsk_burst_render, its ramp-up at start_sample of x: the first data symbol when
 * p has no ramp and no lead, as the receiver renders it) into scratch (nx samples,
 * overwritten), then sic_subtract over the burst's span: from one symbol before
 * start_sample to one symbol after the last data symbol (the pulses reach half a symbol
 * beyond the data), clipped to x; symbol_samples is the measured samples per symbol.
 * Returns SIC_OK, SIC_ERR_ARG (NULL, nx 0, |p->freq_hz| >= p->rate_sps / 2, parameters
 * dbpsk_burst_render refuses, nothing rendered into x), SIC_ERR_SHORT or
 * SIC_ERR_SINGULAR; x is unchanged unless SIC_OK. */
int sic_cancel_burst(const dbpsk_burst_params_t *p, const uint8_t *bits, size_t nbits,
                     double start_sample, double symbol_samples, float complex *x, size_t nx,
                     float complex *scratch);

/* Cancelling a burst decoded in another snippet (cross-track cancellation).
 *
 * A BR600 burst with a BR100 burst inside its band, or two bursts a few hundred hertz
 * apart, are separate tracks with their own snippets: each snippet holds, besides its own
 * burst, the part of the neighbour that its extractor's filter passes (extractor.h: flat
 * to pass_hz, a raised cosine to 0 at stop_hz). Once the neighbour is decoded in its own
 * snippet, it is removed from this one before this one is demodulated:
 *
 *   1. render the decoded bits with the neighbour's carrier (relative to this snippet's
 *      centre), drift, symbol rate and start at oversample × the snippet's rate, where a
 *      BR600 burst a kilohertz off a BR100 snippet's centre does not alias;
 *   2. filter with this snippet's H (a windowed FIR sampled from H, designed at create)
 *      and keep every oversample-th sample: the neighbour as this snippet sees it;
 *   3. fit its quadratic complex gain over its span and subtract (sic_subtract).
 *
 * The gain fit absorbs the extractor's unknown scale and phase; the neighbour's own
 * burst in this snippet does not bias it (uncorrelated with the reference). Allocates at
 * create only; one object per snippet class, not thread-safe. */
typedef struct {
    double rate_sps;         /* the snippet's sample rate */
    unsigned oversample;     /* the reference is rendered at rate_sps × oversample (>= 1) */
    double pass_hz, stop_hz; /* the snippet's filter (extractor_config_t) */
    size_t max_span;         /* longest span cancelled, snippet samples (longer ones: refused) */
} sic_xcancel_config_t;

typedef struct sic_xcancel sic_xcancel_t;

/* NULL on a bad configuration (rate <= 0, oversample 0, !(0 < pass < stop <=
 * rate × oversample / 2), max_span < SIC_MIN_SPAN) or no memory. */
sic_xcancel_t *sic_xcancel_create(const sic_xcancel_config_t *cfg);

/* Cancels from x (nx snippet samples) the burst of nbits air bits whose first data symbol
 * lies at snippet sample start_sample; p->rate_sps must be rate_sps × oversample and
 * p->freq_hz the burst's carrier relative to the snippet's centre (|f| < half that rate).
 * The span cancelled is the burst's, one symbol and the filter's reach each side, clipped
 * to x. Returns SIC_OK, SIC_ERR_ARG (NULL, wrong rate, nothing of the burst inside x,
 * parameters dbpsk_burst_render refuses, span over max_span), SIC_ERR_SHORT or
 * SIC_ERR_SINGULAR; x is unchanged unless SIC_OK. */
int sic_xcancel_burst(sic_xcancel_t *q, const dbpsk_burst_params_t *p, const uint8_t *bits,
                      size_t nbits, double start_sample, float complex *x, size_t nx);

void sic_xcancel_destroy(sic_xcancel_t *q);

#endif
