"""Peak memory of forward+backward: fused gated linear units against their
eager compositions (activation of the first half times the second half).

    python benchmarks/gated_memory.py [--tokens 4096] [--hidden 4096] [--dtype float32]

For each op and form (one tensor split along the last dimension, or the two
halves as separate tensors), prints the peak memory beyond the inputs and
grad_output (see torch_activations/benchpeak.py) and the ratio fused / eager.
The composition keeps act(a) (or sigmoid(b)) for the multiplication's
backward and materialises several temporaries; the fused op saves only its
inputs. `python -m torch_activations bench` produces the same table.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from torch_activations.benchpeak import GATED_OPS, gated_rows, mib  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "float64"])
    args = p.parse_args()
    print(f"tokens={args.tokens} hidden={args.hidden} dtype={args.dtype}: input {2 * args.hidden} wide, "
          f"output {args.hidden} wide; peak memory of forward+backward beyond inputs and grad_output")
    print(f"{'op':8} {'form':6} {'eager composition':>18} {'fused':>14} {'ratio':>7}")
    for r in gated_rows(GATED_OPS, args.tokens, args.hidden, [args.dtype], log=lambda s: None):
        print(f"{r['op']:8} {r['form']:6} {mib(r['eager']):>18} {mib(r['fused']):>14} {r['ratio']:7.2f}", flush=True)


if __name__ == "__main__":
    main()
