"""The float32 tanh and tanhshrink read 32 polynomial pieces of width 2/7 over
|x| < 9.1 on the builds with FMA (see m::tanh_pw_f32 and m::tanhshrink_pw_f32);
the baseline build keeps the exponential forms. These tests aim at the seams:
every piece boundary, the cap where tanh rounds to 1, the subnormals, and
special values, on every instruction set."""
import math

import pytest
import torch

import torch_activations as ta
from torch_activations.accuracy import ulp_errors
from torch_activations.reference import reference

from test_gelu_pieces import neighbours

F32 = torch.float32
OPS = {"tanh": ta.functional.tanh, "tanhshrink": ta.functional.tanhshrink}
# The smallest float32 whose tanh rounds to 1: tanh x > 1 - 2^-25 from
# x = atanh(1 - 2^-25) = 13 ln 2 - 2^-27 + ... on.
_edge = 0.5 * math.log(2.0 ** 26 - 1)
_f = torch.tensor(_edge, dtype=torch.float64).to(F32)
SATURATES = (_f if _f.item() > _edge else _f.nextafter(torch.tensor(math.inf))).item()
# The bounds of the baseline build (exponential forms, no FMA) are
# tests/native/mathlib_accuracy.cpp's.
BASELINE = {"tanh": 1.0, "tanhshrink": 1.5}


@pytest.fixture(params=ta.supported_cpu_capabilities())
def isa(request):
    before = ta.cpu_capability()
    ta.set_cpu_capability(request.param)
    yield request.param
    ta.set_cpu_capability(before)


def seam_inputs():
    bounds = [k * 2 / 7 for k in range(1, 33)]
    x = torch.cat([
        neighbours(bounds, 8),
        neighbours([SATURATES, 9.1], 64),
        neighbours([1e-40, 1e-30, 2.0 ** -12, 1e-3, 0.5, 1.0, 3.0], 4),
        torch.linspace(-9.5, 9.5, 40001, dtype=F32),
    ])
    return x[torch.isfinite(x) & (x != 0)]


@pytest.mark.parametrize("name", list(OPS))
def test_float32_seams_within_bounds(name, isa):
    # Every float32 below 9.3 in magnitude (tanh) or 20 (tanhshrink) gives
    # at most 0.70 and 0.87 ulp from the tables: the bound of 1 leaves room
    # for the seams without hiding a worse piece.
    x = seam_inputs()
    exact, _ = reference(name, x)
    e = ulp_errors(OPS[name](x), exact, F32, x)
    assert e.special == 0
    assert e.max_ulp <= (BASELINE[name] if isa == "DEFAULT" else 1.0), (isa, e.max_ulp, e.worst_x)


def test_float32_saturates_exactly(isa):
    # Around SATURATES, up to 9.013, tanh lies within 2^-33 of 1 - 2^-25,
    # the midpoint between 1 and the float below it, closer than the table's
    # last rounding can tell: there the table may give either (half an ulp
    # either way; the seams test bounds the error). From 9.013 on it gives 1.
    edge = torch.linspace(SATURATES, 9.013, 2001).to(F32)
    edge = torch.cat([edge, -edge])
    y = ta.functional.tanh(edge).double()
    assert ((y.abs() == 1) | (y.abs() == 1 - 2.0 ** -24)).all()
    x = torch.cat([torch.linspace(9.013, 1e4, 4099), torch.tensor([9.1, 3e38, math.inf])]).to(F32)
    x = torch.cat([x, -x])
    assert torch.equal(ta.functional.tanh(x), x.sign())
    x = torch.cat([x, edge])
    # x - tanh(x) = x - 1 + (1 - tanh x), and 1 - tanh x < 3e-8 is far below
    # half an ulp of |x| - 1 >= 8.
    assert torch.equal(ta.functional.tanhshrink(x), x - x.sign())


def test_float32_small_and_special_values(isa):
    # tanh x = x (1 - x^2/3 + ...) rounds to x below 2^-12, subnormals included.
    tiny = torch.cat([torch.tensor([1e-45, 1e-40, 2.0 ** -126, 1e-30, 1e-10, 2.0 ** -12.5]), torch.rand(1000) * 2.0 ** -13])
    tiny = torch.cat([tiny, -tiny]).to(F32)
    assert torch.equal(ta.functional.tanh(tiny), tiny)
    x = torch.tensor([0.0, -0.0, math.inf, -math.inf, math.nan], dtype=F32)
    for f in OPS.values():
        y = f(x)
        assert y[0].item() == 0 and not y[0].signbit()
        assert y[1].item() == 0 and y[1].signbit()
        assert y[4].isnan()
    assert ta.functional.tanh(x)[2:4].tolist() == [1.0, -1.0]
    assert ta.functional.tanhshrink(x)[2:4].tolist() == [math.inf, -math.inf]
    # x - tanh x ~ x^3 / 3 passes into the subnormals and to zero with at
    # most one rounding there: within one subnormal spacing, sign kept.
    x = torch.cat([2.0 ** -torch.linspace(40, 60, 2001, dtype=torch.float64), torch.tensor([2.0 ** -126, 1e-45])]).to(F32)
    x = torch.cat([x, -x])
    e = ulp_errors(ta.functional.tanhshrink(x), x.double() ** 3 / 3, F32, x)
    assert e.special == 0 and e.max_ulp <= 1.0 and e.sub_max <= 1.0, e
    y = ta.functional.tanhshrink(x)
    assert torch.equal(y.signbit(), x.signbit())


@pytest.mark.parametrize("length", [16, 37, 1000])
def test_each_lane_depends_only_on_its_own_input(length):
    # Vectors that mix table lanes with capped ones (|x| >= 9.1, inf) and NaN
    # must give every element the bits it gets alone.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(length, generator=g) * 4
    special = torch.tensor([9.1, -9.5, 40.0, -math.inf, math.inf, math.nan, 0.0, -0.0, 1e-40])
    pick = torch.randint(0, special.numel(), (length,), generator=g)
    x = torch.where(torch.rand(length, generator=g) < 0.2, special[pick], x).to(F32)
    for f in OPS.values():
        y = f(x)
        for k in range(length):
            alone = f(x[k:k + 1])
            assert torch.equal(y[k:k + 1].view(torch.int32), alone.view(torch.int32)) or (
                y[k].isnan() and alone.isnan().all()), k
