// Elementary functions for the activations, generic over scalar and vector V
// (see simd.h). PLACEHOLDER: lane-by-lane calls into the C library, to be
// replaced by vectorized implementations with stated accuracy.
#pragma once

#include "simd.h"

namespace ta {
inline namespace TA_ISA {
namespace m {

using namespace ::ta::TA_ISA::simd;

#define TA_LIBM_UNARY(name, fexpr, dexpr)                                  \
  template <class V>                                                       \
  TA_HD V name(V x) {                                                      \
    using T = scalar_t<V>;                                                 \
    return map_lanes(x, [](T v) -> T {                                     \
      if constexpr (sizeof(T) == 4) return fexpr; else return dexpr;       \
    });                                                                    \
  }

TA_LIBM_UNARY(exp, __builtin_expf(v), __builtin_exp(v))
TA_LIBM_UNARY(expm1, __builtin_expm1f(v), __builtin_expm1(v))
TA_LIBM_UNARY(log, __builtin_logf(v), __builtin_log(v))
TA_LIBM_UNARY(log1p, __builtin_log1pf(v), __builtin_log1p(v))
TA_LIBM_UNARY(tanh, __builtin_tanhf(v), __builtin_tanh(v))
TA_LIBM_UNARY(erf, __builtin_erff(v), __builtin_erf(v))
TA_LIBM_UNARY(erfc, __builtin_erfcf(v), __builtin_erfc(v))
#undef TA_LIBM_UNARY

// 1 / (1 + exp(-x)), accurate in both tails.
template <class V>
TA_HD V sigmoid(V x) {
  using T = scalar_t<V>;
  V e = exp(-abs(x));
  V r = T(1) / (T(1) + e);
  return where<V>(x >= T(0), r, e * r);
}

// log(1 + exp(x)).
template <class V>
TA_HD V softplus(V x) {
  using T = scalar_t<V>;
  return max_nan(x, splat<V>(T(0))) + log1p(exp(-abs(x)));
}

// log(sigmoid(x)) = -softplus(-x).
template <class V>
TA_HD V log_sigmoid(V x) { return -softplus(-x); }

// Standard normal CDF.
template <class V>
TA_HD V normcdf(V x) {
  using T = scalar_t<V>;
  return T(0.5) * erfc(x * T(-0.70710678118654752440));
}

// Standard normal density.
template <class V>
TA_HD V normpdf(V x) {
  using T = scalar_t<V>;
  return exp(T(-0.5) * x * x) * T(0.39894228040143267794);
}

// x - tanh(x).
template <class V>
TA_HD V tanhshrink(V x) { return x - tanh(x); }

}  // namespace m
}  // namespace TA_ISA
}  // namespace ta
