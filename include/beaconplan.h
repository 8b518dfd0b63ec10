/* beaconplan: when the station sends its Monarch beacons (seeds/001), and what became of
 * each one. Licence: MIT. The beacon's waveform is monarch.h's; the transmitter txsink.h's.
 *
 * Every MONARCH_PERIOD_S (5 minutes) one beacon, a random 0..MONARCH_JITTER_S into the
 * slot. Base stations are in sync world-wide, so live slots start at UTC multiples of
 * 300 s (the first one far enough ahead to leave the transmitter its lead time); a replay
 * has no UTC and uses stream-time multiples, starting with the slot at 0 so that a short
 * recording shows a beacon too. A beacon is handed to the transmitter lead_s before it
 * starts, after taking a transmitter slot from the downlink scheduler (dlsched_reserve:
 * never over a downlink, within the duty cycle). Refused beacons and the transmitter's
 * reports become "monarch_beacon" events through delivery.h.
 *
 * Threads: beaconplan_tick() on one thread (the daemon's DSP thread, after every block);
 * beaconplan_tx_result() from the transmitter's thread; counters are locked.
 */
#ifndef SIGFOX_BEACONPLAN_H
#define SIGFOX_BEACONPLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "delivery.h"
#include "dlsched.h"
#include "txsink.h"

typedef struct {
    bool live;      /* slots on UTC (needs an anchor); false: stream time (replay) */
    double lead_s;  /* hand each beacon to the transmitter this long before it starts */
    double freq_hz; /* beacon frequency on air */
    double tx_ppm;  /* transmitter reference error: it synthesises freq/(1 + ppm 1e-6) */
    double df1_hz, df2_hz;
    uint64_t seed;    /* the slot offsets' random sequence (fixed in a replay) */
    dlsched_t *sched; /* NULL: no reservation (the transmitter is the beacons' alone) */
    txsink_t *tx;     /* required */
    delivery_t *out;  /* the events; may be NULL */
} beaconplan_config_t;

typedef struct {
    uint64_t sent, failed, refused; /* transmitted, transmit errors, never submitted */
} beaconplan_stats_t;

typedef struct beaconplan beaconplan_t;

/* NULL when tx is NULL, a value is not finite or memory is short. */
beaconplan_t *beaconplan_create(const beaconplan_config_t *cfg);

/* Plans and submits the beacons due: now_s is the stream time of the last sample
 * processed; live, stream time anchor_t_s happened at UTC anchor_unix_s (0: no clock yet,
 * nothing is planned). Returns the number of beacons submitted. */
int beaconplan_tick(beaconplan_t *p, double now_s, double anchor_t_s, double anchor_unix_s);

/* The transmitter's report of a beacon (r->beacon): counted and delivered as an event. */
void beaconplan_tx_result(beaconplan_t *p, const txsink_result_t *r);

void beaconplan_get_stats(beaconplan_t *p, beaconplan_stats_t *st);

/* NULL-safe. */
void beaconplan_destroy(beaconplan_t *p);

#endif
