"""Deterministic train/val/test splits, optionally keeping groups (e.g. crops of one tile) together."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from searchseg.data.pairing import IMAGE_EXTENSIONS
from searchseg.errors import UserError

SPLITS = ("train", "val", "test")
SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}


def split_from_folders(names: list[str]) -> dict[str, np.ndarray] | None:
    """The dataset's own split when every image lies under a folder named for one (``train/``, ``val/``,
    ``test/``; ``train/images/x.png`` or ``train/x.png``) and all three are there: the test images its authors held
    out stay held out (CamVid, Massachusetts roads). ``names`` are the images' paths below the dataset root."""
    found = []
    for name in names:
        folders = [SPLIT_FOLDERS[part.lower()] for part in name.split("/")[:-1] if part.lower() in SPLIT_FOLDERS]
        if not folders:
            return None
        found.append(folders[-1])
    if set(found) != set(SPLITS):
        return None
    return {split: np.array([i for i, where in enumerate(found) if where == split], dtype=np.int64)
            for split in SPLITS}


def split_by_ratio(
    groups: list[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Assign items to train/val/test from fractions and a seed.

    Items sharing a non-empty group string land in one split. Groups are shuffled with the
    seed, then test and val are filled to their share of items in that order.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, sorted index arrays.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise UserError(f"{name}={value} must be in [0, 1)")
    if val_fraction + test_fraction >= 1.0:
        raise UserError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction:.2f} leaves no training data; "
            "make them sum to less than 1"
        )
    keys = [g if g else f"#item{i}" for i, g in enumerate(groups)]
    unique = sorted(set(keys))
    wanted = {"test": test_fraction, "val": val_fraction}
    needed = 1 + sum(1 for f in wanted.values() if f > 0)
    if len(unique) < needed:
        what = "groups" if len(unique) < len(keys) else "images"
        raise UserError(
            f"{len(unique)} {what} cannot fill train/val/test with val_fraction={val_fraction} and "
            f"test_fraction={test_fraction}; add data or set those fractions to 0"
        )
    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    sizes = {key: keys.count(key) for key in unique}
    requested = [split for split, fraction in wanted.items() if fraction > 0]
    assignment: dict[str, str] = {}
    cursor = 0
    for position, split in enumerate(requested):
        target = wanted[split] * len(keys)
        reserve = len(requested) - position  # one group each for the splits still to fill, and train
        taken = 0
        # Take at least one group, then more while the next one brings the share closer to its target.
        while cursor < len(order) - reserve and (taken == 0 or taken + sizes[order[cursor]] / 2 <= target):
            assignment[order[cursor]] = split
            taken += sizes[order[cursor]]
            cursor += 1
    for key in unique:
        assignment.setdefault(key, "train")
    return {
        split: np.array([i for i, key in enumerate(keys) if assignment[key] == split], dtype=np.int64)
        for split in SPLITS
    }


def _split_file_positions(names: list[str]) -> dict[str, int | None]:
    """What a split file line may say for each item: its relative name, or its file stem when no other item
    shares that stem (``None`` marks a shared stem)."""
    position: dict[str, int | None] = {}
    for i, name in enumerate(names):
        stem = name.rsplit("/", 1)[-1]
        position[stem] = None if stem in position else i
    position.update({name: i for i, name in enumerate(names)})
    return position


def _without_image_extension(line: str) -> str:
    path = Path(line.replace("\\", "/").removeprefix("./"))
    return (path.with_suffix("") if path.suffix.lower() in IMAGE_EXTENSIONS else path).as_posix()


def split_from_files(names: list[str], split_files: dict[str, Path]) -> dict[str, np.ndarray]:
    """Splits listed in text files, one image per line: its path relative to the dataset root, or just its file
    name when that is unique (extensions optional); unlisted items are left out."""
    position = _split_file_positions(names)
    result = {}
    for split in SPLITS:
        path = split_files.get(split)
        if path is None:
            result[split] = np.array([], dtype=np.int64)
            continue
        if not path.is_file():
            raise UserError(f"split file {path} for '{split}' does not exist")
        listed = [_without_image_extension(line.strip()) for line in path.read_text().splitlines() if line.strip()]
        missing = [n for n in listed if n not in position]
        if missing:
            raise UserError(f"split file {path} names {len(missing)} images not in the dataset, e.g. {missing[0]!r}")
        shared = [n for n in listed if position[n] is None]
        if shared:
            raise UserError(f"split file {path}: {shared[0]!r} is the file name of several images; write their "
                            "paths relative to the dataset root instead, e.g. "
                            f"{next(n for n in names if n.endswith('/' + shared[0]))!r}")
        result[split] = np.array(sorted(p for n in listed if (p := position[n]) is not None), dtype=np.int64)
    if not result["train"].size:
        raise UserError(f"split files {sorted(str(p) for p in split_files.values())} give no training images")
    return result
