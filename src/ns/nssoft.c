/* nssoft: soft combining across stations (nssoft.h). Licence: MIT. */
#include "nssoft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ulcode.h"
#include "uldecode.h"

typedef struct {
    bool used;
    bool decoded;           /* member of a decoded group: frame holds the result */
    double arrived_s;       /* core time of the push (window) */
    nssoft_member_t member; /* station, burst time, radio fields */
    size_t nsoft;
    float soft[RX_SOFT_MAX];
    size_t nhyp; /* the likeliest FTs of this station's soft values alone */
    ul_ft_hyp_t hyp[RX_SOFT_FT_HYPS];
    ul_frame_t frame;
} entry_t;

/* One burst as several stations saw it: a seed soft frame and the best-agreeing pending,
 * undecoded soft frame of each other station; their summed LLRs and the FT read from them. */
typedef struct {
    entry_t *m[NSSOFT_MAX_MEMBERS];
    size_t n;
    float sum[RX_SOFT_MAX];
    size_t nsum;
    bool ft_ok; /* the summed FT is within UL_FT_DEFAULT_MAX_DISTANCE of a known one */
    int rank;
    size_t container_len;
    bool control;
} burst_t;

#define NSSOFT_SIBLINGS 3 /* sibling bursts per rank tried */
/* Candidate sibling bursts gathered (summed over their stations) per arriving soft frame:
 * bounds the work of one push to O(NSSOFT_MAX_GATHERS x max_pending) in a crowded cell. */
#define NSSOFT_MAX_GATHERS 32

struct nssoft {
    nssoft_config_t cfg;
    nssoft_decoded_fn fn;
    void *user;
    entry_t *e;
    nssoft_stats_t st;
    burst_t cur, sib[3 * NSSOFT_SIBLINGS]; /* scratch of nssoft_push */
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
    if (c.chase_trials == 0)
        c.chase_trials = ULDECODE_CHASE_DEFAULT_TRIALS;
    if (c.chase_trials > ULDECODE_CHASE_MAX_TRIALS)
        c.chase_trials = ULDECODE_CHASE_MAX_TRIALS;
    if (!c.key_of)
        c.chase_trials = -1;
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

/* Fraction of the bits both hold (with a sign) on which the sign decisions agree; 0 when
 * they share fewer than NSSOFT_MIN_COMMON_BITS (a burst cut short after its FT). */
#define NSSOFT_MIN_COMMON_BITS 32
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
    return both >= NSSOFT_MIN_COMMON_BITS ? (double)same / (double)both : 0.0;
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

/* Fills b from seed; *decoded: the best-agreeing soft frame of a burst decoded before
 * (NULL when none). */
static void gather(nssoft_t *s, entry_t *seed, burst_t *b, entry_t **decoded)
{
    double agree[NSSOFT_MAX_MEMBERS], decoded_agree = 0.0;
    b->m[0] = seed;
    b->n = 1;
    if (decoded)
        *decoded = NULL;
    for (size_t i = 0; i < s->cfg.max_pending; i++) {
        entry_t *o = &s->e[i];
        if (!same_burst(s, seed, o))
            continue;
        double a = agreement(seed, o);
        if (a < NSSOFT_MIN_AGREEMENT)
            continue;
        if (o->decoded) {
            if (decoded && a > decoded_agree) {
                *decoded = o;
                decoded_agree = a;
            }
            continue;
        }
        size_t k = 1;
        while (k < b->n && strcmp(b->m[k]->member.station_id, o->member.station_id) != 0)
            k++;
        if (k < b->n) {
            if (a > agree[k]) {
                b->m[k] = o;
                agree[k] = a;
            }
        } else if (b->n < NSSOFT_MAX_MEMBERS) {
            b->m[b->n] = o;
            agree[b->n++] = a;
        }
    }
    b->nsum = 0;
    for (size_t k = 0; k < b->n; k++) {
        const entry_t *o = b->m[k];
        for (size_t i = 0; i < o->nsoft; i++)
            b->sum[i] = (i < b->nsum ? b->sum[i] : 0.0f) + o->soft[i];
        if (o->nsoft > b->nsum)
            b->nsum = o->nsoft;
    }
    b->ft_ok = ul_ft_match_soft(b->sum, UL_FT_DEFAULT_MAX_DISTANCE, NULL, &b->container_len,
                                &b->control, &b->rank) >= 0 &&
               b->nsum >= UL_FT_BITS + ul_body_bits(b->container_len);
}

static bool in_burst(const burst_t *b, const entry_t *e)
{
    for (size_t k = 0; k < b->n; k++) {
        if (b->m[k] == e)
            return true;
    }
    return false;
}

/* The confident bits (|LLR| >= NSSOFT_CONFIDENT_LLR: under 1 % wrong each) of soft
 * confirm frame re-encoded for rank: at least NSSOFT_MIN_CONFIDENT of them, at most 1 in 50 (or 1)
 * disagreeing. A plain agreement fraction cannot tell two rank-1 frames of devices with
 * neighbouring IDs and the same payload apart: they differ only in a few ID and MC bits,
 * UL-AUTH and CRC, and agree on 70-85 % of their bits, as the same frame does at 0-3 dB. */
#define NSSOFT_CONFIDENT_LLR 4.6f
#define NSSOFT_MIN_CONFIDENT 24
static bool confirms(const float *soft, size_t nsoft, int rank, const ul_frame_t *frame)
{
    ul_frame_t f = *frame;
    f.rank = rank;
    uint8_t air[4 + UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES];
    int len = ul_frame_air_bits(&f, air, sizeof air);
    if (len < 0)
        return false;
    size_t nbits = (size_t)len * 8 - UL_PREAMBLE_BITS, confident = 0, wrong = 0;
    if (nbits > nsoft)
        nbits = nsoft;
    for (size_t i = 0; i < nbits; i++) {
        if (fabsf(soft[i]) < NSSOFT_CONFIDENT_LLR)
            continue;
        confident++;
        wrong += (soft[i] > 0.0f) != (ul_bit_get(air, i + UL_PREAMBLE_BITS) != 0);
    }
    size_t allowed = confident / 50 > 1 ? confident / 50 : 1;
    return confident >= NSSOFT_MIN_CONFIDENT && wrong <= allowed;
}

/* Reports frame with the stations of the bursts' soft frames that confirm it on their own
 * (each then marked decoded, with the frame as its rank sent it); when none does (all
 * weak), with all of them. A soft frame that was summed but does not confirm the frame
 * may be another device's burst that happened to agree (neighbouring IDs, same payload):
 * it is not credited and stays pending. */
static void report(nssoft_t *s, const ul_frame_t *frame, burst_t *const *bursts, size_t nb,
                   bool late)
{
    nssoft_result_t r;
    memset(&r, 0, sizeof r);
    r.frame = *frame;
    size_t summed = 0, confirmed = 0;
    bool ok[3][NSSOFT_MAX_MEMBERS];
    for (size_t j = 0; j < nb; j++) {
        for (size_t k = 0; k < bursts[j]->n; k++) {
            const entry_t *e = bursts[j]->m[k];
            ok[j][k] = confirms(e->soft, e->nsoft, bursts[j]->rank, frame);
            confirmed += ok[j][k];
            summed++;
        }
    }
    for (size_t j = 0; j < nb; j++) {
        for (size_t k = 0; k < bursts[j]->n; k++) {
            entry_t *e = bursts[j]->m[k];
            if (confirmed && !ok[j][k])
                continue;
            e->decoded = true;
            e->frame = *frame;
            e->frame.rank = bursts[j]->rank;
            e->member.rank = bursts[j]->rank;
            if (r.nmembers < NSSOFT_MAX_MEMBERS)
                r.members[r.nmembers++] = e->member;
        }
    }
    r.ncombined = summed;
    if (late)
        s->st.late_members += r.nmembers;
    else
        s->st.frames_decoded++;
    s->fn(&r, s->user);
}

/* b's sign decisions agree with frame re-encoded for b's rank on >= min_agreement of the
 * bits (an unrelated burst agrees on ~50 %). */
static bool consistent(const burst_t *b, const ul_frame_t *frame, double min_agreement)
{
    ul_frame_t f = *frame;
    f.rank = b->rank;
    uint8_t air[4 + UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES];
    int len = ul_frame_air_bits(&f, air, sizeof air);
    if (len < 0)
        return false;
    size_t nbits = (size_t)len * 8 - UL_PREAMBLE_BITS, same = 0;
    if (nbits > b->nsum)
        nbits = b->nsum;
    for (size_t i = 0; i < nbits; i++)
        same += (b->sum[i] > 0.0f) == (ul_bit_get(air, i + UL_PREAMBLE_BITS) != 0);
    return nbits > 0 && (double)same >= min_agreement * (double)nbits;
}

/* A burst of rank r at t could be a replica of one of rank rb at tb: within T_LF, later
 * ranks later (within the clock tolerance). */
#define NSSOFT_T_LF_S 8.0
static bool replica_timing(const nssoft_t *s, int r, double t, int rb, double tb)
{
    double dt = t - tb;
    return r != rb && fabs(dt) <= NSSOFT_T_LF_S + s->cfg.time_tol_s &&
           (r > rb ? dt : -dt) >= -s->cfg.time_tol_s;
}

/* Is b a replica of a message decoded before (confirms)? Then b's stations are reported
 * with it; nothing is decoded here, so no CRC vouches for it. */
static bool late_replica(nssoft_t *s, burst_t *b)
{
    for (size_t i = 0; i < s->cfg.max_pending; i++) {
        const entry_t *e = &s->e[i];
        if (!e->used || !e->decoded || e->member.baud != b->m[0]->member.baud ||
            e->frame.container_len != b->container_len || e->frame.control != b->control ||
            !replica_timing(s, b->rank, b->m[0]->member.t_s, e->frame.rank, e->member.t_s) ||
            !confirms(b->sum, b->nsum, b->rank, &e->frame))
            continue;
        ul_frame_t f = e->frame;
        report(s, &f, &b, 1, true);
        return true;
    }
    return false;
}

/* Replicas of b's message among the pending soft frames: other bursts of the same baud,
 * container size and control flag, of another rank, on air in rank order within T_LF
 * (8 s, Tables 3-4 and 4-2: every frame of a message) of b. At most NSSOFT_SIBLINGS per
 * rank. */
static size_t siblings(nssoft_t *s, const burst_t *b, burst_t *out, size_t cap)
{
    /* candidates: soft frames whose own FT reads as another rank of b's frame type (the
     * likeliest FT, or another of the three within 2 bits); the NSSOFT_MAX_GATHERS with
     * the closest FTs are summed over their stations (noise matches a given frame type's
     * likeliest FT 1 time in 9, within 2 bits 1 time in 90) */
    entry_t *cand[NSSOFT_MAX_GATHERS];
    double cand_key[NSSOFT_MAX_GATHERS];
    size_t nc = 0;
    const entry_t *b0 = b->m[0];
    for (size_t i = 0; i < s->cfg.max_pending; i++) {
        entry_t *o = &s->e[i];
        if (!o->used || o->decoded || o->member.baud != b0->member.baud ||
            fabs(o->member.t_s - b0->member.t_s) > NSSOFT_T_LF_S + s->cfg.time_tol_s ||
            in_burst(b, o))
            continue;
        int dist = -1;
        for (size_t h = 0; h < o->nhyp && dist < 0; h++) {
            const ul_ft_hyp_t *y = &o->hyp[h];
            if (y->container_bytes == b->container_len && y->control == b->control &&
                (h == 0 || y->distance <= UL_FT_DEFAULT_MAX_DISTANCE) &&
                replica_timing(s, y->rank, o->member.t_s, b->rank, b0->member.t_s))
                dist = y->distance;
        }
        if (dist < 0)
            continue;
        /* closest FT first, then closest in time (replicas follow each other within
         * 2 s in RC1, Table 3-4) */
        double key = dist * 100.0 + fabs(o->member.t_s - b0->member.t_s);
        size_t k = nc < NSSOFT_MAX_GATHERS ? nc++ : NSSOFT_MAX_GATHERS;
        while (k > 0 && cand_key[k - 1] > key) {
            if (k < NSSOFT_MAX_GATHERS) {
                cand[k] = cand[k - 1];
                cand_key[k] = cand_key[k - 1];
            }
            k--;
        }
        if (k < NSSOFT_MAX_GATHERS) {
            cand[k] = o;
            cand_key[k] = key;
        }
    }
    size_t n = 0, per_rank[4] = {0};
    for (size_t j = 0; j < nc && n < cap; j++) {
        entry_t *o = cand[j];
        bool seen = false;
        for (size_t q = 0; q < n && !seen; q++)
            seen = in_burst(&out[q], o);
        if (seen)
            continue;
        burst_t *c = &out[n];
        gather(s, o, c, NULL);
        if (!c->ft_ok || c->container_len != b->container_len || c->control != b->control ||
            !replica_timing(s, c->rank, o->member.t_s, b->rank, b0->member.t_s) ||
            per_rank[c->rank] == NSSOFT_SIBLINGS)
            continue;
        per_rank[c->rank]++;
        n++;
    }
    return n;
}

/* Joint decoding of b with its sibling replicas (one per other rank, or none), at most
 * NSSOFT_JOINT_ATTEMPTS groups. Returns true when a frame was reported. */
static bool decode_replicas(nssoft_t *s, burst_t *b)
{
    burst_t *sib = s->sib;
    size_t ns = siblings(s, b, sib, 3 * NSSOFT_SIBLINGS);
    if (ns == 0)
        return false;
    /* the other two ranks, each with its candidates and "none" */
    int ra = b->rank == 1 ? 2 : 1, rb = b->rank == 3 ? 2 : 3;
    burst_t *ca[NSSOFT_SIBLINGS + 1] = {NULL}, *cb[NSSOFT_SIBLINGS + 1] = {NULL};
    size_t na = 1, nb = 1;
    for (size_t j = 0; j < ns; j++) {
        if (sib[j].rank == ra)
            ca[na++] = &sib[j];
        else if (sib[j].rank == rb)
            cb[nb++] = &sib[j];
    }
    size_t body = ul_body_bits(b->container_len);
    int attempts = 0;
    /* groups of three replicas first (the most soft values), then pairs */
    for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < na; i++) {
        for (size_t k = 0; k < nb; k++) {
            bool three = ca[i] && cb[k];
            if ((!ca[i] && !cb[k]) || three != (pass == 0) || attempts == NSSOFT_JOINT_ATTEMPTS)
                continue;
            attempts++;
            burst_t *g[3] = {b, ca[i], cb[k]};
            const float *soft[3] = {NULL, NULL, NULL};
            for (int j = 0; j < 3; j++) {
                if (g[j] && g[j]->nsum >= UL_FT_BITS + body)
                    soft[g[j]->rank - 1] = g[j]->sum + UL_FT_BITS;
            }
            s->st.groups_tried++;
            ul_frame_t f;
            if (ul_frame_decode_joint(soft, b->container_len, b->control, &f) != 0)
                continue;
            burst_t *members[3];
            size_t nm = 0;
            bool ok = true;
            for (int j = 0; j < 3; j++) {
                if (g[j]) {
                    ok = ok && consistent(g[j], &f, NSSOFT_MIN_AGREEMENT);
                    members[nm++] = g[j];
                }
            }
            if (!ok)
                continue;
            s->st.frames_joint++;
            report(s, &f, members, nm, false);
            return true;
        }
    }
    return false;
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
    n->nhyp = ul_ft_rank_soft(n->soft, n->hyp, RX_SOFT_FT_HYPS);

    burst_t *b = &s->cur;
    entry_t *decoded;
    gather(s, n, b, &decoded);
    /* another station's copy of a burst decoded before, when its own confident bits say so
     * (a burst of a device with a neighbouring ID can agree on 70 % with it) */
    if (decoded && confirms(n->soft, n->nsoft, decoded->frame.rank, &decoded->frame)) {
        nssoft_result_t r;
        memset(&r, 0, sizeof r);
        n->decoded = true;
        n->frame = decoded->frame;
        n->member.rank = decoded->frame.rank;
        s->st.late_members++;
        r.frame = decoded->frame;
        r.members[0] = n->member;
        r.nmembers = 1;
        r.ncombined = 1;
        s->fn(&r, s->user);
        return 1;
    }
    if (b->ft_ok && late_replica(s, b))
        return 1;
    /* the burst alone, from the sum of its stations; a lone station's only for the chase
       decoder (its plain decoding failed at the station) */
    bool chase = s->cfg.chase_trials > 0;
    if (b->n >= 2 || chase) {
        s->st.groups_tried += b->n >= 2;
        uldecode_result_t res;
        uldecode_frame(b->sum, b->nsum, UL_FT_DEFAULT_MAX_DISTANCE, &res);
        if (chase && res.status == ULDEC_REJECT_CRC &&
            uldecode_chase_with(&res, s->cfg.key_of, s->cfg.key_user, s->cfg.chase_trials) > 0)
            s->st.frames_corrected++;
        if (res.status == ULDEC_OK) {
            b->rank = res.frame.rank;
            report(s, &res.frame, &b, 1, false);
            return 1;
        }
    }
    /* with its replicas, from whichever stations heard them */
    if (b->ft_ok && decode_replicas(s, b))
        return 1;
    return 0;
}

void nssoft_get_stats(const nssoft_t *s, nssoft_stats_t *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (s)
        *st = s->st;
}
