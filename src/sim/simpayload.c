/* simpayload: payload classes of simulated uplink traffic. Licence: MIT. */
#include "simpayload.h"

#include <stdbool.h>
#include <string.h>

#include "prng.h"

static const char *const names[SIM_PAYLOAD_CLASSES] = {
    "random", "zeros", "ones", "alternating", "counter", "one-bit", "control"};

const char *sim_payload_class_name(int cls)
{
    return cls >= 0 && cls < SIM_PAYLOAD_CLASSES ? names[cls] : "?";
}

int sim_payload_class_parse(const char *name)
{
    for (int i = 0; name && i < SIM_PAYLOAD_CLASSES; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

int sim_payload_fill(ul_message_t *m, int cls, size_t len, uint64_t draw)
{
    if (!m || cls < 0 || cls >= SIM_PAYLOAD_CLASSES ||
        (SIM_PAYLOAD_SIZED(cls) && len > UL_MAX_PAYLOAD_BYTES))
        return -1;
    uint64_t x = draw;
    m->kind = UL_KIND_APP;
    m->one_bit = false;
    m->payload_bit = 0;
    m->payload_len = 0;
    memset(m->payload, 0, sizeof m->payload);
    memset(&m->control, 0, sizeof m->control);
    switch (cls) {
    case SIM_PAYLOAD_RANDOM:
        for (size_t i = 0; i < len; i++)
            m->payload[i] = (uint8_t)(prng_splitmix64(&x) >> 56);
        break;
    case SIM_PAYLOAD_ZEROS:
        break;
    case SIM_PAYLOAD_ONES:
        memset(m->payload, 0xFF, len);
        break;
    case SIM_PAYLOAD_ALTERNATING:
        memset(m->payload, prng_splitmix64(&x) >> 63 ? 0xAA : 0x55, len);
        break;
    case SIM_PAYLOAD_COUNTER: {
        /* the device's record: fixed bytes from its ID, mostly small values (sensor
           readings, zero padding), and one byte that counts */
        uint64_t d = 0x5EED0000ull ^ m->ep_id;
        for (size_t i = 0; i < len; i++) {
            uint64_t v = prng_splitmix64(&d);
            m->payload[i] = (uint8_t)(v >> 60 < 8 ? 0 : (v >> 56) & 0x3F);
        }
        if (len)
            m->payload[len - 1] = (uint8_t)m->mc;
        break;
    }
    case SIM_PAYLOAD_ONE_BIT:
        m->one_bit = true;
        m->payload_bit = (uint8_t)(prng_splitmix64(&x) >> 63);
        break;
    case SIM_PAYLOAD_CONTROL: {
        uint64_t v = prng_splitmix64(&x);
        m->kind = v >> 63 ? UL_KIND_DL_CONFIRMATION : UL_KIND_KEEPALIVE;
        m->bf = false;
        m->control.vdd_idle_mv = (uint16_t)(2800 + (v & 0x3FF) % 800);
        m->control.vdd_tx_mv = (uint16_t)(2500 + ((v >> 10) & 0x3FF) % 900);
        m->control.temp_tenth_c = (int16_t)(-200 + (int)(((v >> 20) & 0x3FF) % 800));
        if (m->kind == UL_KIND_DL_CONFIRMATION)
            m->control.rssi_dbm = (int16_t)(-127 + (int)(((v >> 30) & 0xFF) % 68));
        m->payload_len = m->kind == UL_KIND_KEEPALIVE ? UL_KEEPALIVE_PAYLOAD_BYTES
                                                      : UL_DL_CONFIRMATION_PAYLOAD_BYTES;
        break;
    }
    default:
        return -1;
    }
    if (SIM_PAYLOAD_SIZED(cls))
        m->payload_len = len;
    return 0;
}

int sim_payload_class_of(const ul_message_t *m)
{
    if (m->one_bit)
        return SIM_PAYLOAD_ONE_BIT;
    if (m->kind != UL_KIND_APP)
        return SIM_PAYLOAD_CONTROL;
    if (m->payload_len == 0 || m->payload_len > UL_MAX_PAYLOAD_BYTES)
        return SIM_PAYLOAD_RANDOM;
    uint8_t b0 = m->payload[0];
    bool same = true;
    for (size_t i = 1; i < m->payload_len; i++)
        same = same && m->payload[i] == b0;
    if (!same) {
        ul_message_t c = *m;
        sim_payload_fill(&c, SIM_PAYLOAD_COUNTER, m->payload_len, 0);
        return memcmp(c.payload, m->payload, m->payload_len) ? SIM_PAYLOAD_RANDOM
                                                             : SIM_PAYLOAD_COUNTER;
    }
    if (b0 == 0x00)
        return SIM_PAYLOAD_ZEROS;
    if (b0 == 0xFF)
        return SIM_PAYLOAD_ONES;
    if (b0 == 0x55 || b0 == 0xAA)
        return SIM_PAYLOAD_ALTERNATING;
    return SIM_PAYLOAD_RANDOM;
}
