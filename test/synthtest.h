/* synthtest: helpers shared by the receiver tests that build their signals with the
 * synthesizer: a seeded scenario and a small deterministic uniform generator for test
 * parameters. Include after <cmocka.h>. Licence: MIT. */
#ifndef SIGFOX_TEST_SYNTHTEST_H
#define SIGFOX_TEST_SYNTHTEST_H

#include <stdint.h>

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

/* Uniform in [0, 1) from a xorshift64 state (non-zero). */
static inline double test_uniform(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (double)(*state >> 11) / 9007199254740992.0;
}

#endif
