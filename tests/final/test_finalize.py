"""The final model of a budgeted run: the best trial continued, never worse on validation than the trial."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pandas as pd
import pytest
import torch

from searchseg.final.finalize import FinalPace, continue_best
from searchseg.layout import ExperimentLayout
from searchseg.palette import class_palette
from searchseg.spaces.config import TrialConfig
from searchseg.training.checkpoints import load_state
from searchseg.training.engine import StopTraining, Trainer, fit
from searchseg.training.losses import LOSSES, register_loss
from tests.conftest import tiny_data

BASE = dict(image_size=64, batch_size=4, augment="none", device="cpu", encoder="resnet18", lr=3e-3,
            loss={"ce": 0.5, "dice": 0.5})


SLOW_FIRST_SECONDS = 3.0
SLOW_STEP_SECONDS = 0.2


class SlowSteps(torch.nn.Module):
    """A loss term of 0 whose training steps take ``seconds`` more each, only the first ``count`` of them where a
    count is given: a slow first epoch (a cold cache, a loaded machine) or a slow model, made on purpose."""

    def __init__(self, seconds: float, count: int | None = None) -> None:
        super().__init__()
        self.seconds, self.count = seconds, count

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and self.count != 0:
            self.count = None if self.count is None else self.count - 1
            time.sleep(self.seconds)
        return logits.sum() * 0.0


if "test_slow_first_epoch" not in LOSSES:  # this module is also imported by other tests' modules
    register_loss("test_slow_first_epoch")(lambda ctx: SlowSteps(SLOW_FIRST_SECONDS / 4, count=4))
    register_loss("test_slow_steps")(lambda ctx: SlowSteps(SLOW_STEP_SECONDS))
SLOW = {**BASE, "loss": {"ce": 0.5, "dice": 0.5, "test_slow_first_epoch": 1.0}}
SLOW_STEPS = {**BASE, "loss": {"ce": 0.5, "dice": 0.5, "test_slow_steps": 1.0}}

INTERRUPT_AT = {"step": None}  # the training step (counted down) at which a kill of the run is simulated


class InterruptAtStep(torch.nn.Module):
    """A loss term of 0 that raises KeyboardInterrupt at the step ``INTERRUPT_AT`` counts down to."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and INTERRUPT_AT["step"] is not None:
            INTERRUPT_AT["step"] -= 1
            if INTERRUPT_AT["step"] == 0:
                INTERRUPT_AT["step"] = None
                raise KeyboardInterrupt
        return logits.sum() * 0.0


if "test_interrupt" not in LOSSES:
    register_loss("test_interrupt")(lambda ctx: InterruptAtStep())
INTERRUPTIBLE = {**BASE, "loss": {"ce": 0.5, "dice": 0.5, "test_interrupt": 1.0}}


def stopped_trial(folder, data, epochs_run: int = 3):
    """A trial as ASHA leaves it: ``epochs_run`` epochs into a 10-epoch schedule, its state and config saved."""
    config = TrialConfig(**BASE, epochs=10, epoch_steps=4)

    def stop(row, trainer):
        if trainer.epoch == epochs_run:
            raise StopTraining("rung")

    trainer = Trainer(config, data)
    fit(config, data, stop, progress=False, trainer=trainer)
    folder.mkdir(parents=True, exist_ok=True)
    config.save(folder / "best_config.yaml")
    torch.save(trainer.state_dict(), folder / "state.pt")
    return trainer


def val_miou_of(state_dict, config_path, data) -> float:
    trainer = Trainer(TrialConfig.load(config_path), data)
    trainer.model.load_state_dict(state_dict)
    return trainer.evaluate("val")[1]["miou"]


def test_continuing_trains_on_until_the_deadline_and_keeps_its_last_epoch_unless_the_trial_scores_higher(
        tmp_path):
    data = tiny_data(count=16)
    stopped_trial(tmp_path, data)
    started = time.time()
    summary = continue_best(tmp_path, tmp_path / "state.pt", data, deadline=started + 8, step_seconds=0.6,
                            overlays=2, progress=False, echo=lambda *_: None)
    elapsed = time.time() - started
    rule = summary.final_training
    assert rule["rule"] == "continue_best" and rule["start_epoch"] == 3
    assert rule["epochs_run"] > 4  # re-planned from its pace: more epochs than the 3 first planned fit in 8 s
    assert elapsed < 8 + 3  # stops when the next epoch would not fit (evaluation and files after it)
    assert rule["kept_epoch"] in (rule["start_epoch"], rule["epochs_run"])  # never a noisy mid-schedule peak
    # the last epoch unless the trial beat it on nearly every resample of the validation images
    assert (rule["kept_epoch"] == rule["start_epoch"]) == (rule["trial_win_rate"] >= 0.95)
    assert summary.test_miou == pytest.approx(
        rule["trial_test_miou" if rule["kept_epoch"] == rule["start_epoch"] else "last_test_miou"])
    if "best_val_epoch" in rule:  # recorded for comparison when a middle epoch scored best on validation
        assert rule["start_epoch"] < rule["best_val_epoch"] < rule["epochs_run"]
        assert rule["best_val_epoch_val_miou"] > rule["kept_val_miou"]
    saved = torch.load(tmp_path / "final" / "model.pt", weights_only=True)
    assert val_miou_of(saved, tmp_path / "best_config.yaml", data) == pytest.approx(rule["kept_val_miou"], abs=1e-6)
    written = json.loads((tmp_path / "final" / "metrics.json").read_text())
    assert written["test_miou"] == pytest.approx(summary.test_miou)
    assert written["class_colors"] == class_palette(None, data.num_classes).tolist()  # the overlays' colours
    assert (tmp_path / "final" / "curves.csv").is_file() and len(list((tmp_path / "final" / "overlays").iterdir()))


@pytest.mark.parametrize("one_tile", [False, True])
def test_continuing_never_hands_back_a_model_worse_than_the_trial_where_validation_can_show_it(tmp_path, one_tile):
    data = tiny_data(count=20)  # 5 validation images: the fewest on which the trial can be shown clearly better
    if one_tile:  # the same images as crops of one tile: one independent group, on which nothing can be shown
        data = dataclasses.replace(data, groups=["Tile 1"] * 20, decoded_with={"group_by": "folder"})
    trial = stopped_trial(tmp_path, data, epochs_run=8)  # a trained trial: val mIoU about 0.95
    _, trial_test = trial.evaluate("test")
    train = data.splits["train"]
    data.masks[train] = (data.masks[train] + 1) % 3  # from here on every training label names the wrong class
    summary = continue_best(tmp_path, tmp_path / "state.pt", data, deadline=time.time() + 6, step_seconds=0.5,
                            overlays=0, progress=False, echo=lambda *_: None)
    rule = summary.final_training
    assert rule["epochs_run"] > rule["start_epoch"]  # it did train, and it got worse on validation
    assert rule["last_test_miou"] < rule["trial_test_miou"]
    if one_tile:
        assert rule["trial_win_rate"] == 0.0 and rule["kept_epoch"] == rule["epochs_run"]
        return
    assert rule["kept_epoch"] == rule["start_epoch"] and rule["kept_val_miou"] == rule["start_val_miou"]
    assert rule["trial_win_rate"] >= 0.95
    assert summary.test_miou == pytest.approx(trial_test["miou"], abs=1e-6)


def test_with_no_trial_state_the_final_model_trains_from_scratch(tmp_path):
    data = tiny_data(count=16)
    TrialConfig(**BASE, epochs=6, epoch_steps=4).save(tmp_path / "best_config.yaml")
    summary = continue_best(tmp_path, None, data, deadline=time.time() + 6, step_seconds=0.75, overlays=0,
                            progress=False, echo=lambda *_: None)
    rule = summary.final_training
    assert rule["start_epoch"] == 0 and rule["epochs_run"] >= 1
    assert rule["kept_epoch"] == rule["epochs_run"]  # an untrained network never beats a trained one


def test_a_deadline_already_past_still_evaluates_the_trial(tmp_path):
    data = tiny_data(count=16)
    trial = stopped_trial(tmp_path, data)
    summary = continue_best(tmp_path, tmp_path / "state.pt", data, deadline=time.time() - 1, step_seconds=0.1,
                            overlays=0, progress=False, echo=lambda *_: None)
    assert summary.final_training["kept_epoch"] == 3
    assert summary.test_miou == pytest.approx(trial.evaluate("test")[1]["miou"], abs=1e-6)
    assert np.isfinite(summary.final_training["start_val_miou"])


def test_a_slow_first_epoch_does_not_end_the_final_training_early(tmp_path):
    """The first final epoch takes 3 s more than the rest; the schedule is re-planned after every epoch, so the
    training runs on to the deadline and its learning rate reaches zero there, not at half the time."""
    data = tiny_data(count=16)
    stopped_trial(tmp_path, data)
    TrialConfig(**SLOW, epochs=10, epoch_steps=4).save(tmp_path / "best_config.yaml")
    started = time.time()
    deadline = started + 12
    summary = continue_best(tmp_path, tmp_path / "state.pt", data, deadline=deadline, step_seconds=1.5,
                            overlays=0, progress=False, echo=lambda *_: None)
    elapsed = time.time() - started
    rule = summary.final_training
    curves = pd.read_csv(tmp_path / "final" / "curves.csv")
    pace = curves["epoch_seconds"].iloc[1:].max()
    assert deadline - started - 2 * pace - 0.5 < elapsed < deadline - started + 3  # about one epoch unused at most
    assert rule["epochs_run"] - rule["start_epoch"] >= 6  # a 3.5 s pace would have planned 2-3 epochs
    lr = curves["lr"].to_numpy()
    # annealed at the deadline, not before: half-way through the epochs the rate is still well above zero (the
    # re-planned cosine puts it near half; an epoch's pace on a busy machine moves it by tens of percent)
    assert lr[-1] < 0.01 * SLOW["lr"] and lr[len(lr) // 2] > 0.05 * SLOW["lr"]


@pytest.mark.parametrize("with_trial", [True, False])
def test_a_deadline_passing_during_the_first_final_epoch_still_ends_with_a_final_model(tmp_path, with_trial):
    data = tiny_data(count=16)
    if with_trial:
        stopped_trial(tmp_path, data)
    TrialConfig(**SLOW, epochs=6, epoch_steps=4).save(tmp_path / "best_config.yaml")
    summary = continue_best(tmp_path, tmp_path / "state.pt" if with_trial else None, data,
                            deadline=time.time() + 1, step_seconds=0.05, overlays=0, progress=False,
                            echo=lambda *_: None)
    rule = summary.final_training
    assert rule["epochs_run"] == rule["start_epoch"] + 1  # the slow epoch ended past the deadline: no second one
    assert TrialConfig.load(tmp_path / "final" / "config.yaml").epochs == rule["epochs_run"]
    assert np.isfinite(summary.test_miou) and (tmp_path / "final" / "model.pt").is_file()


def test_a_final_share_shorter_than_one_epoch_trains_a_shorter_epoch_that_ends_by_the_deadline(tmp_path):
    """A 40-step epoch of steps of 0.2 s or more does not fit in 4 s: the epoch is cut to the steps that fit, and the
    learning rate anneals to zero at its end (a whole 42-step epoch took a 10-minute run at 512 px to 1.10 of it)."""
    data = tiny_data(count=16)
    stopped_trial(tmp_path, data)
    TrialConfig(**SLOW_STEPS, epochs=10, epoch_steps=40).save(tmp_path / "best_config.yaml")
    started = time.time()
    summary = continue_best(tmp_path, tmp_path / "state.pt", data, deadline=started + 4,
                            step_seconds=SLOW_STEP_SECONDS + 0.05, overlays=0, progress=False, echo=lambda *_: None)
    elapsed = time.time() - started
    curves = pd.read_csv(tmp_path / "final" / "curves.csv")
    assert 0 < curves["steps"].iloc[0] < 40 and summary.final_training["steps_per_epoch"] == 40
    # a whole epoch's sleeps alone take 40 x 0.2 = 8 s; a cut epoch with the evaluation and files after the 4 s
    # deadline took 6.1 s in all in one full-suite run on a busy machine
    assert elapsed < 8
    # annealed towards the shortened end (to zero where the planned steps fit; where the clock cut the epoch a step
    # or two before them, the deadline wins, Trainer.stop_at)
    assert curves["lr"].iloc[-1] < 0.1 * SLOW_STEPS["lr"]


def test_the_pace_fills_the_time_left_with_whole_epochs_and_a_shorter_last_one():
    pace = FinalPace(estimated_step_seconds=0.5)
    assert pace.steps_left(time.time() + 10.2, epoch_steps=10) == 20  # before any epoch: the plan's estimate
    # measured: a first epoch slowed by warming up, then 10 steps of 0.2 s and 1 s of validation and checkpoint
    pace.epochs = [(10, 5.0, 1.0), (10, 2.0, 1.0)]
    assert pace.steps_left(time.time() + 10.0, epoch_steps=10) == 30  # 3 whole epochs of 3 s, too little for more
    assert pace.steps_left(time.time() + 11.5, epoch_steps=10) == 37  # and a last epoch of 7 steps (1.5 s) after them
    assert pace.steps_left(time.time() + 0.9, epoch_steps=10) == 0
    pace.epochs = [(10, 5.0, 1.0)]  # only the slow first epoch measured: it counts until a second one is
    assert pace.steps_left(time.time() + 12.1, epoch_steps=10) == 20


def test_with_no_trial_state_and_the_deadline_already_past_one_epoch_is_trained(tmp_path):
    data = tiny_data(count=16)
    TrialConfig(**BASE, epochs=6, epoch_steps=4).save(tmp_path / "best_config.yaml")
    summary = continue_best(tmp_path, None, data, deadline=time.time() - 5, step_seconds=0.1, overlays=0,
                            progress=False, echo=lambda *_: None)
    assert summary.final_training["epochs_run"] == summary.final_training["kept_epoch"] == 1
    assert TrialConfig.load(tmp_path / "final" / "config.yaml").epochs == 1


def test_a_final_training_interrupted_after_two_epochs_resumes_from_its_own_checkpoint(tmp_path):
    data = tiny_data(count=16)
    stopped_trial(tmp_path, data)  # 3 epochs
    TrialConfig(**INTERRUPTIBLE, epochs=10, epoch_steps=4).save(tmp_path / "best_config.yaml")
    INTERRUPT_AT["step"] = 10  # in the third final epoch of 4 steps
    with pytest.raises(KeyboardInterrupt):
        continue_best(tmp_path, tmp_path / "state.pt", data, deadline=time.time() + 120, step_seconds=5.0,
                      overlays=0, progress=False, echo=lambda *_: None)
    checkpoint = ExperimentLayout(tmp_path).final().checkpoint
    saved = load_state(checkpoint)
    assert saved["trainer"]["epoch"] == 5 and [row["epoch"] for row in saved["history"]] == [4, 5]
    assert not (tmp_path / "final" / "metrics.json").exists()

    summary = continue_best(tmp_path, tmp_path / "state.pt", data, deadline=time.time() + 6, step_seconds=0.5,
                            overlays=0, progress=False, echo=lambda *_: None)
    rule = summary.final_training
    curves = pd.read_csv(tmp_path / "final" / "curves.csv")
    assert rule["start_epoch"] == 3 and rule["epochs_run"] > 5  # went on from its own epoch 5, not the trial's 3
    assert curves["epoch"].tolist() == list(range(4, rule["epochs_run"] + 1))  # every epoch once, in order
    assert not checkpoint.exists()  # the final model is written: nothing left to resume
