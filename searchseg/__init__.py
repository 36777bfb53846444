"""searchseg: hyperparameter search for semantic image segmentation.

The engine (data, models, losses, metrics, training) is plain PyTorch; Ray Tune and Optuna are launchers around
it. From Python::

    import searchseg

    result = searchseg.Search("arch_loss", "path/to/data", search=searchseg.SearchConfig(budget="20m")).fit()
    print(result.final.test_miou, result.experiment_dir)

The names below are the public API; each is imported on first use, so ``import searchseg`` loads neither torch
nor Ray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from searchseg import moved_modules

__version__ = "0.1.0"

moved_modules.install()

_EXPORTS = {  # public name -> module that defines it
    "Search": "searchseg.api",
    "SearchConfig": "searchseg.api",
    "ResourceConfig": "searchseg.api",
    "OutputConfig": "searchseg.api",
    "SearchResult": "searchseg.jobs.pipeline",
    "FinalMetrics": "searchseg.tracking.final_metrics",
    "train": "searchseg.api",
    "check_data": "searchseg.api",
    "load_experiment": "searchseg.report.experiment",
    "Experiment": "searchseg.report.experiment",
    "Predictor": "searchseg.prediction.predictor",
    "Prediction": "searchseg.prediction.predictor",
    "ModelCard": "searchseg.final.model_card",
    "SearchSpace": "searchseg.spaces.space",
    "load_space": "searchseg.spaces.space",
    "list_spaces": "searchseg.spaces.space",
    "TrialConfig": "searchseg.spaces.config",
    "SegmentationData": "searchseg.data.loader",
    "load_data": "searchseg.data.loader",
    "resolve_spec": "searchseg.data.spec",
    "create_model": "searchseg.training.models",
    "arch_names": "searchseg.training.models",
    "register_arch": "searchseg.training.models",
    "register_loss": "searchseg.training.losses",
    "register_optimizer": "searchseg.training.optim",
    "register_schedule": "searchseg.training.schedules",
    "register_preset": "searchseg.training.augment",
    "trust_plugins": "searchseg.training.plugins",
    "TrialStatus": "searchseg.tracking.status",
    "Direction": "searchseg.tracking.status",
    "UserError": "searchseg.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'searchseg' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load lazily above
    from searchseg.api import OutputConfig, ResourceConfig, Search, SearchConfig, check_data, train
    from searchseg.data.loader import SegmentationData, load_data
    from searchseg.data.spec import resolve_spec
    from searchseg.errors import UserError
    from searchseg.final.model_card import ModelCard
    from searchseg.jobs.pipeline import SearchResult
    from searchseg.prediction.predictor import Prediction, Predictor
    from searchseg.report.experiment import Experiment, load_experiment
    from searchseg.spaces.config import TrialConfig
    from searchseg.spaces.space import SearchSpace, list_spaces, load_space
    from searchseg.tracking.final_metrics import FinalMetrics
    from searchseg.tracking.status import Direction, TrialStatus
    from searchseg.training.augment import register_preset
    from searchseg.training.losses import register_loss
    from searchseg.training.models import arch_names, create_model, register_arch
    from searchseg.training.optim import register_optimizer
    from searchseg.training.plugins import trust_plugins
    from searchseg.training.schedules import register_schedule
