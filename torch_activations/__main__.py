"""Command line: ``python -m torch_activations <command>``.

  check [OP ...]   validation table: errors vs PyTorch and a float64
                   reference, gradcheck, gradgradcheck (exit 1 on failure)
"""
import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_activations", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="per-op validation table against PyTorch and a float64 reference")
    p_check.add_argument("ops", nargs="*", help="ops to check (default: all)")
    args = parser.parse_args(argv)
    if args.command == "check":
        from . import check

        return check.run(args.ops)
    return 2


if __name__ == "__main__":
    sys.exit(main())
