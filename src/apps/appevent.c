/* appevent: integration events from docs/api.md event JSON. Licence: MIT. */
#define _GNU_SOURCE /* timegm */
#include "appevent.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errbuf.h"
#include "hexutil.h"

void appevent_init(appevent_t *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->seq = -1;
}

void appevent_clear(appevent_t *ev)
{
    if (!ev)
        return;
    json_object_put(ev->decoded);
    appevent_init(ev);
}

void appevent_copy(appevent_t *dst, const appevent_t *src)
{
    *dst = *src;
    if (dst->decoded)
        json_object_get(dst->decoded);
}

const char *appevent_type_name(appevent_type_t t)
{
    switch (t) {
    case APPEVENT_DATA:
        return "data";
    case APPEVENT_SERVICE:
        return "service";
    case APPEVENT_ERROR:
        return "error";
    }
    return "?";
}

static const char *appevent_subtype_name(appevent_subtype_t s)
{
    switch (s) {
    case APPEVENT_SUB_UPLINK:
        return "uplink";
    case APPEVENT_SUB_STATUS:
        return "status";
    case APPEVENT_SUB_DOWNLINK_ACK:
        return "downlink_ack";
    case APPEVENT_SUB_COMM_LOSS:
        return "comm_loss";
    }
    return "?";
}

static int appevent_parse_time(const char *text, int64_t *epoch_s)
{
    if (!text)
        return -1;
    int y, mo, d, h, mi, s, n = 0;
    if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 || n != 19)
        return -1;
    const char *p = text + n;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (strcmp(p, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        s > 60 || y < 1970)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                    .tm_min = mi, .tm_sec = s};
    *epoch_s = (int64_t)timegm(&tm);
    return 0;
}

static const char *get_str(const json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* A finite number under key, or -1. */
static int get_num(const json_object *o, const char *key, double *out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return -1;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return -1;
    double d = json_object_get_double(v);
    if (!isfinite(d))
        return -1;
    *out = d;
    return 0;
}

static bool get_bool(const json_object *o, const char *key, bool dflt)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
        return dflt;
    return json_object_get_boolean(v);
}

static void copy_id(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; src[n] && n + 1 < cap; n++) {
        unsigned char c = (unsigned char)src[n];
        dst[n] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[n] = '\0';
}

static void fill_station(const json_object *o, appevent_station_t *st, const char *dflt_id)
{
    memset(st, 0, sizeof *st);
    const char *id = get_str(o, "station_id");
    if (!id)
        id = get_str(o, "id");
    copy_id(st->id, sizeof st->id, id ? id : dflt_id);
    double v;
    if (get_num(o, "bs_rssi_dbm", &v) == 0 || get_num(o, "rssi_dbm", &v) == 0 ||
        get_num(o, "rssi_dbfs", &v) == 0)
        st->rssi_dbm = v;
    if (get_num(o, "snr_db", &v) == 0)
        st->snr_db = v;
    double lat, lng;
    if (get_num(o, "lat", &lat) == 0 && get_num(o, "lng", &lng) == 0 && fabs(lat) <= 90 &&
        fabs(lng) <= 180) {
        st->lat = lat;
        st->lng = lng;
        st->has_pos = true;
    }
    if ((get_num(o, "replicas", &v) == 0 || get_num(o, "nframes", &v) == 0) && v >= 0 &&
        v <= 1000)
        st->nrep = (int)v;
}

static int fill_stations(const json_object *obj, appevent_t *ev)
{
    json_object *arr;
    if (json_object_object_get_ex(obj, "stations", &arr) &&
        json_object_is_type(arr, json_type_array)) {
        size_t n = json_object_array_length(arr);
        for (size_t i = 0; i < n && ev->nstations < APPEVENT_MAX_STATIONS; i++) {
            json_object *s = json_object_array_get_idx(arr, i);
            if (!json_object_is_type(s, json_type_object))
                return -1;
            fill_station(s, &ev->stations[ev->nstations++], "?");
        }
    } else if (json_object_object_get_ex(obj, "snr_db", NULL)) {
        fill_station(obj, &ev->stations[0], "local");
        ev->nstations = 1;
    }
    /* the best station first (highest RSSI; ties: higher SNR) */
    size_t best = 0;
    for (size_t i = 1; i < ev->nstations; i++)
        if (ev->stations[i].rssi_dbm > ev->stations[best].rssi_dbm ||
            (ev->stations[i].rssi_dbm == ev->stations[best].rssi_dbm &&
             ev->stations[i].snr_db > ev->stations[best].snr_db))
            best = i;
    if (best) {
        appevent_station_t t = ev->stations[0];
        ev->stations[0] = ev->stations[best];
        ev->stations[best] = t;
    }
    return 0;
}

int appevent_from_json(const json_object *obj, appevent_t *ev, char *err, size_t err_len)
{
    if (!obj || !json_object_is_type(obj, json_type_object)) {
        errbuf_set(err, err_len, "event: not a JSON object");
        return -1;
    }
    const char *type = get_str(obj, "type");
    if (!type) {
        errbuf_set(err, err_len, "event: no type");
        return -1;
    }
    appevent_t e;
    appevent_init(&e);
    const char *kind = get_str(obj, "kind");
    if (strcmp(type, "message") == 0 && kind && strcmp(kind, "app") == 0) {
        e.type = APPEVENT_DATA;
        e.subtype = APPEVENT_SUB_UPLINK;
    } else if (strcmp(type, "message") == 0 && kind && strcmp(kind, "keepalive") == 0) {
        e.type = APPEVENT_SERVICE;
        e.subtype = APPEVENT_SUB_STATUS;
    } else if (strcmp(type, "downlink_ack") == 0 || strcmp(type, "downlink_lost") == 0 ||
               strcmp(type, "downlink_failed") == 0 ||
               strcmp(type, "downlink_no_answer") == 0) {
        e.type = APPEVENT_SERVICE;
        e.subtype = APPEVENT_SUB_DOWNLINK_ACK;
        e.dl_ok = strcmp(type, "downlink_ack") == 0;
        copy_id(e.info, sizeof e.info, type);
    } else if (strcmp(type, "comm_loss") == 0) {
        e.type = APPEVENT_ERROR;
        e.subtype = APPEVENT_SUB_COMM_LOSS;
        copy_id(e.info, sizeof e.info, "Communication loss");
    } else {
        return 1;
    }

    const char *id = get_str(obj, "ep_id");
    if (!id || hex_to_ep_id(id, &e.ep_id) != 0) {
        errbuf_set(err, err_len, "event: missing or bad ep_id");
        return -1;
    }
    double v;
    const char *t = get_str(obj, "time_utc");
    if (t) {
        if (appevent_parse_time(t, &e.time_s) != 0) {
            errbuf_set(err, err_len, "event: bad time_utc");
            return -1;
        }
    } else if (get_num(obj, "time_s", &v) == 0 && v >= 0 && v < 1e11) {
        e.time_s = (int64_t)v;
    } else {
        e.time_s = (int64_t)time(NULL);
    }
    if (get_num(obj, "mc", &v) == 0 && v >= 0 && v <= 4095)
        e.seq = (int)v;
    else if (strcmp(type, "message") == 0) {
        /* every uplink message has its 12-bit counter (spec Table 3-1, MC): {seqNumber} */
        errbuf_set(err, err_len, "event: missing or bad mc (0 .. 4095)");
        return -1;
    }
    const char *payload = get_str(obj, "payload");
    if (e.type == APPEVENT_DATA && payload) {
        int n = hex_to_bytes(payload, e.data, sizeof e.data);
        if (n < 0) {
            errbuf_set(err, err_len, "event: bad payload hex");
            return -1;
        }
        e.data_len = (size_t)n;
    } else if (e.type == APPEVENT_DATA && get_num(obj, "payload_bit", &v) == 0) {
        /* a 1-bit message: its bit as one byte, the way the Sigfox backend shows it */
        e.data[0] = v != 0;
        e.data_len = 1;
    }
    if (e.type == APPEVENT_DATA) {
        const char *mode = get_str(obj, "downlink_mode");
        e.ack = get_bool(obj, "bf", false) && (!mode || strcmp(mode, "callback") == 0);
    }
    /* ranges of the keep-alive's fields (16-bit mV, 0.1 °C steps): a value outside is not
     * converted (a double beyond int is undefined behaviour) */
    if (get_num(obj, "vdd_idle_mv", &v) == 0 && v >= 0 && v <= 65535) {
        e.has_status = true;
        e.vdd_idle_mv = (int)v;
        if (get_num(obj, "vdd_tx_mv", &v) == 0 && v >= 0 && v <= 65535)
            e.vdd_tx_mv = (int)v;
        if (get_num(obj, "temp_c", &v) == 0 && fabs(v) <= 3276.8)
            e.temp_c = v;
    }
    if (fill_stations(obj, &e) != 0) {
        errbuf_set(err, err_len, "event: bad stations array");
        return -1;
    }
    json_object *dec;
    if (json_object_object_get_ex(obj, "decoded", &dec) &&
        json_object_is_type(dec, json_type_object))
        e.decoded = json_object_get(dec);
    const char *derr = get_str(obj, "decoded_error");
    if (derr)
        copy_id(e.decoded_error, sizeof e.decoded_error, derr);
    if (get_num(obj, "last_seen_s", &v) == 0 && v >= 0 && v < 1e11)
        e.last_seen_s = (int64_t)v;
    const char *dt = get_str(obj, "device_type");
    if (dt)
        copy_id(e.device_type, sizeof e.device_type, dt);
    *ev = e;
    return 0;
}

double appevent_avg_snr(const appevent_t *ev)
{
    if (!ev->nstations)
        return 0;
    double s = 0;
    for (size_t i = 0; i < ev->nstations; i++)
        s += ev->stations[i].snr_db;
    return s / (double)ev->nstations;
}

json_object *appevent_json_fixed(double v, int decimals)
{
    char s[64];
    snprintf(s, sizeof s, "%.*f", decimals, isfinite(v) ? v : 0.0);
    return json_object_new_double_s(atof(s), s);
}

static json_object *num2(double v)
{
    return appevent_json_fixed(v, 2);
}

json_object *appevent_to_json(const appevent_t *ev)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    char id[9], hex[2 * APPEVENT_MAX_DATA + 1];
    snprintf(id, sizeof id, "%08X", ev->ep_id);
    int rc = 0;
    rc |= json_object_object_add(o, "type", json_object_new_string(appevent_type_name(ev->type)));
    rc |= json_object_object_add(o, "subtype",
                                 json_object_new_string(appevent_subtype_name(ev->subtype)));
    rc |= json_object_object_add(o, "device", json_object_new_string(id));
    rc |= json_object_object_add(o, "time", json_object_new_int64(ev->time_s));
    if (ev->seq >= 0)
        rc |= json_object_object_add(o, "seqNumber", json_object_new_int(ev->seq));
    if (ev->type == APPEVENT_DATA) {
        bytes_to_hex(ev->data, ev->data_len, hex);
        for (char *p = hex; *p; p++)
            if (*p >= 'A' && *p <= 'F')
                *p = (char)(*p - 'A' + 'a');
        rc |= json_object_object_add(o, "data", json_object_new_string(hex));
        rc |= json_object_object_add(o, "ack", json_object_new_boolean(ev->ack));
    }
    if (ev->nstations) {
        json_object *arr = json_object_new_array();
        rc |= json_object_object_add(o, "stations", arr);
        for (size_t i = 0; arr && i < ev->nstations; i++) {
            const appevent_station_t *st = &ev->stations[i];
            json_object *s = json_object_new_object();
            rc |= json_object_array_add(arr, s);
            if (!s)
                break;
            rc |= json_object_object_add(s, "id", json_object_new_string(st->id));
            rc |= json_object_object_add(s, "rssi", num2(st->rssi_dbm));
            rc |= json_object_object_add(s, "snr", num2(st->snr_db));
            if (st->has_pos) {
                rc |= json_object_object_add(s, "lat", appevent_json_fixed(st->lat, 6));
                rc |= json_object_object_add(s, "lng", appevent_json_fixed(st->lng, 6));
            }
            if (st->nrep)
                rc |= json_object_object_add(s, "nbRep", json_object_new_int(st->nrep));
        }
        rc |= json_object_object_add(o, "avgSnr", num2(appevent_avg_snr(ev)));
    }
    if (ev->decoded)
        rc |= json_object_object_add(o, "decoded", json_object_get(ev->decoded));
    if (ev->decoded_error[0])
        rc |= json_object_object_add(o, "decoded_error", json_object_new_string(ev->decoded_error));
    if (ev->has_status) {
        rc |= json_object_object_add(o, "vddIdle", json_object_new_int(ev->vdd_idle_mv));
        rc |= json_object_object_add(o, "vddTx", json_object_new_int(ev->vdd_tx_mv));
        rc |= json_object_object_add(o, "temp", num2(ev->temp_c));
    }
    if (ev->subtype == APPEVENT_SUB_DOWNLINK_ACK)
        rc |= json_object_object_add(o, "downlinkAck", json_object_new_boolean(ev->dl_ok));
    if (ev->info[0])
        rc |= json_object_object_add(o, "info", json_object_new_string(ev->info));
    if (ev->type == APPEVENT_ERROR)
        rc |= json_object_object_add(o, "lastSeen", json_object_new_int64(ev->last_seen_s));
    if (ev->device_type[0])
        rc |= json_object_object_add(o, "deviceType", json_object_new_string(ev->device_type));
    if (rc) {
        json_object_put(o);
        return NULL;
    }
    return o;
}
