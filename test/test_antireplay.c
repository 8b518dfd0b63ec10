/* test_antireplay: the sequence-number window of seeds/000 §9.1.1. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>

#include <cmocka.h>

#include "antireplay.h"

static void test_window_size(void **state)
{
    (void)state;
    static const struct {
        unsigned daily, window;
    } t[] = {{0, 20}, {1, 20}, {6, 20}, {7, 21}, {140, 420}, {1364, 4092}, {1365, 4094},
             {100000, 4094}, {UINT_MAX, 4094}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        assert_int_equal(antireplay_window(t[i].daily), t[i].window);
}

/* The two examples of §9.1.1: last validated 5 -> 6..426 (140/day), 6..26 (1/day). */
static void test_spec_examples(void **state)
{
    (void)state;
    static const struct {
        unsigned daily;
        int first, last;
    } t[] = {{140, 6, 426}, {1, 6, 26}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        for (int mc = 0; mc < 4096; mc++)
            assert_int_equal(antireplay_accept(5, (uint16_t)mc, t[i].daily),
                             mc >= t[i].first && mc <= t[i].last);
}

/* Modulo 4096: the window continues through 4095 -> 0. */
static void test_wraparound(void **state)
{
    (void)state;
    for (unsigned last = 4070; last < 4096; last++)
        for (int k = -5; k <= 30; k++) {
            uint16_t mc = (uint16_t)((last + 4096 + (unsigned)k) % 4096);
            assert_int_equal(antireplay_accept((uint16_t)last, mc, 1), k >= 1 && k <= 21);
        }
    /* with the largest window only the last counter itself is refused */
    int accepted = 0;
    for (int mc = 0; mc < 4096; mc++)
        accepted += antireplay_accept(100, (uint16_t)mc, UINT_MAX);
    assert_int_equal(accepted, 4095);
    assert_false(antireplay_accept(100, 100, UINT_MAX));
}

static void test_update_state(void **state)
{
    (void)state;
    antireplay_state_t st = {0};
    assert_true(antireplay_update(&st, 4000, 1)); /* first message: accepted */
    assert_int_equal(st.last_mc, 4000);
    assert_false(antireplay_update(&st, 4000, 1)); /* replay */
    assert_false(antireplay_update(&st, 3999, 1)); /* older */
    assert_true(antireplay_update(&st, 4010, 1));
    assert_false(antireplay_update(&st, 4031 + 1, 1)); /* beyond 4010+1+20 */
    assert_int_equal(st.last_mc, 4010);                /* a refusal keeps the state */
    assert_true(antireplay_update(&st, 4031, 1));
    assert_false(antireplay_update(&st, 5, 1)); /* 4032..4052 does not reach 5 */
    assert_true(antireplay_update(&st, 5, 30)); /* 4032..4122 = ..26 across the rollover */
    assert_int_equal(st.last_mc, 5);
    assert_false(antireplay_update(&st, 4031, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_size),
        cmocka_unit_test(test_spec_examples),
        cmocka_unit_test(test_wraparound),
        cmocka_unit_test(test_update_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
