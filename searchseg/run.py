"""Search, then retrain and evaluate the best: ``python -m searchseg.run --space arch_loss``."""

from __future__ import annotations

import argparse
import importlib.util

from searchseg.api import Search
from searchseg.errors import cli_entry
from searchseg.option_flags import add_flags, record_from_flags
from searchseg.options import (
    DEFAULT_BUDGET_SECONDS,
    EXPORT_FORMATS,
    OutputConfig,
    ResourceConfig,
    SearchConfig,
    format_duration,
)
from searchseg.spaces.config import parse_assignments
from searchseg.spaces.space import list_spaces
from searchseg.training.plugins import add_plugins_argument, trust_plugins
from searchseg.tuning.budget import process_started_at


def build_parser(prog: str = "python -m searchseg.run") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Search hyperparameters with Ray Tune (Optuna TPE + ASHA) within a wall-clock budget planned "
                    "from measured step costs, continue the best trial into the final model and evaluate it on the "
                    "held-out test split. With no arguments: the arch_loss space on the built-in demo data, "
                    f"{format_duration(DEFAULT_BUDGET_SECONDS)} on a laptop CPU.",
    )
    _add_data_arguments(parser.add_argument_group("the data and the space"))
    add_flags(parser.add_argument_group("budget and search"), SearchConfig)
    add_flags(parser.add_argument_group("where the trials run"), ResourceConfig)
    _add_output_arguments(parser.add_argument_group("results and output"))
    add_plugins_argument(parser)
    return parser


def _add_data_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--space", default="arch_loss",
                       help=f"bundled space ({', '.join(list_spaces())}) or a path to a space YAML")
    group.add_argument("--data", help="dataset folder, CSV manifest or dataset YAML (default: built-in demo)")
    group.add_argument("--class-map", help="class map JSON/YAML/CSV (names, colours, ignore)")
    group.add_argument("--set", dest="assignments", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                       help="fix config keys in every trial, e.g. --set image_size=256 batch_size=16; a key the "
                            "space searches is refused (it would be ignored)")


def _add_output_arguments(group: argparse._ArgumentGroup) -> None:
    add_flags(group, OutputConfig)
    group.add_argument("--resume", action="store_true", help="continue the interrupted experiment --name")
    group.add_argument("--no-retrain", action="store_true", help="stop after the search")
    group.add_argument("--retrain-seeds", type=int, default=1,
                       help="with --samples/--epochs and no --budget: retrain the best K times, mean and spread "
                            "(a planned run continues the best trial once; 'searchseg retrain --seeds K' retrains it)")
    group.add_argument("--export", choices=EXPORT_FORMATS, help="also write a deployable model of the best")


@cli_entry
def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    args = (build_parser(prog) if prog else build_parser()).parse_args(argv)
    started_at = process_started_at()  # the budget counts from the command's start, imports included
    trust_plugins(args.plugins)
    job = Search(
        space=args.space, data=args.data, class_map=args.class_map, fixed=parse_assignments(args.assignments),
        resume=args.resume, search=record_from_flags(SearchConfig, args),
        resources=record_from_flags(ResourceConfig, args), output=record_from_flags(OutputConfig, args),
    )
    outcome = job.fit(retrain=not args.no_retrain, retrain_seeds=args.retrain_seeds, export=args.export,
                      started_at=started_at)
    search = outcome.search
    best = search.best_config
    losses = " + ".join(f"{weight:g} {name}" for name, weight in best.loss.items())
    print(f"best configuration: {best.arch}/{best.encoder}, lr {best.lr:g}, weight decay {best.weight_decay:g}, "
          f"loss {losses}, {best.augment} augmentation, {best.image_size} px "
          f"(every key: {search.experiment_dir / 'best_config.yaml'})")
    if outcome.final:
        spread = f" ± {outcome.final.test_miou_std:.4f}" if args.retrain_seeds > 1 else ""
        print(f"test mIoU {outcome.final.test_miou:.4f}{spread} on {outcome.final.test_images} held-out "
              f"images (pixel accuracy {outcome.final.mean_pixel_accuracy:.4f})")
        print(f"predict new images: searchseg predict {search.experiment_dir} IMAGES... --out DIR")
    print(f"report: {outcome.report}")
    missing = "" if importlib.util.find_spec("optuna_dashboard") else " (pip install 'searchseg[trackers]' first)"
    print(f"optuna study: optuna-dashboard sqlite:///{outcome.study.resolve()}{missing}")
    print(f"results: {search.experiment_dir}")


if __name__ == "__main__":
    main()
