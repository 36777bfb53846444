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
from searchseg.layout import ExperimentLayout
from searchseg.tracking.status import FINISHED, Direction

if TYPE_CHECKING:
    from searchseg.report.experiment import Experiment

COST = "latency_ms"  # the cost the front is drawn against: what a deployment feels
# One model measures its latency differently in different trials (other trials share the machine: up to 25 %
# apart on a 2-core CPU), so trials of the same model, known by the same parameters and MACs, share the median of
# their measurements; costs within 5 % of each other are a tie for what noise is left between models.
MODEL_KEY = ("params_m", "gmacs")
COST_TOLERANCE = 0.05


def non_dominated(values: np.ndarray, maximise: np.ndarray, tolerance: np.ndarray | None = None) -> np.ndarray:
    """Which rows of ``values`` (rows: points, columns: objectives) no other row dominates: at least as good on
    every objective and better on one. ``maximise`` says per column whether larger is better; ``tolerance`` (per
    column, relative) makes differences within it a tie, as between two measurements of one model's latency."""
    signed = np.where(maximise, values, -values)  # larger is better everywhere
    slack = np.zeros_like(signed) if tolerance is None else np.abs(values) * tolerance
    keep = np.ones(len(signed), dtype=bool)
    for i, point in enumerate(signed):
        at_least = (signed >= point - slack[i]).all(axis=1)
        better = (signed > point + slack[i]).any(axis=1)
        keep[i] = not (at_least & better).any()
    return keep


def cost_tolerance(objectives: int) -> np.ndarray:
    """Per column: exact for the metric (the first), ``COST_TOLERANCE`` for each cost after it."""
    return np.array([0.0, *[COST_TOLERANCE] * (objectives - 1)])


def front_ranks(values: np.ndarray, maximise: np.ndarray, tolerance: np.ndarray | None = None) -> np.ndarray:
    """Non-dominated sorting: 0 for the points no other point dominates, 1 for those only front 0 dominates, ..."""
    ranks = np.full(len(values), -1)
    rank = 0
    while (ranks < 0).any():
        left = np.flatnonzero(ranks < 0)
        ranks[left[non_dominated(values[left], maximise, tolerance)]] = rank
        rank += 1
    return ranks


def crowding_distances(values: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of points of one front: the sum over objectives of the gap between a point's
    neighbours, scaled by the objective's range; the extremes are infinitely far, so they are kept first."""
    distances = np.zeros(len(values))
    for column in values.T:
        order = np.argsort(column, kind="stable")
        distances[order[[0, -1]]] = np.inf
        spread = column[order[-1]] - column[order[0]]
        if len(values) > 2 and spread > 0:
            distances[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / spread
    return distances


def among_best(values: np.ndarray, maximise: np.ndarray, index: int, keep: int,
               tolerance: np.ndarray | None = None) -> bool:
    """Whether point ``index`` is among the ``keep`` best by front, then by crowding distance within its front;
    ties go its way (fewer than ``keep`` points are strictly better)."""
    ranks = front_ranks(values, maximise, tolerance)
    same_front = np.flatnonzero(ranks == ranks[index])
    crowding = np.zeros(len(values))
    crowding[same_front] = crowding_distances(values[same_front])
    better = (ranks < ranks[index]) | ((ranks == ranks[index]) & (crowding > crowding[index]))
    return int(better.sum()) < keep


def pooled_costs(trials: pd.DataFrame, costs: list[str]) -> pd.DataFrame:
    """``trials`` with each cost replaced by the median over the trials of the same model (``MODEL_KEY``)."""
    if not all(key in trials for key in MODEL_KEY) or trials.empty:
        return trials
    pooled = trials.copy()
    groups = pooled.groupby(list(MODEL_KEY), dropna=False)
    for cost in costs:
        pooled[cost] = groups[cost].transform("median")
    return pooled


def drawn_costs(objectives: list[str]) -> list[str]:
    """The costs of the report's front: latency (its x axis) and any other the search minimised."""
    return list(dict.fromkeys([COST, *objectives]))


def pareto_table(trials: pd.DataFrame, metric: str, mode: str, costs: list[str] | None = None) -> pd.DataFrame:
    """Finished trials with their best ``metric`` and ``costs`` (default: latency), a ``front`` column marking the
    non-dominated ones, sorted by the first cost; costs are pooled per model and within ``COST_TOLERANCE`` tie.
    Empty when the trials recorded no such cost (experiments from before costs were measured)."""
    best, costs = f"best_{metric}", costs or [COST]
    if best not in trials or any(cost not in trials for cost in costs):
        trials = pd.DataFrame({"trial_id": [], "status": [], best: [], **{cost: [] for cost in costs}})
    pooled = pooled_costs(trials, costs)  # every trial that measured its model, finished or not
    table = pooled[pooled["status"].isin(FINISHED)].dropna(subset=[best, *costs]).copy()
    maximise = np.array([Direction(mode) is Direction.MAX, *[False] * len(costs)])
    table["front"] = non_dominated(table[[best, *costs]].to_numpy(float), maximise,  # boolean, even when empty
                                   cost_tolerance(1 + len(costs)))
    return table.sort_values([costs[0], best], ascending=[True, mode == "min"]).reset_index(drop=True)


def write_pareto(exp: Experiment) -> Path:
    """``EXPERIMENT/pareto.csv``: the front's trials over the search's objectives (the metric and latency when it
    had one objective), cheapest first, with every column ``trials.csv`` has."""
    table = pareto_table(exp.trials, exp.metric, exp.settings.mode, exp.settings.objectives)
    path = ExperimentLayout(exp.path).pareto
    atomic_write_text(path, table[table["front"]].drop(columns="front").to_csv(index=False))
    return path
