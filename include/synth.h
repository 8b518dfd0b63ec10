/* synth: Sigfox uplink scenario synthesizer (device emulator) with ground truth.
 * Licence: MIT.
 *
 * Plans a capture of N devices sending messages exactly as spec rev 1.4 says (frame codec
 * ulframe.h, modulator dbpskmod.h), then renders it block by block in constant memory:
 *
 *   synth_config_default(&cfg); cfg.rc = 1; cfg.devices = 20; ...
 *   synth_t *s = synth_create(&cfg, err, sizeof err);     // plans all messages
 *   synth_add_message(s, &spec);                          // optional explicit traffic
 *   while ((n = synth_render(s, buf, 65536)) > 0) ...     // next n samples, any block size
 *   synth_truth_write(s, fp);                             // JSON lines (docs/synth.md)
 *   keystore_write(synth_keys(s), fp);                    // the device keys
 *   synth_destroy(s);
 *
 * What the planner follows (docs/synth.md has the details and reasoning):
 *  - carriers: each device picks f_UL uniformly in its allowed range (§3.13.3, Annex 8.3:
 *    the 192 kHz operating macro-channel shrunk by 1.62 ppm of the centre for the network
 *    and 20 ppm for the device), then its own reference error (up to ±20 ppm, §2.2.3)
 *    moves the actual carrier; replicas of a U-procedure get independent carriers, a
 *    B-procedure's frames 2 and 3 sit at f1 + Δf_MF and f1 - Δf_MF (Table 4-3);
 *  - gaps between frames: T_IFU (Table 3-4) in a U-procedure, T_IFB (Table 4-2) in a
 *    B-procedure; after a B-procedure the device listens T_W + T_RX (Table 4-1) before its
 *    next message;
 *  - per device: random ID and key, MC incrementing per message, frequency error, symbol
 *    rate error (±0.1 %, Table 2-3), ramps, 0-2 lead/tail symbols (§2.4.3), reversal dip
 *    width (kept inside Table 2-8); per burst: linear drift (Table 2-2), random phase.
 *  - Eb/N0: Eb = mean burst power over the data symbols × bit time; N0 = noise PSD: for
 *    complex noise of total variance σ² at rate fs, N0 = σ²/fs.
 *
 * Threads: a synth_t belongs to one thread. All randomness comes from cfg.seed: the same
 * configuration (and the same explicit additions and block sizes) gives the same samples.
 */
#ifndef SIGFOX_SYNTH_H
#define SIGFOX_SYNTH_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dbpskmod.h"
#include "keys.h"
#include "ulframe.h"

/* Negative return codes. */
enum synth_error {
    SYNTH_OK = 0,
    SYNTH_ERR_ARG = -1,   /* NULL pointer or value out of range (message in err) */
    SYNTH_ERR_STATE = -2, /* explicit traffic added after rendering started */
    SYNTH_ERR_RANGE = -3, /* a burst outside the capture's time or frequency span */
    SYNTH_ERR_CODEC = -4, /* the frame codec refused the message */
    SYNTH_ERR_NOMEM = -5,
    SYNTH_ERR_IO = -6,
};
const char *synth_strerror(int code);

/* baud selection */
#define SYNTH_BAUD_MIXED 0

typedef struct {
    uint64_t seed;
    double rate_sps;                 /* capture sample rate, 100e3..20e6 */
    double center_freq_hz;           /* capture centre; 0: the RC's UL centre */
    int rc;                          /* 1..7 (rc.h) */
    int devices;                     /* devices with random traffic; 0: explicit traffic only */
    double duration_s;               /* capture length */
    double ebn0_min_db, ebn0_max_db; /* per message, uniform (equal for a fixed value) */
    int baud;                        /* 100, 600 or SYNTH_BAUD_MIXED (per message, among the
                                        RC's allowed rates: RC2/RC4 are BR600 only) */
    double msg_interval_s;           /* mean pause between a device's messages (exponential);
                                        0: duration_s / 2 */
    /* Message mix: probabilities, the rest are application messages with 0-12 bytes. */
    double p_one_bit, p_keepalive, p_dl_confirmation;
    bool payload_classes;  /* application payloads drawn uniformly from the sized classes of
                              simpayload.h (random, all 0x00, all 0xFF, 0x55/0xAA, a record
                              with one byte counting), as real devices send them; false:
                              random bytes */
    double p_bf;           /* probability of a B-procedure (BF=1) per app message */
    double p_single_frame; /* probability of N=1 (else N=3) */
    /* Device impairment limits (each drawn uniformly in ±limit). */
    double freq_error_ppm_max;   /* §2.2.3: 20 */
    double drift_max_hz_s_br100; /* 0: 20, Table 2-2's mean limit (a linear drift has equal
                                    peak and mean drift, so the tighter row applies) */
    double drift_max_hz_s_br600; /* 0: 50 */
    double baud_error_ppm_max;   /* Table 2-3: 1000 */
    /* Channel. */
    bool noise;           /* add AWGN (levels are set from noise_dbfs either way) */
    double noise_dbfs;    /* total complex noise power σ² in dB full scale (-30) */
    int cw_tones;         /* CW interferers, each on for a random stretch */
    int fsk_interferers;  /* wider 2-GFSK interferers sending packets */
    double interferer_db; /* interferer power over N0 × 100 Hz (30) */
    int collisions;       /* deliberate collisions: extra single-frame messages from
                             extra devices overlapping a planned burst in time and
                             frequency */
    /* B-procedure scenario (docs/synth.md "B-procedures with confirmations"): every BF=1
     * message of the random traffic is assumed to get its downlink, whose first preamble
     * bit the device sees dl_offset_s after its receive window opens (first frame's end
     * + T_W, Table 4-1); the device then sends its DL confirmation (control frame CT
     * 0x09, single frame, MC + 1, spec §5.2) starting T_CONF (uniform in Table 4-1's
     * range) after the downlink ends. Random dl_confirmation messages are not drawn
     * (p_dl_confirmation is ignored). Each B-procedure is recorded (synth_bprocs()). */
    bool bproc_confirm;
    double dl_offset_s; /* 0: 1.0 s (sigfoxd's default downlink.window_margin_s); up to
                           T_RX minus the burst */
    /* Station view (docs/synth.md "One scene, several stations"): the scene as one of
     * several stations hears it. Planning never looks at these fields, so the same seed
     * (and the same explicit traffic) gives the same devices, messages, frames and message
     * numbers at every station; then the whole scene is moved as this station hears it:
     * every burst and interferer gains station_ebn0_db (Eb/N0, rssi_dbfs, interferer
     * power), its carrier moves by station_freq_hz (the station's frequency error) and
     * its time by station_delay_s (propagation, a late start); the B-procedure records
     * move the same way (they are in the station's time and frequency). The capture grows
     * by the delay so that no burst is cut. The noise (the only per-station randomness)
     * comes from station_noise_seed. All 0: exactly the capture without the station view. */
    double station_ebn0_db;      /* -60..60 dB */
    double station_freq_hz;      /* -100..100 kHz; every burst must stay in the capture's
                                    band (SYNTH_ERR_RANGE / a message naming the offset) */
    double station_delay_s;      /* 0..600 s */
    uint64_t station_noise_seed; /* 0: seed (the scene's own noise) */
} synth_config_t;

/* Fills the defaults (seed 1, 1.024 MS/s, RC1 centre, 10 devices, 30 s, Eb/N0 10-30 dB,
 * mixed baud, mix 10 % 1-bit, 5 % keep-alive, 5 % DL confirmation, 20 % BF, 20 % N=1,
 * limits as above, noise on at -30 dBFS, no interferers, no collisions). */
void synth_config_default(synth_config_t *cfg);

typedef enum {
    SYNTH_INTERFERER_CW = 1,
    SYNTH_INTERFERER_FSK,
} synth_interferer_kind_t;

/* One burst of the truth. Times are seconds from the first sample of the capture. */
typedef struct {
    double t_start_s;       /* start of the first preamble symbol */
    double t_end_s;         /* end of the last data (CRC) symbol */
    double t_on_s, t_off_s; /* whole burst: ramp-up start .. ramp-down end */
    double freq_hz;         /* absolute carrier at t_start_s */
    double drift_hz_s;
    double ebn0_db;        /* Eb/N0 as defined above */
    double rssi_dbfs;      /* mean power over the data symbols, dB full scale */
    int baud;              /* nominal 100 or 600 */
    int rank;              /* 1..3 */
    int n_frames;          /* 1 or 3: frames of the message */
    uint32_t message;      /* message number, shared by its replicas */
    uint32_t device;       /* device number */
    double freq_error_ppm; /* device reference error that moved the carrier */
    ul_message_t msg;      /* decoded fields: ep_id, mc, bf, kind, payload ... */
    uint8_t payload_air[UL_MAX_PAYLOAD_BYTES]; /* payload bytes as in the container
                                                  (control messages serialised) */
    size_t payload_air_len;
    uint16_t ft;
    int payload_class;                     /* sim_payload_class_of(&msg) (simpayload.h) */
    uint8_t bitstream[UL_MAX_FRAME_BYTES]; /* the whole frame, preamble first */
    size_t nbits;
    bool collided;            /* overlaps another burst in time and within the sum of
                                 their symbol rates in frequency */
    bool interfered;          /* overlaps an interferer in time and frequency */
    bool explicit_burst;      /* added by synth_add_burst/synth_add_message */
    dbpsk_burst_params_t mod; /* modulator parameters (freq_hz relative to the capture
                                 centre, amplitude, phase_rad, ...) */
    double start_sample;      /* ramp-up start, fractional sample index */
} synth_burst_t;

/* One B-procedure of the bproc_confirm scenario: what the device expects and what it sent
 * back. Times are seconds from the first sample. */
typedef struct {
    uint32_t message; /* the B-procedure's message number (its bursts' "message") */
    uint32_t ep_id;
    uint16_t mc;           /* the uplink's MC (the downlink's whitening uses it) */
    double ul_t_end_s;     /* end of the first frame's last symbol (T_W starts here) */
    double ul_freq_hz;     /* first frame's carrier */
    double window_start_s; /* ul_t_end_s + T_W */
    double window_end_s;   /* window_start_s + T_RX */
    double dl_freq_hz;     /* ul_freq_hz + Δf_GAP (Table 2-1): the DL must be within ±150 Hz */
    double dl_t_start_s;   /* assumed first preamble bit: window_start_s + dl_offset_s */
    double dl_t_end_s;     /* dl_t_start_s + 224 bits / 600 baud */
    bool confirmed;        /* the confirmation fits the capture and was planned */
    uint32_t conf_message; /* its message number */
    uint16_t conf_mc;      /* mc + 1 (mod 4096) */
    double t_conf_s;       /* drawn T_CONF: DL end to the confirmation's transmission start */
    double conf_t_start_s; /* confirmation's first preamble symbol */
    ul_control_t control;  /* what it reports (VDD idle/TX, temperature, DL RSSI) */
} synth_bproc_t;

typedef struct {
    synth_interferer_kind_t kind;
    double t_start_s, t_end_s; /* on-time (FSK: whole packet train) */
    double freq_hz;            /* absolute centre */
    double power_db;           /* over N0 × 100 Hz */
    double bandwidth_hz;       /* CW: 0; FSK: 2 (deviation + baud) */
    double fsk_baud, fsk_dev_hz;
} synth_interferer_t;

/* An explicit burst: exactly this frame at this time, carrier and Eb/N0. */
typedef struct {
    ul_message_t msg; /* encoded with ul_frame_encode(msg, key, rank) */
    uint8_t key[UL_KEY_BYTES];
    int rank;         /* 1..3 */
    int n_frames;     /* recorded in the truth (1 or 3); 0: 3 */
    int baud;         /* 100 or 600 */
    double t_start_s; /* first preamble symbol, from the first sample */
    double freq_hz;   /* absolute carrier at t_start_s */
    double ebn0_db;
    double drift_hz_s, phase_rad, baud_error_ppm;
    int lead_symbols, tail_symbols;
    double ramp_symbols;     /* 0 with lead 0: no ramp (hard edge) */
    double reversal_symbols; /* 0: DBPSK_DEFAULT_REVERSAL_SYMBOLS */
    const uint8_t *bits;     /* optional raw bits sent instead of the encoded frame
                                (e.g. corrupted frames); NULL: encode msg */
    size_t nbits;
} synth_burst_spec_t;

/* Fills a spec with ideal-device defaults (ramp 1 symbol, lead/tail 1, everything else 0). */
void synth_burst_spec_default(synth_burst_spec_t *spec);

/* An explicit message: its frames placed by the planner's rules (gaps, replica carriers)
 * unless given. */
typedef struct {
    ul_message_t msg;
    uint8_t key[UL_KEY_BYTES];
    int n_frames;     /* 1 or 3 */
    int baud;         /* 100 or 600 */
    double t_start_s; /* first frame's first preamble symbol */
    double freq_hz;   /* first frame's absolute carrier; 0: random per §3.13.3 */
    double ebn0_db;
    double gap_s;          /* gap between frames (ramp-down end to ramp-up start);
                              0: random per Table 3-4 (BF=0) or Table 4-2 (BF=1) */
    double freq_error_ppm; /* device error applied to planned carriers */
    double drift_hz_s, baud_error_ppm;
} synth_message_spec_t;

typedef struct synth synth_t;

/* Plans the scenario. Returns NULL with a message naming the bad parameter in err
 * (err may be NULL). The returned object owns the truth, the key store and the render
 * state: synth_destroy(). */
synth_t *synth_create(const synth_config_t *cfg, char *err, size_t err_len);

/* Explicit traffic, before the first synth_render()/synth_bursts()/synth_truth_write().
 * The key is added to the key store. Returns 0 or a negative synth_error (SYNTH_ERR_RANGE
 * when the burst does not fit the capture's duration or band). */
int synth_add_burst(synth_t *s, const synth_burst_spec_t *spec);
int synth_add_message(synth_t *s, const synth_message_spec_t *spec);

/* Fills out[0..n) with the next n samples of the capture (noise + interferers + bursts).
 * Returns the number of samples written (< n only at the end of the capture), 0 at the
 * end, or a negative synth_error. The first call (or synth_bursts()/synth_truth_write())
 * finalises the plan: sorts it and allocates the render lists; later calls never
 * allocate. */
long synth_render(synth_t *s, float complex *out, size_t n);

/* Total samples of the capture, and samples rendered so far. */
uint64_t synth_total_samples(const synth_t *s);
uint64_t synth_position(const synth_t *s);
/* Restarts rendering from the first sample (same samples again). */
void synth_rewind(synth_t *s);

/* The truth, sorted by t_start_s; valid until synth_destroy(). */
const synth_burst_t *synth_bursts(synth_t *s, size_t *count);
const synth_interferer_t *synth_interferers(const synth_t *s, size_t *count);
/* B-procedures of the bproc_confirm scenario, in planning order (per device, by time);
 * valid until synth_destroy(). */
const synth_bproc_t *synth_bprocs(const synth_t *s, size_t *count);

/* Number of distinct messages planned (random and explicit). */
size_t synth_message_count(synth_t *s);

/* Noise PSD N0 (σ²/fs, full scale² per Hz) that Eb/N0 refers to. */
double synth_n0(const synth_t *s);
/* The effective configuration (defaults resolved). */
const synth_config_t *synth_config(const synth_t *s);
/* Keys of every device (random and explicit). Owned by s. */
const keystore_t *synth_keys(const synth_t *s);

/* Writes the truth as JSON lines (json-c): one object per burst in t_start_s order, then
 * one per B-procedure ("type": "bproc", bproc_confirm scenario), then one per interferer.
 * Fields in docs/synth.md. Returns 0 or SYNTH_ERR_IO. */
int synth_truth_write(synth_t *s, FILE *out);
/* One burst as a JSON object text (no newline) into buf. Returns the length or -1 when
 * it does not fit. */
int synth_burst_json(const synth_burst_t *b, char *buf, size_t len);

void synth_destroy(synth_t *s);

#endif
