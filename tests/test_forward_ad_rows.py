"""Forward-mode derivatives of the softmax family and the gated units (and of
their backward ops, which forward-over-reverse Hessians go through) against
the built-ins or the explicit compositions, in float64: jvp along any dim,
with a dtype cast, pair forms with a tangent on one input only, dual
numbers on the backward ops directly."""
import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as TF
from torch.func import hessian, jacfwd, jacrev, jvp

import torch_activations as ta

F = ta.functional
ops = torch.ops.torch_activations


def rnd(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


SOFTMAX = [("softmax", F.softmax, TF.softmax), ("log_softmax", F.log_softmax, TF.log_softmax),
           ("softmin", F.softmin, TF.softmin)]


@pytest.mark.parametrize("name,ours,ref", SOFTMAX, ids=[s[0] for s in SOFTMAX])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_family_jvp(name, ours, ref, dim):
    x, t = rnd(3, 5, 4, seed=1), rnd(3, 5, 4, seed=2)
    got = jvp(lambda v: ours(v, dim), (x,), (t,))
    want = jvp(lambda v: ref(v, dim), (x,), (t,))
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name,ours,ref", SOFTMAX, ids=[s[0] for s in SOFTMAX])
def test_softmax_family_jvp_with_dtype_and_zero_dim(name, ours, ref):
    x, t = rnd(4, 6, seed=3, dtype=torch.float32), rnd(4, 6, seed=4, dtype=torch.float32)
    y, yt = jvp(lambda v: ours(v, 1, dtype=torch.float64), (x,), (t,))
    ry, ryt = jvp(lambda v: ref(v, 1, dtype=torch.float64), (x,), (t,))
    assert yt.dtype == ryt.dtype == torch.float64
    torch.testing.assert_close((y, yt), (ry, ryt))
    s, st = torch.tensor(0.7, dtype=torch.float64), torch.tensor(-1.3, dtype=torch.float64)
    torch.testing.assert_close(jvp(lambda v: ours(v, 0), (s,), (st,)), jvp(lambda v: ref(v, 0), (s,), (st,)))


@pytest.mark.parametrize("name,ours,ref", SOFTMAX, ids=[s[0] for s in SOFTMAX])
def test_softmax_backward_op_dual_numbers(name, ours, ref):
    # Tangents on grad_output and on the saved output, one at a time and
    # together, against the jvp of the backward written with autograd.
    x, g = rnd(3, 7, seed=5), rnd(3, 7, seed=6)
    y = ref(x, 1)
    back = getattr(ops, name + "_backward")

    def autograd_backward(gv, yv):
        # The backward as a function of (g, y): the same formula PyTorch
        # differentiates, evaluated with ATen's ops.
        if name == "log_softmax":
            return gv - yv.exp() * gv.sum(1, keepdim=True)
        d = (gv - (gv * yv).sum(1, keepdim=True)) * yv
        return -d if name == "softmin" else d

    for gt, yt in ((rnd(3, 7, seed=7), None), (None, rnd(3, 7, seed=8)), (rnd(3, 7, seed=9), rnd(3, 7, seed=10))):
        with fwAD.dual_level():
            gd = fwAD.make_dual(g, gt) if gt is not None else g
            yd = fwAD.make_dual(y, yt) if yt is not None else y
            got = fwAD.unpack_dual(back(gd, yd, 1, torch.float64)).tangent
        want = jvp(autograd_backward, (g, y), (gt if gt is not None else torch.zeros_like(g),
                                                yt if yt is not None else torch.zeros_like(y)))[1]
        torch.testing.assert_close(got, want)


GATED = [
    ("glu", lambda v, d: F.glu(v, d), lambda v, d: TF.glu(v, d)),
    ("swiglu", lambda v, d: F.swiglu(v, dim=d), lambda v, d: TF.silu(v.chunk(2, d)[0]) * v.chunk(2, d)[1]),
    ("geglu", lambda v, d: F.geglu(v, dim=d), lambda v, d: TF.gelu(v.chunk(2, d)[0]) * v.chunk(2, d)[1]),
    ("geglu_tanh", lambda v, d: F.geglu(v, dim=d, approximate="tanh"),
     lambda v, d: TF.gelu(v.chunk(2, d)[0], approximate="tanh") * v.chunk(2, d)[1]),
    ("reglu", lambda v, d: F.reglu(v, dim=d), lambda v, d: TF.relu(v.chunk(2, d)[0]) * v.chunk(2, d)[1]),
]


@pytest.mark.parametrize("name,ours,ref", GATED, ids=[g[0] for g in GATED])
@pytest.mark.parametrize("dim", [0, -1])
def test_gated_split_jvp_jacfwd_hessian(name, ours, ref, dim):
    x, t = rnd(4, 6, seed=11), rnd(4, 6, seed=12)
    torch.testing.assert_close(jvp(lambda v: ours(v, dim), (x,), (t,)), jvp(lambda v: ref(v, dim), (x,), (t,)))
    torch.testing.assert_close(jacfwd(lambda v: ours(v, dim))(x), jacrev(lambda v: ref(v, dim))(x))
    w = rnd(*ref(x, dim).shape, seed=13)
    torch.testing.assert_close(hessian(lambda v: (ours(v, dim) * w).sum())(x),
                               hessian(lambda v: (ref(v, dim) * w).sum())(x))


PAIRS = [("swiglu", F.swiglu, lambda a, b: TF.silu(a) * b),
         ("geglu", lambda a, b: F.geglu(a, b, approximate="tanh"), lambda a, b: TF.gelu(a, approximate="tanh") * b),
         ("reglu", F.reglu, lambda a, b: TF.relu(a) * b)]


@pytest.mark.parametrize("name,ours,ref", PAIRS, ids=[p[0] for p in PAIRS])
def test_gated_pair_tangents_on_either_input(name, ours, ref):
    a, b = rnd(3, 5, seed=14), rnd(3, 5, seed=15)
    ta_, tb = rnd(3, 5, seed=16), rnd(3, 5, seed=17)
    torch.testing.assert_close(jvp(ours, (a, b), (ta_, tb)), jvp(ref, (a, b), (ta_, tb)))
    torch.testing.assert_close(jvp(lambda u: ours(u, b), (a,), (ta_,)), jvp(lambda u: ref(u, b), (a,), (ta_,)))
    torch.testing.assert_close(jvp(lambda v: ours(a, v), (b,), (tb,)), jvp(lambda v: ref(a, v), (b,), (tb,)))
    w = rnd(3, 5, seed=18)
    for argnums in (0, 1, (0, 1)):
        torch.testing.assert_close(hessian(lambda u, v: (ours(u, v) * w).sum(), argnums=argnums)(a, b),
                                   hessian(lambda u, v: (ref(u, v) * w).sum(), argnums=argnums)(a, b))
