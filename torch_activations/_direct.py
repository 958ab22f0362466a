"""The operators' default overloads as the C++ callables behind them.

``torch.ops.torch_activations.relu(x)`` picks the overload and then runs two
Python frames (the packet's and the overload's ``__call__``) before reaching
C++: about 0.5 us per call, a quarter of a 4K-element relu. ``ops.relu`` here
is the callable those frames end in. So that tracing still sees the operator:

- TorchScript maps each callable to its builtin operator
  (``torch_activations::relu``), as it maps ``math.sqrt`` to ``aten::sqrt``;
- torch.compile (Dynamo) traces a substitute that calls the ``OpOverload``.
  Dynamo is large and loaded on first use, so the substitutes are registered
  when it is imported (at once if it already is).

Where either hook is missing from the installed PyTorch, ``ops`` is
``torch.ops.torch_activations`` itself.
"""
import importlib.abc
import importlib.util
import sys
import types
import warnings

import torch

from . import _C  # noqa: F401  (loads the operators)

_NS = "torch_activations"


def _default_overloads():
    """Every operator of the library with a default overload, by name."""
    names = {s.name.split("::", 1)[1] for s in torch._C._jit_get_all_schemas()
             if s.name.startswith(_NS + "::") and s.overload_name == ""}
    packets = getattr(torch.ops, _NS)
    return {name: getattr(packets, name).default for name in sorted(names)}


def _register_with_dynamo(overloads):
    from torch.compiler import substitute_in_graph

    def substitute_for(name, overload):
        def substitute(*args, **kwargs):
            return overload(*args, **kwargs)
        substitute.__name__ = substitute.__qualname__ = name
        return substitute

    for name, overload in overloads.items():
        substitute_in_graph(overload._op, skip_signature_check=True)(substitute_for(name, overload))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs `then` right after the module `name` has been executed."""

    def __init__(self, name, then):
        self.name, self.then = name, then

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run, then = spec.loader.exec_module, self.then

        def exec_module(module):
            run(module)
            try:
                then()
            except Exception as e:  # never let this break Dynamo's own import
                warnings.warn(f"torch_activations: torch.compile will not trace torch_activations.functional "
                              f"calls ({type(e).__name__}: {e}); call torch.ops.torch_activations.* instead")
        spec.loader.exec_module = exec_module
        return spec


def _build():
    builtins = getattr(getattr(torch.jit, "_builtins", None), "_register_builtin", None)
    if builtins is None or not hasattr(torch.compiler, "substitute_in_graph"):
        return getattr(torch.ops, _NS)
    overloads = _default_overloads()
    module = types.ModuleType(__name__ + ".ops")
    for name, overload in overloads.items():
        setattr(module, name, overload._op)
        builtins(overload._op, f"{_NS}::{name}")
    if "torch._dynamo" in sys.modules:
        _register_with_dynamo(overloads)
    else:
        sys.meta_path.insert(0, _AfterImport("torch._dynamo", lambda: _register_with_dynamo(overloads)))
    return module


ops = _build()
