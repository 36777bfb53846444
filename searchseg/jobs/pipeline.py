"""The main job: search, retrain and evaluate the best, then write the report and the Optuna study."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from searchseg.final.finalize import continue_best, retrain_best
from searchseg.io_utils import read_table
from searchseg.jobs.final_stage import final_stage
from searchseg.layout import ExperimentLayout
from searchseg.options import SearchOptions
from searchseg.report.experiment import load_experiment
from searchseg.report.html import write_report
from searchseg.spaces.config import TrialConfig
from searchseg.tracking.final_metrics import FinalMetrics
from searchseg.tracking.optuna_study import export_study
from searchseg.tracking.pareto import write_pareto
from searchseg.tracking.trackers import log_final_model
from searchseg.tuning.search import run_search

if TYPE_CHECKING:
    from searchseg.tuning.search import SearchOutcome


@dataclass
class SearchResult:
    """A finished job: the experiment folder and what it holds."""

    search: SearchOutcome
    final: FinalMetrics | None  # as final/metrics.json: test mIoU (and spread), per-class IoU, Dice, confusion matrix
    report: Path  # report.html
    study: Path  # study.db, for optuna-dashboard

    @property
    def experiment_dir(self) -> Path:
        return self.search.experiment_dir

    @property
    def best_config(self) -> TrialConfig:
        return self.search.best_config

    @property
    def best_value(self) -> float:
        return self.search.best_value

    def experiment(self):
        """The experiment's tables (trials, curves, final metrics) as the report reads them."""
        return load_experiment(self.experiment_dir)


def run_pipeline(options: SearchOptions, retrain: bool = True, retrain_seeds: int = 1, export: str | None = None,
                 echo=print, started_at: float | None = None) -> SearchResult:
    """Search, then the final model, the report and the Optuna study.

    With a budget the whole job, counted from ``started_at`` (wall clock; default now), is planned to end within
    it, and the final model continues the best trial instead of retraining from scratch.
    """
    started_at = time.time() if started_at is None else started_at
    outcome = run_search(options, echo=echo, started_at=started_at)
    final = None
    progress = options.output.verbose > 0
    final_dir = ExperimentLayout(outcome.experiment_dir).final()
    written = final_dir.metrics  # the final stage's last file
    if retrain and options.resume and written.is_file():  # interrupted after it, e.g. while the report was written
        final = FinalMetrics.load(written)
        echo(f"final model: kept as the interrupted run wrote it ({written.parent}); the report is written again")
    elif retrain and outcome.plan is not None:
        if retrain_seeds > 1:
            echo("--retrain-seeds is ignored with --budget: the final model continues the best trial once")
        plan = outcome.plan
        deadline = outcome.started_at + plan.budget_seconds - plan.reserve_seconds
        # the seconds the search left unused are the final model's too: it plans its steps from what is left
        best = outcome.best_config
        final = final_stage(outcome, continue_best, outcome.experiment_dir, outcome.best_state, outcome.data,
                             deadline, step_seconds=plan.final_step_estimate(best.arch, best.encoder), export=export,
                             progress=progress, echo=echo, trial_choice=outcome.selection)
    elif retrain:
        final = final_stage(outcome, retrain_best, outcome.experiment_dir, outcome.data, seeds=retrain_seeds,
                             export=export, progress=progress, echo=echo)
    if final is not None and options.output.trackers:
        log_final_model(options.output.trackers, outcome.experiment_dir, outcome.experiment_dir.name,
                        TrialConfig.load(final_dir.config), final, read_table(final_dir.curves))
    experiment = load_experiment(outcome.experiment_dir)
    write_pareto(experiment)
    report = write_report(outcome.experiment_dir)
    study = export_study(experiment)
    return SearchResult(outcome, final, report, study)
