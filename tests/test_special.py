"""PReLU, learnable Swish and RReLU: the activations with a tensor parameter
or random slopes."""
import pytest
import torch
import torch.nn.functional as TF
from torch.autograd import gradcheck, gradgradcheck

import torch_activations as ta
from torch_activations import functional as F


def prelu_inputs(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, 6, generator=g, dtype=torch.float64).to(dtype)
    yield "shared", x, torch.tensor([0.25], dtype=dtype)
    yield "per_channel", x, torch.rand(4, generator=g, dtype=torch.float64).to(dtype)
    yield "channels_last", x.contiguous(memory_format=torch.channels_last), torch.rand(4, dtype=torch.float64).to(dtype)
    yield "transposed", x.transpose(2, 3), torch.rand(4, dtype=torch.float64).to(dtype)
    yield "scalar_weight", x, torch.tensor(0.1, dtype=dtype)
    yield "1d_input", torch.randn(7, dtype=dtype), torch.tensor([0.3], dtype=dtype)
    yield "2d_input", torch.randn(5, 4, dtype=dtype), torch.rand(4, dtype=dtype)
    yield "strided_weight", x, torch.rand(8, dtype=torch.float64).to(dtype)[::2]
    yield "long_rows", torch.randn(3, 4, 50, dtype=dtype), torch.rand(4, dtype=dtype)
    yield "sliced_input", x[:, :, ::2], torch.rand(4, dtype=torch.float64).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_prelu_matches_pytorch(dtype):
    for name, x, w in prelu_inputs(dtype):
        xa, wa = x.detach().requires_grad_(True), w.detach().clone().requires_grad_(True)
        xb, wb = x.detach().requires_grad_(True), w.detach().clone().requires_grad_(True)
        ya, yb = F.prelu(xa, wa), TF.prelu(xb, wb)
        torch.testing.assert_close(ya, yb, msg=name)
        go = torch.randn(ya.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)
        ga = torch.autograd.grad(ya, (xa, wa), go)
        gb = torch.autograd.grad(yb, (xb, wb), go)
        torch.testing.assert_close(ga[0], gb[0], msg=name)
        if dtype == torch.bfloat16:
            # The weight gradient is a sum over every element of its channel:
            # against the built-in in float64, rounded once (the built-in's
            # own bfloat16 sum of rounded terms drifts).
            x64, w64 = x.detach().double().requires_grad_(True), w.detach().double().requires_grad_(True)
            gb = [t.to(dtype) for t in torch.autograd.grad(TF.prelu(x64, w64), (x64, w64), go.double())]
        torch.testing.assert_close(ga[1], gb[1], msg=name)
        assert ga[1].shape == w.shape


# Layouts that take each path of the weight-gradient sum and of the loop:
# rows of C (inner 1), channels-last, short and long runs per channel, runs
# longer than a block, a shared parameter over several blocks, and an input
# that is not dense (TensorIterator's loop).
SUM_CASES = {
    "rows": lambda g: (torch.randn(5000, 64, generator=g, dtype=torch.float64), 64),
    "channels_last": lambda g: (torch.randn(9, 6, 7, 5, generator=g, dtype=torch.float64)
                                .contiguous(memory_format=torch.channels_last), 6),
    "short_runs": lambda g: (torch.randn(400, 6, 5, generator=g, dtype=torch.float64), 6),
    "long_runs": lambda g: (torch.randn(7, 3, 33, 50, generator=g, dtype=torch.float64), 3),
    "runs_over_a_block": lambda g: (torch.randn(2, 3, 40000, generator=g, dtype=torch.float64), 3),
    "shared": lambda g: (torch.randn(3, 70001, generator=g, dtype=torch.float64), 1),
    "not_dense": lambda g: (torch.randn(300, 5, 40, generator=g, dtype=torch.float64)[:, :, ::3], 5),
}


@pytest.mark.parametrize("case", list(SUM_CASES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_prelu_weight_gradient_is_the_compensated_sum_for_any_threads_and_isa(case, dtype):
    """The weight gradient sums x * g over a channel. With g centred per
    channel the sum cancels by orders of magnitude, where a plain double sum
    loses digits; ours is within a few ulp of the exact sum of the same
    terms (math.fsum), and bitwise the same for any thread count and any
    instruction set."""
    import math
    g = torch.Generator().manual_seed(0)
    x, c = SUM_CASES[case](g)
    x = x.to(dtype)
    # g with its component along x (over x <= 0, per channel) all but
    # 1e-4 removed: the terms' sum is about 1e-4 of their sizes.
    go = torch.randn(x.shape, generator=g, dtype=torch.float64)
    dims = [0] + list(range(2, x.dim())) if c > 1 else list(range(x.dim()))
    xn = torch.where(x > 0, 0, x.double())
    alpha = (xn * go).sum(dims, keepdim=True) / (xn * xn).sum(dims, keepdim=True)
    go = (go - (1 - 1e-4) * alpha * xn).to(dtype)
    w = torch.rand(c, generator=g, dtype=torch.float64).to(dtype)
    terms = torch.where(x > 0, 0, x * go).double()  # rounded as the kernel rounds them
    per_channel = terms.movedim(1, 0).reshape(c, -1) if c > 1 else terms.reshape(1, -1)
    exact = torch.tensor([math.fsum(r.tolist()) for r in per_channel], dtype=torch.float64)
    spread = per_channel.abs().sum(1) / exact.abs()
    assert spread.min() > 1000, "the case must cancel"

    def weight_grad():
        xa, wa = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
        return torch.autograd.grad(F.prelu(xa, wa), wa, go)[0]

    threads, isa = torch.get_num_threads(), ta.cpu_capability()
    try:
        results = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(weight_grad())
        torch.set_num_threads(threads)
        for name in ta.supported_cpu_capabilities():
            ta.set_cpu_capability(name)
            results.append(weight_grad())
    finally:
        torch.set_num_threads(threads)
        ta.set_cpu_capability(isa)
    for r in results[1:]:
        assert torch.equal(r, results[0])
    got = results[0].double()
    if dtype == torch.float64:
        assert ((got - exact).abs() <= 4 * 2.0**-53 * exact.abs()).all(), (got - exact) / exact
    else:
        # The float32 terms are exact in float64: one rounding at the end.
        assert torch.equal(results[0], exact.to(dtype))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32], ids=str)
@pytest.mark.parametrize("op", ["prelu", "swish"])
def test_parametric_loops_agree_bitwise_across_layouts(dtype, op):
    """A dense input takes the tiled loop (low precision read directly, the
    per-element parameter gradient stored in float); the same values in a
    non-dense view take TensorIterator's loop on widened copies. Values,
    gradients and second derivatives are the same bits."""
    fn = F.prelu if op == "prelu" else (lambda x, w: F.swish(x, w))
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(64, 6, 5, generator=g) * 3).to(dtype)
    w = torch.rand(6, generator=g).to(dtype)
    go = torch.randn(x.shape, generator=g).to(dtype)
    ggx = torch.randn(x.shape, generator=g).to(dtype)
    ggw = torch.randn(w.shape, generator=g).to(dtype)
    sparse = torch.zeros(64, 6, 10, dtype=dtype)[..., ::2]
    results = []
    for xx in (x, sparse.copy_(x)):
        xa, wa = xx.clone() if xx.is_contiguous() else xx, w.clone()
        xa.requires_grad_(True)
        wa.requires_grad_(True)
        y = fn(xa, wa)
        gx, gw = torch.autograd.grad(y, (xa, wa), go, create_graph=True)
        second = torch.autograd.grad((gx * ggx).sum() + (gw * ggw).sum(), (xa, wa))
        results.append([t.detach().contiguous() for t in (y, gx, gw) + second])
    for a, b in zip(*results):
        assert torch.equal(a, b)


@pytest.mark.parametrize("shape", [(0, 3), (2, 3, 0), (0,), (2, 0, 4)], ids=str)
def test_prelu_of_empty_input(shape):
    """No elements: empty outputs and a zero weight gradient, as PyTorch."""
    x = torch.randn(shape, requires_grad=True)
    c = shape[1] if len(shape) > 1 and shape[1] > 0 else 1
    w = torch.rand(c, requires_grad=True)
    y = F.prelu(x, w)
    gx, gw = torch.autograd.grad(y, (x, w), torch.ones_like(y), create_graph=True)
    assert y.shape == x.shape and gx.shape == x.shape and torch.equal(gw, torch.zeros_like(w))
    (gg,) = torch.autograd.grad(gw.sum(), w, allow_unused=True, materialize_grads=True)
    assert torch.equal(gg, torch.zeros_like(w))


def test_prelu_gradcheck_and_gradgradcheck():
    for name, x, w in prelu_inputs():
        x = x.detach().clone()
        x[x.abs() < 1e-2] = 0.5  # away from the kink
        x.requires_grad_(True)
        w = w.detach().clone().requires_grad_(True)
        assert gradcheck(F.prelu, (x, w)), name
        assert gradgradcheck(F.prelu, (x, w)), name


def test_prelu_errors_like_pytorch():
    x = torch.randn(2, 3, 4)
    with pytest.raises(RuntimeError, match="Mismatch of parameter numbers and input channel size"):
        F.prelu(x, torch.rand(4))
    with pytest.raises(RuntimeError, match="scalar or 1D tensor"):
        F.prelu(x, torch.rand(1, 3))
    with pytest.raises(RuntimeError, match="Type promoting not supported"):
        F.prelu(x, torch.rand(3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="torch_activations::prelu.*floating point"):
        F.prelu(x.long(), torch.rand(3))


def test_prelu_module_is_a_drop_in():
    torch.manual_seed(0)
    ref = torch.nn.PReLU(4, init=0.1)
    ours = ta.nn.PReLU(4, init=0.1)
    assert repr(ours) == repr(ref)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(ours(x), ref(x))
    ref.load_state_dict(ours.state_dict())


# ----------------------------------------------------------------- swish ---
@pytest.mark.parametrize("beta_shape", [(1,), (4,), ()], ids=["shared", "per_channel", "scalar"])
def test_learnable_swish_equals_composition(beta_shape):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    beta = (torch.rand(beta_shape, generator=g, dtype=torch.float64) + 0.5)
    xa, ba = x.clone().requires_grad_(True), beta.clone().requires_grad_(True)
    xb, bb = x.clone().requires_grad_(True), beta.clone().requires_grad_(True)
    ya = F.swish(xa, ba)
    bview = bb.reshape(1, -1, 1) if bb.numel() > 1 else bb
    yb = xb * torch.sigmoid(bview * xb)
    torch.testing.assert_close(ya, yb)
    go = torch.randn_like(ya)
    torch.testing.assert_close(torch.autograd.grad(ya, (xa, ba), go), torch.autograd.grad(yb, (xb, bb), go))
    assert gradcheck(F.swish, (xa, ba))
    assert gradgradcheck(F.swish, (xa, ba))


def test_swish_module_fixed_and_learnable():
    fixed = ta.nn.Swish(1.5)
    x = torch.randn(4, 3)
    torch.testing.assert_close(fixed(x), x * torch.sigmoid(1.5 * x))
    assert list(fixed.state_dict()) == []
    learn = ta.nn.Swish(1.5, learnable=True, num_parameters=3)
    assert list(learn.state_dict()) == ["beta"]
    y = learn(x)
    y.sum().backward()
    assert learn.beta.grad is not None and learn.beta.grad.shape == (3,)
    assert repr(learn) == "Swish(num_parameters=3, learnable=True)"
    assert torch.equal(ta.nn.Swish()(x), ta.functional.silu(x))
    with pytest.raises(ValueError):
        ta.nn.Swish(learnable=True, inplace=True)


# ----------------------------------------------------------------- rrelu ---
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "transposed"])
def test_rrelu_training_reproduces_pytorch_draws(dtype, layout):
    x = torch.randn(2, 3, 4, 5).to(dtype)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "transposed":
        x = x.transpose(1, 3)
    torch.manual_seed(7)
    expect = TF.rrelu(x, 0.1, 0.4, training=True)
    torch.manual_seed(7)
    got = F.rrelu(x, 0.1, 0.4, training=True)
    assert torch.equal(got, expect)
    assert got.stride() == expect.stride()


def test_rrelu_generator_argument_and_gradient():
    x = torch.randn(50, requires_grad=True)
    y = ta.ops.rrelu(x, 0.2, 0.3, True, torch.Generator().manual_seed(3))
    y.sum().backward()
    out, noise = ta.ops.rrelu_with_noise(x.detach(), 0.2, 0.3, True, torch.Generator().manual_seed(3))
    assert torch.equal(out, y.detach())
    assert torch.equal(x.grad, noise)
    neg = x.detach() <= 0
    assert ((noise[neg] >= 0.2) & (noise[neg] <= 0.3)).all() and (noise[~neg] == 1).all()
    # The variant that exposes the noise is internal and not differentiable.
    with pytest.raises(RuntimeError, match="rrelu_with_noise is not implemented"):
        ta.ops.rrelu_with_noise(x, 0.2, 0.3, True)[0].sum().backward()


def test_rrelu_eval_is_leaky_relu_with_mean_slope():
    x = torch.randn(20, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(F.rrelu(x, 0.1, 0.3), TF.leaky_relu(x, 0.2))
    xg = x.detach().clone()
    xg[xg.abs() < 1e-2] = 0.5
    xg.requires_grad_(True)
    assert gradcheck(lambda t: F.rrelu(t, 0.1, 0.3), (xg,))
    assert gradgradcheck(lambda t: F.rrelu(t, 0.1, 0.3), (xg,))


def test_rrelu_inplace_and_module():
    torch.manual_seed(5)
    a = torch.randn(30)
    b = a.clone()
    torch.manual_seed(9)
    TF.rrelu(a, training=True, inplace=True)
    torch.manual_seed(9)
    out = F.rrelu(b, training=True, inplace=True)
    assert out is b and torch.equal(a, b)
    m = ta.nn.RReLU(0.1, 0.3)
    assert repr(m) == repr(torch.nn.RReLU(0.1, 0.3))
    x = torch.randn(10, requires_grad=True) * 1
    m.train()
    torch.manual_seed(1)
    y = m(x)
    torch.manual_seed(1)
    torch.testing.assert_close(y, torch.nn.RReLU(0.1, 0.3)(x))
    with pytest.raises(RuntimeError, match="Lower bound should be less than or equal to the upper bound"):
        F.rrelu(x, 0.5, 0.1, training=True)
