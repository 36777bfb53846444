"""Segmentation metrics over torchmetrics: mIoU, per-class IoU, Dice, pixel accuracy, confusion matrix.

Ignored pixels never count. mIoU and mean Dice average the classes that occur in the target or
the prediction of the evaluated images (a class absent from both has no defined IoU).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)


def predict_labels(logits: torch.Tensor) -> torch.Tensor:
    """Class indices from logits: argmax over classes, or ``logit > 0`` with one (binary) channel.

    Shape: ``(B, C, H, W) -> (B, H, W)``.
    """
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).long()
    return logits.argmax(dim=1)


class SegmentationMetrics:
    """Accumulates predictions over batches, then ``compute()`` returns plain Python numbers."""

    def __init__(self, class_names: tuple[str, ...], ignore_index: int, device: torch.device | str = "cpu") -> None:
        self.class_names = class_names
        n, nan = len(class_names), float("nan")
        common: dict[str, Any] = {"num_classes": n, "ignore_index": ignore_index, "validate_args": False}
        self.metrics = MetricCollection({
            "iou": MulticlassJaccardIndex(average="none", zero_division=nan, **common),
            "dice": MulticlassF1Score(average="none", zero_division=nan, **common),
            "pixel_accuracy": MulticlassAccuracy(average="micro", **common),
            "confusion": MulticlassConfusionMatrix(**common),
        }).to(device)

    def update(self, predictions: torch.Tensor, target: torch.Tensor) -> None:
        """Shape: predictions and target ``(B, H, W)`` class indices."""
        self.metrics.update(predictions, target)

    def reset(self) -> None:
        self.metrics.reset()

    def compute(self) -> dict:
        values = self.metrics.compute()
        iou = values["iou"].tolist()
        dice = values["dice"].tolist()
        return {
            "miou": _nanmean(iou),
            "dice": _nanmean(dice),
            "pixel_accuracy": float(values["pixel_accuracy"]),
            "iou_per_class": dict(zip(self.class_names, iou, strict=True)),
            "dice_per_class": dict(zip(self.class_names, dice, strict=True)),
            "confusion_matrix": values["confusion"].long().tolist(),
        }


def _nanmean(values: list[float]) -> float:
    present = [v for v in values if not math.isnan(v)]
    return sum(present) / len(present) if present else float("nan")


def confusion_per_image(predictions: np.ndarray, targets: np.ndarray, num_classes: int,
                        ignore_index: int) -> np.ndarray:
    """One confusion matrix per image, ``(N, C, C)`` with rows the target class; ignored pixels left out.

    Shape: predictions and targets ``(N, H, W)`` class indices.
    """
    matrices = np.zeros((len(targets), num_classes, num_classes), np.int64)
    for matrix, prediction, target in zip(matrices, predictions, targets, strict=True):
        labelled = target != ignore_index
        pairs = target[labelled].astype(np.int64) * num_classes + prediction[labelled]
        matrix[:] = np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    return matrices


def miou_of_confusion(confusion: np.ndarray) -> np.ndarray:
    """mIoU of confusion matrices ``(..., C, C)``, counted as ``SegmentationMetrics`` counts it: a class absent
    from both target and prediction does not take part."""
    hits = np.diagonal(confusion, axis1=-2, axis2=-1).astype(np.float64)
    union = confusion.sum(-1) + confusion.sum(-2) - hits
    iou = np.divide(hits, union, out=np.full_like(hits, np.nan), where=union > 0)
    present = ~np.isnan(iou)
    return np.where(present, iou, 0.0).sum(-1) / np.maximum(present.sum(-1), 1)


# A challenger beats an incumbent "beyond resampling noise" when it wins at least this share of the resamples:
# the rule for which trial a search continues and for which state of the final training is kept.
CLEARLY_BETTER_WIN_RATE = 0.95


def bootstrap_win_rate(challenger: np.ndarray, incumbent: np.ndarray, rounds: int = 2000, seed: int = 0) -> float:
    """Share of bootstrap resamples of the images on which ``challenger`` scores a higher mIoU than
    ``incumbent``: both drawn with the same images, given as per-image confusion matrices ``(N, C, C)``.

    How far a difference in mIoU over a few validation images is from resampling noise: 0.5 is a coin flip.
    """
    if challenger.shape != incumbent.shape or not len(challenger):
        raise ValueError(f"need confusion matrices of the same images, got {challenger.shape} and {incumbent.shape}")
    images = len(challenger)  # how often each image is drawn in each resample
    counts = np.random.default_rng(seed).multinomial(images, np.full(images, 1 / images), size=rounds).astype(float)
    flat = challenger.shape[1] * challenger.shape[2]
    resampled = [(counts @ m.reshape(len(m), flat)).reshape(rounds, *m.shape[1:]) for m in (challenger, incumbent)]
    return float(np.mean(miou_of_confusion(resampled[0]) > miou_of_confusion(resampled[1])))
