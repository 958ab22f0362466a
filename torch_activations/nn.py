"""Drop-in replacements for ``torch.nn`` activation modules.

Each class subclasses its ``torch.nn`` counterpart, so constructor
arguments, defaults, ``extra_repr``, parameters and ``state_dict`` keys are
PyTorch's own; only ``forward`` changes, to run the torch_activations
operator. ``Swish`` has no ``torch.nn`` counterpart.
"""
from typing import Optional

import torch
from torch import Tensor
from torch.nn.parameter import Parameter

from . import functional as F

__all__ = [
    "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "Softplus", "SiLU", "Swish",
    "GELU", "Mish", "ReLU6", "Hardtanh", "Hardsigmoid", "Hardswish", "LogSigmoid", "Softsign", "Tanhshrink",
    "Softshrink", "Hardshrink", "Threshold", "RReLU",
]


class Sigmoid(torch.nn.Sigmoid):
    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Tanh(torch.nn.Tanh):
    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class ReLU(torch.nn.ReLU):
    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input, inplace=self.inplace)


class LeakyReLU(torch.nn.LeakyReLU):
    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope, self.inplace)


class PReLU(torch.nn.PReLU):
    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)


class ELU(torch.nn.ELU):
    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha, self.inplace)


class SELU(torch.nn.SELU):
    def forward(self, input: Tensor) -> Tensor:
        return F.selu(input, self.inplace)


class CELU(torch.nn.CELU):
    def forward(self, input: Tensor) -> Tensor:
        return F.celu(input, self.alpha, self.inplace)


class Softplus(torch.nn.Softplus):
    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)


class SiLU(torch.nn.SiLU):
    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input, inplace=self.inplace)


class Swish(torch.nn.Module):
    r"""Swish: :math:`x \sigma(\beta x)`; ``beta=1`` is SiLU.

    Args:
        beta: the initial (or fixed) value of :math:`\beta`.
        learnable: if True, ``beta`` is a :class:`~torch.nn.Parameter` of ``num_parameters`` elements
            (1, or one per channel along dim 1) that receives gradients.
        num_parameters: size of the learnable ``beta``.
        inplace: write into the input (fixed ``beta`` only).
    """

    __constants__ = ["learnable", "num_parameters", "inplace"]

    def __init__(self, beta: float = 1.0, learnable: bool = False, num_parameters: int = 1, inplace: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__()
        if learnable and inplace:
            raise ValueError("Swish: inplace=True is only available with a fixed beta")
        self.learnable = learnable
        self.num_parameters = num_parameters
        self.inplace = inplace
        self.init = float(beta)
        if learnable:
            self.beta = Parameter(torch.full((num_parameters,), float(beta), device=device, dtype=dtype))
        else:
            self.beta = float(beta)

    def reset_parameters(self) -> None:
        if self.learnable:
            torch.nn.init.constant_(self.beta, self.init)

    def forward(self, input: Tensor) -> Tensor:
        return F.swish(input, self.beta, self.inplace)

    def extra_repr(self) -> str:
        if self.learnable:
            return f"num_parameters={self.num_parameters}, learnable=True"
        return f"beta={self.beta}" + (", inplace=True" if self.inplace else "")


class GELU(torch.nn.GELU):
    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, approximate=self.approximate)


class Mish(torch.nn.Mish):
    def forward(self, input: Tensor) -> Tensor:
        return F.mish(input, inplace=self.inplace)


class ReLU6(torch.nn.ReLU6):
    def forward(self, input: Tensor) -> Tensor:
        return F.relu6(input, self.inplace)


class Hardtanh(torch.nn.Hardtanh):
    def forward(self, input: Tensor) -> Tensor:
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)


class Hardsigmoid(torch.nn.Hardsigmoid):
    def forward(self, input: Tensor) -> Tensor:
        return F.hardsigmoid(input, self.inplace)


class Hardswish(torch.nn.Hardswish):
    def forward(self, input: Tensor) -> Tensor:
        return F.hardswish(input, self.inplace)


class LogSigmoid(torch.nn.LogSigmoid):
    def forward(self, input: Tensor) -> Tensor:
        return F.logsigmoid(input)


class Softsign(torch.nn.Softsign):
    def forward(self, input: Tensor) -> Tensor:
        return F.softsign(input)


class Tanhshrink(torch.nn.Tanhshrink):
    def forward(self, input: Tensor) -> Tensor:
        return F.tanhshrink(input)


class Softshrink(torch.nn.Softshrink):
    def forward(self, input: Tensor) -> Tensor:
        return F.softshrink(input, self.lambd)


class Hardshrink(torch.nn.Hardshrink):
    def forward(self, input: Tensor) -> Tensor:
        return F.hardshrink(input, self.lambd)


class Threshold(torch.nn.Threshold):
    def forward(self, input: Tensor) -> Tensor:
        return F.threshold(input, self.threshold, self.value, self.inplace)


class RReLU(torch.nn.RReLU):
    def forward(self, input: Tensor) -> Tensor:
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)


# ------------------------------------------- softmax family, gated units, losses
__all__ += [
    "Softmax", "LogSoftmax", "Softmin", "Softmax2d", "GLU", "SwiGLU", "GeGLU", "ReGLU", "CrossEntropyLoss",
    "BCEWithLogitsLoss",
]


class Softmax(torch.nn.Softmax):
    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim, _stacklevel=5)


class LogSoftmax(torch.nn.LogSoftmax):
    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim, _stacklevel=5)


class Softmin(torch.nn.Softmin):
    def forward(self, input: Tensor) -> Tensor:
        return F.softmin(input, self.dim, _stacklevel=5)


class Softmax2d(torch.nn.Softmax2d):
    def forward(self, input: Tensor) -> Tensor:
        if input.dim() not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {input.dim()}D instead")
        return F.softmax(input, -3, _stacklevel=5)


class GLU(torch.nn.GLU):
    def forward(self, input: Tensor) -> Tensor:
        return F.glu(input, self.dim)


class _GatedUnit(torch.nn.Module):
    __constants__ = ["dim"]

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class SwiGLU(_GatedUnit):
    r"""SwiGLU: :math:`\mathrm{silu}(a) \otimes b`, the activation on the FIRST half (LLaMA-style
    ``silu(x W_gate) * (x W_up)``). ``forward(input)`` splits ``input`` in halves along ``dim``;
    ``forward(gate, up)`` takes the halves as two tensors. See :func:`functional.swiglu`."""

    # The operator overloads directly (not F.swiglu, whose keyword-only
    # dim TorchScript cannot compile), so the module scripts.
    def forward(self, input: Tensor, up: Optional[Tensor] = None) -> Tensor:
        if up is None:
            return torch.ops.torch_activations.swiglu(input, self.dim)
        return torch.ops.torch_activations.swiglu(input, up)


class ReGLU(_GatedUnit):
    r"""ReGLU: :math:`\mathrm{relu}(a) \otimes b`, the activation on the FIRST half. See :class:`SwiGLU`."""

    def forward(self, input: Tensor, up: Optional[Tensor] = None) -> Tensor:
        if up is None:
            return torch.ops.torch_activations.reglu(input, self.dim)
        return torch.ops.torch_activations.reglu(input, up)


class GeGLU(_GatedUnit):
    r"""GeGLU: :math:`\mathrm{gelu}(a) \otimes b`, the activation on the FIRST half; ``approximate`` as
    in :class:`torch.nn.GELU`. See :class:`SwiGLU`."""

    __constants__ = ["dim", "approximate"]

    def __init__(self, dim: int = -1, approximate: str = "none") -> None:
        super().__init__(dim)
        self.approximate = approximate

    def forward(self, input: Tensor, up: Optional[Tensor] = None) -> Tensor:
        if up is None:
            return torch.ops.torch_activations.geglu(input, self.dim, self.approximate)
        return torch.ops.torch_activations.geglu(input, up, self.approximate)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, approximate={self.approximate!r}"


class CrossEntropyLoss(torch.nn.CrossEntropyLoss):
    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class BCEWithLogitsLoss(torch.nn.BCEWithLogitsLoss):
    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight, pos_weight=self.pos_weight,
                                                  reduction=self.reduction)
