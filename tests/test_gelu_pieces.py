"""The float32 GELU (both forms) and its derivative read 32 polynomial
pieces over |x| < 6 and fall back to the exponential forms at x <= -6 and NaN
(see m::gelu_pw_f32). These tests aim at the seams: every piece boundary, the ends
of the table, the root of the derivative, vectors that mix table lanes with
fallback lanes, and special values."""
import math

import pytest
import torch

import torch_activations as ta
from torch_activations.accuracy import GELU_ROOT, GELU_TANH_ROOT, ulp_errors
from torch_activations.reference import reference

F32 = torch.float32
ROOTS = {"none": GELU_ROOT, "tanh": GELU_TANH_ROOT}  # f'(x) = 0
FORMS = ["none", "tanh"]


def neighbours(points, k):
    """Every float32 within k steps of each point (both signs of the points)."""
    base = torch.tensor(points, dtype=F32)
    base = torch.cat([base, -base])
    bits = base.view(torch.int32).to(torch.int64)
    steps = torch.arange(-k, k + 1, dtype=torch.int64)
    # Stepping the bit pattern of a positive float moves away from zero by
    # one float; for a negative one, towards zero or away: both sides are
    # covered since both signs are in the list.
    return (bits[:, None] + steps[None, :]).flatten().to(torch.int32).view(F32)


def seam_inputs():
    # Piece i holds the z with floor(z (z + 4) / 2) = i.
    bounds = [-2 + math.sqrt(4 + 2 * i) for i in range(1, 33)]
    x = torch.cat([
        neighbours(bounds, 8),
        neighbours([6.0, 6.25], 64),
        neighbours([1e-30, 1e-6, 0.25, 1.0, 3.0], 4),
        torch.linspace(-6.5, 6.5, 20001, dtype=F32),
    ])
    return x[torch.isfinite(x) & (x != 0)]


def gelu(x, approximate):
    return ta.functional.gelu(x, approximate=approximate)


def gelu_grad(go, x, approximate):
    return torch.ops.torch_activations.gelu_backward(go, x, approximate=approximate)


@pytest.mark.parametrize("approximate", FORMS)
def test_gelu_float32_seams_within_bounds(approximate):
    x = seam_inputs()
    y = gelu(x, approximate)
    d = gelu_grad(torch.ones_like(x), x, approximate)
    f64, d64 = reference("gelu", x, approximate=approximate)
    # On a dense sweep over |x| < 6.5 the tables reach 1.14 ulp forward and
    # 1.25 for the derivative away from its root (tanh form: 1.56 and 1.35,
    # its pieces near |x| = 6 follow a steeper tail); the bounds leave room
    # for the seams without hiding a worse piece. At x <= -6 the exponential
    # forms keep ACCURACY.md's float32 bounds.
    table = x.abs() < 6
    far = (x.double() - ROOTS[approximate]).abs() > 0.05  # the root's own bound is per kappa
    # Past the table the tanh form's derivative keeps its documented 4.5.
    rest = 4.5 if approximate == "tanh" else 4.0
    for sel, bound in ((table, 2.0 if approximate == "tanh" else 1.5), (~table, rest)):
        e = ulp_errors(y[sel], f64[sel], F32, x[sel])
        assert e.special == 0
        assert e.max_ulp <= bound, (e.max_ulp, e.worst_x)
        ed = ulp_errors(d[sel & far], d64[sel & far], F32, x[sel & far])
        assert ed.special == 0
        assert ed.max_ulp <= bound, (ed.max_ulp, ed.worst_x)


@pytest.mark.parametrize("approximate", FORMS)
def test_gelu_float32_saturates_exactly_past_the_table(approximate):
    x = torch.cat([torch.linspace(6, 1e4, 4099), torch.tensor([3e38, math.inf])]).to(F32)
    assert torch.equal(gelu(x, approximate), x)
    d = gelu_grad(torch.ones_like(x), x, approximate)
    assert torch.equal(d, torch.ones_like(x))


@pytest.mark.parametrize("approximate", FORMS)
@pytest.mark.parametrize("length", [16, 37, 1000])
def test_each_lane_depends_only_on_its_own_input(length, approximate):
    # Vectors that mix table lanes with lanes taking the exponential form
    # (x <= -6, NaN, -inf) must give every element the bits it gets alone.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(length, generator=g) * 3
    far = torch.tensor([-6.0, -7.5, -13.0, -30.0, -math.inf, math.nan, 6.0, 40.0])
    pick = torch.randint(0, far.numel(), (length,), generator=g)
    mix = torch.rand(length, generator=g) < 0.2
    x = torch.where(mix, far[pick], x).to(F32)
    go = torch.randn(length, generator=g).to(F32)
    y = gelu(x, approximate)
    d = gelu_grad(go, x, approximate)
    for k in range(length):
        alone = gelu(x[k:k + 1], approximate)
        alone_d = gelu_grad(go[k:k + 1], x[k:k + 1], approximate)
        assert torch.equal(y[k:k + 1], alone) or (y[k].isnan() and alone.isnan().all()), k
        assert torch.equal(d[k:k + 1], alone_d) or (d[k].isnan() and alone_d.isnan().all()), k


@pytest.mark.parametrize("approximate", FORMS)
def test_special_values(approximate):
    x = torch.tensor([0.0, -0.0, math.inf, -math.inf, math.nan], dtype=F32)
    y = gelu(x, approximate)
    assert y[0].item() == 0 and not y[0].signbit()
    assert y[1].item() == 0 and y[1].signbit()
    assert y[2].item() == math.inf and y[3].item() == 0 and y[4].isnan()
    d = gelu_grad(torch.ones_like(x), x, approximate)
    assert d[0].item() == 0.5 and d[1].item() == 0.5
    assert d[2].item() == 1 and d[3].item() == 0 and d[4].isnan()


@pytest.mark.parametrize("approximate", FORMS)
def test_smallest_negative_subnormal_gives_minus_zero(each_isa, approximate):
    # x f(x) is just under half of it in magnitude and rounds to zero, which
    # keeps the sign of x (the vector code forms it as max(x, -0) - R). 33
    # elements so that the vector loops and the tail both see it.
    tiny = gelu(torch.full((33,), -(2.0 ** -149), dtype=F32), approximate)
    assert torch.all(tiny == 0) and torch.all(tiny.signbit())


def same_bits(a, b):
    return torch.equal(a.contiguous().view(torch.int32), b.contiguous().view(torch.int32))


def strided_copy(t):
    """t's values in a tensor whose elements are 2 apart: the CPU loops then
    take the per-vector path."""
    s = torch.empty(t.shape + (2,), dtype=t.dtype)[..., 0]
    s.copy_(t)
    return s


@pytest.mark.parametrize("approximate", FORMS)
def test_deferred_lanes_give_the_per_vector_bits(approximate):
    # Over contiguous float32 the CPU loops leave the x <= -6 and NaN lanes
    # to a second pass that gathers them into whole vectors (run_rare in
    # cpu/kernels_impl.h); strided data takes the per-vector branch. Both
    # must give the same bits, on every instruction set, on both sides of
    # every block boundary (64 vectors of 4, 8 or 16 lanes), with no rare
    # lanes, a few, and nothing else.
    g = torch.Generator().manual_seed(1)
    lengths = [1, 15, 16, 17, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 3000, 4113]
    before = ta.cpu_capability()
    try:
        for isa in ta.supported_cpu_capabilities():
            ta.set_cpu_capability(isa)
            for n in lengths:
                normal = torch.randn(n, generator=g) * 3
                far = -6 - torch.rand(n, generator=g) * 10
                for x in (normal.clamp(min=-5.9), normal, far):
                    x = x.clone()
                    x[::97] = math.nan
                    go = torch.randn(n, generator=g)
                    xs, gos = strided_copy(x), strided_copy(go)
                    y = gelu(x, approximate)
                    assert same_bits(y, gelu(xs, approximate)), (isa, n)
                    # Written over its input, in place or through out=.
                    z = x.clone()
                    torch.ops.torch_activations.gelu_(z, approximate=approximate)
                    assert same_bits(y, z), (isa, n)
                    z = x.clone()
                    torch.ops.torch_activations.gelu.out(z, approximate=approximate, out=z)
                    assert same_bits(y, z), (isa, n)
                    assert same_bits(gelu_grad(go, x, approximate), gelu_grad(gos, xs, approximate)), (isa, n)
                    # The gated units run the same activation code.
                    q = torch.randn(n, generator=g)
                    ours = [t.clone().requires_grad_() for t in (x, q)]
                    strided = [strided_copy(t).requires_grad_() for t in (x, q)]
                    y = ta.functional.geglu(*ours, approximate=approximate)
                    ys = ta.functional.geglu(*strided, approximate=approximate)
                    assert same_bits(y, ys), (isa, n)
                    gr = torch.autograd.grad(y, ours, go)
                    grs = torch.autograd.grad(ys, strided, go)
                    assert all(same_bits(a, b) for a, b in zip(gr, grs)), (isa, n)
    finally:
        ta.set_cpu_capability(before)
