"""The experiment folder's layout: one owner of every file name."""

import glob

import pytest

from searchseg.errors import UserError
from searchseg.layout import ExperimentLayout


def test_a_folder_without_run_json_is_one_line_naming_it_and_the_fix(tmp_path):
    with pytest.raises(UserError, match=rf"{tmp_path} is not a searchseg experiment \(no run.json\); pass its folder"):
        ExperimentLayout(tmp_path).require_run("pass its folder")
    (tmp_path / "run.json").write_text("{}")
    ExperimentLayout(tmp_path).require_run("unused")


def test_trial_folders_are_ray_tunes_folders_and_one_trial_is_found_by_its_escaped_id(tmp_path):
    for name in ("train_segmentation_ab12_1_lr=0.1", "train_segmentation_a[b]_2_lr=0.2", "train_segmentation_x"):
        (tmp_path / name).mkdir()
    (tmp_path / "train_segmentation_ab12_9_file").write_text("not a folder")
    layout = ExperimentLayout(tmp_path)
    assert [trial.path.name for trial in layout.trial_folders()] == [
        "train_segmentation_a[b]_2_lr=0.2", "train_segmentation_ab12_1_lr=0.1"]
    assert [trial.path.name for trial in layout.trial_folders(glob.escape("a[b]"))] == [
        "train_segmentation_a[b]_2_lr=0.2"]
    assert layout.trial_folders(glob.escape("zz")) == []


def test_a_trial_retrained_on_its_own_gets_its_own_final_folder(tmp_path):
    layout = ExperimentLayout(tmp_path)
    assert layout.final().path == tmp_path / "final"
    assert layout.final("ab12").metrics == tmp_path / "final-ab12" / "metrics.json"
    assert layout.final().export("onnx").name == "model.onnx"
    assert layout.final().export("torchscript").name == "model.ts"
