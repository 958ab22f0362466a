// The registry of pointwise activations: one line per op.
//
//   X(name, Functor, "forward parameters after `Tensor self`, with defaults")
//
// From this list the library generates, for each op `foo`:
//   schemas    foo(Tensor self, ...) -> Tensor
//              foo_(Tensor(a!) self, ...) -> ()
//              foo_backward(Tensor grad_output, Tensor self|result, ...[, bool is_result]) -> Tensor
//              foo_double_backward(Tensor grad_grad, Tensor grad_output, Tensor self|result, ...) -> Tensor
//   kernels    CPU (one table per instruction set) and Meta
//   autograd   C++ nodes at the Autograd key, differentiable twice
// The functor (activations.h) says which tensor the backward saves and how.
// A `str` parameter is passed to the kernels as the index of its value in the
// functor's kChoices list.
#pragma once

#define TA_POINTWISE_OPS(X)                                              \
  X(sigmoid, Sigmoid, "")                                                \
  X(tanh, Tanh, "")                                                      \
  X(relu, Relu, "")                                                      \
  X(leaky_relu, LeakyRelu, "float negative_slope=0.01")                  \
  X(elu, Elu, "float alpha=1.0")                                         \
  X(selu, Selu, "")                                                      \
  X(celu, Celu, "float alpha=1.0")                                       \
  X(softplus, Softplus, "float beta=1.0, float threshold=20.0")          \
  X(silu, Silu, "")                                                      \
  X(swish, Swish, "float beta=1.0")                                      \
  X(gelu, Gelu, "str approximate='none'")                                \
  X(mish, Mish, "")                                                      \
  X(relu6, Relu6, "")                                                    \
  X(hardtanh, Hardtanh, "float min_val=-1.0, float max_val=1.0")         \
  X(hardsigmoid, Hardsigmoid, "")                                        \
  X(hardswish, Hardswish, "")                                            \
  X(logsigmoid, LogSigmoid, "")                                          \
  X(softsign, Softsign, "")                                              \
  X(tanhshrink, Tanhshrink, "")                                          \
  X(softshrink, Softshrink, "float lambd=0.5")                           \
  X(hardshrink, Hardshrink, "float lambd=0.5")                           \
  X(threshold, Threshold, "float threshold, float value")

// Pointwise ops with a learnable tensor parameter of 1 or C (= size of dim 1)
// elements: X(name, Functor, "parameter name"). Generated for each:
//   foo(Tensor self, Tensor weight) -> Tensor
//   foo_backward(Tensor grad_output, Tensor self, Tensor weight) -> (Tensor, Tensor)
//   foo_double_backward(Tensor? grad_grad_input, Tensor? grad_grad_weight,
//                       Tensor grad_output, Tensor self, Tensor weight) -> (Tensor, Tensor, Tensor)
#define TA_PARAMETRIC_OPS(X)                                             \
  X(prelu, Prelu, "weight")                                              \
  X(swish_learnable, SwishLearnable, "beta")

// Gated linear units: act(one half) * (other half), from an activation's
// functor. X(name, Functor, activated half (0 first, 1 second), has a two-tensor
// form, "parameters after `int dim`"). Generated for each (gated.cpp):
//   foo(Tensor self, int dim=-1, ...) -> Tensor
//   foo_backward(Tensor grad_output, Tensor self, int dim, ...) -> Tensor
//   foo_double_backward(Tensor grad_grad, Tensor grad_output, Tensor self, int dim, ...) -> (Tensor, Tensor)
// and with a two-tensor form the overloads foo.pair(Tensor gate, Tensor up, ...),
// foo_backward.pair and foo_double_backward.pair.
#define TA_GATED_OPS(X)                                                  \
  X(glu, Sigmoid, 1, false, "")                                          \
  X(swiglu, Silu, 0, true, "")                                           \
  X(geglu, Gelu, 0, true, "str approximate='none'")                      \
  X(reglu, Relu, 0, true, "")

namespace ta {

enum class GatedOpId : int {
#define TA_X(name, F, half, pair, params) name,
  TA_GATED_OPS(TA_X)
#undef TA_X
  kCount
};
constexpr int kNumGatedOps = static_cast<int>(GatedOpId::kCount);

enum class ParamOpId : int {
#define TA_X(name, F, wname) name,
  TA_PARAMETRIC_OPS(TA_X)
#undef TA_X
  kCount
};
constexpr int kNumParametricOps = static_cast<int>(ParamOpId::kCount);

enum class OpId : int {
#define TA_X(name, F, params) name,
  TA_POINTWISE_OPS(TA_X)
#undef TA_X
  kCount
};
constexpr int kNumPointwiseOps = static_cast<int>(OpId::kCount);

// Kernel kinds per op.
enum class Kind : int { Fwd = 0, Bwd, DBwd, BwdResult, DBwdResult, kCount };
constexpr int kNumKinds = static_cast<int>(Kind::kCount);

// Storage dtypes the kernels are compiled for.
enum class DType : int { F32 = 0, F64, F16, BF16, kCount };
constexpr int kNumDTypes = static_cast<int>(DType::kCount);

}  // namespace ta
