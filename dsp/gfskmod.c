/* gfskmod: Sigfox downlink GFSK burst modulator (spec rev 1.4 §2.5). Licence: MIT.
 * See include/gfskmod.h for the burst layout. */
#include "gfskmod.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <liquid/liquid.h>

#define MOD_K_RESAMPLED 16u /* samples/symbol before the resampler */
#define MOD_K_DIRECT_MAX 16384u
#define MOD_FILTER_SYMBOLS 4u /* Gaussian pulse half-length; BT >= 0.2 decays within it */
#define MOD_RESAMP_AS_DB 70.0f
#define MOD_RESAMP_M 15u             /* arbitrary resampler semi-length, input samples */
#define MOD_RESAMP_NPFB 256u         /* its filter-bank phases (timing resolution 1/256 sample) */
#define MOD_INTERP_M 12u             /* integer interpolator semi-length, input samples */
#define MOD_SIGNAL_HALF_BW_HZ 2000.0 /* deviation + main lobe, for the offset check */
#define MOD_CAL_SYMBOLS 8u
#define MOD_REANCHOR                                                                               \
    4096u /* carrier phasor re-computed exactly this often */ /* steady symbols each side of the   \
                                                                 calibration step */

struct gfskmod {
    double rate_sps;
    double sps; /* output samples per symbol */
    double offset_hz;
    float amplitude;
    size_t max_bits;
    unsigned k_mod;       /* cpfskmod samples/symbol */
    unsigned pad_symbols; /* symbols run before bit 0 and after the last bit */
    double delay_samples; /* chain delay, output samples (measured in create) */
    size_t ramp_samples;
    size_t data_offset; /* ramp_samples, rounded */
    cpfskmod mod;
    firinterp_crcf interp; /* integer stage (factor interp_l), NULL when not needed */
    unsigned interp_l;
    resamp_crcf resamp;     /* fractional stage, NULL when k_mod = rate / 600 */
    float complex *int_buf; /* interpolator output for one symbol */
    float complex *sym_buf; /* k_mod samples */
    float complex *res_buf; /* resampler output for one symbol */
    size_t res_cap;
    float *ramp; /* ramp_samples rising weights */
};

const char *gfskmod_strerror(int code)
{
    switch (code) {
    case GFSKMOD_OK:
        return "ok";
    case GFSKMOD_ERR_ARG:
        return "invalid argument (NULL buffer or bit count 0 / too large)";
    case GFSKMOD_ERR_SPACE:
        return "output buffer too small for the burst";
    case GFSKMOD_ERR_OFFSET:
        return "carrier offset puts the signal outside the sample rate";
    default:
        return "unknown error";
    }
}

static int offset_ok(double rate_sps, double offset_hz)
{
    return isfinite(offset_hz) && fabs(offset_hz) + MOD_SIGNAL_HALF_BW_HZ <= rate_sps / 2.0;
}

/* Runs the modulator (and resampler) on one symbol; returns the output samples in *y. */
static unsigned chain_symbol(gfskmod_t *q, unsigned sym, float complex **y)
{
    cpfskmod_modulate(q->mod, sym, q->sym_buf);
    if (!q->resamp) {
        *y = q->sym_buf;
        return q->k_mod;
    }
    const float complex *in = q->sym_buf;
    unsigned n_in = q->k_mod, ny = 0;
    if (q->interp) {
        for (unsigned i = 0; i < q->k_mod; i++)
            firinterp_crcf_execute(q->interp, q->sym_buf[i], q->int_buf + i * q->interp_l);
        in = q->int_buf;
        n_in = q->k_mod * q->interp_l;
    }
    resamp_crcf_execute_block(q->resamp, (float complex *)in, n_in, q->res_buf, &ny);
    *y = q->res_buf;
    return ny;
}

static void chain_reset(gfskmod_t *q)
{
    cpfskmod_reset(q->mod);
    if (q->interp)
        firinterp_crcf_reset(q->interp);
    if (q->resamp)
        resamp_crcf_reset(q->resamp);
}

/* Measures where a 0 -> 1 symbol step crosses zero frequency at the output, which for a
 * symmetric Gaussian pulse is the step time plus the chain's delay (filter group delay +
 * resampler delay). Done once so the burst window lines up with the bits whatever
 * liquid's internal conventions are. Returns the delay in output samples, or NAN. */
static double chain_measure_delay(gfskmod_t *q)
{
    chain_reset(q);
    unsigned step = q->pad_symbols + MOD_CAL_SYMBOLS;
    unsigned total = step + q->pad_symbols + MOD_CAL_SYMBOLS;
    double idx = 0; /* global index of the next output sample */
    float complex prev = 0;
    float f_prev = 0;
    int armed = 0; /* seen a clearly negative frequency first */
    for (unsigned s = 0; s < total; s++) {
        float complex *y;
        unsigned ny = chain_symbol(q, s >= step, &y);
        for (unsigned i = 0; i < ny; i++, idx += 1) {
            /* frequency between samples idx-1 and idx, i.e. at time idx - 0.5 */
            float f = cargf(y[i] * conjf(prev));
            prev = y[i];
            float f_hz = f * (float)q->rate_sps / (2.0f * (float)M_PI);
            if (!armed) {
                /* The chain is causal: the crossing comes after the step's input time,
                 * and by then the pre-step tone has settled (start-up transients of the
                 * filter and resampler are long gone). */
                armed = idx >= step * q->sps && f_hz < -0.9f * (float)GFSK_DEVIATION_HZ;
            } else if (f_hz >= 0) { /* f_prev < 0 since armed */
                double frac = (double)(-f_prev) / (double)(f_hz - f_prev);
                double t_cross = idx - 1.5 + frac;
                return t_cross - step * q->sps;
            }
            f_prev = f_hz;
        }
    }
    return NAN;
}

gfskmod_t *gfskmod_create(const gfskmod_config_t *cfg)
{
    if (!cfg || !(cfg->rate_sps >= 4800.0) || !(cfg->rate_sps <= 100e6))
        return NULL;
    float bt = cfg->bt == 0 ? GFSK_DEFAULT_BT : cfg->bt;
    float ramp = cfg->ramp_symbols == 0 ? GFSK_MAX_RAMP_SYMBOLS : cfg->ramp_symbols;
    float amp = cfg->amplitude == 0 ? 1.0f : cfg->amplitude;
    if (!(bt >= 0.2f && bt <= 1.0f) || !(ramp > 0 && ramp <= GFSK_MAX_RAMP_SYMBOLS) ||
        !(amp > 0 && amp <= 1.0f) || !offset_ok(cfg->rate_sps, cfg->offset_hz))
        return NULL;

    gfskmod_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->rate_sps = cfg->rate_sps;
    q->sps = cfg->rate_sps / GFSK_BAUD;
    q->offset_hz = cfg->offset_hz;
    q->amplitude = amp;
    q->max_bits = cfg->max_bits ? cfg->max_bits : 224;

    double k_exact = q->sps;
    unsigned k_int = (unsigned)lround(k_exact);
    int direct = fabs(k_exact - k_int) < 1e-9 && k_int % 2 == 0 && k_int <= MOD_K_DIRECT_MAX;
    q->k_mod = direct ? k_int : MOD_K_RESAMPLED;

    /* h = 2 Δf / Rs: liquid's pulse integrates to h·π per symbol, giving ±800 Hz. */
    float h = (float)(2.0 * GFSK_DEVIATION_HZ / GFSK_BAUD);
    q->mod = cpfskmod_create(1, h, q->k_mod, MOD_FILTER_SYMBOLS, bt, LIQUID_CPFSK_GMSK);
    q->sym_buf = malloc(q->k_mod * sizeof *q->sym_buf);
    if (!q->mod || !q->sym_buf)
        goto fail;
    double resamp_delay = 0; /* symbols */
    if (!direct) {
        float r = (float)(q->rate_sps / (GFSK_BAUD * MOD_K_RESAMPLED));
        /* An integer Kaiser interpolator up to within a factor 2 of the rate, then
         * liquid's arbitrary resampler for the rest: alone, resamp_crcf quantises the
         * output timing to 1/npfb input sample, which at large ratios repeats samples.
         * (msresamp_crcf would do both but leaks memory in liquid 1.5.0.) */
        double r2 = r;
        q->interp_l = r >= 2.0 ? (unsigned)floor(r) : 1;
        if (q->interp_l > 1) {
            r2 = r / q->interp_l;
            q->interp = firinterp_crcf_create_kaiser(q->interp_l, MOD_INTERP_M, MOD_RESAMP_AS_DB);
            q->int_buf = malloc((size_t)q->k_mod * q->interp_l * sizeof *q->int_buf);
            if (!q->interp || !q->int_buf)
                goto fail;
        }
        /* cutoff (relative to its input rate) below the lower of the two Nyquist rates */
        q->resamp = resamp_crcf_create((float)r2, MOD_RESAMP_M, 0.45f * (float)fmin(r2, 1.0),
                                       MOD_RESAMP_AS_DB, MOD_RESAMP_NPFB);
        if (!q->resamp)
            goto fail;
        q->res_cap = (size_t)q->k_mod * q->interp_l * ((size_t)ceil(r2) + 1) + 16;
        q->res_buf = malloc(q->res_cap * sizeof *q->res_buf);
        if (!q->res_buf)
            goto fail;
        resamp_delay = (MOD_INTERP_M + (double)MOD_RESAMP_M / q->interp_l) / q->k_mod;
    }
    /* Enough symbols ahead of bit 0 for the Gaussian filter and the resampler to settle
     * before the ramp starts (and the same after the last bit to flush them). */
    q->pad_symbols = MOD_FILTER_SYMBOLS + 3 + (unsigned)ceil(resamp_delay);

    q->ramp_samples = (size_t)lround(ramp * q->sps);
    if (q->ramp_samples < 1)
        q->ramp_samples = 1;
    q->data_offset = q->ramp_samples;
    q->ramp = malloc(q->ramp_samples * sizeof *q->ramp);
    if (!q->ramp)
        goto fail;
    for (size_t i = 0; i < q->ramp_samples; i++)
        q->ramp[i] = 0.5f - 0.5f * cosf((float)M_PI * ((float)i + 0.5f) / (float)q->ramp_samples);

    q->delay_samples = chain_measure_delay(q);
    if (!isfinite(q->delay_samples) || q->delay_samples < 0 ||
        q->delay_samples > (q->pad_symbols - 1) * q->sps)
        goto fail;
    return q;
fail:
    gfskmod_destroy(q);
    return NULL;
}

int gfskmod_set_offset(gfskmod_t *q, double offset_hz)
{
    if (!q)
        return GFSKMOD_ERR_ARG;
    if (!offset_ok(q->rate_sps, offset_hz))
        return GFSKMOD_ERR_OFFSET;
    q->offset_hz = offset_hz;
    return GFSKMOD_OK;
}

size_t gfskmod_burst_samples(const gfskmod_t *q, size_t n_bits)
{
    if (!q)
        return 0;
    return (size_t)llround((double)n_bits * q->sps) + 2 * q->ramp_samples;
}

double gfskmod_data_offset_s(const gfskmod_t *q)
{
    return q ? (double)q->data_offset / q->rate_sps : 0.0;
}

double gfskmod_samples_per_symbol(const gfskmod_t *q)
{
    return q ? q->sps : 0.0;
}

static unsigned bit_at(const uint8_t *bits, size_t i)
{
    return (bits[i / 8] >> (7 - i % 8)) & 1u;
}

long gfskmod_process(gfskmod_t *q, const uint8_t *bits, size_t n_bits, float complex *out,
                     size_t out_cap)
{
    if (!q || !bits || !out || n_bits == 0 || n_bits > q->max_bits)
        return GFSKMOD_ERR_ARG;
    size_t len = gfskmod_burst_samples(q, n_bits);
    if (out_cap < len)
        return GFSKMOD_ERR_SPACE;

    chain_reset(q);
    /* Carrier offset: a double-precision phasor recursion re-anchored to the exact phase
     * every MOD_REANCHOR samples. liquid 1.5's nco_crcf (NCO and VCO alike) was measured
     * here with spurs at -60 dBc (e.g. ±400 and ±800 kHz around a -50 kHz carrier at
     * 2 MS/s), which a receiver decodes as extra bursts. */
    const double dphi = 2.0 * M_PI * q->offset_hz / q->rate_sps;
    const double complex step = cexp(I * dphi);
    double complex rot = 1.0;

    /* Output window in the chain's sample index: bit 0 starts at pad × sps + delay. */
    double t_bit0 = q->pad_symbols * q->sps + q->delay_samples;
    size_t win_start = (size_t)llround(t_bit0) - q->ramp_samples;
    size_t win_end = win_start + len;
    size_t n_data = len - q->ramp_samples; /* ramp-down starts here (window-relative) */
    size_t total_syms = q->pad_symbols * 2 + n_bits;
    size_t idx = 0;
    for (size_t s = 0; s < total_syms && idx < win_end; s++) {
        /* Padding repeats the first / last bit so the ramps ride on a steady tone. */
        size_t b = s < q->pad_symbols ? 0 : s - q->pad_symbols;
        if (b >= n_bits)
            b = n_bits - 1;
        float complex *y;
        unsigned ny = chain_symbol(q, bit_at(bits, b), &y);
        for (unsigned i = 0; i < ny; i++, idx++) {
            if (idx < win_start || idx >= win_end)
                continue;
            size_t j = idx - win_start;
            float w = q->amplitude;
            if (j < q->ramp_samples)
                w *= q->ramp[j];
            else if (j >= n_data)
                w *= q->ramp[len - 1 - j];
            if (j % MOD_REANCHOR == 0)
                rot = cexp(I * fmod(dphi * (double)j, 2.0 * M_PI));
            out[j] = (float complex)(y[i] * w * rot);
            rot *= step;
        }
    }
    /* The padding always covers the window; this only guards against a miscount. */
    if (idx < win_end)
        memset(out + (idx > win_start ? idx - win_start : 0), 0,
               (win_end - (idx > win_start ? idx : win_start)) * sizeof *out);
    return (long)len;
}

void gfskmod_destroy(gfskmod_t *q)
{
    if (!q)
        return;
    if (q->mod)
        cpfskmod_destroy(q->mod);
    if (q->interp)
        firinterp_crcf_destroy(q->interp);
    if (q->resamp)
        resamp_crcf_destroy(q->resamp);
    free(q->int_buf);
    free(q->sym_buf);
    free(q->res_buf);
    free(q->ramp);
    free(q);
}
