"""A valid call for every operator registered under torch.ops.torch_activations
(every overload), built from its schema, for tests that then break one
argument at a time.

Tensors get the shape SHAPE (channel size C = SHAPE[1]); a tensor argument
named in CHANNEL_ARGS gets shape (C,); numbers come from the op's row in the
optable (first parameter set) or the forward op's schema defaults, then from
OVERRIDES. Arguments whose value depends on the op family (the halved
grad_output of the gated units, a loss's class-index target and the
statistics its forward saved) come from `special`. test_bad_input checks that
every registered operator has a call that succeeds, so a new operator cannot
slip past these tests unnoticed: one the generic rules cannot call gets an
entry here.
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
GATED = {"glu", "swiglu", "geglu", "reglu"}
LOSSES = {"cross_entropy", "binary_cross_entropy_with_logits"}
# Values for arguments the schema gives no usable default, per op or per base
# op (the name without overload and without _, _backward, _double_backward).
OVERRIDES: Dict[str, Dict[str, Any]] = {
    # The noise is only read in training with a non-empty range.
    "rrelu": dict(training=True),
    "rrelu_": dict(training=True),
    "rrelu_with_noise": dict(training=True),
    "rrelu_with_noise_": dict(training=True),
    "rrelu_backward": dict(lower=0.1, upper=0.3, training=True, is_result=False),
    # Reduce over the channels.
    "softmax": dict(dim=1),
    "log_softmax": dict(dim=1),
    "softmin": dict(dim=1),
}


# Tensor arguments the op ignores by design in these calls: with class-index
# targets there is no target gradient, so its incoming gradient is unused.
UNUSED = {("cross_entropy_double_backward", "grad_grad_target")}


# Tensor arguments whose float dtype may differ from the others': the
# softmax family's grad_grad has the forward input's dtype, which `dtype=`
# lets differ from the output's.
FREE_DTYPE = {(f"{n}_double_backward", "grad_grad") for n in ("softmax", "log_softmax", "softmin")}


def op_names() -> List[str]:
    """Public operators of the library (not the _private helpers), an
    overload as "name.overload"."""
    names = []
    for full in torch._C._dispatch_get_all_op_names():
        ns, _, name = full.partition("::")
        if ns == "torch_activations" and not name.startswith("_"):
            names.append(name)
    return sorted(names)


def overload(name: str):
    base, _, ov = name.partition(".")
    return getattr(getattr(ta.ops, base), ov or "default")


def base_name(name: str) -> str:
    name = name.partition(".")[0]
    for s in SUFFIXES:
        if name.endswith(s) and hasattr(ta.ops, name[: -len(s)]):
            return name[: -len(s)]
    return name


def schema(name: str):
    return overload(name)._schema


@dataclass
class Call:
    name: str
    args: List[Any]
    # Positions of floating-point tensor arguments (the ones tests corrupt).
    tensors: List[int] = field(default_factory=list)

    @property
    def qualified(self) -> str:
        return f"torch_activations::{self.name.partition('.')[0]}"

    def run(self, args=None):
        args = self.args if args is None else args
        # Keyword-only arguments (an out= overload's `out`) go by name.
        decl = schema(self.name).arguments
        pos = [v for v, a in zip(args, decl) if not a.kwarg_only]
        kw = {a.name: v for v, a in zip(args, decl) if a.kwarg_only}
        return overload(self.name)(*pos, **kw)


def _type_kind(arg) -> str:
    return str(arg.type).replace("Optional[", "").rstrip("]")


def _half(shape):
    return tuple(shape[:-1]) + (shape[-1] // 2,)


def special(name: str, arg: str, values: Dict[str, Any], dtype, shape, g):
    """The value of `arg` where it depends on the op family; None for the
    generic rule."""
    base = base_name(name)
    pair = name.endswith(".pair")
    if base in GATED and not pair and arg == "grad_output":
        return torch.randn(_half(shape), generator=g, dtype=torch.float64).to(dtype)
    if base in LOSSES:
        if arg == "target" and base == "cross_entropy":
            return torch.randint(0, max(shape[1], 1), (shape[0],) + tuple(shape[2:]), generator=g)
        if arg == "grad_output":  # the mean: a scalar
            return torch.randn((), generator=g, dtype=torch.float64).to(dtype)
        if arg == "stats":
            return ta.ops.cross_entropy(values["self"], values["target"], None, values["reduction"],
                                        values["ignore_index"], values["label_smoothing"])[1]
    if arg == "input_dtype":
        return dtype
    return None


def valid_call(name: str, dtype=torch.float32, seed: int = 0, shape=SHAPE) -> Call:
    g = torch.Generator().manual_seed(seed)
    base = base_name(name)
    # The forward's defaults serve its backward ops, whose schemas have none.
    params = {a.name: a.default_value for a in schema(base).arguments if a.has_default_value()}
    params.update(OPS_BY_NAME[base].params[0] if base in OPS_BY_NAME else {})
    params.update(OVERRIDES.get(base, {}))
    params.update(OVERRIDES.get(name, {}))
    args, tensors, values = [], [], {}
    for i, a in enumerate(schema(name).arguments):
        kind = _type_kind(a)
        v = special(name, a.name, values, dtype, shape, g)
        if v is not None:
            pass
        elif a.name in params:
            v = params[a.name]
        elif kind == "Tensor":
            shp = (shape[1],) if a.name in CHANNEL_ARGS else shape
            t = torch.randn(shp, generator=g, dtype=torch.float64)
            if a.name in CHANNEL_ARGS:
                t = t.abs() * 0.5 + 0.1
            v = t.to(dtype)
        elif str(a.type) == "List[bool]":  # an output mask: every output
            v = [True] * (a.N or 2)
        elif a.has_default_value():
            v = a.default_value
        elif kind == "bool":
            v = False
        elif kind == "float":
            v = 0.5
        elif kind == "int":
            v = 1
        else:
            raise AssertionError(f"{name}: no value for argument {a.name} of type {a.type}; add it to OVERRIDES")
        if isinstance(v, torch.Tensor) and v.is_floating_point() and (name, a.name) not in UNUSED:
            tensors.append(i)
        values[a.name] = v
        args.append(v)
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
