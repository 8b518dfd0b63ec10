/* nsint: sigfox-ns integrations from its configuration (include/nsint.h). Licence: MIT. */
#include "nsint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "callback.h"
#include "errbuf.h"
#include "log.h"
#include "mqttout.h"
#include "nsapps.h"
#include "payloadfmt.h"
#include "restapi.h"

/* How often the ingest loop hands control to the callbacks: their queue updates (one
 * transaction, one fsync) then cover everything that finished meanwhile instead of one
 * request each; answers are still read well inside the downlink answer time. */
#define POLL_S 0.05

struct nsint {
    nsapps_t *apps;
    callback_t *cb;
    mqttout_t *mqtt;
    restapi_t *rest;
    nsdb_t *db;
    double check_s, next_check;
    double next_poll; /* callbacks are polled every POLL_S on the ingest loop */
    size_t ncallbacks;
    char mqtt_where[NSCONF_STR_MAX + 16];
};

static const char *file_of(const nsconf_t *cf)
{
    return cf->config_file[0] ? cf->config_file : "(command line)";
}

static appevent_type_t event_type(const char *t)
{
    return !strcmp(t, "SERVICE") ? APPEVENT_SERVICE : !strcmp(t, "ERROR") ? APPEVENT_ERROR
                                                                          : APPEVENT_DATA;
}

/* Adds every callbacks.list entry (templates checked by callback_add). */
static int add_callbacks(callback_t *cb, const nsconf_t *cf, char *err, size_t err_len)
{
    for (size_t i = 0; i < cf->ncallbacks; i++) {
        const nsconf_callback_t *c = &cf->callbacks[i];
        callback_def_t d = {.name = c->name,
                            .device_type = c->device_type,
                            .type = event_type(c->type),
                            .media = strcmp(c->media, "batch") ? CALLBACK_SIMPLE : CALLBACK_BATCH,
                            .method = c->method,
                            .url = c->url,
                            .nheaders = c->nheaders,
                            .content_type = c->content_type[0] ? c->content_type : NULL,
                            .body = c->body,
                            .downlink = c->downlink};
        for (size_t h = 0; h < c->nheaders; h++)
            d.headers[h] = c->headers[h];
        char why[400];
        if (callback_add(cb, &d, why, sizeof why) < 0) {
            errbuf_set(err, err_len, "%s:%d: callbacks.list[%zu]: %s", file_of(cf), c->line, i, why);
            return -1;
        }
    }
    return 0;
}

static callback_t *open_callbacks(const nsconf_t *cf, const char *db_path, nsapps_t *apps,
                                  char *err, size_t err_len)
{
    callback_config_t cc = {.db_path = db_path,
                            .instance = cf->instance,
                            .timeout_ms = (int)(cf->cb_timeout_s * 1000),
                            .retry_delay_ms = (int64_t)(cf->cb_retry_delay_s * 1000),
                            .max_tries = cf->cb_max_tries,
                            .batch_interval_ms = (int64_t)(cf->cb_batch_interval_s * 1000),
                            .max_in_flight = cf->cb_max_in_flight,
                            .on_downlink = apps ? nsapps_callback_downlink : NULL,
                            .downlink_ctx = apps};
    char why[400];
    callback_t *cb = callback_create(&cc, why, sizeof why);
    if (!cb) {
        errbuf_set(err, err_len, "callbacks.queue_file: %s", why);
        return NULL;
    }
    if (add_callbacks(cb, cf, err, err_len) < 0) {
        callback_destroy(cb);
        return NULL;
    }
    return cb;
}

static int check_types(const nsconf_t *cf, char *err, size_t err_len)
{
    for (size_t i = 0; i < cf->ndevice_types; i++) {
        const nsconf_device_type_t *t = &cf->device_types[i];
        if (!t->grammar[0])
            continue;
        char why[300];
        payloadfmt_t *f = payloadfmt_create(t->grammar, why, sizeof why);
        if (!f) {
            errbuf_set(err, err_len, "%s:%d: device_types.list[%zu].grammar (%s): %s",
                       file_of(cf), t->line, i, t->name, why);
            return -1;
        }
        payloadfmt_destroy(f);
    }
    return 0;
}

static bool loopback(const char *addr)
{
    return !strncmp(addr, "127.", 4);
}

static int check_outputs(const nsconf_t *cf, char *err, size_t err_len)
{
    if (cf->mqtt_enabled && !cf->mqtt_host[0]) {
        errbuf_set(err, err_len, "%s: mqtt.host: empty", file_of(cf));
        return -1;
    }
    if (cf->mqtt_enabled && cf->mqtt_ca_file[0] && access(cf->mqtt_ca_file, R_OK) != 0) {
        errbuf_set(err, err_len, "%s: mqtt.ca_file: cannot read %s", file_of(cf), cf->mqtt_ca_file);
        return -1;
    }
    if (cf->rest_enabled && !loopback(cf->rest_bind) && strlen(cf->rest_token) < 16) {
        errbuf_set(err, err_len, "%s: rest.token: bound to %s (not loopback) the REST API needs "
                   "a token of at least 16 characters", file_of(cf), cf->rest_bind);
        return -1;
    }
    return 0;
}

int nsint_check(const nsconf_t *cf, char *err, size_t err_len)
{
    if (check_types(cf, err, err_len) < 0 || check_outputs(cf, err, err_len) < 0)
        return -1;
    if (!cf->ncallbacks)
        return 0;
    callback_t *cb = open_callbacks(cf, "sqlite::memory:", NULL, err, err_len);
    callback_destroy(cb);
    return cb ? 0 : -1;
}

nsint_t *nsint_open(const nsconf_t *cf, nscore_t *core, nsdb_t *db, char *err, size_t err_len)
{
    if (nsint_check(cf, err, err_len) < 0)
        return NULL;
    nsint_t *n = calloc(1, sizeof *n);
    if (!n) {
        errbuf_set(err, err_len, "out of memory");
        return NULL;
    }
    n->check_s = cf->types_check_s;
    n->db = db;
    char why[400], queue[NSCONF_PATH_MAX];
    nsconf_queue_file(cf, queue, sizeof queue);
    if (cf->ncallbacks || cf->mqtt_enabled || cf->ndevice_types) {
        n->apps = nsapps_create(core, (int64_t)(cf->dl_answer_timeout_s * 1000), NULL, NULL, why,
                                sizeof why);
        if (!n->apps) {
            errbuf_set(err, err_len, "%s", why);
            goto fail;
        }
        if (nsapps_load_types(n->apps, db) < 0)
            log_warn("Stored device types not loaded, reason: %s", nsdb_errmsg(db));
        for (size_t i = 0; i < cf->ndevice_types; i++) {
            const nsconf_device_type_t *t = &cf->device_types[i];
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            if (nsapps_type_put(n->apps, db, t->name, t->grammar, t->period_s, (double)ts.tv_sec,
                                why, sizeof why) < 0) {
                errbuf_set(err, err_len, "%s:%d: device_types.list[%zu]: %s", file_of(cf),
                           t->line, i, why);
                goto fail;
            }
        }
    }
    if (cf->ncallbacks && !(n->cb = open_callbacks(cf, queue, n->apps, err, err_len)))
        goto fail;
    n->ncallbacks = cf->ncallbacks;
    if (cf->mqtt_enabled) {
        mqttout_config_t mc = {.host = cf->mqtt_host,
                               .port = cf->mqtt_port,
                               .username = cf->mqtt_username[0] ? cf->mqtt_username : NULL,
                               .password = cf->mqtt_password[0] ? cf->mqtt_password : NULL,
                               .ca_file = cf->mqtt_ca_file[0] ? cf->mqtt_ca_file : NULL,
                               .client_id = cf->mqtt_client_id,
                               .prefix = cf->mqtt_prefix,
                               .source = cf->mqtt_source,
                               .max_queue = (size_t)cf->mqtt_max_queue,
                               .reconnect_s = cf->mqtt_reconnect_s,
                               .on_downlink = nsapps_mqtt_downlink,
                               .downlink_ctx = n->apps};
        if (!(n->mqtt = mqttout_create(&mc, why, sizeof why))) {
            errbuf_set(err, err_len, "%s: mqtt: %s", file_of(cf), why);
            goto fail;
        }
        snprintf(n->mqtt_where, sizeof n->mqtt_where, "%s:%d%s", cf->mqtt_host,
                 cf->mqtt_port ? cf->mqtt_port : cf->mqtt_ca_file[0] ? 8883 : 1883,
                 cf->mqtt_ca_file[0] ? " (TLS)" : "");
    }
    if (n->apps) {
        nsapps_set_outputs(n->apps, n->cb, n->mqtt);
        /* the queue in the core's database: rows written in the accepting transaction */
        nsapps_queue_in_transaction(n->apps, n->cb && !cf->cb_queue_file[0]);
    }
    if (cf->rest_enabled) {
        restapi_config_t rc = {.bind_addr = cf->rest_bind,
                               .port = cf->rest_port,
                               .token = cf->rest_token[0] ? cf->rest_token : NULL,
                               .db_url = cf->storage_url,
                               .core = core};
        if (!(n->rest = restapi_create(&rc, why, sizeof why))) {
            errbuf_set(err, err_len, "%s: rest: %s", file_of(cf), why);
            goto fail;
        }
    }
    return n;
fail:
    nsint_close(n, 0);
    return NULL;
}

void nsint_poll(nsint_t *n, double now_s)
{
    if (!n || !n->apps)
        return;
    if (now_s < n->next_poll && now_s > n->next_poll - 1) /* (a clock step: poll now) */
        return;
    n->next_poll = now_s + POLL_S;
    if (nsapps_poll(n->apps, 0) < 0)
        log_error("Callback queue failed (database)");
    if (now_s < n->next_check)
        return;
    n->next_check = now_s + n->check_s;
    if (nsapps_check_comm_loss(n->apps, n->db, now_s) < 0)
        log_warn("Communication loss not checked, reason: %s", nsdb_errmsg(n->db));
}

void nsint_close(nsint_t *n, double wait_s)
{
    if (!n)
        return;
    restapi_destroy(n->rest);
    for (double t = 0; n->cb && t < wait_s; t += 0.05)
        if (callback_poll(n->cb, 50) <= 0)
            break;
    /* MQTT first: its thread may hand a downlink to the adapter */
    mqttout_destroy(n->mqtt);
    if (n->apps)
        nsapps_set_outputs(n->apps, NULL, NULL);
    callback_destroy(n->cb);
    nsapps_destroy(n->apps);
    free(n);
}

void nsint_describe(const nsint_t *n, char *out, size_t cap)
{
    char rest[64] = "off";
    if (n && n->rest)
        snprintf(rest, sizeof rest, "port %d", restapi_port(n->rest));
    snprintf(out, cap, "callbacks: %zu, mqtt: %s, rest: %s", n ? n->ncallbacks : 0,
             n && n->mqtt ? n->mqtt_where : "off", rest);
}
