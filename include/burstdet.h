/* burstdet: CFAR detector of Sigfox uplink bursts in the channelizer's time x frequency
 * power grid, for both symbol rates at once. Licence: MIT. No I/O.
 *
 * Input per hop: Hann power and noise floor of the analysed bins (channelizer.h). With
 * s = power / floor (mean 1 on noise), each class sums s over a box matched to its burst:
 *
 *   class   box width (bins)     box length          flanks tested (both sides)
 *   BR100   ~125 Hz (5 @25 Hz)   ~0.2 s (10 hops)    150-250 Hz from the centre
 *   BR600   ~525 Hz (21)         ~0.1 s (5 hops)     650-1150 Hz from the centre
 *
 * A bin whose box mean exceeds the threshold (dB over the floor; BR600 boxes, twice the
 * cells, 80 % of its excess) and is a local maximum is a candidate (BR100 also: a 0.6 s
 * box over 60 % of the threshold's excess, whose short box is at the weak keep level now
 * and whose oldest part is not far stronger
 * than now: weak bursts, 0-3 dB); it is dropped when both flanks carry at least a third of its excess
 * (a wider signal: BR600 seen by the BR100 box, FSK interferers), and a BR600 candidate
 * also when the centre 125 Hz hold most of its excess (a BR100 burst or a CW tone).
 * A candidate opens a track unless an open track of its class sits within the same lobe.
 * BR100 tracks then follow their burst by the largest box within +-75 Hz, down to 60 % of
 * the threshold's excess (hysteresis: at 2-4 dB the box wanders around the threshold and
 * a burst must not split), down to 28 % for a weak track (its box never reached twice the
 * threshold: at 0-2 dB bursts were otherwise found in pieces); BR600 tracks continue only on candidates within +-300 Hz
 * (following the largest box would ride along the shoulders of FSK interferers). A track
 * closes after 5 (BR100) / 2 (BR600) hops without, ~one box length after the burst ends.
 * At close, the burst's start and end come from the per-hop excess power at the track's
 * centroid, smoothed over 3 hops: the box was over the threshold from the open to the
 * last match, so the burst covers at least [open, last match - box length + 1]; only the
 * two edges are searched, outwards from that core, as the change points of a step of half
 * the on-level (the Hann frame centred on an edge sees half the burst's energy). The mean
 * spectrum over those hops gives carrier (centroid), width and SNR, and the track is
 * accepted or rejected:
 *
 *   too short / too long for its class (BR100 0.7-4.9 s, BR600 0.16-0.99 s: frames last
 *   1.12-2.08 s and 0.19-0.35 s, and two on nearly one carrier with a pause under 0.5 /
 *   0.2 s are one track, accepted with `sequence` set); too narrow (rms width under 25 Hz for BR100, 75 Hz for
 *   BR600, or a BR600 track with over 35 % of its power in 75 Hz: CW tones, FSK lines);
 *   too wide (flanks full; both 250-1000 Hz / 1.2-3 kHz context bands carrying a tenth of
 *   the core's excess per bin, each band judged by the emptiest of its three sub-bands so
 *   that other bursts nearby do not count as a wide signal; BR600 rms width over 275 Hz;
 *   a BR600 flank 1.5x stronger than the core: the shoulder of a stronger signal); gappy
 *   (3-hop means under half the on-level on over a fifth of the burst: FSK packet trains,
 *   whose GMSK lines and lobes look like bursts of either class).
 *
 * Content. What a frame looks like in this grid depends on its bits: D-BPSK reverses the
 * phase on a 0, so a run of 1 bits (0xFF payloads: "no value") is a pure carrier and a run
 * of 0 bits (zero-padded records; the rank 2/3 code keeps them zero) two lines +-baud/2
 * from it, 0x55 two lines +-baud/4. Such a frame fails the narrow test, and at BR600
 * its lines leave the 525 Hz box (gappy profile, width over 275 Hz). None of these tests
 * may cost a frame: a track that fails only them, lasts as long as a frame of Table 3-1
 * (112-208 bits: BR100 1.12-2.08 s, BR600 0.19-0.35 s, +-0.15 / 0.06 s) and stands alone
 * (quiet wide context, no shoulder, flanks quiet) is accepted with `verify_preamble` set:
 * the receiver keeps it only when a Sigfox preamble + FT starts it (rx.h), which no CW
 * tone or FSK line has. Anything longer than a frame is still rejected (too long), so is
 * a BR100 track in a wider signal. A BR600 track as wide as one burst and as long as a
 * frame that fails only the wide-context, shoulder or flank test is also accepted with
 * `verify_preamble`: with 100 bursts on air, BR600 bursts a kilohertz apart on both sides
 * of it look like that wider signal. A BR600 track that finds no candidate (its box maximum
 * moved to one of the two lines, out of the track's tolerance) stays open while a BR600
 * box within +-300 Hz of its opening bin, or a BR100-wide box (125 Hz, over the BR600 box
 * length) within +-350 Hz, is over the threshold: a line holds half the power or all of
 * it in a few bins, where the wide box dilutes it (at 4 dB such frames were split into a
 * short rejected track and a late one without their preamble: zeros 8 % of them).
 *
 * A BR600 track that reaches the too-long limit is first measured on its first frame's
 * worth (core from the open to the shortest frame, end sought up to the longest): a BR100
 * burst a few hundred hertz away starting during a BR600 burst keeps the BR600 box over
 * the threshold for its 1-2 s, and the BR600 burst was lost with the track. Accepted by
 * the usual tests, that prefix is reported as the track's CLOSE (the rest fades unseen);
 * otherwise the track is rejected as too long as before.
 *
 * Steady lines. A bin whose s stays at least 3 (LINE_MIN_EXCESS + 1) in every hop before
 * the box that opened a track (kept in a ring of the last hops) and in every hop after its
 * last match is a line that was there before and after the burst - a CW tone next to
 * it - and not the burst's: it is subtracted from the track's mean spectrum and profile
 * (a tone 7.5 dB over a BR600 burst 868 Hz away pulled its carrier 806 Hz), does not keep
 * a BR600 track open or continue it, and is reported in the CLOSE event (line_bin) for
 * the receiver to subtract from the snippet (tonesub.h).
 *
 * Crowded tracks. Two BR100 bursts closer than ~150 Hz share one track (their boxes
 * overlap; the second one's candidate falls in the first one's lobe), and their sum fails
 * the flank test (another burst 150-250 Hz away on each side) or the gap test (the pair
 * beats, or one burst ends before the other). A BR100 track that fails only those two
 * tests, with a quiet wide context, its strongest 3 bins under 85 % of the core's excess
 * (2-FSK packet trains show lines: 65-95 %), an rms width of at most 70 Hz and at least
 * 8 dB is accepted with `crowded` set: the demodulator looks for several bursts in it
 * (rx.h). In 600 s of the false-frames scene (3 CW, 2 FSK) 12 tracks get the flag; in
 * test_burstdet's dense scene (12 CW, 6 FSK, 20 s) 20, from which rx decodes nothing.
 *
 * Measured (BURSTDET_SWEEP=1 test_burstdet: 40 bursts per point, 250 kS/s, random drift):
 *   BR100 Eb/N0 0 / 2 / 4 / 6 / 8 dB: found 39 / 40 / 40 / 40 / 40 of 40 (20 / 39 / 40 /
 *   40 / 40 before the weak-track hysteresis, whose worst start/end errors at 0-2 dB, up to
 *   1.4 s, were bursts found in pieces, and 29 at 0 dB before the long box); worst
 *   start/end error at 0 dB 0.61/0.66 s, at 2 dB 0.14/0.77 s, at 4 dB 50/314 ms, at 8 dB
 *   28/25 ms; carrier rms 3.2 / 2.3 / 1.7 Hz at 4 / 6 / 8 dB.
 *   BR600 0 / 2 / 4 / 6 / 8 dB: found 26 / 40 / 40 / 40 / 40; worst start/end error
 *   18/17 ms at 4 dB; carrier rms 22 / 11 / 9 Hz at 4 / 6 / 8 dB. 300 s of noise: 34
 *   tracks, 1 accepted (0 before the weak-track hysteresis).
 *
 * Hop index h refers to the channelizer frame [h*hop, h*hop + 2*hop): its centre, the time
 * the hop "sees", is working sample (h + 1) * hop. Event times are fractional hop indices
 * in that sense: working sample = (t + 1) * hop_len.
 */
#ifndef SIGFOX_BURSTDET_H
#define SIGFOX_BURSTDET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BURSTDET_DEFAULT_THRESHOLD_DB 3.5
/* Steady lines reported per burst (burstdet_event_t.line_bin), strongest first. */
#define BURSTDET_MAX_LINES 4

typedef struct {
    double bin_hz;       /* channelizer bin width (about 25 Hz) */
    double hop_s;        /* hop duration (about 20 ms) */
    size_t fft_len;      /* channelizer N, for power in |x|^2 units */
    long bin_lo;         /* signed bin of the first analysed bin */
    size_t nbins;        /* analysed bins */
    double threshold_db; /* box mean over the floor, 0: BURSTDET_DEFAULT_THRESHOLD_DB (BR600
                            boxes open at BR600_EXCESS of its excess, burstdet.c) */
    size_t max_tracks;   /* open tracks per class, 0: 256 */
    bool disable_br100;
    bool disable_br600;
} burstdet_config_t;

typedef enum {
    BURSTDET_OPEN = 1, /* a track started: begin extracting from first_hop */
    BURSTDET_CLOSE,    /* the track ended: accepted (reject == 0) or not */
} burstdet_kind_t;

typedef enum {
    BURSTDET_ACCEPTED = 0,
    BURSTDET_REJ_SHORT,   /* shorter than its class allows */
    BURSTDET_REJ_LONG,    /* longer than its class allows (sent as soon as it is) */
    BURSTDET_REJ_NARROW,  /* spectrum narrower than the class: CW */
    BURSTDET_REJ_WIDE,    /* spectrum wider than the class */
    BURSTDET_REJ_GAPPY,   /* on and off within the track: packets of an interferer */
    BURSTDET_REJ_FLUSHED, /* closed by burstdet_flush before its end */
} burstdet_reject_t;

typedef struct {
    burstdet_kind_t kind;
    uint32_t id;        /* track id, unique since create */
    int baud;           /* 100 or 600 */
    long bin;           /* OPEN: signed bin of the candidate */
    uint64_t first_hop; /* OPEN: earliest hop the burst may have started in */
    /* CLOSE only: */
    int reject;       /* burstdet_reject_t */
    double freq_bin;  /* carrier, fractional signed bin (Hz = freq_bin * bin_hz) */
    double start_hop; /* burst start and end, fractional hop index (see above) */
    double end_hop;
    double time_err_hops; /* +- uncertainty of start/end */
    double width_bins;    /* rms spectral width */
    double snr_db;        /* signal power over noise in `baud` Hz */
    double power;         /* mean signal power in |x|^2 of the working-rate stream */
    bool crowded;         /* accepted although it fails the flank or gap test the way two
                             or more BR100 bursts closer than ~150 Hz do (one track, quiet
                             wide context, no carrier line): demodulate it as possibly
                             several bursts */
    bool sequence;        /* longer than any frame of its class (up to two frames and a
                             pause): possibly several bursts one after the other on
                             nearly the same carrier */
    int nlines; /* steady lines around the burst: bins whose level stayed over the floor
                   before and after it (a CW tone next to it), taken out of the burst's
                   spectrum above; the receiver subtracts them from the snippet */
    double line_bin[BURSTDET_MAX_LINES]; /* their carriers, fractional signed bins */
    double line_excess[BURSTDET_MAX_LINES]; /* their peak level over the floor (s - 1) */
    bool verify_preamble; /* accepted on condition: the track fails only a test that a
                             frame's content can fail (too narrow: long runs of equal bits
                             leave a carrier; BR600 too wide or gappy: alternating bits
                             make two lines outside the box), lasts as long as a frame of
                             Table 3-1 and stands alone; keep it only when a Sigfox
                             preamble + FT starts it */
} burstdet_event_t;

typedef struct {
    uint64_t candidates; /* hop-level candidates (both classes) */
    uint64_t tracks;     /* tracks opened */
    uint64_t accepted;
    uint64_t crowded; /* of the accepted: flagged crowded */
    uint64_t rejected[BURSTDET_REJ_FLUSHED + 1];
    uint64_t dropped; /* candidates lost because every track slot was busy */
} burstdet_stats_t;

typedef struct burstdet burstdet_t;

/* NULL (after logging which parameter is wrong) on a bad configuration. */
burstdet_t *burstdet_create(const burstdet_config_t *cfg);

/* Most events one call can return (size of the events array). */
size_t burstdet_max_events(const burstdet_t *q);

/* Most hops an OPEN event's first_hop lies before the hop that opened the track, for the
 * class of symbol rate baud (100 or 600; 0 otherwise): the history a caller must keep to
 * cut a track from its start (a weak BR100 track's is the longest, ~2.6 s). */
size_t burstdet_backfill_hops(const burstdet_t *q, int baud);

/* One hop: power and floor hold nbins values (channelizer_hop_t). hop is the hop index
 * (consecutive from 0 after create/reset). Writes up to cap events; returns their number,
 * or -1 when cap < burstdet_max_events(). */
int burstdet_process(burstdet_t *q, const float *power, const float *floor, uint64_t hop,
                     burstdet_event_t *events, size_t cap);

/* End of stream: closes every open track (refined from what was seen: a burst cut short
 * is usually rejected as too short). Returns the number of events, or -1 (cap). */
int burstdet_flush(burstdet_t *q, burstdet_event_t *events, size_t cap);

/* Drops every track without events and clears the box history (after a gap). */
void burstdet_reset(burstdet_t *q);

void burstdet_get_stats(const burstdet_t *q, burstdet_stats_t *stats);
void burstdet_destroy(burstdet_t *q);

#endif
