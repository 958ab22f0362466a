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
