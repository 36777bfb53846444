"""Damaged files and out-of-range flags: one line, exit 2, no traceback, nothing written outside the results."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import pytest

from searchseg.check import main as check_main
from searchseg.data.io import DataError, read_image, read_mask
from searchseg.report.__main__ import main as report_main
from searchseg.run import main as run_main
from searchseg.trial import main as trial_main

RUN = {"name": "exp", "space": "lr_wd", "settings": {"samples": 2, "epochs": 1, "grace_period": 1},
       "fixed": {"image_size": 64}, "data_fingerprint": "abc", "class_names": ["a", "b"], "plan": None}
TRIALS = "trial_id,status,lr,best_val_miou,epochs_run,wall_seconds\nt1,completed,0.001,0.4,1,2.0\n"


def experiment(root: Path, run: dict | str = RUN, trials: str | bytes = TRIALS) -> Path:
    folder = root / "exp"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(run if isinstance(run, str) else json.dumps(run))
    if isinstance(trials, bytes):
        (folder / "trials.csv").write_bytes(trials)
    else:
        (folder / "trials.csv").write_text(trials)
    return folder


DAMAGED = {
    "run.json not JSON": ({"run": "{not json"}, "run.json cannot be read"),
    "run.json empty": ({"run": ""}, "run.json cannot be read"),
    "run.json a list": ({"run": "[1, 2]"}, "run.json is not what searchseg wrote"),
    "run.json without settings": ({"run": {k: v for k, v in RUN.items() if k != "settings"}}, "missing settings"),
    "run.json settings null": ({"run": {**RUN, "settings": None}}, "settings or fixed keys are damaged"),
    "run.json settings not a mapping": ({"run": {**RUN, "settings": [1]}}, "settings or fixed keys are damaged"),
    "run.json unknown setting": ({"run": {**RUN, "settings": {"sample": 2}}}, "settings or fixed keys are damaged"),
    "run.json samples a string": ({"run": {**RUN, "settings": {"samples": "ten"}}}, "search.samples must be a whole"),
    "run.json epochs 0": ({"run": {**RUN, "settings": {"epochs": 0}}}, "search.epochs must be >= 1"),
    "run.json fixed not a mapping": ({"run": {**RUN, "fixed": "x"}}, "settings or fixed keys are damaged"),
    "trials.csv random bytes": ({"trials": os.urandom(2000)}, "trials.csv"),
    "trials.csv without status": ({"trials": "trial_id,lr\nt1,0.1\n"}, "lacks the columns status"),
    "trials.csv empty file": ({"trials": ""}, "trials.csv cannot be read as a table"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_experiment_is_one_line_for_report(tmp_path, capsys, case):
    files, fragment = DAMAGED[case]
    folder = experiment(tmp_path, **files)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(SystemExit) as exit_info:
        report_main([str(folder)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err
    assert sorted(p.name for p in folder.iterdir()) == before  # no half-written report


def test_resume_needs_the_keys_it_continues_from(tmp_path, capsys):
    experiment(tmp_path, run={k: v for k, v in RUN.items() if k != "data_fingerprint"})
    with pytest.raises(SystemExit):
        run_main(["--resume", "--name", "exp", "--results", str(tmp_path), "--quiet"])
    assert "missing data_fingerprint" in capsys.readouterr().err


@pytest.mark.parametrize("case", [c for c in sorted(DAMAGED) if c.startswith("run.json")])
def test_a_damaged_experiment_is_one_line_for_resume(tmp_path, capsys, case):
    files, fragment = DAMAGED[case]
    experiment(tmp_path, **files)
    with pytest.raises(SystemExit) as exit_info:
        run_main(["--resume", "--name", "exp", "--results", str(tmp_path), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


def test_a_damaged_budget_plan_is_one_line_for_resume(tmp_path, capsys):
    experiment(tmp_path, run={**RUN, "plan": {"budget_seconds": 60}})
    (tmp_path / "exp" / "space.yaml").write_text("params: {lr: {loguniform: [1.0e-4, 1.0e-2]}}\n")
    with pytest.raises(SystemExit):
        run_main(["--resume", "--name", "exp", "--results", str(tmp_path), "--quiet"])
    assert "its budget plan is damaged" in capsys.readouterr().err


SPACE_SETTINGS = {
    'samples: "ten"': "search.samples must be a whole number, got 'ten'",
    "samples: 2.5": "search.samples must be a whole number, got 2.5",
    "samples: true": "search.samples must be a whole number, got True",
    "epochs: [3]": "search.epochs must be a whole number",
    "concurrency: 1.5": "search.concurrency must be a whole number",
    "final_share: half": "search.final_share must be a number",
    "final_share: 1.5": "final_share must be between 0 and 1",
    "seed: 0.1": "search.seed must be a whole number",
}


@pytest.mark.parametrize("setting", sorted(SPACE_SETTINGS))
def test_mistyped_search_settings_are_one_line(tmp_path, capsys, setting):
    space = tmp_path / "space.yaml"
    space.write_text(f"search: {{{setting}}}\nparams: {{lr: {{loguniform: [1.0e-4, 1.0e-2]}}}}\n")
    with pytest.raises(SystemExit) as exit_info:
        run_main(["--space", str(space), "--results", str(tmp_path / "results"), "--quiet"])
    assert exit_info.value.code == 2
    assert SPACE_SETTINGS[setting] in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


FLAGS = {
    ("--cpus-per-trial", "-1"): "--cpus-per-trial -1 must be more than 0",
    ("--cpus-per-trial", "0"): "--cpus-per-trial 0 must be more than 0",
    ("--cpus-per-trial", "nan"): "--cpus-per-trial nan must be more than 0",
    ("--gpus-per-trial", "-0.5"): "--gpus-per-trial -0.5 must be 0 or more",
    ("--max-failures", "-1"): "--max-failures -1 must be 0 or more",
    ("--concurrency", "0"): "concurrency must be >= 1",
    ("--storage", "/proc/no-such-place"): "cannot create /proc/no-such-place",
}


@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_out_of_range_flags_are_one_line_before_anything_starts(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as exit_info:
        run_main([*flag, "--results", str(tmp_path / "results"), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and FLAGS[flag] in err, err


def test_a_read_only_results_folder_is_one_line(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only folders")
    (tmp_path / "results").mkdir(mode=0o555)
    with pytest.raises(SystemExit):
        run_main(["--results", str(tmp_path / "results"), "--quiet"])
    assert "choose a writable --results or --storage" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range_is_one_line(tmp_path, capsys, port):
    folder = experiment(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        report_main([str(folder), "--serve", "--port", port])
    assert exit_info.value.code == 2
    assert f"--port {port} is not a port" in capsys.readouterr().err


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A few hundred bytes of PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("role", ["image", "mask"])
def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, capsys, role):
    data = tmp_path / "data"
    for index in range(4):
        png_declaring(data / "images" / f"{index}.png", 32, 32)
        png_declaring(data / "masks" / f"{index}.png", 32, 32)
    png_declaring(data / f"{role}s" / "0.png", 30000, 30000)
    with pytest.raises(DataError, match=f"{role} .*0.png declares 900,000,000 pixels, more than the"):
        (read_image if role == "image" else lambda p: read_mask(p, False))(data / f"{role}s" / "0.png")
    with pytest.raises(SystemExit) as exit_info:
        trial_main(["--data", str(data), "--output", str(tmp_path / "out"), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "1 unreadable file" in err, err  # the quick check before decoding
    with pytest.raises(SystemExit):
        check_main([str(data)])
    report = capsys.readouterr().out
    assert "0.png" in report and "decompression bomb" in report and "Traceback" not in report


@pytest.mark.parametrize("flag", ["--json", "--html", "--infer-class-map"])
def test_check_refuses_an_unwritable_output_before_checking(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as exit_info:
        check_main([str(tmp_path), flag, "/proc/no/such/report.out"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"choose a writable {flag} path" in err, err


# Command lines that are wrong before anything is loaded: refused in one line, exit 2, nothing written.
RUN_ARGUMENTS = {
    ("--budget", "0"): "--budget '0' must be longer than 0 seconds",
    ("--budget", "-5"): "--budget '-5' is not a duration",
    ("--budget", "abc"): "--budget 'abc' is not a duration",
    ("--budget", "5x"): "--budget '5x' is not a duration",
    ("--budget", "1h-2m"): "--budget '1h-2m' is not a duration",
    ("--budget", "300", "--samples", "-1"): "--samples -1 must be a whole number of at least 0",
    ("--budget", "300", "--epochs", "0"): "--epochs 0 must be a whole number of at least 1",
    ("--budget", "300", "--smoke"): "drop --budget or --smoke",
    ("--budget", "100000000h"): "is longer than 30 days",
    ("--budget", "1e29"): "--budget '1e29' is not a duration",
    ("--cluster-wait", "soon"): "--cluster-wait 'soon' is not a duration",
    ("--budget", "60", "--set", "epoch_steps=4"): "--set epoch_steps: a planned run",
    ("--set", "epoch_steps=4"): "--set epoch_steps: a planned run",
    ("--set", "val_fraction=0"): "the val split is empty (val_fraction=0)",
    ("--budget", "60", "--set", "test_fraction=0"): "the test split is empty (test_fraction=0)",
    ("--warm-start", "/no/such/experiment"): "--warm-start /no/such/experiment: no trials.csv there",
    ("--set", "epochs=3"): "--set epochs: a trial's length is a search setting; use --epochs N",
    ("--set", "image_size=abc"): "config key 'image_size': 'abc' is not a valid int",
    ("--set", "image_size=-1"): "config key 'image_size': -1 is below its range",
    ("--set", "image_size=33"): "image_size=33 must be a multiple of 32",
    ("--set", "batch_size=0"): "config key 'batch_size': 0 is below its range",
    ("--set", "in_channels=0"): "config key 'in_channels': 0 is not one of 1, 3",
    ("--set", "val_fraction=1.5"): "config key 'val_fraction': 1.5 is above its range",
    ("--set", "test_fraction=-0.1"): "config key 'test_fraction': -0.1 is below its range",
    ("--set", "device=tpu"): "config key 'device': 'tpu' is not one of auto, cpu, cuda",
    ("--set", "optimizer=nosuch"): "unknown optimizer 'nosuch'; valid optimizers: adam, adamw, sgd",
    ("--set", "scheduler=nosuch"): "unknown learning-rate schedule 'nosuch'; valid learning-rate schedules: const",
    ("--set", "augment=nosuch"): "unknown augmentation preset 'nosuch'",
    ("--set", "nosuchkey=1"): "unknown config key 'nosuchkey'",
    ("--set", "noequals"): "--set 'noequals' is not key=value",
    ("--set", "=1"): "--set '=1' is not key=value",
    ("--set", "loss.nosuch=1"): "unknown loss 'nosuch'",
    ("--set", "lr=-1"): "--set lr: searched by space arch_loss",
    ("--set", "arch=unet"): "--set arch: searched by space arch_loss",
    ("--set", "loss.ce=1"): "--set loss.ce: searched by space arch_loss",
    ("--space", "lr_wd", "--set", "encoder=nosuch"): "unknown encoder 'nosuch'",
    ("--space", "lr_wd", "--set", "arch=nosuch"): "unknown architecture 'nosuch'",
    ("--space", "lr_wd", "--set", "loss.ce=-1"): "loss weight loss.ce=-1 must be a finite number >= 0",
    ("--space", "lr_wd", "--set", "loss.ce=abc"): "loss weight loss.ce='abc' is not a number",
    ("--space", "nosuchspace"): "unknown search space 'nosuchspace'",
    ("--space", "/no/such/space.yaml"): "search space file /no/such/space.yaml does not exist",
    ("--data", "/no/such/dataset"): "data path /no/such/dataset does not exist",
    ("--class-map", "/no/such/classes.yaml"): "class map /no/such/classes.yaml does not exist",
    ("--samples", "0"): "--samples 0 trains the space's first start configuration with a whole budget",
    ("--samples", "-3"): "samples must be >= 1",
    ("--epochs", "0"): "epochs must be >= 1",
    ("--name", ".."): "--name '..' must be a single folder name",
    ("--name", "a/b"): "--name 'a/b' must be a single folder name",
    ("--name", "."): "--name '.' must be a single folder name",
    ("--resume", "--name", "never-ran"): "never-ran is not a searchseg experiment",
}


@pytest.mark.parametrize("arguments", sorted(RUN_ARGUMENTS), ids=" ".join)
def test_a_wrong_command_line_is_one_line_and_writes_nothing(tmp_path, capsys, arguments):
    with pytest.raises(SystemExit) as exit_info:
        run_main([*arguments, "--results", str(tmp_path / "results"), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and RUN_ARGUMENTS[arguments] in err, err
    assert "Traceback" not in err
    written = list((tmp_path / "results").rglob("*")) if (tmp_path / "results").exists() else []
    assert all(path.is_dir() or path.name == ".lock" for path in written), written  # not a result, not a table


LR = "params: {lr: {loguniform: [1.0e-4, 1.0e-2]}}\n"
# Space files that are wrong: refused in one line naming the file and the key, before the data is looked at.
SPACE_FILES = {
    "loguniform from 0": ("params: {lr: {loguniform: [0, 1]}}\n", "params.lr: loguniform needs low > 0"),
    "range reversed": ("params: {lr: {loguniform: [1.0e-2, 1.0e-4]}}\n", "needs low < high"),
    "empty choice": ("params: {arch: {choice: []}}\n", "choice needs a non-empty list"),
    "uniform of a string": ("params: {lr: {uniform: [a, 1]}}\n", "uniform needs [low, high]"),
    "unknown distribution": ("params: {lr: {normal: [0, 1]}}\n", "give exactly one of choice, uniform"),
    "unknown parameter": ("params: {nosuch: {choice: [1, 2]}}\n", "params.nosuch: unknown config key"),
    "condition on an undeclared key": ("params: {lr: {loguniform: [1.0e-4, 1.0e-2], when: {nosuch: 1}}}\n",
                                       "when refers to 'nosuch'"),
    "unknown architecture among the choices": ("params: {arch: {choice: [unet, nosuch]}}\n",
                                               "unknown architecture 'nosuch'"),
    "YAML that does not parse": ("params: {lr: [\n", "does not parse"),
    "a list": ("- 1\n- 2\n", "expected a mapping"),
    "empty": ("", "no parameters to search"),
    "start with an unsearched key": (LR + "start: [{nosuch: 1}]\n", "are not searched parameters"),
    "start outside the distribution": (LR + "start: [{lr: 5.0}]\n", "lr=5.0 is outside its distribution"),
    "reduction factor 1": ("search: {reduction_factor: 1}\n" + LR, "search.reduction_factor must be >= 2"),
    "grace period 0": ("search: {grace_period: 0}\n" + LR, "search.grace_period must be in 1..epochs"),
    "unknown metric": ("search: {metric: nosuch}\n" + LR, "search.metric must be one of"),
    "mode up": ("search: {mode: up}\n" + LR, "search.mode must be max or min"),
    "unknown fixed key": ("fixed: {nosuch: 1}\n" + LR, "fixed.nosuch: unknown config key"),
    "unknown fixed architecture": ("fixed: {arch: nosuch}\n" + LR, "fixed.arch: unknown architecture"),
    "unknown fixed preset": ("fixed: {augment: nosuch}\n" + LR, "fixed.augment: unknown augmentation preset"),
    "fixed epochs (ignored before)": ("fixed: {epochs: 3}\n" + LR, "fixed.epochs: a trial's length is a search"),
    "int step a string": ("params: {batch_size: {int: [2, 16], step: two}}\n", "step must be a positive integer"),
    "int step zero": ("params: {batch_size: {int: [2, 16], step: 0}}\n", "step must be a positive integer"),
    "int step negative": ("params: {batch_size: {int: [2, 16], step: -2}}\n", "step must be a positive integer"),
    "int step a fraction": ("params: {batch_size: {int: [2, 16], step: 0.5}}\n", "step must be a positive integer"),
    "uniform step wider than the range": ("params: {weight_decay: {uniform: [0.0, 0.1], step: 0.5}}\n",
                                          "step 0.5 is wider than the range"),
    "step on a log scale": ("params: {batch_size: {int: [2, 16], step: 2, log: true}}\n",
                            "step and a log scale do not go together"),
    "log not a boolean": ("params: {batch_size: {int: [2, 16], log: sometimes}}\n", "log must be true or false"),
    "start off an int step": ("params: {batch_size: {int: [2, 16], step: 2}}\nstart: [{batch_size: 5}]\n",
                              "batch_size=5 is outside its distribution"),
    "start a fraction of an int": ("params: {batch_size: {int: [2, 16]}}\nstart: [{batch_size: 4.5}]\n",
                                   "batch_size=4.5 is outside its distribution"),
}


@pytest.mark.parametrize("case", sorted(SPACE_FILES))
def test_a_wrong_space_file_is_one_line_naming_it(tmp_path, capsys, case):
    text, fragment = SPACE_FILES[case]
    space = tmp_path / "space.yaml"
    space.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        run_main(["--space", str(space), "--data", str(tmp_path / "no-data"), "--results", str(tmp_path / "results"),
                  "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err and str(space) in err, err
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.csv"))
