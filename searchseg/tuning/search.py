"""The search: Ray Tune's Tuner with Optuna's TPE (define-by-run over a space) and ASHA.

``run_search(search)`` (a ``searchseg.Search``) decodes the dataset once unless given decoded data, starts or
joins Ray, runs (or resumes) the experiment in ``results/NAME/`` (or the storage), keeps
``trials.csv``/``curves.csv`` current and writes ``best_config.yaml``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import optuna
import ray
from ray import tune
from ray.autoscaler.sdk import request_resources
from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint  # what Tune restores from
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from searchseg.data import load_from_config
from searchseg.data.loader import SegmentationData
from searchseg.errors import Interrupted, UserError, signal_handlers_kept
from searchseg.io_utils import atomic_write, atomic_write_text, folder_name, writable_folder
from searchseg.layout import CheckpointLayout, ExperimentLayout
from searchseg.machine import available_cpus
from searchseg.options import (
    DEFAULT_BUDGET_SECONDS,
    ResourceConfig,
    Scheduler,
    Searcher,
    SearchOptions,
    budget_in_seconds,
    format_duration,
)
from searchseg.provenance import run_metadata
from searchseg.scoped import environment_defaults, optuna_warnings_only
from searchseg.spaces.config import LOSS_PREFIX, TrialConfig, is_loss_weight, loss_weight
from searchseg.spaces.space import (
    SearchSettings,
    SearchSpace,
    SpaceSampler,
    as_space,
    load_space,
    merged_config,
    parse_objectives,
    trial_config_from_tune,
)
from searchseg.tracking.files import load_trials, read_run
from searchseg.tracking.optuna_study import StudyWriter
from searchseg.tracking.search_gain import search_gain
from searchseg.tracking.status import FAILURE_KEY, Direction, TrialStatus
from searchseg.tracking.trackers import tracker_callbacks
from searchseg.tracking.writer import ResultsWriter
from searchseg.training.class_counts import CLEARLY_BETTER_WIN_RATE, MIN_INDEPENDENT_GROUPS
from searchseg.training.engine import validate_config
from searchseg.training.losses import check_loss_names
from searchseg.training.models import check_image_size
from searchseg.training.plugins import load_plugins, trust_plugins
from searchseg.tuning.budget import BudgetPlan, Costs, plan_budget
from searchseg.tuning.locking import lock_experiment
from searchseg.tuning.on_worker import on_trial_node
from searchseg.tuning.pareto_search import ObjectiveSearch, ParetoASHA
from searchseg.tuning.progress import SearchProgress
from searchseg.tuning.selection import RECENT_EPOCHS, Candidate, TrialChoice, choose_trial, recent_counts
from searchseg.tuning.timing import model_step_seconds, time_steps
from searchseg.tuning.trainable import train_segmentation
from searchseg.tuning.warm_start import WarmTrial, earlier_trials

# Decoded once per search, so a trial cannot choose them.
DATA_KEYS = ("data", "class_map", "mask_suffix", "group_by", "image_size", "in_channels", "val_fraction",
             "test_fraction", "split_seed")
SMOKE = {"samples": 2, "epochs": 2, "grace_period": 1, "image_size": 64}
_EMPTY_SPLIT = ("the {split} split is empty ({key}=0), but a planned run chooses its trial on the validation split and "
                "scores its final model on the test split; set {key} above 0 (e.g. 0.15)")


@dataclass
class SearchOutcome:
    experiment_dir: Path
    best_config: TrialConfig
    best_value: float
    trials_csv: Path
    data: SegmentationData
    started_at: float  # the budget's clock: a resumed run's is moved back by what was used before
    best_state: Path | None = None  # the best trial's latest checkpoint state
    plan: BudgetPlan | None = None
    selection: TrialChoice | None = None  # how a budgeted search chose the trial to continue
    # joined to a cluster: a trial's resources, with which the final stage runs on a worker (``on_trial_node``);
    # None: in this process
    worker_resources: dict | None = None
    workers_share_folder: bool = True  # the experiment's folder is --storage (not an s3:// URI): workers write to it


def experiment_location(options: SearchOptions, name: str) -> tuple[Path, str]:
    """(folder for searchseg's own files, Ray storage path). Both are the same folder unless the
    storage is a remote URI (s3://, gs://), where Ray keeps its state and our tables stay local."""
    folder_name(name)
    output = options.output
    if output.storage is None:
        root = Path(output.results_dir).expanduser().resolve()
        return root / name, str(root)
    parsed = urlparse(output.storage)
    if parsed.scheme in ("", "file"):
        root = Path(parsed.path if parsed.scheme else output.storage).expanduser().resolve()
        return root / name, str(root)
    return Path(output.results_dir).expanduser().resolve() / name, output.storage


def budget_seconds(options: SearchOptions) -> float | None:
    """The job's wall-clock budget: the one given, else ``DEFAULT_BUDGET_SECONDS``, unless the search is sized by
    hand (``--smoke``) or is a Pareto search (objectives or a latency limit), which the plan does not cover."""
    given = options.search
    if given.budget is not None:
        return budget_in_seconds(given.budget)
    return DEFAULT_BUDGET_SECONDS if planned(options) else None


def planned(options: SearchOptions) -> bool:
    """Whether the job is planned from measured costs: always, unless ``--smoke``, a Pareto search, or
    ``--samples``/``--epochs`` without ``--budget`` (a search sized by hand, retrained from scratch)."""
    given = options.search
    if given.budget is not None:
        return True
    return not (given.smoke or given.objectives is not None or given.max_latency_ms is not None
                or given.samples is not None or given.epochs is not None)


def _check_options(options: SearchOptions) -> None:
    """What can be refused before anything is loaded or started."""
    given = options.resources
    if given.cpus_per_trial is not None and not given.cpus_per_trial > 0:
        raise UserError(f"--cpus-per-trial {given.cpus_per_trial:g} must be more than 0")
    if given.gpus_per_trial is not None and not given.gpus_per_trial >= 0:
        raise UserError(f"--gpus-per-trial {given.gpus_per_trial:g} must be 0 or more")
    if given.max_failures < 0:
        raise UserError(f"--max-failures {given.max_failures} must be 0 or more")
    if isinstance(given.cluster_wait, bool) or not isinstance(given.cluster_wait, (int, float)) \
            or not given.cluster_wait >= 0:
        raise UserError(f"cluster_wait {given.cluster_wait!r} must be seconds, 0 or more")
    if given.dashboard and not given.address:
        check_dashboard_installed()


def _settings_with_options(space: SearchSpace, options: SearchOptions) -> None:
    s, given = space.settings, options.search
    budgeted = given.budget is not None
    if budgeted and given.smoke:
        raise UserError("--smoke is a fixed tiny run (2 trials, 2 epochs, 64 px); drop --budget or --smoke")
    for key in ("samples", "epochs"):  # with a budget they are limits inside the plan (_plan reads them)
        value = getattr(given, key)
        if budgeted and value is not None and (not isinstance(value, int) or value < (0 if key == "samples" else 1)):
            raise UserError(f"--{key} {value!r} must be a whole number of at least {0 if key == 'samples' else 1}")
    if not budgeted and given.samples == 0:
        raise UserError("--samples 0 trains the space's first start configuration with a whole budget: give "
                        "--budget too (e.g. --budget 10m --samples 0)")
    if given.smoke:
        s.samples, s.epochs, s.grace_period = SMOKE["samples"], SMOKE["epochs"], SMOKE["grace_period"]
    for key in ("concurrency", "seed", "max_latency_ms", *(() if budgeted else ("samples", "epochs"))):
        if getattr(given, key) is not None:
            setattr(s, key, getattr(given, key))
    if given.objectives is not None:
        s.metric, s.mode, s.objectives = parse_objectives(given.objectives)
    if given.budget is not None and (s.objectives or s.max_latency_ms is not None):
        raise UserError("--budget chooses the final model by the metric alone; with objectives or --max-latency-ms "
                        "give --samples/--epochs instead")
    s.grace_period = min(s.grace_period, s.epochs)
    s.validate(f"search space {space.source}")


def fixed_config(space: SearchSpace, options: SearchOptions) -> dict:
    searched_data_keys = [k for k in space.params if k in DATA_KEYS]
    if searched_data_keys:
        raise UserError(f"search space {space.source}: {searched_data_keys} cannot be searched (the data is decoded "
                        "once per search); move them under 'fixed'")
    searched = sorted(key for key in options.fixed if key in space.params)
    if searched:
        raise UserError(f"--set {', '.join(searched)}: searched by space {space.name}, so a value given here "
                        "would be ignored; remove it from the space's params (or put it under 'fixed') in a copy "
                        "of the space file, or drop it from --set")
    if "epochs" in space.fixed:
        raise UserError(f"search space {space.source}: fixed.epochs: a trial's length is a search setting; move it "
                        "to search.epochs")
    if "epochs" in options.fixed:
        raise UserError("--set epochs: a trial's length is a search setting; use --epochs N (or search.epochs in "
                        "the space file)")
    if planned(options) and "epoch_steps" in options.fixed:
        raise UserError("--set epoch_steps: a planned run (--budget, or no --samples/--epochs) sets the epoch length "
                        "from measured step costs; drop it, or size the search with --samples/--epochs")
    if planned(options):  # refused before anything is decoded: the plan needs both splits
        for key in ("val_fraction", "test_fraction"):
            value = options.fixed.get(key, space.fixed.get(key))
            if value is not None and float(value) == 0:
                raise UserError(_EMPTY_SPLIT.format(split=key.partition("_")[0], key=key))
    fixed = {**space.fixed, **options.fixed, "epochs": space.settings.epochs}
    settings = space.settings
    if fixed.get("cost_runs") == 0 and ({"latency_ms", "batch_latency_ms"} & set(settings.objectives)
                                        or settings.max_latency_ms is not None):
        raise UserError("cost_runs 0 skips the latency timing that the objectives or --max-latency-ms need; "
                        "drop cost_runs from --set or the space")
    if options.search.smoke and "input_size" not in space.params:  # sizes a space searches stay decodable
        fixed["image_size"] = SMOKE["image_size"]
    if isinstance(options.data, SegmentationData):
        fixed.update(_decoded_data_keys(options.data, fixed, options.class_map))
    else:
        for key, value in (("data", options.data), ("class_map", options.class_map)):
            if value is not None and not isinstance(value, (str, os.PathLike)):
                kinds = "a path or decoded SegmentationData" if key == "data" else "a path"
                raise UserError(f"{key} must be {kinds}, got {type(value).__name__} {value!r}")
            if value is not None:
                fixed[key] = str(Path(value).expanduser().resolve())
    base = data_config(fixed)
    # names given with --set or under 'fixed' are checked here, not in every trial after Ray has started
    validate_config(data_config({**fixed, **first_configuration(space)}))
    fixed_losses = {key[len(LOSS_PREFIX):]: weight for key, weight in fixed.items() if is_loss_weight(key)}
    check_loss_names(fixed_losses)
    for loss, weight in fixed_losses.items():  # data_config leaves the loss weights to each trial's sample
        loss_weight(loss, weight)
    sizes = space.choices("input_size", base.input_size)
    if max(sizes) > base.image_size:
        raise UserError(f"search space {space.source}: input_size {max(sizes)} is larger than image_size "
                        f"{base.image_size}, the size the data is decoded at; raise image_size or drop that size")
    for arch in space.choices("arch", base.arch):
        for size in sizes:
            check_image_size(arch, size or base.image_size)
    return fixed


def _decoded_data_keys(data: SegmentationData, fixed: dict, class_map) -> dict:
    """The config keys decoded data stands for: its source, the working size and channels it has, and how
    ``load_data`` decoded and split it, so a trial's saved config decodes the same data again."""
    if class_map is not None:
        raise UserError("class_map applies to data given as a path; decoded data already holds its classes")
    _, height, width, channels = data.images.shape
    if height != width:
        raise UserError(f"decoded data {data.source} is {height}x{width}; trials train on square images "
                        "(decode it with load_data at one image_size)")
    keys = {"data": data.source, "image_size": height, "in_channels": channels, **data.decoded_with}
    clashes = [f"{key}={fixed[key]}" for key, value in keys.items() if key in fixed and fixed[key] != value
               and key != "data"]
    if clashes:
        raise UserError(f"fixed {', '.join(clashes)} differs from how the data was decoded "
                        f"({', '.join(f'{k}={v}' for k, v in keys.items() if k != 'data')}); drop it or decode "
                        "the data again")
    return keys


def data_config(fixed: dict) -> TrialConfig:
    """The fixed keys as a config for decoding the data; loss weights are left to each trial's sample."""
    return TrialConfig.from_flat({k: v for k, v in fixed.items() if not is_loss_weight(k)})


TUNE_ENVIRONMENT = {
    # Tune's legacy reporter: silent unless --verbose asks for its status tables (the new one printed a
    # configuration box and a TensorBoard hint into Ray's temp folder however quiet the run was)
    "RAY_AIR_NEW_OUTPUT": "0",
    # One checkpoint kept per trial forces a snapshot per epoch; that is intended, not a bottleneck here.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    # Ray Tune saves the experiment's state (trials, searcher) every 10 s by default: a driver killed in between
    # loses the trials started since, which a resume then runs again from scratch. A second bounds that loss.
    "TUNE_GLOBAL_CHECKPOINT_S": "1",
}


def _start_ray(options: SearchOptions, echo=print) -> None:
    """Join the cluster at ``resources.address``, or start a local one (left running, as Ray Tune leaves it), with
    Ray's dashboard when asked; say where the dashboard is and how ``ray status`` reaches a local cluster."""
    if ray.is_initialized():
        return
    with signal_handlers_kept():  # ray.init replaces the SIGTERM handler with one that exits wherever we are
        _init_ray(options, echo)


def _init_ray(options: SearchOptions, echo) -> None:
    if options.resources.address:
        try:
            ray.init(address=options.resources.address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise UserError(f"cannot join the Ray cluster at {options.resources.address}: {str(err).splitlines()[0]}; "
                            "start it with 'ray start --head' or check the address") from None
    else:
        dashboard = options.resources.dashboard
        # Ray's own warnings (token authentication, ...) only with --verbose: the run's lines say what matters
        context = ray.init(log_to_driver=False, include_dashboard=dashboard, dashboard_host="127.0.0.1",
                           configure_logging=True,
                           logging_level=logging.WARNING if options.output.verbose >= 2 else logging.ERROR)
        if dashboard:
            echo(f"Ray dashboard: http://{context.dashboard_url}")
        echo(f"local Ray cluster: ray status --address {ray.get_runtime_context().gcs_address}")


def check_dashboard_installed() -> None:
    """Ray starts without its dashboard, silently, when ``ray[default]``'s packages are missing."""
    try:
        import aiohttp  # noqa: F401
        import opencensus  # noqa: F401
    except ImportError as error:
        raise UserError(f"--dashboard needs Ray's dashboard packages ({error.name} is missing): "
                        "pip install 'searchseg[dashboard]'") from None


def _cluster_totals(options: SearchOptions, echo=print) -> tuple[float, float]:
    """CPUs and GPUs the trials will share. A local cluster is this machine, known before Ray starts, so a budgeted
    run can time its models before Ray's start-up competes with them for the processor."""
    if options.resources.address:
        _start_ray(options, echo)
        return _wait_for_cluster(options.resources, echo)
    if ray.is_initialized():  # this process's own Ray (an earlier search started it): no node will join it
        totals = ray.cluster_resources()
        return totals.get("CPU", 1.0), totals.get("GPU", 0.0)
    import torch

    return float(available_cpus()), float(torch.cuda.device_count())


def _wait_for_cluster(given: ResourceConfig, echo, poll_seconds: float = 2.0) -> tuple[float, float]:
    """The cluster's CPUs and GPUs once it can run one trial. An autoscaling cluster whose workers start at zero
    (``cluster.yaml``: a head with no CPU for trials) has nothing to offer when the job is submitted: Ray's
    autoscaler is asked for one trial's resources and the run waits, saying so, up to ``cluster_wait`` seconds.
    The trials' own resource requests then bring up the nodes that more trials at once need."""
    need = {"CPU": given.cpus_per_trial or 1.0, "GPU": given.gpus_per_trial or 0.0}
    deadline, asked = time.monotonic() + given.cluster_wait, False
    while True:
        nodes = _alive_nodes()
        if any(all(node.get(key, 0.0) >= amount for key, amount in need.items()) for node in nodes):
            if asked:
                request_resources(bundles=[])  # the trials' requests hold the nodes from here
                echo(f"the cluster can run trials: {_describe_nodes(nodes)}")
            totals = ray.cluster_resources()
            return totals.get("CPU", 0.0), totals.get("GPU", 0.0)
        wanted = ", ".join(f"{amount:g} {key}" for key, amount in need.items() if amount)
        if time.monotonic() >= deadline:
            raise UserError(f"no node of the cluster at {given.address} offers one trial's {wanted} after "
                            f"{format_duration(given.cluster_wait)} ({_describe_nodes(nodes)}); start workers "
                            "that have them, or check the worker types of your cluster.yaml, or wait longer with "
                            "--cluster-wait")
        if not asked:
            request_resources(bundles=[{key: amount for key, amount in need.items() if amount}])
            echo(f"waiting for a node with one trial's {wanted} ({_describe_nodes(nodes)}); Ray's autoscaler "
                 f"was asked for one; up to {format_duration(given.cluster_wait)} (--cluster-wait)")
            asked = True
        time.sleep(poll_seconds)


def _alive_nodes() -> list[dict[str, float]]:
    return [node["Resources"] for node in ray.nodes() if node.get("Alive")]


def _describe_nodes(nodes: list[dict[str, float]]) -> str:
    offered = [f"{node.get('CPU', 0.0):g} CPU, {node.get('GPU', 0.0):g} GPU" for node in nodes]
    return f"{len(nodes)} node(s): {'; '.join(offered)}" if nodes else "no node"


def _resources(options: SearchOptions, cpus: float, gpus: float) -> dict:
    given = options.resources
    gpus_per_trial = given.gpus_per_trial if given.gpus_per_trial is not None else (1.0 if gpus else 0.0)
    if gpus_per_trial > gpus:
        raise UserError(f"--gpus-per-trial {gpus_per_trial} but the cluster has {gpus:g} GPUs")
    if given.cpus_per_trial is not None:
        cpus_per_trial = given.cpus_per_trial
    elif gpus_per_trial:
        nodes = _alive_nodes() if ray.is_initialized() else [{"CPU": cpus, "GPU": gpus}]
        cpus_per_trial = cpus_per_gpu_trial(gpus_per_trial, nodes)
    else:
        cpus_per_trial = 1.0 if cpus <= 4 else 2.0
    if cpus_per_trial > cpus:
        raise UserError(f"--cpus-per-trial {cpus_per_trial:g} but the cluster has {cpus:g} CPUs")
    return {"cpu": cpus_per_trial, "gpu": gpus_per_trial}


def cpus_per_gpu_trial(gpus_per_trial: float, nodes: list[dict[str, float]]) -> float:
    """A GPU trial's CPUs by default: a GPU node's CPUs shared by the trials its GPUs hold, the fewest over the
    ``nodes`` (their Ray resources) that can hold one. Cluster-wide totals counted a CPU-only head and gave 4 trials
    on 4 GPUs 2 CPUs each where a node had 4, so only 2 ran at once."""
    shares = [node.get("CPU", 0.0) // max(1, int(node.get("GPU", 0.0) // gpus_per_trial)) for node in nodes
              if node.get("GPU", 0.0) >= gpus_per_trial]
    return max(1.0, float(min(shares, default=1.0)))


def _searcher(space: SearchSpace, searcher: str | optuna.samplers.BaseSampler,
              warm_trials: list[WarmTrial] | None = None) -> ObjectiveSearch:
    s = space.settings
    start = [space.optuna_point(config) for config in space.start[:s.samples]]
    if isinstance(searcher, optuna.samplers.BaseSampler):
        sampler = searcher
    elif searcher == Searcher.RANDOM:  # a member: SearchOptions.check_types converted the name
        sampler = optuna.samplers.RandomSampler(seed=s.seed)
    else:
        # group=True lets multivariate TPE model conditional parameters; constant_liar keeps parallel trials apart.
        sampler = optuna.samplers.TPESampler(seed=s.seed, multivariate=True, group=True, constant_liar=True,
                                             n_startup_trials=s.startup_trials)
    directions = s.directions
    several = len(directions) > 1
    return ObjectiveSearch(space=SpaceSampler(space), metric=list(directions) if several else s.metric,
                           mode=list(directions.values()) if several else s.mode, sampler=sampler,
                           points_to_evaluate=start or None, max_latency_ms=s.max_latency_ms,
                           warm_trials=warm_trials)


def _scheduler(settings: SearchSettings, scheduler: str | TrialScheduler) -> TrialScheduler:
    if isinstance(scheduler, TrialScheduler):
        return scheduler
    if scheduler == Scheduler.NONE:
        return FIFOScheduler()
    if settings.objectives:
        return ParetoASHA(settings.directions, max_t=settings.epochs, grace_period=settings.grace_period,
                          reduction_factor=settings.reduction_factor)
    return ASHAScheduler(time_attr="training_iteration", max_t=settings.epochs,
                         grace_period=settings.grace_period, reduction_factor=settings.reduction_factor)


def _describe_stopping(settings: SearchSettings, scheduler: str | TrialScheduler) -> str:
    if scheduler == Scheduler.ASHA:
        ranking = f", ranked by non-dominated sorting of {', '.join(settings.directions)}" \
            if settings.objectives else ""
        return f"ASHA grace {settings.grace_period} / reduction {settings.reduction_factor}{ranking}"
    return "no early stopping" if scheduler == Scheduler.NONE else f"scheduler {type(scheduler).__name__}"


def _warm_start(space: SearchSpace, options: SearchOptions, echo=print) -> list[WarmTrial]:
    """The earlier experiment's trials for the searcher, its best configuration put first among the space's start
    configurations (``--warm-start``)."""
    if options.search.warm_start is None:
        return []
    if space.settings.objectives:
        raise UserError("--warm-start tells the searcher one metric per trial; a Pareto search (objectives) cannot "
                        "take it; drop one of them")
    trials = earlier_trials(options.search.warm_start, space)
    if not trials:
        echo(f"warm start: no trial of {options.search.warm_start} scored {space.settings.metric} with values this "
             "space can take; the search starts cold")
        return []
    best, score = trials[0]
    space.start = [best, *(start for start in space.start if start != best)]
    echo(f"warm start: {len(trials)} trials of {options.search.warm_start} told to the searcher; their best "
         f"({space.settings.metric} {score:.4f}) trains first")
    return trials


def first_configuration(space: SearchSpace) -> dict:
    """What a budgeted run trains when there is no search to choose: the first start configuration."""
    return space.start[0] if space.start else space.central_values()


def timing_config(space: SearchSpace, fixed: dict) -> TrialConfig:
    """What a step is timed with: the fixed keys and the first start configuration, so its loss mix and
    augmentation are timed too (each timed model swaps in only its architecture and encoder)."""
    return merged_config(fixed, first_configuration(space))


def _start_models(space: SearchSpace, base: TrialConfig) -> list[tuple[str, str]]:
    configs = space.start or [first_configuration(space)]
    return list(dict.fromkeys((c.get("arch", base.arch), c.get("encoder", base.encoder)) for c in configs))


def measure_costs(space: SearchSpace, fixed: dict, data: SegmentationData, resources: dict,
                  totals: tuple[float, float], models: list[tuple[str, str]], known: Costs | None = None,
                  echo=print) -> Costs:
    """Time a step of each of ``models`` with one trial's resources, and the first start configuration's with all
    of them; what ``known`` already holds is not timed again."""
    base = timing_config(space, fixed)
    cpus, gpus = totals
    if resources["gpu"]:
        concurrency = max(1, min(int(gpus // resources["gpu"]), int(cpus // resources["cpu"])))
        trial_threads = full_threads = max(1, int(resources["cpu"]))
        share = min(1.0, resources["gpu"])  # trials sharing a GPU share its throughput
    else:
        concurrency = max(1, int(cpus // resources["cpu"]))
        trial_threads, full_threads, share = max(1, int(resources["cpu"])), available_cpus(), 1.0
    if space.settings.concurrency:
        concurrency = min(concurrency, space.settings.concurrency)
    started = time.perf_counter()
    earlier = {(key.partition("/")[0], key.partition("/")[2]): seconds * share
               for key, seconds in known.step_seconds.items()} if known else {}
    measured = {key: seconds / share
                for key, seconds in model_step_seconds(base, models, data, trial_threads, earlier).items()}
    start_models = _start_models(space, base)
    if known:
        speedup, checkpoint = known.final_speedup, known.checkpoint_seconds
    else:
        arch, encoder = start_models[0]
        full = time_steps(base.replace(arch=arch, encoder=encoder), data, full_threads)
        speedup, checkpoint = max(1.0, measured[f"{arch}/{encoder}"] / full.step), full.checkpoint
    batches = {split: -(-len(data.splits[split]) // base.batch_size) for split in ("val", "test")}
    starts = [measured[f"{arch}/{encoder}"] for arch, encoder in start_models] if space.start else []
    echo(f"seconds per step with one trial's share, {len(measured)} models (timed in "
         f"{time.perf_counter() - started:.0f} s): " + ", ".join(f"{k} {v:.2f}" for k, v in measured.items()))
    return Costs(measured, speedup, batches["val"], batches["test"], concurrency, spent_seconds=0.0,
                 start_step_seconds=sum(starts) / len(starts) if starts else 0.0, checkpoint_seconds=checkpoint,
                 val_groups=data.independent_group_count("val"))


def _plan(space: SearchSpace, fixed: dict, data: SegmentationData, options: SearchOptions, resources: dict,
          totals: tuple[float, float], started_at: float, echo=print) -> BudgetPlan:
    """Time the start configurations' models first: when the budget cannot afford a search even at their cost,
    the other models are not timed and Ray is not started."""
    budget = budget_seconds(options)
    assert budget is not None, "planned only with a budget"

    def plan_from(costs: Costs) -> BudgetPlan:
        return plan_budget(budget, dataclasses.replace(costs, spent_seconds=time.time() - started_at),
                           len(space.start), space.settings.final_share, space.settings.reduction_factor,
                           max_samples=options.search.samples, max_trial_epochs=options.search.epochs)

    base = timing_config(space, fixed)
    worker = resources if options.resources.address else None  # timed where trials run, not on the head
    shipped = ray.put(data) if worker else data  # one copy in the object store for both timings, not one each
    costs = on_trial_node(measure_costs, space, fixed, shipped, resources, totals, _start_models(space, base),
                          resources=worker, echo=echo)
    plan = plan_from(costs)
    if not plan.samples:
        return plan
    costs = on_trial_node(measure_costs, space, fixed, shipped, resources, totals, space.models(), known=costs,
                          resources=worker, echo=echo)
    _start_ray(options, echo)
    return plan_from(costs)


def _apply_plan(space: SearchSpace, fixed: dict, plan: BudgetPlan) -> None:
    s = space.settings
    if plan.samples:  # with no search the settings stay the space's; run.json's plan says none ran
        s.samples, s.epochs, s.grace_period = plan.samples, plan.max_epochs, plan.grace_epochs
        s.reduction_factor, s.concurrency = plan.reduction_factor, plan.concurrency
    fixed["epochs"], fixed["epoch_steps"] = plan.horizon_epochs, plan.epoch_steps


def run_search(options: SearchOptions, echo=print, started_at: float | None = None) -> SearchOutcome:
    """Run (or resume) a search; returns where it is and its best configuration.

    With ``options.search.budget``, the job that began at ``started_at`` (wall-clock seconds; default now) is
    planned to end within the budget: the search gets the plan's share and stops when it is used up.
    """
    started_at = time.time() if started_at is None else started_at
    options.check_types()
    _check_options(options)
    with environment_defaults(TUNE_ENVIRONMENT, restore=("WANDB_MODE",)), optuna_warnings_only():
        return _run_search(options, echo, started_at)


@dataclass
class _Experiment:
    """What a new or resumed search starts from."""

    space: SearchSpace
    fixed: dict
    experiment_dir: Path
    storage_path: str
    started_at: float  # the budget's clock
    plan: BudgetPlan | None = None  # a resumed run's saved plan; a new run's is made once its data is decoded
    warm_trials: list[WarmTrial] = field(default_factory=list)
    saved_fingerprint: str | None = None  # a resumed run's data, which must not have changed


def _trials_read(options: SearchOptions, job: _Experiment) -> bool:
    """Whether every trial can read the experiment folder: on this machine, or on a cluster whose storage is a
    folder every node mounts. There the decoded data is written once and memory-mapped; elsewhere (a cluster with
    s3:// storage, or results only on the driver's disk) it travels through Ray's object store."""
    shared_folder = options.output.storage is not None and "://" not in job.storage_path
    return options.resources.address is None or shared_folder


def _run_search(options: SearchOptions, echo, started_at: float) -> SearchOutcome:
    job = _resumed_experiment(options, echo, started_at) if options.resume else _new_experiment(options, echo,
                                                                                                  started_at)
    space, fixed, experiment_dir, plan = job.space, job.fixed, job.experiment_dir, job.plan
    settings, name, layout = space.settings, experiment_dir.name, ExperimentLayout(experiment_dir)
    data = options.data if isinstance(options.data, SegmentationData) else \
        load_from_config(data_config(fixed), progress=options.output.verbose > 0,
                         decoded_into=layout.decoded if _trials_read(options, job) else None)
    if job.saved_fingerprint is not None and data.fingerprint != job.saved_fingerprint:
        raise UserError(f"the data changed since {name} started (fingerprint {data.fingerprint} != "
                        f"{job.saved_fingerprint}); start a new experiment instead of resuming")
    totals = _cluster_totals(options, echo)
    resources = _resources(options, *totals)
    if not options.resume:  # Ray gives a trial as many threads as CPUs; saying so makes best_config.yaml rerunnable
        fixed.setdefault("threads", max(1, int(resources["cpu"])))
        plan = _planned_for(options, space, fixed, data, resources, totals, job.started_at, echo)
    searching = plan is None or plan.samples > 0
    _describe(options, space, name, data, resources, searching, echo)
    if not options.resume:
        _write_run_file(options, job, data, resources, plan)

    study = StudyWriter(layout.study, name, space, settings.metric, settings.mode)
    writer = ResultsWriter(experiment_dir, list(space.params), settings.epochs, settings.metric, settings.mode,
                           time_budget=plan is not None, study=study)
    grid, finished = None, []
    if searching:
        _start_ray(options, echo)
        with signal_handlers_kept():
            grid = _fit(options, space, fixed, data, resources, experiment_dir, job.storage_path, writer, plan,
                        job.started_at, job.warm_trials)
        if _stopped_early(grid, settings.samples, plan, job.started_at):
            raise Interrupted(_interrupted_line(options, settings.samples, experiment_dir))
        _keep_latest_checkpoints([grid[i] for i in range(len(grid))])
        finished = _finished_results([grid[i] for i in range(len(grid))], settings, experiment_dir)
    else:
        writer.on_experiment_end(trials=[])  # an empty trials.csv: the report shows there was no search
    if not finished and plan is None:
        raise UserError(f"no trial of {name} reported {settings.metric}; see {layout.trials}")
    best, best_config, best_value, selection = _best_trial(finished, grid, space, fixed, plan, searching,
                                                           data.independent_groups("val"), echo)
    best_config.save(layout.best_config)
    best_state = _best_state(best, experiment_dir)
    if searching:
        counts = load_trials(experiment_dir)["status"].value_counts().to_dict()
        echo(f"trials: {sum(counts.values())} ({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}); "
             f"best {settings.metric} {best_value:.4f}")
    return SearchOutcome(experiment_dir, best_config, best_value, layout.trials, data, job.started_at, best_state,
                         plan, selection, resources if options.resources.address else None,
                         "://" not in job.storage_path)


def _resumed_experiment(options: SearchOptions, echo, started_at: float) -> _Experiment:
    """The experiment ``--resume --name`` continues, with the remaining budget: its clock goes on from where the
    interrupted run stopped, not from a new start."""
    if not options.output.name:
        raise UserError("--resume needs --name of the experiment to continue")
    experiment_dir, storage_path = experiment_location(options, options.output.name)
    layout = ExperimentLayout(experiment_dir)
    run_file = layout.run
    layout.require_run("check --name/--storage")
    lock_experiment(experiment_dir)
    saved = read_run(experiment_dir, ("settings", "fixed", "data_fingerprint"))
    space = load_space(str(layout.space), named_by_user=False)  # data: --plugins trusts
    space.settings.__dict__.update(saved["settings"])
    fixed = saved["fixed"]
    load_plugins(fixed.get("plugins"))  # named in run.json, data: imported only if --plugins names them
    try:
        plan = BudgetPlan(**saved["plan"]) if saved.get("plan") else None
    except TypeError:
        raise UserError(f"{run_file}: its budget plan is damaged; restore it from a copy") from None
    if plan is not None:
        used = _budget_used_before(experiment_dir, saved, plan)
        started_at -= used
        atomic_write_text(run_file, json.dumps({**saved, "started_at": started_at}, indent=2, default=str))
        left = max(0.0, plan.budget_seconds - (time.time() - started_at))
        echo(f"resuming with the remaining budget: {format_duration(used)} of "
             f"{format_duration(plan.budget_seconds)} were used before the interruption, "
             f"{format_duration(left)} remain (until "
             f"{time.strftime('%H:%M:%S', time.localtime(started_at + plan.budget_seconds))})")
    # an earlier experiment's warm-start trials are in the restored searcher's study already
    return _Experiment(space, fixed, experiment_dir, storage_path, started_at, plan,
                       saved_fingerprint=saved["data_fingerprint"])


def _new_experiment(options: SearchOptions, echo, started_at: float) -> _Experiment:
    trust_plugins(options.fixed.get("plugins"))  # --set plugins=... or Search(fixed=...): named by the user
    space = as_space(options.space)
    _settings_with_options(space, options)
    fixed = fixed_config(space, options)
    warm_trials = _warm_start(space, options, echo)
    name = options.output.name or f"{space.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    experiment_dir, storage_path = experiment_location(options, name)
    writable_folder(experiment_dir, "--results or --storage")
    lock_experiment(experiment_dir)  # before looking inside: two runs started together cannot both pass
    lock = ExperimentLayout(experiment_dir).lock
    if any(path != lock for path in experiment_dir.iterdir()):
        raise UserError(f"{experiment_dir} already exists; pass --resume --name {name} to continue it, "
                        "or choose another --name")
    return _Experiment(space, fixed, experiment_dir, storage_path, started_at, warm_trials=warm_trials)


def _planned_for(options: SearchOptions, space: SearchSpace, fixed: dict, data: SegmentationData, resources: dict,
                 totals: tuple[float, float], started_at: float, echo) -> BudgetPlan | None:
    """A new run's plan from measured costs, applied to the space and printed; none for a search sized by hand."""
    budget = budget_seconds(options)
    if budget is None:
        return None
    for split in ("val", "test"):
        if not len(data.splits[split]):
            raise UserError(_EMPTY_SPLIT.format(split=split, key=f"{split}_fraction"))
    plan = _plan(space, fixed, data, options, resources, totals, started_at, echo)
    _apply_plan(space, fixed, plan)
    clock = time.strftime("%H:%M:%S", time.localtime(started_at + budget))
    for line in plan.describe(len(space.start), clock):
        echo(line)
    return plan


def _describe(options: SearchOptions, space: SearchSpace, name: str, data: SegmentationData, resources: dict,
              searching: bool, echo) -> None:
    settings, sizes = space.settings, {split: len(idx) for split, idx in data.splits.items()}
    if searching:
        searcher = options.search.searcher
        echo(f"search {name}: space {space.name}, "
             f"{searcher if isinstance(searcher, str) else type(searcher).__name__} searcher, {settings.samples} "
             f"samples x up to {settings.epochs} epochs, {_describe_stopping(settings, options.search.scheduler)}, "
             f"metric {settings.metric}")
    split_by = "" if data.split_by == "fractions" else f" by {data.split_by}"
    echo(f"data: {data.source}: {len(data.names)} pairs, {data.num_classes} classes, split "
         f"{sizes['train']}/{sizes['val']}/{sizes['test']}{split_by}; per trial {resources['cpu']:g} CPU, "
         f"{resources['gpu']:g} GPU")
    groups = data.independent_group_count("val")
    if searching and groups < MIN_INDEPENDENT_GROUPS:  # a search sized by hand: a planned one would not run
        echo(f"note: validation has {groups} independent group(s) of images; on fewer than {MIN_INDEPENDENT_GROUPS} "
             "no trial can be told apart from another beyond noise, so the best-scoring trial may lead by chance "
             "(a planned run, --budget, trains the default instead); raise val_fraction or add data")


def _write_run_file(options: SearchOptions, job: _Experiment, data: SegmentationData, resources: dict,
                    plan: BudgetPlan | None) -> None:
    space, layout = job.space, ExperimentLayout(job.experiment_dir)
    atomic_write_text(layout.space, space.text)
    atomic_write_text(layout.run, json.dumps({
        "name": job.experiment_dir.name, "space": space.name, "settings": asdict(space.settings), "fixed": job.fixed,
        "data_fingerprint": data.fingerprint, "class_names": list(data.class_names),
        "resources": resources, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "started_at": job.started_at,
        "plan": plan.to_dict() if plan else None, "storage": options.output.storage,
        "warm_start": {"experiment": str(options.search.warm_start), "trials": len(job.warm_trials)}
        if options.search.warm_start is not None else None, **run_metadata(),
    }, indent=2, default=str))


def _interrupted_line(options: SearchOptions, samples: int, experiment_dir: Path) -> str:
    name = experiment_dir.name
    resume = f"python -m searchseg.run --resume --name {name}" + (
        f" --storage {options.output.storage}" if options.output.storage else
        f" --results {options.output.results_dir}" if options.output.results_dir != Path("results") else "")
    return (f"the search stopped before its {samples} trials ended; its state is kept in {experiment_dir}; continue "
            f"it with: {resume} (from Python: searchseg.Search.restore('{experiment_dir}').fit())")


def _keep_latest_checkpoints(results: list[tune.Result]) -> None:
    """Each trial's latest checkpoint only, once the search is over (no trial of it is resumed any more): on a
    local or shared disk, the older checkpoint folder Tune kept beside it is removed."""
    for result in results:
        if result.checkpoint is None or result.checkpoint.filesystem.type_name != "local":
            continue
        latest = Path(result.checkpoint.path)
        for folder in latest.parent.glob("checkpoint_*"):
            if folder != latest and folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)


def _finished_results(results: list[tune.Result], settings: SearchSettings, experiment_dir: Path
                      ) -> list[tune.Result]:
    """The trials that reported the metric (and, with a latency limit, ran within it)."""
    finished = [r for r in results if r.metrics and settings.metric in r.metrics]
    if settings.max_latency_ms is not None:
        finished = [r for r in finished if (r.metrics or {}).get(FAILURE_KEY) != TrialStatus.INFEASIBLE]
        if not finished:
            fastest = load_trials(experiment_dir)["latency_ms"].min()
            raise UserError(f"no configuration of {experiment_dir.name} ran within --max-latency-ms "
                            f"{settings.max_latency_ms:g} (the fastest measured {fastest:g} ms per image; "
                            "trials.csv lists them); raise the limit or search smaller models")
    return finished


def _best_trial(finished: list[tune.Result], grid: tune.ResultGrid | None, space: SearchSpace, fixed: dict,
                plan: BudgetPlan | None, searching: bool, val_groups: list[str], echo
                ) -> tuple[tune.Result | None, TrialConfig, float, TrialChoice | None]:
    """(the trial the final model starts from, its config, its score, how a planned run chose it); ``val_groups``,
    one per validation image, are what a planned run's choice resamples."""
    settings = space.settings
    if not finished:  # no search, or too tight for one trial's first epoch: the final model starts from scratch
        config = merged_config(fixed, first_configuration(space))
        if searching:
            echo(f"no trial reported before the search's share of the budget ran out; the final model trains "
                 f"{config.arch}/{config.encoder} from scratch (a larger --budget lets the search run)")
        return None, config, float("nan"), None
    if plan is None:
        assert grid is not None, "without a plan there is always a search"
        best = _best_result(finished, settings.metric, settings.mode) if settings.max_latency_ms is not None else \
            grid.get_best_result(metric=settings.metric, mode=settings.mode, scope="all")
        return best, merged_config(fixed, best.config or {}), _best_score(best, settings.metric, settings.mode), None
    best, value, selection = _trial_to_continue(finished, space, val_groups, echo)
    return best, merged_config(fixed, best.config or {}), value, selection


def _best_state(best: tune.Result | None, experiment_dir: Path) -> Path | None:
    """The chosen trial's latest checkpoint state, copied into the experiment when it is a temporary copy of
    remote storage."""
    if best is None or best.checkpoint is None:
        return None
    with best.checkpoint.as_directory() as folder:
        state = CheckpointLayout(Path(folder)).state
        if state.parent != Path(best.checkpoint.path):
            kept, source = ExperimentLayout(experiment_dir).best_trial_state, state
            atomic_write(kept, lambda tmp: shutil.copyfile(source, tmp))  # called at once
            return kept
    return state


def _best_result(results: list[tune.Result], metric: str, mode: str) -> tune.Result:
    """Of ``results`` (the feasible trials), the one with the best value of ``metric`` at any epoch, as Ray Tune's
    ``get_best_result(scope="all")`` chooses among all trials."""
    scores = [_best_score(result, metric, mode) for result in results]
    direction = Direction(mode)
    return results[scores.index(direction.best(score for score in scores if not math.isnan(score)))] \
        if any(not math.isnan(score) for score in scores) else results[0]


def _best_score(result: tune.Result, metric: str, mode: str) -> float:
    """A trial's best reported value of ``metric`` (NaN if it never reported)."""
    frame = result.metrics_dataframe
    return float("nan") if frame is None else float(frame[metric].agg(mode))


def searched_config(result: tune.Result) -> dict:
    """The config keys a trial's sample set (Ray's result holds them, with Optuna's case-dependent names)."""
    return trial_config_from_tune(result.config or {})


def _trial_to_continue(finished: list[tune.Result], space: SearchSpace, val_groups: list[str],
                       echo=print) -> tuple[tune.Result, float, TrialChoice]:
    """The budgeted search's trial for the final model (``selection.choose_trial``), its best score and the
    record of the choice."""
    metric, mode = space.settings.metric, space.settings.mode
    by_id = {(result.metrics or {})["trial_id"]: result for result in finished}
    candidates = [Candidate(trial_id, searched_config(result),
                            _best_score(result, metric, mode), result.checkpoint)
                  for trial_id, result in by_id.items()]

    def read_counts(candidate: Candidate):
        if candidate.checkpoint is None:
            return None
        with candidate.checkpoint.as_directory() as folder:
            return recent_counts(Path(folder))

    chosen, selection = choose_trial(candidates, space.start, metric, mode, read_counts, val_groups)
    gain = search_gain(selection.to_dict(), pooled=f"last {RECENT_EPOCHS} evaluations pooled; "
                                                   f"{CLEARLY_BETTER_WIN_RATE:.0%} would be clear")
    if gain:
        echo(f"what the search added: {gain}")
    return by_id[chosen.trial_id], chosen.score, selection


def _fit(options: SearchOptions, space: SearchSpace, fixed: dict, data: SegmentationData, resources: dict,
         experiment_dir: Path, storage_path: str, writer: ResultsWriter, plan: BudgetPlan | None,
         started_at: float, warm_trials: list[WarmTrial]) -> tune.ResultGrid:
    """Run or resume the Tuner; ``writer`` keeps trials.csv and curves.csv current."""
    settings, name = space.settings, experiment_dir.name
    trainable = tune.with_resources(tune.with_parameters(train_segmentation, data=data, fixed=fixed,
                                                         max_latency_ms=settings.max_latency_ms), resources)
    ray_folder = str(Path(storage_path) / name) if "://" not in storage_path else f"{storage_path.rstrip('/')}/{name}"
    if options.resume and _ray_state_saved(ray_folder):
        return tune.Tuner.restore(ray_folder, trainable=trainable, resume_unfinished=True, resume_errored=True).fit()
    # a new search, or one whose driver died before Ray Tune saved its state: it starts from the beginning
    scheduler = _scheduler(settings, options.search.scheduler)
    callbacks = [writer, *tracker_callbacks(options.output.trackers, experiment_dir, name)]
    if options.output.verbose == 1:
        callbacks.append(SearchProgress(experiment_dir, settings.samples, settings.epochs, settings.metric,
                                        settings.mode))
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=_searcher(space, options.search.searcher, warm_trials),
                                    scheduler=scheduler,
                                    metric=settings.metric, mode=settings.mode, num_samples=settings.samples,
                                    max_concurrent_trials=settings.concurrency,
                                    time_budget_s=_search_seconds_left(plan, started_at),
                                    # a new trial runs in a finished trial's process when their resources match:
                                    # no second start and import of torch, smp and the data (row 3, 2-core CPU:
                                    # +0.5 s per trial, +2.8 s without); Ray moves it into the new trial's folder
                                    reuse_actors=True),
        run_config=tune.RunConfig(
            name=name, storage_path=storage_path, callbacks=callbacks, verbose=max(options.output.verbose - 1, 0),
            failure_config=tune.FailureConfig(max_failures=options.resources.max_failures),
            # Two per trial while it runs: Tune deletes the older when a trial reports, and saves its experiment
            # state (which names the checkpoint a resume restores) up to a second later; with one kept, a driver
            # killed in between resumes a trial whose checkpoint is gone and Tune fails it (ray-project/ray#27790).
            # The older ones go once the search is over (_keep_latest_checkpoints).
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            # a trial's config.yaml and augmentation.json reach --storage from nodes that do not share a disk
            sync_config=tune.SyncConfig(sync_artifacts=True),
        ),
    ).fit()


def _budget_used_before(experiment_dir: Path, saved: dict, plan: BudgetPlan) -> float:
    """Seconds of the budget an interrupted run used: from its clock's start (``started_at`` in run.json, moved on
    at each resume) to the last file it wrote (tables, checkpoints, the final model's per-epoch state)."""
    origin = saved.get("started_at")
    if not isinstance(origin, (int, float)):  # written before started_at was recorded: "started" came after planning
        try:
            origin = time.mktime(time.strptime(str(saved.get("started")), "%Y-%m-%d %H:%M:%S")) - plan.spent_seconds
        except ValueError:
            return 0.0
    lock = ExperimentLayout(experiment_dir).lock
    written = [path.stat().st_mtime for path in experiment_dir.rglob("*") if path.is_file() and path != lock]
    return min(float(plan.budget_seconds), max(0.0, max(written, default=origin) - origin))


def _ray_state_saved(ray_folder: str) -> bool:
    """Whether Ray Tune saved an experiment state to resume. ``Tuner.can_restore`` looks for ``tuner.pkl`` alone,
    which Tune writes before its first state: a driver killed between the two made ``--resume`` fail to restore,
    run one trial and stop as if interrupted. Without a state the search starts again (no trial had reported)."""
    return tune.Tuner.can_restore(ray_folder) and _find_newest_experiment_checkpoint(ray_folder) is not None


def _stopped_early(results: tune.ResultGrid, samples: int, plan: BudgetPlan | None, started_at: float) -> bool:
    """Tune answers Ctrl-C by saving its state and returning from ``fit`` as if the search were over; it was not
    if some sample never ran or some trial neither ended nor failed, unless the budget's share ran out."""
    unfinished = len(results) < samples or results.num_terminated + results.num_errors < len(results)
    out_of_time = plan is not None and time.time() >= started_at + plan.spent_seconds + plan.search_seconds - 1
    return unfinished and not out_of_time


def _search_seconds_left(plan: BudgetPlan | None, started_at: float) -> float | None:
    """The search's share of the budget, counted from the job's start so loading and timing are included."""
    if plan is None:
        return None
    return max(1.0, plan.spent_seconds + plan.search_seconds - (time.time() - started_at))
