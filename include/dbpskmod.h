/* dbpskmod: Sigfox uplink D-BPSK burst modulator with device impairments (spec rev 1.4
 * §2.3, §2.4.3, §2.4.4, Table 2-2). Used by the synthesizer, the tests and the benchmarks
 * as "the device". Licence: MIT. No I/O, no allocation, thread-safe (pure functions).
 *
 * Bit convention (§2.4.3): bit 1 = no phase change, bit 0 = 180° phase reversal; the
 * amplitude dips during each reversal, which shapes the spectrum (§2.4.4).
 *
 * Burst layout on the time axis, in symbols of the actual (impaired) rate; τ = 0 is the
 * start of the first data (preamble) symbol:
 *
 *   | ramp-up R | lead L | data symbol 0 | 1 | ... | nbits-1 | tail T | ramp-down R |
 *   ^ sample 0         ^ τ = 0 (dbpsk_burst_data_offset())
 *
 * Ramps are sin² amplitude envelopes of unmodulated carrier; lead and tail are full-power
 * unmodulated carrier (the lead holds the reference phase of the first bit, the tail the
 * phase of the last). §2.4.3 limits each end's extra transmission to 2 symbols, so
 * R + L <= 2 and R + T <= 2.
 *
 * Symbol shaping: the baseband is the real sequence b_k = ±1 (b_-1 = +1, b_k = b_(k-1) for
 * bit 1, -b_(k-1) for bit 0) through a pulse that is flat over the symbol and tapers as
 * cos² over a window of `reversal_symbols` centred on each symbol boundary. Where two
 * neighbours agree the tapers sum to 1 (constant envelope); at a reversal the amplitude
 * follows cos(π x), x: 0 -> 1, through zero at the boundary: the "amplitude dip". The
 * middle of every symbol is at full amplitude and the symbol's phase.
 *
 * Carrier: exp(j(phase_rad + 2π(freq_hz τ + drift_hz_s τ²/2))) with τ in seconds, so
 * freq_hz is the instantaneous carrier offset at the first preamble symbol and the phase
 * there is phase_rad (carrier runs continuously through ramps, lead and tail).
 */
#ifndef SIGFOX_DBPSKMOD_H
#define SIGFOX_DBPSKMOD_H

#include <complex.h>
#include <stddef.h>
#include <stdint.h>

/* Default width of the amplitude dip at a phase reversal, in symbols (used when
 * reversal_symbols is 0). With a full-symbol cos² taper the pulse is a 2-symbol Hann
 * window: its main lobe ends at ±1/TS and its side lobes fall 18 dB/octave, which keeps
 * the averaged PSD far inside Table 2-8 (test_dbpskmod measures it). */
#define DBPSK_DEFAULT_REVERSAL_SYMBOLS 1.0
/* §2.4.3: ramp plus extra symbols at each end of a burst, at most 2 TS_UL. */
#define DBPSK_MAX_EXTRA_SYMBOLS 2.0
/* Table 2-3: cumulated symbol-rate error ±0.1 %. */
#define DBPSK_MAX_BAUD_ERROR_PPM 1000.0
/* Longest bit string accepted (a Sigfox frame is at most 208 bits). */
#define DBPSK_MAX_BITS 4096

/* Negative return codes. */
enum dbpsk_error {
    DBPSK_OK = 0,
    DBPSK_ERR_ARG = -1,    /* NULL pointer, nbits 0 or > DBPSK_MAX_BITS */
    DBPSK_ERR_PARAM = -2,  /* a parameter outside its documented range */
    DBPSK_ERR_LENGTH = -3, /* output buffer too short */
};
/* Message for a dbpsk_error code. Never NULL. */
const char *dbpsk_strerror(int code);

typedef struct {
    double rate_sps;         /* output sample rate, > 2 × baud */
    double baud;             /* 100 or 600 nominal (any > 0 accepted) */
    double baud_error_ppm;   /* symbol-rate error, within ±1000 ppm (Table 2-3: ±0.1 %) */
    double freq_hz;          /* carrier offset from the output's centre at the first
                                preamble symbol, |freq_hz| < rate_sps / 2 */
    double drift_hz_s;       /* linear carrier drift over the burst */
    double phase_rad;        /* carrier phase at the start of the first preamble symbol */
    double amplitude;        /* peak amplitude (full scale 1.0), >= 0 */
    int lead_symbols;        /* unmodulated carrier symbols before the preamble (0..2) */
    int tail_symbols;        /* unmodulated carrier symbols after the last bit (0..2) */
    double ramp_symbols;     /* power ramp-up/down length at each end, in symbols
                                (0..2, and ramp + lead <= 2, ramp + tail <= 2) */
    double reversal_symbols; /* width of the amplitude dip at a reversal, in symbols,
                                (0, 1]; 0 selects DBPSK_DEFAULT_REVERSAL_SYMBOLS */
} dbpsk_burst_params_t;

/* 0 if p is usable, else DBPSK_ERR_PARAM / DBPSK_ERR_ARG. */
int dbpsk_burst_check(const dbpsk_burst_params_t *p);

/* Actual symbol rate: baud × (1 + baud_error_ppm·1e-6), in symbols per second. */
double dbpsk_burst_symbol_rate(const dbpsk_burst_params_t *p);

/* Number of output samples a burst of nbits needs with these parameters (ramps and
 * lead/tail symbols included), when it starts at sample 0. 0 on bad parameters. */
size_t dbpsk_burst_length(const dbpsk_burst_params_t *p, size_t nbits);

/* Samples (fractional) from the start of the burst (start of the ramp-up) to the start of
 * the first preamble symbol: (ramp + lead) symbols. -1 on bad parameters. */
double dbpsk_burst_data_offset(const dbpsk_burst_params_t *p);

/* Duration of the whole burst in seconds ((2 ramp + lead + nbits + tail) symbols). */
double dbpsk_burst_duration_s(const dbpsk_burst_params_t *p, size_t nbits);

/* Modulates nbits bits (packed MSbit first) into out, ADDING to what out holds (so bursts
 * can overlap). The burst starts at out[0]. out must hold dbpsk_burst_length() samples
 * (cap). Returns the number of samples written or a negative dbpsk_error. */
long dbpsk_burst_modulate(const dbpsk_burst_params_t *p, const uint8_t *bits, size_t nbits,
                          float complex *out, size_t cap);

/* Streaming form: ADDS the part of a burst that falls in out[0..n), where out[0] is
 * sample index first_sample of a stream and the burst's ramp-up begins at the (possibly
 * fractional) stream sample position start_sample. Any block size; blocks that miss the
 * burst add nothing. Rendering a burst block by block gives the same samples (to float
 * rounding) as one call. Returns the number of samples touched (0 when the block misses
 * the burst) or a negative dbpsk_error. */
long dbpsk_burst_render(const dbpsk_burst_params_t *p, const uint8_t *bits, size_t nbits,
                        double start_sample, int64_t first_sample, float complex *out, size_t n);

/* Expected mean power of the burst over its data symbols (preamble to last bit) for
 * equiprobable random bits: amplitude² × (1 - reversal_symbols/4). For a given bit string
 * use dbpsk_burst_data_power(). -1 on bad parameters. */
double dbpsk_burst_mean_power(const dbpsk_burst_params_t *p);

/* Exact mean power of this burst over its data symbols (τ in [0, nbits symbols)), from the
 * envelope: each reversal inside the data removes reversal_symbols/2 symbol energies (half
 * of that for a reversal on the first boundary, which straddles the lead). This is what
 * Eb/N0 refers to: Eb = data_power / symbol rate. -1 on bad arguments. */
double dbpsk_burst_data_power(const dbpsk_burst_params_t *p, const uint8_t *bits, size_t nbits);

#endif
