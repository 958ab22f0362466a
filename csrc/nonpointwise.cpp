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

namespace {
// A RowOperand's geometry: sizes and element strides with the row dimension
// counted once, its byte stride along the rows, and where element 0 is.
struct RowGeometry {
  c10::SmallVector<int64_t, 6> sizes, strides;
  int64_t offset = 0;     // elements from t's storage offset to element 0
  int64_t dim_bytes = 0;  // byte stride along the row (0 for per-row operands)
};

RowGeometry geometry(const RowOperand& o, int64_t dim, int64_t n) {
  const at::Tensor& t = o.t;
  RowGeometry g;
  g.sizes.assign(t.sizes().begin(), t.sizes().end());
  g.strides.assign(t.strides().begin(), t.strides().end());
  if (o.pick0 >= 0) {
    TORCH_INTERNAL_ASSERT(!g.sizes.empty() && o.pick0 < g.sizes[0]);
    g.offset = o.pick0 * g.strides[0];
    g.sizes.erase(g.sizes.begin());
    g.strides.erase(g.strides.begin());
  }
  if (o.insert_dim) {
    TORCH_INTERNAL_ASSERT(!o.along && dim <= static_cast<int64_t>(g.sizes.size()));
    g.sizes.insert(g.sizes.begin() + dim, 1);
    g.strides.insert(g.strides.begin() + dim, 0);
  }
  // A 0-d operand reads as one element of stride 1, like its view as (1,).
  if (g.sizes.empty()) {
    g.sizes.push_back(1);
    g.strides.push_back(1);
  }
  if (o.along) {
    TORCH_INTERNAL_ASSERT(g.sizes[dim] == n);
    g.dim_bytes = g.strides[dim] * static_cast<int64_t>(t.element_size());
    g.sizes[dim] = 1;
  }
  return g;
}
}  // namespace

void run_rows(cpu::RowLoop fn, int64_t dim, int64_t n, const std::vector<RowOperand>& outs,
              const std::vector<RowOperand>& ins, const void* weight, const double* params) {
  TORCH_INTERNAL_ASSERT(fn != nullptr);
  const size_t nops = outs.size() + ins.size();
  auto operand = [&](size_t k) -> const RowOperand& { return k < outs.size() ? outs[k] : ins[k - outs.size()]; };
  c10::SmallVector<RowGeometry, 8> geo;
  for (size_t k = 0; k < nops; ++k) geo.push_back(geometry(operand(k), dim, n));
  // Every operand has the shape of the first: the rows, with the row
  // dimension counted once.
  const auto& shape = geo[0].sizes;
  for (size_t k = 0; k < nops; ++k)
    TORCH_INTERNAL_ASSERT(geo[k].sizes == shape, "run_rows: operand shape ", c10::IntArrayRef(geo[k].sizes),
                          " vs ", c10::IntArrayRef(shape));
  for (const int64_t s : shape)
    if (s == 0) return;
  if (n == 0) return;

  c10::SmallVector<int64_t, 8> dim_strides;
  for (const auto& g : geo) dim_strides.push_back(g.dim_bytes);
  const int64_t grain = std::max<int64_t>(1, at::internal::GRAIN_SIZE / n);
  const int64_t* ds = dim_strides.data();

  // Rows laid out along at most one dimension (one row, or (N, C)-style
  // batches) need no TensorIterator (nor any view of the operands): its
  // set-up costs more than a short row's work. The kernel sees the same
  // pointers and strides either way, and rows are independent, so the
  // results are the same bits.
  int64_t rdim = -1;
  bool one_dim = true;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    one_dim &= rdim < 0;
    rdim = static_cast<int64_t>(d);
  }
  if (one_dim) {
    const int64_t nrows = rdim < 0 ? 1 : shape[rdim];
    c10::SmallVector<char*, 8> base;
    c10::SmallVector<int64_t, 8> row_strides;
    for (size_t k = 0; k < nops; ++k) {
      const at::Tensor& t = operand(k).t;
      const int64_t es = static_cast<int64_t>(t.element_size());
      char* p = k < outs.size() ? static_cast<char*>(t.mutable_data_ptr())
                                : static_cast<char*>(const_cast<void*>(t.const_data_ptr()));
      base.push_back(p + geo[k].offset * es);
      row_strides.push_back(rdim < 0 ? 0 : geo[k].strides[rdim] * es);
    }
    at::parallel_for(0, nrows, grain, [&](int64_t b, int64_t e) {
      c10::SmallVector<char*, 8> data(base.size());
      for (size_t k = 0; k < base.size(); ++k) data[k] = base[k] + b * row_strides[k];
      const cpu::RowCall call{data.data(), row_strides.data(), e - b, n, ds, weight, params};
      fn(call);
    });
    return;
  }

  // TensorIterator walks the rows: it gets each operand as a view with the
  // row dimension reduced to one element. The config borrows its tensors, so
  // the views outlive it.
  std::vector<at::Tensor> views;
  views.reserve(nops);
  for (size_t k = 0; k < nops; ++k) {
    const at::Tensor& t = operand(k).t;
    views.push_back(t.as_strided(geo[k].sizes, geo[k].strides, t.storage_offset() + geo[k].offset));
  }
  at::TensorIteratorConfig config;
  config.set_check_mem_overlap(false).check_all_same_dtype(false).resize_outputs(false);
  for (size_t k = 0; k < nops; ++k) {
    if (k < outs.size()) config.add_output(views[k]); else config.add_const_input(views[k]);
  }
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
