import math

import pytest
import torch

from searchseg.metrics import SegmentationMetrics, predict_labels


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
