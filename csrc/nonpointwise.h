// Host-side helpers shared by the non-elementwise ops (softmax.cpp,
// gated.cpp, loss.cpp): running a row kernel over the rows of a dimension,
// deterministic sums, dtype checks and small autograd utilities.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <string>
#include <vector>

#include "common.h"
#include "cpu/rows.h"

namespace ta {

// An operand of a row kernel: `along` ones have the full shape and run along
// the reduced dimension; the others hold one value per row (size 1 there,
// broadcast views allowed). A per-row operand may also be given without the
// row dimension (insert_dim: read as t.unsqueeze(dim)) and as one slice of
// its first dimension (pick0 >= 0: read as t[pick0]; the slice is taken
// first): the same memory, without making the views, which cost more than a
// short row's work.
struct RowOperand {
  at::Tensor t;
  bool along;
  bool insert_dim = false;
  int64_t pick0 = -1;
};

// Runs fn over every row of dimension `dim` (length n) in parallel, rows
// split between threads in whole rows. outs/ins in the kernel's order.
void run_rows(cpu::RowLoop fn, int64_t dim, int64_t n, const std::vector<RowOperand>& outs,
              const std::vector<RowOperand>& ins, const void* weight, const double* params);

// Sum of a contiguous float or double tensor in double, in an order that
// does not depend on the number of threads.
double deterministic_sum(const at::Tensor& t);

// float32, float64, float16 or bfloat16.
bool is_kernel_dtype(at::ScalarType st);

// The math type of a storage dtype: float for float16/bfloat16.
inline at::ScalarType compute_dtype(at::ScalarType st) {
  return st == at::kDouble ? at::kDouble : at::kFloat;
}

// Our ops have no forward-mode derivative formulas beyond the pointwise
// ones; refuse tangents instead of dropping them.
void refuse_forward_ad(const std::vector<at::Tensor>& ts, const std::string& op);

// PyTorch's message for an argument without a derivative formula.
void refuse_grad(const at::Tensor& t, const char* arg, const std::string& op);

c10::OperatorHandle find_op(const char* name, const char* overload = "");

// a.sym_sizes() with the entry at dim replaced by 1 (a per-row shape).
std::vector<c10::SymInt> row_shape_keepdim(const at::Tensor& a, int64_t dim);

}  // namespace ta
