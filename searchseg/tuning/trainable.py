"""The Ray Tune function trainable: a flat config in, the engine's epochs out as Tune reports.

The decoded dataset arrives through ``tune.with_parameters`` (one copy in the object store per
cluster, read zero-copy by every trial on a node). Each epoch reports validation metrics and a
checkpoint (with the validation class counts per image of the last few epochs, which ``selection`` compares); a
retried or resumed trial continues from ``tune.get_checkpoint()``. A NaN loss or an
out-of-memory error ends the trial with that status and its reason in ``stop_reason`` instead of crashing it, so
Tune does not waste retries on a deterministic failure and the search goes on.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np
import ray
import torch
from ray import tune

from searchseg.data.loader import SegmentationData
from searchseg.errors import UserError
from searchseg.layout import CheckpointLayout, TrialLayout
from searchseg.spaces.space import merged_config
from searchseg.tracking.status import FAILURE_KEY, TrialStatus
from searchseg.training.augment import save_augmentation
from searchseg.training.checkpoints import load_state
from searchseg.training.costs import measure_costs
from searchseg.training.engine import FitStatus, Trainer, fit
from searchseg.training.plugins import trust_plugins
from searchseg.tuning.selection import RECENT_EPOCHS, saved_counts


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower() or (
        "can't allocate memory" in str(error).lower())


def _report_failure(metric_defaults: dict, failure: TrialStatus, reason: str, epochs_run: int) -> None:
    """A final report for a trial that cannot go on: the searcher sees a poor score, not a crash."""
    tune.report({**metric_defaults, "epoch": epochs_run, FAILURE_KEY: failure.value, "stop_reason": reason})


def _trial_folder() -> Path:
    """Where a trial writes the files it keeps: the working directory Ray Tune runs it in, which
    ``SyncConfig(sync_artifacts=True)`` copies to the trial's folder under the storage path at every checkpoint and
    when the trial ends. ``get_trial_dir()`` names the driver's staging folder instead, which reaches storage only by
    the driver's own periodic sync, and only from the driver's node: a trial of a CI run had checkpoints but no
    config.yaml there."""
    if os.environ.get("RAY_CHDIR_TO_TRIAL_DIR", "1") == "0":  # the user kept Ray from moving trials into it
        return Path(tune.get_context().get_trial_dir())
    return Path.cwd()


def train_segmentation(config: dict, data: SegmentationData, fixed: dict, max_latency_ms: float | None = None) -> None:
    """Train one sampled ``config`` (searched keys only) on top of the search's ``fixed`` keys; a model slower than
    ``max_latency_ms`` per image is measured and reported, not trained."""
    worst = {"val_miou": 0.0, "val_dice": 0.0, "val_pixel_accuracy": 0.0, "val_loss": float("inf")}
    try:
        trial_config = merged_config(fixed, config)
    except UserError as error:  # a sample the engine refuses is a bad point, not a crash worth retrying
        _report_failure(worst, TrialStatus.INVALID_CONFIG, str(error), 0)
        return
    trust_plugins(trial_config.plugins)  # the driver imported and checked them before it started the search
    resume_state = None
    recent_counts: deque[np.ndarray] = deque(maxlen=RECENT_EPOCHS)  # what selection.choose_trial pools
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            resume_state = load_state(CheckpointLayout(Path(folder)).state)
            earlier = saved_counts(Path(folder))
            recent_counts.extend(earlier if earlier is not None else [])
    node_id = ray.get_runtime_context().get_node_id()
    resumed_from = resume_state["epoch"] if resume_state else 0

    costs: dict[str, float] = {}

    def report_epoch(row: dict, trainer: Trainer) -> None:
        metrics = {**row, "best_val_miou": trainer.best_miou, "node_id": node_id, "resumed_from_epoch": resumed_from,
                   FAILURE_KEY: "", "stop_reason": "", "reported_at": time.time(), **costs}
        recent_counts.append(trainer.eval_counts)
        with tempfile.TemporaryDirectory() as folder:
            saving = CheckpointLayout(Path(folder))
            torch.save(trainer.state_dict(), saving.state)
            np.save(saving.counts, np.stack(recent_counts))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    trainer = None
    try:
        trainer = Trainer(trial_config, data)
        costs.update(measure_costs(trainer, trial_config.cost_runs).to_metrics())  # known before it trains
        trial_files = TrialLayout(_trial_folder())  # rebuildable: the full config beside the results
        trainer.config.save(trial_files.config)
        save_augmentation(trainer.augmentation, trial_files.augmentation)
        if max_latency_ms is not None and not costs["latency_ms"] <= max_latency_ms:
            _report_failure({**worst, **costs}, TrialStatus.INFEASIBLE,
                            f"latency {costs['latency_ms']:g} ms per image > --max-latency-ms {max_latency_ms:g}", 0)
            return
        result = fit(trial_config, data, report_epoch, resume_state=resume_state, progress=False, trainer=trainer)
        if result.status is FitStatus.NAN_LOSS:
            _report_failure({**worst, **costs}, TrialStatus.NAN_LOSS, result.reason, result.epochs_run)
    except (torch.OutOfMemoryError, RuntimeError, MemoryError) as error:
        if not _is_out_of_memory(error):
            raise
        _report_failure({**worst, **costs}, TrialStatus.OUT_OF_MEMORY, str(error).splitlines()[0][:200],
                        trainer.epoch if trainer else resumed_from)
    finally:
        del trainer
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
