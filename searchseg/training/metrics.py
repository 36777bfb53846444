"""Segmentation metrics over torchmetrics: mIoU, per-class IoU, Dice, pixel accuracy, confusion matrix.

Ignored pixels never count. mIoU and mean Dice average the classes that occur in the target or
the prediction of the evaluated images (a class absent from both has no defined IoU).
"""

from __future__ import annotations

import math
from typing import Any

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
