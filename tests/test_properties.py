"""Property-based tests (hypothesis): for any shape, memory layout, dtype,
instruction set, parameters and values, ours equal the built-in.

Layouts are drawn as a view into a larger buffer: any dimension order
(transposed, channels-last), steps (slices), zero strides (expanded) and a
start offset of 0-3 elements (a misaligned first element for every dtype).
Sizes include empty, 0-d and odd lengths around the 4/8/16-lane vector widths
and the strided path's 256-element blocks, so the vector body, the scalar
tail and the gather/scatter path all run, under every instruction set the
CPU supports. Values mix random normals at several scales with +-0, +-inf,
NaN, subnormals, huge values, kinks and their float neighbours.

Comparisons follow test_pointwise.py: float32/float64 against the built-in,
float16/bfloat16 against the built-in evaluated in float64 and rounded once,
with the same tolerances, plus four documented rules: limits at +-inf
(README "Numerics"); where the built-in gives inf or NaN for a finite input
because an intermediate overflows (hardswish(3e38), gelu-tanh's derivative
at 3e38), the accurate float64 reference (reference.py) instead;
PyTorch's scalar gradient at NaN inputs and at kinks (its vectorized code
differs there); and no value comparison within a float rounding of
softplus's switch point (the function jumps there, and which side a rounded
input lands on is not meaningful).

The buffer outside each view must never be written. Examples are derandomized
(the same every run) and bounded so the module runs in well under a minute;
TA_HYPOTHESIS_PROFILE=explore draws new, many more examples.
"""
import math
import os

import pytest
import torch
import torch.nn.functional as TF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torch_activations as ta
from torch_activations import functional as F
from torch_activations.optable import CASES, DEFAULT_TOL, OPS_BY_NAME, tol

settings.register_profile("ci", max_examples=300, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("explore", max_examples=5000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = os.environ.get("TA_HYPOTHESIS_PROFILE", "ci")


def examples(n):
    """The profile's settings with n examples in CI (the explore profile
    keeps its own count)."""
    profile = settings.get_profile(PROFILE)
    return settings(profile, max_examples=n if PROFILE == "ci" else profile.max_examples)


DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
LOWP = (torch.float16, torch.bfloat16)
ISAS = ta.supported_cpu_capabilities()
MAX_ELEMENTS = 6000
# Vector widths in elements are 2..16 and the strided path works in blocks of
# 256: lengths on both sides of each.
ODD = [15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 256, 257, 1029]


def sixteenths(lo, hi):
    """Parameters as multiples of 1/16: exact in every dtype, so ours (which
    convert them to the compute type) and the float64 reference see the
    same kinks."""
    return st.integers(int(lo * 16), int(hi * 16)).map(lambda k: k / 16)


# Parameters drawn per op; an op without an entry uses its optable rows.
PARAMS = {
    "leaky_relu": st.fixed_dictionaries({"negative_slope": sixteenths(-2, 2)}),
    "elu": st.fixed_dictionaries({"alpha": sixteenths(-2, 3)}),
    "celu": st.fixed_dictionaries({"alpha": sixteenths(0.0625, 3)}),
    "softplus": st.fixed_dictionaries({"beta": sixteenths(0.0625, 4), "threshold": sixteenths(0.5, 30)}),
    "swish": st.fixed_dictionaries({"beta": sixteenths(-3, 3)}),
    "gelu": st.fixed_dictionaries({"approximate": st.sampled_from(["none", "tanh"])}),
    "hardtanh": st.tuples(sixteenths(-3, 3), sixteenths(-3, 3)).map(
        lambda t: {"min_val": min(t), "max_val": max(t)}),
    "softshrink": st.fixed_dictionaries({"lambd": sixteenths(0, 3)}),
    "hardshrink": st.fixed_dictionaries({"lambd": sixteenths(0, 3)}),
    "threshold": st.fixed_dictionaries({"threshold": sixteenths(-3, 3), "value": sixteenths(-5, 5)}),
}
OP_NAMES = list(dict.fromkeys(op.name for op, _, _ in CASES))


@st.composite
def op_and_params(draw):
    op = OPS_BY_NAME[draw(st.sampled_from(OP_NAMES))]
    if op.name in PARAMS and draw(st.booleans()):
        return op, draw(PARAMS[op.name])
    return op, draw(st.sampled_from(op.params))


@st.composite
def layouts(draw, allow_expand=True, min_dim=0, shape=None):
    """(shape, strides, storage offset, buffer length): a view of a buffer,
    of the given shape or a drawn one."""
    if shape is None:
        ndim = draw(st.integers(min_dim, 4))
        shape = [draw(st.integers(0, 6)) for _ in range(ndim)]
        if ndim and draw(st.booleans()):
            shape[draw(st.integers(0, ndim - 1))] = draw(st.sampled_from(ODD))
        while math.prod(shape) > MAX_ELEMENTS:
            shape[shape.index(max(shape))] //= 2
    shape = list(shape)
    ndim = len(shape)
    if ndim == 4 and draw(st.booleans()):
        order = [1, 3, 2, 0]  # channels-last: C fastest, then W, H, N
    else:
        order = draw(st.permutations(range(ndim)))  # fastest first
    steps = [draw(st.sampled_from([1, 1, 1, 2, 3])) for _ in range(ndim)]
    strides = [0] * ndim
    span = 1
    for d in order:
        strides[d] = span * steps[d]
        span *= max(shape[d] * steps[d], 1)
    if allow_expand:
        for d in range(ndim):
            if shape[d] > 1 and draw(st.integers(0, 7)) == 0:
                strides[d] = 0
    offset = draw(st.integers(0, 3))
    return shape, strides, offset, offset + span + draw(st.integers(0, 3))


SPECIALS = [0.0, -0.0, math.inf, -math.inf, math.nan, 1e-40, -1e-40, 1e-310, -1e-310, 1.2e-38, -1.2e-38,
            3e38, -3e38, 1e4, -1e4, 88.7, -88.7, 1.0, -1.0]


@st.composite
def values(draw, length, dtype, kinks=()):
    """A buffer of `length` values: random normals at a drawn scale, with
    special values and kinks (and their float neighbours) at drawn places."""
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    scale = draw(st.sampled_from([1.0, 3.0, 1e-3, 30.0, 1e4]))
    buf = torch.randn(length, generator=g, dtype=torch.float64) * scale
    pool = list(SPECIALS)
    for k in kinks:
        kt = torch.tensor(k, dtype=dtype)
        pool += [k, torch.nextafter(kt, torch.tensor(math.inf, dtype=dtype)).item(),
                 torch.nextafter(kt, torch.tensor(-math.inf, dtype=dtype)).item(), -k]
    if length and pool:
        picks = draw(st.lists(st.tuples(st.integers(0, length - 1), st.sampled_from(pool)), max_size=12))
        for i, v in picks:
            buf[i] = v
        if draw(st.booleans()):  # a dense sprinkle as well
            where = torch.rand(length, generator=g) < 0.2
            choice = torch.tensor(pool, dtype=torch.float64)[torch.randint(len(pool), (length,), generator=g)]
            buf = torch.where(where, choice, buf)
    return buf.to(dtype)


def view(buf, layout):
    shape, strides, offset, _ = layout
    return buf.as_strided(shape, strides, offset)


def overlapping(layout):
    shape, strides, _, _ = layout
    return any(s == 0 and n > 1 for n, s in zip(shape, strides))


def with_isa(isa, fn):
    before = ta.cpu_capability()
    ta.set_cpu_capability(isa)
    try:
        return fn()
    finally:
        ta.set_cpu_capability(before)


def scalar_derivative(op, params, v):
    """PyTorch's derivative at v through its scalar code (one element), in
    float64."""
    x = torch.tensor([v], dtype=torch.float64, requires_grad=True)
    y = op.ref(x, **params)
    (d,) = torch.autograd.grad(y, x, torch.ones_like(y))
    return d.item()


# Ops whose optable reference is a composition of built-ins, not a built-in:
# its intermediate products overflow where the function does not (swish at
# 3e38: x * grad_output is inf, times sigmoid'(x) = 0 gives NaN), so it is
# evaluated in float64 for every dtype.
COMPOSED = {"swish"}


def limits(op, params):
    """The optable's limits hold for its parameter sets; swish's depend on
    the sign of the drawn beta (beta = 0 is x / 2)."""
    if op.name == "swish":
        beta = params.get("beta", 1.0)
        if beta < 0:
            return {-math.inf: (-math.inf, 1.0), math.inf: (0.0, 0.0)}
        if beta == 0:
            return {-math.inf: (-math.inf, 0.5), math.inf: (math.inf, 0.5)}
    return op.limits


def expected(op, params, x, go):
    """The built-in's value and gradient for x (a view), in x's dtype;
    float16/bfloat16 from float64 and rounded once."""
    dtype = x.dtype
    wide = dtype in LOWP or op.name in COMPOSED
    xr = x.detach().to(torch.float64) if wide else x.detach().clone()
    xr.requires_grad_(True)
    y = op.ref(xr, **params)
    if y.numel() == 0:
        return y.detach().to(dtype), torch.zeros(x.shape, dtype=dtype)
    if wide and op.saves == "output":
        # The backward reads the rounded output, as PyTorch's does.
        g = op.ref_backward(go.to(torch.float64), y.detach().to(dtype).to(torch.float64))
    else:
        (g,) = torch.autograd.grad(y, xr, go.to(xr.dtype))
    y, g = y.detach(), g.detach().to(torch.float64)
    x64 = x.detach().to(torch.float64)
    go64 = go.to(torch.float64)
    # Where the built-in gives inf or NaN for a finite input because an
    # intermediate overflows (hardswish(3e38): x * 6 is inf; gelu-tanh's
    # derivative at 3e38: x**3), the accurate float64 reference decides.
    finite = torch.isfinite(x64)
    lost_y, lost_g = ~torch.isfinite(y) & finite, ~torch.isfinite(g) & finite
    if lost_y.any() or lost_g.any():
        fx, dfx = op.exact(x64, **params)
        y = torch.where(lost_y, fx.to(y.dtype), y)
        g = torch.where(lost_g, go64 * dfx, g)
    # Documented rules (module docstring): limits, then PyTorch's scalar
    # gradient at NaN and at kinks.
    for v, (fv, dv) in limits(op, params).items():
        at = x64 == v
        y = torch.where(at, torch.tensor(fv, dtype=y.dtype), y)
        g = torch.where(at, go64 * dv, g)
    for v in [math.nan] + op.kinks(params) + [-k for k in op.kinks(params)]:
        at = x64.isnan() if math.isnan(v) else x64 == v
        if at.any():
            g = torch.where(at, go64 * scalar_derivative(op, params, v), g)
    return y.to(dtype), g.to(dtype)


def compare(op, params, x, ours, ref, dtype, what):
    rtol, atol = tol(op, dtype)
    keep = torch.ones(x.shape, dtype=torch.bool)
    for s in op.switches(params):
        keep &= (x.detach().to(torch.float64) - s).abs() > 1e-6 * max(1.0, abs(s))
    torch.testing.assert_close(torch.where(keep, ours, ref), ref, rtol=rtol, atol=atol, equal_nan=True,
                               msg=lambda m: f"{what}: {m}")


def assert_untouched(buf, before, layout, written):
    """Every buffer element outside the written view keeps its bits."""
    mask = torch.ones(buf.numel(), dtype=torch.bool)
    if written:
        shape, strides, offset, _ = layout
        idx = torch.arange(buf.numel()).as_strided(shape, strides, offset)
        mask[idx.reshape(-1)] = False
    a, b = buf[mask], before[mask]
    assert torch.equal(a.view(torch.int16 if a.element_size() == 2 else
                              torch.int32 if a.element_size() == 4 else torch.int64),
                       b.view(torch.int16 if b.element_size() == 2 else
                              torch.int32 if b.element_size() == 4 else torch.int64)), "wrote outside the view"


@examples(1000)
@given(case=op_and_params(), dtype=st.sampled_from(DTYPES), isa=st.sampled_from(ISAS), data=st.data())
def test_pointwise_ops_equal_builtin_for_any_layout_and_values(case, dtype, isa, data):
    op, params = case
    layout = data.draw(layouts())
    buf = data.draw(values(layout[3], dtype, op.kinks(params) + op.switches(params)))
    before = buf.clone()
    x = view(buf, layout)
    # grad_output in a layout of its own (finite values: its specials are not
    # what is under test).
    go_layout = data.draw(layouts(shape=layout[0]), label="grad_output layout")
    go_seed = data.draw(st.integers(0, 2**31 - 1), label="grad_output seed")
    go = view(torch.randn(go_layout[3], generator=torch.Generator().manual_seed(go_seed),
                          dtype=torch.float64).to(dtype), go_layout)
    what = f"{op.name}{params} {dtype} {isa} shape {layout[0]} strides {layout[1]} offset {layout[2]}"

    def run():
        xa = x.detach().requires_grad_(True)
        y = op.ours(xa, **params)
        g = torch.autograd.grad(y, xa, go)[0] if y.numel() else torch.zeros(x.shape, dtype=dtype)
        return y.detach(), g

    y, g = with_isa(isa, run)
    assert_untouched(buf, before, layout, written=False)
    builtin = op.ref(x.detach(), **params) if op.name != "swish" else None
    if builtin is not None:
        assert y.dtype == builtin.dtype and y.shape == builtin.shape, what
        if y.numel() > 1:
            # Only dimensions of size > 1: the stride of a size-1 dimension
            # carries no information (PyTorch's clamp-based hardtanh keeps
            # the input's there, its other ops do not).
            def strides(t):
                return [st for st, n in zip(t.stride(), t.shape) if n > 1]

            assert strides(y) == strides(builtin), f"{what}: strides {y.stride()} vs {builtin.stride()}"
    ry, rg = expected(op, params, x, go)
    compare(op, params, x, y, ry, dtype, f"{what} forward")
    compare(op, params, x, g, rg, dtype, f"{what} backward")

    if not overlapping(layout):
        # Every op has an in-place operator (the functional wrappers expose
        # PyTorch's subset): it writes exactly the out-of-place result into
        # the view and nothing around it.
        expect = buf.clone()
        view(expect, layout).copy_(y)
        fwd = getattr(ta.ops, op.name).default._schema
        args = [params.get(a.name, a.default_value) for a in fwd.arguments[1:]]
        with_isa(isa, lambda: getattr(ta.ops, op.name + "_")(view(buf, layout), *args))
        torch.testing.assert_close(buf, expect, rtol=0, atol=0, equal_nan=True,
                                   msg=lambda m: f"{what}: in-place differs from out-of-place or wrote outside: {m}")


@examples(400)
@given(name=st.sampled_from(["prelu", "swish_learnable"]), dtype=st.sampled_from(DTYPES),
       isa=st.sampled_from(ISAS), data=st.data())
def test_parametric_ops_equal_builtin_for_any_layout(name, dtype, isa, data):
    layout = data.draw(layouts(min_dim=1))
    buf = data.draw(values(layout[3], dtype, [0.0]))
    before = buf.clone()
    x = view(buf, layout)
    channels = x.shape[1] if x.dim() >= 2 else 1
    n = data.draw(st.sampled_from([1, channels]), label="parameter elements")
    w = (torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(n)) * 2 - 0.5).to(dtype)
    if data.draw(st.booleans(), label="0-d parameter") and n == 1:
        w = w.reshape(())
    go = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(7)).to(dtype)
    what = f"{name} {dtype} {isa} shape {layout[0]} strides {layout[1]} offset {layout[2]} weight {tuple(w.shape)}"

    def fn(t, v):
        if name == "prelu":
            return F.prelu(t, v)
        return F.swish(t, v)

    def ref(t, v):
        if name == "prelu":
            return TF.prelu(t, v)
        b = v.reshape([1, -1] + [1] * (t.dim() - 2)) if v.numel() != 1 else v.reshape(())
        return t * torch.sigmoid(b * t)

    def run():
        xa, wa = x.detach().requires_grad_(True), w.clone().requires_grad_(True)
        y = fn(xa, wa)
        if not y.numel():
            return y.detach(), None, None
        gx, gw = torch.autograd.grad(y, (xa, wa), go)
        return y.detach(), gx, gw

    y, gx, gw = with_isa(isa, run)
    assert_untouched(buf, before, layout, written=False)
    # swish has no built-in: its reference is the composition in float64.
    wide = torch.float64 if dtype in LOWP or name == "swish_learnable" else dtype
    xr, wr = x.detach().to(wide).requires_grad_(True), w.to(wide).requires_grad_(True)
    ry = ref(xr, wr)
    rtol, atol = DEFAULT_TOL[dtype]
    if name == "swish_learnable":
        # The composition has no limits at +-inf: compare finite inputs.
        fin = torch.isfinite(x.detach().to(torch.float64))
    else:
        fin = torch.ones(x.shape, dtype=torch.bool)
    torch.testing.assert_close(torch.where(fin, y, ry.detach().to(dtype)), ry.detach().to(dtype), rtol=rtol,
                               atol=atol, equal_nan=True, msg=lambda m: f"{what} forward: {m}")
    if gx is None:
        return
    rgx, rgw = torch.autograd.grad(ry, (xr, wr), go.to(wide))
    ok = fin if name == "swish_learnable" else torch.ones(x.shape, dtype=torch.bool)
    torch.testing.assert_close(torch.where(ok, gx, rgx.to(dtype)), rgx.to(dtype), rtol=rtol, atol=atol,
                               equal_nan=True, msg=lambda m: f"{what} grad input: {m}")
    # The parameter's gradient is a sum over every element of its channel:
    # each term is good to the dtype's precision, so the sum is good to
    # rtol times the sum of the terms' magnitudes (the standard bound for a
    # sum; with cancellation that exceeds rtol times the result). Compared
    # where no term is NaN or infinite and no partial sum can overflow (then
    # the result depends on the order of summation).
    x64 = x.detach().to(torch.float64)
    wf = (w.to(torch.float64).reshape([1, -1] + [1] * (x.dim() - 2)) if w.numel() != 1
          else w.to(torch.float64).reshape(())).expand(x.shape).clone().requires_grad_(True)
    xf = x64.clone().requires_grad_(True)
    per_elem = torch.where(xf > 0, xf, wf * xf) if name == "prelu" else xf * torch.sigmoid(wf * xf)
    (terms,) = torch.autograd.grad(per_elem, wf, go.to(torch.float64))
    magnitude = terms.abs().sum(dim=[d for d in range(x.dim()) if d != 1 or w.numel() == 1])
    magnitude = magnitude.reshape(w.shape)
    if ok.all() and bool(torch.isfinite(terms).all()) and bool(magnitude.sum() < torch.finfo(dtype).max):
        err = (gw.to(torch.float64) - rgw.to(torch.float64)).abs()
        allowed = atol + rtol * magnitude
        assert bool((err <= allowed).all()), f"{what} grad weight: {gw} vs {rgw}, error {err}, allowed {allowed}"


@examples(300)
@given(dtype=st.sampled_from([torch.float32, torch.float64, torch.bfloat16]), training=st.booleans(),
       inplace=st.booleans(), bounds=st.tuples(sixteenths(-1, 1), sixteenths(-1, 1)).map(sorted), data=st.data())
def test_rrelu_equals_builtin_draw_for_draw_in_any_layout(dtype, training, inplace, bounds, data):
    layout = data.draw(layouts(allow_expand=not inplace))
    buf = data.draw(values(layout[3], dtype, [0.0]))
    lower, upper = bounds
    a, b = buf.clone(), buf.clone()
    torch.manual_seed(11)
    ya = F.rrelu(view(a, layout), lower, upper, training, inplace)
    state = torch.get_rng_state()
    torch.manual_seed(11)
    yb = TF.rrelu(view(b, layout), lower, upper, training, inplace)
    assert torch.equal(torch.get_rng_state(), state), "a different number of slopes was drawn"
    what = f"rrelu({lower}, {upper}, training={training}, inplace={inplace}) {dtype} {layout}"
    assert ya.stride() == yb.stride() or ya.numel() <= 1, what
    torch.testing.assert_close(ya, yb, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{what}: {m}")
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{what} buffer: {m}")


# ----------------------------------------- softmax family and gated units ---
def _glu_ref(name):
    act = {"swiglu": TF.silu, "geglu": TF.gelu, "reglu": TF.relu}[name]

    def ref(x, dim):
        a, b = x.chunk(2, dim)
        return act(a) * b

    return ref


ROW_OPS = {
    "softmax": (F.softmax, TF.softmax, lambda go, y, d: torch._softmax_backward_data(go, y, d, y.dtype)),
    "log_softmax": (F.log_softmax, TF.log_softmax,
                    lambda go, y, d: torch._log_softmax_backward_data(go, y, d, y.dtype)),
    "softmin": (F.softmin, TF.softmin, lambda go, y, d: -torch._softmax_backward_data(go, y, d, y.dtype)),
    "glu": (F.glu, TF.glu, None),
    "swiglu": (lambda x, d: F.swiglu(x, dim=d), _glu_ref("swiglu"), None),
    "geglu": (lambda x, d: F.geglu(x, dim=d), _glu_ref("geglu"), None),
    "reglu": (lambda x, d: F.reglu(x, dim=d), _glu_ref("reglu"), None),
}
FINITE = [v for v in SPECIALS if math.isfinite(v) and abs(v) < 1e30]


@examples(500)
@given(name=st.sampled_from(sorted(ROW_OPS)), dtype=st.sampled_from(DTYPES), isa=st.sampled_from(ISAS),
       data=st.data())
def test_row_ops_equal_builtin_for_any_layout(name, dtype, isa, data):
    """The softmax family and the gated units along any dimension of any
    view, finite values (their infinities and NaN have their own tests in
    test_softmax.py and test_gated.py); float16/bfloat16 against the
    built-in in float64 rounded once, the softmax family's gradient from the
    rounded output, as PyTorch's backward reads it."""
    ours, ref, from_output = ROW_OPS[name]
    gated = from_output is None
    layout = data.draw(layouts(min_dim=1))
    shape = list(layout[0])
    dims = [d for d in range(len(shape)) if not gated or shape[d] % 2 == 0]
    if not dims or 0 in shape:
        return
    dim = data.draw(st.sampled_from(dims), label="dim")
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**31 - 1), label="seed"))
    buf = (torch.randn(layout[3], generator=g, dtype=torch.float64) * 3)
    picks = data.draw(st.lists(st.tuples(st.integers(0, layout[3] - 1), st.sampled_from(FINITE)), max_size=8))
    for i, v in picks:
        buf[i] = v
    buf = buf.to(dtype)
    before = buf.clone()
    x = view(buf, layout)
    what = f"{name} dim={dim} {dtype} {isa} shape {layout[0]} strides {layout[1]} offset {layout[2]}"

    def run():
        xa = x.detach().requires_grad_(True)
        y = ours(xa, dim)
        go = torch.linspace(-1, 1, y.numel(), dtype=torch.float64).reshape(y.shape).to(dtype)
        return y.detach(), torch.autograd.grad(y, xa, go)[0], go

    y, gx, go = with_isa(isa, run)
    assert torch.equal(buf.view(torch.uint8), before.view(torch.uint8)), f"{what}: wrote into its input"
    wide = dtype in LOWP
    xr = x.detach().to(torch.float64 if wide else dtype).requires_grad_(True)
    ry = ref(xr, dim)
    if wide and from_output is not None:
        rg = from_output(go.to(torch.float64), y.to(torch.float64), dim)
    else:
        rg = torch.autograd.grad(ry, xr, go.to(xr.dtype))[0]
    rtol, atol = DEFAULT_TOL[dtype]
    torch.testing.assert_close(y, ry.detach().to(dtype), rtol=rtol, atol=atol, msg=lambda m: f"{what} forward: {m}")
    torch.testing.assert_close(gx, rg.to(dtype), rtol=rtol, atol=atol, msg=lambda m: f"{what} backward: {m}")
