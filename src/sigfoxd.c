/* sigfoxd: the Sigfox base station daemon, and `sigfoxd --replay FILE`. Licence: MIT.
 *
 * Live:   capture thread (capture.h: SoapySDR) -> block ring -> DSP thread (rx.h)
 *         -> delivery (delivery.h: anti-replay, events built once) -> publisher (ZeroMQ
 *         PUB) ; main thread: commands, signals, stats and state timers.
 * Replay: capture (IQ file) -> the same DSP loop on the main thread -> delivery -> JSON
 *         lines on stdout.
 * Core (docs/ns.md): with core.endpoint, every CRC-valid frame also goes to the network
 *         core over corelink (a delivery sink; its own thread, spool on disk); the core's
 *         downlink answers
 *         come back on that link into dlsched.
 * Downlink (docs/downlink-scheduler.md): authenticated BF=1 messages -> dlsched (the DSP
 *         thread ticks it on the stream's time base; the command thread answers callbacks)
 *         -> txsink (its own thread: file sink or SoapySDR TX) -> results back to dlsched.
 *         Monarch beacons are planned on the DSP thread (beaconplan.h) and sent through
 *         the same txsink.
 * This file wires the modules together and answers the daemon's own commands.
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
#include "beaconplan.h"
#include "capture.h"
#include "config.h"
#include "corelink.h"
#include "delivery.h"
#include "devstate.h"
#include "dlsched.h"
#include "evjson.h"
#include "framejson.h"
#include "iqfile.h"
#include "keys.h"
#include "levelmeter.h"
#include "log.h"
#include "monarch.h"
#include "publisher.h"
#include "rc.h"
#include "recorder.h"
#include "rx.h"
#include "uldecode.h"
#include "svcnotify.h"
#include "timeutil.h"
#include "txsink.h"

#ifndef SIGFOXD_VERSION
#define SIGFOXD_VERSION "unknown"
#endif

#define POLL_MS 100              /* command poll period: how fast the main loop sees a stop */
#define BLOCK_WAIT_MS 100        /* DSP wait for a block before checking its flags */
#define SAMPLES_LOST_LOG_BURST 5 /* "Samples lost" warnings per minute at most */
#define STATUS_INTERVAL_S 5.0    /* systemd STATUS= line refresh */
#define LEVEL_WINDOW_S 5.0       /* input levels per this much signal (levelmeter.h) */
#define LEVEL_WARN_REPEAT_S 600.0 /* the same gain advice again at most this often */

typedef struct {
    cfg_t cfg;
    bool replay;
    const rc_params_t *rc;
    double channel_freq_hz; /* macro-channel centre given to rx (0: capture centre) */

    keystore_t *keys; /* NULL: no keys configured (auth "unchecked") */
    devstate_t *state;
    publisher_t *pub; /* live mode */
    capture_t *cap;
    recorder_t *rec; /* live: --record / --snippets (NULL: neither) */
    rx_t *rx;
    levelmeter_t *levels; /* DSP thread */
    delivery_t *out; /* events: publisher live, stdout in a replay; the core link */
    double anchor_t_s, anchor_unix_s; /* UTC anchor of the last block (DSP thread only) */
    double replay_start_unix_s; /* replay: UTC of the first sample (SigMF core:datetime), 0 */

    /* Written by the DSP thread, read by the main thread (commands, stats). */
    pthread_mutex_t lock;
    rx_stats_t rx_stats;
    levelmeter_report_t level_rep; /* last levels window (valid = false before one) */
    uint64_t clipped_total;
    uint64_t dsp_samples;
    double dsp_busy_s;
    uint32_t *key_ids; /* devices with a key, sorted */
    size_t nkey_ids;

    /* SIGHUP: the main thread reads the keys file and hands the new store over here; the
     * DSP thread swaps it in between blocks and hands the old one back to be freed. */
    _Atomic(keystore_t *) keys_pending;
    _Atomic(keystore_t *) keys_retired;
    atomic_int dsp_done;
    log_ratelimit_t lost_log;    /* DSP thread: "Samples lost" warnings */
    uint64_t lost_quiet_samples; /* DSP thread: lost since the last warning */
    int dsp_result;              /* CAPTURE_* code that ended the DSP loop */
    levelmeter_advice_t level_advice; /* DSP thread: advice last logged */
    double level_warned_s;            /* DSP thread: when */
    bool rx_failed;

    /* Downlink: NULL when disabled (dl_off says why, for the downlink command). */
    dlsched_t *sched;
    txsink_t *tx;
    corelink_t *core; /* NULL: no network core configured */
    char dl_off[384];
    beaconplan_t *beacons; /* NULL: no Monarch beacons */

    double start_mono_s, start_unix_s;
    double last_cpu_s, last_cpu_mono_s, cpu_load;

    /* systemd (Type=notify): READY once the radio streams, WATCHDOG=1 from the DSP thread. */
    svcnotify_t *notify;
    /* Test hook (SIGFOXD_TEST_FREEZE_DSP_S): the DSP thread stops for good this many
     * seconds after start, as a hung receiver would; test/watchdog_e2e.sh. 0: never. */
    double freeze_dsp_s;

    /* Durable anti-replay (issue 15): the state has a directory, so a block's events wait
     * until the counters they moved are on disk (delivery_hold/delivery_release). */
    bool state_on_disk;
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

/* A stop signal during start-up: the daemon stops before going further (exit 0). */
static bool stopped_in_startup(void)
{
    if (!stop_signals)
        return false;
    log_notice("Stopped during start-up");
    return true;
}

/* ---- small helpers ------------------------------------------------------------------ */

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

/* ---- downlink and Monarch beacons ------------------------------------------------------ */

/* dlsched events, from the DSP thread (ticks, uplinks), the command thread (declined
 * answers) and the transmit thread (sent/failed). Runs with the scheduler's lock held:
 * publishes and hands scheduled bursts to the transmitter, nothing else. */
static int on_dl_event(const dlsched_event_t *ev, void *user)
{
    app_t *a = user;
    delivery_downlink(a->out, ev);
    if (ev->type == DLSCHED_EV_SCHEDULED)
        return a->tx ? txsink_submit_event(a->tx, ev) : -1;
    return 0;
}

/* The transmitter's report (transmit thread). */
static void on_tx_result(const txsink_result_t *r, void *user)
{
    app_t *a = user;
    if (r->beacon) {
        beaconplan_tx_result(a->beacons, r);
        return;
    }
    if (a->sched)
        dlsched_tx_done(a->sched, r->id, r->status == 0, r->error, r->path[0] ? r->path : NULL);
}

/* After each block: the scheduler's clock, the beacons, and in a replay the file sink's
 * work (so downlink_sent lines come at a fixed place in the output). */
static void downlink_tick(app_t *a, double now_s)
{
    int n = a->sched ? dlsched_tick(a->sched, now_s) : 0;
    n += beaconplan_tick(a->beacons, now_s, a->anchor_t_s, a->anchor_unix_s);
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
        delivery_log(a->out, LOG_LEVEL_WARNING, "Downlink disabled: %s", err);
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
            .remote_answers = c->core_endpoint[0] != '\0',
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
        delivery_set_downlink(a->out, a->sched);
        if (!a->keys && !c->core_endpoint[0])
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
        /* Seeded per run live, fixed in a replay so that a replay writes the same files
         * every time. */
        beaconplan_config_t bc = {
            .live = !a->replay,
            .lead_s = c->dl_tx_lead_s,
            .freq_hz = c->monarch_freq_hz,
            .tx_ppm = c->tx_ppm,
            .df1_hz = c->monarch_df1_hz,
            .df2_hz = c->monarch_df2_hz,
            .seed = a->replay ? 0x5167F0CDULL
                              : (uint64_t)(timeutil_unix_s() * 1e6) ^ (uint64_t)getpid(),
            .sched = a->sched,
            .tx = a->tx,
            .out = a->out,
        };
        a->beacons = beaconplan_create(&bc);
        if (!a->beacons) {
            log_error("Monarch beacons: invalid configuration or out of memory");
            return CFG_EXIT_USAGE;
        }
        log_notice("Monarch beacons enabled, freq_hz: %.1f, df1_hz: %.1f, df2_hz: %.1f, every "
                   "%.0f s + 0..%.0f s",
                   c->monarch_freq_hz, c->monarch_df1_hz, c->monarch_df2_hz, MONARCH_PERIOD_S,
                   MONARCH_JITTER_S);
    }
    return 0;
}

/* ---- network core ----------------------------------------------------------------------- */

/* A downlink answer from the core (link thread): the same path as the downlink command. */
static int on_core_downlink(const corelink_downlink_t *dl, void *user, char *err, size_t err_len)
{
    app_t *a = user;
    if (!a->sched) {
        snprintf(err, err_len, "%s", a->dl_off[0] ? a->dl_off : "downlink is not available");
        return -1;
    }
    return dlsched_answer_auth(a->sched, dl->ep_id, dl->mc, dl->has_payload ? dl->payload : NULL,
                               dl->has_dl_auth ? dl->dl_auth : NULL, NULL, err, err_len);
}

/* Delivery sink: every CRC-valid frame, authenticated here or not (the core checks UL-AUTH
 * itself: the station may have no keys), and the replicas of a message that only joint
 * decoding recovered. Never blocks: a full queue drops and counts. */
static void core_uplink(const delivery_event_t *ev, void *user)
{
    app_t *a = user;
    if (ev->frame && ev->frame->frame.crc_ok)
        corelink_push_frame(a->core, ev->json, &ev->frame->frame);
    if (!ev->message)
        return;
    /* Replicas recovered only by joint decoding never were frame events: the core gets
     * them here (docs/ns.md "Wire protocol": crc_ok or joint-recovered frames), marked
     * "joint": true. */
    evjson_ctx_t ctx;
    delivery_context(a->out, &ctx);
    for (int i = 0; i < ev->message->nframes; i++) {
        const rx_frame_t *f = &ev->message->frames[i];
        if (!f->joint || !f->frame.crc_ok)
            continue;
        json_object *fo = evjson_frame(f, &ctx);
        if (fo)
            corelink_push_frame(a->core, fo, &f->frame);
        json_object_put(fo);
    }
}

/* Delivery sink: the core tracks the outcome of the downlinks it asked for (not the
 * requests: it made them; not the beacons). */
static void core_downlink_event(const delivery_event_t *ev, void *core)
{
    if (ev->downlink && ev->downlink->type != DLSCHED_EV_REQUEST)
        corelink_push_event(core, ev->json);
}

/* Delivery sink: soft frames of undecoded bursts (publish_soft), for the core's combining
 * across stations (docs/ns.md "Soft combining across stations"). */
static void core_softframe(const delivery_event_t *ev, void *core)
{
    corelink_push_softframe(core, ev->json);
}

/* Starts the link to the network core when core.endpoint is set (after the downlink:
 * hello says whether this station transmits). Returns 0 or an exit code. */
static int start_core(app_t *a)
{
    const cfg_t *c = &a->cfg;
    if (!c->core_endpoint[0])
        return 0;
    char eps[CORELINK_MAX_ENDPOINTS][CFG_STR_MAX];
    const char *ep_ptrs[CORELINK_MAX_ENDPOINTS];
    size_t n = cfg_core_endpoints(c, eps, CORELINK_MAX_ENDPOINTS);
    for (size_t i = 0; i < n; i++)
        ep_ptrs[i] = eps[i];
    char secret[CORELINK_KEY_Z85_LEN + 1], err[512] = "";
    if (corelink_read_secret_key(c->core_secret_key_file, secret, err, sizeof err) != 0) {
        log_error("core.secret_key_file: %s", err);
        return CFG_EXIT_USAGE;
    }
    corelink_config_t lc = {
        .endpoints = ep_ptrs,
        .nendpoints = n,
        .core_public_key = c->core_public_key,
        .secret_key = secret,
        .station_id = c->station_id,
        .has_position = cfg_station_has_position(c),
        .latitude = c->station_lat,
        .longitude = c->station_lng,
        .altitude_m = c->station_alt_m,
        .tx = a->sched != NULL,
        .version = SIGFOXD_VERSION,
        .spool_dir = c->core_spool_dir,
        .spool_max_frames = (size_t)c->core_spool_max_frames,
        .shutdown_wait_s = c->core_shutdown_wait_s,
        .on_downlink = on_core_downlink,
        .user = a,
    };
    a->core = corelink_create(&lc, err, sizeof err);
    explicit_bzero(secret, sizeof secret);
    if (!a->core) {
        log_error("%s", err);
        return CFG_EXIT_RUNTIME;
    }
    if (delivery_add_sink(a->out, DELIVERY_UPLINK | DELIVERY_UNAUTHENTICATED, core_uplink, a) !=
            0 ||
        delivery_add_sink(a->out, DELIVERY_DOWNLINK, core_downlink_event, a->core) != 0 ||
        (a->cfg.publish_soft &&
         delivery_add_sink(a->out, DELIVERY_SOFT, core_softframe, a->core) != 0)) {
        log_error("Cannot connect the core link to the events: out of memory");
        return CFG_EXIT_RUNTIME;
    }
    return 0;
}

/* ---- keys ----------------------------------------------------------------------------- */

static void swap_key_stores(void *arg)
{
    keystore_t **pair = arg;
    keystore_swap(pair[0], pair[1]);
}

/* SIGHUP, on the main thread: reads the keys file (bounded, regular file only: keys.c) and
 * hands the new store to the DSP thread, so that decoding never waits for a file and a
 * second signal still stops the daemon. A reload that fails leaves the old keys. */
static void reload_keys(app_t *a)
{
    if (!a->keys) {
        delivery_log(a->out, LOG_LEVEL_WARNING,
                     "Keys not reloaded: no keys file or devices were configured at start");
        return;
    }
    char err[512] = "";
    keystore_t *fresh = cfg_load_keys(&a->cfg, err, sizeof err);
    if (!fresh) {
        delivery_log(a->out, LOG_LEVEL_ERROR, "Keys not reloaded, the old keys stay, error: %s",
                     err);
        return;
    }
    /* Counted against the last store this thread loaded (a->key_ids, sorted), not a->keys:
     * the DSP thread swaps a->keys only between blocks, so a second SIGHUP right after the
     * first could otherwise be counted against keys that are about to be replaced. */
    size_t added = 0, removed = 0, nfresh = keystore_count(fresh);
    size_t nids;
    uint32_t *ids = keystore_ids(fresh, &nids);
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < nfresh; i++) {
        uint32_t id = keystore_ep_id_at(fresh, i);
        if (!a->key_ids || !bsearch(&id, a->key_ids, a->nkey_ids, sizeof id, cmp_u32))
            added++;
    }
    for (size_t i = 0; i < a->nkey_ids; i++)
        if (!keystore_find(fresh, a->key_ids[i]))
            removed++;
    pthread_mutex_unlock(&a->lock);
    keystore_destroy(atomic_exchange(&a->keys_pending, fresh)); /* an older one not taken yet */
    pthread_mutex_lock(&a->lock);
    free(a->key_ids);
    a->key_ids = ids;
    a->nkey_ids = ids ? nids : 0;
    pthread_mutex_unlock(&a->lock);
    log_notice("Keys reloaded, keys: %zu, added: %zu, removed: %zu", nfresh, added, removed);
}

/* DSP thread, between blocks: swaps a pending store in (rx reads the store only inside
 * rx_process on this thread; the scheduler reads it under its lock, taken for the swap).
 * rx and the scheduler keep a pointer to the store they were created with, so the new
 * keys replace its contents: added, changed and removed devices all take effect at once.
 * The old contents go back to the main thread to be wiped and freed. */
static void take_pending_keys(app_t *a)
{
    keystore_t *fresh = atomic_exchange(&a->keys_pending, NULL);
    if (!fresh)
        return;
    keystore_t *pair[2] = {a->keys, fresh};
    dlsched_locked(a->sched, swap_key_stores, pair);
    keystore_destroy(atomic_exchange(&a->keys_retired, fresh)); /* now the old keys */
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

/* The level meter's figures to the stats readers. */
static levelmeter_report_t share_levels(app_t *a)
{
    levelmeter_report_t r;
    levelmeter_get(a->levels, &r);
    pthread_mutex_lock(&a->lock);
    a->level_rep = r;
    a->clipped_total = levelmeter_clipped_total(a->levels);
    pthread_mutex_unlock(&a->lock);
    return r;
}

/* A levels window completed: hand its figures to the stats readers and, live, say which
 * way to turn the gain when the input clips or sits on the converter's own noise: once
 * when the advice changes, again every LEVEL_WARN_REPEAT_S while it holds (a recording
 * has no gain to turn: replays only report the levels). */
static void levels_window(app_t *a)
{
    levelmeter_report_t r = share_levels(a);
    if (a->replay)
        return;
    double now = timeutil_mono_s();
    if (r.advice == a->level_advice &&
        (r.advice == LEVELMETER_OK || now - a->level_warned_s < LEVEL_WARN_REPEAT_S))
        return;
    if (r.advice == LEVELMETER_CLIPPING)
        delivery_log(a->out, LOG_LEVEL_WARNING,
                     "Input clips: lower the gain, clipped_share: %.2g, clipped: %" PRIu64
                     ", peak_dbfs: %.1f, input_dbfs: %.1f, window_s: %.1f",
                     r.clipped_share, r.clipped, r.peak_dbfs, r.input_dbfs, r.window_s);
    else if (r.advice == LEVELMETER_TOO_WEAK)
        delivery_log(a->out, LOG_LEVEL_WARNING,
                     "Input too weak: raise the gain, noise_floor_dbfs: %.1f, "
                     "quant_floor_dbfs: %.1f, margin_db: %.1f (want >= %.0f), adc_bits: %u",
                     r.noise_floor_dbfs, r.quant_floor_dbfs,
                     r.noise_floor_dbfs - r.quant_floor_dbfs, LEVELMETER_QUANT_MARGIN_DB,
                     capture_adc_bits(a->cap));
    else
        log_notice("Input level ok now, noise_floor_dbfs: %.1f, peak_dbfs: %.1f",
                   r.noise_floor_dbfs, r.peak_dbfs);
    a->level_advice = r.advice;
    a->level_warned_s = now;
}

/* Feeds every block to the receiver until the source ends or stops, then flushes the
 * receiver so that bursts still open at the end are decoded. Returns the CAPTURE_* code
 * that ended the stream (CAPTURE_END, CAPTURE_ERR_STOPPED, ...). */
static int dsp_loop(app_t *a)
{
    int result;
    for (;;) {
        take_pending_keys(a);
        if (a->replay &&
            (stop_signals || delivery_output_failed(a->out))) /* this thread consumes */
            capture_stop(a->cap);
        if (a->freeze_dsp_s > 0 && timeutil_mono_s() - a->start_mono_s >= a->freeze_dsp_s) {
            log_warn("Test hook SIGFOXD_TEST_FREEZE_DSP_S: the DSP thread stops here");
            for (;;)
                pause(); /* handled signals are blocked in this thread */
        }
        /* Alive while this loop turns; a hang anywhere below stops the keep-alives and
         * systemd restarts the service (WatchdogSec=). */
        svcnotify_watchdog(a->notify);
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
            /* At most SAMPLES_LOST_LOG_BURST warnings a minute (an overloaded host or a
             * flaky radio would write hundreds a second); the next one sums up the rest,
             * and the stats keep the exact counts. */
            unsigned long long quiet;
            a->lost_quiet_samples += blk->dropped;
            if (log_ratelimit(&a->lost_log, timeutil_mono_s(), SAMPLES_LOST_LOG_BURST, 60.0,
                              &quiet)) {
                delivery_log(
                    a->out, LOG_LEVEL_WARNING,
                    "Samples lost, samples: %" PRIu64 ", cause: %s, at_sample: %" PRIu64 "%s",
                    a->lost_quiet_samples,
                    (blk->flags & CAPTURE_FLAG_RING_FULL) ? "receiver too slow"
                                                          : "radio overflow or reopen",
                    blk->first_sample_idx,
                    quiet ? ", note: includes earlier losses not logged (rate limit)" : "");
                a->lost_quiet_samples = 0;
            }
        }
        /* Re-anchor UTC on every block: the radio's clock and the host's drift apart. */
        a->anchor_t_s = (double)blk->first_sample_idx / blk->rate_sps;
        a->anchor_unix_s = !a->replay                     ? blk->host_time_s
                           : a->replay_start_unix_s > 0 ? a->replay_start_unix_s + a->anchor_t_s
                                                        : 0.0;
        delivery_set_anchor(a->out, a->anchor_t_s, a->anchor_unix_s);
        if (!a->replay && a->tx)
            txsink_set_clock(a->tx, a->anchor_t_s, blk->host_time_s);
        if (!a->replay)
            svcnotify_ready(a->notify, "Radio streaming, no frame yet");
        double t0 = timeutil_mono_s();
        if (levelmeter_process(a->levels, blk->samples, blk->n) == 1)
            levels_window(a);
        delivery_hold(a->out);
        int n = rx_process(a->rx, blk->samples, blk->n);
        delivery_release(a->out);
        double busy = timeutil_mono_s() - t0;
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
    double t0 = timeutil_mono_s();
    delivery_hold(a->out);
    rx_flush(a->rx);
    delivery_release(a->out);
    snapshot_stats(a, 0, timeutil_mono_s() - t0);
    if (!a->level_rep.complete) /* shorter than one window: what there was */
        share_levels(a);
    delivery_stats_t dv;
    delivery_get_stats(a->out, &dv);
    if (dv.state_syncs)
        log_info("State writes before publishing, writes: %" PRIu64 ", mean_ms: %.2f, max_ms: "
                 "%.2f",
                 dv.state_syncs, 1e3 * dv.state_sync_s / (double)dv.state_syncs,
                 1e3 * dv.state_sync_max_s);
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

/* systemd STATUS= line: what `systemctl status sigfoxd` shows. */
static void notify_status(app_t *a)
{
    if (!svcnotify_active(a->notify))
        return;
    delivery_stats_t dv;
    delivery_get_stats(a->out, &dv);
    uint64_t frames = dv.frames_published, messages = dv.messages_published;
    pthread_mutex_lock(&a->lock);
    uint64_t samples = a->dsp_samples;
    double busy = a->dsp_busy_s;
    pthread_mutex_unlock(&a->lock);
    double rate = a->cap ? capture_rate(a->cap) : 0;
    double chan = a->channel_freq_hz ? a->channel_freq_hz
                  : a->cap           ? capture_center_freq(a->cap)
                                     : 0;
    svcnotify_status(
        a->notify, "%s at %.3f MHz: %" PRIu64 " frames, %" PRIu64 " messages, DSP %.0f x real time",
        a->rc->name, chan / 1e6, frames, messages,
        busy > 0 && rate > 0 ? (double)samples / rate / busy : 0.0);
}

/* {"requests": .., "refused_by": {..}, ..., "tx": {...}, "beacons": {...}}: the
 * scheduler's counters, the transmitter's and the Monarch beacons'. */
static json_object *downlink_stats_json(app_t *a)
{
    dlsched_stats_t ds;
    memset(&ds, 0, sizeof ds);
    if (a->sched)
        dlsched_get_stats(a->sched, &ds);
    json_object *o = a->sched ? evjson_downlink_stats(&ds) : json_object_new_object();
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
    beaconplan_stats_t bs;
    beaconplan_get_stats(a->beacons, &bs);
    int rc = 0;
#define U64(obj, name, v) rc |= framejson_add(obj, name, json_object_new_int64((int64_t)(v)))
    U64(tx, "submitted", ts.submitted);
    U64(tx, "rejected", ts.rejected);
    U64(tx, "sent", ts.sent);
    U64(tx, "failed", ts.failed);
    U64(tx, "late", ts.late);
    U64(tx, "underflows", ts.underflows);
    U64(mb, "sent", bs.sent);
    U64(mb, "failed", bs.failed);
    U64(mb, "refused", bs.refused);
#undef U64
    rc |= framejson_add(o, "tx", tx);
    rc |= framejson_add(o, "beacons", mb);
    if (rc != 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* stats.levels: the last window of the level meter (docs/api.md). */
static json_object *levels_json(app_t *a, const levelmeter_report_t *r, uint64_t clipped_total)
{
    json_object *o = json_object_new_object(), *parts = json_object_new_array();
    if (!o || !parts) {
        json_object_put(o);
        json_object_put(parts);
        return NULL;
    }
    double center = a->cap ? capture_center_freq(a->cap) : 0;
    int rc = framejson_add_num(o, "window_s", r->window_s, 2);
    rc |= framejson_add_num(o, "input_dbfs", r->input_dbfs, 1);
    rc |= framejson_add_num(o, "peak_dbfs", r->peak_dbfs, 1);
    rc |= framejson_add(o, "clipped", json_object_new_int64((int64_t)r->clipped));
    rc |= framejson_add_num(o, "clipped_share", r->clipped_share, 7);
    rc |= framejson_add(o, "clipped_total", json_object_new_int64((int64_t)clipped_total));
    rc |= framejson_add_num(o, "noise_floor_dbfs", r->noise_floor_dbfs, 1);
    rc |= framejson_add_num(o, "quant_floor_dbfs", r->quant_floor_dbfs, 1);
    rc |= framejson_add(o, "adc_bits", json_object_new_int((int)capture_adc_bits(a->cap)));
    rc |= framejson_add(o, "advice", json_object_new_string(levelmeter_advice_name(r->advice)));
    for (unsigned i = 0; i < r->parts; i++) {
        json_object *p = json_object_new_object();
        if (!p) {
            rc = -1;
            break;
        }
        rc |= framejson_add_num(p, "freq_hz", center + levelmeter_part_offset_hz(a->levels, i), 0);
        rc |= framejson_add_num(p, "noise_floor_dbfs", r->part_floor_dbfs[i], 1);
        if (json_object_array_add(parts, p) != 0) {
            json_object_put(p);
            rc = -1;
        }
    }
    rc |= framejson_add(o, "parts", parts);
    if (rc != 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* The recorder's counters (stats event, final log line). */
static json_object *recorder_stats_json(const app_t *a)
{
    recorder_stats_t st;
    recorder_get_stats(a->rec, &st);
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    const struct {
        const char *name;
        uint64_t value;
    } f[] = {
        {"record_files", st.record_files},
        {"record_files_deleted", st.record_files_deleted},
        {"record_bytes", st.record_bytes},
        {"record_samples_dropped", st.record_samples_dropped},
        {"record_write_errors", st.record_write_errors},
        {"annotations", st.annotations},
        {"annotations_dropped", st.annotations_dropped},
        {"snippets", st.snippets},
        {"snippets_dropped", st.snippets_dropped},
        {"snippet_write_errors", st.snippet_write_errors},
        {"queue_bytes", st.queue_bytes},
        {"history_bytes", st.history_bytes},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        rc |= framejson_add(o, f[i].name, json_object_new_int64((int64_t)f[i].value));
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
    delivery_stats_t dv;
    delivery_get_stats(a->out, &dv);
    pthread_mutex_lock(&a->lock);
    rx_stats_t rs = a->rx_stats;
    levelmeter_report_t lv = a->level_rep;
    uint64_t clipped_total = a->clipped_total;
    uint64_t dsp_samples = a->dsp_samples;
    double busy = a->dsp_busy_s;
    size_t nkeys = a->nkey_ids;
    pthread_mutex_unlock(&a->lock);
    double rate = a->cap ? capture_rate(a->cap) : 0;
    char utc[40];
    int rc = framejson_add(o, "type", json_object_new_string("stats"));
    rc |= framejson_add(o, "format_version", json_object_new_int(PUBLISHER_FORMAT_VERSION));
    rc |= framejson_add(
        o, "time_utc",
        json_object_new_string(publisher_time_utc(timeutil_unix_s(), utc, sizeof utc)));
    rc |= framejson_add(o, "uptime_s",
                        json_object_new_int64((int64_t)(timeutil_mono_s() - a->start_mono_s)));
    rc |= framejson_add(o, "version", json_object_new_string(SIGFOXD_VERSION));
    rc |= framejson_add(o, "rc", json_object_new_string(a->rc->name));
    rc |= framejson_add(o, "rate_sps", framejson_number(rate, 1));
    rc |= framejson_add(o, "center_freq_hz",
                        framejson_number(a->cap ? capture_center_freq(a->cap) : 0, 1));
    rc |= framejson_add(o, "channel_freq_hz", framejson_number(a->channel_freq_hz, 1));
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
    U64("bursts_unverified", rs.bursts_unverified);
    U64("lines_removed", rs.lines_removed);
    U64("neighbours_cancelled", rs.neighbours_cancelled);
    U64("bursts_dropped", rs.bursts_dropped);
    U64("bursts_nosync", rs.bursts_nosync);
    U64("frames_ok", rs.frames_ok);
    U64("frames_corrected", rs.frames_corrected);
    U64("frames_crc_bad", rs.frames_crc_bad);
    U64("frames_ft_bad", rs.frames_ft_bad);
    U64("frames_auth_bad", rs.frames_auth_bad);
    U64("frames_unknown_device", rs.frames_unknown_device);
    U64("messages", rs.messages);
    U64("messages_combined", rs.messages_combined);
    U64("replays", dv.replays);
    U64("frames_published", dv.frames_published);
    U64("messages_published", dv.messages_published);
    U64("events_suppressed", dv.events_suppressed);
    U64("softframes_published", dv.softframes_published);
    U64("softframes_dropped", dv.softframes_dropped);
    U64("events_published", ps.events);
    U64("commands", ps.commands);
    U64("devices_with_key", nkeys);
    U64("devices_seen", devstate_list(a->state, NULL, 0));
#undef U64
    double rtf = busy > 0 && rate > 0 ? ((double)dsp_samples / rate) / busy : 0;
    rc |= framejson_add(o, "latency_max_s", framejson_number(rs.latency_max_s, 3));
    rc |= framejson_add(o, "realtime_factor", framejson_number(rtf, 1));
    rc |= framejson_add(o, "cpu_load", framejson_number(a->cpu_load, 3));
    if (lv.valid)
        rc |= framejson_add(o, "levels", levels_json(a, &lv, clipped_total));
    if (a->sched || a->tx)
        rc |= framejson_add(o, "downlink", downlink_stats_json(a));
    if (a->core)
        rc |= framejson_add(o, "core", corelink_stats_json(a->core));
    if (a->rec)
        rc |= framejson_add(o, "recorder", recorder_stats_json(a));
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
    double now = timeutil_mono_s(), cpu = cpu_s();
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
 * evjson_cmd_downlink answers it.) */
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

static unsigned daily_messages(uint32_t ep_id, void *user)
{
    const app_t *a = user;
    return (unsigned)cfg_daily_messages(&a->cfg, ep_id);
}

/* The event path: anti-replay, event JSON, sinks (added by the caller). */
static int create_delivery(app_t *a)
{
    char err[256] = "";
    delivery_config_t dc = {
        .state = a->state,
        .daily_messages = daily_messages,
        .daily_user = a,
        .flush_each_message = a->cfg.state_flush_interval_s == 0 && !a->replay,
        .hold_until_durable = a->state_on_disk,
        .publish_unauthenticated = a->cfg.publish_unauthenticated,
        .remote_answers = a->cfg.core_endpoint[0] != '\0',
        .rssi_calibrated = a->cfg.rssi_offset_db != 0,
        .rssi_offset_db = a->cfg.rssi_offset_db,
        .station_id = a->cfg.station_id,
        .soft_max_per_s = a->cfg.publish_soft_max_per_s,
    };
    a->out = delivery_create(&dc, err, sizeof err);
    if (!a->out)
        log_error("Cannot set up the event output, error: %s", err);
    return a->out ? 0 : -1;
}

/* The receiver's results: to the event path, and to the recorder when there is one
 * (a frame becomes an annotation, an undecoded burst a snippet and, with publish_soft and
 * a sync, a softframe event). DSP thread. */
static void rx_frame_out(const rx_frame_t *f, void *user)
{
    app_t *a = user;
    delivery_frame(f, a->out);
    recorder_frame(a->rec, f);
}

static void rx_message_out(const rx_message_t *m, void *user)
{
    app_t *a = user;
    delivery_message(m, a->out);
}

static void rx_undecoded_out(const rx_burst_t *b, void *user)
{
    app_t *a = user;
    recorder_undecoded(a->rec, b);
    if (a->cfg.publish_soft && b->soft)
        delivery_softframe(a->out, b->soft);
}

/* Live: the recorder from record.* and snippets.*, fed by the capture thread's tap with
 * the radio's own samples. Returns 0, or CFG_EXIT_USAGE after logging what is wrong with
 * the directories. */
static int start_recorder(app_t *a)
{
    const cfg_t *c = &a->cfg;
    if (!c->record_dir[0] && !c->snippet_dir[0])
        return 0;
    recorder_config_t rc = {
        .format = capture_native_format(a->cap),
        .rate_sps = capture_rate(a->cap),
        .center_freq_hz = capture_center_freq(a->cap),
        .full_scale = capture_full_scale(a->cap),
        .gain = c->gain,
        .hw = c->device,
        .record_dir = c->record_dir,
        .record_max_bytes = (uint64_t)c->record_max_mb << 20,
        .record_max_files = (unsigned)c->record_max_files,
        .snippet_dir = c->snippet_dir,
        .snippet_max_files = (unsigned)c->snippet_max_files,
        .snippet_min_interval_s = c->snippet_min_interval_s,
        .snippet_margin_s = c->snippet_margin_s,
    };
    char err[1536] = ""; /* room for a message quoting a path of CFG_PATH_MAX */
    a->rec = recorder_create(&rc, err, sizeof err);
    if (!a->rec) {
        log_error("%s", err);
        return CFG_EXIT_USAGE;
    }
    if (capture_set_tap(a->cap, recorder_tap, a->rec) != CAPTURE_OK) {
        log_error("Cannot attach the recorder to the capture");
        return CFG_EXIT_RUNTIME;
    }
    return 0;
}

static int create_rx(app_t *a)
{
    double rate = capture_rate(a->cap), center = capture_center_freq(a->cap);
    if (choose_channel(a, center, rate) != 0)
        return -1;
    _Static_assert(ULDECODE_CHASE_MAX_TRIALS == 528, "receiver.chase_trials range (config.c)");
    rx_config_t rc = {
        .rate_sps = rate,
        .capture_center_hz = center,
        .channel_center_hz = a->channel_freq_hz,
        .channel_width_hz = a->cfg.channel_width_hz,
        .threshold_db = a->cfg.threshold_db,
        .report_bad_frames = a->cfg.report_bad_frames,
        /* config 0 is "off", rx's 0 the default */
        .chase_trials = a->cfg.chase_trials > 0 ? a->cfg.chase_trials : -1,
        .rssi_offset_db = a->cfg.rssi_offset_db,
        .keys = a->keys,
        .rc = a->rc,
        .on_frame = rx_frame_out,
        .on_message = rx_message_out,
        .on_undecoded = a->rec || a->cfg.publish_soft ? rx_undecoded_out : NULL,
        .user = a,
    };
    a->rx = rx_create(&rc);
    if (!a->rx)
        return -1;
    levelmeter_config_t lc = {
        .rate_sps = rate, .window_s = LEVEL_WINDOW_S, .adc_bits = capture_adc_bits(a->cap)};
    a->levels = levelmeter_create(&lc);
    if (!a->levels)
        return -1;
    log_info("Receiver ready, rate_sps: %.0f, center_freq_hz: %.0f, channel_freq_hz: %.0f, rc: "
             "%s",
             rate, center, a->channel_freq_hz, a->rc->name);
    return 0;
}

static void app_free(app_t *a)
{
    /* The core link first: it answers into the scheduler (and waits for the last acks). */
    corelink_destroy(a->core);
    a->core = NULL;
    svcnotify_destroy(a->notify);
    a->notify = NULL;
    /* The transmitter first: its thread reports into the scheduler, which publishes. */
    txsink_destroy(a->tx);
    a->tx = NULL;
    beaconplan_destroy(a->beacons);
    a->beacons = NULL;
    dlsched_destroy(a->sched);
    a->sched = NULL;
    rx_destroy(a->rx);
    levelmeter_destroy(a->levels);
    capture_destroy(a->cap);
    /* after the capture thread (its tap) and the DSP thread: writes the last metas */
    recorder_destroy(a->rec);
    a->rec = NULL;
    delivery_destroy(a->out);
    publisher_destroy(a->pub);
    devstate_destroy(a->state);
    keystore_destroy(a->keys);
    keystore_destroy(atomic_exchange(&a->keys_pending, NULL));
    keystore_destroy(atomic_exchange(&a->keys_retired, NULL));
    free(a->key_ids);
    pthread_mutex_destroy(&a->lock);
    cfg_free(&a->cfg);
}

static void flush_state(app_t *a)
{
    char err[512] = "";
    if (devstate_flush(a->state, err, sizeof err) != 0)
        delivery_log(a->out, LOG_LEVEL_ERROR, "State not written, error: %s", err);
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
        .realtime = a->cfg.realtime || a->cfg.replay_speed > 0,
        .speed = a->cfg.replay_speed,
        .rate_sps = cfg_source(&a->cfg, rate_opt) == CFG_SRC_FLAG ? a->cfg.rate_sps : 0,
        .center_freq_hz = cfg_source(&a->cfg, freq_opt) == CFG_SRC_FLAG ? a->cfg.center_freq_hz : 0,
    };
    /* Replays keep anti-replay state in memory unless a state directory is given on the
     * command line: analysing a recording must not move the live daemon's counters. */
    const cfg_option_t *dir_opt = cfg_find_path("state.dir");
    char err[512] = "";
    a->state_on_disk = cfg_source(&a->cfg, dir_opt) == CFG_SRC_FLAG && a->cfg.state_dir[0];
    a->state = devstate_create(a->state_on_disk ? a->cfg.state_dir : NULL, err, sizeof err);
    if (!a->state) {
        log_error("%s", err);
        return CFG_EXIT_RUNTIME;
    }
    if (create_delivery(a) != 0 ||
        delivery_add_lines(a->out, stdout, DELIVERY_UPLINK | DELIVERY_DOWNLINK | DELIVERY_SOFT) !=
            0)
        return CFG_EXIT_RUNTIME;
    if (stopped_in_startup())
        return CFG_EXIT_OK;
    /* Opened once, here, with the stop signals deliverable (a FIFO's open() waits for its
     * writer; a signal ends the wait), then handed to the capture: a pipe cannot be opened
     * twice. A recording without a known rate is a usage error (the user must say it). */
    iqfile_params_t ip = {
        .format = fmt, .rate_sps = cc.rate_sps, .center_freq_hz = cc.center_freq_hz};
    iqfile_t *f = iqfile_open_read(a->cfg.replay_file, &ip, err, sizeof err);
    if (!f) {
        if (stopped_in_startup())
            return CFG_EXIT_OK;
        log_error("Cannot open the recording, error: %s", err);
        return CFG_EXIT_RUNTIME;
    }
    if (iqfile_rate(f) <= 0) {
        iqfile_close(f);
        log_error("Sample rate of %s unknown: give --rate SPS (and --center-freq HZ), or "
                  "use SigMF or a name like x_868.13M_1024k.cu8",
                  a->cfg.replay_file);
        return CFG_EXIT_USAGE;
    }
    if (stopped_in_startup()) {
        iqfile_close(f);
        return CFG_EXIT_OK;
    }
    if (a->cfg.record_dir[0] || a->cfg.snippet_dir[0])
        log_notice("record.dir / snippets.dir of the configuration are for the live radio: "
                   "this replay records nothing");
    /* A recording that says when it was made (SigMF core:datetime) gives its events
     * time_utc; others have none. */
    a->replay_start_unix_s = iqfile_start_unix_s(f);
    if (a->replay_start_unix_s > 0) {
        char when[40];
        log_info("Recording start from SigMF core:datetime, time_utc: %s",
                 iq_format_datetime(a->replay_start_unix_s, when, sizeof when));
    }
    cc.file = f;
    block_signals(true); /* the worker threads inherit the mask */
    a->cap = capture_create(&cc);
    if (!a->cap)
        return CFG_EXIT_RUNTIME; /* capture logged why */
    if (create_rx(a) != 0)
        return CFG_EXIT_USAGE;
    int dl = start_downlink(a);
    if (dl != 0)
        return dl;
    if ((dl = start_core(a)) != 0)
        return dl;
    int started = capture_start(a->cap);
    block_signals(false); /* the capture thread keeps them blocked (see live_main) */
    if (started != CAPTURE_OK) {
        log_error("Cannot start reading %s", a->cfg.replay_file);
        return CFG_EXIT_RUNTIME;
    }
    double t0 = timeutil_mono_s();
    int end = dsp_loop(a);
    double wall = timeutil_mono_s() - t0;
    flush_state(a);
    rx_stats_t rs = a->rx_stats;
    delivery_stats_t dv;
    delivery_get_stats(a->out, &dv);
    double secs = (double)a->dsp_samples / capture_rate(a->cap);
    log_info("Replay finished, file: %s, seconds: %.3f, frames_ok: %" PRIu64 ", messages: %" PRIu64
             ", replays: %" PRIu64 ", realtime_factor: %.1f",
             a->cfg.replay_file, secs, rs.frames_ok, rs.messages, dv.replays,
             wall > 0 ? secs / wall : 0);
    const levelmeter_report_t *lv = &a->level_rep;
    if (lv->valid)
        log_info("Input levels, input_dbfs: %.1f, noise_floor_dbfs: %.1f, peak_dbfs: %.1f, "
                 "clipped_total: %" PRIu64 ", quant_floor_dbfs: %.1f, advice: %s, window_s: %.2f",
                 lv->input_dbfs, lv->noise_floor_dbfs, lv->peak_dbfs, a->clipped_total,
                 lv->quant_floor_dbfs, levelmeter_advice_name(lv->advice), lv->window_s);
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
    return a->rx_failed || delivery_output_failed(a->out) ? CFG_EXIT_RUNTIME : CFG_EXIT_OK;
}

/* ---- live ----------------------------------------------------------------------------- */

static int live_main(app_t *a)
{
    char err[512] = "";
    a->state_on_disk = a->cfg.state_dir[0] != '\0';
    a->state = devstate_create(a->cfg.state_dir, err, sizeof err);
    if (!a->state) {
        log_error("%s", err);
        return CFG_EXIT_RUNTIME;
    }
    if (stopped_in_startup())
        return CFG_EXIT_OK;
    /* From here until the worker threads run, the stop signals wait (the threads inherit
     * the mask); nothing below reads an unbounded input. */
    block_signals(true);
    if (!a->cfg.pub_endpoint[0])
        log_warn("No event endpoint (api.pub_endpoint is empty): decoded messages are only "
                 "logged");
    publisher_config_t pc = {a->cfg.pub_endpoint, a->cfg.cmd_endpoint, 0};
    a->pub = publisher_create(&pc, err, sizeof err);
    if (!a->pub) {
        log_error("%s", err);
        return CFG_EXIT_RUNTIME;
    }
    if (create_delivery(a) != 0 || delivery_add_publisher(a->out, a->pub, DELIVERY_ALL) != 0)
        return CFG_EXIT_RUNTIME;
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
    int rs = start_recorder(a);
    if (rs != 0)
        return rs;
    if (create_rx(a) != 0)
        return CFG_EXIT_USAGE;
    int dl = start_downlink(a);
    if (dl != 0)
        return dl;
    if ((dl = start_core(a)) != 0)
        return dl;
    if (a->sched ? publisher_add_command(a->pub, "downlink", evjson_cmd_downlink, a->sched,
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

    double next_stats = timeutil_mono_s() + a->cfg.stats_interval_s;
    double next_flush = timeutil_mono_s() + a->cfg.state_flush_interval_s;
    double next_status = timeutil_mono_s() + STATUS_INTERVAL_S;
    sig_atomic_t hup_seen = hup_signals;
    int exit_code = CFG_EXIT_OK;
    while (!stop_signals && !atomic_load(&a->dsp_done)) {
        keystore_destroy(atomic_exchange(&a->keys_retired, NULL));
        if (publisher_poll(a->pub, POLL_MS) < 0) {
            delivery_log(a->out, LOG_LEVEL_ERROR, "Command socket failed: stopping");
            exit_code = CFG_EXIT_RUNTIME;
            break;
        }
        if (hup_signals != hup_seen) {
            hup_seen = hup_signals;
            log_notice("SIGHUP: reloading keys");
            reload_keys(a);
        }
        double now = timeutil_mono_s();
        update_cpu_load(a);
        if (a->cfg.stats_interval_s > 0 && now >= next_stats) {
            next_stats = now + a->cfg.stats_interval_s;
            json_object *s = stats_json(a);
            delivery_emit(a->out, "stats", DELIVERY_STATUS, s);
            log_stats(s);
            json_object_put(s);
        }
        if (now >= next_status) {
            next_status = now + STATUS_INTERVAL_S;
            notify_status(a);
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
    svcnotify_stopping(a->notify);
    capture_stop(a->cap);
    pthread_join(dsp, NULL);
    flush_state(a);
    json_object *s = stats_json(a);
    delivery_emit(a->out, "stats", DELIVERY_STATUS, s);
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
    app.start_mono_s = timeutil_mono_s();
    app.notify = svcnotify_create(); /* NULL (out of memory): no notifications */
    const char *freeze = getenv("SIGFOXD_TEST_FREEZE_DSP_S");
    if (freeze && *freeze) {
        char *end;
        double v = strtod(freeze, &end);
        if (*end == '\0' && v > 0 && v < 1e6)
            app.freeze_dsp_s = v;
    }
    app.start_unix_s = timeutil_unix_s();
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
    /* Stop signals work from here on: every start-up stage that reads a file checks the
     * flag, and blocking reads return EINTR (no SA_RESTART). */
    install_signals();
    if (load_keys(&app) != 0) {
        app_free(&app);
        return CFG_EXIT_USAGE;
    }
    if (act.check_config && app.cfg.core_endpoint[0]) {
        char secret[CORELINK_KEY_Z85_LEN + 1];
        if (corelink_read_secret_key(app.cfg.core_secret_key_file, secret, err, sizeof err) != 0) {
            fprintf(stderr, "sigfoxd: core.secret_key_file: %s\n", err);
            app_free(&app);
            return CFG_EXIT_USAGE;
        }
        explicit_bzero(secret, sizeof secret);
    }
    if (act.check_config) {
        fprintf(stderr, "sigfoxd: configuration OK (%s, %zu device key(s))\n",
                app.cfg.config_file[0] ? app.cfg.config_file : "no configuration file",
                app.keys ? keystore_count(app.keys) : 0);
        app_free(&app);
        return CFG_EXIT_OK;
    }
    int code = stopped_in_startup() ? CFG_EXIT_OK
               : app.replay         ? replay_main(&app)
                                    : live_main(&app);
    app_free(&app);
    return code;
}
