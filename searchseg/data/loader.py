"""Decode and resize a dataset ONCE into uint8 arrays shared by every epoch (and every trial on a node)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from searchseg.data.classmap import ClassMap, load_class_map
from searchseg.data.codecs import decode_binary, decode_colour, decode_index, detect_codec
from searchseg.data.decoded import (
    decode_pairs,
    files_digest,
    mapped_arrays,
    mapped_folder,
    mask_value_counts,
    open_decoded,
)
from searchseg.data.io import DataError, read_image, read_mask, resize_image, resize_mask
from searchseg.data.pairing import Pair, find_pairs, item_names
from searchseg.data.spec import DatasetSpec
from searchseg.data.split import SPLIT_FOLDERS, split_by_ratio, split_from_files, split_from_folders


@dataclass
class SegmentationData:
    """A decoded dataset at its working size.

    Shape:
        images: ``(N, H, W, C)`` uint8; masks: ``(N, H, W)`` uint8 class indices, ``ignore_index`` where unlabelled.
    """

    images: np.ndarray
    masks: np.ndarray
    names: list[str]
    groups: list[str]
    class_names: tuple[str, ...]
    ignore_index: int
    binary: bool
    splits: dict[str, np.ndarray]
    source: str
    split_by: str = "fractions"  # or "split files", or "the dataset's train/val/test folders"
    class_colors: tuple[tuple[int, int, int], ...] | None = None
    # the config keys besides data and size that decode it again (class map, split...); load_data fills them
    decoded_with: dict = field(default_factory=dict)
    # (N, 2) height and width of each image before resizing; None when the arrays came decoded at their size
    original_sizes: np.ndarray | None = None
    # (N, 256) pixels of each mask value per image, counted as the masks were decoded (or on first use); not
    # carried over by dataclasses.replace, which may give other masks
    pixel_counts: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    # the arrays' hash so far, read once (10,000 images at 512 px are 10 GB); not carried over by replace or pickle
    _arrays_hash: Any = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        """Arrays mapped from decoded files travel as their folder, not their bytes: through Ray's object store a
        few bytes, and every process that unpickles them maps the same files (one copy per node, in the page
        cache). Arrays in memory travel as themselves."""
        state = {**self.__dict__, "_arrays_hash": None}
        folder = mapped_folder(self.images, self.masks)
        if folder is not None:
            state.update(images=None, masks=None, _mapped_from=str(folder))
        return state

    def __setstate__(self, state: dict) -> None:
        folder = state.pop("_mapped_from", None)
        if folder is not None:
            try:
                state["images"], state["masks"] = mapped_arrays(Path(folder))
            except OSError as error:
                raise DataError(f"the decoded data in {folder} cannot be read on this node ({error.strerror}); "
                                "give --storage a folder every node mounts") from None
        self.__dict__.update(state)

    @property
    def median_original_size(self) -> tuple[int, int]:
        """The median (height, width) of the images before they were resized to the working size (the working size
        when they came decoded): the scale the model learns, which prediction on new images keeps to."""
        if self.original_sizes is None or not len(self.original_sizes):
            return (int(self.images.shape[1]), int(self.images.shape[2]))
        height, width = np.median(self.original_sizes, axis=0)
        return (round(float(height)), round(float(width)))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def independent_groups(self, split: str) -> list[str]:
        """A group per image of ``split``, images of one group not independent of each other: the folder the
        split kept together (``group_by: folder``), else the image itself. What validation resampling draws."""
        by_folder = self.decoded_with.get("group_by") == "folder"
        return [self.groups[i] if by_folder and self.groups[i] else self.names[i] for i in self.splits[split]]

    def independent_group_count(self, split: str) -> int:
        """How many independent groups ``split`` has: what decides whether validation can rank trials."""
        return len(set(self.independent_groups(split)))

    @property
    def fingerprint(self) -> str:
        """Hash of the decoded arrays and split: equal fingerprints mean trials saw identical data."""
        if self._arrays_hash is None:
            self._arrays_hash = hashlib.sha1()
            for array in (self.images, self.masks):
                for start in range(0, len(array), 256):  # a mapped file is read in pieces, not copied whole
                    self._arrays_hash.update(np.ascontiguousarray(array[start:start + 256]).data)
        digest = self._arrays_hash.copy()
        for split in sorted(self.splits):
            digest.update(np.ascontiguousarray(self.splits[split]).data)
        return digest.hexdigest()[:16]

    def class_frequencies(self, split: str = "train") -> np.ndarray:
        """Fraction of labelled pixels of each class in a split (ignored pixels excluded), summed from the
        per-image counts made once (when decoding): no process reads the masks for it again (10,000 masks at
        512 px are 2.6 GB)."""
        if self.pixel_counts is None:
            self.pixel_counts = np.stack([mask_value_counts(mask) for mask in self.masks]) if len(self.masks) \
                else np.zeros((0, 256), np.int64)
        labelled = self.pixel_counts[self.splits[split]].sum(axis=0)[: self.num_classes].astype(np.float64)
        return labelled / max(labelled.sum(), 1.0)


@dataclass(frozen=True)
class MaskDecoding:
    """How a dataset's masks become class indices: the codec found for them and the class map's terms."""

    codec: str
    class_map: ClassMap | None
    num_classes: int | None
    ignore_index: int

    @classmethod
    def for_pairs(cls, spec: DatasetSpec, pairs: list[Pair]) -> MaskDecoding:
        class_map = load_class_map(spec.class_map) if spec.class_map else None
        codec = spec.mask_codec if spec.mask_codec != "auto" else detect_codec([p.mask for p in pairs], class_map)
        if codec == "colour" and (class_map is None or class_map.colors is None):
            raise DataError(f"colour masks in {spec.path} need a class map with colours (--class-map FILE)")
        ignore_index = class_map.ignore_index if class_map else 255
        num_classes = class_map.num_classes if class_map else (2 if codec == "binary" else None)
        return cls(codec, class_map, num_classes, ignore_index)

    def decode_pair(self, pair: Pair, size: tuple[int, int] | None, in_channels: int
                    ) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """Image and class-index mask at ``size`` (``None``: the image's own), and the image's own size."""
        original = read_image(pair.image, in_channels)
        image = resize_image(original, size) if size else original

        def fit(mask: np.ndarray) -> np.ndarray:
            return resize_mask(mask, size) if size else mask

        if self.codec == "colour":
            assert self.class_map is not None, "a colour codec is only detected with a class map"
            # Nearest-neighbour resizing keeps colours exact, and decoding the small mask is much cheaper.
            mask = decode_colour(fit(read_mask(pair.mask, as_rgb=True)), self.class_map, pair.mask)
        elif self.codec == "binary":
            mask = fit(decode_binary(read_mask(pair.mask, as_rgb=False), pair.mask))
        else:
            mask = fit(decode_index(read_mask(pair.mask, as_rgb=False), self.num_classes, self.ignore_index,
                                    pair.mask))
        return image, mask, original.shape[:2]


def load_data(
    spec: DatasetSpec,
    image_size: int,
    in_channels: int = 3,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    progress: bool = True,
    decoded_into: Path | None = None,
) -> SegmentationData:
    """Find pairs, decode every image and mask once at ``image_size``, and split them. With ``decoded_into``, the
    arrays are memory-mapped files in that folder, decoded only when it holds none from these files and settings."""
    pairing = find_pairs(spec.path, spec.layout, spec.mask_suffix)
    pairs = pairing.pairs
    if not pairs:
        raise DataError(f"no image/mask pairs found in {spec.path}; run python -m searchseg.check {spec.path}")
    if pairing.duplicate_stems:
        clash = pairing.duplicate_stems[0]
        raise DataError(f"{clash[0]} and {clash[1]} share one name; rename one so each mask has one image")
    decoding = MaskDecoding.for_pairs(spec, pairs)
    class_map, codec, ignore_index = decoding.class_map, decoding.codec, decoding.ignore_index

    size = (image_size, image_size)
    decoded_with = {"class_map": str(spec.class_map) if spec.class_map else None, "mask_suffix": spec.mask_suffix,
                    "group_by": spec.group_by, "val_fraction": val_fraction, "test_fraction": test_fraction,
                    "split_seed": split_seed}
    key = {"source": str(spec.path), "files": files_digest(pairs, *filter(None, [spec.class_map])),
           "image_size": image_size, "in_channels": in_channels, "codec": codec, "ignore_index": ignore_index,
           "decoded_with": decoded_with}
    decoded = open_decoded(decoded_into, key) if decoded_into is not None else None
    if decoded is None:
        decoded = decode_pairs(pairs, lambda pair: decoding.decode_pair(pair, size, in_channels), size, in_channels,
                               into=decoded_into, key=key, progress=progress)

    if class_map is not None:
        class_names = class_map.names
    elif codec == "binary":
        class_names = ("background", "foreground")
    else:
        class_names = tuple(f"class_{i}" for i in range(decoded.largest_label(ignore_index) + 1))

    names = item_names(pairs, spec.path if spec.path.is_dir() else spec.path.parent)
    pair_groups = [p.group for p in pairs]
    groups = pair_groups if spec.group_by == "folder" else [""] * len(pairs)
    if spec.split_files:
        splits, split_by = split_from_files(names, spec.split_files), "split files"
    elif (folder_splits := split_from_folders(names)) is not None:
        splits, split_by = folder_splits, "the dataset's train/val/test folders"
        # train/images + train/masks make train the pairs' group: a split folder says nothing of which images are alike
        pair_groups = ["" if group.rsplit("/", 1)[-1].lower() in SPLIT_FOLDERS else group for group in pair_groups]
    else:
        splits, split_by = split_by_ratio(groups, val_fraction, test_fraction, split_seed), "fractions"
    data = SegmentationData(
        images=decoded.images,
        masks=decoded.masks,
        names=names,
        groups=pair_groups,
        class_names=tuple(class_names),
        ignore_index=ignore_index,
        binary=len(class_names) == 2 and codec == "binary",
        splits=splits,
        split_by=split_by,
        source=str(spec.path),
        class_colors=class_map.colors if class_map is not None else None,
        decoded_with=decoded_with,
        original_sizes=decoded.original_sizes,
    )
    data.pixel_counts = decoded.pixel_counts
    return data
