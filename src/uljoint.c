/* uljoint: joint coherent ML decoding of replicas (see include/uljoint.h). Licence: MIT. */
#include "uljoint.h"

#include <math.h>
#include <string.h>

#include "ulcode.h"

enum { NSTATES = 32, BODY_BYTES = UL_MAX_CONTAINER_BYTES + UL_CRC_BYTES };

/* Untrusted soft input: NaN is an erasure, infinities and huge values are clamped so the
 * path metrics stay finite and comparable (as ulcode.c does for bit LLRs). */
static inline float sanitize(float x)
{
    const float lim = 1e6f;
    if (isnan(x))
        return 0.0f;
    return x > lim ? lim : (x < -lim ? -lim : x);
}

/* Coded bits of ranks 1..3 (bit r-1) for input b in code state cs = u[n-1] << 1 | u[n-2]
 * (Table 3-2: 1, 1+X+X², 1+X²). */
static inline unsigned coded_bits(unsigned b, unsigned cs)
{
    unsigned u1 = cs >> 1, u2 = cs & 1;
    return b | (b ^ u1 ^ u2) << 1 | (b ^ u2) << 2;
}

/* Header bits (preamble then FT, first on air first) of a rank. */
static int header_bits(int rank, size_t container_len, bool control, uint8_t bits[UL_HEADER_BITS])
{
    uint16_t ft = ul_ft_value(container_len, control, rank);
    if (ft == 0)
        return UL_ERR_LENGTH;
    for (int i = 0; i < UL_PREAMBLE_BITS; i++)
        bits[i] = (UL_PREAMBLE >> (UL_PREAMBLE_BITS - 1 - i)) & 1;
    for (int i = 0; i < UL_FT_BITS; i++)
        bits[UL_PREAMBLE_BITS + i] = (ft >> (UL_FT_BITS - 1 - i)) & 1;
    return 0;
}

int ul_joint_symbols_of(int rank, const uint8_t *body, size_t container_len, bool control,
                        float *sym, size_t cap)
{
    if (!body || !sym || rank < 1 || rank > 3)
        return UL_ERR_ARG;
    uint8_t hb[UL_HEADER_BITS];
    if (header_bits(rank, container_len, control, hb) < 0)
        return UL_ERR_LENGTH;
    size_t nb = ul_body_bits(container_len), n = UL_HEADER_BITS + nb;
    if (cap < n)
        return UL_ERR_LENGTH;
    uint8_t coded[BODY_BYTES];
    if (ul_code_encode(rank, body, coded, nb) < 0)
        return UL_ERR_ARG;
    float s = 1.0f; /* the reference before the first bit; the first bit (1) keeps it */
    for (size_t k = 0; k < n; k++) {
        int bit = k < UL_HEADER_BITS ? hb[k] : ul_bit_get(coded, k - UL_HEADER_BITS);
        if (!bit)
            s = -s;
        sym[k] = s;
    }
    return (int)n;
}

/* Signs of rank r's header symbols when its last header symbol is +1. */
static void header_signs(int rank, size_t container_len, bool control, float h[UL_HEADER_BITS])
{
    uint8_t hb[UL_HEADER_BITS];
    header_bits(rank, container_len, control, hb);
    float s = 1.0f;
    for (int k = 0; k < UL_HEADER_BITS; k++) {
        if (!hb[k])
            s = -s;
        h[k] = s;
    }
    for (int k = 0; k < UL_HEADER_BITS; k++)
        h[k] *= s;
}

/* Metric of rank r's header when its last header symbol is +1: the known signs times the
 * LLRs (the opposite sign gives the negative). */
static float header_metric(int rank, size_t container_len, bool control, const float *z)
{
    float h[UL_HEADER_BITS], m = 0.0f;
    header_signs(rank, container_len, control, h);
    for (int k = 0; k < UL_HEADER_BITS; k++)
        m += h[k] * sanitize(z[k]);
    return m;
}

/* State index: bits 0-1 the code state (u[n-1] << 1 | u[n-2]), bit 2 + r the sign of
 * replica r's last symbol (1: negative). Decision bit of a state = u[n-2] of its
 * predecessor. path (may be NULL): the symbol signs of each replica given along the path,
 * header included (what the decoder believes was received, sign flips and all). */
typedef float path_t[3][UL_HEADER_BITS + UL_CODE_MAX_BITS];

static void traceback(const uint32_t *decision, size_t nbits, unsigned s, unsigned present,
                      uint8_t *out, path_t *path, size_t container_len, bool control)
{
    memset(out, 0, (nbits + 7) / 8);
    for (size_t n = nbits; n-- > 0;) {
        unsigned b = (s >> 1) & 1, u1 = s & 1;
        ul_bit_set(out, n, (int)b);
        if (path)
            for (int r = 0; r < 3; r++)
                (*path)[r][UL_HEADER_BITS + n] = ((s >> (2 + r)) & 1) ? -1.0f : 1.0f;
        unsigned u2 = (decision[n] >> s) & 1, cs = u1 << 1 | u2;
        unsigned flips = ~coded_bits(b, cs) & present & 7; /* bit 0 = reversal */
        s = cs | (((s >> 2) ^ flips) << 2);
    }
    if (path)
        for (int r = 0; r < 3; r++) {
            if (!(present >> r & 1))
                continue;
            float h[UL_HEADER_BITS], last = ((s >> (2 + r)) & 1) ? -1.0f : 1.0f;
            header_signs(r + 1, container_len, control, h);
            for (int k = 0; k < UL_HEADER_BITS; k++)
                (*path)[r][k] = h[k] * last;
        }
}

/* isi (may be NULL): per replica, the Ungerboeck term of matched-filter symbols whose
 * neighbours leak in (y_k = g (s_k + ρ (s_{k-1} + s_{k+1})) + noise correlated alike): the
 * metric of a step then also carries -isi[r] s_k s_{k-1}, isi[r] = 4 ρ |g|² / N0, which
 * only the previous sign, already in the state, decides. */
static int decode_list(const float *const sym[3], const float isi[3], size_t container_len,
                       bool control, uint8_t *out, size_t out_stride, int max_paths,
                       path_t *best_path)
{
    if (!sym || !out || max_paths < 1 || max_paths > UL_JOINT_MAX_PATHS)
        return UL_ERR_ARG;
    if (ul_ft_value(container_len, control, 1) == 0)
        return UL_ERR_LENGTH;
    size_t nb = ul_body_bits(container_len), bytes = (nb + 7) / 8;
    if (max_paths > 1 && out_stride < bytes)
        return UL_ERR_ARG;
    unsigned present = 0;
    for (int r = 0; r < 3; r++)
        present |= sym[r] ? 1u << r : 0;
    if (!present)
        return UL_ERR_ARG;

    float metric[NSTATES];
    for (unsigned s = 0; s < NSTATES; s++) {
        /* Code state 0; a missing replica's sign stays 0 (it never flips). */
        if ((s & 3) || ((s >> 2) & ~present)) {
            metric[s] = -INFINITY;
            continue;
        }
        float m = 0.0f;
        for (int r = 0; r < 3; r++)
            if (sym[r]) {
                float h = header_metric(r + 1, container_len, control, sym[r]);
                m += ((s >> (2 + r)) & 1) ? -h : h;
            }
        metric[s] = m;
    }

    uint32_t decision[UL_CODE_MAX_BITS];
    for (size_t n = 0; n < nb; n++) {
        float z[3] = {0, 0, 0};
        for (int r = 0; r < 3; r++)
            if (sym[r])
                z[r] = sanitize(sym[r][UL_HEADER_BITS + n]);
        float next[NSTATES];
        uint32_t dec = 0;
        float top = -INFINITY;
        for (unsigned sn = 0; sn < NSTATES; sn++) {
            unsigned b = (sn >> 1) & 1, u1 = sn & 1, signs = sn >> 2;
            if (signs & ~present) {
                next[sn] = -INFINITY;
                continue;
            }
            /* This step's metric depends only on the new signs. */
            float bm = 0.0f;
            for (int r = 0; r < 3; r++)
                if (present >> r & 1)
                    bm += ((signs >> r) & 1) ? -z[r] : z[r];
            float best = -INFINITY;
            unsigned best_u2 = 0;
            for (unsigned u2 = 0; u2 < 2; u2++) {
                unsigned cs = u1 << 1 | u2;
                unsigned flips = ~coded_bits(b, cs) & present & 7;
                unsigned s = cs | ((signs ^ flips) << 2);
                float m = metric[s];
                if (isi)
                    for (int r = 0; r < 3; r++)
                        if (present >> r & 1)
                            m += ((flips >> r) & 1) ? isi[r] : -isi[r];
                if (m > best) {
                    best = m;
                    best_u2 = u2;
                }
            }
            next[sn] = best == -INFINITY ? -INFINITY : best + bm;
            dec |= best_u2 << sn;
            if (next[sn] > top)
                top = next[sn];
        }
        decision[n] = dec;
        /* Keep the metrics near zero so float resolution does not degrade with length. */
        for (unsigned s = 0; s < NSTATES; s++)
            metric[s] = next[s] - top;
    }

    /* End states by decreasing metric; distinct bodies only (two sign states can carry
     * the same bits). */
    unsigned order[NSTATES];
    int nord = 0;
    for (unsigned s = 0; s < NSTATES; s++)
        if (metric[s] != -INFINITY)
            order[nord++] = s;
    for (int i = 1; i < nord; i++)
        for (int j = i; j > 0 && metric[order[j]] > metric[order[j - 1]]; j--) {
            unsigned t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int count = 0;
    for (int i = 0; i < nord && count < max_paths; i++) {
        uint8_t *dst = out + (size_t)count * out_stride;
        traceback(decision, nb, order[i], present, dst, i == 0 ? best_path : NULL, container_len,
                  control);
        bool dup = false;
        for (int j = 0; j < count && !dup; j++)
            dup = !memcmp(out + (size_t)j * out_stride, dst, bytes);
        if (!dup)
            count++;
    }
    return count;
}

int ul_joint_decode_list(const float *const sym[3], size_t container_len, bool control,
                         uint8_t *out, size_t out_stride, int max_paths)
{
    return decode_list(sym, NULL, container_len, control, out, out_stride, max_paths, NULL);
}

int ul_joint_decode_frame(const float *const sym[3], size_t container_len, bool control,
                          ul_frame_t *out)
{
    if (!out)
        return UL_ERR_ARG;
    uint8_t cand[UL_JOINT_CRC_PATHS][BODY_BYTES];
    int n =
        ul_joint_decode_list(sym, container_len, control, cand[0], BODY_BYTES, UL_JOINT_CRC_PATHS);
    if (n < 0)
        return n;
    return ul_frame_parse_candidates(cand[0], BODY_BYTES, n, container_len, control, out);
}

long ul_joint_align(const float complex *y, size_t n, size_t lo, size_t hi, int rank,
                    size_t container_len, bool control)
{
    return ul_joint_align_match(y, n, lo, hi, rank, container_len, control, NULL);
}

long ul_joint_align_match(const float complex *y, size_t n, size_t lo, size_t hi, int rank,
                          size_t container_len, bool control, double *match)
{
    if (match)
        *match = 0;
    if (!y || rank < 1 || rank > 3 || ul_ft_value(container_len, control, rank) == 0)
        return -1;
    size_t need = ul_joint_symbols(container_len);
    if (n < need)
        return -1;
    if (hi > n - need)
        hi = n - need;
    float h[UL_HEADER_BITS];
    header_signs(rank, container_len, control, h);
    long best_k = -1;
    double best = -1;
    for (size_t k = lo; k <= hi; k++) {
        double complex acc = 0;
        for (int i = 0; i < UL_HEADER_BITS; i++)
            acc += (double complex)y[k + (size_t)i] * h[i];
        double p = creal(acc) * creal(acc) + cimag(acc) * cimag(acc);
        if (p > best) {
            best = p;
            best_k = (long)k;
        }
    }
    if (match && best_k >= 0) {
        double e = 0;
        for (int i = 0; i < UL_HEADER_BITS; i++) {
            double complex v = y[(size_t)best_k + (size_t)i];
            e += creal(v) * creal(v) + cimag(v) * cimag(v);
        }
        *match = e > 0 ? best / (UL_HEADER_BITS * e) : 0;
    }
    return best_k;
}

/* ---- unknown phase: estimation and decision-directed iterations ---- */

/* Phase model of a replica's carrier after the caller's estimate: 2π (f k + d k²/2), f in
 * cycles per symbol, d in cycles per symbol². */
static inline double complex model_rot(double f, double d, size_t k)
{
    double kk = (double)k;
    return cexp(2.0 * M_PI * I * (f * kk + 0.5 * d * kk * kk));
}

/* |sum z_k e^{-j2π m (f k + d k²/2)}|², by recurrences (two complex products per term). */
static double chirp_power(const double complex *z, size_t n, double f, double d, double m)
{
    double complex acc = 0, w = 1;
    double complex step = cexp(-2.0 * M_PI * I * m * (f + 0.5 * d));
    double complex dstep = cexp(-2.0 * M_PI * I * m * d);
    for (size_t k = 0; k < n; k++) {
        acc += z[k] * w;
        w *= step;
        step *= dstep;
        if ((k & 63) == 63) { /* renormalise the rotators */
            w /= cabs(w);
            step /= cabs(step);
        }
    }
    return creal(acc) * creal(acc) + cimag(acc) * cimag(acc);
}

/* Residual frequency and drift of z_k = g e^{j2π(f k + d k²/2)} (+ noise): a grid over
 * fc ± fspan (a quarter of the main lobe's half-width apart) and dc ± dspan (steps that
 * move the end phase by a quarter cycle; at most ±16), the frequency refined by a
 * parabola at the best drift. With squared = true, z_k holds y_k² and the tone sits at
 * 2f, 2d (the blind squaring estimate: no symbol decisions needed, none of their errors).*/
static void find_fd(const double complex *z, size_t n, double fc, double fspan, double dc,
                    double dspan, bool squared, double *f_out, double *d_out)
{
    double m = squared ? 2.0 : 1.0, fstep = 0.25 / (double)n / m;
    double dstep = 0.5 / ((double)n * (double)n) / m;
    int nf = (int)ceil(fspan / fstep), nd = dspan > 0 ? (int)ceil(dspan / dstep) : 0;
    if (nf > 256)
        nf = 256;
    if (nd > 16)
        nd = 16;
    double best = -1, bf = fc, bd = dc;
    int bi = 0;
    for (int j = -nd; j <= nd; j++)
        for (int i = -nf; i <= nf; i++) {
            double f = fc + i * fstep, d = dc + j * dstep;
            double p = chirp_power(z, n, f, d, m);
            if (p > best) {
                best = p;
                bf = f;
                bd = d;
                bi = i;
            }
        }
    if (bi > -nf && bi < nf) {
        double a = chirp_power(z, n, bf - fstep, bd, m), c = chirp_power(z, n, bf + fstep, bd, m);
        double den = a - 2 * best + c;
        if (den < 0)
            bf += fstep * 0.5 * (a - c) / den;
    }
    *f_out = bf;
    *d_out = bd;
}

/* Fits g e^{j2π(f k + d k²/2)} to z_k = y_k s_k over k < n (modulation removed by the
 * symbol signs s): f and d searched around e's (fspan 0: kept), then g; the noise as the
 * residual power. With isi, the amplitude is fitted jointly with the neighbours' share ρ
 * (y_k ≈ g rot_k (s_k + ρ (s_{k-1} + s_{k+1})), least squares over both, ρ clipped to
 * [0, UL_JOINT_MAX_ISI]): the matched filter of a pulse with amplitude dips at the phase
 * reversals lets its neighbours in, and the trellis can use that (decode_list). */
static void fit_replica(const float complex *y, const float *s, size_t n, double fspan,
                        double dspan, bool isi, ul_joint_est_t *e)
{
    double complex z[UL_HEADER_BITS + UL_CODE_MAX_BITS] = {0};
    for (size_t k = 0; k < n; k++)
        z[k] = (double complex)y[k] * s[k];
    double f = e->freq_cyc_sym, d = e->drift_cyc_sym2;
    if (fspan > 0)
        find_fd(z, n, f, fspan, d, dspan, false, &f, &d);
    double complex g = 0, h = 0; /* y conj(rot) ≈ g s + h t, t = s_{k-1} + s_{k+1} */
    double rho = 0;
    if (isi && n > 2) {
        double ss = 0, st = 0, tt = 0;
        double complex vs = 0, vt = 0;
        for (size_t k = 0; k < n; k++) {
            double t = (k > 0 ? s[k - 1] : 0) + (k + 1 < n ? s[k + 1] : 0);
            double complex v = (double complex)y[k] * conj(model_rot(f, d, k));
            ss += (double)s[k] * s[k];
            st += (double)s[k] * t;
            tt += t * t;
            vs += v * s[k];
            vt += v * t;
        }
        double det = ss * tt - st * st;
        if (det > 1e-9 * ss * tt) {
            g = (vs * tt - vt * st) / det;
            h = (vt * ss - vs * st) / det;
            double g2 = creal(g * conj(g));
            rho = g2 > 0 ? creal(h * conj(g)) / g2 : 0;
        }
        if (!(rho > 0))
            rho = 0;
        if (rho > UL_JOINT_MAX_ISI)
            rho = UL_JOINT_MAX_ISI;
        /* g again with ρ fixed at the clipped value */
        double complex num = 0;
        double den = 0;
        for (size_t k = 0; k < n; k++) {
            double t = (k > 0 ? s[k - 1] : 0) + (k + 1 < n ? s[k + 1] : 0);
            double u = s[k] + rho * t;
            num += (double complex)y[k] * conj(model_rot(f, d, k)) * u;
            den += u * u;
        }
        g = den > 0 ? num / den : 0;
    } else {
        double complex acc = 0;
        for (size_t k = 0; k < n; k++)
            acc += z[k] * conj(model_rot(f, d, k));
        g = acc / (double)n;
    }
    double res = 0;
    for (size_t k = 0; k < n; k++) {
        double t = (k > 0 ? s[k - 1] : 0) + (k + 1 < n ? s[k + 1] : 0);
        double complex r = (double complex)y[k] - g * model_rot(f, d, k) * (s[k] + rho * t);
        res += creal(r) * creal(r) + cimag(r) * cimag(r);
    }
    e->amplitude = cabs(g);
    e->phase_rad = carg(g);
    e->freq_cyc_sym = f;
    e->drift_cyc_sym2 = d;
    e->noise_var = res / (double)(n > 2 ? n - 2 : 1);
    e->isi_rho = rho;
}

/* Symbol LLRs 4 Re(y conj(g_k)) / N0, g_k = |g| e^{j(arg g + 2π(f k + d k²/2))}. */
static void llrs_from(const float complex *y, size_t n, const ul_joint_est_t *e, float *z)
{
    double n0 = e->noise_var > 1e-30 ? e->noise_var : 1e-30;
    double complex g0 = e->amplitude * cexp(I * e->phase_rad);
    for (size_t k = 0; k < n; k++) {
        double complex g = g0 * model_rot(e->freq_cyc_sym, e->drift_cyc_sym2, k);
        z[k] = (float)(4.0 * creal((double complex)y[k] * conj(g)) / n0);
    }
}

/* The trellis's Ungerboeck weight for a replica, 4 ρ |g|² / N0 (decode_list). */
static float isi_term(const ul_joint_est_t *e)
{
    double n0 = e->noise_var > 1e-30 ? e->noise_var : 1e-30;
    return (float)(4.0 * e->isi_rho * e->amplitude * e->amplitude / n0);
}

int ul_joint_decode_iq(const float complex *const y[3], size_t container_len, bool control,
                       const ul_joint_iq_config_t *cfg, ul_frame_t *out, ul_joint_est_t est[3])
{
    if (!y || !out)
        return UL_ERR_ARG;
    if (ul_ft_value(container_len, control, 1) == 0)
        return UL_ERR_LENGTH;
    if (!y[0] && !y[1] && !y[2])
        return UL_ERR_ARG;
    int iterations = cfg && cfg->iterations ? cfg->iterations : UL_JOINT_DEFAULT_ITERATIONS;
    if (iterations < 0)
        iterations = 0;
    double fmax = cfg && cfg->max_freq_cyc_sym ? cfg->max_freq_cyc_sym : UL_JOINT_DEFAULT_MAX_FREQ;
    if (!(fmax < 0.05)) /* NaN, or wider than the symbol-spaced model can hold */
        fmax = 0.05;
    double dmax =
        cfg && cfg->max_drift_cyc_sym2 ? cfg->max_drift_cyc_sym2 : UL_JOINT_DEFAULT_MAX_DRIFT;
    if (!(dmax < 1e-3))
        dmax = 1e-3;
    size_t n = ul_joint_symbols(container_len);
    enum { NMAX = UL_HEADER_BITS + UL_CODE_MAX_BITS };
    float zbuf[3][NMAX], sref[3][NMAX];
    float isi[3] = {0, 0, 0}; /* the first decoding knows no ρ yet */
    const float *z[3] = {NULL, NULL, NULL};
    ul_joint_est_t e[3];
    memset(e, 0, sizeof e);
    uint8_t zero_body[BODY_BYTES] = {0};

    /* First estimates: the residual frequency from the squared symbols of the whole frame,
     * phase and amplitude from the known preamble + FT (the body's symbols are unknown),
     * the noise from the frame's power. */
    for (int r = 0; r < 3; r++) {
        if (!y[r])
            continue;
        for (size_t k = 0; k < n; k++) /* guard non-finite input: erasures */
            if (!isfinite(crealf(y[r][k])) || !isfinite(cimagf(y[r][k])))
                return UL_ERR_ARG;
        ul_joint_symbols_of(r + 1, zero_body, container_len, control, sref[r], NMAX);
        if (fmax > 0) {
            double complex y2[NMAX];
            for (size_t k = 0; k < n; k++)
                y2[k] = (double complex)y[r][k] * y[r][k];
            find_fd(y2, n, 0, fmax, 0, dmax > 0 ? dmax : 0, true, &e[r].freq_cyc_sym,
                    &e[r].drift_cyc_sym2);
        }
        fit_replica(y[r], sref[r], UL_HEADER_BITS, 0, 0, false, &e[r]);
        /* noise from the whole frame's power: E|y|² = |g|² + N0 */
        double p = 0;
        for (size_t k = 0; k < n; k++)
            p += crealf(y[r][k]) * crealf(y[r][k]) + cimagf(y[r][k]) * cimagf(y[r][k]);
        p /= (double)n;
        double a2 = e[r].amplitude * e[r].amplitude;
        e[r].noise_var = p - a2 > 0.05 * p ? p - a2 : 0.05 * p;
        llrs_from(y[r], n, &e[r], zbuf[r]);
        z[r] = zbuf[r];
    }

    int rc = UL_ERR_CRC;
    uint8_t cand[UL_JOINT_CRC_PATHS][BODY_BYTES];
    path_t path;
    for (int it = 0; it <= iterations; it++) {
        int nc = decode_list(z, isi, container_len, control, cand[0], BODY_BYTES,
                             UL_JOINT_CRC_PATHS, &path);
        if (nc < 0)
            return nc;
        rc = ul_frame_parse_candidates(cand[0], BODY_BYTES, nc, container_len, control, out);
        if (it == iterations)
            break;
        /* Re-estimate each replica from the symbols of the best path (decision directed).
         * Not from the best body re-encoded: one wrong bit there inverts every later
         * symbol of the re-encoded replica, while the path's own signs follow what was
         * received. */
        for (int r = 0; r < 3; r++) {
            if (!y[r])
                continue;
            /* around the current estimate: ±2 grid steps in frequency, the drift range
             * (a quarter of it after the first pass) */
            double fspan = fmax > 0 ? 0.5 / (double)n : 0;
            double dspan = dmax > 0 ? (it == 0 ? dmax : dmax / 4) : 0;
            fit_replica(y[r], path[r], n, fspan, dspan, true, &e[r]);
            isi[r] = isi_term(&e[r]);
            llrs_from(y[r], n, &e[r], zbuf[r]);
        }
        if (rc == 0) /* decoded: the estimates above are over the whole frame; done */
            break;
    }
    if (est)
        for (int r = 0; r < 3; r++)
            est[r] = e[r];
    return rc;
}
