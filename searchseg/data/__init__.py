"""Datasets: pairing files, decoding masks, splitting, and the decoded arrays (in memory or memory-mapped)."""

import sys
from pathlib import Path

from searchseg.data.classmap import ClassMap, load_class_map
from searchseg.data.loader import SegmentationData, load_data
from searchseg.data.spec import DatasetSpec, resolve_spec

__all__ = [
    "ClassMap", "DatasetSpec", "SegmentationData",
    "load_class_map", "load_data", "load_from_config", "resolve_spec",
]


def load_from_config(config, progress: bool = True, decoded_into: Path | None = None) -> SegmentationData:
    """Decode the dataset a TrialConfig names, at its working size and split, after the quick data check
    (headers only): broken data is refused with a one-line summary instead of failing half-way."""
    from searchseg.data.checks import quick_check
    from searchseg.data.io import DataError

    spec = resolve_spec(config.data, config.class_map, config.mask_suffix, config.group_by)
    report, _ = quick_check(spec)
    if report.errors:
        raise DataError(f"{report.summary_line()}; run python -m searchseg.check {spec.path} for the full report")
    for warning in report.warnings:
        print(f"warning: {warning.message} (python -m searchseg.check {spec.path} lists them)", file=sys.stderr)
    return load_data(spec, config.image_size, config.in_channels, config.val_fraction, config.test_fraction,
                     config.split_seed, progress=progress, decoded_into=decoded_into)
