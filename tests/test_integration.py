"""The operators as PyTorch sees them: opcheck, fake/meta tensors,
torch.compile, the profiler, the nn modules and functional signatures,
instruction-set selection and thread determinism."""
import inspect

import pytest
import torch
import torch.nn.functional as TF
from torch.library import opcheck

import torch_activations as ta
from torch_activations.optable import CASE_IDS, CASES, OPS

OPCHECK_LAYOUTS = {
    "contiguous": lambda t: t,
    "transposed": lambda t: t.transpose(1, 3),
    "channels_last": lambda t: t.contiguous(memory_format=torch.channels_last),
}


def sample(seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 4, 5, generator=g, dtype=dtype)


def schema_args(opname, params):
    """Values for the non-tensor arguments of an op's schema, from params and
    the forward op's defaults."""
    fwd = getattr(ta.ops, opname).default._schema
    values = {a.name: params.get(a.name, a.default_value) for a in fwd.arguments[1:]}
    return values


# ---------------------------------------------------------------- opcheck ---
@pytest.mark.parametrize("op,params,_id", CASES, ids=CASE_IDS)
def test_opcheck_forward_inplace_backward_double_backward(op, params, _id):
    values = schema_args(op.name, params)
    fwd_extra = list(values.values())
    for lname, layout in OPCHECK_LAYOUTS.items():
        for rg in (False, True):
            x = layout(sample()).requires_grad_(rg)
            opcheck(getattr(ta.ops, op.name).default, (x, *fwd_extra))
        opcheck(getattr(ta.ops, op.name + "_").default, (layout(sample()), *fwd_extra))
        # out= into a tensor of the right shape and into an empty one (resized).
        for out in (layout(torch.empty_like(sample())), torch.empty(0)):
            opcheck(getattr(ta.ops, op.name).out, (layout(sample()), *fwd_extra), {"out": out})
    bwd = getattr(ta.ops, op.name + "_backward").default
    dbwd = getattr(ta.ops, op.name + "_double_backward").default
    names = [a.name for a in bwd._schema.arguments[2:]]
    flags = [False, True] if "is_result" in names else [None]
    for is_result in flags:
        extra = [values[n] if n != "is_result" else is_result for n in names]
        if is_result and (op.params[0] is not params):
            continue
        for lname in ("contiguous", "transposed"):
            layout = OPCHECK_LAYOUTS[lname]
            g, s, gg = (layout(sample(i)).requires_grad_(True) for i in (1, 2, 3))
            opcheck(bwd, (g, s, *extra))
            # The double backward is the end of the chain: a third derivative
            # raises (see test_third_derivative_raises), so no requires_grad.
            opcheck(dbwd, (gg.detach(), g.detach(), s.detach(), *extra))


def test_opcheck_parametric_and_rrelu():
    for lname, layout in OPCHECK_LAYOUTS.items():
        x = layout(sample()).requires_grad_(True)
        for name in ("prelu", "swish_learnable"):
            c = x.size(1)
            w = torch.rand(c, requires_grad=True)
            opcheck(getattr(ta.ops, name).default, (x, w))
            opcheck(getattr(ta.ops, name).default, (x, torch.rand(1, requires_grad=True)))
            g = layout(sample(1)).requires_grad_(True)
            opcheck(getattr(ta.ops, name + "_backward").default, (g, x, w))
            opcheck(getattr(ta.ops, name + "_double_backward").default,
                    (layout(sample(2)), torch.rand(c), g.detach(), x.detach(), w.detach()))
            opcheck(getattr(ta.ops, name + "_double_backward").default,
                    (None, torch.rand(c), g.detach(), x.detach(), w.detach()))
        opcheck(ta.ops.rrelu.default, (x, 0.1, 0.3, False))
        opcheck(ta.ops.rrelu_with_noise.default, (x.detach(), 0.1, 0.3, False))
        opcheck(ta.ops.rrelu_backward.default, (layout(sample(1)), x.detach(), torch.empty(0), 0.1, 0.3, False, False))


def test_third_derivative_raises():
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    (g1,) = torch.autograd.grad(ta.functional.gelu(x).sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(g1.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="gelu_double_backward is not implemented"):
        torch.autograd.grad(g2.sum(), x)


# ---------------------------------------------------- fake / meta tensors ---
LAYOUTS = {
    **OPCHECK_LAYOUTS,
    "sliced": lambda t: t[:, ::2, :, 1:],
    "expanded": lambda t: t[:, :1].expand(2, 3, 4, 5),
    "permuted": lambda t: t.permute(3, 0, 2, 1),
    "empty": lambda t: t[:, :0],
}


@pytest.mark.parametrize("op,params,_id", CASES, ids=CASE_IDS)
def test_meta_kernel_agrees_with_real_kernel(op, params, _id):
    for lname, layout in LAYOUTS.items():
        x = layout(sample())
        real = op.ours(x, **params)
        meta = op.ours(x.to("meta"), **params)
        assert meta.device.type == "meta"
        assert meta.shape == real.shape and meta.stride() == real.stride() and meta.dtype == real.dtype, lname
        if real.numel():
            bwd = getattr(ta.ops, op.name + "_backward")
            values = schema_args(op.name, params)
            extra = [values[a.name] if a.name != "is_result" else False for a in bwd.default._schema.arguments[2:]]
            rb = bwd(real, x, *extra)
            mb = bwd(real.to("meta"), x.to("meta"), *extra)
            assert mb.shape == rb.shape and mb.stride() == rb.stride(), lname


def test_meta_module_and_fake_tensor_mode():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with torch.device("meta"):
        m = torch.nn.Sequential(torch.nn.Linear(4, 8), ta.nn.GELU(), ta.nn.PReLU(8))
        y = m(torch.randn(2, 4))
    assert y.device.type == "meta" and y.shape == (2, 8)
    with FakeTensorMode():
        x = torch.randn(3, 4, 5, 6).contiguous(memory_format=torch.channels_last)
        y = ta.functional.silu(x)
        assert y.stride() == x.stride()


# ------------------------------------------------------------ torch.compile ---
def chain(x, w):
    y = ta.functional.gelu(x) + ta.functional.silu(x) * ta.functional.sigmoid(x)
    y = ta.functional.leaky_relu(y, 0.1) + ta.functional.mish(x) - ta.functional.softplus(x, 2.0, 10.0)
    y = ta.functional.hardswish(y) + ta.functional.elu(x) + ta.functional.tanh(x) + ta.functional.prelu(x, w)
    return ta.functional.logsigmoid(y) + ta.functional.gelu(x, approximate="tanh")


def test_compile_fullgraph_forward_backward_matches_eager():
    torch._dynamo.reset()
    x = torch.randn(4, 3, 8, dtype=torch.float64, requires_grad=True)
    w = torch.rand(3, dtype=torch.float64, requires_grad=True)
    eager = chain(x, w)
    ge = torch.autograd.grad(eager.sum(), (x, w))
    compiled = torch.compile(chain, fullgraph=True, dynamic=False)
    out = compiled(x, w)
    gc = torch.autograd.grad(out.sum(), (x, w))
    torch.testing.assert_close(out, eager)
    torch.testing.assert_close(gc, ge)


def test_compile_dynamic_shapes_and_inplace():
    torch._dynamo.reset()

    def f(x):
        y = x * 2
        ta.functional.relu(y, inplace=True)
        return ta.functional.silu(y) + ta.functional.hardtanh(x, -0.5, 0.5)

    compiled = torch.compile(f, fullgraph=True, dynamic=True)
    for n in (5, 9, 17):
        x = torch.randn(n, 3, requires_grad=True)
        torch.testing.assert_close(compiled(x), f(x))
        (g1,) = torch.autograd.grad(compiled(x).sum(), x)
        (g2,) = torch.autograd.grad(f(x).sum(), x)
        torch.testing.assert_close(g1, g2)


# ----------------------------------------------------------------- profiler ---
def test_profiler_shows_forward_and_backward_ops():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), ta.nn.GELU(), torch.nn.Linear(8, 8), ta.nn.SiLU(), ta.nn.PReLU())
    x = torch.randn(16, 8)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model(x).sum().backward()
    names = {e.name for e in prof.events()}
    for n in ("gelu", "silu", "prelu"):
        assert f"torch_activations::{n}" in names
        assert f"torch_activations::{n}_backward" in names


# ----------------------------------------------------- nn and functional ---
NN_CASES = [
    ("Sigmoid", [()]), ("Tanh", [()]), ("ReLU", [(), (True,)]), ("LeakyReLU", [(), (0.2, True)]),
    ("PReLU", [(), (3, 0.1)]), ("ELU", [(), (0.5, True)]), ("SELU", [(), (True,)]), ("CELU", [(), (0.5,)]),
    ("Softplus", [(), (2, 10)]), ("SiLU", [(), (True,)]), ("GELU", [(), ("tanh",)]), ("Mish", [(), (True,)]),
    ("ReLU6", [(), (True,)]), ("Hardtanh", [(), (-2.0, 3.0)]), ("Hardsigmoid", [()]), ("Hardswish", [()]),
    ("LogSigmoid", [()]), ("Softsign", [()]), ("Tanhshrink", [()]), ("Softshrink", [(), (0.3,)]),
    ("Hardshrink", [(), (0.3,)]), ("Threshold", [(0.1, 20.0), (0.5, -1.0, True)]), ("RReLU", [(), (0.1, 0.3)]),
]


@pytest.mark.parametrize("name,arglists", NN_CASES, ids=[c[0] for c in NN_CASES])
def test_nn_module_is_a_drop_in(name, arglists):
    ours_cls, ref_cls = getattr(ta.nn, name), getattr(torch.nn, name)
    assert inspect.signature(ours_cls.__init__) == inspect.signature(ref_cls.__init__)
    for args in arglists:
        torch.manual_seed(0)
        ref = ref_cls(*args)
        torch.manual_seed(0)
        ours = ours_cls(*args)
        assert repr(ours) == repr(ref)
        assert list(ours.state_dict()) == list(ref.state_dict())
        ours.load_state_dict(ref.state_dict())
        ref.load_state_dict(ours.state_dict())
        ours.eval(), ref.eval()
        x = torch.randn(2, 3, 4, dtype=torch.float64)
        xa, xb = x.clone().requires_grad_(True) * 1, x.clone().requires_grad_(True) * 1
        ours.double(), ref.double()
        torch.testing.assert_close(ours(xa), ref(xb))


def test_functional_signatures_match_torch():
    for name in ta.functional.__all__:
        if name in ("swish", "swiglu", "geglu", "reglu"):  # ours alone: silu with a beta, gated units
            continue
        ref = getattr(TF, name, None) or getattr(torch, name, None)
        assert ref is not None, name
        try:
            want = inspect.signature(ref)
        except (TypeError, ValueError):
            continue  # a C builtin without a Python signature
        got = inspect.signature(getattr(ta.functional, name))
        want_params = [(p.name, p.default) for p in want.parameters.values()]
        got_params = [(p.name, p.default) for p in got.parameters.values()]
        assert got_params == want_params, name


def test_documented_defaults_of_builtins_without_signatures():
    sig = lambda f: [(p.name, p.default) for p in inspect.signature(f).parameters.values()]  # noqa: E731
    assert sig(ta.functional.softplus) == [("input", inspect._empty), ("beta", 1.0), ("threshold", 20.0)]
    assert sig(ta.functional.gelu) == [("input", inspect._empty), ("approximate", "none")]
    assert sig(ta.functional.softshrink) == [("input", inspect._empty), ("lambd", 0.5)]
    assert sig(ta.functional.hardshrink) == [("input", inspect._empty), ("lambd", 0.5)]
    assert sig(ta.functional.logsigmoid) == [("input", inspect._empty)]
    assert sig(ta.functional.swish) == [("input", inspect._empty), ("beta", 1.0), ("inplace", False)]


# ------------------------------------------------- instruction sets, threads ---
def test_every_supported_isa_agrees():
    isas = ta.supported_cpu_capabilities()
    assert "DEFAULT" in isas
    before = ta.cpu_capability()
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(4099, generator=g) * 4, torch.tensor([0.0, -0.0, 1e-40, 50.0, -50.0])])
    results = {}
    try:
        for isa in isas:
            ta.set_cpu_capability(isa)
            assert ta.cpu_capability() == isa
            outs = []
            for op, params, _ in CASES:
                for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16):
                    xx = x.to(dtype).requires_grad_(True)
                    y = op.ours(xx, **params)
                    (gx,) = torch.autograd.grad(y, xx, torch.ones_like(y))
                    outs.append((op.name, dtype, y.detach(), gx))
            results[isa] = outs
    finally:
        ta.set_cpu_capability(before)
    base = results["DEFAULT"]
    for isa, outs in results.items():
        for (name, dtype, y, gx), (_, _, y0, g0) in zip(outs, base):
            # Only FMA contraction differs between builds: a few ulp of the
            # compute type, within the dtype's tolerance.
            torch.testing.assert_close(y, y0, msg=f"{isa} {name} {dtype}")
            torch.testing.assert_close(gx, g0, msg=f"{isa} {name} {dtype} grad")


def test_unknown_isa_is_refused():
    with pytest.raises(RuntimeError, match="not compiled into this build"):
        ta.set_cpu_capability("SSE9")


def test_results_are_bitwise_identical_for_any_thread_count():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 70001, generator=g) * 3
    threads = torch.get_num_threads()
    try:
        for op, params, _ in CASES:
            outs = []
            for n in (1, 2, 3):
                torch.set_num_threads(n)
                xx = x.clone().requires_grad_(True)
                y = op.ours(xx, **params)
                (gx,) = torch.autograd.grad(y, xx, torch.ones_like(y))
                outs.append((y, gx))
            for y, gx in outs[1:]:
                assert torch.equal(y, outs[0][0]) and torch.equal(gx, outs[0][1]), op.name
    finally:
        torch.set_num_threads(threads)
