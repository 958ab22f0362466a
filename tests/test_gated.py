"""Gated linear units: glu against PyTorch, swiglu / geglu / reglu against
their explicit compositions (activation of the first half times the second),
split and two-tensor forms, values, gradients and double backward in every
dtype and layout; what the backward saves; errors; modules."""
import inspect

import pytest
import torch
import torch.nn.functional as TF
from torch.autograd import gradcheck, gradgradcheck

import torch_activations as ta
from torch_activations import functional as F

DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
DTYPE_IDS = ["f32", "f64", "bf16", "f16"]
LOWP = (torch.bfloat16, torch.float16)

# name -> (ours(a, b) via the two-tensor form or None, ours split(x, dim),
#          composition(a, b) with PyTorch's ops)
CASES = {
    "glu": (None, lambda x, d: F.glu(x, d), lambda a, b: a * torch.sigmoid(b)),
    "swiglu": (F.swiglu, lambda x, d: F.swiglu(x, dim=d), lambda a, b: TF.silu(a) * b),
    "geglu": (F.geglu, lambda x, d: F.geglu(x, dim=d), lambda a, b: TF.gelu(a) * b),
    "geglu_tanh": (lambda a, b: F.geglu(a, b, approximate="tanh"), lambda x, d: F.geglu(x, dim=d, approximate="tanh"),
                   lambda a, b: TF.gelu(a, approximate="tanh") * b),
    "reglu": (F.reglu, lambda x, d: F.reglu(x, dim=d), lambda a, b: TF.relu(a) * b),
}
PAIRED = [n for n, c in CASES.items() if c[0] is not None]


def split_ref(comp, x, dim):
    a, b = x.chunk(2, dim)
    return comp(a, b)


def layouts(dtype, seed=0):
    """(name, tensor, dims to split) with an even size along each dim."""
    g = torch.Generator().manual_seed(seed)
    base = (torch.randn(4, 6, 5, 8, generator=g, dtype=torch.float64) * 3).to(dtype)
    yield "contiguous", base, (-1, 1, 0)
    yield "transposed", base.transpose(1, 3), (1, 3)
    yield "channels_last", base.contiguous(memory_format=torch.channels_last), (1, -1)
    yield "sliced", base[:, :, 1::2, 2:], (1, 3)
    narrow = (torch.randn(4, 1, 5, 1, generator=g, dtype=torch.float64) * 3).to(dtype)
    yield "expanded", narrow.expand(4, 6, 5, 8), (1, 3)
    yield "odd_length", (torch.randn(2, 2 * 1029, generator=g, dtype=torch.float64) * 3).to(dtype), (-1,)
    yield "empty", torch.empty(0, 4, dtype=dtype), (1,)
    yield "one_element", torch.tensor([0.3, -1.2], dtype=dtype), (0,)


def reference(fn, inputs, go):
    """Values and input gradients of fn; low precision: evaluated in float64
    from the same inputs and rounded once."""
    dtype = inputs[0].dtype
    ins = [(t.detach().double() if dtype in LOWP else t.detach().clone()).requires_grad_(True) for t in inputs]
    y = fn(*ins)
    gs = torch.autograd.grad(y, ins, go.to(y.dtype)) if go is not None and y.numel() else [None] * len(ins)
    return y.detach().to(dtype), [g.to(dtype) if g is not None else None for g in gs]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", list(CASES))
def test_split_form_equals_composition(name, dtype):
    _, split, comp = CASES[name]
    for lname, x, dims in layouts(dtype):
        for dim in dims:
            xa = (x.detach().clone() if x.is_contiguous() else x.detach()).requires_grad_(True)
            y = split(xa, dim)
            composed = split_ref(comp, x.detach(), dim)
            assert y.shape == composed.shape and y.dtype == composed.dtype
            if y.numel() == 0:
                continue
            assert y.stride() == composed.stride(), f"{lname} dim={dim}: {y.stride()} vs {composed.stride()}"
            go = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)
            (gx,) = torch.autograd.grad(y, xa, go)
            ry, (rg,) = reference(lambda t: split_ref(comp, t, dim), [x], go)
            torch.testing.assert_close(y, ry, msg=lambda m: f"{lname} dim={dim} forward: {m}")
            torch.testing.assert_close(gx, rg, msg=lambda m: f"{lname} dim={dim} backward: {m}")


def bits(t):
    return t.detach().contiguous().view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=["f32", "f64", "bf16"])
@pytest.mark.parametrize("name", PAIRED)
def test_split_halves_give_the_bits_of_the_pair_form(name, dtype, each_isa):
    """The halves of a split input reach the kernels as many short rows of
    one loop call; the pair form of dense copies of them as one row. Every
    element's result depends on its own inputs alone: the same bits,
    forward, backward and double backward, for halves of 1 to 37 elements."""
    pair, split, _ = CASES[name]
    g = torch.Generator().manual_seed(4)
    for h in (1, 16, 37):
        x = (torch.randn(200, 2 * h, generator=g, dtype=torch.float64) * 3).to(dtype)
        go = torch.randn(200, h, generator=g, dtype=torch.float64).to(dtype)
        gg = torch.randn(200, 2 * h, generator=g, dtype=torch.float64).to(dtype)
        xs = x.clone().requires_grad_(True)
        ys = split(xs, -1)
        (gs,) = torch.autograd.grad(ys, xs, go, create_graph=True)
        (gss,) = torch.autograd.grad(gs, xs, gg)
        a, b = (t.contiguous().requires_grad_(True) for t in x.chunk(2, -1))
        yp = pair(a, b)
        gp = torch.autograd.grad(yp, (a, b), go, create_graph=True)
        gpp = torch.autograd.grad(gp, (a, b), gg.chunk(2, -1))
        for what, u, v in (("forward", ys, yp), ("backward", gs, torch.cat(gp, -1)),
                           ("double backward", gss, torch.cat(gpp, -1))):
            assert torch.equal(bits(u), bits(v)), f"h={h}: {what}"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", PAIRED)
def test_pair_form_equals_composition(name, dtype):
    pair, _, comp = CASES[name]
    g = torch.Generator().manual_seed(2)
    views = {
        "contiguous": lambda t: t,
        "transposed": lambda t: t.transpose(0, 2),
        "channels_last": lambda t: t.contiguous(memory_format=torch.channels_last),
        "sliced": lambda t: t[:, ::2],
        "expanded": lambda t: t[:, :1].expand(t.shape),
        "zero_d": lambda t: t[0, 0, 0, 0],
        "empty": lambda t: t[:, :0],
    }
    for vname, view in views.items():
        a = view((torch.randn(3, 4, 5, 6, generator=g, dtype=torch.float64) * 3).to(dtype))
        b = view((torch.randn(3, 4, 5, 6, generator=g, dtype=torch.float64) * 3).to(dtype))
        aa, bb = a.detach().requires_grad_(True), b.detach().requires_grad_(True)
        y = pair(aa, bb)
        composed = comp(a, b)
        assert y.shape == composed.shape and y.stride() == composed.stride(), vname
        if y.numel() == 0:
            continue
        go = torch.randn(y.shape, generator=g, dtype=torch.float64).to(dtype)
        ga, gb = torch.autograd.grad(y, (aa, bb), go)
        ry, (ra, rb) = reference(comp, [a, b], go)
        torch.testing.assert_close(y, ry, msg=vname)
        torch.testing.assert_close(ga, ra, msg=vname)
        torch.testing.assert_close(gb, rb, msg=vname)


@pytest.mark.parametrize("name", list(CASES))
def test_double_backward_equals_composition(name):
    pair, split, comp = CASES[name]
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 8, generator=g, dtype=torch.float64) * 2
    x[x.abs() < 1e-2] = 0.5  # away from relu's kink
    go = torch.randn(5, 4, generator=g, dtype=torch.float64)
    forms = [(lambda t: split(t, 1), lambda t: split_ref(comp, t, 1), (x,))]
    if pair is not None:
        forms.append((pair, comp, tuple(x.chunk(2, 1))))
    for ours, ref, inputs in forms:
        res = []
        for fn in (ours, ref):
            ins = [t.detach().clone().requires_grad_(True) for t in inputs]
            gg = go.clone().requires_grad_(True)
            grads = torch.autograd.grad(fn(*ins), ins, gg, create_graph=True)
            loss = sum((gr * gr.detach().sin()).sum() for gr in grads)
            res.append(torch.autograd.grad(loss, (*ins, gg), allow_unused=True))
        for r0, r1 in zip(*res):
            if r1 is None:
                assert r0 is None or not r0.any()
            else:
                torch.testing.assert_close(r0, r1)


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck_and_gradgradcheck(name):
    pair, split, _ = CASES[name]
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    x[x.abs() < 1e-2] = 0.5
    for xx, dim in ((x, 1), (x.t().contiguous().t(), 0)):
        xx = xx.detach().requires_grad_(True)
        assert gradcheck(lambda t: split(t, dim), (xx,), nondet_tol=0.0)
        assert gradgradcheck(lambda t: split(t, dim), (xx,), nondet_tol=0.0)
    if pair is not None:
        a, b = (t.detach().requires_grad_(True) for t in x.chunk(2, 1))
        assert gradcheck(pair, (a, b), nondet_tol=0.0)
        assert gradgradcheck(pair, (a, b), nondet_tol=0.0)


def test_edge_values_equal_composition_of_our_activations():
    """inf, NaN, huge and tiny values: the gated op is exactly the
    composition of the library's own activation (whose limits at +-inf are
    checked against PyTorch elsewhere) with the other half."""
    vals = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1e4, -1e4, 1e-40, 40.0, -40.0, 1.0])
    a = vals.repeat_interleave(len(vals))
    b = vals.repeat(len(vals))
    comps = {
        "glu": lambda p, q: p * ta.functional.sigmoid(q),
        "swiglu": lambda p, q: ta.functional.silu(p) * q,
        "geglu": lambda p, q: ta.functional.gelu(p) * q,
        "geglu_tanh": lambda p, q: ta.functional.gelu(p, approximate="tanh") * q,
        "reglu": lambda p, q: ta.functional.relu(p) * q,
    }
    for name, (pair, split, _) in CASES.items():
        aa, bb = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
        y = split(torch.stack([aa, bb]), 0)[0]
        ga, gb = torch.autograd.grad(y, (aa, bb), torch.ones_like(y))
        ca, cb = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
        z = comps[name](ca, cb)
        ra, rb = torch.autograd.grad(z, (ca, cb), torch.ones_like(z))
        if name == "glu":
            # GLU differentiates its sigmoid from the input, sigmoid(q) sigmoid(-q), which keeps the
            # digits sigmoid's own backward loses from its rounded output (y (1 - y) is 0 at q = 40).
            sig = ta.functional.sigmoid
            rb = a * (sig(b) * sig(-b))
        torch.testing.assert_close(y, z, equal_nan=True, msg=name)
        torch.testing.assert_close(ga, ra, equal_nan=True, msg=name)
        torch.testing.assert_close(gb, rb, equal_nan=True, msg=name)


@pytest.mark.parametrize("name", list(CASES))
def test_backward_saves_only_the_inputs_and_never_writes_them(name):
    pair, split, _ = CASES[name]
    x = torch.randn(6, 8, dtype=torch.float64, requires_grad=True)
    forms = [("split", lambda t: split(t, 1), lambda: (x * 1,))]
    if pair is not None:
        forms.append(("pair", pair, lambda: ((x * 1)[:, :4], (x * 2)[:, 4:])))
    for fname, fn, make in forms:
        inputs = make()
        before = [(t.clone(), t._version) for t in inputs]
        packed = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or t, lambda t: t):
            y = fn(*inputs)
        assert len(packed) == len(inputs), f"{fname}: saved {len(packed)} tensors"
        for p, t in zip(packed, inputs):
            assert p.data_ptr() == t.data_ptr() and p.shape == t.shape
        grads = torch.autograd.grad(y.sum(), inputs, create_graph=True)
        torch.autograd.grad(sum(gr.sum() for gr in grads), x, allow_unused=True)
        for (v, ver), t, gr in zip(before, inputs, grads):
            assert t._version == ver and torch.equal(t, v)
            assert gr.data_ptr() != t.data_ptr()


def test_split_backward_is_one_buffer():
    """The split form's gradient is one tensor of the input's shape, both
    halves written by the kernel: no concatenation (and no cat node)."""
    x = torch.randn(4, 10, requires_grad=True)
    y = F.swiglu(x)
    assert y.grad_fn.name() == "torch_activations::SwigluBackward"
    assert y.grad_fn.next_functions[0][0].__class__.__name__ == "AccumulateGrad"


def test_errors_match_pytorch():
    with pytest.raises(RuntimeError, match="glu does not support scalars because halving size must be even"):
        F.glu(torch.tensor(1.0))
    with pytest.raises(RuntimeError, match="Halving dimension must be even, but dimension 1 is size 5"):
        F.glu(torch.randn(3, 5), 1)
    with pytest.raises(RuntimeError, match=r"torch_activations::swiglu: Halving dimension must be even"):
        F.swiglu(torch.randn(3, 5))
    with pytest.raises(IndexError, match="Dimension out of range"):
        F.reglu(torch.randn(3, 4), dim=2)
    with pytest.raises(RuntimeError, match=r"swiglu.*'up' has shape"):
        F.swiglu(torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(RuntimeError, match=r"geglu.*'up' has dtype"):
        F.geglu(torch.randn(3, 4), torch.randn(3, 4, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        F.geglu(torch.randn(3, 4), approximate="fast")
    with pytest.raises(TypeError, match="dim="):
        F.swiglu(torch.randn(3, 4), 0)
    with pytest.raises(RuntimeError, match=r"torch_activations::reglu.*floating point"):
        F.reglu(torch.ones(4, dtype=torch.int64))


# ------------------------------------------------------------------ modules ---
def test_glu_module_is_a_drop_in():
    assert issubclass(ta.nn.GLU, torch.nn.GLU)
    assert inspect.signature(ta.nn.GLU.__init__) == inspect.signature(torch.nn.GLU.__init__)
    x = torch.randn(4, 6, 8)
    for dim in (-1, 1):
        ours, ref = ta.nn.GLU(dim), torch.nn.GLU(dim)
        assert repr(ours) == repr(ref)
        torch.testing.assert_close(ours(x), ref(x))


def test_gated_modules():
    x = torch.randn(3, 8, dtype=torch.float64)
    a, b = x.chunk(2, -1)
    assert repr(ta.nn.SwiGLU()) == "SwiGLU(dim=-1)"
    assert repr(ta.nn.GeGLU(0, "tanh")) == "GeGLU(dim=0, approximate='tanh')"
    torch.testing.assert_close(ta.nn.SwiGLU()(x), TF.silu(a) * b)
    torch.testing.assert_close(ta.nn.SwiGLU()(a, b), TF.silu(a) * b)
    torch.testing.assert_close(ta.nn.ReGLU()(x), TF.relu(a) * b)
    torch.testing.assert_close(ta.nn.GeGLU(approximate="tanh")(a, b), TF.gelu(a, approximate="tanh") * b)
    x0 = torch.randn(6, 3, dtype=torch.float64)
    torch.testing.assert_close(ta.nn.GeGLU(dim=0)(x0), TF.gelu(x0[:3]) * x0[3:])
    assert list(ta.nn.SwiGLU().state_dict()) == []
