"""A compact progress display for a search: one bar over trials and one line per finished trial.

Ray Tune's own tables (``--verbose``) print every result of every trial; this shows what a user
watches for: how many trials are done, how each ended, and the best value so far.
"""

from __future__ import annotations

from pathlib import Path

from ray.tune import Callback
from tqdm import tqdm

from searchseg.layout import ExperimentLayout
from searchseg.spaces.space import trial_config_from_tune
from searchseg.tracking.files import load_trials
from searchseg.tracking.status import FAILURE_KEY, Direction, TrialStatus, finished_status


class SearchProgress(Callback):
    def __init__(self, experiment_dir: Path, total: int, max_epochs: int, metric: str, mode: str) -> None:
        self.experiment_dir, self.total, self.max_epochs = Path(experiment_dir), total, max_epochs
        self.metric, self.direction = metric, Direction(mode)
        self.best: float | None = None
        self.last: dict[str, dict] = {}
        self.trial_best: dict[str, tuple[float, int]] = {}  # trial id -> its best value and that epoch
        self.bar: tqdm = None  # made in setup, before Tune calls anything else

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info) -> None:
        done = 0
        if ExperimentLayout(self.experiment_dir).trials.is_file():  # a resumed search starts where it stopped
            done = int((load_trials(self.experiment_dir)["status"] != TrialStatus.RUNNING).sum())
        self.bar = tqdm(total=self.total, initial=done, desc="trials", unit="trial", dynamic_ncols=True)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.last[trial.trial_id] = result
        value = result.get(self.metric)
        if value is not None and not result.get(FAILURE_KEY):
            best = self.trial_best.get(trial.trial_id)
            if best is None or self.direction.is_better(value, best[0]):
                self.trial_best[trial.trial_id] = (value, result.get("epoch", 0))
            if self.best is None or self.direction.is_better(value, self.best):
                self.best = value
                self.bar.set_postfix({f"best {self.metric}": f"{value:.4f}"})

    def _finish(self, trial, how: str) -> None:
        result = self.last.get(trial.trial_id, {})
        config = trial_config_from_tune(trial.config)
        model = "/".join(str(config[k]) for k in ("arch", "encoder") if k in config)
        value = result.get(self.metric)
        shown = f"{self.metric} {value:.4f}" if isinstance(value, float) else "no result"
        best = self.trial_best.get(trial.trial_id)
        if best is not None and best[0] != value:  # the search ranks trials by their best epoch, not the last
            shown += f" (best {best[0]:.4f} at epoch {best[1]})"
        self.bar.write(f"trial {trial.trial_id} {model} {how} after {result.get('epoch', 0)}/{self.max_epochs} "
                       f"epochs: {shown}")
        self.bar.update(1)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        result = self.last.get(trial.trial_id, {})
        self._finish(trial, result.get(FAILURE_KEY) or finished_status(result.get("epoch", 0), self.max_epochs).value)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._finish(trial, "failed")

    def on_experiment_end(self, trials, **info) -> None:
        self.bar.close()
