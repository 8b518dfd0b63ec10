/* corelink: the station's link to the network core (corelink.h). Licence: MIT. */
#include "corelink.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <zmq.h>

#include "errbuf.h"
#include "hexutil.h"
#include "infile.h"
#include "jsonstrict.h"
#include "log.h"
#include "spool.h"
#include "timeutil.h"

#define DEFAULT_QUEUE 20000
#define EVENT_QUEUE 256
#define DEFAULT_WINDOW 16
#define LOG_EVERY_S 60.0
#define CORELINK_KEY_FILE_MAX 4096

/* A bounded FIFO of malloc()ed strings. */
typedef struct {
    char **item;
    size_t cap, head, n;
} ring_t;

struct corelink {
    corelink_config_t cfg;
    char **endpoints;
    char core_key[CORELINK_KEY_Z85_LEN + 1];
    char secret[CORELINK_KEY_Z85_LEN + 1];
    char public_key[CORELINK_KEY_Z85_LEN + 1];
    char *station_id, *version;
    spool_t *spool;

    pthread_mutex_t lock; /* frames, events, st */
    ring_t frames, events;
    corelink_stats_t st;
    atomic_int stop;
    pthread_t thread;
    bool started;

    /* link thread only */
    void *ctx, *sock, *mon;
    unsigned mon_serial;
    size_t ep_index;
    bool connected;
    uint64_t sent_upto;    /* batches with seq <= this were sent on this connection */
    uint64_t max_sent_seq; /* largest seq ever sent (or spooled by an earlier run) */
    double last_rx_s, await_since_s, last_tx_s, down_since_s;
    bool ping_out;
    char **pending; /* frames of the batch being built */
    size_t npending;
    size_t pending_bytes;
    double pending_since_s;
    double auth_logged_s, bad_logged_s, lost_logged_s, dl_logged_s;
    uint64_t lost_unlogged; /* frames lost to spool failures since the last log line */
    /* A refused handshake ends ZeroMQ's own reconnecting (libzmq treats it as a protocol
     * error): the link reopens the socket itself, with a growing delay. */
    double retry_at_s, retry_delay_s;
};

const char *corelink_strerror(int code)
{
    switch (code) {
    case CORELINK_OK:
        return "ok";
    case CORELINK_ERR_ARG:
        return "invalid argument";
    case CORELINK_ERR_FULL:
        return "queue full";
    case CORELINK_ERR_NOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}

/* ---- ring ------------------------------------------------------------------------------ */

static int ring_init(ring_t *r, size_t cap)
{
    r->item = calloc(cap, sizeof *r->item);
    r->cap = cap;
    r->head = r->n = 0;
    return r->item ? 0 : -1;
}

static bool ring_push(ring_t *r, char *s)
{
    if (r->n == r->cap)
        return false;
    r->item[(r->head + r->n++) % r->cap] = s;
    return true;
}

static char *ring_pop(ring_t *r)
{
    if (!r->n)
        return NULL;
    char *s = r->item[r->head];
    r->head = (r->head + 1) % r->cap;
    r->n--;
    return s;
}

static void ring_free(ring_t *r)
{
    char *s;
    while ((s = ring_pop(r)) != NULL)
        free(s);
    free(r->item);
    r->item = NULL;
}

/* ---- keys ------------------------------------------------------------------------------- */

static bool is_z85_key(const char *s, size_t len)
{
    static const char z85[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              ".-:+=^!/*?&<>()[]{}@%$#";
    if (len != CORELINK_KEY_Z85_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s[i] || !strchr(z85, s[i]))
            return false;
    return true;
}

int corelink_read_secret_key(const char *path, char out[CORELINK_KEY_Z85_LEN + 1], char *err,
                             size_t err_len)
{
    char *text = NULL;
    size_t len = 0;
    if (infile_read_all(path, "station key file", CORELINK_KEY_FILE_MAX, &text, &len, err,
                        err_len) != 0)
        return -1;
    struct stat sb;
    if (stat(path, &sb) == 0 && (sb.st_mode & 0077))
        log_warn("The station key file %s is readable by others (mode %03o): chmod 600 it", path,
                 (unsigned)(sb.st_mode & 0777));
    char bare[CORELINK_KEY_Z85_LEN + 1] = "";
    int nbare = 0;
    bool found = false;
    char *save = NULL;
    for (char *p = strtok_r(text, "\n", &save); p && !found; p = strtok_r(NULL, "\n", &save)) {
        while (isspace((unsigned char)*p))
            p++;
        size_t n = strlen(p);
        while (n && isspace((unsigned char)p[n - 1]))
            p[--n] = '\0';
        if (!n || *p == '#')
            continue;
        if (strncasecmp(p, "secret", 6) == 0) {
            p += 6;
            if (strncasecmp(p, "_key", 4) == 0 || strncasecmp(p, "-key", 4) == 0)
                p += 4;
            while (isspace((unsigned char)*p))
                p++;
            if (*p == ':' || *p == '=')
                p++;
            while (isspace((unsigned char)*p) || *p == '"')
                p++;
            n = strlen(p);
            while (n && (p[n - 1] == '"' || p[n - 1] == ';'))
                p[--n] = '\0';
            if (is_z85_key(p, n)) {
                memcpy(out, p, CORELINK_KEY_Z85_LEN + 1);
                found = true;
            }
        } else if (is_z85_key(p, n)) {
            memcpy(bare, p, CORELINK_KEY_Z85_LEN + 1);
            nbare++;
        }
    }
    explicit_bzero(text, len);
    free(text);
    if (!found && nbare == 1) {
        memcpy(out, bare, sizeof bare);
        found = true;
    }
    explicit_bzero(bare, sizeof bare);
    if (found)
        return 0;
    errbuf_set(err, err_len,
               "%s: no secret key found (expected one line with the 40-character Z85 secret key, "
               "alone or as \"secret_key = KEY\"; `sigfox-ns keygen` writes one)",
               path);
    return -1;
}

/* ---- socket ------------------------------------------------------------------------------ */

static void close_socket(corelink_t *l)
{
    if (l->sock) {
        zmq_socket_monitor(l->sock, NULL, 0);
        zmq_close(l->sock);
        l->sock = NULL;
    }
    if (l->mon) {
        zmq_close(l->mon);
        l->mon = NULL;
    }
    if (l->connected) {
        pthread_mutex_lock(&l->lock);
        l->st.connected = false;
        l->st.disconnects++;
        pthread_mutex_unlock(&l->lock);
    }
    l->connected = false;
}

/* Opens a DEALER as CURVE client towards the current endpoint, with a monitor. */
static int open_socket(corelink_t *l)
{
    const char *ep = l->endpoints[l->ep_index];
    void *s = zmq_socket(l->ctx, ZMQ_DEALER);
    if (!s)
        return -1;
    int zero = 0, one = 1, hwm = l->cfg.window + 64, ivl = 100, ivl_max = 5000;
    int hb_ivl = 5000, hb_timeout = 15000;
    int64_t maxmsg = CORELINK_MAX_MESSAGE;
    int rc = zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    rc |= zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof one);
    rc |= zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    rc |= zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    rc |= zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    rc |= zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    rc |= zmq_setsockopt(s, ZMQ_HEARTBEAT_IVL, &hb_ivl, sizeof hb_ivl);
    rc |= zmq_setsockopt(s, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout, sizeof hb_timeout);
    rc |= zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, l->core_key, CORELINK_KEY_Z85_LEN + 1);
    rc |= zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, l->public_key, CORELINK_KEY_Z85_LEN + 1);
    rc |= zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, l->secret, CORELINK_KEY_Z85_LEN + 1);
    char mon_ep[96];
    snprintf(mon_ep, sizeof mon_ep, "inproc://corelink-monitor-%p-%u", (void *)l, l->mon_serial++);
    if (rc != 0 ||
        zmq_socket_monitor(s, mon_ep,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
        log_error("Core link: cannot set up the socket, error: %s", zmq_strerror(zmq_errno()));
        zmq_close(s);
        return -1;
    }
    void *m = zmq_socket(l->ctx, ZMQ_PAIR);
    if (!m || zmq_connect(m, mon_ep) != 0) {
        if (m)
            zmq_close(m);
        zmq_close(s);
        return -1;
    }
    if (zmq_connect(s, ep) != 0) {
        log_error("Core link: cannot connect, endpoint: %s, error: %s", ep,
                  zmq_strerror(zmq_errno()));
        zmq_close(m);
        zmq_socket_monitor(s, NULL, 0);
        zmq_close(s);
        return -1;
    }
    l->sock = s;
    l->mon = m;
    l->down_since_s = timeutil_mono_s();
    pthread_mutex_lock(&l->lock);
    snprintf(l->st.endpoint, sizeof l->st.endpoint, "%s", ep);
    pthread_mutex_unlock(&l->lock);
    log_info("Core link connecting, endpoint: %s, station_id: %s", ep, l->station_id);
    return 0;
}

static void reopen(corelink_t *l, bool next_endpoint)
{
    close_socket(l);
    if (next_endpoint && l->cfg.nendpoints > 1)
        l->ep_index = (l->ep_index + 1) % l->cfg.nendpoints;
    if (open_socket(l) != 0)
        log_error("Core link: reconnect failed, endpoint: %s (retrying)",
                  l->endpoints[l->ep_index]);
}

static int send_text(corelink_t *l, const char *text, size_t len)
{
    if (!l->sock || !l->connected)
        return -1;
    if (zmq_send(l->sock, text, len, ZMQ_DONTWAIT) < 0)
        return -1;
    l->last_tx_s = timeutil_mono_s();
    return 0;
}

static void send_hello(corelink_t *l)
{
    json_object *o = json_object_new_object();
    if (!o)
        return;
    json_object_object_add(o, "type", json_object_new_string("hello"));
    json_object_object_add(o, "station_id", json_object_new_string(l->station_id));
    if (l->cfg.has_position) {
        json_object_object_add(o, "lat", json_object_new_double(l->cfg.latitude));
        json_object_object_add(o, "lng", json_object_new_double(l->cfg.longitude));
        json_object_object_add(o, "alt", json_object_new_double(l->cfg.altitude_m));
    }
    json_object_object_add(o, "tx", json_object_new_boolean(l->cfg.tx));
    json_object_object_add(o, "version", json_object_new_string(l->version));
    const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    send_text(l, t, strlen(t));
    json_object_put(o);
}

/* ---- monitor ------------------------------------------------------------------------------- */

static void on_monitor(corelink_t *l)
{
    for (;;) {
        zmq_msg_t m1, m2;
        zmq_msg_init(&m1);
        if (zmq_msg_recv(&m1, l->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m1);
            return;
        }
        uint16_t ev = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&m1) >= 6) {
            memcpy(&ev, zmq_msg_data(&m1), 2);
            memcpy(&value, (const char *)zmq_msg_data(&m1) + 2, 4);
        }
        zmq_msg_close(&m1);
        zmq_msg_init(&m2);
        zmq_msg_recv(&m2, l->mon, ZMQ_DONTWAIT); /* the endpoint */
        zmq_msg_close(&m2);
        const char *ep = l->endpoints[l->ep_index];
        double now = timeutil_mono_s();
        if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            l->connected = true;
            l->sent_upto = 0; /* resend everything not acknowledged, oldest first */
            l->last_rx_s = now;
            l->await_since_s = 0;
            l->ping_out = false;
            l->retry_at_s = 0;
            l->retry_delay_s = 1.0;
            pthread_mutex_lock(&l->lock);
            l->st.connected = true;
            l->st.connects++;
            pthread_mutex_unlock(&l->lock);
            log_notice("Core link up, endpoint: %s, station_id: %s, spooled_batches: %zu", ep,
                       l->station_id, spool_count(l->spool));
            send_hello(l);
            continue;
        }
        if (ev == ZMQ_EVENT_DISCONNECTED) {
            if (l->connected) {
                log_warn("Core link down, endpoint: %s (reconnecting; frames are spooled)", ep);
                pthread_mutex_lock(&l->lock);
                l->st.connected = false;
                l->st.disconnects++;
                pthread_mutex_unlock(&l->lock);
            }
            l->connected = false;
            l->down_since_s = now;
            continue;
        }
        /* A failed handshake: ZeroMQ will not retry; we do, later. */
        if (l->retry_at_s == 0) {
            if (l->retry_delay_s <= 0)
                l->retry_delay_s = 1.0;
            l->retry_at_s = now + l->retry_delay_s;
            l->retry_delay_s = l->retry_delay_s * 2 > 30.0 ? 30.0 : l->retry_delay_s * 2;
        }
        if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            pthread_mutex_lock(&l->lock);
            l->st.auth_failures++;
            pthread_mutex_unlock(&l->lock);
            if (now - l->auth_logged_s >= LOG_EVERY_S || l->auth_logged_s == 0) {
                l->auth_logged_s = now;
                log_error("Core refused this station's key, endpoint: %s, status: %u, "
                          "public_key: %s (add it to the core's station list)",
                          ep, (unsigned)value, l->public_key);
            }
        } else {
            if (now - l->auth_logged_s >= LOG_EVERY_S || l->auth_logged_s == 0) {
                l->auth_logged_s = now;
                log_error("Core link handshake failed, endpoint: %s, error: %s (wrong "
                          "core.public_key?)",
                          ep, zmq_strerror((int)value));
            }
        }
    }
}

/* ---- messages from the core -------------------------------------------------------------- */

static void bad_message(corelink_t *l, const char *why)
{
    pthread_mutex_lock(&l->lock);
    l->st.bad_messages++;
    pthread_mutex_unlock(&l->lock);
    double now = timeutil_mono_s();
    if (now - l->bad_logged_s >= 1.0) {
        l->bad_logged_s = now;
        log_warn("Core link: message from the core ignored, reason: %s", why);
    }
}

static int get_seq(json_object *o, uint64_t *seq)
{
    json_object *j;
    if (!json_object_object_get_ex(o, "seq", &j) || !json_object_is_type(j, json_type_int))
        return -1;
    int64_t v = json_object_get_int64(j);
    if (v < 0)
        return -1;
    *seq = (uint64_t)v;
    return 0;
}

static int parse_downlink(json_object *o, corelink_downlink_t *dl, const char **why)
{
    memset(dl, 0, sizeof *dl);
    json_object *j;
    if (!json_object_object_get_ex(o, "ep_id", &j) || !json_object_is_type(j, json_type_string) ||
        hex_to_ep_id(json_object_get_string(j), &dl->ep_id) != 0) {
        *why = "downlink: ep_id must be 8 hex digits";
        return -1;
    }
    if (!json_object_object_get_ex(o, "mc", &j) || !json_object_is_type(j, json_type_int) ||
        json_object_get_int64(j) < 0 || json_object_get_int64(j) > 4095) {
        *why = "downlink: mc must be an integer 0..4095";
        return -1;
    }
    dl->mc = (uint16_t)json_object_get_int64(j);
    if (!json_object_object_get_ex(o, "payload", &j)) {
        *why = "downlink: payload missing (16 hex digits or null)";
        return -1;
    }
    if (j) {
        const char *p = json_object_is_type(j, json_type_string) ? json_object_get_string(j) : "";
        if (strlen(p) != 16 || strspn(p, "0123456789abcdefABCDEF") != 16 ||
            hex_to_bytes(p, dl->payload, sizeof dl->payload) != 8) {
            *why = "downlink: payload must be 16 hex digits or null";
            return -1;
        }
        dl->has_payload = true;
    }
    if (json_object_object_get_ex(o, "dl_auth", &j) && j) {
        const char *a = json_object_is_type(j, json_type_string) ? json_object_get_string(j) : "";
        if (strlen(a) != 4 || strspn(a, "0123456789abcdefABCDEF") != 4 ||
            hex_to_bytes(a, dl->dl_auth, sizeof dl->dl_auth) != 2) {
            *why = "downlink: dl_auth must be 4 hex digits";
            return -1;
        }
        dl->has_dl_auth = true;
    }
    return 0;
}

/* The spool belongs to the link thread: its counters are copied into st for readers.
 * Caller holds l->lock, so that a counter changed with the spool (acks) and the spool's
 * own counters reach readers together. */
static void put_spool_stats_locked(corelink_t *l, const spool_stats_t *ss)
{
    l->st.spool_batches = ss->batches;
    l->st.spool_frames = ss->frames;
    l->st.spool_frames_dropped = ss->frames_dropped;
    l->st.spool_files_corrupt = ss->files_corrupt;
    l->st.next_seq = ss->next_seq;
}

static void sync_spool_stats(corelink_t *l)
{
    spool_stats_t ss;
    spool_get_stats(l->spool, &ss);
    pthread_mutex_lock(&l->lock);
    put_spool_stats_locked(l, &ss);
    pthread_mutex_unlock(&l->lock);
}

static void handle_message(corelink_t *l, const char *data, size_t len)
{
    char why[160] = "";
    json_object *o = jsonstrict_parse(data, len, 16, why, sizeof why);
    json_object *jt;
    if (!o) {
        char text[200];
        snprintf(text, sizeof text, "not JSON (%s)", why);
        bad_message(l, text);
        return;
    }
    if (!json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, "type", &jt) || !json_object_is_type(jt, json_type_string)) {
        bad_message(l, "not a JSON object with a \"type\"");
        json_object_put(o);
        return;
    }
    const char *type = json_object_get_string(jt);
    uint64_t seq;
    if (strcmp(type, "ack") == 0) {
        if (get_seq(o, &seq) != 0) {
            bad_message(l, "ack without a valid seq");
        } else {
            int rc = spool_ack(l->spool, seq);
            spool_stats_t ss;
            spool_get_stats(l->spool, &ss);
            pthread_mutex_lock(&l->lock);
            if (rc == SPOOL_OK)
                l->st.acks++;
            else
                l->st.acks_unknown++;
            /* A reader that sees the ack also sees the batch gone from the spool. */
            put_spool_stats_locked(l, &ss);
            pthread_mutex_unlock(&l->lock);
            if (rc == SPOOL_OK)
                log_debug("Batch acknowledged, seq: %" PRIu64, seq);
        }
    } else if (strcmp(type, "downlink") == 0) {
        corelink_downlink_t dl;
        const char *why = "";
        char err[256] = "";
        int ok = parse_downlink(o, &dl, &why) == 0;
        if (!ok)
            bad_message(l, why);
        else if (!l->cfg.on_downlink && !dl.has_payload)
            ok = 0; /* a decline asks nothing of a station that cannot transmit */
        else if (!l->cfg.on_downlink)
            snprintf(err, sizeof err, "this station has no downlink scheduler");
        else if (l->cfg.on_downlink(&dl, l->cfg.user, err, sizeof err) == 0)
            err[0] = '\0';
        else if (!err[0])
            snprintf(err, sizeof err, "refused");
        if (ok && err[0] && timeutil_mono_s() - l->dl_logged_s >= 1.0) {
            l->dl_logged_s = timeutil_mono_s(); /* at most one line a second */
            log_warn("Downlink from the core not scheduled, ep_id: %08" PRIX32 ", mc: %u, "
                     "reason: %s",
                     dl.ep_id, (unsigned)dl.mc, err);
        }
        pthread_mutex_lock(&l->lock);
        if (ok && !err[0])
            l->st.downlinks++;
        else if (ok)
            l->st.downlinks_failed++;
        pthread_mutex_unlock(&l->lock);
    } else if (strcmp(type, "error") == 0) {
        json_object *je = NULL;
        json_object_object_get_ex(o, "error", &je);
        char text[256];
        /* The core's text, escaped: it must not forge log lines. */
        log_escape_str(je ? json_object_get_string(je) : "", text, sizeof text);
        pthread_mutex_lock(&l->lock);
        l->st.core_errors++;
        pthread_mutex_unlock(&l->lock);
        if (get_seq(o, &seq) == 0) {
            /* The core refuses a batch only for its form (docs/ns.md "Wire protocol"):
             * resending it would fail again and hold a window slot forever. */
            int rc = spool_ack(l->spool, seq);
            spool_stats_t ss;
            spool_get_stats(l->spool, &ss);
            pthread_mutex_lock(&l->lock);
            put_spool_stats_locked(l, &ss);
            pthread_mutex_unlock(&l->lock);
            log_error("Core refused a batch, seq: %" PRIu64 ", error: %s%s", seq, text,
                      rc == SPOOL_OK ? " (dropped from the spool)" : "");
        } else
            log_error("Core reported an error, error: %s", text);
    } else if (strcmp(type, "pong") != 0) {
        bad_message(l, "unknown message type");
    }
    json_object_put(o);
}

static void receive(corelink_t *l)
{
    for (;;) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, l->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        l->last_rx_s = timeutil_mono_s();
        l->ping_out = false;
        int more = zmq_msg_more(&m);
        if (more) {
            bad_message(l, "multipart message");
            while (more) { /* drop the rest */
                zmq_msg_close(&m);
                zmq_msg_init(&m);
                if (zmq_msg_recv(&m, l->sock, ZMQ_DONTWAIT) < 0)
                    break;
                more = zmq_msg_more(&m);
            }
        } else {
            handle_message(l, zmq_msg_data(&m), zmq_msg_size(&m));
        }
        zmq_msg_close(&m);
    }
}

/* ---- batches ------------------------------------------------------------------------------ */

/* Builds the batch body from the pending frames, spools it, frees them. */
static void seal_batch(corelink_t *l)
{
    if (!l->npending)
        return;
    uint64_t seq = 0;
    char err[512] = "";
    char *body = NULL;
    int rc = spool_next_seq(l->spool, &seq);
    if (rc == SPOOL_OK) {
        size_t cap = l->pending_bytes + l->npending + 96;
        body = malloc(cap);
        if (body) {
            size_t k = (size_t)snprintf(body, cap, "{\"type\":\"batch\",\"seq\":%" PRIu64 ",\"frames\":[",
                                        seq);
            for (size_t i = 0; i < l->npending; i++) {
                if (i)
                    body[k++] = ',';
                size_t n = strlen(l->pending[i]);
                memcpy(body + k, l->pending[i], n);
                k += n;
            }
            memcpy(body + k, "]}", 3);
            k += 2;
            rc = spool_push(l->spool, seq, (uint32_t)l->npending, body, k, err, sizeof err);
        } else {
            rc = SPOOL_ERR_NOMEM;
            snprintf(err, sizeof err, "out of memory");
        }
    } else {
        snprintf(err, sizeof err, "no batch number (the spool's seq file cannot be written)");
    }
    free(body);
    spool_stats_t ss;
    spool_get_stats(l->spool, &ss);
    pthread_mutex_lock(&l->lock);
    if (rc == SPOOL_OK)
        l->st.batches++;
    else
        l->st.spool_failures++;
    put_spool_stats_locked(l, &ss);
    pthread_mutex_unlock(&l->lock);
    if (rc != SPOOL_OK) {
        /* A full or failing disk fails every batch: one line per 10 s, with the count. */
        l->lost_unlogged += l->npending;
        double now = timeutil_mono_s();
        if (l->lost_logged_s == 0 || now - l->lost_logged_s >= 10.0) {
            log_error("Batch not spooled, frames lost: %" PRIu64 ", error: %s", l->lost_unlogged,
                      err);
            l->lost_unlogged = 0;
            l->lost_logged_s = now;
        }
    }
    for (size_t i = 0; i < l->npending; i++)
        free(l->pending[i]);
    l->npending = 0;
    l->pending_bytes = 0;
}

/* Moves queued frames into the batch being built, sealing full batches. */
static void take_frames(corelink_t *l, double now)
{
    for (;;) {
        pthread_mutex_lock(&l->lock);
        char *f = ring_pop(&l->frames);
        pthread_mutex_unlock(&l->lock);
        if (!f)
            return;
        size_t n = strlen(f);
        if (l->npending && l->pending_bytes + n + l->npending + 96 > SPOOL_MAX_BODY)
            seal_batch(l);
        if (!l->npending)
            l->pending_since_s = now;
        l->pending[l->npending++] = f;
        l->pending_bytes += n;
        if (l->npending >= (size_t)l->cfg.batch_max_frames)
            seal_batch(l);
    }
}

/* Sends spooled batches not yet sent on this connection, within the window. */
static void send_batches(corelink_t *l, double now)
{
    while (l->connected) {
        size_t inflight = spool_find_after(l->spool, l->sent_upto);
        if (inflight >= (size_t)l->cfg.window || inflight >= spool_count(l->spool))
            return;
        spool_entry_t e;
        if (spool_entry(l->spool, inflight, &e) != SPOOL_OK)
            return;
        char *body = NULL;
        size_t len = 0;
        int rc = spool_read(l->spool, e.seq, &body, &len);
        if (rc == SPOOL_ERR_CORRUPT)
            continue; /* logged and dropped by the spool */
        if (rc != SPOOL_OK)
            return;
        bool was_idle = inflight == 0;
        rc = send_text(l, body, len);
        free(body);
        if (rc != 0)
            return; /* not connected after all, or the pipe is full: try later */
        if (was_idle && !l->ping_out)
            l->await_since_s = now;
        bool resent = e.seq <= l->max_sent_seq;
        l->sent_upto = e.seq;
        if (e.seq > l->max_sent_seq)
            l->max_sent_seq = e.seq;
        pthread_mutex_lock(&l->lock);
        l->st.batches_sent++;
        l->st.batches_resent += resent;
        pthread_mutex_unlock(&l->lock);
    }
}

static void send_events(corelink_t *l)
{
    while (l->connected) {
        pthread_mutex_lock(&l->lock);
        char *ev = ring_pop(&l->events);
        pthread_mutex_unlock(&l->lock);
        if (!ev)
            return;
        int rc = send_text(l, ev, strlen(ev));
        free(ev);
        pthread_mutex_lock(&l->lock);
        if (rc == 0)
            l->st.events_sent++;
        else
            l->st.events_dropped++;
        pthread_mutex_unlock(&l->lock);
    }
}

/* Ping when idle; reconnect when the core stays silent while we wait for it. */
static void liveness(corelink_t *l, double now)
{
    if (!l->sock)
        return;
    if (!l->connected) {
        /* Fail-over: another endpoint after timeout_s without a connection. */
        if (l->cfg.nendpoints > 1 && now - l->down_since_s > l->cfg.timeout_s) {
            log_warn("Core link: no connection for %.0f s, endpoint: %s: trying the next one",
                     now - l->down_since_s, l->endpoints[l->ep_index]);
            reopen(l, true);
        }
        return;
    }
    bool waiting = l->ping_out || spool_find_after(l->spool, l->sent_upto) > 0;
    if (!waiting) {
        l->await_since_s = 0;
        if (now - l->last_tx_s >= l->cfg.ping_s && now - l->last_rx_s >= l->cfg.ping_s) {
            static const char ping[] = "{\"type\":\"ping\"}";
            if (send_text(l, ping, sizeof ping - 1) == 0) {
                l->ping_out = true;
                l->await_since_s = now;
            }
        }
        return;
    }
    if (l->await_since_s == 0)
        l->await_since_s = now;
    double silent = now - (l->last_rx_s > l->await_since_s ? l->last_rx_s : l->await_since_s);
    if (silent > l->cfg.timeout_s) {
        log_warn("Core link: no answer from the core for %.0f s, endpoint: %s: reconnecting "
                 "(unacknowledged batches will be resent)",
                 silent, l->endpoints[l->ep_index]);
        pthread_mutex_lock(&l->lock);
        l->st.reconnects_timeout++;
        pthread_mutex_unlock(&l->lock);
        reopen(l, true);
    }
}

static void *link_thread(void *arg)
{
    corelink_t *l = arg;
    if (open_socket(l) != 0)
        log_error("Core link: cannot open the socket, endpoint: %s (retrying)",
                  l->endpoints[l->ep_index]);
    double stop_at = 0;
    for (;;) {
        double now = timeutil_mono_s();
        bool stopping = atomic_load(&l->stop);
        if (stopping && stop_at == 0) {
            stop_at = now + l->cfg.shutdown_wait_s;
            take_frames(l, now);
            seal_batch(l);
        }
        if (stopping && (spool_count(l->spool) == 0 || now >= stop_at))
            break;
        if (!l->sock && now - l->down_since_s > 1.0)
            reopen(l, false);
        if (l->retry_at_s > 0 && now >= l->retry_at_s) {
            l->retry_at_s = 0;
            reopen(l, true);
        }
        int timeout_ms = 20;
        zmq_pollitem_t items[2] = {{l->sock, 0, ZMQ_POLLIN, 0}, {l->mon, 0, ZMQ_POLLIN, 0}};
        if (l->sock) {
            int rc = zmq_poll(items, 2, timeout_ms);
            if (rc < 0 && zmq_errno() != EINTR) {
                log_error("Core link: poll failed, error: %s", zmq_strerror(zmq_errno()));
                reopen(l, false);
                continue;
            }
            if (items[1].revents & ZMQ_POLLIN)
                on_monitor(l);
            if (items[0].revents & ZMQ_POLLIN)
                receive(l);
        } else {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
        now = timeutil_mono_s();
        take_frames(l, now);
        if (l->npending && now - l->pending_since_s >= l->cfg.batch_interval_ms * 1e-3)
            seal_batch(l);
        send_batches(l, now);
        send_events(l);
        liveness(l, now);
        sync_spool_stats(l);
    }
    sync_spool_stats(l);
    close_socket(l);
    return NULL;
}

/* ---- public API ---------------------------------------------------------------------- */

/* The station names sigfox-ns accepts: letters, digits, '-', '_', '.', 1..63. */
static bool valid_station_id(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 63 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

corelink_t *corelink_create(const corelink_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg || !cfg->endpoints || cfg->nendpoints < 1 ||
        cfg->nendpoints > CORELINK_MAX_ENDPOINTS) {
        errbuf_set(err, err_len, "core link: 1 .. %d endpoints expected", CORELINK_MAX_ENDPOINTS);
        return NULL;
    }
    if (!cfg->station_id || !valid_station_id(cfg->station_id)) {
        errbuf_set(err, err_len,
                   "core link: station.id must be 1..63 letters, digits, '-', '_' or '.'");
        return NULL;
    }
    if (!cfg->core_public_key ||
        !is_z85_key(cfg->core_public_key, strlen(cfg->core_public_key))) {
        errbuf_set(err, err_len, "core link: core.public_key must be 40 Z85 characters");
        return NULL;
    }
    if (!cfg->secret_key || !is_z85_key(cfg->secret_key, strlen(cfg->secret_key))) {
        errbuf_set(err, err_len, "core link: the station secret key must be 40 Z85 characters");
        return NULL;
    }
    if (!cfg->spool_dir || !cfg->spool_dir[0]) {
        errbuf_set(err, err_len, "core link: core.spool_dir is required");
        return NULL;
    }
    if (cfg->batch_max_frames < 0 || cfg->batch_max_frames > CORELINK_BATCH_MAX_FRAMES) {
        errbuf_set(err, err_len, "core link: a batch holds 1 .. %d frames (seeds/000 §7.1.1.3)",
                   CORELINK_BATCH_MAX_FRAMES);
        return NULL;
    }
    corelink_t *l = calloc(1, sizeof *l);
    if (!l) {
        errbuf_set(err, err_len, "core link: out of memory");
        return NULL;
    }
    pthread_mutex_init(&l->lock, NULL);
    l->cfg = *cfg;
    corelink_config_t *c = &l->cfg;
    if (!c->queue_frames)
        c->queue_frames = DEFAULT_QUEUE;
    if (!c->batch_max_frames)
        c->batch_max_frames = CORELINK_BATCH_MAX_FRAMES;
    if (c->batch_interval_ms <= 0)
        c->batch_interval_ms = CORELINK_BATCH_INTERVAL_MS;
    if (c->window <= 0)
        c->window = DEFAULT_WINDOW;
    if (c->timeout_s <= 0)
        c->timeout_s = 30.0;
    if (c->ping_s <= 0)
        c->ping_s = 10.0;
    if (c->shutdown_wait_s < 0)
        c->shutdown_wait_s = 0;
    memcpy(l->core_key, cfg->core_public_key, sizeof l->core_key);
    memcpy(l->secret, cfg->secret_key, sizeof l->secret);
    l->endpoints = calloc(cfg->nendpoints, sizeof *l->endpoints);
    l->station_id = strdup(cfg->station_id);
    l->version = strdup(cfg->version ? cfg->version : "unknown");
    l->pending = calloc(CORELINK_BATCH_MAX_FRAMES, sizeof *l->pending);
    bool ok = l->endpoints && l->station_id && l->version && l->pending &&
              ring_init(&l->frames, c->queue_frames) == 0 && ring_init(&l->events, EVENT_QUEUE) == 0;
    for (size_t i = 0; ok && i < cfg->nendpoints; i++)
        ok = cfg->endpoints[i] && (l->endpoints[i] = strdup(cfg->endpoints[i])) != NULL;
    if (!ok) {
        errbuf_set(err, err_len, "core link: out of memory or empty endpoint");
        goto fail;
    }
    c->endpoints = NULL; /* not kept: l->endpoints */
    c->station_id = c->core_public_key = c->secret_key = c->version = c->spool_dir = NULL;
    if (zmq_curve_public(l->public_key, l->secret) != 0) {
        errbuf_set(err, err_len, "core link: cannot derive the public key (libzmq without CURVE?)");
        goto fail;
    }
    spool_config_t sc = {.dir = cfg->spool_dir, .max_frames = cfg->spool_max_frames};
    l->spool = spool_create(&sc, err, err_len);
    if (!l->spool)
        goto fail;
    if (spool_count(l->spool)) {
        spool_entry_t e;
        spool_entry(l->spool, spool_count(l->spool) - 1, &e);
        l->max_sent_seq = e.seq; /* an earlier run may have sent them */
    }
    sync_spool_stats(l); /* readers see the reopened spool, not zeros, before the thread runs */
    l->ctx = zmq_ctx_new();
    if (!l->ctx) {
        errbuf_set(err, err_len, "core link: cannot create a ZeroMQ context");
        goto fail;
    }
    if (pthread_create(&l->thread, NULL, link_thread, l) != 0) {
        errbuf_set(err, err_len, "core link: cannot start the thread");
        goto fail;
    }
    l->started = true;
    log_notice("Core link started, station_id: %s, endpoint: %s%s, public_key: %s, spool: %s",
               l->station_id, l->endpoints[0], cfg->nendpoints > 1 ? " (+ fail-over)" : "",
               l->public_key, cfg->spool_dir);
    return l;
fail:
    corelink_destroy(l);
    return NULL;
}

static int push_text(corelink_t *l, ring_t *r, char *s, bool frame)
{
    pthread_mutex_lock(&l->lock);
    bool ok = ring_push(r, s);
    if (frame) {
        l->st.frames_in++;
        l->st.frames_dropped += !ok;
    } else {
        l->st.events_dropped += !ok;
    }
    pthread_mutex_unlock(&l->lock);
    if (!ok)
        free(s);
    return ok ? CORELINK_OK : CORELINK_ERR_FULL;
}

static void count_rejected(corelink_t *l)
{
    pthread_mutex_lock(&l->lock);
    l->st.frames_rejected++;
    pthread_mutex_unlock(&l->lock);
}

int corelink_push_frame(corelink_t *l, json_object *event, const ul_frame_t *f)
{
    if (!l || !event || !f || !json_object_is_type(event, json_type_object))
        return CORELINK_ERR_ARG;
    if (!f->crc_ok || f->container_len > UL_MAX_CONTAINER_BYTES)
        return CORELINK_ERR_ARG;
    const char *text = json_object_to_json_string_ext(event, JSON_C_TO_STRING_PLAIN);
    size_t n = text ? strlen(text) : 0;
    if (n < 2 || n > CORELINK_MAX_FRAME_JSON || text[n - 1] != '}') {
        count_rejected(l);
        return CORELINK_ERR_ARG;
    }
    char hex[2 * UL_MAX_CONTAINER_BYTES + 1];
    bytes_to_hex(f->container, f->container_len, hex);
    bool has_id = json_object_object_get_ex(event, "station_id", NULL);
    size_t cap = n + sizeof hex + 200;
    char *s = malloc(cap);
    if (!s)
        return CORELINK_ERR_NOMEM;
    /* The published object is shared: splice the link's fields into its text instead of
     * changing it. n >= 2 and it ends with '}' (an object). */
    size_t k = n - 1;
    memcpy(s, text, k);
    bool empty = n == 2;
    k += (size_t)snprintf(s + k, cap - k, "%s\"container\":\"%s\"", empty ? "" : ",", hex);
    if (!has_id)
        k += (size_t)snprintf(s + k, cap - k, ",\"station_id\":\"%s\"", l->station_id);
    if (f->msg.bf)
        k += (size_t)snprintf(s + k, cap - k, ",\"tx\":%s", l->cfg.tx ? "true" : "false");
    snprintf(s + k, cap - k, "}");
    return push_text(l, &l->frames, s, true);
}

/* {"type":TYPE,KEY:obj} into the (unspooled) event queue. */
static int push_wrapped(corelink_t *l, const char *type, const char *key, json_object *obj)
{
    if (!l || !obj || !json_object_is_type(obj, json_type_object))
        return CORELINK_ERR_ARG;
    const char *text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
    size_t n = text ? strlen(text) : 0;
    if (n < 2 || n > CORELINK_MAX_FRAME_JSON)
        return CORELINK_ERR_ARG;
    size_t cap = n + strlen(type) + strlen(key) + 32;
    char *s = malloc(cap);
    if (!s)
        return CORELINK_ERR_NOMEM;
    snprintf(s, cap, "{\"type\":\"%s\",\"%s\":%s}", type, key, text);
    return push_text(l, &l->events, s, false);
}

int corelink_push_event(corelink_t *l, json_object *event)
{
    return push_wrapped(l, "event", "event", event);
}

int corelink_push_softframe(corelink_t *l, json_object *softframe)
{
    return push_wrapped(l, "softframe", "softframe", softframe);
}

void corelink_get_stats(corelink_t *l, corelink_stats_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    *out = l->st;
    pthread_mutex_unlock(&l->lock);
}

json_object *corelink_stats_json(corelink_t *l)
{
    corelink_stats_t s;
    corelink_get_stats(l, &s);
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "connected", json_object_new_boolean(s.connected));
    json_object_object_add(o, "endpoint", json_object_new_string(s.endpoint));
#define PUT(f) json_object_object_add(o, #f, json_object_new_int64((int64_t)s.f))
    PUT(frames_in);
    PUT(frames_dropped);
    PUT(frames_rejected);
    PUT(batches);
    PUT(batches_sent);
    PUT(batches_resent);
    PUT(acks);
    PUT(acks_unknown);
    PUT(connects);
    PUT(disconnects);
    PUT(reconnects_timeout);
    PUT(auth_failures);
    PUT(core_errors);
    PUT(bad_messages);
    PUT(downlinks);
    PUT(downlinks_failed);
    PUT(events_sent);
    PUT(events_dropped);
    PUT(spool_failures);
    PUT(spool_batches);
    PUT(spool_frames);
    PUT(spool_frames_dropped);
    PUT(spool_files_corrupt);
    PUT(next_seq);
#undef PUT
    return o;
}

void corelink_destroy(corelink_t *l)
{
    if (!l)
        return;
    if (l->started) {
        atomic_store(&l->stop, 1);
        pthread_join(l->thread, NULL);
        corelink_stats_t s;
        corelink_get_stats(l, &s);
        log_notice("Core link stopped, frames: %" PRIu64 ", frames_dropped: %" PRIu64
                   ", batches: %" PRIu64 ", batches_sent: %" PRIu64 ", acks: %" PRIu64
                   ", auth_failures: %" PRIu64 ", spooled_batches: %zu, spooled_frames: %zu%s",
                   s.frames_in, s.frames_dropped, s.batches, s.batches_sent, s.acks,
                   s.auth_failures, s.spool_batches, s.spool_frames,
                   s.spool_batches ? " (sent at the next start)" : "");
    }
    close_socket(l);
    if (l->ctx)
        zmq_ctx_term(l->ctx);
    for (size_t i = 0; l->pending && i < l->npending; i++)
        free(l->pending[i]);
    free(l->pending);
    spool_destroy(l->spool);
    ring_free(&l->frames);
    ring_free(&l->events);
    for (size_t i = 0; l->endpoints && i < l->cfg.nendpoints; i++)
        free(l->endpoints[i]);
    free(l->endpoints);
    free(l->station_id);
    free(l->version);
    pthread_mutex_destroy(&l->lock);
    explicit_bzero(l->secret, sizeof l->secret);
    free(l);
}
