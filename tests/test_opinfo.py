"""Parity on PyTorch's own test inputs: the OpInfo database
(torch.testing._internal.common_methods_invocations.op_db).

For every op with a built-in counterpart, every sample input and reference
input (CPU; float32, float64, bfloat16) gives the built-in's value and
gradients, with the tolerances of test_pointwise.py: float32/float64 against
the built-in in the same dtype, bfloat16 against the built-in evaluated in
float64 on the same inputs and rounded once. Every error input raises the
OpInfo's error. Where our documented behaviour differs, the test says so
explicitly:

* README "Numerics": at an infinite input where PyTorch's formula gives NaN
  although the function has a limit, we return the limit (optable `limits`);
  those elements are checked against the limit instead.
* At a NaN input PyTorch's vectorized backward gives some gradients that its
  scalar code does not (e.g. hardtanh: 0 vs grad_output); ours follow the
  scalar definitions everywhere, so NaN elements are checked against the
  built-in evaluated one element at a time.
* Integer, bool and complex inputs that the built-in accepts are refused
  with an error naming the op ("expected a floating point tensor").
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
# Ours without a row in the optable (their own tests live in test_special.py).
EXTRA = ["prelu", "rrelu"]


def opinfo_for(name):
    for o in op_db:
        if o.name in (f"nn.functional.{name}", name) and o.variant_test_name == "":
            return o
    return None


PAIRS = [(name, opinfo_for(name)) for name in [op.name for op in OPS] + EXTRA]
PAIRS = [(n, o) for n, o in PAIRS if o is not None]
# Other OpInfo variants of the same functions (silu's complex variant):
# every sample must be refused.
VARIANTS = [(name, o) for name, _ in PAIRS for o in op_db
            if o.name in (f"nn.functional.{name}", name) and o.variant_test_name != ""]


def test_every_op_with_a_builtin_has_an_opinfo():
    missing = [op.name for op in OPS if opinfo_for(op.name) is None]
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
    t = t.detach() if dtype is None else t.detach().to(dtype)
    if not t.is_floating_point():
        return t
    return t.clone().requires_grad_(True) if t.is_contiguous() else t.requires_grad_(True)


def forward(fn, sample, dtype=None, seed=None):
    """fn on the sample's tensors (cast to `dtype` if given) as fresh leaves:
    (output, the leaves that require grad)."""
    inp, args, kwargs = rebuild(sample, lambda t: leaf(t, dtype))
    if seed is not None:
        torch.manual_seed(seed)
    y = fn(inp, *args, **kwargs)
    leaves = [t for t in [inp] + list(args) + [v for _, v in sorted(kwargs.items())]
              if isinstance(t, torch.Tensor) and t.requires_grad]
    return y, leaves


def backward(y, leaves, go):
    if y.numel() == 0 or not leaves:
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


def check_sample(name, opinfo, sample, dtype, idx):
    ours = ours_for(name, opinfo)
    ref = opinfo.op
    row = OPS_BY_NAME.get(name)
    rtol, atol = tol(row, dtype) if row else DEFAULT_TOL[dtype]
    exact = name == "rrelu" and sample.kwargs.get("training", False)
    same_dtype = dtype not in LOWP or exact
    what = f"{opinfo.name} {dtype} sample {idx} shape {tuple(sample.input.shape)} {sample.kwargs}"

    y, leaves = forward(ours, sample, seed=idx)
    ry, rleaves = forward(ref, sample, None if same_dtype else torch.float64, seed=idx)
    assert y.shape == ry.shape and y.dtype == dtype, what
    if same_dtype and y.numel() > 1:
        assert y.stride() == ry.stride(), f"{what}: strides {y.stride()} vs {ry.stride()}"
    # One grad_output, drawn in the sample's dtype, for both sides.
    g = torch.Generator().manual_seed(idx)
    go = torch.randn(y.shape, generator=g, dtype=torch.float64 if dtype == torch.float64 else torch.float32).to(dtype)
    grads = backward(y, leaves, go)
    if not same_dtype and row is not None and row.saves == "output" and leaves:
        # The backward reads the rounded output, as PyTorch's does.
        rgrads = [row.ref_backward(go.to(torch.float64), y.detach().to(torch.float64))]
    else:
        rgrads = backward(ry, rleaves, go)
    y, ry = y.detach(), ry.detach().to(dtype)
    rgrads = [r if r is None else r.to(dtype) for r in rgrads]

    x = sample.input.detach()
    special = None
    if row is not None and row.limits and x.is_floating_point() and torch.isinf(x).any():
        # README "Numerics": the limit where PyTorch's formula gives NaN.
        special = torch.zeros(x.shape, dtype=torch.bool)
        for v, (fv, dv) in row.limits.items():
            at = x == v
            special |= at
            assert (y[at] == fv).all(), f"{what}: value at {v}"
            if grads and grads[0] is not None:
                assert (grads[0][at] == (go[at].to(torch.float64) * dv).to(dtype)).all(), f"{what}: derivative at {v}"
        ry = torch.where(special, y, ry)
        rgrads[0] = torch.where(special, grads[0], rgrads[0]) if grads and grads[0] is not None else rgrads[0]
    if grads and grads[0] is not None and grads[0].shape == x.shape and x.isnan().any():
        # PyTorch's scalar definition at NaN (see the module docstring).
        factor = scalar_grad_factor(ref, sample)
        rgrads[0] = torch.where(x.isnan(), (go.to(torch.float64) * factor).to(dtype), rgrads[0])

    if exact:
        torch.testing.assert_close(y, ry, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{what} draws differ: {m}")
    else:
        assert_close(y, ry, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m: f"{what} forward: {m}")
    for k, (gr, rg) in enumerate(zip(grads, rgrads)):
        if gr is None or rg is None:
            assert (gr is None or not gr.any()) and (rg is None or not rg.any()), f"{what}: grad {k} on one side only"
        elif exact:
            torch.testing.assert_close(gr, rg, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{what} grad {k}: {m}")
        else:
            assert_close(gr, rg, rtol=rtol, atol=atol, equal_nan=True,
                                       msg=lambda m: f"{what} grad of tensor argument {k}: {m}")


def samples(opinfo, dtype):
    yield from opinfo.sample_inputs("cpu", dtype, requires_grad=True)
    if opinfo.reference_inputs_func is not None:
        yield from opinfo.reference_inputs("cpu", dtype, requires_grad=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name,opinfo", PAIRS, ids=[p[0] for p in PAIRS])
def test_sample_and_reference_inputs_match_builtin(name, opinfo, dtype):
    n = 0
    for idx, sample in enumerate(samples(opinfo, dtype)):
        check_sample(name, opinfo, sample, dtype, idx)
        n += 1
    assert n > 0


@pytest.mark.parametrize("name,opinfo", PAIRS, ids=[p[0] for p in PAIRS])
def test_inplace_variant_matches_builtin(name, opinfo):
    """Values of ours with inplace=True against the OpInfo's in-place variant
    (float32; the out-of-place test covers the dtypes)."""
    if opinfo.inplace_variant is None or "inplace" not in ta.functional.__dict__[name].__code__.co_varnames:
        pytest.skip(f"{name}: no in-place variant on one side")
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


@pytest.mark.parametrize("name,opinfo", ERROR_PAIRS, ids=[p[0] for p in ERROR_PAIRS])
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


def refused_dtypes(opinfo):
    return [d for d in opinfo.supported_dtypes("cpu") if not d.is_floating_point]


@pytest.mark.parametrize("name,opinfo", PAIRS + VARIANTS, ids=[p[0] + (f".{p[1].variant_test_name}" if p[1].variant_test_name else "")
                                                              for p in PAIRS + VARIANTS])
def test_non_float_inputs_the_builtin_accepts_are_refused(name, opinfo):
    """Documented difference: the built-in takes these dtypes, ours refuse
    them with an error that names the op."""
    variant = opinfo.variant_test_name != ""
    dtypes = refused_dtypes(opinfo) + ([torch.complex64] if variant else [])
    if not dtypes:
        pytest.skip(f"{opinfo.name} accepts floating point dtypes only")
    n = 0
    for dtype in dict.fromkeys(dtypes):
        for sample in opinfo.sample_inputs("cpu", dtype):
            with pytest.raises(RuntimeError, match=rf"torch_activations::{name}\b.*floating point"):
                getattr(ta.functional, name)(sample.input, *sample.args, **sample.kwargs)
            n += 1
    assert n > 0
