"""Retrain the best configuration on train+val and evaluate it on the held-out test split.

Writes ``EXPERIMENT/final/``: ``metrics.json`` (test mIoU, per-class IoU, Dice, pixel accuracy and
confusion matrix; mean and spread over seeds), ``model.pt`` (weights of the first seed),
``config.yaml``, ``curves.csv`` (per-epoch losses of each seed) and ``overlays/`` (image | ground
truth | prediction), and with ``export`` a deployable model checked against PyTorch.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from searchseg.config import TrialConfig
from searchseg.data import load_from_config
from searchseg.data.loader import SegmentationData
from searchseg.engine import Trainer, fit
from searchseg.errors import UserError
from searchseg.evaluate import export_model, write_overlays
from searchseg.io_utils import atomic_write, atomic_write_text
from searchseg.provenance import run_metadata

FINAL_DIR = "final"
SCALARS = ("miou", "dice", "pixel_accuracy")


def retrain_best(experiment_dir: Path, data: SegmentationData | None = None, seeds: int = 1,
                 epochs: int | None = None, export: str | None = None, overlays: int = 6,
                 progress: bool = True, echo=print) -> dict:
    """Retrain ``best_config.yaml`` of an experiment ``seeds`` times and evaluate on the test split."""
    config_path = Path(experiment_dir) / "best_config.yaml"
    if not config_path.is_file():
        raise UserError(f"{experiment_dir} is not a finished searchseg experiment (no best_config.yaml)")
    if seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {seeds}")
    config = TrialConfig.load(config_path)
    if epochs is not None:
        config = config.replace(epochs=epochs)
    data = data or load_from_config(config, progress=progress)
    if not len(data.splits["test"]):
        raise UserError("the test split is empty (test_fraction=0); set test_fraction > 0 to evaluate")
    final = Path(experiment_dir) / FINAL_DIR
    runs, curves, first_trainer = [], [], None
    for offset in range(seeds):
        seeded = config.replace(seed=config.seed + offset)
        echo(f"retraining {seeded.arch}/{seeded.encoder} on train+val for {seeded.epochs} epochs (seed {seeded.seed})")
        trainer = Trainer(seeded, data, train_splits=("train", "val"), eval_split="test")
        result = fit(seeded, data, progress=progress, trainer=trainer)
        if result.status != "completed":
            raise UserError(f"retraining stopped: {result.reason}; try a lower lr in {config_path}")
        curves += [{"seed": seeded.seed, **{k: v for k, v in row.items() if "." not in k}} for row in result.history]
        _, metrics = trainer.evaluate("test")
        runs.append({"seed": seeded.seed, **metrics})
        echo(f"  test mIoU {metrics['miou']:.4f}, Dice {metrics['dice']:.4f}, "
             f"pixel accuracy {metrics['pixel_accuracy']:.4f}")
        first_trainer = first_trainer or trainer

    summary = {
        "test_miou": statistics.fmean(r["miou"] for r in runs),
        "test_miou_std": statistics.stdev(r["miou"] for r in runs) if seeds > 1 else 0.0,
        **{f"mean_{k}": statistics.fmean(r[k] for r in runs) for k in SCALARS},
        **{f"std_{k}": statistics.stdev(r[k] for r in runs) if seeds > 1 else 0.0 for k in SCALARS},
        "iou_per_class": runs[0]["iou_per_class"],
        "dice_per_class": runs[0]["dice_per_class"],
        "confusion_matrix": runs[0]["confusion_matrix"],
        "class_names": list(data.class_names),
        "seeds": runs,
        "test_images": len(data.splits["test"]),
        "epochs": config.epochs,
        "data_fingerprint": data.fingerprint,
        **run_metadata(),
    }
    config.save(final / "config.yaml")
    atomic_write(final / "model.pt", lambda tmp: torch.save(first_trainer.model.state_dict(), tmp))
    atomic_write_text(final / "curves.csv", pd.DataFrame(curves).to_csv(index=False))
    shown = data.splits["test"][:overlays]
    predictions = first_trainer.predict(shown)
    write_overlays(data.images[shown], data.masks[shown], predictions, [data.names[i] for i in shown],
                   data.class_colors, data.ignore_index, final / "overlays")
    if export:
        example = first_trainer.prepare_images(torch.from_numpy(data.images[shown[:1]]).permute(0, 3, 1, 2))
        path = final / f"model.{'onnx' if export == 'onnx' else 'ts'}"
        difference = export_model(first_trainer.model, export, path, example)
        summary["export"] = {"format": export, "path": path.name, "max_abs_logit_difference": difference}
        echo(f"exported {path} (largest logit difference from PyTorch: {difference:.2e})")
    atomic_write_text(final / "metrics.json", json.dumps(summary, indent=2, default=_json_default))
    return summary


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")
