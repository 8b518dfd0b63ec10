/* beaconplan: Monarch beacon slots and their outcome (seeds/001). Licence: MIT. */
#include "beaconplan.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "monarch.h"
#include "prng.h"
#include "publisher.h"

struct beaconplan {
    beaconplan_config_t cfg;
    prng_t rng;
    bool planned;
    double slot;   /* slot start: UTC seconds live, stream seconds in a replay */
    double jitter; /* random offset of the planned beacon in its slot, s */
    uint32_t id;   /* beacons numbered from 1 */
    pthread_mutex_t lock;
    beaconplan_stats_t st;
};

beaconplan_t *beaconplan_create(const beaconplan_config_t *cfg)
{
    if (!cfg || !cfg->tx || !isfinite(cfg->lead_s) || !isfinite(cfg->freq_hz) ||
        !isfinite(cfg->tx_ppm) || !isfinite(cfg->df1_hz) || !isfinite(cfg->df2_hz))
        return NULL;
    beaconplan_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->cfg = *cfg;
    prng_seed(&p->rng, cfg->seed, 0);
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

void beaconplan_destroy(beaconplan_t *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static void report(beaconplan_t *p, uint32_t id, double t_start_s, const char *status,
                   const char *reason, const char *file)
{
    evjson_beacon_t b = {
        .id = id,
        .t_start_s = t_start_s,
        .status = status,
        .reason = reason,
        .file = file,
        .freq_hz = p->cfg.freq_hz,
        .tx_freq_hz = p->cfg.freq_hz / (1.0 + p->cfg.tx_ppm * 1e-6),
        .df1_hz = p->cfg.df1_hz,
        .df2_hz = p->cfg.df2_hz,
    };
    delivery_beacon(p->cfg.out, &b);
}

/* Logs when the next beacon is due: UTC live (slot + offset), stream time in a replay. */
static void log_plan(const beaconplan_t *p)
{
    char when[40];
    if (p->cfg.live)
        publisher_time_utc(p->slot + p->jitter, when, sizeof when);
    else
        snprintf(when, sizeof when, "stream %.3f s", p->slot + p->jitter);
    log_info("Monarch beacon planned, id: %u, at: %s, slot_offset_s: %.3f", p->id + 1, when,
             p->jitter);
}

/* Takes a transmitter slot near t and submits the beacon there. Returns 0 (submitted,
 * *t moved to the slot's start) or the refusal: 1 duty cycle, else an error; why says it. */
static int submit(beaconplan_t *p, uint32_t id, double *t, char *why, size_t why_len)
{
    int rc = 0;
    if (p->cfg.sched) {
        /* The 12 carriers reach 6 dF from the centre, plus the ramps' spread. */
        double half = 6.0 * fmax(p->cfg.df1_hz, p->cfg.df2_hz) + 500.0;
        rc = dlsched_reserve(p->cfg.sched, *t, MONARCH_BEACON_S, p->cfg.freq_hz - half,
                             p->cfg.freq_hz + half, t, why, why_len);
        if (rc < 0)
            snprintf(why, why_len, "no transmitter slot: %s", dlsched_strerror(rc));
    }
    if (rc == 0) {
        txsink_beacon_t b = {.id = id, .freq_hz = p->cfg.freq_hz, .t_start_s = *t};
        rc = txsink_submit_beacon(p->cfg.tx, &b);
        if (rc != 0)
            snprintf(why, why_len, "transmitter refused the beacon: %s", txsink_strerror(rc));
    }
    return rc;
}

int beaconplan_tick(beaconplan_t *p, double now_s, double anchor_t_s, double anchor_unix_s)
{
    if (!p)
        return 0;
    bool utc = p->cfg.live;
    if (utc && !(anchor_unix_s > 0))
        return 0; /* no clock yet */
    double lead = p->cfg.lead_s;
    double here = utc ? anchor_unix_s + (now_s - anchor_t_s) : now_s; /* in slot units */
    if (!p->planned) {
        /* Live, the first slot leaves the transmitter its lead time; a replay starts with
         * the slot at 0. */
        p->slot = utc ? ceil((here + lead) / MONARCH_PERIOD_S) * MONARCH_PERIOD_S
                      : floor(here / MONARCH_PERIOD_S) * MONARCH_PERIOD_S;
        p->jitter = prng_uniform(&p->rng) * MONARCH_JITTER_S;
        p->planned = true;
        log_plan(p);
    }
    int submitted = 0;
    for (;;) {
        double target = p->slot + p->jitter;
        double t = utc ? anchor_t_s + (target - anchor_unix_s) : target; /* stream time */
        if (now_s < t - lead)
            break;
        uint32_t id = ++p->id;
        char why[256] = "";
        int rc = submit(p, id, &t, why, sizeof why);
        if (rc == 0) {
            submitted++;
        } else {
            pthread_mutex_lock(&p->lock);
            p->st.refused++;
            pthread_mutex_unlock(&p->lock);
            log_warn("Monarch beacon not sent, id: %u, reason: %s", id, why);
            report(p, id, t, rc == 1 ? "duty_cycle" : "tx_error", why, NULL);
        }
        p->slot += MONARCH_PERIOD_S;
        p->jitter = prng_uniform(&p->rng) * MONARCH_JITTER_S;
        log_plan(p);
    }
    return submitted;
}

void beaconplan_tx_result(beaconplan_t *p, const txsink_result_t *r)
{
    if (!p || !r)
        return;
    pthread_mutex_lock(&p->lock);
    if (r->status == 0)
        p->st.sent++;
    else
        p->st.failed++;
    pthread_mutex_unlock(&p->lock);
    report(p, r->id, r->t_start_s, r->status == 0 ? "ok" : "tx_error", r->error, r->path);
}

void beaconplan_get_stats(beaconplan_t *p, beaconplan_stats_t *st)
{
    memset(st, 0, sizeof *st);
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    *st = p->st;
    pthread_mutex_unlock(&p->lock);
}
