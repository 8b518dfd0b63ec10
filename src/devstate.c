/* devstate: per-device anti-replay state, written atomically. Licence: MIT. */
#include "devstate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "antireplay.h"
#include "errbuf.h"
#include "infile.h"
#include "log.h"

#define DEVSTATE_TMP_SUFFIX ".tmp"
#define DEVSTATE_LOCK_FILE "devices.lock"
#define DEVSTATE_HEADER "# sigfoxd device state, format 2"

struct devstate {
    pthread_mutex_t lock;       /* entries, n, cap, generation */
    pthread_mutex_t flush_lock; /* one writer at a time */
    devstate_entry_t *v;        /* sorted by ep_id */
    size_t n, cap;
    uint64_t generation; /* bumped by every change */
    uint64_t written;    /* generation last written to disk */
    char *dir;           /* NULL: memory only */
    char *path, *tmp_path;
    int lock_fd; /* flock()ed: one daemon per state directory */
};

const char *devstate_strerror(int code)
{
    switch (code) {
    case DEVSTATE_OK:
        return "success";
    case DEVSTATE_ERR_ARG:
        return "invalid argument";
    case DEVSTATE_ERR_IO:
        return "state file I/O error";
    case DEVSTATE_ERR_CORRUPT:
        return "state file is damaged";
    case DEVSTATE_ERR_NOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}

/* Index of the first entry with ID >= ep_id. */
static size_t lower_bound(const devstate_t *ds, uint32_t ep_id)
{
    size_t lo = 0, hi = ds->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->v[mid].ep_id < ep_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The entry of ep_id, inserted (zeroed) when missing; NULL when out of memory. */
static devstate_entry_t *find_or_insert(devstate_t *ds, uint32_t ep_id)
{
    size_t i = lower_bound(ds, ep_id);
    if (i < ds->n && ds->v[i].ep_id == ep_id)
        return &ds->v[i];
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? 2 * ds->cap : 64;
        devstate_entry_t *v = realloc(ds->v, cap * sizeof *v);
        if (!v)
            return NULL;
        ds->v = v;
        ds->cap = cap;
    }
    memmove(&ds->v[i + 1], &ds->v[i], (ds->n - i) * sizeof *ds->v);
    ds->n++;
    memset(&ds->v[i], 0, sizeof ds->v[i]);
    ds->v[i].ep_id = ep_id;
    return &ds->v[i];
}

static char *join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p)
        snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* Strict fields of the state file: what the writer produces and nothing else (no sign,
 * no blanks, no "nan"/"inf", exact hex widths), so that a hand edit or a storage fault is
 * refused rather than read as a different counter. */
static bool parse_dec_u64(const char *t, uint64_t *v)
{
    size_t n = strlen(t);
    if (n == 0 || n > 20 || strspn(t, "0123456789") != n || (n > 1 && t[0] == '0'))
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(t[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

/* digits hex digits exactly, or (up_to) 1..digits of them. */
static bool parse_hex(const char *t, size_t digits, bool up_to, uint64_t *v)
{
    size_t n = strlen(t);
    if (n == 0 || n > digits || (!up_to && n != digits) ||
        strspn(t, "0123456789abcdefABCDEF") != n)
        return false;
    *v = strtoull(t, NULL, 16);
    return true;
}

/* "SECONDS.MICROSECONDS" as written by "%.6f" (a finite, non-negative number). */
static bool parse_time(const char *t, double *v)
{
    size_t ip = strspn(t, "0123456789");
    if (ip == 0 || ip > 15 || (t[ip] != '\0' && (t[ip] != '.' || t[ip + 1] == '\0' ||
                                                  strspn(t + ip + 1, "0123456789") !=
                                                      strlen(t + ip + 1))))
        return false;
    *v = strtod(t, NULL);
    return true;
}

/* Splits line (without '\n') at single spaces into at most max fields. Returns the count,
 * or -1 when the line has other blanks or more fields. */
static int split_fields(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return -1;
        f[n++] = p;
        char *sp = strchr(p, ' ');
        if (!sp)
            break;
        *sp = '\0';
        p = sp + 1;
    }
    for (int i = 0; i < n; i++)
        if (!f[i][0] || strpbrk(f[i], "\t\r\v\f"))
            return -1;
    return n;
}

/* Parses the state file. Returns 0, DEVSTATE_ERR_CORRUPT (message names file and line),
 * DEVSTATE_ERR_IO or DEVSTATE_ERR_NOMEM. A missing file is an empty state. */
static int load(devstate_t *ds, char *err, size_t err_len)
{
    infile_lines_t r;
    if (access(ds->path, F_OK) != 0 && errno == ENOENT)
        return 0;
    if (infile_lines_open(&r, ds->path, "state file", INFILE_REGULAR, INFILE_MAX_STATE_BYTES,
                          256, err, err_len) != 0)
        return DEVSTATE_ERR_IO;
    bool ended = false;
    int rc = 0;
    const char *why = NULL;
    ssize_t len;
    char ioerr[512] = "";
    while (rc == 0 && (len = infile_lines_next(&r, ioerr, sizeof ioerr)) > 0) {
        char *line = r.line;
        if (line[len - 1] != '\n') {
            why = "line is cut short or too long";
            break;
        }
        line[len - 1] = '\0';
        if (line[0] == '#')
            continue;
        if (ended) {
            why = "text after the 'end' line";
            break;
        }
        char *f[8];
        int nf = split_fields(line, f, 8);
        uint64_t count;
        if (nf == 2 && strcmp(f[0], "end") == 0) {
            if (!parse_dec_u64(f[1], &count)) {
                why = "expected \"end COUNT\"";
                break;
            }
            if (count != ds->n) {
                why = "'end' count does not match the number of devices";
                break;
            }
            ended = true;
            continue;
        }
        uint64_t id, mc, messages, replays, seen, recent;
        double last_time;
        if (nf != 7 || !parse_hex(f[0], 8, false, &id) || !parse_dec_u64(f[1], &mc) ||
            mc >= UL_MC_MODULO || !parse_dec_u64(f[2], &messages) ||
            !parse_dec_u64(f[3], &replays) || !parse_dec_u64(f[4], &seen) ||
            seen > (uint64_t)INT64_MAX || !parse_time(f[5], &last_time) ||
            !parse_hex(f[6], 16, true, &recent)) {
            why = "expected \"EPID LAST_MC MESSAGES REPLAYS LAST_SEEN LAST_TIME RECENT\" (8 hex "
                  "digits, counter 0..4095, unsigned integers, seconds, hex bitmap)";
            break;
        }
        if (ds->n && ds->v[ds->n - 1].ep_id >= id) {
            why = "devices are not in increasing order (duplicate or edited file)";
            break;
        }
        devstate_entry_t *e = find_or_insert(ds, (uint32_t)id);
        if (!e) {
            errbuf_set(err, err_len, "out of memory loading %s", ds->path);
            rc = DEVSTATE_ERR_NOMEM;
            break;
        }
        e->have_last = true;
        e->last_mc = (uint16_t)mc;
        e->messages = messages;
        e->replays = replays;
        e->last_seen_unix = (int64_t)seen;
        e->last_time_s = last_time;
        e->recent = recent;
    }
    unsigned lineno = r.lineno;
    infile_lines_close(&r);
    if (rc == 0 && !why && ioerr[0]) {
        if (strstr(ioerr, "line longer")) {
            why = "line is cut short or too long";
        } else {
            errbuf_set(err, err_len, "cannot read %s", ioerr);
            return DEVSTATE_ERR_IO;
        }
    }
    if (rc == 0 && !why && !ended)
        why = "no 'end' line: the file is truncated";
    if (why) {
        errbuf_set(err, err_len,
                   "%s:%u: %s; refusing to start with damaged anti-replay state (restore it, or "
                   "delete the file to start every device afresh)",
                   ds->path, lineno, why);
        rc = DEVSTATE_ERR_CORRUPT;
    }
    return rc;
}

devstate_t *devstate_create(const char *dir, char *err, size_t err_len)
{
    devstate_t *ds = calloc(1, sizeof *ds);
    if (!ds) {
        errbuf_set(err, err_len, "out of memory");
        return NULL;
    }
    ds->lock_fd = -1;
    pthread_mutex_init(&ds->lock, NULL);
    pthread_mutex_init(&ds->flush_lock, NULL);
    if (!dir || !dir[0])
        return ds;

    ds->dir = strdup(dir);
    ds->path = join(dir, DEVSTATE_FILE);
    ds->tmp_path = join(dir, DEVSTATE_FILE DEVSTATE_TMP_SUFFIX);
    char *lock_path = join(dir, DEVSTATE_LOCK_FILE);
    if (!ds->dir || !ds->path || !ds->tmp_path || !lock_path) {
        errbuf_set(err, err_len, "out of memory");
        goto fail;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        errbuf_set(err, err_len, "cannot create state directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    ds->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (ds->lock_fd < 0) {
        errbuf_set(err, err_len, "cannot open %s: %s", lock_path, strerror(errno));
        goto fail;
    }
    /* Two daemons sharing one state would each accept the other's counters. */
    if (flock(ds->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        errbuf_set(err, err_len, "state directory %s is in use by another sigfoxd (%s)", dir,
                   strerror(errno));
        goto fail;
    }
    /* A .tmp file is what a crash during devstate_flush() leaves; the real file is intact. */
    if (unlink(ds->tmp_path) == 0)
        log_warn("Removed an unfinished state write, file: %s", ds->tmp_path);
    if (load(ds, err, err_len) != 0)
        goto fail;
    free(lock_path);
    log_info("Device state loaded, file: %s, devices: %zu", ds->path, ds->n);
    return ds;
fail:
    free(lock_path);
    devstate_destroy(ds);
    return NULL;
}

int devstate_check(devstate_t *ds, uint32_t ep_id, uint16_t mc, unsigned daily_messages,
                   double time_s, int64_t now_unix, devstate_entry_t *entry)
{
    if (!ds)
        return DEVSTATE_ERR_ARG;
    mc %= UL_MC_MODULO;
    pthread_mutex_lock(&ds->lock);
    devstate_entry_t *e = find_or_insert(ds, ep_id);
    if (!e) {
        pthread_mutex_unlock(&ds->lock);
        return DEVSTATE_ERR_NOMEM;
    }
    if (entry)
        *entry = *e;
    int verdict;
    if (!e->have_last || antireplay_accept(e->last_mc, mc, daily_messages)) {
        /* Forward: the window moves; the bitmap follows it (bit 0 = the old last). */
        unsigned shift = e->have_last ? ((unsigned)mc - e->last_mc) % UL_MC_MODULO : 0;
        e->recent =
            shift == 0 || shift > DEVSTATE_LATE_SPAN ? 0 : ((e->recent << 1 | 1u) << (shift - 1));
        e->have_last = true;
        e->last_mc = mc;
        e->last_time_s = time_s;
        verdict = DEVSTATE_NEW;
    } else {
        /* Behind the window: late only if recent, on air before the last one and new. */
        unsigned back = ((unsigned)e->last_mc - mc) % UL_MC_MODULO; /* 1 .. 4095 */
        uint64_t bit = back >= 1 && back <= DEVSTATE_LATE_SPAN ? 1ull << (back - 1) : 0;
        if (bit && time_s < e->last_time_s && !(e->recent & bit)) {
            e->recent |= bit;
            verdict = DEVSTATE_LATE;
        } else {
            verdict = DEVSTATE_REPLAY;
        }
    }
    if (verdict == DEVSTATE_REPLAY) {
        e->replays++;
    } else {
        e->messages++;
        e->last_seen_unix = now_unix;
    }
    ds->generation++;
    pthread_mutex_unlock(&ds->lock);
    return verdict;
}

bool devstate_dirty(const devstate_t *ds)
{
    if (!ds)
        return false;
    pthread_mutex_lock((pthread_mutex_t *)&ds->lock);
    bool dirty = ds->generation != ds->written;
    pthread_mutex_unlock((pthread_mutex_t *)&ds->lock);
    return dirty;
}

/* Writes entries to the tmp file, syncs it, renames it over the state file and syncs the
 * directory so that the rename itself is durable. */
static int write_atomically(devstate_t *ds, const devstate_entry_t *v, size_t n, char *err,
                            size_t err_len)
{
    int fd = open(ds->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        errbuf_set(err, err_len, "cannot write %s: %s", ds->tmp_path, strerror(errno));
        return DEVSTATE_ERR_IO;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        errbuf_set(err, err_len, "cannot write %s: %s", ds->tmp_path, strerror(errno));
        close(fd);
        unlink(ds->tmp_path);
        return DEVSTATE_ERR_IO;
    }
    fprintf(f, DEVSTATE_HEADER
            "\n# ep_id last_mc messages replays last_seen_unix last_time_s recent\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%08" PRIX32 " %u %" PRIu64 " %" PRIu64 " %" PRId64 " %.6f %016" PRIX64 "\n",
                v[i].ep_id, (unsigned)v[i].last_mc, v[i].messages, v[i].replays,
                v[i].last_seen_unix, v[i].last_time_s, v[i].recent);
    fprintf(f, "end %zu\n", n);
    int failed = fflush(f) != 0 || ferror(f) || fsync(fd) != 0;
    int saved = errno;
    if (fclose(f) != 0 && !failed) {
        failed = 1;
        saved = errno;
    }
    if (failed) {
        errbuf_set(err, err_len, "cannot write %s: %s", ds->tmp_path, strerror(saved));
        unlink(ds->tmp_path);
        return DEVSTATE_ERR_IO;
    }
    if (rename(ds->tmp_path, ds->path) != 0) {
        errbuf_set(err, err_len, "cannot replace %s: %s", ds->path, strerror(errno));
        unlink(ds->tmp_path);
        return DEVSTATE_ERR_IO;
    }
    int dfd = open(ds->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: some file systems refuse fsync on directories */
        close(dfd);
    }
    return 0;
}

int devstate_flush(devstate_t *ds, char *err, size_t err_len)
{
    if (!ds)
        return DEVSTATE_ERR_ARG;
    pthread_mutex_lock(&ds->flush_lock);
    /* Snapshot under the entry lock, write outside it: the DSP thread's devstate_check()
     * must not wait for an fsync. */
    pthread_mutex_lock(&ds->lock);
    uint64_t gen = ds->generation;
    int rc = 0;
    if (!ds->dir || gen == ds->written) {
        ds->written = ds->dir ? ds->written : gen;
        pthread_mutex_unlock(&ds->lock);
        pthread_mutex_unlock(&ds->flush_lock);
        return 0;
    }
    size_t n = ds->n;
    devstate_entry_t *snap = malloc((n ? n : 1) * sizeof *snap);
    if (snap && n)
        memcpy(snap, ds->v, n * sizeof *snap);
    pthread_mutex_unlock(&ds->lock);
    if (!snap) {
        errbuf_set(err, err_len, "out of memory writing %s", ds->path);
        rc = DEVSTATE_ERR_NOMEM;
    } else {
        rc = write_atomically(ds, snap, n, err, err_len);
    }
    free(snap);
    if (rc == 0) {
        pthread_mutex_lock(&ds->lock);
        ds->written = gen;
        pthread_mutex_unlock(&ds->lock);
    }
    pthread_mutex_unlock(&ds->flush_lock);
    return rc;
}

int devstate_get(const devstate_t *ds, uint32_t ep_id, devstate_entry_t *out)
{
    if (!ds)
        return -1;
    pthread_mutex_t *lock = (pthread_mutex_t *)&ds->lock;
    pthread_mutex_lock(lock);
    size_t i = lower_bound(ds, ep_id);
    int rc = -1;
    if (i < ds->n && ds->v[i].ep_id == ep_id) {
        if (out)
            *out = ds->v[i];
        rc = 0;
    }
    pthread_mutex_unlock(lock);
    return rc;
}

size_t devstate_list(const devstate_t *ds, devstate_entry_t *out, size_t cap)
{
    if (!ds)
        return 0;
    pthread_mutex_t *lock = (pthread_mutex_t *)&ds->lock;
    pthread_mutex_lock(lock);
    size_t n = ds->n;
    size_t copy = n < cap ? n : cap;
    if (out && copy) /* ds->v is NULL before the first device (memcpy from NULL is UB) */
        memcpy(out, ds->v, copy * sizeof *out);
    pthread_mutex_unlock(lock);
    return n;
}

void devstate_destroy(devstate_t *ds)
{
    if (!ds)
        return;
    if (ds->lock_fd >= 0)
        close(ds->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&ds->lock);
    pthread_mutex_destroy(&ds->flush_lock);
    free(ds->v);
    free(ds->dir);
    free(ds->path);
    free(ds->tmp_path);
    free(ds);
}
