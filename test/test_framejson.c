/* test_framejson: the shared JSON names for frames decoded from the spec's examples.
 * Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "framejson.h"
#include "hexutil.h"

static const uint8_t spec_key[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF,
                                     0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF};

static void decode_hex(const char *hex, ul_frame_t *f)
{
    uint8_t b[UL_MAX_FRAME_BYTES];
    int n = hex_to_bytes(hex, b, sizeof b);
    assert_true(n > 0);
    assert_int_equal(ul_frame_decode(b, (size_t)n * 8, true, 2, f), 0);
}

static const char *str(struct json_object *o, const char *k)
{
    struct json_object *v;
    assert_true(json_object_object_get_ex(o, k, &v));
    return json_object_get_string(v);
}

static int num(struct json_object *o, const char *k)
{
    struct json_object *v;
    assert_true(json_object_object_get_ex(o, k, &v));
    return json_object_get_int(v);
}

static bool has(struct json_object *o, const char *k)
{
    return json_object_object_get_ex(o, k, NULL);
}

static void test_spec_frame(void **state)
{
    (void)state;
    ul_frame_t f;
    decode_hex("AAAAA6BF04D772C905BE8001C3824706C485B82DD878", &f); /* Annex C frame #2 */
    struct json_object *o = json_object_new_object();
    assert_int_equal(framejson_add_frame(o, &f, true), 0);
    assert_int_equal(framejson_add_auth(o, framejson_auth_with_key(&f, spec_key)), 0);
    assert_string_equal(str(o, "ep_id"), "FEDCBA98");
    assert_int_equal(num(o, "mc"), 1650);
    assert_string_equal(str(o, "bf"), "false");
    assert_string_equal(str(o, "kind"), "app");
    assert_string_equal(str(o, "payload"), "0001020304050607");
    assert_false(has(o, "payload_bit"));
    assert_false(has(o, "vdd_idle_mv"));
    assert_int_equal(num(o, "rank"), 2);
    assert_string_equal(str(o, "ft"), "06BF");
    assert_int_equal(num(o, "ft_distance"), 0);
    assert_string_equal(str(o, "crc_ok"), "true");
    assert_string_equal(str(o, "ul_crc"), "CDFB");
    assert_string_equal(str(o, "ul_auth"), "96E7");
    assert_string_equal(str(o, "auth"), "ok");
    json_object_put(o);
}

static void test_confirmation_and_one_bit(void **state)
{
    (void)state;
    ul_frame_t f;
    decode_hex("AAAAAF67067398BADCFE09E40CCC10FA00E6BF9D810E", &f); /* Annex C confirmation */
    struct json_object *o = json_object_new_object();
    assert_int_equal(framejson_add_frame(o, &f, true), 0);
    assert_string_equal(str(o, "kind"), "dl_confirmation");
    assert_string_equal(str(o, "ft"), "0F67");
    assert_int_equal(num(o, "mc"), 1651);
    assert_int_equal(num(o, "vdd_idle_mv"), 3300);
    assert_int_equal(num(o, "vdd_tx_mv"), 4300);
    assert_int_equal(num(o, "temp_tenth_c"), 250);
    assert_string_equal(str(o, "temp_c"), "25.0");
    assert_string_equal(
        json_object_to_json_string_ext(json_object_object_get(o, "temp_c"), JSON_C_TO_STRING_PLAIN),
        "25.0");
    assert_int_equal(num(o, "rssi_dbm"), -126);
    assert_string_equal(str(o, "payload"), "09E40CCC10FA00E6");
    json_object_put(o);

    decode_hex("AAAAA06BE1A1DB334D0000B0C090", &f); /* renard 1-bit message */
    o = json_object_new_object();
    assert_int_equal(framejson_add_frame(o, &f, true), 0);
    assert_int_equal(num(o, "payload_bit"), 1);
    assert_false(has(o, "payload"));
    assert_string_equal(str(o, "ep_id"), "004D33DB");
    assert_string_equal(str(o, "bf"), "true");
    json_object_put(o);
}

static void test_auth_status(void **state)
{
    (void)state;
    ul_frame_t f;
    decode_hex("AAAAA611067298BADCFE000102030405060796E7CDFB", &f);
    uint8_t other[16];
    memcpy(other, spec_key, 16);
    other[0] ^= 1;
    assert_string_equal(framejson_auth_with_key(&f, spec_key), "ok");
    assert_string_equal(framejson_auth_with_key(&f, other), "bad");
    assert_string_equal(framejson_auth_with_key(&f, NULL), "unchecked");
    keystore_t *ks = keystore_create();
    assert_string_equal(framejson_auth_with_store(&f, ks), "unknown-device");
    assert_int_equal(keystore_add(ks, 0xFEDCBA98, spec_key), 0);
    assert_string_equal(framejson_auth_with_store(&f, ks), "ok");
    assert_int_equal(keystore_add(ks, 0xFEDCBA98, other), 0);
    assert_string_equal(framejson_auth_with_store(&f, ks), "bad");
    assert_string_equal(framejson_auth_with_store(&f, NULL), "unchecked");
    f.crc_ok = false; /* nothing is checked on a frame that failed its CRC */
    assert_string_equal(framejson_auth_with_store(&f, ks), "unchecked");
    keystore_destroy(ks);

    struct json_object *o = json_object_new_object();
    assert_int_equal(framejson_add_auth(o, "maybe"), -1);
    assert_int_equal(framejson_add_auth(o, NULL), -1);
    assert_int_equal(framejson_add_auth(NULL, "ok"), -1);
    assert_int_equal(framejson_add_auth(o, "unknown-device"), 0);
    assert_string_equal(str(o, "auth"), "unknown-device");
    assert_int_equal(framejson_add(o, "x", NULL), -1);
    assert_int_equal(framejson_add(NULL, "x", json_object_new_int(1)), -1); /* no leak */
    assert_int_equal(framejson_add(o, "x", json_object_new_int(1)), 0);
    assert_int_equal(framejson_add_frame(NULL, &f, true), -1);
    assert_int_equal(framejson_add_frame(o, NULL, true), -1);
    assert_int_equal(framejson_add_message(o, NULL), -1);
    ul_message_t bad = {.payload_len = 13};
    assert_int_equal(framejson_add_message(o, &bad), -1);
    json_object_put(o);
}

/* A frame whose CRC failed still reports its rank/FT but no message fields. */
static void test_crc_failed_frame(void **state)
{
    (void)state;
    uint8_t b[UL_MAX_FRAME_BYTES];
    int n = hex_to_bytes("AAAAA611067298BADCFE000102030405060796E7CDFA", b, sizeof b);
    ul_frame_t f;
    assert_int_equal(ul_frame_decode(b, (size_t)n * 8, true, 2, &f), UL_ERR_CRC);
    struct json_object *o = json_object_new_object();
    assert_int_equal(framejson_add_frame(o, &f, false), 0);
    assert_string_equal(str(o, "crc_ok"), "false");
    assert_string_equal(str(o, "ul_crc"), "CDFA");
    assert_int_equal(num(o, "rank"), 1);
    assert_false(has(o, "ep_id"));
    assert_false(has(o, "ul_auth"));
    json_object_put(o);

    /* good CRC over fields Table 3-1 forbids: no message fields even if asked */
    uint8_t body[10] = {0x40}; /* LI 01 in an 8-byte container */
    uint16_t crc = ul_crc16(body, 8);
    body[8] = (uint8_t)(crc >> 8);
    body[9] = (uint8_t)crc;
    assert_int_equal(ul_frame_parse_body(body, 8, false, &f), UL_ERR_FIELDS);
    o = json_object_new_object();
    assert_int_equal(framejson_add_frame(o, &f, f.crc_ok), 0);
    assert_string_equal(str(o, "crc_ok"), "true");
    assert_false(has(o, "ep_id"));
    assert_false(has(o, "ul_auth"));
    json_object_put(o);
}

/* The one rounding helper: fixed decimals in the text and the same value in the object,
 * integers for decimals <= 0, null for non-finite values. */
static void test_numbers(void **state)
{
    (void)state;
    struct json_object *o = json_object_new_object();
    assert_int_equal(framejson_add_num(o, "f", 868130250.40000004, 1), 0);
    assert_int_equal(framejson_add_num(o, "t", 1.2056254, 6), 0);
    assert_int_equal(framejson_add_num(o, "i", 41.6, 0), 0);
    assert_int_equal(framejson_add_num(o, "n", NAN, 2), 0);
    assert_int_equal(framejson_add_num(o, "inf", -INFINITY, 2), 0);
    assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                        "{\"f\":868130250.4,\"t\":1.205625,\"i\":42,\"n\":null,\"inf\":null}");
    struct json_object *v;
    assert_true(json_object_object_get_ex(o, "t", &v));
    assert_true(json_object_get_double(v) == 1.205625);
    assert_int_equal(framejson_add_num(NULL, "x", 1, 1), -1);
    assert_null(framejson_number(NAN, 1));
    json_object_put(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_frame),  cmocka_unit_test(test_confirmation_and_one_bit),
        cmocka_unit_test(test_auth_status), cmocka_unit_test(test_crc_failed_frame),
        cmocka_unit_test(test_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
