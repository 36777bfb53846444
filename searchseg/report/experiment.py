"""An experiment folder read back into tables: the one input of every report view."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from searchseg.io_utils import read_json, read_table
from searchseg.layout import ExperimentLayout
from searchseg.spaces.space import SearchSettings, SearchSpace, load_space
from searchseg.tracking.files import read_run
from searchseg.tracking.status import TrialStatus


@dataclass
class Experiment:
    path: Path
    run: dict
    space: SearchSpace | None
    trials: pd.DataFrame
    curves: pd.DataFrame
    final: dict | None = None
    final_curves: pd.DataFrame | None = None
    overlays: list[Path] = field(default_factory=list)

    @property
    def settings(self) -> SearchSettings:
        return SearchSettings(**self.run["settings"])

    @property
    def metric(self) -> str:
        return self.settings.metric

    @property
    def searched(self) -> list[str]:
        return list(self.space.params) if self.space else []

    @property
    def running(self) -> bool:
        """True while the search has not written its best configuration, or a trial is still running."""
        finished = ExperimentLayout(self.path).best_config.is_file()
        return not finished or (self.trials.get("status") == TrialStatus.RUNNING).any()


def load_experiment(path: str | Path) -> Experiment:
    layout = ExperimentLayout(Path(path))
    layout.require_run("pass a folder under results/")
    run = read_run(layout.path)
    space = load_space(str(layout.space), check_names=False) if layout.space.is_file() else None
    trials = read_table(layout.trials, ("trial_id", "status")) if layout.trials.is_file() else \
        pd.DataFrame(columns=["trial_id", "status"])
    curves = read_table(layout.curves, ("trial_id", "epoch")) if layout.curves.is_file() else \
        pd.DataFrame(columns=["trial_id", "epoch"])
    final_dir = layout.final()
    final = read_json(final_dir.metrics) if final_dir.metrics.is_file() else None
    final_curves = read_table(final_dir.curves) if final_dir.curves.is_file() else None
    overlays = [image for image in sorted(final_dir.overlays.glob("*.png"))  # embedded in report.html:
                if image.is_file() and not image.is_symlink()  # never a link to a file elsewhere
                and image.resolve().is_relative_to(final_dir.path.resolve())] if final_dir.overlays.is_dir() else []
    return Experiment(layout.path, run, space, trials, curves, final, final_curves, overlays)
