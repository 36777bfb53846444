import numpy as np
import pytest
from PIL import Image

from searchseg.data.classmap import ClassMap
from searchseg.data.codecs import decode_binary, decode_colour, decode_index, detect_codec
from searchseg.data.io import DataError, read_image, read_mask
from tests.conftest import save

CLASS_MAP = ClassMap(names=("red", "green"), colors=((255, 0, 0), (0, 255, 0)), ignore_colors=((0, 0, 0),))
EXPECTED = np.array([[0, 1], [255, 0]], np.uint8)
RGB = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 0], [255, 0, 0]]], np.uint8)


def test_colour_mask_rgb(tmp_path):
    path = save(tmp_path / "m.png", RGB)
    assert np.array_equal(decode_colour(read_mask(path, as_rgb=True), CLASS_MAP, path), EXPECTED)


def test_colour_mask_palette_mode(tmp_path):
    palette_image = Image.fromarray(RGB).quantize(colors=3, method=Image.Quantize.MAXCOVERAGE)
    path = tmp_path / "p.png"
    palette_image.save(path)
    assert Image.open(path).mode == "P"
    assert np.array_equal(decode_colour(read_mask(path, as_rgb=True), CLASS_MAP, path), EXPECTED)


def test_colour_mask_rgba_drops_alpha(tmp_path):
    rgba = np.concatenate([RGB, np.full((2, 2, 1), 128, np.uint8)], axis=2)
    path = save(tmp_path / "a.png", rgba)
    assert np.array_equal(decode_colour(read_mask(path, as_rgb=True), CLASS_MAP, path), EXPECTED)


def test_unknown_colour_is_reported_with_file_and_count(tmp_path):
    rgb = RGB.copy()
    rgb[0, 0] = (1, 2, 3)
    path = save(tmp_path / "odd.png", rgb)
    with pytest.raises(DataError, match=r"odd.png.*#010203 \(1 px\)"):
        decode_colour(read_mask(path, as_rgb=True), CLASS_MAP, path)


def test_palette_index_mask_keeps_indices_not_colours(tmp_path):
    """Pascal VOC style: palette indices are the class indices."""
    indices = np.array([[0, 1], [2, 255]], np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette([10, 20, 30] * 256)
    path = tmp_path / "voc.png"
    image.save(path)
    values = read_mask(path, as_rgb=False)
    assert np.array_equal(decode_index(values, 3, 255, path), indices)


def test_sixteen_bit_index_mask(tmp_path):
    values = np.array([[0, 1], [2, 3]], np.uint16)
    path = tmp_path / "m16.png"
    Image.fromarray(values).save(path)
    assert np.array_equal(decode_index(read_mask(path, as_rgb=False), 4, 255, path), values.astype(np.uint8))


def test_index_values_outside_classes_fail(tmp_path):
    with pytest.raises(DataError, match=r"values \[7\] outside classes 0..2"):
        decode_index(np.array([[0, 7], [255, 1]]), 3, 255, tmp_path / "m.png")


@pytest.mark.parametrize("values", [np.array([[0, 255], [255, 0]], np.uint8), np.array([[0, 1], [1, 0]], np.uint8)])
def test_binary_masks(tmp_path, values):
    path = save(tmp_path / "b.png", values)
    assert np.array_equal(decode_binary(read_mask(path, as_rgb=False), path), [[0, 1], [1, 0]])


def test_one_bit_png(tmp_path):
    path = tmp_path / "bit.png"
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("1").save(path)
    assert Image.open(path).mode == "1"
    assert np.array_equal(decode_binary(read_mask(path, as_rgb=False), path), [[0, 1], [1, 0]])


def test_detect_codec(tmp_path):
    binary = save(tmp_path / "b.png", np.array([[0, 255]], np.uint8))
    index = save(tmp_path / "i.png", np.array([[0, 2]], np.uint8))
    assert detect_codec([binary], None) == "binary"
    assert detect_codec([index], None) == "index"
    assert detect_codec([binary], CLASS_MAP) == "colour"
    with pytest.raises(DataError, match="colour image"):
        detect_codec([save(tmp_path / "c.png", RGB)], None)


def test_read_image_modes(tmp_path):
    grey = save(tmp_path / "g.png", np.full((4, 5), 9, np.uint8))
    assert read_image(grey).shape == (4, 5, 3)
    assert read_image(grey, in_channels=1).shape == (4, 5, 1)
    rgba = save(tmp_path / "rgba.png", np.dstack([np.full((4, 5, 3), (10, 20, 30), np.uint8),
                                                 np.zeros((4, 5, 1), np.uint8)]))
    assert read_image(rgba)[0, 0].tolist() == [10, 20, 30]
    deep = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 4095]], np.uint16)).save(deep)
    assert read_image(deep)[0, :, 0].tolist() == [0, 255]


def test_unreadable_image_fails_with_its_name(tmp_path):
    bad = tmp_path / "text.png"
    bad.write_text("not an image")
    with pytest.raises(DataError, match="text.png"):
        read_image(bad)
