/* extractor: overlap-save narrowband extraction from channelizer spectra. Licence: MIT. */
#include "extractor.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>

#include "log.h"

struct extractor {
    size_t n, m;
    double bin_hz;
    float *h;          /* M weights, index m + M/2 */
    float complex *in; /* FFTW buffers, M */
    float complex *out;
    fftwf_plan plan;
};

extractor_t *extractor_create(const extractor_config_t *cfg)
{
    if (!cfg || cfg->fft_len < 8 || (cfg->fft_len & 1) || cfg->out_bins < 8 || cfg->out_bins % 4 ||
        cfg->out_bins > cfg->fft_len || !(cfg->bin_hz > 0) || !(cfg->pass_hz > 0) ||
        !(cfg->stop_hz > cfg->pass_hz) || cfg->stop_hz > cfg->out_bins / 2 * cfg->bin_hz + 1e-9) {
        log_error("Extractor not created, reason: bad sizes or band edges");
        return NULL;
    }
    extractor_t *q = calloc(1, sizeof *q);
    if (!q)
        goto nomem;
    q->n = cfg->fft_len;
    q->m = cfg->out_bins;
    q->bin_hz = cfg->bin_hz;
    q->h = malloc(q->m * sizeof *q->h);
    q->in = fftwf_malloc(q->m * sizeof(fftwf_complex));
    q->out = fftwf_malloc(q->m * sizeof(fftwf_complex));
    if (!q->h || !q->in || !q->out)
        goto nomem;
    for (size_t j = 0; j < q->m; j++) {
        double f = fabs(((double)j - (double)(q->m / 2)) * q->bin_hz);
        double v;
        if (f <= cfg->pass_hz)
            v = 1.0;
        else if (f >= cfg->stop_hz)
            v = 0.0;
        else
            v = 0.5 * (1 + cos(M_PI * (f - cfg->pass_hz) / (cfg->stop_hz - cfg->pass_hz)));
        q->h[j] = (float)(v / (double)q->n); /* FFT gain N, inverse gain 1 */
    }
    q->plan = fftwf_plan_dft_1d((int)q->m, (fftwf_complex *)q->in, (fftwf_complex *)q->out,
                                FFTW_BACKWARD, FFTW_ESTIMATE);
    if (!q->plan) {
        log_error("Extractor not created, reason: FFTW plan failed, out_bins: %zu", q->m);
        extractor_destroy(q);
        return NULL;
    }
    return q;
nomem:
    log_error("Extractor not created, reason: out of memory");
    extractor_destroy(q);
    return NULL;
}

double extractor_rate(const extractor_t *q)
{
    return (double)q->m * q->bin_hz;
}

size_t extractor_hop_out(const extractor_t *q)
{
    return q->m / 2;
}

double extractor_step(const extractor_t *q)
{
    return (double)q->n / (double)q->m;
}

double extractor_offset(const extractor_t *q)
{
    return (double)q->n / 4.0;
}

void extractor_process(extractor_t *q, const float complex *spectrum, long k0, uint64_t hop,
                       float complex *out)
{
    long n = (long)q->n, half = (long)q->m / 2;
    /* bin k0+m goes to IFFT input m mod M (FFTW order); k wraps at most once */
    long k = ((k0 - half) % n + n) % n;
    for (long m = -half; m < half; m++) {
        long j = m < 0 ? m + (long)q->m : m;
        q->in[j] = q->h[m + half] * spectrum[k];
        if (++k == n)
            k = 0;
    }
    fftwf_execute(q->plan);
    /* frame b starts at b*N/2: exp(-j 2 pi k0 b N/2 / N) = (-1)^(k0 b) */
    float sign = ((k0 & 1) && (hop & 1)) ? -1.0f : 1.0f;
    size_t i0 = q->m / 4;
    for (size_t i = 0; i < q->m / 2; i++)
        out[i] = sign * q->out[i0 + i];
}

void extractor_destroy(extractor_t *q)
{
    if (!q)
        return;
    if (q->plan)
        fftwf_destroy_plan(q->plan);
    fftwf_free(q->in);
    fftwf_free(q->out);
    free(q->h);
    free(q);
}
