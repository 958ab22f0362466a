"""Routing PyTorch's functional activation calls through torch_activations.

``with torch_activations.patch(): model(x)`` runs every ``torch.nn.functional``
activation call (``F.gelu``, ``F.silu``, ...), the ``torch.*`` functions of the
same name (``torch.sigmoid``, ``torch.relu``, ...) and the ``Tensor`` methods
(``x.sigmoid()``, ``x.relu_()``, ...) on our operators, for which
:mod:`torch_activations.functional` has a function of the same name.

It is a :class:`torch.overrides.TorchFunctionMode`, not a rebinding of module
attributes: PyTorch asks the mode about every call, whatever reference the
caller holds. That matters because models keep function objects around:
``nn.TransformerEncoderLayer`` stores ``F.relu`` or ``F.gelu`` in
``self.activation`` at construction, a reference that replacing
``torch.nn.functional.gelu`` would never reach. It also means nothing is
rebound, so there is nothing to restore: leaving the block, normally or by an
exception, pops the mode, and blocks nest. Like every torch function mode it
applies to the thread that entered it.

Under ``torch.compile`` (the block around the compiled call) the mode is
traced like the rest of the code: the graph holds our operators, and the
counts count the calls traced, not the calls run.

A call is routed only when our operator can take it: the arguments bind to
our function's signature (``out=`` or ``generator=`` do not), every tensor
argument is a plain strided ``Tensor`` or ``Parameter`` of a floating dtype we
compile for, on a device our operator has a kernel for, and (``prelu``) the
weight is one our op accepts. Anything else runs PyTorch's original. The
counts of both are kept on the object the ``with`` statement returns.
"""
import inspect
from collections import Counter
from typing import Callable, Dict, Iterable, Optional, Tuple

import torch
import torch.nn.functional as TF
from torch.overrides import TorchFunctionMode

from . import functional as ta_F

__all__ = ["patch", "ActivationPatch", "routable_functions"]

_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_PLAIN = (torch.Tensor, torch.nn.Parameter)
_DISPATCH_KEY = {"cpu": "CPU", "cuda": "CUDA", "meta": "Meta"}


def routable_functions() -> Dict[object, Tuple[str, str]]:
    """{PyTorch callable: (our function name, label)} for every PyTorch
    activation callable whose name :mod:`torch_activations.functional` has."""
    out = {}
    for name in ta_F.__all__:
        for owner, label in ((TF, "torch.nn.functional"), (torch, "torch"), (torch.Tensor, "torch.Tensor")):
            fn = getattr(owner, name, None)
            if fn is None or fn is getattr(ta_F, name):
                continue
            # F.gelu is torch._C._nn.gelu: one object, the first label wins.
            out.setdefault(fn, (name, f"{label}.{name}"))
    return out


def _prelu_ok(bound: dict) -> bool:
    x, w = bound["input"], bound["weight"]
    channels = x.size(1) if x.dim() >= 2 else 1
    return (w.dim() <= 1 and w.dtype == x.dtype and w.device == x.device
            and w.numel() in (1, channels))


_EXTRA_CHECKS: Dict[str, Callable[[dict], bool]] = {"prelu": _prelu_ok}


def _bind(names: tuple, required: tuple, args: tuple, kwargs: dict) -> Optional[dict]:
    """{parameter: value} if the call fits our function's signature (all
    our parameters are positional-or-keyword), else None. Written out
    rather than inspect.Signature.bind so that torch.compile can trace it."""
    if len(args) > len(names):
        return None
    bound = dict(zip(names, args))
    for k, v in kwargs.items():
        if k not in names or k in bound:
            return None
        bound[k] = v
    for r in required:
        if r not in bound:
            return None
    return bound


def _can_route(name: str, devices: frozenset, bound: dict) -> bool:
    for arg_name, value in bound.items():
        if isinstance(value, torch.Tensor):
            if arg_name not in ("input", "weight"):
                return False   # a tensor where our op takes a float
            if type(value) not in _PLAIN or value.layout != torch.strided or value.dtype not in _FLOAT_DTYPES:
                return False
            if value.device.type not in devices:
                return False
    check = _EXTRA_CHECKS.get(name.rstrip("_"))
    return check is None or check(bound)


class ActivationPatch(TorchFunctionMode):
    """The mode :func:`patch` returns. ``routed`` and ``fell_back`` count calls
    by PyTorch name (``'torch.nn.functional.gelu'``)."""

    def __init__(self, include: Optional[Iterable[str]] = None, exclude: Optional[Iterable[str]] = None):
        super().__init__()
        include = set(include) if include is not None else None
        exclude = set(exclude or ())
        known = set(ta_F.__all__)
        unknown = ((include or set()) | exclude) - known
        if unknown:
            raise ValueError(f"patch: not torch_activations.functional names: {sorted(unknown)}")
        self._table = {}
        for fn, (name, label) in routable_functions().items():
            if (include is None or name in include) and name not in exclude:
                ours = getattr(ta_F, name)
                # Device types with a kernel, looked up now rather than per
                # call: cheaper, and torch.compile can trace a set lookup.
                qualified = f"torch_activations::{name.rstrip('_')}"
                devices = frozenset(dev for dev, key in _DISPATCH_KEY.items()
                                    if torch._C._dispatch_has_kernel_for_dispatch_key(qualified, key))
                params = inspect.signature(ours).parameters.values()
                names = tuple(p.name for p in params)
                required = tuple(p.name for p in params if p.default is inspect.Parameter.empty)
                self._table[fn] = (ours, names, required, name, label, devices)
        self.routed: Counter = Counter()
        self.fell_back: Counter = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        entry = self._table.get(func)
        if entry is not None:
            ours, names, required, name, label, devices = entry
            bound = _bind(names, required, args, kwargs)
            if bound is not None and _can_route(name, devices, bound):
                self.routed[label] += 1
                return ours(*args, **kwargs)
            self.fell_back[label] += 1
        return func(*args, **kwargs)


def patch(include: Optional[Iterable[str]] = None, exclude: Optional[Iterable[str]] = None) -> ActivationPatch:
    """Context manager: inside the block, PyTorch's functional activations run
    our operators where they can (see the module docstring).

    ``include`` / ``exclude``: :mod:`torch_activations.functional` names
    (``"gelu"``, ``"relu_"``) to restrict the routing to or to leave out.

        with torch_activations.patch() as p:
            y = model(x)               # F.gelu, F.silu, torch.sigmoid, x.relu() ... run ours
        print(p.routed)                # Counter({'torch.nn.functional.silu': 4, ...})
    """
    return ActivationPatch(include, exclude)
