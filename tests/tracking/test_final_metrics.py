"""The final model's test results: mean and spread over seeds, and the file they are written to."""

from __future__ import annotations

import json

import pytest

from searchseg.tracking.final_metrics import FinalMetrics


def run(seed: int, miou: float) -> dict:
    return {"seed": seed, "miou": miou, "dice": miou + 0.1, "pixel_accuracy": 0.9, "iou_per_class": {"a": miou},
            "dice_per_class": {"a": miou + 0.1}, "confusion_matrix": [[seed + 1]]}


def metrics(*runs: dict, **fields) -> FinalMetrics:
    return FinalMetrics.from_runs(list(runs), class_names=["a"], class_colors=[[1, 2, 3]], test_images=4, epochs=3,
                                  data_fingerprint="f", versions={"python": "3"}, **fields)


def test_seeds_give_mean_and_spread_and_the_first_seeds_details():
    result = metrics(run(0, 0.5), run(1, 0.7))
    assert result.test_miou == pytest.approx(0.6) and result.test_miou_std == pytest.approx(0.1414, abs=1e-4)
    assert result.mean_dice == pytest.approx(0.7) and result.std_pixel_accuracy == 0.0
    assert result.iou_per_class == {"a": 0.5} and result.confusion_matrix == [[1]]
    assert metrics(run(0, 0.5)).test_miou_std == 0.0


def test_the_file_holds_every_field_set_and_leaves_out_the_unset(tmp_path):
    metrics(run(0, 0.5)).save(tmp_path / "metrics.json")
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["test_miou"] == 0.5 and written["seeds"][0]["seed"] == 0
    assert "export" not in written and "final_training" not in written
    metrics(run(0, 0.5), final_training={"rule": "continue_best"}).save(tmp_path / "budget.json")
    assert json.loads((tmp_path / "budget.json").read_text())["final_training"] == {"rule": "continue_best"}
