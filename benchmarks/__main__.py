"""``python -m benchmarks [--quick]``: run every benchmark, print the table, write RESULTS.md (full runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.suite import FULL, QUICK, run_all, write_results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke version: tiny searches, minutes on a laptop")
    parser.add_argument("--only", nargs="+", type=int, metavar="N", help="run only these benchmarks (1-7)")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "RESULTS.md",
                        help="where a full run writes its table (quick runs only print)")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    rows = run_all(scale, only=args.only)
    if not args.quick:
        write_results(rows, scale, args.output, only=args.only)
        print(f"written to {args.output}")


if __name__ == "__main__":
    main()
