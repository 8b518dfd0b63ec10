/* clang-compat: forced into every object of the fuzz build (-include). glibc's complex.h
 * defines CMPLXF only for GCC >= 4.7, and clang says it is GCC 4.2; clang has the builtin
 * it expands to. No header is included here: a system header pulled in before a source's
 * own `#define _GNU_SOURCE` would fix the feature set without it (strptime, strcasestr
 * undeclared, their pointers truncated to int). Licence: MIT. */
#ifndef CMPLXF
#define CMPLXF(x, y) __builtin_complex((float)(x), (float)(y))
#endif
#ifndef CMPLX
#define CMPLX(x, y) __builtin_complex((double)(x), (double)(y))
#endif
