"""Bad input gets a clear error that names the operator and the problem (in
PyTorch's words where PyTorch has some), and a refused call changes nothing:
no tensor argument is written, no version counter moves, no random number is
drawn. Also: every operator runs on meta tensors (shape inference only).

Most tests run over every operator registered under torch_activations (see
opcalls.py), so new operators are covered as soon as they are registered."""
import math
import re

import pytest
import torch
import torch.nn.functional as TF

import torch_activations as ta
from opcalls import FREE_DTYPE, LOSSES, SHAPE, base_name, op_names, outputs, overload, schema, valid_call
from torch_activations import functional as F

OPS = op_names()


def shapes(name):
    """A regular shape and empty ones (no channels too, except for the
    losses, whose class indices must lie below the channel count)."""
    if base_name(name) in LOSSES:
        return [SHAPE, (0, 3, 4)]
    return [SHAPE, (0, 3, 4), (2, 0, 4)]
BAD_DTYPES = {torch.int64: "Long", torch.int32: "Int", torch.bool: "Bool", torch.complex64: "ComplexFloat"}


def snapshot(args):
    def version(t):  # inference tensors have none
        return None if t.is_inference() else t._version
    def copy(t):
        return t.detach().to_dense().clone()
    return [(a, copy(a), version(a)) for a in args if isinstance(a, torch.Tensor) and a.device.type != "meta"]


def assert_unchanged(snap, what):
    for t, copy, version in snap:
        assert version is None or t._version == version, f"{what}: version counter moved"
        assert torch.equal(t.to_dense(), copy), f"{what}: an argument was modified by a failed call"


def refuse(fn, args, *needles, exc=RuntimeError):
    """Calls fn(*args), which must raise `exc` with every needle in its
    message, and checks that no tensor argument changed. Returns the message."""
    snap = snapshot(args)
    with pytest.raises(exc) as info:
        fn(*args)
    msg = str(info.value)
    for n in needles:
        assert n in msg, f"{n!r} not in message: {msg}"
    assert_unchanged(snap, msg.splitlines()[0])
    return msg


def torch_says(fn, exc=(RuntimeError, ValueError)):
    """PyTorch's own message for the same mistake: its first line, without
    the final period and without a sentence that sends the reader to
    PyTorch's issue tracker."""
    with pytest.raises(exc) as info:
        fn()
    sentences = re.split(r"(?<=\.) ", str(info.value).splitlines()[0])
    return " ".join(s for s in sentences if "github.com" not in s).rstrip(".")


# ------------------------------------------------------- every operator ---
def test_every_registered_operator_has_a_valid_call():
    assert len(OPS) >= 4 * len(ta.ops._pointwise_ops())
    for name in OPS:
        try:
            valid_call(name).run()
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{name}: the generic call from opcalls.py fails ({e}); give it an entry in OVERRIDES")


@pytest.mark.parametrize("name", OPS)
def test_meta_tensors_infer_what_the_real_kernel_returns(name):
    for shape in shapes(name):
        call = valid_call(name, shape=shape)
        real = outputs(call.run([a.clone() if isinstance(a, torch.Tensor) else a for a in call.args]))
        meta_args = [a.to("meta") if isinstance(a, torch.Tensor) else a for a in call.args]
        meta = outputs(call.run(meta_args))
        assert len(meta) == len(real)
        for m, r in zip(meta, real):
            assert m.device.type == "meta"
            assert (m.shape, m.dtype) == (r.shape, r.dtype)
            if r.numel():
                assert m.stride() == r.stride(), f"{name}: meta strides {m.stride()}, real {r.stride()}"


@pytest.mark.parametrize("name", OPS)
def test_non_float_tensors_are_refused_naming_op_and_dtype(name):
    """Every floating-point tensor argument, in turn, as an integer, bool or
    complex tensor, non-empty and empty."""
    for shape in shapes(name):
        call = valid_call(name, shape=shape)
        for i in call.tensors:
            for dtype, word in BAD_DTYPES.items():
                args = list(call.args)
                args[i] = (args[i] * 3).to(dtype)
                snap = snapshot(args)
                with pytest.raises(RuntimeError) as info:
                    call.run(args)
                msg = str(info.value)
                arg = schema(name).arguments[i].name
                assert call.qualified in msg and word in msg, f"{name}, {arg} as {dtype}: {msg}"
                assert_unchanged(snap, f"{name}, {arg} as {dtype}")


@pytest.mark.parametrize("name", [n for n in OPS if len(valid_call(n).tensors) > 1])
def test_mismatched_tensor_arguments_are_refused(name):
    """Operators with several tensors (backward ops, parametric ops): one of
    them in another float dtype, another shape, or on the meta device."""
    call = valid_call(name)
    for i in call.tensors:
        arg = schema(name).arguments[i].name
        t = call.args[i]
        # One more element along every dimension: a mismatch for the
        # element-wise, per-channel, halved and per-row arguments alike.
        wrong_shape = torch.ones([n + 1 for n in t.shape] or [2])
        # An out= overload resizes `out` to the input's shape, as ATen's do
        # (tests/test_out.py).
        if torch.Tag.out in overload(name).tags:
            wrong_shape = None
        for what, bad, words in (
            ("float64", None if (name, arg) in FREE_DTYPE else t.double(), ["Double"]),
            ("shape", wrong_shape, []),
            ("meta", t.to("meta"), ["meta"]),
        ):
            if bad is None:
                continue
            args = list(call.args)
            args[i] = bad
            snap = snapshot(args)
            with pytest.raises(RuntimeError) as info:
                call.run(args)
            msg = str(info.value)
            assert call.qualified in msg, f"{name}, {arg} {what}: {msg}"
            for w in words:
                assert w in msg, f"{name}, {arg} {what}: {msg}"
            if what == "shape":
                assert any(w in msg for w in ("shape", "size", "Mismatch")), f"{name}, {arg} {what}: {msg}"
            assert_unchanged(snap, f"{name}, {arg} {what}")


@pytest.mark.parametrize("name", OPS)
def test_sparse_input_is_refused_naming_the_op(name):
    call = valid_call(name)
    args = list(call.args)
    args[call.tensors[0]] = args[call.tensors[0]].to_sparse()
    with pytest.raises(RuntimeError, match=rf"torch_activations::{name}\b"):
        call.run(args)


# ------------------------------------------------------------ parameters ---
X = torch.randn(2, 3, 4)


def param_cases():
    """(id, our call, PyTorch's call for the same mistake or None, words our
    message must contain)."""
    gelu_bwd = lambda a: lambda x: ta.ops.gelu_backward(x, x, a)  # noqa: E731
    yield "gelu approximate", lambda x: F.gelu(x, approximate="fast"), \
        lambda x: TF.gelu(x, approximate="fast"), ["'fast'"]
    yield "gelu approximate is case-sensitive", lambda x: F.gelu(x, approximate="Tanh"), \
        lambda x: TF.gelu(x, approximate="Tanh"), []
    yield "gelu_backward approximate", gelu_bwd(""), None, ["approximate argument must be either none or tanh"]
    yield "gelu_double_backward approximate", lambda x: ta.ops.gelu_double_backward(x, x, x, "erf"), None, \
        ["approximate"]
    yield "celu alpha 0", lambda x: F.celu(x, 0.0), lambda x: TF.celu(x, 0.0), []
    yield "celu_ alpha 0", lambda x: F.celu(x, 0.0, inplace=True), lambda x: TF.celu(x, 0.0, inplace=True), []
    yield "celu_backward alpha 0", lambda x: ta.ops.celu_backward(x, x, 0.0, False), None, ["alpha cannot be 0"]
    for lambd in (-0.5, math.nan):
        yield f"softshrink lambd {lambd}", lambda x, l=lambd: F.softshrink(x, l), \
            lambda x, l=lambd: TF.softshrink(x, l), []
        yield f"softshrink_backward lambd {lambd}", lambda x, l=lambd: ta.ops.softshrink_backward(x, x, l), None, \
            ["lambda must be in range [0, "]
    yield "softshrink lambd beyond float16", lambda x: F.softshrink(x.half(), 1e6), \
        lambda x: TF.softshrink(x.half(), 1e6), ["Half"]
    yield "hardtanh min > max", lambda x: ta.ops.hardtanh(x, 2.0, 1.0), None, ["min_val cannot be greater than max_val"]
    yield "hardtanh_ min > max", lambda x: ta.ops.hardtanh_(x, 2.0, 1.0), None, ["min_val cannot be greater"]
    yield "hardtanh_backward min > max", lambda x: ta.ops.hardtanh_backward(x, x, 2.0, 1.0, False), None, \
        ["min_val cannot be greater"]
    for lo, hi in ((math.nan, 1.0), (-1.0, math.nan)):
        # PyTorch accepts NaN bounds and returns NaN everywhere; we refuse them.
        yield f"hardtanh bounds {lo}, {hi}", lambda x, lo=lo, hi=hi: F.hardtanh(x, lo, hi), None, ["must not be NaN"]
    for training in (False, True):
        yield f"rrelu lower > upper training={training}", lambda x, t=training: F.rrelu(x, 0.5, 0.1, t), \
            lambda x, t=training: TF.rrelu(x, 0.5, 0.1, t), []
        yield f"rrelu_ lower > upper training={training}", lambda x, t=training: F.rrelu(x, 0.5, 0.1, t, True), \
            lambda x, t=training: TF.rrelu(x, 0.5, 0.1, t, True), []
    for lo, hi in ((math.nan, 0.3), (0.1, math.inf), (-math.inf, 0.3)):
        yield f"rrelu bounds {lo}, {hi}", lambda x, lo=lo, hi=hi: F.rrelu(x, lo, hi, True), \
            lambda x, lo=lo, hi=hi: TF.rrelu(x, lo, hi, True), []
    yield "rrelu_backward lower > upper", lambda x: ta.ops.rrelu_backward(x, x, x, 0.5, 0.1, True, False), None, \
        ["Lower bound should be less than or equal to the upper bound"]


PARAM_CASES = list(param_cases())


@pytest.mark.parametrize("case", PARAM_CASES, ids=[c[0] for c in PARAM_CASES])
def test_bad_parameters_are_refused_in_pytorchs_words(case):
    _, ours, theirs, words = case
    x = X.clone()
    msg = refuse(ours, [x], *words)
    assert msg.startswith("torch_activations::"), msg
    if theirs is not None:
        assert torch_says(lambda: theirs(X.clone())) in msg


def test_hardtanh_python_wrapper_raises_valueerror_like_pytorch():
    x = X.clone()
    msg = refuse(F.hardtanh, [x, 2.0, 1.0], exc=ValueError)
    assert msg == torch_says(lambda: TF.hardtanh(X.clone(), 2.0, 1.0))


def prelu_cases():
    x3 = torch.randn(2, 3, 4)
    for fn_name, ours, ref in (("prelu", F.prelu, TF.prelu), ("swish_learnable", F.swish, None)):
        wname = "weight" if fn_name == "prelu" else "beta"
        yield fn_name, "too many", ours, ref, x3, torch.rand(4), ["Mismatch of parameter numbers"]
        yield fn_name, "too few", ours, ref, x3, torch.rand(2), ["Found parameter numbers = 2 and channel size = 3"]
        yield fn_name, "2-d", ours, ref, x3, torch.rand(1, 3), [f"Expected `{wname}` to be a scalar or 1D tensor"]
        yield fn_name, "float64", ours, ref, x3, torch.rand(3, dtype=torch.float64), ["Type promoting not supported"]
        yield fn_name, "int64", ours, ref, x3, torch.ones(3, dtype=torch.int64), ["Got Float and Long"]
        yield fn_name, "meta", ours, None, x3, torch.rand(3, device="meta"), ["meta"]
        yield fn_name, "zero-dim input", ours, ref, torch.tensor(0.5), torch.rand(2), ["Not allow zero-dim input tensor"]
        yield fn_name, "1-d input", ours, ref, torch.randn(5), torch.rand(5), ["channel size = 1"]
        yield fn_name, "sparse weight", ours, None, x3, torch.rand(3).to_sparse(), ["Sparse"]


PRELU_CASES = list(prelu_cases())


@pytest.mark.parametrize("case", PRELU_CASES, ids=[f"{c[0]}-{c[1]}" for c in PRELU_CASES])
def test_parameter_tensor_errors(case):
    name, _, ours, ref, x, w, words = case
    for rg in (False, True):
        xx = x.clone().requires_grad_(rg)
        ww = w.clone().requires_grad_(rg and w.is_floating_point() and w.layout == torch.strided)
        msg = refuse(ours, [xx, ww], f"torch_activations::{name}", *words)
        if ref is not None:
            assert torch_says(lambda: ref(x.clone(), w.clone())) in msg
        assert xx.grad is None and ww.grad is None


def test_nn_prelu_with_wrong_channel_count_fails_like_torch_nn():
    x = torch.randn(2, 3, 4)
    theirs = torch_says(lambda: torch.nn.PReLU(4)(x))
    refuse(ta.nn.PReLU(4), [x], theirs)


# -------------------------------------------------------------- in-place ---
INPLACE_NAMES = [n for n in ta.ops._pointwise_ops() if n + "_" in OPS]


@pytest.mark.parametrize("name", INPLACE_NAMES)
def test_inplace_on_overlapping_memory_is_refused_before_writing(name):
    call = valid_call(name + "_")
    base = -torch.rand(1, 4) - 0.5  # values every activation changes
    args = [base.expand(3, 4)] + call.args[1:]
    theirs = torch_says(lambda: torch.relu_(base.expand(3, 4)))
    refuse(call.run, [args], theirs)


def test_rrelu_inplace_on_overlapping_memory_draws_nothing():
    base = -torch.rand(1, 4) - 0.5
    torch.manual_seed(0)
    state = torch.get_rng_state()
    refuse(F.rrelu, [base.expand(3, 4), 0.1, 0.3, True, True], "more than one element of the written-to tensor")
    assert torch.equal(torch.get_rng_state(), state), "a refused call advanced the generator"


@pytest.mark.parametrize("name", INPLACE_NAMES + ["rrelu"])
def test_inplace_on_inference_tensor_is_refused_before_writing(name):
    """PyTorch's own in-place ops write into an inference tensor and only then
    refuse (when bumping its version); ours refuse first, with its message."""
    with torch.inference_mode():
        x = -torch.rand(3, 4) - 0.5
    theirs = torch_says(lambda: torch.relu_(_inference(x)))
    if name == "rrelu":
        refuse(lambda t: F.rrelu(t, 0.1, 0.3, True, True), [x], theirs)
    else:
        call = valid_call(name + "_")
        refuse(lambda t: call.run([t] + call.args[1:]), [x], theirs)
    with torch.inference_mode():  # where it is allowed
        y = x.clone()
        if name == "rrelu":
            F.rrelu(y, inplace=True)
        else:
            call.run([y] + call.args[1:])


def _inference(x):
    with torch.inference_mode():
        return x.clone()


def test_refused_inplace_with_autograd_changes_nothing():
    leaf = torch.randn(3, 4, requires_grad=True)
    for fn in (F.relu, F.silu, F.hardtanh, F.selu):
        refuse(lambda t: fn(t, inplace=True), [leaf], "a leaf Variable that requires grad")
    # A negative slope: PyTorch writes, then refuses in the backward; we
    # refuse in the forward, before writing, with the same message.
    x = (torch.randn(3, 4, requires_grad=True) * 1)
    for fn, kw in ((F.leaky_relu, dict(negative_slope=-0.1)), (F.elu, dict(alpha=-0.5)), (F.celu, dict(alpha=-0.5)),
                   (F.rrelu, dict(lower=-0.3, upper=-0.1))):
        ref = getattr(TF, fn.__name__)
        theirs = torch_says(lambda: ref(x.detach().clone().requires_grad_(True) * 1, inplace=True, **kw).sum().backward())
        refuse(lambda t: fn(t, inplace=True, **kw), [x], theirs)
