"""Models using our modules under torch.compile(fullgraph=True),
torch.export (with save/load), torch.jit.script, and CPU autocast."""
import copy
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as TF
from torch import nn
from torch._functorch.aot_autograd import make_boxed_func

import torch_activations as ta
from models import MLP, init_
from torch_activations.optable import CASES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def replaced(model):
    ta.replace_activations(model)
    return model


def grads_of(model, x):
    model.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    y = model(x)
    y.backward(torch.ones_like(y))
    return y.detach(), [p.grad for p in model.parameters()] + [x.grad]


# ------------------------------------------------------------- torch.compile ---
def test_compile_fullgraph_model_graphs_hold_our_forward_and_backward_ops():
    from torch._dynamo.backends.common import aot_autograd

    torch._dynamo.reset()
    graphs = {"forward": [], "backward": []}

    def recorder(kind):
        def compiler(gm, example_inputs):
            graphs[kind] += [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]
            return make_boxed_func(gm.forward)
        return compiler

    backend = aot_autograd(fw_compiler=recorder("forward"), bw_compiler=recorder("backward"))
    torch.manual_seed(0)
    model = replaced(init_(MLP().double()))
    compiled = torch.compile(model, backend=backend, fullgraph=True)
    x = torch.randn(8, 16, dtype=torch.float64)
    y, g = grads_of(compiled, x)
    y_ref, g_ref = grads_of(model, x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(g, g_ref)
    for op in ("gelu", "silu", "prelu", "mish", "tanh", "leaky_relu", "softplus", "sigmoid"):
        assert f"torch_activations.{op}.default" in graphs["forward"], op
        assert f"torch_activations.{op}_backward.default" in graphs["backward"], op
    assert not [t for t in graphs["forward"] + graphs["backward"] if t.startswith("aten.") and
                any(a in t for a in ("gelu", "silu", "prelu", "mish", "leaky_relu", "softplus"))]


def test_compile_fullgraph_under_patch_traces_our_ops():
    from torch._dynamo.backends.common import aot_autograd

    torch._dynamo.reset()
    seen = []

    def record(gm, example_inputs):
        seen.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return make_boxed_func(gm.forward)

    def f(x):
        return TF.silu(x) * torch.sigmoid(x) + TF.gelu(x, approximate="tanh")

    compiled = torch.compile(f, fullgraph=True, backend=aot_autograd(fw_compiler=record, bw_compiler=record))
    x = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    with ta.patch():
        y = compiled(x)
        (g,) = torch.autograd.grad(y.sum(), x)
    y_ref = f(x)
    (g_ref,) = torch.autograd.grad(y_ref.sum(), x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(g, g_ref)
    for op in ("silu", "sigmoid", "gelu"):
        assert f"torch_activations.{op}.default" in seen and f"torch_activations.{op}_backward.default" in seen
        assert f"aten.{op}.default" not in seen


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")   # raised inside inductor
def test_compile_inductor_fullgraph_matches_eager_forward_and_backward():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = replaced(init_(MLP()))
    compiled = torch.compile(model, fullgraph=True, dynamic=False)
    x = torch.randn(8, 16)
    y, g = grads_of(compiled, x)
    y_ref, g_ref = grads_of(model, x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(g, g_ref)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")   # raised inside inductor
def test_inductor_inference_of_every_pointwise_op_with_default_and_given_parameters():
    """Without autograd, Inductor hands each op to its own kernel; a call
    that leaves parameters at their defaults (gelu(x), elu(x), ...) must run
    as well as one that passes them."""
    from torch_activations.optable import OPS
    x = torch.randn(64, generator=torch.Generator().manual_seed(0)) * 3
    for op in OPS:
        for params in (dict(op.params[0]), dict(op.params[-1])):
            torch._dynamo.reset()
            f = torch.compile(lambda t, _f=op.ours, _p=params: _f(t, **_p) * 2, fullgraph=True)
            with torch.no_grad():
                torch.testing.assert_close(f(x), op.ours(x, **params) * 2, msg=f"{op.name} {params}")


@pytest.mark.parametrize("first", ["torch._dynamo", "torch_activations"])
def test_functional_calls_trace_as_our_ops_whichever_is_imported_first(first):
    """torch_activations.functional calls each operator's C++ entry point
    directly; Dynamo learns to trace those as the operators when it is
    loaded, before or after this library."""
    code = f"""
import torch
import {first}
import torch_activations.functional as F
from torch._dynamo.backends.common import aot_autograd
seen = set()
def record(gm, example_inputs):
    seen.update(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
    return gm
f = torch.compile(lambda x: F.gelu(F.relu(x), approximate="tanh") + F.softmax(x, -1), fullgraph=True,
                  backend=aot_autograd(fw_compiler=record))
x = torch.randn(3, 5)
torch.testing.assert_close(f(x), F.gelu(F.relu(x), approximate="tanh") + F.softmax(x, -1))
assert {{"torch_activations.relu.default", "torch_activations.gelu.default",
         "torch_activations.softmax.default"}} <= seen, seen
print("traced")
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 0 and "traced" in out.stdout, out.stderr[-3000:]


def test_a_failing_dynamo_registration_warns_and_leaves_dynamo_working():
    code = """
import warnings, torch
def broken(*a, **k):
    raise RuntimeError("no substitutes here")
torch.compiler.substitute_in_graph = broken
import torch_activations.functional as F
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    import torch._dynamo
assert any("will not trace" in str(x.message) for x in w), [str(x.message) for x in w]
f = torch.compile(lambda x: torch.ops.torch_activations.relu(x) + 1, fullgraph=True, backend="eager")
assert torch.equal(f(torch.ones(2)), torch.full((2,), 2.0))
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


def test_functional_calls_reach_fx_tracing_and_torch_function_as_our_ops():
    """The direct calls still go through the dispatcher's Python hooks:
    torch.fx records the OpOverloads, and a __torch_function__ subclass sees
    them."""
    import torch.fx
    from torch_activations import functional as F

    class M(nn.Module):
        def forward(self, x):
            return F.gelu(F.relu(x), approximate="tanh") + F.leaky_relu(x, 0.2)

    gm = torch.fx.symbolic_trace(M())
    targets = [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]
    assert {"torch_activations.relu.default", "torch_activations.gelu.default",
            "torch_activations.leaky_relu.default"} <= set(targets)
    x = torch.randn(3, 4)
    torch.testing.assert_close(gm(x), M()(x))

    seen = []

    class Logged(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            seen.append(func)
            return super().__torch_function__(func, types, args, kwargs or {})

    y = F.silu(x.as_subclass(Logged))
    assert type(y) is Logged and torch.ops.torch_activations.silu.default in seen


# -------------------------------------------------------------- torch.export ---
def test_export_contains_our_ops_and_runs_after_save_and_load(tmp_path):
    torch.manual_seed(0)
    model = replaced(init_(MLP()))
    x = torch.randn(5, 16)
    ep = torch.export.export(model, (x,))
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert {f"torch_activations.{op}.default" for op in ("gelu", "silu", "prelu", "mish", "sigmoid")} <= targets
    assert not {t for t in targets if t.startswith("aten.") and "gelu" in t}
    path = tmp_path / "model.pt2"
    torch.export.save(ep, str(path))
    want = model(x)
    torch.testing.assert_close(torch.export.load(str(path)).module()(x), want)
    # A fresh process: loading needs the operators registered, i.e. the import.
    torch.save({"x": x, "want": want.detach()}, tmp_path / "io.pt")
    code = (
        "import sys, torch, torch_activations\n"
        f"io = torch.load({str(tmp_path / 'io.pt')!r})\n"
        f"m = torch.export.load({str(path)!r}).module()\n"
        "torch.testing.assert_close(m(io['x']), io['want'])\n"
        "print('loaded and ran')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 0 and "loaded and ran" in out.stdout, out.stderr[-3000:]


# ----------------------------------------------------------- torch.jit.script ---
SCRIPT_ARGS = {"Threshold": (0.1, 2.0), "Swish": (1.5,)}
# PyTorch 2.13 deprecates TorchScript in favour of compile/export; it still
# works and users still have scripted models.
no_jit_deprecation = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")


@no_jit_deprecation
@pytest.mark.parametrize("name", ta.nn.__all__)
def test_jit_script_of_every_module_works(name):
    cls = getattr(ta.nn, name)
    module = cls(*SCRIPT_ARGS.get(name, ()))
    scripted = torch.jit.script(module)
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    module.double(), scripted.double()
    if name == "RReLU":
        module.eval(), scripted.eval()
    args = (x,)
    if name == "CrossEntropyLoss":
        args = (x, torch.randint(0, 3, (2, 4)))
    elif name == "BCEWithLogitsLoss":
        args = (x, torch.rand_like(x))
    torch.testing.assert_close(scripted(*args), module(*args))
    if name in ("SwiGLU", "GeGLU", "ReGLU"):
        torch.testing.assert_close(scripted(x, x.flip(0)), module(x, x.flip(0)))
    assert any(k.startswith("torch_activations::") for k in node_kinds(scripted.inlined_graph))


def node_kinds(block):
    """Kinds of every node of a TorchScript graph, inside if/loop blocks too."""
    out = set()
    for node in block.nodes():
        out.add(node.kind())
        for b in node.blocks():
            out |= node_kinds(b)
    return out


@no_jit_deprecation
def test_jit_script_model_save_load_and_gradients(tmp_path):
    torch.manual_seed(0)
    model = replaced(nn.Sequential(nn.Linear(4, 8), nn.GELU(approximate="tanh"), nn.PReLU(8), nn.Linear(8, 3),
                                   nn.Hardswish()).double())
    scripted = torch.jit.script(model)
    torch.jit.save(scripted, str(tmp_path / "m.pt"))
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    x = torch.randn(6, 4, dtype=torch.float64)
    y, g = grads_of(loaded, x)
    y_ref, g_ref = grads_of(model, x)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(g, g_ref)
    assert {"torch_activations::gelu", "torch_activations::prelu", "torch_activations::hardswish"} <= node_kinds(
        loaded.inlined_graph)


# --------------------------------------------------------------- autocast ---
def _under_autocast(fn, *args):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return fn(*args)


@pytest.mark.parametrize("op,params,_id", CASES, ids=[c[2] for c in CASES])
def test_autocast_runs_pointwise_ops_in_the_input_dtype_like_pytorch(op, params, _id):
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        x = torch.randn(64, dtype=dtype, generator=torch.Generator().manual_seed(0)) * 3
        ours = _under_autocast(lambda t: op.ours(t, **params), x)
        theirs = _under_autocast(lambda t: op.ref(t, **params), x)
        assert ours.dtype == theirs.dtype == dtype, (dtype, ours.dtype, theirs.dtype)
        # Outside autocast the same call gives the same values: autocast did nothing.
        assert torch.equal(ours, op.ours(x, **params))


def test_autocast_parametric_ops_cast_like_prelu():
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        x = torch.randn(6, 4, dtype=dtype)
        w = torch.rand(4, dtype=dtype if dtype == torch.float64 else torch.float32, requires_grad=True)
        ours = _under_autocast(ta.functional.prelu, x, w)
        theirs = _under_autocast(TF.prelu, x, w)
        assert ours.dtype == theirs.dtype, (dtype, ours.dtype, theirs.dtype)
        torch.testing.assert_close(ours, theirs)
        s = _under_autocast(ta.functional.swish, x, w)
        assert s.dtype == ours.dtype
        # The float32 parameter gets a float32 gradient through the cast.
        (g,) = torch.autograd.grad(s.float().sum(), w)
        assert g.dtype == w.dtype


def test_autocast_model_matches_torch_nn_under_autocast():
    torch.manual_seed(0)
    ref = init_(nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 32), nn.PReLU(32), nn.SiLU(),
                              nn.Linear(32, 32), nn.Hardswish(), nn.Linear(32, 8), nn.Tanh()))
    ours = replaced(copy.deepcopy(ref))
    x = torch.randn(16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, g = grads_of(ours, x)
        y_ref, g_ref = grads_of(ref, x)
    assert y.dtype == y_ref.dtype == torch.bfloat16
    # bfloat16 activations, float32 parameters and their gradients, as with torch.nn.
    torch.testing.assert_close(y, y_ref)
    for a, b, p in zip(g, g_ref, list(ref.parameters()) + [x]):
        assert a.dtype == b.dtype == p.dtype == torch.float32
        # Computed in bfloat16 (the matmuls of the backward), then cast.
        torch.testing.assert_close(a.bfloat16(), b.bfloat16())
