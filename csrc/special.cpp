// Activations with more than one tensor argument:
//   - parametric ops (registry: TA_PARAMETRIC_OPS): prelu and swish_learnable,
//     f(x, w) with w of 1 or C = x.size(1) elements;
//   - rrelu, whose training mode draws a random slope per element.
// Schemas, CPU and Meta kernels and autograd are all here.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/DistributionsHelper.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#include "common.h"
#include "layout.h"
#include "pointwise.h"

namespace ta {
namespace {

using torch::autograd::Node;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;
using Stack = torch::jit::Stack;

// ===================================================== parametric ops ====
struct ParamInfo {
  ParamOpId id;
  std::string name, wname;
};

const std::vector<ParamInfo>& param_infos() {
  static const std::vector<ParamInfo> v = {
#define TA_X(name, F, wname) {ParamOpId::name, #name, wname},
      TA_PARAMETRIC_OPS(TA_X)
#undef TA_X
  };
  return v;
}

std::string pname(ParamOpId id, const char* suffix = "") {
  return "torch_activations::" + param_infos()[static_cast<int>(id)].name + suffix;
}

// Checks in PyTorch's words and order (see at::prelu); `wname` is the
// parameter's name in the schema.
void check_weight(const at::Tensor& x, const at::Tensor& w, const std::string& op, const std::string& wname) {
  check_float(x, "self", op);
  TORCH_CHECK(w.layout() == at::kStrided, op, ": expected a strided tensor for '", wname, "'");
  TORCH_CHECK(x.scalar_type() == w.scalar_type(), op, ": Type promoting not supported. Got ", x.scalar_type(),
              " and ", w.scalar_type());
  TORCH_CHECK(x.device() == w.device(), op, ": input is on ", x.device(), " but '", wname, "' is on ", w.device());
  const auto n = w.sym_numel();
  if (n != 1) {
    TORCH_CHECK(x.dim() > 0, op, ": Not allow zero-dim input tensor.");
    const c10::SymInt channels = x.dim() >= 2 ? x.sym_size(1) : c10::SymInt(1);
    TORCH_CHECK(n == channels, op, ": Mismatch of parameter numbers and input channel size. Found parameter numbers = ",
                n, " and channel size = ", channels, ".");
  }
  TORCH_CHECK(w.dim() <= 1, op, ": Expected `", wname, "` to be a scalar or 1D tensor, but got: ndim = ", w.dim());
}

// w viewed with x's shape: shared, or along dim 1.
at::Tensor broadcast_param(const at::Tensor& w, const at::Tensor& x) {
  if (w.numel() == 1) return w.reshape({}).expand(x.sizes());
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = w.numel();
  return w.reshape(shape).expand(x.sizes());
}

// Compensated (Neumaier) summation in double: `sum` is the plain running
// sum, `comp` collects the rounding error of each addition. An infinite or
// NaN term leaves `sum` infinite or NaN (as a plain sum would be) and the
// compensation meaningless, so it is dropped then.
struct CompensatedSum {
  double sum = 0, comp = 0;
  void add(double v) {
    const double t = sum + v;
    const double bv = t - sum;
    comp += (sum - (t - bv)) + (v - bv);
    sum = t;
  }
  void merge(double s, double c) {
    add(s);
    if (std::isfinite(s)) add(c);
  }
  double value() const { return std::isfinite(sum) ? sum + comp : sum; }
};

// Sums the per-element parameter gradient `elem` (dense, x's shape) into
// w's shape: all of it for a shared parameter, else per index of dim 1.
// The data is read in memory order as a matrix whose columns are summed row
// by row in compensated double (cpu::ColSum, vectorized across columns).
// Every split (blocks of rows, column tiles) is fixed by the shape and
// strides alone and the partial sums are merged in a fixed order, so the
// result is bitwise the same for any number of threads and any instruction
// set, which at::sum's is not.
//   - shared parameter: the elements as rows of kLanes columns (lane = index
//     mod kLanes), in blocks of kBlock elements;
//   - per channel, memory viewed as (outer, C, inner) with inner the stride
//     of dim 1 (a dense tensor's dims inside dim 1 span exactly that many
//     elements, those outside it multiples of C * inner):
//       inner < kLanes: the (outer, C * inner) matrix itself, in blocks of
//         rows; a channel is then its inner columns in order;
//       otherwise every (o, c) run of inner elements as rows of kLanes
//         columns plus a shorter last row, a block of runs per task.
at::Tensor reduce_param(const at::Tensor& elem, const at::Tensor& w) {
  TORCH_INTERNAL_ASSERT(elem.is_non_overlapping_and_dense());
  TORCH_INTERNAL_ASSERT(elem.scalar_type() == at::kFloat || elem.scalar_type() == at::kDouble);
  constexpr int64_t kBlock = 1 << 15, kLanes = 32;
  const cpu::ColSum colsum = cpu::kernels().colsum[elem.scalar_type() == at::kDouble ? 1 : 0];
  const int64_t esize = static_cast<int64_t>(elem.element_size());
  const char* data = static_cast<const char*>(elem.const_data_ptr());
  const bool shared = w.numel() == 1;
  const int64_t numel = elem.numel();
  const int64_t channels = shared ? 1 : elem.size(1);
  const int64_t inner = shared ? numel : elem.stride(1);
  const int64_t outer = shared || channels * inner == 0 ? 1 : numel / (channels * inner);
  if (numel == 0) return at::zeros(w.sizes(), elem.options().dtype(at::kDouble));

  // Sums `len` contiguous elements at p as rows of kLanes columns into s, c.
  auto add_run = [&](const char* p, int64_t len, double* s, double* c) {
    const int64_t rows = len / kLanes, rest = len % kLanes;
    if (rows > 0) colsum(p, rows, kLanes, kLanes, s, c);
    if (rest > 0) colsum(p + rows * kLanes * esize, 1, rest, rest, s, c);
  };

  at::Tensor out = at::empty({channels}, elem.options().dtype(at::kDouble));
  double* result = out.data_ptr<double>();
  if (inner < kLanes && !shared) {
    const int64_t cols = channels * inner;
    const int64_t rows_per = std::max<int64_t>(1, kBlock / std::max<int64_t>(cols, 1));
    const int64_t blocks = (outer + rows_per - 1) / rows_per;
    std::vector<double> ps(static_cast<size_t>(blocks * cols)), pc(ps.size());
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int64_t r0 = b * rows_per, rows = std::min(outer, r0 + rows_per) - r0;
        colsum(data + r0 * cols * esize, rows, cols, cols, ps.data() + b * cols, pc.data() + b * cols);
      }
    });
    for (int64_t ch = 0; ch < channels; ++ch) {
      CompensatedSum acc;
      for (int64_t i = 0; i < inner; ++i)
        for (int64_t b = 0; b < blocks; ++b) acc.merge(ps[b * cols + ch * inner + i], pc[b * cols + ch * inner + i]);
      result[ch] = acc.value();
    }
  } else {
    // Tasks: (channel, block of runs); a run is one (o, c) stretch of inner
    // elements (the whole tensor when the parameter is shared, then split
    // into blocks of kBlock).
    const int64_t run_len = shared ? std::min<int64_t>(numel, kBlock) : inner;
    const int64_t runs = shared ? (run_len == 0 ? 0 : (numel + kBlock - 1) / kBlock) : outer;
    const int64_t runs_per = std::max<int64_t>(1, kBlock / std::max<int64_t>(run_len, 1));
    const int64_t blocks = (runs + runs_per - 1) / runs_per;
    std::vector<double> ps(static_cast<size_t>(channels * blocks * kLanes)), pc(ps.size());
    at::parallel_for(0, channels * blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t ch = task / blocks, b = task % blocks;
        double* s = ps.data() + task * kLanes;
        double* c = pc.data() + task * kLanes;
        for (int64_t r = b * runs_per, stop = std::min(runs, r + runs_per); r < stop; ++r) {
          if (shared) {
            add_run(data + r * kBlock * esize, std::min(kBlock, numel - r * kBlock), s, c);
          } else {
            add_run(data + (r * channels + ch) * inner * esize, inner, s, c);
          }
        }
      }
    });
    for (int64_t ch = 0; ch < channels; ++ch) {
      CompensatedSum acc;
      for (int64_t b = 0; b < blocks; ++b)
        for (int64_t l = 0; l < kLanes; ++l) {
          const int64_t k = (ch * blocks + b) * kLanes + l;
          acc.merge(ps[k], pc[k]);
        }
      result[ch] = acc.value();
    }
  }
  return out.reshape(w.sizes());
}

// An input of a parametric kernel: element-wise (x's shape), the parameter
// in w's own shape (1 or C elements, applied along dim 1), or a 0-dim
// tensor that stands for every element.
struct ParamIn {
  enum Kind { Elem, Param, Scalar } kind;
  at::Tensor t;
};

// Runs the parametric op's loop `kind` over x's elements. A per-channel
// parameter with short runs (the (N, C) of a linear layer, channels-last
// images, small feature maps) would leave TensorIterator a 2-d loop with
// rows of a few elements, each paying the loop's set-up. Instead, with every
// element-wise operand dense and laid out like x, the parameter is written
// out once in memory order (channel = memory index / stride(1) mod C) for a
// whole number of periods, about kTile elements, which the loop walks again
// for each stretch of that length (the tiled loop).
// kTile: measured (prelu, (N, 64) float32): 512-1024 elements, within the
// first-level cache beside the streams, are as fast as a shared parameter;
// 4096 loses 10-30%.
constexpr int64_t kTile = 512;

// The written-out parameter's period in elements (1 when it is shared), or
// -1 when the tiled loop does not apply.
int64_t tile_period(const std::vector<at::Tensor>& outs, const std::vector<ParamIn>& ins, const at::Tensor& x) {
  constexpr int64_t kMaxRun = 64, kMaxPeriod = 1 << 16;
  bool ok = x.is_non_overlapping_and_dense();
  int64_t period = 1;
  for (const auto& t : outs) ok &= t.sizes().equals(x.sizes()) && t.strides().equals(x.strides());
  for (const auto& in : ins) {
    if (in.kind == ParamIn::Elem) {
      ok &= in.t.sizes().equals(x.sizes()) && in.t.strides().equals(x.strides());
    } else if (in.kind == ParamIn::Param && in.t.numel() > 1) {
      ok &= x.stride(1) < kMaxRun && x.size(1) * x.stride(1) <= kMaxPeriod;
      period = x.size(1) * x.stride(1);
    }
  }
  return ok ? period : -1;
}

// The tiled loop where it applies (the backward loops' last output may then
// be in the compute type, see cpu::TiledLoop), else TensorIterator's, with
// every operand of one dtype.
void run_param(ParamOpId id, int kind, const std::vector<at::Tensor>& outs, const std::vector<ParamIn>& ins,
               const at::Tensor& x) {
  TORCH_INTERNAL_ASSERT(outs.size() + ins.size() <= 8);
  if (x.numel() == 0) return;
  const int64_t period = tile_period(outs, ins, x);
  const int dt = dtype_index(x.scalar_type());
  if (period < 0) {
    std::vector<at::Tensor> v;
    for (const auto& in : ins) {
      v.push_back(in.kind == ParamIn::Elem     ? in.t
                  : in.kind == ParamIn::Scalar ? in.t.expand(x.sizes())
                                               : broadcast_param(in.t, x));
    }
    const cpu::Loop fn = cpu::kernels().parametric[static_cast<int>(id)][kind][dt];
    switch (ins.size()) {
      case 2: return run_loop(fn, {outs[0]}, {v[0], v[1]}, nullptr, 0);
      case 3: return run_loop(fn, {outs[0], outs[1]}, {v[0], v[1], v[2]}, nullptr, 0);
      case 5: return run_loop(fn, {outs[0], outs[1], outs[2]}, {v[0], v[1], v[2], v[3], v[4]}, nullptr, 0);
      default: TORCH_INTERNAL_ASSERT(false);
    }
  }
  const cpu::TiledLoop fn = cpu::kernels().parametric_tiled[static_cast<int>(id)][kind][dt];
  const int64_t tile = (kTile + period - 1) / period * period;
  const int64_t n = x.numel();
  // The written-out parameters (w, and ggw in the double backward), in
  // buffers kept per thread: a tensor allocation per call would cost as
  // much as the loop on small inputs.
  static thread_local std::vector<uint64_t> bufs[2];
  int ntiles = 0;
  char* data[8];
  int64_t esize[8];
  int8_t mode[8];
  int k = 0;
  for (const auto& t : outs) {
    data[k] = static_cast<char*>(t.data_ptr());
    esize[k] = t.element_size();
    mode[k++] = 0;
  }
  for (const auto& in : ins) {
    esize[k] = in.t.element_size();
    if (in.kind == ParamIn::Elem) {
      data[k] = static_cast<char*>(in.t.data_ptr());
      mode[k] = 0;
    } else if (in.kind == ParamIn::Param && in.t.numel() > 1) {
      const int64_t c = in.t.numel(), run = x.stride(1), es = esize[k], wstride = in.t.stride(0) * es;
      TORCH_INTERNAL_ASSERT(ntiles < 2);
      std::vector<uint64_t>& buf = bufs[ntiles++];
      buf.resize(static_cast<size_t>((tile * es + 7) / 8));
      char* dst = reinterpret_cast<char*>(buf.data());
      const char* src = static_cast<const char*>(in.t.const_data_ptr());
      // One period, then copies of it.
      auto fill = [&](auto elem) {
        using T = decltype(elem);
        T* d = reinterpret_cast<T*>(dst);
        for (int64_t ch = 0; ch < c; ++ch) {
          T v;
          std::memcpy(&v, src + ch * wstride, sizeof(T));
          for (int64_t r = 0; r < run; ++r) *d++ = v;
        }
      };
      if (es == 2) fill(uint16_t{}); else if (es == 4) fill(uint32_t{}); else fill(uint64_t{});
      for (int64_t m = period; m < tile; m += period) std::memcpy(dst + m * es, dst, period * es);
      data[k] = dst;
      mode[k] = 1;
    } else {
      data[k] = static_cast<char*>(in.t.data_ptr());
      mode[k] = 2;
    }
    ++k;
  }
  const int nops = k;
  // Threads split the work at multiples of the tile, so every stretch starts
  // at the parameter's first element.
  const int64_t tiles = (n + tile - 1) / tile;
  at::parallel_for(0, tiles, std::max<int64_t>(1, at::internal::GRAIN_SIZE / tile), [&](int64_t t0, int64_t t1) {
    char* d[8];
    for (int j = 0; j < nops; ++j) d[j] = data[j] + (mode[j] == 0 ? t0 * tile * esize[j] : 0);
    fn(d, mode, std::min(t1 * tile, n) - t0 * tile, tile);
  });
}

// float16/bfloat16 operands of the backward kernels in float32.
at::Tensor widen(const at::Tensor& t) { return at::isReducedFloatingType(t.scalar_type()) ? t.to(at::kFloat) : t; }

// Runs a backward kernel, whose last output is the per-element parameter
// gradient, and returns that summed into `w`'s shape. That gradient is kept
// in the compute type: in float16/bfloat16, rounding each of the many terms
// of the sum to the low precision before adding them makes it drift far from
// the exact value under cancellation (the built-in's bfloat16 weight
// gradient can lose every digit that way), while the element-wise outputs
// round once from float, as the low-precision kernels do. The tiled loop
// stores it in float directly; TensorIterator's loop, one dtype throughout,
// runs on widened copies instead.
at::Tensor run_with_param_sum(ParamOpId id, int kind, const std::vector<at::Tensor>& outs,
                              const std::vector<ParamIn>& ins, const at::Tensor& w) {
  const at::Tensor& x = ins[ins.size() - 2].t;
  const auto compute = at::toOpMathType(x.scalar_type());
  const at::Tensor elem = x.is_non_overlapping_and_dense()
                               ? at::empty_strided(x.sizes(), x.strides(), x.options().dtype(compute))
                               : at::empty(x.sizes(), x.options().dtype(compute));
  if (compute == x.scalar_type() || tile_period(outs, ins, x) >= 0) {
    std::vector<at::Tensor> o(outs);
    o.push_back(elem);
    run_param(id, kind, o, ins, x);
  } else {
    std::vector<ParamIn> wide;
    for (const auto& in : ins) wide.push_back({in.kind, widen(in.t)});
    const at::Tensor& xw = wide[wide.size() - 2].t;
    std::vector<at::Tensor> o;
    for (size_t k = 0; k < outs.size(); ++k) o.push_back(empty_like_pointwise(xw));
    o.push_back(elem);
    run_param(id, kind, o, wide, xw);
    for (size_t k = 0; k < outs.size(); ++k) outs[k].copy_(o[k]);
  }
  return reduce_param(elem, w).to(w.scalar_type());
}

struct ParamKernel final : c10::OperatorKernel {
  ParamOpId id;
  int variant;  // 0 fwd, 1 bwd, 2 double bwd
  bool meta;
  ParamKernel(ParamOpId i, int v, bool m) : id(i), variant(v), meta(m) {}
  void operator()(const c10::OperatorHandle&, c10::DispatchKeySet, Stack* stack) {
    static const char* suffix[] = {"", "_backward", "_double_backward"};
    const std::string op = pname(id, suffix[variant]);
    const std::string& wname = param_infos()[static_cast<int>(id)].wname;
    if (variant == 0) {
      const at::Tensor x = torch::jit::peek(*stack, 0, 2).toTensor();
      const at::Tensor w = torch::jit::peek(*stack, 1, 2).toTensor();
      check_weight(x, w, op, wname);
      at::Tensor out = empty_like_pointwise(x);
      if (!meta) run_param(id, 0, {out}, {{ParamIn::Elem, x}, {ParamIn::Param, w}}, x);
      torch::jit::drop(*stack, 2);
      stack->emplace_back(std::move(out));
    } else if (variant == 1) {
      const at::Tensor g = torch::jit::peek(*stack, 0, 3).toTensor();
      const at::Tensor x = torch::jit::peek(*stack, 1, 3).toTensor();
      const at::Tensor w = torch::jit::peek(*stack, 2, 3).toTensor();
      check_weight(x, w, op, wname);
      check_same(g, "grad_output", x, "self", op);
      at::Tensor gx = empty_like_pointwise(x), gw;
      if (meta) {
        gw = at::empty_symint(w.sym_sizes(), w.options());
      } else {
        gw = run_with_param_sum(id, 1, {gx}, {{ParamIn::Elem, g}, {ParamIn::Elem, x}, {ParamIn::Param, w}}, w);
      }
      torch::jit::drop(*stack, 3);
      stack->emplace_back(std::move(gx));
      stack->emplace_back(std::move(gw));
    } else {
      auto ggx = torch::jit::peek(*stack, 0, 5).toOptional<at::Tensor>();
      auto ggw = torch::jit::peek(*stack, 1, 5).toOptional<at::Tensor>();
      const at::Tensor g = torch::jit::peek(*stack, 2, 5).toTensor();
      const at::Tensor x = torch::jit::peek(*stack, 3, 5).toTensor();
      const at::Tensor w = torch::jit::peek(*stack, 4, 5).toTensor();
      check_weight(x, w, op, wname);
      check_same(g, "grad_output", x, "self", op);
      if (ggx && ggx->defined()) check_same(*ggx, "grad_grad_input", x, "self", op);
      if (ggw && ggw->defined()) check_same(*ggw, ("grad_grad_" + wname).c_str(), w, wname.c_str(), op);
      at::Tensor dg = empty_like_pointwise(x), dx = empty_like_pointwise(x), dw;
      if (meta) {
        dw = at::empty_symint(w.sym_sizes(), w.options());
      } else {
        const ParamIn zero{ParamIn::Scalar, at::zeros({}, x.options())};
        const ParamIn a = ggx && ggx->defined() ? ParamIn{ParamIn::Elem, *ggx} : zero;
        const ParamIn b = ggw && ggw->defined() ? ParamIn{ParamIn::Param, *ggw} : zero;
        dw = run_with_param_sum(id, 2, {dg, dx}, {a, b, {ParamIn::Elem, g}, {ParamIn::Elem, x}, {ParamIn::Param, w}}, w);
      }
      torch::jit::drop(*stack, 5);
      stack->emplace_back(std::move(dg));
      stack->emplace_back(std::move(dx));
      stack->emplace_back(std::move(dw));
    }
  }
};

const c10::OperatorHandle& param_handle(ParamOpId id, int variant) {
  static std::once_flag once;
  static std::vector<std::array<c10::OperatorHandle, 3>> handles;
  std::call_once(once, [] {
    for (const auto& p : param_infos()) {
      auto find = [&](const char* s) {
        const std::string n = pname(p.id, s);
        return c10::Dispatcher::singleton().findSchemaOrThrow(n.c_str(), "");
      };
      handles.push_back({find(""), find("_backward"), find("_double_backward")});
    }
  });
  return handles[static_cast<int>(id)][variant];
}

Stack call_param(ParamOpId id, int variant, Stack st) {
  param_handle(id, variant).callBoxed(st);
  return st;
}

struct ParamBackward final : Node {
  ParamOpId id;
  SavedVariable x, w;
  explicit ParamBackward(ParamOpId i) : id(i) {}
  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor()};
    Stack r = call_param(id, 1, {grads[0], x.unpack(), w.unpack()});
    return {task_should_compute_output(0) ? r[0].toTensor() : at::Tensor(),
            task_should_compute_output(1) ? r[1].toTensor() : at::Tensor()};
  }
  void release_variables() override {
    x.reset_data();
    w.reset_data();
  }
  std::string name() const override {
    return "torch_activations::" + camel_case(param_infos()[static_cast<int>(id)].name) + "Backward";
  }
};

struct ParamDoubleBackward final : Node {
  ParamOpId id;
  SavedVariable g, x, w;
  explicit ParamDoubleBackward(ParamOpId i) : id(i) {}
  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined() && !grads[1].defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    auto opt = [](const at::Tensor& t) { return t.defined() ? c10::IValue(t) : c10::IValue(); };
    Stack r = call_param(id, 2, {opt(grads[0]), opt(grads[1]), g.unpack(), x.unpack(), w.unpack()});
    variable_list out(3);
    for (int i = 0; i < 3; ++i)
      if (task_should_compute_output(i)) out[i] = r[i].toTensor();
    return out;
  }
  void release_variables() override {
    g.reset_data();
    x.reset_data();
    w.reset_data();
  }
  std::string name() const override {
    return "torch_activations::" + camel_case(param_infos()[static_cast<int>(id)].name) + "BackwardBackward";
  }
};

at::Tensor add_defined(const at::Tensor& a, const at::Tensor& b) {
  if (!a.defined()) return b;
  if (!b.defined()) return a;
  return a + b;
}

// Forward-mode AD from the same operators as the backward. With f_x, f_w the
// partial derivatives:
//   f(x, w)              tangent  x_t f_x + w_t f_w
//                                 = bwd(x_t, x, w)[0] + dbwd(-, w_t, ., x, w)[0]
//   bwd(g, x, w)         tangents bwd(g_t, x, w) + dbwd(x_t, w_t, g, x, w)[1, 2]
// (dbwd contracts the second derivatives with its first two arguments, and
// mixed partials are symmetric). The x part of the forward goes through the
// differentiable backward op, so reverse-over-forward (jacrev of jacfwd) works
// in x.
void param_forward_ad(ParamOpId id, int variant, const std::vector<at::Tensor>& in,
                      const std::vector<at::Tensor>& tangents, const std::vector<at::Tensor>& outs) {
  auto opt = [](const at::Tensor& t) { return t.defined() ? c10::IValue(t) : c10::IValue(); };
  std::vector<at::Tensor> p;
  for (const auto& t : in) p.push_back(t._fw_primal(0));
  if (variant == 0) {
    const at::Tensor &xt = tangents[0], &wt = tangents[1];
    at::Tensor t;
    if (xt.defined()) t = call_param(id, 1, {xt, p[0], p[1]})[0].toTensor();
    if (wt.defined()) t = add_defined(t, call_param(id, 2, {c10::IValue(), wt, p[0], p[0], p[1]})[0].toTensor());
    outs[0]._set_fw_grad(t, 0, false);
    return;
  }
  const at::Tensor &gt = tangents[0], &xt = tangents[1], &wt = tangents[2];
  at::Tensor tx, tw;
  if (gt.defined()) {
    Stack r = call_param(id, 1, {gt, p[1], p[2]});
    tx = r[0].toTensor();
    tw = r[1].toTensor();
  }
  if (xt.defined() || wt.defined()) {
    Stack r = call_param(id, 2, {opt(xt), opt(wt), p[0], p[1], p[2]});
    tx = add_defined(tx, r[1].toTensor());
    tw = add_defined(tw, r[2].toTensor());
  }
  outs[0]._set_fw_grad(tx, 0, false);
  outs[1]._set_fw_grad(tw, 0, false);
}

struct ParamAutograd final : c10::OperatorKernel {
  ParamOpId id;
  int variant;  // 0 fwd, 1 bwd
  ParamAutograd(ParamOpId i, int v) : id(i), variant(v) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, Stack* stack) {
    const int n = variant == 0 ? 2 : 3;
    std::vector<at::Tensor> in, tangents;
    bool need = false, forward_ad = false;
    for (int i = 0; i < n; ++i) {
      in.push_back(torch::jit::peek(*stack, i, n).toTensor());
      tangents.push_back(fw_grad(in.back()));
      need |= torch::autograd::compute_requires_grad(in.back());
      forward_ad |= tangents.back().defined();
    }
    if (!need && !forward_ad) {
      return redispatch_below(op, ks, stack);
    }
    c10::intrusive_ptr<Node> node;
    if (need && variant == 0) {
      auto nd = c10::make_intrusive<ParamBackward>(id);
      nd->set_next_edges(torch::autograd::collect_next_edges(in[0], in[1]));
      nd->x = SavedVariable(in[0], false);
      nd->w = SavedVariable(in[1], false);
      node = nd;
    } else if (need) {
      auto nd = c10::make_intrusive<ParamDoubleBackward>(id);
      nd->set_next_edges(torch::autograd::collect_next_edges(in[0], in[1], in[2]));
      nd->g = SavedVariable(in[0], false);
      nd->x = SavedVariable(in[1], false);
      nd->w = SavedVariable(in[2], false);
      node = nd;
    }
    redispatch_below(op, ks, stack);
    const int nout = variant == 0 ? 1 : 2;
    std::vector<at::Tensor> outs;
    for (int i = 0; i < nout; ++i) outs.push_back(torch::jit::peek(*stack, i, nout).toTensor());
    if (node) torch::autograd::set_history(outs, node);
    if (forward_ad) param_forward_ad(id, variant, in, tangents, outs);
  }
};

// =============================================================== rrelu ====
// Training mode follows PyTorch's CPU kernel draw for draw: the input is
// walked in logical (row-major) order and each element <= 0 takes one
// uniform(lower, upper) sample from the generator, so torch.manual_seed
// reproduces PyTorch's slopes exactly.
template <class T, class Acc>
void rrelu_train(const at::Tensor& x, at::Tensor& out, at::Tensor& noise, double lower, double upper,
                 at::CPUGeneratorImpl* gen) {
  const T* in = x.const_data_ptr<T>();
  T* o = out.data_ptr<T>();
  T* nz = noise.data_ptr<T>();
  const int64_t n = x.numel();
  // PyTorch rounds the bounds to the compute type before drawing in double.
  const Acc lo = static_cast<Acc>(lower), hi = static_cast<Acc>(upper);
  for (int64_t i = 0; i < n; ++i) {
    if (static_cast<Acc>(in[i]) <= Acc(0)) {
      at::uniform_real_distribution<double> uniform(lo, hi);
      const Acc r = static_cast<Acc>(uniform(gen));
      o[i] = static_cast<T>(static_cast<Acc>(in[i]) * r);
      nz[i] = static_cast<T>(r);
    } else {
      nz[i] = static_cast<T>(1);
      o[i] = in[i];
    }
  }
}

void rrelu_check(const at::Tensor& x, double lower, double upper, const std::string& op) {
  check_float(x, "self", op);
  TORCH_CHECK(std::isfinite(lower), op, ": lower bound must be finite, got ", lower);
  TORCH_CHECK(std::isfinite(upper), op, ": upper bound must be finite, got ", upper);
  TORCH_CHECK(lower <= upper, op, ": Lower bound should be less than or equal to the upper bound");
}

// Computes into `out` (which may be x itself) and returns the noise.
at::Tensor rrelu_compute(const at::Tensor& x, const at::Tensor& out, double lower, double upper, bool training,
                         const std::optional<at::Generator>& generator) {
  if (!training) {
    const double slope = (lower + upper) / 2;
    run_loop(cpu::kernels().pointwise[static_cast<int>(OpId::leaky_relu)][static_cast<int>(Kind::Fwd)]
                                     [dtype_index(x.scalar_type())],
             {out}, {x}, &slope, 1);
    return at::empty({0}, x.options());
  }
  const at::Tensor xc = x.contiguous();
  at::Tensor oc = at::empty_like(xc, at::MemoryFormat::Contiguous);
  at::Tensor nc = at::empty_like(xc, at::MemoryFormat::Contiguous);
  auto gen = at::get_generator_or_default<at::CPUGeneratorImpl>(generator, at::detail::getDefaultCPUGenerator());
  {
    std::lock_guard<std::mutex> lock(gen->mutex_);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "rrelu", [&] {
      rrelu_train<scalar_t, at::opmath_type<scalar_t>>(xc, oc, nc, lower, upper, gen);
    });
  }
  out.copy_(oc);
  return nc;
}

at::Tensor leaky_backward(const at::Tensor& g, const at::Tensor& s, double slope, bool is_result) {
  at::Tensor out = empty_like_pointwise(s);
  run_loop(cpu::kernels().pointwise[static_cast<int>(OpId::leaky_relu)]
                                   [static_cast<int>(is_result ? Kind::BwdResult : Kind::Bwd)]
                                   [dtype_index(s.scalar_type())],
           {out}, {g, s}, &slope, 1);
  return out;
}

// rrelu(self, lower, upper, training, generator) -> Tensor
// rrelu_(self!, ...) -> ()
// rrelu_with_noise(self, ...) -> (Tensor output, Tensor noise)   what autograd calls
// rrelu_with_noise_(self!, ...) -> Tensor noise
struct RreluKernel final : c10::OperatorKernel {
  bool inplace, with_noise, meta;
  RreluKernel(bool i, bool n, bool m) : inplace(i), with_noise(n), meta(m) {}
  void operator()(const c10::OperatorHandle& h, c10::DispatchKeySet, Stack* stack) {
    const std::string op = h.schema().name();
    auto args = torch::jit::last(*stack, 5);
    const at::Tensor x = args[0].toTensor();
    const double lower = args[1].toDouble(), upper = args[2].toDouble();
    const bool training = args[3].toBool();
    const auto gen = args[4].toOptional<at::Generator>();
    rrelu_check(x, lower, upper, op);
    // Before any slope is drawn: a refused call leaves the generator as it was.
    if (inplace) at::assert_no_internal_overlap(x);
    // Contiguous output and noise, as PyTorch's rrelu allocates them.
    at::Tensor out = inplace ? x : at::empty_symint(x.sym_sizes(), x.options());
    at::Tensor noise;
    if (meta) {
      noise = training ? at::empty_symint(x.sym_sizes(), x.options()) : at::empty({0}, x.options());
    } else {
      noise = rrelu_compute(x, out, lower, upper, training, gen);
    }
    torch::jit::drop(*stack, 5);
    if (!inplace) stack->emplace_back(std::move(out));
    if (with_noise) stack->emplace_back(std::move(noise));
  }
};

// rrelu_backward(Tensor grad_output, Tensor self, Tensor noise, float lower, float upper, bool training,
//                bool is_result) -> Tensor
struct RreluBackwardKernel final : c10::OperatorKernel {
  bool meta;
  explicit RreluBackwardKernel(bool m) : meta(m) {}
  void operator()(const c10::OperatorHandle&, c10::DispatchKeySet, Stack* stack) {
    const std::string op = "torch_activations::rrelu_backward";
    auto args = torch::jit::last(*stack, 7);
    const at::Tensor g = args[0].toTensor(), s = args[1].toTensor(), noise = args[2].toTensor();
    const double lower = args[3].toDouble(), upper = args[4].toDouble();
    const bool training = args[5].toBool(), is_result = args[6].toBool();
    rrelu_check(s, lower, upper, op);
    check_same(g, "grad_output", s, "self", op);
    // PyTorch's rule: a zero-width range is a fixed slope, even in training.
    const bool use_noise = training && upper - lower > 1e-6;
    if (use_noise) check_same(noise, "noise", s, "self", op);
    at::Tensor out;
    if (meta) {
      out = empty_like_pointwise(s);
    } else if (use_noise) {
      out = empty_like_pointwise(s);
      at::mul_out(out, g, noise);
    } else {
      const double slope = (lower + upper) / 2;
      TORCH_CHECK(!is_result || slope >= 0, op,
                  ": In-place leakyReLu backward calculation is triggered with a negative slope which is not "
                  "supported.");
      out = leaky_backward(g, s, slope, is_result);
    }
    torch::jit::drop(*stack, 7);
    stack->emplace_back(std::move(out));
  }
};

const c10::OperatorHandle& rrelu_backward_handle() {
  static const c10::OperatorHandle h =
      c10::Dispatcher::singleton().findSchemaOrThrow("torch_activations::rrelu_backward", "");
  return h;
}

struct RreluBackwardNode final : Node {
  SavedVariable self, noise;
  double lower = 0, upper = 0;
  bool training = false, is_result = false;
  std::string node_name = "torch_activations::RreluBackward";
  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined() || !task_should_compute_output(0)) return {at::Tensor()};
    Stack st{grads[0], self.unpack(getptr()), noise.unpack(), lower, upper, training, is_result};
    rrelu_backward_handle().callBoxed(st);
    return {st[0].toTensor()};
  }
  void release_variables() override {
    self.reset_data();
    noise.reset_data();
  }
  std::string name() const override { return node_name; }
};

// The backward is linear in grad_output and does not depend on self
// (a.e.), so its own backward is rrelu_backward again.
struct RreluDoubleBackwardNode final : Node {
  SavedVariable self, noise;
  double lower = 0, upper = 0;
  bool training = false, is_result = false;
  variable_list apply(variable_list&& grads) override {
    variable_list out(3);
    if (!grads[0].defined() || !task_should_compute_output(0)) return out;
    Stack st{grads[0], self.unpack(), noise.unpack(), lower, upper, training, is_result};
    rrelu_backward_handle().callBoxed(st);
    out[0] = st[0].toTensor();
    return out;
  }
  void release_variables() override {
    self.reset_data();
    noise.reset_data();
  }
  std::string name() const override { return "torch_activations::RreluBackwardBackward"; }
};

const c10::OperatorHandle& rrelu_with_noise_handle(bool inplace) {
  static const c10::OperatorHandle h =
      c10::Dispatcher::singleton().findSchemaOrThrow("torch_activations::rrelu_with_noise", "");
  static const c10::OperatorHandle hi =
      c10::Dispatcher::singleton().findSchemaOrThrow("torch_activations::rrelu_with_noise_", "");
  return inplace ? hi : h;
}

// rrelu / rrelu_: without a graph to build, the op itself; with one, the
// variant that also returns the noise, which the backward needs.
struct RreluAutograd final : c10::OperatorKernel {
  bool inplace;
  explicit RreluAutograd(bool i) : inplace(i) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, Stack* stack) {
    auto args = torch::jit::last(*stack, 5);
    const at::Tensor x = args[0].toTensor();
    const double lower = args[1].toDouble(), upper = args[2].toDouble();
    const bool training = args[3].toBool();
    const bool need = torch::autograd::compute_requires_grad(x);
    const at::Tensor xt = fw_grad(x);
    if (!need && !xt.defined()) {
      at::AutoDispatchBelowAutograd guard;
      op.redispatchBoxed(ks & (inplace ? c10::after_autograd_keyset : c10::after_ADInplaceOrView_keyset), stack);
      return;
    }
    if (inplace) {
      if (need) torch::autograd::check_inplace(x, true);
      const bool use_noise = training && upper - lower > 1e-6;
      TORCH_CHECK(use_noise || (lower + upper) / 2 >= 0,
                  "torch_activations::rrelu_: In-place leakyReLu backward calculation is triggered with a negative "
                  "slope which is not supported. This is caused by calling in-place forward function with a "
                  "negative slope, please call out-of-place version instead.");
    }
    c10::intrusive_ptr<RreluBackwardNode> node;
    if (need) {
      node = c10::make_intrusive<RreluBackwardNode>();
      node->set_next_edges(torch::autograd::collect_next_edges(x));
      node->lower = lower;
      node->upper = upper;
      node->training = training;
      node->is_result = inplace;
    }
    {
      // Through ADInplaceOrView for the in-place variant (version bump).
      at::AutoDispatchBelowAutograd guard;
      rrelu_with_noise_handle(inplace).callBoxed(stack);
    }
    const at::Tensor noise = stack->back().toTensor();
    stack->pop_back();
    const at::Tensor out = inplace ? x : stack->back().toTensor();
    if (node && inplace) {
      torch::autograd::rebase_history(x, node);
      node->self = SavedVariable(x, true, x.is_view());
    } else if (node) {
      torch::autograd::set_history(out, node);
      node->self = SavedVariable(x, false);
    }
    if (node) node->noise = SavedVariable(noise, false);
    if (xt.defined()) {
      // Once the slopes are drawn the op is linear in x: its tangent is the
      // backward applied to x's tangent.
      Stack st{xt, x._fw_primal(0), noise, lower, upper, training, inplace};
      rrelu_backward_handle().callBoxed(st);
      const at::Tensor t = st[0].toTensor();
      if (inplace) {
        xt.copy_(t);
      } else {
        out._set_fw_grad(t, 0, false);
      }
    }
  }
};

struct RreluBackwardAutograd final : c10::OperatorKernel {
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, Stack* stack) {
    auto args = torch::jit::last(*stack, 7);
    const at::Tensor g = args[0].toTensor(), s = args[1].toTensor(), noise = args[2].toTensor();
    const bool need = torch::autograd::compute_requires_grad(g, s, noise);
    const at::Tensor gt = fw_grad(g);
    const std::vector<c10::IValue> params(args.begin() + 3, args.end());
    c10::intrusive_ptr<RreluDoubleBackwardNode> node;
    if (need) {
      node = c10::make_intrusive<RreluDoubleBackwardNode>();
      node->set_next_edges(torch::autograd::collect_next_edges(g, s, noise));
      node->self = SavedVariable(s, false);
      node->noise = SavedVariable(noise, false);
      node->lower = args[3].toDouble();
      node->upper = args[4].toDouble();
      node->training = args[5].toBool();
      node->is_result = args[6].toBool();
    }
    redispatch_below(op, ks, stack);
    const at::Tensor out = stack->back().toTensor();
    if (node) torch::autograd::set_history(out, node);
    // Linear in grad_output, locally constant in self and noise.
    if (gt.defined()) {
      Stack st{gt, s._fw_primal(0), noise._fw_primal(0), params[0], params[1], params[2], params[3]};
      rrelu_backward_handle().callBoxed(st);
      out._set_fw_grad(st[0].toTensor(), 0, false);
    }
  }
};

struct RreluInplaceOrView final : c10::OperatorKernel {
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, Stack* stack) {
    const at::Tensor self = torch::jit::peek(*stack, 0, 5).toTensor();
    // PyTorch's own in-place ops write first and only then refuse an
    // inference tensor (when bumping its version); refuse before writing.
    if (self.is_inference()) torch::autograd::increment_version(self);
    redispatch_below(op, ks, stack);
    torch::autograd::increment_version(self);
  }
};

template <class K, class... A>
torch::CppFunction boxed(A... a) {
  return torch::CppFunction::makeFromBoxedFunctor(std::make_unique<K>(a...));
}

void register_param_kernels(torch::Library& m, bool meta) {
  for (const auto& p : param_infos()) {
    m.impl(p.name.c_str(), boxed<ParamKernel>(p.id, 0, meta));
    m.impl((p.name + "_backward").c_str(), boxed<ParamKernel>(p.id, 1, meta));
    m.impl((p.name + "_double_backward").c_str(), boxed<ParamKernel>(p.id, 2, meta));
  }
  m.impl("rrelu", boxed<RreluKernel>(false, false, meta));
  m.impl("rrelu_", boxed<RreluKernel>(true, false, meta));
  m.impl("rrelu_with_noise", boxed<RreluKernel>(false, true, meta));
  m.impl("rrelu_with_noise_", boxed<RreluKernel>(true, true, meta));
  m.impl("rrelu_backward", boxed<RreluBackwardKernel>(meta));
}

}  // namespace
}  // namespace ta

TORCH_LIBRARY_FRAGMENT(torch_activations, m) {
  for (const auto& p : ta::param_infos()) {
    const std::string& n = p.name;
    const std::string& w = p.wname;
    m.def((n + "(Tensor self, Tensor " + w + ") -> Tensor").c_str());
    m.def((n + "_backward(Tensor grad_output, Tensor self, Tensor " + w + ") -> (Tensor, Tensor)").c_str());
    m.def((n + "_double_backward(Tensor? grad_grad_input, Tensor? grad_grad_" + w +
           ", Tensor grad_output, Tensor self, Tensor " + w + ") -> (Tensor, Tensor, Tensor)")
              .c_str());
  }
  const std::vector<at::Tag> seeded = {at::Tag::nondeterministic_seeded};
  const std::string args =
      "float lower=0.125, float upper=0.3333333333333333, bool training=False, Generator? generator=None)";
  m.def(("rrelu(Tensor self, " + args + " -> Tensor").c_str(), seeded);
  m.def(("rrelu_(Tensor(a!) self, " + args + " -> ()").c_str(), seeded);
  m.def(("rrelu_with_noise(Tensor self, " + args + " -> (Tensor, Tensor)").c_str(), seeded);
  m.def(("rrelu_with_noise_(Tensor(a!) self, " + args + " -> Tensor").c_str(), seeded);
  m.def(
      "rrelu_backward(Tensor grad_output, Tensor self, Tensor noise, float lower, float upper, bool training, "
      "bool is_result) -> Tensor");
}

TORCH_LIBRARY_IMPL(torch_activations, CPU, m) { ta::register_param_kernels(m, false); }
TORCH_LIBRARY_IMPL(torch_activations, Meta, m) { ta::register_param_kernels(m, true); }

TORCH_LIBRARY_IMPL(torch_activations, Autograd, m) {
  using namespace ta;
  for (const auto& p : param_infos()) {
    m.impl(p.name.c_str(), boxed<ParamAutograd>(p.id, 0));
    m.impl((p.name + "_backward").c_str(), boxed<ParamAutograd>(p.id, 1));
    m.impl((p.name + "_double_backward").c_str(), torch::autograd::autogradNotImplementedFallback());
  }
  m.impl("rrelu", boxed<RreluAutograd>(false));
  m.impl("rrelu_", boxed<RreluAutograd>(true));
  // Called by the two above below autograd; not differentiable on its own.
  m.impl("rrelu_with_noise", torch::autograd::autogradNotImplementedFallback());
  m.impl("rrelu_with_noise_", torch::autograd::autogradNotImplementedFallback());
  m.impl("rrelu_backward", boxed<RreluBackwardAutograd>());
}

TORCH_LIBRARY_IMPL(torch_activations, ADInplaceOrView, m) {
  m.impl("rrelu_", ta::boxed<ta::RreluInplaceOrView>());
  m.impl("rrelu_with_noise_", ta::boxed<ta::RreluInplaceOrView>());
}
