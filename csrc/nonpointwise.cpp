#include "nonpointwise.h"

#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>

#include <cctype>
#include <cstring>

namespace ta {

namespace cpu {
// The row kernels follow the instruction set the pointwise kernels use, so
// one switch (set_cpu_capability) moves both.
const RowKernelTable& row_kernels() {
  const char* isa = kernels().isa;
#ifdef TA_HAVE_AVX512
  if (std::strcmp(isa, "AVX512") == 0) return *row_table_AVX512();
#endif
#ifdef TA_HAVE_AVX2
  if (std::strcmp(isa, "AVX2") == 0) return *row_table_AVX2();
#endif
  return *row_table_DEFAULT();
}
}  // namespace cpu

bool is_kernel_dtype(at::ScalarType st) {
  return st == at::kFloat || st == at::kDouble || st == at::kHalf || st == at::kBFloat16;
}

void run_rows(cpu::RowLoop fn, int64_t dim, int64_t n, const std::vector<RowOperand>& outs,
              const std::vector<RowOperand>& ins, const void* weight, const double* params) {
  TORCH_INTERNAL_ASSERT(fn != nullptr);
  const at::Tensor& ref = outs.empty() ? ins[0].t : outs[0].t;
  std::vector<int64_t> shape(ref.sizes().begin(), ref.sizes().end());
  if (shape.empty()) shape.push_back(1);
  const bool along_ref = outs.empty() ? ins[0].along : outs[0].along;
  if (along_ref) shape[dim] = 1;
  for (const int64_t s : shape)
    if (s == 0) return;
  if (n == 0) return;

  std::vector<int64_t> dim_strides;
  std::vector<at::Tensor> ops;
  auto add = [&](const RowOperand& o) {
    at::Tensor t = o.t.dim() == 0 ? o.t.view({1}) : o.t;
    if (o.along) {
      TORCH_INTERNAL_ASSERT(t.size(dim) == n);
      dim_strides.push_back(t.stride(dim) * static_cast<int64_t>(t.element_size()));
      std::vector<int64_t> sizes(t.sizes().begin(), t.sizes().end());
      sizes[dim] = 1;
      t = t.as_strided(sizes, t.strides());
    } else {
      dim_strides.push_back(0);
    }
    TORCH_INTERNAL_ASSERT(t.sizes().vec() == shape, "run_rows: operand shape ", t.sizes(), " vs ", shape);
    ops.push_back(t);
  };
  for (const auto& o : outs) add(o);
  for (const auto& o : ins) add(o);

  const int64_t grain = std::max<int64_t>(1, at::internal::GRAIN_SIZE / n);
  const int64_t* ds = dim_strides.data();

  // Rows laid out along at most one dimension (one row, or (N, C)-style
  // batches) need no TensorIterator: its set-up costs more than a short
  // row's work. The kernel sees the same pointers and strides either way,
  // and rows are independent, so the results are the same bits.
  int64_t rdim = -1;
  bool one_dim = true;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    one_dim &= rdim < 0;
    rdim = static_cast<int64_t>(d);
  }
  if (one_dim) {
    const int64_t nrows = rdim < 0 ? 1 : shape[rdim];
    std::vector<char*> base;
    std::vector<int64_t> row_strides;
    for (size_t k = 0; k < ops.size(); ++k) {
      const at::Tensor& t = ops[k];
      base.push_back(k < outs.size() ? static_cast<char*>(t.mutable_data_ptr())
                                     : static_cast<char*>(const_cast<void*>(t.const_data_ptr())));
      row_strides.push_back(rdim < 0 ? 0 : t.stride(rdim) * static_cast<int64_t>(t.element_size()));
    }
    at::parallel_for(0, nrows, grain, [&](int64_t b, int64_t e) {
      std::vector<char*> data(base.size());
      for (size_t k = 0; k < base.size(); ++k) data[k] = base[k] + b * row_strides[k];
      const cpu::RowCall call{data.data(), row_strides.data(), e - b, n, ds, weight, params};
      fn(call);
    });
    return;
  }

  at::TensorIteratorConfig config;
  config.set_check_mem_overlap(false).check_all_same_dtype(false).resize_outputs(false);
  for (size_t i = 0; i < outs.size(); ++i) config.add_output(ops[i]);
  for (size_t i = outs.size(); i < ops.size(); ++i) config.add_const_input(ops[i]);
  auto iter = config.build();
  iter.for_each(
      [&](char** data, const int64_t* strides, int64_t nrows) {
        const cpu::RowCall call{data, strides, nrows, n, ds, weight, params};
        fn(call);
      },
      grain);
}

double deterministic_sum(const at::Tensor& t) {
  TORCH_INTERNAL_ASSERT(t.is_contiguous() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble));
  const int64_t n = t.numel();
  constexpr int64_t kChunk = 4096;
  const int64_t nchunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(nchunks), 0.0);
  auto sum_chunks = [&](auto* p) {
    at::parallel_for(0, nchunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        double s = 0;
        for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) s += static_cast<double>(p[i]);
        partial[c] = s;
      }
    });
  };
  if (t.scalar_type() == at::kFloat) sum_chunks(t.const_data_ptr<float>()); else sum_chunks(t.const_data_ptr<double>());
  double s = 0;
  for (const double v : partial) s += v;
  return s;
}


void refuse_forward_ad(const std::vector<at::Tensor>& ts, const std::string& op) {
  for (const auto& t : ts) {
    TORCH_CHECK(!t.defined() || !t._fw_grad(0).defined(), op,
                ": forward-mode automatic differentiation is not supported");
  }
}

void refuse_grad(const at::Tensor& t, const char* arg, const std::string& op) {
  TORCH_CHECK(!t.defined() || !t.requires_grad(), "The function '", op,
              "' is not differentiable with respect to argument '", arg,
              "'. This input cannot have requires_grad True.");
}

c10::OperatorHandle find_op(const char* name, const char* overload) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
}

std::vector<c10::SymInt> row_shape_keepdim(const at::Tensor& a, int64_t dim) {
  std::vector<c10::SymInt> s(a.sym_sizes().begin(), a.sym_sizes().end());
  s[dim] = 1;
  return s;
}

}  // namespace ta
