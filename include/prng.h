/* prng: the project's one seeded pseudo-random generator, xoshiro256** seeded through
 * splitmix64 (Blackman & Vigna). Licence: MIT. No I/O, no global state.
 *
 * Every simulation, benchmark, test scene and the daemon's beacon offsets draw from a
 * prng_t they own, so a seed names one sequence on every machine and compiler. One rule
 * for callers: draw each number into a named variable, in a fixed order, never two draws
 * inside one argument list (`f(prng_uniform(r), prng_uniform(r))`): C leaves the order of
 * argument evaluation unspecified, so two compilers would build two different scenes.
 *
 * Not for keys or anything secret (keys come from the OS: getrandom()).
 */
#ifndef SIGFOX_PRNG_H
#define SIGFOX_PRNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} prng_t;

/* One splitmix64 step: advances *x and returns the next output. */
static inline uint64_t prng_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Seeds r; stream selects one of many independent sequences for the same seed (0 when
 * one is enough). */
static inline void prng_seed(prng_t *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = prng_splitmix64(&x);
}

static inline uint64_t prng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* 64 random bits. */
static inline uint64_t prng_next(prng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = prng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = prng_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1), 53 bits. */
static inline double prng_uniform(prng_t *r)
{
    return (double)(prng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [lo, hi). */
static inline double prng_range(prng_t *r, double lo, double hi)
{
    return lo + (hi - lo) * prng_uniform(r);
}

/* Uniform integer in [0, n) (n > 0), without modulo bias worth speaking of for n << 2^64. */
static inline uint64_t prng_below(prng_t *r, uint64_t n)
{
    return n ? prng_next(r) % n : 0;
}

/* Standard normal deviate (Box-Muller; uses two uniforms, drawn in this order). */
static inline double prng_gauss(prng_t *r)
{
    double u1 = prng_uniform(r);
    double u2 = prng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

/* Two independent standard normal deviates (Marsaglia's polar method). */
static inline void prng_normal2(prng_t *r, double *a, double *b)
{
    double u, v, q;
    do {
        u = (double)(int64_t)prng_next(r) * 0x1.0p-63;
        v = (double)(int64_t)prng_next(r) * 0x1.0p-63;
        q = u * u + v * v;
    } while (q >= 1.0 || q == 0.0);
    double m = sqrt(-2.0 * log(q) / q);
    *a = u * m;
    *b = v * m;
}

/* Exponential deviate of the given mean. */
static inline double prng_exp(prng_t *r, double mean)
{
    return -mean * log(1.0 - prng_uniform(r));
}

#endif
