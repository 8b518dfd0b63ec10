/* evjson: the JSON of every API event, uplink and downlink, in one place. Licence: MIT.
 * docs/api.md is the field reference; the shared uplink field names are framejson.h's.
 *
 * `sigfoxd --replay` prints these objects as JSON lines and the daemon publishes the same
 * objects on its ZeroMQ PUB socket (through delivery.h), so both outputs are identical.
 * A frame event:
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
 * "joint" and radio fields. A "replay" event is the same object with type "replay" and
 * "last_mc". Downlink events ("downlink_*") carry the scheduler's fields
 * (docs/downlink-scheduler.md), "monarch_beacon" the beacon's. Numbers are rounded by
 * framejson_number(): 0.1 Hz, 0.01 Hz/s, 0.01 dB, 1 µs.
 *
 * Every event built here with a ctx whose station_id is set carries "station_id" right
 * after "format_version".
 *
 * Pure functions (no I/O, no clock), thread-safe.
 */
#ifndef SIGFOX_EVJSON_H
#define SIGFOX_EVJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "dlsched.h"
#include "rxresult.h"

/* Every event of the API carries publisher.h's PUBLISHER_FORMAT_VERSION (one number for
 * all events, whoever builds them). */
/* Longest station_id accepted (longer: the event is not built). */
#define EVJSON_STATION_ID_MAX 64

/* How stream time maps to UTC and RSSI to dBm, and who received. */
typedef struct {
    /* UTC: an event at stream time t (s from the first input sample) happened at
     * anchor_unix_s + (t - anchor_t_s). anchor_unix_s 0: UTC unknown, no "time_utc". The
     * daemon re-anchors on every capture block so radio clock drift does not accumulate. */
    double anchor_t_s;
    double anchor_unix_s;
    /* When rssi_calibrated, events also carry "bs_rssi_dbm" = rssi_dbfs + rssi_offset_db. */
    bool rssi_calibrated;
    double rssi_offset_db;
    /* NULL or "": no "station_id" field. Not copied: must outlive the call. */
    const char *station_id;
} evjson_ctx_t;

/* A new event object {"type": type, "format_version": 1[, "station_id": ...]}; ctx may be
 * NULL. NULL when out of memory or the station_id is too long. */
json_object *evjson_new(const char *type, const evjson_ctx_t *ctx);

/* Frame event. ctx may be NULL (no UTC, no calibration, no station). Returns a new object
 * (caller puts it), or NULL when out of memory or given an invalid frame. */
json_object *evjson_frame(const rx_frame_t *f, const evjson_ctx_t *ctx);
/* Message event, with one "replicas" entry per received replica. replay_last_mc >= 0
 * makes it a "replay" event carrying that "last_mc" (the anti-replay window's last
 * counter); -1: a "message" event. */
json_object *evjson_message(const rx_message_t *m, int replay_last_mc, const evjson_ctx_t *ctx);

/* A downlink scheduler event (docs/downlink-scheduler.md lists every field): type,
 * format_version, id, ep_id, mc, mode, status, reason, and per type ul_freq_hz, ul_t_end_s,
 * ul_rank, ul_derived, window_start_s, window_end_s, deadline_s, freq_hz, tx_freq_hz,
 * t_start_s, t_end_s, payload, dl_auth, bitstream, dl_phy_content, duty_used_s,
 * duty_budget_s, quota_used, quota_limit, file, conf_mc, t_conf_s, vdd_idle_mv, vdd_tx_mv,
 * temp_tenth_c, temp_c, rssi_dbm, conf_*; time_utc (of t_start_s, or of the confirmation
 * for ACK) and deadline_utc when ctx has a UTC anchor. ctx may be NULL. New reference or
 * NULL. */
json_object *evjson_downlink(const dlsched_event_t *ev, const evjson_ctx_t *ctx);

/* A Monarch beacon, as the "monarch_beacon" event reports it. */
typedef struct {
    uint32_t id;
    double t_start_s;   /* stream time */
    const char *status; /* "ok", "tx_error", "duty_cycle" */
    const char *reason; /* NULL or "": none */
    const char *file;   /* NULL or "": none (file sink only) */
    double freq_hz, tx_freq_hz, df1_hz, df2_hz;
} evjson_beacon_t;
json_object *evjson_beacon(const evjson_beacon_t *b, const evjson_ctx_t *ctx);

/* The scheduler's counters for the stats event: {"requests": .., "refused_by": {..}}.
 * New reference or NULL. */
json_object *evjson_downlink_stats(const dlsched_stats_t *s);

/* publisher_cmd_fn for the "downlink" command (user = the dlsched_t):
 *   {"cmd": "downlink", "ep_id": "FEDCBA98", "mc": 1650, "payload": "3031323334353637"}
 * ep_id 8 hex digits, mc 0..4095, payload exactly 16 hex digits or null (decline).
 * Success fills reply with id, ep_id, mc, payload, freq_hz, t_start_s, deadline_s;
 * malformed fields (counted as rejected answers) and dlsched_answer() refusals return -1
 * with the reason in err. */
int evjson_cmd_downlink(json_object *request, json_object *reply, void *user, char *err,
                        size_t err_len);

/* ---- soft frames ("softframe", docs/api.md) ------------------------------------------------
 *
 * A burst the receiver synchronised on (preamble and FT matched) whose frame it could not
 * decode, with the demodulator's soft values so that a network core can decode it jointly
 * with the same burst from other stations:
 *
 *   {"type": "softframe", "format_version": 1, "reason": "crc_bad", <radio fields of a frame
 *    event: baud, freq_hz, drift_hz_s, rssi_dbfs, snr_db, sample_idx, t_start_s, t_end_s,
 *    time_utc>, "symbol_rate": 100.002, "ft_rx": "094C", "ft": [{"ft": "094C", "rank": 1,
 *    "container_bytes": 20, "control": false, "distance": 0}, ...], "soft_scale": 0.5,
 *    "n_symbols": 189, "soft": "<base64>"}
 *
 * soft: n_symbols signed bytes (two's complement, -127..127), base64 (RFC 4648 with
 * padding); value i times soft_scale is the LLR log(P(1)/P(0)) of frame bit i counted from
 * the first FT bit. */

/* Longest softframe text evjson_softframe_parse_text() takes (a real one is under 1 kB). */
#define EVJSON_SOFTFRAME_MAX_TEXT 8192

/* Quantizes n (1..RX_SOFT_MAX) LLRs into q[i] = round(llr[i] / scale) within -127..127
 * (NaN: 0). scale is the power of two at or above the smaller of max|llr|/127 (nothing
 * clipped) and median|llr|/16 (the median 8 units or more: only values above ~16 medians
 * are clipped), within 2^-20..2^20. Returns scale, 0 for bad arguments. */
double evjson_soft_quantize(const float *llr, size_t n, int8_t *q);
/* The softframe event of sf. New reference, or NULL (out of memory, invalid sf). */
json_object *evjson_softframe(const rx_softframe_t *sf, const evjson_ctx_t *ctx);
/* The other way, for a network core: checks a softframe event from the network strictly
 * (every field present with its type and range, n_symbols 13..RX_SOFT_MAX, soft exactly
 * the base64 of n_symbols bytes none -128, soft_scale 2^-20..2^20, 1..3 FT hypotheses each
 * a known FT with its own rank and size) and fills out with the dequantized LLRs; each
 * hypothesis' score is recomputed from them. station_id and time_utc are not read.
 * Returns 0, or -1 with the reason in err (out is then zeroed or partly filled). */
int evjson_softframe_parse(json_object *obj, rx_softframe_t *out, char *err, size_t err_len);
/* The same from text[0..len) (at most EVJSON_SOFTFRAME_MAX_TEXT bytes, strict JSON:
 * jsonstrict.h). */
int evjson_softframe_parse_text(const char *text, size_t len, rx_softframe_t *out, char *err,
                                size_t err_len);

#endif
