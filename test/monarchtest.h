/* monarchtest: the Monarch pattern check shared by test_monarch and test_txsink. Licence: MIT. */
#ifndef SIGFOX_TEST_MONARCHTEST_H
#define SIGFOX_TEST_MONARCHTEST_H

#include <math.h>

#include "monarch.h"

/* How far the MONARCH_CARRIERS measured carriers f[] (ascending) are from their nominal
 * places offset ± k·df, k = 1..6 (seeds/001), and how far the weakest level lvl[] (dB,
 * 0 = strongest) lies below the strongest. A NaN makes the result NaN, so it fails a test.
 *
 * Written with comparisons, not as an fmax()/fmin() reduction: gcc 12.2 for aarch64
 * (Debian bookworm, the Raspberry Pi's compiler) stops with an internal compiler error
 * in vect_transform_reduction when it vectorises such a loop at -O2. */
static inline void monarch_pattern_fit(const double *f, const double *lvl, double offset_hz,
                                       double df_hz, double *max_err_hz, double *spread_db)
{
    double worst = 0, weakest = 0;
    for (int j = 0; j < MONARCH_CARRIERS; j++) {
        int k = j < MONARCH_CARRIERS / 2 ? j - MONARCH_CARRIERS / 2 : j - MONARCH_CARRIERS / 2 + 1;
        double err = fabs(f[j] - (offset_hz + k * df_hz));
        if (!(err <= worst))
            worst = err;
        if (!(lvl[j] >= weakest))
            weakest = lvl[j];
    }
    *max_err_hz = worst;
    *spread_db = -weakest;
}

#endif
