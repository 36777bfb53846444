"""The Python API: light to import, objects accepted where paths are, no process-wide state left behind."""

from __future__ import annotations

import copy
import importlib.resources
import json
import os
import subprocess
import sys

import optuna
import pandas as pd
import pytest
from ray.tune.schedulers import FIFOScheduler

import searchseg
from searchseg.api import OutputConfig, Search, SearchConfig
from searchseg.data import load_from_config
from searchseg.errors import UserError
from searchseg.options import DEFAULT_BUDGET_SECONDS, Scheduler, Searcher, Tracker
from searchseg.spaces.config import TrialConfig
from searchseg.spaces.space import as_space
from searchseg.tuning.search import (
    TUNE_ENVIRONMENT,
    _scheduler,
    _searcher,
    budget_seconds,
    fixed_config,
    planned,
    run_search,
)
from tests.conftest import tiny_data

SPACE = {
    "name": "from_python",
    "search": {"samples": 3, "epochs": 2, "grace_period": 1},
    "fixed": {"arch": "unet", "encoder": "resnet18", "batch_size": 4, "augment": "none", "loss.ce": 1.0},
    "params": {"lr": {"loguniform": [1.0e-3, 1.0e-2]}, "loss.dice": {"choice": [0.0, 0.5]}},
}


def test_importing_the_package_loads_neither_torch_nor_ray_nor_optuna():
    code = ("import sys, searchseg; assert 'Search' in searchseg.__all__; "
            "print(sorted(m for m in ('torch', 'ray', 'optuna', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_every_public_name_resolves_and_the_package_ships_its_type_marker():
    for name in searchseg.__all__:
        assert getattr(searchseg, name) is not None, name
    assert dir(searchseg) == sorted(searchseg.__all__)
    with pytest.raises(AttributeError, match="no attribute 'run_search'"):
        searchseg.run_search  # noqa: B018  internal names stay internal
    assert (importlib.resources.files("searchseg") / "py.typed").is_file()


def test_a_space_object_is_copied_so_a_search_never_changes_the_caller_s():
    space = as_space(SPACE)
    assert (space.name, list(space.params), space.settings.samples) == ("from_python", ["lr", "loss.dice"], 3)
    copy = as_space(space)
    copy.settings.samples = 99
    assert space.settings.samples == 3
    with pytest.raises(UserError, match="unknown config key 'learning_rate'"):
        as_space({"params": {"learning_rate": {"uniform": [0.1, 0.2]}}})


def test_decoded_data_sets_the_size_and_refuses_a_fixed_size_that_differs():
    data = tiny_data(size=64)
    fixed = fixed_config(as_space(SPACE), Search(space=SPACE, data=data))
    assert (fixed["data"], fixed["image_size"], fixed["in_channels"]) == ("synthetic", 64, 3)
    with pytest.raises(UserError, match="fixed image_size=128 differs from how the data was decoded"):
        fixed_config(as_space(SPACE), Search(space=SPACE, data=data, fixed={"image_size": 128}))
    with pytest.raises(UserError, match="class_map applies to data given as a path"):
        fixed_config(as_space(SPACE), Search(space=SPACE, data=data, class_map="classes.json"))


def test_searchers_schedulers_and_trackers_are_names_or_objects_and_names_become_members_before_anything_runs():
    space = as_space(SPACE)
    sampler = optuna.samplers.RandomSampler(seed=3)
    assert _searcher(space, sampler)._sampler is sampler
    assert isinstance(_searcher(space, Searcher.TPE)._sampler, optuna.samplers.TPESampler)
    assert isinstance(_searcher(space, Searcher.RANDOM)._sampler, optuna.samplers.RandomSampler)
    fifo = FIFOScheduler()
    assert _scheduler(space.settings, fifo) is fifo
    assert isinstance(_scheduler(space.settings, Scheduler.NONE), FIFOScheduler)
    options = Search(space=SPACE, search=SearchConfig(searcher="random", scheduler="none"),
                     output=OutputConfig(trackers=["mlflow"]))
    options.check_types()
    assert options.search.searcher is Searcher.RANDOM and options.search.scheduler is Scheduler.NONE
    assert options.output.trackers == [Tracker.MLFLOW] and f"--tracker {Tracker.MLFLOW}" == "--tracker mlflow"
    for search, output, message in (
            (SearchConfig(searcher="cmaes"), OutputConfig(), "unknown searcher 'cmaes'; valid searchers: random, tpe"),
            (SearchConfig(scheduler="hyperband"), OutputConfig(),
             "unknown scheduler 'hyperband'; valid schedulers: asha, none"),
            (SearchConfig(), OutputConfig(trackers=["neptune"]),
             "unknown tracker 'neptune'; valid trackers: mlflow, tensorboard, wandb"),
            (SearchConfig(), OutputConfig(trackers="mlflow"), "trackers must be a list of names")):
        with pytest.raises(UserError, match=message):
            Search(space=SPACE, search=search, output=output).check_types()


def test_train_takes_a_flat_config_and_decoded_data(tmp_path):
    result = searchseg.train({"arch": "unet", "epochs": 1, "image_size": 64, "batch_size": 4, "augment": "none"},
                             tmp_path / "one", data=tiny_data(), progress=False, echo=lambda *_: None)
    assert result.fit.epochs_run == 1 and result.fit.status == "completed"
    assert TrialConfig.load(tmp_path / "one" / "config.yaml").arch == "unet"
    assert len(pd.read_csv(tmp_path / "one" / "metrics.csv")) == 1


def test_check_reports_a_clean_dataset_and_restore_refuses_a_folder_that_is_no_experiment(colour_dataset, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("search: {samples: 2, epochs: 2}\nfixed: {image_size: 32, batch_size: 4}\n"
                     "params: {lr: {loguniform: [1.0e-3, 1.0e-2]}}\n")
    outcome = searchseg.check_data(colour_dataset, colour_dataset / "classes.json", preflight_space=space,
                                   progress=False)
    assert not outcome.report.errors and outcome.report.stats.classes[0].pixels > 0
    assert outcome.preflight.batch_size == 4 and outcome.preflight.max_trial_epochs == 4
    with pytest.raises(UserError, match="is not a searchseg experiment"):
        Search.restore(tmp_path)


@pytest.mark.slow
def test_a_search_from_python_with_objects_then_restored(search_dataset, local_ray, tmp_path):
    data = load_from_config(TrialConfig(data=str(search_dataset), class_map=str(search_dataset / "classes.yaml"),
                                        image_size=64, group_by="folder", val_fraction=0.25, test_fraction=0.25),
                            progress=False)
    for key in TUNE_ENVIRONMENT:
        os.environ.pop(key, None)
    optuna.logging.set_verbosity(optuna.logging.INFO)
    space_before = copy.deepcopy(SPACE)
    job = Search(SPACE, data, search=SearchConfig(samples=3, searcher=optuna.samplers.RandomSampler(seed=1),
                                                  scheduler=FIFOScheduler()),
                 output=OutputConfig(results_dir=tmp_path, name="python", verbose=0))
    result = job.fit(echo=lambda *_: None)

    trials = pd.read_csv(result.experiment_dir / "trials.csv")
    assert len(trials) == 3 and set(trials["status"]) == {"completed"}  # FIFO: no trial stopped early
    assert (trials["epochs_run"] == 2).all()
    assert result.final.test_images == len(data.splits["test"]) and 0 <= result.final.test_miou <= 1
    run = json.loads((result.experiment_dir / "run.json").read_text())
    assert run["data_fingerprint"] == data.fingerprint and run["fixed"]["image_size"] == 64
    assert run["fixed"]["class_map"] == str(search_dataset / "classes.yaml") and run["fixed"]["group_by"] == "folder"
    rebuilt = load_from_config(TrialConfig.load(result.experiment_dir / "best_config.yaml"), progress=False)
    assert rebuilt.fingerprint == data.fingerprint  # the saved config decodes the very data the search was given
    assert result.experiment().trials["trial_id"].tolist() == trials["trial_id"].astype(str).tolist()
    assert not set(TUNE_ENVIRONMENT) & set(os.environ), "the search left Ray Tune's settings in the environment"
    assert optuna.logging.get_verbosity() == optuna.logging.INFO
    assert SPACE == space_before  # the caller's space is as it was

    restored = Search.restore(result.experiment_dir, data=data, verbose=0).fit(retrain=False, echo=lambda *_: None)
    again = pd.read_csv(restored.experiment_dir / "trials.csv")
    pd.testing.assert_frame_equal(again[["trial_id", "wall_seconds"]], trials[["trial_id", "wall_seconds"]])
    assert restored.best_value == result.best_value


@pytest.mark.parametrize(("search", "budget"), [
    (SearchConfig(), DEFAULT_BUDGET_SECONDS),  # the first command a user types
    (SearchConfig(budget="5m", samples=4, epochs=2), 300.0),  # counts are limits inside the plan
    (SearchConfig(budget=90, samples=0), 90.0),  # the search switched off, still planned
    (SearchConfig(samples=4), None),  # a search sized by hand
    (SearchConfig(epochs=3), None),
    (SearchConfig(smoke=True), None),
    (SearchConfig(objectives="val_miou:max,latency_ms:min"), None),  # a Pareto search
])
def test_every_run_is_planned_unless_its_search_is_sized_by_hand(search, budget):
    job = Search(SPACE, search=search)
    assert planned(job) is (budget is not None) and budget_seconds(job) == budget


@pytest.mark.parametrize("budget", [0, -5, float("inf"), float("nan"), 1e29, True, "x"])
def test_a_budget_that_is_no_duration_is_one_line(budget):
    with pytest.raises(UserError, match="budget"):
        budget_seconds(Search(SPACE, search=SearchConfig(budget=budget)))


@pytest.mark.parametrize(("given", "message"), [
    ({"space": 3}, "unknown search space '3'"),
    ({"data": 3}, "data must be a path or decoded SegmentationData, got int 3"),
    ({"class_map": 2.5}, "class_map must be a path, got float 2.5"),
    ({"search": SearchConfig(samples="x")}, "search.samples must be a whole number, got 'x'"),
    ({"search": SearchConfig(samples="x", budget=60)}, "--samples 'x' must be a whole number"),
    ({"fixed": 3}, "fixed must be dict, got int 3"),
    ({"search": 3}, "search must be SearchConfig, got int 3"),
    ({"resources": {"cpus_per_trial": 1}}, "resources must be ResourceConfig, got dict"),
    ({"resume": "yes"}, "resume must be True or False, got 'yes'"),
])
def test_the_api_given_wrong_types_answers_in_one_line(tmp_path, given, message):
    with pytest.raises(UserError, match=message):
        run_search(Search(**given, output=OutputConfig(results_dir=tmp_path, verbose=0)), echo=lambda *_: None)
