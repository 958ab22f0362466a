"""``python -m torch_activations check``: every op against PyTorch and an
accurate float64 reference.

For each op (default parameters) and dtype it evaluates ours and PyTorch's
built-in on a sweep of inputs (float32: random bit patterns over every binade
of both signs plus a dense grid on [-20, 20] plus edge values; bfloat16:
every finite value), forward and d/dx, and reports the largest error in ulps
of the dtype where the exact result is a normal number, and the largest
absolute error. It also runs gradcheck and gradgradcheck in float64 and a
parity check against PyTorch with assert_close's tolerances.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
from torch.autograd import gradcheck, gradgradcheck

from .optable import OPS, Op, away_from_kinks, tol

MANTISSA = {torch.float32: 23, torch.bfloat16: 7, torch.float16: 10}


def ulp_error(got: torch.Tensor, exact: torch.Tensor, dtype: torch.dtype):
    """(max ulp error where exact is normal in dtype, max abs error where
    exact is finite, number of inputs where got and exact disagree on being
    NaN / infinite)."""
    got = got.to(torch.float64)
    fi = torch.finfo(dtype)
    finite = torch.isfinite(exact) & (exact.abs() <= torch.finfo(dtype).max)
    special_mismatch = (~finite & ~((got == exact) | (got.isnan() & exact.isnan()))).sum().item()
    e = exact[finite]
    g = got[finite]
    err = (g - e).abs()
    err = torch.where(g.isnan(), torch.full_like(err, math.inf), err)
    normal = (e.abs() >= fi.tiny) & (e.abs() <= fi.max)
    expo = torch.floor(torch.log2(e.abs().clamp_min(fi.tiny)))
    ulp = torch.exp2(expo - MANTISSA[dtype])
    ulps = (err / ulp)[normal]
    max_ulp = ulps.max().item() if ulps.numel() else 0.0
    max_abs = err.max().item() if err.numel() else 0.0
    return max_ulp, max_abs, special_mismatch


def sweep(dtype: torch.dtype, n_random: int = 1 << 18, seed: int = 0) -> torch.Tensor:
    if dtype == torch.bfloat16:
        bits = torch.arange(-(1 << 15), 1 << 15, dtype=torch.int32).to(torch.int16)
        x = bits.view(torch.bfloat16)
        return x[torch.isfinite(x)]
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(-(1 << 31), (1 << 31) - 1, (n_random,), generator=g, dtype=torch.int64).to(torch.int32)
    rnd = bits.view(torch.float32)
    rnd = rnd[torch.isfinite(rnd)]
    grid = torch.linspace(-20, 20, n_random, dtype=torch.float32)
    edges = torch.tensor([0.0, -0.0, 1e-45, -1e-45, 1e-38, -1e-38, 1.0, -1.0, 3.4e38, -3.4e38], dtype=torch.float32)
    return torch.cat([rnd, grid, edges]).to(dtype)


@dataclass
class Row:
    op: str
    errors: Dict[str, float]
    parity: bool
    gradcheck: bool
    gradgradcheck: bool
    note: str = ""


def _value_and_grad(fn, x, params):
    xx = x.detach().clone().requires_grad_(True)
    y = fn(xx, **params)
    (g,) = torch.autograd.grad(y, xx, torch.ones_like(y))
    return y.detach(), g


def check_op(op: Op, dtypes: Sequence[torch.dtype] = (torch.float32, torch.bfloat16)) -> Row:
    params = op.params[0]
    errors: Dict[str, float] = {}
    parity = True
    notes = []
    for dtype in dtypes:
        x = sweep(dtype)
        fx, dfx = op.exact(x, **params)
        ours_y, ours_g = _value_and_grad(op.ours, x, params)
        ref_y, ref_g = _value_and_grad(op.ref, x, params)
        # Parity in low precision is judged against the built-in evaluated in
        # float64 and rounded once, as PyTorch's OpInfo reference tests do.
        if dtype in (torch.float32, torch.float64):
            par_y, par_g = ref_y, ref_g
        else:
            par_y, par_g = (t.to(dtype) for t in _value_and_grad(op.ref, x.to(torch.float64), params))
            if op.saves == "output":
                par_g = op.ref_backward(torch.ones_like(fx), ours_y.to(torch.float64)).to(dtype)
        tag = {torch.float32: "f32", torch.bfloat16: "bf16", torch.float16: "f16"}[dtype]
        for kind, exact, o, r in (("fwd", fx, ours_y, ref_y), ("bwd", dfx, ours_g, ref_g)):
            ou, oa, om = ulp_error(o, exact, dtype)
            ru, ra, rm = ulp_error(r, exact, dtype)
            errors[f"{tag} {kind} ulp ours"], errors[f"{tag} {kind} ulp torch"] = ou, ru
            errors[f"{tag} {kind} abs ours"], errors[f"{tag} {kind} abs torch"] = oa, ra
            errors[f"{tag} {kind} special ours"], errors[f"{tag} {kind} special torch"] = om, rm
        # Parity with PyTorch where PyTorch's result is finite or our
        # documented limit does not apply.
        rtol, atol = tol(op, dtype)
        keep = ~torch.isin(x.to(torch.float64), torch.tensor(list(op.limits), dtype=torch.float64))
        big = x.to(torch.float64).abs() < 1e4
        for o, r in ((ours_y, par_y), (ours_g, par_g)):
            m = keep & big & torch.isfinite(r.to(torch.float64))
            ok = torch.isclose(o[m].to(torch.float64), r[m].to(torch.float64), rtol=rtol, atol=atol, equal_nan=True)
            if not bool(ok.all()):
                parity = False
                bad = x[m][~ok][:3].tolist()
                notes.append(f"{tag} differs from PyTorch at {bad}")
    g = torch.Generator().manual_seed(0)
    xs = away_from_kinks(op, params, torch.randn(8, 5, generator=g, dtype=torch.float64) * op.scale)
    xs.requires_grad_(True)
    fn = lambda t: op.ours(t, **params)  # noqa: E731
    gc = bool(gradcheck(fn, (xs,), raise_exception=False))
    ggc = bool(gradgradcheck(fn, (xs,), raise_exception=False))
    return Row(op.name, errors, parity, gc, ggc, "; ".join(notes))


def _fmt(v: float) -> str:
    if math.isinf(v):
        return "inf"
    if v == 0:
        return "0"
    if v < 1e-3 or v >= 1e5:
        return f"{v:.1e}"
    return f"{v:.3g}"


def render(rows: List[Row], dtypes: Sequence[str] = ("f32", "bf16")) -> str:
    head = ["op"]
    for t in dtypes:
        head += [f"{t} fwd ulp ours/torch", f"{t} d/dx ulp ours/torch"]
    head += ["f32 fwd abs ours/torch", "parity", "gradcheck", "gradgradcheck"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        e = r.errors
        cells = [r.op]
        for t in dtypes:
            for k in ("fwd", "bwd"):
                cells.append(f"{_fmt(e[f'{t} {k} ulp ours'])} / {_fmt(e[f'{t} {k} ulp torch'])}")
        cells.append(f"{_fmt(e['f32 fwd abs ours'])} / {_fmt(e['f32 fwd abs torch'])}")
        cells += ["ok" if r.parity else "FAIL", "ok" if r.gradcheck else "FAIL", "ok" if r.gradgradcheck else "FAIL"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r.op}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + ([""] + notes if notes else []))


def run(names: Optional[Sequence[str]] = None, out=print) -> int:
    """Checks the named ops (all by default); returns the process exit code."""
    known = {op.name: op for op in OPS}
    unknown = [n for n in (names or []) if n not in known]
    if unknown:
        out(f"unknown op(s): {', '.join(unknown)}; known: {', '.join(known)}")
        return 2
    ops = [known[n] for n in names] if names else OPS
    rows = []
    for op in ops:
        rows.append(check_op(op))
    out(f"torch {torch.__version__}, CPU kernels: {torch.ops.torch_activations._cpu_capability()}, "
        f"threads: {torch.get_num_threads()}")
    out("max error in ulps where the exact result is a normal number (float32: 2^18 random bit patterns, "
        "2^18 points on [-20, 20], edge values; bfloat16: every finite value); d/dx with grad_output = 1")
    out(render(rows))
    failed = [r.op for r in rows if not (r.parity and r.gradcheck and r.gradgradcheck)]
    if failed:
        out(f"FAILED: {', '.join(failed)}")
        return 1
    out(f"all {len(rows)} ops pass parity, gradcheck and gradgradcheck")
    return 0
