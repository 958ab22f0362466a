"""A valid call for every operator registered under torch.ops.torch_activations,
built from its schema, for tests that then break one argument at a time.

Tensors get the shape SHAPE (channel size C = SHAPE[1]); a tensor argument
named in CHANNEL_ARGS gets shape (C,); numbers come from the op's row in the
optable (first parameter set) or the forward op's schema defaults, then
from OVERRIDES. An operator that needs something else (an integer target, a
`dim`) gets an entry in OVERRIDES; test_bad_input checks that every
registered operator has a call that succeeds, so a new operator cannot slip
past these tests unnoticed.
"""
from dataclasses import dataclass, field
from typing import Any, Dict, List

import torch

import torch_activations as ta
from torch_activations.optable import OPS_BY_NAME

SHAPE = (2, 3, 4)
C = SHAPE[1]
# Tensor arguments holding one value per channel (dim 1) of the input.
CHANNEL_ARGS = {"weight", "beta", "grad_grad_weight", "grad_grad_beta"}
SUFFIXES = ("_double_backward", "_backward", "_")
# Values for arguments the schema gives no usable default, per op or per base
# op (the name without _, _backward, _double_backward).
OVERRIDES: Dict[str, Dict[str, Any]] = {
    # The noise is only read in training with a non-empty range.
    "rrelu": dict(training=True),
    "rrelu_": dict(training=True),
    "rrelu_backward": dict(lower=0.1, upper=0.3, training=True, is_result=False),
}


def op_names() -> List[str]:
    """Public operators of the library (not the _private helpers)."""
    names = []
    for full in torch._C._dispatch_get_all_op_names():
        ns, _, name = full.partition("::")
        if ns == "torch_activations" and not name.startswith("_"):
            names.append(name)
    return sorted(names)


def base_name(name: str) -> str:
    for s in SUFFIXES:
        if name.endswith(s) and hasattr(ta.ops, name[: -len(s)]):
            return name[: -len(s)]
    return name


def schema(name: str):
    return getattr(ta.ops, name).default._schema


@dataclass
class Call:
    name: str
    args: List[Any]
    # Positions of floating-point tensor arguments (the ones tests corrupt).
    tensors: List[int] = field(default_factory=list)

    @property
    def qualified(self) -> str:
        return f"torch_activations::{self.name}"

    def run(self, args=None):
        return getattr(ta.ops, self.name)(*(self.args if args is None else args))


def _type_kind(arg) -> str:
    return str(arg.type).replace("Optional[", "").rstrip("]")


def valid_call(name: str, dtype=torch.float32, seed: int = 0, shape=SHAPE) -> Call:
    g = torch.Generator().manual_seed(seed)
    base = base_name(name)
    # The forward's defaults serve its backward ops, whose schemas have none.
    params = {a.name: a.default_value for a in schema(base).arguments if a.has_default_value()}
    params.update(OPS_BY_NAME[base].params[0] if base in OPS_BY_NAME else {})
    params.update(OVERRIDES.get(base, {}))
    params.update(OVERRIDES.get(name, {}))
    args, tensors = [], []
    for i, a in enumerate(schema(name).arguments):
        kind = _type_kind(a)
        if a.name in params:
            args.append(params[a.name])
        elif kind == "Tensor":
            shp = (shape[1],) if a.name in CHANNEL_ARGS else shape
            t = torch.randn(shp, generator=g, dtype=torch.float64)
            if a.name in CHANNEL_ARGS:
                t = t.abs() * 0.5 + 0.1
            args.append(t.to(dtype))
            tensors.append(i)
        elif a.has_default_value():
            args.append(a.default_value)
        elif kind == "bool":
            args.append(False)
        elif kind == "float":
            args.append(0.5)
        elif kind == "int":
            args.append(1)
        else:
            raise AssertionError(f"{name}: no value for argument {a.name} of type {a.type}; add it to OVERRIDES")
    return Call(name, args, tensors)


def outputs(result) -> List[torch.Tensor]:
    """The tensors an op returned (none for the in-place ops, which return ())."""
    if result is None:
        return []
    if isinstance(result, torch.Tensor):
        return [result]
    return [t for t in result if isinstance(t, torch.Tensor)]


def backward_params(name: str, params: dict, is_result: bool = False) -> List[Any]:
    """The non-tensor arguments of `name`_backward (and _double_backward) for
    forward parameters `params`, the forward's defaults filling the rest."""
    values = {a.name: a.default_value for a in schema(name).arguments if a.has_default_value()}
    values.update(params)
    values["is_result"] = is_result
    return [values[a.name] for a in schema(name + "_backward").arguments if _type_kind(a) != "Tensor"]
