/* synthtest: helpers shared by the receiver tests that build their signals with the
 * synthesizer: a seeded scenario (test parameters are drawn from prng.h). Include after
 * <cmocka.h>. Licence: MIT. */
#ifndef SIGFOX_TEST_SYNTHTEST_H
#define SIGFOX_TEST_SYNTHTEST_H

#include <stdint.h>

#include "prng.h"
#include "synth.h"

/* A random-traffic scenario of `devices` devices; center_hz 0 = the RC's uplink centre.
 * Fails the test when the synthesizer refuses the configuration. */
static inline synth_t *test_synth_create(double rate_sps, double duration_s, int devices,
                                         uint64_t seed, double center_hz)
{
    synth_config_t c;
    synth_config_default(&c);
    c.center_freq_hz = center_hz;
    c.seed = seed;
    c.rate_sps = rate_sps;
    c.duration_s = duration_s;
    c.devices = devices;
    char err[256];
    synth_t *s = synth_create(&c, err, sizeof err);
    if (!s)
        fail_msg("synth: %s", err);
    return s;
}

#endif
