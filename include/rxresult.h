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

/* Where results go: called with pointers valid only during the call. */
typedef void (*rx_frame_cb)(const rx_frame_t *frame, void *user);
typedef void (*rx_message_cb)(const rx_message_t *msg, void *user);

#endif
