"""What a model costs to deploy, measured inside each trial on the trial's own device and threads before it trains:
parameters, multiply-accumulates of one image (``torch.utils.flop_counter``), and inference latency per image at
batch 1 and at the training batch size (median of timed runs after warm-up)."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from searchseg.training.engine import Trainer, torch_threads

WARMUP_RUNS = 2


@dataclass(frozen=True)
class ModelCosts:
    params_m: float  # parameters, millions
    gmacs: float  # multiply-accumulates of one image at the working size, billions
    latency_ms: float  # milliseconds per image at batch 1 (nan when not timed)
    batch_latency_ms: float  # milliseconds per image at the training batch size (nan when not timed)

    def to_metrics(self) -> dict[str, float]:
        return asdict(self)


def _median_ms_per_image(trainer: Trainer, images: torch.Tensor, runs: int) -> float:
    seconds = []
    for run in range(WARMUP_RUNS + runs):
        if trainer.cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        with trainer.autocast():
            trainer.model(trainer.prepare_images(images))
        if trainer.cuda:
            torch.cuda.synchronize()
        if run >= WARMUP_RUNS:
            seconds.append(time.perf_counter() - started)
    return 1000 * statistics.median(seconds) / len(images)


@torch.no_grad()
def measure_costs(trainer: Trainer, runs: int = 5) -> ModelCosts:
    """Costs of the trainer's model on images of its working size, on its device, threads, precision and memory
    format, from uint8 images as training feeds them; ``runs`` timed forward passes at batch 1 and at the batch
    size (0: latency not timed). The model is left in eval mode; the global random state is not touched."""
    config = trainer.config
    trainer.model.eval()
    shape = (config.batch_size, config.in_channels, config.model_size, config.model_size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch_threads(config.threads):
        with FlopCounterMode(display=False) as counter:
            trainer.model(trainer.prepare_images(images[:1]))
        latency = batch_latency = float("nan")
        if runs > 0:
            latency = _median_ms_per_image(trainer, images[:1], runs)
            batch_latency = _median_ms_per_image(trainer, images, runs)
    params = sum(p.numel() for p in trainer.model.parameters())
    return ModelCosts(_digits(params / 1e6), _digits(counter.get_total_flops() / 2 / 1e9), _digits(latency),
                      _digits(batch_latency))


def _digits(value: float) -> float:
    """Four significant digits: what a table of costs can show, for a tiny model as for a large one."""
    return float(f"{value:.4g}")
