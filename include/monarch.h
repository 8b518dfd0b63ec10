/* monarch: Sigfox Monarch beacon generator (seeds/001). Licence: MIT. No I/O.
 *
 * A beacon is 12 carriers at ±1..±6 × dF around the beacon frequency, summed, first for
 * 362 ms with dF1, then for 38 ms with dF2 (400 ms in all). The carriers start in phase,
 * so the sum has an envelope peak every 1/dF (what a device's OOK detector sees), and each
 * carrier's phase runs on continuously through the dF1 -> dF2 change. dF is one of
 * 1024, 1260.3 and 1489.4 Hz; the pair (dF1, dF2) and the frequency encode the radio
 * configuration. The seed does not give the RC -> (frequency, dF1, dF2) table, so the
 * caller must state all three (no defaults here).
 *
 *   amplitude
 *     |  ____________________________ ____
 *     | /   12 carriers, spacing dF1  |dF2 \      ramps: raised cosine, ramp_s each
 *     |/______________________________|_____\___
 *     0                            362 ms   400 ms
 *
 * Beacons repeat every MONARCH_PERIOD_S with a random offset of up to MONARCH_JITTER_S
 * (seeds/001): scheduling them is the caller's job.
 */
#ifndef SIGFOX_MONARCH_H
#define SIGFOX_MONARCH_H

#include <complex.h>
#include <stddef.h>

#define MONARCH_CARRIERS 12
#define MONARCH_PATTERN1_S 0.362
#define MONARCH_PATTERN2_S 0.038
#define MONARCH_BEACON_S (MONARCH_PATTERN1_S + MONARCH_PATTERN2_S)
#define MONARCH_PERIOD_S 300.0
#define MONARCH_JITTER_S 10.0
#define MONARCH_DF_A_HZ 1024.0 /* the three spacings of seeds/001 */
#define MONARCH_DF_B_HZ 1260.3
#define MONARCH_DF_C_HZ 1489.4
#define MONARCH_DEFAULT_RAMP_S 0.001

enum monarch_error {
    MONARCH_OK = 0,
    MONARCH_ERR_ARG = -1,   /* NULL pointer */
    MONARCH_ERR_SPACE = -2, /* output buffer shorter than monarch_beacon_samples() */
};
const char *monarch_strerror(int code);

/* 1 when df_hz is one of the three Monarch spacings (within 0.05 Hz), else 0. */
int monarch_df_valid(double df_hz);

typedef struct {
    double rate_sps;  /* output sample rate; must hold offset ± 6 × max(dF) + 1 kHz */
    double offset_hz; /* beacon frequency minus the output's centre frequency */
    double df1_hz;    /* spacing of the 362 ms pattern: 1024, 1260.3 or 1489.4 */
    double df2_hz;    /* spacing of the 38 ms pattern: idem */
    float amplitude;  /* peak amplitude of the sum, (0, 1] of full scale (0: 1.0); each
                         carrier gets amplitude / 12 */
    float ramp_s;     /* raised-cosine rise and fall inside the 400 ms, 0 .. 10 ms
                         (0: 1 ms; < 0: none) */
} monarch_config_t;

typedef struct monarch monarch_t;

/* Returns NULL on a bad configuration (dF not one of the three, offset out of the band,
 * amplitude or ramp out of range) or no memory. */
monarch_t *monarch_create(const monarch_config_t *cfg);

/* Samples of one beacon: round(0.4 s × rate). */
size_t monarch_beacon_samples(const monarch_t *q);

/* Sample index where the dF2 pattern starts: round(0.362 s × rate). */
size_t monarch_switch_sample(const monarch_t *q);

/* Writes one beacon into out (overwriting it). Never allocates. Returns the number of
 * samples written or MONARCH_ERR_ARG / MONARCH_ERR_SPACE. */
long monarch_process(monarch_t *q, float complex *out, size_t out_cap);

/* NULL-safe. */
void monarch_destroy(monarch_t *q);

#endif
