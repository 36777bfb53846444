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

__version__ = "0.1.0"

_EXPORTS = {  # public name -> module that defines it
    "Search": "searchseg.api",
    "SearchConfig": "searchseg.api",
    "ResourceConfig": "searchseg.api",
    "OutputConfig": "searchseg.api",
    "SearchResult": "searchseg.api",
    "FinalMetrics": "searchseg.final_metrics",
    "train": "searchseg.api",
    "check_data": "searchseg.api",
    "load_experiment": "searchseg.report.experiment",
    "Experiment": "searchseg.report.experiment",
    "Predictor": "searchseg.inference",
    "Prediction": "searchseg.inference",
    "ModelCard": "searchseg.model_card",
    "SearchSpace": "searchseg.space",
    "load_space": "searchseg.space",
    "list_spaces": "searchseg.space",
    "TrialConfig": "searchseg.config",
    "SegmentationData": "searchseg.data.loader",
    "load_data": "searchseg.data.loader",
    "resolve_spec": "searchseg.data.spec",
    "create_model": "searchseg.models",
    "arch_names": "searchseg.models",
    "register_arch": "searchseg.models",
    "register_loss": "searchseg.losses",
    "register_optimizer": "searchseg.optim",
    "register_schedule": "searchseg.schedules",
    "register_preset": "searchseg.augment",
    "TrialStatus": "searchseg.status",
    "Direction": "searchseg.status",
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
    from searchseg.api import OutputConfig, ResourceConfig, Search, SearchConfig, SearchResult, check_data, train
    from searchseg.augment import register_preset
    from searchseg.config import TrialConfig
    from searchseg.data.loader import SegmentationData, load_data
    from searchseg.data.spec import resolve_spec
    from searchseg.errors import UserError
    from searchseg.final_metrics import FinalMetrics
    from searchseg.inference import Prediction, Predictor
    from searchseg.losses import register_loss
    from searchseg.model_card import ModelCard
    from searchseg.models import arch_names, create_model, register_arch
    from searchseg.optim import register_optimizer
    from searchseg.report.experiment import Experiment, load_experiment
    from searchseg.schedules import register_schedule
    from searchseg.space import SearchSpace, list_spaces, load_space
    from searchseg.status import Direction, TrialStatus
