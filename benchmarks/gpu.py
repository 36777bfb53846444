"""Benchmark 7 on a CUDA GPU: bf16 autocast + channels_last against fp32, with the engine's own Trainer.

For each size, U-Net/ResNet-18 trains one warm-up epoch and one timed epoch (``EPOCH_STEPS`` steps of batch
``BATCH``, no augmentation) in each precision; images per second are compared. Also printed: the budget plan's
step time per architecture in bf16 (``timing.step_seconds``, what ``--budget`` plans from) and the GPU memory
still allocated after a Trainer is dropped (what the next trial on that GPU finds).

Needs no Ray, so it runs where only torch and the model libraries are installed:
``python -m benchmarks.gpu [--sizes 128 256]`` prints a markdown table.
"""

from __future__ import annotations

import argparse
import gc

import torch

from searchseg.data import load_from_config
from searchseg.data.loader import SegmentationData
from searchseg.spaces.config import TrialConfig
from searchseg.training.engine import Trainer
from searchseg.tuning.timing import step_seconds

EPOCH_STEPS, BATCH = 30, 16
ARCHS = (("unet", "resnet18"), ("unet", "resnet34"), ("fpn", "mobilenet_v2"), ("deeplabv3plus", "resnet18"),
         ("segformer", "mit_b0"))


def images_per_second(base: dict, data: SegmentationData, bf16: bool) -> float:
    config = TrialConfig.from_flat({**base, "augment": "none", "epochs": 2, "epoch_steps": EPOCH_STEPS,
                                    "batch_size": BATCH, "amp": bf16, "channels_last": bf16, "device": "cuda"})
    trainer = Trainer(config, data)
    trainer.train_one_epoch()  # warm-up: cuDNN autotuning, allocator
    trainer.epoch += 1
    torch.cuda.synchronize()
    rate = trainer.train_one_epoch()[1]
    del trainer
    return rate


def measure(sizes: list[int], data_keys: dict | None = None) -> list[dict]:
    rows = []
    for size in sizes:
        base = {**(data_keys or {}), "image_size": size}
        data = load_from_config(TrialConfig.from_flat(base), progress=False)
        rates = {bf16: images_per_second(base, data, bf16) for bf16 in (True, False)}
        gc.collect()
        torch.cuda.empty_cache()
        left_mib = torch.cuda.memory_allocated() / 2**20
        steps = {f"{arch}/{encoder}": step_seconds(TrialConfig.from_flat(
            {**base, "arch": arch, "encoder": encoder, "batch_size": BATCH, "device": "cuda"}), data, threads=1,
            timed_steps=5) for arch, encoder in ARCHS}
        rows.append({"image_size": size, "bf16_images_per_s": rates[True], "fp32_images_per_s": rates[False],
                     "ratio": rates[True] / rates[False], "allocated_after_mib": left_mib, "bf16_step_seconds": steps})
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"| size | bf16 + channels_last img/s | fp32 img/s | ratio | MiB left allocated | "
             f"bf16 s/step (batch {BATCH}) |", "|---|---|---|---|---|---|"]
    for row in rows:
        steps = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in row["bf16_step_seconds"].items())
        lines.append(f"| {row['image_size']} | {row['bf16_images_per_s']:.0f} | {row['fp32_images_per_s']:.0f} | "
                     f"{row['ratio']:.2f} | {row['allocated_after_mib']:.1f} | {steps} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU on this machine: benchmark 7 needs one")
    print(torch.cuda.get_device_name(), f"torch {torch.__version__}")
    print(table(measure(args.sizes)))


if __name__ == "__main__":
    main()
