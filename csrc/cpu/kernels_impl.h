// CPU loops for every registered activation, included once per instruction
// set by kernels_<ISA>.cpp, which defines TA_ISA and selects the target
// before anything is included. Nothing from PyTorch is included here and all
// code lives in a namespace named after the ISA, so no function compiled for
// a wider ISA can be merged into the baseline build by the linker.
//
// Every element goes through the same vector code: full vectors in place,
// the tail and strided data through a small buffer. Results therefore do not
// depend on memory layout, on how TensorIterator splits the work between
// threads, or on the number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <utility>

#include "../activations.h"
#include "kernels.h"

namespace ta {
inline namespace TA_ISA {
namespace cpu_impl {

using namespace ::ta::TA_ISA::simd;

// ------------------------------------------------------- storage formats ---
// raw: the element type in memory; C: the type the math runs in.
struct F32 { using raw = float; using C = float; };
struct F64 { using raw = double; using C = double; };
struct F16 { using raw = uint16_t; using C = float; };
struct BF16 { using raw = uint16_t; using C = float; };

template <class S> using C_t = typename S::C;
template <class S> using V_t = native<C_t<S>>;
template <class S> constexpr int kLanes = traits<V_t<S>>::lanes;

using VF = native<float>;
constexpr int kFL = traits<VF>::lanes;
using VU16 = vec<uint16_t, kFL>;
using VU32 = vec<uint32_t, kFL>;
using VI32 = vec<int32_t, kFL>;

// 16-bit lanes widened to 32 and back (values below 2^16). GCC 12 splits
// the generic conversions into halves joined by lane permutes, several
// instructions where AVX-512 and AVX2 have one or two; every bfloat16
// operand passes through these.
TA_HD VU32 widen_u16(VU16 h) {
#if defined(TA_X86_AVX512)
  return (VU32)_mm512_cvtepu16_epi32((__m256i)h);
#elif defined(TA_X86_AVX2)
  return (VU32)_mm256_cvtepu16_epi32((__m128i)h);
#else
  return __builtin_convertvector(h, VU32);
#endif
}
TA_HD VU16 narrow_u32(VU32 r) {
#if defined(TA_X86_AVX512)
  return (VU16)_mm512_cvtepi32_epi16((__m512i)r);
#elif defined(TA_X86_AVX2)
  // packus saturates signed lanes to [0, 2^16): exact for these values.
  return (VU16)_mm_packus_epi32(_mm256_castsi256_si128((__m256i)r), _mm256_extracti128_si256((__m256i)r, 1));
#else
  return __builtin_convertvector(r, VU16);
#endif
}

// bfloat16 is the top half of a float; rounding to nearest even as c10 does.
TA_HD VF bf16_to_float(VU16 h) {
  return bitcast<VF>(widen_u16(h) << 16);
}
TA_HD VU16 float_to_bf16(VF f) {
  VU32 u = bitcast<VU32>(f);
  VU32 r = (u + (((u >> 16) & 1u) + 0x7FFFu)) >> 16;
  VU32 nan = (VU32{} + 0x7FC0u);
  r = (f != f) ? nan : r;
  return narrow_u32(r);
}

// IEEE half <-> float without F16C, exact in both directions (round to
// nearest even on the way down, subnormals and NaN included).
TA_HD VF half_to_float_sw(VU16 h) {
  VI32 x = __builtin_convertvector(h, VI32);
  VI32 sign = (x & 0x8000) << 16;
  VI32 e = (x >> 10) & 0x1F;
  VI32 mant = x & 0x3FF;
  VI32 normal = ((e + 112) << 23) | (mant << 13);
  VI32 special = 0x7F800000 | (mant << 13);
  // Subnormal halves are mant * 2^-24, exact in float.
  VI32 sub = bitcast<VI32>(__builtin_convertvector(mant, VF) * 5.9604644775390625e-8f);
  VI32 bits = (e == 0) ? sub : ((e == 31) ? special : normal);
  return bitcast<VF>(bits | sign);
}
TA_HD VU16 float_to_half_sw(VF f) {
  VI32 u = bitcast<VI32>(f);
  VI32 sign = (u >> 16) & 0x8000;
  VI32 a = u & 0x7FFFFFFF;
  VF af = bitcast<VF>(a);
  // Normal range: drop 13 mantissa bits with round-to-nearest-even, then
  // rebias the exponent; a carry out of the mantissa lands in the exponent.
  VI32 rounded = (a + (0xFFF + ((a >> 13) & 1))) >> 13;
  VI32 normal = rounded - (112 << 10);
  // Subnormal range: |f| * 2^24 rounded to an integer is the encoding.
  VF scaled = af * 16777216.0f;
  VF magic = VF{} + 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  VI32 sub = __builtin_convertvector((scaled + magic) - magic, VI32);
  VI32 out = (af < 6.103515625e-05f) ? sub : normal;          // below 2^-14
  out = (af >= 65520.0f) ? (VI32{} + 0x7C00) : out;            // rounds to inf
  out = (a > 0x7F800000) ? (VI32{} + 0x7E00) : out;            // NaN
  return __builtin_convertvector(out | sign, VU16);
}

// The hardware conversions round to nearest even too, so every build
// produces the same bits.
TA_HD VF half_to_float(VU16 h) {
#if defined(TA_X86_AVX512)
  return (VF)_mm512_cvtph_ps((__m256i)h);
#elif defined(TA_X86_AVX2)
  return (VF)_mm256_cvtph_ps((__m128i)h);
#else
  return half_to_float_sw(h);
#endif
}
TA_HD VU16 float_to_half(VF f) {
#if defined(TA_X86_AVX512)
  return (VU16)_mm512_cvtps_ph((__m512)f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#elif defined(TA_X86_AVX2)
  return (VU16)_mm256_cvtps_ph((__m256)f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
  return float_to_half_sw(f);
#endif
}

template <class S>
TA_HD V_t<S> load(const typename S::raw* p) {
  if constexpr (std::is_same_v<S, F32> || std::is_same_v<S, F64>) {
    V_t<S> v;
    __builtin_memcpy(&v, p, sizeof(v));
    return v;
  } else {
    VU16 h;
    __builtin_memcpy(&h, p, sizeof(h));
    if constexpr (std::is_same_v<S, BF16>) return bf16_to_float(h); else return half_to_float(h);
  }
}

template <class S>
TA_HD void store(typename S::raw* p, V_t<S> v) {
  if constexpr (std::is_same_v<S, F32> || std::is_same_v<S, F64>) {
    __builtin_memcpy(p, &v, sizeof(v));
  } else {
    VU16 h;
    if constexpr (std::is_same_v<S, BF16>) h = float_to_bf16(v); else h = float_to_half(v);
    __builtin_memcpy(p, &h, sizeof(h));
  }
}

// ----------------------------------------------------------------- loops ---
// The W raw elements of one step of a loop operand. It converts to their
// vector, so a loop body taking V sees values; the lookup-table loops take
// Elems and index their tables with the stored bit patterns.
template <class S>
struct Elems {
  const typename S::raw* p;
  TA_HD operator V_t<S>() const { return load<S>(p); }
};

// Runs f over n elements: inputs in[k] advance by step[k] (1, or 0 for an
// operand broadcast along the loop, whose pointer then holds one vector's
// worth of copies), outputs are contiguous. The last output is stored as SL
// (S but for the parametric ops' per-element parameter gradient, kept in
// float for float16/bfloat16 so that its sum does not add rounded terms).
template <class S, class SL, int NOut, int NIn, class F, size_t... I, size_t... O>
TA_HD void contiguous(typename S::raw* const* out, const typename S::raw* const* in, const int* step, int64_t n,
                      F& f, std::index_sequence<I...>, std::index_sequence<O...>) {
  using R = typename S::raw;
  using RL = typename SL::raw;
  constexpr int W = kLanes<S>;
  static_assert(kLanes<SL> == W, "one vector of each storage per step");
  auto put = [](R* dst, int64_t at, int o, const V_t<S>& v) TA_LAMBDA {
    if (o == NOut - 1) {
      store<SL>(reinterpret_cast<RL*>(dst) + at, v);
    } else {
      store<S>(dst + at, v);
    }
  };
  auto emit = [&](R* const* dst, int64_t at, const auto& r) TA_LAMBDA {
    if constexpr (NOut == 1) {
      put(dst[0], at, 0, r);
    } else {
      (put(dst[O], at, O, r.v[O]), ...);
    }
  };
  int64_t i = 0;
  bool unit = true;
  for (int k = 0; k < NIn; ++k) unit &= step[k] == 1;
  if (unit) {
    // Every input advances with the loop: no per-load multiply, two vectors
    // per iteration so loads of the next vector overlap the math.
    for (; i + 2 * W <= n; i += 2 * W) {
      emit(out, i, f(Elems<S>{in[I] + i}...));
      emit(out, i + W, f(Elems<S>{in[I] + i + W}...));
    }
  }
  for (; i + W <= n; i += W) emit(out, i, f(Elems<S>{in[I] + i * step[I]}...));
  if (i < n) {
    // Zero padding keeps the spare lanes finite; their results are dropped.
    R ibuf[NIn][W] = {};
    alignas(64) unsigned char obuf[NOut][W * sizeof(RL) > W * sizeof(R) ? W * sizeof(RL) : W * sizeof(R)];
    R* optr[NOut];
    const int64_t rest = n - i;
    for (int k = 0; k < NIn; ++k) {
      __builtin_memcpy(ibuf[k], in[k] + i * step[k], static_cast<size_t>(step[k] ? rest : W) * sizeof(R));
    }
    for (int k = 0; k < NOut; ++k) optr[k] = reinterpret_cast<R*>(obuf[k]);
    emit(optr, 0, f(Elems<S>{ibuf[I]}...));
    for (int k = 0; k < NOut; ++k) {
      const size_t size = k == NOut - 1 ? sizeof(RL) : sizeof(R);
      __builtin_memcpy(reinterpret_cast<char*>(out[k]) + i * size, obuf[k], static_cast<size_t>(rest) * size);
    }
  }
}

// One row of TensorIterator's loop: data[0..NOut) are outputs, then NIn
// inputs.
template <class S, int NOut, int NIn, class F>
TA_HD void run_row(char** data, const int64_t* strides, int64_t n, F& f) {
  using R = typename S::raw;
  constexpr int W = kLanes<S>;
  constexpr auto iseq = std::make_index_sequence<NIn>();
  constexpr auto oseq = std::make_index_sequence<NOut>();
  constexpr int64_t kSize = sizeof(R);
  R* out[NOut];
  const R* in[NIn];
  int step[NIn];
  R bcast[NIn][W];
  bool fast = true;
  for (int k = 0; k < NOut; ++k) {
    out[k] = reinterpret_cast<R*>(data[k]);
    fast &= strides[k] == kSize;
  }
  for (int k = 0; k < NIn; ++k) {
    const int64_t st = strides[NOut + k];
    in[k] = reinterpret_cast<const R*>(data[NOut + k]);
    step[k] = 1;
    if (st == 0) {
      for (int j = 0; j < W; ++j) __builtin_memcpy(&bcast[k][j], in[k], sizeof(R));
      in[k] = bcast[k];
      step[k] = 0;
    } else {
      fast &= st == kSize;
    }
  }
  if (fast) {
    contiguous<S, S, NOut, NIn>(out, in, step, n, f, iseq, oseq);
    return;
  }
  // Strided operands: gather a block, run the contiguous code on it, scatter
  // the results.
  constexpr int64_t kBlock = 256;
  R buf[NOut + NIn][kBlock];
  R* bout[NOut];
  const R* bin[NIn];
  int ones[NIn];
  for (int k = 0; k < NOut; ++k) bout[k] = buf[k];
  for (int k = 0; k < NIn; ++k) {
    bin[k] = buf[NOut + k];
    ones[k] = 1;
  }
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t len = n - start < kBlock ? n - start : kBlock;
    for (int k = NOut; k < NOut + NIn; ++k) {
      const char* src = data[k] + start * strides[k];
      for (int64_t j = 0; j < len; ++j) __builtin_memcpy(&buf[k][j], src + j * strides[k], sizeof(R));
    }
    contiguous<S, S, NOut, NIn>(bout, bin, ones, len, f, iseq, oseq);
    for (int k = 0; k < NOut; ++k) {
      char* dst = data[k] + start * strides[k];
      for (int64_t j = 0; j < len; ++j) __builtin_memcpy(dst + j * strides[k], &buf[k][j], sizeof(R));
    }
  }
}

// body(d) for each row of TensorIterator's 2-d loop, d holding the K
// operands' pointers at that row.
template <int K, class Body>
TA_HD void for_each_row(char** data, const int64_t* strides, int64_t rows, Body&& body) {
  char* d[K];
  for (int k = 0; k < K; ++k) d[k] = data[k];
  for (int64_t r = 0; r < rows; ++r) {
    if (r > 0) {
      for (int k = 0; k < K; ++k) d[k] += strides[K + k];
    }
    body(d);
  }
}

// Every row of TensorIterator's 2-d loop (cpu::Loop) in one call. A strided
// view (a slice, the halves of a gated unit's input) arrives as many short
// rows; a call per row paid the call and the set-up each time: relu over
// rows of 32 floats ran at 0.57x PyTorch's speed, a gated backward over
// halves of 32 at 0.58x.
template <class S, int NOut, int NIn, class F>
void run(char** data, const int64_t* strides, int64_t n, int64_t rows, F f) {
  for_each_row<NOut + NIn>(data, strides, rows,
                           [&](char** d) TA_LAMBDA { run_row<S, NOut, NIn>(d, strides, n, f); });
}

// ------------------------------------------------------------ rare lanes ---
// For the ops whose float code sends some lanes down a slower path behind a
// branch per vector (Traits::kRareLanes). Where such lanes are common but
// scattered (the GELU tables' x <= -6 for inputs with a standard deviation
// of 3: 2.3% of the elements, in a third of the vectors) that branch is
// mispredicted so often that it costs more than the path it guards. Over
// unit-stride float32 data this loop runs `fast` (the op with the path
// skipped) on every vector of a block and notes, without a branch, the
// vectors that hold rare lanes; it then gathers those lanes into whole
// vectors, runs `full` on them and scatters the results. Every lane's
// result depends only on its own inputs (mathlib.h), so the output is bit
// for bit that of `full` alone, which runs other layouts, outputs that
// overlap an input, and the last elements that fill no vector.

// Writes the indices at + j of the set bits j of `bits` (W lanes) to dst
// (which has room for all lanes) and returns their number.
template <int W>
TA_HD int compress_lanes(uint32_t bits, int32_t at, int32_t* dst) {
#if defined(TA_X86_AVX512)
  if constexpr (W == 16) {
    const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(at),
                                         _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    _mm512_storeu_si512(dst, _mm512_maskz_compress_epi32(static_cast<__mmask16>(bits), idx));
    return __builtin_popcount(bits);
  }
#endif
  int c = 0;
  for (int j = 0; j < W; ++j) {
    dst[c] = at + j;
    c += (bits >> j) & 1;
  }
  return c;
}

template <class S, int NOut, int NIn, class Fast, class Rare, class Full, size_t... I, size_t... O>
void contiguous_rare(typename S::raw* const* out, const typename S::raw* const* in, int64_t n, Fast& fast,
                     Rare& rare, Full& full, std::index_sequence<I...> iseq, std::index_sequence<O...> oseq) {
  using R = typename S::raw;
  constexpr int W = kLanes<S>;
  auto put = [](R* const* dst, int64_t at, const auto& r) TA_LAMBDA {
    if constexpr (NOut == 1) {
      store<S>(dst[0] + at, r);
    } else {
      (store<S>(dst[O] + at, r.v[O]), ...);
    }
  };
  constexpr int kBlock = 64 * W;  // each input's block stays in L1 for the second pass
  int32_t vecs[kBlock / W];
  int32_t lanes[kBlock + W];
  const int64_t nv = n - n % W;
  for (int64_t base = 0; base < nv; base += kBlock) {
    const int len = static_cast<int>(nv - base < kBlock ? nv - base : kBlock);
    R* const o[NOut] = {(out[O] + base)...};
    const R* const x[NIn] = {(in[I] + base)...};
    int nrare = 0;
    for (int i = 0; i < len; i += W) {
      put(o, i, fast(Elems<S>{x[I] + i}...));
      vecs[nrare] = i;
      nrare += rare(Elems<S>{x[I] + i}...) != 0 ? 1 : 0;
    }
    int nl = 0;
    for (int q = 0; q < nrare; ++q) nl += compress_lanes<W>(rare(Elems<S>{x[I] + vecs[q]}...), vecs[q], lanes + nl);
    for (int k = 0; k < nl; k += W) {
      // The last group is padded with its last lane, which is rare too.
      R ib[NIn][W], ob[NOut][W];
      for (int j = 0; j < W; ++j) {
        const int32_t at = lanes[k + j < nl ? k + j : nl - 1];
        ((ib[I][j] = x[I][at]), ...);
      }
      R* const ot[NOut] = {ob[O]...};
      put(ot, 0, full(Elems<S>{ib[I]}...));
      const int m = nl - k < W ? nl - k : W;
      for (int j = 0; j < m; ++j) ((o[O][lanes[k + j]] = ob[O][j]), ...);
    }
  }
  if (nv < n) {
    R* const o[NOut] = {(out[O] + nv)...};
    const R* const x[NIn] = {(in[I] + nv)...};
    const int ones[NIn] = {((void)I, 1)...};
    contiguous<S, S, NOut, NIn>(o, x, ones, n - nv, full, iseq, oseq);
  }
}

template <class S, int NOut, int NIn, class Fast, class Rare, class Full>
TA_HD void run_rare_row(char** data, const int64_t* strides, int64_t n, Fast& fast, Rare& rare, Full& full) {
  using R = typename S::raw;
  static_assert(std::is_same_v<S, F32>, "only the float32 code has rare lanes");
  bool unit = true;
  for (int k = 0; k < NOut + NIn; ++k) unit &= strides[k] == static_cast<int64_t>(sizeof(R));
  // The second pass reads the inputs again: an output written over an input
  // (an in-place op, out= an input) would have replaced them.
  bool alias = false;
  for (int o = 0; o < NOut; ++o) {
    for (int k = NOut; k < NOut + NIn; ++k) {
      alias |= data[o] < data[k] + n * sizeof(R) && data[k] < data[o] + n * sizeof(R);
    }
  }
  if (!unit || alias) {
    run_row<S, NOut, NIn>(data, strides, n, full);
    return;
  }
  R* out[NOut];
  const R* in[NIn];
  for (int k = 0; k < NOut; ++k) out[k] = reinterpret_cast<R*>(data[k]);
  for (int k = 0; k < NIn; ++k) in[k] = reinterpret_cast<const R*>(data[NOut + k]);
  contiguous_rare<S, NOut, NIn>(out, in, n, fast, rare, full, std::make_index_sequence<NIn>(),
                                std::make_index_sequence<NOut>());
}

// run() through run_rare_row.
template <class S, int NOut, int NIn, class Fast, class Rare, class Full>
void run_rare(char** data, const int64_t* strides, int64_t n, int64_t rows, Fast fast, Rare rare, Full full) {
  for_each_row<NOut + NIn>(data, strides, rows, [&](char** d) TA_LAMBDA {
    run_rare_row<S, NOut, NIn>(d, strides, n, fast, rare, full);
  });
}

// run() of body(op, inputs...), through run_rare where the op has rare lanes
// (Op::rare of input kX gives them as bits, lane j in bit j).
template <class S, int NOut, int NIn, int kX, class Op, class Body>
void run_op(char** d, const int64_t* s, int64_t n, int64_t rows, const Op& op, Body body) {
  auto bind = [body](const Op& o) TA_LAMBDA { return [o, body](auto... a) TA_LAMBDA { return body(o, a...); }; };
  if constexpr (Op::kRareLanes && std::is_same_v<S, F32>) {
    Op lazy = op;
    lazy.set_defer_rare();
    auto rare = [](auto... a) TA_LAMBDA { return Op::rare(V_t<S>(std::get<kX>(std::tuple(a...)))); };
    run_rare<S, NOut, NIn>(d, s, n, rows, bind(lazy), rare, bind(op));
  } else {
    run<S, NOut, NIn>(d, s, n, rows, bind(op));
  }
}

// See cpu::TiledLoop; the last output is stored as SL (see contiguous).
template <class S, class SL, int NOut, int NIn, class F>
void run_tiled(char** data, const int8_t* mode, int64_t n, int64_t period, F f) {
  using R = typename S::raw;
  constexpr int W = kLanes<S>;
  R* out[NOut];
  const R* base[NIn];
  const R* in[NIn];
  int step[NIn];
  R bcast[NIn][W];
  for (int k = 0; k < NOut; ++k) out[k] = reinterpret_cast<R*>(data[k]);
  for (int k = 0; k < NIn; ++k) {
    base[k] = in[k] = reinterpret_cast<const R*>(data[NOut + k]);
    step[k] = mode[NOut + k] == 2 ? 0 : 1;
    if (step[k] == 0) {
      for (int j = 0; j < W; ++j) __builtin_memcpy(&bcast[k][j], base[k], sizeof(R));
      in[k] = bcast[k];
    }
  }
  for (int64_t start = 0; start < n; start += period) {
    R* o[NOut];
    for (int k = 0; k < NOut; ++k) {
      o[k] = k == NOut - 1 ? reinterpret_cast<R*>(reinterpret_cast<typename SL::raw*>(out[k]) + start) : out[k] + start;
    }
    for (int k = 0; k < NIn; ++k) {
      if (mode[NOut + k] == 0) in[k] = base[k] + start;
    }
    contiguous<S, SL, NOut, NIn>(o, in, step, n - start < period ? n - start : period, f,
                             std::make_index_sequence<NIn>(), std::make_index_sequence<NOut>());
  }
}

template <template <class> class Op, class S>
struct Pointwise {
  using C = C_t<S>;
  using V = V_t<S>;
  static void fwd(char** d, const int64_t* s, int64_t n, int64_t rows, const double* p) {
    run_op<S, 1, 1, 0>(d, s, n, rows, Op<C>(p), [](const Op<C>& op, V x) TA_LAMBDA { return op.fwd(x); });
  }
  static void bwd(char** d, const int64_t* s, int64_t n, int64_t rows, const double* p) {
    run_op<S, 1, 2, 1>(d, s, n, rows, Op<C>(p), [](const Op<C>& op, V g, V x) TA_LAMBDA { return op.bwd(g, x); });
  }
  static void dbwd(char** d, const int64_t* s, int64_t n, int64_t rows, const double* p) {
    const Op<C> op(p);
    run<S, 1, 3>(d, s, n, rows, [op](V gg, V g, V x) TA_LAMBDA { return op.dbwd(gg, g, x); });
  }
  static void bwd_result(char** d, const int64_t* s, int64_t n, int64_t rows, const double* p) {
    if constexpr (Op<C>::kResultForm) {
      const Op<C> op(p);
      run<S, 1, 2>(d, s, n, rows, [op](V g, V y) TA_LAMBDA { return op.bwd_result(g, y); });
    }
  }
  static void dbwd_result(char** d, const int64_t* s, int64_t n, int64_t rows, const double* p) {
    if constexpr (Op<C>::kResultForm) {
      const Op<C> op(p);
      run<S, 1, 3>(d, s, n, rows, [op](V gg, V g, V y) TA_LAMBDA { return op.dbwd_result(gg, g, y); });
    }
  }
  static void fill(cpu::Loop (&t)[kNumKinds][kNumDTypes], DType dt) {
    const int i = static_cast<int>(dt);
    t[static_cast<int>(Kind::Fwd)][i] = &fwd;
    t[static_cast<int>(Kind::Bwd)][i] = &bwd;
    t[static_cast<int>(Kind::DBwd)][i] = &dbwd;
    t[static_cast<int>(Kind::BwdResult)][i] = Op<C>::kResultForm ? &bwd_result : nullptr;
    t[static_cast<int>(Kind::DBwdResult)][i] = Op<C>::kResultForm ? &dbwd_result : nullptr;
  }
};

template <template <class> class Op, class S>
struct Parametric {
  using C = C_t<S>;
  using V = V_t<S>;
  static void fwd(char** d, const int64_t* s, int64_t n, int64_t rows, const double* p) {
    run_op<S, 1, 2, 0>(d, s, n, rows, Op<C>(p), [](const Op<C>& op, V x, V w) TA_LAMBDA { return op.fwd(x, w); });
  }
  static void bwd(char** d, const int64_t* s, int64_t n, int64_t rows, const double* p) {
    run_op<S, 2, 3, 1>(d, s, n, rows, Op<C>(p), [](const Op<C>& op, V g, V x, V w) TA_LAMBDA { return op.bwd(g, x, w); });
  }
  static void dbwd(char** d, const int64_t* s, int64_t n, int64_t rows, const double* p) {
    const Op<C> op(p);
    run<S, 3, 5>(d, s, n, rows, [op](V ggx, V ggw, V g, V x, V w) TA_LAMBDA { return op.dbwd(ggx, ggw, g, x, w); });
  }
  // The backward loops' last output, the per-element parameter gradient,
  // is in the compute type (float for float16/bfloat16).
  using SG = std::conditional_t<std::is_same_v<C, float>, F32, F64>;
  static void fwd_tiled(char** d, const int8_t* m, int64_t n, int64_t period) {
    const Op<C> op(nullptr);
    run_tiled<S, S, 1, 2>(d, m, n, period, [op](V x, V w) TA_LAMBDA { return op.fwd(x, w); });
  }
  static void bwd_tiled(char** d, const int8_t* m, int64_t n, int64_t period) {
    const Op<C> op(nullptr);
    run_tiled<S, SG, 2, 3>(d, m, n, period, [op](V g, V x, V w) TA_LAMBDA { return op.bwd(g, x, w); });
  }
  static void dbwd_tiled(char** d, const int8_t* m, int64_t n, int64_t period) {
    const Op<C> op(nullptr);
    run_tiled<S, SG, 3, 5>(d, m, n, period, [op](V ggx, V ggw, V g, V x, V w) TA_LAMBDA { return op.dbwd(ggx, ggw, g, x, w); });
  }
  static void fill(cpu::Loop (&t)[3][kNumDTypes], DType dt) {
    const int i = static_cast<int>(dt);
    t[0][i] = &fwd;
    t[1][i] = &bwd;
    t[2][i] = &dbwd;
  }
  static void fill(cpu::Loop (&t)[3][kNumDTypes], cpu::TiledLoop (&tt)[3][kNumDTypes], DType dt) {
    fill(t, dt);
    const int i = static_cast<int>(dt);
    tt[0][i] = &fwd_tiled;
    tt[1][i] = &bwd_tiled;
    tt[2][i] = &dbwd_tiled;
  }
};

template <template <class> class Op>
void fill_parametric(cpu::Loop (&t)[3][kNumDTypes]) {
  Parametric<Op, F32>::fill(t, DType::F32);
  Parametric<Op, F64>::fill(t, DType::F64);
  Parametric<Op, F16>::fill(t, DType::F16);
  Parametric<Op, BF16>::fill(t, DType::BF16);
}

template <template <class> class Op>
void fill_parametric(cpu::Loop (&t)[3][kNumDTypes], cpu::TiledLoop (&tt)[3][kNumDTypes]) {
  Parametric<Op, F32>::fill(t, tt, DType::F32);
  Parametric<Op, F64>::fill(t, tt, DType::F64);
  Parametric<Op, F16>::fill(t, tt, DType::F16);
  Parametric<Op, BF16>::fill(t, tt, DType::BF16);
}

template <template <class> class Op>
void fill_all(cpu::Loop (&t)[kNumKinds][kNumDTypes]) {
  Pointwise<Op, F32>::fill(t, DType::F32);
  Pointwise<Op, F64>::fill(t, DType::F64);
  Pointwise<Op, F16>::fill(t, DType::F16);
  Pointwise<Op, BF16>::fill(t, DType::BF16);
}

// ------------------------------------------------------- lookup tables ---
// table[b] for the W stored bit patterns b of a float16 / bfloat16 operand,
// read in one of two ways (kGather), chosen at run time (lut_loop in
// ops.cpp) because which is faster depends on the core, not on the ISA:
//  - sixteen scalar loads joined into a vector: on AMD Zen 4 the gathers
//    below (zero merge source included) run the float16/bfloat16 forward
//    of gelu and silu at 0.73-0.81 times the speed of the scalar loads, and
//    cores that take the microcode fix for Gather Data Sampling (Intel
//    Skylake to Ice Lake) slow their gathers down several times;
//  - one vpgatherdd: on Intel Sapphire Rapids (not subject to that fix) the
//    bfloat16 forward of silu and gelu over 1M elements runs 1.6-1.8 times
//    faster than with the scalar loads, whose joining takes a shuffle per
//    lane on the one port that does them.
// The patterns come from memory either way: lanes of a vector stored and
// read back one by one wait on the store (0.74 ns). A signalling NaN's
// pattern reads its own entry, which the table's build filled from that
// NaN: a NaN, as computed.
#if defined(TA_X86_AVX2)  // AVX-512 builds define it too
// The W patterns widened to 32-bit indices, times `scale` (1, or 2 for a
// table of pairs).
TA_HD VI32 lut_index(const uint16_t* bits, int scale) {
  VU16 h;
  __builtin_memcpy(&h, bits, sizeof(h));
  return (VI32)widen_u16(h) * scale;
}
// A gather merges into its destination the lanes its mask leaves out. Given
// an all-ones mask, GCC drops the merge source and reuses a register the
// previous iteration wrote last, which chains every gather to the one
// before in the hardware (the AVX2 bfloat16 forward ran at 0.85 times the
// speed of scalar loads). A mask the compiler cannot see through keeps the
// zero source: a fresh register each time.
TA_HD VF gather(const float* table, VI32 idx) {
#if defined(TA_X86_AVX512)
  __mmask16 all = 0xFFFF;
  __asm__("" : "+k"(all));
  return (VF)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), all, (__m512i)idx, table, 4);
#else
  __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  __asm__("" : "+x"(all));
  return (VF)_mm256_mask_i32gather_ps(_mm256_setzero_ps(), table, (__m256i)idx, all, 4);
#endif
}
#endif

template <bool kGather>
TA_HD VF lookup(const float* table, const uint16_t* bits) {
#if defined(TA_X86_AVX2)
  if constexpr (kGather) return gather(table, lut_index(bits, 1));
#endif
  // Through an array: GCC joins its elements in a tree of inserts, where
  // element-wise writes to the vector become a chain of masked broadcasts.
  float r[kFL];
#pragma GCC unroll 16
  for (int j = 0; j < kFL; ++j) r[j] = table[bits[j]];
  VF v;
  __builtin_memcpy(&v, r, sizeof(v));
  return v;
}
// f and f' from a table of pairs (entries 2b and 2b + 1): one 8-byte load
// per lane, or two gathers of 4 bytes (one of 8-byte pairs and two lane
// permutes measured slower).
template <bool kGather>
TA_HD void lookup_pair(const float* table, const uint16_t* bits, VF& a, VF& b) {
#if defined(TA_X86_AVX2)
  if constexpr (kGather) {
    const VI32 idx = lut_index(bits, 2);
    a = gather(table, idx);
    b = gather(table + 1, idx);
    return;
  }
#endif
  float ra[kFL], rb[kFL];
#pragma GCC unroll 16
  for (int j = 0; j < kFL; ++j) {
    float two[2];
    __builtin_memcpy(two, table + 2 * static_cast<int>(bits[j]), sizeof(two));
    ra[j] = two[0];
    rb[j] = two[1];
  }
  __builtin_memcpy(&a, ra, sizeof(a));
  __builtin_memcpy(&b, rb, sizeof(b));
}

template <class S, bool kGather>
struct Lut {
  static void fwd(char** d, const int64_t* s, int64_t n, int64_t rows, const float* const* t) {
    const float* f = t[0];
    run<S, 1, 1>(d, s, n, rows, [f](Elems<S> x) TA_LAMBDA { return lookup<kGather>(f, x.p); });
  }
  static void bwd(char** d, const int64_t* s, int64_t n, int64_t rows, const float* const* t) {
    const float* df = t[0];
    run<S, 1, 2>(d, s, n, rows, [df](VF g, Elems<S> x) TA_LAMBDA { return g * lookup<kGather>(df, x.p); });
  }
  // The gated units' forward and backward (gated.h) in the same order of
  // operations.
  static void gated_fwd(char** d, const int64_t* s, int64_t n, int64_t rows, const float* const* t) {
    const float* f = t[0];
    run<S, 1, 2>(d, s, n, rows, [f](Elems<S> p, VF q) TA_LAMBDA { return lookup<kGather>(f, p.p) * q; });
  }
  // t[0]: f and f' as pairs (kind 2 of the table cache).
  static void gated_bwd(char** d, const int64_t* s, int64_t n, int64_t rows, const float* const* t) {
    const float* fdf = t[0];
    run<S, 2, 3>(d, s, n, rows, [fdf](VF g, Elems<S> p, VF q) TA_LAMBDA {
      VF f, df;
      lookup_pair<kGather>(fdf, p.p, f, df);
      return Outs<VF, 2>{{(g * q) * df, g * f}};
    });
  }
  static void fill(cpu::KernelTable& t, int dt) {
    t.lut[kGather][0][dt] = &fwd;
    t.lut[kGather][1][dt] = &bwd;
    t.gated_lut[kGather][0][dt] = &gated_fwd;
    t.gated_lut[kGather][1][dt] = &gated_bwd;
  }
};

// ------------------------------------------------------ column sums ---
// Neumaier's compensated sum per lane: `sum` is the plain running sum and
// the rounding error of each addition (exact, two_sum) goes to `err`.
// kOrdered: the sum is never below a term in magnitude (a sum of terms in
// [0, 1] started from 1), where Fast2Sum gives the error exactly in three
// operations instead of six.
template <bool kOrdered = false, class V>
TA_HD void add_compensated(V& sum, V& err, V e) {
  V s, d;
  if constexpr (kOrdered) fast_two_sum<V>(sum, e, s, d); else two_sum<V>(sum, e, s, d);
  sum = s;
  err += d;
}

// K vectors of columns at a time: K independent chains hide the latency of
// the additions.
template <class T, int K>
TA_HD void colsum_tile(const T* p, int64_t rows, int64_t ld, double* sum, double* comp) {
  using VD = native<double>;
  constexpr int W = traits<VD>::lanes;
  using VT = vec<T, W>;
  VD s[K], c[K];
  for (int k = 0; k < K; ++k) {
    __builtin_memcpy(&s[k], sum + k * W, sizeof(VD));
    __builtin_memcpy(&c[k], comp + k * W, sizeof(VD));
  }
  for (int64_t r = 0; r < rows; ++r, p += ld) {
    for (int k = 0; k < K; ++k) {
      VT v;
      __builtin_memcpy(&v, p + k * W, sizeof(VT));
      add_compensated(s[k], c[k], __builtin_convertvector(v, VD));
    }
  }
  for (int k = 0; k < K; ++k) {
    __builtin_memcpy(sum + k * W, &s[k], sizeof(VD));
    __builtin_memcpy(comp + k * W, &c[k], sizeof(VD));
  }
}

template <class T>
void colsum(const void* data, int64_t rows, int64_t cols, int64_t ld, double* sum, double* comp) {
  constexpr int W = traits<native<double>>::lanes;
  const T* p = static_cast<const T*>(data);
  int64_t j = 0;
  for (; j + 4 * W <= cols; j += 4 * W) colsum_tile<T, 4>(p + j, rows, ld, sum + j, comp + j);
  for (; j + W <= cols; j += W) colsum_tile<T, 1>(p + j, rows, ld, sum + j, comp + j);
  // The same operations one column at a time, so a column's result does not
  // depend on whether it fell in a vector.
  for (; j < cols; ++j) {
    double s = sum[j], c = comp[j];
    for (int64_t r = 0; r < rows; ++r) add_compensated(s, c, static_cast<double>(p[r * ld + j]));
    sum[j] = s;
    comp[j] = c;
  }
}

// A wrongly configured build would quietly run narrow vectors.
#if defined(TA_TARGET_AVX512)
static_assert(kRegisterBytes == 64, "AVX-512 kernels must use 512-bit vectors");
#elif defined(TA_TARGET_AVX2)
static_assert(kRegisterBytes == 32, "AVX2 kernels must use 256-bit vectors");
#endif

cpu::KernelTable make_table() {
  cpu::KernelTable t{};
#define TA_STR2(x) #x
#define TA_STR(x) TA_STR2(x)
  t.isa = TA_STR(TA_ISA);
#undef TA_STR
#undef TA_STR2
#define TA_X(name, F, params) fill_all<act::F>(t.pointwise[static_cast<int>(OpId::name)]);
  TA_POINTWISE_OPS(TA_X)
#undef TA_X
#define TA_X(name, F, wname) \
  fill_parametric<act::F>(t.parametric[static_cast<int>(ParamOpId::name)], \
                          t.parametric_tiled[static_cast<int>(ParamOpId::name)]);
  TA_PARAMETRIC_OPS(TA_X)
#undef TA_X
  t.colsum[0] = &colsum<float>;
  t.colsum[1] = &colsum<double>;
  Lut<F16, false>::fill(t, 0);
  Lut<BF16, false>::fill(t, 1);
#if defined(TA_X86_AVX2)
  Lut<F16, true>::fill(t, 0);
  Lut<BF16, true>::fill(t, 1);
  t.has_gather = true;
#endif
  return t;
}

}  // namespace cpu_impl
}  // namespace TA_ISA

namespace cpu {
#define TA_TABLE_FN2(isa) kernel_table_##isa
#define TA_TABLE_FN(isa) TA_TABLE_FN2(isa)
const KernelTable* TA_TABLE_FN(TA_ISA)() {
  static const KernelTable table = ::ta::TA_ISA::cpu_impl::make_table();
  return &table;
}
}  // namespace cpu
}  // namespace ta
