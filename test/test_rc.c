/* test_rc: rc.c's RC1..RC7 table against the spec's values typed here independently of it
 * (seeds/002 radio spec rev 1.4 Tables 2-1, 2-4, 3-4, 4-1, 4-2, 4-3; RC7 from docs/protocol.md:
 * Sigfox's published 868.800/869.100 MHz, timing as RC1). Every number below was copied
 * from the spec's tables, not from rc.c, so a typo in either shows up. Licence: MIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rc.h"
#include "testutil.h"

/* One column of the spec's tables; frequencies in MHz and times in ms as printed there,
 * -1 for "N.A.". */
typedef struct {
    const char *name;
    double ul_lo, ul_c, ul_hi, dl_lo, dl_c, dl_hi, gap; /* Table 2-1, MHz */
    bool br100, br600;                                  /* Table 2-4 */
    double t_ifu_min, t_ifu_max;                        /* Table 3-4, ms */
    double t_w, t_rx, t_conf_min, t_conf_max;           /* Table 4-1, s */
    double t_ifb_min, t_ifb_max;                        /* Table 4-2, ms */
    double df_mf_khz;                                   /* Table 4-3 */
} spec_rc_t;

static const spec_rc_t spec[] = {
    {"RC1", 868.034, 868.130, 868.226, 869.429, 869.525, 869.621, +1.395, true, true, 10, 2000, 20,
     25, 1.4, 4, 500, 525, 6},
    {"RC2", 902.104, 902.200, 902.296, 905.104, 905.200, 905.296, +3.000, false, true, 10, 2000, 20,
     25, 1.4, 4, 500, 525, 25},
    {"RC3", 923.104, 923.200, 923.296, 922.104, 922.200, 922.296, -1.000, true, true, 10, -1, 19,
     33.5, 1.4, 4, 10, -1, 6},
    {"RC4", 920.704, 920.800, 920.896, 922.204, 922.300, 922.396, +1.500, false, true, 10, 2000, 20,
     25, 1.4, 4, 500, 525, 25},
    {"RC5", 923.204, 923.300, 923.396, 922.204, 922.300, 922.396, -1.000, true, true, 10, -1, 19,
     33.5, 1.4, 4, 10, -1, 6},
    {"RC6", 865.104, 865.200, 865.296, 866.204, 866.300, 866.396, +1.100, true, true, 10, 2000, 20,
     25, 1.4, 4, 500, 525, 6},
    /* RC7: centres from docs/protocol.md, the 192 kHz macro-channel of §2.2.1 around them */
    {"RC7", 868.704, 868.800, 868.896, 869.004, 869.100, 869.196, +0.300, true, true, 10, 2000, 20,
     25, 1.4, 4, 500, 525, 6},
};

static void test_table(void **state)
{
    (void)state;
    for (int i = 0; i < 7; i++) {
        const spec_rc_t *s = &spec[i];
        const rc_params_t *r = rc_get(i + 1);
        assert_non_null(r);
        assert_int_equal(r->number, i + 1);
        assert_string_equal(r->name, s->name);
        /* Table 2-1: centres and gap to the Hz; the boundaries are centre ± 96 kHz. */
        assert_near(r->ul_center_hz, s->ul_c * 1e6, 0.5);
        assert_near(r->dl_center_hz, s->dl_c * 1e6, 0.5);
        assert_near(r->dl_gap_hz, s->gap * 1e6, 0.5);
        assert_near(r->dl_center_hz - r->ul_center_hz, s->gap * 1e6, 0.5);
        assert_near(r->ul_center_hz - RC_MACRO_CHANNEL_HZ / 2, s->ul_lo * 1e6, 0.5);
        assert_near(r->ul_center_hz + RC_MACRO_CHANNEL_HZ / 2, s->ul_hi * 1e6, 0.5);
        assert_near(r->dl_center_hz - RC_MACRO_CHANNEL_HZ / 2, s->dl_lo * 1e6, 0.5);
        assert_near(r->dl_center_hz + RC_MACRO_CHANNEL_HZ / 2, s->dl_hi * 1e6, 0.5);
        /* Table 2-4 */
        assert_int_equal(r->br100_allowed, s->br100);
        assert_int_equal(r->br600_allowed, s->br600);
        /* Table 3-4 (N.A. is any negative value in rc.h) */
        assert_near(r->t_ifu_min_s, s->t_ifu_min / 1e3, 1e-9);
        if (s->t_ifu_max < 0)
            assert_true(r->t_ifu_max_s < 0);
        else
            assert_near(r->t_ifu_max_s, s->t_ifu_max / 1e3, 1e-9);
        /* Table 4-1 */
        assert_near(r->t_w_s, s->t_w, 1e-9);
        assert_near(r->t_rx_s, s->t_rx, 1e-9);
        assert_near(r->t_conf_min_s, s->t_conf_min, 1e-9);
        assert_near(r->t_conf_max_s, s->t_conf_max, 1e-9);
        /* Table 4-2 */
        assert_near(r->t_ifb_min_s, s->t_ifb_min / 1e3, 1e-9);
        if (s->t_ifb_max < 0)
            assert_true(r->t_ifb_max_s < 0);
        else
            assert_near(r->t_ifb_max_s, s->t_ifb_max / 1e3, 1e-9);
        /* Table 4-3 */
        assert_near(r->df_mf_hz, s->df_mf_khz * 1e3, 1e-6);
    }
    assert_null(rc_get(0));
    assert_null(rc_get(8));
    assert_null(rc_get(-1));
}

static void test_lookup(void **state)
{
    (void)state;
    static const char *const ok[][3] = {
        {"RC1", "rc1", "1"}, {"RC4", "Rc4", "4"}, {"RC7", "rC7", "7"}};
    static const int num[] = {1, 4, 7};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            const rc_params_t *r = rc_lookup(ok[i][j]);
            assert_non_null(r);
            assert_int_equal(r->number, num[i]);
        }
    static const char *const bad[] = {"", "RC", "RC0", "RC8", "RC10", "RC1 ", "8", "R1", "RCx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(rc_lookup(bad[i]));
    assert_null(rc_lookup(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
