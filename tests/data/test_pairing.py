import pytest

from searchseg.data.pairing import find_pairs
from searchseg.errors import UserError
from tests.conftest import CHASE, DUBAI, requires


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folder_layout_nested_with_spaces_and_upper_case(tmp_path):
    touch(tmp_path / "Tile 1" / "IMAGES" / "a.jpg")
    touch(tmp_path / "Tile 1" / "MASKS" / "a.png")
    touch(tmp_path / "Tile 2" / "images" / "b.jpg")
    touch(tmp_path / "Tile 2" / "masks" / "b.png")
    touch(tmp_path / "Tile 2" / "images" / "lonely.jpg")
    touch(tmp_path / "Tile 2" / "masks" / "orphan.png")
    result = find_pairs(tmp_path)
    assert [(p.image.name, p.mask.name, p.group) for p in result.pairs] == [
        ("a.jpg", "a.png", "Tile 1"), ("b.jpg", "b.png", "Tile 2")]
    assert [p.name for p in result.images_without_masks] == ["lonely.jpg"]
    assert [p.name for p in result.masks_without_images] == ["orphan.png"]


def test_two_images_with_one_stem_are_reported(tmp_path):
    touch(tmp_path / "images" / "a.jpg")
    touch(tmp_path / "images" / "a.png")
    touch(tmp_path / "masks" / "a.png")
    result = find_pairs(tmp_path)
    assert result.pairs == []
    assert sorted(p.name for p in result.duplicate_stems[0]) == ["a.jpg", "a.png"]


def test_suffix_layout_detects_a_unique_suffix(tmp_path):
    for stem in ("x1", "x2"):
        touch(tmp_path / f"{stem}.jpg")
        touch(tmp_path / f"{stem}_mask.png")
    result = find_pairs(tmp_path)
    assert [(p.image.name, p.mask.name) for p in result.pairs] == [("x1.jpg", "x1_mask.png"), ("x2.jpg", "x2_mask.png")]


def test_suffix_layout_asks_to_choose_between_suffixes(tmp_path):
    for stem in ("Image_01L", "Image_01R"):
        touch(tmp_path / f"{stem}.jpg")
        touch(tmp_path / f"{stem}_1stHO.png")
        touch(tmp_path / f"{stem}_2ndHO.png")
    with pytest.raises(UserError, match="_1stHO, _2ndHO"):
        find_pairs(tmp_path)
    result = find_pairs(tmp_path, mask_suffix="_2ndHO")
    assert [p.mask.name for p in result.pairs] == ["Image_01L_2ndHO.png", "Image_01R_2ndHO.png"]


def test_image_folders_with_a_labels_folder_named_after_them_pair_by_a_mask_suffix(tmp_path):
    """CamVid as Kaggle ships it: train/ with train_labels/, val/ with val_labels/, colour masks named X_L.png."""
    for split in ("train", "val"):
        for stem in ("0001TP_006690", "0001TP_006720"):
            touch(tmp_path / split / f"{split}{stem}.png")
            touch(tmp_path / f"{split}_labels" / f"{split}{stem}_L.png")
    touch(tmp_path / "train" / "unlabelled.png")
    result = find_pairs(tmp_path)
    assert [(p.image.name, p.mask.name, p.group) for p in result.pairs] == [
        ("train0001TP_006690.png", "train0001TP_006690_L.png", ""),
        ("train0001TP_006720.png", "train0001TP_006720_L.png", ""),
        ("val0001TP_006690.png", "val0001TP_006690_L.png", ""), ("val0001TP_006720.png", "val0001TP_006720_L.png", "")]
    assert [p.name for p in result.images_without_masks] == ["unlabelled.png"]
    assert result.rule == "image stems with mask stems ending in '_L'"


def test_frames_with_masks_pair_by_stem(tmp_path):
    for index in range(3):
        touch(tmp_path / "frames" / f"frame_{index:05d}.jpg")
        touch(tmp_path / "masks" / f"frame_{index:05d}.png")
    result = find_pairs(tmp_path)
    assert len(result.pairs) == 3 and result.rule == "by file stem"


def test_a_suffix_on_each_side_of_a_pair_is_found_and_the_mask_side_is_the_one_named_like_a_mask(tmp_path):
    """DeepGlobe roads: 104_sat.jpg beside 104_mask.png, one folder."""
    for stem in ("104", "1119", "9926"):
        touch(tmp_path / f"{stem}_sat.jpg")
        touch(tmp_path / f"{stem}_mask.png")
    result = find_pairs(tmp_path)
    assert [(p.image.name, p.mask.name) for p in result.pairs] == [
        ("104_sat.jpg", "104_mask.png"), ("1119_sat.jpg", "1119_mask.png"), ("9926_sat.jpg", "9926_mask.png")]
    assert not result.images_without_masks and not result.masks_without_images


def test_several_mask_kinds_per_image_in_a_mask_folder_are_the_users_choice(tmp_path):
    """Cityscapes: X_leftImg8bit.png with X_gtFine_labelIds.png and X_gtFine_color.png."""
    for stem in ("aachen_000000_000019", "aachen_000001_000019", "bremen_000000_000019"):
        touch(tmp_path / "images" / f"{stem}_leftImg8bit.png")
        touch(tmp_path / "labels" / f"{stem}_gtFine_labelIds.png")
        touch(tmp_path / "labels" / f"{stem}_gtFine_color.png")
    with pytest.raises(UserError, match="several suffixes \\(_gtFine_labelIds, _gtFine_color\\); choose one with "
                                        "--set mask_suffix=_gtFine_labelIds"):
        find_pairs(tmp_path)
    result = find_pairs(tmp_path, mask_suffix="_gtFine_labelIds")
    assert [p.mask.name for p in result.pairs] == [
        "aachen_000000_000019_gtFine_labelIds.png", "aachen_000001_000019_gtFine_labelIds.png",
        "bremen_000000_000019_gtFine_labelIds.png"]
    assert result.rule == "image stems ending in '_leftImg8bit' with mask stems ending in '_gtFine_labelIds'"


def test_an_images_folder_beside_a_masks_folder_pairs_sub_folder_by_sub_folder(tmp_path):
    """ADE20K: images/training/x.jpg with annotations/training/x.png; a stem in two sub-folders is two images."""
    for split in ("training", "validation"):
        touch(tmp_path / "images" / split / f"ADE_{split}_1.jpg")
        touch(tmp_path / "annotations" / split / f"ADE_{split}_1.png")
        touch(tmp_path / "images" / split / "same_stem.jpg")
        touch(tmp_path / "annotations" / split / "same_stem.png")
    touch(tmp_path / "annotations" / "training" / "orphan.png")
    result = find_pairs(tmp_path)
    assert [(p.image.relative_to(tmp_path).as_posix(), p.mask.relative_to(tmp_path).as_posix(), p.group)
            for p in result.pairs] == [
        ("images/training/ADE_training_1.jpg", "annotations/training/ADE_training_1.png", "training"),
        ("images/training/same_stem.jpg", "annotations/training/same_stem.png", "training"),
        ("images/validation/ADE_validation_1.jpg", "annotations/validation/ADE_validation_1.png", "validation"),
        ("images/validation/same_stem.jpg", "annotations/validation/same_stem.png", "validation")]
    assert not result.duplicate_stems and [p.name for p in result.masks_without_images] == ["orphan.png"]


def test_cityscapes_trees_pair_city_by_city_once_the_mask_kind_is_chosen(tmp_path):
    """leftImg8bit/train/aachen/X_leftImg8bit.png with gtFine/train/aachen/X_gtFine_{labelIds,color}.png."""
    for split, city in (("train", "aachen"), ("train", "bremen"), ("val", "lindau")):
        stem = f"{city}_000000_000019"
        touch(tmp_path / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
        for kind in ("labelIds", "color", "instanceIds"):
            touch(tmp_path / "gtFine" / split / city / f"{stem}_gtFine_{kind}.png")
    with pytest.raises(UserError, match="--set mask_suffix=_gtFine_labelIds"):  # not the ids of instances
        find_pairs(tmp_path)
    result = find_pairs(tmp_path, mask_suffix="_gtFine_labelIds")
    assert [(p.mask.name, p.group) for p in result.pairs] == [
        ("aachen_000000_000019_gtFine_labelIds.png", "train/aachen"),
        ("bremen_000000_000019_gtFine_labelIds.png", "train/bremen"),
        ("lindau_000000_000019_gtFine_labelIds.png", "val/lindau")]
    assert not result.images_without_masks


def test_an_image_without_a_mask_does_not_make_a_rule_of_its_own(tmp_path):
    """Stems sharing a prefix (img_1, img_2) could pair across images; an image's own key is the longest one."""
    for index in (1, 2):
        touch(tmp_path / f"img_{index}.jpg")
        touch(tmp_path / f"img_{index}_mask.png")
    touch(tmp_path / "img_3.jpg")
    result = find_pairs(tmp_path)
    assert [p.mask.name for p in result.pairs] == ["img_1_mask.png", "img_2_mask.png"]
    assert [p.name for p in result.images_without_masks] == ["img_3.jpg"]


def test_csv_manifest_relative_to_its_folder(tmp_path):
    touch(tmp_path / "imgs" / "a b.jpg")
    touch(tmp_path / "lbl" / "a b.png")
    touch(tmp_path / "imgs" / "c.jpg")
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("Image,Mask,group\nimgs/a b.jpg,lbl/a b.png,g1\nimgs/c.jpg,lbl/missing.png,g2\n")
    result = find_pairs(manifest)
    assert [(p.image.name, p.mask.name, p.group) for p in result.pairs] == [("a b.jpg", "a b.png", "g1")]
    assert [p.name for p in result.images_without_masks] == ["c.jpg"]


@pytest.mark.parametrize("second", ["imgs/a.jpg", "./imgs/a.jpg", "imgs/../imgs/a.jpg"])
def test_a_manifest_listing_one_image_twice_is_refused(tmp_path, second):
    touch(tmp_path / "imgs" / "a.jpg")
    touch(tmp_path / "lbl" / "a.png")
    touch(tmp_path / "imgs" / "b.jpg")
    touch(tmp_path / "lbl" / "b.png")
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(f"image,mask\nimgs/a.jpg,lbl/a.png\nimgs/b.jpg,lbl/b.png\n{second},lbl/a.png\n")
    with pytest.raises(UserError, match=f"line 4 repeats the image {second} of line 2"):
        find_pairs(manifest)


def test_csv_without_mask_column_names_columns(tmp_path):
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("picture,truth\n")
    with pytest.raises(UserError, match="no image column"):
        find_pairs(manifest)


def test_missing_path_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        find_pairs(tmp_path / "nowhere")


@requires(DUBAI)
def test_dubai_pairs_every_tile():
    result = find_pairs(DUBAI)
    assert len(result.pairs) == 72
    assert {p.group for p in result.pairs} == {f"Tile {i}" for i in range(1, 9)}


@requires(CHASE)
def test_chase_pairs_with_first_grader():
    result = find_pairs(CHASE, mask_suffix="_1stHO")
    assert len(result.pairs) == 28 and not result.images_without_masks
