/* dbpskmod: Sigfox uplink D-BPSK burst modulator with device impairments (spec rev 1.4
 * §2.3, §2.4.3, §2.4.4, Table 2-2). Used by the synthesizer, the tests and the benchmarks
 * as "the device". Licence: MIT. No I/O.
 *
 * Bit convention (§2.4.3): bit 1 = no phase change, bit 0 = 180° phase reversal; the
 * amplitude dips during each reversal, which shapes the spectrum (§2.4.4).
 */
#ifndef SIGFOX_DBPSKMOD_H
#define SIGFOX_DBPSKMOD_H

#include <complex.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    double rate_sps;          /* output sample rate */
    double baud;              /* 100 or 600 nominal */
    double baud_error_ppm;    /* symbol-rate error, within ±1000 ppm (Table 2-3: ±0.1 %) */
    double freq_hz;           /* carrier offset from the output's centre at the first
                                 preamble symbol */
    double drift_hz_s;        /* linear carrier drift over the burst */
    double phase_rad;         /* initial carrier phase */
    double amplitude;         /* peak amplitude (full scale 1.0) */
    int lead_symbols;         /* unmodulated carrier symbols before the preamble (0..2) */
    int tail_symbols;         /* unmodulated carrier symbols after the last bit (0..2) */
    double ramp_symbols;      /* power ramp-up/down length at each end, in symbols */
} dbpsk_burst_params_t;

/* Number of output samples a burst of nbits needs with these parameters (ramps and
 * lead/tail symbols included). */
size_t dbpsk_burst_length(const dbpsk_burst_params_t *p, size_t nbits);

/* Samples from the start of the output to the start of the first preamble symbol. */
double dbpsk_burst_data_offset(const dbpsk_burst_params_t *p);

/* Modulates nbits bits (packed MSbit first) into out, ADDING to what out holds (so bursts
 * can overlap). out must hold dbpsk_burst_length() samples. Returns the number of samples
 * written or a negative value on bad parameters. */
long dbpsk_burst_modulate(const dbpsk_burst_params_t *p, const uint8_t *bits, size_t nbits,
                          float complex *out, size_t cap);

/* Mean power of the burst over its data symbols (preamble to last bit), for Eb/N0:
 * Eb = mean_power / baud. */
double dbpsk_burst_mean_power(const dbpsk_burst_params_t *p);

#endif
