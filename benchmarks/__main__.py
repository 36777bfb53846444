"""``python -m benchmarks [--quick]``: run every benchmark, print the table, write RESULTS.md (full runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.suite import FULL, QUICK, run_all, write_results

RESULTS = Path(__file__).parent / "RESULTS.md"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke version: tiny searches, minutes on a laptop")
    parser.add_argument("--only", nargs="+", type=int, metavar="N", help="run only these benchmarks (1-7)")
    parser.add_argument("--output", type=Path,
                        help=f"where the table is written as each benchmark finishes (default: {RESULTS} for a full "
                             "run; a quick run only prints unless given one)")
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    output = args.output or (None if args.quick else RESULTS)

    def save(rows) -> None:  # after every benchmark: a crash in a later one keeps the rows measured so far
        if output is not None:
            write_results(rows, scale, output, only=args.only)

    run_all(scale, only=args.only, on_rows=save)
    if output is not None:
        print(f"written to {output}")


if __name__ == "__main__":
    main()
