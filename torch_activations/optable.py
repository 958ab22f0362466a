"""The table of activations: one row per op.

The test suite parametrizes over OPS and ``python -m torch_activations check``
reports over it, so a new activation needs one row here (plus its functor,
registry line and Python wrapper). Each row names our function, PyTorch's
built-in, the parameter sets to test, what the backward saves, kinks and
switch points, limits where PyTorch's formula returns NaN, low-precision
tolerances with their reason, and an accurate float64 reference
(reference.py).
"""
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as TF

from . import functional as F
from .reference import REFERENCES

INF = math.inf
NAN = math.nan

# assert_close's defaults; PyTorch's OpInfo entries use them for these ops on
# CPU unless the row overrides them.
# For float16 / bfloat16, like PyTorch's OpInfo reference tests, both sides
# are compared with the exact answer for the low-precision inputs: the
# built-in evaluated in float64 and rounded once.
DEFAULT_TOL = {
    torch.float64: (1e-7, 1e-7),
    torch.float32: (1.3e-6, 1e-5),
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
}


@dataclass
class Op:
    name: str                       # registry name: torch.ops.torch_activations.<name>
    ours: Callable                  # torch_activations.functional.<name>
    ref: Callable                   # PyTorch's built-in with the same signature
    params: List[dict] = field(default_factory=lambda: [{}])   # first = defaults
    saves: str = "input"            # what the out-of-place backward saves: "input" or "output"
    # PyTorch's backward op taking (grad, output), for ops that save their
    # output: the float64 reference of our backward op on a rounded output.
    ref_backward: Optional[Callable] = None
    inplace: bool = True            # has an in-place form
    # Kinks of a piecewise-linear part, where the subgradient is a constant
    # that must equal PyTorch's exactly.
    kinks: Callable[[dict], List[float]] = lambda p: []
    # Points where a smooth formula switches to another (softplus' threshold).
    switches: Callable[[dict], List[float]] = lambda p: []
    # Inputs for which PyTorch returns NaN although the function has a limit:
    # {x: (forward value, derivative)}; we return the limit.
    limits: Dict[float, Tuple[float, float]] = field(default_factory=dict)
    # (rtol, atol, reason) for float16 / bfloat16 where PyTorch's OpInfo
    # overrides the defaults.
    lowp_tol: Dict[torch.dtype, Tuple[float, float, str]] = field(default_factory=dict)
    scale: float = 3.0              # spread of the random inputs
    smooth: bool = True             # differentiable twice away from kinks (gradgradcheck)
    # In-place with these params must be refused (PyTorch refuses too).
    inplace_refused: List[dict] = field(default_factory=list)

    def exact(self, x: torch.Tensor, **params):
        """(f(x), f'(x)) in float64, accurate (see reference.py)."""
        return REFERENCES[self.name](x.to(torch.float64), **params)


def _p(**kw):
    return kw


OPS: List[Op] = [
    Op("sigmoid", F.sigmoid, torch.sigmoid, saves="output", inplace=False,
       ref_backward=torch.ops.aten.sigmoid_backward),
    Op("tanh", F.tanh, torch.tanh, saves="output", inplace=False, ref_backward=torch.ops.aten.tanh_backward),
    Op("relu", F.relu, TF.relu, saves="output", kinks=lambda p: [0.0],
       ref_backward=lambda g, y: torch.ops.aten.threshold_backward(g, y, 0)),
    Op("leaky_relu", F.leaky_relu, TF.leaky_relu, params=[{}, _p(negative_slope=0.2), _p(negative_slope=-0.3)],
       kinks=lambda p: [0.0], inplace_refused=[_p(negative_slope=-0.3)]),
    Op("elu", F.elu, TF.elu, params=[{}, _p(alpha=0.5), _p(alpha=-0.7)], kinks=lambda p: [0.0],
       inplace_refused=[_p(alpha=-0.7)]),
    Op("selu", F.selu, TF.selu, kinks=lambda p: [0.0]),
    Op("celu", F.celu, TF.celu, params=[{}, _p(alpha=0.5), _p(alpha=2.5)], kinks=lambda p: [0.0]),
    Op("softplus", F.softplus, TF.softplus, params=[{}, _p(beta=2.0, threshold=10.0), _p(beta=0.5, threshold=3.0)],
       inplace=False, switches=lambda p: [p.get("threshold", 20.0) / p.get("beta", 1.0)],
       lowp_tol={torch.float16: (1e-2, 1e-2, "OpInfo nn.functional.softplus: toleranceOverride fp16 1e-2"),
                 torch.bfloat16: (1e-2, 1e-2, "OpInfo nn.functional.softplus: toleranceOverride bf16 1e-2")}),
    Op("silu", F.silu, TF.silu, limits={-INF: (0.0, 0.0), INF: (INF, 1.0)}),
    Op("swish", F.swish, lambda x, beta=1.0, inplace=False: x * torch.sigmoid(beta * x),
       params=[{}, _p(beta=1.7), _p(beta=0.3)], limits={-INF: (0.0, 0.0), INF: (INF, 1.0)}),
    Op("gelu", F.gelu, TF.gelu, params=[{}, _p(approximate="tanh")], inplace=False,
       limits={-INF: (0.0, 0.0), INF: (INF, 1.0)}),
    Op("mish", F.mish, TF.mish, limits={-INF: (0.0, 0.0), INF: (INF, 1.0)},
       lowp_tol={torch.float16: (1e-3, 1e-2, "OpInfo nn.functional.mish: toleranceOverride fp16 atol 1e-2")}),
    Op("relu6", F.relu6, TF.relu6, kinks=lambda p: [0.0, 6.0], scale=5.0),
    Op("hardtanh", F.hardtanh, TF.hardtanh, params=[{}, _p(min_val=-2.0, max_val=0.5)],
       kinks=lambda p: [p.get("min_val", -1.0), p.get("max_val", 1.0)]),
    Op("hardsigmoid", F.hardsigmoid, TF.hardsigmoid, kinks=lambda p: [-3.0, 3.0], scale=4.0),
    Op("hardswish", F.hardswish, TF.hardswish, kinks=lambda p: [-3.0, 3.0], scale=4.0,
       limits={-INF: (0.0, 0.0)}),
    Op("logsigmoid", F.logsigmoid, TF.logsigmoid, inplace=False),
    Op("softsign", F.softsign, TF.softsign, inplace=False, limits={-INF: (-1.0, 0.0), INF: (1.0, 0.0)},
       lowp_tol={torch.float16: (1.3e-4, 1e-3, "OpInfo nn.functional.softsign: toleranceOverride fp16 atol 1e-3")}),
    Op("tanhshrink", F.tanhshrink, TF.tanhshrink, inplace=False,
       lowp_tol={torch.bfloat16: (1.6e-2, 1e-2, "OpInfo nn.functional.tanhshrink: toleranceOverride bf16 atol 1e-2")}),
    Op("softshrink", F.softshrink, TF.softshrink, params=[{}, _p(lambd=1.5), _p(lambd=0.0)], inplace=False,
       kinks=lambda p: [-p.get("lambd", 0.5), p.get("lambd", 0.5)], smooth=False),
    Op("hardshrink", F.hardshrink, TF.hardshrink, params=[{}, _p(lambd=1.5)], inplace=False,
       kinks=lambda p: [-p.get("lambd", 0.5), p.get("lambd", 0.5)], smooth=False),
    Op("threshold", F.threshold, TF.threshold, params=[_p(threshold=0.5, value=-2.0), _p(threshold=-1.0, value=0.0)],
       kinks=lambda p: [p["threshold"]], smooth=False),
]

OPS_BY_NAME = {op.name: op for op in OPS}


def cases():
    """(op, params) pairs, with readable ids."""
    out = []
    for op in OPS:
        for p in op.params:
            pid = ",".join(f"{k}={v}" for k, v in p.items())
            out.append((op, p, f"{op.name}[{pid}]" if pid else op.name))
    return out


CASES = cases()
CASE_IDS = [c[2] for c in CASES]


def tol(op: Op, dtype: torch.dtype) -> Tuple[float, float]:
    if dtype in op.lowp_tol:
        return op.lowp_tol[dtype][:2]
    return DEFAULT_TOL[dtype]


def edge_values(op: Op, params: dict) -> List[float]:
    """0, -0, +-inf, NaN, +-1e4, denormals, tiny normals, and every kink with
    its float32 neighbours."""
    vals = [0.0, -0.0, INF, -INF, NAN, 1e4, -1e4, 1e-40, -1e-40, 1e-30, -1e-30, 1.0, -1.0, 40.0, -40.0, 100.0, -100.0]
    for k in op.kinks(params) + op.switches(params):
        k32 = torch.tensor(k, dtype=torch.float32)
        vals += [k, torch.nextafter(k32, torch.tensor(INF)).item(), torch.nextafter(k32, torch.tensor(-INF)).item()]
    return vals


def away_from_kinks(op: Op, params: dict, x: torch.Tensor, margin: float = 1e-2) -> torch.Tensor:
    """x with values within `margin` of a kink pushed away from it (for
    finite-difference checks)."""
    x = x.clone()
    for k in op.kinks(params):
        near = (x - k).abs() < margin
        x = torch.where(near, x + 2 * margin * torch.sign(x - k + 1e-12), x)
    return x
