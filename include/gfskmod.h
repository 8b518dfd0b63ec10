/* gfskmod: Sigfox downlink GFSK burst modulator (spec rev 1.4 §2.5.2, §2.5.6, Table 2-3).
 * Licence: MIT. No I/O.
 *
 * 600 baud, deviation ±800 Hz (bit 1 = +800 Hz, bit 0 = -800 Hz), Gaussian frequency
 * pulse (liquid-dsp cpfskmod, LIQUID_CPFSK_GMSK, modulation index h = 2 × 800 / 600),
 * BT 0.5 by default. The spec gives no BT; 0.5 is the usual value of sub-GHz GFSK
 * transceivers and keeps the occupied bandwidth near Carson's 2 × (800 + 600) Hz.
 *
 * Burst layout (one process() call), at the output rate:
 *
 *   | ramp up | bit 0 | bit 1 | ... | bit n-1 | ramp down |
 *   ^ sample 0                                            ^ gfskmod_burst_samples(n)
 *
 * The ramps (raised-cosine amplitude, ramp_symbols each, ≤ 0.5 symbol per §2.5.6) lie
 * outside the data symbols; during them the carrier holds the frequency of the first /
 * last bit. Sample rate: when rate_sps / 600 is an even integer the modulator runs at the
 * output rate directly, otherwise at 16 samples/symbol followed by liquid's resamp_crcf.
 * The carrier offset (TX centre -> DL frequency) is applied with a double-precision phasor
 * (liquid's NCO was measured with -60 dBc spurs, see dsp/gfskmod.c).
 */
#ifndef SIGFOX_GFSKMOD_H
#define SIGFOX_GFSKMOD_H

#include <complex.h>
#include <stddef.h>
#include <stdint.h>

#define GFSK_BAUD 600.0         /* Table 2-3, BR600_DL */
#define GFSK_DEVIATION_HZ 800.0 /* §2.5.2 */
#define GFSK_DEFAULT_BT 0.5f
#define GFSK_MAX_RAMP_SYMBOLS 0.5f /* §2.5.6 */

enum gfskmod_error {
    GFSKMOD_OK = 0,
    GFSKMOD_ERR_ARG = -1,    /* NULL pointer, n_bits 0 or above max_bits */
    GFSKMOD_ERR_SPACE = -2,  /* out_cap smaller than gfskmod_burst_samples() */
    GFSKMOD_ERR_OFFSET = -3, /* carrier offset puts the signal outside ±rate/2 */
};
const char *gfskmod_strerror(int code);

typedef struct {
    double rate_sps;    /* output sample rate, >= 4800 */
    double offset_hz;   /* carrier offset from the output's centre (DL frequency minus
                           TX centre); |offset_hz| + 2 kHz must fit below rate_sps / 2 */
    float bt;           /* Gaussian bandwidth-time product, 0.2..1 (0: 0.5) */
    float ramp_symbols; /* ramp-up and ramp-down length, (0, 0.5] symbols (0: 0.5) */
    float amplitude;    /* peak amplitude, (0, 1] of full scale (0: 1.0) */
    size_t max_bits;    /* longest burst process() accepts (0: 224, one DL frame) */
} gfskmod_config_t;

typedef struct gfskmod gfskmod_t;

/* Creates a modulator (allocates everything process() needs; measures the chain's
 * filter delay once). Returns NULL on a bad configuration (cfg NULL, rate, BT, ramp,
 * amplitude or offset out of range) or no memory. */
gfskmod_t *gfskmod_create(const gfskmod_config_t *cfg);

/* Changes the carrier offset for the next bursts (e.g. per downlink frequency).
 * Returns 0 or GFSKMOD_ERR_OFFSET / GFSKMOD_ERR_ARG. */
int gfskmod_set_offset(gfskmod_t *q, double offset_hz);

/* Output samples of a burst of n_bits bits: round((n_bits + 2 × ramp) × rate / 600). */
size_t gfskmod_burst_samples(const gfskmod_t *q, size_t n_bits);

/* Time from the first output sample to the start of bit 0 (= the ramp length), seconds. */
double gfskmod_data_offset_s(const gfskmod_t *q);

/* Samples per symbol at the output rate (rate_sps / 600, not necessarily an integer). */
double gfskmod_samples_per_symbol(const gfskmod_t *q);

/* Modulates n_bits bits packed MSbit first (bits[0] bit 7 first; a DL frame is
 * dl_frame_encode()'s 28 bytes with n_bits = DL_FRAME_BITS) into out[0 ..
 * gfskmod_burst_samples(n_bits)-1], overwriting it. Every burst starts from a reset
 * state (NCO phase 0). Never allocates. Returns the number of samples written, or
 * GFSKMOD_ERR_ARG / GFSKMOD_ERR_SPACE. */
long gfskmod_process(gfskmod_t *q, const uint8_t *bits, size_t n_bits, float complex *out,
                     size_t out_cap);

/* NULL-safe. */
void gfskmod_destroy(gfskmod_t *q);

#endif
