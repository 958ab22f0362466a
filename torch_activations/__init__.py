"""torch_activations: activation functions as C++ ATen operators with
hand-written forward and backward kernels."""
import torch

from . import _C  # noqa: F401  (registers torch.ops.torch_activations.*)

ops = torch.ops.torch_activations

__all__ = ["ops"]
