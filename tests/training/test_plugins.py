"""A model and a loss defined outside the package (examples/plugins), named as a plugin, searched with their own
parameters by a real Ray search."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from searchseg.errors import UserError
from searchseg.spaces.config import TrialConfig
from searchseg.training.plugins import load_plugins, plugin_modules

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def search(folder: Path, env: dict) -> subprocess.CompletedProcess:
    """README (Extending): the plugin example's space searched on the demo data, --smoke sized."""
    command = [sys.executable, "-m", "searchseg.run", "--space", str(EXAMPLES / "plugin_space.yaml"), "--smoke",
               "--results", str(folder / "results"), "--name", "plugin", "--quiet", "--no-retrain"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_the_plugin_example_s_model_loss_and_their_parameters_train_in_ray_trial_processes(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES / "plugins"), os.environ.get("PYTHONPATH", "")])}
    done = search(tmp_path, env)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = pd.read_csv(tmp_path / "results" / "plugin" / "trials.csv")
    assert len(trials) == 2 and trials["status"].isin(["completed", "early_stopped"]).all(), trials.to_string()
    [trial_dir] = (tmp_path / "results" / "plugin").glob("train_segmentation_*_1_*")
    config = TrialConfig.load(trial_dir / "config.yaml")  # the start configuration, built in a trial process
    assert (config.arch, config.loss, config.plugins) == ("tiny_fcn", {"smooth_ce": 1.0, "dice": 0.5}, "my_models")
    assert config.options == {"arch.tiny_fcn.width": 16, "loss.smooth_ce.smoothing": 0.1}
    smoothing = trials["loss.smooth_ce.smoothing"]
    assert smoothing.between(0.0, 0.2).all() and smoothing.nunique() == 2  # searched: TPE's sample differs


@pytest.mark.slow
def test_a_plugin_that_cannot_be_imported_is_one_line_before_ray_starts(tmp_path):
    done = search(tmp_path, dict(os.environ))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "plugin module 'my_models' cannot be imported" in done.stderr
    assert "PYTHONPATH" in done.stderr and not (tmp_path / "results" / "plugin" / "trials.csv").exists()


def test_plugin_names_are_comma_separated_modules():
    assert plugin_modules(" a.b, c ,,") == ["a.b", "c"] and plugin_modules(None) == []
    load_plugins("json, os.path")  # importable: nothing to say
    with pytest.raises(UserError, match="plugin module 'no_such_plugin' cannot be imported"):
        load_plugins("json,no_such_plugin")
