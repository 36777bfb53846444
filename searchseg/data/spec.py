"""Dataset specs: where the pairs are, how masks are coded, and how to split.

A data path may be a folder, a CSV manifest, or a dataset YAML (also found as ``dataset.yaml`` inside
the folder) that states any of::

    path: .                      # folder or CSV, relative to the YAML (default: the YAML's folder)
    layout: folders              # auto | folders | suffix | csv
    mask_suffix: _1stHO          # for masks beside their images
    class_map: label_mapping.json
    mask_codec: colour           # auto | index | binary | colour
    group_by: folder             # keep each folder's images in one split
    splits: {train: train.txt, val: val.txt, test: test.txt}   # fixed splits instead of fractions
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from searchseg.data.codecs import CODECS
from searchseg.data.pairing import LAYOUTS
from searchseg.errors import UserError

DEMO_DATASET = Path(__file__).resolve().parent / "demo" / "dataset.yaml"
SPEC_KEYS = {"path", "layout", "mask_suffix", "class_map", "mask_codec", "group_by", "splits"}


@dataclass
class DatasetSpec:
    path: Path
    layout: str = "auto"
    mask_suffix: str | None = None
    class_map: Path | None = None
    mask_codec: str = "auto"
    group_by: str = "none"
    split_files: dict[str, Path] = field(default_factory=dict)


def load_spec_file(path: Path) -> DatasetSpec:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise UserError(f"dataset file {path} does not parse: {str(err).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise UserError(f"dataset file {path} must be a mapping with keys {', '.join(sorted(SPEC_KEYS))}")
    unknown = set(raw) - SPEC_KEYS
    if unknown:
        valid = ", ".join(sorted(SPEC_KEYS))
        raise UserError(f"dataset file {path}: unknown keys {sorted(unknown)}; valid keys: {valid}")
    base = path.parent
    splits = raw.get("splits") or {}
    if not isinstance(splits, dict) or set(splits) - {"train", "val", "test"}:
        raise UserError(f"dataset file {path}: 'splits' maps train/val/test to text files")
    spec = DatasetSpec(
        path=base / raw.get("path", "."),
        layout=raw.get("layout", "auto"),
        mask_suffix=raw.get("mask_suffix"),
        class_map=base / raw["class_map"] if raw.get("class_map") else None,
        mask_codec=raw.get("mask_codec", "auto"),
        group_by=raw.get("group_by", "none"),
        split_files={name: base / file for name, file in splits.items()},
    )
    _validate(spec, str(path))
    return spec


def _validate(spec: DatasetSpec, where: str) -> None:
    for key, value, valid in (("layout", spec.layout, LAYOUTS), ("mask_codec", spec.mask_codec, CODECS),
                              ("group_by", spec.group_by, ("none", "folder"))):
        if value not in valid:
            raise UserError(f"{where}: {key} {value!r} is not one of {', '.join(valid)}")


def resolve_spec(
    data: str | Path | None,
    class_map: str | Path | None = None,
    mask_suffix: str | None = None,
    group_by: str | None = None,
) -> DatasetSpec:
    """Turn a data argument (None for the built-in demo) and command-line overrides into a spec."""
    if data is None:
        spec = load_spec_file(DEMO_DATASET)
    else:
        path = Path(data).expanduser()
        if not path.exists():
            raise UserError(f"data path {path} does not exist; pass a folder, a CSV manifest or a dataset YAML")
        if path.is_dir() and (path / "dataset.yaml").is_file():  # a folder that describes itself
            path = path / "dataset.yaml"
        if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
            spec = load_spec_file(path)
        else:
            spec = DatasetSpec(path=path)
    if class_map is not None:
        spec.class_map = Path(class_map).expanduser()
    if mask_suffix is not None:
        spec.mask_suffix = mask_suffix
    if group_by is not None:
        spec.group_by = group_by
    _validate(spec, str(data))
    return spec
