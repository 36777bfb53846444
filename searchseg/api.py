"""The Python API: a search, one training run and a data check, called with objects or paths.

``Search(space, data).fit()`` is what ``python -m searchseg.run`` does; ``Search.restore(folder).fit()`` continues
an interrupted one. Settings are grouped by concern, as Ray Tune's ``TuneConfig``/``RunConfig``: how to search
(``SearchConfig``), on what (``ResourceConfig``), and where results go (``OutputConfig``). Nothing here changes
process-wide state for longer than the call (logging levels and the environment Ray Tune reads are restored);
the CLI modules are the ones that set them for good. Heavy libraries are imported when a call needs them, so
``import searchseg`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from searchseg.layout import ExperimentLayout
from searchseg.options import OutputConfig, ResourceConfig, SearchConfig, SearchOptions

__all__ = ["OutputConfig", "ResourceConfig", "Search", "SearchConfig", "check_data", "train"]

if TYPE_CHECKING:
    from searchseg.data.loader import SegmentationData
    from searchseg.jobs.datacheck import CheckOutcome
    from searchseg.jobs.pipeline import SearchResult
    from searchseg.spaces.config import TrialConfig
    from searchseg.training.local_trial import LocalTrialResult


class Search(SearchOptions):
    """A hyperparameter search over ``space`` on ``data``; ``fit()`` runs it, the final model and the report
    (the arguments: ``options.SearchOptions``)."""

    def fit(self, retrain: bool = True, retrain_seeds: int = 1, export: str | None = None, echo=print,
            started_at: float | None = None) -> SearchResult:
        """Search (or resume), then train the final model and evaluate it on the test split (unless
        ``retrain=False``), and write the report and the Optuna study. ``started_at`` (wall-clock seconds)
        is when a ``budget`` starts counting; default now."""
        from searchseg.jobs.pipeline import run_pipeline

        return run_pipeline(self, retrain=retrain, retrain_seeds=retrain_seeds, export=export, echo=echo,
                            started_at=started_at)

    @classmethod
    def restore(cls, path: str | Path, data: SegmentationData | None = None, **output: Any) -> Search:
        """The search in experiment folder ``path``, to continue with ``fit()``. Pass ``data`` if the search was
        given decoded data; ``output`` changes output settings (``verbose``, ``trackers``)."""
        from searchseg.tracking.files import read_run

        folder = Path(path).expanduser().resolve()
        ExperimentLayout(folder).require_run("pass its folder")
        storage = read_run(folder).get("storage")
        return cls(data=data, resume=True, output=OutputConfig(
            **{"results_dir": folder.parent, "storage": storage, **output, "name": folder.name}))


def train(config: TrialConfig | dict[str, Any], trial_dir: str | Path, data: SegmentationData | None = None,
          resume: bool = False, progress: bool = True, echo=print) -> LocalTrialResult:
    """Train one configuration without Ray (``python -m searchseg.trial``), its files kept in ``trial_dir``.

    ``config`` is a ``TrialConfig`` or its flat keys (``{"arch": "fpn", "loss.dice": 0.5}``); ``data`` is
    decoded from the config's ``data`` when not given.
    """
    from searchseg.spaces.config import TrialConfig
    from searchseg.training.local_trial import run_local_trial

    config = config if isinstance(config, TrialConfig) else TrialConfig.from_flat(config)
    return run_local_trial(config, Path(trial_dir), resume=resume, progress=progress, echo=echo, data=data)


def check_data(data: str | Path, class_map: str | Path | None = None, image_size: int = 256,
               preflight_space: str | Path | None = None, progress: bool = True) -> CheckOutcome:
    """Check a dataset (``python -m searchseg.check``): ``.report.errors``/``.warnings`` list what is wrong,
    ``.report.stats`` what was measured; with a space, ``.preflight`` measures its representative model."""
    from searchseg.jobs.datacheck import CheckOptions, run_data_check

    return run_data_check(CheckOptions(data=str(data), class_map=None if class_map is None else str(class_map),
                                       image_size=image_size, progress=progress,
                                       preflight_space=None if preflight_space is None else str(preflight_space)))
