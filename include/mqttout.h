/* mqttout: publishes integration events to an MQTT broker (libmosquitto, QoS 1, optional
 * TLS and username/password) and takes downlink payloads from it. Licence: MIT.
 *
 * Topics (prefix "sigfox", source = the station ID in sigfoxd or "ns" in sigfox-ns):
 *   <prefix>/<source>/<device>/up             DATA events
 *   <prefix>/<source>/<device>/service        SERVICE status (keep-alive)
 *   <prefix>/<source>/<device>/downlink/ack   SERVICE downlink outcome
 *   <prefix>/<source>/<device>/error          ERROR (communication loss)
 *   <prefix>/<source>/<device>/downlink/set   subscribed: a downlink for the device,
 *       payload 16 hex digits, {"downlinkData":"<16 hex>"} or "" / "none" (no downlink)
 * Payloads are appevent_to_json() objects (docs/integrations.md). <device> is 8 uppercase
 * hex digits.
 *
 * Queue: every event is kept in a bounded in-memory queue until the broker acknowledged it
 * (PUBACK); events published while the broker is away are sent after the reconnect
 * (automatic, every reconnect_s). When the queue is full the oldest event is dropped and
 * counted. QoS 1 is at-least-once: an event in flight at a disconnect may arrive twice.
 * Threads: libmosquitto's own thread runs the network; mqttout_publish may be called from
 * one other thread; on_downlink runs on libmosquitto's thread.
 */
#ifndef SIGFOX_MQTTOUT_H
#define SIGFOX_MQTTOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "appevent.h"

typedef struct {
    const char *host;        /* default 127.0.0.1 */
    int port;                /* default 1883 (8883 with TLS) */
    const char *username;    /* NULL: none */
    const char *password;
    const char *ca_file;     /* non-NULL: TLS, server certificate checked against it */
    const char *client_id;   /* default "sigfox-<source>" */
    const char *prefix;      /* default "sigfox" */
    const char *source;      /* default "ns" */
    size_t max_queue;        /* default 10000 events */
    int reconnect_s;         /* default 2 */
    /* a downlink from <prefix>/+/<device>/downlink/set: payload NULL = no downlink */
    void (*on_downlink)(void *ctx, uint32_t ep_id, const uint8_t *payload);
    void *downlink_ctx;
} mqttout_config_t;

typedef struct {
    uint64_t published; /* events queued by mqttout_publish */
    uint64_t acked;     /* PUBACKs received */
    uint64_t dropped;   /* oldest events dropped because the queue was full */
    uint64_t queued;    /* events not yet acknowledged */
    uint64_t downlinks; /* valid downlink/set messages */
    uint64_t refused;   /* malformed downlink/set messages (logged) */
    bool connected;
} mqttout_stats_t;

typedef struct mqttout mqttout_t;

/* Starts the client (connects in the background). NULL with err on a bad config. */
mqttout_t *mqttout_create(const mqttout_config_t *cfg, char *err, size_t err_len);
/* Stops the network thread; events not yet acknowledged are lost (logged with count). */
void mqttout_destroy(mqttout_t *m);

/* Queues ev for publication. Returns 0, or -1 on no memory. */
int mqttout_publish(mqttout_t *m, const appevent_t *ev);

void mqttout_get_stats(mqttout_t *m, mqttout_stats_t *st);

/* Parses a downlink/set payload (len bytes): 0 with payload filled, 1 for "no downlink",
 * -1 when malformed. */
int mqttout_parse_downlink(const char *text, size_t len, uint8_t payload[8]);

#endif
