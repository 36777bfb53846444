"""A model and a loss defined outside the package, named as a plugin, searched by a real Ray search."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from searchseg.config import TrialConfig
from searchseg.errors import UserError
from searchseg.plugins import load_plugins, plugin_modules

PLUGIN = '''
from torch import nn

from searchseg.losses import register_loss
from searchseg.models import register_arch


@register_arch("two_convs")
def two_convs(in_channels, classes):
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, classes, 1))


@register_loss("smoothed_ce")
def smoothed_ce(context):
    return nn.CrossEntropyLoss(ignore_index=context.ignore_index, label_smoothing=0.1)
'''
SPACE = {
    "search": {"samples": 2, "epochs": 2, "grace_period": 2},
    "fixed": {"plugins": "searchseg_test_plugin", "image_size": 64, "batch_size": 4, "augment": "none",
              "group_by": "folder", "val_fraction": 0.25, "test_fraction": 0.25, "encoder": "resnet18"},
    "params": {"arch": {"choice": ["two_convs", "unet"]}, "loss.smoothed_ce": {"choice": [0.5, 1.0]},
               "lr": {"loguniform": [1.0e-3, 3.0e-3]}},
    "start": [{"arch": "two_convs", "loss.smoothed_ce": 1.0, "lr": 2.0e-3}],
}


def search(dataset, folder, env) -> subprocess.CompletedProcess:
    space = folder / "plugin_space.yaml"
    space.write_text(yaml.safe_dump(SPACE))
    command = [sys.executable, "-m", "searchseg.run", "--space", str(space), "--data", str(dataset),
               "--class-map", str(dataset / "classes.yaml"), "--results", str(folder / "results"), "--name", "plugin",
               "--quiet", "--no-retrain"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_a_plugin_model_and_loss_train_in_ray_trial_processes(search_dataset, tmp_path):
    (tmp_path / "searchseg_test_plugin.py").write_text(PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = search(search_dataset, tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = pd.read_csv(tmp_path / "results" / "plugin" / "trials.csv")
    assert len(trials) == 2 and (trials["status"] == "completed").all(), trials.to_string()
    assert "two_convs" in set(trials["arch"])  # the start configuration, built in a trial process
    [trial_dir] = (tmp_path / "results" / "plugin").glob("train_segmentation_*_1_*")
    config = TrialConfig.load(trial_dir / "config.yaml")
    assert (config.arch, config.loss, config.plugins) == ("two_convs", {"smoothed_ce": 1.0}, "searchseg_test_plugin")


@pytest.mark.slow
def test_a_plugin_that_cannot_be_imported_is_one_line_before_ray_starts(search_dataset, tmp_path):
    done = search(search_dataset, tmp_path, dict(os.environ))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "plugin module 'searchseg_test_plugin' cannot be imported" in done.stderr
    assert "PYTHONPATH" in done.stderr and not (tmp_path / "results" / "plugin" / "trials.csv").exists()


def test_plugin_names_are_comma_separated_modules():
    assert plugin_modules(" a.b, c ,,") == ["a.b", "c"] and plugin_modules(None) == []
    load_plugins("json, os.path")  # importable: nothing to say
    with pytest.raises(UserError, match="plugin module 'no_such_plugin' cannot be imported"):
        load_plugins("json,no_such_plugin")
