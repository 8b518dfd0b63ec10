/* frontend: NCO shift + decimation to the working rate; D > 1 by FFTW overlap-save.
 * Licence: MIT. */
#include "frontend.h"

#include <fftw3.h>
#include <liquid/liquid.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define FRONTEND_CHUNK 4096   /* D = 1: input samples mixed per inner pass */
#define FRONTEND_MARGIN 1.2   /* working rate >= MARGIN * 2 * passband */
#define FRONTEND_MAX_ABS 1e6f /* full scale is 1: larger components are corrupt data */
#define FRONTEND_MIN_FFT 4096 /* D > 1: forward FFT at least this long ... */
#define FRONTEND_OVERLAP_SHARE 8 /* ... and this many times the overlap (<= 12.5 % redone) */
#define FRONTEND_MAX_M 65536  /* longest inverse FFT */

struct frontend {
    double rate_sps;
    unsigned decimation;
    double delay_in;
    uint64_t invalid; /* non-finite or absurd input samples replaced by 0 */

    /* D = 1 */
    nco_crcf nco; /* NULL when shift_hz == 0 */

    /* D > 1: overlap-save over blocks of n_fft input samples, the first `overlap` of
     * which repeat the end of the previous block; each block yields hop/D outputs. */
    size_t n_fft, m_fft, overlap, hop;
    size_t fill;            /* samples in in_buf, overlap .. n_fft */
    float complex *in_buf;  /* n_fft */
    float complex *spec;    /* n_fft: forward FFT of in_buf */
    float complex *fold;    /* m_fft: kept bins weighted and folded */
    float complex *out_buf; /* m_fft: inverse FFT of fold */
    fftwf_plan fwd, inv;
    size_t n_kept;          /* bins of spec that enter the fold */
    size_t n_assigned;      /* the first n_assigned of them fold onto themselves */
    size_t *kept_src;       /* their index in spec */
    size_t *kept_dst;       /* their index in fold */
    float complex *kept_w;  /* filter response there, 1/n_fft included */
    double energy_limit;    /* kept-bin energy above which a block is checked sample by sample */
    /* The bins are rotated by k0 = round(shift n_fft / rate); the rest of the shift
     * (delta) is in the weights and in a phase per output sample. */
    bool rotate;
    uint64_t k0_step;       /* k0 * hop mod n_fft */
    uint64_t k0_start;      /* -k0 * overlap mod n_fft */
    uint64_t block_phase;   /* k0 * (b * hop - overlap) mod n_fft for the current block b */
    double delta_frac;      /* delta * b * hop / rate, mod 1 */
    double delta_step;      /* delta * hop / rate, mod 1 */
    double complex out_rot; /* e^{-j 2 pi delta D / rate}: one output sample further */
};

/* 2^a 3^b 5^c 7^d: sizes FFTW transforms fastest. */
static bool is_smooth(unsigned long n)
{
    if (n == 0)
        return false;
    static const unsigned p[] = {2, 3, 5, 7};
    for (int i = 0; i < 4; i++)
        while (n % p[i] == 0)
            n /= p[i];
    return n == 1;
}

/* Working rate rate/D a whole multiple of grid (to 1e-9 relative)? Sets *mult. */
static bool on_grid(double rate, unsigned d, double grid, unsigned long *mult)
{
    if (!(grid > 0))
        return false;
    double k = rate / d / grid;
    double r = nearbyint(k);
    *mult = (unsigned long)r;
    return r >= 1 && fabs(k - r) <= 1e-9 * k;
}

/* Filter length for decimation d (transition pass .. rate/d - pass, as_db). */
static unsigned filter_len(double rate, unsigned d, double pass, double as_db)
{
    double df = (rate / d - 2.0 * pass) / rate;
    unsigned len = estimate_req_filter_len((float)df, (float)as_db);
    len += len / 8 + 1; /* the Kaiser estimate is tight: keep the passband edge flat */
    return len | 1;     /* odd: integer group delay */
}

/* Picks D by estimated CPU per second of input. The overlap-save front end costs about
 * the same per input sample whatever D (the forward FFT of 4k-10k points dominates: ~20
 * instructions per input sample by callgrind, taken as ~2.5 ns, plus ~1 ns per output
 * sample for the inverse FFT and the phase); the channelizer's FFT of N = rate/D/grid points, 2*grid times a
 * second, costs ~0.18 ns * N log2 N up to N = 16384 and ~0.35 ns beyond (cache), 3x that
 * for N not 2^a 3^b 5^c 7^d. Working rates on the grid come first (off-grid ones only
 * when no D lands on it); within 10 % the larger D wins (smaller spectra to keep). */
static unsigned choose_decimation(double rate, double pass, double grid)
{
    double fw_min = FRONTEND_MARGIN * 2.0 * pass;
    if (rate < 2.0 * fw_min)
        return 1;
    unsigned dmax = (unsigned)floor(rate / fw_min);
    unsigned best = 1;
    double best_cost = 1e300;
    bool best_on_grid = false;
    for (unsigned d = dmax; d >= 1; d--) {
        double fw = rate / d;
        double cost = d > 1 ? rate * 2.5e-9 + fw * 1e-9 : 0;
        unsigned long mult = 0;
        bool grid_ok = on_grid(rate, d, grid, &mult);
        if (grid > 0) {
            double n = grid_ok ? (double)mult : fw / grid;
            double fft = 2 * grid * (n <= 16384 ? 0.18e-9 : 0.35e-9) * n * log2(n);
            cost += grid_ok && is_smooth(mult) ? fft : 3 * fft;
        }
        if ((grid_ok && !best_on_grid) || (grid_ok == best_on_grid && cost < 0.9 * best_cost)) {
            best = d;
            best_cost = cost;
            best_on_grid = grid_ok;
        }
    }
    return best;
}

/* Sizes of the overlap-save blocks for decimation d and a filter of len taps: the
 * overlap holds len - 1 samples rounded up to whole output samples, the forward FFT is
 * d * M with M a power of two. */
static bool plan_blocks(frontend_t *q, unsigned len)
{
    unsigned d = q->decimation;
    q->overlap = ((len - 1 + d - 1) / d) * d;
    size_t need = FRONTEND_OVERLAP_SHARE * q->overlap;
    if (need < FRONTEND_MIN_FFT)
        need = FRONTEND_MIN_FFT;
    size_t m = 1;
    while (m * d < need && m < FRONTEND_MAX_M)
        m *= 2;
    if (m * d <= q->overlap)
        return false;
    q->m_fft = m;
    q->n_fft = m * d;
    q->hop = q->n_fft - q->overlap;
    return true;
}

/* The filter's response at every bin of the forward FFT, for taps modulated by the part
 * of the shift that the bin rotation leaves (h[k] e^{+j 2 pi delta k / rate}), and which
 * bins enter the fold: the widest offset either side where the response is still above
 * the stopband level, and every bin inside it. Leaving out the bins beyond changes the
 * output by ~70 dB less than its power (test_frontend) and costs 3-6x fewer operations
 * than folding all n_fft bins. (Leaving out more, e.g. the transition band, which only
 * folds onto the guard band, is not possible: the output of each block is cut to its
 * valid part, which spreads an error anywhere in the spectrum over the kept band too.)
 * Bins that fold onto themselves come first in the list (stored), the aliases after them
 * (added); fold bins that nothing reaches stay 0. */
static bool plan_fold(frontend_t *q, const float *h, unsigned len, double delta, double as_db)
{
    size_t n = q->n_fft, m = q->m_fft;
    memset(q->in_buf, 0, n * sizeof *q->in_buf);
    for (unsigned k = 0; k < len; k++)
        q->in_buf[k] = (float complex)(h[k] * cexp(I * 2.0 * M_PI * delta * k / q->rate_sps));
    fftwf_execute(q->fwd);
    double thr = pow(10.0, -as_db / 20.0);
    size_t reach = 0;
    for (size_t i = 1; i < n / 2; i++)
        if (cabsf(q->spec[i]) >= thr || cabsf(q->spec[n - i]) >= thr)
            reach = i;
    size_t kept_max = 2 * reach + 1 < n ? 2 * reach + 1 : n;
    q->kept_src = malloc(kept_max * sizeof *q->kept_src);
    q->kept_dst = malloc(kept_max * sizeof *q->kept_dst);
    q->kept_w = malloc(kept_max * sizeof *q->kept_w);
    if (!q->kept_src || !q->kept_dst || !q->kept_w)
        return false;
    size_t kept = 0, assigned = 0;
    /* pass 0: offsets -M/2 .. M/2-1 (each folds onto itself, each fold bin once);
     * pass 1: the others, whose fold bin pass 0 has written (the range is contiguous) */
    for (int pass_no = 0; pass_no < 2; pass_no++) {
        for (size_t i = 0; i < n; i++) {
            long off = i < n / 2 ? (long)i : (long)i - (long)n;
            bool centre = off >= -(long)(m / 2) && off < (long)(m / 2);
            if (centre != (pass_no == 0) || labs(off) > (long)reach || kept == kept_max)
                continue;
            q->kept_w[kept] = q->spec[i] / (float)n;
            q->kept_dst[kept] = (size_t)((off % (long)m + (long)m) % (long)m);
            q->kept_src[kept] = i; /* moved by k0 in frontend_create */
            kept++;
            if (pass_no == 0)
                assigned++;
        }
    }
    q->n_kept = kept;
    q->n_assigned = assigned;
    /* fold bins that no kept bin reaches are never written: zero for good */
    memset(q->fold, 0, m * sizeof *q->fold);
    memset(q->in_buf, 0, n * sizeof *q->in_buf);
    return true;
}

frontend_t *frontend_create(const frontend_config_t *cfg)
{
    if (!cfg) {
        log_error("Front end not created, reason: no configuration");
        return NULL;
    }
    double rate = cfg->rate_sps, pass = cfg->passband_hz;
    double as_db = cfg->stopband_db > 0 ? cfg->stopband_db : 60.0;
    if (!(rate >= 1e3 && rate <= 20e6)) {
        log_error("Front end not created, reason: input rate out of range, rate_sps: %g", rate);
        return NULL;
    }
    if (!(pass > 0) || !isfinite(cfg->shift_hz) || fabs(cfg->shift_hz) + pass > rate / 2) {
        log_error("Front end not created, reason: kept band outside the input band, "
                  "passband_hz: %g, shift_hz: %g, rate_sps: %g",
                  pass, cfg->shift_hz, rate);
        return NULL;
    }
    frontend_t *q = calloc(1, sizeof *q);
    if (!q)
        goto fail;
    q->rate_sps = rate;
    q->decimation = choose_decimation(rate, pass, cfg->grid_hz);
    if (q->decimation == 1) {
        if (cfg->shift_hz != 0.0) {
            q->nco = nco_crcf_create(LIQUID_NCO);
            if (!q->nco)
                goto fail;
            nco_crcf_set_frequency(q->nco, (float)(2.0 * M_PI * cfg->shift_hz / rate));
        }
        return q;
    }

    unsigned d = q->decimation;
    unsigned len = filter_len(rate, d, pass, as_db);
    float *h = malloc(len * sizeof *h);
    if (!h)
        goto fail;
    liquid_firdes_kaiser(len, (float)(0.5 / d), (float)as_db, 0.0f, h);
    double sum = 0;
    for (unsigned i = 0; i < len; i++)
        sum += h[i];
    for (unsigned i = 0; i < len; i++)
        h[i] = (float)(h[i] / sum); /* unit gain at 0 Hz */
    /* output j = sum_k h[k] x[jD - k]: a linear-phase filter centred (len-1)/2 back */
    q->delay_in = (len - 1) / 2.0;
    if (!plan_blocks(q, len)) {
        free(h);
        log_error("Front end not created, reason: filter longer than the FFT, taps: %u", len);
        frontend_destroy(q);
        return NULL;
    }
    size_t n = q->n_fft, m = q->m_fft;
    q->in_buf = fftwf_malloc(n * sizeof *q->in_buf);
    q->spec = fftwf_malloc(n * sizeof *q->spec);
    q->fold = fftwf_malloc(m * sizeof *q->fold);
    q->out_buf = fftwf_malloc(m * sizeof *q->out_buf);
    if (!q->in_buf || !q->spec || !q->fold || !q->out_buf) {
        free(h);
        goto fail;
    }
    unsigned flags = cfg->fft_measure ? FFTW_MEASURE : FFTW_ESTIMATE;
    q->fwd = fftwf_plan_dft_1d((int)n, (fftwf_complex *)q->in_buf, (fftwf_complex *)q->spec,
                               FFTW_FORWARD, flags);
    q->inv = fftwf_plan_dft_1d((int)m, (fftwf_complex *)q->fold, (fftwf_complex *)q->out_buf,
                               FFTW_BACKWARD, flags);
    if (!q->fwd || !q->inv) {
        free(h);
        log_error("Front end not created, reason: FFTW plan failed, fft_len: %zu", n);
        frontend_destroy(q);
        return NULL;
    }
    /* the shift: k0 whole bins by rotating the spectrum, delta through the taps */
    double bin_hz = rate / (double)n;
    double k0f = nearbyint(cfg->shift_hz / bin_hz);
    double delta = cfg->shift_hz - k0f * bin_hz;
    uint64_t k0 = (uint64_t)(((long long)k0f % (long long)n + (long long)n) % (long long)n);
    bool ok = plan_fold(q, h, len, delta, as_db);
    free(h);
    if (!ok)
        goto fail;
    for (size_t i = 0; i < q->n_kept; i++)
        q->kept_src[i] = (q->kept_src[i] + k0) % n;
    q->rotate = cfg->shift_hz != 0.0;
    q->k0_step = (k0 * (q->hop % n)) % n;
    q->k0_start = (n - (k0 * (q->overlap % n)) % n) % n;
    q->delta_step = fmod(delta * (double)q->hop / rate, 1.0);
    q->out_rot = cexp(-I * 2.0 * M_PI * delta * d / rate);
    /* |X[k]|^2 summed over every bin is n times the block's energy (Parseval): at most
     * 2 n^2 for samples within full scale, and over the kept bins only less; the limit
     * leaves room for twice full scale. A sample beyond +-1e6 (or a NaN) puts |x|^2 into
     * every bin: far above the limit even over a single kept bin. */
    q->energy_limit = 8.0 * (double)n * (double)n;
    frontend_reset(q);
    return q;
fail:
    log_error("Front end not created, reason: out of memory");
    frontend_destroy(q);
    return NULL;
}

double frontend_out_rate(const frontend_t *q)
{
    return q->rate_sps / q->decimation;
}

unsigned frontend_decimation(const frontend_t *q)
{
    return q->decimation;
}

double frontend_delay_in(const frontend_t *q)
{
    return q->delay_in;
}

size_t frontend_max_out(const frontend_t *q, size_t n)
{
    if (q->decimation == 1)
        return n + 1;
    /* up to hop - 1 samples may wait from an earlier call */
    size_t blocks = (n + q->hop - 1) / q->hop;
    return blocks * (q->hop / q->decimation) + 1;
}

/* Samples are untrusted (files, radios): NaN, infinities or values far beyond full scale
 * would poison every filter state and noise-floor average downstream, so they become 0.
 * Returns how many were replaced. */
static size_t sanitize(float complex *x, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float re = crealf(x[i]), im = cimagf(x[i]);
        /* also false for NaN */
        bool ok = fabsf(re) <= FRONTEND_MAX_ABS && fabsf(im) <= FRONTEND_MAX_ABS;
        if (!ok) {
            x[i] = 0;
            bad++;
        }
    }
    return bad;
}

uint64_t frontend_invalid_samples(const frontend_t *q)
{
    return q->invalid;
}

/* Forward FFT of the n_fft samples at block (in_buf, or the caller's samples when they
 * hold a whole block with in_buf's SIMD alignment: no copy), then the kept bins weighted
 * into fold. Returns their energy (NaN when the block holds a NaN or infinity). Real
 * arithmetic: C's complex product checks for NaN on every call, and the loop runs for
 * every kept bin of every block. */
static float transform_and_fold(frontend_t *q, const float complex *block)
{
    fftwf_execute_dft(q->fwd, (fftwf_complex *)block, (fftwf_complex *)q->spec);
    const float *spec = (const float *)q->spec, *w = (const float *)q->kept_w;
    float *fold = (float *)q->fold;
    float energy = 0;
    size_t i = 0;
    for (; i < q->n_assigned; i++) {
        size_t s = 2 * q->kept_src[i], d = 2 * q->kept_dst[i];
        float xr = spec[s], xi = spec[s + 1], wr = w[2 * i], wi = w[2 * i + 1];
        energy += xr * xr + xi * xi;
        fold[d] = xr * wr - xi * wi;
        fold[d + 1] = xr * wi + xi * wr;
    }
    for (; i < q->n_kept; i++) {
        size_t s = 2 * q->kept_src[i], d = 2 * q->kept_dst[i];
        float xr = spec[s], xi = spec[s + 1], wr = w[2 * i], wi = w[2 * i + 1];
        energy += xr * xr + xi * xi;
        fold[d] += xr * wr - xi * wi;
        fold[d + 1] += xr * wi + xi * wr;
    }
    return energy;
}

/* One block of n_fft samples (the first `overlap` of them seen in the block before) to
 * hop/D output samples at out. A block with a NaN, an infinity or a value beyond full
 * scale (its kept bins' energy says so) is copied to in_buf, cleaned and done again; its
 * overlap may repeat values the block before already counted and replaced. */
static void run_block(frontend_t *q, const float complex *block, float complex *out)
{
    float energy = transform_and_fold(q, block);
    if (!(energy <= q->energy_limit)) {
        if (block != q->in_buf)
            memcpy(q->in_buf, block, q->n_fft * sizeof *q->in_buf);
        size_t seen = sanitize(q->in_buf, q->overlap);
        size_t bad = sanitize(q->in_buf + q->overlap, q->hop);
        q->invalid += bad;
        if (seen + bad > 0)
            transform_and_fold(q, q->in_buf);
        block = q->in_buf;
    }
    fftwf_execute(q->inv);
    size_t first = q->overlap / q->decimation, count = q->hop / q->decimation;
    if (!q->rotate) {
        memcpy(out, q->out_buf + first, count * sizeof *out);
    } else {
        /* the phasor in double, real arithmetic (no NaN checks of C's complex product);
         * restarted exactly at every block, so rounding never accumulates */
        double cycles = (double)q->block_phase / (double)q->n_fft + q->delta_frac;
        double rr = cos(2.0 * M_PI * cycles), ri = -sin(2.0 * M_PI * cycles);
        double sr = creal(q->out_rot), si = cimag(q->out_rot);
        const float *src = (const float *)(q->out_buf + first);
        float *dst = (float *)out;
        for (size_t i = 0; i < count; i++) {
            float xr = src[2 * i], xi = src[2 * i + 1];
            dst[2 * i] = (float)(xr * rr - xi * ri);
            dst[2 * i + 1] = (float)(xr * ri + xi * rr);
            double nr = rr * sr - ri * si;
            ri = rr * si + ri * sr;
            rr = nr;
        }
        q->block_phase = (q->block_phase + q->k0_step) % q->n_fft;
        q->delta_frac += q->delta_step;
        q->delta_frac -= floor(q->delta_frac);
    }
    /* the next block's overlap: kept only when the block came from in_buf, else the
     * caller's samples still hold it (frontend_process copies it before returning) */
    if (block == q->in_buf)
        memmove(q->in_buf, q->in_buf + q->hop, q->overlap * sizeof *q->in_buf);
}

long frontend_process(frontend_t *q, const float complex *in, size_t n, float complex *out,
                      size_t cap)
{
    if (cap < frontend_max_out(q, n))
        return -1;
    if (n == 0)
        return 0; /* in may be NULL */
    size_t nout = 0;
    if (q->decimation == 1) {
        while (n > 0) {
            size_t c = n < FRONTEND_CHUNK ? n : FRONTEND_CHUNK;
            float complex *dst = out + nout;
            if (q->nco)
                nco_crcf_mix_block_down(q->nco, (float complex *)in, dst, (unsigned)c);
            else
                memcpy(dst, in, c * sizeof *in);
            q->invalid += sanitize(dst, c);
            nout += c;
            in += c;
            n -= c;
        }
        return (long)nout;
    }
    size_t count = q->hop / q->decimation, pos = 0;
    /* in_buf holds the overlap and any samples an earlier call left: complete that block */
    if (q->fill > q->overlap) {
        size_t c = q->n_fft - q->fill;
        if (c > n)
            c = n;
        memcpy(q->in_buf + q->fill, in, c * sizeof *in);
        q->fill += c;
        pos = c;
        if (q->fill < q->n_fft)
            return 0;
        run_block(q, q->in_buf, out);
        nout += count;
        q->fill = q->overlap;
    }
    /* whole blocks inside the caller's samples: read in place. pos counts the samples
     * consumed; the next block starts `overlap` before pos. */
    int align = fftwf_alignment_of((float *)q->in_buf);
    while (pos >= q->overlap && n - pos >= q->hop &&
           fftwf_alignment_of((float *)(in + pos - q->overlap)) == align) {
        run_block(q, in + pos - q->overlap, out + nout);
        nout += count;
        pos += q->hop;
    }
    /* the rest through in_buf, after the overlap; with pos < overlap in_buf holds it
     * already (run_block moved it there) */
    if (pos >= q->overlap)
        memcpy(q->in_buf, in + pos - q->overlap, q->overlap * sizeof *in);
    while (pos < n) {
        size_t c = q->n_fft - q->fill;
        if (c > n - pos)
            c = n - pos;
        memcpy(q->in_buf + q->fill, in + pos, c * sizeof *in);
        q->fill += c;
        pos += c;
        if (q->fill == q->n_fft) {
            run_block(q, q->in_buf, out + nout);
            nout += count;
            q->fill = q->overlap;
        }
    }
    return (long)nout;
}

void frontend_reset(frontend_t *q)
{
    if (!q)
        return;
    if (q->nco)
        nco_crcf_set_phase(q->nco, 0.0f); /* nco_crcf_reset would also zero the frequency */
    if (q->in_buf) {
        memset(q->in_buf, 0, q->overlap * sizeof *q->in_buf);
        q->fill = q->overlap;
        q->block_phase = q->k0_start;
        q->delta_frac = 0;
    }
}

void frontend_destroy(frontend_t *q)
{
    if (!q)
        return;
    if (q->nco)
        nco_crcf_destroy(q->nco);
    if (q->fwd)
        fftwf_destroy_plan(q->fwd);
    if (q->inv)
        fftwf_destroy_plan(q->inv);
    fftwf_free(q->in_buf);
    fftwf_free(q->spec);
    fftwf_free(q->fold);
    fftwf_free(q->out_buf);
    free(q->kept_src);
    free(q->kept_dst);
    free(q->kept_w);
    free(q);
}
