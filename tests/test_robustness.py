"""Robustness: concurrent Python threads, any intra-op thread count, no
memory growth over many calls, 64-bit indexing beyond 2**31 elements, and
backward passes that never write into what autograd saved or passed them
(the in-place gradient writes that corrupt other ops' saved tensors)."""
import gc
import math
import random
import threading

import pytest
import torch
import torch.nn.functional as TF

import torch_activations as ta
from torch_activations import functional as F
from torch_activations.optable import CASE_IDS, CASES, away_from_kinks


def data(op, params, shape, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return away_from_kinks(op, params, torch.randn(shape, generator=g, dtype=torch.float64) * op.scale).to(dtype)


def jobs(shape, dtype=torch.float32):
    """(name, fn) pairs; each fn computes from fixed inputs and returns a
    tuple of tensors: forward, gradient, double-backward gradient, in-place
    result, and the parametric ops' and rrelu's outputs and gradients."""
    out = []
    for k, (op, params, cid) in enumerate(CASES):
        x0 = data(op, params, shape, k, dtype)
        go = data(op, params, shape, k + 1000, dtype)

        def run(op=op, params=params, x0=x0, go=go):
            x = x0.clone().requires_grad_(True)
            y = op.ours(x, **params)
            (g,) = torch.autograd.grad(y, x, go, create_graph=True)
            (gg,) = torch.autograd.grad(g, x, go, allow_unused=True)
            z = x0.clone()
            getattr(ta.ops, op.name + "_")(z, *[params.get(a.name, a.default_value)
                                                for a in getattr(ta.ops, op.name).default._schema.arguments[1:]])
            return y.detach(), g.detach(), gg if gg is not None else torch.zeros(()), z

        out.append((cid, run))
    for name in ("prelu", "swish_learnable"):
        for nw in (1, shape[1]):
            g = torch.Generator().manual_seed(nw)
            x0 = torch.randn(shape, generator=g).to(dtype)
            w0 = (torch.rand(nw, generator=g) + 0.2).to(dtype)
            go = torch.randn(shape, generator=g).to(dtype)

            def run(name=name, x0=x0, w0=w0, go=go):
                x, w = x0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
                y = getattr(ta.ops, name)(x, w)
                gx, gw = torch.autograd.grad(y, (x, w), go, create_graph=True)
                ggx, ggw = torch.autograd.grad((gx * go).sum() + gw.sum(), (x, w))
                return y.detach(), gx.detach(), gw.detach(), ggx, ggw

            out.append((f"{name}[{nw}]", run))
    x0 = torch.randn(shape, generator=torch.Generator().manual_seed(5)).to(dtype)

    def rrelu_run(x0=x0):
        x = x0.clone().requires_grad_(True)
        y = ta.ops.rrelu(x, 0.1, 0.4, True, torch.Generator().manual_seed(9))
        (g,) = torch.autograd.grad(y, x, torch.ones_like(y))
        _, noise = ta.ops.rrelu_with_noise(x0, 0.1, 0.4, True, torch.Generator().manual_seed(9))
        return y.detach(), noise, g

    out.append(("rrelu[training]", rrelu_run))

    # Row ops and losses: forward, gradient, double-backward gradient.
    even = shape[:-1] + (shape[-1] + shape[-1] % 2,)
    g = torch.Generator().manual_seed(17)
    xs = torch.randn(shape, generator=g).to(dtype)
    xe = torch.randn(even, generator=g).to(dtype)
    rows = math.prod(shape[:-1])
    logits = torch.randn(rows, 37, generator=g).to(dtype)
    target = torch.randint(0, 37, (rows,), generator=g)
    probs = torch.rand(shape, generator=g).to(dtype)
    row_ops = [
        ("softmax", lambda t: F.softmax(t, -1), xs), ("log_softmax", lambda t: F.log_softmax(t, 1), xs),
        ("softmin", lambda t: F.softmin(t, 0), xs), ("glu", lambda t: F.glu(t, -1), xe),
        ("swiglu", lambda t: F.swiglu(t), xe), ("geglu", lambda t: F.geglu(t, approximate="tanh"), xe),
        ("reglu", lambda t: F.reglu(t), xe),
        ("cross_entropy", lambda t: F.cross_entropy(t, target, label_smoothing=0.1), logits),
        ("bce_with_logits", lambda t: F.binary_cross_entropy_with_logits(t, probs, reduction="sum"), xs),
    ]
    for name, fn, x0 in row_ops:
        def run(fn=fn, x0=x0):
            x = x0.clone().requires_grad_(True)
            y = fn(x)
            go = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)
            (gx,) = torch.autograd.grad(y, x, go, create_graph=True)
            (ggx,) = torch.autograd.grad(gx, x, torch.ones_like(gx), allow_unused=True)
            return y.detach(), gx.detach(), ggx if ggx is not None else torch.zeros(())

        out.append((name, run))
    return out


def assert_same(a, b, what):
    assert len(a) == len(b), what
    for i, (u, v) in enumerate(zip(a, b)):
        assert u.shape == v.shape and torch.equal(u.view(-1).view(torch.uint8), v.view(-1).view(torch.uint8)), \
            f"{what}: output {i} differs"


# ---------------------------------------------------------------- threads ---
THREADS = 8
ROUNDS = 3


def test_concurrent_python_threads_give_the_serial_results():
    """THREADS Python threads run every job (forward, backward, double
    backward, in-place, parametric, rrelu with its own generator) ROUNDS
    times each in their own order, all at once; every result is bitwise the
    serial one."""
    work = jobs((4, 3, 257))
    expected = {name: fn() for name, fn in work}
    errors, calls = [], []
    start = threading.Barrier(THREADS)

    def worker(seed):
        order = [j for _ in range(ROUNDS) for j in work]
        random.Random(seed).shuffle(order)
        start.wait()
        try:
            for name, fn in order:
                assert_same(fn(), expected[name], f"thread {seed}, {name}")
                calls.append(1)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert len(calls) == THREADS * ROUNDS * len(work)


def test_bitwise_identical_for_any_intra_op_thread_count():
    """Extends test_integration's forward/backward check to double backward,
    in-place, the parametric ops (whose parameter gradient is a reduction)
    and rrelu; inputs are large enough to be split between threads."""
    work = jobs((3, 5, 8009))
    # Known exception: the losses' double backward is written with ATen ops
    # (sigmoid, exp), whose last bits depend on where the threads split the
    # tensor (vectorized body or scalar tail); their forward and backward
    # run on our kernels and are compared.
    last_only = {"cross_entropy": 2, "bce_with_logits": 2}
    before = torch.get_num_threads()
    try:
        results = {}
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results[n] = {name: fn() for name, fn in work}
    finally:
        torch.set_num_threads(before)
    for n in (2, 3):
        for name, _ in work:
            k = last_only.get(name, len(results[1][name]))
            assert_same(results[n][name][:k], results[1][name][:k], f"{n} threads, {name}")


# ------------------------------------------------------------------- leak ---
CALLS = 100_000
# RSS may grow by at most 512 KiB over CALLS calls. The calls are spread over
# ~41 ops, about 2400 calls each, so one op leaking 220 bytes a call (less
# than a tensor or an autograd node) would exceed it. Measured: 32 KiB.
RSS_BOUND = 512 * 2**10


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_no_memory_growth_over_many_calls():
    """CALLS forward+backward calls round-robin over every op (pointwise,
    in-place, parametric, rrelu, softmax family, gated units, losses; double
    backward every 16th call) on a small tensor; RSS after them is within
    RSS_BOUND of RSS before them."""
    x0 = torch.randn(4, 3, 5)
    w0 = torch.rand(3)

    def leaf(t):
        return t.clone().requires_grad_(True)

    fns = []  # each returns (output, leaves)
    for op, params, _ in CASES:
        fns.append(lambda op=op, params=params, x=None: (op.ours(x, **params), [x]))
    fns.append(lambda x=None, w=None: (F.prelu(x, w), [x, w]))
    fns.append(lambda x=None, w=None: (F.swish(x, w), [x, w]))
    fns.append(lambda x=None: (F.rrelu(x, training=True), [x]))
    fns.append(lambda x=None: (F.relu(x * 1, inplace=True), [x]))
    target = torch.randint(0, 5, (4, 3))
    fns.append(lambda x=None: (F.softmax(x, 1), [x]))
    fns.append(lambda x=None: (F.log_softmax(x, -1), [x]))
    fns.append(lambda x=None: (F.glu(x[..., :4], -1), [x]))
    fns.append(lambda x=None: (F.swiglu(x[..., :4]), [x]))
    fns.append(lambda x=None: (F.cross_entropy(x.transpose(1, 2), target), [x]))
    fns.append(lambda x=None: (F.binary_cross_entropy_with_logits(x, x0.sigmoid()), [x]))

    def call(i):
        fn = fns[i % len(fns)]
        kwargs = {"x": leaf(x0)}
        if "w" in fn.__code__.co_varnames:
            kwargs["w"] = leaf(w0)
        y, leaves = fn(**kwargs)
        if i % 16:
            y.backward(torch.ones_like(y))
            return
        # Every 16th call differentiates twice.
        grads = torch.autograd.grad(y, leaves, torch.ones_like(y), create_graph=True)
        total = sum(g.sum() for g in grads if g.requires_grad)
        if torch.is_tensor(total):
            torch.autograd.grad(total, leaves, allow_unused=True)

    for i in range(5000):  # warm-up: allocator pools, lazy initialisation
        call(i)
    gc.collect()
    before = rss_bytes()
    for i in range(CALLS):
        call(i)
    gc.collect()
    grown = rss_bytes() - before
    assert grown < RSS_BOUND, f"RSS grew by {grown / 2**20:.1f} MiB over {CALLS} calls"


# ------------------------------------------------------- 64-bit indexing ---
ELEMENTS = 2**31 + 1029


def _available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.mark.skipif(_available_bytes() < 10 * 2**30,
                    reason="needs ~4.3 GiB for one bfloat16 output of 2**31+ elements (and room to spare)")
def test_more_than_2_31_elements():
    """bfloat16 inputs are cheap expanded views; each output (4 GiB) is real
    and freed before the next. Ops without transcendental functions keep it
    quick: what is under test is the indexing. Every element is checked
    without allocating another 4 GiB (a reduction; torch.equal against an
    expanded view): a 32-bit index anywhere would leave elements unwritten
    (zero) or wrong."""
    before = torch.get_num_threads()
    try:
        # 1. One loop call over all elements: one thread, a broadcast input.
        torch.set_num_threads(1)
        v = torch.tensor([-0.75], dtype=torch.bfloat16)
        y = F.leaky_relu(v.expand(ELEMENTS), 0.25)
        want = F.leaky_relu(v, 0.25)[0]
        assert y.shape == (ELEMENTS,) and y.is_contiguous()
        assert y.amin() == want and y.amax() == want
        del y
        # 2. Rows of an odd length with a strided (gather) input, split
        # between threads, through a backward op; then in place over the
        # same 4 GiB.
        torch.set_num_threads(max(before, 2))
        k = 1029
        rows = ELEMENTS // k + 1
        base = torch.linspace(-4, 4, 2 * k, dtype=torch.float32).to(torch.bfloat16).reshape(1, 2 * k)
        s = base[:, ::2].expand(rows, k)
        g = torch.full((1, k), 1.5, dtype=torch.bfloat16).expand(rows, k)
        out = ta.ops.leaky_relu_backward(g, s, -0.25, False)
        assert out.numel() > 2**31
        want = ta.ops.leaky_relu_backward(g[:1], s[:1], -0.25, False)
        assert want.unique().numel() == 2
        assert torch.equal(out, want.expand(rows, k))
        F.relu(out, inplace=True)
        assert torch.equal(out, F.relu(want).expand(rows, k))
        del out
    finally:
        torch.set_num_threads(before)


# ---------------------------------------- saved tensors and grad buffers ---
def snapshot(*ts):
    return [(t, t.detach().clone(), t._version) for t in ts]


def unchanged(snap, what):
    for t, copy, version in snap:
        assert t._version == version and torch.equal(t.detach(), copy), f"{what}: a tensor was written"


@pytest.mark.parametrize("op,params,_id", CASES, ids=CASE_IDS)
def test_backward_never_writes_saved_tensors_or_grad_outputs(op, params, _id):
    """Backward and double backward twice through a retained graph give
    the same bits, and leave the input, the output, the saved tensors and
    the grad_output (also an expanded one, as sum() produces) untouched."""
    x = data(op, params, (6, 7), 0, torch.float64).requires_grad_(True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = op.ours(x, **params)
    for go in (data(op, params, (6, 7), 1, torch.float64), torch.ones(1, 1, dtype=torch.float64).expand(6, 7)):
        snap = snapshot(x, y, go, *saved)
        first = torch.autograd.grad(y, x, go, retain_graph=True, create_graph=True)[0]
        second = torch.autograd.grad(y, x, go, retain_graph=True, create_graph=True)[0]
        assert torch.equal(first, second)
        if op.smooth:
            gg1 = torch.autograd.grad(first, x, go, retain_graph=True, allow_unused=True)[0]
            gg2 = torch.autograd.grad(second, x, go, retain_graph=True, allow_unused=True)[0]
            assert (gg1 is None and gg2 is None) or torch.equal(gg1, gg2)
        unchanged(snap, op.name)


@pytest.mark.parametrize("op,params,_id", CASES, ids=CASE_IDS)
def test_writing_a_saved_tensor_afterwards_is_detected(op, params, _id):
    x = data(op, params, (5,), 0, torch.float64).requires_grad_(True)
    h = x * 1
    y = op.ours(h, **params)
    (y if op.saves == "output" else h).mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_parametric_and_rrelu_backward_write_nothing():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    for w in (torch.rand(3, generator=g, dtype=torch.float64, requires_grad=True),
              torch.rand(1, generator=g, dtype=torch.float64, requires_grad=True)):
        for fn in (F.prelu, F.swish):
            y = fn(x, w)
            go = torch.randn(x.shape, generator=g, dtype=torch.float64)
            snap = snapshot(x, w, y, go)
            a = torch.autograd.grad(y, (x, w), go, retain_graph=True, create_graph=True)
            b = torch.autograd.grad(y, (x, w), go, retain_graph=True, create_graph=True)
            assert all(torch.equal(u, v) for u, v in zip(a, b))
            c = torch.autograd.grad(a[0].sum() + a[1].sum(), (x, w), retain_graph=True)
            d = torch.autograd.grad(b[0].sum() + b[1].sum(), (x, w), retain_graph=True)
            assert all(torch.equal(u, v) for u, v in zip(c, d))
            unchanged(snap, fn.__name__)
    y = ta.ops.rrelu(x, 0.1, 0.3, True, torch.Generator().manual_seed(4))
    _, noise = ta.ops.rrelu_with_noise(x.detach(), 0.1, 0.3, True, torch.Generator().manual_seed(4))
    snap = snapshot(x, y, noise)
    a = torch.autograd.grad(y.sum(), x, retain_graph=True)[0]
    b = torch.autograd.grad(y.sum(), x)[0]
    assert torch.equal(a, b) and torch.equal(a, noise)
    unchanged(snap, "rrelu")


# ------------------------------------------------------ low-precision drift ---
def test_bfloat16_parameter_gradient_does_not_drift():
    """prelu's weight gradient in bfloat16 is a sum of many terms that
    cancel: ours equals the float64 result rounded once (PyTorch's own sums
    rounded terms and can lose every digit here)."""
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for n in (7, 100, 1000, 4099):
        x = -torch.rand(n, 4, generator=g, dtype=torch.float64).to(torch.bfloat16)
        go = torch.randn(n, 4, generator=g, dtype=torch.float64)
        go = (go - go.mean(0)).to(torch.bfloat16)  # sums of x * go that nearly cancel
        w = torch.rand(4, generator=g, dtype=torch.float64).to(torch.bfloat16)
        xa, wa = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
        gw = torch.autograd.grad(F.prelu(xa, wa), (xa, wa), go)[1]
        x64, w64 = x.double().requires_grad_(True), w.double().requires_grad_(True)
        exact = torch.autograd.grad(TF.prelu(x64, w64), (x64, w64), go.double())[1]
        torch.testing.assert_close(gw, exact.to(torch.bfloat16), rtol=1.6e-2, atol=1e-5)
        worst = max(worst, ((gw.double() - exact).abs() / exact.abs()).max().item())
    assert worst <= 2**-8  # within rounding to bfloat16 once
    assert not math.isnan(worst)
