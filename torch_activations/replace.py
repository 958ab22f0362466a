"""Swapping the activation modules of an existing model.

:func:`replace_activations` puts a :mod:`torch_activations.nn` module in
place of every ``torch.nn`` activation module it has a counterpart for;
:func:`restore_activations` undoes it. The counterparts are found by class
name in :mod:`torch_activations.nn`, so a class added there is picked up
without changes here.

A replacement is a new module object of our class that carries the old one's
state: its attributes (constructor arguments, ``inplace``, ``training``), the
very same ``Parameter`` and buffer objects (so optimizers, devices and dtypes
are untouched), and the very same hook dictionaries, so hooks registered on
the old module run on the new one and their handles still remove them. The
old module itself is not modified.
"""
import fnmatch
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Type, Union

import torch

from . import nn as ta_nn

__all__ = ["replace_activations", "restore_activations", "ReplacementReport", "counterparts"]

# Classes PyTorch files under its activations that are not activation
# functions, so not worth a "left alone" line in a report.
_NOT_ACTIVATIONS = {"MultiheadAttention"}

Selector = Union[str, Type[torch.nn.Module], Callable[[str, torch.nn.Module], bool]]


def counterparts() -> Dict[type, type]:
    """{torch.nn class: torch_activations.nn class} for every class of ours that
    subclasses the ``torch.nn`` class of the same name."""
    out = {}
    for name in ta_nn.__all__:
        ours = getattr(ta_nn, name)
        theirs = getattr(torch.nn, name, None)
        if isinstance(theirs, type) and issubclass(ours, theirs) and ours is not theirs:
            out[theirs] = ours
    return out


@dataclass
class ReplacementReport:
    """What :func:`replace_activations` / :func:`restore_activations` did.

    ``replaced``: (qualified module name, old class name, new class name) per
    replaced position in the tree (a module shared by several positions is
    replaced by one new shared module, listed at each position).
    ``left_alone``: (qualified name, class name, reason) for each activation
    module that was not replaced.
    ``module``: the root, which is a new object if the root itself was replaced.
    """

    module: torch.nn.Module
    replaced: List[Tuple[str, str, str]] = field(default_factory=list)
    left_alone: List[Tuple[str, str, str]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"replaced {len(self.replaced)}, left alone {len(self.left_alone)}"]
        lines += [f"  {name or '<root>'}: {old} -> {new}" for name, old, new in self.replaced]
        lines += [f"  {name or '<root>'}: {cls} left alone ({why})" for name, cls, why in self.left_alone]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _matches(selector: Selector, name: str, module: torch.nn.Module) -> bool:
    if isinstance(selector, type):
        return type(module) is selector
    if isinstance(selector, str):
        return fnmatch.fnmatchcase(type(module).__name__, selector) or fnmatch.fnmatchcase(name, selector)
    if callable(selector):
        return bool(selector(name, module))
    raise TypeError(f"include/exclude entries must be classes, strings or callables, got {type(selector).__name__}")


def _selected(selectors: Optional[Iterable[Selector]], name: str, module: torch.nn.Module) -> bool:
    return any(_matches(s, name, module) for s in selectors)


def _as_list(selectors) -> Optional[list]:
    if selectors is None:
        return None
    if isinstance(selectors, (str, type)) or (callable(selectors) and not isinstance(selectors, Iterable)):
        return [selectors]
    return list(selectors)


def _transplant(old: torch.nn.Module, new_cls: type) -> torch.nn.Module:
    """A `new_cls` object with `old`'s state (see the module docstring)."""
    new = new_cls.__new__(new_cls)
    # Module.__setattr__ routes Parameters and Modules into their registries;
    # the raw dict copy sidesteps that and keeps every attribute as is.
    object.__setattr__(new, "__dict__", dict(old.__dict__))
    # Own registries, same contents: adding a parameter to one module later
    # must not add it to the other. Hook dicts stay shared on purpose (handles).
    for reg in ("_parameters", "_buffers", "_modules"):
        object.__setattr__(new, reg, OrderedDict(getattr(old, reg)))
    object.__setattr__(new, "_non_persistent_buffers_set", set(old._non_persistent_buffers_set))
    return new


def _display(cls: type) -> str:
    if cls.__module__.startswith("torch.nn."):
        return f"torch.nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__name__}"


def _swap(model: torch.nn.Module, mapping: Dict[type, type], include, exclude, family: set,
          already: Dict[type, str], unknown: str) -> ReplacementReport:
    include, exclude = _as_list(include), _as_list(exclude)
    report = ReplacementReport(module=model)
    done: Dict[int, torch.nn.Module] = {}   # id(old) -> new, for modules shared by several parents
    visited = set()

    def consider(name: str, module: torch.nn.Module) -> Optional[torch.nn.Module]:
        cls = type(module)
        if id(module) in done:
            report.replaced.append((name, _display(cls), _display(type(done[id(module)]))))
            return done[id(module)]
        if cls in mapping:
            if include is not None and not _selected(include, name, module):
                report.left_alone.append((name, _display(cls), "not included"))
                return None
            if exclude is not None and _selected(exclude, name, module):
                report.left_alone.append((name, _display(cls), "excluded"))
                return None
            new_cls = mapping[cls]
            if new_cls.__init__ is not cls.__init__:
                # Our class keeps state the old object lacks; a transplant
                # would leave it half built.
                report.left_alone.append((name, _display(cls), f"{new_cls.__qualname__} has its own constructor"))
                return None
            new = _transplant(module, new_cls)
            done[id(module)] = new
            report.replaced.append((name, _display(cls), _display(new_cls)))
            return new
        if cls in already:
            report.left_alone.append((name, _display(cls), already[cls]))
        elif any(issubclass(cls, base) for base in mapping):
            base = next(b for b in mapping if issubclass(cls, b))
            report.left_alone.append((name, _display(cls), f"subclass of {_display(base)}, a class of its own"))
        elif cls in family and cls.__name__ not in _NOT_ACTIVATIONS:
            report.left_alone.append((name, _display(cls), unknown))
        return None

    def walk(prefix: str, parent: torch.nn.Module) -> None:
        if id(parent) in visited:
            return
        visited.add(id(parent))
        for key, child in list(parent._modules.items()):
            if child is None:
                continue
            name = f"{prefix}.{key}" if prefix else key
            new = consider(name, child)
            if new is not None:
                # Direct registry write: Sequential, ModuleList and ModuleDict
                # index their children through _modules too.
                parent._modules[key] = new
                if isinstance(parent, torch.nn.TransformerEncoderLayer) and key == "activation":
                    _encoder_layer_fast_path(parent, name, report)
            else:
                walk(name, child)

    root_new = consider("", model)
    if root_new is not None:
        report.module = root_new
    else:
        walk("", model)
    return report


def _encoder_layer_fast_path(layer: torch.nn.TransformerEncoderLayer, name: str, report) -> None:
    """nn.TransformerEncoderLayer has a fused inference path (eval mode, no
    autograd) that computes a ReLU or GELU inside one ATen kernel, chosen by
    the flag its constructor sets from the activation's class. Our ReLU/GELU
    subclass PyTorch's, so the flag would stay set and the fused path would
    bypass the module. The flag follows the activation module in place now:
    PyTorch's constructor rule for torch.nn modules, off for ours."""
    act = layer.activation
    ours = type(act).__module__ == ta_nn.__name__
    if ours:
        flag = 0
    else:
        flag = 1 if isinstance(act, torch.nn.ReLU) else 2 if isinstance(act, torch.nn.GELU) else 0
    if getattr(layer, "activation_relu_or_gelu", flag) != flag:
        layer.activation_relu_or_gelu = flag
        report.notes.append(f"{name.rsplit('.', 1)[0] or '<root>'}: TransformerEncoderLayer's fused inference path "
                            + ("turned off so that the activation module runs" if ours else "turned back on"))


def _torch_activation_classes() -> set:
    mod = torch.nn.modules.activation
    return {v for v in vars(mod).values() if isinstance(v, type) and issubclass(v, torch.nn.Module)
            and v.__module__ == mod.__name__}


def replace_activations(model: torch.nn.Module, include: Optional[Iterable[Selector]] = None,
                        exclude: Optional[Iterable[Selector]] = None) -> ReplacementReport:
    """Replace, in place, every ``torch.nn`` activation module of ``model`` that
    has a :mod:`torch_activations.nn` counterpart.

    Only exact ``torch.nn`` classes are replaced (``type(m) is torch.nn.GELU``):
    a user subclass may override more than ``forward``. ``include`` / ``exclude``
    take classes (``torch.nn.GELU``), strings matched (as ``fnmatch`` patterns)
    against the class name or the qualified module name (``"GELU"``,
    ``"encoder.*"``), or callables ``(name, module) -> bool``.

    Returns a :class:`ReplacementReport`; ``report.module`` is the model (or its
    replacement, when ``model`` is itself an activation module).
    """
    already = {getattr(ta_nn, n): "already torch_activations" for n in ta_nn.__all__}
    return _swap(model, counterparts(), include, exclude, _torch_activation_classes(), already,
                 unknown="unknown class: no torch_activations counterpart")


def restore_activations(model: torch.nn.Module, include: Optional[Iterable[Selector]] = None,
                        exclude: Optional[Iterable[Selector]] = None) -> ReplacementReport:
    """The reverse of :func:`replace_activations`: every :mod:`torch_activations.nn`
    module with a ``torch.nn`` counterpart becomes that ``torch.nn`` module again
    (same state, parameters and hooks). Modules without one (``Swish``) stay."""
    mapping = {ours: theirs for theirs, ours in counterparts().items()}
    ours_all = {getattr(ta_nn, n) for n in ta_nn.__all__}
    family = ours_all - set(mapping)
    already = {cls: "already torch.nn" for cls in _torch_activation_classes()}
    return _swap(model, mapping, include, exclude, family, already, unknown="no torch.nn counterpart")
