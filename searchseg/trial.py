"""Run one configuration locally, without Ray: ``python -m searchseg.trial [--data PATH] [--set k=v ...]``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from searchseg.errors import UserError, cli_entry
from searchseg.io_utils import folder_name
from searchseg.spaces.config import TrialConfig, config_help, parse_assignments
from searchseg.training.plugins import add_plugins_argument, load_plugins, trust_plugins


def build_parser(prog: str = "python -m searchseg.trial") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train one configuration locally (no Ray), printing validation metrics each epoch. "
                    "Results go to OUTPUT/NAME: config.yaml, metrics.csv, checkpoint.pt, best_model.pt.",
        epilog="config keys (--set KEY=VALUE):\n" + config_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", help="dataset folder, CSV manifest or dataset YAML (default: built-in demo)")
    parser.add_argument("--class-map", help="class map JSON/YAML/CSV (names, colours, ignore)")
    parser.add_argument("--config", type=Path, help="YAML file of config keys to start from")
    parser.add_argument("--set", dest="assignments", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override config keys, e.g. --set arch=fpn lr=3e-4 loss.dice=0.5")
    parser.add_argument("--epochs", type=int, help="number of epochs (same as --set epochs=N)")
    parser.add_argument("--name", help="trial folder name (default: ARCH-ENCODER-TIMESTAMP)")
    parser.add_argument("--output", type=Path, default=Path("results/trials"), help="parent folder of trial folders")
    parser.add_argument("--resume", action="store_true", help="continue the trial NAME from its checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--list", action="store_true", help="list architectures, encoders, losses, presets and exit")
    add_plugins_argument(parser)
    return parser


@cli_entry
def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    args = (build_parser(prog) if prog else build_parser()).parse_args(argv)
    trust_plugins(args.plugins)
    if args.list:
        from searchseg.training.augment import PRESETS  # the registries (and torch): after the arguments are read
        from searchseg.training.losses import LOSSES
        from searchseg.training.models import arch_names, list_encoders
        from searchseg.training.optim import OPTIMIZERS

        load_plugins(args.plugins)  # their names are listed too
        print("architectures:", ", ".join(arch_names()))
        print("losses:", ", ".join(sorted(LOSSES)))
        print("optimizers:", ", ".join(sorted(OPTIMIZERS)))
        print("augmentation presets:", ", ".join(PRESETS))
        print("encoders:", ", ".join(list_encoders()))
        return
    flat = TrialConfig.load(args.config).to_flat() if args.config else {}
    for key, value in (("data", args.data), ("class_map", args.class_map), ("epochs", args.epochs)):
        if value is not None:
            flat[key] = value
    assignments = parse_assignments(args.assignments)
    trust_plugins(assignments.get("plugins"))  # named on the command line
    flat.update(assignments)
    config = TrialConfig.from_flat(flat)
    if args.resume and not args.name:
        raise UserError("--resume needs --name of the trial to continue")
    name = folder_name(args.name) if args.name else f"{config.arch}-{config.encoder}-{time.strftime('%Y%m%d-%H%M%S')}"
    from searchseg.training.local_trial import run_local_trial

    result = run_local_trial(config, args.output / name, resume=args.resume, progress=not args.quiet)
    fit = result.fit
    from searchseg.training.engine import FitStatus  # loaded with the trial above

    if fit.status is FitStatus.NAN_LOSS:
        print(f"stopped: {fit.reason}", file=sys.stderr)
    best = f"{fit.best_miou:.4f} at epoch {fit.best_epoch}" if fit.best_epoch else "n/a"
    print(f"best val mIoU {best}; {fit.epochs_run} epochs in {result.seconds:.0f} s; results in {result.trial_dir}")
    if fit.status is FitStatus.NAN_LOSS:
        sys.exit(1)


if __name__ == "__main__":
    main()
