/* nsconf: sigfox-ns configuration (include/nsconf.h). Licence: MIT. */
#include "nsconf.h"


#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libconfig.h>
#include <zmq.h>

#include "errbuf.h"
#include "nssoft.h"

void nsconf_defaults(nsconf_t *c)
{
    memset(c, 0, sizeof *c);
    char host[64] = "ns";
    gethostname(host, sizeof host - 1);
    snprintf(c->instance, sizeof c->instance, "%s", host);
    snprintf(c->listen, sizeof c->listen, "tcp://*:5590");
    snprintf(c->secret_key_file, sizeof c->secret_key_file, "/etc/sigfox-ns/core.key");
    snprintf(c->storage_url, sizeof c->storage_url, "sqlite:///var/lib/sigfox-ns/ns.db");
    c->busy_timeout_ms = 5000;
    snprintf(c->pub_endpoint, sizeof c->pub_endpoint, "ipc:///run/sigfox-ns/events");
    snprintf(c->cmd_endpoint, sizeof c->cmd_endpoint, "ipc:///run/sigfox-ns/commands");
    c->stats_interval_s = 60;
    c->dedup_window_s = 30;
    c->update_events = true;
    c->soft_enabled = true;
    c->soft_window_s = NSSOFT_DEFAULT_WINDOW_S;
    c->soft_time_tol_s = NSSOFT_DEFAULT_TIME_TOL_S;
    c->soft_freq_tol_hz = NSSOFT_DEFAULT_FREQ_TOL_HZ;
    c->soft_max_per_station_s = 50;
    c->soft_chase_trials = 256;
    c->registry_cache_s = 5;
    c->dl_collect_s = 0.5;
    c->dl_answer_timeout_s = 5;
    c->dl_pending_timeout_s = 15;
    snprintf(c->log_level, sizeof c->log_level, "info");
    c->cb_timeout_s = 10;      /* seeds/000 §7.1.3: 2xx within 10 s */
    c->cb_retry_delay_s = 60;  /* §7.1.3: otherwise again 1 minute later */
    c->cb_max_tries = 10;
    c->cb_batch_interval_s = 1;
    c->cb_max_in_flight = 8;
    c->types_check_s = 10;
    snprintf(c->mqtt_host, sizeof c->mqtt_host, "127.0.0.1");
    snprintf(c->mqtt_prefix, sizeof c->mqtt_prefix, "sigfox");
    snprintf(c->mqtt_source, sizeof c->mqtt_source, "ns");
    c->mqtt_max_queue = 10000;
    c->mqtt_reconnect_s = 2;
    snprintf(c->rest_bind, sizeof c->rest_bind, "127.0.0.1");
    c->rest_port = 8090;
}

static void callback_free(nsconf_callback_t *cb)
{
    free(cb->url);
    free(cb->body);
    for (size_t i = 0; i < cb->nheaders; i++)
        free(cb->headers[i]);
    memset(cb, 0, sizeof *cb);
}

void nsconf_free(nsconf_t *c)
{
    if (!c)
        return;
    free(c->stations);
    c->stations = NULL;
    c->nstations = 0;
    for (size_t i = 0; i < c->ncallbacks; i++)
        callback_free(&c->callbacks[i]);
    free(c->callbacks);
    c->callbacks = NULL;
    c->ncallbacks = 0;
    for (size_t i = 0; i < c->ndevice_types; i++)
        free(c->device_types[i].grammar);
    free(c->device_types);
    c->device_types = NULL;
    c->ndevice_types = 0;
}

void nsconf_queue_file(const nsconf_t *c, char *out, size_t cap)
{
    snprintf(out, cap, "%s", *c->cb_queue_file ? c->cb_queue_file : c->storage_url);
}

static bool nsconf_key_valid(const char *text)
{
    if (!text || strlen(text) != NSCONF_KEY_Z85_LEN)
        return false;
    uint8_t raw[32];
    return zmq_z85_decode(raw, text) != NULL;
}

int nsconf_add_station(nsconf_t *c, const char *id, const char *public_key, char *err,
                       size_t err_len)
{
    if (!id || !*id || strlen(id) >= sizeof c->stations[0].id) {
        errbuf_set(err, err_len, "station id empty or longer than %zu bytes",
                   sizeof c->stations[0].id - 1);
        return -1;
    }
    for (const char *p = id; *p; p++) {
        if (!isalnum((unsigned char)*p) && !strchr("-_.", *p)) {
            errbuf_set(err, err_len, "station id %s: only letters, digits, '-', '_', '.'", id);
            return -1;
        }
    }
    if (!nsconf_key_valid(public_key)) {
        errbuf_set(err, err_len, "station %s: public_key is not a 40-character Z85 key", id);
        return -1;
    }
    for (size_t i = 0; i < c->nstations; i++) {
        if (!strcmp(c->stations[i].id, id) || !strcmp(c->stations[i].public_key, public_key)) {
            errbuf_set(err, err_len, "station %s: id or public_key listed twice", id);
            return -1;
        }
    }
    if (c->nstations >= NSCONF_MAX_STATIONS) {
        errbuf_set(err, err_len, "more than %d stations", NSCONF_MAX_STATIONS);
        return -1;
    }
    nsconf_station_t *n = realloc(c->stations, (c->nstations + 1) * sizeof *n);
    if (!n) {
        errbuf_set(err, err_len, "out of memory");
        return -1;
    }
    c->stations = n;
    nsconf_station_t *s = &c->stations[c->nstations++];
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->public_key, sizeof s->public_key, "%s", public_key);
    return 0;
}

typedef enum { T_STR, T_INT, T_DOUBLE, T_BOOL } type_t;

typedef struct {
    const char *path;
    type_t type;
    size_t offset, size;
    double lo, hi;
} opt_t;

#define S(path, field) {path, T_STR, offsetof(nsconf_t, field), sizeof(((nsconf_t *)0)->field), 0, 0}
#define D(path, field, lo, hi) {path, T_DOUBLE, offsetof(nsconf_t, field), 0, lo, hi}
#define I(path, field, lo, hi) {path, T_INT, offsetof(nsconf_t, field), 0, lo, hi}
#define B(path, field) {path, T_BOOL, offsetof(nsconf_t, field), 0, 0, 0}

static const opt_t opts[] = {
    S("ns.instance", instance),
    S("ns.listen", listen),
    S("ns.secret_key_file", secret_key_file),
    S("storage.url", storage_url),
    I("storage.busy_timeout_ms", busy_timeout_ms, 0, 600000),
    S("api.pub_endpoint", pub_endpoint),
    S("api.cmd_endpoint", cmd_endpoint),
    D("api.stats_interval_s", stats_interval_s, 0, 86400),
    D("dedup.window_s", dedup_window_s, 1, 3600),
    B("dedup.update_events", update_events),
    B("soft.enabled", soft_enabled),
    D("soft.window_s", soft_window_s, 1, 60),
    D("soft.time_tolerance_s", soft_time_tol_s, 0.001, 5),
    D("soft.freq_tolerance_hz", soft_freq_tol_hz, 1, 100000),
    D("soft.max_per_station_s", soft_max_per_station_s, 1, 10000),
    I("soft.chase_trials", soft_chase_trials, 0, 528),
    D("registry.cache_s", registry_cache_s, 0.001, 3600),
    S("registry.keys_file", keys_file),
    D("downlink.collect_s", dl_collect_s, 0.01, 10),
    D("downlink.answer_timeout_s", dl_answer_timeout_s, 0.1, 20),
    D("downlink.pending_timeout_s", dl_pending_timeout_s, 1, 60),
    S("log.level", log_level),
    S("callbacks.queue_file", cb_queue_file),
    D("callbacks.timeout_s", cb_timeout_s, 0.1, 600),
    D("callbacks.retry_delay_s", cb_retry_delay_s, 0.1, 86400),
    I("callbacks.max_tries", cb_max_tries, 1, 1000),
    D("callbacks.batch_interval_s", cb_batch_interval_s, 0.1, 3600),
    I("callbacks.max_in_flight", cb_max_in_flight, 1, 256),
    D("device_types.check_interval_s", types_check_s, 0.1, 86400),
    B("mqtt.enabled", mqtt_enabled),
    S("mqtt.host", mqtt_host),
    I("mqtt.port", mqtt_port, 0, 65535),
    S("mqtt.prefix", mqtt_prefix),
    S("mqtt.source", mqtt_source),
    S("mqtt.client_id", mqtt_client_id),
    S("mqtt.username", mqtt_username),
    S("mqtt.password", mqtt_password),
    S("mqtt.ca_file", mqtt_ca_file),
    I("mqtt.max_queue", mqtt_max_queue, 1, 10000000),
    I("mqtt.reconnect_s", mqtt_reconnect_s, 1, 3600),
    B("rest.enabled", rest_enabled),
    S("rest.bind", rest_bind),
    I("rest.port", rest_port, 0, 65535),
    S("rest.token", rest_token),
};

static const char *const groups[] = {"ns",       "storage",   "api",          "dedup",
                                     "registry", "downlink",  "log",          "stations",
                                     "callbacks", "device_types", "mqtt",     "rest",
                                     "soft"};

static int load_opt(const opt_t *o, config_setting_t *s, nsconf_t *c, const char *path,
                    char *err, size_t err_len)
{
    char *base = (char *)c + o->offset;
    int line = config_setting_source_line(s);
    switch (o->type) {
    case T_STR: {
        const char *v = config_setting_get_string(s);
        if (!v || strlen(v) >= o->size) {
            errbuf_set(err, err_len, "%s:%d: %s: expected a string of at most %zu bytes", path,
                       line, o->path, o->size - 1);
            return -1;
        }
        snprintf(base, o->size, "%s", v);
        return 0;
    }
    case T_BOOL:
        if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
            errbuf_set(err, err_len, "%s:%d: %s: expected true or false", path, line, o->path);
            return -1;
        }
        *(bool *)base = config_setting_get_bool(s);
        return 0;
    case T_INT:
    case T_DOUBLE: {
        int t = config_setting_type(s);
        double v;
        if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
            v = (double)config_setting_get_int64(s);
        else if (t == CONFIG_TYPE_FLOAT && o->type == T_DOUBLE)
            v = config_setting_get_float(s);
        else {
            errbuf_set(err, err_len, "%s:%d: %s: expected a number", path, line, o->path);
            return -1;
        }
        if (!(v >= o->lo && v <= o->hi)) {
            errbuf_set(err, err_len, "%s:%d: %s: %g is out of range %g .. %g", path, line,
                       o->path, v, o->lo, o->hi);
            return -1;
        }
        if (o->type == T_INT)
            *(int *)base = (int)v;
        else
            *(double *)base = v;
        return 0;
    }
    }
    return -1;
}

static int load_stations(config_setting_t *list, nsconf_t *c, const char *path, char *err,
                         size_t err_len)
{
    if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
        errbuf_set(err, err_len, "%s:%d: stations.list: expected a list ( {...}, ... )", path,
                   config_setting_source_line(list));
        return -1;
    }
    for (int i = 0; i < config_setting_length(list); i++) {
        config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
        const char *id = NULL, *key = NULL;
        char why[160];
        if (!config_setting_is_group(e) || !config_setting_lookup_string(e, "id", &id) ||
            !config_setting_lookup_string(e, "public_key", &key)) {
            errbuf_set(err, err_len, "%s:%d: stations.list: each entry needs id and public_key",
                       path, config_setting_source_line(e));
            return -1;
        }
        if (nsconf_add_station(c, id, key, why, sizeof why) < 0) {
            errbuf_set(err, err_len, "%s:%d: stations.list: %s", path,
                       config_setting_source_line(e), why);
            return -1;
        }
    }
    return 0;
}

/* A string member of a list entry, at most cap - 1 bytes. */
static const char *member_string(config_setting_t *m, const char *path, const char *key,
                                 size_t cap, char *err, size_t err_len)
{
    const char *v = config_setting_get_string(m);
    if (!v || strlen(v) >= cap) {
        errbuf_set(err, err_len, "%s:%d: %s: expected a string of at most %zu bytes", path,
                   config_setting_source_line(m), key, cap - 1);
        return NULL;
    }
    return v;
}

static bool is_list(config_setting_t *s)
{
    return config_setting_is_list(s) || config_setting_is_array(s);
}

static char *dup_checked(const char *v, char *err, size_t err_len)
{
    char *d = strdup(v);
    if (!d)
        errbuf_set(err, err_len, "out of memory");
    return d;
}

/* Upper-cases v into out when it is one of the words (matched without case). */
static bool one_of(const char *v, const char *const *words, size_t n, char *out, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        if (!strcasecmp(v, words[i])) {
            snprintf(out, cap, "%s", words[i]);
            return true;
        }
    }
    return false;
}

static int callback_member(nsconf_callback_t *cb, config_setting_t *m, const char *path,
                           const char *key, char *err, size_t err_len)
{
    static const char *const types[] = {"DATA", "SERVICE", "ERROR"};
    static const char *const media[] = {"simple", "batch"};
    static const char *const methods[] = {"GET", "POST", "PUT"};
    const char *name = config_setting_name(m);
    int line = config_setting_source_line(m);
    if (!strcmp(name, "downlink")) {
        if (config_setting_type(m) != CONFIG_TYPE_BOOL) {
            errbuf_set(err, err_len, "%s:%d: %s: expected true or false", path, line, key);
            return -1;
        }
        cb->downlink = config_setting_get_bool(m);
        return 0;
    }
    if (!strcmp(name, "headers")) {
        if (!is_list(m) || config_setting_length(m) > NSCONF_MAX_HEADERS) {
            errbuf_set(err, err_len, "%s:%d: %s: expected a list of at most %d strings", path,
                       line, key, NSCONF_MAX_HEADERS);
            return -1;
        }
        for (int i = 0; i < config_setting_length(m); i++) {
            config_setting_t *h = config_setting_get_elem(m, (unsigned)i);
            const char *v = member_string(h, path, key, NSCONF_TEMPLATE_MAX, err, err_len);
            if (!v)
                return -1;
            if (!strchr(v, ':')) {
                errbuf_set(err, err_len, "%s:%d: %s: \"Name: value\" expected", path, line, key);
                return -1;
            }
            if (!(cb->headers[cb->nheaders] = dup_checked(v, err, err_len)))
                return -1;
            cb->nheaders++;
        }
        return 0;
    }
    const char *v = member_string(m, path, key, NSCONF_TEMPLATE_MAX, err, err_len);
    if (!v)
        return -1;
    bool ok = true;
    if (!strcmp(name, "name"))
        ok = strlen(v) < sizeof cb->name && snprintf(cb->name, sizeof cb->name, "%s", v) >= 0;
    else if (!strcmp(name, "device_type"))
        ok = strlen(v) < sizeof cb->device_type &&
             snprintf(cb->device_type, sizeof cb->device_type, "%s", v) >= 0;
    else if (!strcmp(name, "type"))
        ok = one_of(v, types, 3, cb->type, sizeof cb->type);
    else if (!strcmp(name, "media"))
        ok = one_of(v, media, 2, cb->media, sizeof cb->media);
    else if (!strcmp(name, "method"))
        ok = one_of(v, methods, 3, cb->method, sizeof cb->method);
    else if (!strcmp(name, "content_type"))
        ok = strlen(v) < sizeof cb->content_type &&
             snprintf(cb->content_type, sizeof cb->content_type, "%s", v) >= 0;
    else if (!strcmp(name, "url") || !strcmp(name, "body")) {
        char **dst = name[0] == 'u' ? &cb->url : &cb->body;
        free(*dst);
        return (*dst = dup_checked(v, err, err_len)) ? 0 : -1;
    } else {
        errbuf_set(err, err_len, "%s:%d: %s: unknown key", path, line, key);
        return -1;
    }
    if (!ok) {
        errbuf_set(err, err_len, "%s:%d: %s: %s is not valid here (%s)", path, line, key, v,
                   !strcmp(name, "type")     ? "DATA, SERVICE or ERROR"
                   : !strcmp(name, "media")  ? "simple or batch"
                   : !strcmp(name, "method") ? "GET, POST or PUT"
                                             : "too long");
        return -1;
    }
    return 0;
}

static int load_callbacks(config_setting_t *list, nsconf_t *c, const char *path, char *err,
                          size_t err_len)
{
    if (!is_list(list)) {
        errbuf_set(err, err_len, "%s:%d: callbacks.list: expected a list ( {...}, ... )", path,
                   config_setting_source_line(list));
        return -1;
    }
    for (int i = 0; i < config_setting_length(list); i++) {
        config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
        int line = config_setting_source_line(e);
        char key[96];
        snprintf(key, sizeof key, "callbacks.list[%d]", i);
        if (!config_setting_is_group(e) || c->ncallbacks >= NSCONF_MAX_CALLBACKS) {
            errbuf_set(err, err_len, "%s:%d: %s: %s", path, line, key,
                       c->ncallbacks >= NSCONF_MAX_CALLBACKS ? "more than 64 callbacks"
                                                             : "expected a group { name = ...; }");
            return -1;
        }
        nsconf_callback_t cb = {.line = line, .type = "DATA", .media = "simple"};
        int rc = 0;
        for (int j = 0; rc == 0 && j < config_setting_length(e); j++) {
            config_setting_t *m = config_setting_get_elem(e, (unsigned)j);
            snprintf(key, sizeof key, "callbacks.list[%d].%s", i, config_setting_name(m));
            rc = callback_member(&cb, m, path, key, err, err_len);
        }
        const char *why = NULL;
        if (rc == 0) {
            if (!cb.name[0])
                why = "name: required";
            else if (!cb.url || !cb.url[0])
                why = "url: required";
            else if (!strcmp(cb.media, "batch") && cb.method[0] && strcmp(cb.method, "POST"))
                why = "method: a batch callback is a POST";
            else if (cb.downlink && strcmp(cb.type, "DATA"))
                why = "downlink: only a DATA callback answers downlinks";
            for (size_t k = 0; !why && k < c->ncallbacks; k++)
                if (!strcmp(c->callbacks[k].name, cb.name))
                    why = "name: used twice";
            if (why)
                errbuf_set(err, err_len, "%s:%d: callbacks.list[%d] (%s): %s", path, line, i,
                           cb.name[0] ? cb.name : "?", why);
        }
        if (rc < 0 || why) {
            callback_free(&cb);
            return -1;
        }
        nsconf_callback_t *n = realloc(c->callbacks, (c->ncallbacks + 1) * sizeof *n);
        if (!n) {
            callback_free(&cb);
            errbuf_set(err, err_len, "out of memory");
            return -1;
        }
        c->callbacks = n;
        c->callbacks[c->ncallbacks++] = cb;
    }
    return 0;
}

static int load_device_types(config_setting_t *list, nsconf_t *c, const char *path, char *err,
                             size_t err_len)
{
    if (!is_list(list)) {
        errbuf_set(err, err_len, "%s:%d: device_types.list: expected a list ( {...}, ... )",
                   path, config_setting_source_line(list));
        return -1;
    }
    for (int i = 0; i < config_setting_length(list); i++) {
        config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
        int line = config_setting_source_line(e);
        if (!config_setting_is_group(e) || c->ndevice_types >= NSCONF_MAX_DEVICE_TYPES) {
            errbuf_set(err, err_len, "%s:%d: device_types.list[%d]: %s", path, line, i,
                       config_setting_is_group(e) ? "more than 64 device types"
                                                  : "expected a group { name = ...; }");
            return -1;
        }
        nsconf_device_type_t t = {.line = line};
        for (int j = 0; j < config_setting_length(e); j++) {
            config_setting_t *m = config_setting_get_elem(e, (unsigned)j);
            const char *name = config_setting_name(m);
            char key[96];
            snprintf(key, sizeof key, "device_types.list[%d].%s", i, name);
            const char *v = NULL;
            if (!strcmp(name, "period_s")) {
                int ty = config_setting_type(m);
                t.period_s = ty == CONFIG_TYPE_FLOAT ? config_setting_get_float(m)
                             : ty == CONFIG_TYPE_INT || ty == CONFIG_TYPE_INT64
                                 ? (double)config_setting_get_int64(m)
                                 : -1;
                if (!(t.period_s >= 0 && t.period_s < 1e9)) {
                    errbuf_set(err, err_len, "%s:%d: %s: expected 0 (none) .. 1e9 s", path,
                               config_setting_source_line(m), key);
                    free(t.grammar);
                    return -1;
                }
            } else if (!strcmp(name, "name") &&
                       (v = member_string(m, path, key, sizeof t.name, err, err_len))) {
                snprintf(t.name, sizeof t.name, "%s", v);
            } else if (!strcmp(name, "grammar") &&
                       (v = member_string(m, path, key, NSCONF_TEMPLATE_MAX, err, err_len))) {
                free(t.grammar);
                if (!(t.grammar = dup_checked(v, err, err_len)))
                    return -1;
            } else {
                if (!v && (!strcmp(name, "name") || !strcmp(name, "grammar"))) {
                    free(t.grammar);
                    return -1; /* err set by member_string */
                }
                errbuf_set(err, err_len, "%s:%d: %s: unknown key", path,
                           config_setting_source_line(m), key);
                free(t.grammar);
                return -1;
            }
        }
        const char *why = !t.name[0] ? "name: required" : NULL;
        for (size_t k = 0; !why && k < c->ndevice_types; k++)
            if (!strcmp(c->device_types[k].name, t.name))
                why = "name: used twice";
        nsconf_device_type_t *n = why ? NULL : realloc(c->device_types,
                                                       (c->ndevice_types + 1) * sizeof *n);
        if (!n) {
            errbuf_set(err, err_len, "%s:%d: device_types.list[%d]: %s", path, line, i,
                       why ? why : "out of memory");
            free(t.grammar);
            return -1;
        }
        if (!t.grammar && !(t.grammar = dup_checked("", err, err_len)))
            return -1;
        c->device_types = n;
        c->device_types[c->ndevice_types++] = t;
    }
    return 0;
}

int nsconf_load(nsconf_t *c, const char *path, char *err, size_t err_len)
{
    config_t cf;
    config_init(&cf);
    int rc = -1;
    if (!config_read_file(&cf, path)) {
        if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
            errbuf_set(err, err_len, "%s: cannot read the file", path);
        else
            errbuf_set(err, err_len, "%s:%d: %s", path, config_error_line(&cf),
                       config_error_text(&cf));
        goto out;
    }
    /* unknown groups and keys are errors: a typo must not silently keep a default */
    config_setting_t *root = config_root_setting(&cf);
    for (int i = 0; i < config_setting_length(root); i++) {
        config_setting_t *g = config_setting_get_elem(root, (unsigned)i);
        const char *gname = config_setting_name(g);
        size_t k = 0;
        while (k < sizeof groups / sizeof groups[0] && strcmp(groups[k], gname))
            k++;
        if (k == sizeof groups / sizeof groups[0] || !config_setting_is_group(g)) {
            errbuf_set(err, err_len, "%s:%d: %s: unknown group", path,
                       config_setting_source_line(g), gname);
            goto out;
        }
        for (int j = 0; j < config_setting_length(g); j++) {
            config_setting_t *s = config_setting_get_elem(g, (unsigned)j);
            char full[128];
            snprintf(full, sizeof full, "%s.%s", gname, config_setting_name(s));
            int lrc = 1;
            if (!strcmp(full, "stations.list"))
                lrc = load_stations(s, c, path, err, err_len);
            else if (!strcmp(full, "callbacks.list"))
                lrc = load_callbacks(s, c, path, err, err_len);
            else if (!strcmp(full, "device_types.list"))
                lrc = load_device_types(s, c, path, err, err_len);
            if (lrc < 0)
                goto out;
            if (lrc == 0)
                continue;
            size_t o = 0;
            while (o < sizeof opts / sizeof opts[0] && strcmp(opts[o].path, full))
                o++;
            if (o == sizeof opts / sizeof opts[0]) {
                errbuf_set(err, err_len, "%s:%d: %s: unknown key", path,
                           config_setting_source_line(s), full);
                goto out;
            }
            if (load_opt(&opts[o], s, c, path, err, err_len) < 0)
                goto out;
        }
    }
    snprintf(c->config_file, sizeof c->config_file, "%s", path);
    rc = 0;
out:
    config_destroy(&cf);
    return rc;
}

int nsconf_read_key_file(const char *path, char out[NSCONF_KEY_Z85_LEN + 1], char *err,
                         size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        errbuf_set(err, err_len, "%s: cannot open the key file", path);
        return -1;
    }
    char line[256];
    int rc = -1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        /* a Z85 key alone on the line (it may start with '#': try the key first) */
        char *end = p + strlen(p);
        while (end > p && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (nsconf_key_valid(p)) {
            snprintf(out, NSCONF_KEY_Z85_LEN + 1, "%s", p);
            rc = 0;
            break;
        }
        static const char *const names[] = {"secret_key", "secret", "public_key", "public"};
        for (size_t k = 0; k < 4; k++) {
            size_t n = strlen(names[k]);
            if (!strncmp(p, names[k], n)) {
                char *q = p + n;
                while (isspace((unsigned char)*q))
                    q++;
                if (*q == ':' || *q == '=') {
                    q++;
                    while (isspace((unsigned char)*q))
                        q++;
                    if (nsconf_key_valid(q)) {
                        snprintf(out, NSCONF_KEY_Z85_LEN + 1, "%s", q);
                        rc = 0;
                    }
                }
                break;
            }
        }
        if (rc == 0)
            break;
    }
    fclose(f);
    if (rc < 0)
        errbuf_set(err, err_len, "%s: no 40-character Z85 key in the file", path);
    return rc;
}
