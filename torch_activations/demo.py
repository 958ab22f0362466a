"""``python -m torch_activations demo``: our activations in a real model.

1. builds a small model from torch's own modules: an MLP encoder (GELU,
   PReLU, Hardswish modules) and a LLaMA-style transformer block whose
   feed-forward gates with ``F.silu(a) * b``;
2. swaps our operators in: ``replace_activations`` for the modules,
   ``patch()`` for the functional ``F.silu`` call;
3. checks parity in float64: outputs and every parameter gradient equal to
   the torch.nn original's (assert_close's float64 tolerance);
4. trains both copies for a few steps on synthetic data (a fixed random
   teacher network), printing progress and both losses;
5. profiles one training step with torch.profiler, prints the operator
   table (our forward and backward ops with their times) and writes a Chrome
   trace (open it in chrome://tracing or https://ui.perfetto.dev).

Exit code 0 when parity holds and our ops show up in the profile, 1 otherwise.
"""
import copy
import math
import os
import sys
import time
from typing import Callable, List

import torch
import torch.nn.functional as F
from torch import nn

from .patching import patch
from .replace import replace_activations


class SwiGLU(nn.Module):
    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.gate = nn.Linear(d, hidden, bias=False)
        self.up = nn.Linear(d, hidden, bias=False)
        self.down = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, d: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.RMSNorm(d), nn.RMSNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.mlp = SwiGLU(d, hidden)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.norm2(x))


class DemoModel(nn.Module):
    def __init__(self, d_in: int = 16, d: int = 64, heads: int = 4, hidden: int = 128, d_out: int = 8):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(d_in, d), nn.GELU(), nn.Linear(d, d), nn.PReLU(d))
        self.block = Block(d, heads, hidden)
        self.head = nn.Sequential(nn.Linear(d, d), nn.Hardswish(), nn.Linear(d, d_out))

    def forward(self, x):
        # PReLU's channel is dim 1: apply the encoder token by token.
        b, t, _ = x.shape
        h = self.encoder(x.reshape(b * t, -1)).view(b, t, -1)
        return self.head(self.block(h))


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def parity(ref: nn.Module, ours: nn.Module, out=print) -> bool:
    """float64 copies of both models: outputs and all gradients."""
    ref64, ours64 = copy.deepcopy(ref).double(), copy.deepcopy(ours).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 12, 16, generator=g, dtype=torch.float64)
    proj = torch.randn(4, 12, 8, generator=g, dtype=torch.float64)
    results = []
    for model, patched in ((ref64, False), (ours64, True)):
        xx = x.clone().requires_grad_(True)
        with patch() if patched else _Null() as p:
            y = model(xx)
        (y * proj).sum().backward()
        results.append((y.detach(), [prm.grad for prm in model.parameters()] + [xx.grad], p))
    (y_ref, g_ref, _), (y, g, p) = results
    ok = True
    try:
        torch.testing.assert_close(y, y_ref)
        for a, b in zip(g, g_ref):
            torch.testing.assert_close(a, b)
    except AssertionError as e:
        ok = False
        out(f"  parity FAILED: {e}")
    worst = max(_max_rel(a, b) for a, b in zip(g, g_ref))
    out(f"  float64 output: max |ours - torch.nn| / max |torch.nn| = {_max_rel(y, y_ref):.1e}")
    out(f"  float64 gradients ({len(g)} tensors): worst relative difference {worst:.1e}")
    out(f"  patch() routed: {dict(p.routed)}")
    out(f"  parity (assert_close, float64 tolerances): {'ok' if ok else 'FAILED'}")
    return ok and p.routed.get("torch.nn.functional.silu", 0) > 0


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


class Progress:
    """A plain-text progress bar: redrawn in place on a terminal, a line every
    few steps otherwise (logs, CI)."""

    def __init__(self, total: int, width: int = 30, stream=None):
        self.total, self.width = total, width
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()

    def update(self, step: int, text: str) -> None:
        done = int(self.width * step / self.total)
        rate = step / max(time.perf_counter() - self.start, 1e-9)
        line = f"  [{'#' * done}{'.' * (self.width - done)}] {step:>3}/{self.total} {rate:6.1f} it/s  {text}"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if step == self.total else ""))
            self.stream.flush()
        elif step == 1 or step == self.total or step % max(1, self.total // 5) == 0:
            self.stream.write(line + "\n")


def train(ref: nn.Module, ours: nn.Module, steps: int, seed: int, out=print) -> List[tuple]:
    torch.manual_seed(seed + 1000)   # a teacher unlike the student
    teacher = DemoModel()
    g = torch.Generator().manual_seed(seed + 1)
    opt_ref = torch.optim.AdamW(ref.parameters(), lr=3e-3)
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=3e-3)
    bar = Progress(steps)
    losses = []
    for step in range(1, steps + 1):
        x = torch.randn(16, 12, 16, generator=g)
        with torch.no_grad():
            y = teacher(x)
        step_losses = []
        for model, opt, patched in ((ref, opt_ref, False), (ours, opt_ours, True)):
            with patch() if patched else _Null():
                loss = F.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step_losses.append(loss.item())
        losses.append(tuple(step_losses))
        bar.update(step, f"loss {step_losses[1]:.5f}  (torch.nn: {step_losses[0]:.5f})")
    return losses


def profile_step(model: nn.Module, trace_path: str, seed: int, out=print) -> bool:
    g = torch.Generator().manual_seed(seed + 2)
    x, y = torch.randn(16, 12, 16, generator=g), torch.randn(16, 12, 8, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        with patch():
            loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()   # warm-up: first-call allocations and lazy initialisation
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        with torch.profiler.record_function("train_step"):
            step()
    averages = prof.key_averages()
    ours = sorted((e for e in averages if e.key.startswith("torch_activations::")), key=lambda e: e.key)
    others = sorted((e for e in averages if not e.key.startswith("torch_activations::") and e.key != "train_step"),
                    key=lambda e: -e.self_cpu_time_total)[:8]
    total = next((e.cpu_time_total for e in averages if e.key == "train_step"), 0.0)

    def row(e):
        return (f"  {e.key:<42} {e.count:>5} {e.self_cpu_time_total:>11.1f} {e.cpu_time_total:>11.1f} "
                f"{e.cpu_time_total / max(e.count, 1):>9.1f}")

    out(f"  {'operator':<42} {'calls':>5} {'self CPU us':>11} {'CPU us':>11} {'avg us':>9}")
    out("  " + "-" * 82)
    for e in ours:
        out(row(e))
    out("  " + "-" * 82 + "\n  largest other operators by self CPU time:")
    for e in others:
        out(row(e))
    own = sum(e.self_cpu_time_total for e in ours)
    out(f"  one training step: {total / 1000:.2f} ms CPU; our activation ops: {own / 1000:.2f} ms self CPU "
        f"({100 * own / max(total, 1e-9):.1f}%)")
    os.makedirs(os.path.dirname(os.path.abspath(trace_path)), exist_ok=True)
    prof.export_chrome_trace(trace_path)
    out(f"  Chrome trace written to {os.path.abspath(trace_path)} (open in chrome://tracing or ui.perfetto.dev)")
    names = {e.key for e in ours}
    needed = {f"torch_activations::{op}{sfx}" for op in ("gelu", "prelu", "silu", "hardswish")
              for sfx in ("", "_backward")}
    missing = needed - names
    if missing:
        out(f"  FAILED: not in the profile: {sorted(missing)}")
    return not missing


def run(steps: int = 20, trace: str = os.path.join("out", "torch_activations_demo_trace.json"), seed: int = 0,
        out: Callable[[str], None] = print) -> int:
    import torch_activations as ta

    out(f"torch {torch.__version__}, torch_activations {ta.__version__}, CPU kernels {ta.cpu_capability()}, "
        f"{torch.get_num_threads()} threads")
    torch.manual_seed(seed)
    ref = DemoModel()
    n_params = sum(p.numel() for p in ref.parameters())
    out(f"\n1. model: MLP encoder + LLaMA-style block (RMSNorm, causal attention, SwiGLU F.silu(a) * b), "
        f"{n_params} parameters")
    ours = copy.deepcopy(ref)

    out("\n2. swap in torch_activations: replace_activations(model) for modules, patch() for F.silu")
    report = replace_activations(ours)
    for line in str(report).splitlines():
        out("  " + line)

    out("\n3. parity with the torch.nn model")
    ok = parity(ref, ours, out)

    out(f"\n4. training {steps} steps (AdamW, synthetic teacher-student regression), both models side by side")
    losses = train(ref, ours, steps, seed, out)
    first, last = losses[0][1], losses[-1][1]
    drift = max(abs(a - b) / max(abs(b), 1e-30) for b, a in losses)
    out(f"  loss {first:.5f} -> {last:.5f}; largest relative difference from torch.nn's loss at any step: "
        f"{drift:.1e} (float32)")
    if not math.isfinite(last) or last >= first:
        out("  FAILED: the loss did not go down")
        ok = False

    out("\n5. profile of one training step (torch.profiler, CPU)")
    ok = profile_step(ours, trace, seed, out) and ok
    out("\ndemo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1
