"""The flat module paths of searchseg 0.1, kept importable after the package was laid out by stage.

Experiments saved before the move hold these paths in their pickled Ray Tune state (``searchseg.space.
SpaceSampler``, ``searchseg.results_writer.ResultsWriter``, ...), and plugins and notebooks import
``searchseg.models.register_arch``: both must keep working. An old path is the same module object as the new one,
so a registry filled through either is the same registry.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

REMOVED_IN = "0.3"  # old paths warn until then; a Ray state pickled before it still resumes

MOVED = {  # old path -> where the module lives now
    "searchseg.datacheck": "searchseg.jobs.datacheck",
    "searchseg.preflight": "searchseg.jobs.preflight",
    "searchseg.space": "searchseg.spaces.space",
    "searchseg.config": "searchseg.spaces.config",
    "searchseg.engine": "searchseg.training.engine",
    "searchseg.models": "searchseg.training.models",
    "searchseg.classic": "searchseg.training.classic",
    "searchseg.losses": "searchseg.training.losses",
    "searchseg.optim": "searchseg.training.optim",
    "searchseg.schedules": "searchseg.training.schedules",
    "searchseg.augment": "searchseg.training.augment",
    "searchseg.metrics": "searchseg.training.metrics",
    "searchseg.checkpoints": "searchseg.training.checkpoints",
    "searchseg.costs": "searchseg.training.costs",
    "searchseg.registry": "searchseg.training.registry",
    "searchseg.plugins": "searchseg.training.plugins",
    "searchseg.local_trial": "searchseg.training.local_trial",
    "searchseg.search": "searchseg.tuning.search",
    "searchseg.trainable": "searchseg.tuning.trainable",
    "searchseg.progress": "searchseg.tuning.progress",
    "searchseg.locking": "searchseg.tuning.locking",
    "searchseg.budget": "searchseg.tuning.budget",
    "searchseg.timing": "searchseg.tuning.timing",
    "searchseg.results": "searchseg.tracking.files",
    "searchseg.results_writer": "searchseg.tracking.writer",
    "searchseg.status": "searchseg.tracking.status",
    "searchseg.pareto": "searchseg.tracking.pareto",
    "searchseg.trackers": "searchseg.tracking.trackers",
    "searchseg.finalize": "searchseg.final.finalize",
    "searchseg.selection": "searchseg.tuning.selection",
    "searchseg.evaluate": "searchseg.final.evaluate",
    "searchseg.final_metrics": "searchseg.tracking.final_metrics",
    "searchseg.model_card": "searchseg.final.model_card",
    "searchseg.inference": "searchseg.prediction.predictor",
    "searchseg.batch_predict": "searchseg.prediction.batch",
    # moved when the stages were layered (import-linter contracts in pyproject.toml)
    "searchseg.pipeline": "searchseg.jobs.pipeline",
    "searchseg.data.datacheck": "searchseg.jobs.datacheck",
    "searchseg.data.preflight": "searchseg.jobs.preflight",
    "searchseg.final.selection": "searchseg.tuning.selection",
    "searchseg.final.final_metrics": "searchseg.tracking.final_metrics",
    "searchseg.report.optuna_study": "searchseg.tracking.optuna_study",
    "searchseg.tracking.provenance": "searchseg.provenance",
}


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old path with the module at its new path (imported once, under its new name)."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec) -> ModuleType:
        warnings.warn(f"{spec.name} moved to {MOVED[spec.name]}; the old path goes in searchseg {REMOVED_IN}",
                      DeprecationWarning, stacklevel=2)
        module = importlib.import_module(MOVED[spec.name])
        spec.loader_state = module.__spec__  # the import system stamps the old path's spec on the module next
        return module

    def exec_module(self, module: ModuleType) -> None:
        stamped = module.__spec__
        assert stamped is not None
        module.__spec__ = stamped.loader_state


def install() -> None:
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
