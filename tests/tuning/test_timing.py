"""Timing a training step and a checkpoint per model, before a budgeted search plans around them."""

from __future__ import annotations

from dataclasses import replace

from searchseg.spaces.config import TrialConfig
from searchseg.spaces.space import as_space
from searchseg.tuning.budget import Costs
from searchseg.tuning.search import measure_costs
from searchseg.tuning.timing import model_step_seconds, step_seconds, time_steps
from tests.conftest import tiny_data

BASE = TrialConfig(image_size=64, batch_size=2, augment="none", device="cpu", encoder_weights="none")


def test_a_step_is_timed_on_real_batches_and_then_the_checkpoint_a_trial_writes():
    seconds = step_seconds(BASE.replace(arch="unet", encoder="resnet18"), tiny_data(), threads=1)
    assert 0 < seconds < 10
    untimed = time_steps(BASE.replace(arch="unet", encoder="resnet18"), tiny_data(), threads=1, time_checkpoint=False)
    assert untimed.checkpoint == 0.0  # the space's other models: their checkpoints are not planned with
    timing = time_steps(BASE.replace(arch="unet", encoder="resnet18"), tiny_data(), threads=1)
    assert 0 < timing.step < 10 and 0 < timing.checkpoint < 60


def test_untimed_pairs_are_predicted_from_their_architecture_and_encoder():
    models = [("unet", "resnet18"), ("unet", "resnet34"), ("fpn", "resnet18"), ("fpn", "resnet34")]
    known = {("unet", "resnet18"): 1.0, ("unet", "resnet34"): 2.0, ("fpn", "resnet18"): 0.5}
    seconds = model_step_seconds(BASE, models, tiny_data(), threads=1, known=known)
    # nothing left to time: fpn/resnet34 = t(fpn, resnet18) * t(unet, resnet34) / t(unet, resnet18)
    assert seconds == {"unet/resnet18": 1.0, "unet/resnet34": 2.0, "fpn/resnet18": 0.5, "fpn/resnet34": 1.0}


def test_known_timings_are_kept_and_only_the_missing_ones_are_measured():
    models = [("unet", "resnet18"), ("fpn", "resnet18")]
    seconds = model_step_seconds(BASE, models, tiny_data(), threads=1, known={("unet", "resnet18"): 123.0})
    assert seconds["unet/resnet18"] == 123.0
    assert 0 < seconds["fpn/resnet18"] < 10  # measured, not predicted from the made-up 123 s


def test_the_costs_a_plan_is_built_from_count_the_independent_groups_of_the_validation_split():
    space = as_space({"fixed": {"image_size": 64, "batch_size": 2, "augment": "none", "arch": "unet",
                                "encoder": "resnet18", "encoder_weights": "none"},
                      "params": {"lr": {"loguniform": [1.0e-4, 1.0e-2]}}})
    known = Costs({"unet/resnet18": 1.0}, 1.5, 1, 1, 1, 0.0)  # nothing left to time

    def val_groups(data) -> int | None:
        return measure_costs(space, {}, data, {"cpu": 1, "gpu": 0}, (2.0, 0.0), [("unet", "resnet18")],
                             known=known, echo=lambda *_: None).val_groups

    images = tiny_data(count=20)  # 5 validation images, no folders
    assert val_groups(images) == 5
    one_folder = replace(images, groups=["Tile 1"] * 20, decoded_with={"group_by": "folder"})
    assert val_groups(one_folder) == 1
