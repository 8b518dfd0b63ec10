/* clang-compat: forced into every object of the fuzz build (-include). glibc's complex.h
 * defines CMPLXF only for GCC >= 4.7, and clang says it is GCC 4.2; clang has the builtin
 * it expands to. Licence: MIT. */
#include <complex.h>
#ifndef CMPLXF
#define CMPLXF(x, y) __builtin_complex((float)(x), (float)(y))
#endif
#ifndef CMPLX
#define CMPLX(x, y) __builtin_complex((double)(x), (double)(y))
#endif
