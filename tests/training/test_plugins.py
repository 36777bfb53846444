"""A model and a loss defined outside the package (examples/plugins), named as a plugin, searched with their own
parameters by a real Ray search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

import searchseg
from searchseg.errors import UserError
from searchseg.final.finalize import continue_best
from searchseg.layout import ExperimentLayout
from searchseg.spaces.config import TrialConfig
from searchseg.training.plugins import ENTRY_POINT_GROUP, load_plugins, plugin_modules, trust_plugins
from tests.conftest import save, tiny_data
from tests.final.test_finalize import stopped_trial

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
    with pytest.raises(UserError, match="plugins must be module names separated by commas"):
        plugin_modules(["a"])
    load_plugins("json, os.path")  # imported already: nothing runs, nothing to say
    with pytest.raises(UserError, match="'never_named_plugin' is named by a saved file.*--plugins never_named_plugin"):
        load_plugins("json,never_named_plugin")
    trust_plugins("no_such_plugin")
    with pytest.raises(UserError, match="plugin module 'no_such_plugin' cannot be imported"):
        load_plugins("json,no_such_plugin")


HOSTILE_PLUGIN = """
from pathlib import Path
Path(__file__).with_name("ran.txt").write_text("code from a results folder ran")
"""


def command_in(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """A searchseg command run from inside ``folder`` with ``folder`` on PYTHONPATH: where a results folder's own
    module would be importable if searchseg imported what its files name."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, env=env,
                          cwd=folder)


@pytest.fixture(scope="module")
def hostile_experiment(tmp_path_factory):
    """A finished experiment whose saved files name a module that lives in the folder itself."""
    folder = tmp_path_factory.mktemp("hostile")
    data = tiny_data(count=8, size=64)
    stopped_trial(folder, data, epochs_run=1)
    continue_best(folder, folder / "state.pt", data, deadline=time.time() - 1, step_seconds=0.1, progress=False,
                  echo=lambda *_: None)
    card_file = ExperimentLayout(folder).final().card
    card = json.loads(card_file.read_text())
    card["config"]["plugins"] = "hostile_plugin"
    card_file.write_text(json.dumps(card))
    TrialConfig.load(folder / "best_config.yaml").replace(plugins="hostile_plugin").save(folder / "best_config.yaml")
    (folder / "hostile_plugin.py").write_text(HOSTILE_PLUGIN)
    save(folder / "new.png", data.images[0])
    return folder


@pytest.mark.parametrize("command", [["searchseg.predict", ".", "new.png", "--out", "out", "--quiet"],
                                     ["searchseg.retrain", ".", "--epochs", "1", "--overlays", "0", "--quiet"],
                                     ["searchseg.trial", "--config", "best_config.yaml", "--epochs", "1", "--quiet"]])
def test_a_module_named_only_by_a_results_folder_is_never_imported(hostile_experiment, command):
    done = command_in(hostile_experiment, *command)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "'hostile_plugin' is named by a saved file" in done.stderr and "--plugins hostile_plugin" in done.stderr
    assert not (hostile_experiment / "ran.txt").exists()


def test_a_module_the_user_names_with_plugins_is_imported(hostile_experiment):
    done = command_in(hostile_experiment, "searchseg.predict", ".", "new.png", "--out", "out", "--quiet",
                      "--plugins", "hostile_plugin")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (hostile_experiment / "ran.txt").is_file() and (hostile_experiment / "out" / "masks" / "new.png").is_file()
    (hostile_experiment / "ran.txt").unlink()


def test_resume_imports_no_module_that_the_saved_space_or_run_json_names(tmp_path):
    experiment = tmp_path / "results" / "saved"
    experiment.mkdir(parents=True)
    (tmp_path / "hostile_plugin.py").write_text(HOSTILE_PLUGIN)
    space = yaml.safe_load((Path(searchseg.__file__).parent / "search_spaces" / "arch_loss.yaml").read_text())
    for saved_space, saved_fixed in (({**space, "fixed": {**space["fixed"], "plugins": "hostile_plugin"}}, {}),
                                     (space, {"plugins": "hostile_plugin"})):
        (experiment / "space.yaml").write_text(yaml.safe_dump(saved_space, sort_keys=False))
        (experiment / "run.json").write_text(json.dumps({"settings": {}, "fixed": saved_fixed,
                                                         "data_fingerprint": "0"}))
        done = command_in(tmp_path, "searchseg.run", "--resume", "--name", "saved", "--results", "results")
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert "--plugins hostile_plugin" in done.stderr and not (tmp_path / "ran.txt").exists()


def test_a_plugin_installed_as_an_entry_point_registers_its_names_without_being_named(tmp_path):
    (tmp_path / "installed_models.py").write_text(
        "from torch import nn\nfrom searchseg import register_arch\n\n"
        "@register_arch('installed_fcn')\ndef installed_fcn(in_channels, classes):\n"
        "    return nn.Conv2d(in_channels, classes, 1)\n")
    info = tmp_path / "installed_models-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: installed-models\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nmodels = installed_models\n")
    done = command_in(tmp_path, "searchseg.trial", "--list")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "installed_fcn" in done.stdout


def test_a_plugin_that_raises_while_imported_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('needs a GPU driver')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    trust_plugins("broken_plugin")
    with pytest.raises(UserError, match="'broken_plugin' failed while importing: RuntimeError: needs a GPU driver"):
        load_plugins("broken_plugin")
