"""Find (image, mask) pairs on disk.

Layouts, as real datasets ship them:

- ``folders``: an image folder and the mask folder beside it (any depth, any letter case): ``images/`` with
  ``masks/`` (or ``labels/``, ``gt/``...), or ``X/`` with ``X_labels/``, ``Xannot/``, ``X_masks/`` (CamVid,
  Massachusetts roads); e.g. ``Tile 3/images/x.jpg`` with ``Tile 3/masks/x.png``; the group of a pair is the
  folder holding both;
- ``suffix``: masks beside their images, named with a suffix (``Image_01L.jpg`` / ``Image_01L_1stHO.png``);
- ``csv``: a manifest with image and mask columns, paths relative to the CSV.

In both folder layouts file stems pair by a rule found in the names: the same stem, a mask suffix
(``0001TP_006690.png`` / ``0001TP_006690_L.png``), or a suffix on each side (``104_sat.jpg`` / ``104_mask.png``,
Cityscapes' ``_leftImg8bit`` / ``_gtFine_labelIds``); the rule pairing the most files wins.
"""

from __future__ import annotations

import csv
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from searchseg.errors import UserError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
MASK_EXTENSIONS = {".png", ".tif", ".tiff", ".bmp", ".gif", ".jpg", ".jpeg"}
IMAGE_DIR_NAMES = {"images", "image", "imgs", "img", "frames", "jpegimages", "rgb", "inputs", "leftimg8bit", "image_2"}
MASK_DIR_NAMES = {"masks", "mask", "labels", "label", "annotations", "gt", "groundtruth", "segmentationclass", "gtfine",
                  "semantic"}
MASK_DIR_ENDINGS = ("labels", "label", "masks", "mask", "annot", "annotations", "gt")  # train_labels, trainannot
MASK_WORDS = ("mask", "label", "lbl", "annot", "gt", "seg", "manual", "truth")  # which side of a pair is the mask
COLOUR_WORDS = ("color", "colour", "rgb")  # a mask kind drawn for people (Cityscapes' _gtFine_color)
CLASS_WORDS = ("label", "class", "semantic")  # a mask kind holding class ids (_gtFine_labelIds, not _instanceIds)
LAYOUTS = ("auto", "folders", "suffix", "csv")
SUFFIX_SEPARATORS = "_-."
MAX_MASKS_PER_KEY = 8  # a key more masks share is a common prefix (frame_00001...), not one image's name


@dataclass(frozen=True)
class StemRule:
    """An image's file stem is ``key + image_suffix``, its mask's ``key + mask_suffix``."""

    image_suffix: str = ""
    mask_suffix: str = ""

    def describe(self) -> str:
        if not self.image_suffix and not self.mask_suffix:
            return "by file stem"
        image = f"image stems ending in {self.image_suffix!r}" if self.image_suffix else "image stems"
        return f"{image} with mask stems ending in {self.mask_suffix!r}"

    def mask_likeness(self) -> tuple[bool, bool]:
        """Between a rule and its mirror (the same files, roles swapped): the one whose mask side reads as one."""
        worded = any(word in self.mask_suffix.lower() and word not in self.image_suffix.lower() for word in MASK_WORDS)
        return worded, not self.image_suffix

    def names_classes(self) -> tuple[bool, bool]:
        """Among a dataset's mask kinds, the one to suggest first: not a colour rendering, and named for classes."""
        suffix = self.mask_suffix.lower()
        return not any(word in suffix for word in COLOUR_WORDS), any(word in suffix for word in CLASS_WORDS)


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
    rule: str = ""  # how the file names paired, for the data check; empty for a manifest


def item_names(pairs: list[Pair], root: Path) -> list[str]:
    """Each image's path relative to the dataset root, without its extension (``Tile 1/images/image_part_001``):
    unique where file stems are not, since several folders may hold the same file name."""
    return [Path(os.path.relpath(pair.image, root)).with_suffix("").as_posix() for pair in pairs]


def _files(folder: Path, extensions: set[str], recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith("."))


def _group_name(folder: Path, root: Path) -> str:
    relative = folder.relative_to(root).as_posix()
    return relative if relative != "." else ""


def _stem_cuts(stem: str) -> list[tuple[str, str]]:
    """(key, suffix) for the whole stem and for every cut at a separator, the longest key first."""
    cuts = [cut for cut, char in enumerate(stem) if cut and char in SUFFIX_SEPARATORS]
    return [(stem, ""), *((stem[:cut], stem[cut:]) for cut in reversed(cuts))]


def _split_stem(stem: str, suffix: str) -> str | None:
    return stem[:len(stem) - len(suffix)] if stem.endswith(suffix) and len(stem) > len(suffix) else None


def _rule_counts(images: list[tuple[Path, Path]], masks: list[tuple[Path, Path]], same_folder: bool) -> Counter:
    """How many images each stem rule pairs; files come as (scope, path), and only files of one scope pair."""
    suffixes_by_key: dict[tuple[Path, str], set[str]] = defaultdict(set)
    for scope, path in masks:
        for key, suffix in _stem_cuts(path.stem):
            suffixes_by_key[(scope, key)].add(suffix)
    counts: Counter[StemRule] = Counter()
    for scope, path in images:
        for key, image_suffix in _stem_cuts(path.stem):  # the longest key naming a mask is this image's key
            mask_suffixes = suffixes_by_key.get((scope, key), set())
            rules = [StemRule(image_suffix, mask_suffix) for mask_suffix in mask_suffixes
                     if not (same_folder and mask_suffix == image_suffix)]  # the same file, or a twin stem
            if rules:
                if len(mask_suffixes) <= MAX_MASKS_PER_KEY:
                    counts.update(rules)
                break
    if same_folder:  # (A, B) and (B, A) pair the same files: keep the one whose mask side reads as the mask
        for rule in list(counts):
            mirror = StemRule(rule.mask_suffix, rule.image_suffix)
            if mirror in counts and mirror.mask_likeness() > rule.mask_likeness():
                del counts[rule]
    return counts


def _choose_rule(counts: Counter, mask_suffix: str | None, root: Path) -> StemRule | None:
    """The rule pairing the most images (``mask_suffix`` given: among those with that mask suffix); several mask
    suffixes pairing about as many (two graders' annotations, colour and id masks) are the user's choice."""
    if mask_suffix is not None:
        counts = Counter({rule: n for rule, n in counts.items() if rule.mask_suffix == mask_suffix})
    if not counts:
        return None
    ranked = sorted(sorted(counts, key=lambda rule: rule.mask_suffix),  # ties in name order
                    key=lambda rule: (counts[rule], rule.mask_likeness(), rule.names_classes()), reverse=True)
    best = ranked[0]
    rivals = list(dict.fromkeys(rule.mask_suffix for rule in ranked
                                if rule.image_suffix == best.image_suffix and counts[rule] >= counts[best] / 2))
    if mask_suffix is None and len(rivals) > 1:
        raise UserError(f"{root}: masks with several suffixes ({', '.join(rivals[:5])}); "
                        f"choose one with --set mask_suffix={best.mask_suffix} (searchseg check: --mask-suffix "
                        f"{best.mask_suffix})")
    return best


def _by_key(files: list[tuple[Path, Path]], suffix: str) -> tuple[dict[tuple[Path, str], list[Path]], list[Path]]:
    """Files by (scope, stem without ``suffix``), and the files whose stem does not end in it."""
    keyed: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    outside = []
    for scope, path in files:
        key = _split_stem(path.stem, suffix) if suffix else path.stem
        if key is None:
            outside.append(path)
        else:
            keyed[(scope, key)].append(path)
    return keyed, outside


def _pair_by_rule(images: list[tuple[Path, Path]], masks: list[tuple[Path, Path]], rule: StemRule, root: Path,
                  result: Pairing, group_of: Callable[[Path], Path]) -> None:
    """Add the pairs ``rule`` makes, scope by scope; an image outside the rule is an image without a mask. A pair's
    group is the folder ``group_of`` its scope."""
    masks_by_key, _ = _by_key(masks, rule.mask_suffix)
    images_by_key, result.images_without_masks = _by_key(images, rule.image_suffix)
    for keyed in (images_by_key, masks_by_key):
        result.duplicate_stems += [paths for paths in keyed.values() if len(paths) > 1]
    for (scope, key), paths in sorted(images_by_key.items()):
        mask = masks_by_key.get((scope, key), [])
        if len(paths) > 1:  # reported as a duplicate name
            continue
        if not mask:
            result.images_without_masks.append(paths[0])
        elif len(mask) == 1:
            result.pairs.append(Pair(paths[0], mask[0], _group_name(group_of(scope), root)))
    result.masks_without_images += sorted(paths[0] for key, paths in masks_by_key.items()
                                          if len(paths) == 1 and key not in images_by_key)
    result.images_without_masks.sort()
    result.rule = rule.describe()


def _mask_folder_names(image_dir: Path) -> set[str]:
    """The lower-case names a mask folder beside ``image_dir`` may have (``masks``; ``train_labels`` for ``train``)."""
    image_name = image_dir.name.lower()
    if image_name in IMAGE_DIR_NAMES:
        return MASK_DIR_NAMES
    return {f"{image_name}{separator}{ending}" for ending in MASK_DIR_ENDINGS for separator in ("", "_", "-")}


def _folder_pairs(root: Path) -> list[tuple[Path, Path]]:
    """(image folder, mask folder) for every image folder with a mask folder beside it, at every depth, except
    those inside another pair's folders (their files are that pair's)."""
    folders = sorted(d for d in root.rglob("*") if d.is_dir())  # a folder sorts after the folders above it
    # sibling folders by lower-case name: a look-up per folder, not a listing of its parent (per-patient folders)
    by_name: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    for folder in folders:
        by_name[(folder.parent, folder.name.lower())].append(folder)
    found: list[tuple[Path, Path]] = []
    taken: set[Path] = set()  # the folders of the pairs found: a look-up per ancestor, not a scan of every pair
    for folder in folders:
        if folder in taken or not taken.isdisjoint(folder.parents):
            continue
        masks = sorted(mask for name in _mask_folder_names(folder) for mask in by_name.get((folder.parent, name), []))
        if masks:
            found.append((folder, masks[0]))
            taken.update(found[-1])
    return found


def has_folder_layout(root: Path) -> bool:
    return bool(_folder_pairs(root))


def find_folder_pairs(root: Path, mask_suffix: str | None = None) -> Pairing:
    """Pair every image folder with the mask folder beside it, sub-folder by sub-folder (ADE20K's
    ``images/training/`` with ``annotations/training/``, Cityscapes' ``leftImg8bit/train/aachen/`` with
    ``gtFine/train/aachen/``). The group of a pair is the folder holding both, followed by the sub-folder path
    (``Tile 1``, ``train/aachen``)."""
    result = Pairing(pairs=[])
    images, masks = [], []
    # a file's scope is the image folder it lies in (a mask: the one it would lie in); a scope's group folder
    groups: dict[Path, Path] = {}
    for image_dir, mask_dir in _folder_pairs(root):
        for path in _files(image_dir, IMAGE_EXTENSIONS, recursive=True):
            images.append((path.parent, path))
            groups[path.parent] = image_dir.parent / path.parent.relative_to(image_dir)
        masks += [(image_dir / path.parent.relative_to(mask_dir), path)
                  for path in _files(mask_dir, MASK_EXTENSIONS, recursive=True)]
    rule = _choose_rule(_rule_counts(images, masks, same_folder=False), mask_suffix, root) or StemRule(
        "", mask_suffix or "")
    _pair_by_rule(images, masks, rule, root, result, group_of=groups.__getitem__)
    return result


def find_suffix_pairs(root: Path, mask_suffix: str | None) -> Pairing:
    """Pair files of one folder whose stems differ by a suffix (``X.jpg`` with ``X_mask.png``, ``X_sat.jpg`` with
    ``X_mask.png``); the rule is detected when one pairs clearly more files than any other."""
    files = _files(root, IMAGE_EXTENSIONS | MASK_EXTENSIONS, recursive=True)
    images = [(p.parent, p) for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    masks = [(p.parent, p) for p in files if p.suffix.lower() in MASK_EXTENSIONS]
    counts = _rule_counts(images, masks, same_folder=True)
    rule = _choose_rule(counts, mask_suffix, root)
    if rule is None:
        raise UserError(
            f"{root}: found neither an images/ folder with a masks/ (or labels/) folder beside it nor masks named "
            "like IMAGE_mask.png beside their images; see docs/data.md for the layouts"
            if mask_suffix is None else f"{root}: no file stem ends in mask_suffix {mask_suffix!r} after an image's")
    # the mask side of any rule as common as this one is a mask, not an image (a second grader's annotation)
    mask_sides = {other.mask_suffix for other, n in counts.items()
                  if other.mask_suffix and other.image_suffix == rule.image_suffix and n >= counts[rule] / 2}
    images = [(scope, p) for scope, p in images if not any(p.stem.endswith(side) for side in mask_sides)
              or (rule.image_suffix and p.stem.endswith(rule.image_suffix))]
    masks = [(scope, p) for scope, p in masks if rule.mask_suffix and p.stem.endswith(rule.mask_suffix)]
    result = Pairing(pairs=[])
    _pair_by_rule(images, masks, rule, root, result, group_of=lambda scope: scope)
    return result


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
    if layout == "folders" or (layout == "auto" and has_folder_layout(path)):
        return find_folder_pairs(path, mask_suffix)
    return find_suffix_pairs(path, mask_suffix)
