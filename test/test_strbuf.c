/* test_strbuf: the growing text buffer: appends across reallocations, the size limit,
 * failure that sticks, an empty text that still is a string. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "strbuf.h"

static void test_grows(void **state)
{
    (void)state;
    strbuf_t b = {0};
    assert_null(b.p);
    assert_true(strbuf_add(&b, "", 0)); /* an empty text is "" */
    assert_non_null(b.p);
    assert_string_equal(b.p, "");
    for (int i = 0; i < 1000; i++)
        assert_true(strbuf_add(&b, "0123456789", 10));
    assert_int_equal(b.len, 10000);
    assert_int_equal(strlen(b.p), 10000);
    assert_true(b.cap > b.len);
    assert_memory_equal(b.p + 9990, "0123456789", 10);
    assert_false(b.failed);
    strbuf_free(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
}

static void test_limit(void **state)
{
    (void)state;
    strbuf_t b = {.max = 8};
    assert_true(strbuf_add(&b, "abcde", 5));
    assert_true(strbuf_add(&b, "fgh", 3)); /* exactly max */
    assert_false(strbuf_add(&b, "i", 1));
    assert_true(b.failed);
    assert_string_equal(b.p, "abcdefgh"); /* the text stays as it was */
    assert_false(strbuf_add(&b, "", 0));  /* failure sticks */
    strbuf_free(&b);

    strbuf_t c = {0};
    c.failed = true; /* a caller's own reason */
    assert_false(strbuf_add(&c, "x", 1));
    assert_null(c.p);
    strbuf_free(&c);

    strbuf_t d = {0};
    assert_true(strbuf_add(&d, "x", 1));
    assert_false(strbuf_add(&d, "y", SIZE_MAX - 1)); /* no size overflow */
    assert_true(d.failed);
    assert_string_equal(d.p, "x");
    strbuf_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grows),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
