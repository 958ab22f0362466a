"""Peak memory of forward+backward of cross entropy from logits: the fused
torch_activations.functional.cross_entropy against PyTorch's
torch.nn.functional.cross_entropy (eager), at vocabulary sizes 32K and 128K.

    python benchmarks/cross_entropy_memory.py [--tokens 4096] [--vocab 32768 131072] [--dtype float32 bfloat16]

Peak memory beyond the logits and targets (see _peak.py), for class-index
targets with the default mean reduction and with label smoothing. The
gradient of the logits is one logits-sized buffer that both must produce;
PyTorch also keeps the log-probabilities between forward and backward and
makes further logits-sized temporaries in the backward. The defaults fit a
24 GiB machine (the largest eager case, 4096 x 128K float32, peaks near
3 x 2 GiB beyond its 2 GiB of logits).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _peak import mib, peak_bytes  # noqa: E402


def make(impl, tokens, vocab, dtype, smoothing):
    import torch

    import torch_activations  # noqa: F401

    x = torch.randn(tokens, vocab, dtype=getattr(torch, dtype)).requires_grad_(True)
    t = torch.randint(0, vocab, (tokens,))
    t[::7] = -100
    return impl, x, t, smoothing


def run(state):
    import torch
    import torch.nn.functional as TF

    import torch_activations as ta

    impl, x, t, smoothing = state
    fn = ta.functional.cross_entropy if impl == "fused" else TF.cross_entropy
    loss = fn(x, t, label_smoothing=smoothing)
    (g,) = torch.autograd.grad(loss, x)
    del loss, g


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--vocab", type=int, nargs="+", default=[32768, 131072])
    p.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    args = p.parse_args()
    print(f"tokens={args.tokens}; peak memory of forward+backward beyond logits and targets")
    print(f"{'vocab':>7} {'dtype':9} {'smoothing':>9} {'logits':>13} {'PyTorch eager':>14} {'fused':>13} {'ratio':>6}")
    for vocab in args.vocab:
        for dtype in args.dtype:
            for smoothing in (0.0, 0.1):
                import torch

                size = args.tokens * vocab * torch.empty((), dtype=getattr(torch, dtype)).element_size()
                eager = peak_bytes(make, run, "eager", args.tokens, vocab, dtype, smoothing)
                fused = peak_bytes(make, run, "fused", args.tokens, vocab, dtype, smoothing)
                print(f"{vocab:>7} {dtype:9} {smoothing:>9} {mib(size):>13} {mib(eager):>14} {mib(fused):>13} "
                      f"{fused / eager:6.2f}", flush=True)


if __name__ == "__main__":
    main()
