// The softmax family: softmax, log_softmax and softmin (softmax of -x).
//
//   foo(Tensor self, int dim, ScalarType? dtype=None) -> Tensor
//   foo_backward(Tensor grad_output, Tensor output, int dim, ScalarType input_dtype) -> Tensor
//   foo_double_backward(Tensor grad_grad, Tensor grad_output, Tensor output, int dim) -> (Tensor, Tensor)
//
// As in PyTorch the output is contiguous, `dtype` casts the input before the
// operation (float16/bfloat16 -> float32 is fused into the kernel, which
// reads the narrow type directly), the backward reads the saved output and
// returns the input's dtype. CPU and Meta kernels and autograd at the
// Autograd key, with forward-mode derivatives for the forward and backward
// ops; the double backward is the end of the chain.
#include <ATen/ATen.h>
#include <ATen/WrapDimUtils.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

#include "nonpointwise.h"

namespace ta {
namespace {

using torch::autograd::Node;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;
using Stack = torch::jit::Stack;

struct Family {
  const char* name;
  cpu::RowMode mode;
  bool negate;
};
constexpr Family kFamily[] = {
    {"softmax", cpu::RowMode::Softmax, false},
    {"log_softmax", cpu::RowMode::LogSoftmax, false},
    {"softmin", cpu::RowMode::Softmax, true},
};
constexpr int kNumFamily = 3;

enum Variant { kFwd = 0, kBwd, kDbwd };
const char* const kSuffix[] = {"", "_backward", "_double_backward"};

std::string qualified(int f, int v) { return std::string("torch_activations::") + kFamily[f].name + kSuffix[v]; }

const c10::OperatorHandle& handle(int f, int v) {
  static const auto handles = [] {
    std::vector<std::array<c10::OperatorHandle, 3>> h;
    for (int i = 0; i < kNumFamily; ++i) {
      h.push_back({find_op(qualified(i, kFwd).c_str()), find_op(qualified(i, kBwd).c_str()),
                   find_op(qualified(i, kDbwd).c_str())});
    }
    return h;
  }();
  return handles[f][v];
}

void check_kernel_dtype(at::ScalarType st, const char* what, const std::string& op) {
  TORCH_CHECK(is_kernel_dtype(st), op, ": ", what, " must be float32, float64, float16 or bfloat16, got ", st);
}

// A 0-d tensor is one row of length 1.
at::Tensor as_rows(const at::Tensor& t) { return t.dim() == 0 ? t.view({1}) : t; }

struct SoftmaxKernel final : c10::OperatorKernel {
  int f;
  Variant v;
  bool meta;
  std::string op;
  SoftmaxKernel(int f_, Variant v_, bool m) : f(f_), v(v_), meta(m), op(qualified(f_, v_)) {}

  const cpu::RowKernelTable& table() const { return cpu::row_kernels(); }
  // The row kernels' parameters: negate the input (softmin), log mode.
  void fill_params(double out[2]) const {
    out[0] = kFamily[f].negate ? 1.0 : 0.0;
    out[1] = kFamily[f].mode == cpu::RowMode::LogSoftmax ? 1.0 : 0.0;
  }
  int mode() const { return static_cast<int>(kFamily[f].mode); }

  void operator()(const c10::OperatorHandle&, c10::DispatchKeySet, Stack* stack) {
    double p[2];
    fill_params(p);
    if (v == kFwd) {
      auto args = torch::jit::last(*stack, 3);
      const at::Tensor self = args[0].toTensor();
      const auto dtype = args[2].toOptional<at::ScalarType>();
      TORCH_CHECK(self.layout() == at::kStrided, op, ": expected a strided (dense) tensor, got ", self.layout());
      if (dtype) {
        check_kernel_dtype(*dtype, "dtype", op);
        TORCH_CHECK(!at::isComplexType(self.scalar_type()), op, ": complex input is not supported");
      } else {
        check_float(self, "self", op);
      }
      const int64_t dim = c10::maybe_wrap_dim(args[1].toInt(), self.dim());
      const at::ScalarType out_t = dtype ? *dtype : self.scalar_type();
      at::Tensor out = at::empty_symint(self.sym_sizes(), self.options().dtype(out_t));
      if (!meta && out.numel() > 0) {
        at::Tensor x = self;
        cpu::RowLoop fn = nullptr;
        if (is_kernel_dtype(x.scalar_type())) {
          fn = table().softmax_fwd[mode()][dtype_index(x.scalar_type())][dtype_index(out_t)];
        }
        if (fn == nullptr) {
          // PyTorch's order: cast, then softmax in the target dtype.
          x = x.to(out_t);
          fn = table().softmax_fwd[mode()][dtype_index(out_t)][dtype_index(out_t)];
        }
        const int64_t n = self.dim() == 0 ? 1 : self.size(dim);
        run_rows(fn, dim, n, {{as_rows(out), true}}, {{as_rows(x), true}}, nullptr, p);
      }
      torch::jit::drop(*stack, 3);
      stack->emplace_back(std::move(out));
    } else if (v == kBwd) {
      auto args = torch::jit::last(*stack, 4);
      const at::Tensor g = args[0].toTensor(), y = args[1].toTensor();
      const at::ScalarType in_t = args[3].toScalarType();
      check_float(y, "output", op);
      check_same(g, "grad_output", y, "output", op);
      check_kernel_dtype(in_t, "input_dtype", op);
      const int64_t dim = c10::maybe_wrap_dim(args[2].toInt(), y.dim());
      at::Tensor dx = at::empty_symint(y.sym_sizes(), y.options().dtype(in_t));
      if (!meta && dx.numel() > 0) {
        const int64_t n = y.dim() == 0 ? 1 : y.size(dim);
        const int yi = dtype_index(y.scalar_type());
        if (cpu::RowLoop fn = table().softmax_bwd[mode()][yi][dtype_index(in_t)]) {
          run_rows(fn, dim, n, {{as_rows(dx), true}}, {{as_rows(g), true}, {as_rows(y), true}}, nullptr, p);
        } else {
          // As PyTorch: the backward runs in the output's dtype, then the
          // gradient is cast to the input's.
          at::Tensor tmp = at::empty_like(y, at::MemoryFormat::Contiguous);
          run_rows(table().softmax_bwd[mode()][yi][yi], dim, n, {{as_rows(tmp), true}},
                   {{as_rows(g), true}, {as_rows(y), true}}, nullptr, p);
          dx.copy_(tmp);
        }
      }
      torch::jit::drop(*stack, 4);
      stack->emplace_back(std::move(dx));
    } else {
      auto args = torch::jit::last(*stack, 4);
      at::Tensor gg = args[0].toTensor();
      const at::Tensor g = args[1].toTensor(), y = args[2].toTensor();
      check_float(y, "output", op);
      check_same(g, "grad_output", y, "output", op);
      check_float(gg, "grad_grad", op);
      TORCH_CHECK(gg.sym_sizes() == y.sym_sizes(), op, ": 'grad_grad' has shape ", gg.sym_sizes(),
                  " but 'output' has shape ", y.sym_sizes());
      // Its dtype may differ (the forward's input's), its device may not: a
      // meta tensor here would be read by the CPU kernel.
      TORCH_CHECK(gg.device() == y.device(), op, ": 'grad_grad' is on ", gg.device(), " but 'output' is on ",
                  y.device());
      const int64_t dim = c10::maybe_wrap_dim(args[3].toInt(), y.dim());
      at::Tensor dg = at::empty_symint(y.sym_sizes(), y.options());
      at::Tensor dy = at::empty_symint(y.sym_sizes(), y.options());
      if (!meta && dg.numel() > 0) {
        // grad_grad has the dtype of the forward's input; the math runs in
        // the output's.
        if (gg.scalar_type() != y.scalar_type()) gg = gg.to(y.scalar_type());
        run_rows(table().softmax_dbwd[mode()][dtype_index(y.scalar_type())], dim, y.dim() == 0 ? 1 : y.size(dim),
                 {{as_rows(dg), true}, {as_rows(dy), true}},
                 {{as_rows(gg), true}, {as_rows(g), true}, {as_rows(y), true}}, nullptr, p);
      }
      torch::jit::drop(*stack, 4);
      stack->emplace_back(std::move(dg));
      stack->emplace_back(std::move(dy));
    }
  }
};

// ---------------------------------------------------------------- autograd ---
struct SoftmaxBackwardNode final : Node {
  int f;
  int64_t dim;
  at::ScalarType input_dtype;
  SavedVariable result;
  SoftmaxBackwardNode(int f_, int64_t d, at::ScalarType t) : f(f_), dim(d), input_dtype(t) {}
  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined() || !task_should_compute_output(0)) return {at::Tensor()};
    Stack st{grads[0], result.unpack(getptr()), dim, input_dtype};
    handle(f, kBwd).callBoxed(st);
    return {st[0].toTensor()};
  }
  void release_variables() override { result.reset_data(); }
  std::string name() const override { return "torch_activations::" + camel_case(kFamily[f].name) + "Backward"; }
};

struct SoftmaxDoubleBackwardNode final : Node {
  int f;
  int64_t dim;
  SavedVariable grad_output, result;
  SoftmaxDoubleBackwardNode(int f_, int64_t d) : f(f_), dim(d) {}
  variable_list apply(variable_list&& grads) override {
    variable_list out(2);
    if (!grads[0].defined()) return out;
    Stack st{grads[0], grad_output.unpack(), result.unpack(), dim};
    handle(f, kDbwd).callBoxed(st);
    for (int i = 0; i < 2; ++i)
      if (task_should_compute_output(i)) out[i] = st[i].toTensor();
    return out;
  }
  void release_variables() override {
    grad_output.reset_data();
    result.reset_data();
  }
  std::string name() const override {
    return "torch_activations::" + camel_case(kFamily[f].name) + "BackwardBackward";
  }
};


// Forward-mode derivatives, written with differentiable calls (our backward
// ops and ATen's) so that forward-over-reverse (hessian) works too.
// softmax's and softmin's Jacobians are symmetric, so the tangent of the
// output is the backward op applied to the tangent of the input; log_softmax
// has J t = t - sum(softmax * t).
at::Tensor forward_tangent(int f, const at::Tensor& tangent, const at::Tensor& y, int64_t dim) {
  const at::Tensor t = tangent.to(y.scalar_type());
  if (kFamily[f].mode == cpu::RowMode::LogSoftmax) return t - (t * y.exp()).sum(dim, /*keepdim=*/true);
  Stack st{t, y, dim, y.scalar_type()};
  handle(f, kBwd).callBoxed(st);
  return st[0].toTensor();
}

// Tangent of foo_backward(g, y): linear in g (the backward op applied to g's
// tangent) plus the part through y's tangent,
//   softmax:     (g - sum(g y)) y_t - sum(g y_t) y      (softmin: negated)
//   log_softmax: -exp(y) y_t sum(g)
at::Tensor backward_tangent(int f, const at::Tensor& g, const at::Tensor& g_t, const at::Tensor& y,
                            const at::Tensor& y_t, int64_t dim, at::ScalarType input_dtype) {
  at::Tensor t;
  if (g_t.defined()) {
    Stack st{g_t.to(g.scalar_type()), y, dim, y.scalar_type()};
    handle(f, kBwd).callBoxed(st);
    t = st[0].toTensor();
  }
  if (y_t.defined()) {
    const at::Tensor yt = y_t.to(y.scalar_type());
    at::Tensor u;
    if (kFamily[f].mode == cpu::RowMode::LogSoftmax) {
      u = -(y.exp() * yt * g.sum(dim, /*keepdim=*/true));
    } else {
      u = (g - (g * y).sum(dim, /*keepdim=*/true)) * yt - (g * yt).sum(dim, /*keepdim=*/true) * y;
      if (kFamily[f].negate) u = -u;
    }
    t = t.defined() ? t + u : u;
  }
  return t.to(input_dtype);
}

struct SoftmaxAutograd final : c10::OperatorKernel {
  int f;
  Variant v;
  SoftmaxAutograd(int f_, Variant v_) : f(f_), v(v_) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, Stack* stack) {
    if (v == kFwd) {
      const at::Tensor self = torch::jit::peek(*stack, 0, 3).toTensor();
      const at::Tensor self_t = fw_grad(self);
      const bool need_grad = torch::autograd::compute_requires_grad(self);
      if (!need_grad && !self_t.defined()) return redispatch_below(op, ks, stack);
      const int64_t dim = c10::maybe_wrap_dim(torch::jit::peek(*stack, 1, 3).toInt(), self.dim());
      c10::intrusive_ptr<SoftmaxBackwardNode> node;
      if (need_grad) {
        node = c10::make_intrusive<SoftmaxBackwardNode>(f, dim, self.scalar_type());
        node->set_next_edges(torch::autograd::collect_next_edges(self));
      }
      redispatch_below(op, ks, stack);
      const at::Tensor out = stack->back().toTensor();
      if (node) {
        torch::autograd::set_history(out, node);
        node->result = SavedVariable(out, /*is_output=*/true);
      }
      if (self_t.defined()) out._set_fw_grad(forward_tangent(f, self_t, out._fw_primal(0), dim), 0, false);
    } else {
      auto args = torch::jit::last(*stack, 4);
      const at::Tensor g = args[0].toTensor(), y = args[1].toTensor();
      const at::Tensor g_t = fw_grad(g), y_t = fw_grad(y);
      const bool need_grad = torch::autograd::compute_requires_grad(g, y);
      if (!need_grad && !g_t.defined() && !y_t.defined()) return redispatch_below(op, ks, stack);
      const int64_t dim = c10::maybe_wrap_dim(args[2].toInt(), y.dim());
      const at::ScalarType input_dtype = args[3].toScalarType();
      c10::intrusive_ptr<SoftmaxDoubleBackwardNode> node;
      if (need_grad) {
        node = c10::make_intrusive<SoftmaxDoubleBackwardNode>(f, dim);
        node->set_next_edges(torch::autograd::collect_next_edges(g, y));
        node->grad_output = SavedVariable(g, false);
        node->result = SavedVariable(y, false);
      }
      const at::Tensor gp = g_t.defined() || y_t.defined() ? g._fw_primal(0) : g;
      const at::Tensor yp = g_t.defined() || y_t.defined() ? y._fw_primal(0) : y;
      redispatch_below(op, ks, stack);
      const at::Tensor out = stack->back().toTensor();
      if (node) torch::autograd::set_history(out, node);
      if (g_t.defined() || y_t.defined())
        out._set_fw_grad(backward_tangent(f, gp, g_t, yp, y_t, dim, input_dtype), 0, false);
    }
  }
};

template <class K, class... A>
torch::CppFunction boxed(A... a) {
  return torch::CppFunction::makeFromBoxedFunctor(std::make_unique<K>(a...));
}

void register_kernels(torch::Library& m, bool meta) {
  for (int f = 0; f < kNumFamily; ++f) {
    for (int v = 0; v < 3; ++v) {
      const std::string name = std::string(kFamily[f].name) + kSuffix[v];
      m.impl(name.c_str(), boxed<SoftmaxKernel>(f, static_cast<Variant>(v), meta));
    }
  }
}

}  // namespace
}  // namespace ta

TORCH_LIBRARY_FRAGMENT(torch_activations, m) {
  for (int f = 0; f < ta::kNumFamily; ++f) {
    const std::string n = ta::kFamily[f].name;
    m.def((n + "(Tensor self, int dim, ScalarType? dtype=None) -> Tensor").c_str());
    m.def((n + "_backward(Tensor grad_output, Tensor output, int dim, ScalarType input_dtype) -> Tensor").c_str());
    m.def((n + "_double_backward(Tensor grad_grad, Tensor grad_output, Tensor output, int dim) -> (Tensor, Tensor)")
              .c_str());
  }
}

TORCH_LIBRARY_IMPL(torch_activations, CPU, m) { ta::register_kernels(m, false); }
TORCH_LIBRARY_IMPL(torch_activations, Meta, m) { ta::register_kernels(m, true); }

TORCH_LIBRARY_IMPL(torch_activations, Autograd, m) {
  using namespace ta;
  for (int f = 0; f < kNumFamily; ++f) {
    const std::string n = kFamily[f].name;
    m.impl(n.c_str(), boxed<SoftmaxAutograd>(f, kFwd));
    m.impl((n + "_backward").c_str(), boxed<SoftmaxAutograd>(f, kBwd));
    m.impl((n + "_double_backward").c_str(), torch::autograd::autogradNotImplementedFallback());
  }
}
