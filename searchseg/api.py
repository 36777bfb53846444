"""The Python API: a search, one training run and a data check, called with objects or paths.

``Search(space, data).fit()`` is what ``python -m searchseg.run`` does; ``Search.restore(folder).fit()`` continues
an interrupted one. Settings are grouped by concern, as Ray Tune's ``TuneConfig``/``RunConfig``: how to search
(``SearchConfig``), on what (``ResourceConfig``), and where results go (``OutputConfig``). Nothing here changes
process-wide state for longer than the call (logging levels and the environment Ray Tune reads are restored);
the CLI modules are the ones that set them for good. Heavy libraries are imported when a call needs them, so
``import searchseg`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from searchseg.errors import UserError

if TYPE_CHECKING:
    import optuna
    from ray.tune.schedulers import TrialScheduler

    from searchseg.data.datacheck import CheckOutcome
    from searchseg.data.loader import SegmentationData
    from searchseg.final.final_metrics import FinalMetrics
    from searchseg.spaces.config import TrialConfig
    from searchseg.spaces.space import SearchSpace
    from searchseg.training.local_trial import LocalTrialResult
    from searchseg.tuning.search import SearchOutcome


@dataclass
class SearchConfig:
    """How to search. ``None`` keeps the space file's value."""

    samples: int | None = None  # with a budget, a limit inside the plan (0: no search); without, the trial count
    epochs: int | None = None  # most epochs per trial: a limit inside the plan, or ASHA's budget without one
    concurrency: int | None = None
    seed: int | None = None
    searcher: str | optuna.samplers.BaseSampler = "tpe"  # "tpe", "random" (the baseline), or any Optuna sampler
    scheduler: str | TrialScheduler = "asha"  # "asha", "none" (every trial runs to the end), or a Tune scheduler
    budget: float | str | None = None  # wall-clock time of the whole job: seconds or "300s", "20m", "2h"; None:
    # 150 s (tuning.budget.DEFAULT_BUDGET_SECONDS) unless samples/epochs size the search by hand
    smoke: bool = False  # 2 trials x 2 epochs at 64 px, to check a set-up
    objectives: str | None = None  # "val_miou:max,latency_ms:min": the metric, then costs to minimise (a Pareto search)
    max_latency_ms: float | None = None  # configurations slower than this per image are not trained
    warm_start: str | Path | None = None  # an earlier experiment folder: its trials seed the searcher


@dataclass
class ResourceConfig:
    """What every trial gets, and where the trials run."""

    cpus_per_trial: float | None = None  # default: 1 on machines with <= 4 CPUs, else 2
    gpus_per_trial: float | None = None  # fractions pack trials on a GPU; default: 1 if there is one
    address: str | None = None  # a running Ray cluster ("auto", "ray://HEAD:10001"); default: start one here
    max_failures: int = 2  # retries of a crashed trial from its checkpoint
    dashboard: bool = False  # start Ray's dashboard with a local cluster (the "dashboard" extra)


@dataclass
class OutputConfig:
    """Where the experiment goes and what is shown while it runs."""

    results_dir: Path = Path("results")
    name: str | None = None  # folder under results_dir; default: SPACE-TIMESTAMP
    storage: str | None = None  # shared by all nodes: a folder, file:// or s3:// URI (Ray's storage path)
    trackers: list[str] = field(default_factory=list)  # tensorboard, wandb, mlflow
    verbose: int = 1  # 0: quiet, 1: a progress bar and a line per trial, 2: Ray Tune's own tables


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
        from searchseg.report.experiment import load_experiment

        return load_experiment(self.experiment_dir)


@dataclass
class Search:
    """A hyperparameter search over ``space`` on ``data``; ``fit()`` runs it, the final model and the report.

    Args:
        space: a bundled space's name, a space YAML path, a mapping with the file's keys (``search``, ``fixed``,
            ``params``, ``start``) or a ``SearchSpace``.
        data: a dataset folder, CSV manifest or dataset YAML, or an already decoded ``SegmentationData``
            (whose working size and channels then hold for every trial); default: the built-in demo.
        class_map: class map JSON/YAML for a path ``data``.
        fixed: config keys fixed in every trial (``{"image_size": 256}``); a key the space searches is refused.
        resume: continue the experiment ``output.name`` (``Search.restore`` sets it).
    """

    space: str | Path | dict[str, Any] | SearchSpace = "arch_loss"
    data: str | Path | SegmentationData | None = None
    class_map: str | Path | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    search: SearchConfig = field(default_factory=SearchConfig)
    resources: ResourceConfig = field(default_factory=ResourceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    resume: bool = False

    def fit(self, retrain: bool = True, retrain_seeds: int = 1, export: str | None = None, echo=print,
            started_at: float | None = None) -> SearchResult:
        """Search (or resume), then train the final model and evaluate it on the test split (unless
        ``retrain=False``), and write the report and the Optuna study. ``started_at`` (wall-clock seconds)
        is when a ``budget`` starts counting; default now."""
        from searchseg.pipeline import run_pipeline

        return run_pipeline(self, retrain=retrain, retrain_seeds=retrain_seeds, export=export, echo=echo,
                            started_at=started_at)

    @classmethod
    def restore(cls, path: str | Path, data: SegmentationData | None = None, **output: Any) -> Search:
        """The search in experiment folder ``path``, to continue with ``fit()``. Pass ``data`` if the search was
        given decoded data; ``output`` changes output settings (``verbose``, ``trackers``)."""
        from searchseg.tracking.files import RUN_FILE, read_run

        folder = Path(path).expanduser().resolve()
        if not (folder / RUN_FILE).is_file():
            raise UserError(f"{folder} is not a searchseg experiment (no {RUN_FILE}); pass its folder")
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
    from searchseg.data.datacheck import CheckOptions, run_data_check

    return run_data_check(CheckOptions(data=str(data), class_map=None if class_map is None else str(class_map),
                                       image_size=image_size, progress=progress,
                                       preflight_space=None if preflight_space is None else str(preflight_space)))
