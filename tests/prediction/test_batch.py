"""Which images a predict command reads, and under which names their masks are written."""

from __future__ import annotations

import numpy as np
import pytest

from searchseg.errors import UserError
from searchseg.prediction.batch import expand_inputs
from tests.conftest import save


@pytest.fixture
def images(tmp_path):
    tile = np.zeros((8, 8, 3), np.uint8)
    for name in ("area 1/a.png", "area 1/deep/b.jpg", "area 2/a.png", "loose.tif"):
        save(tmp_path / name, tile)
    (tmp_path / "area 1" / "notes.txt").write_text("not an image")
    (tmp_path / "area 1" / ".hidden.png").write_bytes(b"")
    return tmp_path


def test_a_folder_gives_every_image_below_it_named_by_its_relative_path(images):
    found = expand_inputs([str(images)])
    assert [name for _, name in found] == ["area 1/a", "area 1/deep/b", "area 2/a", "loose"]
    assert all(path.is_file() for path, _ in found)


def test_files_globs_and_manifests_are_read_as_given(images):
    (images / "list.csv").write_text("image,comment\narea 1/deep/b.jpg,x\narea 2/a.png,y\n")
    found = expand_inputs([str(images / "loose.tif"), str(images / "area 1" / "*.png"), str(images / "list.csv")])
    assert [name for _, name in found] == ["loose", "a", "area 1/deep/b", "area 2/a"]


def test_the_same_image_named_twice_is_predicted_once(images):
    assert len(expand_inputs([str(images / "loose.tif"), str(images / "loose.tif")])) == 1


@pytest.mark.parametrize("given, message", [
    (["area 1/a.png", "area 2/a.png"], "would both be written as a.png; give their folder"),
    (["nothing*.png"], "neither an image, a folder, a CSV manifest nor a pattern"),
    (["area 1/deep/notes"], "neither an image"),
])
def test_inputs_that_cannot_be_named_or_found_are_one_line(images, given, message):
    with pytest.raises(UserError, match=message):
        expand_inputs([str(images / g) for g in given])


def test_an_empty_folder_or_manifest_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images found"):
        expand_inputs([str(tmp_path / "empty")])
    (tmp_path / "list.csv").write_text("image\n")
    with pytest.raises(UserError, match="has no rows"):
        expand_inputs([str(tmp_path / "list.csv")])


def test_manifest_rows_that_point_outside_are_written_inside_the_output_folder(images, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere")
    save(outside / "far.png", np.zeros((8, 8, 3), np.uint8))
    (images / "area 1" / "list.csv").write_text(f"image\n../loose.tif\n{outside / 'far.png'}\n./a.png\n")
    names = [name for _, name in expand_inputs([str(images / "area 1" / "list.csv")])]
    assert names[0] == "_/loose" and names[2] == "a"
    out = tmp_path_factory.mktemp("out")
    for name in names:  # every mask, colour and overlay path stays below its own folder of OUT
        for kind in ("masks", "colour", "overlays"):
            assert (out / kind / f"{name}.png").resolve().is_relative_to((out / kind).resolve()), name
