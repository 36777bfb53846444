"""What a model costs to deploy, as each trial measures it before training."""

from __future__ import annotations

import dataclasses
import math
import sys

import pytest
import torch
from onnxruntime import InferenceSession
from torch import nn

from searchseg.errors import UserError
from searchseg.spaces.config import TrialConfig
from searchseg.spaces.space import COST_OBJECTIVES
from searchseg.training.costs import WARMUP_RUNS, ModelCosts, measure_costs
from searchseg.training.engine import Trainer
from searchseg.training.models import CLASSIC_ARCHS, register_arch
from tests.conftest import tiny_data


@pytest.fixture
def trainer():
    """A trainer of one 3x3 convolution, whose costs are known by hand (registered for the test only)."""
    register_arch("one_conv_for_costs")(lambda in_channels, classes: nn.Conv2d(in_channels, classes, 3, padding=1))
    config = TrialConfig(arch="one_conv_for_costs", image_size=64, batch_size=4, device="cpu", augment="none",
                         threads=1)
    yield Trainer(config, tiny_data(count=8, size=64))
    del CLASSIC_ARCHS["one_conv_for_costs"]


def test_parameters_and_macs_are_counted_exactly_and_latency_is_timed(trainer):
    costs = measure_costs(trainer, runs=3)
    assert costs.params_m == pytest.approx((3 * 3 * 3 * 3 + 3) / 1e6)  # 3 -> 3 classes, 3x3 kernel, bias
    assert costs.gmacs == pytest.approx(64 * 64 * 3 * 3 * 3 * 3 / 1e9, rel=1e-3)  # per output pixel and channel
    assert costs.latency_ms > 0 and costs.batch_latency_ms > 0


def test_no_timed_runs_leaves_latency_unmeasured_and_the_global_random_state_untouched(trainer):
    before = torch.random.get_rng_state()
    costs = measure_costs(trainer, runs=0)
    assert math.isnan(costs.latency_ms) and math.isnan(costs.batch_latency_ms) and costs.gmacs > 0
    assert torch.equal(torch.random.get_rng_state(), before)


def test_the_trials_table_has_a_column_for_each_cost():
    assert tuple(f.name for f in dataclasses.fields(ModelCosts)) == COST_OBJECTIVES


def test_latency_through_onnx_runtime_times_the_exported_model(trainer, monkeypatch):
    trainer.config = trainer.config.replace(cost_backend="onnx")
    timed = []
    original = InferenceSession.run
    monkeypatch.setattr(InferenceSession, "run", lambda self, *args, **kwargs: timed.append(1) or original(
        self, *args, **kwargs))
    costs = measure_costs(trainer, runs=3)
    assert costs.latency_ms > 0 and costs.batch_latency_ms > 0
    assert len(timed) == 2 * (3 + WARMUP_RUNS)  # every timed and warm-up run went through ONNX Runtime
    assert costs.gmacs == measure_costs(trainer, runs=0).gmacs  # counted on the PyTorch model either way
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as when the export extra is not installed
    with pytest.raises(UserError, match="cost_backend onnx needs onnxruntime"):
        measure_costs(trainer, runs=1)
