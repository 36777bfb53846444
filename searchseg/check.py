"""Check a dataset before searching: ``python -m searchseg.check DATA [--class-map FILE] [--json] [--html]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from searchseg.errors import cli_entry
from searchseg.io_utils import writable_folder


def build_parser(prog: str = "python -m searchseg.check") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Report what is wrong with a dataset: unpaired, unreadable or truncated files, size mismatches, "
                    "mask colours or values outside the class map, class balance, image sizes, memory. Exit code 0 "
                    "when clean or warnings only, 1 when the data has errors, 2 for bad arguments.",
    )
    parser.add_argument("data", help="dataset folder, CSV manifest or dataset YAML")
    parser.add_argument("--class-map", help="class map JSON/YAML/CSV (names, colours, ignore)")
    parser.add_argument("--mask-suffix", help="mask suffix for masks beside their images, e.g. _1stHO")
    parser.add_argument("--image-size", type=int, default=256, help="working size for the memory estimate")
    parser.add_argument("--json", nargs="?", const=Path("data_check.json"), type=Path, metavar="FILE",
                        help="also write the report as JSON (default file: data_check.json)")
    parser.add_argument("--html", nargs="?", const=Path("data_check.html"), type=Path, metavar="FILE",
                        help="also write an HTML report with charts (default file: data_check.html)")
    parser.add_argument("--fix-mask-size", action="store_true",
                        help="resize masks whose size differs from their image but whose aspect ratio matches "
                             "(nearest neighbour; the original is kept as MASK.orig)")
    parser.add_argument("--infer-class-map", nargs="?", const=Path("class_map.draft.json"), type=Path,
                        metavar="FILE", help="list the distinct mask colours and write a draft class map to edit")
    parser.add_argument("--preflight", nargs="?", const="arch_loss", metavar="SPACE",
                        help="build the space's representative model, check the initial loss and over-fitting of "
                             "one batch, measure speed and memory, estimate the search's cost (default: arch_loss)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


@cli_entry
def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    args = (build_parser(prog) if prog else build_parser()).parse_args(argv)
    for flag, path in (("--json", args.json), ("--html", args.html), ("--infer-class-map", args.infer_class_map)):
        if path:  # refused before the check runs, not after
            writable_folder(path.expanduser().resolve().parent, f"{flag} path")
    from searchseg.jobs.datacheck import CheckOptions, format_report, run_data_check  # after the arguments

    outcome = run_data_check(CheckOptions(
        data=args.data, class_map=args.class_map, mask_suffix=args.mask_suffix, image_size=args.image_size,
        fix_mask_size=args.fix_mask_size, infer_class_map=args.infer_class_map, preflight_space=args.preflight,
        json_path=args.json, html_path=args.html, progress=not args.quiet,
    ))
    print(format_report(outcome))
    for label, path in (("json", args.json), ("html", args.html), ("draft class map", args.infer_class_map)):
        if path:
            print(f"{label}: {path}")
    sys.exit(1 if outcome.report.errors else 0)


if __name__ == "__main__":
    main()
