/* assembler: replica grouping and joint (soft-combined) decoding of uplink messages
 * (see include/assembler.h). Licence: MIT. */
#include "assembler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "uldecode.h"
#include "ulframe.h"
#include "uljoint.h"

#define DEFAULT_LATENCY_S 1.0
#define DEFAULT_MAX_PENDING 256
#define DEFAULT_JOINT_ATTEMPTS 16
#define DEFAULT_MIN_ORPHAN_SNR_DB -1.0
#define MAX_CANDIDATES 8 /* orphans considered per other rank when forming groups */
/* Unread bursts (assembler_push_unread): candidates tried per missing rank, orphans
 * re-examined when one arrives. Near the noise one burst can arrive as several readings
 * (rx reads a weak burst's runner-up syncs too), and every one of them takes a place:
 * with 2 candidates, 2 orphans and 3 decodings the right combination was often never
 * tried (benchmarks.md, "Runner-up syncs"). */
#define UNREAD_PER_RANK 3
#define UNREAD_ORPHANS 16
/* Least header match (ul_joint_align_match) of an unread burst in the rank it would take:
 * about 0.5 for a burst at 0 dB Eb/N0, 0.38 at -2 dB, ~0.03-0.1 on noise; below it the
 * burst is not tried in that rank (in a group of unread bursts or with failed replicas). */
#define UNREAD_MIN_MATCH 0.15
/* Joint coherent decodings per pushed failed replica, and per pushed unread burst (each
 * ~4 ms of CPU: an unread burst is far more common in a crowded cell than a replica with
 * a readable FT that fails, and it only completes groups). */
#define COHERENT_BUDGET 16
#define UNREAD_COHERENT_BUDGET 24
/* Unread bursts are kept down to this much under min_orphan_snr_db: near the noise the
 * SNR estimate of a 0 dB burst spreads over +-2 dB, and an unread burst is only ever
 * decoded jointly with UL-AUTH deciding. */
#define UNREAD_EXTRA_DB 1.0
/* Messages of unread bursts alone, and failed replicas kept as unread too, only for bursts
 * estimated at most this strong: that is where FTs stop reading (a burst at 0-1 dB Eb/N0
 * is estimated at -3..3 dB); above, an unreadable FT or a failed CRC is mostly a
 * collision, and in a crowded cell trying such bursts in every rank and family tripled
 * the joint decodings for nothing (sigfox-bench capacity, benchmarks.md). */
#define UNREAD_WEAK_MAX_SNR_DB 3.0
#define BODY_BYTES (UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES)

typedef struct {
    bool used;
    rx_frame_t f;
    float soft[UL_CODE_MAX_BITS];
    size_t nbits;
    bool has_sym; /* sym holds ul_joint_symbols(container) matched-filter symbols */
    float complex sym[UL_HEADER_BITS + UL_CODE_MAX_BITS];
    double expire_s;
    uint64_t seq;
    struct unread *twin; /* the same burst kept as unread (assembler_push_failed) */
    uint64_t twin_seq;
} orphan_t;

/* A burst whose preamble matched but whose FT did not read: its rank and size are
 * unknown until a group of readable replicas gives them. */
typedef struct unread {
    bool used;
    rx_frame_t f; /* radio fields; frame unset */
    float complex sym[ASSEMBLER_UNREAD_SYMBOLS];
    size_t nsym, first; /* symbols held; the demodulator's first preamble symbol in sym */
    double expire_s;
    uint64_t seq;
    orphan_t *twin; /* a failed replica's FT reading of the same burst, or NULL */
    uint64_t twin_seq;
} unread_t;

typedef struct {
    bool used;
    bool emitted; /* kept only to absorb late replicas until expire_s */
    rx_message_t m;
    uint8_t body[BODY_BYTES]; /* container + CRC */
    size_t container_len;
    bool control;
    int baud;
    unsigned ranks; /* bit r set: rank r present */
    double close_s, expire_s;
    uint64_t seq;
} group_t;

struct assembler {
    const keystore_t *keys;
    double latency_s;
    size_t cap;
    int max_attempts;
    double min_orphan_snr_db;
    rx_message_cb on_message;
    void *user;
    /* Gap between the end of a frame and the start of the next (Tables 3-4, 4-2). */
    double gap_min_s, gap_max_s, gap_b_max_s;
    bool t_lf; /* no maximum gap: all frames within ASSEMBLER_T_LF_S */
    orphan_t *orphans;
    group_t *groups;
    unread_t *unread;
    int coherent_budget; /* joint coherent decodings left for the burst being pushed */
    const unread_t *fresh; /* the unread burst being pushed: only combinations with it */
    uint64_t seq;
    assembler_stats_t st;
};

assembler_t *assembler_create(const assembler_config_t *cfg)
{
    if (!cfg || !cfg->on_message || !(cfg->latency_s >= 0) || cfg->max_joint_attempts < 0 ||
        !isfinite(cfg->min_orphan_snr_db))
        return NULL;
    assembler_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->keys = cfg->keys;
    q->latency_s = cfg->latency_s > 0 ? cfg->latency_s : DEFAULT_LATENCY_S;
    q->cap = cfg->max_pending > 0 ? cfg->max_pending : DEFAULT_MAX_PENDING;
    q->max_attempts =
        cfg->max_joint_attempts > 0 ? cfg->max_joint_attempts : DEFAULT_JOINT_ATTEMPTS;
    q->min_orphan_snr_db =
        cfg->min_orphan_snr_db != 0 ? cfg->min_orphan_snr_db : DEFAULT_MIN_ORPHAN_SNR_DB;
    q->on_message = cfg->on_message;
    q->user = cfg->user;
    const rc_params_t *rc = cfg->rc ? cfg->rc : rc_get(1);
    if (!rc) {
        free(q);
        return NULL;
    }
    q->gap_min_s = fmin(rc->t_ifu_min_s, rc->t_ifb_min_s);
    q->t_lf = !(rc->t_ifu_max_s > 0) || !(rc->t_ifb_max_s > 0);
    q->gap_max_s = q->t_lf ? ASSEMBLER_T_LF_S : fmax(rc->t_ifu_max_s, rc->t_ifb_max_s);
    q->gap_b_max_s = q->t_lf ? ASSEMBLER_T_LF_S : rc->t_ifb_max_s;
    q->orphans = calloc(q->cap, sizeof *q->orphans);
    q->groups = calloc(q->cap, sizeof *q->groups);
    q->unread = calloc(q->cap, sizeof *q->unread);
    if (!q->orphans || !q->groups || !q->unread) {
        assembler_destroy(q);
        return NULL;
    }
    return q;
}

void assembler_destroy(assembler_t *q)
{
    if (!q)
        return;
    free(q->orphans);
    free(q->groups);
    free(q->unread);
    free(q);
}

void assembler_get_stats(const assembler_t *q, assembler_stats_t *stats)
{
    if (q && stats)
        *stats = q->st;
}

/* ---- timing rules ---- */

static double frame_duration(const rx_frame_t *f)
{
    double d = f->t_end_s - f->t_start_s;
    if (d > 0)
        return d;
    /* Preamble + FT + body symbols (§3.1). */
    return (double)(UL_HEADER_BITS + ul_body_bits(f->frame.container_len)) / f->baud;
}

/* Could frames a and b (different ranks) be replicas of one message, timing-wise? */
static bool timing_ok(const assembler_t *q, const rx_frame_t *a, const rx_frame_t *b)
{
    if (a->frame.rank > b->frame.rank) {
        const rx_frame_t *t = a;
        a = b;
        b = t;
    }
    const double tol = ASSEMBLER_TIME_TOLERANCE_S;
    int steps = b->frame.rank - a->frame.rank;
    double gap = b->t_start_s - a->t_end_s;
    if (gap < q->gap_min_s - tol)
        return false;
    if (q->t_lf)
        return b->t_end_s - a->t_start_s <= ASSEMBLER_T_LF_S + tol;
    double dur = frame_duration(a);
    return gap <= steps * q->gap_max_s + (steps - 1) * dur + tol;
}

static bool same_shape(const rx_frame_t *a, const rx_frame_t *b)
{
    return a->baud == b->baud && a->frame.container_len == b->frame.container_len &&
           a->frame.control == b->frame.control && a->frame.rank != b->frame.rank;
}

/* Stream time after which no replica can follow a frame of rank `rank` ending at end_s
 * (up to `ranks_ahead` further ranks), including the pipeline's reporting delay. */
static double window_end(const assembler_t *q, double first_start_s, double end_s, double dur,
                         int ranks_ahead, bool bprocedure)
{
    if (ranks_ahead <= 0)
        return end_s;
    if (q->t_lf)
        return first_start_s + ASSEMBLER_T_LF_S + ASSEMBLER_TIME_TOLERANCE_S + q->latency_s;
    double gap = bprocedure ? q->gap_b_max_s : q->gap_max_s;
    return end_s + ranks_ahead * (gap + dur) + ASSEMBLER_TIME_TOLERANCE_S + q->latency_s;
}

/* ---- replica consistency ---- */

/* Sign decisions of a replica that disagree with body (container + CRC) coded for rank. */
static size_t replica_disagreements(const uint8_t *body, size_t nbits, int rank, const float *soft)
{
    uint8_t coded[BODY_BYTES];
    if (ul_code_encode(rank, body, coded, nbits) < 0)
        return nbits;
    size_t d = 0;
    for (size_t i = 0; i < nbits; i++)
        d += soft[i] != 0.0f && (soft[i] > 0.0f) != ul_bit_get(coded, i);
    return d;
}

static bool replica_consistent(const uint8_t *body, size_t nbits, int rank, const float *soft)
{
    return (double)replica_disagreements(body, nbits, rank, soft) <=
           ASSEMBLER_MAX_REPLICA_BER * (double)nbits;
}

/* ---- messages ---- */

static void group_close_time(const assembler_t *q, group_t *g)
{
    int hr = 0;
    const rx_frame_t *last = NULL, *first = NULL;
    for (int i = 0; i < g->m.nframes; i++) {
        const rx_frame_t *f = &g->m.frames[i];
        if (f->frame.rank > hr) {
            hr = f->frame.rank;
            last = f;
        }
        if (!first || f->t_start_s < first->t_start_s)
            first = f;
    }
    double dur = frame_duration(last);
    /* Wait until every higher rank could have been reported; one that still arrives
     * after the emission (timing slack) is absorbed until expire_s, not a new message. */
    g->close_s = window_end(q, first->t_start_s, last->t_end_s, dur, 3 - hr, g->m.msg.bf);
    /* Remembered for one more reporting latency, to absorb replicas reported late. */
    g->expire_s =
        window_end(q, first->t_start_s, first->t_end_s, dur, 3 - first->frame.rank, false);
    if (g->expire_s < g->close_s)
        g->expire_s = g->close_s;
    g->expire_s += q->latency_s;
}

static void emit(assembler_t *q, group_t *g)
{
    /* Frames in time order. */
    for (int i = 1; i < g->m.nframes; i++)
        for (int j = i; j > 0 && g->m.frames[j].t_start_s < g->m.frames[j - 1].t_start_s; j--) {
            rx_frame_t t = g->m.frames[j];
            g->m.frames[j] = g->m.frames[j - 1];
            g->m.frames[j - 1] = t;
        }
    q->st.messages++;
    if (g->m.combined)
        q->st.messages_combined++;
    q->on_message(&g->m, q->user);
    g->emitted = true;
}

/* Copies the decoded content of g into a replica's frame record (rank/FT kept). */
static void fill_from_group(const group_t *g, rx_frame_t *f)
{
    ul_frame_t *fr = &f->frame;
    memcpy(fr->container, g->body, g->container_len);
    fr->crc = (uint16_t)(g->body[g->container_len] << 8 | g->body[g->container_len + 1]);
    fr->crc_ok = true;
    fr->msg = g->m.msg;
    ul_container_parse(g->body, g->container_len, g->control, &fr->msg, fr->auth, &fr->auth_len);
    f->auth = g->m.auth;
    f->joint = true;
}

static void add_frame(assembler_t *q, group_t *g, const rx_frame_t *f)
{
    if (g->m.nframes >= RX_MAX_REPLICAS)
        return;
    g->m.frames[g->m.nframes++] = *f;
    g->ranks |= 1u << f->frame.rank;
    group_close_time(q, g);
}

static group_t *new_group(assembler_t *q)
{
    group_t *slot = NULL, *oldest_done = NULL, *oldest = NULL;
    for (size_t i = 0; i < q->cap; i++) {
        group_t *g = &q->groups[i];
        if (!g->used) {
            slot = g;
            break;
        }
        if (g->emitted && (!oldest_done || g->seq < oldest_done->seq))
            oldest_done = g;
        if (!oldest || g->seq < oldest->seq)
            oldest = g;
    }
    if (!slot) {
        slot = oldest_done ? oldest_done : oldest;
        if (!slot->emitted) {
            emit(q, slot);
            q->st.dropped++;
        }
    }
    memset(slot, 0, sizeof *slot);
    slot->used = true;
    slot->seq = q->seq++;
    return slot;
}

/* Could f (of any CRC state) belong to message g by shape and timing? */
static bool fits_group(const assembler_t *q, const group_t *g, const rx_frame_t *f)
{
    if (g->baud != f->baud || g->container_len != f->frame.container_len ||
        g->control != f->frame.control || (g->ranks & (1u << f->frame.rank)))
        return false;
    for (int i = 0; i < g->m.nframes; i++)
        if (!timing_ok(q, &g->m.frames[i], f))
            return false;
    return true;
}

/* A burst kept both as a failed replica and as unread (assembler_push_failed) is one
 * burst: when either joins a message, the other goes. */
static void drop_unread(unread_t *u)
{
    u->used = false;
    if (u->twin && u->twin->used && u->twin->seq == u->twin_seq)
        u->twin->used = false;
}

static void drop_orphan(orphan_t *o)
{
    o->used = false;
    if (o->twin && o->twin->used && o->twin->seq == o->twin_seq)
        o->twin->used = false;
}

/* How a replica f relates to message g of the same content: its rank is missing and its
 * timing fits (REPLICA_NEW), g has that rank from a burst that started within the timing
 * tolerance of it on the same carrier (within one symbol rate: REPLICA_AGAIN, the same
 * burst read twice), or neither (REPLICA_APART: another transmission of that ID+MC). */
enum { REPLICA_APART, REPLICA_NEW, REPLICA_AGAIN };

static int replica_relation(const assembler_t *q, const group_t *g, const rx_frame_t *f)
{
    if (fits_group(q, g, f))
        return REPLICA_NEW;
    if (g->baud != f->baud || g->container_len != f->frame.container_len ||
        g->control != f->frame.control)
        return REPLICA_APART;
    for (int i = 0; i < g->m.nframes; i++)
        if (g->m.frames[i].frame.rank == f->frame.rank &&
            fabs(g->m.frames[i].t_start_s - f->t_start_s) <= ASSEMBLER_TIME_TOLERANCE_S &&
            fabs(g->m.frames[i].freq_hz - f->freq_hz) <= f->baud)
            return REPLICA_AGAIN;
    return REPLICA_APART;
}

/* Attaches every stored orphan that is a replica of g. */
static void absorb_orphans(assembler_t *q, group_t *g)
{
    size_t nbits = ul_body_bits(g->container_len);
    for (size_t i = 0; i < q->cap; i++) {
        orphan_t *o = &q->orphans[i];
        if (!o->used || !fits_group(q, g, &o->f) ||
            !replica_consistent(g->body, nbits, o->f.frame.rank, o->soft))
            continue;
        rx_frame_t f = o->f;
        fill_from_group(g, &f);
        add_frame(q, g, &f);
        drop_orphan(o);
        q->st.replicas_matched++;
    }
}

static void maybe_emit(assembler_t *q, group_t *g)
{
    if (!g->emitted && (g->ranks & (1u << 3)))
        emit(q, g);
}

/* A decoded frame's container + CRC, as group_t.body holds it. */
static void pack_body(const ul_frame_t *fr, uint8_t body[BODY_BYTES])
{
    memcpy(body, fr->container, fr->container_len);
    body[fr->container_len] = (uint8_t)(fr->crc >> 8);
    body[fr->container_len + 1] = (uint8_t)(fr->crc & 0xFF);
}

/* Does unread burst u carry rank r of the decoded frame fr, starting near sym[k]? Its
 * differential sign decisions over the body against the re-modulated frame's (the header
 * is left out: the alignment chose it for matching), at the best start within
 * ASSEMBLER_UNREAD_SLACK of k (near the noise the header match can pick a start a few
 * symbols off). A joint decoding can succeed on its other members alone: an unread burst
 * that only came along must stay free for its own message, and so must its twin, a
 * failed replica of that message (seen in a BR600-only cell at 0.5 dB: a pair decoded
 * with another message's replica as rank 3, which then lost that replica). */
static bool unread_consistent(const unread_t *u, long k, int r, const ul_frame_t *fr)
{
    uint8_t body[BODY_BYTES];
    float s[UL_HEADER_BITS + UL_CODE_MAX_BITS];
    pack_body(fr, body);
    int n = ul_joint_symbols_of(r, body, fr->container_len, fr->control, s,
                                sizeof s / sizeof s[0]);
    if (n <= UL_HEADER_BITS)
        return false;
    const double limit = ASSEMBLER_MAX_REPLICA_BER * (double)(n - UL_HEADER_BITS);
    for (long at = k - ASSEMBLER_UNREAD_SLACK; at <= k + ASSEMBLER_UNREAD_SLACK; at++) {
        if (at < 0 || (size_t)at + (size_t)n > u->nsym)
            continue;
        const float complex *y = u->sym + at;
        size_t wrong = 0;
        for (int i = UL_HEADER_BITS; i < n; i++) {
            float complex d = y[i] * conjf(y[i - 1]);
            wrong += (crealf(d) > 0.0f) != (s[i] * s[i - 1] > 0.0f);
        }
        if ((double)wrong <= limit)
            return true;
    }
    return false;
}

/* Does message g carry the decoded frame fr (of a burst at baud)? */
static bool same_content(const group_t *g, const ul_frame_t *fr, int baud)
{
    return g->used && g->m.msg.ep_id == fr->msg.ep_id && g->m.msg.mc == fr->msg.mc &&
           g->baud == baud && g->container_len == fr->container_len &&
           g->control == fr->control && !memcmp(g->body, fr->container, fr->container_len);
}

/* A new message holding the decoded frame fr; its replicas are added by the caller. */
static group_t *open_message(assembler_t *q, const ul_frame_t *fr, rx_auth_t auth, int baud,
                             bool combined)
{
    group_t *g = new_group(q);
    g->m.msg = fr->msg;
    g->m.auth = auth;
    g->m.combined = combined;
    g->container_len = fr->container_len;
    g->control = fr->control;
    g->baud = baud;
    pack_body(fr, g->body);
    return g;
}

/* The message a joint decoding's members belong to, open or out already: its content, and
 * no member whose timing puts it apart (each is a rank the message lacks or a burst it
 * has, read again: the receiver also reads a weak burst's runner-up syncs). NULL: none,
 * a message of its own (one with this ID+MC elsewhere in time stays apart). */
static group_t *known_message(assembler_t *q, const ul_frame_t *out, int baud,
                              const rx_frame_t *members, int n)
{
    for (size_t i = 0; i < q->cap; i++) {
        group_t *g = &q->groups[i];
        bool all = same_content(g, out, baud);
        for (int j = 0; j < n && all; j++)
            all = replica_relation(q, g, &members[j]) != REPLICA_APART;
        if (all)
            return g;
    }
    return NULL;
}

/* Member f of a joint decoding joins message g: as a new rank, or, when g is out already
 * or has this burst, as a duplicate (push_valid treats a frame that decoded alone so). In
 * a message the decoding opened (fresh), every member is a new rank. */
static void join_message(assembler_t *q, group_t *g, rx_frame_t *f, bool fresh)
{
    fill_from_group(g, f);
    if (fresh || (!g->emitted && replica_relation(q, g, f) == REPLICA_NEW))
        add_frame(q, g, f);
    else
        q->st.duplicates++;
}

/* A frame that decoded alone. */
static void push_valid(assembler_t *q, const rx_frame_t *f)
{
    q->st.frames_in++;
    const ul_frame_t *fr = &f->frame;
    for (size_t i = 0; i < q->cap; i++) {
        group_t *g = &q->groups[i];
        if (!same_content(g, fr, f->baud))
            continue;
        if (g->ranks & (1u << fr->rank)) {
            q->st.duplicates++;
            return;
        }
        bool fits = true;
        for (int k = 0; k < g->m.nframes; k++)
            fits = fits && timing_ok(q, &g->m.frames[k], f);
        if (!fits)
            continue;
        if (g->emitted) {
            q->st.duplicates++; /* a late replica of a message already out */
            return;
        }
        rx_frame_t c = *f;
        c.auth = g->m.auth;
        add_frame(q, g, &c);
        absorb_orphans(q, g);
        maybe_emit(q, g);
        return;
    }
    group_t *g = open_message(q, fr, uldecode_auth(fr, q->keys), f->baud, false);
    rx_frame_t c = *f;
    c.auth = g->m.auth;
    add_frame(q, g, &c);
    absorb_orphans(q, g);
    maybe_emit(q, g);
}

/* Keeps the cap items of least dist in items[0..*n), least first (dist: theirs): the
 * nearest in time, or the best scores given negated. */
static void keep_nearest(void **items, double *dist, int *n, int cap, void *item, double d)
{
    int at = *n < cap ? *n : cap;
    while (at > 0 && dist[at - 1] > d)
        at--;
    if (at >= cap)
        return;
    for (int j = (*n < cap ? *n : cap - 1); j > at; j--) {
        items[j] = items[j - 1];
        dist[j] = dist[j - 1];
    }
    items[at] = item;
    dist[at] = d;
    if (*n < cap)
        (*n)++;
}

/* Aligns u as rank r of family (clen, control): its start and header match, or -1. */
static long unread_align(const unread_t *u, int r, size_t clen, bool control, double *match)
{
    size_t lo = u->first > ASSEMBLER_UNREAD_SLACK ? u->first - ASSEMBLER_UNREAD_SLACK : 0;
    long k = ul_joint_align_match(u->sym, u->nsym, lo, u->first + ASSEMBLER_UNREAD_SLACK, r, clen,
                                  control, match);
    if (k < 0 || (size_t)k + ul_joint_symbols(clen) > u->nsym)
        return -1;
    return k;
}

/* The unread bursts that could be rank r of the group members[0..n) (its baud, the timing
 * of rank r with every member), the cap whose first symbols match rank r's preamble + FT
 * of the group's family best first. In a busy cell a rank's window holds tens of unread
 * bursts; the nearest to the expected time were seldom the right one (BR600-only cell at
 * 0.5 dB, benchmarks.md). */
static int unread_for_rank(assembler_t *q, orphan_t *const *members, int n, int r, unread_t **out,
                           int cap)
{
    const rx_frame_t *f0 = &members[0]->f;
    const size_t clen = f0->frame.container_len;
    const bool control = f0->frame.control;
    double dur = (double)(UL_HEADER_BITS + ul_body_bits(clen)) / f0->baud;
    void *best[UNREAD_PER_RANK];
    double neg_match[UNREAD_PER_RANK];
    int k = 0;
    if (cap > UNREAD_PER_RANK)
        cap = UNREAD_PER_RANK;
    for (size_t i = 0; i < q->cap; i++) {
        unread_t *u = &q->unread[i];
        if (!u->used || u->f.baud != f0->baud)
            continue;
        rx_frame_t as = u->f;
        as.frame.rank = r;
        as.frame.container_len = clen;
        as.frame.control = control;
        as.t_end_s = as.t_start_s + dur;
        bool fits = true;
        for (int j = 0; j < n && fits; j++)
            fits = timing_ok(q, &as, &members[j]->f);
        double match;
        if (!fits || unread_align(u, r, clen, control, &match) < 0 ||
            match < UNREAD_MIN_MATCH)
            continue;
        /* the burst being pushed is always a candidate (only combinations with it are
           tried) */
        keep_nearest(best, neg_match, &k, cap, u, u == q->fresh ? -INFINITY : -match);
    }
    for (int i = 0; i < k; i++)
        out[i] = best[i];
    return k;
}

static bool coherent_decode(assembler_t *q, const float complex *const y[3], const rx_frame_t *f0,
                            ul_frame_t *out)
{
    if (q->coherent_budget <= 0)
        return false;
    q->coherent_budget--;
    q->st.coherent_attempts++;
    if (ul_joint_decode_iq(y, f0->frame.container_len, f0->frame.control, NULL, out, NULL) != 0)
        return false;
    q->st.coherent_decoded++;
    return true;
}

/* The joint coherent fallback (uljoint.h) when the Viterbi decoding of a group failed:
 * every member must carry its symbols, and only with a key store (the result must then
 * pass UL-AUTH in try_joint; each attempt checks up to 16 candidates with the CRC, so
 * without AUTH it would let garbage through 4 times as often as the Viterbi path). The
 * group alone first (when it has two members or more), then with unread bursts in the
 * ranks it lacks, each aligned on that rank's preamble + FT within ASSEMBLER_UNREAD_SLACK of
 * its demodulator's start. used[r]: the unread burst the result took as rank r + 1. */
static bool try_coherent(assembler_t *q, orphan_t *const *members, int n, ul_frame_t *out,
                         unread_t *used[3], const float complex *used_at[3])
{
    used[0] = used[1] = used[2] = NULL;
    used_at[0] = used_at[1] = used_at[2] = NULL;
    if (!q->keys)
        return false;
    const float complex *y[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n; i++) {
        if (!members[i]->has_sym)
            return false;
        y[members[i]->f.frame.rank - 1] = members[i]->sym;
    }
    const rx_frame_t *f0 = &members[0]->f;
    /* (groups without the unread burst being pushed were tried when their last member
       came) */
    if (n >= 2 && !q->fresh && coherent_decode(q, y, f0, out))
        return true;
    /* the missing ranks from the unread bursts: every combination of up to
       UNREAD_PER_RANK candidates each (a rank may also stay missing) */
    unread_t *cand[3][UNREAD_PER_RANK];
    int nc[3] = {0, 0, 0};
    bool any = false;
    for (int r = 1; r <= 3; r++)
        if (!y[r - 1]) {
            nc[r - 1] = unread_for_rank(q, members, n, r, cand[r - 1], UNREAD_PER_RANK);
            any = any || nc[r - 1] > 0;
        }
    if (!any)
        return false;
    const size_t clen = f0->frame.container_len;
    const bool control = f0->frame.control;
    const size_t need = ul_joint_symbols(clen);
    /* each candidate aligned once on the rank it would fill */
    const float complex *at[3][UNREAD_PER_RANK];
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < nc[r]; i++) {
            const unread_t *u = cand[r][i];
            size_t lo = u->first > ASSEMBLER_UNREAD_SLACK ? u->first - ASSEMBLER_UNREAD_SLACK : 0;
            long k = ul_joint_align(u->sym, u->nsym, lo, u->first + ASSEMBLER_UNREAD_SLACK, r + 1,
                                    clen, control);
            at[r][i] = k >= 0 && (size_t)k + need <= u->nsym ? u->sym + k : NULL;
        }
    /* combinations (-1: the rank stays missing), no burst in two ranks; the fullest first,
       then the nearest in time */
    int combo[(UNREAD_PER_RANK + 1) * (UNREAD_PER_RANK + 1) * (UNREAD_PER_RANK + 1)][3];
    int rank_of[(UNREAD_PER_RANK + 1) * (UNREAD_PER_RANK + 1) * (UNREAD_PER_RANK + 1)];
    int ncombo = 0;
    for (int a = -1; a < nc[0]; a++)
        for (int b = -1; b < nc[1]; b++)
            for (int c = -1; c < nc[2]; c++) {
                const int pick[3] = {a, b, c};
                int added = 0, dist = 0;
                bool ok = true, has_fresh = !q->fresh;
                for (int r = 0; r < 3 && ok; r++) {
                    if (pick[r] < 0)
                        continue;
                    ok = at[r][pick[r]] != NULL;
                    for (int r2 = 0; r2 < r && ok; r2++)
                        ok = pick[r2] < 0 || cand[r2][pick[r2]] != cand[r][pick[r]];
                    added++;
                    dist += pick[r];
                    has_fresh = has_fresh || cand[r][pick[r]] == q->fresh;
                }
                if (!ok || !added || n + added < 2 || !has_fresh)
                    continue;
                int key = added * 16 - dist; /* higher first */
                int pos = ncombo;
                while (pos > 0 && rank_of[pos - 1] < key) {
                    memcpy(combo[pos], combo[pos - 1], sizeof combo[0]);
                    rank_of[pos] = rank_of[pos - 1];
                    pos--;
                }
                memcpy(combo[pos], pick, sizeof pick);
                rank_of[pos] = key;
                ncombo++;
            }
    for (int i = 0; i < ncombo && q->coherent_budget > 0; i++) {
        const float complex *yy[3] = {y[0], y[1], y[2]};
        for (int r = 0; r < 3; r++)
            if (combo[i][r] >= 0)
                yy[r] = at[r][combo[i][r]];
        if (coherent_decode(q, yy, f0, out)) {
            for (int r = 0; r < 3; r++)
                if (combo[i][r] >= 0) {
                    used[r] = cand[r][combo[i][r]];
                    used_at[r] = at[r][combo[i][r]];
                }
            return true;
        }
    }
    return false;
}

/* Joint decoding of the orphans in members[0..n) (distinct ranks). Creates the message
 * and returns true on an accepted result. */
static bool try_joint(assembler_t *q, orphan_t *const *members, int n)
{
    const float *soft[3] = {NULL, NULL, NULL};
    for (int i = 0; i < n; i++)
        soft[members[i]->f.frame.rank - 1] = members[i]->soft;
    const rx_frame_t *f0 = &members[0]->f;
    ul_frame_t out;
    unread_t *used[3] = {NULL, NULL, NULL};
    const float complex *used_at[3] = {NULL, NULL, NULL};
    q->st.joint_attempts++;
    if (ul_frame_decode_joint(soft, f0->frame.container_len, f0->frame.control, &out) != 0 &&
        !try_coherent(q, members, n, &out, used, used_at))
        return false;
    rx_auth_t auth = uldecode_auth(&out, q->keys);
    if (q->keys && auth != RX_AUTH_OK) {
        q->st.joint_rejected++;
        return false;
    }
    uint8_t body[BODY_BYTES];
    pack_body(&out, body);
    size_t nbits = ul_body_bits(out.container_len);
    for (int i = 0; i < n; i++)
        if (!replica_consistent(body, nbits, members[i]->f.frame.rank, members[i]->soft)) {
            q->st.joint_rejected++;
            return false;
        }
    rx_frame_t mf[3];
    for (int i = 0; i < n; i++)
        mf[i] = members[i]->f;
    group_t *g = known_message(q, &out, f0->baud, mf, n);
    bool fresh = g == NULL;
    if (fresh)
        g = open_message(q, &out, auth, f0->baud, true);
    for (int i = 0; i < n; i++) {
        join_message(q, g, &mf[i], fresh);
        drop_orphan(members[i]);
    }
    for (int r = 0; r < 3; r++)
        if (used[r] && unread_consistent(used[r], used_at[r] - used[r]->sym, r + 1, &out)) {
            /* its frame fields are unknown: it counts, it is not listed */
            drop_unread(used[r]);
            q->st.unread_used++;
        }
    absorb_orphans(q, g);
    maybe_emit(q, g);
    return true;
}

/* Orders candidate orphans by distance in time to o. */
static void sort_by_time(orphan_t **c, int n, const orphan_t *o)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            double dj = fabs(c[j]->f.t_start_s - o->f.t_start_s);
            double dp = fabs(c[j - 1]->f.t_start_s - o->f.t_start_s);
            if (dj >= dp)
                break;
            orphan_t *t = c[j];
            c[j] = c[j - 1];
            c[j - 1] = t;
        }
}

/* Forms candidate groups around the new orphan o: all three ranks first, then pairs,
 * nearest in time first, at most max_attempts decodings. */
static void combine(assembler_t *q, orphan_t *o)
{
    int ranks[2], k = 0;
    for (int r = 1; r <= 3; r++)
        if (r != o->f.frame.rank)
            ranks[k++] = r;
    orphan_t *cand[2][MAX_CANDIDATES];
    int nc[2] = {0, 0};
    for (size_t i = 0; i < q->cap; i++) {
        orphan_t *c = &q->orphans[i];
        if (!c->used || c == o || !same_shape(&c->f, &o->f) || !timing_ok(q, &c->f, &o->f))
            continue;
        int slot = c->f.frame.rank == ranks[0] ? 0 : 1;
        if (nc[slot] < MAX_CANDIDATES) {
            cand[slot][nc[slot]++] = c;
        } else {
            /* Keep the nearest in time. */
            sort_by_time(cand[slot], nc[slot], o);
            double dc = fabs(c->f.t_start_s - o->f.t_start_s);
            if (dc < fabs(cand[slot][MAX_CANDIDATES - 1]->f.t_start_s - o->f.t_start_s))
                cand[slot][MAX_CANDIDATES - 1] = c;
        }
    }
    sort_by_time(cand[0], nc[0], o);
    sort_by_time(cand[1], nc[1], o);
    int attempts = 0;
    orphan_t *m[3];
    for (int a = 0; a < nc[0]; a++)
        for (int b = 0; b < nc[1]; b++) {
            if (attempts >= q->max_attempts)
                return;
            if (!timing_ok(q, &cand[0][a]->f, &cand[1][b]->f))
                continue;
            m[0] = o;
            m[1] = cand[0][a];
            m[2] = cand[1][b];
            attempts++;
            if (try_joint(q, m, 3))
                return;
        }
    for (int s = 0; s < 2; s++)
        for (int a = 0; a < nc[s]; a++) {
            if (attempts >= q->max_attempts)
                return;
            m[0] = o;
            m[1] = cand[s][a];
            attempts++;
            if (try_joint(q, m, 2))
                return;
        }
    /* o with unread bursts only (its siblings' FT did not read) */
    if (q->keys && o->has_sym && attempts < q->max_attempts) {
        m[0] = o;
        try_joint(q, m, 1);
    }
}

static orphan_t *new_orphan(assembler_t *q)
{
    orphan_t *oldest = NULL;
    for (size_t i = 0; i < q->cap; i++) {
        orphan_t *o = &q->orphans[i];
        if (!o->used)
            return o;
        if (!oldest || o->seq < oldest->seq)
            oldest = o;
    }
    q->st.dropped++;
    return oldest;
}

/* Keeps a failed replica and tries it with the others. Returns it when it is still
 * waiting for siblings (not matched to a message, not combined), else NULL; *weak tells
 * that it was not kept for its SNR. */
static orphan_t *push_orphan(assembler_t *q, const rx_frame_t *f, const float *soft,
                             const float complex *sym, bool *weak)
{
    *weak = false;
    q->st.orphans_in++;
    q->coherent_budget = COHERENT_BUDGET;
    size_t nbits = ul_body_bits(f->frame.container_len);
    /* A replica of a message already known (open or just emitted)? */
    for (size_t i = 0; i < q->cap; i++) {
        group_t *g = &q->groups[i];
        if (!g->used)
            continue;
        int rel = replica_relation(q, g, f);
        if (rel == REPLICA_APART || !replica_consistent(g->body, nbits, f->frame.rank, soft))
            continue;
        if (rel == REPLICA_AGAIN) { /* a burst the message already has, read again */
            q->st.duplicates++;
            return NULL;
        }
        q->st.replicas_matched++;
        if (g->emitted)
            return NULL;
        rx_frame_t c = *f;
        fill_from_group(g, &c);
        add_frame(q, g, &c);
        maybe_emit(q, g);
        return NULL;
    }
    if (!(f->snr_db >= q->min_orphan_snr_db)) {
        q->st.orphans_weak++;
        *weak = true;
        return NULL;
    }
    orphan_t *o = new_orphan(q);
    memset(o, 0, sizeof *o);
    o->used = true;
    o->f = *f;
    o->nbits = nbits;
    o->seq = q->seq++;
    for (size_t i = 0; i < nbits; i++)
        o->soft[i] = isfinite(soft[i]) ? soft[i] : 0.0f;
    if (sym) {
        size_t ns = ul_joint_symbols(f->frame.container_len);
        o->has_sym = true;
        for (size_t i = 0; i < ns; i++) /* non-finite values: erasures */
            o->sym[i] = isfinite(crealf(sym[i])) && isfinite(cimagf(sym[i])) ? sym[i] : 0.0f;
    }
    o->expire_s =
        window_end(q, f->t_start_s, f->t_end_s, frame_duration(f), 3 - f->frame.rank, false);
    combine(q, o);
    return o->used ? o : NULL;
}

int assembler_push(assembler_t *q, const rx_frame_t *f, const float *body_soft)
{
    return assembler_push_sym(q, f, body_soft, NULL);
}

/* A burst with a readable FT as assembler_push_sym takes it. */
static bool frame_args_ok(const rx_frame_t *f)
{
    return f && f->frame.rank >= 1 && f->frame.rank <= 3 && (f->baud == 100 || f->baud == 600) &&
           isfinite(f->t_start_s) && isfinite(f->t_end_s) &&
           ul_ft_value(f->frame.container_len, f->frame.control, f->frame.rank) != 0;
}

int assembler_push_sym(assembler_t *q, const rx_frame_t *f, const float *body_soft,
                       const float complex *sym)
{
    if (!q || !frame_args_ok(f))
        return ASSEMBLER_ERR_ARG;
    if (f->frame.crc_ok) {
        push_valid(q, f);
        return ASSEMBLER_OK;
    }
    if (!body_soft)
        return ASSEMBLER_ERR_ARG;
    bool weak;
    push_orphan(q, f, body_soft, sym, &weak);
    return ASSEMBLER_OK;
}

/* ---- messages none of whose replicas read its FT ---- */

/* Unread bursts considered with the one being pushed (same baud, nearest in time first). */
#define UNREAD_GROUP_CANDIDATES 8
/* Group hypotheses (members, ranks, FT family) decoded per pushed unread burst, best
 * header match first: each is a joint coherent decoding (~3 ms, ~40 M instructions). With
 * known positions at 0 dB 1, 2, 3 and 4 lose 1, 0, 0, 0 more messages of 2000 than 4;
 * in a crowded cell (sigfox-bench capacity) every one of them is spent on collisions. */
#define UNREAD_GROUP_DECODINGS 2

typedef struct {
    unread_t *m[3];
    int n;
    int rank[3];
    long k[3]; /* each member's aligned first preamble symbol in its sym */
    size_t clen;
    bool control;
    double score; /* sum of the members' header matches */
} unread_group_t;

/* Member i of a group given rank r and family (clen, control) as a frame record. */
static rx_frame_t unread_as_frame(const unread_t *u, int rank, size_t clen, bool control)
{
    rx_frame_t f = u->f;
    f.frame.rank = rank;
    f.frame.container_len = clen;
    f.frame.control = control;
    f.t_end_s = f.t_start_s + (double)(UL_HEADER_BITS + ul_body_bits(clen)) / f.baud;
    return f;
}

/* Keeps the best hypotheses: fuller groups first, then the higher header match. */
static void keep_hypothesis(unread_group_t *best, int *nbest, const unread_group_t *h)
{
    int at = *nbest < UNREAD_GROUP_DECODINGS ? *nbest : UNREAD_GROUP_DECODINGS;
    while (at > 0 && (best[at - 1].n < h->n || (best[at - 1].n == h->n && best[at - 1].score < h->score)))
        at--;
    if (at >= UNREAD_GROUP_DECODINGS)
        return;
    int last = *nbest < UNREAD_GROUP_DECODINGS ? *nbest : UNREAD_GROUP_DECODINGS - 1;
    for (int j = last; j > at; j--)
        best[j] = best[j - 1];
    best[at] = *h;
    if (*nbest < UNREAD_GROUP_DECODINGS)
        (*nbest)++;
}

/* Scores one set of unread bursts (in time order) as every rank assignment that keeps
 * rank order = time order, for family (clen, control). */
static void score_unread_set(const assembler_t *q, unread_t *const *set, int n, size_t clen,
                             bool control, unread_group_t *best, int *nbest)
{
    static const int pairs[3][2] = {{1, 2}, {2, 3}, {1, 3}};
    static const int triple[1][3] = {{1, 2, 3}};
    int nass = n == 2 ? 3 : 1;
    for (int a = 0; a < nass; a++) {
        unread_group_t h = {.n = n, .clen = clen, .control = control};
        bool ok = true;
        for (int i = 0; i < n && ok; i++) {
            h.m[i] = set[i];
            h.rank[i] = n == 2 ? pairs[a][i] : triple[a][i];
            double match;
            h.k[i] = unread_align(set[i], h.rank[i], clen, control, &match);
            ok = h.k[i] >= 0 && match >= UNREAD_MIN_MATCH;
            h.score += match;
        }
        for (int i = 0; i < n && ok; i++)
            for (int j = i + 1; j < n && ok; j++) {
                rx_frame_t fi = unread_as_frame(set[i], h.rank[i], clen, control);
                rx_frame_t fj = unread_as_frame(set[j], h.rank[j], clen, control);
                ok = timing_ok(q, &fi, &fj);
            }
        if (ok)
            keep_hypothesis(best, nbest, &h);
    }
}

/* A message of which only unread bursts arrived (no replica read its FT, so rank and
 * size are hypotheses): groups of u with one or two other unread bursts of its baud,
 * ranks in time order, the timing of Tables 3-4/4-2 for each FT family, ordered by how
 * well their headers match that family's preamble + FT; the best few are decoded by the
 * joint coherent decoder. Only with a key store: the result must pass UL-AUTH (as every
 * coherent result, try_joint). */
static void try_unread_groups(assembler_t *q, unread_t *u)
{
    void *near[UNREAD_GROUP_CANDIDATES];
    double dist[UNREAD_GROUP_CANDIDATES];
    int nc = 0;
    for (size_t i = 0; i < q->cap; i++) {
        unread_t *v = &q->unread[i];
        double d = fabs(v->f.t_start_s - u->f.t_start_s);
        if (v->used && v != u && v->f.baud == u->f.baud && d <= ASSEMBLER_T_LF_S && d > 0 &&
            v->f.snr_db <= UNREAD_WEAK_MAX_SNR_DB)
            keep_nearest(near, dist, &nc, UNREAD_GROUP_CANDIDATES, v, d);
    }
    if (!nc)
        return;
    unread_t *cand[UNREAD_GROUP_CANDIDATES];
    for (int i = 0; i < nc; i++)
        cand[i] = near[i];
    unread_group_t best[UNREAD_GROUP_DECODINGS];
    int nbest = 0;
    for (size_t clen = 0; clen <= UL_MAX_CONTAINER_BYTES; clen++)
        for (int c = 0; c < 2; c++) {
            bool control = c == 1;
            if (ul_ft_value(clen, control, 1) == 0)
                continue;
            for (int a = 0; a < nc; a++) {
                unread_t *set[3];
                bool ua = u->f.t_start_s < cand[a]->f.t_start_s;
                set[0] = ua ? u : cand[a];
                set[1] = ua ? cand[a] : u;
                score_unread_set(q, set, 2, clen, control, best, &nbest);
                for (int b = a + 1; b < nc; b++) {
                    unread_t *t3[3] = {u, cand[a], cand[b]};
                    for (int i = 1; i < 3; i++) /* time order */
                        for (int j = i; j > 0 && t3[j]->f.t_start_s < t3[j - 1]->f.t_start_s; j--) {
                            unread_t *t = t3[j];
                            t3[j] = t3[j - 1];
                            t3[j - 1] = t;
                        }
                    score_unread_set(q, t3, 3, clen, control, best, &nbest);
                }
            }
        }
    for (int h = 0; h < nbest && q->coherent_budget > 0; h++) {
        const unread_group_t *g = &best[h];
        bool all_free = true;
        for (int i = 0; i < g->n; i++)
            all_free = all_free && g->m[i]->used;
        if (!all_free)
            continue;
        const float complex *y[3] = {NULL, NULL, NULL};
        for (int i = 0; i < g->n; i++)
            y[g->rank[i] - 1] = g->m[i]->sym + g->k[i];
        rx_frame_t f0 = unread_as_frame(g->m[0], g->rank[0], g->clen, g->control);
        ul_frame_t out;
        if (!coherent_decode(q, y, &f0, &out))
            continue;
        rx_auth_t auth = uldecode_auth(&out, q->keys);
        if (auth != RX_AUTH_OK) {
            q->st.joint_rejected++;
            continue;
        }
        /* the members that carry the decoded frame; the others stay free */
        rx_frame_t mf[3];
        unread_t *mu[3];
        int nm = 0;
        for (int i = 0; i < g->n; i++)
            if (unread_consistent(g->m[i], g->k[i], g->rank[i], &out)) {
                mf[nm] = unread_as_frame(g->m[i], g->rank[i], g->clen, g->control);
                mu[nm++] = g->m[i];
            }
        group_t *m = known_message(q, &out, u->f.baud, mf, nm);
        bool fresh = m == NULL;
        if (fresh)
            m = open_message(q, &out, auth, u->f.baud, true);
        for (int i = 0; i < nm; i++) {
            join_message(q, m, &mf[i], fresh);
            drop_unread(mu[i]);
            q->st.unread_used++;
        }
        absorb_orphans(q, m);
        maybe_emit(q, m);
        return;
    }
}

/* Keeps an unread burst (the gates of assembler_push_unread passed): the oldest goes when
 * full. */
static unread_t *store_unread(assembler_t *q, const rx_frame_t *f, const float complex *sym,
                              size_t nsym, size_t first)
{
    unread_t *u = NULL;
    for (size_t i = 0; i < q->cap && !u; i++)
        if (!q->unread[i].used)
            u = &q->unread[i];
    if (!u) { /* full: the oldest goes */
        for (size_t i = 0; i < q->cap; i++)
            if (!u || q->unread[i].seq < u->seq)
                u = &q->unread[i];
        q->st.dropped++;
    }
    memset(u, 0, sizeof *u);
    u->used = true;
    u->f = *f;
    memset(&u->f.frame, 0, sizeof u->f.frame);
    u->seq = q->seq++;
    size_t lo = first > ASSEMBLER_UNREAD_SLACK ? first - ASSEMBLER_UNREAD_SLACK : 0;
    size_t n = nsym - lo < ASSEMBLER_UNREAD_SYMBOLS ? nsym - lo : ASSEMBLER_UNREAD_SYMBOLS;
    for (size_t i = 0; i < n; i++) /* non-finite values: erasures */
        u->sym[i] =
            isfinite(crealf(sym[lo + i])) && isfinite(cimagf(sym[lo + i])) ? sym[lo + i] : 0.0f;
    u->nsym = n;
    u->first = first - lo;
    /* it may be any rank: kept as long as a rank-1 frame starting with it could have
       siblings (the longest frame) */
    rx_frame_t as = u->f;
    as.t_end_s = as.t_start_s + (double)(UL_HEADER_BITS + UL_CODE_MAX_BITS) / f->baud;
    u->expire_s = window_end(q, as.t_start_s, as.t_end_s, as.t_end_s - as.t_start_s, 2, false);
    return u;
}

/* Could u be another rank of o's message, timing-wise (Table 3-4)? */
static bool could_be_sibling(const assembler_t *q, const unread_t *u, const orphan_t *o)
{
    for (int r = 1; r <= 3; r++) {
        if (r == o->f.frame.rank)
            continue;
        rx_frame_t as = unread_as_frame(u, r, o->f.frame.container_len, o->f.frame.control);
        if (timing_ok(q, &as, &o->f))
            return true;
    }
    return false;
}

/* What a newly kept unread burst may complete: groups of the failed replicas nearest in
 * time (combinations that hold it only), then messages of unread bursts alone. skip: a
 * failed replica not to re-examine (u's own reading). */
static void examine_unread(assembler_t *q, unread_t *u, const orphan_t *skip)
{
    q->coherent_budget = UNREAD_COHERENT_BUDGET;
    void *near[UNREAD_ORPHANS];
    double dist[UNREAD_ORPHANS];
    int nn = 0;
    for (size_t i = 0; i < q->cap; i++) {
        orphan_t *o = &q->orphans[i];
        double d = fabs(o->f.t_start_s - u->f.t_start_s);
        if (o->used && o != skip && o->has_sym && o->f.baud == u->f.baud && d <= ASSEMBLER_T_LF_S &&
            could_be_sibling(q, u, o))
            keep_nearest(near, dist, &nn, UNREAD_ORPHANS, o, d);
    }
    q->fresh = u;
    for (int i = 0; i < nn && u->used; i++) {
        orphan_t *o = near[i];
        if (o->used)
            combine(q, o);
    }
    q->fresh = NULL;
    if (u->used && u->f.snr_db <= UNREAD_WEAK_MAX_SNR_DB)
        try_unread_groups(q, u);
}

/* The gates of unread bursts: only the keyed coherent path uses them; noise that matched
 * a preamble stays out as the orphans' does, and so do collisions. */
static bool unread_wanted(const assembler_t *q, const rx_frame_t *f)
{
    return q->keys && f->snr_db >= q->min_orphan_snr_db - UNREAD_EXTRA_DB &&
           f->snr_db <= ASSEMBLER_UNREAD_MAX_SNR_DB;
}

int assembler_push_unread(assembler_t *q, const rx_frame_t *f, const float complex *sym,
                          size_t nsym, size_t first)
{
    if (!q || !f || !sym || (f->baud != 100 && f->baud != 600) || !isfinite(f->t_start_s) ||
        first >= nsym)
        return ASSEMBLER_ERR_ARG;
    q->st.unread_in++;
    if (!unread_wanted(q, f))
        return ASSEMBLER_OK;
    q->st.unread_kept++;
    examine_unread(q, store_unread(q, f, sym, nsym, first), NULL);
    return ASSEMBLER_OK;
}

int assembler_push_failed(assembler_t *q, const rx_frame_t *f, const float *body_soft,
                          const float complex *sym, const float complex *ctx, size_t nctx,
                          size_t first)
{
    if (!q || !frame_args_ok(f) || !body_soft || !sym || !ctx || first >= nctx ||
        f->frame.crc_ok)
        return ASSEMBLER_ERR_ARG;
    bool weak;
    orphan_t *o = push_orphan(q, f, body_soft, sym, &weak);
    if (!unread_wanted(q, f) || f->snr_db > UNREAD_WEAK_MAX_SNR_DB)
        return ASSEMBLER_OK;
    if (weak) { /* too weak to be kept as a failed replica */
        q->st.unread_kept++;
        examine_unread(q, store_unread(q, f, ctx, nctx, first), NULL);
        return ASSEMBLER_OK;
    }
    if (!o) /* matched to a message or combined */
        return ASSEMBLER_OK;
    unread_t *u = store_unread(q, f, ctx, nctx, first);
    u->twin = o;
    u->twin_seq = o->seq;
    o->twin = u;
    o->twin_seq = u->seq;
    examine_unread(q, u, o);
    return ASSEMBLER_OK;
}

int assembler_advance(assembler_t *q, double now_s)
{
    if (!q)
        return ASSEMBLER_ERR_ARG;
    int n = 0;
    for (size_t i = 0; i < q->cap; i++) {
        group_t *g = &q->groups[i];
        if (!g->used)
            continue;
        if (!g->emitted && now_s >= g->close_s) {
            emit(q, g);
            n++;
        }
        if (g->emitted && now_s >= g->expire_s)
            g->used = false;
    }
    for (size_t i = 0; i < q->cap; i++) {
        orphan_t *o = &q->orphans[i];
        if (o->used && now_s >= o->expire_s) {
            drop_orphan(o);
            q->st.orphans_expired++;
        }
        if (q->unread[i].used && now_s >= q->unread[i].expire_s)
            q->unread[i].used = false;
    }
    return n;
}

int assembler_flush(assembler_t *q)
{
    if (!q)
        return ASSEMBLER_ERR_ARG;
    int n = 0;
    /* In order of creation, so messages come out as they began. */
    for (;;) {
        group_t *next = NULL;
        for (size_t i = 0; i < q->cap; i++) {
            group_t *g = &q->groups[i];
            if (g->used && !g->emitted && (!next || g->seq < next->seq))
                next = g;
        }
        if (!next)
            break;
        emit(q, next);
        n++;
    }
    for (size_t i = 0; i < q->cap; i++) {
        if (q->orphans[i].used) {
            q->orphans[i].used = false;
            q->st.orphans_expired++;
        }
        q->groups[i].used = false;
        q->unread[i].used = false;
    }
    return n;
}
