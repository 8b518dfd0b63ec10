/* evjson: the JSON of every API event, uplink and downlink. Licence: MIT. */
#include "evjson.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "framejson.h"
#include "hexutil.h"
#include "jsonstrict.h"
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

static bool all_hex(const char *s)
{
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s))
            return false;
    return true;
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


/* A new object appended to array arr (which then owns it), or NULL. */
static json_object *append_object(json_object *arr)
{
    json_object *o = json_object_new_object();
    if (!o || json_object_array_add(arr, o) != 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
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
        json_object *r = append_object(replicas);
        if (!r) {
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

/* ---- soft frames ------------------------------------------------------------------------ */

/* Quantization: step (LLR per unit) the power of two at or above the smaller of max|LLR|/127
 * (nothing clipped) and median|LLR|/16 (the median at 8 units or more, only outliers above
 * ~16 medians clipped). */
#define SOFT_MEDIAN_UNITS 16.0
#define SOFT_SCALE_MIN 0x1p-20
#define SOFT_SCALE_MAX 0x1p20

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

double evjson_soft_quantize(const float *llr, size_t n, int8_t *q)
{
    if (!llr || !q || n == 0 || n > RX_SOFT_MAX)
        return 0;
    float mag[RX_SOFT_MAX];
    float max = 0;
    for (size_t i = 0; i < n; i++) {
        mag[i] = isfinite(llr[i]) ? fabsf(llr[i]) : (isnan(llr[i]) ? 0.0f : FLT_MAX);
        if (mag[i] > max)
            max = mag[i];
    }
    qsort(mag, n, sizeof *mag, cmp_float);
    double median = mag[n / 2];
    double want = fmin(max / 127.0, median / SOFT_MEDIAN_UNITS);
    double scale = want > 0 ? exp2(ceil(log2(want))) : 1.0;
    if (scale < SOFT_SCALE_MIN)
        scale = SOFT_SCALE_MIN;
    if (scale > SOFT_SCALE_MAX)
        scale = SOFT_SCALE_MAX;
    for (size_t i = 0; i < n; i++) {
        double v = isnan(llr[i]) ? 0.0 : llr[i] / scale;
        v = v > 127 ? 127 : v < -127 ? -127 : v;
        q[i] = (int8_t)lrint(v);
    }
    return scale;
}

json_object *evjson_softframe(const rx_softframe_t *sf, const evjson_ctx_t *ctx)
{
    if (!sf || sf->nsoft < UL_FT_BITS || sf->nsoft > RX_SOFT_MAX || sf->nhyp > RX_SOFT_FT_HYPS ||
        !(sf->symbol_rate > 0))
        return NULL;
    json_object *obj = evjson_new("softframe", ctx);
    if (!obj)
        return NULL;
    /* the radio fields of a frame event; t_end_s: the end of the last soft value */
    rx_frame_t f;
    memset(&f, 0, sizeof f);
    f.baud = sf->baud;
    f.freq_hz = sf->freq_hz;
    f.drift_hz_s = sf->drift_hz_s;
    f.rssi_dbfs = sf->rssi_dbfs;
    f.snr_db = sf->snr_db;
    f.sample_idx = sf->sample_idx;
    f.t_start_s = sf->t_start_s;
    f.t_end_s = sf->t_start_s + (double)(UL_PREAMBLE_BITS + sf->nsoft) / sf->symbol_rate;
    int rc = framejson_add(obj, "reason",
                           json_object_new_string(sf->ft_readable ? "crc_bad" : "ft_bad"));
    rc |= add_radio(obj, &f, &f, ctx);
    rc |= framejson_add_num(obj, "symbol_rate", sf->symbol_rate, 3);
    char hex[8];
    snprintf(hex, sizeof hex, "%04X", (unsigned)sf->ft_rx);
    rc |= framejson_add(obj, "ft_rx", json_object_new_string(hex));
    json_object *hyps = json_object_new_array();
    if (!hyps || framejson_add(obj, "ft", hyps) != 0) {
        json_object_put(obj);
        return NULL;
    }
    for (size_t i = 0; i < sf->nhyp; i++) {
        const ul_ft_hyp_t *h = &sf->hyp[i];
        json_object *o = append_object(hyps);
        if (!o) {
            rc = -1;
            break;
        }
        snprintf(hex, sizeof hex, "%04X", (unsigned)h->ft);
        rc |= framejson_add(o, "ft", json_object_new_string(hex));
        rc |= framejson_add(o, "rank", json_object_new_int(h->rank));
        rc |= framejson_add(o, "container_bytes", json_object_new_int((int)h->container_bytes));
        rc |= framejson_add(o, "control", json_object_new_boolean(h->control));
        rc |= framejson_add(o, "distance", json_object_new_int(h->distance));
    }
    int8_t q[RX_SOFT_MAX];
    char b64[B64_LEN(RX_SOFT_MAX) + 1];
    double scale = evjson_soft_quantize(sf->soft, sf->nsoft, q);
    b64_encode((const uint8_t *)q, sf->nsoft, b64);
    rc |= framejson_add(obj, "soft_scale", json_object_new_double(scale));
    rc |= framejson_add(obj, "n_symbols", json_object_new_int((int)sf->nsoft));
    rc |= framejson_add(obj, "soft", json_object_new_string(b64));
    if (rc != 0) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}

/* Member key of obj: present, of one of the types (bits of 1 << json_type), else NULL with
 * the reason in err. */
static json_object *member(json_object *obj, const char *key, unsigned types, char *err,
                           size_t err_len)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || !v) {
        errbuf_set(err, err_len, "%s: missing or null", key);
        return NULL;
    }
    if (!(types & 1u << json_object_get_type(v))) {
        errbuf_set(err, err_len, "%s: wrong type", key);
        return NULL;
    }
    return v;
}

#define T_NUM (1u << json_type_int | 1u << json_type_double)
#define T_INT (1u << json_type_int)

/* A finite number within [lo, hi]. */
static int get_num(json_object *obj, const char *key, double lo, double hi, double *out, char *err,
                   size_t err_len)
{
    json_object *v = member(obj, key, T_NUM, err, err_len);
    if (!v)
        return -1;
    double x = json_object_get_double(v);
    if (!isfinite(x) || x < lo || x > hi) {
        errbuf_set(err, err_len, "%s: out of range", key);
        return -1;
    }
    *out = x;
    return 0;
}

/* An integer within [lo, hi]. */
static int get_int(json_object *obj, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   char *err, size_t err_len)
{
    json_object *v = member(obj, key, T_INT, err, err_len);
    if (!v)
        return -1;
    errno = 0;
    int64_t x = json_object_get_int64(v);
    if (errno != 0 || x < lo || x > hi) {
        errbuf_set(err, err_len, "%s: out of range", key);
        return -1;
    }
    *out = x;
    return 0;
}

/* A 13-bit FT as 4 hex digits. */
static int get_ft(json_object *obj, const char *key, uint16_t *out, char *err, size_t err_len)
{
    json_object *v = member(obj, key, 1u << json_type_string, err, err_len);
    if (!v)
        return -1;
    uint8_t b[2];
    const char *s = json_object_get_string(v);
    if (json_object_get_string_len(v) != 4 || !all_hex(s) || hex_to_bytes(s, b, 2) != 2 ||
        ((unsigned)b[0] << 8 | b[1]) >> UL_FT_BITS) {
        errbuf_set(err, err_len, "%s: expected 4 hex digits of a 13-bit value", key);
        return -1;
    }
    *out = (uint16_t)((unsigned)b[0] << 8 | b[1]);
    return 0;
}

static int parse_hyp(json_object *o, const float *soft, ul_ft_hyp_t *h, char *err, size_t err_len)
{
    int64_t rank, cbytes, dist;
    json_object *ctl;
    if (!json_object_is_type(o, json_type_object)) {
        errbuf_set(err, err_len, "ft: entries must be objects");
        return -1;
    }
    if (get_ft(o, "ft", &h->ft, err, err_len) != 0 ||
        get_int(o, "rank", 1, 3, &rank, err, err_len) != 0 ||
        get_int(o, "container_bytes", 8, 20, &cbytes, err, err_len) != 0 ||
        get_int(o, "distance", 0, UL_FT_BITS, &dist, err, err_len) != 0 ||
        !(ctl = member(o, "control", 1u << json_type_boolean, err, err_len)))
        return -1;
    h->rank = (int)rank;
    h->container_bytes = (size_t)cbytes;
    h->control = json_object_get_boolean(ctl);
    h->distance = (int)dist;
    if (ul_ft_value(h->container_bytes, h->control, h->rank) != h->ft) {
        errbuf_set(err, err_len, "ft: %04X is not the FT of rank %d, %zu bytes%s", h->ft, h->rank,
                   h->container_bytes, h->control ? ", control" : "");
        return -1;
    }
    h->score = 0;
    for (int b = 0; b < UL_FT_BITS; b++)
        h->score += ((h->ft >> (UL_FT_BITS - 1 - b)) & 1) ? soft[b] : -soft[b];
    return 0;
}

int evjson_softframe_parse(json_object *obj, rx_softframe_t *out, char *err, size_t err_len)
{
    if (!obj || !out) {
        errbuf_set(err, err_len, "no event");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (!json_object_is_type(obj, json_type_object)) {
        errbuf_set(err, err_len, "not a JSON object");
        return -1;
    }
    json_object *type = member(obj, "type", 1u << json_type_string, err, err_len);
    if (!type)
        return -1;
    if (strcmp(json_object_get_string(type), "softframe") != 0) {
        errbuf_set(err, err_len, "type: not a softframe event");
        return -1;
    }
    int64_t ver, baud, sidx, nsym;
    double scale;
    if (get_int(obj, "format_version", PUBLISHER_FORMAT_VERSION, PUBLISHER_FORMAT_VERSION, &ver,
                err, err_len) != 0 ||
        get_int(obj, "baud", 100, 600, &baud, err, err_len) != 0)
        return -1;
    if (baud != 100 && baud != 600) {
        errbuf_set(err, err_len, "baud: 100 or 600");
        return -1;
    }
    out->baud = (int)baud;
    json_object *reason = member(obj, "reason", 1u << json_type_string, err, err_len);
    if (!reason)
        return -1;
    const char *r = json_object_get_string(reason);
    if (strcmp(r, "crc_bad") != 0 && strcmp(r, "ft_bad") != 0) {
        errbuf_set(err, err_len, "reason: crc_bad or ft_bad");
        return -1;
    }
    out->ft_readable = strcmp(r, "crc_bad") == 0;
    /* bounds in whole Hz: a value within them stays within them when rounded for an event */
    if (get_num(obj, "symbol_rate", out->baud * 9 / 10, out->baud * 11 / 10, &out->symbol_rate,
                err, err_len) != 0 ||
        get_num(obj, "freq_hz", -1e10, 1e10, &out->freq_hz, err, err_len) != 0 ||
        get_num(obj, "drift_hz_s", -1e6, 1e6, &out->drift_hz_s, err, err_len) != 0 ||
        get_num(obj, "rssi_dbfs", -1000, 1000, &out->rssi_dbfs, err, err_len) != 0 ||
        get_num(obj, "snr_db", -1000, 1000, &out->snr_db, err, err_len) != 0 ||
        get_num(obj, "t_start_s", 0, 1e12, &out->t_start_s, err, err_len) != 0 ||
        get_int(obj, "sample_idx", 0, INT64_MAX, &sidx, err, err_len) != 0 ||
        get_ft(obj, "ft_rx", &out->ft_rx, err, err_len) != 0 ||
        get_num(obj, "soft_scale", SOFT_SCALE_MIN, SOFT_SCALE_MAX, &scale, err, err_len) != 0 ||
        get_int(obj, "n_symbols", UL_FT_BITS, RX_SOFT_MAX, &nsym, err, err_len) != 0)
        return -1;
    out->sample_idx = (uint64_t)sidx;
    json_object *soft = member(obj, "soft", 1u << json_type_string, err, err_len);
    if (!soft)
        return -1;
    int8_t q[RX_SOFT_MAX];
    size_t len = (size_t)json_object_get_string_len(soft);
    if (len != B64_LEN((size_t)nsym) ||
        b64_decode(json_object_get_string(soft), len, (uint8_t *)q, (size_t)nsym) != nsym) {
        errbuf_set(err, err_len, "soft: expected the base64 of n_symbols (%d) bytes", (int)nsym);
        return -1;
    }
    for (int64_t i = 0; i < nsym; i++) {
        if (q[i] == -128) {
            errbuf_set(err, err_len, "soft: -128 is not a quantized value");
            return -1;
        }
        out->soft[i] = (float)(q[i] * scale);
    }
    out->nsoft = (size_t)nsym;
    json_object *hyps = member(obj, "ft", 1u << json_type_array, err, err_len);
    if (!hyps)
        return -1;
    size_t nh = json_object_array_length(hyps);
    if (nh < 1 || nh > RX_SOFT_FT_HYPS) {
        errbuf_set(err, err_len, "ft: 1 to %d hypotheses", RX_SOFT_FT_HYPS);
        return -1;
    }
    for (size_t i = 0; i < nh; i++)
        if (parse_hyp(json_object_array_get_idx(hyps, i), out->soft, &out->hyp[i], err,
                      err_len) != 0)
            return -1;
    out->nhyp = nh;
    return 0;
}

int evjson_softframe_parse_text(const char *text, size_t len, rx_softframe_t *out, char *err,
                                size_t err_len)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!text || len > EVJSON_SOFTFRAME_MAX_TEXT) {
        errbuf_set(err, err_len, "no event, or longer than %d bytes", EVJSON_SOFTFRAME_MAX_TEXT);
        return -1;
    }
    json_object *obj = jsonstrict_parse(text, len, 4, err, err_len);
    if (!obj)
        return -1;
    int rc = evjson_softframe_parse(obj, out, err, err_len);
    json_object_put(obj);
    return rc;
}
