/* restapi: the network core's REST API and status page (libmicrohttpd). Licence: MIT.
 *
 * Bound to 127.0.0.1 by default; bound to any other address it requires a token
 * (`Authorization: Bearer <token>`, compared in constant time) and refuses to start
 * without one. JSON in and out; request bodies at most 64 KiB.
 *
 *   GET    /api/devices                       devices (keys never shown: write-only)
 *   GET    /api/devices/<ID>                  one device
 *   PUT    /api/devices/<ID>                  create/update (nsreg_device_from_json fields;
 *                                             "key" required for a new device)
 *   DELETE /api/devices/<ID>
 *   GET    /api/devices/<ID>/messages?from=S&to=S&limit=N   messages by time (epoch s)
 *   GET    /api/device-types                  [{name, grammar, period_s}]
 *   PUT    /api/device-types/<name>           {"grammar": "...", "period_s": 3600}
 *   GET    /api/stations                      stations with position and last_seen_s
 *   GET    /api/callbacks/failures            the last callback failures (app_callback_failure
 *                                             of the same database, every instance)
 *   GET    /api/stats                         counts (devices, stations, messages, queue)
 *   GET    /                                  the status page (HTML, no external assets):
 *          stations, devices with their last message, an SNR/RSSI plot per device
 *          (inline SVG), the last 100 messages, the callback failures
 *
 * Threads: one internal thread (libmicrohttpd) with its own database connection.
 */
#ifndef SIGFOX_RESTAPI_H
#define SIGFOX_RESTAPI_H

#include <stddef.h>

#include "nscore.h"

typedef struct {
    const char *bind_addr;     /* IPv4 address, default 127.0.0.1 */
    int port;                  /* 0: any free port (restapi_port); sigfox-ns uses 8090 */
    const char *token;         /* required when bind_addr is not a loopback address */
    const char *db_url;        /* the core's database (nsdb_open URL) */
    nscore_t *core;            /* told when the registry changes (may be NULL) */
} restapi_config_t;

typedef struct restapi restapi_t;

/* Starts the server. NULL with err (bad address, no token off loopback, port in use, ...). */
restapi_t *restapi_create(const restapi_config_t *cfg, char *err, size_t err_len);
void restapi_destroy(restapi_t *r);
/* The port it listens on. */
int restapi_port(const restapi_t *r);

#endif
