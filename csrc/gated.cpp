// Gated linear units (registry: TA_GATED_OPS), from the functors in gated.h.
// For each op `foo` (say swiglu, activated half first):
//   foo(Tensor self, int dim=-1, ...) -> Tensor                    act(a) * b, (a, b) = self split along dim
//   foo.pair(Tensor gate, Tensor up, ...) -> Tensor                act(gate) * up
//   foo_backward(Tensor grad_output, Tensor self, int dim, ...) -> Tensor
//   foo_backward.pair(Tensor grad_output, Tensor gate, Tensor up, ...) -> (Tensor, Tensor)
//   foo_double_backward(Tensor grad_grad, Tensor grad_output, Tensor self, int dim, ...) -> (Tensor, Tensor)
//   foo_double_backward.pair(Tensor? grad_grad_gate, Tensor? grad_grad_up, Tensor grad_output,
//                            Tensor gate, Tensor up, ...) -> (Tensor, Tensor, Tensor)
// glu activates the second half and has no two-tensor form.
//
// One pass each way: the backward reads the inputs (the only tensors saved)
// and writes both halves' gradients, for the split form straight into the
// two halves of one gradient tensor, so no concatenation follows.
#include <ATen/ATen.h>
#include <ATen/WrapDimUtils.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/jit/frontend/function_schema_parser.h>
#include <torch/library.h>

#include "gated.h"
#include "layout.h"
#include "nonpointwise.h"

namespace ta {
namespace {

using torch::autograd::Node;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;
using Stack = torch::jit::Stack;

struct GatedInfo {
  GatedOpId id;
  std::string name;
  int half;   // the activated half: 0 first, 1 second
  bool pair;  // has the two-tensor form
  const char* const* choices;
  std::vector<bool> is_str;  // parameter kinds: str (an index into choices) or float
  std::vector<std::string> param_names;
  std::string decl_defaults, decl;  // ", str approximate='none'" and ", str approximate"
  int act = -1;  // the pointwise op (OpId) with the same functor, whose lookup tables serve this one
  // Its f'(x) table is the gated backward's too: the gated units take f'
  // from bwd_input where the functor has one, and the table from bwd.
  bool act_derivative = false;
  int np() const { return static_cast<int>(is_str.size()); }
};

template <template <class> class A, template <class> class B>
struct same_functor : std::false_type {};
template <template <class> class A>
struct same_functor<A, A> : std::true_type {};

// The pointwise op registered with functor A, or -1.
template <template <class> class A>
int pointwise_op_of() {
  int id = -1;
#define TA_X(name, F, params) \
  if (same_functor<A, act::F>::value) id = static_cast<int>(OpId::name);
  TA_POINTWISE_OPS(TA_X)
#undef TA_X
  return id;
}

template <template <class> class A>
GatedInfo make_info(GatedOpId id, const char* name, int half, bool pair, const char* params) {
  GatedInfo info;
  info.id = id;
  info.name = name;
  info.half = half;
  info.pair = pair;
  info.choices = A<float>::kChoices;
  info.act = pointwise_op_of<A>();
  info.act_derivative = !requires(const A<float>& a, float x) { a.bwd_input(x, x); };
  if (params[0]) {
    info.decl_defaults = std::string(", ") + params;
    const auto parsed = torch::jit::parseSchema(std::string(name) + "(" + params + ") -> Tensor");
    for (const auto& a : parsed.arguments()) {
      const auto kind = a.type()->kind();
      TORCH_INTERNAL_ASSERT(kind == c10::TypeKind::FloatType || kind == c10::TypeKind::StringType);
      info.is_str.push_back(kind == c10::TypeKind::StringType);
      info.param_names.push_back(a.name());
      info.decl += ", " + a.type()->str() + " " + a.name();
    }
  }
  return info;
}

const std::vector<GatedInfo>& infos() {
  static const std::vector<GatedInfo> v = [] {
    std::vector<GatedInfo> r;
#define TA_X(name, F, half, pair, params) r.push_back(make_info<act::F>(GatedOpId::name, #name, half, pair, params));
    TA_GATED_OPS(TA_X)
#undef TA_X
    return r;
  }();
  return v;
}
const GatedInfo& info(GatedOpId id) { return infos()[static_cast<int>(id)]; }

enum Variant { kFwd = 0, kBwd, kDbwd, kPairFwd, kPairBwd, kPairDbwd, kNumVariants };
const char* const kSuffix[] = {"", "_backward", "_double_backward", "", "_backward", "_double_backward"};
bool is_pair(Variant v) { return v >= kPairFwd; }

std::string qualified(GatedOpId id, Variant v) {
  return "torch_activations::" + info(id).name + kSuffix[v] + (is_pair(v) ? ".pair" : "");
}

const c10::OperatorHandle& handle(GatedOpId id, Variant v) {
  static const auto handles = [] {
    std::vector<std::array<std::optional<c10::OperatorHandle>, kNumVariants>> h(infos().size());
    for (const auto& i : infos()) {
      for (int v = 0; v < kNumVariants; ++v) {
        if (is_pair(static_cast<Variant>(v)) && !i.pair) continue;
        const std::string n = "torch_activations::" + i.name + kSuffix[v];
        h[static_cast<int>(i.id)][v] = find_op(n.c_str(), is_pair(static_cast<Variant>(v)) ? "pair" : "");
      }
    }
    return h;
  }();
  return *handles[static_cast<int>(id)][v];
}

// Number of arguments before the op's parameters.
int nfixed(Variant v) {
  switch (v) {
    case kFwd: return 2;
    case kBwd: return 3;
    case kDbwd: return 4;
    case kPairFwd: return 2;
    case kPairBwd: return 3;
    case kPairDbwd: return 5;
    default: TORCH_INTERNAL_ASSERT(false);
  }
}

void read_params(const GatedInfo& gi, const c10::IValue* args, double* out, const std::string& op) {
  for (int i = 0; i < gi.np(); ++i) {
    if (!gi.is_str[i]) {
      out[i] = args[i].toDouble();
      continue;
    }
    const std::string& s = args[i].toStringRef();
    std::string all;
    int k = 0;
    for (; gi.choices[k] != nullptr; ++k) {
      if (s == gi.choices[k]) break;
      all += (k ? " or " : "") + std::string(gi.choices[k]);
    }
    TORCH_CHECK(gi.choices[k] != nullptr, op, ": ", gi.param_names[i], " argument must be either ", all, ", got '", s,
                "'");
    out[i] = k;
  }
}

// The two halves of self along dim, (activated, other).
struct Split {
  int64_t dim;
  c10::SymInt half;
  at::Tensor first, second;
};

Split split(const at::Tensor& self, int64_t dim_arg, const GatedInfo& gi, const std::string& op) {
  TORCH_CHECK(self.dim() > 0, op, ": ", gi.name, " does not support scalars because halving size must be even");
  const int64_t dim = c10::maybe_wrap_dim(dim_arg, self.dim());
  const c10::SymInt n = self.sym_size(dim);
  TORCH_CHECK(n % 2 == 0, op, ": Halving dimension must be even, but dimension ", dim, " is size ", n);
  const c10::SymInt h = n / 2;
  return {dim, h, self.narrow_symint(dim, 0, h), self.narrow_symint(dim, h, h)};
}

cpu::Loop loop(GatedOpId id, int kind, at::ScalarType st) {
  return cpu::row_kernels().gated[static_cast<int>(id)][kind][dtype_index(st)];
}

// Outputs per chunk between threads: a quarter of ATen's grain, as for the
// costliest pointwise ops (kCost). A gated unit reads two inputs and, going
// backward, writes two outputs and evaluates its activation and derivative,
// so a second thread pays from 8K outputs on. Measured at 16 rows of 4096
// (2 threads, forward+backward, us): swiglu float32 86 -> 65, glu float32
// 80 -> 61, reglu float32 56 -> 47, geglu bfloat16 88 -> 65-85.
constexpr int64_t kGatedGrain = at::internal::GRAIN_SIZE / 4;

// The forward (kind 0) or backward (kind 1) over float16 / bfloat16 from the
// activation's lookup tables, which give the computed result bit for bit
// (see lookup_table); false, having done nothing, where there are none.
bool run_from_tables(const GatedInfo& gi, int kind, std::initializer_list<at::Tensor> outputs,
                     std::initializer_list<at::Tensor> inputs, const double* p) {
  const at::Tensor& first = *outputs.begin();
  const at::ScalarType st = first.scalar_type();
  if (gi.act < 0 || (kind == 1 && !gi.act_derivative)) return false;
  const cpu::KernelTable& isa = cpu::kernels();
  const OpId act = static_cast<OpId>(gi.act);
  // The backward reads f and f' from one table of pairs (kind 2).
  const Table f = lookup_table(isa, act, kind == 0 ? 0 : 2, st, p, first.numel());
  if (!f) return false;
  const float* t[1] = {f->data()};
  const cpu::LutLoop fn = lut_loop(isa, /*gated=*/true, kind, st);
  run_loop(fn, outputs, inputs, t, kGatedGrain);
  return true;
}

struct GatedKernel final : c10::OperatorKernel {
  GatedOpId id;
  Variant v;
  bool meta;
  std::string op;
  GatedKernel(GatedOpId i, Variant v_, bool m) : id(i), v(v_), meta(m), op(qualified(i, v_)) {}

  void operator()(const c10::OperatorHandle&, c10::DispatchKeySet, Stack* stack) {
    const GatedInfo& gi = info(id);
    const int n = nfixed(v) + gi.np();
    auto args = torch::jit::last(*stack, n);
    double p[kMaxParams] = {};
    read_params(gi, &args[nfixed(v)], p, op);
    std::vector<at::Tensor> outs;
    const bool first_active = gi.half == 0;
    auto order = [&](const at::Tensor& a, const at::Tensor& b) {
      return first_active ? std::make_pair(a, b) : std::make_pair(b, a);
    };
    switch (v) {
      case kFwd: {
        const at::Tensor self = args[0].toTensor();
        check_float(self, "self", op);
        const Split s = split(self, args[1].toInt(), gi, op);
        at::Tensor out = empty_like_pointwise(s.first);
        const auto [pp, qq] = order(s.first, s.second);
        if (!meta && !run_from_tables(gi, 0, {out}, {pp, qq}, p)) {
          run_loop(loop(id, 0, self.scalar_type()), {out}, {pp, qq}, p, gi.np(), kGatedGrain);
        }
        outs = {out};
        break;
      }
      case kBwd: {
        const at::Tensor g = args[0].toTensor(), self = args[1].toTensor();
        check_float(self, "self", op);
        const Split s = split(self, args[2].toInt(), gi, op);
        check_same(g, "grad_output", s.first, "half of self", op);
        at::Tensor grad = empty_like_pointwise(self);
        const auto [dp, dq] = order(grad.narrow_symint(s.dim, 0, s.half), grad.narrow_symint(s.dim, s.half, s.half));
        const auto [pp, qq] = order(s.first, s.second);
        if (!meta && !run_from_tables(gi, 1, {dp, dq}, {g, pp, qq}, p)) {
          run_loop(loop(id, 1, self.scalar_type()), {dp, dq}, {g, pp, qq}, p, gi.np(), kGatedGrain);
        }
        outs = {grad};
        break;
      }
      case kDbwd: {
        const at::Tensor gg = args[0].toTensor(), g = args[1].toTensor(), self = args[2].toTensor();
        check_float(self, "self", op);
        const Split s = split(self, args[3].toInt(), gi, op);
        check_same(g, "grad_output", s.first, "half of self", op);
        check_same(gg, "grad_grad", self, "self", op);
        at::Tensor dg = empty_like_pointwise(g), dself = empty_like_pointwise(self);
        const auto [dp, dq] =
            order(dself.narrow_symint(s.dim, 0, s.half), dself.narrow_symint(s.dim, s.half, s.half));
        const auto [ggp, ggq] = order(gg.narrow_symint(s.dim, 0, s.half), gg.narrow_symint(s.dim, s.half, s.half));
        const auto [pp, qq] = order(s.first, s.second);
        if (!meta) {
          run_loop(loop(id, 2, self.scalar_type()), {dg, dp, dq}, {ggp, ggq, g, pp, qq}, p, gi.np(), kGatedGrain);
        }
        outs = {dg, dself};
        break;
      }
      case kPairFwd: {
        const at::Tensor gate = args[0].toTensor(), up = args[1].toTensor();
        check_float(gate, "gate", op);
        check_same(up, "up", gate, "gate", op);
        at::Tensor out = empty_like_pointwise(gate);
        if (!meta && !run_from_tables(gi, 0, {out}, {gate, up}, p)) {
          run_loop(loop(id, 0, gate.scalar_type()), {out}, {gate, up}, p, gi.np(), kGatedGrain);
        }
        outs = {out};
        break;
      }
      case kPairBwd: {
        const at::Tensor g = args[0].toTensor(), gate = args[1].toTensor(), up = args[2].toTensor();
        check_float(gate, "gate", op);
        check_same(up, "up", gate, "gate", op);
        check_same(g, "grad_output", gate, "gate", op);
        at::Tensor dgate = empty_like_pointwise(gate), dup = empty_like_pointwise(up);
        if (!meta && !run_from_tables(gi, 1, {dgate, dup}, {g, gate, up}, p)) {
          run_loop(loop(id, 1, gate.scalar_type()), {dgate, dup}, {g, gate, up}, p, gi.np(), kGatedGrain);
        }
        outs = {dgate, dup};
        break;
      }
      case kPairDbwd: {
        const auto ggg = args[0].toOptional<at::Tensor>(), ggu = args[1].toOptional<at::Tensor>();
        const at::Tensor g = args[2].toTensor(), gate = args[3].toTensor(), up = args[4].toTensor();
        check_float(gate, "gate", op);
        check_same(up, "up", gate, "gate", op);
        check_same(g, "grad_output", gate, "gate", op);
        if (ggg && ggg->defined()) check_same(*ggg, "grad_grad_gate", gate, "gate", op);
        if (ggu && ggu->defined()) check_same(*ggu, "grad_grad_up", gate, "gate", op);
        at::Tensor dg = empty_like_pointwise(g), dgate = empty_like_pointwise(gate), dup = empty_like_pointwise(up);
        if (!meta) {
          // An absent grad_grad is zero: a broadcast scalar, nothing allocated.
          const at::Tensor zero = at::zeros({}, gate.options()).expand(gate.sizes());
          run_loop(loop(id, 2, gate.scalar_type()), {dg, dgate, dup},
                   {ggg && ggg->defined() ? *ggg : zero, ggu && ggu->defined() ? *ggu : zero, g, gate, up}, p,
                   gi.np(), kGatedGrain);
        }
        outs = {dg, dgate, dup};
        break;
      }
      default:
        TORCH_INTERNAL_ASSERT(false);
    }
    torch::jit::drop(*stack, n);
    for (auto& o : outs) stack->emplace_back(std::move(o));
  }
};

// ---------------------------------------------------------------- autograd ---
std::vector<c10::IValue> tail(const std::vector<c10::IValue>& args, int from) {
  return std::vector<c10::IValue>(args.begin() + from, args.end());
}

Stack call(GatedOpId id, Variant v, std::vector<c10::IValue> st) {
  handle(id, v).callBoxed(st);
  return st;
}

std::string node_name(GatedOpId id, const char* suffix) {
  return "torch_activations::" + camel_case(info(id).name) + suffix;
}

// grad of foo / foo.pair: saves the inputs only.
struct GatedBackward final : Node {
  GatedOpId id;
  bool pair;
  std::vector<c10::IValue> extra;  // dim (split form) and the op's parameters
  SavedVariable a, b;              // self, or gate and up
  GatedBackward(GatedOpId i, bool p, std::vector<c10::IValue> e) : id(i), pair(p), extra(std::move(e)) {}
  variable_list apply(variable_list&& grads) override {
    const int nout = pair ? 2 : 1;
    variable_list out(nout);
    if (!grads[0].defined()) return out;
    std::vector<c10::IValue> st{grads[0], a.unpack(getptr())};
    if (pair) st.emplace_back(b.unpack(getptr()));
    st.insert(st.end(), extra.begin(), extra.end());
    Stack r = call(id, pair ? kPairBwd : kBwd, std::move(st));
    for (int i = 0; i < nout; ++i)
      if (task_should_compute_output(i)) out[i] = r[i].toTensor();
    return out;
  }
  void release_variables() override {
    a.reset_data();
    b.reset_data();
  }
  std::string name() const override { return node_name(id, "Backward"); }
};

// grad of foo_backward / foo_backward.pair.
struct GatedDoubleBackward final : Node {
  GatedOpId id;
  bool pair;
  std::vector<c10::IValue> extra;
  SavedVariable g, a, b;
  GatedDoubleBackward(GatedOpId i, bool p, std::vector<c10::IValue> e) : id(i), pair(p), extra(std::move(e)) {}
  variable_list apply(variable_list&& grads) override {
    const int nout = pair ? 3 : 2;
    variable_list out(nout);
    auto opt = [](const at::Tensor& t) { return t.defined() ? c10::IValue(t) : c10::IValue(); };
    std::vector<c10::IValue> st;
    if (pair) {
      if (!grads[0].defined() && !grads[1].defined()) return out;
      st = {opt(grads[0]), opt(grads[1]), g.unpack(), a.unpack(), b.unpack()};
    } else {
      if (!grads[0].defined()) return out;
      st = {grads[0], g.unpack(), a.unpack()};
    }
    st.insert(st.end(), extra.begin(), extra.end());
    Stack r = call(id, pair ? kPairDbwd : kDbwd, std::move(st));
    for (int i = 0; i < nout; ++i)
      if (task_should_compute_output(i)) out[i] = r[i].toTensor();
    return out;
  }
  void release_variables() override {
    g.reset_data();
    a.reset_data();
    b.reset_data();
  }
  std::string name() const override { return node_name(id, "BackwardBackward"); }
};

c10::IValue opt(const at::Tensor& t) { return t.defined() ? c10::IValue(t) : c10::IValue(); }
at::Tensor sum_defined(const at::Tensor& a, const at::Tensor& b) { return a.defined() ? (b.defined() ? a + b : a) : b; }

// Forward-mode derivatives from the double backward op, which is the
// vector-Jacobian product of the backward. Its first output, d/dg, does not
// depend on g and is the forward's Jacobian applied to (grad_grad_gate,
// grad_grad_up): the forward's tangent, with zero for g. The backward is the
// gradient of g . f(p) q with respect to (p, q), so its Jacobian in (p, q) is
// a symmetric Hessian and its tangent is the double backward's (d/dp, d/dq)
// for the tangents of (p, q), plus the backward of g's tangent (it is linear
// in g).
std::vector<at::Tensor> forward_tangents(GatedOpId id, Variant v, const std::vector<at::Tensor>& p,
                                         const std::vector<at::Tensor>& t, const std::vector<c10::IValue>& extra,
                                         const std::vector<at::Tensor>& outs) {
  auto with_extra = [&](std::vector<c10::IValue> st) {
    st.insert(st.end(), extra.begin(), extra.end());
    return st;
  };
  const at::Tensor zero_g = at::zeros({}, outs[0].options()).expand(outs[0].sizes());
  switch (v) {
    case kFwd:
      return {call(id, kDbwd, with_extra({t[0], zero_g, p[0]}))[0].toTensor()};
    case kPairFwd:
      return {call(id, kPairDbwd, with_extra({opt(t[0]), opt(t[1]), zero_g, p[0], p[1]}))[0].toTensor()};
    case kBwd: {
      at::Tensor r;
      if (t[1].defined()) r = call(id, kDbwd, with_extra({t[1], p[0], p[1]}))[1].toTensor();
      if (t[0].defined()) r = sum_defined(r, call(id, kBwd, with_extra({t[0], p[1]}))[0].toTensor());
      return {r};
    }
    case kPairBwd: {
      at::Tensor r0, r1;
      if (t[1].defined() || t[2].defined()) {
        Stack r = call(id, kPairDbwd, with_extra({opt(t[1]), opt(t[2]), p[0], p[1], p[2]}));
        r0 = r[1].toTensor();
        r1 = r[2].toTensor();
      }
      if (t[0].defined()) {
        Stack r = call(id, kPairBwd, with_extra({t[0], p[1], p[2]}));
        r0 = sum_defined(r0, r[0].toTensor());
        r1 = sum_defined(r1, r[1].toTensor());
      }
      return {r0, r1};
    }
    default:
      TORCH_INTERNAL_ASSERT(false, "no forward-mode rule for this variant");
  }
}

struct GatedAutograd final : c10::OperatorKernel {
  GatedOpId id;
  Variant v;
  GatedAutograd(GatedOpId i, Variant v_) : id(i), v(v_) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, Stack* stack) {
    const GatedInfo& gi = info(id);
    const int n = nfixed(v) + gi.np();
    const std::vector<c10::IValue> args(stack->end() - n, stack->end());
    const bool pair = is_pair(v);
    const bool bwd = v == kBwd || v == kPairBwd;
    // Tensors that can receive a gradient: (self) / (gate, up) / (g, self) / (g, gate, up).
    const int nt = (pair ? 2 : 1) + (bwd ? 1 : 0);
    std::vector<at::Tensor> ts;
    for (int i = 0; i < nt; ++i) ts.push_back(args[i].toTensor());
    std::vector<at::Tensor> tangents;
    bool need = false, forward_ad = false;
    for (const auto& t : ts) {
      need |= torch::autograd::compute_requires_grad(t);
      tangents.push_back(fw_grad(t));
      forward_ad |= tangents.back().defined();
    }
    if (!need && !forward_ad) {
      return redispatch_below(op, ks, stack);
    }
    const std::vector<c10::IValue> extra = tail(args, nt);
    std::vector<at::Tensor> primals;
    if (forward_ad)
      for (const auto& t : ts) primals.push_back(t._fw_primal(0));
    c10::intrusive_ptr<Node> node;
    if (need && !bwd) {
      auto nd = c10::make_intrusive<GatedBackward>(id, pair, extra);
      nd->a = SavedVariable(ts[0], false);
      if (pair) nd->b = SavedVariable(ts[1], false);
      node = nd;
    } else if (need) {
      auto nd = c10::make_intrusive<GatedDoubleBackward>(id, pair, extra);
      nd->g = SavedVariable(ts[0], false);
      nd->a = SavedVariable(ts[1], false);
      if (pair) nd->b = SavedVariable(ts[2], false);
      node = nd;
    }
    if (node) node->set_next_edges(torch::autograd::collect_next_edges(ts));
    redispatch_below(op, ks, stack);
    const int nout = (v == kPairBwd) ? 2 : 1;
    std::vector<at::Tensor> outs;
    for (int i = 0; i < nout; ++i) outs.push_back(torch::jit::peek(*stack, i, nout).toTensor());
    if (node) torch::autograd::set_history(outs, node);
    if (forward_ad) {
      const std::vector<at::Tensor> t = forward_tangents(id, v, primals, tangents, extra, outs);
      for (int i = 0; i < nout; ++i)
        if (t[i].defined()) outs[i]._set_fw_grad(t[i], 0, false);
    }
  }
};

template <class K, class... A>
torch::CppFunction boxed(A... a) {
  return torch::CppFunction::makeFromBoxedFunctor(std::make_unique<K>(a...));
}

std::string impl_name(const GatedInfo& gi, Variant v) {
  return gi.name + kSuffix[v] + (is_pair(v) ? ".pair" : "");
}

void register_kernels(torch::Library& m, bool meta) {
  for (const auto& gi : infos()) {
    for (int v = 0; v < kNumVariants; ++v) {
      const auto var = static_cast<Variant>(v);
      if (is_pair(var) && !gi.pair) continue;
      m.impl(impl_name(gi, var).c_str(), boxed<GatedKernel>(gi.id, var, meta));
    }
  }
}

}  // namespace
}  // namespace ta

TORCH_LIBRARY_FRAGMENT(torch_activations, m) {
  for (const auto& gi : ta::infos()) {
    const std::string& n = gi.name;
    m.def((n + "(Tensor self, int dim=-1" + gi.decl_defaults + ") -> Tensor").c_str());
    m.def((n + "_backward(Tensor grad_output, Tensor self, int dim" + gi.decl + ") -> Tensor").c_str());
    m.def((n + "_double_backward(Tensor grad_grad, Tensor grad_output, Tensor self, int dim" + gi.decl +
           ") -> (Tensor, Tensor)")
              .c_str());
    if (!gi.pair) continue;
    m.def((n + ".pair(Tensor gate, Tensor up" + gi.decl_defaults + ") -> Tensor").c_str());
    m.def((n + "_backward.pair(Tensor grad_output, Tensor gate, Tensor up" + gi.decl + ") -> (Tensor, Tensor)")
              .c_str());
    m.def((n + "_double_backward.pair(Tensor? grad_grad_gate, Tensor? grad_grad_up, Tensor grad_output, Tensor gate, "
               "Tensor up" +
           gi.decl + ") -> (Tensor, Tensor, Tensor)")
              .c_str());
  }
}

TORCH_LIBRARY_IMPL(torch_activations, CPU, m) { ta::register_kernels(m, false); }
TORCH_LIBRARY_IMPL(torch_activations, Meta, m) { ta::register_kernels(m, true); }

TORCH_LIBRARY_IMPL(torch_activations, Autograd, m) {
  using namespace ta;
  for (const auto& gi : infos()) {
    for (int v = 0; v < kNumVariants; ++v) {
      const auto var = static_cast<Variant>(v);
      if (is_pair(var) && !gi.pair) continue;
      if (var == kDbwd || var == kPairDbwd) {
        m.impl(impl_name(gi, var).c_str(), torch::autograd::autogradNotImplementedFallback());
      } else {
        m.impl(impl_name(gi, var).c_str(), boxed<GatedAutograd>(gi.id, var));
      }
    }
  }
}
