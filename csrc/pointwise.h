// Run-time description of the registered pointwise ops, shared by the
// kernel registration (ops.cpp) and the autograd registration (autograd.cpp).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <array>
#include <string>
#include <vector>

#include "activations.h"
#include "common.h"
#include "registry.h"

namespace ta {

enum class ParamKind { Float, Choice };

struct PointwiseInfo {
  OpId id;
  std::string name;              // "leaky_relu"
  Saved saved;                   // tensor the out-of-place backward reads
  bool result_form;              // in-place forward differentiable from its output
  bool zero_second;              // second derivative identically zero
  bool contiguous_output;        // forward output always contiguous
  int64_t grain;                 // elements per chunk between threads
  bool lut;                      // float16/bfloat16 from lookup tables (Traits::kLut)
  const char* (*check)(const double*);
  const char* (*inplace_error)(const double*);
  const char* const* choices;    // values of a `str` parameter, nullptr-terminated
  int range_param;               // parameter bounded by the dtype's range, or -1
  const char* range_name;
  // Parsed from the registry's parameter declarations.
  std::vector<ParamKind> kinds;
  std::vector<std::string> param_names;
  int nparams = 0;
  std::string schema_fwd, schema_inplace, schema_bwd, schema_dbwd;

  // Argument counts of the four schemas.
  int nargs_fwd() const { return 1 + nparams; }
  int nargs_bwd() const { return 2 + nparams + (result_form ? 1 : 0); }
  int nargs_dbwd() const { return 3 + nparams + (result_form ? 1 : 0); }
};

// All pointwise ops, indexed by OpId.
const std::vector<PointwiseInfo>& pointwise_infos();
inline const PointwiseInfo& pointwise_info(OpId id) { return pointwise_infos()[static_cast<int>(id)]; }

// Converts the parameter IValues of a call into doubles (a `str` becomes the
// index of its value among the choices) and validates them; the checks that
// depend on the input's dtype run when it is given.
void read_params(const PointwiseInfo& info, const c10::IValue* args, double* out, const char* op,
                 at::ScalarType dtype = at::ScalarType::Undefined);

// out = the op's kernel of this kind over inputs, elementwise on the CPU:
// from a lookup table where the op allows it and one is cached (or worth
// building for this many elements), otherwise computed.
void run_pointwise(OpId id, Kind kind, const at::Tensor& out, std::initializer_list<at::Tensor> inputs,
                   const double* params);

// Which registered operator of an activation.
enum class Variant : int { Fwd = 0, Inplace, Bwd, DBwd, kCount };
const c10::OperatorHandle& op_handle(OpId id, Variant v);

// "torch_activations::leaky_relu_backward" etc., for messages.
std::string qualified_name(OpId id, Variant v);

}  // namespace ta
