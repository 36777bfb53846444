import numpy as np
import pytest

from searchseg.data.split import split_by_ratio, split_from_files, split_from_folders
from searchseg.errors import UserError


def test_deterministic_and_disjoint():
    first = split_by_ratio([""] * 100, 0.15, 0.15, seed=3)
    again = split_by_ratio([""] * 100, 0.15, 0.15, seed=3)
    other = split_by_ratio([""] * 100, 0.15, 0.15, seed=4)
    assert all(np.array_equal(first[s], again[s]) for s in first)
    assert not np.array_equal(first["val"], other["val"])
    assert [len(first[s]) for s in ("train", "val", "test")] == [70, 15, 15]
    assert sorted(np.concatenate(list(first.values())).tolist()) == list(range(100))


def test_groups_stay_together():
    groups = [f"tile{i // 9}" for i in range(72)]
    splits = split_by_ratio(groups, 0.15, 0.15, seed=0)
    owner = {}
    for split, indices in splits.items():
        for i in indices:
            assert owner.setdefault(groups[i], split) == split
    assert all(len(splits[s]) for s in splits)


def test_too_few_images():
    with pytest.raises(UserError, match="2 images cannot fill"):
        split_by_ratio(["", ""], 0.15, 0.15, seed=0)


def test_fractions_that_leave_no_training():
    with pytest.raises(UserError, match="leaves no training data"):
        split_by_ratio([""] * 10, 0.5, 0.5, seed=0)


def test_split_files(tmp_path):
    (tmp_path / "train.txt").write_text("a\nb.png\n")
    (tmp_path / "val.txt").write_text("c\n")
    splits = split_from_files(["a", "b", "c"], {"train": tmp_path / "train.txt", "val": tmp_path / "val.txt"})
    assert splits["train"].tolist() == [0, 1] and splits["val"].tolist() == [2] and splits["test"].size == 0
    (tmp_path / "bad.txt").write_text("zzz\n")
    with pytest.raises(UserError, match="zzz"):
        split_from_files(["a"], {"train": tmp_path / "bad.txt"})


def test_the_split_folder_nearest_the_image_decides_and_all_three_must_be_there():
    names = ["train/images/a", "val/images/b", "Test/images/c", "data/validation/d", "testing/train/e"]
    assert {split: indices.tolist() for split, indices in split_from_folders(names).items()} == {
        "train": [0, 4], "val": [1, 3], "test": [2]}
    assert split_from_folders(["train/a", "val/b"]) is None  # no test folder: the fractions split it
    assert split_from_folders(["train/a", "val/b", "test/c", "extra/d"]) is None  # an image outside them
