/* callback: HTTP callbacks of the Sigfox backend (seeds/000 §7.1.3) with libcurl: types
 * DATA / SERVICE / ERROR, media simple (GET, POST, PUT: one request per event) and batch
 * (POST, one line per event, at most one request per second and callback), retries and
 * downlink answers. Licence: MIT.
 *
 * Delivery is "data, not timers": callback_submit() expands the templates at once and
 * stores the finished request in the retry queue, table app_callback_queue of an nsdb
 * database (nsdb.h: SQLite or PostgreSQL, normally the core's own: schema migration 3);
 * a row goes only after a 2xx answer. Rows belong to an instance name, so several
 * sigfox-ns instances sharing one PostgreSQL each send their own. The endpoint must answer 2xx within timeout_ms (10 s, §7.1.3);
 * otherwise the row is tried again retry_delay_ms (1 minute) later, at most max_tries times
 * (then dropped with an error log and a failure record). A restart re-reads the queue, so
 * nothing submitted is lost (at-least-once: an endpoint that received a request whose 2xx
 * answer was lost sees it again).
 *
 * Downlink by callback: an event with ack = true sent through a callback with
 * downlink = true is sent at once; the answer body
 *   {"<device id>": {"downlinkData": "<16 hex digits>"}}
 * gives the 8 downlink bytes, HTTP 204 or an empty body gives none. The answer goes to
 * cfg.on_downlink with a status: a late (after the event's deadline), malformed or
 * oversized answer is logged with its reason and reported without payload.
 *
 * Time: every schedule (retry, batch pacing, deadlines) reads cfg.now_ms, so tests inject
 * a clock; the HTTP timeout itself is real time (libcurl).
 * Threads: one owner thread calls submit/poll/destroy; not thread-safe otherwise.
 */
#ifndef SIGFOX_CALLBACK_H
#define SIGFOX_CALLBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appevent.h"
#include "cbtemplate.h"
#include "nsdb.h"

#define CALLBACK_MAX_HEADERS 16
#define CALLBACK_NAME_MAX 63
/* Largest downlink answer body accepted (bytes); anything longer is "oversized". */
#define CALLBACK_MAX_ANSWER 1024
/* Lines per batch request. */
#define CALLBACK_MAX_BATCH 500

typedef enum { CALLBACK_SIMPLE = 0, CALLBACK_BATCH = 1 } callback_media_t;

/* One callback of a device type. Strings are copied by callback_add(). */
typedef struct {
    const char *name;                 /* unique, 1..63 printable characters */
    const char *device_type;          /* "" or NULL: every device; else only this type */
    appevent_type_t type;             /* DATA, SERVICE or ERROR */
    callback_media_t media;
    const char *method;               /* simple: GET, POST or PUT (default POST); batch: POST */
    const char *url;                  /* template (escaped as URL); batch: no variables */
    const char *headers[CALLBACK_MAX_HEADERS]; /* "Name: value template" */
    size_t nheaders;
    const char *content_type;         /* default "application/json" */
    const char *body;                 /* simple: body template (not for GET); batch: line */
    bool downlink;                    /* DATA: this callback answers downlink requests */
} callback_def_t;

typedef enum {
    CALLBACK_DL_PAYLOAD = 0, /* payload holds the 8 bytes */
    CALLBACK_DL_NONE,        /* 204 / empty body: no downlink */
    CALLBACK_DL_LATE,        /* the answer came after the deadline */
    CALLBACK_DL_MALFORMED,   /* not the Sigfox answer format */
    CALLBACK_DL_OVERSIZED,   /* body longer than CALLBACK_MAX_ANSWER */
    CALLBACK_DL_FAILED,      /* no 2xx answer (timeout, refused, HTTP error) */
} callback_dl_status_t;

typedef struct {
    uint32_t ep_id;
    int mc;
    callback_dl_status_t status;
    uint8_t payload[8];
    char reason[160];        /* human-readable, for logs ("" when status is PAYLOAD/NONE) */
} callback_dl_answer_t;

typedef struct {
    const char *db_path;          /* the queue's database: an nsdb URL (sqlite:///path, a SQLite
                                   * path, postgresql://...); created/migrated if needed */
    const char *instance;         /* whose rows these are (NULL: ""): sigfox-ns's ns.instance */
    int timeout_ms;               /* default 10000 (§7.1.3) */
    int64_t retry_delay_ms;       /* default 60000 (§7.1.3) */
    int max_tries;                /* default 10 */
    int64_t batch_interval_ms;    /* default 1000 */
    int max_in_flight;            /* parallel requests, default 8 */
    int64_t (*now_ms)(void *ctx); /* clock (ms since the epoch); NULL = CLOCK_REALTIME */
    void *clock_ctx;
    /* downlink answers (may be NULL) */
    void (*on_downlink)(void *ctx, const callback_dl_answer_t *answer);
    void *downlink_ctx;
} callback_config_t;

typedef struct {
    uint64_t submitted;     /* requests (simple) / lines (batch) queued */
    uint64_t delivered;     /* rows removed after a 2xx */
    uint64_t attempts;      /* HTTP requests made */
    uint64_t failures;      /* attempts without 2xx */
    uint64_t dropped;       /* rows given up after max_tries */
    uint64_t queued;        /* rows in the queue now */
} callback_stats_t;

typedef struct callback callback_t;

/* Opens (creates) the queue. NULL with err on a bad config or database. */
callback_t *callback_create(const callback_config_t *cfg, char *err, size_t err_len);
void callback_destroy(callback_t *cb);

/* Adds a callback definition; templates are checked now. 0, or -1 with err (column of a
 * template error, unknown method, duplicate name, batch URL with variables). */
int callback_add(callback_t *cb, const callback_def_t *def, char *err, size_t err_len);
/* Removes a definition by name (queued rows stay and are still delivered). 0 or -1. */
int callback_remove(callback_t *cb, const char *name);
size_t callback_count(const callback_t *cb);

/* Queues ev for every matching callback (type and device type). dl_deadline_ms: the
 * instant (now_ms clock) after which a downlink answer is late (0 = none). Returns the
 * number of requests queued, or -1 on a database error. */
int callback_submit(callback_t *cb, const appevent_t *ev, int64_t dl_deadline_ms);
/* The same, the rows written through db: a connection to the queue's database inside a
 * transaction the caller commits or rolls back (nsapps: the core's accepting transaction),
 * so a request exists exactly when the message does. The stats count it at once. */
int callback_submit_tx(callback_t *cb, nsdb_t *db, const appevent_t *ev, int64_t dl_deadline_ms);

/* Sends what is due, waits at most wait_ms (real time) for transfers and handles the
 * answers. Returns the number of requests still in flight, or -1 on a database error. */
int callback_poll(callback_t *cb, int wait_ms);

/* Earliest instant (now_ms clock) something in the queue is due; INT64_MAX when empty. */
int64_t callback_next_due_ms(callback_t *cb);

void callback_get_stats(callback_t *cb, callback_stats_t *st);

/* The last failures (newest first, at most max) as a JSON array of
 * {"time_ms","callback","device","tries","error"}; the caller owns it. */
json_object *callback_failures_json(callback_t *cb, size_t max);
/* The same read from any connection to the queue's database (the REST API's). */
json_object *callback_failures_json_db(nsdb_t *db, size_t max);

/* Parses a downlink answer (HTTP status, body of len bytes) for ep_id; fills a (status,
 * payload, reason). Exposed for tests and for the MQTT downlink topic. */
void callback_parse_answer(long http_status, const char *body, size_t len, uint32_t ep_id,
                           callback_dl_answer_t *a);

const char *callback_dl_status_name(callback_dl_status_t s);

#endif
