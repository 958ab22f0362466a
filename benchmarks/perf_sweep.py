"""Ratios of PyTorch eager time to ours (higher is better) for every op, size,
dtype and mode, timed side by side and interleaved; medians of repeats.

    python benchmarks/perf_sweep.py [--ops relu,swiglu] [--sizes 4096,65536]
        [--dtypes float32,bfloat16] [--modes fwd,fwd+bwd] [--repeats 5] [--compile]

Rows: every pointwise op of the test table, the softmax family along the last
dimension of rows of 1024, the gated units against their eager composition
(and torch.compile of it with --compile), and cross entropy on rows of 1024
classes. `out` rows time the pointwise ops into a preallocated output against
a copy of the same bytes (the bandwidth limit)."""
import argparse
import math
import random
import statistics
import sys

import torch
import torch.nn.functional as TF

import torch_activations.functional as F
from torch_activations.bench import _timer
from torch_activations.optable import OPS

_ops = torch.ops.torch_activations


def pointwise_rows():
    for op in OPS:
        p = op.params[0]
        yield op.name, (lambda x, _o=op, _p=p: _o.ours(x, **_p)), (lambda x, _o=op, _p=p: _o.ref(x, **_p)), op.scale


def softmax_rows():
    for name in ("softmax", "log_softmax", "softmin"):
        yield name, (lambda x, _n=name: getattr(F, _n)(x.view(-1, 1024), dim=-1)), \
            (lambda x, _n=name: getattr(TF, _n)(x.view(-1, 1024), dim=-1)), 3.0


def gated_rows():
    def split(x):
        return x.view(-1, 1024).chunk(2, dim=-1)
    yield "glu", (lambda x: F.glu(x.view(-1, 1024))), (lambda x: TF.glu(x.view(-1, 1024))), 3.0
    yield "swiglu", (lambda x: F.swiglu(x.view(-1, 1024))), (lambda x: (lambda a, b: TF.silu(a) * b)(*split(x))), 3.0
    yield "geglu", (lambda x: F.geglu(x.view(-1, 1024))), (lambda x: (lambda a, b: TF.gelu(a) * b)(*split(x))), 3.0
    yield "reglu", (lambda x: F.reglu(x.view(-1, 1024))), (lambda x: (lambda a, b: TF.relu(a) * b)(*split(x))), 3.0
    # Two-tensor form: x holds gate and up back to back.
    yield "swiglu.pair", (lambda x: F.swiglu(*split(x))), (lambda x: (lambda a, b: TF.silu(a) * b)(*split(x))), 3.0


def loss_rows():
    def ce(fn):
        def f(x):
            logits = x.view(-1, 1024)
            t = (torch.arange(logits.shape[0]) * 7919) % 1024
            return fn(logits, t)
        return f
    yield "cross_entropy", ce(F.cross_entropy), ce(TF.cross_entropy), 3.0


def measure(fns, repeats, stat=statistics.median):
    samplers = {k: _timer(f, 1e-3)[0] for k, f in fns.items()}
    samples = {k: [] for k in samplers}
    order = list(samplers)
    for _ in range(repeats):
        random.shuffle(order)
        for k in order:
            samples[k].append(samplers[k]())
    return {k: stat(v) for k, v in samples.items()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", default="")
    ap.add_argument("--sizes", default="4096,65536,1048576,16777216")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--modes", default="fwd,fwd+bwd")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--groups", default="pointwise,softmax,gated,loss")
    # On a loaded machine a parallel region waits for a descheduled worker
    # (milliseconds); one thread measures the kernels themselves.
    ap.add_argument("--threads", type=int, default=1)
    # The minimum resists other processes' load better than the median.
    ap.add_argument("--stat", choices=("median", "min"), default="median")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    stat = min if a.stat == "min" else statistics.median
    names = set(a.ops.split(",")) if a.ops else None
    groups = {"pointwise": pointwise_rows, "softmax": softmax_rows, "gated": gated_rows, "loss": loss_rows,
              "out": pointwise_rows}
    ratios = {}
    for gname in a.groups.split(","):
        for name, ours, ref, scale in groups[gname]():
            if names and name not in names:
                continue
            comp = torch.compile(ref, dynamic=True) if a.compile and gname == "gated" else None
            for dt in a.dtypes.split(","):
                dtype = getattr(torch, dt)
                for size in map(int, a.sizes.split(",")):
                    g = torch.Generator().manual_seed(0)
                    x = (torch.randn(size, generator=g) * scale).to(dtype)
                    if gname == "out":
                        p = next(o for o in OPS if o.name == name).params[0]
                        fn = getattr(_ops, name).out
                        y = torch.empty_like(x)
                        args = [x] + [v for v in p.values()]
                        src = torch.empty_like(x).fill_(1)
                        t = measure({"ours": lambda: fn(*args, out=y), "eager": lambda: y.copy_(src)}, a.repeats, stat)
                        r = t["eager"] / t["ours"]
                        print(f"{name:14s} {dt:9s} {size:>9d} out      copy/ours={r:5.2f}  "
                              f"ours={t['ours'] * 1e6:9.1f}us", flush=True)
                        continue
                    for mode in a.modes.split(","):
                        if mode == "fwd":
                            fns = {"ours": lambda: ours(x), "eager": lambda: ref(x)}
                            if comp:
                                fns["compiled"] = lambda: comp(x)
                        else:
                            xg = x.detach().requires_grad_(True)
                            go = torch.ones_like(ours(x))
                            if gname == "loss":
                                go = torch.ones(())
                            fns = {"ours": lambda: torch.autograd.grad(ours(xg), xg, go),
                                   "eager": lambda: torch.autograd.grad(ref(xg), xg, go)}
                            if comp:
                                fns["compiled"] = lambda: torch.autograd.grad(comp(xg), xg, go)
                        t = measure(fns, a.repeats, stat)
                        r = t["eager"] / t["ours"]
                        ratios[(name, dt, size, mode)] = r
                        extra = f"  compiled/ours={t['compiled'] / t['ours']:5.2f}" if "compiled" in t else ""
                        flag = "" if r >= (1.0 if size >= 65536 else 1 / 1.2) else "  <-- MISS"
                        print(f"{name:14s} {dt:9s} {size:>9d} {mode:8s} eager/ours={r:5.2f}{extra}  "
                              f"ours={t['ours'] * 1e6:9.1f}us eager={t['eager'] * 1e6:9.1f}us{flag}", flush=True)
    big = [r for (n, d, s, m), r in ratios.items() if s >= 65536]
    if big:
        print(f"geomean eager/ours at >= 64K: {math.exp(sum(map(math.log, big)) / len(big)):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
