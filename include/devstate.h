/* devstate: per-device anti-replay state that survives restarts. Licence: MIT.
 *
 * For every device that sent an authenticated message: the last validated message
 * counter (seeds/000 §9.1.1 window, antireplay.h), how many messages were accepted and how
 * many replays were refused, and when it was last heard.
 *
 * Late delivery: the receiver may hand over a message after a newer one of the same device
 * (a single-frame message waits for replicas that never come while the next message's
 * window closes first). The spec's window would refuse it as old. A message whose counter
 * is at most DEVSTATE_LATE_SPAN behind the last one, that was on air *before* the message
 * that set the last counter, and that was not accepted yet (a bitmap remembers the last
 * DEVSTATE_LATE_SPAN counters) is new but late: accepted without moving the window. A
 * replay is sent after the original, so it never qualifies.
 *
 * Persistence: one text file DIR/devices.state, rewritten whole and atomically: the new
 * content goes to DIR/devices.state.tmp, which is fsync()ed, rename()d over the old file,
 * and the directory is fsync()ed. A crash at any point leaves either the old or the new
 * file, never a mix; a leftover .tmp file is ignored and removed at load. The file ends
 * with an "end N" line so that a damaged file (storage fault, hand edit) is detected and
 * refused with the line that is wrong, rather than silently resetting anti-replay.
 *
 *   # sigfoxd device state, format 2
 *   # ep_id last_mc messages replays last_seen_unix last_time_s recent
 *   FEDCBA98 1650 12 1 1732623000 1732622999.250000 0000000000000005
 *   end 1
 *
 * Changes are kept in memory and written by devstate_flush(). The daemon calls it after
 * every processed block that accepted messages and before it publishes them (so a
 * published counter is always durable), on a timer for other changes, and at exit; every
 * write costs an fsync, so one write covers all of a block's messages.
 *
 * Thread-safe: every function takes an internal lock.
 */
#ifndef SIGFOX_DEVSTATE_H
#define SIGFOX_DEVSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEVSTATE_FILE "devices.state"
#define DEVSTATE_LATE_SPAN 64 /* counters behind the last one that may still arrive late */

enum devstate_error {
    DEVSTATE_OK = 0,
    DEVSTATE_ERR_ARG = -1,     /* NULL argument */
    DEVSTATE_ERR_IO = -2,      /* cannot read/write the state directory or file */
    DEVSTATE_ERR_CORRUPT = -3, /* the state file is damaged */
    DEVSTATE_ERR_NOMEM = -4,
};
const char *devstate_strerror(int code);

typedef struct {
    uint32_t ep_id;
    bool have_last;
    uint16_t last_mc;       /* last validated message counter (valid when have_last) */
    uint64_t messages;      /* accepted (new) messages, late ones included */
    uint64_t replays;       /* refused: counter outside the window */
    int64_t last_seen_unix; /* seconds since 1970 of the last accepted message, 0: never */
    double last_time_s;     /* on-air time of the message that set last_mc (see check) */
    uint64_t recent;        /* bit k: counter last_mc - 1 - k was accepted */
} devstate_entry_t;

/* Outcome of devstate_check(). */
typedef enum {
    DEVSTATE_NEW = 0,    /* counter inside the window: a new message, window moved */
    DEVSTATE_REPLAY = 1, /* counter outside the window: replayed (or far out of sequence) */
    DEVSTATE_LATE = 2,   /* new but delivered after a newer one: accepted, window kept */
} devstate_verdict_t;

typedef struct devstate devstate_t;

/* Opens the state in dir (created if missing, mode 0750) and loads DIR/devices.state when it
 * exists. dir NULL or "": in memory only (replays, tests). Returns the handle or NULL with a
 * message naming the directory/file (and line) in err. */
devstate_t *devstate_create(const char *dir, char *err, size_t err_len);

/* Anti-replay decision for an authenticated message (ep_id, mc) of a device allowed
 * daily_messages per day (window max(20, 3 x daily_messages)). The first message of an
 * unknown device is new. time_s is when the message was on air (its first frame), on a
 * clock that later messages never go back on: UTC seconds live, stream seconds in a
 * replay. Updates the entry (and marks the state dirty) either way; entry (may be NULL)
 * receives the state before the update, so entry->last_mc is the counter the decision
 * compared against. now_unix stamps last_seen. Returns a devstate_verdict_t, or
 * DEVSTATE_ERR_ARG / DEVSTATE_ERR_NOMEM. */
int devstate_check(devstate_t *ds, uint32_t ep_id, uint16_t mc, unsigned daily_messages,
                   double time_s, int64_t now_unix, devstate_entry_t *entry);

/* Writes the state when it changed since the last write (atomically, see above).
 * Returns 0 (also when there was nothing to do or in memory only) or DEVSTATE_ERR_IO with
 * the reason in err; the previous file is then intact and the state stays dirty. */
int devstate_flush(devstate_t *ds, char *err, size_t err_len);
/* True when there are changes not yet written. */
bool devstate_dirty(const devstate_t *ds);

/* Copies the entry of ep_id. Returns 0, or -1 when the device is unknown. */
int devstate_get(const devstate_t *ds, uint32_t ep_id, devstate_entry_t *out);
/* Number of devices, and a snapshot of all of them sorted by ep_id: copies at most cap
 * entries into out and returns the total count. */
size_t devstate_list(const devstate_t *ds, devstate_entry_t *out, size_t cap);

/* Frees the handle without writing (call devstate_flush() first). NULL-safe. */
void devstate_destroy(devstate_t *ds);

#endif
