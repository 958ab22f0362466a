// Portable SIMD layer shared by every activation's math.
//
// The math in mathlib.h and activations.h is written once, as templates over a
// "value type" V. V is either a plain scalar (float / double: CUDA kernels and
// reference evaluation) or a GCC vector-extension type holding one native CPU
// register of lanes (SSE2 on the baseline build, AVX2 or AVX-512 on the
// per-ISA builds). Arithmetic operators work on both; everything that differs
// between scalars and vectors (selection, bit casts, fused multiply-add,
// rounding) goes through the helpers below.
//
// Everything lives in an inline namespace named after the instruction set the
// translation unit is compiled for (TA_ISA). The same header is compiled once
// per ISA, and distinct mangled names keep the linker from merging an AVX-512
// copy of a helper into the baseline code path.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#if defined(__CUDACC__) || defined(__HIPCC__)
#include <cstring>
#define TA_HD __host__ __device__ __forceinline__
#define TA_DEVICE_CODE 1
#else
#define TA_HD inline __attribute__((always_inline))
#endif

// After a lambda's parameter list. GCC leaves a lambda that loads or computes
// a lot (a partial vector's copy, GELU's polynomial) out of line, and a call
// per vector clobbers every vector register: the loop's accumulators and
// constants go back to memory on each call.
#if defined(TA_DEVICE_CODE)
#define TA_LAMBDA
#else
#define TA_LAMBDA __attribute__((always_inline))
#endif

#ifndef TA_ISA
#define TA_ISA generic
#endif

#if !defined(TA_DEVICE_CODE) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

// Instruction sets of this translation unit. A per-ISA kernel file selects
// its target with `#pragma GCC target`, which does not define the compiler's
// __AVX2__-style macros in C++, so it also defines TA_TARGET_<ISA>.
#if !defined(TA_DEVICE_CODE) && (defined(__AVX512F__) || defined(TA_TARGET_AVX512))
#define TA_X86_AVX512 1
#endif
#if !defined(TA_DEVICE_CODE) && (defined(__AVX2__) || defined(TA_TARGET_AVX2) || defined(TA_X86_AVX512))
#define TA_X86_AVX2 1  // with FMA and F16C
#endif

#if defined(__FMA__) || defined(TA_X86_AVX2) || defined(TA_DEVICE_CODE) || defined(__aarch64__)
#define TA_HAS_FMA 1
#else
#define TA_HAS_FMA 0
#endif

namespace ta {
inline namespace TA_ISA {
namespace simd {

template <class T> struct int_of;
template <> struct int_of<float> { using type = int32_t; using utype = uint32_t; };
template <> struct int_of<double> { using type = int64_t; using utype = uint64_t; };

// ---------------------------------------------------------------- traits ---
// traits<V>::scalar is the element type, ::ivec the same-width signed integer
// type (a vector for vector V), ::mask what a comparison of two V returns.
template <class V, class = void>
struct traits {
  using scalar = V;
  using ivec = typename int_of<V>::type;
  using mask = bool;
  static constexpr int lanes = 1;
  static constexpr bool is_vector = false;
};

#ifndef TA_DEVICE_CODE
template <class T, int N>
struct vec_t {
  // A dependent vector_size only works on a member typedef, not on an alias
  // template.
  typedef T type __attribute__((vector_size(sizeof(T) * N)));
};
template <class T, int N>
using vec = typename vec_t<T, N>::type;

template <class V>
struct traits<V, std::void_t<decltype(std::declval<V>()[0])>> {
  using scalar = std::remove_cv_t<std::remove_reference_t<decltype(std::declval<V>()[0])>>;
  static constexpr int lanes = sizeof(V) / sizeof(scalar);
  using ivec = vec<typename int_of<scalar>::type, lanes>;
  using mask = ivec;
  static constexpr bool is_vector = true;
};

// Bytes of one native register for the ISA this translation unit targets.
#if defined(TA_X86_AVX512)
constexpr int kRegisterBytes = 64;
#elif defined(TA_X86_AVX2)
constexpr int kRegisterBytes = 32;
#else
constexpr int kRegisterBytes = 16;
#endif
template <class T>
using native = vec<T, kRegisterBytes / sizeof(T)>;
#endif  // !TA_DEVICE_CODE

template <class V> using scalar_t = typename traits<V>::scalar;
template <class V> using ivec_t = typename traits<V>::ivec;
template <class V> using mask_t = typename traits<V>::mask;

// ------------------------------------------------------------- creation ---
template <class V>
TA_HD V splat(scalar_t<V> s) {
  if constexpr (traits<V>::is_vector) {
    // s - 0 is s for every s, signed zeros and NaN payloads included.
    return s - V{};
  } else {
    return s;
  }
}

template <class I, class S>
TA_HD I isplat(S s) {
  if constexpr (std::is_integral_v<I>) {
    return static_cast<I>(s);
  } else {
    return static_cast<std::remove_reference_t<decltype(std::declval<I>()[0])>>(s) - I{};
  }
}

// ------------------------------------------------------------ selection ---
// where(m, a, b): lane-wise m ? a : b. Scalars on either side broadcast.
template <class V>
TA_HD V where(mask_t<V> m, V a, V b) {
  if constexpr (traits<V>::is_vector) {
    return m ? a : b;
  } else {
    return m ? a : b;
  }
}
template <class V, std::enable_if_t<traits<V>::is_vector, int> = 0>
TA_HD V where(mask_t<V> m, V a, scalar_t<V> b) { return where<V>(m, a, splat<V>(b)); }
template <class V, std::enable_if_t<traits<V>::is_vector, int> = 0>
TA_HD V where(mask_t<V> m, scalar_t<V> a, V b) { return where<V>(m, splat<V>(a), b); }
template <class V, std::enable_if_t<traits<V>::is_vector, int> = 0>
TA_HD V where(mask_t<V> m, scalar_t<V> a, scalar_t<V> b) { return where<V>(m, splat<V>(a), splat<V>(b)); }

// a < b ? a : b and a > b ? a : b lane by lane, NaN in either giving b: the
// definition of x86's minps and maxps, which compilers do not put in place of
// the compare and blend themselves.
template <class V>
TA_HD V lt_pick(V a, V b) {
#if defined(TA_X86_AVX512)
  if constexpr (std::is_same_v<V, vec<float, 16>>) return (V)_mm512_min_ps((__m512)a, (__m512)b);
  if constexpr (std::is_same_v<V, vec<double, 8>>) return (V)_mm512_min_pd((__m512d)a, (__m512d)b);
#endif
#if defined(TA_X86_AVX2)
  if constexpr (std::is_same_v<V, vec<float, 8>>) return (V)_mm256_min_ps((__m256)a, (__m256)b);
  if constexpr (std::is_same_v<V, vec<double, 4>>) return (V)_mm256_min_pd((__m256d)a, (__m256d)b);
#endif
  return where<V>(a < b, a, b);
}
template <class V>
TA_HD V gt_pick(V a, V b) {
#if defined(TA_X86_AVX512)
  if constexpr (std::is_same_v<V, vec<float, 16>>) return (V)_mm512_max_ps((__m512)a, (__m512)b);
  if constexpr (std::is_same_v<V, vec<double, 8>>) return (V)_mm512_max_pd((__m512d)a, (__m512d)b);
#endif
#if defined(TA_X86_AVX2)
  if constexpr (std::is_same_v<V, vec<float, 8>>) return (V)_mm256_max_ps((__m256)a, (__m256)b);
  if constexpr (std::is_same_v<V, vec<double, 4>>) return (V)_mm256_max_pd((__m256d)a, (__m256d)b);
#endif
  return where<V>(a > b, a, b);
}

template <class M>
TA_HD M mand(M a, M b) {
  if constexpr (std::is_same_v<M, bool>) return a && b; else return a & b;
}
template <class M>
TA_HD M mor(M a, M b) {
  if constexpr (std::is_same_v<M, bool>) return a || b; else return a | b;
}
template <class M>
TA_HD M mnot(M a) {
  if constexpr (std::is_same_v<M, bool>) return !a; else return ~a;
}
// (nvcc's front end cannot parse the shuffles below; it only sees scalar
// masks.)
#if !defined(TA_DEVICE_CODE)
// Lanes kOff .. kOff + n - 1 of a vector (values or a mask), n the length of
// the sequence: with n half the lanes, one half of it.
template <int kOff, class M, int... kI>
TA_HD auto vec_half(M m, std::integer_sequence<int, kI...>) {
  return __builtin_shufflevector(m, m, (kOff + kI)...);
}
// any()/all() of a mask register: halves combined lane-wise with OR / AND, so
// the test stays in vector registers (a few instructions) instead of reading
// one lane at a time, which costs about as much as the work a branch on it
// skips.
template <bool kAll, class M>
TA_HD bool reduce_mask(M m) {
  constexpr int n = sizeof(M) / sizeof(m[0]);
  if constexpr (n == 1) {
    return m[0] != 0;
  } else if constexpr (n == 2) {
    return (kAll ? (m[0] & m[1]) : (m[0] | m[1])) != 0;
  } else {
    using Half = std::make_integer_sequence<int, n / 2>;
    const auto lo = vec_half<0>(m, Half{}), hi = vec_half<n / 2>(m, Half{});
    return reduce_mask<kAll>(kAll ? (lo & hi) : (lo | hi));
  }
}
#endif
template <class M>
TA_HD bool any(M m) {
  if constexpr (std::is_same_v<M, bool>) {
    return m;
  } else {
#if defined(TA_X86_AVX512)
    // A compare into a mask register and kortest, where the reduction by
    // halves takes eight instructions.
    if constexpr (sizeof(M) == 64 && sizeof(m[0]) == 4) {
      return _mm512_test_epi32_mask((__m512i)m, (__m512i)m) != 0;
    } else if constexpr (sizeof(M) == 64 && sizeof(m[0]) == 8) {
      return _mm512_test_epi64_mask((__m512i)m, (__m512i)m) != 0;
    }
#endif
#if !defined(TA_DEVICE_CODE)
    return reduce_mask<false>(m);
#endif
  }
}
template <class M>
TA_HD bool all(M m) {
  if constexpr (std::is_same_v<M, bool>) {
    return m;
  } else {
#if !defined(TA_DEVICE_CODE)
    return reduce_mask<true>(m);
#endif
  }
}

// The set lanes of a mask as bits, lane j in bit j.
template <class M>
TA_HD uint32_t lane_bits(M m) {
  if constexpr (std::is_same_v<M, bool>) {
    return m ? 1u : 0u;
  } else {
#if defined(TA_X86_AVX512)
    if constexpr (sizeof(M) == 64 && sizeof(m[0]) == 4) return _mm512_test_epi32_mask((__m512i)m, (__m512i)m);
#endif
#if defined(TA_X86_AVX2)
    if constexpr (sizeof(M) == 32 && sizeof(m[0]) == 4) return static_cast<uint32_t>(_mm256_movemask_ps((__m256)m));
#endif
    uint32_t b = 0;
    for (int j = 0; j < static_cast<int>(sizeof(M) / sizeof(m[0])); ++j) b |= (m[j] != 0 ? 1u : 0u) << j;
    return b;
  }
}

// True for a vector of one AVX-512 register, where the kernels use the
// instructions that have no portable form (vscalefps, vpermps).
#if defined(TA_X86_AVX512)
template <class V>
constexpr bool kZmm = traits<V>::is_vector && sizeof(V) == 64;
#else
template <class V>
constexpr bool kZmm = false;
#endif

// ------------------------------------------------------------ bit casts ---
template <class To, class From>
TA_HD To bitcast(From f) {
  static_assert(sizeof(To) == sizeof(From), "bitcast between types of different size");
#if defined(TA_DEVICE_CODE)
  To t;
  memcpy(&t, &f, sizeof(To));
  return t;
#else
  return __builtin_bit_cast(To, f);
#endif
}
template <class V> TA_HD ivec_t<V> as_int(V v) { return bitcast<ivec_t<V>>(v); }
template <class V> TA_HD V as_fp(ivec_t<V> i) { return bitcast<V>(i); }

// Float -> integer conversion, truncating toward zero. Lanes must be in range.
template <class V>
TA_HD ivec_t<V> to_int(V v) {
  if constexpr (traits<V>::is_vector) {
    return __builtin_convertvector(v, ivec_t<V>);
  } else {
    return static_cast<ivec_t<V>>(v);
  }
}
// to_int where NaN lanes may come in and get some integer: x86's conversion
// is defined for them (it gives INT_MIN); elsewhere they are zeroed first.
template <class V>
TA_HD ivec_t<V> to_int_nan(V v) {
#if defined(TA_X86_AVX512)
  if constexpr (std::is_same_v<V, vec<float, 16>>) return (ivec_t<V>)_mm512_cvttps_epi32((__m512)v);
#endif
#if defined(TA_X86_AVX2)
  if constexpr (std::is_same_v<V, vec<float, 8>>) return (ivec_t<V>)_mm256_cvttps_epi32((__m256)v);
#endif
  return to_int(where<V>(v == v, v, splat<V>(scalar_t<V>(0))));
}
template <class V>
TA_HD V to_fp(ivec_t<V> i) {
  if constexpr (traits<V>::is_vector) {
    return __builtin_convertvector(i, V);
  } else {
    return static_cast<V>(i);
  }
}

// ---------------------------------------------------------- sign and abs ---
template <class V>
TA_HD ivec_t<V> sign_mask_bits() {
  using S = typename int_of<scalar_t<V>>::type;
  return isplat<ivec_t<V>>(static_cast<S>(static_cast<typename int_of<scalar_t<V>>::utype>(1)
                                          << (8 * sizeof(S) - 1)));
}
template <class V> TA_HD V abs(V x) { return as_fp<V>(as_int(x) & ~sign_mask_bits<V>()); }
template <class V> TA_HD V sign_bit(V x) { return as_fp<V>(as_int(x) & sign_mask_bits<V>()); }
// |mag| with the sign of sgn.
template <class V>
TA_HD V copysign(V mag, V sgn) {
  return as_fp<V>((as_int(mag) & ~sign_mask_bits<V>()) | (as_int(sgn) & sign_mask_bits<V>()));
}
// x with its sign flipped where sgn is negative (x * sign(sgn) without a multiply).
template <class V>
TA_HD V mulsign(V x, V sgn) { return as_fp<V>(as_int(x) ^ (as_int(sgn) & sign_mask_bits<V>())); }

template <class V> TA_HD mask_t<V> isnan(V x) { return x != x; }
template <class V>
TA_HD mask_t<V> isinf(V x) {
  return abs(x) == splat<V>(static_cast<scalar_t<V>>(__builtin_inf()));
}
template <class V> TA_HD mask_t<V> isfinite(V x) { return abs(x) < splat<V>(static_cast<scalar_t<V>>(__builtin_inf())); }

// min/max that return NaN when either operand is NaN, as ATen's minimum/maximum.
template <class V>
TA_HD V max_nan(V a, V b) { return where<V>(isnan(a), a, where<V>(a > b, a, b)); }
template <class V>
TA_HD V min_nan(V a, V b) { return where<V>(isnan(a), a, where<V>(a < b, a, b)); }

// ---------------------------------------------------- fused multiply-add ---
// fma(a, b, c) = a * b + c with one rounding. On the baseline x86-64 build
// (no FMA unit) it is emulated exactly; callers that only want speed use
// madd, which fuses when the hardware can.
template <class V> TA_HD V fma(V a, V b, V c);

template <class V>
TA_HD V madd(V a, V b, V c) {
#if TA_HAS_FMA
  return fma<V>(a, b, c);
#else
  return a * b + c;
#endif
}
template <class V, std::enable_if_t<traits<V>::is_vector, int> = 0>
TA_HD V madd(V a, scalar_t<V> b, V c) { return madd<V>(a, splat<V>(b), c); }
template <class V, std::enable_if_t<traits<V>::is_vector, int> = 0>
TA_HD V madd(V a, V b, scalar_t<V> c) { return madd<V>(a, b, splat<V>(c)); }
template <class V, std::enable_if_t<traits<V>::is_vector, int> = 0>
TA_HD V madd(V a, scalar_t<V> b, scalar_t<V> c) { return madd<V>(a, splat<V>(b), splat<V>(c)); }

// Exact product: a * b == hi + lo.
template <class V>
TA_HD void two_prod(V a, V b, V& hi, V& lo) {
  hi = a * b;
#if TA_HAS_FMA
  lo = fma<V>(a, b, -hi);
#else
  // Dekker's splitting; exact barring overflow.
  using T = scalar_t<V>;
  const T split = sizeof(T) == 4 ? T(4097.0) : T(134217729.0);
  V ta = a * split, tb = b * split;
  V ah = ta - (ta - a), al = a - ah;
  V bh = tb - (tb - b), bl = b - bh;
  lo = ((ah * bh - hi) + ah * bl + al * bh) + al * bl;
#endif
}
// Exact sum: a + b == s + e.
template <class V>
TA_HD void two_sum(V a, V b, V& s, V& e) {
  s = a + b;
  V bb = s - a;
  e = (a - (s - bb)) + (b - bb);
}
// Exact sum when |a| >= |b| (or a == 0).
template <class V>
TA_HD void fast_two_sum(V a, V b, V& s, V& e) {
  s = a + b;
  e = b - (s - a);
}

template <class V>
TA_HD V fma(V a, V b, V c) {
  if constexpr (!traits<V>::is_vector) {
#if defined(TA_DEVICE_CODE)
    return ::fma(a, b, c);
#else
    // The float builtin: fma in double and then rounding to float can round twice.
    if constexpr (sizeof(V) == 4) return __builtin_fmaf(a, b, c); else return __builtin_fma(a, b, c);
#endif
  } else {
#ifndef TA_DEVICE_CODE
    using T = scalar_t<V>;
    [[maybe_unused]] constexpr int bytes = sizeof(V);
#if defined(TA_X86_AVX512)
    if constexpr (bytes == 64) {
      if constexpr (sizeof(T) == 4) return (V)_mm512_fmadd_ps(a, b, c);
      else return (V)_mm512_fmadd_pd(a, b, c);
    }
#endif
#if defined(TA_X86_AVX2) || defined(__FMA__)
    if constexpr (bytes == 32) {
      if constexpr (sizeof(T) == 4) return (V)_mm256_fmadd_ps(a, b, c);
      else return (V)_mm256_fmadd_pd(a, b, c);
    }
    if constexpr (bytes == 16) {
      if constexpr (sizeof(T) == 4) return (V)_mm_fmadd_ps(a, b, c);
      else return (V)_mm_fmadd_pd(a, b, c);
    }
#endif
    // No FMA unit: lane by lane through the correctly rounded library call.
    V r;
    for (int i = 0; i < traits<V>::lanes; ++i) {
      if constexpr (sizeof(T) == 4) r[i] = __builtin_fmaf(a[i], b[i], c[i]);
      else r[i] = __builtin_fma(a[i], b[i], c[i]);
    }
    return r;
#endif
  }
}

// a * b + c with about one rounding, for the last step of an evaluation whose
// product term dominates (|c| not much larger than |a * b|): fused where the
// ISA has FMA, otherwise the product is formed exactly (Dekker) and the two
// small parts are added first. Unlike fma it is not exact in every case, but
// it avoids the lane-by-lane library call that fma costs without an FMA unit.
template <class V>
TA_HD V madd_acc(V a, V b, V c) {
#if TA_HAS_FMA
  return fma<V>(a, b, c);
#else
  V p, pe;
  two_prod<V>(a, b, p, pe);
  return p + (pe + c);
#endif
}
template <class V, std::enable_if_t<traits<V>::is_vector, int> = 0>
TA_HD V madd_acc(V a, scalar_t<V> b, V c) { return madd_acc<V>(a, splat<V>(b), c); }

// ---------------------------------------------------------------- division --
// n / s for many n and one s, rounded as the division n / s is. A vector
// division is long and poorly pipelined: on AVX-512 it takes about three
// times as long as the multiply and two fused multiply-adds below, and it
// was a softmax row's costliest step after exp. With FMA, q = n RN(1/s) is
// corrected by Markstein's step: the residual n - q s is exact in a fused
// multiply-add, and q + r RN(1/s) rounds to the quotient. The residual is
// formed at scale 2^64 (n and s scaled up, 1/s down) so that it does not
// underflow where the quotient lies near or in the subnormals.
// tests/native/mathlib_accuracy.cpp checks the result against the division
// bit for bit. Valid for finite n with |n| < 2^63 and 0 < s < 2^63 (a softmax
// row's e^(x - max) <= 1 and its sum, from 1 to the row's length); NaN in
// either gives NaN, as the division does. Without FMA the residual would be
// rounded, so the baseline build divides.
template <class V>
struct DivideBy {
  using C = scalar_t<V>;
#if TA_HAS_FMA
  static constexpr C kUp = C(0x1p64), kDown = C(0x1p-64);
  V inv, neg_s_up, inv_down;
  TA_HD explicit DivideBy(V s) : inv(C(1) / s), neg_s_up(s * -kUp), inv_down(inv * kDown) {}
  TA_HD V operator()(V n) const {
    const V q = n * inv;
    return madd<V>(madd<V>(q, neg_s_up, n * kUp), inv_down, q);
  }
#else
  V s;
  TA_HD explicit DivideBy(V s_) : s(s_) {}
  TA_HD V operator()(V n) const { return n / s; }
#endif
};

// ------------------------------------------------------------- rounding ---
// Round to nearest (ties to even) for |x| < 2^(mantissa bits - 1); larger
// values are already integers and come back unchanged.
template <class V>
TA_HD V rint(V x) {
  using T = scalar_t<V>;
  const T magic = sizeof(T) == 4 ? T(12582912.0f) : T(6755399441055744.0);  // 1.5 * 2^(p-1)
  V r = (x + magic) - magic;
  return where<V>(abs(x) < splat<V>(sizeof(T) == 4 ? T(4194304.0f) : T(2251799813685248.0)), r, x);
}

// Logical right shift of every lane. Prefer it to >> where the value is known
// to be non-negative: x86 has no arithmetic shift of 64-bit lanes before
// AVX-512, so >> on int64 vectors is emulated with several instructions.
template <class I>
TA_HD I srl(I v, int s) {
  if constexpr (std::is_integral_v<I>) {
    return static_cast<I>(static_cast<std::make_unsigned_t<I>>(v) >> s);
  } else {
#ifndef TA_DEVICE_CODE
    using E = std::remove_cv_t<std::remove_reference_t<decltype(v[0])>>;
    using U = vec<std::make_unsigned_t<E>, sizeof(I) / sizeof(E)>;
    return (I)((U)v >> s);
#endif
  }
}

// 2^n for integer-valued n in the normal exponent range.
template <class V>
TA_HD V exp2i(ivec_t<V> n) {
  using T = scalar_t<V>;
  constexpr int mant = sizeof(T) == 4 ? 23 : 52;
  constexpr int bias = sizeof(T) == 4 ? 127 : 1023;
  return as_fp<V>((n + isplat<ivec_t<V>>(bias)) << mant);
}

// ------------------------------------------------------- square root ---
template <class V>
TA_HD V sqrt(V x) {
  if constexpr (!traits<V>::is_vector) {
#if defined(TA_DEVICE_CODE)
    return ::sqrt(x);
#else
    if constexpr (sizeof(V) == 4) return __builtin_sqrtf(x); else return __builtin_sqrt(x);
#endif
  } else {
#ifndef TA_DEVICE_CODE
    using T = scalar_t<V>;
    [[maybe_unused]] constexpr int bytes = sizeof(V);
#if defined(TA_X86_AVX512)
    if constexpr (bytes == 64) {
      if constexpr (sizeof(T) == 4) return (V)_mm512_sqrt_ps(x); else return (V)_mm512_sqrt_pd(x);
    }
#endif
#if defined(TA_X86_AVX2) || defined(__AVX__)
    if constexpr (bytes == 32) {
      if constexpr (sizeof(T) == 4) return (V)_mm256_sqrt_ps(x); else return (V)_mm256_sqrt_pd(x);
    }
#endif
#if defined(__SSE2__)
    if constexpr (bytes == 16) {
      if constexpr (sizeof(T) == 4) return (V)_mm_sqrt_ps(x); else return (V)_mm_sqrt_pd(x);
    }
#endif
    V r;
    for (int i = 0; i < traits<V>::lanes; ++i) {
      if constexpr (sizeof(T) == 4) r[i] = __builtin_sqrtf(x[i]); else r[i] = __builtin_sqrt(x[i]);
    }
    return r;
#endif
  }
}

// Several results of one functor call.
template <class V, int K>
struct Outs {
  V v[K];
};

// A per-piece constant of a 32-piece table, picked per lane: row[idx & 31].
// On AVX-512 the row fills two registers and one two-register permute picks
// all 16 lanes; on AVX2 four one-register permutes are joined by the index's
// bits 3 and 4. idx may hold anything on lanes whose result is not used.
template <class V>
TA_HD V pick32(const float* row, ivec_t<V> idx) {
  static_assert(sizeof(scalar_t<V>) == 4, "32-piece tables hold floats");
  if constexpr (!traits<V>::is_vector) {
    return row[idx & 31];
#if defined(TA_X86_AVX512)
  } else if constexpr (sizeof(V) == 64) {
    return (V)_mm512_permutex2var_ps(_mm512_load_ps(row), (__m512i)idx, _mm512_load_ps(row + 16));
#endif
#if defined(TA_X86_AVX2)
  } else if constexpr (sizeof(V) == 32) {
    const __m256i i = (__m256i)idx;
    const __m256 a = _mm256_permutevar8x32_ps(_mm256_load_ps(row), i);
    const __m256 b = _mm256_permutevar8x32_ps(_mm256_load_ps(row + 8), i);
    const __m256 c = _mm256_permutevar8x32_ps(_mm256_load_ps(row + 16), i);
    const __m256 d = _mm256_permutevar8x32_ps(_mm256_load_ps(row + 24), i);
    const __m256 bit3 = _mm256_castsi256_ps(_mm256_slli_epi32(i, 28));  // into the sign bit
    const __m256 bit4 = _mm256_castsi256_ps(_mm256_slli_epi32(i, 27));
    return (V)_mm256_blendv_ps(_mm256_blendv_ps(a, b, bit3), _mm256_blendv_ps(c, d, bit3), bit4);
#endif
  } else {
    V r{};
    for (int l = 0; l < traits<V>::lanes; ++l) r[l] = row[idx[l] & 31];
    return r;
  }
}

// A 32-piece polynomial table (see pick32): per piece the expansion point,
// the constant term as hi + lo, and the coefficients of v^1 .. v^N.
template <int N>
struct Table32 {
  float mid[32];
  float hi[32];
  float lo[32];
  float p[N][32];
};

// Apply a scalar function lane by lane (used where no vector formula exists).
template <class V, class F>
TA_HD V map_lanes(V x, F f) {
  if constexpr (traits<V>::is_vector) {
    V r = x;
    for (int i = 0; i < traits<V>::lanes; ++i) r[i] = f(x[i]);
    return r;
  } else {
    return f(x);
  }
}

}  // namespace simd
}  // namespace TA_ISA
}  // namespace ta
