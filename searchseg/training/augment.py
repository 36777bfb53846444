"""Named albumentations presets with a searchable strength, applied to image and mask together.

``strength`` scales every probability and magnitude of a preset: 0 turns it into the identity,
1 is the preset as written (``medium`` at 1 is the seed notebooks' recipe: horizontal flip 0.5,
vertical flip 0.2, rotation +-10 degrees, random resized crop of 80-100% of the area), 2 doubles it.
A pipeline round-trips through ``A.to_dict`` / ``A.from_dict``, so it is saved beside a trial's results.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import albumentations as A
import cv2

from searchseg.io_utils import atomic_write_text
from searchseg.training.registry import Registry

# (strength, image_size, ignore_index, channels) -> albumentations transforms; the pipeline ends image_size square
PresetBuilder = Callable[[float, int, int, int], list]


def _geometric(strength: float, size: int, ignore_index: int, rotate: float, min_area: float,
               vflip: float) -> list:
    aspect = max(1.0 - 0.25 * strength, 0.25)
    return [
        A.HorizontalFlip(p=min(0.5 * strength, 1.0)),
        A.VerticalFlip(p=min(vflip * strength, 1.0)),
        A.Rotate(limit=rotate * strength, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=ignore_index,
                 p=1.0 if strength > 0 else 0.0),
        A.RandomResizedCrop(size=(size, size), scale=(max(1.0 - (1.0 - min_area) * strength, 0.05), 1.0),
                            ratio=(aspect, 1.0 / aspect), p=1.0),
    ]


def _none(strength: float, size: int, ignore_index: int, channels: int) -> list:
    return []


def _light(strength: float, size: int, ignore_index: int, channels: int) -> list:
    return [A.HorizontalFlip(p=min(0.5 * strength, 1.0))]


def _medium(strength: float, size: int, ignore_index: int, channels: int) -> list:
    return _geometric(strength, size, ignore_index, rotate=10.0, min_area=0.8, vflip=0.2)


def _heavy(strength: float, size: int, ignore_index: int, channels: int) -> list:
    steps = _geometric(strength, size, ignore_index, rotate=30.0, min_area=0.5, vflip=0.5)
    steps.append(A.RandomBrightnessContrast(brightness_limit=0.2 * strength, contrast_limit=0.2 * strength,
                                            p=min(0.5 * strength, 1.0)))
    if channels == 3:
        steps.append(A.HueSaturationValue(hue_shift_limit=10 * strength, sat_shift_limit=20 * strength,
                                          val_shift_limit=10 * strength, p=min(0.3 * strength, 1.0)))
    steps.append(A.GaussNoise(std_range=(0.01 * strength, 0.05 * strength), p=min(0.2 * strength, 1.0)))
    return steps


PRESETS: Registry[PresetBuilder] = Registry("augmentation preset")
register_preset = PRESETS.register
for _name, _builder in (("none", _none), ("light", _light), ("medium", _medium), ("heavy", _heavy)):
    register_preset(_name)(_builder)


def check_preset(name: str) -> None:
    PRESETS.check(name)


def build_augmentation(preset: str, strength: float, image_size: int, ignore_index: int = 255,
                       channels: int = 3, options: dict | None = None) -> A.Compose:
    """The training pipeline of a preset at a strength (and its own ``options``); the output is always
    ``image_size`` square."""
    return A.Compose(PRESETS.build(preset, strength, image_size, ignore_index, channels, options=options))


def save_augmentation(pipeline: A.Compose, path: Path) -> None:
    atomic_write_text(path, json.dumps(A.to_dict(pipeline), indent=1))


def load_augmentation(path: Path) -> A.Compose:
    return A.from_dict(json.loads(Path(path).read_text()))
