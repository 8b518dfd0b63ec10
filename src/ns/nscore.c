/* nscore: frames -> deduplicated, authenticated, anti-replay-checked messages, delivered
 * once; downlink decisions (include/nscore.h). Licence: MIT. */
#define _GNU_SOURCE /* timegm */
#include "nscore.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "antireplay.h"
#include "dlframe.h"
#include "errbuf.h"
#include "framejson.h"
#include "hexutil.h"
#include "log.h"
#include "nsreg.h"
#include "publisher.h"

#define MAX_RETRIES 5
#define STATION_ID_MAX 64

/* ---- small growable arrays ------------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* ---- device cache ------------------------------------------------------------------- */

typedef struct {
    bool used;
    nsreg_device_t dev;
    double loaded_s;
    unsigned long gen;
} cache_entry_t;

/* ---- per-frame work ------------------------------------------------------------------ */

typedef struct {
    const nscore_frame_t *in;
    char station_id[STATION_ID_MAX];
    ul_message_t msg;
    uint8_t container[UL_MAX_CONTAINER_BYTES];
    size_t container_len;
    int rank;
    double t_s, rx_s, snr_db, rssi_dbfs, freq_hz;
    bool tx;
    int prio; /* 0 BF=1, 1 first repetition, 2 the rest (seeds/000 §7.1.1.1) */
} work_t;

typedef struct {
    nscore_event_type_t type;
    char topic[32];
    json_object *json;
    int64_t msg_id;
    uint32_t ep_id;
    uint16_t mc;
    bool has_msg;
    ul_message_t msg;
    char station_id[STATION_ID_MAX];
    int prio;
} pending_event_t;

typedef struct {
    int64_t msg_id;
    const work_t *first;
    bool accepted;
    int last_mc; /* -1: none */
} new_msg_t;

/* A BF=1 message this instance owns the decision of. */
typedef struct {
    int64_t msg_id;
    uint32_t ep_id;
    uint16_t mc;
    nsreg_device_t dev;
    double decide_at, answer_deadline;
    bool answered, has_answer;
    uint8_t answer[NSREG_DL_PAYLOAD_BYTES];
} owner_t;

/* A station connected here that reported a BF=1 message and waits for the decision. */
typedef struct {
    int64_t msg_id;
    uint32_t ep_id;
    uint16_t mc;
    char station_id[STATION_ID_MAX];
    double deadline;
} waiter_t;

typedef struct {
    nscore_hook_phase_t phase;
    nscore_hook_fn fn;
    void *user;
} hook_t;

struct nscore {
    nscore_config_t cfg;
    char instance[STATION_ID_MAX];
    nsdb_t *db;
    hook_t *hooks;
    size_t nhooks, cap_hooks;
    nscore_send_fn send;
    void *send_user;
    /* device cache, open addressing */
    cache_entry_t *cache;
    size_t cache_cap, cache_used;
    atomic_ulong gen;
    /* per-call scratch */
    work_t *work;
    size_t cap_work;
    pending_event_t *events;
    size_t nevents, cap_events;
    new_msg_t *newmsgs;
    size_t nnew, cap_new;
    int64_t *touched;
    size_t ntouched, cap_touched;
    /* downlink */
    pthread_mutex_t lock; /* owners (answers come from other threads) and stats */
    owner_t *owners;
    size_t nowners, cap_owners;
    waiter_t *waiters;
    size_t nwaiters, cap_waiters;
    nscore_stats_t stats;
};

void nscore_config_init(nscore_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->instance = "ns";
    cfg->dedup_window_s = NSCORE_DEFAULT_DEDUP_WINDOW_S;
    cfg->registry_cache_s = 5.0;
    cfg->dl_collect_s = 0.5;
    cfg->dl_answer_timeout_s = 5.0;
    cfg->dl_pending_timeout_s = 15.0;
    cfg->update_events = true;
}

nscore_t *nscore_create(const nscore_config_t *cfg, nsdb_t *db, char *err, size_t err_len)
{
    if (!cfg || !db) {
        errbuf_set(err, err_len, "nscore: no configuration or database");
        return NULL;
    }
    nscore_t *c = calloc(1, sizeof *c);
    if (!c) {
        errbuf_set(err, err_len, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    snprintf(c->instance, sizeof c->instance, "%s", cfg->instance ? cfg->instance : "ns");
    c->cfg.instance = c->instance;
    if (c->cfg.dedup_window_s <= 0)
        c->cfg.dedup_window_s = NSCORE_DEFAULT_DEDUP_WINDOW_S;
    if (c->cfg.registry_cache_s <= 0)
        c->cfg.registry_cache_s = 5.0;
    if (c->cfg.dl_collect_s <= 0)
        c->cfg.dl_collect_s = 0.5;
    if (c->cfg.dl_answer_timeout_s <= 0)
        c->cfg.dl_answer_timeout_s = 5.0;
    if (c->cfg.dl_pending_timeout_s <= 0)
        c->cfg.dl_pending_timeout_s = 15.0;
    c->db = db;
    atomic_init(&c->gen, 1);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

static void clear_events(nscore_t *c)
{
    for (size_t i = 0; i < c->nevents; i++)
        json_object_put(c->events[i].json);
    c->nevents = 0;
}

void nscore_destroy(nscore_t *c)
{
    if (!c)
        return;
    clear_events(c);
    free(c->events);
    free(c->work);
    free(c->newmsgs);
    free(c->touched);
    free(c->cache);
    free(c->hooks);
    free(c->owners);
    free(c->waiters);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int nscore_add_hook(nscore_t *c, nscore_hook_phase_t phase, nscore_hook_fn fn, void *user)
{
    if (!c || !fn || grow((void **)&c->hooks, &c->cap_hooks, c->nhooks + 1, sizeof *c->hooks))
        return -1;
    c->hooks[c->nhooks++] = (hook_t){phase, fn, user};
    return 0;
}

void nscore_set_sender(nscore_t *c, nscore_send_fn fn, void *user)
{
    c->send = fn;
    c->send_user = user;
}

void nscore_registry_changed(nscore_t *c)
{
    if (c)
        atomic_fetch_add(&c->gen, 1);
}

void nscore_get_stats(nscore_t *c, nscore_stats_t *st)
{
    pthread_mutex_lock(&c->lock);
    *st = c->stats;
    pthread_mutex_unlock(&c->lock);
}

#define STAT_ADD(c, field, n)                                                                      \
    do {                                                                                           \
        pthread_mutex_lock(&(c)->lock);                                                            \
        (c)->stats.field += (n);                                                                   \
        pthread_mutex_unlock(&(c)->lock);                                                          \
    } while (0)

int nscore_stats_json(const nscore_stats_t *st, json_object *obj)
{
    struct {
        const char *name;
        uint64_t v;
    } f[] = {{"frames_in", st->frames_in},
             {"frames_bad", st->frames_bad},
             {"frames_auth_bad", st->frames_auth_bad},
             {"frames_unknown_device", st->frames_unknown_device},
             {"frames_duplicate", st->frames_duplicate},
             {"frames_resent", st->frames_resent},
             {"messages", st->messages},
             {"replays", st->replays},
             {"updates", st->updates},
             {"transactions", st->transactions},
             {"retries", st->retries},
             {"db_errors", st->db_errors},
             {"dl_requests", st->dl_requests},
             {"dl_sent", st->dl_sent},
             {"dl_declined", st->dl_declined},
             {"dl_no_answer", st->dl_no_answer},
             {"dl_acks", st->dl_acks},
             {"dl_lost", st->dl_lost}};
    int rc = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        rc |= framejson_add(obj, f[i].name, json_object_new_int64((int64_t)f[i].v));
    return rc ? -1 : 0;
}

int nscore_parse_utc(const char *text, double *unix_s)
{
    if (!text)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -1;
    double frac = 0;
    if (*rest == '.') {
        char *end;
        frac = strtod(rest, &end);
        rest = end;
    }
    if (strcmp(rest, "Z") != 0)
        return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *unix_s = (double)t + frac;
    return 0;
}

/* ---- registry cache --------------------------------------------------------------- */

static size_t cache_slot(const nscore_t *c, uint32_t ep_id)
{
    uint32_t h = ep_id * 2654435761u;
    size_t i = h & (c->cache_cap - 1);
    while (c->cache[i].used && c->cache[i].dev.ep_id != ep_id)
        i = (i + 1) & (c->cache_cap - 1);
    return i;
}

static int cache_put(nscore_t *c, const nsreg_device_t *d, double now, unsigned long gen)
{
    if ((c->cache_used + 1) * 2 > c->cache_cap) {
        size_t ncap = c->cache_cap ? 2 * c->cache_cap : 1024;
        cache_entry_t *old = c->cache;
        size_t ocap = c->cache_cap;
        c->cache = calloc(ncap, sizeof *c->cache);
        if (!c->cache) {
            c->cache = old;
            return -1;
        }
        c->cache_cap = ncap;
        c->cache_used = 0;
        for (size_t i = 0; i < ocap; i++) {
            if (old[i].used) {
                c->cache[cache_slot(c, old[i].dev.ep_id)] = old[i];
                c->cache_used++;
            }
        }
        free(old);
    }
    size_t i = cache_slot(c, d->ep_id);
    if (!c->cache[i].used)
        c->cache_used++;
    c->cache[i] = (cache_entry_t){.used = true, .dev = *d, .loaded_s = now, .gen = gen};
    return 0;
}

/* 1 found (copied to out), 0 unknown, < 0 database error. */
static int device_lookup(nscore_t *c, uint32_t ep_id, double now, nsreg_device_t *out)
{
    unsigned long gen = atomic_load(&c->gen);
    if (c->cache_cap) {
        cache_entry_t *e = &c->cache[cache_slot(c, ep_id)];
        if (e->used && e->gen == gen && now - e->loaded_s < c->cfg.registry_cache_s) {
            *out = e->dev;
            return 1;
        }
    }
    int rc = nsreg_device_get(c->db, ep_id, out);
    if (rc == 1)
        cache_put(c, out, now, gen);
    return rc;
}

_Static_assert(NSREG_KEY_BYTES == UL_KEY_BYTES, "registry keys are UL-AUTH keys");

int nscore_device_key(nscore_t *c, uint32_t ep_id, uint8_t key[UL_KEY_BYTES])
{
    if (!c || !key)
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    nsreg_device_t d;
    int rc = device_lookup(c, ep_id, (double)ts.tv_sec + ts.tv_nsec * 1e-9, &d);
    if (rc < 0)
        log_warn("Device key not read, reason: database error, ep_id: %08X", (unsigned)ep_id);
    if (rc != 1)
        return 0;
    memcpy(key, d.key, NSREG_KEY_BYTES);
    return 1;
}

/* ---- frame parsing ------------------------------------------------------------------ */

static double get_double(json_object *o, const char *key, double def)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !v)
        return def;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return def;
    double d = json_object_get_double(v);
    return isfinite(d) ? d : def;
}

/* v when lo <= v <= hi, else NAN (absent). */
static double in_range(double v, double lo, double hi)
{
    return v >= lo && v <= hi ? v : NAN;
}

static const char *get_str(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Fills w from the station's frame. Returns 0, or -1 with the reason in why. */
static int parse_frame(const nscore_frame_t *in, work_t *w, char *why, size_t why_len)
{
    memset(w, 0, sizeof *w);
    w->in = in;
    snprintf(w->station_id, sizeof w->station_id, "%s", in->station_id ? in->station_id : "");
    json_object *f = in->frame;
    if (!f || !json_object_is_type(f, json_type_object)) {
        errbuf_set(why, why_len, "frame is not a JSON object");
        return -1;
    }
    const char *hex = get_str(f, "container");
    int len = hex ? hex_to_bytes(hex, w->container, sizeof w->container) : -1;
    if (len < 0) {
        errbuf_set(why, why_len, "container missing or not hex of at most %d bytes",
                   UL_MAX_CONTAINER_BYTES);
        return -1;
    }
    w->container_len = (size_t)len;
    const char *ft = get_str(f, "ft");
    uint8_t ftb[2];
    bool control = false;
    if (!ft || hex_to_bytes(ft, ftb, 2) != 2 ||
        ul_ft_match((uint16_t)(ftb[0] << 8 | ftb[1]), UL_FT_DEFAULT_MAX_DISTANCE, NULL, &control,
                    NULL) < 0) {
        errbuf_set(why, why_len, "ft missing or not a known frame type");
        return -1;
    }
    const char *crc = get_str(f, "ul_crc");
    uint8_t crcb[2];
    if (!crc || hex_to_bytes(crc, crcb, 2) != 2 ||
        (uint16_t)(crcb[0] << 8 | crcb[1]) != ul_crc16(w->container, w->container_len)) {
        errbuf_set(why, why_len, "ul_crc missing or does not match the container");
        return -1;
    }
    uint8_t auth[UL_MAX_AUTH_BYTES];
    size_t auth_len = 0;
    if (ul_container_parse(w->container, w->container_len, control, &w->msg, auth, &auth_len) < 0) {
        errbuf_set(why, why_len, "container does not parse (length or LI)");
        return -1;
    }
    json_object *v;
    w->rank = 1;
    if (json_object_object_get_ex(f, "rank", &v) && json_object_is_type(v, json_type_int)) {
        int64_t r = json_object_get_int64(v);
        if (r < 0 || r > 3) {
            errbuf_set(why, why_len, "rank %lld is not 0..3", (long long)r);
            return -1;
        }
        w->rank = (int)r;
    }
    w->rx_s = in->rx_s;
    w->t_s = in->rx_s;
    const char *utc = get_str(f, "time_utc");
    double t;
    /* the station's time of the burst, unless it is absurd (clock off by over an hour) */
    if (utc && nscore_parse_utc(utc, &t) == 0 && fabs(t - in->rx_s) < 3600.0 * 24 * 2)
        w->t_s = t;
    /* radio fields outside what a receiver can report count as absent: they are stored,
     * averaged and compared, and must stay plain numbers */
    w->snr_db = in_range(get_double(f, "snr_db", NAN), -100.0, 200.0);
    w->rssi_dbfs = in_range(get_double(f, "rssi_dbfs", NAN), -400.0, 100.0);
    w->freq_hz = in_range(get_double(f, "freq_hz", NAN), -1e10, 1e10);
    w->tx = json_object_object_get_ex(f, "tx", &v) && json_object_get_boolean(v);
    w->prio = w->msg.bf ? 0 : (w->rank <= 1 ? 1 : 2);
    return 0;
}

static int work_cmp(const void *a, const void *b)
{
    const work_t *x = a, *y = b;
    if (x->msg.ep_id != y->msg.ep_id)
        return x->msg.ep_id < y->msg.ep_id ? -1 : 1;
    if (x->msg.mc != y->msg.mc)
        return x->msg.mc < y->msg.mc ? -1 : 1;
    if (x->t_s != y->t_s)
        return x->t_s < y->t_s ? -1 : 1;
    return x->rank - y->rank;
}

/* ---- events ------------------------------------------------------------------------ */

static pending_event_t *new_event(nscore_t *c, nscore_event_type_t type, const char *topic)
{
    if (grow((void **)&c->events, &c->cap_events, c->nevents + 1, sizeof *c->events))
        return NULL;
    json_object *j = json_object_new_object();
    if (!j)
        return NULL;
    pending_event_t *e = &c->events[c->nevents++];
    memset(e, 0, sizeof *e);
    e->type = type;
    snprintf(e->topic, sizeof e->topic, "%s", topic);
    e->json = j;
    framejson_add(j, "type", json_object_new_string(topic));
    framejson_add(j, "format_version", json_object_new_int(PUBLISHER_FORMAT_VERSION));
    return e;
}

static void to_hook_event(const pending_event_t *e, nscore_event_t *ev)
{
    *ev = (nscore_event_t){.type = e->type,
                           .topic = e->topic,
                           .json = e->json,
                           .msg_id = e->msg_id,
                           .ep_id = e->ep_id,
                           .mc = e->mc,
                           .msg = e->has_msg ? &e->msg : NULL,
                           .station_id = e->station_id};
}

static int run_hooks(nscore_t *c, const pending_event_t *e, nscore_hook_phase_t phase)
{
    nscore_event_t ev;
    to_hook_event(e, &ev);
    for (size_t i = 0; i < c->nhooks; i++) {
        if (c->hooks[i].phase != phase)
            continue;
        int rc = c->hooks[i].fn(&ev, phase == NSCORE_HOOK_IN_TX ? c->db : NULL, c->hooks[i].user);
        if (phase == NSCORE_HOOK_IN_TX && rc < 0)
            return rc;
    }
    return 0;
}

static int add_num(json_object *o, const char *key, double v, int decimals)
{
    if (!isfinite(v))
        return 0;
    double s = pow(10, decimals);
    return framejson_add(o, key, json_object_new_double(round(v * s) / s));
}

static int add_time(json_object *o, const char *key, double unix_s)
{
    char buf[40];
    return framejson_add(o, key, json_object_new_string(publisher_time_utc(unix_s, buf, sizeof buf)));
}

/* The `stations` array of a message from its receptions (best SNR first), and the number
 * of receptions. */
static int stations_json(nscore_t *c, int64_t msg_id, json_object **out, int *nframes)
{
    nsdb_rows_t *r = NULL;
    nsdb_val_t p[] = {NSDB_INT(msg_id)};
    int rc = nsdb_query(c->db,
                        "SELECT station_id, rank, snr_db, rssi_dbfs, freq_hz, t_s, tx "
                        "FROM ns_receptions WHERE msg_id = $1 ORDER BY station_id, t_s, rank",
                        p, 1, &r);
    if (rc < 0)
        return rc;
    json_object *arr = json_object_new_array();
    if (!arr) {
        nsdb_rows_free(r);
        return NSDB_ERR_NOMEM;
    }
    size_t n = nsdb_rows_count(r);
    *nframes = (int)n;
    /* group by station (rows are sorted by station) */
    typedef struct {
        size_t first;
        int replicas;
        double snr, rssi;
        bool tx;
    } grp_t;
    grp_t *g = calloc(n ? n : 1, sizeof *g);
    size_t ng = 0;
    if (!g) {
        nsdb_rows_free(r);
        json_object_put(arr);
        return NSDB_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(nsdb_rows_text(r, i, 0), nsdb_rows_text(r, g[ng - 1].first, 0))) {
            g[ng++] = (grp_t){.first = i, .snr = -INFINITY, .rssi = -INFINITY};
        }
        grp_t *x = &g[ng - 1];
        x->replicas++;
        if (!nsdb_rows_isnull(r, i, 2) && nsdb_rows_real(r, i, 2) > x->snr)
            x->snr = nsdb_rows_real(r, i, 2);
        if (!nsdb_rows_isnull(r, i, 3) && nsdb_rows_real(r, i, 3) > x->rssi)
            x->rssi = nsdb_rows_real(r, i, 3);
        x->tx |= nsdb_rows_int(r, i, 6) != 0;
    }
    /* best SNR first (insertion sort: a handful of stations) */
    for (size_t i = 1; i < ng; i++) {
        grp_t t = g[i];
        size_t j = i;
        while (j > 0 && g[j - 1].snr < t.snr) {
            g[j] = g[j - 1];
            j--;
        }
        g[j] = t;
    }
    int e = 0;
    for (size_t k = 0; k < ng; k++) {
        json_object *o = json_object_new_object();
        size_t i = g[k].first;
        e |= !o;
        e |= framejson_add(o, "station_id", json_object_new_string(nsdb_rows_text(r, i, 0)));
        e |= add_num(o, "snr_db", g[k].snr, 2);
        e |= add_num(o, "rssi_dbfs", g[k].rssi, 2);
        if (!nsdb_rows_isnull(r, i, 4))
            e |= add_num(o, "freq_hz", nsdb_rows_real(r, i, 4), 1);
        e |= framejson_add(o, "first_rank", json_object_new_int((int)nsdb_rows_int(r, i, 1)));
        e |= add_time(o, "time_utc", nsdb_rows_real(r, i, 5));
        e |= framejson_add(o, "replicas", json_object_new_int(g[k].replicas));
        e |= framejson_add(o, "tx", json_object_new_boolean(g[k].tx));
        e |= json_object_array_add(arr, o);
    }
    free(g);
    nsdb_rows_free(r);
    if (e) {
        json_object_put(arr);
        return NSDB_ERR_NOMEM;
    }
    *out = arr;
    return 0;
}

/* ---- the transaction -------------------------------------------------------------- */

static const char SQL_CLAIM[] =
    "INSERT INTO ns_dedup (ep_id, mc, first_t, msg_id) VALUES ($1, $2, $3, NULL) "
    "ON CONFLICT (ep_id, mc) DO UPDATE SET "
    "msg_id = CASE WHEN ABS(ns_dedup.first_t - excluded.first_t) > $4 THEN NULL "
    "ELSE ns_dedup.msg_id END, "
    "first_t = CASE WHEN ABS(ns_dedup.first_t - excluded.first_t) > $4 THEN excluded.first_t "
    "ELSE ns_dedup.first_t END "
    "RETURNING msg_id";

static const char SQL_ACCEPT[] =
    "UPDATE ns_devices SET last_mc = $2, last_t = $3 WHERE ep_id = $1 AND "
    "(last_mc IS NULL OR (($2 - last_mc - 1 + 4096) % 4096) <= $4)";

static const char SQL_RECEPTION[] =
    "INSERT INTO ns_receptions (msg_id, station_id, rank, snr_db, rssi_dbfs, freq_hz, t_s, rx_s, "
    "tx) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
    "ON CONFLICT (msg_id, station_id, rank) DO NOTHING";

static nsdb_val_t real_or_null(double v)
{
    return isfinite(v) ? NSDB_REAL(v) : NSDB_NULLV;
}

/* The claim of (ep_id, mc): 1 and *msg_id 0 when this writer won, 0 and the existing
 * message's id when not, < 0 on error. */
static int claim(nscore_t *c, const work_t *w, int64_t *msg_id)
{
    nsdb_rows_t *r = NULL;
    nsdb_val_t p[] = {NSDB_INT(w->msg.ep_id), NSDB_INT(w->msg.mc), NSDB_REAL(w->t_s),
                      NSDB_REAL(c->cfg.dedup_window_s)};
    int rc = nsdb_query(c->db, SQL_CLAIM, p, 4, &r);
    if (rc < 0)
        return rc;
    int won = nsdb_rows_isnull(r, 0, 0);
    *msg_id = won ? 0 : nsdb_rows_int(r, 0, 0);
    nsdb_rows_free(r);
    return won;
}

/* A reception identical to w (same station, rank and time) already stored for a message of
 * (ep_id, mc): a station's resend arriving after the claim of (ep_id, mc) moved on to a
 * later message (the counter heard again outside the dedup window). 1 and *msg_id (the
 * claim is pointed back at that message), 0 when none, < 0 on error. */
static int stored_reception(nscore_t *c, const work_t *w, int64_t *msg_id)
{
    nsdb_rows_t *r = NULL;
    nsdb_val_t p[] = {NSDB_INT(w->msg.ep_id), NSDB_INT(w->msg.mc), NSDB_TEXT(w->station_id),
                      NSDB_INT(w->rank), NSDB_REAL(w->t_s)};
    int rc = nsdb_query(c->db,
                        "SELECT m.id, m.t_first FROM ns_messages m JOIN ns_receptions r ON "
                        "r.msg_id = m.id WHERE m.ep_id = $1 AND m.mc = $2 AND r.station_id = $3 "
                        "AND r.rank = $4 AND r.t_s = $5 LIMIT 1",
                        p, 5, &r);
    if (rc < 0)
        return rc;
    int found = nsdb_rows_count(r) > 0;
    double t_first = 0;
    if (found) {
        *msg_id = nsdb_rows_int(r, 0, 0);
        t_first = nsdb_rows_real(r, 0, 1);
    }
    nsdb_rows_free(r);
    if (!found)
        return 0;
    nsdb_val_t q[] = {NSDB_INT(w->msg.ep_id), NSDB_INT(w->msg.mc), NSDB_INT(*msg_id),
                      NSDB_REAL(t_first)};
    rc = nsdb_exec(c->db, "UPDATE ns_dedup SET msg_id = $3, first_t = $4 WHERE ep_id = $1 AND mc = $2",
                   q, 4);
    return rc < 0 ? rc : 1;
}

/* Anti-replay (seeds/000 §9.1.1), atomic in the database. 1 accepted, 0 refused (last_mc
 * set to the counter it was compared with, -1 when none), < 0 error. */
static int accept_mc(nscore_t *c, const work_t *w, const nsreg_device_t *d, int *last_mc)
{
    *last_mc = -1;
    nsdb_val_t p[] = {NSDB_INT(w->msg.ep_id), NSDB_INT(w->msg.mc), NSDB_REAL(w->t_s),
                      NSDB_INT(antireplay_window((unsigned)d->daily_messages))};
    int rc = nsdb_exec(c->db, SQL_ACCEPT, p, 4);
    if (rc != 0)
        return rc < 0 ? rc : 1;
    nsdb_rows_t *r = NULL;
    rc = nsdb_query(c->db, "SELECT last_mc, last_t FROM ns_devices WHERE ep_id = $1", p, 1, &r);
    if (rc < 0)
        return rc;
    int ok = 0;
    if (nsdb_rows_count(r) && !nsdb_rows_isnull(r, 0, 0)) {
        int last = (int)nsdb_rows_int(r, 0, 0);
        double last_t = nsdb_rows_real(r, 0, 1);
        *last_mc = last;
        /* late: on air before the message that set the last counter, a little behind it,
         * and (the claim guarantees it) never accepted before */
        int behind = (last - (int)w->msg.mc + UL_MC_MODULO) % UL_MC_MODULO;
        ok = behind >= 1 && behind <= NSCORE_LATE_MC && w->t_s < last_t;
    }
    nsdb_rows_free(r);
    return ok;
}

static int add_reception(nscore_t *c, int64_t msg_id, const work_t *w)
{
    nsdb_val_t p[] = {NSDB_INT(msg_id),          NSDB_TEXT(w->station_id),  NSDB_INT(w->rank),
                      real_or_null(w->snr_db),   real_or_null(w->rssi_dbfs), real_or_null(w->freq_hz),
                      NSDB_REAL(w->t_s),         NSDB_REAL(w->rx_s),         NSDB_INT(w->tx)};
    return nsdb_exec(c->db, SQL_RECEPTION, p, 9);
}

static int new_message(nscore_t *c, const work_t *w, const nsreg_device_t *d)
{
    int last_mc = -1;
    int ok = accept_mc(c, w, d, &last_mc);
    if (ok < 0)
        return ok;
    char payload[2 * UL_MAX_PAYLOAD_BYTES + 1] = "";
    if (w->msg.one_bit)
        snprintf(payload, sizeof payload, "%u", w->msg.payload_bit);
    else
        bytes_to_hex(w->msg.payload, w->msg.payload_len, payload);
    nsdb_val_t p[] = {NSDB_INT(w->msg.ep_id),
                      NSDB_INT(w->msg.mc),
                      NSDB_INT(w->msg.bf),
                      NSDB_TEXT(ul_kind_name(w->msg.kind)),
                      NSDB_TEXT(payload),
                      NSDB_TEXT(ok ? "ok" : "replay"),
                      last_mc >= 0 ? NSDB_INT(last_mc) : NSDB_NULLV,
                      NSDB_REAL(w->t_s),
                      NSDB_REAL(w->rx_s),
                      NSDB_TEXT(w->station_id),
                      NSDB_TEXT(c->instance)};
    int64_t id = 0;
    int rc = nsdb_query_int(c->db,
                            "INSERT INTO ns_messages (ep_id, mc, bf, kind, payload, status, "
                            "last_mc, t_first, rx_s, station_first, instance) VALUES "
                            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                            p, 11, &id);
    if (rc <= 0)
        return rc < 0 ? rc : NSDB_ERR_SQL;
    nsdb_val_t q[] = {NSDB_INT(w->msg.ep_id), NSDB_INT(w->msg.mc), NSDB_INT(id)};
    rc = nsdb_exec(c->db, "UPDATE ns_dedup SET msg_id = $3 WHERE ep_id = $1 AND mc = $2", q, 3);
    if (rc < 0)
        return rc;
    if (grow((void **)&c->newmsgs, &c->cap_new, c->nnew + 1, sizeof *c->newmsgs))
        return NSDB_ERR_NOMEM;
    c->newmsgs[c->nnew++] = (new_msg_t){.msg_id = id, .first = w, .accepted = ok, .last_mc = last_mc};
    rc = add_reception(c, id, w);
    return rc < 0 ? rc : 0;
}

static bool is_new_here(const nscore_t *c, int64_t id)
{
    for (size_t i = 0; i < c->nnew; i++) {
        if (c->newmsgs[i].msg_id == id)
            return true;
    }
    return false;
}

static int touch(nscore_t *c, int64_t id)
{
    for (size_t i = 0; i < c->ntouched; i++) {
        if (c->touched[i] == id)
            return 0;
    }
    if (grow((void **)&c->touched, &c->cap_touched, c->ntouched + 1, sizeof *c->touched))
        return NSDB_ERR_NOMEM;
    c->touched[c->ntouched++] = id;
    return 0;
}

/* A BF=1 frame from a station connected here: it waits for the decision. */
static int add_waiter(nscore_t *c, int64_t msg_id, const work_t *w)
{
    for (size_t i = 0; i < c->nwaiters; i++) {
        if (c->waiters[i].msg_id == msg_id && !strcmp(c->waiters[i].station_id, w->station_id))
            return 0;
    }
    if (grow((void **)&c->waiters, &c->cap_waiters, c->nwaiters + 1, sizeof *c->waiters))
        return -1;
    waiter_t *x = &c->waiters[c->nwaiters++];
    *x = (waiter_t){.msg_id = msg_id,
                    .ep_id = w->msg.ep_id,
                    .mc = w->msg.mc,
                    .deadline = w->rx_s + c->cfg.dl_pending_timeout_s};
    snprintf(x->station_id, sizeof x->station_id, "%s", w->station_id);
    return 0;
}

static void add_message_fields(json_object *j, const ul_message_t *m, int64_t msg_id)
{
    framejson_add(j, "msg_id", json_object_new_int64(msg_id));
    framejson_add_message(j, m);
    framejson_add_auth(j, FRAMEJSON_AUTH_OK);
}

static int build_message_event(nscore_t *c, const new_msg_t *nm)
{
    const work_t *w = nm->first;
    pending_event_t *e =
        new_event(c, nm->accepted ? NSCORE_EV_MESSAGE : NSCORE_EV_REPLAY,
                  nm->accepted ? "message" : "replay");
    if (!e)
        return NSDB_ERR_NOMEM;
    e->msg_id = nm->msg_id;
    e->ep_id = w->msg.ep_id;
    e->mc = w->msg.mc;
    e->has_msg = true;
    e->msg = w->msg;
    e->prio = w->prio;
    snprintf(e->station_id, sizeof e->station_id, "%s", w->station_id);
    json_object *j = e->json;
    add_message_fields(j, &w->msg, nm->msg_id);
    framejson_add(j, "station_id", json_object_new_string(w->station_id));
    framejson_add(j, "rank", json_object_new_int(w->rank));
    add_num(j, "freq_hz", w->freq_hz, 1);
    add_num(j, "snr_db", w->snr_db, 2);
    add_num(j, "rssi_dbfs", w->rssi_dbfs, 2);
    add_time(j, "time_utc", w->t_s);
    add_time(j, "rx_utc", w->rx_s);
    framejson_add(j, "instance", json_object_new_string(c->instance));
    if (!nm->accepted) {
        if (nm->last_mc >= 0)
            framejson_add(j, "last_mc", json_object_new_int(nm->last_mc));
        else
            json_object_object_add(j, "last_mc", NULL);
        return 0;
    }
    json_object *st = NULL;
    int nframes = 0;
    int rc = stations_json(c, nm->msg_id, &st, &nframes);
    if (rc < 0)
        return rc;
    framejson_add(j, "nframes", json_object_new_int(nframes));
    framejson_add(j, "stations", st);
    nsdb_val_t p[] = {NSDB_INT(nm->msg_id), NSDB_TEXT(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN))};
    rc = nsdb_exec(c->db, "UPDATE ns_messages SET event = $2 WHERE id = $1", p, 2);
    return rc < 0 ? rc : 0;
}

static int build_update_event(nscore_t *c, int64_t id)
{
    nsdb_rows_t *r = NULL;
    nsdb_val_t p[] = {NSDB_INT(id)};
    int rc = nsdb_query(c->db, "SELECT ep_id, mc, status FROM ns_messages WHERE id = $1", p, 1, &r);
    if (rc < 0)
        return rc;
    bool ok = nsdb_rows_count(r) && !strcmp(nsdb_rows_text(r, 0, 2), "ok");
    uint32_t ep_id = (uint32_t)nsdb_rows_int(r, 0, 0);
    uint16_t mc = (uint16_t)nsdb_rows_int(r, 0, 1);
    nsdb_rows_free(r);
    if (!ok)
        return 0; /* replicas of a refused message: counted, not published */
    json_object *st = NULL;
    int nframes = 0;
    if ((rc = stations_json(c, id, &st, &nframes)) < 0)
        return rc;
    pending_event_t *e = new_event(c, NSCORE_EV_UPDATE, "message_update");
    if (!e) {
        json_object_put(st);
        return NSDB_ERR_NOMEM;
    }
    e->msg_id = id;
    e->ep_id = ep_id;
    e->mc = mc;
    e->prio = 2;
    framejson_add(e->json, "msg_id", json_object_new_int64(id));
    framejson_add_ep_id(e->json, ep_id);
    framejson_add(e->json, "mc", json_object_new_int(mc));
    framejson_add(e->json, "nframes", json_object_new_int(nframes));
    framejson_add(e->json, "stations", st);
    return 0;
}

/* Counters of one attempt, added to the stats only when it commits. */
typedef struct {
    uint64_t bad, auth_bad, unknown, duplicate, resent, messages, replays, updates;
} tx_counts_t;

static int process_all(nscore_t *c, size_t n, tx_counts_t *k, double now)
{
    for (size_t i = 0; i < n; i++) {
        work_t *w = &c->work[i];
        nsreg_device_t d;
        int rc = device_lookup(c, w->msg.ep_id, now, &d);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            k->unknown++;
            log_debug("Frame from an unknown device, ep_id: %08X, mc: %u, station: %s",
                      (unsigned)w->msg.ep_id, w->msg.mc, w->station_id);
            continue;
        }
        if (ul_auth_verify(w->container, w->container_len, d.key) != 1) {
            k->auth_bad++;
            log_warn("Frame failed UL-AUTH at the core, ep_id: %08X, mc: %u, station: %s",
                     (unsigned)w->msg.ep_id, w->msg.mc, w->station_id);
            continue;
        }
        int64_t id = 0;
        int won = claim(c, w, &id);
        if (won < 0)
            return won;
        int seen = won ? stored_reception(c, w, &id) : 0;
        if (seen < 0)
            return seen;
        if (seen) {
            k->duplicate++;
            k->resent++;
        } else if (won) {
            if ((rc = new_message(c, w, &d)) < 0)
                return rc;
            id = c->newmsgs[c->nnew - 1].msg_id;
            if (c->newmsgs[c->nnew - 1].accepted)
                k->messages++;
            else
                k->replays++;
        } else {
            k->duplicate++;
            rc = add_reception(c, id, w);
            if (rc < 0)
                return rc;
            if (rc == 0)
                k->resent++;
            else if (!is_new_here(c, id) && c->cfg.update_events && (rc = touch(c, id)) < 0)
                return rc;
        }
        if (w->msg.bf && c->send && add_waiter(c, id, w) < 0)
            return NSDB_ERR_NOMEM;
    }
    return 0;
}

static int ev_prio_cmp(const void *a, const void *b)
{
    const pending_event_t *x = a, *y = b;
    return x->prio - y->prio;
}

static void add_owner(nscore_t *c, const new_msg_t *nm, const nsreg_device_t *d)
{
    pthread_mutex_lock(&c->lock);
    if (!grow((void **)&c->owners, &c->cap_owners, c->nowners + 1, sizeof *c->owners)) {
        owner_t *o = &c->owners[c->nowners++];
        *o = (owner_t){.msg_id = nm->msg_id,
                       .ep_id = nm->first->msg.ep_id,
                       .mc = nm->first->msg.mc,
                       .dev = *d,
                       .decide_at = nm->first->rx_s + c->cfg.dl_collect_s,
                       .answer_deadline = nm->first->rx_s + c->cfg.dl_answer_timeout_s};
        c->stats.dl_requests++;
    }
    pthread_mutex_unlock(&c->lock);
}

int nscore_ingest(nscore_t *c, const nscore_frame_t *frames, size_t n)
{
    if (!c || (n && !frames))
        return NSDB_ERR_ARG;
    if (n > NSCORE_MAX_INGEST_FRAMES) {
        log_error("Ingest refused, frames: %zu, limit: %d", n, NSCORE_MAX_INGEST_FRAMES);
        return NSDB_ERR_ARG;
    }
    if (grow((void **)&c->work, &c->cap_work, n ? n : 1, sizeof *c->work))
        return NSDB_ERR_NOMEM;
    size_t nw = 0;
    uint64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        char why[128];
        if (parse_frame(&frames[i], &c->work[nw], why, sizeof why) < 0) {
            bad++;
            log_warn("Frame refused, station: %s, reason: %s",
                     frames[i].station_id ? frames[i].station_id : "?", why);
            continue;
        }
        nw++;
    }
    if (nw > 1)
        qsort(c->work, nw, sizeof *c->work, work_cmp);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + ts.tv_nsec * 1e-9;

    int rc = 0;
    tx_counts_t k;
    size_t nwaiters0 = c->nwaiters;
    for (int attempt = 0; attempt <= MAX_RETRIES; attempt++) {
        memset(&k, 0, sizeof k);
        clear_events(c);
        c->nnew = c->ntouched = 0;
        c->nwaiters = nwaiters0;
        if (nw == 0)
            break;
        rc = nsdb_begin(c->db);
        if (rc == 0)
            rc = process_all(c, nw, &k, now);
        for (size_t i = 0; rc == 0 && i < c->nnew; i++)
            rc = build_message_event(c, &c->newmsgs[i]);
        for (size_t i = 0; rc == 0 && i < c->ntouched; i++)
            rc = build_update_event(c, c->touched[i]);
        for (size_t i = 0; rc == 0 && i < c->nevents; i++)
            rc = run_hooks(c, &c->events[i], NSCORE_HOOK_IN_TX);
        if (rc == 0)
            rc = nsdb_commit(c->db);
        if (rc == 0)
            break;
        nsdb_rollback(c->db);
        if (rc != NSDB_ERR_RETRY)
            break;
        STAT_ADD(c, retries, 1);
        /* another writer holds the rows; let it finish */
        struct timespec d = {0, 2000000L * (attempt + 1)};
        nanosleep(&d, NULL);
    }
    k.updates = 0;
    for (size_t i = 0; i < c->nevents; i++)
        k.updates += c->events[i].type == NSCORE_EV_UPDATE;
    pthread_mutex_lock(&c->lock);
    c->stats.frames_in += n;
    c->stats.frames_bad += bad;
    if (rc == 0) {
        c->stats.transactions += nw > 0;
        c->stats.frames_auth_bad += k.auth_bad;
        c->stats.frames_unknown_device += k.unknown;
        c->stats.frames_duplicate += k.duplicate;
        c->stats.frames_resent += k.resent;
        c->stats.messages += k.messages;
        c->stats.replays += k.replays;
        c->stats.updates += k.updates;
    } else {
        c->stats.db_errors++;
    }
    pthread_mutex_unlock(&c->lock);
    if (rc < 0) {
        log_error("Database transaction failed, frames: %zu, error: %s (%s)", n,
                  nsdb_strerror(rc), nsdb_errmsg(c->db));
        clear_events(c);
        c->nwaiters = nwaiters0;
        return rc;
    }
    /* committed: downlink owners, then delivery in priority order */
    for (size_t i = 0; i < c->nnew; i++) {
        const new_msg_t *nm = &c->newmsgs[i];
        if (nm->accepted && nm->first->msg.bf) {
            nsreg_device_t d;
            if (device_lookup(c, nm->first->msg.ep_id, now, &d) == 1)
                add_owner(c, nm, &d);
        }
        if (!nm->accepted)
            log_warn("Replayed message refused, ep_id: %08X, mc: %u, last_mc: %d, station: %s",
                     (unsigned)nm->first->msg.ep_id, nm->first->msg.mc, nm->last_mc,
                     nm->first->station_id);
    }
    if (c->nevents > 1)
        qsort(c->events, c->nevents, sizeof *c->events, ev_prio_cmp);
    for (size_t i = 0; i < c->nevents; i++)
        run_hooks(c, &c->events[i], NSCORE_HOOK_COMMITTED);
    clear_events(c);
    return 0;
}

/* ---- downlink ------------------------------------------------------------------- */

static void publish_now(nscore_t *c, pending_event_t *e)
{
    run_hooks(c, e, NSCORE_HOOK_COMMITTED);
}

/* Chooses the station and payload for an owned BF=1 message and records the decision.
 * Returns 0 or NSDB_ERR_*. */
static int decide(nscore_t *c, const owner_t *o, double now)
{
    const char *status = "ok", *reason = "";
    char reason_buf[160];
    const uint8_t *payload = NULL;
    if (o->dev.dl_mode == NSREG_DL_OFF) {
        status = "off";
        reason = "downlink mode off";
    } else if (o->dev.dl_mode == NSREG_DL_DIRECT) {
        if (o->dev.has_dl_payload)
            payload = o->dev.dl_payload;
        else {
            status = "no_payload";
            reason = "direct mode without a downlink_payload";
        }
    } else if (!o->answered) {
        status = "no_answer";
        reason = "no answer from the application in time";
    } else if (o->has_answer) {
        payload = o->answer;
    } else {
        status = "declined";
        reason = "the application declined";
    }
    char station[STATION_ID_MAX] = "";
    nsdb_val_t p[] = {NSDB_INT(o->msg_id)};
    int rc = nsdb_begin(c->db);
    if (rc < 0)
        return rc;
    if (payload && o->dev.dl_quota >= 0) {
        int64_t used = 0;
        nsdb_val_t q[] = {NSDB_INT(o->ep_id), NSDB_REAL(now - 86400.0)};
        rc = nsdb_query_int(c->db,
                            "SELECT COUNT(*) FROM ns_downlinks WHERE ep_id = $1 AND "
                            "station_id IS NOT NULL AND decided_s > $2",
                            q, 2, &used);
        if (rc < 0)
            goto fail;
        if (used >= o->dev.dl_quota) {
            payload = NULL;
            status = "quota";
            snprintf(reason_buf, sizeof reason_buf, "daily quota used: %lld of %d downlinks",
                     (long long)used, o->dev.dl_quota);
            reason = reason_buf;
        }
    }
    if (payload) {
        nsdb_rows_t *r = NULL;
        rc = nsdb_query(c->db,
                        "SELECT station_id FROM ns_receptions WHERE msg_id = $1 AND tx = 1 "
                        "AND snr_db IS NOT NULL ORDER BY snr_db DESC, station_id LIMIT 1",
                        p, 1, &r);
        if (rc < 0)
            goto fail;
        if (nsdb_rows_count(r))
            snprintf(station, sizeof station, "%s", nsdb_rows_text(r, 0, 0));
        nsdb_rows_free(r);
        if (!*station) {
            payload = NULL;
            status = "no_station";
            reason = "no station with a transmitter heard the message";
        }
    }
    char pl_hex[2 * DL_PAYLOAD_BYTES + 1] = "", auth_hex[2 * DL_AUTH_BYTES + 1] = "";
    if (payload) {
        uint8_t auth[DL_AUTH_BYTES];
        if (dl_auth_compute(o->ep_id, o->mc, payload, o->dev.key, auth) < 0) {
            rc = NSDB_ERR_ARG;
            goto fail;
        }
        bytes_to_hex(payload, DL_PAYLOAD_BYTES, pl_hex);
        bytes_to_hex(auth, DL_AUTH_BYTES, auth_hex);
    }
    nsdb_val_t v[] = {NSDB_INT(o->msg_id),
                      NSDB_INT(o->ep_id),
                      NSDB_INT(o->mc),
                      NSDB_TEXT(nsreg_dl_mode_name(o->dev.dl_mode)),
                      payload ? NSDB_TEXT(station) : NSDB_NULLV,
                      payload ? NSDB_TEXT(pl_hex) : NSDB_NULLV,
                      payload ? NSDB_TEXT(auth_hex) : NSDB_NULLV,
                      NSDB_TEXT(payload ? "decided" : status),
                      NSDB_TEXT(reason),
                      NSDB_REAL(now)};
    rc = nsdb_exec(c->db,
                   "INSERT INTO ns_downlinks (msg_id, ep_id, mc, mode, station_id, payload, "
                   "dl_auth, status, reason, decided_s, updated_s) VALUES "
                   "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) "
                   "ON CONFLICT (msg_id) DO NOTHING",
                   v, 10);
    if (rc < 0)
        goto fail;
    if ((rc = nsdb_commit(c->db)) < 0)
        return rc;
    pending_event_t *e = new_event(c, NSCORE_EV_DOWNLINK, "downlink_decided");
    if (e) {
        e->msg_id = o->msg_id;
        e->ep_id = o->ep_id;
        e->mc = o->mc;
        snprintf(e->station_id, sizeof e->station_id, "%s", station);
        framejson_add(e->json, "msg_id", json_object_new_int64(o->msg_id));
        framejson_add_ep_id(e->json, o->ep_id);
        framejson_add(e->json, "mc", json_object_new_int(o->mc));
        framejson_add(e->json, "mode", json_object_new_string(nsreg_dl_mode_name(o->dev.dl_mode)));
        framejson_add(e->json, "status", json_object_new_string(status));
        if (*reason)
            framejson_add(e->json, "reason", json_object_new_string(reason));
        if (payload) {
            framejson_add(e->json, "station_id", json_object_new_string(station));
            framejson_add(e->json, "payload", json_object_new_string(pl_hex));
            framejson_add(e->json, "dl_auth", json_object_new_string(auth_hex));
        }
        publish_now(c, e);
        clear_events(c);
    }
    pthread_mutex_lock(&c->lock);
    if (payload)
        c->stats.dl_sent++;
    else if (!strcmp(status, "no_answer"))
        c->stats.dl_no_answer++;
    else
        c->stats.dl_declined++;
    pthread_mutex_unlock(&c->lock);
    return 0;
fail:
    nsdb_rollback(c->db);
    return rc;
}

static void send_downlink(nscore_t *c, const waiter_t *w, const char *payload, const char *auth)
{
    char buf[256];
    if (payload && auth)
        snprintf(buf, sizeof buf,
                 "{\"type\":\"downlink\",\"ep_id\":\"%08X\",\"mc\":%u,\"payload\":\"%s\","
                 "\"dl_auth\":\"%s\"}",
                 (unsigned)w->ep_id, w->mc, payload, auth);
    else
        snprintf(buf, sizeof buf,
                 "{\"type\":\"downlink\",\"ep_id\":\"%08X\",\"mc\":%u,\"payload\":null}",
                 (unsigned)w->ep_id, w->mc);
    if (c->send && c->send(w->station_id, buf, c->send_user) < 0)
        log_warn("Downlink answer not sent, station not connected, station: %s, ep_id: %08X, "
                 "mc: %u",
                 w->station_id, (unsigned)w->ep_id, w->mc);
}

/* Tells the waiting stations of decided messages (any instance may have decided). */
static int answer_waiters(nscore_t *c, double now)
{
    size_t keep = 0;
    int rc = 0;
    for (size_t i = 0; i < c->nwaiters; i++) {
        waiter_t w = c->waiters[i];
        bool done = false;
        if (rc == 0) {
            nsdb_rows_t *r = NULL;
            nsdb_val_t p[] = {NSDB_INT(w.msg_id)};
            rc = nsdb_query(c->db,
                            "SELECT station_id, payload, dl_auth FROM ns_downlinks "
                            "WHERE msg_id = $1",
                            p, 1, &r);
            if (rc >= 0 && nsdb_rows_count(r)) {
                const char *st = nsdb_rows_text(r, 0, 0);
                bool chosen = st && !strcmp(st, w.station_id);
                send_downlink(c, &w, chosen ? nsdb_rows_text(r, 0, 1) : NULL,
                              chosen ? nsdb_rows_text(r, 0, 2) : NULL);
                done = true;
            }
            nsdb_rows_free(r);
            rc = rc < 0 ? rc : 0;
        }
        if (!done && now > w.deadline) {
            send_downlink(c, &w, NULL, NULL);
            done = true;
        }
        if (!done)
            c->waiters[keep++] = w;
    }
    c->nwaiters = keep;
    return rc;
}

int nscore_tick(nscore_t *c, double now)
{
    int rc = 0;
    for (;;) {
        owner_t o;
        bool found = false;
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; i < c->nowners; i++) {
            owner_t *x = &c->owners[i];
            bool due = now >= x->decide_at &&
                       (x->dev.dl_mode != NSREG_DL_CALLBACK || x->answered ||
                        now >= x->answer_deadline);
            if (due) {
                o = *x;
                c->owners[i] = c->owners[--c->nowners];
                found = true;
                break;
            }
        }
        pthread_mutex_unlock(&c->lock);
        if (!found)
            break;
        rc = decide(c, &o, now);
        if (rc < 0) {
            /* put it back, try again on the next tick */
            pthread_mutex_lock(&c->lock);
            if (!grow((void **)&c->owners, &c->cap_owners, c->nowners + 1, sizeof *c->owners))
                c->owners[c->nowners++] = o;
            pthread_mutex_unlock(&c->lock);
            log_error("Downlink decision failed, ep_id: %08X, mc: %u, error: %s",
                      (unsigned)o.ep_id, o.mc, nsdb_errmsg(c->db));
            return rc;
        }
    }
    if (c->nwaiters)
        rc = answer_waiters(c, now);
    return rc;
}

int nscore_downlink_answer(nscore_t *c, uint32_t ep_id, uint16_t mc, const uint8_t *payload)
{
    int rc = -1;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->nowners; i++) {
        owner_t *o = &c->owners[i];
        if (o->ep_id == ep_id && o->mc == mc && o->dev.dl_mode == NSREG_DL_CALLBACK &&
            !o->answered) {
            o->answered = true;
            o->has_answer = payload != NULL;
            if (payload)
                memcpy(o->answer, payload, NSREG_DL_PAYLOAD_BYTES);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int nscore_station_event(nscore_t *c, const char *station_id, json_object *event)
{
    const char *type = event ? get_str(event, "type") : NULL;
    static const char *const known[] = {"downlink_scheduled", "downlink_sent",    "downlink_ack",
                                        "downlink_lost",      "downlink_failed",  "downlink_refused",
                                        "downlink_no_answer", "downlink_request"};
    size_t k = 0;
    while (type && k < sizeof known / sizeof known[0] && strcmp(type, known[k]))
        k++;
    if (!type || k == sizeof known / sizeof known[0]) {
        log_warn("Station event refused, station: %s, reason: unknown or missing type", station_id);
        return -1;
    }
    const char *id = get_str(event, "ep_id");
    uint32_t ep_id;
    json_object *v;
    if (!id || hex_to_ep_id(id, &ep_id) < 0 || !json_object_object_get_ex(event, "mc", &v) ||
        !json_object_is_type(v, json_type_int) || json_object_get_int(v) < 0 ||
        json_object_get_int(v) > UL_MC_MAX) {
        log_warn("Station event refused, station: %s, type: %s, reason: bad ep_id or mc",
                 station_id, type);
        return -1;
    }
    uint16_t mc = (uint16_t)json_object_get_int(v);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    /* the chosen station's outcome updates the decision's row */
    nsdb_val_t p[] = {NSDB_INT(ep_id), NSDB_INT(mc), NSDB_TEXT(station_id),
                      NSDB_TEXT(type + strlen("downlink_")), NSDB_REAL(now)};
    int rc = nsdb_exec(c->db,
                       "UPDATE ns_downlinks SET status = $4, updated_s = $5 WHERE station_id = $3 AND "
                       "msg_id = (SELECT MAX(msg_id) FROM ns_downlinks WHERE ep_id = $1 AND mc = $2)",
                       p, 5);
    if (rc < 0) {
        log_error("Downlink outcome not stored, error: %s", nsdb_errmsg(c->db));
        return rc;
    }
    pending_event_t *e = new_event(c, NSCORE_EV_DOWNLINK, type);
    if (!e)
        return -1;
    json_object_object_foreach(event, key, val)
    {
        if (strcmp(key, "type") && strcmp(key, "format_version") && strcmp(key, "station_id"))
            json_object_object_add(e->json, key, json_object_get(val));
    }
    framejson_add(e->json, "station_id", json_object_new_string(station_id));
    e->ep_id = ep_id;
    e->mc = mc;
    snprintf(e->station_id, sizeof e->station_id, "%s", station_id);
    publish_now(c, e);
    clear_events(c);
    if (!strcmp(type, "downlink_ack"))
        STAT_ADD(c, dl_acks, 1);
    else if (!strcmp(type, "downlink_lost"))
        STAT_ADD(c, dl_lost, 1);
    return 0;
}
