/* delivery: anti-replay verdict -> topic -> event built once -> sinks. Licence: MIT.
 * include/delivery.h describes the rules. */
#include "delivery.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"
#include "framejson.h"
#include "timeutil.h"

#define DEFAULT_DAILY_MESSAGES 140 /* seeds/000 §3.4: the largest subscription */

typedef struct {
    unsigned classes;
    delivery_sink_fn fn;
    void *user;
} sink_t;

typedef struct {
    FILE *f;
    bool failed;
} lines_t;

/* An event held back until the state is on disk: the JSON and a copy of its struct. */
typedef struct {
    char topic[48];
    unsigned cls;
    bool suppressed;
    int verdict;
    json_object *json;
    enum { HELD_NONE, HELD_FRAME, HELD_MESSAGE, HELD_DOWNLINK } kind;
    union {
        rx_frame_t frame;
        rx_message_t message;
        dlsched_event_t downlink;
    } u;
} held_t;

/* The delivery holding this thread's events (delivery_hold), or NULL. */
static _Thread_local delivery_t *holding;

struct delivery {
    delivery_config_t cfg;
    char station_id[EVJSON_STATION_ID_MAX + 1];

    pthread_mutex_t lock; /* anchor, scheduler pointer, counters */
    double anchor_t_s, anchor_unix_s;
    dlsched_t *sched;
    delivery_stats_t st;
    double soft_tokens, soft_last_t; /* softframe bucket; soft_last_t < 0: empty history */

    pthread_mutex_t fan; /* one event at a time through the sinks */
    sink_t *sinks;
    size_t nsinks;
    lines_t **lines; /* delivery_add_lines() outputs (the sinks point at them) */
    size_t nlines;

    held_t *held; /* the holding thread's events (only that thread touches them) */
    size_t nheld, held_cap;
};

delivery_t *delivery_create(const delivery_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg) {
        errbuf_set(err, err_len, "delivery: no configuration");
        return NULL;
    }
    if (cfg->station_id && strlen(cfg->station_id) > EVJSON_STATION_ID_MAX) {
        errbuf_set(err, err_len, "station id longer than %d characters", EVJSON_STATION_ID_MAX);
        return NULL;
    }
    delivery_t *d = calloc(1, sizeof *d);
    if (!d) {
        errbuf_set(err, err_len, "delivery: out of memory");
        return NULL;
    }
    d->cfg = *cfg;
    snprintf(d->station_id, sizeof d->station_id, "%s", cfg->station_id ? cfg->station_id : "");
    d->cfg.station_id = d->station_id;
    d->soft_last_t = -1;
    pthread_mutex_init(&d->lock, NULL);
    pthread_mutex_init(&d->fan, NULL);
    return d;
}

void delivery_destroy(delivery_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nlines; i++)
        free(d->lines[i]);
    free(d->lines);
    for (size_t i = 0; i < d->nheld; i++)
        json_object_put(d->held[i].json);
    free(d->held);
    free(d->sinks);
    pthread_mutex_destroy(&d->lock);
    pthread_mutex_destroy(&d->fan);
    free(d);
}

int delivery_add_sink(delivery_t *d, unsigned classes, delivery_sink_fn fn, void *user)
{
    if (!d || !fn || !(classes & DELIVERY_ALL))
        return -1;
    pthread_mutex_lock(&d->fan);
    sink_t *s = realloc(d->sinks, (d->nsinks + 1) * sizeof *s);
    if (s) {
        d->sinks = s;
        d->sinks[d->nsinks++] = (sink_t){classes, fn, user};
    }
    pthread_mutex_unlock(&d->fan);
    return s ? 0 : -1;
}

static void publish_sink(const delivery_event_t *ev, void *user)
{
    publisher_publish_json(user, ev->topic, ev->json);
}

int delivery_add_publisher(delivery_t *d, publisher_t *pub, unsigned classes)
{
    return pub ? delivery_add_sink(d, classes, publish_sink, pub) : -1;
}

/* Runs under the fan lock: one line per event, whatever thread sent it. */
static void lines_sink(const delivery_event_t *ev, void *user)
{
    lines_t *l = user;
    if (l->failed)
        return;
    fputs(json_object_to_json_string_ext(ev->json, JSON_C_TO_STRING_PLAIN), l->f);
    fputc('\n', l->f);
    /* Consumers of a pipe (jq, tests) see each event at once; a closed pipe (`| head`)
     * ends a replay instead of decoding the rest for nobody. */
    if (fflush(l->f) != 0 || ferror(l->f)) {
        log_error("Cannot write events, error: %s", strerror(errno));
        l->failed = true;
    }
}

int delivery_add_lines(delivery_t *d, FILE *f, unsigned classes)
{
    if (!d || !f)
        return -1;
    lines_t *l = calloc(1, sizeof *l);
    pthread_mutex_lock(&d->fan);
    lines_t **all = l ? realloc(d->lines, (d->nlines + 1) * sizeof *all) : NULL;
    if (all) {
        d->lines = all;
        d->lines[d->nlines++] = l;
    }
    pthread_mutex_unlock(&d->fan);
    if (!all) {
        free(l);
        return -1;
    }
    l->f = f;
    return delivery_add_sink(d, classes, lines_sink, l);
}

bool delivery_output_failed(delivery_t *d)
{
    if (!d)
        return false;
    bool failed = false;
    pthread_mutex_lock(&d->fan);
    for (size_t i = 0; i < d->nlines; i++)
        failed |= d->lines[i]->failed;
    pthread_mutex_unlock(&d->fan);
    return failed;
}

void delivery_set_downlink(delivery_t *d, dlsched_t *sched)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->sched = sched;
    pthread_mutex_unlock(&d->lock);
}

void delivery_set_anchor(delivery_t *d, double t_s, double unix_s)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->anchor_t_s = t_s;
    d->anchor_unix_s = unix_s;
    pthread_mutex_unlock(&d->lock);
}

void delivery_context(delivery_t *d, evjson_ctx_t *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    ctx->anchor_t_s = d->anchor_t_s;
    ctx->anchor_unix_s = d->anchor_unix_s;
    pthread_mutex_unlock(&d->lock);
    ctx->rssi_calibrated = d->cfg.rssi_calibrated;
    ctx->rssi_offset_db = d->cfg.rssi_offset_db;
    ctx->station_id = d->station_id;
}

static dlsched_t *scheduler(delivery_t *d)
{
    pthread_mutex_lock(&d->lock);
    dlsched_t *q = d->sched;
    pthread_mutex_unlock(&d->lock);
    return q;
}

#define COUNT(d, field)                                                                            \
    do {                                                                                           \
        pthread_mutex_lock(&(d)->lock);                                                            \
        (d)->st.field++;                                                                           \
        pthread_mutex_unlock(&(d)->lock);                                                          \
    } while (0)

/* Whether an event of class cls (suppressed or not) has a sink. */
static bool wanted(delivery_t *d, unsigned cls, bool suppressed)
{
    unsigned need = cls | (suppressed ? DELIVERY_UNAUTHENTICATED : 0);
    bool any = false;
    pthread_mutex_lock(&d->fan);
    for (size_t i = 0; i < d->nsinks && !any; i++)
        any = (d->sinks[i].classes & need) == need;
    pthread_mutex_unlock(&d->fan);
    return any;
}

/* Hands ev to every sink of its class, one event at a time. */
static void fan_out_now(delivery_t *d, const delivery_event_t *ev)
{
    unsigned need = ev->cls | (ev->suppressed ? DELIVERY_UNAUTHENTICATED : 0);
    pthread_mutex_lock(&d->fan);
    for (size_t i = 0; i < d->nsinks; i++)
        if ((d->sinks[i].classes & need) == need)
            d->sinks[i].fn(ev, d->sinks[i].user);
    pthread_mutex_unlock(&d->fan);
}

/* Keeps ev for delivery_release(). Returns false when out of memory. */
static bool hold(delivery_t *d, const delivery_event_t *ev)
{
    if (d->nheld == d->held_cap) {
        size_t cap = d->held_cap ? 2 * d->held_cap : 16;
        held_t *v = realloc(d->held, cap * sizeof *v);
        if (!v)
            return false;
        d->held = v;
        d->held_cap = cap;
    }
    held_t *h = &d->held[d->nheld++];
    snprintf(h->topic, sizeof h->topic, "%s", ev->topic);
    h->cls = ev->cls;
    h->suppressed = ev->suppressed;
    h->verdict = ev->verdict;
    h->json = json_object_get(ev->json);
    h->kind = HELD_NONE;
    if (ev->frame) {
        h->kind = HELD_FRAME;
        h->u.frame = *ev->frame;
    } else if (ev->message) {
        h->kind = HELD_MESSAGE;
        h->u.message = *ev->message;
    } else if (ev->downlink) {
        h->kind = HELD_DOWNLINK;
        h->u.downlink = *ev->downlink;
    }
    return true;
}

/* Writes the state when it changed (timed). */
static void make_durable(delivery_t *d)
{
    if (!d->cfg.state || !devstate_dirty(d->cfg.state))
        return;
    char err[512] = "";
    double t0 = timeutil_mono_s();
    int rc = devstate_flush(d->cfg.state, err, sizeof err);
    double dt = timeutil_mono_s() - t0;
    pthread_mutex_lock(&d->lock);
    d->st.state_syncs++;
    d->st.state_sync_s += dt;
    if (dt > d->st.state_sync_max_s)
        d->st.state_sync_max_s = dt;
    pthread_mutex_unlock(&d->lock);
    if (rc != 0)
        delivery_log(d, LOG_LEVEL_ERROR, "State not written, events published anyway, error: %s",
                     err);
}

/* Delivers ev, or holds it while this thread holds d's events. ev->json NULL: not built. */
static void fan_out(delivery_t *d, delivery_event_t *ev)
{
    if (!ev->json) {
        COUNT(d, build_failures);
        log_error("Cannot build a %s event: out of memory", ev->topic);
        return;
    }
    if (holding == d) {
        if (hold(d, ev))
            return;
        make_durable(d); /* out of memory: make the state durable now and deliver at once */
    }
    fan_out_now(d, ev);
}

void delivery_hold(delivery_t *d)
{
    if (d && d->cfg.hold_until_durable)
        holding = d;
}

void delivery_release(delivery_t *d)
{
    if (!d || holding != d)
        return;
    holding = NULL;
    if (d->nheld == 0)
        return;
    make_durable(d);
    for (size_t i = 0; i < d->nheld; i++) {
        held_t *h = &d->held[i];
        delivery_event_t ev = {.topic = h->topic,
                               .cls = h->cls,
                               .json = h->json,
                               .frame = h->kind == HELD_FRAME ? &h->u.frame : NULL,
                               .message = h->kind == HELD_MESSAGE ? &h->u.message : NULL,
                               .verdict = h->verdict,
                               .downlink = h->kind == HELD_DOWNLINK ? &h->u.downlink : NULL,
                               .suppressed = h->suppressed};
        fan_out_now(d, &ev);
        json_object_put(h->json);
    }
    d->nheld = 0;
}

void delivery_emit(delivery_t *d, const char *topic, unsigned cls, json_object *obj)
{
    if (!d || !topic)
        return;
    delivery_event_t ev = {.topic = topic, .cls = cls, .json = obj, .verdict = DELIVERY_UNCHECKED};
    fan_out(d, &ev);
}

void delivery_log(delivery_t *d, log_level_t level, const char *fmt, ...)
{
    char raw[512], text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    log_sanitize(raw, text, sizeof text); /* the event's text must be valid UTF-8 too */
    log_msg(level, "%s", text);
    if (!d || level > LOG_LEVEL_WARNING || level < LOG_LEVEL_FATAL)
        return;
    static const char *const names[] = {"", "fatal", "critical", "error", "warning"};
    evjson_ctx_t ctx;
    delivery_context(d, &ctx);
    json_object *o = evjson_new("log", &ctx);
    char utc[40];
    int rc = o ? 0 : -1;
    rc |= framejson_add(o, "level", json_object_new_string(names[level]));
    rc |= framejson_add(o, "text", json_object_new_string(text));
    rc |= framejson_add(
        o, "time_utc",
        json_object_new_string(publisher_time_utc(timeutil_unix_s(), utc, sizeof utc)));
    if (rc != 0) {
        json_object_put(o);
        o = NULL;
    }
    delivery_emit(d, "log", DELIVERY_STATUS, o);
    json_object_put(o);
}

/* An unauthenticated result: counted, and delivered only to the sinks that ask for
 * such results, unless configured otherwise. */
static bool suppressed(delivery_t *d, rx_auth_t auth)
{
    if (auth == RX_AUTH_OK || d->cfg.publish_unauthenticated)
        return false;
    COUNT(d, events_suppressed);
    return true;
}

void delivery_frame(const rx_frame_t *f, void *user)
{
    delivery_t *d = user;
    if (!d || !f)
        return;
    /* Confirmations at once (the assembler holds a single frame for its replica window,
     * longer than the confirmation verdict may wait); never opens a request: the frame
     * has not been through the anti-replay check. */
    dlsched_t *q = scheduler(d);
    if (q)
        dlsched_rx_frame(q, f);
    bool hidden = suppressed(d, f->auth);
    if (hidden && !wanted(d, DELIVERY_UPLINK, true))
        return;
    if (f->frame.crc_ok && !hidden)
        log_debug("Frame decoded, ep_id: %08" PRIX32 ", mc: %u, rank: %d, auth: %s, freq_hz: "
                  "%.1f, snr_db: %.1f",
                  f->frame.msg.ep_id, (unsigned)f->frame.msg.mc, f->frame.rank,
                  rx_auth_name(f->auth), f->freq_hz, f->snr_db);
    evjson_ctx_t ctx;
    delivery_context(d, &ctx);
    delivery_event_t ev = {.topic = "frame",
                           .cls = DELIVERY_UPLINK,
                           .json = evjson_frame(f, &ctx),
                           .frame = f,
                           .verdict = DELIVERY_UNCHECKED,
                           .suppressed = hidden};
    fan_out(d, &ev);
    if (ev.json && !hidden)
        COUNT(d, frames_published);
    json_object_put(ev.json);
}

/* The anti-replay verdict of an authenticated message; *last_mc: the counter it was
 * compared with. */
static int check_replay(delivery_t *d, const rx_message_t *m, const evjson_ctx_t *ctx, int *last_mc)
{
    const ul_message_t *msg = &m->msg;
    /* On-air time of the first replica: UTC live (comparable across restarts), stream
     * time in a replay. */
    double t0 = m->nframes > 0 ? m->frames[0].t_start_s : 0;
    bool utc = ctx->anchor_unix_s > 0;
    double when = utc ? ctx->anchor_unix_s + (t0 - ctx->anchor_t_s) : timeutil_unix_s();
    unsigned daily = d->cfg.daily_messages ? d->cfg.daily_messages(msg->ep_id, d->cfg.daily_user)
                                           : DEFAULT_DAILY_MESSAGES;
    devstate_entry_t before;
    memset(&before, 0, sizeof before);
    int verdict = devstate_check(d->cfg.state, msg->ep_id, msg->mc, daily, utc ? when : t0,
                                 (int64_t)when, &before);
    *last_mc = before.last_mc;
    if (verdict == DEVSTATE_LATE)
        log_debug("Message delivered after a newer one, ep_id: %08" PRIX32 ", mc: %u, "
                  "last_mc: %u",
                  msg->ep_id, (unsigned)msg->mc, (unsigned)before.last_mc);
    if (verdict == DEVSTATE_REPLAY) {
        COUNT(d, replays);
        delivery_log(d, LOG_LEVEL_WARNING,
                     "Replayed message refused, ep_id: %08" PRIX32 ", mc: %u, last_mc: %u",
                     msg->ep_id, (unsigned)msg->mc, (unsigned)before.last_mc);
    } else if (verdict < 0) {
        log_error("Anti-replay check failed, ep_id: %08" PRIX32 ", error: %s", msg->ep_id,
                  devstate_strerror(verdict));
    }
    if (d->cfg.flush_each_message) {
        char err[512];
        if (devstate_flush(d->cfg.state, err, sizeof err) != 0)
            delivery_log(d, LOG_LEVEL_ERROR, "State not written, error: %s", err);
    }
    return verdict;
}

void delivery_message(const rx_message_t *m, void *user)
{
    delivery_t *d = user;
    if (!d || !m)
        return;
    /* With a core, it answers BF=1 and keeps the anti-replay state: every message whose
     * AUTH did not fail here may open a request (docs/ns.md "Station side"). */
    bool core_request = d->cfg.remote_answers && m->auth != RX_AUTH_BAD;
    const ul_message_t *msg = &m->msg;
    evjson_ctx_t ctx;
    delivery_context(d, &ctx);
    bool hidden = suppressed(d, m->auth);
    int verdict = DELIVERY_UNCHECKED, last_mc = 0;
    /* Anti-replay only for authenticated messages: an unauthenticated counter proves
     * nothing and must not move the window. */
    if (m->auth == RX_AUTH_OK && d->cfg.state)
        verdict = check_replay(d, m, &ctx, &last_mc);
    bool replay = verdict == DEVSTATE_REPLAY;
    if (!replay && !hidden)
        log_info("Message received, ep_id: %08" PRIX32 ", mc: %u, kind: %s, auth: %s, "
                 "replicas: %d%s, freq_hz: %.1f",
                 msg->ep_id, (unsigned)msg->mc, ul_kind_name(msg->kind), rx_auth_name(m->auth),
                 m->nframes, m->combined ? " (combined)" : "",
                 m->nframes ? m->frames[0].freq_hz : 0.0);
    if (!hidden || wanted(d, DELIVERY_UPLINK, true)) {
        delivery_event_t ev = {.topic = replay ? "replay" : "message",
                               .cls = DELIVERY_UPLINK,
                               .json = evjson_message(m, replay ? last_mc : -1, &ctx),
                               .message = m,
                               .verdict = verdict,
                               .suppressed = hidden};
        fan_out(d, &ev);
        if (ev.json && !replay && !hidden)
            COUNT(d, messages_published);
        json_object_put(ev.json);
    }
    /* After the message event, so that an application sees the message before the
     * downlink_request it causes. A replay must not burn quota or duty cycle. */
    bool fresh = m->auth == RX_AUTH_OK && (verdict == DEVSTATE_NEW || verdict == DEVSTATE_LATE ||
                                           verdict == DELIVERY_UNCHECKED);
    dlsched_t *q = scheduler(d);
    if (q && (fresh || core_request))
        dlsched_rx_message(q, m);
}

/* Whether a softframe at stream time t_s fits in the bucket (takes its token). */
static bool soft_token(delivery_t *d, double t_s)
{
    double rate = d->cfg.soft_max_per_s;
    if (!(rate > 0))
        return true;
    double cap = rate > 1 ? rate : 1;
    pthread_mutex_lock(&d->lock);
    if (d->soft_last_t < 0 || t_s < d->soft_last_t) /* first, or a new stream */
        d->soft_tokens = cap;
    else
        d->soft_tokens = fmin(cap, d->soft_tokens + (t_s - d->soft_last_t) * rate);
    d->soft_last_t = t_s;
    bool ok = d->soft_tokens >= 1;
    if (ok)
        d->soft_tokens -= 1;
    else
        d->st.softframes_dropped++;
    pthread_mutex_unlock(&d->lock);
    return ok;
}

void delivery_softframe(delivery_t *d, const rx_softframe_t *sf)
{
    if (!d || !sf || !isfinite(sf->t_start_s) || !soft_token(d, sf->t_start_s))
        return;
    evjson_ctx_t ctx;
    delivery_context(d, &ctx);
    delivery_event_t ev = {.topic = "softframe",
                           .cls = DELIVERY_SOFT,
                           .json = evjson_softframe(sf, &ctx),
                           .verdict = DELIVERY_UNCHECKED};
    fan_out(d, &ev);
    if (ev.json)
        COUNT(d, softframes_published);
    json_object_put(ev.json);
}

void delivery_downlink(delivery_t *d, const dlsched_event_t *ev)
{
    if (!d || !ev)
        return;
    evjson_ctx_t ctx;
    delivery_context(d, &ctx);
    delivery_event_t de = {.topic = dlsched_event_name(ev->type),
                           .cls = DELIVERY_DOWNLINK,
                           .json = evjson_downlink(ev, &ctx),
                           .downlink = ev,
                           .verdict = DELIVERY_UNCHECKED};
    fan_out(d, &de);
    json_object_put(de.json);
}

void delivery_beacon(delivery_t *d, const evjson_beacon_t *b)
{
    if (!d || !b)
        return;
    evjson_ctx_t ctx;
    delivery_context(d, &ctx);
    json_object *o = evjson_beacon(b, &ctx);
    delivery_emit(d, "monarch_beacon", DELIVERY_DOWNLINK, o);
    json_object_put(o);
}

void delivery_get_stats(delivery_t *d, delivery_stats_t *st)
{
    memset(st, 0, sizeof *st);
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    *st = d->st;
    pthread_mutex_unlock(&d->lock);
}
