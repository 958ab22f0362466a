"""The out= overloads of the pointwise activations, foo.out(self, ..., *, out),
against the functional op and against ATen's out= semantics (resizing,
strides of a resized output, dtype, overlap, autograd, version counter)."""
import warnings

import pytest
import torch

import torch_activations as ta
from torch_activations.optable import CASE_IDS, CASES, OPS

DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def params_of(op, params):
    fwd = getattr(ta.ops, op.name).default._schema
    return [params.get(a.name, a.default_value) for a in fwd.arguments[1:]]


def sample(shape=(2, 3, 4, 5), dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 3).to(dtype)


@pytest.mark.parametrize("op,params,_id", CASES, ids=CASE_IDS)
def test_out_matches_the_functional_op_bitwise(op, params, _id):
    extra = params_of(op, params)
    fn = getattr(ta.ops, op.name)
    for dtype in DTYPES:
        for x in (sample(dtype=dtype), sample(dtype=dtype).transpose(1, 3), sample((70001,), dtype)[::2]):
            want = fn.default(x, *extra)
            out = torch.empty_like(want)
            got = fn.out(x, *extra, out=out)
            assert got is out
            torch.testing.assert_close(out, want, rtol=0, atol=0, equal_nan=True)
            # Into a strided view of a larger tensor: only the view is written.
            big = torch.full((2 * x.numel(),), 7.0, dtype=dtype)
            view = big[::2].view(x.shape)
            fn.out(x.contiguous(), *extra, out=view)
            torch.testing.assert_close(view, want.contiguous(), rtol=0, atol=0, equal_nan=True)
            assert (big[1::2] == 7).all()


def test_resize_follows_aten(capfd):
    """A wrong-sized out is resized (with ATen's warning when it held
    elements) and takes the strides the functional op would give, as
    torch.ops.aten.sigmoid.out does. Through torch.ops the warning is
    printed by C++ rather than raised as a Python warning, for ATen's
    operators too."""
    for x in (sample(), sample().transpose(1, 3), sample().contiguous(memory_format=torch.channels_last),
              sample()[:, :, ::2]):
        ours, theirs = torch.empty(0), torch.empty(0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ta.ops.sigmoid.out(x, out=ours)
            torch.sigmoid(x, out=theirs)
        assert ours.shape == theirs.shape and ours.stride() == theirs.stride()
        ours, theirs = torch.empty(5), torch.empty(5)
        capfd.readouterr()
        ta.ops.sigmoid.out(x, out=ours)
        assert "was resized" in capfd.readouterr().err
        torch.ops.aten.sigmoid.out(x, out=theirs)
        assert "was resized" in capfd.readouterr().err
        assert ours.shape == theirs.shape and ours.stride() == theirs.stride()
    # The right shape in any layout is kept as it is.
    x = sample()
    out = torch.empty(5, 4, 3, 2).permute(3, 2, 1, 0)
    ta.ops.relu.out(x, out=out)
    assert out.stride() == (1, 2, 6, 24)
    torch.testing.assert_close(out, torch.relu(x), rtol=0, atol=0)


def test_out_may_be_self_but_not_overlap_it():
    x = sample()
    want = torch.relu(x)
    ta.ops.relu.out(x, out=x)
    torch.testing.assert_close(x, want, rtol=0, atol=0)
    buf = torch.randn(101)
    with pytest.raises(RuntimeError, match="unsupported operation") as ours:
        ta.ops.relu.out(buf[:100], out=buf[1:])
    with pytest.raises(RuntimeError, match="unsupported operation") as theirs:
        torch.sigmoid(buf[:100], out=buf[1:])
    expanded = torch.zeros(1).expand(4)
    with pytest.raises(RuntimeError, match="unsupported operation"):
        ta.ops.relu.out(torch.randn(4), out=expanded)
    assert str(ours.value).splitlines()[0] == str(theirs.value).splitlines()[0]


def test_bad_out_is_refused_before_writing():
    x = sample()
    for bad, words in ((torch.zeros_like(x, dtype=torch.float64), ["relu.out", "Double", "Float"]),
                       (torch.zeros_like(x, dtype=torch.int64), ["relu.out", "Long"]),
                       (torch.zeros_like(x, device="meta"), ["relu.out", "meta"])):
        with pytest.raises(RuntimeError) as info:
            ta.ops.relu.out(x, out=bad)
        for w in words:
            assert w in str(info.value)
        if bad.device.type != "meta":
            assert (bad == 0).all()
    with pytest.raises(RuntimeError, match="gelu.out: approximate argument must be either none or tanh"):
        ta.ops.gelu.out(x, "fast", out=torch.empty_like(x))


def test_not_differentiable_like_aten():
    x = sample().requires_grad_(True)
    with pytest.raises(RuntimeError) as ours:
        ta.ops.silu.out(x, out=torch.empty_like(x))
    with pytest.raises(RuntimeError) as theirs:
        torch.sigmoid(x, out=torch.empty_like(x))
    tail = "(): functions with out=... arguments don't support automatic differentiation, but one of the " \
           "arguments requires grad."
    assert str(ours.value).splitlines()[0] == "torch_activations::silu.out" + tail
    assert str(theirs.value).splitlines()[0] == "sigmoid" + tail
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        ta.ops.silu.out(x.detach(), out=torch.empty_like(x).requires_grad_(True))
    # Without grad mode, or for inputs that do not require grad, it runs.
    with torch.no_grad():
        out = ta.ops.silu.out(x, out=torch.empty_like(x))
    assert not out.requires_grad
    torch.testing.assert_close(out, ta.ops.silu(x.detach()), rtol=0, atol=0)
    import torch.autograd.forward_ad as fwAD
    with fwAD.dual_level():
        dual = fwAD.make_dual(x.detach(), torch.ones_like(x))
        with pytest.raises(NotImplementedError, match="forward AD .* out= function"):
            ta.ops.silu.out(dual, out=torch.empty_like(x))


def test_version_counter_and_inference_tensors():
    x = sample()
    out = torch.empty_like(x)
    v = out._version
    ta.ops.tanh.out(x, out=out)
    assert out._version == v + 1
    with torch.inference_mode():
        inf = torch.zeros_like(x)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
        ta.ops.tanh.out(x, out=inf)
    assert (inf == 0).all()
    with torch.inference_mode():
        ta.ops.tanh.out(x, out=inf)
    torch.testing.assert_close(inf, ta.ops.tanh(x), rtol=0, atol=0)


def test_every_pointwise_op_has_an_out_overload():
    for op in OPS:
        fn = getattr(ta.ops, op.name).out
        assert torch.Tag.out in fn.tags
        assert [a.name for a in fn._schema.arguments if a.kwarg_only] == ["out"]


def test_compiled_out():
    x = sample()
    # Dynamo refuses to resize an out= tensor inside a graph, for any op.
    out = torch.empty_like(x)
    f = torch.compile(lambda t: ta.ops.hardtanh.out(t, -0.5, 0.5, out=out), dynamic=True, fullgraph=True)
    f(x)
    torch.testing.assert_close(out, ta.ops.hardtanh(x, -0.5, 0.5), rtol=0, atol=0)
