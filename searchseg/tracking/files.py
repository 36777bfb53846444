"""An experiment's files: ``run.json``, ``trials.csv`` (one row per trial) and ``curves.csv`` (one row per
trial-epoch), their readers (their names: ``layout``).

Reading them imports neither torch nor Ray, so ``report`` stays light; ``writer.ResultsWriter``, the
Ray Tune callback that writes the tables during a search, lives apart for that reason.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pandas as pd

from searchseg.errors import UserError
from searchseg.io_utils import read_json, read_table
from searchseg.layout import ExperimentLayout
from searchseg.spaces.space import SearchSettings

CURVE_COLUMNS = ("trial_id", "epoch", "train_loss", "val_loss", "val_miou", "val_dice", "val_pixel_accuracy",
                 "lr", "epoch_seconds", "train_images_per_s", "node_id", "resumed_from_epoch", "reported_at")


def load_trials(experiment_dir: Path) -> pd.DataFrame:
    return read_table(ExperimentLayout(experiment_dir).trials, ("trial_id", "status"), keep_default_na=False,
                      na_values=[""])


def read_run(experiment_dir: Path, required: tuple[str, ...] = ("settings",)) -> dict:
    """``run.json`` of an experiment with the ``required`` keys, checked: one line naming the file when it is
    damaged."""
    path = ExperimentLayout(experiment_dir).run
    run = read_json(path, required)
    settings = run["settings"]
    known = {f.name for f in fields(SearchSettings)}
    if not isinstance(settings, dict) or set(settings) - known or not isinstance(run.get("fixed", {}), dict):
        raise UserError(f"{path} is not what searchseg wrote (its settings or fixed keys are damaged); restore it "
                        "from a copy, or start a new experiment")
    SearchSettings(**settings).validate(str(path))
    return run
