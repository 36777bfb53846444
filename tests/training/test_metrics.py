import math

import numpy as np
import pytest
import torch

from searchseg.training.class_counts import (
    MIN_INDEPENDENT_GROUPS,
    PREDICTED,
    TARGET,
    bootstrap_win_rate,
    class_counts_per_image,
    counts_from_confusions,
    counts_per_group,
    miou_of_counts,
)
from searchseg.training.metrics import SegmentationMetrics, predict_labels
from tests.conftest import image_counts


def test_metrics_by_hand():
    target = torch.tensor([[0, 0, 1, 1, 255, 1]])
    preds = torch.tensor([[0, 1, 1, 1, 0, 0]])
    metrics = SegmentationMetrics(("a", "b", "never"), ignore_index=255)
    metrics.update(preds, target)
    result = metrics.compute()
    # class a: TP 1, FP 1, FN 1 -> IoU 1/3; class b: TP 2, FP 1, FN 1 -> IoU 2/4
    assert result["iou_per_class"]["a"] == pytest.approx(1 / 3)
    assert result["iou_per_class"]["b"] == pytest.approx(0.5)
    assert math.isnan(result["iou_per_class"]["never"])
    assert result["miou"] == pytest.approx((1 / 3 + 0.5) / 2)  # the absent class does not count
    assert result["dice_per_class"]["b"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert result["pixel_accuracy"] == pytest.approx(3 / 5)  # the ignored pixel is left out
    assert result["confusion_matrix"] == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]


def test_accumulates_over_batches():
    metrics = SegmentationMetrics(("a", "b"), ignore_index=255)
    metrics.update(torch.tensor([[0, 1]]), torch.tensor([[0, 1]]))
    metrics.update(torch.tensor([[0, 0]]), torch.tensor([[1, 1]]))
    assert metrics.compute()["pixel_accuracy"] == pytest.approx(0.5)


def test_predict_labels_binary_and_multiclass():
    assert predict_labels(torch.tensor([[[[0.3, -0.1]]]])).tolist() == [[[1, 0]]]
    assert predict_labels(torch.tensor([[[[0.1]], [[0.9]]]])).tolist() == [[[1]]]


def test_per_image_class_counts_sum_to_the_same_miou_as_the_metrics_and_convert_from_confusions():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 3, size=(5, 8, 8)).astype(np.uint8)
    targets[0, :2] = 255
    predictions = np.where(rng.random((5, 8, 8)) < 0.7, targets % 255, rng.integers(0, 3, size=(5, 8, 8)))
    predictions = np.where(targets == 255, 0, predictions).astype(np.uint8)
    metrics = SegmentationMetrics(("a", "b", "c", "never"), ignore_index=255)
    metrics.update(torch.from_numpy(predictions).long(), torch.from_numpy(targets).long())
    per_image = class_counts_per_image(predictions, targets, num_classes=4, ignore_index=255)
    assert per_image.shape == (5, 3, 4) and per_image.dtype == np.int32
    assert per_image[0, TARGET].sum() == per_image[0, PREDICTED].sum() == 64 - 16  # the ignored rows left out
    assert miou_of_counts(per_image.sum(0)) == pytest.approx(metrics.compute()["miou"])
    confusion = np.array(metrics.compute()["confusion_matrix"])
    assert (counts_from_confusions(confusion) == per_image.sum(0)).all()


def test_a_clearly_better_model_wins_nearly_every_resample_and_a_lead_of_one_image_does_not():
    worse = image_counts([20, 22, 25, 21, 24, 23, 20, 22, 21])
    assert bootstrap_win_rate(image_counts([40, 41, 45, 44, 40, 42, 43, 41, 44]), worse) == 1.0
    assert bootstrap_win_rate(worse, worse) == 0.0  # a tie is not a win
    one_lucky_image = image_counts([20, 22, 25, 21, 24, 23, 20, 22, 45])
    slightly_worse_elsewhere = image_counts([21, 23, 26, 22, 25, 24, 21, 23, 21])
    assert miou_of_counts(one_lucky_image.sum(0)) > miou_of_counts(slightly_worse_elsewhere.sum(0))
    assert 0.3 < bootstrap_win_rate(one_lucky_image, slightly_worse_elsewhere) < 0.95


def test_crops_of_one_group_are_resampled_together_and_fewer_groups_than_a_sign_test_needs_show_nothing():
    better = image_counts([40, 41, 45, 44, 40, 42, 43, 41, 44])
    worse = image_counts([20, 22, 25, 21, 24, 23, 20, 22, 21])
    assert MIN_INDEPENDENT_GROUPS == 5  # 2**-5 = 3 % is the first sign test below the 5 % a 0.95 win rate leaves
    assert bootstrap_win_rate(better, worse, groups=[f"crop{i}" for i in range(9)]) == 1.0
    assert bootstrap_win_rate(better, worse, groups=["tile 1"] * 9) == 0.0  # one tile: ahead on it, nothing shown
    assert bootstrap_win_rate(better[:4], worse[:4]) == 0.0
    five_tiles = ["a", "a", "b", "b", "c", "c", "d", "e", "e"]
    assert bootstrap_win_rate(better, worse, groups=five_tiles) == 1.0
    # a lead resting on one tile: resampled by crop it looks clear, resampled by tile it does not
    one_lucky_tile = image_counts([45, 45, 45, 45, 45, 20, 21, 22, 21])
    slightly_worse = image_counts([20, 20, 20, 20, 20, 24, 25, 26, 25])
    tiles = ["a"] * 5 + ["b", "c", "d", "e"]
    assert bootstrap_win_rate(one_lucky_tile, slightly_worse) > 0.95
    assert bootstrap_win_rate(one_lucky_tile, slightly_worse, groups=tiles) < 0.95


def test_counts_per_group_sum_the_images_of_each_group_in_first_seen_order():
    counts = image_counts([1, 2, 3, 4])
    summed = counts_per_group(counts, ["b", "a", "b", "a"])
    assert (summed[0] == counts[0] + counts[2]).all() and (summed[1] == counts[1] + counts[3]).all()
    with pytest.raises(ValueError, match="a group for each"):
        counts_per_group(counts, ["a"])


def test_the_win_rate_needs_the_same_images():
    with pytest.raises(ValueError, match="same images"):
        bootstrap_win_rate(image_counts([1, 2]), image_counts([1, 2, 3]))
