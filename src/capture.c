/* capture: SoapySDR / IQ file capture thread feeding a lock-free SPSC block ring.
 * Licence: MIT. */
#define _GNU_SOURCE /* pthread_timedjoin_np */

#include "capture.h"

#include <SoapySDR/Device.h>
#include <SoapySDR/Errors.h>
#include <SoapySDR/Formats.h>
#include <SoapySDR/Logger.h>
#include <SoapySDR/Types.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "timeutil.h"

#define DEFAULT_BLOCK_SAMPLES 65536
#define DEFAULT_N_BLOCKS 16
#define DEFAULT_WATCHDOG_S 5.0
/* readStream timeout: bounds how long stop and the watchdog wait for a silent radio. */
#define READ_TIMEOUT_US 100000L
/* Sleeps and waits are cut into slices this long so that the stop flag is seen. */
#define WAIT_SLICE_S 0.1
#define REOPEN_BACKOFF_FIRST_S 0.5
#define REOPEN_BACKOFF_MAX_S 30.0
/* The backoff (and the count of attempts in a row) starts afresh only after samples have
 * flowed this long: a radio that opens and fails at once must not be hammered every
 * REOPEN_BACKOFF_FIRST_S forever. */
#define REOPEN_HEALTHY_S 10.0
#define STOP_JOIN_WARN_S 2.0

typedef struct {
    _Atomic uint64_t samples_in, samples_dropped, samples_lost, blocks, discontinuities,
        overflows, timeouts, read_errors, watchdog_trips, reopens;
} capture_counters_t;

struct capture {
    /* configuration (strings owned) */
    char *file_path, *device_args, *gain, *antenna, *settings;
    iq_format_t file_format;
    bool realtime;
    double speed; /* realtime pacing factor (> 0) */
    double req_rate_sps, req_center_freq_hz, ppm, bandwidth_hz, watchdog_s;
    int max_reopen;
    double reopen_backoff_s;  /* capture thread: the next reopen's wait */
    int reopen_streak;        /* reopens since the radio last ran REOPEN_HEALTHY_S */
    double reopened_mono_s;   /* when the radio was last (re)opened */
    bool drop_when_full;
    size_t block_samples, n_blocks;

    /* pool and ring */
    capture_block_t *blocks;
    float complex *pool;
    _Atomic uint64_t write_idx;   /* producer: next slot to publish */
    _Atomic uint64_t release_idx; /* consumer: next slot to release */
    uint64_t read_idx;            /* consumer only: next slot to hand out */
    bool sync_inited;             /* mu and the condition variables exist */
    pthread_mutex_t mu;           /* only for sleeping on the conditions below */
    pthread_cond_t cv_data;       /* ring became non-empty, or ended/stopped */
    pthread_cond_t cv_space;      /* a block was released, or stopped */
    atomic_bool stop;
    _Atomic int end_code; /* 0 while producing; then CAPTURE_END / ERR_DEVICE / ERR_SOURCE */
    pthread_t thread;
    bool started, joined;
    char errmsg[512];

    /* source */
    iqfile_t *file;
    float complex *scratch; /* file source: where dropped blocks are read */
    SoapySDRDevice *dev;
    SoapySDRStream *stream;
    iq_format_t native_fmt; /* stream format requested from the driver */
    float scale;            /* multiplies decoded samples when full scale is unusual */
    double full_scale;      /* the driver's full scale of native_fmt (0: unknown) */
    capture_tap_fn tap;     /* raw copy of every radio read (capture_set_tap), or NULL */
    void *tap_user;
    unsigned adc_bits;      /* source resolution (capture_adc_bits) */
    size_t mtu;
    void *raw;
    size_t raw_bytes;
    double rate_sps, center_freq_hz;

    /* producer state */
    uint64_t next_idx;      /* index of the next sample the source produces */
    uint64_t pending_drop;  /* samples missing before the next block */
    uint32_t pending_flags; /* flags for the next block */

    capture_counters_t st;
};

/* Converter resolution a sample format carries: 8 for cu8/cs8, 16 for cs16; 0 for
 * floats (no quantisation to speak of). */
static unsigned format_bits(iq_format_t fmt)
{
    switch (fmt) {
    case IQ_FORMAT_CU8:
    case IQ_FORMAT_CS8:
        return 8;
    case IQ_FORMAT_CS16:
    case IQ_FORMAT_WAV16:
        return 16;
    default:
        return 0;
    }
}

static void count(_Atomic uint64_t *ctr, uint64_t n)
{
    atomic_fetch_add_explicit(ctr, n, memory_order_relaxed);
}

const char *capture_strerror(int code)
{
    switch (code) {
    case CAPTURE_OK:
        return "ok";
    case CAPTURE_ERR_TIMEOUT:
        return "timeout";
    case CAPTURE_END:
        return "end of input";
    case CAPTURE_ERR_STOPPED:
        return "capture stopped";
    case CAPTURE_ERR_DEVICE:
        return "radio failed";
    case CAPTURE_ERR_SOURCE:
        return "IQ file read error";
    case CAPTURE_ERR_ARG:
        return "invalid argument";
    case CAPTURE_ERR_NOMEM:
        return "out of memory";
    default:
        return "unknown capture error";
    }
}

/* ---- clocks and interruptible sleeps -------------------------------------------------- */

static bool stopping(const capture_t *c)
{
    return atomic_load_explicit(&c->stop, memory_order_acquire);
}

/* Sleeps until the monotonic time t_s or until stop; returns false when stopping. */
static bool sleep_until(capture_t *c, double t_s)
{
    for (;;) {
        if (stopping(c))
            return false;
        double left = t_s - timeutil_mono_s();
        if (left <= 0.0)
            return true;
        if (left > WAIT_SLICE_S)
            left = WAIT_SLICE_S;
        struct timespec ts = {(time_t)left, (long)((left - floor(left)) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static void abs_deadline(struct timespec *ts, double from_now_s)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    double ns = (double)ts->tv_nsec + from_now_s * 1e9;
    ts->tv_sec += (time_t)(ns / 1e9);
    ts->tv_nsec = (long)fmod(ns, 1e9);
}

/* ---- ring ----------------------------------------------------------------------------- */

static void wake(capture_t *c, pthread_cond_t *cv)
{
    pthread_mutex_lock(&c->mu);
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(&c->mu);
}

static bool ring_has_space(capture_t *c)
{
    uint64_t w = atomic_load_explicit(&c->write_idx, memory_order_relaxed);
    uint64_t r = atomic_load_explicit(&c->release_idx, memory_order_acquire);
    return w - r < c->n_blocks;
}

/* The slot the producer fills next, or NULL when every block is held (after waiting for
 * one when wait is set; NULL then means stop). */
static capture_block_t *acquire_block(capture_t *c, bool wait)
{
    if (!ring_has_space(c)) {
        if (!wait)
            return NULL;
        pthread_mutex_lock(&c->mu);
        while (!ring_has_space(c) && !stopping(c)) {
            struct timespec dl;
            abs_deadline(&dl, WAIT_SLICE_S);
            pthread_cond_timedwait(&c->cv_space, &c->mu, &dl);
        }
        pthread_mutex_unlock(&c->mu);
        if (stopping(c))
            return NULL;
    }
    uint64_t w = atomic_load_explicit(&c->write_idx, memory_order_relaxed);
    capture_block_t *b = &c->blocks[w % c->n_blocks];
    b->n = 0;
    return b;
}

/* Fills in the block's time base from the producer state and hands it to the consumer. */
static void publish_block(capture_t *c, capture_block_t *b)
{
    if (b->flags & CAPTURE_FLAG_DISCONTINUITY)
        count(&c->st.discontinuities, 1);
    count(&c->st.blocks, 1);
    count(&c->st.samples_in, b->n);
    atomic_fetch_add_explicit(&c->write_idx, 1, memory_order_release);
    wake(c, &c->cv_data);
}

/* Stamps a block that is about to receive its first samples. */
static void start_block(capture_t *c, capture_block_t *b, double host_time_s)
{
    b->first_sample_idx = c->next_idx;
    b->rate_sps = c->rate_sps;
    b->center_freq_hz = c->center_freq_hz;
    b->host_time_s = host_time_s;
    b->flags = c->pending_flags;
    b->dropped = c->pending_drop;
    c->pending_flags = 0;
    c->pending_drop = 0;
}

/* Records samples that were produced but will never be delivered. */
static void note_missing(capture_t *c, uint64_t n, uint32_t why)
{
    c->pending_drop += n;
    c->pending_flags |= CAPTURE_FLAG_DISCONTINUITY | why;
    c->next_idx += n;
}

static void finish(capture_t *c, int code)
{
    atomic_store_explicit(&c->end_code, code, memory_order_release);
    wake(c, &c->cv_data);
}

int capture_next_block(capture_t *c, const capture_block_t **blk, int timeout_ms)
{
    if (!c || !blk)
        return CAPTURE_ERR_ARG;
    *blk = NULL;
    struct timespec dl;
    if (timeout_ms >= 0)
        abs_deadline(&dl, timeout_ms / 1000.0);
    bool locked = false;
    int rc;
    for (;;) {
        /* end_code first: it is stored after the last publish, so a set code with an empty
         * ring really means the end. */
        int end = atomic_load_explicit(&c->end_code, memory_order_acquire);
        if (c->read_idx < atomic_load_explicit(&c->write_idx, memory_order_acquire)) {
            *blk = &c->blocks[c->read_idx % c->n_blocks];
            c->read_idx++;
            rc = CAPTURE_OK;
            break;
        }
        if (stopping(c)) {
            rc = CAPTURE_ERR_STOPPED;
            break;
        }
        if (end != 0) {
            rc = end;
            break;
        }
        if (timeout_ms == 0) {
            rc = CAPTURE_ERR_TIMEOUT;
            break;
        }
        /* Re-check under the mutex, then sleep: the producer signals under it too, so
         * no wake-up is lost between the check and the wait. */
        if (!locked) {
            pthread_mutex_lock(&c->mu);
            locked = true;
            continue;
        }
        int w;
        if (timeout_ms < 0) {
            struct timespec slice;
            abs_deadline(&slice, 1.0);
            w = pthread_cond_timedwait(&c->cv_data, &c->mu, &slice);
            (void)w;
        } else {
            w = pthread_cond_timedwait(&c->cv_data, &c->mu, &dl);
            if (w == ETIMEDOUT && c->read_idx >= atomic_load(&c->write_idx) && !stopping(c) &&
                atomic_load(&c->end_code) == 0) {
                rc = CAPTURE_ERR_TIMEOUT;
                break;
            }
        }
    }
    if (locked)
        pthread_mutex_unlock(&c->mu);
    return rc;
}

int capture_release_block(capture_t *c, const capture_block_t *blk)
{
    if (!c || !blk)
        return CAPTURE_ERR_ARG;
    uint64_t r = atomic_load_explicit(&c->release_idx, memory_order_relaxed);
    if (r >= c->read_idx || blk != &c->blocks[r % c->n_blocks]) {
        log_error("Capture block released out of order or twice, expected_idx: %llu",
                  (unsigned long long)r);
        return CAPTURE_ERR_ARG;
    }
    atomic_store_explicit(&c->release_idx, r + 1, memory_order_release);
    wake(c, &c->cv_space);
    return CAPTURE_OK;
}

/* ---- file source ---------------------------------------------------------------------- */

static void *file_thread(void *arg)
{
    capture_t *c = arg;
    const double t0_mono = timeutil_mono_s(), t0_utc = timeutil_unix_s();
    int end = CAPTURE_END;
    while (!stopping(c)) {
        capture_block_t *b = acquire_block(c, !c->drop_when_full);
        if (!b && stopping(c))
            break;
        float complex *dst = b ? b->samples : c->scratch;
        ssize_t n = iqfile_read(c->file, dst, c->block_samples);
        if (n < 0) {
            snprintf(c->errmsg, sizeof c->errmsg, "%s", iqfile_error(c->file));
            log_error("Replay stopped, error: %s", c->errmsg);
            end = CAPTURE_ERR_SOURCE;
            break;
        }
        if (n == 0)
            break;
        /* Paced: a block is handed over when its last sample would have been received. */
        if (c->realtime && !sleep_until(c, t0_mono + (double)(c->next_idx + (uint64_t)n) /
                                                         (c->rate_sps * c->speed)))
            break;
        if (!b) {
            count(&c->st.samples_dropped, (uint64_t)n);
            note_missing(c, (uint64_t)n, CAPTURE_FLAG_RING_FULL);
            continue;
        }
        start_block(c, b, t0_utc + (double)c->next_idx / c->rate_sps);
        b->n = (size_t)n;
        c->next_idx += (uint64_t)n;
        publish_block(c, b);
    }
    if (!stopping(c) && end == CAPTURE_END)
        log_info("Replay finished, samples: %llu, seconds: %.3f",
                 (unsigned long long)c->next_idx, (double)c->next_idx / c->rate_sps);
    finish(c, end);
    return NULL;
}

static int file_open(capture_t *c)
{
    iqfile_params_t p = {.format = c->file_format,
                         .rate_sps = c->req_rate_sps,
                         .center_freq_hz = c->req_center_freq_hz};
    char err[512];
    if (!c->file) /* not opened by the caller (capture_config_t.file) */
        c->file = iqfile_open_read(c->file_path, &p, err, sizeof err);
    if (!c->file) {
        log_error("Cannot open IQ file, error: %s", err);
        return -1;
    }
    c->rate_sps = iqfile_rate(c->file);
    c->center_freq_hz = iqfile_center_freq(c->file);
    c->adc_bits = format_bits(iqfile_format(c->file));
    if (!(c->rate_sps > 0.0)) {
        log_error("Sample rate of the recording is unknown (no metadata, no rate in the file "
                  "name such as x_868.13M_1024k.cu8); give it, file: %s",
                  c->file_path);
        return -1;
    }
    int64_t len = iqfile_length(c->file);
    log_info("Replaying IQ file, path: %s, format: %s, rate_sps: %.0f, rate_from: %s, "
             "center_freq_hz: %.0f, center_freq_from: %s, samples: %lld, realtime: %s",
             c->file_path, iq_format_name(iqfile_format(c->file)), c->rate_sps,
             iq_source_name(iqfile_rate_source(c->file)), c->center_freq_hz,
             iq_source_name(iqfile_center_freq_source(c->file)), (long long)len,
             c->realtime ? "yes" : "no");
    if (c->drop_when_full) {
        c->scratch = malloc(c->block_samples * sizeof *c->scratch);
        if (!c->scratch) {
            log_error("Out of memory for the capture scratch block");
            return -1;
        }
    }
    return 0;
}

/* ---- SoapySDR source ------------------------------------------------------------------ */

static void soapy_log_bridge(const SoapySDRLogLevel level, const char *message)
{
    /* SoapySDR's levels are syslog's, like ours (include/log.h). */
    log_msg((log_level_t)level, "SoapySDR: %s", message);
}

static void format_ranges(char *out, size_t len, const SoapySDRRange *r, size_t n, double unit)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < len; i++) {
        int k;
        if (r[i].minimum == r[i].maximum)
            k = snprintf(out + used, len - used, "%s%g", i ? ", " : "", r[i].minimum / unit);
        else
            k = snprintf(out + used, len - used, "%s%g..%g", i ? ", " : "",
                         r[i].minimum / unit, r[i].maximum / unit);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

/* The "users cannot guess valid names" log: driver, antennas, gains, rates, format. */
static void soapy_show_info(capture_t *c)
{
    SoapySDRDevice *d = c->dev;
    char *driver = SoapySDRDevice_getDriverKey(d);
    char *hw = SoapySDRDevice_getHardwareKey(d);
    log_info("Radio opened, args: %s, driver: %s, hardware: %s", c->device_args,
             driver ? driver : "?", hw ? hw : "?");
    SoapySDR_free(driver);
    SoapySDR_free(hw);

    char line[768];
    size_t n = 0, used = 0;
    char **ant = SoapySDRDevice_listAntennas(d, SOAPY_SDR_RX, 0, &n);
    line[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < sizeof line; i++)
        used += (size_t)snprintf(line + used, sizeof line - used, "%s%s", i ? ", " : "",
                                 ant[i]);
    SoapySDRStrings_clear(&ant, n);
    log_info("Radio antennas: %s", n ? line : "(none listed)");

    SoapySDRRange g = SoapySDRDevice_getGainRange(d, SOAPY_SDR_RX, 0);
    char **gains = SoapySDRDevice_listGains(d, SOAPY_SDR_RX, 0, &n);
    used = 0;
    line[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < sizeof line; i++) {
        SoapySDRRange r = SoapySDRDevice_getGainElementRange(d, SOAPY_SDR_RX, 0, gains[i]);
        used += (size_t)snprintf(line + used, sizeof line - used, "%s%s %g..%g dB", i ? ", " : "",
                                 gains[i], r.minimum, r.maximum);
    }
    SoapySDRStrings_clear(&gains, n);
    log_info("Radio gains, overall_db: %g..%g, agc: %s, elements: %s", g.minimum, g.maximum,
             SoapySDRDevice_hasGainMode(d, SOAPY_SDR_RX, 0) ? "yes" : "no",
             used ? line : "(none)");

    SoapySDRRange *rr = SoapySDRDevice_getSampleRateRange(d, SOAPY_SDR_RX, 0, &n);
    format_ranges(line, sizeof line, rr, n, 1e6);
    SoapySDR_free(rr);
    log_info("Radio sample rates, msps: %s", n ? line : "(none listed)");
    SoapySDRRange *fr = SoapySDRDevice_getFrequencyRange(d, SOAPY_SDR_RX, 0, &n);
    format_ranges(line, sizeof line, fr, n, 1e6);
    SoapySDR_free(fr);
    log_info("Radio frequency range, mhz: %s", n ? line : "(none listed)");
}

static int soapy_check(int rc, const char *what, const char *value)
{
    if (rc != 0)
        log_error("Radio rejected a setting, setting: %s, value: %s, error: %s", what, value,
                  SoapySDR_errToStr(rc));
    return rc;
}

/* Gain: "auto" (AGC), an overall dB value, or "NAME=dB,NAME=dB" per element. */
static int soapy_set_gain(capture_t *c)
{
    SoapySDRDevice *d = c->dev;
    const char *g = c->gain;
    if (!g || !*g)
        return 0;
    bool has_agc = SoapySDRDevice_hasGainMode(d, SOAPY_SDR_RX, 0);
    if (strcasecmp(g, "auto") == 0 || strcasecmp(g, "agc") == 0) {
        if (!has_agc) {
            log_warn("Radio has no automatic gain control; driver default gain kept");
            return 0;
        }
        return soapy_check(SoapySDRDevice_setGainMode(d, SOAPY_SDR_RX, 0, true), "gain", g);
    }
    if (has_agc && soapy_check(SoapySDRDevice_setGainMode(d, SOAPY_SDR_RX, 0, false),
                               "gain mode", "manual") != 0)
        return -1;
    if (!strchr(g, '=')) {
        char *end;
        double db = strtod(g, &end);
        if (end == g || *end != '\0' || !isfinite(db)) {
            log_error("Invalid gain, value: %s (use auto, dB like 40, or LNA=32,VGA=20)", g);
            return -1;
        }
        SoapySDRRange r = SoapySDRDevice_getGainRange(d, SOAPY_SDR_RX, 0);
        if (db < r.minimum || db > r.maximum)
            log_warn("Gain outside the radio's range, gain_db: %g, range_db: %g..%g", db,
                     r.minimum, r.maximum);
        return soapy_check(SoapySDRDevice_setGain(d, SOAPY_SDR_RX, 0, db), "gain", g);
    }
    SoapySDRKwargs kw = SoapySDRKwargs_fromString(g);
    size_t n = 0;
    char **names = SoapySDRDevice_listGains(d, SOAPY_SDR_RX, 0, &n);
    int rc = 0;
    for (size_t i = 0; i < kw.size && rc == 0; i++) {
        bool known = false;
        for (size_t j = 0; j < n; j++)
            known |= strcmp(names[j], kw.keys[i]) == 0;
        char *end;
        double db = strtod(kw.vals[i], &end);
        if (!known) {
            log_error("Unknown gain element, name: %s (see \"Radio gains\" above)", kw.keys[i]);
            rc = -1;
        } else if (end == kw.vals[i] || *end != '\0' || !isfinite(db)) {
            log_error("Invalid gain value, element: %s, value: %s", kw.keys[i], kw.vals[i]);
            rc = -1;
        } else {
            rc = soapy_check(SoapySDRDevice_setGainElement(d, SOAPY_SDR_RX, 0, kw.keys[i], db),
                             kw.keys[i], kw.vals[i]);
        }
    }
    SoapySDRStrings_clear(&names, n);
    SoapySDRKwargs_clear(&kw);
    return rc;
}

static int soapy_write_settings(capture_t *c)
{
    if (!c->settings || !*c->settings)
        return 0;
    SoapySDRKwargs kw = SoapySDRKwargs_fromString(c->settings);
    size_t n = 0;
    SoapySDRArgInfo *info = SoapySDRDevice_getSettingInfo(c->dev, &n);
    int rc = 0;
    for (size_t i = 0; i < kw.size && rc == 0; i++) {
        bool known = false;
        for (size_t j = 0; j < n; j++)
            known |= info[j].key && strcmp(info[j].key, kw.keys[i]) == 0;
        if (!known)
            log_warn("Radio does not list this setting; writing it anyway, key: %s",
                     kw.keys[i]);
        rc = soapy_check(SoapySDRDevice_writeSetting(c->dev, kw.keys[i], kw.vals[i]),
                         kw.keys[i], kw.vals[i]);
        if (rc == 0)
            log_info("Radio setting written, key: %s, value: %s", kw.keys[i], kw.vals[i]);
    }
    SoapySDRArgInfoList_clear(info, n);
    SoapySDRKwargs_clear(&kw);
    return rc;
}

static iq_format_t soapy_format(const char *name)
{
    if (!name)
        return IQ_FORMAT_UNKNOWN;
    if (strcmp(name, SOAPY_SDR_CS16) == 0)
        return IQ_FORMAT_CS16;
    if (strcmp(name, SOAPY_SDR_CS8) == 0)
        return IQ_FORMAT_CS8;
    if (strcmp(name, SOAPY_SDR_CU8) == 0)
        return IQ_FORMAT_CU8;
    if (strcmp(name, SOAPY_SDR_CF32) == 0)
        return IQ_FORMAT_CF32;
    return IQ_FORMAT_UNKNOWN;
}

static const char *soapy_format_name(iq_format_t f)
{
    switch (f) {
    case IQ_FORMAT_CS16:
        return SOAPY_SDR_CS16;
    case IQ_FORMAT_CS8:
        return SOAPY_SDR_CS8;
    case IQ_FORMAT_CU8:
        return SOAPY_SDR_CU8;
    default:
        return SOAPY_SDR_CF32;
    }
}

static void soapy_close(capture_t *c)
{
    if (c->stream) {
        SoapySDRDevice_deactivateStream(c->dev, c->stream, 0, 0);
        SoapySDRDevice_closeStream(c->dev, c->stream);
        c->stream = NULL;
    }
    if (c->dev) {
        SoapySDRDevice_unmake(c->dev);
        c->dev = NULL;
    }
}

/* Makes, configures and sets up the stream (not activated). verbose: the full device log
 * (first open); reopens log one line. */
static int soapy_open(capture_t *c, bool verbose)
{
    c->dev = SoapySDRDevice_makeStrArgs(c->device_args);
    if (!c->dev) {
        log_error("Cannot open radio, args: %s, error: %s", c->device_args,
                  SoapySDRDevice_lastError());
        return -1;
    }
    SoapySDRDevice *d = c->dev;
    if (verbose)
        soapy_show_info(c);
    char v[64];
    snprintf(v, sizeof v, "%.0f", c->req_rate_sps);
    if (soapy_check(SoapySDRDevice_setSampleRate(d, SOAPY_SDR_RX, 0, c->req_rate_sps),
                    "rate_sps", v) != 0)
        goto fail;
    snprintf(v, sizeof v, "%.0f", c->req_center_freq_hz);
    if (soapy_check(SoapySDRDevice_setFrequency(d, SOAPY_SDR_RX, 0, c->req_center_freq_hz, NULL),
                    "center_freq_hz", v) != 0)
        goto fail;
    if (c->ppm != 0.0) {
        snprintf(v, sizeof v, "%g", c->ppm);
        if (!SoapySDRDevice_hasFrequencyCorrection(d, SOAPY_SDR_RX, 0))
            log_warn("Radio has no frequency correction; ppm ignored, ppm: %g", c->ppm);
        else if (soapy_check(SoapySDRDevice_setFrequencyCorrection(d, SOAPY_SDR_RX, 0, c->ppm),
                             "ppm", v) != 0)
            goto fail;
    }
    if (c->antenna && *c->antenna &&
        soapy_check(SoapySDRDevice_setAntenna(d, SOAPY_SDR_RX, 0, c->antenna), "antenna",
                    c->antenna) != 0)
        goto fail;
    if (c->bandwidth_hz > 0.0) {
        snprintf(v, sizeof v, "%.0f", c->bandwidth_hz);
        if (soapy_check(SoapySDRDevice_setBandwidth(d, SOAPY_SDR_RX, 0, c->bandwidth_hz),
                        "bandwidth_hz", v) != 0)
            goto fail;
    }
    if (soapy_set_gain(c) != 0 || soapy_write_settings(c) != 0)
        goto fail;

    c->rate_sps = SoapySDRDevice_getSampleRate(d, SOAPY_SDR_RX, 0);
    c->center_freq_hz = SoapySDRDevice_getFrequency(d, SOAPY_SDR_RX, 0);
    if (!(c->rate_sps > 0.0)) {
        log_error("Radio reports no sample rate, rate_sps: %g", c->rate_sps);
        goto fail;
    }
    if (fabs(c->rate_sps - c->req_rate_sps) > 1e-6 * c->req_rate_sps)
        log_warn("Radio runs at another sample rate than asked, rate_sps: %.3f, asked: %.0f",
                 c->rate_sps, c->req_rate_sps);

    /* Native format, converted once here; anything exotic is left to SoapySDR's CF32. */
    double full_scale = 0.0;
    char *native = SoapySDRDevice_getNativeStreamFormat(d, SOAPY_SDR_RX, 0, &full_scale);
    c->native_fmt = soapy_format(native);
    c->full_scale = c->native_fmt == IQ_FORMAT_UNKNOWN ? 1.0 : full_scale;
    if (c->native_fmt == IQ_FORMAT_UNKNOWN)
        c->native_fmt = IQ_FORMAT_CF32;
    /* iq_decode() scales to the format's nominal full scale (128, 32768, 1.0); a radio
     * with another one (12-bit CS16 = 2048) is rescaled so that 1.0 stays full scale. */
    double nominal = c->native_fmt == IQ_FORMAT_CS16 ? 32768.0
                     : c->native_fmt == IQ_FORMAT_CF32 ? 1.0
                                                       : 128.0;
    c->scale = (full_scale > 0.0 && fabs(nominal / full_scale - 1.0) > 0.01 &&
                soapy_format(native) != IQ_FORMAT_UNKNOWN)
                   ? (float)(nominal / full_scale)
                   : 1.0f;
    /* full scale 2048 as CS16: a 12-bit converter; CF32 (or unknown): no resolution */
    c->adc_bits = c->native_fmt == IQ_FORMAT_CS16
                      ? (full_scale >= 2.0 && full_scale <= 32768.0
                             ? (unsigned)lround(log2(full_scale)) + 1
                             : 16)
                      : format_bits(c->native_fmt);
    size_t ch = 0;
    c->stream = SoapySDRDevice_setupStream(d, SOAPY_SDR_RX, soapy_format_name(c->native_fmt),
                                           &ch, 1, NULL);
    if (!c->stream) {
        log_error("Radio stream setup failed, format: %s, error: %s",
                  soapy_format_name(c->native_fmt), SoapySDRDevice_lastError());
        SoapySDR_free(native);
        goto fail;
    }
    c->mtu = SoapySDRDevice_getStreamMTU(d, c->stream);
    if (c->mtu == 0)
        c->mtu = 8192;
    size_t need = c->mtu * iq_format_sample_bytes(c->native_fmt);
    if (need > c->raw_bytes) {
        void *p = realloc(c->raw, need);
        if (!p) {
            log_error("Out of memory for the radio read buffer, bytes: %zu", need);
            SoapySDR_free(native);
            goto fail;
        }
        c->raw = p;
        c->raw_bytes = need;
    }
    char gain_now[32];
    snprintf(gain_now, sizeof gain_now, "%.1f", SoapySDRDevice_getGain(d, SOAPY_SDR_RX, 0));
    log_info("Radio configured, rate_sps: %.0f, center_freq_hz: %.0f, gain_db: %s, agc: %s, "
             "native_format: %s, full_scale: %g, stream_format: %s, mtu: %zu",
             c->rate_sps, c->center_freq_hz, gain_now,
             SoapySDRDevice_getGainMode(d, SOAPY_SDR_RX, 0) ? "on" : "off",
             native ? native : "?", full_scale, soapy_format_name(c->native_fmt), c->mtu);
    SoapySDR_free(native);
    return 0;
fail:
    soapy_close(c);
    return -1;
}

/* Host-clock time base when the radio gives no timestamps: lag = samples the host clock
 * says exist - samples accounted for. While reads keep up, lag is the driver's latency;
 * it grows while the reader is late and the radio buffers; after an overflow the excess
 * over the usual latency is the loss. The usual latency is a minimum that may rise by
 * LAG_BASELINE_RISE (fraction of elapsed time) so that it follows host/radio clock drift
 * (tens of ppm) but not a backlog. */
#define LAG_BASELINE_RISE 1e-4
typedef struct {
    bool have_anchor;
    double anchor_mono_s;
    double baseline_lag;   /* samples */
    double baseline_mono_s; /* when it was last updated */
    bool have_time;        /* last read carried SOAPY_SDR_HAS_TIME */
    long long last_end_ns; /* timeNs just after the last read's samples */
} timebase_t;

static void update_baseline(const capture_t *c, timebase_t *tb, double now, double lag)
{
    double risen = tb->baseline_lag + (now - tb->baseline_mono_s) * c->rate_sps *
                                          LAG_BASELINE_RISE;
    tb->baseline_lag = lag < risen ? lag : risen;
    tb->baseline_mono_s = now;
}

static double host_lag(const capture_t *c, const timebase_t *tb, double now, uint64_t end_idx)
{
    return (now - tb->anchor_mono_s) * c->rate_sps - (double)end_idx;
}

/* Closes the radio and reopens it with exponential backoff. Returns false when giving up
 * (end code set) or stopping. */
static bool soapy_reopen(capture_t *c, double last_sample_mono)
{
    soapy_close(c);
    double backoff = c->reopen_backoff_s;
    int failures = c->reopen_streak; /* a reopen whose stream failed at once counts too */
    for (;;) {
        log_warn("Reopening radio, args: %s, after_s: %.1f", c->device_args, backoff);
        if (!sleep_until(c, timeutil_mono_s() + backoff))
            return false;
        if (soapy_open(c, false) == 0) {
            int rc = SoapySDRDevice_activateStream(c->dev, c->stream, 0, 0, 0);
            if (rc == 0)
                break;
            log_error("Radio stream activation failed, error: %s", SoapySDR_errToStr(rc));
            soapy_close(c);
        }
        failures++;
        if (c->max_reopen > 0 && failures >= c->max_reopen) {
            snprintf(c->errmsg, sizeof c->errmsg,
                     "radio %s could not be reopened after %d attempts", c->device_args,
                     failures);
            log_error("Giving up on the radio, args: %s, attempts: %d", c->device_args,
                      failures);
            finish(c, CAPTURE_ERR_DEVICE);
            return false;
        }
        backoff = fmin(backoff * 2.0, REOPEN_BACKOFF_MAX_S);
    }
    /* Open, but not healthy yet: the next reopen (if reads fail again) waits longer. */
    c->reopen_backoff_s = fmin(backoff * 2.0, REOPEN_BACKOFF_MAX_S);
    c->reopen_streak = failures + 1;
    c->reopened_mono_s = timeutil_mono_s();
    count(&c->st.reopens, 1);
    /* The outage cost about this many samples; the time base jumps over them. */
    uint64_t lost =
        (uint64_t)llround(fmax(0.0, timeutil_mono_s() - last_sample_mono) * c->rate_sps);
    count(&c->st.samples_lost, lost);
    note_missing(c, lost, CAPTURE_FLAG_OVERFLOW);
    log_notice("Radio reopened, samples_lost_estimate: %llu", (unsigned long long)lost);
    return true;
}

static void *soapy_thread(void *arg)
{
    capture_t *c = arg;
    int end = CAPTURE_END;
    int rc = SoapySDRDevice_activateStream(c->dev, c->stream, 0, 0, 0);
    if (rc != 0) {
        log_error("Radio stream activation failed, error: %s", SoapySDR_errToStr(rc));
        if (!soapy_reopen(c, timeutil_mono_s()))
            goto out_nofinish;
    }
    capture_block_t *cur = NULL;
    size_t fill = 0;
    timebase_t tb = {0};
    bool overflow_pending = false;
    double last_sample = timeutil_mono_s();
    while (!stopping(c)) {
        if (!cur) {
            cur = acquire_block(c, !c->drop_when_full);
            fill = 0;
            if (!cur && stopping(c))
                break;
        }
        size_t want = cur ? c->block_samples - fill : c->mtu;
        if (want > c->mtu)
            want = c->mtu;
        void *buffs[1] = {c->raw};
        int flags = 0;
        long long time_ns = 0;
        int ret = SoapySDRDevice_readStream(c->dev, c->stream, buffs, want, &flags, &time_ns,
                                            READ_TIMEOUT_US);
        double now = timeutil_mono_s();
        if (ret > 0) {
            last_sample = now;
            if (c->reopen_streak > 0 && now - c->reopened_mono_s >= REOPEN_HEALTHY_S) {
                c->reopen_streak = 0; /* healthy again: the next outage starts afresh */
                c->reopen_backoff_s = REOPEN_BACKOFF_FIRST_S;
            }
            uint64_t lost = 0;
            bool estimated = false;
            if (flags & SOAPY_SDR_HAS_TIME) {
                if (tb.have_time) {
                    /* Trust timestamps: any forward gap is lost samples. */
                    double gap = (double)(time_ns - tb.last_end_ns) * 1e-9 * c->rate_sps;
                    if (gap >= 0.5)
                        lost = (uint64_t)llround(gap);
                    estimated = true;
                }
                tb.have_time = true;
                tb.last_end_ns = time_ns + llround((double)ret * 1e9 / c->rate_sps);
            } else {
                tb.have_time = false;
            }
            if (!tb.have_anchor) {
                tb.have_anchor = true;
                tb.anchor_mono_s = now - (double)(c->next_idx + (uint64_t)ret) / c->rate_sps;
                tb.baseline_lag = 0.0;
                tb.baseline_mono_s = now;
            }
            if (overflow_pending && !estimated) {
                double excess =
                    host_lag(c, &tb, now, c->next_idx + (uint64_t)ret) - tb.baseline_lag;
                lost = excess > 0.0 ? (uint64_t)llround(excess) : 0;
            }
            if (lost > 0 || overflow_pending) {
                /* Samples before this read are gone: close the block so that index
                 * arithmetic inside a block never spans a gap. */
                if (cur && fill > 0) {
                    cur->n = fill;
                    publish_block(c, cur);
                    cur = acquire_block(c, !c->drop_when_full);
                    fill = 0;
                }
                count(&c->st.samples_lost, lost);
                note_missing(c, lost, CAPTURE_FLAG_OVERFLOW);
                overflow_pending = false;
            }
            update_baseline(c, &tb, now, host_lag(c, &tb, now, c->next_idx + (uint64_t)ret));
            /* UTC of this read's first sample */
            double read_utc = timeutil_unix_s() - (double)ret / c->rate_sps;
            if (c->tap)
                c->tap(c->raw, (size_t)ret, c->next_idx, read_utc, c->tap_user);
            if (cur) {
                if (fill == 0)
                    start_block(c, cur, read_utc);
                iq_decode(c->native_fmt, c->raw, cur->samples + fill, (size_t)ret);
                if (c->scale != 1.0f)
                    for (size_t i = 0; i < (size_t)ret; i++)
                        cur->samples[fill + i] *= c->scale;
                fill += (size_t)ret;
                cur->n = fill;
                c->next_idx += (uint64_t)ret;
                if (fill == c->block_samples) {
                    publish_block(c, cur);
                    cur = NULL;
                }
            } else {
                count(&c->st.samples_dropped, (uint64_t)ret);
                note_missing(c, (uint64_t)ret, CAPTURE_FLAG_RING_FULL);
            }
        } else if (ret == SOAPY_SDR_TIMEOUT) {
            count(&c->st.timeouts, 1);
        } else if (ret == SOAPY_SDR_OVERFLOW) {
            count(&c->st.overflows, 1);
            overflow_pending = true;
            log_debug("Radio overflow, samples_so_far: %llu", (unsigned long long)c->next_idx);
        } else if (ret < 0) {
            count(&c->st.read_errors, 1);
            log_error("Radio read failed, error: %s", SoapySDR_errToStr(ret));
        }
        if (ret >= 0 && (flags & SOAPY_SDR_END_BURST)) {
            /* A continuous receive stream never ends a burst: the iqfile driver reached
             * the end of its recording. */
            log_info("Radio stream ended (end of burst), samples: %llu",
                     (unsigned long long)c->next_idx);
            break;
        }
        bool stalled = c->watchdog_s > 0.0 && now - last_sample > c->watchdog_s;
        if (stalled) {
            count(&c->st.watchdog_trips, 1);
            log_warn("No samples from the radio, seconds: %.1f", now - last_sample);
        }
        if (stalled || (ret < 0 && ret != SOAPY_SDR_TIMEOUT && ret != SOAPY_SDR_OVERFLOW)) {
            if (cur && fill > 0) {
                publish_block(c, cur);
                cur = NULL;
            }
            if (!soapy_reopen(c, last_sample))
                goto out_nofinish;
            tb = (timebase_t){0};
            overflow_pending = false;
            last_sample = timeutil_mono_s();
        }
    }
    if (cur && fill > 0 && !stopping(c))
        publish_block(c, cur);
    finish(c, end);
    return NULL;
out_nofinish:
    /* Stopping, or soapy_reopen() already set CAPTURE_ERR_DEVICE. */
    if (atomic_load(&c->end_code) == 0)
        finish(c, end);
    return NULL;
}

/* ---- life cycle ----------------------------------------------------------------------- */

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

capture_t *capture_create(const capture_config_t *cfg)
{
    if (!cfg) {
        log_error("Capture configuration missing");
        return NULL;
    }
    bool is_file = (cfg->file_path && *cfg->file_path) || cfg->file;
    if (!is_file && !(cfg->rate_sps > 0.0 && isfinite(cfg->rate_sps))) {
        log_error("Radio sample rate must be given, rate_sps: %g", cfg->rate_sps);
        iqfile_close(cfg->file); /* adopted even on failure */
        return NULL;
    }
    if (!is_file && !(cfg->center_freq_hz > 0.0 && isfinite(cfg->center_freq_hz))) {
        log_error("Radio centre frequency must be given, center_freq_hz: %g",
                  cfg->center_freq_hz);
        iqfile_close(cfg->file); /* adopted even on failure */
        return NULL;
    }
    if (cfg->n_blocks == 1) {
        log_error("Capture needs at least 2 blocks, n_blocks: %zu", cfg->n_blocks);
        iqfile_close(cfg->file); /* adopted even on failure */
        return NULL;
    }
    capture_t *c = calloc(1, sizeof *c);
    if (!c) {
        log_error("Out of memory for the capture");
        iqfile_close(cfg->file); /* adopted even on failure */
        return NULL;
    }
    c->file = cfg->file; /* adopted: closed by capture_destroy(), also when create fails */
    c->file_path = is_file ? strdup(cfg->file_path && *cfg->file_path ? cfg->file_path
                                                                      : "(recording)")
                           : NULL;
    c->device_args = dup_or_empty(cfg->device_args);
    c->gain = dup_or_empty(cfg->gain);
    c->antenna = dup_or_empty(cfg->antenna);
    c->settings = dup_or_empty(cfg->settings);
    c->file_format = cfg->file_format;
    c->realtime = cfg->realtime;
    c->speed = cfg->speed > 0 ? cfg->speed : 1.0;
    c->req_rate_sps = cfg->rate_sps;
    c->req_center_freq_hz = cfg->center_freq_hz;
    c->ppm = cfg->ppm;
    c->bandwidth_hz = cfg->bandwidth_hz;
    c->watchdog_s = cfg->watchdog_s == 0.0 ? DEFAULT_WATCHDOG_S : cfg->watchdog_s;
    c->max_reopen = cfg->max_reopen;
    c->reopen_backoff_s = REOPEN_BACKOFF_FIRST_S;
    c->drop_when_full = cfg->overrun == CAPTURE_OVERRUN_DROP ||
                        (cfg->overrun == CAPTURE_OVERRUN_DEFAULT && !is_file);
    c->block_samples = cfg->block_samples ? cfg->block_samples : DEFAULT_BLOCK_SAMPLES;
    c->n_blocks = cfg->n_blocks ? cfg->n_blocks : DEFAULT_N_BLOCKS;
    c->scale = 1.0f;
    atomic_init(&c->write_idx, 0);
    atomic_init(&c->release_idx, 0);
    atomic_init(&c->stop, false);
    atomic_init(&c->end_code, 0);
    /* All or nothing, so that destroy knows what to tear down. */
    bool sync_ok = false;
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) == 0) {
        if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
            pthread_mutex_init(&c->mu, NULL) == 0) {
            if (pthread_cond_init(&c->cv_data, &ca) == 0) {
                if (pthread_cond_init(&c->cv_space, &ca) == 0)
                    sync_ok = true;
                else
                    pthread_cond_destroy(&c->cv_data);
            }
            if (!sync_ok)
                pthread_mutex_destroy(&c->mu);
        }
        pthread_condattr_destroy(&ca);
    }
    c->sync_inited = sync_ok;
    c->joined = true; /* nothing to join until started */
    if (!sync_ok || !c->device_args || !c->gain || !c->antenna || !c->settings ||
        (is_file && !c->file_path) || c->block_samples > SIZE_MAX / sizeof(float complex) /
                                                              c->n_blocks) {
        log_error("Cannot set up the capture (memory or sizes), block_samples: %zu, "
                  "n_blocks: %zu",
                  c->block_samples, c->n_blocks);
        goto fail;
    }
    c->blocks = calloc(c->n_blocks, sizeof *c->blocks);
    c->pool = malloc(c->n_blocks * c->block_samples * sizeof *c->pool);
    if (!c->blocks || !c->pool) {
        log_error("Out of memory for the capture pool, bytes: %zu",
                  c->n_blocks * c->block_samples * sizeof *c->pool);
        goto fail;
    }
    for (size_t i = 0; i < c->n_blocks; i++)
        c->blocks[i].samples = c->pool + i * c->block_samples;

    if (is_file) {
        if (file_open(c) != 0)
            goto fail;
    } else {
        SoapySDR_registerLogHandler(soapy_log_bridge);
        SoapySDR_setLogLevel((SoapySDRLogLevel)log_get_level());
        if (soapy_open(c, true) != 0)
            goto fail;
    }
    return c;
fail:
    capture_destroy(c);
    return NULL;
}

int capture_start(capture_t *c)
{
    if (!c || c->started)
        return CAPTURE_ERR_ARG;
    int rc = pthread_create(&c->thread, NULL, c->file ? file_thread : soapy_thread, c);
    if (rc != 0) {
        log_error("Cannot start the capture thread, error: %s", strerror(rc));
        return CAPTURE_ERR_NOMEM;
    }
    c->started = true;
    c->joined = false;
    return CAPTURE_OK;
}

int capture_stop(capture_t *c)
{
    if (!c)
        return CAPTURE_ERR_ARG;
    atomic_store_explicit(&c->stop, true, memory_order_release);
    if (c->sync_inited) {
        wake(c, &c->cv_data);
        wake(c, &c->cv_space);
    }
    if (c->started && !c->joined) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl); /* pthread_timedjoin_np uses CLOCK_REALTIME */
        dl.tv_sec += (time_t)STOP_JOIN_WARN_S;
        if (pthread_timedjoin_np(c->thread, NULL, &dl) != 0) {
            log_warn("Capture thread slow to stop (radio driver busy), waiting");
            pthread_join(c->thread, NULL);
        }
        c->joined = true;
    }
    return CAPTURE_OK;
}

void capture_destroy(capture_t *c)
{
    if (!c)
        return;
    capture_stop(c);
    soapy_close(c);
    iqfile_close(c->file);
    if (c->sync_inited) {
        pthread_cond_destroy(&c->cv_data);
        pthread_cond_destroy(&c->cv_space);
        pthread_mutex_destroy(&c->mu);
    }
    free(c->raw);
    free(c->scratch);
    free(c->pool);
    free(c->blocks);
    free(c->file_path);
    free(c->device_args);
    free(c->gain);
    free(c->antenna);
    free(c->settings);
    free(c);
}

int capture_set_tap(capture_t *c, capture_tap_fn fn, void *user)
{
    if (!c || c->file || c->started)
        return CAPTURE_ERR_ARG;
    c->tap = fn;
    c->tap_user = user;
    return CAPTURE_OK;
}

iq_format_t capture_native_format(const capture_t *c)
{
    if (!c)
        return IQ_FORMAT_UNKNOWN;
    return c->file ? iqfile_format(c->file) : c->native_fmt;
}

double capture_full_scale(const capture_t *c)
{
    return c && !c->file ? c->full_scale : 0.0;
}

void capture_get_stats(const capture_t *c, capture_stats_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    capture_counters_t *s = (capture_counters_t *)&c->st;
    out->samples_in = atomic_load_explicit(&s->samples_in, memory_order_relaxed);
    out->samples_dropped = atomic_load_explicit(&s->samples_dropped, memory_order_relaxed);
    out->samples_lost = atomic_load_explicit(&s->samples_lost, memory_order_relaxed);
    out->blocks = atomic_load_explicit(&s->blocks, memory_order_relaxed);
    out->discontinuities = atomic_load_explicit(&s->discontinuities, memory_order_relaxed);
    out->overflows = atomic_load_explicit(&s->overflows, memory_order_relaxed);
    out->timeouts = atomic_load_explicit(&s->timeouts, memory_order_relaxed);
    out->read_errors = atomic_load_explicit(&s->read_errors, memory_order_relaxed);
    out->watchdog_trips = atomic_load_explicit(&s->watchdog_trips, memory_order_relaxed);
    out->reopens = atomic_load_explicit(&s->reopens, memory_order_relaxed);
}

unsigned capture_adc_bits(const capture_t *c)
{
    return c ? c->adc_bits : 0;
}

double capture_rate(const capture_t *c)
{
    return c ? c->rate_sps : 0.0;
}

double capture_center_freq(const capture_t *c)
{
    return c ? c->center_freq_hz : 0.0;
}

const char *capture_error_message(const capture_t *c)
{
    if (!c)
        return "";
    return atomic_load_explicit(&((capture_t *)c)->end_code, memory_order_acquire) != 0
               ? c->errmsg
               : "";
}
