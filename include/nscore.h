/* nscore: the network core's message logic: frames from many stations -> one
 * authenticated, deduplicated, anti-replay-checked message, delivered once, plus the
 * downlink decision for BF=1. Licence: MIT. Transport-free: tools/sigfox-ns.c feeds it
 * the stations' batches and sends what it asks to send.
 *
 * Per frame (seeds/000 §7.1.1.1, §9.1.1), all frames of one nscore_ingest() call in ONE
 * database transaction:
 *   1. container (hex) + UL-CRC re-checked; frame type from `ft` (control or not);
 *   2. the device's key from the registry (cached registry.cache_s); UL-AUTH verified
 *      here (the station may have no keys): a bad AUTH is logged and counted, never stored;
 *   3. the claim: an upsert on ns_dedup (ep_id, mc) that moves first_t forward only when
 *      the stored claim is older than dedup_window_s; it returns msg_id NULL to exactly one
 *      writer (the winner), whatever the number of sigfox-ns instances on one PostgreSQL;
 *   4. the winner checks the anti-replay window with a conditional UPDATE of the device's
 *      (last_mc, last_t) — atomic too — and logs the message (ns_messages, status 'ok'
 *      or 'replay'); a message whose counter is behind the last by at most 64 and which
 *      was on air before the last accepted one is accepted late (as sigfoxd does);
 *   5. every authenticated replica adds a reception (ns_receptions: station, rank, snr,
 *      rssi, freq), idempotent, so a station's resent batch changes nothing.
 * After the commit: events `message` (first replica, with `stations`), `message_update`
 * (a later replica/station added metadata), `replay`, and the downlink events, delivered to
 * the hooks in priority order: BF=1 first, then first repetitions, then the rest.
 * Database lock order is (ep_id, mc) ascending within a transaction (no deadlocks between
 * instances); a conflict (NSDB_ERR_RETRY) reruns the transaction.
 *
 * Delivery hooks (nscore_add_hook): integrations (HTTP callbacks, MQTT, the PUB socket)
 * receive typed events, the JSON built once. NSCORE_HOOK_IN_TX hooks run inside the
 * transaction that accepts the message (write a retry-queue row there: it commits or rolls
 * back with the message); NSCORE_HOOK_COMMITTED hooks run after the commit.
 *
 * Frames that soft combining across stations recovered (nssoft.h) come in here too, as
 * one frame per member station, and are checked like any other.
 *
 * Threads: one thread calls nscore_ingest / nscore_tick / nscore_station_event;
 * nscore_downlink_answer and nscore_registry_changed may be called from any thread.
 */
#ifndef SIGFOX_NSCORE_H
#define SIGFOX_NSCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "nsdb.h"
#include "ulframe.h"

#define NSCORE_DEFAULT_DEDUP_WINDOW_S 30.0
#define NSCORE_MAX_BATCH_FRAMES 100 /* seeds/000 §7.1.1.3 */
#define NSCORE_MAX_INGEST_FRAMES 4096 /* frames per nscore_ingest() call (one transaction) */
#define NSCORE_LATE_MC 64           /* late acceptance: at most this far behind */

typedef struct {
    const char *instance;     /* this instance's name (logs, ns_messages.instance) */
    double dedup_window_s;    /* 0: 30 s */
    double registry_cache_s;  /* how long a device read from the registry is reused; 0: 5 s */
    double dl_collect_s;      /* wait for other stations' copies before choosing; 0: 0.5 s */
    double dl_answer_timeout_s; /* callback mode: wait this long for the answer; 0: 5 s */
    double dl_pending_timeout_s; /* a station's request without decision is declined; 0: 15 s */
    bool update_events;       /* publish message_update (default true via nscore_config_init) */
} nscore_config_t;

void nscore_config_init(nscore_config_t *cfg);

typedef enum {
    NSCORE_EV_MESSAGE = 0, /* a new accepted message (topic "message") */
    NSCORE_EV_UPDATE,      /* later replicas/stations (topic "message_update") */
    NSCORE_EV_REPLAY,      /* refused by the anti-replay window (topic "replay") */
    NSCORE_EV_DOWNLINK,    /* downlink_request / downlink_decided / downlink_* from stations */
} nscore_event_type_t;

typedef struct {
    nscore_event_type_t type;
    const char *topic;        /* "message", "message_update", "replay", "downlink_..." */
    json_object *json;        /* the event as published (read-only for hooks) */
    int64_t msg_id;           /* ns_messages.id (0 for station downlink events w/o message) */
    uint32_t ep_id;
    uint16_t mc;
    const ul_message_t *msg;  /* decoded message (MESSAGE / REPLAY), else NULL */
    const char *station_id;   /* first station (MESSAGE), the reporting one otherwise */
} nscore_event_t;

typedef enum {
    NSCORE_HOOK_IN_TX = 0,
    NSCORE_HOOK_COMMITTED = 1,
} nscore_hook_phase_t;

/* IN_TX hooks get the transaction's db and return 0, or < 0 to abort the transaction (it
 * is retried later); COMMITTED hooks get db NULL and their return value is ignored. */
typedef int (*nscore_hook_fn)(const nscore_event_t *ev, nsdb_t *db, void *user);

/* Sends a JSON message (ack, downlink) to a station connected to this instance. Returns 0,
 * or -1 when the station is not connected here. */
typedef int (*nscore_send_fn)(const char *station_id, const char *json, void *user);

typedef struct {
    uint64_t frames_in;             /* frames received */
    uint64_t frames_bad;            /* malformed (no container, bad hex, CRC mismatch, ...) */
    uint64_t frames_auth_bad;       /* UL-AUTH failed at the core */
    uint64_t frames_unknown_device; /* no such device in the registry */
    uint64_t frames_duplicate;      /* replicas / stations of a known message */
    uint64_t frames_resent;         /* identical reception seen before (resent batch) */
    uint64_t messages;              /* new messages delivered */
    uint64_t replays;               /* refused by the anti-replay window */
    uint64_t updates;               /* message_update events */
    uint64_t transactions, retries, db_errors;
    uint64_t dl_requests, dl_sent, dl_declined, dl_no_answer, dl_acks, dl_lost;
} nscore_stats_t;

typedef struct nscore nscore_t;

/* db: the connection of the ingest thread (not owned). Returns NULL with err. */
nscore_t *nscore_create(const nscore_config_t *cfg, nsdb_t *db, char *err, size_t err_len);
void nscore_destroy(nscore_t *c);

int nscore_add_hook(nscore_t *c, nscore_hook_phase_t phase, nscore_hook_fn fn, void *user);
void nscore_set_sender(nscore_t *c, nscore_send_fn fn, void *user);

/* One frame as a station reported it: the station_id the core authenticated (ZAP), never
 * the one in the JSON; frame: the `frame` object of the batch (borrowed); rx_s: when the
 * core received it (seconds since 1970, latency and fallback time). */
typedef struct {
    const char *station_id;
    json_object *frame;
    double rx_s;
} nscore_frame_t;

/* Processes n (<= NSCORE_MAX_INGEST_FRAMES) frames in one transaction (retrying
 * conflicts). Returns 0 when committed (the caller may then acknowledge the batches the
 * frames came from), or NSDB_ERR_* (nothing committed, nothing delivered: keep the batches
 * and call again later). */
int nscore_ingest(nscore_t *c, const nscore_frame_t *frames, size_t n);

/* The key of a registered device (registry cache, else the database), for the chase
 * decoder of soft combining (nssoft_config_t.key_of). Returns 1 with the key copied, 0
 * when the device is unknown or the database failed (logged). Same thread as
 * nscore_ingest. */
int nscore_device_key(nscore_t *c, uint32_t ep_id, uint8_t key[UL_KEY_BYTES]);

/* Downlink bookkeeping and timers: decisions due, answers, timeouts. Call every <= 100 ms.
 * Returns 0 or NSDB_ERR_* (retried on the next call). */
int nscore_tick(nscore_t *c, double now);

/* A station's downlink event (downlink_sent, downlink_ack, downlink_lost, ...): recorded in
 * ns_downlinks and published with station_id. Returns 0 or < 0 (logged). */
int nscore_station_event(nscore_t *c, const char *station_id, json_object *event);

/* The application's answer for a callback-mode request: payload (8 bytes) or NULL (no
 * downlink). Returns 0, or -1 when no such request is waiting (unknown, decided, late).
 * Thread-safe. */
int nscore_downlink_answer(nscore_t *c, uint32_t ep_id, uint16_t mc, const uint8_t *payload);

/* Drops the registry cache (a command changed a device). Thread-safe. */
void nscore_registry_changed(nscore_t *c);

void nscore_get_stats(nscore_t *c, nscore_stats_t *st);
/* Adds the counters to obj. Returns 0 or -1. */
int nscore_stats_json(const nscore_stats_t *st, json_object *obj);

/* Parses "2026-11-26T12:00:16.123456Z" into seconds since 1970. Returns 0 or -1. */
int nscore_parse_utc(const char *text, double *unix_s);

#endif
