/* truth: score decoded uplink output against the synthesizer's ground truth (the
 * rtl_433_tests "compare minus volatile fields" step). Licence: MIT. docs/score.md.
 *
 * Inputs are JSON lines:
 *   truth    FILE.truth.jsonl of sigfox-synth (docs/synth.md): "type":"burst" lines are
 *            records, "interferer" lines are counted, other types are skipped.
 *   decoded  sigfoxd --replay output or PUB events (docs/api.md): "frame", "message" and
 *            "replay" lines are records, other types (stats, log, ...) are skipped.
 * A line that is not a JSON object, has no "type", or lacks/mistypes a field the scoring
 * needs is an error naming the file, the line and the field. Empty lines are skipped.
 *
 * Matching (truth_score):
 *   A decoded frame matches a truth burst when ep_id and mc agree, the rank agrees when
 *   the frame's rank is known (1..3; 0 = jointly decoded matches any rank), |t_start_s
 *   difference| <= time_tol_symbols / baud + time_tol_s and |freq_hz difference| <=
 *   freq_tol_hz (inclusive; baud of the truth burst). The message fields payload or
 *   payload_bit, bf and kind must then be equal as well, otherwise the frame is "wrong".
 *   Truth messages are the truth bursts grouped by ep_id + mc (+ the synthesizer's
 *   "message" number when present); a decoded message matches one when ep_id and mc agree
 *   and its t_start_s/freq_hz (of its first replica received) are within the tolerances
 *   of one of the message's bursts; fields are compared as for frames.
 *
 * Every decoded record with message fields gets exactly one class:
 *   matched    the first exact match of a truth burst/message
 *   duplicate  an exact match of a truth burst/message that was already matched
 *   wrong      matches ep_id/mc(/rank)/time/frequency but payload, bf or kind differ
 *   misplaced  the ep_id + mc of a truth burst/message, but outside the tolerances (or
 *              another rank): a real frame whose time or carrier estimate is bad
 *   false      no truth burst/message has its ep_id + mc: CRC-valid garbage, the worst
 *              error a base station can make
 * Decoded frames with crc_ok false carry no fields; they are counted, never matched, and
 * only used to explain a miss. "replay" events are counted, never matched; a replay event
 * of a truth message that has no "message" event is its miss reason.
 *
 * Thread-safety: no shared state; functions on distinct objects may run concurrently.
 */
#ifndef SIGFOX_TRUTH_H
#define SIGFOX_TRUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "ulframe.h"

/* Error codes (negative returns). */
enum {
    TRUTH_ERR_ARG = -1,   /* NULL or invalid argument */
    TRUTH_ERR_IO = -2,    /* file cannot be opened or read */
    TRUTH_ERR_PARSE = -3, /* malformed line or inconsistent truth */
    TRUTH_ERR_NOMEM = -4,
};
/* Static text for a TRUTH_ERR_* code. */
const char *truth_strerror(int code);

typedef enum {
    TRUTH_REC_BURST = 0, /* truth file: one burst (frame on air) */
    TRUTH_REC_FRAME,     /* decoded: "type":"frame" */
    TRUTH_REC_MESSAGE,   /* decoded: "type":"message" */
    TRUTH_REC_REPLAY,    /* decoded: "type":"replay" (refused by the anti-replay window) */
} truth_rec_type_t;

/* Longest payload any kind carries: 12 application bytes (control messages: 7 or 8). */
#define TRUTH_MAX_PAYLOAD_BYTES UL_MAX_PAYLOAD_BYTES
#define TRUTH_MAX_REPLICAS 3

/* One JSON line. Numbers that are unknown are NAN, integers 0 or -1 as documented. */
typedef struct {
    truth_rec_type_t type;
    unsigned line;   /* 1-based line number in its file */
    bool has_fields; /* ep_id .. payload present (false only for frames with crc_ok
                        false or without "ep_id") */
    uint32_t ep_id;
    int mc; /* 0..4095 */
    bool bf;
    ul_kind_t kind;
    bool one_bit;    /* 1-bit message: payload_bit is the value, payload_len 0 */
    int payload_bit; /* 0/1 when one_bit, else -1 */
    uint8_t payload[TRUTH_MAX_PAYLOAD_BYTES];
    size_t payload_len;
    int rank;          /* 1..3; 0 unknown or jointly decoded */
    int baud;          /* 100 or 600; 0 unknown (optional in decoded lines) */
    double t_start_s;  /* first preamble symbol, seconds from the first sample */
    double freq_hz;    /* carrier at t_start_s */
    double drift_hz_s; /* NAN unknown */
    double ebn0_db;    /* truth: Eb/N0 (NAN when absent) */
    double snr_db;     /* decoded: SNR in baud Hz (NAN when absent) */
    bool crc_ok;       /* decoded frames: "crc_ok" (default true); truth: true */
    char auth[16];     /* decoded: "ok", "bad", ... ("" when absent) */
    bool collided;     /* truth flags (false when absent) */
    bool interfered;
    bool combined; /* decoded message: recovered by soft combining */
    int n_frames;  /* truth "n_frames" / decoded message "nframes"; 0 unknown */
    long message;  /* truth "message" number; -1 absent */
} truth_rec_t;

/* The records of one file. Zero-initialise before the first truth_set_read/load. */
typedef struct {
    truth_rec_t *recs;
    size_t n;
    size_t cap;
    size_t n_lines;       /* lines read, empty ones included */
    size_t n_interferers; /* truth: "interferer" lines */
    size_t n_skipped;     /* lines of other types (stats, log, ...) */
    size_t n_no_fields;   /* decoded frames without message fields (crc_ok false) */
    char name[256];       /* file name used in messages ("-" = stdin) */
} truth_set_t;

/* Parses one line. is_truth selects the truth schema, else the decoded-event schema.
 * Returns 1 with *rec filled, 0 for a line that is not a record (empty, interferer or
 * another type; *skip_kind then says which: 'e' empty, 'i' interferer, 's' other type;
 * skip_kind may be NULL), or TRUTH_ERR_PARSE with a message in err (NUL-terminated,
 * without file/line; err may be NULL). */
int truth_parse_line(const char *line, bool is_truth, truth_rec_t *rec, char *skip_kind, char *err,
                     size_t err_len);

/* Appends the records of an open stream to set; name is used in error messages and kept
 * in set->name. On error returns TRUTH_ERR_* and writes "NAME:LINE: problem" to err; the
 * records read before the bad line stay in set. */
int truth_set_read(truth_set_t *set, FILE *fp, const char *name, bool is_truth, char *err,
                   size_t err_len);
/* truth_set_read on a file path ("-" = stdin). */
int truth_set_load(truth_set_t *set, const char *path, bool is_truth, char *err, size_t err_len);
/* Appends one record (copied). Returns 0 or TRUTH_ERR_NOMEM/ARG. */
int truth_set_add(truth_set_t *set, const truth_rec_t *rec);
/* Frees the records and zeroes the set. NULL-safe. */
void truth_set_free(truth_set_t *set);

/* Matching and expectation parameters. */
typedef struct {
    double time_tol_symbols; /* time tolerance = symbols / baud + time_tol_s (2) */
    double time_tol_s;       /* (0.010) */
    double freq_tol_hz;      /* carrier tolerance (300) */
    double min_ebn0_db;      /* truth below this is not "expected" (-INFINITY) */
    bool expect_collided;    /* collided bursts are expected too (false) */
    bool expect_interfered;  /* interfered bursts are expected too (false) */
} truth_config_t;
void truth_config_default(truth_config_t *cfg);

/* Class of a decoded record (see the top of this file). */
typedef enum {
    TRUTH_DEC_SKIPPED = 0, /* no fields (crc_ok false), or a replay event (its .truth is
                              the message it would match, if any) */
    TRUTH_DEC_MATCHED,
    TRUTH_DEC_DUPLICATE,
    TRUTH_DEC_WRONG,
    TRUTH_DEC_MISPLACED,
    TRUTH_DEC_FALSE,
} truth_dec_class_t;

/* Why a truth burst or message was not matched. */
typedef enum {
    TRUTH_MISS_NONE = 0,     /* matched */
    TRUTH_MISS_WRONG_FIELDS, /* a frame/message of it was decoded with other fields */
    TRUTH_MISS_MISPLACED,    /* its ep_id+mc was decoded outside the tolerances */
    TRUTH_MISS_REPLAY,       /* message: published as a "replay" event only */
    TRUTH_MISS_CRC_BAD,      /* only a crc_ok=false frame at its time and carrier */
    TRUTH_MISS_OTHER_FRAME,  /* a frame of another ep_id/mc at its time and carrier */
    TRUTH_MISS_FRAMES_ONLY,  /* message: some of its frames decoded, no message event */
    TRUTH_MISS_NOTHING,      /* nothing decoded at that time and carrier */
} truth_miss_t;
const char *truth_miss_name(truth_miss_t m); /* "wrong_fields", "no_frame", ... */

/* One truth message: its bursts (indices into the truth set, in t_start_s order). */
typedef struct {
    size_t burst[TRUTH_MAX_REPLICAS];
    int n_bursts;
    bool expected; /* some burst expected (time/frequency/level/flags) */
    long dec;      /* decoded record index of the exact match, -1 none */
    long related;  /* decoded record index behind the miss reason, -1 none */
    truth_miss_t miss;
    int frames_matched; /* its bursts matched by decoded frames */
} truth_msg_t;

/* Result per truth burst. */
typedef struct {
    bool expected; /* ebn0 >= min and not collided/interfered (per config) */
    long dec;      /* decoded frame index of the exact match, -1 none */
    long related;  /* decoded record index behind the miss reason, -1 none */
    truth_miss_t miss;
    long msg; /* index into truth_score_t.msgs */
} truth_burst_res_t;

/* Result per decoded record. */
typedef struct {
    truth_dec_class_t cls;
    long truth; /* truth burst (frames) or message (messages) index it was compared with:
                   matched/duplicate/wrong: that one; misplaced: the nearest of the same
                   ep_id+mc; false/skipped: -1 */
} truth_dec_res_t;

/* Counts and errors for one baud group. "expected" counts only expected truth. */
typedef struct {
    size_t truth_frames, expected_frames;
    size_t matched_frames, matched_expected_frames;
    size_t missed_frames, missed_expected_frames;
    size_t decoded_frames; /* with fields */
    size_t false_frames, wrong_frames, misplaced_frames, duplicate_frames;
    size_t crc_bad_frames;
    size_t frames_auth_not_ok; /* matched frames whose "auth" is not "ok" (or absent) */

    size_t truth_messages, expected_messages;
    size_t matched_messages, matched_expected_messages;
    size_t missed_messages, missed_expected_messages;
    size_t decoded_messages;
    size_t false_messages, wrong_messages, misplaced_messages, duplicate_messages;
    size_t combined_messages;    /* matched messages with "combined": true */
    size_t messages_auth_not_ok; /* matched messages whose "auth" is not "ok" (or absent) */
    size_t replay_events;

    /* Over exactly matched frames: decoded minus truth. */
    size_t n_freq, n_time, n_snr;
    double freq_err_rms_hz, freq_err_max_hz; /* max of |error| */
    double time_err_rms_ms, time_err_max_ms;
    double snr_minus_ebn0_mean_db, snr_minus_ebn0_rms_db;
} truth_stats_t;

/* Stats groups: all bursts, BR100, BR600. Decoded records of unknown baud that match no
 * truth count only in the "all" group. */
enum { TRUTH_GROUP_ALL = 0, TRUTH_GROUP_BR100, TRUTH_GROUP_BR600, TRUTH_GROUPS };

typedef struct {
    truth_config_t cfg;
    const truth_set_t *truth;   /* borrowed, must outlive the score */
    const truth_set_t *decoded; /* borrowed */
    truth_burst_res_t *burst;   /* truth->n entries */
    truth_dec_res_t *dec;       /* decoded->n entries */
    truth_msg_t *msgs;
    size_t n_msgs;
    truth_stats_t stats[TRUTH_GROUPS];
} truth_score_t;

/* Matches decoded against truth (both sets borrowed) and fills *s. cfg NULL = defaults.
 * Returns 0, TRUTH_ERR_ARG (truth set holds decoded records or the reverse),
 * TRUTH_ERR_PARSE (more than 3 bursts in one truth message, message in err) or
 * TRUTH_ERR_NOMEM. *s is overwritten (free an earlier score first); free it with
 * truth_score_free even after an error. */
int truth_score(truth_score_t *s, const truth_set_t *truth, const truth_set_t *decoded,
                const truth_config_t *cfg, char *err, size_t err_len);
void truth_score_free(truth_score_t *s); /* NULL-safe */

/* Time tolerance for a burst of this baud, seconds. */
double truth_time_tol_s(const truth_config_t *cfg, int baud);

/* One line describing a miss or a decoded record's class, for humans, e.g.
 * "truth line 5: ep_id A8FA8BE8 mc 1717 rank 1 BR600 t 1.317190 s 868103991.5 Hz
 *  Eb/N0 11.8 dB collided: no frame at that time and carrier". Returns out. */
char *truth_describe_burst(const truth_score_t *s, size_t burst_idx, char *out, size_t len);
char *truth_describe_msg(const truth_score_t *s, size_t msg_idx, char *out, size_t len);
char *truth_describe_dec(const truth_score_t *s, size_t dec_idx, char *out, size_t len);

/* Expectations (the tool's exit status). Negative numbers / NAN disable a check. */
typedef struct {
    bool expect_all;        /* every expected truth message (frame with `frames`) is
                               matched exactly */
    bool frames;            /* expect_all and min_decoded apply to frames */
    long max_false;         /* false frames and false messages, each <= this */
    long max_duplicates;    /* duplicate messages <= this */
    long max_wrong;         /* wrong + misplaced frames and messages, each <= this */
    bool expect_auth;       /* every matched frame/message has auth "ok" */
    double min_decoded;     /* fraction 0..1 of expected messages (frames) matched */
    double max_freq_rms_hz; /* carrier error RMS over matched frames (all bauds) */
} truth_expect_t;
void truth_expect_default(truth_expect_t *e); /* everything disabled */

/* Checks s against e. Writes one line per failed expectation to why (may be NULL).
 * Returns the number of failed expectations (0 = pass). */
int truth_check(const truth_score_t *s, const truth_expect_t *e, char *why, size_t why_len);

/* The whole report as one JSON object (docs/score.md): configuration, per-group stats,
 * lists of missed/false/wrong/misplaced/duplicate entries (at most max_list each, the
 * counts are always complete; max_list < 0 = all). Caller puts it. NULL on no memory. */
json_object *truth_score_json(const truth_score_t *s, long max_list);

#endif
