/* callback: Sigfox-style HTTP callbacks with a SQLite retry queue (seeds/000 §7.1.3).
 * Licence: MIT. */
#define _GNU_SOURCE
#include "callback.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "errbuf.h"
#include "hexutil.h"
#include "jsonstrict.h"
#include "log.h"
#include "nsdb.h"

#define MAX_DEFS 64
#define MAX_FAILURE_ROWS 1000
/* A response body is read up to this size (only downlink answers are looked at). */
#define MAX_RESPONSE 65536

typedef struct {
    char name[CALLBACK_NAME_MAX + 1];
    char device_type[64];
    appevent_type_t type;
    callback_media_t media;
    char method[8];
    char content_type[128];
    bool downlink;
    cbtemplate_t *url, *body;
    cbtemplate_t *hdr[CALLBACK_MAX_HEADERS];
    char hdr_name[CALLBACK_MAX_HEADERS][64];
    size_t nheaders;
    int64_t last_batch_ms;
} def_t;

typedef struct xfer {
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    int64_t *ids;    /* queue rows in this request */
    size_t nids;
    int tries;       /* tries before this attempt (simple requests) */
    bool ack;        /* a downlink answer is expected */
    uint32_t ep_id;
    int mc;
    int64_t deadline_ms;
    char callback[CALLBACK_NAME_MAX + 1];
    char resp[CALLBACK_MAX_ANSWER + 1];
    size_t resp_len;   /* bytes stored in resp */
    size_t resp_total; /* bytes received */
    char curl_err[CURL_ERROR_SIZE];
    struct xfer *next;
} xfer_t;

struct callback {
    callback_config_t cfg;
    nsdb_t *db;
    const char *inst; /* cfg.instance or "" */
    char url_red[512]; /* the queue database, for logs */
    CURLM *multi;
    def_t *defs[MAX_DEFS];
    size_t ndefs;
    xfer_t *inflight;
    int ninflight;
    callback_stats_t st;
};

static int64_t now_ms(const callback_t *cb)
{
    if (cb->cfg.now_ms)
        return cb->cfg.now_ms(cb->cfg.clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *callback_dl_status_name(callback_dl_status_t s)
{
    switch (s) {
    case CALLBACK_DL_PAYLOAD:
        return "payload";
    case CALLBACK_DL_NONE:
        return "none";
    case CALLBACK_DL_LATE:
        return "late";
    case CALLBACK_DL_MALFORMED:
        return "malformed";
    case CALLBACK_DL_OVERSIZED:
        return "oversized";
    case CALLBACK_DL_FAILED:
        return "failed";
    }
    return "?";
}

callback_t *callback_create(const callback_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg || !cfg->db_path || !cfg->db_path[0]) {
        errbuf_set(err, err_len, "callback: db_path (queue database) missing");
        return NULL;
    }
    callback_t *cb = calloc(1, sizeof *cb);
    if (!cb) {
        errbuf_set(err, err_len, "callback: out of memory");
        return NULL;
    }
    cb->cfg = *cfg;
    if (cb->cfg.timeout_ms <= 0)
        cb->cfg.timeout_ms = 10000;
    if (cb->cfg.retry_delay_ms <= 0)
        cb->cfg.retry_delay_ms = 60000;
    if (cb->cfg.max_tries <= 0)
        cb->cfg.max_tries = 10;
    if (cb->cfg.batch_interval_ms <= 0)
        cb->cfg.batch_interval_ms = 1000;
    if (cb->cfg.max_in_flight <= 0)
        cb->cfg.max_in_flight = 8;
    cb->inst = cfg->instance ? cfg->instance : "";
    nsdb_url_redacted(cfg->db_path, cb->url_red, sizeof cb->url_red);
    char why[300];
    if (!(cb->db = nsdb_open(cfg->db_path, 5000, why, sizeof why))) {
        errbuf_set(err, err_len, "callback: queue database %s: %s", cb->url_red, why);
        goto fail;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(cb->multi = curl_multi_init())) {
        errbuf_set(err, err_len, "callback: libcurl initialisation failed");
        goto fail;
    }
    int64_t rows = 0;
    nsdb_val_t qp[] = {NSDB_TEXT(cb->inst)};
    if (nsdb_query_int(cb->db, "SELECT count(*) FROM app_callback_queue WHERE instance = $1", qp,
                       1, &rows) > 0)
        cb->st.queued = (uint64_t)rows;
    if (cb->st.queued)
        log_info("Callback queue resumed, rows: %" PRIu64 ", db: %s", cb->st.queued, cb->url_red);
    return cb;
fail:
    callback_destroy(cb);
    return NULL;
}

static void def_free(def_t *d)
{
    if (!d)
        return;
    cbtemplate_destroy(d->url);
    cbtemplate_destroy(d->body);
    for (size_t i = 0; i < d->nheaders; i++)
        cbtemplate_destroy(d->hdr[i]);
    free(d);
}

static void xfer_free(callback_t *cb, xfer_t *x)
{
    if (x->easy) {
        curl_multi_remove_handle(cb->multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x->ids);
    free(x);
}

void callback_destroy(callback_t *cb)
{
    if (!cb)
        return;
    while (cb->inflight) {
        xfer_t *x = cb->inflight;
        cb->inflight = x->next;
        xfer_free(cb, x);
    }
    for (size_t i = 0; i < cb->ndefs; i++)
        def_free(cb->defs[i]);
    if (cb->multi) {
        curl_multi_cleanup(cb->multi);
        curl_global_cleanup();
    }
    nsdb_close(cb->db);
    free(cb);
}

static bool printable(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= max || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] >= 0x7f)
            return false;
    return n > 0;
}

int callback_add(callback_t *cb, const callback_def_t *d, char *err, size_t err_len)
{
    if (!cb || !d || !d->name || !printable(d->name, CALLBACK_NAME_MAX)) {
        errbuf_set(err, err_len, "callback: name must have 1..%d printable characters",
                   CALLBACK_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < cb->ndefs; i++)
        if (strcmp(cb->defs[i]->name, d->name) == 0) {
            errbuf_set(err, err_len, "callback %s: duplicate name", d->name);
            return -1;
        }
    if (cb->ndefs == MAX_DEFS) {
        errbuf_set(err, err_len, "callback %s: more than %d callbacks", d->name, MAX_DEFS);
        return -1;
    }
    if (d->type > APPEVENT_ERROR || d->media > CALLBACK_BATCH) {
        errbuf_set(err, err_len, "callback %s: bad type or media", d->name);
        return -1;
    }
    if (!d->url || !d->url[0]) {
        errbuf_set(err, err_len, "callback %s: url missing", d->name);
        return -1;
    }
    if (strncasecmp(d->url, "http://", 7) != 0 && strncasecmp(d->url, "https://", 8) != 0) {
        errbuf_set(err, err_len, "callback %s: url must start with http:// or https://", d->name);
        return -1;
    }
    if (d->nheaders > CALLBACK_MAX_HEADERS) {
        errbuf_set(err, err_len, "callback %s: more than %d headers", d->name, CALLBACK_MAX_HEADERS);
        return -1;
    }
    def_t *x = calloc(1, sizeof *x);
    if (!x) {
        errbuf_set(err, err_len, "callback %s: out of memory", d->name);
        return -1;
    }
    snprintf(x->name, sizeof x->name, "%s", d->name);
    if (d->device_type && !printable(d->device_type, sizeof x->device_type - 1) &&
        d->device_type[0]) {
        errbuf_set(err, err_len, "callback %s: bad device type name", d->name);
        goto fail;
    }
    snprintf(x->device_type, sizeof x->device_type, "%s", d->device_type ? d->device_type : "");
    x->type = d->type;
    x->media = d->media;
    x->downlink = d->downlink && d->type == APPEVENT_DATA;
    const char *m = d->method && d->method[0] ? d->method : "POST";
    if (strcmp(m, "GET") && strcmp(m, "POST") && strcmp(m, "PUT")) {
        errbuf_set(err, err_len, "callback %s: method must be GET, POST or PUT", d->name);
        goto fail;
    }
    if (d->media == CALLBACK_BATCH && strcmp(m, "POST") != 0) {
        errbuf_set(err, err_len, "callback %s: batch callbacks use POST", d->name);
        goto fail;
    }
    if (d->media == CALLBACK_BATCH && d->downlink) {
        errbuf_set(err, err_len, "callback %s: only simple callbacks answer downlinks", d->name);
        goto fail;
    }
    snprintf(x->method, sizeof x->method, "%s", m);
    const char *ct = d->content_type && d->content_type[0] ? d->content_type : "application/json";
    if (!printable(ct, sizeof x->content_type - 1)) {
        errbuf_set(err, err_len, "callback %s: bad content type", d->name);
        goto fail;
    }
    snprintf(x->content_type, sizeof x->content_type, "%s", ct);
    char terr[200];
    x->url = cbtemplate_create(d->url, d->type, terr, sizeof terr);
    if (!x->url) {
        errbuf_set(err, err_len, "callback %s: url %s", d->name, terr);
        goto fail;
    }
    if (d->media == CALLBACK_BATCH && strchr(d->url, '{')) {
        /* one request carries many events: its URL cannot depend on one of them */
        appevent_t probe;
        appevent_init(&probe);
        char *u = cbtemplate_expand(x->url, &probe, CBTEMPLATE_ESC_URL);
        bool same = u && strcmp(u, d->url) == 0;
        free(u);
        if (!same) {
            errbuf_set(err, err_len, "callback %s: a batch url cannot use variables", d->name);
            goto fail;
        }
    }
    if (d->body && d->body[0]) {
        if (strcmp(m, "GET") == 0) {
            errbuf_set(err, err_len, "callback %s: GET has no body", d->name);
            goto fail;
        }
        x->body = cbtemplate_create(d->body, d->type, terr, sizeof terr);
        if (!x->body) {
            errbuf_set(err, err_len, "callback %s: body %s", d->name, terr);
            goto fail;
        }
    } else if (d->media == CALLBACK_BATCH) {
        errbuf_set(err, err_len, "callback %s: a batch callback needs a line template (body)",
                   d->name);
        goto fail;
    }
    for (size_t i = 0; i < d->nheaders; i++) {
        const char *h = d->headers[i];
        const char *colon = h ? strchr(h, ':') : NULL;
        size_t nl = colon ? (size_t)(colon - h) : 0;
        bool ok = nl > 0 && nl < sizeof x->hdr_name[i];
        for (size_t k = 0; ok && k < nl; k++)
            ok = isalnum((unsigned char)h[k]) || h[k] == '-' || h[k] == '_';
        if (!ok) {
            errbuf_set(err, err_len, "callback %s: header %zu must be \"Name: value\"", d->name,
                       i + 1);
            goto fail;
        }
        memcpy(x->hdr_name[i], h, nl);
        x->hdr_name[i][nl] = '\0';
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        x->hdr[i] = cbtemplate_create(v, d->type, terr, sizeof terr);
        if (!x->hdr[i]) {
            errbuf_set(err, err_len, "callback %s: header %s %s", d->name, x->hdr_name[i], terr);
            goto fail;
        }
        x->nheaders = i + 1;
    }
    cb->defs[cb->ndefs++] = x;
    return 0;
fail:
    def_free(x);
    return -1;
}

int callback_remove(callback_t *cb, const char *name)
{
    for (size_t i = 0; cb && name && i < cb->ndefs; i++)
        if (strcmp(cb->defs[i]->name, name) == 0) {
            def_free(cb->defs[i]);
            memmove(&cb->defs[i], &cb->defs[i + 1], (cb->ndefs - i - 1) * sizeof cb->defs[0]);
            cb->ndefs--;
            return 0;
        }
    return -1;
}

size_t callback_count(const callback_t *cb)
{
    return cb ? cb->ndefs : 0;
}

static int insert_row(callback_t *cb, nsdb_t *db, const def_t *d, const char *url,
                      const char *headers, const char *body, const appevent_t *ev, bool ack,
                      int64_t deadline_ms, int64_t now)
{
    nsdb_val_t p[] = {NSDB_TEXT(cb->inst), NSDB_TEXT(d->name), NSDB_INT(d->media),
                      NSDB_TEXT(d->method), NSDB_TEXT(url), NSDB_TEXT(headers), NSDB_TEXT(body),
                      NSDB_INT(ev->ep_id), NSDB_INT(ev->seq), NSDB_INT(ack),
                      NSDB_INT(deadline_ms), NSDB_INT(now), NSDB_INT(now)};
    return nsdb_exec(db,
                     "INSERT INTO app_callback_queue (instance, callback, media, method, url,"
                     " headers, body, ep_id, mc, ack, deadline_ms, next_ms, created_ms)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                     p, 13) < 0 ? -1 : 0;
}

int callback_submit(callback_t *cb, const appevent_t *ev, int64_t dl_deadline_ms)
{
    return callback_submit_tx(cb, cb ? cb->db : NULL, ev, dl_deadline_ms);
}

int callback_submit_tx(callback_t *cb, nsdb_t *db, const appevent_t *ev, int64_t dl_deadline_ms)
{
    if (!cb || !ev || !db)
        return -1;
    int64_t now = now_ms(cb);
    int queued = 0;
    for (size_t i = 0; i < cb->ndefs; i++) {
        const def_t *d = cb->defs[i];
        if (d->type != ev->type || (d->device_type[0] && strcmp(d->device_type, ev->device_type)))
            continue;
        cbtemplate_escape_t besc = cbtemplate_escape_for_content_type(d->content_type);
        char *url = cbtemplate_expand(d->url, ev, CBTEMPLATE_ESC_URL);
        char *body = d->body ? cbtemplate_expand(d->body, ev, besc) : strdup("");
        /* headers: "Name: value\n" each, Content-Type last */
        size_t hcap = 256, hlen = 0;
        char *hdrs = malloc(hcap);
        bool ok = url && body && hdrs;
        if (hdrs)
            hdrs[0] = '\0';
        for (size_t k = 0; ok && k <= d->nheaders; k++) {
            char *v = k < d->nheaders ? cbtemplate_expand(d->hdr[k], ev, CBTEMPLATE_ESC_HEADER)
                                      : strdup(d->content_type);
            const char *name = k < d->nheaders ? d->hdr_name[k] : "Content-Type";
            ok = v != NULL;
            size_t need = hlen + strlen(name) + strlen(v ? v : "") + 4;
            if (ok && need > hcap) {
                char *n = realloc(hdrs, need * 2);
                ok = n != NULL;
                if (n) {
                    hdrs = n;
                    hcap = need * 2;
                }
            }
            if (ok)
                hlen += (size_t)sprintf(hdrs + hlen, "%s: %s\n", name, v);
            free(v);
        }
        bool ack = ev->ack && d->downlink;
        int rc = ok ? insert_row(cb, db, d, url, hdrs, body, ev, ack, ack ? dl_deadline_ms : 0, now)
                    : -1;
        if (!ok)
            log_error("Callback not queued (template output over %d bytes or no memory), "
                      "callback: %s, device: %08X",
                      CBTEMPLATE_MAX_OUT, d->name, ev->ep_id);
        free(url);
        free(body);
        free(hdrs);
        if (ok && rc < 0) {
            log_error("Callback queue insert failed, callback: %s, error: %s", d->name,
                      nsdb_errmsg(db));
            return -1;
        }
        if (rc == 0) {
            queued++;
            cb->st.submitted++;
            cb->st.queued++;
        }
    }
    return queued;
}

static bool in_flight(const callback_t *cb, int64_t id)
{
    for (const xfer_t *x = cb->inflight; x; x = x->next)
        for (size_t i = 0; i < x->nids; i++)
            if (x->ids[i] == id)
                return true;
    return false;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t len = size * n;
    if (x->resp_total + len > MAX_RESPONSE)
        return 0; /* abort: no endpoint needs to send that much */
    size_t room = sizeof x->resp - 1 - x->resp_len;
    size_t k = len < room ? len : room;
    memcpy(x->resp + x->resp_len, p, k);
    x->resp_len += k;
    x->resp[x->resp_len] = '\0';
    x->resp_total += len;
    return len;
}

/* Builds and starts one request. Takes ownership of ids. */
static int start_xfer(callback_t *cb, const char *name, const char *method, const char *url,
                      const char *headers, char *body, int64_t *ids, size_t nids, int tries,
                      bool ack, uint32_t ep_id, int mc, int64_t deadline_ms)
{
    xfer_t *x = calloc(1, sizeof *x);
    if (!x) {
        free(body);
        free(ids);
        return -1;
    }
    x->body = body;
    x->ids = ids;
    x->nids = nids;
    x->tries = tries;
    x->ack = ack;
    x->ep_id = ep_id;
    x->mc = mc;
    x->deadline_ms = deadline_ms;
    snprintf(x->callback, sizeof x->callback, "%s", name);
    x->easy = curl_easy_init();
    if (!x->easy)
        goto fail;
    /* headers: one per stored line */
    const char *p = headers;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[1024];
        if (n < sizeof line) {
            memcpy(line, p, n);
            line[n] = '\0';
            struct curl_slist *h = curl_slist_append(x->headers, line);
            if (!h)
                goto fail;
            x->headers = h;
        }
        p = nl ? nl + 1 : p + n;
    }
    struct curl_slist *h = curl_slist_append(x->headers, "Expect:");
    if (!h)
        goto fail;
    x->headers = h;
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cb->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cb->cfg.timeout_ms);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "sigfox-ns callback");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_err);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
        if (strcmp(method, "PUT") == 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
    }
    if (curl_multi_add_handle(cb->multi, e) != CURLM_OK)
        goto fail;
    x->next = cb->inflight;
    cb->inflight = x;
    cb->ninflight++;
    cb->st.attempts++;
    return 0;
fail:
    if (x->easy) {
        curl_easy_cleanup(x->easy);
        x->easy = NULL;
    }
    xfer_free(cb, x);
    return -1;
}

static int start_simple(callback_t *cb, int64_t now)
{
    if (cb->ninflight >= cb->cfg.max_in_flight)
        return 0; /* no room: do not even read the queue (this runs on the ingest loop) */
    nsdb_rows_t *r = NULL;
    nsdb_val_t p[] = {NSDB_TEXT(cb->inst), NSDB_INT(now)};
    if (nsdb_query(cb->db,
                   "SELECT id, callback, method, url, headers, body, tries, ack, ep_id, mc,"
                   " deadline_ms FROM app_callback_queue WHERE instance = $1 AND media = 0"
                   " AND next_ms <= $2 ORDER BY ack DESC, next_ms, id LIMIT 64",
                   p, 2, &r) < 0)
        return -1;
    for (size_t i = 0; i < nsdb_rows_count(r) && cb->ninflight < cb->cfg.max_in_flight; i++) {
        int64_t id = nsdb_rows_int(r, i, 0);
        if (in_flight(cb, id))
            continue;
        int64_t *ids = malloc(sizeof *ids);
        char *body = strdup(nsdb_rows_text(r, i, 5) ? nsdb_rows_text(r, i, 5) : "");
        if (!ids || !body) {
            free(ids);
            free(body);
            break;
        }
        ids[0] = id;
        start_xfer(cb, nsdb_rows_text(r, i, 1), nsdb_rows_text(r, i, 2), nsdb_rows_text(r, i, 3),
                   nsdb_rows_text(r, i, 4), body, ids, 1, (int)nsdb_rows_int(r, i, 6),
                   nsdb_rows_int(r, i, 7) != 0, (uint32_t)nsdb_rows_int(r, i, 8),
                   (int)nsdb_rows_int(r, i, 9), nsdb_rows_int(r, i, 10));
    }
    nsdb_rows_free(r);
    return 0;
}

/* Gathers due rows of one batch callback into one request. */
static int start_batch(callback_t *cb, def_t *d, int64_t now)
{
    if (now - d->last_batch_ms < cb->cfg.batch_interval_ms && d->last_batch_ms)
        return 0;
    for (const xfer_t *x = cb->inflight; x; x = x->next)
        if (strcmp(x->callback, d->name) == 0)
            return 0; /* one request of a batch callback at a time */
    nsdb_rows_t *r = NULL;
    nsdb_val_t p[] = {NSDB_TEXT(cb->inst), NSDB_TEXT(d->name), NSDB_INT(now),
                      NSDB_INT(CALLBACK_MAX_BATCH)};
    if (nsdb_query(cb->db,
                   "SELECT id, url, headers, body, tries FROM app_callback_queue"
                   " WHERE instance = $1 AND media = 1 AND callback = $2 AND next_ms <= $3"
                   " ORDER BY id LIMIT $4",
                   p, 4, &r) < 0)
        return -1;
    int64_t *ids = malloc(CALLBACK_MAX_BATCH * sizeof *ids);
    size_t n = 0, blen = 0, bcap = 4096;
    char *body = malloc(bcap);
    char *url = NULL, *headers = NULL;
    int tries = 0;
    if (!ids || !body)
        goto done;
    body[0] = '\0';
    for (size_t i = 0; i < nsdb_rows_count(r) && n < CALLBACK_MAX_BATCH; i++) {
        const char *line = nsdb_rows_text(r, i, 3) ? nsdb_rows_text(r, i, 3) : "";
        size_t ll = strlen(line);
        if (blen + ll + 2 > bcap) {
            size_t nc = (blen + ll + 2) * 2;
            char *nb = realloc(body, nc);
            if (!nb)
                break;
            body = nb;
            bcap = nc;
        }
        memcpy(body + blen, line, ll);
        blen += ll;
        body[blen++] = '\n';
        body[blen] = '\0';
        if (!url) {
            url = strdup(nsdb_rows_text(r, i, 1) ? nsdb_rows_text(r, i, 1) : "");
            headers = strdup(nsdb_rows_text(r, i, 2) ? nsdb_rows_text(r, i, 2) : "");
        }
        int t = (int)nsdb_rows_int(r, i, 4);
        tries = t > tries ? t : tries;
        ids[n++] = nsdb_rows_int(r, i, 0);
    }
    if (n && url && headers) {
        d->last_batch_ms = now;
        start_xfer(cb, d->name, "POST", url, headers, body, ids, n, tries, false, 0, -1, 0);
        body = NULL;
        ids = NULL;
    }
done:
    nsdb_rows_free(r);
    free(ids);
    free(body);
    free(url);
    free(headers);
    return 0;
}

void callback_parse_answer(long http_status, const char *body, size_t len, uint32_t ep_id,
                           callback_dl_answer_t *a)
{
    a->status = CALLBACK_DL_MALFORMED;
    a->reason[0] = '\0';
    memset(a->payload, 0, sizeof a->payload);
    if (http_status < 200 || http_status > 299) {
        a->status = CALLBACK_DL_FAILED;
        errbuf_set(a->reason, sizeof a->reason, "HTTP status %ld", http_status);
        return;
    }
    if (len > CALLBACK_MAX_ANSWER) {
        a->status = CALLBACK_DL_OVERSIZED;
        errbuf_set(a->reason, sizeof a->reason, "answer of %zu bytes, more than %d", len,
                   CALLBACK_MAX_ANSWER);
        return;
    }
    size_t k = 0;
    while (k < len && (body[k] == ' ' || body[k] == '\t' || body[k] == '\r' || body[k] == '\n'))
        k++;
    if (http_status == 204 || k == len) {
        a->status = CALLBACK_DL_NONE;
        return;
    }
    char jerr[120];
    json_object *o = jsonstrict_parse(body, len, 8, jerr, sizeof jerr);
    if (!o || !json_object_is_type(o, json_type_object)) {
        errbuf_set(a->reason, sizeof a->reason, "answer is not a JSON object: %s",
                   o ? "other value" : jerr);
        goto out;
    }
    json_object *dev = NULL;
    int nkeys = 0;
    json_object_object_foreach(o, key, val)
    {
        nkeys++;
        uint32_t id;
        size_t kl = strlen(key);
        char padded[9];
        if (kl >= 1 && kl <= 8) {
            snprintf(padded, sizeof padded, "%08d", 0);
            memcpy(padded + 8 - kl, key, kl);
            if (hex_to_ep_id(padded, &id) == 0 && id == ep_id)
                dev = val;
        }
    }
    if (!dev) {
        errbuf_set(a->reason, sizeof a->reason, "answer has no member for device %08X (%d members)",
                   ep_id, nkeys);
        goto out;
    }
    json_object *dd;
    if (!json_object_is_type(dev, json_type_object) ||
        !json_object_object_get_ex(dev, "downlinkData", &dd) ||
        !json_object_is_type(dd, json_type_string)) {
        errbuf_set(a->reason, sizeof a->reason, "answer has no downlinkData string");
        goto out;
    }
    const char *hex = json_object_get_string(dd);
    size_t hl = strlen(hex);
    bool hexok = hl == 16;
    for (size_t i = 0; hexok && i < hl; i++)
        hexok = isxdigit((unsigned char)hex[i]);
    if (!hexok || hex_to_bytes(hex, a->payload, sizeof a->payload) != 8) {
        errbuf_set(a->reason, sizeof a->reason,
                   "downlinkData must be 16 hex digits (8 bytes), got %zu characters", hl);
        memset(a->payload, 0, sizeof a->payload);
        goto out;
    }
    a->status = CALLBACK_DL_PAYLOAD;
out:
    json_object_put(o);
}

static void record_failure(callback_t *cb, const xfer_t *x, int tries, const char *error,
                           int64_t now)
{
    nsdb_val_t p[] = {NSDB_INT(now), NSDB_TEXT(cb->inst), NSDB_TEXT(x->callback),
                      NSDB_INT(x->ep_id), NSDB_INT(tries), NSDB_TEXT(error)};
    if (nsdb_exec(cb->db,
                  "INSERT INTO app_callback_failure (time_ms, instance, callback, ep_id, tries,"
                  " error) VALUES ($1, $2, $3, $4, $5, $6)",
                  p, 6) < 0)
        log_warn("Callback failure not recorded, error: %s", nsdb_errmsg(cb->db));
    nsdb_val_t q[] = {NSDB_INT(MAX_FAILURE_ROWS)};
    nsdb_exec(cb->db,
              "DELETE FROM app_callback_failure WHERE id <= "
              "(SELECT max(id) FROM app_callback_failure) - $1",
              q, 1);
}

static void finish_xfer(callback_t *cb, xfer_t *x, CURLcode res)
{
    int64_t now = now_ms(cb);
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    bool ok = res == CURLE_OK && status >= 200 && status <= 299;
    char error[256];
    if (res != CURLE_OK)
        snprintf(error, sizeof error, "%s", x->curl_err[0] ? x->curl_err : curl_easy_strerror(res));
    else
        snprintf(error, sizeof error, "HTTP status %ld", status);

    if (x->ack && x->tries == 0 && cb->cfg.on_downlink) {
        callback_dl_answer_t a = {.ep_id = x->ep_id, .mc = x->mc};
        if (!ok) {
            a.status = CALLBACK_DL_FAILED;
            errbuf_set(a.reason, sizeof a.reason, "%s", error);
        } else {
            callback_parse_answer(status, x->resp, x->resp_total > x->resp_len ? x->resp_total : x->resp_len,
                                  x->ep_id, &a);
            if (x->deadline_ms && now > x->deadline_ms &&
                (a.status == CALLBACK_DL_PAYLOAD || a.status == CALLBACK_DL_NONE)) {
                bool had = a.status == CALLBACK_DL_PAYLOAD;
                a.status = CALLBACK_DL_LATE;
                memset(a.payload, 0, sizeof a.payload);
                snprintf(a.reason, sizeof a.reason, "answer %lld ms after the deadline%s",
                         (long long)(now - x->deadline_ms), had ? "" : " (no downlink anyway)");
            }
        }
        if (a.status != CALLBACK_DL_PAYLOAD && a.status != CALLBACK_DL_NONE)
            log_warn("Downlink answer refused, callback: %s, device: %08X, mc: %d, reason: %s: %s",
                     x->callback, x->ep_id, x->mc, callback_dl_status_name(a.status), a.reason);
        cb->cfg.on_downlink(cb->cfg.downlink_ctx, &a);
    }

    for (size_t i = 0; i < x->nids; i++) {
        int rc;
        if (ok) {
            nsdb_val_t p[] = {NSDB_INT(x->ids[i])};
            rc = nsdb_exec(cb->db, "DELETE FROM app_callback_queue WHERE id = $1", p, 1);
            cb->st.delivered++;
        } else {
            nsdb_val_t p[] = {NSDB_INT(now + cb->cfg.retry_delay_ms), NSDB_TEXT(error),
                              NSDB_INT(x->ids[i])};
            rc = nsdb_exec(cb->db,
                           "UPDATE app_callback_queue SET tries = tries + 1, next_ms = $1,"
                           " last_error = $2 WHERE id = $3",
                           p, 3);
        }
        if (rc < 0)
            log_error("Callback queue update failed, callback: %s, error: %s", x->callback,
                      nsdb_errmsg(cb->db));
        if (ok && cb->st.queued)
            cb->st.queued--;
    }
    if (!ok) {
        cb->st.failures++;
        record_failure(cb, x, x->tries + 1, error, now);
        /* rows that reached max_tries are given up */
        int64_t gone = 0;
        for (size_t i = 0; i < x->nids; i++) {
            nsdb_val_t p[] = {NSDB_INT(x->ids[i]), NSDB_INT(cb->cfg.max_tries)};
            int rc = nsdb_exec(cb->db, "DELETE FROM app_callback_queue WHERE id = $1 AND tries >= $2",
                               p, 2);
            gone += rc > 0 ? rc : 0;
        }
        cb->st.dropped += (uint64_t)gone;
        cb->st.queued -= (uint64_t)gone <= cb->st.queued ? (uint64_t)gone : cb->st.queued;
        if (gone)
            log_error("Callback given up after %d tries, callback: %s, device: %08X, rows: %lld, "
                      "error: %s",
                      cb->cfg.max_tries, x->callback, x->ep_id, (long long)gone, error);
        else
            log_warn("Callback failed, retry in %lld s, callback: %s, device: %08X, try: %d, "
                     "error: %s",
                     (long long)(cb->cfg.retry_delay_ms / 1000), x->callback, x->ep_id,
                     x->tries + 1, error);
    }
}

int callback_poll(callback_t *cb, int wait_ms)
{
    if (!cb)
        return -1;
    int64_t now = now_ms(cb);
    if (start_simple(cb, now) < 0)
        return -1;
    for (size_t i = 0; i < cb->ndefs; i++)
        if (cb->defs[i]->media == CALLBACK_BATCH && cb->ninflight < cb->cfg.max_in_flight)
            start_batch(cb, cb->defs[i], now);
    int running = 0;
    curl_multi_perform(cb->multi, &running);
    if (running && wait_ms > 0) {
        curl_multi_poll(cb->multi, NULL, 0, wait_ms, NULL);
        curl_multi_perform(cb->multi, &running);
    }
    CURLMsg *m;
    int left;
    bool tx = false; /* the queue updates of this poll in one transaction: one fsync */
    while ((m = curl_multi_info_read(cb->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        if (!tx)
            tx = nsdb_begin(cb->db) == 0;
        xfer_t *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode res = m->data.result;
        if (!x)
            continue;
        finish_xfer(cb, x, res);
        for (xfer_t **pp = &cb->inflight; *pp; pp = &(*pp)->next)
            if (*pp == x) {
                *pp = x->next;
                break;
            }
        cb->ninflight--;
        xfer_free(cb, x);
    }
    if (tx && nsdb_commit(cb->db) < 0) /* the requests are sent again: at-least-once */
        log_error("Callback queue update failed, error: %s", nsdb_errmsg(cb->db));
    return cb->ninflight;
}

int64_t callback_next_due_ms(callback_t *cb)
{
    int64_t due = INT64_MAX;
    nsdb_val_t p[] = {NSDB_TEXT(cb ? cb->inst : "")};
    if (cb && nsdb_query_int(cb->db, "SELECT min(next_ms) FROM app_callback_queue WHERE instance = $1",
                             p, 1, &due) <= 0)
        due = INT64_MAX;
    return due;
}

void callback_get_stats(callback_t *cb, callback_stats_t *st)
{
    *st = cb->st;
}

json_object *callback_failures_json_db(nsdb_t *db, size_t max)
{
    json_object *arr = json_object_new_array();
    nsdb_rows_t *r = NULL;
    nsdb_val_t p[] = {NSDB_INT(max)};
    if (!arr || !db ||
        nsdb_query(db,
                   "SELECT time_ms, callback, ep_id, tries, error, instance FROM app_callback_failure"
                   " ORDER BY id DESC LIMIT $1",
                   p, 1, &r) < 0)
        return arr;
    for (size_t i = 0; i < nsdb_rows_count(r); i++) {
        json_object *o = json_object_new_object();
        if (!o)
            break;
        char dev[9];
        snprintf(dev, sizeof dev, "%08X", (uint32_t)nsdb_rows_int(r, i, 2));
        json_object_object_add(o, "time_ms", json_object_new_int64(nsdb_rows_int(r, i, 0)));
        json_object_object_add(o, "callback", json_object_new_string(nsdb_rows_text(r, i, 1)));
        json_object_object_add(o, "device", json_object_new_string(dev));
        json_object_object_add(o, "tries", json_object_new_int((int)nsdb_rows_int(r, i, 3)));
        json_object_object_add(o, "error", json_object_new_string(nsdb_rows_text(r, i, 4)));
        json_object_object_add(o, "instance", json_object_new_string(nsdb_rows_text(r, i, 5)));
        json_object_array_add(arr, o);
    }
    nsdb_rows_free(r);
    return arr;
}

json_object *callback_failures_json(callback_t *cb, size_t max)
{
    return cb ? callback_failures_json_db(cb->db, max) : json_object_new_array();
}
