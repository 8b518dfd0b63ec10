/* simpayload: payload classes of simulated uplink traffic, as real devices send them.
 * Licence: MIT.
 *
 * Random bytes are the easy case for a receiver. Real devices send zero-padded records,
 * 0xFF for "no value", bit patterns, counters that change one byte between messages,
 * 1-bit messages and control messages (§5): on air, long runs of equal bits are a pure
 * carrier (D-BPSK: no phase reversal) and alternating bits two lines. The synthesizer
 * (synth.h), sigfox-bench and the receiver tests draw their traffic from these classes
 * and report losses per class.
 *
 * Pure functions, no I/O, thread-safe.
 */
#ifndef SIGFOX_SIMPAYLOAD_H
#define SIGFOX_SIMPAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "ulframe.h"

typedef enum {
    SIM_PAYLOAD_RANDOM = 0,  /* random bytes */
    SIM_PAYLOAD_ZEROS,       /* all 0x00 */
    SIM_PAYLOAD_ONES,        /* all 0xFF */
    SIM_PAYLOAD_ALTERNATING, /* all 0x55 or all 0xAA */
    SIM_PAYLOAD_COUNTER,     /* a fixed record per device (from its ID) with one byte
                                changing: the low byte of the MC */
    SIM_PAYLOAD_ONE_BIT,     /* 1-bit message (Table 3-1), bit value from the draw */
    SIM_PAYLOAD_CONTROL,     /* keep-alive or DL confirmation (§5), fields from the draw */
    SIM_PAYLOAD_CLASSES
} sim_payload_class_t;

/* Classes whose payload size is chosen by the caller (0..12 bytes). */
#define SIM_PAYLOAD_SIZED(cls) ((cls) <= SIM_PAYLOAD_COUNTER)

/* "random", "zeros", "ones", "alternating", "counter", "one-bit", "control"; "?" else. */
const char *sim_payload_class_name(int cls);
/* The class of a name above, or -1. */
int sim_payload_class_parse(const char *name);

/* Sets the payload of m (kind, one_bit, payload_bit, payload, payload_len, control) for
 * class cls; ep_id and mc must be set already (COUNTER uses them). len: payload bytes of
 * the sized classes (0..12), ignored by the others. draw: 64 random bits that choose
 * everything else (random bytes, 0x55 vs 0xAA, bit value, control kind and fields).
 * BF is left as it is, except that control messages get BF = 0. Returns 0, or -1 for a
 * class or length out of range (m unchanged). */
int sim_payload_fill(ul_message_t *m, int cls, size_t len, uint64_t draw);

/* The class of a message, from its fields: ONE_BIT, CONTROL, else the sized class its
 * bytes are (ZEROS / ONES / ALTERNATING when every byte is that pattern, COUNTER when they
 * are the record of its ep_id and mc, else RANDOM; an empty payload reads as RANDOM). */
int sim_payload_class_of(const ul_message_t *m);

#endif
