/* recorder: the live radio input to disk as SigMF (issue 14). Licence: MIT.
 *
 * Two products, each optional (docs/iq-formats.md "Recordings of the live input"):
 *
 *   record   the raw capture as the radio delivers it (cu8, ci8, ci16_le or cf32_le: no
 *            conversion), in rotating files DIR/sigfoxd-rec-<UTC>-<seq>.sigmf-{meta,data}
 *            of at most record_max_bytes of samples each; a new file also starts after
 *            samples were lost (so that a file is one contiguous stretch of the stream);
 *            at most record_max_files recordings stay in DIR, the oldest are deleted.
 *            Every CRC-valid frame becomes a SigMF annotation (recorder_frame) in the
 *            meta of the file that holds its first sample.
 *   snippets a short SigMF file per burst the receiver detected but did not decode
 *            (recorder_undecoded), DIR/sigfoxd-snip-<UTC>-<seq>, cut with a margin from a
 *            ring of the most recent input; rate-limited and capped in number.
 *
 * Threads and blocking. recorder_tap() runs on the capture thread (capture_tap_fn): it
 * only copies the read into a bounded write queue and into the snippet ring, under
 * mutexes that are held for memcpy's only; when the queue is full (slow or failed disk)
 * the samples are dropped from the recording and counted, never waited for. One writer
 * thread of the recorder does every file operation. recorder_frame() and
 * recorder_undecoded() run on the DSP thread: the first queues a small record, the second
 * copies the snippet out of the ring (at most the ring, a few MB, rate-limited).
 *
 * Memory: the write queue holds RECORDER_QUEUE_S seconds of samples (at most 64 MiB),
 * the snippet ring RECORDER_HISTORY_S seconds (at most 128 MiB), both allocated in
 * recorder_create(); recorder_get_stats() reports both sizes.
 */
#ifndef SIGFOX_RECORDER_H
#define SIGFOX_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#include "iqfile.h"
#include "rx.h"

#define RECORDER_QUEUE_S 4.0   /* write queue: how long a stalled disk is bridged */
#define RECORDER_HISTORY_S 8.0 /* snippet ring: longest burst track + margins + DSP lag */
#define RECORDER_ANNOTATIONS_PER_FILE 10000 /* keeps a meta well under the 16 MiB readers take */
#define RECORDER_EXTENSION "sigfoxd"        /* the SigMF extension namespace of our fields */
#define RECORDER_EXTENSION_VERSION "1.0.0"

typedef struct recorder recorder_t;

typedef struct {
    /* The stream, as recorder_tap() gets it. */
    iq_format_t format;    /* CU8, CS8, CS16 or CF32 */
    double rate_sps;       /* > 0 */
    double center_freq_hz; /* 0: unknown (no core:frequency) */
    double full_scale;     /* the driver's full scale of format; > 0: sigfoxd:full_scale */
    const char *gain;      /* the gain setting, sigfoxd:gain in captures[0]; NULL/"": none */
    const char *hw;        /* core:hw (the SoapySDR device args); NULL/"": none */

    const char *record_dir;    /* NULL/"": no recording */
    uint64_t record_max_bytes; /* sample bytes per file, >= 1 MiB */
    unsigned record_max_files; /* recordings kept in record_dir, >= 1 */

    const char *snippet_dir;       /* NULL/"": no snippets */
    unsigned snippet_max_files;    /* snippets in snippet_dir at most (earlier runs' count) */
    double snippet_min_interval_s; /* stream time between two snippets, >= 0 */
    double snippet_margin_s;       /* kept before and after the detector's burst, 0..2 */
} recorder_config_t;

typedef struct {
    uint64_t record_files;           /* recordings started */
    uint64_t record_files_deleted;   /* oldest recordings removed (record_max_files) */
    uint64_t record_bytes;           /* sample bytes written */
    uint64_t record_samples_dropped; /* not recorded: queue full, disk error */
    uint64_t record_write_errors;    /* failed opens and writes (data and meta) */
    uint64_t annotations;            /* frames annotated */
    uint64_t annotations_dropped;    /* frames not annotated (sample not recorded, queue or
                                        per-file limit) */
    uint64_t snippets;               /* snippets written */
    uint64_t snippets_dropped;       /* undecoded bursts without a snippet: rate limit,
                                        max count, queue, history too short, write error */
    uint64_t snippet_write_errors;
    size_t queue_bytes;   /* memory of the write queue */
    size_t history_bytes; /* memory of the snippet ring */
} recorder_stats_t;

/* Checks the directories (created when missing, must be writable: a probe file is made
 * and removed) and the sizes, allocates the buffers and starts the writer thread.
 * Returns NULL with a message naming the option and the problem in err. */
recorder_t *recorder_create(const recorder_config_t *cfg, char *err, size_t err_len);
/* capture_tap_fn: n samples of cfg.format, the first at stream index first_idx. */
void recorder_tap(const void *raw, size_t n, uint64_t first_idx, double host_time_s, void *user);
/* A decoded frame (CRC-valid ones are annotated; others are ignored). DSP thread. */
void recorder_frame(recorder_t *r, const rx_frame_t *f);
/* A burst the receiver detected and did not decode: a snippet when allowed. DSP thread. */
void recorder_undecoded(recorder_t *r, const rx_burst_t *b);
void recorder_get_stats(const recorder_t *r, recorder_stats_t *out);
/* Writes what is queued, finishes every meta (annotations) and frees. Call after the
 * capture thread and the DSP thread are done. NULL-safe. */
void recorder_destroy(recorder_t *r);

#endif
