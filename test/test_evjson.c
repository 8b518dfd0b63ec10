/* test_evjson: frame and message events from receiver results built with the real frame
 * codec (spec §3 frames, encoded then decoded): shared field names, rounding, UTC from the
 * stream anchor, calibration, replicas, CRC-failed bursts. Licence: MIT. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hexutil.h"
#include "evjson.h"
#include "publisher.h"

static const uint8_t key[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};

/* A receiver result for rank `rank` of a message, decoded from its own encoding. */
static rx_frame_t make_frame(const ul_message_t *m, int rank, double t_start_s, double snr_db)
{
    uint8_t bytes[UL_MAX_FRAME_BYTES];
    int n = ul_frame_encode(m, key, rank, bytes, sizeof bytes);
    assert_true(n > 0);
    rx_frame_t f;
    memset(&f, 0, sizeof f);
    assert_int_equal(ul_frame_decode(bytes, (size_t)n * 8, true, 2, &f.frame), 0);
    f.auth = RX_AUTH_OK;
    f.baud = 100;
    f.freq_hz = 868130250.4000001 + 1000.0 * rank;
    f.drift_hz_s = -1.254;
    f.rssi_dbfs = -62.3149;
    f.snr_db = snr_db;
    f.sample_idx = (uint64_t)(t_start_s * 1024000.0);
    f.t_start_s = t_start_s;
    f.t_end_s = t_start_s + 1.76;
    return f;
}

static ul_message_t sample_message(void)
{
    ul_message_t m;
    memset(&m, 0, sizeof m);
    m.ep_id = 0xFEDCBA98;
    m.mc = 1650;
    m.kind = UL_KIND_APP;
    m.payload_len = 4;
    memcpy(m.payload, "\x01\x02\xAB\xCD", 4);
    return m;
}

/* A message of m with nframes replicas to be filled by the caller. */
static rx_message_t make_message(const ul_message_t *m, rx_auth_t auth, int nframes)
{
    rx_message_t msg;
    memset(&msg, 0, sizeof msg);
    msg.msg = *m;
    msg.auth = auth;
    msg.nframes = nframes;
    return msg;
}

static json_object *get(json_object *o, const char *key_name)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key_name, &v))
        fail_msg("missing field %s in %s", key_name, json_object_to_json_string(o));
    return v;
}

static void expect_str(json_object *o, const char *k, const char *want)
{
    assert_string_equal(json_object_get_string(get(o, k)), want);
}

static void expect_absent(json_object *o, const char *k)
{
    if (json_object_object_get_ex(o, k, NULL))
        fail_msg("unexpected field %s", k);
}

static void test_frame_event(void **state)
{
    (void)state;
    ul_message_t m = sample_message();
    rx_frame_t f = make_frame(&m, 1, 1.2056254, 18.4);
    json_object *o = evjson_frame(&f, NULL);
    assert_non_null(o);
    expect_str(o, "type", "frame");
    assert_int_equal(json_object_get_int(get(o, "format_version")), PUBLISHER_FORMAT_VERSION);
    expect_str(o, "ep_id", "FEDCBA98");
    assert_int_equal(json_object_get_int(get(o, "mc")), 1650);
    expect_str(o, "payload", "0102ABCD");
    expect_str(o, "kind", "app");
    assert_int_equal(json_object_get_int(get(o, "rank")), 1);
    assert_true(json_object_get_boolean(get(o, "crc_ok")));
    expect_str(o, "auth", "ok");
    assert_int_equal(json_object_get_int(get(o, "baud")), 100);
    assert_false(json_object_get_boolean(get(o, "joint")));
    assert_int_equal(json_object_get_int64(get(o, "sample_idx")), 1234560);
    expect_absent(o, "time_utc");    /* no anchor: UTC unknown */
    expect_absent(o, "bs_rssi_dbm"); /* not calibrated */
    /* Rounded text: 0.1 Hz, 0.01 Hz/s and dB, 1 µs. */
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    assert_non_null(strstr(text, "\"freq_hz\":868131250.4,"));
    assert_non_null(strstr(text, "\"drift_hz_s\":-1.25,"));
    assert_non_null(strstr(text, "\"rssi_dbfs\":-62.31,"));
    assert_non_null(strstr(text, "\"t_start_s\":1.205625,"));
    json_object_put(o);
}

static void test_time_and_calibration(void **state)
{
    (void)state;
    ul_message_t m = sample_message();
    rx_frame_t f = make_frame(&m, 2, 12.5, 10);
    /* Stream second 10 was 2024-11-26T12:00:00Z: the burst at 12.5 s is 2.5 s later. */
    evjson_ctx_t ctx = {.anchor_t_s = 10.0,
                        .anchor_unix_s = 1732622400.0,
                        .rssi_calibrated = true,
                        .rssi_offset_db = -30.0};
    json_object *o = evjson_frame(&f, &ctx);
    expect_str(o, "time_utc", "2024-11-26T12:00:02.500000Z");
    assert_true(fabs(json_object_get_double(get(o, "bs_rssi_dbm")) - (-92.31)) < 1e-9);
    assert_int_equal(json_object_get_int(get(o, "rank")), 2);
    json_object_put(o);
}

static void test_bad_crc_frame(void **state)
{
    (void)state;
    ul_message_t m = sample_message();
    rx_frame_t f = make_frame(&m, 1, 3, 5);
    f.frame.crc_ok = false;
    f.auth = RX_AUTH_UNCHECKED;
    f.snr_db = NAN;
    json_object *o = evjson_frame(&f, NULL);
    assert_non_null(o);
    assert_false(json_object_get_boolean(get(o, "crc_ok")));
    expect_str(o, "auth", "unchecked");
    expect_absent(o, "ep_id"); /* fields of a failed frame are not trusted */
    expect_absent(o, "payload");
    assert_null(get(o, "snr_db")); /* NaN -> null, never invalid JSON */
    json_object *back = json_tokener_parse(json_object_to_json_string(o));
    assert_non_null(back);
    json_object_put(back);
    json_object_put(o);
}

static void test_message_event(void **state)
{
    (void)state;
    ul_message_t m = sample_message();
    rx_message_t msg = make_message(&m, RX_AUTH_OK, 3);
    msg.frames[0] = make_frame(&m, 2, 5.0, 12.0); /* rank 1 was lost: first is rank 2 */
    msg.frames[1] = make_frame(&m, 3, 7.1, 21.5); /* strongest */
    msg.frames[2] = make_frame(&m, 1, 9.2, 15.0);
    msg.frames[2].rssi_dbfs = -50;
    msg.frames[1].rssi_dbfs = -40.004;
    evjson_ctx_t ctx = {.anchor_t_s = 0, .anchor_unix_s = 1732622400.0};
    json_object *o = evjson_message(&msg, -1, &ctx);
    assert_non_null(o);
    expect_str(o, "type", "message");
    expect_str(o, "ep_id", "FEDCBA98");
    assert_int_equal(json_object_get_int(get(o, "mc")), 1650);
    expect_str(o, "payload", "0102ABCD");
    expect_str(o, "auth", "ok");
    assert_false(json_object_get_boolean(get(o, "combined")));
    assert_int_equal(json_object_get_int(get(o, "nframes")), 3);
    /* Carrier and time of the first replica received; level of the strongest. */
    assert_true(fabs(json_object_get_double(get(o, "freq_hz")) - 868132250.4) < 1e-6);
    assert_true(fabs(json_object_get_double(get(o, "t_start_s")) - 5.0) < 1e-9);
    expect_str(o, "time_utc", "2024-11-26T12:00:05.000000Z");
    assert_true(fabs(json_object_get_double(get(o, "snr_db")) - 21.5) < 1e-9);
    assert_true(fabs(json_object_get_double(get(o, "rssi_dbfs")) - (-40.0)) < 1e-9);
    json_object *reps = get(o, "replicas");
    assert_int_equal(json_object_array_length(reps), 3);
    static const int ranks[] = {2, 3, 1};
    for (int i = 0; i < 3; i++) {
        json_object *r = json_object_array_get_idx(reps, (size_t)i);
        assert_int_equal(json_object_get_int(get(r, "rank")), ranks[i]);
        assert_true(json_object_get_boolean(get(r, "crc_ok")));
        get(r, "ft");
        get(r, "freq_hz");
        get(r, "rssi_dbfs");
        get(r, "snr_db");
        get(r, "time_utc");
        get(r, "t_start_s");
        expect_absent(r, "payload"); /* message fields live once, at the top */
    }
    json_object_put(o);
}

static void test_control_and_combined(void **state)
{
    (void)state;
    ul_message_t m;
    memset(&m, 0, sizeof m);
    m.ep_id = 0x0000ABCD;
    m.mc = 7;
    m.kind = UL_KIND_DL_CONFIRMATION;
    m.payload_len = UL_DL_CONFIRMATION_PAYLOAD_BYTES;
    m.control.vdd_idle_mv = 3300;
    m.control.vdd_tx_mv = 3100;
    m.control.temp_tenth_c = 215;
    m.control.rssi_dbm = -120;
    rx_message_t msg = make_message(&m, RX_AUTH_UNKNOWN_DEVICE, 1);
    msg.combined = true;
    msg.frames[0] = make_frame(&m, 1, 1, 3);
    msg.frames[0].joint = true;
    json_object *o = evjson_message(&msg, -1, NULL);
    assert_non_null(o);
    expect_str(o, "kind", "dl_confirmation");
    expect_str(o, "auth", "unknown-device");
    assert_true(json_object_get_boolean(get(o, "combined")));
    assert_int_equal(json_object_get_int(get(o, "rssi_dbm")), -120);
    assert_int_equal(json_object_get_int(get(o, "vdd_tx_mv")), 3100);
    json_object *r = json_object_array_get_idx(get(o, "replicas"), 0);
    assert_true(json_object_get_boolean(get(r, "joint")));
    json_object_put(o);

    msg.nframes = 4; /* corrupt input is refused, not overrun */
    assert_null(evjson_message(&msg, -1, NULL));
    assert_null(evjson_message(NULL, -1, NULL));
    assert_null(evjson_frame(NULL, NULL));
}

/* A replay event is the message event with another type and the window's last counter,
 * built in one go (never a message rewritten afterwards). */
static void test_replay_event(void **state)
{
    (void)state;
    ul_message_t m = sample_message();
    rx_message_t msg = make_message(&m, RX_AUTH_OK, 1);
    msg.frames[0] = make_frame(&m, 1, 2.0, 12.0);
    json_object *o = evjson_message(&msg, 1700, NULL);
    assert_non_null(o);
    expect_str(o, "type", "replay");
    assert_int_equal(json_object_get_int(get(o, "last_mc")), 1700);
    expect_str(o, "ep_id", "FEDCBA98");
    assert_int_equal(json_object_get_int(get(o, "mc")), 1650);
    json_object_put(o);
    o = evjson_message(&msg, -1, NULL);
    expect_absent(o, "last_mc");
    json_object_put(o);
}

/* station_id follows format_version in every kind of event when the context names one;
 * an over-long one builds nothing. */
static void test_station_id(void **state)
{
    (void)state;
    ul_message_t m = sample_message();
    rx_frame_t f = make_frame(&m, 1, 1.0, 10);
    evjson_ctx_t ctx = {.station_id = "paris-3"};
    json_object *o = evjson_frame(&f, &ctx);
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    assert_non_null(
        strstr(text, "{\"type\":\"frame\",\"format_version\":1,\"station_id\":\"paris-3\","));
    json_object_put(o);
    evjson_beacon_t b = {.id = 3,
                         .t_start_s = 4.5,
                         .status = "ok",
                         .freq_hz = 869505000.0,
                         .tx_freq_hz = 869505000.0,
                         .df1_hz = 1260.3,
                         .df2_hz = 1489.4};
    o = evjson_beacon(&b, &ctx);
    expect_str(o, "station_id", "paris-3");
    json_object_put(o);
    ctx.station_id = "";
    o = evjson_frame(&f, &ctx);
    expect_absent(o, "station_id");
    json_object_put(o);
    char longid[EVJSON_STATION_ID_MAX + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    ctx.station_id = longid;
    assert_null(evjson_frame(&f, &ctx));
    assert_null(evjson_new("log", &ctx));
}

/* The beacon event: fields, rounding, UTC of its start, the file when there is one. */
static void test_beacon_event(void **state)
{
    (void)state;
    evjson_beacon_t b = {.id = 7,
                         .t_start_s = 12.25,
                         .status = "duty_cycle",
                         .reason = "no room",
                         .freq_hz = 869505000.04,
                         .tx_freq_hz = 869504986.96,
                         .df1_hz = 1260.3,
                         .df2_hz = 1489.4};
    evjson_ctx_t ctx = {.anchor_t_s = 10.0, .anchor_unix_s = 1732622400.0};
    json_object *o = evjson_beacon(&b, &ctx);
    assert_non_null(o);
    expect_str(o, "type", "monarch_beacon");
    assert_int_equal(json_object_get_int(get(o, "id")), 7);
    expect_str(o, "status", "duty_cycle");
    expect_str(o, "reason", "no room");
    expect_str(o, "time_utc", "2024-11-26T12:00:02.250000Z");
    expect_absent(o, "file");
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    assert_non_null(strstr(text, "\"freq_hz\":869505000.0,"));
    assert_non_null(strstr(text, "\"t_end_s\":12.650000"));
    json_object_put(o);
    b.file = "beacon-7.cf32";
    b.reason = NULL;
    o = evjson_beacon(&b, NULL);
    expect_str(o, "file", "beacon-7.cf32");
    expect_absent(o, "reason");
    expect_absent(o, "time_utc");
    json_object_put(o);
    b.status = NULL;
    assert_null(evjson_beacon(&b, NULL));
}


/* ---- soft frames ---------------------------------------------------------------------- */

/* A soft frame as the receiver gives it: 20-byte rank-1 frame bits with LLRs of varied
 * size around amp, a few of them wrong and weak, one NaN (erasure). */
static void make_soft(rx_softframe_t *sf, double amp)
{
    memset(sf, 0, sizeof *sf);
    sf->ft_readable = true;
    sf->baud = 100;
    sf->symbol_rate = 100.0123;
    sf->freq_hz = 868130250.44;
    sf->drift_hz_s = -1.254;
    sf->rssi_dbfs = -80.123;
    sf->snr_db = 7.456;
    sf->sample_idx = 1234567;
    sf->t_start_s = 1.205625;
    uint16_t ft = ul_ft_value(20, false, 1);
    sf->nsoft = RX_SOFT_MAX;
    for (size_t i = 0; i < sf->nsoft; i++) {
        int bit = i < UL_FT_BITS ? (ft >> (UL_FT_BITS - 1 - i)) & 1 : (int)((i * 7 + 3) % 5 < 2);
        double mag = amp * (0.2 + (double)((i * 37) % 19) / 9.0);
        sf->soft[i] = (float)(bit ? mag : -mag);
    }
    sf->soft[40] = (float)(-0.1 * amp * (sf->soft[40] > 0 ? 1 : -1));
    sf->soft[100] = NAN;
    for (int b = 0; b < UL_FT_BITS; b++)
        sf->ft_rx = (uint16_t)(sf->ft_rx << 1 | (sf->soft[b] > 0));
    sf->nhyp = ul_ft_rank_soft(sf->soft, sf->hyp, RX_SOFT_FT_HYPS);
}

static void test_base64(void **state)
{
    (void)state;
    const char *vec[][2] = {{"", ""},          {"f", "Zg=="},         {"fo", "Zm8="},
                            {"foo", "Zm9v"},   {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                            {"foobar", "Zm9vYmFy"}};
    char out[32];
    uint8_t back[16];
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        size_t n = strlen(vec[i][0]);
        assert_int_equal(b64_encode((const uint8_t *)vec[i][0], n, out), B64_LEN(n));
        assert_string_equal(out, vec[i][1]);
        assert_int_equal(b64_decode(out, strlen(out), back, n), (long)n);
        assert_memory_equal(back, vec[i][0], n);
    }
    uint8_t all[256];
    char text[B64_LEN(256) + 1];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)(255 - i);
    b64_encode(all, 256, text);
    uint8_t got[256];
    assert_int_equal(b64_decode(text, strlen(text), got, 256), 256);
    assert_memory_equal(got, all, 256);
    /* strict: length, alphabet, padding place, non-zero unused bits, capacity */
    const char *bad[] = {"Zg=",  "Zg",   "Zm9v\n", "Zm 9", "Zm-v",  "Zg==Zg==", "=Zm9",
                         "Z===", "====", "Zh==",   "Zm9=", "Zm=v", "Zm9vYg=\x01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(b64_decode(bad[i], strlen(bad[i]), back, sizeof back), -1);
    assert_int_equal(b64_decode("Zm9vYmFy", 8, back, 5), -1);
    assert_int_equal(b64_decode(NULL, 0, back, 1), -1);
}

/* Quantization: nothing clipped while the largest value is within 16 medians, the median
 * at 8 units or more, the error half a step; outliers clipped, NaN an erasure. */
static void test_soft_quantize(void **state)
{
    (void)state;
    float llr[100];
    int8_t q[100];
    for (int i = 0; i < 100; i++)
        llr[i] = (float)((i % 2 ? 1 : -1) * (1.0 + i * 0.1)); /* 1 .. 10.9, median ~6 */
    double scale = evjson_soft_quantize(llr, 100, q);
    assert_true(scale > 0);
    assert_true(exp2(round(log2(scale))) == scale); /* a power of two */
    assert_true(10.9 / scale <= 127.5);
    for (int i = 0; i < 100; i++)
        assert_true(fabs(q[i] * scale - llr[i]) <= scale / 2 + 1e-6);
    /* an outlier 1000x the rest is clipped rather than coarsen everything */
    llr[7] = 5000.0f;
    scale = evjson_soft_quantize(llr, 100, q);
    assert_true(6.0 / scale >= 8);
    assert_int_equal(q[7], 127);
    llr[8] = NAN;
    llr[9] = -INFINITY;
    evjson_soft_quantize(llr, 100, q);
    assert_int_equal(q[8], 0);
    assert_int_equal(q[9], -127);
    /* all zero: a valid scale, all zero */
    memset(llr, 0, sizeof llr);
    assert_true(evjson_soft_quantize(llr, 100, q) == 1.0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(q[i], 0);
    assert_true(evjson_soft_quantize(llr, 0, q) == 0);
    assert_true(evjson_soft_quantize(NULL, 10, q) == 0);
    assert_true(evjson_soft_quantize(llr, RX_SOFT_MAX + 1, q) == 0);
}

/* Event -> text -> parse gives the soft frame back: fields, hypotheses, and every LLR
 * within half a quantization step (the NaN as 0). */
static void test_softframe_round_trip(void **state)
{
    (void)state;
    rx_softframe_t sf, back;
    make_soft(&sf, 3.0);
    evjson_ctx_t ctx = {.anchor_t_s = 1.0, .anchor_unix_s = 1764000000.0, .station_id = "st-1"};
    json_object *o = evjson_softframe(&sf, &ctx);
    assert_non_null(o);
    expect_str(o, "type", "softframe");
    expect_str(o, "station_id", "st-1");
    expect_str(o, "reason", "crc_bad");
    expect_str(o, "ft_rx", "094C");
    expect_str(o, "time_utc", "2025-11-24T16:00:00.205625Z");
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    print_message("softframe event: %zu bytes\n", strlen(text));
    assert_true(strlen(text) < 1600);
    char err[256] = "";
    int rc = evjson_softframe_parse_text(text, strlen(text), &back, err, sizeof err);
    if (rc != 0)
        print_message("parse: %s\n", err);
    assert_int_equal(rc, 0);
    assert_true(back.ft_readable);
    assert_int_equal(back.baud, 100);
    assert_true(fabs(back.symbol_rate - 100.012) < 1e-9);
    assert_true(fabs(back.freq_hz - 868130250.4) < 1e-3);
    assert_true(fabs(back.drift_hz_s + 1.25) < 1e-9);
    assert_true(fabs(back.snr_db - 7.46) < 1e-9);
    assert_true(fabs(back.rssi_dbfs + 80.12) < 1e-9);
    assert_int_equal(back.sample_idx, 1234567);
    assert_true(fabs(back.t_start_s - 1.205625) < 1e-9);
    assert_int_equal(back.ft_rx, sf.ft_rx);
    assert_int_equal(back.nsoft, sf.nsoft);
    double scale = json_object_get_double(json_object_object_get(o, "soft_scale"));
    for (size_t i = 0; i < sf.nsoft; i++) {
        double want = isnan(sf.soft[i]) ? 0 : sf.soft[i];
        assert_true(fabs(back.soft[i] - want) <= scale / 2 + 1e-6);
    }
    assert_int_equal(back.nhyp, sf.nhyp);
    for (size_t i = 0; i < sf.nhyp; i++) {
        assert_int_equal(back.hyp[i].ft, sf.hyp[i].ft);
        assert_int_equal(back.hyp[i].rank, sf.hyp[i].rank);
        assert_int_equal(back.hyp[i].container_bytes, sf.hyp[i].container_bytes);
        assert_int_equal(back.hyp[i].distance, sf.hyp[i].distance);
        assert_true(fabs(back.hyp[i].score - sf.hyp[i].score) < 0.1 * fabs(sf.hyp[i].score) + 1);
    }
    /* an unreadable FT is "ft_bad" */
    sf.ft_readable = false;
    json_object *o2 = evjson_softframe(&sf, NULL);
    expect_str(o2, "reason", "ft_bad");
    expect_absent(o2, "time_utc");
    expect_absent(o2, "station_id");
    assert_int_equal(evjson_softframe_parse(o2, &back, err, sizeof err), 0);
    assert_false(back.ft_readable);
    json_object_put(o2);
    /* invalid soft frames are not built */
    sf.nsoft = 12;
    assert_null(evjson_softframe(&sf, NULL));
    sf.nsoft = RX_SOFT_MAX + 1;
    assert_null(evjson_softframe(&sf, NULL));
    assert_null(evjson_softframe(NULL, NULL));
    json_object_put(o);
}

/* Hostile events: each one altered field is refused with a reason, never read beyond. */
static void test_softframe_hostile(void **state)
{
    (void)state;
    rx_softframe_t sf, back;
    make_soft(&sf, 2.0);
    json_object *good = evjson_softframe(&sf, NULL);
    assert_non_null(good);
    const char *soft = json_object_get_string(json_object_object_get(good, "soft"));
    char shorter[B64_LEN(RX_SOFT_MAX) + 1], badchar[B64_LEN(RX_SOFT_MAX) + 1];
    snprintf(shorter, sizeof shorter, "%.*s", (int)strlen(soft) - 4, soft);
    snprintf(badchar, sizeof badchar, "%s", soft);
    badchar[10] = '*';
    /* -128 in the first byte ("gA" = 0x80) */
    char m128[B64_LEN(RX_SOFT_MAX) + 1];
    snprintf(m128, sizeof m128, "%s", soft);
    m128[0] = 'g';
    m128[1] = 'A';
    const struct {
        const char *key;
        json_object *value; /* NULL: removed */
    } cases[] = {
        {"type", json_object_new_string("frame")},
        {"format_version", json_object_new_int(2)},
        {"format_version", json_object_new_string("1")},
        {"reason", json_object_new_string("nosync")},
        {"baud", json_object_new_int(300)},
        {"symbol_rate", json_object_new_double(500.0)},
        {"freq_hz", json_object_new_double(NAN)},
        {"drift_hz_s", json_object_new_string("1")},
        {"snr_db", NULL},
        {"rssi_dbfs", json_object_new_double(INFINITY)},
        {"t_start_s", json_object_new_double(-1)},
        {"sample_idx", json_object_new_int64(-5)},
        {"sample_idx", json_object_new_double(1.5)},
        {"ft_rx", json_object_new_string("2000")},
        {"ft_rx", json_object_new_string("94C")},
        {"ft_rx", json_object_new_string("0x9C")},
        {"soft_scale", json_object_new_double(NAN)},
        {"soft_scale", json_object_new_double(0)},
        {"soft_scale", json_object_new_double(-0.5)},
        {"soft_scale", json_object_new_double(1e300)},
        {"n_symbols", json_object_new_int(RX_SOFT_MAX + 1)},
        {"n_symbols", json_object_new_int64(INT64_MAX)},
        {"n_symbols", json_object_new_int(-1)},
        {"n_symbols", json_object_new_int(12)},
        {"n_symbols", json_object_new_int(RX_SOFT_MAX - 3)},
        {"soft", json_object_new_string(shorter)},
        {"soft", json_object_new_string(badchar)},
        {"soft", json_object_new_string(m128)},
        {"soft", json_object_new_string("")},
        {"soft", json_object_new_int(3)},
        {"ft", json_object_new_array()},
        {"ft", json_object_new_object()},
        {"ft", NULL},
    };
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_object *o = NULL;
        assert_int_equal(json_object_deep_copy(good, &o, NULL), 0);
        if (cases[i].value)
            json_object_object_add(o, cases[i].key, cases[i].value);
        else
            json_object_object_del(o, cases[i].key);
        err[0] = '\0';
        assert_int_equal(evjson_softframe_parse(o, &back, err, sizeof err), -1);
        print_message("  %s: %s\n", cases[i].key, err);
        assert_true(strlen(err) > 0);
        json_object_put(o);
    }
    /* FT hypotheses: too many, a wrong rank for the FT, bad types */
    const char *bad_hyp[] = {
        "[{\"ft\":\"094C\",\"rank\":2,\"container_bytes\":20,\"control\":false,\"distance\":0}]",
        "[{\"ft\":\"094C\",\"rank\":1,\"container_bytes\":20,\"control\":true,\"distance\":0}]",
        "[{\"ft\":\"094C\",\"rank\":1,\"container_bytes\":20,\"control\":false,\"distance\":14}]",
        "[{\"ft\":\"094C\",\"rank\":1,\"container_bytes\":20,\"control\":0,\"distance\":0}]",
        "[{\"ft\":\"094C\",\"rank\":1,\"container_bytes\":20,\"control\":false}]",
        "[1]",
        "[{\"ft\":\"094C\",\"rank\":1,\"container_bytes\":20,\"control\":false,\"distance\":0},"
        "{\"ft\":\"094C\",\"rank\":1,\"container_bytes\":20,\"control\":false,\"distance\":0},"
        "{\"ft\":\"094C\",\"rank\":1,\"container_bytes\":20,\"control\":false,\"distance\":0},"
        "{\"ft\":\"094C\",\"rank\":1,\"container_bytes\":20,\"control\":false,\"distance\":0}]",
    };
    for (size_t i = 0; i < sizeof bad_hyp / sizeof bad_hyp[0]; i++) {
        json_object *o = NULL;
        assert_int_equal(json_object_deep_copy(good, &o, NULL), 0);
        json_object_object_add(o, "ft", json_tokener_parse(bad_hyp[i]));
        assert_int_equal(evjson_softframe_parse(o, &back, err, sizeof err), -1);
        print_message("  ft %zu: %s\n", i, err);
        json_object_put(o);
    }
    /* texts: not JSON, not strict JSON, too long, not an object */
    const char *texts[] = {"", "{", "[]", "null", "{\"type\":\"softframe\"} x",
                           "{'type':'softframe'}", "{\"type\":NaN}"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        assert_int_equal(
            evjson_softframe_parse_text(texts[i], strlen(texts[i]), &back, err, sizeof err), -1);
    const char *text = json_object_to_json_string_ext(good, JSON_C_TO_STRING_PLAIN);
    assert_int_equal(evjson_softframe_parse_text(text, strlen(text), &back, err, sizeof err), 0);
    assert_int_equal(
        evjson_softframe_parse_text(text, EVJSON_SOFTFRAME_MAX_TEXT + 1, &back, err, sizeof err),
        -1);
    /* symbol_rate bounds are whole Hz (0.9 .. 1.1 x baud): the lowest accepted value builds
     * an event that parses again */
    for (int k = 0; k < 2; k++) {
        json_object *o = NULL;
        assert_int_equal(json_object_deep_copy(good, &o, NULL), 0);
        json_object_object_add(o, "symbol_rate", json_object_new_double(k ? 90.0004 : 89.9996));
        assert_int_equal(evjson_softframe_parse(o, &back, err, sizeof err), k ? 0 : -1);
        json_object_put(o);
    }
    json_object *again = evjson_softframe(&back, NULL);
    const char *t2 = json_object_to_json_string_ext(again, JSON_C_TO_STRING_PLAIN);
    assert_int_equal(evjson_softframe_parse_text(t2, strlen(t2), &back, err, sizeof err), 0);
    assert_true(back.symbol_rate == 90.0);
    json_object_put(again);
    assert_int_equal(evjson_softframe_parse(NULL, &back, err, sizeof err), -1);
    assert_int_equal(evjson_softframe_parse(good, NULL, err, sizeof err), -1);
    json_object_put(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_event),          cmocka_unit_test(test_time_and_calibration),
        cmocka_unit_test(test_bad_crc_frame),        cmocka_unit_test(test_message_event),
        cmocka_unit_test(test_control_and_combined), cmocka_unit_test(test_replay_event),
        cmocka_unit_test(test_station_id),           cmocka_unit_test(test_beacon_event),
        cmocka_unit_test(test_base64),               cmocka_unit_test(test_soft_quantize),
        cmocka_unit_test(test_softframe_round_trip), cmocka_unit_test(test_softframe_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
