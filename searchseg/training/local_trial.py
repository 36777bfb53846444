"""One training run without Ray: the engine plus files under ``results/trials/NAME/``.

Files: ``config.yaml`` (the resolved flat config), ``augmentation.json`` (the albumentations
pipeline), ``metrics.csv`` (one row per epoch), ``checkpoint.pt`` (latest full state, for
``--resume``), ``best_model.pt`` (weights of the best validation epoch) and ``summary.json``.
Every file is written atomically, so an interrupted run leaves the last complete epoch behind.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from searchseg.data import load_from_config
from searchseg.data.loader import SegmentationData
from searchseg.errors import UserError
from searchseg.io_utils import atomic_write_text, read_table
from searchseg.layout import TrialLayout
from searchseg.provenance import run_metadata
from searchseg.spaces.config import TrialConfig
from searchseg.training.augment import save_augmentation
from searchseg.training.checkpoints import load_state, save_state
from searchseg.training.costs import ModelCosts, measure_costs
from searchseg.training.engine import FitResult, Trainer, fit, validate_config


@dataclass
class LocalTrialResult:
    trial_dir: Path
    fit: FitResult
    seconds: float


def _format_row(row: dict, epochs: int) -> str:
    return (f"epoch {row['epoch']}/{epochs}  train_loss {row['train_loss']:.4f}  val_loss {row['val_loss']:.4f}  "
            f"val_mIoU {row['val_miou']:.4f}  val_dice {row['val_dice']:.4f}  ({row['epoch_seconds']:.1f} s, "
            f"{row['train_images_per_s']:.1f} img/s)")


def run_local_trial(config: TrialConfig, trial_dir: Path, resume: bool = False, progress: bool = True,
                    echo=print, data: SegmentationData | None = None) -> LocalTrialResult:
    """Train ``config`` and keep its files in ``trial_dir``; with ``resume``, continue from its checkpoint.
    ``data`` (decoded) stands in for the dataset the config names."""
    files = TrialLayout(trial_dir)
    checkpoint_path = files.checkpoint
    resume_state = None
    if resume:
        if not checkpoint_path.is_file():
            raise UserError(f"{trial_dir} has no {checkpoint_path.name} to resume from; start it without --resume")
        resume_state = load_state(checkpoint_path)
        saved = TrialConfig.from_flat(resume_state["config"])
        config = saved.replace(epochs=config.epochs) if config.epochs != saved.epochs else saved
    elif trial_dir.exists() and any(trial_dir.iterdir()):
        raise UserError(f"{trial_dir} already holds a trial; pass --resume to continue it or choose another --name")
    validate_config(config)

    started = time.perf_counter()
    data = data if data is not None else load_from_config(config, progress=progress)
    trainer = Trainer(config, data)
    trial_dir.mkdir(parents=True, exist_ok=True)
    trainer.config.save(files.config)
    save_augmentation(trainer.augmentation, files.augmentation)
    costs = measure_costs(trainer, config.cost_runs)
    _describe(trainer, costs, echo)
    rows = _earlier_rows(files.metrics, resume_state) if resume else []

    def on_epoch(row: dict, trainer: Trainer) -> None:
        rows.append(row)
        atomic_write_text(files.metrics, pd.DataFrame(rows).to_csv(index=False))
        if trainer.best_epoch == trainer.epoch:
            save_state(trainer.model.state_dict(), files.best_model)
        save_state(trainer.state_dict(), checkpoint_path)
        echo(_format_row(row, config.epochs))

    result = fit(config, data, on_epoch, resume_state=resume_state, progress=progress, trainer=trainer)
    seconds = time.perf_counter() - started
    summary = {
        "status": result.status,
        "reason": result.reason,
        "epochs_run": result.epochs_run,
        "best_val_miou": result.best_miou if result.best_epoch else None,
        "best_epoch": result.best_epoch,
        "seconds": round(seconds, 2),
        "data_fingerprint": data.fingerprint,
        "class_names": list(data.class_names),
        "class_weights": list(trainer.class_weights),
        "costs": costs.to_metrics(),
        **run_metadata(),
    }
    atomic_write_text(files.summary, json.dumps(summary, indent=2))
    return LocalTrialResult(trial_dir, result, seconds)


def _describe(trainer: Trainer, costs: ModelCosts, echo) -> None:
    data, config = trainer.data, trainer.config
    sizes = {split: len(idx) for split, idx in data.splits.items()}
    echo(f"data: {data.source} -> {len(data.names)} pairs at {config.image_size}px, {data.num_classes} classes, "
         f"split {sizes['train']}/{sizes['val']}/{sizes['test']} (train/val/test, by {data.split_by}), "
         f"fingerprint {data.fingerprint}")
    echo(f"model: {config.arch} / {config.encoder} on {trainer.device} ({config.threads} CPU threads); "
         f"loss {trainer.loss_fn.weights}")
    echo(f"cost: {costs.params_m:.2f} M parameters, {costs.gmacs:.2f} GMACs per {config.model_size} px image, "
         f"{costs.latency_ms:.1f} ms per image at batch 1, {costs.batch_latency_ms:.1f} at batch {config.batch_size}")


def _earlier_rows(metrics_path: Path, resume_state: dict | None) -> list[dict]:
    """The per-epoch rows a resumed trial wrote up to its checkpoint's epoch (later ones were never saved)."""
    earlier = read_table(metrics_path, ("epoch",)) if metrics_path.is_file() else pd.DataFrame()
    if len(earlier) and not pd.api.types.is_numeric_dtype(earlier["epoch"]):
        raise UserError(f"{metrics_path} holds epochs that are not numbers; restore it from a copy or delete it "
                        "(the checkpoint alone resumes the trial)")
    return [row for row in earlier.to_dict("records") if row["epoch"] <= (resume_state or {}).get("epoch", 0)]
