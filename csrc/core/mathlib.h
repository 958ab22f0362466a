// Elementary functions for the activations, generic over scalar and vector V
// (see simd.h): float and double, scalar or one native register of lanes.
//
// Every function is computed with this library's own algorithms in the
// argument's own precision, branch free across lanes: argument reduction,
// minimax polynomials fitted by tools/fit_mathlib.py (tables in
// mathlib_coeffs.h), and error-free transformations (two_prod / two_sum)
// wherever a rounding would otherwise be amplified. No C library calls.
// tests/native/mathlib_accuracy.cpp measures every function against a long
// double reference over the whole input range and enforces per-function
// bounds; the design target is 2 ulp (float) wherever the result is a normal
// number, and results in the denormal range underflow gradually, rounded once.
//
// The same algorithm runs for scalar and vector V, so both give bit-identical
// results within one build. Builds with and without FMA differ in the last
// bit now and then (madd fuses only where the hardware can).
//
// Special values follow C99 Annex F: NaN in gives NaN out, infinities give the
// limits, odd functions keep the sign of zero, overflow gives inf, and no
// formula is allowed to produce inf * 0 or inf / inf on the way.
//
// Public functions, all templates over V:
//   exp expm1 log log1p tanh erf erfc sigmoid softplus log_sigmoid
//   normcdf (standard normal CDF Phi), normpdf (its density phi),
//   tanhshrink (x - tanh x),
//   mul_exp (m e^x), x_normcdf (x Phi(x)), sigmoid_scaled and exp_neg_abs_scaled
//   (for products that are normal where a factor is not).
#pragma once

#include "mathlib_coeffs.h"
#include "mathlib_tables.h"
#include "simd.h"

#include <utility>

namespace ta {
inline namespace TA_ISA {
namespace m {

using namespace ::ta::TA_ISA::simd;

namespace detail {

template <class V> using I = ivec_t<V>;

// Per-format constants.
template <class T> struct FP;
template <> struct FP<float> {
  static constexpr int kMant = 23;
  static constexpr int kMaxExp = 127;
  // ln 2 = kLn2Hi + kLn2Lo. kLn2Hi has 15 significant bits, so n * kLn2Hi is
  // exact for |n| < 2^9, and x - n * kLn2Hi is then exact by Sterbenz's lemma.
  static constexpr float kLn2Hi = 0x1.62e4p-1f;
  static constexpr float kLn2Lo = 0x1.7f7d1cp-20f;
  static constexpr float kLog2e = 0x1.715476p+0f;
  // Adding 1.5 * 2^23 rounds |v| < 2^22 to an integer, which then sits in the
  // low mantissa bits: integers are read from (and written to) there, so no
  // float <-> int conversion of a possibly-NaN lane ever happens.
  static constexpr float kRound = 0x1.8p23f;
  static constexpr float kSqrtHalf = 0x1.6a09e6p-1f;
  static constexpr float kMinNormal = 0x1p-126f;
  // Argument ranges beyond which results saturate (inf, 0, -1, 1, ...).
  static constexpr float kExpLo = -104.0f, kExpHi = 89.0f;
  static constexpr float kExpm1Lo = -30.0f;
  static constexpr float kTanhCap = 9.1f;
  static constexpr float kErfCap = 4.0f;
  static constexpr float kNormpdfCap = 15.0f;
  // Inputs below this have |x|^3 near the denormal range (tanhshrink).
  static constexpr float kCubeTiny = 0x1p-25f, kCubeUp = 0x1p24f, kCubeDown = 0x1p-72f;
};
template <> struct FP<double> {
  static constexpr int kMant = 52;
  static constexpr int kMaxExp = 1023;
  // kLn2Hi has 42 significant bits: n * kLn2Hi exact for |n| < 2^11.
  static constexpr double kLn2Hi = 0x1.62e42fefa4p-1;
  static constexpr double kLn2Lo = -0x1.8432a1b0e2634p-43;
  static constexpr double kLog2e = 0x1.71547652b82fep+0;
  static constexpr double kRound = 0x1.8p52;
  static constexpr double kSqrtHalf = 0x1.6a09e667f3bcdp-1;
  static constexpr double kMinNormal = 0x1p-1022;
  static constexpr double kExpLo = -746.0, kExpHi = 710.0;
  static constexpr double kExpm1Lo = -40.0;
  static constexpr double kTanhCap = 19.5;
  static constexpr double kErfCap = 6.0;
  static constexpr double kNormpdfCap = 39.0;
  static constexpr double kCubeTiny = 0x1p-300, kCubeUp = 0x1p300, kCubeDown = 0x1p-900;
};

template <class V> using FPV = FP<scalar_t<V>>;

template <class V>
TA_HD V inf() { return splat<V>(static_cast<scalar_t<V>>(__builtin_inf())); }
template <class V>
TA_HD V qnan() { return splat<V>(static_cast<scalar_t<V>>(__builtin_nan(""))); }

template <class V>
TA_HD I<V> iwhere(mask_t<V> m, I<V> a, I<V> b) { return m ? a : b; }

// min(x, hi) / max(x, lo) that let NaN through.
template <class V>
TA_HD V cap(V x, scalar_t<V> hi) { return lt_pick<V>(splat<V>(hi), x); }
template <class V>
TA_HD V floor_at(V x, scalar_t<V> lo) { return gt_pick<V>(splat<V>(lo), x); }

// Integer (|e| < 2^22 resp. 2^51) to floating point through the mantissa.
template <class V>
TA_HD V int_to_fp(I<V> e) {
  const V k = splat<V>(FPV<V>::kRound);
  return as_fp<V>(e + as_int(k)) - k;
}

// n = n1 + n2 with n1 = floor(n / 2), through a logical shift of a biased
// value (n is above -4 kMaxExp wherever this is used).
template <class V>
TA_HD void split_exp(I<V> n, I<V>& n1, I<V>& n2) {
  constexpr int kB = 4 * (FPV<V>::kMaxExp + 1);
  n1 = srl(n + isplat<I<V>>(kB), 1) - isplat<I<V>>(kB / 2);
  n2 = n - n1;
}

// y * 2^n in two steps, so that a result in the denormal range is rounded only
// once (by the second multiply) and 2^n itself need not be representable.
// Valid for |n| <= 2 * kMaxExp.
// Where every lane's n is a normal exponent, 2^n is one exact factor and the
// single multiply rounds exactly as the second of ldexp2's two steps would:
// the same bits, for a third of the work. Worth its test only where nearly
// every vector passes it (exp, sigmoid; not the tails of erfc or normpdf).
template <class V>
TA_HD bool normal_exps(I<V> n) {
  using C = FPV<V>;
  return all(mand(n >= isplat<I<V>>(1 - C::kMaxExp), n <= isplat<I<V>>(C::kMaxExp)));
}

template <class V>
TA_HD V ldexp2(V y, I<V> n) {
  I<V> n1, n2;
  split_exp<V>(n, n1, n2);
  return (y * exp2i<V>(n1)) * exp2i<V>(n2);
}

// ------------------------------------------------------------- tables ---
#define TA_TABLE(name)                                                   \
  template <class V>                                                     \
  TA_HD V name(V v) {                                                    \
    if constexpr (sizeof(scalar_t<V>) == 4) return coef::f32_##name(v);  \
    else return coef::f64_##name(v);                                     \
  }
TA_TABLE(exp_p)
TA_TABLE(expm1_p)
TA_TABLE(log1p_p)
TA_TABLE(tanh_p)
TA_TABLE(erf_p)
#undef TA_TABLE

// ------------------------------------------------------------------ exp ---
// xh + xl = n ln2 + r (+ rlo) with |r| <= ln2/2 (+ a few ulp); xh within the
// clamped exp range, xl a small correction. rlo is the rounding error of r.
// n = round(x / ln 2), as an integer and as a float (returned). NaN lanes get
// n = 0 rather than whatever their bits say, so that no integer arithmetic
// downstream sees an out-of-range exponent (nf stays NaN there).
template <class V>
TA_HD V exp_round(V x, I<V>& n) {
  using C = FPV<V>;
  V k = madd<V>(x, C::kLog2e, C::kRound);
  n = iwhere<V>(k == k, as_int(k) - as_int(splat<V>(C::kRound)), isplat<I<V>>(0));
  return k - C::kRound;
}

template <class V>
TA_HD V exp_reduce(V xh, V xl, I<V>& n, V& rlo, V* nfp = nullptr) {
  using C = FPV<V>;
  V nf = exp_round(xh, n);
  if (nfp) *nfp = nf;
  V rh = xh - nf * C::kLn2Hi;  // exact
  V c = xl - nf * C::kLn2Lo;
  V r = rh + c;
  rlo = (rh - r) + c;
  return r;
}

// e^(xh + xl) = (s + tail) * 2^n with s = 1 + r rounded and tail small: the
// value is not rounded to one number yet, so callers round once, after
// combining it with whatever multiplies it.
template <class V>
struct ExpParts {
  V s, tail;
  I<V> n;
  V nf;  // n as a floating-point value (for scale_by)
};

template <class V>
TA_HD ExpParts<V> exp_parts(V xh, V xl) {
  using T = scalar_t<V>;
  ExpParts<V> p;
  V rlo;
  V r = exp_reduce(xh, xl, p.n, rlo, &p.nf);
  V q = (r * r) * exp_p(r);  // e^r = 1 + r + q
  p.s = T(1) + r;
  V se = (T(1) - p.s) + r;   // exact: |r| < 1
  p.tail = se + (q + rlo);
  return p;
}

// Float e^x without the compensation of exp_parts, for the functions whose
// bound allows about an ulp (exp itself, sigmoid): one Cody-Waite reduction
// (n * kLn2Hi exact), e^r = 1 + (r + r^2 P(r)) rounded once, so the result is
// y * 2^n with y in [sqrt(1/2), sqrt(2)] and an error of at most ~0.5 ulp from
// the final sum plus ~0.25 each from r's rounding and the inner sum. x finite
// within [kExpLo, kExpHi], or NaN (n = 0 then).
// lo (if asked for) is the rounding error of the final sum, exact.
template <class V>
TA_HD V exp_unscaled_f32(V x, I<V>& n, V* lo = nullptr, V* nfp = nullptr) {
  using T = scalar_t<V>;
  using C = FPV<V>;
  V nf = exp_round(x, n);
  if (nfp) *nfp = nf;
  V r = madd<V>(nf, -C::kLn2Hi, x);  // exact
  r = madd<V>(nf, -C::kLn2Lo, r);
  V p = madd<V>(r * r, exp_p(r), r);
  V y = T(1) + p;
  if (lo) *lo = (T(1) - y) + p;  // |p| < 1
  return y;
}

// e^(x + xl) the same way, xl a correction below an ulp of x, as y + lo:
// y = 1 + p rounded, lo its exact rounding error (scaled by 2^n like y).
template <class V>
TA_HD V exp_unscaled_f32_pair(V x, V xl, I<V>& n, V& lo, V* nfp = nullptr) {
  using T = scalar_t<V>;
  using C = FPV<V>;
  V nf = exp_round(x, n);
  if (nfp) *nfp = nf;
  V r = madd<V>(nf, -C::kLn2Hi, x) + madd<V>(nf, -C::kLn2Lo, xl);
  V p = madd<V>(r * r, exp_p(r), r);
  V y = T(1) + p;
  lo = (T(1) - y) + p;
  return y;
}

// y 2^n for n from an exp reduction (nf the same integer as a float, NaN on
// NaN lanes), rounded once: ldexp2's result. AVX-512 has it as one
// instruction (vscalefps/pd), which also rounds a denormal result once and
// overflows to inf, so there it replaces ldexp2's five integer and two
// floating-point operations.
template <class V>
TA_HD V scale_by(V y, V nf, I<V> n) {
#if defined(TA_X86_AVX512)
  if constexpr (kZmm<V>) {
    if constexpr (sizeof(scalar_t<V>) == 4) return (V)_mm512_scalef_ps((__m512)y, (__m512)nf);
    else return (V)_mm512_scalef_pd((__m512d)y, (__m512d)nf);
  }
#endif
  (void)nf;
  return ldexp2<V>(y, n);
}

// scale_by(y, nf, n) for the lanes with x >= lo (or NaN), and `fill` in the
// lanes below, whose result is known without the scaling. Where the scaling
// would produce a number below the normal range, an x86 core finishes
// vscalefps in microcode, at about a hundred times its cost, once per
// vector: the -inf lanes of a masked softmax made it five times slower. On
// AVX-512 those lanes are masked off the instruction, at no cost. Other
// builds scale by multiplications, which slow down too where they
// underflow, but keeping those lanes out would take selects that cost them
// 10-30% in the common case: they scale every lane, and replace the lanes
// below by `fill` unless kUnderflows says that the scaling gives fill (+0)
// there anyway. (A caller that replaces the arguments of those lanes, as
// exp_nonpos_pair_f32 does, avoids the underflow everywhere.)
template <bool kUnderflows = false, class V>
TA_HD V scale_unless_below(V y, V nf, I<V> n, V x, scalar_t<V> lo, V fill = V{}) {
#if defined(TA_X86_AVX512)
  if constexpr (kZmm<V>) {
    if constexpr (sizeof(scalar_t<V>) == 4) {
      const __mmask16 k = _mm512_cmp_ps_mask((__m512)x, _mm512_set1_ps(lo), _CMP_NLT_UQ);
      return (V)_mm512_mask_scalef_ps((__m512)fill, k, (__m512)y, (__m512)nf);
    } else {
      const __mmask8 k = _mm512_cmp_pd_mask((__m512d)x, _mm512_set1_pd(lo), _CMP_NLT_UQ);
      return (V)_mm512_mask_scalef_pd((__m512d)fill, k, (__m512d)y, (__m512d)nf);
    }
  }
#endif
  if constexpr (kUnderflows) return scale_by<V>(y, nf, n);
  else return where<V>(x < splat<V>(lo), fill, scale_by<V>(y, nf, n));
}

// e^x from exp_unscaled_f32 (with lo: e^x - result, to about a quarter ulp,
// scaled alike). x is clamped to [kExpLo, kExpHi], where e^x rounds to 0
// (on AVX-512 without a scaling: scale_unless_below); ldexp2 takes the
// one-factor scaling wherever every lane allows it.
template <class V>
TA_HD V exp_f32(V x, V* lo = nullptr) {
  using C = FPV<V>;
  I<V> n;
  V nf;
  V y = exp_unscaled_f32(floor_at(cap(x, C::kExpHi), C::kExpLo), n, lo, &nf);
  if constexpr (kZmm<V>) {
    if (lo) *lo = scale_unless_below<true, V>(*lo, nf, n, x, C::kExpLo);
    return scale_unless_below<true, V>(y, nf, n, x, C::kExpLo);
  }
  if (normal_exps<V>(n)) {
    V sc = exp2i<V>(n);
    if (lo) *lo = *lo * sc;
    return y * sc;
  }
  if (lo) *lo = ldexp2<V>(*lo, n);
  return ldexp2<V>(y, n);
}

// e^x with x clamped to [kExpLo, kExpHi] (NaN passes): the top still
// overflows to inf through the scaling, and the lanes below kExpLo give 0
// without it (scale_unless_below).
template <class V>
TA_HD V exp_clamped(V x) {
  using C = FPV<V>;
  ExpParts<V> p = exp_parts(floor_at(cap(x, C::kExpHi), C::kExpLo), V{});
  return scale_unless_below<true, V>(p.s + p.tail, p.nf, p.n, x, C::kExpLo);
}

// The same as hi + lo: hi = exp_clamped(x), lo its rounding error (exact
// while e^x is normal; in the denormal range hi's own rounding dominates).
template <class V>
TA_HD V exp_hl(V x, V& lo, V xl = V{}) {
  ExpParts<V> p = exp_parts(x, xl);
  V mh, ml;
  fast_two_sum<V>(p.s, p.tail, mh, ml);
  I<V> n1, n2;
  split_exp<V>(p.n, n1, n2);
  V s1 = exp2i<V>(n1), s2 = exp2i<V>(n2);
  lo = (ml * s1) * s2;
  return (mh * s1) * s2;
}

// e^(sh + sl), gradually underflowing.
template <class V>
TA_HD V exp2sum(V sh, V sl) {
  ExpParts<V> p = exp_parts(sh, sl);
  return scale_by<V>(p.s + p.tail, p.nf, p.n);
}

// (Rh + Rl) e^(sh + sl) / d, gradually underflowing: the product is rounded
// once, the division once more, and the scaling (which may land in the
// denormal range) comes last.
template <class V>
TA_HD V scaled_exp(V sh, V sl, V Rh, V Rl, V d) {
  ExpParts<V> p = exp_parts(sh, sl);
  V num = madd_acc<V>(Rh, p.s, madd<V>(Rh, p.tail, Rl * p.s));
  return scale_by<V>(num / d, p.nf, p.n);
}

// ------------------------------------------------------------------ log ---
// log(2^ef (1 + F + Fe)) for |F| <= sqrt(2) - 1 (plus slack), ef integer
// valued, Fe a tiny correction to F (absent for log). log1p(F) = F + F^2 P(F),
// and log1p(F + Fe) = log1p(F) + Fe (1 - F + F^2) to far below an ulp.
// ef ln2_hi + F is summed error free, so only the final addition rounds at
// the result's scale.
template <bool kWithFe, class V>
TA_HD V log_assemble(V ef, V F, V Fe) {
  using T = scalar_t<V>;
  using C = FPV<V>;
  V tail = (F * F) * log1p_p(F);
  if constexpr (kWithFe) tail = madd<V>(Fe, madd<V>(F, F, T(1) - F), tail);
  V hi, lo;
  fast_two_sum<V>(ef * C::kLn2Hi, F, hi, lo);  // |ef ln2| >= |F| unless ef == 0
  return hi + (lo + madd<V>(ef, C::kLn2Lo, tail));
}

// u = 2^e m with m in [sqrt(1/2), sqrt(2)], u positive normal (or +inf).
// The exponent field is read with a logical shift and the mantissa folded
// into [sqrt(1/2), sqrt(2)] with a floating-point compare: 64-bit arithmetic
// shifts and compares are slow before AVX-512.
template <class V>
TA_HD V log_split(V u, I<V>& e) {
  using T = scalar_t<V>;
  using C = FPV<V>;
  using S = typename int_of<T>::type;
  const I<V> ui = as_int(u);
  const S mant_mask = (S(1) << C::kMant) - 1;
  I<V> e0 = srl(ui, C::kMant) - isplat<I<V>>(C::kMaxExp);
  V m = as_fp<V>((ui & isplat<I<V>>(mant_mask)) | as_int(splat<V>(T(1))));  // [1, 2)
  auto big = m > splat<V>(T(2) * C::kSqrtHalf);
  e = iwhere<V>(big, e0 + isplat<I<V>>(1), e0);
  return where<V>(big, m * T(0.5), m);
}

// log1p(x + xl) for x > -1 (or NaN), xl a tiny correction to x; no
// special-value handling.
template <class V>
TA_HD V log1p_core(V x, V xl) {
  using T = scalar_t<V>;
  V u, c;
  two_sum<V>(splat<V>(T(1)), x, u, c);  // 1 + x = u + c exactly
  c += xl;
  I<V> e;
  V m = log_split(u, e);
  // (1 + x) / 2^e = (m - 1) + c / 2^e, m - 1 exact (2^-e in two steps: it
  // need not be a normal number). m - 1 is 0 or at least one ulp of 1/2,
  // larger than |c / 2^e| as fast_two_sum needs.
  V F, Fe;
  fast_two_sum<V>(m - T(1), ldexp2<V>(c, -e), F, Fe);
  return log_assemble<true>(int_to_fp<V>(e), F, Fe);
}

// ---------------------------------------------------- erfc, normal tail ---
// erfc(a) for a >= 0 or NaN: e^(-a^2) erfcx(a). a^2 is formed exactly
// (two_prod): exp(-a^2) turns an absolute error d of a^2 into a relative
// error d of the result, and d = ulp(a^2)/2 would be ~a^2 ulp. erfcx comes
// from fitted pieces (float 4, double 5); in the last, erfcx(a) = Q(1/a^2)/a.
// The table value stays hi + lo until multiplied by the exponential.
template <class V>
TA_HD V erfc_pos(V a) {
  using T = scalar_t<V>;
  using namespace coef;
  V Rh, Rl, d;
  if constexpr (sizeof(T) == 4) {
    a = cap(a, f32_erfc_b4);  // erfc there is far below the smallest denormal
    auto in0 = a < splat<V>(f32_erfc_b1);
    auto in1 = a < splat<V>(f32_erfc_b2);
    auto in2 = a < splat<V>(f32_erfc_b3);
    V s = T(1) / (a * a);
    V v = where<V>(in0, a - f32_erfc_c0, where<V>(in1, a - f32_erfc_c1, where<V>(in2, a - f32_erfc_c2, s)));
    Rh = f32_erfcx_pw(v, in0, in1, in2, Rl);
    d = where<V>(in2, splat<V>(T(1)), a);
  } else {
    a = cap(a, f64_erfc_b5);
    auto in0 = a < splat<V>(f64_erfc_b1);
    auto in1 = a < splat<V>(f64_erfc_b2);
    auto in2 = a < splat<V>(f64_erfc_b3);
    auto in3 = a < splat<V>(f64_erfc_b4);
    V s = T(1) / (a * a);
    V v = where<V>(in0, a - f64_erfc_c0,
                   where<V>(in1, a - f64_erfc_c1,
                            where<V>(in2, a - f64_erfc_c2, where<V>(in3, a - f64_erfc_c3, s))));
    Rh = f64_erfcx_pw(v, in0, in1, in2, in3, Rl);
    d = where<V>(in3, splat<V>(T(1)), a);
  }
  V h, l;
  two_prod<V>(a, a, h, l);
  return scaled_exp(-h, -l, Rh, Rl, d);
}

// Phi(-z) for z >= 0 or NaN: e^(-z^2/2) G(z), G fitted directly in z (so
// z / sqrt(2) is never rounded) and z^2 / 2 formed exactly.
// The float normal-tail table at 0 <= z <= f32_ncdf_b4: Phi(-z) =
// e^(-z^2/2) (Gh + Gl) / d, d = 1 on the first three pieces (in_table) and
// z on the last, which is a polynomial in 1/z^2.
template <class V>
TA_HD V ncdf_table_f32(V z, V& Gl, mask_t<V>& in_table) {
  using namespace coef;
  const auto in0 = z < splat<V>(f32_ncdf_b1);
  const auto in1 = z < splat<V>(f32_ncdf_b2);
  in_table = z < splat<V>(f32_ncdf_b3);
  const V s = 1.0f / (z * z);
  const V v = where<V>(in0, z - f32_ncdf_c0, where<V>(in1, z - f32_ncdf_c1, where<V>(in_table, z - f32_ncdf_c2, s)));
  return f32_ncdf_pw(v, in0, in1, in_table, Gl);
}

template <bool kMul = false, class V>
TA_HD V ncdf_lower(V z, V mul = V{}) {
  using T = scalar_t<V>;
  using namespace coef;
  V Gh, Gl, d;
  if constexpr (sizeof(T) == 4) {
    z = cap(z, f32_ncdf_b4);
    mask_t<V> in_table;
    Gh = ncdf_table_f32(z, Gl, in_table);
    d = where<V>(in_table, splat<V>(T(1)), z);
  } else {
    z = cap(z, f64_ncdf_b5);
    auto in0 = z < splat<V>(f64_ncdf_b1);
    auto in1 = z < splat<V>(f64_ncdf_b2);
    auto in2 = z < splat<V>(f64_ncdf_b3);
    auto in3 = z < splat<V>(f64_ncdf_b4);
    V s = T(1) / (z * z);
    V v = where<V>(in0, z - f64_ncdf_c0,
                   where<V>(in1, z - f64_ncdf_c1,
                            where<V>(in2, z - f64_ncdf_c2, where<V>(in3, z - f64_ncdf_c3, s))));
    Gh = f64_ncdf_pw(v, in0, in1, in2, in3, Gl);
    d = where<V>(in3, splat<V>(T(1)), z);
  }
  if constexpr (kMul) {
    // mul Phi(-z): the multiplier joins the table value as an exact pair, so
    // the product is rounded once, after the scaling that may take Phi(-z)
    // itself below the normal range.
    V ph, pl;
    two_prod<V>(Gh, mul, ph, pl);
    Gh = ph;
    Gl = madd<V>(Gl, mul, pl);
  }
  V h, l;
  two_prod<V>(z, z, h, l);
  return scaled_exp(h * T(-0.5), l * T(-0.5), Gh, Gl, d);
}

// ------------------------------------------------------ logistic pieces ---
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

// 1 - tanh(a) = 2 e^-2a / (1 + e^-2a) for a >= 0 or NaN. Past kTanhCap it is
// below half an ulp of 1 and of any a - 1, so a is capped there.
template <class V>
TA_HD V one_minus_tanh(V a) {
  using T = scalar_t<V>;
  V El;
  V E = exp_hl(cap(a, FPV<V>::kTanhCap) * T(-2), El);
  return T(2) * div_one_plus(E, El, E == E);
}

// e^-|x| as hi + lo, |x| capped where the result is 0 anyway.
template <class V>
TA_HD V exp_neg_abs(V x, V& lo) {
  return exp_hl(-cap(abs(x), -FPV<V>::kExpLo), lo);
}

}  // namespace detail

// ============================================================ public API ===

// e^x.
template <class V>
TA_HD V exp(V x) {
  if constexpr (sizeof(scalar_t<V>) == 4) return detail::exp_f32(x);
  else return detail::exp_clamped(x);
}

// e^x - 1.
template <class V>
TA_HD V expm1(V x) {
  using namespace detail;
  using T = scalar_t<V>;
  using C = FP<T>;
  // Below kExpm1Lo the result is -1; above kExpHi it overflows anyway.
  V xc = floor_at(cap(x, C::kExpHi), C::kExpm1Lo);
  I<V> n;
  V rlo, nf;
  V r = exp_reduce(xc, V{}, n, rlo, &nf);
  // expm1(r) = r + q; this polynomial is fitted to expm1's relative error.
  V q = (r * r) * expm1_p(r);
  // e^x - 1 = (t - 1) + t r + t (q + rlo), t = 2^n: t r is exact and
  // (t - 1) + t r is summed error free, so only the last addition rounds.
  // n = kMaxExp + 1 would overflow t: use 2^kMaxExp and double at the end.
  I<V> top = iwhere<V>(nf > splat<V>(T(C::kMaxExp)), isplat<I<V>>(1), isplat<I<V>>(0));
  V t = exp2i<V>(n - top);
  V tm1, e1, s, e2;
  two_sum<V>(t, splat<V>(T(-1)), tm1, e1);  // t - 1 is inexact for large |n|
  two_sum<V>(tm1, t * r, s, e2);
  V res = s + madd<V>(t, q + rlo, e1 + e2);
  res = res * exp2i<V>(top);
  // expm1(+-0) = +-0 (the sum above would give +0 for -0).
  return where<V>(x == splat<V>(T(0)), x, res);
}

// Natural logarithm.
template <class V>
TA_HD V log(V x) {
  using namespace detail;
  using T = scalar_t<V>;
  using C = FP<T>;
  // Denormals: scale into the normal range first.
  auto tiny = x < splat<V>(C::kMinNormal);
  V xs = where<V>(tiny, x * exp2i<V>(isplat<I<V>>(C::kMant)), x);
  // Lanes whose result is overridden below (x <= 0, NaN) get a harmless
  // stand-in, so their bit patterns never reach the integer arithmetic.
  xs = where<V>(x > splat<V>(T(0)), xs, splat<V>(T(1)));
  I<V> e;
  V m = log_split(xs, e);
  V ef = int_to_fp<V>(e) - where<V>(tiny, splat<V>(T(C::kMant)), splat<V>(T(0)));
  V res = log_assemble<false>(ef, m - T(1), V{});
  res = where<V>(x == inf<V>(), x, res);
  res = where<V>(x == splat<V>(T(0)), -inf<V>(), res);
  return where<V>(mnot(x >= splat<V>(T(0))), qnan<V>(), res);  // x < 0 or NaN
}

// log(1 + x).
template <class V>
TA_HD V log1p(V x) {
  using namespace detail;
  using T = scalar_t<V>;
  // Lanes whose result is overridden below get a harmless stand-in.
  V res = log1p_core(where<V>(x > splat<V>(T(-1)), x, splat<V>(T(0))), V{});
  res = where<V>(x == inf<V>(), x, res);
  res = where<V>(x == splat<V>(T(0)), x, res);  // keeps -0
  res = where<V>(x == splat<V>(T(-1)), -inf<V>(), res);
  return where<V>(mnot(x >= splat<V>(T(-1))), qnan<V>(), res);
}

// Float tanh and x - tanh(x) from 32-piece tables (defined with the other
// tables below).
template <class V>
TA_HD V tanh_pw_f32(V x);
template <class V>
TA_HD V tanhshrink_pw_f32(V x);

// Hyperbolic tangent. Host float with FMA: a 32-piece table (tanh_pw_f32;
// without FMA its multiply-adds round twice, up to 1.6 ulp). Otherwise
// a + a^3 P(a^2) below 0.625, 1 - (1 - tanh a) above, where 1 - tanh a <= 0.45
// comes with 1 + e^-2a carried exactly.
template <class V>
TA_HD V tanh(V x) {
  using namespace detail;
  using T = scalar_t<V>;
#if !defined(TA_DEVICE_CODE) && TA_HAS_FMA
  if constexpr (sizeof(T) == 4) return tanh_pw_f32(x);
#endif
  V a = abs(x);
  V t = a * a;
  V small = madd<V>(a * t, tanh_p(t), a);
  V big = T(1) - one_minus_tanh(a);
  return copysign(where<V>(a < splat<V>(T(coef::kTanhPolyMax)), small, big), x);
}

// x - tanh(x). Host float with FMA: a 32-piece table (tanhshrink_pw_f32, as
// tanh). Otherwise, as the subtraction cancels for |x| up to ~2 (x^3/3 out of
// two numbers of size x):
//  float, |x| < 0.75: x^3/3 + x^5 P(x^2) with x^3 formed exactly and 1/3 as
//    a float pair; the fitted correction is at most 22% of the result.
//  float, 0.75 <= |x| < 1: a polynomial in |x| - 0.875 (there the correction
//    above would reach 40% and, without FMA, cost up to 2.4 ulp).
//  double, |x| < 1: Pade form x^3 N(x^2)/Q(x^2) (positive coefficients, so
//    neither polynomial cancels), with the dominant constant terms added and
//    the quotient corrected error free.
//  |x| >= 1: (|x| - 1) + (1 - tanh|x|): |x| - 1 is exact, and the second term,
//    computed with 1 + e^-2|x| carried exactly, is below 1/4 of the result
//    at x = 1 and shrinks fast.
template <class V>
TA_HD V tanhshrink(V x) {
  using namespace detail;
  using T = scalar_t<V>;
  using C = FP<T>;
#if !defined(TA_DEVICE_CODE) && TA_HAS_FMA
  if constexpr (sizeof(T) == 4) return tanhshrink_pw_f32(x);
#endif
  V a = abs(x);
  V t = a * a;
  // Where a^3 approaches the denormal range its low part (cl below) would
  // underflow first: form a^3 from a scaled a and undo the scaling at the end,
  // where a single multiply rounds a denormal result once.
  auto tiny = a < splat<V>(C::kCubeTiny);
  V as = where<V>(tiny, a * C::kCubeUp, a);
  V th, tl, ch, cl;
  two_prod<V>(as, as, th, tl);
  two_prod<V>(as, th, ch, cl);
  cl = madd<V>(as, tl, cl);  // as^3 = ch + cl to ~2^-2p relative
  V small;
  if constexpr (sizeof(T) == 4) {
    using namespace coef;
    // One Horner evaluation for both pieces (per-lane coefficients).
    auto low = a < splat<V>(kTshrinkMid);
    V pl;
    V ph = f32_tanhshrink_pw(where<V>(low, t, a - kTshrinkMidC), low, pl);
    V w = madd<V>(t, ph, madd<V>(t, pl, f32_third_lo));  // 1/3 - (1/3)_hi + t P
    V below = madd_acc<V>(ch, f32_third_hi, madd<V>(ch, w, cl * f32_third_hi));
    small = where<V>(low, below, ph + pl);
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
    small = madd_acc<V>(ch, w, cl * w);
  }
  small = small * where<V>(tiny, splat<V>(C::kCubeDown), splat<V>(T(1)));
  V big = (a - T(1)) + one_minus_tanh(a);
  return copysign(where<V>(a < splat<V>(T(coef::kTshrinkPolyMax)), small, big), x);
}

// Error function: a (2/sqrt(pi)) + a^3 P(a^2) below 1 (2/sqrt(pi) as a pair),
// 1 - erfc(a) above, where erfc <= 0.16 so its error shrinks by >= 5x.
template <class V>
TA_HD V erf(V x) {
  using namespace detail;
  using T = scalar_t<V>;
  V a = abs(x);
  V t = a * a;
  T chi, clo;
  if constexpr (sizeof(T) == 4) {
    chi = coef::f32_two_over_sqrtpi_hi;
    clo = coef::f32_two_over_sqrtpi_lo;
  } else {
    chi = coef::f64_two_over_sqrtpi_hi;
    clo = coef::f64_two_over_sqrtpi_lo;
  }
  V p = madd<V>(t, erf_p(t), clo);
  V small = madd_acc<V>(a, chi, a * p);
  V big = T(1) - erfc_pos(cap(a, FP<T>::kErfCap));
  return copysign(where<V>(a < splat<V>(T(coef::kErfPolyMax)), small, big), x);
}

// Complementary error function.
template <class V>
TA_HD V erfc(V x) {
  using T = scalar_t<V>;
  V q = detail::erfc_pos(abs(x));
  return where<V>(x < splat<V>(T(0)), T(2) - q, q);
}

// Standard normal CDF Phi(x) = erfc(-x / sqrt(2)) / 2.
template <class V>
TA_HD V normcdf(V x) {
  using T = scalar_t<V>;
  V q = detail::ncdf_lower(abs(x));
  return where<V>(x < splat<V>(T(0)), q, T(1) - q);
}

// Standard normal density e^(-x^2/2) / sqrt(2 pi), as one exponential of
// -x^2/2 - log(sqrt(2 pi)) with the exponent carried exactly (x^2 by
// two_prod, the constant as a pair), so only the exponential contributes
// error.
template <class V>
TA_HD V normpdf(V x) {
  using namespace detail;
  using T = scalar_t<V>;
  T khi, klo;
  if constexpr (sizeof(T) == 4) {
    khi = coef::f32_ln_sqrt2pi_hi;
    klo = coef::f32_ln_sqrt2pi_lo;
  } else {
    khi = coef::f64_ln_sqrt2pi_hi;
    klo = coef::f64_ln_sqrt2pi_lo;
  }
  V z = cap(abs(x), FP<T>::kNormpdfCap);  // beyond, below the smallest denormal
  V h, l;
  two_prod<V>(z, z, h, l);
  V s, e;
  two_sum<V>(h * T(-0.5), splat<V>(-khi), s, e);
  V lo = e + (l * T(-0.5) - klo);
  return exp2sum(s, lo);
}

// Phi(x) + x phi(x), the exact GELU's derivative, for float from one
// exponential instead of two: with Q(z) = Phi(-z) = e^(-z^2/2) G(z) / d (the
// normal-tail table as ncdf_lower uses it) and phi(z) = e^(-z^2/2) k,
// k = 1/sqrt(2 pi), z = |x|:
//   x < 0:  e^(-z^2/2) (G/d + x k)       x >= 0:  1 - e^(-z^2/2) (G/d - x k)
// Far left the bracket is about x k (1 - 1/x^2), so nothing cancels except
// near the root of f' (x = -0.75, bounded per condition number), and the
// product with the exponential is rounded once before the scaling that
// takes it into the denormal range (f' is normal down to x = -13.3 while
// Phi(x) and phi(x) are not). x is capped where the table is.
template <class V>
TA_HD V gelu_deriv_f32_exp(V x) {
  using namespace detail;
  using namespace coef;
  const V xc = floor_at(cap(x, f32_ncdf_b4), -f32_ncdf_b4);
  const V z = abs(xc);
  const auto neg = x < splat<V>(0.0f);
  V Gl;
  mask_t<V> in2;
  const V Gh = ncdf_table_f32(z, Gl, in2);
  // G/d as a pair where d = 1 (the tail piece has no root of f' to cancel
  // against) and x k as a pair, so that the sum stays accurate even where
  // it cancels, to within about an ulp of the result.
  const V Ah = where<V>(in2, Gh, (Gh + Gl) / z), Al = where<V>(in2, Gl, splat<V>(0.0f));
  V Bh, Bl;
  two_prod<V>(xc, splat<V>(0x1.988454p-2f), Bh, Bl);
  Bl = madd<V>(xc, -0x1.857936p-27f, Bl);
  Bh = where<V>(neg, Bh, -Bh);
  Bl = where<V>(neg, Bl, -Bl);
  const V S = (Ah + Bh) + (Al + Bl);
  V h, l;
  two_prod<V>(z, z, h, l);
  const ExpParts<V> p = exp_parts(h * -0.5f, l * -0.5f);
  const V y = scale_by<V>(madd_acc<V>(S, p.s, S * p.tail), p.nf, p.n);
  // Left of the cap f' is below a few denormal ulps and tends to 0.
  return where<V>(neg, where<V>(x < splat<V>(-f32_ncdf_b4), splat<V>(0.0f), y), 1.0f - y);
}

// e^(xh + xl) for float xh <= 0 (or NaN), xl a correction below an ulp of
// xh: the pair enters the reduction, so the result is rounded about once
// (softmax's e^(x - max) with x - max carried exactly). Below kExpLo the
// result is 0, without a scaling into the subnormals (the masked lanes of a
// softmax), and xl (NaN for xh = -inf) is not read.
template <class V>
TA_HD V exp_nonpos_pair_f32(V xh, V xl) {
  using C = detail::FP<float>;
  detail::I<V> n;
  V lo, nf, ah = xh, al = xl;
  // On AVX-512 the masked scaling alone keeps the lanes below out, whatever
  // their unscaled value (NaN included). Elsewhere they are evaluated at 0
  // (this is the exp of softmax, whose masked lanes are common: their
  // scaling would underflow) and replaced.
  if constexpr (!kZmm<V>) {
    const auto low = xh < splat<V>(C::kExpLo);
    ah = where<V>(low, splat<V>(0.0f), xh);
    al = where<V>(low, splat<V>(0.0f), xl);
  }
  const V y = detail::exp_unscaled_f32_pair(ah, al, n, lo, &nf);
  return detail::scale_unless_below<false, V>(y, nf, n, xh, C::kExpLo);
}

// ---------------------------------------- float logistic, one division ---
// The float activations built on the logistic function: m sigmoid(t)
// (sigmoid, silu, swish, gelu-tanh) and derivatives of the form
// s (1 + c sn), s = sigmoid(t), sn = sigmoid(-t) (silu, swish, gelu-tanh).
// Their speed is that of e^-|t| plus one reciprocal, so nothing is
// compensated: e^-|t| = p 2^n with p = 1 + (r + r^2 P(r)) rounded once,
// d = 1 + p 2^n rounded once, one division (the derivatives: a reciprocal
// refined by one Newton step, see logistic_recip), one product. On the
// left (t < 0) the factor 2^n is applied last, after the product with m,
// so a product that is a normal number is rounded once even where
// sigmoid(t) alone is subnormal (x sigmoid(x) stays normal down to
// x = -91.4, sigmoid(x) only to -87.3).
// Measured over every float32 input (tests/test_accuracy.py keeps a sweep):
// sigmoid within 2.4 ulp, silu within 3.4 ulp, against 1.4 and 2.5 for the
// compensated forms these replace at 2.3 and 2.9 times their speed.
// t may be a pair th + tl (kPair; tl below an ulp of th), for an argument
// formed with several roundings whose condition number |t| would multiply
// their error (gelu-tanh).
namespace detail {
template <class V>
struct LogisticF32 {
  V p, pl, nf, E, El, d;  // e^-|t| = E + El = (p + pl) 2^n, p rounded, d = 1 + E rounded
  I<V> n;
  mask_t<V> pos;   // t >= 0
};
// Left of -kFar (= kExpLo - 16) e^t is 2^-173 or less: the scaled results
// underflow to zero for every m the activations pass.
constexpr float kLogisticFar = 120.0f;

template <bool kPair, class V>
TA_HD LogisticF32<V> logistic_f32(V th, V tl) {
  LogisticF32<V> L;
  L.pos = th >= splat<V>(0.0f);
  const V na = -abs(th);
  const V a = floor_at(na, -kLogisticFar);
  if constexpr (kPair) {
    // Where |t| is capped, tl belongs to the uncapped t (and may be huge).
    const V tlc = where<V>(na < splat<V>(-kLogisticFar), splat<V>(0.0f), tl);
    L.p = exp_unscaled_f32_pair(a, where<V>(L.pos, -tlc, tlc), L.n, L.pl, &L.nf);
  } else {
    (void)tl;
    L.p = exp_unscaled_f32(a, L.n, &L.pl, &L.nf);
  }
  // pl, El: exact; unused (and removed) where only p and E are read. Past
  // kLogisticFar, E and El are 0: kept out of the scaling, which would
  // underflow slowly (scale_unless_below).
  L.E = scale_unless_below<true, V>(L.p, L.nf, L.n, na, -kLogisticFar);
  L.El = scale_unless_below<true, V>(L.pl, L.nf, L.n, na, -kLogisticFar);
  L.d = 1.0f + L.E;
  return L;
}

// 1 / (1 + E) rounded about once: one Newton step on r ~ 1 / d whose
// residual 1 - d r is exact (fma) and takes in the rounding of d = 1 + E
// (exact: 1 >= E). On AVX-512 the step starts from vrcp14ps (relative error
// below 2^-14, so the step leaves 2^-28, a sixteenth of an ulp), which costs
// a fraction of a division; elsewhere from the division. E's own rounding
// (El) is left out, as in logistic_s_sn: with both, silu's float backward
// took 16% longer, for 0.2 ulp per kappa near its root (ACCURACY.md).
template <class V>
TA_HD V logistic_recip(const LogisticF32<V>& L) {
  const V de = (1.0f - L.d) + L.E;
  V r;
#if defined(TA_X86_AVX512)
  if constexpr (kZmm<V>) r = (V)_mm512_rcp14_ps((__m512)L.d);
  else r = 1.0f / L.d;
#else
  r = 1.0f / L.d;
#endif
  return madd<V>(r, madd<V>(-de, r, madd<V>(-L.d, r, 1.0f)), r);
}

// s = sigmoid(t) and sn = sigmoid(-t), s unscaled on the left (s 2^n is
// sigmoid(t) there), from r = logistic_recip(L), each from one product of
// rounded factors: r carries the rounding that matters near a root of f',
// where the sum 1 + c sn amplifies the error of sn (see logistic_recip).
template <class V>
TA_HD void logistic_s_sn(const LogisticF32<V>& L, V r, V& s, V& sn) {
  s = where<V>(L.pos, r, L.p * r);
  sn = where<V>(L.pos, L.E * r, r);
}

// y on the right, y 2^n on the left, and zero with m's sign far left (kept
// out of the scaling: scale_unless_below). th is logistic_f32's argument.
template <class V>
TA_HD V logistic_finish(const LogisticF32<V>& L, V y, V m, V th) {
  const V zero = splat<V>(0.0f);
  return scale_unless_below<false, V>(y, where<V>(L.pos, zero, L.nf), iwhere<V>(L.pos, isplat<I<V>>(0), L.n), th,
                               -kLogisticFar, sign_bit(m));
}
}  // namespace detail

// m sigmoid(t) for float: m / (1 + e^-t) right, m e^t / (1 + e^t) left.
template <bool kPair, class V>
TA_HD V mul_sigmoid_f32(V m, V th, V tl) {
  const auto L = detail::logistic_f32<kPair>(th, tl);
  return detail::logistic_finish(L, where<V>(L.pos, m, m * L.p) / L.d, m, th);
}

// sigmoid(t) (1 + c sigmoid(-t)) for float, from the same single division:
// right r (1 + c e r), left p r (1 + c r) 2^n, with r = 1 / d.
// c may be a pair too (kCPair: c + cl, cl below an ulp of c), for a c that
// is the argument itself (swish: t = c = beta x), where 1 + c sn cancels
// near the root of f'.
template <bool kPair, bool kCPair = false, class V>
TA_HD V sigmoid_1p_f32(V c, V th, V tl, V cl = V{}) {
  const auto L = detail::logistic_f32<kPair>(th, tl);
  V s, sn;
  detail::logistic_s_sn(L, detail::logistic_recip(L), s, sn);
  V one_p = madd<V>(c, sn, 1.0f);
  if constexpr (kCPair) one_p = madd<V>(cl, sn, one_p);
  return detail::logistic_finish(L, s * one_p, splat<V>(0.0f), th);
}

// sigmoid(t) sigmoid(-t) for float: r e r right, p r r 2^n left.
template <class V>
TA_HD V sigmoid_prod_f32(V t) {
  const auto L = detail::logistic_f32<false>(t, V{});
  V s, sn;
  detail::logistic_s_sn(L, detail::logistic_recip(L), s, sn);
  return detail::logistic_finish(L, s * sn, splat<V>(0.0f), t);
}

// Logistic sigmoid 1 / (1 + e^-x), as num / (1 + e^-|x|) with num = 1 or
// e^-|x|, so neither tail overflows or cancels; e^-|x| is carried as hi + lo
// and 1 + e^-|x| exactly into the division (div_one_plus).
//
// Float: mul_sigmoid_f32 (below), within 2.5 ulp.
template <class V>
TA_HD V sigmoid(V x) {
  using T = scalar_t<V>;
  if constexpr (sizeof(T) == 4) {
    return mul_sigmoid_f32<false>(splat<V>(T(1)), x, V{});
  }
  V El;
  V E = detail::exp_neg_abs(x, El);
  return detail::div_one_plus(E, El, x < splat<V>(T(0)));
}

namespace detail {
// log1p(e^-|x|) for float: with E = e^-|x| in (0, 1], log1p(E) = 2 atanh(u),
// u = E / (2 + E) in (0, 1/3], whose odd series needs no table and no log:
// 2u (1 + w/3 + w^2/5 + ... + w^7/15), w = u^2 <= 1/9 (truncation below
// 2^-29). u is corrected to first order for the roundings of E and of
// 2 + E, with 1 / (2 + E) = (1 - u) / 2 exactly. Within 1.8 ulp; a third of
// the operations of the general log1p on a compensated exp.
template <class V>
TA_HD V log1p_exp_neg_abs_f32(V x) {
  const auto L = logistic_f32<false>(x, V{});
  const V E = L.E, El = L.El;
  const V d = 2.0f + E;
  const V dl = (2.0f - d) + E;
  V u = E / d;
  u = madd<V>(madd<V>(-u, dl, madd<V>(-u, d, E) + El), (1.0f - u) * 0.5f, u);
  const V w = u * u;
  V P = splat<V>(1.0f / 15);
  P = madd<V>(P, w, 1.0f / 13);
  P = madd<V>(P, w, 1.0f / 11);
  P = madd<V>(P, w, 1.0f / 9);
  P = madd<V>(P, w, 1.0f / 7);
  P = madd<V>(P, w, 1.0f / 5);
  P = madd<V>(P, w, 1.0f / 3);
  const V u2 = u + u;
  return madd<V>(u2 * w, P, u2);
}
}  // namespace detail

// log(1 + e^x) = max(x, 0) + log1p(e^-|x|), e^-|x| carried as hi + lo.
template <class V>
TA_HD V softplus(V x) {
  using T = scalar_t<V>;
  if constexpr (sizeof(T) == 4) return max_nan(x, splat<V>(T(0))) + detail::log1p_exp_neg_abs_f32(x);
  V El;
  V E = detail::exp_neg_abs(x, El);
  return max_nan(x, splat<V>(T(0))) + detail::log1p_core(E, El);
}

// log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|).
template <class V>
TA_HD V log_sigmoid(V x) {
  using T = scalar_t<V>;
  if constexpr (sizeof(T) == 4) return min_nan(x, splat<V>(T(0))) - detail::log1p_exp_neg_abs_f32(x);
  V El;
  V E = detail::exp_neg_abs(x, El);
  return min_nan(x, splat<V>(T(0))) - detail::log1p_core(E, El);
}

// ------------------------------------------- products that underflow ---
// The activations x sigmoid(x), x tanh(softplus(x)) and x Phi(x) are normal
// numbers for x well past the point where their second factor alone is
// subnormal (float: sigmoid(x) for x < -87.3, while x sigmoid(x) stays normal
// down to x = -91.4). Rounding the factor into the denormal range first
// would cost up to 2^(lost bits) ulps of the product, so these form the
// product before the final scaling.

// m e^(x + xl), rounded once before the scaling (which is exact while the
// result is normal). Below x = kExpLo - 16 it returns 0 with m's sign: the
// product underflows there for any |m| < 2^23, which covers the callers'
// arguments wherever the result is not already deep in the denormals.
template <class V>
TA_HD V mul_exp(V m, V x, V xl = V{}) {
  using namespace detail;
  using T = scalar_t<V>;
  using C = FP<T>;
  const T lo = C::kExpLo - T(16);
  ExpParts<V> p = exp_parts(floor_at(cap(x, C::kExpHi), lo), xl);
  V r = scale_by<V>(madd_acc<V>(m, p.s, m * p.tail), p.nf, p.n);
  return where<V>(x < splat<V>(lo), m * T(0), r);
}

// x Phi(x), rounded about once in both tails: for x < 0 the factor x joins
// Phi's table value before the scaling; for x >= 0, 1 - Phi(-x) >= 1/2.
// Infinite x give the limits (0 at -inf, inf at +inf).
template <class V>
TA_HD V x_normcdf_exp(V x) {
  using namespace detail;
  using T = scalar_t<V>;
  T top;
  if constexpr (sizeof(T) == 4) top = coef::f32_ncdf_b4; else top = coef::f64_ncdf_b5;
  V a = abs(x);
  auto neg = x < splat<V>(T(0));
  V q = ncdf_lower<true>(a, where<V>(neg, x, splat<V>(T(1))));
  V r = where<V>(neg, q, x * (T(1) - q));
  // Past the table's cap x Phi(x) is far below the smallest denormal for any
  // x (it shrinks faster than x grows), while q was computed at the cap.
  V zero = where<V>(a == inf<V>(), splat<V>(T(0)), x * T(0));
  return where<V>(mand(neg, a >= splat<V>(top)), zero, r);
}

// The exact GELU's left tail in float, for x <= -6 (where the 32-piece
// tables below end). With z = -x, s = 1/z^2 and Q(s) = z Phi(-z) e^(z^2/2),
// the normal-tail table's last piece (a polynomial in s, fitted on
// z in [3.5, 14.5]):
//   x Phi(x) = -e^(-z^2/2) Q(s)
//   f'(x)    = Phi(-z) - z phi(z) = -z e^(-z^2/2) (k - s Q(s)),  k = 1/sqrt(2 pi)
// so both need one exponential and one reciprocal, and none of the normal
// table's other pieces. s Q(s) <= k/36 at z >= 6, so k - s Q cancels by less
// than 3% and s's rounding reaches the result at 1/36 of its size; k - s Q
// and z (k - s Q) are carried as pairs, and z^2/2 too, so the product with
// the exponential is rounded once before the scaling (which may take it
// into the denormal range). Past the cap (z = 14.5) both results are below
// half the smallest denormal: -0 (+0 at -inf) and +0, as the general forms
// give. NaN gives NaN. Lanes at x > -6 give values of no use.
template <bool kDeriv, class V>
TA_HD V gelu_left_tail_f32(V x) {
  using namespace detail;
  using namespace coef;
  const V z = cap(-x, f32_ncdf_b4);
  V h, l;
  two_prod<V>(z, z, h, l);
  const V s = 1.0f / h;
  // With none of its first pieces' masks set, f32_ncdf_pw evaluates the
  // last piece alone (the masks are constants, so the selects fold away).
  const mask_t<V> none = splat<V>(0.0f) != splat<V>(0.0f);
  V Ml;
  V Mh = f32_ncdf_pw(s, none, none, none, Ml);
  if constexpr (kDeriv) {
    const V sq = s * Mh;
    V Wh, Wl;
    fast_two_sum<V>(splat<V>(0x1.988454p-2f), -sq, Wh, Wl);
    Wl += madd<V>(-s, Ml, -0x1.857936p-27f);
    two_prod<V>(z, Wh, Mh, Ml);
    Ml = madd<V>(z, Wl, Ml);
  }
  const ExpParts<V> p = exp_parts(h * -0.5f, l * -0.5f);
  const V y = scale_by<V>(madd_acc<V>(Mh, p.s, madd<V>(Mh, p.tail, Ml * p.s)), p.nf, p.n);
  const auto past = x < splat<V>(-f32_ncdf_b4);
  if constexpr (kDeriv) return where<V>(past, splat<V>(0.0f), -y);
  return where<V>(past, where<V>(x == -inf<V>(), splat<V>(0.0f), x * 0.0f), -y);
}

// ------------------------------------------- float GELU from 32 pieces ---
// For |x| < 6 the float GELU and its derivative come from two 32-piece
// tables in z = |x| (mathlib_tables.h), with no exponential and no division:
//   x Phi(x) = -R(z) (x < 0),  x - R(z) (x >= 0),    R(z) = z Phi(-z)
//   f'(x)    =  D(z) (x < 0),  1 - D(z) (x >= 0),    D(z) = Phi(-z) - z phi(z)
// (and likewise the tanh form with sigmoid(-2u(z)) for Phi(-z)).
// R/(1 - Phi) <= 1 and |D| <= 1/2 where they are subtracted, so the
// subtraction does not magnify their error. At x >= 6 both results are x
// and 1 to the last bit (R(6) = 6 Phi(-6) = 5.9e-9 and |D(6)| = 3.5e-8 are
// below half an ulp of 6 and of 1; the tanh form is closer still). Lanes at
// x <= -6 or NaN take an exponential form (see gelu_pw_f32); every lane's
// result depends only on its own x.
constexpr float kGeluPwMax = 6.0f;

// Piece of z (lanes past kGeluPwMax must be clamped first: the index of NaN
// or a huge z would not be a number).
template <class V>
TA_HD detail::I<V> gelu_piece(V z) {
  using namespace coef;
  static_assert(kGeluTblA == 4.0f && kGeluTblS == 0.5f, "z (z + 4) / 2 = z^2/2 + 2z, rounded once");
  return to_int(madd<V>(z * 0.5f, z, z * 2.0f));
}

// The piece's polynomial at z as c + q, c the high part of its constant term
// and q the rest (the low part and the terms in v). Horner's rule would make
// every term wait on the one above it; the terms from v^2 up are formed
// beside the low ones and joined with v^2, which shortens the chain of
// dependent operations from N + 1 to 5. |v| <= 0.23 on every piece, so those
// terms are small and their extra rounding stays far below an ulp.
template <int N, class V>
TA_HD V table32_eval(const Table32<N>& t, detail::I<V> i, V z, V& c) {
  static_assert(N >= 3, "at least the terms up to v^3");
  const V v = z - pick32<V>(t.mid, i);
  const V v2 = v * v;
  V top = pick32<V>(t.p[N - 1], i);
  for (int k = N - 2; k >= 3; --k) top = madd<V>(top, v, pick32<V>(t.p[k], i));
  const V low = madd<V>(pick32<V>(t.p[2], i), v, pick32<V>(t.p[1], i));
  V q = madd<V>(top, v2, low);
  q = madd<V>(q, v, pick32<V>(t.p[0], i));
  q = madd<V>(q, v, pick32<V>(t.lo, i));
  c = pick32<V>(t.hi, i);
  return q;
}

// ---------------------------------------------- float tanh from 32 pieces ---
// tanh(z), z = |x|, on pieces of width 1/kTanhTblS (mathlib_tables.h), each
// holding tanh(z) / z with its constant term as hi + lo, so that z (c + q)
// rounds once where it matters (c z is exact inside the fused multiply-add).
// z is clamped at kTanhPwMax, past the 9.0109 where tanh rounds to 1 in
// float; the table gives 1 from 9.013 on (below that tanh is within 2^-33 of
// the midpoint between 1 and the float below, closer than its last rounding
// can tell, and either result is half an ulp away).
constexpr float kTanhPwMax = 9.1f;
static_assert(kTanhPwMax < coef::kTanhTblEnd, "the cap lies inside the table");

template <class V>
TA_HD V tanh_pw_f32(V x) {
  using namespace detail;
  // x clamped to +-kTanhPwMax with NaN passed through (cap and floor_at keep
  // it), so that x (c + q) carries the sign and NaN by itself; a NaN lane
  // reads any piece.
  const V xc = floor_at(cap(x, kTanhPwMax), -kTanhPwMax);
  const V zc = abs(xc);
  V c;
  const V q = table32_eval(coef::f32_tanh, to_int_nan(zc * coef::kTanhTblS), zc, c);
  return madd<V>(c, xc, q * xc);
}

// x - tanh(x) = S(z) with the sign of x, S from a table on the same pieces as
// tanh's: below z = 10/7 (kTanhshrinkZone) S(z) / z^3, so that the result
// keeps its relative accuracy where x and tanh x cancel, and S itself above.
// z^3 is formed as ch + cl, from a scaled z as in tanhshrink. Past the cap
// the result is z - 1: 1 - tanh z is below an ulp of it there.
template <class V>
TA_HD V tanhshrink_pw_f32(V x) {
  using namespace detail;
  using C = FP<float>;
  const V z = abs(x);
  const auto in = z < splat<V>(kTanhPwMax);
  const V zc = lt_pick<V>(z, splat<V>(kTanhPwMax));
  const I<V> i = to_int(zc * coef::kTanhTblS);
  V c;
  const V q = table32_eval(coef::f32_tanhshrink, i, zc, c);
  // Every lane is scaled (zc <= kTanhPwMax, so zs^3 stays finite): the
  // products below are then exact, powers of 2 pass through them, and the
  // final multiply by kCubeDown is exact too unless it rounds a subnormal
  // result, once.
  const V zs = zc * C::kCubeUp;
  V th, tl, ch, cl;
  two_prod<V>(zs, zs, th, tl);
  two_prod<V>(zs, th, ch, cl);
  cl = madd<V>(zs, tl, cl);
  // (ch + cl)(c + q) on the pieces below the zone, (c + q) / kCubeDown above.
  const auto zone = i < isplat<I<V>>(coef::kTanhshrinkZone);
  ch = where<V>(zone, ch, splat<V>(1.0f / C::kCubeDown));
  cl = where<V>(zone, cl, splat<V>(0.0f));
  const V r = madd<V>(ch, c, madd<V>(ch, q, cl * c)) * C::kCubeDown;
  return copysign(where<V>(in, r, z - 1.0f), x);
}

// The lanes the tables leave to gelu_pw_f32's far path: x <= -6 or NaN.
template <class V>
TA_HD mask_t<V> gelu_far(V x) {
  return mnot(x > splat<V>(-kGeluPwMax));
}

// The same lanes as bits (lane_bits). From an AVX-512 compare they come
// straight from its mask register: through gelu_far, GCC widens that mask
// to a vector and tests the vector back into a mask register, two more
// vector instructions per vector in a loop that is bound by them.
template <class V>
TA_HD uint32_t gelu_far_bits(V x) {
#if defined(TA_X86_AVX512)
  if constexpr (kZmm<V> && sizeof(scalar_t<V>) == 4) {
    return _mm512_cmp_ps_mask((__m512)x, _mm512_set1_ps(-kGeluPwMax), _CMP_NGT_UQ);
  }
#endif
  return lane_bits(gelu_far(x));
}

// x Phi(x) (kDeriv false, the R table) or its derivative (kDeriv true, the
// D table); kTanh picks the tanh form's tables (x sigmoid(2u), u =
// sqrt(2/pi) (x + 0.044715 x^3), with the same symmetry since u is odd).
// slow(x) is the exponential form over the whole range. Device code takes it
// everywhere: the tables are host constants, and a GPU's exponential is
// cheap next to its memory traffic. On the host the gelu_far lanes take
// gelu_left_tail_f32 (exact form) or slow (tanh form), behind a branch per
// vector; with defer they are left as they come from the tables (values of
// no use), for a caller that recomputes those lanes later (the CPU loops
// gather them into whole vectors: a branch taken by a third of the vectors
// at random, as for inputs with a standard deviation of 3, is mispredicted
// so often that it costs more than the exponential it skips).
template <bool kTanh, bool kDeriv, class V, class Slow>
TA_HD V gelu_pw_f32(V x, Slow slow, bool defer = false) {
#if defined(TA_DEVICE_CODE)
  (void)defer;
  return slow(x);
#else
  using namespace coef;
  const auto& table = kDeriv ? (kTanh ? f32_gelu_tanh_d : f32_gelu_d) : (kTanh ? f32_gelu_tanh_r : f32_gelu_r);
  const V z = abs(x);
  // z is clamped at 6, where the tables' R and D are below half an ulp of
  // x and of 1, so x - R and 1 - D round to x and 1 for every x >= 6 (and
  // +inf) with no select of their own; NaN lands there too (a far lane).
  const V zc = lt_pick<V>(z, splat<V>(kGeluPwMax));
  const detail::I<V> i = gelu_piece(zc);
  V c;
  const V q = table32_eval(table, i, zc, c);
  V P;
  if constexpr (kDeriv) {
    // The pieces around the root z0 hold D / (z - z0), and z - z0 is
    // carried as t + tl: Fast2Sum's error of z - z0_hi is exact on those
    // pieces (below z0_hi, z0_hi is the larger; above, up to 1.5 where they
    // end, z - z0_hi is exact by Sterbenz).
    const float root_hi = kTanh ? f32_gelu_tanh_root_hi : f32_gelu_root_hi;
    const float root_lo = kTanh ? f32_gelu_tanh_root_lo : f32_gelu_root_lo;
    const V t = zc - root_hi;
    const V tl = (zc - (t + root_hi)) - root_lo;
    P = where<V>(i < isplat<detail::I<V>>(kGeluDZone), madd<V>(c, t, madd<V>(q, t, c * tl)), c + q);
  } else {
    // z (c + q) on piece 0, which holds R(z) / z, and c + q rounded once on
    // the others: one product with a factor s of z or 1 instead of both
    // forms and a select between them.
    static_assert(kGeluRZone == 1, "piece 0 holds R(z) / z");
    const V s = where<V>(i < isplat<detail::I<V>>(1), zc, splat<V>(1.0f));
    P = madd<V>(c, s, q * s);
  }
  // D or 1 - D; -R or x - R, as max(x, -0) - R: that is -0 - R below 0,
  // which keeps the sign of a result that underflows to zero.
  V r;
  if constexpr (kDeriv) r = where<V>(x < splat<V>(0.0f), P, 1.0f - P);
  else r = detail::floor_at<V>(x, -0.0f) - P;
  // The far mask inside the branch: a deferring caller finds those lanes
  // itself, and the compiler would form it ahead of the test of defer.
  if (!defer) {
    const auto far = gelu_far(x);
    if (any(far)) {
      V tail;
      if constexpr (kTanh) tail = slow(x);
      else tail = gelu_left_tail_f32<kDeriv>(x);
      // A NaN lane returns x itself: from the arithmetic, the NaN's sign
      // would depend on the order in which the compiler put the operands of
      // some addition, which may differ between the loops that inline this
      // code.
      r = where<V>(far, where<V>(isnan(x), x, tail), r);
    }
  }
  return r;
#endif
}

// x Phi(x): the float tables where they reach, the exponential form elsewhere
// (defer: see gelu_pw_f32; double has no tables and ignores it).
template <class V>
TA_HD V x_normcdf(V x, bool defer = false) {
  if constexpr (sizeof(scalar_t<V>) == 4) {
    return gelu_pw_f32<false, false>(x, [](V xs) TA_LAMBDA { return x_normcdf_exp(xs); }, defer);
  } else {
    (void)defer;
    return x_normcdf_exp(x);
  }
}

// Phi(x) + x phi(x) for float.
template <class V>
TA_HD V gelu_deriv_f32(V x, bool defer = false) {
  return gelu_pw_f32<false, true>(x, [](V xs) TA_LAMBDA { return gelu_deriv_f32_exp(xs); }, defer);
}

// sigmoid(xh + xl) and sigmoid(-(xh + xl)) for an argument carried as a pair
// (xl a correction below an ulp of xh; V{} for a plain argument): the
// exponential takes both parts, so an argument formed with more than one
// rounding keeps its accuracy where sigmoid's relative condition number
// |x| (1 - sigmoid(x)) is large. 1 + e^-|x| is carried exactly.
//
// s comes scaled: sigmoid(x) = s * scale, with scale = 2^-K on lanes left of
// kDeep, where sigmoid(x) would soon be subnormal, and 1 elsewhere. Callers
// multiply s by what they need and apply scale last, so a product that is a
// normal number is rounded once even where sigmoid(x) alone is not (float:
// x sigmoid(x) stays normal down to x = -91.4, sigmoid(x) only to -87.3).
// Only the exponent of e^-|x| changes on those lanes (1 + e^-|x| is 1 there
// to far below an ulp either way), so the scaling costs no extra exp. Left
// of kExpLo - 16, where any such product underflows, s is 0.
template <class V>
TA_HD void sigmoid_scaled(V xh, V xl, V& s, V& sn, V& scale) {
  using namespace detail;
  using T = scalar_t<V>;
  using C = FP<T>;
  constexpr int K = sizeof(T) == 4 ? 64 : 128;
  constexpr T kUnscale = sizeof(T) == 4 ? T(0x1p-64) : T(0x1p-128);  // 2^-K
  constexpr T kDeep = sizeof(T) == 4 ? T(-80) : T(-700);
  constexpr T kTop = -C::kExpLo + T(16);
  constexpr T kPosCap = -C::kExpLo;
  auto neg = xh < splat<V>(T(0));
  auto deep = xh < splat<V>(kDeep);
  V a = abs(xh);
  // Right of kPosCap, E is 0 (it would be below the smallest denormal); the
  // scaled left side goes 16 further, where the scaling still brings it back.
  auto gone = where<V>(neg, splat<V>(kTop), splat<V>(kPosCap)) < a;
  V ea = -min_nan(a, where<V>(neg, splat<V>(kTop), splat<V>(kPosCap))), eal = where<V>(neg, xl, -xl);
  V mh, ml;
  I<V> pn;
  if constexpr (sizeof(T) == 4) {
    // Float: the uncompensated exp, its last rounding kept (ml).
    mh = exp_unscaled_f32_pair(ea, eal, pn, ml);
  } else {
    ExpParts<V> p = exp_parts(ea, eal);
    fast_two_sum<V>(p.s, p.tail, mh, ml);
    pn = p.n;
  }
  I<V> nk = pn + iwhere<V>(deep, isplat<I<V>>(K), isplat<I<V>>(0));
  V E, El;
  if (normal_exps<V>(nk)) {
    V sc = exp2i<V>(nk);
    E = mh * sc;
    El = ml * sc;
  } else {
    I<V> n1, n2;
    split_exp<V>(nk, n1, n2);
    V s1 = exp2i<V>(n1), s2 = exp2i<V>(n2);
    E = (mh * s1) * s2;
    El = (ml * s1) * s2;
  }
  E = where<V>(gone, splat<V>(T(0)), E);
  El = where<V>(gone, splat<V>(T(0)), El);
  // 1 / (1 + E): 1 + E = d + de exactly, and 1 / (d + de) = r0 (1 - de r0)
  // to far below an ulp; only the division by d rounds.
  V d, de;
  fast_two_sum<V>(splat<V>(T(1)), E, d, de);
  de += El;
  V r0 = T(1) / d;
  V r = madd<V>(-de * r0, r0, r0);
  V er = madd<V>(E, r, El * r);  // E / (1 + E)
  s = where<V>(neg, er, r);
  sn = where<V>(neg, r, er);
  scale = where<V>(deep, splat<V>(kUnscale),
                   splat<V>(T(1)));
}

// e^-|x|, scaled like sigmoid_scaled's s: e^-|x| = e * scale.
template <class V>
TA_HD V exp_neg_abs_scaled(V x, V& scale) {
  using namespace detail;
  using T = scalar_t<V>;
  using C = FP<T>;
  constexpr int K = sizeof(T) == 4 ? 64 : 128;
  constexpr T kUnscale = sizeof(T) == 4 ? T(0x1p-64) : T(0x1p-128);  // 2^-K
  constexpr T kDeep = sizeof(T) == 4 ? T(-80) : T(-700);
  constexpr T kTop = -C::kExpLo + T(16);
  constexpr T kPosCap = -C::kExpLo;
  auto deep = x < splat<V>(kDeep);
  auto neg = x < splat<V>(T(0));
  V a = abs(x);
  V lim = where<V>(neg, splat<V>(kTop), splat<V>(kPosCap));
  ExpParts<V> p = exp_parts(-min_nan(a, lim), V{});
  V e = ldexp2<V>(p.s + p.tail, p.n + iwhere<V>(deep, isplat<I<V>>(K), isplat<I<V>>(0)));
  scale = where<V>(deep, splat<V>(kUnscale),
                   splat<V>(T(1)));
  return where<V>(a > lim, splat<V>(T(0)), e);
}

}  // namespace m
}  // namespace TA_ISA
}  // namespace ta
