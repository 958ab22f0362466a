// Compile check: every mathlib function instantiated for scalar float and
// double inside device code. Built by tests/test_mathlib.py with
// `nvcc -std=c++17 -c`; it is not run.
#include "mathlib.h"

namespace {

template <class T>
__device__ T all_functions(T x) {
  namespace m = ta::m;
  return m::exp(x) + m::expm1(x) + m::log(x) + m::log1p(x) + m::tanh(x) + m::erf(x) + m::erfc(x) +
         m::sigmoid(x) + m::softplus(x) + m::log_sigmoid(x) + m::normcdf(x) + m::normpdf(x) +
         m::tanhshrink(x) + m::x_normcdf(x);
}

__device__ float float_only(float x) { return ta::m::gelu_deriv_f32(x); }

}  // namespace

__global__ void ta_mathlib_check(const float* xf, float* yf, const double* xd, double* yd, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    yf[i] = all_functions(xf[i]) + float_only(xf[i]);
    yd[i] = all_functions(xd[i]);
  }
}
