"""``python -m torch_activations bench``: side-by-side CPU benchmarks.

For every op (or the selected ones), size, dtype and mode (forward, and
forward+backward through autograd) it times, interleaved and repeated:

  ours       the torch_activations op
  eager      PyTorch: the built-in, or for swiglu/geglu/reglu the composition a
             model writes without a fused op (F.silu(a) * b, ...)
  compiled   torch.compile (Inductor, dynamic shapes, fullgraph) of the eager
             expression
  copy       a memory copy (into a preallocated tensor) moving as many bytes as
             the op must at least move: the physical limit
and, for the pointwise forward ops, the same with a preallocated output:
  ours_out   torch.ops.torch_activations.<op>.out, when that overload exists
  eager_out  PyTorch's ATen out= kernel that the F.* function runs, when there
             is one (softsign, tanhshrink and swish are compositions: n/a)
  clone      a memory copy into a fresh tensor (the baseline's allocation cost)

Medians over the repeats; ratios are eager time / time (higher is better).
It also measures the peak memory of forward+backward of the gated units and
of cross entropy in fresh processes (benchpeak.py), checks the targets, and
writes BENCHMARKS.md and a PNG chart.
"""
import datetime
import gc
import math
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as TF

from . import functional as F
from .optable import OPS

KI = 1024
SIZES = (4 * KI, 64 * KI, KI * KI, 16 * KI * KI)
DTYPES = (torch.float32, torch.bfloat16)
MODES = ("fwd", "fwd+bwd")
ROW = 4096                          # row length of the row ops (softmax, gated, cross entropy)
PRELU_CHANNELS = 64
SHORT = 64                          # row length of log_softmax_short
CHANNELS = 64                       # reduced dimension of softmax_channels
# Ops that do a few instructions per element: with a preallocated output they
# should run at the speed of a memory copy of the same bytes.
CHEAP = ("relu", "leaky_relu", "hardtanh", "relu6", "threshold", "hardshrink", "softshrink", "hardsigmoid",
         "hardswish")
GATED_COMPOSED = ("swiglu", "geglu", "reglu")

# The targets the summary checks.
T_EACH = 1.0            # every op at >= 64K elements, both modes, ours/eager
T_GEOMEAN = 1.3         # geometric mean over ops at >= 64K, per dtype and mode
T_GATED_EAGER = 1.5     # gated forward+backward against the eager composition
T_GATED_COMPILED = 1.0  # ... and against torch.compile of it
T_CE_PEAK = 0.5         # cross entropy peak memory / PyTorch's at vocabulary 32K
T_CHEAP_COPY = 0.8      # cheap ops, preallocated output: fraction of memcpy speed at 16M
T_OVERHEAD = 1.2        # 4K elements: our time / eager time at most


@dataclass
class Case:
    """One benchmarked op. make(size, dtype) returns the inputs; ours and
    eager take them positionally and return one tensor."""
    name: str
    kind: str                                   # pointwise, parametric, rows, gated, loss
    make: Callable[[int, torch.dtype], Tuple[torch.Tensor, ...]]
    ours: Callable
    eager: Callable
    grad_inputs: Tuple[int, ...] = (0,)         # inputs differentiated in fwd+bwd
    moved: Tuple[float, float] = (2.0, 5.0)     # least elements moved (fwd, fwd+bwd) per input element
    ours_out: Optional[Callable] = None         # (x, out) -> out
    eager_out: Optional[Callable] = None
    note: str = ""


def _randn(size: int, dtype: torch.dtype, scale: float = 3.0, shape=None, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(size, generator=g) * scale
    return x.to(dtype).reshape(shape if shape is not None else (size,))


def _rows(size: int) -> Tuple[int, int]:
    return max(1, size // ROW), min(size, ROW)


# PyTorch's ATen out= kernel behind each F.* function, with our default
# parameters, for the preallocated-output comparison.
def _aten_out(name: str, p: dict) -> Optional[Callable]:
    A = torch.ops.aten
    selu_alpha, selu_scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    table = {
        "sigmoid": lambda x, o: A.sigmoid.out(x, out=o),
        "tanh": lambda x, o: A.tanh.out(x, out=o),
        "relu": lambda x, o: A.relu.out(x, out=o),
        "leaky_relu": lambda x, o: A.leaky_relu.out(x, p.get("negative_slope", 0.01), out=o),
        "elu": lambda x, o: A.elu.out(x, p.get("alpha", 1.0), out=o),
        "selu": lambda x, o: A.elu.out(x, selu_alpha, selu_scale, out=o),
        "celu": lambda x, o: A.elu.out(x, p.get("alpha", 1.0), 1.0, 1.0 / p.get("alpha", 1.0), out=o),
        "softplus": lambda x, o: A.softplus.out(x, p.get("beta", 1.0), p.get("threshold", 20.0), out=o),
        "silu": lambda x, o: A.silu.out(x, out=o),
        "gelu": lambda x, o: A.gelu.out(x, approximate=p.get("approximate", "none"), out=o),
        "mish": lambda x, o: A.mish.out(x, out=o),
        "relu6": lambda x, o: A.hardtanh.out(x, 0.0, 6.0, out=o),
        "hardtanh": lambda x, o: A.hardtanh.out(x, p.get("min_val", -1.0), p.get("max_val", 1.0), out=o),
        "hardsigmoid": lambda x, o: A.hardsigmoid.out(x, out=o),
        "hardswish": lambda x, o: A.hardswish.out(x, out=o),
        "logsigmoid": lambda x, o: A.log_sigmoid.out(x, out=o),
        "softshrink": lambda x, o: A.softshrink.out(x, p.get("lambd", 0.5), out=o),
        "hardshrink": lambda x, o: A.hardshrink.out(x, p.get("lambd", 0.5), out=o),
        "threshold": lambda x, o: A.threshold.out(x, p["threshold"], p["value"], out=o),
    }
    return table.get(name)


def _ours_out(name: str, p: dict, ns=None) -> Optional[Callable]:
    """Our out= overload, if the library has one, with the parameters passed
    positionally in the order of the op's schema."""
    packet = getattr(ns if ns is not None else torch.ops.torch_activations, name)
    if "out" not in packet.overloads():
        return None
    args = []
    for a in packet.default._schema.arguments[1:]:
        if a.kwarg_only:
            continue
        if a.name in p:
            args.append(p[a.name])
        elif a.has_default_value():
            args.append(a.default_value)
        else:
            raise ValueError(f"bench: no value for argument {a.name} of torch_activations::{name}")
    out_op = packet.out
    return lambda x, o: out_op(x, *args, out=o)


def cases() -> List[Case]:
    out: List[Case] = []
    for op in OPS:
        p = dict(op.params[0])
        out.append(Case(
            op.name, "pointwise",
            make=lambda n, dt, _s=op.scale: (_randn(n, dt, _s),),
            ours=lambda x, _f=op.ours, _p=p: _f(x, **_p),
            eager=lambda x, _f=op.ref, _p=p: _f(x, **_p),
            ours_out=_ours_out(op.name, p), eager_out=_aten_out(op.name, p),
            note=("eager: x * sigmoid(beta * x) (PyTorch has no swish)" if op.name == "swish" else "")))

    def prelu_make(n, dt):
        c = min(PRELU_CHANNELS, n)
        w = torch.rand(c, generator=torch.Generator().manual_seed(1)) * 0.5
        return _randn(n, dt, shape=(n // c, c)), w.to(dt)
    out.append(Case("prelu", "parametric", prelu_make, F.prelu, TF.prelu, grad_inputs=(0, 1),
                    note=f"x of shape (n/{PRELU_CHANNELS}, {PRELU_CHANNELS}), one weight per channel"))
    out.append(Case("swish_learnable", "parametric",
                    lambda n, dt: (_randn(n, dt), torch.full((1,), 1.3, dtype=dt)),
                    lambda x, b: F.swish(x, b), lambda x, b: x * torch.sigmoid(b * x), grad_inputs=(0, 1),
                    note="tensor beta of one element; eager: x * sigmoid(beta * x)"))

    def rows_make(n, dt):
        return (_randn(n, dt, shape=_rows(n)),)
    for name in ("softmax", "log_softmax", "softmin"):
        out.append(Case(name, "rows", rows_make,
                        lambda x, _f=getattr(F, name): _f(x, -1), lambda x, _f=getattr(TF, name): _f(x, -1),
                        note=f"rows of {ROW}"))

    # The softmax family in the shapes that take other paths of the kernels:
    # masked rows (a padding mask of -inf, whose exp must cost no more than
    # any other), short rows (a classifier's logits) and channels (the
    # reduced dimension of an NCHW tensor, rows adjacent in memory).
    def masked_make(n, dt):
        x = _randn(n, dt, shape=_rows(n))
        x[:, x.shape[1] // 2:] = float("-inf")
        return (x,)
    out.append(Case("softmax_masked", "rows", masked_make, lambda x: F.softmax(x, -1), lambda x: TF.softmax(x, -1),
                    note=f"rows of {ROW}, the second half of each -inf"))
    out.append(Case("log_softmax_short", "rows", lambda n, dt: (_randn(n, dt, shape=(max(1, n // SHORT), SHORT)),),
                    lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1), note=f"rows of {SHORT}"))
    out.append(Case("softmax_channels", "rows",
                    lambda n, dt: (_randn(n, dt, shape=(1, CHANNELS, max(1, n // CHANNELS))),),
                    lambda x: F.softmax(x, 1), lambda x: TF.softmax(x, 1),
                    note=f"x of shape (1, {CHANNELS}, n/{CHANNELS}), over dim 1"))

    half = ROW // 2
    # Gated: the input of n elements is (n / ROW, ROW); output half as wide.
    # Least traffic: forward reads n and writes n/2; backward reads
    # grad_output (n/2) and the input (n) and writes the input's gradient (n).
    gated_moved = (1.5, 4.0)
    out.append(Case("glu", "gated", rows_make, lambda x: F.glu(x, -1), lambda x: TF.glu(x, -1), moved=gated_moved,
                    note="eager: F.glu"))
    acts = {"swiglu": TF.silu, "geglu": TF.gelu, "reglu": TF.relu}
    for name, act in acts.items():
        fused = getattr(F, name)
        out.append(Case(f"{name}", "gated", rows_make, lambda x, _f=fused: _f(x, dim=-1),
                        lambda x, _a=act: (lambda a, b: _a(a) * b)(*x.chunk(2, -1)), moved=gated_moved,
                        note=f"split form; eager: {act.__name__}(a) * b on x.chunk(2, -1)"))

        def pair_make(n, dt):
            r, w = _rows(n)
            x = _randn(n, dt, shape=(r, w))
            return x[:, : w // 2].contiguous(), x[:, w // 2:].contiguous()
        out.append(Case(f"{name}_pair", "gated", pair_make, lambda a, b, _f=fused: _f(a, b),
                        lambda a, b, _a=act: _a(a) * b, grad_inputs=(0, 1), moved=gated_moved,
                        note=f"two tensors (rows, {half}); eager: {act.__name__}(a) * b"))

    def ce_make(n, dt):
        r, w = _rows(n)
        t = torch.randint(0, w, (r,), generator=torch.Generator().manual_seed(2))
        return _randn(n, dt, shape=(r, w)), t
    # Least traffic: forward reads the logits once; backward reads them and
    # writes their gradient.
    out.append(Case("cross_entropy", "loss", ce_make, F.cross_entropy, TF.cross_entropy, moved=(1.0, 3.0),
                    note=f"vocabulary {ROW}, class-index targets, mean"))

    def bce_make(n, dt):
        return _randn(n, dt), torch.rand(n, generator=torch.Generator().manual_seed(3)).to(dt)
    out.append(Case("binary_cross_entropy_with_logits", "loss", bce_make, F.binary_cross_entropy_with_logits,
                    TF.binary_cross_entropy_with_logits, moved=(2.0, 5.0), note="mean"))
    return out


CASES = cases()
CASES_BY_NAME = {c.name: c for c in CASES}


# ---------------------------------------------------------------------- timing
def _timer(fn: Callable[[], object], min_time: float = 2e-3) -> Callable[[], float]:
    """A sampler returning seconds per call, with the iteration count chosen
    so that one sample lasts at least min_time."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time or n >= 1 << 20:
            break
        n = max(n * 2, min(1 << 20, int(n * min_time / max(dt, 1e-9) * 1.2)))

    def sample() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n

    return sample


@dataclass
class Result:
    op: str
    kind: str
    dtype: torch.dtype
    size: int
    mode: str
    times: Dict[str, float] = field(default_factory=dict)   # median seconds per call

    def t(self, who: str) -> float:
        return self.times.get(who, math.nan)

    def ratio(self, who: str = "ours", base: str = "eager") -> float:
        """base time / who time: how many times faster `who` is."""
        return self.t(base) / self.t(who)


def _copy_pair(elements: float, dtype: torch.dtype):
    # A copy reads and writes each element: half the traffic per element copied.
    n = max(1, int(elements // 2))
    src = torch.empty(n, dtype=dtype).fill_(1)
    dst = torch.empty_like(src)
    return src, dst


def _calls(case: Case, inputs, mode: str, compiled: Optional[Callable]) -> Dict[str, Callable]:
    if mode == "fwd":
        calls = {"ours": lambda: case.ours(*inputs), "eager": lambda: case.eager(*inputs)}
        if compiled is not None:
            calls["compiled"] = lambda: compiled(*inputs)
        return calls
    leaves = [t.detach().requires_grad_(i in case.grad_inputs) for i, t in enumerate(inputs)]
    diff = [leaves[i] for i in case.grad_inputs]
    with torch.no_grad():
        y = case.eager(*inputs)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(4)).to(y.dtype) if y.dim() else torch.ones_like(y)

    def run(f):
        return lambda: torch.autograd.grad(f(*leaves), diff, g)

    calls = {"ours": run(case.ours), "eager": run(case.eager)}
    if compiled is not None:
        calls["compiled"] = run(compiled)
    return calls


def _check_out(case: Case, x: torch.Tensor):
    """The out= forms must compute what the functional forms compute: a wrong
    mapping would make the comparison meaningless."""
    for fn, ref, who in ((case.ours_out, case.ours, "ours"), (case.eager_out, case.eager, "PyTorch")):
        if fn is None:
            continue
        o = torch.empty_like(x)
        got = fn(x, o)
        want = ref(x)
        if got is not o or not torch.equal(torch.nan_to_num(o), torch.nan_to_num(want)):
            raise AssertionError(f"bench: {who}'s out= form of {case.name} differs from its functional form")


def bench(cases_: Sequence[Case], sizes=SIZES, dtypes=DTYPES, modes=MODES, repeats: int = 7, big_repeats: int = 5,
          use_compile: bool = True, log=print, cpu: Optional["CpuShare"] = None) -> Tuple[List[Result], Dict[str, float], Dict[str, str]]:
    """Times every case; returns the results, the compile seconds per case and
    the first compile error per case (whose compiled column is then n/a)."""
    import torch._dynamo

    results: List[Result] = []
    compile_s: Dict[str, float] = {}
    compile_errors: Dict[str, str] = {}
    t0_all = time.perf_counter()
    for case in cases_:
        compiled = None
        if use_compile:
            # One compiled function per case, dynamic in the sizes; a fresh
            # cache so that cases sharing a code object (the lambdas above) do
            # not use up each other's recompile budget.
            torch._dynamo.reset()
            compiled = torch.compile(case.eager, dynamic=True, fullgraph=True)
            compile_s[case.name] = 0.0
        for dtype in dtypes:
            for size in sizes:
                inputs = case.make(size, dtype)
                for mode in modes:
                    calls = _calls(case, inputs, mode, compiled)
                    if "compiled" in calls:
                        t0 = time.perf_counter()
                        try:
                            calls["compiled"]()     # compiles (or recompiles) here, untimed
                        except Exception as e:  # noqa: BLE001  (one op's compiler failure must not end the run)
                            msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                            compile_errors.setdefault(case.name, f"{_dt(dtype)}, {_size(size)}, {mode}: "
                                                                 f"{type(e).__name__}: {msg}")
                            log(f"torch.compile failed for {case.name}: {compile_errors[case.name]}")
                            del calls["compiled"]
                        compile_s[case.name] += time.perf_counter() - t0
                    src, dst = _copy_pair(case.moved[mode == "fwd+bwd"] * size, dtype)
                    calls["copy"] = lambda: dst.copy_(src)
                    if mode == "fwd" and case.kind == "pointwise":
                        x = inputs[0]
                        _check_out(case, x)
                        xs, xd = _copy_pair(2 * size, dtype)
                        calls["clone"] = lambda: xs.clone()
                        buf = torch.empty_like(x)
                        if case.ours_out is not None:
                            calls["ours_out"] = lambda: case.ours_out(x, buf)
                        if case.eager_out is not None:
                            calls["eager_out"] = lambda: case.eager_out(x, buf)
                    samplers = {k: _timer(f) for k, f in calls.items()}
                    samples: Dict[str, List[float]] = {k: [] for k in samplers}
                    order = list(samplers)
                    if cpu:
                        cpu.start()
                    for _ in range(big_repeats if size >= 16 * KI * KI else repeats):
                        random.shuffle(order)
                        for k in order:
                            samples[k].append(samplers[k]())
                    if cpu:
                        cpu.stop()
                    r = Result(case.name, case.kind, dtype, size, mode,
                               {k: statistics.median(v) for k, v in samples.items()})
                    results.append(r)
                    log(f"[{time.perf_counter() - t0_all:6.0f}s] {case.name:16s} {_dt(dtype):8s} "
                        f"{_size(size):>4s} {mode:7s} "
                        + " ".join(f"{k}={v * 1e6:.1f}us" for k, v in r.times.items())
                        + f"  ours/eager={r.ratio():.2f}x")
                    del calls, samplers, src, dst
                    gc.collect()
    return results, compile_s, compile_errors


# ---------------------------------------------------------------------- report
def geomean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else math.nan


def _dt(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _size(n: int) -> str:
    return f"{n // (KI * KI)}M" if n >= KI * KI else f"{n // KI}K"


def _f(x: float, fmt: str = "{:.2f}") -> str:
    return fmt.format(x) if math.isfinite(x) else "n/a"


def _pct(x: float) -> str:
    """A fraction as a percentage, with two significant digits below 10%."""
    if not math.isfinite(x):
        return "n/a"
    return f"{100 * x:.0f}%" if x >= 0.1 else f"{100 * x:.2g}%"


BUSY = 0.05     # share of the machine's CPU time used by others above which the report warns


class CpuShare:
    """The share of the machine's CPU time that other processes (and other
    virtual machines: steal time) used during the timed intervals: all busy
    time from /proc/stat minus this process's own (Linux; NaN elsewhere)."""

    def __init__(self):
        self.others_j = self.total_j = 0
        self._at = None

    @staticmethod
    def _snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = sum(v) - v[3] - (v[4] if len(v) > 4 else 0)      # all but idle and iowait
        with open("/proc/self/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()
        return busy, sum(v), int(st[11]) + int(st[12])           # utime, stime of all threads

    def start(self):
        try:
            self._at = self._snap()
        except (OSError, ValueError, IndexError):
            self._at = None

    def stop(self):
        if self._at is None:
            return
        b1, t1, s1 = self._snap()
        b0, t0, s0 = self._at
        self.others_j += max(0, (b1 - b0) - (s1 - s0))
        self.total_j += t1 - t0
        self._at = None

    def others(self) -> float:
        return self.others_j / self.total_j if self.total_j else math.nan


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return math.nan


def _x(x: float) -> str:
    return f"{x:.2f}x" if math.isfinite(x) else "n/a"


def machine_info(threads: int) -> List[Tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return [("CPU", cpu), ("logical CPUs", str(os.cpu_count())), ("threads (torch.get_num_threads)", str(threads)),
            ("instruction set, ours", torch.ops.torch_activations._cpu_capability()),
            ("instruction set, PyTorch's", torch.backends.cpu.get_cpu_capability()),
            ("float16/bfloat16 lookup-table reads", torch.ops.torch_activations._lookup_reads()),
            ("torch", torch.__version__), ("Python", platform.python_version()),
            ("OS", f"{platform.system()} {platform.release()}")]


def summarize(results: List[Result], gated_mem: List[dict], ce_mem: List[dict]):
    """The summary metrics and the list of (op, dtype, size, mode) missing a target."""
    big = [r for r in results if r.size >= 64 * KI]
    summary = {"geomean": {}, "overhead": {}, "cheap": [], "gated": []}
    misses: List[str] = []
    for dtype in sorted({r.dtype for r in results}, key=str):
        for mode in MODES:
            rows = [r for r in big if r.dtype == dtype and r.mode == mode]
            if rows:
                gm = geomean([r.ratio() for r in rows])
                summary["geomean"][(dtype, mode)] = gm
                if not gm >= T_GEOMEAN:
                    misses.append(f"geometric mean, {_dt(dtype)}, {mode}: {_f(gm)}x < {T_GEOMEAN}x")
            small = [r for r in results if r.size == 4 * KI and r.dtype == dtype and r.mode == mode]
            if small:
                over = [r.t("ours") / r.t("eager") for r in small]
                summary["overhead"][(dtype, mode)] = (geomean(over), max(over), small[over.index(max(over))].op)
    for r in big:
        if not r.ratio() >= T_EACH:
            misses.append(f"{r.op}, {_dt(r.dtype)}, {_size(r.size)}, {r.mode}: ours/eager {_f(r.ratio())}x < {T_EACH}x")
    for r in results:
        if r.size == 4 * KI and not r.t("ours") / r.t("eager") <= T_OVERHEAD:
            misses.append(f"{r.op}, {_dt(r.dtype)}, 4K, {r.mode}: per-call time {_f(r.t('ours') / r.t('eager'))}x "
                          f"eager's > {T_OVERHEAD}x")
    for r in results:
        base = r.op.replace("_pair", "")
        if base in GATED_COMPOSED and r.mode == "fwd+bwd" and r.size >= 64 * KI:
            summary["gated"].append(r)
            if not r.ratio() >= T_GATED_EAGER:
                misses.append(f"{r.op}, {_dt(r.dtype)}, {_size(r.size)}, fwd+bwd: {_f(r.ratio())}x the eager "
                              f"composition < {T_GATED_EAGER}x")
            if "compiled" in r.times and not r.ratio(base="compiled") >= T_GATED_COMPILED:
                misses.append(f"{r.op}, {_dt(r.dtype)}, {_size(r.size)}, fwd+bwd: {_f(r.ratio(base='compiled'))}x "
                              f"torch.compile < {T_GATED_COMPILED}x")
    largest = max((r.size for r in results), default=0)
    for r in results:
        if r.op in CHEAP and r.mode == "fwd" and r.size == largest:
            summary["cheap"].append(r)
            if largest < 16 * KI * KI:
                continue
            if "ours_out" not in r.times:
                misses.append(f"{r.op}, {_dt(r.dtype)}, 16M, fwd: no out= overload, so no preallocated-output "
                              f"time to compare with memcpy (target {T_CHEAP_COPY:.0%})")
            elif not r.t("copy") / r.t("ours_out") >= T_CHEAP_COPY:
                misses.append(f"{r.op}, {_dt(r.dtype)}, 16M, fwd: preallocated output at "
                              f"{r.t('copy') / r.t('ours_out'):.0%} of memcpy speed < {T_CHEAP_COPY:.0%}")
    for m in ce_mem:
        if m["vocab"] == 32768 and not m["ratio"] <= T_CE_PEAK:
            misses.append(f"cross_entropy peak memory, vocab 32K, {m['dtype']}, smoothing {m['smoothing']}: "
                          f"{m['ratio']:.2f}x PyTorch's > {T_CE_PEAK}x")
    return summary, misses


def render(results: List[Result], compile_s: Dict[str, float], gated_mem: List[dict], ce_mem: List[dict],
           meta: dict, png_rel: Optional[str]) -> str:
    summary, misses = summarize(results, gated_mem, ce_mem)
    L: List[str] = ["# Benchmarks", ""]
    L += [f"Generated by `{meta['command']}` on {meta['date']} in {meta['elapsed'] / 60:.1f} minutes "
          f"({meta['compile_total']:.0f} s of it compiling). Regenerate with `make bench` "
          "(or `python -m torch_activations bench`; `--help` lists the options).", ""]
    if meta.get("quick"):
        L += ["**Quick run (`--quick`): small sizes and few repeats, for a smoke test; these numbers are not "
              "the library's performance.**", ""]
    if meta.get("others", 0) > BUSY:
        L += [f"**Other processes used {meta['others']:.0%} of the machine's CPU time while this run was timing "
              "(more than {:.0%}): they competed for the cores, so the timings are not reliable. Rerun on an "
              "idle machine.**".format(BUSY), ""]
    L += ["## Machine", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in meta["machine"]] + [""]

    L += ["## Summary", "",
          "Ratios are PyTorch eager time / our time: higher is better, 1.00 is parity.", ""]
    L += ["| dtype | mode | geometric mean, ours/eager, >= 64K | 4K per-call time, ours/eager (geomean) | "
          "4K worst |", "|---|---|---|---|---|"]
    for (dtype, mode), gm in summary["geomean"].items():
        o = summary["overhead"].get((dtype, mode))
        L.append(f"| {_dt(dtype)} | {mode} | {_f(gm)}x | "
                 + (f"{_f(o[0])} | {_f(o[1])} ({o[2]}) |" if o else "n/a | n/a |"))
    for (dtype, mode), o in summary["overhead"].items():
        if (dtype, mode) not in summary["geomean"]:
            L.append(f"| {_dt(dtype)} | {mode} | n/a | {_f(o[0])} | {_f(o[1])} ({o[2]}) |")
    L.append("")
    if summary["cheap"]:
        size = summary["cheap"][0].size
        L += [f"Cheap ops at {_size(size)} elements, forward: speed as a fraction of a memory copy of the same "
              "bytes (copy time / op time; 100% = at the bandwidth limit)"
              + ("" if size >= 16 * KI * KI else "; the target is checked at 16M, which this run left out") + ":", "",
              "| op | dtype | ours, preallocated (out=) | ours, fresh output | PyTorch, preallocated (out=) | "
              "PyTorch, fresh output |", "|---|---|---|---|---|---|"]
        for r in summary["cheap"]:
            pct = lambda who: _pct(r.t("copy") / r.t(who))  # noqa: E731
            L.append(f"| {r.op} | {_dt(r.dtype)} | {pct('ours_out')} | {pct('ours')} | {pct('eager_out')} | "
                     f"{pct('eager')} |")
        L.append("")
    if summary["gated"]:
        L += ["Gated units, forward+backward: ours against the eager composition and against torch.compile of it:",
              "", "| op | dtype | size | x eager | x compiled |", "|---|---|---|---|---|"]
        for r in summary["gated"]:
            L.append(f"| {r.op} | {_dt(r.dtype)} | {_size(r.size)} | {_f(r.ratio())} | "
                     f"{_f(r.ratio(base='compiled'))} |")
        L.append("")
    if meta.get("compile_errors"):
        L += [f"torch.compile failed for {', '.join(meta['compile_errors'])}: see Compile time.", ""]
    L += ["### Targets missed", "",
          f"Targets: every op >= {T_EACH}x eager at >= 64K elements in both modes; geometric mean >= {T_GEOMEAN}x; "
          f"swiglu/geglu/reglu forward+backward >= {T_GATED_EAGER}x the eager composition and >= "
          f"{T_GATED_COMPILED}x torch.compile; cross entropy >= {T_EACH}x eager with peak memory <= {T_CE_PEAK}x "
          f"PyTorch's at vocabulary 32K; cheap ops ({', '.join(CHEAP)}) with a preallocated output >= "
          f"{T_CHEAP_COPY:.0%} of memcpy speed at 16M; per-call time at 4K <= {T_OVERHEAD}x eager's.", ""]
    L += [f"{len(misses)} missed:", ""] + [f"- {m}" for m in misses] if misses else ["None missed.", ""]
    L.append("")

    L += ["## Method", "",
          "Each (op, dtype, size, mode) times its contenders interleaved in random order, repeated "
          f"({meta['repeats']} times, {meta['big_repeats']} at 16M), each sample at least 2 ms of back-to-back "
          "calls; the tables show medians. `fwd+bwd` is `torch.autograd.grad` of the output with a fixed "
          "grad_output (for a loss, of the scalar). `eager` is PyTorch's built-in; for swiglu/geglu/reglu (split "
          "and `_pair` forms) it is the composition `act(a) * b`; for swish, `x * sigmoid(beta * x)`. `compiled` "
          "is `torch.compile(dynamic=True, fullgraph=True)` of the eager expression (Inductor), compiled once per "
          "op and warmed up untimed. `copy` is `dst.copy_(src)` into a preallocated tensor moving the least "
          "number of bytes the op must move (forward: read the input, write the output; forward+backward also "
          "reads grad_output and the saved tensor and writes the gradient): the physical limit. Sizes count "
          f"input elements; row ops (softmax family, gated units, cross entropy) use rows of {ROW}. "
          "Pointwise inputs are standard normal times the op table's scale.", ""]
    notes = [(c.name, c.note) for c in CASES if c.note and c.name in {r.op for r in results}]
    if notes:
        L += ["| op | setup |", "|---|---|"] + [f"| {n} | {t} |" for n, t in notes] + [""]

    for dtype in sorted({r.dtype for r in results}, key=str):
        for mode in MODES:
            rows = [r for r in results if r.dtype == dtype and r.mode == mode]
            if not rows:
                continue
            sizes = sorted({r.size for r in rows})
            L += [f"## Speed: {_dt(dtype)}, {mode}", "",
                  "ours/eager and compiled/eager; last column: a memory copy of the same bytes, as a fraction of our "
                  "speed at the largest size.", "",
                  "| op | " + " | ".join(f"{_size(s)} ours | {_size(s)} compiled" for s in sizes)
                  + f" | {_size(sizes[-1])} copy/ours |",
                  "|---|" + "---|---|" * len(sizes) + "---|"]
            for name in dict.fromkeys(r.op for r in rows):
                cells = [name]
                for s in sizes:
                    r = next((r for r in rows if r.op == name and r.size == s), None)
                    cells += [_f(r.ratio()), _f(r.ratio("compiled"))] if r else ["", ""]
                r = next((r for r in rows if r.op == name and r.size == sizes[-1]), None)
                cells.append(_pct(r.t("copy") / r.t("ours")) if r else "")
                L.append("| " + " | ".join(cells) + " |")
            L += ["", f"Geometric mean ours/eager at >= 64K: "
                  f"{_f(geomean([r.ratio() for r in rows if r.size >= 64 * KI]))}x", ""]

    pw = [r for r in results if r.kind == "pointwise" and r.mode == "fwd"]
    if pw:
        L += ["## Allocation: fresh output against preallocated output (forward)", "",
              "Microseconds per call. `out=`: ours is `torch.ops.torch_activations.<op>.out` (n/a where the library "
              "has no out= overload); PyTorch's is the ATen out= kernel the `F.*` function runs (n/a for softsign, "
              "tanhshrink and swish, which are compositions in PyTorch). `clone` is a copy into a fresh tensor, "
              "`copy` into a preallocated one.", ""]
        for dtype in sorted({r.dtype for r in pw}, key=str):
            for size in sorted({r.size for r in pw if r.dtype == dtype}):
                rows = [r for r in pw if r.dtype == dtype and r.size == size]
                L += [f"### {_dt(dtype)}, {_size(size)}", "",
                      "| op | ours | ours out= | PyTorch | PyTorch out= | clone | copy | ours out= / PyTorch out= |",
                      "|---|---|---|---|---|---|---|---|"]
                us = lambda r, k: _f(1e6 * r.t(k), "{:.1f}")  # noqa: E731
                for r in rows:
                    L.append(f"| {r.op} | {us(r, 'ours')} | {us(r, 'ours_out')} | {us(r, 'eager')} | "
                             f"{us(r, 'eager_out')} | {us(r, 'clone')} | {us(r, 'copy')} | "
                             f"{_x(r.ratio('ours_out', 'eager_out'))} |")
                L.append("")

    if gated_mem or ce_mem:
        L += ["## Peak memory, forward+backward", "",
              "Peak resident memory beyond the inputs (and grad_output), measured in a fresh process per case from "
              "the kernel's high-water mark (`torch_activations/benchpeak.py`); ratio = ours / PyTorch's (lower "
              "is better).", ""]
    if gated_mem:
        m0 = gated_mem[0]
        L += [f"Gated units, input {m0['tokens']} x {2 * m0['hidden']}, output {m0['tokens']} x {m0['hidden']} "
              "(pair form: two inputs of the output's shape); eager = the composition (F.glu's own kernel is not "
              "used: a * sigmoid(b)).", "",
              "| op | form | dtype | eager | ours | ratio |", "|---|---|---|---|---|---|"]
        for m in gated_mem:
            L.append(f"| {m['op']} | {m['form']} | {m['dtype']} | {m['eager'] / 2**20:.1f} MiB | "
                     f"{m['fused'] / 2**20:.1f} MiB | {m['ratio']:.2f} |")
        L.append("")
    if ce_mem:
        L += [f"Cross entropy, {ce_mem[0]['tokens']} rows, class-index targets (every 7th ignored), mean; "
              "eager = `torch.nn.functional.cross_entropy`.", "",
              "| vocabulary | dtype | label smoothing | logits | eager | ours | ratio |",
              "|---|---|---|---|---|---|---|"]
        for m in ce_mem:
            L.append(f"| {m['vocab']} | {m['dtype']} | {m['smoothing']} | {m['logits'] / 2**20:.0f} MiB | "
                     f"{m['eager'] / 2**20:.1f} MiB | {m['fused'] / 2**20:.1f} MiB | {m['ratio']:.2f} |")
        L.append("")
    if compile_s:
        L += ["## Compile time", "", "Seconds spent in torch.compile per op (all dtypes, modes and recompiles; "
              "Inductor's on-disk cache makes later runs faster).", "",
              "| op | seconds |", "|---|---|"] + [f"| {k} | {v:.1f} |" for k, v in compile_s.items()] + [""]
    if meta.get("compile_errors"):
        L += ["torch.compile failed (the compiled column is n/a from there on):", ""]
        L += [f"- {k}: {v}" for k, v in meta["compile_errors"].items()] + [""]
    if png_rel:
        L += ["## Chart", "", f"![ours/eager per op and size]({png_rel})", ""]
    return "\n".join(L)


def chart(results: List[Result], path: str) -> None:
    """Horizontal bars of ours/eager per op, one bar per size, from 1 (parity)
    on a log axis; ticks mark torch.compile's ratio at the largest size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter

    keys = [(d, m) for d in sorted({r.dtype for r in results}, key=str) for m in MODES
            if any(r.dtype == d and r.mode == m for r in results)]
    names = list(dict.fromkeys(r.op for r in results))
    sizes = sorted({r.size for r in results})
    lo_clip, hi_clip = 1 / 32, 32.0

    def clip(v):
        return min(max(v, lo_clip), hi_clip) if math.isfinite(v) else math.nan

    def find(n, s, dtype, mode):
        return next((r for r in results if r.op == n and r.size == s and r.dtype == dtype and r.mode == mode), None)

    finite = [clip(r.ratio(w)) for r in results for w in ("ours", "compiled") if math.isfinite(r.ratio(w))]
    lo, hi = min(finite + [0.5]) / 1.25, max(finite + [2.0]) * 1.25
    ticks = [2.0 ** k for k in range(-5, 6) if lo <= 2.0 ** k <= hi]
    if len(ticks) > 7:      # every other power of two, keeping 1
        ticks = [t for t in ticks if round(math.log2(t)) % 2 == 0]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 0.3 * len(names) + 2.2), sharey=True,
                             squeeze=False)
    h = 0.8 / len(sizes)
    for ax, (dtype, mode) in zip(axes[0], keys):
        for j, s in enumerate(sizes):
            vals = [clip(r.ratio()) if (r := find(n, s, dtype, mode)) else math.nan for n in names]
            ax.barh([i + (j - (len(sizes) - 1) / 2) * h for i in range(len(names))], [v - 1 for v in vals],
                    left=1.0, height=h, label=f"ours, {_size(s)}")
        comp = [clip(r.ratio("compiled")) if (r := find(n, sizes[-1], dtype, mode)) else math.nan for n in names]
        if any(math.isfinite(c) for c in comp):
            ax.plot(comp, range(len(names)), "k|", markersize=10, label=f"torch.compile, {_size(sizes[-1])}")
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.set_xticks(ticks, [f"{t:g}" if t >= 1 else f"1/{1 / t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{_dt(dtype)}, {mode}")
        ax.set_xlabel("times faster than PyTorch eager")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(names)), names, fontsize=8)
    axes[0][0].invert_yaxis()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(f"torch_activations against PyTorch eager ({torch.get_num_threads()} threads; "
                 f"clipped to [1/32, 32])", fontsize=10)
    fig.tight_layout(rect=(0, 0.6 / (0.3 * len(names) + 2.2), 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sizes(text: str) -> List[int]:
    out = []
    for s in text.split(","):
        s = s.strip().upper()
        mult = {"K": KI, "M": KI * KI}.get(s[-1:], 1)
        out.append(int(s[:-1] if mult > 1 else s) * mult)
    return out


def run(ops: Optional[Sequence[str]] = None, sizes: Sequence[int] = SIZES, dtypes: Sequence[torch.dtype] = DTYPES,
        modes: Sequence[str] = MODES, repeats: int = 7, big_repeats: int = 5, use_compile: bool = True,
        memory: bool = True, quick: bool = False, output: str = "BENCHMARKS.md",
        png: str = os.path.join("benchmarks", "benchmarks.png"), threads: Optional[int] = None,
        command: str = "python -m torch_activations bench", log=print) -> int:
    """Runs the benchmarks and writes the report; returns the exit code."""
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run(ops, sizes, dtypes, modes, repeats, big_repeats, use_compile, memory, quick, output, png,
                    command, log)
    finally:
        torch.set_num_threads(old_threads)


def _run(ops, sizes, dtypes, modes, repeats, big_repeats, use_compile, memory, quick, output, png, command,
         log) -> int:
    from . import benchpeak

    t_start = time.perf_counter()
    load_start = _load()
    cpu = CpuShare()
    selected = [c for c in CASES if not ops or c.name in ops]
    log(f"bench: {len(selected)} ops, sizes {', '.join(map(_size, sizes))}, {', '.join(map(_dt, dtypes))}, "
        f"{', '.join(modes)}, {torch.get_num_threads()} threads" + (", with torch.compile" if use_compile else ""))
    import torch._dynamo.config as dcfg

    with dcfg.patch(recompile_limit=64, fail_on_recompile_limit_hit=True):
        results, compile_s, compile_errors = bench(selected, sizes, dtypes, modes, repeats, big_repeats, use_compile,
                                                   log, cpu)
    gated_mem: List[dict] = []
    ce_mem: List[dict] = []
    if memory:
        names = {c.name.replace("_pair", "") for c in selected}
        gated = [o for o in benchpeak.GATED_OPS if o in names]
        mdt = [_dt(d) for d in dtypes]
        if gated:
            log("peak memory, gated units")
            tokens, hidden = (64, 256) if quick else (2048, 2048)
            gated_mem = benchpeak.gated_rows(gated, tokens, hidden, mdt, log=log)
        if "cross_entropy" in names:
            log("peak memory, cross entropy")
            if quick:
                ce_mem = benchpeak.cross_entropy_rows([32768], 16, mdt[:1], (0.0,), log=log)
            else:
                ce_mem = benchpeak.cross_entropy_rows([32768, 131072], 1024, mdt, (0.0, 0.1), log=log)
    meta = dict(command=command, date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                elapsed=time.perf_counter() - t_start, compile_total=sum(compile_s.values()),
                machine=machine_info(torch.get_num_threads()) + [
                    ("load average (1 min) at the start", _f(load_start)),
                    ("CPU time of other processes while timing", _pct(cpu.others()))],
                others=cpu.others(), repeats=repeats, big_repeats=big_repeats, quick=quick)
    png_rel = None
    if png:
        chart(results, png)
        png_rel = os.path.relpath(os.path.abspath(png), os.path.dirname(os.path.abspath(output)))
    meta["compile_errors"] = compile_errors
    text = render(results, compile_s, gated_mem, ce_mem, meta, png_rel)
    if output:
        d = os.path.dirname(os.path.abspath(output))
        os.makedirs(d, exist_ok=True)
        with open(output, "w") as f:
            f.write(text + "\n")
    summary_text = text.split("## Method")[0]
    log(summary_text)
    log(f"wrote {output}" + (f" and {png}" if png else "") + f" in {meta['elapsed'] / 60:.1f} minutes")
    return 0


def main_args(args, parser) -> int:
    """Runs the bench subcommand from parsed arguments."""
    ops = [o.strip() for o in args.ops.split(",") if o.strip()] if args.ops else None
    if ops:
        unknown = [o for o in ops if o not in CASES_BY_NAME]
        if unknown:
            parser.error(f"bench: unknown op(s): {', '.join(unknown)}; known: {', '.join(CASES_BY_NAME)}")
    try:
        sizes = _sizes(args.sizes) if args.sizes else (
            [4 * KI, 64 * KI] if args.quick else list(SIZES))
    except ValueError:
        parser.error(f"bench: bad --sizes {args.sizes!r} (use e.g. 4K,64K,1M,16M)")
    if any(s < 1 for s in sizes):
        parser.error("bench: sizes must be positive")
    names = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}
    dtypes = [names.get(d.strip()) for d in args.dtypes.split(",")] if args.dtypes else list(DTYPES)
    if None in dtypes:
        parser.error(f"bench: bad --dtypes {args.dtypes!r}; use {', '.join(names)}")
    modes = [m.strip() for m in args.modes.split(",")] if args.modes else list(MODES)
    bad = [m for m in modes if m not in MODES]
    if bad:
        parser.error(f"bench: unknown mode(s) {', '.join(bad)}; use fwd and/or fwd+bwd")
    repeats = args.repeats if args.repeats else (2 if args.quick else 7)
    command = "python -m torch_activations " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else \
        "python -m torch_activations bench"
    return run(ops, sizes, dtypes, modes, repeats=repeats, big_repeats=min(repeats, 1 if args.quick else 5),
               use_compile=not args.no_compile, memory=not args.no_memory, quick=args.quick, output=args.output,
               png=args.png, threads=args.threads, command=command)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench", help="benchmark every op against PyTorch eager, torch.compile and a memory copy",
        description="Times every op (forward and forward+backward; float32 and bfloat16; 4K, 64K, 1M and 16M "
                    "elements) against PyTorch eager, torch.compile of the PyTorch expression and a memory copy of "
                    "the same bytes, interleaved and repeated; with fresh and preallocated outputs; measures the "
                    "peak memory of forward+backward of the gated units and cross entropy; checks the performance "
                    "targets and writes a markdown report and a PNG chart. The full default run takes about 9 "
                    "minutes on 2 cores with Inductor's on-disk cache warm, longer the first time.")
    p.add_argument("--ops", help="comma-separated ops (default: all): " + ", ".join(CASES_BY_NAME))
    p.add_argument("--sizes", help="comma-separated element counts, K/M suffixes allowed (default: 4K,64K,1M,16M)")
    p.add_argument("--dtypes", help="comma-separated: float32, bfloat16, float16, float64 "
                                                  "(default: float32,bfloat16)")
    p.add_argument("--modes", help="comma-separated: fwd, fwd+bwd (default: both)")
    p.add_argument("--repeats", type=int, help="interleaved repeats per measurement (default: 7, 5 at 16M)")
    p.add_argument("--no-compile", action="store_true", help="leave out torch.compile")
    p.add_argument("--no-memory", action="store_true", help="leave out the peak-memory measurements")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: sizes 4K and 64K, 2 repeats, tiny peak-memory cases (numbers not meaningful)")
    p.add_argument("--output", "-o", default="BENCHMARKS.md", help="markdown report (default: %(default)s)")
    p.add_argument("--png", default=os.path.join("benchmarks", "benchmarks.png"),
                   help="PNG chart (default: %(default)s)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's default)")
