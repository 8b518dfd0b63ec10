/* test_payloadfmt: the Sigfox custom payload grammar (seeds/000 §7.1.1.2): every type,
 * byte offset, bit offset and endianness rule, errors with their column. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hexutil.h"
#include "payloadfmt.h"

/* Decodes hex with grammar and compares the compact JSON text of the result. */
static void check(const char *grammar, const char *hex, int want_rc, const char *want_json)
{
    char err[256] = "";
    payloadfmt_t *f = payloadfmt_create(grammar, err, sizeof err);
    if (!f)
        fail_msg("grammar '%s' refused: %s", grammar, err);
    uint8_t p[64];
    int n = hex_to_bytes(hex, p, sizeof p);
    assert_true(n >= 0);
    json_object *o = NULL;
    int rc = payloadfmt_decode(f, p, (size_t)n, &o, err, sizeof err);
    if (!o)
        fail_msg("'%s' on %s: rc %d, no object (%s)", grammar, hex, rc, err);
    const char *got = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (rc != want_rc || strcmp(got, want_json) != 0)
        fail_msg("'%s' on %s: rc %d (want %d) %s, want %s (err: %s)", grammar, hex, rc,
                 want_rc, got, want_json, err);
    json_object_put(o);
    payloadfmt_destroy(f);
}

static void test_types(void **state)
{
    (void)state;
    static const struct {
        const char *grammar, *hex, *json;
    } t[] = {
        /* bool: bit 0 is the least significant */
        {"a::bool:0 b::bool:7 c::bool:1", "81", "{\"a\":true,\"b\":true,\"c\":false}"},
        /* char: text, trailing NULs dropped, non-printables as '?' */
        {"s::char:4", "41424300", "{\"s\":\"ABC\"}"},
        {"s::char:3", "41FF0A", "{\"s\":\"A??\"}"},
        {"s::char:2", "0000", "{\"s\":\"\"}"},
        /* uint big-endian by default, any size up to 64 bits */
        {"u::uint:8", "FF", "{\"u\":255}"},
        {"u::uint:16", "1234", "{\"u\":4660}"},
        {"u::uint:16:big-endian", "1234", "{\"u\":4660}"},
        {"u::uint:16:little-endian", "1234", "{\"u\":13330}"},
        {"u::uint:24:little-endian", "010203", "{\"u\":197121}"},
        {"u::uint:32", "DEADBEEF", "{\"u\":3735928559}"},
        {"u::uint:64", "FFFFFFFFFFFFFFFF", "{\"u\":18446744073709551615}"},
        {"u::uint:64:little-endian", "0100000000000080", "{\"u\":9223372036854775809}"},
        /* int: two's complement of its own width */
        {"i::int:8", "FF", "{\"i\":-1}"},
        {"i::int:8", "7F", "{\"i\":127}"},
        {"i::int:16:little-endian", "FEFF", "{\"i\":-2}"},
        {"i::int:12", "800F", "{\"i\":-2048}"},
        {"i::int:4", "70", "{\"i\":7}"},
        {"i::int:4", "80", "{\"i\":-8}"},
        {"i::int:64", "8000000000000000", "{\"i\":-9223372036854775808}"},
        /* float: IEEE 754, both sizes and byte orders; NaN/inf -> null */
        {"f::float:32", "41AC0000", "{\"f\":21.5}"},
        {"f::float:32:little-endian", "0000AC41", "{\"f\":21.5}"},
        {"f::float:64", "C004000000000000", "{\"f\":-2.5}"},
        {"f::float:64:little-endian", "00000000000004C0", "{\"f\":-2.5}"},
        {"f::float:32", "7FC00000", "{\"f\":null}"},
        {"f::float:32", "7F800000", "{\"f\":null}"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        check(t[i].grammar, t[i].hex, 0, t[i].json);
}

static void test_offsets(void **state)
{
    (void)state;
    static const struct {
        const char *grammar, *hex, *json;
    } t[] = {
        /* the example: bytes 0-1, 2, 3 and 4-7 */
        {"temp::int:16:little-endian hum::uint:8 flags::bool:7 name::char:4",
         "38FF2A804E414D45", "{\"temp\":-200,\"hum\":42,\"flags\":true,\"name\":\"NAME\"}"},
        /* explicit byte indexes, also out of order and overlapping */
        {"b:2:uint:8 a:0:uint:16", "010203", "{\"b\":3,\"a\":258}"},
        {"a:1:uint:8 b::uint:8", "000102", "{\"a\":1,\"b\":2}"},
        /* consecutive bools share their byte; the first bool after a uint takes the next */
        {"n::uint:8 x::bool:7 y::bool:0 z::uint:8", "00810F",
         "{\"n\":0,\"x\":true,\"y\":true,\"z\":15}"},
        /* a sub-byte integer reads from the MSB; without a bit offset the next field
         * starts on the next byte (the classic Sigfox pitfall) */
        {"speed::uint:8 dir::uint:4 status::uint:4", "10ABCD",
         "{\"speed\":16,\"dir\":10,\"status\":12}"},
        /* with bit offsets: the low nibble is offset 3 */
        {"speed::uint:8 dir::uint:4 status:1:uint:4::3", "10AB",
         "{\"speed\":16,\"dir\":10,\"status\":11}"},
        /* after a field with an explicit offset an empty index stays on its last byte */
        {"hi::uint:4::7 lo::uint:4::3 next::uint:8", "5A07",
         "{\"hi\":5,\"lo\":10,\"next\":90}"},
        /* a bit field crossing a byte boundary */
        {"x::uint:8::3", "ABCD", "{\"x\":188}"},
        {"x::int:5:big-endian:4", "1C", "{\"x\":-4}"},
        /* empty endianness part means big-endian */
        {"x::uint:16:", "0102", "{\"x\":258}"},
        /* bool with explicit byte */
        {"x:2:bool:3", "000008", "{\"x\":true}"},
        /* empty grammar */
        {"", "01", "{}"},
        {"   ", "", "{}"},
        /* tabs and repeated spaces separate too */
        {"a::uint:8 \t  b::uint:8", "0102", "{\"a\":1,\"b\":2}"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        check(t[i].grammar, t[i].hex, 0, t[i].json);
}

static void test_too_short(void **state)
{
    (void)state;
    char err[256] = "";
    payloadfmt_t *f = payloadfmt_create("a::uint:8 b::uint:16 c::bool:0", err, sizeof err);
    assert_non_null(f);
    assert_int_equal(payloadfmt_min_len(f), 4);
    assert_int_equal(payloadfmt_nfields(f), 3);
    assert_string_equal(payloadfmt_field_name(f, 1), "b");
    assert_null(payloadfmt_field_name(f, 3));
    uint8_t p[2] = {7, 8};
    json_object *o = NULL;
    assert_int_equal(payloadfmt_decode(f, p, 2, &o, err, sizeof err), -1);
    assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), "{\"a\":7}");
    assert_string_equal(err, "payload too short: field 'b' needs bytes 1..2, payload has 2");
    json_object_put(o);
    /* empty payload, NULL pointer with length 0 */
    assert_int_equal(payloadfmt_decode(f, NULL, 0, &o, err, sizeof err), -1);
    assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), "{}");
    json_object_put(o);
    assert_int_equal(payloadfmt_decode(f, NULL, 5, &o, err, sizeof err), -2);
    assert_null(o);
    assert_int_equal(payloadfmt_decode(f, p, 2, NULL, err, sizeof err), -2);
    payloadfmt_destroy(f);
    payloadfmt_destroy(NULL);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *grammar, *err;
    } t[] = {
        {"a::uint", "payload grammar: field needs name:byte_index:type:argument at column 4"},
        {"a", "payload grammar: field needs name:byte_index:type:argument at column 1"},
        {":0:uint:8", "payload grammar: field name must have 1..32 characters at column 1"},
        {"a.b::uint:8", "payload grammar: field name may only hold letters, digits, '_' and '-' at column 1"},
        {"a::uint:8 b::blob:8", "payload grammar: unknown type (bool, char, uint, int, float) at column 14"},
        {"a::uint:0", "payload grammar: integer size must be 1..64 bits at column 9"},
        {"a::int:65", "payload grammar: integer size must be 1..64 bits at column 8"},
        {"a::uint:x", "payload grammar: integer size must be 1..64 bits at column 9"},
        {"a::bool:8", "payload grammar: bool bit must be 0..7 at column 9"},
        {"a::bool:", "payload grammar: bool bit must be 0..7 at column 9"},
        {"a::char:0", "payload grammar: char length must be 1..64 bytes at column 9"},
        {"a::float:16", "payload grammar: float size must be 32 or 64 bits at column 10"},
        {"a::uint:16:middle-endian", "payload grammar: endianness must be big-endian or little-endian at column 12"},
        {"a::uint:12:little-endian", "payload grammar: little-endian needs a whole number of bytes and no bit offset at column 12"},
        {"a::uint:8:little-endian:3", "payload grammar: little-endian needs a whole number of bytes and no bit offset at column 11"},
        {"a::uint:4::8", "payload grammar: bit offset must be 0..7 at column 12"},
        {"a::bool:1:x", "payload grammar: too many arguments for this type at column 11"},
        {"a::float:32:big-endian:0", "payload grammar: too many arguments for this type at column 24"},
        {"a::uint:8:big-endian:0:1", "payload grammar: too many arguments for this type at column 24"},
        {"a::uint:8::0:1:2", "payload grammar: too many ':' parts at column 15"},
        {"a:64:uint:8", "payload grammar: byte index must be 0..63 at column 3"},
        {"a:x:uint:8", "payload grammar: byte index must be 0..63 at column 3"},
        {"a:60:uint:64", "payload grammar: field ends after byte 63 at column 3"},
        {"a::uint:8 a::uint:8", "payload grammar: duplicate field name 'a' at column 11"},
        {"a::uint:8\nb::uint:8", "payload grammar: character 0x0A not allowed at column 10"},
        {"a::char:\xC3\xA9", "payload grammar: character 0xC3 not allowed at column 9"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char err[256] = "";
        payloadfmt_t *f = payloadfmt_create(t[i].grammar, err, sizeof err);
        if (f)
            fail_msg("'%s' accepted", t[i].grammar);
        if (strcmp(err, t[i].err) != 0)
            fail_msg("'%s': got '%s', want '%s'", t[i].grammar, err, t[i].err);
    }
    /* limits: 64 fields fit, 65 do not; NULL and over-long text */
    char g[PAYLOADFMT_MAX_TEXT + 2];
    size_t n = 0;
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(g + n, sizeof g - n, "f%d:0:bool:0 ", i);
    char err[256];
    assert_null(payloadfmt_create(g, err, sizeof err));
    assert_non_null(strstr(err, "more than 64 fields"));
    g[n - strlen("f64:0:bool:0 ")] = '\0';
    payloadfmt_t *f = payloadfmt_create(g, err, sizeof err);
    assert_non_null(f);
    assert_int_equal(payloadfmt_nfields(f), 64);
    payloadfmt_destroy(f);
    assert_null(payloadfmt_create(NULL, err, sizeof err));
    memset(g, ' ', sizeof g - 1);
    g[sizeof g - 1] = '\0';
    assert_null(payloadfmt_create(g, err, sizeof err));
    assert_string_equal(err, "payload grammar: longer than 4096 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_too_short),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
