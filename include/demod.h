/* demod: coherent D-BPSK burst demodulator for Sigfox uplink bursts (spec rev 1.4 §2.3,
 * §2.4.3, Table 2-2, Table 2-3). Licence: MIT. No I/O.
 *
 * Input: one burst snippet cut by the extractor, complex baseband at exactly
 * DEMOD_SPS = 16 samples per nominal symbol (1600 S/s for BR100, 9600 S/s for BR600),
 * centred within about ±baud/2 of the carrier, starting some symbols before the burst.
 *
 * What it does, in normalised units (cycles per symbol), so BR100 and BR600 share it:
 *
 *   1. squaring: z = (low-pass ±1.76 baud, decimate by 4)^2 at 4 samples/symbol removes
 *      the BPSK modulation and leaves a tone at twice the carrier that chirps at twice
 *      the drift (the low-pass keeps a neighbour 3 baud away and 20 dB stronger from
 *      becoming that tone);
 *   2. carrier + drift, coarse: FFTs of 32-symbol segments of z, dechirped by a few drift
 *      hypotheses (so a strong drift does not smear a segment's tone), summed
 *      incoherently along the drift lines around each (Table 2-2 peak drift plus margin);
 *   3. carrier + drift, fine: coherent dechirped sum over the whole burst maximised by
 *      alternating parabolic steps (frequency error ~ 1/(2π T sqrt(SNR))); for a weak
 *      burst (the winner's coherent peak under 5 % of z's energy: below ~2.5 dB Eb/N0,
 *      where a noise peak often wins) steps 1-3 run again on a bank of squarers, one per
 *      carrier hypothesis 0.25 baud apart, each fed by a one-symbol boxcar (noise
 *      bandwidth one baud instead of 3.5), and the highest coherent power wins;
 *   4. derotation, matched filter to the assumed pulse (dbpskmod.h: flat symbol with a
 *      cos² taper of `reversal_symbols` at each boundary), symbol timing and rate from the
 *      baud-rate line of |MF|² (Oerder & Meyr), maximised over ±0.12 % rate error;
 *   5. phase tracking from the smoothed squared symbols (sliding window), π-ambiguity
 *      left to the differential code;
 *   6. soft bits: a 2-state BCJR over the symbol signs with the pulse's inter-symbol term
 *      (Ungerboeck metric), so each bit's LLR log(P(1)/P(0)) accounts for both symbols it
 *      spans and the noise variance estimated from the quadrature component;
 *   7. frame sync: maximum likelihood over start positions in the hint's window and the
 *      configured 32-bit sync words (19-bit preamble + 13-bit FT), which also fixes the
 *      frame length; then amplitude, noise and the neighbours' share of a matched-filter
 *      value (which depends on the device's dip shape: regressed on the decided symbols,
 *      shrunk towards the assumed pulse's value for weak bursts) are re-estimated over
 *      the frame and step 6 runs again. Weak bursts (first Es/N0 estimate under 6 dB)
 *      first get their timing and rate refitted on the frame's known and decided symbols
 *      (coherent sums over blocks of 16 symbols, a timing line over the frame): near the
 *      noise the baud line of step 4 is no better than the nominal rate, and a payload
 *      without reversals (0xFF on some ranks) gives it little to see.
 *
 * The object keeps its buffers (allocated in demod_create); demod_process never allocates.
 * One demod_t per thread; demod_create/destroy call the FFTW planner, which is not
 * thread-safe: create and destroy them from one thread at a time.
 */
#ifndef SIGFOX_DEMOD_H
#define SIGFOX_DEMOD_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Samples per nominal symbol of every snippet (agreed with the extractor). */
#define DEMOD_SPS 16
/* Bits of a sync word: 19 preamble + 13 FT bits (spec §3.11, §3.12). */
#define DEMOD_SYNC_BITS 32
/* Preamble length in bits (§3.12). */
#define DEMOD_PREAMBLE_BITS 19
#define DEMOD_MAX_SYNC_WORDS 32
/* demod_result_t.alt_start_sample: at most this many runner-up starts, each at least
 * DEMOD_ALT_MIN_SYMBOLS from the chosen start and from one another (a start one symbol
 * off is the same sync, smeared) */
#define DEMOD_MAX_ALTS 3
#define DEMOD_ALT_MIN_SYMBOLS 2

enum demod_error {
    DEMOD_OK = 0,
    DEMOD_ERR_ARG = -1,    /* NULL pointer, bad length or hint outside the snippet */
    DEMOD_ERR_SHORT = -2,  /* snippet too short for a frame (fewer than 48 symbols) */
    DEMOD_ERR_LONG = -3,   /* snippet longer than the configured max_samples */
    DEMOD_ERR_NOSYNC = -4, /* no sync position scored above chance */
};
/* Static text for a demod_error. Never NULL. */
const char *demod_strerror(int code);

/* One candidate 32-bit sync word: the 19-bit preamble then a 13-bit frame type, first bit
 * on air in bit 31, and how many bits follow it in that frame (container + CRC). */
typedef struct {
    uint32_t word;
    uint16_t body_bits;
} demod_sync_t;

typedef struct {
    double baud;              /* nominal symbol rate, Hz (100 or 600); rate = 16 × baud */
    size_t max_samples;       /* longest snippet demod_process will take */
    double max_drift_hz_s;    /* drift search range; 0: Table 2-2 peak × 1.34
                                 (40 Hz/s for 100 baud, 134 Hz/s for 600 baud) */
    double reversal_symbols;  /* assumed width of the amplitude dip at a phase reversal,
                                 symbols, (0, 1]; 0: 1.0 (the synthesizer's default) */
    const demod_sync_t *sync; /* sync words (copied); NULL/0: preamble only, and the
                                 soft output runs to the end of the snippet */
    size_t nsync;             /* <= DEMOD_MAX_SYNC_WORDS */
} demod_config_t;

/* What the burst detector knows, in samples of this snippet. */
typedef struct {
    double start_sample;      /* expected start of the first preamble symbol */
    double start_uncertainty; /* ± samples around start_sample to search (>= 0) */
    double start_sigma;       /* > 0: the start is Gaussian around start_sample with this
                                 spread (samples), and the sync search weighs each
                                 position by it; 0: every position in the window alike */
    double end_sample;        /* expected end of the burst; 0: the end of the snippet */
    double freq_window_hz;    /* carrier searched within ± this of the snippet's centre;
                                 0: the whole ±baud (a second burst close to the first
                                 can be demodulated by centring on it with a narrow
                                 window) */
    bool strong;              /* the caller saw this burst well above the noise: no
                                 weak-burst search (step 3), whatever the squared
                                 signal looks like (a second burst in the snippet
                                 also lowers its coherent share) */
} demod_hint_t;

typedef struct {
    double start_sample;     /* start of the first preamble symbol, fractional sample of
                                the snippet */
    double freq_hz;          /* carrier offset from the snippet's centre at start_sample */
    double drift_hz_s;       /* linear drift */
    double symbol_rate;      /* estimated symbol rate (baud), Hz */
    double rssi_dbfs;        /* mean burst power over the frame, dB full scale (|x| = 1) */
    double snr_db;           /* mean burst power / noise power in `baud` Hz (= Eb/N0) */
    double preamble_quality; /* sum(LLR·expected sign) / sum(|LLR|) over the 19
                                preamble bits: 1 perfect, ~0 noise */
    int preamble_errors;     /* preamble bits whose sign decision is wrong */
    int sync_index;          /* index into config sync[] that matched; -1: preamble only */
    int sync_errors;         /* wrong sign decisions over the 32 sync bits */
    double sync_score;       /* log-likelihood of the chosen sync minus that of the
                                best other position (> 0; small = ambiguous) */
    int nalt;                /* runner-up starts in the window (<= DEMOD_MAX_ALTS) */
    double alt_start_sample[DEMOD_MAX_ALTS]; /* best first, fractional samples */
    double alt_score[DEMOD_MAX_ALTS];        /* the chosen sync's score (log-prior
                                                included) minus each runner-up's, >= 0 */
    size_t frame_bits;       /* FT + body bits of the matched sync word (13 + body) */
} demod_result_t;

typedef struct demod demod_t;

/* Creates a demodulator. NULL (after logging nothing: dsp/ does no I/O) when cfg is NULL,
 * baud <= 0, max_samples < 48 symbols, reversal_symbols outside [0, 1], nsync too large
 * or sync NULL with nsync > 0. */
demod_t *demod_create(const demod_config_t *cfg);

/* Demodulates one burst. x: n samples at 16 samples/symbol (n <= max_samples). hint: the
 * detector's start estimate and window. Writes soft[i] = LLR (positive means 1) of the
 * frame bit i counted from the first FT bit, for every symbol up to the end of the
 * snippet (or soft_cap), and fills res. Returns the number of soft values written
 * (>= 13 when the sync succeeded) or a negative demod_error; after DEMOD_ERR_NOSYNC and
 * DEMOD_ERR_SHORT from the symbol count, res->freq_hz and drift_hz_s still hold the
 * carrier estimate (at hint->start_sample), so a caller can look elsewhere. */
int demod_process(demod_t *q, const float complex *x, size_t n, const demod_hint_t *hint,
                  float *soft, size_t soft_cap, demod_result_t *res);

/* The matched-filter symbol values of the last demod_process, one per symbol of the
 * snippet at the estimated timing: carrier removed with the estimated frequency and drift,
 * phase NOT removed (no phase tracking, no sign decision). *first receives the index of
 * the first preamble symbol: the sync's, or after DEMOD_ERR_NOSYNC the middle of the
 * hint's window (a decoder that knows which frame it looks for can align itself, see
 * uljoint.h ul_joint_align). For decoders that estimate the phase themselves. Copies up
 * to cap values; returns the count, 0 when the call failed before the symbols existed (or
 * NULL arguments). Valid until the next demod_process on q. */
size_t demod_symbols(const demod_t *q, float complex *out, size_t cap, size_t *first);

/* A carrier the last demod_process refined. */
typedef struct {
    double freq_hz; /* at the sample asked for */
    double drift_hz_s;
    double share; /* the squared signal's coherent peak / its energy (noise ~0.01) */
} demod_carrier_t;

/* The carriers the last demod_process refined, best first: the first is the one it used
 * (res->freq_hz when asked at res->start_sample); a weak burst (share < 0.05) lists the
 * squarer bank's refined carriers (up to 5). Returns the count (0 before any
 * demod_process, after one that failed its arguments, or with NULL arguments). */
size_t demod_carriers(const demod_t *q, double at_sample, demod_carrier_t *out, size_t cap);

/* NULL-safe. */
void demod_destroy(demod_t *q);

#endif
