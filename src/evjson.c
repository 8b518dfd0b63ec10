/* evjson: the JSON of every API event, uplink and downlink. Licence: MIT. */
#include "evjson.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "errbuf.h"
#include "framejson.h"
#include "hexutil.h"
#include "monarch.h"
#include "publisher.h"

json_object *evjson_new(const char *type, const evjson_ctx_t *ctx)
{
    const char *station = ctx && ctx->station_id && ctx->station_id[0] ? ctx->station_id : NULL;
    if (!type || (station && strlen(station) > EVJSON_STATION_ID_MAX))
        return NULL;
    json_object *obj = json_object_new_object();
    if (!obj)
        return NULL;
    int rc = framejson_add(obj, "type", json_object_new_string(type));
    rc |= framejson_add(obj, "format_version", json_object_new_int(PUBLISHER_FORMAT_VERSION));
    if (station)
        rc |= framejson_add(obj, "station_id", json_object_new_string(station));
    if (rc != 0) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

static int evjson_add_utc(json_object *obj, const char *key, double t_s, const evjson_ctx_t *ctx)
{
    if (!ctx || !(ctx->anchor_unix_s > 0) || !isfinite(t_s))
        return 0;
    char utc[40];
    publisher_time_utc(ctx->anchor_unix_s + (t_s - ctx->anchor_t_s), utc, sizeof utc);
    return framejson_add(obj, key, json_object_new_string(utc));
}

/* ---- uplink ----------------------------------------------------------------------------- */

/* Radio fields of burst f; RSSI and SNR from burst level (f itself for a frame). */
static int add_radio(json_object *obj, const rx_frame_t *f, const rx_frame_t *level,
                     const evjson_ctx_t *ctx)
{
    int rc = framejson_add(obj, "baud", json_object_new_int(f->baud));
    rc |= framejson_add_num(obj, "freq_hz", f->freq_hz, 1);
    rc |= framejson_add_num(obj, "drift_hz_s", f->drift_hz_s, 2);
    rc |= framejson_add_num(obj, "rssi_dbfs", level->rssi_dbfs, 2);
    if (ctx && ctx->rssi_calibrated)
        rc |= framejson_add_num(obj, "bs_rssi_dbm", level->rssi_dbfs + ctx->rssi_offset_db, 2);
    rc |= framejson_add_num(obj, "snr_db", level->snr_db, 2);
    rc |= framejson_add(obj, "sample_idx", json_object_new_int64((int64_t)f->sample_idx));
    rc |= framejson_add_num(obj, "t_start_s", f->t_start_s, 6);
    rc |= framejson_add_num(obj, "t_end_s", f->t_end_s, 6);
    rc |= evjson_add_utc(obj, "time_utc", f->t_start_s, ctx);
    return rc;
}

json_object *evjson_frame(const rx_frame_t *f, const evjson_ctx_t *ctx)
{
    if (!f)
        return NULL;
    json_object *obj = evjson_new("frame", ctx);
    if (!obj)
        return NULL;
    int rc = framejson_add_frame(obj, &f->frame, f->frame.crc_ok);
    rc |= framejson_add_auth(obj, rx_auth_name(f->auth));
    rc |= framejson_add(obj, "joint", json_object_new_boolean(f->joint));
    rc |= add_radio(obj, f, f, ctx);
    if (rc != 0) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

json_object *evjson_message(const rx_message_t *m, int replay_last_mc, const evjson_ctx_t *ctx)
{
    if (!m || m->nframes < 0 || m->nframes > RX_MAX_REPLICAS)
        return NULL;
    json_object *obj = evjson_new(replay_last_mc >= 0 ? "replay" : "message", ctx);
    if (!obj)
        return NULL;
    int rc = framejson_add_message(obj, &m->msg);
    rc |= framejson_add_auth(obj, rx_auth_name(m->auth));
    rc |= framejson_add(obj, "combined", json_object_new_boolean(m->combined));
    rc |= framejson_add(obj, "nframes", json_object_new_int(m->nframes));
    if (replay_last_mc >= 0)
        rc |= framejson_add(obj, "last_mc", json_object_new_int(replay_last_mc));
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
        rc |= framejson_add_auth(r, rx_auth_name(f->auth));
        rc |= framejson_add(r, "joint", json_object_new_boolean(f->joint));
        rc |= add_radio(r, f, f, ctx);
    }
    if (rc != 0) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

/* ---- downlink -------------------------------------------------------------------------- */

json_object *evjson_downlink_stats(const dlsched_stats_t *st)
{
    if (!st)
        return NULL;
    const dlsched_stats_t s = *st;
    json_object *o = json_object_new_object(), *by = json_object_new_object();
    int rc = (o && by) ? 0 : -1;
#define PUT(name) rc |= framejson_add(o, #name, json_object_new_int64((int64_t)s.name))
    PUT(uplinks);
    PUT(requests);
    PUT(ignored_unauth);
    PUT(scheduled);
    PUT(refused);
    PUT(no_answer);
    PUT(answers_ok);
    PUT(answers_rejected);
    PUT(sent);
    PUT(tx_failed);
    PUT(acks);
    PUT(lost);
    PUT(reservations);
    PUT(reservations_refused);
#undef PUT
    for (int st = 1; by && st <= DLSCHED_ST_CODEC; st++)
        if (s.refused_by[st])
            rc |= framejson_add(by, dlsched_status_name((dlsched_status_t)st),
                                json_object_new_int64((int64_t)s.refused_by[st]));
    if (o && by) {
        rc |= framejson_add(o, "refused_by", by);
        by = NULL;
    }
    json_object_put(by);
    if (rc != 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

json_object *evjson_downlink(const dlsched_event_t *ev, const evjson_ctx_t *ctx)
{
    if (!ev)
        return NULL;
    json_object *o = evjson_new(dlsched_event_name(ev->type), ctx);
    if (!o)
        return NULL;
    int rc = framejson_add(o, "id", json_object_new_int64(ev->id));
    rc |= framejson_add_ep_id(o, ev->ep_id);
    rc |= framejson_add(o, "mc", json_object_new_int(ev->mc));
    rc |= framejson_add(o, "mode", json_object_new_string(dlsched_mode_name(ev->mode)));
    rc |= framejson_add(o, "status", json_object_new_string(dlsched_status_name(ev->status)));
    if (ev->reason[0])
        rc |= framejson_add(o, "reason", json_object_new_string(ev->reason));
    if (ev->has_window) {
        rc |= framejson_add_num(o, "ul_freq_hz", ev->ul_freq_hz, 1);
        rc |= framejson_add_num(o, "ul_t_end_s", ev->ul_t_end_s, 6);
        rc |= framejson_add(o, "ul_rank", json_object_new_int(ev->ul_rank));
        rc |= framejson_add(o, "ul_derived", json_object_new_boolean(ev->ul_derived));
        rc |= framejson_add_num(o, "window_start_s", ev->window_start_s, 6);
        rc |= framejson_add_num(o, "window_end_s", ev->window_end_s, 6);
        if (ev->mode == DLSCHED_MODE_CALLBACK) {
            rc |= framejson_add_num(o, "deadline_s", ev->deadline_s, 6);
            rc |= evjson_add_utc(o, "deadline_utc", ev->deadline_s, ctx);
        }
    }
    if (ev->has_payload)
        rc |= framejson_add_hex(o, "payload", ev->payload, DL_PAYLOAD_BYTES);
    if (ev->has_dl) {
        rc |= framejson_add_num(o, "freq_hz", ev->freq_hz, 1);
        rc |= framejson_add_num(o, "tx_freq_hz", ev->tx_freq_hz, 1);
        rc |= framejson_add_num(o, "t_start_s", ev->t_start_s, 6);
        rc |= framejson_add_num(o, "t_end_s", ev->t_end_s, 6);
        if (ev->type != DLSCHED_EV_ACK)
            rc |= evjson_add_utc(o, "time_utc", ev->t_start_s, ctx);
    }
    if (ev->has_frame) {
        rc |= framejson_add_hex(o, "bitstream", ev->frame, DL_FRAME_BYTES);
        rc |= framejson_add_hex(o, "dl_phy_content", ev->phy, DL_PHY_BYTES);
        if (ev->type == DLSCHED_EV_SCHEDULED)
            rc |= framejson_add_hex(o, "dl_auth", ev->dl_auth, DL_AUTH_BYTES);
    }
    if (ev->has_limits) {
        rc |= framejson_add_num(o, "duty_used_s", ev->duty_used_s, 3);
        rc |= framejson_add_num(o, "duty_budget_s", ev->duty_budget_s, 3);
        rc |= framejson_add(o, "quota_used", json_object_new_int(ev->quota_used));
        rc |= framejson_add(o, "quota_limit", json_object_new_int(ev->quota_limit));
    }
    if (ev->file[0])
        rc |= framejson_add(o, "file", json_object_new_string(ev->file));
    if (ev->has_conf) {
        rc |= framejson_add_num(o, "conf_window_start_s", ev->conf_window_start_s, 6);
        rc |= framejson_add_num(o, "conf_window_end_s", ev->conf_window_end_s, 6);
        rc |= framejson_add(o, "conf_mc", json_object_new_int(ev->conf_mc));
    }
    if (ev->type == DLSCHED_EV_ACK) {
        rc |= framejson_add_num(o, "conf_t_start_s", ev->conf_t_start_s, 6);
        rc |= framejson_add_num(o, "t_conf_s", ev->t_conf_s, 6);
        rc |= framejson_add(o, "vdd_idle_mv", json_object_new_int(ev->control.vdd_idle_mv));
        rc |= framejson_add(o, "vdd_tx_mv", json_object_new_int(ev->control.vdd_tx_mv));
        rc |= framejson_add(o, "temp_tenth_c", json_object_new_int(ev->control.temp_tenth_c));
        rc |= framejson_add_num(o, "temp_c", ev->control.temp_tenth_c / 10.0, 1);
        rc |= framejson_add(o, "rssi_dbm", json_object_new_int(ev->control.rssi_dbm));
        rc |= framejson_add_num(o, "conf_freq_hz", ev->conf_freq_hz, 1);
        rc |= framejson_add_num(o, "conf_rssi_dbfs", ev->conf_rssi_dbfs, 2);
        rc |= framejson_add_num(o, "conf_snr_db", ev->conf_snr_db, 2);
        rc |= evjson_add_utc(o, "time_utc", ev->conf_t_start_s, ctx);
    }
    if (rc != 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static bool all_hex(const char *s)
{
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s))
            return false;
    return true;
}

int evjson_cmd_downlink(json_object *request, json_object *reply, void *user, char *err,
                        size_t err_len)
{
    dlsched_t *q = user;
    if (!q || !request || !reply) {
        errbuf_set(err, err_len, "downlink is not available");
        return -1;
    }
    json_object *jep, *jmc, *jpl;
    uint32_t ep_id;
    uint8_t payload[DL_PAYLOAD_BYTES];
    const char *bad = NULL;
    if (!json_object_object_get_ex(request, "ep_id", &jep) ||
        !json_object_is_type(jep, json_type_string) ||
        hex_to_ep_id(json_object_get_string(jep), &ep_id) != 0)
        bad = "ep_id: expected a string of 8 hex digits, e.g. \"FEDCBA98\"";
    else if (!json_object_object_get_ex(request, "mc", &jmc) ||
             !json_object_is_type(jmc, json_type_int) || json_object_get_int64(jmc) < 0 ||
             json_object_get_int64(jmc) > DL_MC_MAX)
        bad = "mc: expected an integer 0..4095 (the uplink's message counter)";
    else if (!json_object_object_get_ex(request, "payload", &jpl))
        bad = "payload: missing (16 hex digits = 8 bytes, or null to decline)";
    else if (jpl && (!json_object_is_type(jpl, json_type_string) ||
                     strlen(json_object_get_string(jpl)) != 2 * DL_PAYLOAD_BYTES ||
                     !all_hex(json_object_get_string(jpl)) ||
                     hex_to_bytes(json_object_get_string(jpl), payload, sizeof payload) !=
                         DL_PAYLOAD_BYTES))
        bad = "payload: expected exactly 16 hex digits (8 bytes), or null to decline";
    if (bad) {
        errbuf_set(err, err_len, "%s", bad);
        dlsched_count_rejected(q);
        return -1;
    }
    uint16_t mc = (uint16_t)json_object_get_int64(jmc);
    dlsched_event_t planned;
    if (dlsched_answer(q, ep_id, mc, jpl ? payload : NULL, &planned, err, err_len) != 0)
        return -1;
    int rc = framejson_add(reply, "id", json_object_new_int64(planned.id));
    rc |= framejson_add_ep_id(reply, ep_id);
    rc |= framejson_add(reply, "mc", json_object_new_int(mc));
    if (jpl) {
        rc |= framejson_add_hex(reply, "payload", payload, sizeof payload);
        rc |= framejson_add_num(reply, "freq_hz", planned.freq_hz, 1);
        rc |= framejson_add_num(reply, "t_start_s", planned.t_start_s, 6);
    } else {
        rc |= framejson_add(reply, "declined", json_object_new_boolean(1));
    }
    rc |= framejson_add_num(reply, "deadline_s", planned.deadline_s, 6);
    if (rc != 0) {
        errbuf_set(err, err_len, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- Monarch beacons -------------------------------------------------------------------- */

json_object *evjson_beacon(const evjson_beacon_t *b, const evjson_ctx_t *ctx)
{
    if (!b || !b->status)
        return NULL;
    json_object *o = evjson_new("monarch_beacon", ctx);
    if (!o)
        return NULL;
    int rc = framejson_add(o, "id", json_object_new_int64(b->id));
    rc |= framejson_add(o, "status", json_object_new_string(b->status));
    if (b->reason && b->reason[0])
        rc |= framejson_add(o, "reason", json_object_new_string(b->reason));
    rc |= framejson_add_num(o, "freq_hz", b->freq_hz, 1);
    rc |= framejson_add_num(o, "tx_freq_hz", b->tx_freq_hz, 1);
    rc |= framejson_add_num(o, "df1_hz", b->df1_hz, 1);
    rc |= framejson_add_num(o, "df2_hz", b->df2_hz, 1);
    rc |= framejson_add_num(o, "t_start_s", b->t_start_s, 6);
    rc |= framejson_add_num(o, "t_end_s", b->t_start_s + MONARCH_BEACON_S, 6);
    rc |= evjson_add_utc(o, "time_utc", b->t_start_s, ctx);
    if (b->file && b->file[0])
        rc |= framejson_add(o, "file", json_object_new_string(b->file));
    if (rc != 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}
