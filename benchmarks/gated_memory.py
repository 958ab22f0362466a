"""Peak memory of forward+backward: fused gated linear units against their
eager compositions (activation of the first half times the second half).

    python benchmarks/gated_memory.py [--tokens 4096] [--hidden 4096] [--dtype float32]

For each op and form (one tensor split along the last dimension, or the two
halves as separate tensors), prints the peak memory beyond the inputs and
grad_output (see _peak.py) and the ratio fused / eager. The composition keeps
act(a) (or sigmoid(b)) for the multiplication's backward and materialises
several temporaries; the fused op saves only its inputs.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _peak import mib, peak_bytes  # noqa: E402

OPS = ["glu", "swiglu", "geglu", "reglu"]


def make(op, form, impl, tokens, hidden, dtype):
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


def composition(op, a, b):
    import torch.nn.functional as TF

    if op == "glu":
        return a * TF.sigmoid(b)
    act = {"swiglu": TF.silu, "geglu": TF.gelu, "reglu": TF.relu}[op]
    return act(a) * b


def run(state):
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
        y = composition(op, a, b)
    grads = torch.autograd.grad(y, inputs, go)
    del y, grads


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "float64"])
    args = p.parse_args()
    print(f"tokens={args.tokens} hidden={args.hidden} dtype={args.dtype}: input {2 * args.hidden} wide, "
          f"output {args.hidden} wide; peak memory of forward+backward beyond inputs and grad_output")
    print(f"{'op':8} {'form':6} {'eager composition':>18} {'fused':>14} {'ratio':>7}")
    for op in OPS:
        for form in ("split", "pair"):
            if op == "glu" and form == "pair":
                continue
            eager = peak_bytes(make, run, op, form, "eager", args.tokens, args.hidden, args.dtype)
            fused = peak_bytes(make, run, op, form, "fused", args.tokens, args.hidden, args.dtype)
            print(f"{op:8} {form:6} {mib(eager):>18} {mib(fused):>14} {fused / eager:7.2f}", flush=True)


if __name__ == "__main__":
    main()
