/* rxjson: JSON events for receiver frames and messages. Licence: MIT. */
#include "rxjson.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "framejson.h"
#include "publisher.h"

/* The framejson spelling of the receiver's verdict (framejson owns the strings). */
static const char *auth_name(rx_auth_t auth)
{
    switch (auth) {
    case RX_AUTH_OK:
        return FRAMEJSON_AUTH_OK;
    case RX_AUTH_BAD:
        return FRAMEJSON_AUTH_BAD;
    case RX_AUTH_UNKNOWN_DEVICE:
        return FRAMEJSON_AUTH_UNKNOWN_DEVICE;
    case RX_AUTH_UNCHECKED:
    default:
        return FRAMEJSON_AUTH_UNCHECKED;
    }
}

json_object *rxjson_number(double v, int decimals)
{
    if (!isfinite(v))
        return NULL;
    if (decimals <= 0)
        return json_object_new_int64((int64_t)llround(v));
    char text[48];
    snprintf(text, sizeof text, "%.*f", decimals, v);
    /* Store the rounded value too, so that readers of the object and of its text agree. */
    return json_object_new_double_s(strtod(text, NULL), text);
}

/* Non-finite values become null rather than invalid JSON. */
static int add_num(json_object *obj, const char *key, double v, int decimals)
{
    if (!isfinite(v))
        return json_object_object_add(obj, key, NULL) == 0 ? 0 : -1;
    return framejson_add(obj, key, rxjson_number(v, decimals));
}

/* Radio fields of burst f; RSSI and SNR from burst level (f itself for a frame). */
static int add_radio(json_object *obj, const rx_frame_t *f, const rx_frame_t *level,
                     const rxjson_ctx_t *ctx)
{
    int rc = framejson_add(obj, "baud", json_object_new_int(f->baud));
    rc |= add_num(obj, "freq_hz", f->freq_hz, 1);
    rc |= add_num(obj, "drift_hz_s", f->drift_hz_s, 2);
    rc |= add_num(obj, "rssi_dbfs", level->rssi_dbfs, 2);
    if (ctx && ctx->rssi_calibrated)
        rc |= add_num(obj, "bs_rssi_dbm", level->rssi_dbfs + ctx->rssi_offset_db, 2);
    rc |= add_num(obj, "snr_db", level->snr_db, 2);
    rc |= framejson_add(obj, "sample_idx", json_object_new_int64((int64_t)f->sample_idx));
    rc |= add_num(obj, "t_start_s", f->t_start_s, 6);
    rc |= add_num(obj, "t_end_s", f->t_end_s, 6);
    if (ctx && ctx->anchor_unix_s > 0) {
        char utc[40];
        publisher_time_utc(ctx->anchor_unix_s + (f->t_start_s - ctx->anchor_t_s), utc, sizeof utc);
        rc |= framejson_add(obj, "time_utc", json_object_new_string(utc));
    }
    return rc;
}

static json_object *new_event(const char *type)
{
    json_object *obj = json_object_new_object();
    if (!obj)
        return NULL;
    if (framejson_add(obj, "type", json_object_new_string(type)) != 0 ||
        framejson_add(obj, "format_version", json_object_new_int(RXJSON_FORMAT_VERSION)) != 0) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

json_object *rxjson_frame(const rx_frame_t *f, const rxjson_ctx_t *ctx)
{
    if (!f)
        return NULL;
    json_object *obj = new_event("frame");
    if (!obj)
        return NULL;
    int rc = framejson_add_frame(obj, &f->frame, f->frame.crc_ok);
    rc |= framejson_add_auth(obj, auth_name(f->auth));
    rc |= framejson_add(obj, "joint", json_object_new_boolean(f->joint));
    rc |= add_radio(obj, f, f, ctx);
    if (rc != 0) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

json_object *rxjson_message(const rx_message_t *m, const rxjson_ctx_t *ctx)
{
    if (!m || m->nframes < 0 || m->nframes > RX_MAX_REPLICAS)
        return NULL;
    json_object *obj = new_event("message");
    if (!obj)
        return NULL;
    int rc = framejson_add_message(obj, &m->msg);
    rc |= framejson_add_auth(obj, auth_name(m->auth));
    rc |= framejson_add(obj, "combined", json_object_new_boolean(m->combined));
    rc |= framejson_add(obj, "nframes", json_object_new_int(m->nframes));
    if (m->nframes > 0) {
        /* Time and carrier of the first replica (the downlink is timed and tuned from
         * it, spec §4.9); level of the strongest. */
        int best = 0;
        for (int i = 1; i < m->nframes; i++)
            if (m->frames[i].snr_db > m->frames[best].snr_db)
                best = i;
        rc |= add_radio(obj, &m->frames[0], &m->frames[best], ctx);
    }
    json_object *replicas = json_object_new_array();
    if (!replicas || framejson_add(obj, "replicas", replicas) != 0) {
        json_object_put(obj);
        return NULL;
    }
    for (int i = 0; i < m->nframes; i++) {
        const rx_frame_t *f = &m->frames[i];
        json_object *r = json_object_new_object();
        if (!r || json_object_array_add(replicas, r) != 0) {
            json_object_put(r);
            rc = -1;
            break;
        }
        rc |= framejson_add_frame(r, &f->frame, false);
        rc |= framejson_add_auth(r, auth_name(f->auth));
        rc |= framejson_add(r, "joint", json_object_new_boolean(f->joint));
        rc |= add_radio(r, f, f, ctx);
    }
    if (rc != 0) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}
