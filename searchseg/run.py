"""Search, then retrain and evaluate the best: ``python -m searchseg.run --space arch_loss``."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from searchseg.api import OutputConfig, ResourceConfig, Search, SearchConfig
from searchseg.errors import cli_entry
from searchseg.options import EXPORT_FORMATS, Scheduler, Searcher, Tracker
from searchseg.spaces.config import parse_assignments
from searchseg.spaces.space import list_spaces
from searchseg.training.plugins import add_plugins_argument, trust_plugins
from searchseg.tuning.budget import DEFAULT_BUDGET_SECONDS, format_duration, parse_duration, process_started_at


def build_parser(prog: str = "python -m searchseg.run") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Search hyperparameters with Ray Tune (Optuna TPE + ASHA) within a wall-clock budget planned "
                    "from measured step costs, continue the best trial into the final model and evaluate it on the "
                    "held-out test split. With no arguments: the arch_loss space on the built-in demo data, "
                    f"{format_duration(DEFAULT_BUDGET_SECONDS)} on a laptop CPU.",
    )
    _add_data_arguments(parser.add_argument_group("the data and the space"))
    _add_search_arguments(parser.add_argument_group("budget and search"))
    _add_resource_arguments(parser.add_argument_group("where the trials run"))
    _add_output_arguments(parser.add_argument_group("results and output"))
    add_plugins_argument(parser)
    return parser


def _add_data_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--space", default="arch_loss",
                       help=f"bundled space ({', '.join(list_spaces())}) or a path to a space YAML")
    group.add_argument("--data", help="dataset folder, CSV manifest or dataset YAML (default: built-in demo)")
    group.add_argument("--class-map", help="class map JSON/YAML (names, colours, ignore)")
    group.add_argument("--set", dest="assignments", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                       help="fix config keys in every trial, e.g. --set image_size=256 batch_size=16; a key the "
                            "space searches is refused (it would be ignored)")


def _add_search_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--budget", metavar="DURATION",
                       help="wall-clock time for the whole job (300, 300s, 20m, 2h): data check, search, final "
                            "model, evaluation and report end within it. The plan (trials, fidelity in optimizer "
                            "steps, final-training share) is computed from measured step times and printed first "
                            f"(default: {format_duration(DEFAULT_BUDGET_SECONDS)}, a first look; give your own "
                            "data 20m or more)")
    group.add_argument("--samples", type=int,
                       help="with --budget: at most this many trials in the plan (0: no search, the space's first "
                            "start configuration trained for the whole budget); without --budget: a search sized by "
                            "hand, this many trials, the best retrained from scratch")
    group.add_argument("--epochs", type=int,
                       help="with --budget: at most this many of the plan's epochs per trial; without --budget: "
                            "a search sized by hand, the ASHA budget per trial (default: the space's)")
    group.add_argument("--concurrency", type=int, help="most trials at once (default: as resources allow)")
    group.add_argument("--warm-start", metavar="EXPERIMENT",
                       help="an earlier experiment folder (results/NAME) on the same or similar data: its trials "
                            "are told to the searcher first and its best configuration trains first")
    group.add_argument("--smoke", action="store_true", help="tiny run to check the set-up: 2 trials, 2 epochs, 64px")
    group.add_argument("--seed", type=int, help="seed of the sampler (default: the space's)")
    group.add_argument("--searcher", choices=[s.value for s in Searcher], default=Searcher.TPE.value,
                       help="Optuna TPE (default), or random sampling as a baseline")
    group.add_argument("--no-early-stopping", action="store_true",
                       help="run every trial to the full epoch budget (no ASHA)")
    group.add_argument("--objectives", metavar="METRIC:DIR,COST[:min]...",
                       help="a Pareto search: the metric, then costs to minimise (latency_ms, batch_latency_ms, "
                            "params_m, gmacs), e.g. val_miou:max,latency_ms:min; early stopping then promotes by "
                            "non-dominated sorting (default: the space's metric alone)")
    group.add_argument("--max-latency-ms", type=float, metavar="MS",
                       help="train no configuration slower than MS milliseconds per image (batch 1, measured in "
                            "the trial on its resources before its first epoch); the searcher learns to avoid them")


def _add_resource_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (default: 1 on <=4 CPUs, else 2)")
    group.add_argument("--gpus-per-trial", type=float,
                       help="GPUs per trial, fractions allowed: 0.25 packs 4 trials on a GPU (default: 1 if any)")
    group.add_argument("--address", help="join a running Ray cluster, e.g. auto or ray://HEAD:10001")
    group.add_argument("--cluster-wait", metavar="DURATION", default="10m",
                       help="with --address: how long to wait for nodes that can run one trial (an autoscaling "
                            "cluster starts its workers on demand; Ray's autoscaler is asked for them) (default: 10m)")
    group.add_argument("--dashboard", action="store_true",
                       help="start Ray's dashboard with the local cluster and print its URL (pip install "
                            "'searchseg[dashboard]')")
    group.add_argument("--storage", help="results location shared by all nodes: a folder, file:// or s3:// URI")
    group.add_argument("--max-failures", type=int, default=2, help="retries of a crashed trial from its checkpoint")


def _add_output_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--name", help="experiment name: results/NAME (default: SPACE-TIMESTAMP)")
    group.add_argument("--resume", action="store_true", help="continue the interrupted experiment --name")
    group.add_argument("--results", type=Path, default=Path("results"), help="parent folder of experiments")
    group.add_argument("--no-retrain", action="store_true", help="stop after the search")
    group.add_argument("--retrain-seeds", type=int, default=1,
                       help="with --samples/--epochs and no --budget: retrain the best K times, mean and spread "
                            "(a planned run continues the best trial once; 'searchseg retrain --seeds K' retrains it)")
    group.add_argument("--export", choices=EXPORT_FORMATS, help="also write a deployable model of the best")
    group.add_argument("--tracker", dest="trackers", nargs="+", choices=[t.value for t in Tracker], default=[],
                       help="also log to these trackers through Ray Tune (TensorBoard files are always written; "
                            "W&B runs offline without an API key; MLflow logs to EXPERIMENT/mlflow.db)")
    group.add_argument("--quiet", action="store_true", help="no progress output")
    group.add_argument("--verbose", action="store_true", help="Ray Tune's own status tables instead of the bar")


@cli_entry
def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    args = (build_parser(prog) if prog else build_parser()).parse_args(argv)
    started_at = process_started_at()  # the budget counts from the command's start, imports included
    trust_plugins(args.plugins)
    job = Search(
        space=args.space, data=args.data, class_map=args.class_map, fixed=parse_assignments(args.assignments),
        resume=args.resume,
        search=SearchConfig(samples=args.samples, epochs=args.epochs, concurrency=args.concurrency, seed=args.seed,
                            searcher=Searcher(args.searcher),
                            scheduler=Scheduler.NONE if args.no_early_stopping else Scheduler.ASHA,
                            budget=parse_duration(args.budget) if args.budget is not None else None,
                            smoke=args.smoke, objectives=args.objectives, max_latency_ms=args.max_latency_ms,
                            warm_start=args.warm_start),
        resources=ResourceConfig(cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                                 address=args.address, max_failures=args.max_failures, dashboard=args.dashboard,
                                 cluster_wait=parse_duration(args.cluster_wait, "--cluster-wait")),
        output=OutputConfig(results_dir=args.results, name=args.name, storage=args.storage, trackers=args.trackers,
                            verbose=0 if args.quiet else (2 if args.verbose else 1)),
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
