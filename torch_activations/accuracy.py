"""``python -m torch_activations check --accuracy``: ulp errors of every smooth
op, ours and PyTorch's built-in side by side, written to ACCURACY.md.

Inputs
  float32   both signs, every normal binade: a stride through all finite bit patterns
            with a random offset in each stride (``points`` per sign), plus
            every float32 within 2^12 patterns of each root of f', where the
            derivative is hardest; ``exhaustive`` takes all 2^32 patterns.
  bfloat16, float16   every finite value.
  float64   ``f64_points`` random bit patterns over the same range, plus points
            near the roots of f', against mpmath at 60 digits.
  rows      softmax / log_softmax of random rows at several scales and of rows
            with a dominant maximum (float64 against mpmath).

Error
  |ours - exact| / ulp(exact), ulp of the output dtype at the exact value
  (2^(e - p + 1) for exact in [2^e, 2^(e+1))). Where the exact result is a
  normal number of the output dtype this is the figure the bounds speak of.
  Where it is subnormal or zero the unit is the subnormal spacing (ulp of the
  smallest normal), reported separately; overflowing results must be inf.
  The exact value of float32 / bfloat16 / float16 results is the float64
  reference of reference.py (accurate to ~2^-45 relative, checked against
  mpmath by tests/test_accuracy.py), replaced by mpmath within the windows
  around roots of f', where a float64 formula cancels.
Backward
  d/dx is the backward op with grad_output = 1 (through autograd). sigmoid and
  tanh's backward ops take the saved OUTPUT y, so they are measured as
  functions of their own inputs (grad, y): exact y(1 - y) and 1 - y^2 of the
  rounded y, for ours and PyTorch's backward op alike.
"""
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as TF
from torch import Tensor

from . import functional as F
from .reference import REFERENCES

F32, F64, BF16, F16 = torch.float32, torch.float64, torch.bfloat16, torch.float16
MANT = {F32: 23, F64: 52, BF16: 7, F16: 10}
TAG = {F32: "float32", F64: "float64", BF16: "bfloat16", F16: "float16"}


# ------------------------------------------------------------------ mpmath ---
def _mp():
    import mpmath

    mpmath.mp.dps = 60
    return mpmath


def _mp_funcs():
    mp = _mp()
    sig = lambda x: 1 / (1 + mp.exp(-x))  # noqa: E731
    sp = lambda x: mp.log1p(mp.exp(x)) if x < 0 else x + mp.log1p(mp.exp(-x))  # noqa: E731
    # mpmath's erfc overflows a float for huge arguments, where Phi is 0 or 1
    # to far below any ulp (Phi(-1e4) ~ 1e-21714724).
    Phi = lambda x: (0 * x if x < -1e4 else 1 + 0 * x) if abs(x) > 1e4 else mp.erfc(-x / mp.sqrt(2)) / 2  # noqa: E731
    phi = lambda x: mp.exp(-x * x / 2) / mp.sqrt(2 * mp.pi)  # noqa: E731
    sa, ss = mp.mpf("1.6732632423543772848170429916717"), mp.mpf("1.0507009873554804934193349852946")
    # The function's constant is the decimal 0.044715: at x = -21 the double
    # nearest to it moves the float64 result by ~200 ulps.
    k0, k1 = mp.sqrt(2 / mp.pi), mp.mpf("0.044715")

    def gelu_tanh(x):
        u2 = 2 * k0 * (x + k1 * x ** 3)
        s = sig(u2)
        return x * s, s + x * 2 * k0 * (1 + 3 * k1 * x * x) * s * sig(-u2)

    def mish(x):
        t = mp.tanh(sp(x))
        return x * t, t + x * sig(x) * mp.sech(sp(x)) ** 2

    def elu(x, a, s):
        return (s * x, s) if x > 0 else (a * s * mp.expm1(x), a * s * mp.exp(x))

    def tanhshrink(x):
        # x - tanh(x) ~ x^3 / 3 cancels 2 log10(1/|x|) digits.
        extra = int(max(0, -2 * mp.log10(abs(x)))) + 10 if x != 0 else 0
        with mp.extradps(extra):
            return +(x - mp.tanh(x)), mp.tanh(x) ** 2

    # beta is the double the caller passed (1.702 is not a float32).
    def swish(x, beta):
        b = mp.mpf(beta)
        return x * sig(b * x), sig(b * x) * (1 + b * x * sig(-b * x))

    # PyTorch's softplus is x itself above the threshold (20 by default).
    def softplus(x):
        return (x, 1 + 0 * x) if x > 20 else (sp(x), sig(x))

    return {
        "sigmoid": lambda x: (sig(x), sig(x) * sig(-x)),
        "tanh": lambda x: (mp.tanh(x), mp.sech(x) ** 2),
        "silu": lambda x: (x * sig(x), sig(x) * (1 + x * sig(-x))),
        "swish": swish,
        "gelu": lambda x: (x * Phi(x), Phi(x) + x * phi(x)),
        "gelu_tanh": gelu_tanh,
        "elu": lambda x: elu(x, 1, 1),
        "selu": lambda x: elu(x, sa, ss),
        "celu": lambda x: elu(x, 1, 1),
        "softplus": softplus,
        "mish": mish,
        "logsigmoid": lambda x: (-sp(-x), sig(-x)),
        "softsign": lambda x: (x / (1 + abs(x)), 1 / (1 + abs(x)) ** 2),
        "tanhshrink": tanhshrink,
        "hardswish": lambda x: (0 * x, 0 * x) if x <= -3 else ((x, 1) if x >= 3 else (x * (x + 3) / 6, (2 * x + 3) / 6)),
        "hardsigmoid": lambda x: (0 * x, 0 * x) if x <= -3 else ((1 + 0 * x, 0 * x) if x >= 3 else ((x + 3) / 6, 1 / mp.mpf(6))),
    }


# --------------------------------------------------------------------- ops ---
def _grad1(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tuple[Tensor, Tensor]:
    xx = x.detach().clone().requires_grad_(True)
    y = fn(xx)
    (g,) = torch.autograd.grad(y, xx, torch.ones_like(y))
    return y.detach(), g


def _ones_up(op, **kw):
    return lambda a: op(a, torch.ones_like(a), **kw)


def _glu_ours(x):
    return F.glu(torch.stack([torch.ones_like(x), x], -1), -1).squeeze(-1)


def _glu_torch(x):
    return TF.glu(torch.stack([torch.ones_like(x), x], -1), -1).squeeze(-1)


@dataclass
class AccOp:
    name: str                        # row label
    ref: str                         # key of REFERENCES / mpmath functions
    ours: Callable[[Tensor], Tensor]
    torch: Callable[[Tensor], Tensor]
    # Backward op taking the saved output: (ours(g, y), torch's(g, y), exact(y) in float64, mpmath(y)).
    saved_output: Optional[Tuple[Callable, Callable, Callable, Callable]] = None
    droots: Sequence[float] = ()     # roots of f' (dense windows around them)
    params: Dict[str, float] = field(default_factory=dict)  # keyword arguments of the reference


def _sig_bwd_exact(y):
    return y * (1 - y)


def _tanh_bwd_exact(y):
    return (1 - y) * (1 + y)


SILU_ROOT = -1.2784645427610738
MISH_ROOT = -1.1915981678312058
GELU_ROOT = -0.7517915241
GELU_TANH_ROOT = -0.7522

OPS: List[AccOp] = [
    AccOp("sigmoid", "sigmoid", F.sigmoid, torch.sigmoid,
          saved_output=(lambda g, y: torch.ops.torch_activations.sigmoid_backward(g, y),
                        torch.ops.aten.sigmoid_backward, _sig_bwd_exact, lambda y: y * (1 - y))),
    AccOp("tanh", "tanh", F.tanh, torch.tanh,
          saved_output=(lambda g, y: torch.ops.torch_activations.tanh_backward(g, y),
                        torch.ops.aten.tanh_backward, _tanh_bwd_exact, lambda y: (1 - y) * (1 + y))),
    AccOp("silu", "silu", F.silu, TF.silu, droots=(SILU_ROOT,)),
    AccOp("gelu", "gelu", F.gelu, TF.gelu, droots=(GELU_ROOT,)),
    AccOp("gelu tanh", "gelu_tanh", lambda x: F.gelu(x, approximate="tanh"),
          lambda x: TF.gelu(x, approximate="tanh"), droots=(GELU_TANH_ROOT,)),
    AccOp("elu", "elu", F.elu, TF.elu),
    AccOp("selu", "selu", F.selu, TF.selu),
    AccOp("celu", "celu", F.celu, TF.celu),
    AccOp("softplus", "softplus", F.softplus, TF.softplus),
    AccOp("mish", "mish", F.mish, TF.mish, droots=(MISH_ROOT,)),
    AccOp("logsigmoid", "logsigmoid", F.logsigmoid, TF.logsigmoid),
    AccOp("softsign", "softsign", F.softsign, TF.softsign),
    AccOp("tanhshrink", "tanhshrink", F.tanhshrink, TF.tanhshrink),
    AccOp("hardswish", "hardswish", F.hardswish, TF.hardswish),
    AccOp("hardsigmoid", "hardsigmoid", F.hardsigmoid, TF.hardsigmoid),
    AccOp("swiglu (silu part)", "silu", _ones_up(F.swiglu), lambda a: TF.silu(a) * torch.ones_like(a),
          droots=(SILU_ROOT,)),
    AccOp("geglu (gelu part)", "gelu", _ones_up(F.geglu), lambda a: TF.gelu(a) * torch.ones_like(a),
          droots=(GELU_ROOT,)),
    AccOp("geglu tanh (gelu part)", "gelu_tanh", _ones_up(F.geglu, approximate="tanh"),
          lambda a: TF.gelu(a, approximate="tanh") * torch.ones_like(a), droots=(GELU_TANH_ROOT,)),
    AccOp("glu (sigmoid part)", "sigmoid", _glu_ours, _glu_torch),
]


def _swish_op(beta: float) -> AccOp:
    # f'(x) = s (1 + beta x (1 - s)), s = sigmoid(beta x): silu's root, scaled.
    return AccOp(f"swish beta={beta:g}", "swish", lambda x: F.swish(x, beta),
                 lambda x: x * torch.sigmoid(beta * x), droots=(SILU_ROOT / beta,), params={"beta": beta})


# beta = 1 is silu above; 1.702 is the sigmoid approximation of GELU.
SWISH_BETAS = (0.5, 1.702, 2.0, -1.0)
OPS += [_swish_op(b) for b in SWISH_BETAS]
OPS_BY_NAME = {op.name: op for op in OPS}


def _ref64(op: AccOp, x: Tensor) -> Tuple[Tensor, Tensor]:
    key = {"gelu_tanh": "gelu"}.get(op.ref, op.ref)
    params = {"approximate": "tanh"} if op.ref == "gelu_tanh" else dict(op.params)
    return REFERENCES[key](x.to(F64), **params)


# ------------------------------------------------------------------ sweeps ---
def f32_sweep(points: int, seed: int = 0, droots: Sequence[float] = (), window: int = 1 << 12) -> Tensor:
    """`points` finite float32 per sign spread evenly over the bit patterns
    (one random pattern in each stride), plus +-0 and every float32 within
    `window` patterns of each root."""
    top = 0x7F800000  # +inf's pattern: everything below it is finite
    step = max(1, top // points)
    g = torch.Generator().manual_seed(seed)
    base = torch.arange(0, top - step + 1, step, dtype=torch.int64)
    pos = base + torch.randint(0, step, base.shape, generator=g, dtype=torch.int64)
    pos = torch.cat([torch.tensor([0], dtype=torch.int64), pos.clamp_max(top - 1)])
    parts = [pos, pos | (1 << 31)]
    for r in droots:
        rb = torch.tensor([r], dtype=F32).view(torch.int32).to(torch.int64) & 0xFFFFFFFF
        parts.append(rb + torch.arange(-window, window + 1, dtype=torch.int64))
    bits = torch.cat(parts)
    bits = torch.where(bits >= (1 << 31), bits - (1 << 32), bits).to(torch.int32)
    return bits.view(F32)


def all_16bit(dtype: torch.dtype) -> Tensor:
    x = torch.arange(-(1 << 15), 1 << 15, dtype=torch.int32).to(torch.int16).view(dtype)
    return x[torch.isfinite(x)]


def f64_sweep(points: int, seed: int = 0, droots: Sequence[float] = ()) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    top = 0x7FF0000000000000
    # Random patterns, uniform over the exponent field, both signs.
    expo = torch.randint(0, 0x7FF, (points,), generator=g, dtype=torch.int64)
    mant = torch.randint(0, 1 << 52, (points,), generator=g, dtype=torch.int64)
    bits = (expo << 52) | mant
    sign = torch.randint(0, 2, (points,), generator=g, dtype=torch.int64).bool()
    x = bits.clamp_max(top - 1).view(F64)
    x = torch.where(sign, -x, x)
    # And the working range, where the ops do their work, more densely.
    mid = (torch.rand(points // 2, generator=g, dtype=F64) * 2 - 1) * 40
    extra = [torch.tensor([0.0, -0.0], dtype=F64)]
    for r in droots:
        extra.append(r + torch.linspace(-1e-3, 1e-3, 201, dtype=F64))
    return torch.cat([x, mid] + extra)


# ------------------------------------------------------------------ errors ---
@dataclass
class Err:
    max_ulp: float = 0.0      # where the exact result is normal
    mean_ulp: float = 0.0
    worst_x: float = math.nan
    sub_max: float = 0.0      # where it is subnormal or zero, in units of the subnormal spacing
    special: int = 0          # overflow / NaN disagreements
    n: int = 0


def ulp_errors(got: Tensor, exact: Tensor, dtype: torch.dtype, x: Tensor, per: Optional[Tensor] = None,
               lo: Optional[Tensor] = None) -> Err:
    """Errors of `got` (any dtype) against `exact` (float64), in ulps of
    `dtype`, divided by `per` where given; `lo`, where given, is the rest of
    the exact value (exact + lo, for float64 results judged against a more
    precise reference)."""
    fi = torch.finfo(dtype)
    if per is None:
        per = torch.ones_like(exact, dtype=F64)
    if lo is None:
        lo = torch.zeros_like(exact, dtype=F64)
    got = got.to(F64)
    exact = exact.to(F64)
    mant = MANT[dtype]
    # Values from the largest finite one plus half its ulp round to inf.
    ovf = exact.abs() >= fi.max + 2.0 ** (math.floor(math.log2(fi.max)) - mant - 1)
    finite = torch.isfinite(exact) & ~ovf
    bad_special = (ovf & ~(got == exact.sign() * math.inf)) | (finite & ~torch.isfinite(got))
    e = Err(special=int(bad_special.sum()), n=int(exact.numel()))
    ok = finite & torch.isfinite(got)
    ex, gt, xs, per, lo = exact[ok], got[ok], x.to(F64)[ok], per.to(F64)[ok], lo.to(F64)[ok]
    a = ex.abs()
    normal = a >= fi.tiny
    expo = torch.floor(torch.log2(torch.where(normal, a, torch.full_like(a, fi.tiny))))
    # log2 can round up just below a power of two: correct by one binade.
    expo = torch.where(torch.exp2(expo) > a, expo - 1, expo)
    expo = torch.where(normal, expo, torch.full_like(expo, math.log2(fi.tiny)))
    # gt - ex is exact where the two are within a factor of 2 (Sterbenz).
    ulps = ((gt - ex) - lo).abs() / torch.exp2(expo - mant) / per
    if bool(normal.any()):
        un = ulps[normal]
        i = int(un.argmax())
        e.max_ulp, e.mean_ulp, e.worst_x = float(un[i]), float(un.mean()), float(xs[normal][i])
    if bool((~normal).any()):
        e.sub_max = float(ulps[~normal].max())
    if e.special:
        e.max_ulp = math.inf
    return e


def _merge(a: Err, b: Err) -> Err:
    n = a.n + b.n
    worst = a if a.max_ulp >= b.max_ulp else b
    return Err(worst.max_ulp, (a.mean_ulp * a.n + b.mean_ulp * b.n) / max(n, 1), worst.worst_x,
               max(a.sub_max, b.sub_max), a.special + b.special, n)


# --------------------------------------------------------------- measuring ---
# Near a root x0 of f' the derivative is ill-conditioned: its relative
# condition number kappa(x) = |x f''(x) / f'(x)| grows without bound, so an
# error of one unit in the last place of any intermediate that depends on x
# (sigmoid(x), Phi(x), ...) becomes ~kappa ulps of f'(x). Within ROOT_WINDOW
# of each root the d/dx error is reported divided by max(1, kappa): the
# error of an evaluation as accurate as the problem allows is a few units of
# that. Outside the windows the plain ulp count applies.
ROOT_WINDOW = 1.0
KAPPA_MIN = 1.0


def near_roots(x: Tensor, droots: Sequence[float]) -> Tensor:
    xd = x.to(F64)
    near = torch.zeros_like(xd, dtype=torch.bool)
    for r in droots:
        near |= (xd - r).abs() < ROOT_WINDOW
    return near


def kappa(op: AccOp, x: Tensor) -> Tensor:
    """|x f''(x) / f'(x)| from central differences of the float64 reference."""
    xd = x.to(F64)
    h = 2.0 ** -20
    _, dp = _ref64(op, xd + h)
    _, dm = _ref64(op, xd - h)
    _, d = _ref64(op, xd)
    return (xd * (dp - dm) / (2 * h) / d).abs()


def _split_roots(op: AccOp, out: Dict[str, Err], x: Tensor, go: Tensor, gt: Tensor, d: Tensor, dtype) -> None:
    k = kappa(op, x)
    near = near_roots(x, op.droots) & (k > KAPPA_MIN)
    for who, g in (("ours", go), ("torch", gt)):
        out[f"bwd {who} far"] = ulp_errors(g[~near], d[~near], dtype, x[~near])
        out[f"bwd {who} near/kappa"] = ulp_errors(g[near], d[near], dtype, x[near], per=k[near])


def _mp_refine(op: AccOp, x: Tensor, f: Tensor, d: Tensor, droots: Sequence[float], width: float = 2e-3):
    """Replaces the float64 reference by mpmath near the roots of f'."""
    if not droots:
        return f, d
    near = torch.zeros_like(x, dtype=torch.bool)
    xd = x.to(F64)
    for r in droots:
        near |= (xd - r).abs() < width
    idx = near.nonzero().flatten().tolist()
    if not idx:
        return f, d
    mp = _mp()
    fn = _mp_funcs()[op.ref]
    d = d.clone()
    f = f.clone()
    xl = xd.tolist()
    for i in idx:
        fv, dv = fn(mp.mpf(xl[i]), **op.params)
        f[i], d[i] = float(fv), float(dv)
    return f, d


def measure_lowp(op: AccOp, x: Tensor, dtype: torch.dtype) -> Dict[str, Err]:
    """float32 / bfloat16 / float16: ours and torch, fwd and bwd."""
    f, d = _ref64(op, x)
    f, d = _mp_refine(op, x, f, d, op.droots)
    out = {}
    yo, go = _grad1(op.ours, x)
    yt, gt = _grad1(op.torch, x)
    out["fwd ours"], out["fwd torch"] = ulp_errors(yo, f, dtype, x), ulp_errors(yt, f, dtype, x)
    if op.saved_output:
        ours_b, torch_b, exact_b, _ = op.saved_output
        # Every representable saved output in the forward's range: the rounded forward values.
        y = yo
        one = torch.ones_like(y)
        ex = exact_b(y.to(F64))
        out["bwd ours"] = ulp_errors(ours_b(one, y), ex, dtype, y)
        out["bwd torch"] = ulp_errors(torch_b(one, y), ex, dtype, y)
    else:
        out["bwd ours"], out["bwd torch"] = ulp_errors(go, d, dtype, x), ulp_errors(gt, d, dtype, x)
        if op.droots:
            _split_roots(op, out, x, go, gt, d, dtype)
    return out


def measure_f32(op: AccOp, points: int, exhaustive: bool = False, seed: int = 0) -> Dict[str, Err]:
    if not exhaustive:
        return measure_lowp(op, f32_sweep(points, seed, op.droots), F32)
    acc: Dict[str, Err] = {}
    chunk = 1 << 24
    for start in range(-(1 << 31), 1 << 31, chunk):
        x = torch.arange(start, start + chunk, dtype=torch.int64).to(torch.int32).view(F32)
        x = x[torch.isfinite(x)]
        if x.numel() == 0:
            continue
        part = measure_lowp(op, x, F32)
        acc = {k: _merge(acc[k], v) if k in acc else v for k, v in part.items()}
    return acc


def mp_ulp(got: float, exact) -> Tuple[float, bool]:
    """(error in ulps of float64 of `got` against mpmath `exact`, exact is normal)."""
    mp = _mp()
    if exact == 0:
        return (0.0 if got == 0 else abs(got) / 2.0 ** -1074), False
    m, e = mp.frexp(exact)
    expo = e - 1
    normal = expo >= -1022
    if not math.isfinite(got):
        return math.inf, normal
    u = mp.ldexp(1, max(expo, -1022) - 52)
    return float(abs(mp.mpf(got) - exact) / u), normal


def measure_f64(op: AccOp, points: int, seed: int = 0) -> Dict[str, Err]:
    mp = _mp()
    fn = _mp_funcs()[op.ref]
    x = f64_sweep(points, seed, op.droots)
    yo, go = _grad1(op.ours, x)
    yt, gt = _grad1(op.torch, x)
    res: Dict[str, List[Tuple[float, bool, float]]] = {k: [] for k in ("fwd ours", "fwd torch", "bwd ours", "bwd torch")}
    xl, yol, ytl, gol, gtl = (t.tolist() for t in (x, yo, yt, go, gt))
    if op.saved_output:
        ours_b, torch_b, _, mp_b = op.saved_output
        one = torch.ones_like(yo)
        gol, gtl = ours_b(one, yo).tolist(), torch_b(one, yo).tolist()
    for i, xv in enumerate(xl):
        fv, dv = fn(mp.mpf(xv), **op.params)
        if op.saved_output:
            dv = mp_b(mp.mpf(yol[i]))
        for k, got, ex in (("fwd ours", yol[i], fv), ("fwd torch", ytl[i], fv),
                           ("bwd ours", gol[i], dv), ("bwd torch", gtl[i], dv)):
            if abs(ex) > mp.mpf(torch.finfo(F64).max):
                ok = math.isinf(got) and (got > 0) == (ex > 0)
                res[k].append((0.0 if ok else math.inf, True, xv))
                continue
            u, normal = mp_ulp(got, ex)
            res[k].append((u, normal, xv))
    def summary(lst, per=None):
        e = Err(n=len(lst))
        per = per or [1.0] * len(lst)
        nv = [(u / p, xv) for (u, nrm, xv), p in zip(lst, per) if nrm]
        sv = [u for u, nrm, _ in lst if not nrm]
        if nv:
            u, xv = max(nv)
            e.max_ulp, e.worst_x, e.mean_ulp = u, xv, sum(v for v, _ in nv) / len(nv)
        e.sub_max = max(sv) if sv else 0.0
        return e

    out = {k: summary(lst) for k, lst in res.items()}
    if op.droots and not op.saved_output:
        k = kappa(op, x).tolist()
        near = near_roots(x, op.droots).tolist()
        for who in ("ours", "torch"):
            lst = res[f"bwd {who}"]
            out[f"bwd {who} far"] = summary([v for v, n in zip(lst, near) if not n])
            nl = [(v, kk) for v, n, kk in zip(lst, near, k) if n]
            out[f"bwd {who} near/kappa"] = summary([v for v, _ in nl], [max(1.0, kk) for _, kk in nl])
    return out


# ----------------------------------------------------------------- softmax ---
def softmax_rows(dtype: torch.dtype, rows: int = 256, cols: int = 1000, seed: int = 0) -> List[Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for scale in (0.1, 1.0, 10.0, 100.0):
        out.append((torch.randn(rows, cols, generator=g, dtype=F64) * scale).to(dtype))
    # One dominating logit per row: log_softmax of that logit is -log1p(tiny).
    x = torch.randn(rows, cols, generator=g, dtype=F64)
    x[:, 0] += 30
    out.append(x.to(dtype))
    out += dominant_rows(dtype, rows, seed=seed + 1)
    return out


DOMINANT = ((1000, 5.0, 1), (1000, 15.0, 1), (1000, 30.0, 1), (1000, 45.0, 2),
            (37, 15.0, 1), (37, 30.0, 1), (37, 20.0, 3), (2, 20.0, 1))


def dominant_rows(dtype: torch.dtype, rows: int, seed: int = 1) -> List[Tensor]:
    """Rows whose maximum stands `gap` above normal logits, held by `ties`
    entries at random places: the sum of exponentials is 1 (or `ties`) plus
    E ~ n e^-gap, far below an ulp of 1 for the larger gaps. Lengths 1000,
    37 (a multiple of no vector width) and 2."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, gap, ties in DOMINANT:
        x = torch.randn(rows, n, generator=g, dtype=F64)
        x[:, :ties] = x.max(-1, keepdim=True).values + gap
        perm = torch.argsort(torch.rand(rows, n, generator=g), -1)
        out.append(x.gather(-1, perm).to(dtype))
    return out


def _terms_ulp(exact: Tensor, terms: Tensor) -> Tensor:
    """max(1, |terms| / |exact|): how many ulps of the result one ulp of the
    summands is, for results formed as a difference."""
    return (terms.abs() / exact.abs().clamp_min(1e-300)).clamp_min(1)


def measure_rows(name: str, dtype: torch.dtype, rows: int = 256) -> Dict[str, Err]:
    """softmax / log_softmax along rows (softmax_rows): forward in ulps;
    backward (random grad_output, the backward op's inputs (g, y)) in ulps of
    its summands. log_softmax's forward (x - max) - log(sum) adds two terms of
    the same sign, so it is held to plain ulps too, the maximum's entry
    -log1p(E) of a dominant logit included. float64 is judged against mpmath;
    the other dtypes against float64 (the inputs' differences are exact there
    and log1p takes the sum without the maximum's term)."""
    ours = getattr(F, name)
    theirs = getattr(TF, name)
    out: Dict[str, Err] = {}
    g0 = torch.Generator().manual_seed(1)

    def add(k, e):
        out[k] = _merge(out[k], e) if k in out else e

    for x in softmax_rows(dtype, rows):
        x64 = x.to(F64)
        g = torch.randn(x.shape, generator=g0, dtype=F64).to(dtype)
        g64 = g.to(F64)
        if dtype == F64:
            exact, lo = _mp_rowwise(_mp_log_softmax if name == "log_softmax" else _mp_softmax, x64)
        else:
            exact = torch.softmax(x64, -1) if name == "softmax" else _log_softmax64(x64)
            lo = None
        for who, fn in (("ours", ours), ("torch", theirs)):
            xx = x.detach().clone().requires_grad_(True)
            y = fn(xx, dim=-1)
            (dx,) = torch.autograd.grad(y, xx, g)
            y = y.detach()
            y64 = y.to(F64)
            add(f"fwd {who}", ulp_errors(y, exact, dtype, x, lo=lo))
            if name == "softmax":
                bwd = _mp_softmax_bwd
                dot = (g64 * y64).sum(-1, keepdim=True)
                bex = y64 * (g64 - dot)
                per = _terms_ulp(bex, y64 * (g64.abs() + (g64 * y64).abs().sum(-1, keepdim=True)))
            else:
                bwd = _mp_log_softmax_bwd
                gs = g64.sum(-1, keepdim=True)
                bex = g64 - torch.exp(y64) * gs
                per = _terms_ulp(bex, g64.abs() + torch.exp(y64) * g64.abs().sum(-1, keepdim=True))
            blo = None
            if dtype == F64:
                bex, blo = _mp_rowwise(bwd, g64, y64)
            add(f"bwd {who}", ulp_errors(dx, bex, dtype, x, per=per, lo=blo))
    return out


def _log_softmax64(x: Tensor) -> Tensor:
    # log1p of the sum without one maximum's own term (exactly 1) keeps the
    # maximum's entry accurate when it dominates; the other terms are exact
    # differences of float32 inputs, e^ of them accurate to ~2^-52.
    m, i = x.max(-1, keepdim=True)
    e = torch.exp(x - m).scatter(-1, i, 0.0)
    return (x - m) - torch.log1p(e.sum(-1, keepdim=True))


def _mp_rowwise(f, *ts: Tensor) -> Tuple[Tensor, Tensor]:
    """f(mp, *rows) on every row of the float64 tensors ts, in mpmath; the
    result as float64 hi + lo."""
    mp = _mp()
    his, los = [], []
    for rows in zip(*(t.tolist() for t in ts)):
        vals = f(mp, *[[mp.mpf(v) for v in r] for r in rows])
        hi = [float(v) for v in vals]
        his.append(hi)
        los.append([float(v - h) if math.isfinite(h) else 0.0 for v, h in zip(vals, hi)])
    return torch.tensor(his, dtype=F64), torch.tensor(los, dtype=F64)


def _mp_log_softmax(mp, x):
    # log1p of the sum less one maximum's term: 1 + E rounds E away at any
    # fixed precision once E ~ e^-400.
    m = max(x)
    i = x.index(m)
    ls = mp.log1p(mp.fsum(mp.exp(v - m) for j, v in enumerate(x) if j != i))
    return [(v - m) - ls for v in x]


def _mp_softmax(mp, x):
    return [mp.exp(v) for v in _mp_log_softmax(mp, x)]


def _mp_softmax_bwd(mp, g, y):
    dot = mp.fsum(a * b for a, b in zip(g, y))
    return [b * (a - dot) for a, b in zip(g, y)]


def _mp_log_softmax_bwd(mp, g, y):
    gs = mp.fsum(g)
    return [a - mp.exp(b) * gs for a, b in zip(g, y)]


# float64 rows per family in the check: each row element is evaluated in mpmath.
ROWS_F64 = 16

# ------------------------------------------------------------------ bounds ---
SPEC = 4.0  # ulps, float32 and float64, where the result is a normal number


def lowp_bound(dtype: torch.dtype, b32: float) -> float:
    """bfloat16 / float16 compute in float32 and round once: half an ulp plus
    the float32 error, in the narrow type's ulps."""
    return 0.5 + b32 * 2.0 ** -(23 - MANT[dtype])


# Documented exceptions to SPEC: {(op, kind): (bound, reason)}; kind is
# "fwd", "bwd", "bwd far" (outside the windows around roots of f'),
# "bwd near/kappa" (inside, per unit of kappa). They hold for float32 and
# float64 and, through lowp_bound, for bfloat16 / float16.
_MISH_WHY = ("f'(x) = t + x s (1 - t^2), t = tanh(softplus(x)), s = sigmoid(x), adds terms of opposite sign "
             "for x < 0: they cancel fully at the root x0 = -1.19 and by a factor of up to ~3 for x in "
             "[-2.5, -1.5], where kappa is still near 1. t, 1 - t and s come from one e^-|x| and one "
             "reciprocal and carry 1-2 ulps each; correctly rounding each would cost two more divisions "
             "per element.")
_GELU_TANH_WHY = ("For |x| < 6, f' is read from fitted pieces (1.35 ulp on a dense sweep). At x <= -6 it is "
                  "computed as s (1 + x u' sn), s = sigmoid(u), u = sqrt(8/pi) (x + 0.044715 x^3), where x u' "
                  "(formed in the compute type, ~2 ulps) and s (~1 ulp) carry their errors: 4.08 ulp over "
                  "every float32 in [-20, -6] (f' is subnormal below x = -10.3). The argument u itself is "
                  "exact to far below an ulp.")
EXCEPTIONS: Dict[Tuple[str, str], Tuple[float, str]] = {
    ("mish", "bwd far"): (7.5, _MISH_WHY),
    ("mish", "bwd near/kappa"): (7.5, _MISH_WHY),
    ("gelu tanh", "bwd far"): (4.5, _GELU_TANH_WHY),
    ("geglu tanh (gelu part)", "bwd far"): (4.5, _GELU_TANH_WHY),
}

# Exceptions for the rows, as EXCEPTIONS: none. (The forward's sum and the
# backward's sum(g y) keep their additions' rounding errors, so neither grows
# with the row length.)
ROW_BOUNDS: Dict[Tuple[str, str], Tuple[float, str]] = {}


def bound(op: str, kind: str, dtype: torch.dtype) -> float:
    if op.endswith("(rows)"):
        b = ROW_BOUNDS.get((op, kind), (SPEC, ""))[0]
    else:
        b = EXCEPTIONS.get((op, kind), (SPEC, ""))[0]
    return b if dtype in (F32, F64) else lowp_bound(dtype, b)


# -------------------------------------------------------------- the table ---
def _fmt(v: float) -> str:
    if math.isinf(v):
        return "inf"
    if v == 0:
        return "0"
    if v < 1e-2 or v >= 1e5:
        return f"{v:.1e}"
    return f"{v:.3g}"


def measure(op: AccOp, dtype: torch.dtype, points: int = 1 << 21, f64_points: int = 10000,
            exhaustive: bool = False) -> Dict[str, Err]:
    if dtype == F32:
        return measure_f32(op, points, exhaustive)
    if dtype == F64:
        return measure_f64(op, f64_points)
    return measure_lowp(op, all_16bit(dtype), dtype)


def violations(name: str, r: Dict[str, Err], dtype: torch.dtype) -> List[str]:
    """The measured figures of ours above their bound."""
    bad = []
    kinds = ["fwd"] + (["bwd far", "bwd near/kappa"] if "bwd ours far" in r else ["bwd"] if "bwd ours" in r else [])
    for kind in kinds:
        head, _, tail = kind.partition(" ")
        e = r[f"{head} ours" + (f" {tail}" if tail else "")]
        b = bound(name, kind, dtype)
        if not e.max_ulp <= b or e.special:
            bad.append(f"{name} {TAG[dtype]} {kind}: {e.max_ulp:.3g} ulp at x = {e.worst_x!r} (bound {b:.4g})")
    return bad


HEADER = """# Accuracy

Generated by `python -m torch_activations check --accuracy` (torch_activations/accuracy.py;
{setup}). Every figure is the error of a result against the exact value, in units in the last
place (ulp) of the output dtype at the exact value; ours and PyTorch's built-in side by side.

* **Inputs.** float32: {points} bit patterns per sign, one random pattern in each equal stride
  through all finite patterns (every normal binade of both signs and the subnormal range), plus
  every float32 within 4096
  patterns of each root of f'. bfloat16 and float16: every finite value. float64: {f64_points}
  random bit patterns (uniform exponent field, both signs) plus {f64_mid} uniform points in
  [-40, 40] and points near the roots of f'.
* **Exact values.** float32 / bfloat16 / float16: the float64 formulas of
  torch_activations/reference.py (checked against mpmath to 2^-40 relative by
  tests/test_accuracy.py), replaced by mpmath at 60 digits within 2e-3 of the roots of f'.
  float64: mpmath at 60 digits.
* **ulp.** 2^(e-p+1) for an exact value in [2^e, 2^(e+1)) (p = 24, 53, 8, 11). The maximum and
  mean columns are over inputs whose exact result is a **normal number** of the output dtype;
  where it is subnormal or zero the error is counted in subnormal spacings (the last column),
  and results beyond the largest finite value must be inf. A NaN or inf where the exact result
  is finite counts as inf.
* **d/dx** is the backward op with grad_output = 1 (through autograd). sigmoid and tanh's
  backward ops take the saved output y, so they are measured as functions of their own inputs
  (1, y): exact y (1 - y) and (1 - y)(1 + y) of the rounded y.
* **Roots of f'.** Near a root x0 of f' (silu, swish, gelu, mish) the derivative is ill-conditioned:
  its relative condition number kappa(x) = |x f''(x) / f'(x)| is unbounded, and an error of an
  ulp in any intermediate that depends on x becomes ~kappa ulps of f'. Within |x - x0| < 1 the
  d/dx error is given per unit of max(1, kappa) ("near roots"); outside, in plain ulps ("far").
* **Rows.** softmax / log_softmax along rows of 1000 (normal logits at scales 0.1, 1, 10, 100,
  and rows with one logit 30 above the rest), and rows of 1000, 37 and 2 whose maximum stands
  5 to 45 above normal logits, held by one, two or three tied entries ({rows} rows of each
  kind, {rows_f64} in float64). There the sum of exponentials is the maximum's 1 plus a tiny E
  and log_softmax at the maximum is -log1p(E): its forward, (x - max) - log(sum), adds two terms
  of the same sign and is given in plain ulps like softmax's. The backward ops (random
  grad_output g, saved y) compute differences of sums, y (g - sum g y) and g - e^y sum g,
  whose result can cancel to anything; their error is given in ulps of the summands
  (|y| (|g| + sum |g y|), |g| + e^y sum |g|), the bound of a backward-stable evaluation.
  float64 rows are judged against mpmath at 60 digits.

Bounds (asserted by tests/test_accuracy.py on a smaller sweep): {spec} ulp for float32 and
float64 where the result is normal, forward and d/dx, except where listed below; bfloat16 and
float16 are the float32 result rounded once, so within 0.5 ulp plus the float32 error.
"""


def render(tables: Dict[torch.dtype, List[Tuple[str, Dict[str, Err]]]], header: str) -> str:
    lines = [header]
    if EXCEPTIONS or ROW_BOUNDS:
        lines += ["Documented bounds that differ from the above:", ""]
        for (op, kind), (b, why) in list(EXCEPTIONS.items()) + list(ROW_BOUNDS.items()):
            lines.append(f"* {op}, {kind}: {b:g}. {why}")
        lines.append("")
    for dtype, rows in tables.items():
        lines += [f"## {TAG[dtype]}", "",
                  "| op | fwd max ulp ours / torch | fwd mean | d/dx max ulp ours / torch | d/dx mean | "
                  "d/dx far from roots of f' | d/dx near roots, per kappa | subnormal results fwd / d/dx (ours) |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in rows:
            def cell(k, attr="max_ulp"):
                o = r.get(k.format(who="ours"))
                t = r.get(k.format(who="torch"))
                if o is None:
                    return ""
                return f"{_fmt(getattr(o, attr))} / {_fmt(getattr(t, attr))}"
            sub = f"{_fmt(r['fwd ours'].sub_max)} / {_fmt(r['bwd ours'].sub_max) if 'bwd ours' in r else ''}"
            lines.append("| " + " | ".join([
                name, cell("fwd {who}"), cell("fwd {who}", "mean_ulp"), cell("bwd {who}"),
                cell("bwd {who}", "mean_ulp"), cell("bwd {who} far"), cell("bwd {who} near/kappa"), sub]) + " |")
        lines.append("")
    return "\n".join(lines)


def run(path: str = "ACCURACY.md", points: int = 1 << 21, f64_points: int = 10000, exhaustive: bool = False,
        ops: Optional[Sequence[str]] = None, out=print) -> int:
    t0 = time.time()
    known = set(OPS_BY_NAME) | {"softmax", "log_softmax"}
    unknown = [n for n in (ops or []) if n not in known]
    if unknown:
        out(f"unknown op(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return 2
    sel = [op for op in OPS if not ops or op.name in ops]
    tables: Dict[torch.dtype, List[Tuple[str, Dict[str, Err]]]] = {}
    bad: List[str] = []
    for dtype in (F32, F64, BF16, F16):
        rows = []
        for op in sel:
            r = measure(op, dtype, points, f64_points, exhaustive)
            rows.append((op.name, r))
            bad += violations(op.name, r, dtype)
            out(f"{TAG[dtype]:9s} {op.name:24s} fwd {_fmt(r['fwd ours'].max_ulp)} / {_fmt(r['fwd torch'].max_ulp)}"
                f"   d/dx {_fmt(r['bwd ours'].max_ulp)} / {_fmt(r['bwd torch'].max_ulp)}")
        for name in ("softmax", "log_softmax"):
            if ops and name not in ops:
                continue
            r = measure_rows(name, dtype, rows=ROWS_F64 if dtype == F64 else 256)
            rows.append((name + " (rows)", r))
            bad += violations(name + " (rows)", r, dtype)
            out(f"{TAG[dtype]:9s} {name + ' (rows)':24s} fwd {_fmt(r['fwd ours'].max_ulp)} / "
                f"{_fmt(r['fwd torch'].max_ulp)}   d/dx {_fmt(r['bwd ours'].max_ulp)} / {_fmt(r['bwd torch'].max_ulp)}")
        tables[dtype] = rows
    setup = (f"torch {torch.__version__}, CPU kernels: {torch.ops.torch_activations._cpu_capability()}"
             + (", float32 exhaustive" if exhaustive else ""))
    header = HEADER.format(setup=setup, points="all 2^31" if exhaustive else points, f64_points=f64_points,
                           f64_mid=f64_points // 2, spec=_fmt(SPEC), rows=256, rows_f64=ROWS_F64)
    with open(path, "w") as fh:
        fh.write(render(tables, header))
    out(f"wrote {path} in {time.time() - t0:.0f} s")
    for b in bad:
        out("ABOVE BOUND: " + b)
    return 1 if bad else 0
