/* antireplay: the network's sequence-number window (seeds/000 §9.1.1). Licence: MIT.
 * A message counter is accepted when it lies in (last+1) ... (last+1+W), modulo 4096,
 * with W = max(20, 3 x daily messages). Pure function. */
#ifndef SIGFOX_ANTIREPLAY_H
#define SIGFOX_ANTIREPLAY_H

#include <stdbool.h>
#include <stdint.h>

#define UL_MC_MODULO 4096

/* Window size W for a device that sends daily_messages per day. */
unsigned antireplay_window(unsigned daily_messages);
/* True when mc is a new message after last_mc. */
bool antireplay_accept(uint16_t last_mc, uint16_t mc, unsigned daily_messages);

#endif
