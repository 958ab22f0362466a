// Elementary functions for the activations, generic over scalar and vector V
// (see simd.h).
//
// float: own algorithms, evaluated entirely in float arithmetic and branch
// free across lanes: argument reduction, minimax polynomials fitted by
// tools/fit_mathlib.py (tables in mathlib_coeffs.h), and error-free
// transformations (two_prod / two_sum) wherever a rounding would otherwise be
// amplified. tests/native/mathlib_accuracy.cpp measures every function
// against a long double reference over the whole float range; the bounds it
// enforces are listed there (all <= 2 ulp where the result is a normal
// float). Denormal results underflow gradually, rounded once.
//
// double: the basic functions go lane by lane through the C library (about
// 1 ulp); the compositions are arranged so that no rounding inside them gets
// amplified (see each function).
//
// Special values follow C99 Annex F: NaN in gives NaN out, infinities give the
// limits, odd functions keep the sign of zero, overflow gives inf, and no
// formula is allowed to produce inf * 0 or inf / inf on the way.
//
// Public functions, all templates over V:
//   exp expm1 log log1p tanh erf erfc sigmoid softplus log_sigmoid
//   normcdf (standard normal CDF Phi), normpdf (its density phi),
//   tanhshrink (x - tanh x).
#pragma once

#include "mathlib_coeffs.h"
#include "simd.h"

namespace ta {
inline namespace TA_ISA {
namespace m {

using namespace ::ta::TA_ISA::simd;

namespace detail {

template <class V> using I = ivec_t<V>;

template <class V>
TA_HD V inf() { return splat<V>(static_cast<scalar_t<V>>(__builtin_inf())); }
template <class V>
TA_HD V qnan() { return splat<V>(static_cast<scalar_t<V>>(__builtin_nan(""))); }

template <class V>
TA_HD I<V> iwhere(mask_t<V> m, I<V> a, I<V> b) { return m ? a : b; }

// min(x, hi) that lets NaN through.
template <class V>
TA_HD V cap(V x, scalar_t<V> hi) { return where<V>(x > splat<V>(hi), splat<V>(hi), x); }

// y * 2^n in two steps, so that a result in the denormal range is rounded only
// once (by the second multiply) and 2^n itself need not be representable.
// Valid for |n| <= 252 (float) / 2044 (double).
template <class V>
TA_HD V ldexp2(V y, I<V> n) {
  I<V> n1 = n >> 1;
  I<V> n2 = n - n1;
  return (y * exp2i<V>(n1)) * exp2i<V>(n2);
}

// ================================================================= float ===
// ln 2 = kLn2Hi + kLn2Lo. kLn2Hi has 15 significant bits, so n * kLn2Hi is
// exact for |n| < 2^9, and x - n * kLn2Hi is then exact by Sterbenz's lemma.
constexpr float kLn2Hi = 0x1.62e4p-1f;
constexpr float kLn2Lo = 0x1.7f7d1cp-20f;
constexpr float kLog2e = 0x1.715476p+0f;
// Adding 1.5 * 2^23 rounds |v| < 2^22 to an integer, which then sits in the
// low mantissa bits: n is read from there, so no float -> int conversion of a
// possibly-NaN lane ever happens.
constexpr float kRound = 0x1.8p23f;

// xh + xl = n ln2 + r (+ rlo) with |r| <= ln2/2 (+ a few ulp). |xh| < 177,
// xl a small correction. rlo (optional) is the rounding error of r.
template <class V>
TA_HD V exp_reduce_f(V xh, V xl, I<V>& n, V* rlo = nullptr) {
  V k = madd<V>(xh, kLog2e, kRound);
  n = as_int(k) - as_int(splat<V>(kRound));
  V nf = k - kRound;
  V rh = xh - nf * kLn2Hi;  // exact
  V c = xl - nf * kLn2Lo;
  V r = rh + c;
  if (rlo) *rlo = (rh - r) + c;
  return r;
}

// e^(xh + xl) = (s + tail) * 2^n with s = 1 + r rounded and tail small: the
// value is not rounded to one float yet, so callers round once, after
// combining it with whatever multiplies it.
template <class V>
struct ExpParts {
  V s, tail;
  I<V> n;
};

template <class V>
TA_HD ExpParts<V> exp_parts_f(V xh, V xl) {
  ExpParts<V> p;
  V rlo;
  V r = exp_reduce_f(xh, xl, p.n, &rlo);
  V q = (r * r) * coef::f32_exp_p(r);  // e^r = 1 + r + q
  p.s = 1.0f + r;
  V se = (1.0f - p.s) + r;              // exact: |r| < 1
  p.tail = se + (q + rlo);
  return p;
}

// e^x for x in [-104, 89] or NaN; e^89 overflows to inf through the scaling
// and e^-104 rounds to 0.
template <class V>
TA_HD V exp_clamped_f(V x) {
  ExpParts<V> p = exp_parts_f(x, V{});
  return ldexp2<V>(p.s + p.tail, p.n);
}

// The same as hi + lo, hi = exp_clamped_f(x) and lo its rounding error (lo
// is exact while e^x is normal; in the denormal range only hi is meaningful,
// and its own rounding dominates there anyway).
template <class V>
TA_HD V exp_hl_f(V x, V& lo) {
  ExpParts<V> p = exp_parts_f(x, V{});
  V mh, ml;
  fast_two_sum<V>(p.s, p.tail, mh, ml);
  I<V> n1 = p.n >> 1;
  I<V> n2 = p.n - n1;
  V s1 = exp2i<V>(n1), s2 = exp2i<V>(n2);
  lo = (ml * s1) * s2;
  return (mh * s1) * s2;
}

// e^(sh + sl), gradually underflowing.
template <class V>
TA_HD V exp2sum_f(V sh, V sl) {
  ExpParts<V> p = exp_parts_f(sh, sl);
  return ldexp2<V>(p.s + p.tail, p.n);
}

// (Rh + Rl) e^(sh + sl) / d, gradually underflowing: the product is rounded
// once, the division once more, and the scaling (which may land in the
// denormal range) comes last.
template <class V>
TA_HD V scaled_exp_f(V sh, V sl, V Rh, V Rl, V d) {
  ExpParts<V> p = exp_parts_f(sh, sl);
  V num = madd_acc<V>(Rh, p.s, madd<V>(Rh, p.tail, Rl * p.s));
  return ldexp2<V>(num / d, p.n);
}

// log(2^ef * (1 + F + Fe)) for |F| <= sqrt(2) - 1 (plus slack), ef integer
// valued, Fe a tiny correction to F (absent for log). log1p(F) = F + F^2 P(F),
// and log1p(F + Fe) = log1p(F) + Fe (1 - F + F^2) to far below an ulp.
// ef*ln2_hi + F is summed error free, so only the final addition rounds at
// the result's scale.
template <bool kWithFe, class V>
TA_HD V log_assemble_f(V ef, V F, V Fe) {
  V tail = (F * F) * coef::f32_log1p_p(F);
  if constexpr (kWithFe) tail = madd<V>(Fe, madd<V>(F, F, 1.0f - F), tail);
  V hi, lo;
  fast_two_sum<V>(ef * kLn2Hi, F, hi, lo);  // |ef ln2| >= |F| unless ef == 0
  return hi + (lo + madd<V>(ef, kLn2Lo, tail));
}

// u = 2^e * m with m in [sqrt(1/2), sqrt(2)), u positive normal.
template <class V>
TA_HD V log_split_f(V u, I<V>& e) {
  const I<V> off = as_int(splat<V>(0x1.6a09e6p-1f));
  I<V> ix = as_int(u) - off;
  e = ix >> 23;
  return as_fp<V>((ix & isplat<I<V>>(0x7fffff)) + off);
}

// log1p(x + xl) for x > -1 (or NaN), xl a tiny correction to x; no
// special-value handling.
template <class V>
TA_HD V log1p_core_f(V x, V xl) {
  V u, c;
  two_sum<V>(splat<V>(1.0f), x, u, c);  // 1 + x = u + c exactly
  c += xl;
  I<V> e;
  V m = log_split_f(u, e);
  // (1 + x) / 2^e = (m - 1) + c / 2^e, m - 1 exact. The scale is clamped to
  // stay a normal float; that only happens for u >= 2^126, where c is
  // negligible. m - 1 is 0 or a multiple of 2^-24 > |c / 2^e|, as
  // fast_two_sum needs.
  I<V> ne = -e;
  ne = iwhere<V>(ne < isplat<I<V>>(-126), isplat<I<V>>(-126), ne);
  V F, Fe;
  fast_two_sum<V>(m - 1.0f, c * exp2i<V>(ne), F, Fe);
  return log_assemble_f<true>(to_fp<V>(e), F, Fe);
}

// erfc(a) for a >= 0 or NaN: e^(-a^2) * erfcx(a). a^2 is formed exactly
// (two_prod), because exp(-a^2) turns an absolute error d in a^2 into a
// relative error d of the result, and d = ulp(a^2)/2 would be ~a^2 ulp.
// erfcx comes from four fitted pieces; in the last erfcx(a) = Q(1/a^2)/a.
// The table value is kept as hi + lo until multiplied by the exponential.
template <class V>
TA_HD V erfc_pos_f(V a) {
  using namespace coef;
  a = cap(a, kErfcB4);  // erfc there is far below the smallest denormal
  auto in0 = a < splat<V>(kErfcB1);
  auto in1 = a < splat<V>(kErfcB2);
  auto in2 = a < splat<V>(kErfcB3);
  V s = 1.0f / (a * a);
  V v = where<V>(in0, a - kErfcC0, where<V>(in1, a - kErfcC1, where<V>(in2, a - kErfcC2, s)));
  V Rl;
  V Rh = f32_erfcx_pw(v, in0, in1, in2, Rl);
  V h, l;
  two_prod<V>(a, a, h, l);
  return scaled_exp_f(-h, -l, Rh, Rl, where<V>(in2, splat<V>(1.0f), a));
}

// Phi(-z) for z >= 0 or NaN: e^(-z^2/2) * G(z), G fitted directly in z (so
// z / sqrt(2) is never rounded) and z^2 / 2 formed exactly.
template <class V>
TA_HD V ncdf_lower_f(V z) {
  using namespace coef;
  z = cap(z, kNcdfB4);
  auto in0 = z < splat<V>(kNcdfB1);
  auto in1 = z < splat<V>(kNcdfB2);
  auto in2 = z < splat<V>(kNcdfB3);
  V s = 1.0f / (z * z);
  V v = where<V>(in0, z - kNcdfC0, where<V>(in1, z - kNcdfC1, where<V>(in2, z - kNcdfC2, s)));
  V Gl;
  V Gh = f32_ncdf_pw(v, in0, in1, in2, Gl);
  V h, l;
  two_prod<V>(z, z, h, l);
  return scaled_exp_f(h * -0.5f, l * -0.5f, Gh, Gl, where<V>(in2, splat<V>(1.0f), z));
}

// num / (1 + E + El) for 0 <= E <= 1, El a tiny correction to E, num = 1 or
// E + El, with 1 + E carried exactly: rounding 1 + E alone can cost a full
// ulp of the quotient. The division is corrected with its exact remainder;
// the correction needs 1/(1 + E) only roughly, and that is q itself
// (num = 1) or 1 - q (num = E).
template <class V>
TA_HD V div_one_plus(V E, V El, mask_t<V> num_is_E) {
  using T = scalar_t<V>;
  V d, de;
  fast_two_sum<V>(splat<V>(T(1)), E, d, de);
  de += El;
  V num = where<V>(num_is_E, E, splat<V>(T(1)));
  V q = num / d;
  V p, pe;
  two_prod<V>(q, d, p, pe);
  V rem = ((num - p) - pe) + where<V>(num_is_E, El, splat<V>(T(0)));  // num - q d
  V rcp = where<V>(num_is_E, T(1) - q, q);
  return madd<V>(madd<V>(-q, de, rem), rcp, q);
}

// 1 - tanh(a) = 2 e^-2a / (1 + e^-2a) for a >= 0 or NaN. Past a = 9.1 it is
// below half an ulp of 1 and of any a - 1, so a is capped there.
template <class V>
TA_HD V one_minus_tanh_f(V a) {
  V El;
  V E = exp_hl_f(cap(a, 9.1f) * -2.0f, El);
  return 2.0f * div_one_plus(E, El, E == E);
}

// ================================================================ double ===
#if defined(TA_DEVICE_CODE)
#define TA_LIBM_D(fn) ::fn
#else
#define TA_LIBM_D(fn) __builtin_##fn
#endif
#define TA_LANES_D(name, fn)                                                  \
  template <class V>                                                          \
  TA_HD V name(V x) {                                                         \
    return map_lanes(x, [](double v) -> double { return TA_LIBM_D(fn)(v); }); \
  }
TA_LANES_D(exp_d, exp)
TA_LANES_D(expm1_d, expm1)
TA_LANES_D(log_d, log)
TA_LANES_D(log1p_d, log1p)
TA_LANES_D(tanh_d, tanh)
TA_LANES_D(erf_d, erf)
TA_LANES_D(erfc_d, erfc)
#undef TA_LANES_D
#undef TA_LIBM_D

// 1/sqrt(2) and log(sqrt(2 pi)) as double pairs.
constexpr double kRsqrt2Hi = 0x1.6a09e667f3bcdp-1;
constexpr double kRsqrt2Lo = -0x1.bdd3413b26456p-55;
constexpr double kLnSqrt2piHi = 0x1.d67f1c864beb5p-1;
constexpr double kLnSqrt2piLo = -0x1.f2b5b8f5d28e7p-55;

template <class V>
TA_HD V one_minus_tanh_d(V a) {
  V E = exp_d(cap(a, 20.0) * -2.0);
  return 2.0 * div_one_plus(E, V{}, E == E);
}

}  // namespace detail

// ============================================================ public API ===

// e^x. float: |error| < 1 ulp.
template <class V>
TA_HD V exp(V x) {
  if constexpr (sizeof(scalar_t<V>) == 4) {
    // Clamp so n stays small; e^89 still overflows to inf through the
    // scaling and e^-104 still rounds to 0.
    V xc = detail::cap(x, 89.0f);
    xc = where<V>(xc < splat<V>(-104.0f), splat<V>(-104.0f), xc);
    return detail::exp_clamped_f(xc);
  } else {
    return detail::exp_d(x);
  }
}

// e^x - 1.
template <class V>
TA_HD V expm1(V x) {
  if constexpr (sizeof(scalar_t<V>) == 4) {
    using namespace detail;
    // Below -30 the result is -1 in float; above 89 it overflows anyway.
    V xc = cap(x, 89.0f);
    xc = where<V>(xc < splat<V>(-30.0f), splat<V>(-30.0f), xc);
    I<V> n;
    V rlo;
    V r = exp_reduce_f(xc, V{}, n, &rlo);
    // expm1(r) = r + q; this polynomial is fitted to expm1's relative error.
    V q = (r * r) * coef::f32_expm1_p(r);
    // e^x - 1 = (t - 1) + t r + t (q + rlo), t = 2^n: t r is exact and
    // (t - 1) + t r is summed error free, so only the last addition rounds.
    // n = 128 (x > 88.37) would overflow t: use 2^127 and double at the end.
    I<V> top = iwhere<V>(n > isplat<I<V>>(127), isplat<I<V>>(1), isplat<I<V>>(0));
    V t = exp2i<V>(n - top);
    V tm1, e1, s, e2;
    two_sum<V>(t, splat<V>(-1.0f), tm1, e1);  // t - 1 is inexact for n > 24 or n < -24
    two_sum<V>(tm1, t * r, s, e2);
    V res = s + madd<V>(t, q + rlo, e1 + e2);
    res = res * exp2i<V>(top);
    // expm1(+-0) = +-0 (the sum above would give +0 for -0).
    return where<V>(x == splat<V>(0.0f), x, res);
  } else {
    return detail::expm1_d(x);
  }
}

// Natural logarithm.
template <class V>
TA_HD V log(V x) {
  if constexpr (sizeof(scalar_t<V>) == 4) {
    using namespace detail;
    // Denormals: scale into the normal range first.
    auto tiny = x < splat<V>(0x1p-126f);
    V xs = where<V>(tiny, x * 0x1p23f, x);
    I<V> e;
    V m = log_split_f(xs, e);
    V ef = to_fp<V>(e) - where<V>(tiny, splat<V>(23.0f), splat<V>(0.0f));
    V res = log_assemble_f<false>(ef, m - 1.0f, V{});
    res = where<V>(x == inf<V>(), x, res);
    res = where<V>(x == splat<V>(0.0f), -inf<V>(), res);
    return where<V>(mnot(x >= splat<V>(0.0f)), qnan<V>(), res);  // x < 0 or NaN
  } else {
    return detail::log_d(x);
  }
}

// log(1 + x).
template <class V>
TA_HD V log1p(V x) {
  if constexpr (sizeof(scalar_t<V>) == 4) {
    using namespace detail;
    V res = log1p_core_f(x, V{});
    res = where<V>(x == inf<V>(), x, res);
    res = where<V>(x == splat<V>(0.0f), x, res);  // keeps -0
    res = where<V>(x == splat<V>(-1.0f), -inf<V>(), res);
    return where<V>(mnot(x >= splat<V>(-1.0f)), qnan<V>(), res);
  } else {
    return detail::log1p_d(x);
  }
}

// Hyperbolic tangent.
template <class V>
TA_HD V tanh(V x) {
  if constexpr (sizeof(scalar_t<V>) == 4) {
    using namespace detail;
    V a = abs(x);
    V t = a * a;
    V small = madd<V>(a * t, coef::f32_tanh_p(t), a);  // a + a^3 P(a^2)
    V big = 1.0f - one_minus_tanh_f(a);
    return copysign(where<V>(a < splat<V>(coef::kTanhPolyMax), small, big), x);
  } else {
    return detail::tanh_d(x);
  }
}

// x - tanh(x). The subtraction cancels for |x| up to ~2 (x^3/3 from two
// numbers of size x), so:
//  float, |x| < 1: x^3/3 + x^5 P(x^2) with x^3 formed exactly and 1/3 as a
//    float pair; the fitted correction is at most 30% of the result.
//  double, |x| < 1: Pade form x^3 N(x^2)/Q(x^2) (positive coefficients, so
//    neither polynomial cancels), with the dominant constant terms added and
//    the quotient corrected error free.
//  |x| >= 1: (|x| - 1) + (1 - tanh|x|): |x| - 1 is exact, and the second term,
//    computed with 1 + e^-2|x| carried exactly, is below 1/4 of the result
//    at x = 1 and shrinks fast.
template <class V>
TA_HD V tanhshrink(V x) {
  using T = scalar_t<V>;
  V a = abs(x);
  V t = a * a;
  // Where a^3 approaches the denormal range its low part (cl below) would
  // underflow first: form a^3 from a scaled a and undo the scaling at the end,
  // where a single multiply rounds a denormal result once.
  constexpr T kTiny = sizeof(T) == 4 ? T(0x1p-25f) : T(0x1p-300);
  constexpr T kUp = sizeof(T) == 4 ? T(0x1p24f) : T(0x1p300);
  constexpr T kDown = sizeof(T) == 4 ? T(0x1p-72f) : T(0x1p-900);
  auto tiny = a < splat<V>(kTiny);
  V as = where<V>(tiny, a * kUp, a);
  V th, tl, ch, cl;
  two_prod<V>(as, as, th, tl);
  two_prod<V>(as, th, ch, cl);
  cl = madd<V>(as, tl, cl);  // as^3 = ch + cl to ~2^-48 relative
  V small, big;
  if constexpr (sizeof(T) == 4) {
    using namespace coef;
    V w = madd<V>(t, f32_tanhshrink_p(t), f32_third_lo);  // 1/3 - (1/3)_hi + t P
    small = madd_acc<V>(ch, f32_third_hi, madd<V>(ch, w, cl * f32_third_hi));
    big = (a - T(1)) + detail::one_minus_tanh_f(a);
  } else {
    using namespace coef;
    V Nh, Nl, Qh, Ql, u, ue;
    two_prod<V>(t, f64_tshrink_num1(t), u, ue);
    two_sum<V>(splat<V>(f64_tshrink_num0), u, Nh, Nl);
    Nl += ue;
    two_prod<V>(t, f64_tshrink_den1(t), u, ue);
    two_sum<V>(splat<V>(f64_tshrink_den0), u, Qh, Ql);
    Ql += ue;
    // w = (Nh + Nl) / (Qh + Ql): one division, then the exact remainder.
    V rcp = T(1) / Qh;
    V w = Nh * rcp;
    V p, pe;
    two_prod<V>(w, Qh, p, pe);
    V rem = ((Nh - p) - pe) + madd<V>(-w, Ql, Nl);
    w = madd<V>(rem, rcp, w);
    small = madd<V>(ch, w, cl * w);
    big = (a - T(1)) + detail::one_minus_tanh_d(a);
  }
  small = small * where<V>(tiny, splat<V>(kDown), splat<V>(T(1)));
  return copysign(where<V>(a < splat<V>(T(coef::kTshrinkPolyMax)), small, big), x);
}

// Error function.
template <class V>
TA_HD V erf(V x) {
  if constexpr (sizeof(scalar_t<V>) == 4) {
    using namespace detail;
    V a = abs(x);
    V t = a * a;
    // a (2/sqrt(pi)) + a^3 P(a^2), with 2/sqrt(pi) applied as hi + lo.
    V p = madd<V>(t, coef::f32_erf_p(t), coef::f32_two_over_sqrtpi_lo);
    V small = madd_acc<V>(a, coef::f32_two_over_sqrtpi_hi, a * p);
    // Past 1, 1 - erfc: erfc <= 0.16 there, so its error shrinks by >= 5x.
    V big = 1.0f - erfc_pos_f(cap(a, 4.0f));
    return copysign(where<V>(a < splat<V>(coef::kErfPolyMax), small, big), x);
  } else {
    return detail::erf_d(x);
  }
}

// Complementary error function.
template <class V>
TA_HD V erfc(V x) {
  if constexpr (sizeof(scalar_t<V>) == 4) {
    V q = detail::erfc_pos_f(abs(x));
    return where<V>(x < splat<V>(0.0f), 2.0f - q, q);
  } else {
    return detail::erfc_d(x);
  }
}

// Standard normal CDF Phi(x) = erfc(-x / sqrt(2)) / 2.
template <class V>
TA_HD V normcdf(V x) {
  using T = scalar_t<V>;
  if constexpr (sizeof(T) == 4) {
    V q = detail::ncdf_lower_f(abs(x));
    return where<V>(x < splat<V>(0.0f), q, 1.0f - q);
  } else {
    using namespace detail;
    // Upper half: Phi = 1 - erfc(u)/2 with u = x/sqrt(2) rounded; the rounding
    // moves erfc(u) by ~2u^2 erfc(u) ulp, which is < 1/2 ulp of Phi >= 1/2.
    // Lower half: u = |x|/sqrt(2) = uh + ul exactly enough, and
    //   erfc(uh + ul) = erfc(uh) (1 - ul h(uh)),  h(u) = 2/(sqrt(pi) erfcx(u)).
    // The correction is at most ~u^2 2^-52 relative, so h is only needed to a
    // few digits: u + sqrt(u^2 + 2) matches h at infinity to O(u^-3) and is
    // within 25% at 0, where the correction is negligible anyway.
    V a = cap(abs(x), 40.0);  // Phi(-40) is far below the smallest denormal
    V uh, ul;
    two_prod<V>(a, splat<V>(kRsqrt2Hi), uh, ul);
    ul = madd<V>(a, kRsqrt2Lo, ul);
    V E = erfc_d(uh);
    V h = uh + sqrt(madd<V>(uh, uh, 2.0));
    V lower = 0.5 * madd<V>(-E * ul, h, E);
    V upper = 1.0 - 0.5 * erfc_d(x * kRsqrt2Hi);
    return where<V>(x < splat<V>(0.0), lower, upper);
  }
}

// Standard normal density e^(-x^2/2) / sqrt(2 pi), as one exponential of
// -x^2/2 - log(sqrt(2 pi)) with the exponent carried exactly (x^2 by
// two_prod), so only the exponential itself contributes error.
template <class V>
TA_HD V normpdf(V x) {
  using T = scalar_t<V>;
  if constexpr (sizeof(T) == 4) {
    using namespace detail;
    V z = cap(abs(x), 15.0f);  // phi(15) is below the smallest denormal
    V h, l;
    two_prod<V>(z, z, h, l);
    V s, e;
    two_sum<V>(h * -0.5f, splat<V>(-coef::f32_ln_sqrt2pi_hi), s, e);
    V lo = e + (l * -0.5f - coef::f32_ln_sqrt2pi_lo);
    return exp2sum_f(s, lo);
  } else {
    using namespace detail;
    V z = cap(abs(x), 40.0);
    V h, l;
    two_prod<V>(z, z, h, l);
    V s, e;
    two_sum<V>(h * -0.5, splat<V>(-kLnSqrt2piHi), s, e);
    V lo = e + (l * -0.5 - kLnSqrt2piLo);
    V E = exp_d(s);
    return madd<V>(E, lo, E);  // e^(s + lo) = e^s (1 + lo), |lo| < 2^-50
  }
}

// Logistic sigmoid 1 / (1 + e^-x), as num / (1 + e^-|x|) with num = 1 or
// e^-|x|, so neither tail overflows or cancels; 1 + e^-|x| is carried exactly
// into the division (div_one_plus).
template <class V>
TA_HD V sigmoid(V x) {
  using T = scalar_t<V>;
  V E, El;
  if constexpr (sizeof(T) == 4) {
    E = detail::exp_hl_f(-detail::cap(abs(x), 104.0f), El);
  } else {
    E = detail::exp_d(-abs(x));
    El = V{};
  }
  return detail::div_one_plus(E, El, x < splat<V>(T(0)));
}

// log(1 + e^x) = max(x, 0) + log1p(e^-|x|).
template <class V>
TA_HD V softplus(V x) {
  using T = scalar_t<V>;
  V L;
  if constexpr (sizeof(T) == 4) {
    V El;
    V E = detail::exp_hl_f(-detail::cap(abs(x), 104.0f), El);
    L = detail::log1p_core_f(E, El);
  } else {
    L = detail::log1p_d(detail::exp_d(-abs(x)));
  }
  return max_nan(x, splat<V>(T(0))) + L;
}

// log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|).
template <class V>
TA_HD V log_sigmoid(V x) {
  using T = scalar_t<V>;
  V L;
  if constexpr (sizeof(T) == 4) {
    V El;
    V E = detail::exp_hl_f(-detail::cap(abs(x), 104.0f), El);
    L = detail::log1p_core_f(E, El);
  } else {
    L = detail::log1p_d(detail::exp_d(-abs(x)));
  }
  return min_nan(x, splat<V>(T(0))) - L;
}

}  // namespace m
}  // namespace TA_ISA
}  // namespace ta
