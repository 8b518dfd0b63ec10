/* antireplay: the network's sequence-number window (seeds/000 §9.1.1). Licence: MIT.
 *
 * A message counter is accepted when it lies in (last+1) ... (last+1+W), both ends
 * included, modulo 4096 (MC is 12 bits, spec §3.6), with W = max(20, 3 x daily messages).
 * Example (§9.1.1): last 5, 140 messages/day -> 6 ... 426; 1 message/day -> 6 ... 26.
 * W is capped at 4094 so that the last counter itself is never accepted again.
 * Pure functions; the state struct is the caller's (one per device). */
#ifndef SIGFOX_ANTIREPLAY_H
#define SIGFOX_ANTIREPLAY_H

#include <stdbool.h>
#include <stdint.h>

#define UL_MC_MODULO 4096
#define ANTIREPLAY_MIN_WINDOW 20

/* Window size W for a device that sends daily_messages per day. */
unsigned antireplay_window(unsigned daily_messages);
/* True when mc is a new message after last_mc (mc and last_mc taken modulo 4096). */
bool antireplay_accept(uint16_t last_mc, uint16_t mc, unsigned daily_messages);

/* Per-device state: the last validated counter, if any. Zero-initialise to start. */
typedef struct {
    bool have_last;
    uint16_t last_mc;
} antireplay_state_t;

/* Checks mc against the state; on acceptance records it as the last validated counter.
 * The first counter seen for a device is accepted (nothing to compare with).
 * Returns true when accepted. st must not be NULL. */
bool antireplay_update(antireplay_state_t *st, uint16_t mc, unsigned daily_messages);

#endif
