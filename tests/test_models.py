"""replace_activations / restore_activations / patch on real architectures
built from torch's own modules: outputs and every gradient equal to the
torch.nn original in float64, PyTorch's activation ops gone from the
profile, and training runs whose losses track the original's."""
import copy

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

import torch_activations as ta
from models import CNN, MLP, LlamaBlock, TinyLM, init_
from torch_activations.replace import counterparts


def op_names(fn):
    """Names of the operators fn runs, forward and backward."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name for e in prof.events()}


def forward_backward(model, inputs, seed=1):
    """Output, and gradients of a fixed random projection of it with respect
    to every parameter and every floating input."""
    model.zero_grad(set_to_none=True)
    inputs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    y = model(*inputs)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype)
    y.backward(g)
    grads = {n: p.grad for n, p in model.named_parameters()}
    grads.update({f"input{i}": x.grad for i, x in enumerate(inputs) if x.is_floating_point()})
    return y.detach(), grads


def assert_same_results(ours, ref, inputs, patched=False):
    with ta.patch() if patched else _null():
        y, g = forward_backward(ours, inputs)
    y_ref, g_ref = forward_backward(ref, inputs)
    torch.testing.assert_close(y, y_ref)
    assert g.keys() == g_ref.keys()
    for k in g_ref:
        assert g_ref[k] is not None, k
        torch.testing.assert_close(g[k], g_ref[k], msg=lambda m: f"gradient of {k}: {m}")


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ------------------------------------------------------ replace_activations ---
def test_mapping_comes_from_our_nn_classes():
    m = counterparts()
    expected = {getattr(torch.nn, n) for n in ta.nn.__all__ if isinstance(getattr(torch.nn, n, None), type)}
    assert set(m) == expected
    assert all(ours.__name__ == theirs.__name__ and issubclass(ours, theirs) for theirs, ours in m.items())
    # Replacement transplants state into our class; it must not need its own.
    assert all(ours.__init__ is theirs.__init__ for theirs, ours in m.items())


def test_mlp_every_container_replaced_with_identical_results():
    torch.manual_seed(0)
    ref = init_(MLP().double())
    ours = copy.deepcopy(ref)
    params_before = {n: p for n, p in ours.named_parameters()}
    report = ta.replace_activations(ours)
    replaced = {name: new for name, old, new in report.replaced}
    assert set(replaced) == {"inp.1", "blocks.0.1", "blocks.1.1", "acts.mish", "acts.tanh", "shared", "gate",
                             "extra.0", "extra.1"}
    assert replaced["blocks.1.1"] == "torch_activations.nn.PReLU"
    assert report.left_alone == []
    # One shared module stays one shared module.
    assert ours.shared is ours.extra[0] and type(ours.shared) is ta.nn.LeakyReLU
    # The very same Parameter objects, so optimizers and devices are untouched.
    assert all(p is params_before[n] for n, p in ours.named_parameters())
    assert type(ours.blocks[1][1]) is ta.nn.PReLU and ours.blocks[1][1].num_parameters == 32
    assert ours.extra[1].beta == 2.0 and ours.shared.negative_slope == 0.1
    x = torch.randn(8, 16, dtype=torch.float64)
    assert_same_results(ours, ref, [x])
    names = op_names(lambda: ours(x.requires_grad_()).sum().backward())
    for op in ("gelu", "silu", "prelu", "mish", "tanh", "leaky_relu", "softplus", "sigmoid"):
        assert f"torch_activations::{op}" in names and f"torch_activations::{op}_backward" in names, op
    assert not names & {"aten::gelu", "aten::silu", "aten::prelu", "aten::_prelu_kernel", "aten::mish",
                        "aten::leaky_relu", "aten::softplus", "aten::sigmoid"}


def test_cnn_batchnorm_inplace_relu_hardswish():
    torch.manual_seed(0)
    ref = init_(CNN().double())
    ours = copy.deepcopy(ref)
    report = ta.replace_activations(ours)
    assert [new.rsplit(".", 1)[1] for _, _, new in report.replaced] == ["ReLU", "Hardswish", "ReLU6", "Hardsigmoid"]
    assert ours.features[2].inplace and ours.features[8].inplace
    x = torch.randn(4, 3, 12, 12, dtype=torch.float64)
    for mode in ("train", "eval"):
        getattr(ref, mode)(), getattr(ours, mode)()
        assert_same_results(ours, ref, [x])
    names = op_names(lambda: ours(x.requires_grad_()).sum().backward())
    assert {"torch_activations::relu_", "torch_activations::hardswish", "torch_activations::relu6_",
            "torch_activations::hardsigmoid"} <= names
    assert not names & {"aten::relu_", "aten::relu", "aten::hardswish", "aten::hardtanh_", "aten::hardsigmoid"}


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_layer_module_activation(activation):
    torch.manual_seed(0)
    act = nn.GELU(approximate="tanh") if activation == "gelu" else nn.ReLU()
    ref = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation=act, batch_first=True).double()
    ours = copy.deepcopy(ref)
    report = ta.replace_activations(ours)
    assert [r[0] for r in report.replaced] == ["activation"]
    assert type(ours.activation) is getattr(ta.nn, type(act).__name__)
    if activation == "gelu":
        assert ours.activation.approximate == "tanh"
    x = torch.randn(3, 7, 32, dtype=torch.float64)
    assert_same_results(ours, ref, [x])
    assert f"torch_activations::{activation}_backward" in op_names(lambda: ours(x).sum().backward())


def test_transformer_encoder_layer_fused_inference_path_does_not_bypass_our_module():
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(32, 4, 64, activation=nn.ReLU(), batch_first=True).eval()
    ours = copy.deepcopy(ref)
    report = ta.replace_activations(ours)
    assert ours.activation_relu_or_gelu == 0 and "fused inference path turned off" in str(report)
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        assert "aten::_transformer_encoder_layer_fwd" in op_names(lambda: ref(x))
        names = op_names(lambda: ours(x))
        torch.testing.assert_close(ours(x), ref(x))
    assert "torch_activations::relu" in names and "aten::_transformer_encoder_layer_fwd" not in names
    back = ta.restore_activations(ours)
    assert ours.activation_relu_or_gelu == 1 and "turned back on" in str(back)


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_encoder_layer_stored_functional_activation_under_patch(activation):
    # The layer keeps F.relu / F.gelu in self.activation from construction:
    # a reference that rebinding torch.nn.functional would not reach.
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation=activation, batch_first=True).double()
    assert ref.activation is getattr(TF, activation)
    ours = copy.deepcopy(ref)
    assert ta.replace_activations(ours).replaced == []
    x = torch.randn(3, 7, 32, dtype=torch.float64)
    assert_same_results(ours, ref, [x], patched=True)
    with ta.patch() as p:
        names = op_names(lambda: ours(x).sum().backward())
    assert p.routed[f"torch.nn.functional.{activation}"] == 1
    assert f"torch_activations::{activation}" in names and f"aten::{activation}" not in names
    # Outside the block PyTorch's own runs again.
    assert f"aten::{activation}" in op_names(lambda: ours(x).sum().backward())


def test_llama_block_swiglu_functional_silu_under_patch():
    torch.manual_seed(0)
    ref = init_(LlamaBlock().double())
    ours = copy.deepcopy(ref)
    x = torch.randn(2, 9, 32, dtype=torch.float64)
    assert_same_results(ours, ref, [x], patched=True)
    with ta.patch() as p:
        names = op_names(lambda: ours(x).sum().backward())
    assert p.routed == {"torch.nn.functional.silu": 1}
    assert {"torch_activations::silu", "torch_activations::silu_backward"} <= names and "aten::silu" not in names


def _train(model, make_batch, steps, lr, patched=False):
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        x, y = make_batch(step)
        with ta.patch() if patched else _null():
            out = model(x)
        loss = TF.cross_entropy(out.flatten(0, -2), y.flatten()) if y.dtype == torch.long else TF.mse_loss(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_training_losses_track_the_original():
    """20 AdamW steps in float32 of the MLP (modules replaced) and of a tiny
    LLaMA-style language model (F.silu under patch()): every step's loss
    equals the original run's within float32's tolerance."""
    dtype = torch.float32
    steps = 20
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    w_true = torch.randn(16, 16, generator=g, dtype=dtype)
    xs = [torch.randn(32, 16, generator=g, dtype=dtype) for _ in range(steps)]

    def mlp_batch(i):
        return xs[i], torch.tanh(xs[i] @ w_true)

    ref = init_(MLP().to(dtype))
    ours = copy.deepcopy(ref)
    ta.replace_activations(ours)
    l_ref, l_ours = _train(ref, mlp_batch, steps, 1e-2), _train(ours, mlp_batch, steps, 1e-2)

    torch.manual_seed(0)
    seqs = torch.randint(0, 64, (steps, 8, 17), generator=g)

    def lm_batch(i):
        return seqs[i, :, :-1], seqs[i, :, 1:]

    lm_ref = init_(TinyLM().to(dtype))
    lm_ours = copy.deepcopy(lm_ref)
    ll_ref, ll_ours = _train(lm_ref, lm_batch, steps, 1e-2), _train(lm_ours, lm_batch, steps, 1e-2, patched=True)

    assert l_ref[-1] < 0.8 * l_ref[0] and ll_ref[-1] < 0.95 * ll_ref[0]   # both actually learn
    torch.testing.assert_close(torch.tensor(l_ours, dtype=dtype), torch.tensor(l_ref, dtype=dtype))
    torch.testing.assert_close(torch.tensor(ll_ours, dtype=dtype), torch.tensor(ll_ref, dtype=dtype))


# ----------------------------------------------- state, hooks and the report ---
def test_hooks_training_mode_and_handles_survive_replacement():
    model = nn.Sequential(nn.Linear(4, 4), nn.GELU(), nn.Linear(4, 4), nn.PReLU(4)).double()
    model.eval()
    model[1].train()   # a deliberately odd training flag must be kept
    calls = []
    h1 = model[1].register_forward_pre_hook(lambda m, a: calls.append(("pre", type(m).__module__)))
    model[1].register_forward_hook(lambda m, a, out: calls.append(("fwd", type(m).__module__)))
    model[1].register_full_backward_hook(lambda m, gi, go: calls.append(("bwd", type(m).__module__)))
    model[3].register_forward_hook(lambda m, a, out: out * 2)   # a hook that changes the output
    ref = copy.deepcopy(model)
    old_gelu = model[1]
    ta.replace_activations(model)
    assert type(model[1]) is ta.nn.GELU and type(old_gelu) is nn.GELU   # the old module is left as it was
    assert model[1].training and not model[3].training and not model.training
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    model(x).sum().backward()
    assert calls == [("pre", "torch_activations.nn"), ("fwd", "torch_activations.nn"), ("bwd", "torch_activations.nn")]
    torch.testing.assert_close(model(x), ref(x))
    h1.remove()   # a handle taken before the replacement removes the hook from the new module
    calls.clear()
    model(x)
    assert calls == [("fwd", "torch_activations.nn")]


def test_state_dict_device_dtype_and_optimizer_unchanged():
    model = nn.Sequential(nn.Linear(4, 6), nn.PReLU(6, init=0.3), nn.ELU(alpha=0.7, inplace=True)).to(torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    ta.replace_activations(model)
    assert model[1].weight.dtype == torch.float64 and model[1].weight.device.type == "cpu"
    assert model[2].alpha == 0.7 and model[2].inplace
    assert list(model.state_dict()) == list(sd)
    x = torch.randn(5, 4, dtype=torch.float64)
    model(x).sum().backward()
    w = model[1].weight.detach().clone()
    opt.step()   # the optimizer still holds the live parameter
    assert not torch.equal(model[1].weight, w)


def test_report_reasons(monkeypatch):
    class MyReLU(nn.ReLU):
        pass

    # Every torch.nn activation has a counterpart today; drop two to see the
    # report for classes without one.
    monkeypatch.setattr(ta.nn, "__all__", [n for n in ta.nn.__all__ if n not in ("Softmax", "GLU")])

    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Softmax(dim=-1), MyReLU(), ta.nn.GELU(), nn.SiLU(),
                          nn.GLU(), nn.MultiheadAttention(3, 1))
    report = ta.replace_activations(model, exclude=["SiLU"])
    assert report.replaced == [("1", "torch.nn.ReLU", "torch_activations.nn.ReLU")]
    reasons = {name: why for name, _, why in report.left_alone}
    assert reasons["2"] == "unknown class: no torch_activations counterpart"
    assert reasons["6"] == "unknown class: no torch_activations counterpart"
    assert reasons["3"] == "subclass of torch.nn.ReLU, a class of its own"
    assert reasons["4"] == "already torch_activations"
    assert reasons["5"] == "excluded"
    assert "7" not in reasons   # not an activation function
    text = str(report)
    assert "1: torch.nn.ReLU -> torch_activations.nn.ReLU" in text and "excluded" in text


def test_include_exclude_by_class_name_pattern_and_callable():
    def build():
        return nn.ModuleDict({"enc": nn.Sequential(nn.GELU(), nn.ReLU()), "dec": nn.Sequential(nn.GELU(), nn.Tanh())})

    r = ta.replace_activations(build(), include=[nn.GELU])
    assert sorted(n for n, _, _ in r.replaced) == ["dec.0", "enc.0"]
    assert sorted(n for n, _, why in r.left_alone if why == "not included") == ["dec.1", "enc.1"]
    r = ta.replace_activations(build(), include="enc.*")
    assert sorted(n for n, _, _ in r.replaced) == ["enc.0", "enc.1"]
    r = ta.replace_activations(build(), exclude=lambda name, m: name.startswith("dec") and isinstance(m, nn.Tanh))
    assert sorted(n for n, _, _ in r.replaced) == ["dec.0", "enc.0", "enc.1"]
    with pytest.raises(TypeError, match="include/exclude"):
        ta.replace_activations(build(), include=[3])


def test_root_module_and_restore_round_trip():
    r = ta.replace_activations(nn.Hardtanh(-2.0, 3.0))
    assert type(r.module) is ta.nn.Hardtanh and (r.module.min_val, r.module.max_val) == (-2.0, 3.0)

    torch.manual_seed(0)
    ref = init_(MLP().double())
    model = copy.deepcopy(ref)
    model.add_module("swish", ta.nn.Swish(1.5))
    ta.replace_activations(model)
    params = list(model.parameters())
    back = ta.restore_activations(model)
    assert len(back.replaced) == 9
    assert back.left_alone == [("swish", "torch_activations.nn.Swish", "no torch.nn counterpart")]
    assert all(type(m).__module__ != "torch_activations.nn" for n, m in model.named_modules() if n != "swish")
    assert type(model.blocks[1][1]) is nn.PReLU and all(a is b for a, b in zip(model.parameters(), params))
    x = torch.randn(4, 16, dtype=torch.float64)
    assert_same_results(model, ref, [x])
    assert ta.restore_activations(model).left_alone[0][2] == "already torch.nn"


# -------------------------------------------------------------------- patch ---
def test_patch_routes_functional_torch_and_tensor_methods():
    x = torch.randn(4, 5, dtype=torch.float64)
    calls = {
        "torch.nn.functional.gelu": lambda: TF.gelu(x, approximate="tanh"),
        "torch.nn.functional.silu": lambda: TF.silu(x),
        "torch.nn.functional.softplus": lambda: TF.softplus(x, beta=2.0, threshold=5.0),
        "torch.nn.functional.leaky_relu": lambda: TF.leaky_relu(x, 0.2),
        "torch.nn.functional.hardtanh": lambda: TF.hardtanh(x, -0.5, 0.5),
        "torch.nn.functional.threshold": lambda: TF.threshold(x, 0.1, -3.0),
        "torch.nn.functional.prelu": lambda: TF.prelu(x, torch.full((5,), 0.3, dtype=torch.float64)),
        "torch.sigmoid": lambda: torch.sigmoid(x),
        "torch.tanh": lambda: torch.tanh(x),
        "torch.relu": lambda: torch.relu(x),
        "torch.celu": lambda: torch.celu(x, alpha=0.5),
        "torch.Tensor.sigmoid": lambda: x.sigmoid(),
        "torch.Tensor.relu": lambda: x.relu(),
        "torch.Tensor.hardshrink": lambda: x.hardshrink(0.3),
    }
    for label, call in calls.items():
        want = call()
        fragment = label.rsplit(".", 1)[1]
        builtin_ops = {n for n in op_names(call) if n.startswith("aten::") and fragment in n}
        assert builtin_ops, label
        with ta.patch() as p:
            got = call()
            names = op_names(call)
        assert p.routed[label] == 2 and not p.fell_back, (label, p.routed, p.fell_back)
        assert f"torch_activations::{fragment}" in names and not names & builtin_ops, (label, names)
        torch.testing.assert_close(got, want)


def test_patch_inplace_calls_write_in_place():
    x = torch.randn(10, dtype=torch.float64)
    want = TF.relu(x)
    y = x.clone()
    with ta.patch() as p:
        out = TF.relu(y, inplace=True)
        z = x.clone()
        z.relu_()
    assert out is y and torch.equal(y, want) and torch.equal(z, want)
    assert p.routed == {"torch.nn.functional.relu": 1, "torch.Tensor.relu_": 1}


def test_patch_falls_back_where_our_ops_cannot_take_the_call():
    with ta.patch() as p:
        assert torch.equal(torch.relu(torch.arange(-2, 3)), torch.tensor([0, 0, 0, 1, 2]))   # integer
        z = torch.randn(3, dtype=torch.complex64)
        torch.testing.assert_close(torch.sigmoid(z), 1 / (1 + torch.exp(-z)))                # complex
        out = torch.empty(3)
        torch.sigmoid(torch.randn(3), out=out)                                               # out=
        torch.rrelu(torch.randn(3), training=True, generator=torch.Generator())              # generator=
        TF.threshold(torch.randn(3), torch.tensor(0.1), 2.0)                                  # tensor for a float
        assert torch.tanh(torch.randn(3).to_sparse()).layout == torch.sparse_coo             # sparse layout
    assert not p.routed
    assert p.fell_back == {"torch.relu": 1, "torch.sigmoid": 2, "torch.rrelu": 1, "torch.nn.functional.threshold": 1,
                           "torch.tanh": 1}


def _mode_depth():
    return torch._C._len_torch_function_stack()


def test_patch_restores_on_exit_and_exception_and_nests():
    x = torch.randn(6)
    depth = _mode_depth()
    with pytest.raises(ZeroDivisionError):
        with ta.patch():
            TF.gelu(x)
            1 / 0
    assert _mode_depth() == depth
    assert "aten::gelu" in op_names(lambda: TF.gelu(x))
    with ta.patch(include=["gelu"]) as outer:
        with ta.patch(exclude=["gelu"]) as inner:
            TF.gelu(x), TF.silu(x)
        TF.gelu(x), TF.silu(x)
        assert "aten::silu" in op_names(lambda: TF.silu(x))
    assert _mode_depth() == depth
    # The inner block passes gelu on to the enclosing one.
    assert inner.routed == {"torch.nn.functional.silu": 1}
    assert outer.routed == {"torch.nn.functional.gelu": 2}
    with pytest.raises(ValueError, match="not torch_activations.functional names"):
        ta.patch(include=["softmaxx"])


def test_patch_and_replace_compose():
    torch.manual_seed(0)
    ref = init_(TinyLM(layers=1).double())
    ours = copy.deepcopy(ref)
    ta.replace_activations(ours)
    idx = torch.randint(0, 64, (2, 6))
    with ta.patch():
        y = ours(idx)
    torch.testing.assert_close(y, ref(idx))
