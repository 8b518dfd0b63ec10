/* test_dlsched: downlink scheduler (spec rev 1.4 §4.9 Tables 4-1..4-3, Table 2-1, §5.2).
 * Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlsched.h"
#include "evjson.h"
#include "hexutil.h"
#include "keys.h"
#include "rc.h"
#include "ulframe.h"

#include "testutil.h"

#define DL_DATA_S (DL_FRAME_BITS / 600.0)
#define EP_A 0xFEDCBA98u
/* Spec Annex C (test/vectors/frames.json "spec 8.2"). */
static const char *const KEY_A = "0123456789ABCDEF0123456789ABCDEF";
static const char *const ANNEX_C_DL_BITSTREAM =
    "AAAAAAAAAAAAAAAAAAAAAAB227C6053038C64BF92E718AAC45063E00";
static const char *const ANNEX_C_CONF_BITSTREAM = "AAAAAF67067398BADCFE09E40CCC10FA00E6BF9D810E";

/* ---- event recorder --------------------------------------------------------------------- */

#define MAX_EV 256
typedef struct {
    dlsched_event_t ev[MAX_EV];
    int n;
    int scheduled_rc; /* what on_event returns for SCHEDULED */
    char json[MAX_EV][2048];
} rec_t;
static rec_t rec;

static int on_event(const dlsched_event_t *ev, void *user)
{
    rec_t *r = user;
    if (r->n < MAX_EV) {
        r->ev[r->n] = *ev;
        json_object *o = evjson_downlink(ev, NULL);
        assert_non_null(o);
        snprintf(r->json[r->n], sizeof r->json[0], "%s",
                 json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        r->n++;
    }
    return ev->type == DLSCHED_EV_SCHEDULED ? r->scheduled_rc : 0;
}

static int count(dlsched_event_type_t t)
{
    int n = 0;
    for (int i = 0; i < rec.n; i++)
        n += rec.ev[i].type == t;
    return n;
}

static const dlsched_event_t *last(dlsched_event_type_t t)
{
    for (int i = rec.n - 1; i >= 0; i--)
        if (rec.ev[i].type == t)
            return &rec.ev[i];
    return NULL;
}

/* ---- fixtures --------------------------------------------------------------------------- */

static keystore_t *keys;

static void device_key(uint32_t ep, uint8_t key[16])
{
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)(ep * 7 + i * 31 + (ep >> 8));
}

static int setup(void **state)
{
    (void)state;
    memset(&rec, 0, sizeof rec);
    keys = keystore_create();
    uint8_t k[16];
    hex_to_bytes(KEY_A, k, 16);
    keystore_add(keys, EP_A, k);
    for (uint32_t ep = 0x1000; ep < 0x1040; ep++) {
        device_key(ep, k);
        keystore_add(keys, ep, k);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    keystore_destroy(keys);
    return 0;
}

static void base_config(dlsched_config_t *c, int rc_number)
{
    memset(c, 0, sizeof *c);
    c->rc = rc_get(rc_number);
    c->keys = keys;
    c->on_event = on_event;
    c->user = &rec;
}

static dlsched_t *make(const dlsched_config_t *c)
{
    char err[256] = "";
    dlsched_t *q = dlsched_create(c, err, sizeof err);
    if (!q)
        fail_msg("dlsched_create: %s", err);
    return q;
}

/* A scheduler for RC rcn with these configured devices and default settings. */
static dlsched_t *make_devices(int rcn, const dlsched_device_t *devs, size_t n)
{
    dlsched_config_t c;
    base_config(&c, rcn);
    c.devices = devs;
    c.ndevices = n;
    return make(&c);
}

/* One B-procedure frame of device ep: rank r, data from t_start for dur_s, carrier f. */
static dlsched_uplink_t bframe(uint32_t ep, uint16_t mc, int rank, double t_start, double dur_s,
                               double f)
{
    dlsched_uplink_t u;
    memset(&u, 0, sizeof u);
    u.ep_id = ep;
    u.mc = mc;
    u.bf = true;
    u.kind = UL_KIND_APP;
    u.auth_ok = true;
    u.rank = rank;
    u.baud = 100;
    u.freq_hz = f;
    u.t_start_s = t_start;
    u.t_end_s = t_start + dur_s;
    u.rssi_dbfs = -40;
    u.snr_db = 20;
    return u;
}

static dlsched_device_t direct_dev(uint32_t ep, const char *payload_hex)
{
    dlsched_device_t d;
    memset(&d, 0, sizeof d);
    d.ep_id = ep;
    d.mode = DLSCHED_MODE_DIRECT;
    assert_int_equal(hex_to_bytes(payload_hex, d.payload, 8), 8);
    return d;
}

/* Ticks from t0 to t1 in steps of dt (and exactly t1). */
static void run(dlsched_t *q, double t0, double t1, double dt)
{
    for (double t = t0; t < t1; t += dt)
        assert_true(dlsched_tick(q, t) >= 0);
    assert_true(dlsched_tick(q, t1) >= 0);
}

/* Decodes the scheduled frame with the device key and checks payload and AUTH. */
static void check_frame(const dlsched_event_t *ev, const uint8_t *payload)
{
    const uint8_t *key = keystore_find(keys, ev->ep_id);
    assert_non_null(key);
    dl_decoded_t d;
    assert_int_equal(dl_frame_decode(ev->ep_id, ev->mc, key, ev->phy, &d), 0);
    assert_true(d.crc_ok);
    assert_int_equal(d.auth_status, 1);
    assert_memory_equal(d.payload, payload, 8);
    assert_memory_equal(d.auth, ev->dl_auth, 2);
    assert_memory_equal(ev->frame + DL_FRAME_BYTES - DL_PHY_BYTES, ev->phy, DL_PHY_BYTES);
}

/* ---- timing and frequency per RC (Tables 4-1, 2-1) ----------------------------------------- */

static void test_window_each_rc(void **state)
{
    (void)state;
    for (int rcn = 1; rcn <= 7; rcn++) {
        memset(&rec, 0, sizeof rec);
        const rc_params_t *rc = rc_get(rcn);
        dlsched_device_t dev = direct_dev(EP_A, "0102030405060708");
        dlsched_t *q = make_devices(rcn, &dev, 1);
        double f1 = rc->ul_center_hz + 12345.6, t0 = 5.0, dur = 1.76;
        dlsched_uplink_t u = bframe(EP_A, 100, 1, t0, dur, f1);
        assert_int_equal(dlsched_uplink(q, &u), 1);
        double t_end1 = t0 + dur;
        double want_start = t_end1 + rc->t_w_s + 1.0 + 0.5 / 600;
        /* Nothing before the commit time (start - tx_lead_s 2 s), then exactly one. */
        run(q, t_end1, want_start - 2.0 - 0.01, 0.25);
        assert_int_equal(count(DLSCHED_EV_SCHEDULED), 0);
        assert_int_equal(dlsched_tick(q, want_start - 2.0 + 1e-9), 1);
        const dlsched_event_t *ev = last(DLSCHED_EV_SCHEDULED);
        assert_non_null(ev);
        assert_near(ev->t_start_s, want_start, 1e-9);
        assert_near(ev->t_end_s, want_start + DL_DATA_S, 1e-9);
        /* Whole burst (ramps included) inside the device's window with the 1 s margin. */
        assert_true(ev->t_start_s - 0.5 / 600 >= t_end1 + rc->t_w_s + 1.0 - 1e-9);
        assert_true(ev->t_end_s + 0.5 / 600 <= t_end1 + rc->t_w_s + rc->t_rx_s - 1.0);
        assert_near(ev->window_start_s, t_end1 + rc->t_w_s, 1e-9);
        assert_near(ev->window_end_s, t_end1 + rc->t_w_s + rc->t_rx_s, 1e-9);
        assert_false(ev->ul_derived);
        /* §4.9.2: first frame carrier + Δf_GAP, well within ±150 Hz. */
        assert_near(ev->freq_hz, f1 + rc->dl_gap_hz, 1e-6);
        assert_near(ev->tx_freq_hz, ev->freq_hz, 1e-6);
        assert_near(ev->freq_hz - rc->dl_center_hz, 12345.6, 1e-6);
        uint8_t pl[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        check_frame(ev, pl);
        /* T_CONF window of Table 4-1 (±0.5 s tolerance). */
        assert_near(ev->conf_window_start_s, ev->t_end_s + rc->t_conf_min_s - 0.5, 1e-9);
        assert_near(ev->conf_window_end_s, ev->t_end_s + rc->t_conf_max_s + 0.5, 1e-9);
        assert_int_equal(ev->conf_mc, 101);
        dlsched_destroy(q);
    }
}

/* The first frame was lost: timing and carrier from replica 2 or 3 (Tables 4-2, 4-3). The
 * DL must fall inside the device's real window whatever T_IFB the device used. */
static void test_derived_from_later_replica(void **state)
{
    (void)state;
    const int rcs[] = {1, 2, 3};
    for (size_t k = 0; k < sizeof rcs / sizeof rcs[0]; k++) {
        const rc_params_t *rc = rc_get(rcs[k]);
        double gap_max = rc->t_ifb_max_s >= 0 ? rc->t_ifb_max_s : DLSCHED_T_LF_S;
        const double gaps[] = {rc->t_ifb_min_s, 0.5 * (rc->t_ifb_min_s + gap_max), gap_max};
        for (size_t g = 0; g < 3; g++) {
            for (int seen = 2; seen <= 3; seen++) {
                for (int overhead = 0; overhead <= 1; overhead++) {
                    memset(&rec, 0, sizeof rec);
                    dlsched_device_t dev = direct_dev(EP_A, "1122334455667788");
                    dlsched_config_t c;
                    base_config(&c, rcs[k]);
                    c.devices = &dev;
                    c.ndevices = 1;
                    dlsched_t *q = make(&c);
                    double dur = 1.44, t_start1 = 3.0, f1 = rc->ul_center_hz - 40000.0;
                    /* ramp/lead/tail symbols around the gap (here 4 symbols at 100 baud) */
                    double step = gaps[g] + overhead * 0.04;
                    double t_start_r = t_start1 + (seen - 1) * (dur + step);
                    double f_r = f1 + (seen == 2 ? rc->df_mf_hz : -rc->df_mf_hz);
                    dlsched_uplink_t u = bframe(EP_A, 7, seen, t_start_r, dur, f_r);
                    assert_int_equal(dlsched_uplink(q, &u), 1);
                    run(q, u.t_end_s, u.t_end_s + 60, 0.5);
                    const dlsched_event_t *ev = last(DLSCHED_EV_SCHEDULED);
                    assert_non_null(ev);
                    assert_true(ev->ul_derived);
                    assert_int_equal(ev->ul_rank, seen);
                    double t_end1 = t_start1 + dur;
                    /* the "certain" window lies inside the device's real one */
                    assert_true(ev->window_start_s >= t_end1 + rc->t_w_s - 1e-9);
                    assert_true(ev->window_end_s <= t_end1 + rc->t_w_s + rc->t_rx_s + 1e-9);
                    assert_true(ev->t_start_s - 0.5 / 600 >= t_end1 + rc->t_w_s);
                    assert_true(ev->t_end_s + 0.5 / 600 <= t_end1 + rc->t_w_s + rc->t_rx_s);
                    assert_near(ev->freq_hz, f1 + rc->dl_gap_hz, 1e-6);
                    dlsched_destroy(q);
                }
            }
        }
    }
}

/* Rank 2 first, then rank 1 (e.g. recovered by joint decoding): the estimate becomes the
 * measured one before the commit. */
static void test_refined_by_first_frame(void **state)
{
    (void)state;
    dlsched_device_t dev = direct_dev(EP_A, "1122334455667788");
    dlsched_t *q = make_devices(1, &dev, 1);
    const rc_params_t *rc = rc_get(1);
    double dur = 1.44, f1 = 868.1e6;
    dlsched_uplink_t u2 = bframe(EP_A, 9, 2, 10.0 + dur + 0.51, dur, f1 + 6000.0 + 3.0);
    dlsched_uplink_t u1 = bframe(EP_A, 9, 1, 10.0, dur, f1);
    assert_int_equal(dlsched_uplink(q, &u2), 1);
    assert_int_equal(dlsched_uplink(q, &u1), 1);
    run(q, 15, 40, 0.5);
    const dlsched_event_t *ev = last(DLSCHED_EV_SCHEDULED);
    assert_non_null(ev);
    assert_false(ev->ul_derived);
    assert_int_equal(ev->ul_rank, 1);
    assert_near(ev->ul_t_end_s, 10.0 + dur, 1e-9);
    assert_near(ev->t_start_s, 10.0 + dur + rc->t_w_s + 1.0 + 0.5 / 600, 1e-9);
    assert_near(ev->freq_hz, f1 + rc->dl_gap_hz, 1e-6);
    assert_int_equal(count(DLSCHED_EV_SCHEDULED), 1);
    dlsched_destroy(q);
}

/* tx_ppm: what is synthesised is f / (1 + ppm), so a transmitter that is ppm off puts the
 * carrier on f; across the macro-channel and both signs, within ±150 Hz (§4.9.2). */
static void test_frequency_ppm(void **state)
{
    (void)state;
    const double ppms[] = {-25.0, -1.5, 0.0, 3.25, 40.0};
    for (int rcn = 1; rcn <= 7; rcn++) {
        const rc_params_t *rc = rc_get(rcn);
        for (size_t p = 0; p < sizeof ppms / sizeof ppms[0]; p++) {
            memset(&rec, 0, sizeof rec);
            dlsched_device_t dev = direct_dev(EP_A, "0000000000000000");
            dlsched_config_t c;
            base_config(&c, rcn);
            c.devices = &dev;
            c.ndevices = 1;
            c.tx_ppm = ppms[p];
            c.daily_quota = -1;
            dlsched_t *q = make(&c);
            for (int i = 0; i < 5; i++) {
                double f1 = rc->ul_center_hz + (i - 2) * 45000.0 + 0.37;
                double t0 = 100.0 * i;
                dlsched_uplink_t u = bframe(EP_A, (uint16_t)i, 1, t0, 0.24, f1);
                dlsched_uplink(q, &u);
                run(q, t0, t0 + 60, 1.0);
                const dlsched_event_t *ev = last(DLSCHED_EV_SCHEDULED);
                assert_non_null(ev);
                assert_int_equal(ev->mc, i);
                double on_air = ev->tx_freq_hz * (1 + ppms[p] * 1e-6);
                assert_near(on_air, f1 + rc->dl_gap_hz, 1e-3);
                assert_true(fabs(on_air - (f1 + rc->dl_gap_hz)) <= 150.0);
                /* the correction itself is not negligible: f·p/(1+p), ~ppm × 869 MHz */
                double pp = ppms[p] * 1e-6;
                assert_near(ev->freq_hz - ev->tx_freq_hz, ev->freq_hz * pp / (1 + pp), 0.01);
            }
            dlsched_destroy(q);
        }
    }
}

/* ---- callback mode ---------------------------------------------------------------------- */

static int cmd(dlsched_t *q, const char *text, json_object **reply, char *err, size_t len)
{
    json_object *req = json_tokener_parse(text);
    assert_non_null(req);
    *reply = json_object_new_object();
    err[0] = '\0';
    int rc = evjson_cmd_downlink(req, *reply, q, err, len);
    json_object_put(req);
    return rc;
}

/* The application's answer to the callback request of EP_A's MC 1650: payload_hex as a
 * downlink command. Returns evjson_cmd_downlink's result; the reply goes to *reply, or is
 * dropped when reply is NULL. */
static int answer(dlsched_t *q, const char *payload_hex, json_object **reply, char *err, size_t len)
{
    char text[160];
    snprintf(text, sizeof text,
             "{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":1650,\"payload\":\"%s\"}",
             payload_hex);
    json_object *r;
    int rc = cmd(q, text, &r, err, len);
    if (reply)
        *reply = r;
    else
        json_object_put(r);
    return rc;
}

/* An RC1 scheduler with EP_A's callback request for MC 1650 pending (a downlink-asking
 * first frame 2.0 .. 3.76 s at 868.15 MHz). */
static dlsched_t *callback_request(void)
{
    dlsched_config_t c;
    base_config(&c, 1);
    dlsched_t *q = make(&c);
    dlsched_uplink_t u = bframe(EP_A, 1650, 1, 2.0, 1.76, 868.15e6);
    assert_int_equal(dlsched_uplink(q, &u), 1);
    return q;
}

static void test_callback_answer_in_time(void **state)
{
    (void)state;
    dlsched_t *q = callback_request();
    const rc_params_t *rc = rc_get(1);
    const dlsched_event_t *req = last(DLSCHED_EV_REQUEST);
    assert_non_null(req);
    assert_int_equal(req->mode, DLSCHED_MODE_CALLBACK);
    assert_true(req->has_dl && !req->has_frame);
    double t_end1 = 3.76;
    double latest = t_end1 + rc->t_w_s + rc->t_rx_s - 1.0 - 0.5 / 600 - DL_DATA_S;
    assert_near(req->deadline_s, latest - 2.0, 1e-9);
    assert_near(req->t_start_s, t_end1 + rc->t_w_s + 1.0 + 0.5 / 600, 1e-9);
    assert_near(req->freq_hz, 868.15e6 + rc->dl_gap_hz, 1e-6);
    assert_non_null(strstr(rec.json[rec.n - 1], "\"type\":\"downlink_request\""));
    assert_non_null(strstr(rec.json[rec.n - 1], "\"deadline_s\""));

    run(q, 4, 10, 0.5); /* the application thinks for a few seconds */
    json_object *reply;
    char err[256];
    assert_int_equal(answer(q, "3031323334353637", &reply, err, sizeof err), 0);
    json_object *v;
    assert_true(json_object_object_get_ex(reply, "t_start_s", &v));
    assert_near(json_object_get_double(v), req->t_start_s, 1e-6);
    assert_true(json_object_object_get_ex(reply, "payload", &v));
    assert_string_equal(json_object_get_string(v), "3031323334353637");
    json_object_put(reply);
    /* A second answer is refused. */
    assert_int_equal(answer(q, "3031323334353637", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "already answered"));

    run(q, 10, 30, 0.5);
    const dlsched_event_t *ev = last(DLSCHED_EV_SCHEDULED);
    assert_non_null(ev);
    assert_near(ev->t_start_s, t_end1 + rc->t_w_s + 1.0 + 0.5 / 600, 1e-9);
    /* The spec's Annex C downlink, bit for bit. */
    char hex[2 * DL_FRAME_BYTES + 1];
    assert_string_equal(bytes_to_hex(ev->frame, DL_FRAME_BYTES, hex), ANNEX_C_DL_BITSTREAM);
    assert_string_equal(bytes_to_hex(ev->dl_auth, 2, hex), "852D");
    uint8_t pl[8] = {0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37};
    check_frame(ev, pl);
    dlsched_stats_t st;
    dlsched_get_stats(q, &st);
    assert_int_equal(st.answers_ok, 1);
    assert_int_equal(st.answers_rejected, 1);
    dlsched_destroy(q);
}

/* An answer after the commit point but before the deadline: sent tx_lead_s after it. */
/* A network core answers (remote_answers): no device key at the station, a direct-mode
 * device still asks (callback), a BF=1 frame whose AUTH could not be checked opens a
 * request, a failed AUTH does not, and the core's DL-AUTH builds the Annex C frame. */
static void test_remote_answers_without_key(void **state)
{
    (void)state;
    dlsched_device_t dev = direct_dev(EP_A, "0102030405060708");
    dlsched_config_t c;
    base_config(&c, 1);
    c.keys = NULL;
    c.devices = &dev;
    c.ndevices = 1;
    c.remote_answers = true;
    dlsched_t *q = make(&c);
    dlsched_uplink_t bad = bframe(EP_A, 1000, 1, 1.0, 1.76, 868.15e6);
    bad.auth_ok = false;
    bad.auth_bad = true;
    assert_int_equal(dlsched_uplink(q, &bad), 0);
    /* The first frame event opens the request (no message needed). */
    rx_frame_t fr;
    memset(&fr, 0, sizeof fr);
    fr.frame.crc_ok = true;
    fr.frame.rank = 1;
    fr.frame.msg.ep_id = EP_A;
    fr.frame.msg.mc = 1650;
    fr.frame.msg.bf = true;
    fr.frame.msg.kind = UL_KIND_APP;
    fr.auth = RX_AUTH_UNCHECKED; /* the station has no key */
    fr.baud = 100;
    fr.freq_hz = 868.15e6;
    fr.t_start_s = 2.0;
    fr.t_end_s = 3.76;
    assert_int_equal(dlsched_rx_frame(q, &fr), 1);
    const dlsched_event_t *req = last(DLSCHED_EV_REQUEST);
    assert_non_null(req);
    assert_int_equal(req->mode, DLSCHED_MODE_CALLBACK);
    assert_int_equal(count(DLSCHED_EV_REFUSED), 0);
    dlsched_stats_t st;
    dlsched_get_stats(q, &st);
    assert_int_equal(st.ignored_unauth, 1);
    uint8_t pl[8] = {0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37};
    uint8_t auth[2] = {0x85, 0x2D};
    char err[256];
    assert_int_equal(dlsched_answer_auth(q, EP_A, 1650, pl, auth, NULL, err, sizeof err), 0);
    run(q, 4, 30, 0.5);
    const dlsched_event_t *ev = last(DLSCHED_EV_SCHEDULED);
    assert_non_null(ev);
    char hex[2 * DL_FRAME_BYTES + 1];
    assert_string_equal(bytes_to_hex(ev->frame, DL_FRAME_BYTES, hex), ANNEX_C_DL_BITSTREAM);
    assert_string_equal(bytes_to_hex(ev->dl_auth, 2, hex), "852D");
    dlsched_destroy(q);
    /* Without remote answers the same station refuses for want of a key, and a frame
     * event alone opens nothing. */
    memset(&rec, 0, sizeof rec);
    c.remote_answers = false;
    c.devices = NULL;
    c.ndevices = 0;
    q = make(&c);
    fr.auth = RX_AUTH_OK;
    assert_int_equal(dlsched_rx_frame(q, &fr), 0);
    assert_int_equal(count(DLSCHED_EV_REQUEST) + count(DLSCHED_EV_REFUSED), 0);
    dlsched_uplink_t u = bframe(EP_A, 1650, 1, 2.0, 1.76, 868.15e6);
    assert_int_equal(dlsched_uplink(q, &u), 1);
    assert_int_equal(last(DLSCHED_EV_REFUSED)->status, DLSCHED_ST_NO_KEY);
    dlsched_destroy(q);
}

static void test_callback_answer_after_commit_point(void **state)
{
    (void)state;
    dlsched_t *q = callback_request();
    const dlsched_event_t *req = last(DLSCHED_EV_REQUEST);
    double deadline = req->deadline_s;
    run(q, 4, 30.0, 0.5);
    char err[256];
    assert_int_equal(answer(q, "0000000000000001", NULL, err, sizeof err), 0);
    run(q, 30, deadline + 10, 0.25);
    const dlsched_event_t *ev = last(DLSCHED_EV_SCHEDULED);
    assert_non_null(ev);
    assert_near(ev->t_start_s, 30.0 + 2.0, 1e-9);
    assert_int_equal(count(DLSCHED_EV_NO_ANSWER), 0);
    dlsched_destroy(q);
}

static void test_callback_late_and_no_answer(void **state)
{
    (void)state;
    dlsched_t *q = callback_request();
    double deadline = last(DLSCHED_EV_REQUEST)->deadline_s;
    /* "now" passes the deadline (an unrelated frame) before any tick processed it. */
    dlsched_uplink_t other = bframe(0x1001, 5, 1, deadline, 0.5, 868.1e6);
    other.bf = false;
    dlsched_uplink(q, &other);
    char err[256];
    assert_int_equal(answer(q, "3031323334353637", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "late"));
    assert_non_null(strstr(err, "deadline"));
    /* The next tick reports that no downlink is sent. */
    assert_int_equal(dlsched_tick(q, deadline + 0.5), 1);
    const dlsched_event_t *na = last(DLSCHED_EV_NO_ANSWER);
    assert_non_null(na);
    assert_int_equal(na->status, DLSCHED_ST_NO_ANSWER);
    assert_non_null(strstr(na->reason, "no downlink"));
    assert_non_null(strstr(rec.json[rec.n - 1], "\"status\":\"no_answer\""));
    /* An answer afterwards gets the same verdict. */
    assert_int_equal(answer(q, "3031323334353637", NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "late"));
    run(q, deadline, deadline + 100, 1);
    assert_int_equal(count(DLSCHED_EV_SCHEDULED), 0);
    dlsched_destroy(q);
}

static void test_callback_malformed_and_unknown(void **state)
{
    (void)state;
    dlsched_device_t dev = direct_dev(0x1002, "0102030405060708");
    dlsched_t *q = make_devices(1, &dev, 1);
    dlsched_uplink_t u = bframe(EP_A, 1650, 1, 2.0, 1.76, 868.15e6);
    dlsched_uplink(q, &u);
    dlsched_uplink_t d = bframe(0x1002, 3, 1, 2.0, 1.76, 868.12e6);
    dlsched_uplink(q, &d);
    static const struct {
        const char *request;
        const char *error_has;
    } cases[] = {
        {"{\"cmd\":\"downlink\",\"mc\":1650,\"payload\":\"3031323334353637\"}", "ep_id"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA9\",\"mc\":1650,\"payload\":\"3031323334353637\"}",
         "ep_id"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBAXX\",\"mc\":1650,\"payload\":\"3031323334353637\"}",
         "ep_id"},
        {"{\"cmd\":\"downlink\",\"ep_id\":4275878552,\"mc\":1650,\"payload\":\"3031323334353637\"}",
         "ep_id"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"payload\":\"3031323334353637\"}", "mc"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":\"1650\",\"payload\":\"3031323334353637\"}",
         "mc"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":4096,\"payload\":\"3031323334353637\"}",
         "mc"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":-1,\"payload\":\"3031323334353637\"}",
         "mc"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":1650.5,\"payload\":\"3031323334353637\"}",
         "mc"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":1650}", "payload"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":1650,\"payload\":\"30313233\"}",
         "payload"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":1650,\"payload\":\"303132333435363738\"}",
         "payload"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":1650,\"payload\":\"30313233343536ZZ\"}",
         "payload"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":1650,\"payload\":\"3031 32333435363\"}",
         "payload"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":1650,\"payload\":12345678}", "payload"},
        /* well-formed, but nothing asked for it */
        {"{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":1651,\"payload\":\"3031323334353637\"}",
         "no pending downlink request"},
        {"{\"cmd\":\"downlink\",\"ep_id\":\"00001234\",\"mc\":1650,\"payload\":\"3031323334353637\"}",
         "no pending downlink request"},
        /* a direct-mode device needs no answer */
        {"{\"cmd\":\"downlink\",\"ep_id\":\"00001002\",\"mc\":3,\"payload\":\"3031323334353637\"}",
         "direct mode"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *reply;
        char err[256];
        if (cmd(q, cases[i].request, &reply, err, sizeof err) != -1)
            fail_msg("accepted: %s", cases[i].request);
        if (!strstr(err, cases[i].error_has))
            fail_msg("%s: error '%s' lacks '%s'", cases[i].request, err, cases[i].error_has);
        json_object_put(reply);
    }
    dlsched_stats_t st;
    dlsched_get_stats(q, &st);
    assert_int_equal(st.answers_rejected, sizeof cases / sizeof cases[0]);
    assert_int_equal(st.answers_ok, 0);
    /* The real request is still answerable; null declines it. */
    json_object *reply;
    char err[256];
    assert_int_equal(cmd(q, "{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":1650,\"payload\":null}",
                         &reply, err, sizeof err),
                     0);
    json_object *v;
    assert_true(json_object_object_get_ex(reply, "declined", &v) && json_object_get_boolean(v));
    json_object_put(reply);
    const dlsched_event_t *ref = last(DLSCHED_EV_REFUSED);
    assert_non_null(ref);
    assert_int_equal(ref->status, DLSCHED_ST_DECLINED);
    run(q, 4, 60, 1);
    assert_int_equal(count(DLSCHED_EV_SCHEDULED), 1); /* the direct-mode device only */
    assert_int_equal(last(DLSCHED_EV_SCHEDULED)->ep_id, 0x1002);
    assert_int_equal(count(DLSCHED_EV_NO_ANSWER), 0);
    dlsched_destroy(q);
}

/* ---- limits ----------------------------------------------------------------------------- */

static void test_duty_cycle(void **state)
{
    (void)state;
    dlsched_device_t devs[12];
    for (int i = 0; i < 12; i++)
        devs[i] = direct_dev(0x1000 + (uint32_t)i, "00000000000000AA");
    dlsched_config_t c;
    base_config(&c, 1);
    c.devices = devs;
    c.ndevices = 12;
    c.duty_cycle = 0.001; /* 3.6 s per hour: 9 bursts of 0.375 s */
    dlsched_t *q = make(&c);
    for (int i = 0; i < 12; i++) {
        dlsched_uplink_t u = bframe(0x1000 + (uint32_t)i, 1, 1, 1.0 * i, 0.24, 868.1e6 + 1000 * i);
        dlsched_uplink(q, &u);
        dlsched_tick(q, u.t_end_s);
    }
    run(q, 12, 80, 0.5);
    assert_int_equal(count(DLSCHED_EV_SCHEDULED), 9);
    assert_int_equal(count(DLSCHED_EV_REFUSED), 3);
    for (int i = 0; i < rec.n; i++) {
        if (rec.ev[i].type == DLSCHED_EV_REFUSED) {
            assert_int_equal(rec.ev[i].status, DLSCHED_ST_DUTY_CYCLE);
            assert_non_null(strstr(rec.ev[i].reason, "duty cycle"));
            assert_true(rec.ev[i].ep_id >= 0x1009);
        }
    }
    const dlsched_event_t *ev = last(DLSCHED_EV_SCHEDULED);
    assert_near(ev->duty_used_s, 9 * DLSCHED_BURST_S, 1e-6);
    assert_near(ev->duty_budget_s, 3.6, 1e-9);
    /* An hour later the budget is free again. */
    dlsched_uplink_t u = bframe(0x1000, 2, 1, 3700, 0.24, 868.1e6);
    dlsched_uplink(q, &u);
    run(q, 3700, 3760, 0.5);
    assert_int_equal(count(DLSCHED_EV_SCHEDULED), 10);
    assert_int_equal(last(DLSCHED_EV_SCHEDULED)->ep_id, 0x1000);
    dlsched_stats_t st;
    dlsched_get_stats(q, &st);
    assert_int_equal(st.refused_by[DLSCHED_ST_DUTY_CYCLE], 3);
    dlsched_destroy(q);
}

static void test_out_of_band(void **state)
{
    (void)state;
    dlsched_device_t dev = direct_dev(EP_A, "0000000000000000");
    dlsched_t *q = make_devices(1, &dev, 1);
    /* 868.226 MHz + 1.395 MHz = 869.621 MHz: inside 869.40-869.65 */
    dlsched_uplink_t u = bframe(EP_A, 1, 1, 0, 0.24, 868.226e6);
    dlsched_uplink(q, &u);
    run(q, 0, 99, 1);
    /* a carrier the DL band cannot take (UL 868.27 MHz -> DL 869.665 MHz) */
    dlsched_uplink_t v = bframe(EP_A, 2, 1, 100, 0.24, 868.27e6);
    dlsched_uplink(q, &v);
    run(q, 100, 200, 1);
    assert_int_equal(count(DLSCHED_EV_SCHEDULED), 1);
    const dlsched_event_t *r = last(DLSCHED_EV_REFUSED);
    assert_non_null(r);
    assert_int_equal(r->mc, 2);
    assert_int_equal(r->status, DLSCHED_ST_OUT_OF_BAND);
    dlsched_destroy(q);
}

static void test_daily_quota(void **state)
{
    (void)state;
    dlsched_device_t dev = direct_dev(EP_A, "0000000000000000");
    dev.daily_quota = 2;
    dlsched_device_t other = direct_dev(0x1005, "0000000000000000"); /* default quota 4 */
    dlsched_device_t devs[2] = {dev, other};
    dlsched_t *q = make_devices(1, devs, 2);
    for (int i = 0; i < 3; i++) {
        dlsched_uplink_t u = bframe(EP_A, (uint16_t)(10 + i), 1, 60.0 * i, 1.0, 868.1e6);
        dlsched_uplink(q, &u);
        run(q, u.t_end_s, u.t_end_s + 59, 0.5);
    }
    assert_int_equal(count(DLSCHED_EV_SCHEDULED), 2);
    const dlsched_event_t *r = last(DLSCHED_EV_REFUSED);
    assert_non_null(r);
    assert_int_equal(r->status, DLSCHED_ST_QUOTA);
    assert_int_equal(r->mc, 12);
    assert_non_null(strstr(r->reason, "2 of 2"));
    /* The default quota is 4 (seeds/000 §3.4). */
    for (int i = 0; i < 5; i++) {
        dlsched_uplink_t u = bframe(0x1005, (uint16_t)i, 1, 200 + 60.0 * i, 1.0, 868.1e6);
        dlsched_uplink(q, &u);
        run(q, u.t_end_s, u.t_end_s + 59, 0.5);
    }
    assert_int_equal(count(DLSCHED_EV_SCHEDULED), 6);
    assert_int_equal(last(DLSCHED_EV_REFUSED)->ep_id, 0x1005);
    assert_int_equal(last(DLSCHED_EV_SCHEDULED)->quota_limit, 4);
    assert_int_equal(last(DLSCHED_EV_SCHEDULED)->quota_used, 4);
    /* 24 h after the first, one is free again. */
    dlsched_uplink_t u = bframe(EP_A, 13, 1, 86400 + 10, 1.0, 868.1e6);
    dlsched_uplink(q, &u);
    run(q, u.t_end_s, u.t_end_s + 59, 0.5);
    assert_int_equal(last(DLSCHED_EV_SCHEDULED)->ep_id, EP_A);
    assert_int_equal(last(DLSCHED_EV_SCHEDULED)->mc, 13);
    dlsched_destroy(q);
}

/* Two devices asking at the same moment: one transmitter, no overlap, both in window. */
static void test_tx_busy(void **state)
{
    (void)state;
    dlsched_device_t devs[3] = {direct_dev(0x1010, "0000000000000001"),
                                direct_dev(0x1011, "0000000000000002"),
                                direct_dev(0x1012, "0000000000000003")};
    dlsched_config_t c;
    base_config(&c, 1);
    c.devices = devs;
    c.ndevices = 3;
    c.window_margin_s = 1.0;
    dlsched_t *q = make(&c);
    for (int i = 0; i < 3; i++) {
        dlsched_uplink_t u = bframe(devs[i].ep_id, 1, 1, 5.0, 1.0, 868.1e6 + 2000 * i);
        dlsched_uplink(q, &u);
    }
    run(q, 6, 60, 0.1);
    assert_int_equal(count(DLSCHED_EV_SCHEDULED), 3);
    double prev_end = -1;
    for (int i = 0; i < rec.n; i++) {
        const dlsched_event_t *ev = &rec.ev[i];
        if (ev->type != DLSCHED_EV_SCHEDULED)
            continue;
        assert_true(ev->t_start_s - 0.5 / 600 >= prev_end + 0.05 - 1e-9);
        assert_true(ev->t_start_s >= 6.0 + 20.0);
        assert_true(ev->t_end_s <= 6.0 + 45.0 - 1.0);
        prev_end = ev->t_end_s + 0.5 / 600;
    }
    dlsched_destroy(q);
}

static void swap_stores(void *arg)
{
    keystore_t **pair = arg;
    keystore_swap(pair[0], pair[1]);
}

/* A key store replaced under the scheduler's lock (SIGHUP reload) takes effect at once:
 * a device whose key was removed is refused, and the old contents come back intact. */
static void test_keys_replaced_under_lock(void **state)
{
    (void)state;
    dlsched_device_t dev = direct_dev(EP_A, "0000000000000000");
    dlsched_t *q = make_devices(1, &dev, 1);
    keystore_t *empty = keystore_create();
    keystore_t *pair[2] = {keys, empty};
    dlsched_locked(q, swap_stores, pair);
    dlsched_uplink_t u = bframe(EP_A, 7, 1, 0, 1, 868.1e6);
    dlsched_uplink(q, &u);
    assert_int_equal(last(DLSCHED_EV_REFUSED)->status, DLSCHED_ST_NO_KEY);
    dlsched_locked(q, swap_stores, pair);
    assert_non_null(keystore_find(keys, EP_A));
    dlsched_locked(NULL, swap_stores, pair); /* no scheduler: just runs */
    assert_null(keystore_find(keys, EP_A));
    dlsched_locked(NULL, swap_stores, pair);
    keystore_destroy(empty);
    dlsched_destroy(q);
}

static void test_refusals(void **state)
{
    (void)state;
    dlsched_device_t off = {.ep_id = 0x1003, .mode = DLSCHED_MODE_OFF};
    dlsched_t *q = make_devices(1, &off, 1);
    /* mode off */
    dlsched_uplink_t u = bframe(0x1003, 1, 1, 0, 1, 868.1e6);
    assert_int_equal(dlsched_uplink(q, &u), 1);
    assert_int_equal(last(DLSCHED_EV_REFUSED)->status, DLSCHED_ST_DISABLED);
    /* no key */
    u = bframe(0x7777, 1, 1, 0, 1, 868.1e6);
    dlsched_uplink(q, &u);
    assert_int_equal(last(DLSCHED_EV_REFUSED)->status, DLSCHED_ST_NO_KEY);
    /* reported too late (the daemon was 50 s behind) */
    dlsched_tick(q, 100);
    u = bframe(EP_A, 1, 1, 40, 1, 868.1e6);
    dlsched_uplink(q, &u);
    assert_int_equal(last(DLSCHED_EV_REFUSED)->status, DLSCHED_ST_WINDOW);
    /* not authenticated: ignored (counted), not answered */
    u = bframe(EP_A, 2, 1, 100, 1, 868.1e6);
    u.auth_ok = false;
    assert_int_equal(dlsched_uplink(q, &u), 0);
    /* BF=0 and control frames do not ask */
    u = bframe(EP_A, 3, 1, 100, 1, 868.1e6);
    u.bf = false;
    assert_int_equal(dlsched_uplink(q, &u), 0);
    assert_int_equal(count(DLSCHED_EV_REQUEST), 0);
    assert_int_equal(count(DLSCHED_EV_REFUSED), 3);
    dlsched_stats_t st;
    dlsched_get_stats(q, &st);
    assert_int_equal(st.ignored_unauth, 1);
    assert_int_equal(st.refused, 3);
    dlsched_stats_t dst;
    dlsched_get_stats(q, &dst);
    json_object *sj = evjson_downlink_stats(&dst);
    assert_non_null(sj);
    const char *txt = json_object_to_json_string_ext(sj, JSON_C_TO_STRING_PLAIN);
    assert_non_null(strstr(txt, "\"no_key\":1"));
    assert_non_null(strstr(txt, "\"disabled\":1"));
    json_object_put(sj);
    dlsched_destroy(q);
}

static void test_bad_config(void **state)
{
    (void)state;
    dlsched_config_t c;
    char err[256];
    base_config(&c, 1);
    c.rc = NULL;
    assert_null(dlsched_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "rc"));
    base_config(&c, 1);
    c.duty_cycle = 1.5;
    assert_null(dlsched_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "duty_cycle"));
    base_config(&c, 1);
    c.daily_quota = 100;
    assert_null(dlsched_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "daily_quota"));
    base_config(&c, 1);
    c.default_mode = DLSCHED_MODE_DIRECT;
    assert_null(dlsched_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "default_mode"));
    dlsched_device_t two[2] = {direct_dev(1, "0000000000000000"), direct_dev(1, "0000000000000000")};
    base_config(&c, 1);
    c.devices = two;
    c.ndevices = 2;
    assert_null(dlsched_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(dlsched_mode_from_name("Direct"), DLSCHED_MODE_DIRECT);
    assert_int_equal(dlsched_mode_from_name("callback"), DLSCHED_MODE_CALLBACK);
    assert_int_equal(dlsched_mode_from_name("off"), DLSCHED_MODE_OFF);
    assert_int_equal(dlsched_mode_from_name("sometimes"), -1);
}

/* ---- confirmation (§5.2) ---------------------------------------------------------------- */

/* The Annex C confirmation frame, decoded with the project's codec. */
static dlsched_uplink_t annex_c_confirmation(double t_start)
{
    uint8_t bits[UL_MAX_FRAME_BYTES];
    int n = hex_to_bytes(ANNEX_C_CONF_BITSTREAM, bits, sizeof bits);
    assert_int_equal(n, 22);
    ul_frame_t f;
    assert_int_equal(ul_frame_decode(bits, (size_t)n * 8, true, 2, &f), 0);
    assert_int_equal(f.msg.kind, UL_KIND_DL_CONFIRMATION);
    assert_int_equal(ul_auth_verify(f.container, f.container_len, keystore_find(keys, EP_A)), 1);
    dlsched_uplink_t u;
    memset(&u, 0, sizeof u);
    u.ep_id = f.msg.ep_id;
    u.mc = f.msg.mc;
    u.kind = f.msg.kind;
    u.auth_ok = true;
    u.rank = f.rank;
    u.baud = 100;
    u.freq_hz = 868.0501e6;
    u.t_start_s = t_start;
    u.t_end_s = t_start + n * 8 / 100.0;
    u.rssi_dbfs = -51.5;
    u.snr_db = 17.25;
    u.control = f.msg.control;
    return u;
}

static dlsched_t *scheduled_annex_c(void)
{
    static dlsched_device_t dev;
    dev = direct_dev(EP_A, "3031323334353637");
    dlsched_t *q = make_devices(1, &dev, 1);
    dlsched_uplink_t u = bframe(EP_A, 0x672, 1, 1.0, 2.2, 868.13e6);
    dlsched_uplink(q, &u);
    run(q, 3.2, 30, 0.5);
    assert_int_equal(count(DLSCHED_EV_SCHEDULED), 1);
    return q;
}

static void test_confirmation_ack(void **state)
{
    (void)state;
    dlsched_t *q = scheduled_annex_c();
    const dlsched_event_t *sch = last(DLSCHED_EV_SCHEDULED);
    char hex[2 * DL_FRAME_BYTES + 1];
    assert_string_equal(bytes_to_hex(sch->frame, DL_FRAME_BYTES, hex), ANNEX_C_DL_BITSTREAM);
    double t_end = sch->t_end_s;
    assert_int_equal(dlsched_tx_done(q, sch->id, true, NULL, "/tmp/x.cf32"), 0);
    assert_int_equal(last(DLSCHED_EV_SENT)->id, sch->id);
    assert_string_equal(last(DLSCHED_EV_SENT)->file, "/tmp/x.cf32");
    /* Annex C: the confirmation carries MC 0x673 = request MC + 1. */
    dlsched_uplink_t conf = annex_c_confirmation(t_end + 2.0);
    assert_int_equal(conf.mc, 0x673);
    run(q, 30, t_end + 2.0, 0.5);
    assert_int_equal(dlsched_uplink(q, &conf), 1);
    const dlsched_event_t *ack = last(DLSCHED_EV_ACK);
    assert_non_null(ack);
    assert_int_equal(ack->id, sch->id);
    assert_int_equal(ack->conf_mc, 0x673);
    assert_int_equal(ack->control.rssi_dbm, -126);
    assert_int_equal(ack->control.vdd_idle_mv, 3300);
    assert_int_equal(ack->control.vdd_tx_mv, 4300);
    assert_int_equal(ack->control.temp_tenth_c, 250);
    assert_near(ack->t_conf_s, 2.0, 1e-9);
    const char *js = rec.json[rec.n - 1];
    assert_non_null(strstr(js, "\"type\":\"downlink_ack\""));
    assert_non_null(strstr(js, "\"rssi_dbm\":-126"));
    assert_non_null(strstr(js, "\"vdd_idle_mv\":3300"));
    assert_non_null(strstr(js, "\"temp_c\":25.0"));
    /* The same frame again (message event after the frame event): no second ack. */
    assert_int_equal(dlsched_uplink(q, &conf), 0);
    run(q, t_end + 2, t_end + 300, 1);
    assert_int_equal(count(DLSCHED_EV_ACK), 1);
    assert_int_equal(count(DLSCHED_EV_LOST), 0);
    dlsched_destroy(q);
}

static void test_confirmation_lost(void **state)
{
    (void)state;
    /* 0: nothing; 1: wrong MC; 2: too late (6 s); 3: not authenticated; 4: too early */
    for (int variant = 0; variant < 5; variant++) {
        memset(&rec, 0, sizeof rec);
        dlsched_t *q = scheduled_annex_c();
        const dlsched_event_t *sch = last(DLSCHED_EV_SCHEDULED);
        double t_end = sch->t_end_s;
        double lost_by = t_end + 4.0 + 0.5 + 1.76 + 3.0;
        if (variant > 0) {
            double t = variant == 2 ? t_end + 6.0 : variant == 4 ? t_end + 0.5 : t_end + 2.0;
            dlsched_uplink_t conf = annex_c_confirmation(t);
            if (variant == 1)
                conf.mc = 0x674;
            if (variant == 3)
                conf.auth_ok = false;
            dlsched_uplink(q, &conf);
        }
        run(q, 30, lost_by - 0.01, 0.25);
        assert_int_equal(count(DLSCHED_EV_LOST), 0);
        dlsched_tick(q, lost_by + 0.01);
        assert_int_equal(count(DLSCHED_EV_ACK), 0);
        const dlsched_event_t *lost = last(DLSCHED_EV_LOST);
        assert_non_null(lost);
        assert_int_equal(lost->status, DLSCHED_ST_TIMEOUT);
        assert_int_equal(lost->conf_mc, 0x673);
        assert_non_null(strstr(rec.json[rec.n - 1], "\"type\":\"downlink_lost\""));
        dlsched_destroy(q);
    }
}

/* ---- transmitter feedback, end of stream, JSON -------------------------------------------- */

static void test_tx_failures(void **state)
{
    (void)state;
    dlsched_device_t dev = direct_dev(EP_A, "0000000000000000");
    dev.daily_quota = 1;
    dlsched_t *q = make_devices(1, &dev, 1);
    /* The transmitter refuses (queue full): failed, quota given back. */
    rec.scheduled_rc = -1;
    dlsched_uplink_t u = bframe(EP_A, 1, 1, 0, 1, 868.1e6);
    dlsched_uplink(q, &u);
    run(q, 1, 60, 0.5);
    assert_int_equal(count(DLSCHED_EV_SCHEDULED), 1);
    assert_int_equal(count(DLSCHED_EV_TX_FAILED), 1);
    assert_int_equal(count(DLSCHED_EV_LOST), 0);
    /* Accepted, then the radio fails: failed again, quota given back again. */
    rec.scheduled_rc = 0;
    u = bframe(EP_A, 2, 1, 100, 1, 868.1e6);
    dlsched_uplink(q, &u);
    run(q, 101, 130, 0.5);
    const dlsched_event_t *sch = last(DLSCHED_EV_SCHEDULED);
    assert_int_equal(sch->mc, 2);
    assert_int_equal(dlsched_tx_done(q, sch->id, false, "burst due 0.2 s ago", NULL), 0);
    assert_int_equal(dlsched_tx_done(q, sch->id, true, NULL, NULL), DLSCHED_ERR_ARG);
    assert_int_equal(count(DLSCHED_EV_TX_FAILED), 2);
    assert_string_equal(last(DLSCHED_EV_TX_FAILED)->reason, "burst due 0.2 s ago");
    run(q, 130, 200, 1);
    assert_int_equal(count(DLSCHED_EV_LOST), 0);
    /* quota 1 still free */
    u = bframe(EP_A, 3, 1, 300, 1, 868.1e6);
    dlsched_uplink(q, &u);
    run(q, 301, 330, 0.5);
    assert_int_equal(last(DLSCHED_EV_SCHEDULED)->mc, 3);
    assert_int_equal(dlsched_tx_done(q, 9999, true, NULL, NULL), DLSCHED_ERR_ARG);
    dlsched_destroy(q);
}

static void test_flush(void **state)
{
    (void)state;
    dlsched_device_t dev = direct_dev(0x1020, "0000000000000000");
    dlsched_t *q = make_devices(1, &dev, 1);
    dlsched_uplink_t a = bframe(0x1020, 1, 1, 0, 1, 868.1e6);
    dlsched_uplink_t b = bframe(EP_A, 1, 1, 0.5, 1, 868.11e6);
    dlsched_uplink(q, &a);
    dlsched_uplink(q, &b);
    dlsched_tick(q, 2.0); /* the recording ends here */
    assert_int_equal(dlsched_flush(q), 3);
    const dlsched_event_t *sch = last(DLSCHED_EV_SCHEDULED);
    assert_non_null(sch);
    assert_near(sch->t_start_s, 1.0 + 20.0 + 1.0 + 0.5 / 600, 1e-9); /* planned time */
    assert_int_equal(last(DLSCHED_EV_NO_ANSWER)->status, DLSCHED_ST_END_OF_STREAM);
    assert_int_equal(last(DLSCHED_EV_LOST)->status, DLSCHED_ST_END_OF_STREAM);
    dlsched_destroy(q);
}

/* dlsched_flush_commits: the planned DL is committed, nothing is closed yet; the verdicts
 * come with dlsched_flush. */
static void test_flush_commits(void **state)
{
    (void)state;
    dlsched_device_t dev = direct_dev(0x1020, "0000000000000000");
    dlsched_t *q = make_devices(1, &dev, 1);
    dlsched_uplink_t a = bframe(0x1020, 1, 1, 0, 1, 868.1e6);
    dlsched_uplink(q, &a);
    dlsched_tick(q, 2.0);
    assert_int_equal(dlsched_flush_commits(q), 1);
    assert_int_equal(count(DLSCHED_EV_SCHEDULED), 1);
    assert_int_equal(count(DLSCHED_EV_LOST), 0);
    assert_int_equal(dlsched_flush_commits(q), 0);
    assert_int_equal(dlsched_flush(q), 1);
    assert_int_equal(last(DLSCHED_EV_LOST)->status, DLSCHED_ST_END_OF_STREAM);
    assert_int_equal(dlsched_flush_commits(NULL), DLSCHED_ERR_ARG);
    dlsched_destroy(q);
}

/* answer_timeout_s (seeds/000 §7.1.3): the deadline is the request time + the timeout when
 * that comes before the window's; answers after it are late; 0 keeps the window's. */
static void test_answer_timeout(void **state)
{
    (void)state;
    double window_deadline = 0;
    for (int k = 0; k < 2; k++) {
        memset(&rec, 0, sizeof rec);
        dlsched_config_t c;
        base_config(&c, 1);
        c.answer_timeout_s = k == 0 ? 0 : 10;
        dlsched_t *q = make(&c);
        dlsched_tick(q, 1.0);
        dlsched_uplink_t u = bframe(EP_A, 1650, 1, 2.0, 1.76, 868.15e6);
        dlsched_uplink(q, &u); /* now = 3.76 s */
        const dlsched_event_t *req = last(DLSCHED_EV_REQUEST);
        assert_non_null(req);
        if (k == 0) {
            window_deadline = req->deadline_s;
            /* t_latest - tx_lead: window end - margin - ramp - data - lead */
            assert_near(window_deadline, 3.76 + 45 - 1 - 0.5 / 600 - DL_DATA_S - 2, 1e-9);
            dlsched_destroy(q);
            continue;
        }
        assert_near(req->deadline_s, 3.76 + 10, 1e-9);
        assert_true(req->deadline_s < window_deadline);
        /* In time: 9 s after the request. */
        dlsched_tick(q, 12.76);
        char err[256];
        assert_int_equal(answer(q, "3031323334353637", NULL, err, sizeof err), 0);
        dlsched_destroy(q);

        /* Late: 11 s after the request, although the window's deadline is far. */
        memset(&rec, 0, sizeof rec);
        q = make(&c);
        dlsched_uplink(q, &u);
        dlsched_tick(q, 14.76 + 1e-6);
        assert_int_equal(count(DLSCHED_EV_NO_ANSWER), 1);
        assert_int_equal(answer(q, "3031323334353637", NULL, err, sizeof err), -1);
        assert_non_null(strstr(err, "late: the deadline was stream time 13.760"));
        run(q, 15, 60, 0.5);
        assert_int_equal(count(DLSCHED_EV_SCHEDULED), 0);
        dlsched_destroy(q);
    }
    dlsched_config_t c;
    base_config(&c, 1);
    c.answer_timeout_s = 601;
    char err[256];
    assert_null(dlsched_create(&c, err, sizeof err));
    assert_non_null(strstr(err, "answer_timeout_s"));
}

/* dlsched_reserve (Monarch beacons): a reservation never overlaps a committed DL, a DL
 * committed later is placed around it, it counts toward the duty cycle in the duty band
 * only, and the budget refuses it when full. */
static void test_reserve(void **state)
{
    (void)state;
    dlsched_device_t devs[2] = {direct_dev(0x1010, "0000000000000001"),
                                direct_dev(0x1011, "0000000000000002")};
    dlsched_config_t c;
    base_config(&c, 1);
    c.devices = devs;
    c.ndevices = 2;
    dlsched_t *q = make(&c);
    dlsched_uplink_t u = bframe(0x1010, 1, 1, 5.0, 1.0, 868.1e6);
    dlsched_uplink(q, &u);
    run(q, 6, 26, 0.1); /* committed at 25 s: first bit at 6 + 20 + 1 + ramp */
    const dlsched_event_t *dl1 = last(DLSCHED_EV_SCHEDULED);
    assert_non_null(dl1);
    double dl1_on = dl1->t_start_s - 0.5 / 600, dl1_off = dl1->t_end_s + 0.5 / 600;
    /* A beacon asked for in the middle of the DL starts after it (+ guard). */
    double t = 0;
    char why[256] = "";
    assert_int_equal(dlsched_reserve(q, dl1_on + 0.1, 0.4, 869.495e6, 869.515e6, &t, why,
                                     sizeof why),
                     0);
    assert_near(t, dl1_off + 0.05, 1e-9);
    /* A beacon just before a DL that would overlap it: the DL moves after the beacon. */
    dlsched_uplink_t v = bframe(0x1011, 1, 1, 10.0, 1.0, 868.11e6);
    dlsched_uplink(q, &v);
    double planned = 11.0 + 20 + 1 + 0.5 / 600;
    double b2 = 0;
    assert_int_equal(dlsched_reserve(q, planned - 0.2, 0.4, 869.495e6, 869.515e6, &b2, NULL, 0),
                     0);
    assert_near(b2, planned - 0.2, 1e-9); /* free: nothing committed there yet */
    run(q, 26, 40, 0.1);
    const dlsched_event_t *dl2 = last(DLSCHED_EV_SCHEDULED);
    assert_int_equal(dl2->ep_id, 0x1011);
    assert_true(dl2->t_start_s - 0.5 / 600 >= b2 + 0.4 + 0.05 - 1e-9);
    /* Both beacons and both DLs count in the duty budget (869.40-869.65 MHz). */
    assert_near(dl2->duty_used_s, 2 * 0.375 + 2 * 0.4, 1e-9);
    dlsched_stats_t st;
    dlsched_get_stats(q, &st);
    assert_int_equal(st.reservations, 2);
    /* Out of the duty band: not counted. */
    assert_int_equal(dlsched_reserve(q, 100, 0.4, 868.0e6, 868.02e6, &t, NULL, 0), 0);
    assert_int_equal(dlsched_reserve(NULL, 100, 0.4, 868.0e6, 868.02e6, &t, NULL, 0),
                     DLSCHED_ERR_ARG);
    assert_int_equal(dlsched_reserve(q, 100, -1, 868.0e6, 868.02e6, &t, NULL, 0),
                     DLSCHED_ERR_ARG);
    dlsched_destroy(q);

    /* A budget of 1 s per hour: two beacons fit, the third is refused with a reason. */
    memset(&rec, 0, sizeof rec);
    base_config(&c, 1);
    c.duty_cycle = 1.0 / 3600;
    q = make(&c);
    assert_int_equal(dlsched_reserve(q, 10, 0.4, 869.495e6, 869.515e6, &t, NULL, 0), 0);
    assert_int_equal(dlsched_reserve(q, 310, 0.4, 869.495e6, 869.515e6, &t, NULL, 0), 0);
    assert_int_equal(dlsched_reserve(q, 610, 0.4, 869.495e6, 869.515e6, &t, why, sizeof why), 1);
    assert_non_null(strstr(why, "duty cycle"));
    dlsched_get_stats(q, &st);
    assert_int_equal(st.reservations_refused, 1);
    dlsched_destroy(q);
}

static void test_event_json(void **state)
{
    (void)state;
    dlsched_t *q = scheduled_annex_c();
    const dlsched_event_t *sch = last(DLSCHED_EV_SCHEDULED);
    evjson_ctx_t ctx = {.anchor_t_s = 0, .anchor_unix_s = 1764158400.0}; /* 2025-11-26 12:00 */
    json_object *o = evjson_downlink(sch, &ctx);
    assert_non_null(o);
    static const struct {
        const char *key, *value;
    } want[] = {
        {"type", "downlink_scheduled"},
        {"ep_id", "FEDCBA98"},
        {"mc", "1650"},
        {"mode", "direct"},
        {"status", "ok"},
        {"payload", "3031323334353637"},
        {"dl_auth", "852D"},
        {"dl_phy_content", "C6053038C64BF92E718AAC45063E00"},
        {"bitstream", "AAAAAAAAAAAAAAAAAAAAAAB227C6053038C64BF92E718AAC45063E00"},
        {"freq_hz", "869525000.0"},
        {"t_start_s", "24.200833"},
        {"time_utc", "2025-11-26T12:00:24.200833Z"},
        {"ul_derived", "false"},
        {"quota_limit", "4"},
        {"conf_mc", "1651"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        json_object *v;
        if (!json_object_object_get_ex(o, want[i].key, &v))
            fail_msg("no %s in %s", want[i].key, json_object_to_json_string(o));
        assert_string_equal(json_object_get_string(v), want[i].value);
    }
    for (const char *k = "format_version\0id\0ul_freq_hz\0window_start_s\0window_end_s\0"
                         "tx_freq_hz\0t_end_s\0duty_used_s\0duty_budget_s\0quota_used\0";
         *k; k += strlen(k) + 1)
        if (!json_object_object_get_ex(o, k, NULL))
            fail_msg("no %s", k);
    assert_false(json_object_object_get_ex(o, "reason", NULL));
    json_object_put(o);
    dlsched_destroy(q);
}

/* ---- determinism: the schedule depends on the stream, not on how it is ticked ------------- */

static void scenario(double tick_s, char *out, size_t out_len)
{
    memset(&rec, 0, sizeof rec);
    dlsched_device_t devs[4];
    for (int i = 0; i < 4; i++)
        devs[i] = direct_dev(0x1030 + (uint32_t)i, "0102030405060708");
    dlsched_config_t c;
    base_config(&c, 1);
    c.devices = devs;
    c.ndevices = 4;
    c.duty_cycle = 0.0008; /* 2.88 s per hour: 7 bursts */
    dlsched_t *q = make(&c);
    /* frames at fixed stream times: direct devices, callback device EP_A, replicas. */
    struct {
        double t;
        uint32_t ep;
        uint16_t mc;
        int rank;
    } plan[] = {{1.0, 0x1030, 1, 1},  {1.2, 0x1031, 1, 2}, {1.5, EP_A, 77, 1},
                {2.9, 0x1031, 1, 3},  {3.0, 0x1032, 1, 1}, {3.1, 0x1033, 9, 1},
                {40.0, 0x1030, 2, 1}, {41.0, 0x1032, 2, 1}, {90.0, 0x1033, 10, 3}};
    size_t next = 0, np = sizeof plan / sizeof plan[0];
    bool answered = false;
    for (double t = 0; t < 200; t += tick_s) {
        double t_next = t + tick_s;
        while (next < np && plan[next].t + 1.0 <= t_next) {
            dlsched_uplink_t u = bframe(plan[next].ep, plan[next].mc, plan[next].rank,
                                        plan[next].t, 1.0, 868.1e6 + 997.0 * next);
            dlsched_uplink(q, &u);
            next++;
        }
        if (!answered && t_next >= 5.0) {
            dlsched_tick(q, 5.0); /* the answer arrives at stream time 5.0 */
            json_object *reply;
            char err[256];
            assert_int_equal(cmd(q,
                                 "{\"cmd\":\"downlink\",\"ep_id\":\"FEDCBA98\",\"mc\":77,"
                                 "\"payload\":\"0A0B0C0D0E0F1011\"}",
                                 &reply, err, sizeof err),
                             0);
            json_object_put(reply);
            answered = true;
        }
        dlsched_tick(q, t_next);
    }
    out[0] = '\0';
    for (int i = 0; i < rec.n; i++) {
        strncat(out, rec.json[i], out_len - strlen(out) - 2);
        strcat(out, "\n");
    }
    dlsched_destroy(q);
}

static void test_deterministic_time_base(void **state)
{
    (void)state;
    static char a[MAX_EV * 2048], b[MAX_EV * 2048], c[MAX_EV * 2048];
    scenario(0.064, a, sizeof a);
    int n = rec.n;
    scenario(0.5, b, sizeof b);
    scenario(0.01, c, sizeof c);
    assert_true(n >= 9);
    assert_string_equal(a, b);
    assert_string_equal(a, c);
    assert_non_null(strstr(a, "downlink_scheduled"));
    assert_non_null(strstr(a, "downlink_request"));
    assert_non_null(strstr(a, "\"status\":\"duty_cycle\""));
}

/* ---- the rx.h helpers -------------------------------------------------------------------- */

static void test_rx_helpers(void **state)
{
    (void)state;
    dlsched_device_t dev = direct_dev(EP_A, "0000000000000000");
    dlsched_t *q = make_devices(1, &dev, 1);
    /* A message of which only replicas 2 and 3 were heard (rank 1 lost). */
    rx_message_t m;
    memset(&m, 0, sizeof m);
    m.msg.ep_id = EP_A;
    m.msg.mc = 42;
    m.msg.bf = true;
    m.msg.kind = UL_KIND_APP;
    m.auth = RX_AUTH_OK;
    m.nframes = 2;
    double dur = 1.44, gap = 0.51, t1 = 2.0, f1 = 868.08e6;
    for (int i = 0; i < 2; i++) {
        rx_frame_t *f = &m.frames[i];
        f->frame.rank = i + 2;
        f->frame.crc_ok = i == 0;
        f->baud = 100;
        f->t_start_s = t1 + (i + 1) * (dur + gap);
        f->t_end_s = f->t_start_s + dur;
        f->freq_hz = f1 + (i == 0 ? 6000.0 : -6000.0);
    }
    /* A frame event alone (before anti-replay) opens nothing... */
    rx_frame_t fr = m.frames[0];
    fr.frame.msg = m.msg;
    fr.auth = RX_AUTH_OK;
    assert_int_equal(dlsched_rx_frame(q, &fr), 0);
    assert_int_equal(count(DLSCHED_EV_REFUSED) + count(DLSCHED_EV_REQUEST), 0);
    /* ... the message does, */
    assert_int_equal(dlsched_rx_message(q, &m), 1);
    /* then frame events refine it (and a frame with a bad CRC is ignored). */
    assert_int_equal(dlsched_rx_frame(q, &fr), 1);
    rx_frame_t bad = m.frames[1];
    bad.frame.crc_ok = false;
    assert_int_equal(dlsched_rx_frame(q, &bad), 0);
    run(q, 8, 26, 0.5);
    const dlsched_event_t *ev = last(DLSCHED_EV_SCHEDULED);
    assert_non_null(ev);
    assert_true(ev->ul_derived);
    assert_int_equal(ev->ul_rank, 2);
    assert_near(ev->freq_hz, f1 + 1.395e6, 1e-6);
    double t_end1 = t1 + dur;
    assert_true(ev->t_start_s - 0.5 / 600 >= t_end1 + 20.0);
    assert_true(ev->t_end_s <= t_end1 + 45.0);
    /* The confirmation as a frame event (rank 1 control frame, MC + 1) acknowledges. */
    rx_frame_t conf;
    memset(&conf, 0, sizeof conf);
    conf.frame.crc_ok = true;
    conf.frame.rank = 1;
    conf.frame.control = true;
    conf.frame.msg.ep_id = EP_A;
    conf.frame.msg.mc = 43;
    conf.frame.msg.kind = UL_KIND_DL_CONFIRMATION;
    conf.frame.msg.control.rssi_dbm = -110;
    conf.auth = RX_AUTH_OK;
    conf.baud = 100;
    conf.t_start_s = ev->t_end_s + 3.0;
    conf.t_end_s = conf.t_start_s + 1.76;
    assert_int_equal(dlsched_rx_frame(q, &conf), 1);
    assert_int_equal(last(DLSCHED_EV_ACK)->control.rssi_dbm, -110);
    run(q, 26, 60, 0.5);
    assert_int_equal(count(DLSCHED_EV_LOST), 0);
    dlsched_destroy(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_window_each_rc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_derived_from_later_replica, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refined_by_first_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frequency_ppm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_answer_in_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_answers_without_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_answer_after_commit_point, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_late_and_no_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_malformed_and_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duty_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_band, setup, teardown),
        cmocka_unit_test_setup_teardown(test_daily_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confirmation_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confirmation_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deterministic_time_base, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_helpers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_replaced_under_lock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
