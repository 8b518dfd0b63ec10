/* publisher: sigfoxd's ZeroMQ API, an event PUB socket and a command REP socket.
 * Licence: MIT. docs/api.md is the reference of every event and command.
 *
 * Events: multipart [topic, JSON], topic "frame", "message", "replay", "stats", "log",
 * "softframe" (with publish_soft) and the downlink scheduler's "downlink_*" events; the JSON repeats the topic as "type" and carries
 * "format_version" (PUBLISHER_FORMAT_VERSION). Subscribers filter by topic prefix.
 *
 * Commands: one JSON object per request, {"cmd": "stats", ...}; exactly one JSON reply per
 * request, {"ok": true, "cmd": "stats", ...} or {"ok": false, "cmd": ..., "error": "..."}.
 * Verbs are registered by the application (publisher_add_command); malformed JSON, a
 * missing "cmd", an unknown verb or a multipart request get an error reply, so a client is
 * never left waiting and the REP socket never gets stuck.
 *
 * Threads: publisher_publish*() may be called from any thread (the PUB socket is guarded
 * by a mutex, which is also the memory barrier ZeroMQ asks for when a socket changes
 * threads). publisher_poll() and command handlers run on the one thread that calls
 * publisher_poll().
 */
#ifndef SIGFOX_PUBLISHER_H
#define SIGFOX_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define PUBLISHER_FORMAT_VERSION 1
/* Largest command accepted: a bigger one is a client error (ZeroMQ drops the peer). */
#define PUBLISHER_MAX_REQUEST_BYTES 65536

enum publisher_error {
    PUBLISHER_OK = 0,
    PUBLISHER_ERR_ARG = -1,
    PUBLISHER_ERR_ZMQ = -2, /* a ZeroMQ call failed (see the log) */
    PUBLISHER_ERR_NOMEM = -3,
};

typedef struct {
    const char *pub_endpoint; /* "ipc:///run/sigfoxd/events", "tcp://127.0.0.1:5556"; NULL or
                                 "": no event socket */
    const char *cmd_endpoint; /* NULL or "": no command socket */
    int send_hwm;             /* messages queued per subscriber before dropping; 0: 10000 */
} publisher_config_t;

/* A command handler fills `reply` (an object that already holds "ok": true and "cmd") and
 * returns 0, or returns -1 with a message in err: the reply then becomes
 * {"ok": false, "cmd": ..., "error": err}. `request` is the whole request object.
 * Runs on the publisher_poll() thread. */
typedef int (*publisher_cmd_fn)(json_object *request, json_object *reply, void *user, char *err,
                                size_t err_len);

typedef struct {
    uint64_t events;         /* messages published */
    uint64_t events_failed;  /* send errors (PUB never blocks; full queues drop silently) */
    uint64_t commands;       /* requests answered */
    uint64_t command_errors; /* of which error replies */
} publisher_stats_t;

typedef struct publisher publisher_t;

/* Binds the sockets. Returns the handle, or NULL with a message naming the endpoint and the
 * reason in err (for ipc://, a missing directory is named). */
publisher_t *publisher_create(const publisher_config_t *cfg, char *err, size_t err_len);

/* Registers a verb (copied). help is a one-line description listed by the "help" verb,
 * which the publisher answers itself. Returns 0, PUBLISHER_ERR_ARG (duplicate) or
 * PUBLISHER_ERR_NOMEM. Call before the first publisher_poll(). */
int publisher_add_command(publisher_t *p, const char *verb, publisher_cmd_fn fn, void *user,
                          const char *help);

/* Publishes [topic, json]. Thread-safe, never blocks. Returns 0 or PUBLISHER_ERR_*;
 * without an event socket it does nothing and returns 0. */
int publisher_publish(publisher_t *p, const char *topic, const char *json);
/* The same for a JSON object (not consumed: the caller still owns it). */
int publisher_publish_json(publisher_t *p, const char *topic, json_object *obj);

/* Waits up to timeout_ms for command requests and answers each one. Returns the number
 * answered (>= 0), or PUBLISHER_ERR_ZMQ. Returns early (0) when interrupted by a signal, so
 * the caller's loop sees its stop flag. Without a command socket it just sleeps. */
int publisher_poll(publisher_t *p, int timeout_ms);

/* The reply publisher_poll() would send to a request of `parts` message parts whose first
 * part is data[0..len): the command parser on its own, for tests and the fuzz harness
 * (test/fuzz/fuzz_command.c). Runs the registered handlers. Returns a new object (the
 * caller puts it), NULL only when memory ran out. Poll thread only. */
json_object *publisher_handle_request(publisher_t *p, const char *data, size_t len, int parts);

void publisher_get_stats(publisher_t *p, publisher_stats_t *stats);

/* Closes the sockets (pending events get up to 200 ms to leave) and frees. NULL-safe. */
void publisher_destroy(publisher_t *p);

/* Formats unix_s (seconds since 1970) as ISO-8601 UTC with microseconds,
 * "2026-11-26T12:00:16.123456Z", into out (at least 28 bytes). Returns out. */
char *publisher_time_utc(double unix_s, char *out, size_t out_len);

#endif
