/* delivery: from the receiver's results and the downlink's reports to every consumer of
 * events, in one place. Licence: MIT. docs/api.md is the reference of the events.
 *
 *   rx_frame_t ---------------------------------> "frame" ----------+
 *   rx_message_t -> anti-replay verdict (devstate.h) -> "message"   |   event JSON built
 *                                                   or "replay" ----+-> once (evjson.h) ->
 *   dlsched_event_t -----------------------------> "downlink_*" ----+   every sink whose
 *   Monarch beacon report -----------------------> "monarch_beacon" +   classes match
 *   rx_softframe_t (delivery_softframe) ---------> "softframe" -----+
 *   delivery_log() (warnings and worse) ---------> "log" -----------+
 *   delivery_emit() (the daemon's counters) -----> "stats" ---------+
 *
 * Sinks: the publisher (ZeroMQ PUB, delivery_add_publisher), JSON lines on a stream (the
 * replay's stdout, delivery_add_lines) and any callback (delivery_add_sink: the station ->
 * core link, the network core), each registered for classes of events. A sink receives
 * the topic, the one JSON object (read-only: sinks must not change it) and, for uplinks and
 * downlinks, the struct it was built from.
 *
 * Uplink rules (docs/sigfoxd.md "Anti-replay"):
 *  - a frame or message whose auth is not "ok" is counted as suppressed and goes only to
 *    DELIVERY_UNAUTHENTICATED sinks, unless publish_unauthenticated;
 *  - only authenticated messages go through anti-replay (an unauthenticated counter proves
 *    nothing and must not move the window); a refused counter makes the event a "replay"
 *    (with "last_mc") plus a warning log, never a "message";
 *  - the downlink scheduler (delivery_set_downlink) sees every frame before the frame
 *    event (confirmations cannot wait), and, after the message event (so an application
 *    sees the message before the downlink_request it causes), only messages that are new or
 *    late: a replay must not burn quota or duty cycle.
 *
 * Log lines ("Message received", "Frame decoded", "Replayed message refused") are written
 * from the structs, at info/debug/warning level.
 *
 * Durable anti-replay (hold_until_durable, issue 15): between delivery_hold() and
 * delivery_release() the events delivered on that thread (one receiver block) wait; the
 * release writes the anti-replay state once when the block changed it (one fsync for all
 * its messages), then hands the events to the sinks in their order. A published message's
 * counter is therefore always on disk: after a crash the same frame is refused as a
 * replay, never accepted twice. When the write fails the events go out anyway (logged):
 * decoding must not stop for a full disk. Events from other threads go out at once.
 *
 * Threads: every function may be called from any thread. Sinks run one event at a time
 * (under the delivery's lock), on the thread that delivered the event; a sink must not
 * call delivery_* functions other than delivery_context(). The on-air time of a message for
 * anti-replay is UTC from the anchor (delivery_set_anchor) when known, else the stream time.
 */
#ifndef SIGFOX_DELIVERY_H
#define SIGFOX_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "devstate.h"
#include "dlsched.h"
#include "evjson.h"
#include "log.h"
#include "publisher.h"
#include "rxresult.h"

/* Classes of events a sink subscribes to. */
enum {
    DELIVERY_UPLINK = 1u << 0,   /* frame, message, replay */
    DELIVERY_DOWNLINK = 1u << 1, /* downlink_*, monarch_beacon */
    DELIVERY_STATUS = 1u << 2,   /* stats, log */
    DELIVERY_SOFT = 1u << 4,     /* softframe (only when the daemon is asked for them) */
    DELIVERY_ALL = DELIVERY_UPLINK | DELIVERY_DOWNLINK | DELIVERY_STATUS | DELIVERY_SOFT,
    /* With DELIVERY_UPLINK: also the frames and messages suppressed for the other sinks
     * (auth not "ok"), e.g. for a network core that checks UL-AUTH itself. Such events
     * carry suppressed = true. */
    DELIVERY_UNAUTHENTICATED = 1u << 3,
};

/* verdict of an uplink message event that did not go through anti-replay (not
 * authenticated, or no state configured). */
#define DELIVERY_UNCHECKED (-100)

typedef struct {
    const char *topic;       /* "frame", "message", "replay", "downlink_request", ..., "stats" */
    unsigned cls;            /* one DELIVERY_* class */
    json_object *json;       /* the event; read-only for sinks, valid during the call */
    const rx_frame_t *frame; /* "frame" events, else NULL */
    const rx_message_t *message;     /* "message" and "replay" events, else NULL */
    int verdict;                     /* message events: devstate_verdict_t, a DEVSTATE_ERR_*
                                        code, or DELIVERY_UNCHECKED */
    const dlsched_event_t *downlink; /* "downlink_*" events, else NULL */
    bool suppressed; /* not authenticated: only DELIVERY_UNAUTHENTICATED sinks see it */
} delivery_event_t;

typedef void (*delivery_sink_fn)(const delivery_event_t *ev, void *user);

typedef struct {
    /* Anti-replay state; NULL: no check (every message is "message", verdict UNCHECKED). */
    devstate_t *state;
    /* Messages per day allowed for a device (sets its anti-replay window); NULL: 140. */
    unsigned (*daily_messages)(uint32_t ep_id, void *user);
    void *daily_user;
    /* Write the state after every checked message (instead of on the caller's timer). */
    bool flush_each_message;
    /* Hold events between delivery_hold() and delivery_release() until the state is on
     * disk (set when the state has a directory). */
    bool hold_until_durable;
    /* Also deliver frames and messages whose auth is not "ok". */
    bool publish_unauthenticated;
    /* A network core answers the downlinks and keeps the anti-replay state (docs/ns.md
     * "Station side"): every message whose UL-AUTH did not fail here goes to the
     * scheduler, whatever the local verdict. */
    bool remote_answers;
    /* RSSI calibration for "bs_rssi_dbm" (evjson.h). */
    bool rssi_calibrated;
    double rssi_offset_db;
    /* NULL or "": events carry no "station_id"; else copied, at most EVJSON_STATION_ID_MAX
     * characters. */
    const char *station_id;
    /* softframe events per second of stream time at most (a token bucket holding one
     * second's worth, at least one); the rest are counted in softframes_dropped. 0: no
     * limit. */
    double soft_max_per_s;
} delivery_config_t;

typedef struct {
    uint64_t frames_published;             /* frame events delivered */
    uint64_t messages_published;           /* message events delivered (replays not included) */
    uint64_t replays;                      /* replay events */
    uint64_t events_suppressed;            /* unauthenticated frames and messages not delivered */
    uint64_t build_failures;               /* events that could not be built (out of memory) */
    uint64_t softframes_published;         /* softframe events delivered */
    uint64_t softframes_dropped;           /* softframe events over soft_max_per_s */
    uint64_t state_syncs;                  /* state writes by delivery_release() */
    double state_sync_s, state_sync_max_s; /* their total and longest time */
} delivery_stats_t;

typedef struct delivery delivery_t;

/* Returns the handle, or NULL with the reason in err (bad station_id, no memory). */
delivery_t *delivery_create(const delivery_config_t *cfg, char *err, size_t err_len);

/* Registers a sink for the classes (DELIVERY_* bits). Returns 0, or -1 (NULL arguments, no
 * class, no memory). Sinks are called in the order they were added. */
int delivery_add_sink(delivery_t *d, unsigned classes, delivery_sink_fn fn, void *user);
/* A sink that publishes every event as [topic, JSON] (publisher_publish_json). */
int delivery_add_publisher(delivery_t *d, publisher_t *pub, unsigned classes);
/* A sink that writes each event as one JSON line to f and flushes it; after a failed write
 * (closed pipe, full disk) it writes nothing more and delivery_output_failed() is true. */
int delivery_add_lines(delivery_t *d, FILE *f, unsigned classes);
bool delivery_output_failed(delivery_t *d);

/* The downlink scheduler fed with frames and fresh messages; NULL: none. */
void delivery_set_downlink(delivery_t *d, dlsched_t *sched);
/* Stream time t_s happened at unix_s (0: UTC unknown, as in a replay). */
void delivery_set_anchor(delivery_t *d, double t_s, double unix_s);
/* A copy of the event context (anchor, calibration, station) for events built elsewhere. */
void delivery_context(delivery_t *d, evjson_ctx_t *ctx);

/* Start of a receiver block on this thread: its events wait for delivery_release() when
 * hold_until_durable (else nothing happens). */
void delivery_hold(delivery_t *d);
/* End of the block: writes the state if the block changed it, then delivers the events
 * held, in order. */
void delivery_release(delivery_t *d);

/* The receiver's callbacks (rx_frame_cb / rx_message_cb with user = the delivery_t). */
void delivery_frame(const rx_frame_t *f, void *d);
void delivery_message(const rx_message_t *m, void *d);
/* The soft values of a burst the receiver synchronised on but could not decode
 * (rx_burst_t.soft): a "softframe" event (class DELIVERY_SOFT), within soft_max_per_s. */
void delivery_softframe(delivery_t *d, const rx_softframe_t *sf);
/* A downlink scheduler event (dlsched_event_cb shape without its return value). */
void delivery_downlink(delivery_t *d, const dlsched_event_t *ev);
/* A Monarch beacon report (the context's fields are filled in here). */
void delivery_beacon(delivery_t *d, const evjson_beacon_t *b);
/* Logs the line and, for warnings and worse, delivers a "log" event (class STATUS).
 * d may be NULL: the line only. */
void delivery_log(delivery_t *d, log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Delivers an event built by the caller (obj is not consumed). NULL obj: counted as a
 * build failure and logged. */
void delivery_emit(delivery_t *d, const char *topic, unsigned cls, json_object *obj);

void delivery_get_stats(delivery_t *d, delivery_stats_t *st);

/* NULL-safe. */
void delivery_destroy(delivery_t *d);

#endif
