"""The data check on deliberately broken real files, and the refusal of broken data everywhere."""

import json
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
from PIL import Image

from searchseg.check import main as check_main
from searchseg.data.checks import MemoryEstimate, full_check
from searchseg.data.spec import resolve_spec
from searchseg.trial import main as trial_main
from tests.conftest import COLOURS, DUBAI, requires, save

CLASSES = ('{"classes": [{"name": "red", "color": "#FF0000"}, {"name": "green", "color": "#00FF00"},'
           ' {"name": "blue", "color": "#0000FF"}], "ignore": [{"color": "#000000"}]}')


def colour_mask(size=(32, 32), colour=COLOURS[1]):
    mask = np.zeros((*size, 3), np.uint8)
    mask[..., :] = COLOURS[0]
    mask[: size[0] // 2] = colour
    return mask


def image(size=(32, 32), channels=3):
    shape = (*size, channels) if channels > 1 else size
    return np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)


@pytest.fixture
def clean(tmp_path):
    root = tmp_path / "clean"
    for i in range(4):
        save(root / "images" / f"ok{i}.png", image())
        save(root / "masks" / f"ok{i}.png", colour_mask())
    (root / "classes.json").write_text(CLASSES)
    return root


@pytest.fixture
def broken(clean):
    images, masks = clean / "images", clean / "masks"
    save(images / "truncated.jpg", image())
    data = (images / "truncated.jpg").read_bytes()
    (images / "truncated.jpg").write_bytes(data[: len(data) // 2])
    save(masks / "truncated.png", colour_mask())
    (images / "empty.png").write_bytes(b"")
    save(masks / "empty.png", colour_mask())
    save(images / "text.png", image())
    (masks / "text.png").write_text("this is not a PNG")
    save(images / "small_mask.png", image((64, 64)))
    save(masks / "small_mask.png", colour_mask((32, 32)))
    save(images / "misaligned.png", image((64, 32)))
    save(masks / "misaligned.png", colour_mask((32, 32)))
    save(images / "odd_colour.png", image())
    save(masks / "odd_colour.png", colour_mask(colour=(1, 2, 3)))
    save(images / "no_mask.png", image())
    save(images / "twin.png", image())
    save(images / "twin.jpg", image())
    save(masks / "twin.png", colour_mask())
    return clean


def run_check(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        check_main([*map(str, args), "--quiet"])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_clean_data_passes(clean, capsys):
    code, out, _ = run_check(capsys, clean, "--class-map", clean / "classes.json")
    assert code == 0 and "result: 0 errors, 1 warnings (warnings only)" in out
    assert "class 'blue' never occurs" in out and "memory of the decoded dataset" in out
    assert "pairs: 4 (by file stem)" in out


def test_the_check_says_which_suffixes_paired_the_files(tmp_path, capsys):
    for i in range(3):
        save(tmp_path / f"{i}_sat.jpg", image())
        save(tmp_path / f"{i}_mask.png", colour_mask(colour=(255, 255, 255)).max(axis=2))
    code, out, _ = run_check(capsys, tmp_path)
    assert code == 0 and "pairs: 3 (image stems ending in '_sat' with mask stems ending in '_mask')" in out


def test_the_stats_count_every_pixel_once_as_typed_fields(clean):
    report = full_check(resolve_spec(clean, clean / "classes.json"), image_size=64, progress=False)
    stats = report.stats
    assert [c.name for c in stats.classes] == ["red", "green", "blue"]
    assert [c.pixels for c in stats.classes] == [4 * 16 * 32, 4 * 16 * 32, 0]  # blue never occurs: a warning
    assert [c.presence for c in stats.classes] == [1.0, 1.0, 0.0]
    assert stats.ignored_pixels == 0 and stats.unknown_pixels == 0 and stats.image_sizes == {"32x32": 4}
    assert stats.memory == MemoryEstimate(image_size=64, bytes=4 * 64 * 64 * 4)
    assert report.to_dict()["stats"]["classes"][0] == asdict(stats.classes[0])


def test_every_problem_is_reported_with_its_file(broken, capsys):
    code, out, _ = run_check(capsys, broken, "--class-map", broken / "classes.json")
    assert code == 1
    expectations = {
        "truncated.jpg: truncated JPEG": "unreadable_file",
        "empty.png: zero bytes": "unreadable_file",
        "text.png: not an image": "unreadable_file",
        "small_mask.png is 32x32": "size_mismatch",
        "misaligned.png is 32x32": "size_mismatch",
        "#010203 is not in the class map": "unknown_colour",
        "1 images have no mask": "image_without_mask",
        "share the name 'twin'": "duplicate_name",
    }
    for fragment, kind in expectations.items():
        line = next((line for line in out.splitlines() if fragment in line), None)
        assert line is not None, f"{fragment!r} not reported:\n{out}"
        assert kind in line
    assert "odd_colour.png" in out and "no_mask.png" not in out.split("image_without_mask")[0]
    assert "--fix-mask-size resizes it" in out and "misaligned pair" in out


def test_fix_mask_size_resizes_only_same_aspect_masks(broken, capsys):
    run_check(capsys, broken, "--class-map", broken / "classes.json", "--fix-mask-size")
    assert Image.open(broken / "masks" / "small_mask.png").size == (64, 64)
    assert (broken / "masks" / "small_mask.png.orig").is_file()
    assert Image.open(broken / "masks" / "misaligned.png").size == (32, 32)


def test_greyscale_rgba_and_sixteen_bit_index_masks(tmp_path, capsys):
    root = tmp_path / "modes"
    save(root / "images" / "grey.png", image(channels=1))
    save(root / "images" / "rgba.png", image(channels=4))
    save(root / "images" / "rgb.png", image())
    save(root / "masks" / "grey.png", np.full((32, 32), 2, np.uint16))  # 16-bit index mask
    save(root / "masks" / "rgba.png", np.full((32, 32), 1, np.uint16))
    save(root / "masks" / "rgb.png", np.full((32, 32), 7, np.uint8))
    (root / "names.yaml").write_text("classes: [a, b, c]\n")
    code, out, _ = run_check(capsys, root, "--class-map", root / "names.yaml")
    assert "greyscale" in out and "RGBA" in out
    assert "mask value 7 is not in the class map" in out and code == 1


def test_infer_class_map_writes_a_draft_that_then_passes(clean, tmp_path, capsys):
    draft = tmp_path / "draft.json"
    run_check(capsys, clean, "--infer-class-map", draft)
    classes = json.loads(draft.read_text())["classes"]
    assert {c["color"] for c in classes} == {"#FF0000", "#00FF00"}
    code, out, _ = run_check(capsys, clean, "--class-map", draft)
    assert code == 0


def test_json_html_and_preflight(clean, tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("search: {samples: 4, epochs: 4, grace_period: 1, reduction_factor: 2}\n"
                     "fixed: {image_size: 32, batch_size: 4, val_fraction: 0.25, test_fraction: 0.25}\n"
                     "params: {lr: {loguniform: [1.0e-3, 1.0e-2]}}\n")
    code, out, _ = run_check(capsys, clean, "--class-map", clean / "classes.json", "--json", tmp_path / "r.json",
                             "--html", tmp_path / "r.html", "--preflight", space)
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["errors"] == 0 and report["stats"]["classes"][0]["name"] == "red"
    preflight = report["preflight"]
    assert preflight["overfit_ok"] and preflight["seconds_per_batch"] > 0
    assert preflight["expected_trial_epochs"] == pytest.approx(4 * 1 + 2 * 1 + 1 * 2)
    assert "search cost" in out
    # 4 images split 2/1/1, each its own group: too few for a planned run to search, and the check says so first
    assert (preflight["val_images"], preflight["val_groups"]) == (1, 1)
    assert "validation: 1 image(s) in 1 independent group(s): a planned run trains the default without a search" in out
    page = (tmp_path / "r.html").read_text()
    assert "plotly" in page and "Class pixel frequency" in page


def test_bad_arguments_exit_2(tmp_path, capsys):
    code, _, err = run_check(capsys, tmp_path / "missing")
    assert code == 2 and "does not exist" in err
    (tmp_path / "bad.json").write_text("{")
    (tmp_path / "images").mkdir()
    code, _, err = run_check(capsys, tmp_path, "--class-map", tmp_path / "bad.json")
    assert code == 2 and "bad.json does not parse" in err


def test_trial_refuses_broken_data_in_one_line(broken, capsys):
    with pytest.raises(SystemExit) as exit_info:
        trial_main(["--data", str(broken), "--class-map", str(broken / "classes.json"), "--output",
                    str(broken.parent / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert "data errors" in err and "unreadable file" in err and "python -m searchseg.check" in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_check_cli_subprocess_has_no_traceback(broken):
    result = subprocess.run([sys.executable, "-m", "searchseg.check", str(broken), "--class-map",
                             str(broken / "classes.json"), "--quiet"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr


@requires(DUBAI)
def test_dubai_published_classes_json_is_caught(capsys):
    code, out, _ = run_check(capsys, DUBAI, "--class-map", DUBAI / "classes.json")
    assert code == 1
    for colour in ("#8429F6", "#3C1098", "#6EC1E4", "#FEDD3A", "#E2A929"):
        assert f"mask colour {colour} is not in the class map" in out
    assert "class 'Water' never occurs" in out


@requires(DUBAI)
def test_dubai_label_mapping_passes(capsys):
    code, out, _ = run_check(capsys, DUBAI, "--class-map", DUBAI / "label_mapping.json")
    assert code == 0 and "0 errors" in out
