"""The ensemble lever in the form the product would take: the search's top two trials continued, each for half the
final stage's seconds, their class probabilities averaged, against the search's own final model (its chosen trial
continued for all of them) and against no search.

The pilot (``benchmarks.ensemble``) trained one configuration with two seeds; here the members are what a search
leaves: the trial the final stage continued and the best-scoring other trial, each from its latest checkpoint. A
search trains both for its rungs and then keeps one, so half of its work is thrown away; an ensemble keeps it. Per
dataset and seed, on the check splits of ``equal_time --holdout`` (the test images never seen):

- search: ``run --budget T`` as a user runs it; its final model scored on validation and the check split;
- no search: the same with ``--samples 0``;
- ensemble: the chosen trial and the runner-up, each continued from its checkpoint by the final stage's own
  ``FinalTraining`` for half the seconds the search's final training took (the sum of its epochs' seconds), on all
  CPUs, with the step cost the run's plan estimated; the last epoch of each kept.

``python -m benchmarks.ensemble_search --seeds 3 --first-seed 4`` appends every row to
``benchmarks/ensemble_search.json`` and prints the table.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.ensemble import probabilities, scored
from benchmarks.equal_time import (
    check_split_main,
    check_split_runs,
    decoded,
    holdout_dataset,
    paired_cell,
    searchseg_run,
)
from searchseg.data.loader import SegmentationData
from searchseg.final.finalize import FinalTraining
from searchseg.layout import ExperimentLayout
from searchseg.machine import available_cpus
from searchseg.spaces.config import TrialConfig
from searchseg.training.checkpoints import load_state
from searchseg.training.class_counts import bootstrap_win_rate
from searchseg.training.engine import Trainer, torch_threads


def members(experiment: ExperimentLayout, chosen: str) -> list[tuple[str, Path, Path]]:
    """``(trial id, config, latest checkpoint state)`` of the chosen trial and the best-scoring other trial that
    saved a checkpoint; fewer when the search left fewer."""
    trials = pd.read_csv(experiment.trials).sort_values("best_val_miou", ascending=False)
    found = []
    for trial_id in [chosen, *[t for t in trials["trial_id"].astype(str) if t != chosen]]:
        for folder in experiment.trial_folders(trial_id):
            states = sorted(folder.path.glob("checkpoint_*/state.pt"))
            if states and folder.config.is_file():
                found.append((trial_id, folder.config, states[-1]))
                break
        if len(found) == 2:
            break
    return found


def continued(config_path: Path, state: Path, data: SegmentationData, seconds: float, step_seconds: float,
              scratch: Path) -> FinalTraining:
    """A trial continued from ``state`` for ``seconds`` as the final stage continues one, its last epoch kept
    (``.trainer``; ``.start`` records the trial as the search left it)."""
    config = TrialConfig.load(config_path).replace(threads=available_cpus())
    with torch_threads(config.threads):
        run = FinalTraining(config, data, state, scratch)
        run.train_until(time.time() + seconds, step_seconds, progress=False, echo=print)
    return run


def planned_step_seconds(plan: dict, config: TrialConfig) -> float:
    """The final training's step cost a run's plan estimated for this model (its mean step where not timed)."""
    return plan["final_step_seconds"].get(f"{config.arch}/{config.encoder}", plan["step_seconds"])


def final_model(experiment: ExperimentLayout, data: SegmentationData) -> Trainer:
    """The search's own final model, loaded as ``predict`` would load it."""
    final = experiment.final()
    trainer = Trainer(TrialConfig.load(final.config), data)
    trainer.model.load_state_dict(load_state(final.model))
    return trainer


def compare(name: str, dataset: dict, full: SegmentationData, seed: int, budget: float, folder: Path) -> dict:
    used = holdout_dataset(name, dataset, full, seed, folder / "check")
    ours = searchseg_run(used, budget, seed, folder, "search")
    default = searchseg_run(used, budget, seed, folder, "no-search", search=False)
    row: dict = {"dataset": name, "budget": budget, "seed": seed, "searchseg": ours, "no_search": default}
    experiment = ExperimentLayout(folder / "search")
    chosen = ((ours.get("final_training") or {}).get("trial_choice") or {}).get("trial")
    found = members(experiment, chosen) if chosen else []
    if len(found) < 2:
        return {**row, "ensemble": None, "reason": f"{len(found)} trial checkpoint(s) to continue"}
    data = decoded(used)
    final_seconds = float(pd.read_csv(experiment.final().curves)["epoch_seconds"].sum())
    models, described = {"single": final_model(experiment, data)}, []
    for label, (trial_id, config_path, state) in zip(("member_a", "member_b"), found, strict=True):
        config = TrialConfig.load(config_path)
        started = time.perf_counter()
        run = continued(config_path, state, data, final_seconds / 2, planned_step_seconds(ours["plan"], config),
                        folder / f"{label}.pt")
        models[label] = run.trainer
        described.append({"trial": trial_id, "arch": config.arch, "encoder": config.encoder, "lr": config.lr,
                          "start_epoch": run.start["epoch"], "epochs": run.trainer.epoch,
                          "seconds": time.perf_counter() - started})
    row.update(final_seconds=final_seconds, members=described)
    for split in ("val", "test"):
        indices = data.splits[split]
        probs = {label: probabilities(trainer, indices) for label, trainer in models.items()}
        probs["ensemble"] = (probs["member_a"] + probs["member_b"]) / 2
        results = {label: scored(p, data, indices) for label, p in probs.items()}
        row[split] = {label: miou for label, (miou, _) in results.items()}
        if split == "val":
            row["ensemble_val_win_rate"] = bootstrap_win_rate(results["ensemble"][1], results["single"][1])
    return row


def measure(names: list[str], seeds: range, budget: float, on_row) -> None:
    def run(name: str, dataset: dict, full: SegmentationData, seed: int, folder: Path) -> dict:
        return compare(name, dataset, full, seed, budget, folder)

    for row in check_split_runs(names, seeds, "searchseg-ensemble-search-", run, on_row):
        line = (f"{row['dataset']} seed {row['seed']}: check search {row['searchseg']['test_miou']:.4f} | no search "
                f"{row['no_search']['test_miou']:.4f}")
        print(line + (f" | ensemble {row['test']['ensemble']:.4f} (members {row['test']['member_a']:.4f}, "
                      f"{row['test']['member_b']:.4f}; val win rate {row['ensemble_val_win_rate']:.0%})"
                      if row.get("members") else f" | no ensemble: {row['reason']}"), flush=True)


def table(rows: list[dict]) -> str:
    """Per dataset and T, over the rows with an ensemble: check-split means and paired differences."""
    rows = [row for row in rows if row.get("members")]
    lines = ["| dataset | T | runs | search | no search | ensemble | ensemble - search | ensemble - no search | "
             "search - no search | val prefers the ensemble |", "|---|---|---|---|---|---|---|---|---|---|"]

    for key in sorted({(row["dataset"], row["budget"]) for row in rows}):
        group = [row for row in rows if (row["dataset"], row["budget"]) == key]
        check = {arm: [row["test"][arm] for row in group] for arm in ("single", "ensemble")}
        default = [row["no_search"]["test_miou"] for row in group]
        lines.append(
            f"| {key[0]} | {key[1]:g} s | {len(group)} | {statistics.fmean(check['single']):.3f} | "
            f"{statistics.fmean(default):.3f} | {statistics.fmean(check['ensemble']):.3f} | "
            f"{paired_cell(list(np.subtract(check['ensemble'], check['single'])))} | "
            f"{paired_cell(list(np.subtract(check['ensemble'], default)))} | "
            f"{paired_cell(list(np.subtract(check['single'], default)))} | "
            f"{sum(row['ensemble_val_win_rate'] >= 0.5 for row in group)} of {len(group)} |")
    return "\n".join(lines)


def main() -> None:
    check_split_main("benchmarks.ensemble_search", __doc__, "ensemble_search.json", 4, measure, table)


if __name__ == "__main__":
    main()
