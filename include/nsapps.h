/* nsapps: connects the network core (nscore.h) to the application integrations: every
 * accepted message and downlink outcome becomes an appevent (with the device type's payload
 * grammar decoded, the stations' positions and ack = BF=1 of a device in callback mode) and
 * goes to the HTTP callbacks (callback.h) and MQTT (mqttout.h); downlink answers from a DATA
 * callback or from MQTT go back to the core (nscore_downlink_answer). Licence: MIT.
 *
 * Hooks: an IN_TX hook reads the registry inside the transaction that accepts the message,
 * builds the event and (nsapps_queue_in_transaction) writes its callback rows in that same
 * transaction; the COMMITTED hook hands it on (MQTT, callbacks when not queued yet), so a
 * transaction that is rolled back and rerun never queues a callback twice.
 * Threads: nsapps_poll runs on the core's ingest thread (the hooks run there too); the MQTT
 * downlink arrives on libmosquitto's thread (nscore_downlink_answer is thread-safe).
 */
#ifndef SIGFOX_NSAPPS_H
#define SIGFOX_NSAPPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "callback.h"
#include "mqttout.h"
#include "nscore.h"

typedef struct nsapps nsapps_t;

/* Registers the hooks on core. dl_answer_ms: how long after a BF=1 message a callback's
 * downlink answer is still in time (match nscore_config_t.dl_answer_timeout_s; 0: 5000).
 * now_ms: the callbacks' clock (NULL: real time). */
nsapps_t *nsapps_create(nscore_t *core, int64_t dl_answer_ms, int64_t (*now_ms)(void *),
                        void *clock_ctx, char *err, size_t err_len);
void nsapps_destroy(nsapps_t *a);

/* Outputs (borrowed, either may be NULL). Create the callback module with
 * on_downlink = nsapps_callback_downlink and the MQTT one with
 * on_downlink = nsapps_mqtt_downlink, both with ctx = a. */
void nsapps_set_outputs(nsapps_t *a, callback_t *cb, mqttout_t *mqtt);
/* on: the callback module's queue is in the core's database, so a message's callback rows
 * are written inside the transaction that accepts it (callback_submit_tx): committed
 * together, never lost between the commit and the queue. Off (default): queued after the
 * commit (a crash in between loses those requests). */
void nsapps_queue_in_transaction(nsapps_t *a, bool on);
void nsapps_callback_downlink(void *a, const callback_dl_answer_t *answer);
void nsapps_mqtt_downlink(void *a, uint32_t ep_id, const uint8_t *payload);

/* The payload grammar (payloadfmt.h) of a device type; NULL/"" grammar removes it.
 * 0, or -1 with err (the grammar's error column). */
int nsapps_set_grammar(nsapps_t *a, const char *device_type, const char *grammar, char *err,
                       size_t err_len);

/* Device types (table app_device_types): grammar checked first (err has its column), then
 * stored; the adapter uses it at once. period_s > 0: a device of this type silent for longer
 * raises one ERROR event (communication loss). 0 or -1 with err. */
int nsapps_type_put(nsapps_t *a, nsdb_t *db, const char *name, const char *grammar,
                    double period_s, double now_s, char *err, size_t err_len);
/* Loads every stored device type's grammar (at start). Returns the count or < 0. */
int nsapps_load_types(nsapps_t *a, nsdb_t *db);
/* Reloads the device types first (the REST API writes them through its own connection),
 * then raises an ERROR event (callbacks, MQTT) for each device whose type has a period and whose
 * last message is older than it, once per silence (app_comm_loss). Call every few seconds
 * from the ingest thread. Returns the number of events or < 0 (NSDB_ERR_*). */
int nsapps_check_comm_loss(nsapps_t *a, nsdb_t *db, double now_s);

/* Sends due callbacks (callback_poll). Returns callback_poll's result or 0. */
int nsapps_poll(nsapps_t *a, int wait_ms);

#endif
