"""Mask codecs: turn a raw mask (as read by ``read_mask``) into a ``(H, W)`` uint8 class-index map.

Three codecs, chosen by name in a dataset spec or detected (``auto``):

- ``index``: pixel values are class indices; ``ignore_index`` (default 255) passes through;
- ``binary``: 0/255 or 0/1 masks become background 0 / foreground 1;
- ``colour``: RGB colours are looked up in a class map; its ignore colours become ``ignore_index``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from searchseg.data.classmap import ClassMap
from searchseg.data.io import DataError, read_mask
from searchseg.palette import rgb_to_hex

CODECS = ("auto", "index", "binary", "colour")


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(H, W)`` int32 codes ``r << 16 | g << 8 | b``, for fast colour lookups."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def decode_colour(rgb: np.ndarray, class_map: ClassMap, path: Path) -> np.ndarray:
    """Map each pixel's colour to its class index; a colour missing from the class map is an error."""
    assert class_map.colors is not None
    codes, inverse = np.unique(pack_rgb(rgb), return_inverse=True)
    lookup = {code: index for index, code in enumerate(pack_rgb(np.array([class_map.colors], np.uint8))[0])}
    if class_map.ignore_colors:
        for code in pack_rgb(np.array([class_map.ignore_colors], np.uint8))[0]:
            lookup[code] = class_map.ignore_index
    unknown = [int(code) for code in codes if int(code) not in lookup]
    if unknown:
        counts = np.bincount(inverse.ravel(), minlength=len(codes))
        listed = ", ".join(
            f"{rgb_to_hex(((c >> 16) & 255, (c >> 8) & 255, c & 255))} ({counts[np.searchsorted(codes, c)]} px)"
            for c in unknown[:5]
        )
        raise DataError(
            f"mask {path} has colours missing from the class map: {listed}; add them as classes or under "
            "'ignore' (python -m searchseg.check DATA --infer-class-map lists every colour)"
        )
    table = np.array([lookup[int(code)] for code in codes], dtype=np.uint8)
    return table[inverse].reshape(rgb.shape[:2])


def decode_binary(values: np.ndarray, path: Path) -> np.ndarray:
    """0/1 or 0/255 (or anything thresholded at half its range, as JPEG-saved masks need) -> 0/1."""
    top = int(values.max()) if values.size else 0
    if top <= 1:
        return values.astype(np.uint8)
    return (values > (127 if top <= 255 else 32767)).astype(np.uint8)


def decode_index(values: np.ndarray, num_classes: int | None, ignore_index: int, path: Path) -> np.ndarray:
    """Validate class indices (values ``< num_classes`` or equal to ``ignore_index``) and cast to uint8."""
    if num_classes is not None:
        bad = np.unique(values[(values >= num_classes) & (values != ignore_index)])
        if bad.size:
            raise DataError(
                f"mask {path} has values {bad[:8].tolist()} outside classes 0..{num_classes - 1} "
                f"and ignore index {ignore_index}; fix the class map or the mask"
            )
    elif values.max(initial=0) > 255:
        raise DataError(f"mask {path} has values above 255; give a class map that states the classes")
    return values.astype(np.uint8)


def detect_codec(mask_paths: list[Path], class_map: ClassMap | None) -> str:
    """Pick a codec from the class map and the first few masks."""
    if class_map is not None and class_map.colors is not None:
        return "colour"
    sample = [read_mask(p, as_rgb=False) for p in mask_paths[:8]]  # raises for colour masks without a map
    values = np.unique(np.concatenate([np.unique(m) for m in sample]))
    if class_map is None and set(values.tolist()) <= {0, 255} | {0, 1} and not set(values.tolist()) >= {1, 255}:
        return "binary"
    return "index"
