"""Several objectives: parsing them, promoting trials by non-dominated sorting, telling Optuna the latency limit."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from searchseg.api import OutputConfig, Search, SearchConfig
from searchseg.errors import UserError
from searchseg.final.finalize import retrain_best
from searchseg.prediction.predictor import Predictor
from searchseg.spaces.config import TrialConfig
from searchseg.spaces.space import SearchSettings, as_space, parse_objectives
from searchseg.tracking.pareto import MODEL_KEY, among_best, cost_tolerance, pareto_table
from searchseg.training.costs import measure_costs
from searchseg.training.engine import Trainer
from searchseg.tuning.pareto_search import ObjectiveSearch, ParetoASHA
from searchseg.tuning.search import fixed_config
from tests.conftest import tiny_data

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


def test_objectives_name_the_metric_first_then_costs_to_minimise():
    assert parse_objectives("val_miou:max,latency_ms:min") == ("val_miou", "max", ["latency_ms"])
    assert parse_objectives("val_loss:min, params_m, gmacs") == ("val_loss", "min", ["params_m", "gmacs"])
    for wrong in ("latency_ms:min", "val_miou", "val_miou:max,latency_ms:max", "val_miou:max,speed:min", ""):
        with pytest.raises(UserError, match="--objectives"):
            parse_objectives(wrong)
    settings = SearchSettings(objectives=["latency_ms"], max_latency_ms=25)
    settings.validate("here")
    assert settings.directions == {"val_miou": "max", "latency_ms": "min"}
    for bad in ({"objectives": ["latency_ms", "latency_ms"]}, {"objectives": ["val_miou"]}, {"max_latency_ms": 0},
                {"max_latency_ms": "fast"}):
        with pytest.raises(UserError, match="search\\.(objectives|max_latency_ms)"):
            SearchSettings(**bad).validate("space.yaml")


def report(scheduler: ParetoASHA, trial: Trial, epoch: int, miou: float, latency: float) -> str:
    return scheduler.on_trial_result(None, trial, {"training_iteration": epoch, "val_miou": miou,
                                                   "latency_ms": latency})


def test_pareto_asha_promotes_a_faster_worse_trial_and_stops_a_dominated_one():
    scheduler = ParetoASHA({"val_miou": "max", "latency_ms": "min"}, max_t=4, grace_period=1, reduction_factor=2)
    accurate, fast, dominated, late = (Trial("__fake", stub=True) for _ in range(4))
    assert report(scheduler, accurate, 1, 0.60, 30.0) == CONTINUE  # first at the rung
    assert report(scheduler, fast, 1, 0.40, 5.0) == CONTINUE  # worse, but nothing beats it on speed
    assert report(scheduler, dominated, 1, 0.30, 40.0) == STOP  # slower and worse than both
    assert report(scheduler, accurate, 2, 0.70, 30.0) == CONTINUE  # rung 2, first there
    assert report(scheduler, accurate, 3, 0.72, 30.0) == CONTINUE  # between rungs
    assert report(scheduler, late, 1, 0.65, 30.0) == CONTINUE  # dominates the first trial's rung-1 result
    single = ParetoASHA({"val_miou": "max"}, max_t=4, grace_period=1, reduction_factor=2)
    first, second = Trial("__fake", stub=True), Trial("__fake", stub=True)
    assert report(single, first, 1, 0.6, 1.0) == CONTINUE and report(single, second, 1, 0.5, 1.0) == STOP
    assert scheduler.recorded[1].keys() == {accurate.trial_id, fast.trial_id, dominated.trial_id, late.trial_id}
    assert 4 not in scheduler.recorded  # the last epoch ends every trial; nothing is compared there


def test_pareto_asha_lets_a_failed_trial_end_by_itself():
    scheduler = ParetoASHA({"val_miou": "max", "latency_ms": "min"}, max_t=4, grace_period=1, reduction_factor=2)
    trial = Trial("__fake", stub=True)
    result = {"training_iteration": 1, "val_miou": 0.0, "latency_ms": 99.0, "failure": "infeasible"}
    assert scheduler.on_trial_result(None, trial, result) == CONTINUE and not scheduler.recorded[1]


def test_the_searcher_tells_optuna_how_far_a_trial_broke_the_latency_limit():
    def space(trial):
        trial.suggest_float("lr", 1e-4, 1e-2, log=True)

    search = ObjectiveSearch(space=space, metric=["val_miou", "latency_ms"], mode=["max", "min"],
                             sampler=optuna.samplers.TPESampler(seed=0), max_latency_ms=20.0)
    for trial_id, miou, latency in (("slow", 0.6, 31.5), ("fast", 0.5, 12.0), ("fast_better", 0.55, 15.0)):
        search.suggest(trial_id)
        search.on_trial_complete(trial_id, {"val_miou": miou, "latency_ms": latency})
    search.suggest("never_measured")
    search.on_trial_complete("never_measured", {"val_miou": 0.0})  # no latency: told as failed, not as a point
    study = search._ot_study
    trials = study.get_trials()
    assert [t.constraints for t in trials] == [{"latency_ms": 11.5}, {"latency_ms": -8.0}, {"latency_ms": -5.0}, {}]
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3 + [optuna.trial.TrialState.FAIL]
    assert [t.values for t in trials[:3]] == [[0.6, 31.5], [0.5, 12.0], [0.55, 15.0]]
    # the slow trial would be on the front without the limit; Optuna's front holds the feasible ones only
    assert sorted(t.number for t in study.best_trials) == [1, 2]


PARETO_SPACE = """
search: {samples: 7, epochs: 3, grace_period: 1, reduction_factor: 3, concurrency: 1, n_startup_trials: 2}
fixed: {image_size: 64, batch_size: 4, augment: none, arch: segnet, group_by: folder, val_fraction: 0.25,
        test_fraction: 0.25, loss.ce: 1.0}
params:
  arch.segnet.base: {choice: [4, 8, 16, 48]}
  lr: {loguniform: [1.0e-4, 3.0e-2]}
start:
  - {arch.segnet.base: 48, lr: 3.0e-3}
  - {arch.segnet.base: 4, lr: 3.0e-3}
"""


def segnet_latency(data, base: int) -> float:
    """Latency per image of SegNet at ``base`` width, as a trial with one CPU measures it."""
    config = TrialConfig.from_flat({"arch": "segnet", "arch.segnet.base": base, "image_size": 64, "batch_size": 4,
                                    "threads": 1, "loss.ce": 1.0})
    return measure_costs(Trainer(config, data)).latency_ms


@pytest.mark.slow
def test_a_two_objective_search_with_a_latency_limit(search_dataset, local_ray, tmp_path):
    """A real Ray search over (val_miou up, latency_ms down) with a limit between SegNet's widths 16 and 48: the
    wide models are measured and never trained, the promotions at the rung follow non-dominated sorting, and
    pareto.csv holds exactly the non-dominated trained trials."""
    data = tiny_data()
    limit = (segnet_latency(data, 16) * segnet_latency(data, 48)) ** 0.5  # far from both: 9x the MACs apart
    space = tmp_path / "pareto.yaml"
    space.write_text(PARETO_SPACE)
    result = Search(str(space), str(search_dataset), class_map=str(search_dataset / "classes.yaml"),
                    search=SearchConfig(objectives="val_miou:max,latency_ms:min", max_latency_ms=limit),
                    output=OutputConfig(results_dir=tmp_path / "results", name="pareto", verbose=0)).fit(retrain=False)
    folder = result.experiment_dir
    trials = pd.read_csv(folder / "trials.csv")
    curves = pd.read_csv(folder / "curves.csv")
    assert len(trials) == 7 and set(trials["status"]) <= {"completed", "early_stopped", "infeasible"}
    infeasible = trials["status"] == "infeasible"
    assert (infeasible == (trials["latency_ms"] > limit)).all()  # the limit, and only the limit, skips training
    assert infeasible.any() and (~infeasible).sum() >= 2  # the start points: width 48 is too slow, width 4 is not
    assert (trials.loc[infeasible, "epochs_run"] == 0).all() and not curves["trial_id"].isin(
        trials.loc[infeasible, "trial_id"]).any()
    assert trials.loc[infeasible, "stop_reason"].str.contains("max-latency-ms").all()
    best = TrialConfig.load(folder / "best_config.yaml")
    assert best.options["arch.segnet.base"] != 48  # the final model is never one over the limit

    # early stopping: replay rung 1 (one trial at a time, in the order they reported) with the scheduler's rule
    trained = trials[~infeasible].set_index("trial_id")
    first_epoch = curves[curves["epoch"] == 1].sort_values("reported_at")
    recorded: list[tuple[float, tuple]] = []
    measured: dict[tuple, list[float]] = {}  # the scheduler pools the latency of one model over its trials
    for trial_id, miou in zip(first_epoch["trial_id"], first_epoch["val_miou"], strict=True):
        model = tuple(trained.loc[trial_id, list(MODEL_KEY)])
        measured.setdefault(model, []).append(trained.loc[trial_id, "latency_ms"])
        recorded.append((miou, model))
        points = np.array([[value, np.median(measured[key])] for value, key in recorded])
        promoted = among_best(points, np.array([True, False]), len(recorded) - 1, keep=-(-len(recorded) // 3),
                              tolerance=cost_tolerance(2))
        assert trained.loc[trial_id, "epochs_run"] == (3 if promoted else 1), trial_id
        assert trained.loc[trial_id, "status"] == ("completed" if promoted else "early_stopped")

    front = pd.read_csv(folder / "pareto.csv")
    expected = pareto_table(trials, "val_miou", "max", ["latency_ms"])
    assert set(front["trial_id"]) == set(expected.loc[expected["front"], "trial_id"])
    assert not front["trial_id"].isin(trials.loc[infeasible, "trial_id"]).any()
    run = json.loads((folder / "run.json").read_text())
    assert run["settings"]["objectives"] == ["latency_ms"] and run["settings"]["max_latency_ms"] == limit

    # a front point other than the best is retrained into final-TRIAL/ and predicts from there
    fastest = front.sort_values("latency_ms")["trial_id"].iloc[0]
    retrain_best(folder, trial=fastest, overlays=0, progress=False, echo=lambda *_: None)
    card = json.loads((folder / f"final-{fastest}" / "model_card.json").read_text())
    assert card["config"]["arch.segnet.base"] == trials.set_index("trial_id").loc[fastest, "arch.segnet.base"]
    mask = Predictor.load(folder / f"final-{fastest}")(np.zeros((40, 56, 3), np.uint8)).labels
    assert mask.shape == (40, 56)
    with pytest.raises(UserError, match="no trial 'nope'"):
        retrain_best(folder, trial="nope")


def test_pareto_asha_pools_the_latency_of_one_model_over_its_trials():
    scheduler = ParetoASHA({"val_miou": "max", "latency_ms": "min"}, max_t=4, grace_period=1, reduction_factor=2)
    model = {"params_m": 2.0, "gmacs": 0.5}
    slow_measure, fast_measure = Trial("__fake", stub=True), Trial("__fake", stub=True)
    result = {"training_iteration": 1, **model}
    assert scheduler.on_trial_result(None, slow_measure, {**result, "val_miou": 0.6, "latency_ms": 14.0}) == CONTINUE
    # alone it would be kept for its faster measurement; pooled (12 ms each) it is the same model with a lower mIoU
    assert scheduler.on_trial_result(None, fast_measure, {**result, "val_miou": 0.5, "latency_ms": 10.0}) == STOP


def test_a_searched_input_size_must_fit_in_the_decoded_size():
    space = as_space({"fixed": {"image_size": 96}, "params": {"input_size": {"choice": [64, 128]}}})
    with pytest.raises(UserError, match="input_size 128 is larger than image_size 96"):
        fixed_config(space, Search(space))
    smoke = as_space({"fixed": {"image_size": 128}, "params": {"input_size": {"choice": [64, 128]}}})
    assert fixed_config(smoke, Search(smoke, search=SearchConfig(smoke=True)))["image_size"] == 128
