/* publisher: ZeroMQ event PUB socket and command REP socket. Licence: MIT. */
#include "publisher.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "jsonstrict.h"
#include "log.h"
#include "timeutil.h"

#define DEFAULT_SEND_HWM 10000
#define CLOSE_LINGER_MS 200

typedef struct {
    char *verb;
    char *help;
    publisher_cmd_fn fn;
    void *user;
} command_t;

struct publisher {
    void *ctx;
    void *pub;                /* NULL: no event socket */
    void *rep;                /* NULL: no command socket */
    pthread_mutex_t pub_lock; /* pub and stats */
    command_t *cmds;
    size_t ncmds;
    publisher_stats_t stats;
    log_ratelimit_t bad_log; /* poll thread only */
};

char *publisher_time_utc(double unix_s, char *out, size_t out_len)
{
    double whole = floor(unix_s);
    time_t t = (time_t)whole;
    long us = lround((unix_s - whole) * 1e6);
    if (us >= 1000000) { /* rounding carried into the next second */
        t++;
        us -= 1000000;
    }
    struct tm tm;
    gmtime_r(&t, &tm);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, out_len, "%s.%06ldZ", date, us);
    return out;
}

/* Binds sock to endpoint with a message that helps with the usual ipc:// problem. */
static int bind_endpoint(void *sock, const char *endpoint, const char *what, char *err,
                         size_t err_len)
{
    if (zmq_bind(sock, endpoint) == 0)
        return 0;
    int e = zmq_errno();
    if (strncmp(endpoint, "ipc://", 6) == 0 && (e == ENOENT || e == EACCES)) {
        const char *path = endpoint + 6;
        const char *slash = strrchr(path, '/');
        int dirlen = slash ? (int)(slash - path) : 1;
        snprintf(err, err_len,
                 "cannot bind the %s socket to %s: %s (the directory %.*s must exist and be "
                 "writable; the systemd unit's RuntimeDirectory=sigfoxd creates /run/sigfoxd)",
                 what, endpoint, zmq_strerror(e), dirlen, slash ? path : ".");
    } else {
        snprintf(err, err_len, "cannot bind the %s socket to %s: %s", what, endpoint,
                 zmq_strerror(e));
    }
    return PUBLISHER_ERR_ZMQ;
}

publisher_t *publisher_create(const publisher_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg) {
        snprintf(err, err_len, "publisher_create: no configuration");
        return NULL;
    }
    publisher_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->pub_lock, NULL);
    p->ctx = zmq_ctx_new();
    if (!p->ctx) {
        snprintf(err, err_len, "cannot create a ZeroMQ context: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    int linger = CLOSE_LINGER_MS;
    if (cfg->pub_endpoint && cfg->pub_endpoint[0]) {
        p->pub = zmq_socket(p->ctx, ZMQ_PUB);
        int hwm = cfg->send_hwm > 0 ? cfg->send_hwm : DEFAULT_SEND_HWM;
        if (!p->pub || zmq_setsockopt(p->pub, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
            zmq_setsockopt(p->pub, ZMQ_LINGER, &linger, sizeof linger) != 0) {
            snprintf(err, err_len, "cannot create the event socket: %s", zmq_strerror(zmq_errno()));
            goto fail;
        }
        if (bind_endpoint(p->pub, cfg->pub_endpoint, "event", err, err_len) != 0)
            goto fail;
    }
    if (cfg->cmd_endpoint && cfg->cmd_endpoint[0]) {
        p->rep = zmq_socket(p->ctx, ZMQ_REP);
        int64_t max = PUBLISHER_MAX_REQUEST_BYTES;
        int zero = 0;
        if (!p->rep || zmq_setsockopt(p->rep, ZMQ_MAXMSGSIZE, &max, sizeof max) != 0 ||
            zmq_setsockopt(p->rep, ZMQ_LINGER, &zero, sizeof zero) != 0) {
            snprintf(err, err_len, "cannot create the command socket: %s",
                     zmq_strerror(zmq_errno()));
            goto fail;
        }
        if (bind_endpoint(p->rep, cfg->cmd_endpoint, "command", err, err_len) != 0)
            goto fail;
    }
    return p;
fail:
    publisher_destroy(p);
    return NULL;
}

int publisher_add_command(publisher_t *p, const char *verb, publisher_cmd_fn fn, void *user,
                          const char *help)
{
    if (!p || !verb || !fn || strcmp(verb, "help") == 0)
        return PUBLISHER_ERR_ARG;
    for (size_t i = 0; i < p->ncmds; i++)
        if (strcmp(p->cmds[i].verb, verb) == 0)
            return PUBLISHER_ERR_ARG;
    command_t *v = realloc(p->cmds, (p->ncmds + 1) * sizeof *v);
    if (!v)
        return PUBLISHER_ERR_NOMEM;
    p->cmds = v;
    command_t *c = &p->cmds[p->ncmds];
    c->verb = strdup(verb);
    c->help = strdup(help ? help : "");
    if (!c->verb || !c->help) {
        free(c->verb);
        free(c->help);
        return PUBLISHER_ERR_NOMEM;
    }
    c->fn = fn;
    c->user = user;
    p->ncmds++;
    return 0;
}

int publisher_publish(publisher_t *p, const char *topic, const char *json)
{
    if (!p || !topic || !json)
        return PUBLISHER_ERR_ARG;
    if (!p->pub)
        return 0;
    pthread_mutex_lock(&p->pub_lock);
    /* PUB drops at the high-water mark instead of blocking; DONTWAIT makes sure. */
    int rc = 0;
    if (zmq_send(p->pub, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(p->pub, json, strlen(json), ZMQ_DONTWAIT) < 0) {
        p->stats.events_failed++;
        rc = PUBLISHER_ERR_ZMQ;
    } else {
        p->stats.events++;
    }
    pthread_mutex_unlock(&p->pub_lock);
    return rc;
}

int publisher_publish_json(publisher_t *p, const char *topic, json_object *obj)
{
    if (!obj)
        return PUBLISHER_ERR_ARG;
    return publisher_publish(p, topic, json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
}

/* Builds an error reply. */
static json_object *error_reply(const char *verb, const char *msg)
{
    json_object *r = json_object_new_object();
    if (!r)
        return NULL;
    json_object_object_add(r, "ok", json_object_new_boolean(0));
    json_object_object_add(r, "cmd", verb ? json_object_new_string(verb) : NULL);
    json_object_object_add(r, "error", json_object_new_string(msg));
    return r;
}

static int help_command(publisher_t *p, json_object *reply)
{
    json_object *list = json_object_new_array();
    if (!list)
        return -1;
    json_object *h = json_object_new_object();
    json_object_object_add(h, "cmd", json_object_new_string("help"));
    json_object_object_add(h, "help", json_object_new_string("list the commands"));
    json_object_array_add(list, h);
    for (size_t i = 0; i < p->ncmds; i++) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "cmd", json_object_new_string(p->cmds[i].verb));
        json_object_object_add(c, "help", json_object_new_string(p->cmds[i].help));
        json_object_array_add(list, c);
    }
    json_object_object_add(reply, "commands", list);
    return 0;
}

/* Malformed requests and unknown verbs are logged, at most this many per interval: a peer
 * must not be able to flood the journal. */
#define BAD_REQUEST_LOG_BURST 10
#define BAD_REQUEST_LOG_INTERVAL_S 60.0
/* The request "id" is echoed only when it is a sane JSON scalar. */
#define ID_MAX_BYTES 128
#define ID_MAX_ABS_INT 9007199254740992LL /* 2^53: exact in every JSON reader */

/* Logs a refused request (reason, and the verb when there was one), rate-limited. */
static void log_bad_request(publisher_t *p, const char *verb, const char *why)
{
    unsigned long long dropped;
    if (!log_ratelimit(&p->bad_log, timeutil_mono_s(), BAD_REQUEST_LOG_BURST,
                       BAD_REQUEST_LOG_INTERVAL_S, &dropped))
        return;
    char ev[160], ew[600];
    log_escape_str(why, ew, sizeof ew);
    if (verb)
        log_escape_str(verb, ev, sizeof ev);
    if (dropped)
        log_warn("Command refused, cmd: %s, error: %s, similar_suppressed: %llu",
                 verb ? ev : "(none)", ew, dropped);
    else
        log_warn("Command refused, cmd: %s, error: %s", verb ? ev : "(none)", ew);
}

/* The request's "id" when it may be echoed: a string of at most ID_MAX_BYTES or an integer
 * with |id| <= 2^53 (json-c saturates larger ones, which would echo a different number).
 * Returns 0 (with *out set, NULL when absent) or -1. */
static int sane_id(json_object *req, json_object **out)
{
    json_object *jid = NULL;
    *out = NULL;
    if (!json_object_object_get_ex(req, "id", &jid))
        return 0;
    if (json_object_is_type(jid, json_type_string) &&
        json_object_get_string_len(jid) <= ID_MAX_BYTES) {
        *out = jid;
        return 0;
    }
    if (json_object_is_type(jid, json_type_int)) {
        int64_t v = json_object_get_int64(jid);
        if (v >= -ID_MAX_ABS_INT && v <= ID_MAX_ABS_INT &&
            (v < 0 || json_object_get_uint64(jid) == (uint64_t)v)) {
            *out = jid;
            return 0;
        }
    }
    return -1;
}

/* Answers one request (parts already read); never returns without a reply object unless
 * memory ran out. Every string the reply echoes has been validated as UTF-8 without NUL,
 * so the reply is always valid UTF-8 JSON. */
static json_object *handle_request(publisher_t *p, const char *data, size_t len, int parts)
{
    char err[512] = "", why[256] = "";
    json_object *req = NULL, *reply = NULL, *jid = NULL;
    const char *verb = NULL;
    if (parts != 1) {
        snprintf(err, sizeof err, "a request is one message frame holding a JSON object");
    } else if (len == 0) {
        snprintf(err, sizeof err, "empty request: expected a JSON object like {\"cmd\": \"help\"}");
    } else if (memchr(data, '\0', len)) {
        snprintf(err, sizeof err, "request contains a NUL byte: expected JSON text");
    } else if (jsonstrict_check(data, len, 0, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "request is not valid JSON: %s", why);
    } else {
        /* Skip leading white space to see what the value is. */
        size_t i = 0;
        while (i < len && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
            i++;
        if (data[i] != '{')
            snprintf(err, sizeof err, "request must be a JSON object like {\"cmd\": \"help\"}");
        else if (!(req = jsonstrict_parse(data, len, 0, why, sizeof why)))
            snprintf(err, sizeof err, "request is not valid JSON: %s", why);
    }
    if (req && sane_id(req, &jid) != 0)
        snprintf(err, sizeof err,
                 "\"id\" must be a string of at most %d bytes or an integer with |id| <= 2^53",
                 ID_MAX_BYTES);
    json_object *jcmd = NULL;
    if (req && !err[0]) {
        bool has_cmd = json_object_object_get_ex(req, "cmd", &jcmd);
        if (!has_cmd)
            snprintf(err, sizeof err, "missing \"cmd\" (try {\"cmd\": \"help\"})");
        else if (!json_object_is_type(jcmd, json_type_string))
            snprintf(err, sizeof err, "\"cmd\" must be a string");
        else
            verb = json_object_get_string(jcmd);
    }
    if (!verb) {
        log_bad_request(p, NULL, err);
        reply = error_reply(NULL, err);
        goto out;
    }
    reply = json_object_new_object();
    if (!reply)
        goto out;
    json_object_object_add(reply, "ok", json_object_new_boolean(1));
    json_object_object_add(reply, "cmd", json_object_new_string(verb));
    if (jid)
        json_object_object_add(reply, "id", json_object_get(jid));

    int rc = -1;
    bool known = false;
    if (strcmp(verb, "help") == 0) {
        known = true;
        rc = help_command(p, reply);
        if (rc != 0)
            snprintf(err, sizeof err, "out of memory");
    }
    for (size_t i = 0; !known && i < p->ncmds; i++) {
        if (strcmp(p->cmds[i].verb, verb) == 0) {
            known = true;
            rc = p->cmds[i].fn(req, reply, p->cmds[i].user, err, sizeof err);
            if (rc != 0 && !err[0])
                snprintf(err, sizeof err, "command failed");
        }
    }
    if (!known) {
        char ev[160];
        snprintf(err, sizeof err, "unknown command '%s' (try {\"cmd\": \"help\"})",
                 log_escape_str(verb, ev, sizeof ev));
        log_bad_request(p, verb, "unknown command");
    }
    if (rc != 0) {
        json_object_put(reply);
        reply = error_reply(verb, err);
        if (reply && jid)
            json_object_object_add(reply, "id", json_object_get(jid));
    }
out:
    json_object_put(req);
    return reply;
}

json_object *publisher_handle_request(publisher_t *p, const char *data, size_t len, int parts)
{
    if (!p || (!data && len))
        return NULL;
    return handle_request(p, data ? data : "", len, parts);
}

/* Reads every part of one request, answers it. Returns 1 when a reply was sent, 0 when
 * nothing was waiting, PUBLISHER_ERR_ZMQ on a socket failure. */
static int serve_one(publisher_t *p)
{
    zmq_msg_t first;
    zmq_msg_init(&first);
    if (zmq_msg_recv(&first, p->rep, ZMQ_DONTWAIT) < 0) {
        int e = zmq_errno();
        zmq_msg_close(&first);
        return (e == EAGAIN || e == EINTR) ? 0 : PUBLISHER_ERR_ZMQ;
    }
    int parts = 1;
    int more = zmq_msg_more(&first);
    while (more) { /* drain the rest so that the REP state machine can reply */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        if (zmq_msg_recv(&extra, p->rep, 0) < 0) {
            zmq_msg_close(&extra);
            break;
        }
        parts++;
        more = zmq_msg_more(&extra);
        zmq_msg_close(&extra);
    }
    json_object *reply = handle_request(p, zmq_msg_data(&first), zmq_msg_size(&first), parts);
    zmq_msg_close(&first);
    const char *text = reply ? json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN)
                             : "{\"ok\":false,\"cmd\":null,\"error\":\"out of memory\"}";
    json_object *jok = NULL;
    bool ok = reply && json_object_object_get_ex(reply, "ok", &jok) && json_object_get_boolean(jok);
    int rc = zmq_send(p->rep, text, strlen(text), 0) < 0 ? PUBLISHER_ERR_ZMQ : 1;
    json_object_put(reply);
    pthread_mutex_lock(&p->pub_lock);
    p->stats.commands++;
    if (!ok)
        p->stats.command_errors++;
    pthread_mutex_unlock(&p->pub_lock);
    return rc;
}

int publisher_poll(publisher_t *p, int timeout_ms)
{
    if (!p)
        return PUBLISHER_ERR_ARG;
    if (!p->rep) {
        struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* a signal ends it early, like zmq_poll */
        return 0;
    }
    zmq_pollitem_t item = {p->rep, 0, ZMQ_POLLIN, 0};
    int n = zmq_poll(&item, 1, timeout_ms);
    if (n < 0)
        return zmq_errno() == EINTR ? 0 : PUBLISHER_ERR_ZMQ;
    int answered = 0;
    /* Answer what is queued, but give the caller its loop back after a burst. */
    while (answered < 64) {
        int rc = serve_one(p);
        if (rc < 0) {
            log_error("Command socket failed, error: %s", zmq_strerror(zmq_errno()));
            return PUBLISHER_ERR_ZMQ;
        }
        if (rc == 0)
            break;
        answered++;
    }
    return answered;
}

void publisher_get_stats(publisher_t *p, publisher_stats_t *stats)
{
    if (!p || !stats)
        return;
    pthread_mutex_lock(&p->pub_lock);
    *stats = p->stats;
    pthread_mutex_unlock(&p->pub_lock);
}

void publisher_destroy(publisher_t *p)
{
    if (!p)
        return;
    if (p->pub)
        zmq_close(p->pub);
    if (p->rep)
        zmq_close(p->rep);
    if (p->ctx)
        zmq_ctx_term(p->ctx); /* waits up to the PUB linger for queued events */
    for (size_t i = 0; i < p->ncmds; i++) {
        free(p->cmds[i].verb);
        free(p->cmds[i].help);
    }
    free(p->cmds);
    pthread_mutex_destroy(&p->pub_lock);
    free(p);
}
