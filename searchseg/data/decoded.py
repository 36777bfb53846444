"""A dataset decoded once into arrays, in memory or in ``.npy`` files that every process maps instead of copying.

Decoding fills preallocated arrays image by image, so the decoded dataset exists once, never also as a list of
images. Written to a folder (an experiment's ``decoded/``), the arrays are memory-mapped: the trials on a node share
the operating system's page cache instead of each holding a copy, a dataset larger than memory is paged in as it is
read, and a resumed run opens the files again instead of decoding (nnU-Net's preprocessed ``.npy`` files, opened
with ``mmap_mode="r"``, work the same way). The folder holds only arrays and a JSON key: nothing in it runs code.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from searchseg.data.pairing import Pair
from searchseg.io_utils import atomic_write_text
from searchseg.machine import available_cpus

FORMAT_VERSION = 1
KEY_FILE = "decoded.json"  # written last: a folder without it (an interrupted decode) is decoded again
IMAGES_FILE = "images.npy"
MASKS_FILE = "masks.npy"
SIZES_FILE = "original_sizes.npy"
COUNTS_FILE = "pixel_counts.npy"
# at most this many decoded pairs wait for their turn to be written (in order): what decoding holds besides the arrays
IN_FLIGHT_PER_WORKER = 4

Decode = Callable[[Pair], tuple[np.ndarray, np.ndarray, tuple[int, int]]]


@dataclass
class DecodedArrays:
    images: np.ndarray  # (N, H, W, C) uint8
    masks: np.ndarray  # (N, H, W) uint8
    original_sizes: np.ndarray  # (N, 2) int64: each image's height and width before resizing
    pixel_counts: np.ndarray  # (N, 256) int64: pixels of each mask value in each image, ignored value included

    def largest_label(self, ignore_index: int) -> int:
        """The largest class index in the masks (ignored pixels excluded)."""
        present = self.pixel_counts.sum(axis=0) > 0
        present[ignore_index] = False
        return int(np.flatnonzero(present).max(initial=0))


def files_digest(pairs: Sequence[Pair], *others: Path) -> str:
    """What changes when any image or mask file (or one of ``others``, e.g. the class map) is replaced, added or
    removed: names, sizes, modification times."""
    digest = hashlib.sha1()
    for path in [*(path for pair in pairs for path in (pair.image, pair.mask)), *others]:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def decode_pairs(pairs: Sequence[Pair], decode: Decode, size: tuple[int, int], channels: int,
                 into: Path | None = None, key: dict | None = None, progress: bool = True) -> DecodedArrays:
    """Decode every pair with ``decode`` (threads: OpenCV and PIL release the GIL) into arrays allocated once,
    in memory, or in ``into`` as memory-mapped files recorded under ``key`` for ``open_decoded``."""
    count = len(pairs)
    if into is None:
        images = np.empty((count, *size, channels), np.uint8)
        masks = np.empty((count, *size), np.uint8)
    else:
        into.mkdir(parents=True, exist_ok=True)
        (into / KEY_FILE).unlink(missing_ok=True)  # the files below are about to change
        # written beside the old files and renamed over them: a process still mapping those keeps what it read
        images = np.lib.format.open_memmap(_part(into / IMAGES_FILE), "w+", np.uint8, (count, *size, channels))
        masks = np.lib.format.open_memmap(_part(into / MASKS_FILE), "w+", np.uint8, (count, *size))
    original_sizes = np.zeros((count, 2), np.int64)
    counts = np.zeros((count, 256), np.int64)
    workers = min(8, available_cpus())
    with ThreadPoolExecutor(workers) as pool, tqdm(total=count, desc=f"decoding {count} pairs", unit="img",
                                                   disable=not progress, leave=False) as bar:
        window = workers * IN_FLIGHT_PER_WORKER
        pending = deque(pool.submit(decode, pair) for pair in pairs[:window])
        for index in range(count):
            image, mask, original = pending.popleft().result()
            if index + window < count:
                pending.append(pool.submit(decode, pairs[index + window]))
            images[index], masks[index], original_sizes[index] = image, mask, original
            counts[index] = mask_value_counts(mask)
            bar.update()
    if into is None:
        return DecodedArrays(images, masks, original_sizes, counts)
    del images, masks  # a memory map is flushed to its file when it goes
    for name in (IMAGES_FILE, MASKS_FILE):
        os.replace(_part(into / name), into / name)
    np.save(into / SIZES_FILE, original_sizes)
    np.save(into / COUNTS_FILE, counts)
    atomic_write_text(into / KEY_FILE, json.dumps({**(key or {}), "format": FORMAT_VERSION}, indent=1,
                                                  sort_keys=True))
    decoded = open_decoded(into, key or {})
    assert decoded is not None, "arrays just written must open"
    return decoded


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def open_decoded(folder: Path, key: dict) -> DecodedArrays | None:
    """The arrays ``decode_pairs`` wrote to ``folder`` under ``key``, memory-mapped read-only; ``None`` when the
    folder holds none, an interrupted decode, or arrays decoded from other files or with other settings."""
    try:
        saved = json.loads((folder / KEY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT_VERSION or \
            {name: saved.get(name) for name in key} != key:
        return None
    try:
        images, masks = mapped_arrays(folder)
        original_sizes = np.load(folder / SIZES_FILE, allow_pickle=False)
        counts = np.load(folder / COUNTS_FILE, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if images.ndim != 4 or masks.shape != images.shape[:3] or original_sizes.shape != (len(images), 2) or \
            counts.shape != (len(images), 256):
        return None
    return DecodedArrays(images, masks, original_sizes, counts)


def mask_value_counts(mask: np.ndarray) -> np.ndarray:
    """Pixels of each value 0-255 in one uint8 mask: its class statistics, counted when it is decoded."""
    return np.bincount(mask.ravel(), minlength=256)


def mapped_arrays(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The images and masks in ``folder``, memory-mapped read-only."""
    return (np.load(folder / IMAGES_FILE, mmap_mode="r", allow_pickle=False),
            np.load(folder / MASKS_FILE, mmap_mode="r", allow_pickle=False))


def mapped_folder(images: np.ndarray, masks: np.ndarray) -> Path | None:
    """The folder whose files ``images`` and ``masks`` map, whole and read-only (what ``open_decoded`` returns);
    ``None`` for arrays in memory, or views of part of a file."""
    image_file, mask_file = _mapped_file(images), _mapped_file(masks)
    if image_file is None or mask_file is None:
        return None
    folder = image_file.parent
    return folder if (image_file, mask_file) == (folder / IMAGES_FILE, folder / MASKS_FILE) else None


def _mapped_file(array: np.ndarray) -> Path | None:
    if isinstance(array, np.memmap) and array.mode == "r" and array.filename is not None \
            and array.offset + array.nbytes == os.path.getsize(array.filename):
        return Path(array.filename)
    return None
