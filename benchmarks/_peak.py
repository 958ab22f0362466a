"""Peak memory of a forward+backward on the CPU, measured by the kernel.

Each measurement runs in a fresh process. glibc is told to serve every
allocation above 64 KiB with its own mmap (MALLOC_MMAP_THRESHOLD_), so a
freed tensor goes back to the system at once and the resident set size
tracks the bytes alive. After the inputs are made, the process resets its
high-water mark (/proc/self/clear_refs, Linux >= 4.0); the peak reported is
the high-water mark during the run minus the resident size before it: the
memory the forward, the saved tensors, the backward and the gradients need
beyond the inputs.
"""
import gc
import multiprocessing as mp
import os
import re

os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")


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


def peak_bytes(make, run, *args) -> int:
    """Peak bytes above the inputs of run(make(*args)), in a fresh process.
    make and run must be module-level functions (they are pickled)."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, make, run, args))
    p.start()
    value = q.get()
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"measurement process failed with exit code {p.exitcode}")
    return value


def mib(n: int) -> str:
    return f"{n / 2**20:9.1f} MiB"
