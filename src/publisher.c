/* publisher: ZeroMQ event PUB socket and command REP socket. Licence: MIT. */
#include "publisher.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "log.h"

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
};

const char *publisher_strerror(int code)
{
    switch (code) {
    case PUBLISHER_OK:
        return "success";
    case PUBLISHER_ERR_ARG:
        return "invalid argument";
    case PUBLISHER_ERR_ZMQ:
        return "ZeroMQ error";
    case PUBLISHER_ERR_NOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}

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

/* Answers one request (parts already read); never returns without a reply object unless
 * memory ran out. */
static json_object *handle_request(publisher_t *p, const char *data, size_t len, int parts)
{
    char err[512] = "";
    if (parts != 1)
        return error_reply(NULL, "a request is one message frame holding a JSON object");
    if (len == 0)
        return error_reply(NULL, "empty request: expected a JSON object like {\"cmd\": \"help\"}");
    if (memchr(data, '\0', len))
        return error_reply(NULL, "request contains a NUL byte: expected JSON text");

    json_tokener *tok = json_tokener_new();
    if (!tok)
        return NULL;
    json_object *req = json_tokener_parse_ex(tok, data, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!req || jerr != json_tokener_success) {
        json_object_put(req);
        snprintf(err, sizeof err, "request is not valid JSON: %s",
                 jerr == json_tokener_continue ? "unexpected end of input"
                                               : json_tokener_error_desc(jerr));
        return error_reply(NULL, err);
    }
    while (used < len &&
           (data[used] == ' ' || data[used] == '\n' || data[used] == '\r' || data[used] == '\t'))
        used++;
    if (used != len) {
        json_object_put(req);
        return error_reply(NULL, "request is not valid JSON: text after the JSON object");
    }
    if (!json_object_is_type(req, json_type_object)) {
        json_object_put(req);
        return error_reply(NULL, "request must be a JSON object like {\"cmd\": \"help\"}");
    }
    json_object *jcmd = NULL, *jid = NULL;
    json_object_object_get_ex(req, "id", &jid);
    bool has_cmd = json_object_object_get_ex(req, "cmd", &jcmd);
    if (!has_cmd || !json_object_is_type(jcmd, json_type_string)) {
        json_object *r = error_reply(NULL, has_cmd ? "\"cmd\" must be a string"
                                                   : "missing \"cmd\" (try {\"cmd\": \"help\"})");
        if (r && jid)
            json_object_object_add(r, "id", json_object_get(jid));
        json_object_put(req);
        return r;
    }
    const char *verb = json_object_get_string(jcmd);
    json_object *reply = json_object_new_object();
    if (!reply) {
        json_object_put(req);
        return NULL;
    }
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
        log_warn("Unknown command, cmd: %.64s", verb);
        snprintf(err, sizeof err, "unknown command '%.64s' (try {\"cmd\": \"help\"})", verb);
    }
    if (rc != 0) {
        json_object_put(reply);
        reply = error_reply(verb, err);
        if (reply && jid)
            json_object_object_add(reply, "id", json_object_get(jid));
    }
    json_object_put(req);
    return reply;
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
