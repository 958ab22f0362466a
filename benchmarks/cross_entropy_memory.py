"""Peak memory of forward+backward of cross entropy from logits: the fused
torch_activations.functional.cross_entropy against PyTorch's
torch.nn.functional.cross_entropy (eager), at vocabulary sizes 32K and 128K.

    python benchmarks/cross_entropy_memory.py [--tokens 4096] [--vocab 32768 131072] [--dtype float32 bfloat16]

Peak memory beyond the logits and targets (see torch_activations/benchpeak.py),
for class-index targets with the default mean reduction and with label
smoothing. The gradient of the logits is one logits-sized buffer that both
must produce; PyTorch also keeps the log-probabilities between forward and
backward and makes further logits-sized temporaries in the backward. The
defaults fit a 24 GiB machine (the largest eager case, 4096 x 128K float32,
peaks near 3 x 2 GiB beyond its 2 GiB of logits).
`python -m torch_activations bench` produces the same table.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torch_activations.benchpeak import cross_entropy_rows, mib  # noqa: E402


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
            for r in cross_entropy_rows([vocab], args.tokens, [dtype], log=lambda s: None):
                print(f"{r['vocab']:>7} {r['dtype']:9} {r['smoothing']:>9} {mib(r['logits']):>13} "
                      f"{mib(r['eager']):>14} {mib(r['fused']):>13} {r['ratio']:6.2f}", flush=True)


if __name__ == "__main__":
    main()
