// Interface between the dispatcher-facing code and the per-ISA kernels.
//
// kernels_isa.cpp is compiled once per instruction set (baseline, AVX2,
// AVX-512); each build fills one KernelTable. The loops take TensorIterator's
// 2-d loop arguments plus the op's parameters: `rows` rows of n elements,
// operand k stepping by strides[k] within a row and, where rows > 1, by
// strides[ntensors + k] from one row to the next (only then is that second
// half read).
#pragma once

#include <cstdint>

#include "../registry.h"

namespace ta {
namespace cpu {

using Loop = void (*)(char** data, const int64_t* strides, int64_t n, int64_t rows, const double* params);

// The parametric ops' loop over contiguous operands with the parameter
// written out for a whole number of periods: operand k (outputs first)
// advances with the loop when mode[k] is 0, starts over every `period`
// elements when 1 (the written-out parameter), and is one element standing
// for all when 2. The backward loops (kinds 1 and 2) store their last
// output, the per-element parameter gradient, in the compute type (float for
// float16 and bfloat16).
using TiledLoop = void (*)(char** data, const int8_t* mode, int64_t n, int64_t period);

// Adds a rows x cols block (element (r, j) at data[r * ld + j]; float for
// index 0, double for 1) into per-column compensated double sums: sum[j]
// takes the plain running sum and comp[j] its rounding errors. Each column
// adds its rows in order, so the result does not depend on the vector width.
using ColSum = void (*)(const void* data, int64_t rows, int64_t cols, int64_t ld, double* sum, double* comp);

// float16 / bfloat16 elementwise loops that read f(x) and f'(x) from tables
// of 65536 floats indexed by x's bit pattern (ops.cpp), ending with the
// operations the computing loops end with. Pointwise ops: kind 0 writes
// tables[0][x] rounded, kind 1 g * tables[0][x] (f') rounded. Gated units
// (inputs p, q): kind 0 writes f(p) q with f = tables[0], kind 1
// {(g q) f'(p), g f(p)} with f and f' side by side in tables[0] (entries 2x
// and 2x + 1). Index [read][kind][0 float16, 1 bfloat16]: read 0 joins
// scalar loads, read 1 gathers (null in the baseline build, which has no
// gather instruction); lut_loop in ops.cpp picks one.
using LutLoop = void (*)(char** data, const int64_t* strides, int64_t n, int64_t rows, const float* const* tables);

struct KernelTable {
  const char* isa;
  Loop pointwise[kNumPointwiseOps][kNumKinds][kNumDTypes];
  // Fwd (1 output, inputs x w), Bwd (2 outputs, inputs g x w),
  // DBwd (3 outputs, inputs ggx ggw g x w); w broadcast to x's shape.
  Loop parametric[kNumParametricOps][3][kNumDTypes];
  TiledLoop parametric_tiled[kNumParametricOps][3][kNumDTypes];
  ColSum colsum[2];
  LutLoop lut[2][2][2];
  LutLoop gated_lut[2][2][2];
  bool has_gather;  // lut[1] and gated_lut[1] are filled
};

// One per build; absent ISAs are not linked in.
const KernelTable* kernel_table_DEFAULT();
const KernelTable* kernel_table_AVX2();
const KernelTable* kernel_table_AVX512();

// The table for the instruction set in use (see isa.cpp).
const KernelTable& kernels();

}  // namespace cpu
}  // namespace ta
