"""The softmax family, gated units and losses as PyTorch sees them: opcheck
(with and without requires_grad), meta and fake tensors agreeing with the
CPU kernels, torch.compile(fullgraph=True) forward and backward with static
and dynamic shapes, profiler names, agreement between instruction sets and
bitwise independence from the number of threads."""
import pytest
import torch
from torch.library import opcheck

import torch_activations as ta
from torch_activations import functional as F

ops = ta.ops
LAYOUTS = {
    "contiguous": lambda t: t,
    "transposed": lambda t: t.transpose(1, 3),
    "channels_last": lambda t: t.contiguous(memory_format=torch.channels_last),
}
MORE_LAYOUTS = {
    **LAYOUTS,
    "sliced": lambda t: t[:, ::2, :, 2:],
    "expanded": lambda t: t[:, :1].expand(t.shape),
    "empty": lambda t: t[:, :0],
}


def rnd(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def base(seed=0):
    return rnd(2, 4, 6, 8, seed=seed)


# --------------------------------------------------------- sample inputs ---
def softmax_samples(layout, rg):
    """(op, args) for every softmax-family operator."""
    out = []
    for name in ("softmax", "log_softmax", "softmin"):
        x = layout(base()).requires_grad_(rg)
        for dim, dtype in ((1, None), (-1, None), (3, torch.float64)):
            out.append((getattr(ops, name).default, (x, dim, dtype)))
        y = getattr(ops, name)(layout(base()), 1, None).requires_grad_(rg)
        g = layout(base(1)).requires_grad_(rg)
        out.append((getattr(ops, name + "_backward").default, (g, y, 1, torch.float32)))
        out.append((getattr(ops, name + "_backward").default, (g, y, 1, torch.bfloat16)))
        out.append((getattr(ops, name + "_double_backward").default,
                    (layout(base(2)), g.detach(), y.detach(), 1)))
    return out


GATED = [("glu", ()), ("swiglu", ()), ("geglu", ("tanh",)), ("reglu", ())]


def gated_samples(layout, rg):
    out = []
    for name, params in GATED:
        x = layout(base()).requires_grad_(rg)
        for dim in (1, -1):
            out.append((getattr(ops, name).default, (x, dim, *params)))
            # A grad_output with the layout the forward gives.
            g = getattr(ops, name)(x.detach(), dim, *params).normal_(generator=torch.Generator().manual_seed(1))
            g.requires_grad_(rg)
            out.append((getattr(ops, name + "_backward").default, (g, x, dim, *params)))
            out.append((getattr(ops, name + "_double_backward").default,
                        (layout(base(2)), g.detach(), x.detach(), dim, *params)))
        if name == "glu":
            continue
        gate, up = layout(base(3)).requires_grad_(rg), layout(base(4)).requires_grad_(rg)
        g = layout(base(5)).requires_grad_(rg)
        out.append((getattr(ops, name).pair, (gate, up, *params)))
        out.append((getattr(ops, name + "_backward").pair, (g, gate, up, *params)))
        for ggg, ggu in ((layout(base(6)), layout(base(7))), (None, layout(base(7))), (layout(base(6)), None)):
            out.append((getattr(ops, name + "_double_backward").pair,
                        (ggg, ggu, g.detach(), gate.detach(), up.detach(), *params)))
    return out


def loss_samples(layout, rg):
    out = []
    x = layout(base()).requires_grad_(rg)
    c = x.shape[1]
    t_idx = torch.randint(0, c, (x.shape[0], *x.shape[2:]), generator=torch.Generator().manual_seed(0))
    t_idx[0, 0, 0] = -100
    t_prob = torch.softmax(layout(base(1)), 1).requires_grad_(rg)
    w = torch.rand(c, generator=torch.Generator().manual_seed(2))
    for t in (t_idx, t_prob):
        for weight, red, eps in ((None, 1, 0.0), (w, 0, 0.1), (w, 2, 0.0)):
            args = (x, t, weight, red, -100, eps)
            out.append((ops.cross_entropy.default, args))
            loss, stats = ops.cross_entropy(x.detach(), t.detach(), weight, red, -100, eps)
            go = torch.rand_like(loss).requires_grad_(rg)
            prob = t is t_prob
            out.append((ops.cross_entropy_backward.default, (go, x, t, weight, red, -100, eps, stats, [True, prob])))
            out.append((ops.cross_entropy_double_backward.default,
                        (layout(base(3)), layout(base(4)) if prob else None, go.detach(), x.detach(), t.detach(),
                         weight, red, -100, eps, stats, [True, True, prob])))
    tt = layout(torch.rand(2, 4, 6, 8, generator=torch.Generator().manual_seed(5))).requires_grad_(rg)
    last = x.shape[-1]
    for weight, pw, red in ((None, None, 1), (torch.rand(last), torch.rand(last) * 2, 0), (None, torch.rand(last), 2)):
        out.append((ops.binary_cross_entropy_with_logits.default, (x, tt, weight, pw, red)))
        go = torch.rand(x.shape if red == 0 else ()).requires_grad_(rg)
        out.append((ops.binary_cross_entropy_with_logits_backward.default, (go, x, tt, weight, pw, red, [True, True])))
        out.append((ops.binary_cross_entropy_with_logits_double_backward.default,
                    (layout(base(3)), layout(base(4)), go.detach(), x.detach(), tt.detach(), weight, pw, red,
                     [True, True, True])))
    return out


SAMPLES = {"softmax": softmax_samples, "gated": gated_samples, "losses": loss_samples}


# ---------------------------------------------------------------- opcheck ---
# Tracing with torch.compile (test_aot_dispatch_dynamic) dominates the cost:
# every sample gets all checks in the contiguous layout with requires_grad,
# the other cases (whose strides matter to the fake kernels) the schema,
# autograd registration and fake-tensor checks.
QUICK = ("test_schema", "test_autograd_registration", "test_faketensor")


@pytest.mark.parametrize("family", list(SAMPLES))
def test_opcheck(family):
    for lname, layout in LAYOUTS.items():
        for rg in (False, True):
            for op, args in SAMPLES[family](layout, rg):
                # The double backward is the end of the chain: a third
                # derivative raises, so no requires_grad there.
                if "double_backward" in op.name():
                    args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
                if lname == "contiguous" and rg:
                    opcheck(op, args)
                else:
                    opcheck(op, args, test_utils=QUICK)


def test_third_derivative_raises():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    for fn in (lambda t: F.softmax(t, 1), lambda t: F.swiglu(t), lambda t: F.cross_entropy(t, torch.tensor([0, 1, 2])),
               lambda t: F.binary_cross_entropy_with_logits(t, torch.rand(3, 4, dtype=torch.float64))):
        (g1,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
        (g2,) = torch.autograd.grad((g1 * g1).sum(), x, create_graph=True)
        with pytest.raises(RuntimeError, match="double_backward.*is not implemented"):
            torch.autograd.grad(g2.sum(), x)


def test_forward_mode_ad_is_refused_by_the_losses():
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        x = fwAD.make_dual(torch.randn(3, 4), torch.randn(3, 4))
        for fn in (lambda t: F.cross_entropy(t, torch.tensor([0, 1, 2])),
                   lambda t: F.binary_cross_entropy_with_logits(t, torch.rand(3, 4))):
            with pytest.raises(RuntimeError, match="forward-mode automatic differentiation is not supported"):
                fn(x)


# ---------------------------------------------------- fake / meta tensors ---
def to_meta(a):
    if isinstance(a, torch.Tensor):
        return a.detach().to("meta")
    if isinstance(a, (list, tuple)) and a and isinstance(a[0], torch.Tensor):
        return type(a)(to_meta(v) for v in a)
    return a


@pytest.mark.parametrize("family", list(SAMPLES))
def test_meta_kernels_allocate_like_the_cpu_kernels(family):
    for lname, layout in MORE_LAYOUTS.items():
        if lname == "empty" and family != "softmax":
            continue
        for op, args in SAMPLES[family](layout, False):
            real = op(*args)
            meta = op(*[to_meta(a) for a in args])
            real = real if isinstance(real, tuple) else (real,)
            meta = meta if isinstance(meta, tuple) else (meta,)
            for r, m in zip(real, meta):
                assert m.device.type == "meta"
                assert (m.shape, m.stride(), m.dtype) == (r.shape, r.stride(), r.dtype), f"{op} {lname}"


def test_fake_tensor_mode_and_meta_modules():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        x = torch.randn(3, 4, 5, 6).contiguous(memory_format=torch.channels_last)
        assert F.swiglu(x, dim=1).stride() == torch.nn.functional.glu(x, 1).stride()
        assert F.softmax(x, 1).is_contiguous()
        loss = F.cross_entropy(x, torch.randint(0, 4, (3, 5, 6)))
        assert loss.shape == ()
    with torch.device("meta"):
        m = torch.nn.Sequential(torch.nn.Linear(4, 16), ta.nn.SwiGLU(), torch.nn.Linear(8, 5), ta.nn.LogSoftmax(1))
        y = m(torch.randn(2, 4))
    assert y.device.type == "meta" and y.shape == (2, 5)


# ------------------------------------------------------------ torch.compile ---
def block(x, w1, w2, t, p):
    h = F.swiglu(x @ w1)
    h = h + F.geglu(h, h, approximate="tanh") + F.reglu(torch.cat([h, h], 1)) + F.glu(torch.cat([h, h], 1))
    logits = h @ w2
    loss = F.cross_entropy(logits, t, label_smoothing=0.1) + F.cross_entropy(logits, p, reduction="sum")
    loss = loss + F.binary_cross_entropy_with_logits(logits, p, pos_weight=torch.ones_like(logits[0]) * 2)
    loss = loss + (F.softmax(logits, 1) * F.log_softmax(logits, 1)).sum()
    return loss + F.softmin(logits, 0, dtype=torch.float64).sum()


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_compile_fullgraph_forward_backward_matches_eager(dynamic):
    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True, dynamic=dynamic)
    g = torch.Generator().manual_seed(0)
    for n in (6, 9) if dynamic else (6,):
        x = torch.randn(n, 5, generator=g, dtype=torch.float64, requires_grad=True)
        w1 = torch.randn(5, 8, generator=g, dtype=torch.float64, requires_grad=True)
        w2 = torch.randn(4, 7, generator=g, dtype=torch.float64, requires_grad=True)
        t = torch.randint(0, 7, (n,), generator=g)
        t[0] = -100
        p = torch.softmax(torch.randn(n, 7, generator=g, dtype=torch.float64), 1)
        eager = block(x, w1, w2, t, p)
        ge = torch.autograd.grad(eager, (x, w1, w2))
        out = compiled(x, w1, w2, t, p)
        gc = torch.autograd.grad(out, (x, w1, w2))
        torch.testing.assert_close(out, eager)
        torch.testing.assert_close(gc, ge)


# ----------------------------------------------------------------- profiler ---
def test_profiler_shows_forward_and_backward_ops():
    x = torch.randn(8, 6, requires_grad=True)
    t = torch.randint(0, 3, (8,))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        h = F.swiglu(x) + F.glu(x) + F.geglu(x[:, :3], x[:, 3:]) + F.reglu(x)
        loss = F.cross_entropy(h, t) + F.binary_cross_entropy_with_logits(h, torch.rand(8, 3))
        loss = loss + F.softmax(h, 1).sum() + F.log_softmax(h, 1).sum() + F.softmin(h, 1).sum()
        loss.backward()
    names = {e.name for e in prof.events()}
    for n in ("softmax", "log_softmax", "softmin", "glu", "swiglu", "geglu", "reglu", "cross_entropy",
              "binary_cross_entropy_with_logits"):
        assert f"torch_activations::{n}" in names, n
        assert f"torch_activations::{n}_backward" in names, n


# ------------------------------------------------- instruction sets, threads ---
def run_all(inputs):
    """Every new op on a row-path, a column-path and a gather-path layout,
    forward and backward; returns a flat list of results."""
    out = []
    for name in ("softmax", "log_softmax", "softmin"):
        for inp, _, p, _ in inputs:
            xa = inp.detach().requires_grad_(True)
            y = getattr(F, name)(xa, 1)
            # A positive grad_output: its row sums do not cancel, so builds
            # that sum in different orders agree within the dtype's tolerance.
            out += [y, torch.autograd.grad(y, xa, p + 0.5)[0]]
    gated = (lambda t: F.swiglu(t, dim=1), lambda t: F.reglu(t, dim=1), lambda t: F.glu(t, 1),
             lambda t: F.geglu(t, dim=1, approximate="tanh"))
    for fn in gated:
        for inp, _, _, _ in inputs:
            xa = inp.detach().requires_grad_(True)
            y = fn(xa)
            out += [y, torch.autograd.grad(y, xa, torch.ones_like(y))[0]]
    for inp, t, p, b in inputs:
        for target in (t, p):
            xa = inp.detach().requires_grad_(True)
            loss = F.cross_entropy(xa, target, label_smoothing=0.1, reduction="none")
            out += [loss, torch.autograd.grad(loss.sum(), xa)[0]]
        xa = inp.detach().requires_grad_(True)
        loss = F.binary_cross_entropy_with_logits(xa, b)
        out += [loss, torch.autograd.grad(loss, xa)[0]]
    return out


def layouts_for(dtype, rows=33, cols=518):
    """Inputs in three layouts with their targets, made once (PyTorch's own
    kernels need not give the same bits for every thread count)."""
    g = torch.Generator().manual_seed(0)
    xs = [(torch.randn(rows, cols, generator=g) * 4).to(dtype),
          (torch.randn(cols, rows, generator=g) * 4).to(dtype).t(),
          (torch.randn(rows, 2 * cols, generator=g) * 4).to(dtype)[:, ::2]]
    out = []
    for x in xs:
        t = torch.randint(0, cols, (rows,), generator=g)
        p = torch.rand(rows, cols, generator=g).to(dtype)
        b = torch.rand(rows, cols, generator=g).to(dtype)
        out.append((x, t, p, b))
    return out


DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def test_every_supported_isa_agrees():
    isas = ta.supported_cpu_capabilities()
    before = ta.cpu_capability()
    results = {}
    try:
        for isa in isas:
            ta.set_cpu_capability(isa)
            results[isa] = {dt: run_all(layouts_for(dt)) for dt in DTYPES}
    finally:
        ta.set_cpu_capability(before)
    for isa, res in results.items():
        for dt, outs in res.items():
            for i, (a, b) in enumerate(zip(outs, results["DEFAULT"][dt])):
                torch.testing.assert_close(a, b, msg=f"{isa} {dt} result {i}")


@pytest.mark.parametrize(
    "rows,cols", [(301, 1100), (4099, 10), (1500, 64), (700, 256)], ids=["long", "short10", "short64", "short256"]
)
def test_results_are_bitwise_identical_for_any_thread_count(rows, cols):
    """Short rows run in tiles of rows, whose boundaries move with the
    threads' shares of the rows."""
    threads = torch.get_num_threads()
    inputs = layouts_for(torch.float32, rows=rows, cols=cols)
    try:
        outs = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            outs.append(run_all(inputs))
    finally:
        torch.set_num_threads(threads)
    for other in outs[1:]:
        for i, (a, b) in enumerate(zip(outs[0], other)):
            assert torch.equal(a, b), f"result {i}"


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64", "bf16", "f16"])
@pytest.mark.parametrize("cols", [3, 70])
def test_adjacent_rows_give_the_same_bits_wherever_they_start(each_isa, dtype, cols):
    """Rows adjacent in memory (a reduction over the channels of a contiguous
    (N, C, L) tensor) run one row per lane, and the backward kernels take
    several groups of lanes at a time: a row's results must not depend on
    its lane, nor on whether its group runs with others, alone, or partly
    filled. Dropping the first positions moves every row to another lane
    and group."""
    g = torch.Generator().manual_seed(7)
    rows = 300
    x = (torch.randn(2, cols, rows, generator=g, dtype=torch.float64) * 4).to(dtype)
    gy = torch.randn(2, cols, rows, generator=g, dtype=torch.float64).to(dtype)

    def results(xx, gg):
        out = []
        for name in ("softmax", "log_softmax", "softmin"):
            xa = xx.detach().requires_grad_(True)
            y = getattr(F, name)(xa, 1)
            out += [y, torch.autograd.grad(y, xa, gg)[0]]
        return out

    base = results(x, gy)
    for start in (1, 5, 16, 129, 290):
        got = results(x[..., start:].contiguous(), gy[..., start:].contiguous())
        for i, (a, b) in enumerate(zip(got, base)):
            assert torch.equal(a, b[..., start:]), f"rows from {start}: result {i}"


# The longest rows each forward kernel runs one row per lane in any layout.
COLUMN_ROWS = {"softmax": 64, "softmin": 64, "log_softmax": 256, "cross_entropy": 256}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64", "bf16", "f16"])
@pytest.mark.parametrize("cols", [1, 7, 16, 17, 64, 200, 256])
def test_short_rows_give_the_same_bits_in_every_layout(each_isa, dtype, cols):
    """The forward kernels run short rows (COLUMN_ROWS) one row per lane
    whatever their layout (contiguous rows are transposed into tiles, in
    blocks of a register's width and element by element at the edges), so
    a row's results do not depend on where it lies, nor on how many rows
    come with it (partial groups of lanes, several tiles). Longer rows and
    the backward kernels keep the row path for contiguous rows: those
    results are checked against the first layout's to the dtype's
    tolerance."""
    g = torch.Generator().manual_seed(5)
    rows = 300
    x = (torch.randn(rows, cols, generator=g, dtype=torch.float64) * 4).to(dtype)
    gy = torch.randn(rows, cols, generator=g, dtype=torch.float64).to(dtype)
    t = torch.randint(0, cols, (rows,), generator=g)
    variants = {
        "contiguous": lambda a: a.contiguous(),
        "adjacent rows": lambda a: a.t().contiguous().t(),
        "strided": lambda a: torch.zeros(rows, 2 * cols, dtype=dtype)[:, ::2].copy_(a),
        "one row": lambda a: a[:1].contiguous(),
        "33 rows": lambda a: a[:33].contiguous(),
    }

    def results(xx, gg, tt):
        out = []
        for name in ("softmax", "log_softmax", "softmin"):
            xa = xx.detach().requires_grad_(True)
            y = getattr(F, name)(xa, 1)
            out += [(name, True, y), (name, False, torch.autograd.grad(y, xa, gg)[0])]
        xa = xx.detach().requires_grad_(True)
        loss = F.cross_entropy(xa, tt, reduction="none")
        out += [("cross_entropy", True, loss), ("cross_entropy", False, torch.autograd.grad(loss.sum(), xa)[0])]
        return [(name, fwd, o.contiguous()) for name, fwd, o in out]

    base = results(x, gy, t)
    for vname, make in variants.items():
        n = make(x).shape[0]
        got = results(make(x), make(gy), t[:n])
        for i, ((name, fwd, a), (_, _, b)) in enumerate(zip(got, base)):
            if fwd and cols <= COLUMN_ROWS[name]:
                assert torch.equal(a, b[:n]), f"{vname}: {name} result {i}"
            else:
                torch.testing.assert_close(a, b[:n], msg=lambda m: f"{vname}: result {i}: {m}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=["f32", "f64", "bf16"])
@pytest.mark.parametrize("cols", [7, 64, 256])
def test_short_rows_of_a_call_larger_than_l2_give_the_bits_of_a_small_call(each_isa, dtype, cols):
    """A call whose short rows take more than L2 (1 MiB per thread's share;
    here 4 MiB of input) prefetches the next tile's rows as it goes, which
    must leave every row's forward result as a small call computes it."""
    g = torch.Generator().manual_seed(9)
    rows = -(-(4 << 20) // (cols * dtype.itemsize))
    x = (torch.randn(rows, cols, generator=g, dtype=torch.float64) * 4).to(dtype)
    t = torch.randint(0, cols, (rows,), generator=g)
    for name in ("softmax", "log_softmax", "softmin"):
        if cols > COLUMN_ROWS[name]:
            continue
        fn = getattr(F, name)
        big = fn(x, 1)
        for a in (0, rows // 2 - 5, rows - 40):
            assert torch.equal(big[a:a + 40], fn(x[a:a + 40], 1)), f"{name}: rows {a} to {a + 40}"
    big = F.cross_entropy(x, t, reduction="none")
    for a in (0, rows // 2 - 5, rows - 40):
        assert torch.equal(big[a:a + 40], F.cross_entropy(x[a:a + 40], t[a:a + 40], reduction="none")), \
            f"cross_entropy: rows {a} to {a + 40}"
