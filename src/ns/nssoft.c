/* nssoft: soft combining across stations (nssoft.h). Licence: MIT. */
#include "nssoft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uldecode.h"

typedef struct {
    bool used;
    bool decoded;           /* member of a decoded group: frame holds the result */
    double arrived_s;       /* core time of the push (window) */
    nssoft_member_t member; /* station, burst time, radio fields */
    size_t nsoft;
    float soft[RX_SOFT_MAX];
    ul_frame_t frame;
} entry_t;

struct nssoft {
    nssoft_config_t cfg;
    nssoft_decoded_fn fn;
    void *user;
    entry_t *e;
    nssoft_stats_t st;
};

nssoft_t *nssoft_create(const nssoft_config_t *cfg, nssoft_decoded_fn fn, void *user)
{
    nssoft_config_t c = cfg ? *cfg : (nssoft_config_t){0};
    if (!fn || !(c.window_s >= 0) || !(c.time_tol_s >= 0) || !(c.freq_tol_hz >= 0) ||
        !isfinite(c.window_s) || !isfinite(c.time_tol_s) || !isfinite(c.freq_tol_hz))
        return NULL;
    if (c.window_s == 0)
        c.window_s = NSSOFT_DEFAULT_WINDOW_S;
    if (c.time_tol_s == 0)
        c.time_tol_s = NSSOFT_DEFAULT_TIME_TOL_S;
    if (c.freq_tol_hz == 0)
        c.freq_tol_hz = NSSOFT_DEFAULT_FREQ_TOL_HZ;
    if (c.max_pending == 0)
        c.max_pending = NSSOFT_DEFAULT_MAX_PENDING;
    nssoft_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->e = calloc(c.max_pending, sizeof *s->e);
    if (!s->e) {
        free(s);
        return NULL;
    }
    s->cfg = c;
    s->fn = fn;
    s->user = user;
    return s;
}

void nssoft_destroy(nssoft_t *s)
{
    if (!s)
        return;
    free(s->e);
    free(s);
}

void nssoft_expire(nssoft_t *s, double now)
{
    if (!s || !isfinite(now))
        return;
    for (size_t i = 0; i < s->cfg.max_pending; i++) {
        entry_t *e = &s->e[i];
        if (e->used && now - e->arrived_s > s->cfg.window_s) {
            if (!e->decoded)
                s->st.expired++;
            e->used = false;
        }
    }
}

/* A free entry, else the oldest one (dropped, counted when it was never decoded). */
static entry_t *take_entry(nssoft_t *s)
{
    entry_t *oldest = NULL;
    for (size_t i = 0; i < s->cfg.max_pending; i++) {
        entry_t *e = &s->e[i];
        if (!e->used)
            return e;
        if (!oldest || e->arrived_s < oldest->arrived_s)
            oldest = e;
    }
    if (!oldest->decoded)
        s->st.dropped++;
    return oldest;
}

/* Fraction of the bits both hold (with a sign) on which the sign decisions agree. */
static double agreement(const entry_t *a, const entry_t *b)
{
    size_t n = a->nsoft < b->nsoft ? a->nsoft : b->nsoft;
    size_t same = 0, both = 0;
    for (size_t i = 0; i < n; i++) {
        if (a->soft[i] == 0.0f || b->soft[i] == 0.0f)
            continue;
        both++;
        same += (a->soft[i] > 0.0f) == (b->soft[i] > 0.0f);
    }
    return both ? (double)same / (double)both : 0.0;
}

/* b could be the burst a is: another station, same baud, times and carriers close. */
static bool same_burst(const nssoft_t *s, const entry_t *a, const entry_t *b)
{
    return b->used && b != a && strcmp(a->member.station_id, b->member.station_id) != 0 &&
           a->member.baud == b->member.baud &&
           fabs(a->member.t_s - b->member.t_s) <= s->cfg.time_tol_s &&
           fabs(a->member.freq_hz - b->member.freq_hz) <= s->cfg.freq_tol_hz;
}

static bool valid_input(const char *station_id, const rx_softframe_t *sf, double t_s,
                        double now)
{
    if (!station_id || !sf || !*station_id || strlen(station_id) >= NSSOFT_STATION_MAX)
        return false;
    if ((sf->baud != 100 && sf->baud != 600) || sf->nsoft < UL_FT_BITS ||
        sf->nsoft > RX_SOFT_MAX || !isfinite(t_s) || !isfinite(now) || !isfinite(sf->freq_hz))
        return false;
    for (size_t i = 0; i < sf->nsoft; i++) {
        if (!isfinite(sf->soft[i]))
            return false;
    }
    return true;
}

int nssoft_push(nssoft_t *s, const char *station_id, const rx_softframe_t *sf, double t_s,
                double now)
{
    if (!s)
        return -1;
    if (!valid_input(station_id, sf, t_s, now)) {
        s->st.softframes_bad++;
        return -1;
    }
    nssoft_expire(s, now);
    s->st.softframes_in++;
    entry_t *n = take_entry(s);
    memset(n, 0, sizeof *n);
    n->used = true;
    n->arrived_s = now;
    snprintf(n->member.station_id, sizeof n->member.station_id, "%s", station_id);
    n->member.t_s = t_s;
    n->member.snr_db = sf->snr_db;
    n->member.rssi_dbfs = sf->rssi_dbfs;
    n->member.freq_hz = sf->freq_hz;
    n->member.baud = sf->baud;
    n->nsoft = sf->nsoft;
    memcpy(n->soft, sf->soft, sf->nsoft * sizeof *n->soft);

    /* the best-agreeing soft frame of each other station; a decoded burst wins outright */
    entry_t *pick[NSSOFT_MAX_MEMBERS];
    double pick_agree[NSSOFT_MAX_MEMBERS];
    size_t npick = 0;
    entry_t *decoded = NULL;
    double decoded_agree = 0.0;
    for (size_t i = 0; i < s->cfg.max_pending; i++) {
        entry_t *o = &s->e[i];
        if (!same_burst(s, n, o))
            continue;
        double a = agreement(n, o);
        if (a < NSSOFT_MIN_AGREEMENT)
            continue;
        if (o->decoded) {
            if (a > decoded_agree) {
                decoded = o;
                decoded_agree = a;
            }
            continue;
        }
        size_t k = 0;
        while (k < npick && strcmp(pick[k]->member.station_id, o->member.station_id) != 0)
            k++;
        if (k < npick) {
            if (a > pick_agree[k]) {
                pick[k] = o;
                pick_agree[k] = a;
            }
        } else if (npick < NSSOFT_MAX_MEMBERS - 1) {
            pick[npick] = o;
            pick_agree[npick++] = a;
        }
    }
    nssoft_result_t r;
    memset(&r, 0, sizeof r);
    if (decoded) {
        n->decoded = true;
        n->frame = decoded->frame;
        s->st.late_members++;
        r.frame = decoded->frame;
        r.members[0] = n->member;
        r.nmembers = 1;
        r.ncombined = 1;
        s->fn(&r, s->user);
        return 1;
    }
    if (npick == 0)
        return 0;

    float sum[RX_SOFT_MAX];
    size_t nsum = n->nsoft;
    memcpy(sum, n->soft, n->nsoft * sizeof *sum);
    for (size_t k = 0; k < npick; k++) {
        const entry_t *o = pick[k];
        for (size_t i = 0; i < o->nsoft; i++)
            sum[i] = (i < nsum ? sum[i] : 0.0f) + o->soft[i];
        if (o->nsoft > nsum)
            nsum = o->nsoft;
    }
    s->st.groups_tried++;
    uldecode_result_t res;
    if (uldecode_frame(sum, nsum, UL_FT_DEFAULT_MAX_DISTANCE, &res) != 0 ||
        res.status != ULDEC_OK)
        return 0;
    s->st.frames_decoded++;
    r.frame = res.frame;
    r.members[r.nmembers++] = n->member;
    n->decoded = true;
    n->frame = res.frame;
    for (size_t k = 0; k < npick; k++) {
        pick[k]->decoded = true;
        pick[k]->frame = res.frame;
        r.members[r.nmembers++] = pick[k]->member;
    }
    r.ncombined = r.nmembers;
    s->fn(&r, s->user);
    return 1;
}

void nssoft_get_stats(const nssoft_t *s, nssoft_stats_t *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (s)
        *st = s->st;
}
