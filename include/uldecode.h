/* uldecode: from the demodulator's soft bits to an uplink frame (spec rev 1.4 §3):
 * FT match, rank and container size, un-coding, CRC, fields, UL-AUTH. Licence: MIT.
 *
 *   soft[0 .. 12]           FT, matched by maximum likelihood (the correlation
 *                           Σ LLR·(±1)) against the 18 known FTs; rejected when the
 *                           sign decisions differ from it in more than max_ft_distance bits
 *   soft[13 .. 13+body-1]   container + CRC, coded for ranks 2 and 3 (§3.10); un-coded
 *                           per replica with ul_code_decode_soft, then CRC and fields
 *
 * Every rejected burst gets one reason (ULDEC_REJECT_*), which is a stats counter. A frame
 * whose FT was readable keeps its body's soft values (body_soft) so the message
 * assembler can combine it with its sibling replicas.
 *
 * Pure functions, no I/O, no allocation, thread-safe.
 */
#ifndef SIGFOX_ULDECODE_H
#define SIGFOX_ULDECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "demod.h"
#include "keys.h"
#include "rxresult.h"
#include "ulcode.h"
#include "ulframe.h"

/* Outcome of one burst, one stats counter each. */
typedef enum {
    ULDEC_OK = 0,        /* CRC valid and fields parsed */
    ULDEC_REJECT_FT,     /* FT too far from every known FT */
    ULDEC_REJECT_LENGTH, /* fewer soft values than the FT's frame needs */
    ULDEC_REJECT_CRC,    /* UL-CRC mismatch after un-coding */
    ULDEC_REJECT_FIELDS, /* CRC valid but impossible fields (LI vs size, control type) */
    ULDEC_NSTATUS
} uldecode_status_t;

/* "ok", "ft", "length", "crc", "fields". Never NULL. */
const char *uldecode_status_name(uldecode_status_t s);

typedef struct {
    uldecode_status_t status;
    ul_frame_t frame;                  /* rank/ft/ft_distance/control/container_len whenever the
                                          FT was readable; fields valid when status == ULDEC_OK */
    bool body_valid;                   /* body_soft holds body_bits values (FT readable, frame long
                                          enough): usable for replica combining */
    int corrected_bits;                /* bits uldecode_chase flipped (0: as received) */
    size_t body_bits;                  /* ul_body_bits(container_len) */
    float body_soft[UL_CODE_MAX_BITS]; /* LLRs of the coded body as received */
} uldecode_result_t;

/* Fills out[] with the sync words the demodulator should look for: the 19-bit preamble
 * followed by each known FT (Table 3-3: 5 application sizes × 3 ranks, control × 3), with
 * the body length of that frame type. Returns the number written (18), or 0 when cap is
 * too small. */
size_t uldecode_sync_words(demod_sync_t *out, size_t cap);

/* Decodes one frame from nsoft soft values that start at the first FT bit (LLR, positive
 * means 1). max_ft_distance: UL_FT_DEFAULT_MAX_DISTANCE (2) is what the FT set always
 * corrects. Fills out (always: out->status says why it failed). Returns 0 when the frame
 * is valid (CRC and fields), else a negative UL_ERR_* (UL_ERR_ARG for NULL pointers or a
 * negative distance). */
int uldecode_frame(const float *soft, size_t nsoft, int max_ft_distance, uldecode_result_t *out);

/* UL-AUTH status of a decoded frame (status ULDEC_OK): RX_AUTH_UNCHECKED without a key
 * store, RX_AUTH_UNKNOWN_DEVICE when the store has no key for its ID, else OK or BAD. */
rx_auth_t uldecode_auth(const ul_frame_t *frame, const keystore_t *keys);

/* CRC-aided correction of one frame (a Chase decoder, keyed frames only). A frame whose
 * FT was read but whose CRC failed (status ULDEC_REJECT_CRC, body_valid) is decoded again
 * with the cheapest test patterns flipped in its coded body: error events are one bit, or
 * two adjacent bits (one wrong coherent symbol becomes two wrong bits after differential
 * decoding), costed by Σ|LLR|; the ULDECODE_CHASE_EVENTS cheapest events, alone or two at
 * a time without a shared bit, cheapest first, at most max_trials of them (1 ..
 * ULDECODE_CHASE_MAX_TRIALS; less than 1: nothing is tried). A pattern is accepted only
 * when the CRC checks, the fields parse, the device is in keys and its UL-AUTH verifies:
 * garbage passes with probability ≤ T · 2⁻¹⁶ · K · 2⁻³² · 2⁻¹⁶ per frame for K devices and
 * T trials, a real frame is miscorrected with ≤ T · 2⁻³² (docs/receiver.md, "CRC-aided
 * correction").
 * On success io->status becomes ULDEC_OK, io->frame the corrected frame (rank, FT and FT
 * distance kept; body_soft still as received) and the return, also in io->corrected_bits,
 * is the number of bits flipped (1-4); 0 when no pattern passed or io was not such a frame (io unchanged);
 * UL_ERR_ARG for NULL arguments. No allocation, thread-safe. */
#define ULDECODE_CHASE_EVENTS 32
#define ULDECODE_CHASE_MAX_TRIALS (ULDECODE_CHASE_EVENTS * (ULDECODE_CHASE_EVENTS + 1) / 2)
#define ULDECODE_CHASE_DEFAULT_TRIALS 256
int uldecode_chase(uldecode_result_t *io, const keystore_t *keys, int max_trials);

/* Where the chase finds a device's key when it is not in a keystore_t (the network core's
 * registry): copies it to key and returns 1, 0 when the device is unknown (or cannot be
 * looked up). Called only for a pattern that passed the CRC and the fields. */
typedef int (*uldecode_key_fn)(uint32_t ep_id, uint8_t key[UL_KEY_BYTES], void *user);

/* uldecode_chase with keys from key_of(ep_id, key, user). UL_ERR_ARG when io or key_of is
 * NULL. */
int uldecode_chase_with(uldecode_result_t *io, uldecode_key_fn key_of, void *user,
                        int max_trials);

#endif
