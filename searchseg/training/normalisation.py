"""The model's input scaling: the engine trains with it and the model card records it for ``predict``."""

from __future__ import annotations

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
GREY_MEAN, GREY_STD = (0.449,), (0.226,)


def normalisation(in_channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and standard deviation on the 0-1 scale: ImageNet's for RGB, their average for one grey channel."""
    return (IMAGENET_MEAN, IMAGENET_STD) if in_channels == 3 else (GREY_MEAN, GREY_STD)
