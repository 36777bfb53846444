"""The job's plain records: how to search (``SearchConfig``), on what (``ResourceConfig``), where results go
(``OutputConfig``), and everything a search is given (``SearchOptions``), grouped as Ray Tune's
``TuneConfig``/``RunConfig``. Standard library (and ``errors``) only, at the bottom: every stage may read them and
none imports the front door (``api.Search`` adds ``fit`` and ``restore`` to ``SearchOptions``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from searchseg.errors import UserError, unknown_name

if TYPE_CHECKING:
    import optuna
    from ray.tune.schedulers import TrialScheduler

    from searchseg.data.loader import SegmentationData
    from searchseg.spaces.space import SearchSpace


class _Name(str, Enum):
    """A name a user types (``--searcher random``), printed as that name."""

    def __str__(self) -> str:
        return self.value


class Searcher(_Name):
    TPE = "tpe"  # Optuna's multivariate TPE
    RANDOM = "random"  # random sampling: the baseline


class Scheduler(_Name):
    ASHA = "asha"  # asynchronous successive halving (non-dominated ranking in a Pareto search)
    NONE = "none"  # every trial runs to the end


class Tracker(_Name):
    TENSORBOARD = "tensorboard"
    WANDB = "wandb"
    MLFLOW = "mlflow"


Named = TypeVar("Named", Searcher, Scheduler, Tracker)


def named(kind: type[Named], value: object, what: str) -> Named:
    """``value`` (a name as a user types it, or the member itself) as a member of ``kind``; one line listing the
    valid names otherwise."""
    try:
        return kind(value)
    except ValueError:
        raise unknown_name(what, value, [member.value for member in kind]) from None


EXPORT_FORMATS = ("onnx", "torchscript")
BACKENDS = ("torch", "onnx")  # predict: final/model.pt through PyTorch, or final/model.onnx through ONNX Runtime
RESIZE_RULES = ("auto", "squash")  # the card's rule (tiles at the training scale), or one window per image


@dataclass
class SearchConfig:
    """How to search. ``None`` keeps the space file's value."""

    samples: int | None = None  # with a budget, a limit inside the plan (0: no search); without, the trial count
    epochs: int | None = None  # most epochs per trial: a limit inside the plan, or ASHA's budget without one
    concurrency: int | None = None
    seed: int | None = None
    searcher: str | Searcher | optuna.samplers.BaseSampler = Searcher.TPE  # a name ("tpe", "random") or a sampler
    scheduler: str | Scheduler | TrialScheduler = Scheduler.ASHA  # a name ("asha", "none") or a Tune scheduler
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
    cluster_wait: float = 600.0  # seconds to wait, with --address, for nodes that can run one trial to join


@dataclass
class OutputConfig:
    """Where the experiment goes and what is shown while it runs."""

    results_dir: Path = Path("results")
    name: str | None = None  # folder under results_dir; default: SPACE-TIMESTAMP
    storage: str | None = None  # shared by all nodes: a folder, file:// or s3:// URI (Ray's storage path)
    trackers: list[str | Tracker] = field(default_factory=list)  # tensorboard, wandb, mlflow
    verbose: int = 1  # 0: quiet, 1: a progress bar and a line per trial, 2: Ray Tune's own tables


@dataclass
class SearchOptions:
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

    def check_types(self) -> None:
        """One line naming a field given the wrong kind of object (``Search(fixed=3)``), before anything runs."""
        groups = {"fixed": dict, "search": SearchConfig, "resources": ResourceConfig, "output": OutputConfig}
        for name, kind in groups.items():
            value = getattr(self, name)
            if not isinstance(value, kind):
                raise UserError(f"{name} must be {kind.__name__}, got {type(value).__name__} {value!r:.60}")
        if not isinstance(self.resume, bool):
            raise UserError(f"resume must be True or False, got {self.resume!r:.60}")
        # names become members here, once: everything past this point compares members, not strings
        search = self.search
        if isinstance(search.searcher, str):
            search.searcher = named(Searcher, search.searcher, "searcher")
        if isinstance(search.scheduler, str):
            search.scheduler = named(Scheduler, search.scheduler, "scheduler")
        if not isinstance(self.output.trackers, (list, tuple)):
            raise UserError(f"trackers must be a list of names, got {self.output.trackers!r:.60}")
        self.output.trackers = [named(Tracker, tracker, "tracker") for tracker in self.output.trackers]
