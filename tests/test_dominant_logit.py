"""Rows with a dominant logit: the sum of exponentials is the maximum's 1 plus
a tiny E, log_softmax at the maximum is -log1p(E) and the cross entropy of a
confident correct prediction is log1p(E). Both must be accurate relative to
their own size, in float32 and float64, on every layout (row, column and
gather paths of the row kernels), against mpmath, in ulps of the result
(torch_activations.accuracy.ulp_errors) within accuracy.SPEC."""
import pytest
import torch
import torch.nn.functional as TF

from torch_activations import accuracy as A
from torch_activations import functional as F

F32, F64, F16 = torch.float32, torch.float64, torch.float16
# Gaps above the other logits: E ~ n e^-gap from near an ulp of 1 down to a
# subnormal result (95 in float32, 720 in float64).
GAPS = {F32: (8.0, 20.0, 40.0, 95.0), F64: (20.0, 40.0, 300.0, 720.0), F16: (5.0, 9.0)}
# 37 and 1000 are multiples of no vector width; 1000 spans several blocks of
# the online reduction, so the maximum is often found after the first one.
LENGTHS = (1, 2, 7, 37, 1000)


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def dominant(dtype, n, gap, ties, rows=4, seed=0):
    """`rows` rows of normal logits with `ties` entries `gap` above the rest,
    the first row's at the start, the second's at the end, the others' at
    random places."""
    g = torch.Generator().manual_seed(seed + n + int(gap) + 100 * ties)
    x = torch.randn(rows, n, generator=g, dtype=F64)
    top = x.max(-1, keepdim=True).values + gap
    for r in range(rows):
        if r == 0:
            where = torch.arange(ties)
        elif r == 1:
            where = torch.arange(n - ties, n)
        else:
            where = torch.randperm(n, generator=g)[:ties]
        x[r, where] = top[r]
    return x.to(dtype)


def cases(dtype):
    for n in LENGTHS:
        for gap in GAPS[dtype]:
            for ties in (1, 2, 3):
                if ties <= n:
                    yield n, gap, ties


def layouts(x):
    """(name, tensor with the same values, dim): the row path, the column
    path (rows adjacent in memory) and the gather path (neither)."""
    yield "row", x, 1
    yield "column", x.t().contiguous(), 0
    wide = torch.zeros(x.shape[0] * 2, x.shape[1] * 3, dtype=x.dtype)
    wide[::2, ::3] = x
    yield "gather", wide[::2, ::3], 1


def exact_log_softmax(x):
    return A._mp_rowwise(A._mp_log_softmax, x.to(F64))


def check(got, exact, lo, dtype, x, what, n=None):
    e = A.ulp_errors(got, exact, dtype, x, lo=lo)
    assert e.special == 0, what
    assert e.max_ulp <= A.SPEC, f"{what}: {e.max_ulp:.3g} ulp at x = {e.worst_x!r}"
    # Where E is subnormal (the largest gaps) so are its terms e^(x - max),
    # each rounded to half a subnormal spacing: the result is within that
    # per term, plus its own rounding.
    terms = (n or x.shape[-1]) - 1
    assert e.sub_max <= 0.5 * terms + 0.5, f"{what}: {e.sub_max:.3g} subnormal spacings"
    return e


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
def test_log_softmax_dominant_rows(dtype):
    subnormal = 0
    for n, gap, ties in cases(dtype):
        x = dominant(dtype, n, gap, ties)
        exact, lo = exact_log_softmax(x)
        for name, xl, dim in layouts(x):
            y = F.log_softmax(xl, dim)
            if dim == 0:
                y = y.t()
            e = check(y, exact, lo, dtype, x, f"n={n} gap={gap} ties={ties} {name}")
            subnormal += e.sub_max > 0 or bool((exact.abs() < torch.finfo(dtype).tiny).any())
    assert subnormal  # the largest gap reaches the subnormal range


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
def test_pytorch_log_softmax_fails_the_same_check(dtype):
    """The check has teeth: log(1 + E) of a rounded 1 + E is far from
    -log1p(E) at the maximum."""
    x = dominant(dtype, 37, GAPS[dtype][1], 1)
    exact, lo = exact_log_softmax(x)
    assert A.ulp_errors(TF.log_softmax(x, 1), exact, dtype, x, lo=lo).max_ulp > 1e6


def test_log_softmax_dtype_argument():
    """dtype= casts first: float32 logits computed in float64 are judged in
    float64 ulps, float16 logits computed into float32 in float32 ulps."""
    for src, dst in ((F32, F64), (F16, F32)):
        for n, gap, ties in cases(src):
            x = dominant(src, n, gap, ties)
            exact, lo = exact_log_softmax(x)
            for name, xl, dim in layouts(x):
                y = F.log_softmax(xl, dim, dtype=dst)
                assert y.dtype == dst
                check(y.t() if dim == 0 else y, exact, lo, dst, x, f"{src}->{dst} n={n} gap={gap} {name}")


@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
def test_softmax_and_softmin_dominant_rows(dtype):
    """softmax at the dominant entry is 1 / (1 + E), the others e^(x - max) /
    (1 + E); softmin the same of -x."""
    for n, gap, ties in cases(dtype):
        x = dominant(dtype, n, gap, ties)
        exact, lo = A._mp_rowwise(A._mp_softmax, x.to(F64))
        for name, xl, dim in layouts(x):
            for fn, arg in ((F.softmax, xl), (F.softmin, -xl)):
                y = fn(arg, dim)
                check(y.t() if dim == 0 else y, exact, lo, dtype, x, f"{fn.__name__} n={n} gap={gap} {name}")


def ce_layouts(x, t):
    """(name, logits, targets) with row i of x as sample i: (N, C) on the row
    path, (N, C) with samples adjacent and (1, C, N) on the column path, and
    strided classes on the gather path. The logits are computed from x, so
    that gradients come back to x."""
    yield "row", x, t
    yield "column", x.t().contiguous().t(), t
    yield "3d", x.t().contiguous()[None], t[None]
    wide = torch.zeros(x.shape[0], x.shape[1] * 2, dtype=x.dtype)
    wide[:, ::2] = x
    yield "gather", wide[:, ::2], t


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])
def test_cross_entropy_of_a_confident_prediction(dtype, weighted):
    """Target = the (first) maximum: the loss is w_t log1p(E) and its gradient
    at the target w_t (p_t - 1) = -w_t E / (1 + E), both tiny and relatively
    accurate (E the sum of e^(x - max) less the target's own 1); the loss
    too with the target given as one-hot probabilities."""
    g = torch.Generator().manual_seed(3)
    mp = A._mp()
    for n, gap, ties in cases(dtype):
        if n == 1:
            continue  # the loss is exactly 0
        x = dominant(dtype, n, gap, ties)
        t = x.argmax(1)
        w = (torch.rand(n, generator=g, dtype=F64) + 0.5).to(dtype) if weighted else None
        wt = w.to(F64)[t] if weighted else torch.ones(x.shape[0], dtype=F64)
        loss_mp, grad_mp = [], []
        for row, ti, wi in zip(x.to(F64).tolist(), t.tolist(), wt.tolist()):
            r = [mp.mpf(v) for v in row]
            e = mp.fsum(mp.exp(v - r[ti]) for j, v in enumerate(r) if j != ti)
            loss_mp.append(wi * mp.log1p(e))
            grad_mp.append(-wi * e / (1 + e))

        def hilo(vals):
            hi = [float(v) for v in vals]
            return torch.tensor(hi, dtype=F64), torch.tensor([float(v - h) for v, h in zip(vals, hi)], dtype=F64)

        (lhi, llo), (ghi, glo) = hilo(loss_mp), hilo(grad_mp)
        for name, xl, tl in ce_layouts(x.clone().requires_grad_(True), t):
            what = f"n={n} gap={gap} ties={ties} {name}"
            loss = F.cross_entropy(xl, tl, weight=w, reduction="none")
            check(loss.detach().reshape(-1), lhi, llo, dtype, x[:, 0], what, n=n)
            (gx,) = torch.autograd.grad(loss.sum(), xl)
            gx = gx.reshape(x.shape[1], -1).t() if name == "3d" else gx
            check(gx.gather(1, t[:, None]).flatten(), ghi, glo, dtype, x[:, 0], what + " grad", n=n)
        # The same target as probabilities (one-hot, in the logits' layout):
        # the loss sum(q) L - sum q (x - max), whose second sum is 0.
        onehot = torch.nn.functional.one_hot(t, n).to(dtype)
        wide = torch.zeros(x.shape[0], 2 * n, dtype=dtype)
        wide[:, ::2] = x
        for name, xl, tl in (("row", x, onehot), ("column", x.t().contiguous().t(), onehot.t().contiguous().t()),
                             ("gather", wide[:, ::2], onehot)):
            loss = F.cross_entropy(xl, tl, weight=w, reduction="none")
            check(loss, lhi, llo, dtype, x[:, 0], f"n={n} gap={gap} ties={ties} {name} probabilities", n=n)


def test_rows_spanning_several_blocks():
    """Rows of 70001 elements take several blocks of the online reduction on
    the row path too: the dominant logit at the start, at the end, and a
    rising row whose maximum keeps moving to later blocks."""
    n = 70001
    x = dominant(F32, n, GAPS[F32][1], 1, rows=3)
    x[2] = torch.linspace(-30, 10, n, dtype=F64).to(F32)
    exact, lo = exact_log_softmax(x)
    check(F.log_softmax(x, 1), exact, lo, F32, x, "log_softmax")
    t = x.argmax(1)
    loss = F.cross_entropy(x, t, reduction="none")
    check(loss, -exact.gather(1, t[:, None]).flatten(), -lo.gather(1, t[:, None]).flatten(), F32, x[:, 0],
          "cross_entropy", n=n)


def test_short_rows_sum_as_accurately_as_long_ones():
    """Rows of up to 256 elements run one row per lane, each lane summing a
    whole row alone. Where one logit dominates, E is the sum of the terms'
    exact rounding errors; summed plainly, they drifted by 2.5 ulps of
    log_softmax at the maximum over rows of 256 (3.7 over rows of 37 in one
    block), against about 1 on the row path. Four at a time with their own
    errors kept, the short rows stay as close as the long ones (float64
    reference, as in ACCURACY.md)."""
    g = torch.Generator().manual_seed(3)
    for n in (37, 200, 256, 1000):
        for gap in (15.0, 30.0):
            x = torch.randn(512, n, generator=g, dtype=F64)
            x[:, :1] = x.max(-1, keepdim=True).values + gap
            x = x.gather(-1, torch.argsort(torch.rand(512, n, generator=g), -1)).to(F32)
            e = A.ulp_errors(F.log_softmax(x, 1), A._log_softmax64(x.to(F64)), F32, x)
            assert e.max_ulp <= 2.0, f"n={n} gap={gap}: {e.max_ulp:.3g} ulp at x = {e.worst_x!r}"
