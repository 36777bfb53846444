"""Each report view's data as a DataFrame (or dict): computed here, asserted on by tests, drawn elsewhere."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pandas as pd

from searchseg.report.experiment import Experiment
from searchseg.spaces.config import LOSS_PREFIX, is_loss_weight
from searchseg.tracking.search_gain import search_gain, trial_name
from searchseg.tracking.status import FINISHED, Direction, TrialStatus


def summary(exp: Experiment) -> dict:
    """Best configuration and value, its test metrics, compute spent, trials by status."""
    best_column = f"best_{exp.metric}"
    finished = exp.trials[exp.trials["status"].isin(FINISHED)] if len(exp.trials) else exp.trials
    best_row = None
    if best_column in finished:  # a trial cut by a time budget before its first report has no value
        finished = finished[finished[best_column].notna()]
    if len(finished):
        best_row = finished.loc[Direction(exp.settings.mode).best_index(finished[best_column])]
    return {
        "name": exp.path.name,
        "space": exp.run.get("space"),
        "metric": exp.metric,
        "best_value": float(best_row[best_column]) if best_row is not None else None,
        "best_trial": best_row["trial_id"] if best_row is not None else None,
        "best_params": {k: best_row[k] for k in exp.searched if k in best_row and pd.notna(best_row[k])}
        if best_row is not None else {},
        "trials_by_status": exp.trials["status"].value_counts().to_dict() if len(exp.trials) else {},
        "trials": len(exp.trials),
        "samples": exp.settings.samples,
        "trial_epochs": int(len(exp.curves)),
        "max_trial_epochs": exp.settings.samples * exp.settings.epochs,
        "wall_seconds": float(exp.trials["wall_seconds"].sum()) if "wall_seconds" in exp.trials else 0.0,
        "test_miou": exp.final["test_miou"] if exp.final else None,
        "test_miou_std": exp.final.get("test_miou_std") if exp.final else None,
        "test_pixel_accuracy": exp.final.get("mean_pixel_accuracy") if exp.final else None,
        "test_dice": exp.final.get("mean_dice") if exp.final else None,
        "running": exp.running,
        **final_training_rows(exp.final or {}, (exp.run.get("plan") or {}).get("no_search_reason", "")),
    }


def final_training_rows(final: dict, no_search_reason: str = "") -> dict[str, str]:
    """How a planned run's final model came about (``final/metrics.json``'s ``final_training``): which trial it
    continued and for how long, and what the search added over the space's default (its first start
    configuration), or why the plan did not search (``no_search_reason``, from run.json's plan); nothing for a
    model retrained from scratch."""
    training = final.get("final_training") or {}
    if training.get("rule") != "continue_best":
        return {}
    choice = training.get("trial_choice") or {}
    origin = "the default configuration, no search" + (f" ({no_search_reason})" if no_search_reason else "")
    if "trial" in choice:
        name = trial_name(choice["trial"], choice.get("configs") or {})
        origin = f"trial {choice['trial']}" + (f" ({name})" if name else "")
    rows = {"final model": f"{origin}, trained from epoch {training['start_epoch']} to {training['epochs_run']}; "
                           f"kept epoch {training['kept_epoch']}"}
    if "trial" not in choice:  # no search: nothing to compare with
        return rows
    gain = search_gain(choice)
    if gain:
        rows["what the search added"] = gain
    return rows


def history_table(exp: Experiment) -> pd.DataFrame:
    """Trials in start order with their best value and the best so far (finished trials only count)."""
    column = f"best_{exp.metric}"
    table = exp.trials[["trial_id", "status", column]].rename(columns={column: "value"}).reset_index(drop=True)
    table.insert(0, "number", range(len(table)))
    counted = table["value"].where(table["status"].isin(FINISHED))
    table["best_so_far"] = Direction(exp.settings.mode).best_so_far(counted).ffill()
    return table


def parallel_table(exp: Experiment) -> pd.DataFrame:
    """Searched parameters and the best value of each finished trial (categoricals kept as strings)."""
    column = f"best_{exp.metric}"
    finished = exp.trials[exp.trials["status"].isin(FINISHED)]
    keys = [k for k in exp.searched if k in finished]
    return finished[["trial_id", *keys, column]].rename(columns={column: "value"}).reset_index(drop=True)


def importance_table(exp: Experiment, study: optuna.Study) -> pd.DataFrame:
    """Optuna's PED-ANOVA importance of each parameter over the finished trials (empty when too few)."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 2:
        return pd.DataFrame(columns=["parameter", "importance"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature and few-trials-per-regime warnings
            importances = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    except (RuntimeError, ValueError):
        return pd.DataFrame(columns=["parameter", "importance"])
    return pd.DataFrame(list(importances.items()), columns=["parameter", "importance"])


def rung_epochs(exp: Experiment) -> list[int]:
    """The epochs at which ASHA compares trials, below the last epoch."""
    return exp.settings.rungs()[:-1]


def curves_table(exp: Experiment) -> pd.DataFrame:
    """Per-epoch metric of every trial with the trial's final status (early-stopped ones marked)."""
    status = exp.trials.set_index("trial_id")["status"] if len(exp.trials) else pd.Series(dtype=str)
    table = exp.curves[["trial_id", "epoch", exp.metric]].rename(columns={exp.metric: "value"}).copy()
    table["status"] = table["trial_id"].map(status).fillna(TrialStatus.RUNNING.value)
    return table


def dominant_loss(row: pd.Series) -> str:
    weights = {k[len(LOSS_PREFIX):]: row[k] for k in row.index if is_loss_weight(k) and pd.notna(row[k])}
    return max(weights, key=lambda name: weights[name]) if weights else "n/a"


def pair_heatmap_table(exp: Experiment, rows: str, columns: str) -> pd.DataFrame:
    """Best value for each pair of two categorical choices (NaN where the pair was never tried)."""
    finished = exp.trials[exp.trials["status"].isin(FINISHED)].copy()
    if columns == "dominant_loss":
        finished["dominant_loss"] = finished.apply(dominant_loss, axis=1)
    if rows not in finished or columns not in finished or not len(finished):
        return pd.DataFrame()
    return finished.pivot_table(index=rows, columns=columns, values=f"best_{exp.metric}",
                                aggfunc=Direction(exp.settings.mode).best)


def heatmap_pairs(exp: Experiment) -> list[tuple[str, str]]:
    pairs = []
    if "arch" in exp.searched and "encoder" in exp.searched:
        pairs.append(("arch", "encoder"))
    if "arch" in exp.searched and any(is_loss_weight(k) for k in exp.searched):
        pairs.append(("arch", "dominant_loss"))
    return pairs


def per_class_table(exp: Experiment) -> pd.DataFrame:
    if not exp.final:
        return pd.DataFrame(columns=["class", "iou", "dice"])
    return pd.DataFrame([{"class": name, "iou": iou, "dice": exp.final["dice_per_class"].get(name)}
                         for name, iou in exp.final["iou_per_class"].items()])


def confusion_table(exp: Experiment) -> pd.DataFrame:
    """Row-normalised confusion matrix (true class by row), as the share of each true class's pixels."""
    if not exp.final:
        return pd.DataFrame()
    names = exp.final["class_names"]
    counts = np.array(exp.final["confusion_matrix"], dtype=np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    return pd.DataFrame(shares, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))


def final_curves_table(exp: Experiment) -> pd.DataFrame:
    """Per-epoch losses of the final training (first seed): train, and test (retrained from scratch) or
    validation (a budgeted run, which continues the best trial and keeps validation for choosing)."""
    if exp.final_curves is None or not len(exp.final_curves):
        return pd.DataFrame(columns=["epoch", "train_loss", "test_loss"])
    first = exp.final_curves[exp.final_curves["seed"] == exp.final_curves["seed"].min()]
    losses = [c for c in ("train_loss", "val_loss", "test_loss") if c in first.columns]
    return first[["epoch", *losses]].reset_index(drop=True)

