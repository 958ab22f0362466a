// AVX-512 (F, BW, VL, DQ) + FMA + F16C build, chosen at run time on CPUs
// that have them. The target is set before any include (see kernels_AVX2.cpp).
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#define TA_ISA AVX512
#define TA_TARGET_AVX512 1
#include "kernels_impl.h"
#include "rows_impl.h"
