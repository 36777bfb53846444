"""The final model's card: everything needed to run it outside the search, and how well it did.

Written as ``final/model_card.json`` and into the exported ONNX model's metadata (key ``searchseg_model_card``),
so a model file moved elsewhere still says how to feed it. ``searchseg predict`` reads nothing else.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from searchseg.errors import UserError
from searchseg.io_utils import atomic_write_text, json_default
from searchseg.layout import FinalLayout
from searchseg.training.normalisation import normalisation

if TYPE_CHECKING:
    from searchseg.data.loader import SegmentationData
    from searchseg.spaces.config import TrialConfig
    from searchseg.tracking.final_metrics import FinalMetrics

ONNX_METADATA_KEY = "searchseg_model_card"
FORMAT = "searchseg-model-card/1"
SIZE_MULTIPLE = 32  # smp encoders downsample 32x


@dataclass(frozen=True)
class Preprocessing:
    """How pixels become the model's input."""

    channels: int  # 3: RGB order (greyscale repeated), 1: grey
    mean: tuple[float, ...]  # on the 0-255 scale
    std: tuple[float, ...]
    steps: tuple[str, ...] = (
        "decode to uint8 RGB (16-bit and float images stretched per image from their min..max to 0..255, "
        "alpha dropped, greyscale repeated to 3 channels unless channels is 1)",
        "resize as input_size.rule says (bilinear when enlarging, area interpolation when shrinking)",
        "x = (pixel - mean) / std per channel, float32, channels first: (batch, channels, height, width)",
    )


@dataclass(frozen=True)
class InputSize:
    """At what size the model sees an image."""

    window: int  # the model was trained on window x window images
    training_image_size: tuple[int, int]  # the median height and width of the training images before resizing
    multiple_of: int = SIZE_MULTIPLE
    rule: str = (
        "training resized every image to window x window without keeping its aspect ratio. Along each axis a new "
        "image is resized by window / the median training length (the typical training scale), but never below "
        "the window (a short image is enlarged to it, as training enlarged short images); a result longer than "
        "the window is covered by overlapping window x window tiles whose logits are averaged. The logits are "
        "resized back to the image's own size before taking the class")

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """The size an image is resized to before tiling: an image of the median training size gets exactly the
        window, as in training."""
        return (max(self.window, round(height * self.window / self.training_image_size[0])),
                max(self.window, round(width * self.window / self.training_image_size[1])))


@dataclass(frozen=True)
class Classes:
    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]  # as searchseg draws them (the class map's, else a fixed palette)
    ignore_index: int  # the value of unlabelled pixels in training masks; never predicted
    binary: bool  # one output channel: foreground where its logit > 0 (sigmoid > 0.5), else argmax of the logits


@dataclass(frozen=True)
class ModelCard:
    arch: str
    encoder: str
    weights: str  # file beside the card: a PyTorch state dict for searchseg.create_model(arch, encoder, ...)
    outputs: int  # logit channels: 1 for binary, else one per class
    preprocessing: Preprocessing
    input_size: InputSize
    classes: Classes
    metrics: dict  # test split: mean and spread over seeds, per-class IoU and Dice
    data: dict  # source, fingerprint, number of test images
    config: dict  # the flat training config (TrialConfig.to_flat)
    versions: dict  # python and package versions that trained it
    onnx: str | None = None  # exported model beside the card, input "image", output "logits", any height and width
    format: str = FORMAT

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, default=json_default)

    def save(self, folder: Path) -> Path:
        path = FinalLayout(Path(folder)).card
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def from_json(cls, text: str, where: str) -> ModelCard:
        try:
            fields = json.loads(text)
            if fields.get("format") != FORMAT:
                raise UserError(f"{where} is not a {FORMAT} model card (format {fields.get('format')!r})")
            card = cls(**{**fields, "preprocessing": Preprocessing(**_tuples(fields["preprocessing"])),
                          "input_size": InputSize(**_tuples(fields["input_size"])),
                          "classes": Classes(**_tuples(fields["classes"]))})
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise UserError(f"{where} is not a readable model card ({type(error).__name__}: {error})") from None
        problem = card._problem()
        if problem:
            raise UserError(f"{where} is not a readable model card ({problem}); restore it from a copy or run "
                            "searchseg retrain on its experiment")
        return card

    def _problem(self) -> str | None:
        """What a card that parses holds that ``predict`` could not use, or that names a file outside its folder."""
        def number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        def count(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 1

        pre, size, classes = self.preprocessing, self.input_size, self.classes
        checks = {
            "arch, encoder and weights are text": all(isinstance(v, str) for v in (self.arch, self.encoder,
                                                                                   self.weights)),
            "weights and onnx are file names beside the card": all(
                v is None or (isinstance(v, str) and v and Path(v).name == v and v not in (".", ".."))
                for v in (self.weights, self.onnx)),
            "outputs is a positive integer": count(self.outputs),
            "preprocessing.channels is 1 or 3": pre.channels in (1, 3) and not isinstance(pre.channels, bool),
            "preprocessing.mean and std hold one number per channel, std > 0": (
                isinstance(pre.mean, tuple) and isinstance(pre.std, tuple)
                and len(pre.mean) == len(pre.std) == pre.channels and all(map(number, pre.mean))
                and all(number(v) and v > 0 for v in pre.std)),
            "input_size.window and multiple_of are positive integers": count(size.window)
            and count(size.multiple_of),
            "input_size.training_image_size is two positive integers": (
                isinstance(size.training_image_size, tuple) and len(size.training_image_size) == 2
                and all(map(count, size.training_image_size))),
            "classes.names is a list of names, one colour of 3 values each": (
                isinstance(classes.names, tuple) and all(isinstance(n, str) for n in classes.names)
                and isinstance(classes.colors, tuple) and len(classes.colors) == len(classes.names)
                and all(isinstance(c, tuple) and len(c) == 3 and all(map(number, c)) for c in classes.colors)),
            "classes.ignore_index is an integer and binary true or false": (
                isinstance(classes.ignore_index, int) and isinstance(classes.binary, bool)),
            "metrics, data, config and versions are mappings": all(
                isinstance(v, dict) for v in (self.metrics, self.data, self.config, self.versions)),
        }
        broken = [rule for rule, holds in checks.items() if not holds]
        return f"expected: {broken[0]}" if broken else None

    @classmethod
    def load(cls, folder: Path) -> ModelCard:
        path = FinalLayout(Path(folder)).card
        if not path.is_file():
            raise UserError(f"{folder} has no {path.name}: its final model was written before model cards or not at "
                            f"all; run searchseg retrain {Path(folder).parent} to train one")
        return cls.from_json(path.read_text(), str(path))


def _tuples(fields: dict) -> dict:
    """JSON lists back to the tuples the dataclasses hold (colours become tuples of three)."""
    return {key: tuple(tuple(v) if isinstance(v, list) else v for v in value) if isinstance(value, list) else value
            for key, value in fields.items()}


CARD_METRICS = ("test_miou", "test_miou_std", "mean_dice", "std_dice", "mean_pixel_accuracy", "std_pixel_accuracy",
                "iou_per_class", "dice_per_class")


def build_model_card(config: TrialConfig, data: SegmentationData, summary: FinalMetrics, onnx: str | None
                     ) -> ModelCard:
    """The card of a final model trained by ``config`` on ``data``, from its test ``summary``."""
    mean, std = normalisation(config.in_channels)
    return ModelCard(
        arch=config.arch, encoder=config.encoder, weights="model.pt", outputs=1 if data.binary else data.num_classes,
        preprocessing=Preprocessing(config.in_channels, tuple(round(255 * m, 4) for m in mean),
                                    tuple(round(255 * s, 4) for s in std)),
        input_size=InputSize(config.model_size, data.median_original_size),
        classes=Classes(tuple(data.class_names), tuple((c[0], c[1], c[2]) for c in summary.class_colors),
                        data.ignore_index, data.binary),
        metrics={**{key: getattr(summary, key) for key in CARD_METRICS}, "seeds": len(summary.seeds),
                 "test_images": summary.test_images},
        data={"source": data.source, "fingerprint": data.fingerprint, "images": len(data.images)},
        config=config.to_flat(), versions=summary.versions, onnx=onnx)
