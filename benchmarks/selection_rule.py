"""One noise-aware rule for every trial: the default unless clearly beaten, against the rule the search uses now.

Now (``selection.choose_trial``) the final stage continues the best start configuration by its best single
evaluation, and a sampled trial only when it beats that one on at least 95 % of validation resamples (its last
evaluations pooled). The choice between the two start configurations is thus made on one evaluation of 4-9
images. The alternative applies the resampling test to every trial: the space's default (its first start
configuration) is continued unless another trial, start or sampled, beats it on at least 95 % of resamples; of
those that do, the best-scoring one.

Per dataset and seed, on the check splits of ``equal_time --holdout`` (the test images never seen): the search arm
(``run --budget T``) runs as a user runs it; where the alternative would continue another trial, that trial is
continued from its latest checkpoint by the final stage's own ``FinalTraining`` for the seconds the run's final
training took, its last epoch kept, and both last epochs are compared on the check split. Where both rules choose
the same trial the difference is 0 and nothing more is trained.

``python -m benchmarks.selection_rule --seeds 3 --first-seed 7`` appends every row to
``benchmarks/selection_rule.json`` and prints the table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.ensemble import probabilities, scored
from benchmarks.ensemble_search import continued, planned_step_seconds
from benchmarks.equal_time import (
    check_split_main,
    check_split_runs,
    decoded,
    holdout_dataset,
    paired_cell,
    searchseg_run,
)
from searchseg.data.loader import SegmentationData
from searchseg.layout import ExperimentLayout
from searchseg.spaces.config import TrialConfig
from searchseg.training.class_counts import CLEARLY_BETTER_WIN_RATE, bootstrap_win_rate
from searchseg.tuning.selection import recent_counts


def latest_checkpoints(experiment: ExperimentLayout) -> dict[str, Path]:
    """Each trial's latest checkpoint folder, by trial id (trials that saved none left out)."""
    found = {}
    for trial in pd.read_csv(experiment.trials)["trial_id"].astype(str):
        for folder in experiment.trial_folders(trial):
            checkpoints = sorted(folder.path.glob("checkpoint_*"))
            if checkpoints and folder.config.is_file():
                found[trial] = checkpoints[-1]
    return found


def default_unless_clearly_beaten(scores: dict[str, float], default: str,
                                  counts: dict[str, np.ndarray]) -> tuple[str, dict[str, float]]:
    """The trial the alternative rule continues, and each other trial's win rate over the default: the best-scoring
    trial that beats ``default`` on at least ``CLEARLY_BETTER_WIN_RATE`` of validation resamples, else the default."""
    rates = {trial: bootstrap_win_rate(counts[trial], counts[default]) for trial in scores
             if trial != default and trial in counts and counts[trial].shape == counts[default].shape}
    clear = [trial for trial, rate in rates.items() if rate >= CLEARLY_BETTER_WIN_RATE]
    return max(clear, key=scores.__getitem__, default=default), rates


def compare(name: str, dataset: dict, full: SegmentationData, seed: int, budget: float, folder: Path) -> dict:
    used = holdout_dataset(name, dataset, full, seed, folder / "check")
    ours = searchseg_run(used, budget, seed, folder, "search")
    experiment = ExperimentLayout(folder / "search")
    choice = (ours.get("final_training") or {}).get("trial_choice") or {}
    row: dict = {"dataset": name, "budget": budget, "seed": seed, "searchseg": ours, "current": choice.get("trial")}
    checkpoints = latest_checkpoints(experiment)
    if choice.get("default_trial") not in checkpoints:
        reason = ours["plan"]["no_search_reason"] or "the default trial saved no checkpoint"
        return {**row, "alternative": None, "reason": reason}
    trials = pd.read_csv(experiment.trials).dropna(subset=["best_val_miou"])
    scores = {trial: float(score) for trial, score in
              zip(trials["trial_id"].astype(str), trials["best_val_miou"], strict=True) if trial in checkpoints}
    counts = {trial: recent_counts(checkpoints[trial]) for trial in scores}
    alternative, rates = default_unless_clearly_beaten(
        scores, choice["default_trial"], {trial: c for trial, c in counts.items() if c is not None})
    final = experiment.final()
    current_val = float(pd.read_csv(final.curves)["val_miou"].iloc[-1])
    row.update(alternative=alternative, win_rates_over_default=rates,
               check={"current": ours["final_training"]["last_test_miou"]}, val={"current": current_val})
    if alternative == choice["trial"]:
        row["check"]["alternative"], row["val"]["alternative"] = row["check"]["current"], current_val
        return row
    data = decoded(used)
    final_seconds = float(pd.read_csv(final.curves)["epoch_seconds"].sum())
    config_path = checkpoints[alternative].parent / "config.yaml"
    config = TrialConfig.load(config_path)
    run = continued(config_path, checkpoints[alternative] / "state.pt", data, final_seconds,
                    planned_step_seconds(ours["plan"], config), folder / "alternative.pt")
    for split, key in (("val", "val"), ("test", "check")):
        indices = data.splits[split]
        row[key]["alternative"] = scored(probabilities(run.trainer, indices), data, indices)[0]
    row["continued"] = {"arch": config.arch, "encoder": config.encoder, "lr": config.lr,
                        "start_epoch": run.start["epoch"], "epochs": run.trainer.epoch, "seconds": final_seconds}
    return row


def measure(names: list[str], seeds: range, budget: float, on_row) -> None:
    def run(name: str, dataset: dict, full: SegmentationData, seed: int, folder: Path) -> dict:
        return compare(name, dataset, full, seed, budget, folder)

    for row in check_split_runs(names, seeds, "searchseg-selection-rule-", run, on_row):
        head = f"{row['dataset']} seed {row['seed']}"
        if row.get("alternative") is None:
            print(f"{head}: no comparison: {row['reason']}", flush=True)
            continue
        same = row["alternative"] == row["current"]
        print(f"{head}: check, current rule {row['check']['current']:.4f} | alternative "
              f"{row['check']['alternative']:.4f}" + (" (the same trial)" if same else
                                                     f" ({row['continued']['arch']}/{row['continued']['encoder']})"),
              flush=True)


def table(rows: list[dict]) -> str:
    """Per dataset and T: how often the rules differ, and alternative - current on the check split, paired by
    seed (runs where both chose the same trial count 0)."""
    rows = [row for row in rows if row.get("alternative") is not None]
    lines = ["| dataset | T | runs | rules differ | alternative - current (check) | validation agrees with check |",
             "|---|---|---|---|---|---|"]
    for key in sorted({(row["dataset"], row["budget"]) for row in rows}):
        group = [row for row in rows if (row["dataset"], row["budget"]) == key]
        differ = [row for row in group if row["alternative"] != row["current"]]
        agrees = sum((row["val"]["alternative"] > row["val"]["current"]) ==
                     (row["check"]["alternative"] > row["check"]["current"]) for row in differ)
        differences = [row["check"]["alternative"] - row["check"]["current"] for row in group]
        lines.append(f"| {key[0]} | {key[1]:g} s | {len(group)} | {len(differ)} | {paired_cell(differences)} | "
                     f"{agrees} of {len(differ)} |")
    return "\n".join(lines)


def main() -> None:
    check_split_main("benchmarks.selection_rule", __doc__, "selection_rule.json", 7, measure, table)


if __name__ == "__main__":
    main()
