/* cbtemplate: Sigfox-style callback templates (seeds/000 §7.1.3). Licence: MIT. */
#define _GNU_SOURCE /* strcasestr */
#include "cbtemplate.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errbuf.h"
#include "payloadfmt.h"
#include "strbuf.h"

typedef enum {
    V_DEVICE, V_TIME, V_DEVTYPE, V_DATA, V_SEQ, V_ACK, V_STATION, V_RSSI, V_SNR, V_AVGSNR,
    V_LAT, V_LNG, V_DUPLICATES, V_STATIONS, V_NBSTATIONS, V_CUSTOM, V_DECODED, V_TEMP,
    V_BATT, V_VDDIDLE, V_VDDTX, V_DLACK, V_INFOMSG, V_INFOCODE, V_INFO, V_SEVERITY,
    V_LASTSEEN, V_LITERAL,
} var_t;

#define T_D (1u << APPEVENT_DATA)
#define T_S (1u << APPEVENT_SERVICE)
#define T_E (1u << APPEVENT_ERROR)

static const struct {
    const char *name;
    var_t v;
    unsigned types;
    bool json; /* the value is JSON text, inserted unescaped into JSON bodies */
} vars[] = {
    {"device", V_DEVICE, T_D | T_S | T_E, false},
    {"time", V_TIME, T_D | T_S | T_E, false},
    {"deviceTypeId", V_DEVTYPE, T_D | T_S | T_E, false},
    {"data", V_DATA, T_D, false},
    {"seqNumber", V_SEQ, T_D | T_S, false},
    {"ack", V_ACK, T_D, false},
    {"station", V_STATION, T_D | T_S, false},
    {"rssi", V_RSSI, T_D | T_S, false},
    {"snr", V_SNR, T_D | T_S, false},
    {"avgSnr", V_AVGSNR, T_D | T_S, false},
    {"lat", V_LAT, T_D | T_S, false},
    {"lng", V_LNG, T_D | T_S, false},
    {"duplicates", V_DUPLICATES, T_D, true},
    {"stations", V_STATIONS, T_D, true},
    {"nbStations", V_NBSTATIONS, T_D, false},
    {"decoded", V_DECODED, T_D, true},
    {"temp", V_TEMP, T_S, false},
    {"batt", V_BATT, T_S, false},
    {"vddIdle", V_VDDIDLE, T_S, false},
    {"vddTx", V_VDDTX, T_S, false},
    {"downlinkAck", V_DLACK, T_S, false},
    {"infoMessage", V_INFOMSG, T_S, false},
    {"infoCode", V_INFOCODE, T_S, false},
    {"info", V_INFO, T_E, false},
    {"severity", V_SEVERITY, T_E, false},
    {"lastSeen", V_LASTSEEN, T_E, false},
};

#define CUSTOM_PREFIX "customData#"

typedef struct {
    var_t v;
    size_t at, len; /* literal: span of text; custom: span of the field name */
} seg_t;

struct cbtemplate {
    char *text;
    size_t nseg;
    seg_t *seg;
};

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '#';
}

cbtemplate_t *cbtemplate_create(const char *text, appevent_type_t type, char *err, size_t err_len)
{
    if (!text) {
        errbuf_set(err, err_len, "template: missing");
        return NULL;
    }
    size_t n = strnlen(text, CBTEMPLATE_MAX_TEXT + 1);
    if (n > CBTEMPLATE_MAX_TEXT) {
        errbuf_set(err, err_len, "template: longer than %d bytes", CBTEMPLATE_MAX_TEXT);
        return NULL;
    }
    cbtemplate_t *t = calloc(1, sizeof *t);
    if (!t)
        goto nomem;
    t->text = strdup(text);
    /* at most one segment per character plus one */
    t->seg = calloc(n + 1, sizeof *t->seg);
    if (!t->text || !t->seg)
        goto nomem;
    size_t lit = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        if (text[i] == '{') {
            while (j < n && name_char(text[j]))
                j++;
        }
        if (text[i] != '{' || j == i + 1 || j >= n || text[j] != '}') {
            i++;
            continue;
        }
        /* {name} at i .. j */
        const char *name = text + i + 1;
        size_t nlen = j - i - 1;
        seg_t s = {V_LITERAL, 0, 0};
        bool found = false;
        size_t plen = strlen(CUSTOM_PREFIX);
        if (nlen > plen && strncmp(name, CUSTOM_PREFIX, plen) == 0) {
            if (nlen - plen > PAYLOADFMT_MAX_NAME || memchr(name + plen, '#', nlen - plen)) {
                errbuf_set(err, err_len, "template: bad customData field name at column %zu", i + 1);
                goto fail;
            }
            if (type != APPEVENT_DATA) {
                errbuf_set(err, err_len,
                           "template: {customData#...} is only available in DATA callbacks at column %zu",
                           i + 1);
                goto fail;
            }
            s.v = V_CUSTOM;
            s.at = i + 1 + plen;
            s.len = nlen - plen;
            found = true;
        }
        for (size_t k = 0; !found && k < sizeof vars / sizeof vars[0]; k++) {
            if (strlen(vars[k].name) != nlen || strncmp(vars[k].name, name, nlen) != 0)
                continue;
            if (!(vars[k].types & (1u << type))) {
                errbuf_set(err, err_len,
                           "template: variable {%s} is not available in %s callbacks at column %zu",
                           vars[k].name, appevent_type_name(type), i + 1);
                goto fail;
            }
            s.v = vars[k].v;
            found = true;
        }
        if (!found) {
            errbuf_set(err, err_len, "template: unknown variable {%.*s} at column %zu",
                       (int)(nlen > 40 ? 40 : nlen), name, i + 1);
            goto fail;
        }
        if (i > lit)
            t->seg[t->nseg++] = (seg_t){V_LITERAL, lit, i - lit};
        t->seg[t->nseg++] = s;
        i = j + 1;
        lit = i;
    }
    if (n > lit)
        t->seg[t->nseg++] = (seg_t){V_LITERAL, lit, n - lit};
    return t;
nomem:
    errbuf_set(err, err_len, "template: out of memory");
fail:
    cbtemplate_destroy(t);
    return NULL;
}

void cbtemplate_destroy(cbtemplate_t *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->seg);
    free(t);
}

cbtemplate_escape_t cbtemplate_escape_for_content_type(const char *ct)
{
    if (!ct)
        return CBTEMPLATE_ESC_NONE;
    if (strncasecmp(ct, "application/json", 16) == 0 || strcasestr(ct, "+json"))
        return CBTEMPLATE_ESC_JSON;
    if (strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0)
        return CBTEMPLATE_ESC_URL;
    return CBTEMPLATE_ESC_NONE;
}

static void put_escaped(strbuf_t *b, const char *s, cbtemplate_escape_t esc, bool is_json)
{
    static const char hex[] = "0123456789ABCDEF";
    if (esc == CBTEMPLATE_ESC_NONE || (esc == CBTEMPLATE_ESC_JSON && is_json)) {
        strbuf_add(b, s, strlen(s));
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        char tmp[8];
        switch (esc) {
        case CBTEMPLATE_ESC_URL:
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_' || c == '~') {
                strbuf_add(b, (const char *)p, 1);
            } else {
                tmp[0] = '%';
                tmp[1] = hex[c >> 4];
                tmp[2] = hex[c & 15];
                strbuf_add(b, tmp, 3);
            }
            break;
        case CBTEMPLATE_ESC_JSON:
            if (c == '"' || c == '\\') {
                tmp[0] = '\\';
                tmp[1] = (char)c;
                strbuf_add(b, tmp, 2);
            } else if (c < 0x20 || c == 0x7f) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                strbuf_add(b, tmp, 6);
            } else {
                strbuf_add(b, (const char *)p, 1);
            }
            break;
        case CBTEMPLATE_ESC_HEADER:
            strbuf_add(b, c < 0x20 || c == 0x7f ? " " : (const char *)p, 1);
            break;
        case CBTEMPLATE_ESC_NONE:
            break;
        }
    }
}

/* JSON array of stations [from, n): {"bsId","rssi","snr","nbRep"}. */
static char *stations_json(const appevent_t *ev, size_t from)
{
    json_object *arr = json_object_new_array();
    if (!arr)
        return NULL;
    for (size_t i = from; i < ev->nstations; i++) {
        const appevent_station_t *st = &ev->stations[i];
        json_object *s = json_object_new_object();
        if (!s || json_object_array_add(arr, s) != 0) {
            json_object_put(s);
            json_object_put(arr);
            return NULL;
        }
        json_object_object_add(s, "bsId", json_object_new_string(st->id));
        json_object_object_add(s, "rssi", appevent_json_fixed(st->rssi_dbm, 2));
        json_object_object_add(s, "snr", appevent_json_fixed(st->snr_db, 2));
        json_object_object_add(s, "nbRep", json_object_new_int(st->nrep));
    }
    char *r = strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
    json_object_put(arr);
    return r;
}

/* The text of one grammar field: "" when missing, strings raw, the rest as JSON text. */
static void custom_value(const appevent_t *ev, const char *name, size_t nlen, char *out,
                         size_t cap)
{
    out[0] = '\0';
    char key[PAYLOADFMT_MAX_NAME + 1];
    if (!ev->decoded || nlen >= sizeof key)
        return;
    memcpy(key, name, nlen);
    key[nlen] = '\0';
    json_object *v;
    if (!json_object_object_get_ex(ev->decoded, key, &v))
        return;
    if (json_object_is_type(v, json_type_string))
        snprintf(out, cap, "%s", json_object_get_string(v));
    else
        snprintf(out, cap, "%s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
}

char *cbtemplate_expand(const cbtemplate_t *t, const appevent_t *ev, cbtemplate_escape_t esc)
{
    if (!t || !ev)
        return NULL;
    strbuf_t b = {.max = CBTEMPLATE_MAX_OUT}; /* bounded output */
    strbuf_add(&b, "", 0);
    const appevent_station_t *best = ev->nstations ? &ev->stations[0] : NULL;
    for (size_t i = 0; i < t->nseg && !b.failed; i++) {
        const seg_t *s = &t->seg[i];
        char v[2 * PAYLOADFMT_MAX_CHAR + 64];
        char *dyn = NULL;
        bool is_json = false;
        v[0] = '\0';
        switch (s->v) {
        case V_LITERAL:
            strbuf_add(&b, t->text + s->at, s->len);
            continue;
        case V_DEVICE:
            snprintf(v, sizeof v, "%08X", ev->ep_id);
            break;
        case V_TIME:
            snprintf(v, sizeof v, "%lld", (long long)ev->time_s);
            break;
        case V_DEVTYPE:
            snprintf(v, sizeof v, "%s", ev->device_type);
            break;
        case V_DATA:
            for (size_t k = 0; k < ev->data_len && k < APPEVENT_MAX_DATA; k++)
                snprintf(v + 2 * k, sizeof v - 2 * k, "%02x", ev->data[k]);
            break;
        case V_SEQ:
            if (ev->seq >= 0)
                snprintf(v, sizeof v, "%d", ev->seq);
            break;
        case V_ACK:
            snprintf(v, sizeof v, "%s", ev->ack ? "true" : "false");
            break;
        case V_STATION:
            if (best)
                snprintf(v, sizeof v, "%s", best->id);
            break;
        case V_RSSI:
            if (best)
                snprintf(v, sizeof v, "%.2f", best->rssi_dbm);
            break;
        case V_SNR:
            if (best)
                snprintf(v, sizeof v, "%.2f", best->snr_db);
            break;
        case V_AVGSNR:
            if (best)
                snprintf(v, sizeof v, "%.2f", appevent_avg_snr(ev));
            break;
        case V_LAT:
            if (best && best->has_pos)
                snprintf(v, sizeof v, "%.6f", best->lat);
            break;
        case V_LNG:
            if (best && best->has_pos)
                snprintf(v, sizeof v, "%.6f", best->lng);
            break;
        case V_DUPLICATES:
        case V_STATIONS:
            dyn = stations_json(ev, s->v == V_DUPLICATES && ev->nstations ? 1 : 0);
            if (!dyn)
                b.failed = true;
            is_json = true;
            break;
        case V_NBSTATIONS:
            snprintf(v, sizeof v, "%zu", ev->nstations);
            break;
        case V_CUSTOM:
            custom_value(ev, t->text + s->at, s->len, v, sizeof v);
            break;
        case V_DECODED:
            dyn = strdup(ev->decoded ? json_object_to_json_string_ext(ev->decoded,
                                                                      JSON_C_TO_STRING_PLAIN)
                                     : "{}");
            if (!dyn)
                b.failed = true;
            is_json = true;
            break;
        case V_TEMP:
            if (ev->has_status)
                snprintf(v, sizeof v, "%.1f", ev->temp_c);
            break;
        case V_BATT:
            if (ev->has_status)
                snprintf(v, sizeof v, "%.2f", ev->vdd_tx_mv / 1000.0);
            break;
        case V_VDDIDLE:
            if (ev->has_status)
                snprintf(v, sizeof v, "%d", ev->vdd_idle_mv);
            break;
        case V_VDDTX:
            if (ev->has_status)
                snprintf(v, sizeof v, "%d", ev->vdd_tx_mv);
            break;
        case V_DLACK:
            snprintf(v, sizeof v, "%s", ev->dl_ok ? "true" : "false");
            break;
        case V_INFOMSG:
        case V_INFO:
            snprintf(v, sizeof v, "%s", ev->info);
            break;
        case V_INFOCODE:
            snprintf(v, sizeof v, "%d", ev->dl_ok ? 0 : 1);
            break;
        case V_SEVERITY:
            snprintf(v, sizeof v, "ERROR");
            break;
        case V_LASTSEEN:
            snprintf(v, sizeof v, "%lld", (long long)ev->last_seen_s);
            break;
        }
        if (!b.failed)
            put_escaped(&b, dyn ? dyn : v, esc, is_json);
        free(dyn);
    }
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
