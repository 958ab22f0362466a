"""Activation functions with the names, signatures and defaults of
``torch.nn.functional``, each running a torch_activations C++ operator.

``inplace=True`` writes into ``input`` and returns it, as in PyTorch.
"""
from typing import Union

import torch
from torch import Tensor

from . import _C  # noqa: F401  (loads the operators)

_ops = torch.ops.torch_activations

__all__ = [
    "sigmoid", "tanh", "relu", "relu_", "leaky_relu", "leaky_relu_", "prelu", "elu", "elu_", "selu", "selu_",
    "celu", "celu_", "softplus", "silu", "swish", "gelu", "mish", "relu6", "hardtanh", "hardtanh_",
    "hardsigmoid", "hardswish", "logsigmoid", "softsign", "tanhshrink", "softshrink", "hardshrink",
    "threshold", "threshold_", "rrelu", "rrelu_",
]


def sigmoid(input: Tensor) -> Tensor:
    r"""sigmoid(input) -> Tensor: :math:`1 / (1 + e^{-x})`, accurate in both tails."""
    return _ops.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    r"""tanh(input) -> Tensor: hyperbolic tangent."""
    return _ops.tanh(input)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    r"""relu(input, inplace=False) -> Tensor: :math:`\max(0, x)`; relu'(0) = 0."""
    if inplace:
        _ops.relu_(input)
        return input
    return _ops.relu(input)


def relu_(input: Tensor) -> Tensor:
    r"""relu_(input) -> Tensor: in-place :func:`relu`."""
    return relu(input, inplace=True)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    r"""leaky_relu(input, negative_slope=0.01, inplace=False) -> Tensor:
    :math:`x` if :math:`x > 0`, else :math:`\text{negative\_slope} \cdot x`."""
    if inplace:
        _ops.leaky_relu_(input, float(negative_slope))
        return input
    return _ops.leaky_relu(input, float(negative_slope))


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    r"""leaky_relu_(input, negative_slope=0.01) -> Tensor: in-place :func:`leaky_relu`."""
    return leaky_relu(input, negative_slope, inplace=True)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    r"""prelu(input, weight) -> Tensor: :math:`x` if :math:`x > 0`, else :math:`w_c x`, with ``weight``
    of one element or one per channel (dim 1)."""
    return _ops.prelu(input, weight)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    r"""elu(input, alpha=1.0, inplace=False) -> Tensor: :math:`x` if :math:`x > 0`,
    else :math:`\alpha (e^x - 1)` (computed with expm1)."""
    if inplace:
        _ops.elu_(input, float(alpha))
        return input
    return _ops.elu(input, float(alpha))


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    r"""elu_(input, alpha=1.0) -> Tensor: in-place :func:`elu`."""
    return elu(input, alpha, inplace=True)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    r"""selu(input, inplace=False) -> Tensor: scaled ELU with the self-normalizing constants."""
    if inplace:
        _ops.selu_(input)
        return input
    return _ops.selu(input)


def selu_(input: Tensor) -> Tensor:
    r"""selu_(input) -> Tensor: in-place :func:`selu`."""
    return selu(input, inplace=True)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    r"""celu(input, alpha=1.0, inplace=False) -> Tensor: :math:`\max(0,x) + \min(0, \alpha(e^{x/\alpha} - 1))`."""
    if inplace:
        _ops.celu_(input, float(alpha))
        return input
    return _ops.celu(input, float(alpha))


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    r"""celu_(input, alpha=1.0) -> Tensor: in-place :func:`celu`."""
    return celu(input, alpha, inplace=True)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    r"""softplus(input, beta=1, threshold=20) -> Tensor: :math:`\log(1 + e^{\beta x}) / \beta`,
    and :math:`x` where :math:`\beta x > \text{threshold}`."""
    return _ops.softplus(input, float(beta), float(threshold))


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    r"""silu(input, inplace=False) -> Tensor: :math:`x \sigma(x)`."""
    if inplace:
        _ops.silu_(input)
        return input
    return _ops.silu(input)


def swish(input: Tensor, beta: Union[float, Tensor] = 1.0, inplace: bool = False) -> Tensor:
    r"""swish(input, beta=1.0, inplace=False) -> Tensor: :math:`x \sigma(\beta x)`; ``beta=1`` is
    :func:`silu`. ``beta`` may be a float or a tensor of one element or one per channel (dim 1),
    in which case it receives a gradient (``inplace`` is then not available)."""
    if isinstance(beta, Tensor):
        if inplace:
            raise ValueError("swish: inplace=True needs a float beta; a tensor beta is learnable")
        return _ops.swish_learnable(input, beta)
    if inplace:
        _ops.swish_(input, float(beta))
        return input
    return _ops.swish(input, float(beta))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    r"""gelu(input, approximate='none') -> Tensor: :math:`x \Phi(x)`, or with ``approximate='tanh'``
    :math:`\frac{x}{2}(1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3)))`."""
    return _ops.gelu(input, approximate)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    r"""mish(input, inplace=False) -> Tensor: :math:`x \tanh(\mathrm{softplus}(x))`."""
    if inplace:
        _ops.mish_(input)
        return input
    return _ops.mish(input)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    r"""relu6(input, inplace=False) -> Tensor: :math:`\min(\max(0, x), 6)`."""
    if inplace:
        _ops.relu6_(input)
        return input
    return _ops.relu6(input)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    r"""hardtanh(input, min_val=-1., max_val=1., inplace=False) -> Tensor: :math:`x` clamped to
    ``[min_val, max_val]``."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    if inplace:
        _ops.hardtanh_(input, float(min_val), float(max_val))
        return input
    return _ops.hardtanh(input, float(min_val), float(max_val))


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    r"""hardtanh_(input, min_val=-1., max_val=1.) -> Tensor: in-place :func:`hardtanh`."""
    return hardtanh(input, min_val, max_val, inplace=True)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    r"""hardsigmoid(input, inplace=False) -> Tensor: :math:`\mathrm{relu6}(x + 3) / 6`."""
    if inplace:
        _ops.hardsigmoid_(input)
        return input
    return _ops.hardsigmoid(input)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    r"""hardswish(input, inplace=False) -> Tensor: :math:`x \cdot \mathrm{relu6}(x + 3) / 6`."""
    if inplace:
        _ops.hardswish_(input)
        return input
    return _ops.hardswish(input)


def logsigmoid(input: Tensor) -> Tensor:
    r"""logsigmoid(input) -> Tensor: :math:`\log \sigma(x)`."""
    return _ops.logsigmoid(input)


def softsign(input: Tensor) -> Tensor:
    r"""softsign(input) -> Tensor: :math:`x / (1 + |x|)`."""
    return _ops.softsign(input)


def tanhshrink(input: Tensor) -> Tensor:
    r"""tanhshrink(input) -> Tensor: :math:`x - \tanh(x)`."""
    return _ops.tanhshrink(input)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    r"""softshrink(input, lambd=0.5) -> Tensor: :math:`x \mp \lambda` outside :math:`[-\lambda, \lambda]`,
    0 inside."""
    return _ops.softshrink(input, float(lambd))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    r"""hardshrink(input, lambd=0.5) -> Tensor: :math:`x` outside :math:`[-\lambda, \lambda]`, 0 inside."""
    return _ops.hardshrink(input, float(lambd))


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    r"""threshold(input, threshold, value, inplace=False) -> Tensor: :math:`x` if :math:`x > \text{threshold}`,
    else ``value``."""
    if inplace:
        _ops.threshold_(input, float(threshold), float(value))
        return input
    return _ops.threshold(input, float(threshold), float(value))


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    r"""threshold_(input, threshold, value) -> Tensor: in-place :func:`threshold`."""
    _ops.threshold_(input, float(threshold), float(value))
    return input


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    r"""rrelu(input, lower=1./8, upper=1./3, training=False, inplace=False) -> Tensor: leaky ReLU with
    a slope drawn uniformly from ``[lower, upper]`` per element in training (from torch's default
    generator, so ``torch.manual_seed`` reproduces PyTorch's own draws), and ``(lower + upper) / 2``
    otherwise."""
    if inplace:
        _ops.rrelu_(input, float(lower), float(upper), training)
        return input
    return _ops.rrelu(input, float(lower), float(upper), training)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False) -> Tensor:
    r"""rrelu_(input, lower=1./8, upper=1./3, training=False) -> Tensor: in-place :func:`rrelu`."""
    return rrelu(input, lower, upper, training, inplace=True)
