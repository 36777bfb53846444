import numpy as np
import pytest

from searchseg.data import load_data, resolve_spec
from searchseg.errors import UserError
from tests.conftest import CHASE, DUBAI, requires, tiny_data


def test_colour_folders_decoded_once_at_working_size(colour_dataset):
    spec = resolve_spec(colour_dataset, class_map=colour_dataset / "classes.json", group_by="folder")
    data = load_data(spec, image_size=32, val_fraction=0.25, test_fraction=0.25, progress=False)
    assert data.images.shape == (12, 32, 32, 3) and data.images.dtype == np.uint8
    assert data.masks.shape == (12, 32, 32)
    assert set(np.unique(data.masks)) <= {0, 1, 2, 255} and 255 in data.masks
    assert data.class_names == ("red", "green", "blue") and not data.binary
    for split in ("val", "test"):  # each group of 3 images lands whole in one split
        assert len({data.groups[i] for i in data.splits[split]}) == len(data.splits[split]) // 3


def test_binary_suffix_dataset(binary_dataset):
    data = load_data(resolve_spec(binary_dataset), image_size=32, val_fraction=0.25, test_fraction=0.25,
                     progress=False)
    assert data.binary and data.num_classes == 2
    assert set(np.unique(data.masks)) == {0, 1}


def test_train_val_test_folders_are_the_split(colour_dataset):
    """Group N/ renamed train/, val/, test/ (and a second training folder in another case): the dataset's own split,
    whatever the fractions say; without a test folder the fractions split it."""
    for group, split in enumerate(("train", "Training", "val", "test")):
        (colour_dataset / f"Group {group}").rename(colour_dataset / split)
    spec = resolve_spec(colour_dataset, class_map=colour_dataset / "classes.json")
    data = load_data(spec, image_size=32, val_fraction=0.5, test_fraction=0.0, progress=False)
    assert {split: sorted(data.names[i].split("/")[0] for i in data.splits[split]) for split in data.splits} == {
        "train": ["Training"] * 3 + ["train"] * 3, "val": ["val"] * 3, "test": ["test"] * 3}
    assert data.split_by == "the dataset's train/val/test folders"
    assert data.independent_group_count("val") == 3  # val/ is where the split put them, not a group of alike images
    (colour_dataset / "test").rename(colour_dataset / "extra")
    data = load_data(spec, image_size=32, val_fraction=0.25, test_fraction=0.25, progress=False)
    assert data.split_by == "fractions"


def test_a_cityscapes_tree_keeps_its_split_and_its_cities_as_groups(colour_dataset):
    """leftImg8bit/<split>/<city>/ beside gtFine/<split>/<city>/: the split folders split, a city is a group."""
    for group, (split, city) in enumerate((("train", "aachen"), ("train", "bremen"), ("val", "lindau"),
                                           ("test", "berlin"))):
        for kind, tree in (("images", "leftImg8bit"), ("masks", "gtFine")):
            (colour_dataset / tree / split).mkdir(parents=True, exist_ok=True)
            (colour_dataset / f"Group {group}" / kind).rename(colour_dataset / tree / split / city)
    spec = resolve_spec(colour_dataset, class_map=colour_dataset / "classes.json", group_by="folder")
    data = load_data(spec, image_size=32, val_fraction=0.5, test_fraction=0.0, progress=False)
    assert data.split_by == "the dataset's train/val/test folders"
    assert {split: sorted({data.groups[i] for i in data.splits[split]}) for split in data.splits} == {
        "train": ["train/aachen", "train/bremen"], "val": ["val/lindau"], "test": ["test/berlin"]}


def test_dataset_yaml_with_class_map_and_split_files(colour_dataset):
    (colour_dataset / "train.txt").write_text("\n".join(f"img_{i:02d}" for i in range(8)))
    (colour_dataset / "val.txt").write_text("img_08\nimg_09\n")
    (colour_dataset / "test.txt").write_text("img_10\nimg_11\n")
    spec_file = colour_dataset / "dataset.yaml"
    spec_file.write_text("class_map: classes.json\nsplits: {train: train.txt, val: val.txt, test: test.txt}\n")
    data = load_data(resolve_spec(spec_file), image_size=32, progress=False)
    # an item is named by its path relative to the dataset root; a unique file name still finds it
    assert [data.names[i] for i in data.splits["val"]] == ["Group 0/images/img_08", "Group 1/images/img_09"]


def test_one_file_name_in_several_folders_names_distinct_items(colour_dataset):
    for index, group in enumerate(("Group 0", "Group 1")):  # the Dubai tiles each hold image_part_001...
        for kind in ("images", "masks"):
            source = colour_dataset / group / kind / f"img_{index * 5:02d}.png"
            source.rename(source.with_name("same.png"))
    (colour_dataset / "train.txt").write_text("Group 0/images/same\nGroup 1/images/same.png\nimg_02\n")
    spec_file = colour_dataset / "dataset.yaml"
    spec_file.write_text("class_map: classes.json\nsplits: {train: train.txt}\n")
    data = load_data(resolve_spec(spec_file), image_size=32, progress=False)
    assert len(set(data.names)) == len(data.names) == 12
    assert [data.names[i] for i in data.splits["train"]] == ["Group 0/images/same", "Group 1/images/same",
                                                              "Group 2/images/img_02"]
    (colour_dataset / "train.txt").write_text("same\n")
    with pytest.raises(UserError, match="'same' is the file name of several images; .* e.g. 'Group 0/images/same'"):
        load_data(resolve_spec(spec_file), image_size=32, progress=False)


def test_yaml_with_unknown_key_fails(tmp_path):
    spec_file = tmp_path / "dataset.yaml"
    spec_file.write_text("clas_map: x.json\n")
    with pytest.raises(UserError, match="unknown keys.*clas_map"):
        resolve_spec(spec_file)


def test_fingerprint_changes_with_data(colour_dataset):
    spec = resolve_spec(colour_dataset, class_map=colour_dataset / "classes.json")
    first = load_data(spec, 32, progress=False)
    assert first.fingerprint == load_data(spec, 32, progress=False).fingerprint
    assert first.fingerprint != load_data(spec, 64, progress=False).fingerprint


def test_builtin_demo_loads_and_its_validation_is_one_tile():
    data = load_data(resolve_spec(None), 64, progress=False)
    assert len(data.names) == 72 and data.num_classes == 6
    assert all(len(data.splits[s]) for s in ("train", "val", "test"))
    assert len(data.splits["val"]) == 9 and data.independent_group_count("val") == 1  # split by tile folder


def test_without_group_by_folder_each_image_is_its_own_group(colour_dataset):
    data = load_data(resolve_spec(colour_dataset, class_map=colour_dataset / "classes.json"), 32, progress=False)
    assert data.independent_groups("val") == [data.names[i] for i in data.splits["val"]]
    assert data.independent_group_count("val") == len(data.splits["val"])


@requires(DUBAI)
def test_dubai_with_label_mapping():
    data = load_data(resolve_spec(DUBAI, class_map=DUBAI / "label_mapping.json"), 64, progress=False)
    freq = data.class_frequencies("train")
    assert freq[1] == freq.max()  # Land is the majority class


@requires(CHASE)
def test_chase_first_grader_is_binary():
    data = load_data(resolve_spec(CHASE, mask_suffix="_1stHO"), 64, progress=False)
    assert data.binary and 0.03 < data.class_frequencies()[1] < 0.2


def test_class_frequencies_are_counted_once_per_image_and_follow_a_changed_split():
    data = tiny_data(count=8)
    train = data.splits["train"]
    masks = data.masks.copy()
    expected = np.bincount(masks[train].ravel(), minlength=data.num_classes)[: data.num_classes]
    first = data.class_frequencies("train")
    assert first == pytest.approx(expected / expected.sum())
    first[:] = 0  # the caller's copy: the counts stay
    data.masks[train] = 0  # a second call sums the counts, it does not read the masks
    assert data.class_frequencies("train") == pytest.approx(expected / expected.sum())
    data.splits["train"] = train[:1]  # a new split sums its own images' counts
    alone = np.bincount(masks[train[0]].ravel(), minlength=data.num_classes)[: data.num_classes]
    assert data.class_frequencies("train") == pytest.approx(alone / alone.sum())


def test_decoding_counts_each_masks_pixels_once(colour_dataset):
    spec = resolve_spec(colour_dataset, class_map=colour_dataset / "classes.json", group_by="folder")
    data = load_data(spec, image_size=32, val_fraction=0.25, test_fraction=0.25, progress=False)
    np.testing.assert_array_equal(data.pixel_counts, [np.bincount(m.ravel(), minlength=256) for m in data.masks])
