/* synth: Sigfox uplink scenario synthesizer with ground truth (see synth.h, docs/synth.md).
 * Licence: MIT. */
#include "synth.h"

#include <json-c/json.h>
#include <liquid/liquid.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "framejson.h"
#include "hexutil.h"
#include "prng.h"
#include "rc.h"
#include "simpayload.h"

/* §2.2.1: the network's reference accuracy, ±1.62 ppm of the centre. */
#define SNW_ACCURACY_PPM 1.62
/* §2.2.3 / Annex 8.3: margin a device keeps for its own reference, 20 ppm. */
#define EP_MARGIN_PPM 20.0
/* Table 2-2 mean drift limits (a linear drift has peak = mean, so these bind). */
#define DRIFT_BR100_HZ_S 20.0
#define DRIFT_BR600_HZ_S 50.0
/* Table 3-4 / 4-2 give no maximum gap in RC3/RC5 (N.A.): use this one. */
#define GAP_MAX_DEFAULT_S 2.0
/* A downlink frame on air: 224 bits at 600 baud (spec §4, Table 2-3). */
#define DL_BURST_S (224.0 / 600.0)
/* Table 4-2 T_IFP min: a device's next procedure starts at least this after its last. */
#define T_IFP_MIN_S 0.010
/* Samples between exact re-anchoring of the interferers' carrier phasors. */
#define PHASOR_REANCHOR 4096
/* FSK interferer: 2-GFSK like a generic ISM sensor, ~4.8 kbaud, ±2.4 kHz. */
#define FSK_BAUD 4800.0
#define FSK_DEV_HZ 2400.0
/* CW on/off ramps, seconds. */
#define CW_RAMP_S 0.005
/* Station view limits (synth_config_t.station_*). */
#define STATION_MAX_FREQ_HZ 100e3
#define STATION_MAX_DELAY_S 600.0

/* Random numbers: prng.h (xoshiro256** seeded through splitmix64). */

/* ---- Objects ---- */

typedef struct {
    uint32_t ep_id;
    uint8_t key[UL_KEY_BYTES];
    uint16_t mc;
    double freq_error_ppm, baud_error_ppm;
    double ramp_symbols, reversal_symbols;
    int lead_symbols, tail_symbols;
} device_t;

typedef struct {
    cpfskmod mod;
    unsigned k; /* samples per symbol */
    double baud, dev_hz;
    size_t first, count; /* its packets in s->intf */
    size_t cur;          /* current packet (index into s->intf) */
    uint64_t pos;        /* samples of the current packet produced */
    float complex *sym;  /* k samples of the current symbol */
    prng_t bits;
} fsk_source_t;

typedef struct {
    int64_t start, end; /* samples */
    double amp, phase0, f_off_hz;
    int source; /* FSK source, -1 for CW */
} intf_render_t;

struct synth {
    synth_config_t cfg;
    const rc_params_t *rc;
    double sigma2, n0;
    double nominal_lo_hz, nominal_hi_hz; /* a device's f_UL choice range (absolute) */
    double usable_lo_hz, usable_hi_hz;   /* usable macro-channel (absolute) */
    uint64_t total_samples, pos;
    uint64_t plan_samples; /* the planned duration (total_samples without the station's
                              delay): every planned burst ends inside it */
    prng_t plan, noise;
    device_t *dev;
    size_t ndev, cap_dev;
    synth_burst_t *bursts;
    size_t nbursts, cap_bursts;
    uint32_t nmessages;
    size_t *order; /* bursts by start sample */
    size_t *active;
    size_t nactive, next_render;
    synth_interferer_t *intf;
    intf_render_t *intf_r;
    size_t nintf, cap_intf, cap_intf_r;
    fsk_source_t *fsk;
    size_t nfsk;
    keystore_t *keys;
    synth_bproc_t *bproc;
    size_t nbproc, cap_bproc;
    bool finalized;
    bool station_done; /* the station view was applied (finalize), with this result */
    int station_rc;
};

const char *synth_strerror(int code)
{
    switch (code) {
    case SYNTH_OK:
        return "success";
    case SYNTH_ERR_ARG:
        return "bad argument";
    case SYNTH_ERR_STATE:
        return "explicit traffic must be added before rendering";
    case SYNTH_ERR_RANGE:
        return "burst outside the capture's time span or band";
    case SYNTH_ERR_CODEC:
        return "frame codec refused the message";
    case SYNTH_ERR_NOMEM:
        return "out of memory";
    case SYNTH_ERR_IO:
        return "write error";
    default:
        return "unknown synth error";
    }
}

void synth_config_default(synth_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 1;
    cfg->rate_sps = 1.024e6;
    cfg->rc = 1;
    cfg->devices = 10;
    cfg->duration_s = 30;
    cfg->ebn0_min_db = 10;
    cfg->ebn0_max_db = 30;
    cfg->baud = SYNTH_BAUD_MIXED;
    cfg->p_one_bit = 0.10;
    cfg->p_keepalive = 0.05;
    cfg->p_dl_confirmation = 0.05;
    cfg->p_bf = 0.20;
    cfg->p_single_frame = 0.20;
    cfg->freq_error_ppm_max = 20;
    cfg->baud_error_ppm_max = 1000;
    cfg->noise = true;
    cfg->noise_dbfs = -30;
    cfg->interferer_db = 30;
}

void synth_burst_spec_default(synth_burst_spec_t *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->rank = 1;
    spec->n_frames = 3;
    spec->baud = 100;
    spec->ramp_symbols = 1.0;
    spec->lead_symbols = 1;
    spec->tail_symbols = 1;
}

static bool prob_ok(double p)
{
    return p >= 0 && p <= 1;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return SYNTH_ERR_NOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* ---- Validation ---- */

static int check_config(const synth_config_t *c, char *err, size_t err_len)
{
    if (!(c->rate_sps >= 100e3 && c->rate_sps <= 20e6)) {
        errbuf_set(err, err_len, "sample rate %g S/s outside 100 kS/s .. 20 MS/s", c->rate_sps);
        return SYNTH_ERR_ARG;
    }
    if (!rc_get(c->rc)) {
        errbuf_set(err, err_len, "radio configuration %d is not RC1..RC7", c->rc);
        return SYNTH_ERR_ARG;
    }
    if (!(c->duration_s > 0 && c->duration_s <= 86400)) {
        errbuf_set(err, err_len, "duration %g s outside (0, 86400]", c->duration_s);
        return SYNTH_ERR_ARG;
    }
    if (c->devices < 0 || c->devices > 100000) {
        errbuf_set(err, err_len, "device count %d outside 0..100000", c->devices);
        return SYNTH_ERR_ARG;
    }
    if (!isfinite(c->ebn0_min_db) || !isfinite(c->ebn0_max_db) || c->ebn0_min_db > c->ebn0_max_db ||
        c->ebn0_min_db < -30 || c->ebn0_max_db > 100) {
        errbuf_set(err, err_len, "Eb/N0 range %g..%g dB invalid (need -30 <= LO <= HI <= 100)",
                   c->ebn0_min_db, c->ebn0_max_db);
        return SYNTH_ERR_ARG;
    }
    if (c->baud != 100 && c->baud != 600 && c->baud != SYNTH_BAUD_MIXED) {
        errbuf_set(err, err_len, "baud %d is not 100, 600 or mixed", c->baud);
        return SYNTH_ERR_ARG;
    }
    const rc_params_t *rc = rc_get(c->rc);
    if (c->baud == 100 && !rc->br100_allowed) {
        errbuf_set(err, err_len, "%s allows BR600 only (spec Table 2-4)", rc->name);
        return SYNTH_ERR_ARG;
    }
    if (!(c->msg_interval_s >= 0) || !isfinite(c->msg_interval_s)) {
        errbuf_set(err, err_len, "message interval %g s is negative", c->msg_interval_s);
        return SYNTH_ERR_ARG;
    }
    if (!prob_ok(c->p_one_bit) || !prob_ok(c->p_keepalive) || !prob_ok(c->p_dl_confirmation) ||
        !prob_ok(c->p_bf) || !prob_ok(c->p_single_frame) ||
        c->p_one_bit + c->p_keepalive + c->p_dl_confirmation > 1.0 + 1e-9) {
        errbuf_set(err, err_len,
                   "message mix probabilities must be in [0,1] and the kinds sum "
                   "to at most 1");
        return SYNTH_ERR_ARG;
    }
    if (!(c->freq_error_ppm_max >= 0 && c->freq_error_ppm_max <= EP_MARGIN_PPM)) {
        errbuf_set(err, err_len, "frequency error limit %g ppm outside 0..20 (spec §2.2.3)",
                   c->freq_error_ppm_max);
        return SYNTH_ERR_ARG;
    }
    if (!(c->drift_max_hz_s_br100 >= 0 && c->drift_max_hz_s_br100 <= 1000) ||
        !(c->drift_max_hz_s_br600 >= 0 && c->drift_max_hz_s_br600 <= 1000)) {
        errbuf_set(err, err_len, "drift limits must be 0..1000 Hz/s");
        return SYNTH_ERR_ARG;
    }
    if (!(c->baud_error_ppm_max >= 0 && c->baud_error_ppm_max <= DBPSK_MAX_BAUD_ERROR_PPM)) {
        errbuf_set(err, err_len, "symbol-rate error limit %g ppm outside 0..1000 (Table 2-3)",
                   c->baud_error_ppm_max);
        return SYNTH_ERR_ARG;
    }
    if (!(c->noise_dbfs >= -150 && c->noise_dbfs <= 0)) {
        errbuf_set(err, err_len, "noise level %g dBFS outside -150..0", c->noise_dbfs);
        return SYNTH_ERR_ARG;
    }
    if (c->cw_tones < 0 || c->cw_tones > 1000 || c->fsk_interferers < 0 ||
        c->fsk_interferers > 100 || c->collisions < 0 || c->collisions > 100000) {
        errbuf_set(err, err_len,
                   "interferer/collision counts out of range (cw 0..1000, fsk "
                   "0..100, collisions 0..100000)");
        return SYNTH_ERR_ARG;
    }
    if (!(c->interferer_db >= -50 && c->interferer_db <= 120)) {
        errbuf_set(err, err_len, "interferer power %g dB outside -50..120", c->interferer_db);
        return SYNTH_ERR_ARG;
    }
    if (!(c->dl_offset_s >= 0) || c->dl_offset_s > rc->t_rx_s - DL_BURST_S) {
        errbuf_set(err, err_len, "downlink offset %g s outside 0 .. %g s (T_RX minus the burst)",
                   c->dl_offset_s, rc->t_rx_s - DL_BURST_S);
        return SYNTH_ERR_ARG;
    }
    if (!(c->station_ebn0_db >= -60 && c->station_ebn0_db <= 60)) {
        errbuf_set(err, err_len, "station Eb/N0 offset %g dB outside -60..60",
                   c->station_ebn0_db);
        return SYNTH_ERR_ARG;
    }
    if (!(fabs(c->station_freq_hz) <= STATION_MAX_FREQ_HZ)) {
        errbuf_set(err, err_len, "station carrier offset %g Hz outside -%g..%g Hz",
                   c->station_freq_hz, STATION_MAX_FREQ_HZ, STATION_MAX_FREQ_HZ);
        return SYNTH_ERR_ARG;
    }
    if (!(c->station_delay_s >= 0 && c->station_delay_s <= STATION_MAX_DELAY_S)) {
        errbuf_set(err, err_len, "station delay %g s outside 0..%g s", c->station_delay_s,
                   STATION_MAX_DELAY_S);
        return SYNTH_ERR_ARG;
    }
    double center = c->center_freq_hz ? c->center_freq_hz : rc->ul_center_hz;
    if (!(center > 0 && center < 10e9)) {
        errbuf_set(err, err_len, "centre frequency %g Hz out of range", center);
        return SYNTH_ERR_ARG;
    }
    /* The usable macro-channel must lie inside the capture (with room for drift and the
     * burst's spectrum, 2 kHz). */
    double half = RC_MACRO_CHANNEL_HZ / 2 - SNW_ACCURACY_PPM * 1e-6 * rc->ul_center_hz;
    double lo = rc->ul_center_hz - half - center, hi = rc->ul_center_hz + half - center;
    double lim = c->rate_sps / 2 - 2000;
    if (lo < -lim || hi > lim) {
        errbuf_set(err, err_len,
                   "capture %.0f S/s at %.0f Hz does not cover %s's usable macro-channel "
                   "%.0f..%.0f Hz",
                   c->rate_sps, center, rc->name, rc->ul_center_hz - half, rc->ul_center_hz + half);
        return SYNTH_ERR_ARG;
    }
    return SYNTH_OK;
}

/* ---- Burst records ---- */

/* True when burst b's carrier, moved by df_hz, stays inside the capture's band from
 * ramp-up to ramp-down (drift included). Needs mod.freq_hz, drift_hz_s, baud and the
 * times. */
static bool burst_in_band(const synth_t *s, const synth_burst_t *b, double df_hz)
{
    double f0 = b->mod.freq_hz + df_hz;
    double f_end = f0 + b->drift_hz_s * (b->t_off_s - b->t_start_s);
    double f_beg = f0 + b->drift_hz_s * (b->t_on_s - b->t_start_s);
    double lim = s->cfg.rate_sps / 2 - 2.0 * b->baud;
    return fabs(f_end) <= lim && fabs(f_beg) <= lim;
}

/* True when interferer k, moved by df_hz, stays inside the capture's band. */
static bool interferer_in_band(const synth_t *s, size_t k, double df_hz)
{
    double f = s->intf_r[k].f_off_hz + df_hz;
    return fabs(f) + s->intf[k].bandwidth_hz / 2 <= s->cfg.rate_sps / 2;
}

typedef struct {
    const ul_message_t *msg;
    const uint8_t *key;
    int rank, n_frames, baud;
    const uint8_t *raw_bits;
    size_t raw_nbits;
    double t_start_s, freq_hz, ebn0_db;
    dbpsk_burst_params_t mod; /* everything but freq_hz and amplitude */
    uint32_t message, device;
    double freq_error_ppm;
    bool explicit_burst;
} burst_plan_t;

static int add_record(synth_t *s, const burst_plan_t *bp)
{
    if (grow((void **)&s->bursts, &s->cap_bursts, s->nbursts + 1, sizeof *s->bursts) < 0)
        return SYNTH_ERR_NOMEM;
    synth_burst_t b;
    memset(&b, 0, sizeof b);
    uint8_t container[UL_MAX_CONTAINER_BYTES];
    int clen = ul_container_build(bp->msg, bp->key, container, sizeof container);
    if (clen < 0)
        return SYNTH_ERR_CODEC;
    bool control = bp->msg->kind != UL_KIND_APP;
    if (ul_container_parse(container, (size_t)clen, control, &b.msg, NULL, NULL) < 0)
        return SYNTH_ERR_CODEC;
    b.payload_class = sim_payload_class_of(&b.msg);
    b.payload_air_len = b.msg.payload_len;
    memcpy(b.payload_air, b.msg.payload, b.msg.payload_len);
    b.ft = ul_ft_value((size_t)clen, control, bp->rank);
    if (bp->raw_bits) {
        if (bp->raw_nbits == 0 || bp->raw_nbits > 8 * sizeof b.bitstream)
            return SYNTH_ERR_ARG;
        memcpy(b.bitstream, bp->raw_bits, (bp->raw_nbits + 7) / 8);
        b.nbits = bp->raw_nbits;
    } else {
        int len = ul_frame_encode(bp->msg, bp->key, bp->rank, b.bitstream, sizeof b.bitstream);
        if (len < 0)
            return SYNTH_ERR_CODEC;
        b.nbits = (size_t)len * 8;
    }

    const double fs = s->cfg.rate_sps;
    b.mod = bp->mod;
    b.mod.rate_sps = fs;
    b.mod.baud = bp->baud;
    b.mod.freq_hz = bp->freq_hz - s->cfg.center_freq_hz;
    b.mod.amplitude = 1.0;
    if (!(fabs(b.mod.freq_hz) < fs / 2 - 2.0 * bp->baud))
        return SYNTH_ERR_RANGE;
    if (dbpsk_burst_check(&b.mod) != DBPSK_OK)
        return SYNTH_ERR_ARG;
    /* Eb/N0 -> data power: Eb = P / symbol rate, N0 = σ²/fs. */
    double rs = dbpsk_burst_symbol_rate(&b.mod);
    double p_target = pow(10.0, bp->ebn0_db / 10.0) * s->n0 * rs;
    double p_unit = dbpsk_burst_data_power(&b.mod, b.bitstream, b.nbits);
    if (!(p_unit > 0))
        return SYNTH_ERR_ARG;
    b.mod.amplitude = sqrt(p_target / p_unit);

    double offset = dbpsk_burst_data_offset(&b.mod);
    double dur = dbpsk_burst_duration_s(&b.mod, b.nbits);
    b.start_sample = bp->t_start_s * fs - offset;
    b.t_start_s = bp->t_start_s;
    b.t_end_s = bp->t_start_s + (double)b.nbits / rs;
    b.t_on_s = b.start_sample / fs;
    b.t_off_s = b.t_on_s + dur;
    if (b.start_sample < 0 || b.t_off_s * fs > (double)s->plan_samples)
        return SYNTH_ERR_RANGE;
    b.baud = bp->baud;
    b.drift_hz_s = b.mod.drift_hz_s;
    /* The carrier over the whole burst must stay inside the capture's band. */
    if (!burst_in_band(s, &b, 0))
        return SYNTH_ERR_RANGE;
    b.freq_hz = bp->freq_hz;
    b.ebn0_db = bp->ebn0_db;
    b.rssi_dbfs = 10 * log10(p_target);
    b.rank = bp->rank;
    b.n_frames = bp->n_frames;
    b.message = bp->message;
    b.device = bp->device;
    b.freq_error_ppm = bp->freq_error_ppm;
    b.explicit_burst = bp->explicit_burst;
    s->bursts[s->nbursts++] = b;
    return 0;
}

/* ---- Planning random traffic ---- */

static int add_device(synth_t *s, device_t **out)
{
    if (grow((void **)&s->dev, &s->cap_dev, s->ndev + 1, sizeof *s->dev) < 0)
        return SYNTH_ERR_NOMEM;
    device_t *d = &s->dev[s->ndev];
    memset(d, 0, sizeof *d);
    /* Unique random ID. */
    for (;;) {
        d->ep_id = (uint32_t)(prng_next(&s->plan) >> 32);
        bool dup = false;
        for (size_t i = 0; i < s->ndev && !dup; i++)
            dup = s->dev[i].ep_id == d->ep_id;
        if (!dup)
            break;
    }
    for (int i = 0; i < UL_KEY_BYTES; i++)
        d->key[i] = (uint8_t)(prng_next(&s->plan) >> 56);
    d->mc = (uint16_t)(prng_next(&s->plan) % (UL_MC_MAX + 1));
    d->freq_error_ppm = prng_range(&s->plan, -1, 1) * s->cfg.freq_error_ppm_max;
    d->baud_error_ppm = prng_range(&s->plan, -1, 1) * s->cfg.baud_error_ppm_max;
    /* Hardware shaping: a 0.7..1 symbol reversal dip keeps Table 2-8 (test_dbpskmod
     * measures -24 dBc at 0.7 against the -20 dBc limit); ramps of 0.25..1 symbol and 0..2
     * extra symbols, at most 2 symbols together at each end (§2.4.3). */
    d->reversal_symbols = prng_range(&s->plan, 0.7, 1.0);
    d->ramp_symbols = prng_range(&s->plan, 0.25, 1.0);
    int max_extra = (int)floor(DBPSK_MAX_EXTRA_SYMBOLS - d->ramp_symbols);
    d->lead_symbols = (int)(prng_next(&s->plan) % (uint64_t)(max_extra + 1));
    d->tail_symbols = (int)(prng_next(&s->plan) % (uint64_t)(max_extra + 1));
    if (keystore_add(s->keys, d->ep_id, d->key) < 0)
        return SYNTH_ERR_NOMEM;
    *out = d;
    s->ndev++;
    return 0;
}

/* A control message's report (§5.1, §5.2): supply voltages, temperature, DL RSSI. */
static void random_control(synth_t *s, ul_message_t *m)
{
    m->control.vdd_idle_mv = (uint16_t)prng_range(&s->plan, 2800, 3600);
    m->control.vdd_tx_mv = (uint16_t)prng_range(&s->plan, 2500, 3400);
    m->control.temp_tenth_c = (int16_t)prng_range(&s->plan, -200, 600);
    m->control.rssi_dbm = (int8_t)prng_range(&s->plan, -127, -60); /* int8 field */
}

static void random_message(synth_t *s, const device_t *d, ul_message_t *m)
{
    memset(m, 0, sizeof *m);
    m->ep_id = d->ep_id;
    m->mc = d->mc;
    double u = prng_uniform(&s->plan);
    const synth_config_t *c = &s->cfg;
    if (u < c->p_keepalive || u < c->p_keepalive + c->p_dl_confirmation) {
        m->kind = u < c->p_keepalive ? UL_KIND_KEEPALIVE : UL_KIND_DL_CONFIRMATION;
        random_control(s, m);
        m->payload_len = m->kind == UL_KIND_KEEPALIVE ? UL_KEEPALIVE_PAYLOAD_BYTES
                                                      : UL_DL_CONFIRMATION_PAYLOAD_BYTES;
        return; /* control messages have BF = 0 */
    }
    if (u < c->p_keepalive + c->p_dl_confirmation + c->p_one_bit) {
        m->one_bit = true;
        m->payload_bit = (uint8_t)(prng_next(&s->plan) >> 63);
    } else if (c->payload_classes) {
        int cls = (int)(prng_next(&s->plan) % (SIM_PAYLOAD_COUNTER + 1));
        size_t len = (size_t)(prng_next(&s->plan) % (UL_MAX_PAYLOAD_BYTES + 1));
        sim_payload_fill(m, cls, len, prng_next(&s->plan));
    } else {
        m->payload_len = (size_t)(prng_next(&s->plan) % (UL_MAX_PAYLOAD_BYTES + 1));
        for (size_t i = 0; i < m->payload_len; i++)
            m->payload[i] = (uint8_t)(prng_next(&s->plan) >> 56);
    }
    m->bf = prng_uniform(&s->plan) < c->p_bf;
}

static int pick_baud(synth_t *s)
{
    if (s->cfg.baud != SYNTH_BAUD_MIXED)
        return s->cfg.baud;
    if (!s->rc->br100_allowed)
        return 600;
    return prng_uniform(&s->plan) < 0.5 ? 100 : 600;
}

static double drift_limit(const synth_t *s, int baud)
{
    return baud == 100 ? s->cfg.drift_max_hz_s_br100 : s->cfg.drift_max_hz_s_br600;
}

static double pick_gap(synth_t *s, bool bf)
{
    double lo = bf ? s->rc->t_ifb_min_s : s->rc->t_ifu_min_s;
    double hi = bf ? s->rc->t_ifb_max_s : s->rc->t_ifu_max_s;
    if (hi < 0)
        hi = GAP_MAX_DEFAULT_S;
    return prng_range(&s->plan, lo, hi);
}

/* Nominal carriers of a message's frames (§3.13.3, §4.9.2). For a B-procedure the first
 * frequency leaves room for f1 + Δf_MF (frame 2) and f1 - Δf_MF (frame 3): the spec's
 * Figure 4-9 is missing from the seed text; this is the layout of Sigfox's open EP library
 * (frame 2 above, frame 3 below). */
static void pick_carriers(synth_t *s, bool bf, int n_frames, double f_first, double f[3])
{
    double lo = s->nominal_lo_hz, hi = s->nominal_hi_hz, df = s->rc->df_mf_hz;
    if (bf && n_frames > 1) {
        hi -= df;
        if (n_frames > 2)
            lo += df;
    }
    f[0] = f_first > 0 ? f_first : prng_range(&s->plan, lo, hi);
    for (int k = 1; k < 3; k++) {
        if (bf)
            f[k] = f[0] + (k == 1 ? df : -df);
        else
            f[k] = prng_range(&s->plan, s->nominal_lo_hz, s->nominal_hi_hz);
    }
}

static dbpsk_burst_params_t device_mod(const device_t *d)
{
    dbpsk_burst_params_t m;
    memset(&m, 0, sizeof m);
    m.baud_error_ppm = d->baud_error_ppm;
    m.ramp_symbols = d->ramp_symbols;
    m.reversal_symbols = d->reversal_symbols;
    m.lead_symbols = d->lead_symbols;
    m.tail_symbols = d->tail_symbols;
    return m;
}

/* Plans one message of device d starting (ramp-up of frame 1) at t_on. Returns 1 when
 * planned, 0 when it does not fit the capture, negative on error. *t_first_end and
 * *t_last_off receive the first frame's end and the last frame's ramp-down end. */
static int plan_message(synth_t *s, device_t *d, uint32_t device_no, double t_on,
                        const ul_message_t *m, int n_frames, int baud, double ebn0_db,
                        double f_first, double fixed_gap, const double *drift_hz_s,
                        double *t_first_end, double *t_last_off)
{
    double f[3];
    pick_carriers(s, m->bf, n_frames, f_first, f);
    double scale = 1.0 + d->freq_error_ppm * 1e-6;
    size_t mark = s->nbursts;
    double t = t_on;
    for (int r = 1; r <= n_frames; r++) {
        burst_plan_t bp;
        memset(&bp, 0, sizeof bp);
        bp.msg = m;
        bp.key = d->key;
        bp.rank = r;
        bp.n_frames = n_frames;
        bp.baud = baud;
        bp.mod = device_mod(d);
        bp.mod.rate_sps = s->cfg.rate_sps;
        bp.mod.baud = baud;
        double lim = drift_limit(s, baud);
        bp.mod.drift_hz_s = prng_range(&s->plan, -lim, lim);
        if (drift_hz_s)
            bp.mod.drift_hz_s = *drift_hz_s;
        bp.mod.phase_rad = prng_range(&s->plan, -M_PI, M_PI);
        bp.t_start_s = t + dbpsk_burst_data_offset(&bp.mod) / s->cfg.rate_sps;
        bp.freq_hz = f[r - 1] * scale; /* the device's reference error moves it (§2.2.3) */
        bp.ebn0_db = ebn0_db;
        bp.message = s->nmessages;
        bp.device = device_no;
        bp.freq_error_ppm = d->freq_error_ppm;
        int rc = add_record(s, &bp);
        if (rc == SYNTH_ERR_RANGE) {
            s->nbursts = mark; /* drop the whole message */
            return 0;
        }
        if (rc < 0)
            return rc;
        const synth_burst_t *b = &s->bursts[s->nbursts - 1];
        if (r == 1)
            *t_first_end = b->t_end_s;
        *t_last_off = b->t_off_s;
        t = b->t_off_s + (fixed_gap > 0 ? fixed_gap : pick_gap(s, m->bf));
    }
    s->nmessages++;
    d->mc = (uint16_t)((d->mc + 1) & UL_MC_MAX); /* §3.4: MC increments per message */
    return 1;
}

/* bproc_confirm: records the B-procedure just planned (its bursts from index first) and
 * plans the device's confirmation T_CONF after the downlink it expects. Returns 1 when the
 * confirmation was planned (*t_last_off = its end), 0 when it does not fit the capture,
 * negative on error. */
static int plan_confirmation(synth_t *s, device_t *d, uint32_t device_no, size_t first,
                             const ul_message_t *bmsg, int baud, double *t_last_off)
{
    if (grow((void **)&s->bproc, &s->cap_bproc, s->nbproc + 1, sizeof *s->bproc) < 0)
        return SYNTH_ERR_NOMEM;
    const synth_burst_t *f1 = &s->bursts[first]; /* rank 1: planned first */
    synth_bproc_t bp;
    memset(&bp, 0, sizeof bp);
    bp.message = f1->message;
    bp.ep_id = bmsg->ep_id;
    bp.mc = bmsg->mc;
    bp.ul_t_end_s = f1->t_end_s;
    bp.ul_freq_hz = f1->freq_hz;
    bp.window_start_s = f1->t_end_s + s->rc->t_w_s;
    bp.window_end_s = bp.window_start_s + s->rc->t_rx_s;
    bp.dl_freq_hz = f1->freq_hz + s->rc->dl_gap_hz;
    bp.dl_t_start_s = bp.window_start_s + s->cfg.dl_offset_s;
    bp.dl_t_end_s = bp.dl_t_start_s + DL_BURST_S;
    bp.t_conf_s = prng_range(&s->plan, s->rc->t_conf_min_s, s->rc->t_conf_max_s);
    ul_message_t m;
    memset(&m, 0, sizeof m);
    m.ep_id = d->ep_id;
    m.mc = d->mc; /* the B-procedure's + 1: plan_message incremented it */
    m.kind = UL_KIND_DL_CONFIRMATION;
    m.payload_len = UL_DL_CONFIRMATION_PAYLOAD_BYTES;
    random_control(s, &m); /* BF = 0 (§5.2) */
    double ebn0 = prng_range(&s->plan, s->cfg.ebn0_min_db, s->cfg.ebn0_max_db);
    size_t mark = s->nbursts;
    double first_end = 0;
    int rc = plan_message(s, d, device_no, bp.dl_t_end_s + bp.t_conf_s, &m, 1, baud, ebn0, 0, 0,
                          NULL, &first_end, t_last_off);
    if (rc == 1) {
        bp.confirmed = true;
        bp.conf_message = s->bursts[mark].message;
        bp.conf_mc = m.mc;
        bp.conf_t_start_s = s->bursts[mark].t_start_s;
        bp.control = m.control;
    }
    s->bproc[s->nbproc++] = bp;
    return rc;
}

static int plan_devices(synth_t *s)
{
    const synth_config_t *c = &s->cfg;
    double interval = c->msg_interval_s > 0 ? c->msg_interval_s : c->duration_s / 2;
    for (int i = 0; i < c->devices; i++) {
        device_t *d;
        int rc = add_device(s, &d);
        if (rc < 0)
            return rc;
        size_t di = s->ndev - 1;
        double t = prng_range(&s->plan, 0, interval);
        for (;;) {
            ul_message_t m;
            d = &s->dev[di];
            random_message(s, d, &m);
            int n_frames = prng_uniform(&s->plan) < c->p_single_frame ? 1 : 3;
            /* §5.1: keep-alive in three frames; §5.2: confirmation in a single frame. */
            if (m.kind == UL_KIND_KEEPALIVE)
                n_frames = 3;
            else if (m.kind == UL_KIND_DL_CONFIRMATION)
                n_frames = 1;
            int baud = pick_baud(s);
            double ebn0 = prng_range(&s->plan, c->ebn0_min_db, c->ebn0_max_db);
            double first_end = 0, last_off = 0;
            size_t first = s->nbursts;
            rc = plan_message(s, d, (uint32_t)di, t, &m, n_frames, baud, ebn0, 0, 0, NULL,
                              &first_end, &last_off);
            if (rc < 0)
                return rc;
            if (rc == 0)
                break; /* does not fit before the end of the capture */
            if (m.bf && c->bproc_confirm) {
                /* The device got its downlink: it confirms, then is free again. */
                double conf_off = 0;
                int cr =
                    plan_confirmation(s, &s->dev[di], (uint32_t)di, first, &m, baud, &conf_off);
                if (cr < 0)
                    return cr;
                if (cr == 0)
                    break; /* the confirmation would leave the capture */
                t = conf_off + T_IFP_MIN_S + prng_exp(&s->plan, interval);
                continue;
            }
            t = last_off + T_IFP_MIN_S + prng_exp(&s->plan, interval);
            if (m.bf) /* listening for the downlink: T_W then T_RX (Table 4-1) */
                t = fmax(t, first_end + s->rc->t_w_s + s->rc->t_rx_s);
        }
    }
    return 0;
}

/* Extra single-frame messages from extra devices, overlapping a planned burst in time and
 * frequency. */
static int plan_collisions(synth_t *s)
{
    size_t planned = s->nbursts;
    if (planned == 0 || s->cfg.collisions == 0)
        return 0;
    for (int c = 0; c < s->cfg.collisions; c++) {
        size_t victim_i = (size_t)(prng_next(&s->plan) % planned);
        synth_burst_t victim = s->bursts[victim_i];
        device_t *d;
        int rc = add_device(s, &d);
        if (rc < 0)
            return rc;
        ul_message_t m;
        random_message(s, d, &m);
        m.bf = false;
        double dur = victim.t_end_s - victim.t_start_s;
        double ebn0 = prng_range(&s->plan, s->cfg.ebn0_min_db, s->cfg.ebn0_max_db);
        double df = prng_range(&s->plan, -0.5, 0.5) * victim.baud;
        double f_nom = (victim.freq_hz + df) / (1.0 + d->freq_error_ppm * 1e-6);
        f_nom = fmin(fmax(f_nom, s->nominal_lo_hz), s->nominal_hi_hz);
        double frac = prng_range(&s->plan, 0.1, 0.6);
        /* Start inside the victim; if that runs past the end, end inside it instead. */
        for (int attempt = 0; attempt < 2; attempt++) {
            double t_start =
                attempt == 0 ? victim.t_start_s + frac * dur : victim.t_start_s - frac * dur;
            dbpsk_burst_params_t mod = device_mod(d);
            mod.rate_sps = s->cfg.rate_sps;
            mod.baud = victim.baud;
            double t_on = t_start - dbpsk_burst_data_offset(&mod) / s->cfg.rate_sps;
            if (t_on < 0)
                continue;
            double first_end, last_off;
            rc = plan_message(s, d, (uint32_t)(s->ndev - 1), t_on, &m, 1, victim.baud, ebn0, f_nom,
                              0, NULL, &first_end, &last_off);
            if (rc < 0)
                return rc;
            if (rc == 1)
                break;
        }
    }
    return 0;
}

/* ---- Interferers ---- */

static int add_interferer(synth_t *s, const synth_interferer_t *it, int source)
{
    if (grow((void **)&s->intf, &s->cap_intf, s->nintf + 1, sizeof *s->intf) < 0 ||
        grow((void **)&s->intf_r, &s->cap_intf_r, s->nintf + 1, sizeof *s->intf_r) < 0)
        return SYNTH_ERR_NOMEM;
    double fs = s->cfg.rate_sps;
    intf_render_t r;
    r.start = (int64_t)llround(it->t_start_s * fs);
    r.end = (int64_t)llround(it->t_end_s * fs);
    r.amp = sqrt(pow(10.0, it->power_db / 10.0) * s->n0 * 100.0);
    r.phase0 = prng_range(&s->plan, -M_PI, M_PI);
    r.f_off_hz = it->freq_hz - s->cfg.center_freq_hz;
    r.source = source;
    s->intf[s->nintf] = *it;
    s->intf_r[s->nintf] = r;
    s->nintf++;
    return 0;
}

static int plan_interferers(synth_t *s)
{
    const synth_config_t *c = &s->cfg;
    double D = c->duration_s;
    for (int i = 0; i < c->cw_tones; i++) {
        synth_interferer_t it;
        memset(&it, 0, sizeof it);
        it.kind = SYNTH_INTERFERER_CW;
        it.freq_hz = prng_range(&s->plan, s->usable_lo_hz, s->usable_hi_hz);
        it.t_start_s = prng_range(&s->plan, 0, 0.5 * D);
        it.t_end_s = fmin(D, it.t_start_s + prng_range(&s->plan, 0.5 * D, D));
        it.power_db = c->interferer_db;
        int rc = add_interferer(s, &it, -1);
        if (rc < 0)
            return rc;
    }
    if (c->fsk_interferers == 0)
        return 0;
    s->fsk = calloc((size_t)c->fsk_interferers, sizeof *s->fsk);
    if (!s->fsk)
        return SYNTH_ERR_NOMEM;
    s->nfsk = (size_t)c->fsk_interferers;
    for (size_t i = 0; i < s->nfsk; i++) {
        fsk_source_t *src = &s->fsk[i];
        /* liquid's cpfskmod needs an even number of samples per symbol. */
        unsigned k = 2 * (unsigned)lround(c->rate_sps / (2 * FSK_BAUD));
        if (k < 2)
            k = 2;
        src->k = k;
        src->baud = c->rate_sps / k;
        src->dev_hz = FSK_DEV_HZ;
        double h = 2.0 * src->dev_hz / src->baud; /* modulation index */
        src->mod = cpfskmod_create(1, (float)h, k, 2, 0.5f, LIQUID_CPFSK_GMSK);
        src->sym = calloc(k, sizeof *src->sym);
        if (!src->mod || !src->sym)
            return SYNTH_ERR_NOMEM;
        prng_seed(&src->bits, c->seed, 100 + i);
        double bw = 2 * (src->dev_hz + src->baud);
        double f = prng_range(&s->plan, s->usable_lo_hz + bw / 2, s->usable_hi_hz - bw / 2);
        src->first = s->nintf;
        /* Packets of 20..100 ms, exponential pauses of mean 300 ms. */
        double t = prng_exp(&s->plan, 0.3);
        for (;;) {
            double len = round(prng_range(&s->plan, 0.020, 0.100) * src->baud) / src->baud;
            if (t + len >= D)
                break;
            synth_interferer_t it;
            memset(&it, 0, sizeof it);
            it.kind = SYNTH_INTERFERER_FSK;
            it.freq_hz = f;
            it.t_start_s = t;
            it.t_end_s = t + len;
            it.power_db = c->interferer_db;
            it.bandwidth_hz = bw;
            it.fsk_baud = src->baud;
            it.fsk_dev_hz = src->dev_hz;
            int rc = add_interferer(s, &it, (int)i);
            if (rc < 0)
                return rc;
            t += len + prng_exp(&s->plan, 0.3);
        }
        src->count = s->nintf - src->first;
    }
    return 0;
}

/* ---- Station view ---- */

static uint64_t noise_seed(const synth_t *s)
{
    return s->cfg.station_noise_seed ? s->cfg.station_noise_seed : s->cfg.seed;
}

/* Before the station view is applied: every planned burst and interferer must stay in the
 * band with the station's carrier offset. Returns 0 or SYNTH_ERR_RANGE with a message. */
static int station_check(const synth_t *s, char *err, size_t err_len)
{
    double df = s->cfg.station_freq_hz;
    for (size_t i = 0; i < s->nbursts; i++) {
        if (!burst_in_band(s, &s->bursts[i], df)) {
            errbuf_set(err, err_len,
                       "station carrier offset %g Hz moves the burst at %.3f s (%.0f Hz) out of "
                       "the capture's band (%.0f S/s): use a smaller offset or a higher rate",
                       df, s->bursts[i].t_start_s, s->bursts[i].freq_hz, s->cfg.rate_sps);
            return SYNTH_ERR_RANGE;
        }
    }
    for (size_t k = 0; k < s->nintf; k++) {
        if (!interferer_in_band(s, k, df)) {
            errbuf_set(err, err_len,
                       "station carrier offset %g Hz moves the interferer at %.0f Hz out of the "
                       "capture's band (%.0f S/s)",
                       df, s->intf[k].freq_hz, s->cfg.rate_sps);
            return SYNTH_ERR_RANGE;
        }
    }
    return 0;
}

/* Moves the planned scene (random and explicit traffic, interferers, B-procedure records)
 * to the station's view: gain, carrier offset, delay. Once, at finalize. Returns 0 or
 * SYNTH_ERR_RANGE (an explicit burst leaves the band). */
static int apply_station(synth_t *s)
{
    const synth_config_t *c = &s->cfg;
    const double db = c->station_ebn0_db, df = c->station_freq_hz, dt = c->station_delay_s;
    const double fs = c->rate_sps, gain = pow(10.0, db / 20.0);
    if (db == 0 && df == 0 && dt == 0)
        return 0;
    for (size_t i = 0; i < s->nbursts; i++) {
        synth_burst_t *b = &s->bursts[i];
        if (!burst_in_band(s, b, df))
            return SYNTH_ERR_RANGE;
        b->mod.amplitude *= gain;
        b->ebn0_db += db;
        b->rssi_dbfs += db;
        b->mod.freq_hz += df;
        b->freq_hz += df;
        b->t_start_s += dt;
        b->t_end_s += dt;
        b->t_on_s += dt;
        b->t_off_s += dt;
        b->start_sample += dt * fs;
    }
    for (size_t k = 0; k < s->nintf; k++) {
        if (!interferer_in_band(s, k, df))
            return SYNTH_ERR_RANGE;
        synth_interferer_t *it = &s->intf[k];
        intf_render_t *r = &s->intf_r[k];
        it->t_start_s += dt;
        it->t_end_s += dt;
        it->freq_hz += df;
        it->power_db += db;
        r->start = (int64_t)llround(it->t_start_s * fs);
        r->end = (int64_t)llround(it->t_end_s * fs);
        r->amp *= gain;
        r->f_off_hz += df;
    }
    for (size_t i = 0; i < s->nbproc; i++) {
        synth_bproc_t *b = &s->bproc[i];
        b->ul_t_end_s += dt;
        b->window_start_s += dt;
        b->window_end_s += dt;
        b->dl_t_start_s += dt;
        b->dl_t_end_s += dt;
        if (b->confirmed)
            b->conf_t_start_s += dt;
        b->ul_freq_hz += df;
        b->dl_freq_hz += df;
    }
    return 0;
}

/* ---- Finalising: sort, flags, render order ---- */

static int cmp_t_start(const void *a, const void *b)
{
    const synth_burst_t *x = a, *y = b;
    if (x->t_start_s != y->t_start_s)
        return x->t_start_s < y->t_start_s ? -1 : 1;
    return x->freq_hz < y->freq_hz ? -1 : (x->freq_hz > y->freq_hz);
}

typedef struct {
    double start_sample;
    size_t index;
} order_key_t;

static int cmp_order_key(const void *a, const void *b)
{
    const order_key_t *x = a, *y = b;
    if (x->start_sample != y->start_sample)
        return x->start_sample < y->start_sample ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

static double mid_freq(const synth_burst_t *b)
{
    return b->freq_hz + b->drift_hz_s * 0.5 * (b->t_off_s - b->t_start_s);
}

static int finalize(synth_t *s)
{
    if (s->finalized)
        return 0;
    if (!s->station_done) {
        s->station_done = true;
        s->station_rc = apply_station(s);
    }
    if (s->station_rc < 0)
        return s->station_rc;
    if (s->nbursts > 1) /* an empty scenario has no array (qsort(NULL) is undefined) */
        qsort(s->bursts, s->nbursts, sizeof *s->bursts, cmp_t_start);
    /* Collisions: overlapping on-air time and main lobes (±1/TS) that touch. */
    for (size_t i = 0; i < s->nbursts; i++) {
        synth_burst_t *a = &s->bursts[i];
        for (size_t j = i + 1; j < s->nbursts; j++) {
            synth_burst_t *b = &s->bursts[j];
            if (b->t_on_s > a->t_off_s + 4.0) /* no burst is longer than ~2.5 s */
                break;
            if (b->t_on_s < a->t_off_s && a->t_on_s < b->t_off_s &&
                fabs(mid_freq(a) - mid_freq(b)) < a->baud + b->baud)
                a->collided = b->collided = true;
        }
        for (size_t k = 0; k < s->nintf; k++) {
            const synth_interferer_t *it = &s->intf[k];
            if (it->t_start_s < a->t_off_s && a->t_on_s < it->t_end_s &&
                fabs(it->freq_hz - mid_freq(a)) < it->bandwidth_hz / 2 + a->baud)
                a->interfered = true;
        }
    }
    s->order = malloc((s->nbursts ? s->nbursts : 1) * sizeof *s->order);
    s->active = malloc((s->nbursts ? s->nbursts : 1) * sizeof *s->active);
    if (!s->order || !s->active)
        return SYNTH_ERR_NOMEM;
    order_key_t *keys = malloc((s->nbursts ? s->nbursts : 1) * sizeof *keys);
    if (!keys)
        return SYNTH_ERR_NOMEM;
    for (size_t i = 0; i < s->nbursts; i++)
        keys[i] = (order_key_t){s->bursts[i].start_sample, i};
    qsort(keys, s->nbursts, sizeof *keys, cmp_order_key);
    for (size_t i = 0; i < s->nbursts; i++)
        s->order[i] = keys[i].index;
    free(keys);
    s->finalized = true;
    synth_rewind(s);
    return 0;
}

/* ---- Life cycle ---- */

synth_t *synth_create(const synth_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg) {
        errbuf_set(err, err_len, "no configuration");
        return NULL;
    }
    if (check_config(cfg, err, err_len) < 0)
        return NULL;
    synth_t *s = calloc(1, sizeof *s);
    if (!s) {
        errbuf_set(err, err_len, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->rc = rc_get(cfg->rc);
    if (s->cfg.center_freq_hz == 0)
        s->cfg.center_freq_hz = s->rc->ul_center_hz;
    if (s->cfg.drift_max_hz_s_br100 == 0)
        s->cfg.drift_max_hz_s_br100 = DRIFT_BR100_HZ_S;
    if (s->cfg.drift_max_hz_s_br600 == 0)
        s->cfg.drift_max_hz_s_br600 = DRIFT_BR600_HZ_S;
    if (s->cfg.msg_interval_s == 0)
        s->cfg.msg_interval_s = s->cfg.duration_s / 2;
    if (s->cfg.bproc_confirm) {
        s->cfg.p_dl_confirmation = 0; /* confirmations follow B-procedures only */
        if (s->cfg.dl_offset_s == 0)
            s->cfg.dl_offset_s = 1.0;
    }
    s->sigma2 = pow(10.0, cfg->noise_dbfs / 10.0);
    s->n0 = s->sigma2 / cfg->rate_sps;
    s->plan_samples = (uint64_t)llround(cfg->duration_s * cfg->rate_sps);
    s->total_samples = s->plan_samples;
    /* Annex 8.3: usable = operating ± 96 kHz shrunk by ε_SNW (1.62 ppm); a device chooses
     * f_UL a further ε_EP (20 ppm) inside so that its own error keeps it usable. */
    double fc = s->rc->ul_center_hz;
    double eps_snw = SNW_ACCURACY_PPM * 1e-6 * fc, eps_ep = EP_MARGIN_PPM * 1e-6 * fc;
    s->usable_lo_hz = fc - RC_MACRO_CHANNEL_HZ / 2 + eps_snw;
    s->usable_hi_hz = fc + RC_MACRO_CHANNEL_HZ / 2 - eps_snw;
    s->nominal_lo_hz = s->usable_lo_hz + eps_ep;
    s->nominal_hi_hz = s->usable_hi_hz - eps_ep;
    prng_seed(&s->plan, cfg->seed, 1);
    prng_seed(&s->noise, noise_seed(s), 2);
    s->keys = keystore_create();
    if (!s->keys) {
        errbuf_set(err, err_len, "out of memory");
        synth_destroy(s);
        return NULL;
    }
    int rc = plan_devices(s);
    if (rc == 0)
        rc = plan_interferers(s);
    if (rc == 0)
        rc = plan_collisions(s);
    if (rc < 0) {
        errbuf_set(err, err_len, "planning failed: %s", synth_strerror(rc));
        synth_destroy(s);
        return NULL;
    }
    if (station_check(s, err, err_len) < 0) {
        synth_destroy(s);
        return NULL;
    }
    /* The station hears everything station_delay_s later: the capture grows so that the
     * last burst is whole. */
    s->total_samples = s->plan_samples + (uint64_t)llround(cfg->station_delay_s * cfg->rate_sps);
    return s;
}

void synth_destroy(synth_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nfsk; i++) {
        if (s->fsk[i].mod)
            cpfskmod_destroy(s->fsk[i].mod);
        free(s->fsk[i].sym);
    }
    free(s->fsk);
    free(s->dev);
    free(s->bursts);
    free(s->order);
    free(s->active);
    free(s->intf);
    free(s->intf_r);
    free(s->bproc);
    keystore_destroy(s->keys);
    free(s);
}

/* ---- Explicit traffic ---- */

/* Explicit bursts of one ID+MC are replicas of one message. Sets *is_new when the message
 * number is a new one (taken from s->nmessages, not yet counted). */
static uint32_t message_number(const synth_t *s, const ul_message_t *m, bool *is_new)
{
    for (size_t i = 0; i < s->nbursts; i++) {
        const synth_burst_t *b = &s->bursts[i];
        if (b->explicit_burst && b->msg.ep_id == m->ep_id && b->msg.mc == m->mc) {
            *is_new = false;
            return b->message;
        }
    }
    *is_new = true;
    return s->nmessages;
}

int synth_add_burst(synth_t *s, const synth_burst_spec_t *spec)
{
    if (!s || !spec)
        return SYNTH_ERR_ARG;
    if (s->finalized)
        return SYNTH_ERR_STATE;
    if (spec->rank < 1 || spec->rank > 3 || (spec->baud != 100 && spec->baud != 600) ||
        !isfinite(spec->t_start_s) || !isfinite(spec->freq_hz) || !isfinite(spec->ebn0_db))
        return SYNTH_ERR_ARG;
    burst_plan_t bp;
    memset(&bp, 0, sizeof bp);
    bp.msg = &spec->msg;
    bp.key = spec->key;
    bp.rank = spec->rank;
    bp.n_frames = spec->n_frames ? spec->n_frames : 3;
    bp.baud = spec->baud;
    bp.raw_bits = spec->bits;
    bp.raw_nbits = spec->nbits;
    bp.t_start_s = spec->t_start_s;
    bp.freq_hz = spec->freq_hz;
    bp.ebn0_db = spec->ebn0_db;
    bp.mod.rate_sps = s->cfg.rate_sps;
    bp.mod.baud = spec->baud;
    bp.mod.drift_hz_s = spec->drift_hz_s;
    bp.mod.phase_rad = spec->phase_rad;
    bp.mod.baud_error_ppm = spec->baud_error_ppm;
    bp.mod.lead_symbols = spec->lead_symbols;
    bp.mod.tail_symbols = spec->tail_symbols;
    bp.mod.ramp_symbols = spec->ramp_symbols;
    bp.mod.reversal_symbols = spec->reversal_symbols;
    bp.device = UINT32_MAX;
    bp.explicit_burst = true;
    bool new_message;
    bp.message = message_number(s, &spec->msg, &new_message);
    int rc = add_record(s, &bp);
    if (rc < 0)
        return rc;
    if (new_message)
        s->nmessages++;
    if (keystore_add(s->keys, spec->msg.ep_id, spec->key) < 0)
        return SYNTH_ERR_NOMEM;
    return 0;
}

int synth_add_message(synth_t *s, const synth_message_spec_t *spec)
{
    if (!s || !spec)
        return SYNTH_ERR_ARG;
    if (s->finalized)
        return SYNTH_ERR_STATE;
    if ((spec->n_frames != 1 && spec->n_frames != 3) || (spec->baud != 100 && spec->baud != 600) ||
        !isfinite(spec->t_start_s) || !(spec->t_start_s >= 0) || !isfinite(spec->ebn0_db) ||
        !(spec->gap_s >= 0) || !(fabs(spec->freq_error_ppm) <= EP_MARGIN_PPM))
        return SYNTH_ERR_ARG;
    /* An ideal device apart from what the spec asks for; the carriers and gaps follow the
     * planner's rules. */
    device_t d;
    memset(&d, 0, sizeof d);
    d.ep_id = spec->msg.ep_id;
    memcpy(d.key, spec->key, UL_KEY_BYTES);
    d.mc = spec->msg.mc;
    d.freq_error_ppm = spec->freq_error_ppm;
    d.baud_error_ppm = spec->baud_error_ppm;
    d.ramp_symbols = 1.0;
    d.lead_symbols = 1;
    d.tail_symbols = 1;
    dbpsk_burst_params_t mod = device_mod(&d);
    mod.rate_sps = s->cfg.rate_sps;
    mod.baud = spec->baud;
    if (dbpsk_burst_check(&mod) != DBPSK_OK)
        return SYNTH_ERR_ARG;
    double t_on = spec->t_start_s - dbpsk_burst_data_offset(&mod) / s->cfg.rate_sps;
    size_t mark = s->nbursts;
    double f_first = spec->freq_hz > 0 ? spec->freq_hz / (1.0 + d.freq_error_ppm * 1e-6) : 0;
    double first_end, last_off;
    uint32_t msg_no = s->nmessages;
    int rc =
        plan_message(s, &d, UINT32_MAX, t_on, &spec->msg, spec->n_frames, spec->baud, spec->ebn0_db,
                     f_first, spec->gap_s, &spec->drift_hz_s, &first_end, &last_off);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return SYNTH_ERR_RANGE;
    for (size_t i = mark; i < s->nbursts; i++) {
        synth_burst_t *b = &s->bursts[i];
        b->explicit_burst = true;
        b->message = msg_no;
    }
    if (keystore_add(s->keys, spec->msg.ep_id, spec->key) < 0)
        return SYNTH_ERR_NOMEM;
    return 0;
}

/* ---- Rendering ---- */

void synth_rewind(synth_t *s)
{
    if (!s)
        return;
    s->pos = 0;
    s->nactive = 0;
    s->next_render = 0;
    prng_seed(&s->noise, noise_seed(s), 2);
    for (size_t i = 0; i < s->nfsk; i++) {
        s->fsk[i].cur = s->fsk[i].first;
        s->fsk[i].pos = 0;
        prng_seed(&s->fsk[i].bits, s->cfg.seed, 100 + i);
    }
}

static void add_noise(synth_t *s, float complex *out, size_t n)
{
    double sd = sqrt(s->sigma2 / 2.0); /* per component */
    for (size_t i = 0; i < n; i++) {
        double a, b;
        prng_normal2(&s->noise, &a, &b);
        out[i] = (float)(sd * a) + (float)(sd * b) * I;
    }
}

/* Adds an interferer's carrier × envelope over out[lo..hi) (stream index base + i).
 * Envelope: CW with raised-cosine on/off ramps; FSK packets from the source's modulator. */
static void add_interferer_block(synth_t *s, size_t k, float complex *out, uint64_t base, size_t lo,
                                 size_t hi)
{
    const intf_render_t *r = &s->intf_r[k];
    const double fs = s->cfg.rate_sps;
    const double two_pi = 2 * M_PI;
    fsk_source_t *src = r->source >= 0 ? &s->fsk[r->source] : NULL;
    int64_t ramp = (int64_t)(CW_RAMP_S * fs);
    for (size_t blk = lo; blk < hi; blk += PHASOR_REANCHOR) {
        size_t end = blk + PHASOR_REANCHOR < hi ? blk + PHASOR_REANCHOR : hi;
        double m0 = (double)(base + blk);
        double cyc = fmod(r->f_off_hz * m0 / fs, 1.0);
        double complex z = cexp(I * (r->phase0 + two_pi * cyc));
        double complex w = cexp(I * two_pi * r->f_off_hz / fs);
        for (size_t i = blk; i < end; i++) {
            int64_t m = (int64_t)(base + i);
            double env;
            if (src) {
                if (src->pos % src->k == 0) {
                    unsigned bit = (unsigned)(prng_next(&src->bits) >> 63);
                    cpfskmod_modulate(src->mod, bit, src->sym);
                }
                env = 1.0;
                double q = (double)src->pos / src->k, nsym = (double)(r->end - r->start) / src->k;
                if (q < 1.0)
                    env = 0.5 - 0.5 * cos(M_PI * q);
                else if (q > nsym - 1.0)
                    env = 0.5 - 0.5 * cos(M_PI * (nsym - q));
                out[i] += (float complex)(r->amp * env * z * src->sym[src->pos % src->k]);
                src->pos++;
            } else {
                env = 1.0;
                if (m - r->start < ramp)
                    env = 0.5 - 0.5 * cos(M_PI * (double)(m - r->start) / (double)ramp);
                else if (r->end - m < ramp)
                    env = 0.5 - 0.5 * cos(M_PI * (double)(r->end - m) / (double)ramp);
                out[i] += (float complex)(r->amp * env * z);
            }
            z *= w;
        }
    }
}

static void render_interferers(synth_t *s, float complex *out, size_t n)
{
    uint64_t b0 = s->pos, b1 = s->pos + n;
    /* CW tones. */
    for (size_t k = 0; k < s->nintf; k++) {
        const intf_render_t *r = &s->intf_r[k];
        if (r->source >= 0 || r->end <= (int64_t)b0 || r->start >= (int64_t)b1)
            continue;
        size_t lo = r->start > (int64_t)b0 ? (size_t)(r->start - (int64_t)b0) : 0;
        size_t hi = r->end < (int64_t)b1 ? (size_t)(r->end - (int64_t)b0) : n;
        add_interferer_block(s, k, out, b0, lo, hi);
    }
    /* FSK sources: packets in time order, one at a time. */
    for (size_t f = 0; f < s->nfsk; f++) {
        fsk_source_t *src = &s->fsk[f];
        while (src->cur < src->first + src->count) {
            const intf_render_t *r = &s->intf_r[src->cur];
            if (r->start >= (int64_t)b1)
                break;
            if (r->end <= (int64_t)b0) { /* finished */
                src->cur++;
                src->pos = 0;
                continue;
            }
            if (src->pos == 0 && r->start >= (int64_t)b0)
                cpfskmod_reset(src->mod);
            int64_t from = r->start + (int64_t)src->pos;
            if (from < (int64_t)b0)
                from = (int64_t)b0; /* cannot happen in sequential rendering */
            size_t lo = (size_t)(from - (int64_t)b0);
            size_t hi = r->end < (int64_t)b1 ? (size_t)(r->end - (int64_t)b0) : n;
            add_interferer_block(s, src->cur, out, b0, lo, hi);
            if (r->end <= (int64_t)b1) {
                src->cur++;
                src->pos = 0;
            } else {
                break;
            }
        }
    }
}

long synth_render(synth_t *s, float complex *out, size_t n)
{
    if (!s || (!out && n > 0))
        return SYNTH_ERR_ARG;
    int rc = finalize(s);
    if (rc < 0)
        return rc;
    if (s->pos >= s->total_samples)
        return 0;
    if (n > s->total_samples - s->pos)
        n = (size_t)(s->total_samples - s->pos);
    if (s->cfg.noise)
        add_noise(s, out, n);
    else
        memset(out, 0, n * sizeof *out);
    render_interferers(s, out, n);

    double b1 = (double)(s->pos + n);
    while (s->next_render < s->nbursts && s->bursts[s->order[s->next_render]].start_sample < b1)
        s->active[s->nactive++] = s->order[s->next_render++];
    for (size_t a = 0; a < s->nactive;) {
        const synth_burst_t *b = &s->bursts[s->active[a]];
        long got = dbpsk_burst_render(&b->mod, b->bitstream, b->nbits, b->start_sample,
                                      (int64_t)s->pos, out, n);
        if (got < 0)
            return SYNTH_ERR_ARG;               /* parameters were checked when planned */
        if (b->t_off_s * s->cfg.rate_sps <= b1) /* finished within this block */
            s->active[a] = s->active[--s->nactive];
        else
            a++;
    }
    s->pos += n;
    return (long)n;
}

uint64_t synth_total_samples(const synth_t *s)
{
    return s ? s->total_samples : 0;
}

uint64_t synth_position(const synth_t *s)
{
    return s ? s->pos : 0;
}

const synth_burst_t *synth_bursts(synth_t *s, size_t *count)
{
    if (!s || finalize(s) < 0) {
        if (count)
            *count = 0;
        return NULL;
    }
    if (count)
        *count = s->nbursts;
    return s->bursts;
}

const synth_interferer_t *synth_interferers(const synth_t *s, size_t *count)
{
    if (count)
        *count = s ? s->nintf : 0;
    return s ? s->intf : NULL;
}

const synth_bproc_t *synth_bprocs(const synth_t *s, size_t *count)
{
    if (count)
        *count = s ? s->nbproc : 0;
    return s ? s->bproc : NULL;
}

size_t synth_message_count(synth_t *s)
{
    return s ? s->nmessages : 0;
}

double synth_n0(const synth_t *s)
{
    return s ? s->n0 : 0;
}

const synth_config_t *synth_config(const synth_t *s)
{
    return s ? &s->cfg : NULL;
}

const keystore_t *synth_keys(const synth_t *s)
{
    return s ? s->keys : NULL;
}

/* ---- Truth as JSON lines ---- */

static void put_num(json_object *o, const char *key, const char *fmt, double v)
{
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    json_object_object_add(o, key, json_object_new_double_s(v, buf));
}

static json_object *burst_object(const synth_burst_t *b)
{
    char hex[2 * UL_MAX_FRAME_BYTES + 1];
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "type", json_object_new_string("burst"));
    put_num(o, "t_start_s", "%.7f", b->t_start_s);
    put_num(o, "t_end_s", "%.7f", b->t_end_s);
    put_num(o, "t_on_s", "%.7f", b->t_on_s);
    put_num(o, "t_off_s", "%.7f", b->t_off_s);
    put_num(o, "freq_hz", "%.3f", b->freq_hz);
    put_num(o, "drift_hz_s", "%.3f", b->drift_hz_s);
    put_num(o, "ebn0_db", "%.3f", b->ebn0_db);
    put_num(o, "rssi_dbfs", "%.3f", b->rssi_dbfs);
    json_object_object_add(o, "baud", json_object_new_int(b->baud));
    put_num(o, "baud_error_ppm", "%.1f", b->mod.baud_error_ppm);
    put_num(o, "freq_error_ppm", "%.3f", b->freq_error_ppm);
    put_num(o, "phase_rad", "%.4f", b->mod.phase_rad);
    json_object_object_add(o, "rank", json_object_new_int(b->rank));
    json_object_object_add(o, "n_frames", json_object_new_int(b->n_frames));
    json_object_object_add(o, "message", json_object_new_int64(b->message));
    snprintf(hex, sizeof hex, "%03X", b->ft);
    json_object_object_add(o, "ft", json_object_new_string(hex));
    bytes_to_hex(b->bitstream, (b->nbits + 7) / 8, hex);
    json_object_object_add(o, "bitstream", json_object_new_string(hex));
    framejson_add_ep_id(o, b->msg.ep_id);
    json_object_object_add(o, "mc", json_object_new_int(b->msg.mc));
    bytes_to_hex(b->payload_air, b->payload_air_len, hex);
    json_object_object_add(o, "payload", json_object_new_string(hex));
    json_object_object_add(o, "payload_class",
                           json_object_new_string(sim_payload_class_name(b->payload_class)));
    json_object_object_add(o, "payload_bit",
                           b->msg.one_bit ? json_object_new_int(b->msg.payload_bit) : NULL);
    json_object_object_add(o, "bf", json_object_new_boolean(b->msg.bf));
    json_object_object_add(o, "kind", json_object_new_string(ul_kind_name(b->msg.kind)));
    json_object_object_add(o, "collided", json_object_new_boolean(b->collided));
    json_object_object_add(o, "interfered", json_object_new_boolean(b->interfered));
    json_object_object_add(o, "explicit", json_object_new_boolean(b->explicit_burst));
    return o;
}

static json_object *bproc_object(const synth_bproc_t *b)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "type", json_object_new_string("bproc"));
    json_object_object_add(o, "message", json_object_new_int64(b->message));
    framejson_add_ep_id(o, b->ep_id);
    json_object_object_add(o, "mc", json_object_new_int(b->mc));
    put_num(o, "ul_t_end_s", "%.7f", b->ul_t_end_s);
    put_num(o, "ul_freq_hz", "%.3f", b->ul_freq_hz);
    put_num(o, "window_start_s", "%.7f", b->window_start_s);
    put_num(o, "window_end_s", "%.7f", b->window_end_s);
    put_num(o, "dl_freq_hz", "%.3f", b->dl_freq_hz);
    put_num(o, "dl_t_start_s", "%.7f", b->dl_t_start_s);
    put_num(o, "dl_t_end_s", "%.7f", b->dl_t_end_s);
    json_object_object_add(o, "confirmed", json_object_new_boolean(b->confirmed));
    if (b->confirmed) {
        json_object_object_add(o, "conf_message", json_object_new_int64(b->conf_message));
        json_object_object_add(o, "conf_mc", json_object_new_int(b->conf_mc));
        put_num(o, "t_conf_s", "%.7f", b->t_conf_s);
        put_num(o, "conf_t_start_s", "%.7f", b->conf_t_start_s);
        json_object_object_add(o, "vdd_idle_mv", json_object_new_int(b->control.vdd_idle_mv));
        json_object_object_add(o, "vdd_tx_mv", json_object_new_int(b->control.vdd_tx_mv));
        json_object_object_add(o, "temp_tenth_c", json_object_new_int(b->control.temp_tenth_c));
        json_object_object_add(o, "rssi_dbm", json_object_new_int(b->control.rssi_dbm));
    }
    return o;
}

int synth_burst_json(const synth_burst_t *b, char *buf, size_t len)
{
    if (!b || !buf)
        return -1;
    json_object *o = burst_object(b);
    if (!o)
        return -1;
    const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    size_t n = strlen(text);
    int rc = -1;
    if (n < len) {
        memcpy(buf, text, n + 1);
        rc = (int)n;
    }
    json_object_put(o);
    return rc;
}

int synth_truth_write(synth_t *s, FILE *out)
{
    if (!s || !out)
        return SYNTH_ERR_ARG;
    int rc = finalize(s);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < s->nbursts + s->nbproc; i++) {
        json_object *o =
            i < s->nbursts ? burst_object(&s->bursts[i]) : bproc_object(&s->bproc[i - s->nbursts]);
        if (!o)
            return SYNTH_ERR_NOMEM;
        int w = fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        if (w < 0)
            return SYNTH_ERR_IO;
    }
    for (size_t i = 0; i < s->nintf; i++) {
        const synth_interferer_t *it = &s->intf[i];
        json_object *o = json_object_new_object();
        if (!o)
            return SYNTH_ERR_NOMEM;
        json_object_object_add(o, "type", json_object_new_string("interferer"));
        json_object_object_add(
            o, "interferer",
            json_object_new_string(it->kind == SYNTH_INTERFERER_CW ? "cw" : "fsk"));
        put_num(o, "t_start_s", "%.7f", it->t_start_s);
        put_num(o, "t_end_s", "%.7f", it->t_end_s);
        put_num(o, "freq_hz", "%.3f", it->freq_hz);
        put_num(o, "power_db", "%.2f", it->power_db);
        put_num(o, "bandwidth_hz", "%.1f", it->bandwidth_hz);
        if (it->kind == SYNTH_INTERFERER_FSK) {
            put_num(o, "fsk_baud", "%.3f", it->fsk_baud);
            put_num(o, "fsk_dev_hz", "%.1f", it->fsk_dev_hz);
        }
        int w = fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        if (w < 0)
            return SYNTH_ERR_IO;
    }
    return fflush(out) == 0 ? 0 : SYNTH_ERR_IO;
}
