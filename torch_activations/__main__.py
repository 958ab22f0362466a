"""Command line: ``python -m torch_activations <command>``.

  demo             our activations swapped into a small transformer model:
                   parity, a short training run, a profile and a Chrome trace
  check [OP ...]   validation table: errors vs PyTorch and a float64
                   reference, gradcheck, gradgradcheck (exit 1 on failure)
  check --accuracy ulp-error sweep of every smooth op, written to ACCURACY.md
  plot             PNG grid of every activation and its derivative, with
                   dead zones, saturation and ranges marked
  bench            speed against PyTorch eager, torch.compile and a memory
                   copy, peak memory; writes BENCHMARKS.md and a PNG chart
"""
import argparse
import os
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_activations",
                                     description="torch_activations: activation functions as C++ PyTorch operators. "
                                                 "Run a command with --help for its options.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="swap our activations into a small model: parity, training, profile",
                            description="Builds a small model with torch.nn activations (an MLP encoder and a "
                                        "LLaMA-style block with F.silu(a) * b gating), swaps ours in with "
                                        "replace_activations and patch(), checks float64 parity, trains a few "
                                        "steps, profiles one step and writes a Chrome trace. Exit code 1 if "
                                        "parity fails or our ops are missing from the profile.")
    p_demo.add_argument("--steps", type=int, default=20, help="training steps (default: 20)")
    p_demo.add_argument("--trace", default=os.path.join("out", "torch_activations_demo_trace.json"),
                        help="Chrome trace file to write (default: %(default)s)")
    p_demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p_check = sub.add_parser("check", help="per-op validation table against PyTorch and a float64 reference",
                             description="For every op (or the named ones): largest error in ulps of ours and "
                                         "of PyTorch's built-in against an accurate float64 reference, in "
                                         "float32 and bfloat16, forward and d/dx; parity with PyTorch; "
                                         "gradcheck and gradgradcheck. Exit code 1 if any op fails.")
    p_check.add_argument("ops", nargs="*", help="ops to check (default: all)")
    p_check.add_argument("--accuracy", action="store_true",
                         help="instead: ulp-error sweep of every smooth op (ours and PyTorch's, forward and d/dx, "
                              "float32, float64, bfloat16, float16), written to ACCURACY.md")
    p_check.add_argument("--exhaustive", action="store_true",
                         help="with --accuracy: every one of the 2^32 float32 bit patterns (hours)")
    p_check.add_argument("--points", type=int, default=1 << 21,
                         help="with --accuracy: float32 inputs per sign (default: %(default)s)")
    p_check.add_argument("--f64-points", type=int, default=10000,
                         help="with --accuracy: float64 inputs per op, against mpmath (default: %(default)s)")
    p_check.add_argument("--output", default="ACCURACY.md", help="with --accuracy: file to write (default: %(default)s)")
    p_plot = sub.add_parser("plot", help="PNG grid of every activation and its derivative",
                            description="Draws each activation f and its derivative f' (from our backward "
                                        "kernels) on one PNG grid, shading dead zones (f' = 0) and saturated "
                                        "regions (small |f'|), marking kinks and stating each range.")
    p_plot.add_argument("--output", "-o", default=os.path.join("out", "torch_activations.png"),
                        help="PNG file to write (default: %(default)s)")
    p_plot.add_argument("--xmax", type=float, default=6.0, help="x axis from -XMAX to XMAX (default: 6)")
    from . import bench as _bench

    _bench.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from . import demo

        if args.steps < 1:
            parser.error("--steps must be at least 1")
        return demo.run(steps=args.steps, trace=args.trace, seed=args.seed)
    if args.command == "check" and args.accuracy:
        from . import accuracy

        return accuracy.run(args.output, points=args.points, f64_points=args.f64_points,
                            exhaustive=args.exhaustive, ops=args.ops or None)
    if args.command == "check":
        from . import check

        return check.run(args.ops)
    if args.command == "plot":
        from . import plot

        return plot.run(output=args.output, xmax=args.xmax)
    if args.command == "bench":
        return _bench.main_args(args, parser)
    return 2


if __name__ == "__main__":
    sys.exit(main())
