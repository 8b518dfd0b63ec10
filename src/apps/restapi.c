/* restapi: REST API and status page of the network core (libmicrohttpd). Licence: MIT. */
#define _GNU_SOURCE
#include "restapi.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "callback.h"
#include "errbuf.h"
#include "hexutil.h"
#include "jsonstrict.h"
#include "log.h"
#include "nsdb.h"
#include "nsreg.h"
#include "payloadfmt.h"
#include "strbuf.h"

#define MAX_BODY 65536
#define MAX_PLOT_POINTS 50

struct restapi {
    restapi_config_t cfg;
    char token[256];
    struct MHD_Daemon *d;
    nsdb_t *db;
    int port;
};

static void sb_printf(strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf_t *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        strbuf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Text from outside (names, station IDs, errors) into HTML. */
static void sb_html(strbuf_t *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            strbuf_add(b, "&lt;", 4);
            break;
        case '>':
            strbuf_add(b, "&gt;", 4);
            break;
        case '&':
            strbuf_add(b, "&amp;", 5);
            break;
        case '"':
            strbuf_add(b, "&quot;", 6);
            break;
        case '\'':
            strbuf_add(b, "&#39;", 5);
            break;
        default:
            if ((unsigned char)*s >= 0x20)
                strbuf_add(b, s, 1);
        }
    }
}

static void utc(double t, char *out, size_t cap)
{
    time_t s = (time_t)t;
    struct tm tm;
    if (!isfinite(t) || t <= 0 || !gmtime_r(&s, &tm))
        snprintf(out, cap, "-");
    else
        strftime(out, cap, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                            char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_object *o)
{
    char *s = strdup(o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : "null");
    json_object_put(o);
    if (!s)
        return MHD_NO;
    return reply(c, status, "application/json", s, strlen(s));
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(msg));
    return send_json(c, status, o);
}

/* Rows of a query as JSON objects with the given column names; REAL/INT kept as numbers. */
static json_object *rows_json(nsdb_t *db, const char *sql, const nsdb_val_t *p, size_t np,
                              const char *const *cols, size_t ncols)
{
    nsdb_rows_t *r = NULL;
    if (nsdb_query(db, sql, p, np, &r) < 0)
        return NULL;
    json_object *arr = json_object_new_array();
    for (size_t i = 0; arr && i < nsdb_rows_count(r); i++) {
        json_object *o = json_object_new_object();
        for (size_t k = 0; o && k < ncols; k++) {
            const char *name = cols[k] + 2; /* "i:", "r:", "t:", "x:" type prefix */
            json_object *v = NULL;
            if (!nsdb_rows_isnull(r, i, k)) {
                if (cols[k][0] == 'i')
                    v = json_object_new_int64(nsdb_rows_int(r, i, k));
                else if (cols[k][0] == 'r')
                    v = json_object_new_double(nsdb_rows_real(r, i, k));
                else if (cols[k][0] == 'x') {
                    char id[9];
                    snprintf(id, sizeof id, "%08X", (uint32_t)nsdb_rows_int(r, i, k));
                    v = json_object_new_string(id);
                } else
                    v = json_object_new_string(nsdb_rows_text(r, i, k));
            }
            json_object_object_add(o, name, v);
        }
        json_object_array_add(arr, o);
    }
    nsdb_rows_free(r);
    return arr;
}

static const char *jstr(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : "";
}

static double jnum(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : NAN;
}

/* SNR (blue) and RSSI (red) of a device's last messages as an inline SVG. */
static void plot(restapi_t *a, strbuf_t *b, uint32_t ep_id)
{
    nsdb_rows_t *r = NULL;
    nsdb_val_t p[] = {NSDB_INT(ep_id), NSDB_INT(MAX_PLOT_POINTS)};
    if (nsdb_query(a->db,
                   "SELECT m.id, max(r.snr_db), max(r.rssi_dbfs) FROM ns_messages m "
                   "JOIN ns_receptions r ON r.msg_id = m.id WHERE m.ep_id = $1 AND "
                   "m.status = 'ok' GROUP BY m.id ORDER BY m.id DESC LIMIT $2",
                   p, 2, &r) < 0)
        return;
    size_t n = nsdb_rows_count(r);
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 1; k <= 2; k++) {
            double v = nsdb_rows_real(r, i, k);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    if (hi - lo < 1) {
        hi += 0.5;
        lo -= 0.5;
    }
    sb_printf(b, "<svg class=\"plot\" data-device=\"%08X\" data-points=\"%zu\" width=\"220\" "
                 "height=\"60\" viewBox=\"0 0 220 60\"><rect width=\"220\" height=\"60\" "
                 "fill=\"#f6f6f6\"/>",
              ep_id, n);
    for (size_t k = 1; k <= 2 && n; k++) {
        sb_printf(b, "<polyline class=\"%s\" fill=\"none\" stroke=\"%s\" points=\"",
                  k == 1 ? "snr" : "rssi", k == 1 ? "#0057b7" : "#c0392b");
        for (size_t i = 0; i < n; i++) {
            size_t j = n - 1 - i; /* oldest first */
            double x = n > 1 ? 5 + 210.0 * (double)i / (double)(n - 1) : 110;
            double y = 55 - 50 * (nsdb_rows_real(r, j, k) - lo) / (hi - lo);
            sb_printf(b, "%.1f,%.1f ", x, y);
        }
        strbuf_add(b, "\"/>", 3);
    }
    sb_printf(b, "<text x=\"4\" y=\"10\" font-size=\"8\">%.1f</text><text x=\"4\" y=\"58\" "
                 "font-size=\"8\">%.1f</text></svg>",
              hi, lo);
    nsdb_rows_free(r);
}

static enum MHD_Result status_page(restapi_t *a, struct MHD_Connection *c)
{
    strbuf_t b = {0};
    char t[40];
    sb_printf(&b, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>sigfox-ns status</title>"
                  "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;"
                  "margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
                  "th{background:#eee}</style></head><body><h1>sigfox-ns</h1>");
    static const char *scols[] = {"t:station_id", "r:lat", "r:lng", "i:tx", "t:version", "r:last_seen_s"};
    json_object *st = rows_json(a->db, "SELECT station_id, lat, lng, tx, version, last_seen_s "
                                       "FROM ns_stations ORDER BY station_id", NULL, 0, scols, 6);
    sb_printf(&b, "<h2>Stations</h2><table id=\"stations\"><tr><th>station</th><th>lat</th>"
                  "<th>lng</th><th>tx</th><th>last seen</th></tr>");
    for (size_t i = 0; st && i < json_object_array_length(st); i++) {
        json_object *o = json_object_array_get_idx(st, i);
        utc(jnum(o, "last_seen_s"), t, sizeof t);
        strbuf_add(&b, "<tr class=\"station\"><td>", 24);
        sb_html(&b, jstr(o, "station_id"));
        sb_printf(&b, "</td><td>%.5f</td><td>%.5f</td><td>%s</td><td>%s</td></tr>", jnum(o, "lat"),
                  jnum(o, "lng"), jnum(o, "tx") != 0 ? "yes" : "no", t);
    }
    strbuf_add(&b, "</table>", 8);
    json_object_put(st);

    static const char *dcols[] = {"i:ep_id", "t:name", "t:device_type", "i:last_mc", "r:last_t"};
    json_object *dv = rows_json(a->db, "SELECT ep_id, name, device_type, last_mc, last_t FROM "
                                       "ns_devices ORDER BY ep_id LIMIT 1000", NULL, 0, dcols, 5);
    sb_printf(&b, "<h2>Devices</h2><table id=\"devices\"><tr><th>device</th><th>name</th>"
                  "<th>type</th><th>last mc</th><th>last message</th><th>SNR (blue) / RSSI "
                  "(red), last %d messages</th></tr>",
              MAX_PLOT_POINTS);
    for (size_t i = 0; dv && i < json_object_array_length(dv); i++) {
        json_object *o = json_object_array_get_idx(dv, i);
        uint32_t id = (uint32_t)json_object_get_int64(json_object_object_get(o, "ep_id"));
        utc(jnum(o, "last_t"), t, sizeof t);
        sb_printf(&b, "<tr class=\"device\" data-device=\"%08X\"><td>%08X</td><td>", id, id);
        sb_html(&b, jstr(o, "name"));
        strbuf_add(&b, "</td><td>", 9);
        sb_html(&b, jstr(o, "device_type"));
        json_object *mc = json_object_object_get(o, "last_mc");
        sb_printf(&b, "</td><td>%s</td><td>%s</td><td>", mc ? json_object_get_string(mc) : "-", t);
        if (i < 200)
            plot(a, &b, id);
        strbuf_add(&b, "</td></tr>", 10);
    }
    strbuf_add(&b, "</table>", 8);
    json_object_put(dv);

    static const char *mcols[] = {"i:ep_id", "i:mc", "t:kind", "t:payload", "t:status",
                                  "r:t_first", "t:station_first", "i:nstations"};
    json_object *ms = rows_json(a->db,
                                "SELECT m.ep_id, m.mc, m.kind, m.payload, m.status, m.t_first, "
                                "m.station_first, (SELECT count(DISTINCT r.station_id) FROM "
                                "ns_receptions r WHERE r.msg_id = m.id) FROM ns_messages m "
                                "ORDER BY m.id DESC LIMIT 100",
                                NULL, 0, mcols, 8);
    sb_printf(&b, "<h2>Last 100 messages</h2><table id=\"messages\"><tr><th>time</th><th>device"
                  "</th><th>mc</th><th>kind</th><th>payload</th><th>status</th><th>first station"
                  "</th><th>stations</th></tr>");
    for (size_t i = 0; ms && i < json_object_array_length(ms); i++) {
        json_object *o = json_object_array_get_idx(ms, i);
        utc(jnum(o, "t_first"), t, sizeof t);
        sb_printf(&b, "<tr class=\"message\"><td>%s</td><td>%08X</td><td>%lld</td><td>", t,
                  (uint32_t)json_object_get_int64(json_object_object_get(o, "ep_id")),
                  (long long)json_object_get_int64(json_object_object_get(o, "mc")));
        sb_html(&b, jstr(o, "kind"));
        strbuf_add(&b, "</td><td>", 9);
        sb_html(&b, jstr(o, "payload"));
        strbuf_add(&b, "</td><td>", 9);
        sb_html(&b, jstr(o, "status"));
        strbuf_add(&b, "</td><td>", 9);
        sb_html(&b, jstr(o, "station_first"));
        sb_printf(&b, "</td><td>%lld</td></tr>",
                  (long long)json_object_get_int64(json_object_object_get(o, "nstations")));
    }
    strbuf_add(&b, "</table>", 8);
    json_object_put(ms);

    json_object *fl = callback_failures_json_db(a->db, 50);
    sb_printf(&b, "<h2>Callback failures</h2><table id=\"failures\"><tr><th>time</th><th>"
                  "callback</th><th>device</th><th>try</th><th>error</th></tr>");
    for (size_t i = 0; fl && i < json_object_array_length(fl); i++) {
        json_object *o = json_object_array_get_idx(fl, i);
        utc(jnum(o, "time_ms") / 1000.0, t, sizeof t);
        sb_printf(&b, "<tr class=\"failure\"><td>%s</td><td>", t);
        sb_html(&b, jstr(o, "callback"));
        sb_printf(&b, "</td><td>%s</td><td>%d</td><td>", jstr(o, "device"),
                  json_object_get_int(json_object_object_get(o, "tries")));
        sb_html(&b, jstr(o, "error"));
        strbuf_add(&b, "</td></tr>", 10);
    }
    strbuf_add(&b, "</table></body></html>\n", 23);
    json_object_put(fl);
    if (b.failed) {
        free(b.p);
        return send_error(c, 500, "out of memory");
    }
    return reply(c, 200, "text/html; charset=utf-8", b.p, b.len);
}

static enum MHD_Result device_api(restapi_t *a, struct MHD_Connection *c, const char *method,
                                  const char *rest, const char *body, size_t blen)
{
    char idtxt[16];
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    uint32_t id;
    if (n >= sizeof idtxt)
        return send_error(c, 400, "device ID must be 8 hex digits");
    memcpy(idtxt, rest, n);
    idtxt[n] = '\0';
    if (hex_to_ep_id(idtxt, &id) != 0)
        return send_error(c, 400, "device ID must be 8 hex digits");
    if (slash && strcmp(slash, "/messages") == 0 && strcmp(method, "GET") == 0) {
        const char *from = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "from");
        const char *to = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to");
        const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
        char *end;
        double f = from ? strtod(from, &end) : 0;
        if (from && (*end || !isfinite(f)))
            return send_error(c, 400, "from must be epoch seconds");
        double tt = to ? strtod(to, &end) : 1e12;
        if (to && (*end || !isfinite(tt)))
            return send_error(c, 400, "to must be epoch seconds");
        long l = lim ? strtol(lim, &end, 10) : 100;
        if (lim && (*end || l < 1 || l > 1000))
            return send_error(c, 400, "limit must be 1..1000");
        static const char *cols[] = {"i:id", "x:ep_id", "i:mc", "i:bf", "t:kind", "t:payload",
                                     "t:status", "r:t_first", "t:station_first", "t:event"};
        nsdb_val_t p[] = {NSDB_INT(id), NSDB_REAL(f), NSDB_REAL(tt), NSDB_INT(l)};
        json_object *arr = rows_json(a->db,
                                     "SELECT id, ep_id, mc, bf, kind, payload, status, t_first, "
                                     "station_first, event FROM ns_messages WHERE ep_id = $1 AND "
                                     "t_first >= $2 AND t_first <= $3 ORDER BY t_first, id LIMIT $4",
                                     p, 4, cols, 10);
        if (!arr)
            return send_error(c, 500, "database: %s", nsdb_errmsg(a->db));
        /* the stored event as an object, not a string */
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *o = json_object_array_get_idx(arr, i);
            json_object *ev = json_tokener_parse(jstr(o, "event"));
            json_object_object_add(o, "event", ev);
        }
        return send_json(c, 200, arr);
    }
    if (slash)
        return send_error(c, 404, "no such resource");
    nsreg_device_t d;
    int have = nsreg_device_get(a->db, id, &d);
    if (have < 0)
        return send_error(c, 500, "database: %s", nsdb_errmsg(a->db));
    if (strcmp(method, "GET") == 0) {
        if (!have)
            return send_error(c, 404, "no device %08X", id);
        json_object *o = json_object_new_object();
        nsreg_device_to_json(&d, false, o);
        return send_json(c, 200, o);
    }
    if (strcmp(method, "DELETE") == 0) {
        int rc = nsreg_device_delete(a->db, id);
        if (rc < 0)
            return send_error(c, 500, "database: %s", nsdb_errmsg(a->db));
        if (a->cfg.core)
            nscore_registry_changed(a->cfg.core);
        return rc ? reply(c, 204, "application/json", strdup(""), 0)
                  : send_error(c, 404, "no device %08X", id);
    }
    if (strcmp(method, "PUT") != 0)
        return send_error(c, 405, "method not allowed");
    char jerr[160];
    json_object *in = jsonstrict_parse(body, blen, 16, jerr, sizeof jerr);
    if (!in || !json_object_is_type(in, json_type_object)) {
        json_object_put(in);
        return send_error(c, 400, "body must be a JSON object: %s", in ? "other value" : jerr);
    }
    if (!have && !json_object_object_get_ex(in, "key", NULL)) {
        json_object_put(in);
        return send_error(c, 400, "key: required for a new device (32 hex digits)");
    }
    char idhex[9];
    snprintf(idhex, sizeof idhex, "%08X", id);
    json_object_object_add(in, "ep_id", json_object_new_string(idhex));
    if (!have)
        memset(&d, 0, sizeof d);
    char err[256];
    int rc = nsreg_device_from_json(in, &d, err, sizeof err);
    json_object_put(in);
    if (rc < 0)
        return send_error(c, 400, "%s", err);
    if (d.ep_id != id)
        return send_error(c, 400, "ep_id does not match the URL");
    if (nsreg_device_put(a->db, &d, (double)time(NULL)) < 0)
        return send_error(c, 500, "database: %s", nsdb_errmsg(a->db));
    if (a->cfg.core)
        nscore_registry_changed(a->cfg.core);
    json_object *o = json_object_new_object();
    nsreg_device_to_json(&d, false, o);
    return send_json(c, have ? 200 : 201, o);
}

static enum MHD_Result type_put(restapi_t *a, struct MHD_Connection *c, const char *name,
                                const char *body, size_t blen)
{
    size_t nl = strlen(name);
    bool ok = nl > 0 && nl < NSREG_NAME_MAX;
    for (size_t i = 0; ok && i < nl; i++)
        ok = (unsigned char)name[i] > 0x20 && (unsigned char)name[i] < 0x7f;
    if (!ok)
        return send_error(c, 400, "device type name must be 1..%d printable characters",
                          NSREG_NAME_MAX - 1);
    char jerr[160];
    json_object *in = jsonstrict_parse(body, blen, 16, jerr, sizeof jerr);
    if (!in || !json_object_is_type(in, json_type_object)) {
        json_object_put(in);
        return send_error(c, 400, "body must be a JSON object: %s", in ? "other value" : jerr);
    }
    const char *g = jstr(in, "grammar");
    double period = jnum(in, "period_s");
    if (isnan(period))
        period = 0;
    char err[256];
    payloadfmt_t *f = payloadfmt_create(g, err, sizeof err);
    payloadfmt_destroy(f);
    enum MHD_Result r;
    if (!f) {
        r = send_error(c, 400, "%s", err);
    } else if (!(period >= 0 && period < 1e9)) {
        r = send_error(c, 400, "period_s must be 0..1e9");
    } else {
        nsdb_val_t p[] = {NSDB_TEXT(name), NSDB_TEXT(g), NSDB_REAL(period), NSDB_REAL((double)time(NULL))};
        if (nsdb_exec(a->db,
                      "INSERT INTO app_device_types (name, grammar, period_s, updated_s) VALUES "
                      "($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET grammar = "
                      "excluded.grammar, period_s = excluded.period_s, updated_s = excluded.updated_s",
                      p, 4) < 0)
            r = send_error(c, 500, "database: %s", nsdb_errmsg(a->db));
        else
            r = reply(c, 204, "application/json", strdup(""), 0);
    }
    json_object_put(in);
    return r;
}

static bool authorized(restapi_t *a, struct MHD_Connection *c)
{
    if (!a->token[0])
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    size_t n = strlen(a->token), m = strlen(h);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(a->token[i] ^ (i < m ? h[i] : 0));
    return diff == 0;
}

typedef struct {
    char *body;
    size_t len;
    bool too_big;
} req_t;

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)version;
    restapi_t *a = cls;
    req_t *q = *con_cls;
    if (!q) {
        q = calloc(1, sizeof *q);
        if (!q)
            return MHD_NO;
        *con_cls = q;
        return MHD_YES;
    }
    if (*upload_size) {
        if (q->len + *upload_size > MAX_BODY) {
            q->too_big = true;
        } else {
            char *nb = realloc(q->body, q->len + *upload_size + 1);
            if (!nb)
                return MHD_NO;
            q->body = nb;
            memcpy(q->body + q->len, upload, *upload_size);
            q->len += *upload_size;
            q->body[q->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (!authorized(a, c))
        return send_error(c, 401, "missing or wrong token (Authorization: Bearer ...)");
    if (q->too_big)
        return send_error(c, 413, "request body over %d bytes", MAX_BODY);
    const char *body = q->body ? q->body : "";
    bool get = strcmp(method, "GET") == 0;
    if (get && strcmp(url, "/") == 0)
        return status_page(a, c);
    if (get && strcmp(url, "/api/devices") == 0) {
        json_object *arr = json_object_new_array();
        if (nsreg_device_list(a->db, 0, 1000, false, arr) < 0) {
            json_object_put(arr);
            return send_error(c, 500, "database: %s", nsdb_errmsg(a->db));
        }
        return send_json(c, 200, arr);
    }
    if (strncmp(url, "/api/devices/", 13) == 0)
        return device_api(a, c, method, url + 13, body, q->len);
    if (get && strcmp(url, "/api/device-types") == 0) {
        static const char *cols[] = {"t:name", "t:grammar", "r:period_s"};
        json_object *arr = rows_json(a->db, "SELECT name, grammar, period_s FROM app_device_types "
                                            "ORDER BY name", NULL, 0, cols, 3);
        return arr ? send_json(c, 200, arr) : send_error(c, 500, "database: %s", nsdb_errmsg(a->db));
    }
    if (strcmp(method, "PUT") == 0 && strncmp(url, "/api/device-types/", 18) == 0)
        return type_put(a, c, url + 18, body, q->len);
    if (get && strcmp(url, "/api/stations") == 0) {
        json_object *arr = json_object_new_array();
        if (nsreg_station_list(a->db, arr) < 0) {
            json_object_put(arr);
            return send_error(c, 500, "database: %s", nsdb_errmsg(a->db));
        }
        return send_json(c, 200, arr);
    }
    if (get && strcmp(url, "/api/callbacks/failures") == 0)
        return send_json(c, 200, callback_failures_json_db(a->db, 100));
    if (get && strcmp(url, "/api/stats") == 0) {
        json_object *o = json_object_new_object();
        static const struct {
            const char *key, *sql;
        } q2[] = {{"devices", "SELECT count(*) FROM ns_devices"},
                  {"stations", "SELECT count(*) FROM ns_stations"},
                  {"messages", "SELECT count(*) FROM ns_messages WHERE status = 'ok'"},
                  {"replays", "SELECT count(*) FROM ns_messages WHERE status = 'replay'"},
                  {"receptions", "SELECT count(*) FROM ns_receptions"},
                  {"downlinks", "SELECT count(*) FROM ns_downlinks"},
                  {"callback_failures", "SELECT count(*) FROM app_callback_failure"}};
        for (size_t i = 0; i < sizeof q2 / sizeof q2[0]; i++) {
            int64_t v = 0;
            if (nsdb_query_int(a->db, q2[i].sql, NULL, 0, &v) >= 0)
                json_object_object_add(o, q2[i].key, json_object_new_int64(v));
        }
        return send_json(c, 200, o);
    }
    return send_error(c, 404, "no such resource");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    req_t *q = *con_cls;
    if (q) {
        free(q->body);
        free(q);
    }
    *con_cls = NULL;
}

restapi_t *restapi_create(const restapi_config_t *cfg, char *err, size_t err_len)
{
    restapi_t *a = calloc(1, sizeof *a);
    if (!a) {
        errbuf_set(err, err_len, "api: out of memory");
        return NULL;
    }
    a->cfg = *cfg;
    const char *addr = cfg->bind_addr && cfg->bind_addr[0] ? cfg->bind_addr : "127.0.0.1";
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        errbuf_set(err, err_len, "api: bind address %s is not an IPv4 address", addr);
        goto fail;
    }
    bool loopback = (ntohl(sa.sin_addr.s_addr) >> 24) == 127;
    if (cfg->token && strlen(cfg->token) >= sizeof a->token) {
        errbuf_set(err, err_len, "api: token longer than %zu bytes", sizeof a->token - 1);
        goto fail;
    }
    snprintf(a->token, sizeof a->token, "%s", cfg->token ? cfg->token : "");
    if (!loopback && strlen(a->token) < 16) {
        errbuf_set(err, err_len, "api: bound to %s (not loopback) it needs a token of at least "
                                 "16 characters",
                   addr);
        goto fail;
    }
    int port = cfg->port < 0 || cfg->port > 65535 ? -1 : cfg->port;
    if (port < 0) {
        errbuf_set(err, err_len, "api: port %d out of range", cfg->port);
        goto fail;
    }
    sa.sin_port = htons((uint16_t)port);
    a->db = nsdb_open(cfg->db_url, 2000, err, err_len);
    if (!a->db)
        goto fail;
    a->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            handler, a, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
                            completed, a, MHD_OPTION_CONNECTION_LIMIT, 64u,
                            MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!a->d) {
        errbuf_set(err, err_len, "api: cannot listen on %s:%d", addr, port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? info->port : port;
    log_info("REST API and status page, url: http://%s:%d/%s", addr, a->port,
             a->token[0] ? ", token: required" : "");
    return a;
fail:
    restapi_destroy(a);
    return NULL;
}

void restapi_destroy(restapi_t *a)
{
    if (!a)
        return;
    if (a->d)
        MHD_stop_daemon(a->d);
    nsdb_close(a->db);
    free(a);
}

int restapi_port(const restapi_t *a)
{
    return a ? a->port : -1;
}
