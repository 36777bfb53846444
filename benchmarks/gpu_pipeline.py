"""Can a GPU be kept busy? The input pipeline, the per-epoch checkpoint, and (with CUDA) training throughput
against the device's bf16 ceiling, measured with the engine's own Trainer on generated images.

- **Input pipeline** (always): images per second the training loader delivers (decoded uint8 arrays, the
  ``medium`` albumentations preset, batches of ``BATCH``) at each size, with 0 and more loader workers, no model:
  the most a GPU can be fed.
- **Checkpoint** (always): seconds and MB to save a U-Net/ResNet-34 trainer's state (weights, Adam moments,
  schedule), which every epoch of a trial pays.
- **Training** (CUDA only): U-Net/ResNet-34 images/s at each size in bf16 + channels_last, as a share of the
  ceiling: the device's dense bf16 peak over the training FLOPs of one image (3 x the forward pass, 2 FLOPs per
  multiply-accumulate, counted by ``measure_costs``). The peak comes from the device's name (``PEAK_BF16_TFLOPS``)
  or ``--peak-tflops``.
- **A shared GPU** (CUDA only): 4 processes training at once on one GPU (what 4 trials at ``--gpus-per-trial 0.25``
  do) against 1 process, total images/s.

Needs torch and the model libraries, no Ray and no network (the images are generated), so it runs on a bare GPU
machine: ``python -m benchmarks.gpu_pipeline [--sizes 256 512] [--output FILE.json]``. Without CUDA it says so and
measures the host-side parts. Within 10 minutes on one GPU.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from searchseg.data.loader import SegmentationData
from searchseg.machine import available_cpus
from searchseg.spaces.config import TrialConfig
from searchseg.training.costs import measure_costs
from searchseg.training.engine import Trainer

BATCH = 16
ARCH, ENCODER = "unet", "resnet34"
# Dense bf16 tensor-core peaks (no sparsity), from the vendors' data sheets; the first name found in the device's
# name is taken.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}
SHARED_PROCESSES = 4


def generated_data(count: int, size: int, classes: int = 4, seed: int = 0) -> SegmentationData:
    """Blocky label maps and images coloured by class with noise: what the loader and the model see of real data
    (uint8 arrays at the working size), without a dataset on the machine."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, classes, size=(count, size // 32, size // 32), dtype=np.uint8)
    masks = np.kron(cells, np.ones((32, 32), np.uint8))
    palette = rng.integers(0, 256, size=(classes, 3))
    images = np.clip(palette[masks] + rng.normal(0, 20, masks.shape + (3,)), 0, 255).astype(np.uint8)
    indices = np.arange(count)
    return SegmentationData(images=images, masks=masks, names=[f"g{i}" for i in indices], groups=[""] * count,
                            class_names=tuple(f"class{c}" for c in range(classes)), ignore_index=255,
                            binary=False, splits={"train": indices[: count - 2], "val": indices[-2:-1],
                                                  "test": indices[-1:]}, source="generated")


def _trainer(data: SegmentationData, **keys) -> Trainer:
    size = int(data.images.shape[1])
    return Trainer(TrialConfig.from_flat({"arch": ARCH, "encoder": ENCODER, "image_size": size,
                                          "batch_size": BATCH, **keys}), data)


def loader_images_per_second(data: SegmentationData, workers: int, batches: int = 20) -> float:
    """Images/s out of the training loader (augmentation included), after 2 warm-up batches."""
    trainer = _trainer(data, augment="medium", num_workers=workers, device="cpu",
                       epoch_steps=batches + 2, epochs=1)
    batches_seen, started = 0, 0.0
    for batches_seen, _ in enumerate(trainer.train_loader, start=1):
        if batches_seen == 2:
            started = time.perf_counter()
    return (batches_seen - 2) * BATCH / (time.perf_counter() - started)


def checkpoint_cost(data: SegmentationData, saves: int = 3) -> dict:
    """Median seconds and size of saving the trainer's state once Adam holds its moments (after one step)."""
    trainer = _trainer(data, augment="none", device="auto", epoch_steps=1, epochs=1, optimizer="adam")
    trainer.train_one_epoch()
    seconds = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.pt"
        for _ in range(saves):
            started = time.perf_counter()
            torch.save(trainer.state_dict(), path)
            seconds.append(time.perf_counter() - started)
        size_mb = path.stat().st_size / 1e6
    return {"seconds": statistics.median(seconds), "mb": size_mb}


def training_images_per_second(data: SegmentationData, steps: int = 30) -> tuple[float, float]:
    """bf16 + channels_last training images/s on the GPU after a warm-up epoch, and training GFLOPs per image."""
    trainer = _trainer(data, augment="none", device="cuda", amp=True, channels_last=True, epoch_steps=steps,
                       epochs=2)
    gflops = 3 * 2 * measure_costs(trainer, runs=0).gmacs
    trainer.train_one_epoch()  # warm-up: cuDNN autotuning, the allocator
    trainer.epoch += 1
    torch.cuda.synchronize()
    started = time.perf_counter()
    trainer.train_one_epoch()
    torch.cuda.synchronize()
    return steps * BATCH / (time.perf_counter() - started), gflops


def _train_in_process(size: int, steps: int, device: str, ready, results) -> None:
    """One of the processes sharing the GPU: builds and warms up its trainer, waits until every process has, then
    trains an epoch and puts (images, start, end) on ``results``."""
    data = generated_data(BATCH * 2 + 2, size)
    cuda = device == "cuda"
    trainer = _trainer(data, augment="none", device=device, amp=cuda, channels_last=cuda, epoch_steps=steps,
                       epochs=2)
    trainer.train_one_epoch()  # warm-up: cuDNN autotuning, the allocator
    trainer.epoch += 1
    ready.wait()
    began = time.time()
    trainer.train_one_epoch()
    if cuda:
        torch.cuda.synchronize()
    results.put((steps * BATCH, began, time.time()))


def shared_images_per_second(size: int, processes: int, steps: int = 30, device: str = "cuda") -> float:
    """Total images/s of ``processes`` trainers on one device at once (one process each, as Ray runs trials)."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_train_in_process, args=(size, steps, device, ready, results))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    done = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    return sum(count for count, _, _ in done) / (max(end for _, _, end in done) - min(began for _, began, _ in done))


def peak_tflops(device_name: str, given: float | None) -> float | None:
    if given is not None:
        return given
    return next((peak for name, peak in PEAK_BF16_TFLOPS.items() if name in device_name), None)


def measure(sizes: list[int], given_peak: float | None) -> dict:
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if cuda else "no CUDA GPU: host-side parts only"
    workers = sorted({0, min(2, available_cpus()), min(4, available_cpus())})
    result: dict = {"device": device, "torch": torch.__version__, "cpus": available_cpus(), "batch": BATCH,
                    "model": f"{ARCH}/{ENCODER}", "sizes": {}}
    for size in sizes:
        data = generated_data(BATCH * 4 + 2, size)
        row: dict = {"loader_images_per_s": {w: loader_images_per_second(data, w) for w in workers},
                     "checkpoint": checkpoint_cost(data)}
        if cuda:
            rate, gflops = training_images_per_second(data)
            peak = peak_tflops(device, given_peak)
            ceiling = peak * 1e3 / gflops if peak else None
            row.update(train_images_per_s=rate, train_gflops_per_image=gflops, ceiling_images_per_s=ceiling,
                       share_of_ceiling=rate / ceiling if ceiling else None,
                       shared_gpu_images_per_s={count: shared_images_per_second(size, count)
                                                for count in (1, SHARED_PROCESSES)})
        result["sizes"][size] = row
    return result


def table(result: dict) -> str:
    lines = [f"{result['device']}; torch {result['torch']}; {result['cpus']} CPUs; {result['model']}, batch "
             f"{result['batch']}",
             "| size | loader img/s (workers: rate) | checkpoint s (MB) | train img/s bf16 | share of ceiling | "
             f"1 process vs {SHARED_PROCESSES} sharing the GPU (img/s) |", "|---|---|---|---|---|---|"]
    for size, row in result["sizes"].items():
        loader = ", ".join(f"{w}: {rate:.0f}" for w, rate in row["loader_images_per_s"].items())
        train = f"{row['train_images_per_s']:.0f}" if "train_images_per_s" in row else "n/a"
        share = f"{row['share_of_ceiling']:.1%} of {row['ceiling_images_per_s']:.0f}" \
            if row.get("share_of_ceiling") else "n/a"
        shared = " vs ".join(f"{rate:.0f}" for rate in row["shared_gpu_images_per_s"].values()) \
            if "shared_gpu_images_per_s" in row else "n/a"
        lines.append(f"| {size} | {loader} | {row['checkpoint']['seconds']:.2f} ({row['checkpoint']['mb']:.0f}) | "
                     f"{train} | {share} | {shared} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak (default: from its name)")
    parser.add_argument("--output", type=Path, help="also write the measurements as JSON")
    args = parser.parse_args()
    result = measure(args.sizes, args.peak_tflops)
    print(table(result))
    if args.output:
        args.output.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
