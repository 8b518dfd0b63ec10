/* recorder: the live radio input to disk as SigMF. Licence: MIT.
 *
 * Data path:  capture thread --recorder_tap--> write queue (byte ring + chunk list)
 *                                           \-> snippet ring (the last seconds)
 *             writer thread: queue -> current file; annotations -> metas; snippet jobs.
 * The write queue is a byte ring of `qcap` bytes with a list of chunks (stream index,
 * samples, UTC of the first); contiguous reads extend the last chunk. The writer copies a
 * piece of the oldest chunk out under the lock and writes it without the lock.
 */
#define _GNU_SOURCE
#include "recorder.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "framejson.h"
#include "log.h"
#include "timeutil.h"

#ifndef SIGFOXD_VERSION
#define SIGFOXD_VERSION "unknown"
#endif

#define QUEUE_MAX_BYTES ((size_t)64 << 20)
#define QUEUE_MIN_BYTES ((size_t)1 << 20)
#define HISTORY_MAX_BYTES ((size_t)128 << 20)
#define MAX_CHUNKS 4096                 /* queued stretches (a gap starts a new one) */
#define WRITE_PIECE ((size_t)1 << 20)   /* bytes the writer takes per turn */
#define ANN_QUEUE 1024                  /* frames waiting for the writer */
#define ANN_PENDING 4096                /* frames whose samples the writer has not reached yet */
#define OPEN_FILES 32                   /* recent recordings that still take annotations */
#define HOLD_S 30.0                     /* ... for this long (stream time) after their end */
#define META_EVERY_S 2.0                /* a changed meta is rewritten at most this often */
#define RETRY_S 5.0                     /* after a write error, the next file this much later */
#define SNIPPET_JOBS 4                  /* snippets cut and waiting to be written */
#define SNIPPET_FRAME_BITS 210.0        /* the longest uplink frame and its tail, in symbols */
#define SNIPPET_SLICE ((size_t)1 << 20) /* bytes copied out of the ring per lock */
#define NAME_MAX_LEN 96
#define REC_PREFIX "sigfoxd-rec-"
#define SNIP_PREFIX "sigfoxd-snip-"
#define SIGMF_VERSION "1.0.0"
#define LOG_BURST 5 /* error lines per minute per kind */

typedef struct {
    uint64_t idx; /* stream index of the first sample */
    size_t n;     /* samples */
    double utc;   /* of the first sample */
} chunk_t;

/* A frame to annotate. */
typedef struct {
    uint64_t idx, count;
    double freq_hz, snr_db, rssi_dbfs;
    int baud, rank;
    uint32_t ep_id;
    uint16_t mc;
} ann_t;

/* A snippet cut from the ring, waiting for the writer. */
typedef struct {
    uint8_t *data;
    uint64_t first_idx, n; /* samples in data */
    double utc;            /* of data's first sample */
    rx_burst_t burst;
} snip_t;

/* A recording of this run that may still take annotations. */
typedef struct {
    char base[PATH_MAX]; /* without .sigmf-meta / .sigmf-data */
    uint64_t first_idx, n;
    double utc;
    int fd;           /* data file while it is the current one, else -1 */
    json_object *ann; /* annotations (array) */
    bool dirty;       /* annotations not in the meta on disk yet */
    double meta_mono; /* when the meta was last written */
} recfile_t;

struct recorder {
    recorder_config_t cfg;
    char *record_dir, *snippet_dir, *gain, *hw;
    size_t sbytes; /* bytes per sample */

    /* write queue and jobs: mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t *q;
    size_t qcap, qhead, qlen; /* bytes: ring of qcap, oldest at qhead */
    chunk_t chunks[MAX_CHUNKS];
    size_t chead, clen;
    bool qgap; /* the tap dropped samples: the next read starts a new chunk */
    ann_t annq[ANN_QUEUE];
    size_t nannq;
    snip_t jobs[SNIPPET_JOBS];
    size_t njobs;
    bool stop;

    /* snippet ring: hmu */
    pthread_mutex_t hmu;
    uint8_t *hist;
    size_t hcap;           /* samples */
    uint64_t hstart, hend; /* stream indexes held: [hstart, hend) */
    uint64_t anchor_idx;   /* the last read: its index and UTC */
    double anchor_utc;

    /* DSP thread only */
    double last_snip_t;
    bool have_snip;
    unsigned snip_budget; /* snippets that may still be written (max minus existing) */
    bool told_full;

    /* writer thread only */
    pthread_t thread;
    bool started;
    uint8_t *wbuf;
    recfile_t *files[OPEN_FILES]; /* oldest first; the last may be the current one */
    size_t nfiles;
    bool have_cur;       /* files[nfiles-1] is open for writing */
    uint64_t stream_end; /* index after the last sample the writer has seen */
    double retry_mono;   /* after an error: no new file before this */
    char **kept;         /* recordings in record_dir, oldest first (names) */
    size_t nkept, capkept;
    unsigned seq, snip_seq;
    ann_t pending[ANN_PENDING];
    size_t npending;
    log_ratelimit_t rl_write, rl_snip;

    /* counters (any thread) */
    _Atomic uint64_t files_started, files_deleted, bytes, dropped, werrors, anns, anns_dropped,
        snips, snips_dropped, snip_werrors;
};

static void add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- files ------------------------------------------------------------------------------ */

/* Writes all of buf to fd (short writes and EINTR continue). Returns 0 or -1 (errno). */
static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return -1;
        }
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

/* text to PATH atomically (PATH.tmp, then rename). Returns 0 or -1 with errno. */
static int write_file_atomic(const char *path, const char *text)
{
    char tmp[PATH_MAX + 8];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, text, strlen(text));
    int e = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0) {
        unlink(tmp);
        errno = e;
    }
    return rc;
}

/* "YYYYMMDDTHHMMSSZ" of a UTC time (file names sort in time order). */
static void compact_utc(double utc, char *out, size_t len)
{
    time_t t = (time_t)floor(utc > 0 ? utc : 0);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y%m%dT%H%M%SZ", &tm);
}

/* Makes dir when missing and checks that it is a directory this process can create files
 * in (a probe file, made and removed: access() says yes to root on a read-only mount).
 * what names the option in messages. */
static int check_dir(const char *dir, const char *what, char *err, size_t err_len)
{
    /* messages quote at most 200 characters of the path (a log line has its limit) */
    int ql = strlen(dir) > 200 ? 200 : (int)strlen(dir);
    const char *more = strlen(dir) > 200 ? "..." : "";
    if (strlen(dir) > PATH_MAX - NAME_MAX_LEN - 16) {
        snprintf(err, err_len, "%s: path too long (%zu characters)", what, strlen(dir));
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0755) != 0) {
            snprintf(err, err_len, "%s: cannot use or create directory '%.*s%s': %s", what, ql, dir,
                     more, strerror(errno));
            return -1;
        }
        if (stat(dir, &st) != 0) {
            snprintf(err, err_len, "%s: '%.*s%s': %s", what, ql, dir, more, strerror(errno));
            return -1;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "%s: '%.*s%s' exists and is not a directory", what, ql, dir, more);
        return -1;
    }
    char probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%s/.sigfoxd-probe-%ld", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, err_len, "%s: directory '%.*s%s' is not writable: %s", what, ql, dir, more,
                 strerror(errno));
        return -1;
    }
    close(fd);
    unlink(probe);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* Base names (dir/name without extension) of our files with prefix in dir, sorted (= in
 * time order); every meta or data file counts once. Returns the count, -1 on memory. */
static long scan_dir(const char *dir, const char *prefix, char ***out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    long rc = 0;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t len = strlen(nm);
        bool meta = has_suffix(nm, ".sigmf-meta"), data = has_suffix(nm, ".sigmf-data");
        if (strncmp(nm, prefix, strlen(prefix)) != 0 || (!meta && !data) || len > NAME_MAX_LEN)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                rc = -1;
                break;
            }
            v = nv;
            cap = nc;
        }
        if (asprintf(&v[n], "%s/%.*s", dir, (int)(len - strlen(".sigmf-meta")), nm) < 0) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n > 1) {
        qsort(v, n, sizeof *v, cmp_str);
        size_t k = 1; /* NAME.sigmf-meta and NAME.sigmf-data: one entry */
        for (size_t i = 1; i < n; i++) {
            if (strcmp(v[i], v[k - 1]) == 0)
                free(v[i]);
            else
                v[k++] = v[i];
        }
        n = k;
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return -1;
    }
    *out = v;
    return (long)n;
}

/* ---- SigMF metadata ------------------------------------------------------------------- */

/* Whole numbers as JSON integers, as SigMF examples write them. */
static json_object *num(double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_object_new_int64((int64_t)v);
    return json_object_new_double(v);
}

static int cmp_ann(const void *a, const void *b)
{
    const json_object *x = *(const json_object *const *)a, *y = *(const json_object *const *)b;
    json_object *vx = NULL, *vy = NULL;
    json_object_object_get_ex(x, "core:sample_start", &vx);
    json_object_object_get_ex(y, "core:sample_start", &vy);
    int64_t p = json_object_get_int64(vx), q = json_object_get_int64(vy);
    return p < q ? -1 : p > q;
}

/* The meta of a recording or snippet: global (datatype, rate, the sigfoxd extension),
 * captures[0] (start, global index, datetime, frequency, gain) and annotations (sorted by
 * core:sample_start; ann is shared, not consumed). Returns the JSON text (caller frees)
 * or NULL on memory. */
static char *meta_text(const recorder_t *r, uint64_t first_idx, double utc, json_object *ann,
                       const char *description)
{
    json_object *root = json_object_new_object(), *g = json_object_new_object();
    json_object *caps = json_object_new_array(), *c0 = json_object_new_object();
    json_object *exts = json_object_new_array(), *ext = json_object_new_object();
    char *text = NULL;
    if (!root || !g || !caps || !c0 || !exts || !ext) {
        json_object_put(root);
        json_object_put(g);
        json_object_put(caps);
        json_object_put(c0);
        json_object_put(exts);
        json_object_put(ext);
        return NULL;
    }
    json_object_object_add(root, "global", g);
    json_object_object_add(root, "captures", caps);
    json_object_array_add(caps, c0);
    json_object_object_add(g, "core:datatype",
                           json_object_new_string(iq_sigmf_datatype(r->cfg.format)));
    json_object_object_add(g, "core:version", json_object_new_string(SIGMF_VERSION));
    json_object_object_add(g, "core:sample_rate", num(r->cfg.rate_sps));
    json_object_object_add(g, "core:num_channels", json_object_new_int(1));
    json_object_object_add(g, "core:recorder", json_object_new_string("sigfoxd " SIGFOXD_VERSION));
    json_object_object_add(g, "core:description", json_object_new_string(description));
    if (r->hw && r->hw[0])
        json_object_object_add(g, "core:hw", json_object_new_string(r->hw));
    json_object_object_add(ext, "name", json_object_new_string(RECORDER_EXTENSION));
    json_object_object_add(ext, "version", json_object_new_string(RECORDER_EXTENSION_VERSION));
    json_object_object_add(ext, "optional", json_object_new_boolean(1));
    json_object_array_add(exts, ext);
    json_object_object_add(g, "core:extensions", exts);
    if (r->cfg.full_scale > 0)
        json_object_object_add(g, RECORDER_EXTENSION ":full_scale", num(r->cfg.full_scale));
    json_object_object_add(c0, "core:sample_start", json_object_new_int64(0));
    json_object_object_add(c0, "core:global_index", json_object_new_int64((int64_t)first_idx));
    char when[40];
    if (iq_format_datetime(utc, when, sizeof when))
        json_object_object_add(c0, "core:datetime", json_object_new_string(when));
    if (r->cfg.center_freq_hz > 0)
        json_object_object_add(c0, "core:frequency", num(r->cfg.center_freq_hz));
    if (r->gain && r->gain[0])
        json_object_object_add(c0, RECORDER_EXTENSION ":gain", json_object_new_string(r->gain));
    if (ann) {
        json_object_array_sort(ann, cmp_ann);
        json_object_object_add(root, "annotations", json_object_get(ann));
    } else {
        json_object_object_add(root, "annotations", json_object_new_array());
    }
    const char *s =
        json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
    if (s)
        text = strdup(s);
    json_object_put(root);
    return text;
}

/* One annotation: sample_start relative to the file, count, the band from the carrier
 * (+- the symbol rate: the D-BPSK main lobe) and label; the sigfoxd fields are added by
 * the caller. */
static json_object *annotation(uint64_t start, uint64_t count, double freq_hz, int baud,
                               const char *label)
{
    json_object *a = json_object_new_object();
    if (!a)
        return NULL;
    json_object_object_add(a, "core:sample_start", json_object_new_int64((int64_t)start));
    json_object_object_add(a, "core:sample_count", json_object_new_int64((int64_t)count));
    json_object_object_add(a, "core:freq_lower_edge", framejson_number(freq_hz - baud, 1));
    json_object_object_add(a, "core:freq_upper_edge", framejson_number(freq_hz + baud, 1));
    json_object_object_add(a, "core:label", json_object_new_string(label));
    json_object_object_add(a, RECORDER_EXTENSION ":carrier_hz", framejson_number(freq_hz, 1));
    json_object_object_add(a, RECORDER_EXTENSION ":baud", json_object_new_int(baud));
    return a;
}

/* ---- the recording (writer thread) ------------------------------------------------------ */

static void log_write_error(recorder_t *r, const char *what, const char *path)
{
    unsigned long long quiet = 0;
    int e = errno;
    if (log_ratelimit(&r->rl_write, timeutil_mono_s(), LOG_BURST, 60.0, &quiet))
        log_error("Recording: %s failed, path: %s, error: %s%s", what, path, strerror(e),
                  quiet ? ", note: earlier errors not logged (rate limit)" : "");
}

static void write_meta(recorder_t *r, recfile_t *f)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s.sigmf-meta", f->base);
    char *text = meta_text(r, f->first_idx, f->utc, f->ann, "sigfoxd live recording");
    if (!text || write_file_atomic(path, text) != 0) {
        if (!text)
            errno = ENOMEM;
        add(&r->werrors, 1);
        log_write_error(r, "writing the metadata", path);
    } else {
        f->dirty = false;
    }
    f->meta_mono = timeutil_mono_s();
    free(text);
}

/* Ends the current file's data (the file stays in the list for late annotations). */
static void close_current(recorder_t *r)
{
    if (!r->have_cur)
        return;
    recfile_t *f = r->files[r->nfiles - 1];
    if (close(f->fd) != 0) {
        add(&r->werrors, 1);
        log_write_error(r, "closing the data file", f->base);
    }
    f->fd = -1;
    r->have_cur = false;
    write_meta(r, f);
}

static void free_file(recfile_t *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    json_object_put(f->ann);
    free(f);
}

/* Drops the oldest list entry, writing its meta first when it changed. */
static void retire_oldest(recorder_t *r)
{
    recfile_t *f = r->files[0];
    if (f->dirty)
        write_meta(r, f);
    free_file(f);
    memmove(r->files, r->files + 1, (r->nfiles - 1) * sizeof *r->files);
    r->nfiles--;
}

/* Deletes the oldest recordings while more than record_max_files are kept. */
static void enforce_max_files(recorder_t *r)
{
    while (r->nkept > r->cfg.record_max_files) {
        char *base = r->kept[0];
        /* a file of this run: out of the annotation list (its annotations go with it) */
        for (size_t i = 0; i < r->nfiles; i++)
            if (strcmp(r->files[i]->base, base) == 0 && !(r->have_cur && i == r->nfiles - 1)) {
                free_file(r->files[i]);
                memmove(r->files + i, r->files + i + 1, (r->nfiles - i - 1) * sizeof *r->files);
                r->nfiles--;
                break;
            }
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%s.sigmf-data", base);
        int e1 = unlink(path) != 0 && errno != ENOENT;
        snprintf(path, sizeof path, "%s.sigmf-meta", base);
        int e2 = unlink(path) != 0 && errno != ENOENT;
        if (e1 || e2)
            log_write_error(r, "deleting the oldest recording", base);
        else
            log_info("Recording deleted (record.max_files), path: %s", base);
        add(&r->files_deleted, 1);
        free(base);
        memmove(r->kept, r->kept + 1, (r->nkept - 1) * sizeof *r->kept);
        r->nkept--;
    }
}

/* Starts a new recording whose first sample is stream index idx at utc. */
static bool open_file(recorder_t *r, uint64_t idx, double utc)
{
    recfile_t *f = calloc(1, sizeof *f);
    char stamp[32];
    compact_utc(utc, stamp, sizeof stamp);
    if (f) {
        f->fd = -1; /* free_file() must not close descriptor 0 */
        f->ann = json_object_new_array();
    }
    if (!f || !f->ann) {
        free_file(f);
        errno = ENOMEM;
        add(&r->werrors, 1);
        log_write_error(r, "starting a recording", r->record_dir);
        return false;
    }
    if (r->nkept == r->capkept) {
        size_t nc = r->capkept ? r->capkept * 2 : 16;
        char **nv = realloc(r->kept, nc * sizeof *nv);
        if (!nv) {
            free_file(f);
            errno = ENOMEM;
            add(&r->werrors, 1);
            log_write_error(r, "starting a recording", r->record_dir);
            return false;
        }
        r->kept = nv;
        r->capkept = nc;
    }
    char path[PATH_MAX + 16];
    for (int tries = 0; tries < 100 && f->fd < 0; tries++) {
        snprintf(f->base, sizeof f->base, "%s/" REC_PREFIX "%s-%06u", r->record_dir, stamp,
                 ++r->seq % 1000000);
        snprintf(path, sizeof path, "%s.sigmf-data", f->base);
        f->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (f->fd < 0 && errno != EEXIST)
            break;
    }
    char *name = f->fd >= 0 ? strdup(f->base) : NULL;
    if (f->fd < 0 || !name) {
        if (f->fd >= 0) {
            unlink(path);
            errno = ENOMEM;
        }
        add(&r->werrors, 1);
        log_write_error(r, "creating a recording", path);
        free_file(f);
        free(name);
        return false;
    }
    f->first_idx = idx;
    f->utc = utc;
    if (r->nfiles == OPEN_FILES)
        retire_oldest(r);
    r->files[r->nfiles++] = f;
    r->have_cur = true;
    r->kept[r->nkept++] = name;
    add(&r->files_started, 1);
    write_meta(r, f);
    log_info("Recording started, path: %s.sigmf-data, stream_sample: %" PRIu64, f->base, idx);
    enforce_max_files(r);
    return true;
}

/* Writes n samples (bytes at p) whose first is stream index idx, rotating as needed. */
static void record_piece(recorder_t *r, const uint8_t *p, uint64_t idx, size_t n, double utc)
{
    double rate = r->cfg.rate_sps;
    while (n > 0) {
        recfile_t *cur = r->have_cur ? r->files[r->nfiles - 1] : NULL;
        bool contiguous = cur && cur->first_idx + cur->n == idx;
        if (cur && (!contiguous || (cur->n + 1) * r->sbytes > r->cfg.record_max_bytes)) {
            close_current(r);
            cur = NULL;
        }
        if (!cur) {
            if (timeutil_mono_s() < r->retry_mono || !open_file(r, idx, utc)) {
                if (r->retry_mono <= timeutil_mono_s())
                    r->retry_mono = timeutil_mono_s() + RETRY_S;
                add(&r->dropped, n);
                return;
            }
            cur = r->files[r->nfiles - 1];
        }
        uint64_t room = r->cfg.record_max_bytes / r->sbytes - cur->n;
        size_t k = n < room ? n : (size_t)room;
        if (write_all(cur->fd, p, k * r->sbytes) != 0) {
            add(&r->werrors, 1);
            log_write_error(r, "writing samples", cur->base);
            close_current(r);
            r->retry_mono = timeutil_mono_s() + RETRY_S;
            add(&r->dropped, n);
            return;
        }
        cur->n += k;
        add(&r->bytes, k * r->sbytes);
        p += k * r->sbytes;
        idx += k;
        n -= k;
        utc += (double)k / rate;
    }
}

/* Places an annotation in the file holding its first sample. Returns false while the
 * writer has not reached that sample yet (try again later). */
static bool place_annotation(recorder_t *r, const ann_t *a, bool final)
{
    if (a->idx >= r->stream_end && !final)
        return false;
    recfile_t *f = NULL;
    for (size_t i = 0; i < r->nfiles && !f; i++)
        if (a->idx >= r->files[i]->first_idx && a->idx < r->files[i]->first_idx + r->files[i]->n)
            f = r->files[i];
    if (!f || json_object_array_length(f->ann) >= RECORDER_ANNOTATIONS_PER_FILE) {
        add(&r->anns_dropped, 1);
        return true;
    }
    json_object *o =
        annotation(a->idx - f->first_idx, a->count, a->freq_hz, a->baud, "sigfox uplink frame");
    char id[9];
    snprintf(id, sizeof id, "%08" PRIX32, a->ep_id);
    if (o) {
        json_object_object_add(o, RECORDER_EXTENSION ":ep_id", json_object_new_string(id));
        json_object_object_add(o, RECORDER_EXTENSION ":mc", json_object_new_int(a->mc));
        json_object_object_add(o, RECORDER_EXTENSION ":rank", json_object_new_int(a->rank));
        json_object_object_add(o, RECORDER_EXTENSION ":snr_db", framejson_number(a->snr_db, 1));
        json_object_object_add(o, RECORDER_EXTENSION ":rssi_dbfs",
                               framejson_number(a->rssi_dbfs, 1));
        json_object_object_add(o, RECORDER_EXTENSION ":stream_sample",
                               json_object_new_int64((int64_t)a->idx));
    }
    if (!o || json_object_array_add(f->ann, o) != 0) {
        json_object_put(o);
        add(&r->anns_dropped, 1);
        return true;
    }
    f->dirty = true;
    add(&r->anns, 1);
    return true;
}

static void place_pending(recorder_t *r, bool final)
{
    size_t k = 0;
    for (size_t i = 0; i < r->npending; i++)
        if (!place_annotation(r, &r->pending[i], final))
            r->pending[k++] = r->pending[i];
    r->npending = k;
}

/* Rewrites changed metas (at most every META_EVERY_S) and retires files whose end lies
 * HOLD_S behind the stream (no annotation can come for them any more). */
static void maintain_files(recorder_t *r)
{
    double now = timeutil_mono_s();
    for (size_t i = 0; i < r->nfiles; i++)
        if (r->files[i]->dirty && now - r->files[i]->meta_mono >= META_EVERY_S)
            write_meta(r, r->files[i]);
    uint64_t hold = (uint64_t)(HOLD_S * r->cfg.rate_sps);
    while (r->nfiles > 0 && !(r->have_cur && r->nfiles == 1) &&
           r->files[0]->first_idx + r->files[0]->n + hold < r->stream_end)
        retire_oldest(r);
}

/* ---- snippets (writer thread) ----------------------------------------------------------- */

static void write_snippet(recorder_t *r, snip_t *s)
{
    char stamp[32], base[PATH_MAX], path[PATH_MAX + 16];
    compact_utc(s->utc, stamp, sizeof stamp);
    int fd = -1;
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        snprintf(base, sizeof base, "%s/" SNIP_PREFIX "%s-%06u", r->snippet_dir, stamp,
                 ++r->snip_seq % 1000000);
        snprintf(path, sizeof path, "%s.sigmf-data", base);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    bool ok = fd >= 0 && write_all(fd, s->data, s->n * r->sbytes) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    char *text = NULL;
    if (ok) {
        json_object *ann = json_object_new_array();
        const rx_burst_t *b = &s->burst;
        json_object *o = annotation(b->sample_start - s->first_idx, b->sample_end - b->sample_start,
                                    b->freq_hz, b->baud, "sigfox burst not decoded");
        if (o) {
            json_object_object_add(o, RECORDER_EXTENSION ":reason",
                                   json_object_new_string(rx_undecoded_name(b->reason)));
            json_object_object_add(o, RECORDER_EXTENSION ":snr_db", framejson_number(b->snr_db, 1));
            json_object_object_add(o, RECORDER_EXTENSION ":stream_sample",
                                   json_object_new_int64((int64_t)b->sample_start));
        }
        if (ann && o && json_object_array_add(ann, o) == 0) {
            o = NULL;
            text = meta_text(r, s->first_idx, s->utc, ann,
                             "sigfoxd: a burst the receiver detected and did not decode");
        }
        json_object_put(o);
        json_object_put(ann);
        snprintf(path, sizeof path, "%s.sigmf-meta", base);
        if (!text)
            errno = ENOMEM;
        ok = text && write_file_atomic(path, text) == 0;
    }
    free(text);
    if (ok) {
        add(&r->snips, 1);
        log_info("Snippet written, path: %s.sigmf-meta, burst_sample: %" PRIu64 ", reason: %s",
                 base, s->burst.sample_start, rx_undecoded_name(s->burst.reason));
        return;
    }
    int e = errno;
    add(&r->snip_werrors, 1);
    add(&r->snips_dropped, 1);
    if (fd >= 0) { /* a half-written pair is worse than none */
        snprintf(path, sizeof path, "%s.sigmf-data", base);
        unlink(path);
    }
    unsigned long long quiet = 0;
    if (log_ratelimit(&r->rl_snip, timeutil_mono_s(), LOG_BURST, 60.0, &quiet))
        log_error("Snippet not written, path: %s, error: %s%s", base, strerror(e),
                  quiet ? ", note: earlier errors not logged (rate limit)" : "");
}

/* ---- writer thread ---------------------------------------------------------------------- */

static void *writer(void *arg)
{
    recorder_t *r = arg;
    ann_t anns[ANN_QUEUE];
    snip_t job = {0};
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stop && r->clen == 0 && r->nannq == 0 && r->njobs == 0) {
            struct timespec dl;
            clock_gettime(CLOCK_MONOTONIC, &dl);
            dl.tv_nsec += 500000000L;
            if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
            }
            if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) == ETIMEDOUT)
                break;
        }
        bool stop = r->stop;
        /* a piece of the oldest chunk */
        chunk_t piece = {0};
        if (r->clen > 0) {
            chunk_t *c = &r->chunks[r->chead];
            size_t k = c->n < WRITE_PIECE / r->sbytes ? c->n : WRITE_PIECE / r->sbytes;
            size_t bytes = k * r->sbytes, first = r->qcap - r->qhead;
            if (first > bytes)
                first = bytes;
            memcpy(r->wbuf, r->q + r->qhead, first);
            memcpy(r->wbuf + first, r->q, bytes - first);
            r->qhead = (r->qhead + bytes) % r->qcap;
            r->qlen -= bytes;
            piece = (chunk_t){c->idx, k, c->utc};
            c->idx += k;
            c->n -= k;
            c->utc += (double)k / r->cfg.rate_sps;
            if (c->n == 0) {
                r->chead = (r->chead + 1) % MAX_CHUNKS;
                r->clen--;
            }
        }
        size_t nann = r->nannq;
        memcpy(anns, r->annq, nann * sizeof *anns);
        r->nannq = 0;
        bool have_job = r->njobs > 0;
        if (have_job) {
            job = r->jobs[0];
            memmove(r->jobs, r->jobs + 1, (r->njobs - 1) * sizeof *r->jobs);
            r->njobs--;
        }
        bool drained = r->clen == 0 && r->nannq == 0 && r->njobs == 0;
        pthread_mutex_unlock(&r->mu);

        if (piece.n > 0) {
            record_piece(r, r->wbuf, piece.idx, piece.n, piece.utc);
            if (piece.idx + piece.n > r->stream_end)
                r->stream_end = piece.idx + piece.n;
        }
        for (size_t i = 0; i < nann; i++) {
            if (r->npending < ANN_PENDING)
                r->pending[r->npending++] = anns[i];
            else
                add(&r->anns_dropped, 1);
        }
        place_pending(r, false);
        maintain_files(r);
        if (have_job) {
            write_snippet(r, &job);
            free(job.data);
        }
        pthread_mutex_lock(&r->mu);
        if (stop && drained && r->clen == 0 && r->nannq == 0 && r->njobs == 0)
            break;
    }
    pthread_mutex_unlock(&r->mu);
    /* the end: every annotation that has a file goes in, every meta is written */
    place_pending(r, true);
    close_current(r);
    while (r->nfiles > 0)
        retire_oldest(r);
    return NULL;
}

/* ---- the producers -------------------------------------------------------------------- */

void recorder_tap(const void *raw, size_t n, uint64_t first_idx, double host_time_s, void *user)
{
    recorder_t *r = user;
    if (!r || !raw || n == 0)
        return;
    size_t sb = r->sbytes;
    if (r->hist) {
        pthread_mutex_lock(&r->hmu);
        if (first_idx != r->hend) /* samples lost: the ring restarts here */
            r->hstart = r->hend = first_idx;
        const uint8_t *p = raw;
        size_t m = n;
        if (m > r->hcap) { /* only the newest hcap samples */
            p += (m - r->hcap) * sb;
            m = r->hcap;
        }
        uint64_t at = first_idx + (n - m);
        size_t pos = (size_t)(at % r->hcap), part = r->hcap - pos;
        if (part > m)
            part = m;
        memcpy(r->hist + pos * sb, p, part * sb);
        memcpy(r->hist, p + part * sb, (m - part) * sb);
        r->hend = first_idx + n;
        if (r->hend - r->hstart > r->hcap)
            r->hstart = r->hend - r->hcap;
        r->anchor_idx = first_idx;
        r->anchor_utc = host_time_s;
        pthread_mutex_unlock(&r->hmu);
    }
    if (!r->q)
        return;
    size_t bytes = n * sb;
    pthread_mutex_lock(&r->mu);
    chunk_t *last = r->clen ? &r->chunks[(r->chead + r->clen - 1) % MAX_CHUNKS] : NULL;
    bool extend = last && !r->qgap && last->idx + last->n == first_idx;
    if (r->stop || bytes > r->qcap - r->qlen || (!extend && r->clen == MAX_CHUNKS)) {
        r->qgap = true;
        pthread_mutex_unlock(&r->mu);
        add(&r->dropped, n);
        return;
    }
    size_t tail = (r->qhead + r->qlen) % r->qcap, first = r->qcap - tail;
    if (first > bytes)
        first = bytes;
    memcpy(r->q + tail, raw, first);
    memcpy(r->q, (const uint8_t *)raw + first, bytes - first);
    r->qlen += bytes;
    if (extend) {
        last->n += n;
    } else {
        r->chunks[(r->chead + r->clen) % MAX_CHUNKS] = (chunk_t){first_idx, n, host_time_s};
        r->clen++;
    }
    r->qgap = false;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Appends item (size bytes) to the writer's array q (*n of cap items) and wakes the
 * writer; false when the array is full or the recorder is stopping. */
static bool enqueue(recorder_t *r, void *q, size_t *n, size_t cap, const void *item, size_t size)
{
    pthread_mutex_lock(&r->mu);
    bool ok = *n < cap && !r->stop;
    if (ok) {
        memcpy((uint8_t *)q + *n * size, item, size);
        (*n)++;
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

void recorder_frame(recorder_t *r, const rx_frame_t *f)
{
    if (!r || !f || !r->q || !f->frame.crc_ok)
        return;
    double dur = f->t_end_s > f->t_start_s ? f->t_end_s - f->t_start_s : 0;
    ann_t a = {.idx = f->sample_idx,
               .count = (uint64_t)llround(dur * r->cfg.rate_sps),
               .freq_hz = f->freq_hz,
               .snr_db = f->snr_db,
               .rssi_dbfs = f->rssi_dbfs,
               .baud = f->baud,
               .rank = f->frame.rank,
               .ep_id = f->frame.msg.ep_id,
               .mc = f->frame.msg.mc};
    if (!enqueue(r, r->annq, &r->nannq, ANN_QUEUE, &a, sizeof a))
        add(&r->anns_dropped, 1);
}

void recorder_undecoded(recorder_t *r, const rx_burst_t *b)
{
    if (!r || !b || !r->hist)
        return;
    double t = (double)b->sample_start / r->cfg.rate_sps;
    if (r->snip_budget == 0) {
        add(&r->snips_dropped, 1);
        if (!r->told_full)
            log_warn("Snippets: snippets.max_files (%u) reached in %s, no more snippets are "
                     "written (counted as snippets_dropped)",
                     r->cfg.snippet_max_files, r->snippet_dir);
        r->told_full = true;
        return;
    }
    if (r->have_snip && t >= r->last_snip_t && t - r->last_snip_t < r->cfg.snippet_min_interval_s) {
        add(&r->snips_dropped, 1);
        return;
    }
    uint64_t margin = (uint64_t)llround(r->cfg.snippet_margin_s * r->cfg.rate_sps);
    uint64_t lo = b->sample_start > margin ? b->sample_start - margin : 0;
    /* the detector's end can come early (a weak or damaged burst): at least the longest
       frame (208 bits + tail) from its start, as the receiver's snippets */
    uint64_t reach =
        (uint64_t)llround(SNIPPET_FRAME_BITS / (b->baud > 0 ? b->baud : 100) * r->cfg.rate_sps);
    uint64_t end =
        b->sample_end > b->sample_start + reach ? b->sample_end : b->sample_start + reach;
    uint64_t hi = end + margin;
    snip_t s = {.burst = *b};
    s.burst.soft = NULL; /* valid during the receiver's call only; the writer needs none */
    pthread_mutex_lock(&r->hmu);
    if (lo < r->hstart)
        lo = r->hstart;
    if (hi > r->hend)
        hi = r->hend;
    double utc = r->anchor_utc - ((double)r->anchor_idx - (double)lo) / r->cfg.rate_sps;
    pthread_mutex_unlock(&r->hmu);
    /* the burst's start must still be in the ring */
    if (b->sample_start >= lo && b->sample_start < hi) {
        s.first_idx = lo;
        s.n = hi - lo;
        s.utc = utc;
        s.data = malloc((size_t)s.n * r->sbytes);
    }
    /* Copied in slices, the lock taken for each (the capture thread's tap waits for one
       slice at most); a slice the tap has overwritten meanwhile (or a restart of the ring
       after lost samples) moves hstart past it: the snippet is given up. */
    for (uint64_t done = 0; s.data && done < s.n;) {
        size_t sb = r->sbytes, k = (size_t)(s.n - done);
        if (k > SNIPPET_SLICE / sb)
            k = SNIPPET_SLICE / sb;
        uint64_t at = lo + done;
        size_t pos = (size_t)(at % r->hcap), part = r->hcap - pos;
        if (part > k)
            part = k;
        pthread_mutex_lock(&r->hmu);
        bool valid = at >= r->hstart && at + k <= r->hend;
        if (valid) {
            memcpy(s.data + done * sb, r->hist + pos * sb, part * sb);
            memcpy(s.data + (done + part) * sb, r->hist, (k - part) * sb);
        }
        pthread_mutex_unlock(&r->hmu);
        if (!valid) {
            free(s.data);
            s.data = NULL;
        }
        done += k;
    }
    if (!s.data) {
        add(&r->snips_dropped, 1);
        return;
    }
    if (s.burst.sample_end > s.first_idx + s.n)
        s.burst.sample_end = s.first_idx + s.n; /* cut at what the ring holds */
    if (!enqueue(r, r->jobs, &r->njobs, SNIPPET_JOBS, &s, sizeof s)) {
        free(s.data);
        add(&r->snips_dropped, 1);
        return;
    }
    r->snip_budget--;
    r->have_snip = true;
    r->last_snip_t = t;
}

/* ---- life cycle ------------------------------------------------------------------------- */

void recorder_get_stats(const recorder_t *r, recorder_stats_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!r)
        return;
    recorder_t *m = (recorder_t *)r;
#define LD(x) atomic_load_explicit(&m->x, memory_order_relaxed)
    out->record_files = LD(files_started);
    out->record_files_deleted = LD(files_deleted);
    out->record_bytes = LD(bytes);
    out->record_samples_dropped = LD(dropped);
    out->record_write_errors = LD(werrors);
    out->annotations = LD(anns);
    out->annotations_dropped = LD(anns_dropped);
    out->snippets = LD(snips);
    out->snippets_dropped = LD(snips_dropped);
    out->snippet_write_errors = LD(snip_werrors);
#undef LD
    out->queue_bytes = r->qcap;
    out->history_bytes = r->hist ? r->hcap * r->sbytes : 0;
}

void recorder_destroy(recorder_t *r)
{
    if (!r)
        return;
    if (r->started) {
        pthread_mutex_lock(&r->mu);
        r->stop = true;
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
        recorder_stats_t st;
        recorder_get_stats(r, &st);
        if (r->q)
            log_info("Recording finished, files: %" PRIu64 ", deleted: %" PRIu64 ", bytes: %" PRIu64
                     ", samples_dropped: %" PRIu64 ", write_errors: %" PRIu64
                     ", annotations: %" PRIu64 ", annotations_dropped: %" PRIu64,
                     st.record_files, st.record_files_deleted, st.record_bytes,
                     st.record_samples_dropped, st.record_write_errors, st.annotations,
                     st.annotations_dropped);
        if (r->hist)
            log_info("Snippets finished, written: %" PRIu64 ", dropped: %" PRIu64
                     ", write_errors: %" PRIu64,
                     st.snippets, st.snippets_dropped, st.snippet_write_errors);
    }
    for (size_t i = 0; i < r->njobs; i++)
        free(r->jobs[i].data);
    for (size_t i = 0; i < r->nfiles; i++)
        free_file(r->files[i]);
    for (size_t i = 0; i < r->nkept; i++)
        free(r->kept[i]);
    free(r->kept);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->hmu);
    free(r->q);
    free(r->wbuf);
    free(r->hist);
    free(r->record_dir);
    free(r->snippet_dir);
    free(r->gain);
    free(r->hw);
    free(r);
}

static char *dup_opt(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

recorder_t *recorder_create(const recorder_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg) {
        snprintf(err, err_len, "recorder: no configuration");
        return NULL;
    }
    bool rec = cfg->record_dir && cfg->record_dir[0];
    bool snip = cfg->snippet_dir && cfg->snippet_dir[0];
    size_t sb = iq_format_sample_bytes(cfg->format);
    if (!iq_sigmf_datatype(cfg->format) || !(cfg->rate_sps > 0 && cfg->rate_sps < 1e9)) {
        snprintf(err, err_len, "recorder: the stream (format %s, %g S/s) cannot be recorded",
                 iq_format_name(cfg->format), cfg->rate_sps);
        return NULL;
    }
    if (rec && (cfg->record_max_bytes < ((uint64_t)1 << 20) || cfg->record_max_files < 1)) {
        snprintf(err, err_len,
                 "record.max_mb / record.max_files: at least 1 MiB per file and 1 file");
        return NULL;
    }
    if (snip && (!(cfg->snippet_margin_s >= 0 && cfg->snippet_margin_s <= 2) ||
                 !(cfg->snippet_min_interval_s >= 0) || cfg->snippet_max_files < 1)) {
        snprintf(err, err_len,
                 "snippets: margin 0..2 s, a minimum interval >= 0 and max_files >= 1");
        return NULL;
    }
    if ((rec && check_dir(cfg->record_dir, "record.dir (--record)", err, err_len) != 0) ||
        (snip && check_dir(cfg->snippet_dir, "snippets.dir (--snippets)", err, err_len) != 0))
        return NULL;
    recorder_t *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, err_len, "recorder: out of memory");
        return NULL;
    }
    r->cfg = *cfg;
    r->sbytes = sb;
    r->record_dir = dup_opt(cfg->record_dir);
    r->snippet_dir = dup_opt(cfg->snippet_dir);
    r->gain = dup_opt(cfg->gain);
    r->hw = dup_opt(cfg->hw);
    r->cfg.record_dir = r->record_dir;
    r->cfg.snippet_dir = r->snippet_dir;
    r->cfg.gain = r->gain;
    r->cfg.hw = r->hw;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->hmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    bool nomem = (rec && !r->record_dir) || (snip && !r->snippet_dir) ||
                 (cfg->gain && cfg->gain[0] && !r->gain) || (cfg->hw && cfg->hw[0] && !r->hw);
    if (rec && !nomem) {
        double want = RECORDER_QUEUE_S * cfg->rate_sps * (double)sb;
        size_t qb = want > (double)QUEUE_MAX_BYTES ? QUEUE_MAX_BYTES : (size_t)want;
        if (qb < QUEUE_MIN_BYTES)
            qb = QUEUE_MIN_BYTES;
        r->qcap = qb - qb % sb;
        r->q = malloc(r->qcap);
        r->wbuf = malloc(WRITE_PIECE);
        long n = scan_dir(r->record_dir, REC_PREFIX, &r->kept);
        nomem = !r->q || !r->wbuf || n < 0;
        if (n > 0)
            r->nkept = r->capkept = (size_t)n;
    }
    if (snip && !nomem) {
        double want = RECORDER_HISTORY_S * cfg->rate_sps * (double)sb;
        size_t hb = want > (double)HISTORY_MAX_BYTES ? HISTORY_MAX_BYTES : (size_t)want;
        r->hcap = hb / sb;
        r->hist = malloc(r->hcap * sb);
        char **names = NULL;
        long n = scan_dir(r->snippet_dir, SNIP_PREFIX, &names);
        for (long i = 0; i < n; i++)
            free(names[i]);
        free(names);
        nomem = !r->hist || n < 0;
        r->snip_budget =
            n >= (long)cfg->snippet_max_files ? 0 : cfg->snippet_max_files - (unsigned)n;
        if (!nomem && r->snip_budget == 0)
            log_warn("Snippets: %s already holds %ld snippets (snippets.max_files %u): none "
                     "will be written",
                     r->snippet_dir, n, cfg->snippet_max_files);
    }
    if (nomem) {
        snprintf(err, err_len, "recorder: out of memory (queue %zu bytes, history %zu bytes)",
                 r->qcap, r->hcap * sb);
        recorder_destroy(r);
        return NULL;
    }
    if (pthread_create(&r->thread, NULL, writer, r) != 0) {
        snprintf(err, err_len, "recorder: cannot start the writer thread");
        recorder_destroy(r);
        return NULL;
    }
    r->started = true;
    if (rec)
        log_notice("Recording the input, dir: %s, format: %s, max_mb_per_file: %.0f, max_files: "
                   "%u, queue_bytes: %zu, kept_already: %zu",
                   r->record_dir, iq_sigmf_datatype(cfg->format),
                   (double)cfg->record_max_bytes / (1 << 20), cfg->record_max_files, r->qcap,
                   r->nkept);
    if (snip)
        log_notice("Snippets of undecoded bursts, dir: %s, history_s: %.1f, history_bytes: %zu, "
                   "margin_s: %.2f, min_interval_s: %.1f, max_files: %u",
                   r->snippet_dir, (double)r->hcap / cfg->rate_sps, r->hcap * sb,
                   cfg->snippet_margin_s, cfg->snippet_min_interval_s, cfg->snippet_max_files);
    return r;
}
