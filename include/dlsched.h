/* dlsched: the downlink scheduler, which answers B-procedure requests (spec rev 1.4 §4.9,
 * §5.2; seeds/000 §3.4, §7.1.3). Licence: MIT. docs/downlink-scheduler.md is the guide.
 *
 * Input: every decoded uplink frame or message (dlsched_uplink(), or the rx.h helpers).
 * An authenticated application message with BF=1 opens a request for its (ep_id, MC):
 *
 *   first UL frame                     device receive window (Table 4-1)
 *   |=====|-------- T_W --------------|[margin|DL|.............................margin]|
 *         ^ t_end1                     ^ t_end1 + T_W                  t_end1 + T_W + T_RX
 *
 *  - timing: t_end1 is the first frame's measured end. When only a later replica r was
 *    decoded, t_end1 is derived from it: t_start_r - (r-1)·T_IFB - (r-2)·D (D its
 *    duration) with T_IFB anywhere in Table 4-2's range (T_LF = 8 s when T_IFB has no
 *    maximum, RC3/RC5); the window used is the part that is certain for every T_IFB,
 *    and later replicas narrow it. The DL starts `window_margin_s` after the (latest
 *    possible) window start, or later when the transmitter is busy or a callback answer
 *    came late, and must end `window_margin_s` before the (earliest possible) window end.
 *  - frequency (§4.9.2): first frame's carrier + Δf_GAP (Table 2-1). A replica r > 1
 *    gives it as f_2 - Δf_MF or f_3 + Δf_MF (Table 4-3; frame 2 above, frame 3 below the
 *    first, as Sigfox's EP library does). tx_freq_hz = freq_hz / (1 + tx_ppm·1e-6) is what
 *    to synthesise on a transmitter whose reference is off by tx_ppm.
 *  - payload: per device, `direct` (a fixed 8-byte payload from the configuration) or
 *    `callback` (the default for devices without a direct payload: a DLSCHED_EV_REQUEST
 *    event asks the application, which answers with the `downlink` command before
 *    deadline_s; evjson_cmd_downlink() validates it) or `off`.
 *  - limits: a duty-cycle budget (fraction of a sliding window, default 10 % per hour,
 *    counted over bursts in the duty band, RC1: 869.40-869.65 MHz) and a per-device quota
 *    (default 4 downlinks per sliding 24 h, seeds/000 §3.4). Bursts never overlap each
 *    other (one transmitter). Every refusal is an event with a status and a reason.
 *  - commit: at t_start - tx_lead_s (stream time) the frame is built (dl_frame_encode with
 *    the device key) and a DLSCHED_EV_SCHEDULED event carries it to the transmitter.
 *  - confirmation (§5.2, Table 4-1): an authenticated dl_confirmation from the device with
 *    MC = request MC + 1 (mod 4096; Annex C: 0x672 -> 0x673) starting T_CONF_MIN..T_CONF_MAX
 *    (± conf_tolerance_s) after the DL end -> DLSCHED_EV_ACK; none by then (plus the
 *    confirmation frame's duration and rx_latency_s) -> DLSCHED_EV_LOST.
 *
 * Time: every time is on the receive stream's time base (seconds from the first input
 * sample, like rx_frame_t.t_start_s). The scheduler never reads a clock: its "now" is the
 * largest time given to dlsched_tick()/dlsched_uplink() so far, so a --replay produces
 * the same schedule as the live run (callback answers excepted: they arrive when the
 * application sends them, and count at the scheduler's "now" of that moment).
 *
 * Threads: every function takes an internal lock, so the receive thread (uplink, tick),
 * the command thread (evjson_cmd_downlink) and the transmit thread (dlsched_tx_done) may
 * call concurrently. on_event runs on the calling thread with the lock held: it must not
 * call dlsched_* functions (publishing and txsink_submit() are fine).
 */
#ifndef SIGFOX_DLSCHED_H
#define SIGFOX_DLSCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dlframe.h"
#include "keys.h"
#include "rc.h"
#include "rxresult.h"
#include "ulframe.h"

#define DLSCHED_BAUD 600.0 /* Table 2-3 */
/* On-air time of one DL burst: 224 bits plus a 0.5-symbol ramp at each end (§2.5.6, the
 * longest gfskmod allows), used for the duty-cycle budget and for busy slots. */
#define DLSCHED_BURST_S ((DL_FRAME_BITS + 1.0) / DLSCHED_BAUD)
#define DLSCHED_RAMP_S (0.5 / DLSCHED_BAUD)
#define DLSCHED_DEFAULT_QUOTA 4       /* seeds/000 §3.4: 4 downlinks per device per day */
#define DLSCHED_MAX_QUOTA 64          /* largest per-device quota (history kept per device) */
#define DLSCHED_T_LF_S 8.0            /* Table 4-2: T_LF (RC3/RC5 with LBT) */
#define DLSCHED_REASON_MAX 192

enum dlsched_error {
    DLSCHED_OK = 0,
    DLSCHED_ERR_ARG = -1,   /* NULL pointer, value out of range */
    DLSCHED_ERR_NOMEM = -2,
};
const char *dlsched_strerror(int code);

/* Where a device's downlink payload comes from (seeds/000 §7.1.3). */
typedef enum {
    DLSCHED_MODE_CALLBACK = 0, /* ask the application (downlink_request event) */
    DLSCHED_MODE_DIRECT,       /* fixed payload from the configuration */
    DLSCHED_MODE_OFF,          /* never answer (requests are refused with a reason) */
} dlsched_mode_t;
/* "callback", "direct", "off". */
const char *dlsched_mode_name(dlsched_mode_t mode);
/* Parses those names (case-insensitive). Returns the mode or -1. */
int dlsched_mode_from_name(const char *name);

/* One device's downlink settings. */
typedef struct {
    uint32_t ep_id;
    dlsched_mode_t mode;
    uint8_t payload[DL_PAYLOAD_BYTES]; /* direct mode */
    int daily_quota;                   /* 0: the configuration's; < 0: no limit;
                                          1..DLSCHED_MAX_QUOTA */
} dlsched_device_t;

typedef enum {
    DLSCHED_EV_REQUEST = 0, /* "downlink_request": callback mode, the application must answer */
    DLSCHED_EV_SCHEDULED,   /* "downlink_scheduled": frame built, hand it to the transmitter */
    DLSCHED_EV_REFUSED,     /* "downlink_refused": status/reason say why */
    DLSCHED_EV_NO_ANSWER,   /* "downlink_no_answer": no callback answer before the deadline */
    DLSCHED_EV_SENT,        /* "downlink_sent": the transmitter reported the burst done */
    DLSCHED_EV_TX_FAILED,   /* "downlink_failed": the transmitter could not send it */
    DLSCHED_EV_ACK,         /* "downlink_ack": the device confirmed (§5.2) */
    DLSCHED_EV_LOST,        /* "downlink_lost": no confirmation in time */
} dlsched_event_type_t;
/* The JSON "type" / ZeroMQ topic of an event type ("downlink_request", ...). */
const char *dlsched_event_name(dlsched_event_type_t type);

/* Machine-readable outcome ("status" in JSON); the event's reason says it in words. */
typedef enum {
    DLSCHED_ST_OK = 0,        /* "ok" */
    DLSCHED_ST_QUOTA,         /* "quota": the device's daily downlinks are used up */
    DLSCHED_ST_DUTY_CYCLE,    /* "duty_cycle": the budget of the duty band is used up */
    DLSCHED_ST_OUT_OF_BAND,   /* "out_of_band": the DL carrier is outside the duty band */
    DLSCHED_ST_WINDOW,        /* "window": the receive window cannot be met any more */
    DLSCHED_ST_TX_BUSY,       /* "tx_busy": no free transmitter slot inside the window */
    DLSCHED_ST_NO_KEY,        /* "no_key": no device key for DL-AUTH */
    DLSCHED_ST_DISABLED,      /* "disabled": downlink mode off for the device */
    DLSCHED_ST_TABLE_FULL,    /* "table_full": too many requests or devices at once */
    DLSCHED_ST_DECLINED,      /* "declined": the application answered "payload": null */
    DLSCHED_ST_NO_ANSWER,     /* "no_answer": callback deadline passed */
    DLSCHED_ST_TIMEOUT,       /* "timeout": no confirmation within T_CONF */
    DLSCHED_ST_END_OF_STREAM, /* "end_of_stream": the input ended first (dlsched_flush) */
    DLSCHED_ST_TX_ERROR,      /* "tx_error": the transmitter failed or refused the burst */
    DLSCHED_ST_CODEC,         /* "codec": dl_frame_encode failed */
} dlsched_status_t;
const char *dlsched_status_name(dlsched_status_t st);

/* One event. Fields not meaningful for a type are 0 / false (has_* flags say which). */
typedef struct {
    dlsched_event_type_t type;
    dlsched_status_t status;
    char reason[DLSCHED_REASON_MAX]; /* "" for plain successes */
    uint32_t id;                     /* request number, unique per dlsched_t, from 1 */
    uint32_t ep_id;
    uint16_t mc;                     /* the request's MC (the UL message's) */
    dlsched_mode_t mode;
    /* Uplink and receive window (all but table_full refusals). */
    bool has_window;
    double ul_freq_hz;               /* first frame's carrier (measured or derived) */
    double ul_t_end_s;               /* first frame's end (derived: the latest possible) */
    int ul_rank;                     /* lowest replica rank the estimate comes from */
    bool ul_derived;                 /* first frame not decoded: derived from ul_rank */
    double window_start_s;           /* device listens from here ... */
    double window_end_s;             /* ... to here (certain part, see above) */
    double deadline_s;               /* callback: last stream time for an answer */
    /* Planned or committed downlink. */
    bool has_dl;
    double freq_hz;                  /* DL carrier on air = ul_freq_hz + Δf_GAP */
    double tx_freq_hz;               /* to synthesise, ppm-corrected */
    double t_start_s;                /* first preamble bit on air */
    double t_end_s;                  /* end of the last bit */
    bool has_payload;
    uint8_t payload[DL_PAYLOAD_BYTES];
    bool has_frame;                  /* SCHEDULED: the whole frame */
    uint8_t frame[DL_FRAME_BYTES];   /* bitstream: preamble, FT, DL-PHY-CONTENT */
    uint8_t phy[DL_PHY_BYTES];       /* dl_phy_content (whitened) */
    uint8_t dl_auth[DL_AUTH_BYTES];
    /* Limits at commit or refusal time. */
    bool has_limits;
    double duty_used_s, duty_budget_s; /* on-air seconds in the sliding window */
    int quota_used, quota_limit;       /* quota_limit < 0: no limit */
    /* Transmitter report (SENT / TX_FAILED). */
    char file[1040];                 /* file sink: the IQ file written ("" otherwise) */
    /* Confirmation (ACK; LOST gives the window it waited for). */
    bool has_conf;
    double conf_window_start_s, conf_window_end_s;
    uint16_t conf_mc;
    double conf_t_start_s;           /* confirmation frame's first preamble symbol */
    double t_conf_s;                 /* conf_t_start_s - t_end_s (Table 4-1: 1.4 .. 4 s) */
    ul_control_t control;            /* vdd_idle_mv, vdd_tx_mv, temp_tenth_c, rssi_dbm */
    double conf_freq_hz, conf_rssi_dbfs, conf_snr_db;
} dlsched_event_t;

/* Receives each event. For DLSCHED_EV_SCHEDULED the return value says whether the
 * transmitter took the burst: < 0 marks the request failed (a DLSCHED_EV_TX_FAILED event
 * follows and the budget is given back). Other types ignore it. The event is valid only
 * during the call. Runs with the scheduler's lock held: no dlsched_* calls inside. */
typedef int (*dlsched_event_cb)(const dlsched_event_t *ev, void *user);

typedef struct {
    const rc_params_t *rc;           /* required (rc_lookup("RC1")) */
    const keystore_t *keys;          /* device keys for DL-AUTH; not owned, must stay
                                        unchanged while the scheduler lives */
    const dlsched_device_t *devices; /* copied; ep_ids must be unique */
    size_t ndevices;
    dlsched_mode_t default_mode;     /* devices not listed (0 = CALLBACK) */
    double window_margin_s;          /* distance from both window edges; 0: 1.0 s */
    double tx_lead_s;                /* commit this long before t_start; 0: 2.0 s */
    double answer_timeout_s;         /* callback: the application must answer within this
                                        long of the request (seeds/000 §7.1.3 gives an HTTP
                                        callback 10 s); the deadline is the earlier of this
                                        and the window's; 0: the window's only */
    double tx_ppm;                   /* transmitter reference error, ppm (-100 .. 100) */
    double tx_guard_s;               /* gap between two DL bursts; 0: 0.05 s */
    double duty_cycle;               /* fraction of duty_window_s, (0, 1]; 0: 0.10;
                                        1: no limit */
    double duty_window_s;            /* sliding window; 0: 3600 s */
    double duty_band_lo_hz;          /* band the budget covers; both 0: RC1 869.40-869.65 MHz,
                                        other RCs the DL operating macro-channel
                                        (Table 2-1, ±96 kHz); a DL outside it is refused */
    double duty_band_hi_hz;
    int daily_quota;                 /* per device; 0: 4; < 0: no limit; max 64 */
    double quota_window_s;           /* sliding window for the quota; 0: 86400 s */
    double conf_tolerance_s;         /* slack on T_CONF; 0: 0.5 s */
    double rx_latency_s;             /* how long after a frame ends the receiver reports it;
                                        0: 3.0 s (the lost verdict waits this much more);
                                        >= 10 s if confirmations only come from message
                                        events (see dlsched_rx_frame) */
    double retain_s;                 /* finished requests are kept this long after their
                                        last deadline, to explain late answers; 0: 120 s */
    size_t max_requests;             /* requests tracked at once; 0: 64 */
    size_t max_devices;              /* device table (configured + heard); 0: 4096 */
    bool remote_answers;             /* a network core answers (docs/ns.md): every device is
                                        in callback mode, a BF=1 frame whose UL-AUTH could
                                        not be checked here (no key) still opens a request
                                        (a failed check does not), confirmations likewise,
                                        dlsched_rx_frame opens requests (the core answers
                                        on the first frames, before the message is
                                        assembled), and answers may carry DL-AUTH
                                        (dlsched_answer_auth)
                                        so no device key is needed; anti-replay is the
                                        core's job */
    dlsched_event_cb on_event;       /* required */
    void *user;
} dlsched_config_t;

/* One decoded uplink frame, as the scheduler needs it. */
typedef struct {
    uint32_t ep_id;
    uint16_t mc;
    bool bf;
    ul_kind_t kind;
    bool auth_ok;            /* UL-AUTH verified with the device key */
    bool auth_bad;           /* UL-AUTH checked and wrong (remote_answers: not trusted) */
    int rank;                /* replica 1..3 (N=1 is rank 1); 0: unknown (no timing use) */
    int baud;                /* 100 or 600 */
    double freq_hz;          /* absolute carrier at the first preamble symbol */
    double t_start_s;        /* first preamble symbol, stream time */
    double t_end_s;          /* end of the last symbol */
    double rssi_dbfs, snr_db;
    ul_control_t control;    /* dl_confirmation: the device's report */
} dlsched_uplink_t;

typedef struct {
    uint64_t uplinks;          /* frames given to dlsched_uplink */
    uint64_t requests;         /* B-procedure requests opened */
    uint64_t ignored_unauth;   /* BF=1 without UL-AUTH ok: not answered */
    uint64_t scheduled;
    uint64_t refused;          /* all refusals; per status below */
    uint64_t refused_by[DLSCHED_ST_CODEC + 1];
    uint64_t no_answer;
    uint64_t answers_ok;       /* downlink commands accepted */
    uint64_t answers_rejected; /* ... rejected (late, unknown, malformed) */
    uint64_t sent, tx_failed;
    uint64_t acks, lost;
    uint64_t reservations;     /* other bursts given a transmitter slot (dlsched_reserve) */
    uint64_t reservations_refused; /* ... refused by the duty-cycle budget */
} dlsched_stats_t;

typedef struct dlsched dlsched_t;

/* Validates the configuration and allocates every table. Returns NULL with the reason
 * (naming the parameter) in err (err may be NULL). */
dlsched_t *dlsched_create(const dlsched_config_t *cfg, char *err, size_t err_len);

/* Feeds one decoded uplink frame (any kind; frames that do not matter are ignored).
 * Advances "now" to at least ul->t_end_s. Returns 1 when it opened/refined a request or
 * confirmed a downlink, 0 when ignored, DLSCHED_ERR_ARG on NULL. */
int dlsched_uplink(dlsched_t *q, const dlsched_uplink_t *ul);
/* From the receiver's structures. Intended wiring (docs/downlink-scheduler.md):
 *  - dlsched_rx_message() for every message that passed the anti-replay check: each
 *    replica (with the message's fields and auth) may open a request and sets the timing;
 *  - dlsched_rx_frame() for every frame event: it does NOT open requests (the frame has
 *    not been through anti-replay: a replayed recording must not burn quota or duty
 *    cycle), but refines an open request and, above all, delivers dl_confirmation frames
 *    at once (the assembler holds a single-frame message ~8.5 s waiting for replicas that
 *    never come, longer than rx_latency_s allows). Ignored unless crc_ok. With
 *    remote_answers it DOES open requests: the core answers on the first frames.
 * Return as dlsched_uplink (the largest result over the replicas). */
int dlsched_rx_frame(dlsched_t *q, const rx_frame_t *f);
int dlsched_rx_message(dlsched_t *q, const rx_message_t *m);

/* Advances "now" to now_s (the stream time of the last sample processed) and does what is
 * due: commits, callback deadlines, lost confirmations, clean-up. Call it after every
 * block. Returns the number of events emitted or DLSCHED_ERR_ARG. */
int dlsched_tick(dlsched_t *q, double now_s);

/* End of the input (end of a replay): what is ready is committed at its planned time,
 * callback requests without an answer end as no_answer and downlinks awaiting their
 * confirmation as lost, both with status end_of_stream. Returns the events emitted. */
int dlsched_flush(dlsched_t *q);
/* The first half of dlsched_flush(): commits what is ready at its planned time, closes
 * nothing. A caller that wants the transmitter's reports before the end-of-stream
 * verdicts calls this, waits for its transmitter, then dlsched_flush(). Returns the events
 * emitted. */
int dlsched_flush_commits(dlsched_t *q);

/* The application's answer to a DLSCHED_EV_REQUEST. payload NULL declines (no downlink,
 * status "declined"). On success returns 0 and fills *planned (may be NULL) with the
 * planned downlink (type REQUEST, has_dl); otherwise returns -1 with the reason in err:
 * no pending request for (ep_id, mc), device in direct mode, already answered, or late
 * (now past deadline_s). */
int dlsched_answer(dlsched_t *q, uint32_t ep_id, uint16_t mc, const uint8_t *payload,
                   dlsched_event_t *planned, char *err, size_t err_len);

/* The same with DL-AUTH computed by the network core (dl_auth: 2 bytes, or NULL to use
 * the device key at commit time): the frame is then built with dl_frame_encode_auth, so
 * the station needs no key for the device. */
int dlsched_answer_auth(dlsched_t *q, uint32_t ep_id, uint16_t mc, const uint8_t *payload,
                        const uint8_t *dl_auth, dlsched_event_t *planned, char *err,
                        size_t err_len);

/* Counts an answer refused before it reached dlsched_answer() (a malformed downlink
 * command, see evjson_cmd_downlink) in the answers_rejected counter. NULL-safe. */
void dlsched_count_rejected(dlsched_t *q);

/* The transmitter's report for request id (txsink result callback): ok -> DLSCHED_EV_SENT
 * (file: the IQ file written, may be NULL), failed -> DLSCHED_EV_TX_FAILED with error as
 * the reason, the budget given back and no lost verdict later. Returns 0, or
 * DLSCHED_ERR_ARG for an unknown or uncommitted id. */
int dlsched_tx_done(dlsched_t *q, uint32_t id, bool ok, const char *error, const char *file);

/* Reserves the transmitter for a burst that is not a downlink (a Monarch beacon) of dur_s
 * seconds on air, occupying freq_lo_hz .. freq_hi_hz, starting at the first moment >=
 * t_on_s that overlaps no committed downlink and no earlier reservation (with the
 * tx_guard_s gap). Downlinks committed later are placed around it. When its band overlaps
 * the duty band its on-air time counts toward the duty-cycle budget, and it is refused
 * when the budget has no room. Reservations are forgotten once they are a duty window in
 * the past; at most 16 are pending at once.
 * Returns 0 with the start in *t_on_out (may be NULL), 1 when refused (duty cycle, table
 * full: reason in why, may be NULL), DLSCHED_ERR_ARG on bad arguments. */
int dlsched_reserve(dlsched_t *q, double t_on_s, double dur_s, double freq_lo_hz,
                    double freq_hi_hz, double *t_on_out, char *why, size_t why_len);

void dlsched_get_stats(dlsched_t *q, dlsched_stats_t *out);

/* NULL-safe. Emits nothing. */
void dlsched_destroy(dlsched_t *q);
/* Runs fn(arg) while holding the scheduler's lock: the way to change the key store the
 * scheduler reads (cfg.keys, e.g. a SIGHUP reload) without racing the command and
 * transmit threads, which reach it only through the scheduler. q NULL: just fn(arg). */
void dlsched_locked(dlsched_t *q, void (*fn)(void *arg), void *arg);

#endif
