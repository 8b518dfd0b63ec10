/* nssoft: the network core's soft combining across stations. Licence: MIT.
 *
 * A burst that several stations synchronised on but none decoded (each station sends its
 * demodulator's soft values as a "softframe", evjson.h / docs/api.md) is often decodable
 * from all of them together: each station's LLRs of the same frame bits carry independent
 * noise, so their sum is the maximum-ratio combination (two stations at equal SNR: +3 dB).
 *
 *   station softframe --nssoft_push--> pending soft frames (bounded, window_s)
 *       group: the new one + at most one pending soft frame per other station that is the
 *              same burst (same baud, burst times within time_tolerance_s, carriers within
 *              freq_tolerance_hz: station clocks and oscillators differ) and whose sign
 *              decisions agree with it on >= NSSOFT_MIN_AGREEMENT of the common bits
 *              (unrelated bursts agree on ~50 %)
 *       sum of the group's LLRs --uldecode_frame--> FT, un-coding, CRC, fields
 *       valid: on_decoded(frame, members) — the core ingests it as a frame from each member
 *              station, where UL-AUTH is checked with the device's key (nscore.h)
 *       invalid, or one station only: the burst's replicas (other ranks of the same container
 *              size, control flag and baud, on air in rank order within T_LF = 8 s, each
 *              summed over its own stations in the same way) are decoded jointly with it by
 *              the rate-1/3 Viterbi decoder (ul_frame_decode_joint), as a station's
 *              assembler does with its own replicas: at most NSSOFT_JOINT_ATTEMPTS groups per
 *              arriving soft frame, each member consistent with the result (its sign
 *              decisions agree with the frame re-encoded for its rank on >= 70 %)
 * Only stations whose own soft frame confirms the frame are reported (its confident bits,
 * |LLR| >= 4.6, agree with the frame re-encoded for its rank but for 1 in 50): a burst of
 * a device with a neighbouring ID and the same payload agrees on 70-85 % of its bits and
 * may be summed, but is not credited (it stays pending for its own message); when no
 * member confirms, all are reported. A soft frame that comes later for a burst or a
 * replica of a message already decoded, and confirms it, is reported alone with the
 * decoded frame, so the core counts that station's reception too. A group that fails
 * stays pending: a later station's soft frame may complete it.
 *
 * False messages. Per decoding of one burst, unrelated or noise soft values pass the
 * CRC-16 with probability 2^-16; a joint decoding checks up to 4 Viterbi candidates
 * (4 x 2^-16), the chase decoder (with key_of) chase_trials patterns (T x 2^-16, and it
 * needs the key itself). The core then needs a registered device (K 2^-32 for K devices)
 * and its UL-AUTH (2^-16 for the shortest, 2-byte AUTH): <= K 2^-62 per decoding, at
 * most 1 + T + 4 x NSSOFT_JOINT_ATTEMPTS CRC trials per arriving soft frame
 * (docs/receiver.md, "False accepts"; docs/ns.md).
 *
 * Bounded: at most max_pending soft frames (the oldest is dropped and counted), no
 * allocation after create. Not thread-safe: the core's ingest thread pushes and expires.
 */
#ifndef SIGFOX_NSSOFT_H
#define SIGFOX_NSSOFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rxresult.h"
#include "ulframe.h"

#define NSSOFT_DEFAULT_WINDOW_S 10.0      /* a burst's soft frames reach the core within this */
#define NSSOFT_DEFAULT_TIME_TOL_S 0.25    /* station clocks (NTP/GPS) agree within this */
#define NSSOFT_DEFAULT_FREQ_TOL_HZ 3000.0 /* station oscillators: ~3.5 ppm at 868 MHz */
#define NSSOFT_DEFAULT_MAX_PENDING 2048
#define NSSOFT_MAX_MEMBERS 8              /* stations combined into one decoding */
#define NSSOFT_MIN_AGREEMENT 0.70
#define NSSOFT_STATION_MAX 64             /* station_id bytes with the NUL */
#define NSSOFT_JOINT_ATTEMPTS 8           /* replica groups per arriving soft frame */

typedef struct {
    double window_s;        /* 0: NSSOFT_DEFAULT_WINDOW_S */
    double time_tol_s;      /* 0: NSSOFT_DEFAULT_TIME_TOL_S */
    double freq_tol_hz;     /* 0: NSSOFT_DEFAULT_FREQ_TOL_HZ */
    size_t max_pending;     /* 0: NSSOFT_DEFAULT_MAX_PENDING */
    /* Optional: the registry's device keys. With them a burst whose summed soft values
     * fail the CRC is corrected by the chase decoder (uldecode_chase_with), a lone
     * station's burst too (a station without keys never chases): chase_trials patterns
     * (0: ULDECODE_CHASE_DEFAULT_TRIALS, negative: off). */
    int (*key_of)(uint32_t ep_id, uint8_t key[UL_KEY_BYTES], void *user); /* uldecode_key_fn */
    void *key_user;
    int chase_trials;
} nssoft_config_t;

/* One station's view of a burst in a decoded group. */
typedef struct {
    char station_id[NSSOFT_STATION_MAX];
    double t_s;       /* the burst's time at that station (seconds since 1970) */
    double snr_db, rssi_dbfs, freq_hz;
    int baud;
    int rank;         /* the replica this station's burst was (1..3) */
} nssoft_member_t;

typedef struct {
    ul_frame_t frame;       /* CRC-valid, fields parsed; rank 1..3, or 0 when decoded from
                               several replicas (each member has its own rank) */
    size_t nmembers;        /* 1 (a late station of a decoded burst) .. NSSOFT_MAX_MEMBERS */
    nssoft_member_t members[NSSOFT_MAX_MEMBERS];
    size_t ncombined;       /* stations whose soft values were summed for this frame */
} nssoft_result_t;

typedef void (*nssoft_decoded_fn)(const nssoft_result_t *r, void *user);

typedef struct {
    uint64_t softframes_in;    /* pushed and valid */
    uint64_t softframes_bad;   /* refused by nssoft_push (invalid arguments) */
    uint64_t groups_tried;     /* decodings of summed soft values */
    uint64_t frames_decoded;   /* frames reported from summed soft values (CRC-valid) */
    uint64_t frames_joint;     /* of which only by decoding several replicas jointly */
    uint64_t frames_corrected; /* of which corrected by the chase decoder (key_of) */
    uint64_t late_members;     /* soft frames matched to a burst decoded before */
    uint64_t expired;          /* left the window without being decoded */
    uint64_t dropped;          /* pushed out by max_pending */
} nssoft_stats_t;

typedef struct nssoft nssoft_t;

/* NULL when fn is NULL, a tolerance is negative or not finite, or memory is short. */
nssoft_t *nssoft_create(const nssoft_config_t *cfg, nssoft_decoded_fn fn, void *user);
void nssoft_destroy(nssoft_t *s);

/* Adds station_id's soft frame sf of a burst at t_s (seconds since 1970, the station's
 * time of its first preamble symbol), at core time now (same clock; soft frames older
 * than window_s are forgotten first). May call fn. Returns 1 when a frame was decoded
 * (fn called), 0 when sf was kept, -1 for invalid arguments (NULL, empty or over-long
 * station_id, baud not 100/600, nsoft outside 13..RX_SOFT_MAX, non-finite t_s, now,
 * carrier or LLR). */
int nssoft_push(nssoft_t *s, const char *station_id, const rx_softframe_t *sf, double t_s,
                double now);

/* Forgets soft frames older than window_s at now. */
void nssoft_expire(nssoft_t *s, double now);

void nssoft_get_stats(const nssoft_t *s, nssoft_stats_t *st);

#endif
