"""Is a lower image resolution a cheaper, equally telling fidelity than fewer optimizer steps?

ASHA ranks trials on a low fidelity and only promotes the best. Today that fidelity is fewer optimizer steps at
the full resolution (the lowest rung). This measures whether training at half the resolution would rank the
configurations as well for less time.

For each dataset, ``--configs`` configurations of the ``arch_loss`` space (its start configurations, then random
samples, seeded) each train twice, at 128 px and at 64 px, with all threads, for ``FULL_EPOCHS`` epochs of
``EPOCH_STEPS`` optimizer steps, the learning-rate schedule planned over ``HORIZON_EPOCHS`` as in a budgeted
search (a trial's schedule runs on into the final training). Four fidelities are read from those runs:

- reference: 128 px after ``FULL_EPOCHS`` (the top rung of a 300 s plan on a 2-core CPU)
- rung: 128 px after ``RUNG_EPOCHS`` (what ASHA ranks on today)
- half-res: 64 px after ``FULL_EPOCHS``
- half-res rung: 64 px after ``RUNG_EPOCHS``

Each low fidelity is scored by the Spearman rank correlation of its validation mIoU with the reference's over
the configurations, whether it picks the reference's best configuration, and its measured cost relative to the
reference. ``python -m benchmarks.fidelity`` prints a markdown table and writes ``benchmarks/fidelity.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import optuna
import torch
from scipy.stats import spearmanr

from benchmarks.equal_time import DATASETS, available, decoded, space_trial_config
from searchseg.data.loader import SegmentationData
from searchseg.io_utils import atomic_write_text
from searchseg.spaces.space import SearchSpace, load_space
from searchseg.training.engine import StopTraining, fit

EPOCH_STEPS, RUNG_EPOCHS, FULL_EPOCHS, HORIZON_EPOCHS = 15, 3, 9, 45
RESOLUTIONS = (128, 64)
FIDELITIES = {"rung": (128, RUNG_EPOCHS), "half-res": (64, FULL_EPOCHS), "half-res rung": (64, RUNG_EPOCHS)}


def configurations(space: SearchSpace, count: int, seed: int) -> list[dict]:
    """The space's start configurations, then seeded random samples, ``count`` in all."""
    chosen = list(space.start[:count])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    while len(chosen) < count:
        trial = study.ask()
        chosen.append(space.sample(trial))
        study.tell(trial, 0.0)
    return chosen


def train_curve(space: SearchSpace, dataset: dict, searched: dict, data: SegmentationData, seed: int) -> dict:
    """Validation mIoU and cumulative seconds after each of ``FULL_EPOCHS`` epochs."""
    config = space_trial_config(space, dataset, searched, image_size=data.images.shape[1], epochs=HORIZON_EPOCHS,
                                epoch_steps=EPOCH_STEPS, seed=seed)

    def stop_at_full(row: dict, trainer) -> None:
        if trainer.epoch >= FULL_EPOCHS:
            raise StopTraining("full fidelity reached")

    started = time.perf_counter()
    history = fit(config, data, stop_at_full, progress=False).history
    seconds = np.cumsum([row["epoch_seconds"] for row in history])
    return {"val_miou": [row["val_miou"] for row in history], "seconds": seconds.tolist(),
            "wall_seconds": time.perf_counter() - started}


def score(runs: list[dict]) -> dict:
    """Each low fidelity against the reference over the configurations."""
    reference = [run[128]["val_miou"][FULL_EPOCHS - 1] for run in runs]
    reference_cost = sum(run[128]["seconds"][FULL_EPOCHS - 1] for run in runs)
    scored = {}
    for name, (size, epochs) in FIDELITIES.items():
        values = [run[size]["val_miou"][epochs - 1] for run in runs]
        cost = sum(run[size]["seconds"][epochs - 1] for run in runs)
        scored[name] = {"spearman": float(spearmanr(values, reference).statistic), "cost": cost / reference_cost,
                        "same_best": int(np.argmax(values)) == int(np.argmax(reference))}
    return scored


def measure(names: list[str], count: int, seed: int, on_dataset) -> list[dict]:
    torch.set_num_threads(os.cpu_count() or 1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space("arch_loss")
    rows = []
    for name, dataset in available(names):
        decoded_at = {size: decoded(dataset, size) for size in RESOLUTIONS}
        runs = []
        for searched in configurations(space, count, seed):
            run = {"config": searched}
            for size in RESOLUTIONS:
                run[size] = train_curve(space, dataset, searched, decoded_at[size], seed)
            runs.append(run)
            print(f"{name}: {searched['arch']}/{searched['encoder']} val mIoU at 128 px "
                  f"{run[128]['val_miou'][-1]:.3f}, at 64 px {run[64]['val_miou'][-1]:.3f}", flush=True)
        rows.append({"dataset": name, "configs": count, "seed": seed, "runs": runs, "scores": score(runs)})
        on_dataset(rows)
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"| dataset | fidelity (reference: 128 px, {FULL_EPOCHS * EPOCH_STEPS} steps) | cost vs reference | "
             "Spearman ρ with the reference | picks its best |", "|---|---|---|---|---|"]
    for row in rows:
        for name, (size, epochs) in FIDELITIES.items():
            result = row["scores"][name]
            lines.append(f"| {row['dataset']} ({row['configs']} configs) | {name}: {size} px, {epochs * EPOCH_STEPS}"
                         f" steps | {result['cost']:.2f} | {result['spearman']:+.2f} | "
                         f"{'yes' if result['same_best'] else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fidelity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=8, help="configurations per dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["dubai_aerial", "chase_db1"])
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "fidelity.json")
    args = parser.parse_args()

    def save(rows: list[dict]) -> None:  # after every dataset: a run cut short keeps what it measured
        atomic_write_text(args.output, json.dumps(rows, indent=1))

    rows = measure(args.datasets, args.configs, args.seed, save)
    print(table(rows))


if __name__ == "__main__":
    main()
