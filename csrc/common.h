// Helpers shared by the operator implementations: input checks and running
// a per-ISA loop over TensorIterator.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <array>
#include <cctype>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "cpu/kernels.h"

namespace ta {

constexpr int kMaxParams = 4;

inline int dtype_index(at::ScalarType st) {
  switch (st) {
    case at::kFloat: return static_cast<int>(DType::F32);
    case at::kDouble: return static_cast<int>(DType::F64);
    case at::kHalf: return static_cast<int>(DType::F16);
    case at::kBFloat16: return static_cast<int>(DType::BF16);
    default: TORCH_INTERNAL_ASSERT(false, "unsupported dtype ", st);
  }
}

// "leaky_relu" -> "LeakyRelu", for autograd node names.
inline std::string camel_case(const std::string& name) {
  std::string out;
  bool up = true;
  for (char c : name) {
    if (c == '_') {
      up = true;
    } else {
      out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      up = false;
    }
  }
  return out;
}

// The forward-mode tangent of t (undefined when t has none).
inline at::Tensor fw_grad(const at::Tensor& t) { return t.defined() ? t._fw_grad(/*level=*/0) : at::Tensor(); }

// The call below our Autograd kernels: the op's next kernels (CPU, Meta),
// with autograd and ADInplaceOrView off for what they call.
inline void redispatch_below(const c10::OperatorHandle& op, c10::DispatchKeySet ks, torch::jit::Stack* stack) {
  at::AutoDispatchBelowADInplaceOrView guard;
  op.redispatchBoxed(ks & c10::after_ADInplaceOrView_keyset, stack);
}

inline void check_float(const at::Tensor& t, const char* what, const std::string& op) {
  TORCH_CHECK(t.layout() == at::kStrided, op, ": expected a strided (dense) tensor for '", what, "', got ",
              t.layout());
  const auto st = t.scalar_type();
  TORCH_CHECK(st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16, op,
              ": expected a floating point tensor (float32, float64, float16 or bfloat16) for '", what,
              "', got ", st);
}

inline void check_same(const at::Tensor& a, const char* an, const at::Tensor& b, const char* bn,
                       const std::string& op) {
  TORCH_CHECK(a.sym_sizes() == b.sym_sizes(), op, ": '", an, "' has shape ", a.sym_sizes(), " but '", bn,
              "' has shape ", b.sym_sizes());
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), op, ": '", an, "' has dtype ", a.scalar_type(), " but '", bn,
              "' has dtype ", b.scalar_type());
  TORCH_CHECK(a.device() == b.device(), op, ": '", an, "' is on ", a.device(), " but '", bn, "' is on ",
              b.device());
}

// The common case, every operand dense (contiguous, channels-last or any
// other non-overlapping dense layout) with the same shape, strides and
// dtype, skips TensorIterator, whose construction costs more than the loop
// for small tensors: such operands are walked in memory order as flat
// arrays. The work is split as TensorIterator splits it (at::parallel_for
// with its grain size); the loops give the same bits however the elements
// are split. Returns false, having done nothing, for any other case,
// including outputs that alias an input without being it, whose overlap
// TensorIterator checks. call(data, strides, n, rows) is TensorIterator's
// 2-d loop (cpu::Loop); here always one row.
template <class Call>
inline bool run_dense(const Call& call, std::initializer_list<at::Tensor> outputs,
                      std::initializer_list<at::Tensor> inputs, int64_t grain) {
  constexpr int kMaxOperands = 8;
  const int nops = static_cast<int>(outputs.size() + inputs.size());
  if (nops > kMaxOperands) return false;
  const at::Tensor& first = *outputs.begin();
  const auto dtype = first.scalar_type();
  const auto sizes = first.sizes();
  const auto layout = first.strides();
  if (!first.is_contiguous() && !first.is_non_overlapping_and_dense()) return false;
  char* data[kMaxOperands];
  int64_t strides[kMaxOperands];
  int k = 0;
  for (const auto* list : {&outputs, &inputs}) {
    for (const auto& t : *list) {
      if (t.scalar_type() != dtype || !t.sizes().equals(sizes) || !t.strides().equals(layout)) return false;
      data[k] = static_cast<char*>(t.data_ptr());
      strides[k] = t.element_size();
      ++k;
    }
  }
  for (const auto& o : outputs) {
    for (const auto& t : {&outputs, &inputs}) {
      for (const auto& u : *t) {
        if (&u != &o && o.is_alias_of(u) && o.data_ptr() != u.data_ptr()) return false;
      }
    }
  }
  const int64_t n = first.numel();
  const int64_t esize = first.element_size();
  if (n < grain || at::get_num_threads() == 1) {
    call(data, strides, n, 1);
    return true;
  }
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    char* d[kMaxOperands];
    for (int j = 0; j < nops; ++j) d[j] = data[j] + begin * esize;
    call(d, strides, end - begin, 1);
  });
  return true;
}

// outputs = call(inputs...) elementwise, on the CPU, in parallel. All
// tensors have the same shape and dtype (inputs may be broadcast views).
// grain: elements per chunk between threads (ATen's by default; the
// pointwise ops scale it by their cost, see Traits::kCost).
template <class Call>
inline void run_loop_with(const Call& call, std::initializer_list<at::Tensor> outputs,
                          std::initializer_list<at::Tensor> inputs, int64_t grain = at::internal::GRAIN_SIZE) {
  if (outputs.begin()->numel() == 0) return;
  if (run_dense(call, outputs, inputs, grain)) return;
  at::TensorIteratorConfig config;
  config.set_check_mem_overlap(true).check_all_same_dtype(true).resize_outputs(false);
  for (const auto& t : outputs) config.add_output(t);
  for (const auto& t : inputs) config.add_const_input(t);
  auto iter = config.build();
  iter.for_each(
      [&call](char** data, const int64_t* strides, int64_t n, int64_t rows) { call(data, strides, n, rows); },
      grain);
}

// The same for a per-ISA loop with the op's parameters.
inline void run_loop(cpu::Loop fn, std::initializer_list<at::Tensor> outputs, std::initializer_list<at::Tensor> inputs,
                     const double* params, int nparams, int64_t grain = at::internal::GRAIN_SIZE) {
  TORCH_INTERNAL_ASSERT(fn != nullptr);
  std::array<double, kMaxParams> p{};
  if (nparams > 0) std::copy(params, params + nparams, p.begin());
  run_loop_with([fn, &p](char** data, const int64_t* strides, int64_t n, int64_t rows) {
                  fn(data, strides, n, rows, p.data());
                },
                outputs, inputs, grain);
}

// The same for a lookup-table loop (cpu::LutLoop) reading `tables`.
inline void run_loop(cpu::LutLoop fn, std::initializer_list<at::Tensor> outputs,
                     std::initializer_list<at::Tensor> inputs, const float* const* tables, int64_t grain) {
  TORCH_INTERNAL_ASSERT(fn != nullptr);
  run_loop_with([fn, tables](char** data, const int64_t* strides, int64_t n, int64_t rows) {
                  fn(data, strides, n, rows, tables);
                },
                outputs, inputs, grain);
}

// The table of f(x) (kind 0), f'(x) (kind 1, from the saved input) or both
// side by side (kind 2: f, f' of value i at 2i, 2i + 1) of a
// pointwise op over the 65536 values of a float16 / bfloat16 input, for the
// loops of instruction set isa (see ops.cpp); null where the op has none,
// none is cached and numel is too small to build one.
using Table = std::shared_ptr<const std::vector<float>>;
Table lookup_table(const cpu::KernelTable& isa, OpId id, int kind, at::ScalarType dtype, const double* params,
                   int64_t numel);

// The loop that reads a table for a pointwise op (gated false) or a gated
// unit, of `kind` (cpu::LutLoop), over dtype: with gathers or scalar loads
// as set by _set_lookup_reads.
cpu::LutLoop lut_loop(const cpu::KernelTable& isa, bool gated, int kind, at::ScalarType dtype);

}  // namespace ta
