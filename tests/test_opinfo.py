"""Parity on PyTorch's own test inputs: the OpInfo database
(torch.testing._internal.common_methods_invocations.op_db).

For every op with a built-in counterpart (every OpInfo variant of it), every
sample input and reference input (CPU; float32, float64, bfloat16 where the
OpInfo supports them) gives the built-in's value and gradients, with the
tolerances of test_pointwise.py: an output or gradient in float32/float64
against the built-in in the same dtypes, one in bfloat16 against the
built-in evaluated in float64 on the same inputs and rounded once. Every
error input raises the OpInfo's error. Where our documented behaviour
differs, the test says so explicitly:

* README "Numerics": at an infinite input where PyTorch's formula gives NaN
  although the function has a limit, we return the limit (optable `limits`);
  those elements are checked against the limit instead.
* At a NaN input PyTorch's vectorized backward gives some gradients that its
  scalar code does not (e.g. hardtanh: 0 vs grad_output); ours follow the
  scalar definitions everywhere, so NaN elements are checked against the
  built-in evaluated one element at a time.
* Integer, bool and complex inputs that the built-in accepts are refused
  with an error naming the op ("expected a floating point tensor"), unless
  the op takes a `dtype=` to compute in, which casts them first (unlike
  PyTorch's softmin, which negates a uint8 input before the cast).
* rrelu in training draws random slopes in the input's compute type, so it
  is compared with the built-in in the same dtype, same seed, exactly.
"""
import functools
import math

import pytest
import torch
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._utils import wrapper_set_seed

import torch_activations as ta
from torch_activations.optable import DEFAULT_TOL, OPS, OPS_BY_NAME, tol

DTYPES = [torch.float32, torch.float64, torch.bfloat16]
LOWP = (torch.float16, torch.bfloat16)
# Ours without a row in the optable (their own tests live elsewhere).
EXTRA = ["prelu", "rrelu", "softmax", "log_softmax", "softmin", "glu", "cross_entropy",
         "binary_cross_entropy_with_logits"]
NAMES = [op.name for op in OPS] + EXTRA


def opinfos_for(name):
    return [o for o in op_db if o.name in (f"nn.functional.{name}", name)]


PAIRS = [(name, o) for name in NAMES for o in opinfos_for(name)]
# Variants for float inputs (softmax's with_dtype) are checked for values;
# the others (silu's complex variant) only for refusal.
VALUE_PAIRS = [(n, o) for n, o in PAIRS if set(DTYPES) & set(o.supported_dtypes("cpu"))]


def pair_id(pair):
    name, o = pair
    return name + (f".{o.variant_test_name}" if o.variant_test_name else "")


def test_every_op_with_a_builtin_has_an_opinfo():
    missing = [name for name in NAMES if not opinfos_for(name)]
    # swish has no built-in; anything else without an OpInfo needs a look.
    assert missing == ["swish"], missing


def tensors_of(sample):
    """The tensor arguments of a sample in a fixed order."""
    out = [sample.input]
    out += [a for a in sample.args if isinstance(a, torch.Tensor)]
    out += [v for _, v in sorted(sample.kwargs.items()) if isinstance(v, torch.Tensor)]
    return out


def rebuild(sample, fn):
    """(input, args, kwargs) with fn applied to every tensor."""
    f = lambda a: fn(a) if isinstance(a, torch.Tensor) else a  # noqa: E731
    return f(sample.input), [f(a) for a in sample.args], {k: f(v) for k, v in sample.kwargs.items()}


def leaf(t, dtype=None):
    """A fresh leaf with t's values (floating tensors cast to `dtype`),
    requiring grad where the sample's tensor does."""
    rg = t.requires_grad
    t = t.detach()
    if t.is_floating_point() and dtype is not None:
        t = t.to(dtype)
    if not rg:
        return t
    return t.clone().requires_grad_(True) if t.is_contiguous() else t.requires_grad_(True)


def forward(fn, sample, dtype=None, seed=None):
    """fn on the sample's tensors (floating ones cast to `dtype` if given) as
    fresh leaves: (output, the leaves that require grad)."""
    inp, args, kwargs = rebuild(sample, lambda t: leaf(t, dtype))
    if seed is not None:
        torch.manual_seed(seed)
    y = fn(inp, *args, **kwargs)
    leaves = [t for t in [inp] + list(args) + [v for _, v in sorted(kwargs.items())]
              if isinstance(t, torch.Tensor) and t.requires_grad]
    return y, leaves


def backward(y, leaves, go):
    if y.numel() == 0 or not leaves or not y.requires_grad:
        return [None] * len(leaves)
    return list(torch.autograd.grad(y, leaves, go.to(y.dtype), allow_unused=True))


def scalar_grad_factor(ref, sample):
    """The built-in's derivative at NaN through its scalar code (a single
    element), in float64."""
    x = torch.tensor([math.nan], dtype=torch.float64, requires_grad=True)
    _, args, kwargs = rebuild(sample, lambda t: t.detach().to(torch.float64))
    y = ref(x, *args, **kwargs)
    (g,) = torch.autograd.grad(y, x, torch.ones_like(y))
    return g.item()


def assert_close(a, b, **kw):
    """torch.testing.assert_close on the elements that differ at all: the
    same element-wise criterion, a few passes over millions of elements
    instead of isclose's many."""
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    ne = a != b
    if ne.any():
        torch.testing.assert_close(a[ne], b[ne], **kw)


def ours_for(name, opinfo):
    """Our function, seeded like the OpInfo's op where that op seeds itself
    (rrelu's: wrapper_set_seed, seed 42)."""
    fn = getattr(ta.functional, name)
    if opinfo.gradcheck_wrapper is wrapper_set_seed:
        return functools.partial(wrapper_set_seed, fn)
    return fn


def _softmax_dim(sample):
    dim = sample.kwargs.get("dim", sample.args[0] if sample.args else None)
    if dim is None:  # torch.nn.functional's legacy rule
        dim = 0 if sample.input.dim() in (0, 1, 3) else 1
    return dim


# Ops whose backward reads their output, as PyTorch's do: in low precision
# the reference gradient is PyTorch's backward on the rounded output.
OUTPUT_BACKWARD = {
    "softmax": lambda go, y, s: torch._softmax_backward_data(go, y, _softmax_dim(s), y.dtype),
    "log_softmax": lambda go, y, s: torch._log_softmax_backward_data(go, y, _softmax_dim(s), y.dtype),
    "softmin": lambda go, y, s: -torch._softmax_backward_data(go, y, _softmax_dim(s), y.dtype),
}


def check_sample(name, opinfo, sample, dtype, idx):
    ours = ours_for(name, opinfo)
    ref = opinfo.op
    row = OPS_BY_NAME.get(name)

    def tolerance(t):
        return tol(row, t.dtype) if row else DEFAULT_TOL[t.dtype]

    exact = name == "rrelu" and sample.kwargs.get("training", False)
    what = f"{pair_id((name, opinfo))} {dtype} sample {idx} shape {tuple(sample.input.shape)} {sample.kwargs}"

    y, leaves = forward(ours, sample, seed=idx)
    widen = y.dtype in LOWP and not exact
    ry, rleaves = forward(ref, sample, torch.float64 if widen else None, seed=idx)
    assert y.shape == ry.shape, what
    if not widen:
        assert y.dtype == ry.dtype, what
        if y.numel() > 1:
            assert y.stride() == ry.stride(), f"{what}: strides {y.stride()} vs {ry.stride()}"
    # One grad_output, drawn in the output's dtype, for both sides.
    g = torch.Generator().manual_seed(idx)
    go = torch.randn(y.shape, generator=g, dtype=torch.float64 if y.dtype == torch.float64 else torch.float32)
    go = go.to(y.dtype)
    grads = backward(y, leaves, go)
    if widen and row is not None and row.saves == "output" and leaves:
        # The backward reads the rounded output, as PyTorch's does.
        rgrads = [row.ref_backward(go.to(torch.float64), y.detach().to(torch.float64))]
    elif widen and name in OUTPUT_BACKWARD and leaves:
        rgrads = [OUTPUT_BACKWARD[name](go.to(torch.float64), y.detach().to(torch.float64), sample)]
    else:
        rgrads = backward(ry, rleaves, go)
    y, ry = y.detach(), ry.detach().to(y.dtype)
    rgrads = [r if r is None or gr is None else r.to(gr.dtype) for r, gr in zip(rgrads, grads)]

    x = sample.input.detach()
    pointwise = row is not None and x.is_floating_point() and y.shape == x.shape
    if pointwise and row.limits and torch.isinf(x).any():
        # README "Numerics": the limit where PyTorch's formula gives NaN.
        special = torch.zeros(x.shape, dtype=torch.bool)
        for v, (fv, dv) in row.limits.items():
            at = x == v
            special |= at
            assert (y[at] == fv).all(), f"{what}: value at {v}"
            if grads and grads[0] is not None:
                assert (grads[0][at] == (go[at].to(torch.float64) * dv).to(dtype)).all(), f"{what}: derivative at {v}"
        ry = torch.where(special, y, ry)
        if grads and grads[0] is not None:
            rgrads[0] = torch.where(special, grads[0], rgrads[0])
    if pointwise and grads and grads[0] is not None and x.isnan().any():
        # PyTorch's scalar definition at NaN (see the module docstring).
        factor = scalar_grad_factor(ref, sample)
        rgrads[0] = torch.where(x.isnan(), (go.to(torch.float64) * factor).to(dtype), rgrads[0])

    if exact:
        torch.testing.assert_close(y, ry, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{what} draws differ: {m}")
    else:
        rtol, atol = tolerance(y)
        assert_close(y, ry, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m: f"{what} forward: {m}")
    for k, (gr, rg) in enumerate(zip(grads, rgrads)):
        if gr is None or rg is None:
            assert (gr is None or not gr.any()) and (rg is None or not rg.any()), f"{what}: grad {k} on one side only"
        elif exact:
            torch.testing.assert_close(gr, rg, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{what} grad {k}: {m}")
        else:
            rtol, atol = tolerance(gr)
            assert_close(gr, rg, rtol=rtol, atol=atol, equal_nan=True,
                         msg=lambda m: f"{what} grad of tensor argument {k}: {m}")


def samples(opinfo, dtype):
    yield from opinfo.sample_inputs("cpu", dtype, requires_grad=True)
    if opinfo.reference_inputs_func is not None:
        yield from opinfo.reference_inputs("cpu", dtype, requires_grad=True)


VALUE_CASES = [(n, o, d) for n, o in VALUE_PAIRS for d in DTYPES if d in o.supported_dtypes("cpu")]


@pytest.mark.parametrize("name,opinfo,dtype", VALUE_CASES, ids=[f"{pair_id((n, o))}-{d}" for n, o, d in VALUE_CASES])
def test_sample_and_reference_inputs_match_builtin(name, opinfo, dtype):
    n = 0
    for idx, sample in enumerate(samples(opinfo, dtype)):
        check_sample(name, opinfo, sample, dtype, idx)
        n += 1
    assert n > 0


INPLACE_PAIRS = [(n, o) for n, o in VALUE_PAIRS if o.inplace_variant is not None
                 and "inplace" in ta.functional.__dict__[n].__code__.co_varnames]


@pytest.mark.parametrize("name,opinfo", INPLACE_PAIRS, ids=[pair_id(p) for p in INPLACE_PAIRS])
def test_inplace_variant_matches_builtin(name, opinfo):
    """Values of ours with inplace=True against the OpInfo's in-place variant
    (float32; the out-of-place test covers the dtypes)."""
    row = OPS_BY_NAME.get(name)
    dtype = torch.float32
    rtol, atol = tol(row, dtype) if row else DEFAULT_TOL[dtype]
    for idx, sample in enumerate(samples(opinfo, dtype)):
        inp, args, kwargs = rebuild(sample, lambda t: t.detach().clone())
        inp2 = inp.clone()
        out = ours_for(name, opinfo)(inp, *args, inplace=True, **kwargs)
        opinfo.inplace_variant(inp2, *args, **kwargs)
        assert out is inp
        if row is not None and row.limits:
            for v, (fv, _) in row.limits.items():
                at = sample.input.detach() == v
                assert (inp[at] == fv).all()
                inp2[at] = fv
        assert_close(inp, inp2, rtol=rtol, atol=atol, equal_nan=True)


ERROR_PAIRS = [(n, o) for n, o in PAIRS if o.error_inputs_func is not None]


@pytest.mark.parametrize("name,opinfo", ERROR_PAIRS, ids=[pair_id(p) for p in ERROR_PAIRS])
def test_error_inputs_raise_like_builtin(name, opinfo):
    n = 0
    for err in opinfo.error_inputs("cpu"):
        s = err.sample_input
        snapshot = [t.clone() for t in tensors_of(s)]
        with pytest.raises(err.error_type, match=err.error_regex):
            getattr(ta.functional, name)(s.input, *s.args, **s.kwargs)
        assert all(torch.equal(a, b) for a, b in zip(tensors_of(s), snapshot))
        n += 1
    assert n > 0


NONFLOAT_PAIRS = [(n, o) for n, o in PAIRS if [d for d in o.supported_dtypes("cpu") if not d.is_floating_point]]


@pytest.mark.parametrize("name,opinfo", NONFLOAT_PAIRS, ids=[pair_id(p) for p in NONFLOAT_PAIRS])
def test_non_float_inputs_the_builtin_accepts_are_refused(name, opinfo):
    """Documented difference: the built-in takes these dtypes, ours refuse
    them with an error that names the op; an op given a `dtype=` to compute
    in casts them first, and then must give the built-in's result."""
    n = 0
    for dtype in [d for d in opinfo.supported_dtypes("cpu") if not d.is_floating_point]:
        for sample in opinfo.sample_inputs("cpu", dtype):
            fn = getattr(ta.functional, name)
            if sample.kwargs.get("dtype") is not None and not dtype.is_complex:
                y = fn(sample.input, *sample.args, **sample.kwargs)
                # The built-in on the input cast first: what `dtype=` means
                # (PyTorch's softmin negates a uint8 input before casting it,
                # so 6 becomes 250).
                r = opinfo.op(sample.input.to(sample.kwargs["dtype"]), *sample.args, **sample.kwargs)
                assert y.dtype == r.dtype
                rtol, atol = DEFAULT_TOL[y.dtype] if y.dtype in DEFAULT_TOL else (0, 0)
                assert_close(y, r, rtol=rtol, atol=atol, equal_nan=True)
            else:
                with pytest.raises(RuntimeError, match=rf"torch_activations::{name}\b.*(floating point|complex)"):
                    fn(sample.input, *sample.args, **sample.kwargs)
            n += 1
    assert n > 0
