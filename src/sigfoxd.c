/* sigfoxd: the Sigfox base station daemon, and `sigfoxd --replay FILE`. Licence: MIT.
 *
 * Live:   capture thread (capture.h: SoapySDR) -> block ring -> DSP thread (rx.h)
 *         -> anti-replay (devstate.h) -> publisher (ZeroMQ PUB) ; main thread: commands,
 *         signals, stats and state timers.
 * Replay: capture (IQ file) -> the same DSP loop on the main thread -> JSON lines on stdout.
 * Downlink (docs/downlink-scheduler.md): authenticated BF=1 messages -> dlsched (the DSP
 *         thread ticks it on the stream's time base; the command thread answers callbacks)
 *         -> txsink (its own thread: file sink or SoapySDR TX) -> results back to dlsched.
 *         Monarch beacons are planned on the DSP thread and sent through the same txsink.
 *
 * Exit status: 0 clean stop (signal, end of stream), 64 bad usage or configuration,
 * 1 runtime failure (radio lost, bind failure, damaged state, file read error).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <SoapySDR/Version.h>
#include <json-c/json.h>
#include <liquid/liquid.h>
#include <zmq.h>

#include "antireplay.h"
#include "capture.h"
#include "config.h"
#include "devstate.h"
#include "dlsched.h"
#include "framejson.h"
#include "iqfile.h"
#include "keys.h"
#include "log.h"
#include "monarch.h"
#include "publisher.h"
#include "rc.h"
#include "rx.h"
#include "rxjson.h"
#include "txsink.h"

#ifndef SIGFOXD_VERSION
#define SIGFOXD_VERSION "unknown"
#endif

#define POLL_MS 100       /* command poll period: how fast the main loop sees a stop */
#define BLOCK_WAIT_MS 100 /* DSP wait for a block before checking its flags */

typedef struct {
    cfg_t cfg;
    bool replay;
    const rc_params_t *rc;
    double channel_freq_hz; /* macro-channel centre given to rx (0: capture centre) */

    keystore_t *keys; /* NULL: no keys configured (auth "unchecked") */
    devstate_t *state;
    publisher_t *pub; /* live mode */
    capture_t *cap;
    rx_t *rx;
    rxjson_ctx_t jctx; /* DSP thread only */

    /* Written by the DSP thread, read by the main thread (commands, stats). */
    pthread_mutex_t lock;
    rx_stats_t rx_stats;
    uint64_t dsp_samples;
    double dsp_busy_s;
    uint64_t replays, events_suppressed, messages_published, frames_published;
    uint32_t *key_ids; /* devices with a key, sorted */
    size_t nkey_ids;

    atomic_int reload_keys;
    atomic_int dsp_done;
    int dsp_result; /* CAPTURE_* code that ended the DSP loop */
    bool rx_failed;
    bool output_failed; /* replay: stdout closed or full */

    /* Downlink: NULL when disabled (dl_off says why, for the downlink command). */
    dlsched_t *sched;
    txsink_t *tx;
    char dl_off[384];
    double anchor_t_s, anchor_unix_s; /* copy of jctx's UTC anchor for other threads (lock) */
    /* Monarch beacons (DSP thread; counters under lock). */
    bool monarch;
    bool beacon_planned;
    double beacon_slot;   /* slot start: UTC seconds live, stream seconds in a replay */
    double beacon_jitter; /* random offset of the planned beacon in its slot, s */
    uint32_t beacon_id;
    uint64_t beacon_rng;
    uint64_t beacons_sent, beacons_failed, beacons_refused;

    double start_mono_s, start_unix_s;
    double last_cpu_s, last_cpu_mono_s, cpu_load;
} app_t;

/* ---- signals ------------------------------------------------------------------------ */

static volatile sig_atomic_t stop_signals;
static volatile sig_atomic_t hup_signals;

static void on_signal(int sig)
{
    if (sig == SIGHUP) {
        hup_signals++;
        return;
    }
    if (stop_signals++ > 0) {
        static const char msg[] = "sigfoxd: second signal, exiting at once\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(CFG_EXIT_RUNTIME);
    }
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR and the loop sees it */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Worker threads inherit a mask that blocks the handled signals, so that only the main
 * thread runs the handler and its blocking calls are the ones interrupted. */
static void block_signals(bool block)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

/* ---- small helpers ------------------------------------------------------------------ */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double unix_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The IDs in a key store, sorted. Returns a malloc()ed array (caller frees) and its
 * length in *n, or NULL when the store is empty or memory is short. */
static uint32_t *keystore_ids(const keystore_t *ks, size_t *n)
{
    *n = 0;
    size_t count = keystore_count(ks);
    uint32_t *ids = count ? malloc(count * sizeof *ids) : NULL;
    if (!ids)
        return NULL;
    for (size_t i = 0; i < count; i++)
        ids[i] = keystore_ep_id_at(ks, i);
    *n = count;
    return ids;
}

static void set_key_ids(app_t *a)
{
    size_t n;
    uint32_t *ids = keystore_ids(a->keys, &n);
    pthread_mutex_lock(&a->lock);
    free(a->key_ids);
    a->key_ids = ids;
    a->nkey_ids = ids ? n : 0;
    pthread_mutex_unlock(&a->lock);
}

/* Logs and, in live mode, publishes a "log" event (warnings and worse that operators
 * watching the API should see). */
static void app_log(app_t *a, log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void app_log(app_t *a, log_level_t level, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    log_msg(level, "%s", text);
    if (!a->pub || level > LOG_LEVEL_WARNING)
        return;
    json_object *o = json_object_new_object();
    if (!o)
        return;
    static const char *const names[] = {"", "fatal", "critical", "error", "warning"};
    char utc[40];
    framejson_add(o, "type", json_object_new_string("log"));
    framejson_add(o, "format_version", json_object_new_int(PUBLISHER_FORMAT_VERSION));
    framejson_add(o, "level", json_object_new_string(names[level]));
    framejson_add(o, "text", json_object_new_string(text));
    framejson_add(o, "time_utc",
                  json_object_new_string(publisher_time_utc(unix_s(), utc, sizeof utc)));
    publisher_publish_json(a->pub, "log", o);
    json_object_put(o);
}

/* Sends an event: PUB socket in live mode, one JSON line on stdout in replay mode. */
static void emit(app_t *a, const char *topic, json_object *o)
{
    if (!o) {
        log_error("Cannot build a %s event: out of memory", topic);
        return;
    }
    if (a->replay) {
        /* One line per event under a lock: events may come from more than one thread
         * (receiver callbacks now, the downlink scheduler's later). */
        pthread_mutex_lock(&a->lock);
        if (!a->output_failed) {
            fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), stdout);
            fputc('\n', stdout);
            /* Consumers of a pipe (jq, tests) see each event at once; a closed pipe
             * (`| head`) ends the replay instead of decoding the rest for nobody. */
            if (fflush(stdout) != 0 || ferror(stdout)) {
                log_error("Cannot write events to stdout, error: %s", strerror(errno));
                a->output_failed = true;
            }
        }
        pthread_mutex_unlock(&a->lock);
    } else {
        publisher_publish_json(a->pub, topic, o);
    }
}

/* ---- receiver callbacks (DSP thread) ------------------------------------------------- */

static void on_frame(const rx_frame_t *f, void *user)
{
    app_t *a = user;
    /* Confirmations at once (the assembler holds a single frame for its replica window,
     * longer than the confirmation verdict may wait); never opens a request: the frame
     * has not been through the anti-replay check. */
    if (a->sched)
        dlsched_rx_frame(a->sched, f);
    if (f->auth != RX_AUTH_OK && !a->cfg.publish_unauthenticated) {
        pthread_mutex_lock(&a->lock);
        a->events_suppressed++;
        pthread_mutex_unlock(&a->lock);
        return;
    }
    json_object *o = rxjson_frame(f, &a->jctx);
    if (f->frame.crc_ok)
        log_debug("Frame decoded, ep_id: %08" PRIX32 ", mc: %u, rank: %d, auth: %s, freq_hz: "
                  "%.1f, snr_db: %.1f",
                  f->frame.msg.ep_id, (unsigned)f->frame.msg.mc, f->frame.rank,
                  json_object_get_string(json_object_object_get(o, "auth")), f->freq_hz, f->snr_db);
    emit(a, "frame", o);
    json_object_put(o);
    pthread_mutex_lock(&a->lock);
    a->frames_published++;
    pthread_mutex_unlock(&a->lock);
}

static void on_message(const rx_message_t *m, void *user)
{
    app_t *a = user;
    const ul_message_t *msg = &m->msg;
    if (m->auth != RX_AUTH_OK && !a->cfg.publish_unauthenticated) {
        pthread_mutex_lock(&a->lock);
        a->events_suppressed++;
        pthread_mutex_unlock(&a->lock);
        return;
    }
    json_object *o = rxjson_message(m, &a->jctx);
    const char *topic = "message";
    bool fresh = false; /* authenticated and not a replay: may ask for a downlink */
    /* Anti-replay only for authenticated messages: an unauthenticated counter proves
     * nothing and must not move the window. */
    if (m->auth == RX_AUTH_OK && o) {
        /* On-air time of the first replica: UTC live (comparable across restarts), stream
         * time in a replay. */
        double t0 = m->nframes > 0 ? m->frames[0].t_start_s : 0;
        double when = a->jctx.anchor_unix_s > 0 ? a->jctx.anchor_unix_s + (t0 - a->jctx.anchor_t_s)
                                                : unix_s();
        double on_air = a->jctx.anchor_unix_s > 0 ? when : t0;
        devstate_entry_t before;
        int verdict = devstate_check(a->state, msg->ep_id, msg->mc,
                                     (unsigned)cfg_daily_messages(&a->cfg, msg->ep_id), on_air,
                                     (int64_t)when, &before);
        if (verdict == DEVSTATE_LATE)
            log_debug("Message delivered after a newer one, ep_id: %08" PRIX32 ", mc: %u, "
                      "last_mc: %u",
                      msg->ep_id, (unsigned)msg->mc, (unsigned)before.last_mc);
        if (verdict == DEVSTATE_REPLAY) {
            topic = "replay";
            json_object_object_add(o, "type", json_object_new_string("replay"));
            framejson_add(o, "last_mc", json_object_new_int(before.last_mc));
            pthread_mutex_lock(&a->lock);
            a->replays++;
            pthread_mutex_unlock(&a->lock);
            app_log(a, LOG_LEVEL_WARNING,
                    "Replayed message refused, ep_id: %08" PRIX32 ", mc: %u, last_mc: %u",
                    msg->ep_id, (unsigned)msg->mc, (unsigned)before.last_mc);
        } else if (verdict < 0) {
            log_error("Anti-replay check failed, ep_id: %08" PRIX32 ", error: %s", msg->ep_id,
                      devstate_strerror(verdict));
        }
        fresh = verdict == DEVSTATE_NEW || verdict == DEVSTATE_LATE;
        if (a->cfg.state_flush_interval_s == 0 && !a->replay) {
            char err[512];
            if (devstate_flush(a->state, err, sizeof err) != 0)
                app_log(a, LOG_LEVEL_ERROR, "State not written, error: %s", err);
        }
    }
    if (strcmp(topic, "message") == 0) {
        log_info("Message received, ep_id: %08" PRIX32 ", mc: %u, kind: %s, auth: %s, "
                 "replicas: %d%s, freq_hz: %.1f",
                 msg->ep_id, (unsigned)msg->mc, ul_kind_name(msg->kind),
                 o ? json_object_get_string(json_object_object_get(o, "auth")) : "?", m->nframes,
                 m->combined ? " (combined)" : "", m->nframes ? m->frames[0].freq_hz : 0.0);
        pthread_mutex_lock(&a->lock);
        a->messages_published++;
        pthread_mutex_unlock(&a->lock);
    }
    emit(a, topic, o);
    json_object_put(o);
    /* After the message event, so that an application sees the message before the
     * downlink_request it causes. A replay must not burn quota or duty cycle. */
    if (a->sched && fresh)
        dlsched_rx_message(a->sched, m);
}

/* ---- downlink and Monarch beacons ------------------------------------------------------ */

/* UTC anchor for events built outside the DSP thread (NULL ctx in a replay: no UTC). */
static const rxjson_ctx_t *anchor_copy(app_t *a, rxjson_ctx_t *ctx)
{
    if (a->replay)
        return NULL;
    memset(ctx, 0, sizeof *ctx);
    pthread_mutex_lock(&a->lock);
    ctx->anchor_t_s = a->anchor_t_s;
    ctx->anchor_unix_s = a->anchor_unix_s;
    pthread_mutex_unlock(&a->lock);
    return ctx;
}

/* dlsched events, from the DSP thread (ticks, uplinks), the command thread (declined
 * answers) and the transmit thread (sent/failed). Runs with the scheduler's lock held:
 * publishes and hands scheduled bursts to the transmitter, nothing else. */
static int on_dl_event(const dlsched_event_t *ev, void *user)
{
    app_t *a = user;
    rxjson_ctx_t ctx;
    json_object *o = dlsched_event_json(ev, anchor_copy(a, &ctx));
    emit(a, dlsched_event_name(ev->type), o);
    json_object_put(o);
    if (ev->type == DLSCHED_EV_SCHEDULED)
        return a->tx ? txsink_submit_event(a->tx, ev) : -1;
    return 0;
}

/* The Monarch beacon event: "monarch_beacon" with status ok / tx_error / duty_cycle. */
static void emit_beacon(app_t *a, uint32_t id, double t_start_s, const char *status,
                        const char *reason, const char *file)
{
    json_object *o = json_object_new_object();
    if (!o)
        return;
    rxjson_ctx_t ctx;
    const rxjson_ctx_t *c = anchor_copy(a, &ctx);
    int rc = framejson_add(o, "type", json_object_new_string("monarch_beacon"));
    rc |= framejson_add(o, "format_version", json_object_new_int(PUBLISHER_FORMAT_VERSION));
    rc |= framejson_add(o, "id", json_object_new_int64(id));
    rc |= framejson_add(o, "status", json_object_new_string(status));
    if (reason && reason[0])
        rc |= framejson_add(o, "reason", json_object_new_string(reason));
    rc |= framejson_add(o, "freq_hz", rxjson_number(a->cfg.monarch_freq_hz, 1));
    rc |= framejson_add(o, "tx_freq_hz",
                        rxjson_number(a->cfg.monarch_freq_hz / (1.0 + a->cfg.tx_ppm * 1e-6), 1));
    rc |= framejson_add(o, "df1_hz", rxjson_number(a->cfg.monarch_df1_hz, 1));
    rc |= framejson_add(o, "df2_hz", rxjson_number(a->cfg.monarch_df2_hz, 1));
    rc |= framejson_add(o, "t_start_s", rxjson_number(t_start_s, 6));
    rc |= framejson_add(o, "t_end_s", rxjson_number(t_start_s + MONARCH_BEACON_S, 6));
    if (c && c->anchor_unix_s > 0) {
        char utc[40];
        publisher_time_utc(c->anchor_unix_s + (t_start_s - c->anchor_t_s), utc, sizeof utc);
        rc |= framejson_add(o, "time_utc", json_object_new_string(utc));
    }
    if (file && file[0])
        rc |= framejson_add(o, "file", json_object_new_string(file));
    if (rc == 0)
        emit(a, "monarch_beacon", o);
    json_object_put(o);
}

/* The transmitter's report (transmit thread). */
static void on_tx_result(const txsink_result_t *r, void *user)
{
    app_t *a = user;
    if (r->beacon) {
        pthread_mutex_lock(&a->lock);
        if (r->status == 0)
            a->beacons_sent++;
        else
            a->beacons_failed++;
        pthread_mutex_unlock(&a->lock);
        emit_beacon(a, r->id, r->t_start_s, r->status == 0 ? "ok" : "tx_error", r->error, r->path);
        return;
    }
    if (a->sched)
        dlsched_tx_done(a->sched, r->id, r->status == 0, r->error, r->path[0] ? r->path : NULL);
}

/* splitmix64: the beacons' random offsets (seeded per run live, fixed in a replay so that
 * a replay writes the same files every time). */
static double beacon_random(app_t *a)
{
    uint64_t z = (a->beacon_rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

/* Logs when the next beacon is due: UTC live (slot + offset), stream time in a replay. */
static void log_beacon_plan(app_t *a, bool utc)
{
    char when[40];
    if (utc)
        publisher_time_utc(a->beacon_slot + a->beacon_jitter, when, sizeof when);
    else
        snprintf(when, sizeof when, "stream %.3f s", a->beacon_slot + a->beacon_jitter);
    log_info("Monarch beacon planned, id: %u, at: %s, slot_offset_s: %.3f", a->beacon_id + 1, when,
             a->beacon_jitter);
}

/* Plans and submits Monarch beacons (DSP thread, after each block; now_s = stream time).
 * seeds/001: every 5 minutes, a random 0-10 s into the slot; base stations are in sync
 * world-wide, so live slots start at UTC multiples of 300 s; a replay has no UTC and uses
 * stream multiples. A beacon is handed to the transmitter tx_lead_s before it starts, after
 * taking a transmitter slot from the scheduler (never over a downlink). Returns the number
 * of beacons submitted. */
static int monarch_tick(app_t *a, double now_s)
{
    if (!a->monarch || !a->tx)
        return 0;
    double lead = a->cfg.dl_tx_lead_s;
    double anchor_t = a->jctx.anchor_t_s, anchor_unix = a->jctx.anchor_unix_s;
    bool utc = !a->replay && anchor_unix > 0;
    if (!a->replay && !utc)
        return 0;                                                 /* no clock yet */
    double here = utc ? anchor_unix + (now_s - anchor_t) : now_s; /* in slot units */
    if (!a->beacon_planned) {
        /* Live, the first slot leaves the transmitter its lead time; a replay starts with
         * the slot at 0 so that a short recording shows a beacon too. */
        a->beacon_slot = utc ? ceil((here + lead) / MONARCH_PERIOD_S) * MONARCH_PERIOD_S
                             : floor(here / MONARCH_PERIOD_S) * MONARCH_PERIOD_S;
        a->beacon_jitter = beacon_random(a) * MONARCH_JITTER_S;
        a->beacon_planned = true;
        log_beacon_plan(a, utc);
    }
    int submitted = 0;
    for (;;) {
        double target = a->beacon_slot + a->beacon_jitter;
        double t = utc ? anchor_t + (target - anchor_unix) : target; /* stream time */
        if (now_s < t - lead)
            break;
        uint32_t id = ++a->beacon_id;
        char why[256] = "";
        int rc = 0;
        if (a->sched) {
            double half = 6.0 * fmax(a->cfg.monarch_df1_hz, a->cfg.monarch_df2_hz) + 500.0;
            rc = dlsched_reserve(a->sched, t, MONARCH_BEACON_S, a->cfg.monarch_freq_hz - half,
                                 a->cfg.monarch_freq_hz + half, &t, why, sizeof why);
        }
        if (rc < 0)
            snprintf(why, sizeof why, "no transmitter slot: %s", dlsched_strerror(rc));
        if (rc == 0) {
            txsink_beacon_t b = {.id = id, .freq_hz = a->cfg.monarch_freq_hz, .t_start_s = t};
            rc = txsink_submit_beacon(a->tx, &b);
            if (rc == 0)
                submitted++;
            else
                snprintf(why, sizeof why, "transmitter refused the beacon: %s",
                         txsink_strerror(rc));
        }
        if (rc != 0) {
            pthread_mutex_lock(&a->lock);
            a->beacons_refused++;
            pthread_mutex_unlock(&a->lock);
            log_warn("Monarch beacon not sent, id: %u, reason: %s", id, why);
            emit_beacon(a, id, t, rc == 1 ? "duty_cycle" : "tx_error", why, NULL);
        }
        a->beacon_slot += MONARCH_PERIOD_S;
        a->beacon_jitter = beacon_random(a) * MONARCH_JITTER_S;
        log_beacon_plan(a, utc);
    }
    return submitted;
}

/* After each block: the scheduler's clock, the beacons, and in a replay the file sink's
 * work (so downlink_sent lines come at a fixed place in the output). */
static void downlink_tick(app_t *a, double now_s)
{
    int n = a->sched ? dlsched_tick(a->sched, now_s) : 0;
    n += monarch_tick(a, now_s);
    if (n > 0 && a->replay && a->tx)
        txsink_drain(a->tx, -1);
}

/* Sets up the transmitter, the scheduler and the beacons from the configuration. A
 * transmitter that cannot be opened (receive-only radio, missing device) disables the
 * downlink with a message and the receiver runs on; configuration errors return
 * CFG_EXIT_USAGE. */
static int start_downlink(app_t *a)
{
    const cfg_t *c = &a->cfg;
    bool dl = cfg_downlink_wanted(c);
    if (!dl && !c->monarch_enabled) {
        snprintf(a->dl_off, sizeof a->dl_off,
                 "downlink is not available: it is disabled (downlink.enabled is false; give "
                 "--downlink with --tx-file DIR or a radio that transmits)");
        return 0;
    }
    if (!c->tx_file[0] && a->replay) {
        snprintf(a->dl_off, sizeof a->dl_off,
                 "downlink is not available: a replay cannot drive a radio transmitter (give "
                 "--tx-file DIR)");
        log_warn("Downlink disabled: a replay cannot drive a radio transmitter, give --tx-file "
                 "DIR to write the bursts");
        return 0;
    }
    char err[512] = "";
    double center = c->tx_center_freq_hz ? c->tx_center_freq_hz : a->rc->dl_center_hz;
    const char *tx_args = c->tx_device[0] ? c->tx_device : c->device;
    txsink_config_t tc = {
        .kind = c->tx_file[0] ? TXSINK_FILE : TXSINK_SOAPY,
        .dir = c->tx_file,
        .device_args = tx_args,
        .channel = (size_t)c->tx_channel,
        .antenna = c->tx_antenna,
        .gain = c->tx_gain,
        .settings = c->tx_settings,
        .rate_sps = cfg_tx_rate(c),
        .center_freq_hz = center,
        .amplitude = (float)c->tx_amplitude,
        .on_result = on_tx_result,
        .user = a,
    };
    if (c->monarch_enabled) {
        tc.beacon_tx_freq_hz = c->monarch_freq_hz / (1.0 + c->tx_ppm * 1e-6);
        tc.beacon_df1_hz = c->monarch_df1_hz;
        tc.beacon_df2_hz = c->monarch_df2_hz;
    }
    a->tx = txsink_create(&tc, err, sizeof err);
    if (!a->tx) {
        snprintf(a->dl_off, sizeof a->dl_off, "downlink is not available: %s", err);
        if (tc.kind == TXSINK_FILE) { /* a directory the user named: fix the configuration */
            log_error("Downlink transmitter: %s", err);
            return CFG_EXIT_USAGE;
        }
        app_log(a, LOG_LEVEL_WARNING, "Downlink disabled: %s", err);
        return 0;
    }
    if (dl) {
        size_t n = 0;
        dlsched_device_t *devs = calloc(c->ndevices ? c->ndevices : 1, sizeof *devs);
        if (!devs) {
            log_error("Downlink scheduler: out of memory");
            return CFG_EXIT_RUNTIME;
        }
        int def = dlsched_mode_from_name(c->dl_default_mode);
        for (size_t i = 0; i < c->ndevices; i++) {
            const cfg_device_t *d = &c->devices[i];
            if (d->dl_mode == CFG_DL_MODE_DEFAULT && !d->dl_quota)
                continue;
            devs[n].ep_id = d->ep_id;
            devs[n].mode = d->dl_mode == CFG_DL_MODE_DEFAULT ? (dlsched_mode_t)def
                                                             : (dlsched_mode_t)d->dl_mode;
            memcpy(devs[n].payload, d->dl_payload, sizeof devs[n].payload);
            devs[n].daily_quota = d->dl_quota;
            n++;
        }
        dlsched_config_t sc = {
            .rc = a->rc,
            .keys = a->keys,
            .devices = devs,
            .ndevices = n,
            .default_mode = (dlsched_mode_t)def,
            .window_margin_s = c->dl_window_margin_s,
            .tx_lead_s = c->dl_tx_lead_s,
            .answer_timeout_s = c->dl_answer_timeout_s,
            .tx_ppm = c->tx_ppm,
            .duty_cycle = c->dl_duty_cycle,
            .duty_window_s = c->dl_duty_window_s,
            .duty_band_lo_hz = c->dl_duty_band_lo_hz,
            .duty_band_hi_hz = c->dl_duty_band_hi_hz,
            .daily_quota = c->dl_daily_quota,
            .conf_tolerance_s = c->dl_conf_tolerance_s,
            .rx_latency_s = c->dl_rx_latency_s,
            .on_event = on_dl_event,
            .user = a,
        };
        a->sched = dlsched_create(&sc, err, sizeof err);
        free(devs);
        if (!a->sched) {
            log_error("%s", err);
            return CFG_EXIT_USAGE;
        }
        if (!a->keys)
            log_warn("Downlink enabled without device keys: no uplink can be authenticated, so "
                     "no downlink will be sent (give --keys FILE)");
        log_notice("Downlink enabled, transmitter: %s %s, tx_rate_sps: %.0f, "
                   "tx_center_freq_hz: %.0f, default_mode: %s, devices: %zu, tx_lead_s: %.1f",
                   c->tx_file[0] ? "file" : "device", c->tx_file[0] ? c->tx_file : tx_args,
                   tc.rate_sps, center, c->dl_default_mode, n, c->dl_tx_lead_s);
    } else {
        snprintf(a->dl_off, sizeof a->dl_off,
                 "downlink is not available: disabled (downlink.enabled is false); the "
                 "transmitter sends Monarch beacons only");
    }
    if (c->monarch_enabled) {
        a->monarch = true;
        a->beacon_rng = a->replay ? 0x5167F0CDULL : (uint64_t)(unix_s() * 1e6) ^ (uint64_t)getpid();
        log_notice("Monarch beacons enabled, freq_hz: %.1f, df1_hz: %.1f, df2_hz: %.1f, every "
                   "%.0f s + 0..%.0f s",
                   c->monarch_freq_hz, c->monarch_df1_hz, c->monarch_df2_hz, MONARCH_PERIOD_S,
                   MONARCH_JITTER_S);
    }
    return 0;
}

/* ---- keys ----------------------------------------------------------------------------- */

static void swap_key_stores(void *arg)
{
    keystore_t **pair = arg;
    keystore_swap(pair[0], pair[1]);
}

/* SIGHUP, on the DSP thread between blocks (rx reads the store only inside rx_process on
 * this thread; the scheduler reads it under its lock, taken for the swap). rx and the
 * scheduler keep a pointer to the store they were created with, so the reloaded keys
 * replace its contents: added, changed and removed devices all take effect at once. */
static void reload_keys(app_t *a)
{
    if (!a->keys) {
        app_log(a, LOG_LEVEL_WARNING,
                "Keys not reloaded: no keys file or devices were configured at start");
        return;
    }
    char err[512] = "";
    keystore_t *fresh = cfg_load_keys(&a->cfg, err, sizeof err);
    if (!fresh) {
        app_log(a, LOG_LEVEL_ERROR, "Keys not reloaded, the old keys stay, error: %s", err);
        return;
    }
    size_t added = 0, removed = 0, nfresh = keystore_count(fresh);
    for (size_t i = 0; i < nfresh; i++)
        if (!keystore_find(a->keys, keystore_ep_id_at(fresh, i)))
            added++;
    for (size_t i = 0; i < keystore_count(a->keys); i++)
        if (!keystore_find(fresh, keystore_ep_id_at(a->keys, i)))
            removed++;
    keystore_t *pair[2] = {a->keys, fresh};
    dlsched_locked(a->sched, swap_key_stores, pair);
    keystore_destroy(fresh); /* now the old keys */
    set_key_ids(a);
    log_notice("Keys reloaded, keys: %zu, added: %zu, removed: %zu", nfresh, added, removed);
}

/* ---- DSP loop ------------------------------------------------------------------------- */

static void snapshot_stats(app_t *a, uint64_t samples, double busy_s)
{
    rx_stats_t st;
    rx_get_stats(a->rx, &st);
    pthread_mutex_lock(&a->lock);
    a->rx_stats = st;
    a->dsp_samples += samples;
    a->dsp_busy_s += busy_s;
    pthread_mutex_unlock(&a->lock);
}

/* Feeds every block to the receiver until the source ends or stops, then flushes the
 * receiver so that bursts still open at the end are decoded. Returns the CAPTURE_* code
 * that ended the stream (CAPTURE_END, CAPTURE_ERR_STOPPED, ...). */
static int dsp_loop(app_t *a)
{
    int result;
    for (;;) {
        if (atomic_exchange(&a->reload_keys, 0))
            reload_keys(a);
        if (a->replay && (stop_signals || a->output_failed)) /* this thread consumes */
            capture_stop(a->cap);
        const capture_block_t *blk = NULL;
        int rc = capture_next_block(a->cap, &blk, BLOCK_WAIT_MS);
        if (rc == CAPTURE_ERR_TIMEOUT)
            continue;
        if (rc != CAPTURE_OK) {
            result = rc;
            break;
        }
        if (blk->flags & CAPTURE_FLAG_DISCONTINUITY) {
            rx_discontinuity(a->rx, blk->dropped);
            app_log(a, LOG_LEVEL_WARNING,
                    "Samples lost, samples: %" PRIu64 ", cause: %s, at_sample: %" PRIu64,
                    blk->dropped,
                    (blk->flags & CAPTURE_FLAG_RING_FULL) ? "receiver too slow"
                                                          : "radio overflow or reopen",
                    blk->first_sample_idx);
        }
        /* Re-anchor UTC on every block: the radio's clock and the host's drift apart. */
        a->jctx.anchor_t_s = (double)blk->first_sample_idx / blk->rate_sps;
        a->jctx.anchor_unix_s = a->replay ? 0.0 : blk->host_time_s;
        if (a->sched || a->tx) {
            pthread_mutex_lock(&a->lock);
            a->anchor_t_s = a->jctx.anchor_t_s;
            a->anchor_unix_s = a->jctx.anchor_unix_s;
            pthread_mutex_unlock(&a->lock);
            if (!a->replay && a->tx)
                txsink_set_clock(a->tx, a->jctx.anchor_t_s, blk->host_time_s);
        }
        double t0 = mono_s();
        int n = rx_process(a->rx, blk->samples, blk->n);
        double busy = mono_s() - t0;
        size_t samples = blk->n;
        double t_end = (double)(blk->first_sample_idx + blk->n) / blk->rate_sps;
        capture_release_block(a->cap, blk);
        snapshot_stats(a, samples, busy);
        if (n >= 0)
            downlink_tick(a, t_end);
        if (n < 0) {
            log_error("Receiver failed, code: %d", n);
            a->rx_failed = true;
            result = CAPTURE_ERR_STOPPED; /* stopped here; rx_failed gives the exit code */
            capture_stop(a->cap);
            break;
        }
    }
    double t0 = mono_s();
    rx_flush(a->rx);
    snapshot_stats(a, 0, mono_s() - t0);
    /* End of the stream: downlinks already planned are still committed (at their planned
     * time: a file sink writes them), callback requests end as no_answer and downlinks
     * awaiting a confirmation as lost, both with status end_of_stream. */
    bool drain = a->tx && (a->replay || a->cfg.tx_file[0]);
    if (a->sched && dlsched_flush_commits(a->sched) > 0 && drain)
        txsink_drain(a->tx, -1); /* "sent" before the end-of-stream verdicts */
    if (a->sched)
        dlsched_flush(a->sched);
    if (drain)
        txsink_drain(a->tx, -1);
    return result;
}

static void *dsp_thread(void *arg)
{
    app_t *a = arg;
    a->dsp_result = dsp_loop(a);
    atomic_store(&a->dsp_done, 1);
    return NULL;
}

/* ---- stats and commands ------------------------------------------------------------- */

/* {"requests": .., "refused_by": {..}, ..., "tx": {...}, "beacons": {...}}: the
 * scheduler's counters, the transmitter's and the Monarch beacons'. */
static json_object *downlink_stats_json(app_t *a)
{
    json_object *o = a->sched ? dlsched_stats_json(a->sched) : json_object_new_object();
    json_object *tx = json_object_new_object(), *mb = json_object_new_object();
    if (!o || !tx || !mb) {
        json_object_put(o);
        json_object_put(tx);
        json_object_put(mb);
        return NULL;
    }
    txsink_stats_t ts;
    memset(&ts, 0, sizeof ts);
    if (a->tx)
        txsink_get_stats(a->tx, &ts);
    pthread_mutex_lock(&a->lock);
    uint64_t sent = a->beacons_sent, failed = a->beacons_failed, refused = a->beacons_refused;
    pthread_mutex_unlock(&a->lock);
    int rc = 0;
#define U64(obj, name, v) rc |= framejson_add(obj, name, json_object_new_int64((int64_t)(v)))
    U64(tx, "submitted", ts.submitted);
    U64(tx, "rejected", ts.rejected);
    U64(tx, "sent", ts.sent);
    U64(tx, "failed", ts.failed);
    U64(tx, "late", ts.late);
    U64(tx, "underflows", ts.underflows);
    U64(mb, "sent", sent);
    U64(mb, "failed", failed);
    U64(mb, "refused", refused);
#undef U64
    rc |= framejson_add(o, "tx", tx);
    rc |= framejson_add(o, "beacons", mb);
    if (rc != 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static json_object *stats_json(app_t *a)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    capture_stats_t cs;
    memset(&cs, 0, sizeof cs);
    if (a->cap)
        capture_get_stats(a->cap, &cs);
    publisher_stats_t ps;
    memset(&ps, 0, sizeof ps);
    if (a->pub)
        publisher_get_stats(a->pub, &ps);
    pthread_mutex_lock(&a->lock);
    rx_stats_t rs = a->rx_stats;
    uint64_t dsp_samples = a->dsp_samples, replays = a->replays;
    uint64_t suppressed = a->events_suppressed, messages = a->messages_published;
    uint64_t frames = a->frames_published;
    double busy = a->dsp_busy_s;
    size_t nkeys = a->nkey_ids;
    pthread_mutex_unlock(&a->lock);
    double rate = a->cap ? capture_rate(a->cap) : 0;
    char utc[40];
    int rc = framejson_add(o, "type", json_object_new_string("stats"));
    rc |= framejson_add(o, "format_version", json_object_new_int(PUBLISHER_FORMAT_VERSION));
    rc |= framejson_add(o, "time_utc",
                        json_object_new_string(publisher_time_utc(unix_s(), utc, sizeof utc)));
    rc |=
        framejson_add(o, "uptime_s", json_object_new_int64((int64_t)(mono_s() - a->start_mono_s)));
    rc |= framejson_add(o, "version", json_object_new_string(SIGFOXD_VERSION));
    rc |= framejson_add(o, "rc", json_object_new_string(a->rc->name));
    rc |= framejson_add(o, "rate_sps", rxjson_number(rate, 1));
    rc |= framejson_add(o, "center_freq_hz",
                        rxjson_number(a->cap ? capture_center_freq(a->cap) : 0, 1));
    rc |= framejson_add(o, "channel_freq_hz", rxjson_number(a->channel_freq_hz, 1));
#define U64(name, v) rc |= framejson_add(o, name, json_object_new_int64((int64_t)(v)))
    U64("samples_in", rs.samples_in);
    U64("samples_dropped", cs.samples_dropped);
    U64("samples_lost", cs.samples_lost);
    U64("overflows", cs.overflows);
    U64("discontinuities", cs.discontinuities);
    U64("read_timeouts", cs.timeouts);
    U64("read_errors", cs.read_errors);
    U64("reopens", cs.reopens);
    U64("bursts_detected", rs.bursts_detected);
    U64("bursts_rejected", rs.bursts_rejected);
    U64("bursts_dropped", rs.bursts_dropped);
    U64("bursts_nosync", rs.bursts_nosync);
    U64("frames_ok", rs.frames_ok);
    U64("frames_crc_bad", rs.frames_crc_bad);
    U64("frames_ft_bad", rs.frames_ft_bad);
    U64("frames_auth_bad", rs.frames_auth_bad);
    U64("frames_unknown_device", rs.frames_unknown_device);
    U64("messages", rs.messages);
    U64("messages_combined", rs.messages_combined);
    U64("replays", replays);
    U64("frames_published", frames);
    U64("messages_published", messages);
    U64("events_suppressed", suppressed);
    U64("events_published", ps.events);
    U64("commands", ps.commands);
    U64("devices_with_key", nkeys);
    U64("devices_seen", devstate_list(a->state, NULL, 0));
#undef U64
    double rtf = busy > 0 && rate > 0 ? ((double)dsp_samples / rate) / busy : 0;
    rc |= framejson_add(o, "latency_max_s", rxjson_number(rs.latency_max_s, 3));
    rc |= framejson_add(o, "realtime_factor", rxjson_number(rtf, 1));
    rc |= framejson_add(o, "cpu_load", rxjson_number(a->cpu_load, 3));
    if (a->sched || a->tx)
        rc |= framejson_add(o, "downlink", downlink_stats_json(a));
    if (rc != 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* One journal line per stats interval: the counters an operator looks at first. */
static void log_stats(json_object *s)
{
    if (!s)
        return;
    static const char *const keys[] = {
        "samples_in",     "samples_dropped", "samples_lost", "bursts_detected", "frames_ok",
        "frames_crc_bad", "messages",        "replays",      "realtime_factor", "cpu_load"};
    char line[512];
    int n = snprintf(line, sizeof line, "Stats");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && n < (int)sizeof line; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, ", %s: %s", keys[i],
                      json_object_get_string(json_object_object_get(s, keys[i])));
    log_info("%s", line);
}

static void update_cpu_load(app_t *a)
{
    double now = mono_s(), cpu = cpu_s();
    if (now - a->last_cpu_mono_s > 0.5) {
        a->cpu_load = (cpu - a->last_cpu_s) / (now - a->last_cpu_mono_s);
        a->last_cpu_s = cpu;
        a->last_cpu_mono_s = now;
    }
}

static int cmd_stats(json_object *req, json_object *reply, void *user, char *err, size_t len)
{
    (void)req;
    app_t *a = user;
    update_cpu_load(a);
    json_object *s = stats_json(a);
    if (!s) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    json_object_object_del(s, "type");
    json_object_object_add(reply, "stats", s);
    return 0;
}

static int cmd_config(json_object *req, json_object *reply, void *user, char *err, size_t len)
{
    (void)req;
    app_t *a = user;
    json_object *c = cfg_to_json(&a->cfg);
    if (!c) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    json_object_object_add(reply, "config", c);
    return 0;
}

static int cmd_devices(json_object *req, json_object *reply, void *user, char *err, size_t len)
{
    (void)req;
    app_t *a = user;
    /* Snapshots: the DSP thread may replace the key list (SIGHUP) and add state. */
    size_t nstate = devstate_list(a->state, NULL, 0);
    devstate_entry_t *st = malloc((nstate ? nstate : 1) * sizeof *st);
    pthread_mutex_lock(&a->lock);
    size_t nkeys = a->nkey_ids;
    uint32_t *keyed = malloc((nkeys ? nkeys : 1) * sizeof *keyed);
    if (keyed && nkeys)
        memcpy(keyed, a->key_ids, nkeys * sizeof *keyed);
    pthread_mutex_unlock(&a->lock);
    if (st) { /* the state may have grown since it was counted: copy what fits */
        size_t total = devstate_list(a->state, st, nstate);
        nstate = total < nstate ? total : nstate;
    }
    uint32_t *ids = malloc((nkeys + nstate + 1) * sizeof *ids);
    json_object *list = json_object_new_array();
    if (!st || !keyed || !ids || !list) {
        free(st);
        free(keyed);
        free(ids);
        json_object_put(list);
        snprintf(err, len, "out of memory");
        return -1;
    }
    if (nkeys)
        memcpy(ids, keyed, nkeys * sizeof *ids);
    /* Every device that has a key or has sent an authenticated message, by ID. */
    size_t n = nkeys;
    for (size_t i = 0; i < nstate; i++)
        if (!bsearch(&st[i].ep_id, ids, nkeys, sizeof *ids, cmp_u32))
            ids[n++] = st[i].ep_id;
    qsort(ids, n, sizeof *ids, cmp_u32);
    for (size_t i = 0; i < n; i++) {
        json_object *d = json_object_new_object();
        if (!d)
            break;
        char hex[9], utc[40];
        snprintf(hex, sizeof hex, "%08" PRIX32, ids[i]);
        int daily = cfg_daily_messages(&a->cfg, ids[i]);
        const char *name = "";
        for (size_t k = 0; k < a->cfg.ndevices; k++)
            if (a->cfg.devices[k].ep_id == ids[i])
                name = a->cfg.devices[k].name;
        framejson_add(d, "ep_id", json_object_new_string(hex));
        framejson_add(d, "name", json_object_new_string(name));
        framejson_add(
            d, "has_key",
            json_object_new_boolean(bsearch(&ids[i], keyed, nkeys, sizeof *ids, cmp_u32) != NULL));
        framejson_add(d, "daily_messages", json_object_new_int(daily));
        framejson_add(d, "window", json_object_new_int((int)antireplay_window((unsigned)daily)));
        devstate_entry_t e;
        if (devstate_get(a->state, ids[i], &e) == 0) {
            framejson_add(d, "last_mc", json_object_new_int(e.last_mc));
            framejson_add(d, "messages", json_object_new_int64((int64_t)e.messages));
            framejson_add(d, "replays", json_object_new_int64((int64_t)e.replays));
            framejson_add(d, "last_seen_utc",
                          json_object_new_string(
                              publisher_time_utc((double)e.last_seen_unix, utc, sizeof utc)));
        } else {
            json_object_object_add(d, "last_mc", NULL);
            framejson_add(d, "messages", json_object_new_int(0));
            framejson_add(d, "replays", json_object_new_int(0));
            json_object_object_add(d, "last_seen_utc", NULL);
        }
        json_object_array_add(list, d);
    }
    free(st);
    free(keyed);
    free(ids);
    json_object_object_add(reply, "devices", list);
    return 0;
}

/* The downlink command while the downlink is disabled: says why. (With the scheduler,
 * dlsched_cmd_downlink answers it.) */
static int cmd_downlink_off(json_object *req, json_object *reply, void *user, char *err, size_t len)
{
    (void)req;
    (void)reply;
    app_t *a = user;
    snprintf(err, len, "%s", a->dl_off[0] ? a->dl_off : "downlink is not available");
    return -1;
}

/* ---- set-up shared by both modes ----------------------------------------------------- */

static int version_main(void)
{
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    printf("sigfoxd %s\nSoapySDR %s, libzmq %d.%d.%d, liquid-dsp %s, json-c %s\n", SIGFOXD_VERSION,
           SoapySDR_getLibVersion(), major, minor, patch, liquid_libversion(), json_c_version());
    return CFG_EXIT_OK;
}

static void apply_log_config(const cfg_t *cfg)
{
    log_set_level((log_level_t)log_level_from_name(cfg->log_level));
    if (strcmp(cfg->log_prefix, "on") == 0)
        log_set_syslog_prefix(1);
    else if (strcmp(cfg->log_prefix, "off") == 0)
        log_set_syslog_prefix(0);
}

/* The key store from the configuration; NULL without keys (auth stays "unchecked"). */
static int load_keys(app_t *a)
{
    if (!a->cfg.keys_file[0] && a->cfg.ndevices == 0) {
        log_notice("No device keys configured: auth is \"unchecked\" (give --keys FILE)");
        return 0;
    }
    char err[512] = "";
    a->keys = cfg_load_keys(&a->cfg, err, sizeof err);
    if (!a->keys) {
        log_error("Cannot load keys, error: %s", err);
        return -1;
    }
    set_key_ids(a);
    return 0;
}

/* Picks the macro-channel centre for rx from the configuration and the capture's actual
 * centre. Returns 0, or -1 (logged) when the channel is outside the captured band. */
static int choose_channel(app_t *a, double capture_center_hz, double rate_sps)
{
    const cfg_option_t *rc_opt = cfg_find_path("radio.rc");
    bool rc_given = cfg_source(&a->cfg, rc_opt) != CFG_SRC_DEFAULT;
    double chan = a->cfg.channel_freq_hz ? a->cfg.channel_freq_hz : a->rc->ul_center_hz;
    if (capture_center_hz == 0) {
        /* A recording without centre frequency: everything is relative to its centre. */
        log_notice("Centre frequency unknown: the macro-channel is assumed at the capture "
                   "centre and freq_hz is relative to it (give --center-freq)");
        a->channel_freq_hz = 0;
        return 0;
    }
    double room = rate_sps / 2.0 - RC_MACRO_CHANNEL_HZ / 2.0;
    if (fabs(chan - capture_center_hz) > room) {
        if (a->replay && !rc_given && !a->cfg.channel_freq_hz) {
            log_notice("The %s uplink centre %.6f MHz is outside the recording (%.6f MHz +/- %.0f "
                       "kHz): decoding around the recording's centre (give --rc)",
                       a->rc->name, chan / 1e6, capture_center_hz / 1e6, rate_sps / 2e3);
            a->channel_freq_hz = capture_center_hz;
            return 0;
        }
        log_error("The macro-channel %.6f MHz +/- %.0f kHz is outside the captured band %.6f "
                  "MHz +/- %.0f kHz",
                  chan / 1e6, RC_MACRO_CHANNEL_HZ / 2e3, capture_center_hz / 1e6, rate_sps / 2e3);
        return -1;
    }
    a->channel_freq_hz = chan;
    return 0;
}

static int create_rx(app_t *a)
{
    double rate = capture_rate(a->cap), center = capture_center_freq(a->cap);
    if (choose_channel(a, center, rate) != 0)
        return -1;
    rx_config_t rc = {
        .rate_sps = rate,
        .capture_center_hz = center,
        .channel_center_hz = a->channel_freq_hz,
        .channel_width_hz = a->cfg.channel_width_hz,
        .threshold_db = a->cfg.threshold_db,
        .report_bad_frames = a->cfg.report_bad_frames,
        .rssi_offset_db = a->cfg.rssi_offset_db,
        .keys = a->keys,
        .rc = a->rc,
        .on_frame = on_frame,
        .on_message = on_message,
        .user = a,
    };
    a->rx = rx_create(&rc);
    if (!a->rx)
        return -1;
    a->jctx.rssi_calibrated = a->cfg.rssi_offset_db != 0;
    a->jctx.rssi_offset_db = a->cfg.rssi_offset_db;
    log_info("Receiver ready, rate_sps: %.0f, center_freq_hz: %.0f, channel_freq_hz: %.0f, rc: "
             "%s",
             rate, center, a->channel_freq_hz, a->rc->name);
    return 0;
}

static void app_free(app_t *a)
{
    /* The transmitter first: its thread reports into the scheduler, which publishes. */
    txsink_destroy(a->tx);
    a->tx = NULL;
    dlsched_destroy(a->sched);
    a->sched = NULL;
    rx_destroy(a->rx);
    capture_destroy(a->cap);
    publisher_destroy(a->pub);
    devstate_destroy(a->state);
    keystore_destroy(a->keys);
    free(a->key_ids);
    pthread_mutex_destroy(&a->lock);
    cfg_free(&a->cfg);
}

static void flush_state(app_t *a)
{
    char err[512] = "";
    if (devstate_flush(a->state, err, sizeof err) != 0)
        app_log(a, LOG_LEVEL_ERROR, "State not written, error: %s", err);
}

/* ---- replay --------------------------------------------------------------------------- */

static int replay_main(app_t *a)
{
    const cfg_option_t *rate_opt = cfg_find_path("radio.rate_sps");
    const cfg_option_t *freq_opt = cfg_find_path("radio.center_freq_hz");
    iq_format_t fmt = IQ_FORMAT_UNKNOWN;
    if (a->cfg.replay_format[0]) {
        fmt = iq_format_from_name(a->cfg.replay_format);
        if (fmt == IQ_FORMAT_UNKNOWN) {
            log_error("--format: unknown format '%s' (cu8, cs8, cs16, cf32, wav, wavf32, sigmf)",
                      a->cfg.replay_format);
            return CFG_EXIT_USAGE;
        }
    }
    /* Only values the user typed: configured radio defaults must not override what the
     * file's metadata or name says. */
    capture_config_t cc = {
        .file_path = a->cfg.replay_file,
        .file_format = fmt,
        .realtime = a->cfg.realtime,
        .rate_sps = cfg_source(&a->cfg, rate_opt) == CFG_SRC_FLAG ? a->cfg.rate_sps : 0,
        .center_freq_hz = cfg_source(&a->cfg, freq_opt) == CFG_SRC_FLAG ? a->cfg.center_freq_hz : 0,
    };
    /* Replays keep anti-replay state in memory unless a state directory is given on the
     * command line: analysing a recording must not move the live daemon's counters. */
    const cfg_option_t *dir_opt = cfg_find_path("state.dir");
    char err[512] = "";
    a->state = devstate_create(
        cfg_source(&a->cfg, dir_opt) == CFG_SRC_FLAG ? a->cfg.state_dir : NULL, err, sizeof err);
    if (!a->state) {
        log_error("%s", err);
        return CFG_EXIT_RUNTIME;
    }
    /* A recording without a known rate is a usage error (the user must say it); look
     * before the capture opens it, which only reports a failure. stdin cannot be opened
     * twice: the capture's own message covers it. */
    if (strcmp(a->cfg.replay_file, "-") != 0) {
        iqfile_params_t ip = {
            .format = fmt, .rate_sps = cc.rate_sps, .center_freq_hz = cc.center_freq_hz};
        iqfile_t *f = iqfile_open_read(a->cfg.replay_file, &ip, err, sizeof err);
        if (!f) {
            log_error("Cannot open the recording, error: %s", err);
            return CFG_EXIT_RUNTIME;
        }
        double rate = iqfile_rate(f);
        iqfile_close(f);
        if (rate <= 0) {
            log_error("Sample rate of %s unknown: give --rate SPS (and --center-freq HZ), or "
                      "use SigMF or a name like x_868.13M_1024k.cu8",
                      a->cfg.replay_file);
            return CFG_EXIT_USAGE;
        }
    }
    a->cap = capture_create(&cc);
    if (!a->cap)
        return CFG_EXIT_RUNTIME; /* capture logged why */
    if (create_rx(a) != 0)
        return CFG_EXIT_USAGE;
    int dl = start_downlink(a);
    if (dl != 0)
        return dl;
    int started = capture_start(a->cap);
    block_signals(false); /* the capture thread keeps them blocked (see live_main) */
    if (started != CAPTURE_OK) {
        log_error("Cannot start reading %s", a->cfg.replay_file);
        return CFG_EXIT_RUNTIME;
    }
    double t0 = mono_s();
    int end = dsp_loop(a);
    double wall = mono_s() - t0;
    flush_state(a);
    rx_stats_t rs = a->rx_stats;
    double secs = (double)a->dsp_samples / capture_rate(a->cap);
    log_info("Replay finished, file: %s, seconds: %.3f, frames_ok: %" PRIu64 ", messages: %" PRIu64
             ", replays: %" PRIu64 ", realtime_factor: %.1f",
             a->cfg.replay_file, secs, rs.frames_ok, rs.messages, a->replays,
             wall > 0 ? secs / wall : 0);
    if (a->sched) {
        dlsched_stats_t ds;
        dlsched_get_stats(a->sched, &ds);
        log_info("Downlinks, requests: %" PRIu64 ", scheduled: %" PRIu64 ", sent: %" PRIu64
                 ", refused: %" PRIu64 ", no_answer: %" PRIu64 ", acks: %" PRIu64
                 ", lost: %" PRIu64,
                 ds.requests, ds.scheduled, ds.sent, ds.refused, ds.no_answer, ds.acks, ds.lost);
    }
    if (end == CAPTURE_ERR_SOURCE || end == CAPTURE_ERR_DEVICE) {
        /* Everything decoded before the fault has been printed and flushed above. */
        log_error("Recording could not be read to the end, file: %s, error: %s", a->cfg.replay_file,
                  capture_error_message(a->cap));
        return CFG_EXIT_RUNTIME;
    }
    return a->rx_failed || a->output_failed ? CFG_EXIT_RUNTIME : CFG_EXIT_OK;
}

/* ---- live ----------------------------------------------------------------------------- */

static int live_main(app_t *a)
{
    char err[512] = "";
    a->state = devstate_create(a->cfg.state_dir, err, sizeof err);
    if (!a->state) {
        log_error("%s", err);
        return CFG_EXIT_RUNTIME;
    }
    if (!a->cfg.pub_endpoint[0])
        log_warn("No event endpoint (api.pub_endpoint is empty): decoded messages are only "
                 "logged");
    publisher_config_t pc = {a->cfg.pub_endpoint, a->cfg.cmd_endpoint, 0};
    a->pub = publisher_create(&pc, err, sizeof err);
    if (!a->pub) {
        log_error("%s", err);
        return CFG_EXIT_RUNTIME;
    }
    if (publisher_add_command(a->pub, "stats", cmd_stats, a, "counters (as the stats event)") ||
        publisher_add_command(a->pub, "config", cmd_config, a,
                              "effective configuration, keys redacted") ||
        publisher_add_command(a->pub, "devices", cmd_devices, a,
                              "devices with a key or anti-replay state")) {
        log_error("Cannot register commands: out of memory");
        return CFG_EXIT_RUNTIME;
    }
    double chan = a->cfg.channel_freq_hz ? a->cfg.channel_freq_hz : a->rc->ul_center_hz;
    capture_config_t cc = {
        .device_args = a->cfg.device,
        .rate_sps = a->cfg.rate_sps,
        .center_freq_hz = a->cfg.center_freq_hz ? a->cfg.center_freq_hz : chan,
        .gain = a->cfg.gain,
        .ppm = a->cfg.ppm,
        .antenna = a->cfg.antenna,
        .bandwidth_hz = a->cfg.bandwidth_hz,
        .settings = a->cfg.settings,
        .overrun = a->cfg.lossless ? CAPTURE_OVERRUN_WAIT : CAPTURE_OVERRUN_DROP,
        .watchdog_s = a->cfg.watchdog_s > 0 ? a->cfg.watchdog_s : -1,
    };
    a->cap = capture_create(&cc);
    if (!a->cap)
        return CFG_EXIT_RUNTIME; /* capture logged why (missing radio, bad args) */
    if (create_rx(a) != 0)
        return CFG_EXIT_USAGE;
    int dl = start_downlink(a);
    if (dl != 0)
        return dl;
    if (a->sched ? publisher_add_command(a->pub, "downlink", dlsched_cmd_downlink, a->sched,
                                         "answer a downlink_request: ep_id, mc, payload (16 "
                                         "hex digits) or null to decline")
                 : publisher_add_command(a->pub, "downlink", cmd_downlink_off, a,
                                         "answer a downlink_request (the downlink is disabled)")) {
        log_error("Cannot register commands: out of memory");
        return CFG_EXIT_RUNTIME;
    }

    /* Every thread (ZeroMQ's, the capture's, the DSP's) started with the handled signals
     * blocked (main() blocked them); only this thread takes them, from here on. */
    pthread_t dsp;
    int started =
        capture_start(a->cap) == CAPTURE_OK && pthread_create(&dsp, NULL, dsp_thread, a) == 0;
    block_signals(false);
    if (!started) {
        log_error("Cannot start the capture and DSP threads");
        capture_stop(a->cap);
        return CFG_EXIT_RUNTIME;
    }
    log_notice("sigfoxd running, version: %s, events: %s, commands: %s, state: %s", SIGFOXD_VERSION,
               a->cfg.pub_endpoint[0] ? a->cfg.pub_endpoint : "(none)",
               a->cfg.cmd_endpoint[0] ? a->cfg.cmd_endpoint : "(none)",
               a->cfg.state_dir[0] ? a->cfg.state_dir : "(memory)");

    double next_stats = mono_s() + a->cfg.stats_interval_s;
    double next_flush = mono_s() + a->cfg.state_flush_interval_s;
    sig_atomic_t hup_seen = hup_signals;
    int exit_code = CFG_EXIT_OK;
    while (!stop_signals && !atomic_load(&a->dsp_done)) {
        if (publisher_poll(a->pub, POLL_MS) < 0) {
            app_log(a, LOG_LEVEL_ERROR, "Command socket failed: stopping");
            exit_code = CFG_EXIT_RUNTIME;
            break;
        }
        if (hup_signals != hup_seen) {
            hup_seen = hup_signals;
            log_notice("SIGHUP: reloading keys");
            atomic_store(&a->reload_keys, 1);
        }
        double now = mono_s();
        update_cpu_load(a);
        if (a->cfg.stats_interval_s > 0 && now >= next_stats) {
            next_stats = now + a->cfg.stats_interval_s;
            json_object *s = stats_json(a);
            emit(a, "stats", s);
            log_stats(s);
            json_object_put(s);
        }
        if (a->cfg.state_flush_interval_s > 0 && now >= next_flush) {
            next_flush = now + a->cfg.state_flush_interval_s;
            if (devstate_dirty(a->state))
                flush_state(a);
        }
    }
    /* Stop: halt the capture (the DSP thread then drains the blocks already captured,
     * flushes the receiver and publishes what it decoded), join, save the state. */
    if (stop_signals)
        log_notice("Stopping: draining the receiver");
    capture_stop(a->cap);
    pthread_join(dsp, NULL);
    flush_state(a);
    json_object *s = stats_json(a);
    emit(a, "stats", s);
    json_object_put(s);
    switch (a->dsp_result) {
    case CAPTURE_END:
        log_notice("Stream ended: stopping");
        break;
    case CAPTURE_ERR_STOPPED:
        break;
    default:
        log_error("Capture failed, error: %s%s%s", capture_strerror(a->dsp_result),
                  capture_error_message(a->cap)[0] ? ": " : "", capture_error_message(a->cap));
        exit_code = CFG_EXIT_RUNTIME;
        break;
    }
    if (a->rx_failed)
        exit_code = CFG_EXIT_RUNTIME;
    log_notice("sigfoxd stopped, exit: %d", exit_code);
    return exit_code;
}

int main(int argc, char **argv)
{
    app_t app;
    memset(&app, 0, sizeof app);
    pthread_mutex_init(&app.lock, NULL);
    app.start_mono_s = mono_s();
    app.start_unix_s = unix_s();
    app.last_cpu_mono_s = app.start_mono_s;

    cfg_actions_t act;
    char err[1024] = "";
    int rc = cfg_from_args(&app.cfg, &act, argc, argv, NULL, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "sigfoxd: %s\n", err);
        app_free(&app);
        return rc == CFG_ERR_NOMEM ? CFG_EXIT_RUNTIME : CFG_EXIT_USAGE;
    }
    if (act.help) {
        cfg_print_help(stdout, "sigfoxd");
        app_free(&app);
        return CFG_EXIT_OK;
    }
    if (act.version) {
        app_free(&app);
        return version_main();
    }
    apply_log_config(&app.cfg);
    if (app.cfg.config_file[0])
        log_info("Configuration read, file: %s", app.cfg.config_file);
    if (act.print_config) {
        cfg_print(&app.cfg, stdout);
        app_free(&app);
        return CFG_EXIT_OK;
    }
    app.rc = rc_lookup(app.cfg.rc);
    app.replay = app.cfg.replay_file[0] != '\0';
    if (load_keys(&app) != 0) {
        app_free(&app);
        return CFG_EXIT_USAGE;
    }
    if (act.check_config) {
        fprintf(stderr, "sigfoxd: configuration OK (%s, %zu device key(s))\n",
                app.cfg.config_file[0] ? app.cfg.config_file : "no configuration file",
                app.keys ? keystore_count(app.keys) : 0);
        app_free(&app);
        return CFG_EXIT_OK;
    }
    install_signals();
    block_signals(true); /* until the worker threads exist: they inherit the mask */
    int code = app.replay ? replay_main(&app) : live_main(&app);
    app_free(&app);
    return code;
}
