"""Does an ensemble of two half-length models beat one full-length model at the same optimizer steps?

The issue's ensemble lever (the final model an ensemble of the top trials continued) pays only if, at equal cost,
averaging two models beats training one for twice as long. On data so small that the learning curve is flat
before the budget ends, it might: what the longer training no longer gains, the ensemble's averaging can. This
measures that before anything is built, on check splits (``equal_time.holdout_dataset``: whole groups carved from
the training images with the seed, the test images never seen), paired by seed:

- single: the space's first start configuration (what the no-search arm trains) for ``--epochs`` epochs of
  ``--epoch-steps`` steps, the learning-rate schedule planned over all of them (a 300 s budget on a 2-core CPU
  trains about 60 epochs of 15 steps);
- halves: the same configuration with two seeds, each for half the epochs, its own schedule over them;
- ensemble: the halves' class probabilities averaged.

Each is scored on the validation and the check split; the validation win rate of the ensemble over the better half
(bootstrap over validation images) is what a rule "ensemble when validation says it is better" would see.
``python -m benchmarks.ensemble --seeds 3`` prints a table and appends to ``benchmarks/ensemble.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.equal_time import (
    BASE_SETS,
    CHECK_GROUP,
    appended_rows,
    available,
    commit,
    decoded,
    holdout_dataset,
    paired_cell,
    space_trial_config,
)
from searchseg.data.loader import SegmentationData
from searchseg.spaces.space import load_space
from searchseg.training.class_counts import bootstrap_win_rate, class_counts_per_image
from searchseg.training.engine import Trainer, fit
from searchseg.training.metrics import SegmentationMetrics, predict_labels

HALF_SEED_OFFSET = 1000  # the second half-length model's seed: another initialisation and data order


def train(data: SegmentationData, dataset: dict, epochs: int, epoch_steps: int, seed: int, threads: int) -> Trainer:
    """The space's first start configuration trained for ``epochs``, its schedule over them."""
    space = load_space("arch_loss")
    trainer = Trainer(space_trial_config(space, dataset, space.start[0], image_size=data.images.shape[1],
                                         epochs=epochs, epoch_steps=epoch_steps, seed=seed, threads=threads), data)
    fit(trainer.config, data, progress=False, trainer=trainer)
    return trainer


@torch.no_grad()
def probabilities(trainer: Trainer, indices: np.ndarray) -> torch.Tensor:
    """Class probabilities ``(N, C, H, W)`` (one channel, the foreground's, for a binary model)."""
    trainer.model.eval()
    out = []
    for start in range(0, len(indices), trainer.config.batch_size):
        batch = torch.from_numpy(trainer.data.images[indices[start:start + trainer.config.batch_size]])
        logits = trainer.full_size_logits(trainer.prepare_images(batch.permute(0, 3, 1, 2))).float()
        out.append(torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1))
    return torch.cat(out)


def scored(probs: torch.Tensor, data: SegmentationData, indices: np.ndarray) -> tuple[float, np.ndarray]:
    """mIoU and per-image class counts of the predictions these probabilities give."""
    logits = torch.logit(probs.clamp(1e-6, 1 - 1e-6)) if probs.shape[1] == 1 else probs.log()
    labels = predict_labels(logits)
    masks = torch.from_numpy(data.masks[indices]).long()
    metrics = SegmentationMetrics(data.class_names, data.ignore_index)
    metrics.update(labels, masks)
    counts = class_counts_per_image(labels.numpy(), masks.numpy(), data.num_classes, data.ignore_index)
    return metrics.compute()["miou"], counts


def compare(data: SegmentationData, dataset: dict, epochs: int, epoch_steps: int, seed: int, threads: int) -> dict:
    """The single model, the two halves and their ensemble on validation and the check split."""
    half = max(1, epochs // 2)
    started = time.perf_counter()
    models = {"single": train(data, dataset, epochs, epoch_steps, seed, threads),
              "half_a": train(data, dataset, half, epoch_steps, seed, threads),
              "half_b": train(data, dataset, half, epoch_steps, seed + HALF_SEED_OFFSET, threads)}
    row: dict = {"epochs": epochs, "epoch_steps": epoch_steps, "seconds": time.perf_counter() - started}
    for split in ("val", "test"):
        indices = data.splits[split]
        probs = {name: probabilities(trainer, indices) for name, trainer in models.items()}
        probs["ensemble"] = (probs["half_a"] + probs["half_b"]) / 2
        results = {name: scored(p, data, indices) for name, p in probs.items()}
        row[split] = {name: miou for name, (miou, _) in results.items()}
        if split == "val":
            better_half = max(("half_a", "half_b"), key=lambda name: results[name][0])
            row["ensemble_val_win_rate"] = bootstrap_win_rate(results["ensemble"][1], results[better_half][1])
    return row


def measure(names: list[str], seeds: range, epochs: int, epoch_steps: int, threads: int, image_size: int,
            on_row) -> list[dict]:
    rows = []
    for name, dataset in available(names):
        full = decoded(dataset, image_size)
        for seed in seeds:
            with tempfile.TemporaryDirectory() as folder:
                used = holdout_dataset(name, dataset, full, seed, Path(folder))
                data = decoded(used, image_size)
                row = {"dataset": name, "seed": seed, "commit": commit(), "started": time.strftime("%Y-%m-%d %H:%M"),
                       **compare(data, used, epochs, epoch_steps, seed, threads)}
            rows.append(row)
            print(f"{name} seed {seed}: check single {row['test']['single']:.4f} | halves "
                  f"{row['test']['half_a']:.4f} {row['test']['half_b']:.4f} | ensemble {row['test']['ensemble']:.4f}"
                  f" (val win rate {row['ensemble_val_win_rate']:.0%}) in {row['seconds']:.0f} s", flush=True)
            on_row(row)
    return rows


def table(rows: list[dict]) -> str:
    """Per dataset: the check split's mean mIoU of each arm, and ensemble - single paired by seed."""
    lines = ["| dataset | runs | single | better half (val) | ensemble | ensemble - single (check) | "
             "ensemble - better half (check) | val prefers the ensemble |", "|---|---|---|---|---|---|---|---|"]
    for name in sorted({row["dataset"] for row in rows}):
        group = [row for row in rows if row["dataset"] == name]
        better = [row["test"][max(("half_a", "half_b"), key=lambda h, r=row: r["val"][h])] for row in group]

        ensemble = [row["test"]["ensemble"] for row in group]
        lines.append(
            f"| {name} | {len(group)} | {statistics.fmean(row['test']['single'] for row in group):.3f} | "
            f"{statistics.fmean(better):.3f} | {statistics.fmean(ensemble):.3f} | "
            f"{paired_cell([e - row['test']['single'] for e, row in zip(ensemble, group, strict=True)])} | "
            f"{paired_cell([e - b for e, b in zip(ensemble, better, strict=True)])} | "
            f"{sum(row['ensemble_val_win_rate'] >= 0.5 for row in group)} of {len(group)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ensemble", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=sorted(CHECK_GROUP), default=sorted(BASE_SETS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=60, help="the single model's epochs (each half trains half)")
    parser.add_argument("--epoch-steps", type=int, default=15)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "ensemble.json")
    args = parser.parse_args()
    previous, save = appended_rows(args.output)

    measure(args.datasets, range(args.first_seed, args.first_seed + args.seeds), args.epochs, args.epoch_steps,
            args.threads, args.image_size, save)
    print(table(previous))


if __name__ == "__main__":
    main()
