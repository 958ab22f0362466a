"""``python -m torch_activations plot``: every activation and its derivative
on one PNG grid, computed with our forward and backward kernels.

Shading shows where a unit stops learning: red where the derivative is
exactly zero (a dead zone: no gradient at all), orange where, in a tail, it
is below SATURATION in magnitude (saturated: the gradient all but vanishes).
Dotted vertical lines mark kinks, and each panel states the function's
range: "(" or ")" where a bound is only approached, inf where it grows
without bound.
"""
import math
import os
from typing import List, Tuple

import torch

from . import functional as F
from .optable import OPS

SATURATION = 0.05


def panels() -> List[Tuple[str, callable, List[float]]]:
    """(title, f, kinks) for each activation, default parameters."""
    out = []
    for op in OPS:
        params = op.params[0]
        title = op.name + ("(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")" if params else "")
        out.append((title, (lambda o, p: lambda x: o.ours(x, **p))(op, params), op.kinks(params)))
    out.append(("prelu(weight=0.25)", lambda x: F.prelu(x, torch.full((1,), 0.25, dtype=x.dtype)), [0.0]))
    out.append(("rrelu (eval)", lambda x: F.rrelu(x, training=False), [0.0]))
    return out


def _regions(x: torch.Tensor, mask: torch.Tensor):
    """Maximal [x0, x1] intervals where mask holds."""
    spans, start = [], None
    for i, m in enumerate(mask.tolist()):
        if m and start is None:
            start = i
        if not m and start is not None:
            spans.append((x[start].item(), x[i - 1].item()))
            start = None
    if start is not None:
        spans.append((x[start].item(), x[-1].item()))
    return spans


def _range_text(f) -> str:
    """The range: infinite where the function keeps growing (from |x| = 1e3
    to 1e4), open where the extreme sits at the edge of [-20, 20] and the
    function still moves there (the bound is a limit, given at |x| = 1e4),
    closed where it is attained."""
    def at(v: float) -> float:
        return f(torch.tensor([v], dtype=torch.float64)).item() + 0.0   # + 0.0: no "-0"

    y = f(torch.linspace(-20, 20, 40001, dtype=torch.float64))
    ends = []
    for sign, v in ((-1, y.min().item()), (1, y.max().item())):
        far, near = at(sign * 1e4), at(sign * 1e3)
        edge = (y[0] if sign < 0 else y[-1]).item() == v
        if edge and abs(far) > 50 and abs(far) > 2 * abs(near):
            ends.append("-inf" if far < 0 else "inf")
        elif edge and at(sign * 10.0) != at(sign * 20.0):
            ends.append(("(" if sign < 0 else "") + f"{far:.3g}" + (")" if sign > 0 else ""))
        else:
            ends.append(("[" if sign < 0 else "") + f"{v + 0.0:.3g}" + ("]" if sign > 0 else ""))
    lo, hi = ends
    lo = "(-inf" if lo == "-inf" else ("(inf" if lo == "inf" else lo)
    hi = "inf)" if hi == "inf" else ("-inf)" if hi == "-inf" else hi)
    return f"range {lo}, {hi}"


def render(path: str, xmax: float = 6.0, columns: int = 6) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    items = panels()
    rows = math.ceil(len(items) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.7 * rows), squeeze=False)
    x = torch.linspace(-xmax, xmax, 2401, dtype=torch.float64)
    for ax, (title, f, kinks) in zip(axes.flat, items):
        xx = x.clone().requires_grad_(True)
        y = f(xx)
        (dy,) = torch.autograd.grad(y, xx, torch.ones_like(y))
        y, dy = y.detach(), dy.detach()
        for x0, x1 in _regions(x, dy == 0):
            ax.axvspan(x0, x1, color="#d62728", alpha=0.13, lw=0)
        for x0, x1 in _regions(x, (dy != 0) & (dy.abs() < SATURATION)):
            # Saturation is a tail: a small slope at an interior minimum
            # (silu near -1.28) is a turning point, not a saturated unit.
            if x0 == -xmax or x1 == xmax:
                ax.axvspan(x0, x1, color="#ff7f0e", alpha=0.13, lw=0)
        for k in kinks:
            if -xmax <= k <= xmax:
                ax.axvline(k, color="0.4", lw=0.8, ls=":")
        ax.axhline(0, color="0.75", lw=0.6)
        ax.axvline(0, color="0.75", lw=0.6)
        ax.plot(x, y, color="#1f77b4", lw=1.8)
        ax.plot(x, dy, color="#2ca02c", lw=1.3, ls="--")
        lo = min(y.min().item(), dy.min().item(), -1.2)
        hi = max(min(y.max().item(), xmax), dy.max().item(), 1.2)
        ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
        ax.set_xlim(-xmax, xmax)
        ax.set_title(title, fontsize=10)
        ax.text(0.03, 0.95, _range_text(f), transform=ax.transAxes, fontsize=7.5, va="top",
                bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="0.8", alpha=0.9))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.25, lw=0.5)
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    handles = [Line2D([], [], color="#1f77b4", lw=1.8, label="f(x)"),
               Line2D([], [], color="#2ca02c", lw=1.3, ls="--", label="f'(x) (our backward kernel)"),
               Patch(color="#d62728", alpha=0.3, label="dead zone: f'(x) = 0"),
               Patch(color="#ff7f0e", alpha=0.3, label=f"saturated: 0 < |f'(x)| < {SATURATION}"),
               Line2D([], [], color="0.4", lw=0.8, ls=":", label="kink")]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, 0.995))
    fig.suptitle("torch_activations: each activation and its derivative on "
                 f"[-{xmax:g}, {xmax:g}] (float64, default parameters)", y=1.02, fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return os.path.abspath(path)


def run(output: str = os.path.join("out", "torch_activations.png"), xmax: float = 6.0, out=print) -> int:
    path = render(output, xmax)
    out(f"wrote {path} ({len(panels())} activations)")
    return 0
