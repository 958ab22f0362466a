"""Peak memory of a forward+backward on the CPU, measured by the kernel.

Each measurement runs in a fresh process. glibc is told to serve every
allocation above 64 KiB with its own mmap (MALLOC_MMAP_THRESHOLD_), so a
freed tensor goes back to the system at once and the resident set size
tracks the bytes alive. After the inputs are made, the process resets its
high-water mark (/proc/self/clear_refs, Linux >= 4.0); the peak reported is
the high-water mark during the run minus the resident size before it: the
memory the forward, the saved tensors, the backward and the gradients need
beyond the inputs.

The cases (fused gated units against their eager compositions, fused cross
entropy against torch.nn.functional.cross_entropy) are module-level functions
because the measuring process receives them pickled.
"""
import gc
import multiprocessing as mp
import os
import re
from typing import Callable, List, Sequence

MMAP_THRESHOLD = "65536"
GATED_OPS = ("glu", "swiglu", "geglu", "reglu")


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{key}:\s+(\d+) kB", f.read()).group(1)) * 1024


def _child(queue, make, run, args):
    import torch

    torch.manual_seed(0)
    state = make(*args)
    run(state)  # warm-up: first-call allocations (thread pools, caches) are not the op's
    gc.collect()
    base = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    run(state)
    queue.put(_status("VmHWM") - base)


def peak_bytes(make: Callable, run: Callable, *args) -> int:
    """Peak bytes above the inputs of run(make(*args)), in a fresh process.
    make and run must be module-level functions (they are pickled)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, make, run, args))
    # The child's malloc reads the variable at start-up; this process's own
    # allocator is already set up, so only the child is affected.
    old = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    os.environ["MALLOC_MMAP_THRESHOLD_"] = MMAP_THRESHOLD
    try:
        p.start()
    finally:
        if old is None:
            del os.environ["MALLOC_MMAP_THRESHOLD_"]
        else:
            os.environ["MALLOC_MMAP_THRESHOLD_"] = old
    try:
        value = q.get(timeout=900)
    finally:
        p.join(timeout=60)
    if p.exitcode != 0:
        raise RuntimeError(f"measurement process failed with exit code {p.exitcode}")
    return value


def mib(n: int) -> str:
    return f"{n / 2**20:9.1f} MiB"


# ------------------------------------------------------------------ gated units
def make_gated(op, form, impl, tokens, hidden, dtype):
    import torch

    import torch_activations  # noqa: F401

    dt = getattr(torch, dtype)
    x = torch.randn(tokens, 2 * hidden, dtype=dt)
    if form == "pair":
        inputs = [x[:, :hidden].clone().requires_grad_(True), x[:, hidden:].clone().requires_grad_(True)]
    else:
        inputs = [x.requires_grad_(True)]
    go = torch.randn(tokens, hidden, dtype=dt)
    return op, form, impl, inputs, go


def gated_composition(op, a, b):
    """What a model writes without a fused op: the activation of the first half
    times the second (F.glu's convention for glu: a * sigmoid(b))."""
    import torch.nn.functional as TF

    if op == "glu":
        return a * TF.sigmoid(b)
    act = {"swiglu": TF.silu, "geglu": TF.gelu, "reglu": TF.relu}[op]
    return act(a) * b


def run_gated(state):
    import torch

    import torch_activations as ta

    op, form, impl, inputs, go = state
    if impl == "fused":
        fn = getattr(ta.functional, op)
        if form == "pair":
            y = fn(*inputs)
        else:
            y = fn(inputs[0], -1) if op == "glu" else fn(inputs[0], dim=-1)
    else:
        a, b = inputs if form == "pair" else inputs[0].chunk(2, -1)
        y = gated_composition(op, a, b)
    grads = torch.autograd.grad(y, inputs, go)
    del y, grads


def gated_rows(ops: Sequence[str] = GATED_OPS, tokens: int = 4096, hidden: int = 4096,
               dtypes: Sequence[str] = ("float32",), log=print) -> List[dict]:
    """Peak bytes of fused and eager forward+backward for each gated op and form."""
    rows = []
    for dtype in dtypes:
        for op in ops:
            for form in ("split", "pair"):
                if op == "glu" and form == "pair":
                    continue
                eager = peak_bytes(make_gated, run_gated, op, form, "eager", tokens, hidden, dtype)
                fused = peak_bytes(make_gated, run_gated, op, form, "fused", tokens, hidden, dtype)
                rows.append(dict(op=op, form=form, dtype=dtype, tokens=tokens, hidden=hidden, eager=eager,
                                 fused=fused, ratio=fused / eager))
                log(f"  peak {op:7s} {form:6s} {dtype:9s} eager={mib(eager)} fused={mib(fused)} "
                    f"ratio={fused / eager:.2f}")
    return rows


# ---------------------------------------------------------------- cross entropy
def make_cross_entropy(impl, tokens, vocab, dtype, smoothing):
    import torch

    import torch_activations  # noqa: F401

    x = torch.randn(tokens, vocab, dtype=getattr(torch, dtype)).requires_grad_(True)
    t = torch.randint(0, vocab, (tokens,))
    t[::7] = -100
    return impl, x, t, smoothing


def run_cross_entropy(state):
    import torch
    import torch.nn.functional as TF

    import torch_activations as ta

    impl, x, t, smoothing = state
    fn = ta.functional.cross_entropy if impl == "fused" else TF.cross_entropy
    loss = fn(x, t, label_smoothing=smoothing)
    (g,) = torch.autograd.grad(loss, x)
    del loss, g


def cross_entropy_rows(vocabs: Sequence[int] = (32768, 131072), tokens: int = 4096,
                       dtypes: Sequence[str] = ("float32", "bfloat16"), smoothings: Sequence[float] = (0.0, 0.1),
                       log=print) -> List[dict]:
    """Peak bytes of fused and eager forward+backward of cross entropy."""
    import torch

    rows = []
    for vocab in vocabs:
        for dtype in dtypes:
            for smoothing in smoothings:
                size = tokens * vocab * torch.empty((), dtype=getattr(torch, dtype)).element_size()
                eager = peak_bytes(make_cross_entropy, run_cross_entropy, "eager", tokens, vocab, dtype, smoothing)
                fused = peak_bytes(make_cross_entropy, run_cross_entropy, "fused", tokens, vocab, dtype, smoothing)
                rows.append(dict(vocab=vocab, dtype=dtype, smoothing=smoothing, tokens=tokens, logits=size,
                                 eager=eager, fused=fused, ratio=fused / eager))
                log(f"  peak cross_entropy vocab={vocab} {dtype:9s} smoothing={smoothing} eager={mib(eager)} "
                    f"fused={mib(fused)} ratio={fused / eager:.2f}")
    return rows
