"""The experiment folder's layout: every name a search, its trials and its final model write, in one place.

::

    EXPERIMENT/
      run.json            what was asked: settings, fixed keys, data fingerprint, plan, start time
      space.yaml          the space as searched
      trials.csv          one row per trial          curves.csv   one row per trial-epoch
      study.db            Optuna study (dashboard)   pareto.csv   the front of a Pareto search
      best_config.yaml    the chosen trial's config  report.html  the self-contained report
      best_trial_state.pt the chosen trial's weights, kept when Ray's own checkpoint is pruned
      .lock               held by the live run
      tuner.pkl, experiment_state-*.json, searcher-state-*.pkl, ...   Ray Tune's own state, for --resume
      train_segmentation_<trial>_<...>/   Ray Tune's trial folder: config.yaml, augmentation.json,
                                          checkpoint_*/ (state.pt, val_counts.npy)
      final/ (final-<trial>/ from retrain --trial)
        metrics.json model.pt config.yaml curves.csv model_card.json overlays/ model.onnx|model.ts
        checkpoint.pt     the final training after its latest epoch, until metrics.json is written

Readers and writers take these names from here, so a renamed file is one edit, and a folder is checked for
what it should hold in one place. Stdlib only: the report and ``--help`` import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from searchseg.errors import UserError

TRIAL_FUNCTION = "train_segmentation"  # Ray Tune names each trial folder after its trainable function


@dataclass(frozen=True)
class CheckpointLayout:
    """A trial checkpoint folder: the trainer's state and the recent epochs' per-image validation class counts."""

    path: Path

    @property
    def state(self) -> Path:
        return self.path / "state.pt"

    @property
    def counts(self) -> Path:  # (epochs, images, 3, C) int32: 12 bytes per image and class per epoch kept
        return self.path / "val_counts.npy"

    @property
    def confusions(self) -> Path:  # (epochs, images, C, C), written before the counts; read, converted
        return self.path / "val_confusions.npy"


@dataclass(frozen=True)
class TrialLayout:
    """One trial's own folder: Ray Tune's, or ``searchseg trial --out``'s."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def augmentation(self) -> Path:  # the albumentations pipeline it trained with
        return self.path / "augmentation.json"

    @property
    def metrics(self) -> Path:  # per-epoch rows of a local trial
        return self.path / "metrics.csv"

    @property
    def checkpoint(self) -> Path:  # a local trial's state after its latest epoch
        return self.path / "checkpoint.pt"

    @property
    def best_model(self) -> Path:  # a local trial's weights at its best validation epoch
        return self.path / "best_model.pt"

    @property
    def summary(self) -> Path:  # how a local trial ended, its costs and versions
        return self.path / "summary.json"


@dataclass(frozen=True)
class FinalLayout:
    """The final model's folder."""

    path: Path

    @property
    def metrics(self) -> Path:  # written last: its presence means the final stage is complete
        return self.path / "metrics.json"

    @property
    def model(self) -> Path:
        return self.path / "model.pt"

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def curves(self) -> Path:
        return self.path / "curves.csv"

    @property
    def card(self) -> Path:
        return self.path / "model_card.json"

    @property
    def overlays(self) -> Path:
        return self.path / "overlays"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.pt"

    def export(self, export_format: str) -> Path:
        return self.path / f"model.{'onnx' if export_format == 'onnx' else 'ts'}"

    @property
    def shared_files(self) -> tuple[Path, ...]:  # what trackers upload beside the metrics
        return self.metrics, self.card, self.curves, self.config


@dataclass(frozen=True)
class ExperimentLayout:
    """An experiment folder (``RESULTS/NAME``) and the names of everything in it."""

    path: Path

    def __post_init__(self) -> None:  # readers are called with a str from Python as well
        object.__setattr__(self, "path", Path(self.path))

    @property
    def run(self) -> Path:
        return self.path / "run.json"

    @property
    def space(self) -> Path:
        return self.path / "space.yaml"

    @property
    def trials(self) -> Path:
        return self.path / "trials.csv"

    @property
    def curves(self) -> Path:
        return self.path / "curves.csv"

    @property
    def study(self) -> Path:
        return self.path / "study.db"

    @property
    def pareto(self) -> Path:
        return self.path / "pareto.csv"

    @property
    def best_config(self) -> Path:
        return self.path / "best_config.yaml"

    @property
    def best_trial_state(self) -> Path:
        return self.path / "best_trial_state.pt"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def decoded(self) -> Path:  # the dataset decoded once, memory-mapped by every trial (data/decoded.py)
        return self.path / "decoded"

    @property
    def lock(self) -> Path:
        return self.path / ".lock"

    def require_run(self, fix: str) -> None:
        """One line ending in ``fix`` when this folder is not an experiment (it has no ``run.json``)."""
        if not self.run.is_file():
            raise UserError(f"{self.path} is not a searchseg experiment (no {self.run.name}); {fix}")

    def final(self, trial: str | None = None) -> FinalLayout:
        """``final/``, or ``final-TRIAL/`` for a trial retrained on its own (``retrain --trial``)."""
        return FinalLayout(self.path / ("final" if trial is None else f"final-{trial}"))

    def trial_folders(self, trial: str = "*") -> list[TrialLayout]:
        """Ray Tune's trial folders, all or one trial's (``trial`` is a glob-escaped id)."""
        return [TrialLayout(path) for path in sorted(self.path.glob(f"{TRIAL_FUNCTION}_{trial}_*")) if path.is_dir()]
