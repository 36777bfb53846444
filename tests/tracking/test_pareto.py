"""The trials no other beats on both accuracy and latency."""

from __future__ import annotations

import numpy as np
import pandas as pd

from searchseg.tracking.pareto import (
    among_best,
    cost_tolerance,
    crowding_distances,
    front_ranks,
    non_dominated,
    pareto_table,
    write_pareto,
)


def test_a_point_is_on_the_front_unless_another_is_at_least_as_good_on_both_and_better_on_one():
    # (mIoU to maximise, latency to minimise)
    points = np.array([[0.70, 30.0], [0.68, 10.0], [0.60, 12.0], [0.70, 35.0], [0.50, 10.0], [0.68, 10.0]])
    keep = non_dominated(points, np.array([True, False]))
    assert keep.tolist() == [True, True, False, False, False, True]  # equal points do not dominate each other


def test_the_table_keeps_finished_trials_with_a_latency_fastest_first():
    trials = pd.DataFrame({
        "trial_id": ["a", "b", "c", "d", "e"],
        "status": ["completed", "early_stopped", "nan_loss", "running", "completed"],
        "best_val_miou": [0.7, 0.6, 0.9, 0.95, 0.65],
        "latency_ms": [30.0, 10.0, 1.0, 1.0, np.nan],
    })
    table = pareto_table(trials, "val_miou", "max")
    assert table["trial_id"].tolist() == ["b", "a"] and table["front"].all()
    minimised = pareto_table(trials.assign(best_val_miou=[0.7, 0.6, 0.1, 0.1, 0.1]), "val_miou", "min")
    assert minimised.loc[minimised["front"], "trial_id"].tolist() == ["b"]  # a lower value that is also faster
    assert pareto_table(trials.drop(columns="latency_ms"), "val_miou", "max").empty  # from before costs


def test_an_experiment_without_trials_writes_an_empty_front(tmp_path):
    from searchseg.report.experiment import Experiment

    settings = {"samples": 1, "epochs": 1, "metric": "val_miou", "mode": "max"}
    for trials in (pd.DataFrame(columns=["trial_id", "status"]),  # a budget too short to search
                   pd.DataFrame({"trial_id": ["a"], "status": ["nan_loss"], "best_val_miou": [np.nan],
                                 "latency_ms": [3.0]})):
        exp = Experiment(tmp_path, {"settings": settings}, None, trials, pd.DataFrame())
        assert pd.read_csv(write_pareto(exp)).empty


def test_the_report_draws_an_empty_front_without_failing():
    from searchseg.report.figures import pareto_figure

    empty = pareto_table(pd.DataFrame(columns=["trial_id", "status"]), "val_miou", "max")
    assert empty["front"].dtype == bool
    assert len(pareto_figure(empty, "val_miou", ["lr"]).data) == 2


def test_fronts_are_peeled_one_after_another():
    points = np.array([[0.7, 30.0], [0.6, 10.0], [0.6, 31.0], [0.5, 40.0], [0.65, 20.0]])
    assert front_ranks(points, np.array([True, False])).tolist() == [0, 0, 1, 2, 0]


def test_crowding_keeps_the_extremes_and_prefers_the_lonely():
    front = np.array([[0.0, 10.0], [1.0, 9.0], [1.2, 8.8], [5.0, 5.0], [10.0, 0.0]])
    distances = crowding_distances(front)
    assert np.isinf(distances[[0, 4]]).all()
    assert distances[3] > distances[2] > distances[1]  # (1, 9) sits closest to its neighbours (0, 10), (1.2, 8.8)


def test_among_best_ranks_by_front_then_crowding_with_ties_going_the_points_way():
    maximise = np.array([True, False])
    points = np.array([[0.7, 30.0], [0.6, 10.0], [0.5, 40.0]])  # the third is dominated by both
    assert among_best(points, maximise, 0, keep=1) and among_best(points, maximise, 1, keep=1)  # a tie on front 0
    assert not among_best(points, maximise, 2, keep=2) and among_best(points, maximise, 2, keep=3)
    single = np.array([[0.7], [0.6], [0.65]])  # one objective: plain ranking, as ASHA's
    assert [among_best(single, np.array([True]), i, keep=1) for i in range(3)] == [True, False, False]


def test_the_front_spans_every_objective_the_search_had():
    trials = pd.DataFrame({"trial_id": ["a", "b", "c"], "status": ["completed"] * 3,
                           "best_val_miou": [0.7, 0.6, 0.6], "latency_ms": [30.0, 10.0, 10.0],
                           "params_m": [5.0, 9.0, 1.0]})
    assert set(pareto_table(trials, "val_miou", "max").query("front")["trial_id"]) == {"a", "b", "c"}
    both = pareto_table(trials, "val_miou", "max", ["latency_ms", "params_m"])
    assert set(both.query("front")["trial_id"]) == {"a", "c"}  # c is b, smaller


def test_costs_within_the_tolerance_tie_so_the_better_metric_wins():
    points = np.array([[0.5, 10.0], [0.6, 10.4], [0.45, 8.0]])  # two models 4 % apart, and a faster one
    maximise = np.array([True, False])
    assert non_dominated(points, maximise).tolist() == [True, True, True]
    assert non_dominated(points, maximise, cost_tolerance(2)).tolist() == [False, True, True]


def test_trials_of_one_model_share_the_median_of_their_latencies():
    trials = pd.DataFrame({"trial_id": ["a", "b", "c", "d"], "status": ["completed", "completed", "nan_loss",
                                                                          "completed"],
                           "best_val_miou": [0.6, 0.5, 0.0, 0.3], "latency_ms": [14.0, 10.0, 12.0, 5.0],
                           "params_m": [2.0, 2.0, 2.0, 1.0], "gmacs": [0.5, 0.5, 0.5, 0.1]})
    table = pareto_table(trials, "val_miou", "max")
    assert table.set_index("trial_id")["latency_ms"].to_dict() == {"a": 12.0, "b": 12.0, "d": 5.0}  # c measured too
    assert set(table.query("front")["trial_id"]) == {"a", "d"}  # b measured 10 ms but is the same model as a
