// Interface between the dispatcher-facing code and the per-ISA kernels.
//
// kernels_isa.cpp is compiled once per instruction set (baseline, AVX2,
// AVX-512); each build fills one KernelTable. The loops take TensorIterator's
// 1-d loop arguments plus the op's parameters.
#pragma once

#include <cstdint>

#include "../registry.h"

namespace ta {
namespace cpu {

using Loop = void (*)(char** data, const int64_t* strides, int64_t n, const double* params);

struct KernelTable {
  const char* isa;
  Loop pointwise[kNumPointwiseOps][kNumKinds][kNumDTypes];
  // Fwd (1 output, inputs x w), Bwd (2 outputs, inputs g x w),
  // DBwd (3 outputs, inputs ggx ggw g x w); w broadcast to x's shape.
  Loop parametric[kNumParametricOps][3][kNumDTypes];
};

// One per build; absent ISAs are not linked in.
const KernelTable* kernel_table_DEFAULT();
const KernelTable* kernel_table_AVX2();
const KernelTable* kernel_table_AVX512();

// The table for the instruction set in use (see isa.cpp).
const KernelTable& kernels();

}  // namespace cpu
}  // namespace ta
