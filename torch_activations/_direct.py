"""The operators' default overloads as direct C++ callables.

``torch.ops.torch_activations.relu(x)`` picks the overload and then runs two
Python frames (the packet's and the overload's ``__call__``) before reaching
the generic C++ binding, which matches the arguments against the schema and
boxes them. A call of hardshrink on one element takes 2.2 us that way, 2.0 us
through the generic binding alone, and 0.9 us through ``ops.hardshrink``
(ATen's ``F.hardshrink``: 1.1-1.4 us). ``ops.relu`` here is a callable of the
extension (csrc/python/calls.cpp) that converts plain positional arguments
itself and calls the operator unboxed through the dispatcher, as ATen's
bindings do; any other call (keywords, defaults left out, tensor subclasses,
__torch_function__ modes, other number types) it hands to the generic binding
unchanged. Operators whose arguments or results it does not convert get the
generic binding itself. So that tracing still sees the operator:

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

from . import _C

_NS = "torch_activations"


def _default_overloads():
    """Every operator of the library with a default overload, by name."""
    names = {s.name.split("::", 1)[1] for s in torch._C._jit_get_all_schemas()
             if s.name.startswith(_NS + "::") and s.overload_name == ""}
    packets = getattr(torch.ops, _NS)
    return {name: getattr(packets, name).default for name in sorted(names)}


def _register_with_dynamo(targets):
    from torch.compiler import substitute_in_graph

    def substitute_for(name, overload):
        def substitute(*args, **kwargs):
            return overload(*args, **kwargs)
        substitute.__name__ = substitute.__qualname__ = name
        return substitute

    for name, (overload, fn) in targets.items():
        substitute_in_graph(fn, skip_signature_check=True)(substitute_for(name, overload))


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
    direct = _C._calls({name: overload._op for name, overload in overloads.items()})
    module = types.ModuleType(__name__ + ".ops")
    targets = {}
    for name, overload in overloads.items():
        fn = direct.get(name, overload._op)
        setattr(module, name, fn)
        builtins(fn, f"{_NS}::{name}")
        targets[name] = (overload, fn)
    if "torch._dynamo" in sys.modules:
        _register_with_dynamo(targets)
    else:
        sys.meta_path.insert(0, _AfterImport("torch._dynamo", lambda: _register_with_dynamo(targets)))
    return module


ops = _build()
