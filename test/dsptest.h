/* dsptest: helpers shared by test_dbpskmod and test_synth. Licence: MIT.
 *
 * assert_near() comes from testutil.h.
 *
 * ref_demod(): the ideal reference D-BPSK demodulator. It knows everything: carrier, drift, phase
 * and symbol timing of the burst (dbpskmod.h's definitions). For each data symbol it integrates the
 * middle half of the symbol after removing the carrier, takes the coherent sign, and outputs bit 1
 * when the sign did not change (b_-1 = +1, the carrier phase before the first bit, §2.4.3). No
 * estimation at all: if the modulator or the synthesizer's truth is off, bits come out wrong. */
#ifndef SIGFOX_TEST_DSPTEST_H
#define SIGFOX_TEST_DSPTEST_H

#include <complex.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dbpskmod.h"
#include "testutil.h"

/* Carrier phase of a burst at stream sample m when its ramp-up starts at start_sample. */
static inline double ref_carrier_phase(const dbpsk_burst_params_t *p, double start_sample, double m)
{
    double tau = (m - start_sample - dbpsk_burst_data_offset(p)) / p->rate_sps;
    return p->phase_rad + 2 * M_PI * (p->freq_hz * tau + 0.5 * p->drift_hz_s * tau * tau);
}

/* x[m] is stream sample m; the burst's ramp-up starts at stream position start_sample. */
static void ref_demod(const dbpsk_burst_params_t *p, double start_sample, const float complex *x,
                      size_t nbits, uint8_t *bits_out)
{
    double sps = p->rate_sps / dbpsk_burst_symbol_rate(p);
    double d0 = start_sample + dbpsk_burst_data_offset(p);
    memset(bits_out, 0, (nbits + 7) / 8);
    double prev = 1.0;
    for (size_t k = 0; k < nbits; k++) {
        long lo = (long)ceil(d0 + (k + 0.25) * sps), hi = (long)floor(d0 + (k + 0.75) * sps);
        double complex acc = 0;
        for (long m = lo; m <= hi; m++)
            acc += x[m] * cexp(-I * ref_carrier_phase(p, start_sample, (double)m));
        double sign = creal(acc) >= 0 ? 1.0 : -1.0;
        if (sign == prev)
            bits_out[k >> 3] |= (uint8_t)(0x80 >> (k & 7));
        prev = sign;
    }
}

#endif
