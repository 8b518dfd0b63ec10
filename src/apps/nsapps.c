/* nsapps: network core events -> HTTP callbacks and MQTT; downlink answers back.
 * Licence: MIT. */
#include "nsapps.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"
#include "log.h"
#include "nsreg.h"
#include "payloadfmt.h"

#define MAX_GRAMMARS 64
#define MAX_STASH 256
#define MAX_PENDING 256

typedef struct {
    char device_type[NSREG_NAME_MAX];
    payloadfmt_t *fmt;
} grammar_t;

typedef struct {
    int64_t msg_id; /* 0: free */
    appevent_t ev;
    uint64_t age;
    bool queued; /* its callbacks were queued inside the transaction */
} stash_t;

typedef struct {
    uint32_t ep_id;
    uint16_t mc;
    int64_t until_ms; /* 0: free */
} pending_t;

struct nsapps {
    nscore_t *core;
    callback_t *cb;
    mqttout_t *mqtt;
    bool queue_in_tx;
    int64_t dl_answer_ms;
    int64_t (*now_ms)(void *);
    void *clock_ctx;
    grammar_t g[MAX_GRAMMARS];
    size_t ng;
    stash_t stash[MAX_STASH];
    uint64_t stash_age;
    pthread_mutex_t lock; /* pending (MQTT thread) */
    pending_t pending[MAX_PENDING];
};

static int64_t now_ms(const nsapps_t *a)
{
    if (a->now_ms)
        return a->now_ms(a->clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const payloadfmt_t *grammar_for(const nsapps_t *a, const char *type)
{
    for (size_t i = 0; type[0] && i < a->ng; i++)
        if (strcmp(a->g[i].device_type, type) == 0)
            return a->g[i].fmt;
    return NULL;
}

int nsapps_set_grammar(nsapps_t *a, const char *device_type, const char *grammar, char *err,
                       size_t err_len)
{
    if (!a || !device_type || !device_type[0] || strlen(device_type) >= NSREG_NAME_MAX) {
        errbuf_set(err, err_len, "grammar: bad device type name");
        return -1;
    }
    payloadfmt_t *f = NULL;
    if (grammar && grammar[0]) {
        char perr[200];
        f = payloadfmt_create(grammar, perr, sizeof perr);
        if (!f) {
            errbuf_set(err, err_len, "device type %s: %s", device_type, perr);
            return -1;
        }
    }
    for (size_t i = 0; i < a->ng; i++)
        if (strcmp(a->g[i].device_type, device_type) == 0) {
            payloadfmt_destroy(a->g[i].fmt);
            a->g[i].fmt = f;
            return 0;
        }
    if (!f)
        return 0;
    if (a->ng == MAX_GRAMMARS) {
        payloadfmt_destroy(f);
        errbuf_set(err, err_len, "grammar: more than %d device types", MAX_GRAMMARS);
        return -1;
    }
    snprintf(a->g[a->ng].device_type, sizeof a->g[0].device_type, "%s", device_type);
    a->g[a->ng++].fmt = f;
    return 0;
}

/* Station positions from the registry's ns_stations (their last hello). */
static void add_positions(nsdb_t *db, appevent_t *ev)
{
    for (size_t i = 0; i < ev->nstations; i++) {
        nsdb_rows_t *r = NULL;
        nsdb_val_t p[] = {NSDB_TEXT(ev->stations[i].id)};
        if (nsdb_query(db, "SELECT lat, lng FROM ns_stations WHERE station_id = $1", p, 1, &r) < 0)
            continue;
        if (nsdb_rows_count(r) && !nsdb_rows_isnull(r, 0, 0) && !nsdb_rows_isnull(r, 0, 1)) {
            ev->stations[i].lat = nsdb_rows_real(r, 0, 0);
            ev->stations[i].lng = nsdb_rows_real(r, 0, 1);
            ev->stations[i].has_pos = true;
        }
        nsdb_rows_free(r);
    }
}

static int in_tx(const nscore_event_t *nev, nsdb_t *db, void *user)
{
    nsapps_t *a = user;
    if (nev->type != NSCORE_EV_MESSAGE || !nev->msg_id)
        return 0;
    appevent_t ev;
    char err[160];
    int rc = appevent_from_json(nev->json, &ev, err, sizeof err);
    if (rc != 0) {
        if (rc < 0)
            log_warn("Integration event not built, device: %08X, reason: %s", nev->ep_id, err);
        return 0;
    }
    nsreg_device_t d;
    if (nsreg_device_get(db, nev->ep_id, &d) == 1) {
        snprintf(ev.device_type, sizeof ev.device_type, "%s", d.device_type);
        ev.ack = ev.type == APPEVENT_DATA && nev->msg && nev->msg->bf &&
                 d.dl_mode == NSREG_DL_CALLBACK;
    } else {
        ev.ack = false;
    }
    add_positions(db, &ev);
    const payloadfmt_t *f = ev.type == APPEVENT_DATA ? grammar_for(a, ev.device_type) : NULL;
    if (f) {
        json_object *dec = NULL;
        char derr[160] = "";
        if (payloadfmt_decode(f, ev.data, ev.data_len, &dec, derr, sizeof derr) == -1)
            snprintf(ev.decoded_error, sizeof ev.decoded_error, "%s", derr);
        json_object_put(ev.decoded);
        ev.decoded = dec;
    }
    /* the callbacks' queue rows in this very transaction: committed with the message or
     * rolled back with it (and written again when the transaction is rerun) */
    bool queued = false;
    if (a->cb && a->queue_in_tx) {
        if (callback_submit_tx(a->cb, db, &ev, ev.ack ? now_ms(a) + a->dl_answer_ms : 0) < 0) {
            appevent_clear(&ev);
            return -1; /* the core rolls back and retries the batch */
        }
        queued = true;
    }
    /* keep it for the COMMITTED hook: a rerun transaction replaces it */
    stash_t *slot = NULL, *oldest = &a->stash[0];
    for (size_t i = 0; i < MAX_STASH && !slot; i++) {
        if (a->stash[i].msg_id == nev->msg_id || a->stash[i].msg_id == 0)
            slot = &a->stash[i];
        else if (a->stash[i].age < oldest->age)
            oldest = &a->stash[i];
    }
    if (!slot)
        slot = oldest;
    appevent_clear(&slot->ev);
    slot->ev = ev;
    slot->msg_id = nev->msg_id;
    slot->age = ++a->stash_age;
    slot->queued = queued;
    return 0;
}

static void deliver(nsapps_t *a, const appevent_t *ev, bool queued)
{
    int64_t now = now_ms(a);
    if (a->cb && !queued && callback_submit(a->cb, ev, ev->ack ? now + a->dl_answer_ms : 0) < 0)
        log_error("Callbacks not queued (database), device: %08X, mc: %d", ev->ep_id, ev->seq);
    if (a->mqtt && mqttout_publish(a->mqtt, ev) < 0)
        log_error("MQTT event not queued (no memory), device: %08X", ev->ep_id);
    if (ev->ack && ev->seq >= 0) {
        pthread_mutex_lock(&a->lock);
        pending_t *slot = &a->pending[0];
        for (size_t i = 0; i < MAX_PENDING; i++) {
            if (a->pending[i].ep_id == ev->ep_id || a->pending[i].until_ms < now) {
                slot = &a->pending[i];
                break;
            }
            if (a->pending[i].until_ms < slot->until_ms)
                slot = &a->pending[i];
        }
        *slot = (pending_t){ev->ep_id, (uint16_t)ev->seq, now + a->dl_answer_ms};
        pthread_mutex_unlock(&a->lock);
    }
}

static int committed(const nscore_event_t *nev, nsdb_t *db, void *user)
{
    (void)db;
    nsapps_t *a = user;
    if (nev->type == NSCORE_EV_MESSAGE) {
        for (size_t i = 0; i < MAX_STASH; i++)
            if (a->stash[i].msg_id == nev->msg_id && nev->msg_id) {
                deliver(a, &a->stash[i].ev, a->stash[i].queued);
                appevent_clear(&a->stash[i].ev);
                a->stash[i].msg_id = 0;
                break;
            }
        return 0;
    }
    if (nev->type != NSCORE_EV_DOWNLINK)
        return 0;
    appevent_t ev;
    char err[160];
    if (appevent_from_json(nev->json, &ev, err, sizeof err) == 0) {
        deliver(a, &ev, false);
        appevent_clear(&ev);
    }
    return 0;
}

nsapps_t *nsapps_create(nscore_t *core, int64_t dl_answer_ms, int64_t (*now)(void *),
                        void *clock_ctx, char *err, size_t err_len)
{
    nsapps_t *a = calloc(1, sizeof *a);
    if (!a || !core) {
        errbuf_set(err, err_len, "nsapps: %s", core ? "out of memory" : "no core");
        free(a);
        return NULL;
    }
    a->core = core;
    a->dl_answer_ms = dl_answer_ms > 0 ? dl_answer_ms : 5000;
    a->now_ms = now;
    a->clock_ctx = clock_ctx;
    pthread_mutex_init(&a->lock, NULL);
    for (size_t i = 0; i < MAX_STASH; i++)
        appevent_init(&a->stash[i].ev);
    if (nscore_add_hook(core, NSCORE_HOOK_IN_TX, in_tx, a) < 0 ||
        nscore_add_hook(core, NSCORE_HOOK_COMMITTED, committed, a) < 0) {
        errbuf_set(err, err_len, "nsapps: cannot add the core hooks");
        pthread_mutex_destroy(&a->lock);
        free(a);
        return NULL;
    }
    return a;
}

void nsapps_destroy(nsapps_t *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->ng; i++)
        payloadfmt_destroy(a->g[i].fmt);
    for (size_t i = 0; i < MAX_STASH; i++)
        appevent_clear(&a->stash[i].ev);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void nsapps_set_outputs(nsapps_t *a, callback_t *cb, mqttout_t *mqtt)
{
    a->cb = cb;
    a->mqtt = mqtt;
}

void nsapps_queue_in_transaction(nsapps_t *a, bool on)
{
    a->queue_in_tx = on;
}

void nsapps_callback_downlink(void *ctx, const callback_dl_answer_t *ans)
{
    nsapps_t *a = ctx;
    if (ans->status != CALLBACK_DL_PAYLOAD && ans->status != CALLBACK_DL_NONE)
        return; /* logged by the callback module; the core declines when its wait is over */
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < MAX_PENDING; i++)
        if (a->pending[i].ep_id == ans->ep_id && a->pending[i].mc == ans->mc)
            a->pending[i].until_ms = 0;
    pthread_mutex_unlock(&a->lock);
    if (nscore_downlink_answer(a->core, ans->ep_id, (uint16_t)ans->mc,
                               ans->status == CALLBACK_DL_PAYLOAD ? ans->payload : NULL) < 0)
        log_warn("Downlink answer not used (no request waiting: late or already decided), "
                 "device: %08X, mc: %d",
                 ans->ep_id, ans->mc);
}

void nsapps_mqtt_downlink(void *ctx, uint32_t ep_id, const uint8_t *payload)
{
    nsapps_t *a = ctx;
    int64_t now = now_ms(a);
    int mc = -1;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < MAX_PENDING; i++)
        if (a->pending[i].ep_id == ep_id && a->pending[i].until_ms >= now) {
            mc = a->pending[i].mc;
            a->pending[i].until_ms = 0;
        }
    pthread_mutex_unlock(&a->lock);
    if (mc < 0 || nscore_downlink_answer(a->core, ep_id, (uint16_t)mc, payload) < 0)
        log_warn("MQTT downlink not used (no request of the device waiting), device: %08X", ep_id);
}

int nsapps_type_put(nsapps_t *a, nsdb_t *db, const char *name, const char *grammar,
                    double period_s, double now_s, char *err, size_t err_len)
{
    if (!(period_s >= 0 && period_s < 1e9)) {
        errbuf_set(err, err_len, "device type %s: period_s must be 0..1e9", name ? name : "?");
        return -1;
    }
    if (nsapps_set_grammar(a, name, grammar, err, err_len) < 0)
        return -1;
    nsdb_val_t p[] = {NSDB_TEXT(name), NSDB_TEXT(grammar ? grammar : ""), NSDB_REAL(period_s),
                      NSDB_REAL(now_s)};
    int rc = nsdb_exec(db,
                       "INSERT INTO app_device_types (name, grammar, period_s, updated_s) "
                       "VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET "
                       "grammar = excluded.grammar, period_s = excluded.period_s, "
                       "updated_s = excluded.updated_s",
                       p, 4);
    if (rc < 0) {
        errbuf_set(err, err_len, "device type %s: %s", name, nsdb_errmsg(db));
        return -1;
    }
    return 0;
}

int nsapps_load_types(nsapps_t *a, nsdb_t *db)
{
    nsdb_rows_t *r = NULL;
    int rc = nsdb_query(db, "SELECT name, grammar FROM app_device_types ORDER BY name", NULL, 0, &r);
    if (rc < 0)
        return rc;
    int n = 0;
    for (size_t i = 0; i < nsdb_rows_count(r); i++) {
        char err[256];
        if (nsapps_set_grammar(a, nsdb_rows_text(r, i, 0), nsdb_rows_text(r, i, 1), err,
                               sizeof err) < 0)
            log_error("Stored device type refused, reason: %s", err);
        else
            n++;
    }
    nsdb_rows_free(r);
    return n;
}

int nsapps_check_comm_loss(nsapps_t *a, nsdb_t *db, double now_s)
{
    /* device types may have changed through the REST API (its own connection) */
    if (nsapps_load_types(a, db) < 0)
        log_warn("Device types not reloaded, reason: %s", nsdb_errmsg(db));
    nsdb_rows_t *r = NULL;
    nsdb_val_t p[] = {NSDB_REAL(now_s)};
    int rc = nsdb_query(db,
                        "SELECT d.ep_id, d.last_t, d.device_type FROM ns_devices d "
                        "JOIN app_device_types t ON t.name = d.device_type "
                        "LEFT JOIN app_comm_loss l ON l.ep_id = d.ep_id "
                        "WHERE t.period_s > 0 AND d.last_t IS NOT NULL "
                        "AND d.last_t < $1 - t.period_s "
                        "AND (l.ep_id IS NULL OR l.last_t <> d.last_t) ORDER BY d.ep_id",
                        p, 1, &r);
    if (rc < 0)
        return rc;
    int n = 0;
    for (size_t i = 0; i < nsdb_rows_count(r); i++) {
        appevent_t ev;
        appevent_init(&ev);
        ev.type = APPEVENT_ERROR;
        ev.subtype = APPEVENT_SUB_COMM_LOSS;
        ev.ep_id = (uint32_t)nsdb_rows_int(r, i, 0);
        double last_t = nsdb_rows_real(r, i, 1);
        ev.last_seen_s = (int64_t)last_t;
        ev.time_s = (int64_t)now_s;
        snprintf(ev.info, sizeof ev.info, "Communication loss");
        snprintf(ev.device_type, sizeof ev.device_type, "%s", nsdb_rows_text(r, i, 2));
        nsdb_val_t q[] = {NSDB_INT(ev.ep_id), NSDB_REAL(last_t), NSDB_REAL(now_s)};
        /* recorded first: a crash between the two loses one report, never repeats it */
        rc = nsdb_exec(db,
                       "INSERT INTO app_comm_loss (ep_id, last_t, reported_s) VALUES ($1, $2, $3) "
                       "ON CONFLICT (ep_id) DO UPDATE SET last_t = excluded.last_t, "
                       "reported_s = excluded.reported_s",
                       q, 3);
        if (rc < 0)
            break;
        log_notice("Communication loss, device: %08X, last message: %.0f s ago", ev.ep_id,
                   now_s - last_t);
        deliver(a, &ev, false);
        n++;
    }
    nsdb_rows_free(r);
    return rc < 0 ? rc : n;
}

int nsapps_poll(nsapps_t *a, int wait_ms)
{
    return a && a->cb ? callback_poll(a->cb, wait_ms) : 0;
}
