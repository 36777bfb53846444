"""Benchmark 8: would a lower image resolution rank configurations better than the first ASHA rung does?

ASHA compares trials after a few optimizer steps (its first rung). Issue 10 asks whether training at a lower
resolution, or on a fraction of the data, is a better cheap signal. With budgets counted in optimizer steps a
data fraction costs the same per step as the whole data, so only resolution can save time; it is measured here.

``K`` configurations are drawn at random from a space (the sampler a search uses). Each trains ``--steps``
optimizer steps at the full image size with all threads, scored at the first rung (a third of the steps) and at
the end; then again for the same steps at half the image size. Scores are mIoU over the validation and test
images together (more images, less noise; no model is chosen here). The Spearman correlation of each cheap
score with the full score, and what it costs, say which cheap signal ranks better per second.

``python -m benchmarks.fidelity --dataset dubai_aerial --configs 6`` prints a table and writes
``benchmarks/fidelity.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import optuna
import pandas as pd
import torch

from benchmarks.equal_time import DATASETS, IMAGE_SIZE
from searchseg.config import TrialConfig
from searchseg.data import load_from_config
from searchseg.engine import Trainer, fit
from searchseg.io_utils import atomic_write_text
from searchseg.space import load_space, trial_config_from_tune

EPOCH_STEPS = 15


def sampled_configs(space_name: str, count: int, seed: int) -> tuple[list[dict], dict]:
    space = load_space(space_name)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [trial_config_from_tune(space.sample(study.ask())) for _ in range(count)], space.fixed


def train_and_score(config: TrialConfig, data, rung_epoch: int) -> dict:
    """Seconds to train ``config.epochs`` epochs, the score at ``rung_epoch`` and at the end."""
    scored = data.splits["val"].tolist() + data.splits["test"].tolist()
    trainer = Trainer(config, data)
    scores = {}

    def score_at_rung(row: dict, trainer: Trainer) -> None:
        if trainer.epoch == rung_epoch:
            scores["rung"] = trainer.evaluate(indices=scored)[1]["miou"]

    started = time.perf_counter()
    result = fit(config, data, score_at_rung, progress=False, trainer=trainer)
    seconds = time.perf_counter() - started
    final = trainer.evaluate(indices=scored)[1]["miou"] if result.status == "completed" else 0.0
    return {"seconds": seconds, "rung": scores.get("rung", 0.0), "final": final}


def measure(dataset: str, space_name: str, count: int, steps: int, seed: int) -> list[dict]:
    configs, fixed = sampled_configs(space_name, count, seed)
    flat = {key: str(value) for key, value in DATASETS[dataset].items()}
    epochs = max(3, steps // EPOCH_STEPS)
    full_data = load_from_config(TrialConfig.from_flat({**flat, "image_size": IMAGE_SIZE}), progress=False)
    half_data = load_from_config(TrialConfig.from_flat({**flat, "image_size": IMAGE_SIZE // 2}), progress=False)
    rows = []
    torch.set_num_threads(os.cpu_count() or 1)
    for index, sample in enumerate(configs):
        base = {**fixed, **flat, **sample, "epochs": epochs, "epoch_steps": EPOCH_STEPS, "encoder_weights": "none",
                "seed": seed, "device": "cpu"}
        full = train_and_score(TrialConfig.from_flat({**base, "image_size": IMAGE_SIZE}), full_data, epochs // 3)
        half = train_and_score(TrialConfig.from_flat({**base, "image_size": IMAGE_SIZE // 2}), half_data, epochs)
        rows.append({"dataset": dataset, "config": sample, "full_seconds": full["seconds"], "full": full["final"],
                     "rung": full["rung"], "half_res": half["final"], "half_res_seconds": half["seconds"]})
        print(f"{index + 1}/{len(configs)} {sample['arch']}/{sample.get('encoder', '')}: full {full['final']:.3f} "
              f"({full['seconds']:.0f} s), first rung {full['rung']:.3f}, half resolution {half['final']:.3f} "
              f"({half['seconds']:.0f} s)", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    frame = pd.DataFrame(rows)
    lines = ["| dataset | configurations | cheap signal | Spearman with the full score | cost, share of a full trial |",
             "|---|---|---|---|---|"]
    for dataset, group in frame.groupby("dataset"):
        full_seconds = group["full_seconds"].sum()
        for label, column, seconds in (("first rung (1/3 of the steps)", "rung", full_seconds / 3),
                                       ("half resolution, all steps", "half_res", group["half_res_seconds"].sum())):
            rho = group[column].corr(group["full"], method="spearman")
            lines.append(f"| {dataset} | {len(group)} | {label} | {rho:+.2f} | {seconds / full_seconds:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fidelity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="dubai_aerial")
    parser.add_argument("--space", default="arch_loss")
    parser.add_argument("--configs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=90, help="a full trial's optimizer steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "fidelity.json")
    args = parser.parse_args()
    rows = measure(args.dataset, args.space, args.configs, args.steps, args.seed)
    previous = json.loads(args.output.read_text()) if args.output.is_file() else []
    rows = [r for r in previous if r["dataset"] != args.dataset] + rows
    atomic_write_text(args.output, json.dumps(rows, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
