/* txsink: transmits scheduled downlink bursts, to IQ files or a SoapySDR transmitter.
 * Licence: MIT. docs/downlink-scheduler.md describes the files and the timing.
 *
 * Each burst (a dlsched SCHEDULED event, or a txsink_burst_t) is modulated with gfskmod
 * (GFSK 600 baud, ±800 Hz, BT 0.5, 0.5-symbol ramps) at the sink's sample rate, with the
 * carrier placed digitally at tx_freq_hz - center_freq_hz (the sink's centre is fixed), and
 *
 *  - file sink (TXSINK_FILE, `--tx-file DIR`): written to
 *      DIR/dl_<EPID>_<MC>_t<t_start in µs>us_<centre MHz>M_<rate ksps>k.cf32
 *    (cf32 via iqfile; the rtl_433-style name tokens carry centre and rate, so
 *    `sigfox-dlrx FILE` needs no flags) and a JSON sidecar with the same name + ".json":
 *      {"type": "downlink_iq", "format_version": 1, "file": "dl_....cf32", "format": "cf32",
 *       "rate": 240000, "freq_hz": 869525000.0 (absolute centre of the IQ),
 *       "offset_hz": -11234.5 (carrier in the IQ), "dl_freq_hz": .. (carrier on air),
 *       "tx_freq_hz": .., "t_start_s": 31.234567 (first preamble bit, receive stream time),
 *       "t_first_sample_s": .., "data_offset_samples": 3400, "n_samples": 96400, "baud": 600,
 *       "deviation_hz": 800, "bt": 0.5, "id": 3, "ep_id": "FEDCBA98", "mc": 1650,
 *       "payload": "3031323334353637", "dl_auth": "852D", "bitstream": "AAAA...",
 *       "dl_phy_content": "C605..."}
 *    The IQ holds 8 symbols of silence, the burst (ramp, 224 bits, ramp), 8 symbols of
 *    silence (receivers need a little lead-in); data_offset_samples is the first
 *    preamble bit's sample, t_first_sample_s the file's first sample on the stream time
 *    base. Both files are written to a ".tmp" name first and renamed, so a watcher never
 *    sees half a file (the .cf32 appears before its .json).
 *  - SoapySDR sink (TXSINK_SOAPY): a TX stream (CF32) on the device given by device_args
 *    (the same args as the receiver open the same device: SoapySDR shares it). The stream is
 *    activated once at create. A burst is written with SOAPY_SDR_HAS_TIME (time =
 *    getHardwareTime() + the host-clock distance to the burst's start, taken just before
 *    writing) when the device has hardware time, else it is written at the host-clock
 *    moment of its start; SOAPY_SDR_END_BURST ends it. A device without TX channels
 *    (RTL-SDR, Airspy) is refused at create with a message saying so.
 *
 * Stream time -> wall clock: txsink_set_clock() anchors the receive stream's time base to
 * UTC (the daemon calls it with each capture block: first_sample_idx / rate and
 * host_time_s). The file sink does not need it.
 *
 * Threads: txsink_submit*() from any thread (a bounded queue, never blocks); one transmit
 * thread owns the gfskmod and the TX stream and calls on_result for every burst taken,
 * in order, from that thread (never from inside txsink_submit).
 */
#ifndef SIGFOX_TXSINK_H
#define SIGFOX_TXSINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dlframe.h"
#include "dlsched.h"

#define TXSINK_FILE_DEFAULT_RATE_SPS 240000.0 /* 400 samples/symbol, ±120 kHz */

enum txsink_error {
    TXSINK_OK = 0,
    TXSINK_ERR_ARG = -1,     /* NULL pointer, bad burst */
    TXSINK_ERR_FULL = -2,    /* queue full */
    TXSINK_ERR_OFFSET = -3,  /* carrier outside what the sink's rate covers */
    TXSINK_ERR_STOPPED = -4, /* txsink_destroy() in progress */
    TXSINK_ERR_IO = -5,      /* file write failed */
    TXSINK_ERR_DEVICE = -6,  /* SoapySDR call failed */
    TXSINK_ERR_LATE = -7,    /* the burst's start had passed when its turn came */
};
const char *txsink_strerror(int code);

typedef enum {
    TXSINK_FILE = 1,
    TXSINK_SOAPY,
} txsink_kind_t;

/* One burst to send. */
typedef struct {
    uint32_t id;                        /* the scheduler's request id (passed back) */
    uint32_t ep_id;
    uint16_t mc;
    uint8_t payload[DL_PAYLOAD_BYTES];
    uint8_t dl_auth[DL_AUTH_BYTES];
    uint8_t frame[DL_FRAME_BYTES];      /* dl_frame_encode()'s 28 bytes */
    uint8_t phy[DL_PHY_BYTES];
    double freq_hz;                     /* carrier on air */
    double tx_freq_hz;                  /* carrier to synthesise (ppm-corrected) */
    double t_start_s;                   /* first preamble bit, receive stream time */
} txsink_burst_t;

/* One Monarch beacon to send (seeds/001: 12 carriers, 362 ms at dF1 + 38 ms at dF2; the
 * frequency and spacings are the sink's configuration, beacon_*). */
typedef struct {
    uint32_t id;      /* the caller's beacon number (passed back) */
    double freq_hz;   /* beacon frequency on air (recorded; the sink synthesises
                         beacon_tx_freq_hz) */
    double t_start_s; /* the beacon's first sample (start of its 400 ms), receive stream time */
} txsink_beacon_t;

/* Outcome of one burst. */
typedef struct {
    bool beacon;            /* a Monarch beacon (id is the beacon number) */
    uint32_t id;
    uint32_t ep_id;
    uint16_t mc;
    int status;             /* TXSINK_OK or a negative TXSINK_ERR_* */
    char error[192];        /* why, when status < 0 */
    char path[1040];        /* file sink: the IQ file ("" otherwise) */
    double t_start_s;       /* as submitted */
    bool hw_time;           /* SoapySDR: written with SOAPY_SDR_HAS_TIME */
    double late_s;          /* SoapySDR: host-clock write time minus the burst's first
                               sample time (negative: early, the driver holds it) */
} txsink_result_t;

typedef void (*txsink_result_cb)(const txsink_result_t *res, void *user);

typedef struct {
    txsink_kind_t kind;
    /* file sink */
    const char *dir;            /* existing, writable directory */
    /* SoapySDR sink */
    const char *device_args;    /* "driver=hackrf", "" = first device */
    size_t channel;             /* TX channel, 0 default */
    const char *antenna;        /* NULL/"": driver default */
    const char *gain;           /* NULL/"": driver default; "30": overall dB;
                                   "VGA=20,AMP=0": per element */
    const char *settings;       /* "key=value,..." written with writeSetting */
    double host_lead_s;         /* without hardware time: write this long before the start
                                   (driver buffering); 0: 0.02 s */
    double late_limit_s;        /* drop a burst whose first sample is this far in the past;
                                   0: 0.05 s */
    /* Monarch beacons (txsink_submit_beacon); beacon_df1_hz 0: no beacons. The seed gives
     * no RC -> (frequency, dF1, dF2) table: the caller states all three. */
    double beacon_tx_freq_hz;   /* beacon frequency to synthesise (ppm-corrected) */
    double beacon_df1_hz;       /* 1024, 1260.3 or 1489.4 Hz (monarch.h) */
    double beacon_df2_hz;
    /* both */
    double rate_sps;            /* 0: file 240 kS/s; SoapySDR: required (e.g. 2e6 HackRF) */
    double center_freq_hz;      /* required: fixed TX centre (e.g. the RC's DL centre) */
    float amplitude;            /* peak, (0, 1] of full scale; 0: 0.7 */
    float bt;                   /* Gaussian BT; 0: gfskmod's 0.5 */
    size_t queue_len;           /* 0: 16 */
    txsink_result_cb on_result; /* may be NULL */
    void *user;
} txsink_config_t;

typedef struct {
    uint64_t submitted, rejected; /* accepted into / refused by the queue */
    uint64_t sent, failed;
    uint64_t late;                /* failed because late */
    uint64_t underflows;          /* SoapySDR stream status reports */
} txsink_stats_t;

typedef struct txsink txsink_t;

/* Opens the sink (checks the directory; or makes the device, checks it has a TX channel,
 * sets rate, frequency, gain, antenna and sets up and activates the stream), allocates the
 * burst buffer and starts the transmit thread. Returns NULL with the reason in err, e.g.
 * "SoapySDR device 'driver=rtlsdr' has no TX channel (receive-only radio): downlink
 * transmission disabled". */
txsink_t *txsink_create(const txsink_config_t *cfg, char *err, size_t err_len);

/* Anchors stream time to UTC: stream time stream_t_s happened at unix_s (seconds since
 * 1970, CLOCK_REALTIME). Any thread. */
void txsink_set_clock(txsink_t *s, double stream_t_s, double unix_s);

/* Queues a burst. Returns 0, TXSINK_ERR_FULL, TXSINK_ERR_OFFSET (the carrier does not fit
 * the sink's band: |tx_freq_hz - centre| + 2 kHz > rate / 2), TXSINK_ERR_STOPPED or
 * TXSINK_ERR_ARG. Never blocks; on_result is not called for a refused burst. */
int txsink_submit(txsink_t *s, const txsink_burst_t *b);
/* The same from a DLSCHED_EV_SCHEDULED event (TXSINK_ERR_ARG for other types). Suitable
 * as the return value of a dlsched_event_cb for that event. */
int txsink_submit_event(txsink_t *s, const dlsched_event_t *ev);

/* Queues a Monarch beacon (the sink must have been created with beacon_df1_hz). A file
 * sink writes DIR/monarch_<n>_t<t_start in µs>us_<centre MHz>M_<rate ksps>k.cf32 + ".json"
 * ({"type": "monarch_iq", "format_version": 1, "file", "format", "rate", "freq_hz" (IQ
 * centre), "offset_hz", "beacon_freq_hz", "beacon_tx_freq_hz", "df1_hz", "df2_hz",
 * "t_start_s" (first beacon sample), "t_first_sample_s", "data_offset_samples",
 * "n_samples", "pattern1_s", "pattern2_s", "id"}); a SoapySDR sink transmits it at
 * t_start_s. Returns 0, TXSINK_ERR_ARG (no beacon configured, bad time), TXSINK_ERR_FULL or
 * TXSINK_ERR_STOPPED. Never blocks. */
int txsink_submit_beacon(txsink_t *s, const txsink_beacon_t *b);

/* Waits until every queued burst has been handled (or timeout_ms passed, < 0: forever).
 * Returns 0 when the queue is empty, TXSINK_ERR_FULL on timeout. Not from on_result. */
int txsink_drain(txsink_t *s, int timeout_ms);

void txsink_get_stats(txsink_t *s, txsink_stats_t *out);
/* Carrier offset range the sink covers: |tx_freq_hz - centre| <= this. */
double txsink_max_offset_hz(const txsink_t *s);

/* Stops the thread: a file sink first writes what is queued; a SoapySDR sink reports
 * queued bursts as TXSINK_ERR_STOPPED. Deactivates and closes the stream and device.
 * NULL-safe. */
void txsink_destroy(txsink_t *s);

#endif
