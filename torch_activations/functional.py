"""Activation functions with the names, signatures and defaults of
``torch.nn.functional``, each running a torch_activations C++ operator.

``inplace=True`` writes into ``input`` and returns it, as in PyTorch.
"""
from typing import Union

import torch
from torch import Tensor

from ._direct import ops as _ops

# The gated units pick their overload (halves of one tensor, or a pair).
_packets = torch.ops.torch_activations

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


# ------------------------------------------- softmax family, gated units, losses
import warnings  # noqa: E402
from typing import Optional  # noqa: E402

from torch.nn import _reduction as _Reduction  # noqa: E402

__all__ += [
    "softmax", "log_softmax", "softmin", "glu", "swiglu", "geglu", "reglu", "cross_entropy",
    "binary_cross_entropy_with_logits",
]


def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    # torch.nn.functional's legacy rule and warning for dim=None.
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                  "Change the call to include dim=X as an argument.", stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3, dtype: Optional[torch.dtype] = None
            ) -> Tensor:
    r"""softmax(input, dim=None, dtype=None) -> Tensor: :math:`e^{x_i} / \sum_j e^{x_j}` along ``dim``.

    The row maximum is subtracted before exponentiating, so no logit overflows; float16 and bfloat16
    accumulate in float32. ``dtype`` casts the input first, as in PyTorch (float16/bfloat16 to float32
    without a copy). The output is contiguous."""
    if dim is None:
        dim = _softmax_dim("softmax", input.dim(), _stacklevel)
    return _ops.softmax(input, dim, dtype)


def log_softmax(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3, dtype: Optional[torch.dtype] = None
                ) -> Tensor:
    r"""log_softmax(input, dim=None, dtype=None) -> Tensor: :math:`x_i - \max x - \log \sum_j e^{x_j - \max x}`."""
    if dim is None:
        dim = _softmax_dim("log_softmax", input.dim(), _stacklevel)
    return _ops.log_softmax(input, dim, dtype)


def softmin(input: Tensor, dim: Optional[int] = None, _stacklevel: int = 3, dtype: Optional[torch.dtype] = None
            ) -> Tensor:
    r"""softmin(input, dim=None, dtype=None) -> Tensor: :func:`softmax` of :math:`-x`."""
    if dim is None:
        dim = _softmax_dim("softmin", input.dim(), _stacklevel)
    return _ops.softmin(input, dim, dtype)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    r"""glu(input, dim=-1) -> Tensor: :math:`a \otimes \sigma(b)`, where ``input`` is split in halves
    :math:`a` (first) and :math:`b` (second) along ``dim``, as in PyTorch."""
    return _ops.glu(input, dim)


def _gated(name: str, input: Tensor, up, dim: int, *params) -> Tensor:
    if up is None:
        return getattr(_ops, name)(input, dim, *params)
    if not isinstance(up, Tensor):
        raise TypeError(f"{name}: `up` must be a Tensor (pass the dimension to split as dim=...), got {type(up)}")
    return getattr(_packets, name).pair(input, up, *params)


def swiglu(input: Tensor, up: Optional[Tensor] = None, *, dim: int = -1) -> Tensor:
    r"""swiglu(input, dim=-1) or swiglu(gate, up) -> Tensor: :math:`\mathrm{silu}(a) \otimes b`.

    The activation is applied to the FIRST half and multiplies the second, the convention of
    LLaMA-style MLPs, ``silu(x @ W_gate) * (x @ W_up)`` (:func:`glu` gates the other way). Either
    ``input`` is split in halves :math:`a, b` along ``dim``, or ``gate`` (:math:`a`) and ``up``
    (:math:`b`) come as two tensors of the same shape. The backward saves only the inputs and writes
    both halves' gradients in one pass."""
    return _gated("swiglu", input, up, dim)


def geglu(input: Tensor, up: Optional[Tensor] = None, *, dim: int = -1, approximate: str = "none") -> Tensor:
    r"""geglu(input, dim=-1, approximate='none') or geglu(gate, up, approximate='none') -> Tensor:
    :math:`\mathrm{gelu}(a) \otimes b`, the activation on the FIRST half (see :func:`swiglu`);
    ``approximate`` as in :func:`gelu`."""
    return _gated("geglu", input, up, dim, approximate)


def reglu(input: Tensor, up: Optional[Tensor] = None, *, dim: int = -1) -> Tensor:
    r"""reglu(input, dim=-1) or reglu(gate, up) -> Tensor: :math:`\mathrm{relu}(a) \otimes b`, the
    activation on the FIRST half (see :func:`swiglu`)."""
    return _gated("reglu", input, up, dim)


def cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, size_average: Optional[bool] = None,
                  ignore_index: int = -100, reduce: Optional[bool] = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    r"""cross_entropy(input, target, weight=None, ignore_index=-100, reduction='mean', label_smoothing=0.0)
    -> Tensor: PyTorch's cross entropy from logits, fused.

    ``input`` is :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, ..., d_K)`; ``target`` holds class
    indices (int64 or uint8, without the class dimension) or class probabilities (``input``'s shape and
    dtype). One pass over the logits computes the loss and saves two numbers per row (the row maximum
    and the log of the normaliser); the backward recomputes the probabilities from them, so no
    probability or log-probability tensor is kept between forward and backward."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    return _ops.cross_entropy(input, target, weight, _Reduction.get_enum(reduction), ignore_index,
                              float(label_smoothing))[0]


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                                     size_average: Optional[bool] = None, reduce: Optional[bool] = None,
                                     reduction: str = "mean", pos_weight: Optional[Tensor] = None) -> Tensor:
    r"""binary_cross_entropy_with_logits(input, target, weight=None, reduction='mean', pos_weight=None)
    -> Tensor: :math:`w ((1 - t) x - (1 + (p - 1) t) \log \sigma(x))` elementwise, stable for any
    finite logit; ``weight`` and ``pos_weight`` broadcast to ``input``."""
    if size_average is not None or reduce is not None:
        reduction = _Reduction.legacy_get_string(size_average, reduce)
    reduction_enum = _Reduction.get_enum(reduction)
    if not (target.size() == input.size()):
        raise ValueError(f"Target size ({target.size()}) must be the same as input size ({input.size()})")
    return _ops.binary_cross_entropy_with_logits(input, target, weight, pos_weight, reduction_enum)
