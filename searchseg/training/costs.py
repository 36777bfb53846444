"""What a model costs to deploy, measured inside each trial on the trial's own device and threads before it trains:
parameters, multiply-accumulates of one image (``torch.utils.flop_counter``), and inference latency per image at
batch 1 and at the training batch size (median of timed runs after warm-up)."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from searchseg.errors import UserError
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


def _median_ms_per_image(run: Callable[[], object], images: int, runs: int, cuda: bool) -> float:
    seconds = []
    for attempt in range(WARMUP_RUNS + runs):
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        if attempt >= WARMUP_RUNS:
            seconds.append(time.perf_counter() - started)
    return 1000 * statistics.median(seconds) / images


def _torch_run(trainer: Trainer, images: torch.Tensor) -> Callable[[], object]:
    """The model as the trial trains it, from uint8 images: its device, threads, precision and memory format."""
    def run():
        with trainer.autocast():
            return trainer.model(trainer.prepare_images(images))
    return run


def _onnx_runs(trainer: Trainer, images: torch.Tensor) -> tuple[Callable[[], object], Callable[[], object]]:
    """(batch 1, full batch) runs of the model exported to ONNX, through ONNX Runtime on the trial's threads (and
    its GPU where ONNX Runtime has CUDA), on float input prepared beforehand."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError("cost_backend onnx needs onnxruntime: pip install 'searchseg[export]'") from None
    prepared = trainer.prepare_images(images).float().contiguous()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        torch.onnx.export(trainer.model, (prepared[:1],), str(path), dynamo=False, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = trainer.config.threads or torch.get_num_threads()
        wanted = ["CUDAExecutionProvider"] if trainer.cuda else []
        providers = [p for p in wanted if p in onnxruntime.get_available_providers()] + ["CPUExecutionProvider"]
        session = onnxruntime.InferenceSession(str(path), options, providers=providers)
    batch = prepared.cpu().numpy()
    return (lambda: session.run(None, {"image": batch[:1]})), (lambda: session.run(None, {"image": batch}))


@torch.no_grad()
def measure_costs(trainer: Trainer, runs: int = 5) -> ModelCosts:
    """Costs of the trainer's model on images of its working size, on its device, threads, precision and memory
    format, from uint8 images as training feeds them (or, with ``cost_backend: onnx``, its ONNX export through ONNX
    Runtime); ``runs`` timed forward passes at batch 1 and at the batch size (0: latency not timed). The model is
    left in eval mode; the global random state is not touched."""
    config = trainer.config
    trainer.model.eval()
    shape = (config.batch_size, config.in_channels, config.model_size, config.model_size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch_threads(config.threads):
        with FlopCounterMode(display=False) as counter:
            trainer.model(trainer.prepare_images(images[:1]))
        latency = batch_latency = float("nan")
        if runs > 0:
            single, full = _onnx_runs(trainer, images) if config.cost_backend == "onnx" else \
                (_torch_run(trainer, images[:1]), _torch_run(trainer, images))
            latency = _median_ms_per_image(single, 1, runs, trainer.cuda)
            batch_latency = _median_ms_per_image(full, len(images), runs, trainer.cuda)
    params = sum(p.numel() for p in trainer.model.parameters())
    return ModelCosts(_digits(params / 1e6), _digits(counter.get_total_flops() / 2 / 1e9), _digits(latency),
                      _digits(batch_latency))


def _digits(value: float) -> float:
    """Four significant digits: what a table of costs can show, for a tiny model as for a large one."""
    return float(f"{value:.4g}")
