/* truth: score decoded uplink output against the synthesizer's ground truth. Licence: MIT.
 * The rules are in include/truth.h and docs/score.md. */
#include "truth.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "framejson.h"
#include "hexutil.h"

/* A JSON line longer than this is not something sigfox-synth or sigfoxd writes (a message
 * event with three replicas is about 1.5 kB); refusing it bounds memory on bad input. */
#define TRUTH_MAX_LINE_BYTES (1024 * 1024)

const char *truth_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case TRUTH_ERR_ARG:
        return "invalid argument";
    case TRUTH_ERR_IO:
        return "cannot read file";
    case TRUTH_ERR_PARSE:
        return "malformed input";
    case TRUTH_ERR_NOMEM:
        return "out of memory";
    default:
        return "unknown error";
    }
}

static int fail(char *err, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t len, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errbuf_vset(err, len, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- one line ------------------------------------------------------------------------ */

/* Field lookup: 1 present, 0 absent or JSON null. */
static int field(json_object *o, const char *key, json_object **v)
{
    *v = NULL;
    return json_object_object_get_ex(o, key, v) && *v != NULL;
}

static int get_number(json_object *o, const char *key, bool required, double *out, char *err,
                      size_t len)
{
    json_object *v;
    *out = NAN;
    if (!field(o, key, &v))
        return required ? fail(err, len, TRUTH_ERR_PARSE, "missing \"%s\"", key) : 0;
    json_type t = json_object_get_type(v);
    if (t != json_type_double && t != json_type_int)
        return fail(err, len, TRUTH_ERR_PARSE, "\"%s\" is not a number", key);
    double x = json_object_get_double(v);
    if (!isfinite(x))
        return fail(err, len, TRUTH_ERR_PARSE, "\"%s\" is not a finite number", key);
    *out = x;
    return 0;
}

static int get_int(json_object *o, const char *key, bool required, long lo, long hi, long dflt,
                   long *out, char *err, size_t len)
{
    json_object *v;
    *out = dflt;
    if (!field(o, key, &v))
        return required ? fail(err, len, TRUTH_ERR_PARSE, "missing \"%s\"", key) : 0;
    if (json_object_get_type(v) != json_type_int)
        return fail(err, len, TRUTH_ERR_PARSE, "\"%s\" is not an integer", key);
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi)
        return fail(err, len, TRUTH_ERR_PARSE, "\"%s\" %lld is outside %ld..%ld", key, (long long)x,
                    lo, hi);
    *out = (long)x;
    return 0;
}

static int get_bool(json_object *o, const char *key, bool required, bool dflt, bool *out, char *err,
                    size_t len)
{
    json_object *v;
    *out = dflt;
    if (!field(o, key, &v))
        return required ? fail(err, len, TRUTH_ERR_PARSE, "missing \"%s\"", key) : 0;
    if (json_object_get_type(v) != json_type_boolean)
        return fail(err, len, TRUTH_ERR_PARSE, "\"%s\" is not true or false", key);
    *out = json_object_get_boolean(v);
    return 0;
}

static int get_string(json_object *o, const char *key, bool required, const char **out, char *err,
                      size_t len)
{
    json_object *v;
    *out = NULL;
    if (!field(o, key, &v))
        return required ? fail(err, len, TRUTH_ERR_PARSE, "missing \"%s\"", key) : 0;
    if (json_object_get_type(v) != json_type_string)
        return fail(err, len, TRUTH_ERR_PARSE, "\"%s\" is not a string", key);
    *out = json_object_get_string(v);
    return 0;
}

static int parse_kind(const char *s, ul_kind_t *kind)
{
    static const ul_kind_t kinds[] = {UL_KIND_APP, UL_KIND_KEEPALIVE, UL_KIND_DL_CONFIRMATION};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(s, ul_kind_name(kinds[i])) == 0) {
            *kind = kinds[i];
            return 0;
        }
    }
    return -1;
}

/* ep_id, mc, bf, kind, payload / payload_bit. */
static int parse_fields(json_object *o, truth_rec_t *r, bool is_truth, char *err, size_t len)
{
    const char *s;
    long x;
    int rc;
    if ((rc = get_string(o, "ep_id", true, &s, err, len)) < 0)
        return rc;
    if (strlen(s) != 8 || hex_to_ep_id(s, &r->ep_id) != 0)
        return fail(err, len, TRUTH_ERR_PARSE, "\"ep_id\" '%.40s' is not 8 hex digits", s);
    if ((rc = get_int(o, "mc", true, 0, UL_MC_MAX, 0, &x, err, len)) < 0)
        return rc;
    r->mc = (int)x;
    if ((rc = get_bool(o, "bf", true, false, &r->bf, err, len)) < 0)
        return rc;
    if ((rc = get_string(o, "kind", true, &s, err, len)) < 0)
        return rc;
    if (parse_kind(s, &r->kind) != 0)
        return fail(err, len, TRUTH_ERR_PARSE,
                    "\"kind\" '%.40s' is not app, keepalive or dl_confirmation", s);
    if ((rc = get_int(o, "payload_bit", false, 0, 1, -1, &x, err, len)) < 0)
        return rc;
    r->payload_bit = (int)x;
    r->one_bit = x >= 0;
    if ((rc = get_string(o, "payload", !r->one_bit, &s, err, len)) < 0)
        return fail(err, len, rc, "missing \"payload\" (or \"payload_bit\")");
    r->payload_len = 0;
    if (s) {
        /* hex_to_bytes skips separators; the project writes bare digits, so the length
         * check below also refuses "01 02"-style text. */
        int n = hex_to_bytes(s, r->payload, sizeof r->payload);
        if (n < 0 || strlen(s) != 2 * (size_t)n)
            return fail(err, len, TRUTH_ERR_PARSE,
                        "\"payload\" '%.40s' is not hex of at most %d bytes", s,
                        TRUTH_MAX_PAYLOAD_BYTES);
        r->payload_len = (size_t)n;
        /* The truth writes "payload": "" beside a payload bit; a non-empty payload with a
         * payload bit contradicts itself. */
        if (r->one_bit && n > 0)
            return fail(err, len, TRUTH_ERR_PARSE, "both \"payload\" and \"payload_bit\"");
    }
    (void)is_truth;
    return 0;
}

static int parse_baud(json_object *o, bool required, int *baud, char *err, size_t len)
{
    long x;
    int rc = get_int(o, "baud", required, 0, 100000, 0, &x, err, len);
    if (rc < 0)
        return rc;
    /* §2.3 / Table 2-4: the uplink has BR100 and BR600 only. */
    if (x != 0 && x != 100 && x != 600)
        return fail(err, len, TRUTH_ERR_PARSE, "\"baud\" %ld is not 100 or 600", x);
    if (required && x == 0)
        return fail(err, len, TRUTH_ERR_PARSE, "\"baud\" 0 is not 100 or 600");
    *baud = (int)x;
    return 0;
}

static int parse_truth(json_object *o, truth_rec_t *r, char *err, size_t len)
{
    int rc;
    long x;
    r->type = TRUTH_REC_BURST;
    r->has_fields = true;
    r->crc_ok = true;
    if ((rc = parse_fields(o, r, true, err, len)) < 0)
        return rc;
    if ((rc = get_int(o, "rank", true, 1, 3, 0, &x, err, len)) < 0)
        return rc;
    r->rank = (int)x;
    if ((rc = parse_baud(o, true, &r->baud, err, len)) < 0)
        return rc;
    if ((rc = get_number(o, "t_start_s", true, &r->t_start_s, err, len)) < 0 ||
        (rc = get_number(o, "freq_hz", true, &r->freq_hz, err, len)) < 0 ||
        (rc = get_number(o, "drift_hz_s", false, &r->drift_hz_s, err, len)) < 0 ||
        (rc = get_number(o, "ebn0_db", false, &r->ebn0_db, err, len)) < 0 ||
        (rc = get_bool(o, "collided", false, false, &r->collided, err, len)) < 0 ||
        (rc = get_bool(o, "interfered", false, false, &r->interfered, err, len)) < 0)
        return rc;
    if ((rc = get_int(o, "n_frames", false, 1, 3, 0, &x, err, len)) < 0)
        return rc;
    r->n_frames = (int)x;
    if ((rc = get_int(o, "message", false, 0, 0x7fffffffL, -1, &r->message, err, len)) < 0)
        return rc;
    return 0;
}

static int parse_decoded(json_object *o, const char *type, truth_rec_t *r, char *err, size_t len)
{
    int rc;
    long x;
    const char *s;
    if (strcmp(type, "frame") == 0)
        r->type = TRUTH_REC_FRAME;
    else if (strcmp(type, "message") == 0)
        r->type = TRUTH_REC_MESSAGE;
    else
        r->type = TRUTH_REC_REPLAY;

    if ((rc = get_bool(o, "crc_ok", false, true, &r->crc_ok, err, len)) < 0)
        return rc;
    /* framejson prints the message fields only for a good CRC and a parsed container. */
    r->has_fields = r->crc_ok && json_object_object_get_ex(o, "ep_id", NULL);
    if (r->type != TRUTH_REC_FRAME && !r->has_fields)
        return fail(err, len, TRUTH_ERR_PARSE, "%s event without \"ep_id\" or with crc_ok false",
                    type);
    if (r->has_fields && (rc = parse_fields(o, r, false, err, len)) < 0)
        return rc;
    if ((rc = get_int(o, "rank", false, 0, 3, 0, &x, err, len)) < 0)
        return rc;
    r->rank = r->type == TRUTH_REC_FRAME ? (int)x : 0;
    if ((rc = parse_baud(o, false, &r->baud, err, len)) < 0)
        return rc;
    /* Matching needs the time and the carrier of every frame and message with fields. */
    if ((rc = get_number(o, "t_start_s", r->has_fields, &r->t_start_s, err, len)) < 0 ||
        (rc = get_number(o, "freq_hz", r->has_fields, &r->freq_hz, err, len)) < 0 ||
        (rc = get_number(o, "drift_hz_s", false, &r->drift_hz_s, err, len)) < 0 ||
        (rc = get_number(o, "snr_db", false, &r->snr_db, err, len)) < 0 ||
        (rc = get_bool(o, "combined", false, false, &r->combined, err, len)) < 0)
        return rc;
    if ((rc = get_string(o, "auth", false, &s, err, len)) < 0)
        return rc;
    if (s) {
        if (strlen(s) >= sizeof r->auth)
            return fail(err, len, TRUTH_ERR_PARSE, "\"auth\" '%.40s' is too long", s);
        strcpy(r->auth, s);
    }
    if ((rc = get_int(o, "nframes", false, 0, TRUTH_MAX_REPLICAS, 0, &x, err, len)) < 0)
        return rc;
    r->n_frames = (int)x;
    return 0;
}

int truth_parse_line(const char *line, bool is_truth, truth_rec_t *rec, char *skip_kind, char *err,
                     size_t err_len)
{
    char dummy;
    if (!skip_kind)
        skip_kind = &dummy;
    *skip_kind = 0;
    if (err && err_len)
        err[0] = 0;
    if (!line || !rec)
        return fail(err, err_len, TRUTH_ERR_ARG, "no line or record");
    size_t n = strlen(line);
    if (n > TRUTH_MAX_LINE_BYTES)
        return fail(err, err_len, TRUTH_ERR_PARSE, "line longer than %d bytes",
                    TRUTH_MAX_LINE_BYTES);
    size_t i = 0;
    while (i < n && strchr(" \t\r\n", line[i]))
        i++;
    if (i == n) {
        *skip_kind = 'e';
        return 0;
    }

    json_tokener *tok = json_tokener_new();
    if (!tok)
        return fail(err, err_len, TRUTH_ERR_NOMEM, "out of memory");
    /* n + 1 hands over the NUL too, which ends a top-level literal such as "null". */
    json_object *o = json_tokener_parse_ex(tok, line, (int)n + 1);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int rc = 0;
    if (!o) {
        if (jerr == json_tokener_continue || jerr == json_tokener_error_parse_eof)
            rc = fail(err, err_len, TRUTH_ERR_PARSE, "incomplete JSON (line ends early)");
        else if (jerr != json_tokener_success)
            rc = fail(err, err_len, TRUTH_ERR_PARSE, "not JSON: %s", json_tokener_error_desc(jerr));
        else
            rc = fail(err, err_len, TRUTH_ERR_PARSE, "not a JSON object (null)");
        return rc;
    }
    for (size_t k = end; k < n; k++) {
        if (!strchr(" \t\r\n", line[k])) {
            json_object_put(o);
            return fail(err, err_len, TRUTH_ERR_PARSE,
                        "unexpected text after the JSON object at column %zu", k + 1);
        }
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return fail(err, err_len, TRUTH_ERR_PARSE, "not a JSON object");
    }

    const char *type;
    if ((rc = get_string(o, "type", true, &type, err, err_len)) < 0)
        goto out;
    memset(rec, 0, sizeof *rec);
    rec->payload_bit = -1;
    rec->message = -1;
    rec->t_start_s = rec->freq_hz = rec->drift_hz_s = rec->ebn0_db = rec->snr_db = NAN;
    if (is_truth) {
        if (strcmp(type, "burst") == 0) {
            rc = parse_truth(o, rec, err, err_len);
            rc = rc < 0 ? rc : 1;
        } else {
            *skip_kind = strcmp(type, "interferer") == 0 ? 'i' : 's';
        }
    } else {
        if (strcmp(type, "frame") == 0 || strcmp(type, "message") == 0 ||
            strcmp(type, "replay") == 0) {
            rc = parse_decoded(o, type, rec, err, err_len);
            rc = rc < 0 ? rc : 1;
        } else {
            *skip_kind = 's';
        }
    }
out:
    json_object_put(o);
    return rc;
}

/* ---- sets ---------------------------------------------------------------------------- */

int truth_set_add(truth_set_t *set, const truth_rec_t *rec)
{
    if (!set || !rec)
        return TRUTH_ERR_ARG;
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 64;
        truth_rec_t *p = realloc(set->recs, cap * sizeof *p);
        if (!p)
            return TRUTH_ERR_NOMEM;
        set->recs = p;
        set->cap = cap;
    }
    set->recs[set->n++] = *rec;
    return 0;
}

void truth_set_free(truth_set_t *set)
{
    if (!set)
        return;
    free(set->recs);
    memset(set, 0, sizeof *set);
}

int truth_set_read(truth_set_t *set, FILE *fp, const char *name, bool is_truth, char *err,
                   size_t err_len)
{
    if (!set || !fp)
        return fail(err, err_len, TRUTH_ERR_ARG, "no set or stream");
    if (!name)
        name = "(stream)";
    snprintf(set->name, sizeof set->name, "%s", name);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    char why[200];
    while ((got = getline(&line, &cap, fp)) >= 0) {
        unsigned lineno = (unsigned)++set->n_lines;
        if ((size_t)got > TRUTH_MAX_LINE_BYTES) {
            rc = fail(err, err_len, TRUTH_ERR_PARSE, "%s:%u: line longer than %d bytes", name,
                      lineno, TRUTH_MAX_LINE_BYTES);
            break;
        }
        if (strlen(line) != (size_t)got) {
            rc = fail(err, err_len, TRUTH_ERR_PARSE, "%s:%u: NUL byte in the line", name, lineno);
            break;
        }
        truth_rec_t rec;
        char skip;
        int r = truth_parse_line(line, is_truth, &rec, &skip, why, sizeof why);
        if (r < 0) {
            rc = fail(err, err_len, r, "%s:%u: %s", name, lineno, why);
            break;
        }
        if (r == 0) {
            if (skip == 'i')
                set->n_interferers++;
            else if (skip == 's')
                set->n_skipped++;
            continue;
        }
        rec.line = lineno;
        if (rec.type == TRUTH_REC_FRAME && !rec.has_fields)
            set->n_no_fields++;
        if ((r = truth_set_add(set, &rec)) < 0) {
            rc = fail(err, err_len, r, "%s:%u: out of memory", name, lineno);
            break;
        }
    }
    if (rc == 0 && ferror(fp))
        rc = fail(err, err_len, TRUTH_ERR_IO, "%s: read error: %s", name, strerror(errno));
    free(line);
    return rc;
}

int truth_set_load(truth_set_t *set, const char *path, bool is_truth, char *err, size_t err_len)
{
    if (!set || !path)
        return fail(err, err_len, TRUTH_ERR_ARG, "no set or path");
    if (strcmp(path, "-") == 0)
        return truth_set_read(set, stdin, "-", is_truth, err, err_len);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return fail(err, err_len, TRUTH_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int rc = truth_set_read(set, fp, path, is_truth, err, err_len);
    fclose(fp);
    return rc;
}

/* ---- matching ------------------------------------------------------------------------ */

void truth_config_default(truth_config_t *cfg)
{
    cfg->time_tol_symbols = 2.0;
    cfg->time_tol_s = 0.010;
    cfg->freq_tol_hz = 300.0;
    cfg->min_ebn0_db = -INFINITY;
    cfg->expect_collided = false;
    cfg->expect_interfered = false;
}

double truth_time_tol_s(const truth_config_t *cfg, int baud)
{
    return cfg->time_tol_symbols / (baud > 0 ? baud : 100) + cfg->time_tol_s;
}

static const char *truth_dec_class_name(truth_dec_class_t c)
{
    switch (c) {
    case TRUTH_DEC_SKIPPED:
        return "skipped";
    case TRUTH_DEC_MATCHED:
        return "matched";
    case TRUTH_DEC_DUPLICATE:
        return "duplicate";
    case TRUTH_DEC_WRONG:
        return "wrong";
    case TRUTH_DEC_MISPLACED:
        return "misplaced";
    case TRUTH_DEC_FALSE:
        return "false";
    }
    return "?";
}

const char *truth_miss_name(truth_miss_t m)
{
    switch (m) {
    case TRUTH_MISS_NONE:
        return "matched";
    case TRUTH_MISS_WRONG_FIELDS:
        return "wrong_fields";
    case TRUTH_MISS_MISPLACED:
        return "misplaced";
    case TRUTH_MISS_REPLAY:
        return "replay";
    case TRUTH_MISS_CRC_BAD:
        return "crc_bad";
    case TRUTH_MISS_OTHER_FRAME:
        return "other_frame";
    case TRUTH_MISS_FRAMES_ONLY:
        return "frames_only";
    case TRUTH_MISS_NOTHING:
        return "nothing";
    }
    return "?";
}

static const char *truth_group_name(int group)
{
    static const char *names[TRUTH_GROUPS] = {"all", "br100", "br600"};
    return group >= 0 && group < TRUTH_GROUPS ? names[group] : "?";
}

static int group_of(int baud)
{
    return baud == 100 ? TRUTH_GROUP_BR100 : baud == 600 ? TRUTH_GROUP_BR600 : -1;
}

/* Sort key of a truth burst: (ep_id, mc, message, t_start_s). */
typedef struct {
    uint32_t ep_id;
    int mc;
    long message;
    double t_s;
    size_t idx;
} burst_key_t;

static int cmp_key(const void *pa, const void *pb)
{
    const burst_key_t *a = pa, *b = pb;
    if (a->ep_id != b->ep_id)
        return a->ep_id < b->ep_id ? -1 : 1;
    if (a->mc != b->mc)
        return a->mc < b->mc ? -1 : 1;
    if (a->message != b->message)
        return a->message < b->message ? -1 : 1;
    if (a->t_s != b->t_s)
        return a->t_s < b->t_s ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* First key with (ep_id, mc) >= the given one. */
static size_t key_lower(const burst_key_t *k, size_t n, uint32_t ep_id, int mc)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (k[mid].ep_id < ep_id || (k[mid].ep_id == ep_id && k[mid].mc < mc))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Decoded frames by time, for "what was decoded near this truth burst". */
typedef struct {
    double t_s;
    size_t idx;
} time_key_t;

static int cmp_time(const void *pa, const void *pb)
{
    const time_key_t *a = pa, *b = pb;
    if (a->t_s != b->t_s)
        return a->t_s < b->t_s ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static bool fields_equal(const truth_rec_t *a, const truth_rec_t *b)
{
    if (a->ep_id != b->ep_id || a->mc != b->mc || a->bf != b->bf || a->kind != b->kind ||
        a->one_bit != b->one_bit)
        return false;
    if (a->one_bit)
        return a->payload_bit == b->payload_bit;
    return a->payload_len == b->payload_len && memcmp(a->payload, b->payload, a->payload_len) == 0;
}

static bool in_tolerance(const truth_config_t *cfg, const truth_rec_t *t, const truth_rec_t *d,
                         double *cost)
{
    double tol_t = truth_time_tol_s(cfg, t->baud);
    double dt = fabs(d->t_start_s - t->t_start_s);
    double df = fabs(d->freq_hz - t->freq_hz);
    if (!(dt <= tol_t) || !(df <= cfg->freq_tol_hz))
        return false;
    if (cost)
        *cost = dt / tol_t + (cfg->freq_tol_hz > 0 ? df / cfg->freq_tol_hz : 0);
    return true;
}

/* Keeps the most telling reason: WRONG_FIELDS before MISPLACED before CRC_BAD ... */
static void set_miss(truth_miss_t *miss, long *related, truth_miss_t m, long idx)
{
    if (*miss == TRUTH_MISS_NONE || m < *miss) {
        *miss = m;
        *related = idx;
    }
}

static bool burst_expected(const truth_config_t *cfg, const truth_rec_t *t)
{
    bool level_ok = isnan(t->ebn0_db) ? (isinf(cfg->min_ebn0_db) && cfg->min_ebn0_db < 0)
                                      : t->ebn0_db >= cfg->min_ebn0_db;
    return level_ok && (!t->collided || cfg->expect_collided) &&
           (!t->interfered || cfg->expect_interfered);
}

void truth_score_free(truth_score_t *s)
{
    if (!s)
        return;
    free(s->burst);
    free(s->dec);
    free(s->msgs);
    memset(s, 0, sizeof *s);
}

/* Messages in order of their first burst. */
typedef struct {
    double t_s;
    truth_msg_t m;
} msg_sort_t;

static int cmp_msg(const void *pa, const void *pb)
{
    const msg_sort_t *a = pa, *b = pb;
    if (a->t_s != b->t_s)
        return a->t_s < b->t_s ? -1 : 1;
    return a->m.burst[0] < b->m.burst[0] ? -1 : a->m.burst[0] > b->m.burst[0];
}

static void add_err(truth_stats_t *st, double df_hz, double dt_s, double dsnr_db)
{
    if (isfinite(df_hz)) {
        st->n_freq++;
        st->freq_err_rms_hz += df_hz * df_hz;
        if (fabs(df_hz) > st->freq_err_max_hz)
            st->freq_err_max_hz = fabs(df_hz);
    }
    if (isfinite(dt_s)) {
        double ms = dt_s * 1e3;
        st->n_time++;
        st->time_err_rms_ms += ms * ms;
        if (fabs(ms) > st->time_err_max_ms)
            st->time_err_max_ms = fabs(ms);
    }
    if (isfinite(dsnr_db)) {
        st->n_snr++;
        st->snr_minus_ebn0_mean_db += dsnr_db;
        st->snr_minus_ebn0_rms_db += dsnr_db * dsnr_db;
    }
}

static void finish_err(truth_stats_t *st)
{
    st->freq_err_rms_hz = st->n_freq ? sqrt(st->freq_err_rms_hz / st->n_freq) : NAN;
    if (!st->n_freq)
        st->freq_err_max_hz = NAN;
    st->time_err_rms_ms = st->n_time ? sqrt(st->time_err_rms_ms / st->n_time) : NAN;
    if (!st->n_time)
        st->time_err_max_ms = NAN;
    st->snr_minus_ebn0_mean_db = st->n_snr ? st->snr_minus_ebn0_mean_db / st->n_snr : NAN;
    st->snr_minus_ebn0_rms_db = st->n_snr ? sqrt(st->snr_minus_ebn0_rms_db / st->n_snr) : NAN;
}

/* Applies fn-like increments to the "all" group and to the baud's group. */
#define COUNT(s, baud, member)                                                                     \
    do {                                                                                           \
        (s)->stats[TRUTH_GROUP_ALL].member++;                                                      \
        int g_ = group_of(baud);                                                                   \
        if (g_ >= 0)                                                                               \
            (s)->stats[g_].member++;                                                               \
    } while (0)

static bool auth_ok(const truth_rec_t *d)
{
    return strcmp(d->auth, "ok") == 0;
}

/* Classifies one decoded frame (kind TRUTH_REC_FRAME) or message against the truth. */
static void classify(truth_score_t *s, const burst_key_t *keys, size_t n_keys, size_t di)
{
    const truth_set_t *T = s->truth;
    const truth_rec_t *d = &s->decoded->recs[di];
    bool is_msg = d->type != TRUTH_REC_FRAME; /* messages and replay events */
    truth_dec_res_t *res = &s->dec[di];
    size_t lo = key_lower(keys, n_keys, d->ep_id, d->mc);
    long best_free = -1, best_taken = -1, nearest = -1;
    double cost_free = INFINITY, cost_taken = INFINITY, dt_nearest = INFINITY;
    for (size_t k = lo; k < n_keys && keys[k].ep_id == d->ep_id && keys[k].mc == d->mc; k++) {
        size_t ti = keys[k].idx;
        const truth_rec_t *t = &T->recs[ti];
        /* The comparable item: the burst for frames, its message for messages. */
        long item = is_msg ? s->burst[ti].msg : (long)ti;
        double dt = fabs(d->t_start_s - t->t_start_s);
        if (dt < dt_nearest) {
            dt_nearest = dt;
            nearest = item;
        }
        double cost;
        if (!is_msg && d->rank != 0 && d->rank != t->rank)
            continue;
        if (!in_tolerance(&s->cfg, t, d, &cost))
            continue;
        bool taken = is_msg ? s->msgs[item].dec >= 0 : s->burst[ti].dec >= 0;
        if (!taken && cost < cost_free) {
            cost_free = cost;
            best_free = item;
        } else if (taken && cost < cost_taken) {
            cost_taken = cost;
            best_taken = item;
        }
    }
    long item = best_free >= 0 ? best_free : best_taken;
    if (d->type == TRUTH_REC_REPLAY) {
        /* Not scored, but it explains why its message never came as a "message" event. */
        res->cls = TRUTH_DEC_SKIPPED;
        res->truth = item;
        if (item >= 0 && fields_equal(d, &T->recs[s->msgs[item].burst[0]]))
            set_miss(&s->msgs[item].miss, &s->msgs[item].related, TRUTH_MISS_REPLAY, (long)di);
        return;
    }
    if (nearest < 0) {
        res->cls = TRUTH_DEC_FALSE;
        res->truth = -1;
        return;
    }
    if (item < 0) {
        res->cls = TRUTH_DEC_MISPLACED;
        res->truth = nearest;
        if (is_msg)
            set_miss(&s->msgs[nearest].miss, &s->msgs[nearest].related, TRUTH_MISS_MISPLACED,
                     (long)di);
        else
            set_miss(&s->burst[nearest].miss, &s->burst[nearest].related, TRUTH_MISS_MISPLACED,
                     (long)di);
        return;
    }
    res->truth = item;
    const truth_rec_t *t = &T->recs[is_msg ? s->msgs[item].burst[0] : (size_t)item];
    if (!fields_equal(d, t)) {
        res->cls = TRUTH_DEC_WRONG;
        if (is_msg)
            set_miss(&s->msgs[item].miss, &s->msgs[item].related, TRUTH_MISS_WRONG_FIELDS,
                     (long)di);
        else
            set_miss(&s->burst[item].miss, &s->burst[item].related, TRUTH_MISS_WRONG_FIELDS,
                     (long)di);
        return;
    }
    if (best_free >= 0) {
        res->cls = TRUTH_DEC_MATCHED;
        if (is_msg)
            s->msgs[item].dec = (long)di;
        else
            s->burst[item].dec = (long)di;
    } else {
        res->cls = TRUTH_DEC_DUPLICATE;
    }
}

/* Why each unmatched burst and message was missed: what was decoded at its time and
 * carrier (tkeys: scratch for decoded->n entries). */
static void explain_misses(truth_score_t *s, time_key_t *tkeys)
{
    const truth_set_t *truth = s->truth, *decoded = s->decoded;
    const size_t n_msgs = s->n_msgs;
    size_t n_t = 0;
    for (size_t i = 0; i < decoded->n; i++) {
        const truth_rec_t *d = &decoded->recs[i];
        if (d->type == TRUTH_REC_FRAME && isfinite(d->t_start_s) && isfinite(d->freq_hz))
            tkeys[n_t++] = (time_key_t){d->t_start_s, i};
    }
    qsort(tkeys, n_t, sizeof *tkeys, cmp_time);
    for (size_t i = 0; i < truth->n; i++) {
        truth_burst_res_t *b = &s->burst[i];
        if (b->dec >= 0) {
            b->miss = TRUTH_MISS_NONE;
            b->related = -1;
            s->msgs[b->msg].frames_matched++;
            continue;
        }
        const truth_rec_t *t = &truth->recs[i];
        double t0 = t->t_start_s - truth_time_tol_s(&s->cfg, t->baud);
        size_t lo = 0, hi = n_t;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (tkeys[mid].t_s < t0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (size_t k = lo; k < n_t; k++) {
            const truth_rec_t *d = &decoded->recs[tkeys[k].idx];
            if (d->t_start_s > t->t_start_s + truth_time_tol_s(&s->cfg, t->baud))
                break;
            if (!in_tolerance(&s->cfg, t, d, NULL))
                continue;
            set_miss(&b->miss, &b->related,
                     d->has_fields ? TRUTH_MISS_OTHER_FRAME : TRUTH_MISS_CRC_BAD,
                     (long)tkeys[k].idx);
        }
        if (b->miss == TRUTH_MISS_NONE)
            b->miss = TRUTH_MISS_NOTHING;
    }
    for (size_t i = 0; i < n_msgs; i++) {
        truth_msg_t *m = &s->msgs[i];
        if (m->dec >= 0) {
            m->miss = TRUTH_MISS_NONE;
            m->related = -1;
            continue;
        }
        if (m->miss != TRUTH_MISS_NONE)
            continue; /* wrong fields or misplaced message event */
        if (m->frames_matched > 0) {
            m->miss = TRUTH_MISS_FRAMES_ONLY;
            for (int j = 0; j < m->n_bursts; j++)
                if (s->burst[m->burst[j]].dec >= 0) {
                    m->related = s->burst[m->burst[j]].dec;
                    break;
                }
            continue;
        }
        for (int j = 0; j < m->n_bursts; j++) {
            const truth_burst_res_t *b = &s->burst[m->burst[j]];
            set_miss(&m->miss, &m->related, b->miss, b->related);
        }
    }
}

/* The counts and error statistics of a classified score, per baud group. */
static void count_statistics(truth_score_t *s)
{
    const truth_set_t *truth = s->truth, *decoded = s->decoded;
    const size_t n_msgs = s->n_msgs;
    for (size_t i = 0; i < truth->n; i++) {
        const truth_rec_t *t = &truth->recs[i];
        const truth_burst_res_t *b = &s->burst[i];
        COUNT(s, t->baud, truth_frames);
        if (b->expected)
            COUNT(s, t->baud, expected_frames);
        if (b->dec >= 0) {
            const truth_rec_t *d = &decoded->recs[b->dec];
            COUNT(s, t->baud, matched_frames);
            if (b->expected)
                COUNT(s, t->baud, matched_expected_frames);
            if (!auth_ok(d))
                COUNT(s, t->baud, frames_auth_not_ok);
            double df = d->freq_hz - t->freq_hz;
            double dt = d->t_start_s - t->t_start_s;
            double dsnr = d->snr_db - t->ebn0_db; /* NAN when either is unknown */
            add_err(&s->stats[TRUTH_GROUP_ALL], df, dt, dsnr);
            if (group_of(t->baud) >= 0)
                add_err(&s->stats[group_of(t->baud)], df, dt, dsnr);
        } else {
            COUNT(s, t->baud, missed_frames);
            if (b->expected)
                COUNT(s, t->baud, missed_expected_frames);
        }
    }
    for (size_t i = 0; i < n_msgs; i++) {
        const truth_msg_t *m = &s->msgs[i];
        int baud = truth->recs[m->burst[0]].baud;
        COUNT(s, baud, truth_messages);
        if (m->expected)
            COUNT(s, baud, expected_messages);
        if (m->dec >= 0) {
            const truth_rec_t *d = &decoded->recs[m->dec];
            COUNT(s, baud, matched_messages);
            if (m->expected)
                COUNT(s, baud, matched_expected_messages);
            if (d->combined)
                COUNT(s, baud, combined_messages);
            if (!auth_ok(d))
                COUNT(s, baud, messages_auth_not_ok);
        } else {
            COUNT(s, baud, missed_messages);
            if (m->expected)
                COUNT(s, baud, missed_expected_messages);
        }
    }
    for (size_t i = 0; i < decoded->n; i++) {
        const truth_rec_t *d = &decoded->recs[i];
        const truth_dec_res_t *r = &s->dec[i];
        /* Baud of what it was compared with, else its own. */
        int baud = d->baud;
        if (r->truth >= 0 && d->type == TRUTH_REC_FRAME)
            baud = truth->recs[r->truth].baud;
        else if (r->truth >= 0)
            baud = truth->recs[s->msgs[r->truth].burst[0]].baud;
        if (d->type == TRUTH_REC_REPLAY) {
            COUNT(s, baud, replay_events);
            continue;
        }
        if (d->type == TRUTH_REC_FRAME && !d->has_fields) {
            COUNT(s, baud, crc_bad_frames);
            continue;
        }
        bool fr = d->type == TRUTH_REC_FRAME;
        if (fr)
            COUNT(s, baud, decoded_frames);
        else
            COUNT(s, baud, decoded_messages);
        switch (r->cls) {
        case TRUTH_DEC_FALSE:
            if (fr)
                COUNT(s, baud, false_frames);
            else
                COUNT(s, baud, false_messages);
            break;
        case TRUTH_DEC_WRONG:
            if (fr)
                COUNT(s, baud, wrong_frames);
            else
                COUNT(s, baud, wrong_messages);
            break;
        case TRUTH_DEC_MISPLACED:
            if (fr)
                COUNT(s, baud, misplaced_frames);
            else
                COUNT(s, baud, misplaced_messages);
            break;
        case TRUTH_DEC_DUPLICATE:
            if (fr)
                COUNT(s, baud, duplicate_frames);
            else
                COUNT(s, baud, duplicate_messages);
            break;
        default:
            break;
        }
    }
    for (int g = 0; g < TRUTH_GROUPS; g++)
        finish_err(&s->stats[g]);
}

int truth_score(truth_score_t *s, const truth_set_t *truth, const truth_set_t *decoded,
                const truth_config_t *cfg, char *err, size_t err_len)
{
    if (!s)
        return fail(err, err_len, TRUTH_ERR_ARG, "no score");
    memset(s, 0, sizeof *s);
    if (!truth || !decoded)
        return fail(err, err_len, TRUTH_ERR_ARG, "no truth or decoded set");
    if (cfg)
        s->cfg = *cfg;
    else
        truth_config_default(&s->cfg);
    if (!(s->cfg.freq_tol_hz >= 0) || !(s->cfg.time_tol_s >= 0) ||
        !(s->cfg.time_tol_symbols >= 0) || isnan(s->cfg.min_ebn0_db))
        return fail(err, err_len, TRUTH_ERR_ARG, "negative or NaN tolerance");
    s->truth = truth;
    s->decoded = decoded;
    for (size_t i = 0; i < truth->n; i++)
        if (truth->recs[i].type != TRUTH_REC_BURST)
            return fail(err, err_len, TRUTH_ERR_ARG, "truth set holds a decoded record");
    for (size_t i = 0; i < decoded->n; i++)
        if (decoded->recs[i].type == TRUTH_REC_BURST)
            return fail(err, err_len, TRUTH_ERR_ARG, "decoded set holds a truth record");

    int rc = TRUTH_ERR_NOMEM;
    burst_key_t *keys = NULL;
    time_key_t *tkeys = NULL;
    msg_sort_t *ms = NULL;
    size_t *order = NULL;
    s->burst = calloc(truth->n ? truth->n : 1, sizeof *s->burst);
    s->dec = calloc(decoded->n ? decoded->n : 1, sizeof *s->dec);
    keys = calloc(truth->n ? truth->n : 1, sizeof *keys);
    tkeys = calloc(decoded->n ? decoded->n : 1, sizeof *tkeys);
    ms = calloc(truth->n ? truth->n : 1, sizeof *ms);
    order = calloc(decoded->n ? decoded->n : 1, sizeof *order);
    if (!s->burst || !s->dec || !keys || !tkeys || !ms || !order)
        goto out;

    /* Truth messages: bursts grouped by (ep_id, mc, message). */
    for (size_t i = 0; i < truth->n; i++) {
        const truth_rec_t *t = &truth->recs[i];
        keys[i] = (burst_key_t){t->ep_id, t->mc, t->message, t->t_start_s, i};
        s->burst[i].dec = s->burst[i].related = -1;
        s->burst[i].expected = burst_expected(&s->cfg, t);
    }
    qsort(keys, truth->n, sizeof *keys, cmp_key);
    size_t n_msgs = 0;
    for (size_t k = 0; k < truth->n;) {
        size_t e = k + 1;
        while (e < truth->n && keys[e].ep_id == keys[k].ep_id && keys[e].mc == keys[k].mc &&
               keys[e].message == keys[k].message)
            e++;
        if (e - k > TRUTH_MAX_REPLICAS) {
            rc = fail(err, err_len, TRUTH_ERR_PARSE,
                      "%s:%u: more than %d bursts of ep_id %08X mc %d (lines %u, %u, %u, %u)",
                      truth->name, truth->recs[keys[k + 3].idx].line, TRUTH_MAX_REPLICAS,
                      (unsigned)keys[k].ep_id, keys[k].mc, truth->recs[keys[k].idx].line,
                      truth->recs[keys[k + 1].idx].line, truth->recs[keys[k + 2].idx].line,
                      truth->recs[keys[k + 3].idx].line);
            goto out;
        }
        truth_msg_t *m = &ms[n_msgs].m;
        ms[n_msgs].t_s = keys[k].t_s;
        m->dec = m->related = -1;
        for (size_t j = k; j < e; j++) {
            m->burst[m->n_bursts++] = keys[j].idx;
            m->expected |= s->burst[keys[j].idx].expected;
        }
        n_msgs++;
        k = e;
    }
    qsort(ms, n_msgs, sizeof *ms, cmp_msg);
    s->msgs = calloc(n_msgs ? n_msgs : 1, sizeof *s->msgs);
    if (!s->msgs)
        goto out;
    s->n_msgs = n_msgs;
    for (size_t i = 0; i < n_msgs; i++) {
        s->msgs[i] = ms[i].m;
        for (int j = 0; j < s->msgs[i].n_bursts; j++)
            s->burst[s->msgs[i].burst[j]].msg = (long)i;
    }

    /* Frames of known rank first, so a jointly decoded (rank 0) frame cannot take the
     * burst a ranked frame matches exactly; file order otherwise. */
    size_t n_order = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < decoded->n; i++) {
            const truth_rec_t *d = &decoded->recs[i];
            if (d->type == TRUTH_REC_FRAME && d->has_fields && (d->rank == 0) == (pass == 1))
                order[n_order++] = i;
        }
    for (size_t i = 0; i < decoded->n; i++) {
        s->dec[i].cls = TRUTH_DEC_SKIPPED;
        s->dec[i].truth = -1;
    }
    for (size_t i = 0; i < n_order; i++)
        classify(s, keys, truth->n, order[i]);
    for (size_t i = 0; i < decoded->n; i++)
        if (decoded->recs[i].type == TRUTH_REC_MESSAGE || decoded->recs[i].type == TRUTH_REC_REPLAY)
            classify(s, keys, truth->n, i);

    explain_misses(s, tkeys);
    count_statistics(s);
    rc = 0;
out:
    if (rc == TRUTH_ERR_NOMEM)
        fail(err, err_len, rc, "out of memory");
    free(keys);
    free(tkeys);
    free(ms);
    free(order);
    return rc;
}

/* ---- descriptions -------------------------------------------------------------------- */

/* snprintf that appends at *pos and never overruns. */
static void app(char *out, size_t len, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void app(char *out, size_t len, size_t *pos, const char *fmt, ...)
{
    if (!out || *pos + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *pos, len - *pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        *pos = *pos + (size_t)n < len ? *pos + (size_t)n : len - 1;
}

static void app_payload(char *out, size_t len, size_t *pos, const truth_rec_t *r)
{
    char hex[2 * TRUTH_MAX_PAYLOAD_BYTES + 1];
    if (r->one_bit)
        app(out, len, pos, "payload_bit %d", r->payload_bit);
    else
        app(out, len, pos, "payload \"%s\"", bytes_to_hex(r->payload, r->payload_len, hex));
}

/* "payload "0102" instead of "0103", bf true instead of false" */
static void app_diff(char *out, size_t len, size_t *pos, const truth_rec_t *d, const truth_rec_t *t)
{
    const char *sep = "";
    if (d->one_bit != t->one_bit || (d->one_bit && d->payload_bit != t->payload_bit) ||
        (!d->one_bit && (d->payload_len != t->payload_len ||
                         memcmp(d->payload, t->payload, d->payload_len) != 0))) {
        char a[2 * TRUTH_MAX_PAYLOAD_BYTES + 1], b[sizeof a];
        if (d->one_bit && t->one_bit)
            app(out, len, pos, "payload_bit %d instead of %d", d->payload_bit, t->payload_bit);
        else if (!d->one_bit && !t->one_bit)
            app(out, len, pos, "payload \"%s\" instead of \"%s\"",
                bytes_to_hex(d->payload, d->payload_len, a),
                bytes_to_hex(t->payload, t->payload_len, b));
        else {
            app_payload(out, len, pos, d);
            app(out, len, pos, " instead of ");
            app_payload(out, len, pos, t);
        }
        sep = ", ";
    }
    if (d->bf != t->bf) {
        app(out, len, pos, "%sbf %s instead of %s", sep, d->bf ? "true" : "false",
            t->bf ? "true" : "false");
        sep = ", ";
    }
    if (d->kind != t->kind)
        app(out, len, pos, "%skind %s instead of %s", sep, ul_kind_name(d->kind),
            ul_kind_name(t->kind));
}

static void app_rec(char *out, size_t len, size_t *pos, const truth_rec_t *r)
{
    if (r->has_fields)
        app(out, len, pos, "ep_id %08X mc %d ", (unsigned)r->ep_id, r->mc);
    if (r->type == TRUTH_REC_BURST || (r->type == TRUTH_REC_FRAME && r->rank > 0))
        app(out, len, pos, "rank %d ", r->rank);
    else if (r->type == TRUTH_REC_FRAME)
        app(out, len, pos, "joint ");
    if (r->baud)
        app(out, len, pos, "BR%d ", r->baud);
    app(out, len, pos, "t %.6f s %.1f Hz", r->t_start_s, r->freq_hz);
    if (isfinite(r->ebn0_db))
        app(out, len, pos, " Eb/N0 %.1f dB", r->ebn0_db);
    if (isfinite(r->snr_db))
        app(out, len, pos, " SNR %.1f dB", r->snr_db);
    if (r->collided)
        app(out, len, pos, " collided");
    if (r->interfered)
        app(out, len, pos, " interfered");
}

/* The reason text shared by bursts and messages; t is the truth burst the reason is
 * about (for messages, one of its bursts). */
static void app_reason(const truth_score_t *s, char *out, size_t len, size_t *pos,
                       truth_miss_t miss, long related, const truth_rec_t *t)
{
    const truth_rec_t *d = related >= 0 ? &s->decoded->recs[related] : NULL;
    unsigned dl = d ? d->line : 0;
    switch (miss) {
    case TRUTH_MISS_NONE:
        app(out, len, pos, "matched by decoded line %u", dl);
        break;
    case TRUTH_MISS_WRONG_FIELDS:
        app(out, len, pos, "decoded line %u has ", dl);
        if (d)
            app_diff(out, len, pos, d, t);
        break;
    case TRUTH_MISS_MISPLACED:
        app(out, len, pos,
            "decoded line %u is %+.1f ms and %+.1f Hz away (tolerance %.1f ms, "
            "%.0f Hz)",
            dl, d ? (d->t_start_s - t->t_start_s) * 1e3 : NAN, d ? d->freq_hz - t->freq_hz : NAN,
            truth_time_tol_s(&s->cfg, t->baud) * 1e3, s->cfg.freq_tol_hz);
        if (d && d->type == TRUTH_REC_FRAME && d->rank && d->rank != t->rank)
            app(out, len, pos, ", rank %d instead of %d", d->rank, t->rank);
        break;
    case TRUTH_MISS_REPLAY:
        app(out, len, pos, "published as a replay event only (decoded line %u)", dl);
        break;
    case TRUTH_MISS_CRC_BAD:
        app(out, len, pos,
            "only a frame with a bad CRC at that time and carrier (decoded line "
            "%u)",
            dl);
        break;
    case TRUTH_MISS_OTHER_FRAME:
        app(out, len, pos,
            "a frame of ep_id %08X mc %d at that time and carrier instead "
            "(decoded line %u)",
            d ? (unsigned)d->ep_id : 0u, d ? d->mc : 0, dl);
        break;
    case TRUTH_MISS_FRAMES_ONLY:
        app(out, len, pos, "frames decoded (decoded line %u) but no message event", dl);
        break;
    case TRUTH_MISS_NOTHING:
        app(out, len, pos, "no frame at that time and carrier");
        break;
    }
}

char *truth_describe_burst(const truth_score_t *s, size_t i, char *out, size_t len)
{
    size_t pos = 0;
    if (!out || !len)
        return out;
    out[0] = 0;
    if (!s || !s->truth || i >= s->truth->n)
        return out;
    const truth_rec_t *t = &s->truth->recs[i];
    const truth_burst_res_t *b = &s->burst[i];
    app(out, len, &pos, "truth line %u: ", t->line);
    app_rec(out, len, &pos, t);
    app(out, len, &pos, "%s: ", b->expected ? "" : " (not expected)");
    app_reason(s, out, len, &pos, b->miss, b->miss == TRUTH_MISS_NONE ? b->dec : b->related, t);
    return out;
}

char *truth_describe_msg(const truth_score_t *s, size_t i, char *out, size_t len)
{
    size_t pos = 0;
    if (!out || !len)
        return out;
    out[0] = 0;
    if (!s || i >= s->n_msgs)
        return out;
    const truth_msg_t *m = &s->msgs[i];
    const truth_rec_t *t0 = &s->truth->recs[m->burst[0]];
    app(out, len, &pos, "truth message ep_id %08X mc %d BR%d t %.6f s", (unsigned)t0->ep_id, t0->mc,
        t0->baud, t0->t_start_s);
    if (isfinite(t0->ebn0_db))
        app(out, len, &pos, " Eb/N0 %.1f dB", t0->ebn0_db);
    app(out, len, &pos, ", %d frame%s (line%s", m->n_bursts, m->n_bursts == 1 ? "" : "s",
        m->n_bursts == 1 ? "" : "s");
    for (int j = 0; j < m->n_bursts; j++)
        app(out, len, &pos, "%s %u", j ? "," : "", s->truth->recs[m->burst[j]].line);
    app(out, len, &pos, ")%s: ", m->expected ? "" : " (not expected)");
    /* The burst a burst-level reason is about. */
    const truth_rec_t *t = t0;
    for (int j = 0; j < m->n_bursts; j++)
        if (s->burst[m->burst[j]].related == m->related && m->related >= 0)
            t = &s->truth->recs[m->burst[j]];
    if (m->miss == TRUTH_MISS_FRAMES_ONLY)
        app(out, len, &pos, "%d of %d frames decoded (decoded line %u) but no message event",
            m->frames_matched, m->n_bursts,
            m->related >= 0 ? s->decoded->recs[m->related].line : 0u);
    else
        app_reason(s, out, len, &pos, m->miss, m->miss == TRUTH_MISS_NONE ? m->dec : m->related, t);
    return out;
}

char *truth_describe_dec(const truth_score_t *s, size_t i, char *out, size_t len)
{
    size_t pos = 0;
    if (!out || !len)
        return out;
    out[0] = 0;
    if (!s || !s->decoded || i >= s->decoded->n)
        return out;
    const truth_rec_t *d = &s->decoded->recs[i];
    const truth_dec_res_t *r = &s->dec[i];
    static const char *type_names[] = {"burst", "frame", "message", "replay"};
    app(out, len, &pos, "decoded line %u: %s ", d->line, type_names[d->type]);
    app_rec(out, len, &pos, d);
    app(out, len, &pos, ": %s", truth_dec_class_name(r->cls));
    const truth_rec_t *t = NULL;
    if (r->truth >= 0)
        t = &s->truth->recs[d->type == TRUTH_REC_MESSAGE ? s->msgs[r->truth].burst[0]
                                                         : (size_t)r->truth];
    switch (r->cls) {
    case TRUTH_DEC_SKIPPED:
        app(out, len, &pos,
            d->type == TRUTH_REC_REPLAY ? " (replay event, not scored)" : " (no message fields)");
        break;
    case TRUTH_DEC_MATCHED:
        app(out, len, &pos, ", truth line %u", t->line);
        break;
    case TRUTH_DEC_DUPLICATE: {
        long first = d->type == TRUTH_REC_MESSAGE ? s->msgs[r->truth].dec : s->burst[r->truth].dec;
        app(out, len, &pos, ", truth line %u was already matched by decoded line %u", t->line,
            first >= 0 ? s->decoded->recs[first].line : 0u);
        break;
    }
    case TRUTH_DEC_WRONG:
        app(out, len, &pos, ", truth line %u has other fields: ", t->line);
        app_diff(out, len, &pos, d, t);
        break;
    case TRUTH_DEC_MISPLACED:
        if (d->type == TRUTH_REC_MESSAGE) {
            /* the nearest burst of the nearest message */
            const truth_msg_t *m = &s->msgs[r->truth];
            for (int j = 1; j < m->n_bursts; j++) {
                const truth_rec_t *c = &s->truth->recs[m->burst[j]];
                if (fabs(c->t_start_s - d->t_start_s) < fabs(t->t_start_s - d->t_start_s))
                    t = c;
            }
        }
        app(out, len, &pos,
            ", nearest truth with this ep_id and mc: line %u, %+.1f ms and "
            "%+.1f Hz away",
            t->line, (d->t_start_s - t->t_start_s) * 1e3, d->freq_hz - t->freq_hz);
        if (d->type == TRUTH_REC_FRAME && d->rank && d->rank != t->rank)
            app(out, len, &pos, ", rank %d instead of %d", d->rank, t->rank);
        break;
    case TRUTH_DEC_FALSE:
        app(out, len, &pos, ", no truth burst has this ep_id and mc");
        break;
    }
    return out;
}

/* ---- expectations -------------------------------------------------------------------- */

void truth_expect_default(truth_expect_t *e)
{
    e->expect_all = false;
    e->frames = false;
    e->max_false = -1;
    e->max_duplicates = -1;
    e->max_wrong = -1;
    e->expect_auth = false;
    e->min_decoded = NAN;
    e->max_freq_rms_hz = NAN;
}

int truth_check(const truth_score_t *s, const truth_expect_t *e, char *why, size_t why_len)
{
    size_t pos = 0;
    int failed = 0;
    if (why && why_len)
        why[0] = 0;
    if (!s || !e)
        return 1;
    const truth_stats_t *a = &s->stats[TRUTH_GROUP_ALL];
    const char *unit = e->frames ? "frames" : "messages";
    size_t expected = e->frames ? a->expected_frames : a->expected_messages;
    size_t matched = e->frames ? a->matched_expected_frames : a->matched_expected_messages;
    if (e->expect_all && matched < expected) {
        failed++;
        app(why, why_len, &pos, "expect-all: %zu of %zu expected %s not decoded exactly\n",
            expected - matched, expected, unit);
    }
    if (isfinite(e->min_decoded) && expected > 0 &&
        (double)matched < e->min_decoded * (double)expected) {
        failed++;
        app(why, why_len, &pos, "min-decoded: %zu of %zu expected %s decoded (%.1f %% < %.1f %%)\n",
            matched, expected, unit, 100.0 * (double)matched / (double)expected,
            100.0 * e->min_decoded);
    }
    if (e->max_false >= 0 &&
        (a->false_frames > (size_t)e->max_false || a->false_messages > (size_t)e->max_false)) {
        failed++;
        app(why, why_len, &pos, "max-false: %zu false frames and %zu false messages (limit %ld)\n",
            a->false_frames, a->false_messages, e->max_false);
    }
    if (e->max_wrong >= 0 && (a->wrong_frames + a->misplaced_frames > (size_t)e->max_wrong ||
                              a->wrong_messages + a->misplaced_messages > (size_t)e->max_wrong)) {
        failed++;
        app(why, why_len, &pos,
            "max-wrong: %zu wrong + %zu misplaced frames, %zu wrong + %zu misplaced messages "
            "(limit %ld)\n",
            a->wrong_frames, a->misplaced_frames, a->wrong_messages, a->misplaced_messages,
            e->max_wrong);
    }
    if (e->max_duplicates >= 0 && (a->duplicate_frames > (size_t)e->max_duplicates ||
                                   a->duplicate_messages > (size_t)e->max_duplicates)) {
        failed++;
        app(why, why_len, &pos,
            "max-duplicates: %zu duplicate frames and %zu duplicate messages (limit %ld)\n",
            a->duplicate_frames, a->duplicate_messages, e->max_duplicates);
    }
    if (e->expect_auth && (a->frames_auth_not_ok || a->messages_auth_not_ok)) {
        failed++;
        app(why, why_len, &pos,
            "expect-auth: %zu matched frames and %zu matched messages without auth \"ok\"\n",
            a->frames_auth_not_ok, a->messages_auth_not_ok);
    }
    if (isfinite(e->max_freq_rms_hz)) {
        if (a->n_freq == 0) {
            failed++;
            app(why, why_len, &pos, "max-freq-rms: no matched frame to measure\n");
        } else if (a->freq_err_rms_hz > e->max_freq_rms_hz) {
            failed++;
            app(why, why_len, &pos, "max-freq-rms: carrier error %.2f Hz RMS > %.2f Hz\n",
                a->freq_err_rms_hz, e->max_freq_rms_hz);
        }
    }
    return failed;
}

/* ---- JSON report --------------------------------------------------------------------- */

/* Adds val (NULL = JSON null); returns 0 or -1. */
static int jadd(json_object *o, const char *key, json_object *val)
{
    return json_object_object_add(o, key, val) == 0 ? 0 : -1;
}

static json_object *jsize(size_t n)
{
    return json_object_new_int64((int64_t)n);
}

static json_object *stats_json(const truth_stats_t *st)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    int rc = 0;
#define N(f) rc |= jadd(o, #f, jsize(st->f))
    N(truth_frames);
    N(expected_frames);
    N(matched_frames);
    N(matched_expected_frames);
    N(missed_frames);
    N(missed_expected_frames);
    N(decoded_frames);
    N(false_frames);
    N(wrong_frames);
    N(misplaced_frames);
    N(duplicate_frames);
    N(crc_bad_frames);
    N(frames_auth_not_ok);
    N(truth_messages);
    N(expected_messages);
    N(matched_messages);
    N(matched_expected_messages);
    N(missed_messages);
    N(missed_expected_messages);
    N(decoded_messages);
    N(false_messages);
    N(wrong_messages);
    N(misplaced_messages);
    N(duplicate_messages);
    N(combined_messages);
    N(messages_auth_not_ok);
    N(replay_events);
#undef N
    rc |= framejson_add_num(o, "freq_err_rms_hz", st->freq_err_rms_hz, 2);
    rc |= framejson_add_num(o, "freq_err_max_hz", st->freq_err_max_hz, 2);
    rc |= framejson_add_num(o, "time_err_rms_ms", st->time_err_rms_ms, 3);
    rc |= framejson_add_num(o, "time_err_max_ms", st->time_err_max_ms, 3);
    rc |= framejson_add_num(o, "snr_minus_ebn0_mean_db", st->snr_minus_ebn0_mean_db, 2);
    rc |= framejson_add_num(o, "snr_minus_ebn0_rms_db", st->snr_minus_ebn0_rms_db, 2);
    if (rc) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static int rec_json(json_object *o, const truth_rec_t *r)
{
    static const char *type_names[] = {"burst", "frame", "message", "replay"};
    int rc = jadd(o, "type", json_object_new_string(type_names[r->type]));
    if (r->has_fields) {
        rc |= framejson_add_ep_id(o, r->ep_id);
        rc |= jadd(o, "mc", json_object_new_int(r->mc));
        if (r->one_bit)
            rc |= jadd(o, "payload_bit", json_object_new_int(r->payload_bit));
        else
            rc |= framejson_add_hex(o, "payload", r->payload, r->payload_len);
        rc |= jadd(o, "bf", json_object_new_boolean(r->bf));
        rc |= jadd(o, "kind", json_object_new_string(ul_kind_name(r->kind)));
    }
    if (r->type != TRUTH_REC_MESSAGE && r->type != TRUTH_REC_REPLAY)
        rc |= jadd(o, "rank", json_object_new_int(r->rank));
    if (r->baud)
        rc |= jadd(o, "baud", json_object_new_int(r->baud));
    rc |= framejson_add_num(o, "t_start_s", r->t_start_s, 6);
    rc |= framejson_add_num(o, "freq_hz", r->freq_hz, 1);
    if (r->type == TRUTH_REC_BURST) {
        rc |= framejson_add_num(o, "ebn0_db", r->ebn0_db, 2);
        rc |= jadd(o, "collided", json_object_new_boolean(r->collided));
        rc |= jadd(o, "interfered", json_object_new_boolean(r->interfered));
    } else {
        rc |= framejson_add_num(o, "snr_db", r->snr_db, 2);
    }
    return rc;
}

/* Appends one entry to the array under key (created on first use) unless max_list is
 * reached. */
static int list_add(json_object *report, const char *key, json_object *entry, long max_list,
                    bool *truncated)
{
    json_object *arr;
    if (!json_object_object_get_ex(report, key, &arr) || !arr) {
        json_object_put(entry);
        return -1;
    }
    if (max_list >= 0 && json_object_array_length(arr) >= (size_t)max_list) {
        *truncated = true;
        json_object_put(entry);
        return 0;
    }
    return json_object_array_add(arr, entry) == 0 ? 0 : (json_object_put(entry), -1);
}

json_object *truth_score_json(const truth_score_t *s, long max_list)
{
    if (!s || !s->truth || !s->decoded)
        return NULL;
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    int rc = jadd(o, "type", json_object_new_string("score"));
    rc |= jadd(o, "truth_file", json_object_new_string(s->truth->name));
    rc |= jadd(o, "decoded_file", json_object_new_string(s->decoded->name));

    json_object *c = json_object_new_object();
    rc |= jadd(o, "config", c);
    if (c) {
        rc |= framejson_add_num(c, "time_tol_symbols", s->cfg.time_tol_symbols, 3);
        rc |= framejson_add_num(c, "time_tol_s", s->cfg.time_tol_s, 6);
        rc |= framejson_add_num(c, "freq_tol_hz", s->cfg.freq_tol_hz, 6);
        rc |= framejson_add_num(c, "min_ebn0_db", s->cfg.min_ebn0_db, 2);
        rc |= jadd(c, "expect_collided", json_object_new_boolean(s->cfg.expect_collided));
        rc |= jadd(c, "expect_interfered", json_object_new_boolean(s->cfg.expect_interfered));
    }
    json_object *in = json_object_new_object();
    rc |= jadd(o, "input", in);
    if (in) {
        rc |= jadd(in, "truth_lines", jsize(s->truth->n_lines));
        rc |= jadd(in, "truth_bursts", jsize(s->truth->n));
        rc |= jadd(in, "truth_messages", jsize(s->n_msgs));
        rc |= jadd(in, "interferers", jsize(s->truth->n_interferers));
        rc |= jadd(in, "decoded_lines", jsize(s->decoded->n_lines));
        rc |= jadd(in, "decoded_records", jsize(s->decoded->n));
        rc |= jadd(in, "decoded_skipped_lines", jsize(s->decoded->n_skipped));
    }
    json_object *g = json_object_new_object();
    rc |= jadd(o, "groups", g);
    for (int i = 0; g && i < TRUTH_GROUPS; i++) {
        json_object *st = stats_json(&s->stats[i]);
        rc |= st ? jadd(g, truth_group_name(i), st) : -1;
    }

    static const char *lists[] = {"missed_frames", "missed_messages", "false",
                                  "wrong",         "misplaced",       "duplicate"};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        rc |= jadd(o, lists[i], json_object_new_array());
    bool truncated = false;
    char text[512];
    for (size_t i = 0; rc == 0 && i < s->truth->n; i++) {
        const truth_burst_res_t *b = &s->burst[i];
        if (b->dec >= 0)
            continue;
        json_object *e = json_object_new_object();
        if (!e) {
            rc = -1;
            break;
        }
        rc |= jadd(e, "truth_line", json_object_new_int((int)s->truth->recs[i].line));
        rc |= rec_json(e, &s->truth->recs[i]);
        rc |= jadd(e, "expected", json_object_new_boolean(b->expected));
        rc |= jadd(e, "reason", json_object_new_string(truth_miss_name(b->miss)));
        if (b->related >= 0)
            rc |= jadd(e, "decoded_line",
                       json_object_new_int((int)s->decoded->recs[b->related].line));
        rc |=
            jadd(e, "text", json_object_new_string(truth_describe_burst(s, i, text, sizeof text)));
        rc |= list_add(o, "missed_frames", e, max_list, &truncated);
    }
    for (size_t i = 0; rc == 0 && i < s->n_msgs; i++) {
        const truth_msg_t *m = &s->msgs[i];
        if (m->dec >= 0)
            continue;
        json_object *e = json_object_new_object();
        if (!e) {
            rc = -1;
            break;
        }
        json_object *lines = json_object_new_array();
        for (int j = 0; lines && j < m->n_bursts; j++)
            json_object_array_add(lines,
                                  json_object_new_int((int)s->truth->recs[m->burst[j]].line));
        rc |= jadd(e, "truth_lines", lines);
        rc |= rec_json(e, &s->truth->recs[m->burst[0]]);
        json_object_object_del(e, "rank");
        rc |= jadd(e, "type", json_object_new_string("message"));
        rc |= jadd(e, "n_frames", json_object_new_int(m->n_bursts));
        rc |= jadd(e, "frames_matched", json_object_new_int(m->frames_matched));
        rc |= jadd(e, "expected", json_object_new_boolean(m->expected));
        rc |= jadd(e, "reason", json_object_new_string(truth_miss_name(m->miss)));
        if (m->related >= 0)
            rc |= jadd(e, "decoded_line",
                       json_object_new_int((int)s->decoded->recs[m->related].line));
        rc |= jadd(e, "text", json_object_new_string(truth_describe_msg(s, i, text, sizeof text)));
        rc |= list_add(o, "missed_messages", e, max_list, &truncated);
    }
    for (size_t i = 0; rc == 0 && i < s->decoded->n; i++) {
        const truth_dec_res_t *r = &s->dec[i];
        if (r->cls == TRUTH_DEC_SKIPPED || r->cls == TRUTH_DEC_MATCHED)
            continue;
        json_object *e = json_object_new_object();
        if (!e) {
            rc = -1;
            break;
        }
        rc |= jadd(e, "decoded_line", json_object_new_int((int)s->decoded->recs[i].line));
        rc |= rec_json(e, &s->decoded->recs[i]);
        if (r->truth >= 0) {
            size_t ti = s->decoded->recs[i].type == TRUTH_REC_MESSAGE ? s->msgs[r->truth].burst[0]
                                                                      : (size_t)r->truth;
            rc |= jadd(e, "truth_line", json_object_new_int((int)s->truth->recs[ti].line));
        }
        rc |= jadd(e, "text", json_object_new_string(truth_describe_dec(s, i, text, sizeof text)));
        rc |= list_add(o, truth_dec_class_name(r->cls), e, max_list, &truncated);
    }
    rc |= jadd(o, "lists_truncated", json_object_new_boolean(truncated));
    if (rc) {
        json_object_put(o);
        return NULL;
    }
    return o;
}
