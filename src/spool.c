/* spool: bounded on-disk spool of batches for the network core (spool.h). Licence: MIT. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "errbuf.h"
#include "infile.h"
#include "log.h"

#define NAME_DIGITS 20 /* a uint64 in decimal */
#define HEADER_MAX 128
#define DROP_LOG_S 10

struct spool {
    char *dir;
    size_t max_frames;
    int lock_fd;
    spool_entry_t *ent; /* sorted by seq */
    size_t n, cap;
    size_t frames;
    uint64_t last_pushed; /* largest seq stored or loaded */
    uint64_t next_seq, lease;
    spool_stats_t st;
    bool fresh_dir; /* the directory was created by this run */
    time_t drop_logged_at;
    uint64_t drops_unlogged; /* frames dropped since the last log line */
};

/* FNV-1a 64: detects truncation and damage of a spool file (not an adversary's edits:
 * whoever can write the spool directory owns the station anyway). */
static uint64_t fnv1a64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void batch_path(const spool_t *sp, uint64_t seq, const char *suffix, char *out, size_t cap)
{
    snprintf(out, cap, "%s/b%0*" PRIu64 ".batch%s", sp->dir, NAME_DIGITS, seq, suffix);
}

static void sync_dir(const spool_t *sp)
{
    int dfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: some file systems refuse fsync on directories */
        close(dfd);
    }
}

/* Writes data to path via path.tmp: write, fsync, rename, fsync the directory. */
static int write_durable(const spool_t *sp, const char *path, const char *head, size_t head_len,
                         const char *body, size_t body_len, char *err, size_t err_len)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        errbuf_set(err, err_len, "cannot create %s: %s", tmp, strerror(errno));
        return SPOOL_ERR_IO;
    }
    const char *parts[2] = {head, body};
    size_t lens[2] = {head_len, body_len};
    for (int k = 0; k < 2; k++) {
        size_t off = 0;
        while (off < lens[k]) {
            ssize_t w = write(fd, parts[k] + off, lens[k] - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                errbuf_set(err, err_len, "cannot write %s: %s", tmp,
                           w < 0 ? strerror(errno) : "short write");
                close(fd);
                unlink(tmp);
                return SPOOL_ERR_IO;
            }
            off += (size_t)w;
        }
    }
    if (fsync(fd) != 0) {
        errbuf_set(err, err_len, "cannot sync %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return SPOOL_ERR_IO;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        errbuf_set(err, err_len, "cannot rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return SPOOL_ERR_IO;
    }
    sync_dir(sp);
    return SPOOL_OK;
}

static int write_lease(spool_t *sp, uint64_t lease, char *err, size_t err_len)
{
    char path[4200], text[64];
    snprintf(path, sizeof path, "%s/seq", sp->dir);
    int n = snprintf(text, sizeof text, "next %" PRIu64 "\n", lease);
    return write_durable(sp, path, text, (size_t)n, "", 0, err, err_len);
}

/* Parses a header line. Returns 0 and the fields, or -1 with the reason. */
static int parse_header(const char *line, uint64_t *seq, uint32_t *nframes, size_t *len,
                        uint64_t *sum, const char **why)
{
    char magic[16];
    unsigned version;
    uint64_t s, l, h;
    unsigned long nf;
    int used = 0;
    if (sscanf(line, "%15s %u %" SCNu64 " %lu %" SCNu64 " %16" SCNx64 "%n", magic, &version, &s,
               &nf, &l, &h, &used) != 6 ||
        strcmp(magic, SPOOL_MAGIC) != 0 || line[used] != '\n') {
        *why = "not a spool header";
        return -1;
    }
    if (version != 1) {
        *why = "unknown spool format version";
        return -1;
    }
    if (nf < 1 || nf > 100000 || l < 2 || l > SPOOL_MAX_BODY) {
        *why = "frame count or body length out of range";
        return -1;
    }
    *seq = s;
    *nframes = (uint32_t)nf;
    *len = (size_t)l;
    *sum = h;
    return 0;
}

/* Reads and checks a batch file. want_seq: the seq its name gives. On success *body (may
 * be NULL: only check) gets a malloc()ed copy. Returns 0 or -1 with the reason in why. */
static int load_file(const char *path, uint64_t want_seq, spool_entry_t *e, char **body,
                     const char **why)
{
    /* Not a plain fopen(): a FIFO or a device planted in the spool must not hang or
     * flood the start. */
    char err[256];
    FILE *f = infile_open(path, "spool file", INFILE_REGULAR, err, sizeof err);
    if (!f) {
        *why = "not a regular file, or cannot be opened";
        return -1;
    }
    char line[HEADER_MAX];
    uint64_t sum = 0;
    int rc = -1;
    char *buf = NULL;
    if (!fgets(line, sizeof line, f) || !strchr(line, '\n')) {
        *why = "truncated or oversized header";
        goto out;
    }
    if (parse_header(line, &e->seq, &e->nframes, &e->body_len, &sum, why) != 0)
        goto out;
    if (e->seq != want_seq) {
        *why = "seq in the header does not match the file name";
        goto out;
    }
    buf = malloc(e->body_len + 1);
    if (!buf) {
        *why = "out of memory";
        goto out;
    }
    size_t got = fread(buf, 1, e->body_len, f);
    if (got != e->body_len) {
        *why = "truncated body";
        goto out;
    }
    if (fgetc(f) != EOF) {
        *why = "data after the body";
        goto out;
    }
    buf[e->body_len] = '\0';
    if (fnv1a64(buf, e->body_len) != sum) {
        *why = "checksum mismatch";
        goto out;
    }
    rc = 0;
out:
    fclose(f);
    if (rc == 0 && body) {
        *body = buf;
        buf = NULL;
    }
    free(buf);
    return rc;
}

static void quarantine(spool_t *sp, const char *path, const char *why)
{
    char bad[4200];
    snprintf(bad, sizeof bad, "%s.corrupt", path);
    sp->st.files_corrupt++;
    if (rename(path, bad) == 0)
        log_error("Spool file skipped, file: %s, reason: %s, kept as: %s", path, why, bad);
    else
        log_error("Spool file skipped, file: %s, reason: %s (rename failed: %s)", path, why,
                  strerror(errno));
}

static int add_entry(spool_t *sp, const spool_entry_t *e)
{
    if (sp->n == sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 64;
        spool_entry_t *p = realloc(sp->ent, cap * sizeof *p);
        if (!p)
            return SPOOL_ERR_NOMEM;
        sp->ent = p;
        sp->cap = cap;
    }
    sp->ent[sp->n++] = *e;
    sp->frames += e->nframes;
    return SPOOL_OK;
}

static int cmp_entry(const void *a, const void *b)
{
    uint64_t x = ((const spool_entry_t *)a)->seq, y = ((const spool_entry_t *)b)->seq;
    return x < y ? -1 : x > y;
}

static void remove_at(spool_t *sp, size_t i)
{
    sp->frames -= sp->ent[i].nframes;
    memmove(&sp->ent[i], &sp->ent[i + 1], (sp->n - i - 1) * sizeof *sp->ent);
    sp->n--;
}

/* Parses "b<20 digits>.batch" (exactly); returns 1 with the seq, else 0. */
static int batch_name(const char *name, uint64_t *seq)
{
    if (name[0] != 'b' || strlen(name) != 1 + NAME_DIGITS + 6 ||
        strcmp(name + 1 + NAME_DIGITS, ".batch") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 1; i <= NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *seq = v;
    return 1;
}

static int scan(spool_t *sp, char *err, size_t err_len)
{
    DIR *d = opendir(sp->dir);
    if (!d) {
        errbuf_set(err, err_len, "spool %s: cannot read the directory: %s", sp->dir,
                   strerror(errno));
        return SPOOL_ERR_IO;
    }
    struct dirent *de;
    char path[4200];
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t nl = strlen(name);
        snprintf(path, sizeof path, "%s/%s", sp->dir, name);
        if (nl > 4 && strcmp(name + nl - 4, ".tmp") == 0) {
            log_notice("Spool: removing an unfinished write, file: %s", path);
            unlink(path);
            continue;
        }
        if (nl < 6 || strcmp(name + nl - 6, ".batch") != 0)
            continue;
        uint64_t seq;
        spool_entry_t e;
        const char *why = "file name is not b<20 digits>.batch";
        if (!batch_name(name, &seq) || load_file(path, seq, &e, NULL, &why) != 0) {
            quarantine(sp, path, why);
            continue;
        }
        if (add_entry(sp, &e) != SPOOL_OK) {
            closedir(d);
            errbuf_set(err, err_len, "spool %s: out of memory", sp->dir);
            return SPOOL_ERR_NOMEM;
        }
    }
    closedir(d);
    if (sp->n) {
        qsort(sp->ent, sp->n, sizeof *sp->ent, cmp_entry);
        sp->last_pushed = sp->ent[sp->n - 1].seq;
    }
    return SPOOL_OK;
}

/* Reads the lease file into sp->next_seq (see spool.h for the fall-backs). */
static int load_seq(spool_t *sp, char *err, size_t err_len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/seq", sp->dir);
    FILE *f = fopen(path, "r");
    uint64_t next = 0;
    bool ok = false;
    if (f) {
        char line[64];
        int used = 0;
        ok = fgets(line, sizeof line, f) && sscanf(line, "next %" SCNu64 "%n", &next, &used) == 1 &&
             line[used] == '\n' && next > 0 && next < UINT64_MAX / 2;
        fclose(f);
    }
    uint64_t floor_seq = sp->last_pushed + 1;
    if (ok) {
        sp->next_seq = next > floor_seq ? next : floor_seq;
    } else if (!f && sp->fresh_dir) {
        sp->next_seq = 1; /* a new spool */
    } else {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        uint64_t us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
        sp->next_seq = us > floor_seq ? us : floor_seq;
        log_warn("Spool seq file %s %s: batch numbers restart at %" PRIu64
                 " (above every earlier one)",
                 path, f ? "is damaged" : "is missing", sp->next_seq);
    }
    sp->lease = sp->next_seq; /* nothing leased yet: the first spool_next_seq() writes */
    (void)err;
    (void)err_len;
    return SPOOL_OK;
}

spool_t *spool_create(const spool_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg || !cfg->dir || !cfg->dir[0]) {
        errbuf_set(err, err_len, "spool: no directory given");
        return NULL;
    }
    if (strlen(cfg->dir) > 4000) {
        errbuf_set(err, err_len, "spool: directory name too long");
        return NULL;
    }
    spool_t *sp = calloc(1, sizeof *sp);
    if (!sp || !(sp->dir = strdup(cfg->dir))) {
        free(sp);
        errbuf_set(err, err_len, "spool: out of memory");
        return NULL;
    }
    sp->lock_fd = -1;
    sp->max_frames = cfg->max_frames ? cfg->max_frames : SPOOL_DEFAULT_MAX_FRAMES;
    if (mkdir(sp->dir, 0700) == 0)
        sp->fresh_dir = true;
    else if (errno != EEXIST) {
        errbuf_set(err, err_len, "spool %s: cannot create the directory: %s", sp->dir,
                   strerror(errno));
        goto fail;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/lock", sp->dir);
    sp->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (sp->lock_fd < 0) {
        errbuf_set(err, err_len, "spool %s: cannot open %s: %s", sp->dir, path, strerror(errno));
        goto fail;
    }
    if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        errbuf_set(err, err_len, "spool %s is in use by another process (%s is locked)", sp->dir,
                   path);
        goto fail;
    }
    if (scan(sp, err, err_len) != SPOOL_OK || load_seq(sp, err, err_len) != SPOOL_OK)
        goto fail;
    if (sp->n)
        log_notice("Spool loaded, dir: %s, batches: %zu, frames: %zu, oldest_seq: %" PRIu64
                   ", next_seq: %" PRIu64,
                   sp->dir, sp->n, sp->frames, sp->ent[0].seq, sp->next_seq);
    return sp;
fail:
    spool_destroy(sp);
    return NULL;
}

int spool_next_seq(spool_t *sp, uint64_t *seq)
{
    if (!sp || !seq)
        return SPOOL_ERR_ARG;
    if (sp->next_seq >= sp->lease) {
        char err[512];
        uint64_t lease = sp->next_seq + SPOOL_SEQ_LEASE;
        if (write_lease(sp, lease, err, sizeof err) != SPOOL_OK) {
            sp->st.write_errors++;
            log_error("Spool seq not persisted, error: %s", err);
            return SPOOL_ERR_IO;
        }
        sp->lease = lease;
    }
    *seq = sp->next_seq++;
    return SPOOL_OK;
}

/* Deletes the oldest batches until nframes more fit. */
static void make_room(spool_t *sp, uint32_t nframes)
{
    while (sp->n && sp->frames + nframes > sp->max_frames) {
        char path[4200];
        batch_path(sp, sp->ent[0].seq, "", path, sizeof path);
        unlink(path);
        sp->st.batches_dropped++;
        sp->st.frames_dropped += sp->ent[0].nframes;
        sp->drops_unlogged += sp->ent[0].nframes;
        remove_at(sp, 0);
    }
    time_t now = time(NULL);
    if (sp->drops_unlogged && (now - sp->drop_logged_at >= DROP_LOG_S || sp->drop_logged_at == 0)) {
        log_error("Spool full: oldest frames dropped, dir: %s, max_frames: %zu, dropped_now: "
                  "%" PRIu64 ", dropped_total: %" PRIu64 " (the core is unreachable or not "
                  "acknowledging; raise core.spool_max_frames to hold more)",
                  sp->dir, sp->max_frames, sp->drops_unlogged, sp->st.frames_dropped);
        sp->drops_unlogged = 0;
        sp->drop_logged_at = now;
    }
}

int spool_push(spool_t *sp, uint64_t seq, uint32_t nframes, const char *body, size_t len,
               char *err, size_t err_len)
{
    if (!sp || !body || nframes == 0 || len < 2 || len > SPOOL_MAX_BODY ||
        (seq <= sp->last_pushed && (sp->n || sp->st.batches_written))) {
        errbuf_set(err, err_len, "spool: invalid batch (seq %" PRIu64 ", frames %u, %zu bytes)",
                   seq, nframes, len);
        return SPOOL_ERR_ARG;
    }
    if (nframes > sp->max_frames) {
        errbuf_set(err, err_len, "spool: a batch of %u frames exceeds max_frames %zu", nframes,
                   sp->max_frames);
        return SPOOL_ERR_ARG;
    }
    make_room(sp, nframes);
    char head[HEADER_MAX], path[4200];
    int hl = snprintf(head, sizeof head, SPOOL_MAGIC " 1 %" PRIu64 " %u %zu %016" PRIx64 "\n", seq,
                      nframes, len, fnv1a64(body, len));
    batch_path(sp, seq, "", path, sizeof path);
    int rc = write_durable(sp, path, head, (size_t)hl, body, len, err, err_len);
    if (rc != SPOOL_OK) {
        sp->st.write_errors++;
        return rc;
    }
    spool_entry_t e = {.seq = seq, .nframes = nframes, .body_len = len};
    if (add_entry(sp, &e) != SPOOL_OK) {
        unlink(path);
        errbuf_set(err, err_len, "spool: out of memory");
        return SPOOL_ERR_NOMEM;
    }
    sp->last_pushed = seq;
    sp->st.batches_written++;
    return SPOOL_OK;
}

static size_t find(const spool_t *sp, uint64_t seq)
{
    size_t lo = 0, hi = sp->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->ent[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Index of batch seq and its file name; -1 when it is not spooled. */
static int lookup(const spool_t *sp, uint64_t seq, size_t *index, char *path, size_t cap)
{
    size_t i = find(sp, seq);
    if (i >= sp->n || sp->ent[i].seq != seq)
        return -1;
    *index = i;
    batch_path(sp, seq, "", path, cap);
    return 0;
}

int spool_ack(spool_t *sp, uint64_t seq)
{
    if (!sp)
        return SPOOL_ERR_ARG;
    size_t i;
    char path[4200];
    if (lookup(sp, seq, &i, path, sizeof path) != 0)
        return SPOOL_ERR_NOTFOUND;
    if (unlink(path) != 0 && errno != ENOENT)
        log_warn("Spool: cannot delete an acknowledged batch, file: %s, error: %s", path,
                 strerror(errno));
    sp->st.batches_acked++;
    sp->st.frames_acked += sp->ent[i].nframes;
    remove_at(sp, i);
    return SPOOL_OK;
}

size_t spool_count(const spool_t *sp)
{
    return sp ? sp->n : 0;
}

int spool_entry(const spool_t *sp, size_t index, spool_entry_t *out)
{
    if (!sp || !out || index >= sp->n)
        return SPOOL_ERR_ARG;
    *out = sp->ent[index];
    return SPOOL_OK;
}

size_t spool_find_after(const spool_t *sp, uint64_t after)
{
    if (!sp)
        return 0;
    return after == UINT64_MAX ? sp->n : find(sp, after + 1);
}

int spool_read(spool_t *sp, uint64_t seq, char **body, size_t *len)
{
    if (!sp || !body || !len)
        return SPOOL_ERR_ARG;
    size_t i;
    char path[4200];
    if (lookup(sp, seq, &i, path, sizeof path) != 0)
        return SPOOL_ERR_NOTFOUND;
    spool_entry_t e;
    const char *why = "";
    if (load_file(path, seq, &e, body, &why) != 0) {
        if (strcmp(why, "out of memory") == 0)
            return SPOOL_ERR_NOMEM;
        quarantine(sp, path, why);
        remove_at(sp, i);
        return SPOOL_ERR_CORRUPT;
    }
    *len = e.body_len;
    return SPOOL_OK;
}

void spool_get_stats(const spool_t *sp, spool_stats_t *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!sp)
        return;
    *out = sp->st;
    out->batches = sp->n;
    out->frames = sp->frames;
    out->next_seq = sp->next_seq;
}

void spool_destroy(spool_t *sp)
{
    if (!sp)
        return;
    if (sp->lock_fd >= 0)
        close(sp->lock_fd);
    free(sp->ent);
    free(sp->dir);
    free(sp);
}
