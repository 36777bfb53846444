"""Each example in examples/ runs as the README shows it (``--smoke-test``/``--smoke`` sized); the plugin example
is run by tests/training/test_plugins.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from searchseg.spaces.config import TrialConfig

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytestmark = pytest.mark.slow


def test_the_python_api_example_searches_retrains_and_reports(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLES / "python_api.py"), "--smoke-test"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "test mIoU:" in done.stdout and "best: " in done.stdout
    [experiment] = (tmp_path / "results").iterdir()
    assert (experiment / "report.html").is_file() and (experiment / "final" / "metrics.json").is_file()
    assert len(pd.read_csv(experiment / "trials.csv")) == 2


def test_the_custom_space_example_searches_its_conditional_parameters(tmp_path):
    command = [sys.executable, "-m", "searchseg.run", "--space", str(EXAMPLES / "custom_space.yaml"), "--smoke",
               "--samples", "3", "--no-retrain", "--quiet", "--results", str(tmp_path), "--name", "custom"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = pd.read_csv(tmp_path / "custom" / "trials.csv")
    assert len(trials) == 3 and trials["status"].isin(["completed", "early_stopped"]).all(), trials.to_string()
    for trial_dir in (tmp_path / "custom").glob("train_segmentation_*"):
        config = TrialConfig.load(trial_dir / "config.yaml")
        assert config.arch == "unet" and config.loss == {"ce": 1.0, "dice": 1.0}
    sgd = trials[trials["optimizer"] == "sgd"]
    assert trials.loc[trials["optimizer"] != "sgd", "momentum"].isna().all()  # only searched when SGD is drawn
    assert sgd["momentum"].between(0.8, 0.99).all()
