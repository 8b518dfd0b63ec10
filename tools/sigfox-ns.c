/* sigfox-ns: the Sigfox network core. Stations (sigfoxd with core.endpoint) connect over
 * ZeroMQ + CURVE and send batches of frames; the core deduplicates them into messages,
 * checks UL-AUTH and the anti-replay window centrally, stores everything in SQLite or
 * PostgreSQL, publishes events and answers BF=1 with a downlink through the best station.
 * Licence: MIT. docs/ns.md is the manual; its section "Wire protocol" describes the station
 * link.
 *
 * Threads: main (ROUTER socket, ingest, downlink timers: the only user of the ingest
 * database connection and the ROUTER), ZAP (station key check), commands (REP socket, its
 * own database connection). Exit: 0 clean stop, 64 bad usage/config, 1 runtime failure.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "cliutil.h"
#include "hexutil.h"
#include "jsonstrict.h"
#include "keys.h"
#include "log.h"
#include "nsconf.h"
#include "nscore.h"
#include "nsdb.h"
#include "nsint.h"
#include "nsreg.h"
#include "nssoft.h"
#include "evjson.h"
#include "publisher.h"
#include "svcnotify.h"

#ifndef SIGFOXD_VERSION
#define SIGFOXD_VERSION "unknown"
#endif

#define PROG "sigfox-ns"
#define MAX_BODY_BYTES (1 << 20)          /* docs/ns.md "Wire protocol": larger is refused */
#define MAX_WIRE_BYTES (2 * MAX_BODY_BYTES) /* ZeroMQ drops a peer sending more */
#define MAX_TX_FRAMES 1000                /* frames per database transaction */
/* Batches held while the database is away: all of them go into one nscore_ingest(), so
 * they must fit its limit however long the outage lasts; more stay queued in ZeroMQ. */
#define MAX_PENDING_BATCHES (NSCORE_MAX_INGEST_FRAMES / NSCORE_MAX_BATCH_FRAMES)
/* Frames recovered by soft combining waiting for their transaction (one per member
 * station); more are dropped and counted while the database is down. */
#define MAX_COMBINED_FRAMES 1024
#define ROUTING_ID_MAX 256
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "sigfox-ns"

static const char usage_text[] =
    "Usage: sigfox-ns [OPTIONS]            run the network core\n"
    "       sigfox-ns keygen [--out PREFIX] make a CURVE key pair (core or station)\n"
    "\n"
    "  -c, --config FILE        configuration (default " NSCONF_DEFAULT_FILE ")\n"
    "      --no-config          ignore every configuration file\n"
    "      --listen EP          station endpoint (ns.listen, default tcp://*:5590)\n"
    "      --secret-key-file F  the core's CURVE secret key (ns.secret_key_file)\n"
    "      --station ID=PUBKEY  accept a station (repeatable; adds to stations.list)\n"
    "      --storage URL        sqlite:///path/ns.db or postgresql://... (storage.url)\n"
    "      --pub EP             event socket (api.pub_endpoint)\n"
    "      --cmd EP             command socket (api.cmd_endpoint)\n"
    "      --instance NAME      this instance's name (ns.instance, default the host name)\n"
    "      --keys FILE          import a keys file (EPID KEY lines) into the registry\n"
    "      --dedup-window S     dedup window after the first frame (dedup.window_s, 30)\n"
    "      --log-level L        error, warning, notice, info, debug (log.level)\n"
    "      --check-config       check the configuration (keys, callback templates, payload\n"
    "                           grammars) and exit: 0 OK, 64 with the file, line and key\n"
    "  -h, --help, --version\n"
    "\n"
    "keygen: prints the public and secret key (Z85); with --out PREFIX writes PREFIX.pub\n"
    "and PREFIX.key (mode 0600) instead.\n";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    if (stop_flag)
        _exit(1); /* second signal: at once */
    stop_flag = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- keygen ----------------------------------------------------------------------- */

static int keygen(int argc, char **argv)
{
    static const struct option lo[] = {{"out", required_argument, 0, 'o'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:h", lo, NULL)) != -1) {
        if (c == 'o')
            out = optarg;
        else {
            int rc = cli_common_opt(c, PROG " keygen", usage_text, argv);
            return rc < 0 ? 0 : rc;
        }
    }
    if (optind < argc)
        return cli_usage_error(PROG, "keygen: unexpected argument %s", argv[optind]);
    char pub[NSCONF_KEY_Z85_LEN + 1], sec[NSCONF_KEY_Z85_LEN + 1];
    if (zmq_curve_keypair(pub, sec) != 0) {
        cli_error(PROG, "keygen: %s (libzmq without CURVE?)", zmq_strerror(zmq_errno()));
        return 1;
    }
    if (!out) {
        printf("public_key = \"%s\"\nsecret_key = \"%s\"\n", pub, sec);
        return 0;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s.key", out);
    mode_t old = umask(077);
    FILE *f = fopen(path, "wx");
    umask(old);
    if (!f) {
        cli_error(PROG, "keygen: cannot create %s: %s", path, strerror(errno));
        return 1;
    }
    fprintf(f, "%s\n", sec);
    if (fclose(f) != 0) {
        cli_error(PROG, "keygen: cannot write %s", path);
        return 1;
    }
    chmod(path, 0600);
    snprintf(path, sizeof path, "%s.pub", out);
    f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", pub) < 0 || fclose(f) != 0) {
        cli_error(PROG, "keygen: cannot write %s", path);
        return 1;
    }
    printf("%s\n", pub);
    return 0;
}

/* ---- state shared by the threads ---------------------------------------------------- */

typedef struct {
    char station_id[64];
    uint8_t rid[ROUTING_ID_MAX];
    size_t rid_len;
    double last_seen;
    double soft_tokens, soft_refill; /* soft frames this station may still send (bucket) */
} route_t;

typedef struct {
    uint8_t rid[ROUTING_ID_MAX];
    size_t rid_len;
    char station_id[64];
    uint64_t seq;
    json_object *root;
    json_object *frames;
} batch_t;

typedef struct {
    char station_id[64];
    json_object *frame;
} combined_t;

typedef struct {
    nsconf_t conf;
    void *zctx;
    void *router;
    void *zap; /* owned by the ZAP thread once it runs */
    nsdb_t *db;  /* main thread */
    nsdb_t *cdb; /* command thread */
    nscore_t *core;
    publisher_t *pub;
    nsint_t *ints;      /* callbacks, MQTT, REST (main thread) */
    svcnotify_t *notify; /* systemd Type=notify */
    route_t *routes;
    size_t nroutes, cap_routes;
    batch_t pending[MAX_PENDING_BATCHES];
    size_t npending;
    nssoft_t *soft;        /* soft combining across stations (NULL: soft.enabled false) */
    pthread_mutex_t soft_lock; /* soft's counters, read by the command thread */
    combined_t combined[MAX_COMBINED_FRAMES];
    size_t ncombined;
    double started;
    /* link counters (main thread writes, command thread reads) */
    atomic_ullong batches, batches_refused, messages_refused, hellos, zap_refused, acks;
    atomic_ullong softframes_refused, softframes_limited, combined_dropped;
} ns_t;


static void link_stats_json(ns_t *ns, json_object *o)
{
    nscore_stats_t st;
    nscore_get_stats(ns->core, &st);
    nscore_stats_json(&st, o);
    const struct {
        const char *name;
        atomic_ullong *v;
    } counters[] = {{"batches", &ns->batches},   {"batches_refused", &ns->batches_refused},
                    {"messages_refused", &ns->messages_refused}, {"hellos", &ns->hellos},
                    {"stations_refused", &ns->zap_refused},     {"acks", &ns->acks},
                    {"softframes_refused", &ns->softframes_refused},
                    {"softframes_limited", &ns->softframes_limited},
                    {"soft_frames_dropped", &ns->combined_dropped}};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        json_object_object_add(o, counters[i].name,
                               json_object_new_int64((int64_t)atomic_load(counters[i].v)));
    if (ns->soft) {
        nssoft_stats_t ss;
        pthread_mutex_lock(&ns->soft_lock);
        nssoft_get_stats(ns->soft, &ss);
        pthread_mutex_unlock(&ns->soft_lock);
        json_object *so = json_object_new_object();
        const struct {
            const char *name;
            uint64_t v;
        } sc[] = {{"softframes_in", ss.softframes_in},   {"softframes_bad", ss.softframes_bad},
                  {"groups_tried", ss.groups_tried},     {"frames_decoded", ss.frames_decoded},
                  {"frames_joint", ss.frames_joint},     {"frames_corrected", ss.frames_corrected},
                  {"late_members", ss.late_members},
                  {"expired", ss.expired},
                  {"dropped", ss.dropped}};
        for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++)
            json_object_object_add(so, sc[i].name, json_object_new_int64((int64_t)sc[i].v));
        json_object_object_add(o, "soft", so);
    }
    json_object_object_add(o, "uptime_s", json_object_new_int64((int64_t)(mono_s() - ns->started)));
    json_object_object_add(o, "instance", json_object_new_string(ns->conf.instance));
    json_object_object_add(o, "version", json_object_new_string(SIGFOXD_VERSION));
}

/* ---- ZAP: which station is this key? -------------------------------------------------- */

/* Binds the ZAP socket (before the ROUTER binds, so no handshake goes unchecked). */
static void *zap_open(ns_t *ns)
{
    void *sock = zmq_socket(ns->zctx, ZMQ_REP);
    int linger = 0;
    if (!sock || zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_bind(sock, ZAP_ENDPOINT) != 0) {
        log_error("ZAP handler cannot bind, error: %s", zmq_strerror(zmq_errno()));
        if (sock)
            zmq_close(sock);
        return NULL;
    }
    return sock;
}

static void *zap_thread(void *arg)
{
    ns_t *ns = arg;
    void *sock = ns->zap;
    log_ratelimit_t rl = {0};
    while (!stop_flag) {
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 200) <= 0)
            continue;
        zmq_msg_t part[8];
        int n = 0, more = 1;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, sock, 0) < 0) {
                zmq_msg_close(&m);
                break;
            }
            more = zmq_msg_more(&m);
            if (n < 8)
                part[n++] = m;
            else
                zmq_msg_close(&m);
        }
        /* version, request id, domain, address, routing id, mechanism, credentials */
        const char *status = "400", *text = "unknown key";
        char user[64] = "", keyz[NSCONF_KEY_Z85_LEN + 1] = "";
        if (n >= 7 && zmq_msg_size(&part[5]) == 5 && !memcmp(zmq_msg_data(&part[5]), "CURVE", 5) &&
            zmq_msg_size(&part[6]) == 32) {
            zmq_z85_encode(keyz, zmq_msg_data(&part[6]), 32);
            for (size_t i = 0; i < ns->conf.nstations; i++) {
                if (!strcmp(ns->conf.stations[i].public_key, keyz)) {
                    snprintf(user, sizeof user, "%s", ns->conf.stations[i].id);
                    status = "200";
                    text = "OK";
                    break;
                }
            }
        } else {
            text = "CURVE required";
        }
        if (*status != '2') {
            atomic_fetch_add(&ns->zap_refused, 1);
            unsigned long long sup = 0;
            if (log_ratelimit(&rl, mono_s(), 10, 60, &sup)) {
                char addr[64] = "?", kesc[128];
                if (n >= 4) {
                    log_escape(zmq_msg_data(&part[3]), zmq_msg_size(&part[3]), addr, sizeof addr);
                }
                log_warn("Station refused, reason: %s, public_key: %s, address: %s%s", text,
                         log_escape_str(*keyz ? keyz : "(none)", kesc, sizeof kesc), addr,
                         sup ? " (more refusals suppressed)" : "");
            }
        }
        if (n >= 2) {
            zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
            zmq_send(sock, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]), ZMQ_SNDMORE);
            zmq_send(sock, status, 3, ZMQ_SNDMORE);
            zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
            zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
            zmq_send(sock, "", 0, 0);
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&part[i]);
    }
    zmq_close(sock);
    return NULL;
}

/* ---- station routing -------------------------------------------------------------- */

static route_t *route_find(ns_t *ns, const char *station)
{
    for (size_t i = 0; i < ns->nroutes; i++) {
        if (!strcmp(ns->routes[i].station_id, station))
            return &ns->routes[i];
    }
    return NULL;
}

static void route_set(ns_t *ns, const char *station, const void *rid, size_t len)
{
    route_t *r = route_find(ns, station);
    if (!r) {
        if (ns->nroutes == ns->cap_routes) {
            size_t cap = ns->cap_routes ? 2 * ns->cap_routes : 16;
            route_t *n = realloc(ns->routes, cap * sizeof *n);
            if (!n)
                return;
            ns->routes = n;
            ns->cap_routes = cap;
        }
        r = &ns->routes[ns->nroutes++];
        snprintf(r->station_id, sizeof r->station_id, "%s", station);
    }
    memcpy(r->rid, rid, len);
    r->rid_len = len;
    r->last_seen = mono_s();
}

static int send_to(ns_t *ns, const void *rid, size_t rid_len, const char *json)
{
    if (zmq_send(ns->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    return zmq_send(ns->router, json, strlen(json), ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

static int send_station(const char *station, const char *json, void *user)
{
    ns_t *ns = user;
    route_t *r = route_find(ns, station);
    if (!r)
        return -1;
    return send_to(ns, r->rid, r->rid_len, json);
}

static void send_error(ns_t *ns, const void *rid, size_t rid_len, const char *station,
                       const char *why, json_object *seq)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("error"));
    json_object_object_add(o, "error", json_object_new_string(why));
    if (seq)
        json_object_object_add(o, "seq", json_object_get(seq));
    send_to(ns, rid, rid_len, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    atomic_fetch_add(&ns->messages_refused, 1);
    static log_ratelimit_t rl;
    unsigned long long sup = 0;
    if (log_ratelimit(&rl, mono_s(), 20, 60, &sup)) {
        char esc[256];
        log_warn("Station message refused, station: %s, reason: %s%s", station,
                 log_escape_str(why, esc, sizeof esc), sup ? " (more suppressed)" : "");
    }
}

/* ---- soft combining across stations (nssoft.h) ---------------------------------------- */

/* A frame nssoft decoded from several stations' soft values: one frame object per member
 * station, as that station would have sent it had it decoded the frame itself, plus
 * "combined" (how many stations' soft values were summed); ingested with the next
 * transaction, where CRC, registry and UL-AUTH are checked like any frame's. */
static void on_soft_decoded(const nssoft_result_t *r, void *user)
{
    ns_t *ns = user;
    const ul_frame_t *f = &r->frame;
    char hex[2 * UL_MAX_CONTAINER_BYTES + 1], ft[8], crc[8], utc[40];
    bytes_to_hex(f->container, f->container_len, hex);
    snprintf(crc, sizeof crc, "%04X", (unsigned)f->crc);
    for (size_t i = 0; i < r->nmembers; i++) {
        const nssoft_member_t *m = &r->members[i];
        snprintf(ft, sizeof ft, "%04X", (unsigned)ul_ft_value(f->container_len, f->control, m->rank));
        if (ns->ncombined == MAX_COMBINED_FRAMES) {
            atomic_fetch_add(&ns->combined_dropped, 1);
            continue;
        }
        json_object *o = json_object_new_object();
        if (!o) {
            atomic_fetch_add(&ns->combined_dropped, 1);
            continue;
        }
        json_object_object_add(o, "container", json_object_new_string(hex));
        json_object_object_add(o, "ft", json_object_new_string(ft));
        json_object_object_add(o, "ul_crc", json_object_new_string(crc));
        json_object_object_add(o, "rank", json_object_new_int(m->rank));
        json_object_object_add(o, "baud", json_object_new_int(m->baud));
        json_object_object_add(o, "time_utc",
                               json_object_new_string(publisher_time_utc(m->t_s, utc, sizeof utc)));
        if (isfinite(m->snr_db))
            json_object_object_add(o, "snr_db", json_object_new_double(m->snr_db));
        if (isfinite(m->rssi_dbfs))
            json_object_object_add(o, "rssi_dbfs", json_object_new_double(m->rssi_dbfs));
        json_object_object_add(o, "freq_hz", json_object_new_double(m->freq_hz));
        json_object_object_add(o, "combined", json_object_new_int((int)r->ncombined));
        combined_t *c = &ns->combined[ns->ncombined++];
        snprintf(c->station_id, sizeof c->station_id, "%s", m->station_id);
        c->frame = o;
    }
    char id[9];
    snprintf(id, sizeof id, "%08X", (unsigned)f->msg.ep_id);
    log_info("Frame recovered by soft combining, device: %s, mc: %u, rank: %d, stations: %zu",
             id, (unsigned)f->msg.mc, r->members[0].rank, r->ncombined);
}

/* {"type":"softframe","softframe":{...}} from a station (evjson.h). The burst's time is
 * the station's time_utc, or the arrival when the station has no sensible clock. */
static void on_softframe(ns_t *ns, const void *rid, size_t rid_len, const char *station,
                         json_object *root)
{
    if (!ns->soft)
        return; /* soft.enabled = false: ignored, not an error */
    /* one station cannot take the ingest thread: at most soft.max_per_station_s soft
       frames a second each (a bucket of one second's worth), the rest counted */
    route_t *rt = route_find(ns, station);
    if (rt) {
        double now_m = mono_s(), rate = ns->conf.soft_max_per_station_s;
        rt->soft_tokens = fmin(rate, rt->soft_tokens + (now_m - rt->soft_refill) * rate);
        rt->soft_refill = now_m;
        if (rt->soft_tokens < 1) {
            atomic_fetch_add(&ns->softframes_limited, 1);
            return;
        }
        rt->soft_tokens -= 1;
    }
    json_object *sfo = NULL;
    static rx_softframe_t sf; /* main thread only; too large for the stack of a callback */
    char err[160];
    if (!json_object_object_get_ex(root, "softframe", &sfo) ||
        !json_object_is_type(sfo, json_type_object)) {
        atomic_fetch_add(&ns->softframes_refused, 1);
        send_error(ns, rid, rid_len, station, "softframe without a softframe object", NULL);
        return;
    }
    if (evjson_softframe_parse(sfo, &sf, err, sizeof err) < 0) {
        atomic_fetch_add(&ns->softframes_refused, 1);
        char why[200];
        snprintf(why, sizeof why, "softframe refused: %s", err);
        send_error(ns, rid, rid_len, station, why, NULL);
        return;
    }
    double now = now_s(), t = now;
    json_object *v;
    double tu;
    if (json_object_object_get_ex(sfo, "time_utc", &v) && json_object_is_type(v, json_type_string) &&
        nscore_parse_utc(json_object_get_string(v), &tu) == 0 && fabs(tu - now) < 3600.0 * 24 * 2)
        t = tu;
    pthread_mutex_lock(&ns->soft_lock);
    nssoft_push(ns->soft, station, &sf, t, now);
    pthread_mutex_unlock(&ns->soft_lock);
}

/* nssoft's chase decoder asks the registry for a device's key (main thread, as ingest). */
static int registry_key_of(uint32_t ep_id, uint8_t key[UL_KEY_BYTES], void *user)
{
    ns_t *ns = user;
    return nscore_device_key(ns->core, ep_id, key);
}

/* Ingests the frames soft combining recovered (their own transaction). Returns 0, or < 0
 * when the database failed (they stay). */
static int flush_combined(ns_t *ns)
{
    if (ns->ncombined == 0)
        return 0;
    nscore_frame_t frames[MAX_COMBINED_FRAMES];
    double rx = now_s();
    for (size_t i = 0; i < ns->ncombined; i++)
        frames[i] = (nscore_frame_t){.station_id = ns->combined[i].station_id,
                                     .frame = ns->combined[i].frame,
                                     .rx_s = rx};
    int rc = nscore_ingest(ns->core, frames, ns->ncombined);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < ns->ncombined; i++)
        json_object_put(ns->combined[i].frame);
    ns->ncombined = 0;
    return 0;
}

/* ---- one message from a station ---------------------------------------------------- */

static void on_station_message(ns_t *ns, zmq_msg_t *rid, zmq_msg_t *body)
{
    const char *uid = zmq_msg_gets(body, "User-Id");
    char station[64];
    snprintf(station, sizeof station, "%s", uid ? uid : "");
    if (!*station)
        return; /* ZAP always sets it; without CURVE nobody gets here */
    if (zmq_msg_size(rid) > ROUTING_ID_MAX)
        return;
    route_set(ns, station, zmq_msg_data(rid), zmq_msg_size(rid));
    const void *r = zmq_msg_data(rid);
    size_t rl = zmq_msg_size(rid);
    if (zmq_msg_size(body) > MAX_BODY_BYTES) {
        send_error(ns, r, rl, station, "message larger than 1 MiB", NULL);
        return;
    }
    char err[160];
    json_object *root = jsonstrict_parse(zmq_msg_data(body), zmq_msg_size(body), 8, err, sizeof err);
    if (!root || !json_object_is_type(root, json_type_object)) {
        char why[200];
        snprintf(why, sizeof why, "not a JSON object: %s", root ? "other value" : err);
        send_error(ns, r, rl, station, why, NULL);
        json_object_put(root);
        return;
    }
    json_object *tv = NULL;
    const char *type = json_object_object_get_ex(root, "type", &tv) &&
                               json_object_is_type(tv, json_type_string)
                           ? json_object_get_string(tv)
                           : "";
    if (!strcmp(type, "batch")) {
        json_object *seq = NULL, *frames = NULL;
        if (!json_object_object_get_ex(root, "seq", &seq) || !json_object_is_type(seq, json_type_int) ||
            json_object_get_int64(seq) < 0) {
            send_error(ns, r, rl, station, "batch without a seq (non-negative integer)", NULL);
        } else if (!json_object_object_get_ex(root, "frames", &frames) ||
                   !json_object_is_type(frames, json_type_array) ||
                   json_object_array_length(frames) < 1 ||
                   json_object_array_length(frames) > NSCORE_MAX_BATCH_FRAMES) {
            atomic_fetch_add(&ns->batches_refused, 1);
            send_error(ns, r, rl, station, "batch needs 1 .. 100 frames (seeds/000 §7.1.1.3)", seq);
        } else if (ns->npending < MAX_PENDING_BATCHES) {
            batch_t *b = &ns->pending[ns->npending++];
            memcpy(b->rid, r, rl);
            b->rid_len = rl;
            snprintf(b->station_id, sizeof b->station_id, "%s", station);
            b->seq = json_object_get_uint64(seq);
            b->root = root;
            b->frames = frames;
            atomic_fetch_add(&ns->batches, 1);
            return; /* root kept until the batch is committed */
        }
    } else if (!strcmp(type, "hello")) {
        nsreg_station_t s = {.lat = NAN, .lng = NAN, .alt = NAN};
        snprintf(s.station_id, sizeof s.station_id, "%s", station);
        json_object *v;
        if (json_object_object_get_ex(root, "lat", &v) && json_object_is_type(v, json_type_double))
            s.lat = json_object_get_double(v);
        if (json_object_object_get_ex(root, "lng", &v) && json_object_is_type(v, json_type_double))
            s.lng = json_object_get_double(v);
        if (json_object_object_get_ex(root, "alt", &v) &&
            (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
            s.alt = json_object_get_double(v);
        s.tx = json_object_object_get_ex(root, "tx", &v) && json_object_get_boolean(v);
        if (json_object_object_get_ex(root, "version", &v) && json_object_is_type(v, json_type_string))
            log_escape_str(json_object_get_string(v), s.version, sizeof s.version);
        atomic_fetch_add(&ns->hellos, 1);
        if (nsreg_station_seen(ns->db, &s, ns->conf.instance, now_s()) < 0)
            log_error("Station not recorded, station: %s, error: %s", station, nsdb_errmsg(ns->db));
        log_info("Station connected, station: %s, tx: %s, version: %s", station,
                 s.tx ? "yes" : "no", s.version);
        /* a `station` event, so monitors (and test drivers) see who is connected */
        json_object *ev = json_object_new_object();
        json_object_object_add(ev, "type", json_object_new_string("station"));
        json_object_object_add(ev, "format_version", json_object_new_int(PUBLISHER_FORMAT_VERSION));
        json_object_object_add(ev, "event", json_object_new_string("hello"));
        json_object_object_add(ev, "station_id", json_object_new_string(station));
        json_object_object_add(ev, "tx", json_object_new_boolean(s.tx));
        json_object_object_add(ev, "instance", json_object_new_string(ns->conf.instance));
        publisher_publish_json(ns->pub, "station", ev);
        json_object_put(ev);
    } else if (!strcmp(type, "event")) {
        json_object *ev = NULL;
        if (!json_object_object_get_ex(root, "event", &ev) || !json_object_is_type(ev, json_type_object))
            send_error(ns, r, rl, station, "event without an event object", NULL);
        else
            nscore_station_event(ns->core, station, ev);
    } else if (!strcmp(type, "softframe")) {
        on_softframe(ns, r, rl, station, root);
    } else if (!strcmp(type, "ping")) {
        send_to(ns, r, rl, "{\"type\":\"pong\"}");
    } else {
        send_error(ns, r, rl, station, "unknown type", NULL);
    }
    json_object_put(root);
}

/* Commits the pending batches (one transaction) and acknowledges them. Returns 0, or < 0
 * when the database failed (the batches stay pending). */
static int flush_pending(ns_t *ns)
{
    if (ns->npending == 0)
        return 0;
    static nscore_frame_t frames[MAX_PENDING_BATCHES * NSCORE_MAX_BATCH_FRAMES];
    size_t n = 0;
    double rx = now_s();
    for (size_t i = 0; i < ns->npending; i++) {
        batch_t *b = &ns->pending[i];
        for (size_t k = 0; k < json_object_array_length(b->frames); k++)
            frames[n++] = (nscore_frame_t){.station_id = b->station_id,
                                           .frame = json_object_array_get_idx(b->frames, k),
                                           .rx_s = rx};
    }
    int rc = nscore_ingest(ns->core, frames, n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < ns->npending; i++) {
        batch_t *b = &ns->pending[i];
        char ack[64];
        snprintf(ack, sizeof ack, "{\"type\":\"ack\",\"seq\":%llu}", (unsigned long long)b->seq);
        if (send_to(ns, b->rid, b->rid_len, ack) == 0)
            atomic_fetch_add(&ns->acks, 1);
        json_object_put(b->root);
    }
    ns->npending = 0;
    return 0;
}

/* ---- hooks and commands ------------------------------------------------------------- */

static int publish_hook(const nscore_event_t *ev, nsdb_t *db, void *user)
{
    (void)db;
    ns_t *ns = user;
    publisher_publish_json(ns->pub, ev->topic, ev->json);
    return 0;
}

static int get_ep_id(json_object *req, uint32_t *ep_id, char *err, size_t err_len)
{
    json_object *v;
    if (!json_object_object_get_ex(req, "ep_id", &v) || !json_object_is_type(v, json_type_string) ||
        hex_to_ep_id(json_object_get_string(v), ep_id) < 0) {
        snprintf(err, err_len, "ep_id: expected 8 hex digits");
        return -1;
    }
    return 0;
}

static int db_fail(nsdb_t *db, char *err, size_t err_len)
{
    snprintf(err, err_len, "database: %s", nsdb_errmsg(db));
    return -1;
}

static int cmd_stats(json_object *req, json_object *reply, void *user, char *err, size_t err_len)
{
    (void)req, (void)err, (void)err_len;
    json_object *o = json_object_new_object();
    link_stats_json(user, o);
    json_object_object_add(reply, "stats", o);
    return 0;
}

/* The device req names (ep_id): 1 found, 0 not, -1 with err (bad ep_id, database). */
static int device_of(ns_t *ns, json_object *req, uint32_t *id, nsreg_device_t *d, char *err,
                     size_t err_len)
{
    if (get_ep_id(req, id, err, err_len) < 0)
        return -1;
    int rc = nsreg_device_get(ns->cdb, *id, d);
    return rc < 0 ? db_fail(ns->cdb, err, err_len) : rc;
}

static int cmd_device_set(json_object *req, json_object *reply, void *user, char *err,
                          size_t err_len)
{
    ns_t *ns = user;
    uint32_t id;
    nsreg_device_t d;
    int rc = device_of(ns, req, &id, &d, err, err_len);
    if (rc < 0)
        return -1;
    json_object *v;
    if (rc == 0) {
        if (!json_object_object_get_ex(req, "key", &v)) {
            snprintf(err, err_len, "key: required for a new device");
            return -1;
        }
        nsreg_device_init(&d, id, NULL);
    }
    if (nsreg_device_from_json(req, &d, err, err_len) < 0)
        return -1;
    if (nsreg_device_put(ns->cdb, &d, now_s()) < 0)
        return db_fail(ns->cdb, err, err_len);
    nscore_registry_changed(ns->core);
    json_object *o = json_object_new_object();
    nsreg_device_to_json(&d, false, o);
    json_object_object_add(reply, "device", o);
    json_object_object_add(reply, "created", json_object_new_boolean(rc == 0));
    return 0;
}

static int cmd_device_get(json_object *req, json_object *reply, void *user, char *err,
                          size_t err_len)
{
    uint32_t id;
    nsreg_device_t d;
    int rc = device_of(user, req, &id, &d, err, err_len);
    if (rc <= 0) {
        if (rc == 0)
            snprintf(err, err_len, "no such device");
        return -1;
    }
    json_object *v;
    bool with_key = json_object_object_get_ex(req, "with_key", &v) && json_object_get_boolean(v);
    json_object *o = json_object_new_object();
    nsreg_device_to_json(&d, with_key, o);
    json_object_object_add(reply, "device", o);
    return 0;
}

static int cmd_device_delete(json_object *req, json_object *reply, void *user, char *err,
                             size_t err_len)
{
    ns_t *ns = user;
    uint32_t id;
    if (get_ep_id(req, &id, err, err_len) < 0)
        return -1;
    int rc = nsreg_device_delete(ns->cdb, id);
    if (rc < 0)
        return db_fail(ns->cdb, err, err_len);
    nscore_registry_changed(ns->core);
    json_object_object_add(reply, "deleted", json_object_new_boolean(rc > 0));
    return 0;
}

static int get_limit(json_object *req, int def)
{
    json_object *v;
    if (!json_object_object_get_ex(req, "limit", &v) || !json_object_is_type(v, json_type_int))
        return def;
    int64_t l = json_object_get_int64(v);
    return l < 1 ? 1 : l > 1000 ? 1000 : (int)l;
}

static int cmd_devices(json_object *req, json_object *reply, void *user, char *err,
                       size_t err_len)
{
    ns_t *ns = user;
    uint32_t after = 0;
    json_object *v;
    if (json_object_object_get_ex(req, "after", &v) && get_ep_id(req, &after, err, err_len) < 0)
        return -1;
    json_object *arr = json_object_new_array();
    json_object_object_add(reply, "devices", arr);
    if (nsreg_device_list(ns->cdb, after, get_limit(req, 100), false, arr) < 0) {
        return db_fail(ns->cdb, err, err_len);
    }
    json_object_object_add(reply, "total", json_object_new_int(nsreg_device_count(ns->cdb)));
    return 0;
}

static int cmd_stations(json_object *req, json_object *reply, void *user, char *err,
                        size_t err_len)
{
    (void)req;
    ns_t *ns = user;
    json_object *arr = json_object_new_array();
    json_object_object_add(reply, "stations", arr);
    if (nsreg_station_list(ns->cdb, arr) < 0) {
        return db_fail(ns->cdb, err, err_len);
    }
    return 0;
}

static int cmd_messages(json_object *req, json_object *reply, void *user, char *err,
                        size_t err_len)
{
    ns_t *ns = user;
    uint32_t id = 0;
    json_object *v;
    bool by_dev = json_object_object_get_ex(req, "ep_id", &v);
    if (by_dev && get_ep_id(req, &id, err, err_len) < 0)
        return -1;
    int64_t after = 0;
    if (json_object_object_get_ex(req, "after_id", &v) && json_object_is_type(v, json_type_int))
        after = json_object_get_int64(v);
    nsdb_val_t p[] = {NSDB_INT(by_dev ? 1 : 0), NSDB_INT(id), NSDB_INT(after),
                      NSDB_INT(get_limit(req, 100))};
    nsdb_rows_t *r = NULL;
    if (nsdb_query(ns->cdb,
                   "SELECT id, ep_id, mc, status, kind, payload, t_first, station_first, instance, "
                   "last_mc, (SELECT COUNT(*) FROM ns_receptions WHERE msg_id = id), "
                   "(SELECT COUNT(DISTINCT station_id) FROM ns_receptions WHERE msg_id = id) "
                   "FROM ns_messages WHERE ($1 = 0 OR ep_id = $2) AND id > $3 ORDER BY id LIMIT $4",
                   p, 4, &r) < 0) {
        return db_fail(ns->cdb, err, err_len);
    }
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < nsdb_rows_count(r); i++) {
        json_object *o = json_object_new_object();
        char ep[16];
        snprintf(ep, sizeof ep, "%08X", (unsigned)nsdb_rows_int(r, i, 1));
        json_object_object_add(o, "msg_id", json_object_new_int64(nsdb_rows_int(r, i, 0)));
        json_object_object_add(o, "ep_id", json_object_new_string(ep));
        json_object_object_add(o, "mc", json_object_new_int((int)nsdb_rows_int(r, i, 2)));
        json_object_object_add(o, "status", json_object_new_string(nsdb_rows_text(r, i, 3)));
        json_object_object_add(o, "kind", json_object_new_string(nsdb_rows_text(r, i, 4)));
        json_object_object_add(o, "payload", json_object_new_string(nsdb_rows_text(r, i, 5)));
        json_object_object_add(o, "t_first", json_object_new_double(nsdb_rows_real(r, i, 6)));
        json_object_object_add(o, "station_first", json_object_new_string(nsdb_rows_text(r, i, 7)));
        json_object_object_add(o, "instance", json_object_new_string(nsdb_rows_text(r, i, 8)));
        if (!nsdb_rows_isnull(r, i, 9))
            json_object_object_add(o, "last_mc", json_object_new_int((int)nsdb_rows_int(r, i, 9)));
        json_object_object_add(o, "nframes", json_object_new_int((int)nsdb_rows_int(r, i, 10)));
        json_object_object_add(o, "nstations", json_object_new_int((int)nsdb_rows_int(r, i, 11)));
        json_object_array_add(arr, o);
    }
    nsdb_rows_free(r);
    json_object_object_add(reply, "messages", arr);
    return 0;
}

static int cmd_downlink(json_object *req, json_object *reply, void *user, char *err,
                        size_t err_len)
{
    ns_t *ns = user;
    uint32_t id;
    if (get_ep_id(req, &id, err, err_len) < 0)
        return -1;
    json_object *v;
    if (!json_object_object_get_ex(req, "mc", &v) || !json_object_is_type(v, json_type_int) ||
        json_object_get_int(v) < 0 || json_object_get_int(v) > UL_MC_MAX) {
        snprintf(err, err_len, "mc: expected 0 .. 4095");
        return -1;
    }
    uint16_t mc = (uint16_t)json_object_get_int(v);
    uint8_t pl[NSREG_DL_PAYLOAD_BYTES];
    const uint8_t *payload = NULL;
    if (!json_object_object_get_ex(req, "payload", &v)) {
        snprintf(err, err_len, "payload: 16 hex digits or null (decline) required");
        return -1;
    }
    if (v) {
        if (!json_object_is_type(v, json_type_string) ||
            hex_to_bytes(json_object_get_string(v), pl, sizeof pl) != NSREG_DL_PAYLOAD_BYTES) {
            snprintf(err, err_len, "payload: expected 16 hex digits or null");
            return -1;
        }
        payload = pl;
    }
    if (nscore_downlink_answer(ns->core, id, mc, payload) < 0) {
        snprintf(err, err_len, "no callback request waits for ep_id %08X mc %u here",
                 (unsigned)id, mc);
        return -1;
    }
    json_object_object_add(reply, "accepted", json_object_new_boolean(1));
    return 0;
}

static void *command_thread(void *arg)
{
    ns_t *ns = arg;
    while (!stop_flag) {
        if (publisher_poll(ns->pub, 100) < 0) {
            log_error("Command socket failed");
            break;
        }
    }
    return NULL;
}

/* ---- main ---------------------------------------------------------------------------- */

static void publish_stats(ns_t *ns)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string("stats"));
    json_object_object_add(o, "format_version", json_object_new_int(PUBLISHER_FORMAT_VERSION));
    char t[40];
    json_object_object_add(o, "time_utc",
                           json_object_new_string(publisher_time_utc(now_s(), t, sizeof t)));
    link_stats_json(ns, o);
    publisher_publish_json(ns->pub, "stats", o);
    json_object_put(o);
}

static int run(ns_t *ns)
{
    nsconf_t *cf = &ns->conf;
    char err[512], red[512];
    /* one connection for ingest (this thread), one for the command thread */
    nsdb_t **conns[] = {&ns->db, &ns->cdb};
    for (size_t i = 0; i < 2; i++) {
        if (!(*conns[i] = nsdb_open(cf->storage_url, cf->busy_timeout_ms, err, sizeof err))) {
            log_error("Storage unavailable, error: %s", err);
            return 1;
        }
    }
    log_info("Storage opened, url: %s, schema: %d", nsdb_url_redacted(cf->storage_url, red, sizeof red),
             nsdb_schema_version(ns->db));
    if (*cf->keys_file) {
        keystore_t *ks = keystore_create();
        if (!ks || keystore_load(ks, cf->keys_file, err, sizeof err) < 0) {
            log_error("Keys file not imported, error: %s", ks ? err : "out of memory");
            keystore_destroy(ks);
            return 64;
        }
        int n = nsreg_import_keys(ns->db, ks, now_s());
        keystore_destroy(ks);
        if (n < 0) {
            log_error("Keys file not imported, error: %s", nsdb_errmsg(ns->db));
            return 1;
        }
        log_info("Devices imported, file: %s, devices: %d", cf->keys_file, n);
    }
    nscore_config_t cc;
    nscore_config_init(&cc);
    cc.instance = cf->instance;
    cc.dedup_window_s = cf->dedup_window_s;
    cc.registry_cache_s = cf->registry_cache_s;
    cc.dl_collect_s = cf->dl_collect_s;
    cc.dl_answer_timeout_s = cf->dl_answer_timeout_s;
    cc.dl_pending_timeout_s = cf->dl_pending_timeout_s;
    cc.update_events = cf->update_events;
    ns->core = nscore_create(&cc, ns->db, err, sizeof err);
    if (!ns->core) {
        log_error("Core not created, error: %s", err);
        return 1;
    }
    if (cf->soft_enabled) {
        nssoft_config_t sc = {.window_s = cf->soft_window_s,
                              .time_tol_s = cf->soft_time_tol_s,
                              .freq_tol_hz = cf->soft_freq_tol_hz,
                              .key_of = cf->soft_chase_trials > 0 ? registry_key_of : NULL,
                              .key_user = ns,
                              .chase_trials = cf->soft_chase_trials};
        ns->soft = nssoft_create(&sc, on_soft_decoded, ns);
        if (!ns->soft) {
            log_error("Soft combining not set up: out of memory");
            return 1;
        }
    }
    /* events per subscriber queued before ZeroMQ drops: a burst of 1000 frames makes
     * about 110 messages and as many updates */
    publisher_config_t pc = {.pub_endpoint = cf->pub_endpoint,
                             .cmd_endpoint = cf->cmd_endpoint,
                             .send_hwm = 100000};
    ns->pub = publisher_create(&pc, err, sizeof err);
    if (!ns->pub) {
        log_error("API sockets not opened, error: %s", err);
        return 1;
    }
    static const struct {
        const char *verb, *help;
        publisher_cmd_fn fn;
    } cmds[] = {
        {"stats", "counters (as the stats event)", cmd_stats},
        {"device_set", "create/update a device: ep_id, key, name, device_type, daily_messages, "
                       "downlink_mode, downlink_payload, downlink_quota", cmd_device_set},
        {"device_get", "one device: ep_id [, with_key]", cmd_device_get},
        {"device_delete", "remove a device: ep_id", cmd_device_delete},
        {"devices", "list devices: [after, limit]", cmd_devices},
        {"stations", "stations seen (their last hello)", cmd_stations},
        {"messages", "message log: [ep_id, after_id, limit]", cmd_messages},
        {"downlink", "answer a callback-mode request: ep_id, mc, payload (hex) or null", cmd_downlink},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        publisher_add_command(ns->pub, cmds[i].verb, cmds[i].fn, ns, cmds[i].help);
    nscore_add_hook(ns->core, NSCORE_HOOK_COMMITTED, publish_hook, ns);
    nscore_set_sender(ns->core, send_station, ns);
    ns->ints = nsint_open(cf, ns->core, ns->db, err, sizeof err);
    if (!ns->ints) {
        log_error("Integrations not started, error: %s", err);
        return 1;
    }
    char what[256];
    nsint_describe(ns->ints, what, sizeof what);
    log_info("Integrations started, %s", what);

    char secret[NSCONF_KEY_Z85_LEN + 1];
    if (nsconf_read_key_file(cf->secret_key_file, secret, err, sizeof err) < 0) {
        log_error("Core key missing, error: %s (make one with: sigfox-ns keygen --out PREFIX)", err);
        return 64;
    }
    if (cf->nstations == 0)
        log_warn("No stations configured (stations.list): every station will be refused");
    ns->zctx = zmq_ctx_new();
    pthread_t zap;
    if (!ns->zctx || !(ns->zap = zap_open(ns)) || pthread_create(&zap, NULL, zap_thread, ns) != 0) {
        log_error("ZeroMQ context or ZAP handler not created");
        return 1;
    }
    ns->router = zmq_socket(ns->zctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    int64_t maxmsg = MAX_WIRE_BYTES;
    int hwm = 100000;
    if (!ns->router || zmq_setsockopt(ns->router, ZMQ_CURVE_SERVER, &one, sizeof one) ||
        zmq_setsockopt(ns->router, ZMQ_CURVE_SECRETKEY, secret, NSCONF_KEY_Z85_LEN) ||
        zmq_setsockopt(ns->router, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) ||
        zmq_setsockopt(ns->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(ns->router, ZMQ_LINGER, &zero, sizeof zero) ||
        zmq_setsockopt(ns->router, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(ns->router, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(ns->router, ZMQ_ROUTER_HANDOVER, &one, sizeof one) ||
        zmq_bind(ns->router, cf->listen) != 0) {
        log_error("Station socket not opened, endpoint: %s, error: %s", cf->listen,
                  zmq_strerror(zmq_errno()));
        stop_flag = 1;
        pthread_join(zap, NULL);
        return 1;
    }
    explicit_bzero(secret, sizeof secret);
    pthread_t cmdt;
    pthread_create(&cmdt, NULL, command_thread, ns);
    log_info("Core started, instance: %s, listen: %s, stations: %zu, version: %s", cf->instance,
             cf->listen, cf->nstations, SIGFOXD_VERSION);
    svcnotify_ready(ns->notify, "Core started, waiting for stations");

    double next_stats = mono_s() + cf->stats_interval_s, retry_at = 0;
    int exit_code = 0;
    while (!stop_flag) {
        bool db_wait = (ns->npending > 0 || ns->ncombined > 0) && mono_s() < retry_at;
        zmq_pollitem_t it = {ns->router, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&it, db_wait ? 0 : 1, db_wait ? 200 : 50);
        if (n < 0 && zmq_errno() != EINTR) {
            log_error("Station socket failed, error: %s", zmq_strerror(zmq_errno()));
            exit_code = 1;
            break;
        }
        /* drain what is there: several batches go into one transaction */
        size_t frames = 0;
        for (int k = 0; !db_wait && k < 256 && ns->npending < MAX_PENDING_BATCHES &&
                        frames < MAX_TX_FRAMES;
             k++) {
            zmq_msg_t rid, body;
            zmq_msg_init(&rid);
            if (zmq_msg_recv(&rid, ns->router, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&rid);
                break;
            }
            zmq_msg_init(&body);
            if (!zmq_msg_more(&rid) || zmq_msg_recv(&body, ns->router, 0) < 0) {
                zmq_msg_close(&rid);
                zmq_msg_close(&body);
                continue;
            }
            /* a DEALER sends one frame; drop extra parts */
            while (zmq_msg_more(&body)) {
                zmq_msg_t extra;
                zmq_msg_init(&extra);
                int rc = zmq_msg_recv(&extra, ns->router, 0);
                zmq_msg_close(&extra);
                if (rc < 0)
                    break;
            }
            size_t before = ns->npending;
            on_station_message(ns, &rid, &body);
            if (ns->npending > before)
                frames += json_object_array_length(ns->pending[ns->npending - 1].frames);
            zmq_msg_close(&rid);
            zmq_msg_close(&body);
        }
        if ((ns->npending || ns->ncombined) && mono_s() >= retry_at) {
            if (flush_pending(ns) < 0 || flush_combined(ns) < 0)
                retry_at = mono_s() + 1.0; /* database down: keep the batches, try again */
        }
        if (ns->soft) {
            pthread_mutex_lock(&ns->soft_lock);
            nssoft_expire(ns->soft, now_s());
            pthread_mutex_unlock(&ns->soft_lock);
        }
        nscore_tick(ns->core, now_s());
        nsint_poll(ns->ints, now_s());
        svcnotify_watchdog(ns->notify);
        if (cf->stats_interval_s > 0 && mono_s() >= next_stats) {
            publish_stats(ns);
            next_stats = mono_s() + cf->stats_interval_s;
        }
    }
    svcnotify_stopping(ns->notify);
    /* stop: commit what was received, then close in reverse order */
    if (flush_combined(ns) < 0)
        log_warn("Frames recovered by soft combining not committed at stop, frames: %zu",
                 ns->ncombined);
    if (ns->npending && flush_pending(ns) < 0)
        log_warn("Batches not committed at stop (the stations resend them), batches: %zu",
                 ns->npending);
    stop_flag = 1;
    pthread_join(cmdt, NULL);
    publish_stats(ns);
    zmq_close(ns->router);
    pthread_join(zap, NULL);
    zmq_ctx_term(ns->zctx);
    nsint_close(ns->ints, 2.0); /* in-flight callbacks: a moment to finish, else queued */
    ns->ints = NULL;
    log_info("Core stopped");
    return exit_code;
}

enum { O_NOCONF = 0x100, O_LISTEN, O_SECRET, O_STATION, O_STORAGE, O_PUB, O_CMD, O_INSTANCE,
       O_KEYS, O_DEDUP, O_LOGLEVEL, O_CHECK };

/* The flags that set one string of the configuration. */
#define STR_FLAG(opt, field) {opt, offsetof(nsconf_t, field), sizeof(((nsconf_t *)0)->field)}
static const struct {
    int opt;
    size_t off, cap;
} str_flags[] = {
    STR_FLAG(O_LISTEN, listen),        STR_FLAG(O_SECRET, secret_key_file),
    STR_FLAG(O_STORAGE, storage_url),  STR_FLAG(O_PUB, pub_endpoint),
    STR_FLAG(O_CMD, cmd_endpoint),     STR_FLAG(O_INSTANCE, instance),
    STR_FLAG(O_KEYS, keys_file),       STR_FLAG(O_LOGLEVEL, log_level),
};

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "keygen"))
        return keygen(argc - 1, argv + 1);
    static const struct option lo[] = {{"config", required_argument, 0, 'c'},
                                       {"no-config", no_argument, 0, O_NOCONF},
                                       {"listen", required_argument, 0, O_LISTEN},
                                       {"secret-key-file", required_argument, 0, O_SECRET},
                                       {"station", required_argument, 0, O_STATION},
                                       {"storage", required_argument, 0, O_STORAGE},
                                       {"pub", required_argument, 0, O_PUB},
                                       {"cmd", required_argument, 0, O_CMD},
                                       {"instance", required_argument, 0, O_INSTANCE},
                                       {"keys", required_argument, 0, O_KEYS},
                                       {"dedup-window", required_argument, 0, O_DEDUP},
                                       {"log-level", required_argument, 0, O_LOGLEVEL},
                                       {"check-config", no_argument, 0, O_CHECK},
                                       {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, CLI_OPT_VERSION},
                                       {0, 0, 0, 0}};
    static ns_t ns = {.soft_lock = PTHREAD_MUTEX_INITIALIZER};
    nsconf_defaults(&ns.conf);
    /* pass 1: which file */
    const char *file = NSCONF_DEFAULT_FILE;
    bool explicit_file = false, no_config = false, check_only = false;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:h", lo, NULL)) != -1) {
        if (c == 'c') {
            file = optarg;
            explicit_file = true;
        } else if (c == O_NOCONF) {
            no_config = true;
        }
    }
    char err[512];
    if (!no_config && (explicit_file || access(file, F_OK) == 0) &&
        nsconf_load(&ns.conf, file, err, sizeof err) < 0) {
        cli_error(PROG, "%s", err);
        return 64;
    }
    /* pass 2: flags over the file */
    optind = 1;
    while ((c = getopt_long(argc, argv, ":c:h", lo, NULL)) != -1) {
        size_t k = 0;
        while (k < sizeof str_flags / sizeof str_flags[0] && str_flags[k].opt != c)
            k++;
        if (k < sizeof str_flags / sizeof str_flags[0]) {
            if (strlen(optarg) >= str_flags[k].cap)
                return cli_usage_error(PROG, "%s: value too long", argv[optind - 1]);
            snprintf((char *)&ns.conf + str_flags[k].off, str_flags[k].cap, "%s", optarg);
            continue;
        }
        switch (c) {
        case 'c':
        case O_NOCONF:
            break;
        case O_CHECK:
            check_only = true;
            break;
        case O_DEDUP: {
            double v;
            if (!cli_parse_number(optarg, &v) || v < 1 || v > 3600)
                return cli_usage_error(PROG, "--dedup-window: expected 1 .. 3600 s");
            ns.conf.dedup_window_s = v;
            break;
        }
        case O_STATION: {
            char id[64];
            const char *eq = strchr(optarg, '=');
            if (!eq || (size_t)(eq - optarg) >= sizeof id)
                return cli_usage_error(PROG, "--station: expected ID=PUBLIC_KEY");
            memcpy(id, optarg, (size_t)(eq - optarg));
            id[eq - optarg] = '\0';
            if (nsconf_add_station(&ns.conf, id, eq + 1, err, sizeof err) < 0)
                return cli_usage_error(PROG, "--station: %s", err);
            break;
        }
        default: {
            int rc = cli_common_opt(c, PROG, usage_text, argv);
            return rc < 0 ? 0 : rc;
        }
        }
    }
    if (optind < argc)
        return cli_usage_error(PROG, "unexpected argument %s", argv[optind]);
    int lvl = log_level_from_name(ns.conf.log_level);
    if (lvl < 0)
        return cli_usage_error(PROG, "log.level: unknown level %s", ns.conf.log_level);
    log_set_level((log_level_t)lvl);
    if (nsint_check(&ns.conf, err, sizeof err) < 0) {
        cli_error(PROG, "%s", err);
        nsconf_free(&ns.conf);
        return 64;
    }
    if (check_only) {
        char key[NSCONF_KEY_Z85_LEN + 1];
        int rc = nsconf_read_key_file(ns.conf.secret_key_file, key, err, sizeof err);
        explicit_bzero(key, sizeof key);
        if (rc < 0)
            cli_error(PROG, "ns.secret_key_file: %s", err);
        else
            fprintf(stderr, PROG ": configuration OK (%s, %zu station(s), %zu callback(s))\n",
                    *ns.conf.config_file ? ns.conf.config_file : "no configuration file",
                    ns.conf.nstations, ns.conf.ncallbacks);
        nsconf_free(&ns.conf);
        return rc < 0 ? 64 : 0;
    }
    if (*ns.conf.config_file)
        log_info("Configuration read, file: %s", ns.conf.config_file);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    ns.started = mono_s();
    ns.notify = svcnotify_create();
    int rc = run(&ns);
    nsint_close(ns.ints, 0); /* when run() failed half way */
    svcnotify_destroy(ns.notify);
    publisher_destroy(ns.pub);
    nscore_destroy(ns.core);
    nsdb_close(ns.cdb);
    nsdb_close(ns.db);
    for (size_t i = 0; i < ns.npending; i++)
        json_object_put(ns.pending[i].root);
    for (size_t i = 0; i < ns.ncombined; i++)
        json_object_put(ns.combined[i].frame);
    nssoft_destroy(ns.soft);
    free(ns.routes);
    nsconf_free(&ns.conf);
    return rc;
}
