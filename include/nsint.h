/* nsint: the integrations of sigfox-ns built from its configuration (nsconf.h): the device
 * types (payload grammar, communication-loss period), the HTTP callbacks (callback.h), MQTT
 * (mqttout.h), the REST API and status page (restapi.h), and the adapter that feeds them
 * from the core and returns their downlink answers (nsapps.h). Licence: MIT.
 *
 * Configuration errors name the file, the line and the key ("ns.conf:42:
 * callbacks.list[0] (my-app): body: unknown variable {x} at column 12").
 * Threads: nsint_poll runs on the core's ingest thread (the one that owns db); the REST API
 * and MQTT have their own threads (see their headers).
 */
#ifndef SIGFOX_NSINT_H
#define SIGFOX_NSINT_H

#include <stdbool.h>
#include <stddef.h>

#include "nsconf.h"
#include "nscore.h"
#include "nsdb.h"

typedef struct nsint nsint_t;

/* Checks what the configuration asks of the integrations (callback templates, grammars,
 * MQTT and REST settings) without opening anything. 0, or -1 with err. */
int nsint_check(const nsconf_t *cf, char *err, size_t err_len);

/* Creates what cf enables, hooked to core; db is the core's (ingest) connection: the
 * configured device types are written to it. NULL with err. With nothing enabled it still
 * returns an (idle) object. */
nsint_t *nsint_open(const nsconf_t *cf, nscore_t *core, nsdb_t *db, char *err, size_t err_len);

/* Sends due callbacks and, every device_types.check_interval_s, raises the communication
 * losses. Never blocks. */
void nsint_poll(nsint_t *n, double now_s);

/* Gives requests in flight at most wait_s to finish (what does not stays queued), then
 * stops everything. NULL is fine. */
void nsint_close(nsint_t *n, double wait_s);

/* One line for the start log: "callbacks: 2, mqtt: 127.0.0.1:1883, rest: http://..." */
void nsint_describe(const nsint_t *n, char *out, size_t cap);

#endif
