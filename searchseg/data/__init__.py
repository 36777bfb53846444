"""Datasets: pairing files, decoding masks, splitting, and the decoded in-memory arrays."""

from searchseg.data.classmap import ClassMap, load_class_map
from searchseg.data.loader import SegmentationData, load_data
from searchseg.data.spec import DatasetSpec, resolve_spec

__all__ = [
    "ClassMap", "DatasetSpec", "SegmentationData",
    "load_class_map", "load_data", "load_from_config", "resolve_spec",
]


def load_from_config(config, progress: bool = True) -> SegmentationData:
    """Decode the dataset a TrialConfig names, at its working size and split."""
    spec = resolve_spec(config.data, config.class_map, config.mask_suffix, config.group_by)
    return load_data(spec, config.image_size, config.in_channels, config.val_fraction, config.test_fraction,
                     config.split_seed, progress=progress)
