"""Failing trials in a real search (local Ray): recorded with their reason, retried from checkpoints as
``max_failures`` allows, and the search goes on."""

from __future__ import annotations

import os
import signal
import threading
import time

import pandas as pd
import pytest
import torch
import yaml

from searchseg.api import OutputConfig, ResourceConfig, Search, SearchConfig
from searchseg.io_utils import read_table
from searchseg.training.models import create_model
from searchseg.tuning.search import run_search
from searchseg.tuning.trainable import _is_out_of_memory
from tests.conftest import pids_matching

pytestmark = pytest.mark.slow

FIXED = ("fixed: {image_size: 64, batch_size: 4, augment: none, arch: unet, encoder: resnet18, group_by: folder,\n"
         "        val_fraction: 0.25, test_fraction: 0.25}\n")


def search(dataset, space_text, tmp_path, name, max_failures):
    space = tmp_path / f"{name}.yaml"
    space.write_text(space_text)
    samples = yaml.safe_load(space_text)["search"]["samples"]  # a search sized by hand, not planned
    options = Search(space=str(space), data=str(dataset), class_map=str(dataset / "classes.yaml"),
                     search=SearchConfig(samples=samples), resources=ResourceConfig(max_failures=max_failures),
                     output=OutputConfig(name=name, results_dir=tmp_path, verbose=0))
    outcome = run_search(options, echo=lambda *_: None)
    return (read_table(outcome.experiment_dir / "trials.csv", keep_default_na=False),
            read_table(outcome.experiment_dir / "curves.csv"))


def test_bad_samples_and_nan_losses_are_recorded_and_the_search_goes_on(search_dataset, local_ray, tmp_path):
    corrupt = tmp_path / "corrupt_encoder.pth"  # weights damaged on disk: every forward pass gives NaN
    encoder = create_model("unet", "resnet18", "none", classes=3).encoder.state_dict()
    torch.save({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in encoder.items()},
               corrupt)
    # With TPE seed 0, the six random start-up samples give invalid, NaN and valid trials (see the test's order).
    space = ("search: {samples: 6, epochs: 2, grace_period: 2, reduction_factor: 2, seed: 0, n_startup_trials: 6,\n"
             "         concurrency: 2}\n" + FIXED +
             f"params:\n  encoder_weights: {{choice: [none, '{corrupt}']}}\n  loss.ce: {{choice: [0.0, 1.0]}}\n")
    trials, curves = search(search_dataset, space, tmp_path, "faulty", max_failures=2)
    assert len(trials) == 6 and trials["trial_id"].is_unique
    by_status = trials.groupby("status")["trial_id"].count().to_dict()
    assert by_status.get("invalid_config", 0) >= 1 and by_status.get("nan_loss", 0) >= 1
    assert by_status.get("completed", 0) >= 1
    nan = trials[trials["status"] == "nan_loss"]
    assert nan["stop_reason"].str.startswith("loss became nan at epoch 1").all()  # the status is a field apart
    assert (nan["encoder_weights"] == str(corrupt)).all()
    invalid = trials[trials["status"] == "invalid_config"]
    assert invalid["stop_reason"].str.contains("are all zero").all() and (invalid["loss.ce"] == 0.0).all()
    assert set(curves["trial_id"]) == set(trials.loc[trials["status"] == "completed", "trial_id"])


def _kill_first_trial_after_epoch(curves_csv, epoch: int, killed: list) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        if curves_csv.is_file():
            curves = pd.read_csv(curves_csv)
            if len(curves) and curves["epoch"].max() >= epoch:
                for pid in pids_matching("ray::ImplicitFunc.train"):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                if killed:  # else the worker is between titles: look again
                    return
        time.sleep(0.2)


@pytest.mark.parametrize("max_failures", [1, 0])
def test_a_crashed_trial_is_retried_from_its_checkpoint_while_retries_remain(search_dataset, local_ray, tmp_path,
                                                                             max_failures):
    name = f"crash{max_failures}"
    # the driver sees epoch 2 a moment after the trial reports it: enough epochs left that it is still running
    space = "search: {samples: 1, epochs: 12, grace_period: 12, reduction_factor: 2}\n" + FIXED + \
            "params:\n  lr: {loguniform: [1.0e-3, 2.0e-3]}\n"
    killed: list[int] = []
    killer = threading.Thread(target=_kill_first_trial_after_epoch, args=(tmp_path / name / "curves.csv", 2, killed))
    killer.start()
    trials, curves = search(search_dataset, space, tmp_path, name, max_failures=max_failures)
    killer.join()
    assert killed, "the trial finished before it could be killed"
    [row] = trials.to_dict("records")
    if max_failures:
        assert row["status"] == "completed" and int(row["resumed_from_epoch"]) >= 2
        assert curves["epoch"].tolist() == list(range(1, 13))  # nothing lost, nothing twice
    else:
        assert row["status"] == "error" and row["stop_reason"] and not row["stop_reason"].startswith("error")
        assert curves["epoch"].max() < 12
        [trial_dir] = (tmp_path / name).glob("train_segmentation_*")  # the reason is error.txt's last line
        assert row["stop_reason"] == (trial_dir / "error.txt").read_text().strip().splitlines()[-1][:300]


def test_a_real_allocation_failure_counts_as_out_of_memory():
    with pytest.raises(RuntimeError) as error:
        torch.empty(2**50, dtype=torch.uint8)  # a petabyte: refused by the allocator at once
    assert _is_out_of_memory(error.value)
    assert not _is_out_of_memory(RuntimeError("shape mismatch"))
