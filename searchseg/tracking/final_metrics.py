"""The final model's test results: what ``retrain`` and ``run`` return and ``final/metrics.json`` holds."""

from __future__ import annotations

import dataclasses
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from searchseg.errors import UserError
from searchseg.io_utils import atomic_write_text, json_default, read_json


@dataclass
class FinalMetrics:
    """Test-split metrics of the final model: mean and spread over its seeds, and the first seed's per-class
    IoU, Dice and confusion matrix (rows: true class, columns: predicted)."""

    test_miou: float
    test_miou_std: float  # 0 with one seed
    mean_dice: float
    std_dice: float
    mean_pixel_accuracy: float
    std_pixel_accuracy: float
    iou_per_class: dict[str, float]
    dice_per_class: dict[str, float]
    confusion_matrix: list[list[int]]
    class_names: list[str]
    class_colors: list[list[int]]  # RGB, as the overlays draw each class
    seeds: list[dict]  # each seed's own metrics (seed, miou, dice, pixel_accuracy, per class)
    test_images: int
    epochs: int
    data_fingerprint: str
    versions: dict[str, str]  # python and package versions
    command: str = ""
    host: str = ""
    platform: str = ""
    node_id: str = ""  # the Ray node that trained and evaluated it, on a cluster ("" outside Ray)
    final_training: dict | None = None  # a --budget run: how the final model was chosen (finalize.continue_best)
    export: dict | None = None  # format, file, largest logit difference from PyTorch and the largest logit

    @classmethod
    def from_runs(cls, runs: list[dict], **fields) -> FinalMetrics:
        """Mean and spread over ``runs`` (one metrics dict per seed); per-class results of the first."""
        def spread(key: str) -> float:
            return statistics.stdev(r[key] for r in runs) if len(runs) > 1 else 0.0

        return cls(test_miou=statistics.fmean(r["miou"] for r in runs), test_miou_std=spread("miou"),
                   mean_dice=statistics.fmean(r["dice"] for r in runs), std_dice=spread("dice"),
                   mean_pixel_accuracy=statistics.fmean(r["pixel_accuracy"] for r in runs),
                   std_pixel_accuracy=spread("pixel_accuracy"), iou_per_class=runs[0]["iou_per_class"],
                   dice_per_class=runs[0]["dice_per_class"], confusion_matrix=runs[0]["confusion_matrix"],
                   seeds=runs, **fields)

    def to_dict(self) -> dict:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=json_default))

    @classmethod
    def load(cls, path: Path) -> FinalMetrics:
        """``final/metrics.json`` as ``save`` wrote it; one line naming the file when it is damaged."""
        fields = read_json(path, ("test_miou",))
        known = {field.name for field in dataclasses.fields(cls)}
        try:
            return cls(**{key: value for key, value in fields.items() if key in known})
        except TypeError as error:
            raise UserError(f"{path} is not what searchseg wrote ({error}); restore it from a copy") from None
