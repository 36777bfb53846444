"""``--warm-start EXPERIMENT``: a search that starts where an earlier one on the same or similar data ended.

The earlier experiment's trials (``trials.csv``: each trial's searched keys and its best value of the metric) are
told to Optuna as finished trials before the first sample, so TPE models the space from them at once instead of
sampling at random first; and the earlier best configuration is trained first, ahead of the space's own start
configurations (it is what a budget too short to search trains). Trials whose values the space cannot take (an
architecture it does not list, a learning rate outside its range) are left out. The earlier scores were measured
at that search's fidelity: they rank configurations, which is what TPE uses them for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna

from searchseg.errors import UserError
from searchseg.layout import ExperimentLayout
from searchseg.spaces.space import SearchSpace
from searchseg.tracking.files import load_trials
from searchseg.tracking.status import Direction

WarmTrial = tuple[dict[str, Any], float]  # the searched config keys and the trial's best value of the metric


def earlier_trials(experiment_dir: str | Path, space: SearchSpace) -> list[WarmTrial]:
    """The trials of ``experiment_dir`` that reported the space's metric and that ``space`` can sample, best first."""
    folder = Path(experiment_dir).expanduser()
    trials_file = ExperimentLayout(folder).trials
    if not trials_file.is_file():
        raise UserError(f"--warm-start {experiment_dir}: no {trials_file.name} there; name the folder of an earlier "
                        "searchseg experiment (results/NAME)")
    trials = load_trials(folder)
    metric, mode = space.settings.metric, space.settings.mode
    column = f"best_{metric}"
    if column not in trials.columns:
        raise UserError(f"--warm-start {experiment_dir}: its trials were not scored by {metric} (no {column} in "
                        f"{trials_file.name}); warm-start from a search with the same metric")
    found = []
    for _, row in trials.iterrows():
        score = row[column]
        if score is None or not math.isfinite(float(score)):
            continue
        config = {key: _plain(row[key]) for key in space.params if key in row and not _missing(row[key])}
        if space.admits(config):
            found.append((config, float(score)))
    return sorted(found, key=lambda trial: trial[1], reverse=Direction(mode) is Direction.MAX)


def tell_study(study: optuna.Study, space: SearchSpace, trials: list[WarmTrial]) -> None:
    """Add ``trials`` to ``study`` as finished trials, with the Optuna names and distributions the space's
    define-by-run function gives them (conditional parameters included)."""
    for config, score in trials:
        replay = optuna.trial.FixedTrial(space.optuna_point(config))
        space.sample(replay)
        study.add_trial(optuna.trial.create_trial(params=replay.params, distributions=replay.distributions,
                                                  value=score))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    """A pandas cell as the Python value a space compares (numpy scalars to int, float or bool)."""
    return value.item() if hasattr(value, "item") else value
