"""``ResultsWriter``: a Ray Tune callback in the driver that rewrites ``trials.csv`` and ``curves.csv``
atomically as results arrive, so they are current while the search runs, brings ``study.db`` up to date after
them, and reloads the tables when a search resumes."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import pandas as pd
from optuna.exceptions import StorageInternalError
from ray.tune import Callback
from sqlalchemy.exc import SQLAlchemyError

from searchseg.io_utils import atomic_write_text, read_table
from searchseg.layout import ExperimentLayout
from searchseg.spaces.space import COST_OBJECTIVES, trial_config_from_tune
from searchseg.tracking.files import CURVE_COLUMNS, load_trials
from searchseg.tracking.optuna_study import StudyWriter
from searchseg.tracking.status import FAILED, FAILURE_KEY, Direction, TrialStatus, finished_status


def _clean(value):
    return None if isinstance(value, float) and math.isnan(value) else value


class ResultsWriter(Callback):
    def __init__(self, experiment_dir: Path, searched_keys: list[str], max_epochs: int, metric: str,
                 mode: str, time_budget: bool = False, study: StudyWriter | None = None) -> None:
        self.experiment_dir = Path(experiment_dir)
        self.layout = ExperimentLayout(self.experiment_dir)
        self.study, self.study_failed = study, False
        self.time_budget = time_budget
        self.searched_keys, self.max_epochs, self.metric = searched_keys, max_epochs, metric
        self.direction = Direction(mode)
        self.trials: dict[str, dict] = {}
        self.curves: dict[tuple[str, int], dict] = {}

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info) -> None:
        """On resume, start from the rows already written by the interrupted driver."""
        trials_path, curves_path = self.layout.trials, self.layout.curves
        if trials_path.is_file():  # empty cells (a trial killed before its first report) come back as None
            for row in load_trials(self.experiment_dir).to_dict("records"):
                self.trials[str(row["trial_id"])] = {key: _clean(value) for key, value in row.items()}
        if curves_path.is_file():
            for row in read_table(curves_path, ("trial_id", "epoch")).to_dict("records"):
                self.curves[(str(row["trial_id"]), int(row["epoch"]))] = row

    def _row(self, trial) -> dict:
        row = self.trials.setdefault(trial.trial_id, {"trial_id": trial.trial_id})
        config = trial_config_from_tune(trial.config)
        row.update({key: config.get(key) for key in self.searched_keys})
        return row

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        row = self._row(trial)
        row["status"] = TrialStatus.RUNNING.value
        row.setdefault("epochs_run", 0)  # a trial the budget ends before its first report has run none
        row.setdefault("started_at", round(time.time(), 3))  # a resumed trial keeps its first start
        self._write()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        row = self._row(trial)
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        best_key = f"best_{self.metric}"
        value = _clean(result.get(self.metric))
        if result.get(FAILURE_KEY):
            row["status"], row["stop_reason"] = result[FAILURE_KEY], result.get("stop_reason", "")
            row["finished_at"] = round(time.time(), 3)
        else:
            self.curves[(trial.trial_id, epoch)] = {"trial_id": trial.trial_id, **{
                key: _clean(result.get(key)) for key in CURVE_COLUMNS if key != "trial_id"}}
            if value is not None:
                best = row.get(best_key)
                row[best_key] = value if best is None or pd.isna(best) else self.direction.best((best, value))
                row[f"last_{self.metric}"] = value
        row.update({key: result[key] for key in COST_OBJECTIVES if key in result})
        row.update({
            "epochs_run": epoch,
            "node_id": result.get("node_id"),
            "node_ip": result.get("node_ip"),
            "wall_seconds": round(float(result.get("time_total_s", 0.0)), 2),
            "resumed_from_epoch": result.get("resumed_from_epoch", 0),
        })
        self._write()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        row = self._row(trial)
        if row.get("status") not in FAILED:
            row["status"] = finished_status(int(row.get("epochs_run") or 0), self.max_epochs).value
            row["finished_at"] = round(time.time(), 3)
        self._write()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        row = self._row(trial)
        # Ray's error.txt, just written to the driver's staging folder (the storage's copy is synced later); its
        # error.pkl is a pickle: never read back, by us or by the ResultGrid that Tuner.fit builds
        staged = Path(trial.error_file) if trial.error_file else None
        error = staged.read_text(errors="replace") if staged and staged.is_file() else trial.get_error()
        trial.run_metadata.pickled_error_filename = None
        row["status"] = TrialStatus.ERROR.value
        row["stop_reason"] = str(error).strip().splitlines()[-1][:300] if error else "unknown"
        row["finished_at"] = round(time.time(), 3)
        self._write()

    def on_experiment_end(self, trials, **info) -> None:
        # A trial the killed driver had started but Ray had not yet saved is unknown to the resumed search,
        # which ran that sample again under a new id: its row would stay "running" forever.
        known = {trial.trial_id for trial in trials}
        running = [t for t, row in self.trials.items() if row.get("status") == TrialStatus.RUNNING]
        for trial_id in [t for t in running if t not in known]:
            del self.trials[trial_id]
            self.curves = {key: row for key, row in self.curves.items() if key[0] != trial_id}
        if self.time_budget:  # Tune ends the trials still running when the time is up without completing them
            for row in self.trials.values():
                if row.get("status") == TrialStatus.RUNNING:
                    row["status"] = TrialStatus.TIME_BUDGET.value
                    row["stop_reason"] = "the search's share of --budget ran out"
                    row["finished_at"] = round(time.time(), 3)
        self._write(final=True)

    def _write(self, final: bool = False) -> None:
        columns = ["trial_id", "status", *self.searched_keys, f"best_{self.metric}", f"last_{self.metric}",
                   "epochs_run", "stop_reason", *COST_OBJECTIVES, "node_id", "node_ip", "wall_seconds",
                   "resumed_from_epoch", "started_at", "finished_at"]
        trials = pd.DataFrame(list(self.trials.values()))
        trials = trials.reindex(columns=columns + [c for c in trials.columns if c not in columns])
        atomic_write_text(self.layout.trials, trials.to_csv(index=False))
        curves = pd.DataFrame(list(self.curves.values()), columns=list(CURVE_COLUMNS))
        curves = curves.sort_values(["trial_id", "epoch"]) if len(curves) else curves
        atomic_write_text(self.layout.curves, curves.to_csv(index=False))
        self._sync_study(trials, curves, final)

    def _sync_study(self, trials: pd.DataFrame, curves: pd.DataFrame, final: bool) -> None:
        """The tables are the record; the study is a view of them, so a locked or failing database is reported
        once and the search goes on (``searchseg report`` writes the study again from the tables)."""
        if self.study is None or self.study_failed:
            return
        try:
            self.study.sync(trials, curves, final=final)
        except (SQLAlchemyError, StorageInternalError) as error:
            self.study_failed = True
            print(f"warning: study.db is no longer updated during this search ({type(error).__name__}: "
                  f"{str(error).splitlines()[0][:200]}); searchseg report writes it from the tables", file=sys.stderr)
