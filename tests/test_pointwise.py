"""Every pointwise activation against its PyTorch built-in: values and
gradients for all dtypes and layouts, edge values, subgradients at kinks,
gradcheck / gradgradcheck, what backward saves, in-place semantics."""
import math

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import torch_activations as ta
from torch_activations.optable import CASE_IDS, CASES, OPS, away_from_kinks, edge_values, tol

DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
DTYPE_IDS = ["f32", "f64", "bf16", "f16"]


def layouts(dtype, seed=0):
    """(name, tensor) pairs of one data set in every layout we promise."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(3, 5, 7, 9, generator=g, dtype=torch.float64).to(dtype)
    yield "contiguous", base
    yield "transposed", base.transpose(1, 3)
    yield "channels_last", base.contiguous(memory_format=torch.channels_last)
    yield "sliced", base[:, 1::2, :, 2:]
    yield "permuted_sliced", base.permute(2, 0, 3, 1)[::2]
    yield "expanded", torch.randn(3, 1, 7, 1, generator=g, dtype=torch.float64).to(dtype).expand(3, 5, 7, 9)
    yield "storage_offset", base.reshape(-1)[5:5 + 131]
    yield "odd_length", torch.randn(1029, generator=g, dtype=torch.float64).to(dtype)
    yield "zero_d", torch.tensor(0.7, dtype=dtype)
    yield "empty", torch.empty(0, 4, dtype=dtype)
    yield "empty_transposed", torch.empty(4, 0, dtype=dtype).t()


LAYOUT_IDS = [name for name, _ in layouts(torch.float32)]


def scaled(op, x):
    return x * op.scale if x.numel() else x


def assert_close(actual, expected, dtype, op, what=""):
    rtol, atol = tol(op, dtype)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m: f"{what}: {m}")


# ---------------------------------------------------------------- values ---
LOWP = (torch.float16, torch.bfloat16)


def reference(op, params, x, go):
    """PyTorch's value and gradient for x (a leaf), in x's dtype. Low
    precision: computed in float64 from the same inputs, rounded once."""
    xr = x.detach().to(torch.float64) if x.dtype in LOWP else x.detach()
    xr = xr.clone() if x.is_contiguous() else xr
    xr.requires_grad_(True)
    y = op.ref(xr, **params)
    g = None
    if go is not None and x.dtype in LOWP and op.saves == "output":
        # The backward reads the rounded output, as PyTorch's does.
        g = op.ref_backward(go.to(torch.float64), y.detach().to(x.dtype).to(torch.float64)).to(x.dtype)
    elif go is not None:
        (g,) = torch.autograd.grad(y, xr, go.to(xr.dtype))
        g = g.to(x.dtype)
    return y.detach().to(x.dtype), g


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("op,params,_id", CASES, ids=CASE_IDS)
def test_forward_and_backward_match_pytorch(op, params, _id, dtype):
    for lname, x0 in layouts(dtype):
        x = scaled(op, x0).detach()
        xa = (x.clone() if x.is_contiguous() else x).requires_grad_(True)
        ours = op.ours(xa, **params)
        builtin = op.ref(x, **params)
        assert ours.dtype == builtin.dtype and ours.shape == builtin.shape
        # Strides of a tensor without elements carry no information.
        if ours.numel():
            assert ours.stride() == builtin.stride(), f"{lname}: strides {ours.stride()} vs {builtin.stride()}"
        if ours.numel() == 0:
            continue
        go = torch.randn(ours.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)
        (ga,) = torch.autograd.grad(ours, xa, go)
        ry, rg = reference(op, params, x, go)
        assert_close(ours, ry, dtype, op, f"{lname} forward")
        assert_close(ga, rg, dtype, op, f"{lname} backward")


def bits(t):
    return t.contiguous().view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=["f32", "f64", "bf16"])
@pytest.mark.parametrize("op,params,_id", CASES, ids=CASE_IDS)
def test_strided_rows_give_the_bits_of_a_contiguous_copy(op, params, _id, dtype, each_isa):
    """A slice arrives in the kernels as many rows of one loop call (rows of
    1 to 40 elements: a partial vector, whole vectors and a tail). Every
    element's result depends on its own inputs alone, so values, gradients
    and second derivatives are the bits of the same op on a dense copy, in
    which the loop sees one row. bfloat16 takes the lookup tables."""
    g = torch.Generator().manual_seed(3)
    for cols in (1, 16, 37):
        buf = scaled(op, torch.randn(300, 40, generator=g, dtype=torch.float64)).to(dtype)
        # grad_output, with the strided input, expanded along each row
        # (stride 0 within a row).
        go = torch.randn(300, 1, generator=g, dtype=torch.float64).to(dtype).expand(300, cols)
        gg = torch.randn(300, cols, generator=g, dtype=torch.float64).to(dtype)
        results = []
        for x in (buf[:, 2:2 + cols], buf[:, 2:2 + cols].contiguous()):
            xa = (x.clone() if x.is_contiguous() else x).requires_grad_(True)
            y = op.ours(xa, **params)
            (gx,) = torch.autograd.grad(y, xa, go.contiguous() if x.is_contiguous() else go, create_graph=True)
            out = [y, gx]
            if gx.requires_grad:
                out += [t for t in torch.autograd.grad(gx, xa, gg, allow_unused=True) if t is not None]
            results.append([bits(t.detach()) for t in out])
        assert len(results[0]) == len(results[1])
        for what, a, b in zip(("forward", "backward", "double backward"), *results):
            assert torch.equal(a, b), f"cols={cols}: {what}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("op,params,_id", CASES, ids=CASE_IDS)
def test_edge_values(op, params, _id, dtype):
    """0, -0, +-inf, NaN, +-1e4, denormals, kinks and switch points with
    their neighbours. PyTorch is evaluated one element at a time, which runs
    its scalar code; its vectorized code treats some NaN gradients
    differently, and ours follows the scalar definitions everywhere."""
    vals = edge_values(op, params)
    x = torch.tensor(vals, dtype=dtype)
    xa = x.clone().requires_grad_(True)
    ours = op.ours(xa, **params)
    (ga,) = torch.autograd.grad(ours, xa, torch.ones_like(ours))
    rtol, atol = tol(op, dtype)
    for i, v in enumerate(vals):
        r, gr = reference(op, params, x[i:i + 1], torch.ones(1, dtype=dtype))
        r, gr = r[0].item(), gr[0].item()
        o, go = ours[i].item(), ga[i].item()
        if v in op.limits:
            # PyTorch's formula gives NaN here; the function has a limit.
            lim_y, lim_g = op.limits[v]
            assert o == lim_y, f"{op.name}({v}) = {o}, limit {lim_y}"
            assert go == lim_g, f"{op.name}'({v}) = {go}, limit {lim_g}"
            assert (math.isnan(r) or r == lim_y) and (math.isnan(gr) or gr == lim_g), \
                f"PyTorch now gives {r}, {gr} at {v}: drop the limit entry"
            continue
        torch.testing.assert_close(ours[i].item(), r, equal_nan=True, rtol=rtol, atol=atol,
                                   msg=lambda m: f"{op.name}({v}): ours {o}, PyTorch {r}")
        torch.testing.assert_close(go, gr, equal_nan=True, rtol=rtol, atol=atol,
                                   msg=lambda m: f"{op.name}'({v}): ours {go}, PyTorch {gr}")


def test_hardsigmoid_float32_is_the_correctly_rounded_quotient(each_isa):
    """hardsigmoid divides x + 3 (clamped to [0, 6]) by 6 without a division
    instruction in float32. Every value x + 3 can take is a multiple of
    2^-22 in [0, 6]: x = -3 + k 2^-22 reaches each one, and the result must
    be the IEEE quotient (float32 division) bit for bit, on every ISA."""
    k = torch.arange(0, 6 * 2**22 + 1, dtype=torch.float64)
    x = (k * 2.0**-22 - 3).to(torch.float32)
    specials = torch.tensor([-3.5, 7.0, -1e-40, 1e-40, -0.0, 0.0, float("inf"), -float("inf"), float("nan")])
    x = torch.cat([x, specials])
    expected = torch.clamp(x + 3, 0, 6) / 6
    got = ta.functional.hardsigmoid(x)
    assert torch.equal(got.view(torch.int32)[:-1], expected.view(torch.int32)[:-1])
    assert got[-1].isnan()


KINKED = [c for c in CASES if c[0].kinks(c[1])]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("op,params,_id", KINKED, ids=[c[2] for c in KINKED])
def test_subgradients_at_kinks_equal_pytorch_exactly(op, params, _id, dtype):
    ks = op.kinks(params)
    x = torch.tensor(ks + [-k for k in ks], dtype=dtype)
    xa = x.clone().requires_grad_(True)
    (ga,) = torch.autograd.grad(op.ours(xa, **params).sum(), xa)
    for i in range(len(x)):
        xb = x[i:i + 1].clone().requires_grad_(True)
        (gb,) = torch.autograd.grad(op.ref(xb, **params).sum(), xb)
        assert ga[i].item() == gb.item(), f"at {x[i].item()}: {ga[i].item()} vs {gb.item()}"


# ------------------------------------------------------------- gradcheck ---
@pytest.mark.parametrize("op,params,_id", CASES, ids=CASE_IDS)
def test_gradcheck_and_gradgradcheck(op, params, _id):
    g = torch.Generator().manual_seed(3)
    x = away_from_kinks(op, params, torch.randn(4, 6, generator=g, dtype=torch.float64) * op.scale)
    x.requires_grad_(True)
    fn = lambda t: op.ours(t, **params)  # noqa: E731
    assert gradcheck(fn, (x,), nondet_tol=0.0)
    assert gradgradcheck(fn, (x,), nondet_tol=0.0)
    # Through a transposed view and a non-contiguous grad_output too.
    xt = x.detach().t().requires_grad_(True)
    assert gradgradcheck(fn, (xt,), grad_outputs=(torch.randn(4, 6, dtype=torch.float64, generator=g).t(),))


# ------------------------------------------------------ what is saved ----
@pytest.mark.parametrize("op,params,_id", CASES, ids=CASE_IDS)
def test_backward_saves_what_the_table_says(op, params, _id):
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    packed = []

    def pack(t):
        packed.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = op.ours(x * 1, **params)
    assert len(packed) == 1, f"saved {len(packed)} tensors"
    want = y if op.saves == "output" else None
    if want is not None:
        assert packed[0].data_ptr() == y.data_ptr()
    else:
        assert torch.equal(packed[0], (x * 1).detach()) and packed[0].data_ptr() != y.data_ptr()


# --------------------------------------------------------------- in-place ---
INPLACE = [c for c in CASES if c[0].inplace and c[1] not in c[0].inplace_refused]


@pytest.mark.parametrize("op,params,_id", INPLACE, ids=[c[2] for c in INPLACE])
def test_inplace_writes_storage_and_differentiates(op, params, _id):
    g = torch.Generator().manual_seed(5)
    base = away_from_kinks(op, params, torch.randn(6, 7, generator=g, dtype=torch.float64) * op.scale)
    for view in (lambda t: t, lambda t: t.t(), lambda t: t[:, 1::2]):
        leaf = base.clone().requires_grad_(True)
        x = view(leaf * 1)
        ptr = x.data_ptr()
        version = x._version
        out = op.ours(x, inplace=True, **params)
        assert out is x and x.data_ptr() == ptr and x._version > version
        expect_leaf = base.clone().requires_grad_(True)
        expect = op.ours(view(expect_leaf * 1), **params)
        torch.testing.assert_close(x, expect)
        go = torch.randn(x.shape, dtype=torch.float64, generator=g)
        (ga,) = torch.autograd.grad(x, leaf, go, create_graph=True)
        (gb,) = torch.autograd.grad(expect, expect_leaf, go, create_graph=True)
        torch.testing.assert_close(ga, gb)
        if op.smooth:
            # Double backward through the in-place op.
            (gga,) = torch.autograd.grad(ga.sum(), leaf, allow_unused=True)
            (ggb,) = torch.autograd.grad(gb.sum(), expect_leaf, allow_unused=True)
            if ggb is None:
                assert gga is None or not gga.any()
            else:
                torch.testing.assert_close(gga, ggb)


@pytest.mark.parametrize("op", [o for o in OPS if o.inplace_refused], ids=[o.name for o in OPS if o.inplace_refused])
def test_inplace_refused_like_pytorch(op):
    for params in op.inplace_refused:
        x = torch.randn(4, requires_grad=True) * 1
        with pytest.raises(RuntimeError, match="In-place .* negative slope"):
            op.ours(x, inplace=True, **params)
        # Without autograd there is nothing to refuse.
        with torch.no_grad():
            z = torch.randn(4)
            expect = op.ours(z, **params)
            op.ours(z, inplace=True, **params)
            torch.testing.assert_close(z, expect)


@pytest.mark.parametrize("op", [o for o in OPS if o.inplace], ids=[o.name for o in OPS if o.inplace])
def test_inplace_on_leaf_and_saved_tensor_errors(op):
    params = op.params[0]
    leaf = torch.randn(4, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        op.ours(leaf, inplace=True, **params)
    # Overwriting a tensor another op saved for backward must be detected.
    x = torch.randn(4, requires_grad=True)
    y = torch.sigmoid(x)
    op.ours(y, inplace=True, **params)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# ----------------------------------------------------------------- errors ---
@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
@pytest.mark.parametrize("bad", [torch.int64, torch.int32, torch.bool, torch.complex64], ids=str)
def test_non_float_input_raises_naming_the_op(op, bad):
    x = torch.ones(3, dtype=bad)
    with pytest.raises(RuntimeError, match=rf"torch_activations::{op.name}\b.*floating point"):
        op.ours(x, **op.params[0])


def test_parameter_errors():
    x = torch.randn(4)
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        ta.functional.gelu(x, approximate="fast")
    with pytest.raises(RuntimeError, match="ZeroDivisionError: alpha cannot be 0 for CELU"):
        ta.functional.celu(x, alpha=0.0)
    with pytest.raises(RuntimeError, match=r"lambda must be in range \[0, 3.40282e\+38\] for input dtype Float, but found -1"):
        ta.functional.softshrink(x, -1.0)
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        ta.functional.hardtanh(x, 2.0, 1.0)
    with pytest.raises(RuntimeError, match="min_val cannot be greater than max_val"):
        ta.ops.hardtanh(x, 2.0, 1.0)


def backward_args(op, params):
    """The parameter arguments of op's backward op, from its forward defaults."""
    fwd = getattr(ta.ops, op.name).default._schema
    values = {a.name: params.get(a.name, a.default_value) for a in fwd.arguments[1:]}
    bwd = getattr(ta.ops, op.name + "_backward").default._schema
    return [values[a.name] if a.name != "is_result" else False for a in bwd.arguments[2:]]


@pytest.mark.parametrize("op", OPS, ids=[o.name for o in OPS])
def test_backward_op_checks_its_inputs(op):
    params = op.params[0]
    fn = getattr(ta.ops, op.name + "_backward")
    extra = backward_args(op, params)
    with pytest.raises(RuntimeError, match=rf"{op.name}_backward: 'grad_output' has shape"):
        fn(torch.randn(3), torch.randn(4), *extra)
    with pytest.raises(RuntimeError, match=rf"{op.name}_backward: 'grad_output' has dtype"):
        fn(torch.randn(4, dtype=torch.float64), torch.randn(4), *extra)
    with pytest.raises(RuntimeError, match=rf"{op.name}_backward: expected a floating point"):
        fn(torch.ones(4, dtype=torch.int64), torch.ones(4, dtype=torch.int64), *extra)
