/* selectk: the k-th smallest of an array of floats in O(n) on average (Wirth's selection),
 * for medians and percentiles of noise estimates. Licence: MIT. No I/O, header only.
 * Reorders the array. NaNs do not hang it (every comparison with one is false) but make
 * the result meaningless: callers keep them out. */
#ifndef SIGFOX_SELECTK_H
#define SIGFOX_SELECTK_H

#include <stddef.h>

/* k-th smallest of a[0..n), n >= 1, k < n. */
static inline float selectk(float *a, size_t n, size_t k)
{
    long l = 0, m = (long)n - 1, kk = (long)k;
    while (l < m) {
        float x = a[kk];
        long i = l, j = m;
        do {
            while (a[i] < x)
                i++;
            while (x < a[j])
                j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < kk)
            l = i;
        if (kk < i)
            m = j;
    }
    return a[kk];
}

#endif
