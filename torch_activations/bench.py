"""``python -m torch_activations bench``: side-by-side CPU benchmarks.

For every op, size and dtype it times, interleaved and repeated:
  ours      the torch_activations op (autograd on for fwd+bwd)
  eager     PyTorch's built-in
  compiled  torch.compile (Inductor) of the PyTorch expression, dynamic shapes
  copy      a memory copy of the same bytes: the physical limit
and reports medians and ratios to eager (higher is better). Results go to
BENCHMARKS.md (and a PNG chart when matplotlib is installed).
"""
import gc
import math
import platform
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .optable import OPS, Op

SIZES = (4096, 65536, 1 << 20, 1 << 24)
DTYPES = (torch.float32, torch.bfloat16)
MODES = ("fwd", "fwd+bwd")
CONTENDERS = ("ours", "eager", "compiled", "copy")


def _timer(fn: Callable[[], object], min_time: float = 2e-3) -> Tuple[Callable[[], float], int]:
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
        n *= 2

    def sample() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n

    return sample, n


@dataclass
class Result:
    op: str
    dtype: torch.dtype
    size: int
    mode: str
    times: Dict[str, float] = field(default_factory=dict)   # median seconds per call

    def ratio(self, who: str) -> float:
        return self.times["eager"] / self.times[who] if who in self.times else math.nan


def _pointwise_calls(op: Op, x: torch.Tensor, mode: str, compiled: Callable):
    params = op.params[0]
    if mode == "fwd":
        return {
            "ours": lambda: op.ours(x, **params),
            "eager": lambda: op.ref(x, **params),
            "compiled": lambda: compiled(x),
        }
    xg = x.detach().requires_grad_(True)
    g = torch.ones_like(x)

    def run(f):
        return lambda: torch.autograd.grad(f(xg), xg, g)

    return {"ours": run(lambda t: op.ours(t, **params)), "eager": run(lambda t: op.ref(t, **params)),
            "compiled": run(compiled)}


def _copy_call(numel: int, dtype: torch.dtype, mode: str):
    # fwd moves 2 tensors (read x, write y); fwd+bwd 5 (+ read g, read x or
    # y, write dx). A copy moves 2 per element copied.
    moved = 2 if mode == "fwd" else 5
    n = numel * moved // 2
    src = torch.empty(n, dtype=dtype).fill_(1)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


def bench_pointwise(ops: Sequence[Op], sizes=SIZES, dtypes=DTYPES, modes=MODES, repeats: int = 7,
                    use_compile: bool = True, log=print) -> List[Result]:
    results = []
    for op in ops:
        params = op.params[0]
        compiled = {}
        if use_compile:
            for mode in modes:
                fn = lambda t, _p=params, _r=op.ref: _r(t, **_p)  # noqa: E731
                compiled[mode] = torch.compile(fn, dynamic=True)
        for dtype in dtypes:
            for size in sizes:
                g = torch.Generator().manual_seed(0)
                x = (torch.randn(size, generator=g) * op.scale).to(dtype)
                for mode in modes:
                    calls = _pointwise_calls(op, x, mode, compiled.get(mode, lambda t: t))
                    if not use_compile:
                        calls.pop("compiled")
                    calls["copy"] = _copy_call(size, dtype, mode)
                    samplers = {k: _timer(f)[0] for k, f in calls.items()}
                    samples: Dict[str, List[float]] = {k: [] for k in samplers}
                    order = list(samplers)
                    for _ in range(repeats):
                        random.shuffle(order)
                        for k in order:
                            samples[k].append(samplers[k]())
                    r = Result(op.name, dtype, size, mode, {k: statistics.median(v) for k, v in samples.items()})
                    results.append(r)
                    log(f"{op.name:12s} {str(dtype)[6:]:9s} {size:>9d} {mode:8s} "
                        + " ".join(f"{k}={v * 1e6:9.1f}us" for k, v in r.times.items())
                        + f"  ours/eager={r.ratio('ours'):.2f}x")
                    gc.collect()
    return results


def geomean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else math.nan


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
            f"our kernels: {torch.ops.torch_activations._cpu_capability()}, "
            f"PyTorch's: {torch.backends.cpu.get_cpu_capability()}")


def render(results: List[Result]) -> str:
    lines = ["# Benchmarks", "", f"Machine: {machine()}.", "",
             "Ratios are PyTorch eager time / our time (higher is better), medians of interleaved repeats; "
             "`compiled` is torch.compile (Inductor) of the PyTorch expression, `copy %` is the time of a "
             "memory copy of the same bytes as a fraction of ours (100% = at the bandwidth limit).", ""]
    for dtype in sorted({r.dtype for r in results}, key=str):
        for mode in MODES:
            rows = [r for r in results if r.dtype == dtype and r.mode == mode]
            if not rows:
                continue
            sizes = sorted({r.size for r in rows})
            lines += [f"## {str(dtype)[6:]}, {mode}", "",
                      "| op | " + " | ".join(f"{s:,} ours/eager | ours/compiled | copy %" for s in sizes) + " |",
                      "|---|" + "---|---|---|" * len(sizes)]
            for name in dict.fromkeys(r.op for r in rows):
                cells = [name]
                for s in sizes:
                    r = next((r for r in rows if r.op == name and r.size == s), None)
                    if r is None:
                        cells += ["", "", ""]
                        continue
                    comp = r.times["compiled"] / r.times["ours"] if "compiled" in r.times else math.nan
                    cells += [f"{r.ratio('ours'):.2f}", f"{comp:.2f}", f"{100 * r.times['copy'] / r.times['ours']:.0f}"]
                lines.append("| " + " | ".join(cells) + " |")
            big = [r.ratio("ours") for r in rows if r.size >= 65536]
            lines += ["", f"Geometric mean ours/eager at >= 64K elements: {geomean(big):.2f}x", ""]
    return "\n".join(lines)


def run(names: Optional[Sequence[str]] = None, sizes=SIZES, repeats: int = 7, out_md: Optional[str] = None,
        use_compile: bool = True) -> int:
    ops = [o for o in OPS if not names or o.name in names]
    results = bench_pointwise(ops, sizes=sizes, repeats=repeats, use_compile=use_compile)
    text = render(results)
    print(text)
    if out_md:
        with open(out_md, "w") as f:
            f.write(text + "\n")
    return 0
