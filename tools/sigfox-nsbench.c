/* sigfox-nsbench: simulated stations for sigfox-ns, as a test driver and a benchmark.
 * Licence: MIT. docs/ns.md "Benchmark" shows the commands and figures.
 *
 *   sigfox-nsbench setup DIR [--stations S] [--devices D]
 *       writes DIR/core.key + core.pub (the core's CURVE pair), DIR/stations.txt (one
 *       "ID PUBLIC SECRET" line per station), DIR/ns.conf (ns.secret_key_file and
 *       stations.list for sigfox-ns -c), DIR/devices.keys (EPID KEY lines, --keys).
 *   sigfox-nsbench run DIR --endpoint EP [--endpoint EP2] --sub EP [--sub EP2] [options]
 *       S stations connect (station i to endpoint i mod n) over CURVE; M messages from D
 *       devices, each heard by K stations (random, so they straddle the instances) with its
 *       3 replicas; stations batch (100 frames or 100 ms, seeds/000 §7.1.1.3), keep each
 *       batch until acknowledged and resend it after --resend-s. The subscriber counts the
 *       `message` events: delivered, duplicates, missing, and the latency from the first
 *       frame's batch leaving a station to the event. One JSON line of results on stdout;
 *       with --check, exit 1 unless every message was delivered exactly once.
 *   sigfox-nsbench send DIR --endpoint EP (--body TEXT|@FILE | --bad-auth) [--times N]
 *       one raw message as station 0 (or a batch whose frame fails UL-AUTH); prints the
 *       core's reply (exit 1 when none comes in 3 s): for the bad-input tests.
 *
 * Options of run: --messages M (1000) --rate F (frames/s offered, 0 = as fast as the
 * window allows) --per-message K (3) --mc-start N (0) --window W (unacked batches per
 * station, 8) --resend-s S (3) --timeout S (60) --settle-s S (after the last ack, stop when
 * no missing event came for S s; 60) --bf-every N (0: no BF=1) --seed N --hold-s S (after
 * the last event, keep listening S s for late duplicates and downlinks; 1) --downlinks FILE
 * (every core message to a station other than an ack, one JSON line
 * {"station":"ID","msg":{...}}: what a station would transmit). Latencies -1: none.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <zmq.h>

#include "cliutil.h"
#include "hexutil.h"
#include "jsonstrict.h"
#include "keys.h"
#include "nssoft.h"
#include "ulcode.h"
#include "prng.h"
#include "publisher.h"
#include "ulframe.h"

#define PROG "sigfox-nsbench"
#define MAX_STATIONS 1000
#define MAX_EPS 4
#define BATCH_FRAMES 100
#define BATCH_AGE_S 0.1
#define FRAME_JSON_MAX 512
#define EP_BASE 0x10000000u

static const char usage_text[] =
    "Usage: sigfox-nsbench setup DIR [--stations S] [--devices D]\n"
    "       sigfox-nsbench run DIR --endpoint EP [--endpoint EP2] --sub EP [--sub EP2]\n"
    "              [--messages M] [--rate F] [--per-message K] [--mc-start N] [--window W]\n"
    "              [--resend-s S] [--timeout S] [--settle-s S] [--bf-every N] [--seed N] [--check]\n"
    "              [--hold-s S] [--downlinks FILE]\n"
    "       sigfox-nsbench send DIR --endpoint EP (--body TEXT|@FILE | --bad-auth) [--times N]\n"
    "              (N times on one connection; prints the first answer within 3 s)\n"
    "       sigfox-nsbench soft [--stations S] [--rate R] [--seconds T] [--repeat N]\n"
    "              [--max-pending N]\n"
    "              soft combining across stations (nssoft.h), in memory: R messages per\n"
    "              second of 3 replicas, each heard by 1..3 of S stations at 3-10 %% raw bit\n"
    "              errors, plus as many noise soft frames; prints CPU per soft frame\n"
    "              (median of N runs), frames and messages recovered, and false ones\n"
    "Simulated stations for sigfox-ns (a test driver and a benchmark); see docs/ns.md.\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double real_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* The device key is a function of its ID, so setup and run agree without a file. */
static void device_key(uint32_t ep_id, uint8_t key[16])
{
    uint64_t s = 0x9E3779B97F4A7C15ull ^ ep_id;
    for (int i = 0; i < 16; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        key[i] = (uint8_t)(s >> 24);
    }
}

static int setup(const char *dir, int nst, int ndev)
{
    mkdir(dir, 0700);
    char path[1024];
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0) {
        cli_error(PROG, "no CURVE support in libzmq");
        return 1;
    }
    snprintf(path, sizeof path, "%s/core.key", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        goto io;
    fprintf(f, "%s\n", sec);
    fclose(f);
    chmod(path, 0600);
    snprintf(path, sizeof path, "%s/core.pub", dir);
    if (!(f = fopen(path, "w")))
        goto io;
    fprintf(f, "%s\n", pub);
    fclose(f);
    snprintf(path, sizeof path, "%s/stations.txt", dir);
    FILE *st = fopen(path, "w");
    snprintf(path, sizeof path, "%s/ns.conf", dir);
    FILE *cf = fopen(path, "w");
    if (!st || !cf)
        goto io;
    fprintf(cf, "ns: { secret_key_file = \"%s/core.key\"; };\nstations: { list = (\n", dir);
    for (int i = 0; i < nst; i++) {
        zmq_curve_keypair(pub, sec);
        fprintf(st, "S%03d %s %s\n", i, pub, sec);
        fprintf(cf, "  { id = \"S%03d\"; public_key = \"%s\"; }%s\n", i, pub,
                i + 1 < nst ? "," : "");
    }
    fprintf(cf, "); };\n");
    fclose(st);
    fclose(cf);
    keystore_t *ks = keystore_create();
    for (int d = 0; d < ndev; d++) {
        uint8_t key[16];
        device_key(EP_BASE + (uint32_t)d, key);
        keystore_add(ks, EP_BASE + (uint32_t)d, key);
    }
    snprintf(path, sizeof path, "%s/devices.keys", dir);
    if (!(f = fopen(path, "w")))
        goto io;
    keystore_write(ks, f);
    fclose(f);
    keystore_destroy(ks);
    printf("%s: %d stations, %d devices\n", dir, nst, ndev);
    return 0;
io:
    cli_error(PROG, "cannot write %s: %s", path, strerror(errno));
    return 1;
}

typedef struct {
    uint64_t seq;
    char *body;
    size_t len;
    int nframes;
    double sent_at;
    bool acked;
} sbatch_t;

typedef struct {
    char id[16];
    void *sock;
    char *buf; /* frames being collected, comma-separated */
    size_t len, cap;
    int nbuf;
    double oldest;
    sbatch_t *out; /* unacknowledged batches */
    size_t nout, cap_out;
    uint64_t next_seq;
    int *buf_msgs; /* message indexes whose first frame is in buf */
    size_t nbuf_msgs, cap_buf_msgs;
} station_t;

typedef struct {
    double sent_at; /* first batch with one of its frames left a station; 0: not yet */
    int delivered;
    double latency;
} msgstat_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void append(station_t *s, const char *txt)
{
    size_t n = strlen(txt);
    if (s->len + n + 2 > s->cap) {
        s->cap = (s->len + n + 2) * 2;
        s->buf = realloc(s->buf, s->cap);
    }
    if (s->nbuf)
        s->buf[s->len++] = ',';
    memcpy(s->buf + s->len, txt, n + 1);
    s->len += n;
    s->nbuf++;
}

static void send_batch(sbatch_t *b, void *sock)
{
    zmq_send(sock, b->body, b->len, ZMQ_DONTWAIT);
    b->sent_at = mono_s();
}

static void flush_station(station_t *s, msgstat_t *ms)
{
    if (!s->nbuf)
        return;
    size_t cap = s->len + 64;
    char *body = malloc(cap);
    int len = snprintf(body, cap, "{\"type\":\"batch\",\"seq\":%llu,\"frames\":[%s]}",
                       (unsigned long long)s->next_seq, s->buf);
    if (s->nout == s->cap_out) {
        s->cap_out = s->cap_out ? 2 * s->cap_out : 16;
        s->out = realloc(s->out, s->cap_out * sizeof *s->out);
    }
    sbatch_t *b = &s->out[s->nout++];
    *b = (sbatch_t){.seq = s->next_seq++, .body = body, .len = (size_t)len, .nframes = s->nbuf};
    send_batch(b, s->sock);
    for (size_t i = 0; i < s->nbuf_msgs; i++) {
        msgstat_t *m = &ms[s->buf_msgs[i]];
        if (m->sent_at == 0)
            m->sent_at = b->sent_at;
    }
    s->nbuf_msgs = 0;
    s->len = 0;
    s->nbuf = 0;
}

static void frame_json(char *out, size_t cap, uint32_t ep, uint16_t mc, bool bf, int rank,
                       double t, double snr)
{
    ul_message_t m = {.ep_id = ep, .mc = mc, .bf = bf, .payload_len = 8};
    for (int i = 0; i < 8; i++)
        m.payload[i] = (uint8_t)(mc * 7 + i);
    uint8_t key[16], c[UL_MAX_CONTAINER_BYTES];
    device_key(ep, key);
    int len = ul_container_build(&m, key, c, sizeof c);
    char hex[2 * UL_MAX_CONTAINER_BYTES + 1], utc[40];
    bytes_to_hex(c, (size_t)len, hex);
    snprintf(out, cap,
             "{\"type\":\"frame\",\"format_version\":1,\"rank\":%d,\"ft\":\"%04X\",\"crc_ok\":true,"
             "\"ul_crc\":\"%04X\",\"container\":\"%s\",\"snr_db\":%.2f,\"rssi_dbfs\":%.2f,"
             "\"freq_hz\":%.1f,\"time_utc\":\"%s\",\"tx\":true}",
             rank, ul_ft_value((size_t)len, false, rank), ul_crc16(c, (size_t)len), hex, snr,
             snr - 70, 868130000.0 + rank * 10.0, publisher_time_utc(t, utc, sizeof utc));
}

static int read_line_key(const char *path, char *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fscanf(f, "%40s", out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

typedef struct {
    const char *dir;
    const char *eps[MAX_EPS], *subs[MAX_EPS];
    int neps, nsubs;
    int messages, per_message, window, bf_every;
    double rate, resend_s, timeout_s, settle_s, hold_s;
    int mc_start;
    const char *downlinks; /* file of the core's other messages to the stations */
    bool check;
} run_opts_t;

/* One raw message from station 0 (or a batch with a frame signed by a wrong key), then
 * the core's reply on stdout. Exit 1 without a reply in 3 s. */
static int send_one(const char *dir, const char *ep, const char *body, bool bad_auth, long times)
{
    char path[1024], corepub[41], id[16], pub[41], sec[41];
    snprintf(path, sizeof path, "%s/core.pub", dir);
    if (read_line_key(path, corepub) < 0) {
        cli_error(PROG, "cannot read %s", path);
        return 1;
    }
    snprintf(path, sizeof path, "%s/stations.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f || fscanf(f, "%15s %40s %40s", id, pub, sec) != 3) {
        cli_error(PROG, "cannot read %s", path);
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, corepub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(s, ep);
    char *msg = NULL;
    if (bad_auth) {
        char fj[FRAME_JSON_MAX];
        /* the frame of device EP_BASE with a key that is not its key */
        ul_message_t m = {.ep_id = EP_BASE, .mc = 4000, .payload_len = 8};
        uint8_t key[16] = {0}, c[UL_MAX_CONTAINER_BYTES];
        int len = ul_container_build(&m, key, c, sizeof c);
        char hex[2 * UL_MAX_CONTAINER_BYTES + 1];
        bytes_to_hex(c, (size_t)len, hex);
        snprintf(fj, sizeof fj,
                 "{\"type\":\"batch\",\"seq\":999999,\"frames\":[{\"rank\":1,\"ft\":\"%04X\","
                 "\"ul_crc\":\"%04X\",\"container\":\"%s\",\"snr_db\":10}]}",
                 ul_ft_value((size_t)len, false, 1), ul_crc16(c, (size_t)len), hex);
        msg = strdup(fj);
    } else if (body[0] == '@') {
        FILE *b = fopen(body + 1, "rb");
        if (!b) {
            cli_error(PROG, "cannot read %s", body + 1);
            return 1;
        }
        fseek(b, 0, SEEK_END);
        long n = ftell(b);
        fseek(b, 0, SEEK_SET);
        msg = calloc(1, (size_t)n + 1);
        if (fread(msg, 1, (size_t)n, b) != (size_t)n)
            n = 0;
        fclose(b);
    } else {
        msg = strdup(body);
    }
    for (long i = 0; i < times; i++) /* one connection: a flood from one station */
        zmq_send(s, msg, strlen(msg), 0);
    free(msg);
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    int rc = 1;
    static char reply[4096];
    if (zmq_poll(&it, 1, 3000) == 1) {
        int n = zmq_recv(s, reply, sizeof reply - 1, 0);
        if (n >= 0) {
            reply[n < (int)sizeof reply - 1 ? n : (int)sizeof reply - 1] = '\0';
            printf("%s\n", reply);
            rc = 0;
        }
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return rc;
}

static int run(const run_opts_t *o)
{
    char path[1024], corepub[41];
    snprintf(path, sizeof path, "%s/core.pub", o->dir);
    if (read_line_key(path, corepub) < 0) {
        cli_error(PROG, "cannot read %s (run setup first)", path);
        return 1;
    }
    snprintf(path, sizeof path, "%s/stations.txt", o->dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error(PROG, "cannot read %s", path);
        return 1;
    }
    keystore_t *ks = keystore_create();
    snprintf(path, sizeof path, "%s/devices.keys", o->dir);
    char err[256];
    if (keystore_load(ks, path, err, sizeof err) < 0) {
        cli_error(PROG, "%s", err);
        fclose(f);
        return 1;
    }
    int ndev = (int)keystore_count(ks);
    keystore_destroy(ks);
    void *ctx = zmq_ctx_new();
    static station_t st[MAX_STATIONS];
    int nst = 0;
    char id[16], pub[41], sec[41];
    while (nst < MAX_STATIONS && fscanf(f, "%15s %40s %40s", id, pub, sec) == 3) {
        station_t *s = &st[nst];
        memset(s, 0, sizeof *s);
        snprintf(s->id, sizeof s->id, "%s", id);
        s->sock = zmq_socket(ctx, ZMQ_DEALER);
        int zero = 0, hwm = 100000;
        zmq_setsockopt(s->sock, ZMQ_CURVE_SERVERKEY, corepub, 40);
        zmq_setsockopt(s->sock, ZMQ_CURVE_PUBLICKEY, pub, 40);
        zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, sec, 40);
        zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_connect(s->sock, o->eps[nst % o->neps]);
        char hello[128];
        snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"station_id\":\"%s\",\"tx\":true,"
                 "\"version\":\"nsbench\"}", id);
        zmq_send(s->sock, hello, strlen(hello), ZMQ_DONTWAIT);
        nst++;
    }
    fclose(f);
    if (nst < o->per_message || ndev < 1) {
        cli_error(PROG, "need at least %d stations and one device", o->per_message);
        return 1;
    }
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int unlimited = 0; /* the default 1000 would drop events when the bench falls behind */
    zmq_setsockopt(sub, ZMQ_RCVHWM, &unlimited, sizeof unlimited);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "message", 7);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "station", 7);
    for (int i = 0; i < o->nsubs; i++)
        zmq_connect(sub, o->subs[i]);
    /* PUB drops what it sends before a subscription arrives ("slow joiner"): say hello
     * again until every station's `station` event came back, so events reach us */
    {
        bool *seen = calloc((size_t)nst, sizeof *seen);
        int nseen = 0;
        double until = mono_s() + 20, next = 0;
        while (nseen < nst && mono_s() < until && !stop) {
            if (mono_s() >= next) {
                for (int i = 0; i < nst; i++) {
                    if (seen[i])
                        continue;
                    char hello[128];
                    snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"tx\":true,"
                             "\"version\":\"nsbench\"}");
                    zmq_send(st[i].sock, hello, strlen(hello), ZMQ_DONTWAIT);
                }
                next = mono_s() + 0.3;
            }
            zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&it, 1, 50) <= 0)
                continue;
            char topic[32], ev[1024];
            if (zmq_recv(sub, topic, sizeof topic, 0) < 0)
                continue;
            int n = zmq_recv(sub, ev, sizeof ev - 1, 0);
            if (n < 0)
                continue;
            ev[n < (int)sizeof ev - 1 ? n : (int)sizeof ev - 1] = '\0';
            char *p = strstr(ev, "\"station_id\":\"");
            for (int i = 0; p && i < nst; i++) {
                size_t l = strlen(st[i].id);
                if (!seen[i] && !strncmp(p + 14, st[i].id, l) && p[14 + l] == '"') {
                    seen[i] = true;
                    nseen++;
                }
            }
        }
        free(seen);
        if (nseen < nst) {
            cli_error(PROG, "only %d of %d stations got through to the core in 20 s", nseen, nst);
            return 1;
        }
    }

    FILE *dl_out = NULL;
    if (o->downlinks && !(dl_out = fopen(o->downlinks, "w"))) {
        cli_error(PROG, "cannot write %s", o->downlinks);
        return 1;
    }
    msgstat_t *ms = calloc((size_t)o->messages, sizeof *ms);
    uint64_t frames_sent = 0, frames_acked = 0, resent = 0, dup = 0, updates = 0, foreign = 0;
    int made = 0, delivered = 0;
    double t0 = mono_s(), done_at = 0, acked_at = 0;
    char fj[FRAME_JSON_MAX];
    while (!stop) {
        double now = mono_s();
        /* offer messages at the rate (9 frames each with 3 stations) */
        int frames_per_msg = 3 * o->per_message;
        while (made < o->messages) {
            if (o->rate > 0 && (double)made * frames_per_msg > (now - t0) * o->rate)
                break;
            if (o->rate <= 0) {
                bool room = true;
                for (int i = 0; i < nst && room; i++)
                    room = st[i].nout < (size_t)o->window;
                if (!room)
                    break;
            }
            int k = made;
            uint32_t dev = (uint32_t)(k % ndev);
            uint16_t mc = (uint16_t)((o->mc_start + k / ndev) & UL_MC_MAX);
            bool bf = o->bf_every > 0 && k % o->bf_every == 0;
            int chosen[16];
            for (int j = 0; j < o->per_message; j++) {
                int c;
                bool again;
                do {
                    c = (int)(rng() % (uint64_t)nst);
                    again = false;
                    for (int q = 0; q < j; q++)
                        again |= chosen[q] == c;
                } while (again);
                chosen[j] = c;
            }
            double tr = real_s();
            for (int j = 0; j < o->per_message; j++) {
                station_t *s = &st[chosen[j]];
                for (int rank = 1; rank <= 3; rank++) {
                    frame_json(fj, sizeof fj, EP_BASE + dev, mc, bf, rank, tr + 0.001 * j,
                               5.0 + (double)(rng() % 200) / 10.0);
                    if (!s->nbuf)
                        s->oldest = now;
                    append(s, fj);
                    frames_sent++;
                    if (s->nbuf >= BATCH_FRAMES)
                        flush_station(s, ms);
                }
                if (s->nbuf_msgs == s->cap_buf_msgs) {
                    s->cap_buf_msgs = s->cap_buf_msgs ? 2 * s->cap_buf_msgs : 64;
                    s->buf_msgs = realloc(s->buf_msgs, s->cap_buf_msgs * sizeof *s->buf_msgs);
                }
                s->buf_msgs[s->nbuf_msgs++] = k;
                if (s->nbuf == 0) /* flushed right after the last replica */
                    ms[k].sent_at = ms[k].sent_at ? ms[k].sent_at : mono_s();
            }
            made++;
        }
        /* age flush, acks, resends */
        for (int i = 0; i < nst; i++) {
            station_t *s = &st[i];
            if (s->nbuf && (now - s->oldest >= BATCH_AGE_S || made == o->messages))
                flush_station(s, ms);
            char rb[512];
            int n;
            while ((n = zmq_recv(s->sock, rb, sizeof rb - 1, ZMQ_DONTWAIT)) >= 0) {
                rb[n < (int)sizeof rb - 1 ? n : (int)sizeof rb - 1] = '\0';
                unsigned long long seq;
                if (sscanf(rb, "{\"type\":\"ack\",\"seq\":%llu}", &seq) != 1) {
                    if (dl_out)
                        fprintf(dl_out, "{\"station\":\"%s\",\"msg\":%s}\n", s->id, rb);
                } else {
                    for (size_t b = 0; b < s->nout; b++) {
                        if (s->out[b].seq == seq && !s->out[b].acked) {
                            s->out[b].acked = true;
                            frames_acked += (uint64_t)s->out[b].nframes;
                        }
                    }
                }
            }
            size_t keep = 0;
            for (size_t b = 0; b < s->nout; b++) {
                if (s->out[b].acked) {
                    free(s->out[b].body);
                    continue;
                }
                if (now - s->out[b].sent_at > o->resend_s) {
                    send_batch(&s->out[b], s->sock);
                    resent++;
                }
                s->out[keep++] = s->out[b];
            }
            s->nout = keep;
        }
        /* events */
        zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 1);
        char topic[32];
        static char ev[65536];
        int tn;
        while ((tn = zmq_recv(sub, topic, sizeof topic - 1, ZMQ_DONTWAIT)) >= 0) {
            topic[tn < (int)sizeof topic - 1 ? tn : (int)sizeof topic - 1] = '\0';
            int n = zmq_recv(sub, ev, sizeof ev - 1, 0);
            if (n < 0)
                break;
            ev[n < (int)sizeof ev - 1 ? n : (int)sizeof ev - 1] = '\0';
            if (!strncmp(topic, "station", 7))
                continue;
            if (!strncmp(topic, "message_update", 14)) {
                updates++;
                continue;
            }
            char *p = strstr(ev, "\"ep_id\":\"");
            char *q = strstr(ev, "\"mc\":");
            if (!p || !q) {
                foreign++;
                continue;
            }
            uint32_t ep = (uint32_t)strtoul(p + 9, NULL, 16);
            int mc = atoi(q + 5);
            long dev = (long)ep - (long)EP_BASE;
            int round = ((mc - o->mc_start) % 4096 + 4096) % 4096;
            long k = (long)round * ndev + dev;
            if (dev < 0 || dev >= ndev || k < 0 || k >= o->messages) {
                foreign++;
                continue;
            }
            if (ms[k].delivered++) {
                dup++;
                continue;
            }
            delivered++;
            ms[k].latency = mono_s() - ms[k].sent_at;
        }
        bool all_acked = true;
        for (int i = 0; i < nst && all_acked; i++)
            all_acked = st[i].nout == 0 && st[i].nbuf == 0;
        if (made == o->messages && all_acked && delivered == o->messages && done_at == 0)
            done_at = mono_s();
        if (made == o->messages && all_acked && acked_at == 0)
            acked_at = mono_s();
        if (acked_at && mono_s() - acked_at > o->settle_s) /* events that never come */
            break;
        if (done_at && mono_s() - done_at > o->hold_s) /* late duplicates would show by now */
            break;
        if (mono_s() - t0 > o->timeout_s)
            break;
    }
    double elapsed = (done_at ? done_at : mono_s()) - t0;
    double *lat = malloc(sizeof(double) * (size_t)(delivered ? delivered : 1));
    int nl = 0;
    for (int k = 0; k < o->messages; k++)
        if (ms[k].delivered)
            lat[nl++] = ms[k].latency * 1e3;
    qsort(lat, (size_t)nl, sizeof *lat, cmp_double);
    double p50 = nl ? lat[nl / 2] : -1, p99 = nl ? lat[(int)(nl * 0.99)] : -1; /* -1: none */
    int missing = o->messages - delivered;
    printf("{\"stations\":%d,\"devices\":%d,\"messages\":%d,\"frames_sent\":%llu,"
           "\"frames_acked\":%llu,\"batches_resent\":%llu,\"delivered\":%d,\"duplicates\":%llu,"
           "\"missing\":%d,\"updates\":%llu,\"foreign_events\":%llu,\"elapsed_s\":%.3f,"
           "\"frames_per_s\":%.0f,\"messages_per_s\":%.0f,\"latency_p50_ms\":%.1f,"
           "\"latency_p99_ms\":%.1f}\n",
           nst, ndev, o->messages, (unsigned long long)frames_sent,
           (unsigned long long)frames_acked, (unsigned long long)resent, delivered,
           (unsigned long long)dup, missing, (unsigned long long)updates,
           (unsigned long long)foreign, elapsed, (double)frames_acked / elapsed,
           delivered / elapsed, p50, p99);
    fflush(stdout);
    if (dl_out)
        fclose(dl_out);
    free(lat);
    free(ms);
    for (int i = 0; i < nst; i++) {
        for (size_t b = 0; b < st[i].nout; b++)
            free(st[i].out[b].body);
        free(st[i].out);
        free(st[i].buf);
        free(st[i].buf_msgs);
        zmq_close(st[i].sock);
    }
    zmq_close(sub);
    zmq_ctx_term(ctx);
    if (o->check && (missing || dup))
        return 1;
    return 0;
}

/* ---- soft: the cost and yield of soft combining across stations ---------------------- */

/* One soft frame pushed (truth) or one station credited with a frame (credit): the
 * station, the burst time as pushed and the device (0: a noise soft frame). */
typedef struct {
    int station;
    double t;
    uint32_t ep_id;
} soft_rec_t;

static int soft_rec_cmp(const void *a, const void *b)
{
    const soft_rec_t *x = a, *y = b;
    if (x->station != y->station)
        return x->station < y->station ? -1 : 1;
    return x->t < y->t ? -1 : x->t > y->t;
}

typedef struct {
    soft_rec_t *credits;
    size_t ncredits, cap_credits;
    uint64_t false_frames; /* accepted by registry and UL-AUTH, but not what was sent */
    uint64_t refused;      /* CRC-valid but not a device of the scene or UL-AUTH bad */
    uint32_t base_id;
    int nmsg;
    uint8_t *recovered; /* per message: recovered by combining */
} soft_sink_t;

/* What the core would do with a recovered frame: a device of the scene (the registry)
 * whose UL-AUTH verifies is accepted; anything else is refused there. */
static void soft_on_decoded(const nssoft_result_t *r, void *user)
{
    soft_sink_t *k = user;
    uint32_t i = r->frame.msg.ep_id - k->base_id;
    uint8_t key[16];
    device_key(r->frame.msg.ep_id, key);
    if (i >= (uint32_t)k->nmsg ||
        ul_auth_verify(r->frame.container, r->frame.container_len, key) != 1) {
        k->refused++;
        return;
    }
    if (r->frame.msg.mc != (i & 0xFFF)) {
        k->false_frames++;
        return;
    }
    k->recovered[i] = 1;
    for (size_t m = 0; m < r->nmembers; m++) {
        if (k->ncredits == k->cap_credits) {
            size_t cap = k->cap_credits ? 2 * k->cap_credits : 4096;
            soft_rec_t *n = realloc(k->credits, cap * sizeof *n);
            if (!n)
                return;
            k->credits = n;
            k->cap_credits = cap;
        }
        k->credits[k->ncredits++] = (soft_rec_t){atoi(r->members[m].station_id + 2),
                                                 r->members[m].t_s, r->frame.msg.ep_id};
    }
}

static int soft_bench(int argc, char **argv)
{
    int stations = 20, repeat = 5;
    size_t max_pending = 0;
    double rate = 10, seconds = 60;
    static const struct option lo[] = {{"stations", required_argument, NULL, 's'},
                                       {"rate", required_argument, NULL, 'r'},
                                       {"seconds", required_argument, NULL, 't'},
                                       {"repeat", required_argument, NULL, 'n'},
                                       {"max-pending", required_argument, NULL, 'p'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 's':
            stations = (int)strtol(optarg, &end, 10);
            if (*end || stations < 1 || stations > MAX_STATIONS)
                return cli_usage_error(PROG, "--stations: 1 .. %d", MAX_STATIONS);
            break;
        case 'r':
            rate = strtod(optarg, &end);
            if (*end || !(rate > 0 && rate <= 1000))
                return cli_usage_error(PROG, "--rate: messages per second, 0 .. 1000");
            break;
        case 't':
            seconds = strtod(optarg, &end);
            if (*end || !(seconds >= 1 && seconds <= 3600))
                return cli_usage_error(PROG, "--seconds: 1 .. 3600");
            break;
        case 'n':
            repeat = (int)strtol(optarg, &end, 10);
            if (*end || repeat < 1 || repeat > 100)
                return cli_usage_error(PROG, "--repeat: 1 .. 100");
            break;
        case 'p': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1000000)
                return cli_usage_error(PROG, "--max-pending: 1 .. 1000000");
            max_pending = (size_t)v;
            break;
        }
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return cli_usage_error(PROG, "soft: unknown option");
        }
    }
    int nmsg = (int)(rate * seconds);
    soft_sink_t k = {.base_id = EP_BASE, .nmsg = nmsg};
    k.recovered = calloc((size_t)nmsg, 1);
    double *us = calloc((size_t)repeat, sizeof *us);
    static rx_softframe_t sf;
    if (!k.recovered || !us) {
        free(k.recovered);
        free(us);
        return cli_usage_error(PROG, "out of memory");
    }
    uint64_t pushes = 0, heard = 0, wrong_credits = 0;
    size_t cap_truth = (size_t)nmsg * 3 * 3 * 2;
    soft_rec_t *truth = malloc(cap_truth * sizeof *truth);
    if (!truth) {
        free(k.recovered);
        free(us);
        return cli_usage_error(PROG, "out of memory");
    }
    nssoft_stats_t st = {0};
    for (int rep = 0; rep < repeat; rep++) {
        nssoft_config_t scfg = {.max_pending = max_pending};
        nssoft_t *s = nssoft_create(&scfg, soft_on_decoded, &k);
        prng_t pr;
        prng_seed(&pr, 7, 0); /* the same scene every run: the runs differ only in time */
        memset(k.recovered, 0, (size_t)nmsg);
        k.false_frames = k.refused = 0;
        k.ncredits = 0;
        size_t ntruth = 0;
        pushes = heard = 0;
        double cpu = 0;
        const double t0 = 1.8e9;
        for (int m = 0; m < nmsg; m++) {
            ul_message_t msg;
            memset(&msg, 0, sizeof msg);
            msg.ep_id = EP_BASE + (uint32_t)m;
            msg.mc = (uint16_t)(m & 0xFFF);
            msg.payload_len = (size_t)(prng_next(&pr) % 13);
            for (size_t i = 0; i < msg.payload_len; i++)
                msg.payload[i] = (uint8_t)prng_next(&pr);
            uint8_t key[16];
            device_key(msg.ep_id, key);
            double tm = t0 + m / rate;
            int baud = prng_next(&pr) % 2 ? 600 : 100;
            for (int rank = 1; rank <= 3; rank++) {
                uint8_t air[40];
                int len = ul_frame_encode(&msg, key, rank, air, sizeof air);
                if (len < 0)
                    continue;
                size_t nbits = (size_t)len * 8 - UL_PREAMBLE_BITS;
                double t = tm + (rank - 1) * (0.5 + 1.5 * prng_uniform(&pr));
                double f = 868.034e6 + 192e3 * prng_uniform(&pr);
                int nst = 1 + (int)(prng_next(&pr) % 3);
                int first = (int)(prng_next(&pr) % (uint64_t)stations);
                for (int j = 0; j < nst && j < stations; j++) {
                    double ber = 0.03 + 0.07 * prng_uniform(&pr);
                    /* sigma of the +-1 symbols for that raw bit error rate: Q(1/sigma) = ber */
                    double lo = 0.1, hi = 10;
                    for (int it = 0; it < 40; it++) {
                        double mid = 0.5 * (lo + hi);
                        if (0.5 * erfc(1 / mid / M_SQRT2) < ber)
                            lo = mid;
                        else
                            hi = mid;
                    }
                    double sigma = 0.5 * (lo + hi);
                    memset(&sf, 0, sizeof sf);
                    sf.baud = baud;
                    sf.nsoft = nbits;
                    sf.freq_hz = f + 200 * (prng_uniform(&pr) - 0.5);
                    sf.snr_db = 10 * log10(1 / (2 * sigma * sigma));
                    sf.rssi_dbfs = -90;
                    for (size_t i = 0; i < nbits; i++) {
                        double v = ul_bit_get(air, i + UL_PREAMBLE_BITS) ? 1.0 : -1.0;
                        sf.soft[i] = (float)(2 * (v + sigma * prng_gauss(&pr)) / (sigma * sigma));
                    }
                    char id[16];
                    snprintf(id, sizeof id, "st%d", (first + j) % stations);
                    double ts = t + 0.02 * (prng_uniform(&pr) - 0.5);
                    double c0 = mono_s();
                    nssoft_push(s, id, &sf, ts, ts + 0.5);
                    truth[ntruth++] = (soft_rec_t){(first + j) % stations, ts, msg.ep_id};
                    /* and a noise soft frame (a burst of something else the stations
                     * synchronised on) */
                    sf.nsoft = 13 + 8 * 14;
                    for (size_t i = 0; i < sf.nsoft; i++)
                        sf.soft[i] = (float)(4 * prng_gauss(&pr));
                    sf.freq_hz = 868.034e6 + 192e3 * prng_uniform(&pr);
                    nssoft_push(s, id, &sf, ts + 0.01, ts + 0.5);
                    truth[ntruth++] = (soft_rec_t){(first + j) % stations, ts + 0.01, 0};
                    cpu += mono_s() - c0;
                    pushes += 2;
                    heard++;
                }
            }
        }
        nssoft_get_stats(s, &st);
        nssoft_destroy(s);
        /* every station credited with a frame sent a soft frame of that very device */
        qsort(truth, ntruth, sizeof *truth, soft_rec_cmp);
        wrong_credits = 0;
        for (size_t c = 0; c < k.ncredits; c++) {
            const soft_rec_t *t = bsearch(&k.credits[c], truth, ntruth, sizeof *truth, soft_rec_cmp);
            wrong_credits += !t || t->ep_id != k.credits[c].ep_id;
        }
        us[rep] = cpu / (double)pushes * 1e6;
    }
    qsort(us, (size_t)repeat, sizeof *us, cmp_double);
    uint64_t msgs = 0;
    for (int m = 0; m < nmsg; m++)
        msgs += k.recovered[m];
    printf("{\"stations\":%d,\"messages\":%d,\"replica_receptions\":%llu,\"soft_frames\":%llu,"
           "\"decodings\":%llu,\"frames_decoded\":%llu,\"frames_joint\":%llu,"
           "\"late_members\":%llu,\"messages_recovered\":%llu,\"refused_at_core\":%llu,"
           "\"false_messages\":%llu,\"receptions_credited\":%zu,\"wrong_credits\":%llu,"
           "\"us_per_soft_frame_median\":%.1f,\"us_per_soft_frame_min\":%.1f,"
           "\"us_per_soft_frame_max\":%.1f}\n",
           stations, nmsg, (unsigned long long)heard, (unsigned long long)pushes,
           (unsigned long long)st.groups_tried, (unsigned long long)st.frames_decoded,
           (unsigned long long)st.frames_joint, (unsigned long long)st.late_members,
           (unsigned long long)msgs, (unsigned long long)k.refused,
           (unsigned long long)k.false_frames, k.ncredits, (unsigned long long)wrong_credits,
           us[repeat / 2], us[0],
           us[repeat - 1]);
    free(k.recovered);
    free(us);
    free(truth);
    free(k.credits);
    return k.false_frames || wrong_credits ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "soft"))
        return soft_bench(argc - 1, argv + 1);
    if (argc < 3 || (strcmp(argv[1], "setup") && strcmp(argv[1], "run") && strcmp(argv[1], "send"))) {
        if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
            fputs(usage_text, stdout);
            return 0;
        }
        return cli_usage_error(PROG, "expected setup DIR, run DIR or send DIR");
    }
    bool is_setup = !strcmp(argv[1], "setup"), is_send = !strcmp(argv[1], "send");
    const char *body = NULL;
    bool bad_auth = false;
    long times = 1;
    run_opts_t o = {.dir = argv[2], .messages = 1000, .per_message = 3, .window = 8,
                    .resend_s = 3, .timeout_s = 60, .settle_s = 60, .hold_s = 1};
    long nst = 50, ndev = 10000, seed = 1;
    enum { O_ST = 0x100, O_DEV, O_EP, O_SUB, O_MSG, O_RATE, O_PER, O_MC, O_WIN, O_RESEND,
           O_TIMEOUT, O_BF, O_SEED, O_CHECK, O_BODY, O_BADAUTH, O_SETTLE, O_HOLD, O_DLFILE,
           O_TIMES };
    static const struct option lo[] = {
        {"stations", required_argument, 0, O_ST},  {"devices", required_argument, 0, O_DEV},
        {"endpoint", required_argument, 0, O_EP},  {"sub", required_argument, 0, O_SUB},
        {"messages", required_argument, 0, O_MSG}, {"rate", required_argument, 0, O_RATE},
        {"per-message", required_argument, 0, O_PER}, {"mc-start", required_argument, 0, O_MC},
        {"window", required_argument, 0, O_WIN},   {"resend-s", required_argument, 0, O_RESEND},
        {"timeout", required_argument, 0, O_TIMEOUT}, {"bf-every", required_argument, 0, O_BF},
        {"seed", required_argument, 0, O_SEED},   {"check", no_argument, 0, O_CHECK},
        {"settle-s", required_argument, 0, O_SETTLE}, {"body", required_argument, 0, O_BODY},   {"bad-auth", no_argument, 0, O_BADAUTH},
        {"times", required_argument, 0, O_TIMES},
        {"hold-s", required_argument, 0, O_HOLD}, {"downlinks", required_argument, 0, O_DLFILE},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    optind = 3;
    int c;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        long v = 0;
        double d = 0;
        switch (c) {
        case O_ST:
            if (!cli_parse_long(optarg, 10, 3, MAX_STATIONS, &nst))
                return cli_usage_error(PROG, "--stations: 3 .. %d", MAX_STATIONS);
            break;
        case O_DEV:
            if (!cli_parse_long(optarg, 10, 1, 1000000, &ndev))
                return cli_usage_error(PROG, "--devices: 1 .. 1000000");
            break;
        case O_EP:
        case O_SUB:
            if ((c == O_EP ? o.neps : o.nsubs) >= MAX_EPS)
                return cli_usage_error(PROG, "at most %d endpoints", MAX_EPS);
            if (c == O_EP)
                o.eps[o.neps++] = optarg;
            else
                o.subs[o.nsubs++] = optarg;
            break;
        case O_MSG:
            if (!cli_parse_long(optarg, 10, 1, 10000000, &v))
                return cli_usage_error(PROG, "--messages: 1 .. 10000000");
            o.messages = (int)v;
            break;
        case O_RATE:
            if (!cli_parse_number(optarg, &d) || d < 0)
                return cli_usage_error(PROG, "--rate: frames/s >= 0");
            o.rate = d;
            break;
        case O_PER:
            if (!cli_parse_long(optarg, 10, 1, 16, &v))
                return cli_usage_error(PROG, "--per-message: 1 .. 16");
            o.per_message = (int)v;
            break;
        case O_MC:
            if (!cli_parse_long(optarg, 10, 0, 4095, &v))
                return cli_usage_error(PROG, "--mc-start: 0 .. 4095");
            o.mc_start = (int)v;
            break;
        case O_WIN:
            if (!cli_parse_long(optarg, 10, 1, 1000, &v))
                return cli_usage_error(PROG, "--window: 1 .. 1000");
            o.window = (int)v;
            break;
        case O_DLFILE:
            o.downlinks = optarg;
            break;
        case O_HOLD:
        case O_RESEND:
        case O_SETTLE:
        case O_TIMEOUT:
            if (!cli_parse_number(optarg, &d) || d <= 0)
                return cli_usage_error(PROG, "%s: seconds > 0", argv[optind - 1]);
            if (c == O_RESEND)
                o.resend_s = d;
            else if (c == O_SETTLE)
                o.settle_s = d;
            else if (c == O_HOLD)
                o.hold_s = d;
            else
                o.timeout_s = d;
            break;
        case O_BF:
            if (!cli_parse_long(optarg, 10, 0, 1000000, &v))
                return cli_usage_error(PROG, "--bf-every: 0 .. 1000000");
            o.bf_every = (int)v;
            break;
        case O_SEED:
            if (!cli_parse_long(optarg, 10, 1, 1L << 30, &seed))
                return cli_usage_error(PROG, "--seed: 1 .. 2^30");
            break;
        case O_CHECK:
            o.check = true;
            break;
        case O_BODY:
            body = optarg;
            break;
        case O_BADAUTH:
            bad_auth = true;
            break;
        case O_TIMES: {
            char *end = NULL;
            times = strtol(optarg, &end, 10);
            if (*end || times < 1 || times > 1000000)
                return cli_usage_error(PROG, "--times: 1 .. 1000000");
            break;
        }
        default: {
            int rc = cli_common_opt(c, PROG, usage_text, argv);
            return rc < 0 ? 0 : rc;
        }
        }
    }
    rng_state ^= (uint64_t)seed * 0x9E3779B97F4A7C15ull;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (is_setup)
        return setup(o.dir, (int)nst, (int)ndev);
    if (is_send) {
        if (o.neps != 1 || (!body && !bad_auth))
            return cli_usage_error(PROG, "send needs one --endpoint and --body TEXT|@FILE or --bad-auth");
        return send_one(o.dir, o.eps[0], body, bad_auth, times);
    }
    if (o.neps == 0 || o.nsubs == 0)
        return cli_usage_error(PROG, "run needs --endpoint and --sub");
    return run(&o);
}
