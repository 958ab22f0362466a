"""torch.func.vmap over the softmax family and the gated units runs their
batching rules (functorch's per-sample fallback is switched off here, so a
missing rule fails), with the result of the built-in or the explicit
composition for any batch dimension, unbatched arguments, negative dims,
0-d samples, nested vmap and vmap of grad."""
import contextlib

import pytest
import torch
import torch.nn.functional as TF
from torch.func import grad, vmap

import torch_activations as ta

F = ta.functional


@contextlib.contextmanager
def no_fallback():
    before = torch._C._functorch._is_vmap_fallback_enabled()
    torch._C._functorch._set_vmap_fallback_enabled(False)
    try:
        yield
    finally:
        torch._C._functorch._set_vmap_fallback_enabled(before)


ROWS = [
    ("softmax", lambda x, d: F.softmax(x, d), lambda x, d: TF.softmax(x, d)),
    ("log_softmax", lambda x, d: F.log_softmax(x, d), lambda x, d: TF.log_softmax(x, d)),
    ("softmin", lambda x, d: F.softmin(x, d), lambda x, d: TF.softmin(x, d)),
    ("glu", lambda x, d: F.glu(x, d), lambda x, d: TF.glu(x, d)),
    ("swiglu", lambda x, d: F.swiglu(x, dim=d), lambda x, d: TF.silu(x.chunk(2, d)[0]) * x.chunk(2, d)[1]),
    ("geglu", lambda x, d: F.geglu(x, dim=d, approximate="tanh"),
     lambda x, d: TF.gelu(x.chunk(2, d)[0], approximate="tanh") * x.chunk(2, d)[1]),
    ("reglu", lambda x, d: F.reglu(x, dim=d), lambda x, d: TF.relu(x.chunk(2, d)[0]) * x.chunk(2, d)[1]),
]

PAIRS = [
    ("swiglu", F.swiglu, lambda a, b: TF.silu(a) * b),
    ("geglu", F.geglu, lambda a, b: TF.gelu(a) * b),
    ("reglu", F.reglu, lambda a, b: TF.relu(a) * b),
]


@pytest.mark.parametrize("name,ours,ref", ROWS, ids=[r[0] for r in ROWS])
@pytest.mark.parametrize("dim", [0, 1, -1, -2])
@pytest.mark.parametrize("in_dim", [0, 1, 2])
def test_row_ops_batch_anywhere(name, ours, ref, dim, in_dim):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 6, 8, generator=g, dtype=torch.float64)
    with no_fallback():
        got = vmap(lambda t: ours(t, dim), in_dims=in_dim)(x)
        dgot = vmap(grad(lambda t: (ours(t, dim) * t.sum()).sum()), in_dims=in_dim)(x)
    want = vmap(lambda t: ref(t, dim), in_dims=in_dim)(x)
    dwant = vmap(grad(lambda t: (ref(t, dim) * t.sum()).sum()), in_dims=in_dim)(x)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(dgot, dwant)


@pytest.mark.parametrize("name,ours,ref", ROWS[:3], ids=[r[0] for r in ROWS[:3]])
def test_softmax_family_nested_and_zero_dim_samples(name, ours, ref):
    x = torch.randn(3, 5, 7, dtype=torch.float64)
    with no_fallback():
        torch.testing.assert_close(vmap(vmap(lambda t: ours(t, 0)))(x), vmap(vmap(lambda t: ref(t, 0)))(x))
        # Each sample is 0-d: the result is the op on a single element.
        s = torch.randn(5, dtype=torch.float64)
        torch.testing.assert_close(vmap(lambda t: ours(t, -1))(s), vmap(lambda t: ref(t, -1))(s))
        with pytest.raises((IndexError, RuntimeError), match="[Dd]imension out of range"):
            vmap(lambda t: ours(t, 3))(x)


def test_gated_refusals_under_vmap_are_the_ops_own():
    with no_fallback():
        with pytest.raises(RuntimeError, match="Halving dimension must be even, but dimension 0 is size 5"):
            vmap(lambda t: F.swiglu(t, dim=-1))(torch.randn(4, 5))
        with pytest.raises(RuntimeError, match="glu does not support scalars"):
            vmap(lambda t: F.glu(t, -1))(torch.randn(4))


@pytest.mark.parametrize("name,ours,ref", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("in_dims", [(0, 0), (1, 0), (0, None), (None, 2)])
def test_pair_form_batch_rules(name, ours, ref, in_dims):
    g = torch.Generator().manual_seed(1)

    def arg(d):   # 3 samples of shape (4, 5), batched along d, or one sample
        t = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
        return t[0] if d is None else t.movedim(0, d)

    a, b = arg(in_dims[0]), arg(in_dims[1])
    loss = lambda f: (lambda u, v: (f(u, v) * (u + 2 * v)).sum())  # noqa: E731
    with no_fallback():
        got = vmap(ours, in_dims=in_dims)(a, b)
        dgot = vmap(grad(loss(ours), argnums=(0, 1)), in_dims=in_dims)(a, b)
    torch.testing.assert_close(got, vmap(ref, in_dims=in_dims)(a, b))
    torch.testing.assert_close(dgot, vmap(grad(loss(ref), argnums=(0, 1)), in_dims=in_dims)(a, b))


@pytest.mark.parametrize("name,ours,ref", ROWS, ids=[r[0] for r in ROWS])
def test_second_derivatives_under_vmap(name, ours, ref):
    # grad of grad runs the double backward ops under the batching rules.
    x = torch.randn(4, 6, 8, dtype=torch.float64)
    w = torch.randn(4, 8, dtype=torch.float64)

    def gg(f):
        inner = grad(lambda t: (f(t, -1) * w[:, : f(t, -1).shape[-1]]).sum())
        return grad(lambda t: (inner(t) * t.sin()).sum())

    with no_fallback():
        got = vmap(gg(ours), in_dims=1)(x)
    torch.testing.assert_close(got, vmap(gg(ref), in_dims=1)(x))
