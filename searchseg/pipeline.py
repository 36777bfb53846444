"""The main job: search, retrain and evaluate the best, then write the report and the Optuna study."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from searchseg.finalize import retrain_best
from searchseg.report.experiment import load_experiment
from searchseg.report.html import write_report
from searchseg.report.optuna_study import export_study
from searchseg.search import SearchOptions, SearchOutcome, run_search


@dataclass
class PipelineOutcome:
    search: SearchOutcome
    final: dict | None
    report: Path
    study: Path


def run_pipeline(options: SearchOptions, retrain: bool = True, retrain_seeds: int = 1, export: str | None = None,
                 echo=print) -> PipelineOutcome:
    outcome = run_search(options, echo=echo)
    final = None
    if retrain:
        final = retrain_best(outcome.experiment_dir, outcome.data, seeds=retrain_seeds, export=export,
                             progress=options.verbose > 0, echo=echo)
    report = write_report(outcome.experiment_dir)
    study = export_study(load_experiment(outcome.experiment_dir))
    return PipelineOutcome(outcome, final, report, study)
