// out= overloads of the pointwise activations, generated from the registry:
//
//   foo.out(Tensor input, <parameters>, *, Tensor(a!) out) -> Tensor(a!)
//
// With ATen's out= semantics: `out` must have the input's dtype and device;
// one of another shape is resized (with ATen's warning when it held
// elements) and then given the strides the functional op would allocate;
// `out` may be the input itself but must not partially overlap it or itself. Like ATen's out=
// functions they are not differentiable: under grad mode an argument that
// requires grad is refused, and so is a forward-mode tangent.
#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/native/Resize.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/library.h>

#include <cstring>

#include "common.h"
#include "layout.h"
#include "pointwise.h"

namespace ta {
namespace {

// "leaky_relu.out(Tensor input, float negative_slope=0.01, *, Tensor(a!) out) -> Tensor(a!)"
std::string out_schema(const PointwiseInfo& info) {
  const std::string& f = info.schema_fwd;  // "leaky_relu(<args>) -> Tensor"
  const size_t open = info.name.size() + 1;
  const size_t close = f.rfind(") -> Tensor");
  TORCH_INTERNAL_ASSERT(close != std::string::npos && close > open);
  // The input is named `input`, not `self` as in the functional schema:
  // Inductor (torch 2.13) lowers a functional custom op to the out= overload
  // whose other arguments match it by name, type and default, and in that
  // call writes arguments left at their defaults twice (by position and by
  // keyword), so that a compiled gelu(x) or elu(x) fails at run time. With
  // the names apart the op runs as itself there.
  std::string args = f.substr(open, close - open);
  TORCH_INTERNAL_ASSERT(args.rfind("Tensor self", 0) == 0);
  args.replace(0, std::strlen("Tensor self"), "Tensor input");
  return info.name + ".out(" + args + ", *, Tensor(a!) out) -> Tensor(a!)";
}

std::string out_name(const PointwiseInfo& info) { return "torch_activations::" + info.name + ".out"; }

struct OutKernel final : c10::OperatorKernel {
  OpId id;
  bool meta;
  std::string opname;
  OutKernel(OpId i, bool m) : id(i), meta(m), opname(out_name(pointwise_info(i))) {}

  void operator()(const c10::OperatorHandle&, c10::DispatchKeySet, torch::jit::Stack* stack) {
    const PointwiseInfo& info = pointwise_info(id);
    const int n = info.nargs_fwd() + 1;
    auto args = torch::jit::last(*stack, n);
    const at::Tensor self = args[0].toTensor();
    at::Tensor out = args[n - 1].toTensor();
    check_float(self, "input", opname);
    double p[kMaxParams];
    read_params(info, &args[1], p, opname.c_str(), self.scalar_type());
    TORCH_CHECK(out.layout() == at::kStrided, opname, ": expected a strided (dense) tensor for 'out', got ",
                out.layout());
    TORCH_CHECK(out.scalar_type() == self.scalar_type(), opname, ": expected out to have dtype ",
                self.scalar_type(), " (the dtype of input), but got ", out.scalar_type());
    TORCH_CHECK(out.device() == self.device(), opname, ": expected out to be on ", self.device(),
                " like input, but got ", out.device());
    if (at::native::resize_output_symint(out, self.sym_sizes()) && !self.is_contiguous()) {
      // A resized out is contiguous; the functional op would follow self's
      // layout (channels-last, permuted), and so does ATen's out=.
      const at::Tensor like = empty_like_pointwise(
          at::empty_strided_symint(self.sym_sizes(), self.sym_strides(), self.options().device(at::kMeta)));
      out.as_strided__symint(like.sym_sizes(), like.sym_strides());
    }
    // Symbolic shapes (torch.compile) carry no memory to compare; the real
    // kernel checks at run time.
    const bool symbolic = out.unsafeGetTensorImpl()->has_symbolic_sizes_strides() ||
                          self.unsafeGetTensorImpl()->has_symbolic_sizes_strides();
    if (!symbolic) {
      at::assert_no_internal_overlap(out);
      at::assert_no_partial_overlap(out, self);
    }
    if (!meta && out.numel() > 0) {
      run_pointwise(id, Kind::Fwd, out, {self}, p);
    }
    torch::jit::drop(*stack, n);
    stack->emplace_back(std::move(out));
  }
};

struct AutogradOut final : c10::OperatorKernel {
  OpId id;
  explicit AutogradOut(OpId i) : id(i) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, torch::jit::Stack* stack) {
    const PointwiseInfo& info = pointwise_info(id);
    const int n = info.nargs_fwd() + 1;
    const at::Tensor self = torch::jit::peek(*stack, 0, n).toTensor();
    const at::Tensor out = torch::jit::peek(*stack, n - 1, n).toTensor();
    // ATen's wording (throw_error_out_requires_grad).
    TORCH_CHECK(!torch::autograd::compute_requires_grad(self) && !torch::autograd::compute_requires_grad(out),
                out_name(info), "(): functions with out=... arguments don't support automatic differentiation, but one of "
                "the arguments requires grad.");
    const bool tangent = (self.defined() && self._fw_grad(0).defined()) || (out.defined() && out._fw_grad(0).defined());
    TORCH_CHECK_NOT_IMPLEMENTED(!tangent, "Trying to use forward AD with ", out_name(info),
                                " that does not support it because it is an out= function");
    at::AutoDispatchBelowAutograd guard;
    op.redispatchBoxed(ks & c10::after_autograd_keyset, stack);
  }
};

// The version counter of `out` moves on, as for ATen's out= functions, so
// that a tensor saved for backward elsewhere notices the write.
struct OutInplaceOrView final : c10::OperatorKernel {
  OpId id;
  explicit OutInplaceOrView(OpId i) : id(i) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, torch::jit::Stack* stack) {
    const int n = pointwise_info(id).nargs_fwd() + 1;
    const at::Tensor out = torch::jit::peek(*stack, n - 1, n).toTensor();
    // Refuse an inference tensor before writing to it.
    if (out.is_inference()) torch::autograd::increment_version(out);
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      op.redispatchBoxed(ks & c10::after_ADInplaceOrView_keyset, stack);
    }
    torch::autograd::increment_version(out);
  }
};

template <class K, class... A>
torch::CppFunction boxed(A... a) {
  return torch::CppFunction::makeFromBoxedFunctor(std::make_unique<K>(a...));
}

std::string impl_name(const PointwiseInfo& info) { return info.name + ".out"; }

}  // namespace
}  // namespace ta

TORCH_LIBRARY_FRAGMENT(torch_activations, m) {
  for (const auto& info : ta::pointwise_infos()) m.def(ta::out_schema(info).c_str(), {at::Tag::out});
}

TORCH_LIBRARY_IMPL(torch_activations, CPU, m) {
  for (const auto& info : ta::pointwise_infos())
    m.impl(ta::impl_name(info).c_str(), ta::boxed<ta::OutKernel>(info.id, false));
}

TORCH_LIBRARY_IMPL(torch_activations, Meta, m) {
  for (const auto& info : ta::pointwise_infos())
    m.impl(ta::impl_name(info).c_str(), ta::boxed<ta::OutKernel>(info.id, true));
}

TORCH_LIBRARY_IMPL(torch_activations, Autograd, m) {
  for (const auto& info : ta::pointwise_infos())
    m.impl(ta::impl_name(info).c_str(), ta::boxed<ta::AutogradOut>(info.id));
}

TORCH_LIBRARY_IMPL(torch_activations, ADInplaceOrView, m) {
  for (const auto& info : ta::pointwise_infos())
    m.impl(ta::impl_name(info).c_str(), ta::boxed<ta::OutInplaceOrView>(info.id));
}
