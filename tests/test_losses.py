"""cross_entropy and binary_cross_entropy_with_logits against PyTorch:
values and gradients (input and, where PyTorch has one, target) for class
indices and probabilities, every reduction, weights, label smoothing,
ignore_index (including batches where every target is ignored), dtypes and
layouts; large logits; gradcheck / gradgradcheck; what is saved; errors;
modules."""
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
REDUCTIONS = ["none", "mean", "sum"]


@pytest.fixture(autouse=True)
def one_thread():
    """PyTorch's reference losses open a parallel region even for a few
    elements, which costs milliseconds per call on a busy machine; these tests
    use small inputs. (Thread-count independence of our kernels is tested in
    test_nonpointwise_integration.py.)"""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def reference(fn, x, target, go, target_grad, **kw):
    """PyTorch's loss and gradients; low precision: evaluated in float64 from
    the same inputs and rounded once."""
    dtype = x.dtype
    up = (lambda t: t.double()) if dtype in LOWP else (lambda t: t.clone())
    xr = up(x.detach()).requires_grad_(True)
    tr = up(target.detach()).requires_grad_(target_grad) if target.is_floating_point() else target
    kw = {k: (up(v) if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
    y = fn(xr, tr, **kw)
    ins = (xr, tr) if target_grad else (xr,)
    grads = torch.autograd.grad(y, ins, go.to(y.dtype)) if y.requires_grad else [torch.zeros_like(t) for t in ins]
    return y.detach().to(dtype), [g.to(dtype) for g in grads]


def ours_and_grads(fn, x, target, go, target_grad, **kw):
    xa = (x.detach().clone() if x.is_contiguous() else x.detach()).requires_grad_(True)
    ta_ = target.detach().requires_grad_(target_grad) if target.is_floating_point() else target
    y = fn(xa, ta_, **kw)
    ins = (xa, ta_) if target_grad else (xa,)
    grads = torch.autograd.grad(y, ins, go) if y.requires_grad else [torch.zeros_like(t) for t in ins]
    return y.detach(), list(grads)


# ------------------------------------------------------------ cross entropy ---
def ce_inputs(dtype, seed=0):
    """(name, logits, class dim)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: (torch.randn(*s, generator=g, dtype=torch.float64) * 3).to(dtype)  # noqa: E731
    yield "2d", r(6, 11), 1
    yield "2d_long_rows", r(3, 1030), 1
    yield "2d_transposed", r(11, 6).t(), 1
    yield "2d_sliced_classes", r(6, 22)[:, ::2], 1
    yield "4d", r(2, 5, 3, 4), 1
    yield "4d_channels_last", r(2, 5, 3, 4).contiguous(memory_format=torch.channels_last), 1
    yield "3d_long_inner", r(2, 4, 37), 1
    yield "2d_expanded_classes", r(6, 1).expand(6, 11), 1
    yield "4d_expanded_rows", r(1, 5, 1, 4).expand(2, 5, 3, 4), 1
    yield "1d", r(7), 0
    yield "empty_batch", r(0, 5), 1


def ce_targets(x, cd, kind, g):
    rows = x.shape[:cd] + x.shape[cd + 1:]
    c = x.shape[cd]
    if kind == "prob":
        return torch.softmax(torch.randn(x.shape, generator=g, dtype=torch.float64), cd).to(x.dtype)
    t = torch.randint(0, c, rows, generator=g)
    if kind == "ignored" and t.numel():
        t.view(-1)[::3] = -100
    return t


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", ["index", "ignored", "prob"])
def test_cross_entropy_matches_pytorch(kind, dtype):
    g = torch.Generator().manual_seed(1)
    for name, x, cd in ce_inputs(dtype):
        t = ce_targets(x, cd, kind, g)
        c = x.shape[cd]
        w = (torch.rand(c, generator=g, dtype=torch.float64) + 0.5).to(dtype)
        for weight in (None, w):
            for red in REDUCTIONS:
                for ls in (0.0, 0.15):
                    kw = dict(weight=weight, reduction=red, label_smoothing=ls)
                    rows = x.shape[:cd] + x.shape[cd + 1:]
                    go_shape = rows if red == "none" else ()
                    go = torch.randn(go_shape, generator=g, dtype=torch.float64).to(dtype)
                    tg = kind == "prob"
                    y, grads = ours_and_grads(F.cross_entropy, x, t, go, tg, **kw)
                    ry, rgrads = reference(TF.cross_entropy, x, t, go, tg, **kw)
                    what = f"{name} weight={weight is not None} {red} ls={ls}"
                    assert y.shape == ry.shape and y.dtype == ry.dtype, what
                    torch.testing.assert_close(y, ry, equal_nan=True, msg=lambda m: f"{what} loss: {m}")
                    for a, b, which in zip(grads, rgrads, ("input", "target")):
                        torch.testing.assert_close(a, b, msg=lambda m: f"{what} grad {which}: {m}")


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_cross_entropy_every_target_ignored(ls, weighted):
    """PyTorch: the mean is 0/0 = nan, the gradient 0; sum 0; none zeros."""
    x = torch.randn(4, 5, 3, requires_grad=True)
    t = torch.full((4, 3), 7)
    w = torch.rand(5) if weighted else None
    for red in REDUCTIONS:
        kw = dict(weight=w, ignore_index=7, reduction=red, label_smoothing=ls)
        a, b = F.cross_entropy(x, t, **kw), TF.cross_entropy(x, t, **kw)
        torch.testing.assert_close(a, b, equal_nan=True)
        if red == "mean":
            assert a.isnan()
        (ga,) = torch.autograd.grad(a.sum(), x)
        (gb,) = torch.autograd.grad(b.sum(), x)
        torch.testing.assert_close(ga, gb)
        assert not ga.any()


def test_cross_entropy_large_logits_are_stable():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, 300, generator=g) * 1e4
    x[0] = 1e4
    x[1, :5] = -1e4
    x[2, 7] = float("-inf")
    t = torch.randint(0, 300, (8,), generator=g)
    p = torch.softmax(torch.randn(8, 300, generator=g), 1)
    for target in (t, p):
        for ls in (0.0, 0.1):
            y, (gx,) = ours_and_grads(F.cross_entropy, x, target, torch.tensor(1.0), False, label_smoothing=ls,
                                      reduction="sum")
            ry, (rgx,) = reference(TF.cross_entropy, x, target, torch.tensor(1.0), False, label_smoothing=ls,
                                   reduction="sum")
            if target is t or ls == 0.0:
                assert torch.isfinite(y) or not torch.isfinite(ry)
            torch.testing.assert_close(y, ry, equal_nan=True)
            torch.testing.assert_close(gx, rgx, equal_nan=True)
            assert torch.isfinite(gx).all()


def test_cross_entropy_gradcheck_and_gradgradcheck():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    x4 = torch.randn(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(5, generator=g, dtype=torch.float64) + 0.5
    t = torch.tensor([1, -100, 4, 0])
    p = torch.softmax(torch.randn(4, 5, generator=g, dtype=torch.float64), 1).requires_grad_(True)
    p4 = torch.softmax(torch.randn(2, 5, 3, generator=g, dtype=torch.float64), 1).requires_grad_(True)
    for red in REDUCTIONS:
        for ls, weight in ((0.0, None), (0.3, w)):
            kw = dict(weight=weight, reduction=red, label_smoothing=ls)
            f_idx = lambda a: F.cross_entropy(a, t, **kw)  # noqa: E731
            f_prob = lambda a, b: F.cross_entropy(a, b, **kw)  # noqa: E731
            for fn, ins in ((f_idx, (x,)), (f_prob, (x, p)), (f_prob, (x4, p4))):
                assert gradcheck(fn, ins, nondet_tol=0.0)
                assert gradgradcheck(fn, ins, nondet_tol=0.0)


def test_cross_entropy_saves_no_probabilities():
    x = torch.randn(64, 1000, requires_grad=True)
    t = torch.randint(0, 1000, (64,))
    for target in (t, torch.softmax(torch.randn(64, 1000), 1)):
        packed = []
        with torch.autograd.graph.saved_tensors_hooks(lambda s: packed.append(s) or s, lambda s: s):
            F.cross_entropy(x, target)
        ptrs = {s.data_ptr() for s in packed}
        assert x.data_ptr() in ptrs and target.data_ptr() in ptrs
        extra = [s for s in packed if s.data_ptr() not in (x.data_ptr(), target.data_ptr())]
        # Two statistics per row, nothing of the logits' size.
        assert sum(s.numel() for s in extra) == 2 * 64, [s.shape for s in extra]


def test_cross_entropy_errors_like_pytorch():
    x = torch.randn(4, 5)
    cases = [
        (IndexError, "Target 7 is out of bounds.", lambda: F.cross_entropy(x, torch.tensor([0, 1, 2, 7]))),
        (IndexError, "Target -1 is out of bounds.", lambda: F.cross_entropy(x, torch.tensor([0, 1, 2, -1]))),
        (RuntimeError, r"Expected input batch_size \(4\) to match target batch_size \(3\)",
         lambda: F.cross_entropy(x, torch.tensor([0, 1, 2]))),
        (RuntimeError, "expected target dtype to be Long or Byte, but got Int",
         lambda: F.cross_entropy(x, torch.tensor([0, 1, 2, 3], dtype=torch.int32))),
        (RuntimeError, "Expected floating point type for target with class probabilities, got Long",
         lambda: F.cross_entropy(x, torch.zeros(4, 5, dtype=torch.long))),
        (RuntimeError, "weight tensor should be defined either for all 5 classes or no classes",
         lambda: F.cross_entropy(x, torch.tensor([0, 1, 2, 3]), weight=torch.ones(3))),
        (RuntimeError, r"label_smoothing must be between 0.0 and 1.0. Got: 1.5",
         lambda: F.cross_entropy(x, torch.tensor([0, 1, 2, 3]), label_smoothing=1.5)),
        (ValueError, "bogus is not a valid value for reduction",
         lambda: F.cross_entropy(x, torch.tensor([0, 1, 2, 3]), reduction="bogus")),
        (RuntimeError, r"Expected target size \[2, 4\], got \[2, 5\]",
         lambda: F.cross_entropy(torch.randn(2, 3, 4), torch.zeros(2, 5, dtype=torch.long))),
        (RuntimeError, "Expected 1 or more dimensions", lambda: F.cross_entropy(torch.tensor(1.0), torch.tensor(0))),
        (RuntimeError, "not differentiable with respect to argument 'weight'",
         lambda: F.cross_entropy(x, torch.tensor([0, 1, 2, 3]), weight=torch.ones(5, requires_grad=True))),
    ]
    for exc, msg, fn in cases:
        with pytest.raises(exc, match=msg):
            fn()
    # The byte targets and 1-D forms PyTorch accepts.
    torch.testing.assert_close(F.cross_entropy(x, torch.tensor([0, 1, 2, 3], dtype=torch.uint8)),
                               TF.cross_entropy(x, torch.tensor([0, 1, 2, 3], dtype=torch.uint8)))
    x1 = torch.randn(5)
    for t1 in (torch.tensor(2), torch.tensor([2])):
        torch.testing.assert_close(F.cross_entropy(x1, t1, reduction="none"),
                                   TF.cross_entropy(x1, t1, reduction="none"))


# -------------------------------------------------------- bce with logits ---
def bce_inputs(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: (torch.randn(*s, generator=g, dtype=torch.float64) * 4).to(dtype)  # noqa: E731
    u = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64).to(dtype)  # noqa: E731
    yield "2d", r(6, 7), u(6, 7)
    yield "transposed", r(7, 6).t(), u(6, 7)
    yield "4d_channels_last", r(2, 3, 4, 7).contiguous(memory_format=torch.channels_last), u(2, 3, 4, 7)
    yield "sliced", r(6, 14)[:, ::2], u(6, 14)[:, 1::2]
    yield "long", r(2, 1029), u(2, 1029)
    yield "expanded", r(6, 1).expand(6, 7), u(1, 7).expand(6, 7)
    yield "zero_d", r(()), u(())
    yield "empty", r(0, 7), u(0, 7)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_bce_with_logits_matches_pytorch(dtype):
    g = torch.Generator().manual_seed(2)
    for name, x, t in bce_inputs(dtype):
        # Broadcast along the last dimension (a 0-d input takes 0-d weights:
        # the output has the input's shape).
        last = x.shape[-1:]
        weights = [None, (torch.rand(last, generator=g, dtype=torch.float64) + 0.5).to(dtype),
                   (torch.rand(x.shape, generator=g, dtype=torch.float64) + 0.5).to(dtype)]
        pws = [None, (torch.rand(last, generator=g, dtype=torch.float64) * 3).to(dtype)]
        for weight in weights:
            for pw in pws:
                for red in REDUCTIONS:
                    kw = dict(weight=weight, pos_weight=pw, reduction=red)
                    go = torch.randn(x.shape if red == "none" else (), generator=g, dtype=torch.float64).to(dtype)
                    y, grads = ours_and_grads(F.binary_cross_entropy_with_logits, x, t, go, True, **kw)
                    ry, rgrads = reference(TF.binary_cross_entropy_with_logits, x, t, go, True, **kw)
                    what = f"{name} weight={None if weight is None else weight.shape} pw={pw is not None} {red}"
                    assert y.shape == ry.shape and y.dtype == ry.dtype, what
                    torch.testing.assert_close(y, ry, equal_nan=True, msg=lambda m: f"{what} loss: {m}")
                    for a, b, which in zip(grads, rgrads, ("input", "target")):
                        torch.testing.assert_close(a, b, msg=lambda m: f"{what} grad {which}: {m}")


def test_bce_with_logits_large_logits_are_stable():
    x = torch.tensor([1e4, -1e4, 100.0, -100.0, 30.0, -30.0, 0.0, 1e-30], requires_grad=True)
    t = torch.tensor([0.0, 1.0, 0.3, 0.7, 1.0, 0.0, 0.5, 1.0], requires_grad=True)
    pw = torch.tensor(2.5)
    for kw in ({}, {"pos_weight": pw}):
        y = F.binary_cross_entropy_with_logits(x, t, reduction="none", **kw)
        r = TF.binary_cross_entropy_with_logits(x.detach().double(), t.detach().double(), reduction="none",
                                                **{k: v.double() for k, v in kw.items()})
        assert torch.isfinite(y).all()
        torch.testing.assert_close(y, r.float())
        gx, gt = torch.autograd.grad(y.sum(), (x, t))
        assert torch.isfinite(gx).all() and torch.isfinite(gt).all()


def test_bce_with_logits_gradcheck_and_gradgradcheck():
    g = torch.Generator().manual_seed(7)
    x = (torch.randn(3, 4, generator=g, dtype=torch.float64) * 3).requires_grad_(True)
    t = torch.rand(3, 4, generator=g, dtype=torch.float64).requires_grad_(True)
    w = torch.rand(4, generator=g, dtype=torch.float64) + 0.5
    pw = torch.rand(4, generator=g, dtype=torch.float64) * 3
    for red in REDUCTIONS:
        for kw in ({}, {"weight": w, "pos_weight": pw}):
            fn = lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=red, **kw)  # noqa: E731
            assert gradcheck(fn, (x, t), nondet_tol=0.0)
            assert gradgradcheck(fn, (x, t), nondet_tol=0.0)


def test_bce_with_logits_errors_like_pytorch():
    x = torch.randn(4, 5)
    with pytest.raises(ValueError, match=r"Target size \(torch.Size\(\[4, 4\]\)\) must be the same as input size"):
        F.binary_cross_entropy_with_logits(x, torch.rand(4, 4))
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'pos_weight'"):
        F.binary_cross_entropy_with_logits(x, torch.rand(4, 5), pos_weight=torch.rand(5, requires_grad=True))
    with pytest.raises(RuntimeError, match="not differentiable with respect to argument 'weight'"):
        F.binary_cross_entropy_with_logits(x, torch.rand(4, 5), weight=torch.rand(5, requires_grad=True))
    with pytest.raises(RuntimeError, match="weight of shape .* cannot be broadcast"):
        F.binary_cross_entropy_with_logits(x, torch.rand(4, 5), weight=torch.rand(3))
    with pytest.raises(RuntimeError, match=r"binary_cross_entropy_with_logits.*floating point"):
        F.binary_cross_entropy_with_logits(x.long(), torch.rand(4, 5).long())


# ------------------------------------------------------------------ modules ---
@pytest.mark.parametrize("name", ["CrossEntropyLoss", "BCEWithLogitsLoss"])
def test_loss_modules_are_drop_ins(name):
    ours_cls, ref_cls = getattr(ta.nn, name), getattr(torch.nn, name)
    assert issubclass(ours_cls, ref_cls)
    assert inspect.signature(ours_cls.__init__) == inspect.signature(ref_cls.__init__)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 5, 3, generator=g, dtype=torch.float64)
    w = torch.rand(5, generator=g, dtype=torch.float64)
    if name == "CrossEntropyLoss":
        t = torch.randint(0, 5, (4, 3), generator=g)
        t[0, 0] = 2
        argsets = [{}, {"weight": w, "ignore_index": 2, "reduction": "sum", "label_smoothing": 0.1}]
    else:
        t = torch.rand(4, 5, 3, generator=g, dtype=torch.float64)
        argsets = [{}, {"weight": w[:3], "pos_weight": w[:3] + 1, "reduction": "none"}]
    for kw in argsets:
        ours, ref = ours_cls(**kw), ref_cls(**kw)
        assert repr(ours) == repr(ref)
        assert list(ours.state_dict()) == list(ref.state_dict())
        ours.load_state_dict(ref.state_dict())
        torch.testing.assert_close(ours(x, t), ref(x, t))
