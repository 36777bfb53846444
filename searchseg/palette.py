"""Class colours for pictures of masks: the class map's, or a fixed palette of distinct colours when the masks
carry none (index and binary masks). numpy only, so the report draws its legend without torch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FALLBACK_PALETTE = np.array([
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
], dtype=np.uint8)
IGNORE_COLOUR = (255, 255, 255)


def rgb_to_hex(color: Sequence[int]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*color)


def _palette(class_colors: Sequence[Sequence[int]] | None) -> np.ndarray:
    return np.array(class_colors, np.uint8) if class_colors else FALLBACK_PALETTE


def class_palette(class_colors: Sequence[Sequence[int]] | None, num_classes: int) -> np.ndarray:
    """``(num_classes, 3)`` uint8: the colour each class index is drawn in."""
    palette = _palette(class_colors)
    return palette[np.arange(num_classes) % len(palette)]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W, 1)`` grey or ``(H, W, 3)`` RGB -> ``(H, W, 3)``, for drawing beside or under coloured masks."""
    return image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)


def colourise(labels: np.ndarray, class_colors, ignore_index: int) -> np.ndarray:
    """``(H, W)`` class indices -> ``(H, W, 3)`` RGB; ignored pixels white."""
    palette = _palette(class_colors)
    rgb = palette[np.minimum(labels, len(palette) - 1) % len(palette)]
    rgb[labels == ignore_index] = IGNORE_COLOUR
    return rgb
