/* rx: the wideband uplink receiver pipeline (docs/receiver.md), from complex samples of
 * a capture to decoded frames and merged messages. Licence: MIT.
 *
 *   samples -> front end (mix + decimate) -> channelizer -> burst detector -> extractor
 *           -> D-BPSK demodulator -> frame decoder (+ UL-AUTH) -> message assembler
 *
 * One rx_t is fed by one thread, in stream order. Results come out through the
 * callbacks, called from inside rx_process()/rx_flush() on the caller's thread; the
 * pointers they receive are valid only during the call. rx_process() never blocks,
 * sleeps or prints; its memory is allocated in rx_create().
 */
#ifndef SIGFOX_RX_H
#define SIGFOX_RX_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assembler.h"
#include "keys.h"
#include "rc.h"
#include "rxresult.h"

/* CPU time (of the calling thread) spent in each stage inside rx_process/rx_flush,
 * seconds; the stages add up to the whole. Measured with one clock read per stage change
 * (about 200 ns each, ~0.5 % of the work at 250 kS/s). */
typedef struct {
    double frontend_s;    /* NCO shift and decimation (frontend.h) */
    double channelizer_s; /* FFT, Hann powers, noise floor (channelizer.h) */
    double detector_s;    /* burst detector (burstdet.h) */
    double extractor_s;   /* burst snippets (extractor.h) */
    double demod_s;       /* demodulation attempts, re-centring, cancellation (demod.h) */
    double decode_s;      /* FT, un-coding, CRC, fields, UL-AUTH, assembler with joint
                             decoding, and the on_frame / on_message callbacks */
} rx_cpu_t;

typedef struct {
    uint64_t samples_in;
    uint64_t samples_lost;      /* announced by rx_discontinuity */
    uint64_t samples_invalid;   /* NaN, infinite or beyond +-1e6: replaced by 0 */
    uint64_t bursts_detected;   /* accepted by the detector and demodulated */
    uint64_t bursts_rejected;   /* detector tracks rejected (CW, FSK, noise, ...), including
                                   the unverified ones */
    uint64_t bursts_unverified; /* of the rejected: shaped like a CW tone or FSK line (as
                                   frames of long runs of equal bits are), and no preamble
                                   + FT starts them (burstdet.h verify_preamble) */
    uint64_t bursts_crowded;    /* of the detected: tracks the detector flagged as possibly
                                   several bursts closer than it separates (burstdet.h) */
    uint64_t bursts_dropped;    /* no extraction slot free (more than max_bursts) */
    uint64_t lines_removed;     /* steady tones next to a burst (CW interferers) fitted
                                   around it and subtracted before demodulation */
    uint64_t neighbours_cancelled; /* bursts of the other symbol rate, decoded from their
                                      own tracks, subtracted from a track's snippet before
                                      demodulation (sic.h, sic_xcancel_burst) */
    uint64_t bursts_nosync;     /* demodulator found no preamble + FT */
    uint64_t frames_ok;
    uint64_t frames_corrected; /* of frames_ok: CRC failed, corrected by the chase decoder
                                  (uldecode_chase; with a key store, UL-AUTH valid) */
    uint64_t frames_crc_bad; /* FT readable, CRC (or fields) bad */
    uint64_t frames_ft_bad;  /* sync found, FT unreadable or frame cut short */
    uint64_t frames_auth_bad;
    uint64_t frames_unknown_device;
    uint64_t frames_duplicate; /* the same frame decoded from two tracks, reported once */
    uint64_t messages;
    uint64_t messages_combined;
    double latency_max_s;    /* longest burst end -> frame callback, stream time */
    uint64_t demod_attempts; /* demodulations (a track with several bursts takes more) */
    uint64_t alt_sync_attempts; /* of them, readings of weak bursts at a runner-up sync */
    uint64_t frames_multi;   /* frames_ok decoded by a track's later attempt: after
                                cancelling a burst decoded first, or on a second carrier */
    rx_cpu_t cpu;            /* where the time went */
} rx_stats_t;

/* Why a burst the detector accepted gave no CRC-valid frame (rx_burst_t.reason). */
typedef enum {
    RX_UNDECODED_NOSYNC = 1, /* no preamble + FT found (or the snippet was too short) */
    RX_UNDECODED_FT_BAD,     /* sync found, FT unreadable or the frame cut short */
    RX_UNDECODED_CRC_BAD,    /* FT readable, CRC (or fields) bad */
} rx_undecoded_t;
/* "nosync", "ft_bad", "crc_bad" ("unknown" otherwise). Never NULL. */
const char *rx_undecoded_name(rx_undecoded_t r);

/* A burst the detector accepted (counted in bursts_detected) from which no CRC-valid frame
 * was decoded: what the user may want to record and send in (sigfoxd --snippets). Times
 * are the detector's, so the burst lies within about +-0.1 s of them. */
typedef struct {
    uint64_t sample_start; /* detector's start, in input-stream samples (as sample_idx) */
    uint64_t sample_end;   /* detector's end (> sample_start) */
    double freq_hz;        /* carrier (absolute, or relative when the centre is unknown) */
    double snr_db;         /* detector's estimate over the burst's core */
    int baud;              /* 100 or 600 (the detector's class) */
    rx_undecoded_t reason; /* of the best demodulation attempt (CRC_BAD before FT_BAD) */
    /* FT_BAD and CRC_BAD: that attempt's soft values, carrier, drift, time, SNR and FT
     * hypotheses (valid during the call only); NULL for NOSYNC. */
    const rx_softframe_t *soft;
} rx_burst_t;
typedef void (*rx_burst_cb)(const rx_burst_t *burst, void *user);

typedef struct {
    double rate_sps;          /* input sample rate, 200e3 .. 3.2e6 */
    double capture_center_hz; /* centre frequency of the input (0 if unknown: then all
                                 frequencies are relative to it) */
    double channel_center_hz; /* macro-channel centre (0: same as capture centre) */
    double channel_width_hz;  /* 0: 192 kHz plus margin */
    double threshold_db;      /* detector threshold over the noise floor, 0: default */
    bool report_bad_frames;   /* also call on_frame for CRC-failed bursts with a good FT */
    double rssi_offset_db;    /* dBm = dBFS + offset, when calibrated (not used by rx) */
    const keystore_t *keys;   /* may be NULL: auth stays "unchecked" */
    int chase_trials;         /* patterns the chase decoder tries on a CRC-failed frame
                                 (uldecode_chase, only with keys): 0: the default
                                 ULDECODE_CHASE_DEFAULT_TRIALS, negative: off, at most
                                 ULDECODE_CHASE_MAX_TRIALS */
    const rc_params_t *rc;    /* replica timing rules (rc.h); NULL: RC1 */
    size_t max_bursts;        /* bursts followed at once per symbol rate, 0: 160 BR100
                                 + 96 BR600 (memory ~22 MB at 250 kS/s) */
    bool fft_measure;         /* plan the channelizer FFT with FFTW_MEASURE: ~10 % less
                                 CPU for 0.2-0.6 s more in rx_create (daemon, bench) */
    rx_frame_cb on_frame;
    rx_message_cb on_message;
    /* Optional: called (like on_frame, from inside rx_process/rx_flush, on the caller's
     * thread) once for every accepted burst that gave no CRC-valid frame, after its
     * demodulation attempts. Keep it short: it runs on the DSP thread. */
    rx_burst_cb on_undecoded;
    void *user;
} rx_config_t;

typedef struct rx rx_t;

#define RX_ERR_ARG -1 /* NULL pointer */

/* NULL (after logging which parameter is wrong) on bad configuration. Makes FFTW plans:
 * create/destroy from one thread at a time. */
rx_t *rx_create(const rx_config_t *cfg);
/* Feeds n samples that follow the previous call's. Returns n or a negative code. Frames
 * come out within ~0.3 s of stream time after their burst ends (rx_stats_t.latency_max_s),
 * messages when the assembler's replica window closes (assembler.h). */
int rx_process(rx_t *q, const float complex *samples, size_t n);
/* Marks a gap of `lost` samples (radio overflow): the time base advances, history is
 * dropped, bursts spanning the gap are abandoned. */
void rx_discontinuity(rx_t *q, uint64_t lost);
/* Ends the stream: decodes bursts still open and emits pending messages. Returns 0 or a
 * negative code. rx_process may be called again afterwards (a new stream). */
int rx_flush(rx_t *q);
void rx_get_stats(const rx_t *q, rx_stats_t *stats);
/* The replica assembler's counters (joint decodings, unread bursts kept and used). */
void rx_get_assembler_stats(const rx_t *q, assembler_stats_t *stats);

/* What rx_create chose (for logs and benchmarks). */
typedef struct {
    double work_rate_sps; /* after the front end */
    unsigned decimation;
    size_t fft_len; /* channelizer N (bin width work_rate_sps / N, ~25 Hz) */
    double hop_s;
    double threshold_db;
} rx_info_t;
void rx_get_info(const rx_t *q, rx_info_t *info);

/* NULL-safe. */
void rx_destroy(rx_t *q);

#endif
