// Gated linear units: out = f(p) * q, where p is the activated half and q
// the other one, for any activation functor of activations.h. The math of
// f, f' and f'' comes from that functor, so each gated op is as accurate as
// its activation, in every dtype and on every device.
//
// The functor has the interface of a parametric op (activations.h):
//   fwd(p, q)                   f(p) q
//   bwd(g, p, q)                {g q f'(p), g f(p)}
//   dbwd(ggp, ggq, g, p, q)     the vector-Jacobian product of bwd with (ggp, ggq):
//                               {d/dg, d/dp, d/dq} = {ggp q f' + ggq f,  g (ggp q f'' + ggq f'),  ggp g f'}
// Only the inputs are needed: the backward recomputes f(p) instead of
// saving it.
#pragma once

#include "activations.h"

namespace ta {
inline namespace TA_ISA {
namespace act {

template <template <class> class Act>
struct Gated {
  template <class C>
  struct Fn : ParamTraits {
    Act<C> act;
    TA_HD explicit Fn(const double* p) : act(p) {}

    // The activation's rare lanes are the gated unit's, at the same p.
    static constexpr bool kRareLanes = Act<C>::kRareLanes;
    template <class V> TA_HD static uint32_t rare(V p) { return Act<C>::rare(p); }
    TA_HD void set_defer_rare() { act.set_defer_rare(); }

    // f'(x) times a, from the activation's backward, which reads x or f(x).
    template <class V> TA_HD V deriv_times(V a, V x, V fx) const {
      // An activation that saves its output may still offer a more accurate
      // derivative from the input, which the gated units always have.
      if constexpr (requires { act.bwd_input(a, x); }) return act.bwd_input(a, x);
      else if constexpr (Act<C>::kSaved == Saved::Output) return act.bwd(a, fx);
      else return act.bwd(a, x);
    }
    // f''(x) times a. The functors' dbwd is the derivative of bwd with
    // respect to the tensor it saves; for one that saves y = f(x) the chain
    // rule adds the factor f'(x).
    template <class V> TA_HD V second_times(V a, V x, V fx) const {
      const V one = splat<V>(C(1));
      if constexpr (Act<C>::kSaved == Saved::Output) {
        return act.dbwd(a, one, fx) * act.bwd(one, fx);
      } else {
        return act.dbwd(a, one, x);
      }
    }

    template <class V> TA_HD V fwd(V p, V q) const { return act.fwd(p) * q; }

    // g q is formed first, as autograd does for f(p) * q, so both sides round
    // the same way.
    template <class V> TA_HD Outs<V, 2> bwd(V g, V p, V q) const {
      const V fp = act.fwd(p);
      return {{deriv_times(g * q, p, fp), g * fp}};
    }

    template <class V> TA_HD Outs<V, 3> dbwd(V ggp, V ggq, V g, V p, V q) const {
      const V fp = act.fwd(p);
      const V a = ggp * q;
      const V dg = madd(ggq, fp, deriv_times(a, p, fp));
      const V dp = g * (second_times(a, p, fp) + deriv_times(ggq, p, fp));
      const V dq = deriv_times(ggp * g, p, fp);
      return {{dg, dp, dq}};
    }
  };
};

}  // namespace act
}  // namespace TA_ISA
}  // namespace ta
