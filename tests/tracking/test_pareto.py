"""The trials no other beats on both accuracy and latency."""

from __future__ import annotations

import numpy as np
import pandas as pd

from searchseg.tracking.pareto import non_dominated, pareto_table, write_pareto


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
