// The single source of truth for every pointwise activation.
//
// Each activation is a functor templated on the compute type C (float for
// float32/float16/bfloat16 storage, double for float64) whose member templates
// take a value type V: a scalar C (CUDA, reference) or a SIMD vector of C (the
// CPU kernels, see core/simd.h). A functor provides
//
//   fwd(x)               the activation
//   bwd(g, s)            g * f'(x), from the saved tensor s (x or y = f(x), see kSaved)
//   dbwd(gg, g, s)       the derivative of bwd(g, s) with respect to s, times gg
//                        (bwd is linear in g, so its derivative in g is bwd(gg, s))
//
// and, when an in-place forward can still be differentiated from its output
// (kResultForm), bwd_result / dbwd_result taking y instead of x.
//
// Conditions are written so that NaN inputs take the same branch as in
// PyTorch's kernels. Where PyTorch's textbook formula loses precision or
// produces NaN from a finite or infinite input whose limit exists, these
// formulas keep precision and return the limit.
#pragma once

#include "core/mathlib.h"

namespace ta {

// Which tensor the out-of-place backward reads.
enum class Saved { Input, Output };

inline namespace TA_ISA {
namespace act {

using namespace ::ta::TA_ISA::simd;
namespace m = ::ta::TA_ISA::m;

// Defaults shared by the functors; each one overrides what differs.
struct Traits {
  static constexpr Saved kSaved = Saved::Input;
  // bwd_result / dbwd_result exist, so an in-place forward saves its output.
  static constexpr bool kResultForm = false;
  // dbwd is identically zero: the double backward needs neither g nor s.
  static constexpr bool kZeroSecond = false;
  // Output strides: TensorIterator's rule (layout preserved), or contiguous
  // for the ops whose PyTorch built-in always returns a contiguous tensor.
  static constexpr bool kContiguousOutput = false;
  // Parameter validation; returns an error message or nullptr.
  static const char* check(const double*) { return nullptr; }
  // Why an in-place forward with these parameters cannot be differentiated.
  static const char* inplace_error(const double*) { return nullptr; }
  // The values of a `str` parameter, nullptr-terminated; kernels receive the
  // index of the value.
  static constexpr const char* kChoices[1] = {nullptr};
  // A parameter that must lie in [0, largest finite value of the input's
  // dtype], which needs the dtype to check: its index (-1: none) and the name
  // PyTorch's message gives it.
  static constexpr int kRangeParam = -1;
  static constexpr const char* kRangeName = nullptr;
  // Lanes that the float vector code computes on a slower path, which the
  // CPU loops may defer and recompute in whole vectors (run_rare in
  // cpu/kernels_impl.h). An op that sets it offers rare(x), those lanes as
  // bits (lane j in bit j), and set_defer_rare(), after which its float
  // code leaves them unfinished.
  static constexpr bool kRareLanes = false;
  // Work per element relative to a cheap op: the CPU loops split the
  // elements between threads in chunks of ATen's grain size / kCost. With
  // 2 threads, one chunk of 32K elements of the ~1 ns/element ops (gelu,
  // mish, tanh, softplus) is 3-4 times the cost of starting a parallel
  // region, so those split from 8K elements; the cheaper ops keep ATen's
  // 32K, below which a second thread does not pay (measured: at 64K, 2
  // threads run relu 1.27x and mish 1.89x as fast as one).
  static constexpr int kCost = 1;
  // float16 / bfloat16 inputs have 65536 values: the forward, and the
  // backward from a saved input, may read f(x) and f'(x) from a table that
  // this functor's own float loops filled (ops.cpp), for the ops whose
  // arithmetic costs more per element than a table read. The backward must
  // then have the form g * d(x), d(x) = bwd(1, x), so that the table gives
  // the computed result bit for bit (tests/test_lookup_tables.py).
  static constexpr bool kLut = false;
};

// sigmoid(x) and sigmoid(-x), each accurate in both tails, from one exp.
template <class V>
TA_HD void sigmoid_pair(V x, V& s, V& sn) {
  using T = scalar_t<V>;
  V e = m::exp(-abs(x));
  V r = T(1) / (T(1) + e);
  V er = e * r;
  mask_t<V> pos = x >= T(0);
  s = where<V>(pos, r, er);
  sn = where<V>(pos, er, r);
}

// x * s where s -> 0 as x -> +-inf: the product at the infinite end is
// inf * 0 in floating point, but its limit is 0.
template <class V>
TA_HD V times_vanishing(V x, V s) {
  using T = scalar_t<V>;
  return where<V>(mand(isinf(x), s == T(0)), T(0), x * s);
}

// u / 6 for float u with |u| >= 2^-100 or u = +0 (NaN passes), correctly
// rounded without a division: q = u * RN(1/6), its residual u - 6q exactly
// (one fused multiply-add), and q + residual * RN(1/6) rounded once. An
// exhaustive test of every float32 finds this equal to u / 6 except where the
// quotient is subnormal (there the residual is not exact) and for u = -0
// (which gives +0); it holds no infinities. A vector division is the
// slowest instruction in the loops that use this (several cycles per
// vector on some CPUs, where these loops are otherwise bound by memory).
// Float64, builds without a fused multiply-add, and the callers' other
// cases keep the division.
template <class V>
TA_HD V div6_bounded(V u) {
  using T = scalar_t<V>;
  if constexpr (sizeof(T) == 4 && TA_HAS_FMA) {
    const T inv = T(1) / T(6);
    const V q = u * inv;
    return madd(madd(-q, T(6), u), inv, q);
  } else {
    return u / T(6);
  }
}

// ---------------------------------------------------------------- sigmoid
template <class C>
struct Sigmoid : Traits {
  static constexpr Saved kSaved = Saved::Output;
  // Forward only: the backward reads the saved output, not a table's input.
  static constexpr bool kLut = true;
  TA_HD explicit Sigmoid(const double*) {}
  template <class V> TA_HD V fwd(V x) const { return m::sigmoid(x); }
  // y (1 - y): 1 - y is exact for y >= 1/2, so no precision is lost near 1.
  template <class V> TA_HD V bwd(V g, V y) const { return g * ((C(1) - y) * y); }
  template <class V> TA_HD V dbwd(V gg, V g, V y) const { return gg * g * (C(1) - C(2) * y); }
  // g * f'(x) from the input, for callers that have it (the gated units):
  // sigmoid(-x) keeps the precision that 1 - y loses as y -> 1.
  template <class V> TA_HD V bwd_input(V g, V x) const {
    V s, sn, sc;
    if constexpr (sizeof(C) == 4) return g * m::sigmoid_prod_f32(x);
    m::sigmoid_scaled(x, V{}, s, sn, sc);
    return g * ((s * sn) * sc);
  }
};

// ------------------------------------------------------------------- tanh
template <class C>
struct Tanh : Traits {
  static constexpr int kCost = 4;
  static constexpr bool kLut = true;
  static constexpr Saved kSaved = Saved::Output;
  TA_HD explicit Tanh(const double*) {}
  template <class V> TA_HD V fwd(V x) const { return m::tanh(x); }
  // (1 - y)(1 + y) instead of 1 - y*y, which cancels as |y| -> 1.
  template <class V> TA_HD V bwd(V g, V y) const { return g * ((C(1) - y) * (C(1) + y)); }
  template <class V> TA_HD V dbwd(V gg, V g, V y) const { return C(-2) * gg * g * y; }
};

// ------------------------------------------------------------------- relu
template <class C>
struct Relu : Traits {
  static constexpr Saved kSaved = Saved::Output;
  static constexpr bool kZeroSecond = true;
  TA_HD explicit Relu(const double*) {}
  template <class V> TA_HD V fwd(V x) const { return where<V>(x < C(0), C(0), x); }
  // relu'(0) = 0, and a NaN output passes the gradient, as threshold_backward.
  template <class V> TA_HD V bwd(V g, V y) const { return where<V>(y <= C(0), C(0), g); }
  template <class V> TA_HD V dbwd(V, V, V) const { return splat<V>(C(0)); }
};

// -------------------------------------------------------------- leaky_relu
template <class C>
struct LeakyRelu : Traits {
  static constexpr bool kResultForm = true;
  static constexpr bool kZeroSecond = true;
  C slope;
  TA_HD explicit LeakyRelu(const double* p) : slope(C(p[0])) {}
  static const char* inplace_error(const double* p) {
    return p[0] < 0 ? "In-place leakyReLu backward calculation is triggered with a negative slope which is "
                      "not supported. This is caused by calling in-place forward function with a negative "
                      "slope, please call out-of-place version instead."
                    : nullptr;
  }
  template <class V> TA_HD V fwd(V x) const { return where<V>(x > C(0), x, x * slope); }
  // leaky_relu'(0) = negative_slope.
  template <class V> TA_HD V bwd(V g, V x) const { return where<V>(x > C(0), g, g * slope); }
  template <class V> TA_HD V dbwd(V, V, V) const { return splat<V>(C(0)); }
  // With slope >= 0, y > 0 exactly when x > 0.
  template <class V> TA_HD V bwd_result(V g, V y) const { return bwd(g, y); }
  template <class V> TA_HD V dbwd_result(V gg, V g, V y) const { return dbwd(gg, g, y); }
};

// -------------------------------------------------------- elu, selu, celu
// scale * (x > 0 ? x : alpha * (exp(x * input_scale) - 1)), PyTorch's ELU
// parameterisation. expm1 keeps full precision just below zero.
template <class C>
struct EluBase : Traits {
  static constexpr bool kResultForm = true;
  static constexpr bool kLut = true;
  C pos, neg, in;  // scale, alpha * scale, input_scale
  TA_HD EluBase(double alpha, double scale, double input_scale)
      : pos(C(scale)), neg(C(alpha * scale)), in(C(input_scale)) {}
  template <class V> TA_HD V fwd(V x) const {
    return where<V>(x > C(0), x * pos, m::expm1(x * in) * neg);
  }
  // A NaN input takes the positive branch, as in PyTorch's elu_backward.
  template <class V> TA_HD V bwd(V g, V x) const {
    return g * where<V>(x <= C(0), (in * neg) * m::exp(x * in), splat<V>(pos));
  }
  template <class V> TA_HD V dbwd(V gg, V g, V x) const {
    return where<V>(x <= C(0), gg * g * (in * in * neg) * m::exp(x * in), C(0));
  }
  // y + alpha*scale = alpha*scale*exp(x*input_scale) on the negative side.
  template <class V> TA_HD V bwd_result(V g, V y) const {
    return where<V>(y <= C(0), g * in * (y + neg), g * pos);
  }
  template <class V> TA_HD V dbwd_result(V gg, V g, V y) const {
    return where<V>(y <= C(0), gg * g * in, C(0));
  }
};

inline const char* elu_inplace_error(double alpha) {
  return alpha < 0 ? "In-place elu backward calculation is triggered with a negative slope which is not "
                     "supported. This is caused by calling in-place forward function with a negative slope, "
                     "please call out-of-place version instead."
                   : nullptr;
}

template <class C>
struct Elu : EluBase<C> {
  TA_HD explicit Elu(const double* p) : EluBase<C>(p[0], 1.0, 1.0) {}
  static const char* inplace_error(const double* p) { return elu_inplace_error(p[0]); }
};

constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
template <class C>
struct Selu : EluBase<C> {
  TA_HD explicit Selu(const double*) : EluBase<C>(kSeluAlpha, kSeluScale, 1.0) {}
};

template <class C>
struct Celu : EluBase<C> {
  TA_HD explicit Celu(const double* p) : EluBase<C>(p[0], 1.0, 1.0 / p[0]) {}
  static const char* check(const double* p) {
    return p[0] == 0 ? "ZeroDivisionError: alpha cannot be 0 for CELU" : nullptr;
  }
  static const char* inplace_error(const double* p) { return elu_inplace_error(p[0]); }
};

// --------------------------------------------------------------- softplus
// log(1 + exp(beta x)) / beta, linear above the threshold.
template <class C>
struct Softplus : Traits {
  static constexpr int kCost = 4;
  static constexpr bool kLut = true;
  C beta, threshold;
  TA_HD explicit Softplus(const double* p) : beta(C(p[0])), threshold(C(p[1])) {}
  template <class V> TA_HD V fwd(V x) const {
    V z = x * beta;
    return where<V>(z > threshold, x, m::softplus(z) / beta);
  }
  template <class V> TA_HD V bwd(V g, V x) const {
    V z = x * beta;
    return g * where<V>(z > threshold, C(1), m::sigmoid(z));
  }
  template <class V> TA_HD V dbwd(V gg, V g, V x) const {
    V z = x * beta, s, sn;
    sigmoid_pair(z, s, sn);
    return where<V>(z > threshold, C(0), gg * g * beta * s * sn);
  }
};

// ------------------------------------------------------------ silu, swish
// x * sigmoid(beta x). silu is beta = 1.
template <class C>
struct SwishCore {
  // beta x, with beta = 0 giving 0 at x = +-inf too (0 * inf is NaN), where
  // swish is x / 2. A NaN x stays NaN.
  template <class V> TA_HD static V scaled(V x, C beta) {
    return beta == C(0) ? where<V>(isinf(x), C(0), x * beta) : x * beta;
  }
  // The rounding error of beta x (with beta = beta + beta_lo, the caller's
  // double): far left swish(x) ~ x e^(beta x), so a rounded beta x costs
  // |beta x| / 2 ulps (40 at beta x = -80); carried as a pair it costs none.
  // Zero where beta x or x is infinite, which the sigmoid settles alone.
  template <class V> TA_HD static V scaled_lo(V x, V bx, C beta, C beta_lo) {
    return where<V>(isinf(x + bx), C(0), madd<V>(x, beta_lo, madd<V>(x, beta, -bx)));
  }
  // sigmoid comes scaled far left (see m::sigmoid_scaled), where x sigmoid(x)
  // is a normal number but sigmoid(x) alone would not be. kExact: beta x is
  // exact (silu), no pair needed.
  template <bool kExact, class V> TA_HD static V fwd(V x, C beta, C beta_lo) {
    V bx = scaled(x, beta), s, sn, sc;
    V bl = kExact ? V{} : scaled_lo(x, bx, beta, beta_lo);
    if constexpr (sizeof(C) == 4) return m::mul_sigmoid_f32<!kExact>(x, bx, bl);
    m::sigmoid_scaled(bx, bl, s, sn, sc);
    return times_vanishing(x, s) * sc;
  }
  // s (1 + beta x (1 - s)), with 1 - s taken as sigmoid(-beta x) so that it
  // keeps its precision when s rounds to 1. The limits are 1 at beta x = +inf
  // and 0 at -inf.
  template <bool kExact, class V> TA_HD static V bwd(V g, V x, C beta, C beta_lo) {
    // s and sn each within about an ulp (1 + e^-|x| carried exactly): the sum
    // 1 + beta x sn cancels up to the root of f' near beta x = -1.28, and
    // amplifies their errors.
    V bx = scaled(x, beta), s, sn, sc;
    V bl = kExact ? V{} : scaled_lo(x, bx, beta, beta_lo);
    if constexpr (sizeof(C) == 4) {
      // The factor beta x capped (NaN passes): at +inf sn is 0, and the
      // limit 1 needs beta x sn = 0, not inf * 0. At -inf the float form
      // returns 0 itself (its far-left fill).
      return g * m::sigmoid_1p_f32<!kExact, !kExact>(lt_pick<V>(splat<V>(C(0x1p100)), bx), bx, bl, bl);
    }
    m::sigmoid_scaled(bx, bl, s, sn, sc);
    V d = (s * madd(bl, sn, madd(bx, sn, C(1)))) * sc;
    return g * where<V>(isinf(bx), where<V>(bx > C(0), C(1), C(0)), d);
  }
  template <class V> TA_HD static V dbwd(V gg, V g, V x, C beta) {
    V bx = scaled(x, beta), s, sn;
    sigmoid_pair(bx, s, sn);
    V d2 = beta * s * sn * madd(bx, sn - s, C(2));
    return gg * g * where<V>(isinf(bx), C(0), d2);
  }
};

template <class C>
struct Silu : Traits {
  static constexpr bool kLut = true;
  TA_HD explicit Silu(const double*) {}
  template <class V> TA_HD V fwd(V x) const { return SwishCore<C>::template fwd<true>(x, C(1), C(0)); }
  template <class V> TA_HD V bwd(V g, V x) const { return SwishCore<C>::template bwd<true>(g, x, C(1), C(0)); }
  template <class V> TA_HD V dbwd(V gg, V g, V x) const { return SwishCore<C>::dbwd(gg, g, x, C(1)); }
};

template <class C>
struct Swish : Traits {
  static constexpr bool kLut = true;
  C beta, beta_lo;
  TA_HD explicit Swish(const double* p) : beta(C(p[0])), beta_lo(C(p[0] - double(C(p[0])))) {}
  template <class V> TA_HD V fwd(V x) const { return SwishCore<C>::template fwd<false>(x, beta, beta_lo); }
  template <class V> TA_HD V bwd(V g, V x) const { return SwishCore<C>::template bwd<false>(g, x, beta, beta_lo); }
  template <class V> TA_HD V dbwd(V gg, V g, V x) const { return SwishCore<C>::dbwd(gg, g, x, beta); }
};

// ------------------------------------------------------------------- gelu
// approximate = 'none':  x * Phi(x)
// approximate = 'tanh':  x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
//                        = x * sigmoid(2u), which does not cancel for u << 0.
template <class C>
struct Gelu : Traits {
  static constexpr int kCost = 4;
  static constexpr bool kLut = true;
  static constexpr const char* kChoices[3] = {"none", "tanh", nullptr};
  bool tanh_mode;
  TA_HD explicit Gelu(const double* p) : tanh_mode(p[0] != 0) {}
  static constexpr C kBeta = C(0.79788456080286535587989211986876);  // sqrt(2/pi)
  static constexpr C kKappa = C(0.044715);

  // u2 = 2 sqrt(2/pi) (x + 0.044715 x^3) as a pair uh + ul accurate to far
  // below an ulp: sigmoid(u2) has relative condition number |u2| for u2 << 0,
  // so the 2-3 roundings of the plain formula cost up to ~|u2| ulps (135 at
  // x = -9 in float). x^3 and the products with the constants (themselves
  // pairs) are formed error free. x must be clamped (clampx).
  template <class V> TA_HD static void u2_pair(V x, V& uh, V& ul) {
    C c1h, c1l, kh, kl;
    if constexpr (sizeof(C) == 4) {
      c1h = 0x1.988454p+0f, c1l = -0x1.857936p-25f, kh = 0x1.6e4e26p-5f, kl = 0x1.a9003ep-30f;
    } else {
      c1h = 0x1.9884533d43651p+0, c1l = -0x1.cbc0d30ebfd15p-54;
      kh = 0x1.6e4e26d4801f7p-5, kl = 0x1.441355475a31ap-59;
    }
    V x2h, x2l, x3h, x3l, th, tl, vh, vl, ph, pl;
    two_prod<V>(x, x, x2h, x2l);
    two_prod<V>(x2h, x, x3h, x3l);
    x3l = madd<V>(x2l, x, x3l);
    two_prod<V>(x3h, splat<V>(kh), th, tl);
    tl = madd<V>(x3h, kl, madd<V>(x3l, kh, tl));
    two_sum<V>(x, th, vh, vl);
    vl += tl;
    two_prod<V>(vh, splat<V>(c1h), ph, pl);
    pl = madd<V>(vh, c1l, madd<V>(vl, c1h, pl));
    fast_two_sum<V>(ph, pl, uh, ul);
  }

  // Beyond this |x| both forms are x or 0 to double precision; clamping keeps
  // u, u' and x^3 finite so that no inf * 0 appears in the derivatives.
  template <class V> TA_HD static V clampx(V x) {
    const C lim = C(64);
    return where<V>(x > lim, lim, where<V>(x < -lim, -lim, x));
  }

  // The tanh form from the logistic of the pair u2; float reads tables over
  // |x| < 6 and calls these for the other lanes (m::gelu_pw_f32).
  template <class V> TA_HD static V tanh_fwd(V x) {
    V uh, ul, s, sn, sc;
    u2_pair(clampx(x), uh, ul);
    if constexpr (sizeof(C) == 4) return m::mul_sigmoid_f32<true>(x, uh, ul);
    m::sigmoid_scaled(uh, ul, s, sn, sc);
    return times_vanishing(x, s) * sc;
  }
  template <class V> TA_HD static V tanh_deriv(V x) {
    V xc = clampx(x);
    V x2 = xc * xc;
    V du2 = C(2) * kBeta * madd(x2, C(3) * kKappa, C(1));
    V uh, ul, s, sn, sc;
    u2_pair(xc, uh, ul);
    if constexpr (sizeof(C) == 4) return m::sigmoid_1p_f32<true>(xc * du2, uh, ul);
    m::sigmoid_scaled(uh, ul, s, sn, sc);
    return (s * madd(xc * du2, sn, C(1))) * sc;
  }

  // The float forms read tables that stop at x = -6 (see Traits).
  static constexpr bool kRareLanes = sizeof(C) == 4;
  bool defer_rare = false;
  TA_HD void set_defer_rare() { defer_rare = true; }
  template <class V> TA_HD static uint32_t rare(V x) { return m::gelu_far_bits(x); }

  template <class V> TA_HD V fwd(V x) const {
    if (!tanh_mode) return m::x_normcdf(x, defer_rare);
    if constexpr (sizeof(C) == 4) {
      return m::gelu_pw_f32<true, false>(x, [](V xs) TA_LAMBDA { return tanh_fwd(xs); }, defer_rare);
    }
    return tanh_fwd(x);
  }

  // f'(x)
  template <class V> TA_HD V deriv(V x) const {
    if (tanh_mode) {
      if constexpr (sizeof(C) == 4) {
        return m::gelu_pw_f32<true, true>(x, [](V xs) TA_LAMBDA { return tanh_deriv(xs); }, defer_rare);
      }
      return tanh_deriv(x);
    }
    if constexpr (sizeof(C) == 4) return m::gelu_deriv_f32(x, defer_rare);
    V xc = clampx(x);
    V d = madd(xc, m::normpdf(xc), m::normcdf(xc));
    // Far left, Phi(x) and phi(x) are subnormal while f'(x) = x phi(x) +
    // Phi(x) is not: there f'(x) = x phi(x) (1 - R(z)/z), z = -x, R the
    // Mills ratio Phi(-z)/phi(z), whose asymptotic series
    // R(z)/z = w - w^2 + 3w^3 - 15w^4 + ... (w = 1/z^2) is exact to far below
    // an ulp for z >= 12.5 (float) or 37 (double) with eight terms; the
    // product with e^(-x^2/2 - log sqrt(2 pi)) is rounded once.
    const C deep_at = sizeof(C) == 4 ? C(-12.5) : C(-37);
    mask_t<V> deep = xc < deep_at;
    if (any(deep)) {
      V w = C(1) / (xc * xc);
      V p = w * (C(1) - w * (C(1) - w * (C(3) - w * (C(15) - w * (C(105) - w * (C(945) - w * (C(10395) - w * C(135135))))))));
      C khi, klo;
      if constexpr (sizeof(C) == 4) {
        khi = m::coef::f32_ln_sqrt2pi_hi, klo = m::coef::f32_ln_sqrt2pi_lo;
      } else {
        khi = m::coef::f64_ln_sqrt2pi_hi, klo = m::coef::f64_ln_sqrt2pi_lo;
      }
      V h, l, eh, el;
      two_prod<V>(xc, xc, h, l);
      two_sum<V>(h * C(-0.5), splat<V>(-khi), eh, el);
      el += l * C(-0.5) - klo;
      d = where<V>(deep, m::mul_exp(xc * (C(1) - p), eh, el), d);
    }
    return d;
  }
  template <class V> TA_HD V bwd(V g, V x) const { return g * deriv(x); }

  template <class V> TA_HD V dbwd(V gg, V g, V x) const {
    V xc = clampx(x), d2;
    if (tanh_mode) {
      // h = s + x s sn u2', with s = sigmoid(u2):
      // h' = s sn (2 u2' + x (u2'^2 (sn - s) + u2''))
      V x2 = xc * xc;
      V u2 = C(2) * kBeta * madd(kKappa * x2, xc, xc);
      V du2 = C(2) * kBeta * madd(x2, C(3) * kKappa, C(1));
      V ddu2 = C(12) * kBeta * kKappa * xc;
      V s, sn;
      sigmoid_pair(u2, s, sn);
      d2 = s * sn * (C(2) * du2 + xc * madd(du2 * du2, sn - s, ddu2));
    } else {
      d2 = m::normpdf(xc) * (C(2) - xc * xc);
    }
    return gg * g * d2;
  }
};

// ------------------------------------------------------------------- mish
// x * tanh(softplus(x)). With e = exp(-|x|):
//   x <= 0: tanh(softplus(x)) = n / (n + 2),             n = e (e + 2)
//   x >  0: tanh(softplus(x)) = (1 + 2e) / (1 + 2e + 2e^2)
// Both give t and 1 - t without cancellation and without overflow.
template <class C>
struct Mish : Traits {
  static constexpr int kCost = 4;
  static constexpr bool kLut = true;
  TA_HD explicit Mish(const double*) {}
  // kScaled: e^-|x|, hence t and s, come scaled by 1 / sc far left (see
  // m::exp_neg_abs_scaled), where x t is normal but t alone would not be.
  template <bool kScaled = false, class V>
  TA_HD static void parts(V x, V& t, V& one_minus_t, V& s, V& sn, V& sc) {
    V e;
    if constexpr (kScaled) e = m::exp_neg_abs_scaled(x, sc); else e = m::exp(-abs(x));
    mask_t<V> pos = x > C(0);
    V n = e * (e + C(2));
    V a = madd(e, C(2), C(1));
    V b = C(2) * e * e;
    V num = where<V>(pos, a, n);
    V rest = where<V>(pos, b, splat<V>(C(2)));
    V den = num + rest;
    // t by its own division: t * x is the forward, and num * (1 / den)
    // would add a rounding to the ~3 it already carries.
    t = num / den;
    one_minus_t = rest * (C(1) / den);
    V r = C(1) / (C(1) + e);
    s = where<V>(x >= C(0), r, e * r);
    sn = where<V>(x >= C(0), e * r, r);
  }
  template <class V> TA_HD V fwd(V x) const {
    V t, omt, s, sn, sc;
    parts<true>(x, t, omt, s, sn, sc);
    return times_vanishing(x, t) * sc;
  }
  // t + x s (1 - t^2)
  template <class V> TA_HD V bwd(V g, V x) const {
    V t, omt, s, sn, sc;
    parts<true>(x, t, omt, s, sn, sc);
    V d = madd(x * s, omt * (C(1) + t), t) * sc;
    return g * where<V>(isinf(x), where<V>(x > C(0), C(1), C(0)), d);
  }
  // (1 - t^2) s (2 + x (1 - s) - 2 x s t)
  template <class V> TA_HD V dbwd(V gg, V g, V x) const {
    V t, omt, s, sn, sc;
    parts(x, t, omt, s, sn, sc);
    V d2 = omt * (C(1) + t) * s * madd(x, sn - C(2) * s * t, C(2));
    return gg * g * where<V>(isinf(x), C(0), d2);
  }
};

// ------------------------------------------------------ hardtanh, relu6
template <class C>
struct HardtanhBase : Traits {
  static constexpr bool kResultForm = true;
  static constexpr bool kZeroSecond = true;
  C lo, hi;
  TA_HD HardtanhBase(double l, double h) : lo(C(l)), hi(C(h)) {}
  // NaN passes through, as clamp does.
  template <class V> TA_HD V fwd(V x) const {
    return where<V>(x < lo, lo, where<V>(x > hi, hi, x));
  }
  // Zero at and beyond the bounds; a NaN input passes the gradient, as in
  // PyTorch's hardtanh_backward.
  template <class V> TA_HD V bwd(V g, V x) const {
    return where<V>(mor(x <= lo, x >= hi), C(0), g);
  }
  template <class V> TA_HD V dbwd(V, V, V) const { return splat<V>(C(0)); }
  // The output lies strictly inside (lo, hi) exactly when the input does.
  template <class V> TA_HD V bwd_result(V g, V y) const { return bwd(g, y); }
  template <class V> TA_HD V dbwd_result(V gg, V g, V y) const { return dbwd(gg, g, y); }
};

template <class C>
struct Hardtanh : HardtanhBase<C> {
  TA_HD explicit Hardtanh(const double* p) : HardtanhBase<C>(p[0], p[1]) {}
  static const char* check(const double* p) {
    // PyTorch clamps with NaN bounds and returns NaN everywhere; refuse them.
    if (p[0] != p[0] || p[1] != p[1]) return "min_val and max_val must not be NaN";
    return p[0] > p[1] ? "min_val cannot be greater than max_val" : nullptr;
  }
};

template <class C>
struct Relu6 : HardtanhBase<C> {
  TA_HD explicit Relu6(const double*) : HardtanhBase<C>(0.0, 6.0) {}
};

// ------------------------------------------------ hardsigmoid, hardswish
template <class C>
struct Hardsigmoid : Traits {
  static constexpr bool kZeroSecond = true;
  TA_HD explicit Hardsigmoid(const double*) {}
  template <class V> TA_HD static V relu6_shift(V x) {
    V t = x + C(3);
    return where<V>(t < C(0), C(0), where<V>(t > C(6), C(6), t));
  }
  // relu6_shift(x) is 0, NaN or at least ulp(3).
  template <class V> TA_HD V fwd(V x) const { return div6_bounded(relu6_shift(x)); }
  template <class V> TA_HD V bwd(V g, V x) const {
    return where<V>(mand(x > C(-3), x < C(3)), g / C(6), C(0));
  }
  template <class V> TA_HD V dbwd(V, V, V) const { return splat<V>(C(0)); }
};

template <class C>
struct Hardswish : Traits {
  TA_HD explicit Hardswish(const double*) {}
  // x (x + 3) / 6 on (-3, 3), x above (no overflow from x * 6 / 6), and
  // x * 0 below, which keeps PyTorch's signed zeros and maps -inf to 0.
  template <class V> TA_HD V fwd(V x) const {
    V mid = x * (x + C(3)) / C(6);
    V lo = times_vanishing(x, splat<V>(C(0)));
    return where<V>(x >= C(3), x, where<V>(x <= C(-3), lo, mid));
  }
  // hardswish'(-3) = 0 and hardswish'(3) = 1 (the outer pieces own the
  // kinks), and a NaN input passes the gradient, as in PyTorch.
  template <class V> TA_HD V bwd(V g, V x) const {
    // (2x + 3) / 6 rather than x / 3 + 1/2: 2x + 3 is exact near the zero at
    // x = -3/2, where the sum would cancel.
    return where<V>(x <= C(-3), C(0), where<V>(x < C(3), g * ((C(2) * x + C(3)) / C(6)), g));
  }
  template <class V> TA_HD V dbwd(V gg, V g, V x) const {
    return where<V>(mand(x > C(-3), x < C(3)), gg * g / C(3), C(0));
  }
};

// ------------------------------------------------------------- logsigmoid
template <class C>
struct LogSigmoid : Traits {
  static constexpr int kCost = 4;
  static constexpr bool kLut = true;
  // PyTorch's log_sigmoid allocates a contiguous output.
  static constexpr bool kContiguousOutput = true;
  TA_HD explicit LogSigmoid(const double*) {}
  template <class V> TA_HD V fwd(V x) const { return m::log_sigmoid(x); }
  template <class V> TA_HD V bwd(V g, V x) const { return g * m::sigmoid(-x); }
  template <class V> TA_HD V dbwd(V gg, V g, V x) const {
    V s, sn;
    sigmoid_pair(x, s, sn);
    return -(gg * g * (s * sn));
  }
};

// --------------------------------------------------------------- softsign
template <class C>
struct Softsign : Traits {
  TA_HD explicit Softsign(const double*) {}
  template <class V> TA_HD V fwd(V x) const {
    // inf / inf at the ends; the limits are +-1.
    return where<V>(isinf(x), copysign(splat<V>(C(1)), x), x / (C(1) + abs(x)));
  }
  template <class V> TA_HD V bwd(V g, V x) const {
    V d = C(1) + abs(x);
    return g / (d * d);
  }
  // -2 sgn(x) / (1 + |x|)^3, with sgn(0) = 0.
  template <class V> TA_HD V dbwd(V gg, V g, V x) const {
    V d = C(1) + abs(x);
    V sg = where<V>(x == C(0), C(0), copysign(splat<V>(C(2)), x));
    return -(gg * g * sg / (d * d * d));
  }
};

// ------------------------------------------------------------- tanhshrink
template <class C>
struct Tanhshrink : Traits {
  static constexpr int kCost = 4;
  static constexpr bool kLut = true;
  TA_HD explicit Tanhshrink(const double*) {}
  template <class V> TA_HD V fwd(V x) const { return m::tanhshrink(x); }
  // 1 - tanh'(x) = tanh(x)^2, which does not cancel near 0.
  template <class V> TA_HD V bwd(V g, V x) const {
    V t = m::tanh(x);
    return g * (t * t);
  }
  template <class V> TA_HD V dbwd(V gg, V g, V x) const {
    V t = m::tanh(x);
    return gg * g * (C(2) * t * ((C(1) - t) * (C(1) + t)));
  }
};

// ------------------------------------------------ softshrink, hardshrink
template <class C>
struct ShrinkBase : Traits {
  static constexpr bool kZeroSecond = true;
  C lambd;
  TA_HD explicit ShrinkBase(const double* p) : lambd(C(p[0])) {}
  // Zero on [-lambd, lambd]; a NaN input passes the gradient, as in PyTorch.
  template <class V> TA_HD V bwd(V g, V x) const {
    return where<V>(mand(x >= -lambd, x <= lambd), C(0), g);
  }
  template <class V> TA_HD V dbwd(V, V, V) const { return splat<V>(C(0)); }
};

template <class C>
struct Softshrink : ShrinkBase<C> {
  TA_HD explicit Softshrink(const double* p) : ShrinkBase<C>(p) {}
  using ShrinkBase<C>::lambd;
  // PyTorch refuses a negative, NaN or out-of-dtype lambd for softshrink
  // (not for hardshrink).
  static constexpr int kRangeParam = 0;
  static constexpr const char* kRangeName = "lambda";
  template <class V> TA_HD V fwd(V x) const {
    V r = where<V>(x > lambd, x - lambd, where<V>(x < -lambd, x + lambd, C(0)));
    return where<V>(isnan(x), x, r);
  }
};

template <class C>
struct Hardshrink : ShrinkBase<C> {
  TA_HD explicit Hardshrink(const double* p) : ShrinkBase<C>(p) {}
  using ShrinkBase<C>::lambd;
  template <class V> TA_HD V fwd(V x) const {
    return where<V>(mand(x >= -lambd, x <= lambd), C(0), x);
  }
};

// -------------------------------------------------------------- threshold
// x > threshold ? x : value. The output cannot tell which side x was on when
// value > threshold, so an in-place threshold saves a copy of its input.
template <class C>
struct Threshold : Traits {
  static constexpr bool kZeroSecond = true;
  C th, value;
  TA_HD explicit Threshold(const double* p) : th(C(p[0])), value(C(p[1])) {}
  template <class V> TA_HD V fwd(V x) const { return where<V>(x <= th, value, x); }
  template <class V> TA_HD V bwd(V g, V x) const { return where<V>(x <= th, C(0), g); }
  template <class V> TA_HD V dbwd(V, V, V) const { return splat<V>(C(0)); }
};

// ------------------------------------------------------- parametric ops
// f(x, w) with a learnable parameter w per channel (dim 1) or shared.
// Besides fwd they provide
//   bwd(g, x, w)               -> {g f_x, g f_w}          (f_w summed per channel later)
//   dbwd(ggx, ggw, g, x, w)    -> {d/dg, d/dx, d/dw} of ggx . g f_x + ggw . g f_w
struct ParamTraits {
  static const char* check(const double*) { return nullptr; }
  static constexpr bool kRareLanes = false;
};

// prelu: x > 0 ? x : w x, with prelu'(0) = w as in PyTorch.
template <class C>
struct Prelu : ParamTraits {
  TA_HD explicit Prelu(const double*) {}
  template <class V> TA_HD V fwd(V x, V w) const { return where<V>(x > C(0), x, w * x); }
  template <class V> TA_HD Outs<V, 2> bwd(V g, V x, V w) const {
    mask_t<V> pos = x > C(0);
    return {{where<V>(pos, g, w * g), where<V>(pos, C(0), x * g)}};
  }
  template <class V> TA_HD Outs<V, 3> dbwd(V ggx, V ggw, V g, V x, V w) const {
    mask_t<V> pos = x > C(0);
    return {{where<V>(pos, ggx, madd(w, ggx, x * ggw)), where<V>(pos, C(0), g * ggw), where<V>(pos, C(0), g * ggx)}};
  }
};

// swish with a learnable beta: x sigmoid(beta x). With s = sigmoid(beta x),
// sn = sigmoid(-beta x) = 1 - s and q = s sn:
//   f_x  = s (1 + beta x sn)        f_b  = x^2 q
//   f_xx = beta q (2 + beta x (sn - s))
//   f_xb = x q (2 + beta x (sn - s))
//   f_bb = x^3 q (sn - s)
template <class C>
struct SwishLearnable : ParamTraits {
  TA_HD explicit SwishLearnable(const double*) {}
  // b x, 0 where b = 0 and x = +-inf (0 * inf is NaN).
  template <class V> TA_HD static V scaled(V x, V b) { return where<V>(mand(b == C(0), isinf(x)), C(0), x * b); }
  template <class V> TA_HD V fwd(V x, V b) const {
    V bx = scaled(x, b), s, sn, sc;
    if constexpr (sizeof(C) == 4) return m::mul_sigmoid_f32<false>(x, bx, V{});
    m::sigmoid_scaled(bx, V{}, s, sn, sc);
    return times_vanishing(x, s) * sc;
  }
  template <class V> TA_HD Outs<V, 2> bwd(V g, V x, V b) const {
    V bx = scaled(x, b), s, sn;
    sigmoid_pair(bx, s, sn);
    V fx = where<V>(isinf(bx), where<V>(bx > C(0), C(1), C(0)), s * madd(bx, sn, C(1)));
    // x (x q), not x^2 q: x^2 overflows for |x| > 2^64 (float) while q =
    // s sn vanishes faster than x^2 grows, and inf * 0 would give NaN.
    V fb = where<V>(isinf(bx), C(0), x * (x * (s * sn)));
    return {{g * fx, g * fb}};
  }
  template <class V> TA_HD Outs<V, 3> dbwd(V ggx, V ggb, V g, V x, V b) const {
    V bx = scaled(x, b), s, sn;
    sigmoid_pair(bx, s, sn);
    V q = s * sn;
    V k = madd(bx, sn - s, C(2));
    V fx = s * madd(bx, sn, C(1));
    V fb = x * (x * q);
    V fxx = b * q * k, fxb = x * q * k, fbb = x * (x * (x * q)) * (sn - s);
    mask_t<V> inf = isinf(bx);
    fx = where<V>(inf, where<V>(bx > C(0), C(1), C(0)), fx);
    fb = where<V>(inf, C(0), fb);
    fxx = where<V>(inf, C(0), fxx);
    fxb = where<V>(inf, C(0), fxb);
    fbb = where<V>(inf, C(0), fbb);
    return {{madd(ggx, fx, ggb * fb), g * madd(ggx, fxx, ggb * fxb), g * madd(ggx, fxb, ggb * fbb)}};
  }
};

}  // namespace act
}  // namespace TA_ISA
}  // namespace ta
