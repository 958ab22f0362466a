"""Float64 reference values and derivatives of every activation, written to
stay accurate where the textbook formulas cancel (expm1, log1p, erfc, series
near zero, stable sigmoid tails). Used to measure errors in ulps of float32
and bfloat16, for our kernels and PyTorch's alike.

Each entry maps (x, **params) -> (f(x), f'(x)) on float64 tensors.
"""
import math
from typing import Callable, Dict, Tuple

import torch
from torch import Tensor

__all__ = ["REFERENCES", "reference"]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x: Tensor) -> Tensor:
    e = torch.exp(-x.abs())
    return torch.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _sech2(x: Tensor) -> Tensor:
    e = torch.exp(-2 * x.abs())
    return 4 * e / (1 + e) ** 2


def _softplus(z: Tensor) -> Tensor:
    return torch.clamp_min(z, 0) + torch.log1p(torch.exp(-z.abs()))


def _phi(x: Tensor) -> Tensor:
    return torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _Phi(x: Tensor) -> Tensor:
    return 0.5 * torch.special.erfc(-x / math.sqrt(2))


# x - tanh(x) = sum c_n x^(2n-1), n >= 2, c_n = -2^2n (2^2n - 1) B_2n / (2n)!
# (B the Bernoulli numbers): 1/3, -2/15, 17/315, ... Twenty terms reach 1e-20
# relative at |x| = 1/2, where x - tanh(x) cancels by only a factor of 12.
_TANHSHRINK_SERIES = (
    0.3333333333333333, -0.13333333333333333, 0.05396825396825397, -0.021869488536155203,
    0.008863235529902197, -0.003592128036572481, 0.0014558343870513183, -0.000590027440945586,
    0.00023912911424355248, -9.691537956929451e-05, 3.927832388331683e-05, -1.5918905069328964e-05,
    6.451689215655431e-06, -2.6147711512907546e-06, 1.0597268320104654e-06, -4.294911078273806e-07,
    1.7406618963571648e-07, -7.054636946400968e-08, 2.859136662305254e-08, -1.1587644432798853e-08)


def _tanhshrink(x: Tensor) -> Tensor:
    x2 = x * x
    p = torch.zeros_like(x)
    for c in reversed(_TANHSHRINK_SERIES):
        p = p * x2 + c
    return torch.where(x.abs() < 0.5, x * x2 * p, x - torch.tanh(x))


def _gelu_tanh(x: Tensor) -> Tuple[Tensor, Tensor]:
    k0, k1 = math.sqrt(2 / math.pi), 0.044715
    u2 = 2 * k0 * (x + k1 * x ** 3)
    s, sn = _sigmoid(u2), _sigmoid(-u2)
    du2 = 2 * k0 * (1 + 3 * k1 * x * x)
    return x * s, s + x * du2 * s * sn


def _mish(x: Tensor) -> Tuple[Tensor, Tensor]:
    t = torch.tanh(_softplus(x))
    return x * t, t + x * _sigmoid(x) * (1 - t) * (1 + t)


def _elu(x, alpha, scale, input_scale):
    neg = alpha * scale * torch.expm1(x * input_scale)
    dneg = alpha * scale * input_scale * torch.exp(x * input_scale)
    return torch.where(x > 0, scale * x, neg), torch.where(x > 0, torch.full_like(x, scale), dneg)


def _swish(x, beta):
    s, sn = _sigmoid(beta * x), _sigmoid(-beta * x)
    return x * s, s * (1 + beta * x * sn)


def _clip(x, lo, hi):
    inside = (x > lo) & (x < hi)
    return torch.clamp(x, lo, hi), inside.to(x.dtype)


def _hardswish(x):
    y = x * torch.clamp(x + 3, 0, 6) / 6
    # (2x + 3) / 6 is exact to the division where x / 3 + 1/2 cancels (x near -3/2).
    d = torch.where(x <= -3, 0.0, torch.where(x < 3, (2 * x + 3) / 6, 1.0)).to(x.dtype)
    return y, d


REFERENCES: Dict[str, Callable[..., Tuple[Tensor, Tensor]]] = {
    "sigmoid": lambda x: (_sigmoid(x), _sigmoid(x) * _sigmoid(-x)),
    "tanh": lambda x: (torch.tanh(x), _sech2(x)),
    "relu": lambda x: (torch.clamp_min(x, 0), (x > 0).to(x.dtype)),
    "leaky_relu": lambda x, negative_slope=0.01: (
        torch.where(x > 0, x, negative_slope * x), torch.where(x > 0, 1.0, negative_slope).to(x.dtype)),
    "elu": lambda x, alpha=1.0: _elu(x, alpha, 1.0, 1.0),
    "selu": lambda x: _elu(x, SELU_ALPHA, SELU_SCALE, 1.0),
    "celu": lambda x, alpha=1.0: _elu(x, alpha, 1.0, 1.0 / alpha),
    "softplus": lambda x, beta=1.0, threshold=20.0: (
        torch.where(beta * x > threshold, x, _softplus(beta * x) / beta),
        torch.where(beta * x > threshold, 1.0, _sigmoid(beta * x)).to(x.dtype)),
    "silu": lambda x: _swish(x, 1.0),
    "swish": lambda x, beta=1.0: _swish(x, beta),
    "gelu": lambda x, approximate="none": (
        _gelu_tanh(x) if approximate == "tanh" else (x * _Phi(x), _Phi(x) + x * _phi(x))),
    "mish": _mish,
    "relu6": lambda x: _clip(x, 0.0, 6.0),
    "hardtanh": lambda x, min_val=-1.0, max_val=1.0: _clip(x, min_val, max_val),
    "hardsigmoid": lambda x: (torch.clamp(x + 3, 0, 6) / 6, ((x > -3) & (x < 3)).to(x.dtype) / 6),
    "hardswish": _hardswish,
    "logsigmoid": lambda x: (-_softplus(-x), _sigmoid(-x)),
    "softsign": lambda x: (x / (1 + x.abs()), 1 / (1 + x.abs()) ** 2),
    "tanhshrink": lambda x: (_tanhshrink(x), torch.tanh(x) ** 2),
    "softshrink": lambda x, lambd=0.5: (
        torch.where(x > lambd, x - lambd, torch.where(x < -lambd, x + lambd, 0.0)),
        ((x > lambd) | (x < -lambd)).to(x.dtype)),
    "hardshrink": lambda x, lambd=0.5: (
        torch.where((x >= -lambd) & (x <= lambd), 0.0, x), ((x > lambd) | (x < -lambd)).to(x.dtype)),
    "threshold": lambda x, threshold=0.0, value=0.0: (
        torch.where(x <= threshold, value, x), (x > threshold).to(x.dtype)),
}


def reference(name: str, x: Tensor, **params) -> Tuple[Tensor, Tensor]:
    """(f(x), f'(x)) in float64 for the activation `name`."""
    return REFERENCES[name](x.to(torch.float64), **params)
