import gc
import math
import random
import time
import weakref

import numpy as np
import pytest
import torch

from searchseg.errors import UserError
from searchseg.spaces.config import TrialConfig
from searchseg.training.costs import measure_costs
from searchseg.training.engine import StopTraining, Trainer, fit
from searchseg.training.schedules import lr_factor
from tests.conftest import tiny_data

BASE = dict(image_size=64, batch_size=4, augment="none", device="cpu", encoder="resnet18")


def test_overfits_a_tiny_batch():
    data = tiny_data()
    data.splits["val"] = data.splits["train"]  # measure on the very batch it trains on
    config = TrialConfig(**BASE, epochs=40, lr=3e-3, scheduler="constant", loss={"ce": 0.5, "dice": 0.5})
    result = fit(config, data, progress=False)
    first, last = result.history[0], result.history[-1]
    assert result.status == "completed" and result.epochs_run == 40
    assert last["train_loss"] < 0.5 * first["train_loss"]
    assert last["val_miou"] > first["val_miou"] + 0.3
    assert result.best_miou > 0.8


def test_resume_continues_at_the_saved_epoch_as_if_never_stopped():
    data = tiny_data()
    config = TrialConfig(**BASE, epochs=3, augment_strength=1.0, seed=7)
    uninterrupted = fit(config, data, progress=False).history

    saved = {}

    def stop_after_two(row, trainer):
        if trainer.epoch == 2:
            saved.update(trainer.state_dict())
            raise StopTraining("simulated interruption")

    partial = fit(config, data, stop_after_two, progress=False)
    assert partial.status == "stopped" and partial.epochs_run == 2
    resumed = fit(config, data, resume_state=saved, progress=False).history
    assert [row["epoch"] for row in resumed] == [3]
    assert resumed[0]["val_miou"] == pytest.approx(uninterrupted[2]["val_miou"], abs=1e-6)
    assert resumed[0]["train_loss"] == pytest.approx(uninterrupted[2]["train_loss"], rel=1e-5)


def test_a_trainer_draws_from_its_own_seed_and_leaves_the_callers_random_state_alone():
    data = tiny_data()
    config = TrialConfig(**BASE, epochs=1, seed=3)
    torch.manual_seed(123)
    random.seed(123)
    np.random.seed(123)
    expected = [*torch.rand(3).tolist(), random.random(), np.random.rand()]
    torch.manual_seed(123)
    random.seed(123)
    np.random.seed(123)
    first = Trainer(config, data)
    first.train_one_epoch()
    assert [*torch.rand(3).tolist(), random.random(), np.random.rand()] == expected
    torch.manual_seed(999)  # another caller state: the same seed still draws the same weights and epoch
    second = Trainer(config, data)
    second.train_one_epoch()
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_nan_loss_ends_the_run_with_its_reason():
    config = TrialConfig(**BASE, epochs=5)
    trainer = Trainer(config, tiny_data())
    trainer.model.segmentation_head[0].weight.data.fill_(float("nan"))  # as diverged weights would be
    result = fit(config, trainer.data, progress=False, trainer=trainer)
    assert result.status == "nan_loss"
    assert "loss became" in result.reason and "epoch" in result.reason
    assert result.epochs_run < 5


def test_binary_task_uses_one_output_channel():
    data = tiny_data()
    data.masks = (data.masks > 0).astype("uint8")
    data.class_names, data.binary = ("background", "foreground"), True
    trainer = Trainer(TrialConfig(**BASE, epochs=1, loss={"ce": 1, "dice": 1}), data)
    assert trainer.model.segmentation_head[0].out_channels == 1
    loss, metrics = trainer.evaluate()
    assert math.isfinite(loss) and set(metrics["iou_per_class"]) == {"background", "foreground"}


def test_lr_schedules():
    assert lr_factor(0, 100, 10, "cosine") == pytest.approx(0.1)
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(100, 100, 10, "cosine") == pytest.approx(0.0)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(50, 100, 0, "poly") == pytest.approx(0.5 ** 0.9)
    assert lr_factor(99, 100, 0, "constant") == 1.0


@pytest.mark.parametrize("images", [8, 40])
def test_an_epoch_of_epoch_steps_is_that_many_optimizer_steps_on_any_dataset_size(images):
    data = tiny_data(count=images, size=32)
    trainer = Trainer(TrialConfig(**{**BASE, "image_size": 32}, epochs=2, epoch_steps=5), data)
    assert trainer.steps_per_epoch == 5 and trainer.total_steps == 10
    fit(trainer.config, data, progress=False, trainer=trainer)
    assert trainer.optimizer.state_dict()["state"][0]["step"] == 10  # Adam counts the updates it made


def test_epoch_steps_draw_every_image_before_repeating_one():
    data = tiny_data(count=8, size=32)  # 4 training images
    trainer = Trainer(TrialConfig(**{**BASE, "image_size": 32, "batch_size": 2}, epochs=1, epoch_steps=3), data)
    drawn = list(trainer.train_loader.sampler)
    assert len(drawn) == 6 and sorted(drawn[:4]) == [0, 1, 2, 3]


def test_resume_with_epoch_steps_continues_as_if_never_stopped():
    data = tiny_data()
    config = TrialConfig(**BASE, epochs=3, epoch_steps=3, seed=3, augment_strength=1.0)
    uninterrupted = fit(config, data, progress=False).history
    saved = {}

    def stop_after_one(row, trainer):
        saved.update(trainer.state_dict())
        raise StopTraining("simulated interruption")

    fit(config, data, stop_after_one, progress=False)
    resumed = fit(config, data, resume_state=saved, progress=False).history
    assert [row["epoch"] for row in resumed] == [2, 3]
    assert resumed[-1]["val_miou"] == pytest.approx(uninterrupted[-1]["val_miou"], abs=1e-6)


def test_moving_the_horizon_stretches_the_running_schedule_and_ends_it_with_a_shorter_epoch():
    trainer = Trainer(TrialConfig(**BASE, epochs=2, epoch_steps=4, lr=1e-2), tiny_data())
    fit(trainer.config, trainer.data, progress=False, trainer=trainer)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.0)  # the cosine ended with training
    trainer.set_remaining_steps(6)
    assert trainer.total_steps == 14 and trainer.config.epochs == 4
    history = fit(trainer.config, trainer.data, progress=False, trainer=trainer).history
    assert trainer.epoch == 4 and trainer.last_epoch_steps == 2  # 4 steps, then the 2 left
    assert history[0]["lr"] > 0 and history[-1]["lr"] == pytest.approx(0.0)  # annealed again, at step 14
    onecycle = Trainer(TrialConfig(**BASE, epochs=2, epoch_steps=4, scheduler="onecycle"), tiny_data())
    onecycle.set_remaining_steps(12)  # its horizon is fixed when built: only the epochs move
    assert onecycle.total_steps == 8 and onecycle.config.epochs == 3


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_a_dropped_trainer_is_freed_at_once_without_the_garbage_collector(scheduler):
    # on a GPU a trainer kept alive by a reference cycle holds its memory until the collector runs
    trainer = Trainer(TrialConfig(**BASE, epochs=1, epoch_steps=2, scheduler=scheduler), tiny_data())
    fit(trainer.config, trainer.data, progress=False, trainer=trainer)
    model = weakref.ref(trainer.model)
    gc.disable()
    try:
        del trainer
        assert model() is None
    finally:
        gc.enable()


def test_an_epoch_takes_no_step_after_its_stop_time():
    trainer = Trainer(TrialConfig(**BASE, epochs=2, epoch_steps=4), tiny_data())
    trainer.stop_at = time.time()  # passed already: one step, then the epoch ends
    trainer.train_one_epoch()
    assert trainer.last_epoch_steps == 1
    trainer.stop_at = time.time() + 600
    trainer.train_one_epoch()
    assert trainer.last_epoch_steps == 4


def test_the_moved_horizon_travels_with_the_checkpoint():
    trainer = Trainer(TrialConfig(**BASE, epochs=2, epoch_steps=4), tiny_data())
    trainer.set_remaining_steps(24)
    resumed = Trainer(TrialConfig(**BASE, epochs=2, epoch_steps=4), tiny_data())
    resumed.load_state_dict(trainer.state_dict())
    assert resumed.total_steps == 24


def test_training_uses_the_configs_thread_count_records_it_and_gives_the_process_its_own_back():
    before = torch.get_num_threads()
    seen = []
    config = TrialConfig(**BASE, epochs=1, epoch_steps=1, threads=1)
    fit(config, tiny_data(), lambda row, trainer: seen.append(torch.get_num_threads()), progress=False)
    assert seen == [1] and torch.get_num_threads() == before
    assert Trainer(config.replace(threads=0), tiny_data()).config.threads == before  # 0: what the process has


@pytest.mark.parametrize("name, metric", [("Land (unpaved area)", "Land_unpaved_area"), ("road", "road"),
                                          ("a/b [x]", "a_b_x"), ("(?)", "class"), ("class-1.5", "class-1.5")])
def test_class_names_become_readable_tracker_metric_names(name, metric):
    from searchseg.training.engine import metric_name

    assert metric_name(name) == metric


def test_a_smaller_input_size_trains_at_it_and_scores_at_the_decoded_size():
    data = tiny_data()  # decoded at 64 px
    small = TrialConfig(**BASE, input_size=32, epochs=1)
    trainer = Trainer(small, data)
    images, masks = trainer.prepare_batch(*next(iter(trainer.train_loader)))
    assert images.shape[-2:] == (32, 32) and masks.shape[-2:] == (32, 32)
    assert set(masks.unique().tolist()) <= set(torch.from_numpy(data.masks).unique().tolist())  # nearest, no blends
    assert trainer.predict(data.splits["val"]).shape == (len(data.splits["val"]), 64, 64)
    _, metrics = trainer.evaluate("val")
    assert 0.0 <= metrics["miou"] <= 1.0
    full_macs = measure_costs(Trainer(TrialConfig(**BASE), data), runs=0).gmacs
    assert measure_costs(trainer, runs=0).gmacs == pytest.approx(full_macs / 4, rel=0.02)  # a quarter of the pixels
    assert fit(small, data, progress=False).status == "completed"
    with pytest.raises(UserError, match="input_size 128 is larger than image_size 64"):
        TrialConfig(**BASE, input_size=128)
