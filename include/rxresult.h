/* rxresult: what the uplink receiver delivers, a decoded frame with its radio
 * measurements and a message merged from its replicas. Licence: MIT.
 *
 * These types sit below the pipeline (rx.h): the decoder (uldecode.h) fills an
 * rx_frame_t, the assembler (assembler.h) an rx_message_t, and both, like the event
 * builders above them (evjson.h, delivery.h), include this header rather than rx.h.
 */
#ifndef SIGFOX_RXRESULT_H
#define SIGFOX_RXRESULT_H

#include <stdbool.h>
#include <stdint.h>

#include "ulframe.h"

typedef enum {
    RX_AUTH_UNCHECKED = 0, /* no key store given, or CRC failed */
    RX_AUTH_OK,
    RX_AUTH_BAD,
    RX_AUTH_UNKNOWN_DEVICE,
} rx_auth_t;
const char *rx_auth_name(rx_auth_t a); /* "unchecked", "ok", "bad", "unknown-device" */

/* One demodulated burst that decoded to a frame (crc_ok) or at least to a readable FT. */
typedef struct {
    ul_frame_t frame; /* fields valid when frame.crc_ok */
    rx_auth_t auth;
    int baud;       /* 100 or 600 */
    double freq_hz; /* absolute carrier at the first preamble symbol */
    double drift_hz_s;
    double rssi_dbfs;    /* mean burst power, dB relative to full scale */
    double snr_db;       /* in the signal bandwidth (baud Hz) */
    uint64_t sample_idx; /* first preamble symbol, in input-stream samples */
    double t_start_s;    /* seconds from the first input sample */
    double t_end_s;
    bool joint; /* decoded only by combining replicas (message events) */
} rx_frame_t;

#define RX_MAX_REPLICAS 3

/* One message: the replicas of one ID+MC, merged. */
typedef struct {
    ul_message_t msg;
    rx_auth_t auth;
    int nframes;                        /* replicas received (readable FT) */
    rx_frame_t frames[RX_MAX_REPLICAS]; /* by arrival order */
    bool combined;                      /* recovered by soft combining (no replica alone) */
} rx_message_t;

/* Soft values of a frame: the FT bits and everything after them up to the longest frame
 * (13 FT bits + 22 bytes of container and CRC). */
#define RX_SOFT_MAX (UL_FT_BITS + (UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES) * 8)
/* FT hypotheses carried with them. */
#define RX_SOFT_FT_HYPS 3

/* A burst whose preamble and FT the demodulator matched but that gave no CRC-valid frame,
 * as the demodulator saw it: what a decoder elsewhere needs to decode it jointly with the
 * same burst heard by other stations (the "softframe" event, evjson.h). */
typedef struct {
    bool ft_readable; /* the FT was within 2 bits of a known one (CRC or fields bad); false:
                         unreadable, or the burst ended before the frame did */
    int baud;         /* 100 or 600 */
    double symbol_rate; /* estimated symbol rate, Hz */
    double freq_hz;     /* absolute carrier at the first preamble symbol */
    double drift_hz_s;
    double rssi_dbfs;
    double snr_db;       /* Eb/N0 as for a frame (rx_frame_t.snr_db) */
    uint64_t sample_idx; /* first preamble symbol, in input-stream samples */
    double t_start_s;    /* the same in seconds from the first input sample; soft[0] (the
                            first FT bit) was on air 19 symbols later */
    uint16_t ft_rx;      /* sign decisions of the 13 FT bits, first on air in bit 12 */
    size_t nhyp;         /* 1..RX_SOFT_FT_HYPS */
    ul_ft_hyp_t hyp[RX_SOFT_FT_HYPS]; /* the likeliest known FTs, best first */
    size_t nsoft;                     /* 13..RX_SOFT_MAX */
    float soft[RX_SOFT_MAX]; /* LLR log(P(1)/P(0)) of each frame bit from the first FT bit */
} rx_softframe_t;

/* Where results go: called with pointers valid only during the call. */
typedef void (*rx_frame_cb)(const rx_frame_t *frame, void *user);
typedef void (*rx_message_cb)(const rx_message_t *msg, void *user);

#endif
