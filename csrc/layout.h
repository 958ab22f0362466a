// Output allocation for elementwise ops, shared by the CPU and Meta kernels
// so that real and fake tensors always agree.
//
// The rule is TensorIterator's, the one PyTorch's built-in elementwise ops
// follow: contiguous and channels-last inputs give the same format; any
// other non-overlapping dense input gives its own strides; everything else
// (slices, broadcasts, overlaps) gives a dense tensor whose dimensions are
// ordered like the input's strides. Written on SymInts so that it also runs
// under torch.compile with dynamic shapes.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/irange.h>

#include <numeric>
#include <vector>

namespace ta {

inline at::Tensor empty_like_pointwise(const at::Tensor& x) {
  const auto opts = x.options();
  if (x.is_contiguous()) return at::empty_symint(x.sym_sizes(), opts);
  if (x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return at::empty_symint(x.sym_sizes(), opts.memory_format(at::MemoryFormat::ChannelsLast));
  }
  if (x.is_non_overlapping_and_dense()) return at::empty_strided_symint(x.sym_sizes(), x.sym_strides(), opts);

  // TensorIterator::reorder_dimensions for a single operand: an insertion
  // sort of the dimensions, fastest first, that leaves ambiguous pairs
  // (a zero stride on either side) in place.
  const int64_t n = x.dim();
  const auto sizes = x.sym_sizes();
  const auto strides = x.sym_strides();
  std::vector<int64_t> perm(n);
  std::iota(perm.rbegin(), perm.rend(), 0);
  auto should_swap = [&](int64_t d0, int64_t d1) -> int {
    const c10::SymInt& s0 = strides[d0];
    const c10::SymInt& s1 = strides[d1];
    if (s0 == 0 || s1 == 0) return 0;
    if (s0 < s1) return -1;
    if (s0 > s1) return 1;
    return sizes[d0] > sizes[d1] ? 1 : 0;
  };
  for (int64_t i = 1; i < n; ++i) {
    int64_t d1 = i;
    for (int64_t d0 = i - 1; d0 >= 0; --d0) {
      const int c = should_swap(perm[d0], perm[d1]);
      if (c > 0) {
        std::swap(perm[d0], perm[d1]);
        d1 = d0;
      } else if (c < 0) {
        break;
      }
    }
  }
  std::vector<c10::SymInt> out_strides(n);
  c10::SymInt next = 1;
  for (const auto k : c10::irange(n)) {
    out_strides[perm[k]] = next;
    next = next * sizes[perm[k]];
  }
  return at::empty_strided_symint(sizes, out_strides, opts);
}

}  // namespace ta
