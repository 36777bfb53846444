"""A dataset decoded once into memory-mapped files: the same arrays, opened again instead of decoded, shipped as a
folder name, and decoded again when the files or settings change."""

from __future__ import annotations

import dataclasses
import os
import pickle

import numpy as np
import pytest

from searchseg.data import load_data, resolve_spec
from searchseg.data.decoded import IMAGES_FILE, KEY_FILE, MASKS_FILE
from searchseg.data.io import DataError
from tests.conftest import save


def load(root, folder=None, image_size=32, **settings):
    spec = resolve_spec(root, class_map=root / "classes.json", group_by="folder")
    return load_data(spec, image_size=image_size, val_fraction=0.25, test_fraction=0.25, progress=False,
                     decoded_into=folder, **settings)


def test_decoded_files_hold_the_same_arrays_read_only_and_open_again_without_decoding(colour_dataset, tmp_path):
    in_memory = load(colour_dataset)
    mapped = load(colour_dataset, tmp_path / "decoded")
    assert isinstance(mapped.images, np.memmap) and not mapped.images.flags.writeable
    np.testing.assert_array_equal(mapped.images, in_memory.images)
    np.testing.assert_array_equal(mapped.masks, in_memory.masks)
    np.testing.assert_array_equal(mapped.original_sizes, in_memory.original_sizes)
    assert mapped.fingerprint == in_memory.fingerprint and mapped.class_names == in_memory.class_names
    written = {name: os.stat(tmp_path / "decoded" / name).st_mtime_ns for name in (IMAGES_FILE, MASKS_FILE)}

    again = load(colour_dataset, tmp_path / "decoded")
    assert {name: os.stat(tmp_path / "decoded" / name).st_mtime_ns for name in written} == written
    assert again.fingerprint == in_memory.fingerprint


def test_a_changed_file_another_size_or_an_interrupted_decode_is_decoded_again(colour_dataset, tmp_path):
    folder = tmp_path / "decoded"
    first = load(colour_dataset, folder).fingerprint
    mask_file = colour_dataset / "Group 0" / "masks" / "img_00.png"
    save(mask_file, np.zeros((64, 64, 3), np.uint8))  # every pixel now ignored
    changed = load(colour_dataset, folder)
    assert changed.fingerprint != first and (changed.masks[0] == 255).all()
    assert load(colour_dataset, folder, image_size=16).images.shape[1:3] == (16, 16)
    classes = colour_dataset / "classes.json"  # the same path, red and green swapped
    classes.write_text(classes.read_text().replace("#FF0000", "#TMP").replace("#00FF00", "#FF0000")
                       .replace("#TMP", "#00FF00"))
    swapped = load(colour_dataset, folder)
    np.testing.assert_array_equal(swapped.masks == 0, changed.masks == 1)

    (folder / KEY_FILE).unlink()  # as after a decode killed half-way: its arrays are not trusted
    (folder / IMAGES_FILE).write_bytes(b"not an array")
    assert load(colour_dataset, folder).fingerprint == load(colour_dataset).fingerprint


def test_a_mapped_dataset_travels_as_its_folder_and_arrives_mapped(colour_dataset, tmp_path):
    in_memory, mapped = load(colour_dataset, image_size=64), load(colour_dataset, tmp_path / "d", image_size=64)
    shipped = pickle.dumps(mapped)
    assert len(pickle.dumps(in_memory)) - len(shipped) >= mapped.images.nbytes + mapped.masks.nbytes
    arrived = pickle.loads(shipped)
    assert isinstance(arrived.images, np.memmap) and arrived.fingerprint == in_memory.fingerprint
    part = pickle.loads(pickle.dumps(dataclasses.replace(mapped, images=mapped.images[:4], masks=mapped.masks[:4])))
    assert len(part.images) == 4  # a view of part of the files travels as its bytes

    (tmp_path / "d" / IMAGES_FILE).unlink()  # as on a node that does not mount the folder
    with pytest.raises(DataError, match="cannot be read on this node.*--storage"):
        pickle.loads(shipped)


def test_index_masks_name_their_classes_from_the_largest_label_in_either_path(tmp_path):
    root = tmp_path / "index"
    rng = np.random.default_rng(0)
    for index in range(8):
        mask = rng.integers(0, 3, (32, 32)).astype(np.uint8)
        mask[index % 4, :] = 4 if index == 5 else 255  # label 4 only in one image; 255 is ignored
        save(root / "images" / f"{index}.png", rng.integers(0, 255, (32, 32, 3)).astype(np.uint8))
        save(root / "masks" / f"{index}.png", mask)
    spec = resolve_spec(root)
    names = [load_data(spec, 32, progress=False, decoded_into=folder).class_names
             for folder in (None, tmp_path / "decoded", tmp_path / "decoded")]
    assert names == [tuple(f"class_{i}" for i in range(5))] * 3
