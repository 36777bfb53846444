"""``--warm-start``: an earlier experiment's trials told to Optuna before the first sample, its best trained first."""

from __future__ import annotations

import glob
import json
import pickle

import optuna
import pandas as pd
import pytest

from searchseg.api import OutputConfig, Search, SearchConfig
from searchseg.errors import UserError
from searchseg.spaces.space import as_space
from searchseg.tracking.files import load_trials
from searchseg.tuning.search import run_search
from searchseg.tuning.warm_start import earlier_trials, tell_study

SPACE = {
    "fixed": {"image_size": 64, "batch_size": 4, "encoder": "resnet18", "loss.ce": 1.0, "group_by": "folder",
              "val_fraction": 0.25, "test_fraction": 0.25},
    "params": {"arch": {"choice": ["unet", "fpn"]}, "lr": {"loguniform": [1.0e-4, 1.0e-2]},
               "loss.focal": {"choice": [0.0, 0.5]},
               "focal_gamma": {"uniform": [1.0, 4.0], "when": {"loss.focal": "nonzero"}}},
}


def write_trials(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / "trials.csv", index=False)
    return folder


EARLIER = [
    {"trial_id": "a", "status": "completed", "arch": "unet", "lr": 1e-3, "loss.focal": 0.0, "focal_gamma": None,
     "best_val_miou": 0.41},
    {"trial_id": "b", "status": "early_stopped", "arch": "fpn", "lr": 3e-3, "loss.focal": 0.5, "focal_gamma": 2.0,
     "best_val_miou": 0.52},
    {"trial_id": "c", "status": "error", "arch": "unet", "lr": 1e-2, "loss.focal": 0.0, "focal_gamma": None,
     "best_val_miou": None},  # never reported
    {"trial_id": "d", "status": "completed", "arch": "segformer", "lr": 1e-3, "loss.focal": 0.0,
     "focal_gamma": None, "best_val_miou": 0.60},  # an architecture this space does not search
    {"trial_id": "e", "status": "completed", "arch": "unet", "lr": 0.5, "loss.focal": 0.0, "focal_gamma": None,
     "best_val_miou": 0.70},  # a learning rate outside its range
]


def test_the_trials_the_space_can_take_are_read_best_first(tmp_path):
    trials = earlier_trials(write_trials(tmp_path / "earlier", EARLIER), as_space(SPACE))
    assert trials == [({"arch": "fpn", "lr": 3e-3, "loss.focal": 0.5, "focal_gamma": 2.0}, 0.52),
                      ({"arch": "unet", "lr": 1e-3, "loss.focal": 0.0}, 0.41)]


def test_they_are_told_to_optuna_with_the_space_s_distributions_and_tpe_models_them_at_once(tmp_path):
    space = as_space(SPACE)
    trials = earlier_trials(write_trials(tmp_path / "earlier", EARLIER), space)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=2))
    tell_study(study, space, trials)
    told = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert [t.value for t in told] == [0.52, 0.41]
    assert told[0].params == {"arch": "fpn", "lr": 3e-3, "loss.focal": 0.5, "focal_gamma": 2.0}
    assert "focal_gamma" not in told[1].params  # inactive there, as the define-by-run function leaves it
    sampled = space.sample(study.ask())  # the next sample comes from TPE's model of the told trials
    assert space.admits(sampled)


@pytest.mark.parametrize(("rows", "message"), [(None, "no trials.csv there"),
                                                ([{"trial_id": "a", "status": "completed", "best_val_loss": 0.3}],
                                                 "were not scored by val_miou")])
def test_an_experiment_that_cannot_warm_start_is_one_line(tmp_path, rows, message):
    folder = write_trials(tmp_path / "earlier", rows) if rows else tmp_path
    with pytest.raises(UserError, match=message):
        earlier_trials(folder, as_space(SPACE))


@pytest.mark.slow
def test_a_second_search_starts_where_the_first_ended(search_dataset, local_ray, tmp_path):
    def search(name: str, **given):
        options = Search(SPACE, str(search_dataset), class_map=str(search_dataset / "classes.yaml"),
                         search=SearchConfig(samples=2, epochs=1, **given),
                         output=OutputConfig(name=name, results_dir=tmp_path, verbose=0))
        return run_search(options, echo=lambda *_: None)

    first = search("first")
    earlier = load_trials(first.experiment_dir).sort_values("best_val_miou", ascending=False)
    second = search("second", warm_start=str(first.experiment_dir))
    run = json.loads((second.experiment_dir / "run.json").read_text())
    assert run["warm_start"] == {"experiment": str(first.experiment_dir), "trials": 2}
    [state] = glob.glob(str(second.experiment_dir / "searcher-state-*.pkl"))
    with open(state, "rb") as file:
        study = pickle.load(file)["_ot_study"]
    values = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(values) == 4 and sorted(values[:2], reverse=True) == list(earlier["best_val_miou"])
    first_trained = load_trials(second.experiment_dir).iloc[0]  # the earlier best, trained again first
    assert (first_trained["arch"], first_trained["lr"]) == (earlier.iloc[0]["arch"],
                                                            pytest.approx(earlier.iloc[0]["lr"]))
