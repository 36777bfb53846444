"""Learning curves to replay searches on: a space's configurations trained once, every epoch scored.

A search on a 2-core CPU costs minutes per trial, so comparing searchers, schedulers and selection rules end to end
buys one or two seeds an hour. Replayed on recorded curves (``benchmarks.replay``), hundreds of searches cost
seconds. This trains, on a ``--holdout`` check split of ``equal_time`` (whole groups carved from the training
images with ``--split-seed``; the test images never seen):

- the space's start configurations (the first is searchseg's default, what ``--samples 0`` trains);
- the first start configuration again with ``--default-seeds`` other seeds: how far a seed alone moves a score,
  the yardstick for any difference between configurations;
- ``--samples`` configurations drawn at random from the space (Optuna's RandomSampler, seeded).

Each trains for ``--epochs`` epochs of ``--epoch-steps`` optimizer steps with its schedule planned over all of them
(as a trial of the search is), and after every epoch records the seconds the epoch took, its validation mIoU (what
a search sees), its validation class counts per image (what the noise-aware rules resample) and its check-split
mIoU (what the choice would get; no rule reads it). A configuration's rows are appended to ``benchmarks/curves.json``
when it has finished; a run cut short resumes with the configurations it lacks. Nothing is replaced.

``python -m benchmarks.curves`` (2-3 minutes per configuration of 24 epochs of 15 steps at 128 px on a 2-core CPU; the
first study, 18 configurations, took an hour); ``benchmarks.replay`` replays searches on what it records.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import optuna
import torch

from benchmarks.equal_time import (
    CHECK_GROUP,
    DATASETS,
    appended_rows,
    commit,
    decoded,
    holdout_dataset,
    space_trial_config,
)
from searchseg.data.loader import SegmentationData
from searchseg.spaces.space import SearchSpace, load_space, trial_config_from_tune
from searchseg.training.engine import Trainer, fit

OUTPUT = Path(__file__).parent / "curves.json"


def configurations(space: SearchSpace, default_seeds: int, samples: int, sample_seed: int,
                   seeded: tuple[str, ...] = (), other_seeds: int = 2) -> list[dict]:
    """Every configuration to train: an id, its searched keys and its training seed. ``seeded`` names
    configurations (``sample_0_1``) trained with ``other_seeds`` more seeds as well, as the default is with
    ``default_seeds``: whether a configuration that scored well keeps its lead with other seeds."""
    starts = [{"config_id": f"start_{i}", "searched": start, "seed": 0} for i, start in enumerate(space.start)]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=sample_seed))
    drawn = [{"config_id": f"sample_{sample_seed}_{index}",
              "searched": trial_config_from_tune(space.sample(study.ask())), "seed": 0} for index in range(samples)]
    searched = {configuration["config_id"]: configuration["searched"] for configuration in starts + drawn}
    unknown = sorted(set(seeded) - set(searched))
    if unknown:
        raise SystemExit(f"error: no configuration {', '.join(unknown)} in this study; its configurations: "
                         f"{', '.join(searched)}")
    more = [("start_0", seed) for seed in range(1, default_seeds + 1)]
    more += [(config_id, seed) for config_id in seeded for seed in range(1, other_seeds + 1)]
    reseeded = [{"config_id": f"{config_id}_seed_{seed}", "searched": searched[config_id], "seed": seed}
                for config_id, seed in more]
    return starts + reseeded + drawn


def to_train(rows: list[dict], study: dict, chosen: list[dict]) -> list[dict]:
    """The configurations of ``chosen`` that ``rows`` hold no curve of for this study (a run cut short resumes)."""
    done = {row["config_id"] for row in rows if all(row.get(key) == value for key, value in study.items())}
    return [configuration for configuration in chosen if configuration["config_id"] not in done]


def curve(space: SearchSpace, dataset: dict, data: SegmentationData, searched: dict, seed: int, epochs: int,
          epoch_steps: int) -> list[dict]:
    """One configuration's row per epoch: seconds, validation mIoU and class counts, check-split mIoU."""
    trainer = Trainer(space_trial_config(space, dataset, searched, image_size=data.images.shape[1], epochs=epochs,
                                         epoch_steps=epoch_steps, seed=seed, encoder_weights="none"), data)
    rows: list[dict] = []
    started = time.perf_counter()

    def record(row: dict, trained: Trainer) -> None:
        nonlocal started
        val_counts = trained.eval_counts.tolist()  # the validation evaluation's, before the check split's
        seconds = time.perf_counter() - started  # training and validation: what a trial's epoch costs
        _, check = trained.evaluate("test")
        rows.append({"epoch": trained.epoch, "seconds": seconds, "val_miou": row["val_miou"],
                     "check_miou": check["miou"], "val_counts": val_counts})
        started = time.perf_counter()

    fit(trainer.config, data, record, progress=False, trainer=trainer)
    return rows


def measure(dataset_name: str, split_seed: int, space_name: str, epochs: int, epoch_steps: int, default_seeds: int,
            samples: int, sample_seed: int, output: Path, seeded: tuple[str, ...] = (), other_seeds: int = 2) -> None:
    space = load_space(space_name)
    rows, append = appended_rows(output, indent=None)  # every row holds validation counts per image: one line
    key = {"dataset": dataset_name, "split_seed": split_seed, "space": space_name, "epochs": epochs,
           "epoch_steps": epoch_steps}
    todo = to_train(rows, key, configurations(space, default_seeds, samples, sample_seed, seeded, other_seeds))
    print(f"{len(todo)} configurations to train", flush=True)
    with tempfile.TemporaryDirectory(prefix="curves_") as folder:
        dataset = DATASETS[dataset_name]
        used = holdout_dataset(dataset_name, dataset, decoded(dataset), split_seed, Path(folder))
        data = decoded(used)
        for configuration in todo:
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            epoch_rows = curve(space, used, data, configuration["searched"], configuration["seed"], epochs,
                               epoch_steps)
            for row in epoch_rows:
                append({**key, **configuration, "commit": commit(), "started": started, **row})
            last = epoch_rows[-1]
            print(f"{configuration['config_id']} {configuration['searched']}: val {last['val_miou']:.4f}, check "
                  f"{last['check_miou']:.4f} after {sum(r['seconds'] for r in epoch_rows):.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.curves", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(CHECK_GROUP), default="dubai_aerial_by_crop")
    parser.add_argument("--split-seed", type=int, default=15, help="which check split (equal_time --holdout's seed)")
    parser.add_argument("--space", default="arch_loss")
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--epoch-steps", type=int, default=15)
    parser.add_argument("--default-seeds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=14)
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--seeds-of", nargs="+", default=[], metavar="CONFIG_ID",
                        help="configurations of the study (sample_0_1...) to train with --other-seeds more seeds")
    parser.add_argument("--other-seeds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    measure(args.dataset, args.split_seed, args.space, args.epochs, args.epoch_steps, args.default_seeds,
            args.samples, args.sample_seed, args.output, tuple(args.seeds_of), args.other_seeds)


if __name__ == "__main__":
    main()
