/* dlsched: downlink scheduler for B-procedures (spec rev 1.4 §4.9, §5.2). Licence: MIT.
 * include/dlsched.h describes the behaviour; docs/downlink-scheduler.md the fields. */
#include "dlsched.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errbuf.h"
#include "log.h"

/* Data part of a DL burst: 224 bits at 600 baud (first preamble bit .. last bit). */
#define DL_DATA_S (DL_FRAME_BITS / DLSCHED_BAUD)
/* Half the occupied bandwidth of the DL GFSK (Carson: deviation 800 Hz + 600 baud, §2.5.2),
 * for the duty-band edge check. */
#define DL_HALF_BW_HZ 1400.0
/* The confirmation is a single 16-byte control frame (§5.2): 4 + 16 + 2 bytes; at BR100
 * it lasts 1.76 s, which the lost verdict waits for after the T_CONF window closes. */
#define CONF_FRAME_S ((UL_HEADER_BYTES + 16 + UL_CRC_BYTES) * 8 / 100.0)
/* Between the end of one UL frame's data and the start of the next one's preamble the
 * device adds tail, ramp-down, ramp-up and lead symbols (0-2 each plus the ramps, §2.4.3)
 * to T_IFB; the derivation from a later replica allows this many symbols. */
#define UL_GAP_OVERHEAD_SYMBOLS 6.0
/* ETSI EN 300 220 sub-band of the RC1 downlink (869.40-869.65 MHz, 10 % duty cycle). */
#define RC1_DUTY_BAND_LO_HZ 869.40e6
#define RC1_DUTY_BAND_HI_HZ 869.65e6

typedef enum {
    RQ_FREE = 0,
    RQ_AWAIT_ANSWER, /* callback: waiting for the application */
    RQ_READY,        /* payload known, waiting for the commit time */
    RQ_COMMITTED,    /* frame handed to the transmitter, waiting for the confirmation */
    RQ_DONE,         /* finished; kept for retain_s to explain late answers */
} rq_state_t;

/* What the replicas received so far say about the first frame (end time interval and
 * carrier). */
typedef struct {
    double end_lo, end_hi; /* the first frame ended somewhere in [end_lo, end_hi] */
    int rank;              /* lowest rank seen */
    bool have_r1;
    double f_r1;           /* rank 1's carrier */
    double f_sum;          /* derived carriers of ranks 2/3 */
    int f_n;
} estimate_t;

typedef struct {
    rq_state_t state;
    dlsched_status_t final_status;
    uint32_t id, ep_id;
    uint16_t mc;
    dlsched_mode_t mode;
    estimate_t est;
    double win_lo, win_hi;     /* certain part of the receive window */
    double t_plan, t_latest;   /* planned / latest DL start */
    double deadline;           /* callback answers */
    bool has_payload;
    uint8_t payload[DL_PAYLOAD_BYTES];
    bool has_dl_auth; /* DL-AUTH given with the answer (remote_answers) */
    uint8_t dl_auth[DL_AUTH_BYTES];
    bool late_answer;          /* answered after t_plan - tx_lead_s */
    double answer_t;
    bool committed;            /* occupies a transmitter slot and the budgets */
    double t_start, t_end, freq_hz, tx_freq_hz;
    uint8_t frame[DL_FRAME_BYTES], phy[DL_PHY_BYTES];
    double conf_lo, conf_hi, lost_at;
    bool sent_reported;
    double expire_at;
} request_t;

typedef struct {
    bool used;
    bool configured;
    uint32_t ep_id;
    dlsched_mode_t mode;
    uint8_t payload[DL_PAYLOAD_BYTES];
    int quota;                          /* > 0 limit, < 0 none */
    int nhist;
    double hist_t[DLSCHED_MAX_QUOTA];   /* committed DL starts */
    uint32_t hist_id[DLSCHED_MAX_QUOTA];
} device_t;

typedef struct {
    double t_on, t_off; /* burst on air, ramps included */
    uint32_t id;        /* request id; 0: a reservation (dlsched_reserve) */
} duty_entry_t;

/* Transmitter time reserved for another burst (a Monarch beacon). */
#define MAX_RESERVATIONS 16
typedef struct {
    double t_on, t_off;
} reservation_t;

struct dlsched {
    pthread_mutex_t lock;
    dlsched_config_t cfg; /* defaults resolved; devices not kept */
    const rc_params_t *rc;
    double now;
    uint32_t next_id;
    device_t *dev;
    size_t dev_cap; /* power of two */
    size_t dev_count, dev_max;
    request_t *rq;
    size_t nrq;
    bool duty_limited;
    double duty_budget_s;
    duty_entry_t *duty;
    size_t nduty, duty_cap;
    reservation_t rsv[MAX_RESERVATIONS];
    size_t nrsv;
    dlsched_stats_t st;
};

/* ---- names ------------------------------------------------------------------------------ */

const char *dlsched_strerror(int code)
{
    switch (code) {
    case DLSCHED_OK: return "ok";
    case DLSCHED_ERR_ARG: return "invalid argument";
    case DLSCHED_ERR_NOMEM: return "out of memory";
    default: return "unknown error";
    }
}

static const char *const mode_names[] = {"callback", "direct", "off"};

const char *dlsched_mode_name(dlsched_mode_t mode)
{
    return (unsigned)mode < 3 ? mode_names[mode] : "?";
}

int dlsched_mode_from_name(const char *name)
{
    for (int i = 0; name && i < 3; i++)
        if (strcasecmp(name, mode_names[i]) == 0)
            return i;
    return -1;
}

const char *dlsched_event_name(dlsched_event_type_t type)
{
    static const char *const names[] = {
        "downlink_request", "downlink_scheduled", "downlink_refused", "downlink_no_answer",
        "downlink_sent",    "downlink_failed",    "downlink_ack",     "downlink_lost"};
    return (unsigned)type < sizeof names / sizeof names[0] ? names[type] : "downlink_?";
}

const char *dlsched_status_name(dlsched_status_t st)
{
    static const char *const names[] = {
        "ok",        "quota",     "duty_cycle", "out_of_band", "window",
        "tx_busy",   "no_key",    "disabled",   "table_full",  "declined",
        "no_answer", "timeout",   "end_of_stream", "tx_error", "codec"};
    return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "?";
}

/* ---- device table (open addressing) ----------------------------------------------------- */

static size_t dev_slot(uint32_t ep_id, size_t cap)
{
    uint32_t h = ep_id * 2654435761u; /* Knuth's multiplicative hash */
    return (size_t)(h ^ (h >> 16)) & (cap - 1);
}

static device_t *find_device(dlsched_t *q, uint32_t ep_id, bool create)
{
    size_t i = dev_slot(ep_id, q->dev_cap);
    for (size_t n = 0; n < q->dev_cap; n++, i = (i + 1) & (q->dev_cap - 1)) {
        device_t *d = &q->dev[i];
        if (d->used && d->ep_id == ep_id)
            return d;
        if (!d->used) {
            if (!create || q->dev_count >= q->dev_max)
                return NULL;
            memset(d, 0, sizeof *d);
            d->used = true;
            d->ep_id = ep_id;
            d->mode = q->cfg.default_mode;
            d->quota = q->cfg.daily_quota;
            q->dev_count++;
            return d;
        }
    }
    return NULL;
}

/* Downlinks of d committed with a start in (t - quota window, ...]. */
static int quota_used(const dlsched_t *q, const device_t *d, double t)
{
    int n = 0;
    for (int i = 0; i < d->nhist; i++)
        if (d->hist_t[i] > t - q->cfg.quota_window_s)
            n++;
    return n;
}

static void quota_record(dlsched_t *q, device_t *d, double t, uint32_t id)
{
    /* Drop entries that no future check can count, then the oldest if still full. */
    for (int i = 0; i < d->nhist;) {
        if (d->hist_t[i] <= q->now - q->cfg.quota_window_s) {
            d->hist_t[i] = d->hist_t[d->nhist - 1];
            d->hist_id[i] = d->hist_id[--d->nhist];
        } else {
            i++;
        }
    }
    if (d->nhist == DLSCHED_MAX_QUOTA) {
        int oldest = 0;
        for (int i = 1; i < d->nhist; i++)
            if (d->hist_t[i] < d->hist_t[oldest])
                oldest = i;
        d->hist_t[oldest] = t;
        d->hist_id[oldest] = id;
        return;
    }
    d->hist_t[d->nhist] = t;
    d->hist_id[d->nhist++] = id;
}

static void quota_refund(device_t *d, uint32_t id)
{
    for (int i = 0; i < d->nhist; i++)
        if (d->hist_id[i] == id) {
            d->hist_t[i] = d->hist_t[d->nhist - 1];
            d->hist_id[i] = d->hist_id[--d->nhist];
            return;
        }
}

/* ---- duty cycle ------------------------------------------------------------------------- */

static double overlap(double a0, double a1, double b0, double b1)
{
    double lo = fmax(a0, b0), hi = fmin(a1, b1);
    return hi > lo ? hi - lo : 0.0;
}

static double duty_used_in(const dlsched_t *q, double w0, double w1)
{
    double used = 0;
    for (size_t i = 0; i < q->nduty; i++)
        used += overlap(q->duty[i].t_on, q->duty[i].t_off, w0, w1);
    return used;
}

/* Largest on-air time, the candidate burst [t_on, t_off] included, over every sliding
 * window that contains the candidate. The maximum is reached by a window ending at the
 * candidate's end or at the end of a later burst. */
static double duty_peak_with(const dlsched_t *q, double t_on, double t_off)
{
    double w = q->cfg.duty_window_s;
    double peak = duty_used_in(q, t_off - w, t_off) + (t_off - t_on);
    for (size_t i = 0; i < q->nduty; i++) {
        double e = q->duty[i].t_off;
        if (e > t_off && e - w < t_on) {
            double u = duty_used_in(q, e - w, e) + overlap(t_on, t_off, e - w, e);
            peak = fmax(peak, u);
        }
    }
    return peak;
}

static void duty_prune(dlsched_t *q)
{
    for (size_t i = 0; i < q->nduty;) {
        if (q->duty[i].t_off <= q->now - q->cfg.duty_window_s)
            q->duty[i] = q->duty[--q->nduty];
        else
            i++;
    }
}

static void duty_refund(dlsched_t *q, uint32_t id)
{
    for (size_t i = 0; i < q->nduty; i++)
        if (q->duty[i].id == id) {
            q->duty[i] = q->duty[--q->nduty];
            return;
        }
}

/* ---- events ----------------------------------------------------------------------------- */

static void ev_init(dlsched_event_t *ev, dlsched_event_type_t type, const request_t *r)
{
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    if (!r)
        return;
    ev->id = r->id;
    ev->ep_id = r->ep_id;
    ev->mc = r->mc;
    ev->mode = r->mode;
    if (r->est.rank > 0) {
        ev->has_window = true;
        ev->ul_freq_hz = r->est.have_r1 ? r->est.f_r1 : r->est.f_sum / r->est.f_n;
        ev->ul_t_end_s = r->est.end_hi;
        ev->ul_rank = r->est.rank;
        ev->ul_derived = !r->est.have_r1;
        ev->window_start_s = r->win_lo;
        ev->window_end_s = r->win_hi;
        ev->deadline_s = r->mode == DLSCHED_MODE_CALLBACK ? r->deadline : 0;
    }
    if (r->has_payload) {
        ev->has_payload = true;
        memcpy(ev->payload, r->payload, DL_PAYLOAD_BYTES);
    }
    if (r->committed) {
        ev->has_dl = true;
        ev->freq_hz = r->freq_hz;
        ev->tx_freq_hz = r->tx_freq_hz;
        ev->t_start_s = r->t_start;
        ev->t_end_s = r->t_end;
        ev->has_frame = true;
        memcpy(ev->frame, r->frame, DL_FRAME_BYTES);
        memcpy(ev->phy, r->phy, DL_PHY_BYTES);
        ev->has_conf = true;
        ev->conf_window_start_s = r->conf_lo;
        ev->conf_window_end_s = r->conf_hi;
        ev->conf_mc = (uint16_t)((r->mc + 1) & DL_MC_MAX);
    }
}

static int emit(dlsched_t *q, dlsched_event_t *ev)
{
    return q->cfg.on_event(ev, q->cfg.user);
}

/* The planned DL of an uncommitted request, for REQUEST events and answer replies. */
static void ev_planned(const dlsched_t *q, dlsched_event_t *ev, const request_t *r)
{
    ev->has_dl = true;
    ev->freq_hz = ev->ul_freq_hz + q->rc->dl_gap_hz;
    ev->tx_freq_hz = ev->freq_hz / (1.0 + q->cfg.tx_ppm * 1e-6);
    ev->t_start_s = r->late_answer ? fmax(r->t_plan, r->answer_t + q->cfg.tx_lead_s) : r->t_plan;
    ev->t_end_s = ev->t_start_s + DL_DATA_S;
}

static void finish(dlsched_t *q, request_t *r, dlsched_status_t st)
{
    r->state = RQ_DONE;
    r->final_status = st;
    double last = fmax(q->now, fmax(r->win_hi, r->deadline));
    if (r->committed)
        last = fmax(last, r->lost_at);
    r->expire_at = last + q->cfg.retain_s;
}

static device_t *find_device(dlsched_t *q, uint32_t ep_id, bool create);
static void fill_limits(const dlsched_t *q, const device_t *d, dlsched_event_t *ev, double t);

static void refuse(dlsched_t *q, request_t *r, dlsched_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse(dlsched_t *q, request_t *r, dlsched_status_t st, const char *fmt, ...)
{
    dlsched_event_t ev;
    ev_init(&ev, DLSCHED_EV_REFUSED, r);
    ev.status = st;
    /* A refusal by a limit shows the limit's state at the planned start. */
    if (st == DLSCHED_ST_QUOTA || st == DLSCHED_ST_DUTY_CYCLE)
        fill_limits(q, find_device(q, r->ep_id, false), &ev, r->t_plan);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev.reason, sizeof ev.reason, fmt, ap);
    va_end(ap);
    q->st.refused++;
    q->st.refused_by[st]++;
    log_notice("Downlink refused, ep_id: %08X, mc: %u, status: %s, reason: %s", r->ep_id, r->mc,
               dlsched_status_name(st), ev.reason);
    finish(q, r, st);
    emit(q, &ev);
}

/* ---- first-frame estimate ----------------------------------------------------------------- */

/* Interval of the first frame's end implied by replica ul (rank >= 1). */
static void replica_interval(const dlsched_t *q, const dlsched_uplink_t *ul, double *lo,
                             double *hi)
{
    int r = ul->rank;
    if (r <= 1) {
        *lo = *hi = ul->t_end_s;
        return;
    }
    double d = ul->t_end_s - ul->t_start_s;
    double gap_lo = q->rc->t_ifb_min_s;
    double gap_hi = q->rc->t_ifb_max_s >= 0 ? q->rc->t_ifb_max_s : DLSCHED_T_LF_S;
    double baud = ul->baud > 0 ? ul->baud : 100;
    gap_hi += UL_GAP_OVERHEAD_SYMBOLS / baud;
    *hi = ul->t_start_s - (r - 1) * gap_lo - (r - 2) * d;
    *lo = ul->t_start_s - (r - 1) * gap_hi - (r - 2) * d;
}

static void estimate_add(const dlsched_t *q, estimate_t *e, const dlsched_uplink_t *ul)
{
    double lo, hi;
    replica_interval(q, ul, &lo, &hi);
    if (e->rank == 0 || ul->rank == 1) {
        e->end_lo = lo;
        e->end_hi = hi;
    } else if (!e->have_r1) {
        double nlo = fmax(e->end_lo, lo), nhi = fmin(e->end_hi, hi);
        if (nlo <= nhi) {
            e->end_lo = nlo;
            e->end_hi = nhi;
        } else if (ul->rank < e->rank) { /* inconsistent: trust the lower rank */
            e->end_lo = lo;
            e->end_hi = hi;
        }
    }
    if (ul->rank == 1) {
        e->have_r1 = true;
        e->f_r1 = ul->freq_hz;
    } else {
        /* Table 4-3, Sigfox EP library layout: frame 2 = f1 + Δf_MF, frame 3 = f1 - Δf_MF. */
        e->f_sum += ul->freq_hz + (ul->rank == 2 ? -q->rc->df_mf_hz : q->rc->df_mf_hz);
        e->f_n++;
    }
    if (e->rank == 0 || ul->rank < e->rank)
        e->rank = ul->rank;
}

static void plan_window(const dlsched_t *q, request_t *r)
{
    r->win_lo = r->est.end_hi + q->rc->t_w_s;
    r->win_hi = r->est.end_lo + q->rc->t_w_s + q->rc->t_rx_s;
    r->t_plan = r->win_lo + q->cfg.window_margin_s + DLSCHED_RAMP_S;
    r->t_latest = r->win_hi - q->cfg.window_margin_s - DLSCHED_RAMP_S - DL_DATA_S;
}

static double first_freq(const request_t *r)
{
    return r->est.have_r1 ? r->est.f_r1 : r->est.f_sum / r->est.f_n;
}

/* ---- checks shared by request time and commit time ------------------------------------------ */

/* 0 when a burst at carrier f starting at t passes quota, band and duty cycle; else the
 * refusal status with the reason in why. */
static dlsched_status_t check_limits(dlsched_t *q, const device_t *d, double f, double t,
                                     char *why, size_t why_len)
{
    if (d->quota > 0) {
        int used = quota_used(q, d, t);
        if (used >= d->quota) {
            errbuf_set(why, why_len, "daily quota used: %d of %d downlinks in the last %.0f s",
                       used, d->quota, q->cfg.quota_window_s);
            return DLSCHED_ST_QUOTA;
        }
    }
    if (f - DL_HALF_BW_HZ < q->cfg.duty_band_lo_hz || f + DL_HALF_BW_HZ > q->cfg.duty_band_hi_hz) {
        errbuf_set(why, why_len, "DL carrier %.1f Hz outside the duty band %.0f .. %.0f Hz", f,
                   q->cfg.duty_band_lo_hz, q->cfg.duty_band_hi_hz);
        return DLSCHED_ST_OUT_OF_BAND;
    }
    if (q->duty_limited) {
        double peak = duty_peak_with(q, t - DLSCHED_RAMP_S, t + DL_DATA_S + DLSCHED_RAMP_S);
        if (peak > q->duty_budget_s + 1e-9) {
            errbuf_set(why, why_len,
                       "duty cycle: %.3f s on air in %.0f s would exceed the budget of %.3f s "
                       "(%.2f %%)",
                       peak, q->cfg.duty_window_s, q->duty_budget_s, 100 * q->cfg.duty_cycle);
            return DLSCHED_ST_DUTY_CYCLE;
        }
        if (q->nduty >= q->duty_cap) {
            errbuf_set(why, why_len, "duty cycle: history full (%zu bursts)", q->duty_cap);
            return DLSCHED_ST_DUTY_CYCLE;
        }
    }
    return DLSCHED_ST_OK;
}

/* Earliest start >= t whose burst (ramps and guard included) overlaps no committed
 * burst. */
static double free_slot(const dlsched_t *q, const request_t *self, double t)
{
    double guard = q->cfg.tx_guard_s;
    for (bool moved = true; moved;) {
        moved = false;
        for (size_t i = 0; i < q->nrq; i++) {
            const request_t *o = &q->rq[i];
            if (o == self || o->state == RQ_FREE || !o->committed)
                continue;
            double a0 = t - DLSCHED_RAMP_S - guard, a1 = t + DL_DATA_S + DLSCHED_RAMP_S + guard;
            double b0 = o->t_start - DLSCHED_RAMP_S, b1 = o->t_end + DLSCHED_RAMP_S;
            if (a1 > b0 && a0 < b1) {
                t = b1 + guard + DLSCHED_RAMP_S;
                moved = true;
            }
        }
        for (size_t i = 0; i < q->nrsv; i++) {
            double a0 = t - DLSCHED_RAMP_S - guard, a1 = t + DL_DATA_S + DLSCHED_RAMP_S + guard;
            if (a1 > q->rsv[i].t_on && a0 < q->rsv[i].t_off) {
                t = q->rsv[i].t_off + guard + DLSCHED_RAMP_S;
                moved = true;
            }
        }
    }
    return t;
}

static void fill_limits(const dlsched_t *q, const device_t *d, dlsched_event_t *ev, double t)
{
    ev->has_limits = true;
    ev->duty_budget_s = q->duty_limited ? q->duty_budget_s : q->cfg.duty_window_s;
    ev->duty_used_s = duty_used_in(q, t + DL_DATA_S + DLSCHED_RAMP_S - q->cfg.duty_window_s,
                                   t + DL_DATA_S + DLSCHED_RAMP_S);
    ev->quota_limit = d ? d->quota : -1;
    ev->quota_used = d ? quota_used(q, d, t) : 0;
}

/* ---- commit ------------------------------------------------------------------------------- */

static void commit(dlsched_t *q, request_t *r)
{
    device_t *d = find_device(q, r->ep_id, false);
    double t = r->late_answer ? fmax(r->t_plan, r->answer_t + q->cfg.tx_lead_s) : r->t_plan;
    if (t < q->now) /* ticked late: the planned start has passed on the stream clock */
        t = q->now + q->cfg.tx_lead_s;
    if (t > r->t_latest) {
        refuse(q, r, DLSCHED_ST_WINDOW,
               "start %.3f s is past the latest start %.3f s of the receive window", t,
               r->t_latest);
        return;
    }
    double t_free = free_slot(q, r, t);
    if (t_free > r->t_latest) {
        refuse(q, r, DLSCHED_ST_TX_BUSY,
               "transmitter busy: first free slot %.3f s is past the latest start %.3f s",
               t_free, r->t_latest);
        return;
    }
    t = t_free;
    double f = first_freq(r) + q->rc->dl_gap_hz;
    char why[DLSCHED_REASON_MAX];
    dlsched_status_t st = check_limits(q, d, f, t, why, sizeof why);
    if (st != DLSCHED_ST_OK) {
        refuse(q, r, st, "%s", why);
        return;
    }
    const uint8_t *key = r->has_dl_auth ? NULL : keystore_find(q->cfg.keys, r->ep_id);
    if (!key && !r->has_dl_auth) {
        refuse(q, r, DLSCHED_ST_NO_KEY, "no key for device %08X", r->ep_id);
        return;
    }
    int rc = r->has_dl_auth
                 ? dl_frame_encode_auth(r->ep_id, r->mc, r->payload, r->dl_auth, r->phy, r->frame)
                 : dl_frame_encode(r->ep_id, r->mc, r->payload, key, r->phy, r->frame);
    if (rc != DL_OK) {
        refuse(q, r, DLSCHED_ST_CODEC, "frame encoding failed: %s", dl_strerror(rc));
        return;
    }
    r->committed = true;
    r->t_start = t;
    r->t_end = t + DL_DATA_S;
    r->freq_hz = f;
    r->tx_freq_hz = f / (1.0 + q->cfg.tx_ppm * 1e-6);
    r->conf_lo = r->t_end + q->rc->t_conf_min_s - q->cfg.conf_tolerance_s;
    r->conf_hi = r->t_end + q->rc->t_conf_max_s + q->cfg.conf_tolerance_s;
    r->lost_at = r->conf_hi + CONF_FRAME_S + q->cfg.rx_latency_s;
    r->state = RQ_COMMITTED;
    if (q->duty_limited) {
        q->duty[q->nduty].t_on = t - DLSCHED_RAMP_S;
        q->duty[q->nduty].t_off = r->t_end + DLSCHED_RAMP_S;
        q->duty[q->nduty++].id = r->id;
    }
    quota_record(q, d, t, r->id);
    q->st.scheduled++;

    dlsched_event_t ev;
    ev_init(&ev, DLSCHED_EV_SCHEDULED, r);
    /* DL-AUTH is inside the whitened DL-PHY-CONTENT; recompute it for the event. */
    if (r->has_dl_auth)
        memcpy(ev.dl_auth, r->dl_auth, DL_AUTH_BYTES);
    else if (dl_auth_compute(r->ep_id, r->mc, r->payload, key, ev.dl_auth) != DL_OK)
        memset(ev.dl_auth, 0, sizeof ev.dl_auth);
    fill_limits(q, d, &ev, t);
    log_info("Downlink scheduled, id: %u, ep_id: %08X, mc: %u, freq_hz: %.1f, t_start_s: %.6f",
             r->id, r->ep_id, r->mc, f, t);
    if (emit(q, &ev) >= 0)
        return;
    dlsched_event_t fe;
    ev_init(&fe, DLSCHED_EV_TX_FAILED, r);
    fe.has_conf = false;
    fe.status = DLSCHED_ST_TX_ERROR;
    snprintf(fe.reason, sizeof fe.reason, "the transmitter refused the burst");
    r->committed = false;
    duty_refund(q, r->id);
    quota_refund(d, r->id);
    q->st.tx_failed++;
    log_warn("Downlink not transmitted, id: %u, ep_id: %08X, mc: %u, reason: %s", r->id,
             r->ep_id, r->mc, fe.reason);
    finish(q, r, DLSCHED_ST_TX_ERROR);
    emit(q, &fe);
}

/* ---- requests --------------------------------------------------------------------------- */

static request_t *find_request(dlsched_t *q, uint32_t ep_id, uint16_t mc)
{
    for (size_t i = 0; i < q->nrq; i++)
        if (q->rq[i].state != RQ_FREE && q->rq[i].ep_id == ep_id && q->rq[i].mc == mc)
            return &q->rq[i];
    return NULL;
}

/* A free slot, else the finished request that expires first. */
static request_t *alloc_request(dlsched_t *q)
{
    request_t *best = NULL;
    for (size_t i = 0; i < q->nrq; i++) {
        request_t *r = &q->rq[i];
        if (r->state == RQ_FREE)
            return r;
        if (r->state == RQ_DONE && (!best || r->expire_at < best->expire_at))
            best = r;
    }
    return best;
}

static void refuse_unplaced(dlsched_t *q, const dlsched_uplink_t *ul, const char *why)
{
    dlsched_event_t ev;
    ev_init(&ev, DLSCHED_EV_REFUSED, NULL);
    ev.ep_id = ul->ep_id;
    ev.mc = ul->mc;
    ev.status = DLSCHED_ST_TABLE_FULL;
    snprintf(ev.reason, sizeof ev.reason, "%s", why);
    q->st.refused++;
    q->st.refused_by[DLSCHED_ST_TABLE_FULL]++;
    log_warn("Downlink refused, ep_id: %08X, mc: %u, reason: %s", ul->ep_id, ul->mc, why);
    emit(q, &ev);
}

static void open_request(dlsched_t *q, const dlsched_uplink_t *ul)
{
    device_t *d = find_device(q, ul->ep_id, true);
    if (!d) {
        refuse_unplaced(q, ul, "device table full");
        return;
    }
    request_t *r = alloc_request(q);
    if (!r) {
        refuse_unplaced(q, ul, "too many downlink requests in progress");
        return;
    }
    memset(r, 0, sizeof *r);
    r->state = RQ_READY; /* replaced below; not FREE while we fill it */
    r->id = q->next_id++;
    r->ep_id = ul->ep_id;
    r->mc = ul->mc;
    r->mode = q->cfg.remote_answers ? DLSCHED_MODE_CALLBACK : d->mode;
    estimate_add(q, &r->est, ul);
    plan_window(q, r);
    q->st.requests++;

    if (r->mode == DLSCHED_MODE_OFF) {
        refuse(q, r, DLSCHED_ST_DISABLED, "downlink is off for device %08X", r->ep_id);
        return;
    }
    if (!q->cfg.remote_answers && !keystore_find(q->cfg.keys, r->ep_id)) {
        refuse(q, r, DLSCHED_ST_NO_KEY, "no key for device %08X", r->ep_id);
        return;
    }
    if (r->t_latest < r->t_plan) {
        refuse(q, r, DLSCHED_ST_WINDOW,
               "receive window %.3f .. %.3f s too short for a %.3f s burst with %.3f s margins",
               r->win_lo, r->win_hi, DLSCHED_BURST_S, q->cfg.window_margin_s);
        return;
    }
    if (q->now + q->cfg.tx_lead_s > r->t_latest) {
        refuse(q, r, DLSCHED_ST_WINDOW,
               "request seen at %.3f s, too late for the window ending %.3f s", q->now,
               r->win_hi);
        return;
    }
    char why[DLSCHED_REASON_MAX];
    dlsched_status_t st =
        check_limits(q, d, first_freq(r) + q->rc->dl_gap_hz, r->t_plan, why, sizeof why);
    if (st != DLSCHED_ST_OK) {
        refuse(q, r, st, "%s", why);
        return;
    }
    if (r->mode == DLSCHED_MODE_DIRECT) {
        r->has_payload = true;
        memcpy(r->payload, d->payload, DL_PAYLOAD_BYTES);
        r->state = RQ_READY;
        log_info("Downlink request, id: %u, ep_id: %08X, mc: %u, mode: direct", r->id, r->ep_id,
                 r->mc);
        return;
    }
    r->state = RQ_AWAIT_ANSWER;
    r->deadline = r->t_latest - q->cfg.tx_lead_s;
    if (q->cfg.answer_timeout_s > 0 && isfinite(q->now))
        r->deadline = fmin(r->deadline, q->now + q->cfg.answer_timeout_s);
    dlsched_event_t ev;
    ev_init(&ev, DLSCHED_EV_REQUEST, r);
    ev_planned(q, &ev, r);
    log_info("Downlink request, id: %u, ep_id: %08X, mc: %u, mode: callback, deadline_s: %.3f",
             r->id, r->ep_id, r->mc, r->deadline);
    emit(q, &ev);
}

static int handle_confirmation(dlsched_t *q, const dlsched_uplink_t *ul)
{
    for (size_t i = 0; i < q->nrq; i++) {
        request_t *r = &q->rq[i];
        if (r->state != RQ_COMMITTED || r->ep_id != ul->ep_id)
            continue;
        uint16_t want = (uint16_t)((r->mc + 1) & DL_MC_MAX);
        if (ul->mc != want || ul->t_start_s < r->conf_lo || ul->t_start_s > r->conf_hi) {
            log_info("Confirmation does not match the downlink, id: %u, ep_id: %08X, mc: %u "
                     "(expected %u), t_start_s: %.3f (expected %.3f .. %.3f)",
                     r->id, ul->ep_id, ul->mc, want, ul->t_start_s, r->conf_lo, r->conf_hi);
            continue;
        }
        dlsched_event_t ev;
        ev_init(&ev, DLSCHED_EV_ACK, r);
        ev.conf_mc = ul->mc;
        ev.conf_t_start_s = ul->t_start_s;
        ev.t_conf_s = ul->t_start_s - r->t_end;
        ev.control = ul->control;
        ev.conf_freq_hz = ul->freq_hz;
        ev.conf_rssi_dbfs = ul->rssi_dbfs;
        ev.conf_snr_db = ul->snr_db;
        q->st.acks++;
        log_info("Downlink confirmed, id: %u, ep_id: %08X, mc: %u, t_conf_s: %.3f, rssi_dbm: %d",
                 r->id, r->ep_id, r->mc, ev.t_conf_s, ul->control.rssi_dbm);
        finish(q, r, DLSCHED_ST_OK);
        emit(q, &ev);
        return 1;
    }
    return 0;
}

/* may_open: a BF=1 frame may open a request (false for per-frame input, which has not
 * passed the daemon's anti-replay check yet). */
static int uplink_locked(dlsched_t *q, const dlsched_uplink_t *ul, bool may_open)
{
    q->st.uplinks++;
    if (isfinite(ul->t_end_s) && ul->t_end_s > q->now)
        q->now = ul->t_end_s;
    /* With a remote core, AUTH may be unverifiable here (no key): only a failed check
     * disqualifies a frame; the core checks UL-AUTH and anti-replay itself. */
    bool trusted = ul->auth_ok || (q->cfg.remote_answers && !ul->auth_bad);
    if (ul->kind == UL_KIND_DL_CONFIRMATION)
        return trusted ? handle_confirmation(q, ul) : 0;
    if (ul->kind != UL_KIND_APP || !ul->bf)
        return 0;
    if (!trusted) {
        q->st.ignored_unauth++;
        return 0;
    }
    if (ul->rank < 1 || ul->rank > 3 || !isfinite(ul->t_start_s) || !isfinite(ul->t_end_s) ||
        !isfinite(ul->freq_hz) || ul->t_end_s < ul->t_start_s)
        return 0;
    request_t *r = find_request(q, ul->ep_id, ul->mc);
    if (!r) {
        if (!may_open)
            return 0;
        open_request(q, ul);
        return 1;
    }
    if (r->state == RQ_AWAIT_ANSWER || r->state == RQ_READY) {
        estimate_add(q, &r->est, ul);
        plan_window(q, r);
    }
    return 1;
}

/* ---- public API ------------------------------------------------------------------------- */

dlsched_t *dlsched_create(const dlsched_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg || !cfg->rc || !cfg->on_event) {
        errbuf_set(err, err_len, "downlink scheduler: %s missing",
                   !cfg       ? "configuration"
                   : !cfg->rc ? "radio configuration (rc)"
                              : "on_event");
        return NULL;
    }
    dlsched_config_t c = *cfg;
    c.devices = NULL;
    c.ndevices = 0;
#define DEFAULT(field, value)                                                                  \
    do {                                                                                       \
        if (c.field == 0)                                                                      \
            c.field = (value);                                                                 \
    } while (0)
    DEFAULT(window_margin_s, 1.0);
    DEFAULT(tx_lead_s, 2.0);
    DEFAULT(tx_guard_s, 0.05);
    DEFAULT(duty_cycle, 0.10);
    DEFAULT(duty_window_s, 3600.0);
    DEFAULT(daily_quota, DLSCHED_DEFAULT_QUOTA);
    DEFAULT(quota_window_s, 86400.0);
    DEFAULT(conf_tolerance_s, 0.5);
    DEFAULT(rx_latency_s, 3.0);
    DEFAULT(retain_s, 120.0);
    DEFAULT(max_requests, 64);
    DEFAULT(max_devices, 4096);
#undef DEFAULT
    if (c.duty_band_lo_hz == 0 && c.duty_band_hi_hz == 0) {
        if (cfg->rc->number == 1) {
            c.duty_band_lo_hz = RC1_DUTY_BAND_LO_HZ;
            c.duty_band_hi_hz = RC1_DUTY_BAND_HI_HZ;
        } else {
            c.duty_band_lo_hz = cfg->rc->dl_center_hz - RC_MACRO_CHANNEL_HZ / 2;
            c.duty_band_hi_hz = cfg->rc->dl_center_hz + RC_MACRO_CHANNEL_HZ / 2;
        }
    }
    const char *bad = NULL;
    if (!(c.window_margin_s > 0 && c.window_margin_s < 10))
        bad = "window_margin_s must be in (0, 10) s";
    else if (!(c.tx_lead_s > 0 && c.tx_lead_s < 15))
        bad = "tx_lead_s must be in (0, 15) s";
    else if (!(c.answer_timeout_s >= 0 && c.answer_timeout_s <= 600))
        bad = "answer_timeout_s must be in 0 .. 600 s";
    else if (!(fabs(c.tx_ppm) <= 100))
        bad = "tx_ppm must be within -100 .. 100";
    else if (!(c.tx_guard_s > 0 && c.tx_guard_s <= 5))
        bad = "tx_guard_s must be in (0, 5] s";
    else if (!(c.duty_cycle > 0 && c.duty_cycle <= 1))
        bad = "duty_cycle must be in (0, 1]";
    else if (!(c.duty_window_s >= 1 && c.duty_window_s <= 7 * 86400.0))
        bad = "duty_window_s must be in 1 .. 604800 s";
    else if (!(c.duty_band_lo_hz < c.duty_band_hi_hz))
        bad = "duty band: duty_band_lo_hz must be below duty_band_hi_hz";
    else if (c.daily_quota > DLSCHED_MAX_QUOTA)
        bad = "daily_quota must be at most 64 (or < 0 for no limit)";
    else if (!(c.quota_window_s >= 1))
        bad = "quota_window_s must be >= 1 s";
    else if (!(c.conf_tolerance_s > 0 && c.conf_tolerance_s <= 10))
        bad = "conf_tolerance_s must be in (0, 10] s";
    else if (!(c.rx_latency_s > 0 && c.rx_latency_s <= 60))
        bad = "rx_latency_s must be in (0, 60] s";
    else if (!(c.retain_s > 0))
        bad = "retain_s must be > 0";
    else if (c.max_devices > (1u << 24) || c.max_requests > 65536)
        bad = "max_devices (<= 16777216) or max_requests (<= 65536) too large";
    else if (c.default_mode == DLSCHED_MODE_DIRECT)
        bad = "default_mode cannot be direct (a direct payload is per device)";
    else if ((unsigned)c.default_mode > DLSCHED_MODE_OFF)
        bad = "default_mode out of range";
    if (bad) {
        errbuf_set(err, err_len, "downlink scheduler: %s", bad);
        return NULL;
    }
    if (cfg->ndevices > c.max_devices) {
        errbuf_set(err, err_len, "downlink scheduler: %zu devices configured, max_devices is %zu",
                   cfg->ndevices, c.max_devices);
        return NULL;
    }

    dlsched_t *q = calloc(1, sizeof *q);
    if (!q) {
        errbuf_set(err, err_len, "downlink scheduler: out of memory");
        return NULL;
    }
    q->cfg = c;
    q->rc = c.rc;
    q->next_id = 1;
    q->now = -INFINITY;
    q->dev_max = c.max_devices;
    for (q->dev_cap = 16; q->dev_cap < 2 * c.max_devices; q->dev_cap *= 2)
        ;
    q->nrq = c.max_requests;
    q->duty_limited = c.duty_cycle < 1.0;
    q->duty_budget_s = c.duty_cycle * c.duty_window_s;
    q->duty_cap = q->duty_limited ? 2 * (size_t)ceil(q->duty_budget_s / DLSCHED_BURST_S) + 8 : 0;
    q->dev = calloc(q->dev_cap, sizeof *q->dev);
    q->rq = calloc(q->nrq, sizeof *q->rq);
    q->duty = q->duty_cap ? calloc(q->duty_cap, sizeof *q->duty) : NULL;
    if (!q->dev || !q->rq || (q->duty_cap && !q->duty) ||
        pthread_mutex_init(&q->lock, NULL) != 0) {
        errbuf_set(err, err_len, "downlink scheduler: out of memory");
        free(q->dev);
        free(q->rq);
        free(q->duty);
        free(q);
        return NULL;
    }
    for (size_t i = 0; i < cfg->ndevices; i++) {
        const dlsched_device_t *s = &cfg->devices[i];
        device_t *d = find_device(q, s->ep_id, false);
        if (d || (unsigned)s->mode > DLSCHED_MODE_OFF || s->daily_quota > DLSCHED_MAX_QUOTA) {
            errbuf_set(err, err_len, "downlink scheduler: device %08X: %s", s->ep_id,
                       d                                    ? "listed twice"
                       : s->daily_quota > DLSCHED_MAX_QUOTA ? "daily_quota above 64"
                                                            : "invalid mode");
            dlsched_destroy(q);
            return NULL;
        }
        d = find_device(q, s->ep_id, true);
        d->configured = true;
        d->mode = s->mode;
        memcpy(d->payload, s->payload, DL_PAYLOAD_BYTES);
        d->quota = s->daily_quota != 0 ? s->daily_quota : c.daily_quota;
    }
    return q;
}

void dlsched_destroy(dlsched_t *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->lock);
    free(q->dev);
    free(q->rq);
    free(q->duty);
    free(q);
}

static int uplink(dlsched_t *q, const dlsched_uplink_t *ul, bool may_open)
{
    if (!q || !ul)
        return DLSCHED_ERR_ARG;
    pthread_mutex_lock(&q->lock);
    int rc = uplink_locked(q, ul, may_open);
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int dlsched_uplink(dlsched_t *q, const dlsched_uplink_t *ul)
{
    return uplink(q, ul, true);
}

static void uplink_from_rx(dlsched_uplink_t *u, const rx_frame_t *f, const ul_message_t *m,
                           rx_auth_t auth)
{
    memset(u, 0, sizeof *u);
    u->ep_id = m->ep_id;
    u->mc = m->mc;
    u->bf = m->bf;
    u->kind = m->kind;
    u->auth_ok = auth == RX_AUTH_OK;
    u->auth_bad = auth == RX_AUTH_BAD;
    u->rank = f->frame.rank;
    u->baud = f->baud;
    u->freq_hz = f->freq_hz;
    u->t_start_s = f->t_start_s;
    u->t_end_s = f->t_end_s;
    u->rssi_dbfs = f->rssi_dbfs;
    u->snr_db = f->snr_db;
    u->control = m->control;
}

int dlsched_rx_frame(dlsched_t *q, const rx_frame_t *f)
{
    if (!q || !f)
        return DLSCHED_ERR_ARG;
    if (!f->frame.crc_ok)
        return 0;
    dlsched_uplink_t u;
    uplink_from_rx(&u, f, &f->frame.msg, f->auth);
    /* With a remote core the first frame opens the request at once: the core answers
     * after the frames of every station are in, long before the message is assembled,
     * and its central anti-replay check stands in for ours. */
    return uplink(q, &u, q->cfg.remote_answers);
}

int dlsched_rx_message(dlsched_t *q, const rx_message_t *m)
{
    if (!q || !m)
        return DLSCHED_ERR_ARG;
    int best = 0;
    for (int i = 0; i < m->nframes && i < RX_MAX_REPLICAS; i++) {
        dlsched_uplink_t u;
        uplink_from_rx(&u, &m->frames[i], &m->msg, m->auth);
        int rc = dlsched_uplink(q, &u);
        if (rc > best)
            best = rc;
    }
    return best;
}

/* Commit time of a READY request. */
static double commit_time(const dlsched_t *q, const request_t *r)
{
    double t = r->late_answer ? fmax(r->t_plan, r->answer_t + q->cfg.tx_lead_s) : r->t_plan;
    return t - q->cfg.tx_lead_s;
}

/* Commits every READY request due at q->now (every one when at_end), in order of commit
 * time, so that slots are given out the same way whatever the tick granularity. */
static void commit_due(dlsched_t *q, bool at_end)
{
    for (;;) {
        request_t *next = NULL;
        for (size_t i = 0; i < q->nrq; i++) {
            request_t *r = &q->rq[i];
            if (r->state == RQ_READY && (at_end || commit_time(q, r) <= q->now) &&
                (!next || commit_time(q, r) < commit_time(q, next)))
                next = r;
        }
        if (!next)
            break;
        commit(q, next);
    }
}

static uint64_t events_so_far(const dlsched_t *q)
{
    return q->st.scheduled + q->st.refused + q->st.no_answer + q->st.lost + q->st.tx_failed;
}

/* Does what is due at q->now (everything when at_end). Returns the events emitted. */
static int advance(dlsched_t *q, bool at_end)
{
    uint64_t before = events_so_far(q);
    duty_prune(q);
    for (size_t i = 0; i < q->nrsv;) { /* past reservations no longer block a slot */
        if (q->rsv[i].t_off < q->now)
            q->rsv[i] = q->rsv[--q->nrsv];
        else
            i++;
    }
    commit_due(q, at_end);
    for (size_t i = 0; i < q->nrq; i++) {
        request_t *r = &q->rq[i];
        if (r->state == RQ_AWAIT_ANSWER && (at_end || q->now > r->deadline)) {
            dlsched_event_t ev;
            ev_init(&ev, DLSCHED_EV_NO_ANSWER, r);
            ev.status = at_end ? DLSCHED_ST_END_OF_STREAM : DLSCHED_ST_NO_ANSWER;
            if (at_end)
                snprintf(ev.reason, sizeof ev.reason,
                         "the input ended before an answer arrived; no downlink sent");
            else
                snprintf(ev.reason, sizeof ev.reason,
                         "no answer before the deadline %.3f s; no downlink sent", r->deadline);
            q->st.no_answer++;
            log_notice("Downlink not sent, id: %u, ep_id: %08X, mc: %u, reason: %s", r->id,
                       r->ep_id, r->mc, ev.reason);
            finish(q, r, ev.status);
            emit(q, &ev);
        } else if (r->state == RQ_COMMITTED && (at_end || q->now > r->lost_at)) {
            dlsched_event_t ev;
            ev_init(&ev, DLSCHED_EV_LOST, r);
            ev.status = at_end ? DLSCHED_ST_END_OF_STREAM : DLSCHED_ST_TIMEOUT;
            if (at_end)
                snprintf(ev.reason, sizeof ev.reason,
                         "the input ended before the confirmation window %.3f .. %.3f s was "
                         "observed",
                         r->conf_lo, r->conf_hi);
            else
                snprintf(ev.reason, sizeof ev.reason,
                         "no confirmation with mc %u starting %.3f .. %.3f s", ev.conf_mc,
                         r->conf_lo, r->conf_hi);
            q->st.lost++;
            log_notice("Downlink lost, id: %u, ep_id: %08X, mc: %u, reason: %s", r->id, r->ep_id,
                       r->mc, ev.reason);
            finish(q, r, ev.status);
            emit(q, &ev);
        } else if (r->state == RQ_DONE && !at_end && q->now > r->expire_at) {
            r->state = RQ_FREE;
        }
    }
    return (int)(events_so_far(q) - before);
}

int dlsched_tick(dlsched_t *q, double now_s)
{
    if (!q || !isfinite(now_s))
        return DLSCHED_ERR_ARG;
    pthread_mutex_lock(&q->lock);
    if (now_s > q->now)
        q->now = now_s;
    int n = advance(q, false);
    pthread_mutex_unlock(&q->lock);
    return n;
}

void dlsched_locked(dlsched_t *q, void (*fn)(void *arg), void *arg)
{
    if (!fn)
        return;
    if (q)
        pthread_mutex_lock(&q->lock);
    fn(arg);
    if (q)
        pthread_mutex_unlock(&q->lock);
}

int dlsched_flush(dlsched_t *q)
{
    if (!q)
        return DLSCHED_ERR_ARG;
    pthread_mutex_lock(&q->lock);
    int n = advance(q, true);
    pthread_mutex_unlock(&q->lock);
    return n;
}

int dlsched_flush_commits(dlsched_t *q)
{
    if (!q)
        return DLSCHED_ERR_ARG;
    pthread_mutex_lock(&q->lock);
    uint64_t before = events_so_far(q);
    commit_due(q, true);
    int n = (int)(events_so_far(q) - before);
    pthread_mutex_unlock(&q->lock);
    return n;
}

int dlsched_answer(dlsched_t *q, uint32_t ep_id, uint16_t mc, const uint8_t *payload,
                   dlsched_event_t *planned, char *err, size_t err_len)
{
    return dlsched_answer_auth(q, ep_id, mc, payload, NULL, planned, err, err_len);
}

int dlsched_answer_auth(dlsched_t *q, uint32_t ep_id, uint16_t mc, const uint8_t *payload,
                        const uint8_t *dl_auth, dlsched_event_t *planned, char *err,
                        size_t err_len)
{
    if (!q) {
        errbuf_set(err, err_len, "no downlink scheduler");
        return -1;
    }
    pthread_mutex_lock(&q->lock);
    int rc = -1;
    request_t *r = find_request(q, ep_id, mc);
    if (!r) {
        errbuf_set(err, err_len, "no pending downlink request for ep_id %08X mc %u", ep_id, mc);
    } else if (r->mode != DLSCHED_MODE_CALLBACK) {
        errbuf_set(err, err_len, "device %08X is in %s mode: no answer expected", ep_id,
                   dlsched_mode_name(r->mode));
    } else if (r->state == RQ_AWAIT_ANSWER && q->now > r->deadline) {
        errbuf_set(err, err_len,
                   "late: the deadline was stream time %.3f s, now %.3f s (%.3f s late); no "
                   "downlink will be sent",
                   r->deadline, q->now, q->now - r->deadline);
    } else if (r->state == RQ_AWAIT_ANSWER) {
        if (!payload) {
            dlsched_event_t ev;
            ev_init(&ev, DLSCHED_EV_REFUSED, r);
            ev.status = DLSCHED_ST_DECLINED;
            snprintf(ev.reason, sizeof ev.reason, "the application declined (payload null)");
            q->st.refused++;
            q->st.refused_by[DLSCHED_ST_DECLINED]++;
            finish(q, r, DLSCHED_ST_DECLINED);
            emit(q, &ev);
        } else {
            memcpy(r->payload, payload, DL_PAYLOAD_BYTES);
            r->has_payload = true;
            r->has_dl_auth = dl_auth != NULL;
            if (dl_auth)
                memcpy(r->dl_auth, dl_auth, DL_AUTH_BYTES);
            r->answer_t = q->now;
            r->late_answer = q->now > r->t_plan - q->cfg.tx_lead_s;
            r->state = RQ_READY;
        }
        if (planned) {
            ev_init(planned, DLSCHED_EV_REQUEST, r);
            if (payload)
                ev_planned(q, planned, r);
        }
        q->st.answers_ok++;
        rc = 0;
    } else if (r->state == RQ_DONE && r->final_status == DLSCHED_ST_NO_ANSWER) {
        errbuf_set(err, err_len, "late: the deadline was stream time %.3f s; no downlink was sent",
                   r->deadline);
    } else if (r->state == RQ_DONE && !r->has_payload) {
        errbuf_set(err, err_len, "request for ep_id %08X mc %u is closed (%s)", ep_id, mc,
                   dlsched_status_name(r->final_status));
    } else {
        errbuf_set(err, err_len, "request for ep_id %08X mc %u was already answered", ep_id, mc);
    }
    if (rc != 0)
        q->st.answers_rejected++;
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void dlsched_count_rejected(dlsched_t *q)
{
    if (!q)
        return;
    pthread_mutex_lock(&q->lock);
    q->st.answers_rejected++;
    pthread_mutex_unlock(&q->lock);
}

int dlsched_tx_done(dlsched_t *q, uint32_t id, bool ok, const char *error, const char *file)
{
    if (!q)
        return DLSCHED_ERR_ARG;
    pthread_mutex_lock(&q->lock);
    request_t *r = NULL;
    for (size_t i = 0; i < q->nrq && !r; i++)
        if (q->rq[i].state != RQ_FREE && q->rq[i].id == id && q->rq[i].committed)
            r = &q->rq[i];
    if (!r || r->sent_reported) {
        pthread_mutex_unlock(&q->lock);
        return DLSCHED_ERR_ARG;
    }
    r->sent_reported = true;
    dlsched_event_t ev;
    ev_init(&ev, ok ? DLSCHED_EV_SENT : DLSCHED_EV_TX_FAILED, r);
    if (file)
        snprintf(ev.file, sizeof ev.file, "%s", file);
    if (ok) {
        q->st.sent++;
    } else {
        ev.status = DLSCHED_ST_TX_ERROR;
        snprintf(ev.reason, sizeof ev.reason, "%s", error && *error ? error : "transmit failed");
        ev.has_conf = false;
        q->st.tx_failed++;
        duty_refund(q, r->id);
        device_t *d = find_device(q, r->ep_id, false);
        if (d)
            quota_refund(d, r->id);
        r->committed = false;
        log_warn("Downlink not transmitted, id: %u, ep_id: %08X, mc: %u, reason: %s", r->id,
                 r->ep_id, r->mc, ev.reason);
        if (r->state == RQ_COMMITTED)
            finish(q, r, DLSCHED_ST_TX_ERROR);
    }
    emit(q, &ev);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

int dlsched_reserve(dlsched_t *q, double t_on_s, double dur_s, double freq_lo_hz,
                    double freq_hi_hz, double *t_on_out, char *why, size_t why_len)
{
    if (!q || !isfinite(t_on_s) || !(dur_s > 0 && dur_s <= 60) || !isfinite(freq_lo_hz) ||
        !isfinite(freq_hi_hz) || freq_hi_hz < freq_lo_hz)
        return DLSCHED_ERR_ARG;
    pthread_mutex_lock(&q->lock);
    int rc = 0;
    /* The first start whose whole burst (plus the guard) is clear of committed downlinks
     * (ramps included) and of other reservations. */
    double guard = q->cfg.tx_guard_s, t = t_on_s;
    for (bool moved = true; moved;) {
        moved = false;
        for (size_t i = 0; i < q->nrq; i++) {
            const request_t *o = &q->rq[i];
            if (o->state == RQ_FREE || !o->committed)
                continue;
            double b0 = o->t_start - DLSCHED_RAMP_S, b1 = o->t_end + DLSCHED_RAMP_S;
            if (t + dur_s + guard > b0 && t - guard < b1) {
                t = b1 + guard;
                moved = true;
            }
        }
        for (size_t i = 0; i < q->nrsv; i++) {
            if (t + dur_s + guard > q->rsv[i].t_on && t - guard < q->rsv[i].t_off) {
                t = q->rsv[i].t_off + guard;
                moved = true;
            }
        }
    }
    bool in_band = freq_hi_hz > q->cfg.duty_band_lo_hz && freq_lo_hz < q->cfg.duty_band_hi_hz;
    if (q->nrsv >= MAX_RESERVATIONS) {
        errbuf_set(why, why_len, "transmitter reservations full (%d pending)", MAX_RESERVATIONS);
        rc = 1;
    } else if (in_band && q->duty_limited) {
        double peak = duty_peak_with(q, t, t + dur_s);
        if (peak > q->duty_budget_s + 1e-9 || q->nduty >= q->duty_cap) {
            errbuf_set(why, why_len,
                       "duty cycle: %.3f s on air in %.0f s would exceed the budget of %.3f s",
                       peak, q->cfg.duty_window_s, q->duty_budget_s);
            rc = 1;
        }
    }
    if (rc == 0) {
        q->rsv[q->nrsv++] = (reservation_t){t, t + dur_s};
        if (in_band && q->duty_limited) {
            q->duty[q->nduty].t_on = t;
            q->duty[q->nduty].t_off = t + dur_s;
            q->duty[q->nduty++].id = 0;
        }
        q->st.reservations++;
        if (t_on_out)
            *t_on_out = t;
    } else {
        q->st.reservations_refused++;
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void dlsched_get_stats(dlsched_t *q, dlsched_stats_t *out)
{
    if (!q || !out)
        return;
    pthread_mutex_lock(&q->lock);
    *out = q->st;
    pthread_mutex_unlock(&q->lock);
}
