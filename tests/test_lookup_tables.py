"""float16 / bfloat16 from lookup tables (ops.cpp): the ops whose arithmetic
costs more than a table read take f(x) and f'(x) from a table of the 65536
possible inputs, filled by their own float32 loop. The result must be the
computed one bit for bit, for every input, in every instruction set, for the
pointwise ops and the gated units that share their tables, whichever way the
loops read the tables (scalar loads or gathers; every test runs with both);
tables are built once enough elements were computed without one, and the
cache stays bounded."""
import os
import threading

import pytest
import torch

import torch_activations as ta
from cpuflags import cpu_flags
from torch_activations import functional as F
from torch_activations.optable import OPS

ops = torch.ops.torch_activations
LOWP = [torch.bfloat16, torch.float16]
TABLE_OPS = set(ops._lookup_table_ops())
CASES = [(op, p) for op in OPS for p in op.params]


@pytest.fixture(autouse=True, params=["scalar", "gather"])
def fresh_tables(request):
    ops._set_lookup_tables(False)
    ops._set_lookup_tables(True)
    ops._set_lookup_reads(request.param)
    yield
    ops._set_lookup_reads("auto")
    ops._set_lookup_tables(False)
    ops._set_lookup_tables(True)


def test_reads_follow_the_mode_the_instruction_set_and_the_cpu():
    before = ta.cpu_capability()
    try:
        for isa in ta.supported_cpu_capabilities():
            ta.set_cpu_capability(isa)
            ops._set_lookup_reads("gather")
            # The baseline build has no gather instruction.
            assert ops._lookup_reads() == ("scalar" if isa == "DEFAULT" else "gather")
            ops._set_lookup_reads("scalar")
            assert ops._lookup_reads() == "scalar"
        ta.set_cpu_capability(before)
        ops._set_lookup_reads("auto")
        flags = cpu_flags()
        if flags is not None and before != "DEFAULT":
            assert ops._lookup_reads() == ("gather" if "avx512_fp16" in flags else "scalar")
    finally:
        ta.set_cpu_capability(before)
    with pytest.raises(RuntimeError, match=r"_set_lookup_reads: mode must be 'auto', 'scalar' or 'gather', got 'fast'"):
        ops._set_lookup_reads("fast")


def every_value(dtype):
    """All 65536 bit patterns of a 16-bit dtype, NaNs and infinities included."""
    return torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(dtype)


def assert_same_bits(a, b):
    # NaN signs and payloads are not specified by IEEE arithmetic (the
    # float16 and float32 loops may order a NaN's operands differently).
    nan = torch.isnan(a)
    assert torch.equal(nan, torch.isnan(b))
    assert torch.equal(torch.where(nan, 0, a.view(torch.int16)), torch.where(nan, 0, b.view(torch.int16)))


def forward_and_grads(fn, x, gs):
    xr = x.clone().requires_grad_(True)
    y = fn(xr)
    return [y.detach()] + [torch.autograd.grad(y, xr, g, retain_graph=True)[0] for g in gs]


def run_both(fn, x, gs):
    """(with tables, computed, number of tables the first built)."""
    with_tables = forward_and_grads(fn, x, gs)
    built = ops._lookup_table_count()
    ops._set_lookup_tables(False)
    try:
        computed = forward_and_grads(fn, x, gs)
    finally:
        ops._set_lookup_tables(True)
    return with_tables, computed, built


def test_table_ops_are_the_costly_smooth_ones():
    assert TABLE_OPS == {"sigmoid", "tanh", "elu", "selu", "celu", "softplus", "silu", "swish", "gelu", "mish",
                         "logsigmoid", "tanhshrink"}


@pytest.mark.parametrize("dtype", LOWP, ids=["bf16", "f16"])
@pytest.mark.parametrize("op,params", CASES, ids=[f"{o.name}-{i}" for o in OPS for i in range(len(o.params))])
def test_every_input_matches_the_computed_result(op, params, dtype):
    x = every_value(dtype)
    gen = torch.Generator().manual_seed(1)
    gs = [torch.randn(x.shape, generator=gen).mul(s).to(dtype) for s in (1.0, 1e-3, 300.0)]
    with_tables, computed, built = run_both(lambda t: op.ours(t, **params), x, gs)
    # The forward table, and the derivative's where the backward reads x.
    expected = (0 if op.name not in TABLE_OPS else 1 if op.saves == "output" else 2)
    assert built == expected
    for a, b in zip(with_tables, computed):
        assert_same_bits(a, b)


@pytest.mark.parametrize("dtype", LOWP, ids=["bf16", "f16"])
@pytest.mark.parametrize("name,params", [("swiglu", {}), ("geglu", {}), ("geglu", {"approximate": "tanh"})])
def test_gated_units_share_the_tables(name, params, dtype):
    perm = torch.randperm(65536, generator=torch.Generator().manual_seed(2))
    a = every_value(dtype)[perm].reshape(128, 512)
    b = torch.randn(128, 512, generator=torch.Generator().manual_seed(3)).to(dtype)
    g = torch.randn(128, 512, generator=torch.Generator().manual_seed(4)).to(dtype)
    fn = getattr(F, name)

    def calls():
        xs = torch.cat([a, b], -1).requires_grad_(True)
        ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
        y_split = fn(xs, dim=-1, **params)
        y_pair = fn(ar, br, **params)
        return [y_split.detach(), *torch.autograd.grad(y_split, xs, g), y_pair.detach(),
                *torch.autograd.grad(y_pair, (ar, br), g)]

    with_tables = calls()
    assert ops._lookup_table_count() == 2  # f and f' of the activation, shared by both forms
    ops._set_lookup_tables(False)
    computed = calls()
    ops._set_lookup_tables(True)
    for u, v in zip(with_tables, computed):
        assert_same_bits(u, v)


def test_every_instruction_set_uses_its_own_tables():
    before = ta.cpu_capability()
    isas = ta.supported_cpu_capabilities()
    x = every_value(torch.bfloat16)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(5)).to(torch.bfloat16)
    fns = (F.gelu, F.mish, lambda t: F.elu(t, 0.5))

    def each_isa():
        out = {}
        for isa in isas:
            ta.set_cpu_capability(isa)
            out[isa] = [forward_and_grads(fn, x, [g]) for fn in fns]
        return out

    try:
        with_tables = each_isa()
        assert ops._lookup_table_count() == 6 * len(isas)
        ops._set_lookup_tables(False)
        computed = each_isa()
    finally:
        ta.set_cpu_capability(before)
    for isa in isas:
        for r, c in zip(with_tables[isa], computed[isa]):
            for u, v in zip(r, c):
                assert_same_bits(u, v)


def test_layouts_read_the_table_through_their_strides():
    base = every_value(torch.bfloat16).reshape(16, 64, 8, 8)
    g = torch.randn(base.shape, generator=torch.Generator().manual_seed(6)).to(torch.bfloat16)
    for x, gx in [(base.transpose(1, 3), g.transpose(1, 3)),
                  (base.contiguous(memory_format=torch.channels_last), g),
                  (base[:, ::2], g[:, ::2]),
                  (base[:1].expand(16, 64, 8, 8), g)]:
        with_tables, computed, _ = run_both(F.gelu, x, [gx])
        assert with_tables[0].stride() == computed[0].stride()
        for u, v in zip(with_tables, computed):
            assert_same_bits(u, v)


def test_small_calls_build_a_table_once_they_have_paid_for_it():
    x = torch.randn(4096).to(torch.bfloat16)
    expected = F.gelu(x)  # the first 4096 elements computed
    for _ in range(14):
        assert torch.equal(F.gelu(x), expected)
    assert ops._lookup_table_count() == 0  # 15 * 4096 < 65536
    assert torch.equal(F.gelu(x), expected)
    assert ops._lookup_table_count() == 1
    # Other parameters, dtype or direction count separately.
    F.gelu(x, approximate="tanh")
    F.gelu(x.half())
    assert ops._lookup_table_count() == 1
    F.gelu(torch.randn(65536).half())
    assert ops._lookup_table_count() == 2


def test_float32_and_float64_never_use_tables():
    for dtype in (torch.float32, torch.float64):
        F.gelu(torch.randn(1 << 17, dtype=dtype))
    assert ops._lookup_table_count() == 0


def test_the_cache_is_bounded_and_keeps_results_exact():
    x = every_value(torch.bfloat16)
    alphas = [0.1 + k / 16 for k in range(40)]
    ops._set_lookup_tables(False)
    computed = [F.elu(x, a) for a in alphas]
    ops._set_lookup_tables(True)
    for _ in range(2):  # the second round finds its first tables dropped
        for a, c in zip(alphas, computed):
            assert_same_bits(F.elu(x, a), c)
            assert ops._lookup_table_count() <= 32
    assert ops._lookup_table_count() == 32


def test_threads_building_the_same_table_agree():
    x = every_value(torch.bfloat16)
    expected = F.mish(x)
    ops._set_lookup_tables(False)
    ops._set_lookup_tables(True)
    results = [None] * 4

    def work(i):
        results[i] = [F.mish(x) for _ in range(3)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ops._lookup_table_count() == 1
    for r in results:
        for y in r:
            assert_same_bits(y, expected)


def test_disabling_drops_every_table():
    F.gelu(torch.randn(1 << 16).to(torch.bfloat16))
    assert ops._lookup_table_count() == 1
    ta.set_lookup_tables(False)
    assert ops._lookup_table_count() == 0
    F.gelu(torch.randn(1 << 16).to(torch.bfloat16))
    assert ops._lookup_table_count() == 0
    ta.set_lookup_tables(True)
    F.gelu(torch.randn(1 << 16).to(torch.bfloat16))
    assert ops._lookup_table_count() == 1


def test_a_forked_child_uses_the_inherited_tables():
    x = every_value(torch.bfloat16)
    expected = F.gelu(x)
    assert ops._lookup_table_count() == 1
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery, just an exit status
        # OpenMP's threads do not survive a fork (PyTorch's own ops hang in
        # such a child too), so the child runs on one thread.
        torch.set_num_threads(1)
        ok = ops._lookup_table_count() == 1 and torch.equal(F.gelu(x).view(torch.int16), expected.view(torch.int16))
        F.mish(x)
        ok = ok and ops._lookup_table_count() == 2
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_table_build_adds_no_operators_to_a_profile():
    x = torch.randn(1 << 16).to(torch.bfloat16)

    def names():
        with torch.profiler.profile() as prof:
            F.gelu(x)
        return sorted(e.name for e in prof.events())

    building = names()
    assert ops._lookup_table_count() == 1
    assert building == names()
    assert "torch_activations::gelu" in building


def test_flushing_denormals_gets_tables_of_its_own():
    threads = torch.get_num_threads()
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        # The mode belongs to the calling thread: one thread computes all.
        torch.set_num_threads(1)
        x = every_value(torch.bfloat16)
        for fn in (F.gelu, F.silu):
            _, computed, _ = run_both(fn, x, [])
            assert_same_bits(fn(x), computed[0])
        flushed = F.gelu(x)  # from the table just built with flushing on
        torch.set_flush_denormal(False)
        with_tables, computed, _ = run_both(F.gelu, x, [])
        assert_same_bits(with_tables[0], computed[0])
        plain = F.gelu(x)
        # Denormal inputs read as zero in one mode and not in the other.
        assert not torch.equal(flushed.view(torch.int16), plain.view(torch.int16))
        assert ops._lookup_table_count() == 1
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)
