"""softmax, log_softmax and softmin against PyTorch: values and gradients in
every dtype and layout, the dtype argument, -inf / +-inf / NaN / huge logits,
gradcheck and gradgradcheck, what the backward saves, errors, and the nn
modules with their legacy dim=None behaviour."""
import inspect
import warnings

import pytest
import torch
import torch.nn.functional as TF
from torch.autograd import gradcheck, gradgradcheck

import torch_activations as ta
from torch_activations import functional as F

DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
DTYPE_IDS = ["f32", "f64", "bf16", "f16"]
LOWP = (torch.bfloat16, torch.float16)
INF = float("inf")
NAN = float("nan")



@pytest.fixture(autouse=True)
def one_thread():
    """PyTorch's reference softmax opens a parallel region even for a few
    rows, which costs milliseconds per call on a busy machine. (Thread-count
    independence of our kernels is tested in test_nonpointwise_integration.py.)"""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


OPS = {
    "softmax": (F.softmax, TF.softmax),
    "log_softmax": (F.log_softmax, TF.log_softmax),
    "softmin": (F.softmin, TF.softmin),
}


def reference_backward(name, go, y, dim):
    """PyTorch's backward from (grad_output, output) in float64."""
    if name == "log_softmax":
        return torch._log_softmax_backward_data(go, y, dim, y.dtype)
    g = torch._softmax_backward_data(go, y, dim, y.dtype)
    return -g if name == "softmin" else g


def layouts(dtype, seed=0):
    """(name, tensor, dims to reduce over)."""
    g = torch.Generator().manual_seed(seed)
    base = (torch.randn(3, 5, 7, 9, generator=g, dtype=torch.float64) * 3).to(dtype)
    yield "contiguous", base, (1, -1, 0)
    yield "transposed", base.transpose(1, 3), (1, 3)
    yield "channels_last", base.contiguous(memory_format=torch.channels_last), (1, -1)
    yield "sliced", base[:, 1::2, :, 2:], (1, 3)
    yield "permuted_sliced", base.permute(2, 0, 3, 1)[::2], (0, 3)
    narrow = (torch.randn(3, 1, 7, 1, generator=g, dtype=torch.float64) * 3).to(dtype)
    yield "expanded", narrow.expand(3, 5, 7, 9), (1, 2)
    yield "storage_offset", base.reshape(-1)[5:5 + 131], (0,)
    yield "long_row", (torch.randn(2, 4099, generator=g, dtype=torch.float64) * 3).to(dtype), (1, 0)
    yield "long_column", (torch.randn(4099, 3, generator=g, dtype=torch.float64) * 3).to(dtype).t(), (1,)
    yield "zero_d", torch.tensor(0.7, dtype=dtype), (0, -1)
    yield "one_element_rows", base[:, :1], (1,)
    yield "empty", torch.empty(0, 4, dtype=dtype), (1, 0)
    yield "empty_dim", torch.empty(4, 0, dtype=dtype), (1,)


def reference(name, x, dim, go):
    """PyTorch's value and gradient; low precision: computed in float64 from
    the same inputs and rounded once, the gradient from the rounded output
    as the backward reads it."""
    ref = OPS[name][1]
    if x.dtype in LOWP:
        y64 = ref(x.detach().double(), dim)
        y = y64.to(x.dtype)
        g = reference_backward(name, go.double(), y.double(), dim).to(x.dtype) if go is not None else None
        return y, g
    xr = x.detach().clone().requires_grad_(True)
    y = ref(xr, dim)
    g = torch.autograd.grad(y, xr, go)[0] if go is not None else None
    return y.detach(), g


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", list(OPS))
def test_forward_and_backward_match_pytorch(name, dtype):
    ours = OPS[name][0]
    for lname, x, dims in layouts(dtype):
        for dim in dims:
            xa = x.detach().clone() if x.is_contiguous() else x.detach()
            xa.requires_grad_(True)
            y = ours(xa, dim)
            builtin = OPS[name][1](x.detach(), dim)
            assert y.dtype == builtin.dtype and y.shape == builtin.shape, lname
            if y.numel():
                assert y.stride() == builtin.stride(), f"{lname}: {y.stride()} vs {builtin.stride()}"
            else:
                continue
            go = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)
            (gx,) = torch.autograd.grad(y, xa, go)
            ry, rg = reference(name, x, dim, go)
            torch.testing.assert_close(y, ry, msg=lambda m: f"{lname} dim={dim} forward: {m}")
            torch.testing.assert_close(gx, rg, msg=lambda m: f"{lname} dim={dim} backward: {m}")


CASTS = [(torch.bfloat16, torch.float32), (torch.float16, torch.float32), (torch.float32, torch.float64),
         (torch.float32, torch.bfloat16), (torch.float64, torch.float32), (torch.float16, torch.float64),
         (torch.bfloat16, torch.float16)]


@pytest.mark.parametrize("name", list(OPS))
def test_dtype_argument_casts_like_pytorch(name):
    """dtype casts the input first; the gradient comes back in the input's
    dtype. Both sides against the float64 result of the cast input, rounded
    to the output dtype (and the gradient on to the input's)."""
    ours, ref = OPS[name]
    g = torch.Generator().manual_seed(2)
    for src, dst in CASTS:
        for x in (torch.randn(4, 300, generator=g).to(src) * 3, (torch.randn(300, 4, generator=g) * 3).to(src).t()):
            xa = x.clone().requires_grad_(True)
            xb = x.clone().requires_grad_(True)
            ya, yb = ours(xa, 1, dtype=dst), ref(xb, 1, dtype=dst)
            assert ya.dtype == yb.dtype == dst
            y64 = ref(x.to(dst).double(), 1)
            torch.testing.assert_close(ya, y64.to(dst))
            torch.testing.assert_close(yb, y64.to(dst))
            go = torch.randn(ya.shape, generator=g).to(dst)
            (ga,) = torch.autograd.grad(ya, xa, go)
            (gb,) = torch.autograd.grad(yb, xb, go)
            assert ga.dtype == gb.dtype == src
            g64 = reference_backward(name, go.double(), y64.to(dst).double(), 1)
            coarse = max((src, dst), key=lambda d: torch.finfo(d).eps)
            rtol, atol = {torch.bfloat16: (1.6e-2, 1e-5), torch.float16: (1e-3, 1e-5)}.get(coarse, (1.3e-6, 1e-5))
            torch.testing.assert_close(ga, g64.to(dst).to(src), rtol=rtol, atol=atol)
    # Integer input with a floating dtype: cast first, as PyTorch.
    xi = torch.arange(-5, 7).reshape(3, 4)
    torch.testing.assert_close(ours(xi, 1, dtype=torch.float32), ref(xi, 1, dtype=torch.float32))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=["f32", "f64", "bf16"])
@pytest.mark.parametrize("name", list(OPS))
def test_edge_values(name, dtype):
    """Huge logits stay finite, -inf entries get probability 0, rows of -inf
    or with +inf or NaN give what PyTorch gives (NaN)."""
    ours, ref = OPS[name]
    rows = [
        [1e4, -1e4, 0.0, 5.0, 1e4 - 1],
        [-1e4, -1e4 + 3, -1e4, -1e4, -1e4],
        [-INF, 0.0, 1.0, -INF, 2.0],
        [-INF, -INF, -INF, -INF, -INF],
        [INF, 0.0, 1.0, 2.0, 3.0],
        [NAN, 0.0, 1.0, 2.0, 3.0],
        [3e38 if dtype != torch.float64 else 1e308, -3e38 if dtype != torch.float64 else -1e308, 0.0, 1.0, 2.0],
        [1e-40, -1e-40, 0.0, -0.0, 1e-30],
    ]
    x = torch.tensor(rows, dtype=torch.float64).to(dtype)
    for xx, dim in ((x, 1), (x.t().contiguous(), 0), (x.t().contiguous().t(), 1)):
        xa = xx.clone().requires_grad_(True)
        y = ours(xa, dim)
        ry, _ = reference(name, xx, dim, None)
        torch.testing.assert_close(y, ry, equal_nan=True)
        # Rows of logits up to +-1e4 (and tiny ones) give finite results.
        rows_first = y.detach() if dim == 1 else y.detach().t()
        assert torch.isfinite(rows_first[[0, 1, 7]]).all()
        go = torch.linspace(-1, 1, x.numel(), dtype=torch.float64).reshape(xx.shape).to(dtype)
        (gx,) = torch.autograd.grad(y, xa, go)
        _, rg = reference(name, xx, dim, go)
        torch.testing.assert_close(gx, rg, equal_nan=True)


@pytest.mark.parametrize("name", list(OPS))
def test_gradcheck_and_gradgradcheck(name):
    ours = OPS[name][0]
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64, requires_grad=True)
    for dim in (0, 1):
        fn = lambda t: ours(t, dim)  # noqa: E731
        assert gradcheck(fn, (x,), nondet_tol=0.0)
        assert gradgradcheck(fn, (x,), nondet_tol=0.0)
    # Strided input and a non-contiguous grad_output.
    xt = torch.randn(6, 4, generator=g, dtype=torch.float64).t().requires_grad_(True)
    go = torch.randn(6, 4, generator=g, dtype=torch.float64).t()
    assert gradgradcheck(lambda t: ours(t, 1), (xt,), grad_outputs=(go,))


def test_double_backward_matches_pytorch():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    go = torch.randn(3, 5, generator=g, dtype=torch.float64)
    for name, (ours, ref) in OPS.items():
        res = []
        for fn in (ours, ref):
            xa = x.clone().requires_grad_(True)
            gg = go.clone().requires_grad_(True)
            (gx,) = torch.autograd.grad(fn(xa, 1), xa, gg, create_graph=True)
            res.append(torch.autograd.grad((gx * gx.detach().cos()).sum(), (xa, gg)))
        torch.testing.assert_close(res[0], res[1], msg=name)


@pytest.mark.parametrize("name", list(OPS))
def test_backward_saves_only_the_output(name):
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    packed = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or t, lambda t: t):
        y = OPS[name][0](x * 1, 1)
    assert len(packed) == 1 and packed[0].data_ptr() == y.data_ptr()


def test_errors():
    x = torch.randn(3, 4)
    with pytest.raises(IndexError, match="Dimension out of range"):
        F.softmax(x, 2)
    with pytest.raises(RuntimeError, match=r"torch_activations::softmax\b.*floating point"):
        F.softmax(torch.ones(3, dtype=torch.int64), 0)
    with pytest.raises(RuntimeError, match=r"torch_activations::log_softmax: dtype must be float32.*got Long"):
        F.log_softmax(x, 1, dtype=torch.int64)
    with pytest.raises(RuntimeError, match=r"softmax_backward: 'grad_output' has shape"):
        ta.ops.softmax_backward(torch.randn(3, 5), x, 1, torch.float32)


def test_empty_rows_and_zero_d_results():
    assert F.softmax(torch.tensor(3.0), 0).item() == 1.0
    assert F.log_softmax(torch.tensor(3.0), -1).item() == 0.0
    e = F.softmax(torch.empty(0, 3, requires_grad=True), 1)
    assert e.shape == (0, 3)
    e.sum().backward()


# ------------------------------------------------------------------ modules ---
MODULES = ["Softmax", "LogSoftmax", "Softmin"]


@pytest.mark.parametrize("name", MODULES + ["Softmax2d"])
def test_module_is_a_drop_in(name):
    ours_cls, ref_cls = getattr(ta.nn, name), getattr(torch.nn, name)
    assert issubclass(ours_cls, ref_cls)
    assert inspect.signature(ours_cls.__init__) == inspect.signature(ref_cls.__init__)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    args = [()] if name == "Softmax2d" else [(1,), (-1,), (0,)]
    for a in args:
        ours, ref = ours_cls(*a), ref_cls(*a)
        assert repr(ours) == repr(ref)
        torch.testing.assert_close(ours(x), ref(x))


@pytest.mark.parametrize("name", MODULES)
def test_legacy_dim_none_picks_pytorchs_dim_and_warns(name):
    ours, ref = getattr(ta.nn, name)(), getattr(torch.nn, name)()
    for shape in [(), (5,), (3, 4), (2, 3, 4), (2, 3, 4, 5)]:
        x = torch.randn(shape, dtype=torch.float64)
        with warnings.catch_warnings(record=True) as wa:
            warnings.simplefilter("always")
            ya = ours(x)
        with warnings.catch_warnings(record=True) as wb:
            warnings.simplefilter("always")
            yb = ref(x)
        torch.testing.assert_close(ya, yb)
        assert [str(w.message) for w in wa] == [str(w.message) for w in wb]
        assert "Implicit dimension choice" in str(wa[0].message)
        # Attributed to the same frame as PyTorch's own warning.
        assert (wa[0].filename, wa[0].lineno) == (wb[0].filename, wb[0].lineno)


def test_softmax2d_checks_the_rank():
    with pytest.raises(ValueError, match="Softmax2d: expected input to be 3D or 4D, got 2D instead"):
        ta.nn.Softmax2d()(torch.randn(3, 4))
    x = torch.randn(3, 4, 5)
    torch.testing.assert_close(ta.nn.Softmax2d()(x), torch.nn.Softmax2d()(x))
