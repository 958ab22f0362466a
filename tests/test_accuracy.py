"""ulp bounds of every smooth op, forward and d/dx, in every dtype, on a
smaller version of the sweep behind ACCURACY.md (``python -m torch_activations
check --accuracy``). The bounds are accuracy.SPEC (4 ulp) and the documented
exceptions in accuracy.EXCEPTIONS / ROW_BOUNDS, so a regression past any
published figure fails here."""
import math

import pytest
import torch

from torch_activations import accuracy as A

F32, F64, BF16, F16 = torch.float32, torch.float64, torch.bfloat16, torch.float16
TAGS = {F32: "float32", BF16: "bfloat16", F16: "float16", F64: "float64"}



def _params(dtypes):
    for dtype in dtypes:
        for op in A.OPS:
            yield pytest.param(op, dtype, id=f"{TAGS[dtype]}-{op.name}")


def _sweep(op, dtype):
    if dtype == F32:
        return A.f32_sweep(1 << 14, seed=1, droots=op.droots, window=1 << 9)
    return A.all_16bit(dtype)


@pytest.mark.parametrize("op, dtype", list(_params([F32, BF16, F16])))
def test_ulp_bounds(op, dtype):
    r = A.measure_lowp(op, _sweep(op, dtype), dtype)
    assert A.violations(op.name, r, dtype) == []


@pytest.mark.parametrize("op, dtype", list(_params([F64])))
def test_ulp_bounds_float64(op, dtype):
    r = A.measure_f64(op, 300, seed=1)
    assert A.violations(op.name, r, F64) == []


@pytest.mark.parametrize("dtype", [F32, F64, BF16], ids=["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_rows(name, dtype):
    # float64 against mpmath: 2 rows of each kind.
    r = A.measure_rows(name, dtype, rows=2 if dtype == F64 else 16)
    assert A.violations(name + " (rows)", r, dtype) == []


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
def test_rows_dominant_logits(dtype):
    """The rows include dominant maxima, where log(1 + E) of a rounded 1 + E
    (PyTorch's log_softmax) is millions of ulps from -log1p(E) at the
    maximum: the plain-ulp check of log_softmax's forward has teeth."""
    r = A.measure_rows("log_softmax", dtype, rows=1)
    assert r["fwd torch"].max_ulp > 1e6
    assert A.violations("log_softmax (rows)", {**r, "fwd ours": r["fwd torch"]}, dtype)


def test_sweep_finds_known_errors():
    """The sweep has teeth: PyTorch's silu (x * sigmoid(x), with sigmoid(x)
    subnormal far left) is far past the bound, and the float32 sweep covers
    every normal binade of both signs."""
    x = A.f32_sweep(1 << 14, seed=1)
    e = x.abs()[x != 0].log2().floor()
    assert set(range(-126, 128)) <= set(e.tolist())  # every normal binade
    assert bool((x > 0).any()) and bool((x < 0).any())
    silu = A.OPS_BY_NAME["silu"]
    r = A.measure_lowp(A.AccOp("silu", "silu", torch.nn.functional.silu, torch.nn.functional.silu), x, F32)
    assert r["fwd ours"].max_ulp > 1e6 and A.violations("silu", r, F32)
    assert silu.droots  # the op table's silu has its root window


def test_ulp_errors_units():
    one = torch.tensor([1.0], dtype=F64)
    up = torch.nextafter(torch.tensor([1.0], dtype=F32), torch.tensor([2.0], dtype=F32))
    assert A.ulp_errors(up, one, F32, one).max_ulp == 1.0
    # Just below a power of two the ulp is half as large.
    below = torch.nextafter(torch.tensor([1.0], dtype=F32), torch.tensor([0.0], dtype=F32))
    assert A.ulp_errors(torch.tensor([1.0], dtype=F32), below.to(F64), F32, one).max_ulp == 1.0
    assert A.ulp_errors(below, one, F32, one).max_ulp == 0.5
    # Subnormal exact values count in subnormal spacings, apart from the normal figure.
    tiny = torch.tensor([2.0 ** -140], dtype=F64)
    e = A.ulp_errors(torch.tensor([2.0 ** -140 + 2.0 ** -148], dtype=F32), tiny, F32, tiny)
    assert e.max_ulp == 0 and e.sub_max == 2.0
    # An overflowing exact value must come out as inf; a NaN for a finite one is an infinite error.
    big = torch.tensor([1e39], dtype=F64)
    assert A.ulp_errors(torch.tensor([math.inf], dtype=F32), big, F32, big).special == 0
    assert A.ulp_errors(torch.tensor([3e38], dtype=F32), big, F32, big).special == 1
    assert A.ulp_errors(torch.tensor([math.nan], dtype=F32), one, F32, one).max_ulp == math.inf


def _mp_points():
    x = A.f32_sweep(1 << 8, seed=2).to(F64)
    mid = torch.linspace(-20, 20, 401, dtype=F64)
    return torch.cat([x, mid])


# One op per reference function and parameters.
REF_OPS = list({(op.ref, tuple(sorted(op.params.items()))): op for op in A.OPS}.values())


@pytest.mark.parametrize("op", REF_OPS, ids=[op.ref + "".join(f"-{k}={v:g}" for k, v in op.params.items())
                                             for op in REF_OPS])
def test_float64_references_against_mpmath(op):
    """The float64 references that judge float32 / bfloat16 / float16 are
    accurate to 2^-40 relative wherever the float32 result is normal, away
    from the windows around roots of f' where mpmath replaces them."""
    mp = A._mp()
    fn = A._mp_funcs()[op.ref]
    key = op.ref
    x = _mp_points()
    f, d = A._ref64(op, x)
    worst = 0.0
    for xv, fv, dv in zip(x.tolist(), f.tolist(), d.tolist()):
        ef, ed = fn(mp.mpf(xv), **op.params)
        for got, ex, is_d in ((fv, ef, False), (dv, ed, True)):
            if abs(ex) < 2.0 ** -126 or abs(ex) > 3.4e38:
                continue
            if is_d and any(abs(xv - r) < 2e-3 for r in op.droots):
                continue
            worst = max(worst, float(abs((mp.mpf(got) - ex) / ex)))
    assert worst <= 2.0 ** -40, (key, worst)


def test_documented_bounds_have_reasons():
    for (op, kind), (b, why) in list(A.EXCEPTIONS.items()) + list(A.ROW_BOUNDS.items()):
        assert b > A.SPEC or kind.endswith("kappa") or op.endswith("(rows)"), (op, kind)
        assert len(why) > 20, (op, kind)
