/* demod: coherent D-BPSK burst demodulator (see include/demod.h for the method).
 * Licence: MIT.
 *
 * Units inside: time in nominal symbols (t = sample / 16), frequency in cycles per symbol
 * (Hz / baud), drift in cycles per symbol² (Hz/s / baud²). The carrier model is
 *   x(t) = A s(t) exp(j(2π(f τ + d τ²/2) + φ)),  τ = t - t_ref,
 * with s(t) = Σ b_k p(t - c_k) real (b_k = ±1, p the pulse of dbpskmod.h), so
 *   z(t) = x(t)² = A² s(t)² exp(j(2π(2f τ + d τ²) + 2φ))
 * carries a tone at 2f chirping at 2d whatever the data.
 */
#include "demod.h"

#include <fftw3.h>
#include <liquid/liquid.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define SPS DEMOD_SPS
#define ZDEC 4             /* z: low-passed and decimated by 4, 4 per symbol */
#define ZRATE (SPS / ZDEC) /* z samples per symbol */
/* Low-pass before the squarer: Kaiser, 65 taps (4 symbols), -60 dB, cut-off 1.76 baud:
 * flat to ~1.3 baud (carrier error + drift + main lobe), stop from ~2.2 baud. */
#define LPF_TAPS 65
#define LPF_CUTOFF 1.76
#define LPF_ATTEN_DB 60.0f
/* Coarse segments of 32 symbols. A drift d smears a segment's tone over 2 d L² of its
 * resolution 1/L; z is therefore dechirped by drift hypotheses HYP_SMEAR / L² apart, so
 * the residual smear stays within half a resolution (~1 dB worst-case loss). */
#define SEG_SYMBOLS 32
#define HYP_SMEAR 1.0
#define NFFT (q->nfft) /* segment FFT (2x zero padding) */
#define SEG_Z (q->seg_z)
#define BINS_PER_CYCLE ((double)q->nfft / ZRATE) /* FFT bins per cycle/symbol of z */
#define MIN_SYMBOLS 48                           /* shortest snippet worth trying */
/* Es/N0 (linear, demodulator's estimate) under which the sync score includes the frame's
 * presence: 4 dB, where rx's weak-track rules start (rx.c VERIFY_WEAK_MAX_SNR_DB) */
#define PRESENCE_MAX_ES_N0 2.5
#define PHASE_HALF_WINDOW 16                     /* phase tracker: ±16 symbols */
#define PTAB_RES 64                              /* pulse table points per sample */
#define MAX_RATE_ERROR 1.2e-3                    /* Table 2-3 ±0.1 % plus margin */
#define L1PE_STEP 4                              /* log(1 + e^-d) table: 4 points per unit of d */
#define L1PE_LEN 65    /* d in [0, 16]; beyond, the term is below 1.2e-7 */
#define BCJR_SETTLE 24 /* symbols for the BCJR to forget its start state */
#define DEFAULT_ALPHA 1.0
#define RHO_MIN 0.0  /* estimated neighbour share: rectangular pulses ... */
#define RHO_MAX 0.35 /* ... to wider than the widest dip (1/6 at 1 symbol) */
#define RHO_PRIOR_VAR                                                                              \
    (0.08 * 0.08) /* spread of ρ over plausible dip shapes */ /* dbpskmod.h                        \
                                                                 DBPSK_DEFAULT_REVERSAL_SYMBOLS */
/* Table 2-2 peak drift (±30 Hz/s BR100, ±100 Hz/s BR600) with a third of margin; rates
 * in between scale with baud (drift is a clock property, the same ppm/s at any baud). */
#define DRIFT_MARGIN 1.34
#define MAX_SEGMENTS 64      /* coarse segments per snippet (2048 symbols) */
#define FINE_MAX_HALF_GRID 8 /* fine drift grid: at most 17 coherent FFTs */
#define MAX_FINE_PLANS 24    /* whole-span FFT sizes 512 .. 65536 (3 per octave) */
#define POLISH_ITERS 4       /* Newton steps on the coherent power at most */
#define POLISH_TOL 0.01      /* ... ending when a step is below this share of its limit */
/* Weak bursts (the low-pass winner's coherent peak under CAND_CONFIDENT_SHARE of the
 * squared signal's energy) are searched again by a bank of boxcar squarers WEAK_FC_STEP
 * (cycles/symbol) apart; the best WEAK_CANDIDATES drift lines (at least CAND_SEP_BINS
 * coarse bins apart within a hypothesis) are refined. */
#define CAND_CONFIDENT_SHARE 0.05
#define WEAK_FC_STEP 0.25
#define WEAK_CANDIDATES 4
#define CAND_SEP_BINS 2
/* Weak bursts (first estimate of Es/N0 under TIMING_DD_MAX_ES_N0, linear: 6 dB) get their
 * timing and rate refitted on the decided symbols after the sync (refine_timing): blocks
 * of TIMING_BLOCK symbols summed coherently, a timing line searched within
 * ±TIMING_HALF_GRID samples at each end of the frame. */
#define TIMING_DD_MAX_ES_N0 4.0
#define TIMING_BLOCK 16
#define TIMING_HALF_GRID 6
/* The rate's prior: Table 2-3's ±0.1 % as a uniform spread's standard deviation. */
#define RATE_PRIOR_SIGMA (1e-3 / 1.7320508075688772)

const char *demod_strerror(int code)
{
    switch (code) {
    case DEMOD_OK:
        return "success";
    case DEMOD_ERR_ARG:
        return "bad argument (NULL pointer, length or hint outside the snippet)";
    case DEMOD_ERR_SHORT:
        return "snippet too short for a frame";
    case DEMOD_ERR_LONG:
        return "snippet longer than the configured maximum";
    case DEMOD_ERR_NOSYNC:
        return "no preamble/frame-type sync found";
    default:
        return "unknown demod error";
    }
}

/* A refined carrier: f (cycles/symbol at t_ref), d (cycles/symbol²), φ (rad, mod π), the
 * whole-span coherent power of its squared signal and that power's share of the squared
 * signal's energy. */
typedef struct {
    double f, d, phi, power, share;
} carrier_alt_t;

struct demod {
    double baud;
    size_t max_samples;
    double max_drift; /* cycles/symbol² */
    double alpha;
    demod_sync_t sync[DEMOD_MAX_SYNC_WORDS];
    size_t nsync;
    size_t last_ks, last_ns; /* first preamble symbol (the sync's, else the hint's) and
                                symbol count of the last demod_process (0: no symbols) */
    /* The carriers the last demod_process refined, best coherent power first (the first
     * is the one it used), at t_ref (symbols of the snippet): demod_carriers(). */
    carrier_alt_t alt[WEAK_CANDIDATES + 1];
    int nalt;
    double alt_t_ref;

    float l1pe[L1PE_LEN]; /* log(1 + e^-d), d = i / L1PE_STEP */
    /* Pulse p(t), t in samples from the symbol centre, tabulated for |t| <= half_len. */
    float *ptab;
    size_t ptab_len;
    float *itaps; /* pulse at integer offsets -ihalf .. ihalf */
    int ihalf;
    double half_len;    /* support half-width, samples: (1 + alpha) * 8 */
    double g0, g1, rho; /* Σp², Σp(i)p(i-16) in samples, rho = g1 / g0 */

    size_t max_z, max_sym, max_seg;
    int seg_z, nfft;     /* coarse segment length (z samples) and its FFT size */
    double dhyp;         /* drift between coarse hypotheses, cycles/symbol² */
    int nhyp;            /* hypotheses -nhyp .. nhyp */
    float complex *zt;   /* z dechirped by one hypothesis */
    float complex *zb;   /* weak bursts: one carrier hypothesis, one-symbol boxcar, squared */
    float complex *z;    /* squared low-passed samples, 4 per symbol */
    float complex *r;    /* derotated snippet */
    float *e;            /* |MF|² at 4 samples/symbol */
    float complex *y;    /* matched-filter symbol values */
    float *u, *qd;       /* in-phase / quadrature after phase tracking */
    float *llr;          /* bit LLR per symbol (bit between k-1 and k) */
    float *lp1, *lp0;    /* log P(bit = 1), log P(bit = 0) */
    double *sync_ll;     /* search_sync: each candidate start's score */
    double *presence;    /* prefix sums of each symbol's burst-presence log-likelihood
                            ratio (frame_presence), valid while use_presence */
    bool use_presence;
    double *fw;          /* BCJR forward metrics, 2 per symbol */
    int8_t *bh;          /* decided symbol signs */
    float *tgrid;        /* refine_timing: per block, |coherent sum| at each offset */
    double complex *y2c; /* prefix sums of y² */
    float *spec;         /* max_seg x NFFT power spectra */
    float *acc;          /* NFFT */
    double *segt;        /* segment centre times */
    float *dscore;       /* best incoherent score per coarse drift */
    size_t max_nd;
    fftwf_complex *fin, *fout;
    fftwf_plan plan;
    size_t nfine; /* largest whole-span FFT (power of two >= 2 max_z) */
    fftwf_complex *ffin, *ffout;
    fftwf_plan fplan[MAX_FINE_PLANS]; /* sizes fsize[], ascending, up to nfine */
    size_t fsize[MAX_FINE_PLANS];
    int nfplans;
    dotprod_crcf mfdot;       /* matched filter at integer centres (timing) */
    float lpf_taps[LPF_TAPS]; /* low-pass before squaring */
    dotprod_crcf lpf;
};

/* Pulse of dbpskmod.h at t symbols from the symbol centre: flat, then a cos² taper over
 * alpha symbols centred on each boundary (neighbouring tapers sum to one). */
static double pulse(double alpha, double t)
{
    t = fabs(t);
    double flat = (1.0 - alpha) / 2.0;
    if (t <= flat)
        return 1.0;
    if (t >= (1.0 + alpha) / 2.0)
        return 0.0;
    double c = cos(M_PI * (t - flat) / (2.0 * alpha));
    return c * c;
}

demod_t *demod_create(const demod_config_t *cfg)
{
    if (!cfg || !(cfg->baud > 0) || !isfinite(cfg->baud) || cfg->max_samples < MIN_SYMBOLS * SPS ||
        !(cfg->reversal_symbols >= 0 && cfg->reversal_symbols <= 1.0) ||
        cfg->nsync > DEMOD_MAX_SYNC_WORDS || (cfg->nsync > 0 && !cfg->sync) ||
        !(cfg->max_drift_hz_s >= 0) || !isfinite(cfg->max_drift_hz_s))
        return NULL;
    demod_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->baud = cfg->baud;
    q->max_samples = cfg->max_samples;
    q->alpha = cfg->reversal_symbols > 0 ? cfg->reversal_symbols : DEFAULT_ALPHA;
    double drift_hz_s = cfg->max_drift_hz_s;
    if (drift_hz_s == 0) {
        /* Table 2-2: ±30 Hz/s at 100 baud, ±100 Hz/s at 600 baud. */
        double peak = cfg->baud >= 350 ? 100.0 : 30.0;
        drift_hz_s = peak * DRIFT_MARGIN;
    }
    q->max_drift = drift_hz_s / (cfg->baud * cfg->baud);
    q->nsync = cfg->nsync;
    if (cfg->nsync)
        memcpy(q->sync, cfg->sync, cfg->nsync * sizeof *cfg->sync);

    q->half_len = (1.0 + q->alpha) * SPS / 2.0;
    q->ptab_len = (size_t)ceil(q->half_len * PTAB_RES) + 2;
    q->max_z = cfg->max_samples / ZDEC + 1;
    q->max_sym = cfg->max_samples / SPS + 2;
    const int seg_symbols = SEG_SYMBOLS;
    q->seg_z = seg_symbols * ZRATE;
    q->nfft = 2 * q->seg_z;
    q->dhyp = HYP_SMEAR / ((double)seg_symbols * seg_symbols);
    q->nhyp = (int)ceil(q->max_drift / q->dhyp - 0.5);
    q->max_seg = q->max_z / (size_t)q->seg_z + 2;
    if (q->max_seg > MAX_SEGMENTS)
        q->max_seg = MAX_SEGMENTS;
    q->ptab = malloc(q->ptab_len * sizeof *q->ptab);
    q->ihalf = (int)floor(q->half_len);
    q->itaps = malloc((size_t)(2 * q->ihalf + 1) * sizeof *q->itaps);
    q->z = malloc(q->max_z * sizeof *q->z);
    q->zt = malloc(q->max_z * sizeof *q->zt);
    q->zb = malloc(q->max_z * sizeof *q->zb);
    q->r = malloc(cfg->max_samples * sizeof *q->r);
    q->e = malloc(q->max_z * sizeof *q->e);
    q->y = malloc(q->max_sym * sizeof *q->y);
    q->u = malloc(q->max_sym * sizeof *q->u);
    q->qd = malloc(q->max_sym * sizeof *q->qd);
    q->llr = malloc(q->max_sym * sizeof *q->llr);
    q->lp1 = malloc(q->max_sym * sizeof *q->lp1);
    q->lp0 = malloc(q->max_sym * sizeof *q->lp0);
    q->sync_ll = malloc(q->max_sym * sizeof *q->sync_ll);
    q->presence = malloc((q->max_sym + 1) * sizeof *q->presence);
    q->fw = malloc(2 * q->max_sym * sizeof *q->fw);
    q->bh = malloc(q->max_sym * sizeof *q->bh);
    q->tgrid =
        malloc((q->max_sym / TIMING_BLOCK + 1) * (2 * TIMING_HALF_GRID + 1) * sizeof *q->tgrid);
    q->y2c = malloc((q->max_sym + 1) * sizeof *q->y2c);
    q->spec = malloc(q->max_seg * NFFT * sizeof *q->spec);
    q->acc = malloc(NFFT * sizeof *q->acc);
    q->segt = malloc(q->max_seg * sizeof *q->segt);
    /* Coarse drift candidates: one bin of shift at the outermost segment, which is at most
     * half the longest span from the reference time. */
    q->max_nd =
        (size_t)ceil(q->max_drift * 2.0 * BINS_PER_CYCLE * ((double)q->max_z / ZRATE / 2.0)) + 1;
    q->dscore = malloc((2 * q->max_nd + 1) * sizeof *q->dscore);
    q->nfine = 512;
    while (q->nfine < 2 * q->max_z)
        q->nfine *= 2;
    q->ffin = fftwf_malloc(q->nfine * sizeof *q->ffin);
    q->ffout = fftwf_malloc(q->nfine * sizeof *q->ffout);
    q->fin = fftwf_malloc(NFFT * sizeof *q->fin);
    q->fout = fftwf_malloc(NFFT * sizeof *q->fout);
    if (!q->ptab || !q->itaps || !q->z || !q->zt || !q->zb || !q->r || !q->e || !q->y || !q->u ||
        !q->qd || !q->llr || !q->lp1 || !q->lp0 || !q->sync_ll || !q->presence || !q->fw ||
        !q->bh || !q->tgrid || !q->y2c || !q->spec || !q->acc || !q->segt || !q->fin || !q->fout ||
        !q->dscore || !q->ffin || !q->ffout)
        goto fail;
    q->plan = fftwf_plan_dft_1d(q->nfft, q->fin, q->fout, FFTW_FORWARD, FFTW_ESTIMATE);
    /* 2^k × {4, 5, 6} / 4 from 512: at most 25 % more than the 2x padding needs */
    for (size_t p2 = 512; p2 <= q->nfine && q->nfplans + 3 <= MAX_FINE_PLANS; p2 *= 2)
        for (size_t f = 4; f <= 6; f++) {
            size_t sz = p2 * f / 4;
            if (sz > q->nfine)
                break;
            q->fsize[q->nfplans] = sz;
            q->fplan[q->nfplans] =
                fftwf_plan_dft_1d((int)sz, q->ffin, q->ffout, FFTW_FORWARD, FFTW_ESTIMATE);
            if (!q->fplan[q->nfplans++])
                goto fail;
        }
    if (!q->plan || q->nfplans == 0)
        goto fail;

    for (size_t i = 0; i < q->ptab_len; i++)
        q->ptab[i] = (float)pulse(q->alpha, (double)i / PTAB_RES / SPS);
    for (int i = -q->ihalf; i <= q->ihalf; i++)
        q->itaps[i + q->ihalf] = (float)pulse(q->alpha, (double)i / SPS);
    q->mfdot = dotprod_crcf_create(q->itaps, (unsigned)(2 * q->ihalf + 1));
    liquid_firdes_kaiser(LPF_TAPS, (float)(LPF_CUTOFF / SPS), LPF_ATTEN_DB, 0.0f, q->lpf_taps);
    q->lpf = dotprod_crcf_create(q->lpf_taps, LPF_TAPS);
    if (!q->mfdot || !q->lpf)
        goto fail;
    /* Energies of the sampled pulse (at integer offsets, the mean over sub-sample phases
     * equals the integral to well below 0.1 %). */
    double g0 = 0, g1 = 0;
    const int fine = 8;
    for (int k = -SPS * 2 * fine; k <= SPS * 2 * fine; k++) {
        double t = (double)k / fine / SPS;
        double p = pulse(q->alpha, t);
        g0 += p * p;
        g1 += p * pulse(q->alpha, t - 1.0);
    }
    for (int i = 0; i < L1PE_LEN; i++)
        q->l1pe[i] = (float)log1p(exp(-(double)i / L1PE_STEP));
    q->g0 = g0 / fine;
    q->g1 = g1 / fine;
    q->rho = q->g1 / q->g0;
    return q;
fail:
    demod_destroy(q);
    return NULL;
}

void demod_destroy(demod_t *q)
{
    if (!q)
        return;
    if (q->plan)
        fftwf_destroy_plan(q->plan);
    for (int i = 0; i < q->nfplans; i++)
        if (q->fplan[i])
            fftwf_destroy_plan(q->fplan[i]);
    if (q->mfdot)
        dotprod_crcf_destroy(q->mfdot);
    if (q->lpf)
        dotprod_crcf_destroy(q->lpf);
    fftwf_free(q->ffin);
    fftwf_free(q->ffout);
    free(q->dscore);
    fftwf_free(q->fin);
    fftwf_free(q->fout);
    free(q->ptab);
    free(q->itaps);
    free(q->z);
    free(q->zt);
    free(q->zb);
    free(q->r);
    free(q->e);
    free(q->y);
    free(q->u);
    free(q->qd);
    free(q->llr);
    free(q->lp1);
    free(q->lp0);
    free(q->sync_ll);
    free(q->presence);
    free(q->fw);
    free(q->bh);
    free(q->tgrid);
    free(q->y2c);
    free(q->spec);
    free(q->acc);
    free(q->segt);
    free(q);
}

/* Pulse value at t samples from the centre (linear interpolation in the table). */
static inline float pulse_at(const demod_t *q, double t)
{
    double a = fabs(t) * PTAB_RES;
    size_t i = (size_t)a;
    if (i + 1 >= q->ptab_len)
        return 0.0f;
    float w = (float)(a - (double)i);
    return q->ptab[i] + w * (q->ptab[i + 1] - q->ptab[i]);
}

/* S[k] = Σ_j τ_j^k z_j exp(-j2π(F τ_j + D τ_j²)), k < nk (<= 5), τ_j = t0 + j / ZRATE: the
 * coherent sum and the moments its derivatives in F and D need. */
static void chirp_moments(const float complex *z, size_t m, double t0, double F, double D, int nk,
                          double complex *S)
{
    const double h = 1.0 / ZRATE;
    double complex a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0;
    for (size_t j0 = 0; j0 < m; j0 += 256) {
        size_t j1 = j0 + 256 < m ? j0 + 256 : m;
        double tau = t0 + (double)j0 * h;
        double complex w = cexp(-I * 2 * M_PI * (F * tau + D * tau * tau));
        double complex dw = cexp(-I * 2 * M_PI * (F * h + D * (2 * tau * h + h * h)));
        const double complex ddw = cexp(-I * 2 * M_PI * D * 2 * h * h);
        if (nk > 3) {
            for (size_t j = j0; j < j1; j++, tau += h) {
                double complex v = z[j] * w;
                double t2 = tau * tau;
                a0 += v;
                a1 += tau * v;
                a2 += t2 * v;
                a3 += t2 * tau * v;
                a4 += t2 * t2 * v;
                w *= dw;
                dw *= ddw;
            }
        } else {
            for (size_t j = j0; j < j1; j++, tau += h) {
                double complex v = z[j] * w;
                a0 += v;
                a1 += tau * v;
                a2 += tau * tau * v;
                w *= dw;
                dw *= ddw;
            }
        }
    }
    S[0] = a0;
    S[1] = a1;
    S[2] = a2;
    S[3] = a3;
    S[4] = a4;
}

/* Vertex offset of the parabola through (-h, a), (0, b), (h, c), clipped to ±h. */
static double parabola_vertex(double a, double b, double c, double h)
{
    double den = a - 2 * b + c;
    if (!(den < 0))
        return c > a ? h : (a > c ? -h : 0);
    double v = 0.5 * h * (a - c) / den;
    return v > h ? h : (v < -h ? -h : v);
}

/* Power spectra of nseg segments of z (SEG_Z samples each, the last one takes the rest up
 * to NFFT) into q->spec, their centre times into q->segt; t0: time of z[0]. With D != 0
 * the segments are dechirped on the way, z_j exp(-j2π D τ_j²) with τ_j = tz0 + j / ZRATE. */
static void segment_spectra(demod_t *q, const float complex *z, size_t m, size_t nseg, double t0,
                            double tz0, double D)
{
    const double h = 1.0 / ZRATE;
    const double complex ddw = cexp(-I * 2 * M_PI * D * 2 * h * h);
    for (size_t k = 0; k < nseg; k++) {
        size_t a = k * (size_t)SEG_Z, b = k == nseg - 1 ? m : a + (size_t)SEG_Z;
        size_t len = b - a;
        if (len > (size_t)NFFT)
            len = (size_t)NFFT;
        if (D != 0) {
            double tau = tz0 + (double)a * h;
            double complex w = cexp(-I * 2 * M_PI * D * tau * tau);
            double complex dw = cexp(-I * 2 * M_PI * D * (2 * tau * h + h * h));
            for (size_t j = 0; j < len; j++) {
                q->fin[j] = z[a + j] * (float complex)w;
                w *= dw;
                dw *= ddw;
            }
        } else {
            memcpy(q->fin, z + a, len * sizeof *z);
        }
        if (len < (size_t)NFFT)
            memset(q->fin + len, 0, ((size_t)NFFT - len) * sizeof *q->fin);
        fftwf_execute(q->plan);
        float *sp = q->spec + k * NFFT;
        for (size_t j = 0; j < (size_t)NFFT; j++)
            sp[j] =
                crealf(q->fout[j]) * crealf(q->fout[j]) + cimagf(q->fout[j]) * cimagf(q->fout[j]);
        q->segt[k] = t0 + ((double)a + (double)(len - 1) / 2.0) / ZRATE;
    }
}

/* acc[i] += src[i], i < n: eight at a time, which -O2 turns into SIMD adds (its cheap
 * vectoriser leaves loops of unknown length alone). */
static inline void add_run(float *restrict acc, const float *restrict src, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        acc[i] += src[i];
        acc[i + 1] += src[i + 1];
        acc[i + 2] += src[i + 2];
        acc[i + 3] += src[i + 3];
        acc[i + 4] += src[i + 4];
        acc[i + 5] += src[i + 5];
        acc[i + 6] += src[i + 6];
        acc[i + 7] += src[i + 7];
    }
    for (; i < n; i++)
        acc[i] += src[i];
}

/* A coarse carrier candidate: incoherent score, the squarer's carrier hypothesis fc
 * (cycles/symbol of x; 0 for the low-pass squarer), the tone's bin in z's spectrum
 * (signed) and its drift. */
typedef struct {
    float score;
    double fc;
    int bin;
    double D;
} carrier_cand_t;

/* Inserts cand into the list c[0..*nc) (best first, at most cap) unless an entry of the
 * same fc within CAND_SEP_BINS holds a higher score: the same tone seen along
 * neighbouring drift lines is one candidate. */
static void cand_insert(carrier_cand_t *c, int *nc, int cap, carrier_cand_t cand)
{
    for (int i = 0; i < *nc; i++)
        if (c[i].fc == cand.fc && abs(c[i].bin - cand.bin) <= CAND_SEP_BINS) {
            if (c[i].score >= cand.score)
                return;
            for (int j = i; j + 1 < *nc; j++) /* drop it, re-insert below */
                c[j] = c[j + 1];
            (*nc)--;
            break;
        }
    int at = *nc;
    while (at > 0 && c[at - 1].score < cand.score)
        at--;
    if (at >= cap)
        return;
    int last = *nc < cap ? *nc : cap - 1;
    for (int j = last; j > at; j--)
        c[j] = c[j - 1];
    c[at] = cand;
    if (*nc < cap)
        (*nc)++;
}

/* Incoherent search: for drifts id * dstep (|id| <= nd) sums the segment spectra along
 * the line F + 2 d (t_k - t_ref) and keeps the strongest (F, d); d is interpolated
 * between grid points. F in cycles/symbol of z at t_ref, searched over bins -lim .. lim
 * (all of them when lim >= NFFT / 2): only those are summed. With cand
 * (capacity ncap), every line's strongest bin also goes to the candidate list, its drift
 * offset by d_base (a tone weaker than a noise peak along most lines still wins the
 * lines near its own drift). */
static double drift_search(demod_t *q, size_t nseg, double t_ref, double dstep, int nd, int lim,
                           double *F_out, double *D_out, carrier_cand_t *cand, int *ncand, int ncap,
                           double d_base)
{
    const int nf = NFFT;
    const int nb = lim >= nf / 2 ? nf : 2 * lim + 1; /* bins summed */
    const int b0 = lim >= nf / 2 ? 0 : -lim;         /* signed bin of acc[0] */
    double best = -1;
    int best_b = 0, best_id = 0;
    for (int id = -nd; id <= nd; id++) {
        double d = id * dstep;
        float *restrict acc = q->acc;
        memset(acc, 0, (size_t)nb * sizeof *acc);
        for (size_t k = 0; k < nseg; k++) {
            /* acc[i] += sp[(b0 + i + s) mod nf], as at most two contiguous runs */
            int s = (int)lrint(2.0 * d * (q->segt[k] - t_ref) * BINS_PER_CYCLE);
            const float *sp = q->spec + k * (size_t)nf;
            int start = (b0 + s) & (nf - 1);
            int run = nf - start < nb ? nf - start : nb;
            add_run(acc, sp + start, run);
            if (run < nb)
                add_run(acc + run, sp, nb - run);
        }
        int bb = 0;
        for (int i = 1; i < nb; i++)
            if (acc[i] > acc[bb])
                bb = i;
        if (acc[bb] > best) {
            best = acc[bb];
            best_b = b0 + bb;
            best_id = id;
        }
        q->dscore[id + nd] = acc[bb];
        if (cand) {
            int b = ((b0 + bb) % nf + nf) % nf;
            cand_insert(cand, ncand, ncap,
                        (carrier_cand_t){acc[bb], 0, b >= nf / 2 ? b - nf : b, d_base + d});
        }
    }
    best_b = ((best_b % nf) + nf) % nf;
    if (best_b >= nf / 2)
        best_b -= nf;
    *F_out = best_b / (double)BINS_PER_CYCLE;
    double D = best_id * dstep;
    if (best_id > -nd && best_id < nd)
        D += parabola_vertex(q->dscore[best_id + nd - 1], q->dscore[best_id + nd],
                             q->dscore[best_id + nd + 1], dstep);
    *D_out = D;
    return best;
}

/* One point of the fine search: z dechirped by Dg over the whole span, FFT of size
 * fsize[pk] (zero-padded), the strongest bin within ±1.5 coarse bins of F, interpolated.
 * *power: its power; *freq: its frequency (cycles/symbol of z). */
static void fine_point(demod_t *q, const float complex *z, size_t m, double tz0, double Dg,
                       double F, int pk, double *power, double *freq)
{
    const long nf = (long)q->fsize[pk];
    const double h = 1.0 / ZRATE;
    double complex w = cexp(-I * 2 * M_PI * Dg * tz0 * tz0);
    double complex dw = cexp(-I * 2 * M_PI * Dg * (2 * tz0 * h + h * h));
    const double complex ddw = cexp(-I * 2 * M_PI * Dg * 2 * h * h);
    for (size_t j = 0; j < m; j++) {
        q->ffin[j] = z[j] * (float complex)w;
        w *= dw;
        dw *= ddw;
    }
    memset(q->ffin + m, 0, ((size_t)nf - m) * sizeof *q->ffin);
    fftwf_execute(q->fplan[pk]);
    const double fbins = (double)nf / ZRATE; /* fine bins per cycle/symbol */
    long c = lrint(F * fbins);
    long wdt = (long)ceil(1.5 * fbins / BINS_PER_CYCLE);
    double pb = -1;
    long kb = c;
    for (long k = c - wdt; k <= c + wdt; k++) {
        size_t kk = (size_t)(((k % nf) + nf) % nf);
        double pw = crealf(q->ffout[kk]) * crealf(q->ffout[kk]) +
                    cimagf(q->ffout[kk]) * cimagf(q->ffout[kk]);
        if (pw > pb) {
            pb = pw;
            kb = k;
        }
    }
    double pm = cabsf(q->ffout[(size_t)((((kb - 1) % nf) + nf) % nf)]);
    double pp = cabsf(q->ffout[(size_t)((((kb + 1) % nf) + nf) % nf)]);
    *power = pb;
    *freq = ((double)kb + parabola_vertex(pm, sqrt(pb), pp, 1.0)) / fbins;
}

/* out_j = z_j exp(-j2π D τ_j²), τ_j = t0 + j / ZRATE (out may be z). */
static void dechirp(const float complex *z, float complex *out, size_t m, double t0, double D)
{
    const double h = 1.0 / ZRATE;
    for (size_t j0 = 0; j0 < m; j0 += 256) {
        size_t j1 = j0 + 256 < m ? j0 + 256 : m;
        double tau = t0 + (double)j0 * h;
        double complex w = cexp(-I * 2 * M_PI * D * tau * tau);
        double complex dw = cexp(-I * 2 * M_PI * D * (2 * tau * h + h * h));
        const double complex ddw = cexp(-I * 2 * M_PI * D * 2 * h * h);
        for (size_t j = j0; j < j1; j++) {
            out[j] = z[j] * (float complex)w;
            w *= dw;
            dw *= ddw;
        }
    }
}

/* Steps 3 and the polish for one coarse candidate (F, D in cycles/symbol of z at t_ref):
 * z dechirped by D into q->zt, the coherent whole-span search around it, Newton steps on
 * the coherent power. Writes the refined F and D (D including the dechirp) and the phase
 * of the coherent sum; returns the coherent power |Σ z e(..)|², comparable between
 * candidates of one snippet. */
static double refine_carrier(demod_t *q, const float complex *zsrc, size_t m, double tz0,
                             double dstep, bool drift, double F, double D, double *F_out,
                             double *D_out, double *phi_out)
{
    const float complex *zd = zsrc;
    if (drift) {
        dechirp(zsrc, q->zt, m, tz0, D);
        zd = q->zt;
    }
    /* From here zd is dechirped by D; the searches below find the residual. */
    const double D_base = D;
    D = 0;

    /* Fine, coherent: for drifts on a grid of half a main lobe around D, dechirp the whole
     * span and take the FFT peak near F (interpolated), then keep the best drift
     * (interpolated between grid points). The grid is visited coarse to fine: every other
     * point, then the two neighbours of the best. */
    double span = (double)m / ZRATE;
    double hDg = 0.5 / (span * span);
    int G = drift ? (int)ceil(dstep / hDg) : 0;
    if (G > FINE_MAX_HALF_GRID)
        G = FINE_MAX_HALF_GRID;
    /* The smallest planned FFT that holds twice the span (2x zero padding). */
    int pk = 0;
    while (q->fsize[pk] < 2 * m && pk + 1 < q->nfplans)
        pk++;
    double gp[2 * FINE_MAX_HALF_GRID + 1], gf[2 * FINE_MAX_HALF_GRID + 1];
    bool done[2 * FINE_MAX_HALF_GRID + 1] = {false};
    int gbest = -1;
    for (int pass = 0; pass < 2; pass++) {
        for (int g = -G; g <= G; g++) {
            bool want =
                pass == 0 ? ((g + G) % 2 == 0 || g == G) : (gbest >= 0 && abs(g + G - gbest) == 1);
            if (!want || done[g + G])
                continue;
            fine_point(q, zd, m, tz0, D + g * hDg, F, pk, &gp[g + G], &gf[g + G]);
            done[g + G] = true;
            if (gbest < 0 || gp[g + G] > gp[gbest])
                gbest = g + G;
        }
    }
    F = gf[gbest];
    D = D + (gbest - G) * hDg;
    if (gbest > 0 && gbest < 2 * G && done[gbest - 1] && done[gbest + 1])
        D += parabola_vertex(gp[gbest - 1], gp[gbest], gp[gbest + 1], hDg);

    /* Polish: Newton steps on the exact coherent power P(F, D) = |S0|², gradient and
       Hessian from the moments S_k = Σ τ^k z e(τ) of one pass each; a step is limited to
       the grid's half-spacing and halved while it does not raise P. */
    const double hF = 0.1 / span, hD = 0.25 / (span * span);
    const double tp = 2 * M_PI, tp2 = tp * tp;
    double complex S[5];
    chirp_moments(zd, m, tz0, F, D, drift ? 5 : 3, S);
    double p0 = creal(S[0] * conj(S[0]));
    for (int it = 0; it < POLISH_ITERS; it++) {
        /* derivatives of S: dF = -j2π S1, dD = -j2π S2, dFF = -(2π)² S2, dFD = -(2π)² S3,
           dDD = -(2π)² S4; of P: 2 Re(conj(S) dS), 2 Re(conj(dS_x) dS_y + conj(S) dS_xy) */
        double complex s0c = conj(S[0]);
        double complex dF = -I * tp * S[1], dD = -I * tp * S[2];
        double gF = 2 * creal(s0c * dF);
        double hFF = 2 * creal(conj(dF) * dF - s0c * tp2 * S[2]);
        double stepF, stepD = 0;
        if (drift) {
            double gD = 2 * creal(s0c * dD);
            double hFD = 2 * creal(conj(dF) * dD - s0c * tp2 * S[3]);
            double hDD = 2 * creal(conj(dD) * dD - s0c * tp2 * S[4]);
            double det = hFF * hDD - hFD * hFD;
            if (hFF < 0 && det > 0) {
                stepF = -(hDD * gF - hFD * gD) / det;
                stepD = -(hFF * gD - hFD * gF) / det;
            } else {
                /* not concave here: a limited step uphill */
                stepF = gF > 0 ? hF : -hF;
                stepD = gD > 0 ? hD : -hD;
            }
        } else {
            stepF = hFF < 0 ? -gF / hFF : (gF > 0 ? hF : -hF);
        }
        stepF = stepF > hF ? hF : (stepF < -hF ? -hF : stepF);
        stepD = stepD > hD ? hD : (stepD < -hD ? -hD : stepD);
        double complex Sn[5];
        bool moved = false;
        for (int half = 0; half < 3 && !moved; half++) {
            chirp_moments(zd, m, tz0, F + stepF, D + stepD, drift ? 5 : 3, Sn);
            double pn = creal(Sn[0] * conj(Sn[0]));
            if (pn >= p0) {
                F += stepF;
                D += stepD;
                p0 = pn;
                memcpy(S, Sn, sizeof S);
                moved = true;
            } else {
                stepF *= 0.5;
                stepD *= 0.5;
            }
        }
        if (!moved || (fabs(stepF) < POLISH_TOL * hF && fabs(stepD) < POLISH_TOL * hD))
            break;
    }
    *F_out = F;
    *D_out = drift ? D_base + D : 0.0;
    *phi_out = carg(S[0]) / 2.0;
    return p0;
}

/* z for one carrier hypothesis fc (cycles/symbol): x shifted by -fc (phase referred to
 * t_ref, so the model's φ is kept), summed over one symbol around each z sample (a
 * boxcar matched filter: noise bandwidth one baud instead of the low-pass's 3.5), squared.
 * At low SNR the squared signal's noise × noise term dominates, and it shrinks with the
 * bandwidth squared; the tone sits at 2 (f - fc). */
static void boxcar_square(const float complex *x, size_t n, size_t lo, size_t m, double t_ref,
                          double fc, float complex *out)
{
    const int half = SPS / 2;
    long first = (long)lo - half, last = (long)(lo + (m - 1) * ZDEC) + half; /* [first, last) */
    double complex acc = 0;
    /* running sum over [c - half, c + half) */
    long c0 = (long)lo;
    double complex w = cexp(-I * 2 * M_PI * fc * ((double)first / SPS - t_ref));
    const double complex dw = cexp(-I * 2 * M_PI * fc / SPS);
    /* rotated samples are needed twice (entering and leaving): keep a ring of SPS */
    double complex ring[SPS];
    long i = first;
    size_t j = 0;
    for (; i < last && j < m; i++) {
        double complex v = (i >= 0 && i < (long)n) ? (double complex)x[i] * w : 0;
        w *= dw;
        if (((i - first) & 255) == 255)
            w /= cabs(w);
        long k = i - first;
        if (k >= SPS)
            acc -= ring[k % SPS];
        ring[k % SPS] = v;
        acc += v;
        /* the window [i - SPS + 1, i] is centred on c when i = c + half - 1 */
        long c = c0 + (long)j * ZDEC;
        if (i == c + half - 1) {
            out[j] = (float complex)(acc * acc);
            j++;
        }
    }
    for (; j < m; j++)
        out[j] = 0;
}

/* The coarse search's grid, for a second search over the same snippet. */
typedef struct {
    size_t m, nseg;         /* z samples, coarse segments */
    double t0, tz0, t_ref;  /* time of z[0], of z[0] from t_ref, reference time */
    double dstep, hyp_step; /* coarse drift step, drift between hypotheses */
    int nd, nhyp;           /* drift steps per hypothesis, hypotheses -nhyp .. nhyp */
    bool drift;
} coarse_grid_t;

/* A weak burst: the winner's coherent peak holds little of z's energy (noise ~0.01,
 * 0.03 at 0.5 dB, 0.16 at 6 dB, 0.35 at 10 dB), and at 0 dB it is a noise peak for a
 * quarter of the bursts: the low-pass lets 3.5 baud of noise into the squarer, whose
 * noise × noise term then dominates. Search again with a bank of one-symbol boxcar
 * squarers, one per carrier hypothesis WEAK_FC_STEP apart over the window (noise
 * bandwidth one baud; a carrier between two hypotheses loses at most sinc(1/8)), each
 * through the same coarse drift search restricted to its own step; the best
 * WEAK_CANDIDATES lines, and the low-pass winner, are refined on their boxcar z, and
 * the highest whole-span coherent power wins (the noise of every hypothesis is the
 * same, so the powers compare). Replaces q->alt[] (the low-pass winner in alt[0]) by
 * the refined carriers, best first. */
static void weak_carrier_search(demod_t *q, const float complex *x, size_t n, size_t lo,
                                double window, const coarse_grid_t *g)
{
    double W = window > 0 ? window : 1.0;
    int nfc = (int)floor(W / WEAK_FC_STEP + 1e-9);
    int limb = (int)ceil((WEAK_FC_STEP + 0.1) * BINS_PER_CYCLE);
    carrier_cand_t wc[WEAK_CANDIDATES + 1];
    int nwc = 0;
    for (int ifc = -nfc; ifc <= nfc; ifc++) {
        double fc = ifc * WEAK_FC_STEP;
        boxcar_square(x, n, lo, g->m, g->t_ref, fc, q->zb);
        carrier_cand_t c2[2];
        int nc2 = 0;
        for (int hyp = -g->nhyp; hyp <= g->nhyp; hyp++) {
            double Dh = hyp * g->hyp_step;
            segment_spectra(q, q->zb, g->m, g->nseg, g->t0, g->tz0, Dh);
            double Fh, Dr;
            drift_search(q, g->nseg, g->t_ref, g->dstep, g->nd, limb, &Fh, &Dr, c2, &nc2, 2, Dh);
        }
        for (int k = 0; k < nc2; k++) {
            c2[k].fc = fc;
            cand_insert(wc, &nwc, WEAK_CANDIDATES, c2[k]);
        }
    }
    /* the low-pass winner as a bank member centred on itself */
    wc[nwc++] = (carrier_cand_t){0, q->alt[0].f, 0, q->alt[0].d};
    q->nalt = 0;
    for (int k = 0; k < nwc; k++) {
        boxcar_square(x, n, lo, g->m, g->t_ref, wc[k].fc, q->zb);
        double bpow = 0;
        for (size_t j = 0; j < g->m; j++)
            bpow += crealf(q->zb[j]) * crealf(q->zb[j]) + cimagf(q->zb[j]) * cimagf(q->zb[j]);
        carrier_alt_t e;
        double Fr;
        e.power = refine_carrier(q, q->zb, g->m, g->tz0, g->dstep, g->drift,
                                 wc[k].bin / (double)BINS_PER_CYCLE, wc[k].D, &Fr, &e.d, &e.phi);
        e.f = wc[k].fc + Fr / 2.0;
        e.share = bpow > 0 ? e.power / ((double)g->m * bpow) : 1.0;
        /* sorted by power, best first */
        int at = q->nalt;
        while (at > 0 && q->alt[at - 1].power < e.power)
            at--;
        for (int j = q->nalt; j > at; j--)
            q->alt[j] = q->alt[j - 1];
        q->alt[at] = e;
        q->nalt++;
    }
}

/* Steps 1-3: carrier frequency f (cycles/symbol at t_ref), drift d and phase φ (mod π)
 * from the squared signal over samples [lo, hi). */
static void estimate_carrier(demod_t *q, const float complex *x, size_t n, size_t lo, size_t hi,
                             double window, bool weak_search, double *t_ref_out, double *f_out,
                             double *d_out, double *phi_out)
{
    /* Low-pass to ±LPF_CUTOFF baud and decimate by 4 before squaring: a strong neighbour
     * two or more baud away (near-far) must not become the squared tone. */
    size_t m = (hi - lo) / ZDEC;
    const int h2 = LPF_TAPS / 2;
    double zpow = 0;
    for (size_t j = 0; j < m; j++) {
        long c = (long)(lo + j * ZDEC);
        float complex v;
        if (c - h2 >= 0 && c + h2 < (long)n) {
            dotprod_crcf_execute(q->lpf, (float complex *)x + c - h2, &v);
        } else {
            v = 0;
            for (int i = -h2; i <= h2; i++)
                if (c + i >= 0 && c + i < (long)n)
                    v += x[c + i] * q->lpf_taps[i + h2];
        }
        q->z[j] = v * v;
        zpow += crealf(q->z[j]) * crealf(q->z[j]) + cimagf(q->z[j]) * cimagf(q->z[j]);
    }
    const double t0 = (double)lo / SPS; /* time of z[0] (centre of its filter) */

    /* Coarse: power spectra of 16- or 32-symbol segments (a short last one is merged
     * away), summed along drift lines. A drift much larger than 1/L² smears each
     * segment's tone, so z is first dechirped by each of a few drift hypotheses and the
     * incoherent search only covers the residual; a second pass around the winner
     * sharpens it. */
    size_t nseg = m / (size_t)SEG_Z;
    if (m - nseg * (size_t)SEG_Z >= (size_t)SEG_Z / 2 || nseg == 0)
        nseg++;
    if (nseg > q->max_seg)
        nseg = q->max_seg;
    /* Segment centres do not depend on the data (segment_spectra computes the same). */
    for (size_t k = 0; k < nseg; k++) {
        size_t a = k * (size_t)SEG_Z, b = k == nseg - 1 ? m : a + (size_t)SEG_Z;
        size_t len = b - a < (size_t)NFFT ? b - a : (size_t)NFFT;
        q->segt[k] = t0 + ((double)a + (double)(len - 1) / 2.0) / ZRATE;
    }
    double t_ref = (q->segt[0] + q->segt[nseg - 1]) / 2.0;
    double tmax = q->segt[nseg - 1] - t_ref;
    double tz0 = t0 - t_ref;
    /* One bin of shift at the outermost segment per drift step. */
    double dstep = tmax > 0 ? 1.0 / (2.0 * BINS_PER_CYCLE * tmax) : 1.0;
    bool drift = nseg >= 2 && q->max_drift > 0;
    int nhyp = drift ? q->nhyp : 0;
    double hyp_step = nhyp > 0 ? q->max_drift / nhyp : 0;
    double reach = nhyp > 0 ? hyp_step / 2 : q->max_drift; /* residual per hypothesis */
    int nd = drift ? (int)ceil(reach / dstep) : 0;
    if (nd > (int)q->max_nd)
        nd = (int)q->max_nd;
    /* carrier window (cycles/symbol of x) in coarse bins of z, which is at 2f */
    int lim = NFFT / 2;
    if (window > 0 && 2 * window * BINS_PER_CYCLE < NFFT / 2)
        lim = (int)ceil(2 * window * BINS_PER_CYCLE);
    double F = 0, D = 0, best = -1;
    for (int hyp = -nhyp; hyp <= nhyp; hyp++) {
        double Dh = hyp * hyp_step;
        segment_spectra(q, q->z, m, nseg, t0, tz0, Dh);
        double Fh, Dr;
        double score = drift_search(q, nseg, t_ref, dstep, nd, lim, &Fh, &Dr, NULL, NULL, 0, 0);
        if (score > best) {
            best = score;
            F = Fh;
            D = Dh + Dr;
        }
    }
    if (drift) {
        segment_spectra(q, q->z, m, nseg, t0, tz0, D);
        double D2 = 0;
        drift_search(q, nseg, t_ref, dstep, nd < 3 ? nd : 3, lim, &F, &D2, NULL, NULL, 0, 0);
        D += D2;
    }
    double Fb, Db, phib;
    double pbest = refine_carrier(q, q->z, m, tz0, dstep, drift, F, D, &Fb, &Db, &phib);
    double share = zpow > 0 ? pbest / ((double)m * zpow) : 1.0;
    q->nalt = 1;
    q->alt[0].f = Fb / 2.0;
    q->alt[0].d = Db;
    q->alt[0].phi = phib;
    q->alt[0].share = share;
    q->alt[0].power = pbest;
    q->alt_t_ref = t_ref;

    if (weak_search && share < CAND_CONFIDENT_SHARE) {
        const coarse_grid_t g = {.m = m,
                                 .nseg = nseg,
                                 .t0 = t0,
                                 .tz0 = tz0,
                                 .t_ref = t_ref,
                                 .dstep = dstep,
                                 .hyp_step = hyp_step,
                                 .nd = nd,
                                 .nhyp = nhyp,
                                 .drift = drift};
        weak_carrier_search(q, x, n, lo, window, &g);
    }
    *t_ref_out = t_ref;
    *f_out = q->alt[0].f;
    *d_out = q->alt[0].d;
    *phi_out = q->alt[0].phi;
}

/* r = x exp(-j(2π(f τ + d τ²/2) + φ)), τ = i / SPS - t_ref. */
static void derotate(demod_t *q, const float complex *x, size_t n, double t_ref, double f, double d,
                     double phi)
{
    const double h = 1.0 / SPS;
    for (size_t i0 = 0; i0 < n; i0 += 512) {
        size_t i1 = i0 + 512 < n ? i0 + 512 : n;
        double tau = (double)i0 * h - t_ref;
        double complex w = cexp(-I * (2 * M_PI * (f * tau + 0.5 * d * tau * tau) + phi));
        double complex dw = cexp(-I * 2 * M_PI * (f * h + 0.5 * d * (2 * tau * h + h * h)));
        const double complex ddw = cexp(-I * 2 * M_PI * d * h * h);
        for (size_t i = i0; i < i1; i++) {
            q->r[i] = x[i] * (float complex)w;
            w *= dw;
            dw *= ddw;
        }
    }
}

/* Matched-filter output of r centred at fractional sample c. */
static float complex mf_at(const demod_t *q, size_t n, double c)
{
    long i0 = (long)ceil(c - q->half_len), i1 = (long)floor(c + q->half_len);
    if (i0 < 0)
        i0 = 0;
    if (i1 > (long)n - 1)
        i1 = (long)n - 1;
    float complex acc = 0;
    for (long i = i0; i <= i1; i++)
        acc += q->r[i] * pulse_at(q, (double)i - c);
    return acc;
}

/* Matched-filter output of r centred at integer sample c (the tabulated taps when they
 * fit in the snippet). */
static float complex mf_int(const demod_t *q, size_t n, long c)
{
    if (c - q->ihalf >= 0 && c + q->ihalf < (long)n) {
        float complex v;
        dotprod_crcf_execute(q->mfdot, q->r + c - q->ihalf, &v);
        return v;
    }
    return mf_at(q, n, (double)c);
}

/* Step 4: symbol timing (centre of some symbol, samples) and rate error from the baud
 * line of |MF|² over [lo, hi) (Oerder & Meyr), maximised over the rate error. */
static void estimate_timing(demod_t *q, size_t n, size_t lo, size_t hi, double *centre,
                            double *eps_out)
{
    size_t m = (hi - lo) / ZDEC;
    for (size_t j = 0; j < m; j++) {
        float complex v = mf_int(q, n, (long)(lo + j * ZDEC));
        q->e[j] = crealf(v) * crealf(v) + cimagf(v) * cimagf(v);
    }
    double p_ref = (double)lo + (double)(m / 2) * ZDEC;
    const int NE = 5;
    double pw[5];
    double complex xs[5];
    for (int k = 0; k < NE; k++) {
        double eps = MAX_RATE_ERROR * (k - 2) / 2.0;
        double step = 2 * M_PI * ZDEC * (1 + eps) / SPS;
        double complex w = cexp(-I * step * ((double)lo - p_ref) / ZDEC);
        double complex dw = cexp(-I * step);
        double complex acc = 0;
        for (size_t j = 0; j < m; j++) {
            acc += q->e[j] * w;
            w *= dw;
        }
        xs[k] = acc;
        pw[k] = creal(acc) * creal(acc) + cimag(acc) * cimag(acc);
    }
    int kb = 0;
    for (int k = 1; k < NE; k++)
        if (pw[k] > pw[kb])
            kb = k;
    double h = MAX_RATE_ERROR / 2.0;
    double eps = MAX_RATE_ERROR * (kb - 2) / 2.0;
    double complex xb = xs[kb];
    if (kb > 0 && kb < NE - 1) {
        eps += parabola_vertex(pw[kb - 1], pw[kb], pw[kb + 1], h);
        double step = 2 * M_PI * ZDEC * (1 + eps) / SPS;
        double complex w = cexp(-I * step * ((double)lo - p_ref) / ZDEC);
        double complex dw = cexp(-I * step);
        xb = 0;
        for (size_t j = 0; j < m; j++) {
            xb += q->e[j] * w;
            w *= dw;
        }
    }
    *centre = p_ref - SPS * carg(xb) / (2 * M_PI * (1 + eps));
    *eps_out = eps;
}

/* log(1 + e^-d) for d >= 0 from the table (interpolation error < 0.002). */
static inline double log1pexp_neg(const float *tab, double d)
{
    double x = d * L1PE_STEP;
    if (x >= L1PE_LEN - 1)
        return 0.0;
    int i = (int)x;
    double w = x - i;
    return tab[i] + w * (tab[i + 1] - tab[i]);
}

/* log(e^a + e^b) */
static inline double lse(const float *tab, double a, double b)
{
    return a > b ? a + log1pexp_neg(tab, a - b) : b + log1pexp_neg(tab, b - a);
}

/* Step 6: 2-state BCJR over symbol signs b_k with the metric
 *   γ_k(b', b) = c1 u_k b - c2 b b'   (c1 = a/σ², c2 = a² ρ / σ²)
 * giving llr[k] = log P(b_k = b_{k-1}) / P(b_k ≠ b_{k-1}) (bit 1 = no reversal). */
static void bcjr(demod_t *q, size_t k0, size_t k1, double a, double rho, double var)
{
    const double c1 = a / var, c2 = a * a * rho / var;
    double *fw = q->fw;
    const float *t = q->l1pe;
    fw[2 * k0] = c1 * q->u[k0];
    fw[2 * k0 + 1] = -c1 * q->u[k0];
    for (size_t k = k0 + 1; k < k1; k++) {
        double gu = c1 * q->u[k];
        double f0 = lse(t, fw[2 * k - 2] + gu - c2, fw[2 * k - 1] + gu + c2); /* b = +1 */
        double f1 = lse(t, fw[2 * k - 2] - gu + c2, fw[2 * k - 1] - gu - c2); /* b = -1 */
        double mx = f0 > f1 ? f0 : f1;
        fw[2 * k] = f0 - mx;
        fw[2 * k + 1] = f1 - mx;
    }
    double b0 = 0, b1 = 0; /* backward metrics β_k(+1), β_k(-1) */
    for (size_t k = k1 - 1; k > k0; k--) {
        double gu = c1 * q->u[k];
        double ap = fw[2 * k - 2], am = fw[2 * k - 1];
        /* same sign (bit 1): (+,+), (-,-); reversal (bit 0): (+,-), (-,+) */
        double same = lse(t, ap + gu - c2 + b0, am - gu - c2 + b1);
        double diff = lse(t, ap - gu + c2 + b1, am + gu + c2 + b0);
        double l = same - diff;
        if (l > 50)
            l = 50;
        if (l < -50)
            l = -50;
        q->llr[k] = (float)l;
        /* β_{k-1}(b') = lse_b(γ_k(b', b) + β_k(b)) */
        double nb0 = lse(t, gu - c2 + b0, -gu + c2 + b1);
        double nb1 = lse(t, gu + c2 + b0, -gu - c2 + b1);
        double mx = nb0 > nb1 ? nb0 : nb1;
        b0 = nb0 - mx;
        b1 = nb1 - mx;
    }
    q->llr[k0] = 0;
}

/* log P(bit = 1) and log P(bit = 0) from the LLRs of symbols [k0, k1). */
static void bit_logprobs(demod_t *q, size_t k0, size_t k1)
{
    for (size_t k = k0; k < k1; k++) {
        double l = q->llr[k];
        /* log(1 / (1 + e^-l)) = -softplus(-l) */
        double sp = l > 0 ? log1pexp_neg(q->l1pe, l) : -l + log1pexp_neg(q->l1pe, -l);
        q->lp1[k] = (float)-sp;
        q->lp0[k] = (float)(-sp - l);
    }
}

/* Amplitude a and quadrature noise variance over symbols [k0, k1), assuming the mean
 * square of (b_k + ρ(b_{k-1} + b_{k+1})) is s2. */
static void estimate_amplitude(const demod_t *q, size_t k0, size_t k1, double s2, double *a,
                               double *var)
{
    double su = 0, sq = 0;
    size_t cnt = 0;
    for (size_t k = k0; k < k1; k++) {
        su += (double)q->u[k] * q->u[k];
        sq += (double)q->qd[k] * q->qd[k];
        cnt++;
    }
    if (cnt == 0) {
        *a = 1;
        *var = 1;
        return;
    }
    su /= (double)cnt;
    sq /= (double)cnt;
    if (!(sq > 0))
        sq = 1e-30;
    /* At least a fifth of the noise level, so a burst buried in noise still gets
     * small but finite LLRs. */
    double a2 = (su - sq) / s2;
    if (a2 < 0.2 * sq)
        a2 = 0.2 * sq;
    *a = sqrt(a2);
    *var = sq;
}

static inline int sync_bit(uint32_t word, int i)
{
    return (int)(word >> (DEMOD_SYNC_BITS - 1 - i)) & 1;
}

/* The samples [lo, hi) used for estimation: from two symbols before the earliest possible
 * start to two symbols after the expected end, at least MIN_SYMBOLS long, a multiple of
 * ZDEC. n >= MIN_SYMBOLS * SPS. */
static void estimation_span(const demod_hint_t *hint, size_t n, size_t *lo_out, size_t *hi_out)
{
    double lo_d = hint->start_sample - hint->start_uncertainty - 2.0 * SPS;
    double hi_d = hint->end_sample > 0 ? hint->end_sample + 2.0 * SPS : (double)n;
    size_t lo = lo_d > 0 ? (size_t)lo_d : 0;
    size_t hi = hi_d < (double)n ? (size_t)hi_d : n;
    if (hi < lo + MIN_SYMBOLS * SPS) {
        /* The detector's end is too early for a frame: use what the snippet has. */
        hi = n;
        if (hi < lo + MIN_SYMBOLS * SPS)
            lo = n - MIN_SYMBOLS * SPS;
    }
    *lo_out = lo;
    *hi_out = lo + (hi - lo) / ZDEC * ZDEC;
}

/* How well the final soft bits at ks.. agree with the preamble of word: Σ llr·sign / Σ|llr|
 * (1: all agree with full confidence), and the number of disagreeing bits. */
static double preamble_quality(const demod_t *q, size_t ks, uint32_t word, int *errors)
{
    double num = 0, den = 0;
    int perr = 0;
    for (int i = 0; i < DEMOD_PREAMBLE_BITS; i++) {
        double l = q->llr[ks + i];
        double sgn = sync_bit(word, i) ? 1.0 : -1.0;
        num += l * sgn;
        den += fabs(l);
        perr += l * sgn <= 0;
    }
    *errors = perr;
    return den > 0 ? num / den : 0;
}

/* Step 5: phase tracking of the ns matched-filter values y, θ_k = arg(Σ_{|j-k|<=W} y_j²)
 * / 2, unwrapped; u (in phase) and qd (quadrature) are y rotated by -θ_k. */
static void track_phase(demod_t *q, size_t ns)
{
    q->y2c[0] = 0;
    for (size_t k = 0; k < ns; k++)
        q->y2c[k + 1] = q->y2c[k] + (double complex)(q->y[k] * q->y[k]);
    double prev = 0;
    for (size_t k = 0; k < ns; k++) {
        size_t a = k > PHASE_HALF_WINDOW ? k - PHASE_HALF_WINDOW : 0;
        size_t b = k + PHASE_HALF_WINDOW + 1 < ns ? k + PHASE_HALF_WINDOW + 1 : ns;
        double psi = carg(q->y2c[b] - q->y2c[a]);
        if (k > 0)
            psi = prev + remainder(psi - prev, 2 * M_PI);
        prev = psi;
        float complex rot = (float complex)cexp(-I * psi / 2.0);
        float complex v = q->y[k] * rot;
        q->u[k] = crealf(v);
        q->qd[k] = cimagf(v);
    }
}

/* Log-likelihood ratio "a frame of this length starts at ks" against "noise there": the
 * sum of the symbols' presence terms from the reference symbol ks-1 to the last body bit,
 * up to the snippet's end (0 when not used). Near the noise the sync word alone scores a
 * start tens of symbols into the body, or a slip of a few symbols in the periodic
 * preamble, about as well as the true start; the energy of the whole frame does not. */
static double frame_presence(const demod_t *q, long ks, size_t body_bits)
{
    if (!q->use_presence)
        return 0;
    size_t k0 = (size_t)ks - 1, k1 = (size_t)ks + DEMOD_SYNC_BITS + body_bits;
    if (k1 > q->last_ns)
        k1 = q->last_ns;
    return q->presence[k1] - q->presence[k0];
}

/* presence[k]: the sum over symbols [0, k) of log p(u | a symbol ±a of random sign) /
 * p(u | noise) = -a²/2σ² + log cosh(a u / σ²), σ² the quadrature noise variance: the
 * real part carries the signal after track_phase, the neighbours' share ρ is left out. */
static void presence_sums(demod_t *q, size_t ns, double a, double var)
{
    double c = a / var, base = -0.5 * a * a / var;
    q->presence[0] = 0;
    for (size_t k = 0; k < ns; k++) {
        double x = fabs(c * q->u[k]);
        /* log cosh x = x - log 2 + log(1 + e^-2x) */
        double lc = x - M_LN2 + log1pexp_neg(q->l1pe, 2 * x);
        q->presence[k + 1] = q->presence[k] + base + lc;
    }
}

/* The log-probability from the first BCJR pass that the preamble and sync word (the best
 * of the configured words; the preamble alone without) start at ks; *w: that word's
 * index (-1: preamble only). */
static double sync_loglik(const demod_t *q, long ks, uint32_t preamble_word, int *w)
{
    double pre = 0;
    for (int i = 0; i < DEMOD_PREAMBLE_BITS; i++)
        pre += sync_bit(preamble_word, i) ? q->lp1[ks + i] : q->lp0[ks + i];
    *w = -1;
    if (q->nsync == 0)
        return pre;
    double here = -INFINITY;
    for (size_t j = 0; j < q->nsync; j++) {
        double s = pre + frame_presence(q, ks, q->sync[j].body_bits);
        for (int i = DEMOD_PREAMBLE_BITS; i < DEMOD_SYNC_BITS; i++)
            s += sync_bit(q->sync[j].word, i) ? q->lp1[ks + i] : q->lp0[ks + i];
        if (s > here) {
            here = s;
            *w = (int)j;
        }
    }
    return here;
}

/* Step 7: the candidate start ks in ks_lo..ks_hi whose preamble and sync word have the
 * highest log-probability from the first BCJR pass, less the start's log-prior prior_w
 * (ks - k_exp)^2; its word index (-1: preamble only), score and the runner-up's score.
 * alt_ks[0..*nalt): the next best starts, each at least DEMOD_ALT_MIN_SYMBOLS from the
 * winner and from one another, best first, with their scores in alt. */
static void search_sync(demod_t *q, long ks_lo, long ks_hi, double k_exp, double prior_w,
                        uint32_t preamble_word, long *best_ks, int *best_w, double *best,
                        double *second, long alt_ks[DEMOD_MAX_ALTS], double alt[DEMOD_MAX_ALTS],
                        int *nalt)
{
    *best = -INFINITY;
    *second = -INFINITY;
    *best_ks = -1;
    *best_w = -1;
    for (long ks = ks_lo; ks <= ks_hi; ks++) {
        int w;
        double here = sync_loglik(q, ks, preamble_word, &w) -
                      prior_w * ((double)ks - k_exp) * ((double)ks - k_exp);
        q->sync_ll[ks] = here;
        if (here > *best) {
            *second = *best;
            *best = here;
            *best_ks = ks;
            *best_w = w;
        } else if (here > *second) {
            *second = here;
        }
    }
    *nalt = 0;
    while (*best_ks >= 0 && *nalt < DEMOD_MAX_ALTS) {
        long pick = -1;
        for (long ks = ks_lo; ks <= ks_hi; ks++) {
            bool near = labs(ks - *best_ks) < DEMOD_ALT_MIN_SYMBOLS;
            for (int i = 0; i < *nalt && !near; i++)
                near = labs(ks - alt_ks[i]) < DEMOD_ALT_MIN_SYMBOLS;
            if (!near && (pick < 0 || q->sync_ll[ks] > q->sync_ll[pick]))
                pick = ks;
        }
        if (pick < 0 || !isfinite(q->sync_ll[pick]))
            break;
        alt_ks[*nalt] = pick;
        alt[*nalt] = q->sync_ll[pick];
        (*nalt)++;
    }
}

/* The neighbours' share ρ in a matched-filter value depends on the transmitter's dip
 * width, which devices do not announce: regress u_k on b_k and b_(k-1) + b_(k+1) over the
 * frame's decided signs bh[ks-1 .. k_end), shrunk towards the assumed pulse's value. */
static double estimate_rho(const demod_t *q, size_t ks, size_t k_end, double var)
{
    double s11 = 0, s12 = 0, s22 = 0, s1y = 0, s2y = 0;
    for (size_t k = ks; k + 1 < k_end; k++) {
        double x1 = q->bh[k], x2 = q->bh[k - 1] + q->bh[k + 1], yk = q->u[k];
        s11 += x1 * x1;
        s12 += x1 * x2;
        s22 += x2 * x2;
        s1y += x1 * yk;
        s2y += x2 * yk;
    }
    double rho = q->rho;
    double det = s11 * s22 - s12 * s12;
    if (det > 1e-9 * s11 * s22) {
        double ar = (s22 * s1y - s12 * s2y) / det, cr = (s11 * s2y - s12 * s1y) / det;
        if (ar != 0) {
            /* the sign of the decided sequence cancels in cr / ar; shrink towards the
             * assumed pulse's value by the estimate's variance (noise on u_k over the
             * regression's leverage), so that weak bursts keep the prior */
            double est = cr / ar;
            double v = var * s11 / det / (ar * ar);
            rho = (q->rho * v + est * RHO_PRIOR_VAR) / (v + RHO_PRIOR_VAR);
        }
        if (!(rho >= RHO_MIN))
            rho = RHO_MIN;
        if (rho > RHO_MAX)
            rho = RHO_MAX;
    }
    return rho;
}

/* Mean square of the noiseless matched-filter value b_k + ρ (b_(k-1) + b_(k+1)) over the
 * frame's decided signs bh[ks-1 .. k_end) (edges repeat their own sign). */
static double noiseless_mean_square(const demod_t *q, size_t ks, size_t k_end, double rho)
{
    double s2 = 0;
    for (size_t k = ks - 1; k < k_end; k++) {
        double prev_b = k > ks - 1 ? q->bh[k - 1] : q->bh[k];
        double next_b = k + 1 < k_end ? q->bh[k + 1] : q->bh[k];
        double sv = q->bh[k] + rho * (prev_b + next_b);
        s2 += sv * sv;
    }
    return s2 / (double)(k_end - ks + 1);
}

/* Sum over the frame's blocks of the timing grid, read along the line that is ds samples
 * off at the frame's first symbol and de at its last (linear between grid points). */
static double timing_line_metric(const demod_t *q, size_t nb, size_t nsym, double ds, double de)
{
    const int w = 2 * TIMING_HALF_GRID + 1;
    double m = 0;
    for (size_t b = 0; b < nb; b++) {
        size_t first = b * TIMING_BLOCK;
        size_t last = first + TIMING_BLOCK <= nsym ? first + TIMING_BLOCK - 1 : nsym - 1;
        double x = 0.5 * (double)(first + last) / (double)(nsym - 1);
        double g = TIMING_HALF_GRID + ds + (de - ds) * x;
        int i = (int)floor(g);
        if (i < 0) /* callers stay within the grid; rounding must not leave it */
            i = 0;
        if (i >= w - 1)
            i = w - 2;
        double f = g - i;
        const float *row = q->tgrid + b * (size_t)w;
        m += (1.0 - f) * row[i] + f * row[i + 1];
    }
    return m;
}

typedef struct {
    size_t nb, nsym;   /* blocks, symbols of the frame */
    double tsym, span; /* samples per symbol before the fit, nsym - 1 */
    double llr_scale;  /* amplitude / noise variance of a tracked symbol */
} timing_fit_t;

/* refine_timing's objective for the line (ds, de): the frame's log-likelihood given its
 * signs (llr_scale × the blocks' coherent magnitudes) plus the log prior of the rate it
 * implies (Table 2-3: within ±0.1 %, RATE_PRIOR_SIGMA); -inf beyond MAX_RATE_ERROR. */
static double timing_objective(const demod_t *q, const timing_fit_t *t, double ds, double de)
{
    double rate_err = SPS / (t->tsym + (de - ds) / t->span) - 1.0;
    if (fabs(rate_err) > MAX_RATE_ERROR)
        return -INFINITY;
    double z = rate_err / RATE_PRIOR_SIGMA;
    return t->llr_scale * timing_line_metric(q, t->nb, t->nsym, ds, de) - 0.5 * z * z;
}

/* Step 7b, weak bursts: timing and rate refitted on the frame's decided symbols. The baud
 * line of step 4 comes only from the amplitude dips at reversals and from the whole
 * snippet: near the noise its rate error is no better than none, and a payload with long
 * runs without reversals (0xFF on some ranks, a pure carrier for most of the frame) leaves
 * it little to see, so such frames ended a sixth of a symbol off at 0 dB. Here the
 * symbols of [ks-1, k_end) are signed by what is known or decided (the sync word, aligned
 * on the tracked phase, then the sign of each tracked symbol: no error propagates),
 * summed coherently in blocks, and the timing line (offset at the first and the last
 * symbol, within ±TIMING_HALF_GRID samples and the rate limit) that maximises their
 * likelihood with the rate's prior wins. Blocks without reversals are flat in timing and
 * do not pull; the prior keeps a rate the frame says little about near the nominal one
 * (at 0 dB the rate error went from 656-722 ppm RMS to 522-529 without the prior, 404-413
 * with it). Updates c0 and tsym; returns whether they moved. q->bh is used as scratch. */
static bool refine_timing(demod_t *q, size_t n, size_t ks, size_t k_end, uint32_t word,
                          int nsyncbits, double a, double var, double *c0, double *tsym)
{
    const int hg = TIMING_HALF_GRID, w = 2 * hg + 1;
    size_t k0 = ks - 1, nsym = k_end - k0;
    if (nsym < 2 * TIMING_BLOCK)
        return false;
    /* the sync's signs, turned to the tracked phase */
    int8_t sign = 1;
    double dot = q->u[k0];
    q->bh[k0] = 1;
    for (int i = 0; i < nsyncbits; i++) {
        size_t k = ks + (size_t)i;
        q->bh[k] = (int8_t)(sync_bit(word, i) ? q->bh[k - 1] : -q->bh[k - 1]);
        dot += q->bh[k] * q->u[k];
    }
    if (dot < 0)
        sign = -1;
    for (size_t k = k0; k < ks + (size_t)nsyncbits; k++)
        q->bh[k] = (int8_t)(q->bh[k] * sign);
    for (size_t k = ks + (size_t)nsyncbits; k < k_end; k++)
        q->bh[k] = q->u[k] >= 0 ? 1 : -1;

    size_t nb = (nsym + TIMING_BLOCK - 1) / TIMING_BLOCK;
    for (size_t b = 0; b < nb; b++) {
        float *row = q->tgrid + b * (size_t)w;
        size_t kb = k0 + b * TIMING_BLOCK,
               ke = kb + TIMING_BLOCK < k_end ? kb + TIMING_BLOCK : k_end;
        for (int j = 0; j < w; j++) {
            float complex acc = 0;
            for (size_t k = kb; k < ke; k++) {
                long c = lround(*c0 + (double)k * *tsym) + j - hg;
                acc += (float)q->bh[k] * mf_int(q, n, c);
            }
            row[j] = cabsf(acc);
        }
    }
    /* integer grid of lines, then a half-sample refinement of each end */
    timing_fit_t fit = {
        .nb = nb, .nsym = nsym, .tsym = *tsym, .span = (double)(nsym - 1), .llr_scale = a / var};
    double best = -INFINITY, bs = 0, be = 0;
    for (int ds = -hg; ds <= hg; ds++)
        for (int de = -hg; de <= hg; de++) {
            double m = timing_objective(q, &fit, ds, de);
            if (m > best) {
                best = m;
                bs = ds;
                be = de;
            }
        }
    if (!isfinite(best) || (bs == 0 && be == 0))
        return false;
    /* (an end at the grid's edge stays there: the grid holds nothing beyond it) */
    if (fabs(bs) < hg) {
        double lo = timing_objective(q, &fit, bs - 1, be);
        double hi = timing_objective(q, &fit, bs + 1, be);
        if (isfinite(lo) && isfinite(hi))
            bs += parabola_vertex(lo, best, hi, 1.0);
    }
    if (fabs(be) < hg) {
        double lo = timing_objective(q, &fit, bs, be - 1);
        double mid = timing_objective(q, &fit, bs, be);
        double hi = timing_objective(q, &fit, bs, be + 1);
        if (isfinite(lo) && isfinite(mid) && isfinite(hi))
            be += parabola_vertex(lo, mid, hi, 1.0);
    }
    double t = *tsym + (be - bs) / fit.span;
    if (fabs(SPS / t - 1.0) > MAX_RATE_ERROR)
        return false;
    *c0 += bs - (be - bs) * (double)k0 / fit.span;
    *tsym = t;
    return true;
}

/* Is the burst weaker than es_n0 (linear) by its first amplitude a and quadrature noise
 * variance var, and not one the caller saw strong? */
static bool weak_burst(const demod_hint_t *hint, double a, double var, double es_n0)
{
    return !hint->strong && a * a < 2.0 * var * es_n0;
}

int demod_process(demod_t *q, const float complex *x, size_t n, const demod_hint_t *hint,
                  float *soft, size_t soft_cap, demod_result_t *res)
{
    if (!q || !x || !hint || !res || (!soft && soft_cap > 0))
        return DEMOD_ERR_ARG;
    memset(res, 0, sizeof *res);
    res->sync_index = -1;
    q->last_ns = 0;
    q->nalt = 0;
    q->use_presence = false;
    if (n > q->max_samples)
        return DEMOD_ERR_LONG;
    if (n < MIN_SYMBOLS * SPS)
        return DEMOD_ERR_SHORT;
    if (!isfinite(hint->start_sample) || !isfinite(hint->start_uncertainty) ||
        !isfinite(hint->end_sample) || hint->start_uncertainty < 0 ||
        !isfinite(hint->start_sigma) || hint->start_sigma < 0 ||
        !isfinite(hint->freq_window_hz) || hint->freq_window_hz < 0 ||
        hint->start_sample < -hint->start_uncertainty || hint->start_sample >= (double)n ||
        hint->end_sample < 0 || hint->end_sample > (double)n)
        return DEMOD_ERR_ARG;

    size_t lo, hi;
    estimation_span(hint, n, &lo, &hi);

    double t_ref, f, d, phi;
    estimate_carrier(q, x, n, lo, hi, hint->freq_window_hz / q->baud, !hint->strong, &t_ref, &f, &d,
                     &phi);
    derotate(q, x, n, t_ref, f, d, phi);

    /* the carrier estimate, also for the caller of a burst that finds no sync */
    res->freq_hz = (f + d * (hint->start_sample / SPS - t_ref)) * q->baud;
    res->drift_hz_s = d * q->baud * q->baud;

    double centre, eps;
    estimate_timing(q, n, lo, hi, &centre, &eps);
    double tsym = SPS / (1.0 + eps); /* samples per actual symbol */

    /* Symbol k is centred at c0 + k tsym; the first one whose half-symbol fits. */
    double c0 = centre - floor((centre - tsym / 2.0) / tsym) * tsym;
    if (c0 < tsym / 2.0)
        c0 += tsym;
    size_t ns = (size_t)floor(((double)n - tsym / 2.0 - c0) / tsym) + 1;
    if (ns > q->max_sym)
        ns = q->max_sym;
    if (ns < DEMOD_SYNC_BITS + 2)
        return DEMOD_ERR_SHORT;
    for (size_t k = 0; k < ns; k++)
        q->y[k] = mf_at(q, n, c0 + (double)k * tsym);

    track_phase(q, ns);

    /* First pass: amplitude/noise over the hint's span, random-data statistics. */
    size_t k_lo = (double)lo > c0 ? (size_t)(((double)lo - c0) / tsym) : 0;
    size_t k_hi = (size_t)fmin((double)ns, ((double)hi - c0) / tsym);
    if (k_hi <= k_lo + 8)
        k_hi = ns;
    /* Step 7: sync. Candidate first-preamble-symbol indices ks around the hint. */
    double k_exp = (hint->start_sample + tsym / 2.0 - c0) / tsym;
    double k_unc = hint->start_uncertainty / tsym + 1.5;
    long ks_lo = (long)floor(k_exp - k_unc), ks_hi = (long)ceil(k_exp + k_unc);
    if (ks_lo < 1)
        ks_lo = 1;
    if (ks_hi > (long)ns - DEMOD_SYNC_BITS)
        ks_hi = (long)ns - DEMOD_SYNC_BITS;
    if (ks_hi < ks_lo)
        return DEMOD_ERR_NOSYNC;
    q->last_ks = (size_t)((ks_lo + ks_hi) / 2); /* demod_symbols(): the hint until a sync */
    q->last_ns = ns;
    /* First BCJR pass only over the sync window (plus settling symbols each side),
     * amplitude/noise over the hint's span with random-data statistics. */
    size_t w0 = ks_lo > BCJR_SETTLE + 1 ? (size_t)ks_lo - 1 - BCJR_SETTLE : 0;
    size_t w1 = (size_t)ks_hi + DEMOD_SYNC_BITS + BCJR_SETTLE;
    if (w1 > ns)
        w1 = ns;
    double a, var;
    estimate_amplitude(q, k_lo, k_hi, 1.0 + 2.0 * q->rho * q->rho, &a, &var);
    /* only near the noise: above it the sync word decides alone, and the symbols' model
       here (no neighbours' share, no transmitter dip) would outweigh it */
    q->use_presence = weak_burst(hint, a, var, PRESENCE_MAX_ES_N0);
    if (q->use_presence)
        presence_sums(q, ns, a, var);
    double best, second, alt[DEMOD_MAX_ALTS];
    long best_ks, alt_ks[DEMOD_MAX_ALTS];
    int best_w, nalt;
    const uint32_t preamble_word = 0x55555u << (DEMOD_SYNC_BITS - DEMOD_PREAMBLE_BITS);
    /* log of the start's prior (hint->start_sigma), per squared symbol from k_exp: over a
       wide window at low SNR a position in the body, where random bits match the sync
       word about as well as the true sync's few wrong bits, otherwise wins as often as
       any other */
    double prior_w = hint->start_sigma > 0
                         ? 0.5 * (tsym / hint->start_sigma) * (tsym / hint->start_sigma)
                         : 0.0;
    /* weak bursts: a second sync search after refine_timing (step 7b), whose better
       soft bits slip less often */
    bool refit = weak_burst(hint, a, var, TIMING_DD_MAX_ES_N0);
    uint32_t word;
    int nsyncbits, errors;
    size_t ks, body, k_end, b0;
    for (;;) {
        bcjr(q, w0, w1, a, q->rho, var);
        bit_logprobs(q, w0, w1);
        search_sync(q, ks_lo, ks_hi, k_exp, prior_w, preamble_word, &best_ks, &best_w, &best,
                    &second, alt_ks, alt, &nalt);
        word = best_w >= 0 ? q->sync[best_w].word : preamble_word;
        nsyncbits = best_w >= 0 ? DEMOD_SYNC_BITS : DEMOD_PREAMBLE_BITS;
        errors = 0;
        for (int i = 0; i < nsyncbits; i++)
            errors += (q->llr[best_ks + i] > 0) != sync_bit(word, i);
        /* A random sequence disagrees on half the bits; more than 3/8 is not a sync. */
        if (errors * 8 > nsyncbits * 3)
            return DEMOD_ERR_NOSYNC;

        /* Frame span: reference symbol ks-1 to the last body bit (or the snippet end). */
        ks = (size_t)best_ks;
        body = best_w >= 0 ? q->sync[best_w].body_bits : ns;
        k_end = ks + DEMOD_SYNC_BITS + body;
        if (k_end > ns)
            k_end = ns;
        b0 = ks > BCJR_SETTLE + 1 ? ks - 1 - BCJR_SETTLE : 0;
        if (!refit || !refine_timing(q, n, ks, k_end, word, nsyncbits, a, var, &c0, &tsym))
            break;
        refit = false;
        eps = SPS / tsym - 1.0;
        for (size_t k = 0; k < ns; k++)
            q->y[k] = mf_at(q, n, c0 + (double)k * tsym);
        track_phase(q, ns);
        if (q->use_presence)
            presence_sums(q, ns, a, var);
    }
    /* Soft bits over the whole frame with the first estimates, then decided signs over the
     * span (the sync bits are known), the fraction of reversals, the neighbours' share and
     * the mean square of the noiseless matched-filter value. */
    bcjr(q, b0, ns, a, q->rho, var);
    q->bh[ks - 1] = 1;
    size_t reversals = 0;
    for (size_t k = ks; k < k_end; k++) {
        int bit = k - ks < (size_t)nsyncbits ? sync_bit(word, (int)(k - ks)) : q->llr[k] > 0;
        q->bh[k] = (int8_t)(bit ? q->bh[k - 1] : -q->bh[k - 1]);
        reversals += !bit;
    }
    double rho = estimate_rho(q, ks, k_end, var);
    double s2 = noiseless_mean_square(q, ks, k_end, rho);
    estimate_amplitude(q, ks - 1, k_end, s2, &a, &var);
    bcjr(q, b0, ns, a, rho, var);

    /* Outputs. */
    size_t first = ks + DEMOD_PREAMBLE_BITS;
    size_t nout = ns > first ? ns - first : 0;
    if (nout > soft_cap)
        nout = soft_cap;
    for (size_t i = 0; i < nout; i++)
        soft[i] = q->llr[first + i];

    double start = c0 + (double)ks * tsym - tsym / 2.0;
    double t_start = start / SPS;
    res->start_sample = start;
    res->freq_hz = (f + d * (t_start - t_ref)) * q->baud;
    res->drift_hz_s = d * q->baud * q->baud;
    res->symbol_rate = q->baud * (1.0 + eps);
    double amp = a / q->g0; /* carrier amplitude */
    size_t nbits = k_end - ks;
    double power = amp * amp * (1.0 - q->alpha / 2.0 * (double)reversals / (double)nbits);
    double noise_per_sample = 2.0 * var / q->g0; /* complex, if white over the snippet */
    res->rssi_dbfs = 10.0 * log10(power > 1e-30 ? power : 1e-30);
    res->snr_db = 10.0 * log10(power * SPS / noise_per_sample);
    res->preamble_quality = preamble_quality(q, ks, word, &res->preamble_errors);
    res->sync_index = best_w;
    res->sync_errors = errors;
    res->sync_score = isfinite(second) ? best - second : best;
    res->nalt = nalt;
    for (int i = 0; i < nalt; i++) {
        res->alt_start_sample[i] = c0 + (double)alt_ks[i] * tsym - tsym / 2.0;
        res->alt_score[i] = best - alt[i];
    }
    res->frame_bits = best_w >= 0 ? (size_t)(DEMOD_SYNC_BITS - DEMOD_PREAMBLE_BITS) + body : nout;
    q->last_ks = ks;
    q->last_ns = ns;
    return (int)nout;
}

size_t demod_carriers(const demod_t *q, double at_sample, demod_carrier_t *out, size_t cap)
{
    if (!q || !out)
        return 0;
    size_t k = 0;
    for (int i = 0; i < q->nalt && k < cap; i++, k++) {
        out[k].freq_hz = (q->alt[i].f + q->alt[i].d * (at_sample / SPS - q->alt_t_ref)) * q->baud;
        out[k].drift_hz_s = q->alt[i].d * q->baud * q->baud;
        out[k].share = q->alt[i].share;
    }
    return k;
}

size_t demod_symbols(const demod_t *q, float complex *out, size_t cap, size_t *first)
{
    if (!q || !out || !first || q->last_ns == 0)
        return 0;
    size_t n = q->last_ns < cap ? q->last_ns : cap;
    memcpy(out, q->y, n * sizeof *out);
    *first = q->last_ks;
    return n;
}
