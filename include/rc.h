/* rc: Sigfox radio configurations RC1..RC7 (spec rev 1.4 Tables 2-1, 2-4, 3-4, 4-1, 4-2,
 * 4-3; RC7 from Sigfox's published values, not in rev 1.4). Licence: MIT. */
#ifndef SIGFOX_RC_H
#define SIGFOX_RC_H

#include <stdbool.h>

#define RC_MACRO_CHANNEL_HZ 192000.0 /* §2.2.1 */

typedef struct {
    int number;                 /* 1..7 */
    const char *name;           /* "RC1" */
    double ul_center_hz;        /* Table 2-1 */
    double dl_center_hz;
    double dl_gap_hz;           /* Δf_GAP = f_DL - f_UL for a B-procedure */
    bool br100_allowed;         /* Table 2-4 */
    bool br600_allowed;
    double t_ifu_min_s, t_ifu_max_s; /* Table 3-4; max < 0: not applicable */
    double t_ifb_min_s, t_ifb_max_s; /* Table 4-2 */
    double t_w_s, t_rx_s;       /* Table 4-1 */
    double t_conf_min_s, t_conf_max_s;
    double df_mf_hz;            /* Table 4-3: replica spacing in a B-procedure */
} rc_params_t;

/* Parameters for "RC1".."RC7" (case-insensitive, "1".."7" accepted), or NULL. */
const rc_params_t *rc_lookup(const char *name);
/* Parameters for 1..7, or NULL. */
const rc_params_t *rc_get(int number);

#endif
