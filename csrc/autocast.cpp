// Autocast (torch.autocast("cpu", dtype=...)) behaviour.
//
// PyTorch runs its activations under CPU autocast in the input's dtype: none
// of them is on an autocast list, except prelu, which is on the
// lower-precision list (its input and weight are cast to the autocast dtype).
// Ours do the same. The pointwise ops need nothing: the AutocastCPU key falls
// through for operators without a kernel there. The parametric ops get the
// prelu rule, which also makes a mixed call work: under autocast the input
// usually arrives in bfloat16 from a linear layer while the learnable
// parameter stays float32, and our kernels take one dtype.
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include "registry.h"

namespace {

struct LowerPrecisionCast final : c10::OperatorKernel {
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet, torch::jit::Stack* stack) {
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    const at::ScalarType to = at::autocast::get_lower_precision_fp_from_device_type(c10::DeviceType::CPU);
    const size_t n = op.schema().arguments().size();
    for (size_t i = stack->size() - n; i < stack->size(); ++i) {
      c10::IValue& v = (*stack)[i];
      // cached_cast leaves float64 and non-CPU tensors alone, as for prelu.
      if (v.isTensor()) v = at::autocast::cached_cast(to, v.toTensor(), c10::DeviceType::CPU);
    }
    op.callBoxed(stack);
  }
};

}  // namespace

TORCH_LIBRARY_IMPL(torch_activations, AutocastCPU, m) {
#define TA_X(name, F, wname) \
  m.impl(#name, torch::CppFunction::makeFromBoxedFunctor(std::make_unique<LowerPrecisionCast>()));
  TA_PARAMETRIC_OPS(TA_X)
#undef TA_X
}
