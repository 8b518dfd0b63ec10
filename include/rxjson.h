/* rxjson: JSON events for the receiver's frames and messages (rx.h), built on the shared
 * field names of framejson.h. Licence: MIT.
 *
 * `sigfoxd --replay` prints these objects as JSON lines and the daemon publishes the same
 * objects on its ZeroMQ PUB socket, so both outputs are identical. docs/api.md is the
 * field reference. A frame event:
 *
 *   {"type": "frame", "format_version": 1, "ep_id": "FEDCBA98", "mc": 1650, "bf": false,
 *    "kind": "app", "payload": "...", "rank": 1, "ft": "006B", ..., "auth": "ok",
 *    "baud": 100, "freq_hz": 868130250.4, "drift_hz_s": -1.25, "rssi_dbfs": -62.31,
 *    "snr_db": 18.4, "sample_idx": 1234567, "t_start_s": 1.205625, "t_end_s": 2.965625,
 *    "time_utc": "2026-11-26T12:00:16.123456Z"}
 *
 * A message event has the message fields, "auth", "combined", "nframes", summary radio
 * fields (baud, carrier, drift and times of the first replica received, RSSI/SNR of the
 * strongest) and "replicas": one object per replica with its rank, FT, CRC result, auth,
 * "joint" and radio fields. Numbers are rounded: 0.1 Hz, 0.01 Hz/s, 0.01 dB, 1 µs.
 *
 * Pure functions (no I/O), thread-safe.
 */
#ifndef SIGFOX_RXJSON_H
#define SIGFOX_RXJSON_H

#include <stdbool.h>

#include <json-c/json.h>

#include "publisher.h"
#include "rx.h"

/* Every event of the API shares one format version. */
#define RXJSON_FORMAT_VERSION PUBLISHER_FORMAT_VERSION

/* How stream time maps to UTC and RSSI to dBm. */
typedef struct {
    /* UTC: an event at stream time t (s from the first input sample) happened at
     * anchor_unix_s + (t - anchor_t_s). anchor_unix_s 0: UTC unknown, no "time_utc". The
     * daemon re-anchors on every capture block so radio clock drift does not accumulate. */
    double anchor_t_s;
    double anchor_unix_s;
    /* When rssi_calibrated, events also carry "bs_rssi_dbm" = rssi_dbfs + rssi_offset_db. */
    bool rssi_calibrated;
    double rssi_offset_db;
} rxjson_ctx_t;

/* A JSON number printed with `decimals` digits after the point (json-c would print 17
 * significant digits: 868130250.40000004); decimals <= 0 gives an integer. NULL for a
 * non-finite value (json null) or no memory. New reference. */
json_object *rxjson_number(double v, int decimals);

/* Frame event. ctx may be NULL (no UTC, no calibration). Returns a new object (caller
 * puts it), or NULL when out of memory or given an invalid frame. */
json_object *rxjson_frame(const rx_frame_t *f, const rxjson_ctx_t *ctx);
/* Message event, with one "replicas" entry per received replica. */
json_object *rxjson_message(const rx_message_t *m, const rxjson_ctx_t *ctx);

#endif
