/* capture: the capture thread. Reads a SoapySDR radio (live) or an IQ file (replay),
 * converts once to complex float and hands fixed-size blocks to one consumer thread.
 * Licence: MIT.
 *
 * Blocks come from a pool allocated in capture_create() and move through a lock-free
 * single-producer/single-consumer ring (C11 atomics); a mutex/condvar pair is used only to
 * sleep when the ring is empty or full, never to guard data:
 *
 *        release_idx          read_idx              write_idx
 *             |  held by consumer |  ready for consumer  |  free (producer fills next)
 *   ... ------+-------------------+----------------------+--------------------- ...
 *   slot = idx % n_blocks; producer fills slot[write_idx] while
 *   write_idx - release_idx < n_blocks; consumer takes slot[read_idx] while
 *   read_idx < write_idx and releases slot[release_idx] (in order).
 *
 * Live capture never waits for a free block: when the consumer falls behind, it keeps
 * reading the radio into a scratch buffer, counts the dropped samples, and flags the next
 * block CAPTURE_FLAG_DISCONTINUITY with the count in `dropped`. Replay (or any source with
 * CAPTURE_OVERRUN_WAIT) waits for a free block instead. Either way the sample index
 * counts every sample the source produced, delivered or not, so that
 *     block.first_sample_idx == prev.first_sample_idx + prev.n + block.dropped
 * and burst times computed from the index stay right.
 *
 * Radio read policy (SoapySDR): getStreamMTU elements per readStream call until a block is
 * full; SOAPY_SDR_TIMEOUT is counted and the loop continues; SOAPY_SDR_OVERFLOW is counted,
 * the lost samples are estimated (from timeNs when SOAPY_SDR_HAS_TIME, else from the host
 * clock) and the next block is flagged; any other error is logged with SoapySDR_errToStr
 * and the device is closed and reopened with exponential backoff (0.5 s doubling to 30 s;
 * it grows while the reopened radio keeps failing and starts afresh only after samples
 * flowed for 10 s, not merely because an open succeeded); a watchdog does the same
 * when no sample arrives for watchdog_s. A stream that sets SOAPY_SDR_END_BURST (the
 * "iqfile" driver at the end of a recording) ends the capture like the end of a file.
 *
 * Threads: capture_next_block()/capture_release_block() from one consumer thread; the
 * getters and capture_stop() from any thread; create/start/destroy from the owner.
 */
#ifndef SIGFOX_CAPTURE_H
#define SIGFOX_CAPTURE_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iqfile.h"

typedef struct capture capture_t;

enum {
    CAPTURE_OK = 0,
    CAPTURE_ERR_TIMEOUT = -1, /* no block within the timeout (not an error: call again) */
    CAPTURE_END = -2,         /* source finished (end of file) and every block delivered */
    CAPTURE_ERR_STOPPED = -3, /* capture_stop() was called */
    CAPTURE_ERR_DEVICE = -4,  /* radio failed and could not be reopened (exit non-zero) */
    CAPTURE_ERR_SOURCE = -5,  /* IQ file read error (after every good block) */
    CAPTURE_ERR_ARG = -6,     /* bad argument or call order */
    CAPTURE_ERR_NOMEM = -7,
};
/* Text for a CAPTURE_* code. Never NULL. */
const char *capture_strerror(int code);

/* Block flags. */
#define CAPTURE_FLAG_DISCONTINUITY 0x1u /* samples missing before this block (see dropped) */
#define CAPTURE_FLAG_OVERFLOW 0x2u      /* ...because the radio overflowed or was reopened */
#define CAPTURE_FLAG_RING_FULL 0x4u     /* ...because the consumer was too slow */

typedef struct {
    float complex *samples;    /* n samples, full scale 1.0; owned by the capture pool */
    size_t n;                  /* 1 .. block_samples */
    uint64_t first_sample_idx; /* index of samples[0] since the capture started */
    double rate_sps;           /* actual sample rate */
    double center_freq_hz;     /* actual centre frequency (0 if unknown) */
    double host_time_s;        /* UTC (CLOCK_REALTIME) estimate for samples[0]; for replay,
                                  capture start + index / rate */
    uint32_t flags;            /* CAPTURE_FLAG_* */
    uint64_t dropped;          /* samples missing between the previous block and this one
                                  (estimated for radio overflows) */
} capture_block_t;

/* When the consumer falls behind and no block is free. */
typedef enum {
    CAPTURE_OVERRUN_DEFAULT = 0, /* radio: DROP; file: WAIT */
    CAPTURE_OVERRUN_DROP,        /* keep reading, count the samples as dropped (live) */
    CAPTURE_OVERRUN_WAIT,        /* wait for a free block: lossless (replay, tests with
                                    driver=iqfile,throttle=0) */
} capture_overrun_t;

typedef struct {
    /* Source: an IQ file when file_path is set, else the SoapySDR device. */
    const char *file_path;      /* "-" = stdin (format required) */
    iqfile_t *file;             /* or a recording the caller already opened (so a pipe is
                                   read once: probe its rate, then capture); the capture
                                   owns it from capture_create() on, even when that fails */
    iq_format_t file_format;    /* UNKNOWN: from the extension */
    bool realtime;              /* replay: pace to the file's sample rate */
    double speed;               /* with realtime: this many times the sample rate; 0: 1 */

    const char *device_args;    /* SoapySDR args, "driver=rtlsdr,serial=..." ("" = first) */
    double rate_sps;            /* radio: required. replay: used when the file has no
                                   metadata (pass 0 unless the user gave one) */
    double center_freq_hz;      /* radio: required. replay: as rate_sps */
    const char *gain;           /* NULL/"": driver default; "auto": AGC; "40": overall dB;
                                   "LNA=32,VGA=20": per element */
    double ppm;                 /* frequency correction, 0: none */
    const char *antenna;        /* NULL/"": driver default */
    double bandwidth_hz;        /* 0: driver default */
    const char *settings;       /* "key=value,..." written with writeSetting; NULL/"" none */
    capture_overrun_t overrun;  /* what the producer does when every block is held */
    double watchdog_s;          /* radio: reopen when no samples for this long; 0: 5 s;
                                   < 0: off */
    int max_reopen;             /* radio: give up (CAPTURE_ERR_DEVICE) after this many
                                   failed reopen attempts in a row; 0: never give up */

    size_t block_samples;       /* 0: 65536 */
    size_t n_blocks;            /* pool size, >= 2; 0: 16 */
} capture_config_t;

typedef struct {
    uint64_t samples_in;        /* delivered in blocks */
    uint64_t samples_dropped;   /* produced but not delivered: ring full (consumer slow) */
    uint64_t samples_lost;      /* lost by the radio (overflow, reopen); an estimate */
    uint64_t blocks;            /* blocks delivered to the ring */
    uint64_t discontinuities;   /* blocks flagged CAPTURE_FLAG_DISCONTINUITY */
    uint64_t overflows;         /* SOAPY_SDR_OVERFLOW returns */
    uint64_t timeouts;          /* SOAPY_SDR_TIMEOUT returns */
    uint64_t read_errors;       /* other negative readStream returns */
    uint64_t watchdog_trips;    /* stalls detected */
    uint64_t reopens;           /* successful device reopens */
} capture_stats_t;

/* Opens the source (device made, tuned and its stream set up, or file opened) and
 * allocates the pool; logs the device's driver, antennas, gain elements and ranges, rate
 * ranges, native format and full scale. Returns NULL after logging what was wrong. */
capture_t *capture_create(const capture_config_t *cfg);
/* Starts the capture thread. Returns CAPTURE_OK or a negative code. */
int capture_start(capture_t *c);
/* Waits up to timeout_ms (< 0: forever) for the next block. On CAPTURE_OK *blk points to
 * a block the caller holds until capture_release_block(). Otherwise returns
 * CAPTURE_ERR_TIMEOUT, CAPTURE_END, CAPTURE_ERR_STOPPED, CAPTURE_ERR_DEVICE or
 * CAPTURE_ERR_SOURCE, the last four only once every block before them was handed out:
 * after capture_stop() the blocks already in the ring still come (drain, e.g. on SIGTERM),
 * then CAPTURE_ERR_STOPPED. Consumer thread only. */
int capture_next_block(capture_t *c, const capture_block_t **blk, int timeout_ms);
/* Returns a block to the pool. Blocks must be released in the order they were received.
 * Returns CAPTURE_OK or CAPTURE_ERR_ARG (not the oldest held block). */
int capture_release_block(capture_t *c, const capture_block_t *blk);
/* Asks the thread to stop, wakes every waiter (a blocked capture_next_block() returns
 * CAPTURE_ERR_STOPPED) and joins the thread, which notices within about 0.1 s (one radio
 * read timeout) unless the driver itself hangs (logged after 2 s). Idempotent; any thread.
 * Returns CAPTURE_OK. */
int capture_stop(capture_t *c);
/* Stops if needed, closes the device or file and frees everything. NULL-safe. */
void capture_destroy(capture_t *c);

/* A copy of the radio's samples as the driver delivered them, before conversion: n
 * samples of capture_native_format() at raw, the first with index first_sample_idx (the
 * index blocks use, so gaps show as jumps), received at about host_time_s (UTC). Called
 * on the capture thread after every successful radio read, also for samples the ring
 * had no room for; it must return quickly (copy and go: the radio is waiting). */
typedef void (*capture_tap_fn)(const void *raw, size_t n, uint64_t first_sample_idx,
                               double host_time_s, void *user);
/* Installs the tap; radio sources only, before capture_start(). Returns CAPTURE_OK or
 * CAPTURE_ERR_ARG (a file source, already started). */
int capture_set_tap(capture_t *c, capture_tap_fn fn, void *user);
/* The radio's stream format (CU8, CS8, CS16 or CF32: what the tap gets); a file source:
 * its sample format. UNKNOWN for NULL. */
iq_format_t capture_native_format(const capture_t *c);
/* The driver's full scale of that format (RTL-SDR CU8 128, a 12-bit CS16 radio 2048;
 * 1.0 for CF32); 0 when unknown (file sources). */
double capture_full_scale(const capture_t *c);

/* Counters (a consistent-enough snapshot; any thread). */
void capture_get_stats(const capture_t *c, capture_stats_t *out);
double capture_rate(const capture_t *c);        /* actual S/s */
double capture_center_freq(const capture_t *c); /* actual Hz, 0 if unknown */
/* Resolution of the source's samples: 8 (cu8, cs8), 16 (cs16 file), the converter's bits
 * for a radio streaming CS16 with another full scale (2048: 12), 0 for floats. */
unsigned capture_adc_bits(const capture_t *c);
/* Why the capture ended with CAPTURE_ERR_DEVICE/SOURCE ("" otherwise). */
const char *capture_error_message(const capture_t *c);

#endif
