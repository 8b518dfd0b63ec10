/* assembler: merges the replicas of one uplink message and recovers messages whose
 * replicas all failed alone by decoding them jointly (spec rev 1.4 §3.10, §3.13, §4.9).
 * Licence: MIT.
 *
 * Input, in stream order: every burst whose FT was readable (uldecode.h), as an rx_frame_t
 * plus, for a burst whose CRC failed, the soft values of its coded body.
 *
 * Grouping. A message is N = 1 or 3 frames carrying the same container; ranks 1, 2, 3 go
 * out in that order with the same baud (§2.3) and the gaps of Table 3-4 (U-procedure,
 * T_IFU 10 ms .. 2 s in RC1) or Table 4-2 (B-procedure, T_IFB 500 .. 525 ms in RC1); where
 * the maximum gap is "N.A." (RC3, RC5) all frames fall within T_LF = 8 s. Two frames are
 * siblings when ID, MC, container, control flag and baud agree, their ranks differ and
 * the gap between them fits (with ASSEMBLER_TIME_TOLERANCE_S of slack for the timing
 * estimates). Time is stream time (seconds from the first input sample, i.e. the sample
 * index divided by the rate), never the wall clock.
 *
 * When a message is emitted. Rank 3 is the last frame of a message, so its arrival emits
 * the message at once. Otherwise the message waits until every higher rank could have
 * been reported: the end of its highest-ranked frame r + (3 - r) × (maximum gap + one
 * frame duration) + the pipeline's reporting latency. A single-frame (N = 1) message is
 * indistinguishable from rank 1 of three, so it goes out only then: in RC1 about
 * 2 × (2 s + one frame) + latency after its end (7.9 s for a BR100 12-byte frame with
 * 1 s latency; 2 × (0.525 s + one frame) + latency when its BF flag says B-procedure).
 * Waiting only for rank 2's window would halve that, but a message whose rank 2 was lost
 * entirely would then go out before its rank 3 (for 20-byte BR100 frames always, as the
 * frame alone lasts 2.08 s), with one replica missing and nothing combined with it.
 * Frames themselves are reported by the pipeline at once; messages are the de-duplicated,
 * complete view. A replica that still arrives after its message went out (timing slack)
 * is absorbed without a second message (counted in duplicates / replicas_matched).
 *
 * Bursts that fail alone (readable FT, CRC bad) are kept as "orphans" for as long as a
 * sibling could still arrive. Each new orphan is first compared with the known messages
 * (re-encoded for its rank: it joins a message when its sign decisions agree on at least
 * 1 - ASSEMBLER_MAX_REPLICA_BER of the bits). Otherwise candidate groups are formed with
 * the other orphans, one per rank, with the same container size, control flag and baud
 * and compatible timing, closest in time first, at most max_joint_attempts per arriving
 * burst; each is decoded by the rate-1/3 Viterbi decoder (ul_frame_decode_joint) on the
 * soft values of all its members.
 *
 * Keeping false messages out of joint decoding. A result is accepted only when
 *   - its CRC-16 is valid and the fields parse: the list decoder checks at most 4
 *     candidates, so garbage passes with probability ~4 / 65536 per attempt, and the
 *     attempts are bounded (max_joint_attempts per burst);
 *   - when a key store is configured: the device is in it and the UL-AUTH is valid
 *     (a further 2^-16 .. 2^-40); unknown devices are never recovered jointly;
 *   - every member replica, re-encoded with its rank's code, agrees with that replica's
 *     own sign decisions on at least 1 - ASSEMBLER_MAX_REPLICA_BER of the bits. This keeps
 *     an unrelated burst out of a group of real replicas (it agrees on ~50 %); it is no
 *     guard against pure garbage, since the Viterbi result always fits its inputs well.
 * Orphans whose estimated SNR is below min_orphan_snr_db (noise that happened to show a
 * readable FT) are not kept at all: on pure noise the demodulator estimates below -1 dB
 * for 99.7 % of the snippets that show a readable FT, while a replica at 2 dB Eb/N0
 * reads about 2 dB.
 *
 * Bounded memory: at most max_pending orphans and max_pending open messages (the oldest
 * is dropped or emitted when full, and counted). No allocation after create. Not
 * thread-safe: one thread pushes, advances and receives the callbacks.
 */
#ifndef SIGFOX_ASSEMBLER_H
#define SIGFOX_ASSEMBLER_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "rc.h"
#include "rxresult.h"
#include "ulcode.h"

/* Slack on the timing rules for burst start/end estimates (a few symbols at 100 baud). */
#define ASSEMBLER_TIME_TOLERANCE_S 0.05
/* T_LF of Tables 3-4 and 4-2 (RC3, RC5): every frame of a message within 8 s. */
#define ASSEMBLER_T_LF_S 8.0
/* Symbols of an unread burst the assembler keeps (assembler_push_unread): from this many
 * before the demodulator's first preamble symbol to as many after the longest frame. */
#define ASSEMBLER_UNREAD_SLACK 4
#define ASSEMBLER_UNREAD_SYMBOLS (2 * ASSEMBLER_UNREAD_SLACK + UL_HEADER_BITS + UL_CODE_MAX_BITS)
/* Unread bursts with a higher SNR estimate are not kept: there an unreadable FT is a
 * collision, not noise, and the coherent decoder would only spend time on it. */
#define ASSEMBLER_UNREAD_MAX_SNR_DB 6.0
/* min_orphan_snr_db for a receiver with a key store (rx.c, and sigfox-bench feeding the
 * assembler as rx.c does). There every joint result must pass UL-AUTH, so failed replicas
 * are kept down to this demodulator SNR estimate instead of -1 dB. On weak tracks the
 * receiver's estimate is spread wider than with known positions (at 1 dB Eb/N0, 3.6 % of
 * them under -1 dB against 1 %), and every kept replica helps its message: BR100 / BR600
 * messages lost at 1 dB 100 / 76 -> 93 / 67 of 400 (sigfox-bench sensitivity --pipeline
 * --combined-only), false-frames unchanged (0 false, the same speed). */
#define ASSEMBLER_KEYED_MIN_ORPHAN_SNR_DB (-2.0)
/* Largest fraction of a replica's sign decisions that may disagree with the message it
 * is matched to or decoded with. */
#define ASSEMBLER_MAX_REPLICA_BER 0.30

enum assembler_error {
    ASSEMBLER_OK = 0,
    ASSEMBLER_ERR_ARG = -1, /* NULL pointer, bad rank/size/baud, missing soft values */
};

typedef struct {
    const rc_params_t *rc;    /* timing rules; NULL: RC1 */
    const keystore_t *keys;   /* NULL: AUTH unchecked */
    double latency_s;         /* how long after a burst's end the pipeline may still
                                 report it; 0: 1.0 s */
    size_t max_pending;       /* orphans kept and messages open; 0: 256 */
    int max_joint_attempts;   /* joint decodings per arriving burst; 0: 16 */
    double min_orphan_snr_db; /* failed bursts below this SNR (dB in baud Hz) are not
                                 kept for combining; 0 selects -1 dB */
    rx_message_cb on_message; /* required */
    void *user;
} assembler_config_t;

typedef struct {
    uint64_t frames_in;         /* CRC-valid frames pushed */
    uint64_t orphans_in;        /* CRC-failed frames pushed (readable FT) */
    uint64_t messages;          /* messages emitted */
    uint64_t messages_combined; /* of which recovered only by joint decoding */
    uint64_t replicas_matched;  /* failed replicas attached to a known message */
    uint64_t joint_attempts;    /* Viterbi decodings tried */
    uint64_t joint_rejected;    /* CRC-valid joint results refused (consistency, AUTH) */
    uint64_t coherent_attempts; /* joint coherent decodings (uljoint.h) after a failed
                                   Viterbi decoding */
    uint64_t coherent_decoded;  /* of which CRC-valid (then checked as joint results) */
    uint64_t orphans_expired;   /* failed bursts never combined */
    uint64_t orphans_weak;      /* failed bursts below min_orphan_snr_db, not kept */
    uint64_t dropped;           /* orphans/unread bursts/messages pushed out by max_pending */
    uint64_t duplicates;        /* frames whose rank the message already had */
    uint64_t unread_in;         /* bursts pushed with an unreadable FT */
    uint64_t unread_kept;       /* of which kept (key store, SNR within the bounds) */
    uint64_t unread_used;       /* of which taken into a message by the coherent decoder */
} assembler_stats_t;

typedef struct assembler assembler_t;

/* NULL when cfg is NULL, on_message is NULL or memory is short. */
assembler_t *assembler_create(const assembler_config_t *cfg);

/* Adds one burst. f: its radio data and frame (f->frame.crc_ok tells whether it decoded
 * alone; f->t_start_s/t_end_s are stream time, f->baud 100 or 600). For a CRC-failed
 * burst body_soft holds ul_body_bits(f->frame.container_len) soft values of the coded
 * body (uldecode_result_t.body_soft); for a valid frame it may be NULL. f->auth is
 * recomputed for messages. May call on_message. Returns 0 or ASSEMBLER_ERR_ARG. */
int assembler_push(assembler_t *q, const rx_frame_t *f, const float *body_soft);

/* The same, with the burst's matched-filter symbols when it failed alone: sym holds
 * ul_joint_symbols(f->frame.container_len) values from its first preamble symbol (carrier
 * removed, phase free: demod_symbols). When the Viterbi decoding of a group fails, a
 * group whose members all carry symbols is decoded once more by the joint coherent
 * decoder (ul_joint_decode_iq, about 2 dB further down) — only with a key store, and the
 * result passes the same checks (CRC, UL-AUTH, consistency with each replica). sym may be
 * NULL (assembler_push). */
int assembler_push_sym(assembler_t *q, const rx_frame_t *f, const float *body_soft,
                       const float complex *sym);

/* A burst whose preamble matched but whose FT did not read (rank and size unknown), with
 * its matched-filter symbols (demod_symbols: sym[0..nsym), sym[first] the demodulator's
 * first preamble symbol) and radio fields (f->frame is ignored). Kept only with a key
 * store and an SNR estimate from min_orphan_snr_db to ASSEMBLER_UNREAD_MAX_SNR_DB, for as
 * long as it could belong to a message. When the joint coherent decoding of a group of
 * failed replicas runs (see assembler_push_sym), such bursts are tried in the ranks the
 * group lacks (same baud, timing of that rank; a lone failed replica is tried with them
 * too), each aligned on that rank's preamble + FT within ASSEMBLER_UNREAD_SLACK symbols
 * of its start, the 3 per rank that match that header best (at least 0.15, see below);
 * the result passes the same checks, UL-AUTH included, and an unread burst counts as used
 * only when its differential decisions agree with the decoded frame (at most
 * ASSEMBLER_MAX_REPLICA_BER wrong): one that merely came along stays free for its own
 * message. Its arrival also re-examines the failed replicas nearest in time whose
 * sibling it could be (combinations that hold it only).
 * When it is still unused, it is tried with one or two other unread bursts of its baud as
 * a message none of whose replicas read its FT: ranks in time order, every FT family of
 * Table 3-3 whose frame durations fit the gaps of Table 3-4/4-2, the hypotheses ordered
 * by how well each member's first 32 symbols match that rank's preamble + FT
 * (ul_joint_align_match; a member under 0.15 rules a hypothesis out), the best 2 decoded
 * jointly (UL-AUTH decides; the message lists the members with the ranks they took; one
 * whose ID, MC and content a message already has joins it). Only bursts estimated at
 * most 3 dB take part in such groups: above, an unreadable FT is a collision. At most 24
 * coherent decodings per pushed unread burst, 16 per failed replica. Returns 0 or
 * ASSEMBLER_ERR_ARG. */
int assembler_push_unread(assembler_t *q, const rx_frame_t *f, const float complex *sym,
                          size_t nsym, size_t first);

/* assembler_push_sym for a burst that failed alone, with its symbols around the
 * demodulator's first preamble symbol as well (ctx[0..nctx), ctx[first] that symbol, as
 * assembler_push_unread takes them). With a key store, while the failed replica waits for
 * siblings it is also kept as an unread burst: its FT reading may be wrong near the noise
 * (another rank of the family, read within 2 bits) or its start a few symbols off, and as
 * an unread burst it is tried in every rank and family, aligned within
 * ASSEMBLER_UNREAD_SLACK (up to 24 more coherent decodings). Both are one burst: when
 * either joins a message the other goes. Only for bursts estimated at most 3 dB; a
 * failed replica too weak for min_orphan_snr_db is still kept as unread down to 1 dB
 * under it. Returns 0 or ASSEMBLER_ERR_ARG (also for a CRC-valid frame). */
int assembler_push_failed(assembler_t *q, const rx_frame_t *f, const float *body_soft,
                          const float complex *sym, const float complex *ctx, size_t nctx,
                          size_t first);

/* Tells the assembler that the stream has reached now_s (stream time): emits messages
 * whose window has closed and forgets orphans that can no longer be combined. Returns the
 * number of messages emitted. */
int assembler_advance(assembler_t *q, double now_s);

/* End of stream: emits every open message. Returns the number emitted. */
int assembler_flush(assembler_t *q);

void assembler_get_stats(const assembler_t *q, assembler_stats_t *stats);

/* NULL-safe; does not emit. */
void assembler_destroy(assembler_t *q);

#endif
