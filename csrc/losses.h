// Elementwise math of binary_cross_entropy_with_logits, written like the
// activations (activations.h) for scalars and SIMD vectors.
//
//   loss = w ((1 - t) x - l log(sigmoid(x))),   l = 1 + (pw - 1) t
//
// log(sigmoid(x)) = -softplus(-x) never overflows, so the loss is finite for
// any finite logit. The derivatives follow PyTorch's forms:
//   d/dx = w (l sigmoid(x) - pw t)          (sigmoid(x) - t without pos_weight)
//   d/dt = w (log sigmoid(-x) - pw log sigmoid(x))
// which do not cancel where the loss is far from zero.
#pragma once

#include "core/mathlib.h"

namespace ta {
inline namespace TA_ISA {
namespace act {

using namespace ::ta::TA_ISA::simd;
namespace m = ::ta::TA_ISA::m;

template <class C, bool kPosWeight>
struct BceWithLogits {
  template <class V> TA_HD static V fwd(V x, V t, V w, V pw) {
    const V ls = m::log_sigmoid(x);
    V r;
    if constexpr (kPosWeight) {
      const V l = madd(pw - C(1), t, C(1));
      r = (C(1) - t) * x - l * ls;
    } else {
      r = (C(1) - t) * x - ls;
    }
    return r * w;
  }
  template <class V> TA_HD static V dx(V u, V x, V t, V w, V pw) {
    V d;
    if constexpr (kPosWeight) {
      const V l = madd(pw - C(1), t, C(1));
      d = l * m::sigmoid(x) - pw * t;
    } else {
      d = m::sigmoid(x) - t;
    }
    return d * u * w;
  }
  template <class V> TA_HD static V dt(V u, V x, V t, V w, V pw) {
    V d;
    if constexpr (kPosWeight) {
      d = m::log_sigmoid(-x) - pw * m::log_sigmoid(x);
    } else {
      d = -x;
    }
    return d * u * w;
  }
};

}  // namespace act
}  // namespace TA_ISA
}  // namespace ta
