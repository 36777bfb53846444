import albumentations as A
import numpy as np
import pytest

from searchseg.errors import UserError
from searchseg.training.augment import PRESETS, build_augmentation, load_augmentation, save_augmentation


def checker(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A mask of 8x8 squares of classes 0..3 and an image that encodes the class in its red channel."""
    rows, cols = np.indices((size, size)) // 8
    mask = ((rows + 2 * cols) % 4).astype(np.uint8)
    image = np.zeros((size, size, 3), np.uint8)
    image[..., 0] = mask * 60 + 30
    return image, mask


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_image_and_mask_stay_aligned(preset):
    image, mask = checker()
    pipeline = build_augmentation(preset, 1.0, 64, ignore_index=255)
    pipeline.set_random_seed(0)
    for _ in range(20):
        out = pipeline(image=image, mask=mask)
        labelled = out["mask"] != 255
        # Colour changes are affine per image, so they keep the correlation; a shift of either breaks it.
        red = out["image"][..., 0][labelled].astype(float)
        agreement = np.corrcoef(red, out["mask"][labelled].astype(float))[0, 1]
        assert agreement > 0.8, f"{preset}: image and mask drifted apart (correlation {agreement:.2f})"
        assert out["image"].shape[:2] == out["mask"].shape == (64, 64)


def test_strength_zero_is_identity():
    image, mask = checker()
    out = build_augmentation("heavy", 0.0, 64)(image=image, mask=mask)
    assert np.array_equal(out["mask"], mask) and np.array_equal(out["image"], image)


def test_medium_is_the_seed_recipe():
    steps = {type(t).__name__: t for t in build_augmentation("medium", 1.0, 64).transforms}
    assert steps["HorizontalFlip"].p == 0.5 and steps["VerticalFlip"].p == 0.2
    assert steps["Rotate"].limit == (-10, 10)
    assert steps["RandomResizedCrop"].scale == (0.8, 1.0)


def test_round_trip_through_dict_gives_the_same_output(tmp_path):
    image, mask = checker()
    pipeline = build_augmentation("heavy", 1.3, 64)
    save_augmentation(pipeline, tmp_path / "aug.json")
    rebuilt = load_augmentation(tmp_path / "aug.json")
    assert A.to_dict(rebuilt) == A.to_dict(pipeline)
    pipeline.set_random_seed(5)
    rebuilt.set_random_seed(5)
    assert np.array_equal(pipeline(image=image, mask=mask)["image"], rebuilt(image=image, mask=mask)["image"])


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(UserError, match="heavy, light, medium, none"):
        build_augmentation("extreme", 1.0, 64)
