/* spool: the station's bounded on-disk spool of batches for the network core (docs/ns.md
 * "Station side"). Licence: MIT.
 *
 * A batch (the JSON body sent to the core, seeds/000 §7.1.1.3: at most 100 frames) is
 * written and fsync'd before it is sent, and deleted only when the core acknowledges it,
 * so a core or link that is down for an hour, or a station restart, loses nothing.
 *
 * On disk, one directory (created 0700, flock()ed: one daemon per spool):
 *
 *   b00000000000000000042.batch   one batch: a header line, then the body
 *       "SFSPOOL 1 <seq> <nframes> <body_len> <fnv1a64 of body, 16 hex>\n" <body bytes>
 *   seq                            "next <N>\n": seq values below N may have been used
 *   lock                           flock()ed while a daemon owns the spool
 *
 * Files are written as <name>.tmp, fsync'd, renamed, and the directory fsync'd.
 *
 * seq: a uint64 per station that never repeats, also across restarts. The `seq` file holds
 * a lease: values are handed out up to the lease, and the lease is moved forward (written,
 * fsync'd) SPOOL_SEQ_LEASE at a time, so a crash skips at most a lease, never repeats. A
 * new directory starts at 1; an existing one without a readable `seq` file (deleted,
 * damaged) restarts above both its highest batch and the current time in µs (a value no
 * earlier run can have reached at 10 batches/s), with a warning.
 *
 * Spool files are hostile input on restart: a truncated, damaged or foreign file (bad
 * header, wrong length, checksum mismatch, name not matching its seq, > SPOOL_MAX_BODY) is
 * skipped with a log line naming the file and the reason and renamed to <name>.corrupt (kept
 * for inspection, never read again); leftover .tmp files of a crash are removed.
 *
 * Full: when a new batch would take the spool above max_frames, the OLDEST batches are
 * deleted until it fits (newest data wins: the oldest frames are the least useful, and
 * the core's anti-replay window may already have moved past them). Every
 * drop is counted (frames_dropped, batches_dropped) and logged as an error (at most one
 * line per 10 s, with the count since the last line).
 *
 * Not thread-safe: one thread (the core link's) owns a spool.
 */
#ifndef SIGFOX_SPOOL_H
#define SIGFOX_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define SPOOL_DEFAULT_MAX_FRAMES 100000
#define SPOOL_MAX_BODY (1u << 20) /* core refuses larger messages: docs/ns.md "Wire protocol" */
#define SPOOL_SEQ_LEASE 1024
#define SPOOL_MAGIC "SFSPOOL"

enum spool_error {
    SPOOL_OK = 0,
    SPOOL_ERR_ARG = -1,     /* NULL, seq not above the last one, body too large, nframes 0 */
    SPOOL_ERR_IO = -2,      /* a file could not be written, read or synced (see err/log) */
    SPOOL_ERR_NOMEM = -3,
    SPOOL_ERR_NOTFOUND = -4, /* no batch with that seq */
    SPOOL_ERR_CORRUPT = -5,  /* the file changed under us: skipped and renamed */
};

typedef struct {
    const char *dir;   /* required; created when missing */
    size_t max_frames; /* 0: SPOOL_DEFAULT_MAX_FRAMES */
} spool_config_t;

typedef struct {
    uint64_t seq;
    uint32_t nframes;
    size_t body_len;
} spool_entry_t;

typedef struct {
    size_t batches, frames;    /* waiting for an ack now */
    uint64_t batches_written;  /* since create */
    uint64_t batches_acked;
    uint64_t frames_acked;
    uint64_t batches_dropped;  /* spool full: oldest deleted */
    uint64_t frames_dropped;
    uint64_t files_corrupt;    /* skipped at start or on read */
    uint64_t write_errors;
    uint64_t next_seq;
} spool_stats_t;

typedef struct spool spool_t;

/* Opens (creates) the spool directory, takes its lock, loads what a previous run left.
 * Returns NULL with the reason in err (directory not creatable, locked by another
 * process, unreadable). */
spool_t *spool_create(const spool_config_t *cfg, char *err, size_t err_len);

/* Hands out the next seq (persisting a new lease when needed). Returns 0 or SPOOL_ERR_IO
 * (the lease could not be written: no seq is handed out, so none can ever repeat). */
int spool_next_seq(spool_t *sp, uint64_t *seq);

/* Writes one batch durably (tmp, fsync, rename, fsync dir). seq must be above every seq
 * pushed before. Drops the oldest batches first when it would not fit (see above).
 * Returns 0, SPOOL_ERR_ARG or SPOOL_ERR_IO (nothing stored; err says why). */
int spool_push(spool_t *sp, uint64_t seq, uint32_t nframes, const char *body, size_t len,
               char *err, size_t err_len);

/* Deletes the batch seq (the core acknowledged it). Returns 0 or SPOOL_ERR_NOTFOUND
 * (an ack for a batch that was already acked or dropped: harmless). */
int spool_ack(spool_t *sp, uint64_t seq);

/* Batches waiting, oldest first: index 0 .. spool_count()-1. */
size_t spool_count(const spool_t *sp);
int spool_entry(const spool_t *sp, size_t index, spool_entry_t *out);
/* Index of the first batch with seq > after (spool_count() when none). */
size_t spool_find_after(const spool_t *sp, uint64_t after);

/* Reads batch seq's body into a new NUL-terminated buffer (*body, caller frees; *len its
 * length), re-checking header and checksum. A damaged file is renamed .corrupt, dropped
 * from the spool and SPOOL_ERR_CORRUPT returned. */
int spool_read(spool_t *sp, uint64_t seq, char **body, size_t *len);

void spool_get_stats(const spool_t *sp, spool_stats_t *out);

/* Releases the lock and frees; files stay. NULL-safe. */
void spool_destroy(spool_t *sp);

#endif
