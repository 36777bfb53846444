"""Reading images and masks from disk into numpy arrays, whatever their mode or bit depth."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from searchseg.errors import UserError


class DataError(UserError):
    """A file of the dataset cannot be used as it is."""


def _too_large(path: Path, role: str, error: Image.DecompressionBombError) -> DataError:
    declared = re.search(r"\((\d+) pixels\)", str(error))
    pixels = f"{int(declared[1]):,}" if declared else "too many"
    return DataError(f"{role} {path} declares {pixels} pixels, more than the {2 * (Image.MAX_IMAGE_PIXELS or 0):,} "
                     "searchseg decodes; tile it into smaller images first")


def _refuse_decompression_bombs(path: Path) -> None:
    """Read only the header first: a few-KB PNG can declare 30000 x 30000 pixels (2.7 GB decoded). Pillow refuses
    more than twice its ``MAX_IMAGE_PIXELS`` (179 million pixels, e.g. 13000 x 13000) on opening."""
    try:
        with Image.open(path):
            pass
    except Image.DecompressionBombError as err:
        raise _too_large(path, "image", err) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        pass  # not Pillow's format: the decoder below reports it


def read_image(path: Path, in_channels: int = 3) -> np.ndarray:
    """Decode an image to ``(H, W, in_channels)`` uint8 RGB (or grey).

    Greyscale is repeated to 3 channels unless ``in_channels == 1``; alpha is dropped;
    16-bit and float images are stretched per image from their min..max to 0..255, so
    12-bit data stored in 16-bit containers is not left nearly black.
    """
    _refuse_decompression_bombs(path)
    raw = np.fromfile(path, dtype=np.uint8)  # not cv2.imread: it fails on non-ASCII paths on some systems
    image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    if image is None:
        raise DataError(f"cannot decode image {path} (empty, corrupt or unsupported); run python -m searchseg.check")
    if image.dtype != np.uint8:
        image = _stretch_to_uint8(image)
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    elif image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3:
        image = image[:, :, 0]
    if in_channels == 1:
        return (cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image)[:, :, None]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return image


def _stretch_to_uint8(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float32)
    low, high = float(image.min()), float(image.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    return ((image - low) * scale).round().astype(np.uint8)


def read_mask(path: Path, as_rgb: bool) -> np.ndarray:
    """Read a mask exactly, without colour conversion of class indices.

    Returns ``(H, W, 3)`` uint8 RGB when ``as_rgb`` (palette and RGBA included), else ``(H, W)``
    integer values: palette indices for palette PNGs (as in Pascal VOC), 0/1 for 1-bit PNGs,
    the raw values for 8- and 16-bit greyscale, and the shared value of RGB masks whose three
    channels are equal.
    """
    try:
        with Image.open(path) as handle:
            handle.load()
            image = handle
            if as_rgb:
                return np.asarray(image.convert("RGB"))
            if image.mode in ("RGB", "RGBA"):
                rgb = np.asarray(image.convert("RGB"))
                if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
                    raise DataError(
                        f"mask {path} is a colour image; give a class map with colours (--class-map FILE), "
                        "or draft one with python -m searchseg.check DATA --infer-class-map"
                    )
                return rgb[..., 0]
            if image.mode == "1":
                return np.asarray(image, dtype=np.uint8)
            if image.mode in ("LA", "PA"):
                return np.asarray(image)[..., 0]
            return np.asarray(image)
    except Image.DecompressionBombError as err:
        raise _too_large(path, "mask", err) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise DataError(f"cannot decode mask {path} ({err}); run python -m searchseg.check") from None


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size = (height, width)``: area interpolation when shrinking, bilinear when enlarging."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    shrinking = image.shape[0] * image.shape[1] > height * width
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return resized[:, :, None] if resized.ndim == 2 and image.ndim == 3 else resized


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a mask (class indices or colours) with nearest neighbour, which never invents values."""
    height, width = size
    if mask.shape[:2] == (height, width):
        return mask
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
