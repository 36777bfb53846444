"""The job's plain records: how to search (``SearchConfig``), on what (``ResourceConfig``), where results go
(``OutputConfig``), and everything a search is given (``SearchOptions``), grouped as Ray Tune's
``TuneConfig``/``RunConfig``. Standard library (and ``errors``) only, at the bottom: every stage may read them and
none imports the front door (``api.Search`` adds ``fit`` and ``restore`` to ``SearchOptions``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
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

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")
# What a run without --budget gets: the built-in demo's search and final model in about as long as its earlier
# fixed-count search took (168 s); on a user's own data it is a first look, and the plan printed first says so.
DEFAULT_BUDGET_SECONDS = 150.0
MAX_BUDGET_SECONDS = 30 * 24 * 3600.0  # a month: past it a typo, not a plan


def parse_duration(text: str, flag: str = "--budget") -> float:
    """Seconds in ``300``, ``300s``, ``20m``, ``2h`` or ``1h30m``; errors name ``flag``."""
    cleaned = str(text).strip().lower().replace(" ", "")
    shown = repr(text) if len(str(text)) <= 40 else f"{str(text)[:20]!r}... ({len(str(text))} characters)"
    match = _DURATION.match(cleaned)
    if not cleaned or not match or not any(match.groups()):
        raise UserError(f"{flag} {shown} is not a duration; write e.g. 300, 300s, 20m, 2h or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise UserError(f"{flag} {shown} must be longer than 0 seconds")
    if not total <= MAX_BUDGET_SECONDS:
        raise UserError(f"{flag} {shown} is longer than 30 days; write e.g. 20m, 2h or 48h")
    return total


def budget_in_seconds(value: str | float) -> float:
    """A budget given as a duration text (``parse_duration``) or as seconds, checked the same way."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_BUDGET_SECONDS:
        raise UserError(f"budget {value!r} must be a duration above 0 s and at most 30 days, e.g. 300, '20m' or '2h'")
    return float(value)


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class Flag:
    """How a record's field is typed on ``run``'s command line (``option_flags`` makes the flags from it).

    ``name`` defaults to ``--FIELD-NAME``; ``parse`` turns the text into the value (a ``_Name`` enum gives the
    choices); ``many`` takes several values. ``sets`` instead makes one switch per entry, each setting the field
    to a value: ``{"--quiet": (0, "no progress output")}``.
    """

    help: str = ""
    name: str | None = None
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    many: bool = False
    sets: dict[str, tuple[Any, str]] = field(default_factory=dict)

    @property
    def names(self) -> type[Enum] | None:
        """The enum whose values are the flag's choices, when ``parse`` is one."""
        return self.parse if isinstance(self.parse, type) and issubclass(self.parse, Enum) else None


def option(default: Any = None, flag: Flag | None = None, *, factory: Callable[[], Any] | None = None) -> Any:
    """A record's field and its ``run`` flag, described in one place."""
    metadata = {"flag": flag} if flag else {}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _cluster_wait(text: str) -> float:
    return parse_duration(text, "--cluster-wait")


@dataclass
class SearchConfig:
    """How to search. ``None`` keeps the space file's value."""

    # wall-clock time of the whole job: seconds or "300s", "20m", "2h"; None: DEFAULT_BUDGET_SECONDS unless
    # samples/epochs size the search by hand
    budget: float | str | None = option(None, Flag(
        "wall-clock time for the whole job (300, 300s, 20m, 2h): data check, search, final model, evaluation and "
        "report end within it. The plan (trials, fidelity in optimizer steps, final-training share) is computed "
        f"from measured step times and printed first (default: {format_duration(DEFAULT_BUDGET_SECONDS)}, a first "
        "look; give your own data 20m or more)", parse=parse_duration, metavar="DURATION"))
    # with a budget, a limit inside the plan (0: no search); without, the trial count
    samples: int | None = option(None, Flag(
        "with --budget: at most this many trials in the plan (0: no search, the space's first start configuration "
        "trained for the whole budget); without --budget: a search sized by hand, this many trials, the best "
        "retrained from scratch", parse=int))
    # most epochs per trial: a limit inside the plan, or ASHA's budget without one
    epochs: int | None = option(None, Flag(
        "with --budget: at most this many of the plan's epochs per trial; without --budget: a search sized by "
        "hand, the ASHA budget per trial (default: the space's)", parse=int))
    concurrency: int | None = option(None, Flag("most trials at once (default: as resources allow)", parse=int))
    seed: int | None = option(None, Flag("seed of the sampler (default: the space's)", parse=int))
    # a name ("tpe", "random") or an Optuna sampler
    searcher: str | Searcher | optuna.samplers.BaseSampler = option(Searcher.TPE, Flag(
        "Optuna TPE (default), or random sampling as a baseline", parse=Searcher))
    # a name ("asha", "none") or a Tune scheduler
    scheduler: str | Scheduler | TrialScheduler = option(Scheduler.ASHA, Flag(sets={
        "--no-early-stopping": (Scheduler.NONE, "run every trial to the full epoch budget (no ASHA)")}))
    smoke: bool = option(False, Flag(sets={
        "--smoke": (True, "tiny run to check the set-up: 2 trials, 2 epochs, 64px")}))
    # "val_miou:max,latency_ms:min": the metric, then costs to minimise (a Pareto search)
    objectives: str | None = option(None, Flag(
        "a Pareto search: the metric, then costs to minimise (latency_ms, batch_latency_ms, params_m, gmacs), e.g. "
        "val_miou:max,latency_ms:min; early stopping then promotes by non-dominated sorting (default: the space's "
        "metric alone)", metavar="METRIC:DIR,COST[:min]..."))
    max_latency_ms: float | None = option(None, Flag(
        "train no configuration slower than MS milliseconds per image (batch 1, measured in the trial on its "
        "resources before its first epoch); the searcher learns to avoid them", parse=float, metavar="MS"))
    warm_start: str | Path | None = option(None, Flag(
        "an earlier experiment folder (results/NAME) on the same or similar data: its trials are told to the "
        "searcher first and its best configuration trains first", metavar="EXPERIMENT"))


@dataclass
class ResourceConfig:
    """What every trial gets, and where the trials run."""

    cpus_per_trial: float | None = option(None, Flag("CPUs per trial (default: 1 on <=4 CPUs, else 2)", parse=float))
    gpus_per_trial: float | None = option(None, Flag(
        "GPUs per trial, fractions allowed: 0.25 packs 4 trials on a GPU (default: 1 if any)", parse=float))
    address: str | None = option(None, Flag("join a running Ray cluster, e.g. auto or ray://HEAD:10001"))
    max_failures: int = option(2, Flag("retries of a crashed trial from its checkpoint (default: 2)", parse=int))
    dashboard: bool = option(False, Flag(sets={"--dashboard": (
        True, "start Ray's dashboard with the local cluster and print its URL (pip install 'searchseg[dashboard]')")}))
    # seconds to wait, with --address, for nodes that can run one trial to join
    cluster_wait: float = option(600.0, Flag(
        "with --address: how long to wait for nodes that can run one trial (an autoscaling cluster starts its "
        "workers on demand; Ray's autoscaler is asked for them) (default: 10m)", parse=_cluster_wait,
        metavar="DURATION"))


@dataclass
class OutputConfig:
    """Where the experiment goes and what is shown while it runs."""

    results_dir: Path = option(Path("results"), Flag("parent folder of experiments (default: results)",
                                                     name="--results", parse=Path))
    name: str | None = option(None, Flag("experiment name: results/NAME (default: SPACE-TIMESTAMP)"))
    storage: str | None = option(None, Flag("results location shared by all nodes: a folder, file:// or s3:// URI"))
    trackers: list[str | Tracker] = option(factory=list, flag=Flag(
        "also log to these trackers through Ray Tune (TensorBoard files are always written; W&B runs offline "
        "without an API key; MLflow logs to EXPERIMENT/mlflow.db)", name="--tracker", parse=Tracker, many=True))
    # 0: quiet, 1: a progress bar and a line per trial, 2: Ray Tune's own tables
    verbose: int = option(1, Flag(sets={"--quiet": (0, "no progress output"),
                                        "--verbose": (2, "Ray Tune's own status tables instead of the bar")}))


@dataclass
class SearchOptions:
    """A hyperparameter search over ``space`` on ``data``; ``fit()`` runs it, the final model and the report.

    Args:
        space: a bundled space's name, a space YAML path, a mapping with the file's keys (``search``, ``fixed``,
            ``params``, ``start``) or a ``SearchSpace``.
        data: a dataset folder, CSV manifest or dataset YAML, or an already decoded ``SegmentationData``
            (whose working size and channels then hold for every trial); default: the built-in demo.
        class_map: class map JSON/YAML/CSV for a path ``data``.
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
