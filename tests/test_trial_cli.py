"""The single-trial CLI end to end, on real files: the built-in demo and the shared datasets."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from searchseg.trial import main, parse_assignments
from tests.conftest import CHASE, DUBAI, requires

FAST = ["--set", "image_size=64", "batch_size=8", "--quiet"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "searchseg.trial", *args], capture_output=True, text=True,
                          timeout=600)


def test_builtin_demo_then_resume(tmp_path, capsys):
    main(["--epochs", "1", "--output", str(tmp_path), "--name", "demo", *FAST])
    out = capsys.readouterr().out
    assert "val_mIoU" in out and "best val mIoU" in out
    trial = tmp_path / "demo"
    for name in ("config.yaml", "augmentation.json", "metrics.csv", "checkpoint.pt", "best_model.pt",
                 "summary.json"):
        assert (trial / name).is_file(), name
    assert json.loads((trial / "summary.json").read_text())["status"] == "completed"

    main(["--resume", "--name", "demo", "--epochs", "2", "--output", str(tmp_path), "--quiet"])
    metrics = pd.read_csv(trial / "metrics.csv")
    assert metrics["epoch"].tolist() == [1, 2]
    assert "epoch 2/2" in capsys.readouterr().out

    for garbled, message in (("epoch,val_miou\none,0.5\n", "holds epochs that are not numbers"),
                             ("val_miou\n0.5\n", "lacks the columns epoch")):
        (trial / "metrics.csv").write_text(garbled)
        with pytest.raises(SystemExit) as exit_info:
            main(["--resume", "--name", "demo", "--epochs", "3", "--output", str(tmp_path), "--quiet"])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_bad_input_is_one_line_exit_2_no_traceback(tmp_path):
    result = run_cli("--set", "arch=unet3000", "--output", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "unknown architecture 'unet3000'; valid architectures:" in result.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--set", "lr"], "not key=value"),
    (["--set", "loss.hinge=1"], "unknown loss 'hinge'"),
    (["--set", "image_size=100"], "multiple of 32"),
    (["--data", "/no/such/folder"], "does not exist"),
    (["--set", "val_fraction=0.6", "test_fraction=0.5"], "leaves no training data"),
    (["--resume", "--name", "never-ran"], "no checkpoint.pt"),
    (["--set", "encoder_weights=imagenet"], "encoder_weights=none"),
    (["--name", "../outside"], "must be a single folder name"),
    (["--resume", "--name", "a/b"], "must be a single folder name"),
])
def test_bad_inputs(tmp_path, capsys, monkeypatch, args, fragment):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--output", str(tmp_path), "--quiet"])
    assert exit_info.value.code == 2
    assert fragment in capsys.readouterr().err


def test_existing_trial_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "metrics.csv").write_text("epoch\n1\n")
    with pytest.raises(SystemExit):
        main(["--name", "taken", "--output", str(tmp_path)])
    assert "--resume" in capsys.readouterr().err


def test_parse_assignments_reads_numbers_and_names():
    assert parse_assignments(["lr=1e-3", "arch=fpn", "amp=false", "loss.dice=0.5"]) == {
        "lr": 0.001, "arch": "fpn", "amp": False, "loss.dice": 0.5}


@pytest.mark.slow
@requires(DUBAI)
def test_dubai_with_its_label_mapping(tmp_path, capsys):
    main(["--data", str(DUBAI), "--class-map", str(DUBAI / "label_mapping.json"), "--epochs", "1",
          "--output", str(tmp_path), "--name", "dubai", *FAST])
    assert "72 pairs" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "dubai" / "metrics.csv")["val_miou"].between(0, 1).all()


@pytest.mark.slow
@requires(CHASE)
def test_chase_with_first_grader_masks(tmp_path, capsys):
    main(["--data", str(CHASE), "--epochs", "1", "--output", str(tmp_path), "--name", "chase",
          "--set", "mask_suffix=_1stHO", "loss.dice=1", "image_size=64", "--quiet"])
    out = capsys.readouterr().out
    assert "28 pairs" in out and "2 classes" in out
