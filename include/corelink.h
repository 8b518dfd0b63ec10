/* corelink: the station's link to the network core sigfox-ns (docs/ns.md "Station side",
 * wire protocol in docs/ns.md "Wire protocol"). Licence: MIT.
 *
 *   DSP thread --corelink_push_frame()--> bounded queue --> link thread
 *       link thread: batch (<= 100 frames or 100 ms after the oldest, seeds/000 §7.1.1.3)
 *                    -> spool (fsync'd, spool.h) -> ZeroMQ DEALER (CURVE client) -> core
 *       core -> ack N     : batch N deleted from the spool
 *       core -> downlink  : on_downlink() (the daemon answers its downlink scheduler)
 *
 * The station connects OUT (no inbound port: stations sit behind NAT) to core.endpoint, a
 * CURVE server whose public key it knows, with its own key pair; the core's ZAP handler
 * accepts only listed station keys. An unknown key shows here as a refused handshake:
 * logged (at most once a minute) and counted in auth_failures; ZeroMQ keeps retrying.
 *
 * Connection state comes from a ZeroMQ socket monitor: on every completed handshake the
 * link sends `hello` and then every unacknowledged batch from the oldest, in seq order (so
 * after a reconnect or a station restart nothing is lost; a resent batch is harmless, the
 * core deduplicates). At most `window` batches are in flight. When the core is silent for
 * timeout_s while a batch or a ping waits for its answer, the socket is closed and opened
 * again (next endpoint when several are configured: a fail-over list, tried in order).
 * `ping` every ping_s when idle.
 *
 * Threads: corelink_push_frame/_event/_softframe and corelink_get_stats may be called from
 * any thread and never block on the network (a full queue drops and counts). on_downlink
 * runs on the link thread.
 */
#ifndef SIGFOX_CORELINK_H
#define SIGFOX_CORELINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "ulframe.h"

#define CORELINK_KEY_Z85_LEN 40       /* a CURVE key as Z85 text */
#define CORELINK_MAX_ENDPOINTS 8
#define CORELINK_BATCH_MAX_FRAMES 100 /* seeds/000 §7.1.1.3 */
#define CORELINK_BATCH_INTERVAL_MS 100
#define CORELINK_MAX_FRAME_JSON 16384 /* a frame event is < 2 KiB; larger is a bug */
#define CORELINK_MAX_MESSAGE (1u << 20) /* docs/ns.md "Wire protocol": max body 1 MiB */

enum corelink_error {
    CORELINK_OK = 0,
    CORELINK_ERR_ARG = -1,
    CORELINK_ERR_FULL = -2,  /* queue full: the frame was dropped (counted) */
    CORELINK_ERR_NOMEM = -3,
};
const char *corelink_strerror(int code);

/* A downlink answer from the core (docs/ns.md "Wire protocol", `downlink`). */
typedef struct {
    uint32_t ep_id;
    uint16_t mc;
    bool has_payload; /* false: decline (payload null) */
    uint8_t payload[8];
    bool has_dl_auth; /* the core computed DL-AUTH (the station may have no key) */
    uint8_t dl_auth[2];
} corelink_downlink_t;

/* Returns 0, or -1 with the reason in err (logged and counted by the link). */
typedef int (*corelink_downlink_fn)(const corelink_downlink_t *dl, void *user, char *err,
                                    size_t err_len);

typedef struct {
    const char *const *endpoints; /* "tcp://core.example.net:5590", ... (fail-over order) */
    size_t nendpoints;            /* 1 .. CORELINK_MAX_ENDPOINTS */
    const char *core_public_key;  /* Z85, 40 characters */
    const char *secret_key;       /* the station's secret key, Z85 (public derived) */
    const char *station_id;       /* required: 1..63 letters, digits, '-', '_', '.' */
    bool has_position;
    double latitude, longitude, altitude_m;
    bool tx;                      /* the station can transmit downlinks */
    const char *version;          /* software version for hello */
    const char *spool_dir;        /* required */
    size_t spool_max_frames;      /* 0: SPOOL_DEFAULT_MAX_FRAMES */
    size_t queue_frames;          /* DSP -> link queue; 0: 20000 */
    int batch_max_frames;         /* 0: 100 (max 100) */
    int batch_interval_ms;        /* 0: 100 */
    int window;                   /* batches in flight; 0: 16 */
    double timeout_s;             /* 0: 30 s */
    double ping_s;                /* 0: 10 s */
    double shutdown_wait_s;       /* corelink_destroy waits this long for acks; 0: none */
    corelink_downlink_fn on_downlink; /* may be NULL: downlinks are refused and counted */
    void *user;
} corelink_config_t;

typedef struct {
    bool connected;
    char endpoint[256];        /* current endpoint */
    uint64_t frames_in;        /* frames handed to the link */
    uint64_t frames_dropped;   /* queue full (the DSP side never waits) */
    uint64_t frames_rejected;  /* unusable (too large, not an object) */
    uint64_t batches;          /* batches built and spooled */
    uint64_t batches_sent;     /* sends, resends included */
    uint64_t batches_resent;
    uint64_t acks;             /* acks that deleted a batch */
    uint64_t acks_unknown;     /* acks for nothing spooled (duplicate or late) */
    uint64_t connects, disconnects, reconnects_timeout;
    uint64_t auth_failures;    /* handshakes refused: the core does not know our key */
    uint64_t core_errors;      /* "error" replies */
    uint64_t bad_messages;     /* unparsable or unknown messages from the core */
    uint64_t downlinks, downlinks_failed;
    uint64_t events_sent, events_dropped;
    uint64_t spool_failures;   /* batches that could not be spooled (lost, logged) */
    /* from the spool */
    size_t spool_batches, spool_frames;
    uint64_t spool_frames_dropped, spool_files_corrupt;
    uint64_t next_seq;
} corelink_stats_t;

typedef struct corelink corelink_t;

/* Validates the configuration and keys, opens the spool, starts the link thread (which
 * connects in the background). Returns NULL with the reason in err. */
corelink_t *corelink_create(const corelink_config_t *cfg, char *err, size_t err_len);

/* Queues one frame event for the core (docs/ns.md "Wire protocol", a `batch` frame): the
 * event object as published (not modified), plus "container" (hex of f->container,
 * LI..UL-AUTH), "tx" when BF=1 and "station_id" when the event lacks it. Frames whose CRC
 * failed are not sent (returns CORELINK_ERR_ARG). Thread-safe, never blocks. */
int corelink_push_frame(corelink_t *l, json_object *event, const ul_frame_t *f);
/* Queues a station event ({"type":"event","event":{...}}); sent when connected, not
 * spooled; dropped and counted when the queue is full. */
int corelink_push_event(corelink_t *l, json_object *event);
/* Queues a softframe event (evjson_softframe, {"type":"softframe","softframe":{...}}) for
 * the core's soft combining across stations (nssoft.h): like events, sent when connected,
 * not spooled (a soft frame is worth something only within seconds of its burst). */
int corelink_push_softframe(corelink_t *l, json_object *softframe);

void corelink_get_stats(corelink_t *l, corelink_stats_t *out);
/* The stats as a JSON object for the daemon's stats event. New reference or NULL. */
json_object *corelink_stats_json(corelink_t *l);

/* Reads a CURVE secret key file: a line holding the 40-character Z85 secret key, alone or
 * after "secret" / "secret_key" / "secret-key" and ':' or '='; '#' lines are comments.
 * Writes the key (41 bytes with NUL) into out. Warns when the file is readable by others.
 * Returns 0 or -1 with the reason in err. */
int corelink_read_secret_key(const char *path, char out[CORELINK_KEY_Z85_LEN + 1], char *err,
                             size_t err_len);

/* Stops the thread: frames still queued are batched into the spool, then it waits up to
 * shutdown_wait_s for the core's acks, closes the socket and frees. Unacknowledged
 * batches stay in the spool for the next start. NULL-safe. */
void corelink_destroy(corelink_t *l);

#endif
