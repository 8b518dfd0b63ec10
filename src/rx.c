/* rx: the wideband uplink receiver pipeline. Licence: MIT.
 *
 *   input --frontend--> working rate --channelizer--> spectra (+ history ring)
 *         --burstdet--> OPEN/CLOSE events --extractor--> snippet slots (16 samples/symbol)
 *         --demod--> soft bits --uldecode--> frames (+ UL-AUTH) --assembler--> messages
 *
 * Time bookkeeping. Everything inside a segment (the stream since create or the last
 * rx_discontinuity) counts working-rate samples w from the segment start; the input index
 * of w is seg_base + w * decimation - frontend delay. Hop b's frame covers
 * w in [b*hop, b*hop + N); the detector's event times t (fractional hops) mean
 * w = (t + 1) * hop; snippet sample j of a slot that started at hop f is at
 * w = f*hop + N/4 + j*N/M (extractor.h).
 *
 * Memory: the channelizer keeps a ring of HIST_HOPS spectra (so a burst found up to its
 * detector's backfill late is still cut from its start), one sample buffer per slot
 * (max_bursts per class), all allocated in rx_create.
 */
#include "rx.h"

#include <liquid/liquid.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "assembler.h"
#include "burstdet.h"
#include "channelizer.h"
#include "dbpskmod.h"
#include "demod.h"
#include "extractor.h"
#include "frontend.h"
#include "log.h"
#include "sic.h"
#include "tonesub.h"
#include "uldecode.h"
#include "uljoint.h"

#define NCLASS 2
#define GRID_HZ 25.0        /* channelizer bin width: 4 bins per BR100 symbol rate */
/* Spectra the channelizer keeps, so that a track is cut from where the detector says it may
 * have begun: more than its longest backfill (burstdet_backfill_hops: a weak BR100 track's,
 * long box 0.6 s + WEAK_BACK_S_BR100 2.0 s = 130 hops; rx_create checks). With 36 hops
 * (0.72 s) the start of a weak BR100 burst the long box found late was not held, and its
 * sync landed in the body. */
#define HIST_HOPS 134
#define CHUNK_IN 65536      /* input samples per front-end pass */
#define PASS_MARGIN_HZ 1000 /* kept beyond the macro-channel edge (a burst's half width) */
#define SOFT_CAP 512
/* Frames remembered to drop duplicates: a second track of a burst can close after every
 * other burst on air decoded (100 on air: ~90 frames; 32 let 1-5 of 2000 through). */
#define RECENT_FRAMES 128
/* Decoded bursts remembered for cross-track cancellation (cancel_neighbours): 100 bursts
 * on air at once decode ~90 in the time a BR100 track lasts. */
#define DONE_BURSTS 128
/* A decoded burst is cancelled from a snippet when its carrier is within this many symbol
 * rates of its own plus as many of the snippet's class from the snippet's centre (main
 * lobes and first side lobes of both; further out it hardly reaches the snippet's
 * burst), and the snippet's filter passes some of it. */
#define NEIGHBOUR_REACH_BAUDS 2.0
/* The reference of a BR600 burst for a BR100 snippet is rendered at 6 × the snippet's
 * rate (16 × 600 samples per second: a BR600 burst 1 kHz off its centre does not alias);
 * a BR100 burst for a BR600 snippet at the snippet's rate. */
#define XCANCEL_BR600_IN_BR100_OVERSAMPLE 6
/* A cancelled burst on air over this fraction of a track is the track's own burst when
 * its carrier matches (cancel_neighbours). */
#define OWN_BURST_OVERLAP 0.8
/* Several bursts in one track (finalize): demodulation attempts per track at most, and
 * what makes a track suspect. A single BR100 burst measures an rms width of 31-37 Hz at
 * 15 dB (drift included), two within ~150 Hz of each other 42-62 Hz; the detector's SNR
 * over the core exceeds the decoded burst's when another burst shares the core; a single
 * burst at 8 dB or more in the detector nearly always decodes. */
#define MAX_ATTEMPTS 5
#define MULTI_WIDTH_HZ 40.0
#define MULTI_EXCESS_DB 1.5
#define MULTI_FAIL_SNR_DB 8.0
/* Tracks the detector sees at least this far above the noise (dB in baud Hz) skip the
 * demodulator's weak-burst carrier search (demod_hint_t.strong). */
#define WEAK_SEARCH_MAX_SNR_DB 8.0
/* ... or when the track extends this far beyond the decoded frame (the detector's start and
 * end are within ~8 symbols of the truth at 6 dB and more, test_burstdet) */
#define EXTENT_SLACK_SYMBOLS 16.0
/* Carrier window of the attempt on the other side of the centroid: up to the failed
 * carrier minus this guard, within these limits. */
#define MIRROR_GUARD_HZ 20.0
/* Carrier window when a failed carrier is tried again with the start sought over the
 * whole track. */
#define SAME_WINDOW_HZ 20.0
#define MIRROR_MIN_WINDOW_HZ 10.0
#define MIRROR_MAX_WINDOW_HZ 60.0
/* A track the detector accepted on condition (verify_preamble: shaped like a CW tone or an
 * FSK line, which frames of long runs of equal or alternating bits also are) is kept when
 * its first demodulation decodes, or finds the FT with at most this many of the 19
 * preamble bits wrong (a carrier without reversals gets ~half of them wrong; a frame at
 * 6 dB Eb/N0 has under 1 % bit errors there). */
#define VERIFY_MAX_PREAMBLE_ERRORS 3
/* ... unless it is a BR600 track wider than one burst (rms over this; one burst measures
 * 150-205 Hz): two BR600 bursts 400-900 Hz apart on air together are one track that
 * fails the width test (and the preamble check at the centroid between them). It then
 * gets the multi-burst attempts and is kept if they decode a frame (in the mixed capacity
 * scene, N = 100, such pairs were the most frequent remaining loss that a demodulator
 * told where to look decodes). */
#define PAIR_WIDTH_HZ 250.0
/* A track that fails the preamble check (VERIFY_MAX_PREAMBLE_ERRORS) is still kept, with
 * a key store, when the detector saw it under this SNR and its first demodulation found a
 * preamble + FT sync at all. There the width and on/off tests measure the noise as much
 * as the burst, and a preamble at 0-2 dB Eb/N0 has 4-9 of its 19 bits wrong: at 1 dB a
 * quarter of the BR100 tracks of real bursts (144 of 583, sigfox-bench
 * sensitivity --pipeline --baud 100) failed the check above and took their replica out of
 * joint decoding. Nothing but CRC-valid frames and messages that pass UL-AUTH comes out
 * of such a track, so a weak tone kept this way costs demodulations, not false messages;
 * without a key store a joint result needs only its CRC, and the check stays. */
#define VERIFY_WEAK_MAX_SNR_DB 4.0
/* ... but not a track the detector saw under -1 dB, nor one the demodulator measures
 * outside -2 .. 4 dB. Such tracks are the edges of interferers: in sigfox-bench
 * false-frames (noise, CW tones and FSK packets 30 dB over the noise), of the tracks this
 * would keep, 3/4 were seen under -1 dB and 1/4 demodulated over 7 dB (the carrier search
 * locked on the interferer); these bounds keep 10 % of them, and 96 % of the real bursts
 * at 1 dB (detector 0-2 dB, demodulator -1.1 .. 2.1 dB, 10-90 %). */
#define VERIFY_WEAK_MIN_SNR_DB (-1.0)
#define VERIFY_WEAK_MIN_DEMOD_SNR_DB (-2.0)
/* Steady lines next to a burst (burstdet_event_t.line_bin, tonesub.h): searched within
 * +-1.5 bins of the detector's estimate; subtracted when the stretches before and after
 * the burst agree on the tone's amplitude within 30 %. */
#define LINE_SEARCH_BINS 1.5
#define LINE_MAX_MISMATCH 0.3

/* Per class: snippet geometry and the detector's timing accuracy. */
typedef struct {
    int baud;
    size_t out_bins; /* extractor M: 16 samples/symbol at 25 Hz bins */
    double pass_hz, stop_hz;
    double max_track_s;    /* longest track a slot must hold (detector's LONG limit + box) */
    double time_err_s;     /* detector start/end error to search (measured <= 52 ms at 6 dB,
                              test_burstdet), plus room */
    double frame_end_s;    /* snippets reach at least this far beyond the detector's start:
                              the longest frame of Table 3-1 (208 bits) plus 2 tail symbols.
                              Where a frame's bits alternate, its power sits in two lines
                              +-baud/2 away (BR600: outside the detector's box), and at low
                              SNR the measured end can come early; the FT tells the
                              demodulator how long the frame is. */
    double reach_below_db; /* ... when the detector's SNR is under this (BR100: waiting
                              for the longest frame would delay strong short frames by up
                              to 1 s) */
    double weak_time_err_s; /* the same for tracks seen under WEAK_TIME_MAX_SNR_DB: a BR100
                               burst the detector barely saw (long-box tracks, 0-3 dB) has
                               its start found up to ~0.6 s off (BURSTDET_SWEEP at 0 dB);
                               whole receiver, BR100 messages at 1 dB: 44 % lost instead of
                               ~49 %. BR600 starts stay within ~0.12 s (a wider search
                               there cost BR600 messages 0.17 dB) */
} class_geom_t;

static const class_geom_t geom[NCLASS] = {
    {100, 64, 300, 700, 5.2, 0.08, 210.0 / 100, 8.0, 0.4},
    {600, 384, 1500, 4000, 1.2, 0.04, 210.0 / 600, 1e9, 0.08},
};

#define WEAK_TIME_MAX_SNR_DB 4.0
/* The first attempt's start window spans this many standard deviations of the detector's
 * start error each side (demod_hint_t.start_sigma): most starts are near the estimate,
 * a few far out. Over the ±0.4 s window of a weak BR100 track a flat search let body
 * positions win the sync at 1 dB (sigfox-bench sensitivity --pipeline --combined-only,
 * 1 dB: BR100 / BR600 messages lost 93 / 67 -> 90 / 57 of 400). */
#define START_WINDOW_SIGMAS 4.0
/* A weak burst whose first attempt gave no frame is read again at its runner-up sync
 * positions (demod_result_t.alt_start_sample), at most ALT_SYNC_MAX of them, when the
 * demodulator measured it under ALT_SYNC_MAX_SNR_DB and the runner-up scored within
 * ALT_SYNC_MAX_GAP nats of the winner; each attempt searches around its position with a
 * prior ALT_SYNC_SIGMA_SYMBOLS wide (the winner is >= 2 symbols away). Two did best at
 * 1 dB (benchmarks.md, "Runner-up syncs"). */
#define ALT_SYNC_MAX 2
#define ALT_SYNC_MAX_SNR_DB 4.0
#define ALT_SYNC_MAX_GAP 8.0
#define ALT_SYNC_SIGMA_SYMBOLS 0.5

/* How far beyond the detector's start a snippet must reach (seconds). */
static double snippet_reach_s(const class_geom_t *g, const burstdet_event_t *e)
{
    return e->snr_db < g->reach_below_db ? g->frame_end_s : 0;
}

enum { SLOT_FREE = 0, SLOT_EXTRACT, SLOT_TAIL };

typedef struct {
    int state;
    uint32_t id;
    long k0;            /* centre bin (signed) */
    uint64_t first_hop; /* hop of the slot's first sample */
    uint64_t need_hop;  /* SLOT_TAIL: finalize once this hop is extracted */
    size_t n, cap;      /* samples held / capacity */
    float complex *buf;
    burstdet_event_t close; /* the accepted CLOSE event */
} slot_t;

/* A decoded burst, as another snippet needs it to cancel it (working-rate units). */
typedef struct {
    bool used;
    int c;                 /* class (geom) */
    double w_start, w_end; /* first data symbol's start, last one's end (working samples) */
    double freq_hz;        /* carrier at w_start, Hz from the working band's centre */
    double drift_hz_s, symbol_rate;
    size_t nbits;
    uint8_t bits[UL_MAX_FRAME_BYTES];
} done_burst_t;

/* Stages of rx_cpu_t. */
enum { ST_FRONTEND, ST_CHANNELIZER, ST_DETECTOR, ST_EXTRACTOR, ST_DEMOD, ST_DECODE, NSTAGES };

struct rx {
    rx_config_t cfg;
    int chase_trials; /* uldecode_chase's budget per CRC-failed frame; 0: off */
    double rate;
    double center_hz; /* absolute macro-channel centre (relative when unknown) */
    frontend_t *fe;
    channelizer_t *ch;
    burstdet_t *bd;
    extractor_t *ex[NCLASS];
    demod_t *dm[NCLASS];
    assembler_t *as;
    nco_crcf nco;       /* fine centring of a snippet on the detector's carrier */
    float complex *tmp; /* a snippet re-centred for one attempt (longest slot) */
    float complex *rec; /* a decoded burst re-modulated for cancellation */
    size_t maxslot;     /* samples of the longest slot */
    /* where a BR600 pair track's bursts are (spectral_peak_hz): one FFT of a bin's width */
    fftplan peak_fft;
    float complex *peak_in, *peak_out;
    float *peak_psd;
    double fw, hop_s, bin_hz, fe_delay;
    unsigned dec;
    size_t nfft, hop;
    float complex *wbuf;
    size_t wcap;
    float complex *zeros; /* CHUNK_IN, for flushing the filters */
    slot_t *slots[NCLASS];
    size_t nslots[NCLASS];
    burstdet_event_t *ev;
    size_t evcap;
    float soft[SOFT_CAP];
    rx_softframe_t sf; /* the best attempt of the burst in finalize() with a sync */
    int sf_status;     /* its TRY_* status, TRY_NOSYNC: none */
    rx_frame_t recent[RECENT_FRAMES];
    size_t recent_next;
    sic_xcancel_t *xc[NCLASS]; /* cancels the other class's bursts from this class's snippets */
    done_burst_t done[DONE_BURSTS]; /* a ring */
    size_t done_next;
    uint64_t in_pos;   /* input samples consumed, lost ones included */
    uint64_t seg_base; /* input index of the segment's first sample */
    uint64_t last_hop; /* last hop handled in this segment (+1), 0: none */
    uint64_t cur_hop;  /* hop being handled */
    rx_stats_t st;
    double t_lap;        /* thread CPU time of the last lap() */
    double cpu[NSTAGES]; /* seconds per stage (rx_cpu_t) */
};

/* Per-stage CPU time: each lap charges the time since the previous one to a stage. */

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void lap(rx_t *q, int stage)
{
    double now = cpu_now();
    q->cpu[stage] += now - q->t_lap;
    q->t_lap = now;
}

static void on_message(const rx_message_t *m, void *user)
{
    rx_t *q = user;
    q->st.messages++;
    if (m->combined)
        q->st.messages_combined++;
    if (q->cfg.on_message)
        q->cfg.on_message(m, q->cfg.user);
}

static int class_of(int baud)
{
    return baud == 600 ? 1 : 0;
}

/* Input-stream index (fractional) of working sample w of the current segment. */
static double in_index(const rx_t *q, double w)
{
    return (double)q->seg_base + w * q->dec - q->fe_delay;
}

rx_t *rx_create(const rx_config_t *cfg)
{
    if (!cfg) {
        log_error("Receiver not created, reason: no configuration");
        return NULL;
    }
    if (!(cfg->rate_sps >= 200e3 && cfg->rate_sps <= 3.2e6)) {
        log_error("Receiver not created, reason: sample rate outside 200 kS/s .. 3.2 MS/s, "
                  "rate_sps: %g",
                  cfg->rate_sps);
        return NULL;
    }
    double width = cfg->channel_width_hz > 0 ? cfg->channel_width_hz : RC_MACRO_CHANNEL_HZ;
    if (!(width >= 10e3 && width <= cfg->rate_sps)) {
        log_error("Receiver not created, reason: channel width out of range, "
                  "channel_width_hz: %g",
                  width);
        return NULL;
    }
    double shift = 0;
    if (cfg->channel_center_hz != 0 && cfg->capture_center_hz != 0)
        shift = cfg->channel_center_hz - cfg->capture_center_hz;
    else if (cfg->channel_center_hz != 0 && cfg->capture_center_hz == 0) {
        log_error("Receiver not created, reason: channel centre given without the capture "
                  "centre, channel_center_hz: %.0f",
                  cfg->channel_center_hz);
        return NULL;
    }
    if (fabs(shift) + width / 2 > cfg->rate_sps / 2) {
        log_error("Receiver not created, reason: macro-channel outside the capture band, "
                  "shift_hz: %.0f, channel_width_hz: %.0f, rate_sps: %.0f",
                  shift, width, cfg->rate_sps);
        return NULL;
    }
    if (cfg->threshold_db < 0 || cfg->threshold_db > 40) {
        log_error("Receiver not created, reason: threshold out of range, threshold_db: %g",
                  cfg->threshold_db);
        return NULL;
    }
    if (cfg->chase_trials > ULDECODE_CHASE_MAX_TRIALS) {
        log_error("Receiver not created, reason: chase decoder budget out of range, "
                  "chase_trials: %d (at most %d)",
                  cfg->chase_trials, ULDECODE_CHASE_MAX_TRIALS);
        return NULL;
    }
    rx_t *q = calloc(1, sizeof *q);
    if (!q)
        goto nomem;
    q->cfg = *cfg;
    q->chase_trials = cfg->chase_trials == 0  ? ULDECODE_CHASE_DEFAULT_TRIALS
                      : cfg->chase_trials < 0 ? 0
                                              : cfg->chase_trials;
    q->rate = cfg->rate_sps;
    q->center_hz = cfg->channel_center_hz != 0 ? cfg->channel_center_hz : cfg->capture_center_hz;
    double pass = width / 2 + PASS_MARGIN_HZ;
    if (fabs(shift) + pass > q->rate / 2)
        pass = q->rate / 2 - fabs(shift);
    frontend_config_t fc = {
        .rate_sps = q->rate,
        .shift_hz = shift,
        .passband_hz = pass,
        .grid_hz = GRID_HZ,
        .fft_measure = cfg->fft_measure};
    q->fe = frontend_create(&fc);
    if (!q->fe)
        goto fail;
    q->fw = frontend_out_rate(q->fe);
    q->dec = frontend_decimation(q->fe);
    q->fe_delay = frontend_delay_in(q->fe);
    q->nfft = (size_t)lround(q->fw / GRID_HZ);
    q->nfft += q->nfft & 1;
    channelizer_config_t cc = {.rate_sps = q->fw,
                               .fft_len = q->nfft,
                               .band_lo_hz = -width / 2,
                               .band_hi_hz = width / 2,
                               .history_hops = HIST_HOPS,
                               .fft_measure = cfg->fft_measure};
    q->ch = channelizer_create(&cc);
    if (!q->ch)
        goto fail;
    q->hop = channelizer_hop_len(q->ch);
    q->bin_hz = channelizer_bin_hz(q->ch);
    q->hop_s = (double)q->hop / q->fw;
    size_t maxb[NCLASS] = {cfg->max_bursts ? cfg->max_bursts : 160,
                           cfg->max_bursts ? cfg->max_bursts : 96};
    burstdet_config_t bc = {.bin_hz = q->bin_hz,
                            .hop_s = q->hop_s,
                            .fft_len = q->nfft,
                            .bin_lo = channelizer_bin_lo(q->ch),
                            .nbins = channelizer_nbins(q->ch),
                            .threshold_db = cfg->threshold_db,
                            .max_tracks = maxb[0] > maxb[1] ? maxb[0] : maxb[1]};
    q->bd = burstdet_create(&bc);
    if (!q->bd)
        goto fail;
    size_t backfill[NCLASS];
    for (int c = 0; c < NCLASS; c++) {
        backfill[c] = burstdet_backfill_hops(q->bd, geom[c].baud);
        if (backfill[c] >= HIST_HOPS) {
            /* a track would be cut after its start: HIST_HOPS and the detector disagree */
            log_error("Receiver not created, reason: detector backfill %zu hops over the "
                      "channelizer history %d",
                      backfill[c], HIST_HOPS);
            goto fail;
        }
    }
    q->evcap = burstdet_max_events(q->bd);
    q->ev = malloc(q->evcap * sizeof *q->ev);
    q->wcap = frontend_max_out(q->fe, CHUNK_IN);
    q->wbuf = malloc(q->wcap * sizeof *q->wbuf);
    q->zeros = calloc(CHUNK_IN, sizeof *q->zeros);
    q->nco = nco_crcf_create(LIQUID_NCO);
    if (!q->ev || !q->wbuf || !q->zeros || !q->nco)
        goto nomem;
    demod_sync_t sync[DEMOD_MAX_SYNC_WORDS];
    size_t nsync = uldecode_sync_words(sync, DEMOD_MAX_SYNC_WORDS);
    for (int c = 0; c < NCLASS; c++) {
        const class_geom_t *g = &geom[c];
        extractor_config_t ec = {.fft_len = q->nfft,
                                 .bin_hz = q->bin_hz,
                                 .out_bins = g->out_bins,
                                 .pass_hz = g->pass_hz,
                                 .stop_hz = g->stop_hz};
        q->ex[c] = extractor_create(&ec);
        if (!q->ex[c])
            goto fail;
        size_t per_hop = extractor_hop_out(q->ex[c]);
        /* backfill + the longest track + the tail */
        size_t hops = backfill[c] + (size_t)ceil(g->max_track_s / q->hop_s) + 24;
        q->nslots[c] = maxb[c];
        q->slots[c] = calloc(q->nslots[c], sizeof(slot_t));
        if (!q->slots[c])
            goto nomem;
        for (size_t i = 0; i < q->nslots[c]; i++) {
            q->slots[c][i].cap = hops * per_hop;
            q->slots[c][i].buf = malloc(hops * per_hop * sizeof(float complex));
            if (!q->slots[c][i].buf)
                goto nomem;
        }
        demod_config_t dc = {
            .baud = g->baud, .max_samples = hops * per_hop, .sync = sync, .nsync = nsync};
        if (hops * per_hop > q->maxslot)
            q->maxslot = hops * per_hop;
        q->dm[c] = demod_create(&dc);
        if (!q->dm[c]) {
            log_error("Receiver not created, reason: demodulator refused its configuration, "
                      "baud: %d",
                      g->baud);
            goto fail;
        }
    }
    q->tmp = malloc(q->maxslot * sizeof *q->tmp);
    q->rec = malloc(q->maxslot * sizeof *q->rec);
    q->peak_in = malloc(geom[1].out_bins * sizeof *q->peak_in);
    q->peak_out = malloc(geom[1].out_bins * sizeof *q->peak_out);
    q->peak_psd = malloc(geom[1].out_bins * sizeof *q->peak_psd);
    if (!q->tmp || !q->rec || !q->peak_in || !q->peak_out || !q->peak_psd)
        goto nomem;
    q->peak_fft = fft_create_plan((unsigned)geom[1].out_bins, q->peak_in, q->peak_out,
                                  LIQUID_FFT_FORWARD, 0);
    for (int c = 0; c < NCLASS; c++) {
        sic_xcancel_config_t xcc = {.rate_sps = extractor_rate(q->ex[c]),
                                    .oversample = c == 0 ? XCANCEL_BR600_IN_BR100_OVERSAMPLE : 1,
                                    .pass_hz = geom[c].pass_hz,
                                    .stop_hz = geom[c].stop_hz,
                                    .max_span = q->slots[c][0].cap};
        q->xc[c] = sic_xcancel_create(&xcc);
        if (!q->xc[c])
            goto nomem;
    }
    assembler_config_t ac = {
        .rc = cfg->rc, .keys = cfg->keys, .latency_s = 1.0, .on_message = on_message, .user = q,
        .min_orphan_snr_db = cfg->keys ? ASSEMBLER_KEYED_MIN_ORPHAN_SNR_DB : 0};
    q->as = assembler_create(&ac);
    if (!q->as)
        goto nomem;
    return q;
nomem:
    log_error("Receiver not created, reason: out of memory");
fail:
    rx_destroy(q);
    return NULL;
}

void rx_get_info(const rx_t *q, rx_info_t *info)
{
    memset(info, 0, sizeof *info);
    info->work_rate_sps = q->fw;
    info->decimation = q->dec;
    info->fft_len = q->nfft;
    info->hop_s = q->hop_s;
    info->threshold_db =
        q->cfg.threshold_db > 0 ? q->cfg.threshold_db : BURSTDET_DEFAULT_THRESHOLD_DB;
}

static slot_t *find_slot(rx_t *q, int c, uint32_t id)
{
    for (size_t i = 0; i < q->nslots[c]; i++)
        if (q->slots[c][i].state != SLOT_FREE && q->slots[c][i].id == id)
            return &q->slots[c][i];
    return NULL;
}

static void extract_hop(rx_t *q, int c, slot_t *s, uint64_t hop)
{
    size_t per = extractor_hop_out(q->ex[c]);
    if (s->n + per > s->cap)
        return; /* full: the detector rejects such a track as too long */
    const float complex *spec = channelizer_spectrum(q->ch, hop);
    if (!spec)
        return;
    extractor_process(q->ex[c], spec, s->k0, hop, s->buf + s->n);
    s->n += per;
}

/* A CRC-valid frame already reported from another track of the same burst (the detector
 * can split a burst it sees as two, e.g. around a collision; both snippets then hold the
 * whole frame): same ID, MC, rank and container, start within 20 ms. Remembers f. */
static bool is_duplicate(rx_t *q, const rx_frame_t *f)
{
    for (size_t i = 0; i < RECENT_FRAMES; i++) {
        const rx_frame_t *o = &q->recent[i];
        if (o->baud && o->frame.rank == f->frame.rank && o->frame.msg.ep_id == f->frame.msg.ep_id &&
            o->frame.msg.mc == f->frame.msg.mc &&
            o->frame.container_len == f->frame.container_len &&
            memcmp(o->frame.container, f->frame.container, f->frame.container_len) == 0 &&
            fabs(o->t_start_s - f->t_start_s) < 0.02)
            return true;
    }
    q->recent[q->recent_next] = *f;
    q->recent_next = (q->recent_next + 1) % RECENT_FRAMES;
    return false;
}

/* Outcome of one demodulation attempt on a track's snippet. */
enum { TRY_NOSYNC = 0, TRY_FT_BAD, TRY_CRC_BAD, TRY_OK };

typedef struct {
    int status;
    int nsoft;
    double centre_hz; /* centre of the attempt's snippet, from the detector's carrier */
    demod_result_t res;
    uldecode_result_t ur;
    /* CRC_BAD: the frame's matched-filter symbols from its first preamble symbol, for the
       assembler's joint coherent fallback (uljoint.h); nsym 0 when they do not cover it */
    size_t nsym;
    float complex sym[UL_HEADER_BITS + UL_CODE_MAX_BITS];
    /* FT_BAD, and CRC_BAD with symbols, with a key store: the symbols around the sync for
       the assembler (assembler_push_unread / assembler_push_failed), the sync's first
       preamble symbol at usym[ufirst]; nusym 0 when there are none */
    size_t nusym, ufirst;
    float complex usym[ASSEMBLER_UNREAD_SYMBOLS];
} attempt_t;

/* The last demod_process's matched-filter symbols (demod_symbols) from `before` symbols
 * ahead of its first preamble symbol (the sync's), at most cap of them: the count, 0 when
 * fewer than min_after follow that symbol; *first: where it is in out. */
static size_t sync_symbols(const demod_t *dm, size_t before, size_t min_after, size_t cap,
                           float complex *out, size_t *first)
{
    static _Thread_local float complex all[SOFT_CAP + UL_HEADER_BITS];
    size_t f = 0;
    size_t n = demod_symbols(dm, all, sizeof all / sizeof all[0], &f);
    if (n < f + min_after)
        return 0;
    size_t lo = f > before ? f - before : 0;
    size_t k = n - lo < cap ? n - lo : cap;
    memcpy(out, all + lo, k * sizeof *out);
    *first = f - lo;
    return k;
}

/* Demodulates x (centred on the detector's carrier) re-centred by centre_hz and decodes
 * it; the soft values stay in q->soft. */
static void attempt(rx_t *q, int c, const float complex *x, size_t nx, double centre_hz,
                    const demod_hint_t *hint, attempt_t *a)
{
    const float complex *y = x;
    if (centre_hz != 0) {
        nco_crcf_set_frequency(q->nco, (float)(2 * M_PI * centre_hz / extractor_rate(q->ex[c])));
        nco_crcf_set_phase(q->nco, 0);
        nco_crcf_mix_block_down(q->nco, (float complex *)x, q->tmp, (unsigned)nx);
        y = q->tmp;
    }
    a->centre_hz = centre_hz;
    a->nsym = 0;
    a->nusym = 0;
    q->st.demod_attempts++;
    a->nsoft = demod_process(q->dm[c], y, nx, hint, q->soft, SOFT_CAP, &a->res);
    lap(q, ST_DEMOD);
    if (a->nsoft < UL_FT_BITS) {
        a->status = TRY_NOSYNC;
        return;
    }
    uldecode_frame(q->soft, (size_t)a->nsoft, UL_FT_DEFAULT_MAX_DISTANCE, &a->ur);
    /* keyed frames only: UL-AUTH is what keeps the chase's extra CRC trials from passing
       garbage */
    if (a->ur.status == ULDEC_REJECT_CRC && q->cfg.keys)
        uldecode_chase(&a->ur, q->cfg.keys, q->chase_trials);
    lap(q, ST_DECODE);
    if (a->ur.status == ULDEC_REJECT_FT || a->ur.status == ULDEC_REJECT_LENGTH)
        a->status = TRY_FT_BAD;
    else
        a->status = a->ur.status == ULDEC_OK ? TRY_OK : TRY_CRC_BAD;
    size_t first;
    if (a->status == TRY_CRC_BAD && a->ur.body_valid) { /* the frame, from its first symbol */
        size_t need = ul_joint_symbols(a->ur.frame.container_len);
        a->nsym = sync_symbols(q->dm[c], 0, need, need, a->sym, &first);
    }
    /* only the keyed coherent path uses them; a failed replica also as an unread burst
       (assembler_push_failed) only from a track the detector saw near the noise: from a
       strong one a failed CRC is a collision, not a misread FT */
    if ((a->status == TRY_FT_BAD || (a->status == TRY_CRC_BAD && a->nsym && !hint->strong)) &&
        q->cfg.keys)
        a->nusym = sync_symbols(q->dm[c], ASSEMBLER_UNREAD_SLACK, 1, ASSEMBLER_UNREAD_SYMBOLS,
                                a->usym, &a->ufirst);
}

/* The radio fields of an attempt with a readable FT. x0_w: working sample of the
 * snippet's first sample; f_det: the snippet's centre (Hz from the macro-channel centre). */
static void fill_frame(const rx_t *q, int c, const attempt_t *a, double x0_w, double f_det,
                       rx_frame_t *f)
{
    const class_geom_t *g = &geom[c];
    memset(f, 0, sizeof *f);
    f->frame = a->ur.frame;
    f->baud = g->baud;
    f->freq_hz = q->center_hz + f_det + a->centre_hz + a->res.freq_hz;
    f->drift_hz_s = a->res.drift_hz_s;
    f->rssi_dbfs = a->res.rssi_dbfs;
    f->snr_db = a->res.snr_db;
    double first_in = in_index(q, x0_w + a->res.start_sample * extractor_step(q->ex[c]));
    if (first_in < 0)
        first_in = 0;
    f->sample_idx = (uint64_t)llround(first_in);
    f->t_start_s = first_in / q->rate;
    double rs = a->res.symbol_rate > 0 ? a->res.symbol_rate : g->baud;
    f->t_end_s = f->t_start_s + (double)(UL_PREAMBLE_BITS + a->res.frame_bits) / rs;
}

/* Keeps attempt a's soft values and radio fields in q->sf when it found the sync and did
 * better than the burst's attempts before it (CRC bad over FT bad), for on_undecoded. */
static void keep_soft(rx_t *q, int c, const attempt_t *a, double x0_w, double f_det)
{
    if (!q->cfg.on_undecoded || a->status == TRY_NOSYNC || a->status == TRY_OK ||
        a->status <= q->sf_status)
        return;
    rx_frame_t f;
    fill_frame(q, c, a, x0_w, f_det, &f);
    rx_softframe_t *sf = &q->sf;
    sf->ft_readable = a->status == TRY_CRC_BAD;
    sf->baud = f.baud;
    sf->symbol_rate = a->res.symbol_rate > 0 ? a->res.symbol_rate : f.baud;
    sf->freq_hz = f.freq_hz;
    sf->drift_hz_s = f.drift_hz_s;
    sf->rssi_dbfs = f.rssi_dbfs;
    sf->snr_db = f.snr_db;
    sf->sample_idx = f.sample_idx;
    sf->t_start_s = f.t_start_s;
    /* the frame the matched sync word announces, or what the snippet holds */
    size_t n = (size_t)a->nsoft;
    if (a->res.frame_bits >= UL_FT_BITS && n > a->res.frame_bits)
        n = a->res.frame_bits;
    if (n > RX_SOFT_MAX)
        n = RX_SOFT_MAX;
    memcpy(sf->soft, q->soft, n * sizeof *sf->soft);
    sf->nsoft = n;
    sf->ft_rx = 0;
    for (int b = 0; b < UL_FT_BITS; b++)
        sf->ft_rx = (uint16_t)(sf->ft_rx << 1 | (q->soft[b] > 0.0f));
    sf->nhyp = ul_ft_rank_soft(q->soft, sf->hyp, RX_SOFT_FT_HYPS);
    q->sf_status = a->status;
}

/* Reports a frame (on_frame, assembler); CRC-failed ones with their soft values and the
 * attempt's symbols (a, NULL for a valid frame). Returns false for a duplicate of a frame
 * already reported. */
static bool report(rx_t *q, rx_frame_t *f, const uldecode_result_t *ur, const attempt_t *a)
{
    bool ok = ur->status == ULDEC_OK;
    if (ok && is_duplicate(q, f)) {
        q->st.frames_duplicate++;
        return false;
    }
    if (ok) {
        q->st.frames_ok++;
        q->st.frames_corrected += ur->corrected_bits > 0;
        f->auth = uldecode_auth(&f->frame, q->cfg.keys);
        if (f->auth == RX_AUTH_BAD)
            q->st.frames_auth_bad++;
        else if (f->auth == RX_AUTH_UNKNOWN_DEVICE)
            q->st.frames_unknown_device++;
    } else {
        q->st.frames_crc_bad++;
        f->auth = RX_AUTH_UNCHECKED;
    }
    /* latency: input needed for the current hop (the frame ends at hop*hop + N) vs the
       burst's end; with small input blocks the callback fires that early */
    double now_s =
        ((double)q->seg_base + ((double)q->cur_hop * q->hop + q->nfft) * q->dec) / q->rate;
    if (now_s - f->t_end_s > q->st.latency_max_s)
        q->st.latency_max_s = now_s - f->t_end_s;
    if (q->cfg.on_frame && (ok || q->cfg.report_bad_frames))
        q->cfg.on_frame(f, q->cfg.user);
    if (ok)
        assembler_push_sym(q->as, f, NULL, NULL);
    else if (ur->body_valid && a && a->nsym && a->nusym)
        assembler_push_failed(q->as, f, ur->body_soft, a->sym, a->usym, a->nusym, a->ufirst);
    else if (ur->body_valid)
        assembler_push_sym(q->as, f, ur->body_soft, a && a->nsym ? a->sym : NULL);
    lap(q, ST_DECODE);
    return true;
}

/* Successive interference cancellation (sic.h): re-modulates the decoded frame of attempt
 * a with its estimated carrier, drift, symbol rate and start (dbpskmod.h, the
 * demodulator's pulse), fits its complex gain over the burst and subtracts it from x.
 * What stays is the other bursts of the snippet, a few per cent of this one, and the
 * noise. */
/* Where a BR600 burst's main lobe (+-300 Hz) holds the most power in the snippet x
 * (nx samples, centred on the track's centroid), in Hz from that centre, within the
 * snippet's passband: a Welch periodogram of one detector bin's resolution (25 Hz).
 * Two BR600 bursts 400-900 Hz apart, or one after the other on carriers further apart
 * than a track's tolerance, are one track whose centroid lies between them, beyond the
 * demodulator's carrier search (+-baud/2) from one of them; after the other is decoded and
 * cancelled, this finds it. */
#define PEAK_LOBE_HZ 300.0
static double spectral_peak_hz(rx_t *q, const float complex *x, size_t nx)
{
    const class_geom_t *g = &geom[1];
    size_t m = g->out_bins;
    double bin = extractor_rate(q->ex[1]) / (double)m;
    for (size_t j = 0; j < m; j++)
        q->peak_psd[j] = 0;
    for (size_t i = 0; i + m <= nx; i += m) {
        memcpy(q->peak_in, x + i, m * sizeof *x);
        fft_execute(q->peak_fft);
        for (size_t j = 0; j < m; j++)
            q->peak_psd[j] += crealf(q->peak_out[j] * conjf(q->peak_out[j]));
    }
    long half = lround(PEAK_LOBE_HZ / bin), lim = lround((g->pass_hz - PEAK_LOBE_HZ) / bin);
    double best = -1;
    long best_k = 0;
    for (long k = -lim; k <= lim; k++) {
        double sum = 0;
        for (long d = -half; d <= half; d++)
            sum += q->peak_psd[(size_t)((k + d + (long)m) % (long)m)];
        if (sum > best) {
            best = sum;
            best_k = k;
        }
    }
    lap(q, ST_DEMOD);
    return (double)best_k * bin;
}

static void cancel(rx_t *q, int c, float complex *x, size_t nx, const attempt_t *a)
{
    const class_geom_t *g = &geom[c];
    uint8_t bits[UL_MAX_FRAME_BYTES];
    int nbytes = ul_frame_air_bits(&a->ur.frame, bits, sizeof bits);
    if (nbytes < 0)
        return;
    /* in the demodulator's units: 16 samples per nominal symbol */
    double eps_ppm = (a->res.symbol_rate / g->baud - 1) * 1e6;
    if (eps_ppm > DBPSK_MAX_BAUD_ERROR_PPM)
        eps_ppm = DBPSK_MAX_BAUD_ERROR_PPM;
    if (eps_ppm < -DBPSK_MAX_BAUD_ERROR_PPM)
        eps_ppm = -DBPSK_MAX_BAUD_ERROR_PPM;
    dbpsk_burst_params_t p = {.rate_sps = DEMOD_SPS * g->baud,
                              .baud = g->baud,
                              .baud_error_ppm = eps_ppm,
                              .freq_hz = a->centre_hz + a->res.freq_hz,
                              .drift_hz_s = a->res.drift_hz_s,
                              .amplitude = 1.0};
    double sym = DEMOD_SPS * g->baud / a->res.symbol_rate;
    if (sic_cancel_burst(&p, bits, (size_t)nbytes * 8, a->res.start_sample, sym, x, nx,
                         q->rec) == SIC_OK)
        lap(q, ST_DEMOD);
}

/* Remembers the burst attempt a decoded (x0_w: working sample of the snippet's sample 0,
 * f_det: the snippet's centre) for the snippets of other tracks (cancel_neighbours). */
static void remember_decoded(rx_t *q, int c, const attempt_t *a, double x0_w, double f_det)
{
    uint8_t bits[UL_MAX_FRAME_BYTES];
    int nbytes = ul_frame_air_bits(&a->ur.frame, bits, sizeof bits);
    if (nbytes <= 0 || !(a->res.symbol_rate > 0))
        return;
    done_burst_t *d = &q->done[q->done_next];
    memcpy(d->bits, bits, (size_t)nbytes);
    double step = extractor_step(q->ex[c]);
    double sym_w = q->fw / a->res.symbol_rate; /* working samples per symbol */
    d->used = true;
    d->c = c;
    d->nbits = (size_t)nbytes * 8;
    d->w_start = x0_w + a->res.start_sample * step;
    d->w_end = d->w_start + (double)d->nbits * sym_w;
    d->freq_hz = f_det + a->centre_hz + a->res.freq_hz;
    d->drift_hz_s = a->res.drift_hz_s;
    d->symbol_rate = a->res.symbol_rate;
    q->done_next = (q->done_next + 1) % DONE_BURSTS;
}

/* Working sample of slot s's first sample. */
static double slot_w0(const rx_t *q, int c, const slot_t *s)
{
    return (double)s->first_hop * q->hop + extractor_offset(q->ex[c]);
}

/* Does decoded burst d, of the other class, reach into the working samples [a, b) of
 * slot s (class c): on air during them, its carrier near enough to the slot's centre bin
 * (NEIGHBOUR_REACH_BAUDS) and where the slot's filter passes some of it? *off: its carrier
 * relative to that centre. */
static bool neighbour_reaches(const rx_t *q, int c, const slot_t *s, double a, double b,
                              const done_burst_t *d, double *off)
{
    if (!d->used || d->c == c)
        return false;
    int baud = geom[d->c].baud;
    double reach = fmin(geom[c].stop_hz + NEIGHBOUR_REACH_BAUDS * baud,
                        NEIGHBOUR_REACH_BAUDS * (geom[c].baud + baud));
    *off = d->freq_hz - (double)s->k0 * q->bin_hz;
    return d->w_end > a && d->w_start < b && fabs(*off) < reach;
}

/* Cross-track cancellation (sic.h, sic_xcancel_burst): removes from samples [j0, s->n) of
 * slot s (class c, not yet mixed: centred on bin k0; what finalize demodulates) every
 * burst of the other class decoded from another track that reaches into them
 * (neighbour_reaches). At one Eb/N0 a BR600 burst has 6 times a BR100 burst's power and
 * spreads it over 1.2 kHz: over a BR100 burst it covers the preamble and FT, and a BR100
 * burst inside a BR600 one's band is a narrow interferer there. Bursts of the slot's own
 * class are not cancelled across tracks: the detector parts those more than ~150 Hz
 * apart and finalize cancels within a track; across tracks it gave no more frames (100
 * bursts on air, 2000 bursts: 1752 against 1751 decoded) and failed demodulations of
 * tracks that were pieces of the cancelled burst. Returns true when a cancelled burst is
 * the track's own as the detector saw it (carrier within half the larger symbol rate of
 * f_det, on air over most of [start_w, end_w)): a BR600 burst's line seen as a BR100
 * track, say; what fails here then is no undecoded burst. */
static bool cancel_neighbours(rx_t *q, int c, slot_t *s, size_t j0, double f_det, double start_w,
                              double end_w)
{
    bool own = false;
    double step = extractor_step(q->ex[c]), w0 = slot_w0(q, c, s) + (double)j0 * step;
    double w1 = w0 + (double)(s->n - j0) * step;
    for (size_t i = 0; i < DONE_BURSTS; i++) {
        const done_burst_t *d = &q->done[i];
        double off;
        if (!neighbour_reaches(q, c, s, w0, w1, d, &off))
            continue;
        int baud = geom[d->c].baud;
        double eps_ppm = (d->symbol_rate / baud - 1) * 1e6;
        eps_ppm = fmax(-DBPSK_MAX_BAUD_ERROR_PPM, fmin(DBPSK_MAX_BAUD_ERROR_PPM, eps_ppm));
        unsigned over = c == 0 ? XCANCEL_BR600_IN_BR100_OVERSAMPLE : 1;
        dbpsk_burst_params_t p = {.rate_sps = extractor_rate(q->ex[c]) * over,
                                  .baud = baud,
                                  .baud_error_ppm = eps_ppm,
                                  .freq_hz = off,
                                  .drift_hz_s = d->drift_hz_s,
                                  .amplitude = 1.0};
        if (sic_xcancel_burst(q->xc[c], &p, d->bits, d->nbits, (d->w_start - w0) / step,
                              s->buf + j0, s->n - j0) != SIC_OK)
            continue;
        q->st.neighbours_cancelled++;
        double overlap = fmin(d->w_end, end_w) - fmax(d->w_start, start_w);
        own |= fabs(d->freq_hz - f_det) < 0.5 * fmax(baud, geom[c].baud) &&
               overlap > OWN_BURST_OVERLAP * (end_w - start_w);
    }
    lap(q, ST_DEMOD);
    return own;
}

/* Demodulates, decodes and reports one accepted burst; frees the slot.
 *
 * A track can hold more than one burst: two bursts closer in carrier than ~150 Hz are one
 * track for the detector (their boxes overlap), and at 100 bursts in the band that is
 * the case for ~10 % of them. The first attempt demodulates the snippet as the detector
 * describes it. When the track looks like more than one burst (wider than one, more
 * power than the decoded burst, or no decode at a high SNR) further attempts follow:
 * after a success the decoded burst is cancelled (cancel()) and the rest demodulated
 * again, searching the start over the whole track; after a failure the carrier is sought
 * on the other side of the detector's centroid from the one that failed (a pair's
 * centroid sits between them), with a window that excludes it. Every frame passes the
 * same CRC and duplicate checks. */
/* Steady lines the detector saw before and after the burst (a CW tone next to it) are
 * fitted on the slot's samples outside [burst_lo, burst_hi) and subtracted from the whole
 * slot (tonesub.h): squared, a strong one outweighs the burst's carrier line. */
static void remove_lines(rx_t *q, int c, slot_t *s, double burst_lo, double burst_hi)
{
    const burstdet_event_t *e = &s->close;
    double rate = extractor_rate(q->ex[c]);
    size_t lo = burst_lo > 0 ? (size_t)floor(burst_lo) : 0;
    size_t hi = burst_hi < (double)s->n ? (size_t)ceil(burst_hi) : s->n;
    for (int i = 0; i < e->nlines && i < BURSTDET_MAX_LINES; i++) {
        double f0 = (e->line_bin[i] - (double)s->k0) * q->bin_hz / rate;
        tonesub_fit_t fit;
        if (tonesub_fit(s->buf, s->n, lo, hi, f0, LINE_SEARCH_BINS * q->bin_hz / rate,
                        LINE_MAX_MISMATCH, &fit)) {
            tonesub_apply(s->buf, s->n, &fit);
            q->st.lines_removed++;
        }
    }
}

const char *rx_undecoded_name(rx_undecoded_t r)
{
    switch (r) {
    case RX_UNDECODED_NOSYNC:
        return "nosync";
    case RX_UNDECODED_FT_BAD:
        return "ft_bad";
    case RX_UNDECODED_CRC_BAD:
        return "crc_bad";
    default:
        return "unknown";
    }
}

/* An accepted burst (close event e of class c) gave no CRC-valid frame: tells
 * on_undecoded where the detector saw it, and what the best attempt with a sync found
 * (q->sf, when q->sf_status says there was one). */
static void undecoded(rx_t *q, int c, const burstdet_event_t *e, rx_undecoded_t why)
{
    if (!q->cfg.on_undecoded)
        return;
    double a = in_index(q, (e->start_hop + 1) * q->hop), b = in_index(q, (e->end_hop + 1) * q->hop);
    if (a < 0)
        a = 0;
    if (b < a + 1)
        b = a + 1;
    rx_burst_t r = {.sample_start = (uint64_t)llround(a),
                    .sample_end = (uint64_t)llround(b),
                    .freq_hz = q->center_hz + e->freq_bin * q->bin_hz,
                    .snr_db = e->snr_db,
                    .baud = geom[c].baud,
                    .reason = why,
                    .soft = why != RX_UNDECODED_NOSYNC && q->sf_status != TRY_NOSYNC ? &q->sf
                                                                                    : NULL};
    q->cfg.on_undecoded(&r, q->cfg.user);
    lap(q, ST_DECODE);
}

static void finalize(rx_t *q, int c, slot_t *s)
{
    const class_geom_t *g = &geom[c];
    const burstdet_event_t *e = &s->close;
    q->sf_status = TRY_NOSYNC;
    double step = extractor_step(q->ex[c]);
    double w0 = slot_w0(q, c, s);
    double start_w = (e->start_hop + 1) * q->hop, end_w = (e->end_hop + 1) * q->hop;
    double sym = extractor_rate(q->ex[c]) / g->baud; /* samples per symbol (16) */
    double err_s = e->snr_db >= 7                      ? g->time_err_s
                   : e->snr_db >= WEAK_TIME_MAX_SNR_DB ? 2 * g->time_err_s
                                                       : g->weak_time_err_s;
    double unc = fmax(4 * sym, err_s * extractor_rate(q->ex[c]));
    double margin = unc + 2 * sym;
    double j_start = (start_w - w0) / step, j_end = (end_w - w0) / step;
    /* a weak track's start can lie before the first hop its slot holds (the history the
       slot was backfilled from reaches back HIST_HOPS): search from the first sample held */
    if (j_start < 0)
        j_start = 0;
    /* BR600, and BR100 under 8 dB: to the end of the longest frame from the detector's
       start, whatever end it measured (frame_end_s) */
    double j_last = fmax(j_end, j_start + snippet_reach_s(g, e) * extractor_rate(q->ex[c]));
    long s0 = (long)floor(j_start - margin), s1 = (long)ceil(j_last + margin);
    if (s0 < 0)
        s0 = 0;
    if (s1 > (long)s->n)
        s1 = (long)s->n;
    if (s1 - s0 < (long)(48 * sym) || j_start - s0 < 0 || j_start > s1) {
        if (e->verify_preamble) {
            q->st.bursts_rejected++;
            q->st.bursts_unverified++;
        } else {
            q->st.bursts_detected++;
            q->st.bursts_nosync++;
            undecoded(q, c, e, RX_UNDECODED_NOSYNC);
        }
        goto out;
    }
    remove_lines(q, c, s, j_start - margin, j_last + margin);
    /* centre on the detector's carrier (the whole rest of the slot: later attempts may
       look beyond the detector's end) */
    double f_det = e->freq_bin * q->bin_hz;
    bool decoded_elsewhere = cancel_neighbours(q, c, s, (size_t)s0, f_det, start_w, end_w);
    double df = f_det - s->k0 * q->bin_hz;
    nco_crcf_set_frequency(q->nco, (float)(2 * M_PI * df / extractor_rate(q->ex[c])));
    nco_crcf_set_phase(q->nco, 0);
    float complex *x = s->buf + s0;
    size_t nx = (size_t)(s1 - s0), nall = s->n - (size_t)s0;
    nco_crcf_mix_block_down(q->nco, x, x, (unsigned)nall);
    double x0_w = w0 + (double)s0 * step;
    /* the demodulator's weak-burst carrier search is for bursts near the noise; a track
       the detector saw well above it is weak to the squarer only through a neighbour */
    bool strong = e->snr_db >= WEAK_SEARCH_MAX_SNR_DB;
    demod_hint_t hint = {.start_sample = j_start - s0,
                         .start_uncertainty = unc,
                         .start_sigma = unc / START_WINDOW_SIGMAS,
                         .end_sample = fmin(j_end - s0, (double)nx),
                         .strong = strong};
    /* later attempts: a start anywhere a frame fits in the track, the end of the slot */
    double min_frame = (UL_HEADER_BITS + ul_body_bits(8)) * sym;
    double ws_lo = j_start - s0 - unc, ws_hi = fmax(j_end - s0 - min_frame, j_start - s0) + unc;
    if (ws_lo < 0)
        ws_lo = 0;
    demod_hint_t wide = {.start_sample = 0.5 * (ws_lo + ws_hi),
                         .start_uncertainty = 0.5 * (ws_hi - ws_lo),
                         .end_sample = 0,
                         .strong = strong};
    attempt_t a, first;
    rx_frame_t f, found[MAX_ATTEMPTS];
    typedef struct {
        double centre_hz, window_hz; /* window 0: the whole ±baud */
    } hyp_t;
    int nfound = 0;
    bool any_ok = false; /* an attempt decoded a frame (perhaps one reported already) */
    attempt(q, c, x, nx, 0, &hint, &a);
    keep_soft(q, c, &a, x0_w, f_det);
    first = a;
    double width_hz = e->width_bins * q->bin_hz;
    bool weak_sync = q->cfg.keys && a.status != TRY_NOSYNC &&
                     e->snr_db >= VERIFY_WEAK_MIN_SNR_DB && e->snr_db < VERIFY_WEAK_MAX_SNR_DB &&
                     a.res.snr_db >= VERIFY_WEAK_MIN_DEMOD_SNR_DB &&
                     a.res.snr_db < VERIFY_WEAK_MAX_SNR_DB;
    bool unverified =
        e->verify_preamble && !weak_sync &&
        !(a.status == TRY_OK ||
          (a.status == TRY_CRC_BAD && a.res.preamble_errors <= VERIFY_MAX_PREAMBLE_ERRORS));
    if (unverified && !e->sequence && !(c == 1 && width_hz > PAIR_WIDTH_HZ)) {
        /* shaped like a CW tone or FSK line, and no Sigfox frame starts it */
        q->st.bursts_rejected++;
        q->st.bursts_unverified++;
        goto out;
    }
    /* (a BR600 track too wide for one burst, and a track longer than a frame, are
       searched for two before they are given up: only CRC-valid frames come out of them.
       Two bursts back to back on nearly one carrier are one track whose first attempt
       sits at the first burst's start but, at the centroid, nearer the stronger one's
       carrier: its preamble is missed, although each burst has one) */
    /* does the track look like more than one burst? */
    bool multi = unverified || e->crowded || e->sequence || (c == 0 && width_hz > MULTI_WIDTH_HZ) ||
                 (a.status != TRY_OK && e->snr_db >= MULTI_FAIL_SNR_DB) ||
                 (a.status == TRY_OK && e->snr_db - a.res.snr_db > MULTI_EXCESS_DB);
    /* later attempts, in order: after a success, the residual over the whole track; after
       a failure whose carrier is known, that carrier again with the start sought over the
       whole track (the detector's start is that of the earliest burst), then the other
       side of the centroid with a window that excludes the failed carrier */
    hyp_t queue[4];
    int qh = 0, qt = 0, k = 1;
    bool mirrored = false, was_wide = false;
    /* a BR600 track of two bursts: where the power is, when that is beyond the first
       attempt's search */
    bool pair = c == 1 && (e->sequence || width_hz > PAIR_WIDTH_HZ);
    if (pair && multi && a.status != TRY_OK) {
        double pk = spectral_peak_hz(q, x, nall);
        if (fabs(pk) > g->baud / 4.0)
            queue[qt++] = (hyp_t){pk, 0};
    }
    for (;;) {
        if (a.status == TRY_OK) {
            any_ok = true;
            fill_frame(q, c, &a, x0_w, f_det, &f);
            if (report(q, &f, &a.ur, NULL)) {
                found[nfound++] = f;
                remember_decoded(q, c, &a, x0_w, f_det);
                if (k > 1)
                    q->st.frames_multi++;
            }
            if (!multi) {
                /* a track longer than the frame holds another burst (two on one carrier,
                   one after the other, can be one track) */
                double d_start = a.res.start_sample;
                double d_end = d_start + (UL_PREAMBLE_BITS + (double)a.res.frame_bits) * sym *
                                             g->baud / a.res.symbol_rate;
                multi = d_start - hint.start_sample > EXTENT_SLACK_SYMBOLS * sym ||
                        (j_end - s0) - d_end > EXTENT_SLACK_SYMBOLS * sym ||
                        pair; /* wider than one BR600 burst: another may sit beside it */
            }
            if (!multi)
                break;
            cancel(q, c, x, nall, &a);
            qh = qt = 0; /* the residual changed: earlier failures may decode now */
            mirrored = false;
            queue[qt++] = (hyp_t){0, 0};
            if (pair) {
                double pk = spectral_peak_hz(q, x, nall);
                if (fabs(pk) > g->baud / 4.0)
                    queue[qt++] = (hyp_t){pk, 0};
            }
        } else if (multi && (a.status != TRY_NOSYNC || a.res.freq_hz != 0)) {
            double fa = a.centre_hz + a.res.freq_hz;
            if (!was_wide && qt < 4)
                queue[qt++] = (hyp_t){fa, SAME_WINDOW_HZ};
            double win = fmin(2 * fabs(fa) - MIRROR_GUARD_HZ, MIRROR_MAX_WINDOW_HZ);
            if (!mirrored && win >= MIRROR_MIN_WINDOW_HZ && qt < 4)
                queue[qt++] = (hyp_t){-fa, win};
            mirrored = true;
        }
        if (qh == qt || k >= MAX_ATTEMPTS)
            break;
        demod_hint_t h = wide;
        h.freq_window_hz = queue[qh].window_hz;
        attempt(q, c, x, nall, queue[qh].centre_hz, &h, &a);
        keep_soft(q, c, &a, x0_w, f_det);
        qh++;
        k++;
        was_wide = true;
    }
    /* a first attempt that failed with a readable FT: kept for joint decoding (and
       reported when asked) unless a later attempt decoded that very burst */
    if (unverified) {
        if (nfound > 0) {
            q->st.bursts_detected++;
        } else {
            q->st.bursts_rejected++;
            q->st.bursts_unverified++;
        }
    } else {
        q->st.bursts_detected++;
    }
    if (unverified) {
        /* nothing but CRC-valid frames from a track no preamble verified */
    } else if (first.status == TRY_CRC_BAD) {
        fill_frame(q, c, &first, x0_w, f_det, &f);
        bool same = false;
        for (int i = 0; i < nfound && !same; i++)
            same = fabs(found[i].t_start_s - f.t_start_s) < 0.02 &&
                   found[i].frame.rank == f.frame.rank;
        if (!same)
            report(q, &f, &first.ur, &first);
    } else if (first.status == TRY_FT_BAD && nfound == 0) {
        q->st.frames_ft_bad++;
        if (first.nusym) {
            fill_frame(q, c, &first, x0_w, f_det, &f);
            assembler_push_unread(q->as, &f, first.usym, first.nusym, first.ufirst);
        }
    } else if (first.status == TRY_NOSYNC && nfound == 0) {
        q->st.bursts_nosync++;
    }
    /* a weak burst whose first sync gave no frame: near the noise the sync search can
       settle a few symbols off (the preamble is periodic) or on noise that matched a sync
       word better than the true start's few wrong bits; the runner-up starts are read
       too, and what they yield goes to the assembler beside the first (keyed: every
       joint result must pass UL-AUTH) */
    bool read_alts = q->cfg.keys && !unverified && first.status != TRY_NOSYNC &&
                     first.res.snr_db < ALT_SYNC_MAX_SNR_DB;
    int nalt = read_alts ? first.res.nalt : 0;
    for (int i = 0; i < nalt && i < ALT_SYNC_MAX && !any_ok &&
                    first.res.alt_score[i] < ALT_SYNC_MAX_GAP;
         i++) {
        demod_hint_t h = hint;
        h.start_sample = first.res.alt_start_sample[i];
        h.start_uncertainty = 0;
        h.start_sigma = ALT_SYNC_SIGMA_SYMBOLS * sym;
        attempt(q, c, x, nx, 0, &h, &a);
        keep_soft(q, c, &a, x0_w, f_det);
        q->st.alt_sync_attempts++;
        if (a.status == TRY_OK || a.status == TRY_CRC_BAD) {
            fill_frame(q, c, &a, x0_w, f_det, &f);
            if (a.status == TRY_OK)
                any_ok = true;
            if (report(q, &f, &a.ur, a.status == TRY_CRC_BAD ? &a : NULL) && a.status == TRY_OK)
                remember_decoded(q, c, &a, x0_w, f_det);
        } else if (a.status == TRY_FT_BAD && a.nusym) {
            fill_frame(q, c, &a, x0_w, f_det, &f);
            assembler_push_unread(q->as, &f, a.usym, a.nusym, a.ufirst);
        }
    }
    /* a verified burst that gave no CRC-valid frame (an unverified one is no burst; one
       another track decoded is no undecoded burst) */
    if (!unverified && !any_ok && !decoded_elsewhere) {
        int best = first.status > q->sf_status ? first.status : q->sf_status;
        undecoded(q, c, e,
                  best == TRY_CRC_BAD  ? RX_UNDECODED_CRC_BAD
                  : best == TRY_FT_BAD ? RX_UNDECODED_FT_BAD
                                       : RX_UNDECODED_NOSYNC);
    }
out:
    s->state = SLOT_FREE;
}

static void handle_events(rx_t *q, int nev, uint64_t hop, bool flushing)
{
    for (int k = 0; k < nev; k++) {
        const burstdet_event_t *e = &q->ev[k];
        int c = class_of(e->baud);
        if (e->kind == BURSTDET_OPEN) {
            slot_t *s = NULL;
            for (size_t i = 0; i < q->nslots[c] && !s; i++)
                if (q->slots[c][i].state == SLOT_FREE)
                    s = &q->slots[c][i];
            if (!s) {
                q->st.bursts_dropped++;
                continue;
            }
            s->state = SLOT_EXTRACT;
            s->id = e->id;
            s->k0 = e->bin;
            s->first_hop = e->first_hop;
            if (hop >= HIST_HOPS && s->first_hop <= hop - HIST_HOPS)
                s->first_hop = hop - HIST_HOPS + 1;
            s->n = 0;
            for (uint64_t h = s->first_hop; h < hop; h++)
                extract_hop(q, c, s, h);
            if (!flushing)
                extract_hop(q, c, s, hop);
        }
    }
    lap(q, ST_EXTRACTOR);
    for (int k = 0; k < nev; k++) {
        const burstdet_event_t *e = &q->ev[k];
        if (e->kind != BURSTDET_CLOSE)
            continue;
        int c = class_of(e->baud);
        slot_t *s = find_slot(q, c, e->id);
        if (!s)
            continue;
        if (e->reject != BURSTDET_ACCEPTED) {
            q->st.bursts_rejected++;
            s->state = SLOT_FREE;
            continue;
        }
        if (e->crowded)
            q->st.bursts_crowded++;
        s->close = *e;
        s->state = SLOT_TAIL;
        const class_geom_t *g = &geom[c];
        double end_w = fmax((e->end_hop + 1) * q->hop,
                            (e->start_hop + 1) * q->hop + snippet_reach_s(g, e) * q->fw) +
                       (2 * g->time_err_s + 6.0 / g->baud) * q->fw;
        double need = (end_w - 0.75 * (double)q->nfft) / (double)q->hop;
        s->need_hop = need > 0 ? (uint64_t)ceil(need) : 0;
        if (flushing || s->need_hop <= hop)
            finalize(q, c, s);
    }
}

static void handle_hop(rx_t *q, const channelizer_hop_t *h)
{
    uint64_t hop = h->index;
    q->cur_hop = hop;
    /* slots already running get this hop first; new ones are backfilled in handle_events */
    for (int c = 0; c < NCLASS; c++)
        for (size_t i = 0; i < q->nslots[c]; i++)
            if (q->slots[c][i].state != SLOT_FREE)
                extract_hop(q, c, &q->slots[c][i], hop);
    lap(q, ST_EXTRACTOR);
    int nev = burstdet_process(q->bd, h->power, h->floor, hop, q->ev, q->evcap);
    lap(q, ST_DETECTOR);
    if (nev > 0)
        handle_events(q, nev, hop, false);
    for (int c = 0; c < NCLASS; c++)
        for (size_t i = 0; i < q->nslots[c]; i++) {
            slot_t *s = &q->slots[c][i];
            if (s->state == SLOT_TAIL && s->need_hop <= hop)
                finalize(q, c, s);
        }
    q->last_hop = hop + 1;
}

/* Front end + channelizer over n input samples (in may be the zero buffer). */
static void feed(rx_t *q, const float complex *in, size_t n)
{
    while (n > 0) {
        size_t c = n < CHUNK_IN ? n : CHUNK_IN;
        long m = frontend_process(q->fe, in, c, q->wbuf, q->wcap);
        lap(q, ST_FRONTEND);
        q->in_pos += c;
        size_t pos = 0;
        while (m > 0 && pos < (size_t)m) {
            size_t used;
            channelizer_hop_t h;
            int r = channelizer_process(q->ch, q->wbuf + pos, (size_t)m - pos, &used, &h);
            lap(q, ST_CHANNELIZER);
            pos += used;
            if (r == 1)
                handle_hop(q, &h);
        }
        in += c;
        n -= c;
    }
}

int rx_process(rx_t *q, const float complex *samples, size_t n)
{
    if (!q || (!samples && n))
        return RX_ERR_ARG;
    q->st.samples_in += n;
    q->t_lap = cpu_now();
    feed(q, samples, n);
    assembler_advance(q->as, (double)q->in_pos / q->rate);
    lap(q, ST_DECODE);
    return (int)(n > (size_t)2147483647 ? 2147483647 : n);
}

static void drop_slots(rx_t *q)
{
    for (int c = 0; c < NCLASS; c++)
        for (size_t i = 0; i < q->nslots[c]; i++)
            q->slots[c][i].state = SLOT_FREE;
}

/* Starts a new segment at input index in_pos (filters, hops and tracks restart). */
static void new_segment(rx_t *q)
{
    frontend_reset(q->fe);
    channelizer_reset(q->ch, 1);
    burstdet_reset(q->bd);
    drop_slots(q);
    memset(q->done, 0, sizeof q->done); /* working sample indices restart */
    q->seg_base = q->in_pos;
    q->last_hop = 0;
}

void rx_discontinuity(rx_t *q, uint64_t lost)
{
    if (!q)
        return;
    q->st.samples_lost += lost;
    q->in_pos += lost;
    new_segment(q);
}

int rx_flush(rx_t *q)
{
    if (!q)
        return RX_ERR_ARG;
    uint64_t pos = q->in_pos;
    q->t_lap = cpu_now();
    /* zeros push the last real samples through the filter and into a full frame */
    size_t pad = (size_t)q->nfft * q->dec + (size_t)ceil(2 * q->fe_delay) + q->dec;
    while (pad > 0) {
        size_t c = pad < CHUNK_IN ? pad : CHUNK_IN;
        feed(q, q->zeros, c);
        pad -= c;
    }
    int nev = burstdet_flush(q->bd, q->ev, q->evcap);
    lap(q, ST_DETECTOR);
    if (nev > 0)
        handle_events(q, nev, q->last_hop ? q->last_hop - 1 : 0, true);
    for (int c = 0; c < NCLASS; c++)
        for (size_t i = 0; i < q->nslots[c]; i++)
            if (q->slots[c][i].state == SLOT_TAIL)
                finalize(q, c, &q->slots[c][i]);
    assembler_flush(q->as);
    lap(q, ST_DECODE);
    /* the padding was not part of the stream */
    q->in_pos = pos;
    new_segment(q);
    return 0;
}

void rx_get_assembler_stats(const rx_t *q, assembler_stats_t *stats)
{
    assembler_get_stats(q->as, stats);
}

void rx_get_stats(const rx_t *q, rx_stats_t *stats)
{
    *stats = q->st;
    stats->samples_invalid = frontend_invalid_samples(q->fe);
    stats->cpu = (rx_cpu_t){.frontend_s = q->cpu[ST_FRONTEND],
                            .channelizer_s = q->cpu[ST_CHANNELIZER],
                            .detector_s = q->cpu[ST_DETECTOR],
                            .extractor_s = q->cpu[ST_EXTRACTOR],
                            .demod_s = q->cpu[ST_DEMOD],
                            .decode_s = q->cpu[ST_DECODE]};
}

void rx_destroy(rx_t *q)
{
    if (!q)
        return;
    assembler_destroy(q->as);
    for (int c = 0; c < NCLASS; c++) {
        demod_destroy(q->dm[c]);
        extractor_destroy(q->ex[c]);
        if (q->slots[c])
            for (size_t i = 0; i < q->nslots[c]; i++)
                free(q->slots[c][i].buf);
        free(q->slots[c]);
    }
    if (q->nco)
        nco_crcf_destroy(q->nco);
    burstdet_destroy(q->bd);
    channelizer_destroy(q->ch);
    frontend_destroy(q->fe);
    free(q->ev);
    free(q->tmp);
    free(q->rec);
    for (int c = 0; c < NCLASS; c++)
        sic_xcancel_destroy(q->xc[c]);
    if (q->peak_fft)
        fft_destroy_plan(q->peak_fft);
    free(q->peak_in);
    free(q->peak_out);
    free(q->peak_psd);
    free(q->wbuf);
    free(q->zeros);
    free(q);
}
