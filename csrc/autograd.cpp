// Autograd for the pointwise activations, registered in C++ at the Autograd
// key so that LibTorch users get gradients too.
//
//   foo                 node saves x or y (the functor's kSaved) and calls foo_backward
//   foo_                same, saving y when the backward can use it, else a copy of x
//   foo_backward        node saves its inputs and calls foo_backward / foo_double_backward,
//                       so double backward works
//   foo_double_backward not differentiable: a third derivative raises
//
// Forward-mode AD uses the same ops: for a pointwise f the tangent of f(x) is
// foo_backward(tangent, saved).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

#include <cctype>
#include <optional>

#include "pointwise.h"

namespace ta {
namespace {

using torch::autograd::Node;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;
using Stack = torch::jit::Stack;

// "torch_activations::LeakyReluBackward" and "...BackwardBackward", built
// once: name() is called for every node the profiler records.
const std::array<std::string, 2>& node_names(OpId id) {
  static const std::vector<std::array<std::string, 2>> names = [] {
    std::vector<std::array<std::string, 2>> v;
    for (const auto& info : pointwise_infos()) {
      const std::string base = "torch_activations::" + camel_case(info.name) + "Backward";
      v.push_back({base, base + "Backward"});
    }
    return v;
  }();
  return names[static_cast<int>(id)];
}

// Calls a variant of an activation through the dispatcher, so that autograd,
// the profiler and tracing see it.
at::Tensor call(OpId id, Variant v, std::initializer_list<at::Tensor> tensors, const std::vector<c10::IValue>& params,
                std::optional<bool> is_result) {
  Stack st;
  st.reserve(tensors.size() + params.size() + 1);
  for (const auto& t : tensors) st.emplace_back(t);
  for (const auto& p : params) st.push_back(p);
  if (is_result) st.emplace_back(*is_result);
  op_handle(id, v).callBoxed(st);
  return st[0].toTensor();
}

std::optional<bool> result_flag(const PointwiseInfo& info, bool is_result) {
  return info.result_form ? std::optional<bool>(is_result) : std::nullopt;
}

// grad of foo: input 0 = grad of the output; output 0 = grad of self.
struct PointwiseBackward final : Node {
  OpId id;
  std::vector<c10::IValue> params;
  bool is_result = false;
  SavedVariable saved;

  PointwiseBackward(OpId i, std::vector<c10::IValue> p) : id(i), params(std::move(p)) {}

  variable_list apply(variable_list&& grads) override {
    const at::Tensor& g = grads[0];
    if (!g.defined() || !task_should_compute_output(0)) return {at::Tensor()};
    const at::Tensor s = saved.unpack(getptr());
    return {call(id, Variant::Bwd, {g, s}, params, result_flag(pointwise_info(id), is_result))};
  }
  void release_variables() override { saved.reset_data(); }
  std::string name() const override { return node_names(id)[0]; }
};

// grad of foo_backward(g, s): outputs 0 = grad of g, 1 = grad of s.
struct PointwiseDoubleBackward final : Node {
  OpId id;
  std::vector<c10::IValue> params;
  bool is_result = false;
  SavedVariable grad_output, saved;

  PointwiseDoubleBackward(OpId i, std::vector<c10::IValue> p) : id(i), params(std::move(p)) {}

  variable_list apply(variable_list&& grads) override {
    const at::Tensor& gg = grads[0];
    variable_list out(2);
    if (!gg.defined()) return out;
    const PointwiseInfo& info = pointwise_info(id);
    const at::Tensor s = saved.unpack(getptr());
    if (task_should_compute_output(0)) {
      out[0] = call(id, Variant::Bwd, {gg, s}, params, result_flag(info, is_result));
    }
    if (task_should_compute_output(1) && !info.zero_second) {
      out[1] = call(id, Variant::DBwd, {gg, grad_output.unpack(getptr()), s}, params, result_flag(info, is_result));
    }
    return out;
  }
  void release_variables() override {
    grad_output.reset_data();
    saved.reset_data();
  }
  std::string name() const override { return node_names(id)[1]; }
};

struct AutogradForward final : c10::OperatorKernel {
  OpId id;
  explicit AutogradForward(OpId i) : id(i) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, Stack* stack) {
    const PointwiseInfo& info = pointwise_info(id);
    const int n = info.nargs_fwd();
    const at::Tensor self = torch::jit::peek(*stack, 0, n).toTensor();
    const bool need_grad = torch::autograd::compute_requires_grad(self);
    const at::Tensor self_t = fw_grad(self);
    if (!need_grad && !self_t.defined()) return redispatch_below(op, ks, stack);

    auto args = torch::jit::last(*stack, n);
    std::vector<c10::IValue> params(args.begin() + 1, args.end());
    c10::intrusive_ptr<PointwiseBackward> node;
    if (need_grad) {
      node = c10::make_intrusive<PointwiseBackward>(id, params);
      node->set_next_edges(torch::autograd::collect_next_edges(self));
    }
    redispatch_below(op, ks, stack);
    const at::Tensor out = stack->back().toTensor();
    const bool save_out = info.saved == Saved::Output;
    if (node) {
      torch::autograd::set_history(out, node);
      node->saved = SavedVariable(save_out ? out : self, /*is_output=*/save_out);
    }
    if (self_t.defined()) {
      const at::Tensor primal = save_out ? out._fw_primal(0) : self._fw_primal(0);
      out._set_fw_grad(call(id, Variant::Bwd, {self_t, primal}, params, result_flag(info, false)), 0, false);
    }
  }
};

struct AutogradInplace final : c10::OperatorKernel {
  OpId id;
  explicit AutogradInplace(OpId i) : id(i) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, Stack* stack) {
    const PointwiseInfo& info = pointwise_info(id);
    const int n = info.nargs_fwd();
    auto args = torch::jit::last(*stack, n);
    const at::Tensor self = args[0].toTensor();
    const bool need_grad = torch::autograd::compute_requires_grad(self);
    const at::Tensor self_t = fw_grad(self);
    if (!need_grad && !self_t.defined()) {
      at::AutoDispatchBelowAutograd guard;
      op.redispatchBoxed(ks & c10::after_autograd_keyset, stack);
      return;
    }
    const std::string opname = qualified_name(id, Variant::Inplace);
    double p[kMaxParams];
    read_params(info, &args[1], p, opname.c_str());
    torch::autograd::check_inplace(self, need_grad);
    if (const char* msg = info.inplace_error(p)) TORCH_CHECK(false, opname, ": ", msg);
    std::vector<c10::IValue> params(args.begin() + 1, args.end());

    // The backward reads the output when the functor can; otherwise the
    // input is copied before it is overwritten, with its history, so that
    // double backward still reaches it.
    const bool use_result = info.saved == Saved::Output || info.result_form;
    at::Tensor original;
    if (!use_result) original = self.clone();

    c10::intrusive_ptr<PointwiseBackward> node;
    if (need_grad) {
      node = c10::make_intrusive<PointwiseBackward>(id, params);
      node->set_next_edges(torch::autograd::collect_next_edges(self));
      node->is_result = info.result_form;
    }
    {
      // Through ADInplaceOrView, which bumps the version counter.
      at::AutoDispatchBelowAutograd guard;
      op.redispatchBoxed(ks & c10::after_autograd_keyset, stack);
    }
    if (node) {
      torch::autograd::rebase_history(self, node);
      node->saved = use_result ? SavedVariable(self, /*is_output=*/true, self.is_view())
                               : SavedVariable(original, /*is_output=*/false);
    }
    if (self_t.defined()) {
      const at::Tensor primal = use_result ? self._fw_primal(0) : original._fw_primal(0);
      const at::Tensor new_t = call(id, Variant::Bwd, {self_t, primal}, params, result_flag(info, info.result_form));
      self_t.copy_(new_t);
    }
  }
};

struct AutogradBackward final : c10::OperatorKernel {
  OpId id;
  explicit AutogradBackward(OpId i) : id(i) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, Stack* stack) {
    const PointwiseInfo& info = pointwise_info(id);
    const int n = info.nargs_bwd();
    auto args = torch::jit::last(*stack, n);
    const at::Tensor g = args[0].toTensor();
    const at::Tensor s = args[1].toTensor();
    const bool need_grad = torch::autograd::compute_requires_grad(g, s);
    const at::Tensor g_t = fw_grad(g), s_t = fw_grad(s);
    if (!need_grad && !g_t.defined() && !s_t.defined()) return redispatch_below(op, ks, stack);

    std::vector<c10::IValue> params(args.begin() + 2, args.begin() + 2 + info.nparams);
    const bool is_result = info.result_form && args[2 + info.nparams].toBool();
    c10::intrusive_ptr<PointwiseDoubleBackward> node;
    if (need_grad) {
      node = c10::make_intrusive<PointwiseDoubleBackward>(id, params);
      node->set_next_edges(torch::autograd::collect_next_edges(g, s));
      node->is_result = is_result;
    }
    redispatch_below(op, ks, stack);
    const at::Tensor out = stack->back().toTensor();
    if (node) {
      torch::autograd::set_history(out, node);
      if (!info.zero_second) node->grad_output = SavedVariable(g, false);
      node->saved = SavedVariable(s, false);
    }
    if (g_t.defined() || s_t.defined()) {
      // d bwd(g, s) = bwd(dg, s) + dbwd(ds, g, s)
      const at::Tensor gp = g._fw_primal(0), sp = s._fw_primal(0);
      const auto flag = result_flag(info, is_result);
      at::Tensor t;
      if (g_t.defined()) t = call(id, Variant::Bwd, {g_t, sp}, params, flag);
      if (s_t.defined() && !info.zero_second) {
        at::Tensor ts = call(id, Variant::DBwd, {s_t, gp, sp}, params, flag);
        t = t.defined() ? t + ts : ts;
      }
      if (!t.defined()) t = at::zeros_like(out);
      out._set_fw_grad(t, 0, false);
    }
  }
};

// Version counter bump for the in-place ops, as PyTorch's own in-place ops
// do, so that tensors saved for backward elsewhere notice the write.
struct InplaceOrView final : c10::OperatorKernel {
  OpId id;
  explicit InplaceOrView(OpId i) : id(i) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, Stack* stack) {
    const at::Tensor self = torch::jit::peek(*stack, 0, pointwise_info(id).nargs_fwd()).toTensor();
    // PyTorch's own in-place ops write first and only then refuse an
    // inference tensor (when bumping its version); refuse before writing.
    if (self.is_inference()) torch::autograd::increment_version(self);
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      op.redispatchBoxed(ks & c10::after_ADInplaceOrView_keyset, stack);
    }
    torch::autograd::increment_version(self);
  }
};

template <class K>
torch::CppFunction boxed(OpId id) {
  return torch::CppFunction::makeFromBoxedFunctor(std::make_unique<K>(id));
}

std::string short_name(OpId id, Variant v) {
  return qualified_name(id, v).substr(std::strlen("torch_activations::"));
}

}  // namespace
}  // namespace ta

TORCH_LIBRARY_IMPL(torch_activations, Autograd, m) {
  using namespace ta;
  for (const auto& info : pointwise_infos()) {
    m.impl(short_name(info.id, Variant::Fwd).c_str(), boxed<AutogradForward>(info.id));
    m.impl(short_name(info.id, Variant::Inplace).c_str(), boxed<AutogradInplace>(info.id));
    m.impl(short_name(info.id, Variant::Bwd).c_str(), boxed<AutogradBackward>(info.id));
    m.impl(short_name(info.id, Variant::DBwd).c_str(), torch::autograd::autogradNotImplementedFallback());
  }
}

TORCH_LIBRARY_IMPL(torch_activations, ADInplaceOrView, m) {
  using namespace ta;
  for (const auto& info : pointwise_infos()) {
    m.impl(short_name(info.id, Variant::Inplace).c_str(), boxed<InplaceOrView>(info.id));
  }
}
