/* levelmeter: input levels for setting a radio's gain. Licence: MIT. No I/O.
 *
 * Over windows of window_s seconds of signal it measures, on the samples as the capture
 * delivers them (full scale 1.0 per component, see capture.h):
 *   - the mean input power in dBFS (a full-scale complex tone, |x| = 1, is 0 dBFS);
 *   - the ADC peak: the largest |I| or |Q|, 20 log10, so 0 dBFS is the converter's end;
 *   - clipped samples: an I or Q at one of the converter's end codes, +(1 - 2^-(adc_bits-1))
 *     or -1 (cs8: 127/128 and -1; cu8's 255 and 0 are +1 and -1), +-1.0 when adc_bits
 *     is 0 (float);
 *   - the noise floor in each of `parts` equal parts of the sampled band, from one
 *     Hann-windowed FFT of nfft samples every hop samples: per FFT and part, the median of
 *     the part's bin powers (a narrow burst or the DC spike cannot move it), then the
 *     median over the window's FFTs (nor can a burst that lasts less than half of it); a
 *     median of exponentially distributed noise powers is ln 2 times their mean, which is
 *     divided out. Each floor is the noise power the whole band would have at that
 *     density ("full-band equivalent"), so it compares directly with the input power and
 *     with the ADC's quantisation noise 10 log10(d^2 / 6), d = 2 / 2^adc_bits (uniform
 *     quantiser on I and Q: -49.9 dBFS for 8 bits, -74.0 dBFS for 12 bits).
 * And it advises: CLIPPING when more than LEVELMETER_CLIP_SHARE of the window's samples
 * clipped (turn the gain down), TOO_WEAK when the median part floor is less than
 * LEVELMETER_QUANT_MARGIN_DB above the quantisation noise (turn it up: the ADC's own noise
 * then adds >= 1 dB to the receiver's and the weakest bursts drown in it).
 *
 * Cost: one pass over the samples (power, peak, clip; two samples per vector operation,
 * ~14 instructions per sample on x86-64 with the FFTs: callgrind, 2.4 MS/s) and one
 * 512-point FFT per ~1/128 s of signal. The power sums do not depend on how the samples
 * are split into calls. Not thread-safe: one thread processes, the owner copies
 * levelmeter_get() results for others.
 */
#ifndef SIGFOX_LEVELMETER_H
#define SIGFOX_LEVELMETER_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEVELMETER_MAX_PARTS 64
/* More clipped samples than this share of a window: "lower the gain". 1e-4 lets an
 * occasional strong nearby burst through but not an overloaded front end. */
#define LEVELMETER_CLIP_SHARE 1e-4
/* Noise floor less than this above the quantisation noise: "raise the gain" (6 dB: the
 * quantisation noise adds 1 dB to the total). */
#define LEVELMETER_QUANT_MARGIN_DB 6.0

typedef struct {
    double rate_sps;   /* sample rate, > 0 (window and part widths) */
    double window_s;   /* figures per window of this much signal; 0: 5 s */
    unsigned adc_bits; /* source resolution: 8 (cu8, cs8), 12 (12-bit radio as cs16), 16
                          (cs16 file); 0: unknown/float (no quantisation floor) */
    unsigned parts;    /* band split into this many parts, 1..64, divides nfft; 0: 8 */
    unsigned nfft;     /* FFT length, power of two 64..8192, >= 8 bins per part; 0: 512 */
} levelmeter_config_t;

typedef enum {
    LEVELMETER_OK = 0,
    LEVELMETER_CLIPPING, /* lower the gain */
    LEVELMETER_TOO_WEAK, /* raise the gain */
} levelmeter_advice_t;

typedef struct {
    bool valid;                /* false until one FFT of a window was taken */
    bool complete;             /* a full window (else the running one so far) */
    double window_s;           /* seconds of signal behind these figures */
    uint64_t samples;          /* samples behind them */
    double input_dbfs;         /* mean power */
    double peak_dbfs;          /* largest |I| or |Q|, 20 log10; -inf for silence */
    uint64_t clipped;          /* samples with I or Q at full scale */
    double clipped_share;      /* clipped / samples */
    unsigned parts;            /* entries in part_floor_dbfs */
    double part_floor_dbfs[LEVELMETER_MAX_PARTS]; /* lowest frequency first */
    double noise_floor_dbfs;   /* median of the parts' floors */
    double quant_floor_dbfs;   /* the ADC's quantisation noise; NAN when adc_bits is 0 */
    levelmeter_advice_t advice;
} levelmeter_report_t;

typedef struct levelmeter levelmeter_t;

/* NULL (after logging which parameter is wrong) on a bad configuration. */
levelmeter_t *levelmeter_create(const levelmeter_config_t *cfg);
/* Measures n samples. Returns 1 when a window completed inside them (a new report), else
 * 0; -1 on bad arguments. Never allocates. */
int levelmeter_process(levelmeter_t *q, const float complex *in, size_t n);
/* The last complete window's figures, or the running window's before the first one
 * completed (complete = false; valid = false until it has one FFT). The processing
 * thread only (it may reorder internal tables). */
void levelmeter_get(levelmeter_t *q, levelmeter_report_t *out);
/* Clipped samples since create (every window). */
uint64_t levelmeter_clipped_total(const levelmeter_t *q);
/* Centre of part i relative to the tuned frequency, in Hz (parts span -rate/2..rate/2). */
double levelmeter_part_offset_hz(const levelmeter_t *q, unsigned i);
/* "lower the gain", "raise the gain" or "ok". */
const char *levelmeter_advice_name(levelmeter_advice_t a);
void levelmeter_destroy(levelmeter_t *q);

#endif
