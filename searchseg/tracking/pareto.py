"""Accuracy against cost: the trials no other trial beats on both (the Pareto front), for deployment choices.

A model one point of mIoU worse and four times faster is often the right one on a phone or a drone; the front
lists the candidates. Pure pandas, so the report computes it without torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from searchseg.io_utils import atomic_write_text
from searchseg.tracking.status import FINISHED, Direction

if TYPE_CHECKING:
    from searchseg.report.experiment import Experiment

PARETO_FILE = "pareto.csv"
COST = "latency_ms"  # the cost the front is drawn against: what a deployment feels


def non_dominated(values: np.ndarray, maximise: np.ndarray) -> np.ndarray:
    """Which rows of ``values`` (rows: points, columns: objectives) no other row dominates: at least as good on
    every objective and better on one. ``maximise`` says per column whether larger is better."""
    signed = np.where(maximise, values, -values)  # larger is better everywhere
    keep = np.ones(len(signed), dtype=bool)
    for i, point in enumerate(signed):
        at_least = (signed >= point).all(axis=1)
        better = (signed > point).any(axis=1)
        keep[i] = not (at_least & better).any()
    return keep


def pareto_table(trials: pd.DataFrame, metric: str, mode: str) -> pd.DataFrame:
    """Finished trials with their best ``metric`` and latency, a ``front`` column marking the non-dominated ones,
    sorted by latency. Empty when the trials recorded no latency (experiments from before costs were measured)."""
    best = f"best_{metric}"
    if COST not in trials or best not in trials:
        trials = pd.DataFrame({"trial_id": [], "status": [], best: [], COST: []})
    table = trials[trials["status"].isin(FINISHED)].dropna(subset=[best, COST]).copy()
    maximise = np.array([Direction(mode) is Direction.MAX, False])
    table["front"] = non_dominated(table[[best, COST]].to_numpy(float), maximise)  # boolean, even when empty
    return table.sort_values([COST, best], ascending=[True, mode == "min"]).reset_index(drop=True)


def write_pareto(exp: Experiment) -> Path:
    """``EXPERIMENT/pareto.csv``: the front's trials, fastest first, with every column ``trials.csv`` has."""
    table = pareto_table(exp.trials, exp.metric, exp.settings.mode)
    path = exp.path / PARETO_FILE
    atomic_write_text(path, table[table["front"]].drop(columns="front").to_csv(index=False))
    return path
