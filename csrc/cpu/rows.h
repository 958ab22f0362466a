// Interface of the per-ISA kernels of the non-elementwise ops: the softmax
// family and the fused losses (row kernels: a reduction along one dimension
// followed by a pass that uses it), and the gated linear units and
// binary_cross_entropy_with_logits (elementwise over several operands).
//
// rows_impl.h is compiled into the same per-ISA translation units as the
// pointwise kernels (kernels_<ISA>.cpp), so each instruction set fills one
// RowKernelTable next to its KernelTable.
#pragma once

#include <cstdint>

#include "kernels.h"

namespace ta {
namespace cpu {

// One call of a row kernel, made from a TensorIterator loop whose operands
// are restrided to size 1 along the reduced dimension: data[k] points at the
// first element of row 0 of operand k, strides[k] is the step between
// consecutive rows, dim_strides[k] the step along the reduced dimension
// (0 for an operand that holds one value per row). All steps in bytes.
struct RowCall {
  char** data;
  const int64_t* strides;
  int64_t nrows;
  int64_t n;                   // length of the reduced dimension
  const int64_t* dim_strides;
  const void* weight;          // n class weights in the compute type, contiguous (losses only)
  const double* params;
};
using RowLoop = void (*)(const RowCall&);

enum class RowMode : int { Softmax = 0, LogSoftmax = 1 };

// Cross entropy kinds. Forward: class indices without / with label
// smoothing, probability targets. Backward: class indices, probability
// targets, probability targets with the target's gradient too.
enum class CeFwd : int { Index = 0, IndexSmooth, Prob, kCount };
enum class CeBwd : int { Index = 0, Prob, ProbTarget, kCount };

// Registry of the gated linear units (see registry.h).
constexpr int kNumBceKinds = 6;  // fwd, bwd, bwd with the target's gradient; x2 with pos_weight

struct RowKernelTable {
  const char* isa;
  // Softmax family. Operands:
  //   fwd   y | x                     [mode][x dtype][y dtype]
  //   bwd   dx | g, y                 [mode][g, y dtype][dx dtype]
  //   dbwd  dg, dy | gg, g, y         [mode][dtype]
  // params[0] != 0 negates x (fwd), g (bwd) or gg (dbwd): softmin.
  // A null entry is a dtype pair without a fused kernel.
  RowLoop softmax_fwd[2][kNumDTypes][kNumDTypes];
  RowLoop softmax_bwd[2][kNumDTypes][kNumDTypes];
  RowLoop softmax_dbwd[2][kNumDTypes];
  // Cross entropy. Operands (per-row ones in the compute type, C = float
  // or double; target indices int64):
  //   fwd Index*:  loss, max, logsum | x, target
  //   fwd Prob:    loss, max, logsum | x, target probabilities
  //   bwd Index:   dx | x, target, max, logsum, scale
  //   bwd Prob:    dx | x, target probabilities, max, logsum, scale
  //   bwd ProbTarget: dx, dtarget | same inputs
  // params: ignore_index, label_smoothing, sum of the weights.
  RowLoop ce_fwd[static_cast<int>(CeFwd::kCount)][kNumDTypes];
  RowLoop ce_bwd[static_cast<int>(CeBwd::kCount)][kNumDTypes];
  // Gated linear units, elementwise over (activated half, other half):
  //   fwd  out | p, q;  bwd  dp, dq | g, p, q;  dbwd  dg, dp, dq | ggp, ggq, g, p, q
  Loop gated[kNumGatedOps][3][kNumDTypes];
  // binary_cross_entropy_with_logits, elementwise:
  //   [0] fwd     loss | x, t, w               [3] same with pos_weight: | x, t, w, pw
  //   [1] bwd     dx | u, x, t, w              [4] dx | u, x, t, w, pw
  //   [2] bwd     dx, dt | u, x, t, w          [5] dx, dt | u, x, t, w, pw
  Loop bce[kNumBceKinds][kNumDTypes];
};

const RowKernelTable* row_table_DEFAULT();
const RowKernelTable* row_table_AVX2();
const RowKernelTable* row_table_AVX512();

// The table for the instruction set the pointwise kernels use (rows.cpp).
const RowKernelTable& row_kernels();

}  // namespace cpu
}  // namespace ta
