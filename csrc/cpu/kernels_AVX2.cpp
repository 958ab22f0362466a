// AVX2 + FMA + F16C build, chosen at run time on CPUs that have them. The
// target is set before any include so that every function in this file,
// inlined library code included, is compiled for it.
#pragma GCC target("avx2,fma,f16c")
#define TA_ISA AVX2
#define TA_TARGET_AVX2 1
#include "kernels_impl.h"
#include "rows_impl.h"
