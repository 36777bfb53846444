"""Find (image, mask) pairs on disk.

Layouts, as real datasets ship them:

- ``folders``: ``images/`` and ``masks/`` sub-folders (any depth, any letter case) paired by file stem,
  e.g. ``Tile 3/images/x.jpg`` with ``Tile 3/masks/x.png``; the group of a pair is the folder holding both;
- ``suffix``: masks beside their images, named with a suffix (``Image_01L.jpg`` / ``Image_01L_1stHO.png``);
- ``csv``: a manifest with image and mask columns, paths relative to the CSV.
"""

from __future__ import annotations

import csv
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from searchseg.errors import UserError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
MASK_EXTENSIONS = {".png", ".tif", ".tiff", ".bmp", ".gif", ".jpg", ".jpeg"}
IMAGE_DIR_NAMES = {"images", "image", "imgs", "img"}
MASK_DIR_NAMES = {"masks", "mask", "labels", "label", "annotations", "gt"}
LAYOUTS = ("auto", "folders", "suffix", "csv")
SUFFIX_SEPARATORS = "_-."


@dataclass(frozen=True)
class Pair:
    image: Path
    mask: Path
    group: str


@dataclass
class Pairing:
    """Pairs found, plus what could not be paired (the data check lists these)."""

    pairs: list[Pair]
    images_without_masks: list[Path] = field(default_factory=list)
    masks_without_images: list[Path] = field(default_factory=list)
    duplicate_stems: list[list[Path]] = field(default_factory=list)


def item_names(pairs: list[Pair], root: Path) -> list[str]:
    """Each image's path relative to the dataset root, without its extension (``Tile 1/images/image_part_001``):
    unique where file stems are not, since several folders may hold the same file name."""
    return [Path(os.path.relpath(pair.image, root)).with_suffix("").as_posix() for pair in pairs]


def _files(folder: Path, extensions: set[str], recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith("."))


def _by_stem(files: list[Path], duplicates: list[list[Path]]) -> dict[str, Path]:
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        groups[path.stem].append(path)
    for paths in groups.values():
        if len(paths) > 1:
            duplicates.append(paths)
    return {stem: paths[0] for stem, paths in groups.items() if len(paths) == 1}


def _group_name(folder: Path, root: Path) -> str:
    relative = folder.relative_to(root).as_posix()
    return relative if relative != "." else ""


def find_folder_pairs(root: Path) -> Pairing:
    """Pair ``images/`` with the ``masks/`` sub-folder beside it, by stem, at every depth."""
    result = Pairing(pairs=[])
    image_dirs = sorted(
        d for d in [root, *root.rglob("*")] if d.is_dir() and d.name.lower() in IMAGE_DIR_NAMES
    )
    for image_dir in image_dirs:
        mask_dirs = [d for d in image_dir.parent.iterdir() if d.is_dir() and d.name.lower() in MASK_DIR_NAMES]
        if not mask_dirs:
            continue
        images = _by_stem(_files(image_dir, IMAGE_EXTENSIONS, recursive=False), result.duplicate_stems)
        masks = _by_stem(_files(mask_dirs[0], MASK_EXTENSIONS, recursive=False), result.duplicate_stems)
        group = _group_name(image_dir.parent, root)
        for stem in sorted(images.keys() & masks.keys()):
            result.pairs.append(Pair(images[stem], masks[stem], group))
        result.images_without_masks += [images[s] for s in sorted(images.keys() - masks.keys())]
        result.masks_without_images += [masks[s] for s in sorted(masks.keys() - images.keys())]
    return result


def has_folder_layout(root: Path) -> bool:
    return any(
        d.is_dir() and d.name.lower() in IMAGE_DIR_NAMES and any(
            s.is_dir() and s.name.lower() in MASK_DIR_NAMES for s in d.parent.iterdir()
        )
        for d in [root, *root.rglob("*")]
    )


def detect_mask_suffixes(files: list[Path]) -> Counter[str]:
    """Suffixes ``S`` such that ``stem + S`` names another file in the same folder (``_1stHO``, ``_mask``)."""
    stems = {(p.parent, p.stem) for p in files if p.suffix.lower() in IMAGE_EXTENSIONS}
    suffixes: Counter[str] = Counter()
    for path in files:
        if path.suffix.lower() not in MASK_EXTENSIONS:
            continue
        for cut, char in enumerate(path.stem):
            if cut and char in SUFFIX_SEPARATORS and (path.parent, path.stem[:cut]) in stems:
                suffixes[path.stem[cut:]] += 1
    return suffixes


def find_suffix_pairs(root: Path, mask_suffix: str | None) -> Pairing:
    """Pair ``X.ext`` with ``X<mask_suffix>.png`` in the same folder; detect the suffix when it is unique."""
    files = _files(root, IMAGE_EXTENSIONS | MASK_EXTENSIONS, recursive=True)
    suffixes = detect_mask_suffixes(files)
    if mask_suffix is None:
        if not suffixes:
            raise UserError(
                f"{root}: found neither images/ and masks/ folders nor masks named like IMAGE_mask.png beside "
                "their images; see docs/data.md for the layouts"
            )
        top = suffixes.most_common()
        if len(top) > 1 and top[1][1] >= top[0][1] / 2:
            listed = ", ".join(s for s, _ in top[:5])
            raise UserError(
                f"{root}: masks with several suffixes beside the images ({listed}); "
                f"choose one with --set mask_suffix={top[0][0]}"
            )
        mask_suffix = top[0][0]
    result = Pairing(pairs=[])
    mask_like = {p for p in files if any(p.stem.endswith(s) for s in suffixes)}
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS and p not in mask_like]
    masks = {(p.parent, p.stem[: -len(mask_suffix)]): p for p in files if p.stem.endswith(mask_suffix)}
    image_keys = _by_stem_per_folder(images, result.duplicate_stems)
    for key, image in sorted(image_keys.items()):
        if key in masks:
            result.pairs.append(Pair(image, masks[key], _group_name(image.parent, root)))
        else:
            result.images_without_masks.append(image)
    result.masks_without_images = sorted(m for k, m in masks.items() if k not in image_keys)
    return result


def _by_stem_per_folder(files: list[Path], duplicates: list[list[Path]]) -> dict[tuple[Path, str], Path]:
    groups: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    for path in files:
        groups[(path.parent, path.stem)].append(path)
    duplicates += [paths for paths in groups.values() if len(paths) > 1]
    return {key: paths[0] for key, paths in groups.items() if len(paths) == 1}


def _pick_column(columns: list[str], wanted: tuple[str, ...], csv_path: Path, role: str) -> str:
    for column in columns:
        if column.strip().lower() in wanted:
            return column
    raise UserError(f"{csv_path}: no {role} column (looked for {', '.join(wanted)}); columns are {columns}")


def find_csv_pairs(csv_path: Path) -> Pairing:
    """Pairs from a manifest; relative paths are taken from the CSV's folder; a 'group' column is optional."""
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        image_col = _pick_column(columns, ("image", "images", "img", "image_path"), csv_path, "image")
        mask_col = _pick_column(columns, ("mask", "masks", "label", "mask_path"), csv_path, "mask")
        group_col = next((c for c in columns if c.strip().lower() == "group"), None)
        rows = list(reader)
    result = Pairing(pairs=[])
    first_line: dict[Path, int] = {}
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        image, mask = csv_path.parent / row[image_col].strip(), csv_path.parent / row[mask_col].strip()
        earlier = first_line.setdefault(image.resolve(), line)
        if earlier != line:  # the same image twice could land in train and in test
            raise UserError(f"{csv_path}: line {line} repeats the image {row[image_col].strip()} of line {earlier}; "
                            "list each image once")
        if not image.is_file():
            result.masks_without_images.append(mask)
        elif not mask.is_file():
            result.images_without_masks.append(image)
        else:
            result.pairs.append(Pair(image, mask, row[group_col] if group_col else ""))
    return result


def find_pairs(path: Path, layout: str = "auto", mask_suffix: str | None = None) -> Pairing:
    """Find pairs under ``path`` (a folder, or a CSV manifest) with the given or detected layout."""
    if layout not in LAYOUTS:
        raise UserError(f"unknown layout {layout!r}; valid layouts: {', '.join(LAYOUTS)}")
    if not path.exists():
        raise UserError(f"data path {path} does not exist; pass a folder, a CSV manifest or a dataset YAML")
    if layout == "csv" or (layout == "auto" and path.suffix.lower() == ".csv"):
        return find_csv_pairs(path)
    if not path.is_dir():
        raise UserError(f"data path {path} is not a folder, a .csv manifest or a dataset .yaml")
    if layout == "folders" or (layout == "auto" and mask_suffix is None and has_folder_layout(path)):
        return find_folder_pairs(path)
    return find_suffix_pairs(path, mask_suffix)
