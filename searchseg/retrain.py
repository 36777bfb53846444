"""Retrain an experiment's best configuration and evaluate it: ``python -m searchseg.retrain results/EXP``."""

from __future__ import annotations

import argparse
from pathlib import Path

from searchseg.errors import cli_entry
from searchseg.layout import ExperimentLayout
from searchseg.options import EXPORT_FORMATS
from searchseg.training.plugins import add_plugins_argument, trust_plugins


def build_parser(prog: str = "python -m searchseg.retrain") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Retrain EXPERIMENT/best_config.yaml on train+val for its full epoch budget and evaluate on the "
                    "test split: EXPERIMENT/final/ gets metrics.json, model.pt, curves.csv and overlays/.",
    )
    parser.add_argument("experiment", type=Path, help="experiment folder, e.g. results/arch_loss-20261121-120000")
    parser.add_argument("--seeds", type=int, default=1, help="retrain K times with consecutive seeds: mean and spread")
    parser.add_argument("--epochs", type=int, help="override the epoch budget")
    parser.add_argument("--export", choices=EXPORT_FORMATS, help="write a deployable model checked against PyTorch")
    parser.add_argument("--overlays", type=int, default=6, help="number of test images drawn as overlays")
    parser.add_argument("--trial", metavar="TRIAL_ID",
                        help="retrain this trial instead of the best (e.g. a point of pareto.csv) into "
                             "EXPERIMENT/final-TRIAL_ID/, which searchseg predict takes as its model")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_plugins_argument(parser)
    return parser


@cli_entry
def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    args = (build_parser(prog) if prog else build_parser()).parse_args(argv)
    trust_plugins(args.plugins)
    from searchseg.final.finalize import retrain_best  # torch: after the arguments are read

    summary = retrain_best(args.experiment, seeds=args.seeds, epochs=args.epochs, export=args.export,
                           overlays=args.overlays, progress=not args.quiet, trial=args.trial)
    spread = f" ± {summary.test_miou_std:.4f}" if args.seeds > 1 else ""
    final = ExperimentLayout(args.experiment).final(args.trial)
    print(f"test mIoU {summary.test_miou:.4f}{spread}; results in {final.path}")


if __name__ == "__main__":
    main()
