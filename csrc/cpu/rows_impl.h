// CPU kernels of the non-elementwise ops, compiled once per instruction set:
// kernels_<ISA>.cpp includes this header after kernels_impl.h, whose storage
// formats, conversions and elementwise loops it reuses. As there, nothing
// from PyTorch is included and everything lives in the ISA's namespace.
//
// Row kernels (softmax family, cross entropy) see a reduced dimension of
// length n. Three paths, none of which copies a whole tensor:
//   row path     the reduced dimension is contiguous in every operand that
//                runs along it (and, for a forward body, the rows are longer
//                than the body's short_row()): one row at a time, lanes
//                along the row;
//   column path  rows adjacent in memory (the reduced dimension of an NCHW
//                tensor, a transposed matrix), and for the forward bodies
//                rows up to short_row() long in any layout: W rows at a time
//                (or several groups of W adjacent rows, for the bodies that
//                ask: Groups), one row per lane, no reductions across lanes
//                (short rows not adjacent are transposed into tiles:
//                drive_columns);
//   gather path  anything else: each row is copied into a contiguous buffer,
//                run through the row path, and the outputs copied back.
// The path depends on the body, the layout and n alone, and within a path
// every row is computed the same way wherever it falls, so results do not
// depend on the number of threads. Rows of different paths may differ in
// the last bits (the sums run in a different order).
//
// Reductions keep one partial result per lane. The normaliser of
// log_softmax and of cross entropy uses an online maximum (online_lse1p):
// per block of vectors the running sum is rescaled once to the new
// maximum, so memory is read once and exp runs once per element; a lane
// that has seen only -inf keeps the sum 0 instead of exp(-inf - (-inf)) =
// NaN. The sum is kept less its maximum's term, 1, so that log of it is
// log1p of a number that is not rounded against 1. softmax takes the
// maximum first (softmax_direct).
#pragma once

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "../gated.h"
#include "../losses.h"
#include "rows.h"

namespace ta {
inline namespace TA_ISA {
namespace cpu_impl {
namespace rows {

using cpu::CeBwd;
using cpu::CeFwd;
using cpu::RowCall;

// Target class indices.
struct I64 {
  using raw = int64_t;
};

template <class S> using R_t = typename S::raw;
// The storage whose raw type is the compute type C (per-row statistics,
// weights).
template <class C> using CS_t = std::conditional_t<std::is_same_v<C, float>, F32, F64>;

// Vectors per block of online_lse1p on the column path, for rows longer than
// the short ones (online_block), whose lanes run through memory.
constexpr int64_t kBlock = 16;
// Vectors per block of online_lse1p along a contiguous row: a whole row of
// up to 128 KiB, read again from cache, so that its maximum is taken in one
// sweep with independent comparisons and the running sum is rescaled once
// per such block.
constexpr int64_t kRowBlock = 2048;

template <class V>
TA_HD V iota() {
  V v;
  for (int i = 0; i < traits<V>::lanes; ++i) v[i] = static_cast<scalar_t<V>>(i);
  return v;
}

// One element of storage S as its compute type, and back.
template <class S>
TA_HD C_t<S> load1(const R_t<S>* p) {
  if constexpr (std::is_same_v<S, F32> || std::is_same_v<S, F64>) {
    return *p;
  } else {
    R_t<S> buf[kLanes<S>] = {};
    buf[0] = *p;
    return load<S>(buf)[0];
  }
}
template <class S>
TA_HD void store1(R_t<S>* p, C_t<S> v) {
  if constexpr (std::is_same_v<S, F32> || std::is_same_v<S, F64>) {
    *p = v;
  } else {
    R_t<S> buf[kLanes<S>];
    store<S>(buf, splat<V_t<S>>(v));
    *p = buf[0];
  }
}

// ------------------------------------------------------------ accessors ---
// Row path: vector k holds elements [kW, kW + W) of one contiguous row; the
// last one may be partial, its missing lanes read as `pad`.
template <class S>
struct RowSeq {
  using R = R_t<S>;
  using V = V_t<S>;
  using C = C_t<S>;
  static constexpr int W = kLanes<S>;
  R* p;
  int64_t n;
  // Whole vectors: testing k against it is one fused compare-and-branch per
  // access, where k W + W <= n took three integer operations, which compete
  // with the vector arithmetic for issue slots in the bodies' loops.
  int64_t whole;
  TA_HD RowSeq(R* p_, int64_t n_) : p(p_), n(n_), whole(n_ / W) {}
  TA_HD int64_t count() const { return (n + W - 1) / W; }
  TA_HD V load(int64_t k, C pad) const {
    const int64_t i = k * W;
    if (k < whole) return cpu_impl::load<S>(p + i);
    R buf[W] = {};
    copy_part(buf, p + i, n - i);
    return where<V>(iota<V>() < static_cast<C>(n - i), cpu_impl::load<S>(buf), pad);
  }
  TA_HD void store(int64_t k, V v) const {
    const int64_t i = k * W;
    if (k < whole) return cpu_impl::store<S>(p + i, v);
    R buf[W];
    cpu_impl::store<S>(buf, v);
    copy_part(p + i, buf, n - i);
  }
  // The first m < W elements. Not memcpy: a call in a loop, even on a path
  // taken once per row, makes GCC keep the loop's vector accumulators in
  // memory (every vector register is clobbered by a call).
  static TA_HD void copy_part(R* dst, const R* src, int64_t m) {
#pragma GCC unroll 64
    for (int j = 0; j < W; ++j)
      if (j < m) dst[j] = src[j];
  }
  // Lanes that hold elements of the row.
  TA_HD mask_t<V> valid(int64_t k) const { return iota<V>() < static_cast<C>(n - k * W); }
};

// Column path: vector k holds element k of `nl` consecutive rows (lanes
// beyond nl, in the last group of rows, read as `pad` and are discarded).
// kFull: nl is W, known when the body is compiled, so that every access is
// one vector load or store; the partial group's copies through a buffer,
// inlined into a body's loops, would make GCC keep its accumulators in
// memory.
template <class S, bool kFull>
struct ColSeq {
  using R = R_t<S>;
  using V = V_t<S>;
  using C = C_t<S>;
  static constexpr int W = kLanes<S>;
  char* p;
  int64_t ds, rs;  // bytes along the reduced dimension / between rows
  int nl;
  int64_t n;
  TA_HD int64_t count() const { return n; }
  // Whole groups of rows are adjacent (rs is the element size): element k
  // of the j-th group after this one (see Groups).
  TA_HD V load_group(int64_t k, int j) const { return cpu_impl::load<S>(reinterpret_cast<const R*>(p + k * ds) + j * W); }
  TA_HD void store_group(int64_t k, int j, V v) const {
    cpu_impl::store<S>(reinterpret_cast<R*>(p + k * ds) + j * W, v);
  }
  TA_HD V load(int64_t k, C pad) const {
    if constexpr (kFull) {
      (void)pad;
      return load_group(k, 0);
    } else {
      const char* q = p + k * ds;
      R buf[W] = {};
      for (int j = 0; j < nl; ++j) std::memcpy(&buf[j], q + j * rs, sizeof(R));
      return where<V>(iota<V>() < static_cast<C>(nl), cpu_impl::load<S>(buf), pad);
    }
  }
  TA_HD void store(int64_t k, V v) const {
    if constexpr (kFull) {
      store_group(k, 0, v);
    } else {
      char* q = p + k * ds;
      R buf[W];
      cpu_impl::store<S>(buf, v);
      for (int j = 0; j < nl; ++j) std::memcpy(q + j * rs, &buf[j], sizeof(R));
    }
  }
  TA_HD mask_t<V> valid(int64_t) const { return splat<V>(C(0)) == C(0); }
};

// Class weights (compute type, contiguous) as vectors matching a sequence.
template <class V>
struct RowWeights {
  using C = scalar_t<V>;
  const C* w;
  int64_t n;
  TA_HD V load(int64_t k) const { return RowSeq<CS_t<C>>(const_cast<C*>(w), n).load(k, C(0)); }
};
template <class V>
struct ColWeights {
  using C = scalar_t<V>;
  const C* w;
  int64_t n;
  TA_HD V load(int64_t k) const { return splat<V>(w[k]); }
};

// Where the operands of one row (row and gather paths) or one group of rows
// (column path) are. ptr[k] is the start of row operand k (or its value for
// an operand with one value per row) for the first row of the group.
struct RowCtx {
  static constexpr bool kCol = false;
  char* const* ptr;
  const int64_t* elem;  // bytes between elements of row operand k
  int64_t n;
  template <class S> TA_HD RowSeq<S> seq(int k) const { return RowSeq<S>(reinterpret_cast<R_t<S>*>(ptr[k]), n); }
  template <class V> TA_HD RowWeights<V> weights(const void* w) const {
    return {static_cast<const scalar_t<V>*>(w), n};
  }
  TA_HD int lanes() const { return 1; }
  // Per-row operand k of lane j, and element i of row operand k in lane j.
  TA_HD char* at(int k, int) const { return ptr[k]; }
  TA_HD char* elem_at(int k, int, int64_t i) const { return ptr[k] + i * elem[k]; }
};

template <bool kFull>
struct ColCtx {
  static constexpr bool kCol = true;
  char* const* ptr;
  const int64_t* ds;
  const int64_t* rs;
  int nl;
  int64_t n;
  // Where a body that finishes its rows in their own layout (RowsOut) leaves
  // its per-lane results instead of writing the outputs; null otherwise.
  void* stats;
  template <class S> TA_HD ColSeq<S, kFull> seq(int k) const { return {ptr[k], ds[k], rs[k], nl, n}; }
  template <class V> TA_HD ColWeights<V> weights(const void* w) const {
    return {static_cast<const scalar_t<V>*>(w), n};
  }
  TA_HD int lanes() const { return nl; }
  TA_HD char* at(int k, int j) const { return ptr[k] + j * rs[k]; }
  TA_HD char* elem_at(int k, int j, int64_t i) const { return ptr[k] + j * rs[k] + i * ds[k]; }
};

// ------------------------------------------------------- lane reductions ---
// The lanes' sum as a tree: the two halves of the vector added, and so on
// down to one lane. Lane by lane, the additions would be one chain as long
// as the vector, paid once per row, which a short row cannot hide; the tree
// is log2(lanes) additions deep, and its rounding error grows with that
// depth, not with the lane count.
template <class V>
TA_HD scalar_t<V> hsum(V v) {
  constexpr int n = traits<V>::lanes;
  if constexpr (n == 1) {
    return v[0];
  } else {
    using Half = std::make_integer_sequence<int, n / 2>;
    return hsum(simd::vec_half<0>(v, Half{}) + simd::vec_half<n / 2>(v, Half{}));
  }
}
// A float vector's lanes as doubles, kept as two halves of the register's
// width: GCC moves a double vector as wide as the float one (two registers)
// through the stack. total() is the tree sum of all the lanes, the halves'
// sum being its first level.
template <class V>
struct Wide {
  static constexpr int kHalf = traits<V>::lanes / 2;
  using H = simd::vec<double, kHalf>;
  using Half = std::make_integer_sequence<int, kHalf>;
  H lo, hi;
  TA_HD Wide(H l, H h) : lo(l), hi(h) {}
  TA_HD explicit Wide(V v)
      : lo(__builtin_convertvector(simd::vec_half<0>(v, Half{}), H)),
        hi(__builtin_convertvector(simd::vec_half<kHalf>(v, Half{}), H)) {}
  TA_HD Wide operator+(const Wide& o) const { return {lo + o.lo, hi + o.hi}; }
  TA_HD Wide operator-(double b) const { return {lo - b, hi - b}; }
  TA_HD double total() const { return hsum(lo + hi); }
};

template <class V>
TA_HD scalar_t<V> hmax(V v) {
  scalar_t<V> s = v[0];
  for (int i = 1; i < traits<V>::lanes; ++i) s = max_nan(s, v[i]);
  return s;
}
// max_nan over xl(b..e) and `init`, per lane. Four running maxima: one
// alone would make every comparison wait for the one before it.
template <class V, class Load>
TA_HD V max_over(const Load& xl, int64_t b, int64_t e, V init) {
  V m0 = init, m1 = init, m2 = init, m3 = init;
  int64_t k = b;
  for (; k + 4 <= e; k += 4) {
    m0 = max_nan(m0, xl(k));
    m1 = max_nan(m1, xl(k + 1));
    m2 = max_nan(m2, xl(k + 2));
    m3 = max_nan(m3, xl(k + 3));
  }
  for (; k < e; ++k) m0 = max_nan(m0, xl(k));
  return max_nan(max_nan(m0, m1), max_nan(m2, m3));
}

// A row's partial sums, one per lane, as the row's total in every lane (row
// path) or left per lane (column path, where each lane is a row).
template <class Ctx, class V>
TA_HD V total(V v) {
  if constexpr (Ctx::kCol) return v; else return splat<V>(hsum(v));
}

// ---------------------------------------------------------- the driver ---
// Bytes of a column tile (all of its row operands), and its most rows.
constexpr int64_t kTileBytes = 48 * 1024;
constexpr int64_t kTileRows = 256;
// A body may run rows up to short_row() elements long on the column path
// whatever their layout: the forward ones, whose reductions across lanes on
// the row path (a maximum, sums in double, a log) cost a short row more than
// its elements do. (A backward body's are cheaper than the transposition of
// its three operands.)
template <class Body, class = void> struct HasShortRow : std::false_type {};
template <class Body>
struct HasShortRow<Body, std::void_t<decltype(std::declval<const Body&>().short_row())>> : std::true_type {};
template <class Body>
int64_t short_row(const Body& body) {
  if constexpr (HasShortRow<Body>::value) return body.short_row(); else return 0;
}
// Measured (one thread, rows of 64 to 2048, float32 and bfloat16): softmax
// gains on the column path up to rows of 64; log_softmax and cross entropy,
// whose row epilogue adds a compensated sum of the lanes in double and a
// log, up to 256 (at 512 the row path is as fast).
constexpr int64_t kShortRow = 64;
constexpr int64_t kShortLogRow = 256;
// A short row on the column path (in a tile, or W adjacent rows of at most
// 256 elements) is in cache whole: one block, one rescaling. The choice
// depends on n alone, so a short row gets the same bits in every layout.
template <class Ctx>
TA_HD int64_t online_block(const Ctx& ctx) {
  return Ctx::kCol && ctx.n > kShortLogRow ? kBlock : kRowBlock;
}

// Two vectors of Q lanes side by side: one of 2Q lanes.
template <class H, int... kI>
TA_HD auto concat(H lo, H hi, std::integer_sequence<int, kI...>) {
  return __builtin_shufflevector(lo, hi, kI..., (kI + static_cast<int>(sizeof...(kI)))...);
}
// P (1, 2 or 4) vectors of Q lanes side by side.
template <class T, int P, int Q, class H>
TA_HD T concat_chunks(const H* h) {
  if constexpr (P == 1) {
    return h[0];
  } else if constexpr (P == 2) {
    return concat(h[0], h[1], std::make_integer_sequence<int, Q>{});
  } else {
    static_assert(P == 4, "a register holds 1, 2 or 4 chunks of 16 bytes");
    return concat(concat(h[0], h[1], std::make_integer_sequence<int, Q>{}),
                  concat(h[2], h[3], std::make_integer_sequence<int, Q>{}), std::make_integer_sequence<int, 2 * Q>{});
  }
}
// Within each 16-byte chunk of Q lanes, the lanes of the low (kHi false) or
// high half of a's chunk alternate with those of b's: the x86 unpack
// instructions, which do not cross chunks and so are cheaper than a
// permutation across the register.
template <bool kHi, int Q, class T, int... kI>
TA_HD T unpack(T a, T b, std::integer_sequence<int, kI...>) {
  constexpr int N = sizeof...(kI);
  return __builtin_shufflevector(a, b, (kI / Q * Q + (kHi ? Q / 2 : 0) + kI % Q / 2 + kI % 2 * N)...);
}

// B = A^T for an R x C matrix A of kSize-byte elements, contiguous along
// each row of A and of B (steps between rows in bytes). Blocks of N x N run
// through registers, N = one register's elements but at most 16 (a block
// of 32 would need every register and leave rows of 16 to the edges); the
// edges element by element. A register of a block holds P chunks of 16
// bytes, Q elements each, and is loaded chunk by chunk from P rows Q apart,
// so that only Q x Q transpositions within chunks remain: log2(Q) stages of
// unpacks, each rotating the bits of an element's row and column index
// within its chunk by one. For float32 under AVX-512 (16 x 16, 4 chunks of
// 4) that is 32 unpacks per block where a transposition of whole registers
// needs 64 two-source permutes, and it measured 1.4x as fast; under AVX2 the
// whole-register permutes do not exist and it measured 2.3-3.4x as fast.
template <int kSize>
void transpose(char* b, int64_t b_row, const char* a, int64_t a_row, int64_t R, int64_t C) {
  using U = std::conditional_t<kSize == 2, uint16_t, std::conditional_t<kSize == 4, uint32_t, uint64_t>>;
  constexpr int N = std::min(16, simd::kRegisterBytes / kSize);
  constexpr int Q = 16 / kSize;
  constexpr int P = N / Q;
  using T = simd::vec<U, N>;
  using H = simd::vec<U, Q>;
  const int64_t R0 = R / N * N, C0 = C / N * N;
  for (int64_t i = 0; i < R0; i += N)
    for (int64_t j = 0; j < C0; j += N) {
      // r[s Q + q], chunk L: row i + L Q + q of A, columns j + s Q onwards.
      T r[N];
      for (int s = 0; s < P; ++s)
        for (int q = 0; q < Q; ++q) {
          H h[P];
          for (int L = 0; L < P; ++L) std::memcpy(&h[L], a + (i + L * Q + q) * a_row + (j + s * Q) * kSize, 16);
          r[s * Q + q] = concat_chunks<T, P, Q>(h);
        }
      for (int s = 0; s < P; ++s)
        for (int stage = 1; stage < Q; stage *= 2) {
          T* x = r + s * Q;
          T out[Q];
          for (int k = 0; k < Q / 2; ++k) {
            out[2 * k] = unpack<false, Q>(x[k], x[k + Q / 2], std::make_integer_sequence<int, N>{});
            out[2 * k + 1] = unpack<true, Q>(x[k], x[k + Q / 2], std::make_integer_sequence<int, N>{});
          }
          for (int k = 0; k < Q; ++k) x[k] = out[k];
        }
      // Now r[k] is column j + k of the block.
      for (int k = 0; k < N; ++k) std::memcpy(b + (j + k) * b_row + i * kSize, &r[k], sizeof(T));
    }
  const auto edge = [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) TA_LAMBDA {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = j0; j < j1; ++j) std::memcpy(b + j * b_row + i * kSize, a + i * a_row + j * kSize, kSize);
  };
  edge(0, R0, C0, C);
  edge(R0, R, 0, C);
}

// nr rows of n elements of kSize bytes from one layout to another (steps in
// bytes between rows and between elements). Adjacent rows move as runs,
// contiguous rows into adjacent ones and back as a transposition.
template <int kSize>
void copy_rows(char* dst, int64_t d_row, int64_t d_elem, const char* src, int64_t s_row, int64_t s_elem,
               int64_t nr, int64_t n) {
  if (d_row == kSize && s_row == kSize) {
    for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * d_elem, src + i * s_elem, nr * kSize);
    return;
  }
  if (nr > 1 && s_elem == kSize && d_row == kSize) return transpose<kSize>(dst, d_elem, src, s_row, nr, n);
  if (nr > 1 && s_row == kSize && d_elem == kSize) return transpose<kSize>(dst, d_row, src, s_elem, n, nr);
  for (int64_t j = 0; j < nr; ++j)
    for (int64_t i = 0; i < n; ++i) std::memcpy(dst + j * d_row + i * d_elem, src + j * s_row + i * s_elem, kSize);
}
// Row operands are floating point or class indices: 2, 4 or 8 bytes.
inline void copy_rows(int64_t size, char* dst, int64_t d_row, int64_t d_elem, const char* src, int64_t s_row,
                      int64_t s_elem, int64_t nr, int64_t n) {
  switch (size) {
    case 2: return copy_rows<2>(dst, d_row, d_elem, src, s_row, s_elem, nr, n);
    case 4: return copy_rows<4>(dst, d_row, d_elem, src, s_row, s_elem, nr, n);
    default: return copy_rows<8>(dst, d_row, d_elem, src, s_row, s_elem, nr, n);
  }
}

// One 64-byte aligned region of `elems` elements per row operand of Body,
// in buf (grown as needed); operand k's starts offset[k] bytes after the
// returned base.
template <class Body>
char* row_buffers(std::vector<char>& buf, int64_t elems, int64_t* offset) {
  int64_t total = 0;
  for (int k = 0; k < Body::kOps; ++k) {
    offset[k] = total;
    if (Body::row(k)) total += (elems * Body::size(k) + 63) / 64 * 64;
  }
  if (buf.size() < static_cast<size_t>(total + 64)) buf.resize(static_cast<size_t>(total + 64));
  return buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
}

// Reads rows [a, b) of the row inputs into L2 where their rows are
// contiguous (drive_columns asks for the next tile's, a group's worth while
// each group of the current tile computes). The tile's copy reads a line of
// each of 16 rows at a time, which the hardware prefetchers follow poorly
// from memory. Softmax over rows of 64, float32, 4M elements, one thread,
// against PyTorch's: 0.50-0.56x without, 0.67-0.69x with; log_softmax
// 0.62-0.64x and 0.71-0.72x. A thread whose share of the rows fits in L2
// (kPrefetchBytes, L2's size on the machines measured) skips it: its rows
// are likely there, and the prefetches cost it 3-5%. GCC deletes loops whose only
// statements are __builtin_prefetch, so on x86 the instruction is written
// out.
constexpr int64_t kPrefetchBytes = 1 << 20;
template <class Body>
void prefetch_rows(const RowCall& c, int64_t a, int64_t b) {
  for (int k = Body::kOut; k < Body::kOps; ++k) {
    const int64_t bytes = c.n * Body::size(k);
    if (!Body::row(k) || c.dim_strides[k] != Body::size(k) || bytes == 0) continue;
    for (int64_t r = a; r < b; ++r) {
      const char* p = c.data[k] + r * c.strides[k];
      for (int64_t o = 0; o < bytes + 63; o += 64) {
        const char* q = p + std::min(o, bytes - 1);
#if defined(__x86_64__) || defined(__i386__)
        asm volatile("prefetcht1 %0" : : "m"(*q));
#else
        __builtin_prefetch(q, 0, 2);
#endif
      }
    }
  }
}

// One group of nl rows on the column path: whole groups with every access a
// vector (ColSeq), the last, partial one through buffers.
template <class Body>
void run_group(const Body& body, char* const* ptr, const int64_t* ds, const int64_t* rs, int nl, int64_t n,
               void* stats = nullptr) {
  if (nl == Body::W) body(ColCtx<true>{ptr, ds, rs, nl, n, stats});
  else body(ColCtx<false>{ptr, ds, rs, nl, n, stats});
}

// A body whose outputs are an elementwise function of its input and of a few
// per-row values (log_softmax: (x - max) - log S) may finish rows that came
// through a tile in their own layout: rows_out(c) says whether it will for
// this call; its column run then leaves the per-lane values in the context's
// stats (kStatsBytes), and row_out(c, r, stats, j) writes row r from lane j's.
// The arithmetic per element is the column path's, so the bits are the same,
// and the outputs skip the transposition back out of the tile.
template <class Body, class = void> struct RowsOut : std::false_type {};
template <class Body>
struct RowsOut<Body, std::void_t<decltype(std::declval<const Body&>().rows_out(std::declval<const RowCall&>()))>>
    : std::true_type {};
template <class Body>
bool rows_out(const Body& body, const RowCall& c) {
  if constexpr (RowsOut<Body>::value) return body.rows_out(c); else return false;
}
constexpr int kStatsBytes = 2 * 64;

// A body that reads little per element (the softmax backward) may take
// Body::kGroups whole groups of rows at once, called with that number as an
// integral_constant (one group is its case G = 1, the same arithmetic per
// lane). Adjacent rows one group at a time read a single cache line per
// element index, a stride apart that the hardware prefetchers do not follow
// and that, when it is a power of two, maps every line to one or two cache
// sets, so that the second sweep misses again; G groups read runs of G lines.
template <class Body, class = void> struct Groups : std::integral_constant<int, 1> {};
template <class Body>
struct Groups<Body, std::void_t<decltype(Body::kGroups)>> : std::integral_constant<int, Body::kGroups> {};

// The column path. Rows adjacent in memory (the reduced dimension of an
// NCHW tensor; `adjacent`, every row operand's row step its element size)
// run in place, W at a time (Groups<Body> groups of W where the body asks
// for them). Short rows of any other layout are copied, up
// to kTileRows of them, into a tile laid out that way (a transposition for
// contiguous rows), run there, and their outputs copied back. A lane sees
// its own row's values in the same order either way, so a row's result
// does not depend on its layout or its neighbours.
template <class Body>
void drive_columns(const RowCall& c, const Body& body, bool adjacent) {
  constexpr int K = Body::kOps;
  constexpr int W = Body::W;
  char* ptr[K];
  if (adjacent) {
    constexpr int G = Groups<Body>::value;
    int64_t r = 0;
    if constexpr (G > 1) {
      for (; r + G * W <= c.nrows; r += G * W) {
        for (int k = 0; k < K; ++k) ptr[k] = c.data[k] + r * c.strides[k];
        body(ColCtx<true>{ptr, c.dim_strides, c.strides, W, c.n, nullptr}, std::integral_constant<int, G>{});
      }
    }
    for (; r < c.nrows; r += W) {
      const int nl = static_cast<int>(std::min<int64_t>(W, c.nrows - r));
      for (int k = 0; k < K; ++k) ptr[k] = c.data[k] + r * c.strides[k];
      run_group(body, ptr, c.dim_strides, c.strides, nl, c.n);
    }
    return;
  }
  int64_t row_bytes = 0;  // per element of a row, all row operands
  for (int k = 0; k < K; ++k)
    if (Body::row(k)) row_bytes += Body::size(k);
  const int64_t fit = kTileBytes / std::max<int64_t>(1, row_bytes * c.n) / W * W;
  const int64_t rows = std::min(std::max<int64_t>(W, std::min(fit, kTileRows)), (c.nrows + W - 1) / W * W);
  static thread_local std::vector<char> buf;
  int64_t offset[K];
  char* base = row_buffers<Body>(buf, rows * c.n, offset);
  int64_t ds[K], rs[K];
  for (int k = 0; k < K; ++k) {
    ds[k] = Body::row(k) ? rows * Body::size(k) : c.dim_strides[k];
    rs[k] = Body::row(k) ? Body::size(k) : c.strides[k];
  }
  const bool direct = rows_out(body, c);
  const bool fetch = c.nrows * row_bytes * c.n > kPrefetchBytes;
  alignas(64) unsigned char stats[kStatsBytes];
  for (int64_t r0 = 0; r0 < c.nrows; r0 += rows) {
    const int64_t nr = std::min(rows, c.nrows - r0);
    for (int k = Body::kOut; k < K; ++k)
      if (Body::row(k))
        copy_rows(Body::size(k), base + offset[k], rs[k], ds[k], c.data[k] + r0 * c.strides[k], c.strides[k],
                  c.dim_strides[k], nr, c.n);
    for (int64_t g = 0; g < nr; g += W) {
      const int nl = static_cast<int>(std::min<int64_t>(W, nr - g));
      if (fetch) prefetch_rows<Body>(c, std::min(r0 + rows + g, c.nrows), std::min(r0 + rows + g + W, c.nrows));
      for (int k = 0; k < K; ++k)
        ptr[k] = Body::row(k) ? base + offset[k] + g * Body::size(k) : c.data[k] + (r0 + g) * c.strides[k];
      run_group(body, ptr, ds, rs, nl, c.n, direct ? stats : nullptr);
      if constexpr (RowsOut<Body>::value)
        if (direct)
          for (int j = 0; j < nl; ++j) body.row_out(c, r0 + g + j, stats, j);
    }
    if (direct) continue;
    for (int k = 0; k < Body::kOut; ++k)
      if (Body::row(k))
        copy_rows(Body::size(k), c.data[k] + r0 * c.strides[k], c.strides[k], c.dim_strides[k], base + offset[k],
                  rs[k], ds[k], nr, c.n);
  }
}

// Runs a row body over a RowCall in the path its layout allows. Body has
// kOps operands (kOut outputs first); row(k) is true for the operands that
// run along the reduced dimension, size(k) is an operand's element size, and
// W the number of lanes.
template <class Body>
void drive(const RowCall& c, const Body& body) {
  constexpr int K = Body::kOps;
  bool row_fast = true, col_fast = true;
  for (int k = 0; k < K; ++k) {
    if (!Body::row(k)) continue;
    row_fast &= c.dim_strides[k] == Body::size(k);
    col_fast &= c.strides[k] == Body::size(k);
  }
  char* ptr[K];
  int64_t elem[K];
  for (int k = 0; k < K; ++k) elem[k] = c.dim_strides[k];
  if (c.n <= short_row(body)) {
    drive_columns(c, body, col_fast);
    return;
  }
  if (row_fast) {
    for (int64_t r = 0; r < c.nrows; ++r) {
      for (int k = 0; k < K; ++k) ptr[k] = c.data[k] + r * c.strides[k];
      body(RowCtx{ptr, elem, c.n});
    }
    return;
  }
  if (col_fast) {
    drive_columns(c, body, true);
    return;
  }
  // Gather path: rows copied to contiguous buffers.
  std::vector<char> buf;
  int64_t offset[K];
  char* base = row_buffers<Body>(buf, c.n, offset);
  for (int k = 0; k < K; ++k)
    if (Body::row(k)) elem[k] = Body::size(k);
  for (int64_t r = 0; r < c.nrows; ++r) {
    for (int k = 0; k < K; ++k) {
      char* src = c.data[k] + r * c.strides[k];
      if (!Body::row(k)) {
        ptr[k] = src;
        continue;
      }
      ptr[k] = base + offset[k];
      if (k >= Body::kOut) copy_rows(Body::size(k), ptr[k], 0, Body::size(k), src, 0, c.dim_strides[k], 1, c.n);
    }
    body(RowCtx{ptr, elem, c.n});
    for (int k = 0; k < Body::kOut; ++k)
      if (Body::row(k))
        copy_rows(Body::size(k), c.data[k] + r * c.strides[k], 0, c.dim_strides[k], ptr[k], 0, Body::size(k), 1,
                  c.n);
  }
}

template <class Body>
void run_body(const RowCall& c) {
  const Body body(c);
  drive(c, body);
}

// ------------------------------------------------------- softmax family ---
// e^(x - mx), with x - mx carried as an exact pair: rounding the difference
// alone costs |x - mx| / 2 ulps of the result (e^(d + dl) = e^d (1 + dl)).
template <class V>
inline V exp_minus(V x, V mx) {
  using C = scalar_t<V>;
  V d, dl;
  two_sum<V>(x, -mx, d, dl);
  if constexpr (sizeof(C) == 4) return m::exp_nonpos_pair_f32(d, dl);
  const V e = m::exp(d);
  return madd(e, where<V>(isinf(d), C(0), dl), e);
}

// The row's sum of exponentials is kept with each lane's rounding errors
// (add_compensated) and the lanes are added in double: a plain float sum of
// a long row drifts by several ulps, which the division passes on to every
// output. Double holds float lanes' partial sums to far below a float ulp;
// float64 lanes are added with their errors kept too (one rounding per lane
// would cost up to half an ulp each).
// `bias` is a value every lane's sum started from (exact in double, as it
// is subtracted there). Float lanes go to double as a vector and are added
// as a tree (hsum): one lane after another they would be a chain of
// dependent additions that on short rows took more time than the row's
// elements.
template <class V>
TA_HD scalar_t<V> compensated_total(V sum, V err, double bias = 0) {
  if constexpr (sizeof(scalar_t<V>) == 4) {
    return static_cast<scalar_t<V>>(((Wide<V>(sum) - bias) + Wide<V>(err)).total());
  } else {
    double t = -bias * traits<V>::lanes, e = 0;
    for (int i = 0; i < traits<V>::lanes; ++i) {
      double s, d;
      two_sum<double>(t, sum[i], s, d);
      t = s;
      e += d + err[i];
    }
    return static_cast<scalar_t<V>>(t + e);
  }
}

// Running maximum m and E = S - 1, S the sum of exp(x - m), per lane, over
// the vectors xl(0..nv), for log S = log1p(E). Where one logit dominates, S
// is 1 plus a tiny E: log(S) of a rounded S is then only accurate to an ulp
// of 1, while log1p of E kept apart is accurate relative to its own size
// (log_softmax at the maximum, the loss of a confident correct prediction).
// The maximum's own term is exactly e^0 = 1, so E is tracked in place of S,
// as t + c (c the compensation of the rounding errors of the additions):
//   a block that raises the maximum by D holds the new maximum's 1 in its
//   sum a:  E' = (a - 1) + e^-D (1 + E), where a - 1 is exact while a < 2
//   (Sterbenz) and only terms of E' itself round;
//   otherwise  E' = E + a.
// A lane that has seen only -inf has S = 0, E = -1, which the first formula
// continues correctly (e^-D = 0, 1 + E = 0). Memory is read once: per block
// of blen vectors the maximum, then a second sweep over the block (in cache)
// takes the exponentials, so exp runs once per element. x - m is
// carried as an exact pair (exp_minus): rounding it would cost |x - m| / 2
// ulps of each term, and of E where those terms are all of it.
// The block's sum a is accumulated from 1, so that every addition's error
// is kept by Fast2Sum, a third of the accumulation's cost per element.
// block(shift) sees, before the second sweep of each block, the running
// maximum with the block's included (0 while it is -inf), which the sweep
// subtracts; each(k, x) sees every vector in that sweep.
template <class V, class Load, class Block, class Each>
TA_HD void online_lse1p(const Load& xl, int64_t nv, int64_t blen, V& m, V& t, V& c, const Block& block,
                        const Each& each) {
  using C = scalar_t<V>;
  const C ninf = -std::numeric_limits<C>::infinity();
  m = splat<V>(ninf);
  t = splat<V>(C(-1));
  c = splat<V>(C(0));
  for (int64_t b = 0; b < nv; b += blen) {
    const int64_t e = std::min(nv, b + blen);
    const V mn = max_nan(m, max_over(xl, b, e, splat<V>(ninf)));
    // A lane whose maximum is still -inf has only seen exp(-inf) = 0 terms.
    const V shift = where<V>(mn == ninf, C(0), mn);
    block(shift);
    // acc = 1 + a. 1 <= acc < 2^24, so acc - 1 and, where
    // the block holds the new maximum (a >= 1), acc - 2 are exact.
    V acc = splat<V>(C(1)), err = splat<V>(C(0));
    // Where one logit dominates, E is all in the errors: their plain sum
    // drifted by 3.7 ulps of E over a column-path row of 37 (its roundings
    // grow with the partial sums). Added four at a time with their own
    // rounding errors kept (errc), they stay near one ulp whatever n.
    V errc = err;
    // Adds term k to acc (Fast2Sum: acc >= 1 >= the term) and returns the
    // addition's rounding error.
    const auto term = [&](int64_t k) TA_LAMBDA {
      const V x = xl(k);
      V d;
      fast_two_sum<V>(acc, exp_minus(x, shift), acc, d);
      each(k, x);
      return d;
    };
    int64_t k = b;
    for (; k + 4 <= e; k += 4) {
      const V d0 = term(k), d1 = term(k + 1), d2 = term(k + 2), d3 = term(k + 3);
      add_compensated(err, errc, (d0 + d1) + (d2 + d3));
    }
    for (; k < e; ++k) add_compensated(err, errc, term(k));
    err += errc;
    // NaN maxima compare false and take the second branch, where acc is NaN.
    const mask_t<V> grew = mn > m;
    const V f = exp_minus(m, shift);
    V tg, cg, ts, cs;
    two_sum<V>(acc - C(2), f * (C(1) + t), tg, cg);
    cg += madd(f, c, err);
    two_sum<V>(t, acc - C(1), ts, cs);
    cs += c + err;
    t = where<V>(grew, tg, ts);
    c = where<V>(grew, cg, cs);
    m = mn;
  }
}

// log S from the lanes' (m, t, c) of online_lse1p: per lane on the column
// path; on the row path the lanes' sums are combined into the row's, in
// double with every addition's error kept (two_sum), and m becomes the row's
// maximum in every lane. The first lane at the row's maximum holds the 1
// that is left out of E; other lanes at the maximum bring 1 + E_i (ties at
// the maximum make E >= 1). A row of -inf keeps max -inf and gives
// log S = log1p(-1) = -inf, so that x - max - log S is NaN as in PyTorch.
template <class Ctx, class V>
TA_HD V log_sum(V& m, V t, V c) {
  using C = scalar_t<V>;
  if constexpr (Ctx::kCol) {
    return m::log1p(t + c);
  } else {
    const C ninf = -std::numeric_limits<C>::infinity();
    const C mx = hmax(m);
    // The lanes' factors e^(m_i - mx), a vector of doubles at a time: an exp
    // per lane cost more than the rest of a row of a thousand elements.
    using VD = native<double>;
    constexpr int L = traits<V>::lanes, LD = traits<VD>::lanes;
    static_assert(L % LD == 0, "whole vectors of doubles");
    double f[L];
    for (int b = 0; b < L; b += LD) {
      VD md;
      for (int i = 0; i < LD; ++i) md[i] = m[b + i];
      const VD e = exp_minus<VD>(md, splat<VD>(static_cast<double>(mx)));
      __builtin_memcpy(f + b, &e, sizeof(VD));
    }
    double s = 0, err = 0;
    const auto add = [&](double v) TA_LAMBDA {
      double hi, lo;
      two_sum<double>(s, v, hi, lo);
      s = hi;
      err += lo;
    };
    bool one = false;
    for (int i = 0; i < L; ++i) {
      if (m[i] == mx && !one) {
        one = true;
        add(t[i]);
        add(c[i]);
      } else if (m[i] != ninf) {  // a lane of -inf has 1 + t = 0
        const double fi = m[i] == mx ? 1.0 : f[i];
        add(fi * (1.0 + static_cast<double>(t[i])));
        add(fi * static_cast<double>(c[i]));
      }
    }
    m = splat<V>(mx);
    return splat<V>(static_cast<C>(m::log1p(s + err)));
  }
}

// Softmax with one exp per element (exp dominates the cost): the maximum,
// then e = exp(x - max) kept while it is summed, then e / sum; per row on
// the row path, per lane on the column path. A row of -inf gives
// exp(-inf + inf) = NaN, as in PyTorch; a NaN maximum makes the row NaN.
// The e's go straight into a float32 or float64 output and through a
// per-thread buffer in the compute type otherwise, so that the
// low-precision output is rounded once, from e times the reciprocal of the
// sum.
template <class Ctx, class SY, class YSeq, class XL>
void softmax_direct(const YSeq& y_, const XL& xl_, int64_t nv) {
  // Local copies: the stores below go through may-alias vector types, after
  // which GCC would reload every field reached through a reference.
  const YSeq y = y_;
  const XL xl = xl_;
  using V = V_t<SY>;
  using C = C_t<SY>;
  constexpr int W = kLanes<SY>;
  V mx = max_over(xl, 0, nv, splat<V>(-std::numeric_limits<C>::infinity()));
  if constexpr (!Ctx::kCol) mx = splat<V>(hmax(mx));
  // The sum starts from 1 (taken off below) so that add_compensated<true>
  // keeps every addition's error (as online_lse1p); acc - 1 is exact for
  // rows shorter than 2^24 (float).
  V acc = splat<V>(C(1)), err = splat<V>(C(0));
  const auto sum = [&]() TA_LAMBDA {
    if constexpr (Ctx::kCol) return (acc - C(1)) + err;
    else return splat<V>(compensated_total(acc, err, 1.0));
  };
  if constexpr (std::is_same_v<R_t<SY>, C>) {
    for (int64_t k = 0; k < nv; ++k) {
      const V e = exp_minus(xl(k), mx);
      add_compensated<true>(acc, err, e);
      y.store(k, e);
    }
    const DivideBy<V> div(sum());
    for (int64_t k = 0; k < nv; ++k) y.store(k, div(y.load(k, C(0))));
  } else {
    static thread_local std::vector<C> buf;
    if (buf.size() < static_cast<size_t>(nv * W)) buf.resize(static_cast<size_t>(nv * W));
    C* b = buf.data();
    for (int64_t k = 0; k < nv; ++k) {
      const V e = exp_minus(xl(k), mx);
      add_compensated<true>(acc, err, e);
      __builtin_memcpy(b + k * W, &e, sizeof(V));
    }
    // One reciprocal instead of a division per element (7-8% of the time
    // of a bfloat16 row): its extra rounding, an ulp of float at most, is
    // far below the output's half ulp.
    const V inv = C(1) / sum();
    for (int64_t k = 0; k < nv; ++k) {
      V e;
      __builtin_memcpy(&e, b + k * W, sizeof(V));
      y.store(k, e * inv);
    }
  }
}

// v, negated for softmin. The sign is a template argument so that softmax
// and log_softmax, the common case, spend no operation on it per element.
template <bool kNeg, class V>
TA_HD V signed_by(V v) {
  if constexpr (kNeg) return -v; else return v;
}

// y = softmax(s x) or log_softmax(s x) along the row, s = -1 for softmin.
template <class SX, class SY>
struct SoftmaxFwd {
  static constexpr int kOps = 2, kOut = 1;
  static constexpr bool row(int) { return true; }
  static constexpr int64_t size(int k) { return k == 0 ? sizeof(R_t<SY>) : sizeof(R_t<SX>); }
  static constexpr int W = kLanes<SY>;
  using V = V_t<SY>;
  using C = C_t<SY>;
  static_assert(std::is_same_v<C, C_t<SX>>, "one compute type per kernel");
  bool log;
  bool neg;  // softmin
  explicit SoftmaxFwd(const RowCall& c) : log(c.params[1] != 0), neg(c.params[0] != 0) {}
  int64_t short_row() const { return log ? kShortLogRow : kShortRow; }

  template <class Ctx>
  void operator()(const Ctx& ctx) const {
    if (neg) run<true>(ctx); else run<false>(ctx);
  }
  template <bool kNeg, class Ctx>
  void run(const Ctx& ctx) const {
    const auto y = ctx.template seq<SY>(0);
    const auto x = ctx.template seq<SX>(1);
    const int64_t nv = x.count();
    // Padding becomes -inf after the sign, contributing exp(-inf) = 0.
    const C pad = signed_by<kNeg>(-std::numeric_limits<C>::infinity());
    const auto xl = [&](int64_t k) TA_LAMBDA { return signed_by<kNeg>(x.load(k, pad)); };
    V mx, t, c;
    if (!log) {
      softmax_direct<Ctx, SY>(y, xl, nv);
      return;
    }
    // (x - max) - log1p(E): the two terms have opposite signs, so nothing
    // cancels and the result keeps the relative accuracy of each.
    online_lse1p(xl, nv, online_block(ctx), mx, t, c, [](V) TA_LAMBDA {}, [](int64_t, V) TA_LAMBDA {});
    const V ls = log_sum<Ctx>(mx, t, c);
    if constexpr (Ctx::kCol) {
      if (ctx.stats) {
        put_stats(ctx.stats, mx, ls);
        return;
      }
    }
    out(y, xl, nv, mx, ls);
  }
  // The per-lane stats a column run leaves for row_out: the maxima, then
  // the logs of the sums.
  static_assert(2 * sizeof(V) <= kStatsBytes, "room for max and log S");
  TA_HD static void put_stats(void* stats, V mx, V ls) {
    __builtin_memcpy(stats, &mx, sizeof(V));
    __builtin_memcpy(static_cast<char*>(stats) + sizeof(V), &ls, sizeof(V));
  }
  TA_HD static void lane_stats(const void* stats, int j, C& mx, C& ls) {
    __builtin_memcpy(&mx, static_cast<const char*>(stats) + j * sizeof(C), sizeof(C));
    __builtin_memcpy(&ls, static_cast<const char*>(stats) + sizeof(V) + j * sizeof(C), sizeof(C));
  }
  template <class YSeq, class XL>
  TA_HD static void out(const YSeq& y, const XL& xl, int64_t nv, V mx, V ls) {
    for (int64_t k = 0; k < nv; ++k) y.store(k, (xl(k) - mx) - ls);
  }

  // log_softmax rows that went through a tile are finished in place where
  // both the input's and the output's rows are contiguous (see RowsOut).
  // No op takes the log of softmin, so row_out needs no sign.
  bool rows_out(const RowCall& c) const {
    return log && !neg && c.dim_strides[0] == sizeof(R_t<SY>) && c.dim_strides[1] == sizeof(R_t<SX>);
  }
  void row_out(const RowCall& c, int64_t r, const void* stats, int j) const {
    C mx, ls;
    lane_stats(stats, j, mx, ls);
    const RowSeq<SY> y(reinterpret_cast<R_t<SY>*>(c.data[0] + r * c.strides[0]), c.n);
    const RowSeq<SX> x(reinterpret_cast<R_t<SX>*>(c.data[1] + r * c.strides[1]), c.n);
    const C pad = 0;
    out(y, [&](int64_t k) TA_LAMBDA { return x.load(k, pad); }, y.count(), splat<V>(mx), splat<V>(ls));
  }
};

// dx = (g - sum(g y)) y, or g - exp(y) sum(g) for log_softmax, with g
// multiplied by s = -1 for softmin.
template <class SG, class SD>
struct SoftmaxBwd {
  static constexpr int kOps = 3, kOut = 1;
  static constexpr bool row(int) { return true; }
  static constexpr int64_t size(int k) { return k == 0 ? sizeof(R_t<SD>) : sizeof(R_t<SG>); }
  static constexpr int W = kLanes<SG>;
  using V = V_t<SG>;
  using C = C_t<SG>;
  static_assert(std::is_same_v<C, C_t<SD>>, "one compute type per kernel");
  bool log;
  bool neg;  // softmin
  explicit SoftmaxBwd(const RowCall& c) : log(c.params[1] != 0), neg(c.params[0] != 0) {}

  // Whole groups of rows on the column path at a time (see Groups): 8, so
  // that each element index is a run of 8 lines (float32; 4 for bfloat16)
  // and the per-lane sums fit in registers.
  static constexpr int kGroups = 8;

  template <class Ctx>
  void operator()(const Ctx& ctx) const {
    if (neg) run<true>(ctx); else run<false>(ctx);
  }
  template <bool kFull, int G = 1>
  void operator()(const ColCtx<kFull>& ctx, std::integral_constant<int, G> = {}) const {
    if (log) {
      if (neg) cols<true, true, G>(ctx); else cols<false, true, G>(ctx);
    } else {
      if (neg) cols<true, false, G>(ctx); else cols<false, false, G>(ctx);
    }
  }

  // G groups of rows on the column path, a row per lane. The G groups give
  // the independent chains of additions that the row path gets from four
  // accumulators, so each lane has one, compensated, taking its terms four
  // at a time (as the row path's sum(g y) does; sum(g) for log_softmax too).
  template <bool kNeg, bool kLog, int G, bool kFull>
  void cols(const ColCtx<kFull>& ctx) const {
    static_assert(kFull || G == 1, "several groups are whole ones");
    const auto dx = ctx.template seq<SD>(0);
    const auto g = ctx.template seq<SG>(1);
    const auto y = ctx.template seq<SG>(2);
    // Element k of group j (the partial group is j = 0 alone).
    const auto gl = [&](int64_t k, int j) TA_LAMBDA { return kFull ? g.load_group(k, j) : g.load(k, C(0)); };
    const auto yl = [&](int64_t k, int j) TA_LAMBDA { return kFull ? y.load_group(k, j) : y.load(k, C(0)); };
    const int64_t n = ctx.n;
    const V zero = splat<V>(C(0));
    V a[G], e[G];
#pragma GCC unroll 16
    for (int j = 0; j < G; ++j) a[j] = e[j] = zero;
    const auto term = [&](int64_t k, int j) TA_LAMBDA {
      if constexpr (kLog) return gl(k, j); else return gl(k, j) * yl(k, j);
    };
    const auto term2 = [&](int64_t k, int j) TA_LAMBDA {
      if constexpr (kLog) return term(k, j) + term(k + 1, j); else return madd(gl(k + 1, j), yl(k + 1, j), term(k, j));
    };
    int64_t k = 0;
    for (; k + 4 <= n; k += 4) {
#pragma GCC unroll 16
      for (int j = 0; j < G; ++j) add_compensated(a[j], e[j], term2(k, j) + term2(k + 2, j));
    }
    for (; k < n; ++k) {
#pragma GCC unroll 16
      for (int j = 0; j < G; ++j) add_compensated(a[j], e[j], term(k, j));
    }
#pragma GCC unroll 16
    for (int j = 0; j < G; ++j) a[j] = signed_by<kNeg>(a[j] + e[j]);
    for (int64_t k = 0; k < n; ++k) {
#pragma GCC unroll 16
      for (int j = 0; j < G; ++j) {
        const V gv = signed_by<kNeg>(gl(k, j));
        V r;
        if constexpr (kLog) r = gv - m::exp(yl(k, j)) * a[j]; else r = (gv - a[j]) * yl(k, j);
        if constexpr (kFull) dx.store_group(k, j, r); else dx.store(k, r);
      }
    }
  }

  // The row path.
  template <bool kNeg, class Ctx>
  void run(const Ctx& ctx) const {
    const auto dx = ctx.template seq<SD>(0);
    const auto g = ctx.template seq<SG>(1);
    const auto y = ctx.template seq<SG>(2);
    const int64_t nv = g.count();
    // Four accumulators, so consecutive additions do not wait on each other
    // (a single chain is latency-bound); the order is fixed by the row length.
    // Named, not an array: GCC keeps an array of four vectors (and of their
    // errors) in memory across iterations.
    const V zero = splat<V>(C(0));
    V a0 = zero, a1 = zero, a2 = zero, a3 = zero;
    int64_t k = 0;
    V dot;
    if (log) {
      for (; k + 4 <= nv; k += 4) {
        a0 += g.load(k, C(0));
        a1 += g.load(k + 1, C(0));
        a2 += g.load(k + 2, C(0));
        a3 += g.load(k + 3, C(0));
      }
      for (; k < nv; ++k) a0 += g.load(k, C(0));
      dot = signed_by<kNeg>(total<Ctx>((a0 + a1) + (a2 + a3)));
    } else {
      // sum(g y) keeps its additions' errors (as the forward's sum does):
      // where one y dominates, every addition to its accumulator rounds at
      // that term's ulp, and a chain of n / (4 W) of them piles up to
      // several ulps of the result. Terms enter in groups of four, two pairs
      // g y + g' y' (one product and one FMA: two roundings, as for two
      // products) added: a quarter of the compensated additions for one
      // rounding more per four terms, each within half an ulp of a partial
      // sum of the group. Over the rows of ACCURACY.md the float32 error
      // goes from 2.3 to 2.7 ulp of the summands (bound 4; PyTorch 7.1).
      const auto gy = [&](int64_t i) TA_LAMBDA { return g.load(i, C(0)) * y.load(i, C(0)); };
      const auto gy2 = [&](int64_t i) TA_LAMBDA { return madd(g.load(i + 1, C(0)), y.load(i + 1, C(0)), gy(i)); };
      const auto gy4 = [&](int64_t i) TA_LAMBDA { return gy2(i) + gy2(i + 2); };
      if (sizeof(C) == 4 && nv < 16) {
        // A float row shorter than 16 vectors: its few groups are added in
        // double lanes, exact to far below a float ulp without compensation,
        // so that the row's sum is a short chain (the compensated form below
        // would add a row of 4 vectors to zero three times, one after
        // another, which a short row cannot hide). A row of one group gets
        // the same sum either way.
        Wide<V> acc(zero);
        for (; k + 4 <= nv; k += 4) acc = acc + Wide<V>(gy4(k));
        for (; k < nv; ++k) acc = acc + Wide<V>(gy(k));
        dot = signed_by<kNeg>(splat<V>(static_cast<C>(acc.total())));
      } else {
        V e0 = zero, e1 = zero, e2 = zero, e3 = zero;
        for (; k + 16 <= nv; k += 16) {
          add_compensated(a0, e0, gy4(k));
          add_compensated(a1, e1, gy4(k + 4));
          add_compensated(a2, e2, gy4(k + 8));
          add_compensated(a3, e3, gy4(k + 12));
        }
        // The rest on the accumulators in turn too, not on one in a chain.
        if (k + 4 <= nv) {
          add_compensated(a0, e0, gy4(k));
          k += 4;
        }
        if (k + 4 <= nv) {
          add_compensated(a1, e1, gy4(k));
          k += 4;
        }
        if (k + 4 <= nv) {
          add_compensated(a2, e2, gy4(k));
          k += 4;
        }
        for (; k < nv; ++k) add_compensated(a3, e3, gy(k));
        // Pairs of accumulators, then the pairs: two additions deep, not three.
        V s01 = a0, e01 = e0 + e1, s23 = a2, e23 = e2 + e3;
        add_compensated(s01, e01, a1);
        add_compensated(s23, e23, a3);
        V e = e01 + e23;
        add_compensated(s01, e, s23);
        dot = signed_by<kNeg>(splat<V>(compensated_total(s01, e)));
      }
    }
    if (log) {
      for (int64_t k = 0; k < nv; ++k) dx.store(k, signed_by<kNeg>(g.load(k, C(0))) - m::exp(y.load(k, C(0))) * dot);
    } else {
      for (int64_t k = 0; k < nv; ++k) dx.store(k, (signed_by<kNeg>(g.load(k, C(0))) - dot) * y.load(k, C(0)));
    }
  }
};

// The vector-Jacobian product of the backward with gg (times s):
//   softmax:      dg = (gg - sum(gg y)) y,   dy = gg (g - sum(g y)) - g sum(gg y)
//   log_softmax:  dg = gg - sum(gg exp(y)),  dy = -gg exp(y) sum(g)
template <class S>
struct SoftmaxDbwd {
  static constexpr int kOps = 5, kOut = 2;
  static constexpr bool row(int) { return true; }
  static constexpr int64_t size(int) { return sizeof(R_t<S>); }
  static constexpr int W = kLanes<S>;
  using V = V_t<S>;
  using C = C_t<S>;
  bool log;
  C sgn;
  explicit SoftmaxDbwd(const RowCall& c) : log(c.params[1] != 0), sgn(c.params[0] != 0 ? C(-1) : C(1)) {}

  template <class Ctx>
  void operator()(const Ctx& ctx) const {
    const auto dg = ctx.template seq<S>(0);
    const auto dy = ctx.template seq<S>(1);
    const auto gg = ctx.template seq<S>(2);
    const auto g = ctx.template seq<S>(3);
    const auto y = ctx.template seq<S>(4);
    const int64_t nv = g.count();
    V a = splat<V>(C(0)), b = splat<V>(C(0));
    if (log) {
      for (int64_t k = 0; k < nv; ++k) {
        a += g.load(k, C(0));
        b = madd(gg.load(k, C(0)) * sgn, m::exp(y.load(k, C(0))), b);
      }
    } else {
      for (int64_t k = 0; k < nv; ++k) {
        const V yv = y.load(k, C(0));
        a = madd(g.load(k, C(0)), yv, a);
        b = madd(gg.load(k, C(0)) * sgn, yv, b);
      }
    }
    const V sg = total<Ctx>(a), sgg = total<Ctx>(b);
    for (int64_t k = 0; k < nv; ++k) {
      const V ggv = gg.load(k, C(0)) * sgn, gv = g.load(k, C(0)), yv = y.load(k, C(0));
      if (log) {
        dg.store(k, ggv - sgg);
        dy.store(k, -(ggv * m::exp(yv) * sg));
      } else {
        dg.store(k, (ggv - sgg) * yv);
        dy.store(k, ggv * (gv - sg) - gv * sgg);
      }
    }
  }
};

// ----------------------------------------------------------- cross entropy ---
// Per row, with weights w and q the row's target weights
//   class index t:  q_c = (1 - e) w_t [c = t] + (e / n) w_c
//   probabilities:  q_c = w_c ((1 - e) t_c + e / n)
// the loss is  sum_c q_c (lse - x_c)  and its gradient  sum(q) p - q, with
// p = softmax(x). The forward saves the row maximum M and L = log sum
// exp(x - M): x - M - L is log p without the rounding of a stored
// logsumexp, which matters for large logits.
//
// With the sum of exp(x - M) kept as 1 + E (online_lse1p), L = log1p(E),
// and A = sum_c q_c (x_c - M) <= 0, the loss is sum(q) L - A: two terms of
// the same sign, so a small loss (a confident correct prediction, L ~ E) is
// as accurate as a large one. A is summed relative to each lane's running
// maximum and moved along with it (A -= sum(q) D when the maximum grows by
// D), the lanes then moved to the row's M: the terms x - M stay small where
// the logits are close instead of carrying their magnitude, and the moves
// add nothing where the q seen so far are 0 (a one-hot target at the
// maximum).
template <class S, CeFwd kKind>
struct CeForward {
  static constexpr bool kProb = kKind == CeFwd::Prob;
  static constexpr int kOps = 5, kOut = 3;
  static constexpr int64_t short_row() { return kShortLogRow; }
  using V = V_t<S>;
  using C = C_t<S>;
  // loss, max, logsum | x, target
  static constexpr bool row(int k) { return k == 3 || (k == 4 && kProb); }
  static constexpr int64_t size(int k) {
    return k < 3 ? sizeof(C) : (k == 3 || kProb ? sizeof(R_t<S>) : sizeof(int64_t));
  }
  static constexpr int W = kLanes<S>;
  const void* weight;
  int64_t ignore;
  C eps, sum_w;
  explicit CeForward(const RowCall& c)
      : weight(c.weight), ignore(static_cast<int64_t>(c.params[0])), eps(C(c.params[1])), sum_w(C(c.params[2])) {}

  template <class Ctx>
  void operator()(const Ctx& ctx) const {
    const auto x = ctx.template seq<S>(3);
    const auto t = ctx.template seq<S>(4);  // read only for probability targets
    const auto w = ctx.template weights<V>(weight);
    const int64_t nv = x.count();
    const C ninf = -std::numeric_limits<C>::infinity();
    const C keep = C(1) - eps, spread = eps / C(ctx.n);
    // acc = sum q (x - ref) and qsum = sum q per lane, ref the lane's shift.
    // (Smoothing with class indices: q = w here, scaled by e / n below.)
    V ref = splat<V>(C(0)), acc = splat<V>(C(0)), qsum = splat<V>(C(0));
    const auto xl = [&](int64_t k) TA_LAMBDA { return x.load(k, ninf); };
    const auto block = [&](V shift) TA_LAMBDA {
      if constexpr (kKind != CeFwd::Index) {
        acc = madd(qsum, ref - shift, acc);
        ref = shift;
      }
    };
    const auto each = [&](int64_t k, V xv) TA_LAMBDA {
      if constexpr (kKind != CeFwd::Index) {
        // Padding has weight 0 (and target 0).
        const V q = kProb ? w.load(k) * madd(t.load(k, C(0)), keep, spread) : w.load(k);
        qsum += q;
        acc += where<V>(x.valid(k), q * (xv - ref), C(0));
      }
    };
    V mx, ts, cs;
    online_lse1p(xl, nv, online_block(ctx), mx, ts, cs, block, each);
    const V ls = log_sum<Ctx>(mx, ts, cs);
    V a = acc, qs = qsum;
    if constexpr (!Ctx::kCol && kKind != CeFwd::Index) {
      // The lanes' sums moved to the row's maximum, in double.
      const double top = mx[0] == ninf ? 0.0 : static_cast<double>(mx[0]);
      double sa = 0, sq = 0;
      for (int i = 0; i < W; ++i) {
        sa += static_cast<double>(acc[i]) - static_cast<double>(qsum[i]) * (top - static_cast<double>(ref[i]));
        sq += static_cast<double>(qsum[i]);
      }
      a = splat<V>(static_cast<C>(sa));
      qs = splat<V>(static_cast<C>(sq));
    }
    const C* wp = static_cast<const C*>(weight);
    for (int j = 0; j < ctx.lanes(); ++j) {
      const C mj = mx[j], lj = ls[j];
      C loss;
      if constexpr (kProb) {
        loss = qs[j] * lj - a[j];
      } else {
        const int64_t ti = *reinterpret_cast<const int64_t*>(ctx.at(4, j));
        if (ti == ignore) {
          loss = C(0);
        } else {
          const C xt = load1<S>(reinterpret_cast<const R_t<S>*>(ctx.elem_at(3, j, ti)));
          loss = wp[ti] * ((mj - xt) + lj);
          if constexpr (kKind == CeFwd::IndexSmooth) {
            loss = keep * loss + spread * (sum_w * lj - a[j]);
          }
        }
      }
      *reinterpret_cast<C*>(ctx.at(0, j)) = loss;
      *reinterpret_cast<C*>(ctx.at(1, j)) = mj;
      *reinterpret_cast<C*>(ctx.at(2, j)) = lj;
    }
  }
};

// dx = u (sum(q) p - q) with u the row's share of grad_output, and for
// probability targets optionally dtarget = -u (1 - e) w log p. Rows whose
// target is ignore_index get dx = 0.
template <class S, CeBwd kKind>
struct CeBackward {
  static constexpr bool kIndex = kKind == CeBwd::Index;
  static constexpr bool kDt = kKind == CeBwd::ProbTarget;
  static constexpr int kOut = kDt ? 2 : 1;
  static constexpr int kOps = kOut + 5;
  static constexpr int X = kOut, T = kOut + 1, MX = kOut + 2, LS = kOut + 3, U = kOut + 4;
  using V = V_t<S>;
  using C = C_t<S>;
  // dx[, dtarget] | x, target, max, logsum, scale
  static constexpr bool row(int k) { return k <= X || (k == T && !kIndex); }
  static constexpr int64_t size(int k) {
    return row(k) ? sizeof(R_t<S>) : (k == T ? sizeof(int64_t) : sizeof(C));
  }
  static constexpr int W = kLanes<S>;
  const void* weight;
  int64_t ignore;
  C eps, sum_w;
  explicit CeBackward(const RowCall& c)
      : weight(c.weight), ignore(static_cast<int64_t>(c.params[0])), eps(C(c.params[1])), sum_w(C(c.params[2])) {}

  template <class Ctx>
  void operator()(const Ctx& ctx) const {
    const auto dx = ctx.template seq<S>(0);
    const auto x = ctx.template seq<S>(X);
    const auto w = ctx.template weights<V>(weight);
    const C* wp = static_cast<const C*>(weight);
    const int64_t nv = x.count();
    const C keep = C(1) - eps, spread = eps / C(ctx.n);
    // Per-lane row values; lanes beyond ctx.lanes() are padding.
    V mx = splat<V>(C(0)), ls = mx, u = mx, qs = mx, act = mx;
    for (int j = 0; j < ctx.lanes(); ++j) {
      mx[j] = *reinterpret_cast<const C*>(ctx.at(MX, j));
      ls[j] = *reinterpret_cast<const C*>(ctx.at(LS, j));
      u[j] = *reinterpret_cast<const C*>(ctx.at(U, j));
      act[j] = C(1);
      if constexpr (kIndex) {
        const int64_t t = *reinterpret_cast<const int64_t*>(ctx.at(T, j));
        if (t == ignore) act[j] = C(0); else qs[j] = keep * wp[t] + spread * sum_w;
      }
    }
    if constexpr (!Ctx::kCol) {
      // Every lane holds the same row.
      mx = splat<V>(mx[0]);
      ls = splat<V>(ls[0]);
      u = splat<V>(u[0]);
      qs = splat<V>(qs[0]);
      act = splat<V>(act[0]);
    }
    const mask_t<V> ignored = act == C(0);
    if constexpr (kIndex) {
      if (!Ctx::kCol && act[0] == C(0)) {
        for (int64_t k = 0; k < nv; ++k) dx.store(k, splat<V>(C(0)));
        return;
      }
      for (int64_t k = 0; k < nv; ++k) {
        const V p = m::exp((x.load(k, C(0)) - mx) - ls);
        const V d = eps == C(0) ? qs * p : qs * p - spread * w.load(k);
        dx.store(k, where<V>(ignored, C(0), u * d));
      }
      // The target's own element, whose q = (1 - e) w_t + (e / n) w_t has
      // the first term: sum(q) p - q = sum(q) (p - 1) + (e / n)(sum w - w_t),
      // with p - 1 = expm1(log p). For a confident correct prediction p - 1
      // is the tiny -(1 - p), which p rounded near 1 would only give to an
      // ulp of 1.
      for (int j = 0; j < ctx.lanes(); ++j) {
        if (act[j] == C(0)) continue;
        const int64_t t = *reinterpret_cast<const int64_t*>(ctx.at(T, j));
        const C xt = load1<S>(reinterpret_cast<const R_t<S>*>(ctx.elem_at(X, j, t)));
        const C pm1 = m::expm1((xt - mx[j]) - ls[j]);
        const C d = madd(qs[j], pm1, spread * (sum_w - wp[t]));
        store1<S>(reinterpret_cast<R_t<S>*>(ctx.elem_at(0, j, t)), u[j] * d);
      }
    } else {
      const auto t = ctx.template seq<S>(T);
      V acc = splat<V>(C(0));
      for (int64_t k = 0; k < nv; ++k) acc += w.load(k) * madd(t.load(k, C(0)), keep, spread);
      qs = total<Ctx>(acc);
      const V ut = -(u * keep);
      for (int64_t k = 0; k < nv; ++k) {
        const V wv = w.load(k);
        const V lp = (x.load(k, C(0)) - mx) - ls;
        const V q = wv * madd(t.load(k, C(0)), keep, spread);
        dx.store(k, u * (qs * m::exp(lp) - q));
        if constexpr (kDt) ctx.template seq<S>(1).store(k, ut * wv * lp);
      }
    }
  }
};

// ------------------------------------------------------------ elementwise ---
template <class S, bool kPw>
struct BceLoops {
  using C = C_t<S>;
  using V = V_t<S>;
  using F = act::BceWithLogits<C, kPw>;
  static void fwd(char** d, const int64_t* s, int64_t n, int64_t rows, const double*) {
    if constexpr (kPw) {
      run<S, 1, 4>(d, s, n, rows, [](V x, V t, V w, V pw) TA_LAMBDA { return F::fwd(x, t, w, pw); });
    } else {
      run<S, 1, 3>(d, s, n, rows, [](V x, V t, V w) TA_LAMBDA { return F::fwd(x, t, w, w); });
    }
  }
  static void bwd(char** d, const int64_t* s, int64_t n, int64_t rows, const double*) {
    if constexpr (kPw) {
      run<S, 1, 5>(d, s, n, rows, [](V u, V x, V t, V w, V pw) TA_LAMBDA { return F::dx(u, x, t, w, pw); });
    } else {
      run<S, 1, 4>(d, s, n, rows, [](V u, V x, V t, V w) TA_LAMBDA { return F::dx(u, x, t, w, w); });
    }
  }
  static void bwd_t(char** d, const int64_t* s, int64_t n, int64_t rows, const double*) {
    if constexpr (kPw) {
      run<S, 2, 5>(d, s, n, rows, [](V u, V x, V t, V w, V pw) TA_LAMBDA {
        return Outs<V, 2>{{F::dx(u, x, t, w, pw), F::dt(u, x, t, w, pw)}};
      });
    } else {
      run<S, 2, 4>(d, s, n, rows, [](V u, V x, V t, V w) TA_LAMBDA {
        return Outs<V, 2>{{F::dx(u, x, t, w, w), F::dt(u, x, t, w, w)}};
      });
    }
  }
};

// ------------------------------------------------------------------ table ---
template <class SX, class SY>
void fill_softmax(cpu::RowKernelTable& t, DType dx, DType dy) {
  for (int mode = 0; mode < 2; ++mode) {
    t.softmax_fwd[mode][static_cast<int>(dx)][static_cast<int>(dy)] = &run_body<SoftmaxFwd<SX, SY>>;
    // Backward: operands in SY (the forward's output dtype), result in SX.
    t.softmax_bwd[mode][static_cast<int>(dy)][static_cast<int>(dx)] = &run_body<SoftmaxBwd<SY, SX>>;
  }
}

template <class S>
void fill_dtype(cpu::RowKernelTable& t, DType dt) {
  const int i = static_cast<int>(dt);
  fill_softmax<S, S>(t, dt, dt);
  for (int mode = 0; mode < 2; ++mode) t.softmax_dbwd[mode][i] = &run_body<SoftmaxDbwd<S>>;
  t.ce_fwd[static_cast<int>(CeFwd::Index)][i] = &run_body<CeForward<S, CeFwd::Index>>;
  t.ce_fwd[static_cast<int>(CeFwd::IndexSmooth)][i] = &run_body<CeForward<S, CeFwd::IndexSmooth>>;
  t.ce_fwd[static_cast<int>(CeFwd::Prob)][i] = &run_body<CeForward<S, CeFwd::Prob>>;
  t.ce_bwd[static_cast<int>(CeBwd::Index)][i] = &run_body<CeBackward<S, CeBwd::Index>>;
  t.ce_bwd[static_cast<int>(CeBwd::Prob)][i] = &run_body<CeBackward<S, CeBwd::Prob>>;
  t.ce_bwd[static_cast<int>(CeBwd::ProbTarget)][i] = &run_body<CeBackward<S, CeBwd::ProbTarget>>;
  t.bce[0][i] = &BceLoops<S, false>::fwd;
  t.bce[1][i] = &BceLoops<S, false>::bwd;
  t.bce[2][i] = &BceLoops<S, false>::bwd_t;
  t.bce[3][i] = &BceLoops<S, true>::fwd;
  t.bce[4][i] = &BceLoops<S, true>::bwd;
  t.bce[5][i] = &BceLoops<S, true>::bwd_t;
}

cpu::RowKernelTable make_row_table() {
  cpu::RowKernelTable t{};
#define TA_STR2(x) #x
#define TA_STR(x) TA_STR2(x)
  t.isa = TA_STR(TA_ISA);
#undef TA_STR
#undef TA_STR2
  fill_dtype<F32>(t, DType::F32);
  fill_dtype<F64>(t, DType::F64);
  fill_dtype<F16>(t, DType::F16);
  fill_dtype<BF16>(t, DType::BF16);
  // float16 / bfloat16 read into float32 results (softmax(x, dtype=float32))
  // and back: the compute type is float either way.
  fill_softmax<F16, F32>(t, DType::F16, DType::F32);
  fill_softmax<BF16, F32>(t, DType::BF16, DType::F32);
#define TA_X(name, F, half, pair, params) \
  fill_parametric<act::Gated<act::F>::template Fn>(t.gated[static_cast<int>(GatedOpId::name)]);
  TA_GATED_OPS(TA_X)
#undef TA_X
  return t;
}

}  // namespace rows
}  // namespace cpu_impl
}  // namespace TA_ISA

namespace cpu {
#define TA_ROW_TABLE_FN2(isa) row_table_##isa
#define TA_ROW_TABLE_FN(isa) TA_ROW_TABLE_FN2(isa)
const RowKernelTable* TA_ROW_TABLE_FN(TA_ISA)() {
  static const RowKernelTable table = ::ta::TA_ISA::cpu_impl::rows::make_row_table();
  return &table;
}
#undef TA_ROW_TABLE_FN
#undef TA_ROW_TABLE_FN2
}  // namespace cpu
}  // namespace ta
