"""torch_activations: activation functions as C++ ATen operators with
hand-written forward and backward kernels, differentiable twice, with
``torch.nn.functional`` and ``torch.nn`` drop-ins.

    import torch_activations as ta
    y = ta.functional.gelu(x)          # torch_activations::gelu
    act = ta.nn.SiLU()                 # a torch.nn.SiLU that runs our kernels
    torch.ops.torch_activations.gelu   # the raw operator
"""
from typing import List

import torch

from . import _C  # noqa: F401  (registers torch.ops.torch_activations.*)
from . import _vmap, functional, nn
from .patching import patch
from .replace import replace_activations, restore_activations

ops = torch.ops.torch_activations
_vmap.register()

__version__ = "0.1.0"
__all__ = ["ops", "functional", "nn", "cpu_capability", "set_cpu_capability", "supported_cpu_capabilities",
           "set_lookup_tables", "replace_activations", "restore_activations", "patch"]


def cpu_capability() -> str:
    """The instruction set the CPU kernels run with: 'AVX512', 'AVX2' or 'DEFAULT'.

    Chosen at import like PyTorch's own kernels (it follows ``ATEN_CPU_CAPABILITY``);
    ``TORCH_ACTIVATIONS_CPU_CAPABILITY`` overrides it for this library alone."""
    return ops._cpu_capability()


def set_cpu_capability(name: str) -> None:
    """Switch the CPU kernels to another compiled-in instruction set this CPU supports."""
    ops._set_cpu_capability(name)


def supported_cpu_capabilities() -> List[str]:
    """The instruction sets compiled in and supported by this CPU, widest first."""
    return list(ops._supported_cpu_capabilities())


def set_lookup_tables(enabled: bool) -> None:
    """Turn the float16 / bfloat16 lookup tables on (the default) or off.

    For the ops whose arithmetic costs more than a table read
    (``ops._lookup_table_ops()``, and the gated units built on them), a
    float16 or bfloat16 input is looked up in a table of f(x) and f'(x) over
    its 65536 values, filled by the same float32 code, so results are the
    same bits either way. A table (256 KiB)
    is built once an op has computed 65536 elements with the same parameters;
    at most 32 are kept. Turning them off frees them."""
    ops._set_lookup_tables(bool(enabled))
