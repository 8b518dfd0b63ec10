/* txsink: downlink burst transmitter (IQ files or SoapySDR TX). Licence: MIT.
 * include/txsink.h describes the files, the timing and the threads. */
#include "txsink.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <SoapySDR/Device.h>
#include <SoapySDR/Errors.h>
#include <SoapySDR/Formats.h>
#include <SoapySDR/Types.h>
#include <json-c/json.h>

#include "errbuf.h"
#include "framejson.h"
#include "gfskmod.h"
#include "iqfile.h"
#include "log.h"
#include "monarch.h"
#include "timeutil.h"

#define DEFAULT_AMPLITUDE 0.7f
#define DEFAULT_QUEUE_LEN 16
#define DEFAULT_HOST_LEAD_S 0.02
#define DEFAULT_LATE_LIMIT_S 0.05
/* With hardware time the burst is handed to the driver this long before it is due: early
 * enough for USB latency, late enough for drivers with a short timed-command queue. */
#define HW_TIME_LEAD_S 0.5
#define SIGNAL_HALF_BW_HZ 2000.0 /* gfskmod's offset check: deviation + main lobe */
/* Silence written before and after each burst in a file: DL receivers (dldemod,
 * sigfox-dlrx) need a couple of symbols ahead of the first preamble bit to find it; a
 * file that starts with the ramp is not decoded. */
#define FILE_PAD_SYMBOLS 8.0
#define WRITE_TIMEOUT_US 1000000L
#define STATUS_TIMEOUT_US 100000L

/* A queued burst: a downlink or a Monarch beacon. */
typedef struct {
    bool beacon;
    txsink_burst_t dl;
    txsink_beacon_t mb;
} item_t;

struct txsink {
    txsink_config_t cfg;
    char dir[768];
    double rate_sps, center_hz;
    gfskmod_t *mod;
    float complex *buf;
    size_t buf_len;
    size_t data_offset_samples; /* burst start (ramp) to the first bit */
    size_t file_pad;            /* file sink: silent samples before and after a burst */
    monarch_t *monarch;         /* beacons configured */
    float complex *beacon_buf;
    size_t beacon_len;
    /* SoapySDR */
    SoapySDRDevice *dev;
    SoapySDRStream *stream;
    bool hw_time;
    /* queue */
    pthread_mutex_t lock;
    pthread_cond_t cond;   /* work arrived, stop, or the queue became idle */
    item_t *queue;
    size_t qlen, qhead, qcount;
    bool busy;             /* the thread holds a burst */
    bool stop;
    bool thread_started;
    pthread_t thread;
    bool have_clock;
    double clock_t_s, clock_unix_s;
    txsink_stats_t st;
};

const char *txsink_strerror(int code)
{
    switch (code) {
    case TXSINK_OK: return "ok";
    case TXSINK_ERR_ARG: return "invalid argument";
    case TXSINK_ERR_FULL: return "transmit queue full";
    case TXSINK_ERR_OFFSET: return "carrier outside the transmitter's band";
    case TXSINK_ERR_STOPPED: return "transmitter stopping";
    case TXSINK_ERR_IO: return "file write failed";
    case TXSINK_ERR_DEVICE: return "SoapySDR device error";
    case TXSINK_ERR_LATE: return "burst start already passed";
    default: return "unknown error";
    }
}

double txsink_max_offset_hz(const txsink_t *s)
{
    return s ? s->rate_sps / 2 - SIGNAL_HALF_BW_HZ : 0;
}

/* ---- file sink -------------------------------------------------------------------------- */

static int put_num(json_object *o, const char *key, double v, int decimals)
{
    return framejson_add(o, key, framejson_number(v, decimals));
}

/* The fields every sidecar starts with: what it describes and how to read its IQ file
 * (cf32 at the sink's rate and centre; the signal offset_hz from that centre). */
static int sidecar_head(json_object *o, const txsink_t *s, const char *type, const char *name,
                        double offset_hz)
{
    int rc = framejson_add(o, "type", json_object_new_string(type));
    rc |= framejson_add(o, "format_version", json_object_new_int(1));
    rc |= framejson_add(o, "file", json_object_new_string(name));
    rc |= framejson_add(o, "format", json_object_new_string("cf32"));
    rc |= put_num(o, "rate", s->rate_sps, 3);
    rc |= put_num(o, "freq_hz", s->center_hz, 1);
    rc |= put_num(o, "offset_hz", offset_hz, 1);
    return rc;
}

/* n: samples in the file (burst and silence). */
static json_object *dl_sidecar(const txsink_t *s, const txsink_burst_t *b, const char *name,
                               size_t n)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    size_t first_bit = s->file_pad + s->data_offset_samples;
    double off = (double)first_bit / s->rate_sps;
    int rc = sidecar_head(o, s, "downlink_iq", name, b->tx_freq_hz - s->center_hz);
    rc |= put_num(o, "dl_freq_hz", b->freq_hz, 1);
    rc |= put_num(o, "tx_freq_hz", b->tx_freq_hz, 1);
    rc |= put_num(o, "t_start_s", b->t_start_s, 6);
    rc |= put_num(o, "t_first_sample_s", b->t_start_s - off, 6);
    rc |= framejson_add(o, "data_offset_samples", json_object_new_int64((int64_t)first_bit));
    rc |= framejson_add(o, "n_samples", json_object_new_int64((int64_t)n));
    rc |= framejson_add(o, "baud", json_object_new_int((int)GFSK_BAUD));
    rc |= framejson_add(o, "deviation_hz", json_object_new_int((int)GFSK_DEVIATION_HZ));
    rc |= put_num(o, "bt", s->cfg.bt > 0 ? s->cfg.bt : GFSK_DEFAULT_BT, 2);
    rc |= framejson_add(o, "id", json_object_new_int64(b->id));
    rc |= framejson_add_ep_id(o, b->ep_id);
    rc |= framejson_add(o, "mc", json_object_new_int(b->mc));
    rc |= framejson_add_hex(o, "payload", b->payload, DL_PAYLOAD_BYTES);
    rc |= framejson_add_hex(o, "dl_auth", b->dl_auth, DL_AUTH_BYTES);
    rc |= framejson_add_hex(o, "bitstream", b->frame, DL_FRAME_BYTES);
    rc |= framejson_add_hex(o, "dl_phy_content", b->phy, DL_PHY_BYTES);
    if (rc != 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static json_object *beacon_sidecar(const txsink_t *s, const txsink_beacon_t *b, const char *name,
                                   size_t n)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    int rc = sidecar_head(o, s, "monarch_iq", name, s->cfg.beacon_tx_freq_hz - s->center_hz);
    rc |= put_num(o, "beacon_freq_hz", b->freq_hz, 1);
    rc |= put_num(o, "beacon_tx_freq_hz", s->cfg.beacon_tx_freq_hz, 1);
    rc |= put_num(o, "df1_hz", s->cfg.beacon_df1_hz, 1);
    rc |= put_num(o, "df2_hz", s->cfg.beacon_df2_hz, 1);
    rc |= put_num(o, "t_start_s", b->t_start_s, 6);
    rc |= put_num(o, "t_first_sample_s", b->t_start_s - (double)s->file_pad / s->rate_sps, 6);
    rc |= framejson_add(o, "data_offset_samples", json_object_new_int64((int64_t)s->file_pad));
    rc |= framejson_add(o, "n_samples", json_object_new_int64((int64_t)n));
    rc |= put_num(o, "pattern1_s", MONARCH_PATTERN1_S, 3);
    rc |= put_num(o, "pattern2_s", MONARCH_PATTERN2_S, 3);
    rc |= framejson_add(o, "id", json_object_new_int64(b->id));
    if (rc != 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static void rate_token(const txsink_t *s, char *out, size_t len)
{
    if (fmod(s->rate_sps, 1000.0) == 0)
        snprintf(out, len, "%.0fk", s->rate_sps / 1e3);
    else
        snprintf(out, len, "%.3fk", s->rate_sps / 1e3);
}

static void file_name(const txsink_t *s, const item_t *it, char *out, size_t len)
{
    char rate[32];
    rate_token(s, rate, sizeof rate);
    if (it->beacon)
        snprintf(out, len, "monarch_%u_t%lldus_%.6fM_%s.cf32", it->mb.id,
                 (long long)llround(it->mb.t_start_s * 1e6), s->center_hz / 1e6, rate);
    else
        snprintf(out, len, "dl_%08X_%u_t%lldus_%.6fM_%s.cf32", it->dl.ep_id, it->dl.mc,
                 (long long)llround(it->dl.t_start_s * 1e6), s->center_hz / 1e6, rate);
}

/* Writes x[0..n) between file_pad samples of silence, then the sidecar. */
static int write_file(txsink_t *s, const item_t *it, const float complex *x, size_t n,
                      txsink_result_t *res)
{
    char name[256], tmp[sizeof res->path + 24], ierr[256];
    file_name(s, it, name, sizeof name);
    snprintf(res->path, sizeof res->path, "%s/%s", s->dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", res->path);
    iqfile_params_t p = {.format = IQ_FORMAT_CF32, .rate_sps = s->rate_sps,
                         .center_freq_hz = s->center_hz};
    iqfile_t *f = iqfile_open_write(tmp, &p, ierr, sizeof ierr);
    if (!f) {
        errbuf_set(res->error, sizeof res->error, "%s", ierr);
        return TXSINK_ERR_IO;
    }
    static const float complex silence[1024];
    int wrc = 0;
    for (int side = 0; side < 2; side++) {
        for (size_t done = 0; done < s->file_pad && wrc == 0; done += 1024)
            wrc = iqfile_write(f, silence, s->file_pad - done < 1024 ? s->file_pad - done : 1024);
        if (side == 0 && wrc == 0)
            wrc = iqfile_write(f, x, n);
    }
    if (wrc != 0)
        errbuf_set(res->error, sizeof res->error, "%s", iqfile_error(f));
    if (iqfile_close(f) != 0 && wrc == 0) {
        wrc = -1;
        errbuf_set(res->error, sizeof res->error, "%s: write failed at close", tmp);
    }
    if (wrc != 0 || rename(tmp, res->path) != 0) {
        if (wrc == 0)
            errbuf_set(res->error, sizeof res->error, "%s: rename: %s", res->path, strerror(errno));
        unlink(tmp);
        return TXSINK_ERR_IO;
    }
    json_object *o = it->beacon ? beacon_sidecar(s, &it->mb, name, n + 2 * s->file_pad)
                                : dl_sidecar(s, &it->dl, name, n + 2 * s->file_pad);
    char jpath[sizeof res->path + 12];
    snprintf(jpath, sizeof jpath, "%s.json", res->path);
    snprintf(tmp, sizeof tmp, "%s.tmp", jpath);
    FILE *fp = o ? fopen(tmp, "w") : NULL;
    int ok = fp != NULL;
    if (fp) {
        ok = fprintf(fp, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                                        JSON_C_TO_STRING_NOSLASHESCAPE)) > 0;
        ok = (fclose(fp) == 0) && ok;
    }
    bool built = o != NULL;
    json_object_put(o);
    if (!ok || rename(tmp, jpath) != 0) {
        errbuf_set(res->error, sizeof res->error, "%s: %s", jpath,
                   built ? strerror(errno) : "out of memory");
        unlink(tmp);
        return TXSINK_ERR_IO;
    }
    return TXSINK_OK;
}

/* ---- SoapySDR sink ---------------------------------------------------------------------- */

/* Waits on the queue's condition until unix time `until` or stop. Lock held. Returns
 * false when stopped. */
static bool wait_until(txsink_t *s, double until)
{
    while (!s->stop) {
        double now = timeutil_unix_s();
        if (now >= until)
            return true;
        struct timespec ts;
        ts.tv_sec = (time_t)floor(until);
        ts.tv_nsec = (long)((until - floor(until)) * 1e9);
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
    return false;
}

/* Transmits x[0..n) so that its first sample is on air at stream time first_t_s. */
static int write_soapy(txsink_t *s, const float complex *x, size_t n, double first_t_s,
                       uint32_t id, txsink_result_t *res)
{
    pthread_mutex_lock(&s->lock);
    if (!s->have_clock) {
        pthread_mutex_unlock(&s->lock);
        errbuf_set(res->error, sizeof res->error,
                   "no stream-to-UTC clock anchor yet (txsink_set_clock not called)");
        return TXSINK_ERR_ARG;
    }
    double first_unix = s->clock_unix_s + (first_t_s - s->clock_t_s);
    double lead = s->hw_time ? HW_TIME_LEAD_S : s->cfg.host_lead_s;
    bool running = wait_until(s, first_unix - lead);
    pthread_mutex_unlock(&s->lock);
    if (!running) {
        errbuf_set(res->error, sizeof res->error, "transmitter stopped before the burst was due");
        return TXSINK_ERR_STOPPED;
    }
    double now = timeutil_unix_s();
    res->late_s = now - first_unix;
    if (res->late_s > s->cfg.late_limit_s) {
        errbuf_set(res->error, sizeof res->error,
                   "burst due %.3f s ago (limit %.3f s): not transmitted", res->late_s,
                   s->cfg.late_limit_s);
        return TXSINK_ERR_LATE;
    }
    long long time_ns = 0;
    if (s->hw_time) {
        long long hw_now = SoapySDRDevice_getHardwareTime(s->dev, "");
        time_ns = hw_now + llround((first_unix - timeutil_unix_s()) * 1e9);
        res->hw_time = true;
    }
    size_t done = 0;
    int timeouts = 0;
    while (done < n) {
        int flags = SOAPY_SDR_END_BURST | ((done == 0 && s->hw_time) ? SOAPY_SDR_HAS_TIME : 0);
        const void *buffs[1] = {x + done};
        int ret = SoapySDRDevice_writeStream(s->dev, s->stream, buffs, n - done, &flags, time_ns,
                                             WRITE_TIMEOUT_US);
        if (ret == SOAPY_SDR_TIMEOUT && ++timeouts < 3)
            continue;
        if (ret <= 0) {
            errbuf_set(res->error, sizeof res->error, "writeStream: %s after %zu of %zu samples",
                       ret == 0 ? "no progress" : SoapySDR_errToStr(ret), done, n);
            return TXSINK_ERR_DEVICE;
        }
        done += (size_t)ret;
    }
    /* Late or underflowing bursts are reported asynchronously by most drivers. */
    size_t mask = 0;
    int flags = 0;
    long long tns = 0;
    int ret = SoapySDRDevice_readStreamStatus(s->dev, s->stream, &mask, &flags, &tns,
                                              STATUS_TIMEOUT_US);
    if (ret == SOAPY_SDR_TIME_ERROR) {
        errbuf_set(res->error, sizeof res->error, "device reported a time error (burst late)");
        return TXSINK_ERR_LATE;
    }
    if (ret == SOAPY_SDR_UNDERFLOW) {
        pthread_mutex_lock(&s->lock);
        s->st.underflows++;
        pthread_mutex_unlock(&s->lock);
        log_warn("TX underflow during a %s, id: %u", x == s->beacon_buf ? "beacon" : "downlink",
                 id);
    }
    return TXSINK_OK;
}

static int apply_gain(SoapySDRDevice *dev, size_t ch, const char *gain, char *err,
                      size_t err_len)
{
    if (!gain || !*gain)
        return 0;
    if (!strchr(gain, '=')) {
        char *end;
        double g = strtod(gain, &end);
        if (end == gain || *end) {
            errbuf_set(err, err_len, "TX gain '%s': expected dB or NAME=dB,...", gain);
            return -1;
        }
        if (SoapySDRDevice_setGain(dev, SOAPY_SDR_TX, ch, g) != 0) {
            errbuf_set(err, err_len, "TX gain %g dB: %s", g, SoapySDRDevice_lastError());
            return -1;
        }
        return 0;
    }
    SoapySDRKwargs kw = SoapySDRKwargs_fromString(gain);
    int rc = 0;
    for (size_t i = 0; i < kw.size && rc == 0; i++) {
        char *end;
        double g = strtod(kw.vals[i], &end);
        if (end == kw.vals[i] || *end) {
            errbuf_set(err, err_len, "TX gain element %s: '%s' is not a number", kw.keys[i],
                       kw.vals[i]);
            rc = -1;
        } else if (SoapySDRDevice_setGainElement(dev, SOAPY_SDR_TX, ch, kw.keys[i], g) != 0) {
            errbuf_set(err, err_len, "TX gain element %s=%g: %s", kw.keys[i], g,
                       SoapySDRDevice_lastError());
            rc = -1;
        }
    }
    SoapySDRKwargs_clear(&kw);
    return rc;
}

/* c: the caller's configuration (its strings are used here only, not kept). */
static int open_soapy(txsink_t *s, const txsink_config_t *c, char *err, size_t err_len)
{
    const char *args = c->device_args ? c->device_args : "";
    s->dev = SoapySDRDevice_makeStrArgs(args);
    if (!s->dev) {
        errbuf_set(err, err_len, "SoapySDR device '%s' for downlink TX: %s", args,
                   SoapySDRDevice_lastError());
        return -1;
    }
    size_t nch = SoapySDRDevice_getNumChannels(s->dev, SOAPY_SDR_TX);
    if (nch == 0) {
        errbuf_set(err, err_len,
                   "SoapySDR device '%s' has no TX channel (receive-only radio such as an "
                   "RTL-SDR): downlink transmission disabled",
                   args);
        return -1;
    }
    if (c->channel >= nch) {
        errbuf_set(err, err_len, "SoapySDR device '%s': TX channel %zu requested, it has %zu", args,
                   c->channel, nch);
        return -1;
    }
    size_t ch = c->channel;
    if (c->settings && *c->settings) {
        SoapySDRKwargs kw = SoapySDRKwargs_fromString(c->settings);
        for (size_t i = 0; i < kw.size; i++)
            if (SoapySDRDevice_writeSetting(s->dev, kw.keys[i], kw.vals[i]) != 0)
                log_warn("TX setting %s=%s refused: %s", kw.keys[i], kw.vals[i],
                         SoapySDRDevice_lastError());
        SoapySDRKwargs_clear(&kw);
    }
    if (SoapySDRDevice_setSampleRate(s->dev, SOAPY_SDR_TX, ch, s->rate_sps) != 0) {
        errbuf_set(err, err_len, "TX sample rate %.0f S/s: %s", s->rate_sps,
                   SoapySDRDevice_lastError());
        return -1;
    }
    if (SoapySDRDevice_setFrequency(s->dev, SOAPY_SDR_TX, ch, s->center_hz, NULL) != 0) {
        errbuf_set(err, err_len, "TX frequency %.0f Hz: %s", s->center_hz,
                   SoapySDRDevice_lastError());
        return -1;
    }
    if (c->antenna && *c->antenna &&
        SoapySDRDevice_setAntenna(s->dev, SOAPY_SDR_TX, ch, c->antenna) != 0) {
        errbuf_set(err, err_len, "TX antenna '%s': %s", c->antenna, SoapySDRDevice_lastError());
        return -1;
    }
    if (apply_gain(s->dev, ch, c->gain, err, err_len) != 0)
        return -1;
    /* Modulate for what the radio really does. */
    double rate = SoapySDRDevice_getSampleRate(s->dev, SOAPY_SDR_TX, ch);
    double freq = SoapySDRDevice_getFrequency(s->dev, SOAPY_SDR_TX, ch);
    if (rate > 0)
        s->rate_sps = rate;
    if (freq > 0)
        s->center_hz = freq;
    s->hw_time = SoapySDRDevice_hasHardwareTime(s->dev, "");
    s->stream = SoapySDRDevice_setupStream(s->dev, SOAPY_SDR_TX, SOAPY_SDR_CF32, &ch, 1, NULL);
    if (!s->stream) {
        errbuf_set(err, err_len, "TX stream setup: %s", SoapySDRDevice_lastError());
        return -1;
    }
    if (SoapySDRDevice_activateStream(s->dev, s->stream, 0, 0, 0) != 0) {
        errbuf_set(err, err_len, "TX stream activation: %s", SoapySDRDevice_lastError());
        return -1;
    }
    log_info("Downlink transmitter open, device: %s, channel: %zu, rate_sps: %.0f, "
             "center_freq_hz: %.0f, timing: %s",
             args, ch, s->rate_sps, s->center_hz, s->hw_time ? "hardware time" : "host clock");
    return 0;
}

/* ---- transmit thread -------------------------------------------------------------------- */

static void result_init(txsink_result_t *res, const item_t *it)
{
    memset(res, 0, sizeof *res);
    res->beacon = it->beacon;
    if (it->beacon) {
        res->id = it->mb.id;
        res->t_start_s = it->mb.t_start_s;
    } else {
        res->id = it->dl.id;
        res->ep_id = it->dl.ep_id;
        res->mc = it->dl.mc;
        res->t_start_s = it->dl.t_start_s;
    }
}

static void process(txsink_t *s, const item_t *it, txsink_result_t *res)
{
    result_init(res, it);
    const float complex *x;
    long n;
    double first_t;
    if (it->beacon) {
        n = monarch_process(s->monarch, s->beacon_buf, s->beacon_len);
        if (n < 0) {
            res->status = TXSINK_ERR_ARG;
            errbuf_set(res->error, sizeof res->error, "beacon generator: %s",
                       monarch_strerror((int)n));
            return;
        }
        x = s->beacon_buf;
        first_t = it->mb.t_start_s;
    } else {
        const txsink_burst_t *b = &it->dl;
        int rc = gfskmod_set_offset(s->mod, b->tx_freq_hz - s->center_hz);
        n = rc == 0 ? gfskmod_process(s->mod, b->frame, DL_FRAME_BITS, s->buf, s->buf_len) : rc;
        if (n < 0) {
            res->status = n == GFSKMOD_ERR_OFFSET ? TXSINK_ERR_OFFSET : TXSINK_ERR_ARG;
            errbuf_set(res->error, sizeof res->error, "modulator: %s", gfskmod_strerror((int)n));
            return;
        }
        x = s->buf;
        first_t = b->t_start_s - (double)s->data_offset_samples / s->rate_sps;
    }
    res->status = s->cfg.kind == TXSINK_FILE ? write_file(s, it, x, (size_t)n, res)
                                             : write_soapy(s, x, (size_t)n, first_t, res->id, res);
    if (res->status != 0 && !res->error[0])
        errbuf_set(res->error, sizeof res->error, "%s", txsink_strerror(res->status));
}

static void *tx_thread(void *arg)
{
    txsink_t *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->qcount == 0 && !s->stop)
            pthread_cond_wait(&s->cond, &s->lock);
        if (s->qcount == 0)
            break; /* stopped and empty */
        item_t it = s->queue[s->qhead];
        s->qhead = (s->qhead + 1) % s->qlen;
        s->qcount--;
        s->busy = true;
        bool stopped = s->stop && s->cfg.kind == TXSINK_SOAPY;
        pthread_mutex_unlock(&s->lock);

        txsink_result_t res;
        if (stopped) {
            result_init(&res, &it);
            res.status = TXSINK_ERR_STOPPED;
            errbuf_set(res.error, sizeof res.error, "transmitter stopped before the burst was due");
        } else {
            process(s, &it, &res);
        }
        if (res.beacon && res.status == 0)
            log_info("Monarch beacon transmitted, id: %u, t_start_s: %.6f%s%s", res.id,
                     res.t_start_s, res.path[0] ? ", file: " : "", res.path);
        else if (res.beacon)
            log_warn("Monarch beacon failed, id: %u, reason: %s", res.id, res.error);
        else if (res.status == 0)
            log_info("Downlink transmitted, id: %u, ep_id: %08X, mc: %u%s%s", res.id, res.ep_id,
                     res.mc, res.path[0] ? ", file: " : "", res.path);
        else
            log_warn("Downlink burst failed, id: %u, ep_id: %08X, mc: %u, reason: %s", res.id,
                     res.ep_id, res.mc, res.error);
        if (s->cfg.on_result)
            s->cfg.on_result(&res, s->cfg.user);

        pthread_mutex_lock(&s->lock);
        s->busy = false;
        if (res.status == 0)
            s->st.sent++;
        else
            s->st.failed++;
        if (res.status == TXSINK_ERR_LATE)
            s->st.late++;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* ---- public API ------------------------------------------------------------------------- */

txsink_t *txsink_create(const txsink_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg || (cfg->kind != TXSINK_FILE && cfg->kind != TXSINK_SOAPY)) {
        errbuf_set(err, err_len, "TX sink: %s",
                   cfg ? "kind must be file or soapy" : "no configuration");
        return NULL;
    }
    txsink_config_t c = *cfg;
    if (c.rate_sps == 0 && c.kind == TXSINK_FILE)
        c.rate_sps = TXSINK_FILE_DEFAULT_RATE_SPS;
    if (c.amplitude == 0)
        c.amplitude = DEFAULT_AMPLITUDE;
    if (c.queue_len == 0)
        c.queue_len = DEFAULT_QUEUE_LEN;
    if (c.host_lead_s == 0)
        c.host_lead_s = DEFAULT_HOST_LEAD_S;
    if (c.late_limit_s == 0)
        c.late_limit_s = DEFAULT_LATE_LIMIT_S;
    const char *bad = NULL;
    if (!(c.rate_sps >= 4800 && c.rate_sps <= 100e6))
        bad = "rate_sps must be 4800 .. 100e6 S/s";
    else if (!(c.center_freq_hz > 0 && c.center_freq_hz < 10e9))
        bad = "center_freq_hz must be set (e.g. the RC's DL centre)";
    else if (!(c.amplitude > 0 && c.amplitude <= 1))
        bad = "amplitude must be in (0, 1]";
    else if (c.queue_len > 4096)
        bad = "queue_len must be at most 4096";
    else if (!(c.host_lead_s > 0 && c.host_lead_s < 5) || !(c.late_limit_s > 0))
        bad = "host_lead_s must be in (0, 5) s and late_limit_s > 0";
    else if (c.kind == TXSINK_FILE && (!c.dir || !*c.dir))
        bad = "file sink: dir missing";
    else if (c.beacon_df1_hz != 0 &&
             (!monarch_df_valid(c.beacon_df1_hz) || !monarch_df_valid(c.beacon_df2_hz)))
        bad = "beacon dF1 and dF2 must each be 1024, 1260.3 or 1489.4 Hz";
    else if (c.beacon_df1_hz != 0 && !(c.beacon_tx_freq_hz > 0 && c.beacon_tx_freq_hz < 10e9))
        bad = "beacon frequency missing";
    if (bad) {
        errbuf_set(err, err_len, "TX sink: %s", bad);
        return NULL;
    }
    if (c.kind == TXSINK_FILE) {
        struct stat sb;
        const char *why = NULL;
        if (stat(c.dir, &sb) != 0 || access(c.dir, W_OK | X_OK) != 0)
            why = strerror(errno);
        else if (!S_ISDIR(sb.st_mode))
            why = "not a directory";
        else if (strlen(c.dir) >= 700)
            why = "name too long";
        if (why) {
            errbuf_set(err, err_len, "TX file sink: directory '%s': %s", c.dir, why);
            return NULL;
        }
    }
    txsink_t *s = calloc(1, sizeof *s);
    if (!s) {
        errbuf_set(err, err_len, "TX sink: out of memory");
        return NULL;
    }
    s->cfg = c;
    /* The caller's strings are not kept: the directory is copied, the radio strings are
     * used while opening only. */
    s->cfg.dir = s->cfg.device_args = s->cfg.antenna = s->cfg.gain = s->cfg.settings = NULL;
    if (c.kind == TXSINK_FILE)
        snprintf(s->dir, sizeof s->dir, "%s", c.dir);
    s->rate_sps = c.rate_sps;
    s->center_hz = c.center_freq_hz;
    s->qlen = c.queue_len;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        errbuf_set(err, err_len, "TX sink: mutex");
        return NULL;
    }
    if (pthread_cond_init(&s->cond, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        errbuf_set(err, err_len, "TX sink: condition variable");
        return NULL;
    }
    if (c.kind == TXSINK_SOAPY && open_soapy(s, &c, err, err_len) != 0)
        goto fail;
    gfskmod_config_t mc = {.rate_sps = s->rate_sps, .offset_hz = 0, .bt = c.bt,
                           .amplitude = c.amplitude, .max_bits = DL_FRAME_BITS};
    s->mod = gfskmod_create(&mc);
    if (!s->mod) {
        errbuf_set(err, err_len, "TX sink: GFSK modulator refused rate %.0f S/s / BT %g",
                   s->rate_sps, (double)c.bt);
        goto fail;
    }
    s->buf_len = gfskmod_burst_samples(s->mod, DL_FRAME_BITS);
    s->data_offset_samples = (size_t)llround(gfskmod_data_offset_s(s->mod) * s->rate_sps);
    if (c.kind == TXSINK_FILE)
        s->file_pad = (size_t)llround(FILE_PAD_SYMBOLS * s->rate_sps / GFSK_BAUD);
    s->buf = malloc(s->buf_len * sizeof *s->buf);
    s->queue = calloc(s->qlen, sizeof *s->queue);
    if (c.beacon_df1_hz != 0) {
        double off = c.beacon_tx_freq_hz - s->center_hz;
        double half = 6.0 * fmax(c.beacon_df1_hz, c.beacon_df2_hz) + 1000.0;
        if (fabs(off) + half > s->rate_sps / 2) {
            errbuf_set(err, err_len,
                       "TX sink: Monarch beacon at %.1f Hz (carriers to +/- %.0f Hz) is outside "
                       "the transmitter's band %.1f Hz +/- %.0f Hz",
                       c.beacon_tx_freq_hz, half, s->center_hz, s->rate_sps / 2);
            goto fail;
        }
        monarch_config_t bc = {.rate_sps = s->rate_sps, .offset_hz = off,
                               .df1_hz = c.beacon_df1_hz, .df2_hz = c.beacon_df2_hz,
                               .amplitude = c.amplitude};
        s->monarch = monarch_create(&bc);
        if (!s->monarch) {
            errbuf_set(err, err_len, "TX sink: Monarch beacon generator refused its settings");
            goto fail;
        }
        s->beacon_len = monarch_beacon_samples(s->monarch);
        s->beacon_buf = malloc(s->beacon_len * sizeof *s->beacon_buf);
        if (!s->beacon_buf) {
            errbuf_set(err, err_len, "TX sink: out of memory");
            goto fail;
        }
    }
    if (!s->buf || !s->queue) {
        errbuf_set(err, err_len, "TX sink: out of memory");
        goto fail;
    }
    if (pthread_create(&s->thread, NULL, tx_thread, s) != 0) {
        errbuf_set(err, err_len, "TX sink: cannot start the transmit thread");
        goto fail;
    }
    s->thread_started = true;
    return s;
fail:
    txsink_destroy(s);
    return NULL;
}

void txsink_set_clock(txsink_t *s, double stream_t_s, double unix_s)
{
    if (!s || !isfinite(stream_t_s) || !isfinite(unix_s))
        return;
    pthread_mutex_lock(&s->lock);
    s->have_clock = true;
    s->clock_t_s = stream_t_s;
    s->clock_unix_s = unix_s;
    pthread_mutex_unlock(&s->lock);
}

/* Appends a burst to the queue (never blocks). */
static int enqueue(txsink_t *s, const item_t *it)
{
    pthread_mutex_lock(&s->lock);
    int rc = TXSINK_OK;
    if (s->stop)
        rc = TXSINK_ERR_STOPPED;
    else if (s->qcount == s->qlen)
        rc = TXSINK_ERR_FULL;
    if (rc == TXSINK_OK) {
        s->queue[(s->qhead + s->qcount) % s->qlen] = *it;
        s->qcount++;
        s->st.submitted++;
        pthread_cond_broadcast(&s->cond);
    } else {
        s->st.rejected++;
    }
    pthread_mutex_unlock(&s->lock);
    if (rc == TXSINK_ERR_FULL)
        log_warn("%s refused, id: %u, reason: transmit queue full (%zu)",
                 it->beacon ? "Monarch beacon" : "Downlink burst",
                 it->beacon ? it->mb.id : it->dl.id, s->qlen);
    return rc;
}

int txsink_submit(txsink_t *s, const txsink_burst_t *b)
{
    if (!s || !b || !isfinite(b->t_start_s) || !isfinite(b->tx_freq_hz))
        return TXSINK_ERR_ARG;
    if (fabs(b->tx_freq_hz - s->center_hz) > txsink_max_offset_hz(s)) {
        log_warn("Downlink burst refused, id: %u, tx_freq_hz: %.1f, reason: more than %.0f Hz "
                 "from the TX centre %.0f Hz",
                 b->id, b->tx_freq_hz, txsink_max_offset_hz(s), s->center_hz);
        pthread_mutex_lock(&s->lock);
        s->st.rejected++;
        pthread_mutex_unlock(&s->lock);
        return TXSINK_ERR_OFFSET;
    }
    item_t it;
    memset(&it, 0, sizeof it);
    it.dl = *b;
    return enqueue(s, &it);
}

int txsink_submit_beacon(txsink_t *s, const txsink_beacon_t *b)
{
    if (!s || !b || !s->monarch || !isfinite(b->t_start_s) || !isfinite(b->freq_hz))
        return TXSINK_ERR_ARG;
    item_t it;
    memset(&it, 0, sizeof it);
    it.beacon = true;
    it.mb = *b;
    return enqueue(s, &it);
}

int txsink_submit_event(txsink_t *s, const dlsched_event_t *ev)
{
    if (!s || !ev || ev->type != DLSCHED_EV_SCHEDULED || !ev->has_frame)
        return TXSINK_ERR_ARG;
    txsink_burst_t b;
    memset(&b, 0, sizeof b);
    b.id = ev->id;
    b.ep_id = ev->ep_id;
    b.mc = ev->mc;
    memcpy(b.payload, ev->payload, sizeof b.payload);
    memcpy(b.dl_auth, ev->dl_auth, sizeof b.dl_auth);
    memcpy(b.frame, ev->frame, sizeof b.frame);
    memcpy(b.phy, ev->phy, sizeof b.phy);
    b.freq_hz = ev->freq_hz;
    b.tx_freq_hz = ev->tx_freq_hz;
    b.t_start_s = ev->t_start_s;
    return txsink_submit(s, &b);
}

int txsink_drain(txsink_t *s, int timeout_ms)
{
    if (!s)
        return TXSINK_ERR_ARG;
    double until = timeutil_unix_s() + timeout_ms / 1e3;
    pthread_mutex_lock(&s->lock);
    while ((s->qcount > 0 || s->busy) && s->thread_started) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&s->cond, &s->lock);
            continue;
        }
        if (timeutil_unix_s() >= until)
            break;
        struct timespec ts;
        ts.tv_sec = (time_t)floor(until);
        ts.tv_nsec = (long)((until - floor(until)) * 1e9);
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    }
    int rc = (s->qcount > 0 || s->busy) ? TXSINK_ERR_FULL : TXSINK_OK;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void txsink_get_stats(txsink_t *s, txsink_stats_t *out)
{
    if (!s || !out)
        return;
    pthread_mutex_lock(&s->lock);
    *out = s->st;
    pthread_mutex_unlock(&s->lock);
}

void txsink_destroy(txsink_t *s)
{
    if (!s)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    if (s->dev) {
        if (s->stream) {
            SoapySDRDevice_deactivateStream(s->dev, s->stream, 0, 0);
            SoapySDRDevice_closeStream(s->dev, s->stream);
        }
        SoapySDRDevice_unmake(s->dev);
    }
    gfskmod_destroy(s->mod);
    monarch_destroy(s->monarch);
    free(s->beacon_buf);
    free(s->buf);
    free(s->queue);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
