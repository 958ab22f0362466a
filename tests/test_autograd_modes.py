"""Grad modes and function transforms: no_grad and inference_mode build no
graph, an inference tensor cannot be saved for backward (PyTorch's message),
in-place ops move version counters exactly like PyTorch's, and
torch.func.vmap / grad / jacrev / jacfwd / hessian over our ops give the
built-ins' results; the pointwise ops, in place or not, run on their own
batching rules (no per-sample fallback)."""
import warnings

import pytest
import torch
import torch.nn.functional as TF
from torch.func import grad, hessian, jacfwd, jacrev, vmap

import torch_activations as ta
from opcalls import backward_params
from torch_activations import functional as F
from torch_activations.optable import CASE_IDS, CASES, away_from_kinks

INPLACE = [c for c in CASES if c[0].inplace and c[1] not in c[0].inplace_refused]


def data(op, params, shape=(4, 3, 5), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return away_from_kinks(op, params, torch.randn(shape, generator=g, dtype=dtype) * op.scale)


def swish_ref(x, beta):
    b = beta.reshape([1, -1] + [1] * (x.dim() - 2)) if beta.numel() > 1 else beta.reshape(())
    return x * torch.sigmoid(b * x)


# (name, ours(x, w), PyTorch's built-in or composition(x, w))
PARAMETRIC = [("prelu", F.prelu, TF.prelu), ("swish_learnable", F.swish, swish_ref)]


def assert_no_fallback(log, what):
    """None of the recorded warnings is functorch's per-sample fallback."""
    slow = [str(w.message) for w in log if "performance drop" in str(w.message)]
    assert not slow, f"{what}: {slow[0]}"


# ------------------------------------------------------ grad modes ---
def count_saved(fn):
    packed = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or t, lambda t: t):
        out = fn()
    return out, len(packed)


@pytest.mark.parametrize("op,params,_id", CASES, ids=CASE_IDS)
def test_no_grad_and_inference_mode_build_no_graph(op, params, _id):
    x = data(op, params).requires_grad_(True)
    expect = op.ours(x.detach(), **params)
    for mode in (torch.no_grad, torch.inference_mode):
        with mode():
            y, saved = count_saved(lambda: op.ours(x, **params))
            bwd = getattr(ta.ops, op.name + "_backward")
            extra = backward_params(op.name, params)
            gy, saved_b = count_saved(lambda: bwd(x, x, *extra))
        assert saved == 0 and saved_b == 0, mode.__name__
        for t in (y, gy):
            assert t.grad_fn is None and not t.requires_grad, mode.__name__
        assert y.is_inference() == (mode is torch.inference_mode)
        assert torch.equal(y, expect)


@pytest.mark.parametrize("name,ours,ref", PARAMETRIC, ids=[p[0] for p in PARAMETRIC])
def test_parametric_and_rrelu_build_no_graph_without_grad_mode(name, ours, ref):
    x = torch.randn(2, 3, 4, requires_grad=True)
    w = torch.rand(3, requires_grad=True)
    for mode in (torch.no_grad, torch.inference_mode):
        with mode():
            outs = [ours(x, w), F.rrelu(x, training=True), F.rrelu(x)] + list(getattr(ta.ops, name + "_backward")(x, x, w))
        for t in outs:
            assert t.grad_fn is None and not t.requires_grad and t.is_inference() == (mode is torch.inference_mode)


def test_saving_an_inference_tensor_fails_with_pytorchs_message():
    with torch.inference_mode():
        xi = torch.randn(2, 3, 4)
    with pytest.raises(RuntimeError) as theirs:
        TF.prelu(xi, torch.rand(3, requires_grad=True))
    want = str(theirs.value).split(".")[0]
    assert want.startswith("Inference tensors cannot be saved for backward")
    w = torch.rand(3, requires_grad=True)
    for fn in (lambda: F.prelu(xi, w), lambda: F.swish(xi, w), lambda: ta.ops.prelu_backward(xi, xi, w)):
        with pytest.raises(RuntimeError, match=want):
            fn()
    g = torch.randn(2, 3, 4, requires_grad=True)
    for op, params, _ in CASES:
        bwd = getattr(ta.ops, op.name + "_backward")
        extra = backward_params(op.name, params)
        with pytest.raises(RuntimeError, match=want):
            bwd(g, xi, *extra)


@pytest.mark.parametrize("op,params,_id", INPLACE, ids=[c[2] for c in INPLACE])
def test_inplace_moves_version_counters_like_pytorch(op, params, _id):
    """Under no_grad, with autograd, and inside inference_mode on a normal
    tensor; through a view the base's counter moves too."""
    def deltas(fn, mode, rg):
        base = data(op, params, seed=1).float()
        if rg:
            base.requires_grad_(True)
        with mode():
            t = base * 1 if rg else base
            view = t[1:]
            before = (t._version, view._version)
            fn(view, inplace=True, **params)
            return t._version - before[0], view._version - before[1]

    # swish has no built-in; PyTorch's in-place silu is the model.
    ref = (lambda t, inplace, beta=1.0: TF.silu(t, inplace)) if op.name == "swish" else op.ref
    for mode, rg in ((torch.no_grad, False), (torch.enable_grad, True), (torch.inference_mode, False)):
        assert deltas(op.ours, mode, rg) == deltas(ref, mode, rg), f"{mode.__name__} requires_grad={rg}"
    with torch.no_grad():
        a, b = torch.randn(5), torch.randn(5)
        va, vb = a._version, b._version
        TF.rrelu(a, training=True, inplace=True)
        F.rrelu(b, training=True, inplace=True)
        assert a._version - va == b._version - vb


# ------------------------------------------------------------ torch.func ---
# PyTorch's hardsigmoid_backward has no derivative ("derivative for
# aten::hardsigmoid_backward is not implemented"); hardsigmoid is piecewise
# linear, so away from its kinks its Hessian is zero.
NO_BUILTIN_SECOND_DERIVATIVE = {"hardsigmoid"}


def ref_hessian(op, params, x):
    second = jacrev(jacrev(lambda t: op.ref(t, **params).sum()))
    if op.name in NO_BUILTIN_SECOND_DERIVATIVE:
        with pytest.raises(RuntimeError, match="is not implemented"):
            second(x)  # when PyTorch gains it, drop the entry
        return torch.zeros(x.shape + x.shape, dtype=x.dtype)
    return second(x)


@pytest.mark.parametrize("op,params,_id", CASES, ids=CASE_IDS)
def test_vmap_grad_jacobians_hessian_match_builtin(op, params, _id):
    x = data(op, params)
    ours = lambda t: op.ours(t, **params)  # noqa: E731
    ref = lambda t: op.ref(t, **params)  # noqa: E731
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        results = {
            "vmap": (vmap(ours)(x), vmap(ref)(x)),
            "vmap in_dims=2": (vmap(ours, in_dims=2)(x), vmap(ref, in_dims=2)(x)),
            "nested vmap": (vmap(vmap(ours))(x), vmap(vmap(ref))(x)),
            "vmap(grad)": (vmap(grad(lambda t: ours(t).sum()))(x), vmap(grad(lambda t: ref(t).sum()))(x)),
            # The built-ins' Jacobians and Hessians by reverse mode only:
            # some (hardsigmoid_backward) have no forward-mode derivative.
            "jacrev": (jacrev(ours)(x[0, 0]), jacrev(ref)(x[0, 0])),
            "jacfwd": (jacfwd(ours)(x[0, 0]), jacrev(ref)(x[0, 0])),
            "hessian": (hessian(lambda t: ours(t).sum())(x[0, 0]), ref_hessian(op, params, x[0, 0])),
            "jacrev(jacrev)": (jacrev(jacrev(lambda t: ours(t).sum()))(x[0, 0]), ref_hessian(op, params, x[0, 0])),
            "vmap(hessian)": (vmap(hessian(lambda t: ours(t).sum()))(x[0]),
                              torch.stack([ref_hessian(op, params, t) for t in x[0]])),
        }
    assert_no_fallback(log, op.name)
    for what, (a, b) in results.items():
        torch.testing.assert_close(a, b, msg=lambda m: f"{what}: {m}")


@pytest.mark.parametrize("op,params,_id", INPLACE, ids=[c[2] for c in INPLACE])
def test_inplace_ops_under_vmap_and_grad(op, params, _id):
    x = data(op, params)

    def ours(t):
        return op.ours(t * 1, inplace=True, **params)

    def ref(t):
        return op.ref(t * 1, inplace=True, **params)

    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        for fn in (lambda f: vmap(f)(x), lambda f: vmap(f, in_dims=1)(x), lambda f: vmap(vmap(f))(x),
                   lambda f: vmap(grad(lambda t: f(t).sum()))(x), lambda f: jacfwd(f)(x[0, 0])):
            torch.testing.assert_close(fn(ours), fn(ref))
    assert_no_fallback(log, op.name + "_")


# prelu, learnable swish and rrelu run under vmap on functorch's per-sample
# fallback by design (_vmap.py): their meaning depends on a dimension or on
# the order of random draws.
FALLBACK_BY_DESIGN = pytest.mark.filterwarnings("ignore:There is a performance drop")


@FALLBACK_BY_DESIGN
@pytest.mark.parametrize("name,ours,ref", PARAMETRIC, ids=[p[0] for p in PARAMETRIC])
def test_parametric_ops_under_function_transforms(name, ours, ref):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, generator=g, dtype=torch.float64)
    x = torch.where(x.abs() < 1e-2, 0.5, x)
    for w in (torch.rand(3, generator=g, dtype=torch.float64) + 0.2, torch.tensor([0.3], dtype=torch.float64)):
        for argnums in (0, 1, (0, 1)):
            for tr in (jacrev, jacfwd):
                a = tr(ours, argnums=argnums)(x, w)
                b = tr(ref, argnums=argnums)(x, w)
                torch.testing.assert_close(a, b, msg=lambda m: f"{tr.__name__} argnums={argnums}: {m}")
            a = hessian(lambda *t: ours(*t).sum(), argnums=argnums)(x, w)
            b = hessian(lambda *t: ref(*t).sum(), argnums=argnums)(x, w)
            torch.testing.assert_close(a, b, msg=lambda m: f"hessian argnums={argnums}: {m}")
        torch.testing.assert_close(vmap(ours, in_dims=(0, None))(x.unsqueeze(1), w),
                                   vmap(ref, in_dims=(0, None))(x.unsqueeze(1), w))
        xb = x.unsqueeze(1)
        torch.testing.assert_close(vmap(grad(lambda t, v: ours(t, v).sum(), argnums=(0, 1)), in_dims=(0, None))(xb, w),
                                   vmap(grad(lambda t, v: ref(t, v).sum(), argnums=(0, 1)), in_dims=(0, None))(xb, w))


def test_forward_mode_ad_of_parametric_ops_and_their_backward():
    """Dual numbers through prelu / swish_learnable and their backward ops
    against forward-over-reverse of the built-in (or composition)."""
    import torch.autograd.forward_ad as fwAD

    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    w = torch.rand(4, generator=g, dtype=torch.float64) + 0.2
    go = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    tx, tw, tg = (torch.randn_like(t) for t in (x, w, go))
    for name, ours, ref in PARAMETRIC:
        with fwAD.dual_level():
            y = ours(fwAD.make_dual(x, tx), fwAD.make_dual(w, tw))
            t_ours = fwAD.unpack_dual(y).tangent
            dg, dxx, dww = (fwAD.make_dual(a, b) for a, b in ((go, tg), (x, tx), (w, tw)))
            gx, gw = getattr(ta.ops, name + "_backward")(dg, dxx, dww)
            tgx, tgw = fwAD.unpack_dual(gx).tangent, fwAD.unpack_dual(gw).tangent
        _, t_ref = torch.func.jvp(ref, (x, w), (tx, tw))
        torch.testing.assert_close(t_ours, t_ref, msg=name)

        def ref_bwd(go_, x_, w_):
            return torch.func.vjp(ref, x_, w_)[1](go_)

        _, (r_gx, r_gw) = torch.func.jvp(ref_bwd, (go, x, w), (tg, tx, tw))
        torch.testing.assert_close(tgx, r_gx, msg=f"{name}_backward d(grad_input)")
        torch.testing.assert_close(tgw, r_gw, msg=f"{name}_backward d(grad_weight)")


@FALLBACK_BY_DESIGN
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("inplace", [False, True])
def test_rrelu_under_function_transforms(training, inplace):
    """PyTorch's rrelu has no batching rule at all ('vmap: we do not yet
    support aten::rrelu_with_noise'), so the reference is its plain autograd
    gradient with the same seed: once the slopes are drawn, the Jacobian is
    diagonal."""
    x = torch.randn(6, dtype=torch.float64)
    x = torch.where(x.abs() < 1e-2, 0.5, x)
    xx = x.clone().requires_grad_(True)
    torch.manual_seed(3)
    (slopes,) = torch.autograd.grad(TF.rrelu(xx * 1, 0.1, 0.3, training, inplace).sum(), xx)

    def f(t):
        return F.rrelu(t * 1 if inplace else t, 0.1, 0.3, training, inplace)

    for name, transform in (("jacrev", jacrev), ("jacfwd", jacfwd)):
        torch.manual_seed(3)
        torch.testing.assert_close(transform(f)(x), torch.diag(slopes), msg=name)
    torch.manual_seed(3)
    torch.testing.assert_close(grad(lambda t: f(t).sum())(x), slopes)
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        torch.manual_seed(3)
        y = f(fwAD.make_dual(x, torch.ones_like(x)))
        tangent = fwAD.unpack_dual(y).tangent
    torch.testing.assert_close(tangent, slopes)


# ----------------------------------- softmax family, gated units, losses ---
_G = torch.Generator().manual_seed(2)
_TARGET = torch.randint(0, 6, (4,), generator=_G)
_PROBS = torch.rand(4, 6, generator=_G, dtype=torch.float64)
# (name, ours(x), PyTorch's built-in or composition(x)) on x of shape (4, 6).
ROW_OPS = [
    ("softmax", lambda v: F.softmax(v, -1), lambda v: TF.softmax(v, -1)),
    ("log_softmax", lambda v: F.log_softmax(v, 0), lambda v: TF.log_softmax(v, 0)),
    ("softmin", lambda v: F.softmin(v, -1), lambda v: TF.softmin(v, -1)),
    ("glu", lambda v: F.glu(v, -1), lambda v: TF.glu(v, -1)),
    ("swiglu", lambda v: F.swiglu(v), lambda v: TF.silu(v[..., :3]) * v[..., 3:]),
    ("geglu", lambda v: F.geglu(v), lambda v: TF.gelu(v[..., :3]) * v[..., 3:]),
    ("reglu", lambda v: F.reglu(v), lambda v: TF.relu(v[..., :3]) * v[..., 3:]),
    ("cross_entropy", lambda v: F.cross_entropy(v, _TARGET, label_smoothing=0.1),
     lambda v: TF.cross_entropy(v, _TARGET, label_smoothing=0.1)),
    ("binary_cross_entropy_with_logits", lambda v: F.binary_cross_entropy_with_logits(v, _PROBS),
     lambda v: TF.binary_cross_entropy_with_logits(v, _PROBS)),
]


@FALLBACK_BY_DESIGN
@pytest.mark.parametrize("name,ours,ref", ROW_OPS, ids=[r[0] for r in ROW_OPS])
def test_row_ops_and_losses_under_grad_modes_and_transforms(name, ours, ref):
    """No graph under no_grad / inference_mode; vmap, vmap(grad), jacrev and
    the Hessian by reverse over reverse equal the built-ins'. Forward mode
    (jacfwd, and the Hessian by forward over reverse) too, except for the
    losses, where jacfwd raises an error that says so."""
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    xb = torch.randn(5, 4, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for mode in (torch.no_grad, torch.inference_mode):
        with mode():
            y, saved = count_saved(lambda: ours(x.clone().requires_grad_(True)))
        assert saved == 0 and y.grad_fn is None and not y.requires_grad
        assert y.is_inference() == (mode is torch.inference_mode)
    torch.testing.assert_close(vmap(ours)(xb), vmap(ref)(xb))
    torch.testing.assert_close(vmap(grad(lambda v: ours(v).sum()))(xb), vmap(grad(lambda v: ref(v).sum()))(xb))
    torch.testing.assert_close(jacrev(ours)(x), jacrev(ref)(x))
    torch.testing.assert_close(jacrev(jacrev(lambda v: ours(v).sum()))(x),
                               jacrev(jacrev(lambda v: ref(v).sum()))(x))
    if name in ("cross_entropy", "binary_cross_entropy_with_logits"):
        with pytest.raises(RuntimeError, match=r"torch_activations::\w+: forward-mode automatic differentiation is not"):
            jacfwd(ours)(x)
    else:
        torch.testing.assert_close(jacfwd(ours)(x), jacfwd(ref)(x))
        torch.testing.assert_close(jacfwd(jacrev(lambda v: ours(v).sum()))(x),
                                   jacfwd(jacrev(lambda v: ref(v).sum()))(x))
