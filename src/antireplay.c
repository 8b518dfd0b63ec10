/* antireplay: sequence-number window of seeds/000 §9.1.1. Licence: MIT. */
#include "antireplay.h"

unsigned antireplay_window(unsigned daily_messages)
{
    /* 3 x the subscription level, at least 20; more than 4094 would wrap onto last_mc. */
    unsigned long w = 3ul * daily_messages;
    if (w < ANTIREPLAY_MIN_WINDOW)
        w = ANTIREPLAY_MIN_WINDOW;
    if (w > UL_MC_MODULO - 2)
        w = UL_MC_MODULO - 2;
    return (unsigned)w;
}

bool antireplay_accept(uint16_t last_mc, uint16_t mc, unsigned daily_messages)
{
    /* Distance from last+1 going forward, modulo 4096. */
    unsigned d = ((unsigned)mc - (unsigned)last_mc - 1u) % UL_MC_MODULO;
    return d <= antireplay_window(daily_messages);
}

bool antireplay_update(antireplay_state_t *st, uint16_t mc, unsigned daily_messages)
{
    mc %= UL_MC_MODULO;
    if (st->have_last && !antireplay_accept(st->last_mc, mc, daily_messages))
        return false;
    st->have_last = true;
    st->last_mc = mc;
    return true;
}
