"""Per-image class counts and what is read from them: mIoU, and whether one model beats another beyond resampling
noise. Plain NumPy, so the planner and the report use them without importing torch."""

from __future__ import annotations

import math

import numpy as np

HITS, TARGET, PREDICTED = 0, 1, 2  # the rows of per-image class counts


def class_counts_per_image(predictions: np.ndarray, targets: np.ndarray, num_classes: int,
                           ignore_index: int) -> np.ndarray:
    """Per image and class, the pixels predicted right (``HITS``), in the target (``TARGET``) and in the prediction
    (``PREDICTED``): ``(N, 3, C)`` int32, ignored pixels left out. That is all an IoU needs
    (hits / (target + predicted - hits)), in 3 C numbers per image where a confusion matrix takes C x C:
    2,000 images of 150 classes hold 3.6 MB instead of 360 MB.

    Shape: predictions and targets ``(N, H, W)`` class indices.
    """
    counts = np.zeros((len(targets), 3, num_classes), np.int32)
    for count, prediction, target in zip(counts, predictions, targets, strict=True):
        labelled = target != ignore_index
        truth, predicted = target[labelled].astype(np.int64), prediction[labelled].astype(np.int64)
        count[HITS] = np.bincount(truth[truth == predicted], minlength=num_classes)
        count[TARGET] = np.bincount(truth, minlength=num_classes)
        count[PREDICTED] = np.bincount(predicted, minlength=num_classes)
    return counts


def counts_from_confusions(confusions: np.ndarray) -> np.ndarray:
    """Class counts ``(..., 3, C)`` from confusion matrices ``(..., C, C)`` (rows the target): what trial
    checkpoints written before the counts (``val_confusions.npy``) hold."""
    return np.stack([np.diagonal(confusions, axis1=-2, axis2=-1), confusions.sum(-1), confusions.sum(-2)], axis=-2)


def miou_of_counts(counts: np.ndarray) -> np.ndarray:
    """mIoU of class counts ``(..., 3, C)``, counted as ``SegmentationMetrics`` counts it: a class absent
    from both target and prediction does not take part."""
    hits = counts[..., HITS, :].astype(np.float64)
    union = counts[..., TARGET, :] + counts[..., PREDICTED, :] - hits
    iou = np.divide(hits, union, out=np.full_like(hits, np.nan), where=union > 0)
    present = ~np.isnan(iou)
    return np.where(present, iou, 0.0).sum(-1) / np.maximum(present.sum(-1), 1)


# A challenger beats an incumbent "beyond resampling noise" when it wins at least this share of the resamples:
# the rule for which trial a search continues and for which state of the final training is kept.
CLEARLY_BETTER_WIN_RATE = 0.95
# The fewest independent validation groups on which one model can be shown clearly better than another: with G
# groups, a challenger ahead on every one of them is still what a coin flip per group gives with probability
# 2**-G (a sign test), above 1 - CLEARLY_BETTER_WIN_RATE for G <= 4. Resampling fewer groups cannot know more.
MIN_INDEPENDENT_GROUPS = math.ceil(math.log2(1 / (1 - CLEARLY_BETTER_WIN_RATE)))


def counts_per_group(counts: np.ndarray, groups: list[str]) -> np.ndarray:
    """Per-image class counts ``(N, 3, C)`` summed over the images of each group: ``(G, 3, C)``, groups in the
    order they first occur."""
    if len(groups) != len(counts):
        raise ValueError(f"need a group for each of the {len(counts)} images, got {len(groups)}")
    position = {group: index for index, group in enumerate(dict.fromkeys(groups))}
    summed = np.zeros((len(position), *counts.shape[1:]), dtype=counts.dtype)
    np.add.at(summed, [position[group] for group in groups], counts)
    return summed


def bootstrap_win_rate(challenger: np.ndarray, incumbent: np.ndarray, groups: list[str] | None = None,
                       rounds: int = 2000, seed: int = 0) -> float:
    """Share of bootstrap resamples of the images on which ``challenger`` scores a higher mIoU than
    ``incumbent``: both drawn with the same images, given as per-image class counts ``(N, 3, C)``.

    How far a difference in mIoU over a few validation images is from resampling noise: 0.5 is a coin flip.
    With ``groups`` (one per image), images of one group are drawn together: crops of one tile, frames of one
    video or slices of one scan are not independent evidence, and resampling them one by one overstates how
    sure the comparison is. With fewer than ``MIN_INDEPENDENT_GROUPS`` groups (or images) nothing can be shown:
    0.0.
    """
    if challenger.shape != incumbent.shape or not len(challenger):
        raise ValueError(f"need class counts of the same images, got {challenger.shape} and {incumbent.shape}")
    if groups is not None:
        challenger, incumbent = counts_per_group(challenger, groups), counts_per_group(incumbent, groups)
    units = len(challenger)
    if units < MIN_INDEPENDENT_GROUPS:
        return 0.0
    counts = np.random.default_rng(seed).multinomial(units, np.full(units, 1 / units), size=rounds).astype(float)
    flat = challenger.shape[1] * challenger.shape[2]
    resampled = [(counts @ m.reshape(len(m), flat)).reshape(rounds, *m.shape[1:]) for m in (challenger, incumbent)]
    return float(np.mean(miou_of_counts(resampled[0]) > miou_of_counts(resampled[1])))
