// Losses computed from logits in one fused pass.
//
//   cross_entropy(Tensor self, Tensor target, Tensor? weight=None, int reduction=1, int ignore_index=-100,
//                 float label_smoothing=0.0) -> (Tensor, Tensor)
//     returns the loss and the per-row statistics the backward needs, stats[0] = row max and
//     stats[1] = log sum exp(x - max), shape (2, *rows), float (double for float64 input).
//   cross_entropy_backward(Tensor grad_output, Tensor self, Tensor target, Tensor? weight, int reduction,
//                          int ignore_index, float label_smoothing, Tensor stats, bool[2] output_mask)
//     -> (Tensor, Tensor)                        gradients of self and (probability) target
//   cross_entropy_double_backward(..., bool[3] output_mask) -> (Tensor, Tensor, Tensor)
//   binary_cross_entropy_with_logits(Tensor self, Tensor target, Tensor? weight=None,
//                                    Tensor? pos_weight=None, int reduction=1) -> Tensor
//   binary_cross_entropy_with_logits_backward / _double_backward likewise.
// reduction: 0 none, 1 mean, 2 sum (ATen's Reduction). A gradient not asked
// for in output_mask comes back as an empty tensor of shape [0].
//
// Memory: cross_entropy keeps no probability tensor. The forward reads the
// logits once and saves only the two statistics per row (plus its inputs);
// the backward recomputes softmax from them while writing the one gradient
// buffer. The double backward, rarely used, is composed of ATen ops.
#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>
#include <torch/csrc/autograd/VariableTypeUtils.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

#include <cmath>
#include <limits>

#include "layout.h"
#include "nonpointwise.h"

namespace ta {
namespace {

using torch::autograd::Node;
using torch::autograd::SavedVariable;
using torch::autograd::variable_list;
using Stack = torch::jit::Stack;

constexpr int64_t kNone = 0, kMean = 1, kSum = 2;

void check_reduction(int64_t r, const std::string& op) {
  TORCH_CHECK(r == kNone || r == kMean || r == kSum, op, ": reduction must be 0 (none), 1 (mean) or 2 (sum), got ",
              r);
}

at::Tensor empty0(const at::Tensor& like) { return at::empty({0}, like.options()); }

// ============================================================ cross entropy ===
struct CeArgs {
  at::Tensor x, target;
  std::optional<at::Tensor> weight;
  int64_t reduction, ignore;
  double eps;
  // Derived.
  int64_t cd;  // class dimension
  bool prob;
  std::vector<c10::SymInt> rows;  // x's shape without the class dimension
};

CeArgs ce_args(const c10::IValue* a, const std::string& op) {
  CeArgs c;
  c.x = a[0].toTensor();
  c.target = a[1].toTensor();
  c.weight = a[2].toOptional<at::Tensor>();
  if (c.weight && !c.weight->defined()) c.weight.reset();
  c.reduction = a[3].toInt();
  c.ignore = a[4].toInt();
  c.eps = a[5].toDouble();
  const at::Tensor& x = c.x;
  check_float(x, "self", op);
  check_reduction(c.reduction, op);
  TORCH_CHECK(x.dim() >= 1, op, ": Expected 1 or more dimensions (got ", x.dim(), ")");
  TORCH_CHECK(c.eps >= 0.0 && c.eps <= 1.0, op, ": label_smoothing must be between 0.0 and 1.0. Got: ", c.eps);
  c.cd = x.dim() == 1 ? 0 : 1;
  const c10::SymInt classes = x.sym_size(c.cd);
  for (int64_t d = 0; d < x.dim(); ++d)
    if (d != c.cd) c.rows.push_back(x.sym_size(d));
  const at::Tensor& t = c.target;
  TORCH_CHECK(t.layout() == at::kStrided, op, ": expected a strided tensor for 'target'");
  TORCH_CHECK(t.device() == x.device(), op, ": 'target' is on ", t.device(), " but 'self' is on ", x.device());
  c.prob = t.sym_sizes() == x.sym_sizes();
  if (c.prob) {
    TORCH_CHECK(at::isFloatingType(t.scalar_type()), op,
                ": Expected floating point type for target with class probabilities, got ", t.scalar_type());
    TORCH_CHECK(t.scalar_type() == x.scalar_type(), op, ": expected target probabilities of dtype ", x.scalar_type(),
                " like the input, got ", t.scalar_type());
  } else {
    TORCH_CHECK(t.scalar_type() == at::kLong || t.scalar_type() == at::kByte, op,
                ": expected target dtype to be Long or Byte, but got ", t.scalar_type());
    if (x.dim() == 1) {
      TORCH_CHECK(t.dim() <= 1, op, ": 0D or 1D target tensor expected, multi-target not supported");
      TORCH_CHECK(t.dim() == 0 || t.sym_size(0) == 1, op,
                  ": For 1D input, 1D target must have size 1, but got target size: ", t.sym_size(0));
    } else {
      TORCH_CHECK(t.dim() >= 1 && t.sym_size(0) == x.sym_size(0), op, ": Expected input batch_size (", x.sym_size(0),
                  ") to match target batch_size (", t.dim() >= 1 ? t.sym_size(0) : c10::SymInt(0), ").");
      TORCH_CHECK(t.sym_sizes() == c10::SymIntArrayRef(c.rows), op, ": Expected target size ",
                  c10::SymIntArrayRef(c.rows), ", got ", t.sym_sizes());
    }
  }
  if (c.weight) {
    const at::Tensor& w = *c.weight;
    TORCH_CHECK(w.dim() == 1 && w.sym_numel() == classes, op, ": weight tensor should be defined either for all ",
                classes, " classes or no classes but got weight tensor of shape: ", w.sym_sizes());
    TORCH_CHECK(w.scalar_type() == x.scalar_type(), op, ": expected weight of dtype ", x.scalar_type(),
                " like the input, got ", w.scalar_type());
    TORCH_CHECK(w.device() == x.device(), op, ": 'weight' is on ", w.device(), " but 'self' is on ", x.device());
  }
  return c;
}

// Per-class weights in the compute type (ones without a weight), their sum,
// and for class-index targets the validated int64 targets, one per row, and
// the mean's denominator sum(w[t]) over rows not ignored.
struct CePrepared {
  at::Tensor w;
  double sum_w = 0;
  at::Tensor tidx;  // rows shape, int64, contiguous
  double denom = 0;
};

CePrepared ce_prepare(const CeArgs& c, const std::string& op) {
  CePrepared p;
  const int64_t classes = c.x.size(c.cd);
  const at::ScalarType ct = compute_dtype(c.x.scalar_type());
  if (c.weight) {
    p.w = c.weight->to(ct).contiguous();
    p.sum_w = deterministic_sum(p.w);
  } else {
    // The default weight is all ones; it is kept per thread and class count
    // so that a small call does not allocate and fill it every time.
    static thread_local at::Tensor ones[2];
    at::Tensor& w = ones[ct == at::kDouble ? 1 : 0];
    if (!w.defined() || w.numel() != classes) w = at::ones({classes}, at::TensorOptions().dtype(ct));
    p.w = w;
    p.sum_w = static_cast<double>(classes);
  }
  std::vector<int64_t> rows;
  for (const auto& s : c.rows) rows.push_back(s.expect_int());
  int64_t nrows = 1;
  for (const int64_t r : rows) nrows *= r;
  if (c.prob) {
    p.denom = static_cast<double>(nrows);
    return p;
  }
  p.tidx = c.target.to(at::kLong).contiguous();
  if (!p.tidx.sizes().equals(rows)) p.tidx = p.tidx.view(rows);
  const int64_t* t = p.tidx.const_data_ptr<int64_t>();
  double denom = 0;
  auto add_weights = [&](const auto* w) {
    for (int64_t i = 0; i < nrows; ++i) {
      if (t[i] == c.ignore) continue;
      TORCH_CHECK_INDEX(t[i] >= 0 && t[i] < classes, op, ": Target ", t[i], " is out of bounds.");
      denom += static_cast<double>(w[t[i]]);
    }
  };
  if (ct == at::kDouble) add_weights(p.w.const_data_ptr<double>()); else add_weights(p.w.const_data_ptr<float>());
  p.denom = denom;
  return p;
}

at::Tensor unsq(const at::Tensor& t, int64_t cd) { return t.unsqueeze(cd); }

at::Tensor stats_like(const CeArgs& c) {
  std::vector<c10::SymInt> shape{2};
  shape.insert(shape.end(), c.rows.begin(), c.rows.end());
  return at::empty_symint(shape, c.x.options().dtype(compute_dtype(c.x.scalar_type())));
}

struct CeForwardKernel final : c10::OperatorKernel {
  bool meta;
  explicit CeForwardKernel(bool m) : meta(m) {}
  void operator()(const c10::OperatorHandle&, c10::DispatchKeySet, Stack* stack) {
    const std::string op = "torch_activations::cross_entropy";
    auto args = torch::jit::last(*stack, 6);
    const CeArgs c = ce_args(args.data(), op);
    const at::Tensor& x = c.x;
    at::Tensor loss = c.reduction == kNone ? at::empty_symint(c.rows, x.options()) : at::empty({}, x.options());
    at::Tensor stats = stats_like(c);
    if (!meta) {
      const CePrepared pr = ce_prepare(c, op);
      const int64_t classes = x.size(c.cd);
      const at::ScalarType ct = compute_dtype(x.scalar_type());
      at::Tensor per_row = at::empty_symint(c.rows, x.options().dtype(ct));
      if (per_row.numel() > 0) {
        if (classes == 0) {
          // No classes: nothing to predict, a zero loss (all targets are
          // ignored, or the bounds check above has failed).
          per_row.zero_();
          stats.fill_(-std::numeric_limits<double>::infinity());
        } else {
          const double params[3] = {static_cast<double>(c.ignore), c.eps, pr.sum_w};
          const auto kind = c.prob ? cpu::CeFwd::Prob : (c.eps > 0 ? cpu::CeFwd::IndexSmooth : cpu::CeFwd::Index);
          const cpu::RowLoop fn = cpu::row_kernels().ce_fwd[static_cast<int>(kind)][dtype_index(x.scalar_type())];
          RowOperand tgt = c.prob ? RowOperand{c.target, true} : RowOperand{pr.tidx, false, true};
          run_rows(fn, c.cd, classes, {{per_row, false, true}, {stats, false, true, 0}, {stats, false, true, 1}},
                   {{x, true}, tgt}, pr.w.const_data_ptr(), params);
        }
      }
      if (c.reduction == kNone) {
        loss.copy_(per_row);
      } else {
        const double s = deterministic_sum(per_row.contiguous());
        // Mean: over the weights of the rows not ignored (class indices) or
        // over the rows (probabilities); 0/0 is NaN, as in PyTorch.
        loss.fill_(c.reduction == kSum ? s : s / pr.denom);
      }
    }
    torch::jit::drop(*stack, 6);
    stack->emplace_back(std::move(loss));
    stack->emplace_back(std::move(stats));
  }
};

void check_stats(const CeArgs& c, const at::Tensor& stats, const std::string& op) {
  std::vector<c10::SymInt> shape{2};
  shape.insert(shape.end(), c.rows.begin(), c.rows.end());
  TORCH_CHECK(stats.sym_sizes() == c10::SymIntArrayRef(shape) &&
                  stats.scalar_type() == compute_dtype(c.x.scalar_type()),
              op, ": 'stats' must be the statistics cross_entropy returned, of shape ", c10::SymIntArrayRef(shape),
              " and dtype ", compute_dtype(c.x.scalar_type()), "; got ", stats.sym_sizes(), " ", stats.scalar_type());
  TORCH_CHECK(stats.device() == c.x.device(), op, ": 'stats' is on ", stats.device(), " but 'self' is on ",
              c.x.device());
}

void check_grad_output(const CeArgs& c, const at::Tensor& go, const std::string& op) {
  if (c.reduction == kNone) {
    TORCH_CHECK(go.sym_sizes() == c10::SymIntArrayRef(c.rows), op, ": 'grad_output' has shape ", go.sym_sizes(),
                " but the loss has shape ", c10::SymIntArrayRef(c.rows));
  } else {
    TORCH_CHECK(go.dim() == 0, op, ": 'grad_output' of a reduced loss must be a scalar, got shape ", go.sym_sizes());
  }
  check_float(go, "grad_output", op);
  // A meta grad_output among CPU tensors would send the call to the CPU
  // kernel, which would read memory the meta tensor does not have.
  TORCH_CHECK(go.scalar_type() == c.x.scalar_type(), op, ": 'grad_output' has dtype ", go.scalar_type(),
              " but 'self' has dtype ", c.x.scalar_type());
  TORCH_CHECK(go.device() == c.x.device(), op, ": 'grad_output' is on ", go.device(), " but 'self' is on ",
              c.x.device());
}

// The factor each row's gradient is scaled by, one per row (no class
// dimension).
at::Tensor row_scale(const CeArgs& c, const at::Tensor& go, double denom) {
  const at::ScalarType ct = compute_dtype(c.x.scalar_type());
  if (c.reduction == kNone) return go.to(ct);
  // One number for every row: go (exact in double), divided by the
  // denominator in double for the mean, rounded once to the compute type.
  // The rounding is done here because fill refuses a finite double beyond
  // float's range, where the rounding gives inf.
  double v = go.item<double>();
  if (c.reduction == kMean) v /= denom;
  if (ct != at::kDouble) v = static_cast<float>(v);
  const at::Tensor u = at::scalar_tensor(v, go.options().dtype(ct));
  std::vector<int64_t> shape;
  for (const auto& s : c.rows) shape.push_back(s.expect_int());
  return u.expand(shape);
}

struct CeBackwardKernel final : c10::OperatorKernel {
  bool meta;
  explicit CeBackwardKernel(bool m) : meta(m) {}
  void operator()(const c10::OperatorHandle&, c10::DispatchKeySet, Stack* stack) {
    const std::string op = "torch_activations::cross_entropy_backward";
    auto args = torch::jit::last(*stack, 9);
    const at::Tensor go = args[0].toTensor();
    const CeArgs c = ce_args(&args[1], op);
    const at::Tensor stats = args[7].toTensor();
    const auto mask = args[8].toBoolList();
    check_grad_output(c, go, op);
    check_stats(c, stats, op);
    const bool want_t = mask[1] && c.prob;
    at::Tensor dx = (mask[0] || want_t) ? empty_like_pointwise(c.x) : empty0(c.x);
    at::Tensor dt = want_t ? empty_like_pointwise(c.target) : empty0(c.x);
    if (!meta && dx.numel() > 0) {
      const CePrepared pr = ce_prepare(c, op);
      const double params[3] = {static_cast<double>(c.ignore), c.eps, pr.sum_w};
      const auto kind = !c.prob ? cpu::CeBwd::Index : (want_t ? cpu::CeBwd::ProbTarget : cpu::CeBwd::Prob);
      const cpu::RowLoop fn = cpu::row_kernels().ce_bwd[static_cast<int>(kind)][dtype_index(c.x.scalar_type())];
      std::vector<RowOperand> outs{{dx, true}};
      if (want_t) outs.push_back({dt, true});
      RowOperand tgt = c.prob ? RowOperand{c.target, true} : RowOperand{pr.tidx, false, true};
      run_rows(fn, c.cd, c.x.size(c.cd), outs,
               {{c.x, true}, tgt, {stats, false, true, 0}, {stats, false, true, 1},
                {row_scale(c, go, pr.denom), false, true}},
               pr.w.const_data_ptr(), params);
    }
    if (!mask[0]) dx = empty0(c.x);
    torch::jit::drop(*stack, 9);
    stack->emplace_back(std::move(dx));
    stack->emplace_back(std::move(dt));
  }
};

// The derivative of the backward, in the compute type with ATen ops. With
// q and s = sum(q) per row, p = softmax(x), u the row's scale:
//   dx_c = u (s p_c - q_c),   dt_c = -u (1 - e) w_c log p_c   (probabilities)
// and for incoming gradients G (of dx) and H (of dt):
//   d u   = sum_c G (s p - q) - (1 - e) sum_c H w log p
//   d x_c = u s p_c (G_c - sum G p) - u (1 - e) (H_c w_c - p_c sum H w)
//   d t_c = u (1 - e) w_c (sum G p - G_c)
struct CeDoubleBackwardKernel final : c10::OperatorKernel {
  bool meta;
  explicit CeDoubleBackwardKernel(bool m) : meta(m) {}
  void operator()(const c10::OperatorHandle&, c10::DispatchKeySet, Stack* stack) {
    const std::string op = "torch_activations::cross_entropy_double_backward";
    auto args = torch::jit::last(*stack, 11);
    const at::Tensor gg = args[0].toTensor();
    const auto ggt = args[1].toOptional<at::Tensor>();
    const at::Tensor go = args[2].toTensor();
    const CeArgs c = ce_args(&args[3], op);
    const at::Tensor stats = args[9].toTensor();
    const auto mask = args[10].toBoolList();
    check_grad_output(c, go, op);
    check_stats(c, stats, op);
    check_float(gg, "grad_grad_self", op);
    check_same(gg, "grad_grad_self", c.x, "self", op);
    const bool has_h = ggt && ggt->defined() && c.prob;
    if (has_h) {
      check_float(*ggt, "grad_grad_target", op);
      check_same(*ggt, "grad_grad_target", c.x, "self", op);
    }
    at::Tensor dgo = mask[0] ? at::empty_symint(go.sym_sizes(), go.options()) : empty0(go);
    at::Tensor dx = mask[1] ? empty_like_pointwise(c.x) : empty0(c.x);
    at::Tensor dt = (mask[2] && c.prob) ? empty_like_pointwise(c.target) : empty0(c.x);
    if (!meta && c.x.numel() > 0) {
      const CePrepared pr = ce_prepare(c, op);
      const at::ScalarType ct = compute_dtype(c.x.scalar_type());
      const int64_t cd = c.cd, classes = c.x.size(cd);
      std::vector<int64_t> wshape(c.x.dim(), 1);
      wshape[cd] = classes;
      const at::Tensor w = pr.w.view(wshape);
      const at::Tensor lp = (c.x.to(ct) - unsq(stats[0], cd)) - unsq(stats[1], cd);
      const at::Tensor p = lp.exp();
      const double keep = 1.0 - c.eps, spread = c.eps / static_cast<double>(classes);
      at::Tensor q, valid;
      if (c.prob) {
        q = w * (c.target.to(ct) * keep + spread);
      } else {
        valid = unsq(pr.tidx != c.ignore, cd);
        const at::Tensor tsafe = unsq(at::where(pr.tidx != c.ignore, pr.tidx, 0), cd);
        const at::Tensor wt = pr.w.index_select(0, tsafe.flatten()).view(tsafe.sizes());
        q = at::zeros_like(p).scatter_(cd, tsafe, wt * keep) + w * spread;
        q = at::where(valid, q, 0);
      }
      const at::Tensor s = q.sum(cd, true);
      at::Tensor u = go.to(ct);
      if (c.reduction == kMean) u = (go.to(at::kDouble) / pr.denom).to(ct);
      if (c.reduction == kNone) u = unsq(u, cd);
      const at::Tensor G = gg.to(ct);
      at::Tensor B = s * p - q;
      if (valid.defined()) B = at::where(valid, B, 0);
      at::Tensor du = (G * B).sum(cd);
      const at::Tensor gp = (G * p).sum(cd, true);
      at::Tensor ddx = u * s * p * (G - gp);
      if (has_h) {
        const at::Tensor hw = ggt->to(ct) * w;
        du = du - keep * (hw * lp).sum(cd);
        ddx = ddx - u * keep * (hw - p * hw.sum(cd, true));
      }
      if (valid.defined()) ddx = at::where(valid, ddx, 0);
      if (mask[0]) {
        if (c.reduction == kNone) {
          dgo.copy_(du);
        } else {
          const double tot = deterministic_sum(du.contiguous());
          dgo.fill_(c.reduction == kSum ? tot : tot / pr.denom);
        }
      }
      if (mask[1]) dx.copy_(ddx);
      if (mask[2] && c.prob) dt.copy_(u * keep * w * (gp - G));
    } else if (!meta) {
      if (mask[0]) dgo.zero_();
    }
    torch::jit::drop(*stack, 11);
    stack->emplace_back(std::move(dgo));
    stack->emplace_back(std::move(dx));
    stack->emplace_back(std::move(dt));
  }
};

// ======================================= binary_cross_entropy_with_logits ===
struct BceArgs {
  at::Tensor x, target;
  std::optional<at::Tensor> weight, pos_weight;
  int64_t reduction;
};

BceArgs bce_args(const c10::IValue* a, const std::string& op) {
  BceArgs b;
  b.x = a[0].toTensor();
  b.target = a[1].toTensor();
  b.weight = a[2].toOptional<at::Tensor>();
  b.pos_weight = a[3].toOptional<at::Tensor>();
  if (b.weight && !b.weight->defined()) b.weight.reset();
  if (b.pos_weight && !b.pos_weight->defined()) b.pos_weight.reset();
  b.reduction = a[4].toInt();
  check_float(b.x, "self", op);
  check_reduction(b.reduction, op);
  TORCH_CHECK(b.target.sym_sizes() == b.x.sym_sizes(), op, ": Target size (", b.target.sym_sizes(),
              ") must be the same as input size (", b.x.sym_sizes(), ")");
  check_same(b.target, "target", b.x, "self", op);
  for (const auto* w : {&b.weight, &b.pos_weight}) {
    if (!*w) continue;
    const char* what = w == &b.weight ? "weight" : "pos_weight";
    TORCH_CHECK((*w)->scalar_type() == b.x.scalar_type(), op, ": expected ", what, " of dtype ", b.x.scalar_type(),
                " like the input, got ", (*w)->scalar_type());
    TORCH_CHECK((*w)->device() == b.x.device(), op, ": '", what, "' is on ", (*w)->device(), " but 'self' is on ",
                b.x.device());
    TORCH_CHECK(at::is_expandable_to((*w)->sym_sizes(), b.x.sym_sizes()), op, ": ", what, " of shape ",
                (*w)->sym_sizes(), " cannot be broadcast to the input's shape ", b.x.sym_sizes());
  }
  return b;
}

// weight / pos_weight broadcast to the input's shape (ones without one).
at::Tensor bce_broadcast(const std::optional<at::Tensor>& w, const at::Tensor& x) {
  if (w) return w->expand(x.sizes());
  return at::ones({}, x.options()).expand(x.sizes());
}

cpu::Loop bce_loop(int kind, bool pw, at::ScalarType st) {
  return cpu::row_kernels().bce[kind + (pw ? 3 : 0)][dtype_index(st)];
}

struct BceForwardKernel final : c10::OperatorKernel {
  bool meta;
  explicit BceForwardKernel(bool m) : meta(m) {}
  void operator()(const c10::OperatorHandle&, c10::DispatchKeySet, Stack* stack) {
    const std::string op = "torch_activations::binary_cross_entropy_with_logits";
    auto args = torch::jit::last(*stack, 5);
    const BceArgs b = bce_args(args.data(), op);
    const at::Tensor& x = b.x;
    at::Tensor loss = b.reduction == kNone ? empty_like_pointwise(x) : at::empty({}, x.options());
    if (!meta) {
      at::Tensor el = b.reduction == kNone ? loss : empty_like_pointwise(x);
      const bool pw = b.pos_weight.has_value();
      std::vector<at::Tensor> ins{x, b.target, bce_broadcast(b.weight, x)};
      if (pw) ins.push_back(bce_broadcast(b.pos_weight, x));
      if (x.numel() > 0) {
        at::TensorIteratorConfig config;
        config.set_check_mem_overlap(true).check_all_same_dtype(true).resize_outputs(false).add_output(el);
        for (const auto& t : ins) config.add_const_input(t);
        auto iter = config.build();
        const cpu::Loop fn = bce_loop(0, pw, x.scalar_type());
        iter.for_each([fn](char** d, const int64_t* s, int64_t n, int64_t rows) { fn(d, s, n, rows, nullptr); });
      }
      if (b.reduction != kNone) {
        const double s = deterministic_sum(el.to(compute_dtype(x.scalar_type())).contiguous());
        loss.fill_(b.reduction == kSum ? s : s / static_cast<double>(x.numel()));
      }
    }
    torch::jit::drop(*stack, 5);
    stack->emplace_back(std::move(loss));
  }
};

at::Tensor bce_scale(const BceArgs& b, const at::Tensor& go) {
  if (b.reduction == kNone) return go;
  at::Tensor u = go;
  if (b.reduction == kMean) u = (go.to(at::kDouble) / static_cast<double>(b.x.numel())).to(go.scalar_type());
  return u.expand(b.x.sizes());
}

void check_bce_grad(const BceArgs& b, const at::Tensor& go, const std::string& op) {
  if (b.reduction == kNone) {
    check_same(go, "grad_output", b.x, "self", op);
  } else {
    TORCH_CHECK(go.dim() == 0, op, ": 'grad_output' of a reduced loss must be a scalar, got shape ", go.sym_sizes());
    TORCH_CHECK(go.scalar_type() == b.x.scalar_type(), op, ": 'grad_output' has dtype ", go.scalar_type(),
                " but 'self' has dtype ", b.x.scalar_type());
    TORCH_CHECK(go.device() == b.x.device(), op, ": 'grad_output' is on ", go.device(), " but 'self' is on ",
                b.x.device());
  }
}

struct BceBackwardKernel final : c10::OperatorKernel {
  bool meta;
  explicit BceBackwardKernel(bool m) : meta(m) {}
  void operator()(const c10::OperatorHandle&, c10::DispatchKeySet, Stack* stack) {
    const std::string op = "torch_activations::binary_cross_entropy_with_logits_backward";
    auto args = torch::jit::last(*stack, 7);
    const at::Tensor go = args[0].toTensor();
    const BceArgs b = bce_args(&args[1], op);
    const auto mask = args[6].toBoolList();
    check_bce_grad(b, go, op);
    at::Tensor dx = empty_like_pointwise(b.x);
    at::Tensor dt = mask[1] ? empty_like_pointwise(b.target) : empty0(b.x);
    if (!meta && b.x.numel() > 0) {
      const bool pw = b.pos_weight.has_value();
      std::vector<at::Tensor> ins{bce_scale(b, go), b.x, b.target, bce_broadcast(b.weight, b.x)};
      if (pw) ins.push_back(bce_broadcast(b.pos_weight, b.x));
      at::TensorIteratorConfig config;
      config.set_check_mem_overlap(true).check_all_same_dtype(true).resize_outputs(false).add_output(dx);
      if (mask[1]) config.add_output(dt);
      for (const auto& t : ins) config.add_const_input(t);
      auto iter = config.build();
      const cpu::Loop fn = bce_loop(mask[1] ? 2 : 1, pw, b.x.scalar_type());
      iter.for_each([fn](char** d, const int64_t* s, int64_t n, int64_t rows) { fn(d, s, n, rows, nullptr); });
    }
    if (!mask[0]) dx = empty0(b.x);
    torch::jit::drop(*stack, 7);
    stack->emplace_back(std::move(dx));
    stack->emplace_back(std::move(dt));
  }
};

// With l = 1 + (pw - 1) t, s = sigmoid(x), sn = sigmoid(-x), the backward is
//   dx = u w (l s - pw t),   dt = u w (log sigmoid(-x) - pw log sigmoid(x))
// and its derivatives, for incoming G (of dx) and H (of dt):
//   d u = w (G (l s - pw t) + H (log sigmoid(-x) - pw log sigmoid(x)))
//   d x = u w (G l s sn - H (s + pw sn))
//   d t = u w G ((pw - 1) s - pw)
struct BceDoubleBackwardKernel final : c10::OperatorKernel {
  bool meta;
  explicit BceDoubleBackwardKernel(bool m) : meta(m) {}
  void operator()(const c10::OperatorHandle&, c10::DispatchKeySet, Stack* stack) {
    const std::string op = "torch_activations::binary_cross_entropy_with_logits_double_backward";
    auto args = torch::jit::last(*stack, 9);
    const at::Tensor gg = args[0].toTensor();
    const auto ggt = args[1].toOptional<at::Tensor>();
    const at::Tensor go = args[2].toTensor();
    const BceArgs b = bce_args(&args[3], op);
    const auto mask = args[8].toBoolList();
    check_bce_grad(b, go, op);
    check_same(gg, "grad_grad_self", b.x, "self", op);
    const bool has_h = ggt && ggt->defined();
    if (has_h) check_same(*ggt, "grad_grad_target", b.x, "self", op);
    at::Tensor dgo = mask[0] ? at::empty_symint(go.sym_sizes(), go.options()) : empty0(go);
    at::Tensor dx = mask[1] ? empty_like_pointwise(b.x) : empty0(b.x);
    at::Tensor dt = mask[2] ? empty_like_pointwise(b.target) : empty0(b.x);
    if (!meta) {
      const at::ScalarType ct = compute_dtype(b.x.scalar_type());
      const at::Tensor x = b.x.to(ct), t = b.target.to(ct);
      const at::Tensor w = bce_broadcast(b.weight, b.x).to(ct);
      const at::Tensor pw = bce_broadcast(b.pos_weight, b.x).to(ct);
      at::Tensor u = go.to(ct);
      if (b.reduction == kMean) u = (go.to(at::kDouble) / static_cast<double>(b.x.numel())).to(ct);
      const at::Tensor s = x.sigmoid(), sn = (-x).sigmoid(), l = (pw - 1) * t + 1;
      const at::Tensor G = gg.to(ct);
      at::Tensor du = w * G * (l * s - pw * t);
      at::Tensor ddx = u * w * G * l * s * sn;
      if (has_h) {
        const at::Tensor H = ggt->to(ct);
        du = du + w * H * (at::log_sigmoid(-x) - pw * at::log_sigmoid(x));
        ddx = ddx - u * w * H * (s + pw * sn);
      }
      if (mask[0]) {
        if (b.reduction == kNone) {
          dgo.copy_(du);
        } else {
          const double tot = du.numel() ? deterministic_sum(du.contiguous()) : 0.0;
          dgo.fill_(b.reduction == kSum ? tot : tot / static_cast<double>(b.x.numel()));
        }
      }
      if (mask[1]) dx.copy_(ddx);
      if (mask[2]) dt.copy_(u * w * G * ((pw - 1) * s - pw));
    }
    torch::jit::drop(*stack, 9);
    stack->emplace_back(std::move(dgo));
    stack->emplace_back(std::move(dx));
    stack->emplace_back(std::move(dt));
  }
};

// ================================================================ autograd ===
// Node of a loss: saves the forward's arguments (and cross_entropy's
// statistics); outputs are the gradients of self and target.
struct LossBackward final : Node {
  bool ce;  // cross_entropy, else binary_cross_entropy_with_logits
  std::vector<c10::IValue> rest;  // non-tensor arguments and optional weights
  SavedVariable x, target, stats;
  explicit LossBackward(bool c) : ce(c) {}
  variable_list apply(variable_list&& grads) override {
    variable_list out(2);
    if (!grads[0].defined()) return out;
    const bool m0 = task_should_compute_output(0), m1 = task_should_compute_output(1);
    if (!m0 && !m1) return out;
    Stack st{grads[0], x.unpack(), target.unpack()};
    st.insert(st.end(), rest.begin(), rest.end());
    if (ce) st.emplace_back(stats.unpack());
    st.emplace_back(c10::List<bool>({m0, m1}));
    static const auto ce_bwd = find_op("torch_activations::cross_entropy_backward");
    static const auto bce_bwd = find_op("torch_activations::binary_cross_entropy_with_logits_backward");
    (ce ? ce_bwd : bce_bwd).callBoxed(st);
    if (m0) out[0] = st[0].toTensor();
    if (m1) out[1] = st[1].toTensor();
    return out;
  }
  void release_variables() override {
    x.reset_data();
    target.reset_data();
    stats.reset_data();
  }
  std::string name() const override {
    return ce ? "torch_activations::CrossEntropyBackward" : "torch_activations::BinaryCrossEntropyWithLogitsBackward";
  }
};

// Node of a loss's backward: outputs are the gradients of grad_output, self
// and target.
struct LossDoubleBackward final : Node {
  bool ce;
  std::vector<c10::IValue> rest;
  SavedVariable go, x, target, stats;
  explicit LossDoubleBackward(bool c) : ce(c) {}
  variable_list apply(variable_list&& grads) override {
    variable_list out(3);
    if (!grads[0].defined() && !grads[1].defined()) return out;
    const bool m[3] = {task_should_compute_output(0), task_should_compute_output(1), task_should_compute_output(2)};
    const at::Tensor xs = x.unpack();
    at::Tensor gx = grads[0].defined() ? grads[0] : at::zeros_like(xs);
    Stack st{gx, grads[1].defined() ? c10::IValue(grads[1]) : c10::IValue(), go.unpack(), xs, target.unpack()};
    st.insert(st.end(), rest.begin(), rest.end());
    if (ce) st.emplace_back(stats.unpack());
    st.emplace_back(c10::List<bool>({m[0], m[1], m[2]}));
    static const auto ce_dbwd = find_op("torch_activations::cross_entropy_double_backward");
    static const auto bce_dbwd = find_op("torch_activations::binary_cross_entropy_with_logits_double_backward");
    (ce ? ce_dbwd : bce_dbwd).callBoxed(st);
    for (int i = 0; i < 3; ++i)
      if (m[i]) out[i] = st[i].toTensor();
    return out;
  }
  void release_variables() override {
    go.reset_data();
    x.reset_data();
    target.reset_data();
    stats.reset_data();
  }
  std::string name() const override {
    return ce ? "torch_activations::CrossEntropyBackwardBackward"
              : "torch_activations::BinaryCrossEntropyWithLogitsBackwardBackward";
  }
};

// Arguments: cross_entropy (self, target, weight, reduction, ignore_index,
// label_smoothing); bce (self, target, weight, pos_weight, reduction).
struct LossAutograd final : c10::OperatorKernel {
  bool ce;
  explicit LossAutograd(bool c) : ce(c) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, Stack* stack) {
    const int n = ce ? 6 : 5;
    const std::vector<c10::IValue> args(stack->end() - n, stack->end());
    const at::Tensor x = args[0].toTensor(), t = args[1].toTensor();
    const std::string name = op.schema().name();
    const auto w = args[2].toOptional<at::Tensor>();
    refuse_grad(w ? *w : at::Tensor(), "weight", name);
    if (!ce) {
      const auto pw = args[3].toOptional<at::Tensor>();
      refuse_grad(pw ? *pw : at::Tensor(), "pos_weight", name);
    }
    refuse_forward_ad({x, t}, name);
    if (!torch::autograd::compute_requires_grad(x, t)) return redispatch_below(op, ks, stack);
    auto node = c10::make_intrusive<LossBackward>(ce);
    node->set_next_edges(torch::autograd::collect_next_edges(x, t));
    node->rest.assign(args.begin() + 2, args.end());
    node->x = SavedVariable(x, false);
    node->target = SavedVariable(t, false);
    redispatch_below(op, ks, stack);
    const int nout = ce ? 2 : 1;
    const at::Tensor loss = torch::jit::peek(*stack, 0, nout).toTensor();
    torch::autograd::set_history(loss, node);
    // The statistics are not differentiable: the backward's derivative
    // already accounts for their dependence on self.
    if (ce) node->stats = SavedVariable(stack->back().toTensor(), false);
  }
};

// Arguments after grad_output: as the forward, then (cross_entropy) stats,
// then output_mask.
struct LossBackwardAutograd final : c10::OperatorKernel {
  bool ce;
  explicit LossBackwardAutograd(bool c) : ce(c) {}
  void operator()(const c10::OperatorHandle& op, c10::DispatchKeySet ks, Stack* stack) {
    const int n = ce ? 9 : 7;
    const std::vector<c10::IValue> args(stack->end() - n, stack->end());
    const at::Tensor go = args[0].toTensor(), x = args[1].toTensor(), t = args[2].toTensor();
    refuse_forward_ad({go, x, t}, op.schema().name());
    if (!torch::autograd::compute_requires_grad(go, x, t)) return redispatch_below(op, ks, stack);
    auto node = c10::make_intrusive<LossDoubleBackward>(ce);
    node->set_next_edges(torch::autograd::collect_next_edges(go, x, t));
    node->rest.assign(args.begin() + 3, args.begin() + (ce ? 7 : 6));
    node->go = SavedVariable(go, false);
    node->x = SavedVariable(x, false);
    node->target = SavedVariable(t, false);
    if (ce) node->stats = SavedVariable(args[7].toTensor(), false);
    redispatch_below(op, ks, stack);
    std::vector<at::Tensor> outs{torch::jit::peek(*stack, 0, 2).toTensor(), torch::jit::peek(*stack, 1, 2).toTensor()};
    torch::autograd::set_history(outs, node);
  }
};

template <class K, class... A>
torch::CppFunction boxed(A... a) {
  return torch::CppFunction::makeFromBoxedFunctor(std::make_unique<K>(a...));
}

void register_kernels(torch::Library& m, bool meta) {
  m.impl("cross_entropy", boxed<CeForwardKernel>(meta));
  m.impl("cross_entropy_backward", boxed<CeBackwardKernel>(meta));
  m.impl("cross_entropy_double_backward", boxed<CeDoubleBackwardKernel>(meta));
  m.impl("binary_cross_entropy_with_logits", boxed<BceForwardKernel>(meta));
  m.impl("binary_cross_entropy_with_logits_backward", boxed<BceBackwardKernel>(meta));
  m.impl("binary_cross_entropy_with_logits_double_backward", boxed<BceDoubleBackwardKernel>(meta));
}

}  // namespace
}  // namespace ta

TORCH_LIBRARY_FRAGMENT(torch_activations, m) {
  m.def(
      "cross_entropy(Tensor self, Tensor target, Tensor? weight=None, int reduction=1, int ignore_index=-100, "
      "float label_smoothing=0.0) -> (Tensor, Tensor)");
  m.def(
      "cross_entropy_backward(Tensor grad_output, Tensor self, Tensor target, Tensor? weight, int reduction, "
      "int ignore_index, float label_smoothing, Tensor stats, bool[2] output_mask) -> (Tensor, Tensor)");
  m.def(
      "cross_entropy_double_backward(Tensor grad_grad_self, Tensor? grad_grad_target, Tensor grad_output, "
      "Tensor self, Tensor target, Tensor? weight, int reduction, int ignore_index, float label_smoothing, "
      "Tensor stats, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  m.def(
      "binary_cross_entropy_with_logits(Tensor self, Tensor target, Tensor? weight=None, Tensor? pos_weight=None, "
      "int reduction=1) -> Tensor");
  m.def(
      "binary_cross_entropy_with_logits_backward(Tensor grad_output, Tensor self, Tensor target, Tensor? weight, "
      "Tensor? pos_weight, int reduction, bool[2] output_mask) -> (Tensor, Tensor)");
  m.def(
      "binary_cross_entropy_with_logits_double_backward(Tensor grad_grad_self, Tensor? grad_grad_target, "
      "Tensor grad_output, Tensor self, Tensor target, Tensor? weight, Tensor? pos_weight, int reduction, "
      "bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(torch_activations, CPU, m) { ta::register_kernels(m, false); }
TORCH_LIBRARY_IMPL(torch_activations, Meta, m) { ta::register_kernels(m, true); }

TORCH_LIBRARY_IMPL(torch_activations, Autograd, m) {
  using namespace ta;
  m.impl("cross_entropy", boxed<LossAutograd>(true));
  m.impl("cross_entropy_backward", boxed<LossBackwardAutograd>(true));
  m.impl("cross_entropy_double_backward", torch::autograd::autogradNotImplementedFallback());
  m.impl("binary_cross_entropy_with_logits", boxed<LossAutograd>(false));
  m.impl("binary_cross_entropy_with_logits_backward", boxed<LossBackwardAutograd>(false));
  m.impl("binary_cross_entropy_with_logits_double_backward", torch::autograd::autogradNotImplementedFallback());
}
