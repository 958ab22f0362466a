"""The operators' direct Python callables (csrc/python/calls.cpp), which
torch_activations.functional calls: for plain arguments they convert each
argument themselves and call the operator unboxed; anything else goes to the
generic binding of torch.ops. Either way a call must behave exactly as the
generic binding's: same results, same errors, same autograd, same
__torch_function__ handling."""
import threading
import time

import pytest
import torch
from torch.overrides import TorchFunctionMode

import torch_activations as ta
import torch_activations.functional as F
from torch_activations import _direct
from torch_activations.optable import OPS

from opcalls import op_names, outputs, schema, valid_call

DIRECT = sorted(n for n in vars(_direct.ops) if not n.startswith("__")
                and getattr(getattr(_direct.ops, n), "__module__", None) == "torch_activations._C")
# Default overloads the direct callables do not convert (results that are not
# tensors; generators, bool lists): they are the generic binding itself.
GENERIC_ONLY = {
    "_cpu_capability", "_lookup_reads", "_lookup_table_count", "_lookup_table_ops", "_pointwise_ops",
    "_set_cpu_capability", "_set_lookup_reads", "_supported_cpu_capabilities",
    "binary_cross_entropy_with_logits_backward", "binary_cross_entropy_with_logits_double_backward",
    "cross_entropy_backward", "cross_entropy_double_backward",
    "rrelu", "rrelu_", "rrelu_with_noise", "rrelu_with_noise_",
}
DEFAULT_OVERLOADS = [n for n in op_names() if "." not in n]


def generic(name):
    return getattr(ta.ops, name).default


def outcome(fn, args, kwargs=None):
    """What a call did: its outputs, or its exception's type and message."""
    try:
        return "ok", fn(*args, **(kwargs or {}))
    except Exception as e:  # noqa: BLE001  (compared, not swallowed)
        return "error", (type(e), str(e).split("\n")[0])


def assert_same(a, b):
    assert a[0] == b[0], (a, b)
    if a[0] == "error":
        assert a[1] == b[1]
        return
    oa, ob = outputs(a[1]), outputs(b[1])
    assert (a[1] is None) == (b[1] is None)
    assert len(oa) == len(ob)
    for x, y in zip(oa, ob):
        assert x.dtype == y.dtype and x.shape == y.shape and x.stride() == y.stride()
        torch.testing.assert_close(x, y, rtol=0, atol=0, equal_nan=True)


def copy_args(args):
    return [a.clone() if isinstance(a, torch.Tensor) else a for a in args]


def test_every_default_overload_has_a_direct_callable_or_is_listed():
    assert set(DIRECT) == set(_direct._default_overloads()) - GENERIC_ONLY
    for n in GENERIC_ONLY:
        assert getattr(_direct.ops, n) is generic(n)._op
    assert {n for n in DEFAULT_OVERLOADS if not n.startswith("_")} - GENERIC_ONLY <= set(DIRECT)


@pytest.mark.parametrize("name", DIRECT)
def test_direct_call_matches_the_generic_binding(name):
    for dtype in (torch.float32, torch.bfloat16):
        call = valid_call(name, dtype=dtype)
        ours = outcome(getattr(_direct.ops, name), copy_args(call.args))
        theirs = outcome(generic(name), copy_args(call.args))
        assert ours[0] == "ok", ours
        assert_same(ours, theirs)


@pytest.mark.parametrize("name", DIRECT)
def test_direct_call_refuses_what_the_generic_binding_refuses(name):
    call = valid_call(name)
    direct = getattr(_direct.ops, name)
    cases = []
    for i in call.tensors:
        bad = copy_args(call.args)
        bad[i] = bad[i].to(torch.int32)           # a dtype the kernels refuse
        cases.append(bad)
        bad = copy_args(call.args)
        bad[i] = bad[i][..., :1]                  # a shape that does not match
        cases.append(bad)
    if call.args:
        bad = copy_args(call.args)
        bad[0] = "not a tensor"                   # refused by the generic binding
        cases.append(bad)
    cases.append(copy_args(call.args)[:-1] if call.args else [1])   # too few
    cases.append(copy_args(call.args) + [None])                      # too many
    for args in cases:
        assert_same(outcome(direct, copy_args(args)), outcome(generic(name), copy_args(args)))


def test_keywords_defaults_and_other_number_types_go_through_the_generic_binding():
    x = torch.randn(64)
    ref = generic("hardshrink")(x, 0.5)
    for args, kwargs in [((x,), {}), ((x,), dict(lambd=0.5)), ((x, 1), {}), ((x, True), {}),
                         ((x, torch.tensor(0.5).item()), {})]:
        assert_same(outcome(_direct.ops.hardshrink, args, kwargs),
                    outcome(generic("hardshrink"), args, kwargs))
    assert_same(outcome(_direct.ops.hardshrink, (x, 1)), ("ok", generic("hardshrink")(x, 1.0)))
    assert torch.equal(_direct.ops.hardshrink(x, 0.5), ref)
    np = pytest.importorskip("numpy")
    assert_same(outcome(_direct.ops.hardshrink, (x, np.float64(0.5))),
                outcome(generic("hardshrink"), (x, np.float64(0.5))))
    assert_same(outcome(_direct.ops.hardshrink, (x, 2 ** 70)), outcome(generic("hardshrink"), (x, 2 ** 70)))
    assert_same(outcome(_direct.ops.glu, (x, 2 ** 70)), outcome(generic("glu"), (x, 2 ** 70)))
    assert_same(outcome(_direct.ops.gelu, (x, "tanh")), outcome(generic("gelu"), (x, "tanh")))
    assert_same(outcome(_direct.ops.gelu, (x, "nope")), outcome(generic("gelu"), (x, "nope")))
    y = torch.randn(4, 8)
    for dt in (None, torch.float64, torch.float16):
        assert_same(outcome(_direct.ops.softmax, (y, 1, dt)), outcome(generic("softmax"), (y, 1, dt)))
    assert_same(outcome(_direct.ops.softmax, (y, 5, None)), outcome(generic("softmax"), (y, 5, None)))


def test_functional_calls_pass_every_argument_positionally(monkeypatch):
    """The functional wrappers give each operator all of its arguments by
    position, the only form the direct callables convert themselves."""
    seen = []

    class Recorder:
        def __getattr__(self, name):
            fn = getattr(_direct.ops, name)

            def record(*args, **kwargs):
                seen.append((name, len(args), kwargs))
                return fn(*args, **kwargs)
            return record

    import torch_activations.functional as fmod
    monkeypatch.setattr(fmod, "_ops", Recorder())
    for op in OPS:
        for params in op.params:
            x = torch.randn(4, 6, requires_grad=True)
            op.ours(x, **params)
            if op.inplace and not params in op.inplace_refused:
                op.ours(torch.randn(4, 6), **params, inplace=True)
    x = torch.randn(4, 6)
    F.softmax(x, 1), F.log_softmax(x, 1), F.softmin(x, 1), F.softmax(x, 1, dtype=torch.float64)
    F.glu(x), F.swiglu(x), F.geglu(x), F.reglu(x), F.geglu(x, approximate="tanh")
    F.prelu(x, torch.full((6,), 0.25)), F.swish(x, torch.tensor([1.5])), F.swish(x, 1.5)
    F.cross_entropy(x, torch.tensor([1, 2, 0, 5])), F.binary_cross_entropy_with_logits(x, torch.rand(4, 6))
    assert seen
    checked = 0
    for name, nargs, kwargs in seen:
        if name in DIRECT:
            assert not kwargs and nargs == len(schema(name).arguments), (name, nargs, kwargs)
            checked += 1
    assert checked > 20


def test_subclass_torch_function_is_honoured():
    calls = []

    class Logged(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            calls.append(func)
            return super().__torch_function__(func, types, args, kwargs or {})

    x = torch.randn(8).as_subclass(Logged)
    y = F.gelu(x)
    assert type(y) is Logged
    assert any("gelu" in str(f) for f in calls)
    z = F.hardshrink(torch.randn(8), 0.5)  # a plain tensor after it: the fast path again
    assert type(z) is torch.Tensor


def test_torch_function_mode_sees_the_call():
    names = []

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            names.append(str(func))
            return func(*args, **(kwargs or {}))

    x = torch.randn(8)
    with Mode():
        y = F.silu(x)
    assert torch.equal(y, generic("silu")(x))
    assert any("silu" in n for n in names)


def test_parameter_meta_and_inplace_behave_as_through_the_generic_binding():
    w = torch.nn.Parameter(torch.randn(8))
    y = F.relu(w)
    y.sum().backward()
    assert torch.equal(w.grad, (w > 0).to(w.dtype))
    m = F.gelu(torch.empty(3, 5, device="meta").t())
    assert m.device.type == "meta" and m.shape == (5, 3) and m.stride() == (1, 5)
    x = torch.randn(8)
    v = x._version
    out = _direct.ops.relu_(x)
    assert out is None and x._version == v + 1 and bool((x >= 0).all())
    assert F.relu(x, inplace=True) is x
    leaf = torch.randn(8, requires_grad=True)
    assert_same(outcome(_direct.ops.relu_, (leaf,)), outcome(generic("relu_"), (leaf,)))


def test_autograd_and_double_backward_through_direct_calls():
    x = torch.randn(16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: _direct.ops.mish(t), (x,))
    assert torch.autograd.gradgradcheck(lambda t: _direct.ops.elu(t, 0.7), (x,))


def test_profiler_names_the_operators():
    x = torch.randn(64, requires_grad=True)
    with torch.profiler.profile() as prof:
        F.softplus(x).sum().backward()
    names = {e.name for e in prof.events()}
    assert "torch_activations::softplus" in names
    assert "torch_activations::softplus_backward" in names


def test_the_gil_is_released_while_an_operator_runs():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.randn(1 << 23, dtype=torch.float64)
        F.mish(x[:1024])
        start = time.perf_counter()
        F.mish(x)
        alone = time.perf_counter() - start
        woke = []
        helper = threading.Thread(target=lambda: (time.sleep(0.002), woke.append(time.perf_counter())))
        helper.start()
        t0 = time.perf_counter()
        F.mish(x)
        t1 = time.perf_counter()
        helper.join()
        assert alone > 0.02, "the operator call is too short to tell"
        # With the GIL held the helper could only wake after the call.
        assert woke[0] < t1 - (t1 - t0) / 4, (woke[0] - t0, t1 - t0)
    finally:
        torch.set_num_threads(threads)
